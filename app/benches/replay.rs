//! The recorded conversations replayed in a loop, on one core: user turns per second, model
//! calls per purchase, and memory held per idle conversation.
//!
//! ```text
//! cargo bench -p worldstore --bench replay                       # 20 rounds, 5,000 idle users
//! cargo bench -p worldstore --bench replay -- --rounds 50 --idle 20000
//! cargo bench -p worldstore --bench replay -- --only 01-first   # the recordings named so
//! ```
//!
//! Everything runs on one thread (a current-thread runtime: the agent, the merchant's order
//! server, the embedded EVM, SQLite): the turns per second are those of one core. Each
//! recording gets one world (its start-up is not timed) and is replayed `rounds` times
//! with new users each round. Model answers come from the recordings (the offline grammar
//! where a recording has none), so no time is spent waiting for a model.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use worldstore::agent::{Channel, ChannelError};
use worldstore::replay::{read, replay_file, replay_rounds, scratch_dir};
use worldstore::sandbox::{SandboxConfig, SandboxWorld};
use worldstore_domain::conversation::{InboundContent, Outgoing};
use worldstore_domain::ports::store::Key;

fn argument(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The recordings, or only those whose name contains `--only <text>`.
fn recordings() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/conversations");
    let only = std::env::args()
        .skip_while(|a| a != "--only")
        .nth(1)
        .unwrap_or_default();
    worldstore::replay::recordings(&dir)
        .expect("fixtures/conversations")
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&only))
        .collect()
}

/// Turns per second of CPU time, or a dash where none was measured.
fn per_cpu_second(turns: usize, cpu: Duration) -> String {
    if cpu.is_zero() {
        "-".into()
    } else {
        format!("{:.0}", turns as f64 / cpu.as_secs_f64())
    }
}

async fn turns_per_second(rounds: usize) {
    println!("## Turns per second, one core ({rounds} rounds of each recording)\n");
    println!("| recording | turns | seconds | turns/s | CPU seconds | turns per CPU second |");
    println!("|---|---:|---:|---:|---:|---:|");
    let (mut turns, mut elapsed, mut cpu) = (0, Duration::ZERO, Duration::ZERO);
    for path in recordings() {
        let script = read(&path).expect("a recording");
        let dir = scratch_dir(&path);
        let measured = replay_rounds(&script, &dir, rounds).await.expect("replay");
        let _ = std::fs::remove_dir_all(&dir);
        let used = measured.cpu.unwrap_or_default();
        turns += measured.turns;
        elapsed += measured.elapsed;
        cpu += used;
        println!(
            "| {} | {} | {:.3} | {:.0} | {:.2} | {} |",
            path.file_stem().unwrap_or_default().to_string_lossy(),
            measured.turns,
            measured.elapsed.as_secs_f64(),
            measured.turns as f64 / measured.elapsed.as_secs_f64(),
            used.as_secs_f64(),
            per_cpu_second(measured.turns, used)
        );
    }
    println!(
        "| **all** | {turns} | {:.3} | **{:.0}** | {:.2} | {} |\n",
        elapsed.as_secs_f64(),
        turns as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64(),
        per_cpu_second(turns, cpu)
    );
    println!(
        "CPU time is the whole process's, every thread (SQLite's checkpoint threads too), \
         read from /proc in 10 ms ticks.\n"
    );
}

async fn model_calls_per_purchase() {
    println!("## Model calls per recording (the original made 2 per turn)\n");
    println!(
        "| recording | turns | purchases | model calls | original's calls | input tokens | output tokens |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for path in recordings() {
        let (_, outcome) = replay_file(&path).await.expect("replay");
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            path.file_stem().unwrap_or_default().to_string_lossy(),
            outcome.turns,
            outcome.purchases,
            outcome.model_calls,
            2 * outcome.turns,
            outcome.usage.input_tokens,
            outcome.usage.output_tokens
        );
    }
    println!();
}

/// A channel that hands each message on and keeps nothing, as a network channel does: the
/// memory measured is the agent's own, not a test mailbox's copy of every message sent.
#[derive(Clone, Default)]
struct Forgetful {
    sent: Arc<AtomicUsize>,
}

impl Channel for Forgetful {
    async fn send(&self, _user: &Key, _message: &Outgoing) -> Result<(), ChannelError> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn react(&self, _user: &Key, _to: &Key, _emoji: &str) -> Result<(), ChannelError> {
        Ok(())
    }
}

async fn memory_per_idle_conversation(users: usize) {
    let dir = scratch_dir(Path::new("idle"));
    let mut config = SandboxConfig::new(dir.clone());
    config.merchant_in_background = false;
    let world = SandboxWorld::start(config).await.expect("world");
    let channel = Forgetful::default();
    let agent = world.agent(channel.clone()).await.expect("agent");
    // Warm up: the first conversations fill caches and pools that do not grow with users.
    let say_hi = |n: usize| {
        let agent = agent.clone();
        async move {
            let user = Key::parse(&format!("idle-{n}")).expect("key");
            agent
                .receive(&user, "hi-1", InboundContent::Text("hi".into()))
                .await
                .expect("receive");
        }
    };
    for n in 0..200 {
        say_hi(n).await;
    }
    agent.run_until_idle().await.expect("idle");
    let before = resident_bytes();
    let started = Instant::now();
    for n in 200..200 + users {
        say_hi(n).await;
        if n % 500 == 0 {
            agent.run_until_idle().await.expect("idle");
        }
    }
    agent.run_until_idle().await.expect("idle");
    let after = resident_bytes();
    // Each new user was greeted (the main menu, at least).
    assert!(channel.sent.load(Ordering::Relaxed) >= users + 200);
    let file = std::fs::metadata(dir.join("worldstore-agent.sqlite")).map_or(0, |m| m.len());
    println!(
        "## Memory per idle conversation ({users} new users, each greeted with the main menu)\n"
    );
    println!(
        "- resident memory: {:.1} MB before, {:.1} MB after: {:.0} bytes per conversation",
        before as f64 / 1e6,
        after as f64 / 1e6,
        after.saturating_sub(before) as f64 / users as f64
    );
    println!(
        "- in the database instead: {:.0} bytes per conversation ({:.1} MB file); {:.0} first contacts/s",
        file as f64 / (users + 200) as f64,
        file as f64 / 1e6,
        users as f64 / started.elapsed().as_secs_f64()
    );
    drop(agent);
    drop(world);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let rounds = argument("--rounds", 20);
    let idle = argument("--idle", 5000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        turns_per_second(rounds).await;
        model_calls_per_purchase().await;
        memory_per_idle_conversation(idle).await;
    });
}
