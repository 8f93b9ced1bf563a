//! The rolling latency record of one hedged call site: a lock-free log-linear histogram in two
//! generations, from which `hedge = "p95"` reads the delay after which a hedge starts.

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// Sub-buckets per power of two: the percentile is known to within 1/8 (12.5%) of its value.
const SUB: usize = 8;
/// Latencies below 16 µs have a bucket each; above, 8 per doubling, up to 2^40 µs (12 days).
const LINEAR: usize = 16;
const BUCKETS: usize = LINEAR + (40 - 4) * SUB;
/// Samples per generation: a percentile covers the last 512 to 1,024 attempts, so it follows a
/// shifting distribution within about a thousand attempts.
const GENERATION: u64 = 512;
/// No percentile, and so no hedge, before this many attempts were measured.
pub const MIN_SAMPLES: u64 = 100;
/// The cached percentile is recomputed every this many samples (a read is one atomic load).
const REFRESH: u64 = 32;

/// Attempt latencies of one call site, in microseconds.
#[derive(Debug)]
pub struct LatencyRecord {
    generations: [[AtomicU32; BUCKETS]; 2],
    /// The generation new samples go to (0 or 1).
    current: AtomicUsize,
    /// Samples recorded, ever.
    samples: AtomicU64,
    /// The percentile as of the last refresh, in nanoseconds (0: not enough samples yet).
    cached: AtomicU64,
    /// Which percentile, in tenths of a percent (the live configuration may change it).
    permille: AtomicU16,
}

impl LatencyRecord {
    /// An empty record of the `permille`th percentile (950: p95).
    pub fn new(permille: u16) -> LatencyRecord {
        LatencyRecord {
            generations: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU32::new(0))),
            current: AtomicUsize::new(0),
            samples: AtomicU64::new(0),
            cached: AtomicU64::new(0),
            permille: AtomicU16::new(permille),
        }
    }

    /// Follows `permille` from now on (a reload changed `hedge = "pNN"`): the cached value is
    /// recomputed at once from the samples held, so the next call hedges at the new one.
    pub fn retarget(&self, permille: u16) {
        if self.permille.swap(permille, Relaxed) != permille
            && self.samples.load(Relaxed) >= MIN_SAMPLES
        {
            self.cached.store(self.compute().max(1), Relaxed);
        }
    }

    /// The percentile it follows, in tenths of a percent.
    #[inline]
    pub fn permille(&self) -> u16 {
        self.permille.load(Relaxed)
    }

    /// The delay after which a hedge starts: the recorded percentile, or `None` before
    /// [`MIN_SAMPLES`] attempts were measured.
    #[inline]
    pub fn percentile(&self) -> Option<Duration> {
        match self.cached.load(Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// Records one attempt's latency (lock-free, no allocation).
    pub fn record(&self, latency: Duration) {
        let micros = latency.as_micros().min(u64::MAX as u128) as u64;
        let current = self.current.load(Relaxed) & 1;
        self.generations[current][bucket(micros)].fetch_add(1, Relaxed);
        let n = self.samples.fetch_add(1, Relaxed) + 1;
        if n % GENERATION == 0 {
            // The older generation is emptied and takes the new samples: the record now spans
            // the last `GENERATION` samples and those to come.
            let older = current ^ 1;
            for count in &self.generations[older] {
                count.store(0, Relaxed);
            }
            self.current.store(older, Relaxed);
        }
        if n >= MIN_SAMPLES && n % REFRESH == 0 {
            self.cached.store(self.compute().max(1), Relaxed);
        }
    }

    /// Walks both generations to the percentile's rank: the upper edge of its bucket, in ns.
    fn compute(&self) -> u64 {
        let count = |i: usize| {
            self.generations[0][i].load(Relaxed) as u64
                + self.generations[1][i].load(Relaxed) as u64
        };
        let total: u64 = (0..BUCKETS).map(count).sum();
        let rank = (total * self.permille() as u64).div_ceil(1000).max(1);
        let mut seen = 0;
        for i in 0..BUCKETS {
            seen += count(i);
            if seen >= rank {
                return upper_edge(i).saturating_mul(1_000);
            }
        }
        upper_edge(BUCKETS - 1).saturating_mul(1_000)
    }
}

/// The bucket of a latency in µs.
fn bucket(micros: u64) -> usize {
    if micros < LINEAR as u64 {
        return micros as usize;
    }
    let exp = 63 - micros.leading_zeros() as usize; // ≥ 4
    let sub = ((micros >> (exp - 3)) & (SUB as u64 - 1)) as usize;
    (LINEAR + (exp - 4) * SUB + sub).min(BUCKETS - 1)
}

/// The largest latency (µs) in bucket `i`.
fn upper_edge(i: usize) -> u64 {
    if i < LINEAR {
        return i as u64;
    }
    let exp = (i - LINEAR) / SUB + 4;
    let sub = ((i - LINEAR) % SUB) as u64;
    ((SUB as u64 + sub + 1) << (exp - 3)) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_within_an_eighth() {
        let mut last = 0;
        for micros in 0..100_000u64 {
            let b = bucket(micros);
            assert!(b == last || b == last + 1, "bucket of {micros} jumped");
            assert!(upper_edge(b) >= micros, "{micros} above its bucket's edge");
            assert!(upper_edge(b) as f64 <= micros as f64 * 1.125 + 1.0);
            last = b;
        }
    }

    #[test]
    fn a_retarget_moves_the_percentile_at_once() {
        let record = LatencyRecord::new(500);
        for i in 0..320u64 {
            let ms = if i % 10 == 0 { 100 } else { 10 }; // 10% of attempts are slow
            record.record(Duration::from_millis(ms));
        }
        let p50 = record.percentile().unwrap();
        assert!(p50 < Duration::from_millis(12), "{p50:?}");
        record.retarget(950);
        let p95 = record.percentile().unwrap();
        assert!(p95 >= Duration::from_millis(100), "{p95:?}");
        assert_eq!(record.permille(), 950);
    }

    #[test]
    fn no_percentile_before_enough_samples() {
        let record = LatencyRecord::new(950);
        for _ in 0..MIN_SAMPLES - 1 {
            record.record(Duration::from_millis(10));
        }
        assert_eq!(record.percentile(), None);
        for _ in 0..REFRESH {
            record.record(Duration::from_millis(10));
        }
        let p = record.percentile().unwrap();
        assert!(p >= Duration::from_millis(10) && p <= Duration::from_micros(11_250));
    }

    #[test]
    fn p95_of_a_tail() {
        let record = LatencyRecord::new(950);
        for i in 0..1_000u64 {
            // 90% at 10 ms, 10% at 500 ms: p95 is in the tail; p50 would not be.
            let ms = if i % 10 == 0 { 500 } else { 10 };
            record.record(Duration::from_millis(ms));
        }
        let p = record.percentile().unwrap();
        assert!(p >= Duration::from_millis(500), "{p:?}");
        let median = LatencyRecord::new(500);
        for i in 0..1_000u64 {
            median.record(Duration::from_millis(if i % 10 == 0 { 500 } else { 10 }));
        }
        assert!(median.percentile().unwrap() < Duration::from_millis(12));
    }

    #[test]
    fn follows_a_shifting_distribution() {
        let record = LatencyRecord::new(950);
        for _ in 0..2_000 {
            record.record(Duration::from_millis(10));
        }
        assert!(record.percentile().unwrap() < Duration::from_millis(12));
        for _ in 0..2 * GENERATION {
            record.record(Duration::from_millis(100));
        }
        let p = record.percentile().unwrap();
        assert!(
            p >= Duration::from_millis(100) && p < Duration::from_millis(113),
            "{p:?}"
        );
    }
}
