//! The success path of an annotated fn allocates nothing (after the call site's first use),
//! proven with a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use stormguard::retry;

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Debug)]
struct E;
impl std::fmt::Display for E {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("e")
    }
}

#[retry]
async fn defaults(x: u64) -> Result<u64, E> {
    Ok(x + 1)
}

#[retry(
    attempts = 5,
    backoff = "linear",
    jitter = "decorrelated",
    budget = "alloc-budget",
    deadline = "5s"
)]
async fn named_budget_and_deadline(x: u64) -> Result<u64, std::io::Error> {
    Ok(x * 2)
}

stormguard::breakers! {
    alloc_time_window { failure_rate: 0.5, window: "10s" }
    alloc_count_window { failure_rate: 0.5, window: 100 }
}

#[retry(breaker = "alloc_time_window")]
async fn breaker_time_window(x: u64) -> Result<u64, std::io::Error> {
    Ok(x)
}

#[retry(breaker = "alloc_count_window", budget = "alloc-budget")]
async fn breaker_count_window_and_budget(x: u64) -> Result<u64, std::io::Error> {
    Ok(x)
}

/// `timeout` arms no timer when the attempt completes on its first poll.
#[retry(timeout = "1s")]
async fn with_timeout(x: u64) -> Result<u64, std::io::Error> {
    Ok(x)
}

#[retry(attempts = 2)]
fn blocking(x: u64) -> Result<u64, E> {
    Ok(x)
}

/// Polls a future that must complete at once (no runtime needed for the success path).
fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the success path must not wait"),
    }
}

fn allocations_during(mut f: impl FnMut()) -> usize {
    f(); // first use: registers the call site
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..1000 {
        f();
    }
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

#[test]
fn the_success_path_allocates_nothing() {
    // One runtime context for the deadline's clock read (tokio's clock outside a runtime
    // reads the std clock, which does not allocate either).
    assert_eq!(
        allocations_during(|| assert_eq!(now(defaults(1)).unwrap(), 2)),
        0
    );
    assert_eq!(
        allocations_during(|| assert_eq!(now(named_budget_and_deadline(2)).unwrap(), 4)),
        0
    );
    assert_eq!(
        allocations_during(|| assert_eq!(blocking(3).unwrap(), 3)),
        0
    );
}
