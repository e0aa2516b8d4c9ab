//! Outbox scenarios: parallel draining, retries with backoff, expired leases, ordering.

use crate::harness::{fresh, key};
use crate::scenarios::effect;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use worldstore_adapters::store::Backend;
use worldstore_domain::ports::store::{
    Backoff, Commit, Conflict, EffectFailure, Store, StoreError,
};

const NOW: u64 = 1_700_000_000;
const LEASE: u64 = 600;

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
                        .claim_effects(&worker, 4, NOW, NOW + LEASE)
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
        .claim_effects(&worker, 10, NOW, NOW + LEASE)
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
            .claim_effects(&worker, 10, NOW + 9, NOW + LEASE)
            .await
            .expect("claim")
            .is_empty()
    );
    let second = store
        .claim_effects(&worker, 10, NOW + 10, NOW + LEASE)
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
            .claim_effects(&worker, 10, NOW + 1000, NOW + LEASE)
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
        .claim_effects(&crashed, 10, NOW, NOW + 30)
        .await
        .expect("claim");
    assert_eq!(taken.len(), 1);
    assert!(
        store
            .claim_effects(&rescuer, 10, NOW + 29, NOW + 60)
            .await
            .expect("claim")
            .is_empty()
    );
    let rescued = store
        .claim_effects(&rescuer, 10, NOW + 30, NOW + 90)
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
        .claim_effects(&a, 10, NOW, NOW + LEASE)
        .await
        .expect("claim");
    let names: Vec<_> = first
        .iter()
        .map(|e| e.idempotency_key.to_string())
        .collect();
    assert_eq!(names, ["fx-1", "fx-3"], "fx-2 waits behind fx-1");
    assert!(
        store
            .claim_effects(&b, 10, NOW, NOW + LEASE)
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
            .claim_effects(&b, 10, NOW + 1, NOW + LEASE)
            .await
            .expect("claim")
            .is_empty(),
        "a retrying effect still holds back the next one"
    );
    let again = store
        .claim_effects(&b, 10, NOW + 5, NOW + LEASE)
        .await
        .expect("claim");
    assert_eq!(again[0].idempotency_key, key("fx-1"));
    store
        .complete_effect(again[0].id, &b, NOW + 5)
        .await
        .expect("complete");
    let next = store
        .claim_effects(&b, 10, NOW + 5, NOW + LEASE)
        .await
        .expect("claim");
    assert_eq!(next[0].idempotency_key, key("fx-2"));
}
