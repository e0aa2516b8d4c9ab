//! `worldstore demo`, the built binary, driven by a real browser (headless Chromium through
//! playwright-core, `tests/webchat/flow.mjs --target demo`): search, buy, confirm, paid,
//! shipped, delivered as `demo`; and as `demo-unfunded` the funding request, the approval
//! from the user's own simulated wallet, then the purchase resuming by itself.
//! Screenshots are kept under `.work/artifacts/webchat/demo/`.
//!
//! Also: a second demo on the same port stops with a clear message, and a restarted demo
//! keeps its users' conversations.
//!
//! Skips, saying why, when Chromium or the harness's packages are missing; under `CI`
//! (`scripts/test-all` installs them) that is a failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Demo {
    child: Child,
    url: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the demo on a free port and returns once it printed its URL.
fn start(data_dir: &Path, port: u16) -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_worldstore"))
        .args([
            "demo",
            "--port",
            &port.to_string(),
            "--ships-after",
            "2",
            "--delivered-after",
            "4",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the worldstore binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the demo prints its URL before anything else ends")
            .expect("utf-8");
        if let Some(rest) = line.trim().strip_prefix("Web chat:") {
            let url = rest.trim().split("/?").next().unwrap().to_owned();
            break url;
        }
    };
    // Keep draining stdout so the demo never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Demo { child, url }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn missing_prerequisite(harness: &Path, chromium: &Path) -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("node is not on PATH".into());
    }
    if !chromium.exists() {
        return Some(format!("{} is missing", chromium.display()));
    }
    if !harness.join("node_modules/playwright-core").exists() {
        return Some(format!(
            "{}/node_modules/playwright-core is missing",
            harness.display()
        ));
    }
    None
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("worldstore-demo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_browser_buys_and_funds_through_the_demo() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let harness = root.join("tests/webchat");
    let chromium = std::env::var_os("WORLDSTORE_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if let Some(reason) = missing_prerequisite(&harness, &chromium) {
        assert!(
            std::env::var_os("CI").is_none(),
            "the demo browser test cannot run under CI: {reason}"
        );
        println!("SKIPPED the demo browser test: {reason} (run scripts/install-browser)");
        return;
    }
    let data = temp_dir("browser");
    let demo = start(&data, free_port());
    let artifacts = root.join(".work/artifacts/webchat/demo");
    std::fs::create_dir_all(&artifacts).unwrap();
    let started = Instant::now();
    let output = Command::new("node")
        .args([
            "flow.mjs",
            "--url",
            &demo.url,
            "--target",
            "demo",
            "--only",
            "buy,funding,reload",
        ])
        .arg("--out")
        .arg(&artifacts)
        .current_dir(&harness)
        .output()
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(output.status.success(), "browser flows failed:\n{report}");
    for check in ["ok   buy", "ok   funding", "ok   reload"] {
        assert!(report.contains(check), "{check} missing:\n{report}");
    }
    println!("browser flows took {:?}", started.elapsed());
    drop(demo);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_second_demo_on_the_same_port_stops_cleanly_and_a_restart_keeps_the_data() {
    let data = temp_dir("twice");
    let port = free_port();
    let first = start(&data, port);
    let second = Command::new(env!("CARGO_BIN_EXE_worldstore"))
        .args(["demo", "--port", &port.to_string()])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("runs");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("is another demo running"), "{err}");
    // The first demo still answers.
    let page = std::net::TcpStream::connect(first.url.trim_start_matches("http://"));
    assert!(page.is_ok());
    drop(first);
    // A restart over the same data starts and answers again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let again = loop {
        let demo = start(&data, port);
        if !demo.url.is_empty() || Instant::now() > deadline {
            break demo;
        }
    };
    assert!(std::net::TcpStream::connect(again.url.trim_start_matches("http://")).is_ok());
    assert!(data.join("worldstore-agent.sqlite").exists());
    drop(again);
    let _ = std::fs::remove_dir_all(&data);
}
