//! The recording format: a conversation as a plain-text script, read and written back.
//!
//! ```text
//! # First purchase: the user gives a profile, confirms, is told of payment and delivery.
//! = faucet 100
//!
//! > alice: search usb-c cable
//! < alice: [products] ...
//! < alice: Tap a product to get a quote:
//!   1. Buy ...
//! ~ wait 30s
//! ```
//!
//! | line | meaning |
//! |---|---|
//! | `# ...`, blank | a comment, kept as written |
//! | `= faucet 100`, `= faucet bob 0` | USDC credited on first contact (everyone, or one user) |
//! | `= limit per-order 20`, `= limit per-day 50` | the spending limits, in USDC |
//! | `= fail <ASIN> unavailable\|quote-expires\|payment-fails\|delivery-fails` | fulfilment fails so |
//! | `= product {json}` | a search result (SerpAPI `organic_results` item) added to the catalogue |
//! | `= brain recorded` | the model answers only from `@` lines (default: the offline grammar) |
//! | `= ships-after 10`, `= delivered-after 30` | fulfilment timing, in seconds |
//! | `> alice: text` | alice sends a message |
//! | `> alice taps <label>` | alice taps the action so labelled in the latest menu sent to her |
//! | `> alice approves` | alice approves the latest funding request in her own wallet |
//! | `@ {json}` | a recorded model answer (Anthropic Messages API body) for the input above |
//! | `~ wait 30s` (`s`, `m`, `h`) | time passes; due work runs |
//! | `~ crash` | the process dies before running the input above; a new one takes over |
//! | `~ restart` | the process stops cleanly; a new one opens the same database |
//! | `< alice: text` | what the agent sent alice; a following line starting with two spaces continues the message |
//! | `! alice: tool -> result` | a tool result the model was shown in alice's turn (with `= brain recorded`) |

use std::fmt::Write as _;

/// Something that happens in a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Say { user: String, text: String },
    Tap { user: String, label: String },
    Approve { user: String },
    Wait { seconds: u64 },
    Crash,
    Restart,
}

impl Action {
    /// Renames the acting user.
    pub fn rename(&mut self, new_name: impl Fn(&str) -> String) {
        match self {
            Action::Say { user, .. } | Action::Tap { user, .. } | Action::Approve { user } => {
                *user = new_name(user);
            }
            Action::Wait { .. } | Action::Crash | Action::Restart => {}
        }
    }

    /// The user who acts, if a user does.
    pub fn user(&self) -> Option<&str> {
        match self {
            Action::Say { user, .. } | Action::Tap { user, .. } | Action::Approve { user } => {
                Some(user)
            }
            Action::Wait { .. } | Action::Crash | Action::Restart => None,
        }
    }

    /// Whether this is a user's turn (counted as a turn in benchmarks).
    pub fn is_turn(&self) -> bool {
        matches!(
            self,
            Action::Say { .. } | Action::Tap { .. } | Action::Approve { .. }
        )
    }
}

/// One message the agent sent (`<`), or a tool result the model was shown (`!`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    pub user: String,
    pub text: String,
    /// A tool result given to the model (recorded-brain recordings show them, since the
    /// model's own words prove nothing).
    pub tool: bool,
}

/// An action, what the model answered to it, and what the agent sent in return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based line of the action in the file.
    pub line: usize,
    /// Comments and blank lines before the action.
    pub leading: Vec<String>,
    pub action: Action,
    pub raw: String,
    /// Recorded model answers (raw JSON), in the order the agent asks.
    pub model: Vec<String>,
    pub expected: Vec<Said>,
}

/// A parsed recording.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// Comments and `=` lines before the first action, as written.
    pub header: Vec<String>,
    /// The `=` lines, without the `= `.
    pub setup: Vec<(usize, String)>,
    pub steps: Vec<Step>,
    /// Comments after the last step.
    pub trailing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

fn error(line: usize, message: impl Into<String>) -> ScriptError {
    ScriptError {
        line,
        message: message.into(),
    }
}

fn duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = number.parse().ok()?;
    match unit.trim() {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    }
}

fn action(line: usize, rest: &str) -> Result<Action, ScriptError> {
    if let Some((user, text)) = rest.split_once(": ")
        && !user.contains(' ')
    {
        return Ok(Action::Say {
            user: user.to_owned(),
            text: text.to_owned(),
        });
    }
    if let Some((user, label)) = rest.split_once(" taps ") {
        return Ok(Action::Tap {
            user: user.trim().to_owned(),
            label: label.trim().to_owned(),
        });
    }
    if let Some(user) = rest.strip_suffix(" approves") {
        return Ok(Action::Approve {
            user: user.trim().to_owned(),
        });
    }
    Err(error(
        line,
        format!("{rest:?} is not `user: text`, `user taps label` or `user approves`"),
    ))
}

impl Script {
    /// Whether the step after step `i` is a crash: then step `i`'s input is taken in and the
    /// process dies before running it.
    pub fn crash_follows(&self, i: usize) -> bool {
        self.steps
            .get(i + 1)
            .is_some_and(|next| next.action == Action::Crash)
    }

    pub fn parse(text: &str) -> Result<Self, ScriptError> {
        let mut script = Script::default();
        let mut pending: Vec<String> = Vec::new();
        // Whether a continuation line would extend the last expected message.
        let mut in_message = false;
        for (index, raw) in text.lines().enumerate() {
            let n = index + 1;
            if in_message && let Some(more) = raw.strip_prefix("  ") {
                if let Some(said) = script.steps.last_mut().and_then(|s| s.expected.last_mut()) {
                    said.text.push('\n');
                    said.text.push_str(more);
                }
                continue;
            }
            in_message = false;
            let trimmed = raw.trim_end();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                pending.push(trimmed.to_owned());
                continue;
            }
            let (marker, rest) = trimmed.split_at(1);
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            match marker {
                "=" => {
                    if !script.steps.is_empty() {
                        return Err(error(n, "set-up lines come before the first action"));
                    }
                    script.header.append(&mut pending);
                    script.header.push(trimmed.to_owned());
                    script.setup.push((n, rest.to_owned()));
                }
                ">" | "~" => {
                    let action = if marker == ">" {
                        action(n, rest)?
                    } else {
                        match rest.split_once(' ').unwrap_or((rest, "")) {
                            ("wait", time) => Action::Wait {
                                seconds: duration(time)
                                    .ok_or_else(|| error(n, format!("bad duration {time:?}")))?,
                            },
                            ("crash", "") => Action::Crash,
                            ("restart", "") => Action::Restart,
                            _ => return Err(error(n, format!("unknown event {rest:?}"))),
                        }
                    };
                    if script.steps.is_empty() {
                        // Comments up to the last blank line belong to the header.
                        let split = pending
                            .iter()
                            .rposition(String::is_empty)
                            .map_or(0, |i| i + 1);
                        script.header.extend(pending.drain(..split));
                    }
                    script.steps.push(Step {
                        line: n,
                        leading: std::mem::take(&mut pending),
                        action,
                        raw: trimmed.to_owned(),
                        model: Vec::new(),
                        expected: Vec::new(),
                    });
                }
                "@" => {
                    let step = script
                        .steps
                        .last_mut()
                        .filter(|s| s.expected.is_empty() && pending.is_empty())
                        .ok_or_else(|| error(n, "a model answer must follow its input"))?;
                    step.model.push(rest.to_owned());
                }
                "<" | "!" => {
                    let step = script
                        .steps
                        .last_mut()
                        .filter(|_| pending.is_empty())
                        .ok_or_else(|| error(n, "an agent message must follow an action"))?;
                    let (user, text) = rest
                        .split_once(": ")
                        .or_else(|| rest.strip_suffix(':').map(|u| (u, "")))
                        .ok_or_else(|| error(n, "an agent message is `< user: text`"))?;
                    step.expected.push(Said {
                        user: user.to_owned(),
                        text: text.to_owned(),
                        tool: marker == "!",
                    });
                    in_message = true;
                }
                _ => {
                    return Err(error(
                        n,
                        format!("a line starts with one of = > ~ @ < #, not {marker:?}"),
                    ));
                }
            }
        }
        if script.steps.is_empty() {
            script.header.append(&mut pending);
        } else {
            script.trailing = pending;
        }
        Ok(script)
    }

    /// The script as text, with `outputs[i]` as what step `i` sent (the expected lines when
    /// `None`).
    pub fn render(&self, outputs: &[Option<Vec<Said>>]) -> String {
        let mut out = String::new();
        for line in &self.header {
            let _ = writeln!(out, "{line}");
        }
        for (i, step) in self.steps.iter().enumerate() {
            for line in &step.leading {
                let _ = writeln!(out, "{line}");
            }
            let _ = writeln!(out, "{}", step.raw);
            for answer in &step.model {
                let _ = writeln!(out, "@ {answer}");
            }
            let said = outputs
                .get(i)
                .and_then(Option::as_ref)
                .unwrap_or(&step.expected);
            for message in said {
                let _ = writeln!(out, "{}", render_said(message));
            }
        }
        for line in &self.trailing {
            let _ = writeln!(out, "{line}");
        }
        out
    }
}

/// `< user: text` (or `! user: text`), continuation lines indented by two spaces.
pub fn render_said(said: &Said) -> String {
    let marker = if said.tool { '!' } else { '<' };
    let mut lines = said.text.split('\n');
    let first = lines.next().unwrap_or("");
    let mut out = if first.is_empty() {
        format!("{marker} {}:", said.user)
    } else {
        format!("{marker} {}: {first}", said.user)
    };
    for line in lines {
        out.push_str("\n  ");
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# A title\n= faucet 100\n\n# the search\n> alice: search cable\n@ {\"content\":[]}\n! alice: search_products -> 1 result\n< alice: first\n  second\n  \n  fourth\n< alice: other\n~ wait 2m\n> bob taps Confirm and pay\n> bob approves\n~ crash\n# end\n";

    #[test]
    fn a_script_reads_and_writes_back_unchanged() {
        let script = Script::parse(SAMPLE).unwrap();
        assert_eq!(script.setup, vec![(2, "faucet 100".to_owned())]);
        assert_eq!(script.steps.len(), 5);
        assert_eq!(script.steps[0].leading, vec!["# the search".to_owned()]);
        assert!(script.steps[0].expected[0].tool);
        assert_eq!(
            script.steps[0].expected[1].text, "first\nsecond\n\nfourth",
            "continuation lines, an empty one among them"
        );
        assert_eq!(script.steps[1].action, Action::Wait { seconds: 120 });
        assert_eq!(
            script.steps[2].action,
            Action::Tap {
                user: "bob".into(),
                label: "Confirm and pay".into()
            }
        );
        assert_eq!(script.steps[4].action, Action::Crash);
        assert_eq!(script.render(&[]), SAMPLE);
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let bad = Script::parse("> alice: hi\n= faucet 1\n").unwrap_err();
        assert_eq!(bad.line, 2);
        let bad = Script::parse("@ {}\n").unwrap_err();
        assert_eq!(bad.line, 1);
        let bad = Script::parse("~ wait soon\n").unwrap_err();
        assert!(bad.message.contains("duration"), "{bad}");
        let bad = Script::parse("* what\n").unwrap_err();
        assert_eq!(bad.line, 1);
    }
}
