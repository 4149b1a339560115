//! A worker: one OS thread that runs coroutines, fires its timers and polls its epoll.
//!
//! Each worker has two halves:
//! - [`Shared`] (in an `Arc`, reachable from any thread): its [`Inbox`] — the queue of
//!   coroutines that have not started yet (others may steal from it), the queue of
//!   coroutines woken by other threads, and the flags of the sleep handshake (`idle.rs`) —
//!   its `pinned` queue (`same_worker` and `spread` coroutines, which only it starts), its
//!   netpoller, the `live` table for `dump()`, the timer ids other threads cancelled
//!   (`cancels`), and its counters.
//! - [`Local`] (a thread-local of the worker thread, `!Send`): the started coroutines
//!   themselves, the local run queue and `runnext` (`runq.rs`), the timer heap and the
//!   stack pool.
//!
//! A started coroutine's corosensei `Coroutine` lives only in `Local::coros`. No other
//! thread can reach it, so it can only ever be resumed by the thread that started it — the
//! pinning rule of `runtime/mod.rs` holds by construction, not by care.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult, Yielder};
use slab::Slab;

use super::idle::{self, Inbox, Sleeper, Sleepers, Unstarted};
use super::runq::{RunQueue, FAIRNESS_TICK};
use super::spawn::Body;
use super::spin::{SpinGuard, SpinLock};
use super::stack::{self, Stack, StackPool};
use super::task::{Home, State, Task, Wait, NO_WORKER};
use super::Runtime;
use crate::poll::desc::{Dir, PollDesc};
use crate::poll::Poller;
use crate::time::callback::Action;
use crate::time::timers::{self, epoll_timeout, TimerId, Timers};

/// Why a coroutine handed control back to its worker.
pub(crate) enum Suspend {
    /// Parked: it is requeued only by an unpark.
    Park,
    /// Yielded: still runnable, goes to the back of the local queue.
    Yield,
    /// `coronet::exit`: the scheduler ends the process with this status, outside any
    /// coroutine. Never resumed.
    Exit(i32),
}

type Coro = Coroutine<(), Suspend, (), Stack>;

/// What a coroutine's body keeps in its own frame, at the top of its stack, for its whole
/// life: its `Yielder` and its own `Arc<Task>`.
struct Frame {
    yielder: *const Yielder<(), Suspend>,
    me: Arc<Task>,
}

/// A started coroutine as its worker holds it (one per parked coroutine: kept small).
/// `repr(C)` puts the two fields `prefetch` reads first, so they share one cache line.
#[repr(C)]
struct Slot {
    /// Its body's `Frame`; null until the first resume records it.
    frame: *const Frame,
    /// Roughly where its stack pointer was when it last suspended (0: never): the deepest
    /// frame its resume returns through, for `prefetch`.
    sp: usize,
    /// The start of its stack's guard page, for the overflow handler.
    guard: usize,
    /// What its resume touches first besides its frames, recorded as it parked on a socket
    /// (0: not parked on one), for `prefetch`: the buffer its read's bytes will be copied
    /// into, and the `PollDesc` whose slot the wait looks at first (`note_wait`).
    buf: usize,
    desc: usize,
    co: Coro,
}

/// A coroutine that has not started: no stack (unless `try_go` reserved one), no worker.
/// It is `Send`, so it may be handed to or stolen by any worker.
pub(crate) struct NewTask {
    pub(crate) task: Arc<Task>,
    /// Runs the user's closure; given `Some(err)` it reports that start failed instead.
    pub(crate) body: Arc<dyn Body>,
    pub(crate) stack_size: usize,
    pub(crate) stack: Option<Stack>,
}

/// Per-worker counters, written (relaxed) only by the worker's own thread; summed by
/// `stats()`.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) started: AtomicU64,
    pub(crate) finished: AtomicU64,
    pub(crate) switches: AtomicU64,
    pub(crate) epoll_waits: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) parked_io: AtomicU64,
    pub(crate) parked_other: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

fn drop1(c: &AtomicU64) {
    c.store(
        c.load(Ordering::Relaxed).saturating_sub(1),
        Ordering::Relaxed,
    );
}

/// A started coroutine's record in `Shared::live`, without a reference count of its own: the
/// coroutine's body holds `me` (an `Arc<Task>`) for as long as the entry exists, because the
/// body's [`Registered`] guard removes the entry before `me` is dropped.
struct LiveTask(*const Task);

// SAFETY: the pointer is only dereferenced under the `live` lock, while the entry exists and so
// while the coroutine's own `Arc` keeps the `Task` (which is `Send + Sync`) alive.
unsafe impl Send for LiveTask {}

/// Removes a coroutine's `live` entry when its body ends — returned or unwound — and so
/// before the body's `me` goes (declared after `me`, it is dropped first).
struct Registered(usize);

impl Drop for Registered {
    fn drop(&mut self) {
        with_local(|l| lock(&l.shared.live).remove(self.0));
    }
}

/// The half of a worker that other threads may touch.
pub(crate) struct Shared {
    pub(crate) index: usize,
    /// What other threads hand this worker (unstarted coroutines, remote wake-ups) and
    /// whether it sleeps: the handshake of `idle.rs`.
    pub(crate) inbox: Inbox<NewTask, Arc<Task>>,
    pub(crate) poller: Poller,
    /// Started, unfinished coroutines of this worker, for `dump()`; the key is the index
    /// of the coroutine in `Local::coros` too. Read with [`Shared::live_tasks`].
    live: SpinLock<Slab<LiveTask>>,
    /// Timers of this worker's heap cancelled on another thread, for the worker to remove
    /// on its next timer pass (see [`cancel_timer_elsewhere`]); flagged in the inbox.
    cancels: SpinLock<Vec<TimerId>>,
    /// Unstarted coroutines that only this worker may start: spawned with
    /// `Spawn::same_worker` on its thread, or placed here by `Spawn::spread` from any
    /// thread (`submit_spread`, which wakes it). Kept out of the stealable queue; only this
    /// thread pops, and the length is a lower bound here (pushes from others only add) and
    /// a hint for `stats()` elsewhere.
    pub(crate) pinned: Unstarted<NewTask>,
    pub(crate) counters: Counters,
}

impl Sleeper for Shared {
    type New = NewTask;
    type Woken = Arc<Task>;

    fn inbox(&self) -> &Inbox<NewTask, Arc<Task>> {
        &self.inbox
    }

    fn ring(&self) {
        self.poller.wake();
    }
}

/// Timer cancels queued for a worker before it is woken to apply them: a worker that sleeps
/// until a far deadline would otherwise keep every cancelled entry (and what its callback
/// holds) until it wakes. Fewer wait for its next pass (it takes them before it sleeps), so
/// at most this many less one stay behind while it sleeps.
const CANCELS_WAKE: usize = 64;

fn lock<T>(m: &SpinLock<T>) -> SpinGuard<'_, T> {
    m.lock()
}

impl Shared {
    pub(crate) fn new(index: usize) -> io::Result<Shared> {
        Ok(Shared {
            index,
            inbox: Inbox::new(),
            poller: Poller::new()?,
            live: SpinLock::new(Slab::new()),
            cancels: SpinLock::new(Vec::new()),
            pinned: Unstarted::new(),
            counters: Counters::default(),
        })
    }

    /// The started, unfinished coroutines of this worker (for `dump()`).
    pub(crate) fn live_tasks(&self) -> Vec<Arc<Task>> {
        lock(&self.live)
            .iter()
            .map(|(_, t)| {
                // SAFETY: the entry exists, so its coroutine's `me` keeps the `Task` alive
                // (see `LiveTask`), and the lock keeps the entry until we have our own count.
                unsafe {
                    Arc::increment_strong_count(t.0);
                    Arc::from_raw(t.0)
                }
            })
            .collect()
    }

    /// Names and ids of coroutines not yet started (for `dump()`).
    pub(crate) fn fresh_tasks(&self) -> Vec<Arc<Task>> {
        let records = |q: &VecDeque<NewTask>| q.iter().map(|t| t.task.clone()).collect::<Vec<_>>();
        let mut tasks = self.pinned.with(records);
        tasks.extend(self.inbox.fresh().with(records));
        tasks
    }
}

/// The worker thread's own half. Reached through the `LOCAL` thread-local; leaked at start,
/// since a worker thread never exits. `!Sync` (its cells), so a `&Local` cannot leave the
/// thread.
pub(crate) struct Local {
    rt: &'static Runtime,
    shared: Arc<Shared>,
    /// Started coroutines ready to run, and `runnext` (see `runq.rs`). Never borrowed
    /// across a resume: the coroutine may wake others into it.
    runq: RefCell<RunQueue<Arc<Task>>>,
    coros: RefCell<Vec<Option<Slot>>>,
    timers: RefCell<Timers<Action>>,
    /// Each coroutine's park timer, by its key in `coros` (see `arm_park_timer`).
    park_timers: RefCell<Vec<ParkTimer>>,
    stacks: RefCell<StackPool>,
    /// The running coroutine's `Frame` (its yielder and its own `Arc<Task>`, on its stack;
    /// null between resumes): set around each resume. A pointer, not a clone, so a resume
    /// and a park cost no reference-count traffic.
    frame: Cell<*const Frame>,
    /// Set by `suspend` to an address in its own frame; `resume` moves it into the slot.
    suspended_sp: Cell<usize>,
    /// Set by `note_read_buf` and `note_wait`; `resume` moves them into the slot.
    read_buf: Cell<usize>,
    wait_desc: Cell<usize>,
    /// Socket calls the running coroutine may still complete without waiting before it
    /// yields (`spend_io_budget`); refilled at every suspend.
    io_left: Cell<u32>,
    tick: Cell<u32>,
    /// The round (`tick`) of the last look at the netpoller.
    io_polled_at: Cell<u32>,
    /// Pops that prefetched, to time the batches of stack-page touches (`prefetch`).
    pops: Cell<u32>,
    /// This worker was woken to steal and has not yet found work (see `Sleepers::searching`
    /// in `idle.rs`).
    searching: Cell<bool>,
    /// The last sleep was ended by another thread's wake-up of one of our coroutines, so
    /// more may follow: spin before the next sleep (`spin_for_work`).
    spin_pays: Cell<bool>,
    /// Since its last sleep this worker has woken a coroutine of another worker, which
    /// may answer (`spin_for_work`).
    handed_off: Cell<bool>,
    /// Which unstarted queue `pop_unstarted` looks at first next time.
    stealable_first: Cell<bool>,
    /// The last resume ended in a yield: the next round looks around (`look_after_yield`).
    yielded: Cell<bool>,
    /// When `look_after_yield` last polled the netpoller (`timers::nanos`).
    yield_polled_at: Cell<u64>,
    events: RefCell<Vec<libc::epoll_event>>,
}

thread_local! {
    // A plain pointer (no destructor, const-initialised): every access is one load from the
    // thread's TLS block, with no lazy-initialisation or destructor-state check.
    static LOCAL: Cell<*const Local> = const { Cell::new(ptr::null()) };
}

/// The local half, if this thread is a worker.
fn local() -> Option<&'static Local> {
    let p = LOCAL.with(Cell::get);
    // SAFETY: a non-null `LOCAL` was set by `run` from `Box::leak`, so it points to a `Local`
    // that is never freed; it is only set and read on its own worker thread, and `Local` is
    // `!Sync`, so the reference cannot be handed to another thread.
    (!p.is_null()).then(|| unsafe { &*p })
}

fn with_local<R>(f: impl FnOnce(&'static Local) -> R) -> Option<R> {
    local().map(f)
}

/// The coroutine running on this thread, if any.
pub(crate) fn current_task() -> Option<Arc<Task>> {
    with_current(Arc::clone)
}

/// Runs `f` with the running coroutine's own record, without cloning it; None outside a
/// coroutine. `f` may park: the record lives in the coroutine's body frame, on the stack
/// that is suspended along with `f`.
pub(crate) fn with_current<R>(f: impl FnOnce(&Arc<Task>) -> R) -> Option<R> {
    let p = with_local(|l| l.frame.get()).filter(|p| !p.is_null())?;
    // SAFETY: a non-null `frame` points at the running coroutine's `Frame` (see `start`), a
    // local of its body that lives until the body returns; we are inside that body (the
    // pointer is cleared whenever the worker runs anything else), and the coroutine only
    // ever runs on this thread, so the frame stays put for as long as `f` borrows it.
    Some(f(unsafe { &(*p).me }))
}

/// True when called from inside a coroutine.
pub(crate) fn in_coroutine() -> bool {
    with_local(|l| !l.frame.get().is_null()).unwrap_or(false)
}

/// The netpoller of this thread's worker (where a coroutine registers an fd on first park).
pub(crate) fn with_poller<R>(f: impl FnOnce(usize, &Poller) -> R) -> Option<R> {
    with_local(|l| f(l.shared.index, &l.shared.poller))
}

/// Where a woken coroutine waits for its turn on its own worker.
#[derive(Clone, Copy)]
pub(crate) enum Turn {
    /// `runnext`: it runs next (a hand-off from the coroutine that woke it, or a timer).
    Next,
    /// The back of the run queue, behind everything already waiting (netpoll wake-ups).
    Queue,
}

/// Makes a parked coroutine runnable: on its own worker it takes `runnext`; from anywhere
/// else it goes to that worker's remote queue, with a wake if the worker sleeps.
pub(crate) fn schedule(task: Arc<Task>) {
    schedule_at(task, Turn::Next)
}

/// As [`schedule`], with `turn` saying where it waits when it is on its own worker.
pub(crate) fn schedule_at(task: Arc<Task>, turn: Turn) {
    let owner = task.worker();
    debug_assert_ne!(
        owner, NO_WORKER,
        "scheduling a coroutine that never started"
    );
    // The Arc moves into whichever queue takes it: no reference-count round trip per wake.
    let mut task = Some(task);
    with_local(|l| {
        if l.shared.index == owner {
            if let Some(t) = task.take() {
                let mut runq = l.runq.borrow_mut();
                match turn {
                    Turn::Next => runq.push_runnext(t),
                    Turn::Queue => runq.push_back(t),
                }
            }
        } else {
            l.handed_off.set(true);
        }
    });
    if let Some(task) = task {
        let rt = super::runtime_started().expect("a started coroutine implies a runtime");
        idle::push_remote(&*rt.workers[owner], task);
    }
}

/// Suspends the running coroutine after its token went to PARKED (see `park.rs`).
#[inline(always)]
pub(crate) fn suspend_parked(task: &Arc<Task>, why: Wait) {
    task.set_state(State::Parked);
    suspend(Suspend::Park, why);
    task.set_state(State::Running);
}

/// A stream read of the running coroutine (if any) starts: should it park, the kernel's copy
/// into `buf` is the first thing its resume does, and `prefetch` touches that page ahead of
/// it. Only a hint, never read through: a stale address costs a wasted prefetch.
#[inline]
pub(crate) fn note_read_buf(buf: *const u8) {
    if let Some(l) = local() {
        l.read_buf.set(buf as usize);
    }
}

/// The running coroutine parks on `desc`'s `dir` slot, which its resume looks at first
/// (`prefetch`). A write's wait has no read buffer to land in: the one a read of this run
/// noted is forgotten.
#[inline]
pub(crate) fn note_wait(desc: *const PollDesc, dir: Dir) {
    if let Some(l) = local() {
        l.wait_desc.set(desc as usize);
        if dir == Dir::Write {
            l.read_buf.set(0);
        }
    }
}

/// Lets other runnable coroutines run; returns when this one's turn comes again.
pub(crate) fn yield_now() {
    if in_coroutine() {
        suspend(Suspend::Yield, Wait::None);
    } else {
        std::thread::yield_now();
    }
}

/// Ends the process from the running coroutine: it suspends for good, and its worker's
/// scheduler, on the thread's own stack, calls `std::process::exit`. Called inside the
/// coroutine, `exit` ran the thread's `thread_local!` destructors on the coroutine's stack,
/// and one that waited on a coronet primitive suspended it: the scheduler then resumed the
/// worker's other coroutines with their thread-locals freed under them (found by a
/// soundness audit, through `Builder::main`'s return). From the scheduler, such a wait
/// blocks the thread instead (`park.rs`, a thread wait on a worker thread), and no
/// coroutine of it runs again. Returns only outside a coroutine.
pub(crate) fn exit_coroutine(code: i32) {
    if in_coroutine() {
        suspend(Suspend::Exit(code), Wait::None);
        unreachable!("a coroutine that asked to end the process was resumed");
    }
}

/// Socket calls a coroutine completes without waiting before it yields to the rest of its
/// worker (tokio's cooperative budget is 128 too). Coroutines are not preempted, and a
/// handler whose peer always has the next bytes ready never parks: without this it held its
/// worker, and every coroutine, timer and deadline on it, for as long as the stream kept
/// coming (seconds, in the tenth audit's chaos runs). Calls that fail at once count as
/// well, or a loop retrying one would hold the worker for good. A call that parks refills
/// the budget, so a request-response server, which parks on every read, never spends it.
const IO_BUDGET: u32 = 128;

/// Counts one socket call, whatever its result (a call that waited has refilled the budget
/// first); the one that empties the budget yields (to the back of the run queue). Only in
/// a coroutine: a plain thread is the kernel's to preempt.
#[inline]
pub(crate) fn spend_io_budget() {
    let Some(l) = local() else { return };
    if l.frame.get().is_null() {
        return;
    }
    let left = l.io_left.get();
    if left > 1 {
        l.io_left.set(left - 1);
    } else {
        io_budget_spent();
    }
}

/// Out of line: the socket path's frame, which a parked read leaves on its stack, stays as
/// small as it was (see `park::park_coroutine`).
#[cold]
#[inline(never)]
fn io_budget_spent() {
    hot_trace!("io budget spent: yielding");
    suspend(Suspend::Yield, Wait::None); // refills it
}

/// Inlined into its callers for the reason given at `park::park_coroutine`.
#[inline(always)]
fn suspend(how: Suspend, why: Wait) {
    let l = local().expect("suspend outside a worker");
    let c = &l.shared.counters;
    match how {
        Suspend::Park if why.is_io() => bump(&c.parked_io),
        Suspend::Park => bump(&c.parked_other),
        Suspend::Yield | Suspend::Exit(_) => {}
    }
    let frame = l.frame.get();
    assert!(!frame.is_null(), "suspend outside a coroutine");
    l.io_left.set(IO_BUDGET);
    let here = 0u8;
    l.suspended_sp
        .set(std::hint::black_box(&here) as *const u8 as usize);
    // SAFETY: `frame` is the running coroutine's `Frame`, recorded by its body on first entry
    // and restored by `Local::resume` before every resume; it and the `Yielder` it points to
    // live on that coroutine's stack, which is the stack we are executing on, so both are
    // alive; and the yielder is used on the thread that resumed it, as corosensei requires.
    unsafe { (*(*frame).yielder).suspend(how) };
    // Still the same worker (`l`): a started coroutine never changes threads.
    if matches!(how_kind(why), Some(true)) {
        drop1(&c.parked_io);
    } else if matches!(how_kind(why), Some(false)) {
        drop1(&c.parked_other);
    }
}

/// For the gauges: Some(true) if a park of this kind counts as I/O, Some(false) for other
/// parks, None for a yield.
fn how_kind(why: Wait) -> Option<bool> {
    match why {
        Wait::None => None,
        w => Some(w.is_io()),
    }
}

/// A coroutine's park timer: the one entry in its worker's heap that wakes it when a park
/// with a deadline (a `sleep`, an I/O deadline or timeout, a `recv_timeout`) runs out.
///
/// Go parks a goroutine on an fd's deadline without touching the timer heap: the timer
/// belongs to the fd, `SetDeadline` moves it, and a timer moved later is only marked, its
/// heap entry put right when it comes to the top. Deadlines here are read per park, so the
/// timer belongs to the coroutine instead, and it outlives the park: a wake-up (data came)
/// leaves it armed, and the next park with a deadline no earlier than the entry's leaves
/// the heap alone. When the entry comes due it looks at what its coroutine wants *now*: a
/// later deadline re-arms it there, none (not parked, or parked without one) drops it, a
/// passed one unparks. A server that renews a deadline per request so pays a store per park
/// where it paid an insert and a removal from the top of the heap (measured: `http_hello`,
/// 4,226 → 3,570 instructions per request under callgrind). A coroutine's worker is its
/// only thread, so the entry, the table and the park all live on that thread and need no
/// atomics.
///
/// 24 bytes per coroutine slot, in a table that grows to the highest slot that ever parked
/// with a deadline (and never shrinks: slots are reused).
#[derive(Clone, Copy)]
struct ParkTimer {
    /// The armed entry (`TimerId::to_bits`), or `NO_ENTRY` (index `NIL`, never a slot). It
    /// fires at or before `want`, or finds `want` gone.
    entry: u64,
    /// When the armed entry fires (`timers::nanos`). Kept here, not asked of the heap, so a
    /// park whose deadline is no earlier touches this record alone. The record is the only
    /// thing that arms, moves or removes the entry, so the two never disagree.
    at: u64,
    /// The deadline of the park in progress (`timers::nanos`), or `NOT_WAITING`.
    want: u64,
}

const NO_ENTRY: u64 = u64::MAX;
const NOT_WAITING: u64 = u64::MAX;

impl ParkTimer {
    const NONE: ParkTimer = ParkTimer {
        entry: NO_ENTRY,
        at: 0,
        want: NOT_WAITING,
    };

    fn id(&self) -> Option<TimerId> {
        (self.entry != NO_ENTRY).then(|| TimerId::from_bits(self.entry))
    }

    fn set_id(&mut self, id: Option<TimerId>) {
        self.entry = id.map_or(NO_ENTRY, TimerId::to_bits);
    }
}

/// The running coroutine `task` is about to park until `when` at the latest: its park
/// timer will fire by then (see [`ParkTimer`]).
pub(crate) fn arm_park_timer(task: &Arc<Task>, when: Instant) {
    // A deadline past the scale's 584 years is kept just below it, where `NOT_WAITING` is.
    let want = timers::nanos(when).min(NOT_WAITING - 1);
    with_local(|l| l.arm_park_timer(task, want)).expect("timer outside a worker")
}

/// The park `arm_park_timer` was for is over. The entry stays armed for the next one.
pub(crate) fn park_timer_done(task: &Task) {
    with_local(|l| {
        if let Some(pt) = l.park_timers.borrow_mut().get_mut(task.key()) {
            pt.want = NOT_WAITING;
        }
    });
}

/// Arms `action` on this thread's worker; hands it back when this thread is not a worker.
/// The id is valid only on the worker whose index comes with it.
pub(crate) fn try_arm(when: Instant, action: Action) -> Result<(usize, TimerId), Action> {
    match local() {
        Some(l) => Ok((l.shared.index, l.timers.borrow_mut().insert(when, action))),
        None => Err(action),
    }
}

/// Disarms a callback timer of this worker; true if it was still armed. The action is
/// dropped after the heap is released: a callback's captures may wake tasks or arm timers as
/// they go.
pub(crate) fn cancel_timer(id: TimerId) -> bool {
    let action = with_local(|l| l.timers.borrow_mut().cancel_if(id, is_callback)).flatten();
    action.is_some()
}

/// Only callback timers are cancelled by id. A handle kept while its slot was reused 2^32
/// times carries an id that aliases whatever is armed there now; if that is a park timer,
/// removing it would leave its record naming a dead entry and the park without a timer.
fn is_callback(action: &Action) -> bool {
    matches!(action, Action::Call(_))
}

/// Disarms a timer in worker `n`'s heap from another thread. Only the owner may touch its
/// heap, so the id is queued there and the owner removes the entry on its next timer pass
/// (a stale id — the timer fired meanwhile — is ignored, by its generation). Until then the
/// timer may still fire, so its callback must check that it is still wanted, as before.
/// Without this a context or a `Timer` cancelled on another worker kept its entry, and
/// everything its callback held, until its deadline — an hour, for an hour's timeout.
pub(crate) fn cancel_timer_elsewhere(n: usize, id: TimerId) {
    let Some(w) = super::runtime_started().and_then(|rt| rt.workers.get(n)) else {
        return;
    };
    let queued = {
        let mut q = lock(&w.cancels);
        q.push(id);
        q.len()
    };
    // A worker going to sleep either sees the flag in its last look or is asleep when the
    // batch's wake comes (`idle.rs`); fewer than a batch may wait for its next pass.
    w.inbox.flag_cancels();
    if queued % CANCELS_WAKE == 0 {
        idle::wake(&**w);
    }
}

/// The index of this thread's worker, if it is one.
pub(crate) fn worker_index() -> Option<usize> {
    with_local(|l| l.shared.index)
}

/// Hands a new coroutine to a worker: this one if we are on a worker thread (waking an idle
/// worker to steal it if one sleeps), otherwise the next worker round-robin.
pub(crate) fn submit(rt: &'static Runtime, t: NewTask) {
    match local() {
        Some(l) => rt.sleepers.submit_here(&rt.workers, l.shared.index, t),
        None => rt.sleepers.submit_to(&rt.workers, rt.next_worker(), t),
    }
}

/// Hands a new coroutine to the worker that holds the fewest coroutines (`Spawn::spread`):
/// started and unfinished, or queued to start. The caller's own worker wins a tie, so
/// spreading costs nothing while the load is even; off a worker, ties go round-robin.
///
/// The chosen worker, and no other, starts it: it goes to that worker's `pinned` queue,
/// woken if it sleeps. Stealable, it would be taken back by the first worker to run out of
/// work, which while connections arrive at an idle server is the spawner's own, before the
/// chosen one has woken (tried: a server's burst of 32 connections all ended on the
/// acceptor's worker, and `tests/cross_worker.rs`'s spread test sees every child taken by
/// the idle worker). From another thread the push is `idle::push_pinned`, whose wake-up
/// the loom models check.
pub(crate) fn submit_spread(rt: &'static Runtime, t: NewTask) {
    let here = local().map(|l| l.shared.index);
    let first = here.unwrap_or_else(|| rt.next_worker());
    let (to, load) = least_loaded(&rt.workers, first);
    rt_log!(
        Trace,
        "coroutine {} spread to worker {to} ({load} there)",
        t.task.id
    );
    let w = &*rt.workers[to];
    if here == Some(to) {
        w.pinned.push(t); // no wake-up: this worker is awake, running the caller
    } else {
        idle::push_pinned(w, &w.pinned, t);
    }
}

/// The worker with the fewest coroutines started and unfinished or queued, and that count;
/// `first` wins a tie. The counts are each worker's own relaxed counters, read without
/// stopping anyone: a hint, which is all a placement needs.
fn least_loaded(workers: &[Arc<Shared>], first: usize) -> (usize, u64) {
    let load = |w: &Shared| {
        let c = &w.counters;
        let live = c
            .started
            .load(Ordering::Relaxed)
            .saturating_sub(c.finished.load(Ordering::Relaxed));
        live + (w.inbox.fresh().len() + w.pinned.len()) as u64
    };
    let mut best = (first, load(&workers[first]));
    for w in workers.iter().filter(|w| w.index != first) {
        let l = load(w);
        if l < best.1 {
            best = (w.index, l);
        }
    }
    best
}

/// Hands a new coroutine to the calling thread's worker, to be started there and nowhere
/// else (`Spawn::same_worker`): no wake-up, since that worker is awake, running the caller.
/// Off a worker, as [`submit`].
pub(crate) fn submit_same_worker(rt: &'static Runtime, t: NewTask) {
    match local() {
        Some(l) => {
            rt_log!(
                Trace,
                "worker {}: coroutine {} queued to start here",
                l.shared.index,
                t.task.id
            );
            l.shared.pinned.push(t);
        }
        None => submit(rt, t),
    }
}

/// Hands a new coroutine to worker `index`, to be started there and nowhere else, from any
/// thread. Wakes no one: only `Builder::main` uses it, for worker 0 before that worker's
/// thread enters `run`, whose first round looks at the queue.
pub(crate) fn submit_pinned(rt: &'static Runtime, index: usize, t: NewTask) {
    rt_log!(
        Trace,
        "coroutine {} queued to start on worker {index}",
        t.task.id
    );
    rt.workers[index].pinned.push(t);
}

/// Maps a stack from this worker's pool (or fresh, off a worker).
pub(crate) fn take_stack(size: usize) -> io::Result<Stack> {
    match local() {
        Some(l) => l.stacks.borrow_mut().get(size),
        None => Stack::new(size),
    }
}

/// Entry point of a worker thread (or of the thread that called `Builder::main`, as worker
/// 0). Never returns.
pub(crate) fn run(rt: &'static Runtime, index: usize) -> ! {
    stack::ensure_altstack();
    let shared = rt.workers[index].clone();
    let local: &'static Local = Box::leak(Box::new(Local {
        rt,
        shared,
        runq: RefCell::new(RunQueue::new()),
        coros: RefCell::new(Vec::new()),
        timers: RefCell::new(Timers::new()),
        park_timers: RefCell::new(Vec::new()),
        stacks: RefCell::new(StackPool::new(STACKS_CACHED, rt.stack_size)),
        frame: Cell::new(ptr::null()),
        suspended_sp: Cell::new(0),
        read_buf: Cell::new(0),
        wait_desc: Cell::new(0),
        io_left: Cell::new(IO_BUDGET),
        tick: Cell::new(0),
        io_polled_at: Cell::new(0),
        pops: Cell::new(0),
        searching: Cell::new(false),
        spin_pays: Cell::new(false),
        handed_off: Cell::new(false),
        stealable_first: Cell::new(false),
        yielded: Cell::new(false),
        yield_polled_at: Cell::new(0),
        events: RefCell::new(Vec::with_capacity(256)),
    }));
    LOCAL.with(|l| l.set(local));
    let _abort = AbortOnUnwind(index);
    rt_log!(Debug, "worker {index} started");
    local.run();
}

/// Dropped only if a panic unwinds out of the scheduler loop, which never returns: a runtime
/// bug (a logger's panic, the user code the scheduler calls most, is caught where the
/// runtime logs: `rt_log!`). The thread must not exit
/// then: the coroutines parked on it can run on no other thread, and its thread-locals, which
/// their suspended frames (and blocking jobs) may borrow, would be freed under them. So the
/// process aborts, as std does when it cannot unwind soundly.
struct AbortOnUnwind(usize);

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        eprintln!(
            "coronet: worker {}: a panic escaped the scheduler; the coroutines parked on this \
             thread cannot move to another, so the process aborts",
            self.0
        );
        std::process::abort();
    }
}

/// Prefetch only on a worker with more coroutines than this. What pays is the translation
/// of the next stack's page more than its lines: every stack top is a page of its own, and
/// a core's first-level data TLB holds 64 pages, so past that many coroutines (or fewer,
/// when the kernel's network stack runs in between) the next one's page is rarely there.
/// Measured with the echo benchmark served side by side with itself (`bench/run.sh`, part
/// `ab`'s method): prefetching costs 0.5 % more CPU per request at 10 connections, saves
/// 1.5 % at 100 and 4-8 % at 1,000.
const PREFETCH_ABOVE: u64 = 64;

/// The nearest run-queue position whose stack page `prefetch` touches, so that its page walk
/// is over long before the resume (the pages of positions `TOUCH_AT .. TOUCH_AT +
/// TOUCH_BATCH` are touched together, every `TOUCH_BATCH` pops). Measured with part `ab`'s method against touching it only
/// with the frames (position 0), at 1,000 connections on a 2-core KVM guest: position 1
/// saved 1.5 % of the CPU per request, 2 another 1.5 %, 5 another 0.5 % (four pairs each);
/// at 100 and 9,000 connections 5 was level with position 0.
const TOUCH_AT: usize = 5;

/// How many stacks' pages `prefetch` touches at once, every this many pops. A prefetch whose
/// page is not in the TLB holds up the instructions after it until its page walk is done,
/// but the walks of prefetches issued back to back overlap (the core has several page
/// walkers), so touching eight pages together costs about one walk's wait instead of eight.
/// Measured with part `ab`'s method against one page per pop (the build before), on the
/// 2-core Intel KVM guest: −1.3 % and −2.6 % CPU per request at 1,000 connections (eight
/// pairs each), −0.8 % at 100 and at 9,000; sixteen at once was no better than eight.
const TOUCH_BATCH: usize = 8;

/// A cache-line prefetch hint; a no-op where there is none.
#[inline(always)]
pub(crate) fn prefetch_line(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it never faults, whatever the address (an unmapped one,
    // such as a guard page, is ignored), and reads nothing into the program.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// A fair round looks at the netpoller only while the run queue holds at most this many
/// coroutines (or once `IO_POLL_MAX_TICKS` rounds have passed without a look). Looking on
/// every fair round, a saturated server moved nearly every ready connection into the run
/// queue (a median of 830 queued at 1,000 echo connections, 3,000 at 9,000), so each
/// woken coroutine's records, touched by the wake, had left the cache before its resume a
/// few thousand requests later; kept short, the rest wait in the kernel's ready list, as
/// they do for a hand-written epoll loop. Measured with part `ab`'s method on the Emerald
/// Rapids guest (docs/benchmarks.md): 256 against looking every fair round, 1.00×, 1.01×
/// and 0.93× the CPU per request at 100, 1,000 and 9,000 connections; 64 against 256,
/// 1.00×, 0.98×, 1.00×; 16 against 64, level; 64 against every fair round, two runs,
/// 1.00× and 1.01×, 0.99× and 0.99×, 0.95× and 0.93× (cheaper in 10 of 10 pairs at 9,000).
/// Not empty: the prefetch (`prefetch`) needs a queue some fifteen deep.
const IO_QUEUE_SHORT: usize = 64;

/// The longest a busy worker goes without looking at its netpoller, in rounds: with more
/// than `IO_QUEUE_SHORT` coroutines that only yield, the queue never gets short, and I/O
/// would otherwise wait until they stop (`tests/long_queue_io.rs`). 64 fair ticks.
const IO_POLL_MAX_TICKS: u32 = 64 * FAIRNESS_TICK;

/// How far above a suspended coroutine's stack pointer `Local::prefetch` asks for its
/// frames' lines before the resume. Measured with the echo server's 32 KiB buffer moved onto
/// its coroutine's stack, so that its `Frame` sits 33 KiB up: with 4 KiB (the bound before)
/// that server cost 2–5 % more CPU per request than the heap-buffer one, with 1 KiB 1–3 %;
/// the heap-buffer server, whose frames span under 1 KiB, is level either way.
const FRAMES_PREFETCHED: usize = 1024;

/// How long a worker with nothing to do keeps looking before it sleeps, while an answer
/// can come (`Local::spin_for_work`), and the pauses between two looks. A `pause` takes
/// about 11 ns on the Ice Lake guest (it varies several-fold between CPU models), so a
/// look every 4 sees a hand-over some 150 ns sooner on average than one every 32: a
/// ping-pong between two workers (`sync_coronet pingpong2`) took less time per round trip
/// in 7 of 8 runs side by side (median about 1.0 against 1.7 µs); the mutex rows level.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(20);
const SPIN_PAUSES: u32 = 4;

/// How often a run of yields polls the netpoller at most (`look_after_yield`).
const IO_AFTER_YIELD: Duration = Duration::from_millis(1);

/// Idle stacks a worker keeps mapped for reuse.
const STACKS_CACHED: usize = 1024;

impl Local {
    fn run(&self) -> ! {
        loop {
            let tick = self.tick.get().wrapping_add(1);
            self.tick.set(tick);
            let fair = tick % FAIRNESS_TICK == 0;
            let yielded = self.yielded.replace(false);
            if fair {
                if self.io_due(tick) {
                    self.poll_io(0);
                }
                self.fire_timers();
                self.drain_remote();
            } else if yielded {
                self.look_after_yield(tick);
            }
            // Unstarted and ready coroutines take turns while both are waiting: a busy run
            // queue must not hold back the handler of a connection just accepted, nor a
            // burst of spawns the coroutines already running. Not on a fair round, which
            // belongs to the run queue's head (runq.rs's bound counts on every one of them).
            if tick % 2 == 0 && !fair {
                if let Some(t) = self.pop_unstarted() {
                    self.found_work(false);
                    self.start(t);
                    continue;
                }
            }
            // On a fair round the queue's head goes before runnext, so a ping-pong pair
            // cannot keep the rest waiting forever.
            if let Some(t) = self.next_ready(fair) {
                // remote wakes, timers and I/O all come back here through the run queue
                self.found_work(false);
                self.resume(t);
                continue;
            }
            if self.drain_remote() || self.fire_timers() {
                continue;
            }
            if let Some(t) = self.pop_unstarted() {
                self.found_work(false);
                self.start(t);
                continue;
            }
            if self.poll_io(0) > 0 {
                continue;
            }
            if let Some(t) = self.steal() {
                self.found_work(true);
                self.start(t);
                continue;
            }
            if self.spin_for_work() {
                continue;
            }
            self.sleep();
            self.spin_pays.set(self.shared.inbox.remote_flagged());
            self.handed_off.set(false);
        }
    }

    /// Go's spinning M, when it pays: once another worker has woken one of our coroutines
    /// out of a sleep (a lock handed over, a value sent), more such wake-ups tend to follow,
    /// and waking a thread out of `epoll_wait` costs far more than the wait: an eventfd
    /// write and tens of µs for a guest's vCPU. So an idle worker then keeps looking for up
    /// to `SPIN_BEFORE_SLEEP` first, at flags and queue lengths only, while an answer can
    /// come: another worker is awake, or this one has woken a coroutine of another worker
    /// since its last sleep (`handed_off`), which is waking up to run it. Without the
    /// second, two coroutines on two workers passing a value back and forth fell into
    /// sleeping by turns once one had slept: each handed off to a partner not yet awake,
    /// found no worker awake, and slept (1.3–11 µs per round trip, most of it in sleeps and
    /// rings; with it, 0.8–2.5 µs: `sync_coronet pingpong2`, docs/benchmarks.md section 3).
    /// Only after a remote wake: spinning before every sleep cost a two-worker echo server
    /// at 10 connections 60 % more CPU per request (its wake-ups are its own fds'). The
    /// look in `Sleepers::sleep` still decides whether to sleep, so the handshake (and its
    /// loom models) is unchanged; the spin only delays its start. True if something turned
    /// up; the loop takes it.
    fn spin_for_work(&self) -> bool {
        let rt = self.rt;
        let n = rt.workers.len();
        let answer_due = |me: &Local| me.handed_off.get() || rt.sleepers.another_awake(n);
        if !self.spin_pays.get() || !answer_due(self) {
            return false;
        }
        let start = Instant::now();
        loop {
            for _ in 0..SPIN_PAUSES {
                std::hint::spin_loop();
            }
            // Our own `pinned` queue too: a `spread` placed here from another thread rings
            // no bell while we are awake (`push_pinned`'s wake finds us not sleeping), so
            // unseen it would wait out the whole spin.
            if self.shared.inbox.remote_flagged()
                || self.shared.pinned.len() > 0
                || Sleepers::any_unstarted(&rt.workers)
            {
                return true;
            }
            if start.elapsed() >= SPIN_BEFORE_SLEEP || !answer_due(self) {
                self.spin_pays.set(false);
                return false;
            }
        }
    }

    /// After a yield: the timers, the remote queue, and the netpoller if this has not polled
    /// it for `IO_AFTER_YIELD`. A coroutine that yields has run a while (its I/O budget
    /// spent, `io::copy`'s pacing, `yield_now` in a long loop), and while yielders keep the
    /// run queue from emptying, those were looked at only on fair rounds, 61 of their
    /// slices apart (found by an audit: a 2 ms sleep beside a coroutine yielding every
    /// 10 ms woke 600 ms late; a `sendfile` copy's pacing held timers back by half a
    /// second). Go's scheduler looks at timers on every turn, and its `sysmon` polls the
    /// network every 10 ms at most. Out of line: only yields pay for it, and a spin of
    /// yields pays flag checks and a clock read or two per turn (`fire_timers` reads it too
    /// while timers are armed), a syscall once a millisecond.
    #[cold]
    #[inline(never)]
    fn look_after_yield(&self, tick: u32) {
        self.fire_timers();
        self.drain_remote();
        let now = timers::nanos(Instant::now());
        if now.saturating_sub(self.yield_polled_at.get()) >= IO_AFTER_YIELD.as_nanos() as u64
            && self.io_due(tick)
        {
            self.yield_polled_at.set(now);
            self.poll_io(0);
        }
    }

    /// The next coroutine this worker may start: its `same_worker` ones and its stealable
    /// ones take turns, so that neither kind can hold the other back for ever.
    fn pop_unstarted(&self) -> Option<NewTask> {
        let (pinned, fresh) = (&self.shared.pinned, self.shared.inbox.fresh());
        if pinned.len() == 0 {
            return fresh.pop();
        }
        let stealable_first = self.stealable_first.get();
        self.stealable_first.set(!stealable_first);
        if stealable_first {
            fresh.pop().or_else(|| pinned.pop())
        } else {
            pinned.pop().or_else(|| fresh.pop())
        }
    }

    /// Whether a fair round looks at the netpoller: only while the run queue is short, or
    /// once it has gone `IO_POLL_MAX_TICKS` rounds without a look (see `IO_QUEUE_SHORT`).
    /// Timers and remote wake-ups are looked at on every fair round all the same.
    fn io_due(&self, tick: u32) -> bool {
        self.runq.borrow().len() <= IO_QUEUE_SHORT
            || tick.wrapping_sub(self.io_polled_at.get()) >= IO_POLL_MAX_TICKS
    }

    /// Pops the run queue. A function, not an inline `borrow_mut()`: the borrow must end
    /// before the caller resumes the coroutine.
    fn next_ready(&self, fair: bool) -> Option<Arc<Task>> {
        let mut runq = self.runq.borrow_mut();
        let t = runq.pop(fair);
        if runq.peek_nth(0).is_some() && self.live() > PREFETCH_ABOVE {
            self.prefetch(&runq);
        }
        t
    }

    /// Started, unfinished coroutines of this worker (its own counters, plain loads).
    fn live(&self) -> u64 {
        let c = &self.shared.counters;
        let started = c.started.load(Ordering::Relaxed);
        started.saturating_sub(c.finished.load(Ordering::Relaxed))
    }

    /// Asks the CPU to start loading what the coming resumes will touch, while the coroutine
    /// just popped runs. With a thousand connections each coroutine's stack has left the
    /// cache by its next turn, and its resume walks back up some 600 bytes of frames (echo:
    /// read → io → wait → switch); fetched on demand, that is a cache miss per line, one
    /// after another.
    ///
    /// Finding those frames takes two dependent loads (record → slot → stack pointer), and
    /// on demand each would be a miss of its own, so the work is pipelined over the coming
    /// pops, each stage using what the stage before fetched one round earlier:
    ///
    /// ```text
    ///  queue position   TOUCH_AT + B + 1   TOUCH_AT + B   TOUCH_AT + B - 1 … TOUCH_AT   0
    ///  prefetch         its record         its slot       its stack's page and its      its frames and
    ///                                                     read buffer's, B at once      its PollDesc
    /// ```
    ///
    /// (B = `TOUCH_BATCH`.) The stack's page gets a stage of its own, well ahead: each stack
    /// top is a page of its own, and past a few hundred coroutines its translation has left
    /// the TLB too. A prefetch whose page is not in the TLB holds up the instructions after
    /// it until the page walk is done (profiles put most of this function's samples on that
    /// one instruction, wherever it stands), so the frames' prefetch right before the resume
    /// would wait for the walk before its lines could even be asked for; and the pages are
    /// touched B at a time, every B pops, so that B walks share one wait. The queue may
    /// change in between (a fair pop, a new `runnext`); a prefetch that guessed wrong costs
    /// a wasted line, never a wrong result.
    ///
    /// A coroutine parked in a stream read has the kernel copy its bytes into the read's
    /// buffer first thing after its resume, and that buffer (32 KiB per handler in echo, as
    /// in Go's `io.Copy`) is a page of its own as well, cold by then: the copy waited for its
    /// page walk inside the kernel. So the read notes its buffer (`note_read_buf`) and the
    /// buffer's page is touched with the stack's; the wait notes its `PollDesc`
    /// (`note_wait`), whose slot the resumed wait reads first. Measured side by side with
    /// the build before (part `ab`, docs/benchmarks.md): the buffer's page saved 2 % of the
    /// CPU per echo request at 1,000 connections and 1 % at 9,000; the `PollDesc` line with
    /// `Poller::poll`'s own prefetches another 1–2 %.
    fn prefetch(&self, runq: &RunQueue<Arc<Task>>) {
        let coros = self.coros.borrow();
        // Every element passes positions `TOUCH_AT + TOUCH_BATCH + 1` (its record) and
        // `TOUCH_AT + TOUCH_BATCH` (its slot) one pop each, then spends `TOUCH_BATCH` pops in
        // the window below, during exactly one batch.
        if let Some(t) = runq.peek_nth(TOUCH_AT + TOUCH_BATCH + 1) {
            t.prefetch();
        }
        // Only the address: reading the slot (even its `Option` tag) would wait for the very
        // line being asked for.
        if let Some(t) = runq.peek_nth(TOUCH_AT + TOUCH_BATCH) {
            if matches!(t.home, Home::Coroutine { .. }) {
                prefetch_line(coros.as_ptr().wrapping_add(t.key()) as usize);
            }
        }
        let pops = self.pops.get().wrapping_add(1);
        self.pops.set(pops);
        if pops as usize % TOUCH_BATCH == 0 {
            // Gather the stack pointers and read buffers first, then touch their pages back
            // to back, so that the page walks run side by side.
            let mut sps = [0usize; 2 * TOUCH_BATCH];
            for i in 0..TOUCH_BATCH {
                let Some(t) = runq.peek_nth(TOUCH_AT + i) else {
                    break;
                };
                if matches!(t.home, Home::Coroutine { .. }) {
                    if let Some(Some(slot)) = coros.get(t.key()) {
                        sps[2 * i] = slot.sp;
                        sps[2 * i + 1] = slot.buf;
                    }
                }
            }
            for sp in sps {
                if sp != 0 {
                    prefetch_line(sp);
                }
            }
        }
        let Some(next) = runq.peek_nth(0) else { return };
        if !matches!(next.home, Home::Coroutine { .. }) {
            return;
        }
        let Some(Some(slot)) = coros.get(next.key()) else {
            return;
        };
        // The line of the slot it parked on: `poll_io` touched it a batch of wake-ups ago,
        // and the kernel's work for those has pushed it out since.
        if slot.desc != 0 {
            prefetch_line(slot.desc);
        }
        if slot.sp == 0 {
            return;
        }
        // From just below the suspended frame (the switch saved registers there) up to the
        // body's `Frame`, at most `FRAMES_PREFETCHED` bytes: the frames a resume returns
        // through first (echo's, the read's and the wait's: about 600 bytes). A handler
        // with big locals (a buffer on its stack) would otherwise have 64 lines asked for
        // where it touches a dozen.
        let top = (slot.frame as usize).clamp(slot.sp, slot.sp + FRAMES_PREFETCHED);
        let mut line = (slot.sp - 128) & !63;
        while line < top {
            prefetch_line(line);
            line += 64;
        }
    }

    /// Removes the timers other threads cancelled (`cancel_timer_elsewhere`).
    fn apply_cancels(&self) {
        let ids = {
            let mut q = lock(&self.shared.cancels);
            self.shared.inbox.clear_cancels_flag();
            std::mem::take(&mut *q)
        };
        let removed: Vec<Action> = {
            let mut timers = self.timers.borrow_mut();
            ids.iter()
                .filter_map(|&id| timers.cancel_if(id, is_callback))
                .collect()
        };
        rt_log!(
            Trace,
            "worker {}: {} of {} timer(s) cancelled elsewhere removed",
            self.shared.index,
            removed.len(),
            ids.len()
        );
        // dropped after the heap is released: a callback's captures may wake tasks
        drop(removed);
    }

    fn drain_remote(&self) -> bool {
        let woken = self.shared.inbox.drain_remote();
        if woken.is_empty() {
            return false;
        }
        self.runq.borrow_mut().extend(woken);
        true
    }

    fn fire_timers(&self) -> bool {
        let mut fired = false;
        if self.shared.inbox.cancels_flagged() {
            self.apply_cancels();
        }
        if self.timers.borrow().is_empty() {
            return false;
        }
        let now = timers::nanos(Instant::now());
        loop {
            let next = self.timers.borrow_mut().pop_expired_at(now);
            let Some((_, action)) = next else { break };
            // The heap is not borrowed here: a callback may arm the next tick.
            match action {
                Action::Unpark(task) => fired |= self.fire_park_timer(task, now),
                Action::Call(f) => {
                    rt_log!(Trace, "timer fire: callback");
                    f();
                    fired = true;
                }
            }
        }
        fired
    }

    /// See [`ParkTimer`]: makes sure `task`'s entry fires at or before `want`.
    fn arm_park_timer(&self, task: &Arc<Task>, want: u64) {
        let key = task.key();
        let mut table = self.park_timers.borrow_mut();
        if table.len() <= key {
            table.resize(key + 1, ParkTimer::NONE);
        }
        let pt = &mut table[key];
        pt.want = want;
        let moved = match pt.id() {
            // Fires in time; if early, it re-arms itself for what is wanted then.
            Some(_) if pt.at <= want => return,
            Some(id) => self.timers.borrow_mut().reset_at(id, want),
            None => false,
        };
        // (A record naming a dead entry cannot happen; if it did, a fresh entry keeps the
        // park from waiting past its deadline.)
        debug_assert!(
            moved || pt.id().is_none(),
            "a park timer's record names a dead entry"
        );
        if !moved {
            let mut heap = self.timers.borrow_mut();
            pt.set_id(Some(heap.insert_at(want, Action::Unpark(task.clone()))));
        }
        pt.at = want;
    }

    /// `task`'s park timer came due at `now`; true if it woke the coroutine.
    fn fire_park_timer(&self, task: Arc<Task>, now: u64) -> bool {
        let mut table = self.park_timers.borrow_mut();
        let pt = &mut table[task.key()];
        if pt.want == NOT_WAITING {
            pt.set_id(None);
            drop(table);
            rt_log!(
                Trace,
                "timer of coroutine {} dropped: no deadline waits",
                task.id
            );
            return false;
        }
        if pt.want > now {
            let who = task.id;
            let id = self
                .timers
                .borrow_mut()
                .insert_at(pt.want, Action::Unpark(task));
            pt.set_id(Some(id));
            pt.at = pt.want;
            // The logger is user code: no borrow of ours may be held while it runs.
            drop(table);
            rt_log!(
                Trace,
                "timer of coroutine {who} moved to its later deadline"
            );
            return false;
        }
        pt.set_id(None);
        drop(table);
        rt_log!(Trace, "timer fire: coroutine {}", task.id);
        task.unpark();
        true
    }

    /// Polls this worker's epoll and unparks the waiters of ready fds.
    fn poll_io(&self, timeout_ms: i32) -> usize {
        if !self.shared.poller.has_registrations() && timeout_ms == 0 {
            return 0;
        }
        self.io_polled_at.set(self.tick.get());
        bump(&self.shared.counters.epoll_waits);
        let mut events = self.events.borrow_mut();
        match self.shared.poller.poll(&mut events, timeout_ms) {
            Ok(n) => n,
            Err(e) => {
                rt_log!(
                    Error,
                    "worker {}: epoll_wait failed: {e}",
                    self.shared.index
                );
                0
            }
        }
    }

    fn steal(&self) -> Option<NewTask> {
        let me = self.shared.index;
        let (first, victim, taken) = self.rt.sleepers.steal(&self.rt.workers, me)?;
        rt_log!(
            Trace,
            "worker {me} stole {taken} new coroutine(s) from worker {victim}"
        );
        bump(&self.shared.counters.steals);
        Some(first)
    }

    /// See [`Sleepers::found_work`](super::idle::Sleepers::found_work).
    #[inline]
    fn found_work(&self, stole: bool) {
        let rt = self.rt;
        rt.sleepers
            .found_work(&rt.workers, self.shared.index, &self.searching, stole);
    }

    /// Sleeps in `epoll_wait` unless work turns up (the handshake of `idle.rs`), until the
    /// next timer's deadline.
    fn sleep(&self) {
        // The log line before the last look (so it may announce a sleep that the look then
        // skips): the logger is user code, and may wake one of our coroutines (a send to a
        // writer coroutine) or arm a timer, which the look and the timeout below then see.
        if crate::trace_on() {
            // Into a local first: the heap's borrow must end before the logger runs.
            let timeout = epoll_timeout(self.timers.borrow().next_deadline(), Instant::now());
            rt_log!(
                Trace,
                "worker {} sleeps in epoll_wait ({timeout} ms)",
                self.shared.index
            );
        }
        let rt = self.rt;
        rt.sleepers.sleep(
            &rt.workers,
            self.shared.index,
            &self.searching,
            || self.runq.borrow().peek_nth(0).is_some() || self.shared.pinned.len() > 0,
            || {
                let timeout = epoll_timeout(self.timers.borrow().next_deadline(), Instant::now());
                self.poll_io(timeout);
            },
        );
    }

    /// Starts a new coroutine on this worker; from here on it belongs to this worker.
    fn start(&self, nt: NewTask) {
        let NewTask {
            task,
            body,
            stack_size,
            stack,
        } = nt;
        let stack = match stack {
            Some(s) => Ok(s),
            None => self.stacks.borrow_mut().get(stack_size),
        };
        let stack = match stack {
            Ok(s) => s,
            Err(e) => {
                // `go` could not reserve a stack up front; the coroutine fails as if it
                // had panicked with the reason (its JoinHandle gets it), the runtime goes on.
                rt_log!(Error, "coroutine {} not started: {e}", task.id);
                body.run(Some(e));
                return;
            }
        };
        let guard = stack.guard().start;
        // The `live` entry is made only once the coroutine (whose body removes it) exists;
        // the lock is held meanwhile, which costs nothing extra: creating it writes a few words.
        let mut live = lock(&self.shared.live);
        let entry = live.vacant_entry();
        let key = entry.key();
        task.started(self.shared.index, key);
        let me = task.clone();
        let co = Coroutine::with_stack(stack, move |y: &Yielder<(), Suspend>, ()| {
            // Record where our yielder and our own record live, so `suspend` and
            // `with_current` can find them; both stay in this frame until the body returns.
            let frame = Frame { yielder: y, me };
            let _registered = Registered(key);
            with_local(|l| l.frame.set(&frame));
            body.run(None);
            // Nothing may look at `frame` once it is gone: clear it first.
            with_local(|l| l.frame.set(ptr::null()));
        });
        entry.insert(LiveTask(Arc::as_ptr(&task)));
        drop(live);
        {
            let mut coros = self.coros.borrow_mut();
            if coros.len() <= key {
                coros.resize_with(key + 1, || None);
            }
            coros[key] = Some(Slot {
                co,
                frame: ptr::null(),
                guard,
                sp: 0,
                buf: 0,
                desc: 0,
            });
        }
        bump(&self.shared.counters.started);
        rt_log!(
            Trace,
            "worker {} starts coroutine {} ({})",
            self.shared.index,
            task.id,
            task.display_name()
        );
        self.resume(task);
    }

    /// Runs `task` until it parks, yields or returns.
    fn resume(&self, task: Arc<Task>) {
        let key = task.key();
        task.set_state(State::Running);
        bump(&self.shared.counters.switches);
        let result = {
            // The slot is resumed in place, `coros` borrowed across the resume: only this
            // scheduler loop starts and finishes coroutines, never code running inside one, so
            // nothing needs `coros` meanwhile — and if something did, the RefCell would panic
            // rather than let the Vec move under a running coroutine.
            let mut coros = self.coros.borrow_mut();
            let slot = coros[key]
                .as_mut()
                .unwrap_or_else(|| panic!("coroutine {} resumed after it finished", task.id));
            self.frame.set(slot.frame);
            // SAFETY: `task` (which owns the name) is kept alive by our local `task` until
            // after `leave()`.
            unsafe { stack::enter(stack::guard_at(slot.guard), task.id, task.name()) };
            let result = panic::catch_unwind(AssertUnwindSafe(|| slot.co.resume(())));
            stack::leave();
            slot.frame = self.frame.replace(ptr::null());
            slot.sp = self.suspended_sp.replace(0);
            slot.buf = self.read_buf.replace(0);
            slot.desc = self.wait_desc.replace(0);
            result
        };
        match result {
            Ok(CoroutineResult::Yield(Suspend::Park)) => {}
            Ok(CoroutineResult::Yield(Suspend::Yield)) => {
                task.set_state(State::Runnable);
                self.runq.borrow_mut().push_back(task);
                self.yielded.set(true);
            }
            Ok(CoroutineResult::Return(())) => self.finish(task, key),
            Ok(CoroutineResult::Yield(Suspend::Exit(code))) => {
                rt_log!(
                    Debug,
                    "coroutine {} ends the process with status {code}",
                    task.id
                );
                super::EXITING.store(true, Ordering::Relaxed);
                // Flushes std's stdout, runs this thread's thread-local destructors and the
                // atexit handlers, as the end of a Rust `main` does; on this stack, not the
                // coroutine's (`exit_coroutine`).
                std::process::exit(code)
            }
            Err(payload) => {
                // The body catches user panics, and those of dropping what it owns, itself;
                // reaching here is a runtime bug, and the unwinding ends at `AbortOnUnwind`.
                rt_log!(Error, "coroutine {} escaped its panic guard", task.id);
                self.finish(task, key);
                panic::resume_unwind(payload);
            }
        }
    }

    fn finish(&self, task: Arc<Task>, key: usize) {
        let slot = self.coros.borrow_mut()[key]
            .take()
            .expect("a finished coroutine has a slot");
        // Its park timer, if still armed, would hold the record until it came due.
        let timer = self
            .park_timers
            .borrow_mut()
            .get_mut(key)
            .map(|pt| std::mem::replace(pt, ParkTimer::NONE));
        if let Some(id) = timer.and_then(|pt| pt.id()) {
            let entry = self.timers.borrow_mut().cancel(id);
            drop(entry);
        }
        task.set_state(State::Finished);
        bump(&self.shared.counters.finished);
        if slot.co.done() {
            self.stacks.borrow_mut().put(slot.co.into_stack());
        }
        rt_log!(Trace, "coroutine {} finished", task.id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    /// Parks this coroutine with an hour's deadline that a send beats: its park timer's
    /// entry stays armed afterwards.
    fn park_beaten_by_a_send() {
        let (tx, rx) = crate::chan::bounded::<u8>(0);
        let sender = crate::go(move || {
            crate::time::sleep(Duration::from_millis(20));
            tx.send(7).unwrap();
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(3600)), Ok(7));
        sender.join().unwrap();
    }

    /// A coroutine placed on this worker's `pinned` queue while it spins before a sleep (a
    /// `spread` from another thread, whose wake-up finds the worker awake and rings
    /// nothing) ends the spin: without the look at `pinned`, the spin ran its whole length
    /// (`SPIN_BEFORE_SLEEP`) and returned false, and the coroutine started only after it.
    #[test]
    fn a_pinned_coroutine_ends_the_spin_before_a_sleep() {
        crate::run(|| {
            // queued on this worker's `pinned`, where nothing else looks while we run
            let child = crate::Spawn::new().same_worker().go(|| 42);
            let found = super::with_local(|l| {
                let saved = (l.spin_pays.replace(true), l.handed_off.replace(true));
                let found = l.spin_for_work();
                l.spin_pays.set(saved.0);
                l.handed_off.set(saved.1);
                found
            })
            .unwrap();
            assert!(
                found,
                "the spin did not see the coroutine queued on its own worker"
            );
            assert_eq!(child.join().unwrap(), 42);
        });
    }

    /// A callback timer's cancel takes out callbacks only: an id that aliases a park timer
    /// (its slot reused 2^32 times while the handle was kept) must leave the entry armed.
    #[test]
    fn a_callback_cancel_never_removes_a_park_timer() {
        crate::run(|| {
            park_beaten_by_a_send();
            let me = super::current_task().unwrap();
            let id = super::with_local(|l| l.park_timers.borrow()[me.key()].id())
                .unwrap()
                .expect("the park timer stays armed after its park");
            assert!(!super::cancel_timer(id));
            super::cancel_timer_elsewhere(super::worker_index().unwrap(), id);
            super::with_local(|l| l.apply_cancels());
            assert!(super::with_local(|l| l.timers.borrow().contains(id)).unwrap());
            // and it still serves a park: this one times out
            let (_tx, rx) = crate::chan::bounded::<u8>(0);
            let t0 = std::time::Instant::now();
            assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
            assert!(t0.elapsed() < Duration::from_secs(10));
        });
    }

    /// A park timer left armed by a park that a wake-up beat holds the coroutine's record;
    /// the coroutine's end must take it out of the heap, not leave it there (and the record
    /// alive) until the deadline, an hour on.
    #[test]
    fn a_finished_coroutine_leaves_no_park_timer_behind() {
        let me = crate::run(|| {
            park_beaten_by_a_send();
            crate::current()
        });
        // The JoinHandle is gone. The worker may still be finishing the coroutine (its own
        // frame holds the record until then); after that only the timer could.
        let give_up = std::time::Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&me.0) > 1 && std::time::Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(Arc::strong_count(&me.0), 1);
    }
}
