//! The agent dies between its paying POST and the commit of the answer: the merchant has
//! settled the payment, the agent never heard. Over real components: SQLite, the embedded
//! chain, the merchant's order server over HTTP, and a proxy between agent and merchant
//! that loses the merchant's answer.

mod support;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, StatusCode, header};
use axum::response::Response;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use support::{Chat, WAIT, config, shifted_clock, temp_dir, user};
use worldstore::agent::{CheckoutDoc, OrderClient, as_text};
use worldstore::sandbox::SandboxWorld;
use worldstore_domain::money::UsdcAmount;
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::ports::store::{MachineKind, MoneyEventKind, Store};

/// Forwards every request to the merchant. While `swallow` is on, a paying POST (one that
/// carries an x402 payment header) reaches the merchant and is answered there, but the
/// answer never reaches the agent: the request hangs until the agent gives up or dies.
#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    swallow: Arc<AtomicBool>,
    /// Paying POSTs the merchant answered, swallowed or not.
    payments_forwarded: Arc<AtomicUsize>,
}

const PAYMENT_HEADERS: [&str; 2] = ["payment-signature", "x-payment"];

impl Proxy {
    async fn start(upstream: String) -> (Self, String) {
        let proxy = Proxy {
            upstream,
            client: reqwest::Client::new(),
            swallow: Arc::new(AtomicBool::new(true)),
            payments_forwarded: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(proxy.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (proxy, url)
    }
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let paying = parts.method == Method::POST
        && PAYMENT_HEADERS
            .iter()
            .any(|h| parts.headers.contains_key(*h));
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let hop_by_hop = |name: &HeaderName| {
        [header::HOST, header::CONTENT_LENGTH, header::CONNECTION].contains(name)
    };
    let mut upstream = proxy
        .client
        .request(parts.method.clone(), format!("{}{path}", proxy.upstream))
        .body(body);
    for (name, value) in parts.headers.iter().filter(|(n, _)| !hop_by_hop(n)) {
        upstream = upstream.header(name, value);
    }
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(_) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::empty())
                .unwrap();
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap();
    if paying {
        proxy.payments_forwarded.fetch_add(1, Ordering::SeqCst);
        if proxy.swallow.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in headers.iter().filter(|(n, _)| !hop_by_hop(n)) {
        if *name != header::TRANSFER_ENCODING {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

/// Polls `done` every 50 ms until it holds, for at most [`WAIT`].
async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_checkout(chat: &Chat) -> (String, CheckoutDoc) {
    let records = chat
        .agent
        .store()
        .machines_of_user(MachineKind::Checkout, &chat.user)
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "one purchase, one checkout");
    let doc = CheckoutDoc::decode(&records[0]).unwrap();
    (records[0].index.status.as_str().to_owned(), doc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_settled_while_the_agent_died_before_committing_it_is_reported_once() {
    let dir = temp_dir("crash-pay");
    let (clock, offset) = shifted_clock();
    let mut settings = config(&dir, 100);
    settings.clock = Some(clock);
    let mut world = SandboxWorld::start(settings).await.unwrap();
    let merchant_url = world.merchant_url.clone();
    let (proxy, proxy_url) = Proxy::start(merchant_url.clone()).await;
    // Every agent of this world reaches the merchant through the proxy.
    world.merchant_url = proxy_url;

    let buyer = user("hana");
    let (chat, running) = Chat::open(&world, &buyer).await;
    world.welcome(&chat.agent, &buyer).await.unwrap();
    chat.up_to_the_confirmation().await;
    let wallet = chat.agent.wallet_address(&buyer).unwrap();
    let buyer_before = world.chain.usdc_balance(wallet).await.unwrap();
    let treasury_before = world.chain.usdc_balance(world.treasury).await.unwrap();
    chat.say("yes").await;

    // The merchant settles and answers; the answer is lost on the way back.
    let (_, doc) = the_checkout(&chat).await;
    let order = doc.order.clone().expect("the quote named an order");
    let total = doc.machine.quote().expect("a confirmed quote").total;
    let merchant = OrderClient::new(merchant_url).unwrap();
    wait_until("the merchant shows the order paid", || async {
        matches!(
            merchant.order(&order.order_id, &order.token).await,
            Ok(Some(view)) if view.payment.is_some()
        )
    })
    .await;
    assert_eq!(proxy.payments_forwarded.load(Ordering::SeqCst), 1);
    let (status, _) = the_checkout(&chat).await;
    assert_eq!(status, "paying", "the agent has not committed the answer");

    // Crash: the agent's workers die mid-request; a new process takes over once the
    // crashed worker's lease has expired.
    running.abort().await;
    let first_mail = chat.mail.clone();
    drop(chat);
    proxy.swallow.store(false, Ordering::SeqCst);
    offset.store(world.config.lease_seconds + 1, Ordering::SeqCst);
    let (chat, running) = Chat::open(&world, &buyer).await;
    chat.expect("Payment transaction on base-sepolia: 0x").await;
    chat.expect(": delivered").await;

    assert_eq!(
        proxy.payments_forwarded.load(Ordering::SeqCst),
        2,
        "the new process asked the merchant again"
    );
    let crashed = first_mail
        .messages_to(&buyer)
        .iter()
        .filter(|m| as_text(m).contains("Payment transaction"))
        .count();
    assert_eq!(crashed, 0, "the crashed process told nothing");
    assert_eq!(
        chat.count("Payment transaction"),
        1,
        "{}",
        chat.transcript()
    );
    // The buyer's money moved once, to the atomic unit.
    let spent = buyer_before - world.chain.usdc_balance(wallet).await.unwrap();
    let received = world.chain.usdc_balance(world.treasury).await.unwrap() - treasury_before;
    assert_eq!(UsdcAmount::from_u256(spent), Some(total));
    assert_eq!(UsdcAmount::from_u256(received), Some(total));
    let (status, doc) = the_checkout(&chat).await;
    assert_eq!(status, "delivered");
    assert!(doc.paid_at.is_some());
    // The merchant settled one payment for the order.
    let events = world
        .merchant_store()
        .money_events(&order.order_id)
        .await
        .unwrap();
    let settled = events
        .iter()
        .filter(|e| e.kind == MoneyEventKind::Settled)
        .count();
    assert_eq!(settled, 1, "{events:?}");
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
