#![allow(missing_docs)]
use std::time::Duration;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Window {
    Time(Duration),
    Calls(u32),
}
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerConfig {
    pub consecutive_failures: Option<u32>,
    pub failure_rate: f64,
    pub window: Window,
    pub min_calls: u32,
    pub open_for: Duration,
    pub open_max: Duration,
    pub half_open_probes: u32,
}
impl BreakerConfig {
    pub const DEFAULT: BreakerConfig = BreakerConfig {
        consecutive_failures: None,
        failure_rate: 0.5,
        window: Window::Time(Duration::from_secs(10)),
        min_calls: 20,
        open_for: Duration::from_secs(5),
        open_max: Duration::from_secs(300),
        half_open_probes: 1,
    };
}
#[derive(Debug)]
pub struct Breaker {
    name: &'static str,
    config: BreakerConfig,
}
impl Breaker {
    pub const fn new(name: &'static str, config: BreakerConfig) -> Breaker {
        Breaker { name, config }
    }
    pub fn name(&self) -> &'static str {
        self.name
    }
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }
    pub fn admit(&'static self) -> Result<Permit, Duration> {
        Ok(Permit { b: self })
    }
    pub fn is_rejecting(&self) -> bool {
        false
    }
    pub fn state(&self) -> BreakerState {
        BreakerState::Closed
    }
    pub fn retry_in(&self) -> Option<Duration> {
        None
    }
    pub fn counts(&self) -> BreakerCounts {
        BreakerCounts::default()
    }
}
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BreakerCounts {
    pub successes: u64,
    pub failures: u64,
    pub rejections: u64,
    pub opened: u64,
    pub consecutive_failures: u32,
}
#[derive(Debug)]
pub struct Permit {
    b: &'static Breaker,
}
impl Permit {
    pub fn success(self) {
        let _ = self.b;
    }
    pub fn failure(self) {}
}
