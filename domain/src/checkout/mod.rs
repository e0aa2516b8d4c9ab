//! The `Checkout` machine: the buyer's side of one purchase, from a chosen product to a
//! delivered (or refunded) order. The agent runs one per purchase.
//!
//! Sans-IO like every machine: [`Checkout::handle`] takes `now` and one [`Input`] and
//! returns [`Effect`]s; `Err` means the input was rejected and nothing changed.
//!
//! ```text
//! RequestingQuote --QuoteReceived(valid, within limits)--> AwaitingConfirmation
//!        | (invalid 402 answer, over a limit, merchant error) --> Failed
//! AwaitingConfirmation --Confirm--> CheckingFunds --BalancesRead(enough)--> Paying
//!        | --Decline--> Declined            | (short) --> AwaitingFunds --FundsArrived(enough)--> Paying
//! Paying --PaymentResult(Paid | Pending)--> Paid --OrderUpdate--> Shipped --> Delivered
//!        | (Refused) --> Failed             Paid/Shipped --OrderUpdate(Refunded)--> Refunded
//! ```
//!
//! | input | effects |
//! |---|---|
//! | (creation) | `RequestQuote` |
//! | `QuoteReceived` | `Notify(QuoteReady)` or `Notify(CannotBuy)` |
//! | `Confirm` | `ReadBalances` |
//! | `BalancesRead` | `Pay` or `RequestFunding` + `WatchBalance` |
//! | `FundsArrived` | `Notify(FundsArrived)` + `Pay`, or `WatchBalance` again |
//! | `PaymentResult` | `Notify(Paid / PaymentRefused)` |
//! | `OrderUpdate` | `Notify(Shipped / Delivered / Refunded / OrderFailed)` |
//!
//! ## Invariants
//! 1. A [`Effect::Pay`] is emitted only for the quote the user confirmed in this checkout,
//!    after the 402 answer was checked: a known network and asset, `payTo` on the
//!    allowlist, and an amount equal to the quoted price plus the configured fee
//!    (ARCHITECTURE invariant 4; seed defect 10).
//! 2. The total is within the per-order limit and, with what the user spent today, within
//!    the per-day limit.
//! 3. Answers carry the [`RequestId`] of the effect that asked; anything else is rejected.

mod machine;
#[cfg(test)]
mod tests;

pub use machine::*;
