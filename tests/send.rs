//! The future of an annotated fn is `Send` whenever the plain fn's is: nothing of the fn's
//! `Ok` or error type lives across an `.await` (regression: `Box<dyn Error>` and `Rc` results
//! made the future `!Send`). With a `breaker`, the last error is kept across the sleep, so
//! there `E: Send` is needed, as for any value held across an await. With a `deadline` (and
//! no breaker) the last error is kept only when `E` is `Send` (chosen at the call site), so
//! such a future stays `Send` for a `Box<dyn Error>` too.

use std::rc::Rc;
use stormguard::retry;

fn assert_send<T: Send>(_: &T) {}

#[retry(attempts = 2, base = "1ms")]
async fn boxed_error() -> Result<(), Box<dyn std::error::Error>> {
    tokio::task::yield_now().await;
    Err("not Send, not Sync".into())
}

#[retry(attempts = 2, base = "1ms")]
async fn rc_output() -> Result<Rc<u32>, std::io::Error> {
    tokio::task::yield_now().await;
    Ok(Rc::new(1))
}

#[retry(attempts = 2, base = "1ms", timeout = "1s", deadline = "5s")]
async fn guarded_boxed_error() -> Result<(), Box<dyn std::error::Error>> {
    tokio::task::yield_now().await;
    Err("boom".into())
}

#[tokio::test(start_paused = true)]
async fn annotated_futures_stay_send_and_spawnable() {
    let a = boxed_error();
    assert_send(&a);
    let b = rc_output();
    assert_send(&b);
    let c = guarded_boxed_error();
    assert_send(&c);
    // Spawnable: the results are consumed inside the task.
    let a = tokio::spawn(async { boxed_error().await.is_err() });
    let b = tokio::spawn(async { *rc_output().await.unwrap() });
    let c = tokio::spawn(async { guarded_boxed_error().await.is_err() });
    assert!(a.await.unwrap());
    assert_eq!(b.await.unwrap(), 1);
    assert!(c.await.unwrap());
}
