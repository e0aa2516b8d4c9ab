//! `worldstore chat --user <ID>`: talk to the agent in the terminal, in the sandbox.
//!
//! Reads one message per stdin line and prints the agent's replies to stdout (menus
//! numbered, cards as text). Works interactively and piped: after each line it waits until
//! the agent has nothing left to do before reading the next, and when stdin ends it waits
//! a few seconds for replies still due. `approve` answers the latest funding request from
//! the user's simulated own wallet. Data lives in `--data-dir` (the current directory
//! unless told); the sandbox chain lives in memory.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use secrecy::SecretString;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::time::Instant;
use worldstore::agent::{Agent, Channel, ChannelError, as_text};
use worldstore::brain::BrainSettings;
use worldstore::sandbox::{SandboxConfig, SandboxPorts, SandboxWorld};
use worldstore_domain::conversation::{Card, FundingRequest, InboundContent, Outgoing};
use worldstore_domain::money::UsdcAmount;
use worldstore_domain::ports::store::{Key, Store};

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Who is chatting (the channel's sender id).
    #[arg(long)]
    user: String,
    /// Where the sandbox database lives.
    #[arg(long, default_value = ".")]
    data_dir: PathBuf,
    /// Sandbox USDC credited to a new user's agent wallet (0 shows the funding flow).
    #[arg(long, default_value = "100")]
    faucet: UsdcAmount,
    /// How long to wait for replies still due once stdin ends.
    #[arg(long, default_value_t = 5)]
    wait_seconds: u64,
    /// The brain: the offline grammar, Claude, or an OpenAI-compatible server.
    #[arg(long, value_enum, default_value = "offline")]
    brain: BrainKind,
    /// The model name (Claude or OpenAI-compatible).
    #[arg(long, env = "WORLDSTORE_MODEL")]
    model: Option<String>,
    /// The model server's base URL (OpenAI-compatible: required; Claude: optional).
    #[arg(long, env = "WORLDSTORE_BRAIN_URL")]
    brain_url: Option<String>,
    #[arg(
        long = "anthropic-key-from-env-only",
        env = "ANTHROPIC_API_KEY",
        hide = true,
        hide_env_values = true
    )]
    anthropic_key: Option<SecretString>,
    #[arg(
        long = "openai-key-from-env-only",
        env = "OPENAI_API_KEY",
        hide = true,
        hide_env_values = true
    )]
    openai_key: Option<SecretString>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BrainKind {
    Offline,
    Claude,
    OpenaiCompatible,
}

impl ChatArgs {
    fn brain(&self) -> anyhow::Result<BrainSettings> {
        Ok(match self.brain {
            BrainKind::Offline => BrainSettings::Offline,
            BrainKind::Claude => BrainSettings::Claude {
                api_key: self
                    .anthropic_key
                    .clone()
                    .context("--brain claude needs ANTHROPIC_API_KEY")?,
                model: self
                    .model
                    .clone()
                    .unwrap_or_else(|| "claude-sonnet-4-5".to_owned()),
                base_url: self.brain_url.clone(),
            },
            BrainKind::OpenaiCompatible => BrainSettings::OpenAiCompatible {
                base_url: self
                    .brain_url
                    .clone()
                    .context("--brain openai-compatible needs --brain-url")?,
                model: self
                    .model
                    .clone()
                    .context("--brain openai-compatible needs --model")?,
                api_key: self.openai_key.clone(),
            },
        })
    }
}

/// Prints replies and remembers each user's latest funding request.
#[derive(Clone)]
struct Terminal {
    /// Printed by the command's own thread, which holds stdout.
    lines: tokio::sync::mpsc::UnboundedSender<String>,
    funding: Arc<Mutex<HashMap<Key, FundingRequest>>>,
    last_output: Arc<Mutex<Instant>>,
}

impl Terminal {
    fn new(lines: tokio::sync::mpsc::UnboundedSender<String>) -> Self {
        Self {
            lines,
            funding: Arc::default(),
            last_output: Arc::new(Mutex::new(Instant::now())),
        }
    }

    fn take_funding(&self, user: &Key) -> Option<FundingRequest> {
        self.funding
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(user)
    }

    fn quiet_for(&self) -> Duration {
        self.last_output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .elapsed()
    }
}

impl Channel for Terminal {
    async fn send(&self, user: &Key, message: &Outgoing) -> Result<(), ChannelError> {
        let mut text = as_text(message);
        if let Outgoing::Card(Card::Funding(request)) = message {
            self.funding
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(user.clone(), request.clone());
            text.push_str("\n(sandbox: reply \"approve\" to send it from your own wallet)");
        }
        self.lines
            .send(text)
            .map_err(|_| ChannelError::Unavailable("the terminal closed".into()))?;
        *self
            .last_output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        Ok(())
    }

    async fn react(&self, _user: &Key, _to: &Key, _emoji: &str) -> Result<(), ChannelError> {
        Ok(())
    }
}

/// Waits until the agent has no unfinished effect and has been quiet a moment, or `limit`.
async fn settle(
    agent: &Agent<SandboxPorts<Terminal>>,
    terminal: &Terminal,
    printed: &mut Printer<'_>,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        printed.drain()?;
        let idle = matches!(agent.store().unfinished_effects().await, Ok(0));
        if idle && terminal.quiet_for() >= Duration::from_millis(300) {
            return printed.drain();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    printed.drain()
}

/// Writes the replies the terminal channel queued.
struct Printer<'a> {
    out: &'a mut dyn Write,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Printer<'_> {
    fn drain(&mut self) -> anyhow::Result<()> {
        while let Ok(text) = self.lines.try_recv() {
            writeln!(self.out, "{text}\n")?;
        }
        self.out.flush()?;
        Ok(())
    }
}

pub fn run(args: ChatArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(chat(args, out))
}

async fn chat(args: ChatArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let user = Key::parse(&args.user).context("--user must be printable ASCII without spaces")?;
    let mut config = SandboxConfig::new(args.data_dir.clone());
    config.faucet = args.faucet;
    config.brain = args.brain()?;
    let world = SandboxWorld::start(config).await?;
    let (sender, lines) = tokio::sync::mpsc::unbounded_channel();
    let mut printer = Printer { out, lines };
    let terminal = Terminal::new(sender);
    let agent = world.agent(terminal.clone()).await?;
    let running = agent.start();
    world.welcome(&agent, &user).await?;
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut n = 0u64;
    while let Some(line) = lines.next_line().await.context("reading stdin")? {
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        n += 1;
        let funding = text
            .eq_ignore_ascii_case("approve")
            .then(|| terminal.take_funding(&user))
            .flatten();
        match funding {
            Some(request) => {
                world.approve(&agent, &user, request.amount).await?;
            }
            None => {
                agent
                    .receive(
                        &user,
                        &format!("chat-{run_id}-{n}"),
                        InboundContent::Text(text.to_owned()),
                    )
                    .await?;
            }
        }
        settle(&agent, &terminal, &mut printer, Duration::from_secs(15)).await?;
    }
    settle(
        &agent,
        &terminal,
        &mut printer,
        Duration::from_secs(args.wait_seconds),
    )
    .await?;
    running.stop().await;
    printer.drain()
}
