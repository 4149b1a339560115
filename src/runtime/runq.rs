//! A worker's queue of started coroutines that are ready to run: `runnext` plus a FIFO.
//!
//! Plain data owned by one worker thread — no atomics, no locks, no syscalls — so it is unit-
//! and property-tested below (and can run under Miri). `worker.rs` holds it as
//! `RunQueue<Arc<Task>>` in its thread-local `Local`.
//!
//! ```text
//!   runnext: [ c ]          ← push_runnext(c): a coroutine woken on this worker by a
//!                              channel, a lock or a timer
//!   queue:   [ a | b | … ]  ← push_back(x): a yielder, a coroutine woken from elsewhere,
//!                              a netpoll wake-up, or a runnext displaced by a newer one
//!
//!   pop(fair = false):  runnext if set, else the queue head
//!   pop(fair = true):   the queue head if any (runnext moves to the back), else runnext
//! ```
//!
//! Why `runnext` (Go's `runnext`): a coroutine just woken by a channel send or a timer is
//! likely to find its data still in cache, so it runs next. Netpoll wake-ups come in batches
//! and go to the back instead, in the order the kernel reported them (as Go injects its
//! netpoll list): in `runnext`, each batch's last connection would jump ahead of every
//! connection already waiting (`poll/mod.rs` has the measurement).
//!
//! Why the fair pop: two coroutines that wake each other (a ping-pong over a channel) would
//! otherwise take `runnext` turn about forever and the queue would never move. Every
//! [`FAIRNESS_TICK`]-th scheduling round the worker pops with `fair = true`.
//!
//! # Invariant: no starvation
//!
//! An item never moves towards the back: pushes go behind it (`push_back`, and the runnext
//! that `push_runnext` displaces), and every pop takes either `runnext` or the head. A fair
//! pop of a non-empty queue always takes the head. So an item at position `p` (0 = head) is
//! popped within `p + 1` fair pops — within `(p + 1) * FAIRNESS_TICK` rounds of the worker
//! whatever is pushed meanwhile. The property test below checks exactly this bound.

use std::collections::VecDeque;

/// Every this many scheduling rounds a busy worker also looks at its timers and remote
/// queue (and its netpoller, while the run queue is short or at least every 64th time:
/// `IO_QUEUE_SHORT` in `worker.rs`), and pops its run queue fairly (the head before
/// `runnext`), so none of them starves behind a busy run queue (Go checks its global queue
/// every 61 ticks for the same reason). The unstarted queue waits out a fair round: the
/// rounds either side of it alternate between it and the run queue.
pub(crate) const FAIRNESS_TICK: u32 = 61;

/// `runnext` plus a FIFO queue; see the module docs for the pop order.
pub(crate) struct RunQueue<T> {
    /// Runs before the queue, except on a fair pop.
    runnext: Option<T>,
    queue: VecDeque<T>,
}

impl<T> RunQueue<T> {
    pub(crate) fn new() -> Self {
        RunQueue {
            runnext: None,
            queue: VecDeque::new(),
        }
    }

    /// Makes `item` the next to run; a runnext it displaces goes to the back of the queue.
    pub(crate) fn push_runnext(&mut self, item: T) {
        if let Some(prev) = self.runnext.replace(item) {
            self.queue.push_back(prev);
        }
    }

    /// Queues `item` behind everything already queued.
    pub(crate) fn push_back(&mut self, item: T) {
        self.queue.push_back(item);
    }

    /// Queues `items` in order behind everything already queued.
    pub(crate) fn extend(&mut self, items: impl IntoIterator<Item = T>) {
        self.queue.extend(items);
    }

    /// What the `n`-th `pop(false)` from now would return (0: the next), left in place; for
    /// prefetching, so a push in between may change the answer.
    pub(crate) fn peek_nth(&self, n: usize) -> Option<&T> {
        match &self.runnext {
            Some(r) if n == 0 => Some(r),
            Some(_) => self.queue.get(n - 1),
            None => self.queue.get(n),
        }
    }

    /// The next item to run. `fair` (once every [`FAIRNESS_TICK`] rounds) lets the queue's
    /// head go before `runnext`, which then moves to the back.
    pub(crate) fn pop(&mut self, fair: bool) -> Option<T> {
        if fair {
            if let Some(head) = self.queue.pop_front() {
                if let Some(next) = self.runnext.take() {
                    self.queue.push_back(next);
                }
                return Some(head);
            }
        }
        self.runnext.take().or_else(|| self.queue.pop_front())
    }

    /// Items waiting, `runnext` included.
    pub(crate) fn len(&self) -> usize {
        self.queue.len() + usize::from(self.runnext.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Pops everything with `fair = false`.
    fn drain(q: &mut RunQueue<u32>) -> Vec<u32> {
        std::iter::from_fn(|| q.pop(false)).collect()
    }

    #[test]
    fn runnext_goes_first_and_the_queue_is_fifo() {
        let mut q = RunQueue::new();
        assert_eq!(q.pop(false), None);
        assert_eq!(q.pop(true), None);
        q.push_back(1);
        q.push_back(2);
        q.push_runnext(9);
        assert_eq!(q.len(), 3);
        assert_eq!(drain(&mut q), [9, 1, 2]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn peek_nth_names_the_coming_pops_in_order() {
        let mut q = RunQueue::new();
        assert_eq!(q.peek_nth(0), None);
        q.push_back(1);
        q.push_back(2);
        q.push_runnext(3);
        let seen: Vec<_> = (0..4).map(|n| q.peek_nth(n).copied()).collect();
        assert_eq!(seen, [Some(3), Some(1), Some(2), None]);
        assert_eq!(drain(&mut q), [3, 1, 2]);
    }

    #[test]
    fn displaced_runnext_goes_to_the_back() {
        let mut q = RunQueue::new();
        q.push_back(1);
        q.push_runnext(7);
        q.push_runnext(8); // 7 is displaced behind 1
        q.extend([2, 3]);
        assert_eq!(drain(&mut q), [8, 1, 7, 2, 3]);
    }

    #[test]
    fn fair_pop_takes_the_head_and_moves_runnext_to_the_back() {
        let mut q = RunQueue::new();
        q.extend([1, 2]);
        q.push_runnext(9);
        assert_eq!(q.pop(true), Some(1));
        assert_eq!(drain(&mut q), [2, 9]);
        // with an empty queue a fair pop still takes runnext
        q.push_runnext(5);
        assert_eq!(q.pop(true), Some(5));
        assert_eq!(q.pop(true), None);
    }

    /// Two coroutines that wake each other: each one that runs puts the other in runnext.
    /// Without the fair pop, `waiting` would never run.
    #[test]
    fn ping_pong_through_runnext_does_not_starve_the_queue() {
        let (ping, pong, waiting) = (1, 2, 3);
        let mut q = RunQueue::new();
        q.push_back(waiting);
        q.push_runnext(ping);
        let mut tick = 0u32;
        let ran_at = loop {
            tick += 1;
            match q.pop(tick % FAIRNESS_TICK == 0) {
                Some(x) if x == waiting => break tick,
                Some(x) => q.push_runnext(if x == ping { pong } else { ping }),
                None => panic!("the queue lost an item"),
            }
            assert!(tick < 10 * FAIRNESS_TICK, "`waiting` starved");
        };
        assert_eq!(ran_at, FAIRNESS_TICK, "the first fair round runs the head");
        // the ping-pong goes on afterwards: the one displaced to the back was not lost
        assert_eq!(q.len(), 1);
    }

    #[derive(Clone, Copy, Debug)]
    enum Op {
        PushRunnext,
        PushBack,
        /// Extend by this many fresh items (a drained remote queue).
        Extend(u8),
        /// One scheduling round: tick, pop fairly if the tick says so. If `requeue`, the
        /// popped item yields and goes to the back; if `wake_runnext`, it wakes a new item
        /// into runnext (the ping-pong case).
        Round {
            requeue: bool,
            wake_runnext: bool,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::PushRunnext),
            2 => Just(Op::PushBack),
            1 => (0u8..4).prop_map(Op::Extend),
            6 => (any::<bool>(), any::<bool>())
                .prop_map(|(requeue, wake_runnext)| Op::Round { requeue, wake_runnext }),
        ]
    }

    /// (item, round when queued, position when queued)
    type Queued = (u32, u32, usize);

    /// The naive model: runnext and a `Vec` queue whose entries remember at which round and
    /// at which position they were queued.
    #[derive(Default)]
    struct Model {
        runnext: Option<u32>,
        queue: Vec<Queued>,
    }

    impl Model {
        fn enqueue(&mut self, item: u32, round: u32) {
            let pos = self.queue.len();
            self.queue.push((item, round, pos));
        }

        /// The pop order of the module docs, written the obvious way. Returns the item and,
        /// if it came from the queue, its whole queue entry.
        fn pop(&mut self, fair: bool, round: u32) -> Option<(u32, Option<Queued>)> {
            if fair && !self.queue.is_empty() {
                let head = self.queue.remove(0);
                if let Some(n) = self.runnext.take() {
                    self.enqueue(n, round);
                }
                return Some((head.0, Some(head)));
            }
            if let Some(n) = self.runnext.take() {
                return Some((n, None));
            }
            (!self.queue.is_empty()).then(|| {
                let head = self.queue.remove(0);
                (head.0, Some(head))
            })
        }
    }

    /// A queued item popped at `round` waited at most `(position + 1) * FAIRNESS_TICK`
    /// rounds (the module's no-starvation invariant).
    fn check_wait(entry: Queued, round: u32) -> Result<(), TestCaseError> {
        let (item, queued_at, pos) = entry;
        let waited = round - queued_at;
        prop_assert!(
            waited <= (pos as u32 + 1) * FAIRNESS_TICK,
            "item {} waited {} rounds from position {}",
            item,
            waited,
            pos
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Against the model: the same item comes out of every pop; every pushed item comes
        /// out exactly once; runnext goes first except on fair rounds; and no queued item
        /// waits more than `(position + 1) * FAIRNESS_TICK` rounds.
        #[test]
        fn matches_model_pops_each_item_once_and_never_starves(
            ops in proptest::collection::vec(op(), 1..1_000),
        ) {
            let mut q = RunQueue::new();
            let mut model = Model::default();
            let mut next_item = 0u32;
            let (mut pushed, mut popped) = (Vec::new(), Vec::new());
            let mut round = 0u32;
            // After the generated ops, plain rounds drain what is left.
            let drain = std::iter::repeat(Op::Round { requeue: false, wake_runnext: false });
            for (i, op) in ops.iter().copied().chain(drain).enumerate() {
                let mut fresh = || {
                    next_item += 1;
                    pushed.push(next_item);
                    next_item
                };
                match op {
                    Op::PushRunnext => {
                        let x = fresh();
                        q.push_runnext(x);
                        if let Some(prev) = model.runnext.replace(x) {
                            model.enqueue(prev, round);
                        }
                    }
                    Op::PushBack => {
                        let x = fresh();
                        q.push_back(x);
                        model.enqueue(x, round);
                    }
                    Op::Extend(n) => {
                        let items: Vec<u32> = (0..n).map(|_| fresh()).collect();
                        q.extend(items.iter().copied());
                        for x in items {
                            model.enqueue(x, round);
                        }
                    }
                    Op::Round { requeue, wake_runnext } => {
                        round += 1;
                        let fair = round % FAIRNESS_TICK == 0;
                        let runnext_before = model.runnext;
                        let got = q.pop(fair);
                        let want = model.pop(fair, round);
                        prop_assert_eq!(got, want.map(|w| w.0), "round {} (fair: {})", round, fair);
                        let Some(x) = got else {
                            if i >= ops.len() {
                                break; // drained, and nothing pushes any more
                            }
                            continue;
                        };
                        if let (false, Some(n)) = (fair, runnext_before) {
                            prop_assert_eq!(x, n, "runnext must go first");
                        }
                        if let Some(entry) = want.and_then(|w| w.1) {
                            check_wait(entry, round)?;
                        }
                        if requeue {
                            // a yield: the same item goes to the back
                            q.push_back(x);
                            model.enqueue(x, round);
                        } else {
                            popped.push(x);
                        }
                        if wake_runnext {
                            // it woke another: the ping-pong that runnext alone would starve
                            let y = fresh();
                            q.push_runnext(y);
                            if let Some(prev) = model.runnext.replace(y) {
                                model.enqueue(prev, round);
                            }
                        }
                    }
                }
                let model_len = model.queue.len() + usize::from(model.runnext.is_some());
                prop_assert_eq!(q.len(), model_len);
                // peek_nth names the coming non-fair pops: runnext, then the queue in order
                let coming: Vec<u32> =
                    model.runnext.into_iter().chain(model.queue.iter().map(|e| e.0)).collect();
                for n in 0..=coming.len().min(4) {
                    prop_assert_eq!(q.peek_nth(n).copied(), coming.get(n).copied());
                }
            }
            prop_assert_eq!(q.len(), 0, "drained");
            popped.sort_unstable();
            pushed.sort_unstable();
            prop_assert_eq!(popped, pushed, "every pushed item popped exactly once");
        }
    }
}
