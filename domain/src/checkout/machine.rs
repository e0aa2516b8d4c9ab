use crate::money::{FeeRate, UsdcAmount};
use crate::network::{Network, UsdcDeployment};
use crate::ports::store::Key;
use crate::x402::ReasonCode;
use crate::x402::client::{OfferTerms, PaymentChallenge};
use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};

pub use crate::settlement::RequestId;

/// What the agent may pay, from configuration (and the user's own lower limits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutPolicy {
    /// Tokens the agent pays with, one per network it holds funds on.
    pub tokens: Vec<UsdcDeployment>,
    /// The only recipients a payment may go to (the merchant's treasury).
    pub pay_to_allowlist: Vec<Address>,
    pub fee: FeeRate,
    pub per_order_limit: UsdcAmount,
    pub per_day_limit: UsdcAmount,
}

/// Limits a user set for themselves. Each can only lower the configured one: the
/// configuration is the ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SpendingLimits {
    pub per_order: Option<UsdcAmount>,
    pub per_day: Option<UsdcAmount>,
}

impl CheckoutPolicy {
    /// This policy with the user's own limits where they are lower.
    pub fn lowered_to(&self, own: &SpendingLimits) -> Self {
        let lower = |configured: UsdcAmount, own: Option<UsdcAmount>| {
            own.map_or(configured, |own| own.min(configured))
        };
        Self {
            per_order_limit: lower(self.per_order_limit, own.per_order),
            per_day_limit: lower(self.per_day_limit, own.per_day),
            ..self.clone()
        }
    }
}

/// The product the user asked to buy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductChoice {
    pub asin: String,
    pub title: String,
}

/// What the merchant answered to an order request: its order id, the quoted price of the
/// goods (before our fee), and the 402 challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantQuote {
    pub order_id: Key,
    pub quoted_price: UsdcAmount,
    pub challenge: PaymentChallenge,
}

/// A quote that passed every check, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedQuote {
    pub order_id: Key,
    pub product: ProductChoice,
    pub price: UsdcAmount,
    pub fee: UsdcAmount,
    pub total: UsdcAmount,
    /// Offers (index into the challenge, network) that pass the checks, in the merchant's order.
    pub payable: Vec<(usize, Network)>,
    pub challenge: PaymentChallenge,
    /// Unix seconds after which the merchant no longer accepts payment for it.
    pub expires_at: u64,
}

/// Why a purchase cannot go ahead, in terms the agent can explain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CannotBuy {
    /// The 402 answer asks for something we must not pay (unknown network or asset, a
    /// recipient not on the allowlist, or an amount other than price plus fee).
    SuspiciousPaymentRequest(String),
    OverOrderLimit {
        total: UsdcAmount,
        limit: UsdcAmount,
    },
    OverDailyLimit {
        total: UsdcAmount,
        spent_today: UsdcAmount,
        limit: UsdcAmount,
    },
    Merchant(String),
    QuoteExpired,
}

/// Messages for the user about this purchase; the conversation renders them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckoutNotice {
    QuoteReady(CheckedQuote),
    CannotBuy(CannotBuy),
    NeedFunds {
        network: Network,
        needed: UsdcAmount,
        have: UsdcAmount,
        shortfall: UsdcAmount,
    },
    FundsArrived,
    Paid {
        tx_hash: B256,
        network: Network,
        total: UsdcAmount,
    },
    PaymentRefused {
        reason: ReasonCode,
        message: String,
    },
    Shipped {
        carrier: String,
        tracking_number: String,
    },
    Delivered,
    Refunded {
        amount: UsdcAmount,
        tx_hash: B256,
    },
    OrderFailed(String),
    Declined,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Checkout {
    RequestingQuote(RequestingQuote),
    AwaitingConfirmation(Quoted),
    CheckingFunds(Pending),
    AwaitingFunds(AwaitingFunds),
    Paying(Pending),
    Paid(PaidOrder),
    Shipped(PaidOrder),
    Delivered(PaidOrder),
    Refunded(PaidOrder),
    Failed(Ended),
    Declined(Ended),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestingQuote {
    pub product: ProductChoice,
    pub policy: CheckoutPolicy,
    pub request: RequestId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quoted {
    pub quote: CheckedQuote,
    pub policy: CheckoutPolicy,
    pub next_request: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub quote: CheckedQuote,
    pub policy: CheckoutPolicy,
    pub next_request: u64,
    pub request: RequestId,
    /// The offer being paid (set when paying).
    pub offer: Option<(usize, Network)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingFunds {
    pub quote: CheckedQuote,
    pub policy: CheckoutPolicy,
    pub next_request: u64,
    pub request: RequestId,
    pub network: Network,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidOrder {
    pub quote: CheckedQuote,
    pub network: Network,
    pub tx_hash: B256,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    pub product: ProductChoice,
    pub why: CannotBuy,
}

/// How the merchant answered our paid request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentOutcome {
    Paid {
        tx_hash: B256,
    },
    /// Settlement broadcast, receipt pending: treated as paid; the order's updates follow.
    Pending {
        tx_hash: B256,
    },
    Refused {
        reason: ReasonCode,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderUpdate {
    Shipped {
        carrier: String,
        tracking_number: String,
    },
    Delivered,
    Refunded {
        amount: UsdcAmount,
        tx_hash: B256,
    },
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    QuoteReceived {
        request: RequestId,
        quote: MerchantQuote,
        spent_today: UsdcAmount,
    },
    QuoteFailed {
        request: RequestId,
        reason: String,
    },
    /// The user explicitly confirmed this checkout's quote.
    Confirm,
    Decline,
    BalancesRead {
        request: RequestId,
        balances: Vec<(Network, UsdcAmount)>,
    },
    FundsArrived {
        request: RequestId,
        balance: UsdcAmount,
    },
    PaymentResult {
        request: RequestId,
        outcome: PaymentOutcome,
    },
    OrderUpdate(OrderUpdate),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// POST the order without payment; the answer is a 402.
    RequestQuote {
        request: RequestId,
        product: ProductChoice,
    },
    ReadBalances {
        request: RequestId,
    },
    /// Sign offer `index` of `challenge` with the user's wallet and send it.
    Pay {
        request: RequestId,
        order_id: Key,
        challenge: PaymentChallenge,
        index: usize,
        total: UsdcAmount,
    },
    RequestFunding {
        network: Network,
        shortfall: UsdcAmount,
    },
    WatchBalance {
        request: RequestId,
        network: Network,
        at_least: UsdcAmount,
    },
    Notify(CheckoutNotice),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("{input} does not apply in state {state}")]
    NotNow {
        input: &'static str,
        state: &'static str,
    },
    #[error("answer to request {got:?} is stale")]
    StaleAnswer { got: RequestId },
}

impl Checkout {
    /// Starts a purchase: the first effect asks the merchant for a quote.
    pub fn start(product: ProductChoice, policy: CheckoutPolicy) -> (Self, Vec<Effect>) {
        let request = RequestId(1);
        let effect = Effect::RequestQuote {
            request,
            product: product.clone(),
        };
        (
            Checkout::RequestingQuote(RequestingQuote {
                product,
                policy,
                request,
            }),
            vec![effect],
        )
    }

    pub fn status(&self) -> &'static str {
        match self {
            Checkout::RequestingQuote(_) => "requesting_quote",
            Checkout::AwaitingConfirmation(_) => "awaiting_confirmation",
            Checkout::CheckingFunds(_) => "checking_funds",
            Checkout::AwaitingFunds(_) => "awaiting_funds",
            Checkout::Paying(_) => "paying",
            Checkout::Paid(_) => "paid",
            Checkout::Shipped(_) => "shipped",
            Checkout::Delivered(_) => "delivered",
            Checkout::Refunded(_) => "refunded",
            Checkout::Failed(_) => "failed",
            Checkout::Declined(_) => "declined",
        }
    }

    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Checkout::Delivered(_)
                | Checkout::Refunded(_)
                | Checkout::Failed(_)
                | Checkout::Declined(_)
        )
    }

    /// The quote the user is asked to confirm, if any.
    pub fn quote(&self) -> Option<&CheckedQuote> {
        match self {
            Checkout::AwaitingConfirmation(q) => Some(&q.quote),
            Checkout::CheckingFunds(p) | Checkout::Paying(p) => Some(&p.quote),
            Checkout::AwaitingFunds(a) => Some(&a.quote),
            Checkout::Paid(p)
            | Checkout::Shipped(p)
            | Checkout::Delivered(p)
            | Checkout::Refunded(p) => Some(&p.quote),
            _ => None,
        }
    }

    pub fn handle(&mut self, now: u64, input: Input) -> Result<Vec<Effect>, Rejected> {
        let (next, effects) = transition(self, now, input)?;
        *self = next;
        Ok(effects)
    }
}

fn input_name(input: &Input) -> &'static str {
    match input {
        Input::QuoteReceived { .. } => "QuoteReceived",
        Input::QuoteFailed { .. } => "QuoteFailed",
        Input::Confirm => "Confirm",
        Input::Decline => "Decline",
        Input::BalancesRead { .. } => "BalancesRead",
        Input::FundsArrived { .. } => "FundsArrived",
        Input::PaymentResult { .. } => "PaymentResult",
        Input::OrderUpdate(_) => "OrderUpdate",
    }
}

fn answer_to(input: &Input) -> Option<RequestId> {
    match input {
        Input::QuoteReceived { request, .. }
        | Input::QuoteFailed { request, .. }
        | Input::BalancesRead { request, .. }
        | Input::FundsArrived { request, .. }
        | Input::PaymentResult { request, .. } => Some(*request),
        _ => None,
    }
}

fn failed(product: &ProductChoice, why: CannotBuy) -> (Checkout, Vec<Effect>) {
    (
        Checkout::Failed(Ended {
            product: product.clone(),
            why: why.clone(),
        }),
        vec![Effect::Notify(CheckoutNotice::CannotBuy(why))],
    )
}

/// Checks a merchant's 402 answer against the policy (invariants 1 and 2).
pub fn check_quote(
    product: &ProductChoice,
    quote: &MerchantQuote,
    policy: &CheckoutPolicy,
    spent_today: UsdcAmount,
    now: u64,
) -> Result<CheckedQuote, CannotBuy> {
    let suspicious = |why: &str| CannotBuy::SuspiciousPaymentRequest(why.to_owned());
    let fee = policy
        .fee
        .fee_on(quote.quoted_price)
        .ok_or_else(|| suspicious("price overflows"))?;
    let total = quote
        .quoted_price
        .checked_add(fee)
        .ok_or_else(|| suspicious("price overflows"))?;
    let offers = quote.challenge.offers();
    let acceptable = |terms: &OfferTerms| -> Option<Network> {
        let network = terms.network.clone().ok()?;
        let token = policy
            .tokens
            .iter()
            .find(|t| t.network == network && t.address == terms.asset)?;
        let domain_ok = terms
            .eip712_name
            .as_deref()
            .is_none_or(|n| n == token.eip712_name)
            && terms
                .eip712_version
                .as_deref()
                .is_none_or(|v| v == token.eip712_version);
        (terms.scheme == "exact"
            && domain_ok
            && policy.pay_to_allowlist.contains(&terms.pay_to)
            && terms.amount == total.to_u256())
        .then_some(network)
    };
    let payable: Vec<(usize, Network)> = offers
        .iter()
        .enumerate()
        .filter_map(|(i, terms)| acceptable(terms).map(|n| (i, n)))
        .collect();
    if payable.is_empty() {
        return Err(suspicious(&format!(
            "no offer pays exactly {total} USDC (price {} + fee {fee}) in a known token to our merchant",
            quote.quoted_price
        )));
    }
    if total > policy.per_order_limit {
        return Err(CannotBuy::OverOrderLimit {
            total,
            limit: policy.per_order_limit,
        });
    }
    if spent_today
        .checked_add(total)
        .is_none_or(|sum| sum > policy.per_day_limit)
    {
        return Err(CannotBuy::OverDailyLimit {
            total,
            spent_today,
            limit: policy.per_day_limit,
        });
    }
    let timeout = payable
        .iter()
        .filter_map(|(i, _)| offers.get(*i).map(|t| t.max_timeout_seconds))
        .min()
        .unwrap_or(0);
    Ok(CheckedQuote {
        order_id: quote.order_id.clone(),
        product: product.clone(),
        price: quote.quoted_price,
        fee,
        total,
        payable,
        challenge: quote.challenge.clone(),
        expires_at: now.saturating_add(timeout),
    })
}

fn pay(
    quote: &CheckedQuote,
    policy: &CheckoutPolicy,
    next_request: u64,
    offer: (usize, Network),
) -> (Checkout, Effect) {
    let request = RequestId(next_request);
    let effect = Effect::Pay {
        request,
        order_id: quote.order_id.clone(),
        challenge: quote.challenge.clone(),
        index: offer.0,
        total: quote.total,
    };
    let state = Checkout::Paying(Pending {
        quote: quote.clone(),
        policy: policy.clone(),
        next_request: next_request + 1,
        request,
        offer: Some(offer),
    });
    (state, effect)
}

fn transition(
    state: &Checkout,
    now: u64,
    input: Input,
) -> Result<(Checkout, Vec<Effect>), Rejected> {
    let expect = |expected: RequestId| match answer_to(&input) {
        Some(got) if got != expected => Err(Rejected::StaleAnswer { got }),
        _ => Ok(()),
    };
    match (state, &input) {
        (
            Checkout::RequestingQuote(s),
            Input::QuoteReceived {
                quote, spent_today, ..
            },
        ) => {
            expect(s.request)?;
            Ok(
                match check_quote(&s.product, quote, &s.policy, *spent_today, now) {
                    Ok(checked) => (
                        Checkout::AwaitingConfirmation(Quoted {
                            quote: checked.clone(),
                            policy: s.policy.clone(),
                            next_request: s.request.0 + 1,
                        }),
                        vec![Effect::Notify(CheckoutNotice::QuoteReady(checked))],
                    ),
                    Err(why) => failed(&s.product, why),
                },
            )
        }
        (Checkout::RequestingQuote(s), Input::QuoteFailed { reason, .. }) => {
            expect(s.request)?;
            Ok(failed(&s.product, CannotBuy::Merchant(reason.clone())))
        }
        (Checkout::AwaitingConfirmation(q), Input::Confirm) => {
            if now >= q.quote.expires_at {
                return Ok(failed(&q.quote.product, CannotBuy::QuoteExpired));
            }
            let request = RequestId(q.next_request);
            Ok((
                Checkout::CheckingFunds(Pending {
                    quote: q.quote.clone(),
                    policy: q.policy.clone(),
                    next_request: q.next_request + 1,
                    request,
                    offer: None,
                }),
                vec![Effect::ReadBalances { request }],
            ))
        }
        (Checkout::AwaitingConfirmation(q), Input::Decline) => Ok((
            Checkout::Declined(Ended {
                product: q.quote.product.clone(),
                why: CannotBuy::Merchant("declined by the user".into()),
            }),
            vec![Effect::Notify(CheckoutNotice::Declined)],
        )),
        (Checkout::AwaitingFunds(a), Input::Decline) => Ok((
            Checkout::Declined(Ended {
                product: a.quote.product.clone(),
                why: CannotBuy::Merchant("cancelled by the user".into()),
            }),
            vec![Effect::Notify(CheckoutNotice::Declined)],
        )),
        (Checkout::CheckingFunds(p), Input::BalancesRead { balances, .. }) => {
            expect(p.request)?;
            let balance_on = |network: Network| {
                balances
                    .iter()
                    .filter(|(n, _)| *n == network)
                    .map(|(_, b)| *b)
                    .max()
                    .unwrap_or(UsdcAmount::ZERO)
            };
            if let Some(offer) = p
                .quote
                .payable
                .iter()
                .copied()
                .find(|(_, n)| balance_on(*n) >= p.quote.total)
            {
                let (state, effect) = pay(&p.quote, &p.policy, p.next_request, offer);
                return Ok((state, vec![effect]));
            }
            // Short everywhere: ask for funds on the merchant's first acceptable network.
            let network = p.quote.payable[0].1;
            let have = balance_on(network);
            let shortfall = p.quote.total.saturating_sub(have);
            let request = RequestId(p.next_request);
            Ok((
                Checkout::AwaitingFunds(AwaitingFunds {
                    quote: p.quote.clone(),
                    policy: p.policy.clone(),
                    next_request: p.next_request + 1,
                    request,
                    network,
                }),
                vec![
                    Effect::Notify(CheckoutNotice::NeedFunds {
                        network,
                        needed: p.quote.total,
                        have,
                        shortfall,
                    }),
                    Effect::RequestFunding { network, shortfall },
                    Effect::WatchBalance {
                        request,
                        network,
                        at_least: p.quote.total,
                    },
                ],
            ))
        }
        (Checkout::AwaitingFunds(a), Input::FundsArrived { balance, .. }) => {
            expect(a.request)?;
            let request = RequestId(a.next_request);
            if *balance < a.quote.total {
                return Ok((
                    Checkout::AwaitingFunds(AwaitingFunds {
                        next_request: a.next_request + 1,
                        request,
                        ..a.clone()
                    }),
                    vec![Effect::WatchBalance {
                        request,
                        network: a.network,
                        at_least: a.quote.total,
                    }],
                ));
            }
            let offer = a
                .quote
                .payable
                .iter()
                .copied()
                .find(|(_, n)| *n == a.network)
                .unwrap_or(a.quote.payable[0]);
            let (state, effect) = pay(&a.quote, &a.policy, a.next_request, offer);
            Ok((
                state,
                vec![Effect::Notify(CheckoutNotice::FundsArrived), effect],
            ))
        }
        (Checkout::Paying(p), Input::PaymentResult { outcome, .. }) => {
            expect(p.request)?;
            let network = p.offer.map_or(p.quote.payable[0].1, |(_, n)| n);
            Ok(match outcome {
                PaymentOutcome::Paid { tx_hash } | PaymentOutcome::Pending { tx_hash } => (
                    Checkout::Paid(PaidOrder {
                        quote: p.quote.clone(),
                        network,
                        tx_hash: *tx_hash,
                    }),
                    vec![Effect::Notify(CheckoutNotice::Paid {
                        tx_hash: *tx_hash,
                        network,
                        total: p.quote.total,
                    })],
                ),
                PaymentOutcome::Refused { reason, message } => (
                    Checkout::Failed(Ended {
                        product: p.quote.product.clone(),
                        why: CannotBuy::Merchant(message.clone()),
                    }),
                    vec![Effect::Notify(CheckoutNotice::PaymentRefused {
                        reason: reason.clone(),
                        message: message.clone(),
                    })],
                ),
            })
        }
        (Checkout::Paid(o) | Checkout::Shipped(o), Input::OrderUpdate(update)) => {
            Ok(match update {
                OrderUpdate::Shipped {
                    carrier,
                    tracking_number,
                } => (
                    Checkout::Shipped(o.clone()),
                    vec![Effect::Notify(CheckoutNotice::Shipped {
                        carrier: carrier.clone(),
                        tracking_number: tracking_number.clone(),
                    })],
                ),
                OrderUpdate::Delivered => (
                    Checkout::Delivered(o.clone()),
                    vec![Effect::Notify(CheckoutNotice::Delivered)],
                ),
                OrderUpdate::Refunded { amount, tx_hash } => (
                    Checkout::Refunded(o.clone()),
                    vec![Effect::Notify(CheckoutNotice::Refunded {
                        amount: *amount,
                        tx_hash: *tx_hash,
                    })],
                ),
                OrderUpdate::Failed(reason) => (
                    Checkout::Paid(o.clone()),
                    vec![Effect::Notify(CheckoutNotice::OrderFailed(reason.clone()))],
                ),
            })
        }
        _ => Err(match answer_to(&input) {
            Some(got) => Rejected::StaleAnswer { got },
            None => Rejected::NotNow {
                input: input_name(&input),
                state: state.status(),
            },
        }),
    }
}
