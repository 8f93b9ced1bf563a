//! What a call keeps for its breaker between attempts: the running attempt's permit (without
//! drop glue) and the last error, or nothing at all for a call without a breaker.

use crate::breaker::{Permit, RawPermit};
use std::marker::PhantomData;

/// What a call holds for a breaker: the running attempt's permit, in the call itself (a
/// first-try success reports it), and, in its state built on the first failure, the last
/// error (returned if the breaker refuses the next attempt). [`BreakerSlot<E>`] with a
/// `breaker`; `()` (nothing held) without one, so that a call without a breaker never holds
/// an `E` across an `.await` (its future stays `Send` even for an `E` that is not).
pub trait PermitSlot: Default {
    /// Where the call's state keeps the last error: `Option<E>`, or `()` for none.
    type Kept: Default;
    /// The next attempt was admitted with `permit`.
    fn admitted(&mut self, permit: Permit);
    /// The running attempt's permit, to report its outcome.
    fn take_permit(&mut self) -> Option<Permit>;
}

/// Keeps the last error of a call ([`PermitSlot::Kept`]): `Option<E>` keeps it, `()` drops it.
pub trait ErrorSlot<E>: Default {
    /// Keeps `error` (or drops it).
    fn keep(&mut self, error: E);
    /// The kept error, if any.
    fn take_error(&mut self) -> Option<E>;
}

impl<E> ErrorSlot<E> for () {
    #[inline]
    fn keep(&mut self, _: E) {}
    #[inline]
    fn take_error(&mut self) -> Option<E> {
        None
    }
}

impl<E> ErrorSlot<E> for Option<E> {
    #[inline]
    fn keep(&mut self, error: E) {
        *self = Some(error);
    }
    #[inline]
    fn take_error(&mut self) -> Option<E> {
        self.take()
    }
}

impl PermitSlot for () {
    type Kept = ();
    #[inline]
    fn admitted(&mut self, permit: Permit) {
        // Only a site without a breaker uses `()`, and its attempts ask for no permit.
        debug_assert!(false, "a breaker's permit for a call that holds nothing");
        drop(permit); // counts as neither success nor failure
    }
    #[inline]
    fn take_permit(&mut self) -> Option<Permit> {
        None
    }
}

/// What a call with a `deadline` and no `breaker` holds (see [`PermitSlot`]): no permit; its
/// state keeps the last error, returned if the deadline leaves the next attempt no time
/// (rather than a `DeadlineExceeded` for an attempt that never ran).
#[derive(Debug)]
pub struct ErrorKept<E>(PhantomData<fn() -> E>);

impl<E> Default for ErrorKept<E> {
    fn default() -> Self {
        ErrorKept(PhantomData)
    }
}

impl<E> PermitSlot for ErrorKept<E> {
    type Kept = Option<E>;
    #[inline]
    fn admitted(&mut self, permit: Permit) {
        // Only a site without a breaker uses `ErrorKept`, and its attempts ask for no permit.
        debug_assert!(false, "a breaker's permit for a call without a breaker");
        drop(permit);
    }
    #[inline]
    fn take_permit(&mut self) -> Option<Permit> {
        None
    }
}

/// Chooses, at the call site, what a call with a `deadline` and no `breaker` keeps for the
/// fn's return type `R`: [`ErrorKept`] when its error type is `Send`, else `()` (so that the
/// annotated future stays `Send` whenever the plain fn's is). Autoref dispatch:
/// `(&&KeepError::<R>::new()).__stormguard_slot()` with both traits in scope.
pub struct KeepError<R>(PhantomData<fn() -> R>);

impl<R> KeepError<R> {
    /// The probe for return type `R`.
    #[inline(always)]
    pub const fn new() -> Self {
        KeepError(PhantomData)
    }
}

impl<R> Default for KeepError<R> {
    fn default() -> Self {
        Self::new()
    }
}

/// Preferred: an error type that is `Send` is kept.
pub trait KeepSendError<E> {
    /// The slot.
    fn __stormguard_slot(&self) -> ErrorKept<E>;
}

impl<T, E: Send> KeepSendError<E> for &KeepError<Result<T, E>> {
    #[inline(always)]
    fn __stormguard_slot(&self) -> ErrorKept<E> {
        ErrorKept::default()
    }
}

/// Otherwise nothing is kept (an `E` that is not `Send`, or a generic `E` not known to be).
pub trait KeepNoError {
    /// The slot.
    fn __stormguard_slot(&self);
}

impl<R> KeepNoError for KeepError<R> {
    #[inline(always)]
    fn __stormguard_slot(&self) {}
}

/// What a call with a `breaker` holds (see [`PermitSlot`]): the running attempt's permit; the last
/// error, an `E`, lives in the call's state.
#[derive(Debug)]
pub struct BreakerSlot<E> {
    permit: Option<RawPermit>,
    error: PhantomData<fn() -> E>,
}

impl<E> Drop for BreakerSlot<E> {
    #[inline]
    fn drop(&mut self) {
        // Only a probe's permit has anything to give back when dropped unreported.
        if let Some(parked) = self.permit.filter(RawPermit::is_probe) {
            drop(parked.resume());
        }
    }
}

impl<E> Default for BreakerSlot<E> {
    fn default() -> Self {
        BreakerSlot {
            permit: None,
            error: PhantomData,
        }
    }
}

impl<E> PermitSlot for BreakerSlot<E> {
    type Kept = Option<E>;
    #[inline]
    fn admitted(&mut self, permit: Permit) {
        self.permit = Some(permit.park());
    }
    #[inline]
    fn take_permit(&mut self) -> Option<Permit> {
        self.permit.take().map(RawPermit::resume)
    }
}
