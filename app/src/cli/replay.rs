//! `worldstore replay <files...>`: drives recorded conversations through the real machines
//! and reports every difference from the recording (exit status 1 when any).
//!
//! `--update` writes what the agent sent now back into the files instead (review the diff).

use anyhow::Context as _;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use worldstore::replay::replay_file;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Recordings (`fixtures/conversations/*.chat`).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Rewrite each file with the messages the agent sends now.
    #[arg(long)]
    update: bool,
}

pub fn run(args: ReplayArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    // One thread: a replay is sequential, and deterministic on one core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(replay(args, out))
}

async fn replay(args: ReplayArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut differ = 0;
    for path in &args.files {
        let (script, outcome) = replay_file(path)
            .await
            .with_context(|| format!("{}", path.display()))?;
        let summary = format!(
            "{} turns, {} model calls, {} purchase(s)",
            outcome.turns, outcome.model_calls, outcome.purchases
        );
        if outcome.matches() {
            writeln!(out, "ok      {}  ({summary})", path.display())?;
            continue;
        }
        if args.update {
            std::fs::write(path, outcome.transcript(&script))
                .with_context(|| format!("cannot write {}", path.display()))?;
            writeln!(out, "updated {}  ({summary})", path.display())?;
            continue;
        }
        differ += 1;
        writeln!(out, "DIFFERS {}  ({summary})", path.display())?;
        for difference in &outcome.differences {
            writeln!(out, "  {}", difference.replace('\n', "\n  "))?;
        }
    }
    if differ > 0 {
        anyhow::bail!("{differ} of {} recordings differ", args.files.len());
    }
    Ok(())
}
