//! The `Settlement` machine: the merchant's side of one order, from the 402 offer to
//! fulfilled or refunded.
//!
//! Sans-IO: [`Settlement::handle`] takes `now` and one [`Input`] and returns the
//! [`Effect`]s to carry out; the driver persists the new state and the effects in one
//! transaction, executes the effects and feeds their results back as inputs. `Err` means
//! the input was rejected and the state did not change. Business outcomes (a refused
//! payment, a failed delivery) are states and effects, never `Err`.
//!
//! ```text
//! AwaitingPayment --PaymentPresented--> CheckingChain --ChainFactsRead(ok)--> Settling
//!       ^   |  (refused: AnswerPayment)        | (refused)                      |
//!       |   +--Tick(after expiry)--> Expired   +----> AwaitingPayment           |
//!       +------------- SettlementResult(Failed) --------------------------------+
//! Settling --SettlementResult(Pending)--> SettlementPending --Reconciled--> ...
//! Settling --SettlementResult(Confirmed)--> Fulfilling --FulfilmentPaid--> InDelivery
//! Fulfilling/InDelivery --FulfilmentFailed / Delivery(Failed)--> Refunding --RefundSent--> Refunded
//! InDelivery --Delivery(Delivered)--> Fulfilled
//! ```
//!
//! | input | in state | effects |
//! |---|---|---|
//! | `PaymentPresented` | AwaitingPayment | `ReadChainFacts` (or `AnswerPayment(Refused)` when it does not match the offer) |
//! | `ChainFactsRead` | CheckingChain | `ReserveNonce`, `Audit(AuthorizationReceived)`, `SubmitSettlement` / `AnswerPayment(Refused)` |
//! | `SettlementResult` | Settling, SettlementPending | `Audit(Settled)`, `AnswerPayment(Paid)`, `PayFulfilment` / `ReconcileSettlement` / `AnswerPayment(Refused)` |
//! | `FulfilmentPaid` | Fulfilling | `Audit(PaidToFulfilment)`, `WatchDelivery` |
//! | `FulfilmentFailed` | Fulfilling | `RefundBuyer` |
//! | `Delivery` | InDelivery | `NotifyBuyer`; `RefundBuyer` on failure |
//! | `RefundSent` | Refunding | `Audit(Refunded)`, `NotifyBuyer` |
//! | `Tick` | AwaitingPayment | none; `Expired` after the offer's deadline |
//!
//! ## Invariants
//! 1. `PayFulfilment` is emitted only from a confirmed settlement whose transfer is exactly
//!    the offered amount, of the offered token, to the offered `payTo` (ARCHITECTURE
//!    invariant 1).
//! 2. Once settled, the machine ends in `Fulfilled` or `Refunded`: every failure after
//!    settlement leads to `Refunding` (invariant 2).
//! 3. One authorization pays one order: the payment must match this order's stored offer,
//!    and its nonce is reserved in the same transaction as the state that uses it
//!    (invariant 3).
//! 4. Answers carry the [`RequestId`] of the effect that asked; a late or duplicate answer
//!    is rejected and changes nothing.

mod machine;
#[cfg(test)]
mod tests;

pub use machine::*;
