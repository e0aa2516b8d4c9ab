//! Scenarios about machines, profiles, nonces, crashes and corrupt rows.

use crate::harness::{self, count, exec, fetch_bytes, fresh, key};
use alloy_primitives::{Address, B256};
use std::sync::Arc;
use tokio::sync::Barrier;
use worldstore_adapters::store::{Backend, DataKey, FaultPoint, SqlStore};
use worldstore_domain::UsdcAmount;
use worldstore_domain::eip3009::Nonce;
use worldstore_domain::pii::Pii;
use worldstore_domain::ports::store::{
    Commit, Conflict, Direction, Expected, LoggedMessage, MachineIndex, MachineKind, MachineWrite,
    MoneyEvent, MoneyEventKind, NewEffect, NonceReservation, Revision, Status, Store, StoreError,
    StoredState,
};
use worldstore_domain::profile::{AddressLine, City, Email, PersonName, Profile, UsState, ZipCode};
use worldstore_domain::x402::NonceKey;

pub const CRASH_CHILD_URL_VAR: &str = "WORLDSTORE_CRASH_CHILD_URL";
const CRASH_EXIT_CODE: i32 = 86;
const NOW: u64 = 1_700_000_000;

fn state(kind: &str, step: u64) -> StoredState {
    StoredState {
        kind: kind.into(),
        version: 1,
        body: serde_json::value::to_raw_value(&serde_json::json!({ "step": step })).unwrap(),
    }
}

fn write(kind: MachineKind, id: &str, expected: Expected, status: &str) -> MachineWrite {
    MachineWrite {
        kind,
        id: key(id),
        expected,
        index: MachineIndex {
            user: Some(key("user-1")),
            order_id: (kind != MachineKind::Conversation).then(|| key(&format!("order-{id}"))),
            status: Status::parse(status).expect("status"),
        },
        state: state(&kind.to_string(), 1),
    }
}

pub fn effect(idempotency: &str, ordering: &str) -> NewEffect {
    effect_of_kind(idempotency, ordering, "effect.reply")
}

pub fn effect_of_kind(idempotency: &str, ordering: &str, kind: &str) -> NewEffect {
    NewEffect {
        idempotency_key: key(idempotency),
        ordering_key: key(ordering),
        effect: StoredState {
            kind: kind.into(),
            version: 1,
            body: serde_json::value::to_raw_value(&serde_json::json!({ "text": idempotency }))
                .unwrap(),
        },
    }
}

fn nonce_key(byte: u8) -> NonceKey {
    NonceKey {
        chain_id: 84532,
        token: Address::repeat_byte(0x03),
        from: Address::repeat_byte(0x0a),
        nonce: Nonce::new([byte; 32]),
    }
}

fn pat() -> Profile {
    Profile {
        name: Some(PersonName::parse("Pat Lee").expect("name")),
        email: Some(Email::parse("pat@example.com").expect("email")),
        line1: Some(AddressLine::parse("1 Main St").expect("line")),
        line2: None,
        city: Some(City::parse("Seattle").expect("city")),
        state: Some(UsState::parse("WA").expect("state")),
        postal_code: Some(ZipCode::parse("98101").expect("zip")),
    }
}

pub async fn migrations_run_twice_are_harmless(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    assert_eq!(db.store.migrate().await.expect("second run"), 0);
    let again = SqlStore::open(&db.url, &harness::data_key())
        .await
        .expect("reopen");
    assert_eq!(again.migrate().await.expect("third run"), 0);
    again.close().await;
}

pub async fn a_commit_writes_states_effects_and_audit_together_and_reads_back(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let store = &db.store;
    let tx_hash = B256::repeat_byte(0x42);
    let commit = Commit {
        inbound: Some(key("msg-1")),
        new_users: vec![key("user-1")],
        machines: vec![
            write(
                MachineKind::Conversation,
                "conv-1",
                Expected::New,
                "shopping",
            ),
            write(
                MachineKind::Checkout,
                "co-1",
                Expected::New,
                "awaiting_confirmation",
            ),
        ],
        effects: vec![effect("fx-1", "conv-1"), effect("fx-2", "conv-1")],
        nonces: vec![NonceReservation {
            key: nonce_key(1),
            order_id: key("order-co-1"),
        }],
        money_events: vec![MoneyEvent {
            kind: MoneyEventKind::Settled,
            order_id: key("order-co-1"),
            amount: UsdcAmount::from_atomic(340_282_366_920_938_463_463_374_607_431_768_211_455),
            tx_hash: Some(tx_hash),
            at: NOW,
        }],
        messages: vec![LoggedMessage {
            conversation: key("conv-1"),
            direction: Direction::Inbound,
            at: NOW,
            text: Pii::new("ship it to 1 Main St".into()),
        }],
        finishes: None,
        claim_first: None,
    };
    let committed = store.commit(commit, NOW).await.expect("commit");
    assert_eq!(committed.revisions, vec![Revision(1), Revision(1)]);
    assert_eq!(committed.effects_enqueued, 2);
    assert_eq!(count(&db, "users").await, 1);

    assert!(store.is_processed(&key("msg-1")).await.expect("read"));
    assert!(!store.is_processed(&key("msg-2")).await.expect("read"));
    let checkout = store
        .machine_by_order(MachineKind::Checkout, &key("order-co-1"))
        .await
        .expect("read")
        .expect("found by order id");
    assert_eq!(checkout.id, key("co-1"));
    assert_eq!(checkout.updated_at, NOW);
    let body: serde_json::Value = checkout.decode("checkout", 1..=1).expect("decodes");
    assert_eq!(body["step"], 1);
    let mine = store
        .machines_of_user(MachineKind::Conversation, &key("user-1"))
        .await
        .expect("read");
    assert_eq!(mine.len(), 1);
    let waiting = store
        .machines_in_status(
            MachineKind::Checkout,
            &Status::parse("awaiting_confirmation").expect("s"),
            10,
        )
        .await
        .expect("read");
    assert_eq!(waiting.len(), 1);
    let events = store.money_events(&key("order-co-1")).await.expect("read");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].amount.atomic(), u128::MAX);
    assert_eq!(events[0].tx_hash, Some(tx_hash));
    let log = store.message_log(&key("conv-1"), 10).await.expect("read");
    assert_eq!(log[0].text.expose(), "ship it to 1 Main St");
    assert_eq!(store.unfinished_effects().await.expect("read"), 2);

    // The same effect enqueued again (a repeated handler) is not duplicated, nor is a user
    // registered again.
    let again = Commit {
        effects: vec![effect("fx-1", "conv-1")],
        new_users: vec![key("user-1")],
        ..Commit::default()
    };
    assert_eq!(
        store
            .commit(again, NOW)
            .await
            .expect("commit")
            .effects_enqueued,
        0
    );
    assert_eq!(count(&db, "users").await, 1);
}

pub async fn a_duplicate_inbound_message_writes_nothing(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let first = Commit {
        inbound: Some(key("msg-1")),
        ..Commit::default()
    };
    db.store.commit(first, NOW).await.expect("first");
    let replay = Commit {
        inbound: Some(key("msg-1")),
        machines: vec![write(
            MachineKind::Conversation,
            "conv-1",
            Expected::New,
            "menu",
        )],
        effects: vec![effect("fx-1", "conv-1")],
        new_users: vec![key("user-1")],
        ..Commit::default()
    };
    let err = db.store.commit(replay, NOW).await.unwrap_err();
    assert_eq!(
        err,
        StoreError::Conflict(Conflict::DuplicateInbound(key("msg-1")))
    );
    assert_eq!(count(&db, "conversations").await, 0);
    assert_eq!(count(&db, "users").await, 0);
    assert_eq!(db.store.unfinished_effects().await.expect("read"), 0);
}

pub async fn a_stale_revision_is_a_conflict_and_writes_nothing(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let store = &db.store;
    let create = Commit {
        machines: vec![write(
            MachineKind::Settlement,
            "s-1",
            Expected::New,
            "requirements_issued",
        )],
        ..Commit::default()
    };
    store.commit(create.clone(), NOW).await.expect("create");
    assert!(matches!(
        store.commit(create, NOW).await,
        Err(StoreError::Conflict(Conflict::AlreadyExists { .. }))
    ));
    let record = store
        .load_machine(MachineKind::Settlement, &key("s-1"))
        .await
        .expect("read")
        .expect("exists");
    let mut index = record.index.clone();
    index.status = Status::parse("settling").expect("s");
    let update = Commit {
        machines: vec![record.update(index.clone(), state("settlement", 2))],
        effects: vec![effect("fx-settle", "s-1")],
        ..Commit::default()
    };
    let done = store
        .commit(update.clone(), NOW + 1)
        .await
        .expect("first update wins");
    assert_eq!(done.revisions, vec![Revision(2)]);
    let stale = Commit {
        effects: vec![effect("fx-stale", "s-1")],
        ..update
    };
    let err = store.commit(stale, NOW + 2).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict(Conflict::RevisionMoved { expected: 1, .. })
        ),
        "{err}"
    );
    assert_eq!(
        store.unfinished_effects().await.expect("read"),
        1,
        "the stale commit's effect is not written"
    );
    let other = Commit {
        machines: vec![MachineWrite {
            id: key("s-2"),
            ..write(MachineKind::Settlement, "s-1", Expected::New, "x")
        }],
        ..Commit::default()
    };
    assert!(matches!(
        store.commit(other, NOW).await,
        Err(StoreError::Conflict(Conflict::OrderTaken { .. }))
    ));
}

pub async fn profiles_are_encrypted_at_rest_and_deleting_removes_them(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let store = &db.store;
    let user = key("inbox-pat");
    store.save_profile(&user, &pat(), NOW).await.expect("save");
    assert_eq!(store.load_profile(&user).await.expect("load"), Some(pat()));
    let raw = fetch_bytes(&db, "SELECT sealed FROM profiles").await;
    assert_eq!(raw.len(), 1);
    for plain in ["Pat Lee", "pat@example.com", "Main St", "Seattle", "98101"] {
        assert!(
            !raw[0].windows(plain.len()).any(|w| w == plain.as_bytes()),
            "{plain} is stored in clear"
        );
    }

    let wrong = SqlStore::connect(&db.url, &DataKey::from_bytes([9; 32]))
        .await
        .expect("connect");
    let err = wrong.load_profile(&user).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot decrypt row inbox-pat in table profiles: wrong encryption key or tampered data"
    );
    wrong.close().await;

    assert!(store.delete_profile(&user).await.expect("delete"));
    assert_eq!(store.load_profile(&user).await.expect("load"), None);
    assert_eq!(count(&db, "profiles").await, 0);
    assert!(!store.delete_profile(&user).await.expect("delete twice"));
}

pub async fn two_settlements_racing_for_one_nonce_exactly_one_wins(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    const RACERS: usize = 8;
    let barrier = Arc::new(Barrier::new(RACERS));
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = db.store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let id = format!("settlement-{i}");
                let commit = Commit {
                    machines: vec![write(
                        MachineKind::Settlement,
                        &id,
                        Expected::New,
                        "settling",
                    )],
                    nonces: vec![NonceReservation {
                        key: nonce_key(7),
                        order_id: key(&format!("order-{id}")),
                    }],
                    effects: vec![effect(&format!("submit-{id}"), &id)],
                    ..Commit::default()
                };
                barrier.wait().await;
                store.commit(commit, NOW).await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict(Conflict::NonceTaken(k))) => assert_eq!(k, nonce_key(7)),
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    eprintln!(
        "{RACERS} racers for one nonce on {backend:?}: {wins} won in {:?}",
        started.elapsed()
    );
    assert_eq!(wins, 1);
    assert_eq!(
        count(&db, "settlements").await,
        1,
        "losers wrote no settlement"
    );
    assert_eq!(count(&db, "nonce_reservations").await, 1);
    assert_eq!(db.store.unfinished_effects().await.expect("read"), 1);
    assert!(matches!(
        db.store
            .reserve_nonce(
                &NonceReservation {
                    key: nonce_key(7),
                    order_id: key("o")
                },
                NOW
            )
            .await,
        Err(StoreError::Conflict(Conflict::NonceTaken(_)))
    ));
}

fn crash_commit() -> Commit {
    Commit {
        inbound: Some(key("msg-crash")),
        machines: vec![write(
            MachineKind::Settlement,
            "s-crash",
            Expected::New,
            "settling",
        )],
        nonces: vec![NonceReservation {
            key: nonce_key(9),
            order_id: key("order-s-crash"),
        }],
        effects: vec![effect("fx-crash", "s-crash")],
        ..Commit::default()
    }
}

/// Runs in the child process: commits, and the hook exits once machines and effects are
/// written but before the commit, dropping the connection mid-transaction.
pub async fn crash_child_commits_and_dies(url: &str) {
    let store = SqlStore::connect(url, &harness::data_key())
        .await
        .expect("child connects")
        .with_fault_hook(Arc::new(|point| {
            if point == FaultPoint::EffectsWritten {
                std::process::exit(CRASH_EXIT_CODE);
            }
        }));
    let _ = store.commit(crash_commit(), NOW).await;
    panic!("the fault hook should have ended the process");
}

pub async fn a_crash_mid_transaction_leaves_no_half_written_state(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let exe = std::env::current_exe().expect("test binary");
    let status = tokio::process::Command::new(exe)
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD_URL_VAR, &db.url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .expect("run the child");
    assert_eq!(
        status.code(),
        Some(CRASH_EXIT_CODE),
        "the child died mid-transaction"
    );
    let store = &db.store;
    assert!(!store.is_processed(&key("msg-crash")).await.expect("read"));
    assert_eq!(
        store
            .load_machine(MachineKind::Settlement, &key("s-crash"))
            .await
            .expect("read"),
        None
    );
    assert_eq!(count(&db, "nonce_reservations").await, 0);
    assert_eq!(store.unfinished_effects().await.expect("read"), 0);
    // Nothing is left locked: the same input commits now.
    store
        .commit(crash_commit(), NOW)
        .await
        .expect("retry after the crash");
    assert_eq!(store.unfinished_effects().await.expect("read"), 1);
}

pub async fn corrupt_or_unknown_stored_state_is_reported_naming_the_row(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let store = &db.store;
    let create = Commit {
        machines: vec![
            write(MachineKind::Settlement, "s-1", Expected::New, "settled"),
            write(MachineKind::Settlement, "s-2", Expected::New, "settled"),
        ],
        ..Commit::default()
    };
    store.commit(create, NOW).await.expect("create");
    exec(&db, "UPDATE settlements SET revision = -1 WHERE id = 's-1'")
        .await
        .expect("corrupt");
    let err = store
        .load_machine(MachineKind::Settlement, &key("s-1"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt row s-1 in table settlements: revision is negative (-1)"
    );
    let err = store
        .machines_in_status(
            MachineKind::Settlement,
            &Status::parse("settled").expect("s"),
            10,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "settlements",
                ..
            }
        ),
        "{err}"
    );

    exec(
        &db,
        "UPDATE settlements SET state_kind = 'mystery', state_version = 7 WHERE id = 's-2'",
    )
    .await
    .expect("corrupt");
    let record = store
        .load_machine(MachineKind::Settlement, &key("s-2"))
        .await
        .expect("row reads")
        .expect("row");
    let err = record
        .decode::<serde_json::Value>("settlement", 1..=1)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt row s-2 in table settlements: unknown state kind \"mystery\" (expected \"settlement\")"
    );

    exec(
        &db,
        "UPDATE settlements SET status = 'NOT A STATUS' WHERE id = 's-2'",
    )
    .await
    .expect("corrupt");
    let err = store
        .load_machine(MachineKind::Settlement, &key("s-2"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt row s-2 in table settlements: status is not a status word"
    );

    exec(&db, "INSERT INTO money_events (kind, order_id, amount, at) VALUES ('settled', 'o-9', '12.5', 1)")
        .await
        .expect("insert");
    let err = store.money_events(&key("o-9")).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("in table money_events: amount is not an integer"),
        "{err}"
    );

    exec(&db, "INSERT INTO users (id, created_at) VALUES ('u-9', 1)")
        .await
        .expect("insert");
    let garbage = match backend {
        Backend::Sqlite => {
            "INSERT INTO profiles (user_id, sealed, updated_at) VALUES ('u-9', X'0102', 1)"
        }
        Backend::Postgres => {
            "INSERT INTO profiles (user_id, sealed, updated_at) VALUES ('u-9', '\\x0102', 1)"
        }
    };
    exec(&db, garbage).await.expect("insert");
    let err = store.load_profile(&key("u-9")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt row u-9 in table profiles: sealed value is truncated"
    );

    if backend == Backend::Sqlite {
        exec(
            &db,
            "UPDATE settlements SET status = 'settled', state = '{not json' WHERE id = 's-2'",
        )
        .await
        .expect("corrupt");
        let err = store
            .load_machine(MachineKind::Settlement, &key("s-2"))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("corrupt row s-2 in table settlements: state is not JSON"),
            "{err}"
        );
    }
}

pub async fn the_money_audit_log_is_append_only(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let commit = Commit {
        money_events: vec![MoneyEvent {
            kind: MoneyEventKind::QuoteIssued,
            order_id: key("o-1"),
            amount: UsdcAmount::from_usdc(12),
            tx_hash: None,
            at: NOW,
        }],
        ..Commit::default()
    };
    db.store.commit(commit, NOW).await.expect("append");
    assert!(
        exec(&db, "UPDATE money_events SET amount = '1'")
            .await
            .is_err()
    );
    assert!(exec(&db, "DELETE FROM money_events").await.is_err());
    let events = db.store.money_events(&key("o-1")).await.expect("read");
    assert_eq!(events[0].amount, UsdcAmount::from_usdc(12));
}

/// A machine's lookup columns follow its updates: an order id given later is found, a user
/// and status changed with the state are read back, an update that would take another
/// machine's order id is refused and writes nothing, and an update that leaves the lookup
/// columns alone keeps them.
pub async fn an_update_moves_the_lookup_columns_with_the_state(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let store = &db.store;
    let mut first = write(MachineKind::Checkout, "co-a", Expected::New, "quoted");
    first.index.order_id = None;
    let second = write(MachineKind::Checkout, "co-b", Expected::New, "quoted");
    let commit = Commit {
        machines: vec![first, second],
        ..Commit::default()
    };
    store.commit(commit, NOW).await.expect("create both");
    let load = |id: &'static str| async move {
        store
            .load_machine(MachineKind::Checkout, &key(id))
            .await
            .expect("read")
            .expect("exists")
    };

    // co-a gets an order id, another user and a new status with its next state.
    let record = load("co-a").await;
    let moved = MachineIndex {
        user: Some(key("user-2")),
        order_id: Some(key("order-co-a")),
        status: Status::parse("paid").expect("s"),
    };
    let update = Commit {
        machines: vec![record.update(moved.clone(), state("checkout", 2))],
        ..Commit::default()
    };
    store.commit(update, NOW + 1).await.expect("update");
    let found = store
        .machine_by_order(MachineKind::Checkout, &key("order-co-a"))
        .await
        .expect("read")
        .expect("found by its new order id");
    assert_eq!(found.id, key("co-a"));
    assert_eq!(found.index, moved);
    assert_eq!(found.revision, Revision(2));
    let of_user = store
        .machines_of_user(MachineKind::Checkout, &key("user-2"))
        .await
        .expect("read");
    assert_eq!(of_user.len(), 1);

    // Taking co-b's order id is refused, and nothing of that commit is written.
    let record = load("co-a").await;
    let taken = MachineIndex {
        order_id: Some(key("order-co-b")),
        ..moved.clone()
    };
    let refused = Commit {
        machines: vec![record.update(taken, state("checkout", 3))],
        effects: vec![effect("fx-refused", "co-a")],
        ..Commit::default()
    };
    assert!(matches!(
        store.commit(refused, NOW + 2).await,
        Err(StoreError::Conflict(Conflict::OrderTaken { .. }))
    ));
    let unchanged = load("co-a").await;
    assert_eq!(unchanged.revision, Revision(2));
    assert_eq!(unchanged.index, moved);
    assert_eq!(store.unfinished_effects().await.expect("read"), 0);

    // A state change that keeps the lookup columns keeps them.
    let update = Commit {
        machines: vec![unchanged.update(moved.clone(), state("checkout", 4))],
        ..Commit::default()
    };
    store.commit(update, NOW + 3).await.expect("update");
    let last = load("co-a").await;
    assert_eq!(last.revision, Revision(3));
    assert_eq!(last.index, moved);
    let body: serde_json::Value = last.decode("checkout", 1..=1).expect("decodes");
    assert_eq!(body["step"], 4);
}

/// The latest machine of a user: the most recently changed one, or the most recently
/// changed one in a status, whatever the order the machines were made in; another user's
/// machines are never it, and a user with none in the status has none.
pub async fn the_latest_machine_of_a_user_is_the_last_changed_in_the_status_asked(
    backend: Backend,
) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let store = &db.store;
    let latest = |user: &'static str, status: Option<&'static str>| async move {
        let status = status.map(|s| Status::parse(s).expect("status"));
        store
            .latest_machine_of_user(MachineKind::Settlement, &key(user), status.as_ref())
            .await
            .expect("read")
            .map(|record| record.id.to_string())
    };
    assert_eq!(latest("user-1", None).await, None);

    // Made in the order a, b, c, at times 1, 2, 3: c is the latest, b the latest awaiting.
    for (i, (id, status)) in [("st-a", "awaiting"), ("st-b", "awaiting"), ("st-c", "paid")]
        .into_iter()
        .enumerate()
    {
        let commit = Commit {
            machines: vec![write(MachineKind::Settlement, id, Expected::New, status)],
            ..Commit::default()
        };
        store.commit(commit, NOW + i as u64).await.expect("create");
    }
    let mut other = write(
        MachineKind::Settlement,
        "st-other",
        Expected::New,
        "awaiting",
    );
    other.index.user = Some(key("user-2"));
    let commit = Commit {
        machines: vec![other],
        ..Commit::default()
    };
    store
        .commit(commit, NOW + 10)
        .await
        .expect("another user's");
    assert_eq!(latest("user-1", None).await.as_deref(), Some("st-c"));
    assert_eq!(
        latest("user-1", Some("awaiting")).await.as_deref(),
        Some("st-b")
    );
    assert_eq!(latest("user-1", Some("refunded")).await, None);

    // The oldest, changed last, becomes the latest; then it leaves the status, and the
    // latest awaiting is b again.
    let change_a = |status: &'static str, step: u64, at: u64| async move {
        let record = store
            .load_machine(MachineKind::Settlement, &key("st-a"))
            .await
            .expect("read")
            .expect("exists");
        let mut index = record.index.clone();
        index.status = Status::parse(status).expect("status");
        let update = Commit {
            machines: vec![record.update(index, state("settlement", step))],
            ..Commit::default()
        };
        store.commit(update, at).await.expect("update a");
    };
    change_a("awaiting", 2, NOW + 20).await;
    assert_eq!(latest("user-1", None).await.as_deref(), Some("st-a"));
    assert_eq!(
        latest("user-1", Some("awaiting")).await.as_deref(),
        Some("st-a")
    );
    change_a("paid", 3, NOW + 30).await;
    assert_eq!(latest("user-1", None).await.as_deref(), Some("st-a"));
    assert_eq!(
        latest("user-1", Some("awaiting")).await.as_deref(),
        Some("st-b")
    );
    assert_eq!(
        latest("user-2", Some("awaiting")).await.as_deref(),
        Some("st-other")
    );
}
