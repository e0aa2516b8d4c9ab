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
    /// Pay an x402 resource: request it, read the 402 (v2 header or v1 body), check the
    /// offer (scheme `exact`, a known network, our token's address, at most `--max`), sign
    /// an EIP-3009 authorization with the key in `WORLDSTORE_PAYER_KEY`, and repeat the
    /// request with the payment. Prints one JSON line: status, settlement, transaction.
    Pay(PayArgs),
}

#[derive(Debug, clap::Args)]
pub struct PayArgs {
    /// The resource (http://127.0.0.1:PORT/path).
    #[arg(long)]
    url: String,
    /// GET (default) or POST.
    #[arg(long, default_value = "GET")]
    method: String,
    /// A JSON body to send (with POST).
    #[arg(long)]
    body: Option<String>,
    /// The most we pay, in USDC.
    #[arg(long)]
    max: UsdcAmount,
    /// The network we pay on.
    #[arg(long, default_value = "base-sepolia")]
    network: Network,
    /// The USDC contract, when it is not Circle's address for the network (a test chain).
    #[arg(long)]
    token: Option<alloy_primitives::Address>,
    /// The payer's key (hex), from the environment only.
    #[arg(
        long = "payer-key-from-env-only",
        env = "WORLDSTORE_PAYER_KEY",
        hide = true,
        hide_env_values = true
    )]
    key: secrecy::SecretString,
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
        X402Command::Pay(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let answer = runtime.block_on(pay(args))?;
            writeln!(out, "{answer}")?;
            Ok(())
        }
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

/// Our x402 client: one request, the 402 read and checked, one paid retry.
async fn pay(args: PayArgs) -> anyhow::Result<serde_json::Value> {
    use secrecy::ExposeSecret;
    let signer = worldstore_domain::eip3009::LocalSigner::from_hex(args.key.expose_secret())
        .context("WORLDSTORE_PAYER_KEY")?;
    let token = match args.token {
        Some(address) => worldstore_domain::network::UsdcDeployment {
            address,
            ..args.network.usdc()
        },
        None => args.network.usdc(),
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let method: reqwest::Method = args.method.parse().context("--method")?;
    let request = |payment: Option<&worldstore_domain::x402::PaymentPayload>| {
        let mut request = http.request(method.clone(), &args.url);
        if let Some(body) = &args.body {
            request = request
                .header("content-type", "application/json")
                .body(body.clone());
        }
        if let Some(payment) = payment {
            request = request.header(payment.header_name(), payment.header_value());
        }
        request
    };
    let first = request(None)
        .send()
        .await
        .context("the resource does not answer")?;
    if first.status().as_u16() != 402 {
        anyhow::bail!("expected 402 Payment Required, got {}", first.status());
    }
    let required = first
        .headers()
        .get("payment-required")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = first.bytes().await?;
    let challenge = PaymentChallenge::from_response(required.as_deref(), &body)?;
    let max = args.max.to_u256();
    // The first offer we can pay exactly: our network and token, within our cap.
    let index = challenge
        .offers()
        .iter()
        .position(|o| {
            o.scheme == "exact"
                && o.network.as_ref().is_ok_and(|n| *n == token.network)
                && o.asset == token.address
                && o.amount <= max
        })
        .context("no offer in the 402 answer is on our network and token within --max")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let nonce = Nonce::from(alloy_primitives::keccak256(
        format!(
            "x402-pay/{}/{}/{}",
            signer.address(),
            args.url,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        )
        .as_bytes(),
    ));
    let payment = sign_payment(&signer, &challenge, index, &token, nonce, now)
        .context("the chosen offer disappeared")?;
    let paid = request(Some(&payment)).send().await?;
    let status = paid.status().as_u16();
    let settlement = paid
        .headers()
        .get("payment-response")
        .or_else(|| paid.headers().get("x-payment-response"))
        .and_then(|v| v.to_str().ok())
        .map(header::decode_payment_response)
        .transpose()
        .context("the settlement header does not decode")?;
    let text = paid.text().await.unwrap_or_default();
    Ok(serde_json::json!({
        "client": "worldstore",
        "version": payment.x402_version(),
        "status": status,
        "settlement": settlement,
        "tx": settlement.as_ref().map(|s| s.transaction.clone()),
        "body": text.chars().take(500).collect::<String>(),
    }))
}
