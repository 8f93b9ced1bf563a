//! The `when` and `retry_after` of a call site whose attribute names none: the error type's
//! `Classify` impl where it has one, else every error transient and no hint (autoref dispatch).

use crate::call::{RetryHint, Transient};
use crate::classify::Classify;
use std::marker::PhantomData;
use std::time::Duration;

/// A type-level handle on an attempt's result type `R`, built at the call site where the
/// error type is as concrete as it will get. Call
/// `(&&DefaultWhen::of(&result)).__stormguard_classify()` with [`ViaClassify`] and
/// [`ViaDefault`] in scope: [`ViaClassify`] wins where `R` is `Result<T, E>` with
/// `E: Classify` known there, [`ViaDefault`] applies to everything else (a generic `E`
/// without that bound).
///
/// Nothing of it runs on the success path: it builds a zero-sized value that
/// `after_attempt` consults only on a failure.
pub struct DefaultWhen<R>(PhantomData<fn(&R)>);

impl<R> DefaultWhen<R> {
    /// The handle for the type of `result`.
    #[inline(always)]
    pub fn of(_result: &R) -> Self {
        DefaultWhen(PhantomData)
    }
}

/// Preferred: the error type's [`Classify`] impl.
pub trait ViaClassify {
    /// `when` and `retry_after`: [`Classify::is_transient`] and [`Classify::retry_after`].
    fn __stormguard_classify(&self) -> ByClassify;
}

impl<T, E: Classify> ViaClassify for &DefaultWhen<Result<T, E>> {
    #[inline(always)]
    fn __stormguard_classify(&self) -> ByClassify {
        ByClassify
    }
}

/// Otherwise: every error is transient, and there is no hint.
pub trait ViaDefault {
    /// `when` and `retry_after`: every error, no hint.
    fn __stormguard_classify(&self) -> Unclassified;
}

impl<R> ViaDefault for DefaultWhen<R> {
    #[inline(always)]
    fn __stormguard_classify(&self) -> Unclassified {
        Unclassified
    }
}

/// `when` and `retry_after` by the error type's [`Classify`] impl.
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

/// `when` and `retry_after` for an error type without a [`Classify`] impl: every error is
/// worth a retry, and there is no hint.
#[derive(Clone, Copy, Debug)]
pub struct Unclassified;

impl<E> Transient<E> for Unclassified {
    #[inline]
    fn is_transient(&self, _: &E) -> bool {
        true
    }
}

impl<E> RetryHint<E> for Unclassified {
    #[inline]
    fn retry_after(&self, _: &E) -> Option<Duration> {
        None
    }
}
