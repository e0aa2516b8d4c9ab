//! Executing the agent's outbox effects; every result goes back into its machine.

use super::order_client::{OrderRequest, PayAnswer, parse_tx_hash};
use super::records::{AgentEffect, OrderHandle};
use super::render::presentations;
use super::{Agent, AgentError, AgentPorts};
use crate::outbox::{Attempt, EffectError, EffectExecutor, last_write_follows};
use alloy_primitives::keccak256;
use worldstore_domain::checkout::{self, Checkout, MerchantQuote, PaymentOutcome, RequestId};
use worldstore_domain::conversation::{
    self, Card, FundingRequest, Presentation, ToolCall, ToolOutcome,
};
use worldstore_domain::eip3009::Nonce;
use worldstore_domain::money::UsdcAmount;
use worldstore_domain::network::Network;
use worldstore_domain::ports::brain::{Brain, BrainError, BrainRequest, HistoryItem};
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::ports::store::{ClaimedEffect, Key, MachineKind, Store};
use worldstore_domain::x402::client::sign_payment;

use super::channel::{Channel, ChannelError};

fn transient(e: impl std::fmt::Display) -> EffectError {
    EffectError::Transient(e.to_string())
}

fn channel_failure(e: ChannelError) -> EffectError {
    if e.is_transient() {
        EffectError::Transient(e.to_string())
    } else {
        EffectError::Permanent(e.to_string())
    }
}

impl From<AgentError> for EffectError {
    fn from(error: AgentError) -> Self {
        match error {
            AgentError::Store(e) => e.into(),
            AgentError::Contended(what) => EffectError::Transient(what),
            AgentError::Port(what) => EffectError::Transient(what),
            other => EffectError::Permanent(other.to_string()),
        }
    }
}

impl<P: AgentPorts> EffectExecutor for Agent<P> {
    const KINDS: &'static [&'static str] = &[super::records::EFFECT_DOC];

    async fn execute(&self, claimed: &ClaimedEffect, attempt: Attempt) -> Result<(), EffectError> {
        let effect = AgentEffect::decode(&claimed.effect, &claimed.id.to_string())
            .map_err(|e| EffectError::Permanent(e.to_string()))?;
        match effect {
            AgentEffect::Conversation { user, effect } => {
                self.conversation_effect(&user, effect, attempt).await
            }
            AgentEffect::Checkout {
                user,
                checkout,
                effect,
            } => {
                self.checkout_effect(&user, &checkout, effect, claimed, attempt)
                    .await
            }
        }
    }
}

impl<P: AgentPorts> Agent<P> {
    async fn conversation_effect(
        &self,
        user: &Key,
        effect: conversation::Effect,
        attempt: Attempt,
    ) -> Result<(), EffectError> {
        use conversation::Effect as E;
        match effect {
            E::React { to, emoji } => self
                .inner
                .channel
                .react(user, &to, &emoji)
                .await
                .map_err(channel_failure),
            E::Send(message) => self
                .inner
                .channel
                .send(user, &message)
                .await
                .map_err(channel_failure),
            E::AskBrain {
                request, context, ..
            } => {
                let history = self.history(user).await?;
                let asked = BrainRequest {
                    context,
                    history,
                    tools: conversation::tool_specs(),
                };
                let answer = self.inner.brain.respond(asked).await;
                // Whatever the answer, feeding it in is this effect's last step.
                last_write_follows();
                match &answer {
                    Ok(reply) => crate::metrics::global()
                        .model_call(reply.usage.input_tokens, reply.usage.output_tokens),
                    Err(_) => crate::metrics::global().model_failure(),
                }
                let input = match answer {
                    Ok(reply) => {
                        let mut log = Vec::new();
                        if let Some(text) = reply.text.clone().filter(|t| !t.trim().is_empty()) {
                            log.push(HistoryItem::Assistant(text));
                        }
                        if !reply.proposals.is_empty() {
                            log.push(HistoryItem::ToolCalls(reply.proposals.clone()));
                        }
                        self.conversation_input(
                            user,
                            conversation::Input::BrainAnswered {
                                request,
                                text: reply.text,
                                proposals: reply.proposals,
                            },
                            log,
                        )
                        .await?;
                        return Ok(());
                    }
                    Err(BrainError::Transient(reason)) if !attempt.last => {
                        return Err(EffectError::Transient(reason));
                    }
                    Err(e) => conversation::Input::BrainFailed {
                        request,
                        reason: e.to_string(),
                    },
                };
                Ok(self.conversation_input(user, input, vec![]).await?)
            }
            E::RunTool {
                request,
                call_id,
                call,
            } => {
                let outcome = match self.run_tool(user, &call).await {
                    Ok(outcome) => outcome,
                    Err(e) if !attempt.last && EffectError::from(clone_err(&e)).is_transient() => {
                        return Err(e.into());
                    }
                    Err(e) => ToolOutcome {
                        content: format!("the tool failed: {e}"),
                        is_error: true,
                        products: vec![],
                        presented: false,
                    },
                };
                let ask_to_delete = matches!(call, ToolCall::DeleteProfile);
                let edited = matches!(call, ToolCall::EditProfile(_)) && !outcome.is_error;
                let limits = match &call {
                    ToolCall::SetSpendingLimits(limits) if !outcome.is_error => Some(*limits),
                    _ => None,
                };
                if !edited {
                    last_write_follows();
                }
                let finished = self
                    .with_conversation(user, None, |doc, staged, now| {
                        staged.effects = doc
                            .machine
                            .handle(
                                now,
                                conversation::Input::ToolFinished {
                                    request,
                                    call_id: call_id.clone(),
                                    outcome: outcome.clone(),
                                },
                            )
                            .map_err(|e| AgentError::Rejected(e.to_string()))?;
                        if ask_to_delete {
                            let menu = doc.machine.ask_to_delete_profile(now);
                            staged.effects.push(menu);
                        }
                        if let Some(new) = limits {
                            doc.limits.per_order = new.per_order.or(doc.limits.per_order);
                            doc.limits.per_day = new.per_day.or(doc.limits.per_day);
                        }
                        Ok(())
                    })
                    .await;
                match finished {
                    Ok(_) | Err(AgentError::Rejected(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                if edited {
                    self.resume_awaiting_profile(user).await?;
                }
                Ok(())
            }
            // Written to the history with the commit that made it; never enqueued.
            E::Remember { .. } => Ok(()),
            E::ClearHistory => {
                last_write_follows();
                self.with_conversation(user, None, |_, staged, _| {
                    staged.log_clear();
                    Ok(())
                })
                .await?;
                Ok(())
            }
            E::DeleteProfile => {
                let deleted = self
                    .inner
                    .store
                    .delete_profile(user)
                    .await
                    .map_err(EffectError::from)?;
                let text = if deleted {
                    "Deleted your profile."
                } else {
                    "You had no saved profile."
                };
                Ok(self.notice(user, text).await?)
            }
            E::StartCheckout { asin } => {
                self.start_checkout(user, &asin).await?;
                Ok(())
            }
            E::ConfirmPurchase | E::DeclinePurchase => {
                let input = if matches!(effect, E::ConfirmPurchase) {
                    checkout::Input::Confirm
                } else {
                    checkout::Input::Decline
                };
                // A yes answers the quote shown when it was given, and only while that
                // purchase is still the active one.
                let target = match self.conversation_doc(user).await? {
                    Some(doc) if matches!(effect, E::ConfirmPurchase) => doc
                        .confirming
                        .filter(|id| doc.active_checkout.as_ref() == Some(id)),
                    Some(doc) => doc.active_checkout,
                    None => None,
                };
                // The answer goes to the checkout, or else a notice goes to the user.
                last_write_follows();
                let applied = match target {
                    Some(id) => self.checkout_input(&id, input, |_, _| {}).await?,
                    None => false,
                };
                if !applied {
                    self.notice(
                        user,
                        "There is no purchase waiting for that answer right now.",
                    )
                    .await?;
                }
                Ok(())
            }
            E::RequestFunding { amount } => {
                let network = self.funding_network();
                let amount = match amount {
                    Some(a) => a,
                    None => match self.shortfall(user).await? {
                        Some(a) => a,
                        None => {
                            return Ok(self
                                .notice(user, "Your wallet has enough USDC for your current order.")
                                .await?);
                        }
                    },
                };
                self.send_funding_card(user, network, amount, "topup").await
            }
            E::CheckBalance => {
                let text = self.balances_text(user).await?;
                Ok(self.notice(user, text).await?)
            }
            E::ShowWalletAddresses => {
                let mut text = format!(
                    "Your agent wallet: {}",
                    self.wallet_address(user)?.to_checksum(None)
                );
                if let Some(own) = self.own_wallet(user) {
                    text.push_str(&format!("\nYour own wallet: {}", own.to_checksum(None)));
                }
                Ok(self.notice(user, text).await?)
            }
        }
    }

    fn own_wallet(&self, user: &Key) -> Option<alloy_primitives::Address> {
        self.inner.config.own_wallet.as_ref().and_then(|f| f(user))
    }

    fn funding_network(&self) -> Network {
        self.inner
            .config
            .policy
            .tokens
            .first()
            .map_or(Network::BaseSepolia, |t| t.network)
    }

    /// What the active checkout still lacks, when it is waiting for funds.
    async fn shortfall(&self, user: &Key) -> Result<Option<UsdcAmount>, AgentError> {
        let Some(id) = self.active_checkout(user).await? else {
            return Ok(None);
        };
        let Some((_, doc)) = self.own_checkout(user, &id).await? else {
            return Ok(None);
        };
        let Checkout::AwaitingFunds(waiting) = &doc.machine else {
            return Ok(None);
        };
        let balance = self.usdc_on(user, waiting.network).await?;
        let short = waiting.quote.total.saturating_sub(balance);
        Ok((!short.is_zero()).then_some(short))
    }

    pub(crate) async fn usdc_on(
        &self,
        user: &Key,
        network: Network,
    ) -> Result<UsdcAmount, AgentError> {
        let address = self.wallet_address(user)?;
        let Some(chain) = self.inner.chains.iter().find(|c| c.network() == network) else {
            return Ok(UsdcAmount::ZERO);
        };
        let balance = chain
            .usdc_balance(address)
            .await
            .map_err(|e| AgentError::Port(e.to_string()))?;
        Ok(UsdcAmount::from_u256(balance).unwrap_or(UsdcAmount::ZERO))
    }

    async fn send_funding_card(
        &self,
        user: &Key,
        network: Network,
        amount: UsdcAmount,
        tag: &str,
    ) -> Result<(), EffectError> {
        let token = self
            .inner
            .config
            .policy
            .tokens
            .iter()
            .find(|t| t.network == network)
            .map_or_else(|| network.usdc().address, |t| t.address);
        let card = FundingRequest {
            id: format!("fund-{tag}-{}", self.now()),
            from: self.own_wallet(user),
            to: self.wallet_address(user)?,
            amount,
            network,
            token,
        };
        Ok(self
            .present(user, vec![Presentation::Card(Card::Funding(card))])
            .await?)
    }

    async fn checkout_effect(
        &self,
        user: &Key,
        id: &Key,
        effect: checkout::Effect,
        claimed: &ClaimedEffect,
        attempt: Attempt,
    ) -> Result<(), EffectError> {
        use checkout::Effect as E;
        match effect {
            E::RequestQuote { request, .. } => self.request_quote(user, id, request, attempt).await,
            E::ReadBalances { request } => {
                let address = self.wallet_address(user)?;
                let mut balances = Vec::new();
                for chain in &self.inner.chains {
                    let usdc = chain.usdc_balance(address).await.map_err(transient)?;
                    balances.push((
                        chain.network(),
                        UsdcAmount::from_u256(usdc).unwrap_or(UsdcAmount::ZERO),
                    ));
                }
                last_write_follows();
                self.checkout_input(
                    id,
                    checkout::Input::BalancesRead { request, balances },
                    |_, _| {},
                )
                .await?;
                Ok(())
            }
            E::Pay {
                request,
                challenge,
                index,
                ..
            } => {
                self.pay(user, id, request, &challenge, index, claimed, attempt)
                    .await
            }
            E::RequestFunding { network, shortfall } => {
                self.send_funding_card(user, network, shortfall, id.as_str())
                    .await
            }
            E::WatchBalance { .. } => {
                // The watcher scans every checkout awaiting funds; it only needs a nudge.
                self.inner.funds_wake.notify_one();
                Ok(())
            }
            E::Notify(notice) => {
                let (order_id, network) = match self.own_checkout(user, id).await? {
                    Some((_, doc)) => (
                        doc.order.as_ref().map(|o| o.order_id.to_string()),
                        doc.machine
                            .quote()
                            .and_then(|q| q.payable.first().map(|p| p.1))
                            .unwrap_or_else(|| self.funding_network()),
                    ),
                    None => (None, self.funding_network()),
                };
                let shown = presentations(&notice, order_id.as_deref(), network);
                last_write_follows();
                Ok(self.present_for(user, Some(id), shown).await?)
            }
        }
    }

    /// The order body for `user`'s purchase of `asin`, from their profile.
    async fn order_request(
        &self,
        user: &Key,
        asin: &str,
    ) -> Result<Option<OrderRequest>, AgentError> {
        let profile = self.inner.store.load_profile(user).await?;
        Ok(profile
            .and_then(|p| p.recipient())
            .map(|recipient| OrderRequest::new(asin, &recipient, self.funding_network().v1_name())))
    }

    async fn request_quote(
        &self,
        user: &Key,
        id: &Key,
        request: RequestId,
        attempt: Attempt,
    ) -> Result<(), EffectError> {
        let Some((_, doc)) = self.own_checkout(user, id).await? else {
            return Ok(());
        };
        let Checkout::RequestingQuote(state) = &doc.machine else {
            return Ok(()); // answered already (a repeated effect)
        };
        let fail = |reason: String| checkout::Input::QuoteFailed { request, reason };
        let input = match (
            self.order_request(user, &state.product.asin).await?,
            doc.catalog_price,
        ) {
            (None, _) => fail("your profile has no complete shipping address".into()),
            (_, None) => fail("the product has no price to check the quote against".into()),
            (Some(body), Some(price)) => {
                match self.inner.config.merchant.request_quote(&body).await {
                    Ok(quote) => {
                        let spent_today = self.spent_today(user).await?;
                        let handle = OrderHandle {
                            order_id: quote.order_id.clone(),
                            token: quote.token.clone(),
                        };
                        let input = checkout::Input::QuoteReceived {
                            request,
                            quote: MerchantQuote {
                                order_id: quote.order_id,
                                quoted_price: price,
                                challenge: quote.challenge,
                            },
                            spent_today,
                        };
                        last_write_follows();
                        self.checkout_input(id, input, move |doc, _| {
                            doc.order = Some(handle.clone());
                        })
                        .await?;
                        return Ok(());
                    }
                    Err(e) if e.is_transient() && !attempt.last => return Err(transient(e)),
                    Err(e) => fail(e.to_string()),
                }
            }
        };
        last_write_follows();
        self.checkout_input(id, input, |_, _| {}).await?;
        Ok(())
    }

    /// Totals paid by `user` in the last 24 hours (the per-day limit's window).
    async fn spent_today(&self, user: &Key) -> Result<UsdcAmount, AgentError> {
        let since = self.now().saturating_sub(24 * 60 * 60);
        let records = self
            .inner
            .store
            .machines_of_user(MachineKind::Checkout, user)
            .await?;
        let mut spent = UsdcAmount::ZERO;
        for record in records {
            let Ok(doc) = super::records::CheckoutDoc::decode(&record) else {
                continue;
            };
            if doc.paid_at.is_some_and(|at| at >= since)
                && let Some(q) = doc.machine.quote()
            {
                spent = spent.checked_add(q.total).unwrap_or(spent);
            }
        }
        Ok(spent)
    }

    #[allow(clippy::too_many_arguments)]
    async fn pay(
        &self,
        user: &Key,
        id: &Key,
        request: RequestId,
        challenge: &worldstore_domain::x402::client::PaymentChallenge,
        index: usize,
        claimed: &ClaimedEffect,
        attempt: Attempt,
    ) -> Result<(), EffectError> {
        let Some((_, doc)) = self.own_checkout(user, id).await? else {
            return Ok(());
        };
        let Checkout::Paying(paying) = &doc.machine else {
            return Ok(()); // answered already
        };
        let refused = |message: String| PaymentOutcome::Refused {
            reason: worldstore_domain::x402::ReasonCode::parse("invalid_payload"),
            message,
        };
        let network = paying.offer.map_or(paying.quote.payable[0].1, |(_, n)| n);
        let token = self
            .inner
            .config
            .policy
            .tokens
            .iter()
            .find(|t| t.network == network)
            .cloned();
        let body = self.order_request(user, &paying.quote.product.asin).await?;
        let outcome = match (token, body, doc.order.as_ref()) {
            (None, ..) => refused(format!("no token configured on {}", network.v1_name())),
            (_, None, _) => refused("your profile was removed before paying".into()),
            (_, _, None) => refused("the merchant gave no order id".into()),
            (Some(token), Some(body), Some(order)) => {
                let signer = self.wallet(user)?;
                // One nonce per Pay effect: a repeated attempt signs the same nonce, so at
                // most one of its authorizations can ever settle (EIP-3009 nonces are single use).
                let nonce = Nonce::from(keccak256(
                    format!("worldstore/agent/nonce/v1/{}", claimed.idempotency_key).as_bytes(),
                ));
                let Some(payment) =
                    sign_payment(&signer, challenge, index, &token, nonce, self.now())
                else {
                    return Err(EffectError::Permanent("offer index out of range".into()));
                };
                match self.inner.config.merchant.pay(&body, &payment).await {
                    Ok(PayAnswer::Paid { tx_hash }) => PaymentOutcome::Paid { tx_hash },
                    Ok(PayAnswer::Refused { reason, message }) => {
                        // A repeated attempt after a crash may be refused because the first
                        // one went through: the order itself says so.
                        match self
                            .inner
                            .config
                            .merchant
                            .order(&order.order_id, &order.token)
                            .await
                        {
                            Ok(Some(view))
                                if matches!(
                                    view.stage.as_str(),
                                    "paid" | "shipped" | "delivered"
                                ) =>
                            {
                                match view
                                    .payment
                                    .and_then(|p| p.tx_hash)
                                    .and_then(|h| parse_tx_hash(&h))
                                {
                                    Some(tx_hash) => PaymentOutcome::Paid { tx_hash },
                                    None => PaymentOutcome::Refused { reason, message },
                                }
                            }
                            _ => PaymentOutcome::Refused { reason, message },
                        }
                    }
                    Err(e) if e.is_transient() && !attempt.last => return Err(transient(e)),
                    Err(e) => refused(e.to_string()),
                }
            }
        };
        let paid = !matches!(outcome, PaymentOutcome::Refused { .. });
        last_write_follows();
        self.checkout_input(
            id,
            checkout::Input::PaymentResult { request, outcome },
            move |doc, now| {
                if paid {
                    doc.paid_at = Some(now);
                }
            },
        )
        .await?;
        Ok(())
    }
}

fn clone_err(e: &AgentError) -> AgentError {
    match e {
        AgentError::Store(s) => AgentError::Store(s.clone()),
        AgentError::Contended(s) => AgentError::Contended(s.clone()),
        AgentError::Port(s) => AgentError::Port(s.clone()),
        other => AgentError::Rejected(other.to_string()),
    }
}

impl EffectError {
    fn is_transient(&self) -> bool {
        matches!(self, EffectError::Transient(_))
    }
}
