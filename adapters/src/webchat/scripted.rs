//! A scripted stand-in for the agent, for exercising the page and the protocol without the
//! real conversation machine (the `webchat_scripted` example and the browser harness).
//!
//! | user sends | it delivers |
//! |---|---|
//! | `search <words>` | a text, a products card (one title is hostile HTML) and a quick-buy menu |
//! | intent `buy:<asin>` | a quote card and a confirm menu (`confirm`, `cancel`) |
//! | intent `confirm` | a payment transaction and order progress paid, shipped, delivered; user `demo-unfunded` instead gets a funding card first |
//! | intent `cancel` | a text |
//! | `fund` | a funding card |
//! | approve `<request id>` | a funding transaction and "Funds received: resumed"; a pending order then completes |
//! | `markdown` | a text exercising bold, links, line breaks and escaping |
//! | `/drop` | closes the user's sockets, then a text that waits in the log for the reconnect |
//! | anything else | the main menu |
//!
//! Message ids it has already answered are ignored, as the real agent does.

use super::{WebChat, WebEvent, WebInbound};
use alloy_primitives::{B256, address};
use std::collections::{HashMap, HashSet};
use tokio::sync::mpsc;
use worldstore_domain::UsdcAmount;
use worldstore_domain::conversation::menus::{actions_of, buy_action};
use worldstore_domain::conversation::{
    ActionItem, Card, FundingRequest, InboundContent, Menu, MenuKind, OrderProgress, OrderStage,
    Outgoing, ProductCard, QuoteCard, TransactionPurpose, TransactionRef,
};
use worldstore_domain::network::Network;
use worldstore_domain::ports::store::Key;

/// The user whose wallet is short: confirming first asks for funds.
pub const UNFUNDED_USER: &str = "demo-unfunded";
/// Far in the future: scripted menus never expire.
const NEVER: u64 = 4_102_444_800;

#[derive(Default)]
struct UserScript {
    menus: u64,
    funding: u64,
    txs: u8,
    chosen: Option<ProductCard>,
    quote_order: Option<String>,
    pending_order: Option<String>,
}

/// Answers inbound events until the channel's sender side is gone.
pub async fn run(chat: WebChat, mut inbound: mpsc::Receiver<WebInbound>) {
    let mut seen: HashSet<Key> = HashSet::new();
    let mut users: HashMap<Key, UserScript> = HashMap::new();
    while let Some(event) = inbound.recv().await {
        if !seen.insert(event.message_id.clone()) {
            continue;
        }
        let script = users.entry(event.user.clone()).or_default();
        let outgoing = if event.event == WebEvent::Content(InboundContent::Text("/drop".into())) {
            // Closes the user's sockets server-side; the message then waits in the log.
            chat.disconnect(&event.user);
            vec![Outgoing::Text(
                "The server closed your connection; this message waited for you.".into(),
            )]
        } else {
            answer(script, &event)
        };
        for outgoing in outgoing {
            if let Err(e) = chat.deliver(&event.user, &outgoing) {
                tracing::error!(error = %e, "scripted responder could not deliver");
            }
        }
    }
}

/// The catalogue the script searches: the last title is hostile on purpose.
pub fn products() -> Vec<ProductCard> {
    let png = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='96' height='96'%3E%3Crect width='96' height='96' rx='12' fill='%23cfe3ff'/%3E%3Ccircle cx='48' cy='48' r='22' fill='%23346bd1'/%3E%3C/svg%3E";
    vec![
        ProductCard {
            asin: "B0SCRIPT01".into(),
            title: "Aurora Wireless Earbuds, 30h battery".into(),
            price: Some(UsdcAmount::from_atomic(24_990_000)),
            image: Some(png.into()),
            rating: Some("4.6".into()),
            reviews: Some(1_287),
        },
        ProductCard {
            asin: "B0SCRIPT02".into(),
            title: "Pulse Sport Earbuds & Case".into(),
            price: Some(UsdcAmount::from_atomic(39_000_000)),
            image: None,
            rating: Some("4.1".into()),
            reviews: Some(312),
        },
        ProductCard {
            asin: "B0SCRIPT03".into(),
            title:
                "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=1</script> **Bold?**"
                    .into(),
            price: None,
            image: Some("javascript:window.__xss=1".into()),
            rating: None,
            reviews: None,
        },
    ]
}

fn menu(
    script: &mut UserScript,
    kind: MenuKind,
    description: &str,
    actions: Vec<ActionItem>,
) -> Outgoing {
    script.menus += 1;
    Outgoing::Actions(Menu {
        id: format!("menu-{}", script.menus),
        kind,
        description: description.to_owned(),
        actions,
        expires_at: NEVER,
    })
}

fn tx(script: &mut UserScript, purpose: TransactionPurpose, amount: UsdcAmount) -> Outgoing {
    script.txs = script.txs.wrapping_add(1);
    let mut hash = [0xab_u8; 32];
    hash[31] = script.txs;
    Outgoing::Card(Card::Transaction(TransactionRef {
        network: Network::BaseSepolia,
        tx_hash: B256::from(hash),
        purpose,
        amount: Some(amount),
    }))
}

fn order(order_id: &str, title: &str, stage: OrderStage, detail: Option<&str>) -> Outgoing {
    Outgoing::Card(Card::Order(OrderProgress {
        order_id: order_id.to_owned(),
        title: Some(title.to_owned()),
        stage,
        detail: detail.map(str::to_owned),
    }))
}

fn pay(script: &mut UserScript, order_id: &str) -> Vec<Outgoing> {
    let product = script.chosen.clone().unwrap_or_default();
    let total = product.price.unwrap_or(UsdcAmount::from_usdc(1));
    vec![
        Outgoing::Text(format!("Paid **{total} USDC**. Your order is placed.")),
        tx(script, TransactionPurpose::Payment, total),
        order(order_id, &product.title, OrderStage::Paid, None),
        order(
            order_id,
            &product.title,
            OrderStage::Shipped,
            Some("UPS 1Z999AA10123456784"),
        ),
        order(order_id, &product.title, OrderStage::Delivered, None),
    ]
}

fn answer(script: &mut UserScript, event: &WebInbound) -> Vec<Outgoing> {
    match &event.event {
        WebEvent::Content(InboundContent::Text(text)) => answer_text(script, text),
        WebEvent::Content(InboundContent::Intent { action_id, .. }) => {
            answer_intent(script, &event.user, action_id)
        }
        WebEvent::Content(_) => vec![],
        WebEvent::ApproveFunding { request_id } => {
            let mut out = vec![
                tx(
                    script,
                    TransactionPurpose::Funding,
                    UsdcAmount::from_usdc(50),
                ),
                Outgoing::Text(format!(
                    "Funds received for {request_id}: resumed your order."
                )),
            ];
            if let Some(order_id) = script.pending_order.take() {
                out.extend(pay(script, &order_id));
            }
            out
        }
    }
}

fn answer_text(script: &mut UserScript, text: &str) -> Vec<Outgoing> {
    let lower = text.to_lowercase();
    if let Some(query) = lower.strip_prefix("search") {
        let products = products();
        let actions = products
            .iter()
            .map(|p| {
                let price = p.price.map(|a| a.to_string());
                buy_action(&p.asin, &p.title, price.as_deref())
            })
            .collect();
        return vec![
            Outgoing::Text(format!("Here is what I found for **{}**:", query.trim())),
            Outgoing::Card(Card::Products(products)),
            menu(script, MenuKind::QuickBuy, "Tap to buy:", actions),
        ];
    }
    if lower == "fund" {
        script.funding += 1;
        return vec![
            Outgoing::Text("Add funds to your agent wallet:".into()),
            funding(script),
        ];
    }
    if lower == "markdown" {
        return vec![Outgoing::Text(
            "**Bold** and [a link](https://example.com/help)\nsecond line <b>not bold</b> \
             [bad](javascript:alert(1))"
                .into(),
        )];
    }
    let (description, actions) = actions_of(MenuKind::Main);
    vec![menu(script, MenuKind::Main, &description, actions)]
}

fn funding(script: &UserScript) -> Outgoing {
    Outgoing::Card(Card::Funding(FundingRequest {
        id: format!("fund-{}", script.funding),
        from: None,
        to: address!("0x1111111111111111111111111111111111111111"),
        amount: UsdcAmount::from_usdc(50),
        network: Network::BaseSepolia,
        token: Network::BaseSepolia.usdc().address,
    }))
}

fn answer_intent(script: &mut UserScript, user: &Key, action_id: &str) -> Vec<Outgoing> {
    if let Some(asin) = action_id.strip_prefix("buy:") {
        let Some(product) = products().into_iter().find(|p| p.asin == asin) else {
            return vec![Outgoing::Text("That product is gone.".into())];
        };
        let price = product.price.unwrap_or(UsdcAmount::from_usdc(1));
        let fee = UsdcAmount::from_atomic(price.atomic() / 50);
        let total = UsdcAmount::from_atomic(price.atomic() + fee.atomic());
        let quote = QuoteCard {
            asin: product.asin.clone(),
            title: product.title.clone(),
            price,
            fee,
            total,
            network: Network::BaseSepolia,
            order_id: format!("order-{}", script.menus + 1),
            expires_at: Some(NEVER),
        };
        script.quote_order = Some(quote.order_id.clone());
        script.chosen = Some(ProductCard {
            price: Some(total),
            ..product
        });
        let actions = vec![
            ActionItem {
                id: "confirm".into(),
                label: format!("Confirm and pay {total} USDC"),
            },
            ActionItem {
                id: "cancel".into(),
                label: "Cancel".into(),
            },
        ];
        return vec![
            Outgoing::Card(Card::Quote(quote)),
            menu(script, MenuKind::Confirm, "Confirm this order?", actions),
        ];
    }
    match action_id {
        "confirm" => {
            let order_id = script
                .quote_order
                .clone()
                .unwrap_or_else(|| "order-0".into());
            if user.as_str() == UNFUNDED_USER && script.pending_order.is_none() {
                script.funding += 1;
                script.pending_order = Some(order_id);
                return vec![
                    Outgoing::Text(
                        "Your wallet is short for this order. Approve the funding to continue."
                            .into(),
                    ),
                    funding(script),
                ];
            }
            pay(script, &order_id)
        }
        "cancel" => vec![Outgoing::Text("Order cancelled.".into())],
        _ => {
            let (description, actions) = actions_of(MenuKind::Main);
            vec![menu(script, MenuKind::Main, &description, actions)]
        }
    }
}
