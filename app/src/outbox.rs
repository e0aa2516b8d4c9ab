//! A small, reusable outbox worker: claim ready effects from the [`Store`], execute each with
//! an [`EffectExecutor`], then complete it, or fail it with [`Backoff`].
//!
//! | executor answers | worker does |
//! |---|---|
//! | `Ok(())` | `complete_effect_and_claim_next`: done, and the key's next effect claimed |
//! | `Ok(())` after a commit that finished it | nothing more: that commit did the same |
//! | `Err(Transient)`, attempts left | `fail_effect(Transient { retry_at })` (exponential backoff) |
//! | `Err(Transient)`, attempts used up, or `Err(Permanent)` | `fail_effect(Permanent)`: parked as dead |
//!
//! Effects of one batch have distinct ordering keys (the store hands out only the first
//! unfinished effect of each key), so they run concurrently, and each key then runs on by
//! itself: the write that completes an effect claims the next one of its key. An effect
//! whose execution ends with a commit can have that commit complete it
//! ([`last_write_follows`]), which saves the worker a write. Effects that the commit
//! enqueueing them already leased to this worker (`Commit::claim_first`) reach it through a
//! [`Handoff`] and need no claim either. A worker that is stopped or aborted claims
//! nothing more: an execution still in flight completes its effect and leaves the next.
//! The executor is told when an attempt is the last one, so it can feed a final failure
//! back into its machine instead of leaving it waiting. Delivery is at least once: executors must be safe to repeat
//! (they use the effect's idempotency key). Knows nothing about agent or merchant types:
//! an executor names the effect kinds it runs ([`EffectExecutor::KINDS`]) and the worker
//! claims only those, so several roles can share one store.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use worldstore_domain::ports::store::{
    Backoff, ClaimedEffect, EffectClaim, EffectFailure, FinishedEffect, Key, Store, StoreError,
    StoreResult,
};

/// The clock, in unix seconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock in unix seconds: every role's [`Clock`] outside tests.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How an attempt went wrong. Reasons must not contain personal data or secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EffectError {
    /// Worth retrying later (an outage, a timeout, a lost race).
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed (an effect this build cannot read, a bug).
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<StoreError> for EffectError {
    fn from(error: StoreError) -> Self {
        if error.is_transient() || matches!(error, StoreError::Conflict(_)) {
            EffectError::Transient(error.to_string())
        } else {
            EffectError::Permanent(error.to_string())
        }
    }
}

/// What the worker and the effect running on its task tell each other about the commit
/// that may finish the effect.
#[derive(Default)]
struct Finishing {
    /// Set by the worker: the effect, its lease holder and the next effect's lease.
    finish: Option<FinishedEffect>,
    /// The worker's [`OutboxWorker::stopping`]: once set, the commit claims nothing next.
    stopping: Arc<AtomicBool>,
    /// Set by the executor ([`last_write_follows`]): the next commit is the effect's last step.
    armed: bool,
    /// Set after that commit: the effect is done, and this is its key's next effect.
    done: Option<Option<ClaimedEffect>>,
}

tokio::task_local! {
    static FINISHING: Arc<Mutex<Finishing>>;
}

fn finishing_state(state: &Mutex<Finishing>) -> MutexGuard<'_, Finishing> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Called by an executor when the next commit it makes is the last step of the effect it
/// is running: nothing that may fail comes after it. That commit then also completes the
/// effect and claims the next one of its key ([`finishing`]), and the worker writes
/// nothing more. Without a call, or when no commit follows, the worker completes the
/// effect itself afterwards, as usual. Outside an effect's execution it does nothing.
pub fn last_write_follows() {
    let _ = FINISHING.try_with(|state| finishing_state(state).armed = true);
}

/// For the code that builds a commit: the effect this commit should finish, when it is
/// the last step of the effect running on this task ([`last_write_follows`]). Pass what
/// the commit claimed to [`finished`] once it succeeded.
pub fn finishing() -> Option<FinishedEffect> {
    FINISHING
        .try_with(|state| {
            let state = finishing_state(state);
            if !state.armed || state.done.is_some() {
                return None;
            }
            let mut finish = state.finish.clone()?;
            if state.stopping.load(Ordering::Relaxed) {
                finish.next.kinds = &[];
            }
            Some(finish)
        })
        .ok()
        .flatten()
}

/// Records that a commit carrying [`finishing`] succeeded: the effect is done, and `next`
/// is its key's next effect, claimed by that commit.
pub fn finished(next: Option<ClaimedEffect>) {
    let _ = FINISHING.try_with(|state| {
        let mut state = finishing_state(state);
        state.done = Some(next);
        state.armed = false;
    });
}

/// Whether an effect's execution is running on this task (its commits are then its own
/// steps, see [`last_write_follows`]).
pub fn running_effect() -> bool {
    FINISHING.try_with(|_| ()).is_ok()
}

/// Effects that the commits enqueueing them leased to this process's worker
/// (`Commit::claim_first`), waiting for it to run them: the worker takes them before it
/// asks the store for more, so they need no claim of their own. Shared by whoever commits
/// and the worker ([`OutboxWorker::with_handoff`]).
#[derive(Clone, Default)]
pub struct Handoff(Arc<Mutex<Vec<ClaimedEffect>>>);

impl Handoff {
    /// Hands over effects a commit leased (`Committed::claimed`).
    pub fn give(&self, effects: Vec<ClaimedEffect>) {
        if !effects.is_empty() {
            self.effects().extend(effects);
        }
    }

    /// Up to `limit` handed-over effects, oldest first. One whose lease ran out by `now`
    /// is dropped: the store hands it out again, perhaps to another worker.
    fn take(&self, limit: usize, now: u64) -> Vec<ClaimedEffect> {
        let mut effects = self.effects();
        let n = limit.min(effects.len());
        let taken: Vec<ClaimedEffect> = effects.drain(..n).collect();
        taken.into_iter().filter(|e| e.lease_until > now).collect()
    }

    fn effects(&self) -> MutexGuard<'_, Vec<ClaimedEffect>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One attempt at an effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// No retry follows a transient failure of this attempt.
    pub last: bool,
}

/// Executes claimed effects. Implemented by each role (the agent, the merchant).
pub trait EffectExecutor: Send + Sync + 'static {
    /// The effect kinds ([`worldstore_domain::ports::store::StoredState::kind`]) this
    /// executor runs: the worker claims only these, so roles sharing one store never take
    /// each other's effects.
    const KINDS: &'static [&'static str];

    fn execute(
        &self,
        effect: &ClaimedEffect,
        attempt: Attempt,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;
}

/// The worker's settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This worker's id (leases are held in its name).
    pub worker: Key,
    /// Effects claimed at once.
    pub batch: u32,
    /// How long a claimed effect stays ours; must exceed the longest execution.
    pub lease_seconds: u64,
    /// Pause when the outbox is empty and nobody wakes us.
    pub idle: Duration,
    pub backoff: Backoff,
}

impl WorkerConfig {
    /// What a commit needs to lease effects to this worker running `E`'s kinds (the next
    /// effect of one it finishes, or those it enqueues).
    pub fn claim<E: EffectExecutor>(&self) -> EffectClaim {
        EffectClaim {
            worker: self.worker.clone(),
            kinds: E::KINDS,
            lease_seconds: self.lease_seconds,
        }
    }

    pub fn new(worker: Key) -> Self {
        Self {
            worker,
            batch: 16,
            lease_seconds: 180,
            idle: Duration::from_millis(250),
            backoff: Backoff::default(),
        }
    }
}

/// Claims and executes effects until told to stop.
pub struct OutboxWorker<S, E> {
    store: Arc<S>,
    executor: Arc<E>,
    config: WorkerConfig,
    clock: Clock,
    wake: Arc<Notify>,
    handoff: Option<Handoff>,
    /// Set when [`OutboxWorker::run`] ends or is dropped (stopped, or its task aborted):
    /// executions still in flight then complete their effect without claiming the next.
    stopping: Arc<AtomicBool>,
}

impl<S, E> Clone for OutboxWorker<S, E> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            executor: self.executor.clone(),
            config: self.config.clone(),
            clock: self.clock.clone(),
            wake: self.wake.clone(),
            handoff: self.handoff.clone(),
            stopping: self.stopping.clone(),
        }
    }
}

impl<S: Store + 'static, E: EffectExecutor> OutboxWorker<S, E> {
    pub fn new(store: Arc<S>, executor: Arc<E>, config: WorkerConfig, clock: Clock) -> Self {
        Self {
            store,
            executor,
            config,
            clock,
            wake: Arc::new(Notify::new()),
            handoff: None,
            stopping: Arc::default(),
        }
    }

    /// Notified after a commit that enqueued effects, so the worker does not wait `idle`.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Uses `wake` (shared with whoever commits effects) instead of the worker's own.
    pub fn with_waker(mut self, wake: Arc<Notify>) -> Self {
        self.wake = wake;
        self
    }

    /// Runs the effects commits leased to it through `handoff` ([`Handoff`]) before it
    /// claims any from the store.
    pub fn with_handoff(mut self, handoff: Handoff) -> Self {
        self.handoff = Some(handoff);
        self
    }

    async fn claim(&self, limit: u32) -> StoreResult<Vec<ClaimedEffect>> {
        let now = (self.clock)();
        if let Some(handoff) = &self.handoff {
            let given = handoff.take(usize::try_from(limit).unwrap_or(usize::MAX), now);
            if !given.is_empty() {
                return Ok(given);
            }
        }
        self.store
            .claim_effects(
                &self.config.worker,
                E::KINDS,
                limit,
                now,
                now.saturating_add(self.config.lease_seconds),
            )
            .await
    }

    /// One round: claims a batch and runs each claimed effect's ordering key as far as it
    /// is ready ([`OutboxWorker::run_key`]), the keys concurrently. Returns how many
    /// effects ran.
    pub async fn run_once(&self) -> StoreResult<usize> {
        let claimed = self.claim(self.config.batch).await?;
        let mut tasks = JoinSet::new();
        for effect in claimed {
            let this = self.clone();
            tasks.spawn(async move { this.run_key(effect).await });
        }
        let (mut ran, mut first_error) = (0, None);
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((n, outcome)) => {
                    ran += n;
                    if let Err(e) = outcome {
                        first_error.get_or_insert(e);
                    }
                }
                Err(panic) => tracing::error!(error = %panic, "an effect execution panicked"),
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(ran),
        }
    }

    /// Runs `effect`, then each effect that comes next for its ordering key while one is
    /// ready: the write completing one effect claims the next, so a key's effects run back
    /// to back without a claim round each. Stops at a failure (a retry waits for its
    /// backoff) or when the key has nothing ready. Returns how many effects ran, and the
    /// store error that stopped it, if any.
    ///
    /// Between two effects it gives the runtime a turn: a store that answers at once (the
    /// embedded SQLite) would otherwise let one key's chain run without ever pausing, keeping
    /// other tasks waiting and an aborted worker running on.
    async fn run_key(&self, mut effect: ClaimedEffect) -> (usize, StoreResult<()>) {
        let mut ran = 0;
        loop {
            ran += 1;
            match self.execute_one(effect).await {
                Ok(Some(next)) => effect = next,
                Ok(None) => return (ran, Ok(())),
                Err(e) => return (ran, Err(e)),
            }
            tokio::task::yield_now().await;
        }
    }

    /// Executes one effect and records the outcome. Returns the key's next effect, claimed
    /// by the same write that completed this one.
    async fn execute_one(&self, effect: ClaimedEffect) -> StoreResult<Option<ClaimedEffect>> {
        let backoff = self.config.backoff;
        let attempt = Attempt {
            number: effect.attempts,
            last: effect.attempts >= backoff.max_attempts,
        };
        let worker = &self.config.worker;
        let finishing = Arc::new(Mutex::new(Finishing {
            finish: Some(FinishedEffect {
                id: effect.id,
                next: self.config.claim::<E>(),
            }),
            stopping: self.stopping.clone(),
            ..Finishing::default()
        }));
        // Boxed: an executor's future is large (a model call, HTTP requests), and inline it
        // made every spawned task as large. The replay bench's resident memory per idle
        // conversation was about 3 KB that way, 1.2-2 KB boxed, at the same speed.
        let outcome = FINISHING
            .scope(
                finishing.clone(),
                Box::pin(self.executor.execute(&effect, attempt)),
            )
            .await;
        if let Some(next) = finishing_state(&finishing).done.take() {
            // Its last commit completed it and claimed the key's next effect.
            if let Err(error) = outcome {
                tracing::warn!(effect = %effect.id, %error, "effect failed after the commit that completed it; it stays done");
            }
            return Ok(next);
        }
        let now = (self.clock)();
        let failure = match outcome {
            Ok(()) => {
                let kinds: &[&str] = if self.stopping.load(Ordering::Relaxed) {
                    &[]
                } else {
                    E::KINDS
                };
                return self
                    .store
                    .complete_effect_and_claim_next(
                        effect.id,
                        worker,
                        kinds,
                        now,
                        now.saturating_add(self.config.lease_seconds),
                    )
                    .await;
            }
            Err(EffectError::Transient(reason)) => match backoff.retry_at(effect.attempts, now) {
                Some(retry_at) => {
                    tracing::warn!(effect = %effect.id, attempt = effect.attempts, %reason, "effect failed; retrying");
                    EffectFailure::Transient { retry_at, reason }
                }
                None => {
                    tracing::error!(effect = %effect.id, %reason, "effect failed too often; giving up");
                    EffectFailure::Permanent { reason }
                }
            },
            Err(EffectError::Permanent(reason)) => {
                tracing::error!(effect = %effect.id, %reason, "effect failed permanently");
                EffectFailure::Permanent { reason }
            }
        };
        self.store
            .fail_effect(effect.id, worker, failure, now)
            .await
            .map(|()| None)
    }

    /// Runs until `stop` turns true, then lets the keys in flight finish. Up to `batch`
    /// keys run at once, and a key that finishes makes room for newly claimed ones at
    /// once: a slow effect (a model call) holds up only its own key, never the others.
    /// Store errors are logged and retried after `idle`: an outage must not end the worker.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        /// Marks the worker stopping when `run` ends, however it ends.
        struct Stopping(Arc<AtomicBool>);
        impl Drop for Stopping {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stopping = Stopping(self.stopping.clone());
        let capacity = self.config.batch.max(1) as usize;
        let mut running: JoinSet<(usize, StoreResult<()>)> = JoinSet::new();
        loop {
            while let Some(joined) = running.try_join_next() {
                report(joined);
            }
            if *stop.borrow() {
                break;
            }
            let notified = self.wake.notified();
            let room = capacity.saturating_sub(running.len());
            if room > 0 {
                match self.claim(u32::try_from(room).unwrap_or(u32::MAX)).await {
                    Ok(claimed) if !claimed.is_empty() => {
                        for effect in claimed {
                            let this = self.clone();
                            running.spawn(async move { this.run_key(effect).await });
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "outbox claim failed");
                        tokio::select! {
                            _ = tokio::time::sleep(self.config.idle) => {}
                            // A dropped sender stops the worker too.
                            changed = stop.changed() => if changed.is_err() { break },
                        }
                        continue;
                    }
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(self.config.idle) => {}
                Some(joined) = running.join_next(), if !running.is_empty() => report(joined),
                changed = stop.changed() => if changed.is_err() { break },
            }
        }
        while let Some(joined) = running.join_next().await {
            report(joined);
        }
    }
}

/// Logs how a key's run ended, when it ended badly.
fn report(joined: Result<(usize, StoreResult<()>), tokio::task::JoinError>) {
    match joined {
        Ok((_, Ok(()))) => {}
        Ok((_, Err(error))) => tracing::warn!(%error, "outbox round failed"),
        Err(panic) => tracing::error!(error = %panic, "an effect execution panicked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use worldstore_adapters::store::{DataKey, SqlStore};
    use worldstore_domain::ports::store::{Commit, NewEffect, StoredState};

    /// Fails as told, and records each attempt.
    struct Scripted {
        attempts: Mutex<Vec<(String, Attempt)>>,
        fail_first: Option<EffectError>,
    }

    impl Scripted {
        /// The effects attempted, in order.
        fn keys(&self) -> Vec<String> {
            let attempts = self.attempts.lock().unwrap();
            attempts.iter().map(|(k, _)| k.clone()).collect()
        }
    }

    impl EffectExecutor for Scripted {
        const KINDS: &'static [&'static str] = &["test"];

        async fn execute(
            &self,
            effect: &ClaimedEffect,
            attempt: Attempt,
        ) -> Result<(), EffectError> {
            self.attempts
                .lock()
                .unwrap()
                .push((effect.idempotency_key.to_string(), attempt));
            match (&self.fail_first, attempt.number) {
                (Some(error), 1) => Err(error.clone()),
                _ => Ok(()),
            }
        }
    }

    struct Fixture {
        store: Arc<SqlStore>,
        now: Arc<AtomicU64>,
        dir: std::path::PathBuf,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    async fn fixture(name: &str) -> Fixture {
        let dir =
            std::env::temp_dir().join(format!("worldstore-outbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("outbox.sqlite").display());
        let store = SqlStore::open(&url, &DataKey::from_bytes([7; 32]))
            .await
            .unwrap();
        Fixture {
            store: Arc::new(store),
            now: Arc::new(AtomicU64::new(1_000)),
            dir,
        }
    }

    /// The configuration of the tests' worker.
    fn test_config() -> WorkerConfig {
        WorkerConfig::new(Key::parse("test-worker").unwrap())
    }

    /// A worker running `executor` on the fixture's store and clock.
    fn worker_of<E: EffectExecutor>(
        f: &Fixture,
        executor: Arc<E>,
        config: WorkerConfig,
    ) -> OutboxWorker<SqlStore, E> {
        let now = f.now.clone();
        let clock: Clock = Arc::new(move || now.load(Ordering::SeqCst));
        OutboxWorker::new(f.store.clone(), executor, config, clock)
    }

    fn worker(
        f: &Fixture,
        executor: Scripted,
        backoff: Backoff,
    ) -> (OutboxWorker<SqlStore, Scripted>, Arc<Scripted>) {
        let executor = Arc::new(executor);
        let config = WorkerConfig {
            backoff,
            ..test_config()
        };
        (worker_of(f, executor.clone(), config), executor)
    }

    /// A `test` effect with idempotency key `key` on `ordering`.
    fn test_effect(key: &str, ordering: &str) -> NewEffect {
        NewEffect {
            idempotency_key: Key::parse(key).unwrap(),
            ordering_key: Key::parse(ordering).unwrap(),
            effect: StoredState {
                kind: "test".into(),
                version: 1,
                body: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
            },
        }
    }

    async fn enqueue(f: &Fixture, keys: &[(&str, &str)]) {
        let effects = keys
            .iter()
            .map(|(key, ordering)| test_effect(key, ordering))
            .collect();
        let commit = Commit {
            effects,
            ..Commit::default()
        };
        f.store
            .commit(commit, f.now.load(Ordering::SeqCst))
            .await
            .unwrap();
    }

    /// Enqueues one effect on `ordering` with a commit that leases it to the tests' worker
    /// (`Commit::claim_first`), and hands what it leased over.
    async fn enqueue_leased(f: &Fixture, key: &str, ordering: &str, handoff: &Handoff) {
        let commit = Commit {
            effects: vec![test_effect(key, ordering)],
            claim_first: Some(test_config().claim::<Scripted>()),
            ..Commit::default()
        };
        let committed = f
            .store
            .commit(commit, f.now.load(Ordering::SeqCst))
            .await
            .unwrap();
        assert_eq!(committed.claimed.len(), 1);
        handoff.give(committed.claimed);
    }

    #[tokio::test]
    async fn handed_over_effects_run_without_a_claim_and_expired_ones_go_back_to_the_store() {
        let f = fixture("handoff").await;
        let handoff = Handoff::default();
        let (worker, executor) = worker(
            &f,
            Scripted {
                attempts: Mutex::default(),
                fail_first: None,
            },
            BACKOFF,
        );
        let worker = worker.with_handoff(handoff.clone());
        enqueue_leased(&f, "a", "user:a", &handoff).await;
        // Leased by its commit: no other worker can claim it.
        let other = Key::parse("other-worker").unwrap();
        let now = f.now.load(Ordering::SeqCst);
        assert!(
            f.store
                .claim_effects(&other, &["test"], 10, now, now + 60)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(worker.run_once().await.unwrap(), 1);
        assert_eq!(f.store.unfinished_effects().await.unwrap(), 0);

        // A handed-over effect whose lease ran out is dropped; the store hands it out
        // again, to this worker here, as a second attempt.
        enqueue_leased(&f, "b", "user:b", &handoff).await;
        f.now
            .fetch_add(test_config().lease_seconds + 1, Ordering::SeqCst);
        assert_eq!(worker.run_once().await.unwrap(), 1);
        let attempts = executor.attempts.lock().unwrap().clone();
        let seen: Vec<(String, u32)> = attempts
            .iter()
            .map(|(k, a)| (k.clone(), a.number))
            .collect();
        assert_eq!(seen, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
        assert_eq!(f.store.unfinished_effects().await.unwrap(), 0);
    }

    const BACKOFF: Backoff = Backoff {
        base_seconds: 2,
        max_seconds: 60,
        max_attempts: 5,
    };

    #[tokio::test]
    async fn a_transient_failure_is_retried_after_the_backoff_then_completed() {
        let f = fixture("transient").await;
        let executor = Scripted {
            attempts: Mutex::default(),
            fail_first: Some(EffectError::Transient("node down".into())),
        };
        let (worker, executor) = worker(&f, executor, BACKOFF);
        enqueue(&f, &[("e1", "user:a")]).await;
        assert_eq!(worker.run_once().await.unwrap(), 1);
        assert_eq!(f.store.unfinished_effects().await.unwrap(), 1);
        assert_eq!(
            worker.run_once().await.unwrap(),
            0,
            "not before the backoff"
        );
        f.now.fetch_add(2, Ordering::SeqCst);
        assert_eq!(worker.run_once().await.unwrap(), 1);
        assert_eq!(f.store.unfinished_effects().await.unwrap(), 0);
        let attempts: Vec<u32> = executor
            .attempts
            .lock()
            .unwrap()
            .iter()
            .map(|(_, a)| a.number)
            .collect();
        assert_eq!(attempts, vec![1, 2]);
    }

    #[tokio::test]
    async fn a_permanent_failure_parks_the_effect_and_frees_its_ordering_key() {
        let f = fixture("permanent").await;
        let executor = Scripted {
            attempts: Mutex::default(),
            fail_first: Some(EffectError::Permanent("unreadable".into())),
        };
        let (worker, executor) = worker(&f, executor, BACKOFF);
        enqueue(&f, &[("e1", "user:a"), ("e2", "user:a")]).await;
        assert_eq!(worker.run_once().await.unwrap(), 1, "one at a time per key");
        assert_eq!(worker.run_once().await.unwrap(), 1);
        assert_eq!(f.store.unfinished_effects().await.unwrap(), 0);
        let keys = executor.keys();
        assert_eq!(keys, vec!["e1", "e2"]);
    }

    #[tokio::test]
    async fn a_keys_effects_run_back_to_back_in_order_within_one_round() {
        let f = fixture("chain").await;
        let executor = Scripted {
            attempts: Mutex::default(),
            fail_first: None,
        };
        let (worker, executor) = worker(&f, executor, BACKOFF);
        enqueue(&f, &[("e1", "user:a"), ("e2", "user:a"), ("e3", "user:a")]).await;
        assert_eq!(
            worker.run_once().await.unwrap(),
            3,
            "claimed once, ran three"
        );
        assert_eq!(f.store.unfinished_effects().await.unwrap(), 0);
        let keys = executor.keys();
        assert_eq!(keys, vec!["e1", "e2", "e3"]);
    }

    /// Runs `first` by committing a follow-up effect `second` on the same key, as the last
    /// step of `first` when `finish_in_commit`; records each run and what the commit said.
    struct Committing {
        store: Arc<SqlStore>,
        finish_in_commit: bool,
        ran: Mutex<Vec<String>>,
        next_from_commit: Mutex<Option<String>>,
    }

    impl EffectExecutor for Committing {
        const KINDS: &'static [&'static str] = &["test"];

        async fn execute(&self, effect: &ClaimedEffect, _: Attempt) -> Result<(), EffectError> {
            let name = effect.idempotency_key.to_string();
            self.ran.lock().unwrap().push(name.clone());
            if name == "first" {
                if self.finish_in_commit {
                    last_write_follows();
                }
                let commit = Commit {
                    effects: vec![NewEffect {
                        idempotency_key: Key::parse("second").unwrap(),
                        ordering_key: effect.ordering_key.clone(),
                        effect: effect.effect.clone(),
                    }],
                    finishes: finishing(),
                    ..Commit::default()
                };
                let finishing = commit.finishes.is_some();
                let committed = self.store.commit(commit, 1_000).await?;
                if finishing {
                    *self.next_from_commit.lock().unwrap() = committed
                        .next_effect
                        .as_ref()
                        .map(|e| e.idempotency_key.to_string());
                    finished(committed.next_effect);
                }
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_effects_last_commit_completes_it_and_hands_the_worker_the_next() {
        for finish_in_commit in [true, false] {
            let f = fixture(if finish_in_commit { "fold" } else { "nofold" }).await;
            let executor = Arc::new(Committing {
                store: f.store.clone(),
                finish_in_commit,
                ran: Mutex::default(),
                next_from_commit: Mutex::default(),
            });
            let worker = worker_of(&f, executor.clone(), test_config());
            enqueue(&f, &[("first", "user:a")]).await;
            // A worker completing `first` again after its commit did would lose the lease
            // (it is done) and fail the round.
            assert_eq!(worker.run_once().await.unwrap(), 2, "{finish_in_commit}");
            assert_eq!(*executor.ran.lock().unwrap(), ["first", "second"]);
            assert_eq!(f.store.unfinished_effects().await.unwrap(), 0);
            let expected = finish_in_commit.then(|| "second".to_owned());
            assert_eq!(*executor.next_from_commit.lock().unwrap(), expected);
        }
        // Outside an effect's execution there is nothing to finish.
        last_write_follows();
        assert_eq!(finishing(), None);
    }

    /// Holds effects named `slow-*` until released; records every start.
    struct Gated {
        started: Mutex<Vec<String>>,
        release: Notify,
    }

    impl EffectExecutor for Gated {
        const KINDS: &'static [&'static str] = &["test"];

        async fn execute(&self, effect: &ClaimedEffect, _: Attempt) -> Result<(), EffectError> {
            let name = effect.idempotency_key.to_string();
            self.started.lock().unwrap().push(name.clone());
            if name.starts_with("slow") {
                self.release.notified().await;
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_slow_effect_holds_up_only_its_own_key() {
        let f = fixture("slow").await;
        let gated = Arc::new(Gated {
            started: Mutex::default(),
            release: Notify::new(),
        });
        let worker = worker_of(&f, gated.clone(), test_config());
        let wake = worker.waker();
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(worker.run(stopped));
        let started = |name: &str| gated.started.lock().unwrap().iter().any(|n| n == name);
        let wait_for = |name: &'static str| async move {
            for _ in 0..500 {
                if started(name) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            panic!("{name} never started");
        };

        enqueue(&f, &[("slow-1", "user:a"), ("after-slow", "user:a")]).await;
        wake.notify_one();
        wait_for("slow-1").await;
        // Enqueued while slow-1 is still running, for another user: it runs now.
        enqueue(&f, &[("quick-1", "user:b")]).await;
        wake.notify_one();
        wait_for("quick-1").await;
        assert!(
            !started("after-slow"),
            "user:a's next effect waits for slow-1"
        );

        gated.release.notify_one();
        wait_for("after-slow").await;
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .expect("the worker stops")
            .unwrap();
        assert_eq!(f.store.unfinished_effects().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn the_executor_is_told_when_an_attempt_is_the_last() {
        let f = fixture("last").await;
        let executor = Scripted {
            attempts: Mutex::default(),
            fail_first: Some(EffectError::Transient("still down".into())),
        };
        let once = Backoff {
            max_attempts: 1,
            ..BACKOFF
        };
        let (worker, executor) = worker(&f, executor, once);
        enqueue(&f, &[("e1", "user:a"), ("e2", "user:b")]).await;
        assert_eq!(
            worker.run_once().await.unwrap(),
            2,
            "different keys run together"
        );
        assert!(
            executor
                .attempts
                .lock()
                .unwrap()
                .iter()
                .all(|(_, a)| a.last)
        );
        assert_eq!(
            f.store.unfinished_effects().await.unwrap(),
            0,
            "given up, not retried"
        );
    }
}
