//! `worldstore serve` with the agent role, the built binary as a user runs it: the sandbox
//! answers a web chat message over the WebSocket beside the facilitator; live, all three
//! roles on a private anvil (Circle's FiatTokenV2_2) answer a web chat user; and a live
//! agent with missing settings stops at start naming every problem.

#[path = "../../adapters/tests/anvil/mod.rs"]
mod anvil;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(30);

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("worldstore-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The serve process, killed when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve --sandbox --role all` on a free port; returns it and its address.
fn serve_sandbox(dir: &std::path::Path) -> (Served, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_worldstore"));
    command
        .args([
            "serve",
            "--sandbox",
            "--role",
            "all",
            "--port",
            "0",
            "--data-dir",
        ])
        .arg(dir)
        .env_clear();
    let (served, first) = serve(command);
    assert!(
        first.starts_with("agent + facilitator + merchant (sandbox chain) listening on"),
        "{first}"
    );
    (served, address_of(&first))
}

/// The address in serve's first line (`... listening on http://ADDRESS`).
fn address_of(first: &str) -> String {
    first
        .rsplit("http://")
        .next()
        .expect("an address")
        .trim()
        .to_owned()
}

/// Spawns `command` (a serve) and returns it with the first line it printed.
fn serve(mut command: Command) -> (Served, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let served = Served(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines
        .next()
        .expect("serve prints where it listens")
        .unwrap();
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (served, first)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A web chat socket that said hello as `user`.
async fn web_user(address: &str, user: &str) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws"))
        .await
        .expect("the web chat takes WebSockets");
    let hello = json!({"type": "hello", "user": user, "after": 0});
    socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_frame(&mut socket).await["type"], "welcome");
    socket
}

/// Says `text` and returns the frames up to the first of type `until`.
async fn say(socket: &mut Socket, id: &str, text: &str, until: &str) -> (Vec<Value>, Value) {
    let frame = json!({"type": "text", "id": id, "text": text});
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let frame = next_frame(socket).await;
        if frame["type"] == until {
            return (seen, frame);
        }
        seen.push(frame);
        assert!(seen.len() < 20, "no {until} among {seen:#?}");
    }
}

async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("the web chat answers")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn the_sandbox_serves_the_agent_web_chat_beside_the_facilitator() {
    let dir = temp_dir("serve-all");
    let (served, address) = serve_sandbox(&dir);

    let supported: Value = reqwest::get(format!("http://{address}/supported"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(supported["kinds"].is_array(), "{supported}");
    // The sandbox order server shares the port.
    let health = reqwest::get(format!("http://{address}/health"))
        .await
        .unwrap();
    assert!(health.status().is_success());

    let mut socket = web_user(&address, "alice").await;
    let (seen, products) = say(&mut socket, "c1", "search wireless earbuds", "products").await;
    assert!(
        !products["products"].as_array().unwrap().is_empty(),
        "{products}"
    );
    assert!(
        seen.iter().any(|f| f["type"] == "ack" && f["id"] == "c1"),
        "{seen:#?}"
    );
    // The agent keeps the web user under its namespace, in its own database.
    assert!(dir.join("worldstore-agent.sqlite").exists());
    drop(served);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `serve --role all` on `node` (anvil) with sandbox fulfilment and the offline brain,
/// with `extra` environment.
fn live_serve(
    dir: &std::path::Path,
    node: &anvil::Anvil,
    token: &str,
    extra: &[(&str, String)],
) -> (Served, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_worldstore"));
    command
        .args(["serve", "--role", "all", "--port", "0", "--data-dir"])
        .arg(dir)
        .env_clear()
        .envs([
            ("RPC_PROVIDER_URL", node.url.as_str()),
            ("WORLDSTORE_TOKEN", token),
            ("FACILITATOR_PRIVATE_KEY", anvil::FACILITATOR_KEY),
            (
                "WORLDSTORE_DATA_KEY",
                "4242424242424242424242424242424242424242424242424242424242424242",
            ),
            (
                "WORLDSTORE_MASTER_SECRET",
                "0x1111111111111111111111111111111111111111111111111111111111111111",
            ),
            ("WORLDSTORE_COMMERCE", "sandbox"),
            ("WORLDSTORE_BRAIN", "offline"),
            ("SERPAPI_API_KEY", "never-used-by-this-test"),
        ])
        .envs(extra.iter().map(|(k, v)| (k, v)));
    let (served, first) = serve(command);
    assert!(
        first.starts_with("agent + facilitator + merchant (live chain"),
        "{first}"
    );
    let address = address_of(&first);
    (served, address)
}

#[tokio::test]
async fn live_all_roles_on_a_chain_answer_a_web_chat_user() {
    let Some(node) = anvil::Anvil::spawn() else {
        return;
    };
    let token = anvil::deploy_fiat_token(&node.url, &[]).await;
    let dir = temp_dir("serve-live-all");
    let (served, address) = live_serve(
        &dir,
        &node,
        &token.address.to_string(),
        &[("WORLDSTORE_MESSENGERS", "web".into())],
    );
    let health = reqwest::get(format!("http://{address}/health"))
        .await
        .unwrap();
    assert!(health.status().is_success());

    // A greeting needs no search: the agent answers with its main menu.
    let mut socket = web_user(&address, "pat").await;
    let (seen, menu) = say(&mut socket, "c1", "hello", "menu").await;
    assert!(!menu["actions"].as_array().unwrap().is_empty(), "{menu}");
    assert!(
        seen.iter().any(|f| f["type"] == "ack" && f["id"] == "c1"),
        "{seen:#?}"
    );
    // The agent keeps its own database beside the merchant's.
    assert!(dir.join("agent/worldstore.db").exists());
    assert!(dir.join("worldstore.db").exists());
    drop(served);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every command the fake XMTP bridge has read so far.
fn bridge_commands(state: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("commands.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn live_serve_runs_the_xmtp_bridge_and_stops_it_on_sigterm() {
    let Some(node) = anvil::Anvil::spawn() else {
        return;
    };
    let token = anvil::deploy_fiat_token(&node.url, &[]).await;
    let dir = temp_dir("serve-live-xmtp");
    // The fake bridge stands where the real one is installed (`node bridge.mjs` with its
    // packages); serve passes it the XMTP settings and it inherits the FAKE_* ones.
    let bridge = dir.join("bridge");
    std::fs::create_dir_all(bridge.join("node_modules/@xmtp/agent-sdk")).unwrap();
    let adapters = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../adapters");
    std::fs::copy(
        adapters.join("tests/fake_xmtp_bridge.mjs"),
        bridge.join("bridge.mjs"),
    )
    .unwrap();
    let state = dir.join("bridge-state");
    std::fs::create_dir_all(&state).unwrap();
    let (mut served, _) = live_serve(
        &dir.join("data"),
        &node,
        &token.address.to_string(),
        &[
            ("WORLDSTORE_MESSENGERS", "xmtp".into()),
            ("XMTP_WALLET_KEY", format!("0x{}", "22".repeat(32))),
            ("XMTP_DB_ENCRYPTION_KEY", "33".repeat(32)),
            ("WORLDSTORE_XMTP_BRIDGE_DIR", bridge.display().to_string()),
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("FAKE_SCENARIO", "agent".into()),
            ("FAKE_STATE_DIR", state.display().to_string()),
            (
                "FAKE_FIXTURES",
                adapters.join("../fixtures/xmtp").display().to_string(),
            ),
        ],
    );
    let deadline = std::time::Instant::now() + WAIT;
    let answered = |c: &[Value]| {
        c.iter().any(|c| c["content"]["reference"] == "m-1")
            && c.iter()
                .any(|c| c["contentType"] == "coinbase.com/actions:1.0")
    };
    while !answered(&bridge_commands(&state)) {
        assert!(
            std::time::Instant::now() < deadline,
            "no reaction and menu among {:#?}",
            bridge_commands(&state)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        bridge_commands(&state)
            .iter()
            .all(|c| c["content"]["reference"] != "own-1")
    );
    assert!(
        dir.join("data/xmtp").is_dir(),
        "the XMTP database directory"
    );

    // SIGTERM: serve stops the bridge and its workers, and exits cleanly.
    let pid = served.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(status) = served.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline + WAIT,
            "serve did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    drop(served);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_live_agent_with_missing_settings_names_each_problem_and_fails() {
    let dir = temp_dir("serve-agent-missing");
    let config = dir.join("agent.toml");
    std::fs::write(&config, "[agent]\nmessengers = []\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_worldstore"))
        .args(["serve", "--role", "agent", "--config"])
        .arg(&config)
        .current_dir(&dir)
        .env_clear()
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "SERPAPI_API_KEY",
        "WORLDSTORE_MASTER_SECRET",
        "agent.messengers is empty",
        "ANTHROPIC_API_KEY",
        "RPC_PROVIDER_URL",
        "WORLDSTORE_DATA_KEY",
        "agent.merchant_url",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
