//! The switch between std and loom: the atomics, the clock and the random draws that the
//! lock-free state machines use, so that `--cfg loom` model-checks them with loom's (as tokio's `loom` module).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64};
pub(crate) use std::sync::atomic::Ordering;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64};

/// The clock every decision reads: tokio's, through [`crate::clock`]; a fixed instant under loom.
#[cfg(not(loom))]
pub(crate) fn clock_now() -> u64 {
    crate::clock::now_nanos()
}

#[cfg(loom)]
pub(crate) fn clock_now() -> u64 {
    1_000_000_000
}

/// The factor applied to a doubled open time: uniform in `[0.9, 1.1)`; exactly 1 under loom,
/// which needs every run of a model to take the same path.
#[cfg(not(loom))]
pub(crate) fn jitter_factor() -> f64 {
    0.9 + 0.2 * fastrand::f64()
}

#[cfg(loom)]
pub(crate) fn jitter_factor() -> f64 {
    1.0
}
