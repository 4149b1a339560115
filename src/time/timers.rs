//! The per-worker timer structure behind `sleep` and I/O deadlines.
//!
//! Owned by one worker thread, so it is plain data: no atomics, no locks, no syscalls. The
//! worker asks [`Timers::next_deadline`] how long `epoll_wait` may block ([`epoll_timeout`]),
//! then calls [`Timers::pop_expired`] in a loop to fire everything that is due.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Handle to a timer; carries a generation so a stale handle (timer already fired or
/// cancelled, slot reused) is recognised and ignored rather than touching another timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TimerId {
    index: u32,
    generation: u32,
}

impl TimerId {
    /// The id as one word, for tables that keep many.
    pub(crate) fn to_bits(self) -> u64 {
        (u64::from(self.index) << 32) | u64::from(self.generation)
    }

    pub(crate) fn from_bits(bits: u64) -> TimerId {
        TimerId {
            index: (bits >> 32) as u32,
            generation: bits as u32,
        }
    }
}

/// Marks "no slot" at the end of the free list.
const NIL: u32 = u32::MAX;

/// Children per heap node. Four makes the heap half as deep as a binary one, and a sift-down's
/// four child compares read adjacent memory; Go's runtime timer heap is 4-ary for the same reason.
const ARITY: usize = 4;

/// A min-heap of timers with O(log n) insert, reset, cancel and pop.
///
/// Layout: `heap` holds the keys in 4-ary heap order, each pointing at its slot in `nodes`;
/// each armed slot records its current heap position `pos`, so `reset` and `cancel` find
/// their entry without a search and sift it in place.
///
/// ```text
///   heap:  [ (t3,s7,→2) | (t5,s1,→0) | (t9,s4,→1) ]     key = (when, seq), → = slot
///   nodes: [ 0: Armed pos=1 | 1: Armed pos=2 | 2: Armed pos=0 | 3: Free next=NIL ]
/// ```
///
/// Slot states (all transitions are made by the owning worker):
///
/// | from  | to    | by                      | effect                                      |
/// |-------|-------|-------------------------|---------------------------------------------|
/// | Free  | Armed | `insert`                | takes the free-list head (or pushes a slot) |
/// | Armed | Armed | `reset`                 | new `when` and `seq`, sift up or down       |
/// | Armed | Free  | `cancel`, `pop_expired` | `generation += 1`, so old ids go stale      |
///
/// Once both vectors have grown to the peak number of armed timers, nothing allocates:
/// freed slots are reused through the free list and the heap only swaps entries.
pub(crate) struct Timers<T> {
    heap: Vec<HeapEntry>,
    nodes: Vec<Node<T>>,
    /// Head of the free-slot list threaded through `Slot::Free::next`, or `NIL`.
    free: u32,
    /// Next sequence number; stamped on insert and reset so equal deadlines fire in the
    /// order they were armed and the heap order is total (deterministic).
    next_seq: u64,
}

/// The key lives in the heap itself so sifting compares adjacent memory, not slots: the
/// deadline as [`nanos`] in the high half, the sequence number that orders equal deadlines
/// in the low half. One integer sifts with one compare where an `Instant` takes a branchy
/// seconds-then-nanoseconds one.
#[derive(Clone, Copy)]
struct HeapEntry {
    key: u128,
    index: u32,
}

impl HeapEntry {
    fn key(&self) -> u128 {
        self.key
    }

    fn nanos(&self) -> u64 {
        (self.key >> 64) as u64
    }
}

/// How far before the clock's first use [`nanos`] starts counting (about twelve days).
const BASE_BEFORE: Duration = Duration::from_secs(1 << 20);

/// The instant [`nanos`] counts from: some days before the first call, so only deadlines
/// that were due long before the process asked share the bottom value.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(|| {
        let now = Instant::now();
        now.checked_sub(BASE_BEFORE).unwrap_or(now)
    })
}

/// `when` as whole nanoseconds on a process-wide scale, saturating at both ends (the top
/// is 584 years away): the timers' keys, and what a parked coroutine records as the
/// deadline it waits for, so the two compare as integers. Exact, as `Instant` on Linux
/// holds nanoseconds.
pub(crate) fn nanos(when: Instant) -> u64 {
    let since = when.saturating_duration_since(base());
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

/// The instant of a [`nanos`] value: `when` itself unless it saturated.
pub(crate) fn instant(nanos: u64) -> Instant {
    base() + Duration::from_nanos(nanos)
}

struct Node<T> {
    /// Bumped each time the slot is freed; a `TimerId` is live only while it matches. It
    /// wraps, so an id could alias only after 2^32 reuses of one slot while it was kept.
    generation: u32,
    slot: Slot<T>,
}

enum Slot<T> {
    Armed { pos: u32, value: T },
    Free { next: u32 },
}

impl<T> Timers<T> {
    pub(crate) fn new() -> Self {
        Timers {
            heap: Vec::new(),
            nodes: Vec::new(),
            free: NIL,
            next_seq: 0,
        }
    }

    #[cfg(test)] // the model test drives it
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Arms a timer that fires at `when`, carrying `value`.
    pub(crate) fn insert(&mut self, when: Instant, value: T) -> TimerId {
        self.insert_at(nanos(when), value)
    }

    /// [`insert`](Self::insert) for a deadline already in [`nanos`].
    pub(crate) fn insert_at(&mut self, when: u64, value: T) -> TimerId {
        let pos = self.heap.len() as u32;
        let armed = Slot::Armed { pos, value };
        let index = if self.free != NIL {
            let index = self.free;
            let node = &mut self.nodes[index as usize];
            match std::mem::replace(&mut node.slot, armed) {
                Slot::Free { next } => self.free = next,
                Slot::Armed { .. } => panic!("Timers: armed slot {index} on the free list"),
            }
            index
        } else {
            // NIL ends the free list, so it can never name a slot.
            let index = u32::try_from(self.nodes.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("Timers: more than u32::MAX - 1 timers armed at once");
            self.nodes.push(Node {
                generation: 0,
                slot: armed,
            });
            index
        };
        let key = self.key(when);
        self.heap.push(HeapEntry { key, index });
        self.sift_up(pos as usize);
        self.id_of(index)
    }

    /// Moves a live timer to `when`; returns false (and does nothing) for a stale id.
    #[cfg(test)] // the model test drives it; the runtime uses `reset_at`
    pub(crate) fn reset(&mut self, id: TimerId, when: Instant) -> bool {
        self.reset_at(id, nanos(when))
    }

    /// [`reset`](Self::reset) for a deadline already in [`nanos`].
    pub(crate) fn reset_at(&mut self, id: TimerId, when: u64) -> bool {
        let Some(pos) = self.pos_of(id) else {
            return false;
        };
        let key = self.key(when);
        let entry = &mut self.heap[pos];
        let later = key > entry.key();
        entry.key = key;
        if later {
            self.sift_down(pos);
        } else {
            self.sift_up(pos);
        }
        true
    }

    /// Disarms a live timer and hands back its value; None for a stale id.
    pub(crate) fn cancel(&mut self, id: TimerId) -> Option<T> {
        self.cancel_if(id, |_| true)
    }

    /// [`cancel`](Self::cancel), but only if the live timer's value passes `check`: a caller
    /// that may hold an id aliasing another kind of timer (its generation wrapped) says what
    /// it armed.
    pub(crate) fn cancel_if(&mut self, id: TimerId, check: impl FnOnce(&T) -> bool) -> Option<T> {
        let pos = self.pos_of(id)?;
        match &self.nodes[id.index as usize].slot {
            Slot::Armed { value, .. } if check(value) => Some(self.remove_at(pos)),
            _ => None,
        }
    }

    #[cfg(test)] // the model test drives it
    pub(crate) fn contains(&self, id: TimerId) -> bool {
        self.pos_of(id).is_some()
    }

    /// The earliest deadline, if any (what the worker turns into epoll_wait's timeout).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        // Exact, but for deadlines `nanos` saturated: long due ones come back as its base,
        // just as due; ones past its 584 years as that far, just as far.
        self.heap.first().map(|e| instant(e.nanos()))
    }

    /// Removes and returns the earliest timer whose deadline is <= now, if any.
    /// The worker calls this in a loop to fire everything that is due.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(TimerId, T)> {
        self.pop_expired_at(nanos(now))
    }

    /// [`pop_expired`](Self::pop_expired) for a time already in [`nanos`].
    pub(crate) fn pop_expired_at(&mut self, now: u64) -> Option<(TimerId, T)> {
        let top = self.heap.first().filter(|e| e.nanos() <= now)?;
        let id = self.id_of(top.index);
        Some((id, self.remove_at(0)))
    }

    /// The current handle for slot `index`.
    fn id_of(&self, index: u32) -> TimerId {
        let generation = self.nodes[index as usize].generation;
        TimerId { index, generation }
    }

    /// Heap position of a live timer, or None if `id` is stale.
    fn pos_of(&self, id: TimerId) -> Option<usize> {
        match self.nodes.get(id.index as usize) {
            Some(Node {
                generation,
                slot: Slot::Armed { pos, .. },
            }) if *generation == id.generation => Some(*pos as usize),
            _ => None,
        }
    }

    /// The heap key of a timer armed (or re-armed) now for `when`: behind every timer with
    /// the same deadline armed before it.
    fn key(&mut self, when: u64) -> u128 {
        let seq = self.next_seq;
        self.next_seq += 1;
        (u128::from(when) << 64) | u128::from(seq)
    }

    /// Takes the heap entry at `pos` out, frees its slot and returns the value.
    fn remove_at(&mut self, pos: usize) -> T {
        let removed = self.heap.swap_remove(pos);
        if pos < self.heap.len() {
            // The former last entry now sits at `pos`; it may belong above or below it.
            if pos > 0 && self.heap[pos].key() < self.heap[(pos - 1) / ARITY].key() {
                self.sift_up(pos);
            } else {
                self.sift_down(pos);
            }
        }
        let node = &mut self.nodes[removed.index as usize];
        node.generation = node.generation.wrapping_add(1);
        match std::mem::replace(&mut node.slot, Slot::Free { next: self.free }) {
            Slot::Armed { value, .. } => {
                self.free = removed.index;
                value
            }
            Slot::Free { .. } => panic!("Timers: heap entry points at free slot {}", removed.index),
        }
    }

    /// Tells the slot of `heap[pos]` where its entry now lives.
    fn set_pos(&mut self, pos: usize) {
        let index = self.heap[pos].index;
        match &mut self.nodes[index as usize].slot {
            Slot::Armed { pos: p, .. } => *p = pos as u32,
            Slot::Free { .. } => panic!("Timers: heap entry points at free slot {index}"),
        }
    }

    fn sift_up(&mut self, mut pos: usize) {
        let entry = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / ARITY;
            if entry.key() >= self.heap[parent].key() {
                break;
            }
            self.heap[pos] = self.heap[parent];
            self.set_pos(pos);
            pos = parent;
        }
        self.heap[pos] = entry;
        self.set_pos(pos);
    }

    fn sift_down(&mut self, mut pos: usize) {
        let entry = self.heap[pos];
        let len = self.heap.len();
        loop {
            let first = pos * ARITY + 1;
            if first >= len {
                break;
            }
            let last = (first + ARITY).min(len);
            let child = (first..last).min_by_key(|&c| self.heap[c].key()).unwrap();
            if entry.key() <= self.heap[child].key() {
                break;
            }
            self.heap[pos] = self.heap[child];
            self.set_pos(pos);
            pos = child;
        }
        self.heap[pos] = entry;
        self.set_pos(pos);
    }

    #[cfg(test)]
    fn capacities(&self) -> (usize, usize) {
        (self.heap.capacity(), self.nodes.capacity())
    }
}

/// Pure policy: the epoll_wait timeout in milliseconds for the nearest deadline:
/// -1 (block forever) for None, 0 if already due, otherwise rounded UP to whole
/// milliseconds (never wake early and spin), capped at i32::MAX.
pub(crate) fn epoll_timeout(next: Option<Instant>, now: Instant) -> i32 {
    let Some(next) = next else { return -1 };
    let nanos = next.saturating_duration_since(now).as_nanos();
    let ms = nanos.div_ceil(1_000_000);
    i32::try_from(ms).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Pops everything due at `now`, in firing order.
    fn drain(t: &mut Timers<u32>, now: Instant) -> Vec<u32> {
        std::iter::from_fn(|| t.pop_expired(now).map(|(_, v)| v)).collect()
    }

    #[test]
    fn fires_in_deadline_order_and_not_early() {
        let base = Instant::now();
        let mut t = Timers::new();
        assert!(t.is_empty());
        assert_eq!(t.next_deadline(), None);
        for (v, d) in [(3, 30), (1, 10), (2, 20), (4, 40)] {
            t.insert(base + ms(d), v);
        }
        assert_eq!(t.len(), 4);
        assert_eq!(t.next_deadline(), Some(base + ms(10)));
        assert_eq!(t.pop_expired(base + ms(9)), None);
        assert_eq!(drain(&mut t, base + ms(20)), [1, 2]);
        assert_eq!(t.next_deadline(), Some(base + ms(30)));
        assert_eq!(drain(&mut t, base + ms(100)), [3, 4]);
        assert!(t.is_empty());
    }

    #[test]
    fn ties_fire_in_insertion_order() {
        let base = Instant::now();
        let mut t = Timers::new();
        for v in 0..20 {
            t.insert(base, v);
        }
        assert_eq!(drain(&mut t, base), (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn reset_moves_timer_and_goes_behind_ties() {
        let base = Instant::now();
        let mut t = Timers::new();
        let a = t.insert(base + ms(10), 1);
        t.insert(base + ms(20), 2);
        t.insert(base + ms(30), 3);
        assert!(t.reset(a, base + ms(20)));
        assert!(t.contains(a));
        assert_eq!(t.next_deadline(), Some(base + ms(20)));
        // Reset restamps the sequence, so `a` now fires after 2, which was armed earlier.
        assert_eq!(drain(&mut t, base + ms(20)), [2, 1]);
        let c = t.insert(base + ms(50), 4);
        assert!(t.reset(c, base + ms(5)));
        assert_eq!(drain(&mut t, base + ms(40)), [4, 3]);
    }

    #[test]
    fn cancel_returns_value_and_keeps_order() {
        let base = Instant::now();
        let mut t = Timers::new();
        let ids: Vec<_> = (0..10).map(|v| t.insert(base + ms(v as u64), v)).collect();
        assert_eq!(t.cancel(ids[0]), Some(0));
        assert_eq!(t.cancel(ids[5]), Some(5));
        assert_eq!(t.len(), 8);
        assert_eq!(t.next_deadline(), Some(base + ms(1)));
        assert_eq!(drain(&mut t, base + ms(10)), [1, 2, 3, 4, 6, 7, 8, 9]);
    }

    /// An id kept while its slot's generation wrapped names the slot's new timer; a cancel
    /// that says what it armed leaves a timer of another kind alone.
    #[test]
    fn cancel_if_leaves_an_aliased_timer_of_another_kind() {
        let base = Instant::now();
        let mut t = Timers::new();
        let old = t.insert(base, "callback");
        assert_eq!(t.cancel(old), Some("callback"));
        let new = t.insert(base + ms(5), "park");
        assert_eq!(new.index, old.index);
        t.nodes[new.index as usize].generation = old.generation; // 2^32 reuses later
        assert_eq!(t.cancel_if(old, |v| *v == "callback"), None);
        assert_eq!(t.pop_expired(base + ms(5)).map(|(_, v)| v), Some("park"));
        let mine = t.insert(base, "callback");
        assert_eq!(t.cancel_if(mine, |v| *v == "callback"), Some("callback"));
        assert!(t.is_empty());
    }

    #[test]
    fn stale_ids_after_fire_and_cancel_are_ignored() {
        let base = Instant::now();
        let mut t = Timers::new();
        let fired = t.insert(base, 1);
        let cancelled = t.insert(base + ms(5), 2);
        assert_eq!(t.pop_expired(base), Some((fired, 1)));
        assert_eq!(t.cancel(cancelled), Some(2));
        for id in [fired, cancelled] {
            assert!(!t.contains(id));
            assert!(!t.reset(id, base));
            assert_eq!(t.cancel(id), None);
        }
        assert!(t.is_empty());
    }

    #[test]
    fn reused_slot_does_not_answer_to_old_id() {
        let base = Instant::now();
        let mut t = Timers::new();
        let old = t.insert(base, 1);
        t.cancel(old);
        let new = t.insert(base + ms(7), 2);
        assert_eq!(new.index, old.index, "the freed slot is reused");
        assert_ne!(new, old);
        assert!(!t.reset(old, base + ms(100)));
        assert_eq!(t.cancel(old), None);
        assert!(t.contains(new));
        assert_eq!(t.next_deadline(), Some(base + ms(7)));
        assert_eq!(t.pop_expired(base + ms(7)), Some((new, 2)));
    }

    #[test]
    fn epoll_timeout_rounds_up_and_caps() {
        let now = Instant::now();
        assert_eq!(epoll_timeout(None, now), -1);
        assert_eq!(epoll_timeout(Some(now), now), 0);
        assert_eq!(epoll_timeout(Some(now), now + ms(5)), 0, "past deadline");
        assert_eq!(epoll_timeout(Some(now + Duration::from_nanos(1)), now), 1);
        assert_eq!(epoll_timeout(Some(now + ms(1)), now), 1);
        assert_eq!(
            epoll_timeout(Some(now + ms(1) + Duration::from_nanos(1)), now),
            2
        );
        assert_eq!(
            epoll_timeout(Some(now + Duration::from_micros(2500)), now),
            3
        );
        let huge = now + Duration::from_secs(100 * 365 * 24 * 3600);
        assert_eq!(epoll_timeout(Some(huge), now), i32::MAX);
    }

    #[test]
    fn rearming_does_not_allocate_once_warm() {
        let base = Instant::now();
        let mut t = Timers::new();
        let ids: Vec<_> = (0..1000)
            .map(|v| t.insert(base + ms(v), v as u32))
            .collect();
        // Churn through cancel + insert too, so free-list reuse is covered.
        for &id in &ids[..100] {
            t.cancel(id);
        }
        let mut ids: Vec<_> = ids[100..].to_vec();
        ids.extend((0..100).map(|v| t.insert(base + ms(v), v as u32)));
        let warm = t.capacities();
        // The idle-timeout pattern: every read pushes the deadline out again.
        for round in 0..100_000u64 {
            let id = ids[(round * 7919 % ids.len() as u64) as usize];
            assert!(t.reset(id, base + ms(1000 + round % 4096)));
        }
        for round in 0..10_000u64 {
            let slot = round as usize % ids.len();
            t.cancel(ids[slot]);
            ids[slot] = t.insert(base + ms(round % 97), 0);
        }
        assert_eq!(t.capacities(), warm);
        assert_eq!(t.len(), 1000);
    }

    #[test]
    fn deadlines_beyond_the_keys_range_saturate() {
        let now = Instant::now();
        let mut t = Timers::new();
        // Long due: before the scale's base, so both share the bottom key and go in arm order.
        if let Some(ancient) = now.checked_sub(BASE_BEFORE * 3) {
            t.insert(ancient + ms(1), 1);
            t.insert(ancient, 2);
            assert!(t.next_deadline().unwrap() <= now);
            assert_eq!(drain(&mut t, now), [1, 2]);
        }
        // Beyond the key's 584 years: kept as the latest possible, never due now.
        if let Some(far) = now.checked_add(Duration::from_secs(1000 * 365 * 24 * 3600)) {
            t.insert(far, 3);
            t.insert(now + ms(5), 4);
            assert_eq!(t.next_deadline(), Some(now + ms(5)));
            assert_eq!(drain(&mut t, now + ms(5)), [4]);
            assert!(t.next_deadline().unwrap() > now + Duration::from_secs(500 * 365 * 24 * 3600));
            assert_eq!(t.pop_expired(now + ms(10)), None);
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64),
        /// Picks among every id ever issued, so stale ids come up often.
        Reset(usize, u64),
        Cancel(usize),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..20u64).prop_map(Op::Insert),
            2 => (any::<usize>(), 0..20u64).prop_map(|(i, d)| Op::Reset(i, d)),
            1 => any::<usize>().prop_map(Op::Cancel),
            2 => (0..10u64).prop_map(Op::Advance),
        ]
    }

    proptest! {
        #[test]
        fn matches_naive_model(ops in proptest::collection::vec(op(), 1..200)) {
            let base = Instant::now();
            let mut now = base;
            let mut t = Timers::new();
            // Model: armed timers as (when, seq, id, value); fires by smallest (when, seq).
            let mut model: Vec<(Instant, u64, TimerId, u32)> = Vec::new();
            let mut issued: Vec<TimerId> = Vec::new();
            let mut seq = 0u64;
            for (value, op) in ops.into_iter().enumerate() {
                let value = value as u32;
                seq += 1;
                match op {
                    Op::Insert(d) => {
                        let id = t.insert(now + ms(d), value);
                        prop_assert!(!issued.contains(&id), "id reused: {:?}", id);
                        issued.push(id);
                        model.push((now + ms(d), seq, id, value));
                    }
                    Op::Reset(i, d) if !issued.is_empty() => {
                        let id = issued[i % issued.len()];
                        let m = model.iter_mut().find(|m| m.2 == id);
                        prop_assert_eq!(t.reset(id, now + ms(d)), m.is_some());
                        if let Some(m) = m {
                            m.0 = now + ms(d);
                            m.1 = seq;
                        }
                    }
                    Op::Cancel(i) if !issued.is_empty() => {
                        let id = issued[i % issued.len()];
                        let m = model.iter().position(|m| m.2 == id);
                        prop_assert_eq!(t.cancel(id), m.map(|m| model.remove(m).3));
                    }
                    Op::Advance(d) => {
                        now += ms(d);
                        model.sort_by_key(|m| (m.0, m.1));
                        let due = model.iter().take_while(|m| m.0 <= now).count();
                        let want: Vec<_> = model.drain(..due).map(|m| (m.2, m.3)).collect();
                        let got: Vec<_> = std::iter::from_fn(|| t.pop_expired(now)).collect();
                        prop_assert_eq!(got, want);
                    }
                    Op::Reset(..) | Op::Cancel(_) => {}
                }
                prop_assert_eq!(t.len(), model.len());
                prop_assert_eq!(t.is_empty(), model.is_empty());
                prop_assert_eq!(t.next_deadline(), model.iter().map(|m| m.0).min());
                for &id in &issued {
                    prop_assert_eq!(t.contains(id), model.iter().any(|m| m.2 == id));
                }
            }
        }
    }
}
