//! The running attempt: which attempt of which call the current task is in, readable by the
//! body (`stormguard::attempt()`) and by nested annotated calls (layered-retry control).

use std::cell::Cell;
use std::ptr;

/// What a running attempt tells the code inside it. Lives inside the pinned attempt future
/// (or on the stack, for blocking fns); the thread-local below points at it only while the
/// attempt is being polled or run.
#[derive(Debug, Default)]
pub struct AttemptScope {
    pub(crate) number: u32,
    retried_below: Cell<bool>,
}

thread_local! {
    /// The attempt being polled on this thread, and the tokio task polling it (`None` outside
    /// a task: a blocking fn, or a `block_on` future). A nested executor (`block_on` inside a
    /// blocking attempt, a `LocalSet`) polls other tasks while this is set: they must not read
    /// it as theirs.
    static CURRENT: Cell<(*const AttemptScope, Option<tokio::task::Id>)> =
        const { Cell::new((ptr::null(), None)) };
}

impl AttemptScope {
    /// A scope for attempt `number` (1-based).
    pub const fn new(number: u32) -> Self {
        AttemptScope {
            number,
            retried_below: Cell::new(false),
        }
    }

    /// True when a nested annotated call inside this attempt already retried and gave up:
    /// the failure was retried at the layer closest to it, so this layer must not retry again.
    pub fn retried_below(&self) -> bool {
        self.retried_below.get()
    }

    /// Becomes the scope of the next attempt: its number, and no nested retry seen yet.
    #[inline]
    pub(crate) fn next(&mut self) {
        self.number += 1;
        *self.retried_below.get_mut() = false;
    }

    /// Whether a nested call retried below this attempt, clearing it.
    #[inline]
    pub(crate) fn take_retried_below(&self) -> bool {
        self.retried_below.replace(false)
    }

    /// Makes `self` the current attempt of this thread until the guard drops, which restores
    /// the previous one (also on a panic). The guard borrows `self`, so the scope the
    /// thread-local points at stays alive and in place meanwhile. Not generic, so that polling
    /// a body in scope adds no code per annotated fn.
    #[inline]
    pub(crate) fn entered(&self) -> Entered<'_> {
        let task = tokio::task::try_id();
        Entered {
            previous: CURRENT.with(|c| c.replace((self as *const _, task))),
            _scope: std::marker::PhantomData,
        }
    }
}

/// The scope [`AttemptScope::entered`] replaced, put back on drop.
#[must_use = "the attempt is in scope until this drops"]
pub(crate) struct Entered<'a> {
    previous: (*const AttemptScope, Option<tokio::task::Id>),
    _scope: std::marker::PhantomData<&'a AttemptScope>,
}

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// Which attempt of the innermost annotated call is running in this task (1-based);
/// 0 outside any `#[retry]` fn.
///
/// Use it for logs, or to derive an idempotency key that the downstream can use to
/// recognise a retry:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(retry_runtime::attempt(), 0); // not inside an annotated fn
/// # }
/// ```
pub fn attempt() -> u32 {
    with_current(|scope| scope.map_or(0, |s| s.number))
}

/// Tells the attempt enclosing the current call (if any) that a failure was already retried
/// below it.
pub(crate) fn mark_retried_below() {
    with_current(|scope| {
        if let Some(s) = scope {
            s.retried_below.set(true);
        }
    })
}

/// Runs `f` with the attempt of this thread's current task, if one is being polled.
fn with_current<R>(f: impl FnOnce(Option<&AttemptScope>) -> R) -> R {
    let (p, task) = CURRENT.with(Cell::get);
    if p.is_null() || task != tokio::task::try_id() {
        // Another task of a nested executor, polled inside an attempt: not its scope.
        return f(None);
    }
    // SAFETY: CURRENT is non-null only while an `Entered` guard lives, which borrows the scope
    // it points to: alive and not moved.
    f(unsafe { p.as_ref() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_scopes_restore_the_outer_one() {
        let outer = AttemptScope::new(2);
        {
            let _outer = outer.entered();
            assert_eq!(attempt(), 2);
            let inner = AttemptScope::new(1);
            {
                let _inner = inner.entered();
                assert_eq!(attempt(), 1);
                mark_retried_below();
            }
            assert!(inner.retried_below());
            assert!(!outer.retried_below());
            assert_eq!(attempt(), 2);
        }
        assert_eq!(attempt(), 0);
    }
}
