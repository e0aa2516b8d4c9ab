//! Outbox scenarios: parallel draining, retries with backoff, expired leases, ordering.

use crate::harness::{self, fresh, key};
use crate::scenarios::{effect, effect_of_kind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use worldstore_adapters::store::{Backend, SqlStore};
use worldstore_domain::ports::store::{
    Backoff, ClaimedEffect, Commit, Conflict, EffectClaim, EffectFailure, FinishedEffect, Store,
    StoreError,
};

const NOW: u64 = 1_700_000_000;
const LEASE: u64 = 600;
/// The kind of [`effect`]'s effects.
const KINDS: &[&str] = &["effect.reply"];

/// The idempotency keys of `claimed`, in order.
fn names(claimed: &[ClaimedEffect]) -> Vec<String> {
    claimed
        .iter()
        .map(|e| e.idempotency_key.to_string())
        .collect()
}

async fn enqueue(store: &impl Store, effects: &[(&str, &str)]) {
    let commit = Commit {
        effects: effects.iter().map(|(i, o)| effect(i, o)).collect(),
        ..Commit::default()
    };
    store.commit(commit, NOW).await.expect("enqueue");
}

pub async fn n_workers_draining_the_outbox_execute_each_effect_once_in_key_order(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    const KEYS: usize = 20;
    const PER_KEY: usize = 15;
    const WORKERS: usize = 8;
    for round in 0..PER_KEY {
        let commit = Commit {
            effects: (0..KEYS)
                .map(|k| effect(&format!("fx-{k}-{round}"), &format!("conv-{k}")))
                .collect(),
            ..Commit::default()
        };
        db.store.commit(commit, NOW).await.expect("enqueue");
    }
    let executed: Arc<Mutex<Vec<(String, i64, String)>>> = Arc::default();
    let started = std::time::Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let store = db.store.clone();
            let executed = executed.clone();
            tokio::spawn(async move {
                let worker = key(&format!("worker-{w}"));
                let mut idle_rounds = 0;
                loop {
                    let claimed = store
                        .claim_effects(&worker, KINDS, 4, NOW, NOW + LEASE)
                        .await
                        .expect("claim");
                    if claimed.is_empty() {
                        if store.unfinished_effects().await.expect("count") == 0 {
                            return;
                        }
                        idle_rounds += 1;
                        assert!(idle_rounds < 100_000, "workers starved");
                        tokio::task::yield_now().await;
                        continue;
                    }
                    for effect in claimed {
                        executed.lock().expect("lock").push((
                            effect.ordering_key.to_string(),
                            effect.id.0,
                            effect.idempotency_key.to_string(),
                        ));
                        store
                            .complete_effect(effect.id, &worker, NOW)
                            .await
                            .expect("complete");
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    let executed = executed.lock().expect("lock").clone();
    eprintln!(
        "{WORKERS} workers drained {} effects ({KEYS} keys x {PER_KEY}) on {backend:?} in {:?}",
        executed.len(),
        started.elapsed()
    );
    assert_eq!(
        executed.len(),
        KEYS * PER_KEY,
        "each effect executed exactly once"
    );
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (_, _, idem) in &executed {
        *seen.entry(idem.clone()).or_default() += 1;
    }
    assert!(seen.values().all(|n| *n == 1));
    assert_eq!(seen.len(), KEYS * PER_KEY);
    // Per key, effects ran in enqueue order (execution log order is completion order).
    let mut last: HashMap<String, i64> = HashMap::new();
    for (ordering, id, _) in &executed {
        let previous = last.insert(ordering.clone(), *id);
        assert!(
            previous.is_none_or(|p| p < *id),
            "{ordering}: {id} ran after a later effect"
        );
    }
}

pub async fn transient_failures_are_retried_after_their_backoff(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let store = &db.store;
    let worker = key("worker-a");
    enqueue(store, &[("fx-1", "conv-1")]).await;
    let backoff = Backoff {
        base_seconds: 10,
        max_seconds: 60,
        max_attempts: 3,
    };

    let first = store
        .claim_effects(&worker, KINDS, 10, NOW, NOW + LEASE)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempts, 1);
    let retry_at = backoff.retry_at(first[0].attempts, NOW).expect("retry");
    let failure = EffectFailure::Transient {
        retry_at,
        reason: "merchant answered 503".into(),
    };
    store
        .fail_effect(first[0].id, &worker, failure, NOW)
        .await
        .expect("fail");

    assert!(
        store
            .claim_effects(&worker, KINDS, 10, NOW + 9, NOW + LEASE)
            .await
            .expect("claim")
            .is_empty()
    );
    let second = store
        .claim_effects(&worker, KINDS, 10, NOW + 10, NOW + LEASE)
        .await
        .expect("claim");
    assert_eq!(second[0].attempts, 2);
    let failure = EffectFailure::Permanent {
        reason: "refused".into(),
    };
    store
        .fail_effect(second[0].id, &worker, failure, NOW + 10)
        .await
        .expect("fail");
    assert_eq!(store.unfinished_effects().await.expect("count"), 0);
    assert!(
        store
            .claim_effects(&worker, KINDS, 10, NOW + 1000, NOW + LEASE)
            .await
            .expect("claim")
            .is_empty()
    );
}

pub async fn an_expired_lease_is_reclaimed_and_the_old_worker_loses_it(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let store = &db.store;
    let (crashed, rescuer) = (key("worker-crashed"), key("worker-rescuer"));
    enqueue(store, &[("fx-1", "conv-1")]).await;
    let taken = store
        .claim_effects(&crashed, KINDS, 10, NOW, NOW + 30)
        .await
        .expect("claim");
    assert_eq!(taken.len(), 1);
    assert!(
        store
            .claim_effects(&rescuer, KINDS, 10, NOW + 29, NOW + 60)
            .await
            .expect("claim")
            .is_empty()
    );
    let rescued = store
        .claim_effects(&rescuer, KINDS, 10, NOW + 30, NOW + 90)
        .await
        .expect("claim");
    assert_eq!(rescued[0].id, taken[0].id);
    assert_eq!(rescued[0].attempts, 2);
    let err = store
        .complete_effect(taken[0].id, &crashed, NOW + 31)
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict(Conflict::LeaseLost(taken[0].id)));
    store
        .complete_effect(rescued[0].id, &rescuer, NOW + 31)
        .await
        .expect("complete");
    assert_eq!(store.unfinished_effects().await.expect("count"), 0);
}

pub async fn an_effect_waits_for_earlier_effects_of_its_ordering_key(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let store = &db.store;
    let (a, b) = (key("worker-a"), key("worker-b"));
    enqueue(
        store,
        &[("fx-1", "conv-1"), ("fx-2", "conv-1"), ("fx-3", "conv-2")],
    )
    .await;
    let first = store
        .claim_effects(&a, KINDS, 10, NOW, NOW + LEASE)
        .await
        .expect("claim");
    assert_eq!(names(&first), ["fx-1", "fx-3"], "fx-2 waits behind fx-1");
    assert!(
        store
            .claim_effects(&b, KINDS, 10, NOW, NOW + LEASE)
            .await
            .expect("claim")
            .is_empty()
    );
    let retry = EffectFailure::Transient {
        retry_at: NOW + 5,
        reason: "timeout".into(),
    };
    store
        .fail_effect(first[0].id, &a, retry, NOW)
        .await
        .expect("fail");
    assert!(
        store
            .claim_effects(&b, KINDS, 10, NOW + 1, NOW + LEASE)
            .await
            .expect("claim")
            .is_empty(),
        "a retrying effect still holds back the next one"
    );
    let again = store
        .claim_effects(&b, KINDS, 10, NOW + 5, NOW + LEASE)
        .await
        .expect("claim");
    assert_eq!(again[0].idempotency_key, key("fx-1"));
    store
        .complete_effect(again[0].id, &b, NOW + 5)
        .await
        .expect("complete");
    let next = store
        .claim_effects(&b, KINDS, 10, NOW + 5, NOW + LEASE)
        .await
        .expect("claim");
    assert_eq!(next[0].idempotency_key, key("fx-2"));
}

pub async fn workers_of_different_kinds_on_one_store_claim_only_their_own(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let store = &db.store;
    let (agent, merchant) = (key("agent-worker"), key("merchant-worker"));
    const AGENT: &[&str] = &["agent.effect"];
    const MERCHANT: &[&str] = &["settlement.effect"];
    let commit = Commit {
        effects: vec![
            effect_of_kind("agent-1", "user:alice", "agent.effect"),
            effect_of_kind("order-1:pay", "order-1", "settlement.effect"),
            effect_of_kind("agent-2", "user:bob", "agent.effect"),
            effect_of_kind("order-2:pay", "order-2", "settlement.effect"),
            effect_of_kind("audit-1", "order-3", "reporter.effect"),
        ],
        ..Commit::default()
    };
    store.commit(commit, NOW).await.expect("enqueue");

    let mine = store
        .claim_effects(&agent, AGENT, 10, NOW, NOW + LEASE)
        .await
        .expect("claim");
    assert_eq!(names(&mine), ["agent-1", "agent-2"]);
    // The agent's leases run out and it claims again, over and over: the merchant's
    // effects and the unclaimed kind stay untouched however often it looks.
    for round in 1..=3 {
        let later = NOW + round * LEASE;
        let again = store
            .claim_effects(&agent, AGENT, 10, later, later + LEASE)
            .await
            .expect("claim");
        assert_eq!(names(&again), ["agent-1", "agent-2"], "only its own, again");
    }
    let later = NOW + 4 * LEASE;
    let theirs = store
        .claim_effects(&merchant, MERCHANT, 10, later, later + LEASE)
        .await
        .expect("claim");
    assert_eq!(names(&theirs), ["order-1:pay", "order-2:pay"]);
    assert!(
        theirs.iter().all(|e| e.attempts == 1),
        "no other worker ever leased the merchant's effects: {theirs:?}"
    );
    let err = store
        .complete_effect(theirs[0].id, &agent, later)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Conflict(Conflict::LeaseLost(theirs[0].id)),
        "the agent holds no lease on a merchant effect"
    );
    for effect in &theirs {
        store
            .complete_effect(effect.id, &merchant, later)
            .await
            .expect("the merchant completes its own");
    }
    assert!(
        store
            .claim_effects(&agent, &[], 10, later + LEASE, later + 2 * LEASE)
            .await
            .expect("claim")
            .is_empty(),
        "naming no kind claims nothing"
    );
    // Two agent effects still hold their (expired) leases, and the third kind was never
    // claimed: 3 unfinished. A worker naming both kinds takes them all, the third first
    // leased now.
    assert_eq!(store.unfinished_effects().await.expect("count"), 3);
    let both = store
        .claim_effects(
            &merchant,
            &["agent.effect", "reporter.effect"],
            10,
            later + LEASE,
            later + 2 * LEASE,
        )
        .await
        .expect("claim");
    assert_eq!(names(&both), ["agent-1", "agent-2", "audit-1"]);
    assert_eq!(both[2].attempts, 1);
}

pub async fn completing_an_effect_claims_the_next_of_its_key_in_the_same_write(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let store = &db.store;
    let (a, b) = (key("worker-a"), key("worker-b"));
    let commit = Commit {
        effects: vec![
            effect("fx-1", "conv-1"),
            effect("fx-2", "conv-1"),
            effect("fx-3", "conv-2"),
            effect("fx-4", "conv-1"),
            effect_of_kind("fx-5", "conv-1", "other.effect"),
            effect("fx-6", "conv-1"),
        ],
        ..Commit::default()
    };
    store.commit(commit, NOW).await.expect("enqueue");
    let first = store
        .claim_effects(&a, KINDS, 1, NOW, NOW + LEASE)
        .await
        .expect("claim");
    assert_eq!(first[0].idempotency_key, key("fx-1"));

    let err = store
        .complete_effect_and_claim_next(first[0].id, &b, KINDS, NOW, NOW + LEASE)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Conflict(Conflict::LeaseLost(first[0].id)),
        "only the lease holder completes"
    );
    let second = store
        .complete_effect_and_claim_next(first[0].id, &a, KINDS, NOW, NOW + LEASE)
        .await
        .expect("complete")
        .expect("fx-2 is next on conv-1 and ready");
    assert_eq!(second.idempotency_key, key("fx-2"));
    assert_eq!((second.attempts, second.lease_until), (1, NOW + LEASE));
    // fx-3 is on another key: still free for anyone, and fx-4 waits behind fx-2.
    let others = store
        .claim_effects(&b, KINDS, 10, NOW, NOW + LEASE)
        .await
        .expect("claim");
    assert_eq!(names(&others), ["fx-3"]);

    let fourth = store
        .complete_effect_and_claim_next(second.id, &a, KINDS, NOW, NOW + LEASE)
        .await
        .expect("complete")
        .expect("fx-4 is next");
    assert_eq!(fourth.idempotency_key, key("fx-4"));
    assert!(
        store
            .complete_effect_and_claim_next(fourth.id, &a, KINDS, NOW, NOW + LEASE)
            .await
            .expect("complete")
            .is_none(),
        "fx-5 comes next and is another role's kind: not claimed, and nothing jumps it"
    );
    let theirs = store
        .claim_effects(&b, &["other.effect"], 10, NOW, NOW + LEASE)
        .await
        .expect("claim");
    assert_eq!(theirs[0].idempotency_key, key("fx-5"));
    let sixth = store
        .complete_effect_and_claim_next(theirs[0].id, &b, &["other.effect"], NOW, NOW + LEASE)
        .await
        .expect("complete");
    assert!(sixth.is_none(), "fx-6 is not of the kinds asked for");
    let last = store
        .claim_effects(&a, KINDS, 10, NOW, NOW + LEASE)
        .await
        .expect("claim");
    assert_eq!(last[0].idempotency_key, key("fx-6"));
    assert_eq!(
        store.unfinished_effects().await.expect("count"),
        2,
        "fx-3 and fx-6 are claimed and not yet done"
    );
}

/// The commit an effect's execution ends with can complete that effect
/// (`Commit::finishes`): done and the key's next effect claimed in the same transaction as
/// the state it wrote, or, when the worker lost the lease, nothing written at all.
pub async fn a_commit_can_finish_the_effect_whose_execution_made_it(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let store = &db.store;
    let (a, b) = (key("worker-a"), key("worker-b"));
    enqueue(store, &[("fx-1", "conv-1")]).await;
    let claimed = store
        .claim_effects(&a, KINDS, 10, NOW, NOW + LEASE)
        .await
        .expect("claim");
    let id = claimed[0].id;
    let commit_by = |worker: &worldstore_domain::ports::store::Key| Commit {
        inbound: Some(key("in-1")),
        effects: vec![effect("fx-2", "conv-1"), effect("fx-3", "conv-2")],
        finishes: Some(FinishedEffect {
            id,
            next: EffectClaim {
                worker: worker.clone(),
                kinds: KINDS,
                lease_seconds: LEASE,
            },
        }),
        ..Commit::default()
    };

    let err = store.commit(commit_by(&b), NOW + 1).await.unwrap_err();
    assert_eq!(err, StoreError::Conflict(Conflict::LeaseLost(id)));
    assert!(
        !store.is_processed(&key("in-1")).await.expect("read"),
        "a refused finish writes nothing of its commit"
    );
    assert_eq!(store.unfinished_effects().await.expect("read"), 1);

    let committed = store.commit(commit_by(&a), NOW + 1).await.expect("commit");
    assert!(store.is_processed(&key("in-1")).await.expect("read"));
    let next = committed
        .next_effect
        .expect("fx-2, enqueued by this very commit, is next on conv-1");
    assert_eq!(next.idempotency_key, key("fx-2"));
    assert_eq!((next.attempts, next.lease_until), (1, NOW + 1 + LEASE));
    assert_eq!(
        store
            .complete_effect_and_claim_next(id, &a, KINDS, NOW + 1, NOW + LEASE)
            .await
            .unwrap_err(),
        StoreError::Conflict(Conflict::LeaseLost(id)),
        "fx-1 is done already"
    );
    // fx-3 is on another key: free for anyone.
    let others = store
        .claim_effects(&b, KINDS, 10, NOW + 1, NOW + LEASE)
        .await
        .expect("claim");
    assert_eq!(names(&others), ["fx-3"]);
    assert_eq!(store.unfinished_effects().await.expect("read"), 2);
}

/// A claim that found nothing finds what becomes due afterwards, however it does: an effect
/// enqueued by the same store, an effect enqueued through another connection to the same
/// database, a retry whose time comes, and an expired lease.
pub async fn a_claim_that_found_nothing_sees_what_becomes_due_later(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let store = &db.store;
    let (a, b) = (key("worker-a"), key("worker-b"));
    let claim = |worker, now| async move {
        names(
            &store
                .claim_effects(worker, KINDS, 10, now, now + LEASE)
                .await
                .expect("claim"),
        )
    };
    assert!(claim(&a, NOW).await.is_empty());
    assert!(
        claim(&a, NOW).await.is_empty(),
        "asked again: still nothing"
    );

    enqueue(store, &[("fx-1", "conv-1")]).await;
    assert_eq!(claim(&a, NOW).await, ["fx-1"], "enqueued by this store");
    assert!(
        claim(&b, NOW).await.is_empty(),
        "fx-1 is leased to worker-a"
    );

    let other = SqlStore::open(&db.url, &harness::data_key())
        .await
        .expect("a second connection");
    enqueue(&other, &[("fx-2", "conv-2")]).await;
    assert_eq!(
        claim(&b, NOW).await,
        ["fx-2"],
        "enqueued through another connection"
    );
    other.close().await;

    let fx2 = store
        .claim_effects(&b, KINDS, 10, NOW + LEASE, NOW + 2 * LEASE)
        .await
        .expect("claim");
    assert_eq!(
        fx2.len(),
        2,
        "both leases ran out: fx-1 and fx-2 are taken over"
    );
    for effect in &fx2 {
        let failure = EffectFailure::Transient {
            retry_at: NOW + LEASE + 30,
            reason: "later".into(),
        };
        store
            .fail_effect(effect.id, &b, failure, NOW + LEASE)
            .await
            .expect("fail");
    }
    assert!(claim(&a, NOW + LEASE + 1).await.is_empty());
    assert!(claim(&a, NOW + LEASE + 29).await.is_empty());
    assert_eq!(
        claim(&a, NOW + LEASE + 30).await,
        ["fx-1", "fx-2"],
        "the retries' time came"
    );
}

/// A commit can lease what it enqueues to the worker of the process that made it
/// (`Commit::claim_first`): the first unfinished effect of each ordering key it enqueued
/// into, when ready and of the worker's kinds, whoever enqueued it. An effect queued
/// behind another of its key, or of another kind, is left for a claim in the usual order.
pub async fn a_commit_can_lease_the_effects_it_enqueues_to_a_worker(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let store = &db.store;
    let (a, b) = (key("worker-a"), key("worker-b"));
    // conv-1 already has an unfinished effect: what this commit adds there waits behind it.
    enqueue(store, &[("fx-0", "conv-1"), ("fx-9", "conv-9")]).await;
    let commit = Commit {
        inbound: Some(key("in-1")),
        effects: vec![
            effect("fx-1", "conv-1"),
            effect("fx-2", "conv-2"),
            effect("fx-3", "conv-2"),
            effect_of_kind("fx-4", "conv-3", "effect.other"),
        ],
        claim_first: Some(EffectClaim {
            worker: a.clone(),
            kinds: KINDS,
            lease_seconds: LEASE,
        }),
        ..Commit::default()
    };
    let committed = store.commit(commit, NOW).await.expect("commit");
    assert_eq!(
        names(&committed.claimed),
        ["fx-0", "fx-2"],
        "the first of conv-1 and of conv-2"
    );
    assert_eq!(
        (
            committed.claimed[1].attempts,
            committed.claimed[1].lease_until
        ),
        (1, NOW + LEASE)
    );
    // Leased to a: another worker gets only what the commit did not touch.
    let others = store
        .claim_effects(&b, KINDS, 10, NOW, NOW + LEASE)
        .await
        .expect("claim");
    assert_eq!(names(&others), ["fx-9"]);
    // The lease is a's: completing fx-2 hands a the next of conv-2.
    let next = store
        .complete_effect_and_claim_next(committed.claimed[1].id, &a, KINDS, NOW, NOW + LEASE)
        .await
        .expect("complete")
        .expect("fx-3 is next");
    assert_eq!(next.idempotency_key, key("fx-3"));
    // Without a claim, a commit leases nothing.
    let commit = Commit {
        effects: vec![effect("fx-5", "conv-4")],
        ..Commit::default()
    };
    assert!(
        store
            .commit(commit, NOW)
            .await
            .expect("commit")
            .claimed
            .is_empty()
    );
}
