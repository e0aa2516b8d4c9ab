//! `worldstore chat` as a user runs it: the built binary, a piped script, the sandbox.

use std::io::Write;
use std::process::{Command, Stdio};

const PROFILE: &str =
    "name: Pat Lee, email: pat@example.com, address: 1 Main St, Seattle, WA 98101";

fn chat(dir: &std::path::Path, user: &str, faucet: &str, script: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_worldstore"))
        .args([
            "chat",
            "--user",
            user,
            "--faucet",
            faucet,
            "--wait-seconds",
            "5",
        ])
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worldstore chat starts");
    let mut stdin = child.stdin.take().unwrap();
    for line in script {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "chat failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("worldstore-chat-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_piped_script_searches_buys_gives_a_profile_confirms_and_gets_the_payment_hash() {
    let dir = temp_dir("buy");
    let out = chat(
        &dir,
        "alice",
        "100",
        &["search usb-c cable", "buy 1", PROFILE, "yes"],
    );
    let order = [
        "[1] Shopping Assistant",
        "Tap a product to get a quote",
        "Before I can order",
        "Saved: your profile is complete.",
        "Reply yes to buy",
        "Payment transaction on base-sepolia: 0x",
        "Paid ",
    ];
    let mut from = 0;
    for needle in order {
        let at = out[from..]
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} after byte {from} in:\n{out}"));
        from += at;
    }
    assert!(
        out.contains("\n[1] Confirm and pay\n"),
        "menus are numbered:\n{out}"
    );
    assert!(dir.join("worldstore-agent.sqlite").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unfunded_user_approves_the_funding_request_and_the_purchase_resumes_by_itself() {
    let dir = temp_dir("fund");
    let out = chat(
        &dir,
        "bob",
        "0",
        &[PROFILE, "search usb-c cable", "buy 2", "yes", "approve"],
    );
    let order = [
        "Reply yes to buy",
        "You need ",
        "[1] Add Funds Now",
        "Send ",
        "reply \"approve\"",
        "Thanks! I will continue as soon as the funds arrive.",
        "Funds received",
        "Payment transaction on base-sepolia: 0x",
    ];
    let mut from = 0;
    for needle in order {
        let at = out[from..]
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} after byte {from} in:\n{out}"));
        from += at;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
