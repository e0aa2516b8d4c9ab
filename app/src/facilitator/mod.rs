//! The x402 facilitator: `POST /verify`, `POST /settle`, `GET /supported` (x402.md,
//! "Facilitator HTTP API"), for v1 and v2, over the `Chain` port and the `Store`'s nonce
//! reservations.
//!
//! ## Contract
//! - A body that is not a facilitator request is **400** with `{"error": ...}`. Every
//!   request that parses is answered **200**, with `isValid: false` / `success: false` and
//!   the spec reason code when the payment is refused (the reference clients throw on
//!   anything but 2xx).
//! - `/verify` runs every rule: offline ([`check_offline`]) then the chain facts from one
//!   simulation ([`Chain::chain_facts`], [`check_chain`]). It reserves nothing.
//! - `/settle` re-verifies, then reserves the authorization's nonce in the store (unique per
//!   chain, token, payer and nonce) before submitting. A second settle of an authorization
//!   that is already used on chain is refused by the re-verification; one racing an
//!   in-flight settlement loses the reservation and gets that settlement's result from the
//!   chain adapter, which never broadcasts an authorization twice. EIP-3009 itself makes
//!   the transfer single-use on chain: no path moves money twice.
//! - A chain or store outage is `unexpected_verify_error` / `unexpected_settle_error`,
//!   logged as an outage (never as a refused payment). A receipt that does not arrive in
//!   time is `settlement_pending` with the transaction hash.
//! - Nothing secret or personal is logged: payer addresses and reason codes only.

mod http;

pub use http::router;

use alloy_primitives::B256;
use std::sync::Arc;
use worldstore_domain::network::Network;
use worldstore_domain::ports::chain::{Chain, ChainError, Settlement};
use worldstore_domain::ports::store::{Conflict, Key, NonceReservation, Store, StoreError};
use worldstore_domain::x402::{
    FacilitatorRequest, PaymentPayload, ReasonCode, Refusal, SettleResponse, SupportedKind,
    SupportedResponse, VerifiedPayment, VerifyPolicy, VerifyResponse, check_chain, check_offline,
};

/// The driver's clock, in unix seconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// One facilitator serving one chain.
pub struct Facilitator<C, S> {
    chain: C,
    store: S,
    policy: VerifyPolicy,
    clock: Clock,
}

/// Why a request was not answered with a verdict.
enum Failure {
    Refused(Refusal),
    /// An outage of the chain or the store; the message names which.
    Unexpected(String),
}

impl<C: Chain, S: Store> Facilitator<C, S> {
    pub fn new(chain: C, store: S, policy: VerifyPolicy, clock: Clock) -> Self {
        Self {
            chain,
            store,
            policy,
            clock,
        }
    }

    pub fn chain(&self) -> &C {
        &self.chain
    }

    fn network(&self) -> Network {
        self.chain.network()
    }

    /// `GET /supported`: the v1 and the v2 kind of our network, and our gas payer.
    pub fn supported(&self) -> SupportedResponse {
        let network = self.network();
        let kind = |version: u64, name: &str| SupportedKind {
            x402_version: version,
            scheme: "exact".into(),
            network: name.into(),
            extra: None,
        };
        let signers = serde_json::json!([self.chain.gas_payer().to_checksum(None)]);
        SupportedResponse {
            kinds: vec![kind(1, network.v1_name()), kind(2, network.caip2())],
            extensions: vec![],
            signers: [("eip155:*".to_owned(), signers)].into_iter().collect(),
        }
    }

    async fn verified(&self, request: &FacilitatorRequest) -> Result<VerifiedPayment, Failure> {
        let now = (self.clock)();
        let signed = check_offline(
            &request.payment_payload,
            &request.payment_requirements,
            &self.policy,
            now,
        )
        .map_err(Failure::Refused)?;
        let facts = self
            .chain
            .chain_facts(&signed)
            .await
            .map_err(|e| chain_outage("reading payment facts", &e))?;
        check_chain(signed, &facts).map_err(Failure::Refused)
    }

    /// `POST /verify`.
    pub async fn verify(&self, request: &FacilitatorRequest) -> VerifyResponse {
        let version = request.payment_payload.x402_version();
        match self.verified(request).await {
            Ok(payment) => VerifyResponse {
                is_valid: true,
                invalid_reason: None,
                invalid_message: None,
                payer: Some(payment.payer),
            },
            Err(Failure::Refused(refusal)) => {
                tracing::info!(reason = %refusal.reason, payer = ?refusal.payer, "payment refused at verify");
                VerifyResponse {
                    is_valid: false,
                    invalid_reason: Some(spelled(refusal.reason, version)),
                    invalid_message: Some(refusal.message),
                    payer: refusal.payer,
                }
            }
            Err(Failure::Unexpected(message)) => VerifyResponse {
                is_valid: false,
                invalid_reason: Some(ReasonCode::UnexpectedVerifyError),
                invalid_message: Some(message),
                payer: Some(request.payment_payload.exact().authorization.from),
            },
        }
    }

    /// `POST /settle`.
    pub async fn settle(&self, request: &FacilitatorRequest) -> SettleResponse {
        let version = request.payment_payload.x402_version();
        let network = match version {
            1 => self.network().v1_name(),
            _ => self.network().caip2(),
        };
        let claimed_payer = request.payment_payload.exact().authorization.from;
        let refused = |reason: ReasonCode, message: String, transaction: String| SettleResponse {
            success: false,
            error_reason: Some(spelled(reason, version)),
            error_message: Some(message),
            transaction,
            network: network.to_owned(),
            payer: Some(claimed_payer),
            amount: None,
        };
        let payment = match self.verified(request).await {
            Ok(payment) => payment,
            Err(Failure::Refused(refusal)) => {
                tracing::info!(reason = %refusal.reason, payer = ?refusal.payer, "payment refused at settle");
                return refused(refusal.reason, refusal.message, String::new());
            }
            Err(Failure::Unexpected(message)) => {
                return refused(ReasonCode::UnexpectedSettleError, message, String::new());
            }
        };
        if let Err(message) = self.reserve(&payment, &request.payment_payload).await {
            return refused(ReasonCode::UnexpectedSettleError, message, String::new());
        }
        match self.chain.settle(&payment).await {
            Ok(Settlement::Confirmed(confirmed)) => {
                tracing::info!(payer = %payment.payer, tx = %confirmed.tx_hash, "payment settled");
                SettleResponse {
                    success: true,
                    error_reason: None,
                    error_message: None,
                    transaction: tx_text(confirmed.tx_hash),
                    network: network.to_owned(),
                    payer: Some(payment.payer),
                    amount: Some(payment.authorization.value.to_string()),
                }
            }
            Ok(Settlement::Pending { tx_hash }) => {
                tracing::warn!(payer = %payment.payer, tx = %tx_hash, "settlement pending: receipt not yet seen");
                refused(
                    ReasonCode::SettlementPending,
                    "transaction sent; its receipt has not arrived yet".into(),
                    tx_text(tx_hash),
                )
            }
            Err(ChainError::WouldRevert(reason)) => refused(
                worldstore_domain::x402::verify::reason_for_revert(&reason),
                reason,
                String::new(),
            ),
            Err(ChainError::Failed { tx_hash, reason }) => refused(
                ReasonCode::InvalidTransactionState,
                format!(
                    "transaction failed on chain{}",
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                ),
                tx_text(tx_hash),
            ),
            Err(error) => {
                let Failure::Unexpected(message) = chain_outage("settling", &error) else {
                    unreachable!()
                };
                refused(ReasonCode::UnexpectedSettleError, message, String::new())
            }
        }
    }

    /// Reserves the authorization's nonce. Losing the reservation is not an error: another
    /// request is settling this authorization, and the chain adapter answers with that
    /// settlement (or the chain refuses a used nonce) instead of transferring twice.
    async fn reserve(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
    ) -> Result<(), String> {
        let key = payment.nonce_key();
        let order_id = match payload {
            PaymentPayload::V2(p) => p.payment_identifier().map(str::to_owned),
            PaymentPayload::V1(_) => None,
        }
        .unwrap_or_else(|| format!("x402-{}", key.nonce));
        let order_id = Key::parse(&order_id).map_err(|e| format!("nonce reservation key: {e}"))?;
        match self
            .store
            .reserve_nonce(&NonceReservation { key, order_id }, (self.clock)())
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(Conflict::NonceTaken(_))) => {
                tracing::info!(payer = %payment.payer, "authorization already being settled; joining that settlement");
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, "store outage while reserving a nonce");
                Err(format!("store unavailable: {error}"))
            }
        }
    }
}

fn chain_outage(doing: &str, error: &ChainError) -> Failure {
    tracing::error!(%error, "chain outage while {doing}");
    Failure::Unexpected(format!("chain unavailable while {doing}: {error}"))
}

/// The reason as the message's version spells it (v1 names the value rule differently).
fn spelled(reason: ReasonCode, version: u8) -> ReasonCode {
    match (&reason, version) {
        (ReasonCode::InvalidValue, 1) => ReasonCode::Other(reason.as_str_for(1).to_owned()),
        _ => reason,
    }
}

fn tx_text(hash: B256) -> String {
    format!("{hash:#x}")
}
