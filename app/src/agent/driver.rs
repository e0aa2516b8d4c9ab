//! Load, handle, commit: the one path by which any input changes a machine.

use super::records::{AgentEffect, CheckoutDoc, ConversationDoc};
use super::{Agent, AgentError, AgentPorts, Received};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use worldstore_domain::checkout::{self, Checkout, ProductChoice};
use worldstore_domain::conversation::tools::Asin;
use worldstore_domain::conversation::{self, Inbound, InboundContent, Presentation};
use worldstore_domain::money::UsdcAmount;
use worldstore_domain::pii::Pii;
use worldstore_domain::ports::brain::HistoryItem;
use worldstore_domain::ports::catalog::{self, Catalog};
use worldstore_domain::ports::store::{
    Commit, Conflict, Direction, Expected, Key, LoggedMessage, MachineKind, NewEffect, Store,
    StoreError,
};

/// Lost races tolerated for one input before giving up.
const MAX_RACES: usize = 8;
/// History lines read back for the brain.
const HISTORY_LINES: u32 = 60;

/// One line of a conversation's log: a history item for the brain, or the point where
/// `/clear` forgot everything before it.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum LogLine {
    Item(HistoryItem),
    Clear,
}

/// What one conversation step wants written besides the machine.
#[derive(Default)]
pub(crate) struct Staged {
    pub effects: Vec<conversation::Effect>,
    log: Vec<LogLine>,
    pub new_checkout: Option<(Key, CheckoutDoc, Vec<checkout::Effect>)>,
}

impl Staged {
    pub fn log_item(&mut self, item: HistoryItem) {
        self.log.push(LogLine::Item(item));
    }

    pub fn log_clear(&mut self) {
        self.log.push(LogLine::Clear);
    }

    /// Lines for the brain's history that an effect implies (the user's text, tool
    /// results), written with the effect so the brain sees them when it runs.
    fn log_effect(&mut self, effect: &conversation::Effect) {
        if let conversation::Effect::Remember { tool_results } = effect {
            self.log_item(HistoryItem::ToolResults(tool_results.clone()));
        }
        if let conversation::Effect::AskBrain {
            user_text,
            tool_results,
            ..
        } = effect
        {
            if let Some(text) = user_text {
                self.log_item(HistoryItem::User(text.clone()));
            }
            if !tool_results.is_empty() {
                self.log_item(HistoryItem::ToolResults(tool_results.clone()));
            }
        }
    }
}

pub(crate) fn key(text: &str) -> Result<Key, AgentError> {
    Key::parse(text).map_err(|e| AgentError::Id(format!("{e}")))
}

fn ordering_key(user: &Key) -> Result<Key, AgentError> {
    key(&format!("user:{user}"))
}

fn raced(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Conflict(Conflict::RevisionMoved { .. } | Conflict::AlreadyExists { .. })
    )
}

impl<P: AgentPorts> Agent<P> {
    /// An inbound message from `user` (the channel's sender), processed once per id.
    pub async fn receive(
        &self,
        user: &Key,
        message_id: &str,
        content: InboundContent,
    ) -> Result<Received, AgentError> {
        let id = key(message_id)?;
        let inbound_key = key(&format!("in:{user}:{message_id}"))?;
        let done = self
            .with_conversation(user, Some(inbound_key), |doc, staged, now| {
                let effects = doc
                    .machine
                    .handle(
                        now,
                        conversation::Input::Inbound(Inbound {
                            id: id.clone(),
                            content: content.clone(),
                        }),
                    )
                    .map_err(|e| AgentError::Rejected(e.to_string()))?;
                if effects.contains(&conversation::Effect::ConfirmPurchase) {
                    doc.confirming = doc.quoted_checkout.clone();
                }
                staged.effects = effects;
                Ok(())
            })
            .await?;
        Ok(match done {
            Some(()) => Received::Processed,
            None => Received::Duplicate,
        })
    }

    /// Loads `user`'s conversation, runs `step`, and commits what it staged. Returns
    /// `None` when `inbound` was already processed.
    pub(crate) async fn with_conversation<T>(
        &self,
        user: &Key,
        inbound: Option<Key>,
        mut step: impl FnMut(&mut ConversationDoc, &mut Staged, u64) -> Result<T, AgentError>,
    ) -> Result<Option<T>, AgentError> {
        let store = &self.inner.store;
        for _ in 0..MAX_RACES {
            let now = self.now();
            let record = store.load_machine(MachineKind::Conversation, user).await?;
            let (mut doc, expected) = match &record {
                Some(r) => (ConversationDoc::decode(r)?, Expected::At(r.revision)),
                None => (ConversationDoc::default(), Expected::New),
            };
            let mut staged = Staged::default();
            let out = step(&mut doc, &mut staged, now)?;
            for effect in &staged.effects.clone() {
                staged.log_effect(effect);
            }
            let revision = match expected {
                Expected::New => 1,
                Expected::At(r) => r.0 + 1,
            };
            let mut commit = Commit {
                inbound: inbound.clone(),
                machines: vec![doc.write(user, expected)?],
                // First contact: the user's row exists from their first conversation on.
                new_users: match expected {
                    Expected::New => vec![user.clone()],
                    Expected::At(_) => Vec::new(),
                },
                ..Commit::default()
            };
            // `Remember` is written to the history above; nothing is left to run.
            let runnable = staged
                .effects
                .iter()
                .filter(|e| !matches!(e, conversation::Effect::Remember { .. }));
            for (i, effect) in runnable.enumerate() {
                commit.effects.push(NewEffect {
                    idempotency_key: key(&format!("conv:{user}:{revision}:{i}"))?,
                    ordering_key: ordering_key(user)?,
                    effect: AgentEffect::Conversation {
                        user: user.clone(),
                        effect: effect.clone(),
                    }
                    .encode()?,
                });
            }
            if let Some((id, checkout, effects)) = &staged.new_checkout {
                commit.machines.push(checkout.write(id, Expected::New)?);
                self.stage_checkout_effects(&mut commit, user, id, 1, effects)?;
            }
            for line in &staged.log {
                let text = serde_json::to_string(line)
                    .map_err(|e| AgentError::Port(format!("history line: {e}")))?;
                let direction = match line {
                    LogLine::Item(HistoryItem::User(_)) => Direction::Inbound,
                    _ => Direction::Outbound,
                };
                commit.messages.push(LoggedMessage {
                    conversation: user.clone(),
                    direction,
                    at: now,
                    text: Pii::new(text),
                });
            }
            match self.commit(commit, now).await {
                Ok(()) => return Ok(Some(out)),
                Err(StoreError::Conflict(Conflict::DuplicateInbound(_))) => return Ok(None),
                Err(e) if raced(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AgentError::Contended(format!("conversation {user}")))
    }

    /// Commits what an input staged and wakes the outbox worker. When the effect running
    /// on this task said this commit is its last step ([`crate::outbox::last_write_follows`]),
    /// the commit also completes it and claims its key's next effect.
    ///
    /// A commit made outside any effect's execution (an inbound message, a watcher's
    /// finding) leases the effects it enqueues that are first of their key to this agent's
    /// worker, once it has one, and hands them over: the worker runs them without a claim.
    async fn commit(&self, mut commit: Commit, now: u64) -> Result<(), StoreError> {
        commit.finishes = crate::outbox::finishing();
        let finishing = commit.finishes.is_some();
        if !crate::outbox::running_effect()
            && !commit.effects.is_empty()
            && self.inner.worker_attached.load(Ordering::Relaxed)
        {
            commit.claim_first = Some(self.inner.config.worker.claim::<Self>());
        }
        let committed = self.inner.store.commit(commit, now).await?;
        if finishing {
            crate::outbox::finished(committed.next_effect);
        }
        self.inner.handoff.give(committed.claimed);
        self.inner.outbox_wake.notify_one();
        Ok(())
    }

    fn stage_checkout_effects(
        &self,
        commit: &mut Commit,
        user: &Key,
        checkout: &Key,
        revision: u64,
        effects: &[checkout::Effect],
    ) -> Result<(), AgentError> {
        for (i, effect) in effects.iter().enumerate() {
            commit.effects.push(NewEffect {
                idempotency_key: key(&format!("co:{checkout}:{revision}:{i}"))?,
                ordering_key: ordering_key(user)?,
                effect: AgentEffect::Checkout {
                    user: user.clone(),
                    checkout: checkout.clone(),
                    effect: effect.clone(),
                }
                .encode()?,
            });
        }
        Ok(())
    }

    /// Loads checkout `id`, runs `step` (which returns the checkout's effects), commits.
    /// `None` when there is no such checkout.
    pub(crate) async fn with_checkout(
        &self,
        id: &Key,
        mut step: impl FnMut(&mut CheckoutDoc, u64) -> Result<Vec<checkout::Effect>, AgentError>,
    ) -> Result<Option<Vec<checkout::Effect>>, AgentError> {
        let store = &self.inner.store;
        for _ in 0..MAX_RACES {
            let now = self.now();
            let Some(record) = store.load_machine(MachineKind::Checkout, id).await? else {
                return Ok(None);
            };
            let mut doc = CheckoutDoc::decode(&record)?;
            let effects = step(&mut doc, now)?;
            let mut commit = Commit {
                machines: vec![doc.write(id, Expected::At(record.revision))?],
                ..Commit::default()
            };
            let user = doc.user.clone();
            self.stage_checkout_effects(&mut commit, &user, id, record.revision.0 + 1, &effects)?;
            match self.commit(commit, now).await {
                Ok(()) => return Ok(Some(effects)),
                Err(e) if raced(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AgentError::Contended(format!("checkout {id}")))
    }

    /// Feeds `input` into checkout `id`. A rejected input (a stale answer, an input that
    /// does not apply in the current state) changes nothing and is reported as `false`.
    pub(crate) async fn checkout_input(
        &self,
        id: &Key,
        input: checkout::Input,
        on_success: impl Fn(&mut CheckoutDoc, u64),
    ) -> Result<bool, AgentError> {
        let outcome = self
            .with_checkout(id, |doc, now| {
                let effects = doc
                    .machine
                    .handle(now, input.clone())
                    .map_err(|e| AgentError::Rejected(e.to_string()))?;
                on_success(doc, now);
                Ok(effects)
            })
            .await;
        match outcome {
            Ok(found) => Ok(found.is_some()),
            Err(AgentError::Rejected(why)) => {
                tracing::info!(checkout = %id, %why, "checkout input ignored");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Feeds a conversation input that answers an effect; a stale answer is ignored.
    pub(crate) async fn conversation_input(
        &self,
        user: &Key,
        input: conversation::Input,
        log: Vec<HistoryItem>,
    ) -> Result<(), AgentError> {
        let outcome = self
            .with_conversation(user, None, |doc, staged, now| {
                staged.effects = doc
                    .machine
                    .handle(now, input.clone())
                    .map_err(|e| AgentError::Rejected(e.to_string()))?;
                for item in &log {
                    staged.log_item(item.clone());
                }
                Ok(())
            })
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(AgentError::Rejected(why)) => {
                tracing::info!(%user, %why, "conversation input ignored");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Shows `presentations` to `user`, in order, in one commit.
    pub(crate) async fn present(
        &self,
        user: &Key,
        presentations: Vec<Presentation>,
    ) -> Result<(), AgentError> {
        self.present_for(user, None, presentations).await
    }

    /// [`Self::present`] for checkout `from`: a quote among `presentations` becomes the
    /// one a confirmation answers.
    pub(crate) async fn present_for(
        &self,
        user: &Key,
        from: Option<&Key>,
        presentations: Vec<Presentation>,
    ) -> Result<(), AgentError> {
        if presentations.is_empty() {
            return Ok(());
        }
        self.with_conversation(user, None, |doc, staged, now| {
            if presentations
                .iter()
                .any(|p| matches!(p, Presentation::Quote { .. }))
            {
                doc.quoted_checkout = from.cloned();
            }
            for p in &presentations {
                let effects = doc
                    .machine
                    .handle(now, conversation::Input::Present(p.clone()))
                    .map_err(|e| AgentError::Rejected(e.to_string()))?;
                staged.effects.extend(effects);
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub(crate) async fn notice(
        &self,
        user: &Key,
        text: impl Into<String>,
    ) -> Result<(), AgentError> {
        self.present(user, vec![Presentation::Notice { text: text.into() }])
            .await
    }

    /// The brain's history of `user`: the logged items after the last `/clear`.
    pub(crate) async fn history(&self, user: &Key) -> Result<Vec<HistoryItem>, AgentError> {
        let lines = self.inner.store.message_log(user, HISTORY_LINES).await?;
        let mut items = Vec::new();
        for line in lines {
            match serde_json::from_str::<LogLine>(line.text.expose()) {
                Ok(LogLine::Item(item)) => items.push(item),
                Ok(LogLine::Clear) => items.clear(),
                Err(_) => {}
            }
        }
        // A window that starts mid-turn begins with orphan tool results: drop them.
        while matches!(items.first(), Some(HistoryItem::ToolResults(_))) {
            items.remove(0);
        }
        Ok(items)
    }

    /// Starts buying `asin` for `user`: a new checkout asks the merchant for a quote. With
    /// an incomplete profile, the product is remembered and bought once the profile is.
    /// Returns whether a checkout started.
    pub(crate) async fn start_checkout(&self, user: &Key, asin: &Asin) -> Result<bool, AgentError> {
        let profile = self
            .inner
            .store
            .load_profile(user)
            .await?
            .unwrap_or_default();
        if !profile.is_complete() {
            let missing: Vec<&str> = profile.missing_fields().iter().map(|f| f.label()).collect();
            let text = format!(
                "Before I can order, I need your {}. Send them in one line, like: name: Pat Lee, email: pat@example.com, address: 1 Main St, Seattle, WA 98101",
                missing.join(", ")
            );
            self.with_conversation(user, None, |doc, staged, now| {
                doc.awaiting_profile = Some(asin.clone());
                staged.effects = doc
                    .machine
                    .handle(
                        now,
                        conversation::Input::Present(Presentation::Notice { text: text.clone() }),
                    )
                    .map_err(|e| AgentError::Rejected(e.to_string()))?;
                Ok(())
            })
            .await?;
            return Ok(false);
        }
        let catalog_asin =
            catalog::Asin::parse(asin.as_str()).map_err(|e| AgentError::Rejected(e.to_string()))?;
        let product = match self.inner.catalog.product(&catalog_asin).await {
            Ok(Some(product)) => product,
            Ok(None) => {
                return self
                    .notice(
                        user,
                        format!("I could not find product {} on Amazon.com.", asin.as_str()),
                    )
                    .await
                    .map(|()| false);
            }
            Err(e) => {
                return self
                    .notice(user, format!("I could not look that product up: {e}"))
                    .await
                    .map(|()| false);
            }
        };
        // A purchase still waiting for a "yes" or for funds is replaced by the new one.
        if let Some(previous) = self.active_checkout(user).await? {
            self.checkout_input(&previous, checkout::Input::Decline, |_, _| {})
                .await?;
        }
        let choice = ProductChoice {
            asin: asin.as_str().to_owned(),
            title: product.title.as_str().to_owned(),
        };
        let price: Option<UsdcAmount> = product.price;
        let policy = self.inner.config.policy.clone();
        self.with_conversation(user, None, |doc, staged, _now| {
            doc.checkouts_started += 1;
            doc.awaiting_profile = None;
            let id = checkout_id(user, doc.checkouts_started)?;
            let own_policy = policy.lowered_to(&doc.limits);
            let (machine, effects) = Checkout::start(choice.clone(), own_policy);
            let checkout = CheckoutDoc {
                user: user.clone(),
                machine,
                order: None,
                catalog_price: price,
                paid_at: None,
                reported_stage: None,
            };
            doc.active_checkout = Some(id.clone());
            staged.new_checkout = Some((id, checkout, effects));
            Ok(())
        })
        .await?;
        Ok(true)
    }

    pub(crate) async fn conversation_doc(
        &self,
        user: &Key,
    ) -> Result<Option<ConversationDoc>, AgentError> {
        let record = self
            .inner
            .store
            .load_machine(MachineKind::Conversation, user)
            .await?;
        Ok(match record {
            Some(r) => Some(ConversationDoc::decode(&r)?),
            None => None,
        })
    }

    pub(crate) async fn active_checkout(&self, user: &Key) -> Result<Option<Key>, AgentError> {
        Ok(self
            .conversation_doc(user)
            .await?
            .and_then(|doc| doc.active_checkout))
    }

    /// After a profile edit: buys the product chosen while the profile was incomplete.
    pub(crate) async fn resume_awaiting_profile(&self, user: &Key) -> Result<(), AgentError> {
        let Some(record) = self
            .inner
            .store
            .load_machine(MachineKind::Conversation, user)
            .await?
        else {
            return Ok(());
        };
        let Some(asin) = ConversationDoc::decode(&record)?.awaiting_profile else {
            return Ok(());
        };
        let complete = self
            .inner
            .store
            .load_profile(user)
            .await?
            .is_some_and(|p| p.is_complete());
        if complete {
            self.start_checkout(user, &asin).await?;
        }
        Ok(())
    }
}

/// `co-<user>-<n>`, or a hash of the user when that would be too long for a key.
fn checkout_id(user: &Key, n: u64) -> Result<Key, AgentError> {
    let plain = format!("co-{user}-{n}");
    if plain.len() <= 200 {
        return key(&plain);
    }
    let digest = alloy_primitives::keccak256(user.as_str().as_bytes());
    key(&format!("co-{digest:x}-{n}"))
}
