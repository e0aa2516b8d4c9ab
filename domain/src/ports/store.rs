//! The `Store` port: everything the product must not lose.
//!
//! ## Contract
//! - **Machines** (conversation, checkout, settlement) are stored as versioned JSON documents
//!   ([`StoredState`]) beside indexed lookup columns ([`MachineIndex`]: user, order id,
//!   status) and a row [`Revision`] for optimistic concurrency.
//! - **One transaction per input**: the driver loads a machine, handles an input, then hands
//!   the store one [`Commit`]: new machine states, the effects they produced (the outbox),
//!   money events (the audit log), EIP-3009 nonce reservations, the processed inbound
//!   message id and message-log lines. A commit is applied entirely or not at all.
//! - **Optimistic concurrency**: a write expecting revision `r` fails with
//!   [`Conflict::RevisionMoved`] when the stored revision is not `r`; nothing is written.
//! - **Nonces**: a reservation is unique per `(chain id, token, from, nonce)` (EIP-3009
//!   section "transferWithAuthorization": a nonce is usable once per authorizer and token);
//!   the loser of a race gets [`Conflict::NonceTaken`].
//! - **Inbound messages** are processed once: recording an id twice is
//!   [`Conflict::DuplicateInbound`].
//! - **Outbox**: see [`outbox`]. Workers claim effects with a lease; an effect is never handed
//!   out while an earlier effect with the same ordering key is unfinished.
//! - **Profiles** hold personal data: adapters encrypt them at rest, and deleting a profile
//!   removes it. Errors never carry personal data.
//! - **Corrupt rows** are reported as [`StoreError::Corrupt`] naming the table and row id,
//!   never as a panic.
//!
//! Time arrives as a parameter (`now`, unix seconds) wherever a rule depends on it.

mod error;
mod ids;
pub mod outbox;
mod records;

pub use error::{Conflict, StoreError};
pub use ids::{IdError, Key};
pub use outbox::{
    Backoff, ClaimedEffect, EffectClaim, EffectFailure, EffectId, FinishedEffect, NewEffect,
};
pub use records::{
    Direction, Expected, LoggedMessage, MachineIndex, MachineKind, MachineRecord, MachineWrite,
    MoneyEvent, MoneyEventKind, NonceReservation, Revision, Status, StoredState,
};

use crate::profile::Profile;
use std::future::Future;

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything written by handling one input, applied atomically by [`Store::commit`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Commit {
    /// The inbound message this commit answers; recorded so it is processed once.
    pub inbound: Option<Key>,
    /// Users this commit registers (a user already registered is left as is): a first
    /// contact registers its user in the commit that answers it, and saving a profile
    /// registers its user too.
    pub new_users: Vec<Key>,
    /// New or updated machine states.
    pub machines: Vec<MachineWrite>,
    /// Effects to execute after the commit (the outbox).
    pub effects: Vec<NewEffect>,
    /// EIP-3009 nonces this commit takes.
    pub nonces: Vec<NonceReservation>,
    /// Money events for the append-only audit log.
    pub money_events: Vec<MoneyEvent>,
    /// Lines for conversations' message logs (their text is personal data: encrypted).
    pub messages: Vec<LoggedMessage>,
    /// The claimed effect this commit is the last step of, if any: marked done in this
    /// transaction, with the next effect of its ordering key claimed
    /// ([`Committed::next_effect`]). [`Conflict::LeaseLost`], and nothing written, when the
    /// worker no longer holds it.
    pub finishes: Option<FinishedEffect>,
    /// Leases the effects this commit enqueues that are first of their ordering key to a
    /// worker ([`EffectClaim`], [`Committed::claimed`]).
    pub claim_first: Option<EffectClaim>,
}

/// What a successful commit did.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The revision each machine write now has, in the order of [`Commit::machines`].
    pub revisions: Vec<Revision>,
    /// Effects enqueued; an effect whose idempotency key was already in the outbox is not
    /// enqueued again (handlers are safe to repeat, the outbox does not duplicate).
    pub effects_enqueued: usize,
    /// With [`Commit::finishes`]: the next effect of the finished one's ordering key, now
    /// claimed by the same worker, when one was ready and of its kinds.
    pub next_effect: Option<ClaimedEffect>,
    /// With [`Commit::claim_first`]: the enqueued effects leased to its worker, in id order.
    pub claimed: Vec<ClaimedEffect>,
}

/// The persistence port. Implemented by the SQLite and PostgreSQL adapters.
pub trait Store: Send + Sync {
    /// Saves (replaces) a user's profile, registering the user if needed.
    fn save_profile(
        &self,
        user: &Key,
        profile: &Profile,
        now: u64,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The user's profile, if any.
    fn load_profile(&self, user: &Key)
    -> impl Future<Output = StoreResult<Option<Profile>>> + Send;

    /// Removes the user's profile; `true` if there was one.
    fn delete_profile(&self, user: &Key) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Applies a [`Commit`] atomically.
    fn commit(
        &self,
        commit: Commit,
        now: u64,
    ) -> impl Future<Output = StoreResult<Committed>> + Send;

    /// One machine by id.
    fn load_machine(
        &self,
        kind: MachineKind,
        id: &Key,
    ) -> impl Future<Output = StoreResult<Option<MachineRecord>>> + Send;

    /// The machines of a user, oldest first.
    fn machines_of_user(
        &self,
        kind: MachineKind,
        user: &Key,
    ) -> impl Future<Output = StoreResult<Vec<MachineRecord>>> + Send;

    /// The user's most recently changed machine, or, given `status`, the most recently
    /// changed one in that status. Reads the user's index entries newest first and stops at
    /// the first match, so no document is read but the one returned: what a lookup of the
    /// latest costs does not grow with the user's history the way
    /// [`Store::machines_of_user`] does.
    fn latest_machine_of_user(
        &self,
        kind: MachineKind,
        user: &Key,
        status: Option<&Status>,
    ) -> impl Future<Output = StoreResult<Option<MachineRecord>>> + Send;

    /// The machine holding an order id (a settlement, or the checkout that paid it).
    fn machine_by_order(
        &self,
        kind: MachineKind,
        order_id: &Key,
    ) -> impl Future<Output = StoreResult<Option<MachineRecord>>> + Send;

    /// Machines in a status (for example every pending settlement), oldest first.
    fn machines_in_status(
        &self,
        kind: MachineKind,
        status: &Status,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<MachineRecord>>> + Send;

    /// Whether an inbound message id has been processed.
    fn is_processed(&self, inbound: &Key) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Reserves one EIP-3009 nonce on its own (the same rule as in a [`Commit`]).
    fn reserve_nonce(
        &self,
        reservation: &NonceReservation,
        now: u64,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// A conversation's message log, oldest first, at most `limit` latest lines.
    fn message_log(
        &self,
        conversation: &Key,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<LoggedMessage>>> + Send;

    /// The audit log of an order, in the order events were written.
    fn money_events(
        &self,
        order_id: &Key,
    ) -> impl Future<Output = StoreResult<Vec<MoneyEvent>>> + Send;

    /// Claims up to `limit` ready effects of one of `kinds` (their [`StoredState::kind`])
    /// for `worker` until `lease_until`. Ready means: pending and due
    /// (`available_at <= now`), or claimed by a worker whose lease has expired; and no
    /// earlier effect with the same ordering key is unfinished, whatever its kind. Effects
    /// of other kinds belong to another role sharing the store: this call never leases
    /// them. An empty `kinds` claims nothing.
    fn claim_effects(
        &self,
        worker: &Key,
        kinds: &[&str],
        limit: u32,
        now: u64,
        lease_until: u64,
    ) -> impl Future<Output = StoreResult<Vec<ClaimedEffect>>> + Send;

    /// Marks a claimed effect done. [`Conflict::LeaseLost`] if `worker` no longer holds it.
    fn complete_effect(
        &self,
        id: EffectId,
        worker: &Key,
        now: u64,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Marks a claimed effect done, as [`Store::complete_effect`] does, and in the same
    /// transaction claims the effect that comes next for its ordering key, when that one is
    /// ready by the rule of [`Store::claim_effects`] and of one of `kinds`. A worker runs one
    /// key's effects back to back this way: one write per effect instead of a completion
    /// and a claim. `None` when the key has nothing more ready for `kinds` now.
    fn complete_effect_and_claim_next(
        &self,
        id: EffectId,
        worker: &Key,
        kinds: &[&str],
        now: u64,
        lease_until: u64,
    ) -> impl Future<Output = StoreResult<Option<ClaimedEffect>>> + Send;

    /// Records a failed attempt: a transient failure makes the effect ready again at
    /// `retry_at`; a permanent one parks it as dead (it no longer blocks its ordering key).
    fn fail_effect(
        &self,
        id: EffectId,
        worker: &Key,
        failure: EffectFailure,
        now: u64,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Number of effects not yet done or dead.
    fn unfinished_effects(&self) -> impl Future<Output = StoreResult<u64>> + Send;
}
