//! What runs once, at the first call of any annotated fn (or the first lookup of a breaker by
//! name), before a policy is read: the hooks that higher modules register here.

/// Run once, at first use (the live configuration registers its `STORMGUARD_CONFIG` loader).
#[linkme::distributed_slice]
pub static AT_FIRST_USE: [fn()];

/// Runs the hooks of [`AT_FIRST_USE`] the first time it is called. Never blocks: a call that
/// comes while they run (from another thread, or from a tracing layer the hooks' logs reach)
/// goes on with the compiled policy, which the hooks then replace.
pub(crate) fn first_use() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static STARTED: AtomicBool = AtomicBool::new(false);
    if !STARTED.swap(true, Ordering::AcqRel) {
        for hook in AT_FIRST_USE {
            hook();
        }
    }
}
