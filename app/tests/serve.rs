//! `worldstore serve` with the agent role, the built binary as a user runs it: the sandbox
//! answers a web chat message over the WebSocket beside the facilitator, and a live agent
//! with missing settings stops at start naming every problem.

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_worldstore"))
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
        .env_clear()
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
    assert!(first.starts_with("agent + facilitator"), "{first}");
    let address = first
        .rsplit("http://")
        .next()
        .expect("an address")
        .trim()
        .to_owned();
    (served, address)
}

async fn next_frame(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
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

    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws"))
        .await
        .expect("the web chat takes WebSockets");
    let hello = json!({"type": "hello", "user": "alice", "after": 0});
    socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_frame(&mut socket).await["type"], "welcome");
    let search = json!({"type": "text", "id": "c1", "text": "search wireless earbuds"});
    socket
        .send(Message::Text(search.to_string().into()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let products = loop {
        let frame = next_frame(&mut socket).await;
        if frame["type"] == "products" {
            break frame;
        }
        seen.push(frame);
        assert!(seen.len() < 20, "no products among {seen:#?}");
    };
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
