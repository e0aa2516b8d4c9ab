//! The `worldstore` CLI as a user runs it: real process, real arguments and environment.

use std::process::{Command, Output};

const ANVIL_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

fn worldstore(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_worldstore"));
    command.args(args).env_remove("WALLET_PRIVATE_KEY");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The first case of `fixtures/vectors/<file>` matching `wanted`, field `field`.
fn vector(file: &str, wanted: impl Fn(&serde_json::Value) -> bool, field: &str) -> String {
    let path = format!("{}/../fixtures/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    file["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| wanted(c))
        .and_then(|c| c[field].as_str())
        .expect("a matching vector")
        .to_owned()
}

fn vector_header(kind: &str) -> String {
    vector("x402_headers.json", |c| c["header"] == kind, "value")
}

#[test]
fn decode_prints_an_sdk_payment_as_json() {
    let output = worldstore(
        &["x402", "decode", &vector_header("PAYMENT-SIGNATURE")],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("prints JSON");
    assert_eq!(json["kind"], "PaymentPayload");
    assert_eq!(json["message"]["x402Version"], 2);
    assert_eq!(json["message"]["accepted"]["network"], "eip155:84532");
}

#[test]
fn decode_recognises_a_402_answer_and_a_settlement_response() {
    let output = worldstore(&["x402", "decode", &vector_header("PAYMENT-REQUIRED")], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("\"kind\": \"PaymentRequiredV2\""));
    let output = worldstore(
        &["x402", "decode", &vector_header("X-PAYMENT-RESPONSE")],
        &[],
    );
    assert!(stdout(&output).contains("\"kind\": \"SettleResponse\""));
}

#[test]
fn decode_explains_what_is_wrong_and_fails() {
    let output = worldstore(&["x402", "decode", "%%%not-base64"], &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("not standard base64"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).is_empty());

    // base64 of `{"x402Version":2,"payload":{}}`
    let output = worldstore(
        &["x402", "decode", "eyJ4NDAyVmVyc2lvbiI6MiwicGF5bG9hZCI6e319"],
        &[],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("missing field"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn wallet_address_derives_from_the_environment_secret() {
    let output = worldstore(
        &["wallet", "address", "--inbox", "web:alice"],
        &[("WALLET_PRIVATE_KEY", ANVIL_KEY_0)],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    // fixtures/vectors/wallets.json: default scheme, key A, inbox "web:alice".
    let expected = expected_wallet("default", "web:alice");
    assert_eq!(stdout(&output).trim(), expected);

    let output = worldstore(
        &[
            "wallet",
            "address",
            "--inbox",
            "web:alice",
            "--scheme",
            "legacy",
        ],
        &[("WALLET_PRIVATE_KEY", ANVIL_KEY_0)],
    );
    assert_eq!(
        stdout(&output).trim(),
        expected_wallet("legacy", "web:alice")
    );
}

fn expected_wallet(scheme: &str, inbox: &str) -> String {
    vector(
        "wallets.json",
        |c| c["scheme"] == scheme && c["inboxId"] == inbox && c["masterSecret"] == ANVIL_KEY_0,
        "address",
    )
}

#[test]
fn wallet_address_without_a_secret_says_what_to_set() {
    let output = worldstore(&["wallet", "address", "--inbox", "web:alice"], &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("WALLET_PRIVATE_KEY is not set"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn wallet_address_never_prints_the_secret_even_when_it_is_malformed() {
    let secret = "0xnot-a-valid-key-but-still-secret-material-000000000000000000000";
    let output = worldstore(
        &["wallet", "address", "--inbox", "web:alice"],
        &[("WALLET_PRIVATE_KEY", secret)],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("master secret must be 32 bytes of hex"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("secret-material"));
    assert!(!stdout(&output).contains("secret-material"));
}

#[test]
fn the_example_walks_through_a_payment_and_refuses_the_tampered_copy() {
    let output = worldstore(&["x402", "example"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("Ready to settle."), "{text}");
    assert!(
        text.contains("is refused: invalid_exact_evm_payload_authorization_value_mismatch"),
        "{text}"
    );
}
