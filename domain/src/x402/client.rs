//! The payer's side of x402: reading a 402 answer and signing a payment for one of its
//! offers. Whether to pay at all (the user's confirmation, limits, allowlists) is the
//! checkout machine's decision; this module only does the protocol correctly.

use super::header::{self, HeaderError};
use super::messages::{
    ExactEvmPayload, PaymentPayload, PaymentPayloadV1, PaymentPayloadV2, PaymentRequiredV1,
    PaymentRequiredV2, PaymentRequirementsV1, PaymentRequirementsV2, Version,
};
use crate::eip3009::{Authorization, LocalSigner, Nonce};
use crate::network::{Network, NetworkError, UsdcDeployment};
use alloy_primitives::{Address, U256};

/// `validAfter` is set this far in the past, so that a payer clock running ahead of the
/// chain does not make the authorization "not yet valid" (the reference v1 client does the
/// same).
pub const VALID_AFTER_BACKDATE_SECONDS: u64 = 600;

/// A 402 answer as the client received it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PaymentChallenge {
    V1(PaymentRequiredV1),
    V2(PaymentRequiredV2),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("PAYMENT-REQUIRED header is malformed: {0}")]
    Header(#[from] HeaderError),
    #[error("402 body is not an x402 v1 PaymentRequired: {0}")]
    Body(String),
}

impl PaymentChallenge {
    /// Reads a 402 answer: the v2 `PAYMENT-REQUIRED` header when present, else the v1 body.
    pub fn from_response(
        payment_required_header: Option<&str>,
        body: &[u8],
    ) -> Result<Self, ChallengeError> {
        match payment_required_header {
            Some(value) => Ok(Self::V2(header::decode_payment_required(value)?)),
            None => serde_json::from_slice(body)
                .map(Self::V1)
                .map_err(|e| ChallengeError::Body(e.to_string())),
        }
    }

    /// The offers as version-independent terms, in the server's order.
    pub fn offers(&self) -> Vec<OfferTerms> {
        match self {
            Self::V1(required) => required.accepts.iter().map(OfferTerms::from_v1).collect(),
            Self::V2(required) => required.accepts.iter().map(OfferTerms::from_v2).collect(),
        }
    }
}

/// What one offer asks for, in either version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferTerms {
    pub scheme: String,
    pub network: Result<Network, NetworkError>,
    pub amount: U256,
    pub asset: Address,
    pub pay_to: Address,
    pub max_timeout_seconds: u64,
    pub eip712_name: Option<String>,
    pub eip712_version: Option<String>,
}

impl OfferTerms {
    fn extra_str(extra: Option<&super::Extra>, key: &str) -> Option<String> {
        extra?.get(key)?.as_str().map(str::to_owned)
    }

    pub fn from_v1(r: &PaymentRequirementsV1) -> Self {
        Self {
            scheme: r.scheme.clone(),
            network: Network::parse(&r.network),
            amount: r.max_amount_required,
            asset: r.asset,
            pay_to: r.pay_to,
            max_timeout_seconds: r.max_timeout_seconds,
            eip712_name: Self::extra_str(r.extra.as_ref(), "name"),
            eip712_version: Self::extra_str(r.extra.as_ref(), "version"),
        }
    }

    pub fn from_v2(r: &PaymentRequirementsV2) -> Self {
        Self {
            scheme: r.scheme.clone(),
            network: Network::parse(&r.network),
            amount: r.amount,
            asset: r.asset,
            pay_to: r.pay_to,
            max_timeout_seconds: r.max_timeout_seconds,
            eip712_name: Self::extra_str(Some(&r.extra), "name"),
            eip712_version: Self::extra_str(Some(&r.extra), "version"),
        }
    }
}

/// The authorization a payer signs for `terms`: valid from `now - 600` to
/// `now + maxTimeoutSeconds`, for exactly the amount, to `payTo`.
pub fn authorization_for(
    from: Address,
    terms: &OfferTerms,
    nonce: Nonce,
    now: u64,
) -> Authorization {
    Authorization {
        from,
        to: terms.pay_to,
        value: terms.amount,
        valid_after: U256::from(now.saturating_sub(VALID_AFTER_BACKDATE_SECONDS)),
        valid_before: U256::from(now.saturating_add(terms.max_timeout_seconds)),
        nonce,
    }
}

fn sign(
    signer: &LocalSigner,
    token: &UsdcDeployment,
    authorization: Authorization,
) -> ExactEvmPayload {
    let signature = signer.sign_hash(authorization.signing_hash(&token.eip712_domain()));
    ExactEvmPayload::new(signature.to_hex(), authorization)
}

/// Signs offer `index` of `challenge` with `token`'s EIP-712 domain. The caller has
/// checked that the offer's network and asset are `token`'s.
pub fn sign_payment(
    signer: &LocalSigner,
    challenge: &PaymentChallenge,
    index: usize,
    token: &UsdcDeployment,
    nonce: Nonce,
    now: u64,
) -> Option<PaymentPayload> {
    match challenge {
        PaymentChallenge::V1(required) => {
            let offer = required.accepts.get(index)?;
            let terms = OfferTerms::from_v1(offer);
            let authorization = authorization_for(signer.address(), &terms, nonce, now);
            Some(PaymentPayload::V1(PaymentPayloadV1 {
                x402_version: Version,
                scheme: offer.scheme.clone(),
                network: offer.network.clone(),
                payload: sign(signer, token, authorization),
            }))
        }
        PaymentChallenge::V2(required) => {
            let offer = required.accepts.get(index)?;
            let terms = OfferTerms::from_v2(offer);
            let authorization = authorization_for(signer.address(), &terms, nonce, now);
            Some(PaymentPayload::V2(PaymentPayloadV2 {
                x402_version: Version,
                payload: sign(signer, token, authorization),
                extensions: None,
                resource: Some(required.resource.clone()),
                accepted: offer.clone(),
            }))
        }
    }
}

impl PaymentPayload {
    /// The request header that carries this payload: `X-PAYMENT` for v1,
    /// `PAYMENT-SIGNATURE` for v2.
    pub fn header_name(&self) -> &'static str {
        match self {
            PaymentPayload::V1(_) => "X-PAYMENT",
            PaymentPayload::V2(_) => "PAYMENT-SIGNATURE",
        }
    }

    pub fn header_value(&self) -> String {
        header::encode(self)
    }
}
