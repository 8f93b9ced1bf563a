//! `breakers!` and `budgets!` with valid entries, used by name from `#[retry]`.
#![deny(warnings)]

use stormguard::retry;

mod resilience {
    stormguard::breakers! {
        payments { consecutive_failures: 5, open_for: "30s" }
        search   { failure_rate: 0.5, window: "10s", min_calls: 20, open_for: "5s", half_open_probes: 2 }
        ledger   { window: 100, open_for: "1m", open_max: "10m" }
        r#type   { failure_rate: 1 }
    }

    stormguard::budgets! {
        payments { capacity: 50, ratio: 0.2, min_per_sec: 2, max_concurrent: 10 }
        bulk     { capacity: 0, ratio: 1, window: "30s" }
    }
}

#[derive(Debug, PartialEq)]
struct Declined;

impl From<stormguard::GuardError> for Declined {
    fn from(_: stormguard::GuardError) -> Self {
        Declined
    }
}

#[retry(attempts = 3, base = "1ms", breaker = "payments", budget = "payments")]
async fn charge(cents: u64) -> Result<u64, Declined> {
    if stormguard::attempt() == 1 {
        return Err(Declined);
    }
    Ok(cents)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(charge(100).await, Ok(100));
    let payments = stormguard::breaker("payments");
    assert_eq!(payments.config().consecutive_failures(), Some(5));
    assert_eq!(
        payments.config().open_for(),
        std::time::Duration::from_secs(30)
    );
    assert_eq!(stormguard::breaker("search").config().half_open_probes(), 2);
    assert_eq!(
        stormguard::breaker("ledger").config().window(),
        stormguard::Window::Calls(100)
    );
    assert_eq!(stormguard::breaker("type").config().failure_rate(), 1.0);
    assert!(stormguard::undeclared_breakers().is_empty());
}
