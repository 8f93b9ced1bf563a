//! How an error reaches the `error` field of the attempt logs: its `Display`, else its
//! `Debug`, else its type name, chosen at compile time at the call site (autoref dispatch).

use std::fmt;
use std::marker::PhantomData;

/// Formats an error for the logs.
pub type ErrorFormatter<E> = fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result;

/// A type-level handle on `E`, built from the attempt's result at the call site, where `E`
/// is concrete. Call `(&&&ErrorType::of(&result)).__stormguard_formatter()` with the three traits below in
/// scope: the first that applies wins.
pub struct ErrorType<E>(PhantomData<fn(&E)>);

impl<E> ErrorType<E> {
    /// The kind of the error type of `result`.
    pub fn of<T>(_result: &Result<T, E>) -> Self {
        ErrorType(PhantomData)
    }
}

/// Preferred: the error's `Display`.
pub trait ViaDisplay<E> {
    /// The formatter for `E`.
    fn __stormguard_formatter(&self) -> ErrorFormatter<E>;
}
impl<E: fmt::Display> ViaDisplay<E> for &&ErrorType<E> {
    fn __stormguard_formatter(&self) -> ErrorFormatter<E> {
        <E as fmt::Display>::fmt
    }
}

/// Next: the error's `Debug`.
pub trait ViaDebug<E> {
    /// The formatter for `E`.
    fn __stormguard_formatter(&self) -> ErrorFormatter<E>;
}
impl<E: fmt::Debug> ViaDebug<E> for &ErrorType<E> {
    fn __stormguard_formatter(&self) -> ErrorFormatter<E> {
        <E as fmt::Debug>::fmt
    }
}

/// Last resort: the error's type name.
pub trait ViaTypeName<E> {
    /// The formatter for `E`.
    fn __stormguard_formatter(&self) -> ErrorFormatter<E>;
}
impl<E> ViaTypeName<E> for ErrorType<E> {
    fn __stormguard_formatter(&self) -> ErrorFormatter<E> {
        |_, f| f.write_str(std::any::type_name::<E>())
    }
}

/// Displays `error` with `formatter` (for `tracing`'s `%` fields).
pub struct Described<'a, E>(pub &'a E, pub ErrorFormatter<E>);

impl<E> fmt::Display for Described<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.1)(self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Opaque;
    #[derive(Debug)]
    struct OnlyDebug;

    #[test]
    #[allow(clippy::needless_borrow)] // the borrows select the implementation
    fn display_then_debug_then_type_name() {
        let a: Result<(), std::io::Error> = Err(std::io::Error::other("boom"));
        let b: Result<(), OnlyDebug> = Err(OnlyDebug);
        let c: Result<(), Opaque> = Err(Opaque);
        let fa = (&&&ErrorType::of(&a)).__stormguard_formatter();
        let fb = (&&&ErrorType::of(&b)).__stormguard_formatter();
        let fc = (&&&ErrorType::of(&c)).__stormguard_formatter();
        assert_eq!(Described(a.as_ref().unwrap_err(), fa).to_string(), "boom");
        assert_eq!(
            Described(b.as_ref().unwrap_err(), fb).to_string(),
            "OnlyDebug"
        );
        assert!(Described(c.as_ref().unwrap_err(), fc)
            .to_string()
            .ends_with("Opaque"));
    }
}
