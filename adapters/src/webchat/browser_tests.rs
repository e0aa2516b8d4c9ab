//! Runs the browser harness (`tests/webchat/page.mjs` and `flow.mjs`, playwright-core on the
//! system's headless Chromium) against the real router with the scripted responder. Skips,
//! saying why, when Chromium or the harness's packages are missing (`scripts/install-browser`
//! installs both; `scripts/test-all` runs it first). Under `CI` a missing prerequisite fails.

use super::{WebChat, WebChatConfig, scripted};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Each script takes about 10 s on 2 cores; this bounds a hung browser.
const HARNESS_TIMEOUT: Duration = Duration::from_secs(60);

fn missing_prerequisite(harness: &Path, chromium: &Path) -> Option<String> {
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    if !node.is_ok_and(|status| status.success()) {
        return Some("node is not on PATH".to_owned());
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

async fn run_script(harness: &Path, script: &str, url: &str, target: &str) -> (bool, String) {
    let child = tokio::process::Command::new("node")
        .arg(script)
        .args(["--url", url, "--target", target])
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
        // Under CI (scripts/test-all installs both) a missing browser is a failure.
        assert!(
            std::env::var_os("CI").is_none(),
            "the browser harness cannot run under CI: {reason}"
        );
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

    // One after the other: two browsers at once compete for the two cores with the rest
    // of the test run. The flows run a second time as `--target demo` runs them against
    // `worldstore demo`: on users that already have a history.
    let mut failed = Vec::new();
    for (script, target) in [
        ("page.mjs", "scripted"),
        ("flow.mjs", "scripted"),
        ("flow.mjs", "demo"),
    ] {
        let (ok, output) = run_script(&harness, script, &url, target).await;
        println!("{script} --target {target}:\n{output}");
        if !ok {
            failed.push(format!("{script} --target {target}"));
        }
    }
    assert!(
        failed.is_empty(),
        "browser harness failures (output above): {failed:?}"
    );
}
