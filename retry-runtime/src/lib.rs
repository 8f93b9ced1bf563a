//! The runtime behind stormguard's `#[retry]`: policies, backoff and jitter, per-attempt
//! timeouts, circuit breakers, retry budgets, attempt logs and stats.
//!
//! Use it through the `stormguard` crate, which re-exports the items at this crate's root
//! (its public API, documented there). What the generated code and this workspace's own
//! tests and simulations call lives in the hidden [`__private`] module: not public API.
//!
//! The modules, from the bottom up (each imports only those above it in this list):
//! `loom`, `startup`, `clock`, `policy`, `backoff`, `jitter`, `give_up`, `error`, `classify` (with `http`,
//! `grpc`, `chain` behind their features), `scope`, `describe`, `log`, `export`, `alert`,
//! `counters`, `latency`, `breaker`, `budget`, `registry`, `site`, `stats`, `fleet` (feature
//! `redis`), `config`, `call`, `default_when`.

#![warn(missing_docs)]

mod alert;
mod backoff;
mod breaker;
mod budget;
mod call;
#[cfg(feature = "anyhow")]
mod chain;
mod classify;
mod clock;
#[cfg(feature = "config")]
pub mod config;
mod counters;
mod default_when;
mod describe;
mod error;
mod export;
#[cfg(feature = "redis")]
mod fleet;
mod give_up;
#[cfg(feature = "tonic")]
pub mod grpc;
#[cfg(feature = "reqwest")]
pub mod http;
mod jitter;
mod latency;
mod log;
mod loom;
mod policy;
#[cfg(feature = "config")]
mod redis_at;
mod registry;
mod scope;
mod site;
mod startup;
mod stats;
mod task_thread;

pub use alert::set_retry_success_alert;
pub use breaker::{Breaker, BreakerConfig, BreakerCounts, BreakerState, Force, Permit, Window};
pub use budget::{Budget, BudgetConfig};
pub use classify::Classify;
pub use error::GuardError;
pub use give_up::GiveUpReason;
pub use policy::{Backoff, Hedge, Jitter, Policy};
pub use registry::find_breaker;
pub use scope::attempt;
pub use site::{undeclared_breakers, undeclared_budgets};
pub use stats::{stats, BreakerStats, BudgetStats, GiveUps, OpStats, Stats};

/// What the code `#[retry]`, `breakers!` and `budgets!` generate calls, and what this
/// workspace's tests and simulations reach into. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::backoff::delay_before_retry;
    pub use crate::budget::{Refusal, RetrySlot};
    pub use crate::call::{
        Attempt, BreakerSlot, Call, ErrorKept, ErrorSlot, GuardErrors, Guarded, HedgeNext, Hedging,
        KeepError, KeepNoError, KeepSendError, NoGuard, PermitSlot, RetryHint, ReturnsResult,
        StartTime, Started, StartedBlocking, Timer, Transient, Verdict, WithGuard,
    };
    pub use crate::clock::{now_nanos, origin};
    pub use crate::counters::OpCounters;
    /// True while this process's breakers and budgets named in `[fleet]` are shared through
    /// Redis (its last sync succeeded).
    #[cfg(feature = "redis")]
    pub fn fleet_connected() -> bool {
        crate::fleet::connected()
    }
    pub use crate::error::FromGuardError;
    pub use crate::jitter::{jittered, random_unit, seed as seed_jitter};
    pub use crate::registry::{breaker, budget, DECLARED_BREAKERS, DECLARED_BUDGETS};
    pub use crate::scope::AttemptScope;
    pub use crate::site::{breaker_by_name, Site, CALL_SITES};
    pub use linkme;

    /// The default `when`/`retry_after` of a call site: the error type's `Classify` impl, if any.
    pub mod default_when {
        pub use crate::default_when::{
            ByClassify, DefaultWhen, Unclassified, ViaClassify, ViaDefault,
        };
    }

    /// How an error reaches the logs' `error` field (autoref dispatch at the call site).
    pub mod describe {
        pub use crate::describe::{ErrorFormatter, ErrorType, ViaDebug, ViaDisplay, ViaTypeName};
    }
}
