//! Docs, visibility and other attributes stay as written. `deny(warnings)` makes a dropped
//! `#[allow(dead_code)]` or a dropped `pub(crate)` fail this case.
#![deny(warnings, missing_docs)]

use stormguard::retry;

mod api {
    use super::retry;

    /// Fetches an invoice; retried.
    #[doc = "More docs, written as an attribute."]
    #[must_use = "the invoice is the point of the call"]
    #[retry(attempts = 2, base = "1ms")]
    #[inline]
    pub(crate) async fn fetch(id: u32) -> Result<u32, String> {
        Ok(id)
    }

    /// Never called: `dead_code` would fire without the `allow`.
    #[allow(dead_code)]
    #[retry]
    async fn unused() -> Result<(), String> {
        Ok(())
    }

    #[retry(attempts = 2)]
    #[cfg(any())]
    async fn compiled_out() -> Result<(), String> {
        Ok(())
    }

    /// Attributes above and below `#[retry]`, and lints on the body, reach the fn.
    #[allow(clippy::needless_return, unused_variables)]
    #[retry(attempts = 2, base = "1ms")]
    #[deprecated = "use fetch"]
    pub fn old_fetch(id: u32) -> Result<u32, String> {
        let unused = 1;
        return Ok(id);
    }
}

/// The entry point.
#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(api::fetch(5).await, Ok(5));
    #[allow(deprecated)]
    let old = api::old_fetch(6);
    assert_eq!(old, Ok(6));
}
