//! The order server over the Crossmint adapter, against recorded Crossmint payloads replayed
//! by a local server: fulfilment is paid only after the buyer's settlement, and every
//! failure after settlement (quote expired, payment failed or refused, an item not
//! delivered) refunds the buyer on chain with the refund's hash in the audit log.

#[path = "../../adapters/tests/support/mod.rs"]
mod support;

use alloy_primitives::{Address, U256};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use support::{ReplayServer, Reply};
use worldstore::facilitator::Clock;
use worldstore::merchant::{Merchant, MerchantConfig, router};
use worldstore_adapters::chain_embedded::{EmbeddedChain, EmbeddedChainConfig};
use worldstore_adapters::crossmint::{CrossmintCommerce, CrossmintConfig, WalletKind};
use worldstore_adapters::retry::RetryPolicy;
use worldstore_adapters::store::{DataKey, SqlStore};
use worldstore_domain::eip3009::{LocalSigner, Nonce};
use worldstore_domain::money::FeeRate;
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::ports::store::{Key, MoneyEventKind, Store};
use worldstore_domain::x402::client::{PaymentChallenge, sign_payment};

/// A minute after the recorded quote (2025-09-01T12:00Z, valid until 13:00Z).
const NOW: u64 = 1_756_728_060;
const ORDER: &str = "b2959ca5-65e4-466a-bd26-1bd05cb4f837";
const TREASURY: Address = Address::repeat_byte(0x6a);
/// The recorded quote: 12.34 USDC, plus our 1% fee rounded up: 12.4634.
const TOTAL: u64 = 12_463_400;

struct Running {
    url: String,
    client: reqwest::Client,
    merchant: Arc<Merchant<EmbeddedChain, CrossmintCommerce, SqlStore>>,
    crossmint: ReplayServer,
    buyer: LocalSigner,
    now: Arc<AtomicU64>,
    _dir: std::path::PathBuf,
}

fn ok(name: &str) -> Reply {
    Reply::fixture(200, &format!("crossmint/{name}.json"))
}

async fn start(script: Vec<Reply>) -> Running {
    let now = Arc::new(AtomicU64::new(NOW));
    let clock: Clock = {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let chain = EmbeddedChain::new(EmbeddedChainConfig::new(TREASURY, clock.clone())).unwrap();
    let buyer = LocalSigner::from_bytes([0x43; 32]).unwrap();
    chain
        .mint(buyer.address(), U256::from(100_000_000u64))
        .unwrap();
    let crossmint = ReplayServer::start(script).await;
    let mut config = CrossmintConfig::new(
        reqwest::Url::parse(&format!("{}/api", crossmint.base_url)).unwrap(),
        SecretString::from("sk_staging_test_key"),
        "0x2222222222222222222222222222222222222222".to_owned(),
        WalletKind::Smart,
    );
    config.retry = RetryPolicy {
        max_retries: 1,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    config.transaction_poll_interval = Duration::from_millis(1);
    config.transaction_poll_attempts = 3;
    let commerce = CrossmintCommerce::new(config).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "worldstore-merchant-crossmint-{}-{}",
        std::process::id(),
        {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::time::SystemTime::now())
        }
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqlStore::open(
        &format!("sqlite://{}?mode=rwc", dir.join("s.db").display()),
        &DataKey::from_bytes([3; 32]),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let merchant = Arc::new(
        Merchant::new(
            chain,
            commerce,
            store,
            MerchantConfig {
                pay_to: TREASURY,
                fee: FeeRate::from_basis_points(100).unwrap(),
                offer_ttl_seconds: 900,
                max_timeout_seconds: 600,
                public_url: format!("http://{address}"),
                environment: "test".into(),
                secret: Arc::new(secrecy::SecretBox::new(Box::new([5u8; 32]))),
                delivery_poll_seconds: 60,
            },
            clock,
        )
        .await
        .unwrap(),
    );
    let app = router(merchant.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Running {
        url: format!("http://{address}"),
        client: reqwest::Client::new(),
        merchant,
        crossmint,
        buyer,
        now,
        _dir: dir,
    }
}

/// The order every test posts.
fn order_body() -> Value {
    json!({
        "productLocator": "amazon:B0ORGAN001",
        "email": "pat@example.com",
        "physicalAddress": {"name": "Pat Lee", "line1": "1 Main St", "city": "Seattle",
                            "state": "WA", "postalCode": "98101", "country": "US"}
    })
}

impl Running {
    /// Posts [`order_body`] without payment.
    async fn order(&self) -> reqwest::Response {
        self.client
            .post(format!("{}/api/orders", self.url))
            .json(&order_body())
            .send()
            .await
            .unwrap()
    }

    /// Quotes and pays the recorded order; returns its bearer token.
    async fn buy(&self) -> String {
        let body = order_body();
        let url = format!("{}/api/orders", self.url);
        let quote = self.client.post(&url).json(&body).send().await.unwrap();
        assert_eq!(quote.status(), 402);
        let header = quote.headers()["payment-required"]
            .to_str()
            .unwrap()
            .to_owned();
        let quoted: Value = quote.json().await.unwrap();
        assert_eq!(quoted["orderId"], ORDER);
        assert_eq!(quoted["accepts"][0]["maxAmountRequired"], TOTAL.to_string());
        let challenge = PaymentChallenge::from_response(Some(&header), b"").unwrap();
        let payment = sign_payment(
            &self.buyer,
            &challenge,
            0,
            &self.merchant.network().usdc(),
            Nonce::new([1; 32]),
            self.now.load(Ordering::SeqCst),
        )
        .unwrap();
        let paid = self
            .client
            .post(&url)
            .header(payment.header_name(), payment.header_value())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(paid.status(), 200);
        quoted["orderToken"].as_str().unwrap().to_owned()
    }

    async fn work(&self) {
        let worker = Key::parse("w").unwrap();
        for _ in 0..6 {
            if self
                .merchant
                .work_once(&worker, 8)
                .await
                .unwrap()
                .effects_run
                == 0
            {
                break;
            }
        }
    }

    async fn view(&self, token: &str) -> Value {
        self.client
            .get(format!("{}/api/orders/{ORDER}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn events(&self) -> Vec<MoneyEventKind> {
        self.merchant
            .store()
            .money_events(&Key::parse(ORDER).unwrap())
            .await
            .unwrap()
            .iter()
            .map(|e| e.kind)
            .collect()
    }

    async fn buyer_balance(&self) -> U256 {
        self.merchant
            .chain()
            .usdc_balance(self.buyer.address())
            .await
            .unwrap()
    }

    /// Paths Crossmint was asked, in order.
    fn calls(&self) -> Vec<String> {
        self.crossmint
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

#[tokio::test]
async fn crossmint_is_paid_after_settlement_then_tracked_to_delivery() {
    let r = start(vec![
        ok("create_order_quoted"),
        ok("order_awaiting_payment_wrapped"),
        ok("wallet_tx_success"),
        ok("order_delivery_in_progress"),
        ok("tracking"),
        ok("order_completed"),
    ])
    .await;
    let token = r.buy().await;
    // Nothing was sent to Crossmint's wallet before the settlement: only the order creation.
    assert_eq!(r.calls().len(), 1, "{:?}", r.calls());
    r.work().await;
    assert_eq!(r.view(&token).await["stage"], "shipped");
    r.now.fetch_add(60, Ordering::SeqCst);
    r.work().await;
    let view = r.view(&token).await;
    assert_eq!(view["stage"], "delivered", "{view}");
    assert_eq!(view["timeline"], json!(["paid", "shipped", "delivered"]));
    let calls = r.calls();
    assert!(
        calls[2].starts_with("POST /api/2022-06-09/wallets/"),
        "{calls:?}"
    );
    let pay = &r.crossmint.requests()[2];
    assert_eq!(
        pay.header("x-idempotency-key"),
        Some(&*format!("{ORDER}-fulfil"))
    );
    assert_eq!(
        r.events().await,
        vec![
            MoneyEventKind::QuoteIssued,
            MoneyEventKind::AuthorizationReceived,
            MoneyEventKind::Settled,
            MoneyEventKind::PaidToFulfilment,
        ]
    );
    assert_eq!(r.crossmint.unserved(), 0);
}

async fn refunded(script: Vec<Reply>, why: &str) {
    let r = start(script).await;
    let before = r.buyer_balance().await;
    let token = r.buy().await;
    assert_eq!(r.buyer_balance().await, before - U256::from(TOTAL), "{why}");
    r.work().await;
    r.now.fetch_add(60, Ordering::SeqCst);
    r.work().await;
    let view = r.view(&token).await;
    assert_eq!(view["stage"], "refunded", "{why}: {view}");
    assert_eq!(
        r.buyer_balance().await,
        before,
        "{why}: the buyer has their money back"
    );
    let events = r
        .merchant
        .store()
        .money_events(&Key::parse(ORDER).unwrap())
        .await
        .unwrap();
    let refund = events
        .iter()
        .find(|e| e.kind == MoneyEventKind::Refunded)
        .unwrap_or_else(|| panic!("{why}: no refund event"));
    assert_eq!(
        view["refund"]["txHash"],
        format!("{:#x}", refund.tx_hash.expect("refund tx hash"))
    );
    assert_eq!(r.crossmint.unserved(), 0, "{why}: {:?}", r.calls());
}

#[tokio::test]
async fn a_quote_that_expired_after_settlement_is_refunded() {
    refunded(
        vec![ok("create_order_quoted"), ok("order_quote_expired")],
        "quote expired",
    )
    .await;
}

#[tokio::test]
async fn a_failed_treasury_payment_is_refunded() {
    refunded(
        vec![
            ok("create_order_quoted"),
            ok("order_awaiting_payment_wrapped"),
            ok("wallet_tx_failed"),
        ],
        "wallet transaction failed",
    )
    .await;
}

#[tokio::test]
async fn a_refused_payment_simulation_is_refunded() {
    refunded(
        vec![
            ok("create_order_quoted"),
            ok("order_awaiting_payment_wrapped"),
            Reply::fixture(422, "crossmint/wallet_tx_422_simulation_failed.json"),
        ],
        "simulation refused",
    )
    .await;
}

#[tokio::test]
async fn an_item_that_was_not_delivered_is_refunded() {
    refunded(
        vec![
            ok("create_order_quoted"),
            ok("order_awaiting_payment_wrapped"),
            ok("wallet_tx_success"),
            ok("order_completed_one_item_failed"),
        ],
        "delivery failed",
    )
    .await;
}

#[tokio::test]
async fn crossmint_throttling_delays_fulfilment_without_refunding() {
    let r = start(vec![
        ok("create_order_quoted"),
        Reply::fixture(429, "crossmint/error_429.json"),
        Reply::fixture(429, "crossmint/error_429.json"),
    ])
    .await;
    let token = r.buy().await;
    r.work().await;
    let view = r.view(&token).await;
    assert_eq!(view["stage"], "paid", "{view}");
    assert!(!r.events().await.contains(&MoneyEventKind::Refunded));
    assert_eq!(r.merchant.store().unfinished_effects().await.unwrap(), 1);
}

#[tokio::test]
async fn an_unavailable_item_or_an_address_problem_is_never_offered() {
    for (fixture, reason) in [
        ("create_order_item_unavailable", "item_unavailable"),
        (
            "create_order_requires_physical_address",
            "requires_physical_address",
        ),
        (
            "create_order_insufficient_funds",
            "store_insufficient_funds",
        ),
    ] {
        let r = start(vec![ok(fixture)]).await;
        let answer = r.order().await;
        assert_eq!(answer.status(), 422, "{fixture}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"], reason, "{fixture}: {body}");
    }
}

/// Log lines, as the fmt subscriber writes them.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl tracing_subscriber::fmt::MakeWriter<'_> for Logs {
    type Writer = Logs;
    fn make_writer(&self) -> Logs {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_crossmint_refusal_is_logged_by_its_code_never_its_words() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let r = start(vec![Reply::fixture(
        400,
        "crossmint/error_400_invalid_address.json",
    )])
    .await;
    let answer = r.order().await;
    assert_eq!(answer.status(), 422);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "invalid-physical-address", "{body}");
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("order service refused the order")
            && logged.contains("invalid-physical-address"),
        "the refusal is logged with its code:\n{logged}"
    );
    assert!(
        !logged.contains("Only US addresses"),
        "Crossmint's words reached the log:\n{logged}"
    );
}
