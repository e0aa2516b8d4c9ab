//! The agent end to end over real components: SQLite, the embedded chain, the sandbox
//! catalogue, the offline brain, and the merchant's real order server over HTTP.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;
use support::{Chat, PROFILE, config, shifted_clock, temp_dir, user};
use worldstore::agent::Mailbox;
use worldstore::sandbox::{SandboxWorld, latest_funding};
use worldstore_domain::conversation::InboundContent;
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::ports::store::{MachineKind, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_funded_user_searches_buys_gives_a_profile_confirms_and_is_told_of_payment_and_delivery()
{
    let dir = temp_dir("buy");
    let world = SandboxWorld::start(config(&dir, 100)).await.unwrap();
    let mail = Mailbox::new();
    let agent = world.agent(mail.clone()).await.unwrap();
    let running = agent.start();
    let chat = Chat {
        agent: agent.clone(),
        mail: mail.clone(),
        user: user("alice"),
    };
    assert!(world.welcome(&agent, &chat.user).await.unwrap());
    assert!(
        !world.welcome(&agent, &chat.user).await.unwrap(),
        "the faucet pays once"
    );

    chat.say("search usb-c cable").await;
    chat.expect("Tap a product to get a quote").await;
    chat.say("buy 1").await;
    chat.expect("Before I can order").await;
    chat.say(PROFILE).await;
    chat.expect("Reply yes to buy").await;
    let treasury_before = world.chain.usdc_balance(world.treasury).await.unwrap();
    chat.say("yes").await;
    chat.expect("Payment transaction on base-sepolia: 0x").await;
    chat.expect("Paid ").await;
    let treasury_after = world.chain.usdc_balance(world.treasury).await.unwrap();
    assert!(treasury_after > treasury_before, "the treasury was paid");
    // Progress arrives without being asked.
    chat.expect(": shipped (").await;
    chat.expect(": delivered").await;
    assert_eq!(
        chat.count("Payment transaction"),
        1,
        "{}",
        chat.transcript()
    );
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfunded_user_is_asked_for_funds_approves_and_the_purchase_resumes_by_itself() {
    let dir = temp_dir("fund");
    let world = SandboxWorld::start(config(&dir, 0)).await.unwrap();
    let mail = Mailbox::new();
    let agent = world.agent(mail.clone()).await.unwrap();
    let running = agent.start();
    let chat = Chat {
        agent: agent.clone(),
        mail: mail.clone(),
        user: user("bob"),
    };
    world.welcome(&agent, &chat.user).await.unwrap();
    chat.say(PROFILE).await;
    chat.expect("profile is complete").await;
    chat.say("search usb-c charger").await;
    chat.expect("Tap a product").await;
    chat.say("buy 2").await;
    chat.expect("Reply yes to buy").await;
    chat.say("yes").await;
    chat.expect("Shortfall").await;
    chat.expect("Send ").await;
    let funding = latest_funding(&mail.messages_to(&chat.user)).expect("a funding card");
    assert_eq!(funding.to, agent.wallet_address(&chat.user).unwrap());
    world
        .approve(&agent, &chat.user, funding.amount)
        .await
        .unwrap();
    chat.expect("Funds received").await;
    chat.expect("Payment transaction on base-sepolia: 0x").await;
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_survives_a_restart_after_the_confirmation_and_is_paid_exactly_once() {
    let dir = temp_dir("restart");
    let (clock, offset) = shifted_clock();
    let mut settings = config(&dir, 100);
    settings.clock = Some(clock);
    let world = SandboxWorld::start(settings).await.unwrap();
    let alice = user("carol");
    let (chat, running) = Chat::open(&world, &alice).await;
    world.welcome(&chat.agent, &alice).await.unwrap();
    chat.up_to_the_confirmation().await;
    // Crash: the workers die; the confirmation is committed but nothing executes it.
    running.abort().await;
    chat.say("yes").await;
    assert!(chat.agent.store().unfinished_effects().await.unwrap() > 0);
    drop(chat);
    // The crashed worker's leases expire before the new process takes over its effects.
    offset.store(world.config.lease_seconds + 1, Ordering::SeqCst);

    let (chat, running) = Chat::open(&world, &alice).await;
    chat.expect("Payment transaction on base-sepolia: 0x").await;
    chat.expect(": delivered").await;
    assert_eq!(chat.count("Payment transaction"), 1);
    let checkouts = chat
        .agent
        .store()
        .machines_of_user(MachineKind::Checkout, &alice)
        .await
        .unwrap();
    let paid: Vec<_> = checkouts
        .iter()
        .filter(|c| ["paid", "shipped", "delivered"].contains(&c.index.status.as_str()))
        .collect();
    assert_eq!(paid.len(), 1);
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_user_cannot_see_the_first_users_orders_or_profile() {
    let dir = temp_dir("isolation");
    let world = SandboxWorld::start(config(&dir, 100)).await.unwrap();
    let mail = Mailbox::new();
    let agent = world.agent(mail.clone()).await.unwrap();
    let running = agent.start();
    let dana = Chat {
        agent: agent.clone(),
        mail: mail.clone(),
        user: user("dana"),
    };
    let eve = Chat {
        agent: agent.clone(),
        mail: mail.clone(),
        user: user("eve"),
    };
    world.welcome(&agent, &dana.user).await.unwrap();
    dana.up_to_the_confirmation().await;
    dana.say("yes").await;
    dana.expect("Payment transaction").await;
    let order_id = agent
        .store()
        .machines_of_user(MachineKind::Checkout, &dana.user)
        .await
        .unwrap()[0]
        .index
        .order_id
        .clone()
        .unwrap();

    eve.say("my profile").await;
    eve.expect("No profile saved yet").await;
    eve.say("my orders").await;
    eve.expect("You have no orders yet").await;
    eve.say(&format!("order {order_id}")).await;
    eve.expect(&format!("you have no order {order_id}")).await;
    let eve_text = eve.transcript();
    assert!(!eve_text.contains("Pat Lee") && !eve_text.contains("pat@example.com"));
    // Dana sees her own order.
    dana.say(&format!("order {order_id}")).await;
    dana.expect(&format!("Order {order_id}:")).await;
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_inbound_message_is_processed_once() {
    let dir = temp_dir("dedupe");
    let world = SandboxWorld::start(config(&dir, 100)).await.unwrap();
    let mail = Mailbox::new();
    let agent = world.agent(mail.clone()).await.unwrap();
    let running = agent.start();
    let frank = user("frank");
    let balance = || InboundContent::Text("balance".into());
    let first = agent.receive(&frank, "msg-1", balance()).await.unwrap();
    let again = agent.receive(&frank, "msg-1", balance()).await.unwrap();
    assert_eq!(first, worldstore::agent::Received::Processed);
    assert_eq!(again, worldstore::agent::Received::Duplicate);
    let chat = Chat {
        agent: agent.clone(),
        mail,
        user: frank,
    };
    chat.expect("Your agent wallet").await;
    for _ in 0..100 {
        if agent.store().unfinished_effects().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(chat.count("Your agent wallet"), 1, "{}", chat.transcript());
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fulfilment_failure_after_payment_is_refunded_and_the_user_is_told_unasked() {
    use worldstore_adapters::sandbox_commerce::InjectedFailure;
    use worldstore_domain::ports::catalog::Asin;
    let dir = temp_dir("refund");
    let mut settings = config(&dir, 100);
    // The first "usb-c cable" result; fulfilment refuses to take its payment.
    settings.failures.insert(
        Asin::parse("B0THY26GXD").unwrap(),
        InjectedFailure::PaymentFails,
    );
    let world = SandboxWorld::start(settings).await.unwrap();
    let mail = Mailbox::new();
    let agent = world.agent(mail.clone()).await.unwrap();
    let running = agent.start();
    let chat = Chat {
        agent: agent.clone(),
        mail,
        user: user("gina"),
    };
    world.welcome(&agent, &chat.user).await.unwrap();
    chat.up_to_the_confirmation().await;
    let before = world
        .chain
        .usdc_balance(agent.wallet_address(&chat.user).unwrap())
        .await
        .unwrap();
    chat.say("yes").await;
    chat.expect("Payment transaction").await;
    chat.expect(": refunded").await;
    chat.expect("Refund transaction on base-sepolia: 0x").await;
    let after = world
        .chain
        .usdc_balance(agent.wallet_address(&chat.user).unwrap())
        .await
        .unwrap();
    assert_eq!(after, before, "the refund returned the whole payment");
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// While its worker runs, the agent's commit of an inbound message leases the effects it
/// sets off to that worker (`Commit::claim_first`); once the worker is stopped, what comes
/// in is left in the store, free for whichever worker runs next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_taken_in_after_the_worker_stopped_is_left_for_the_next_worker() {
    let dir = temp_dir("stopped");
    let world = SandboxWorld::start(config(&dir, 100)).await.unwrap();
    let mail = Mailbox::new();
    let agent = world.agent(mail.clone()).await.unwrap();
    let carol = user("carol");
    world.welcome(&agent, &carol).await.unwrap();
    let running = agent.start();
    let chat = Chat {
        agent: agent.clone(),
        mail: mail.clone(),
        user: carol.clone(),
    };
    chat.say("/help").await;
    chat.expect("I help you buy").await;
    running.stop().await;

    agent
        .receive(&carol, "after-stop", InboundContent::Text("/menu".into()))
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let next_worker = worldstore_domain::ports::store::Key::parse("next-worker").unwrap();
    let claimed = agent
        .store()
        .claim_effects(&next_worker, &["agent.effect"], 10, now, now + 60)
        .await
        .unwrap();
    assert_eq!(
        claimed.len(),
        1,
        "the message's first effect is free to claim"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
