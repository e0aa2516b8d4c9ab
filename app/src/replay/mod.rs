//! Replay of recorded conversations through the real machines.
//!
//! A recording ([`script`]) holds the users' inputs, the external answers (model answers as
//! Anthropic Messages API bodies, extra search results as SerpAPI items, fulfilment
//! failures) and what the agent sent back. [`replay`] runs it in the sandbox world: SQLite,
//! the embedded EVM, the merchant's real order server over loopback HTTP with the sandbox
//! fulfilment, the agent driver and its machines. Model answers go through the Claude
//! adapter's reader, search results through the SerpAPI reader.
//!
//! Everything runs in the calling task on a virtual clock: after each input the agent's
//! outbox and watchers and the merchant's worker run until nothing is due, so a replay
//! is deterministic. Transaction hashes differ between runs only through time, and are
//! numbered (`0x<hash 1>`) before comparing.

pub mod script;

use crate::agent::{Agent, Mailbox, as_text};
use crate::brain::{BrainSettings, RecordedBrain};
use crate::sandbox::{SandboxConfig, SandboxPorts, SandboxWorld, latest_funding};
use script::{Action, Said, Script, Step};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use worldstore_adapters::sandbox_commerce::{InjectedFailure, SandboxCatalog};
use worldstore_domain::conversation::{InboundContent, Outgoing};
use worldstore_domain::money::UsdcAmount;
use worldstore_domain::ports::brain::Usage;
use worldstore_domain::ports::catalog::Asin;
use worldstore_domain::ports::store::{Key, MachineKind, Store};

/// The virtual clock's start: 2026-01-01T00:00:00Z.
pub const REPLAY_EPOCH: u64 = 1_767_225_600;

/// What a replay found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// What each step actually sent.
    pub outputs: Vec<Vec<Said>>,
    /// Steps whose messages differ from the recording, and other mismatches.
    pub differences: Vec<String>,
    /// User inputs (messages, taps, approvals).
    pub turns: usize,
    /// Calls to the brain, and the tokens the recorded answers report.
    pub model_calls: u64,
    pub usage: Usage,
    /// Checkouts that ended paid, shipped or delivered.
    pub purchases: usize,
}

impl Outcome {
    pub fn matches(&self) -> bool {
        self.differences.is_empty()
    }

    /// The replayed conversation as text (the recording with the actual messages).
    pub fn transcript(&self, script: &Script) -> String {
        let outputs: Vec<_> = self.outputs.iter().cloned().map(Some).collect();
        script.render(&outputs)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Script(#[from] script::ScriptError),
    #[error("line {line}: {message}")]
    Setup { line: usize, message: String },
    #[error("replay: {0}")]
    Run(String),
}

fn run_error(e: impl std::fmt::Display) -> ReplayError {
    ReplayError::Run(e.to_string())
}

/// The world a recording asks for.
struct Setup {
    faucet: UsdcAmount,
    faucet_for: HashMap<String, UsdcAmount>,
    config: SandboxConfig,
    recorded_brain: bool,
}

fn usdc(line: usize, text: &str) -> Result<UsdcAmount, ReplayError> {
    text.trim()
        .parse::<UsdcAmount>()
        .map_err(|e| ReplayError::Setup {
            line,
            message: format!("{text:?} is not an amount of USDC: {e}"),
        })
}

fn setup(script: &Script, data_dir: &Path, clock: Arc<AtomicU64>) -> Result<Setup, ReplayError> {
    let mut config = SandboxConfig::new(data_dir.to_path_buf());
    config.clock = Some(Arc::new(move || clock.load(Ordering::SeqCst)));
    config.merchant_in_background = false;
    config.ships_after = 10;
    config.delivered_after = 30;
    let mut setup = Setup {
        faucet: UsdcAmount::from_usdc(100),
        faucet_for: HashMap::new(),
        config,
        recorded_brain: false,
    };
    let mut products = Vec::new();
    for (line, text) in &script.setup {
        let line = *line;
        let bad = |message: String| ReplayError::Setup { line, message };
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["faucet", amount] => setup.faucet = usdc(line, amount)?,
            ["faucet", user, amount] => {
                setup
                    .faucet_for
                    .insert((*user).to_owned(), usdc(line, amount)?);
            }
            ["limit", "per-order", amount] => setup.config.per_order_limit = usdc(line, amount)?,
            ["limit", "per-day", amount] => setup.config.per_day_limit = usdc(line, amount)?,
            ["fail", asin, how] => {
                let failure = match *how {
                    "unavailable" => InjectedFailure::Unavailable,
                    "quote-expires" => InjectedFailure::QuoteExpiresBeforePayment,
                    "payment-fails" => InjectedFailure::PaymentFails,
                    "delivery-fails" => InjectedFailure::DeliveryFails,
                    other => return Err(bad(format!("unknown failure {other:?}"))),
                };
                let asin = Asin::parse(asin).map_err(|e| bad(e.to_string()))?;
                setup.config.failures.insert(asin, failure);
            }
            ["brain", "recorded"] => setup.recorded_brain = true,
            ["brain", "offline"] => setup.recorded_brain = false,
            ["ships-after", secs] => {
                setup.config.ships_after = secs.parse().map_err(|_| bad("seconds".into()))?;
            }
            ["delivered-after", secs] => {
                setup.config.delivered_after = secs.parse().map_err(|_| bad("seconds".into()))?;
            }
            _ => match text.strip_prefix("product ") {
                Some(json) => {
                    let item: serde_json::Value = serde_json::from_str(json)
                        .map_err(|e| bad(format!("the product is not JSON: {e}")))?;
                    products.push(item);
                }
                None => return Err(bad(format!("unknown set-up {text:?}"))),
            },
        }
    }
    if !products.is_empty() {
        let page = serde_json::json!({ "organic_results": products }).to_string();
        let catalog = SandboxCatalog::from_json(&page).map_err(run_error)?;
        if catalog.products().len() != products.len() {
            return Err(ReplayError::Setup {
                line: script.setup.first().map_or(0, |(l, _)| *l),
                message: "a product line is not a search result the SerpAPI reader accepts".into(),
            });
        }
        setup.config.extra_products = Some(catalog);
    }
    Ok(setup)
}

/// Numbers transaction hashes (`0x` and 64 hex digits) by first appearance.
#[derive(Default)]
struct Hashes(HashMap<String, usize>);

impl Hashes {
    fn normalise(&mut self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < bytes.len() {
            let is_hash = bytes[i..].starts_with(b"0x")
                && bytes.len() >= i + 66
                && bytes[i + 2..i + 66].iter().all(u8::is_ascii_hexdigit)
                && bytes.get(i + 66).is_none_or(|b| !b.is_ascii_hexdigit());
            if is_hash {
                let hash = text[i..i + 66].to_ascii_lowercase();
                let next = self.0.len() + 1;
                let n = *self.0.entry(hash).or_insert(next);
                out.push_str(&format!("0x<hash {n}>"));
                i += 66;
            } else {
                let ch = text[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
        out
    }
}

struct Run<'a> {
    world: SandboxWorld,
    agent: Agent<SandboxPorts<Mailbox>>,
    mail: Mailbox,
    clock: Arc<AtomicU64>,
    setup: &'a Setup,
    welcomed: HashSet<String>,
    seen: usize,
    hashes: Hashes,
}

impl Run<'_> {
    fn key(user: &str) -> Result<Key, ReplayError> {
        Key::parse(user).map_err(|e| run_error(format!("user {user:?}: {e}")))
    }

    /// Runs the agent's and the merchant's due work until neither has any. The agent is
    /// idle after its pass, so only new merchant work can give it more. The agent's funds
    /// watcher and order tracker look only when something outside the agent may have moved
    /// since they last did: `outside` (the clock, a wallet, a restart), or the merchant's
    /// work. A user's message alone brings them no news.
    async fn settle(&self, outside: bool) -> Result<(), ReplayError> {
        let mut watch = outside;
        loop {
            self.agent
                .run_until_idle_watching(watch)
                .await
                .map_err(run_error)?;
            if self.world.merchant_round().await.map_err(run_error)? == 0 {
                return Ok(());
            }
            watch = true;
        }
    }

    async fn welcome(&mut self, user: &str) -> Result<(), ReplayError> {
        if self.welcomed.insert(user.to_owned()) {
            let amount = self
                .setup
                .faucet_for
                .get(user)
                .copied()
                .unwrap_or(self.setup.faucet);
            self.world
                .welcome_with(&self.agent, &Self::key(user)?, amount)
                .await
                .map_err(run_error)?;
        }
        Ok(())
    }

    /// A new agent on the same database and world, as after a restart.
    async fn reopen(&mut self) -> Result<(), ReplayError> {
        self.agent = self
            .world
            .agent(self.mail.clone())
            .await
            .map_err(run_error)?;
        Ok(())
    }

    /// Performs `step`'s action; `crashes` when the process dies right after taking it in.
    async fn act(&mut self, step: &Step, crashes: bool) -> Result<Option<String>, ReplayError> {
        let id = format!("replay-line-{}", step.line);
        match &step.action {
            Action::Say { user, text } => {
                self.welcome(user).await?;
                self.agent
                    .receive(&Self::key(user)?, &id, InboundContent::Text(text.clone()))
                    .await
                    .map_err(run_error)?;
            }
            Action::Tap { user, label } => {
                self.welcome(user).await?;
                let key = Self::key(user)?;
                let latest = self
                    .mail
                    .messages_to(&key)
                    .into_iter()
                    .rev()
                    .find_map(|m| match m {
                        Outgoing::Actions(menu) => Some(menu),
                        _ => None,
                    });
                let Some((menu_id, action_id)) = latest.and_then(|menu| {
                    let action = menu.actions.iter().find(|a| a.label == *label)?;
                    Some((menu.id.clone(), action.id.clone()))
                }) else {
                    return Ok(Some(format!(
                        "line {}: no action labelled {label:?} in the latest menu sent to {user}",
                        step.line
                    )));
                };
                self.agent
                    .receive(&key, &id, InboundContent::Intent { menu_id, action_id })
                    .await
                    .map_err(run_error)?;
            }
            Action::Approve { user } => {
                let key = Self::key(user)?;
                let Some(request) = latest_funding(&self.mail.messages_to(&key)) else {
                    return Ok(Some(format!(
                        "line {}: {user} has no funding request to approve",
                        step.line
                    )));
                };
                self.world
                    .approve(&self.agent, &key, request.amount)
                    .await
                    .map_err(run_error)?;
            }
            Action::Wait { seconds } => {
                self.clock.fetch_add(*seconds, Ordering::SeqCst);
            }
            Action::Crash => {
                // The inputs are committed; their effects never ran. Once the dead worker's
                // leases run out, the new process takes them over.
                self.clock
                    .fetch_add(self.world.config.lease_seconds + 1, Ordering::SeqCst);
                self.reopen().await?;
            }
            Action::Restart => self.reopen().await?,
        }
        if !crashes {
            let outside = !matches!(step.action, Action::Say { .. } | Action::Tap { .. });
            self.settle(outside).await?;
        }
        Ok(None)
    }

    /// Messages sent since the last call, with hashes numbered.
    fn sent_since(&mut self) -> Vec<Said> {
        let all = self.mail.all();
        let new = all[self.seen.min(all.len())..].to_vec();
        self.seen = all.len();
        new.iter()
            .map(|(user, message)| Said {
                user: user.to_string(),
                text: self.hashes.normalise(&as_text(message)),
                tool: false,
            })
            .collect()
    }
}

fn compare(step: &Step, actual: &[Said]) -> Option<String> {
    if actual == step.expected.as_slice() {
        return None;
    }
    let mut report = format!("line {} `{}`:", step.line, step.raw);
    for i in 0..actual.len().max(step.expected.len()) {
        match (step.expected.get(i), actual.get(i)) {
            (Some(e), Some(a)) if e == a => {}
            (e, a) => {
                if let Some(e) = e {
                    report.push_str(&format!(
                        "\n  - {}",
                        script::render_said(e).replace('\n', "\n    ")
                    ));
                }
                if let Some(a) = a {
                    report.push_str(&format!(
                        "\n  + {}",
                        script::render_said(a).replace('\n', "\n    ")
                    ));
                }
            }
        }
    }
    Some(report)
}

/// The world `setup` asks for, with `brain` answering.
async fn start<'a>(setup: &'a Setup, clock: Arc<AtomicU64>) -> Result<Run<'a>, ReplayError> {
    let world = SandboxWorld::start(setup.config.clone())
        .await
        .map_err(run_error)?;
    let mail = Mailbox::new();
    let agent = world.agent(mail.clone()).await.map_err(run_error)?;
    Ok(Run {
        world,
        agent,
        mail,
        clock,
        setup,
        welcomed: HashSet::new(),
        seen: 0,
        hashes: Hashes::default(),
    })
}

/// The set-up of `script` with a recorded brain, on a virtual clock.
fn prepare(
    script: &Script,
    data_dir: &Path,
) -> Result<(Setup, RecordedBrain, Arc<AtomicU64>), ReplayError> {
    let clock = Arc::new(AtomicU64::new(REPLAY_EPOCH));
    let mut setup = setup(script, data_dir, clock.clone())?;
    let brain = RecordedBrain::new(!setup.recorded_brain);
    setup.config.brain = BrainSettings::Recorded(brain.clone());
    Ok((setup, brain, clock))
}

/// Purchases (checkouts paid, shipped or delivered) of the users `run` has met.
async fn purchases(run: &Run<'_>) -> Result<usize, ReplayError> {
    let mut total = 0;
    for user in &run.welcomed {
        let checkouts = run
            .agent
            .store()
            .machines_of_user(MachineKind::Checkout, &Run::key(user)?)
            .await
            .map_err(run_error)?;
        total += checkouts
            .iter()
            .filter(|c| ["paid", "shipped", "delivered"].contains(&c.index.status.as_str()))
            .count();
    }
    Ok(total)
}

/// What [`replay_rounds`] measured.
#[derive(Debug, Clone, Default)]
pub struct Rounds {
    pub turns: usize,
    /// Time spent in the steps (the world's start-up excluded).
    pub elapsed: std::time::Duration,
    /// CPU time of the whole process (every thread) over the same steps, where the system
    /// reports it (Linux).
    pub cpu: Option<std::time::Duration>,
    pub purchases: usize,
    pub model_calls: u64,
    pub usage: Usage,
}

/// Replays `script` `rounds` times in one world, each round with new users (`alice` becomes
/// `alice-r3`), without comparing: a load generator for benchmarks. The world's start-up is
/// not timed.
pub async fn replay_rounds(
    script: &Script,
    data_dir: &Path,
    rounds: usize,
) -> Result<Rounds, ReplayError> {
    let (setup, brain, clock) = prepare(script, data_dir)?;
    let mut run = start(&setup, clock).await?;
    let mut measured = Rounds::default();
    let cpu_before = process_cpu_time();
    let started = std::time::Instant::now();
    for round in 0..rounds {
        for (i, step) in script.steps.iter().enumerate() {
            let mut step = step.clone();
            step.action.rename(|user| format!("{user}-r{round}"));
            brain.answer_with(&step.model);
            run.act(&step, script.crash_follows(i)).await?;
            if step.action.is_turn() {
                measured.turns += 1;
            }
            brain.unused();
        }
    }
    measured.elapsed = started.elapsed();
    measured.cpu = process_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    measured.purchases = purchases(&run).await?;
    measured.model_calls = brain.calls();
    measured.usage = brain.usage();
    Ok(measured)
}

/// User plus system CPU time of this process, all threads, from `/proc/self/stat` (in
/// clock ticks of 10 ms); `None` where there is no such file.
fn process_cpu_time() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which may hold spaces) are space-separated;
    // utime and stime are the 14th and 15th fields of the line.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let mut fields = after_name.split(' ').skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(std::time::Duration::from_millis((utime + stime) * 10))
}

/// Replays `script` in a fresh sandbox under `data_dir` (which should be empty).
pub async fn replay(script: &Script, data_dir: &Path) -> Result<Outcome, ReplayError> {
    let (setup, brain, clock) = prepare(script, data_dir)?;
    let mut run = start(&setup, clock).await?;
    let mut outcome = Outcome::default();
    for (i, step) in script.steps.iter().enumerate() {
        brain.answer_with(&step.model);
        if let Some(problem) = run.act(step, script.crash_follows(i)).await? {
            outcome.differences.push(problem);
        }
        if step.action.is_turn() {
            outcome.turns += 1;
        }
        let left = brain.unused();
        if left > 0 {
            outcome.differences.push(format!(
                "line {}: {left} recorded model answer(s) were not asked for",
                step.line
            ));
        }
        let mut actual = Vec::new();
        let shown = brain.take_shown();
        if setup.recorded_brain {
            let user = step.action.user().unwrap_or("?");
            actual.extend(shown.iter().map(|text| Said {
                user: user.to_owned(),
                text: run.hashes.normalise(text),
                tool: true,
            }));
        }
        actual.extend(run.sent_since());
        if let Some(difference) = compare(step, &actual) {
            outcome.differences.push(difference);
        }
        outcome.outputs.push(actual);
    }
    if brain.missing() > 0 {
        outcome.differences.push(format!(
            "the agent asked the model {} more time(s) than the recording answers",
            brain.missing()
        ));
    }
    outcome.model_calls = brain.calls();
    outcome.usage = brain.usage();
    outcome.purchases = purchases(&run).await?;
    Ok(outcome)
}

/// The recordings (`*.chat`) in `dir`, by name.
pub fn recordings(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "chat") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads the recording at `path`.
pub fn read(path: &Path) -> Result<Script, ReplayError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| run_error(format!("{}: {e}", path.display())))?;
    Ok(Script::parse(&text)?)
}

/// Reads and replays the recording at `path` in a temporary directory.
pub async fn replay_file(path: &Path) -> Result<(Script, Outcome), ReplayError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| run_error(format!("{}: {e}", path.display())))?;
    let script = Script::parse(&text)?;
    let dir = scratch_dir(path);
    let outcome = replay(&script, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((script, outcome?))
}

/// A fresh directory under the system's temporary directory, named after `path`.
pub fn scratch_dir(path: &Path) -> std::path::PathBuf {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_stem()
        .map_or_else(|| "recording".into(), |s| s.to_string_lossy().into_owned());
    let dir = std::env::temp_dir().join(format!(
        "worldstore-replay-{name}-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_numbered_by_first_appearance() {
        let a = format!("0x{}", "ab".repeat(32));
        let b = format!("0x{}", "CD".repeat(32));
        let address = format!("0x{}", "12".repeat(20));
        let mut hashes = Hashes::default();
        let text = format!("paid {a}, refund {b}, again {a}; wallet {address}");
        assert_eq!(
            hashes.normalise(&text),
            format!("paid 0x<hash 1>, refund 0x<hash 2>, again 0x<hash 1>; wallet {address}")
        );
    }
}
