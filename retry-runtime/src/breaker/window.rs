//! A closed breaker's failure window: the calls and failures of the last `window` (a time or
//! a count), in tagged buckets that never need a reset, with successes counted in batches.

use super::state::closed_word;
use super::Breaker;
use crate::loom::{
    clock_now, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

// A window bucket word: tag (32 bits: generation low 8 | epoch low 24) | count (32 bits).
// The tag makes stale buckets (an older epoch, or an earlier closed period) read as empty, so
// nothing is ever reset eagerly: closing the breaker starts a fresh window for free.
pub(super) const BUCKETS: usize = 10;
pub(super) const TAG_SHIFT: u32 = 32;
pub(super) const COUNT_MASK: u64 = (1 << TAG_SHIFT) - 1;

// A time window counts successes into its buckets in batches sized to take about this share
// of a bucket, of at most `MAX_BATCH` successes (see `Breaker::count_in_batch`).
pub(super) const BATCHES_PER_BUCKET: u64 = 16;
pub(super) const MAX_BATCH: u64 = 64;
/// Claims a batch whatever its size (`batch_due` is `u64::MAX` only while claimed).
pub(super) const ANY_CALLER: u64 = u64::MAX - 1;

// A count window's start: generation (low 16 bits) | sequence number (low 48 bits).
pub(super) const BASE_SHIFT: u32 = 48;
pub(super) const BASE_GEN_MASK: u64 = 0xFFFF;
pub(super) const BASE_SEQ_MASK: u64 = (1 << BASE_SHIFT) - 1;

pub(super) const fn bucket_tag(generation: u32, epoch: u64) -> u64 {
    ((generation as u64 & 0xFF) << 24) | (epoch & 0xFF_FFFF)
}

/// Adds `n` to `word` if it carries `tag`, else restarts it at `n` under `tag`.
pub(super) fn bump(word: &AtomicU64, tag: u64, n: u64) {
    let mut current = word.load(Relaxed);
    loop {
        if current >> TAG_SHIFT == tag {
            // If another thread re-tags the bucket in between, the calls land in the newer
            // epoch: off by one bucket at a bucket boundary, which the window tolerates.
            word.fetch_add(n, Relaxed);
            return;
        }
        match word.compare_exchange(current, (tag << TAG_SHIFT) | n, Relaxed, Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

pub(super) struct Bucket {
    pub(super) calls: AtomicU64,
    pub(super) failures: AtomicU64,
}

/// The failure window's counters (see the field docs), beside the breaker's state word.
pub(super) struct FailureWindow {
    /// `Window::Calls`: the calls recorded in the window so far, its clock and the sequence
    /// number of each call (a bucket holds the calls numbered `e * span ..= e * span + span - 1`).
    pub(super) calls_seen: AtomicU64,
    /// `Window::Calls`: the failures among `calls_seen` (for `BreakerCounts`).
    pub(super) failures: AtomicU64,
    /// `Window::Calls`: where the current closed period's window starts, as
    /// generation (low 16 bits) << 48 | `calls_seen` then (low 48 bits).
    pub(super) base: AtomicU64,
    /// `Window::Time`: successes of closed periods so far, counted into the buckets in batches.
    pub(super) successes: AtomicU64,
    /// `Window::Time`: the `successes` count due for the next batch; `u64::MAX` while
    /// one thread is counting a batch in.
    pub(super) batch_due: AtomicU64,
    /// `Window::Time`: the `successes` count and the clock when the last batch was
    /// counted in.
    pub(super) batched: AtomicU64,
    pub(super) batched_at: AtomicU64,
    pub(super) buckets: [Bucket; BUCKETS],
}

macro_rules! new_window {
    ($buckets:expr) => {
        FailureWindow {
            calls_seen: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            base: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            batch_due: AtomicU64::new(1),
            batched: AtomicU64::new(0),
            batched_at: AtomicU64::new(0),
            buckets: $buckets,
        }
    };
}

impl FailureWindow {
    /// An empty window.
    #[cfg(not(loom))]
    pub(super) const fn new() -> FailureWindow {
        new_window!(
            [const {
                Bucket {
                    calls: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                }
            }; BUCKETS]
        )
    }

    /// An empty window (not `const` under loom, whose atomics are not).
    #[cfg(loom)]
    pub(super) fn new() -> FailureWindow {
        new_window!(std::array::from_fn(|_| Bucket {
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }))
    }
}

impl Breaker {
    /// Counts the batch of successes that ends with the one numbered `n` (successes of a
    /// time window are numbered by `window_successes`) into the window: the one thread that
    /// claims the batch reads the clock (see [`Breaker::close_batch`]).
    #[cold]
    #[inline(never)]
    pub(super) fn count_in_batch(&self, generation: u32, n: u64) {
        if let Some(due) = self.claim_batch(n) {
            self.close_batch(generation, n, due, clock_now());
        } // else another thread is counting this batch in
    }

    /// Before a time window is judged: counts the successes since the last batch in, unless
    /// another thread is doing so (then [`Breaker::window_counts`] estimates them).
    pub(super) fn close_batch_for_failure(&self, generation: u32, now: u64) {
        if let Some(due) = self.claim_batch(ANY_CALLER) {
            let n = self.window.successes.load(Relaxed);
            self.close_batch(generation, n, due, now);
        }
    }

    /// Claims the right to close the batch in progress, for the success numbered `n` (or any
    /// caller, with `ANY_CALLER`); returns the count it was due at.
    pub(super) fn claim_batch(&self, n: u64) -> Option<u64> {
        let due = self.window.batch_due.load(Relaxed);
        if n < due {
            return None; // not due, or `u64::MAX`: claimed by another thread
        }
        self.window
            .batch_due
            .compare_exchange(due, u64::MAX, Acquire, Relaxed)
            .ok()
    }

    /// Run by the thread holding the claim (the batch was due at `due`): counts the successes
    /// after the last batch, up to the one numbered `n`, into the window of the closed period
    /// `generation` as of `now`, then sizes the next batch and releases the claim.
    ///
    /// A batch's successes are spread evenly over the time it took. Sized for the rate, it
    /// takes a sixteenth of a bucket, so nearly all land in the bucket of now; one that took
    /// longer (the traffic fell since it was sized) is spread over the buckets it spanned,
    /// and its part older than the window is dropped. The next batch is sized to take
    /// `1 / BATCHES_PER_BUCKET` of a bucket at the rate just measured, at most twice the last
    /// and `MAX_BATCH`: one success at a time under light traffic, one clock read per
    /// `MAX_BATCH` successes under heavy traffic.
    pub(super) fn close_batch(&self, generation: u32, n: u64, due: u64, now: u64) {
        let since = self.window.batched_at.load(Relaxed);
        let last = self.window.batched.load(Relaxed);
        let batch = n.saturating_sub(last);
        if batch != 0 && self.state.0.load(Relaxed) == closed_word(generation) {
            self.spread(generation, batch, since, now);
        }
        // After the buckets: a failure judged meanwhile on another thread may count this batch
        // twice (in the buckets and as in progress), never not at all.
        self.window.batched.store(n, Relaxed);
        self.window.batched_at.store(now, Relaxed);
        let sized = due.saturating_sub(last).max(batch);
        let most = sized.saturating_mul(2).min(MAX_BATCH);
        let next = match now.checked_sub(since) {
            _ if since == 0 => 1,            // nothing to measure against
            Some(0) => sized.min(MAX_BATCH), // no time passed: a paused clock
            None => 1,                       // another runtime's clock, behind this one
            Some(elapsed) => {
                let target = (self.geometry.span / BATCHES_PER_BUCKET).max(1);
                let at_rate = batch as u128 * target as u128 / elapsed as u128;
                (at_rate.min(most as u128) as u64).max(1)
            }
        };
        self.window.batch_due.store(n + next, Release);
    }

    /// Counts `batch` successes made evenly between `since` and `now` into the buckets of the
    /// closed period `generation` that are still in the window (all into the bucket of `now`
    /// if `since` is unknown or not before it).
    pub(super) fn spread(&self, generation: u32, batch: u64, since: u64, now: u64) {
        let g = &self.geometry;
        let epoch = now / g.span;
        let bump_bucket =
            |e: u64, count: u64| bump(&self.bucket(e).calls, bucket_tag(generation, e), count);
        if since == 0 || since >= now || since / g.span >= epoch {
            bump_bucket(epoch, batch);
            return;
        }
        let elapsed = (now - since) as u128;
        // The part of the batch made by time `t`, rounded down: the shares of consecutive
        // buckets add up to the batch.
        let made_by = |t: u64| (batch as u128 * (t - since) as u128 / elapsed) as u64;
        let oldest = (since / g.span).max((epoch + 1).saturating_sub(g.depth));
        for e in oldest..=epoch {
            let from = (e * g.span).max(since);
            let to = ((e + 1).saturating_mul(g.span)).min(now);
            let share = made_by(to) - made_by(from);
            if share != 0 {
                bump_bucket(e, share);
            }
        }
    }

    /// `(calls, failures)` in the current closed period's window now (loom models only).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn window_now(&self) -> (u64, u64) {
        use super::state::generation_of;
        let generation = generation_of(self.state.0.load(Acquire));
        let at = if self.geometry.by_calls {
            match self.window.calls_seen.load(Relaxed) {
                0 => return (0, 0),
                seen => seen - 1,
            }
        } else {
            clock_now()
        };
        self.window_counts(generation, at)
    }

    /// Counts one failure of the closed period `generation` in the window; returns where it
    /// was recorded: its sequence number in a count window, its clock in a time window.
    pub(super) fn record_failure(&self, generation: u32, now: u64) -> u64 {
        let g = &self.geometry;
        let (at, counts_calls) = if g.by_calls {
            self.window.failures.fetch_add(1, Relaxed);
            (self.window.calls_seen.fetch_add(1, Relaxed), false)
        } else {
            (now, true)
        };
        let epoch = at / g.span;
        let bucket = self.bucket(epoch);
        let tag = bucket_tag(generation, epoch);
        if counts_calls {
            bump(&bucket.calls, tag, 1);
        }
        bump(&bucket.failures, tag, 1);
        at
    }

    /// The bucket that counts the calls of `epoch` (reused every `BUCKETS` epochs).
    pub(super) fn bucket(&self, epoch: u64) -> &Bucket {
        &self.window.buckets[(epoch % BUCKETS as u64) as usize]
    }

    /// `(calls, failures)` in the window of the closed period `generation` that ends with the
    /// failure recorded at `at` (see [`Breaker::record_failure`]).
    pub(super) fn window_counts(&self, generation: u32, at: u64) -> (u64, u64) {
        let g = &self.geometry;
        let epoch = at / g.span;
        let oldest = (epoch + 1).saturating_sub(g.depth);
        let (mut calls, mut failures) = (0, 0);
        for e in oldest..=epoch {
            let bucket = self.bucket(e);
            let tag = bucket_tag(generation, e);
            let f = bucket.failures.load(Relaxed);
            if f >> TAG_SHIFT == tag {
                failures += f & COUNT_MASK;
            }
            let c = bucket.calls.load(Relaxed);
            if !g.by_calls && c >> TAG_SHIFT == tag {
                calls += c & COUNT_MASK;
            }
        }
        if g.by_calls {
            // Every call numbered from the window's first bucket (or from the period's first
            // call, if later) up to this one.
            let start = (oldest * g.span).max(self.window_start(generation, at));
            calls = at + 1 - start;
        } else {
            calls += self.batch_so_far(oldest * g.span, at);
        }
        (calls, failures)
    }

    /// The successes of the time-window batch in progress (not in the buckets yet) that fall
    /// after `start` (the window's first bucket), spread as [`Breaker::close_batch`] spreads
    /// them: normally none, as the failure being judged closed the batch, unless another
    /// thread held its claim.
    pub(super) fn batch_so_far(&self, start: u64, now: u64) -> u64 {
        let pending =
            (self.window.successes.load(Relaxed)).saturating_sub(self.window.batched.load(Relaxed));
        let since = self.window.batched_at.load(Relaxed);
        if since == 0 || since >= start || now <= since {
            return pending;
        }
        (pending as u128 * (now - start) as u128 / (now - since) as u128) as u64
    }

    /// The sequence number of the first call of the closed period `generation` (count
    /// window), or `seq` itself while the close that began it is still being published.
    pub(super) fn window_start(&self, generation: u32, seq: u64) -> u64 {
        let base = self.window.base.load(Relaxed);
        if base >> BASE_SHIFT != generation as u64 & BASE_GEN_MASK {
            return seq;
        }
        // The base is stored as its low 48 bits; it is at most 2^47 calls back.
        let back = seq.wrapping_sub(base) & BASE_SEQ_MASK;
        if back <= seq && back < 1 << (BASE_SHIFT - 1) {
            seq - back
        } else {
            seq
        }
    }

    /// Starts the window of the closed period `generation` at the next call: a count window
    /// from the next sequence number, a time window with no batch of successes in progress
    /// (a success from the closed period before is not carried over).
    pub(super) fn start_window(&self, generation: u32) {
        if self.geometry.by_calls {
            let seq = self.window.calls_seen.load(Relaxed) & BASE_SEQ_MASK;
            let packed = ((generation as u64 & BASE_GEN_MASK) << BASE_SHIFT) | seq;
            self.window.base.store(packed, Relaxed);
        } else if self.claim_batch(ANY_CALLER).is_some() {
            let n = self.window.successes.load(Relaxed);
            self.window.batched.store(n, Relaxed);
            self.window.batched_at.store(0, Relaxed);
            self.window.batch_due.store(n + 1, Release);
        }
    }
}
