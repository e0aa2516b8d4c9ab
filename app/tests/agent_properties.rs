//! Issue 7 at the driver level: random input sequences from two or three users, run through
//! the whole agent over real components (SQLite, the embedded EVM chain, the merchant's
//! order server over loopback HTTP, the offline brain) on a virtual clock, checked after
//! every step for the two properties the architecture promises:
//!
//! 1. **No payment without a matching confirmation** (ARCHITECTURE invariant 4).
//! 2. **No user reaches another user's data** (ARCHITECTURE invariant 5).
//!
//! and, cheaply, that money is conserved. Each case is a fresh sandbox world driven the way
//! the replay harness drives it: after each input, the agent's outbox and watchers and the
//! merchant's worker run until nothing is due, so a case is deterministic and shrinks.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use worldstore::agent::{Agent, CheckoutDoc, ConversationDoc, Mailbox, as_text};
use worldstore::replay::REPLAY_EPOCH;
use worldstore::sandbox::{SandboxConfig, SandboxPorts, SandboxWorld, latest_funding};
use worldstore_domain::conversation::{
    Card, InboundContent, Menu, MenuKind, Outgoing, QuoteCard, SILENCE_BEFORE_MAIN_MENU,
};
use worldstore_domain::money::UsdcAmount;
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::ports::store::{Key, MachineKind, Store};

/// A user of a case: who they are and what only they may see.
#[derive(Debug)]
struct Persona {
    key: &'static str,
    name: &'static str,
    email: &'static str,
    street: &'static str,
    profile: &'static str,
}

const PERSONAS: [Persona; 3] = [
    Persona {
        key: "user-a",
        name: "Ann Archer",
        email: "ann.archer@example.com",
        street: "11 Alder Ave",
        profile: "name: Ann Archer, email: ann.archer@example.com, address: 11 Alder Ave, Austin, TX 78701",
    },
    Persona {
        key: "user-b",
        name: "Bo Baxter",
        email: "bo.baxter@example.net",
        street: "22 Birch Blvd",
        profile: "name: Bo Baxter, email: bo.baxter@example.net, address: 22 Birch Blvd, Boston, MA 02108",
    },
    Persona {
        key: "user-c",
        name: "Cy Carver",
        email: "cy.carver@example.org",
        street: "33 Cedar Ct",
        profile: "name: Cy Carver, email: cy.carver@example.org, address: 33 Cedar Ct, Chicago, IL 60601",
    },
];

/// Which menu a button press names.
#[derive(Debug, Clone)]
enum MenuPick {
    /// The latest menu this user was sent.
    OwnLatest,
    /// Any menu this user was sent (often stale: answered, replaced or cleared).
    OwnAny(usize),
    /// A menu another user was sent.
    Foreign(usize, usize),
    /// A menu nobody was sent.
    MadeUp,
}

/// Which action of that menu.
#[derive(Debug, Clone)]
enum ActionPick {
    Nth(usize),
    /// "confirm", whether or not the menu has it.
    Confirm,
    /// A quick-buy id that is in no menu.
    Bogus,
}

/// One thing a user does.
#[derive(Debug, Clone)]
enum Input {
    Say(&'static str),
    /// The user's own profile line.
    Profile,
    /// A button press.
    Tap(MenuPick, ActionPick),
    /// Approves the latest funding request in their own wallet (nothing when there is none).
    Approve,
    /// Asks about an order of another user (`order <id>` or `where is order <id>`).
    OtherUsersOrder {
        other: usize,
        which: usize,
        plain: bool,
    },
    /// Free text naming another user's name or email.
    MentionOther {
        other: usize,
        email: bool,
    },
    /// Time passes (not a message; `user` is ignored).
    Wait(u64),
}

#[derive(Debug, Clone)]
struct Scenario {
    /// Faucet per user (its length is the number of users).
    faucets: Vec<u64>,
    steps: Vec<(usize, Input)>,
}

fn input() -> impl Strategy<Value = Input> {
    let say = |texts: &'static [&'static str]| proptest::sample::select(texts).prop_map(Input::Say);
    let menu = prop_oneof![
        3 => Just(MenuPick::OwnLatest),
        2 => any::<usize>().prop_map(MenuPick::OwnAny),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(u, m)| MenuPick::Foreign(u, m)),
        1 => Just(MenuPick::MadeUp),
    ];
    let action = prop_oneof![
        3 => (0usize..4).prop_map(ActionPick::Nth),
        2 => Just(ActionPick::Confirm),
        1 => Just(ActionPick::Bogus),
    ];
    prop_oneof![
        5 => say(&["search usb-c cable", "search charger", "search notebook", "search nothing-like-it"]),
        5 => say(&["buy 1", "buy 2", "buy 3", "buy 5"]),
        2 => say(&["buy B0THY26GXD", "buy B054PE208C", "buy B0BSZBC3R5", "buy B000000000"]),
        5 => say(&["yes", "ok", "Yes!", "confirm"]),
        2 => say(&["no", "cancel"]),
        3 => say(&["1", "2", "3", "4", "5", "6"]),
        5 => (menu, action).prop_map(|(m, a)| Input::Tap(m, a)),
        2 => Just(Input::Approve),
        5 => Just(Input::Profile),
        2 => say(&["my orders", "where is my order", "balance", "my profile"]),
        1 => say(&["/clear", "/menu", "delete my profile", "hi", "what can you do?"]),
        2 => (any::<usize>(), any::<usize>(), any::<bool>())
            .prop_map(|(other, which, plain)| Input::OtherUsersOrder { other, which, plain }),
        1 => (any::<usize>(), any::<bool>())
            .prop_map(|(other, email)| Input::MentionOther { other, email }),
        2 => (1u64..=1800).prop_map(Input::Wait),
    ]
}

/// A whole purchase by one user (profile, search, pick, yes), so that random cases reach
/// payments often; other users' inputs and time may fall between its steps.
fn purchase(user: usize) -> impl Strategy<Value = Vec<(usize, Input)>> {
    let search = proptest::sample::select(&["search usb-c cable", "search charger"][..]);
    let pick = proptest::sample::select(&["buy 1", "buy 2", "buy 3"][..]);
    (search, pick).prop_map(move |(search, pick)| {
        vec![
            (user, Input::Profile),
            (user, Input::Say(search)),
            (user, Input::Say(pick)),
            (user, Input::Say("yes")),
        ]
    })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    proptest::collection::vec(proptest::sample::select(vec![0u64, 5, 30, 100, 100]), 2..=3)
        .prop_flat_map(|faucets| {
            let users = faucets.len();
            let chunk = prop_oneof![
                4 => (0..users, input()).prop_map(|step| vec![step]),
                1 => (0..users).prop_flat_map(purchase),
            ];
            let steps = proptest::collection::vec(chunk, 4..=16)
                .prop_map(|chunks| chunks.into_iter().flatten().collect::<Vec<_>>());
            (Just(faucets), steps)
        })
        .prop_map(|(faucets, steps)| Scenario { faucets, steps })
}

/// What the test knows about one user, from what it sent and what the user was shown.
struct UserModel {
    persona: &'static Persona,
    key: Key,
    /// Faucet plus every approved funding: all that ever reached the agent wallet.
    funded: UsdcAmount,
    /// Quotes (by merchant order id) this user confirmed while they were valid, with the
    /// total the quote showed.
    confirmed: BTreeMap<String, UsdcAmount>,
    /// Ids of other users' orders this user typed (the "you have no order X" answer may
    /// repeat them).
    typed_foreign_ids: BTreeSet<String>,
    /// Personal data and addresses only this user may see (lowercase).
    secrets: Vec<String>,
}

struct Case {
    world: SandboxWorld,
    agent: Agent<SandboxPorts<Mailbox>>,
    mail: Mailbox,
    clock: Arc<AtomicU64>,
    users: Vec<UserModel>,
    treasury_at_start: UsdcAmount,
    step: usize,
    dir: std::path::PathBuf,
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

fn usdc(value: alloy_primitives::U256) -> Result<UsdcAmount, TestCaseError> {
    UsdcAmount::from_u256(value).ok_or_else(|| fail("a balance beyond u128"))
}

/// Whether `needle` occurs in `hay` as a whole token (not inside a longer id or word).
fn mentions(hay: &str, needle: &str) -> bool {
    let part = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    hay.match_indices(needle).any(|(at, _)| {
        let before = hay[..at].chars().next_back();
        let after = hay[at + needle.len()..].chars().next();
        !before.is_some_and(part) && !after.is_some_and(part)
    })
}

/// A confirmation word, as the conversation reads one (a numbered reply aside).
fn is_yes(text: &str) -> bool {
    matches!(
        text.trim().to_lowercase().trim_end_matches(['!', '.']),
        "yes" | "y" | "confirm" | "yes please" | "buy it" | "ok" | "okay"
    )
}

/// The menus sent to `user`, oldest first, each Confirm menu with the quote card drawn
/// right above it (none for a confirmation that is not about a purchase).
fn menus_sent(messages: &[Outgoing]) -> Vec<(Menu, Option<QuoteCard>)> {
    let mut menus = Vec::new();
    let mut previous: Option<&Outgoing> = None;
    for message in messages {
        if let Outgoing::Actions(menu) = message {
            let quote = match previous {
                Some(Outgoing::Card(Card::Quote(q))) if menu.kind == MenuKind::Confirm => {
                    Some(q.clone())
                }
                _ => None,
            };
            menus.push((menu.clone(), quote));
        }
        previous = Some(message);
    }
    menus
}

impl Case {
    async fn start(faucets: &[u64]) -> Result<Self, TestCaseError> {
        static CASES: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "worldstore-agent-properties-{}-{}",
            std::process::id(),
            CASES.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let clock = Arc::new(AtomicU64::new(REPLAY_EPOCH));
        let mut config = SandboxConfig::new(dir.clone());
        let now = clock.clone();
        config.clock = Some(Arc::new(move || now.load(Ordering::SeqCst)));
        config.merchant_in_background = false;
        config.ships_after = 60;
        config.delivered_after = 600;
        let world = SandboxWorld::start(config).await.map_err(fail)?;
        let mail = Mailbox::new();
        let agent = world.agent(mail.clone()).await.map_err(fail)?;
        let treasury_at_start = usdc(
            world
                .chain
                .usdc_balance(world.treasury)
                .await
                .map_err(fail)?,
        )?;
        let mut users = Vec::new();
        for (persona, faucet) in PERSONAS.iter().zip(faucets) {
            let key = Key::parse(persona.key).map_err(fail)?;
            let faucet = UsdcAmount::from_usdc(*faucet);
            world
                .welcome_with(&agent, &key, faucet)
                .await
                .map_err(fail)?;
            let wallet = agent.wallet_address(&key).map_err(fail)?;
            let own = world.own_wallet(&key).map_err(fail)?.address();
            let secrets = vec![
                persona.name.to_lowercase(),
                persona.email.to_lowercase(),
                persona.street.to_lowercase(),
                wallet.to_checksum(None).to_lowercase(),
                own.to_checksum(None).to_lowercase(),
            ];
            users.push(UserModel {
                persona,
                key,
                funded: faucet,
                confirmed: BTreeMap::new(),
                typed_foreign_ids: BTreeSet::new(),
                secrets,
            });
        }
        Ok(Self {
            world,
            agent,
            mail,
            clock,
            users,
            treasury_at_start,
            step: 0,
            dir,
        })
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Runs the agent's and the merchant's due work until neither has any.
    async fn settle(&self) -> Result<(), TestCaseError> {
        loop {
            let agent = self.agent.run_until_idle().await.map_err(fail)?;
            let merchant = self.world.merchant_round().await.map_err(fail)?;
            if agent + merchant == 0 {
                return Ok(());
            }
        }
    }

    fn messages(&self, user: usize) -> Vec<Outgoing> {
        self.mail.messages_to(&self.users[user].key)
    }

    /// The merchant order ids and checkout ids of `user`: from their checkouts in the store
    /// and from the quotes they were shown.
    async fn order_ids(&self, user: usize) -> Result<Vec<String>, TestCaseError> {
        let key = &self.users[user].key;
        let mut ids = BTreeSet::new();
        let records = self
            .agent
            .store()
            .machines_of_user(MachineKind::Checkout, key)
            .await
            .map_err(fail)?;
        for record in records {
            ids.insert(record.id.to_string());
            if let Some(order) = record.index.order_id {
                ids.insert(order.to_string());
            }
        }
        for message in self.messages(user) {
            if let Outgoing::Card(Card::Quote(q)) = message {
                ids.insert(q.order_id);
            }
        }
        Ok(ids.into_iter().collect())
    }

    /// The quote `content` confirms if the conversation reads it as the answer to that
    /// quote's confirmation menu while menu and quote are valid; `None` otherwise.
    ///
    /// Which menu a "yes" or a number answers is read from the conversation's own list of
    /// live menus (the latest one answers); which quote a Confirm menu is about is read from
    /// what the user was actually sent: the quote card drawn right above it.
    async fn quote_confirmed_by(
        &self,
        user: usize,
        content: &InboundContent,
    ) -> Result<Option<QuoteCard>, TestCaseError> {
        let now = self.now();
        let record = self
            .agent
            .store()
            .load_machine(MachineKind::Conversation, &self.users[user].key)
            .await
            .map_err(fail)?;
        let conversation = match &record {
            Some(r) => ConversationDoc::decode(r).map_err(fail)?.machine,
            None => return Ok(None),
        };
        let answered: Option<(&Menu, &str)> = match content {
            InboundContent::Text(text) => {
                let greeted = conversation
                    .last_inbound_at
                    .is_none_or(|last| now.saturating_sub(last) >= SILENCE_BEFORE_MAIN_MENU);
                let latest = conversation.menus.last();
                match (greeted, latest, text.trim().parse::<usize>()) {
                    // The main menu greets first and becomes the latest menu.
                    (true, ..) | (false, None, _) => None,
                    (false, Some(menu), Ok(n)) => menu
                        .actions
                        .get(n.wrapping_sub(1))
                        .map(|a| (menu, a.id.as_str())),
                    (false, Some(menu), Err(_)) => is_yes(text).then_some((menu, "confirm")),
                }
            }
            InboundContent::Intent { menu_id, action_id } => conversation
                .menus
                .iter()
                .find(|m| m.id == *menu_id)
                .filter(|m| m.action(action_id).is_some())
                .map(|m| (m, action_id.as_str())),
            _ => None,
        };
        let Some((menu, "confirm")) = answered else {
            return Ok(None);
        };
        if menu.kind != MenuKind::Confirm || now >= menu.expires_at {
            return Ok(None);
        }
        let quote = menus_sent(&self.messages(user))
            .into_iter()
            .find(|(sent, _)| sent.id == menu.id)
            .and_then(|(_, quote)| quote);
        Ok(quote.filter(|q| q.expires_at.is_none_or(|at| now < at)))
    }

    /// What `input` sends for `user` now, or `None` for inputs that are not a message.
    async fn content_of(
        &mut self,
        user: usize,
        input: &Input,
    ) -> Result<Option<InboundContent>, TestCaseError> {
        let others: Vec<usize> = (0..self.users.len()).filter(|u| *u != user).collect();
        Ok(Some(match input {
            Input::Say(text) => InboundContent::Text((*text).to_owned()),
            Input::Profile => InboundContent::Text(self.users[user].persona.profile.to_owned()),
            Input::Tap(pick, action) => {
                let own = menus_sent(&self.messages(user));
                let menu = match pick {
                    MenuPick::OwnLatest => own.last().map(|(m, _)| m.clone()),
                    MenuPick::OwnAny(i) => own.get(i % own.len().max(1)).map(|(m, _)| m.clone()),
                    MenuPick::Foreign(u, i) => {
                        let theirs = menus_sent(&self.messages(others[u % others.len()]));
                        theirs.get(i % theirs.len().max(1)).map(|(m, _)| m.clone())
                    }
                    MenuPick::MadeUp => None,
                };
                let menu_id = menu
                    .as_ref()
                    .map_or("menu-999".to_owned(), |m| m.id.clone());
                let action_id = match (action, &menu) {
                    (ActionPick::Nth(i), Some(m)) if !m.actions.is_empty() => {
                        m.actions[i % m.actions.len()].id.clone()
                    }
                    (ActionPick::Bogus, _) => "buy:B0THY26GXD".to_owned(),
                    _ => "confirm".to_owned(),
                };
                InboundContent::Intent { menu_id, action_id }
            }
            Input::OtherUsersOrder {
                other,
                which,
                plain,
            } => {
                let other = others[other % others.len()];
                let ids = self.order_ids(other).await?;
                let id = match ids.get(which % ids.len().max(1)) {
                    Some(id) => id.clone(),
                    None => format!("co-{}-1", self.users[other].key),
                };
                self.users[user].typed_foreign_ids.insert(id.to_lowercase());
                let text = if *plain {
                    format!("order {id}")
                } else {
                    format!("where is order {id}")
                };
                InboundContent::Text(text)
            }
            Input::MentionOther { other, email } => {
                let persona = self.users[others[other % others.len()]].persona;
                InboundContent::Text(if *email {
                    format!("please send my order to {} instead", persona.email)
                } else {
                    format!("is {} a customer here?", persona.name)
                })
            }
            Input::Approve | Input::Wait(_) => return Ok(None),
        }))
    }

    /// Performs one step, settles, and checks every property; returns how many orders are
    /// paid so far.
    async fn act(&mut self, user: usize, input: &Input) -> Result<usize, TestCaseError> {
        self.step += 1;
        match input {
            Input::Wait(seconds) => {
                self.clock.fetch_add(*seconds, Ordering::SeqCst);
            }
            Input::Approve => {
                let key = self.users[user].key.clone();
                if let Some(request) = latest_funding(&self.mail.messages_to(&key)) {
                    self.world
                        .approve(&self.agent, &key, request.amount)
                        .await
                        .map_err(fail)?;
                    let funded = &mut self.users[user].funded;
                    *funded = funded
                        .checked_add(request.amount)
                        .ok_or_else(|| fail("overflow"))?;
                }
            }
            _ => {
                let Some(content) = self.content_of(user, input).await? else {
                    return Err(fail("a message input without content"));
                };
                let confirms = self.quote_confirmed_by(user, &content).await?;
                let key = self.users[user].key.clone();
                let id = format!("prop-{}", self.step);
                self.agent.receive(&key, &id, content).await.map_err(fail)?;
                if let Some(quote) = confirms {
                    self.users[user]
                        .confirmed
                        .insert(quote.order_id.clone(), quote.total);
                }
            }
        }
        self.settle().await?;
        let paid = self.check_payments().await?;
        self.check_privacy().await?;
        Ok(paid)
    }

    /// **Property 1, no payment without a matching confirmation.** Read from the chain and
    /// the store, not from what the agent said: each agent wallet has spent exactly what
    /// its paid checkouts total, every paid checkout is for a quote that its own user
    /// confirmed (by "yes", a number or a button answering that quote's confirmation menu
    /// while it was valid) for exactly the total that quote showed, and no quote is paid
    /// twice. With it, money is conserved: what the wallets lack, the treasury gained.
    async fn check_payments(&self) -> Result<usize, TestCaseError> {
        let mut spent_by_all = UsdcAmount::ZERO;
        let mut paid_by_all = 0;
        for user in &self.users {
            let address = self.agent.wallet_address(&user.key).map_err(fail)?;
            let balance = usdc(self.world.chain.usdc_balance(address).await.map_err(fail)?)?;
            let spent = user.funded.checked_sub(balance).ok_or_else(|| {
                fail(format!(
                    "{} holds {balance} USDC, more than the {} USDC ever sent to it",
                    user.key, user.funded
                ))
            })?;
            let mut paid_orders = BTreeSet::new();
            let mut kept = UsdcAmount::ZERO;
            let records = self
                .agent
                .store()
                .machines_of_user(MachineKind::Checkout, &user.key)
                .await
                .map_err(fail)?;
            for record in records {
                let status = record.index.status.as_str();
                if !["paid", "shipped", "delivered", "refunded"].contains(&status) {
                    continue;
                }
                let doc = CheckoutDoc::decode(&record).map_err(fail)?;
                let quote = doc
                    .machine
                    .quote()
                    .ok_or_else(|| fail(format!("{} is {status} without a quote", record.id)))?;
                let order = quote.order_id.to_string();
                prop_assert_eq!(
                    user.confirmed.get(&order),
                    Some(&quote.total),
                    "{} paid order {} ({} USDC) without confirming that quote; confirmed: {:?}",
                    user.key,
                    &order,
                    quote.total,
                    user.confirmed
                );
                prop_assert!(
                    paid_orders.insert(order.clone()),
                    "order {} paid twice",
                    &order
                );
                if status != "refunded" {
                    kept = kept
                        .checked_add(quote.total)
                        .ok_or_else(|| fail("overflow"))?;
                }
            }
            prop_assert_eq!(
                spent,
                kept,
                "{}'s agent wallet spent {} USDC on chain, its paid checkouts total {} USDC",
                user.key,
                &spent,
                &kept
            );
            paid_by_all += paid_orders.len();
            spent_by_all = spent_by_all
                .checked_add(spent)
                .ok_or_else(|| fail("overflow"))?;
        }
        let treasury = usdc(
            self.world
                .chain
                .usdc_balance(self.world.treasury)
                .await
                .map_err(fail)?,
        )?;
        prop_assert_eq!(
            treasury.checked_sub(self.treasury_at_start),
            Some(spent_by_all),
            "the treasury gained other than what the agent wallets spent"
        );
        Ok(paid_by_all)
    }

    /// **Property 2, no cross-user data.** Nothing sent to a user (as text or in a card's
    /// fields) names another user's name, email, street, agent or own wallet, order id or
    /// checkout id. The one exception is an id the user typed themselves, echoed only in
    /// "you have no order <id>", which is exactly what a missing order gets: someone
    /// else's order is indistinguishable from none.
    async fn check_privacy(&self) -> Result<(), TestCaseError> {
        let mut ids = Vec::new();
        for user in 0..self.users.len() {
            ids.push(self.order_ids(user).await?);
        }
        for (reader, model) in self.users.iter().enumerate() {
            for message in self.messages(reader) {
                let text = as_text(&message).to_lowercase();
                let fields = serde_json::to_string(&message)
                    .map_err(fail)?
                    .to_lowercase();
                for (owner, other) in self.users.iter().enumerate() {
                    if owner == reader {
                        continue;
                    }
                    let owner_ids = ids[owner].iter().map(|id| id.to_lowercase());
                    for secret in other.secrets.iter().cloned().chain(owner_ids) {
                        if !mentions(&text, &secret) && !mentions(&fields, &secret) {
                            continue;
                        }
                        let echoed = model.typed_foreign_ids.contains(&secret)
                            && text.contains(&format!("you have no order {secret}"))
                            && !text.contains(&format!("order {secret}:"));
                        prop_assert!(
                            echoed,
                            "{} was sent {}'s {:?}:\n{}",
                            model.key,
                            other.key,
                            &secret,
                            as_text(&message)
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `scenario` in a fresh world, checking after every step; returns how many orders
/// were paid in the end.
fn run(scenario: &Scenario) -> Result<usize, TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    runtime.block_on(async {
        let mut case = Case::start(&scenario.faucets).await?;
        let mut paid = 0;
        for (user, input) in &scenario.steps {
            paid = case.act(*user, input).await?;
        }
        if std::env::var_os("AGENT_PROPERTIES_STATS").is_some() {
            eprintln!("case: {} steps, {paid} paid", scenario.steps.len());
        }
        Ok(paid)
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        // 32 worlds take seconds; PROPTEST_CASES=1000 for a longer hunt.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(32),
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    })]

    /// Whatever two or three users send, in any order and at any pace, no payment leaves an
    /// agent wallet without its user's confirmation of that exact quote, and no user is
    /// shown another user's data.
    #[test]
    fn no_payment_without_its_confirmation_and_no_user_sees_another_users_data(
        scenario in scenario()
    ) {
        run(&scenario)?;
    }
}

/// The scripted path the random cases are made of: a confirmed purchase is seen as paid
/// (on chain and in the store) and passes every check; the harness is not blind.
#[test]
fn a_confirmed_purchase_is_observed_as_paid_and_passes_the_checks() {
    let steps = vec![
        (0, Input::Profile),
        (0, Input::Say("search usb-c cable")),
        (0, Input::Say("buy 1")),
        (
            1,
            Input::OtherUsersOrder {
                other: 0,
                which: 0,
                plain: true,
            },
        ),
        (0, Input::Say("yes")),
        (
            1,
            Input::OtherUsersOrder {
                other: 0,
                which: 1,
                plain: true,
            },
        ),
    ];
    let paid = run(&Scenario {
        faucets: vec![100, 0],
        steps,
    })
    .unwrap();
    assert_eq!(paid, 1);
}

/// Found by the property (shrunk case): with a quote on screen, the user asks to delete
/// their profile and answers the deletion question "yes". That "yes" paid for the quote.
#[test]
fn a_yes_to_the_profile_deletion_question_pays_for_nothing() {
    let steps = vec![
        (1, Input::Profile),
        (1, Input::Say("buy B0THY26GXD")),
        (1, Input::Say("delete my profile")),
        (1, Input::Say("yes")),
    ];
    let paid = run(&Scenario {
        faucets: vec![5, 100],
        steps,
    })
    .unwrap();
    assert_eq!(paid, 0);
}

/// A quote replaced by a newer one: a tap on the older quote's "Confirm and pay" must not
/// pay the newer quote, whose price that menu never showed.
#[test]
fn confirming_a_replaced_quote_pays_for_nothing() {
    let steps = vec![
        (0, Input::Profile),                   // main menu (menu-1)
        (0, Input::Say("search usb-c cable")), // quick-buy menu (menu-2)
        (0, Input::Say("buy 1")),              // quote 1 and its confirmation (menu-3)
        (0, Input::Say("buy 2")),              // quote 2 and its confirmation (menu-4)
        (0, Input::Tap(MenuPick::OwnAny(2), ActionPick::Confirm)),
    ];
    let paid = run(&Scenario {
        faucets: vec![100, 0],
        steps,
    })
    .unwrap();
    assert_eq!(paid, 0);
}

/// Found by the property (shrunk case): the second quote request is still waiting in the
/// outbox (retried later) when the user taps the first quote's "Confirm and pay". The
/// confirmation queued behind that request on the user's ordering key and, once the new
/// quote arrived, was applied to it: a quote the user had not seen was paid.
#[test]
fn a_confirmation_given_before_a_newer_quote_arrives_does_not_pay_that_quote() {
    let steps = vec![
        (1, Input::Say("search usb-c cable")),
        (1, Input::Profile),
        (1, Input::Say("buy 1")),
        (1, Input::Say("buy 1")),
        (1, Input::Tap(MenuPick::OwnLatest, ActionPick::Confirm)),
        (0, Input::Wait(600)),
    ];
    let paid = run(&Scenario {
        faucets: vec![0, 100],
        steps,
    })
    .unwrap();
    assert_eq!(paid, 0);
}
