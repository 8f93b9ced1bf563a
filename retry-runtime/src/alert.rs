//! The retry-success-rate alert: one `warn` event, at most once per window and operation,
//! when the share of retried calls that end in success falls below a threshold (default 95%).

use crate::clock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::sync::Mutex;
use std::time::Duration;

static THRESHOLD_PERMILLE: AtomicU32 = AtomicU32::new(950);
static WINDOW_NANOS: AtomicU64 = AtomicU64::new(60_000_000_000);
static MIN_RETRIED_CALLS: AtomicU32 = AtomicU32::new(20);

/// Configures the alert: warn when, over `window`, fewer than `threshold` (0–1) of the calls
/// that retried ended in success, once at least `min_retried_calls` retried. A threshold of
/// 0 turns it off.
///
/// # Defaults
/// - `threshold`: 0.95
/// - `window`: 60 s
/// - `min_retried_calls`: 20
///
/// ```
/// use std::time::Duration;
/// retry_runtime::set_retry_success_alert(0.9, Duration::from_secs(30), 10);
/// ```
pub fn set_retry_success_alert(threshold: f64, window: Duration, min_retried_calls: u32) {
    let permille = (threshold.clamp(0.0, 1.0) * 1000.0).round() as u32;
    THRESHOLD_PERMILLE.store(permille, Relaxed);
    WINDOW_NANOS.store(clock::nanos(window).max(1), Relaxed);
    MIN_RETRIED_CALLS.store(min_retried_calls.max(1), Relaxed);
}

/// The alert window of operation `op`, shared by every call site of that name (created on the
/// first retried call's end: a cold path).
pub(crate) fn window(op: &'static str) -> &'static AlertWindow {
    static WINDOWS: Mutex<Option<HashMap<&'static str, &'static AlertWindow>>> = Mutex::new(None);
    let mut windows = WINDOWS.lock().unwrap_or_else(|p| p.into_inner());
    windows
        .get_or_insert_with(HashMap::new)
        .entry(op)
        .or_insert_with(|| Box::leak(Box::new(AlertWindow::new())))
}

/// The alert's state for one operation. Touched only when a call that retried finishes.
#[derive(Debug)]
pub struct AlertWindow {
    start: AtomicU64,
    retried: AtomicU32,
    succeeded: AtomicU32,
    last_warning: AtomicU64,
}

impl AlertWindow {
    /// An empty window.
    pub const fn new() -> Self {
        AlertWindow {
            start: AtomicU64::new(0),
            retried: AtomicU32::new(0),
            succeeded: AtomicU32::new(0),
            last_warning: AtomicU64::new(0),
        }
    }

    /// A call that retried has finished (`succeeded` or gave up).
    pub(crate) fn record(&self, op: &'static str, succeeded: bool) {
        let threshold = THRESHOLD_PERMILLE.load(Relaxed);
        if threshold == 0 {
            return;
        }
        let window = WINDOW_NANOS.load(Relaxed);
        let now = clock::now_nanos();
        let start = self.start.load(Acquire);
        if (start == 0 || now.saturating_sub(start) >= window)
            && self
                .start
                .compare_exchange(start, now, AcqRel, Acquire)
                .is_ok()
        {
            self.retried.store(0, Release);
            self.succeeded.store(0, Release);
        }
        let retried = self.retried.fetch_add(1, AcqRel) + 1;
        let ok = if succeeded {
            self.succeeded.fetch_add(1, AcqRel) + 1
        } else {
            self.succeeded.load(Acquire)
        };
        if retried < MIN_RETRIED_CALLS.load(Relaxed) {
            return;
        }
        let permille = (ok as u64 * 1000 / retried as u64) as u32;
        if permille >= threshold {
            return;
        }
        let last = self.last_warning.load(Acquire);
        if last != 0 && now.saturating_sub(last) < window {
            return;
        }
        if self
            .last_warning
            .compare_exchange(last, now, AcqRel, Acquire)
            .is_ok()
        {
            let rate = ok as f64 / retried as f64;
            tracing::warn!(
                target: crate::log::TARGET,
                op,
                retry_success_rate = rate,
                retried_calls = retried,
                threshold = threshold as f64 / 1000.0,
                window_s = window as f64 / 1e9,
                "only {:.1}% of the calls of {op} that retried succeeded (threshold {:.1}%): retries are hiding a failing downstream",
                rate * 100.0,
                threshold as f64 / 10.0,
            );
        }
    }
}

impl Default for AlertWindow {
    fn default() -> Self {
        Self::new()
    }
}
