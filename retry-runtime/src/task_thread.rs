//! Whether this thread is polling a tokio task (a runtime's worker, or `block_on`), told apart
//! from `spawn_blocking`'s pool and `block_in_place` by the cooperative budget tokio sets.

use std::task::{Context, Poll, Waker};
use tokio::task::coop;

/// More than the largest budget tokio gives a task poll (a `u8`).
const MORE_THAN_ANY_BUDGET: usize = 256;

/// True when this thread is polling a tokio runtime's future, whose poll tokio gives a
/// budget: a task on a worker or a current-thread runtime (a blocking sleep stalls every task
/// queued there), or a `block_on` future (it stalls that future). `spawn_blocking` and
/// `block_in_place` lift the budget, and a thread that only entered a runtime has none: false.
/// So does `coop::unconstrained`, which makes a task inside it read as false too (a known
/// miss). The budget is spent to find its end, then put back as it was: nothing is yielded or
/// woken (with `tokio_unstable` metrics, reaching the end counts one forced yield).
pub(crate) fn polls_a_task() -> bool {
    if tokio::runtime::Handle::try_current().is_err() {
        return false;
    }
    if !coop::has_budget_remaining() {
        return true;
    }
    let mut cx = Context::from_waker(Waker::noop());
    // Never marked as progress: dropped last, it puts the budget back as it was before it.
    let Poll::Ready(_restore) = coop::poll_proceed(&mut cx) else {
        return true;
    };
    for _ in 0..MORE_THAN_ANY_BUDGET {
        if !coop::has_budget_remaining() {
            return true;
        }
        if let Poll::Ready(spent) = coop::poll_proceed(&mut cx) {
            spent.made_progress();
        }
    }
    false
}
