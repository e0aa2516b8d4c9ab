//! The offline brain: a deterministic command grammar standing in for a language model in
//! the sandbox and in tests. It speaks the same port as the real models: it reads the
//! history and proposes tool calls, and the conversation machine validates them.
//!
//! | the user writes | proposal |
//! |---|---|
//! | `search wireless earbuds` (also `find ...`, `look for ...`) | `search_products` |
//! | `buy 2` | `start_checkout` for the second result of the latest search |
//! | `buy B0ABCDEFGH` | `start_checkout` for that ASIN |
//! | `details 1` | `product_details` |
//! | `my orders`, `where is my order` | `order_history` |
//! | `order ord_123` | `order_status` |
//! | `balance` | `check_balance` |
//! | `name: Pat Lee, email: pat@example.com, address: 1 Main St, Seattle, WA 98101` | `edit_profile` |
//! | `my profile` / `delete my profile` | `read_profile` / `delete_profile` |
//! | anything else | the help text |
//!
//! After tool results it answers with their text, so a whole purchase needs no model.

use serde_json::{Value, json};
use worldstore_domain::conversation::ToolProposal;
use worldstore_domain::ports::brain::{Brain, BrainError, BrainReply, BrainRequest, HistoryItem};

/// The marker search results carry for each product, which `buy 2` reads back.
pub const ASIN_MARKER: &str = "[ASIN ";

pub const OFFLINE_HELP: &str = "I understand: \"search wireless earbuds\", \"buy 2\", \"yes\" / \"no\", \"my orders\", \"where is my order\", \"balance\", \"approve\", \"limit 20 per order\" / \"limit 50 per day\", and a profile in one line such as \"name: Pat Lee, email: pat@example.com, address: 1 Main St, Seattle, WA 98101\".";

#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineBrain;

impl Brain for OfflineBrain {
    async fn respond(&self, request: BrainRequest) -> Result<BrainReply, BrainError> {
        Ok(reply_to(&request.history))
    }
}

/// The whole grammar, as a pure function of the history.
pub fn reply_to(history: &[HistoryItem]) -> BrainReply {
    match history.last() {
        Some(HistoryItem::ToolResults(results)) => {
            let text = results
                .iter()
                .map(|r| {
                    if r.is_error {
                        format!("Sorry, that did not work: {}", r.content)
                    } else {
                        r.content.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            BrainReply {
                text: Some(text),
                ..BrainReply::default()
            }
        }
        Some(HistoryItem::User(text)) => command(text, history),
        _ => help(),
    }
}

fn help() -> BrainReply {
    BrainReply {
        text: Some(OFFLINE_HELP.to_owned()),
        ..BrainReply::default()
    }
}

fn propose(name: &str, input: Value) -> BrainReply {
    BrainReply {
        text: None,
        proposals: vec![ToolProposal {
            id: format!("offline-{name}"),
            name: name.to_owned(),
            input,
        }],
        ..BrainReply::default()
    }
}

fn say(text: &str) -> BrainReply {
    BrainReply {
        text: Some(text.to_owned()),
        ..BrainReply::default()
    }
}

fn command(text: &str, history: &[HistoryItem]) -> BrainReply {
    let text = text.trim();
    let lower = text.to_lowercase();
    let rest_after = |prefixes: &[&str]| {
        prefixes.iter().find_map(|p| {
            lower
                .strip_prefix(p)
                .map(|_| text[p.len()..].trim().to_owned())
        })
    };
    if let Some(query) = rest_after(&["search ", "find ", "look for "]).filter(|q| !q.is_empty()) {
        return propose("search_products", json!({ "query": query }));
    }
    if let Some(what) = rest_after(&["buy ", "details "]) {
        let tool = if lower.starts_with("buy ") {
            "start_checkout"
        } else {
            "product_details"
        };
        return match what.parse::<usize>() {
            Ok(n) => match nth_search_result(history, n) {
                Some(asin) => propose(tool, json!({ "asin": asin })),
                None => say("Search first, then pick a result by its number, like \"buy 2\"."),
            },
            Err(_) => propose(tool, json!({ "asin": what })),
        };
    }
    if let Some(limit) = rest_after(&["limit "]) {
        // "limit 20 per order", "limit 50 per day"
        let (amount, per) = limit.split_once(' ').unwrap_or((limit.as_str(), ""));
        let field = match per.trim() {
            "per order" | "an order" => "per_order",
            "per day" | "a day" | "daily" => "per_day",
            _ => return say("Set a limit like \"limit 20 per order\" or \"limit 50 per day\"."),
        };
        return propose("set_spending_limits", json!({ field: amount }));
    }
    if let Some(order_id) = rest_after(&["order "]).filter(|o| !o.contains(' ') && !o.is_empty()) {
        return propose("order_status", json!({ "order_id": order_id }));
    }
    if lower.contains("name:") || lower.contains("email:") || lower.contains("address:") {
        return match profile_line(text) {
            Some(input) => propose("edit_profile", input),
            None => say(
                "Write your profile like: name: Pat Lee, email: pat@example.com, address: 1 Main St, Seattle, WA 98101",
            ),
        };
    }
    match lower.trim_end_matches(['?', '!', '.']) {
        "my orders" | "orders" | "order history" | "where is my order" | "order status"
        | "track my order" => propose("order_history", json!({})),
        "balance" | "my balance" | "check balance" => propose("check_balance", json!({})),
        "my profile" | "profile" | "show my profile" => propose("read_profile", json!({})),
        "delete my profile" | "delete profile" => propose("delete_profile", json!({})),
        "yes" | "no" | "confirm" | "cancel" => {
            say("There is nothing waiting for your confirmation right now.")
        }
        "approve" => say("There is no funding request waiting for your approval right now."),
        _ => help(),
    }
}

/// The ASIN of result `n` (1-based) of the latest search in the history.
fn nth_search_result(history: &[HistoryItem], n: usize) -> Option<String> {
    let results = history.iter().rev().find_map(|item| match item {
        HistoryItem::ToolResults(results) => results
            .iter()
            .find(|r| !r.is_error && r.content.contains(ASIN_MARKER)),
        _ => None,
    })?;
    results
        .content
        .lines()
        .filter_map(|line| {
            let start = line.find(ASIN_MARKER)? + ASIN_MARKER.len();
            line.get(start..start + 10)
        })
        .nth(n.checked_sub(1)?)
        .map(str::to_owned)
}

/// `name: Pat Lee, email: pat@example.com, address: 1 Main St, Seattle, WA 98101`.
fn profile_line(text: &str) -> Option<Value> {
    let mut fields = serde_json::Map::new();
    let lower = text.to_lowercase();
    let keys = ["name:", "email:", "address:"];
    for key in keys {
        let Some(start) = lower.find(key) else {
            continue;
        };
        let after = start + key.len();
        let end = keys
            .iter()
            .filter_map(|k| lower[after..].find(k).map(|i| after + i))
            .min()
            .unwrap_or(text.len());
        let value = text[after..end].trim().trim_end_matches(',').trim();
        match key {
            "address:" => {
                // line1, city, ST 12345
                let parts: Vec<&str> = value.split(',').map(str::trim).collect();
                let [line1, city, state_zip] = parts.as_slice() else {
                    return None;
                };
                let (state, zip) = state_zip.split_once(' ')?;
                fields.insert("line1".into(), json!(line1));
                fields.insert("city".into(), json!(city));
                fields.insert("state".into(), json!(state.trim()));
                fields.insert("postal_code".into(), json!(zip.trim()));
            }
            _ => {
                fields.insert(key.trim_end_matches(':').into(), json!(value));
            }
        }
    }
    (!fields.is_empty()).then_some(Value::Object(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use worldstore_domain::conversation::{ToolCall, ToolResult};

    fn user(text: &str) -> Vec<HistoryItem> {
        vec![HistoryItem::User(text.into())]
    }

    fn call(reply: &BrainReply) -> ToolCall {
        assert_eq!(reply.proposals.len(), 1, "{reply:?}");
        ToolCall::from_proposal(&reply.proposals[0]).expect("the grammar proposes valid calls")
    }

    #[test]
    fn search_phrases_propose_a_search() {
        for text in [
            "search wireless earbuds",
            "Find wireless earbuds",
            "look for wireless earbuds",
        ] {
            assert_eq!(
                call(&reply_to(&user(text))),
                ToolCall::SearchProducts {
                    query: "wireless earbuds".into()
                }
            );
        }
    }

    #[test]
    fn buy_n_picks_that_result_of_the_latest_search() {
        let results =
            "1. Earbuds A — $19.99 [ASIN B0AAAAAAA1]\n2. Earbuds B — $29.99 [ASIN B0BBBBBBB2]";
        let mut history = vec![
            HistoryItem::User("search earbuds".into()),
            HistoryItem::ToolResults(vec![ToolResult {
                call_id: "1".into(),
                content: results.into(),
                is_error: false,
            }]),
        ];
        history.push(HistoryItem::User("buy 2".into()));
        let ToolCall::StartCheckout { asin } = call(&reply_to(&history)) else {
            panic!()
        };
        assert_eq!(asin.as_str(), "B0BBBBBBB2");
        history.push(HistoryItem::User("buy 3".into()));
        assert!(
            reply_to(&history).proposals.is_empty(),
            "there is no third result"
        );
        assert!(
            reply_to(&user("buy 1"))
                .text
                .unwrap()
                .contains("Search first")
        );
    }

    #[test]
    fn a_profile_in_one_line_becomes_one_edit() {
        let reply = reply_to(&user(
            "name: Pat Lee, email: pat@example.com, address: 1 Main St, Seattle, WA 98101",
        ));
        let ToolCall::EditProfile(edit) = call(&reply) else {
            panic!()
        };
        assert_eq!(edit.name.unwrap().expose(), "Pat Lee");
        assert_eq!(edit.email.unwrap().expose(), "pat@example.com");
        assert_eq!(edit.line1.unwrap().expose(), "1 Main St");
        assert_eq!(edit.city.unwrap().expose(), "Seattle");
        assert_eq!(edit.state.unwrap().as_str(), "WA");
        assert_eq!(edit.postal_code.unwrap().expose(), "98101");
    }

    #[test]
    fn the_other_commands_map_to_their_tools() {
        assert_eq!(call(&reply_to(&user("my orders"))), ToolCall::OrderHistory);
        assert_eq!(
            call(&reply_to(&user("Where is my order?"))),
            ToolCall::OrderHistory
        );
        assert_eq!(call(&reply_to(&user("balance"))), ToolCall::CheckBalance);
        assert_eq!(
            call(&reply_to(&user("order ord_42"))),
            ToolCall::OrderStatus {
                order_id: "ord_42".into()
            }
        );
        assert_eq!(
            call(&reply_to(&user("delete my profile"))),
            ToolCall::DeleteProfile
        );
    }

    #[test]
    fn anything_else_gets_the_help_text_and_tool_results_are_read_back() {
        assert_eq!(
            reply_to(&user("what is the meaning of life"))
                .text
                .as_deref(),
            Some(OFFLINE_HELP)
        );
        let history = vec![HistoryItem::ToolResults(vec![
            ToolResult {
                call_id: "1".into(),
                content: "Your balance: 12.00 USDC on base-sepolia".into(),
                is_error: false,
            },
            ToolResult {
                call_id: "2".into(),
                content: "invalid input: ZIP".into(),
                is_error: true,
            },
        ])];
        let text = reply_to(&history).text.unwrap();
        assert!(text.starts_with("Your balance: 12.00 USDC"));
        assert!(text.contains("Sorry, that did not work: invalid input: ZIP"));
    }
}
