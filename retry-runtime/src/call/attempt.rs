//! The futures a call awaits: one plain attempt (the body polled with the attempt in scope),
//! and the boxed `Timer` it sleeps on before a retry or that bounds a guarded attempt.

use super::{Call, PermitSlot, StartTime};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A tokio `Sleep`, boxed: the sleep before a retry, and the limit of a guarded or hedged
/// attempt (`timeout`, `deadline`, the hedge delay).
///
/// Boxed, so that the annotated fn's future, which holds it across an `.await`, does not
/// carry tokio's 112-byte `Sleep` on every call: a limit's timer is made only once its
/// attempt is pending, so an attempt that completes at once allocates nothing, and one that
/// waits pays one allocation beside the timer registration it needs anyway. Made and dropped
/// out of line, so that the annotated fn's future stays small to build and to drop.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Timer {
    sleep: ManuallyDrop<Pin<Box<tokio::time::Sleep>>>,
}

impl Timer {
    /// Tokio's `sleep(delay)`.
    #[inline(never)]
    pub(crate) fn new(delay: Duration) -> Timer {
        Timer {
            sleep: ManuallyDrop::new(Box::pin(tokio::time::sleep(delay))),
        }
    }

    /// Tokio's `sleep_until` the moment [`now_nanos`](crate::clock::now_nanos) reads `at`.
    #[inline(never)]
    pub(crate) fn at(at: u64) -> Timer {
        Timer {
            sleep: ManuallyDrop::new(Box::pin(tokio::time::sleep_until(crate::clock::instant(
                at,
            )))),
        }
    }

    /// Sets it to fire at `at` instead (on the same clock as [`Timer::at`]).
    pub(crate) fn reset(&mut self, at: u64) {
        self.sleep.as_mut().reset(crate::clock::instant(at));
    }
}

impl Future for Timer {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.sleep.as_mut().poll(cx)
    }
}

impl Drop for Timer {
    #[inline(never)]
    fn drop(&mut self) {
        // SAFETY: dropped here only, once.
        unsafe { ManuallyDrop::drop(&mut self.sleep) }
    }
}

pin_project_lite::pin_project! {
    /// One attempt of a call without `timeout`, `deadline` or `breaker`: the body, polled
    /// with the attempt in scope.
    #[must_use = "futures do nothing unless polled"]
    pub struct Attempt<'a, F, L: PermitSlot, S: StartTime> {
        pub(super) call: &'a mut Call<L, S>,
        #[pin]
        pub(super) body: F,
    }
}

impl<F: Future, L: PermitSlot, S: StartTime> Future for Attempt<'_, F, L, S> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _in = this.call.attempt_entered();
        this.body.poll(cx)
    }
}
