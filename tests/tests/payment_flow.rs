//! One purchase's payment across the whole core, through the bytes that cross the wire:
//! the merchant's 402 answer (v1 body and v2 header), the buyer's derived wallet signing
//! the offer it read, the header the buyer sends, and the facilitator's verdict.

use alloy_primitives::{Address, U256};
use worldstore_domain::eip3009::Nonce;
use worldstore_domain::network::Network;
use worldstore_domain::wallet::{DerivationScheme, MasterSecret, derive_wallet};
use worldstore_domain::x402::client::{PaymentChallenge, sign_payment};
use worldstore_domain::x402::header;
use worldstore_domain::x402::{
    ChainFacts, NonceState, PaymentOffer, PaymentRequiredAnswer, PaymentRequirements, ReasonCode,
    Simulation, VerifyPolicy, verify,
};
use worldstore_domain::{FeeRate, UsdcAmount};

const MASTER: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const NOW: u64 = 1_795_694_400;

fn offer_for(order: &str, quote: &str, treasury: Address) -> PaymentOffer {
    let fee = FeeRate::parse_percentage("2.5").unwrap();
    PaymentOffer {
        resource: format!("http://127.0.0.1:8080/api/orders/{order}"),
        description: format!("Order {order}"),
        mime_type: "application/json".into(),
        token: Network::BaseSepolia.usdc(),
        amount: fee
            .total_with_fee(UsdcAmount::parse_decimal(quote).unwrap())
            .unwrap(),
        pay_to: treasury,
        max_timeout_seconds: 600,
        extra: [("orderId".to_owned(), order.into())].into_iter().collect(),
    }
}

fn funded() -> ChainFacts {
    ChainFacts {
        token_has_code: true,
        payer_balance: UsdcAmount::from_usdc(100).to_u256(),
        nonce: NonceState::Unused,
        simulation: Simulation::Succeeded,
    }
}

#[test]
fn a_buyer_pays_an_order_in_either_protocol_version() {
    let master = MasterSecret::new(MASTER.into());
    let buyer = derive_wallet(&master, "inbox-of-pat", DerivationScheme::Default).unwrap();
    let treasury = Address::repeat_byte(0x7a);
    let offer = offer_for("ord_1", "12.34", treasury);
    assert_eq!(
        offer.amount,
        UsdcAmount::from_atomic(12_648_500),
        "12.34 + 2.5 % fee, rounded up"
    );
    let answer = PaymentRequiredAnswer::new("Payment required", std::slice::from_ref(&offer));
    let policy = VerifyPolicy::new(vec![Network::BaseSepolia.usdc()]);

    // What the merchant sends: a v1 JSON body and a v2 header.
    let body = serde_json::to_vec(&answer.body).unwrap();
    let header_value = answer.header_value();
    for (challenge, requirements) in [
        (
            PaymentChallenge::from_response(None, &body).unwrap(),
            PaymentRequirements::V1(offer.requirements_v1()),
        ),
        (
            PaymentChallenge::from_response(Some(&header_value), &body).unwrap(),
            PaymentRequirements::V2(offer.requirements_v2()),
        ),
    ] {
        let terms = &challenge.offers()[0];
        assert_eq!(terms.amount, offer.amount.to_u256());
        assert_eq!(terms.network, Ok(Network::BaseSepolia));
        let payment = sign_payment(
            &buyer,
            &challenge,
            0,
            &offer.token,
            Nonce::new([4; 32]),
            NOW,
        )
        .unwrap();
        let sent = payment.header_value();
        let received = match payment.header_name() {
            "X-PAYMENT" => header::decode_x_payment(&sent).unwrap(),
            _ => header::decode_payment_signature(&sent).unwrap(),
        };
        let verified = verify(&received, &requirements, &funded(), &policy, NOW + 3).unwrap();
        assert_eq!(verified.payer, buyer.address());
        assert_eq!(verified.pay_to, treasury);
        assert_eq!(verified.authorization.value, U256::from(12_648_500u64));
        assert_eq!(verified.nonce_key().chain_id, 84532);
    }
}

#[test]
fn an_authorization_for_one_order_cannot_pay_another() {
    let master = MasterSecret::new(MASTER.into());
    let buyer = derive_wallet(&master, "inbox-of-pat", DerivationScheme::Legacy).unwrap();
    let treasury = Address::repeat_byte(0x7a);
    let cheap = offer_for("ord_cheap", "1.00", treasury);
    let dear = offer_for("ord_dear", "90.00", treasury);
    let policy = VerifyPolicy::new(vec![Network::BaseSepolia.usdc()]);

    let answer = PaymentRequiredAnswer::new("Payment required", std::slice::from_ref(&cheap));
    let challenge = PaymentChallenge::V2(answer.v2.clone());
    let payment = sign_payment(
        &buyer,
        &challenge,
        0,
        &cheap.token,
        Nonce::new([5; 32]),
        NOW,
    )
    .unwrap();

    let refusal = verify(
        &payment,
        &PaymentRequirements::V2(dear.requirements_v2()),
        &funded(),
        &policy,
        NOW,
    )
    .unwrap_err();
    assert_eq!(refusal.reason, ReasonCode::InvalidValue);
    // The same holds for a v1 server, which accepts "at least" the amount.
    let answer = PaymentRequiredAnswer::new("Payment required", std::slice::from_ref(&cheap));
    let challenge = PaymentChallenge::V1(answer.body.clone());
    let payment = sign_payment(
        &buyer,
        &challenge,
        0,
        &cheap.token,
        Nonce::new([6; 32]),
        NOW,
    )
    .unwrap();
    let refusal = verify(
        &payment,
        &PaymentRequirements::V1(dear.requirements_v1()),
        &funded(),
        &policy,
        NOW,
    )
    .unwrap_err();
    assert_eq!(refusal.reason, ReasonCode::InvalidValue);
}

#[test]
fn users_never_share_a_wallet() {
    let master = MasterSecret::new(MASTER.into());
    let mut seen = std::collections::HashSet::new();
    for inbox in (0..50).map(|i| format!("inbox-{i}")) {
        for scheme in [DerivationScheme::Default, DerivationScheme::Legacy] {
            assert!(seen.insert(derive_wallet(&master, &inbox, scheme).unwrap().address()));
        }
    }
}
