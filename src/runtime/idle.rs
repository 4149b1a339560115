//! How a worker goes to sleep, and how work that arrives meanwhile wakes it.
//!
//! A worker with nothing to run blocks in `epoll_wait`. Work reaches it from other threads
//! through its [`Inbox`]: each kind is a queue behind a lock plus a flag or count that the
//! worker reads without the lock —
//! - unstarted coroutines (`fresh`, an [`Unstarted`] queue), which any worker may also steal;
//! - its own started coroutines that another thread unparked (`remote`, `remote_pending`);
//! - timers of its heap cancelled elsewhere (`cancels_pending`; that queue is the worker's).
//!
//! **The handshake.** The worker announces the sleep (swaps `sleeping` to true, then counts
//! itself in the runtime's `idle`), then looks once more at every flag and count; a
//! producer publishes its work, then reads `sleeping` (or `idle`) to decide whether it owes
//! the worker a ring of its bell (the eventfd). One of the two must see the other: the
//! worker finds the work, or the producer finds it asleep and rings. Two ways to make sure:
//! - A producer waking a worker it knows (`push_remote`, `submit_to`, a batch of timer
//!   cancels) swaps `sleeping` to false. Both sides write `sleeping` with swaps, which are
//!   ordered one after the other, and whichever comes second reads what the first wrote —
//!   and acquires what its writer had published before.
//! - A spawner looking for any idle worker to steal (`wake_searcher`) only reads `idle` and
//!   `sleeping`; there a `fence(SeqCst)` stands between each side's write and its read
//!   (Dekker's), so one of the two reads sees the other's write.
//!
//! Whoever swaps `sleeping` from true to false owes the ring, so a sleep gets at most one.
//! Each write of `sleeping` and `woken_to_search` is a swap even where a store would do: on
//! x86 a SeqCst store is the same `xchg`, and loom, which models fences but treats SeqCst
//! accesses as AcqRel (tokio-rs/loom#180), also lets a plain store race a swap of the same
//! atomic in ways C++ forbids, and would report wake-ups lost that cannot be.
//!
//! **Searching** (Go's spinning Ms): a spawn wakes a sleeping worker to steal only if no
//! worker is searching already (`searching`, taken 0 → 1 by the spawner and handed to the
//! woken worker through its `woken_to_search`), so a burst of spawns wakes one helper, not
//! all. A searcher that finds work, or gives up and sleeps, hands the role back and, if
//! unstarted coroutines still wait anywhere, wakes the next one (Go's `resetspinning`).
//!
//! All of it is generic over the worker ([`Sleeper`]) so that the loom models
//! (`idle/loom_tests.rs`) run these very functions with a condition variable for the
//! eventfd; the scheduler loop (`worker.rs`) calls them in the same order as the models'.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;

// loom's atomics, fence and lock in the loom models, std's and the scheduler's spin lock
// everywhere else (as in `fdmutex.rs`).
#[cfg(not(all(test, loom)))]
use super::spin::SpinLock as Lock;
#[cfg(all(test, loom))]
use loom::sync::atomic::{fence, AtomicBool, AtomicUsize};
#[cfg(not(all(test, loom)))]
use std::sync::atomic::{fence, AtomicBool, AtomicUsize};

/// The spin lock's interface on loom's mutex (loom cannot see a spin on std's atomics).
#[cfg(all(test, loom))]
struct Lock<T>(loom::sync::Mutex<T>);

#[cfg(all(test, loom))]
impl<T> Lock<T> {
    fn new(value: T) -> Lock<T> {
        Lock(loom::sync::Mutex::new(value))
    }

    fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap()
    }
}

/// Unstarted coroutines a `fresh` queue keeps room for once it has emptied.
const FRESH_KEPT: usize = 256;

/// A worker as the handshake sees it.
pub(crate) trait Sleeper {
    /// An unstarted coroutine (`Send`: it may be stolen).
    type New: Send;
    /// A started coroutine of this worker that another thread woke.
    type Woken: Send;
    fn inbox(&self) -> &Inbox<Self::New, Self::Woken>;
    /// Ends the worker's wait, or its next one if it is not waiting yet (an eventfd write).
    fn ring(&self);
}

/// A queue of coroutines not started yet, with its length readable without the lock (a
/// hint, unless a fence orders it: see [`Inbox::push_fresh`]). Every inbox's stealable
/// queue, and a worker's own `same_worker` queue (`worker::Shared::pinned`).
pub(crate) struct Unstarted<N> {
    q: Lock<VecDeque<N>>,
    len: AtomicUsize,
}

impl<N> Unstarted<N> {
    pub(crate) fn new() -> Unstarted<N> {
        Unstarted {
            q: Lock::new(VecDeque::new()),
            len: AtomicUsize::new(0),
        }
    }

    pub(crate) fn push(&self, t: N) {
        self.push_all(Some(t));
    }

    fn push_all(&self, ts: impl IntoIterator<Item = N>) {
        let mut q = self.q.lock();
        q.extend(ts);
        self.len.store(q.len(), Relaxed);
    }

    pub(crate) fn pop(&self) -> Option<N> {
        if self.len() == 0 {
            return None;
        }
        let mut q = self.q.lock();
        let t = q.pop_front();
        // Only a push must be seen by a worker going to sleep; after a pop the count is a
        // hint for stealers, who take the lock before trusting it.
        self.len.store(q.len(), Relaxed);
        release_burst(&mut q);
        t
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// Calls `f` on the queue, in its lock (for `dump()`).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&VecDeque<N>) -> R) -> R {
        f(&self.q.lock())
    }

    /// Moves up to half of the queue to `into`.
    fn steal_into(&self, into: &mut Vec<N>) -> usize {
        if self.len() == 0 {
            return 0;
        }
        let mut q = self.q.lock();
        let n = q.len().div_ceil(2);
        into.extend(q.drain(..n));
        self.len.store(q.len(), Relaxed);
        release_burst(&mut q);
        n
    }
}

/// What other threads hand one worker, and whether it sleeps.
pub(crate) struct Inbox<N, W> {
    /// Coroutines not started yet; stealable.
    fresh: Unstarted<N>,
    /// Started coroutines of this worker, unparked by another thread.
    remote: Lock<Vec<W>>,
    remote_pending: AtomicBool,
    /// Timers of the worker's heap were cancelled on another thread (the queue is the
    /// worker's own: `worker::cancel_timer_elsewhere`).
    cancels_pending: AtomicBool,
    /// True while the worker is (about to be) blocked in `epoll_wait`; whoever swaps it to
    /// false owes it a ring.
    sleeping: AtomicBool,
    /// Set by a spawner that woke this worker to steal (see [`Sleepers::wake_searcher`]).
    woken_to_search: AtomicBool,
}

impl<N, W> Inbox<N, W> {
    pub(crate) fn new() -> Inbox<N, W> {
        Inbox {
            fresh: Unstarted::new(),
            remote: Lock::new(Vec::new()),
            remote_pending: AtomicBool::new(false),
            cancels_pending: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            woken_to_search: AtomicBool::new(false),
        }
    }

    /// Queues a coroutine that has not started. `wakeable` says whether another thread may
    /// be deciding to sleep on this count right now (see [`Sleepers::sleep`]): then the
    /// count is fenced before the caller looks for a sleeper to wake. A worker pushing to
    /// its own queue in a one-worker runtime is the only reader there is.
    pub(crate) fn push_fresh(&self, t: N, wakeable: bool) {
        self.push_fresh_all(Some(t), wakeable);
    }

    /// [`push_fresh`](Self::push_fresh) for several at once: one lock, one fence.
    fn push_fresh_all(&self, ts: impl IntoIterator<Item = N>, wakeable: bool) {
        self.fresh.push_all(ts);
        if wakeable {
            // Dekker's, against `sleep`'s and `pass_search_on`'s looks: either they see
            // this count, or the caller's next read (`idle`, `sleeping`, `searching`)
            // sees them gone to sleep or out of the search.
            fence(SeqCst);
        }
    }

    /// The stealable queue of unstarted coroutines.
    pub(crate) fn fresh(&self) -> &Unstarted<N> {
        &self.fresh
    }

    /// The started coroutines other threads woke, if the flag says there are any.
    pub(crate) fn drain_remote(&self) -> Vec<W> {
        // A flag seen late costs one more round; the queue itself is read in the lock.
        if !self.remote_pending.load(Relaxed) {
            return Vec::new();
        }
        let mut q = self.remote.lock();
        self.remote_pending.store(false, Relaxed);
        std::mem::take(&mut *q)
    }

    /// Says that timers were queued for removal (the caller has released the queue's
    /// lock). A sleep that misses the flag is woken only by a batch's `wake`, as for
    /// `push_remote`.
    pub(crate) fn flag_cancels(&self) {
        self.cancels_pending.store(true, Relaxed);
    }

    pub(crate) fn cancels_flagged(&self) -> bool {
        self.cancels_pending.load(Relaxed)
    }

    /// Clears the flag; the caller holds the queue's lock and takes the queue next.
    pub(crate) fn clear_cancels_flag(&self) {
        self.cancels_pending.store(false, Relaxed);
    }

    pub(crate) fn is_sleeping(&self) -> bool {
        self.sleeping.load(SeqCst)
    }

    /// Whether another thread queued a wake-up of ours (a hint, read without the lock).
    pub(crate) fn remote_flagged(&self) -> bool {
        self.remote_pending.load(Relaxed)
    }
}

/// Gives back the memory of a burst of spawns once the queue has emptied: a coroutine that
/// spawns a million others before it parks queues a million of them (64 MB of `NewTask`s),
/// and a `VecDeque` never shrinks by itself.
fn release_burst<N>(q: &mut VecDeque<N>) {
    if q.is_empty() && q.capacity() > FRESH_KEPT {
        q.shrink_to(FRESH_KEPT);
    }
}

/// Ends `w`'s sleep if it is sleeping (one ring per sleep); whether it rang. Callers have
/// published their work first (`push_remote`, `push_fresh`, `flag_cancels`).
pub(crate) fn wake<S: Sleeper>(w: &S) -> bool {
    if w.inbox().sleeping.swap(false, SeqCst) {
        w.ring();
        true
    } else {
        false
    }
}

/// Queues a started coroutine of `w` that this (other) thread unparked, waking `w`.
pub(crate) fn push_remote<S: Sleeper>(w: &S, t: S::Woken) {
    let inbox = w.inbox();
    inbox.remote.lock().push(t);
    inbox.remote_pending.store(true, Relaxed);
    // `wake`'s swap of `sleeping` and `sleep`'s are ordered: if ours comes first, the
    // sleeper's reads what we wrote and sees the flag; if second, we find it asleep.
    wake(w);
}

/// Queues an unstarted coroutine that only `w` may start (its `pinned` queue: a
/// `Spawn::spread` placement) from another thread, waking `w`. `push_remote`'s protocol,
/// with the queue's length, written in its lock, for the flag: `w`'s look before a sleep
/// reads it (`has_local_work` in [`Sleepers::sleep`]).
pub(crate) fn push_pinned<S: Sleeper>(w: &S, pinned: &Unstarted<S::New>, t: S::New) {
    pinned.push(t);
    wake(w);
}

/// Wakes `w` to steal, handing it the caller's count in `searching`; false if it was not
/// asleep and did not take the role, so the count is still the caller's to give back.
fn wake_to_search<S: Sleeper>(w: &S) -> bool {
    let inbox = w.inbox();
    inbox.woken_to_search.swap(true, Relaxed);
    // If `wake`'s swap finds it asleep, the swap that ends its sleep comes after ours and
    // reads what ours wrote, so its look at `woken_to_search` after it sees the flag.
    if wake(w) {
        true
    } else {
        // It woke by itself meanwhile, and may already have swapped the flag out and
        // taken the role (and with it the count, which its next sleep gives back): only
        // a flag still set is ours to take back. A plain store here let both give it
        // back, wrapping `searching` so that no spawn ever woke a worker again.
        !inbox.woken_to_search.swap(false, SeqCst)
    }
}

/// The runtime-wide half: how many workers sleep, and whether one is out searching.
pub(crate) struct Sleepers {
    /// Workers asleep (or about to sleep) in `epoll_wait`.
    idle: AtomicUsize,
    /// Workers woken to steal that have not yet found work or gone back to sleep; at most
    /// one at a time, so a burst of spawns wakes one helper, not all (Go's `nmspinning`).
    searching: AtomicUsize,
}

impl Sleepers {
    pub(crate) fn new() -> Sleepers {
        Sleepers {
            idle: AtomicUsize::new(0),
            searching: AtomicUsize::new(0),
        }
    }

    /// After new work was queued on worker `from` (and fenced): if some other worker
    /// sleeps and none is already searching, wake one to steal.
    pub(crate) fn wake_searcher<S: Sleeper>(&self, workers: &[Arc<S>], from: usize) {
        if workers.len() < 2 || self.idle.load(SeqCst) == 0 {
            return;
        }
        if self
            .searching
            .compare_exchange(0, 1, SeqCst, SeqCst)
            .is_err()
        {
            return;
        }
        let n = workers.len();
        for i in 1..n {
            let w = &workers[(from + i) % n];
            if w.inbox().is_sleeping() && wake_to_search(&**w) {
                return;
            }
        }
        self.searching.fetch_sub(1, SeqCst);
    }

    /// Hands a new coroutine to worker `me`, from its own thread, waking an idle worker to
    /// steal it if one sleeps.
    pub(crate) fn submit_here<S: Sleeper>(&self, workers: &[Arc<S>], me: usize, t: S::New) {
        workers[me].inbox().push_fresh(t, workers.len() > 1);
        self.wake_searcher(workers, me);
    }

    /// Hands a new coroutine to worker `to` from a thread that is no worker: `to` is woken
    /// if it sleeps, else another to steal it.
    pub(crate) fn submit_to<S: Sleeper>(&self, workers: &[Arc<S>], to: usize, t: S::New) {
        let w = &*workers[to];
        w.inbox().push_fresh(t, true);
        if !wake(w) {
            self.wake_searcher(workers, to);
        }
    }

    /// Takes half of the first other worker's unstarted coroutines that has any: the first
    /// to start now, the rest queued on `me`. Also the victim's index and how many were
    /// taken, for the log.
    pub(crate) fn steal<S: Sleeper>(
        &self,
        workers: &[Arc<S>],
        me: usize,
    ) -> Option<(S::New, usize, usize)> {
        let n = workers.len();
        let mut got = Vec::new();
        let mut victim = me;
        for i in 1..n {
            victim = (me + i) % n;
            if workers[victim].inbox().fresh.steal_into(&mut got) > 0 {
                break;
            }
        }
        let taken = got.len();
        let mut it = got.into_iter();
        let first = it.next()?;
        if taken > 1 {
            workers[me].inbox().push_fresh_all(it, true);
        }
        Some((first, victim, taken))
    }

    /// Whether any worker has unstarted coroutines queued. Call after a fence that pairs
    /// with the spawner's (`push_fresh`) for an answer a sleep may rely on; without one
    /// (the spin before a sleep, `worker.rs`) it is a hint.
    pub(crate) fn any_unstarted<S: Sleeper>(workers: &[Arc<S>]) -> bool {
        workers.iter().any(|w| w.inbox().fresh.len() > 0)
    }

    /// Gives back the searcher's role if this worker holds it.
    fn give_up_search(&self, searching: &Cell<bool>) {
        if searching.replace(false) {
            self.searching.fetch_sub(1, SeqCst);
        }
    }

    /// Called with whatever worker `me` found to run: a ready coroutine, an unstarted one
    /// of its own, or one it `stole`. Go's `resetspinning` → `wakep`: while a searcher is
    /// out, spawns wake no one (`wake_searcher`), so whoever leaves the search — or steals
    /// without holding the role — must wake a searcher if unstarted coroutines wait
    /// anywhere, or they wait in a busy worker's queue while others sleep. (Before, only a
    /// searcher that started an unstarted coroutine passed the role on: one that found a
    /// ready coroutine of its own kept it while it ran, for as long as that took.)
    #[inline]
    pub(crate) fn found_work<S: Sleeper>(
        &self,
        workers: &[Arc<S>],
        me: usize,
        searching: &Cell<bool>,
        stole: bool,
    ) {
        if searching.get() || stole {
            self.pass_search_on(workers, me, searching);
        }
    }

    /// The cold half of `found_work`.
    #[inline(never)]
    fn pass_search_on<S: Sleeper>(&self, workers: &[Arc<S>], me: usize, searching: &Cell<bool>) {
        self.give_up_search(searching);
        // Dekker's, against a spawner's `push_fresh` then `wake_searcher`: either it sees
        // the role given up and wakes a searcher itself, or we see its coroutine.
        fence(SeqCst);
        if Self::any_unstarted(workers) {
            rt_log!(
                Trace,
                "worker {me} found work; unstarted coroutines wait: waking a searcher"
            );
            self.wake_searcher(workers, me);
        }
    }

    /// Puts worker `me` to sleep in `wait` unless, once it has announced the sleep, work
    /// turns out to be waiting: in its inbox, unstarted anywhere, or (`has_local_work`) in
    /// its own run queue. After the sleep, takes the searcher's role if a spawner handed
    /// it over (`searching`). `wait` returns at the first ring, or for reasons of its own
    /// (ready fds, a timer's deadline).
    pub(crate) fn sleep<S: Sleeper>(
        &self,
        workers: &[Arc<S>],
        me: usize,
        searching: &Cell<bool>,
        has_local_work: impl FnOnce() -> bool,
        wait: impl FnOnce(),
    ) {
        self.give_up_search(searching);
        let inbox = workers[me].inbox();
        // Announce the sleep, then look once more: a producer either finds us asleep and
        // wakes us, or we see its work here (the swap orders us against `wake`'s, the fence
        // against a spawner's in `push_fresh`; see the module's doc).
        inbox.sleeping.swap(true, SeqCst);
        self.idle.fetch_add(1, SeqCst);
        fence(SeqCst);
        let has_work = inbox.remote_pending.load(Relaxed)
            || inbox.cancels_pending.load(Relaxed)
            // any unstarted coroutine, ours or another worker's, however few: a spawner that
            // found no one idle, or the searcher role taken (by us, a moment ago), woke no one
            // for it, and its worker may be busy for good with a coroutine that never parks
            || Self::any_unstarted(workers)
            || has_local_work();
        if !has_work {
            wait();
        }
        inbox.sleeping.swap(false, SeqCst);
        self.idle.fetch_sub(1, SeqCst);
        // A spawner whose swap found us asleep set the flag before it (`wake_to_search`).
        if inbox.woken_to_search.swap(false, SeqCst) {
            searching.set(true);
        }
    }

    /// Whether work may come from another worker soon: some worker besides `me` is awake
    /// (running, or looking for work). A hint for the spin before a sleep (`worker.rs`),
    /// read without ordering: a wrong answer costs a spin or a sleep, never a lost wake.
    pub(crate) fn another_awake(&self, workers: usize) -> bool {
        self.idle.load(Relaxed) + 1 < workers
    }

    /// The counts, for the loom models' final checks.
    #[cfg(all(test, loom))]
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.idle.load(SeqCst), self.searching.load(SeqCst))
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
