//! Chain timings (a timed program, not a test): run with
//! `cargo bench -p worldstore-adapters --bench chain`.
//!
//! 1. submit -> confirmed receipt of one `transferWithAuthorization` on anvil (automine,
//!    Circle's FiatTokenV2_2) through `chain_rpc::RpcChain::settle`, beside the same kind
//!    of transfer sent by `cast send` (which also waits for the receipt) in the same run;
//! 2. settled `transferWithAuthorization`s per second on the embedded revm chain.

#[path = "../tests/anvil/mod.rs"]
mod anvil;

use alloy_primitives::{Address, U256, address};
use anvil::*;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use worldstore_adapters::chain_embedded::{EmbeddedChain, EmbeddedChainConfig};
use worldstore_adapters::chain_rpc::{RpcChain, RpcChainConfig};
use worldstore_domain::network::Network;
use worldstore_domain::ports::chain::{Chain, Settlement};
use worldstore_domain::x402::VerifiedPayment;

const TREASURY: Address = address!("0x7EA5000000000000000000000000000000007EA5");
const RUNS: usize = 30;

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{name:<48} n={:<4} median {:>8.2?}  mean {:>8.2?}  min {:>8.2?}  max {:>8.2?}",
        samples.len(),
        samples[samples.len() / 2],
        mean,
        samples[0],
        samples[samples.len() - 1]
    );
}

async fn anvil_timings() {
    let Some(anvil) = Anvil::spawn() else { return };
    let buyer = signer(BUYER_KEY);
    let token = deploy_fiat_token(&anvil.url, &[(buyer.address(), usdc(1_000))]).await;
    let mut config = RpcChainConfig::new(&anvil.url, token.clone(), signer(FACILITATOR_KEY));
    config.poll_interval = Duration::from_millis(5);
    let chain = RpcChain::connect(config).await.expect("connects");
    let now = unix_now();

    let mut adapter = Vec::new();
    for i in 0..RUNS {
        let p = payment(
            &token,
            &buyer,
            buyer.address(),
            TREASURY,
            usdc(1),
            (now - 600, now + 600),
            i as u8,
        );
        let verified = VerifiedPayment(p);
        let started = Instant::now();
        let outcome = chain.settle(&verified).await.expect("settles");
        adapter.push(started.elapsed());
        assert!(matches!(outcome, Settlement::Confirmed(_)));
    }
    summary("anvil: RpcChain::settle (submit -> receipt)", adapter);

    let cast = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tools/evm/node_modules/@foundry-rs/cast-linux-amd64/bin/cast");
    let mut by_cast = Vec::new();
    for i in 0..RUNS {
        let p = payment(
            &token,
            &buyer,
            buyer.address(),
            TREASURY,
            usdc(1),
            (now - 600, now + 600),
            200 + i as u8,
        );
        let a = &p.authorization;
        let s = &p.signature;
        let started = Instant::now();
        let status = Command::new(&cast)
            .args([
                "send",
                "--rpc-url",
                &anvil.url,
                "--private-key",
                FACILITATOR_KEY,
                &token.address.to_string(),
                "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)",
                &a.from.to_string(),
                &a.to.to_string(),
                &a.value.to_string(),
                &a.valid_after.to_string(),
                &a.valid_before.to_string(),
                &a.nonce.to_string(),
                &s.v().to_string(),
                &format!("{:#066x}", s.r()),
                &format!("{:#066x}", s.s()),
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("cast runs");
        by_cast.push(started.elapsed());
        assert!(status.success(), "cast send failed");
    }
    summary("anvil: cast send (process start -> receipt)", by_cast);
    let mut cast_start = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let status = Command::new(&cast)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("cast runs");
        cast_start.push(started.elapsed());
        assert!(status.success());
    }
    summary("cast --version (process start alone)", cast_start);
    assert_eq!(
        chain.usdc_balance(TREASURY).await.expect("balance"),
        usdc(2 * RUNS as u64)
    );
}

async fn embedded_throughput() {
    const N: usize = 5_000;
    let start = 1_800_000_000;
    let chain = EmbeddedChain::new(EmbeddedChainConfig::new(TREASURY, Arc::new(move || start)))
        .expect("sandbox");
    let buyer = signer(BUYER_KEY);
    chain
        .mint(buyer.address(), usdc(1_000_000))
        .expect("faucet");
    let token = Network::BaseSepolia.usdc();
    let payments: Vec<_> = (0..N)
        .map(|i| {
            let mut p = payment(
                &token,
                &buyer,
                buyer.address(),
                TREASURY,
                U256::from(1u64),
                (start - 600, start + 600),
                0,
            );
            p.authorization.nonce =
                worldstore_domain::eip3009::Nonce::new(U256::from(i).to_be_bytes::<32>());
            p.signing_hash = p.authorization.signing_hash(&token.eip712_domain());
            p.signature = buyer.sign_hash(p.signing_hash);
            VerifiedPayment(p)
        })
        .collect();
    let started = Instant::now();
    for p in &payments {
        chain.settle(p).await.expect("settles");
    }
    let elapsed = started.elapsed();
    println!(
        "embedded revm: {N} settled transferWithAuthorization in {elapsed:.2?} = {:.0} transfers/s (signing excluded; each is simulated, then mined in its own block)",
        N as f64 / elapsed.as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` probes benches this way; nothing to run.
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        anvil_timings().await;
        embedded_throughput().await;
    });
}
