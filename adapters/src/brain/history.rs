//! Preparing the history for a model: pairing tool calls with their results, then trimming
//! from the front at whole turns.
//!
//! Both APIs refuse (400) a tool call without its result or a result without its call, so:
//!
//! | history as stored | as sent |
//! |---|---|
//! | tool calls followed by their results | unchanged; results in call order, one per call |
//! | a call whose result is missing | an error result "no result was recorded" |
//! | a result for no call of the turn before | dropped |
//! | longer than the budget | oldest whole turns dropped (a turn starts at a user message) |
//!
//! Invariants: what is sent starts with a user message when the history has one, and the
//! newest turn is always kept, whatever its size.

use worldstore_domain::conversation::ToolResult;
use worldstore_domain::ports::brain::HistoryItem;

/// The paired and trimmed history, oldest first.
pub(crate) fn prepare(history: &[HistoryItem], budget_chars: usize) -> Vec<HistoryItem> {
    trim(pair(history), budget_chars)
}

/// Every tool call followed by exactly one result per call, in call order.
fn pair(history: &[HistoryItem]) -> Vec<HistoryItem> {
    let mut paired = Vec::with_capacity(history.len());
    let mut items = history.iter().peekable();
    while let Some(item) = items.next() {
        match item {
            HistoryItem::ToolCalls(calls) if calls.is_empty() => {}
            HistoryItem::ToolCalls(calls) => {
                let results = match items.peek() {
                    Some(HistoryItem::ToolResults(results)) => {
                        items.next();
                        results.as_slice()
                    }
                    _ => &[],
                };
                let matched = calls
                    .iter()
                    .map(|call| {
                        results
                            .iter()
                            .find(|r| r.call_id == call.id)
                            .cloned()
                            .unwrap_or_else(|| ToolResult {
                                call_id: call.id.clone(),
                                content: "no result was recorded for this call".to_owned(),
                                is_error: true,
                            })
                    })
                    .collect();
                paired.push(HistoryItem::ToolCalls(calls.clone()));
                paired.push(HistoryItem::ToolResults(matched));
            }
            // Results not right after their calls answer nothing the model asked.
            HistoryItem::ToolResults(_) => {}
            other => paired.push(other.clone()),
        }
    }
    paired
}

fn size(item: &HistoryItem) -> usize {
    match item {
        HistoryItem::User(text) | HistoryItem::Assistant(text) => text.len(),
        HistoryItem::ToolCalls(calls) => calls
            .iter()
            .map(|c| c.id.len() + c.name.len() + c.input.to_string().len())
            .sum(),
        HistoryItem::ToolResults(results) => results
            .iter()
            .map(|r| r.call_id.len() + r.content.len())
            .sum(),
    }
}

/// Drops the oldest whole turns until the rest fits the budget (the newest turn stays).
fn trim(history: Vec<HistoryItem>, budget_chars: usize) -> Vec<HistoryItem> {
    let starts: Vec<usize> = history
        .iter()
        .enumerate()
        .filter(|(_, item)| matches!(item, HistoryItem::User(_)))
        .map(|(i, _)| i)
        .collect();
    let Some(&first) = starts.first() else {
        return history;
    };
    let mut total: usize = history[first..].iter().map(size).sum();
    let mut cut = first;
    for window in starts.windows(2) {
        if total <= budget_chars {
            break;
        }
        let (from, to) = (window[0], window[1]);
        total -= history[from..to].iter().map(size).sum::<usize>();
        cut = to;
    }
    history.into_iter().skip(cut).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use worldstore_domain::conversation::ToolProposal;

    fn call(id: &str) -> ToolProposal {
        ToolProposal {
            id: id.to_owned(),
            name: "check_balance".to_owned(),
            input: json!({}),
        }
    }

    fn result(id: &str) -> ToolResult {
        ToolResult {
            call_id: id.to_owned(),
            content: "5 USDC".to_owned(),
            is_error: false,
        }
    }

    #[test]
    fn a_call_without_a_result_gets_an_error_result_and_a_stray_result_is_dropped() {
        let history = vec![
            HistoryItem::ToolResults(vec![result("orphan")]),
            HistoryItem::User("balance".into()),
            HistoryItem::ToolCalls(vec![call("a"), call("b")]),
            HistoryItem::ToolResults(vec![result("b"), result("stray")]),
        ];
        let paired = prepare(&history, usize::MAX);
        assert_eq!(paired.len(), 3);
        let HistoryItem::ToolResults(results) = &paired[2] else {
            panic!("results follow calls: {paired:?}");
        };
        let ids: Vec<&str> = results.iter().map(|r| r.call_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(results[0].is_error);
        assert!(!results[1].is_error);
    }

    #[test]
    fn trimming_drops_whole_turns_from_the_front_and_keeps_the_newest() {
        let history = vec![
            HistoryItem::User("x".repeat(100)),
            HistoryItem::ToolCalls(vec![call("a")]),
            HistoryItem::ToolResults(vec![result("a")]),
            HistoryItem::Assistant("y".repeat(100)),
            HistoryItem::User("second".into()),
            HistoryItem::ToolCalls(vec![call("b")]),
            HistoryItem::ToolResults(vec![result("b")]),
            HistoryItem::User("z".repeat(500)),
        ];
        let trimmed = prepare(&history, 100);
        assert_eq!(trimmed, history[7..].to_vec(), "newest turn kept alone");
        let trimmed = prepare(&history, 560);
        assert_eq!(trimmed, history[4..].to_vec());
        assert_eq!(prepare(&history, usize::MAX), history);
    }
}
