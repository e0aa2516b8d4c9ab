//! `chain_rpc` against a private anvil running Circle's FiatTokenV2_2.

mod anvil;

use alloy::providers::Provider;
use alloy_primitives::{Address, U256, address};
use anvil::*;
use std::sync::Arc;
use std::time::Duration;
use worldstore_adapters::chain_rpc::{RpcChain, RpcChainConfig};
use worldstore_domain::ports::chain::{
    BalanceWatch, Chain, ChainError, ErrorClass, Settlement, UsdcTransfer,
};
use worldstore_domain::x402::{
    NonceState, ReasonCode, SignedPayment, Simulation, VerifiedPayment, check_chain,
};

const TREASURY: Address = address!("0x7EA5000000000000000000000000000000007EA5");

struct World {
    anvil: Anvil,
    token: worldstore_domain::UsdcDeployment,
    chain: RpcChain,
}

fn config(anvil: &Anvil, token: &worldstore_domain::UsdcDeployment) -> RpcChainConfig {
    let mut config = RpcChainConfig::new(&anvil.url, token.clone(), signer(FACILITATOR_KEY));
    config.poll_interval = Duration::from_millis(20);
    config.receipt_timeout = Duration::from_secs(10);
    config
}

/// anvil + FiatTokenV2_2 with 100 USDC for the buyer and the treasury (= facilitator).
async fn world_with(edit: impl FnOnce(&mut RpcChainConfig)) -> Option<World> {
    let anvil = Anvil::spawn()?;
    let buyer = signer(BUYER_KEY).address();
    let facilitator = signer(FACILITATOR_KEY).address();
    let token =
        deploy_fiat_token(&anvil.url, &[(buyer, usdc(100)), (facilitator, usdc(100))]).await;
    let mut config = config(&anvil, &token);
    edit(&mut config);
    let chain = RpcChain::connect(config).await.expect("connects");
    Some(World {
        anvil,
        token,
        chain,
    })
}

async fn world() -> Option<World> {
    world_with(|_| {}).await
}

fn buyer_payment(world: &World, value: U256, window: (u64, u64), nonce: u8) -> SignedPayment {
    let buyer = signer(BUYER_KEY);
    payment(
        &world.token,
        &buyer,
        buyer.address(),
        TREASURY,
        value,
        window,
        nonce,
    )
}

fn open_window() -> (u64, u64) {
    let now = unix_now();
    (now - 600, now + 300)
}

#[tokio::test]
async fn balances_code_and_token_facts_are_read_from_the_real_usdc() {
    let Some(w) = world().await else { return };
    let buyer = signer(BUYER_KEY).address();
    let balances = w.chain.balances(buyer).await.unwrap();
    assert_eq!(balances.usdc, usdc(100));
    assert!(balances.gas > U256::ZERO);
    assert!(w.chain.has_code(w.token.address).await.unwrap());
    assert!(!w.chain.has_code(buyer).await.unwrap());
    assert!(w.chain.token().await.unwrap().has_code);
}

#[tokio::test]
async fn a_valid_authorization_simulates_settles_and_shows_its_transfer_log() {
    let Some(w) = world().await else { return };
    let p = buyer_payment(&w, usdc(3), open_window(), 1);
    assert!(
        !w.chain
            .authorization_used(p.payer, p.authorization.nonce)
            .await
            .unwrap()
    );
    let facts = w.chain.chain_facts(&p).await.unwrap();
    assert_eq!(facts.simulation, Simulation::Succeeded);
    let verified = check_chain(p.clone(), &facts).expect("verifies");

    let Settlement::Confirmed(confirmed) = w.chain.settle(&verified).await.unwrap() else {
        panic!("automine gives a receipt at once")
    };
    assert_eq!(confirmed.transfer, UsdcTransfer::of_payment(&p));
    assert!(
        w.chain
            .authorization_used(p.payer, p.authorization.nonce)
            .await
            .unwrap()
    );
    assert_eq!(w.chain.usdc_balance(TREASURY).await.unwrap(), usdc(3));
    // Settling again reconciles the same transaction instead of broadcasting.
    let again = w.chain.settle(&verified).await.unwrap();
    assert_eq!(again.tx_hash(), confirmed.tx_hash);
    // A receipt for some other transfer is refused.
    let wrong = UsdcTransfer {
        value: usdc(4),
        ..confirmed.transfer
    };
    assert!(matches!(
        w.chain.reconcile(confirmed.tx_hash, wrong).await,
        Err(ChainError::TransferLogMissing { .. })
    ));
}

#[tokio::test]
async fn each_kind_of_revert_maps_to_its_reason_code() {
    let Some(w) = world().await else { return };
    let now = unix_now();
    let other = signer(DEPLOYER_KEY);
    let buyer = signer(BUYER_KEY).address();
    let cases: Vec<(&str, SignedPayment, ReasonCode)> = vec![
        (
            "expired",
            buyer_payment(&w, usdc(1), (0, now - 10), 2),
            ReasonCode::InvalidValidBefore,
        ),
        (
            "not yet valid",
            buyer_payment(&w, usdc(1), (now + 3600, now + 7200), 3),
            ReasonCode::InvalidValidAfter,
        ),
        (
            "bad signature",
            payment(&w.token, &other, buyer, TREASURY, usdc(1), open_window(), 4),
            ReasonCode::InvalidSignature,
        ),
        (
            "insufficient balance",
            buyer_payment(&w, usdc(1000), open_window(), 5),
            ReasonCode::InsufficientFunds,
        ),
    ];
    for (name, p, reason) in cases {
        let facts = w.chain.chain_facts(&p).await.unwrap();
        assert!(
            matches!(facts.simulation, Simulation::Reverted(_)),
            "{name}: {facts:?}"
        );
        let refusal = check_chain(p, &facts).expect_err(name);
        assert_eq!(refusal.reason, reason, "{name}: {refusal}");
    }
    // A used nonce: settle once, then the same authorization is refused.
    let p = buyer_payment(&w, usdc(1), open_window(), 6);
    w.chain.settle(&VerifiedPayment(p.clone())).await.unwrap();
    let facts = w.chain.chain_facts(&p).await.unwrap();
    assert_eq!(facts.nonce, NonceState::UsedOnChain);
    assert_eq!(
        check_chain(p, &facts).unwrap_err().reason,
        ReasonCode::InvalidTransactionState
    );
}

#[tokio::test]
async fn a_late_receipt_gives_pending_and_a_retry_reconciles_without_a_second_broadcast() {
    let Some(w) = world_with(|c| c.receipt_timeout = Duration::from_millis(300)).await else {
        return;
    };
    let provider = wallet_provider(&w.anvil.url, DEPLOYER_KEY);
    let () = provider
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let facilitator = signer(FACILITATOR_KEY).address();
    let nonce_before = provider
        .get_transaction_count(facilitator)
        .pending()
        .await
        .unwrap();

    let verified = VerifiedPayment(buyer_payment(&w, usdc(2), open_window(), 7));
    let Settlement::Pending { tx_hash } = w.chain.settle(&verified).await.unwrap() else {
        panic!("no block is mined, so the receipt cannot arrive")
    };
    assert_eq!(
        w.chain.settle(&verified).await.unwrap(),
        Settlement::Pending { tx_hash }
    );
    assert_eq!(
        provider
            .get_transaction_count(facilitator)
            .pending()
            .await
            .unwrap(),
        nonce_before + 1,
        "exactly one transaction was broadcast"
    );

    let _: String = provider.raw_request("evm_mine".into(), ()).await.unwrap();
    let Settlement::Confirmed(confirmed) = w.chain.settle(&verified).await.unwrap() else {
        panic!("mined now")
    };
    assert_eq!(confirmed.tx_hash, tx_hash);
    assert_eq!(
        w.chain
            .reconcile(tx_hash, UsdcTransfer::of_payment(&verified))
            .await
            .unwrap(),
        Settlement::Confirmed(confirmed)
    );
    assert_eq!(
        provider.get_transaction_count(facilitator).await.unwrap(),
        nonce_before + 1
    );
}

#[tokio::test]
async fn parallel_settlements_from_one_signer_get_consecutive_nonces() {
    let Some(w) = world().await else { return };
    let chain = Arc::new(w.chain);
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let chain = Arc::clone(&chain);
            let verified = VerifiedPayment(buyer_payment_of(&w.token, usdc(1), 100 + i));
            tokio::spawn(async move { chain.settle(&verified).await })
        })
        .collect();
    let mut hashes = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Settlement::Confirmed(c) => hashes.push(c.tx_hash),
            Settlement::Pending { .. } => panic!("automine confirms each at once"),
        }
    }
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), 8);
    assert_eq!(chain.usdc_balance(TREASURY).await.unwrap(), usdc(8));
}

fn buyer_payment_of(
    token: &worldstore_domain::UsdcDeployment,
    value: U256,
    nonce: u8,
) -> SignedPayment {
    let buyer = signer(BUYER_KEY);
    payment(
        token,
        &buyer,
        buyer.address(),
        TREASURY,
        value,
        open_window(),
        nonce,
    )
}

#[tokio::test]
async fn a_gas_payer_below_the_floor_is_refused_with_a_clear_error_that_holds_no_key() {
    let floor = U256::from(10u64).pow(U256::from(30u64));
    let Some(w) = world_with(|c| c.gas_floor_wei = floor).await else {
        return;
    };
    let verified = VerifiedPayment(buyer_payment(&w, usdc(1), open_window(), 9));
    let error = w.chain.settle(&verified).await.unwrap_err();
    assert!(matches!(error, ChainError::GasBelowFloor { .. }), "{error}");
    assert_eq!(error.class(), ErrorClass::Fatal);
    let text = format!("{error} {error:?} {:?}", w.chain);
    assert!(text.contains("below the configured floor"), "{text}");
    assert!(
        !text.to_lowercase().contains(&FACILITATOR_KEY[2..]),
        "key leaked: {text}"
    );
    assert!(
        !w.chain
            .authorization_used(verified.payer, verified.authorization.nonce)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_configured_eip712_domain_that_differs_from_the_token_fails_start_up() {
    let Some(anvil) = Anvil::spawn() else { return };
    let token = deploy_fiat_token(&anvil.url, &[]).await;
    let wrong = worldstore_domain::UsdcDeployment {
        eip712_name: "USD Coin".to_owned(),
        ..token.clone()
    };
    let error = RpcChain::connect(config(&anvil, &wrong)).await.unwrap_err();
    assert!(matches!(error, ChainError::TokenMismatch { .. }), "{error}");
    assert!(
        error.to_string().contains(r#"name "USDC" version "2""#),
        "{error}"
    );

    let no_code = worldstore_domain::UsdcDeployment {
        address: TREASURY,
        ..token
    };
    let error = RpcChain::connect(config(&anvil, &no_code))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no contract code"), "{error}");
}

#[tokio::test]
async fn refunds_move_usdc_from_the_treasury_and_watches_see_incoming_funds() {
    let Some(w) = world().await else { return };
    let customer = address!("0xC057000000000000000000000000000000000C05");
    let watch = w
        .chain
        .watch_usdc_balance(customer, usdc(5), Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(watch, BalanceWatch::TimedOut(U256::ZERO));

    let (watch, refund) = tokio::join!(
        w.chain
            .watch_usdc_balance(customer, usdc(5), Duration::from_secs(10)),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            w.chain.transfer_usdc(customer, usdc(5)).await
        }
    );
    assert!(matches!(refund.unwrap(), Settlement::Confirmed(_)));
    assert_eq!(watch.unwrap(), BalanceWatch::Reached(usdc(5)));
    assert!(matches!(
        w.chain.transfer_usdc(customer, usdc(10_000)).await,
        Err(ChainError::WouldRevert(_))
    ));
}

#[tokio::test]
async fn a_payment_made_through_x402_settles_on_circles_usdc() {
    let Some(w) = world().await else { return };
    let p = paid_through_x402(
        &w.token,
        &signer(BUYER_KEY),
        TREASURY,
        usdc(7),
        unix_now(),
        42,
    );
    let facts = w.chain.chain_facts(&p).await.unwrap();
    let verified = check_chain(p, &facts).expect("FiatTokenV2_2 accepts it");
    assert!(matches!(
        w.chain.settle(&verified).await.unwrap(),
        Settlement::Confirmed(_)
    ));
    assert_eq!(w.chain.usdc_balance(TREASURY).await.unwrap(), usdc(7));
}

#[tokio::test]
async fn two_concurrent_settles_of_one_authorization_broadcast_once() {
    let Some(w) = world().await else { return };
    let provider = wallet_provider(&w.anvil.url, DEPLOYER_KEY);
    let facilitator = signer(FACILITATOR_KEY).address();
    let before = provider.get_transaction_count(facilitator).await.unwrap();
    let verified = VerifiedPayment(buyer_payment(&w, usdc(2), open_window(), 11));
    let (first, second) = tokio::join!(w.chain.settle(&verified), w.chain.settle(&verified));
    let outcomes = [first, second];
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Ok(Settlement::Confirmed(_)))),
        "{outcomes:?}"
    );
    for outcome in &outcomes {
        match outcome {
            Ok(Settlement::Confirmed(_)) => {}
            Err(e) => assert_eq!(e.class(), ErrorClass::Transient, "{e}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        provider.get_transaction_count(facilitator).await.unwrap(),
        before + 1
    );
    assert_eq!(w.chain.usdc_balance(TREASURY).await.unwrap(), usdc(2));
    // Once settled, a retry reconciles the one transaction.
    assert!(matches!(
        w.chain.settle(&verified).await,
        Ok(Settlement::Confirmed(_))
    ));
}
