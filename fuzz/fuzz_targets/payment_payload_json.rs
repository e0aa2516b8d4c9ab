//! Payment payload and facilitator request JSON: never panics, and the verification rules
//! never panic on whatever decodes, answering with a verified payment or a reason code.
#![no_main]
use libfuzzer_sys::fuzz_target;
use worldstore_domain::network::Network;
use worldstore_domain::x402::{
    ChainFacts, FacilitatorRequest, NonceState, PaymentPayload, PaymentRequirements, Simulation,
    VerifyPolicy, verify,
};

fuzz_target!(|data: &[u8]| {
    let policy = VerifyPolicy::new(Network::ALL.iter().map(|n| n.usdc()).collect());
    let facts = ChainFacts {
        token_has_code: true,
        payer_balance: alloy_primitives::U256::from(u64::MAX),
        nonce: NonceState::Unused,
        simulation: Simulation::Succeeded,
    };
    let now = 1_795_606_987;
    if let Ok(request) = serde_json::from_slice::<FacilitatorRequest>(data) {
        let _ = verify(&request.payment_payload, &request.payment_requirements, &facts, &policy, now);
    }
    if let Ok(payment) = PaymentPayload::from_json(data) {
        let requirements = match &payment {
            PaymentPayload::V2(p) => PaymentRequirements::V2(p.accepted.clone()),
            PaymentPayload::V1(_) => return,
        };
        // A payment checked against its own `accepted` either verifies or is refused.
        let _ = verify(&payment, &requirements, &facts, &policy, now);
    }
});
