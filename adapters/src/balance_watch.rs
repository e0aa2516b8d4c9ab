//! Watching a USDC balance for incoming funds by polling with exponential backoff: cheap on
//! any RPC (one `eth_call` per poll, none of the log-filter support that public endpoints
//! often lack) and quick to notice a deposit that lands soon after the watch starts.

use alloy_primitives::U256;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use worldstore_domain::ports::chain::{BalanceWatch, ChainError};

/// The longest pause between two polls.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// Polls `read` until it returns at least `at_least` or `timeout` passes. The pause starts
/// at `first_interval` and doubles up to [`MAX_POLL_INTERVAL`]. A transient read error is
/// retried; any other error ends the watch.
pub async fn watch<F, Fut>(
    mut read: F,
    at_least: U256,
    timeout: Duration,
    first_interval: Duration,
) -> Result<BalanceWatch, ChainError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<U256, ChainError>>,
{
    let deadline = Instant::now() + timeout;
    let mut interval = first_interval;
    let mut last = U256::ZERO;
    loop {
        match read().await {
            Ok(balance) if balance >= at_least => return Ok(BalanceWatch::Reached(balance)),
            Ok(balance) => last = balance,
            Err(e) if e.class() == worldstore_domain::ports::chain::ErrorClass::Transient => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(BalanceWatch::TimedOut(last));
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = (interval * 2).min(MAX_POLL_INTERVAL);
    }
}
