//! Synchronisation that parks coroutines: [`Mutex`], [`RwLock`], [`Condvar`], [`WaitGroup`],
//! [`Semaphore`], [`Once`], [`Barrier`].
//!
//! These are std's (and Go's) primitives, but a coroutine that has to wait parks — its
//! worker runs other coroutines meanwhile — instead of blocking the worker thread, which
//! would stall every coroutine pinned to it. On a plain OS thread they block the thread, so
//! coroutines and threads can share one lock.
//!
//! ```
//! use coronet::sync::{Mutex, WaitGroup};
//! use std::sync::Arc;
//!
//! let total = Arc::new(Mutex::new(0u64));
//! let wg = Arc::new(WaitGroup::new());
//! for i in 1..=100 {
//!     wg.add(1);
//!     let (total, wg) = (total.clone(), wg.clone());
//!     coronet::go(move || {
//!         *total.lock() += i;
//!         wg.done();
//!     });
//! }
//! wg.wait(); // this plain thread blocks; the coroutines park
//! assert_eq!(*total.lock(), 5050);
//! ```
//!
//! # The contract
//!
//! - Every wait goes through the runtime's one park/unpark protocol (`runtime/park.rs`),
//!   with `Wait::Sync` as the reason `dump()` shows.
//! - All seven types queue waiters in one structure, `waitq.rs`: a FIFO of waiter records,
//!   each with a *grant* word, behind a short std mutex that is never held across a park or
//!   while user code runs. A waker grants under that lock and unparks after it.
//! - Fast paths are a single atomic operation and touch no queue: an uncontended `Mutex`
//!   lock is one CAS and an unlock one `fetch_sub`, as in Go.
//! - Nobody waits forever while others barge: the `Mutex` hands the lock to a waiter that
//!   has waited over 1 ms (Go's starvation mode); `RwLock` and `Semaphore` serve waiters in
//!   FIFO order as soon as anyone waits, and readers queue behind a waiting writer.
//! - No poisoning for the locks, as in Go: a panic while a guard is held just releases the
//!   lock, and the next holder sees whatever the panicking one left; `lock` returns the guard
//!   itself, not std's `LockResult`. For the same reason `Mutex` and `RwLock` are not
//!   `UnwindSafe`/`RefUnwindSafe` (a `catch_unwind` over one needs `AssertUnwindSafe`).
//!   `Once` does poison, as std's does: that `call_once` returned must mean the
//!   initialisation finished.
//! - Guards are `!Send`, as std's. A guard held across a park stays on its thread anyway,
//!   since a started coroutine never changes threads.

mod barrier;
mod condvar;
mod mutex;
mod once;
mod rwlock;
mod semaphore;
mod waitgroup;
pub(crate) mod waitq;

pub use self::barrier::{Barrier, BarrierWaitResult};
pub use self::condvar::{Condvar, WaitTimeoutResult};
pub use self::mutex::{Mutex, MutexGuard};
pub use self::once::{Once, OnceState};
pub use self::rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use self::semaphore::{Semaphore, SemaphorePermit};
pub use self::waitgroup::WaitGroup;

/// The thread-safety promises, checked at compile time (std's bounds).
#[allow(dead_code)]
fn _assert_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn sync<T: Sync>() {}
    send_sync::<Mutex<std::cell::Cell<u8>>>(); // Send data suffices for a Mutex
    send_sync::<RwLock<u8>>();
    send_sync::<Condvar>();
    send_sync::<WaitGroup>();
    send_sync::<Semaphore>();
    send_sync::<SemaphorePermit<'static>>();
    send_sync::<Once>();
    send_sync::<Barrier>();
    sync::<MutexGuard<'static, u8>>();
    sync::<RwLockReadGuard<'static, u8>>();
    sync::<RwLockWriteGuard<'static, u8>>();
}
