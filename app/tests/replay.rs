//! Every recorded conversation in `fixtures/conversations/` replays without a difference
//! through the real machines (SQLite, the embedded EVM, the merchant's order server over
//! HTTP, the agent driver), and its transcript matches the insta snapshot. A change in what
//! the agent says shows up twice: as a replay difference, and as a snapshot to review.

use std::path::PathBuf;
use worldstore::replay::replay_file;

fn recordings() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/conversations");
    worldstore::replay::recordings(&dir).unwrap()
}

#[test]
fn there_are_at_least_twelve_recordings() {
    assert!(recordings().len() >= 12, "{:?}", recordings());
}

#[tokio::test(flavor = "current_thread")]
async fn every_recording_replays_without_a_difference_and_matches_its_snapshot() {
    let mut failures = Vec::new();
    for path in recordings() {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let (script, outcome) = replay_file(&path).await.unwrap();
        if !outcome.matches() {
            failures.push(format!("{name}:\n{}", outcome.differences.join("\n")));
        }
        let summary = format!(
            "# replayed: {} turns, {} model calls ({} input, {} output, {} cache-read tokens), {} purchase(s)",
            outcome.turns,
            outcome.model_calls,
            outcome.usage.input_tokens,
            outcome.usage.output_tokens,
            outcome.usage.cache_read_tokens,
            outcome.purchases
        );
        insta::assert_snapshot!(name, format!("{}{summary}\n", outcome.transcript(&script)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
