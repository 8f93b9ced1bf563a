//! A budget's recent earnings: the tokens and the successes of the last `window`, kept in a
//! ring of time slots that the retry path rolls forward (the success path never touches it).

use std::time::Duration;

/// Slots per window: deposits expire a tenth of a window at a time.
const SLOTS: usize = 10;
/// Below this a level counts as empty (float rounding of spread deposits).
const EPSILON: f64 = 1e-9;

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Tokens deposited in this slot and not spent yet.
    tokens: f64,
    /// Successes counted in this slot (what lets the `min_per_sec` floor apply).
    successes: f64,
}

const EMPTY: Slot = Slot {
    tokens: 0.0,
    successes: 0.0,
};

/// The earnings of the last window, updated under the budget's lock on the retry path.
#[derive(Debug)]
pub(crate) struct Ledger {
    slots: [Slot; SLOTS],
    /// Absolute number (time / slot width) of the newest slot; `None` before the first look.
    newest: Option<u64>,
    /// When the successes counted so far were last collected (ms of `clock::now_nanos`).
    collected_ms: Option<u64>,
    /// The `min_per_sec` allowance: a small bucket refilled continuously.
    floor: f64,
    /// When `floor` was last refilled (ms); `None`: never used, it starts full.
    floor_ms: Option<u64>,
    /// The start grant has been booked.
    started: bool,
}

/// The shape of the ledger, from the budget's configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub capacity: f64,
    pub ratio: f64,
    pub min_per_sec: f64,
    pub window_ms: u64,
    /// Tokens a budget starts with, dated at its first event (`min_per_sec` × `window`).
    pub start: f64,
}

impl Shape {
    fn slot_ms(&self) -> u64 {
        (self.window_ms / SLOTS as u64).max(1)
    }
}

/// What a look at the ledger granted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Grant {
    /// Paid with this many tokens of the window's deposits.
    Tokens(f64),
    /// Paid by the `min_per_sec` floor, this many of its units.
    Floor(f64),
}

impl Ledger {
    pub(crate) const fn new() -> Ledger {
        Ledger {
            slots: [EMPTY; SLOTS],
            newest: None,
            collected_ms: None,
            floor: 0.0,
            floor_ms: None,
            started: false,
        }
    }

    /// Moves the ring to `now_ms`, dropping the slots older than the window.
    fn roll(&mut self, shape: &Shape, now_ms: u64) {
        let now_slot = now_ms / shape.slot_ms();
        match self.newest {
            None => self.newest = Some(now_slot),
            Some(newest) if now_slot > newest => {
                let steps = (now_slot - newest).min(SLOTS as u64);
                for k in 1..=steps {
                    self.slots[((newest + k) % SLOTS as u64) as usize] = EMPTY;
                }
                self.newest = Some(now_slot);
            }
            Some(_) => {}
        }
    }

    /// Books `successes` that happened since `since_ms` (the last collection, or the first
    /// success) and now. Nobody timed them (the success path reads no clock), so they are
    /// taken as spread evenly over that span: the part of them older than the window has
    /// expired, the rest is spread over the slots it covers.
    pub(crate) fn collect(&mut self, shape: &Shape, now_ms: u64, since_ms: u64, successes: u64) {
        self.roll(shape, now_ms);
        if !self.started {
            // The start grant, dated at the budget's first event (its first success, else
            // this first retry decision): it expires a window later like any deposit.
            self.started = true;
            let at = if since_ms > 0 {
                since_ms.min(now_ms)
            } else {
                now_ms
            };
            let slot = at / shape.slot_ms();
            if let Some(newest) = self.newest {
                if slot + (SLOTS as u64) > newest {
                    let s = &mut self.slots[(slot % SLOTS as u64) as usize];
                    s.tokens += shape.start;
                }
            }
        }
        let since = self.collected_ms.map_or(since_ms, |c| c.max(since_ms));
        self.collected_ms = Some(now_ms);
        if successes == 0 {
            return;
        }
        let n = successes as f64;
        let slot_ms = shape.slot_ms();
        let newest = self.newest.unwrap_or(now_ms / slot_ms);
        let oldest_ms = newest.saturating_sub(SLOTS as u64 - 1) * slot_ms;
        // The part of the span still inside the live slots (and the window).
        let lo = since
            .max(now_ms.saturating_sub(shape.window_ms))
            .max(oldest_ms)
            .min(now_ms);
        let span = now_ms.saturating_sub(since);
        if span == 0 || now_ms == lo {
            let kept = if span == 0 { n } else { 0.0 };
            self.credit_slot(newest, kept, shape.ratio);
        } else {
            let per_ms = n / span as f64;
            for k in newest.saturating_sub(SLOTS as u64 - 1)..=newest {
                let (a, b) = (k * slot_ms, (k + 1) * slot_ms);
                let overlap = b.min(now_ms).saturating_sub(a.max(lo));
                if overlap > 0 {
                    self.credit_slot(k, per_ms * overlap as f64, shape.ratio);
                }
            }
        }
        self.clamp(shape.capacity);
    }

    fn credit_slot(&mut self, slot: u64, successes: f64, ratio: f64) {
        let s = &mut self.slots[(slot % SLOTS as u64) as usize];
        s.successes += successes;
        s.tokens += successes * ratio;
    }

    /// Never more than `capacity` tokens: the oldest go first.
    fn clamp(&mut self, capacity: f64) {
        let mut excess = self.tokens() - capacity;
        for slot in self.oldest_first() {
            if excess <= 0.0 {
                break;
            }
            let s = &mut self.slots[slot];
            let cut = s.tokens.min(excess);
            s.tokens -= cut;
            excess -= cut;
        }
    }

    /// Ring indexes from the oldest slot to the newest.
    fn oldest_first(&self) -> impl Iterator<Item = usize> {
        let newest = self.newest.unwrap_or(0);
        (1..=SLOTS as u64).map(move |k| ((newest + k) % SLOTS as u64) as usize)
    }

    /// Tokens held now.
    pub(crate) fn tokens(&self) -> f64 {
        self.slots.iter().map(|s| s.tokens).sum()
    }

    fn successes(&self) -> f64 {
        self.slots.iter().map(|s| s.successes).sum()
    }

    /// Asks for `cost` tokens, else for the floor: granted only while the window saw a
    /// success, at most `min_per_sec` a second.
    pub(crate) fn take(&mut self, shape: &Shape, now_ms: u64, cost: f64) -> Option<Grant> {
        if self.tokens() + EPSILON >= cost {
            let mut left = cost;
            for slot in self.oldest_first() {
                let s = &mut self.slots[slot];
                let cut = s.tokens.min(left);
                s.tokens -= cut;
                left -= cut;
                if left <= 0.0 {
                    break;
                }
            }
            return Some(Grant::Tokens(cost));
        }
        if shape.min_per_sec <= 0.0 || self.successes() <= EPSILON {
            return None;
        }
        // A retry after a timeout costs the floor twice too (its bucket holds at least that).
        let full = shape.min_per_sec.max(cost);
        let level = match self.floor_ms {
            None => full,
            Some(last) => {
                let dt = now_ms.saturating_sub(last) as f64 / 1000.0;
                (self.floor + dt * shape.min_per_sec).min(full)
            }
        };
        self.floor_ms = Some(now_ms);
        if level + EPSILON >= cost {
            self.floor = (level - cost).max(0.0);
            Some(Grant::Floor(cost))
        } else {
            self.floor = level;
            None
        }
    }

    /// A retry that was not made gives back what it took.
    pub(crate) fn give_back(&mut self, shape: &Shape, grant: Grant) {
        match grant {
            Grant::Tokens(t) => {
                let newest = self.newest.unwrap_or(0);
                self.slots[(newest % SLOTS as u64) as usize].tokens += t;
                self.clamp(shape.capacity);
            }
            Grant::Floor(cost) => {
                self.floor = (self.floor + cost).min(shape.min_per_sec.max(cost));
            }
        }
    }
}

/// A window as whole milliseconds (at least one per slot).
pub(crate) const fn window_ms(window: Duration) -> u64 {
    let ms = window.as_millis();
    if ms < SLOTS as u128 {
        SLOTS as u64
    } else if ms > u64::MAX as u128 {
        u64::MAX
    } else {
        ms as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: Shape = Shape {
        capacity: 100.0,
        ratio: 0.1,
        min_per_sec: 1.0,
        window_ms: 5000,
        start: 0.0,
    };

    #[test]
    fn deposits_expire_after_the_window() {
        let mut l = Ledger::new();
        l.collect(&SHAPE, 10_000, 10_000, 50);
        assert!((l.tokens() - 5.0).abs() < 1e-9);
        l.collect(&SHAPE, 14_000, 0, 0);
        assert!((l.tokens() - 5.0).abs() < 1e-9);
        l.collect(&SHAPE, 15_600, 0, 0);
        assert_eq!(l.tokens(), 0.0);
    }

    #[test]
    fn successes_of_a_long_span_count_for_the_window_only() {
        let mut l = Ledger::new();
        // 1000 successes over 100 s: 50 of them fell in the last 5 s. Slots expire a tenth of
        // a window at a time, so the live ones cover between 4.5 s and 5 s of it.
        l.collect(&SHAPE, 199_999, 99_999, 1000);
        assert!((l.tokens() - 5.0).abs() < 2e-3, "{}", l.tokens());
        let mut l = Ledger::new();
        l.collect(&SHAPE, 199_500, 99_500, 1000);
        assert!((l.tokens() - 4.5).abs() < 1e-6, "{}", l.tokens());
    }

    #[test]
    fn the_floor_needs_a_success_in_the_window() {
        let mut l = Ledger::new();
        l.collect(&SHAPE, 1000, 1000, 0);
        assert_eq!(l.take(&SHAPE, 1000, 1.0), None);
        l.collect(&SHAPE, 2000, 1000, 1);
        assert_eq!(l.take(&SHAPE, 2000, 1.0), Some(Grant::Floor(1.0)));
        assert_eq!(l.take(&SHAPE, 2000, 1.0), None, "one a second");
        l.collect(&SHAPE, 3000, 0, 0);
        assert_eq!(l.take(&SHAPE, 3000, 1.0), Some(Grant::Floor(1.0)));
        l.collect(&SHAPE, 8000, 0, 0);
        assert_eq!(l.take(&SHAPE, 8000, 1.0), None, "the success expired");
    }

    #[test]
    fn the_start_grant_is_dated_at_the_first_event_and_expires() {
        let shape = Shape {
            start: 5.0,
            ..SHAPE
        };
        let mut l = Ledger::new();
        l.collect(&shape, 1000, 0, 0); // a failure before any success
        assert!((l.tokens() - 5.0).abs() < 1e-9);
        l.collect(&shape, 6500, 0, 0);
        assert_eq!(l.tokens(), 0.0);
        // Successes since 1 s, first decision at 20 s: the grant expired long ago.
        let mut l = Ledger::new();
        l.collect(&shape, 20_000, 1000, 190);
        // 10 successes a second; the live slots cover the last 4.5 s: 45 × 0.1.
        assert!((l.tokens() - 4.5).abs() < 1e-6, "{}", l.tokens());
    }

    #[test]
    fn the_oldest_tokens_are_spent_first() {
        let mut l = Ledger::new();
        l.collect(&SHAPE, 1000, 1000, 10); // 1 token at 1 s
        l.collect(&SHAPE, 3000, 3000, 10); // 1 token at 3 s
        assert_eq!(l.take(&SHAPE, 3000, 1.0), Some(Grant::Tokens(1.0)));
        l.collect(&SHAPE, 6500, 0, 0); // the 1 s slot has expired, the 3 s one has not
        assert!((l.tokens() - 1.0).abs() < 1e-9, "{}", l.tokens());
    }

    proptest::proptest! {
        /// Whatever the traffic: the ledger holds 0 to `capacity` tokens, the tokens it grants
        /// never exceed the start grant plus `ratio` × the successes booked, and the floor
        /// grants at most `min_per_sec` a second (after a first `min_per_sec`).
        #[test]
        fn tokens_come_only_from_successes_and_the_start(
            ops in proptest::collection::vec((0u64..3000, 0u64..200, 1u32..3), 1..200)
        ) {
            let shape = Shape { capacity: 20.0, ratio: 0.125, min_per_sec: 2.0, window_ms: 5000, start: 5.0 };
            let mut l = Ledger::new();
            let (mut now, mut booked, mut tokens_out, mut floors) = (1_000u64, 0u64, 0.0f64, 0u64);
            for (dt, successes, cost) in ops {
                let since = now;
                now += dt;
                l.collect(&shape, now, since.min(1_000), successes);
                booked += successes;
                match l.take(&shape, now, f64::from(cost)) {
                    Some(Grant::Tokens(t)) => tokens_out += t,
                    Some(Grant::Floor(_)) => floors += 1,
                    None => {}
                }
                let held = l.tokens();
                proptest::prop_assert!(held >= -1e-9 && held <= shape.capacity + 1e-9, "{held}");
                proptest::prop_assert!(
                    tokens_out <= shape.start + shape.ratio * booked as f64 + 1e-6,
                    "{tokens_out} granted from {booked} successes"
                );
                let secs = (now - 1_000) as f64 / 1000.0;
                proptest::prop_assert!(floors as f64 <= shape.min_per_sec * (1.0 + secs) + 1e-9);
            }
        }
    }
}
