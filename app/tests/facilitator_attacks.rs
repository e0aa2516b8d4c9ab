//! Attacks on our facilitator over HTTP (`POST /verify`, `POST /settle`), on a private anvil
//! running Circle's FiatTokenV2_2, through `RpcChain` and a SQLite store: the real wire, the
//! real token, the real nonce reservations.
//!
//! Every attack must fail safely: a 200 with the spec reason code (or a 400 for a body that
//! is not a facilitator request), never a 500, and never a second transfer; transfers are
//! counted from the token's `Transfer` logs on chain, and balances are checked.

#[path = "../../adapters/tests/anvil/mod.rs"]
mod anvil;

use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::sol;
use alloy::sol_types::{SolCall, SolEvent};
use alloy_primitives::{Address, B256, U256, address, keccak256};
use anvil::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use worldstore::facilitator::{Clock, Facilitator, router};
use worldstore_adapters::chain_rpc::{RpcChain, RpcChainConfig};
use worldstore_adapters::store::{DataKey, SqlStore};
use worldstore_domain::eip3009::{Authorization, Eip712Domain, LocalSigner, Nonce};
use worldstore_domain::network::UsdcDeployment;

const TREASURY: Address = address!("0x7EA5000000000000000000000000000000007EA5");
const MALLORY: Address = address!("0x0BAD00000000000000000000000000000000BAD0");
/// $1.25 in atomic units.
const PRICE: u64 = 1_250_000;
/// secp256k1's group order n.
const CURVE_ORDER: U256 = U256::from_be_bytes([
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
]);

sol! {
    interface IFiatTokenAttacks {
        function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
        function transfer(address to, uint256 value) external returns (bool);
        event Transfer(address indexed from, address indexed to, uint256 value);
    }
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// anvil + FiatTokenV2_2 (100 USDC for the payer) + our facilitator on a free port.
struct World {
    /// `None` once the test killed it.
    anvil: Option<Anvil>,
    token: UsdcDeployment,
    rpc: DynProvider,
    url: String,
    http: reqwest::Client,
    payer: LocalSigner,
    _dir: TempDir,
}

async fn world() -> Option<World> {
    world_with(|_| {}).await
}

async fn world_with(edit: impl FnOnce(&mut RpcChainConfig)) -> Option<World> {
    let anvil = Anvil::spawn()?;
    let payer = signer(BUYER_KEY);
    let token = deploy_fiat_token(&anvil.url, &[(payer.address(), usdc(100))]).await;
    let mut config = RpcChainConfig::new(&anvil.url, token.clone(), signer(FACILITATOR_KEY));
    config.poll_interval = Duration::from_millis(20);
    config.receipt_timeout = Duration::from_secs(10);
    edit(&mut config);
    let chain = RpcChain::connect(config).await.expect("connects");

    let dir = std::env::temp_dir().join(format!(
        "worldstore-attacks-{}-{}",
        std::process::id(),
        unique()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = SqlStore::open(
        &format!("sqlite://{}?mode=rwc", dir.join("store.db").display()),
        &DataKey::from_bytes([9; 32]),
    )
    .await
    .expect("store");
    let clock: Clock = Arc::new(unix_now);
    let policy = worldstore_domain::x402::VerifyPolicy::new(vec![token.clone()]);
    let facilitator = Arc::new(Facilitator::new(chain, store, policy, clock));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router(facilitator)).await });
    let rpc = ProviderBuilder::new()
        .connect_http(anvil.url.parse().expect("url"))
        .erased();
    Some(World {
        anvil: Some(anvil),
        token,
        rpc,
        url: format!("http://{address}"),
        http: reqwest::Client::new(),
        payer,
        _dir: TempDir(dir),
    })
}

fn unique() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// v2 requirements for `amount` of `token` to `pay_to`, as an SDK resource server writes them.
fn requirements(token: &UsdcDeployment, amount: u64, pay_to: Address) -> Value {
    json!({
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": amount.to_string(),
        "asset": token.address.to_checksum(None),
        "payTo": pay_to.to_checksum(None),
        "maxTimeoutSeconds": 300,
        "extra": {"name": "USDC", "version": "2"},
    })
}

fn authorization(
    from: Address,
    to: Address,
    value: u64,
    window: (u64, u64),
    nonce: u8,
) -> Authorization {
    Authorization {
        from,
        to,
        value: U256::from(value),
        valid_after: U256::from(window.0),
        valid_before: U256::from(window.1),
        nonce: Nonce::new([nonce; 32]),
    }
}

fn open_window() -> (u64, u64) {
    let now = unix_now();
    (now - 600, now + 300)
}

fn sign(signer: &LocalSigner, domain: &Eip712Domain, authorization: &Authorization) -> String {
    signer
        .sign_hash(authorization.signing_hash(domain))
        .to_hex()
}

/// A facilitator request: `accepted` is the requirements, as the SDK clients send it.
fn request(requirements: &Value, authorization: &Authorization, signature: &str) -> Value {
    json!({
        "x402Version": 2,
        "paymentPayload": {
            "x402Version": 2,
            "resource": {"url": "http://127.0.0.1:4021/paid"},
            "accepted": requirements,
            "payload": {"signature": signature, "authorization": authorization},
        },
        "paymentRequirements": requirements,
    })
}

impl World {
    /// A valid payment of PRICE from the payer to TREASURY with nonce `nonce`.
    fn valid(&self, nonce: u8) -> Value {
        let auth = authorization(self.payer.address(), TREASURY, PRICE, open_window(), nonce);
        let signature = sign(&self.payer, &self.token.eip712_domain(), &auth);
        request(
            &requirements(&self.token, PRICE, TREASURY),
            &auth,
            &signature,
        )
    }

    async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the facilitator answers");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// POSTs `body`, requires a 200 and returns the JSON answer.
    async fn post(&self, path: &str, body: &Value) -> Value {
        let (status, text) = self.post_raw(path, body.to_string()).await;
        assert_eq!(status, 200, "{path} answered {status}: {text}");
        serde_json::from_str(&text).expect("JSON answer")
    }

    async fn verify(&self, body: &Value) -> Value {
        self.post("/verify", body).await
    }

    async fn settle(&self, body: &Value) -> Value {
        self.post("/settle", body).await
    }

    /// Asserts `/verify` and then `/settle` refuse `body` with `code`, moving nothing.
    async fn refused_everywhere(&self, what: &str, body: &Value, code: &str) {
        let verdict = self.verify(body).await;
        assert_eq!(verdict["isValid"], false, "{what}: {verdict}");
        assert_eq!(verdict["invalidReason"], code, "{what}: {verdict}");
        let settled = self.settle(body).await;
        assert_eq!(settled["success"], false, "{what}: {settled}");
        assert_eq!(settled["errorReason"], code, "{what}: {settled}");
        assert_eq!(settled["transaction"], "", "{what}: {settled}");
    }

    async fn balance(&self, owner: Address) -> U256 {
        // balanceOf(owner): selector 0x70a08231.
        let mut data = vec![0x70, 0xa0, 0x82, 0x31];
        data.extend_from_slice(owner.into_word().as_slice());
        let call = alloy::rpc::types::TransactionRequest::default()
            .to(self.token.address)
            .input(data.into());
        let out = self.rpc.call(call).await.expect("balanceOf");
        U256::from_be_slice(&out)
    }

    /// `Transfer(from, to, _)` logs of the token on the whole chain.
    async fn transfers(&self, from: Address, to: Address) -> Vec<U256> {
        let filter = Filter::new()
            .address(self.token.address)
            .event_signature(IFiatTokenAttacks::Transfer::SIGNATURE_HASH)
            .topic1(from.into_word())
            .topic2(to.into_word())
            .from_block(0u64);
        self.rpc
            .get_logs(&filter)
            .await
            .expect("logs")
            .iter()
            .map(|log| U256::from_be_slice(log.data().data.as_ref()))
            .collect()
    }

    /// Sends a transaction to the token signed by `key` and waits for it to be mined.
    async fn send_to_token(&self, key: &str, data: Vec<u8>) {
        let anvil = self.anvil.as_ref().expect("anvil is up");
        let provider = wallet_provider(&anvil.url, key);
        let receipt = provider
            .send_transaction(
                alloy::rpc::types::TransactionRequest::default()
                    .to(self.token.address)
                    .input(data.into()),
            )
            .await
            .expect("accepted")
            .get_receipt()
            .await
            .expect("mined");
        assert!(receipt.status(), "the attacker's transaction succeeded");
    }
}

fn decoded(body: &Value) -> Authorization {
    serde_json::from_value(body["paymentPayload"]["payload"]["authorization"].clone())
        .expect("authorization")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_header_settled_twice_transfers_once() {
    let Some(w) = world().await else { return };
    let body = w.valid(1);
    let verdict = w.verify(&body).await;
    assert_eq!(verdict["isValid"], true, "{verdict}");
    let first = w.settle(&body).await;
    assert_eq!(first["success"], true, "{first}");
    assert_eq!(first["amount"], PRICE.to_string());

    for _ in 0..3 {
        let again = w.settle(&body).await;
        assert_eq!(again["success"], false, "{again}");
        assert_eq!(again["errorReason"], "invalid_transaction_state", "{again}");
        let verdict = w.verify(&body).await;
        assert_eq!(verdict["isValid"], false, "{verdict}");
        assert_eq!(verdict["invalidReason"], "invalid_transaction_state");
    }
    let payer = w.payer.address();
    assert_eq!(w.transfers(payer, TREASURY).await, vec![U256::from(PRICE)]);
    assert_eq!(w.balance(TREASURY).await, U256::from(PRICE));
    assert_eq!(w.balance(payer).await, usdc(100) - U256::from(PRICE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_settles_of_one_authorization_transfer_exactly_once() {
    let Some(w) = world().await else { return };
    let w = Arc::new(w);
    for round in 0..3u8 {
        let body = Arc::new(w.valid(10 + round));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (w, body) = (w.clone(), body.clone());
                tokio::spawn(async move { w.settle(&body).await })
            })
            .collect();
        let mut hashes = std::collections::BTreeSet::new();
        for task in tasks {
            let answer = task.await.expect("no panic");
            if answer["success"] == true {
                hashes.insert(answer["transaction"].as_str().unwrap().to_owned());
            } else {
                // The losers are refused (the nonce is used) or join the winner's settlement;
                // none may report an outage: nothing is down.
                assert_eq!(
                    answer["errorReason"], "invalid_transaction_state",
                    "round {round}: {answer}"
                );
            }
        }
        assert_eq!(
            hashes.len(),
            1,
            "round {round}: one transaction: {hashes:?}"
        );
    }
    let payer = w.payer.address();
    assert_eq!(
        w.transfers(payer, TREASURY).await,
        vec![U256::from(PRICE); 3],
        "exactly one transfer per authorization"
    );
    assert_eq!(w.balance(payer).await, usdc(100) - U256::from(3 * PRICE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn substituted_amount_recipient_asset_network_and_chain_id_are_refused() {
    let Some(w) = world().await else { return };
    let payer = w.payer.address();
    let domain = w.token.eip712_domain();
    let dear = requirements(&w.token, 2 * PRICE, TREASURY);

    // Amount: a cheap authorization offered for a dear order.
    let cheap = authorization(payer, TREASURY, PRICE, open_window(), 1);
    let body = request(&dear, &cheap, &sign(&w.payer, &domain, &cheap));
    w.refused_everywhere(
        "cheap authorization",
        &body,
        "invalid_exact_evm_payload_authorization_value_mismatch",
    )
    .await;
    // ... with its value raised after signing.
    let mut raised = body.clone();
    raised["paymentPayload"]["payload"]["authorization"]["value"] = json!((2 * PRICE).to_string());
    w.refused_everywhere(
        "value raised after signing",
        &raised,
        "invalid_exact_evm_payload_signature",
    )
    .await;
    // ... or `accepted` naming a cheaper amount than the offer.
    let mut cheaper_accepted = w.valid(2);
    cheaper_accepted["paymentRequirements"]["amount"] = json!((2 * PRICE).to_string());
    w.refused_everywhere(
        "accepted amount differs",
        &cheaper_accepted,
        "invalid_exact_evm_payload_authorization_value_mismatch",
    )
    .await;

    // Recipient: the authorization pays Mallory.
    let to_mallory = authorization(payer, MALLORY, PRICE, open_window(), 3);
    let body = request(
        &requirements(&w.token, PRICE, TREASURY),
        &to_mallory,
        &sign(&w.payer, &domain, &to_mallory),
    );
    w.refused_everywhere(
        "pays Mallory",
        &body,
        "invalid_exact_evm_payload_recipient_mismatch",
    )
    .await;
    // ... or the recipient rewritten after signing.
    let mut rewritten = w.valid(4);
    rewritten["paymentPayload"]["payload"]["authorization"]["to"] = json!(MALLORY);
    rewritten["paymentPayload"]["accepted"]["payTo"] = json!(MALLORY);
    rewritten["paymentRequirements"]["payTo"] = json!(MALLORY);
    w.refused_everywhere(
        "recipient rewritten",
        &rewritten,
        "invalid_exact_evm_payload_signature",
    )
    .await;

    // Asset: requirements naming another contract than the token we settle.
    let mut other_asset = w.valid(5);
    for place in ["/paymentPayload/accepted", "/paymentRequirements"] {
        other_asset.pointer_mut(place).unwrap()["asset"] = json!(MALLORY);
    }
    w.refused_everywhere(
        "another asset",
        &other_asset,
        "invalid_payment_requirements",
    )
    .await;
    // ... or an authorization signed for another token (verifyingContract).
    let auth = authorization(payer, TREASURY, PRICE, open_window(), 6);
    let other_token = Eip712Domain {
        verifying_contract: MALLORY,
        ..domain.clone()
    };
    let body = request(
        &requirements(&w.token, PRICE, TREASURY),
        &auth,
        &sign(&w.payer, &other_token, &auth),
    );
    w.refused_everywhere(
        "signed for another token",
        &body,
        "invalid_exact_evm_payload_signature",
    )
    .await;

    // Network: requirements on Base mainnet, or `accepted` on another network.
    let mut mainnet = w.valid(7);
    for place in ["/paymentPayload/accepted", "/paymentRequirements"] {
        mainnet.pointer_mut(place).unwrap()["network"] = json!("eip155:8453");
    }
    w.refused_everywhere("Base mainnet", &mainnet, "invalid_network")
        .await;
    let mut accepted_elsewhere = w.valid(8);
    accepted_elsewhere["paymentPayload"]["accepted"]["network"] = json!("eip155:1");
    w.refused_everywhere(
        "accepted on mainnet",
        &accepted_elsewhere,
        "invalid_network",
    )
    .await;

    // Chain id: an authorization signed for the same token address on another chain.
    let auth = authorization(payer, TREASURY, PRICE, open_window(), 9);
    let other_chain = Eip712Domain {
        chain_id: 8453,
        ..domain.clone()
    };
    let body = request(
        &requirements(&w.token, PRICE, TREASURY),
        &auth,
        &sign(&w.payer, &other_chain, &auth),
    );
    w.refused_everywhere(
        "signed for chain 8453",
        &body,
        "invalid_exact_evm_payload_signature",
    )
    .await;

    assert!(w.transfers(payer, TREASURY).await.is_empty());
    assert!(w.transfers(payer, MALLORY).await.is_empty());
    assert_eq!(w.balance(payer).await, usdc(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_not_yet_valid_and_overlong_windows_are_refused() {
    let Some(w) = world().await else { return };
    let payer = w.payer.address();
    let domain = w.token.eip712_domain();
    let offer = requirements(&w.token, PRICE, TREASURY);
    let now = unix_now();
    for (what, window, nonce, code) in [
        (
            "expired",
            (now - 600, now - 1),
            1,
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
        (
            "expires before it can be mined",
            (now - 600, now + 2),
            2,
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
        (
            "not yet valid",
            (now + 3600, now + 3900),
            3,
            "invalid_exact_evm_payload_authorization_valid_after",
        ),
        (
            "valid for a day against a 300 s offer",
            (now - 600, now + 86_400),
            4,
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
        (
            "valid forever",
            (0, u64::MAX),
            5,
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
    ] {
        let auth = authorization(payer, TREASURY, PRICE, window, nonce);
        let body = request(&offer, &auth, &sign(&w.payer, &domain, &auth));
        w.refused_everywhere(what, &body, code).await;
    }
    assert!(w.transfers(payer, TREASURY).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_s_tampered_and_malformed_signatures_are_refused_with_the_signature_code() {
    let Some(w) = world().await else { return };
    let valid = w.valid(1);
    let signature = valid["paymentPayload"]["payload"]["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let bytes = alloy_primitives::hex::decode(&signature).unwrap();
    assert_eq!(bytes.len(), 65);

    // The malleable twin (r, n - s, flipped v) recovers to the same payer; refuse it anyway.
    let s = U256::from_be_slice(&bytes[32..64]);
    let mut high = bytes.clone();
    high[32..64].copy_from_slice(&(CURVE_ORDER - s).to_be_bytes::<32>());
    high[64] = if bytes[64] == 27 { 28 } else { 27 };
    // A byte of r flipped; s flipped; v out of range; v in {0, 1} is fine (see below).
    let mut r_flipped = bytes.clone();
    r_flipped[5] ^= 0x40;
    let mut s_flipped = bytes.clone();
    s_flipped[40] ^= 0x01;
    let mut bad_v = bytes.clone();
    bad_v[64] = 29;
    let hex = |b: &[u8]| format!("0x{}", alloy_primitives::hex::encode(b));
    let cases = [
        ("high s", hex(&high)),
        ("r tampered", hex(&r_flipped)),
        ("s tampered", hex(&s_flipped)),
        ("v = 29", hex(&bad_v)),
        ("empty", String::new()),
        ("0x only", "0x".to_owned()),
        ("no 0x", signature.trim_start_matches("0x").to_owned()),
        ("not hex", format!("0x{}", "zz".repeat(65))),
        ("odd length", format!("{signature}0")),
        ("too short", hex(&bytes[..30])),
        ("too long (1 KiB)", hex(&[0x11; 1024])),
        ("all zero", hex(&[0; 65])),
    ];
    for (what, tampered) in cases {
        let mut body = valid.clone();
        body["paymentPayload"]["payload"]["signature"] = json!(tampered);
        w.refused_everywhere(what, &body, "invalid_exact_evm_payload_signature")
            .await;
    }
    // v as 0/1 is the same signature and is accepted (x402.md): the valid control.
    let mut v01 = bytes.clone();
    v01[64] -= 27;
    let mut body = valid.clone();
    body["paymentPayload"]["payload"]["signature"] = json!(hex(&v01));
    let verdict = w.verify(&body).await;
    assert_eq!(verdict["isValid"], true, "{verdict}");
    assert!(
        w.transfers(w.payer.address(), TREASURY).await.is_empty(),
        "nothing moved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_400_never_500() {
    use base64::Engine as _;
    let Some(w) = world().await else { return };
    let valid = w.valid(1);
    let base64 = base64::engine::general_purpose::STANDARD.encode(valid.to_string());
    let mut bad_address = valid.clone();
    bad_address["paymentPayload"]["payload"]["authorization"]["from"] = json!("0xnot-an-address");
    let mut short_nonce = valid.clone();
    short_nonce["paymentPayload"]["payload"]["authorization"]["nonce"] = json!("0x1234");
    let mut negative = valid.clone();
    negative["paymentPayload"]["payload"]["authorization"]["value"] = json!("-1");
    let mut huge = valid.clone();
    huge["paymentPayload"]["payload"]["authorization"]["value"] = json!("9".repeat(100));
    let mut numeric = valid.clone();
    numeric["paymentPayload"]["payload"]["authorization"]["value"] = json!(1_250_000);
    let mut no_payload = valid.clone();
    no_payload["paymentPayload"]
        .as_object_mut()
        .unwrap()
        .remove("payload");
    let mut signature_number = valid.clone();
    signature_number["paymentPayload"]["payload"]["signature"] = json!(12);
    let text = valid.to_string();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("base64 of the JSON", base64.clone().into_bytes()),
        (
            "JSON string of base64",
            json!(base64).to_string().into_bytes(),
        ),
        ("truncated", text.as_bytes()[..text.len() / 2].to_vec()),
        ("not UTF-8", vec![0xff, 0xfe, b'{', 0x80]),
        ("array", b"[1,2,3]".to_vec()),
        ("null", b"null".to_vec()),
        ("empty object", b"{}".to_vec()),
        ("bad address", bad_address.to_string().into_bytes()),
        ("short nonce", short_nonce.to_string().into_bytes()),
        ("negative value", negative.to_string().into_bytes()),
        ("value above 2^256", huge.to_string().into_bytes()),
        ("value as a number", numeric.to_string().into_bytes()),
        ("no payload", no_payload.to_string().into_bytes()),
        (
            "signature as a number",
            signature_number.to_string().into_bytes(),
        ),
    ];
    for path in ["/verify", "/settle"] {
        for (what, body) in &bodies {
            let (status, text) = w.post_raw(path, body.clone()).await;
            assert_eq!(status, 400, "{path} {what}: {text}");
            let error: Value = serde_json::from_str(&text).expect("JSON error");
            assert!(error["error"].is_string(), "{path} {what}: {text}");
        }
        // Larger than any payment: refused before parsing, still not a 500. The server may
        // answer 413 and close before the client has written the whole body; the client
        // then sees the connection end instead of the answer. Either way: refused.
        let answer = w
            .http
            .post(format!("{}{path}", w.url))
            .header("content-type", "application/json")
            .body(vec![b' '; 1 << 20])
            .send()
            .await;
        match answer {
            Ok(response) => {
                assert_eq!(response.status().as_u16(), 413, "{path} 1 MiB body");
                // The rest of the body is still on the wire: the server closes the connection
                // and says so, so the client never reuses it for the next request.
                assert_eq!(
                    response.headers().get("connection").map(|v| v.as_bytes()),
                    Some(&b"close"[..]),
                    "{path} 1 MiB body"
                );
            }
            Err(error) => assert!(
                error.is_request() || error.is_body(),
                "{path} 1 MiB body: {error}"
            ),
        }
    }
    assert!(w.transfers(w.payer.address(), TREASURY).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_cancelled_between_verify_and_settle_is_refused_and_moves_nothing() {
    let Some(w) = world().await else { return };
    let body = w.valid(1);
    let verdict = w.verify(&body).await;
    assert_eq!(verdict["isValid"], true, "{verdict}");

    // The payer cancels it on chain (EIP-3009 cancelAuthorization, signed by the payer,
    // sent by anyone).
    let auth = decoded(&body);
    let typehash = keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");
    let mut words = [0u8; 96];
    words[..32].copy_from_slice(typehash.as_slice());
    words[44..64].copy_from_slice(auth.from.as_slice());
    words[64..].copy_from_slice(auth.nonce.as_b256().as_slice());
    let cancel = w
        .payer
        .sign_hash(w.token.eip712_domain().signing_hash(keccak256(words)));
    w.send_to_token(
        DEPLOYER_KEY,
        IFiatTokenAttacks::cancelAuthorizationCall {
            authorizer: auth.from,
            nonce: auth.nonce.as_b256(),
            v: cancel.v(),
            r: B256::from(cancel.r()),
            s: B256::from(cancel.s()),
        }
        .abi_encode(),
    )
    .await;

    let settled = w.settle(&body).await;
    assert_eq!(settled["success"], false, "{settled}");
    assert_eq!(
        settled["errorReason"], "invalid_transaction_state",
        "{settled}"
    );
    assert_eq!(settled["transaction"], "");
    assert!(w.transfers(auth.from, TREASURY).await.is_empty());
    assert_eq!(w.balance(auth.from).await, usdc(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funds_moved_away_between_verify_and_settle_are_insufficient_and_move_nothing() {
    let Some(w) = world().await else { return };
    let body = w.valid(1);
    let verdict = w.verify(&body).await;
    assert_eq!(verdict["isValid"], true, "{verdict}");

    // The payer empties the account, keeping one unit less than the price.
    let payer = w.payer.address();
    w.send_to_token(
        BUYER_KEY,
        IFiatTokenAttacks::transferCall {
            to: MALLORY,
            value: usdc(100) - U256::from(PRICE - 1),
        }
        .abi_encode(),
    )
    .await;

    let settled = w.settle(&body).await;
    assert_eq!(settled["success"], false, "{settled}");
    assert_eq!(settled["errorReason"], "insufficient_funds", "{settled}");
    assert_eq!(settled["transaction"], "");
    assert!(w.transfers(payer, TREASURY).await.is_empty());
    assert_eq!(w.balance(payer).await, U256::from(PRICE - 1));
    assert_eq!(w.balance(TREASURY).await, U256::ZERO);
}

/// Collects the events of the worldstore crates as `LEVEL target: field=value ...` lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

impl Captured {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

struct Line<'a>(&'a mut String);

impl tracing::field::Visit for Line<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl tracing::Subscriber for Captured {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("worldstore")
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let metadata = event.metadata();
        let mut line = format!("{} {}:", metadata.level(), metadata.target());
        event.record(&mut Line(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

// Single-threaded, so that the facilitator's events reach this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn an_rpc_outage_is_an_unexpected_error_logged_as_an_outage_not_a_refusal() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.clone());
    let Some(mut w) = world().await else { return };

    // A refused payment first, for contrast: more than the payer holds.
    let payer = w.payer.address();
    let dear = authorization(payer, TREASURY, 200_000_000, open_window(), 1);
    let body = request(
        &requirements(&w.token, 200_000_000, TREASURY),
        &dear,
        &sign(&w.payer, &w.token.eip712_domain(), &dear),
    );
    w.refused_everywhere("more than the balance", &body, "insufficient_funds")
        .await;
    let refusals = captured.lines();
    assert!(
        refusals
            .iter()
            .any(|l| l.starts_with("INFO") && l.contains("payment refused")),
        "{refusals:#?}"
    );
    assert!(
        !refusals.iter().any(|l| l.contains("outage")),
        "{refusals:#?}"
    );

    // The node goes away (anvil killed): its port is dead.
    let valid = w.valid(2);
    drop(w.anvil.take());
    let verdict = w.verify(&valid).await;
    assert_eq!(verdict["isValid"], false, "{verdict}");
    assert_eq!(
        verdict["invalidReason"], "unexpected_verify_error",
        "{verdict}"
    );
    assert!(
        verdict["invalidMessage"]
            .as_str()
            .unwrap()
            .contains("chain unavailable"),
        "{verdict}"
    );
    let settled = w.settle(&valid).await;
    assert_eq!(settled["success"], false, "{settled}");
    assert_eq!(
        settled["errorReason"], "unexpected_settle_error",
        "{settled}"
    );
    assert_eq!(settled["transaction"], "");

    let after: Vec<String> = captured.lines().split_off(refusals.len());
    let outages: Vec<&String> = after.iter().filter(|l| l.contains("outage")).collect();
    assert!(
        outages.len() >= 2 && outages.iter().all(|l| l.starts_with("ERROR")),
        "one ERROR outage line per request: {after:#?}"
    );
    assert!(
        !after.iter().any(|l| l.contains("refused")),
        "an outage is not logged as a refused payment: {after:#?}"
    );
}

// A node that accepts connections but never answers (anvil stopped with SIGSTOP) must not
// hang the facilitator: the RPC timeout turns it into an outage answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_rpc_node_times_out_into_an_unexpected_error() {
    let Some(w) = world_with(|c| c.rpc_timeout = Duration::from_secs(1)).await else {
        return;
    };
    let valid = w.valid(1);
    let pid = w.anvil.as_ref().unwrap().pid();
    let stop = |signal: &str| {
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    };
    stop("-STOP");
    // kill returns once the signal is sent; wait until the kernel shows the node stopped
    // (state T) so no request can still be answered.
    let stopped = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(") ")
                    .map(|(_, rest)| rest.starts_with('T'))
            })
            .unwrap_or(false)
    };
    let waiting = std::time::Instant::now();
    while !stopped() && waiting.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(stopped(), "anvil did not stop");
    let started = std::time::Instant::now();
    let verdict = w.verify(&valid).await;
    let settled = w.settle(&valid).await;
    stop("-CONT");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered in {:?}",
        started.elapsed()
    );
    assert_eq!(
        verdict["invalidReason"], "unexpected_verify_error",
        "{verdict}"
    );
    assert_eq!(
        settled["errorReason"], "unexpected_settle_error",
        "{settled}"
    );
    // Once the node is back, the same payment verifies and settles once.
    let verdict = w.verify(&valid).await;
    assert_eq!(verdict["isValid"], true, "{verdict}");
    let settled = w.settle(&valid).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(
        w.transfers(w.payer.address(), TREASURY).await,
        vec![U256::from(PRICE)]
    );
}
