//! The bridge's newline-delimited JSON (see `bridge/bridge.mjs` for the other side).
//!
//! Events are parsed leniently about what we do not know (an unknown `event` is
//! [`BridgeEvent::Unknown`], extra fields are ignored) and strictly about what we use: a
//! line that is not JSON or lacks a field is an error the supervisor logs and skips.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum BridgeEvent {
    #[serde(rename_all = "camelCase")]
    Ready {
        inbox_id: String,
        #[serde(default)]
        address: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Message {
        id: String,
        conversation_id: String,
        sender_inbox_id: String,
        #[serde(default)]
        sender_address: Option<String>,
        /// Nanoseconds as a decimal string (JSON numbers lose precision past 2^53).
        sent_at_ns: String,
        content_type: String,
        #[serde(default)]
        content: Value,
    },
    #[serde(rename_all = "camelCase")]
    Sent {
        request_id: String,
        ok: bool,
        #[serde(default)]
        message_id: Option<String>,
        #[serde(default)]
        error: Option<String>,
    },
    Error {
        message: String,
    },
    #[serde(other)]
    Unknown,
}

impl BridgeEvent {
    pub fn parse(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line)
    }
}

/// A command for the bridge, written as one line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum BridgeCommand {
    #[serde(rename_all = "camelCase")]
    Send {
        request_id: String,
        conversation_id: String,
        content_type: String,
        content: Value,
    },
}

impl BridgeCommand {
    /// The command as one line, newline included.
    pub fn to_line(&self) -> String {
        // A tagged enum of strings and JSON values always serialises.
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_event_is_tolerated() {
        let event = BridgeEvent::parse(r#"{"event":"stats","cpu":3}"#).unwrap();
        assert_eq!(event, BridgeEvent::Unknown);
    }

    #[test]
    fn a_message_without_an_id_is_an_error() {
        assert!(BridgeEvent::parse(r#"{"event":"message","conversationId":"c"}"#).is_err());
    }

    #[test]
    fn a_send_command_is_one_camel_case_line() {
        let line = BridgeCommand::Send {
            request_id: "7".into(),
            conversation_id: "c1".into(),
            content_type: "xmtp.org/text:1.0".into(),
            content: Value::String("hi".into()),
        }
        .to_line();
        assert_eq!(
            line,
            "{\"op\":\"send\",\"requestId\":\"7\",\"conversationId\":\"c1\",\"contentType\":\"xmtp.org/text:1.0\",\"content\":\"hi\"}\n"
        );
    }
}
