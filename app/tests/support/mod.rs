//! What the agent's end-to-end tests share: a sandbox configuration, a chat with one user,
//! temporary directories and a clock the test moves forward.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use worldstore::agent::{Agent, Mailbox, Running, as_text};
use worldstore::outbox::Clock;
use worldstore::sandbox::{SandboxConfig, SandboxPorts, SandboxWorld};
use worldstore_domain::conversation::InboundContent;
use worldstore_domain::money::UsdcAmount;
use worldstore_domain::ports::store::Key;

pub const WAIT: Duration = Duration::from_secs(20);
pub const PROFILE: &str =
    "name: Pat Lee, email: pat@example.com, address: 1 Main St, Seattle, WA 98101";

static MESSAGE: AtomicU64 = AtomicU64::new(0);

pub fn user(name: &str) -> Key {
    Key::parse(name).unwrap()
}

pub fn config(dir: &std::path::Path, faucet: u64) -> SandboxConfig {
    let mut config = SandboxConfig::new(dir.to_path_buf());
    config.faucet = UsdcAmount::from_usdc(faucet);
    config.ships_after = 1;
    config.delivered_after = 2;
    config.order_poll = Duration::from_millis(300);
    config
}

/// The system clock plus an offset the test moves (to expire a crashed worker's leases).
pub fn shifted_clock() -> (Clock, Arc<AtomicU64>) {
    let offset = Arc::new(AtomicU64::new(0));
    let shift = offset.clone();
    let clock: Clock = Arc::new(move || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        now + shift.load(Ordering::SeqCst)
    });
    (clock, offset)
}

pub struct Chat {
    pub agent: Agent<SandboxPorts<Mailbox>>,
    pub mail: Mailbox,
    pub user: Key,
}

impl Chat {
    /// A new agent process on `world`'s database, workers running, chatting with `user`.
    pub async fn open(world: &SandboxWorld, user: &Key) -> (Self, Running) {
        let mail = Mailbox::new();
        let agent = world.agent(mail.clone()).await.unwrap();
        let running = agent.start();
        let chat = Chat {
            agent,
            mail,
            user: user.clone(),
        };
        (chat, running)
    }

    pub async fn say(&self, text: &str) {
        let id = format!("m{}", MESSAGE.fetch_add(1, Ordering::SeqCst));
        self.agent
            .receive(&self.user, &id, InboundContent::Text(text.into()))
            .await
            .unwrap();
    }

    /// Saves the profile and picks the first USB-C cable, up to the question of the quote.
    pub async fn up_to_the_confirmation(&self) {
        self.say(PROFILE).await;
        self.expect("profile is complete").await;
        self.say("search usb-c cable").await;
        self.expect("Tap a product").await;
        self.say("buy 1").await;
        self.expect("Reply yes to buy").await;
    }

    pub async fn expect(&self, needle: &str) {
        let seen = self.mail.wait_for_text(&self.user, needle, WAIT).await;
        assert!(seen, "no {needle:?} in:\n{}", self.transcript());
    }

    pub fn transcript(&self) -> String {
        self.mail
            .messages_to(&self.user)
            .iter()
            .map(as_text)
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    pub fn count(&self, needle: &str) -> usize {
        self.mail
            .messages_to(&self.user)
            .iter()
            .filter(|m| as_text(m).contains(needle))
            .count()
    }
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "worldstore-agent-{name}-{}-{}",
        std::process::id(),
        MESSAGE.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
