//! Names: declared breakers and budgets, the ones call sites use undeclared, and lookups by
//! name. Regression tests for issue 12 items 2, 8, 11 and 16.

use std::sync::mpsc;
use std::time::Duration;
use stormguard::retry;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

#[derive(Debug)]
struct Down;

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("down")
    }
}

impl From<stormguard::GuardError> for Down {
    fn from(_: stormguard::GuardError) -> Self {
        Down
    }
}

stormguard::breakers! {
    registry_declared { consecutive_failures: 3 }
}

thread_local! {
    static CALL_BACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A log shipper built on the library: every event it sees on a marked thread calls back
/// into stormguard (stats, a breaker lookup, an annotated fn's first use).
struct CallsBack;

impl<S: tracing::Subscriber> Layer<S> for CallsBack {
    fn on_event(&self, _: &tracing::Event<'_>, _: Context<'_, S>) {
        if CALL_BACK.with(|c| c.replace(false)) {
            let _ = stormguard::stats();
            let _ = stormguard::breaker("registry_declared").state();
            let _ = stormguard::undeclared_breakers();
            CALL_BACK.with(|c| c.set(true));
        }
    }
}

fn install_calling_back_subscriber() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(CallsBack);
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    });
}

#[retry(attempts = 1, breaker = "registry_used_not_declared")]
async fn uses_an_undeclared_breaker() -> Result<(), Down> {
    Ok(())
}

#[test]
fn a_tracing_layer_that_calls_back_into_the_library_does_not_hang_it() {
    install_calling_back_subscriber();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        CALL_BACK.with(|c| c.set(true));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The first use of an undeclared breaker warns: the layer runs inside that warning.
        rt.block_on(uses_an_undeclared_breaker()).unwrap();
        let _ = stormguard::stats();
        done.send(()).unwrap();
    });
    assert!(
        finished.recv_timeout(Duration::from_secs(60)).is_ok(),
        "the warning about an undeclared breaker deadlocked a tracing layer that calls stats()"
    );
}

#[retry(attempts = 1, breaker = "registry_typo_never_called")]
async fn never_called() -> Result<(), Down> {
    Ok(())
}

#[retry(attempts = 1, budget = "registry_budget_typo")]
async fn budget_typo_never_called() -> Result<(), Down> {
    Ok(())
}

#[test]
fn the_names_call_sites_use_undeclared_are_known_before_any_call() {
    let _ = (never_called, budget_typo_never_called);
    assert!(stormguard::undeclared_breakers().contains(&"registry_typo_never_called"));
    assert!(!stormguard::undeclared_breakers().contains(&"registry_declared"));
    assert!(stormguard::undeclared_budgets().contains(&"registry_budget_typo"));
}

#[test]
fn looking_up_unknown_names_grows_nothing() {
    let first = stormguard::breaker("registry-unknown-0") as *const _;
    for i in 1..20_000 {
        let b = stormguard::breaker(&format!("registry-unknown-{i}"));
        assert!(
            std::ptr::eq(b, first),
            "one inert breaker for every unknown name"
        );
    }
    assert!(stormguard::undeclared_breakers()
        .iter()
        .all(|n| !n.starts_with("registry-unknown")));
    assert!(stormguard::stats()
        .breakers
        .iter()
        .all(|b| !b.breaker.starts_with("registry-unknown")));
}

#[test]
fn a_declared_or_used_name_finds_its_breaker() {
    let declared = stormguard::breaker("registry_declared");
    assert_eq!(declared.name(), "registry_declared");
    assert_eq!(declared.config().consecutive_failures(), Some(3));
    // Used by a call site that has not run yet: the same breaker the site will use.
    let used = stormguard::breaker("registry_used_not_declared");
    assert_eq!(used.name(), "registry_used_not_declared");
    assert!(std::ptr::eq(
        used,
        stormguard::breaker("registry_used_not_declared")
    ));
}

#[test]
fn the_inert_breaker_of_unknown_names_never_opens() {
    let typo = stormguard::breaker("registry-typo-a");
    for _ in 0..1000 {
        typo.admit().expect("never refuses").failure();
    }
    assert_eq!(typo.state(), stormguard::BreakerState::Closed);
    assert!(stormguard::breaker("registry-typo-b").admit().is_ok());
}
