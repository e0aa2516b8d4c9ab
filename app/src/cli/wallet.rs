//! `worldstore wallet address --inbox <ID> [--scheme default|legacy]`.

use anyhow::Context as _;
use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use worldstore_domain::wallet::{DerivationScheme, MasterSecret, derive_wallet};

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Print the address of a user's wallet, derived from WALLET_PRIVATE_KEY and the inbox id.
    Address {
        /// The user's inbox id (XMTP inbox id, or a web chat user id).
        #[arg(long)]
        inbox: String,
        /// `default` (HKDF-SHA256, domain-separated) or `legacy` (the original system's).
        #[arg(long, default_value = "default")]
        scheme: DerivationScheme,
        /// The master secret. Read from the environment only, so it never lands in shell history.
        #[arg(
            env = "WALLET_PRIVATE_KEY",
            hide_env_values = true,
            hide = true,
            long = "master-secret-from-env-only"
        )]
        master_secret: Option<SecretString>,
    },
}

pub fn run(command: WalletCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        WalletCommand::Address {
            inbox,
            scheme,
            master_secret,
        } => {
            let secret = master_secret.context(
                "WALLET_PRIVATE_KEY is not set: export the master secret (32 bytes of hex) first",
            )?;
            let master = MasterSecret::new(secret.expose_secret().to_owned());
            let wallet = derive_wallet(&master, &inbox, scheme)
                .with_context(|| format!("cannot derive the wallet of inbox {inbox:?}"))?;
            writeln!(out, "{}", wallet.address())?;
            Ok(())
        }
    }
}
