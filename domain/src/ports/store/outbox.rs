//! The outbox: effects written in the same transaction as the state that produced them,
//! executed afterwards by workers.
//!
//! | call | effect |
//! |---|---|
//! | `Commit.effects` | enqueue (an idempotency key already present is not enqueued again) |
//! | `claim_effects(worker, kinds, limit, now, lease_until)` | hand out ready effects of `kinds` with a lease |
//! | `complete_effect(id, worker)` | done; the next effect of its ordering key is released |
//! | `fail_effect(id, worker, Transient{retry_at})` | ready again at `retry_at` |
//! | `fail_effect(id, worker, Permanent)` | dead: kept for inspection, no longer blocks |
//! | `Commit.finishes` | the commit an effect's execution ends with also completes it and claims the next |
//! | `Commit.claim_first` | the commit also leases the effects it enqueues that are first of their key |
//!
//! Invariants: two workers never hold the same effect at once; an effect is handed out only
//! when every earlier effect with the same ordering key is done or dead (per-conversation
//! order); a worker that crashes loses its effects when the lease expires, and another
//! worker takes them (at-least-once: effect handlers use the idempotency key).
//!
//! Roles share one outbox: each worker names the effect kinds it executes (the agent
//! `agent.effect`, the merchant `settlement.effect`), and a claim never leases an effect of
//! another kind, so an agent and a merchant on one database never take each other's work.

use super::{Key, StoredState};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The outbox row id; increases in enqueue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EffectId(pub i64);

impl fmt::Display for EffectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// An effect to execute after the commit.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEffect {
    /// Unique per effect: the executor passes it on (for example as a Crossmint or
    /// facilitator idempotency key) so that repeating the effect is harmless.
    pub idempotency_key: Key,
    /// Effects with the same ordering key (a conversation id) run one at a time, in order.
    pub ordering_key: Key,
    pub effect: StoredState,
}

/// An effect handed to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedEffect {
    pub id: EffectId,
    pub idempotency_key: Key,
    pub ordering_key: Key,
    pub effect: StoredState,
    /// Attempts so far, this one included.
    pub attempts: u32,
    pub lease_until: u64,
}

/// A claimed effect whose execution ends with a [`super::Commit`]: that commit marks it
/// done and claims the next effect of its ordering key, as
/// [`super::Store::complete_effect_and_claim_next`] would in a write of its own. The state
/// the effect produced and its completion are then one atomic write: a crash leaves both
/// or neither, and a worker that lost the lease writes neither
/// ([`super::Conflict::LeaseLost`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedEffect {
    pub id: EffectId,
    /// The worker holding its lease, who also gets the next effect of its key when that
    /// one is ready and of `next.kinds` (none, with no kinds).
    pub next: EffectClaim,
}

/// A worker, the effect kinds it runs and how long its leases last: what a commit needs to
/// lease effects to it. [`super::Commit::claim_first`] asks a commit for the effects it
/// enqueues: for each ordering key the commit enqueues into, the key's first unfinished
/// effect is leased to `worker` when it is ready and of `kinds`
/// ([`super::Committed::claimed`]). The process that takes an input in can then run what
/// it caused without a claim of its own; an effect queued behind another of its key is left
/// to the usual order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectClaim {
    pub worker: Key,
    pub kinds: &'static [&'static str],
    /// Each lease runs this long from the commit.
    pub lease_seconds: u64,
}

/// How an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EffectFailure {
    /// Worth retrying at `retry_at` (unix seconds). `reason` must not contain personal data.
    Transient { retry_at: u64, reason: String },
    /// Will never succeed.
    Permanent { reason: String },
}

/// Exponential backoff with a cap: `base * 2^(attempt-1)`, at most `max`, and after
/// `max_attempts` the effect is given up (the caller reports a permanent failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_seconds: u64,
    pub max_seconds: u64,
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base_seconds: 2,
            max_seconds: 300,
            max_attempts: 12,
        }
    }
}

impl Backoff {
    /// When to retry after failed attempt number `attempts` (1-based) at `now`, or `None`
    /// when the attempts are used up.
    pub fn retry_at(&self, attempts: u32, now: u64) -> Option<u64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exponent = attempts.saturating_sub(1).min(63);
        let delay = self
            .base_seconds
            .saturating_mul(1u64 << exponent)
            .min(self.max_seconds);
        Some(now.saturating_add(delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_then_gives_up() {
        let backoff = Backoff {
            base_seconds: 2,
            max_seconds: 10,
            max_attempts: 5,
        };
        assert_eq!(backoff.retry_at(1, 100), Some(102));
        assert_eq!(backoff.retry_at(2, 100), Some(104));
        assert_eq!(backoff.retry_at(3, 100), Some(108));
        assert_eq!(backoff.retry_at(4, 100), Some(110));
        assert_eq!(backoff.retry_at(5, 100), None);
        assert_eq!(Backoff::default().retry_at(70, u64::MAX), None);
    }

    #[test]
    fn backoff_never_overflows() {
        let backoff = Backoff {
            base_seconds: u64::MAX,
            max_seconds: u64::MAX,
            max_attempts: u32::MAX,
        };
        assert_eq!(backoff.retry_at(200, u64::MAX), Some(u64::MAX));
    }
}
