//! `chain_embedded`: the sandbox chain behind the same port, with a simulated clock.

mod anvil;

use alloy_primitives::{Address, U256, address};
use anvil::{BUYER_KEY, DEPLOYER_KEY, paid_through_x402, payment, signer, usdc};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use worldstore_adapters::chain_embedded::{EmbeddedChain, EmbeddedChainConfig};
use worldstore_domain::network::Network;
use worldstore_domain::ports::chain::{BalanceWatch, Chain, ChainError, Settlement, UsdcTransfer};
use worldstore_domain::x402::{
    NonceState, ReasonCode, SignedPayment, Simulation, VerifiedPayment, check_chain,
};

const TREASURY: Address = address!("0x7EA5000000000000000000000000000000007EA5");
const START: u64 = 1_800_000_000;

struct Sandbox {
    chain: EmbeddedChain,
    clock: Arc<AtomicU64>,
}

fn sandbox() -> Sandbox {
    let clock = Arc::new(AtomicU64::new(START));
    let reading = Arc::clone(&clock);
    let config =
        EmbeddedChainConfig::new(TREASURY, Arc::new(move || reading.load(Ordering::SeqCst)));
    let chain = EmbeddedChain::new(config).expect("sandbox starts");
    chain
        .mint(signer(BUYER_KEY).address(), usdc(100))
        .expect("faucet");
    Sandbox { chain, clock }
}

fn buyer_payment(value: U256, window: (u64, u64), nonce: u8) -> SignedPayment {
    let buyer = signer(BUYER_KEY);
    payment(
        &Network::BaseSepolia.usdc(),
        &buyer,
        buyer.address(),
        TREASURY,
        value,
        window,
        nonce,
    )
}

const WINDOW: (u64, u64) = (START - 600, START + 300);

#[tokio::test]
async fn the_sandbox_token_sits_at_base_sepolias_usdc_address_with_its_domain() {
    let s = sandbox();
    let token = s.chain.token().await.unwrap();
    assert_eq!(token.deployment, Network::BaseSepolia.usdc());
    assert!(s.chain.has_code(token.deployment.address).await.unwrap());
    assert!(!s.chain.has_code(TREASURY).await.unwrap());
    let balances = s.chain.balances(signer(BUYER_KEY).address()).await.unwrap();
    assert_eq!(
        (balances.network, balances.usdc),
        (Network::BaseSepolia, usdc(100))
    );
}

#[tokio::test]
async fn a_payment_signed_for_base_sepolia_settles_with_its_transfer_log() {
    let s = sandbox();
    let p = buyer_payment(usdc(3), WINDOW, 1);
    let facts = s.chain.chain_facts(&p).await.unwrap();
    assert_eq!(facts.simulation, Simulation::Succeeded, "{facts:?}");
    let verified = check_chain(p.clone(), &facts).expect("verifies");
    let Settlement::Confirmed(confirmed) = s.chain.settle(&verified).await.unwrap() else {
        panic!("the sandbox mines at once")
    };
    assert!(
        s.chain
            .authorization_used(p.payer, p.authorization.nonce)
            .await
            .unwrap()
    );
    assert_eq!(s.chain.usdc_balance(TREASURY).await.unwrap(), usdc(3));
    assert_eq!(
        s.chain
            .reconcile(confirmed.tx_hash, UsdcTransfer::of_payment(&p))
            .await
            .unwrap(),
        Settlement::Confirmed(confirmed.clone())
    );
    // Settling again answers the same receipt; nothing moves twice.
    let again = s.chain.settle(&verified).await.unwrap();
    assert_eq!(again.tx_hash(), confirmed.tx_hash);
    assert_eq!(s.chain.usdc_balance(TREASURY).await.unwrap(), usdc(3));
}

#[tokio::test]
async fn each_kind_of_revert_maps_to_its_reason_code_under_the_drivers_clock() {
    let s = sandbox();
    let buyer = signer(BUYER_KEY).address();
    let other = signer(DEPLOYER_KEY);
    let token = Network::BaseSepolia.usdc();
    let cases: Vec<(&str, SignedPayment, ReasonCode)> = vec![
        (
            "expired",
            buyer_payment(usdc(1), (0, START - 1), 2),
            ReasonCode::InvalidValidBefore,
        ),
        (
            "not yet valid",
            buyer_payment(usdc(1), (START + 60, START + 600), 3),
            ReasonCode::InvalidValidAfter,
        ),
        (
            "bad signature",
            payment(&token, &other, buyer, TREASURY, usdc(1), WINDOW, 4),
            ReasonCode::InvalidSignature,
        ),
        (
            "insufficient balance",
            buyer_payment(usdc(1000), WINDOW, 5),
            ReasonCode::InsufficientFunds,
        ),
    ];
    for (name, p, reason) in cases {
        let facts = s.chain.chain_facts(&p).await.unwrap();
        assert_eq!(check_chain(p, &facts).unwrap_err().reason, reason, "{name}");
    }
    // Time moves with the driver's clock: the not-yet-valid authorization becomes valid.
    s.clock.store(START + 61, Ordering::SeqCst);
    let p = buyer_payment(usdc(1), (START + 60, START + 600), 3);
    assert_eq!(
        s.chain.chain_facts(&p).await.unwrap().simulation,
        Simulation::Succeeded
    );
    s.chain.settle(&VerifiedPayment(p.clone())).await.unwrap();
    let facts = s.chain.chain_facts(&p).await.unwrap();
    assert_eq!(facts.nonce, NonceState::UsedOnChain);
    assert_eq!(
        check_chain(p, &facts).unwrap_err().reason,
        ReasonCode::InvalidTransactionState
    );
}

#[tokio::test]
async fn a_gas_payer_below_the_floor_is_refused() {
    let clock = Arc::new(|| START);
    let mut config = EmbeddedChainConfig::new(TREASURY, clock);
    config.gas_floor_wei = U256::from(1_000u64);
    let floored = EmbeddedChain::new(config).unwrap();
    floored.set_gas_balance(TREASURY, U256::from(5u64)).unwrap();
    let error = floored
        .settle(&VerifiedPayment(buyer_payment(usdc(1), WINDOW, 1)))
        .await
        .unwrap_err();
    assert!(matches!(error, ChainError::GasBelowFloor { .. }), "{error}");
}

#[tokio::test]
async fn refunds_and_balance_watches_work_in_the_sandbox() {
    let s = sandbox();
    let customer = address!("0xC057000000000000000000000000000000000C05");
    s.chain
        .settle(&VerifiedPayment(buyer_payment(usdc(10), WINDOW, 1)))
        .await
        .unwrap();
    let (watch, refund) = tokio::join!(
        s.chain
            .watch_usdc_balance(customer, usdc(4), Duration::from_secs(5)),
        async { s.chain.transfer_usdc(customer, usdc(4)).await }
    );
    assert!(matches!(refund.unwrap(), Settlement::Confirmed(_)));
    assert_eq!(watch.unwrap(), BalanceWatch::Reached(usdc(4)));
    assert_eq!(s.chain.usdc_balance(TREASURY).await.unwrap(), usdc(6));
}

#[test]
fn the_sandbox_chain_is_shared_across_threads() {
    let s = Arc::new(sandbox());
    let threads: Vec<_> = (0..4u8)
        .map(|i| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                runtime.block_on(s.chain.settle(&VerifiedPayment(buyer_payment(
                    usdc(1),
                    WINDOW,
                    10 + i,
                ))))
            })
        })
        .collect();
    for t in threads {
        assert!(matches!(
            t.join().unwrap().unwrap(),
            Settlement::Confirmed(_)
        ));
    }
    assert_eq!(s.chain.block_number().unwrap(), 2 + 4);
}

#[tokio::test]
async fn a_buyer_configured_for_base_sepolia_pays_the_sandbox_through_x402() {
    let s = sandbox();
    let buyer = signer(BUYER_KEY);
    let p = paid_through_x402(
        &Network::BaseSepolia.usdc(),
        &buyer,
        TREASURY,
        usdc(7),
        START,
        42,
    );
    let facts = s.chain.chain_facts(&p).await.unwrap();
    let verified = check_chain(p, &facts).expect("the sandbox token accepts it");
    assert!(matches!(
        s.chain.settle(&verified).await.unwrap(),
        Settlement::Confirmed(_)
    ));
    assert_eq!(s.chain.usdc_balance(TREASURY).await.unwrap(), usdc(7));
}

#[tokio::test]
async fn balances_are_read_on_every_configured_network() {
    let (a, b) = (sandbox(), sandbox());
    b.chain.mint(TREASURY, usdc(2)).unwrap();
    let all =
        worldstore_adapters::chain_rpc::balances_everywhere(&[a.chain, b.chain], TREASURY).await;
    let usdc_seen: Vec<U256> = all.iter().map(|(_, r)| r.as_ref().unwrap().usdc).collect();
    assert_eq!(usdc_seen, vec![U256::ZERO, usdc(2)]);
    assert!(
        all.iter()
            .all(|(n, r)| *n == Network::BaseSepolia && r.as_ref().unwrap().gas > U256::ZERO)
    );
}
