//! WAL checkpoints of the SQLite store, run off the writer's path.
//!
//! In WAL mode a commit appends pages to the log; a checkpoint copies them back into the
//! database file and, with `synchronous = NORMAL`, syncs the log before and the file after.
//! SQLite's default runs that checkpoint inside whichever commit takes the log past 1,000
//! pages, on the committing thread: for the store that thread is an async worker, and the
//! two `fsync`s stall every task on it. In the agent's replay benchmark those stalls were
//! about a quarter of the wall time.
//!
//! So each store has a checkpointer: a thread with its own connection to the same file.
//! After a write the store nudges it ([`Checkpointer::wrote`], a non-blocking send); it waits
//! [`GATHER`] for more writes to gather, then runs a `PASSIVE` checkpoint, which copies what
//! no reader still needs and never blocks the writer. The writer's connection keeps SQLite's
//! own checkpoint as a backstop at [`BACKSTOP_PAGES`], far above what the checkpointer lets
//! the log reach, should the thread ever fall behind. When the store is dropped the thread
//! runs a last checkpoint and ends.
//!
//! Durability is unchanged: a commit is in the log (the operating system's cache) when it
//! returns, as before; the log is synced at checkpoints, now within [`GATHER`] of a write.

use rusqlite::Connection;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::time::Duration;

/// How long the checkpointer lets writes gather after a nudge before it copies them back.
pub(super) const GATHER: Duration = Duration::from_millis(50);

/// `PRAGMA wal_autocheckpoint` of the writer's connection: the log size, in pages, at which
/// the writer checkpoints by itself because the checkpointer has not (10 MB of the 1 KB pages of a
/// new file, 40 MB of an older file's 4 KB ones).
pub(super) const BACKSTOP_PAGES: u32 = 10_000;

/// The handle the store keeps; dropping the last clone ends the thread.
#[derive(Clone)]
pub(super) struct Checkpointer {
    nudge: SyncSender<()>,
}

impl Checkpointer {
    /// Starts the thread on `conn`, a connection of its own to the store's file.
    pub(super) fn start(conn: Connection) -> std::io::Result<Self> {
        let (nudge, nudged) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&conn, &nudged))?;
        Ok(Self { nudge })
    }

    /// Tells the checkpointer the log grew. Never blocks: when a nudge is already waiting,
    /// this one is not needed.
    pub(super) fn wrote(&self) {
        let _ = self.nudge.try_send(());
    }
}

fn run(conn: &Connection, nudged: &Receiver<()>) {
    // Each nudge is one round: gather, drain the nudges sent meanwhile, checkpoint.
    while nudged.recv().is_ok() {
        std::thread::sleep(GATHER);
        let open = match nudged.try_recv() {
            Ok(()) | Err(TryRecvError::Empty) => true,
            Err(TryRecvError::Disconnected) => false,
        };
        checkpoint(conn);
        if !open {
            return;
        }
    }
    checkpoint(conn);
}

/// A `PASSIVE` checkpoint: copies the log's pages that no reader still needs, without
/// waiting for anyone. A failure is left for the next round (or the writer's backstop).
fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::debug!(error = %e, "WAL checkpoint left for later");
    }
}
