//! One suite for the `Store` port, run against both adapters: every scenario below is a
//! function of the backend, instantiated once for SQLite and once for PostgreSQL by
//! `both_backends!` (test names read `sqlite::...` and `postgres::...`).

mod harness;
mod outbox;
mod scenarios;

use worldstore_adapters::store::Backend;

macro_rules! both_backends {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::$module::$name(super::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::$module::$name(super::Backend::Postgres).await
                }
            )*
        }
    };
}

both_backends!(
    scenarios::migrations_run_twice_are_harmless,
    scenarios::a_commit_writes_states_effects_and_audit_together_and_reads_back,
    scenarios::a_duplicate_inbound_message_writes_nothing,
    scenarios::a_stale_revision_is_a_conflict_and_writes_nothing,
    scenarios::profiles_are_encrypted_at_rest_and_deleting_removes_them,
    scenarios::two_settlements_racing_for_one_nonce_exactly_one_wins,
    scenarios::a_crash_mid_transaction_leaves_no_half_written_state,
    scenarios::corrupt_or_unknown_stored_state_is_reported_naming_the_row,
    scenarios::the_money_audit_log_is_append_only,
    scenarios::an_update_moves_the_lookup_columns_with_the_state,
    scenarios::the_latest_machine_of_a_user_is_the_last_changed_in_the_status_asked,
    outbox::n_workers_draining_the_outbox_execute_each_effect_once_in_key_order,
    outbox::transient_failures_are_retried_after_their_backoff,
    outbox::an_expired_lease_is_reclaimed_and_the_old_worker_loses_it,
    outbox::an_effect_waits_for_earlier_effects_of_its_ordering_key,
    outbox::workers_of_different_kinds_on_one_store_claim_only_their_own,
    outbox::completing_an_effect_claims_the_next_of_its_key_in_the_same_write,
    outbox::a_commit_can_finish_the_effect_whose_execution_made_it,
    outbox::a_claim_that_found_nothing_sees_what_becomes_due_later,
    outbox::a_commit_can_lease_the_effects_it_enqueues_to_a_worker,
);

/// Not a test of its own: the body of the crash test's child process, so it is ignored in
/// normal runs. The parent runs this binary again with `--ignored --exact crash_child` and
/// the environment below; the child commits and the fault hook ends the process in the
/// middle of the transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the crash test's child process; run by a_crash_mid_transaction_leaves_no_half_written_state"]
async fn crash_child() {
    let url = std::env::var(scenarios::CRASH_CHILD_URL_VAR)
        .expect("run only as the crash test's child process");
    scenarios::crash_child_commits_and_dies(&url).await;
}
