//! `Barrier`: `n` parties meet, then all go on together.
//!
//! The arrival count lives under the queue lock next to the waiters. The `n`-th arrival
//! resets the count to zero (the next generation starts at once), releases everyone queued
//! and returns as the leader. Released waiters are no longer in the queue, so a fast
//! party of the next generation can arrive before a slow one of this generation has even
//! woken up without mixing them.

use std::fmt;

use super::waitq::{wake_all, WaitQueue, Waiter};

/// Grant code: the generation is complete.
const RELEASED: u8 = 1;

/// Lets `n` coroutines or threads wait until all of them have arrived, as std's `Barrier`.
///
/// Reusable: after each group of `n` goes through, the next group starts.
///
/// ```
/// use coronet::sync::Barrier;
/// use std::sync::Arc;
///
/// let barrier = Arc::new(Barrier::new(3));
/// let hs: Vec<_> = (0..3)
///     .map(|_| {
///         let b = barrier.clone();
///         coronet::go(move || b.wait().is_leader())
///     })
///     .collect();
/// let leaders = hs.into_iter().map(|h| h.join().unwrap());
/// assert_eq!(leaders.filter(|&leader| leader).count(), 1);
/// ```
pub struct Barrier {
    n: usize,
    /// Arrivals so far in this generation, and the parties waiting for the rest.
    queue: WaitQueue<usize>,
}

/// What [`Barrier::wait`] returns: whether this party was the leader of its generation.
///
/// ```
/// use coronet::sync::Barrier;
/// use std::sync::Arc;
///
/// let barrier = Arc::new(Barrier::new(2));
/// let b = barrier.clone();
/// let other = coronet::go(move || b.wait().is_leader());
/// let me = barrier.wait().is_leader();
/// assert!(me != other.join().unwrap()); // exactly one of the two leads
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// True for exactly one party per generation: the last to arrive.
    ///
    /// ```
    /// use coronet::sync::Barrier;
    /// use std::sync::Arc;
    ///
    /// // The leader does the once-per-round work, such as swapping buffers.
    /// let barrier = Arc::new(Barrier::new(3));
    /// let handles: Vec<_> = (0..3)
    ///     .map(|_| {
    ///         let b = barrier.clone();
    ///         coronet::go(move || if b.wait().is_leader() { 1 } else { 0 })
    ///     })
    ///     .collect();
    /// let leaders: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    /// assert_eq!(leaders, 1);
    /// ```
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` parties. `n` of 0 behaves as 1: every `wait` returns at once as
    /// leader (std's rule). Usable in a `static`.
    ///
    /// ```
    /// use coronet::sync::Barrier;
    ///
    /// static START: Barrier = Barrier::new(4);
    /// let racers: Vec<_> = (0..4)
    ///     .map(|i| {
    ///         coronet::go(move || {
    ///             START.wait(); // nobody starts until all four are ready
    ///             i
    ///         })
    ///     })
    ///     .collect();
    /// let ids: i32 = racers.into_iter().map(|h| h.join().unwrap()).sum();
    /// assert_eq!(ids, 6);
    /// ```
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            n,
            queue: WaitQueue::new(0),
        }
    }

    /// Parks until `n` parties (this one included) have called `wait`.
    ///
    /// ```
    /// let b = coronet::sync::Barrier::new(1);
    /// assert!(b.wait().is_leader()); // alone: a generation of one
    /// ```
    pub fn wait(&self) -> BarrierWaitResult {
        let mut q = self.queue.lock();
        q.state += 1;
        if q.state < self.n {
            let w = Waiter::new(0, None);
            q.push_back(w.clone());
            drop(q);
            w.wait();
            return BarrierWaitResult(false);
        }
        q.state = 0;
        let ws = q.drain_granted(RELEASED);
        drop(q);
        let n = ws.len();
        wake_all(ws);
        // After the wakes: a logger is user code, and may wait on one of those waiters.
        rt_log!(Trace, "barrier: generation complete, released {n}");
        BarrierWaitResult(true)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}
