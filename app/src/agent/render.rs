//! What the checkout tells the user, as presentations for the conversation machine.

use worldstore_domain::checkout::{CannotBuy, CheckedQuote, CheckoutNotice};
use worldstore_domain::conversation::{
    Card, OrderProgress, OrderStage, Presentation, QuoteCard, TransactionPurpose, TransactionRef,
};
use worldstore_domain::network::Network;

fn notice(text: impl Into<String>) -> Presentation {
    Presentation::Notice { text: text.into() }
}

fn quote_card(q: &CheckedQuote) -> QuoteCard {
    QuoteCard {
        asin: q.product.asin.clone(),
        title: q.product.title.clone(),
        price: q.price,
        fee: q.fee,
        total: q.total,
        network: q.payable[0].1,
        order_id: q.order_id.to_string(),
        expires_at: Some(q.expires_at),
    }
}

pub fn cannot_buy(why: &CannotBuy) -> String {
    match why {
        CannotBuy::SuspiciousPaymentRequest(detail) => format!(
            "I stopped this purchase: the merchant's payment request does not match the quote ({detail}). Nothing was paid."
        ),
        CannotBuy::OverOrderLimit { total, limit } => format!(
            "This order costs {total} USDC, above your per-order limit of {limit} USDC. Nothing was paid."
        ),
        CannotBuy::OverDailyLimit {
            total,
            spent_today,
            limit,
        } => format!(
            "This order ({total} USDC) would take today's spending past your daily limit of {limit} USDC (spent so far: {spent_today} USDC). Nothing was paid."
        ),
        CannotBuy::Merchant(reason) => format!("The merchant could not take this order: {reason}"),
        CannotBuy::QuoteExpired => {
            "That quote has expired. Pick the product again for a fresh quote.".to_owned()
        }
    }
}

/// The presentations of one checkout notice, in order, for order `order_id`.
pub fn presentations(
    notice_: &CheckoutNotice,
    order_id: Option<&str>,
    paid_on: Network,
) -> Vec<Presentation> {
    let order = |stage: OrderStage, detail: Option<String>| {
        Presentation::Card(Card::Order(OrderProgress {
            order_id: order_id.unwrap_or("?").to_owned(),
            title: None,
            stage,
            detail,
        }))
    };
    match notice_ {
        CheckoutNotice::QuoteReady(q) => vec![Presentation::Quote {
            text: format!(
                "{}: {} USDC + {} USDC fee = {} USDC, paid from your agent wallet on {}. Reply yes to buy or no to cancel.",
                q.product.title,
                q.price,
                q.fee,
                q.total,
                q.payable[0].1.v1_name()
            ),
            card: Some(quote_card(q)),
        }],
        CheckoutNotice::CannotBuy(why) => vec![notice(cannot_buy(why))],
        CheckoutNotice::NeedFunds {
            network,
            needed,
            have,
            shortfall,
        } => vec![Presentation::NeedFunds {
            text: format!(
                "You need {needed} USDC but only have {have} USDC on {}. Shortfall {shortfall} USDC. I will continue by myself as soon as the funds arrive.",
                network.v1_name()
            ),
        }],
        CheckoutNotice::FundsArrived => {
            vec![notice("Funds received: resuming your purchase now.")]
        }
        CheckoutNotice::Paid {
            tx_hash,
            network,
            total,
        } => vec![
            Presentation::Card(Card::Transaction(TransactionRef {
                network: *network,
                tx_hash: *tx_hash,
                purpose: TransactionPurpose::Payment,
                amount: Some(*total),
            })),
            notice(format!(
                "Paid {total} USDC: transaction {tx_hash:#x}. Order {} is placed; I will tell you when it ships.",
                order_id.unwrap_or("?")
            )),
        ],
        CheckoutNotice::PaymentRefused { reason, message } => vec![notice(format!(
            "The payment was refused ({reason}): {message}. Nothing was charged."
        ))],
        CheckoutNotice::Shipped {
            carrier,
            tracking_number,
        } => vec![order(
            OrderStage::Shipped,
            Some(format!("{carrier} {tracking_number}")),
        )],
        CheckoutNotice::Delivered => vec![order(OrderStage::Delivered, None)],
        CheckoutNotice::Refunded { amount, tx_hash } => vec![
            order(OrderStage::Refunded, Some(format!("{amount} USDC back"))),
            Presentation::Card(Card::Transaction(TransactionRef {
                network: paid_on,
                tx_hash: *tx_hash,
                purpose: TransactionPurpose::Refund,
                amount: Some(*amount),
            })),
        ],
        CheckoutNotice::OrderFailed(reason) => {
            vec![order(OrderStage::Failed, Some(reason.clone()))]
        }
        CheckoutNotice::Declined => vec![notice("Cancelled: nothing was paid.")],
    }
}
