//! `worldstore demo`: the whole product in one process, with no keys and no network.
//!
//! SQLite in `--data-dir`, the embedded chain with the sandbox USDC, the sandbox catalogue
//! and fulfilment, the offline brain, the agent, the merchant's order server (reached over
//! real HTTP on 127.0.0.1) and the web chat on `http://127.0.0.1:<port>/`.
//!
//! Two demo users with a made-up shipping profile: `demo` gets 500 sandbox USDC, and
//! `demo-unfunded` none, so the funding flow (request, approval from the user's own simulated wallet, automatic
//! resume) can be seen. Any other browser gets its own user and the faucet's amount.
//! The sandbox trusts the browser's user id: it is a local demo, not a sign-in.
//!
//! Starting twice is safe: a second demo on the same port stops with a clear message and
//! touches nothing; a restarted demo keeps conversations and orders (the in-memory chain
//! starts afresh, and its users are credited again on their next message). Ctrl-C stops
//! the workers and the servers cleanly.

use anyhow::Context as _;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use worldstore::messengers::web::{self, WebMessenger};
use worldstore::messengers::{Messenger, Messengers, SandboxArrivals, UserKey};
use worldstore::outbox::now_unix;
use worldstore::sandbox::{SandboxConfig, SandboxWorld};
use worldstore_adapters::webchat::{WebChat, WebChatConfig};
use worldstore_domain::money::UsdcAmount;
use worldstore_domain::ports::store::Store;
use worldstore_domain::profile::{AddressLine, City, Email, PersonName, Profile, UsState, ZipCode};

/// The pre-funded demo user and the one that shows funding.
pub const DEMO_USER: &str = "demo";
pub const UNFUNDED_USER: &str = "demo-unfunded";
/// What `demo` starts with: enough for any product of the sandbox catalogue, within the
/// default per-order limit.
pub const DEMO_FUNDS: UsdcAmount = UsdcAmount::from_usdc(500);

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Port of the web chat on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Where the demo's databases live.
    #[arg(long, default_value = ".worldstore-demo")]
    data_dir: PathBuf,
    /// Sandbox USDC for a new user's agent wallet (`demo-unfunded` always starts at 0).
    #[arg(long, default_value = "100")]
    faucet: UsdcAmount,
    /// Seconds from payment to "shipped" and to "delivered" in the sandbox fulfilment.
    #[arg(long, default_value_t = 10)]
    ships_after: u64,
    #[arg(long, default_value_t = 25)]
    delivered_after: u64,
}

pub fn run(args: DemoArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(demo(args, out))
}

async fn demo(args: DemoArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // Bind first: a second demo on the same port stops here, before touching any data.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on 127.0.0.1:{}: is another demo running? (try --port)",
                args.port
            )
        })?;
    let address = listener.local_addr()?;
    let mut config = SandboxConfig::new(args.data_dir.clone());
    config.faucet = args.faucet;
    config.ships_after = args.ships_after;
    config.delivered_after = args.delivered_after;
    let world = Arc::new(SandboxWorld::start(config).await?);
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs());
    let (chat, inbound) = WebChat::new(WebChatConfig {
        epoch,
        ..WebChatConfig::default()
    });
    let web = WebMessenger::new(chat.clone());
    let agent = world
        .agent(Messengers {
            web: Some(web.clone()),
            xmtp: None,
        })
        .await?;
    let running = agent.start();
    let demo = UserKey::key(Messenger::Web, DEMO_USER)?;
    let unfunded = UserKey::key(Messenger::Web, UNFUNDED_USER)?;
    world.welcome_with(&agent, &demo, DEMO_FUNDS).await?;
    world
        .welcome_with(&agent, &unfunded, UsdcAmount::ZERO)
        .await?;
    // The demo users have a made-up shipping profile, so a first purchase works at once.
    for (user, name) in [(&demo, "Pat Demo"), (&unfunded, "Sam Demo")] {
        if agent.store().load_profile(user).await?.is_none() {
            agent
                .store()
                .save_profile(user, &demo_profile(name)?, now_unix())
                .await?;
        }
    }

    let faucet = args.faucet;
    let arrivals = SandboxArrivals {
        world: world.clone(),
        faucet: Arc::new(move |user| {
            if *user == unfunded {
                UsdcAmount::ZERO
            } else if *user == demo {
                DEMO_FUNDS
            } else {
                faucet
            }
        }),
    };
    let events = tokio::spawn(web::run_inbound(agent.clone(), web, arrivals, inbound));
    let server = tokio::spawn(async move {
        axum::serve(listener, chat.router())
            .with_graceful_shutdown(shutdown())
            .await
    });
    let url = format!("http://{address}");
    writeln!(
        out,
        "Worldstore sandbox is running (started in {} ms; no keys, no network).\n\
         \n  Web chat:      {url}/?user={DEMO_USER}\n  Funding demo:  {url}/?user={UNFUNDED_USER}\n  Order server:  {}\n  Data:          {}\n\
         \nTry this in the chat (the demo users already have a shipping profile):\n  search wireless earbuds\n  buy 1          (or press Buy on a card)\n  yes            (or press Confirm and pay)\n  where is my order\n  my profile     (a new user sets one with: name: Pat Lee, email: pat@example.com, address: 1 Main St, Seattle, WA 98101)\n\
         \nAs {UNFUNDED_USER}, buy something, then press Approve on the funding card: the purchase resumes by itself.\nCtrl-C stops.",
        started.elapsed().as_millis(),
        world.merchant_url,
        args.data_dir.display()
    )?;
    out.flush()?;
    let served = server.await;
    events.abort();
    running.stop().await;
    served.context("web chat server")??;
    writeln!(out, "stopped")?;
    Ok(())
}

fn demo_profile(name: &str) -> anyhow::Result<Profile> {
    Ok(Profile {
        name: Some(PersonName::parse(name)?),
        email: Some(Email::parse("demo@example.com")?),
        line1: Some(AddressLine::parse("1 Main St")?),
        line2: None,
        city: Some(City::parse("Seattle")?),
        state: Some(UsState::parse("WA")?),
        postal_code: Some(ZipCode::parse("98101")?),
    })
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
