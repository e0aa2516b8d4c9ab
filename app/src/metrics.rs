//! Prometheus metrics (`GET /metrics`, text exposition format 0.0.4).
//!
//! One process-wide set ([`global`]), recorded where things happen: orders offered,
//! payments by outcome, refunds, facilitator verify/settle latency by result, model calls
//! and tokens; the outbox depth is read from the store when scraped.

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use worldstore_domain::ports::store::Store;

/// Latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// How a payment ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    Settled,
    Pending,
    Refused,
    Error,
}

impl PaymentOutcome {
    const ALL: [PaymentOutcome; 4] = [Self::Settled, Self::Pending, Self::Refused, Self::Error];

    fn label(self) -> &'static str {
        match self {
            Self::Settled => "settled",
            Self::Pending => "pending",
            Self::Refused => "refused",
            Self::Error => "error",
        }
    }
}

/// The facilitator's verdicts, as counted and timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    Error,
}

impl Verdict {
    const ALL: [Verdict; 3] = [Self::Valid, Self::Invalid, Self::Error];

    fn label(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::Error => "error",
        }
    }
}

/// Every metric of the process.
#[derive(Debug, Default)]
pub struct Metrics {
    orders_offered: AtomicU64,
    payments: [AtomicU64; 4],
    refunds: AtomicU64,
    fulfilments_paid: AtomicU64,
    verify: [Histogram; 3],
    settle: [Histogram; 3],
    model_calls: AtomicU64,
    model_failures: AtomicU64,
    model_input_tokens: AtomicU64,
    model_output_tokens: AtomicU64,
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

impl Metrics {
    pub fn order_offered(&self) {
        self.orders_offered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn payment(&self, outcome: PaymentOutcome) {
        let index = PaymentOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.payments[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn refund(&self) {
        self.refunds.fetch_add(1, Ordering::Relaxed);
    }

    pub fn fulfilment_paid(&self) {
        self.fulfilments_paid.fetch_add(1, Ordering::Relaxed);
    }

    pub fn verified(&self, verdict: Verdict, elapsed: Duration) {
        let index = Verdict::ALL.iter().position(|v| *v == verdict).unwrap_or(0);
        self.verify[index].observe(elapsed);
    }

    pub fn settled(&self, verdict: Verdict, elapsed: Duration) {
        let index = Verdict::ALL.iter().position(|v| *v == verdict).unwrap_or(0);
        self.settle[index].observe(elapsed);
    }

    /// One model call and the tokens it used.
    pub fn model_call(&self, input_tokens: u64, output_tokens: u64) {
        self.model_calls.fetch_add(1, Ordering::Relaxed);
        self.model_input_tokens
            .fetch_add(input_tokens, Ordering::Relaxed);
        self.model_output_tokens
            .fetch_add(output_tokens, Ordering::Relaxed);
    }

    pub fn model_failure(&self) {
        self.model_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text; `outbox_depth` is `None` when the store did not answer.
    pub fn render(&self, outbox_depth: Option<u64>) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        };
        counter(
            &mut out,
            "worldstore_orders_offered_total",
            "Orders quoted with a 402 payment offer.",
            &self.orders_offered,
        );
        let _ = writeln!(
            out,
            "# HELP worldstore_payments_total Payments presented to the order server, by outcome.\n# TYPE worldstore_payments_total counter"
        );
        for (outcome, value) in PaymentOutcome::ALL.iter().zip(&self.payments) {
            let _ = writeln!(
                out,
                "worldstore_payments_total{{outcome=\"{}\"}} {}",
                outcome.label(),
                value.load(Ordering::Relaxed)
            );
        }
        counter(
            &mut out,
            "worldstore_fulfilments_paid_total",
            "Orders paid to fulfilment after settlement.",
            &self.fulfilments_paid,
        );
        counter(
            &mut out,
            "worldstore_refunds_total",
            "Buyers refunded on chain.",
            &self.refunds,
        );
        for (name, help, histograms) in [
            (
                "worldstore_facilitator_verify_seconds",
                "Facilitator /verify latency by result.",
                &self.verify,
            ),
            (
                "worldstore_facilitator_settle_seconds",
                "Facilitator /settle latency by result.",
                &self.settle,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (verdict, histogram) in Verdict::ALL.iter().zip(histograms) {
                histogram.render(&mut out, name, &format!("result=\"{}\"", verdict.label()));
            }
        }
        counter(
            &mut out,
            "worldstore_model_calls_total",
            "Calls to the language model.",
            &self.model_calls,
        );
        counter(
            &mut out,
            "worldstore_model_failures_total",
            "Model calls that failed.",
            &self.model_failures,
        );
        let _ = writeln!(
            out,
            "# HELP worldstore_model_tokens_total Model tokens, by direction.\n# TYPE worldstore_model_tokens_total counter"
        );
        let _ = writeln!(
            out,
            "worldstore_model_tokens_total{{direction=\"input\"}} {}\nworldstore_model_tokens_total{{direction=\"output\"}} {}",
            self.model_input_tokens.load(Ordering::Relaxed),
            self.model_output_tokens.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP worldstore_outbox_depth Effects not yet done.\n# TYPE worldstore_outbox_depth gauge"
        );
        match outbox_depth {
            Some(depth) => {
                let _ = writeln!(out, "worldstore_outbox_depth {depth}");
            }
            None => {
                let _ = writeln!(out, "worldstore_outbox_depth NaN");
            }
        }
        out
    }
}

/// `GET /metrics`.
pub fn router<S: Store + 'static>(store: S) -> Router {
    Router::new()
        .route("/metrics", get(scrape::<S>))
        .with_state(std::sync::Arc::new(store))
}

async fn scrape<S: Store>(State(store): State<std::sync::Arc<S>>) -> Response {
    let depth = store.unfinished_effects().await.ok();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        global().render(depth),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_holds_every_family_with_its_type() {
        let metrics = Metrics::default();
        metrics.order_offered();
        metrics.payment(PaymentOutcome::Settled);
        metrics.payment(PaymentOutcome::Refused);
        metrics.verified(Verdict::Valid, Duration::from_micros(700));
        metrics.model_call(1200, 80);
        let text = metrics.render(Some(3));
        assert!(text.contains("worldstore_orders_offered_total 1"));
        assert!(text.contains("worldstore_payments_total{outcome=\"settled\"} 1"));
        assert!(text.contains("worldstore_payments_total{outcome=\"refused\"} 1"));
        assert!(text.contains(
            "worldstore_facilitator_verify_seconds_bucket{result=\"valid\",le=\"0.0005\"} 0"
        ));
        assert!(text.contains(
            "worldstore_facilitator_verify_seconds_bucket{result=\"valid\",le=\"0.001\"} 1"
        ));
        assert!(text.contains("worldstore_facilitator_verify_seconds_count{result=\"valid\"} 1"));
        assert!(text.contains("worldstore_model_tokens_total{direction=\"input\"} 1200"));
        assert!(text.contains("worldstore_outbox_depth 3"));
        // Every sample line belongs to a family declared with # TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let family = line.split(['{', ' ']).next().unwrap();
            let base = family
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "{line} has no TYPE line"
            );
        }
    }
}
