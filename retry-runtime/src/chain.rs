//! `Classify for anyhow::Error` (feature `anyhow`): the first cause in the error's chain whose
//! type has a shipped `Classify` impl decides; none known → transient.

use crate::classify::Classify;
use crate::error::GuardError;
use std::error::Error as StdError;
use std::time::Duration;

/// The first cause in `chain` of a type with a shipped impl: `std::io::Error`, `GuardError`,
/// and with their features `http::Error`, `http::StatusError`, `reqwest::Error`,
/// `tonic::Status`.
fn known_cause<'a>(
    mut chain: impl Iterator<Item = &'a (dyn StdError + 'static)>,
) -> Option<&'a dyn Classify> {
    chain.find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            return Some(e as &dyn Classify);
        }
        if let Some(e) = cause.downcast_ref::<GuardError>() {
            return Some(e as &dyn Classify);
        }
        #[cfg(feature = "reqwest")]
        {
            if let Some(e) = cause.downcast_ref::<crate::http::Error>() {
                return Some(e as &dyn Classify);
            }
            if let Some(e) = cause.downcast_ref::<crate::http::StatusError>() {
                return Some(e as &dyn Classify);
            }
            if let Some(e) = cause.downcast_ref::<reqwest::Error>() {
                return Some(e as &dyn Classify);
            }
        }
        #[cfg(feature = "tonic")]
        {
            if let Some(e) = cause.downcast_ref::<tonic::Status>() {
                return Some(e as &dyn Classify);
            }
        }
        None
    })
}

/// Walks the chain of causes (outermost first, `context` included): the first cause whose
/// type has a shipped impl (`std::io::Error`, `GuardError`, and with their features
/// `http::Error`, `http::StatusError`, `reqwest::Error`, `tonic::Status`) decides both
/// `is_transient` and `retry_after`. A chain with none of them is transient with no hint, as
/// an error type without an impl would be. A type of your own inside the chain is not seen:
/// name a `when` for it.
///
/// ```
/// use anyhow::Context;
/// use retry_runtime::Classify;
/// use std::io;
///
/// let denied: anyhow::Error = Err::<(), _>(io::Error::from(io::ErrorKind::PermissionDenied))
///     .context("reading /etc/app.toml")
///     .unwrap_err();
/// assert!(!denied.is_transient()); // the io::Error inside decides
/// assert!(anyhow::anyhow!("something odd").is_transient()); // nothing known: transient
/// ```
impl Classify for anyhow::Error {
    fn is_transient(&self) -> bool {
        known_cause(self.chain()).is_none_or(|cause| cause.is_transient())
    }

    fn retry_after(&self) -> Option<Duration> {
        known_cause(self.chain()).and_then(|cause| cause.retry_after())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[derive(Debug)]
    struct Wrapper(io::Error);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapper")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_first_known_cause_decides() {
        let reset = anyhow::Error::new(Wrapper(io::ErrorKind::ConnectionReset.into()))
            .context("calling payments");
        assert!(reset.is_transient());
        let denied = anyhow::Error::new(Wrapper(io::ErrorKind::PermissionDenied.into()))
            .context("calling payments");
        assert!(!denied.is_transient());
        let open = anyhow::Error::new(GuardError::BreakerOpen {
            op: "op",
            breaker: "b",
            retry_in: Duration::from_secs(1),
        });
        assert!(!open.is_transient());
        assert!(anyhow::anyhow!("unknown").context("outer").is_transient());
        assert_eq!(anyhow::anyhow!("unknown").retry_after(), None);
    }

    #[cfg(feature = "tonic")]
    #[test]
    fn a_status_in_the_chain_gives_its_pushback() {
        let mut trailers = tonic::metadata::MetadataMap::new();
        trailers.insert("grpc-retry-pushback-ms", "40".parse().unwrap());
        let status = tonic::Status::with_metadata(tonic::Code::Unavailable, "busy", trailers);
        let e = anyhow::Error::new(status).context("lookup");
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), Some(Duration::from_millis(40)));
    }
}
