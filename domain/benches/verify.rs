//! The local verification path of an x402 payment (decode the header, EIP-712 signing
//! hash, public-key recovery, every offline and chain-fact rule), beside its physical
//! floor: one secp256k1 public-key recovery with libsecp256k1 alone, in the same run.
//!
//! `cargo bench -p worldstore-domain --bench verify`

use alloy_primitives::{Address, B256, U256};
use criterion::{Criterion, criterion_group, criterion_main};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use std::hint::black_box;
use worldstore_domain::UsdcAmount;
use worldstore_domain::eip3009::{LocalSigner, Nonce};
use worldstore_domain::network::Network;
use worldstore_domain::x402::client::{PaymentChallenge, sign_payment};
use worldstore_domain::x402::header;
use worldstore_domain::x402::{
    ChainFacts, NonceState, PaymentOffer, PaymentRequiredAnswer, PaymentRequirements, Simulation,
    VerifyPolicy, check_chain, check_offline,
};

const NOW: u64 = 1_795_694_400;

fn bench(c: &mut Criterion) {
    let token = Network::BaseSepolia.usdc();
    let buyer = LocalSigner::from_bytes([0x11; 32]).expect("valid key");
    let offer = PaymentOffer {
        resource: "http://127.0.0.1:8080/api/orders".into(),
        description: "Order ord_bench: 1 item".into(),
        mime_type: "application/json".into(),
        token: token.clone(),
        amount: UsdcAmount::from_atomic(12_650_000),
        pay_to: Address::repeat_byte(0x22),
        max_timeout_seconds: 600,
        extra: Default::default(),
    };
    let answer = PaymentRequiredAnswer::new("Payment required", std::slice::from_ref(&offer));
    let challenge = PaymentChallenge::V2(answer.v2.clone());
    let payment =
        sign_payment(&buyer, &challenge, 0, &token, Nonce::new([7; 32]), NOW).expect("offer");
    let header_value = payment.header_value();
    let requirements = PaymentRequirements::V2(offer.requirements_v2());
    let policy = VerifyPolicy::new(vec![token.clone()]);
    let facts = ChainFacts {
        token_has_code: true,
        payer_balance: U256::from(100_000_000u64),
        nonce: NonceState::Unused,
        simulation: Simulation::Succeeded,
    };

    let mut group = c.benchmark_group("x402");
    group.bench_function("verify_path (decode + hash + recover + rules)", |b| {
        b.iter(|| {
            let payment =
                header::decode_payment_signature(black_box(&header_value)).expect("decodes");
            let signed = check_offline(&payment, &requirements, &policy, NOW + 1).expect("valid");
            black_box(check_chain(signed, &facts).expect("valid"))
        })
    });
    group.bench_function("decode_header_only", |b| {
        b.iter(|| header::decode_payment_signature(black_box(&header_value)).expect("decodes"))
    });
    let authorization = payment.exact().authorization.clone();
    let separator = token.eip712_domain().separator();
    group.bench_function(
        "signing_hash_only (separator cached, as verification does)",
        |b| b.iter(|| black_box(&authorization).signing_hash_with_separator(black_box(separator))),
    );

    // The floor: libsecp256k1 recovery of one public key, nothing else.
    let hash = B256::repeat_byte(0x42);
    let signature = buyer.sign_hash(hash);
    let mut compact = [0u8; 64];
    compact.copy_from_slice(&signature.to_bytes()[..64]);
    let recovery_id = if signature.y_parity() {
        RecoveryId::One
    } else {
        RecoveryId::Zero
    };
    let recoverable = RecoverableSignature::from_compact(&compact, recovery_id).expect("valid");
    let message = secp256k1::Message::from_digest(hash.0);
    group.bench_function("libsecp256k1_recover_only (floor)", |b| {
        b.iter(|| {
            black_box(&recoverable)
                .recover_ecdsa(black_box(message))
                .expect("recovers")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
