//! The `when` and `retry_after` of a call site whose attribute names none: the error type's
//! `Classify` impl where it has one, else every error transient and no hint (autoref dispatch).

use crate::call::{RetryHint, Transient};
use crate::classify::Classify;
use std::marker::PhantomData;
use std::time::Duration;

/// A type-level handle on the fn's return type `R`, named at the call site where the error
/// type is as concrete as it will get. Call
/// `(&&DefaultWhen::<R>::new()).__stormguard_when()` (resp. `__stormguard_retry_after`) with
/// [`ViaClassify`] and [`ViaDefault`] in scope: [`ViaClassify`] wins where `R` is
/// `Result<T, E>` with `E: Classify` known there, [`ViaDefault`] applies to everything else
/// (a generic `E` without that bound, a type that is not a `Result`).
///
/// Nothing of it runs on the success path: it builds zero-sized values that `judge` calls
/// only on a failure.
pub struct DefaultWhen<R>(PhantomData<fn(&R)>);

impl<R> DefaultWhen<R> {
    /// The handle for `R`.
    #[inline(always)]
    pub const fn new() -> Self {
        DefaultWhen(PhantomData)
    }
}

impl<R> Default for DefaultWhen<R> {
    fn default() -> Self {
        Self::new()
    }
}

/// Preferred: the error type's [`Classify`] impl.
pub trait ViaClassify {
    /// `when`: [`Classify::is_transient`].
    fn __stormguard_when(&self) -> ByClassify;
    /// `retry_after`: [`Classify::retry_after`].
    fn __stormguard_retry_after(&self) -> ByClassify;
}

impl<T, E: Classify> ViaClassify for &DefaultWhen<Result<T, E>> {
    #[inline(always)]
    fn __stormguard_when(&self) -> ByClassify {
        ByClassify
    }
    #[inline(always)]
    fn __stormguard_retry_after(&self) -> ByClassify {
        ByClassify
    }
}

/// Otherwise: every error is transient, no hint.
pub trait ViaDefault {
    /// `when`: every error.
    fn __stormguard_when(&self) -> EveryError;
    /// `retry_after`: none.
    fn __stormguard_retry_after(&self) -> NoHint;
}

impl<R> ViaDefault for DefaultWhen<R> {
    #[inline(always)]
    fn __stormguard_when(&self) -> EveryError {
        EveryError
    }
    #[inline(always)]
    fn __stormguard_retry_after(&self) -> NoHint {
        NoHint
    }
}

/// `when` and `retry_after` through the error's [`Classify`] impl.
#[derive(Clone, Copy, Debug)]
pub struct ByClassify;

impl<E: Classify> Transient<E> for ByClassify {
    #[inline]
    fn is_transient(&self, error: &E) -> bool {
        error.is_transient()
    }
}

impl<E: Classify> RetryHint<E> for ByClassify {
    #[inline]
    fn retry_after(&self, error: &E) -> Option<Duration> {
        error.retry_after()
    }
}

/// The default `when` of an error type without [`Classify`]: every error is transient.
#[derive(Clone, Copy, Debug)]
pub struct EveryError;

impl<E> Transient<E> for EveryError {
    #[inline]
    fn is_transient(&self, _: &E) -> bool {
        true
    }
}

/// The default `retry_after` of an error type without [`Classify`]: no hint.
#[derive(Clone, Copy, Debug)]
pub struct NoHint;

impl<E> RetryHint<E> for NoHint {
    #[inline]
    fn retry_after(&self, _: &E) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    struct Plain;

    struct Hinted;
    impl Classify for Hinted {
        fn is_transient(&self) -> bool {
            false
        }
        fn retry_after(&self) -> Option<Duration> {
            Some(Duration::from_secs(3))
        }
    }

    fn when_of<R, E>(w: impl Transient<E>, e: &E, _: PhantomData<R>) -> bool {
        w.is_transient(e)
    }

    fn hint_of<E>(h: impl RetryHint<E>, e: &E) -> Option<Duration> {
        h.retry_after(e)
    }

    #[test]
    #[allow(clippy::needless_borrow)] // the borrows select the implementation
    fn classify_where_known_else_every_error() {
        let io_err = io::Error::from(io::ErrorKind::NotFound);
        let w = (&&DefaultWhen::<io::Result<()>>::new()).__stormguard_when();
        assert!(!when_of(w, &io_err, PhantomData::<()>));

        let w = (&&DefaultWhen::<Result<(), Plain>>::new()).__stormguard_when();
        assert!(when_of(w, &Plain, PhantomData::<()>));
        let h = (&&DefaultWhen::<Result<(), Plain>>::new()).__stormguard_retry_after();
        assert_eq!(hint_of(h, &Plain), None);

        let h = (&&DefaultWhen::<Result<(), Hinted>>::new()).__stormguard_retry_after();
        assert_eq!(hint_of(h, &Hinted), Some(Duration::from_secs(3)));
    }

    /// Where the bound is not known, the default stays, even for an `E` that has an impl.
    #[allow(clippy::needless_borrow)]
    fn generic_when<E>(e: &E) -> bool {
        let w = (&&DefaultWhen::<Result<(), E>>::new()).__stormguard_when();
        w.is_transient(e)
    }

    #[test]
    fn a_generic_error_keeps_the_default() {
        assert!(generic_when(&io::Error::from(io::ErrorKind::NotFound)));
    }

    #[test]
    fn the_probe_values_take_no_space() {
        assert_eq!(std::mem::size_of::<DefaultWhen<io::Result<u64>>>(), 0);
        assert_eq!(std::mem::size_of::<ByClassify>(), 0);
        assert_eq!(std::mem::size_of::<EveryError>(), 0);
    }
}
