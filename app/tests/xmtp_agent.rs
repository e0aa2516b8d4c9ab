//! The agent over XMTP, end to end against the fake bridge (`adapters/tests/
//! fake_xmtp_bridge.mjs`, scenario `agent`, speaking the real bridge's newline-delimited
//! JSON): the sandbox world, the offline brain, the XMTP channel and its inbound loop.
//!
//! A user's message reaches the agent as `xmtp:<inbox id>`; the reaction and the replies go
//! back to the user's conversation as bridge `send` commands of the right content types;
//! our own echo is dropped; a message replayed by a restarted bridge is processed once.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use worldstore::messengers::xmtp::{self, XmtpChannel};
use worldstore::messengers::{Messengers, SandboxArrivals};
use worldstore::sandbox::{SandboxConfig, SandboxWorld};
use worldstore_adapters::xmtp::{BridgeConfig, XmtpBridge};
use worldstore_domain::money::UsdcAmount;
use worldstore_domain::ports::store::{Key, MachineKind, Store};

const WAIT: Duration = Duration::from_secs(20);

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("worldstore-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fake_bridge(state: &Path) -> XmtpBridge {
    let adapters = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../adapters");
    let mut config = BridgeConfig::node(adapters.join("tests"), Vec::new());
    config.args = vec!["fake_xmtp_bridge.mjs".into()];
    config.env = [
        ("FAKE_SCENARIO", "agent".to_owned()),
        ("FAKE_STATE_DIR", state.display().to_string()),
        (
            "FAKE_FIXTURES",
            adapters.join("../fixtures/xmtp").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into()))
    .collect();
    config.initial_backoff = Duration::from_millis(20);
    config.send_timeout = WAIT;
    XmtpBridge::spawn(config)
}

/// Every command the fake bridge has read so far.
fn commands(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("commands.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Waits until the commands satisfy `check`.
async fn wait_for(state: &Path, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = commands(state);
        if check(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} among the bridge commands:\n{seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn of_type<'a>(commands: &'a [Value], content_type: &str) -> Vec<&'a Value> {
    commands
        .iter()
        .filter(|c| c["contentType"] == content_type)
        .collect()
}

fn reactions_to(commands: &[Value], message: &str) -> usize {
    of_type(commands, "xmtp.org/reaction:1.0")
        .iter()
        .filter(|c| c["content"]["reference"] == message)
        .count()
}

/// One run of the agent behind a fresh fake bridge, until `until` holds.
async fn run_once(
    world: &Arc<SandboxWorld>,
    state: &Path,
    until: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let bridge = fake_bridge(state);
    let channel = XmtpChannel::new(&bridge);
    let agent = world
        .agent(Messengers {
            web: None,
            xmtp: Some(channel.clone()),
        })
        .await
        .unwrap();
    let running = agent.start();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let arrivals = SandboxArrivals {
        world: world.clone(),
        faucet: Arc::new(|_| UsdcAmount::from_usdc(100)),
    };
    let inbound = tokio::spawn(xmtp::run_inbound(
        agent.clone(),
        channel,
        arrivals,
        bridge,
        stopped,
    ));
    let seen = wait_for(state, "expected reply", until).await;
    let user = Key::parse("xmtp:user-inbox").unwrap();
    assert!(
        agent
            .store()
            .load_machine(MachineKind::Conversation, &user)
            .await
            .unwrap()
            .is_some(),
        "the user is the sender, under the xmtp: namespace"
    );
    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, inbound)
        .await
        .expect("the inbound loop stops")
        .unwrap();
    running.stop().await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xmtp_user_is_answered_through_the_bridge_once_per_message() {
    let dir = temp_dir("xmtp-agent");
    let state = dir.join("bridge");
    std::fs::create_dir_all(&state).unwrap();
    let world = Arc::new(
        SandboxWorld::start(SandboxConfig::new(dir.join("data")))
            .await
            .unwrap(),
    );

    // "hello": the 👀 reaction on that message and the main menu, in the user's conversation.
    let first = run_once(&world, &state, |c| {
        reactions_to(c, "m-1") == 1 && !of_type(c, "coinbase.com/actions:1.0").is_empty()
    })
    .await;
    let reaction = of_type(&first, "xmtp.org/reaction:1.0")[0];
    assert_eq!(reaction["conversationId"], "conv-1");
    assert_eq!(
        reaction["content"],
        serde_json::json!({"reference": "m-1", "action": "added", "content": "👀", "schema": "unicode"})
    );
    let menu = of_type(&first, "coinbase.com/actions:1.0")[0];
    assert_eq!(menu["conversationId"], "conv-1");
    assert!(
        !menu["content"]["actions"].as_array().unwrap().is_empty(),
        "{menu:#}"
    );
    assert!(
        first.iter().all(|c| c["op"] == "send"),
        "only sends: {first:#?}"
    );
    // Our own echo ("own-1") was never answered.
    assert_eq!(reactions_to(&first, "own-1"), 0);
    let after_first = first.len();

    // A restarted bridge replays "hello" and adds a search: the search is answered, the
    // replay is not.
    let second = run_once(&world, &state, |c| {
        reactions_to(c, "m-2") == 1
            && of_type(&c[after_first..], "xmtp.org/text:1.0")
                .iter()
                .any(|t| t["content"].as_str().unwrap_or("").contains("USDC"))
    })
    .await;
    assert_eq!(reactions_to(&second, "m-1"), 1, "m-1 processed once");
    assert_eq!(reactions_to(&second, "own-1"), 0);
    assert!(
        second[after_first..]
            .iter()
            .all(|c| c["conversationId"] == "conv-1"),
        "{second:#?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
