//! The two background loops. Both keep no memory: each round reads the store, so they
//! resume after a restart and may run on several instances.
//!
//! - **Funds watcher**: every checkout awaiting funds is resumed (`FundsArrived`) as soon
//!   as its wallet holds the quoted total; the checkout then pays by itself and tells the user.
//! - **Order tracker**: every paid or shipped order is asked for news
//!   (`GET /api/orders/{id}` with its bearer token); a new stage becomes an `OrderUpdate`.

use super::records::CheckoutDoc;
use super::{Agent, AgentError, AgentPorts};
use crate::agent::order_client::{OrderView, parse_tx_hash};
use tokio::sync::watch;
use worldstore_domain::checkout::{self, Checkout, OrderUpdate};
use worldstore_domain::ports::store::{MachineKind, Status, Store};

/// Checkouts looked at per round.
const BATCH: u32 = 200;

fn status(text: &str) -> Status {
    Status::parse(text).unwrap_or_else(|| unreachable!("{text} is a valid status"))
}

/// The update a merchant stage means for a checkout, if any.
fn update_for(view: &OrderView, doc: &CheckoutDoc) -> Option<OrderUpdate> {
    match view.stage.as_str() {
        "shipped" => Some(OrderUpdate::Shipped {
            carrier: view
                .tracking
                .as_ref()
                .map_or_else(|| "the carrier".to_owned(), |t| t.carrier.clone()),
            tracking_number: view
                .tracking
                .as_ref()
                .map_or_else(|| "pending".to_owned(), |t| t.number.clone()),
        }),
        "delivered" => Some(OrderUpdate::Delivered),
        "refunded" => {
            let tx_hash = view
                .refund
                .as_ref()
                .and_then(|r| r.tx_hash.as_deref())
                .and_then(parse_tx_hash)?;
            let amount = doc.machine.quote()?.total;
            Some(OrderUpdate::Refunded { amount, tx_hash })
        }
        "failed" => Some(OrderUpdate::Failed(
            view.refund
                .as_ref()
                .and_then(|r| r.reason.clone())
                .unwrap_or_else(|| "the merchant could not fulfil it".to_owned()),
        )),
        _ => None,
    }
}

impl<P: AgentPorts> Agent<P> {
    /// One round of the funds watcher; returns how many checkouts were resumed.
    pub async fn check_funds(&self) -> Result<usize, AgentError> {
        let waiting = self
            .inner
            .store
            .machines_in_status(MachineKind::Checkout, &status("awaiting_funds"), BATCH)
            .await?;
        let mut resumed = 0;
        for record in waiting {
            let doc = CheckoutDoc::decode(&record)?;
            let Checkout::AwaitingFunds(state) = &doc.machine else {
                continue;
            };
            let balance = self.usdc_on(&doc.user, state.network).await?;
            if balance < state.quote.total {
                continue;
            }
            let input = checkout::Input::FundsArrived {
                request: state.request,
                balance,
            };
            if self.checkout_input(&record.id, input, |_, _| {}).await? {
                resumed += 1;
            }
        }
        Ok(resumed)
    }

    /// One round of the order tracker; returns how many updates were fed in.
    ///
    /// An order whose checkout changed this very second is left for the next round: the
    /// merchant has had no time to move it on, and a caller that runs rounds back to back
    /// (the replay, a burst of turns) would otherwise ask the merchant about the same order
    /// after every turn.
    pub async fn track_orders_once(&self) -> Result<usize, AgentError> {
        let now = self.now();
        let mut fed = 0;
        for stage in ["paid", "shipped"] {
            let records = self
                .inner
                .store
                .machines_in_status(MachineKind::Checkout, &status(stage), BATCH)
                .await?;
            for record in records {
                if record.updated_at >= now {
                    continue;
                }
                let doc = CheckoutDoc::decode(&record)?;
                let Some(order) = &doc.order else { continue };
                let view = match self
                    .inner
                    .config
                    .merchant
                    .order(&order.order_id, &order.token)
                    .await
                {
                    Ok(Some(view)) => view,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::debug!(order = %order.order_id, error = %e, "order status unavailable");
                        continue;
                    }
                };
                if doc.reported_stage.as_deref() == Some(view.stage.as_str()) {
                    continue;
                }
                let Some(update) = update_for(&view, &doc) else {
                    continue;
                };
                let stage = view.stage.clone();
                let applied = self
                    .checkout_input(
                        &record.id,
                        checkout::Input::OrderUpdate(update),
                        move |doc, _| doc.reported_stage = Some(stage.clone()),
                    )
                    .await?;
                if applied {
                    fed += 1;
                }
            }
        }
        Ok(fed)
    }

    pub(crate) async fn watch_funds(self, mut stop: watch::Receiver<bool>) {
        let wake = self.inner.funds_wake.clone();
        loop {
            if *stop.borrow() {
                return;
            }
            if let Err(error) = self.check_funds().await {
                tracing::warn!(%error, "funds watcher round failed");
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.inner.config.funds_poll) => {}
                _ = stop.changed() => {}
            }
        }
    }

    pub(crate) async fn track_orders(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            if let Err(error) = self.track_orders_once().await {
                tracing::warn!(%error, "order tracker round failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.inner.config.order_poll) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
