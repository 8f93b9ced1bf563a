//! What an attempt returns: a `Result<T, E>` (or any alias of it), named by the fn's declared
//! return type so that the attempt's body infers its `?` and `return` from it.

/// Implemented by `Result<T, E>` only (and so by every alias of it): the return type of an
/// annotated fn, given to [`Call::attempt`](super::Call::attempt) and its kin.
#[diagnostic::on_unimplemented(
    message = "#[retry] needs a fn that returns `Result<T, E>`, not `{Self}`",
    label = "not a `Result`",
    note = "return `Result<T, E>` (or an alias such as `io::Result<T>`) and put the failure in `Err`: the error decides whether to retry"
)]
pub trait ReturnsResult {
    /// `T`.
    type Ok;
    /// `E`.
    type Err;
}

impl<T, E> ReturnsResult for Result<T, E> {
    type Ok = T;
    type Err = E;
}
