//! Feature `metrics`: every counter reaches the `metrics` facade with the documented names
//! and labels, checked with metrics-util's debugging recorder.
#![cfg(feature = "metrics")]

mod common;

use common::Down;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use std::collections::BTreeMap;
use stormguard::retry;

#[retry(attempts = 3, base = "1ms", name = "metrics.flaky")]
async fn flaky(fail_first: u32) -> Result<u32, Down> {
    if stormguard::attempt() <= fail_first {
        Err(Down)
    } else {
        Ok(stormguard::attempt())
    }
}

/// (name, sorted labels) → value, for counters and gauges.
fn read(snapshotter: &Snapshotter) -> BTreeMap<(String, Vec<(String, String)>), f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            labels.sort();
            let v = match (kind, value) {
                (MetricKind::Counter, DebugValue::Counter(c)) => c as f64,
                (MetricKind::Gauge, DebugValue::Gauge(g)) => g.into_inner(),
                _ => f64::NAN,
            };
            ((key.name().to_string(), labels), v)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

#[tokio::test(start_paused = true)]
async fn counters_are_exported_with_documented_names_and_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

    flaky(0).await.unwrap(); // first try
    flaky(1).await.unwrap(); // one retry
    flaky(5).await.unwrap_err(); // gives up after 3 attempts

    let m = read(&snapshotter);
    let get = |name: &str, l: &[(&str, &str)]| {
        m.get(&(name.to_string(), labels(l)))
            .copied()
            .unwrap_or_else(|| panic!("{name} {l:?} missing from {m:#?}"))
    };
    let op = ("op", "metrics.flaky");
    assert_eq!(get("stormguard_calls_total", &[op]), 3.0);
    assert_eq!(
        get("stormguard_attempts_total", &[op, ("outcome", "success")]),
        2.0
    );
    assert_eq!(
        get("stormguard_attempts_total", &[op, ("outcome", "failure")]),
        4.0
    );
    assert_eq!(get("stormguard_retries_total", &[op]), 3.0);
    assert_eq!(get("stormguard_retried_calls_total", &[op]), 2.0);
    assert_eq!(get("stormguard_retry_successes_total", &[op]), 1.0);
    assert_eq!(
        get(
            "stormguard_giveups_total",
            &[op, ("reason", "attempts_exhausted")]
        ),
        1.0
    );
    // A call site's own budget is labelled with its operation (issue 12 item 12: every
    // site's own budget was one `budget=""` series)...
    let budget = ("budget", "metrics.flaky");
    let drained = get("stormguard_budget_tokens", &[budget]);
    assert!(drained <= 100.0);
    // ...and its gauge follows the refill by successes, not only the next retry decision.
    for _ in 0..64 {
        flaky(0).await.unwrap();
    }
    let refilled = read(&snapshotter)
        .get(&("stormguard_budget_tokens".to_string(), labels(&[budget])))
        .copied()
        .unwrap();
    assert!(
        refilled > drained,
        "{drained} then {refilled} after 64 successes"
    );
}
