//! The XMTP adapter against a fake bridge (`fake_xmtp_bridge.mjs`): own messages dropped,
//! duplicates delivered once, every content type mapped, commands written as the real
//! bridge reads them, crashes restarted, malformed lines skipped.

use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use worldstore_adapters::xmtp::content::{self, XmtpContent};
use worldstore_adapters::xmtp::{BridgeConfig, SendError, XmtpBridge, XmtpMessage};
use worldstore_domain::conversation::{ActionItem, InboundContent, Menu, MenuKind, Outgoing};

const WAIT: Duration = Duration::from_secs(20);

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures_dir() -> PathBuf {
    manifest_dir().join("../fixtures/xmtp")
}

/// A fresh state directory for one fake bridge.
fn state_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "worldstore-xmtp-fake-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fake(scenario: &str, state: &std::path::Path) -> XmtpBridge {
    let mut config = BridgeConfig::node(manifest_dir().join("tests"), Vec::new());
    config.args = vec!["fake_xmtp_bridge.mjs".into()];
    config.env = [
        ("FAKE_SCENARIO", scenario.to_owned()),
        ("FAKE_STATE_DIR", state.display().to_string()),
        ("FAKE_FIXTURES", fixtures_dir().display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into()))
    .collect();
    config.initial_backoff = Duration::from_millis(20);
    config.max_backoff = Duration::from_millis(100);
    config.send_timeout = WAIT;
    XmtpBridge::spawn(config)
}

/// Messages up to and including the fake's `done-<start>` marker.
async fn until_done(bridge: &mut XmtpBridge) -> Vec<XmtpMessage> {
    let mut messages = Vec::new();
    loop {
        let message = tokio::time::timeout(WAIT, bridge.next_message())
            .await
            .expect("the fake bridge went quiet")
            .expect("the bridge stopped");
        let done = message.id.as_str().starts_with("done-");
        messages.push(message);
        if done {
            return messages;
        }
    }
}

fn ids(messages: &[XmtpMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.id.as_str()).collect()
}

#[tokio::test]
async fn own_messages_duplicates_and_malformed_lines_are_dropped() {
    let state = state_dir();
    let mut bridge = fake("inbound", &state);
    let messages = until_done(&mut bridge).await;
    assert_eq!(bridge.ready().await.unwrap().inbox_id, "agent-inbox");
    assert_eq!(
        ids(&messages),
        [
            "fx-actions_menu",
            "fx-actions_styled",
            "fx-intent",
            "fx-markdown",
            "fx-reaction",
            "fx-reply_text",
            "fx-text",
            "fx-transaction_reference",
            "fx-wallet_send_calls",
            "attachment-1",
            "done-1",
        ]
    );
    assert_eq!(
        bridge.starts(),
        1,
        "malformed lines must not restart the bridge"
    );
    bridge.shutdown().await;
}

#[tokio::test]
async fn every_inbound_content_type_maps_to_the_machine_input() {
    let state = state_dir();
    let mut bridge = fake("inbound", &state);
    let messages = until_done(&mut bridge).await;
    let input = |id: &str| {
        let message = messages.iter().find(|m| m.id.as_str() == id).unwrap();
        assert_eq!(message.conversation_id, "conv-1");
        assert_eq!(message.sent_at_ns, 1_764_075_600_000_000_000);
        message.inbound().map(|inbound| inbound.content)
    };
    let text = |t: &str| Some(InboundContent::Text(t.to_owned()));
    assert_eq!(
        input("fx-text"),
        text("Find me wireless headphones under $50 ✓")
    );
    assert_eq!(
        input("fx-markdown"),
        text("**Order placed**\n\n- Total: 23.50 USDC")
    );
    assert_eq!(input("fx-reply_text"), text("2"));
    assert_eq!(input("fx-reaction"), Some(InboundContent::Reaction));
    assert_eq!(
        input("fx-intent"),
        Some(InboundContent::Intent {
            menu_id: "menu-3".into(),
            action_id: "wallet".into()
        })
    );
    assert_eq!(
        input("fx-transaction_reference"),
        Some(InboundContent::TransactionReference {
            tx_hash: "0x5e2c1f6a3b4d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071".into()
        })
    );
    assert_eq!(input("fx-wallet_send_calls"), None);
    assert_eq!(input("fx-actions_menu"), None);
    assert_eq!(input("attachment-1"), None);
    bridge.shutdown().await;
}

fn commands(state: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("commands.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn fixture_content(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join(name)).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["content"].clone()
}

#[tokio::test]
async fn outgoing_text_and_menus_are_written_as_bridge_commands() {
    let state = state_dir();
    let mut bridge = fake("quiet", &state);
    bridge.ready().await.unwrap();
    let menu = Menu {
        id: "menu-3".into(),
        kind: MenuKind::Main,
        description: "Welcome to Worldstore. What would you like to do?".into(),
        actions: vec![
            ActionItem {
                id: "shopping".into(),
                label: "Shopping Assistant".into(),
            },
            ActionItem {
                id: "wallet".into(),
                label: "Wallet Operations".into(),
            },
        ],
        expires_at: 1_795_698_000,
    };
    let first = bridge
        .send_outgoing("conv-1", &Outgoing::Text("Hello".into()))
        .await
        .unwrap();
    let second = bridge
        .send_outgoing("conv-1", &Outgoing::Actions(menu))
        .await
        .unwrap();
    let third = bridge
        .send("conv-1", &content::reaction("fx-text", "👀"))
        .await
        .unwrap();
    assert_eq!([first, second, third], ["sent-1", "sent-2", "sent-3"]);
    let written = commands(&state);
    assert_eq!(
        written[0],
        serde_json::json!({"op": "send", "requestId": "1", "conversationId": "conv-1",
            "contentType": "xmtp.org/text:1.0", "content": "Hello"})
    );
    assert_eq!(written[1]["contentType"], "coinbase.com/actions:1.0");
    assert_eq!(written[1]["content"], fixture_content("actions_menu.json"));
    assert_eq!(written[2]["contentType"], "xmtp.org/reaction:1.0");
    assert_eq!(
        written[2]["content"],
        serde_json::json!({"reference": "fx-text", "action": "added", "content": "👀", "schema": "unicode"})
    );
    bridge.shutdown().await;
}

#[tokio::test]
async fn send_errors_say_whether_a_retry_can_help() {
    let state = state_dir();
    let mut bridge = fake("quiet", &state);
    bridge.ready().await.unwrap();
    let hello = XmtpContent::Text("hi".into());
    let rejected = bridge.send("reject-me", &hello).await.unwrap_err();
    assert_eq!(rejected, SendError::Rejected("unknown conversation".into()));
    assert!(!rejected.is_transient());
    let failed = bridge.send("fail-me", &hello).await.unwrap_err();
    assert!(failed.is_transient());
    let crashed = bridge.send("crash-me", &hello).await.unwrap_err();
    assert_eq!(crashed, SendError::Unavailable);
    // The bridge comes back and takes sends again.
    assert_eq!(bridge.send("conv-1", &hello).await.unwrap(), "sent-4");
    assert_eq!(bridge.starts(), 2);
    bridge.shutdown().await;
}

#[tokio::test]
async fn a_crashing_bridge_is_restarted_and_replayed_messages_arrive_once() {
    let state = state_dir();
    let mut bridge = fake("crash", &state);
    let messages = until_done(&mut bridge).await;
    assert_eq!(ids(&messages), ["m-1", "m-2", "done-3"]);
    assert_eq!(bridge.starts(), 3);
    bridge.shutdown().await;
}

#[tokio::test]
async fn a_bridge_that_cannot_start_makes_sends_time_out_not_hang() {
    let mut config = BridgeConfig::node(state_dir(), Vec::new());
    config.program = "/nonexistent/worldstore-node".into();
    config.initial_backoff = Duration::from_millis(10);
    config.max_backoff = Duration::from_millis(20);
    config.send_timeout = Duration::from_millis(200);
    let bridge = XmtpBridge::spawn(config);
    let error = bridge
        .send("conv-1", &XmtpContent::Text("hi".into()))
        .await
        .unwrap_err();
    assert_eq!(error, SendError::Timeout);
    assert_eq!(bridge.starts(), 0);
    bridge.shutdown().await;
}
