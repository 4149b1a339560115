//! loom models of the sleep/wake handshake: the real `Inbox`, `wake`, `push_remote`,
//! `push_pinned`, `Sleepers::{submit_here, submit_to, wake_searcher, steal, found_work, sleep}` on loom's
//! atomics, fences and mutexes.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib loom`
//!
//! Modelled:
//! - a worker's bell (its eventfd): a flag behind a mutex and a condition variable, set by
//!   a ring and cleared by the wait it ends, so a ring before the wait ends it at once;
//! - the scheduler loop (`Local::run`) with its run queue and timers left out: take the
//!   remote wake-ups, else pop an unstarted coroutine, else steal, else sleep — the order
//!   of the real loop's non-fair rounds — each find reported through `found_work`;
//! - "running" a coroutine: counting it done;
//! - a coroutine that runs for good (it never parks): its worker looks at no queue again.
//!   In the models that spawn from a worker, worker 0 is a thread that spawns and does
//!   nothing more; in `loom_idle_three_workers_spawn_from_thread` it has no thread (it runs
//!   a coroutine for good from the start) and a plain thread spawns onto it. Worker 1 runs
//!   for good the first coroutine it finds in `loom_idle_three_workers_steal` and
//!   `loom_idle_three_workers_spawn_from_thread`, and the one its ready fd wakes in
//!   `loom_idle_three_workers_fd_ready`;
//! - an fd becoming ready: a ring from a thread that is no producer (the worker wakes by
//!   itself, with no work found and maybe with the searcher's role on its way). In
//!   `loom_idle_three_workers_fd_ready` a flag set before the ring stands for the ready
//!   fd: the worker's look before a sleep sees it as its own work.
//!
//! Checked in every execution: all work handed over is run (a lost wake-up leaves it queued
//! with every worker asleep, and the main thread waiting for it: loom reports a deadlock);
//! at the end no worker is counted idle and none searching (`searching` left at 1 would
//! stop every later spawn from waking a helper; a double give-back wraps it).
//!
//! 2,700–211,247 executions per model, about 60 s in all. `loom_idle_spawn_from_thread`
//! and `loom_idle_searcher_wakes_by_itself` explore at most 3 preemptions (at
//! `loom_builder`'s 4 they take 1.6 million and 252,336 executions), the three with three
//! workers at most 2 (at 3 `loom_idle_three_workers_steal` and
//! `loom_idle_three_workers_fd_ready` take 7.0 million and 3.9 million executions, 19
//! minutes, and `loom_idle_three_workers_spawn_from_thread` 1.4 million, 140 s; all pass).
//! Each breakage below fails its models at these bounds.
//!
//! The models can fail (each checked on its own, then the code restored):
//! - `sleep` without its fence between the announce and the look:
//!   `loom_idle_spawn_on_busy_worker`, `loom_idle_searcher_wakes_by_itself` and the three
//!   three-worker models deadlock.
//! - `sleep` announcing with a plain store of `sleeping` and no fence:
//!   `loom_idle_remote_wake` and the three three-worker models deadlock.
//! - `wake` reading `sleeping` before it swaps it (a common shortcut):
//!   `loom_idle_remote_wake` and `loom_idle_pinned_push` deadlock.
//! - `push_pinned` without its wake, or `sleep`'s look leaving out the `pinned` queue:
//!   `loom_idle_pinned_push` deadlocks.
//! - `push_fresh` without its fence: `loom_idle_spawn_on_busy_worker`,
//!   `loom_idle_searcher_wakes_by_itself` and the three three-worker models deadlock.
//! - `sleep`'s look leaving out other workers' unstarted coroutines:
//!   `loom_idle_spawn_on_busy_worker`, `loom_idle_searcher_wakes_by_itself` and the three
//!   three-worker models deadlock.
//! - `wake_to_search` giving the count back with a plain store of `false` (the bug its
//!   comment tells of): `loom_idle_searcher_wakes_by_itself` and
//!   `loom_idle_three_workers_fd_ready` end with `searching` wrapped;
//!   `loom_idle_three_workers_steal` and `loom_idle_three_workers_spawn_from_thread`
//!   deadlock.
//! - `pass_search_on` without its fence: `loom_idle_three_workers_steal` and
//!   `loom_idle_three_workers_spawn_from_thread` deadlock.
//! - `found_work` passing the search on only when the worker held the role, not after any
//!   steal: `loom_idle_three_workers_steal` deadlocks (the coroutine a steal of two queued
//!   on worker 1 waits there for good).
//! - `wake_searcher` offering the role to the next worker only: the three three-worker
//!   models deadlock.
//! - `wake_searcher` stopping at the first sleeping worker that did not take the role:
//!   `loom_idle_three_workers_fd_ready` deadlocks.
//!
//! The last four fail none of the two-worker models: there no worker but the spawner runs
//! for good, so a wake missed after a find only delays the work, and `wake_searcher` has
//! one worker to try. `loom_idle_three_workers_spawn_from_thread` fails neither the
//! `found_work` one (its steals take one of at most two coroutines, queuing none on the
//! stealer) nor the last (a worker refuses the role only when its look has seen the first
//! coroutine, and the second spawn, made after the role was given back, offers it again),
//! not at 3 preemptions either.
//!
//! Not covered: the cancels' flag (a sleep may miss fewer than a batch by design), more
//! than three workers (loom runs at most five threads, the main one among them), and a
//! plain thread's spawn onto a sleeping worker among three (`loom_idle_spawn_from_thread`
//! rings one of two; among three, with worker 0 a worker that may sleep, a model takes 5.2
//! million executions, 8 minutes, at 2 preemptions).

use super::{Inbox, Sleeper, Sleepers, Unstarted};
use crate::runtime::park::loom_explore as explore;
use loom::sync::atomic::AtomicBool;
use loom::sync::{Condvar, Mutex};
use loom::thread;
use std::cell::Cell;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

/// A worker of the model: its inbox and its bell.
struct Worker {
    inbox: Inbox<u32, u32>,
    /// Coroutines only this worker may start (`worker::Shared::pinned`); looked at only in
    /// `loom_idle_pinned_push` (`Rt::pinned`): a look adds an atomic, and executions.
    pinned: Unstarted<u32>,
    rung: Mutex<bool>,
    bell: Condvar,
}

impl Sleeper for Worker {
    type New = u32;
    type Woken = u32;

    fn inbox(&self) -> &Inbox<u32, u32> {
        &self.inbox
    }

    fn ring(&self) {
        *self.rung.lock().unwrap() = true;
        self.bell.notify_one();
    }
}

impl Worker {
    /// `epoll_wait` with no timeout: returns at the first ring (and takes it).
    fn wait(&self) {
        let mut rung = self.rung.lock().unwrap();
        while !*rung {
            rung = self.bell.wait(rung).unwrap();
        }
        *rung = false;
    }
}

/// What the model shares: the workers, the runtime-wide counts, the work run so far and
/// the stop flag the main thread raises once all of it has run.
struct Rt {
    workers: Vec<Arc<Worker>>,
    sleepers: Sleepers,
    done: Mutex<usize>,
    all_done: Condvar,
    stop: AtomicBool,
    /// Whether the workers look at their `pinned` queues.
    pinned: bool,
}

impl Rt {
    fn new(workers: usize) -> Arc<Rt> {
        Rt::build(workers, false)
    }

    fn build(workers: usize, pinned: bool) -> Arc<Rt> {
        Arc::new(Rt {
            workers: (0..workers)
                .map(|_| {
                    Arc::new(Worker {
                        inbox: Inbox::new(),
                        pinned: Unstarted::new(),
                        rung: Mutex::new(false),
                        bell: Condvar::new(),
                    })
                })
                .collect(),
            sleepers: Sleepers::new(),
            done: Mutex::new(0),
            all_done: Condvar::new(),
            stop: AtomicBool::new(false),
            pinned,
        })
    }

    fn run(&self, n: usize) {
        *self.done.lock().unwrap() += n;
        self.all_done.notify_all();
    }

    /// The scheduler loop of worker `me` until the main thread stops it. With `for_good`,
    /// the first coroutine it finds runs for good (it never parks), so the worker looks at
    /// no queue again. `fd`, if given, is an fd of this worker that may become ready: once
    /// the worker sees it (first thing in a round, or in the look before a sleep), the
    /// coroutine that waited on it runs for good. The model with an fd hands over no remote
    /// wake-ups, and its worker does not look for any: a look would add an atomic, and
    /// executions, for nothing.
    fn work(&self, me: usize, fd: Option<&AtomicBool>, for_good: bool) {
        let searching = Cell::new(false);
        let w = &self.workers[me];
        let fd_ready = || fd.is_some_and(|f| f.load(SeqCst));
        while !self.stop.load(SeqCst) {
            if fd_ready() {
                self.sleepers
                    .found_work(&self.workers, me, &searching, false);
                return;
            }
            let woken = if fd.is_none() {
                w.inbox.drain_remote().len()
            } else {
                0
            };
            let (n, stole) = if woken > 0 {
                (woken, false)
            } else if (self.pinned && w.pinned.pop().is_some()) || w.inbox.fresh().pop().is_some() {
                (1, false)
            } else if self.sleepers.steal(&self.workers, me).is_some() {
                (1, true)
            } else {
                let local_work = || fd_ready() || (self.pinned && w.pinned.len() > 0);
                self.sleepers
                    .sleep(&self.workers, me, &searching, local_work, || w.wait());
                continue;
            };
            self.sleepers
                .found_work(&self.workers, me, &searching, stole);
            self.run(n);
            if for_good {
                return;
            }
        }
        // A worker never stops in the runtime; here it leaves the search as a sleep would.
        self.sleepers.give_up_search(&searching);
    }

    /// Runs `f` on a loom thread of its own.
    fn thread(self: &Arc<Rt>, f: impl FnOnce(&Rt) + Send + 'static) -> thread::JoinHandle<()> {
        let rt = self.clone();
        thread::spawn(move || f(&rt))
    }

    /// Starts worker `me`'s loop on a thread of its own.
    fn spawn_worker(self: &Arc<Rt>, me: usize) -> thread::JoinHandle<()> {
        self.thread(move |rt| rt.work(me, None, false))
    }

    /// Workers 1 and 2 of three, worker 1 running the first coroutine it finds for good
    /// (worker 0 is the models' own business).
    fn worker_1_for_good_and_2(self: &Arc<Rt>) -> Vec<thread::JoinHandle<()>> {
        vec![
            self.thread(|rt| rt.work(1, None, true)),
            self.spawn_worker(2),
        ]
    }

    /// Waits until `n` pieces of work have run, stops the workers and checks the counts.
    fn finish(&self, n: usize, workers: Vec<thread::JoinHandle<()>>) {
        let mut done = self.done.lock().unwrap();
        while *done < n {
            done = self.all_done.wait(done).unwrap();
        }
        assert_eq!(*done, n, "work ran twice");
        drop(done);
        self.stop.store(true, SeqCst);
        for w in &self.workers {
            w.ring();
        }
        for w in workers {
            w.join().unwrap();
        }
        let (idle, searching) = self.sleepers.counts();
        assert_eq!(idle, 0, "a worker left counted idle");
        assert_eq!(searching, 0, "the searcher's count left behind or wrapped");
    }
}

/// A plain thread unparks a coroutine of a worker that is going to sleep (`schedule_at`'s
/// remote path): the worker must wake and run it.
#[test]
fn loom_idle_remote_wake() {
    explore("loom_idle_remote_wake", None, || {
        let rt = Rt::new(1);
        let w0 = rt.spawn_worker(0);
        let producer = rt.thread(|rt| super::push_remote(&*rt.workers[0], 7));
        producer.join().unwrap();
        rt.finish(1, vec![w0]);
    });
}

/// Another thread places a coroutine that only worker 0 may start (`Spawn::spread`'s
/// path, `worker::submit_spread`) while the worker goes to sleep: it must wake and start it.
#[test]
fn loom_idle_pinned_push() {
    explore("loom_idle_pinned_push", None, || {
        let rt = Rt::build(1, true);
        let w0 = rt.spawn_worker(0);
        let producer = rt.thread(|rt| {
            let w = &*rt.workers[0];
            super::push_pinned(w, &w.pinned, 7);
        });
        producer.join().unwrap();
        rt.finish(1, vec![w0]);
    });
}

/// A plain thread spawns onto worker 0 of two (`submit`'s path off a worker): woken or
/// not, one of the two must start it.
#[test]
fn loom_idle_spawn_from_thread() {
    explore("loom_idle_spawn_from_thread", Some(3), || {
        let rt = Rt::new(2);
        let workers = vec![rt.spawn_worker(0), rt.spawn_worker(1)];
        rt.sleepers.submit_to(&rt.workers, 0, 1);
        rt.finish(1, workers);
    });
}

/// A coroutine on worker 0 spawns two more and then runs for good (worker 0 never looks at
/// its queues again): worker 1, asleep or about to be, must be woken to steal and run both.
#[test]
fn loom_idle_spawn_on_busy_worker() {
    explore("loom_idle_spawn_on_busy_worker", None, || {
        let rt = Rt::new(2);
        let w1 = rt.spawn_worker(1);
        let busy = rt.thread(|rt| {
            rt.sleepers.submit_here(&rt.workers, 0, 1);
            rt.sleepers.submit_here(&rt.workers, 0, 2);
        });
        busy.join().unwrap();
        rt.finish(2, vec![w1]);
    });
}

/// As above with one spawn, while an fd of worker 1 becomes ready: worker 1 may wake by
/// itself just as the spawner hands it the searcher's role, and exactly one of the two
/// must end up giving the count back.
#[test]
fn loom_idle_searcher_wakes_by_itself() {
    explore("loom_idle_searcher_wakes_by_itself", Some(3), || {
        let rt = Rt::new(2);
        let w1 = rt.spawn_worker(1);
        let busy = rt.thread(|rt| rt.sleepers.submit_here(&rt.workers, 0, 1));
        let ready_fd = rt.thread(|rt| rt.workers[1].ring());
        busy.join().unwrap();
        ready_fd.join().unwrap();
        rt.finish(1, vec![w1]);
    });
}

/// A coroutine on worker 0 of three spawns three more and then runs for good, while
/// workers 1 and 2 steal from its queue; worker 1 runs the first coroutine it finds for
/// good too. A steal of two of three queues one on the stealer, and the searcher's role
/// may pass from the spawner to one worker and from it to the other. Whatever worker 1
/// does not run, worker 2 must.
#[test]
fn loom_idle_three_workers_steal() {
    explore("loom_idle_three_workers_steal", Some(2), || {
        let rt = Rt::new(3);
        let workers = rt.worker_1_for_good_and_2();
        let busy = rt.thread(|rt| {
            for t in 1..=3 {
                rt.sleepers.submit_here(&rt.workers, 0, t);
            }
        });
        busy.join().unwrap();
        rt.finish(3, workers);
    });
}

/// A coroutine on worker 0 of three spawns one more and runs for good, while an fd of
/// worker 1 becomes ready and the coroutine waiting on it runs for good too. Worker 1 may
/// wake by itself just as the spawner hands it the searcher's role: then either the
/// spawner takes the count back and offers it to worker 2, or worker 1 keeps the role and
/// wakes worker 2 as it leaves the search. Either way the new coroutine must run.
#[test]
fn loom_idle_three_workers_fd_ready() {
    explore("loom_idle_three_workers_fd_ready", Some(2), || {
        let rt = Rt::new(3);
        let fd_ready = Arc::new(AtomicBool::new(false));
        let fd = fd_ready.clone();
        let w1 = rt.thread(move |rt| rt.work(1, Some(&fd), false));
        let workers = vec![w1, rt.spawn_worker(2)];
        let busy = rt.thread(|rt| rt.sleepers.submit_here(&rt.workers, 0, 1));
        let ready_fd = rt.thread(move |rt| {
            fd_ready.store(true, SeqCst);
            rt.workers[1].ring();
        });
        busy.join().unwrap();
        ready_fd.join().unwrap();
        rt.finish(1, workers);
    });
}

/// A plain thread spawns two coroutines onto worker 0 of three (`submit`'s path off a
/// worker) while worker 0 runs a coroutine for good: `wake` finds it awake each time, and
/// the spawn falls back on `wake_searcher`. Worker 1 runs the first coroutine it finds for
/// good, so the second spawn may find the searcher's role taken and wake no one: then
/// worker 1, leaving the search, must hand the role on to worker 2, which must run it.
#[test]
fn loom_idle_three_workers_spawn_from_thread() {
    explore("loom_idle_three_workers_spawn_from_thread", Some(2), || {
        let rt = Rt::new(3);
        let workers = rt.worker_1_for_good_and_2();
        let spawner = rt.thread(|rt| {
            rt.sleepers.submit_to(&rt.workers, 0, 1);
            rt.sleepers.submit_to(&rt.workers, 0, 2);
        });
        spawner.join().unwrap();
        rt.finish(2, workers);
    });
}
