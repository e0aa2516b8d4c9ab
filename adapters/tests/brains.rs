//! The Claude and OpenAI-compatible brains against recorded payloads replayed by a local
//! server: the requests they send (checked field by field) and the replies they read.

mod support;

use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{ReplayServer, Reply};
use worldstore_adapters::brain::{
    ClaudeBrain, ClaudeConfig, OpenAiCompatBrain, OpenAiCompatConfig,
};
use worldstore_adapters::retry::RetryPolicy;
use worldstore_domain::conversation::{Context, ToolProposal, ToolResult, tool_specs};
use worldstore_domain::ports::brain::{Brain, BrainError, BrainRequest, HistoryItem, Usage};

const CLAUDE_KEY: &str = "sk-ant-test-key-5f3a9c";
const OPENAI_KEY: &str = "sk-test-openai-7890";

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(60),
    }
}

fn claude(server: &ReplayServer) -> ClaudeBrain {
    let mut config = ClaudeConfig::new(SecretString::from(CLAUDE_KEY), "claude-sonnet-4-5");
    config.base_url = server.base_url.clone();
    config.timeout = Duration::from_secs(5);
    config.retry = fast_retries();
    ClaudeBrain::new(config).unwrap()
}

fn openai(server: &ReplayServer, key: Option<&str>) -> OpenAiCompatBrain {
    let mut config = OpenAiCompatConfig::new(server.base_url.clone(), "gpt-4.1-mini");
    config.api_key = key.map(SecretString::from);
    config.timeout = Duration::from_secs(5);
    config.retry = fast_retries();
    OpenAiCompatBrain::new(config).unwrap()
}

fn ask(history: Vec<HistoryItem>) -> BrainRequest {
    BrainRequest {
        context: Context::Shopping,
        history,
        tools: tool_specs(),
    }
}

fn user(text: &str) -> BrainRequest {
    ask(vec![HistoryItem::User(text.to_owned())])
}

fn call(id: &str, name: &str, input: Value) -> ToolProposal {
    ToolProposal {
        id: id.to_owned(),
        name: name.to_owned(),
        input,
    }
}

fn result(id: &str, content: &str, is_error: bool) -> ToolResult {
    ToolResult {
        call_id: id.to_owned(),
        content: content.to_owned(),
        is_error,
    }
}

/// A search, its results, then a balance check that failed: the turn now being answered.
fn tool_round() -> Vec<HistoryItem> {
    vec![
        HistoryItem::User("find earbuds and check my balance".into()),
        HistoryItem::Assistant("Let me search for that.".into()),
        HistoryItem::ToolCalls(vec![
            call("toolu_1", "search_products", json!({"query": "earbuds"})),
            call("toolu_2", "check_balance", json!({})),
        ]),
        HistoryItem::ToolResults(vec![
            result("toolu_1", "1. Earbuds [ASIN B0ORGAN001] 29.99 USDC", false),
            result("toolu_2", "the chain is unreachable", true),
        ]),
    ]
}

fn assert_no_key(error: &BrainError, key: &str) {
    assert!(!format!("{error}").contains(key), "{error}");
    assert!(!format!("{error:?}").contains(key), "{error:?}");
}

// ---------------------------------------------------------------- Anthropic

#[tokio::test]
async fn claude_posts_messages_with_the_key_version_and_model() {
    let server = ReplayServer::start(vec![Reply::fixture(200, "anthropic/text_reply.json")]).await;
    claude(&server).respond(user("hello")).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(CLAUDE_KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("authorization"), None);
    let body = sent.json();
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["max_tokens"], 1024);
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hello"}]}])
    );
    assert!(body.get("tool_choice").is_none());
}

#[tokio::test]
async fn claude_text_reply_is_read_with_its_usage() {
    let server = ReplayServer::start(vec![Reply::fixture(200, "anthropic/text_reply.json")]).await;
    let reply = claude(&server).respond(user("hello")).await.unwrap();
    assert_eq!(
        reply.text.as_deref(),
        Some("Hi! What would you like to buy today?")
    );
    assert!(reply.proposals.is_empty());
    assert_eq!(
        reply.usage,
        Usage {
            input_tokens: 1200,
            output_tokens: 14,
            cache_read_tokens: 0,
            cache_write_tokens: 900,
        }
    );
}

#[tokio::test]
async fn claude_tool_use_blocks_become_proposals() {
    let server =
        ReplayServer::start(vec![Reply::fixture(200, "anthropic/tool_use_reply.json")]).await;
    let reply = claude(&server)
        .respond(user("earbuds please"))
        .await
        .unwrap();
    assert_eq!(reply.text.as_deref(), Some("Let me search for that."));
    assert_eq!(
        reply.proposals,
        vec![
            call(
                "toolu_01SearchEarbuds0001",
                "search_products",
                json!({"query": "wireless earbuds"})
            ),
            call("toolu_01CheckBalance00002", "check_balance", json!({})),
        ]
    );
    assert_eq!(reply.usage.cache_read_tokens, 900);
}

#[tokio::test]
async fn claude_tool_results_open_the_next_user_message_one_per_tool_use() {
    let server = ReplayServer::start(vec![Reply::fixture(200, "anthropic/text_reply.json")]).await;
    claude(&server).respond(ask(tool_round())).await.unwrap();
    let body = server.requests()[0].json();
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(
        messages[1]["content"],
        json!([
            {"type": "text", "text": "Let me search for that."},
            {"type": "tool_use", "id": "toolu_1", "name": "search_products", "input": {"query": "earbuds"}},
            {"type": "tool_use", "id": "toolu_2", "name": "check_balance", "input": {}},
        ])
    );
    assert_eq!(messages[2]["role"], "user");
    assert_eq!(
        messages[2]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "1. Earbuds [ASIN B0ORGAN001] 29.99 USDC"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "the chain is unreachable", "is_error": true},
        ])
    );
}

#[tokio::test]
async fn claude_a_user_message_after_tool_results_comes_after_them_in_one_message() {
    let server = ReplayServer::start(vec![Reply::fixture(200, "anthropic/text_reply.json")]).await;
    let mut history = tool_round();
    history.push(HistoryItem::User("and the cheapest?".into()));
    claude(&server).respond(ask(history)).await.unwrap();
    let body = server.requests()[0].json();
    let last = &body["messages"][2];
    assert_eq!(last["role"], "user");
    assert_eq!(last["content"][0]["type"], "tool_result");
    assert_eq!(last["content"][1]["type"], "tool_result");
    assert_eq!(last["content"][2]["text"], "and the cheapest?");
}

#[tokio::test]
async fn claude_history_is_trimmed_at_whole_turns_so_no_tool_use_loses_its_result() {
    let server = ReplayServer::start(vec![Reply::fixture(200, "anthropic/text_reply.json")]).await;
    let mut config = ClaudeConfig::new(SecretString::from(CLAUDE_KEY), "claude-sonnet-4-5");
    config.base_url = server.base_url.clone();
    config.retry = fast_retries();
    config.history_budget_chars = 200;
    let brain = ClaudeBrain::new(config).unwrap();
    let mut history = vec![
        HistoryItem::User("old question ".repeat(20)),
        HistoryItem::ToolCalls(vec![call("toolu_old", "check_balance", json!({}))]),
        HistoryItem::ToolResults(vec![result("toolu_old", &"5 USDC ".repeat(20), false)]),
        HistoryItem::Assistant("You have 5 USDC.".into()),
    ];
    history.extend(tool_round());
    brain.respond(ask(history)).await.unwrap();
    let body = server.requests()[0].json();
    let text = body["messages"].to_string();
    assert!(!text.contains("toolu_old"), "the old pair went together");
    assert!(!text.contains("old question"));
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(
        messages[0]["content"][0]["text"],
        "find earbuds and check my balance"
    );
    assert_eq!(messages[2]["content"][0]["tool_use_id"], "toolu_1");
}

#[tokio::test]
async fn claude_request_marks_the_system_block_and_the_last_tool_for_caching() {
    let server = ReplayServer::start(vec![Reply::fixture(200, "anthropic/text_reply.json")]).await;
    claude(&server).respond(user("hi")).await.unwrap();
    let body = server.requests()[0].json();
    let system = body["system"].as_array().unwrap();
    assert_eq!(system[0]["type"], "text");
    assert_eq!(system[0]["cache_control"], json!({"type": "ephemeral"}));
    let prompt = system[0]["text"].as_str().unwrap();
    assert!(prompt.contains("Amazon.com"));
    assert!(prompt.contains("untrusted"));
    let tools = body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), tool_specs().len());
    let (last, others) = tools.split_last().unwrap();
    assert_eq!(last["cache_control"], json!({"type": "ephemeral"}));
    assert!(others.iter().all(|t| t.get("cache_control").is_none()));
    for tool in tools {
        assert!(tool["name"].is_string());
        assert!(tool["description"].is_string());
        assert_eq!(tool["input_schema"]["type"], "object");
    }
}

#[tokio::test]
async fn claude_429_waits_for_retry_after_then_succeeds() {
    let server = ReplayServer::start(vec![
        Reply::fixture(429, "anthropic/error_429_rate_limit.json").header("retry-after", "1"),
        Reply::fixture(200, "anthropic/text_reply.json"),
    ])
    .await;
    let started = Instant::now();
    let reply = claude(&server).respond(user("hi")).await.unwrap();
    assert!(reply.text.is_some());
    assert_eq!(server.requests().len(), 2);
    // retry-after (1 s) beats the 1 ms base delay, capped at the 60 ms maximum.
    assert!(started.elapsed() >= Duration::from_millis(60));
}

#[tokio::test]
async fn claude_529_overloaded_is_retried_then_succeeds() {
    let server = ReplayServer::start(vec![
        Reply::fixture(529, "anthropic/error_529_overloaded.json"),
        Reply::fixture(529, "anthropic/error_529_overloaded.json"),
        Reply::fixture(200, "anthropic/text_reply.json"),
    ])
    .await;
    claude(&server).respond(user("hi")).await.unwrap();
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn claude_overload_that_outlasts_the_retries_is_transient() {
    let server = ReplayServer::start(vec![
        Reply::fixture(
            529,
            "anthropic/error_529_overloaded.json"
        );
        4
    ])
    .await;
    let error = claude(&server).respond(user("hi")).await.unwrap_err();
    assert_eq!(server.requests().len(), 4, "first try and three retries");
    assert!(matches!(&error, BrainError::Transient(m) if m.contains("overloaded_error")));
}

#[tokio::test]
async fn claude_x_should_retry_false_stops_retrying() {
    let server = ReplayServer::start(vec![
        Reply::fixture(429, "anthropic/error_429_rate_limit.json")
            .header("x-should-retry", "false"),
        Reply::fixture(200, "anthropic/text_reply.json"),
    ])
    .await;
    let error = claude(&server).respond(user("hi")).await.unwrap_err();
    assert_eq!(server.requests().len(), 1);
    assert!(matches!(error, BrainError::Transient(_)));
}

#[tokio::test]
async fn claude_401_is_fatal_with_the_message_and_without_the_key() {
    let server = ReplayServer::start(vec![Reply::fixture(
        401,
        "anthropic/error_401_authentication.json",
    )])
    .await;
    let error = claude(&server).respond(user("hi")).await.unwrap_err();
    assert_eq!(server.requests().len(), 1, "no retry");
    assert!(
        matches!(&error, BrainError::Fatal(m) if m.contains("invalid x-api-key")),
        "{error}"
    );
    assert_no_key(&error, CLAUDE_KEY);
}

#[tokio::test]
async fn claude_400_is_fatal_with_the_error_message_and_not_retried() {
    let server = ReplayServer::start(vec![Reply::fixture(
        400,
        "anthropic/error_400_invalid_request.json",
    )])
    .await;
    let error = claude(&server).respond(user("hi")).await.unwrap_err();
    assert_eq!(server.requests().len(), 1);
    assert!(
        matches!(&error, BrainError::Fatal(m) if m.contains("invalid_request_error") && m.contains("tool_result")),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_model_is_retried_then_transient_without_the_key() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut config = ClaudeConfig::new(SecretString::from(CLAUDE_KEY), "m");
    config.base_url = closed.clone();
    config.retry = fast_retries();
    let error = ClaudeBrain::new(config)
        .unwrap()
        .respond(user("hi"))
        .await
        .unwrap_err();
    assert!(matches!(error, BrainError::Transient(_)), "{error}");
    assert_no_key(&error, CLAUDE_KEY);
    let mut config = OpenAiCompatConfig::new(closed, "m");
    config.api_key = Some(SecretString::from(OPENAI_KEY));
    config.retry = fast_retries();
    let error = OpenAiCompatBrain::new(config)
        .unwrap()
        .respond(user("hi"))
        .await
        .unwrap_err();
    assert!(matches!(error, BrainError::Transient(_)), "{error}");
    assert_no_key(&error, OPENAI_KEY);
}

#[tokio::test]
async fn claude_400_is_fatal_and_an_echoed_key_is_redacted() {
    let echo = json!({"type": "error", "error": {"type": "invalid_request_error", "message": format!("bad header x-api-key: {CLAUDE_KEY}")}});
    let server = ReplayServer::start(vec![Reply {
        status: 400,
        body: echo.to_string(),
        headers: Vec::new(),
        delay: Duration::ZERO,
    }])
    .await;
    let error = claude(&server).respond(user("hi")).await.unwrap_err();
    assert!(matches!(&error, BrainError::Fatal(m) if m.contains("[redacted]")));
    assert_no_key(&error, CLAUDE_KEY);
}

#[tokio::test]
async fn claude_tolerates_unknown_block_types_and_stop_reasons() {
    let server = ReplayServer::start(vec![Reply::fixture(
        200,
        "anthropic/unknown_block_and_stop_reason.json",
    )])
    .await;
    let reply = claude(&server).respond(user("mug")).await.unwrap();
    assert_eq!(reply.text.as_deref(), Some("Here is what I found."));
    assert!(reply.proposals.is_empty(), "server tools are not ours");
    assert_eq!(reply.usage.input_tokens, 50);
    assert_eq!(reply.usage.cache_read_tokens, 0);
}

#[tokio::test]
async fn claude_config_debug_does_not_show_the_key() {
    let config = ClaudeConfig::new(SecretString::from(CLAUDE_KEY), "m");
    assert!(!format!("{config:?}").contains(CLAUDE_KEY));
}

// ---------------------------------------------------------------- OpenAI-compatible

#[tokio::test]
async fn openai_posts_chat_completions_with_tools_and_never_tool_choice() {
    let server = ReplayServer::start(vec![Reply::fixture(200, "openai/text_reply.json")]).await;
    openai(&server, Some(OPENAI_KEY))
        .respond(user("hello"))
        .await
        .unwrap();
    let sent = &server.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    let bearer = format!("Bearer {OPENAI_KEY}");
    assert_eq!(sent.header("authorization"), Some(bearer.as_str()));
    let body = sent.json();
    assert!(body.get("tool_choice").is_none());
    assert_eq!(body["model"], "gpt-4.1-mini");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "hello"})
    );
    let tools = body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), tool_specs().len());
    for tool in tools {
        assert_eq!(tool["type"], "function");
        assert!(tool["function"]["name"].is_string());
        assert!(tool["function"]["description"].is_string());
        assert_eq!(tool["function"]["parameters"]["type"], "object");
    }
}

#[tokio::test]
async fn openai_without_a_key_sends_no_authorization() {
    let server = ReplayServer::start(vec![Reply::fixture(200, "openai/text_reply.json")]).await;
    openai(&server, None).respond(user("hello")).await.unwrap();
    assert_eq!(server.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn openai_plain_text_reply_is_read_with_its_usage() {
    let server = ReplayServer::start(vec![Reply::fixture(200, "openai/text_reply.json")]).await;
    let reply = openai(&server, None).respond(user("hello")).await.unwrap();
    assert_eq!(
        reply.text.as_deref(),
        Some("Hi! What would you like to buy today?")
    );
    assert!(reply.proposals.is_empty());
    assert_eq!(
        reply.usage,
        Usage {
            input_tokens: 820,
            output_tokens: 12,
            cache_read_tokens: 768,
            cache_write_tokens: 0,
        }
    );
}

#[tokio::test]
async fn openai_tool_calls_with_string_arguments_become_proposals() {
    let server = ReplayServer::start(vec![Reply::fixture(
        200,
        "openai/tool_calls_string_arguments.json",
    )])
    .await;
    let reply = openai(&server, None)
        .respond(user("earbuds"))
        .await
        .unwrap();
    assert_eq!(reply.text, None);
    assert_eq!(
        reply.proposals,
        vec![
            call(
                "call_AbC123search",
                "search_products",
                json!({"query": "wireless earbuds"})
            ),
            call("call_AbC124balance", "check_balance", json!({})),
        ]
    );
}

#[tokio::test]
async fn openai_ollama_object_arguments_are_accepted() {
    let server = ReplayServer::start(vec![Reply::fixture(
        200,
        "openai/ollama_object_arguments.json",
    )])
    .await;
    let reply = openai(&server, None)
        .respond(user("details"))
        .await
        .unwrap();
    assert_eq!(reply.text, None, "empty content is no text");
    assert_eq!(
        reply.proposals,
        vec![call(
            "call_x1",
            "product_details",
            json!({"asin": "B0ORGAN001"})
        )]
    );
}

#[tokio::test]
async fn openai_missing_or_odd_ids_are_replaced_by_our_own() {
    let server = ReplayServer::start(vec![Reply::fixture(
        200,
        "openai/tool_calls_missing_ids.json",
    )])
    .await;
    let reply = openai(&server, None).respond(user("lamp")).await.unwrap();
    assert_eq!(
        reply.proposals,
        vec![
            call("call-1", "search_products", json!({"query": "desk lamp"})),
            call("call-2", "order_history", json!({})),
            call("call-3", "check_balance", json!({})),
        ]
    );
    assert_eq!(reply.usage, Usage::default());
}

#[tokio::test]
async fn openai_a_tool_call_leaked_into_content_is_a_proposal() {
    let server = ReplayServer::start(vec![Reply::fixture(
        200,
        "openai/tool_call_in_content.json",
    )])
    .await;
    let reply = openai(&server, None).respond(user("mug")).await.unwrap();
    assert_eq!(reply.text, None);
    assert_eq!(
        reply.proposals,
        vec![call(
            "call-1",
            "search_products",
            json!({"query": "coffee mug"})
        )]
    );
}

#[tokio::test]
async fn openai_an_unknown_finish_reason_is_tolerated() {
    let server = ReplayServer::start(vec![Reply::fixture(
        200,
        "openai/length_and_odd_finish.json",
    )])
    .await;
    let reply = openai(&server, None).respond(user("mug")).await.unwrap();
    assert_eq!(reply.text.as_deref(), Some("Here are three mugs"));
}

#[tokio::test]
async fn openai_tool_results_are_tool_messages_after_the_assistant_calls() {
    let server = ReplayServer::start(vec![Reply::fixture(200, "openai/text_reply.json")]).await;
    openai(&server, None)
        .respond(ask(tool_round()))
        .await
        .unwrap();
    let body = server.requests()[0].json();
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        5,
        "system, user, assistant, two tool messages"
    );
    assert_eq!(messages[2]["role"], "assistant");
    assert_eq!(messages[2]["content"], "Let me search for that.");
    let calls = messages[2]["tool_calls"].as_array().unwrap();
    assert_eq!(calls[0]["id"], "toolu_1");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "search_products");
    let arguments: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"query": "earbuds"}));
    assert_eq!(
        messages[3],
        json!({"role": "tool", "tool_call_id": "toolu_1", "content": "1. Earbuds [ASIN B0ORGAN001] 29.99 USDC"})
    );
    assert_eq!(messages[4]["tool_call_id"], "toolu_2");
    assert_eq!(messages[4]["content"], "error: the chain is unreachable");
}

#[tokio::test]
async fn openai_500_is_retried_then_succeeds() {
    let server = ReplayServer::start(vec![
        Reply::fixture(500, "openai/error_500.json"),
        Reply::fixture(200, "openai/text_reply.json"),
    ])
    .await;
    let reply = openai(&server, Some(OPENAI_KEY))
        .respond(user("hi"))
        .await
        .unwrap();
    assert!(reply.text.is_some());
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn openai_401_is_fatal_and_never_shows_the_key() {
    let server = ReplayServer::start(vec![Reply::fixture(401, "openai/error_401.json")]).await;
    let error = openai(&server, Some(OPENAI_KEY))
        .respond(user("hi"))
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1);
    assert!(
        matches!(&error, BrainError::Fatal(m) if m.contains("Incorrect API key")),
        "{error}"
    );
    assert_no_key(&error, OPENAI_KEY);
}
