//! The verification rules, property-tested: a payment signed by our client for an offer
//! verifies, and every single-field mutation of it is refused with the right reason code.

use alloy_primitives::{Address, U256};
use proptest::prelude::*;
use worldstore_domain::UsdcAmount;
use worldstore_domain::eip3009::{LocalSigner, Nonce};
use worldstore_domain::network::Network;
use worldstore_domain::x402::client::{PaymentChallenge, sign_payment};
use worldstore_domain::x402::header;
use worldstore_domain::x402::{
    ChainFacts, NonceState, PaymentOffer, PaymentPayload, PaymentRequiredAnswer,
    PaymentRequirements, ReasonCode, Simulation, VerifyPolicy, verify,
};

const MAX_TIMEOUT: u64 = 600;

/// One valid payment and everything needed to verify it.
#[derive(Debug, Clone)]
struct Case {
    payment: PaymentPayload,
    requirements: PaymentRequirements,
    facts: ChainFacts,
    policy: VerifyPolicy,
    now: u64,
}

impl Case {
    fn verify(&self) -> Result<(), ReasonCode> {
        verify(
            &self.payment,
            &self.requirements,
            &self.facts,
            &self.policy,
            self.now,
        )
        .map(|_| ())
        .map_err(|refusal| refusal.reason)
    }

    fn authorization(&mut self) -> &mut worldstore_domain::eip3009::Authorization {
        match &mut self.payment {
            PaymentPayload::V1(p) => &mut p.payload.authorization,
            PaymentPayload::V2(p) => &mut p.payload.authorization,
        }
    }

    fn signature(&mut self) -> &mut String {
        match &mut self.payment {
            PaymentPayload::V1(p) => &mut p.payload.signature,
            PaymentPayload::V2(p) => &mut p.payload.signature,
        }
    }

    fn is_v1(&self) -> bool {
        matches!(self.payment, PaymentPayload::V1(_))
    }
}

fn signer_from(seed: [u8; 32]) -> LocalSigner {
    // A seed outside the scalar range is astronomically unlikely; nudge it if it happens.
    LocalSigner::from_bytes(seed).unwrap_or_else(|_| LocalSigner::from_bytes([1; 32]).unwrap())
}

fn build_case(
    key: [u8; 32],
    pay_to: [u8; 20],
    atomic: u64,
    nonce: [u8; 32],
    now: u64,
    v1: bool,
) -> Case {
    let buyer = signer_from(key);
    let token = Network::BaseSepolia.usdc();
    let offer = PaymentOffer {
        resource: "http://127.0.0.1:8080/api/orders".into(),
        description: "Order".into(),
        mime_type: "application/json".into(),
        token: token.clone(),
        amount: UsdcAmount::from_atomic(u128::from(atomic)),
        pay_to: Address::from(pay_to),
        max_timeout_seconds: MAX_TIMEOUT,
        extra: Default::default(),
    };
    let answer = PaymentRequiredAnswer::new("Payment required", std::slice::from_ref(&offer));
    let (challenge, requirements) = if v1 {
        (
            PaymentChallenge::V1(answer.body.clone()),
            PaymentRequirements::V1(offer.requirements_v1()),
        )
    } else {
        (
            PaymentChallenge::V2(answer.v2.clone()),
            PaymentRequirements::V2(offer.requirements_v2()),
        )
    };
    let payment = sign_payment(&buyer, &challenge, 0, &token, Nonce::new(nonce), now).unwrap();
    Case {
        payment,
        requirements,
        facts: ChainFacts {
            token_has_code: true,
            payer_balance: U256::from(atomic),
            nonce: NonceState::Unused,
            simulation: Simulation::Succeeded,
        },
        policy: VerifyPolicy::new(vec![token]),
        now,
    }
}

fn any_case() -> impl Strategy<Value = Case> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 20]>(),
        1u64..1_000_000_000_000,
        any::<[u8; 32]>(),
        1_000_000_000u64..4_000_000_000,
        any::<bool>(),
    )
        .prop_map(|(key, pay_to, atomic, nonce, now, v1)| {
            build_case(key, pay_to, atomic, nonce, now, v1)
        })
}

fn other_address(original: Address, salt: u8) -> Address {
    let mut bytes = original.0.0;
    bytes[19] ^= salt.max(1);
    Address::from(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_payment_signed_for_an_offer_verifies(case in any_case()) {
        prop_assert_eq!(case.verify(), Ok(()));
        // ...also after travelling through its header.
        let received = header::decode_x_payment(&case.payment.header_value()).unwrap();
        prop_assert_eq!(&received, &case.payment);
    }

    #[test]
    fn a_changed_amount_is_refused(mut case in any_case(), delta in 1u64..1_000_000, up in any::<bool>()) {
        let auth = case.authorization();
        let original = auth.value;
        // The amount is at least 1, so even a saturating decrease changes it.
        auth.value = if up { original + U256::from(delta) } else { original.saturating_sub(U256::from(delta)) };
        let expected = if case.is_v1() && up {
            // v1 accepts more than the amount, but the signature covers the original value.
            ReasonCode::InvalidSignature
        } else {
            ReasonCode::InvalidValue
        };
        prop_assert_eq!(case.verify(), Err(expected));
    }

    #[test]
    fn a_changed_recipient_is_refused(mut case in any_case(), salt in any::<u8>()) {
        let auth = case.authorization();
        auth.to = other_address(auth.to, salt);
        prop_assert_eq!(case.verify(), Err(ReasonCode::RecipientMismatch));
    }

    #[test]
    fn a_changed_payer_is_refused(mut case in any_case(), salt in any::<u8>()) {
        let auth = case.authorization();
        auth.from = other_address(auth.from, salt);
        prop_assert_eq!(case.verify(), Err(ReasonCode::InvalidSignature));
    }

    #[test]
    fn a_changed_nonce_is_refused(mut case in any_case(), index in 0usize..32, bit in 0u8..8) {
        let auth = case.authorization();
        let mut nonce = auth.nonce.as_b256().0;
        nonce[index] ^= 1 << bit;
        auth.nonce = Nonce::new(nonce);
        prop_assert_eq!(case.verify(), Err(ReasonCode::InvalidSignature));
    }

    #[test]
    fn a_changed_signature_byte_is_refused(mut case in any_case(), index in 0usize..65, bit in 0u8..8) {
        let signature = case.signature();
        let mut bytes = alloy_primitives::hex::decode(&signature[2..]).unwrap();
        bytes[index] ^= 1 << bit;
        *signature = alloy_primitives::hex::encode_prefixed(&bytes);
        prop_assert_eq!(case.verify(), Err(ReasonCode::InvalidSignature));
    }

    #[test]
    fn a_window_that_is_not_yet_open_is_refused(mut case in any_case(), ahead in 1u64..100_000) {
        let now = case.now;
        case.authorization().valid_after = U256::from(now + ahead);
        prop_assert_eq!(case.verify(), Err(ReasonCode::InvalidValidAfter));
    }

    #[test]
    fn a_window_that_closes_too_soon_is_refused(mut case in any_case(), left in 0u64..6) {
        let now = case.now;
        case.authorization().valid_before = U256::from(now + left);
        prop_assert_eq!(case.verify(), Err(ReasonCode::InvalidValidBefore));
    }

    #[test]
    fn an_overlong_window_is_refused(mut case in any_case(), beyond in 1u64..10_000_000) {
        let latest = case.now + MAX_TIMEOUT + case.policy.validity_slack_seconds;
        case.authorization().valid_before = U256::from(latest + beyond);
        prop_assert_eq!(case.verify(), Err(ReasonCode::InvalidValidBefore));
    }

    #[test]
    fn a_shifted_but_still_open_window_is_refused_by_the_signature(mut case in any_case(), back in 1u64..1000) {
        // The client backdates validAfter by 600 s from a `now` above 10^9: still open.
        let auth = case.authorization();
        auth.valid_after -= U256::from(back);
        prop_assert_eq!(case.verify(), Err(ReasonCode::InvalidSignature));
    }

    #[test]
    fn a_changed_network_is_refused(mut case in any_case()) {
        match &mut case.payment {
            PaymentPayload::V1(p) => p.network = "base".into(),
            PaymentPayload::V2(p) => p.accepted.network = "eip155:8453".into(),
        }
        prop_assert_eq!(case.verify(), Err(ReasonCode::InvalidNetwork));
    }

    #[test]
    fn a_network_this_verifier_does_not_serve_is_refused(mut case in any_case()) {
        // The offer and the payment agree on Base, but only Base Sepolia is served.
        match (&mut case.payment, &mut case.requirements) {
            (PaymentPayload::V1(p), PaymentRequirements::V1(r)) => { p.network = "base".into(); r.network = "base".into(); }
            (PaymentPayload::V2(p), PaymentRequirements::V2(r)) => { p.accepted.network = "eip155:8453".into(); r.network = "eip155:8453".into(); }
            _ => unreachable!(),
        }
        prop_assert_eq!(case.verify(), Err(ReasonCode::InvalidNetwork));
    }

    #[test]
    fn a_changed_asset_is_refused(mut case in any_case(), salt in any::<u8>()) {
        let other = other_address(Network::BaseSepolia.usdc().address, salt);
        match (&mut case.payment, &mut case.requirements) {
            // v2: the client claims to have accepted another asset than offered.
            (PaymentPayload::V2(p), _) => p.accepted.asset = other,
            // v1: the requirements name a token that is not the configured USDC.
            (PaymentPayload::V1(_), PaymentRequirements::V1(r)) => r.asset = other,
            _ => unreachable!(),
        }
        prop_assert_eq!(case.verify(), Err(ReasonCode::InvalidPaymentRequirements));
    }

    #[test]
    fn a_payment_for_another_offer_is_refused(case in any_case(), other_amount in 1u64..1_000_000) {
        // Cross-order replay: the same authorization presented for a dearer offer.
        let mut dearer = case.clone();
        match &mut dearer.requirements {
            PaymentRequirements::V1(r) => r.max_amount_required += U256::from(other_amount),
            PaymentRequirements::V2(r) => r.amount += U256::from(other_amount),
        }
        prop_assert_eq!(dearer.verify(), Err(ReasonCode::InvalidValue));
    }

    #[test]
    fn chain_facts_refuse_with_their_own_reason(case in any_case(), which in 0usize..5) {
        let mut case = case;
        let expected = match which {
            0 => { case.facts.payer_balance -= U256::from(1); ReasonCode::InsufficientFunds }
            1 => { case.facts.nonce = NonceState::UsedOnChain; ReasonCode::InvalidTransactionState }
            2 => { case.facts.nonce = NonceState::ReservedElsewhere; ReasonCode::InvalidTransactionState }
            3 => { case.facts.token_has_code = false; ReasonCode::InvalidPaymentRequirements }
            _ => { case.facts.simulation = Simulation::Reverted("FiatTokenV2: authorization is used or canceled".into()); ReasonCode::InvalidTransactionState }
        };
        prop_assert_eq!(case.verify(), Err(expected));
    }

    #[test]
    fn sign_then_recover_gives_the_signer(key in any::<[u8; 32]>(), hash in any::<[u8; 32]>()) {
        let Ok(signer) = LocalSigner::from_bytes(key) else { return Ok(()) };
        let hash = alloy_primitives::B256::from(hash);
        let signature = signer.sign_hash(hash);
        prop_assert_eq!(signature.recover_address(hash), Ok(signer.address()));
        let reparsed = worldstore_domain::eip3009::Signature::parse_hex(&signature.to_hex()).unwrap();
        prop_assert_eq!(reparsed, signature);
    }
}

#[test]
fn a_payment_of_the_wrong_version_for_the_offer_is_refused() {
    let v1 = build_case([3; 32], [9; 20], 1_000_000, [1; 32], 1_800_000_000, true);
    let v2 = build_case([3; 32], [9; 20], 1_000_000, [1; 32], 1_800_000_000, false);
    let mixed = Case {
        requirements: v2.requirements.clone(),
        ..v1
    };
    assert_eq!(mixed.verify(), Err(ReasonCode::InvalidX402Version));
}

#[test]
fn another_scheme_is_refused() {
    let mut case = build_case([3; 32], [9; 20], 1_000_000, [1; 32], 1_800_000_000, true);
    if let PaymentRequirements::V1(r) = &mut case.requirements {
        r.scheme = "upto".into();
    }
    assert_eq!(case.verify(), Err(ReasonCode::UnsupportedScheme));
    let mut case = build_case([3; 32], [9; 20], 1_000_000, [1; 32], 1_800_000_000, true);
    if let PaymentPayload::V1(p) = &mut case.payment {
        p.scheme = "upto".into();
    }
    assert_eq!(case.verify(), Err(ReasonCode::InvalidScheme));
}

#[test]
fn a_wrong_eip712_domain_name_in_the_offer_is_refused() {
    // Mainnet USDC is "USD Coin"; the original system signed "USDC" everywhere.
    let mut case = build_case([3; 32], [9; 20], 1_000_000, [1; 32], 1_800_000_000, false);
    if let (PaymentRequirements::V2(r), PaymentPayload::V2(p)) =
        (&mut case.requirements, &mut case.payment)
    {
        r.extra.insert("name".into(), "USD Coin".into());
        p.accepted.extra.insert("name".into(), "USD Coin".into());
    }
    assert_eq!(case.verify(), Err(ReasonCode::InvalidPaymentRequirements));
}

#[test]
fn the_refusal_names_the_claimed_payer_and_explains_itself() {
    let mut case = build_case([3; 32], [9; 20], 1_000_000, [1; 32], 1_800_000_000, false);
    case.facts.payer_balance = U256::from(5);
    let refusal = verify(
        &case.payment,
        &case.requirements,
        &case.facts,
        &case.policy,
        case.now,
    )
    .unwrap_err();
    assert_eq!(refusal.payer, Some(signer_from([3; 32]).address()));
    assert!(
        refusal.message.contains("payer holds 5"),
        "{}",
        refusal.message
    );
}
