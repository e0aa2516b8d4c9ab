//! The verification rules of x402 `exact` on EVM (x402.md, "Verification checklist"), as
//! pure functions of the payment, the requirements, facts read from the chain, and `now`.
//!
//! Two stages, so that a bad payment is refused before any RPC is made:
//!
//! | stage | needs | checks (checklist item) |
//! |---|---|---|
//! | [`check_offline`] | payload, requirements, policy, `now` | version, scheme (1), network (2), token and EIP-712 domain (3), v2 `accepted` equals the offer (1), recipient (6), value (8), validity window incl. an upper bound (7), signature recovers to `from` (5) |
//! | [`check_chain`] | [`ChainFacts`] | token has code (4), balance (9), nonce unused on chain (9) and not reserved here (10), simulation (11) |
//!
//! Rules run in the order of the table and the first failure is the answer, so a payment
//! with a wrong amount is refused as a value mismatch even though its signature (over the
//! original amount) would fail too. A refusal is a business outcome, returned as
//! [`Refusal`] with the spec reason code; it is never a panic or an internal error.

use super::ReasonCode;
use super::messages::{
    Extra, PaymentPayload, PaymentRequirements, PaymentRequirementsV2, SCHEME_EXACT,
};
use crate::eip3009::{Authorization, Nonce, Signature};
use crate::network::{Network, UsdcDeployment};
use alloy_primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};

/// A payment window must leave at least this long for the transaction to be mined
/// (x402.md: reject `validBefore < now + 6`).
pub const MIN_SECONDS_TO_SETTLE: u64 = 6;

/// What this verifier accepts, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// The tokens we settle, one or more per network, each with its EIP-712 domain
    /// separator computed once.
    tokens: Vec<(UsdcDeployment, B256)>,
    /// Allowed excess of `validBefore` over `now + maxTimeoutSeconds`, for clock skew.
    /// The reference clients set `validBefore = now + maxTimeoutSeconds`.
    pub validity_slack_seconds: u64,
}

impl VerifyPolicy {
    pub const DEFAULT_VALIDITY_SLACK_SECONDS: u64 = 60;

    pub fn new(tokens: Vec<UsdcDeployment>) -> Self {
        Self {
            tokens: tokens
                .into_iter()
                .map(|t| {
                    let separator = t.eip712_domain().separator();
                    (t, separator)
                })
                .collect(),
            validity_slack_seconds: Self::DEFAULT_VALIDITY_SLACK_SECONDS,
        }
    }

    pub fn tokens(&self) -> impl Iterator<Item = &UsdcDeployment> {
        self.tokens.iter().map(|(t, _)| t)
    }
}

/// A refused payment: the spec reason, a human explanation, and the claimed payer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{reason}: {message}")]
pub struct Refusal {
    pub reason: ReasonCode,
    pub message: String,
    pub payer: Option<Address>,
}

/// The unique key of an authorization: FiatToken tracks nonces per `(token, from)`, and a
/// token lives on one chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NonceKey {
    pub chain_id: u64,
    pub token: Address,
    pub from: Address,
    pub nonce: Nonce,
}

/// A payment whose fields and signature are right for the requirements. Not yet checked
/// against the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPayment {
    pub x402_version: u8,
    pub payer: Address,
    pub authorization: Authorization,
    pub signature: Signature,
    pub token: UsdcDeployment,
    pub pay_to: Address,
    pub signing_hash: B256,
}

impl SignedPayment {
    pub fn nonce_key(&self) -> NonceKey {
        NonceKey {
            chain_id: self.token.network.chain_id(),
            token: self.token.address,
            from: self.payer,
            nonce: self.authorization.nonce,
        }
    }

    pub fn network(&self) -> Network {
        self.token.network
    }
}

/// A payment that passed every rule, offline and on chain: ready to settle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedPayment(pub SignedPayment);

impl std::ops::Deref for VerifiedPayment {
    type Target = SignedPayment;
    fn deref(&self) -> &SignedPayment {
        &self.0
    }
}

/// Whether an authorization's nonce is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NonceState {
    Unused,
    /// `authorizationState(from, nonce)` is true: used or canceled.
    UsedOnChain,
    /// This facilitator already holds it for another settlement (verify/settle race).
    ReservedElsewhere,
}

/// The result of `eth_call` of `transferWithAuthorization` with the payment's arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Simulation {
    Succeeded,
    Reverted(String),
}

/// What an adapter read from the chain about one payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainFacts {
    pub token_has_code: bool,
    pub payer_balance: U256,
    pub nonce: NonceState,
    pub simulation: Simulation,
}

/// The terms of requirements of either version.
struct Terms<'a> {
    x402_version: u8,
    scheme: &'a str,
    network: &'a str,
    amount: U256,
    asset: Address,
    pay_to: Address,
    max_timeout_seconds: u64,
    extra: Option<&'a Extra>,
}

impl<'a> Terms<'a> {
    fn of(requirements: &'a PaymentRequirements) -> Self {
        match requirements {
            PaymentRequirements::V1(r) => Terms {
                x402_version: 1,
                scheme: &r.scheme,
                network: &r.network,
                amount: r.max_amount_required,
                asset: r.asset,
                pay_to: r.pay_to,
                max_timeout_seconds: r.max_timeout_seconds,
                extra: r.extra.as_ref(),
            },
            PaymentRequirements::V2(r) => Terms {
                x402_version: 2,
                scheme: &r.scheme,
                network: &r.network,
                amount: r.amount,
                asset: r.asset,
                pay_to: r.pay_to,
                max_timeout_seconds: r.max_timeout_seconds,
                extra: Some(&r.extra),
            },
        }
    }
}

/// Checks everything that needs no chain access. See the module docs for the order.
pub fn check_offline(
    payment: &PaymentPayload,
    requirements: &PaymentRequirements,
    policy: &VerifyPolicy,
    now: u64,
) -> Result<SignedPayment, Refusal> {
    let exact = payment.exact();
    let authorization = &exact.authorization;
    let refuse = |reason: ReasonCode, message: String| Refusal {
        reason,
        message,
        payer: Some(authorization.from),
    };
    let terms = Terms::of(requirements);

    if payment.x402_version() != terms.x402_version {
        return Err(refuse(
            ReasonCode::InvalidX402Version,
            format!(
                "payment is x402 v{}, the requirements are v{}",
                payment.x402_version(),
                terms.x402_version
            ),
        ));
    }
    if terms.scheme != SCHEME_EXACT {
        return Err(refuse(
            ReasonCode::UnsupportedScheme,
            format!("scheme {:?} is not supported; only \"exact\"", terms.scheme),
        ));
    }
    let (paid_scheme, paid_network) = match payment {
        PaymentPayload::V1(p) => (p.scheme.as_str(), p.network.as_str()),
        PaymentPayload::V2(p) => (p.accepted.scheme.as_str(), p.accepted.network.as_str()),
    };
    if paid_scheme != terms.scheme {
        return Err(refuse(
            ReasonCode::InvalidScheme,
            format!(
                "payment uses scheme {paid_scheme:?}, the offer {:?}",
                terms.scheme
            ),
        ));
    }
    let network = Network::parse(terms.network)
        .map_err(|e| refuse(ReasonCode::InvalidNetwork, e.to_string()))?;
    if Network::parse(paid_network) != Ok(network) {
        return Err(refuse(
            ReasonCode::InvalidNetwork,
            format!("payment is for network {paid_network:?}, the offer for {network}"),
        ));
    }
    let (token, separator) = token_for(policy, network, terms.asset, terms.extra)
        .map_err(|(reason, message)| refuse(reason, message))?;
    if let (PaymentPayload::V2(p), PaymentRequirements::V2(offered)) = (payment, requirements) {
        accepted_matches_offer(&p.accepted, offered)
            .map_err(|(reason, message)| refuse(reason, message))?;
    }
    if authorization.to != terms.pay_to {
        return Err(refuse(
            ReasonCode::RecipientMismatch,
            format!(
                "authorization pays {}, the offer's payTo is {}",
                authorization.to, terms.pay_to
            ),
        ));
    }
    let value_ok = match terms.x402_version {
        // v1 `maxAmountRequired`: at least the amount. v2 `amount`: exactly.
        1 => authorization.value >= terms.amount,
        _ => authorization.value == terms.amount,
    };
    if !value_ok {
        return Err(refuse(
            ReasonCode::InvalidValue,
            format!(
                "authorization value {} does not match the required amount {}",
                authorization.value, terms.amount
            ),
        ));
    }
    check_window(authorization, terms.max_timeout_seconds, policy, now)
        .map_err(|(reason, message)| refuse(reason, message))?;

    let signature = Signature::parse_hex(&exact.signature)
        .map_err(|e| refuse(ReasonCode::InvalidSignature, e.to_string()))?;
    let signing_hash = authorization.signing_hash_with_separator(*separator);
    let signer = signature
        .recover_address(signing_hash)
        .map_err(|e| refuse(ReasonCode::InvalidSignature, e.to_string()))?;
    if signer != authorization.from {
        return Err(refuse(
            ReasonCode::InvalidSignature,
            format!(
                "signature is not from {} for this authorization and token",
                authorization.from
            ),
        ));
    }
    Ok(SignedPayment {
        x402_version: terms.x402_version,
        payer: authorization.from,
        authorization: authorization.clone(),
        signature,
        token: token.clone(),
        pay_to: terms.pay_to,
        signing_hash,
    })
}

type RuleResult<T> = Result<T, (ReasonCode, String)>;

fn token_for<'p>(
    policy: &'p VerifyPolicy,
    network: Network,
    asset: Address,
    extra: Option<&Extra>,
) -> RuleResult<&'p (UsdcDeployment, B256)> {
    if !policy.tokens().any(|t| t.network == network) {
        return Err((
            ReasonCode::InvalidNetwork,
            format!("network {network} is not served here"),
        ));
    }
    let entry = policy
        .tokens
        .iter()
        .find(|(t, _)| t.network == network && t.address == asset)
        .ok_or_else(|| {
            (
                ReasonCode::InvalidPaymentRequirements,
                format!("asset {asset} is not an accepted token on {network}"),
            )
        })?;
    let token = &entry.0;
    // x402.md checklist 3: extra.name / extra.version, when given, must be the token's.
    for (field, expected) in [
        ("name", &token.eip712_name),
        ("version", &token.eip712_version),
    ] {
        if let Some(given) = extra.and_then(|e| e.get(field))
            && given.as_str() != Some(expected.as_str())
        {
            return Err((
                ReasonCode::InvalidPaymentRequirements,
                format!("extra.{field} is {given}, the token's EIP-712 {field} is {expected:?}"),
            ));
        }
    }
    Ok(entry)
}

/// v2: the `accepted` requirements the client signed for must be the offer itself.
fn accepted_matches_offer(
    accepted: &PaymentRequirementsV2,
    offered: &PaymentRequirementsV2,
) -> RuleResult<()> {
    if accepted.pay_to != offered.pay_to {
        return Err((
            ReasonCode::RecipientMismatch,
            format!(
                "accepted payTo {} is not the offer's {}",
                accepted.pay_to, offered.pay_to
            ),
        ));
    }
    if accepted.amount != offered.amount {
        return Err((
            ReasonCode::InvalidValue,
            format!(
                "accepted amount {} is not the offer's {}",
                accepted.amount, offered.amount
            ),
        ));
    }
    if accepted != offered {
        return Err((
            ReasonCode::InvalidPaymentRequirements,
            "accepted requirements differ from the offer (asset, timeout or extra)".to_owned(),
        ));
    }
    Ok(())
}

fn check_window(
    authorization: &Authorization,
    max_timeout_seconds: u64,
    policy: &VerifyPolicy,
    now: u64,
) -> RuleResult<()> {
    let now_u = U256::from(now);
    if authorization.valid_after > now_u {
        return Err((
            ReasonCode::InvalidValidAfter,
            format!(
                "authorization is not valid until {}, it is now {now}",
                authorization.valid_after
            ),
        ));
    }
    if authorization.valid_before < U256::from(now.saturating_add(MIN_SECONDS_TO_SETTLE)) {
        return Err((
            ReasonCode::InvalidValidBefore,
            format!(
                "authorization expires at {}, too soon to settle (now {now})",
                authorization.valid_before
            ),
        ));
    }
    let latest = now
        .saturating_add(max_timeout_seconds)
        .saturating_add(policy.validity_slack_seconds);
    if authorization.valid_before > U256::from(latest) {
        return Err((
            ReasonCode::InvalidValidBefore,
            format!(
                "authorization stays valid until {}, beyond the offer's {max_timeout_seconds} s timeout (latest {latest})",
                authorization.valid_before
            ),
        ));
    }
    Ok(())
}

/// Checks the chain facts for a payment that passed [`check_offline`].
pub fn check_chain(payment: SignedPayment, facts: &ChainFacts) -> Result<VerifiedPayment, Refusal> {
    let refuse = |reason: ReasonCode, message: String| Refusal {
        reason,
        message,
        payer: Some(payment.payer),
    };
    if !facts.token_has_code {
        return Err(refuse(
            ReasonCode::InvalidPaymentRequirements,
            format!(
                "asset {} has no contract code on {}",
                payment.token.address, payment.token.network
            ),
        ));
    }
    if facts.payer_balance < payment.authorization.value {
        return Err(refuse(
            ReasonCode::InsufficientFunds,
            format!(
                "payer holds {} atomic units, the payment needs {}",
                facts.payer_balance, payment.authorization.value
            ),
        ));
    }
    match facts.nonce {
        NonceState::Unused => {}
        NonceState::UsedOnChain => {
            return Err(refuse(
                ReasonCode::InvalidTransactionState,
                "authorization nonce is already used or canceled on chain".to_owned(),
            ));
        }
        NonceState::ReservedElsewhere => {
            return Err(refuse(
                ReasonCode::InvalidTransactionState,
                "authorization is already being settled for another payment".to_owned(),
            ));
        }
    }
    if let Simulation::Reverted(reason) = &facts.simulation {
        return Err(refuse(
            reason_for_revert(reason),
            format!("simulation reverted: {reason}"),
        ));
    }
    Ok(VerifiedPayment(payment))
}

/// Maps FiatToken revert strings (x402.md) to reason codes.
pub fn reason_for_revert(revert: &str) -> ReasonCode {
    let revert = revert.to_ascii_lowercase();
    if revert.contains("not yet valid") {
        ReasonCode::InvalidValidAfter
    } else if revert.contains("expired") {
        ReasonCode::InvalidValidBefore
    } else if revert.contains("invalid signature") {
        ReasonCode::InvalidSignature
    } else if revert.contains("exceeds balance") {
        ReasonCode::InsufficientFunds
    } else {
        // "authorization is used or canceled", blacklisting, pause, and anything unknown.
        ReasonCode::InvalidTransactionState
    }
}

/// Both stages.
pub fn verify(
    payment: &PaymentPayload,
    requirements: &PaymentRequirements,
    facts: &ChainFacts,
    policy: &VerifyPolicy,
    now: u64,
) -> Result<VerifiedPayment, Refusal> {
    check_chain(check_offline(payment, requirements, policy, now)?, facts)
}
