//! Runs the browser harness (`tests/webchat/page.mjs` and `flow.mjs`, playwright-core on the
//! system's headless Chromium) against the real router with the scripted responder. Skips,
//! saying why, when Chromium or the harness's packages are missing (`scripts/install-browser`
//! installs both; `scripts/test-all` runs it first).

use super::{WebChat, WebChatConfig, scripted};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Both scripts together stay well under a minute (about 10 s on 2 cores).
const HARNESS_TIMEOUT: Duration = Duration::from_secs(90);

fn missing_prerequisite(harness: &Path, chromium: &Path) -> Option<String> {
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

async fn run_script(harness: &Path, script: &str, url: &str) -> (bool, String) {
    let child = tokio::process::Command::new("node")
        .arg(script)
        .args(["--url", url, "--target", "scripted"])
        .current_dir(harness)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) => return (false, format!("cannot start node: {e}")),
    };
    match tokio::time::timeout(HARNESS_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(output)) => (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        ),
        Ok(Err(e)) => (false, format!("node failed: {e}")),
        Err(_) => (
            false,
            format!("{script} took longer than {HARNESS_TIMEOUT:?}"),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_passes_the_browser_harness() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let harness = root.join("tests/webchat");
    let chromium = std::env::var_os("WORLDSTORE_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if let Some(reason) = missing_prerequisite(&harness, &chromium) {
        println!("SKIPPED the browser harness: {reason} (run scripts/install-browser)");
        return;
    }
    let (chat, inbound) = WebChat::new(WebChatConfig {
        explorer_links: true,
        ..WebChatConfig::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(scripted::run(chat.clone(), inbound));
    tokio::spawn(chat.serve(listener));

    let (page, flow) = tokio::join!(
        run_script(&harness, "page.mjs", &url),
        run_script(&harness, "flow.mjs", &url)
    );
    println!("page.mjs:\n{}\nflow.mjs:\n{}", page.1, flow.1);
    assert!(
        page.0 && flow.0,
        "the browser harness failed (output above)"
    );
}
