//! The futures a call awaits: one plain attempt (the body polled with the attempt in scope),
//! the `RetrySleep` before a retry, and the `Timer` that bounds a guarded attempt.

use super::{Call, PermitSlot, StartTime};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The sleep before a retry: tokio's `Sleep`, boxed (the retry path allocates it), so that
/// the annotated fn's future, which holds it across its second `.await`, does not carry its
/// 112 bytes on every call.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct RetrySleep {
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl RetrySleep {
    /// Tokio's `sleep(delay)`.
    #[inline(never)]
    pub(crate) fn new(delay: Duration) -> RetrySleep {
        RetrySleep {
            sleep: Box::pin(tokio::time::sleep(delay)),
        }
    }
}

impl Future for RetrySleep {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.sleep.as_mut().poll(cx)
    }
}

/// The limit of a guarded attempt (`timeout`, `deadline`): tokio's `Sleep`, inline (armed only
/// once the attempt is pending, and never allocated), dropped out of line.
///
/// Inline, `Sleep`'s drop (timer deregistration, runtime handle) made the annotated future's
/// drop glue too big to be inlined, and every call paid an out-of-line call to drop it.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Timer {
    sleep: ManuallyDrop<tokio::time::Sleep>,
}

impl Timer {
    /// Tokio's `sleep(delay)`.
    #[inline]
    pub(crate) fn new(delay: Duration) -> Timer {
        Timer {
            sleep: ManuallyDrop::new(tokio::time::sleep(delay)),
        }
    }
}

impl Timer {
    /// Tokio's `sleep_until` the moment [`now_nanos`](crate::clock::now_nanos) reads `at`.
    #[inline]
    pub(crate) fn at(at: u64) -> Timer {
        Timer {
            sleep: ManuallyDrop::new(tokio::time::sleep_until(crate::clock::instant(at))),
        }
    }

    /// Sets it to fire at `at` instead (on the same clock as [`Timer::at`]).
    pub(crate) fn reset(self: Pin<&mut Self>, at: u64) {
        // SAFETY: as in `poll`.
        unsafe { self.map_unchecked_mut(|pause| &mut *pause.sleep) }
            .reset(crate::clock::instant(at));
    }
}

impl Future for Timer {
    type Output = ();

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: structural pinning of `sleep`: it is never moved out of `Timer`, and is
        // dropped in place (`Drop` below); `Timer` is `!Unpin` because `Sleep` is.
        unsafe { self.map_unchecked_mut(|pause| &mut *pause.sleep) }.poll(cx)
    }
}

impl Drop for Timer {
    #[inline(never)]
    fn drop(&mut self) {
        // SAFETY: dropped here only, once, in place (see `poll`).
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
