//! The menus the agent sends, as XMTP `coinbase.com/actions:1.0` messages, and their text
//! fallback for clients that cannot show buttons.

use serde::{Deserialize, Serialize};

/// Action labels are at most 50 characters (xmtp.md, actions content type).
pub const MAX_LABEL_CHARS: usize = 50;
/// A menu holds 1 to 10 actions.
pub const MAX_ACTIONS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionItem {
    pub id: String,
    pub label: String,
}

/// Which menu this is (the action ids it holds depend on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MenuKind {
    Main,
    Assistants,
    Wallet,
    QuickBuy,
    Funding,
    Confirm,
}

/// A menu as sent: its id is unique in the conversation (`menu-<n>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Menu {
    pub id: String,
    pub kind: MenuKind,
    pub description: String,
    pub actions: Vec<ActionItem>,
    /// Unix seconds; after this the menu's buttons are refused.
    pub expires_at: u64,
}

impl Menu {
    /// The text fallback: `"<description>\n\n[1] <label>\n...\n\nReply with the number to select"`.
    pub fn fallback_text(&self) -> String {
        let mut text = format!("{}\n\n", self.description);
        for (i, action) in self.actions.iter().enumerate() {
            text.push_str(&format!("[{}] {}\n", i + 1, action.label));
        }
        text.push_str("\nReply with the number to select");
        text
    }

    pub fn action(&self, id: &str) -> Option<&ActionItem> {
        self.actions.iter().find(|a| a.id == id)
    }
}

fn item(id: &str, label: &str) -> ActionItem {
    let label: String = label.chars().take(MAX_LABEL_CHARS).collect();
    ActionItem {
        id: id.to_owned(),
        label,
    }
}

/// The actions of a fixed menu.
pub fn actions_of(kind: MenuKind) -> (String, Vec<ActionItem>) {
    match kind {
        MenuKind::Main => (
            "Welcome to Worldstore: buy from Amazon.com with USDC. What would you like to do?"
                .into(),
            vec![
                item("shopping", "Shopping Assistant"),
                item("profile", "Profile Assistant"),
                item("wallet", "Wallet Operations"),
                item("how", "How it works"),
                item("support", "Get support"),
            ],
        ),
        MenuKind::Assistants => (
            "Choose an assistant.".into(),
            vec![
                item("shopping", "Shopping Assistant"),
                item("profile", "Profile Assistant"),
            ],
        ),
        MenuKind::Wallet => (
            "Wallet operations.".into(),
            vec![
                item("balance", "Check balance"),
                item("topup", "Top up with $5"),
                item("addresses", "Wallet addresses"),
            ],
        ),
        MenuKind::Funding => (
            "Your wallet needs more USDC for this order.".into(),
            vec![
                item("fund", "Add Funds Now"),
                item("cancel", "Cancel order"),
                item("balance", "Check balance"),
            ],
        ),
        MenuKind::QuickBuy | MenuKind::Confirm => (String::new(), vec![]),
    }
}

/// A quick-buy action for a product: `buy:<ASIN>`, labelled with a shortened title.
pub fn buy_action(asin: &str, title: &str, price: Option<&str>) -> ActionItem {
    let price = price.map(|p| format!(" ${p}")).unwrap_or_default();
    let room = MAX_LABEL_CHARS.saturating_sub(4 + price.chars().count());
    let mut short: String = title.chars().take(room).collect();
    if title.chars().count() > room {
        short = format!(
            "{}…",
            short
                .chars()
                .take(room.saturating_sub(1))
                .collect::<String>()
        );
    }
    item(&format!("buy:{asin}"), &format!("Buy {short}{price}"))
}
