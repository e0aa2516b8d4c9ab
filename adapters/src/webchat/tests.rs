//! The channel over real sockets: the router on 127.0.0.1:0 and a tokio-tungstenite client.

use super::*;
use alloy_primitives::{B256, address};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use worldstore_domain::UsdcAmount;
use worldstore_domain::conversation::{
    ActionItem, Card, FundingRequest, Menu, MenuKind, OrderProgress, OrderStage, ProductCard,
    QuoteCard, TransactionPurpose, TransactionRef,
};
use worldstore_domain::network::Network;

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;
const WAIT: Duration = Duration::from_secs(5);

async fn start(config: WebChatConfig) -> (WebChat, mpsc::Receiver<WebInbound>, SocketAddr) {
    let (chat, inbound) = WebChat::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(chat.clone().serve(listener));
    (chat, inbound, addr)
}

async fn open(addr: SocketAddr) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    ws
}

async fn send(ws: &mut Client, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

async fn next(ws: &mut Client) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

/// Connects, says hello and returns the socket and the welcome frame.
async fn hello(addr: SocketAddr, user: &str, after: u64) -> (Client, Value) {
    let mut ws = open(addr).await;
    send(
        &mut ws,
        json!({"type": "hello", "user": user, "after": after}),
    )
    .await;
    let welcome = next(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

fn key(user: &str) -> Key {
    Key::parse(user).unwrap()
}

fn text(t: &str) -> Outgoing {
    Outgoing::Text(t.to_owned())
}

fn every_variant() -> Vec<Outgoing> {
    vec![
        text("**hello**"),
        Outgoing::Actions(Menu {
            id: "menu-1".into(),
            kind: MenuKind::QuickBuy,
            description: "Tap to buy".into(),
            actions: vec![ActionItem {
                id: "buy:B01".into(),
                label: "Buy Earbuds $24.99".into(),
            }],
            expires_at: 1_900_000_000,
        }),
        Outgoing::Card(Card::Products(vec![ProductCard {
            asin: "B01".into(),
            title: "<b>Earbuds</b>".into(),
            price: Some(UsdcAmount::from_atomic(24_990_000)),
            image: Some("https://images.example/e.jpg".into()),
            rating: Some("4.6".into()),
            reviews: Some(1287),
        }])),
        Outgoing::Card(Card::Quote(QuoteCard {
            asin: "B01".into(),
            title: "Earbuds".into(),
            price: UsdcAmount::from_atomic(24_990_000),
            fee: UsdcAmount::from_atomic(499_800),
            total: UsdcAmount::from_atomic(25_489_800),
            network: Network::BaseSepolia,
            order_id: "order-7".into(),
            expires_at: Some(1_900_000_000),
        })),
        Outgoing::Card(Card::Funding(FundingRequest {
            id: "fund-1".into(),
            from: None,
            to: address!("0x1111111111111111111111111111111111111111"),
            amount: UsdcAmount::from_usdc(50),
            network: Network::BaseSepolia,
            token: Network::BaseSepolia.usdc().address,
        })),
        Outgoing::Card(Card::Transaction(TransactionRef {
            network: Network::BaseSepolia,
            tx_hash: B256::repeat_byte(0xab),
            purpose: TransactionPurpose::Payment,
            amount: Some(UsdcAmount::from_atomic(25_489_800)),
        })),
        Outgoing::Card(Card::Order(OrderProgress {
            order_id: "order-7".into(),
            title: Some("Earbuds".into()),
            stage: OrderStage::Shipped,
            detail: Some("UPS 1Z".into()),
        })),
    ]
}

#[tokio::test]
async fn every_outgoing_variant_becomes_its_frame() {
    let config = WebChatConfig {
        explorer_links: true,
        ..WebChatConfig::default()
    };
    let (chat, _inbound, addr) = start(config).await;
    let alice = key("alice");
    for outgoing in every_variant() {
        chat.deliver(&alice, &outgoing).unwrap();
    }
    let (mut ws, welcome) = hello(addr, "alice", 0).await;
    assert_eq!(welcome["last_seq"], 7);
    assert_eq!(welcome["user"], "alice");
    let mut frames = Vec::new();
    for _ in 0..7 {
        frames.push(next(&mut ws).await);
    }
    let types: Vec<_> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "text",
            "menu",
            "products",
            "quote",
            "funding",
            "transaction",
            "order"
        ]
    );
    let seqs: Vec<_> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(frames[0]["text"], "**hello**");
    assert_eq!(frames[1]["id"], "menu-1");
    assert_eq!(frames[1]["kind"], "QuickBuy");
    assert_eq!(frames[1]["actions"][0]["id"], "buy:B01");
    assert_eq!(frames[2]["products"][0]["title"], "<b>Earbuds</b>");
    assert_eq!(frames[2]["products"][0]["price"], "24.99");
    assert_eq!(frames[2]["products"][0]["reviews"], 1287);
    assert_eq!(frames[3]["total"], "25.4898");
    assert_eq!(frames[3]["fee"], "0.4998");
    assert_eq!(frames[3]["network"], "base-sepolia");
    assert_eq!(frames[3]["order_id"], "order-7");
    assert_eq!(frames[4]["id"], "fund-1");
    assert_eq!(frames[4]["amount"], "50.00");
    assert_eq!(
        frames[4]["to"].as_str().unwrap().to_lowercase(),
        "0x1111111111111111111111111111111111111111"
    );
    let hash = format!("0x{}", "ab".repeat(32));
    assert_eq!(frames[5]["tx_hash"], hash.as_str());
    assert_eq!(frames[5]["purpose"], "payment");
    assert_eq!(
        frames[5]["explorer"],
        format!("https://sepolia.basescan.org/tx/{hash}")
    );
    assert_eq!(frames[6]["stage"], "shipped");
    assert_eq!(frames[6]["detail"], "UPS 1Z");
}

#[test]
fn explorer_links_follow_the_network_and_can_be_turned_off() {
    let tx = |network| {
        Outgoing::Card(Card::Transaction(TransactionRef {
            network,
            tx_hash: B256::repeat_byte(1),
            purpose: TransactionPurpose::Funding,
            amount: None,
        }))
    };
    let frame = |outgoing: &Outgoing, links| {
        serde_json::to_value(Sequenced {
            seq: 1,
            body: Body::from_outgoing(outgoing, links),
        })
        .unwrap()
    };
    let hash = format!("0x{}", "01".repeat(32));
    assert_eq!(
        frame(&tx(Network::Base), true)["explorer"],
        format!("https://basescan.org/tx/{hash}")
    );
    assert_eq!(
        frame(&tx(Network::BaseSepolia), true)["explorer"],
        format!("https://sepolia.basescan.org/tx/{hash}")
    );
    assert_eq!(frame(&tx(Network::Base), false)["explorer"], Value::Null);
    assert_eq!(frame(&tx(Network::Base), false)["tx_hash"], hash.as_str());
}

#[tokio::test]
async fn live_messages_arrive_in_order_with_increasing_seq() {
    let (chat, _inbound, addr) = start(WebChatConfig::default()).await;
    let (mut ws, _) = hello(addr, "alice", 0).await;
    let alice = key("alice");
    for i in 1..=50 {
        assert_eq!(chat.deliver(&alice, &text(&format!("m{i}"))).unwrap(), i);
    }
    for i in 1..=50 {
        let frame = next(&mut ws).await;
        assert_eq!(frame["seq"], i);
        assert_eq!(frame["text"], format!("m{i}"));
    }
}

#[tokio::test]
async fn reconnecting_replays_only_what_came_after_the_last_seen_seq() {
    let (chat, _inbound, addr) = start(WebChatConfig::default()).await;
    let alice = key("alice");
    let (mut first, _) = hello(addr, "alice", 0).await;
    for i in 1..=5 {
        chat.deliver(&alice, &text(&format!("m{i}"))).unwrap();
    }
    for i in 1..=3 {
        assert_eq!(next(&mut first).await["seq"], i);
    }
    drop(first);

    let (mut again, welcome) = hello(addr, "alice", 3).await;
    assert_eq!(welcome["last_seq"], 5);
    assert_eq!(next(&mut again).await["text"], "m4");
    assert_eq!(next(&mut again).await["text"], "m5");
    chat.deliver(&alice, &text("m6")).unwrap();
    let live = next(&mut again).await;
    assert_eq!(
        (live["seq"].as_u64(), live["text"].as_str()),
        (Some(6), Some("m6"))
    );
}

#[tokio::test]
async fn a_server_side_disconnect_closes_the_socket_and_the_client_resumes() {
    let (chat, _inbound, addr) = start(WebChatConfig::default()).await;
    let alice = key("alice");
    let (mut ws, _) = hello(addr, "alice", 0).await;
    chat.deliver(&alice, &text("before")).unwrap();
    assert_eq!(next(&mut ws).await["seq"], 1);
    assert_eq!(chat.connections(&alice), 1);
    assert_eq!(chat.disconnect(&alice), 1);
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server closed the socket");
    chat.deliver(&alice, &text("while away")).unwrap();
    let (mut ws, _) = hello(addr, "alice", 1).await;
    let frame = next(&mut ws).await;
    assert_eq!(
        (frame["seq"].as_u64(), frame["text"].as_str()),
        (Some(2), Some("while away"))
    );
}

#[tokio::test]
async fn the_log_keeps_only_the_newest_messages() {
    let config = WebChatConfig {
        log_capacity: 3,
        ..WebChatConfig::default()
    };
    let (chat, _inbound, addr) = start(config).await;
    let alice = key("alice");
    for i in 1..=5 {
        chat.deliver(&alice, &text(&format!("m{i}"))).unwrap();
    }
    let (mut ws, welcome) = hello(addr, "alice", 0).await;
    assert_eq!(
        (welcome["oldest_seq"].as_u64(), welcome["last_seq"].as_u64()),
        (Some(3), Some(5))
    );
    for i in 3..=5 {
        assert_eq!(next(&mut ws).await["seq"], i);
    }
}

#[tokio::test]
async fn a_user_never_receives_another_users_messages() {
    let (chat, mut inbound, addr) = start(WebChatConfig::default()).await;
    let (mut alice, _) = hello(addr, "alice", 0).await;
    let (mut bob, _) = hello(addr, "bob", 0).await;
    chat.deliver(&key("bob"), &text("for bob")).unwrap();
    send(
        &mut bob,
        json!({"type": "text", "id": "b1", "text": "bob's secret"}),
    )
    .await;
    chat.deliver(&key("alice"), &text("for alice")).unwrap();

    // Alice's first frame is her own message: bob's two never reached her.
    let first = next(&mut alice).await;
    assert_eq!(
        (first["seq"].as_u64(), first["text"].as_str()),
        (Some(1), Some("for alice"))
    );
    assert_eq!(next(&mut bob).await["text"], "for bob");
    let echo = next(&mut bob).await;
    assert_eq!(
        (echo["type"].as_str(), echo["text"].as_str()),
        (Some("user"), Some("bob's secret"))
    );
    let event = inbound.recv().await.unwrap();
    assert_eq!(event.user, key("bob"));

    // A later socket of alice's replays only her log.
    let (mut again, welcome) = hello(addr, "alice", 0).await;
    assert_eq!(welcome["last_seq"], 1);
    assert_eq!(next(&mut again).await["text"], "for alice");
}

#[tokio::test]
async fn browser_events_reach_the_agent_with_the_user_and_a_stable_message_id() {
    let (_chat, mut inbound, addr) = start(WebChatConfig::default()).await;
    let (mut ws, _) = hello(addr, "demo", 0).await;
    let frames = [
        json!({"type": "text", "id": "c1", "text": "  search earbuds "}),
        json!({"type": "intent", "id": "c2", "menu_id": "menu-1", "action_id": "buy:B01"}),
        json!({"type": "approve", "id": "c3", "request_id": "fund-1"}),
    ];
    let events = [
        WebEvent::Content(InboundContent::Text("search earbuds".into())),
        WebEvent::Content(InboundContent::Intent {
            menu_id: "menu-1".into(),
            action_id: "buy:B01".into(),
        }),
        WebEvent::ApproveFunding {
            request_id: "fund-1".into(),
        },
    ];
    for (i, (frame, event)) in frames.into_iter().zip(events).enumerate() {
        send(&mut ws, frame).await;
        let echo = next(&mut ws).await;
        assert_eq!(echo["type"], "user");
        assert_eq!(echo["seq"], i as u64 + 1);
        let ack = next(&mut ws).await;
        assert_eq!(
            (ack["type"].as_str(), ack["duplicate"].as_bool()),
            (Some("ack"), Some(false))
        );
        let got = inbound.recv().await.unwrap();
        assert_eq!(got.user, key("demo"));
        assert_eq!(got.message_id, key(&format!("web:demo:c{}", i + 1)));
        assert_eq!(got.event, event);
    }
    // The echo of an intent names the menu and action; of an approval, the request.
    let (mut replay, _) = hello(addr, "demo", 1).await;
    let intent = next(&mut replay).await;
    assert_eq!(
        (intent["kind"].as_str(), intent["action_id"].as_str()),
        (Some("intent"), Some("buy:B01"))
    );
    let approve = next(&mut replay).await;
    assert_eq!(approve["request_id"], "fund-1");

    // A retried id is acknowledged as a duplicate and neither logged nor forwarded.
    send(
        &mut ws,
        json!({"type": "text", "id": "c1", "text": "search earbuds"}),
    )
    .await;
    let ack = next(&mut ws).await;
    assert_eq!(
        (ack["id"].as_str(), ack["duplicate"].as_bool()),
        (Some("c1"), Some(true))
    );
    assert!(inbound.try_recv().is_err());
}

#[tokio::test]
async fn malformed_frames_are_answered_with_errors_and_the_socket_keeps_working() {
    let (chat, mut inbound, addr) = start(WebChatConfig::default()).await;
    let mut ws = open(addr).await;
    let code = |v: &Value| v["code"].as_str().unwrap_or_default().to_owned();

    send(
        &mut ws,
        json!({"type": "text", "id": "c1", "text": "too early"}),
    )
    .await;
    let early = next(&mut ws).await;
    assert_eq!(
        (
            early["type"].as_str(),
            code(&early).as_str(),
            early["id"].as_str()
        ),
        (Some("error"), "protocol", Some("c1"))
    );
    ws.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(code(&next(&mut ws).await), "malformed");
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(code(&next(&mut ws).await), "malformed");
    // A ping is answered with a pong by the WebSocket layer, not with an error frame.
    ws.send(Message::Ping(vec![7].into())).await.unwrap();
    send(&mut ws, json!({"type": "hello", "user": "bad user\n"})).await;
    assert_eq!(code(&next(&mut ws).await), "invalid");
    send(&mut ws, json!({"type": "hello", "user": "x".repeat(65)})).await;
    assert_eq!(code(&next(&mut ws).await), "invalid");

    send(&mut ws, json!({"type": "hello", "user": "alice"})).await;
    assert_eq!(next(&mut ws).await["type"], "welcome");
    let refused = [
        (json!({"type": "bogus"}), "malformed"),
        (json!({"type": "text", "text": "no id"}), "malformed"),
        (json!([1, 2]), "malformed"),
        (
            json!({"type": "text", "id": "has space", "text": "x"}),
            "invalid",
        ),
        (
            json!({"type": "text", "id": "c2", "text": "   "}),
            "invalid",
        ),
        (
            json!({"type": "text", "id": "c3", "text": "x".repeat(4001)}),
            "invalid",
        ),
        (
            json!({"type": "intent", "id": "c4", "menu_id": "", "action_id": "a"}),
            "invalid",
        ),
        (
            json!({"type": "approve", "id": "c5", "request_id": "<script>"}),
            "invalid",
        ),
        (json!({"type": "hello", "user": "bob"}), "protocol"),
    ];
    for (frame, expected) in refused {
        let answer = next_after(&mut ws, frame.clone()).await;
        assert_eq!(
            (answer["type"].as_str(), code(&answer).as_str()),
            (Some("error"), expected),
            "{frame}"
        );
    }
    assert!(inbound.try_recv().is_err());
    assert_eq!(
        chat.last_seq(&key("alice")),
        0,
        "nothing refused was logged"
    );

    send(
        &mut ws,
        json!({"type": "text", "id": "ok1", "text": "still here"}),
    )
    .await;
    assert_eq!(next(&mut ws).await["text"], "still here");
    assert_eq!(next(&mut ws).await["type"], "ack");
    assert_eq!(
        inbound.recv().await.unwrap().message_id,
        key("web:alice:ok1")
    );
}

async fn next_after(ws: &mut Client, frame: Value) -> Value {
    send(ws, frame).await;
    next(ws).await
}

#[tokio::test]
async fn a_stopped_agent_is_reported_as_unavailable() {
    let (chat, inbound, addr) = start(WebChatConfig::default()).await;
    drop(inbound);
    let (mut ws, _) = hello(addr, "alice", 0).await;
    send(
        &mut ws,
        json!({"type": "text", "id": "c1", "text": "anyone?"}),
    )
    .await;
    let error = next(&mut ws).await;
    assert_eq!(
        (error["code"].as_str(), error["id"].as_str()),
        (Some("unavailable"), Some("c1"))
    );
    assert_eq!(
        chat.last_seq(&key("alice")),
        0,
        "nothing is logged for nobody"
    );
}

#[tokio::test]
async fn cross_origin_upgrades_are_refused() {
    let (_chat, _inbound, addr) = start(WebChatConfig::default()).await;
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    let refused = tokio_tungstenite::connect_async(request).await;
    assert!(refused.is_err());

    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", format!("http://{addr}").parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
}

#[tokio::test]
async fn the_page_is_served_with_a_policy_that_allows_only_its_own_script_and_style() {
    let (_chat, _inbound, addr) = start(WebChatConfig::default()).await;
    let response = reqwest::get(format!("http://{addr}/")).await.unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"data-testid="transcript""#));
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(
        body.matches("<script").count(),
        1,
        "one inline script, no external one"
    );
    assert!(!body.contains("src=\"http"), "nothing external loads");
}

#[tokio::test]
async fn beyond_max_users_the_least_recently_active_user_without_a_socket_is_forgotten() {
    let config = WebChatConfig {
        max_users: 2,
        ..WebChatConfig::default()
    };
    let (chat, _inbound, addr) = start(config).await;
    chat.deliver(&key("a"), &text("to a")).unwrap();
    chat.deliver(&key("b"), &text("to b")).unwrap();
    chat.deliver(&key("c"), &text("to c")).unwrap();
    assert_eq!(
        [
            chat.last_seq(&key("a")),
            chat.last_seq(&key("b")),
            chat.last_seq(&key("c"))
        ],
        [0, 1, 1]
    );

    // b is the least recently active, but connected: c goes instead.
    let (_socket, welcome) = hello(addr, "b", 0).await;
    assert_eq!(welcome["last_seq"], 1);
    chat.deliver(&key("d"), &text("to d")).unwrap();
    assert_eq!(
        [
            chat.last_seq(&key("b")),
            chat.last_seq(&key("c")),
            chat.last_seq(&key("d"))
        ],
        [1, 0, 1]
    );
}
