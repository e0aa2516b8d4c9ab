//! The `Conversation` machine: one per user inbox. It owns menus, slash commands, numeric
//! replies to menus, the assistant context (menu / shopping / profile) and the turn-taking
//! with the brain, and turns tool proposals into validated [`ToolCall`]s.
//!
//! Sans-IO: [`Conversation::handle`] takes `now` and one [`Input`] and returns [`Effect`]s.
//!
//! | input | effects |
//! |---|---|
//! | `Inbound(Text)` | `React`; main menu on first contact or after 3 h of silence; a slash command's answer, a menu action (for "2" after a menu), or `AskBrain` |
//! | `Inbound(Intent)` | the action, only for a menu we sent to this conversation that has not expired |
//! | `BrainAnswered` | `RunTool` for each valid proposal (invalid ones go back as tool errors), `Send` the text |
//! | `ToolFinished` | `AskBrain` with the results, or a direct reply for tools whose result is shown as is |
//!
//! ## Invariants
//! - The user a tool acts for is always this conversation's user: no [`ToolCall`] has a
//!   user field, and the model's input cannot name one (ARCHITECTURE invariant 5).
//! - No tool moves funds or signs: starting a checkout only asks the merchant for a quote;
//!   paying needs the user's explicit confirmation in the checkout machine.
//! - An intent is honoured only for a menu this machine sent and that has not expired.

pub mod cards;
mod machine;
pub mod menus;
#[cfg(test)]
mod tests;
pub mod tools;

pub use cards::{
    Card, FundingRequest, OrderProgress, OrderStage, ProductCard, QuoteCard, TransactionPurpose,
    TransactionRef,
};
pub use machine::*;
pub use menus::{ActionItem, Menu, MenuKind};
pub use tools::{ToolCall, ToolError, ToolProposal, ToolSpec, tool_specs};
