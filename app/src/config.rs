//! Configuration for `worldstore serve`: a TOML file plus environment variables.
//!
//! The environment wins over the file. The original system's variable names keep working
//! (`PORT`, `RPC_PROVIDER_URL`, `ORDER_FEE_PERCENTAGE`, `ORDER_PAYMENT_TIMEOUT_MINUTES`,
//! `CROSSMINT_API_KEY`, `CROSSMINT_ENVIRONMENT`, `CROSSMINT_WALLET_LOCATOR`,
//! `WALLET_PRIVATE_KEY`, `ANTHROPIC_API_KEY`, `SERPAPI_API_KEY`, `XMTP_ENV`,
//! `XMTP_WALLET_KEY`, `XMTP_DB_ENCRYPTION_KEY`, `XMTP_DB_DIRECTORY`), beside our own
//! (`DATABASE_URL`, `WORLDSTORE_DATA_KEY`, `FACILITATOR_PRIVATE_KEY`,
//! `WORLDSTORE_MASTER_SECRET`, `WORLDSTORE_*`).
//! Secrets come only from the environment, never from the file, and are held as
//! [`SecretString`] so they cannot be printed.
//!
//! [`Settings::load`] checks everything and reports every problem at once
//! ([`Problems`]), never the first one only, and never by panicking.

use alloy_primitives::Address;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use worldstore_domain::money::{FeeRate, UsdcAmount};
use worldstore_domain::network::Network;
use worldstore_domain::wallet::{DerivationScheme, MasterSecret, derive_wallet};

/// The services one process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Agent,
    Merchant,
    Facilitator,
}

impl Role {
    fn parse(text: &str) -> Option<Vec<Role>> {
        match text.trim().to_ascii_lowercase().as_str() {
            "agent" => Some(vec![Role::Agent]),
            "merchant" | "order-server" => Some(vec![Role::Merchant]),
            "facilitator" => Some(vec![Role::Facilitator]),
            "all" => Some(vec![Role::Agent, Role::Merchant, Role::Facilitator]),
            _ => None,
        }
    }
}

/// Where fulfilment happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommerceChoice {
    Crossmint,
    Sandbox,
}

/// The configuration file's shape. Every field is optional; see [`Settings`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub roles: Option<Vec<String>>,
    pub port: Option<u16>,
    pub environment: Option<String>,
    pub public_url: Option<String>,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub chain: ChainSection,
    #[serde(default)]
    pub merchant: MerchantSection,
    #[serde(default)]
    pub crossmint: CrossmintSection,
    #[serde(default)]
    pub agent: AgentSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    pub url: Option<String>,
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    pub network: Option<String>,
    pub rpc_url: Option<String>,
    pub token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantSection {
    pub commerce: Option<String>,
    pub fee_percentage: Option<String>,
    pub payment_timeout_minutes: Option<u64>,
    pub max_timeout_seconds: Option<u64>,
    pub pay_to: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossmintSection {
    pub environment: Option<String>,
    pub wallet_locator: Option<String>,
    pub wallet_kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    pub brain: Option<String>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub messengers: Option<Vec<String>>,
    pub merchant_url: Option<String>,
    pub xmtp_env: Option<String>,
    pub wallet_scheme: Option<String>,
    /// Decimal USDC, e.g. `"500"`.
    pub per_order_limit: Option<String>,
    pub per_day_limit: Option<String>,
    pub xmtp_db_directory: Option<PathBuf>,
    pub xmtp_bridge_dir: Option<PathBuf>,
    /// The agent's own database when other roles run beside it (each role's outbox holds
    /// its own effects only).
    pub database_url: Option<String>,
}

/// Everything wrong with a configuration, each problem naming its setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<String>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the configuration has {} problem(s):", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Crossmint settings, complete.
#[derive(Debug, Clone)]
pub struct CrossmintSettings {
    pub base_url: String,
    pub api_key: SecretString,
    pub wallet_locator: String,
    pub smart_wallet: bool,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub roles: Vec<Role>,
    pub port: u16,
    pub environment: String,
    pub public_url: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    pub data_key: Option<SecretString>,
    pub network: Network,
    pub rpc_url: Option<String>,
    pub token: Option<Address>,
    /// Pays gas and refunds (the treasury): `FACILITATOR_PRIVATE_KEY` or `WALLET_PRIVATE_KEY`.
    pub treasury_key: Option<SecretString>,
    pub commerce: CommerceChoice,
    pub fee: FeeRate,
    pub payment_timeout_minutes: u64,
    pub max_timeout_seconds: u64,
    pub pay_to: Option<Address>,
    pub crossmint: Option<CrossmintSettings>,
    pub brain: String,
    pub model: Option<String>,
    pub brain_base_url: Option<String>,
    pub anthropic_key: Option<SecretString>,
    pub openai_key: Option<SecretString>,
    pub serpapi_key: Option<SecretString>,
    pub messengers: Vec<String>,
    pub merchant_url: Option<String>,
    pub xmtp_env: String,
    /// Derives each user's agent wallet: `WORLDSTORE_MASTER_SECRET`, or the original
    /// system's `WALLET_PRIVATE_KEY`.
    pub master_secret: Option<SecretString>,
    pub wallet_scheme: DerivationScheme,
    pub per_order_limit: UsdcAmount,
    pub per_day_limit: UsdcAmount,
    pub xmtp_wallet_key: Option<SecretString>,
    pub xmtp_db_encryption_key: Option<SecretString>,
    /// The XMTP database (must persist: each lost database is a new installation); see
    /// [`Settings::xmtp_db_directory`].
    pub xmtp_db_dir: Option<PathBuf>,
    /// The bridge's directory (with `node_modules`); the bundled bridge when `None`.
    pub xmtp_bridge_dir: Option<PathBuf>,
    /// `WORLDSTORE_AGENT_DATABASE_URL` / `agent.database_url`.
    pub agent_database_url: Option<String>,
}

impl Settings {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The XMTP database's directory: `XMTP_DB_DIRECTORY`, else `xmtp` in the data directory.
    pub fn xmtp_db_directory(&self) -> PathBuf {
        self.xmtp_db_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("xmtp"))
    }

    /// Where the agent keeps its data: `agent.database_url`; else the database when the
    /// agent runs alone; else `worldstore-agent.db` in the data directory (`None` means
    /// that default: the caller creates the directory).
    pub fn agent_database(&self) -> Option<&str> {
        if self.agent_database_url.is_some() {
            return self.agent_database_url.as_deref();
        }
        let alone = !self.has(Role::Merchant) && !self.has(Role::Facilitator);
        if alone {
            self.database_url.as_deref()
        } else {
            None
        }
    }

    /// Reads `file` (if given) and the environment through `env`, and checks the result.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, Problems> {
        let mut problems = Vec::new();
        let config = match file {
            None => FileConfig::default(),
            Some(path) => match std::fs::read_to_string(path) {
                Err(e) => {
                    problems.push(format!("config file {}: {e}", path.display()));
                    FileConfig::default()
                }
                Ok(text) => match toml::from_str::<FileConfig>(&text) {
                    Ok(config) => config,
                    Err(e) => {
                        problems.push(format!("config file {}: {}", path.display(), e.message()));
                        FileConfig::default()
                    }
                },
            },
        };
        let settings = Self::resolve(config, env, &mut problems);
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(Problems(problems))
        }
    }

    fn resolve(
        config: FileConfig,
        env: &dyn Fn(&str) -> Option<String>,
        problems: &mut Vec<String>,
    ) -> Settings {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let secret = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| env(n))
                .map(|v| SecretString::from(v.trim().to_owned()))
        };

        let roles_text = env("WORLDSTORE_ROLES")
            .map(|v| v.split(',').map(str::to_owned).collect())
            .or(config.roles)
            .unwrap_or_else(|| vec!["all".to_owned()]);
        let mut roles = Vec::new();
        for text in &roles_text {
            match Role::parse(text) {
                Some(found) => {
                    for role in found {
                        if !roles.contains(&role) {
                            roles.push(role);
                        }
                    }
                }
                None => problems.push(format!(
                    "roles: {text:?} is not one of agent, merchant, facilitator, all"
                )),
            }
        }

        let port = match env("PORT") {
            Some(text) => text.trim().parse().unwrap_or_else(|_| {
                problems.push(format!("PORT: {text:?} is not a port number"));
                0
            }),
            None => config.port.unwrap_or(8402),
        };

        let network_text = env("WORLDSTORE_NETWORK")
            .or(config.chain.network)
            .unwrap_or_else(|| "base-sepolia".into());
        let network = network_text.parse().unwrap_or_else(|_| {
            problems.push(format!(
                "chain.network: {network_text:?} is not a network we know (e.g. base-sepolia, base, eip155:84532)"
            ));
            Network::BaseSepolia
        });
        let rpc_url = env("RPC_PROVIDER_URL").or(config.chain.rpc_url);
        let token = env("WORLDSTORE_TOKEN")
            .or(config.chain.token)
            .and_then(|t| match t.trim().parse::<Address>() {
                Ok(a) => Some(a),
                Err(_) => {
                    problems.push(format!("chain.token: {t:?} is not an address"));
                    None
                }
            });
        let treasury_key = secret(&["FACILITATOR_PRIVATE_KEY", "WALLET_PRIVATE_KEY"]);

        let fee_text = env("ORDER_FEE_PERCENTAGE").or(config.merchant.fee_percentage);
        let fee = match fee_text {
            None => FeeRate::ZERO,
            Some(text) => FeeRate::parse_percentage(text.trim()).unwrap_or_else(|e| {
                problems.push(format!(
                    "ORDER_FEE_PERCENTAGE / merchant.fee_percentage: {e}"
                ));
                FeeRate::ZERO
            }),
        };
        let payment_timeout_minutes = match env("ORDER_PAYMENT_TIMEOUT_MINUTES") {
            Some(text) => text.trim().parse().unwrap_or_else(|_| {
                problems.push(format!(
                    "ORDER_PAYMENT_TIMEOUT_MINUTES: {text:?} is not a whole number of minutes"
                ));
                10
            }),
            None => config.merchant.payment_timeout_minutes.unwrap_or(10),
        };
        if payment_timeout_minutes == 0 || payment_timeout_minutes > 24 * 60 {
            problems.push("ORDER_PAYMENT_TIMEOUT_MINUTES must be 1 to 1440".into());
        }
        let max_timeout_seconds = config.merchant.max_timeout_seconds.unwrap_or(600);
        let pay_to = config
            .merchant
            .pay_to
            .and_then(|t| match t.trim().parse::<Address>() {
                Ok(a) => Some(a),
                Err(_) => {
                    problems.push(format!("merchant.pay_to: {t:?} is not an address"));
                    None
                }
            });
        let commerce = match env("WORLDSTORE_COMMERCE")
            .or(config.merchant.commerce)
            .as_deref()
            .map(str::trim)
        {
            None | Some("crossmint") => CommerceChoice::Crossmint,
            Some("sandbox") => CommerceChoice::Sandbox,
            Some(other) => {
                problems.push(format!(
                    "merchant.commerce: {other:?} is not crossmint or sandbox"
                ));
                CommerceChoice::Crossmint
            }
        };

        let crossmint_env = env("CROSSMINT_ENVIRONMENT")
            .or(config.crossmint.environment)
            .unwrap_or_else(|| "staging".into());
        let base_url = match crossmint_env.trim() {
            "staging" => "https://staging.crossmint.com/api".to_owned(),
            "production" => "https://www.crossmint.com/api".to_owned(),
            other => {
                problems.push(format!(
                    "CROSSMINT_ENVIRONMENT: {other:?} is not staging or production"
                ));
                String::new()
            }
        };
        let wallet_locator = env("CROSSMINT_WALLET_LOCATOR")
            .or(env("CROSSMINT_WALLET_ADDRESS"))
            .or(config.crossmint.wallet_locator);
        let smart_wallet = match config.crossmint.wallet_kind.as_deref() {
            None | Some("smart") => true,
            Some("mpc") => false,
            Some(other) => {
                problems.push(format!(
                    "crossmint.wallet_kind: {other:?} is not smart or mpc"
                ));
                true
            }
        };
        let crossmint_key = secret(&["CROSSMINT_API_KEY"]);

        let brain = env("WORLDSTORE_BRAIN")
            .or(config.agent.brain)
            .unwrap_or_else(|| "claude".into());
        let anthropic_key = secret(&["ANTHROPIC_API_KEY"]);
        let openai_key = secret(&["OPENAI_API_KEY"]);
        let serpapi_key = secret(&["SERPAPI_API_KEY"]);
        let messengers = env("WORLDSTORE_MESSENGERS")
            .map(|v| v.split(',').map(|m| m.trim().to_owned()).collect())
            .or(config.agent.messengers)
            .unwrap_or_else(|| vec!["web".into()])
            .into_iter()
            .filter(|m: &String| !m.trim().is_empty())
            .collect();
        let wallet_scheme = match env("WORLDSTORE_WALLET_SCHEME").or(config.agent.wallet_scheme) {
            None => DerivationScheme::Default,
            Some(text) => text.trim().parse().unwrap_or_else(|_| {
                problems.push(format!(
                    "agent.wallet_scheme: {text:?} is not default or legacy"
                ));
                DerivationScheme::Default
            }),
        };
        let mut limit = |name: &str, text: Option<String>, default: u64| match text {
            None => UsdcAmount::from_usdc(default),
            Some(text) => text.trim().parse().unwrap_or_else(|_| {
                problems.push(format!(
                    "agent.{name}: {text:?} is not an amount of USDC (e.g. \"500\" or \"12.50\")"
                ));
                UsdcAmount::from_usdc(default)
            }),
        };
        let per_order_limit = limit("per_order_limit", config.agent.per_order_limit, 500);
        let per_day_limit = limit("per_day_limit", config.agent.per_day_limit, 1000);
        let data_dir = config
            .store
            .data_dir
            .unwrap_or_else(|| PathBuf::from(".worldstore"));
        let xmtp_db_dir = env("XMTP_DB_DIRECTORY")
            .map(PathBuf::from)
            .or(config.agent.xmtp_db_directory);
        let xmtp_env = env("XMTP_ENV")
            .or(config.agent.xmtp_env)
            .unwrap_or_else(|| "dev".into());

        let settings = Settings {
            roles,
            port,
            environment: env("WORLDSTORE_ENVIRONMENT")
                .or(config.environment)
                .unwrap_or_else(|| "live".into()),
            public_url: env("WORLDSTORE_PUBLIC_URL").or(config.public_url),
            database_url: env("DATABASE_URL").or(config.store.url),
            data_dir,
            data_key: secret(&["WORLDSTORE_DATA_KEY"]),
            network,
            rpc_url,
            token,
            treasury_key,
            commerce,
            fee,
            payment_timeout_minutes,
            max_timeout_seconds,
            pay_to,
            crossmint: match (crossmint_key, wallet_locator.clone()) {
                (Some(api_key), Some(wallet_locator)) => Some(CrossmintSettings {
                    base_url,
                    api_key,
                    wallet_locator,
                    smart_wallet,
                }),
                _ => None,
            },
            brain,
            model: env("WORLDSTORE_MODEL").or(config.agent.model),
            brain_base_url: env("WORLDSTORE_BRAIN_URL").or(config.agent.base_url),
            anthropic_key,
            openai_key,
            serpapi_key,
            messengers,
            merchant_url: env("WORLDSTORE_API_URL").or(config.agent.merchant_url),
            xmtp_env,
            master_secret: secret(&["WORLDSTORE_MASTER_SECRET", "WALLET_PRIVATE_KEY"]),
            wallet_scheme,
            per_order_limit,
            per_day_limit,
            xmtp_wallet_key: secret(&["XMTP_WALLET_KEY"]),
            xmtp_db_encryption_key: secret(&["XMTP_DB_ENCRYPTION_KEY"]),
            xmtp_db_dir,
            xmtp_bridge_dir: env("WORLDSTORE_XMTP_BRIDGE_DIR")
                .map(PathBuf::from)
                .or(config.agent.xmtp_bridge_dir),
            agent_database_url: env("WORLDSTORE_AGENT_DATABASE_URL").or(config.agent.database_url),
        };
        settings.check_live(problems, wallet_locator.is_some());
        settings
    }

    /// What each role needs in live mode.
    fn check_live(&self, problems: &mut Vec<String>, has_wallet_locator: bool) {
        if self.data_key.is_none() {
            problems.push(
                "WORLDSTORE_DATA_KEY is not set: personal data is encrypted at rest with it (64 hex characters)"
                    .into(),
            );
        }
        let needs_treasury = self.has(Role::Merchant) || self.has(Role::Facilitator);
        let needs_chain = needs_treasury || self.has(Role::Agent);
        if needs_chain && self.rpc_url.is_none() {
            problems.push("RPC_PROVIDER_URL / chain.rpc_url is not set: the agent, the merchant and the facilitator need a chain".into());
        }
        if needs_treasury && self.treasury_key.is_none() {
            problems.push("FACILITATOR_PRIVATE_KEY (or WALLET_PRIVATE_KEY) is not set: settlement gas and refunds are paid with it".into());
        }
        if self.has(Role::Merchant)
            && self.commerce == CommerceChoice::Crossmint
            && self.crossmint.is_none()
        {
            let mut missing = Vec::new();
            if !has_wallet_locator {
                missing.push("CROSSMINT_WALLET_LOCATOR");
            }
            missing.push("CROSSMINT_API_KEY");
            problems.push(format!(
                "merchant with Crossmint needs {} (or set merchant.commerce = \"sandbox\")",
                missing.join(" and ")
            ));
        }
        if self.has(Role::Agent) {
            match self.brain.as_str() {
                "claude" if self.anthropic_key.is_none() => problems.push(
                    "ANTHROPIC_API_KEY is not set: the agent's brain is Claude (or set agent.brain = \"openai\" / \"offline\")".into(),
                ),
                "openai" if self.brain_base_url.is_none() && self.openai_key.is_none() => problems.push(
                    "agent.brain = \"openai\" needs OPENAI_API_KEY, or agent.base_url for a local server (Ollama, vLLM, llama.cpp)".into(),
                ),
                "claude" | "openai" | "offline" => {}
                other => problems.push(format!(
                    "agent.brain: {other:?} is not claude, openai or offline"
                )),
            }
            if self.serpapi_key.is_none() {
                problems
                    .push("SERPAPI_API_KEY is not set: the agent searches Amazon with it".into());
            }
            if !self.has(Role::Merchant) && self.merchant_url.is_none() {
                problems.push("WORLDSTORE_API_URL / agent.merchant_url is not set: the agent buys from that order server".into());
            }
            self.check_agent(problems, needs_treasury);
        }
    }

    /// The agent's wallets, limits and messengers.
    fn check_agent(&self, problems: &mut Vec<String>, needs_treasury: bool) {
        match &self.master_secret {
            None => problems.push(
                "WORLDSTORE_MASTER_SECRET (or WALLET_PRIVATE_KEY) is not set: each user's agent wallet is derived from it (64 hex characters)".into(),
            ),
            Some(secret) => {
                let master = MasterSecret::new(secret.expose_secret().to_owned());
                if let Err(e) = derive_wallet(&master, "configuration-check", self.wallet_scheme) {
                    problems.push(format!("WORLDSTORE_MASTER_SECRET / WALLET_PRIVATE_KEY: {e}"));
                }
                let same_as_treasury = self
                    .treasury_key
                    .as_ref()
                    .is_some_and(|t| t.expose_secret() == secret.expose_secret());
                if needs_treasury && same_as_treasury {
                    problems.push(
                        "the users' master secret and the treasury key are the same secret: set WORLDSTORE_MASTER_SECRET and FACILITATOR_PRIVATE_KEY to different values when the agent runs beside the merchant or the facilitator".into(),
                    );
                }
            }
        }
        if !self.has(Role::Merchant) && self.pay_to.is_none() {
            problems.push("merchant.pay_to is not set: the agent pays only the remote order server's treasury, at that address".into());
        }
        if needs_treasury && self.database_url.is_some() && self.agent_database_url.is_none() {
            problems.push("WORLDSTORE_AGENT_DATABASE_URL / agent.database_url is not set: the agent needs its own database beside the merchant or the facilitator (each role's outbox holds its own effects)".into());
        }
        if self.per_order_limit > self.per_day_limit {
            problems.push("agent.per_order_limit is above agent.per_day_limit".into());
        }
        if self.messengers.is_empty() {
            problems.push(
                "agent.messengers is empty: the agent needs web and/or xmtp to talk to users"
                    .into(),
            );
        }
        for messenger in &self.messengers {
            if !matches!(messenger.as_str(), "web" | "xmtp") {
                problems.push(format!(
                    "agent.messengers: {messenger:?} is not web or xmtp"
                ));
            }
        }
        if !matches!(self.xmtp_env.as_str(), "dev" | "production" | "local") {
            problems.push(format!(
                "XMTP_ENV: {:?} is not dev, production or local",
                self.xmtp_env
            ));
        }
        if self.messengers.iter().any(|m| m == "xmtp") {
            if self.xmtp_wallet_key.is_none() {
                problems.push(
                    "XMTP_WALLET_KEY is not set: the agent's XMTP identity (0x hex private key)"
                        .into(),
                );
            }
            if self.xmtp_db_encryption_key.is_none() {
                problems.push("XMTP_DB_ENCRYPTION_KEY is not set: it encrypts the XMTP database (64 hex characters; keep it with the database)".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn an_empty_live_configuration_names_every_missing_setting() {
        let problems = Settings::load(None, &env_of(&[])).unwrap_err();
        let text = problems.to_string();
        for needle in [
            "WORLDSTORE_DATA_KEY",
            "RPC_PROVIDER_URL",
            "FACILITATOR_PRIVATE_KEY",
            "CROSSMINT_API_KEY",
            "ANTHROPIC_API_KEY",
            "SERPAPI_API_KEY",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert!(problems.0.len() >= 6);
    }

    #[test]
    fn the_original_variable_names_configure_a_merchant() {
        let settings = Settings::load(
            None,
            &env_of(&[
                ("WORLDSTORE_ROLES", "merchant"),
                ("PORT", "3000"),
                ("RPC_PROVIDER_URL", "http://127.0.0.1:8545"),
                ("WALLET_PRIVATE_KEY", "0x11"),
                ("WORLDSTORE_DATA_KEY", "00"),
                ("CROSSMINT_API_KEY", "sk_staging_x"),
                ("CROSSMINT_ENVIRONMENT", "production"),
                (
                    "CROSSMINT_WALLET_LOCATOR",
                    "email:ops@example.com:evm-smart-wallet",
                ),
                ("ORDER_FEE_PERCENTAGE", "2.5"),
                ("ORDER_PAYMENT_TIMEOUT_MINUTES", "15"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.roles, vec![Role::Merchant]);
        assert_eq!(settings.port, 3000);
        assert_eq!(settings.fee.basis_points(), 250);
        assert_eq!(settings.payment_timeout_minutes, 15);
        let crossmint = settings.crossmint.unwrap();
        assert_eq!(crossmint.base_url, "https://www.crossmint.com/api");
        // Secrets never print.
        assert!(!format!("{:?}", crossmint.api_key).contains("sk_staging_x"));
    }

    #[test]
    fn bad_values_are_all_reported_with_their_setting() {
        let dir = std::env::temp_dir().join(format!("ws-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("worldstore.toml");
        std::fs::write(
            &path,
            "roles = [\"merchant\", \"cashier\"]\n[chain]\nnetwork = \"moon\"\ntoken = \"0x12\"\n[merchant]\ncommerce = \"sandbox\"\n",
        )
        .unwrap();
        let problems = Settings::load(
            Some(&path),
            &env_of(&[("ORDER_FEE_PERCENTAGE", "lots"), ("PORT", "eighty")]),
        )
        .unwrap_err()
        .0
        .join("\n");
        for needle in [
            "cashier",
            "moon",
            "chain.token",
            "ORDER_FEE_PERCENTAGE",
            "PORT",
        ] {
            assert!(
                problems.contains(needle),
                "{needle} missing from:\n{problems}"
            );
        }
        let unknown = dir.join("unknown.toml");
        std::fs::write(&unknown, "colour = \"blue\"\n").unwrap();
        let problems = Settings::load(Some(&unknown), &env_of(&[])).unwrap_err();
        assert!(problems.0[0].contains("colour"), "{problems}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const MASTER: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";

    fn agent_only(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut env = vec![
            ("WORLDSTORE_ROLES", "agent"),
            ("WORLDSTORE_DATA_KEY", "00"),
            ("RPC_PROVIDER_URL", "http://127.0.0.1:8545"),
            ("WORLDSTORE_BRAIN", "offline"),
            ("SERPAPI_API_KEY", "serp-secret"),
            ("WORLDSTORE_MASTER_SECRET", MASTER),
            ("WORLDSTORE_API_URL", "http://127.0.0.1:8402"),
            ("WORLDSTORE_MESSENGERS", "web,xmtp"),
            ("XMTP_WALLET_KEY", "0x22"),
            ("XMTP_DB_ENCRYPTION_KEY", "33"),
        ];
        env.extend_from_slice(extra);
        env
    }

    fn pay_to_file(dir_name: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("ws-{dir_name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.toml");
        std::fs::write(
            &path,
            "[merchant]\npay_to = \"0x5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f\"\n[agent]\nper_order_limit = \"25\"\n",
        )
        .unwrap();
        (dir, path)
    }

    #[test]
    fn a_complete_agent_configuration_loads_with_its_messengers_and_limits() {
        let (dir, path) = pay_to_file("agent-ok");
        let settings = Settings::load(Some(&path), &env_of(&agent_only(&[]))).unwrap();
        assert_eq!(settings.roles, vec![Role::Agent]);
        assert_eq!(settings.messengers, vec!["web", "xmtp"]);
        assert_eq!(settings.per_order_limit, UsdcAmount::from_usdc(25));
        assert_eq!(settings.per_day_limit, UsdcAmount::from_usdc(1000));
        assert_eq!(
            settings.xmtp_db_directory(),
            PathBuf::from(".worldstore/xmtp")
        );
        assert!(!format!("{settings:?}").contains(&MASTER[2..]));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_agent_role_names_each_missing_setting() {
        let problems = Settings::load(
            None,
            &env_of(&[
                ("WORLDSTORE_ROLES", "agent"),
                ("WORLDSTORE_DATA_KEY", "00"),
                ("WORLDSTORE_MESSENGERS", "xmtp"),
            ]),
        )
        .unwrap_err()
        .to_string();
        for needle in [
            "ANTHROPIC_API_KEY",
            "SERPAPI_API_KEY",
            "WORLDSTORE_MASTER_SECRET",
            "RPC_PROVIDER_URL",
            "agent.merchant_url",
            "merchant.pay_to",
            "XMTP_WALLET_KEY",
            "XMTP_DB_ENCRYPTION_KEY",
        ] {
            assert!(
                problems.contains(needle),
                "{needle} missing from:\n{problems}"
            );
        }
        // The agent alone needs no treasury key.
        assert!(!problems.contains("FACILITATOR_PRIVATE_KEY"), "{problems}");
    }

    #[test]
    fn bad_agent_values_are_reported_together() {
        let (dir, path) = pay_to_file("agent-bad");
        let problems = Settings::load(
            Some(&path),
            &env_of(&agent_only(&[
                ("WORLDSTORE_MASTER_SECRET", "not-hex"),
                ("WORLDSTORE_MESSENGERS", "web,pigeon"),
                ("WORLDSTORE_WALLET_SCHEME", "fancy"),
            ])),
        )
        .unwrap_err()
        .0
        .join("\n");
        for needle in ["WORLDSTORE_MASTER_SECRET", "pigeon", "fancy"] {
            assert!(
                problems.contains(needle),
                "{needle} missing from:\n{problems}"
            );
        }
        // The secret's value is never echoed.
        assert!(!problems.contains("not-hex"), "{problems}");
        std::fs::write(
            &path,
            "[merchant]\npay_to = \"0x5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f\"\n[agent]\nmessengers = []\n",
        )
        .unwrap();
        // An empty variable is unset: the file's empty list stands.
        let problems = Settings::load(
            Some(&path),
            &env_of(&agent_only(&[("WORLDSTORE_MESSENGERS", "")])),
        )
        .unwrap_err()
        .to_string();
        assert!(problems.contains("agent.messengers is empty"), "{problems}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn one_secret_cannot_be_both_the_treasury_key_and_the_users_master_secret() {
        let problems = Settings::load(
            None,
            &env_of(&agent_only(&[
                ("WORLDSTORE_ROLES", "all"),
                ("WORLDSTORE_MASTER_SECRET", ""),
                ("WALLET_PRIVATE_KEY", MASTER),
                ("WORLDSTORE_COMMERCE", "sandbox"),
            ])),
        )
        .unwrap_err()
        .to_string();
        assert!(problems.contains("are the same secret"), "{problems}");
    }
}
