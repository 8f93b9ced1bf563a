//! Export of the counters through the `metrics` facade (feature `metrics`), so any exporter
//! (Prometheus, OpenTelemetry, …) can scrape them. Metric names and labels are public API.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `stormguard_calls_total` | counter | `op` |
//! | `stormguard_attempts_total` | counter | `op`, `outcome` = `success` \| `failure` \| `timeout` |
//! | `stormguard_retries_total` | counter | `op` |
//! | `stormguard_retried_calls_total` | counter | `op` |
//! | `stormguard_retry_successes_total` | counter | `op` |
//! | `stormguard_giveups_total` | counter | `op`, `reason` |
//! | `stormguard_rejections_total` | counter | `op`, `breaker` |
//! | `stormguard_hedges_total` | counter | `op` |
//! | `stormguard_hedge_wins_total` | counter | `op` |
//! | `stormguard_breaker_state` | gauge: 0 closed, 1 open, 2 half-open | `breaker` |
//! | `stormguard_budget_tokens` | gauge | `budget` (a call site's own budget: its `op`) |
//! | `stormguard_fleet_connected` | gauge: 1 shared through Redis, 0 local (feature `redis`) | — |
//!
//! Handles for the success path are registered at a call site's first use: install the
//! recorder before the first annotated call.

#[cfg(feature = "metrics")]
mod enabled {
    use crate::give_up::GiveUpReason;
    use metrics::{counter, gauge, Counter};

    /// The success-path handles of one call site.
    #[derive(Debug)]
    pub struct SiteMetrics {
        calls: Counter,
        successes: Counter,
        retry_successes: Counter,
    }

    impl SiteMetrics {
        pub fn new(op: &'static str) -> Self {
            SiteMetrics {
                calls: counter!("stormguard_calls_total", "op" => op),
                successes: counter!("stormguard_attempts_total", "op" => op, "outcome" => "success"),
                retry_successes: counter!("stormguard_retry_successes_total", "op" => op),
            }
        }
        #[inline]
        pub fn success(&self, attempt: u32) {
            self.successes.increment(1);
            if attempt <= 1 {
                self.calls.increment(1);
            } else {
                self.retry_successes.increment(1);
            }
        }
    }

    pub fn failure(op: &'static str, attempt: u32, timed_out: bool) {
        if attempt <= 1 {
            counter!("stormguard_calls_total", "op" => op).increment(1);
        }
        let outcome = if timed_out { "timeout" } else { "failure" };
        counter!("stormguard_attempts_total", "op" => op, "outcome" => outcome).increment(1);
    }
    pub fn rejection(op: &'static str, breaker: &'static str, attempt: u32) {
        if attempt <= 1 {
            counter!("stormguard_calls_total", "op" => op).increment(1);
        }
        counter!("stormguard_rejections_total", "op" => op, "breaker" => breaker).increment(1);
    }
    pub fn retry(op: &'static str, attempt: u32) {
        if attempt <= 1 {
            // The denominator of the retry success rate: calls that retried at least once.
            counter!("stormguard_retried_calls_total", "op" => op).increment(1);
        }
        counter!("stormguard_retries_total", "op" => op).increment(1);
    }
    pub fn hedge(op: &'static str) {
        counter!("stormguard_hedges_total", "op" => op).increment(1);
    }
    pub fn hedge_win(op: &'static str) {
        counter!("stormguard_hedge_wins_total", "op" => op).increment(1);
    }
    pub fn give_up(op: &'static str, reason: GiveUpReason) {
        counter!("stormguard_giveups_total", "op" => op, "reason" => reason.as_str()).increment(1);
    }
    /// `value`: 0 closed, 1 open, 2 half-open.
    pub fn breaker_state(breaker: &'static str, value: f64) {
        gauge!("stormguard_breaker_state", "breaker" => breaker).set(value);
    }
    /// 1 while the fleet's Redis answers, 0 while this process decides alone.
    #[cfg(feature = "redis")]
    pub fn fleet_connected(value: f64) {
        gauge!("stormguard_fleet_connected").set(value);
    }
    /// The tokens gauge of `budget`, to keep and set without a lookup.
    pub fn budget_tokens_gauge(budget: &'static str) -> metrics::Gauge {
        gauge!("stormguard_budget_tokens", "budget" => budget)
    }
}

#[cfg(not(feature = "metrics"))]
#[allow(missing_docs, clippy::missing_const_for_fn)]
mod enabled {
    use crate::give_up::GiveUpReason;

    #[inline(always)]
    pub fn failure(_: &'static str, _: u32, _: bool) {}
    #[inline(always)]
    pub fn rejection(_: &'static str, _: &'static str, _: u32) {}
    #[inline(always)]
    pub fn retry(_: &'static str, _: u32) {}
    #[inline(always)]
    pub fn give_up(_: &'static str, _: GiveUpReason) {}
    pub fn hedge(_: &'static str) {}
    pub fn hedge_win(_: &'static str) {}
    #[inline(always)]
    pub fn breaker_state(_: &'static str, _: f64) {}
    #[cfg(feature = "redis")]
    pub fn fleet_connected(_: f64) {}
}

pub(crate) use enabled::*;
