//! When a call started: nothing at all for a call without a `deadline` (no clock read, no
//! byte in its future); tokio's clock for an async call with one, std's for a blocking call.

use std::fmt::Debug;
use std::time::Duration;

/// The start time a [`Call`](super::Call) keeps: `()` without a deadline, [`Started`] with one,
/// [`StartedBlocking`] for a blocking fn with one.
pub trait StartTime: Copy + Debug {
    /// True for a start time that a deadline can count from.
    const KEPT: bool;
    /// The start of a call starting now.
    fn now() -> Self;
    /// Time since the start (zero for `()`, which no deadline reads).
    fn elapsed(self) -> Duration;
}

impl StartTime for () {
    const KEPT: bool = false;
    #[inline(always)]
    fn now() {}
    #[inline(always)]
    fn elapsed(self) -> Duration {
        Duration::ZERO
    }
}

/// The start of a call with a `deadline`, as [`crate::clock::now_nanos`].
#[derive(Clone, Copy, Debug)]
pub struct Started(u64);

impl StartTime for Started {
    const KEPT: bool = true;
    #[inline]
    fn now() -> Self {
        Started(crate::clock::now_nanos())
    }
    #[inline]
    fn elapsed(self) -> Duration {
        Duration::from_nanos(crate::clock::now_nanos().saturating_sub(self.0))
    }
}

/// The start of a blocking call with a `deadline`, on std's clock: the clock its
/// `std::thread::sleep`s follow, also inside a runtime whose tokio clock is paused.
#[derive(Clone, Copy, Debug)]
pub struct StartedBlocking(std::time::Instant);

impl StartTime for StartedBlocking {
    const KEPT: bool = true;
    #[inline]
    fn now() -> Self {
        StartedBlocking(std::time::Instant::now())
    }
    #[inline]
    fn elapsed(self) -> Duration {
        self.0.elapsed()
    }
}
