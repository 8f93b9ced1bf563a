//! The futures a call awaits: one plain attempt (the body polled with the attempt in scope)
//! and the `Timer` that sleeps before a retry or bounds a guarded attempt.

use super::{Call, PermitSlot};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The sleep before a retry: tokio's `Sleep`, dropped out of line.
///
/// The annotated fn's future holds this across its second `.await`; inline, `Sleep`'s drop
/// (timer deregistration, runtime handle) made that future's drop glue too big to be inlined,
/// and every call, a first-try success included, paid an out-of-line call to drop it.
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
    pub struct Attempt<'a, F, L: PermitSlot> {
        pub(super) call: &'a mut Call<L>,
        #[pin]
        pub(super) body: F,
    }
}

impl<F: Future, L: PermitSlot> Future for Attempt<'_, F, L> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let body = this.body;
        this.call.in_attempt(|| body.poll(cx))
    }
}
