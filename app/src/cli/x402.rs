//! `worldstore x402 decode <HEADER>` and `worldstore x402 example`.

use anyhow::Context as _;
use clap::Subcommand;
use std::io::Write;
use worldstore_domain::UsdcAmount;
use worldstore_domain::eip3009::Nonce;
use worldstore_domain::network::Network;
use worldstore_domain::wallet::{DerivationScheme, MasterSecret, derive_wallet};
use worldstore_domain::x402::client::{PaymentChallenge, sign_payment};
use worldstore_domain::x402::header;
use worldstore_domain::x402::{
    ChainFacts, NonceState, PaymentOffer, PaymentRequiredAnswer, PaymentRequirements, Simulation,
    VerifyPolicy, verify,
};

#[derive(Debug, Subcommand)]
pub enum X402Command {
    /// Decode an x402 header value (X-PAYMENT, PAYMENT-SIGNATURE, PAYMENT-REQUIRED,
    /// X-PAYMENT-RESPONSE or PAYMENT-RESPONSE) and print it as JSON.
    Decode {
        /// The header's value: base64 of JSON.
        header: String,
    },
    /// Walk through one payment offline with the real code: offer, sign, encode, decode, verify.
    Example,
}

pub fn run(command: X402Command, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        X402Command::Decode { header: value } => {
            let message = header::decode_any(&value).context("not a valid x402 header")?;
            serde_json::to_writer_pretty(&mut *out, &message)?;
            writeln!(out)?;
            Ok(())
        }
        X402Command::Example => example(out),
    }
}

/// A public, well-known test key (anvil's first account): the example's master secret.
const EXAMPLE_MASTER_SECRET: &str =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// A fixed time (2026-11-25T12:00:00Z), so the example prints the same every run.
const EXAMPLE_NOW: u64 = 1_795_694_400;

fn example(out: &mut dyn Write) -> anyhow::Result<()> {
    let token = Network::BaseSepolia.usdc();
    let master = MasterSecret::new(EXAMPLE_MASTER_SECRET.to_owned());
    let buyer = derive_wallet(&master, "example-inbox", DerivationScheme::Default)?;
    let treasury = derive_wallet(&master, "example-treasury", DerivationScheme::Default)?;
    let offer = PaymentOffer {
        resource: "http://127.0.0.1:8080/api/orders".into(),
        description: "Order ord_example: 1 item".into(),
        mime_type: "application/json".into(),
        token: token.clone(),
        amount: UsdcAmount::parse_decimal("12.65")?,
        pay_to: treasury.address(),
        max_timeout_seconds: 600,
        extra: Default::default(),
    };
    let answer = PaymentRequiredAnswer::new("Payment required", std::slice::from_ref(&offer));
    let required_header = answer.header_value();
    writeln!(
        out,
        "1. The order server answers 402 with PAYMENT-REQUIRED:\n   {required_header}\n"
    )?;

    let challenge = PaymentChallenge::from_response(Some(&required_header), b"")?;
    let payment = sign_payment(
        &buyer,
        &challenge,
        0,
        &token,
        Nonce::new([7; 32]),
        EXAMPLE_NOW,
    )
    .context("the offer disappeared")?;
    let payment_header = payment.header_value();
    writeln!(
        out,
        "2. The buyer's wallet {} signs an EIP-3009 authorization for {} USDC to {} and sends {}:\n   {payment_header}\n",
        buyer.address(),
        offer.amount,
        offer.pay_to,
        payment.header_name()
    )?;

    let received = header::decode_payment_signature(&payment_header)?;
    let requirements = PaymentRequirements::V2(offer.requirements_v2());
    let facts = ChainFacts {
        token_has_code: true,
        payer_balance: UsdcAmount::from_usdc(20).to_u256(),
        nonce: NonceState::Unused,
        simulation: Simulation::Succeeded,
    };
    let policy = VerifyPolicy::new(vec![token]);
    match verify(&received, &requirements, &facts, &policy, EXAMPLE_NOW + 2) {
        Ok(verified) => writeln!(
            out,
            "3. The facilitator verifies it: payer {}, {} atomic units, nonce {}. Ready to settle.",
            verified.payer, verified.authorization.value, verified.authorization.nonce
        )?,
        Err(refusal) => writeln!(out, "3. The facilitator refuses it: {refusal}")?,
    }
    let mut tampered = received.clone();
    if let worldstore_domain::x402::PaymentPayload::V2(p) = &mut tampered {
        p.payload.authorization.value += alloy_primitives::U256::from(1);
        p.accepted.amount = p.payload.authorization.value;
    }
    let refusal = verify(&tampered, &requirements, &facts, &policy, EXAMPLE_NOW + 2)
        .err()
        .context("a tampered payment was accepted")?;
    writeln!(
        out,
        "4. The same payment with its amount raised by 1 unit is refused: {refusal}"
    )?;
    Ok(())
}
