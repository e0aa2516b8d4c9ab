//! The facilitator over HTTP, on the embedded chain (the sandbox token) and a SQLite store:
//! real requests, real transfers, real nonce reservations.

use alloy_primitives::{Address, U256};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use worldstore::facilitator::{Clock, Facilitator, router};
use worldstore_adapters::chain_embedded::{EmbeddedChain, EmbeddedChainConfig};
use worldstore_adapters::store::{DataKey, SqlStore};
use worldstore_domain::UsdcAmount;
use worldstore_domain::eip3009::{LocalSigner, Nonce};
use worldstore_domain::network::Network;
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::x402::client::{PaymentChallenge, sign_payment};
use worldstore_domain::x402::{
    FacilitatorRequest, PaymentOffer, PaymentPayload, PaymentRequiredAnswer, PaymentRequirements,
    SettleResponse, SupportedResponse, VerifyPolicy, VerifyResponse,
};

const START: u64 = 1_800_000_000;
const TREASURY: Address = Address::repeat_byte(0x7a);
const PRICE: u128 = 1_250_000;

struct Running {
    url: String,
    client: reqwest::Client,
    facilitator: Arc<Facilitator<EmbeddedChain, SqlStore>>,
    buyer: LocalSigner,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start() -> Running {
    let now = Arc::new(AtomicU64::new(START));
    let clock: Clock = {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let gas_payer = Address::repeat_byte(0x6a);
    let chain = EmbeddedChain::new(EmbeddedChainConfig::new(gas_payer, clock.clone()))
        .expect("sandbox chain");
    let buyer = LocalSigner::from_bytes([0x42; 32]).expect("key");
    chain
        .mint(buyer.address(), U256::from(10_000_000u64))
        .expect("faucet");

    let dir = std::env::temp_dir().join(format!(
        "worldstore-facilitator-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.join("store.db").display());
    let store = SqlStore::open(&url, &DataKey::from_bytes([7; 32]))
        .await
        .expect("store");

    let policy = VerifyPolicy::new(vec![Network::BaseSepolia.usdc()]);
    let facilitator = Arc::new(Facilitator::new(chain, store, policy, clock));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let app = router(facilitator.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Running {
        url: format!("http://{address}"),
        client: reqwest::Client::new(),
        facilitator,
        buyer,
        _dir: TempDir(dir),
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

fn offer(amount: u128) -> PaymentOffer {
    PaymentOffer {
        resource: "http://127.0.0.1/paid".into(),
        description: "A paid resource".into(),
        mime_type: "application/json".into(),
        token: Network::BaseSepolia.usdc(),
        amount: UsdcAmount::from_atomic(amount),
        pay_to: TREASURY,
        max_timeout_seconds: 300,
        extra: Default::default(),
    }
}

/// A facilitator request for a payment signed by `buyer` for `offer`, in x402 `version`.
fn request(
    buyer: &LocalSigner,
    offer: &PaymentOffer,
    version: u8,
    nonce: u8,
) -> FacilitatorRequest {
    let answer = PaymentRequiredAnswer::new("Payment required", std::slice::from_ref(offer));
    let (challenge, requirements) = match version {
        1 => (
            PaymentChallenge::V1(answer.body),
            PaymentRequirements::V1(offer.requirements_v1()),
        ),
        _ => (
            PaymentChallenge::V2(answer.v2),
            PaymentRequirements::V2(offer.requirements_v2()),
        ),
    };
    let payment = sign_payment(
        buyer,
        &challenge,
        0,
        &offer.token,
        Nonce::new([nonce; 32]),
        START,
    )
    .expect("offer");
    FacilitatorRequest {
        x402_version: u64::from(version),
        payment_payload: payment,
        payment_requirements: requirements,
    }
}

impl Running {
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &FacilitatorRequest,
    ) -> T {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.status(),
            200,
            "{path} answers 200 for every well-formed request"
        );
        response.json().await.expect("json answer")
    }

    async fn balance(&self, owner: Address) -> U256 {
        self.facilitator
            .chain()
            .usdc_balance(owner)
            .await
            .expect("balance")
    }
}

#[tokio::test]
async fn supported_lists_our_network_in_both_versions_and_our_signer() {
    let run = start().await;
    let supported: SupportedResponse = run
        .client
        .get(format!("{}/supported", run.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<(u64, &str)> = supported
        .kinds
        .iter()
        .map(|k| (k.x402_version, k.network.as_str()))
        .collect();
    assert_eq!(kinds, vec![(1, "base-sepolia"), (2, "eip155:84532")]);
    assert_eq!(
        supported.signers["eip155:*"][0],
        Address::repeat_byte(0x6a).to_checksum(None)
    );
}

#[tokio::test]
async fn a_valid_payment_verifies_then_settles_and_moves_exactly_the_amount_once() {
    let run = start().await;
    for version in [1u8, 2] {
        let request = request(&run.buyer, &offer(PRICE), version, version);
        let verdict: VerifyResponse = run.post("/verify", &request).await;
        assert!(verdict.is_valid, "v{version}: {verdict:?}");
        assert_eq!(verdict.payer, Some(run.buyer.address()));

        let before = (
            run.balance(run.buyer.address()).await,
            run.balance(TREASURY).await,
        );
        let settled: SettleResponse = run.post("/settle", &request).await;
        assert!(settled.success, "v{version}: {settled:?}");
        assert_eq!(settled.transaction.len(), 66);
        assert_eq!(
            settled.network,
            if version == 1 {
                "base-sepolia"
            } else {
                "eip155:84532"
            }
        );
        let after = (
            run.balance(run.buyer.address()).await,
            run.balance(TREASURY).await,
        );
        assert_eq!(before.0 - after.0, U256::from(PRICE));
        assert_eq!(after.1 - before.1, U256::from(PRICE));

        // The same header again: refused, and no second transfer.
        let again: SettleResponse = run.post("/settle", &request).await;
        assert!(!again.success);
        assert_eq!(
            again.error_reason.as_ref().map(|r| r.as_str()),
            Some("invalid_transaction_state")
        );
        assert_eq!(run.balance(run.buyer.address()).await, after.0);
    }
}

#[tokio::test]
async fn concurrent_settles_of_one_authorization_transfer_once() {
    let run = Arc::new(start().await);
    let request = Arc::new(request(&run.buyer, &offer(PRICE), 2, 9));
    let before = run.balance(run.buyer.address()).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (run, request) = (run.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            run.post::<SettleResponse>("/settle", &request).await
        }));
    }
    let mut hashes = std::collections::HashSet::new();
    for task in tasks {
        let answer = task.await.unwrap();
        if answer.success {
            hashes.insert(answer.transaction);
        }
    }
    assert!(hashes.len() <= 1, "one transaction at most: {hashes:?}");
    assert_eq!(
        before - run.balance(run.buyer.address()).await,
        U256::from(PRICE),
        "exactly one transfer"
    );
}

#[tokio::test]
async fn refused_payments_are_200_with_the_spec_reason() {
    let run = start().await;
    // A tampered signature.
    let mut tampered = request(&run.buyer, &offer(PRICE), 2, 3);
    if let PaymentPayload::V2(p) = &mut tampered.payment_payload {
        let last = p.payload.signature.pop().unwrap();
        p.payload
            .signature
            .push(if last == '0' { '1' } else { '0' });
    }
    let verdict: VerifyResponse = run.post("/verify", &tampered).await;
    assert_eq!(
        verdict.invalid_reason.unwrap().as_str(),
        "invalid_exact_evm_payload_signature"
    );

    // More than the buyer holds.
    let dear = request(&run.buyer, &offer(50_000_000), 2, 4);
    let verdict: VerifyResponse = run.post("/verify", &dear).await;
    assert_eq!(
        verdict.invalid_reason.unwrap().as_str(),
        "insufficient_funds"
    );
    let settled: SettleResponse = run.post("/settle", &dear).await;
    assert_eq!(settled.error_reason.unwrap().as_str(), "insufficient_funds");

    // A v1 payment for less than the amount: v1's spelling of the value rule.
    let mut short = request(&run.buyer, &offer(PRICE), 1, 5);
    if let PaymentRequirements::V1(r) = &mut short.payment_requirements {
        r.max_amount_required += U256::from(1);
    }
    let verdict: serde_json::Value = run.post("/verify", &short).await;
    assert_eq!(
        verdict["invalidReason"], "invalid_exact_evm_payload_authorization_value",
        "on the wire"
    );
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_reason() {
    let run = start().await;
    for body in [
        "",
        "not json",
        "{}",
        r#"{"x402Version":2,"paymentPayload":{"x402Version":2}}"#,
    ] {
        let response = run
            .client
            .post(format!("{}/verify", run.url))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body:?}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .starts_with("body is not an x402 facilitator request")
        );
    }
}
