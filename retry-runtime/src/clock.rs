//! The one clock every time-based decision reads: tokio's (so `tokio::time::pause()` makes
//! tests exact), as nanoseconds since a process-wide origin that fits in an atomic.

use std::sync::OnceLock;
use std::time::Duration;
use tokio::time::Instant;

static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// The process-wide origin of [`now_nanos`]: an hour before the first time anything asked
/// (or as far back as the monotonic clock goes), so that a paused tokio clock started a
/// little earlier, in another runtime of the same process, still reads after it.
pub fn origin() -> Instant {
    *ORIGIN.get_or_init(|| {
        let now = std::time::Instant::now();
        let back = [3600, 60, 1]
            .into_iter()
            .find_map(|secs| now.checked_sub(Duration::from_secs(secs)))
            .unwrap_or(now);
        Instant::from_std(back)
    })
}

/// Nanoseconds from [`origin`] to tokio's `Instant::now()`; never below 1, so that 0 can mean
/// "never" in an atomic. Saturates instead of going backwards.
pub fn now_nanos() -> u64 {
    let origin = origin();
    let since = Instant::now().saturating_duration_since(origin);
    (since.as_nanos().min(u64::MAX as u128) as u64).max(1)
}

/// The instant [`now_nanos`] would read as `nanos`, for a timer set on this clock.
pub fn instant(nanos: u64) -> Instant {
    origin() + Duration::from_nanos(nanos)
}

/// A duration as whole nanoseconds, saturating at `u64::MAX` (about 584 years).
pub fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}
