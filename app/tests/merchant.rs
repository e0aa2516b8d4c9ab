//! The order server end to end on the sandbox: real HTTP, the embedded chain running the
//! sandbox USDC, a SQLite store, the sandbox fulfilment with injected failures. Every money
//! path ends on chain: balances and the audit log are checked, not just answers.

use alloy_primitives::{Address, U256};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use worldstore::facilitator::Clock;
use worldstore::merchant::{Merchant, MerchantConfig, router};
use worldstore_adapters::chain_embedded::{EmbeddedChain, EmbeddedChainConfig};
use worldstore_adapters::sandbox_commerce::{
    FulfilmentConfig, InjectedFailure, SandboxCatalog, SandboxFulfilment,
};
use worldstore_adapters::store::{DataKey, SqlStore};
use worldstore_domain::eip3009::{LocalSigner, Nonce};
use worldstore_domain::money::FeeRate;
use worldstore_domain::ports::catalog::Asin;
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::ports::store::{Key, MoneyEventKind, Store};
use worldstore_domain::x402::client::{PaymentChallenge, sign_payment};
use worldstore_domain::x402::{PaymentPayload, header};

const START: u64 = 1_800_000_000;
const TREASURY: Address = Address::repeat_byte(0x6a);
/// Ember Peak headphones, $42.09 in the sandbox catalogue; 42.09 + 1% fee (0.4209) = 42.5109.
const HEADPHONES: &str = "B0BSZBC3R5";
const HEADPHONES_TOTAL: u128 = 42_510_900;
const OTHER: &str = "B03J5Q5WSB";

type TestMerchant = Merchant<EmbeddedChain, SandboxFulfilment, SqlStore>;

struct Running {
    url: String,
    client: reqwest::Client,
    merchant: Arc<TestMerchant>,
    buyer: LocalSigner,
    now: Arc<AtomicU64>,
    worker: Key,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

async fn start(failures: &[(&str, InjectedFailure)]) -> Running {
    let now = Arc::new(AtomicU64::new(START));
    let clock: Clock = {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let chain = EmbeddedChain::new(EmbeddedChainConfig::new(TREASURY, clock.clone()))
        .expect("sandbox chain");
    let buyer = LocalSigner::from_bytes([0x42; 32]).expect("key");
    chain
        .mint(buyer.address(), U256::from(500_000_000u64))
        .expect("faucet");
    let mut config = FulfilmentConfig::default();
    for (asin, failure) in failures {
        config = config.with_failure(Asin::parse(asin).unwrap(), *failure);
    }
    let commerce = SandboxFulfilment::new(SandboxCatalog::builtin().unwrap(), config);
    let dir = std::env::temp_dir().join(format!(
        "worldstore-merchant-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.join("store.db").display());
    let store = SqlStore::open(&url, &DataKey::from_bytes([7; 32]))
        .await
        .expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let config = MerchantConfig {
        pay_to: TREASURY,
        fee: FeeRate::from_basis_points(100).unwrap(),
        offer_ttl_seconds: 900,
        max_timeout_seconds: 600,
        public_url: format!("http://{address}"),
        environment: "test".into(),
        secret: Arc::new(secrecy::SecretBox::new(Box::new([9u8; 32]))),
        delivery_poll_seconds: 30,
    };
    let merchant = Arc::new(
        Merchant::new(chain, commerce, store, config, clock)
            .await
            .expect("merchant"),
    );
    let app = router(merchant.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Running {
        url: format!("http://{address}"),
        client: reqwest::Client::new(),
        merchant,
        buyer,
        now,
        worker: Key::parse("test-worker").unwrap(),
        _dir: TempDir(dir),
    }
}

fn body(asin: &str, name: &str) -> Value {
    json!({
        "productLocator": format!("amazon:{asin}"),
        "email": "pat@example.com",
        "physicalAddress": {
            "name": name, "line1": "1 Main St", "city": "Seattle", "state": "WA",
            "postalCode": "98101", "country": "US"
        },
        "payment": {"method": "base-sepolia", "currency": "usdc"}
    })
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    json: Value,
}

impl Running {
    async fn post(&self, body: &Value, payment: Option<&PaymentPayload>) -> Answer {
        let mut request = self
            .client
            .post(format!("{}/api/orders", self.url))
            .json(body);
        if let Some(p) = payment {
            request = request.header(p.header_name(), p.header_value());
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let json = response.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            json,
        }
    }

    async fn post_raw(&self, body: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self
            .client
            .post(format!("{}/api/orders", self.url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request");
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            json: response.json().await.unwrap_or(Value::Null),
        }
    }

    /// Signs the 402 answer's offer as v1 or v2 with nonce `n`.
    fn sign(&self, answer: &Answer, version: u8, n: u8) -> PaymentPayload {
        let challenge = match version {
            1 => PaymentChallenge::from_response(None, answer.json.to_string().as_bytes()),
            _ => PaymentChallenge::from_response(
                answer
                    .headers
                    .get("payment-required")
                    .and_then(|v| v.to_str().ok()),
                b"",
            ),
        }
        .expect("challenge");
        let token = self.merchant.network().usdc();
        sign_payment(
            &self.buyer,
            &challenge,
            0,
            &token,
            Nonce::new([n; 32]),
            self.now.load(Ordering::SeqCst),
        )
        .expect("offer 0")
    }

    async fn view(&self, order_id: &str, token: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}/api/orders/{order_id}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn balance(&self, who: Address) -> U256 {
        self.merchant.chain().usdc_balance(who).await.unwrap()
    }

    fn advance(&self, seconds: u64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }

    async fn work(&self) {
        for _ in 0..10 {
            let pass = self.merchant.work_once(&self.worker, 16).await.unwrap();
            if pass.effects_run == 0 {
                return;
            }
        }
    }

    async fn events(&self, order_id: &str) -> Vec<MoneyEventKind> {
        self.merchant
            .store()
            .money_events(&Key::parse(order_id).unwrap())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }
}

fn order_of(answer: &Answer) -> (String, String) {
    (
        answer.json["orderId"].as_str().expect("orderId").to_owned(),
        answer.json["orderToken"]
            .as_str()
            .expect("orderToken")
            .to_owned(),
    )
}

#[tokio::test]
async fn an_order_is_offered_in_both_versions_then_paid_shipped_and_delivered() {
    let r = start(&[]).await;
    let quote = r.post(&body(HEADPHONES, "Pat Lee"), None).await;
    assert_eq!(quote.status, 402, "{}", quote.json);
    // v1 body and v2 header carry the same offer, bound to the order.
    let (order_id, token) = order_of(&quote);
    let accepts = &quote.json["accepts"][0];
    assert_eq!(quote.json["x402Version"], 1);
    assert_eq!(accepts["maxAmountRequired"], HEADPHONES_TOTAL.to_string());
    assert_eq!(accepts["network"], "base-sepolia");
    assert_eq!(accepts["extra"]["orderId"], order_id.as_str());
    let v2 = header::decode_payment_required(quote.headers["payment-required"].to_str().unwrap())
        .unwrap();
    assert_eq!(v2.accepts[0].amount, U256::from(HEADPHONES_TOTAL));
    assert_eq!(v2.accepts[0].network, "eip155:84532");
    assert_eq!(v2.accepts[0].extra["orderId"], order_id.as_str());

    // Asking again with the same request gives the same order: no orphan orders.
    let again = r.post(&body(HEADPHONES, "Pat Lee"), None).await;
    assert_eq!(order_of(&again), (order_id.clone(), token.clone()));

    let (buyer_before, treasury_before) = (
        r.balance(r.buyer.address()).await,
        r.balance(TREASURY).await,
    );
    let payment = r.sign(&quote, 2, 1);
    let paid = r.post(&body(HEADPHONES, "Pat Lee"), Some(&payment)).await;
    assert_eq!(paid.status, 200, "{}", paid.json);
    let settle =
        header::decode_payment_response(paid.headers["payment-response"].to_str().unwrap())
            .unwrap();
    assert!(settle.success);
    assert_eq!(settle.network, "eip155:84532");
    assert_eq!(paid.json["transaction"], settle.transaction.as_str());
    assert_eq!(
        r.balance(r.buyer.address()).await,
        buyer_before - U256::from(HEADPHONES_TOTAL)
    );
    assert_eq!(
        r.balance(TREASURY).await,
        treasury_before + U256::from(HEADPHONES_TOTAL)
    );

    // Fulfilment is paid by the worker, after the settlement.
    let (_, view) = r.view(&order_id, &token).await;
    assert_eq!(view["stage"], "paid");
    assert_eq!(view["payment"]["txHash"], settle.transaction.as_str());
    r.work().await;
    assert_eq!(r.view(&order_id, &token).await.1["status"], "in_delivery");
    r.advance(61);
    r.work().await;
    let (_, view) = r.view(&order_id, &token).await;
    assert_eq!(view["stage"], "shipped", "{view}");
    assert_eq!(view["tracking"]["carrier"], "Sandbox Parcel Service");
    r.advance(300);
    r.work().await;
    let (_, view) = r.view(&order_id, &token).await;
    assert_eq!(view["stage"], "delivered", "{view}");
    assert_eq!(view["timeline"], json!(["paid", "shipped", "delivered"]));
    assert_eq!(
        r.events(&order_id).await,
        vec![
            MoneyEventKind::QuoteIssued,
            MoneyEventKind::AuthorizationReceived,
            MoneyEventKind::Settled,
            MoneyEventKind::PaidToFulfilment,
        ]
    );
    assert_eq!(r.merchant.store().unfinished_effects().await.unwrap(), 0);
}

#[tokio::test]
async fn a_v1_client_pays_by_repeating_its_request() {
    let r = start(&[]).await;
    let quote = r.post(&body(HEADPHONES, "Pat Lee"), None).await;
    let (order_id, _) = order_of(&quote);
    let payment = r.sign(&quote, 1, 2);
    let paid = r.post(&body(HEADPHONES, "Pat Lee"), Some(&payment)).await;
    assert_eq!(paid.status, 200, "{}", paid.json);
    assert_eq!(paid.json["orderId"], order_id.as_str());
    let settle =
        header::decode_payment_response(paid.headers["x-payment-response"].to_str().unwrap())
            .unwrap();
    assert!(settle.success);
    assert_eq!(settle.network, "base-sepolia");
}

#[tokio::test]
async fn the_same_payment_twice_moves_money_once_and_answers_the_same() {
    let r = start(&[]).await;
    let quote = r.post(&body(HEADPHONES, "Pat Lee"), None).await;
    let payment = r.sign(&quote, 2, 3);
    let before = r.balance(r.buyer.address()).await;
    let first = r.post(&body(HEADPHONES, "Pat Lee"), Some(&payment)).await;
    let second = r.post(&body(HEADPHONES, "Pat Lee"), Some(&payment)).await;
    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(first.json["transaction"], second.json["transaction"]);
    assert_eq!(
        r.balance(r.buyer.address()).await,
        before - U256::from(HEADPHONES_TOTAL)
    );
}

#[tokio::test]
async fn concurrent_payments_with_one_authorization_move_money_once() {
    let r = Arc::new(start(&[]).await);
    let quote = r.post(&body(HEADPHONES, "Pat Lee"), None).await;
    let payment = r.sign(&quote, 2, 4);
    let before = r.balance(r.buyer.address()).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (r, payment) = (r.clone(), payment.clone());
        tasks.push(tokio::spawn(async move {
            r.post(&body(HEADPHONES, "Pat Lee"), Some(&payment))
                .await
                .status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(
        r.balance(r.buyer.address()).await,
        before - U256::from(HEADPHONES_TOTAL)
    );
}

#[tokio::test]
async fn an_authorization_pays_exactly_one_order() {
    let r = start(&[]).await;
    let a = r.post(&body(HEADPHONES, "Pat Lee"), None).await;
    let b = r.post(&body(OTHER, "Pat Lee"), None).await;
    let (a_id, _) = order_of(&a);
    let (b_id, _) = order_of(&b);
    assert_ne!(a_id, b_id);
    let for_a = r.sign(&a, 2, 5);
    // A's v2 header names A: sent with B's request it still pays A, never B.
    let paid = r.post(&body(OTHER, "Pat Lee"), Some(&for_a)).await;
    assert_eq!(paid.json["orderId"], a_id.as_str());
    // The same authorization, relabelled as B's (the signature does not cover the label),
    // is refused: B's price differs, and the nonce already paid A.
    let mut relabelled = for_a.clone();
    if let PaymentPayload::V2(p) = &mut relabelled {
        p.accepted
            .extra
            .insert("orderId".into(), b_id.as_str().into());
    }
    let refused = r.post(&body(OTHER, "Pat Lee"), Some(&relabelled)).await;
    assert_eq!(refused.status, 402, "{}", refused.json);
    // A v1 authorization for A, replayed with B's request, is refused too.
    let v1_for_a = r.sign(&a, 1, 6);
    let refused = r.post(&body(OTHER, "Pat Lee"), Some(&v1_for_a)).await;
    assert_eq!(refused.status, 402);
    assert_eq!(refused.json["orderId"], b_id.as_str());
    let (_, view_b) = r.view(&b_id, b.json["orderToken"].as_str().unwrap()).await;
    assert_eq!(view_b["stage"], "awaiting_payment");
}

#[tokio::test]
async fn wrong_payments_are_refused_with_the_spec_reason_and_move_nothing() {
    let r = start(&[]).await;
    let quote = r.post(&body(HEADPHONES, "Pat Lee"), None).await;
    let before = r.balance(r.buyer.address()).await;
    // Underpaying: the authorization's value is signed, so the tampered copy fails.
    let mut cheap = r.sign(&quote, 2, 7);
    if let PaymentPayload::V2(p) = &mut cheap {
        p.accepted.amount = U256::from(1u64);
        p.payload.authorization.value = U256::from(1u64);
    }
    let refused = r.post(&body(HEADPHONES, "Pat Lee"), Some(&cheap)).await;
    assert_eq!(refused.status, 402);
    assert!(
        refused.json["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid"),
        "{}",
        refused.json
    );
    // An expired authorization.
    let stale = r.sign(&quote, 2, 8);
    r.advance(700);
    let refused = r.post(&body(HEADPHONES, "Pat Lee"), Some(&stale)).await;
    assert_eq!(refused.status, 402);
    assert_eq!(r.balance(r.buyer.address()).await, before);
}

#[tokio::test]
async fn malformed_requests_are_400_and_strangers_get_404() {
    let r = start(&[]).await;
    let good = body(HEADPHONES, "Pat Lee").to_string();
    for (text, headers) in [
        ("{not json", vec![]),
        (r#"{"productLocator":"amazon:B0BSZBC3R5"}"#, vec![]),
        (&good, vec![("PAYMENT-SIGNATURE", "%%%not-base64")]),
        (&good, vec![("X-PAYMENT", "eyJ4NDAyVmVyc2lvbiI6MX0=")]),
    ] {
        let answer = r.post_raw(text, &headers).await;
        assert_eq!(answer.status, 400, "{text} {headers:?}: {}", answer.json);
        assert!(answer.json["error"].is_string());
    }
    // Over the size limit: refused unread, and the connection is closed (and said to be) so
    // the client's next request goes on a fresh one and is answered.
    let oversized = r
        .client
        .post(format!("{}/api/orders", r.url))
        .header("content-type", "application/json")
        .body(" ".repeat(100 * 1024))
        .send()
        .await;
    match oversized {
        Ok(response) => {
            assert_eq!(response.status().as_u16(), 413);
            assert_eq!(response.headers()["connection"], "close");
        }
        Err(error) => assert!(error.is_request() || error.is_body(), "{error}"),
    }
    let mut wrong_state = body(HEADPHONES, "Pat Lee");
    wrong_state["physicalAddress"]["state"] = "XX".into();
    assert_eq!(r.post(&wrong_state, None).await.status, 400);
    let mut wrong_chain = body(HEADPHONES, "Pat Lee");
    wrong_chain["payment"]["method"] = "polygon".into();
    assert_eq!(r.post(&wrong_chain, None).await.status, 400);

    let quote = r.post(&body(HEADPHONES, "Pat Lee"), None).await;
    let (order_id, token) = order_of(&quote);
    assert_eq!(r.view(&order_id, &token).await.0, 200);
    assert_eq!(r.view(&order_id, "not-the-token").await.0, 404);
    let other = r.post(&body(OTHER, "Sam Roe"), None).await;
    let (_, other_token) = order_of(&other);
    assert_eq!(r.view(&order_id, &other_token).await.0, 404);
    assert_eq!(r.view("no-such-order", &token).await.0, 404);
}

#[tokio::test]
async fn an_unavailable_product_is_not_offered() {
    let r = start(&[(HEADPHONES, InjectedFailure::Unavailable)]).await;
    let answer = r.post(&body(HEADPHONES, "Pat Lee"), None).await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.json["error"], "item_unavailable");
}

/// Pays for `asin` and returns (order id, token, settlement tx).
async fn pay_for(r: &Running, asin: &str, nonce: u8) -> (String, String) {
    let quote = r.post(&body(asin, "Pat Lee"), None).await;
    assert_eq!(quote.status, 402, "{}", quote.json);
    let payment = r.sign(&quote, 2, nonce);
    let paid = r.post(&body(asin, "Pat Lee"), Some(&payment)).await;
    assert_eq!(paid.status, 200, "{}", paid.json);
    order_of(&paid)
}

#[tokio::test]
async fn failed_fulfilment_after_settlement_refunds_the_buyer_on_chain() {
    for failure in [
        InjectedFailure::PaymentFails,
        InjectedFailure::QuoteExpiresBeforePayment,
        InjectedFailure::DeliveryFails,
    ] {
        let r = start(&[(HEADPHONES, failure)]).await;
        let before = r.balance(r.buyer.address()).await;
        let (order_id, token) = pay_for(&r, HEADPHONES, 9).await;
        assert_eq!(
            r.balance(r.buyer.address()).await,
            before - U256::from(HEADPHONES_TOTAL)
        );
        r.advance(2);
        r.work().await;
        r.advance(400);
        r.work().await;
        r.work().await;
        let (_, view) = r.view(&order_id, &token).await;
        assert_eq!(view["stage"], "refunded", "{failure:?}: {view}");
        let refund_tx = view["refund"]["txHash"].as_str().unwrap().to_owned();
        // The refund is a real transfer back, recorded in the audit log with its hash.
        assert_eq!(r.balance(r.buyer.address()).await, before, "{failure:?}");
        let events = r
            .merchant
            .store()
            .money_events(&Key::parse(&order_id).unwrap())
            .await
            .unwrap();
        let refunded = events
            .iter()
            .find(|e| e.kind == MoneyEventKind::Refunded)
            .expect("refund event");
        assert_eq!(format!("{:#x}", refunded.tx_hash.unwrap()), refund_tx);
        assert!(
            !events
                .iter()
                .any(|e| e.kind == MoneyEventKind::PaidToFulfilment)
                || failure == InjectedFailure::DeliveryFails,
            "{failure:?}: fulfilment must not count as paid"
        );
    }
}

#[tokio::test]
async fn the_payment_that_paid_an_order_repeated_after_its_window_gets_the_same_answer() {
    let r = start(&[]).await;
    let quote = r.post(&body(HEADPHONES, "Pat Lee"), None).await;
    let payment = r.sign(&quote, 2, 4);
    let before = r.balance(r.buyer.address()).await;
    let first = r.post(&body(HEADPHONES, "Pat Lee"), Some(&payment)).await;
    assert_eq!(first.status, 200);
    // The buyer crashed before recording the answer and retries an hour later, after the
    // authorization's window closed (and the offer's): the same settlement, nothing moves.
    r.advance(3600);
    let late = r.post(&body(HEADPHONES, "Pat Lee"), Some(&payment)).await;
    assert_eq!(late.status, 200, "{}", late.json);
    assert_eq!(first.json["transaction"], late.json["transaction"]);
    assert_eq!(
        r.balance(r.buyer.address()).await,
        before - U256::from(HEADPHONES_TOTAL)
    );
    // A different authorization for the paid order is still refused.
    let other = r.sign(&quote, 2, 5);
    let refused = r.post(&body(HEADPHONES, "Pat Lee"), Some(&other)).await;
    assert_eq!(refused.status, 402);
}

#[tokio::test]
async fn unpaid_offers_expire_and_refuse_late_payments() {
    let r = start(&[]).await;
    let quote = r.post(&body(HEADPHONES, "Pat Lee"), None).await;
    let (order_id, token) = order_of(&quote);
    r.advance(901);
    r.work().await;
    assert_eq!(r.view(&order_id, &token).await.1["stage"], "expired");
    let late = r.sign(&quote, 2, 10);
    let refused = r.post(&body(HEADPHONES, "Pat Lee"), Some(&late)).await;
    assert_eq!(refused.status, 402);
    // A new request gets a new order.
    let fresh = r.post(&body(HEADPHONES, "Pat Lee"), None).await;
    assert_ne!(order_of(&fresh).0, order_id);
}

#[tokio::test]
async fn health_and_ready_answer() {
    let r = start(&[]).await;
    let health: Value = r
        .client
        .get(format!("{}/health", r.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["environment"], "test");
    assert!(health["timestamp"].as_str().unwrap().starts_with("2027-"));
    assert!(health["version"].is_string());
    let ready = r
        .client
        .get(format!("{}/ready", r.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

/// A chain whose settlements never come back: the process "dies" while settling.
struct StuckSettle(Arc<EmbeddedChain>);

impl Chain for StuckSettle {
    fn network(&self) -> worldstore_domain::network::Network {
        self.0.network()
    }
    fn gas_payer(&self) -> Address {
        self.0.gas_payer()
    }
    async fn token(
        &self,
    ) -> Result<
        worldstore_domain::ports::chain::TokenFacts,
        worldstore_domain::ports::chain::ChainError,
    > {
        self.0.token().await
    }
    async fn usdc_balance(
        &self,
        owner: Address,
    ) -> Result<U256, worldstore_domain::ports::chain::ChainError> {
        self.0.usdc_balance(owner).await
    }
    async fn balances(
        &self,
        owner: Address,
    ) -> Result<
        worldstore_domain::ports::chain::Balances,
        worldstore_domain::ports::chain::ChainError,
    > {
        self.0.balances(owner).await
    }
    async fn authorization_used(
        &self,
        from: Address,
        nonce: Nonce,
    ) -> Result<bool, worldstore_domain::ports::chain::ChainError> {
        self.0.authorization_used(from, nonce).await
    }
    async fn has_code(
        &self,
        address: Address,
    ) -> Result<bool, worldstore_domain::ports::chain::ChainError> {
        self.0.has_code(address).await
    }
    async fn chain_facts(
        &self,
        payment: &worldstore_domain::x402::SignedPayment,
    ) -> Result<worldstore_domain::x402::ChainFacts, worldstore_domain::ports::chain::ChainError>
    {
        self.0.chain_facts(payment).await
    }
    async fn settle(
        &self,
        _payment: &worldstore_domain::x402::VerifiedPayment,
    ) -> Result<
        worldstore_domain::ports::chain::Settlement,
        worldstore_domain::ports::chain::ChainError,
    > {
        std::future::pending().await
    }
    async fn reconcile(
        &self,
        tx_hash: alloy_primitives::B256,
        expected: worldstore_domain::ports::chain::UsdcTransfer,
    ) -> Result<
        worldstore_domain::ports::chain::Settlement,
        worldstore_domain::ports::chain::ChainError,
    > {
        self.0.reconcile(tx_hash, expected).await
    }
    async fn transfer_usdc(
        &self,
        to: Address,
        value: U256,
    ) -> Result<
        worldstore_domain::ports::chain::Settlement,
        worldstore_domain::ports::chain::ChainError,
    > {
        self.0.transfer_usdc(to, value).await
    }
    async fn watch_usdc_balance(
        &self,
        owner: Address,
        at_least: U256,
        timeout: std::time::Duration,
    ) -> Result<
        worldstore_domain::ports::chain::BalanceWatch,
        worldstore_domain::ports::chain::ChainError,
    > {
        self.0.watch_usdc_balance(owner, at_least, timeout).await
    }
}

#[tokio::test]
async fn a_settlement_interrupted_by_a_crash_is_resumed_once_by_the_next_process() {
    let now = Arc::new(AtomicU64::new(START));
    let clock: Clock = {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let chain =
        Arc::new(EmbeddedChain::new(EmbeddedChainConfig::new(TREASURY, clock.clone())).unwrap());
    let buyer = LocalSigner::from_bytes([0x44; 32]).unwrap();
    chain
        .mint(buyer.address(), U256::from(100_000_000u64))
        .unwrap();
    let dir = std::env::temp_dir().join(format!(
        "worldstore-crash-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
    let url = format!("sqlite://{}?mode=rwc", dir.join("store.db").display());
    let config = |public_url: String| MerchantConfig {
        pay_to: TREASURY,
        fee: FeeRate::ZERO,
        offer_ttl_seconds: 900,
        max_timeout_seconds: 600,
        public_url,
        environment: "test".into(),
        secret: Arc::new(secrecy::SecretBox::new(Box::new([9u8; 32]))),
        delivery_poll_seconds: 30,
    };
    // Fulfilment is an outside service: it outlives our process.
    let fulfilment = Arc::new(SandboxFulfilment::new(
        SandboxCatalog::builtin().unwrap(),
        FulfilmentConfig {
            id_prefix: "crash".into(),
            ..FulfilmentConfig::default()
        },
    ));
    let sandbox = || fulfilment.clone();
    let key = DataKey::from_bytes([7; 32]);

    // The first process accepts the payment and never hears back from the chain.
    let store = SqlStore::open(&url, &key).await.unwrap();
    let first = Arc::new(
        Merchant::new(
            StuckSettle(chain.clone()),
            sandbox(),
            store,
            config("http://a".into()),
            clock.clone(),
        )
        .await
        .unwrap(),
    );
    let body: worldstore::merchant::OrderBody =
        serde_json::from_value(body(HEADPHONES, "Pat Lee")).unwrap();
    let offered = first.offer(&body).await.unwrap();
    let answer = worldstore_domain::x402::PaymentRequiredAnswer::new(
        "pay",
        std::slice::from_ref(&offered.offer),
    );
    let payment = sign_payment(
        &buyer,
        &PaymentChallenge::V2(answer.v2),
        0,
        &first.network().usdc(),
        Nonce::new([0x77; 32]),
        START,
    )
    .unwrap();
    let paying = {
        let (first, body, payment) = (first.clone(), body.clone(), payment.clone());
        tokio::spawn(async move { first.pay(&body, &payment).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    paying.abort();
    drop(first);
    let before = chain.usdc_balance(buyer.address()).await.unwrap();

    // The next process, on the same database, resumes the settlement exactly once.
    let store = SqlStore::open(&url, &key).await.unwrap();
    let second = Merchant::new(
        chain.clone(),
        sandbox(),
        store,
        config("http://b".into()),
        clock,
    )
    .await
    .unwrap();
    let worker = Key::parse("second").unwrap();
    now.fetch_add(30, Ordering::SeqCst);
    assert_eq!(
        second.work_once(&worker, 8).await.unwrap().resumed,
        0,
        "too early to resume"
    );
    now.fetch_add(121, Ordering::SeqCst);
    assert_eq!(second.work_once(&worker, 8).await.unwrap().resumed, 1);
    for _ in 0..3 {
        second.work_once(&worker, 8).await.unwrap();
    }
    assert_eq!(
        chain.usdc_balance(buyer.address()).await.unwrap(),
        before - U256::from(42_090_000u64)
    );
    let view = second
        .order_view(offered.order_id.as_str(), &offered.token)
        .await
        .unwrap();
    assert_eq!(view.status, "in_delivery");
    // Paying again with the same authorization answers the same settlement; nothing moves.
    assert!(matches!(
        second.pay(&body, &payment).await.unwrap(),
        worldstore::merchant::PayAnswer::Accepted { .. }
    ));
    assert_eq!(
        chain.usdc_balance(buyer.address()).await.unwrap(),
        before - U256::from(42_090_000u64)
    );
}
