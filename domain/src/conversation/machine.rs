use super::cards::{Card, ProductCard, QuoteCard};
use super::menus::{ActionItem, Menu, MenuKind, actions_of};
use super::tools::{Asin, ProfileEdit, ToolCall, ToolError, ToolProposal};
use crate::checkout::SpendingLimits;
use crate::money::UsdcAmount;
use crate::pii::Pii;
use crate::ports::store::Key;
use crate::settlement::RequestId;
use serde::{Deserialize, Serialize};

/// After this much silence, the next message is greeted with the main menu.
pub const SILENCE_BEFORE_MAIN_MENU: u64 = 3 * 60 * 60;
/// A menu's buttons are honoured for this long.
pub const MENU_LIFETIME: u64 = 24 * 60 * 60;
/// Menus remembered per conversation (the latest one answers numeric replies).
const KEPT_MENUS: usize = 8;
/// The emoji that acknowledges each incoming message.
pub const ACK_EMOJI: &str = "👀";
/// The wallet menu's top-up amount.
pub const TOP_UP: UsdcAmount = UsdcAmount::from_usdc(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Context {
    #[default]
    Menu,
    Shopping,
    Profile,
}

/// A brain turn in progress: the request asked and the tool calls still running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub request: RequestId,
    pub running: Vec<String>,
    pub results: Vec<ToolResult>,
    /// What the user wrote to start this turn: a profile change must be in these words.
    #[serde(default)]
    pub said: Pii<String>,
    /// Whether some result of this turn is not in front of the user yet (an error, a
    /// profile read): then the brain is asked again; otherwise the turn ends at once.
    #[serde(default)]
    pub unpresented: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Conversation {
    pub context: Context,
    pub last_inbound_at: Option<u64>,
    pub menus: Vec<Menu>,
    pub next_menu: u64,
    pub next_request: u64,
    pub turn: Option<Turn>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InboundContent {
    Text(String),
    /// A button press: `coinbase.com/intent:1.0`.
    Intent {
        menu_id: String,
        action_id: String,
    },
    Reaction,
    TransactionReference {
        tx_hash: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbound {
    pub id: Key,
    pub content: InboundContent,
}

/// A tool's result as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResult {
    pub call_id: String,
    pub content: String,
    pub is_error: bool,
}

/// What a finished tool produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolOutcome {
    /// Text for the model (untrusted content is the brain adapter's to fence).
    pub content: String,
    pub is_error: bool,
    /// Products found: shown as a quick-buy menu without another model call.
    pub products: Vec<ProductCard>,
    /// The user already sees what this result says (product cards, a checkout's quote):
    /// when every result of a turn is so, the turn ends without another model call.
    #[serde(default)]
    pub presented: bool,
}

/// Something another machine wants the user to see, with buttons where it asks for a choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Presentation {
    /// A quote to confirm: the text summarises product, price, fee, total and network.
    Quote {
        text: String,
        /// Drawn above the confirmation menu where the channel can.
        card: Option<QuoteCard>,
    },
    /// A shortfall: the text says what is needed; the funding menu follows.
    NeedFunds {
        text: String,
    },
    Notice {
        text: String,
    },
    /// A card on its own: a funding request, a transaction, an order's progress.
    Card(Card),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    Inbound(Inbound),
    BrainAnswered {
        request: RequestId,
        text: Option<String>,
        proposals: Vec<ToolProposal>,
    },
    BrainFailed {
        request: RequestId,
        reason: String,
    },
    ToolFinished {
        request: RequestId,
        call_id: String,
        outcome: ToolOutcome,
    },
    Present(Presentation),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outgoing {
    Text(String),
    Actions(Menu),
    /// A structured message (see [`super::cards`]).
    Card(Card),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    React {
        to: Key,
        emoji: String,
    },
    Send(Outgoing),
    AskBrain {
        request: RequestId,
        context: Context,
        user_text: Option<String>,
        tool_results: Vec<ToolResult>,
    },
    RunTool {
        request: RequestId,
        call_id: String,
        call: ToolCall,
    },
    ClearHistory,
    /// Tool results the brain should see next time, though it is not asked now. The driver
    /// writes them to the history; nothing runs.
    Remember {
        tool_results: Vec<ToolResult>,
    },
    DeleteProfile,
    StartCheckout {
        asin: Asin,
    },
    ConfirmPurchase,
    DeclinePurchase,
    RequestFunding {
        amount: Option<UsdcAmount>,
    },
    CheckBalance,
    ShowWalletAddresses,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("answer to request {0:?} is stale")]
    StaleAnswer(RequestId),
}

pub const HELP_TEXT: &str = "I help you buy from Amazon.com and pay in USDC. Try \"search wireless earbuds\", then pick a product. Commands: /menu, /agents, /clear, /help.";
const HOW_TEXT: &str = "Tell me what you want, I find it on Amazon.com, you confirm the price, and I pay in USDC from your agent wallet. Nothing is paid without your confirmation.";
const SUPPORT_TEXT: &str = "For help with an order, reply with its order id and I will look it up.";

impl Conversation {
    pub fn handle(&mut self, now: u64, input: Input) -> Result<Vec<Effect>, Rejected> {
        let mut next = self.clone();
        let effects = next.apply(now, input)?;
        *self = next;
        Ok(effects)
    }

    fn request(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    fn menu(
        &mut self,
        now: u64,
        kind: MenuKind,
        description: String,
        actions: Vec<ActionItem>,
    ) -> Effect {
        self.next_menu += 1;
        let menu = Menu {
            id: format!("menu-{}", self.next_menu),
            kind,
            description,
            actions,
            expires_at: now + MENU_LIFETIME,
        };
        self.menus.push(menu.clone());
        if self.menus.len() > KEPT_MENUS {
            self.menus.remove(0);
        }
        Effect::Send(Outgoing::Actions(menu))
    }

    fn fixed_menu(&mut self, now: u64, kind: MenuKind) -> Effect {
        let (description, actions) = actions_of(kind);
        self.menu(now, kind, description, actions)
    }

    fn say(text: &str) -> Effect {
        Effect::Send(Outgoing::Text(text.to_owned()))
    }

    fn apply(&mut self, now: u64, input: Input) -> Result<Vec<Effect>, Rejected> {
        match input {
            Input::Inbound(inbound) => Ok(self.inbound(now, inbound)),
            Input::BrainAnswered {
                request,
                text,
                proposals,
            } => self.brain_answered(request, text, proposals),
            Input::BrainFailed { request, .. } => {
                self.finish_turn(request)?;
                Ok(vec![Self::say(
                    "Sorry, I could not think that through just now. Please try again in a moment.",
                )])
            }
            Input::ToolFinished {
                request,
                call_id,
                outcome,
            } => self.tool_finished(now, request, call_id, outcome),
            Input::Present(presentation) => Ok(self.present(now, presentation)),
        }
    }

    fn inbound(&mut self, now: u64, inbound: Inbound) -> Vec<Effect> {
        let mut effects = Vec::new();
        let first_or_after_silence = self
            .last_inbound_at
            .is_none_or(|last| now.saturating_sub(last) >= SILENCE_BEFORE_MAIN_MENU);
        self.last_inbound_at = Some(now);
        match inbound.content {
            InboundContent::Reaction => return effects,
            InboundContent::TransactionReference { .. } => {
                effects.push(Self::say(
                    "Thanks! I will continue as soon as the funds arrive.",
                ));
                return effects;
            }
            InboundContent::Intent { menu_id, action_id } => {
                effects.extend(self.intent(now, &menu_id, &action_id));
                return effects;
            }
            InboundContent::Text(text) => {
                effects.push(Effect::React {
                    to: inbound.id,
                    emoji: ACK_EMOJI.to_owned(),
                });
                if first_or_after_silence {
                    self.context = Context::Menu;
                    effects.push(self.fixed_menu(now, MenuKind::Main));
                    if is_greeting(&text) {
                        return effects;
                    }
                }
                effects.extend(self.text(now, text.trim()));
            }
        }
        effects
    }

    fn text(&mut self, now: u64, text: &str) -> Vec<Effect> {
        let lower = text.to_lowercase();
        match lower.as_str() {
            "/help" => return vec![Self::say(HELP_TEXT)],
            "/agents" | "/agent" => return vec![self.fixed_menu(now, MenuKind::Assistants)],
            "/menu" => {
                self.context = Context::Menu;
                return vec![self.fixed_menu(now, MenuKind::Main)];
            }
            "/clear" => {
                self.context = Context::Menu;
                self.turn = None;
                self.menus.clear();
                return vec![
                    Effect::ClearHistory,
                    Self::say("Done: I forgot our conversation. Send /menu to start again."),
                ];
            }
            _ => {}
        }
        // "2" selects the second action of the latest menu (the text fallback of a menu).
        if let Ok(n) = lower.parse::<usize>()
            && let Some(menu) = self.menus.last()
        {
            return match menu.actions.get(n.wrapping_sub(1)) {
                Some(action) if now < menu.expires_at => {
                    let (menu_id, action_id) = (menu.id.clone(), action.id.clone());
                    self.intent(now, &menu_id, &action_id)
                }
                Some(_) => vec![Self::say(
                    "That menu has expired. Send /menu for a fresh one.",
                )],
                None => vec![Self::say(&format!(
                    "Please reply with a number from 1 to {}.",
                    menu.actions.len()
                ))],
            };
        }
        // A clear yes or no answers the latest confirmation menu with its first or second
        // action: what that menu asks (a purchase, deleting the profile), nothing else.
        if let Some(menu) = self
            .menus
            .last()
            .filter(|m| m.kind == MenuKind::Confirm && now < m.expires_at)
        {
            let answer = if is_yes(&lower) {
                menu.actions.first()
            } else if is_no(&lower) {
                menu.actions.get(1)
            } else {
                None
            };
            if let Some(action) = answer {
                let (menu_id, action_id) = (menu.id.clone(), action.id.clone());
                return self.intent(now, &menu_id, &action_id);
            }
        }
        let request = self.request();
        self.turn = Some(Turn {
            request,
            running: vec![],
            results: vec![],
            said: Pii::new(text.to_owned()),
            unpresented: false,
        });
        vec![Effect::AskBrain {
            request,
            context: self.context,
            user_text: Some(text.to_owned()),
            tool_results: vec![],
        }]
    }

    fn intent(&mut self, now: u64, menu_id: &str, action_id: &str) -> Vec<Effect> {
        let Some(menu) = self.menus.iter().find(|m| m.id == menu_id) else {
            return vec![Self::say(
                "I did not send that menu. Send /menu for a fresh one.",
            )];
        };
        if now >= menu.expires_at {
            return vec![Self::say(
                "That menu has expired. Send /menu for a fresh one.",
            )];
        }
        if menu.action(action_id).is_none() {
            return vec![Self::say(
                "That option is not in the menu. Send /menu for a fresh one.",
            )];
        }
        let kind = menu.kind;
        if kind == MenuKind::Confirm {
            self.menus.retain(|m| m.id != menu_id);
        }
        match (kind, action_id) {
            (_, "shopping") => {
                self.context = Context::Shopping;
                vec![Self::say(
                    "Shopping assistant here. What are you looking for?",
                )]
            }
            (_, "profile") => {
                self.context = Context::Profile;
                vec![Self::say(
                    "Profile assistant here. Tell me your name, email and US shipping address, or ask what I have saved.",
                )]
            }
            (_, "wallet") => vec![self.fixed_menu(now, MenuKind::Wallet)],
            (_, "how") => vec![Self::say(HOW_TEXT)],
            (_, "support") => vec![Self::say(SUPPORT_TEXT)],
            (_, "balance") => vec![Effect::CheckBalance],
            (_, "addresses") => vec![Effect::ShowWalletAddresses],
            (_, "topup") => vec![Effect::RequestFunding {
                amount: Some(TOP_UP),
            }],
            (MenuKind::Funding, "fund") => vec![Effect::RequestFunding { amount: None }],
            (MenuKind::Funding, "cancel") => vec![Effect::DeclinePurchase],
            (MenuKind::Confirm, "confirm") => vec![Effect::ConfirmPurchase],
            (MenuKind::Confirm, "cancel") => vec![Effect::DeclinePurchase],
            (MenuKind::Confirm, "delete-profile") => vec![Effect::DeleteProfile],
            (MenuKind::Confirm, "keep-profile") => vec![Self::say("Kept your profile as it is.")],
            (MenuKind::QuickBuy, action) => match action.strip_prefix("buy:").map(Asin::parse) {
                Some(Ok(asin)) => {
                    self.context = Context::Shopping;
                    vec![Effect::StartCheckout { asin }]
                }
                _ => vec![Self::say("That option is not in the menu.")],
            },
            _ => vec![Self::say("That option is not in the menu.")],
        }
    }

    fn finish_turn(&mut self, request: RequestId) -> Result<Turn, Rejected> {
        match self.turn.take() {
            Some(turn) if turn.request == request => Ok(turn),
            other => {
                self.turn = other;
                Err(Rejected::StaleAnswer(request))
            }
        }
    }

    fn brain_answered(
        &mut self,
        request: RequestId,
        text: Option<String>,
        proposals: Vec<ToolProposal>,
    ) -> Result<Vec<Effect>, Rejected> {
        let mut turn = self.finish_turn(request)?;
        let mut effects = Vec::new();
        if let Some(text) = text.filter(|t| !t.trim().is_empty()) {
            effects.push(Self::say(text.trim()));
        }
        if proposals.is_empty() {
            return Ok(effects);
        }
        let request = self.request();
        turn.request = request;
        turn.running.clear();
        turn.results.clear();
        turn.unpresented = false;
        for proposal in proposals {
            let checked = ToolCall::from_proposal(&proposal).and_then(|call| match &call {
                ToolCall::EditProfile(edit) => {
                    in_own_words(edit, turn.said.expose()).map(|()| call)
                }
                ToolCall::SetSpendingLimits(limits) => {
                    amounts_in_own_words(limits, turn.said.expose()).map(|()| call)
                }
                _ => Ok(call),
            });
            match checked {
                Ok(call) => {
                    turn.running.push(proposal.id.clone());
                    effects.push(Effect::RunTool {
                        request,
                        call_id: proposal.id,
                        call,
                    });
                }
                Err(error) => {
                    turn.unpresented = true;
                    turn.results.push(ToolResult {
                        call_id: proposal.id,
                        content: error.to_string(),
                        is_error: true,
                    });
                }
            }
        }
        if turn.running.is_empty() {
            // Every proposal was invalid: the errors go straight back to the brain.
            effects.push(Effect::AskBrain {
                request,
                context: self.context,
                user_text: None,
                tool_results: turn.results.clone(),
            });
        }
        self.turn = Some(turn);
        Ok(effects)
    }

    fn tool_finished(
        &mut self,
        now: u64,
        request: RequestId,
        call_id: String,
        outcome: ToolOutcome,
    ) -> Result<Vec<Effect>, Rejected> {
        let Some(turn) = self
            .turn
            .as_mut()
            .filter(|t| t.request == request && t.running.contains(&call_id))
        else {
            return Err(Rejected::StaleAnswer(request));
        };
        turn.running.retain(|id| *id != call_id);
        turn.unpresented |= outcome.is_error || !outcome.presented;
        turn.results.push(ToolResult {
            call_id,
            content: outcome.content,
            is_error: outcome.is_error,
        });
        let mut effects = Vec::new();
        if !outcome.products.is_empty() {
            let shown: Vec<ProductCard> = outcome.products.iter().take(4).cloned().collect();
            effects.push(Effect::Send(Outgoing::Card(Card::Products(shown))));
            // Search results become a quick-buy menu at once: no second model call (seed defect 16).
            let actions = outcome
                .products
                .iter()
                .take(4)
                .map(|p| {
                    super::menus::buy_action(
                        &p.asin,
                        &p.title,
                        p.price.map(|a| a.to_string()).as_deref(),
                    )
                })
                .collect();
            effects.push(self.menu(
                now,
                MenuKind::QuickBuy,
                "Tap a product to get a quote:".into(),
                actions,
            ));
        }
        if let Some(turn) = self.turn.as_ref().filter(|t| t.running.is_empty()) {
            let results = turn.results.clone();
            if !turn.unpresented {
                // The user sees every result already: one model call was enough.
                self.turn = None;
                effects.push(Effect::Remember {
                    tool_results: results,
                });
                return Ok(effects);
            }
            let turn_said = turn.said.clone();
            let request = self.request();
            self.turn = Some(Turn {
                request,
                running: vec![],
                results: vec![],
                said: turn_said,
                unpresented: false,
            });
            effects.push(Effect::AskBrain {
                request,
                context: self.context,
                user_text: None,
                tool_results: results,
            });
        }
        Ok(effects)
    }

    fn present(&mut self, now: u64, presentation: Presentation) -> Vec<Effect> {
        match presentation {
            Presentation::Quote { text, card } => {
                let mut effects: Vec<Effect> = card
                    .map(|c| Effect::Send(Outgoing::Card(Card::Quote(c))))
                    .into_iter()
                    .collect();
                let actions = vec![
                    ActionItem {
                        id: "confirm".into(),
                        label: "Confirm and pay".into(),
                    },
                    ActionItem {
                        id: "cancel".into(),
                        label: "Cancel".into(),
                    },
                ];
                // A new quote replaces the one before it (the checkout it belonged to was
                // declined when this one started): the older quote's menu must not confirm
                // this purchase, whose price it never showed.
                self.menus.retain(|m| !is_purchase_confirmation(m));
                effects.push(self.menu(now, MenuKind::Confirm, text, actions));
                effects
            }
            Presentation::NeedFunds { text } => {
                let (_, actions) = actions_of(MenuKind::Funding);
                vec![self.menu(now, MenuKind::Funding, text, actions)]
            }
            Presentation::Notice { text } => vec![Self::say(&text)],
            Presentation::Card(card) => vec![Effect::Send(Outgoing::Card(card))],
        }
    }

    /// Asks the user to confirm deleting their profile (the `delete_profile` tool).
    pub fn ask_to_delete_profile(&mut self, now: u64) -> Effect {
        let actions = vec![
            ActionItem {
                id: "delete-profile".into(),
                label: "Delete my profile".into(),
            },
            ActionItem {
                id: "keep-profile".into(),
                label: "Keep it".into(),
            },
        ];
        self.menu(
            now,
            MenuKind::Confirm,
            "Delete your saved name, email and address? This cannot be undone.".into(),
            actions,
        )
    }
}

/// Accepts a profile edit only when every new value is in what the user wrote this turn
/// (letter case and spacing aside). A product title or a tool result that talks the model
/// into changing the shipping address therefore changes nothing: the user never wrote it.
fn in_own_words(edit: &ProfileEdit, said: &str) -> Result<(), ToolError> {
    let squash = |text: &str| {
        text.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let said = squash(said);
    let values = [
        ("name", edit.name.as_ref().map(|v| v.expose().to_owned())),
        ("email", edit.email.as_ref().map(|v| v.expose().to_owned())),
        (
            "address line",
            edit.line1.as_ref().map(|v| v.expose().to_owned()),
        ),
        (
            "address line 2",
            edit.line2.as_ref().map(|v| v.expose().to_owned()),
        ),
        ("city", edit.city.as_ref().map(|v| v.expose().to_owned())),
        ("state", edit.state.as_ref().map(|v| v.as_str().to_owned())),
        (
            "ZIP code",
            edit.postal_code.as_ref().map(|v| v.expose().to_owned()),
        ),
    ];
    for (field, value) in values {
        if let Some(value) = value
            && !said.contains(&squash(&value))
        {
            return Err(ToolError::NotTheUsersWords(field.to_owned()));
        }
    }
    Ok(())
}

/// Accepts new spending limits only when each amount is a number the user wrote this turn.
fn amounts_in_own_words(limits: &SpendingLimits, said: &str) -> Result<(), ToolError> {
    let written: Vec<UsdcAmount> = said
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|word| word.trim_matches('.').parse::<UsdcAmount>().ok())
        .collect();
    for (field, amount) in [
        ("per-order limit", limits.per_order),
        ("daily limit", limits.per_day),
    ] {
        if let Some(amount) = amount
            && !written.contains(&amount)
        {
            return Err(ToolError::NotTheUsersWords(field.to_owned()));
        }
    }
    Ok(())
}

/// A quote's confirmation menu (the other confirmation asks to delete the profile).
fn is_purchase_confirmation(menu: &Menu) -> bool {
    menu.kind == MenuKind::Confirm && menu.action("confirm").is_some()
}

fn is_greeting(text: &str) -> bool {
    matches!(
        text.trim().to_lowercase().trim_end_matches(['!', '.']),
        "hi" | "hello" | "hey" | "gm" | "start" | ""
    )
}

fn is_yes(text: &str) -> bool {
    matches!(
        text.trim_end_matches(['!', '.']),
        "yes" | "y" | "confirm" | "yes please" | "buy it" | "ok" | "okay"
    )
}

fn is_no(text: &str) -> bool {
    matches!(
        text.trim_end_matches(['!', '.']),
        "no" | "n" | "cancel" | "no thanks" | "stop"
    )
}
