//! Coroutine stacks: mapping them, pooling them per worker, and reporting their overflow.
//!
//! Every coroutine runs on a [`Stack`] of its own, mmap'd with a guard page below it:
//!
//! ```text
//!   high addresses
//!   base() ─────────────► ┌───────────────────────────┐ ◄─ the first frame starts here
//!                         │ usable stack, RW          │    size() bytes, growing down ↓
//!                         │             ↓             │
//!   guard().end ────────► ├───────────────────────────┤
//!                         │ guard page                │    one page: touching it faults
//!   limit() ────────────► └───────────────────────────┘
//!   = guard().start              (the next stack of a batch begins at base())
//!   low addresses
//! ```
//!
//! On Linux 6.13 and later the guard is a guard marker (`MADV_GUARD_INSTALL`) inside one
//! read-write mapping that holds a batch of stacks side by side, so a burst of spawns costs an
//! `mmap` per 31 default stacks and one of `vm.max_map_count`'s mappings per batch; before,
//! each stack is a mapping of its own made read-write above a PROT_NONE guard, which the kernel
//! keeps as two mappings (see [`Guards`]). Either way each worker keeps a [`StackPool`] of idle
//! stacks: after warm-up, spawning maps nothing.
//!
//! A coroutine that runs off the bottom of its stack touches the guard page (rustc probes every
//! page of a large frame, so Rust code cannot jump over it). The SIGSEGV handler installed by
//! [`install_overflow_handler`] sees that the address is the guard of the coroutine this thread
//! is running (recorded by [`enter`]) and, as std does for threads, prints
//!
//! ```text
//! coroutine 'deep' (id 7) has overflowed its stack
//! fatal runtime error: stack overflow, aborting
//! coronet: a coroutine's stack does not grow; give this one a larger stack with …
//! ```
//!
//! then aborts. So does a signal whose handler's frame did not fit on the coroutine's stack
//! (a handler installed without `SA_ONSTACK`), with a line that says so. Any other fault
//! goes to the handler installed before ours (std's, which reports overflows of thread
//! stacks) or kills the process as it would have without us.

use std::cell::Cell;
use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::io::{self, Write as _};
use std::mem::{self, ManuallyDrop};
use std::ops::Range;
use std::sync::atomic::{compiler_fence, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Once, OnceLock};
use std::{ptr, slice};

use corosensei::stack::valgrind::ValgrindStackRegistration;
use corosensei::stack::{StackPointer, MIN_STACK_SIZE};

/// An mmap'd coroutine stack: [guard page][usable stack (RW)], growing down.
///
/// # Invariant
///
/// `[limit, base)` lies inside `region`, and no other `Stack` overlaps it: this value alone
/// uses, reprotects or discards those bytes, and the region is unmapped only when its last
/// stack is gone. Its lowest page (the guard, `[limit, limit + page)`) faults when touched — a
/// guard marker, or a PROT_NONE mapping of its own (see [`Guards`]) — and lies below the
/// usable bytes, which are read-write. Both ends are page-aligned, hence aligned to
/// corosensei's `STACK_ALIGNMENT`.
#[derive(Debug)]
pub(crate) struct Stack {
    /// One past the highest usable byte: the stack pointer starts here and moves down.
    base: StackPointer,
    /// Start of the guard page: corosensei's `limit` includes guards.
    limit: StackPointer,
    /// Tells valgrind the stack pointer may legitimately move into this range (a no-op on real
    /// hardware). Dropped by hand, before the memory it describes is discarded.
    valgrind: ManuallyDrop<ValgrindStackRegistration>,
    /// The mapping this stack was carved from, shared with the stacks carved beside it.
    region: Arc<Region>,
}

// SAFETY: `limit` includes the guard page, which faults when touched; the usable part is at
// least SMALLEST >= MIN_STACK_SIZE bytes, and both ends are page-aligned (see the `Stack` invariant).
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> StackPointer {
        self.base
    }

    fn limit(&self) -> StackPointer {
        self.limit
    }
}

/// One anonymous private mapping that holds one or more stacks side by side; the last
/// [`Stack`] carved from it unmaps it.
#[derive(Debug)]
struct Region {
    start: usize,
    len: usize,
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the region's stacks are all gone (this is the last `Arc`), so nothing runs on
        // or points into `[start, start + len)`, which was mapped by `map_region` and is
        // unmapped only here.
        let rc = unsafe { libc::munmap(self.start as *mut c_void, self.len) };
        if rc != 0 {
            // ENOMEM: our range sits inside a mapping the kernel merged with its neighbours
            // (same flags), and cutting it out would pass vm.max_map_count. Give the pages
            // back at least, which never splits; only the address range stays behind.
            // SAFETY: as above, nothing uses the range any more.
            unsafe { libc::madvise(self.start as *mut c_void, self.len, libc::MADV_DONTNEED) };
        }
    }
}

/// How guard pages are made, decided by the first stack the process maps.
///
/// Since Linux 6.13, `madvise(MADV_GUARD_INSTALL)` turns pages of a mapping into guards that
/// fault when touched, without splitting the mapping: a batch of stacks is then one mapping
/// (one `mmap`, one of `vm.max_map_count`'s 65,530 by default) instead of two per stack, and
/// no `mprotect` splits anything. On older kernels (EINVAL) each stack is a PROT_NONE mapping
/// made read-write above its guard, which the kernel keeps as two mappings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Guards {
    Unknown = 0,
    /// Guard markers: stacks are carved side by side out of one mapping.
    Markers = 1,
    /// A PROT_NONE mapping per guard: one stack per mapping.
    Mappings = 2,
}

static GUARDS: AtomicU8 = AtomicU8::new(Guards::Unknown as u8);

fn guards() -> Guards {
    match GUARDS.load(Ordering::Relaxed) {
        1 => Guards::Markers,
        2 => Guards::Mappings,
        _ => Guards::Unknown,
    }
}

/// `MADV_GUARD_INSTALL` (Linux 6.13, `include/uapi/asm-generic/mman-common.h`); the libc
/// crate does not have it yet.
const MADV_GUARD_INSTALL: c_int = 102;

/// The most bytes one batch maps, and the most stacks in it: 31 default (256 KiB) stacks,
/// a single one from 4 MiB up. Only the pages a coroutine touches become memory, but a
/// pooled stack keeps its whole batch mapped (address space, page tables and, under strict
/// overcommit, commit charge), so batches stay small enough that a worker's full pool of
/// stacks from scattered batches is 10 GiB of address space at most (1,280 × 8 MiB), and
/// large enough that a million default stacks need about 32,000 mappings (under the default
/// limit).
const BATCH_BYTES: usize = 8 << 20;
const BATCH_MAX: usize = 64;

/// Mappings made for stacks since the process started (each holds a batch, or one stack).
static MAPPINGS_MADE: AtomicU64 = AtomicU64::new(0);

/// How many mappings the runtime has made for coroutine stacks (`Stats::stack_mappings`).
pub(crate) fn mappings_made() -> u64 {
    MAPPINGS_MADE.load(Ordering::Relaxed)
}

impl Stack {
    /// Maps a stack with at least `size` usable bytes (rounded up to pages, at least
    /// [`SMALLEST`]) plus one guard page.
    pub(crate) fn new(size: usize) -> io::Result<Stack> {
        let mut one = Vec::with_capacity(1);
        Stack::map(size, 1, &mut one)?;
        Ok(one.pop().expect("map made no stack"))
    }

    /// Maps up to `most` (at least one) stacks of `size` usable bytes, as [`Stack::new`]
    /// rounds it, and pushes them onto `out`: side by side in one mapping where the kernel
    /// has guard markers, else one stack in a mapping of its own. Returns how many it made.
    pub(crate) fn map(size: usize, most: usize, out: &mut Vec<Stack>) -> io::Result<usize> {
        let len = mapped_size(size)?;
        let usable = len - page_size();
        if guards() != Guards::Mappings {
            let count = (BATCH_BYTES / len).clamp(1, BATCH_MAX).min(most.max(1));
            let made = match Stack::map_with_markers(len, count, out) {
                // No room for a batch: one stack may still fit.
                Err(e) if count > 1 && e.raw_os_error() == Some(libc::ENOMEM) => {
                    Stack::map_with_markers(len, 1, out)
                }
                made => made,
            };
            match made {
                Ok(0) => {} // no guard markers here: a mapping of its own, below
                Ok(n) => return Ok(n),
                Err(e) => return Err(map_error(e, usable)),
            }
        }
        Stack::map_alone(len, out).map_err(|e| map_error(e, usable))?;
        Ok(1)
    }

    /// One read-write mapping for `count` stacks of `len` bytes (guard included), each
    /// stack's lowest page made a guard marker; pushes them onto `out` and returns how many.
    /// Ok(0) when the kernel cannot make markers in it (before Linux 6.13, or a locked
    /// mapping): nothing is left mapped, and the caller maps the stack on its own.
    fn map_with_markers(len: usize, count: usize, out: &mut Vec<Stack>) -> io::Result<usize> {
        let total = len.checked_mul(count).ok_or(io::ErrorKind::OutOfMemory)?;
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let region = Arc::new(map_region(total, rw)?);
        let page = page_size();
        for i in 0..count {
            let start = region.start + i * len;
            // SAFETY: `[start, start + page)` lies in the mapping just made, and no stack has
            // been carved there yet; a guard marker only makes touching those bytes fault.
            if unsafe { libc::madvise(start as *mut c_void, page, MADV_GUARD_INSTALL) } != 0 {
                let err = io::Error::last_os_error();
                if i > 0 {
                    return Ok(i); // the stacks made so far are good
                }
                if err.raw_os_error() != Some(libc::EINVAL) {
                    return Err(err);
                }
                // An old kernel says EINVAL for any advice it does not know, and a new one
                // for a locked mapping; after `mlockall(MCL_FUTURE)` every batch would be
                // locked (and populated whole) only to be thrown away. Stop trying.
                GUARDS.store(Guards::Mappings as u8, Ordering::Relaxed);
                return Ok(0); // `region` drops and unmaps
            }
            let _ = GUARDS.compare_exchange(
                Guards::Unknown as u8,
                Guards::Markers as u8,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            out.push(Stack::carve(&region, start, len));
        }
        Ok(count)
    }

    /// A mapping of its own for one stack of `len` bytes: PROT_NONE, then read-write above
    /// the guard page (which splits it into two mappings).
    fn map_alone(len: usize, out: &mut Vec<Stack>) -> io::Result<()> {
        let region = Arc::new(map_region(len, libc::PROT_NONE)?);
        let page = page_size();
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: `[start + page, start + len)` is inside the mapping just made, which
        // nothing uses yet.
        let rc = unsafe { libc::mprotect((region.start + page) as *mut c_void, len - page, rw) };
        if rc != 0 {
            return Err(io::Error::last_os_error()); // `region` drops and unmaps
        }
        out.push(Stack::carve(&region, region.start, len));
        Ok(())
    }

    /// The stack at `[start, start + len)` of `region`, guard page first.
    fn carve(region: &Arc<Region>, start: usize, len: usize) -> Stack {
        Stack {
            base: StackPointer::new(start + len).expect("a stack ending at address 0"),
            limit: StackPointer::new(start).expect("a stack at address 0"),
            valgrind: ManuallyDrop::new(ValgrindStackRegistration::new(start as *mut u8, len)),
            region: region.clone(),
        }
    }

    /// Usable bytes: the stack minus the guard page.
    pub(crate) fn size(&self) -> usize {
        self.base.get() - self.limit.get() - page_size()
    }

    /// Address range of the guard page, just below the usable bytes, starting at `limit()`.
    pub(crate) fn guard(&self) -> Range<usize> {
        guard_at(self.limit.get())
    }
}

/// An anonymous private mapping of `len` bytes with protection `prot`, where the kernel picks.
fn map_region(len: usize, prot: c_int) -> io::Result<Region> {
    // MAP_STACK: since Linux 6.7 it keeps transparent huge pages off the range, so an idle
    // stack costs the pages it touched, not 2 MiB.
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK;
    // SAFETY: a new anonymous mapping at an address the kernel picks overlaps nothing.
    let addr = unsafe { libc::mmap(ptr::null_mut(), len, prot, flags, -1, 0) };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    MAPPINGS_MADE.fetch_add(1, Ordering::Relaxed);
    Ok(Region {
        start: addr as usize,
        len,
    })
}

/// The guard page that starts at `start` (a [`Stack::guard`]'s start, kept instead of the
/// range where every byte per coroutine counts).
pub(crate) fn guard_at(start: usize) -> Range<usize> {
    start..start + page_size()
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: dropped exactly once, here, and not touched afterwards.
        unsafe { ManuallyDrop::drop(&mut self.valgrind) };
        if Arc::strong_count(&self.region) > 1 {
            // Stacks beside it live on, so the region stays mapped: give back this one's
            // pages now. (Reading the count races only with other stacks of the region being
            // dropped; the worst case is one needless madvise before the munmap.)
            let usable = self.guard().end;
            // SAFETY: `[usable, base)` is this stack's alone (the `Stack` invariant) and no
            // coroutine runs on it (a coroutine owns its stack until it gives it back); after
            // this drop nothing reads it again, so discarding its contents is unobservable.
            // The guard marker below it stays (MADV_DONTNEED keeps markers).
            unsafe {
                libc::madvise(
                    usable as *mut c_void,
                    self.base.get() - usable,
                    libc::MADV_DONTNEED,
                )
            };
        }
        // `region` drops after this: the last stack of a region unmaps it.
    }
}

fn page_size() -> usize {
    // Asked once: every spawn needs it a few times, and sysconf is a libc call that showed
    // up as 6% of a spawn's instructions (bench: spawn+join under callgrind).
    static PAGE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    match PAGE.load(std::sync::atomic::Ordering::Relaxed) {
        0 => {
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
            assert!(page.is_power_of_two(), "odd page size {page}");
            PAGE.store(page, std::sync::atomic::Ordering::Relaxed);
            page
        }
        page => page,
    }
}

/// The smallest usable stack: 16 KiB, glibc's `PTHREAD_STACK_MIN` on x86_64, which is also
/// what std's `thread::Builder::stack_size` rounds a smaller request up to. corosensei's own
/// minimum (`MIN_STACK_SIZE`, 4 KiB) is too small for a coroutine that does I/O in a debug
/// build: a connect, a read and a write with a deadline need 12 KiB there (measured).
const SMALLEST: usize = 16 << 10;
const _: () = assert!(SMALLEST >= MIN_STACK_SIZE);

/// Usable bytes of a stack asked for with `size`: whole pages, at least [`SMALLEST`].
fn usable_size(size: usize) -> Option<usize> {
    // A mask, not `checked_next_multiple_of`: the page size is a power of two (asserted in
    // `page_size`), and a division here was a tenth of a spawn's time.
    let mask = page_size() - 1;
    size.max(SMALLEST).checked_add(mask).map(|s| s & !mask)
}

/// Bytes mapped for a stack asked for with `size`: its usable bytes and one guard page; an
/// `InvalidInput` error if that does not fit in a `usize`.
pub(crate) fn mapped_size(size: usize) -> io::Result<usize> {
    usable_size(size)
        .and_then(|usable| usable.checked_add(page_size()))
        .ok_or_else(|| too_large(size))
}

fn too_large(size: usize) -> io::Error {
    let msg = format!("a {size}-byte coroutine stack does not fit in the address space");
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Turns ENOMEM from mmap/mprotect/madvise into advice; other errors travel up unchanged.
#[cold]
fn map_error(err: io::Error, usable: usize) -> io::Error {
    if err.raw_os_error() != Some(libc::ENOMEM) {
        return err;
    }
    let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count");
    out_of_mappings(
        usable,
        limit.ok().and_then(|s| s.trim().parse().ok()),
        guards(),
    )
}

/// The ENOMEM message. Making a mapping, or splitting one (mprotect), past `vm.max_map_count`
/// fails exactly like running out of memory: name both, and what a stack costs in mappings.
fn out_of_mappings(usable: usize, max_map_count: Option<u64>, guards: Guards) -> io::Error {
    let limit = max_map_count.map_or_else(|| "current value unknown".into(), |n| n.to_string());
    let cost = match guards {
        Guards::Markers => "stacks take one mapping per batch of up to 64",
        Guards::Mappings | Guards::Unknown => "each stack takes 2 mappings",
    };
    let message = format!(
        "cannot map a {usable}-byte coroutine stack: out of memory (or of address space: \
         ulimit -v) or over vm.max_map_count ({limit}; {cost}): raise vm.max_map_count or \
         lower Builder::stack_size / Spawn::stack_size"
    );
    io::Error::new(io::ErrorKind::OutOfMemory, message)
}

/// A worker's idle stacks, kept for reuse: one list for the runtime's default size and a
/// smaller one for every other size, so that neither can crowd the other out.
///
/// Nearly every coroutine uses the default size, so `get` usually takes from the end of
/// `default`: the most recently used stack, likely still in cache. When a list has no stack
/// of the size wanted, `get` maps a batch ([`Stack::map`]) and keeps the rest as idle stacks,
/// so a burst of spawns makes one `mmap` per batch (31 default stacks), not one (and an
/// `mprotect`) per stack — for every size: a hundred thousand coroutines of a small size
/// spawned with `Spawn::stack_size` would otherwise each be a mapping of their own, which
/// the kernel merges with their neighbours and splits again at every unmap in between,
/// until the process runs out of `vm.max_map_count` (found by an audit).
pub(crate) struct StackPool {
    /// Idle stacks of the runtime's default size, most recently returned last.
    default: Vec<Stack>,
    /// Idle stacks of other sizes, oldest first; when full, a returned one evicts the oldest.
    /// Its own cap, so that a burst of odd sizes (16 sizes with 30 spares each, or a
    /// thousand coroutines of one other size) cannot fill the pool and leave every default
    /// spawn mapping and unmapping a stack (found by audits, 24-25 times slower).
    others: VecDeque<Stack>,
    /// The runtime's default usable size.
    default_size: Option<usize>,
    /// How many idle default stacks to keep; a quarter of that for the other sizes. Beyond
    /// it, returned stacks are discarded (their pages given back at once, their mapping once
    /// its last stack goes), so a burst of coroutines does not pin its peak memory for the
    /// worker's whole life.
    max_cached: usize,
}

impl StackPool {
    /// `max_cached`: how many idle default stacks to keep; beyond that, returned stacks are
    /// discarded. `default_size`: the runtime's default stack size.
    pub(crate) fn new(max_cached: usize, default_size: usize) -> Self {
        StackPool {
            default: Vec::new(),
            others: VecDeque::new(),
            default_size: usable_size(default_size),
            max_cached,
        }
    }

    fn others_cap(&self) -> usize {
        (self.max_cached / 4).max(1)
    }

    /// An idle stack of `size` usable bytes (rounded as [`Stack::new`] does), or a new one.
    pub(crate) fn get(&mut self, size: usize) -> io::Result<Stack> {
        let want = usable_size(size);
        // No log line here: the pool is borrowed, and a logger that spawns would re-enter it.
        if want == self.default_size {
            if let Some(s) = self.default.pop() {
                return Ok(s);
            }
            // The batch's spare stacks, and this one once it comes back, must fit the cap.
            let room = self.max_cached.saturating_sub(self.default.len());
            Stack::map(size, room.max(1), &mut self.default)?;
            return Ok(self.default.pop().expect("Stack::map made no stack"));
        }
        if let Some(i) = self.others.iter().rposition(|s| Some(s.size()) == want) {
            return Ok(self.others.remove(i).expect("found at i"));
        }
        let room = self.others_cap().saturating_sub(self.others.len());
        let mut made = Vec::new();
        Stack::map(size, room.max(1), &mut made)?;
        let stack = made.pop().expect("Stack::map made no stack");
        made.into_iter().for_each(|spare| self.put(spare));
        Ok(stack)
    }

    /// Takes back the stack of a finished coroutine (`Coroutine::into_stack`).
    pub(crate) fn put(&mut self, stack: Stack) {
        if Some(stack.size()) == self.default_size {
            if self.default.len() < self.max_cached {
                self.default.push(stack);
            }
            // else: `stack` drops here, and its memory goes back to the kernel.
            return;
        }
        if self.others.len() >= self.others_cap() {
            self.others.pop_front(); // the oldest goes back to the kernel
        }
        self.others.push_back(stack);
    }

    /// Idle stacks: (of the default size, of other sizes).
    #[cfg(test)]
    pub(crate) fn cached(&self) -> (usize, usize) {
        (self.default.len(), self.others.len())
    }
}

/// What the overflow handler must know about the coroutine this thread is running.
#[derive(Clone, Copy)]
struct Running {
    /// Its guard page; empty (`0..0`) while no coroutine runs.
    guard: (usize, usize),
    id: u64,
    /// Its name as raw parts (null: unnamed), valid until `leave` by `enter`'s contract.
    name: (*const u8, usize),
}

const NOT_RUNNING: Running = Running {
    guard: (0, 0),
    id: 0,
    name: (ptr::null(), 0),
};

thread_local! {
    /// The coroutine on this thread, for the overflow handler. A const-initialised `Cell` of a
    /// `Copy` type has no lazy init and no destructor: reading it is a plain load from the
    /// thread's TLS block, which a signal handler may do.
    static RUNNING: Cell<Running> = const { Cell::new(NOT_RUNNING) };
}

/// Marks `guard` (a [`Stack::guard`]) as the guard page of the coroutine now running on this
/// thread, with its id and name, for the overflow handler. Call it right before each resume
/// and [`leave`] right after. It takes the guard, not the `Stack`, because a corosensei
/// `Coroutine` owns its stack and does not lend it out: keep `stack.guard()` from before the
/// stack moves in.
///
/// # Safety
///
/// `name` must stay valid (not freed, not changed) until the next [`leave`] or `enter` on this
/// thread: the overflow handler may read it at any moment in between.
pub(crate) unsafe fn enter(guard: Range<usize>, id: u64, name: Option<&str>) {
    let name = name.map_or((ptr::null(), 0), |n| (n.as_ptr(), n.len()));
    let guard = (guard.start, guard.end);
    RUNNING.set(Running { guard, id, name });
    // The handler runs on this thread, like an interrupt: keep the store before the resume.
    compiler_fence(Ordering::SeqCst);
}

/// Clears what [`enter`] recorded: the coroutine has suspended or finished.
pub(crate) fn leave() {
    compiler_fence(Ordering::SeqCst);
    RUNNING.set(NOT_RUNNING);
}

/// Makes sure the calling thread has an alternate signal stack (sigaltstack) large enough for
/// the overflow handler: a thread that overflowed has no stack left to run it on. Does nothing
/// if one is already installed (std installs one on the threads it spawns). Called by each
/// worker thread at start.
///
/// The altstack is leaked on purpose: a fault can arrive until the thread's last instruction,
/// so freeing it in a TLS destructor would leave a window where the handler runs on unmapped
/// memory. Worker threads live as long as their runtime; the cost is one small mapping each.
pub(crate) fn ensure_altstack() {
    // SAFETY: all-zero is a valid `stack_t` (null pointer, no flags, size 0).
    let mut current: libc::stack_t = unsafe { mem::zeroed() };
    // SAFETY: a null new stack only queries; `current` is a valid place for the answer.
    let rc = unsafe { libc::sigaltstack(ptr::null(), &mut current) };
    if rc == 0 && current.ss_flags & libc::SS_DISABLE == 0 {
        return;
    }
    // SAFETY: getauxval has no preconditions; it returns 0 for an unknown entry.
    let kernel_min = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
    let size = libc::SIGSTKSZ.max(kernel_min).max(64 * 1024);
    // A `Stack` is exactly the shape wanted: usable bytes with a guard page below.
    let stack = match Stack::new(size) {
        Ok(stack) => stack,
        Err(e) => return rt_log!(Warn, "stack: no signal stack for this thread ({e})"),
    };
    let alt = libc::stack_t {
        ss_sp: stack.guard().end as *mut c_void,
        ss_flags: 0,
        ss_size: stack.size(),
    };
    // SAFETY: `alt` describes the usable part of `stack`, which is leaked below and so stays
    // mapped for the life of the process.
    let rc = unsafe { libc::sigaltstack(&alt, ptr::null_mut()) };
    if rc != 0 {
        return rt_log!(
            Warn,
            "stack: sigaltstack failed ({})",
            io::Error::last_os_error()
        );
    }
    mem::forget(stack);
}

/// The signals a guard-page hit raises (SIGBUS on some kernels for some mappings).
const SIGNALS: [c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// The action each of `SIGNALS` had before ours, set once before ours is installed.
static PREVIOUS: [OnceLock<libc::sigaction>; 2] = [OnceLock::new(), OnceLock::new()];

type SigactionFn = extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void);

/// Installs the process-wide SIGSEGV/SIGBUS handler once (idempotent, thread-safe).
///
/// It runs on the alternate signal stack (see [`ensure_altstack`]); what it does is described
/// on `handle_fault`.
pub(crate) fn install_overflow_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: getauxval has no preconditions; it returns 0 for an unknown entry.
        let frame = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
        SIGNAL_FRAME_ROOM.store(frame.max(libc::MINSIGSTKSZ) + 2048, Ordering::Relaxed);
        for (&signum, previous) in SIGNALS.iter().zip(&PREVIOUS) {
            // SAFETY: all-zero is a valid `sigaction` (SIG_DFL, empty mask, no flags).
            let mut old: libc::sigaction = unsafe { mem::zeroed() };
            // SAFETY: a null new action only queries; `old` is a valid place for the answer.
            let rc = unsafe { libc::sigaction(signum, ptr::null(), &mut old) };
            assert!(rc == 0, "sigaction: {}", io::Error::last_os_error());
            // Remember it before installing ours, so the handler always finds it.
            let _ = previous.set(old);
            // SAFETY: as above, all-zero is a valid `sigaction`.
            let mut action: libc::sigaction = unsafe { mem::zeroed() };
            action.sa_sigaction = handle_fault as SigactionFn as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: `handle_fault` only does async-signal-safe things (see its comment).
            let rc = unsafe { libc::sigaction(signum, &action, ptr::null_mut()) };
            assert!(rc == 0, "sigaction: {}", io::Error::last_os_error());
        }
    });
}

/// How close to its guard a coroutine's stack pointer must be for a kernel-raised SIGSEGV
/// to count as a signal frame that did not fit: the kernel's largest frame
/// (`AT_MINSIGSTKSZ`, which grows with the CPU's vector state) plus 2 KiB. Set when the
/// handler is installed, read in it.
static SIGNAL_FRAME_ROOM: AtomicUsize = AtomicUsize::new(0);

/// The stack pointer of the code a signal interrupted, from the handler's `ucontext`; 0 on
/// an architecture this does not know.
fn interrupted_sp(context: *mut c_void) -> usize {
    if context.is_null() {
        return 0;
    }
    let uc = context.cast::<libc::ucontext_t>();
    #[cfg(target_arch = "x86_64")]
    // SAFETY: with SA_SIGINFO the third argument is the interrupted context, a valid
    // `ucontext_t`; REG_RSP indexes its general registers.
    return unsafe { (*uc).uc_mcontext.gregs[libc::REG_RSP as usize] as usize };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above; `sp` is the interrupted stack pointer.
    return unsafe { (*uc).uc_mcontext.sp as usize };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = uc;
        0
    }
}

/// Whether the interrupted code took a general-protection fault (x86-64 trap 13: a
/// non-canonical address, say), which the kernel reports as SIGSEGV with SI_KERNEL too.
fn general_protection(context: *mut c_void) -> bool {
    #[cfg(target_arch = "x86_64")]
    if !context.is_null() {
        // SAFETY: as in `interrupted_sp`; REG_TRAPNO indexes its general registers.
        let trap = unsafe {
            (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs[libc::REG_TRAPNO as usize]
        };
        return trap == 13;
    }
    let _ = context;
    false
}

/// The SIGSEGV/SIGBUS handler. Async-signal-safe: no allocation, no locks, only raw `write`,
/// `sigaction` and `abort`.
extern "C" fn handle_fault(signum: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // 1. Where did the fault land?
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo, whose si_addr a SIGSEGV or
    // SIGBUS fills with the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    // 2. Is it the guard page of the coroutine running on this thread?
    let running = RUNNING.get();
    if (running.guard.0..running.guard.1).contains(&addr) {
        // 3. Yes: say so as std says it for threads, then abort (no unwinding out of here).
        let name = if running.name.0.is_null() {
            None
        } else {
            // SAFETY: `enter`'s caller promised the name stays valid until `leave`, and this
            // coroutine has not left: it is still running, as it just faulted.
            Some(unsafe { slice::from_raw_parts(running.name.0, running.name.1) })
        };
        overflow_message(name, running.id, write_stderr);
        // What to do about it, which std's thread report leaves out: a newcomer's audit
        // found the two lines above clear about what happened and silent about the fix.
        const _: () = assert!(super::DEFAULT_STACK_SIZE == 256 << 10, "the line names it");
        write_stderr(
            b"coronet: a coroutine's stack does not grow; give this one a larger stack with \
              Spawn::stack_size, or every coroutine with Builder::stack_size (256 KiB by \
              default)\n",
        );
        std::process::abort();
    }
    // 3b. A signal whose handler's frame did not fit below the coroutine's stack pointer:
    //     the kernel raises SIGSEGV itself, at no address (found by an audit of signals: a
    //     coroutine with a 16 KiB stack 11 KiB deep died of a bare SIGSEGV under a 1 kHz
    //     profiler, whose handler was installed without SA_ONSTACK). Told by the
    //     interrupted stack pointer, within one signal frame of the guard or inside it (a
    //     stack probe lowers the pointer into the guard before it touches it), and on
    //     x86-64 by a trap that is not a general-protection fault, which the kernel also
    //     reports as SI_KERNEL at no address.
    // SAFETY: as in 1; si_code is set for every signal.
    let code = unsafe { (*info).si_code };
    if signum == libc::SIGSEGV
        && code == libc::SI_KERNEL
        && running.guard.1 != 0
        && !general_protection(context)
    {
        let sp = interrupted_sp(context);
        let room = SIGNAL_FRAME_ROOM.load(Ordering::Relaxed);
        if sp >= running.guard.0 && sp < running.guard.1.saturating_add(room) {
            let name = if running.name.0.is_null() {
                None
            } else {
                // SAFETY: as in 3.
                Some(unsafe { slice::from_raw_parts(running.name.0, running.name.1) })
            };
            write_stderr(
                b"coronet: a signal arrived with no room for its handler's frame on the \
                  coroutine's stack; install signal handlers with SA_ONSTACK, or give the \
                  coroutine a larger stack\n",
            );
            overflow_message(name, running.id, write_stderr);
            std::process::abort();
        }
    }
    // 4. No: hand the fault to whoever had it before us.
    let previous = SIGNALS
        .iter()
        .position(|&s| s == signum)
        .and_then(|i| PREVIOUS[i].get());
    match previous {
        Some(old) if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN => {
            if old.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: with SA_SIGINFO, sa_sigaction holds a three-argument handler.
                let f: SigactionFn = unsafe { mem::transmute(old.sa_sigaction) };
                f(signum, info, context);
            } else {
                // SAFETY: without SA_SIGINFO, sa_sigaction holds a one-argument sa_handler.
                let f: extern "C" fn(c_int) = unsafe { mem::transmute(old.sa_sigaction) };
                f(signum);
            }
        }
        // 5. Nobody (or ignored): restore the default and return. The faulting instruction runs
        //    again, faults again, and the kernel kills the process as it would have without us.
        _ => {
            // SAFETY: all-zero is a valid `sigaction` and means SIG_DFL with an empty mask.
            let default: libc::sigaction = unsafe { mem::zeroed() };
            // SAFETY: sigaction is async-signal-safe; `default` is a valid action.
            unsafe { libc::sigaction(signum, &default, ptr::null_mut()) };
        }
    }
}

/// Passes `coroutine '<name>' (id N) has overflowed its stack` and the fatal-error line to
/// `sink` piece by piece, the id formatted into a stack buffer: nothing allocates.
fn overflow_message(name: Option<&[u8]>, id: u64, mut sink: impl FnMut(&[u8])) {
    let mut digits = [0u8; 20];
    let mut rest = &mut digits[..];
    // Cannot fail: 20 digits hold any u64. io::Write on a slice neither allocates nor locks.
    let _ = write!(rest, "{id}");
    let len = 20 - rest.len();
    sink(b"coroutine '");
    sink(name.unwrap_or(b"<unnamed>"));
    sink(b"' (id ");
    sink(&digits[..len]);
    sink(b") has overflowed its stack\nfatal runtime error: stack overflow, aborting\n");
}

/// Writes all of `bytes` to fd 2 with raw `write`, retrying short writes and EINTR; gives up
/// silently on any other error (there is nowhere left to report it).
fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid readable buffer of `bytes.len()` bytes.
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

fn _assert_send() {
    fn send<T: Send>() {}
    send::<Stack>();
    send::<StackPool>();
}

#[cfg(test)]
mod tests {
    use super::*;
    use corosensei::stack::Stack as _;
    use corosensei::{Coroutine, Yielder};
    use std::hint::black_box;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;

    #[test]
    fn new_stack_rounds_size_and_puts_the_guard_below_the_usable_bytes() {
        let page = page_size();
        let min = SMALLEST.next_multiple_of(page);
        assert_eq!(Stack::new(1).unwrap().size(), min);
        let stack = Stack::new(3 * page + 1).unwrap();
        let (base, limit) = (stack.base().get(), stack.limit().get());
        assert_eq!(stack.size(), 4 * page);
        assert_eq!(base - limit, stack.size() + page);
        assert_eq!(stack.guard(), limit..base - stack.size());
        assert_eq!(base % corosensei::stack::STACK_ALIGNMENT, 0);

        let usable = stack.guard().end as *mut u8;
        // SAFETY: `[guard.end, base)` is the stack's read-write part, and nothing runs on it.
        unsafe {
            ptr::write_bytes(usable, 0xAB, stack.size());
            assert_eq!((*usable, *usable.add(stack.size() - 1)), (0xAB, 0xAB));
        }
        let (guard_map, guard_perms) = mapping_containing(stack.guard().start);
        assert!(guard_map.start <= stack.guard().start && stack.guard().end <= guard_map.end);
        let (rw_map, rw_perms) = mapping_containing(stack.guard().end);
        assert_eq!(rw_perms, "rw-p");
        assert!(rw_map.start <= stack.guard().end && base <= rw_map.end);
        match guards() {
            // A marker inside the stack's one read-write mapping (touching it faults: the
            // death tests below).
            Guards::Markers => assert_eq!((guard_perms, guard_map), ("rw-p".into(), rw_map)),
            // A PROT_NONE mapping of its own.
            _ => assert_eq!(guard_perms, "---p"),
        }

        let err = Stack::new(usize::MAX).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    /// The mapping in /proc/self/maps containing `addr`: its range and permissions.
    fn mapping_containing(addr: usize) -> (Range<usize>, String) {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        for line in maps.lines() {
            let mut fields = line.split_whitespace();
            let (range, perms) = (fields.next().unwrap(), fields.next().unwrap());
            let (start, end) = range.split_once('-').unwrap();
            let start = usize::from_str_radix(start, 16).unwrap();
            let end = usize::from_str_radix(end, 16).unwrap();
            if (start..end).contains(&addr) {
                return (start..end, perms.to_string());
            }
        }
        panic!("no mapping contains {addr:#x}");
    }

    /// Mappings among `stacks`: each `Region` counted once.
    fn regions(stacks: &[Stack]) -> usize {
        let mut seen: Vec<*const Region> = stacks.iter().map(|s| Arc::as_ptr(&s.region)).collect();
        seen.sort();
        seen.dedup();
        seen.len()
    }

    #[test]
    fn pool_reuses_stacks_and_caps_each_list() {
        let mut pool = StackPool::new(8, 64 * 1024);
        let a = pool.get(64 * 1024).unwrap();
        let base = a.base();
        // With guard markers the first get maps a batch: the stack and its spares, all of
        // which fit under the cap of 8 once the first comes back.
        let spares = pool.cached();
        assert_eq!(spares, (if guards() == Guards::Markers { 7 } else { 0 }, 0));
        pool.put(a);
        // A size that rounds to the default class reuses the stack last returned.
        let b = pool.get(64 * 1024 - 100).unwrap();
        assert_eq!(
            (b.base(), b.size(), pool.cached()),
            (base, 64 * 1024, spares)
        );
        pool.put(b);

        // Other sizes have a list of their own, capped at a quarter (2 here).
        let odd: Vec<Stack> = (0..5).map(|_| pool.get(128 * 1024).unwrap()).collect();
        assert!(odd.iter().all(|s| s.size() == 128 * 1024));
        assert!(odd.iter().all(|s| s.base() != base));
        odd.into_iter().for_each(|s| pool.put(s));
        assert_eq!(
            pool.cached(),
            (spares.0 + 1, 2),
            "the oldest were discarded"
        );
        // and the default list is as it was
        assert_eq!(pool.get(64 * 1024).unwrap().base(), base);
    }

    /// Other sizes are mapped in batches too, with spares in their own list, so that they
    /// neither crowd the default class out (found by audits: 16 odd sizes with their spares,
    /// or a thousand stacks of one other size coming back, left every default spawn
    /// mapping and unmapping a stack, 24-25 times slower) nor take a mapping each (a hundred
    /// thousand of them split the merged mapping up to vm.max_map_count as they finished).
    #[test]
    fn other_sizes_are_batched_and_never_crowd_out_the_default() {
        let mut pool = StackPool::new(64, 64 * 1024); // 16 idle stacks of other sizes
        let odd: Vec<Stack> = (0..1000).map(|_| pool.get(32 * 1024).unwrap()).collect();
        if guards() == Guards::Markers {
            // batches of up to 16 (the other list's room), not a mapping each
            assert!(regions(&odd) <= 1000 / 16 + 1, "{} mappings", regions(&odd));
        }
        odd.into_iter().for_each(|s| pool.put(s));
        assert_eq!(pool.cached(), (0, 16));
        for i in 0..16 {
            let other = pool.get(128 * 1024 + i * page_size()).unwrap();
            pool.put(other);
        }
        assert_eq!(pool.cached().1, 16);
        // the default class keeps all its room: after the first batch, nothing new
        let first = pool.get(64 * 1024).unwrap();
        let base = first.base();
        pool.put(first);
        let warm = pool.cached();
        for _ in 0..100 {
            let again = pool.get(64 * 1024).unwrap();
            assert_eq!(again.base(), base, "reused, nothing new mapped");
            pool.put(again);
        }
        assert_eq!(pool.cached(), warm);
    }

    #[test]
    fn a_batch_is_one_mapping_of_adjacent_stacks_each_with_its_guard() {
        let mut out = Vec::new();
        let made = Stack::map(64 * 1024, 5, &mut out).unwrap();
        assert_eq!(made, out.len());
        if guards() != Guards::Markers {
            assert_eq!(made, 1, "without markers each stack maps alone");
            return;
        }
        assert_eq!(made, 5);
        let len = 64 * 1024 + page_size();
        for pair in out.windows(2) {
            assert_eq!(pair[1].limit().get(), pair[0].limit().get() + len);
            assert_eq!(pair[0].base().get(), pair[1].guard().start);
        }
        // One mapping (the kernel may have merged it with a neighbour: contains, not equals).
        let range = out[0].limit().get()..out[4].base().get();
        let (map, perms) = mapping_containing(range.start);
        assert_eq!(perms, "rw-p");
        assert!(map.start <= range.start && range.end <= map.end);
        // Dropping stacks from the middle gives their pages back but does not split the
        // mapping; the last stack of the batch holds the last reference, which unmaps it.
        let last = out.pop().unwrap();
        let (first, rest) = (out.remove(0), out);
        // SAFETY: the usable bytes of `first` are its own and nothing runs on them.
        unsafe { ptr::write_bytes(first.guard().end as *mut u8, 1, first.size()) };
        drop(rest);
        let (map, _) = mapping_containing(range.start);
        assert!(
            map.start <= range.start && range.end <= map.end,
            "split: {map:x?}"
        );
        drop(first);
        assert_eq!(Arc::strong_count(&last.region), 1);
    }

    /// On Linux 6.13 and later the kernel makes guard markers, so batches must be in use: a
    /// silent fall back to a mapping per stack would halve how many coroutines fit.
    #[test]
    fn guard_markers_are_used_where_the_kernel_has_them() {
        drop(Stack::new(0).unwrap());
        // SAFETY: all-zero is a valid `utsname`, and uname fills it.
        let mut uts: libc::utsname = unsafe { mem::zeroed() };
        // SAFETY: `uts` is a valid place for the answer.
        assert_eq!(unsafe { libc::uname(&mut uts) }, 0);
        // SAFETY: uname NUL-terminates `release`.
        let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
        let release = release.to_string_lossy();
        let mut numbers = release.split(|c: char| !c.is_ascii_digit());
        let major: u32 = numbers.next().unwrap().parse().unwrap();
        let minor: u32 = numbers.next().unwrap().parse().unwrap();
        if (major, minor) >= (6, 13) {
            assert_eq!(guards(), Guards::Markers, "kernel {release}");
        }
    }

    #[test]
    fn stack_runs_a_corosensei_coroutine_and_is_reused_after() {
        let mut pool = StackPool::new(1, 64 * 1024);
        let stack = pool.get(64 * 1024).unwrap();
        let (base, usable) = (stack.base(), stack.guard().end..stack.base().get());
        let mut co = Coroutine::with_stack(stack, |y: &Yielder<u32, usize>, x: u32| {
            let local = black_box(x);
            let z = y.suspend(&local as *const u32 as usize);
            local + z
        });
        let sp = co.resume(1).as_yield().unwrap();
        assert!(usable.contains(&sp), "its locals live on our stack");
        assert_eq!(co.resume(10).as_return(), Some(11));
        pool.put(co.into_stack());

        let again = pool.get(64 * 1024).unwrap();
        assert_eq!(again.base(), base);
        let mut co = Coroutine::with_stack(again, |_: &Yielder<(), ()>, ()| 42);
        assert_eq!(co.resume(()).as_return(), Some(42));
    }

    #[test]
    fn overflow_message_names_the_coroutine_and_its_id() {
        let collect = |name: Option<&[u8]>, id| {
            let mut out = Vec::new();
            overflow_message(name, id, |b| out.extend_from_slice(b));
            String::from_utf8(out).unwrap()
        };
        let end = "has overflowed its stack\nfatal runtime error: stack overflow, aborting\n";
        let deep = format!("coroutine 'deep' (id 7) {end}");
        assert_eq!(collect(Some(b"deep"), 7), deep);
        let unnamed = format!("coroutine '<unnamed>' (id 18446744073709551615) {end}");
        assert_eq!(collect(None, u64::MAX), unnamed);
    }

    #[test]
    fn enomem_says_which_limit_and_what_to_change() {
        let err = out_of_mappings(262144, Some(65530), Guards::Mappings);
        assert_eq!(err.kind(), io::ErrorKind::OutOfMemory);
        assert_eq!(
            err.to_string(),
            "cannot map a 262144-byte coroutine stack: out of memory (or of address space: \
             ulimit -v) or over vm.max_map_count (65530; each stack takes 2 mappings): raise \
             vm.max_map_count or lower Builder::stack_size / Spawn::stack_size"
        );
        let err = out_of_mappings(262144, None, Guards::Markers);
        assert!(
            err.to_string()
                .contains("(current value unknown; stacks take one mapping per batch of up to 64)"),
            "{err}"
        );
        let enomem = map_error(io::Error::from_raw_os_error(libc::ENOMEM), 4096);
        assert_eq!(enomem.kind(), io::ErrorKind::OutOfMemory);
        let message = enomem.to_string();
        assert!(message.starts_with("cannot map a 4096-byte coroutine stack"));
        // Other errors pass unchanged.
        let einval = map_error(io::Error::from_raw_os_error(libc::EINVAL), 4096);
        assert_eq!(einval.raw_os_error(), Some(libc::EINVAL));
    }

    const CHILD: &str = "CORONET_STACK_CHILD";

    /// Whether this process is the child that `run_child(test)` started to do the fatal part.
    fn is_child(test: &str) -> bool {
        if std::env::var(CHILD).as_deref() != Ok(test) {
            return false;
        }
        // No core dumps from the faults we are about to cause.
        let (rlim_cur, rlim_max) = (0, 0);
        // SAFETY: a valid rlimit pointer; lowering our own limit is always allowed.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &libc::rlimit { rlim_cur, rlim_max }) };
        install_overflow_handler();
        ensure_altstack();
        true
    }

    /// Runs test `test` of this module again in a fresh copy of this test binary, as a child;
    /// checks that it was killed by `signal` and returns its stderr.
    fn expect_death(test: &str, signal: c_int) -> String {
        let module = module_path!().split_once("::").unwrap().1;
        let out = Command::new(std::env::current_exe().unwrap())
            .env(CHILD, test)
            .args(["--exact", &format!("{module}::{test}"), "--nocapture"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.signal(), Some(signal), "child stderr:\n{stderr}");
        stderr
    }

    #[inline(never)]
    fn recurse(depth: u64) -> u64 {
        let frame = black_box([depth; 64]);
        if black_box(depth) == u64::MAX {
            return 0;
        }
        recurse(depth + 1) + frame[depth as usize % 64]
    }

    #[test]
    fn coroutine_overflow_is_reported_and_aborts() {
        if is_child("coroutine_overflow_is_reported_and_aborts") {
            let stack = Stack::new(64 * 1024).unwrap();
            // SAFETY: the name is a 'static str.
            unsafe { enter(stack.guard(), 7, Some("deep")) };
            let mut co = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| recurse(0));
            co.resume(());
            unreachable!("unbounded recursion returned");
        }
        let stderr = expect_death("coroutine_overflow_is_reported_and_aborts", libc::SIGABRT);
        let expected = "coroutine 'deep' (id 7) has overflowed its stack\n\
                        fatal runtime error: stack overflow, aborting\n";
        assert!(stderr.contains(expected), "child stderr:\n{stderr}");
    }

    #[test]
    fn other_segfault_is_not_reported_as_overflow() {
        if is_child("other_segfault_is_not_reported_as_overflow") {
            let (running, other) = (Stack::new(0).unwrap(), Stack::new(0).unwrap());
            // SAFETY: the name is a 'static str.
            unsafe { enter(running.guard(), 7, Some("deep")) };
            // SAFETY: none; this deliberately faults on a guard page that is not the running
            // coroutine's, and the child process is meant to die here.
            unsafe { ptr::write_volatile(other.guard().start as *mut u8, 1) };
            unreachable!("wrote to a PROT_NONE page");
        }
        let stderr = expect_death("other_segfault_is_not_reported_as_overflow", libc::SIGSEGV);
        assert!(!stderr.contains("overflowed"), "child stderr:\n{stderr}");
    }

    #[test]
    fn thread_overflow_still_reaches_std_handler() {
        if is_child("thread_overflow_still_reaches_std_handler") {
            let plain = std::thread::Builder::new().name("plain".into());
            plain.spawn(|| recurse(0)).unwrap().join().unwrap();
            unreachable!("unbounded recursion returned");
        }
        let stderr = expect_death("thread_overflow_still_reaches_std_handler", libc::SIGABRT);
        // std prints "thread 'plain' (<its id>) has overflowed its stack".
        assert!(
            stderr.contains("thread 'plain' ("),
            "child stderr:\n{stderr}"
        );
        assert!(
            stderr.contains("has overflowed its stack"),
            "child stderr:\n{stderr}"
        );
        assert!(!stderr.contains("coroutine '"), "child stderr:\n{stderr}");
    }
}
