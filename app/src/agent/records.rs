//! The documents the agent keeps in the store: a user's conversation, each checkout, and
//! each outbox effect. Each wraps a domain machine with the little the driver needs beside
//! it (which checkout a "yes" answers, the merchant's order handle, when it was paid).

use serde::{Deserialize, Serialize};
use std::fmt;
use worldstore_domain::checkout::SpendingLimits;
use worldstore_domain::checkout::{self, Checkout};
use worldstore_domain::conversation::tools::Asin;
use worldstore_domain::conversation::{self, Conversation};
use worldstore_domain::money::UsdcAmount;
use worldstore_domain::ports::store::{
    Expected, Key, MachineIndex, MachineKind, MachineRecord, MachineWrite, Status, StoreError,
    StoredState,
};

pub const CONVERSATION_DOC: &str = "agent.conversation";
pub const CHECKOUT_DOC: &str = "agent.checkout";
pub const EFFECT_DOC: &str = "agent.effect";
const VERSION: u32 = 1;

/// A user's conversation: the machine plus the agent's pointers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConversationDoc {
    pub machine: Conversation,
    /// The checkout that "yes", "no" and the funding menu answer.
    pub active_checkout: Option<Key>,
    /// Checkouts started so far (numbers the next checkout's id).
    pub checkouts_started: u64,
    /// A product chosen before the profile could ship an order: bought once it can.
    pub awaiting_profile: Option<Asin>,
    /// Spending limits the user set for themselves (below the configured ones).
    #[serde(default)]
    pub limits: SpendingLimits,
    /// The checkout whose quote (and confirmation menu) the user was shown last.
    #[serde(default)]
    pub quoted_checkout: Option<Key>,
    /// The checkout a confirmation answers: the one quoted when the user said yes. A
    /// confirmation still queued when a newer quote arrives does not pay that newer quote.
    #[serde(default)]
    pub confirming: Option<Key>,
}

/// The merchant's bearer token for one order. Never formatted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderToken(String);

impl OrderToken {
    pub fn new(token: String) -> Self {
        Self(token)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OrderToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OrderToken(<redacted>)")
    }
}

/// The merchant order a checkout talks about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderHandle {
    pub order_id: Key,
    pub token: OrderToken,
}

/// One purchase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckoutDoc {
    pub user: Key,
    pub machine: Checkout,
    pub order: Option<OrderHandle>,
    /// The catalogue's price when the product was chosen: the quote must be this plus fee.
    pub catalog_price: Option<UsdcAmount>,
    /// When the payment went through (for the per-day limit).
    pub paid_at: Option<u64>,
    /// The merchant's latest stage already turned into an update.
    pub reported_stage: Option<String>,
}

/// An outbox entry of the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AgentEffect {
    Conversation {
        user: Key,
        effect: conversation::Effect,
    },
    Checkout {
        user: Key,
        checkout: Key,
        effect: checkout::Effect,
    },
}

impl AgentEffect {
    pub fn encode(&self) -> Result<StoredState, StoreError> {
        StoredState::encode(EFFECT_DOC, VERSION, self)
    }

    pub fn decode(state: &StoredState, id: &str) -> Result<Self, StoreError> {
        state.decode(EFFECT_DOC, VERSION..=VERSION, "outbox", id)
    }
}

fn status(text: &str) -> Result<Status, StoreError> {
    Status::parse(text).ok_or_else(|| StoreError::Rejected(format!("bad status {text}")))
}

impl ConversationDoc {
    pub fn decode(record: &MachineRecord) -> Result<Self, StoreError> {
        record.decode(CONVERSATION_DOC, VERSION..=VERSION)
    }

    pub fn write(&self, user: &Key, expected: Expected) -> Result<MachineWrite, StoreError> {
        Ok(MachineWrite {
            kind: MachineKind::Conversation,
            id: user.clone(),
            expected,
            index: MachineIndex {
                user: Some(user.clone()),
                order_id: None,
                status: status("open")?,
            },
            state: StoredState::encode(CONVERSATION_DOC, VERSION, self)?,
        })
    }
}

impl CheckoutDoc {
    pub fn decode(record: &MachineRecord) -> Result<Self, StoreError> {
        record.decode(CHECKOUT_DOC, VERSION..=VERSION)
    }

    pub fn write(&self, id: &Key, expected: Expected) -> Result<MachineWrite, StoreError> {
        Ok(MachineWrite {
            kind: MachineKind::Checkout,
            id: id.clone(),
            expected,
            index: MachineIndex {
                user: Some(self.user.clone()),
                order_id: self.order.as_ref().map(|o| o.order_id.clone()),
                status: status(self.machine.status())?,
            },
            state: StoredState::encode(CHECKOUT_DOC, VERSION, self)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_token_is_never_formatted() {
        let token = OrderToken::new("secret-bearer".into());
        assert!(!format!("{token:?}").contains("secret"));
        assert_eq!(serde_json::to_string(&token).unwrap(), "\"secret-bearer\"");
    }
}
