//! The task that runs the bridge process: spawn, read events, write commands, restart.
//!
//! | input | effect |
//! |---|---|
//! | `ready` line | remember our inbox id (kept across restarts) |
//! | `message` line from our inbox | dropped |
//! | `message` line with an id seen lately | dropped |
//! | `message` line | parsed and handed to the receiver of [`super::XmtpBridge`] |
//! | `sent` line | answers the waiting `send` (unknown request ids are ignored) |
//! | malformed line or payload | logged (without content) and skipped |
//! | bridge exit or stdout EOF | pending sends fail as transient; restart after a backoff |
//! | handle dropped | stdin closed (the bridge exits), then the process is killed |
//!
//! Invariants: the backoff doubles from `initial_backoff` up to `max_backoff` and starts
//! over once a run lasted `stable_after`; message text and keys are never logged.

use super::content::XmtpContent;
use super::protocol::{BridgeCommand, BridgeEvent};
use super::recent::RecentIds;
use super::{BridgeConfig, Identity, SendError, XmtpMessage};
use secrecy::ExposeSecret;
use serde_json::Value;
use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use worldstore_domain::ports::store::Key;

/// How long a bridge gets to exit on its own after its stdin is closed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

pub(super) struct SendRequest {
    pub conversation_id: String,
    pub content_type: String,
    pub content: Value,
    pub reply: oneshot::Sender<Result<String, SendError>>,
}

pub(super) struct Supervisor {
    pub config: BridgeConfig,
    pub commands: mpsc::Receiver<SendRequest>,
    pub messages: mpsc::Sender<XmtpMessage>,
    pub identity: watch::Sender<Option<Identity>>,
    pub starts: watch::Sender<u32>,
    pub recent: RecentIds,
    pub own_inbox_id: Option<String>,
    pub next_request: u64,
}

enum RunEnd {
    Exited,
    Shutdown,
}

type Pending = HashMap<String, oneshot::Sender<Result<String, SendError>>>;

/// Delay before restart number `failures` (0 for the first).
pub(super) fn backoff(config: &BridgeConfig, failures: u32) -> Duration {
    config
        .initial_backoff
        .saturating_mul(2u32.saturating_pow(failures.min(16)))
        .min(config.max_backoff)
}

impl Supervisor {
    pub async fn run(mut self, mut shutdown: oneshot::Receiver<()>) {
        let mut failures = 0u32;
        loop {
            let started = Instant::now();
            let end = match self.spawn() {
                Ok(child) => self.drive(child, &mut shutdown).await,
                Err(error) => {
                    tracing::warn!(%error, program = %self.config.program, "XMTP bridge did not start");
                    RunEnd::Exited
                }
            };
            if matches!(end, RunEnd::Shutdown) {
                return;
            }
            if started.elapsed() >= self.config.stable_after {
                failures = 0;
            }
            let delay = backoff(&self.config, failures);
            failures = failures.saturating_add(1);
            tracing::warn!(
                delay_ms = delay.as_millis() as u64,
                "XMTP bridge stopped; restarting"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = &mut shutdown => return,
            }
        }
    }

    fn spawn(&mut self) -> std::io::Result<Child> {
        let mut command = Command::new(&self.config.program);
        command
            .args(&self.config.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(dir) = &self.config.working_dir {
            command.current_dir(dir);
        }
        for (name, value) in &self.config.env {
            command.env(name, value.expose_secret());
        }
        let child = command.spawn()?;
        self.starts
            .send_modify(|starts| *starts = starts.saturating_add(1));
        Ok(child)
    }

    async fn drive(&mut self, mut child: Child, shutdown: &mut oneshot::Receiver<()>) -> RunEnd {
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill().await;
            return RunEnd::Exited;
        };
        let mut lines = BufReader::new(stdout).lines();
        let mut pending = Pending::new();
        let end = loop {
            tokio::select! {
                biased;
                _ = &mut *shutdown => break RunEnd::Shutdown,
                line = lines.next_line() => match line {
                    Ok(Some(line)) => self.on_line(&line, &mut pending).await,
                    Ok(None) => break RunEnd::Exited,
                    Err(error) => {
                        tracing::warn!(%error, "reading the XMTP bridge failed");
                        break RunEnd::Exited;
                    }
                },
                Some(request) = self.commands.recv() => {
                    if !self.write(&mut stdin, request, &mut pending).await {
                        break RunEnd::Exited;
                    }
                }
            }
        };
        drop(stdin);
        if matches!(end, RunEnd::Shutdown)
            && tokio::time::timeout(EXIT_GRACE, child.wait()).await.is_ok()
        {
            // Exited on its own after stdin closed.
        } else {
            let _ = child.kill().await;
        }
        match child.try_wait() {
            Ok(Some(status)) => tracing::info!(%status, "XMTP bridge exited"),
            _ => tracing::info!("XMTP bridge stopped"),
        }
        for (_, waiting) in pending.drain() {
            let _ = waiting.send(Err(SendError::Unavailable));
        }
        end
    }

    /// Writes one command; false if the bridge's stdin is gone.
    async fn write(
        &mut self,
        stdin: &mut ChildStdin,
        request: SendRequest,
        pending: &mut Pending,
    ) -> bool {
        self.next_request += 1;
        let request_id = self.next_request.to_string();
        let line = BridgeCommand::Send {
            request_id: request_id.clone(),
            conversation_id: request.conversation_id,
            content_type: request.content_type,
            content: request.content,
        }
        .to_line();
        let written = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await
        }
        .await;
        match written {
            Ok(()) => {
                pending.insert(request_id, request.reply);
                true
            }
            Err(error) => {
                tracing::warn!(%error, "writing to the XMTP bridge failed");
                let _ = request.reply.send(Err(SendError::Unavailable));
                false
            }
        }
    }

    async fn on_line(&mut self, line: &str, pending: &mut Pending) {
        if line.trim().is_empty() {
            return;
        }
        let event = match BridgeEvent::parse(line) {
            Ok(event) => event,
            Err(error) => {
                // serde_json's error names the position and expectation, not the content.
                tracing::warn!(%error, "skipped a malformed line from the XMTP bridge");
                return;
            }
        };
        match event {
            BridgeEvent::Ready { inbox_id, address } => {
                tracing::info!(%inbox_id, "XMTP bridge ready");
                self.own_inbox_id = Some(inbox_id.clone());
                self.identity
                    .send_replace(Some(Identity { inbox_id, address }));
            }
            BridgeEvent::Message {
                id,
                conversation_id,
                sender_inbox_id,
                sender_address,
                sent_at_ns,
                content_type,
                content,
            } => {
                if self.own_inbox_id.as_deref() == Some(sender_inbox_id.as_str()) {
                    tracing::debug!(message_id = %id, "dropped our own message");
                    return;
                }
                let Ok(key) = Key::parse(&id) else {
                    tracing::warn!("skipped a message with an unusable id");
                    return;
                };
                let Ok(sent_at_ns) = sent_at_ns.parse::<u64>() else {
                    tracing::warn!(message_id = %id, "skipped a message with a malformed time");
                    return;
                };
                let content = match XmtpContent::parse(&content_type, content) {
                    Ok(content) => content,
                    Err(error) => {
                        tracing::warn!(message_id = %id, %content_type, %error, "skipped a message with malformed content");
                        return;
                    }
                };
                if !self.recent.first_sighting(&id) {
                    tracing::debug!(message_id = %id, "dropped a message seen already");
                    return;
                }
                let message = XmtpMessage {
                    id: key,
                    conversation_id,
                    sender_inbox_id,
                    sender_address,
                    sent_at_ns,
                    content,
                };
                if self.messages.send(message).await.is_err() {
                    tracing::debug!("no one is receiving XMTP messages");
                }
            }
            BridgeEvent::Sent {
                request_id,
                ok,
                message_id,
                error,
            } => {
                let Some(waiting) = pending.remove(&request_id) else {
                    tracing::warn!(%request_id, "the XMTP bridge answered an unknown request");
                    return;
                };
                let result = match (ok, message_id) {
                    (true, Some(message_id)) => Ok(message_id),
                    _ => Err(SendError::classify(
                        error.as_deref().unwrap_or("failed: no reason"),
                    )),
                };
                let _ = waiting.send(result);
            }
            BridgeEvent::Error { message } => {
                tracing::warn!(reason = %message, "the XMTP bridge reported an error");
            }
            BridgeEvent::Unknown => tracing::debug!("ignored an unknown XMTP bridge event"),
        }
    }
}
