//! The work queue between the sweep's workers: whole subdirectories, handed as open fds from a
//! busy worker to an idle one, and the idle accounting that tells when the walk is over (every
//! worker idle, nothing queued) or must stop (chown turned out impossible).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// Subdirectories (each an open fd) waiting for an idle worker.
pub const QUEUE_CAP: usize = 16;

/// Jobs waiting, and whether the walk is over.
struct State<J> {
    jobs: Vec<J>,
    done: bool,
}

/// A bounded queue of jobs for `workers` workers.
pub struct Queue<J> {
    workers: usize,
    state: Mutex<State<J>>,
    wake: Condvar,
    /// Workers waiting in [`Queue::take`]. Changed only under the lock (so the "all idle" test
    /// is exact), read without it by [`Queue::wanted`], a hint that only saves work.
    idle: AtomicUsize,
    stop: AtomicBool,
}

impl<J> Queue<J> {
    pub fn new(workers: usize) -> Queue<J> {
        Queue {
            workers,
            state: Mutex::new(State {
                jobs: Vec::new(),
                done: false,
            }),
            wake: Condvar::new(),
            idle: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        }
    }

    /// Queues `job` whatever the bound (the first job, before the workers start).
    pub fn push(&self, job: J) {
        self.state.lock().expect("queue lock").jobs.push(job);
    }

    /// The next job, waiting for one while other workers are busy; `None` once every worker is
    /// idle with nothing queued, or the walk was stopped.
    pub fn take(&self) -> Option<J> {
        let mut s = self.state.lock().expect("queue lock");
        loop {
            if s.done || self.stopped() {
                return None;
            }
            if let Some(j) = s.jobs.pop() {
                return Some(j);
            }
            let idle = self.idle.fetch_add(1, Ordering::Relaxed) + 1;
            if idle == self.workers {
                s.done = true;
                self.wake.notify_all();
                return None;
            }
            s = self.wake.wait(s).expect("queue lock");
            self.idle.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether a worker is waiting for a job (a hint: [`Queue::offer`] decides).
    pub fn wanted(&self) -> bool {
        self.idle.load(Ordering::Relaxed) > 0
    }

    /// Hands `job` to an idle worker if one is waiting and the queue has room; gives it back
    /// otherwise.
    pub fn offer(&self, job: J) -> Result<(), J> {
        if !self.wanted() {
            return Err(job);
        }
        let mut s = self.state.lock().expect("queue lock");
        if s.jobs.len() >= QUEUE_CAP || s.done {
            return Err(job);
        }
        s.jobs.push(job);
        self.wake.notify_one();
        Ok(())
    }

    /// Stops the walk: every worker's next [`Queue::take`] returns `None`.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _s = self.state.lock().expect("queue lock");
        self.wake.notify_all();
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Stops the walk when dropped during a panic: a worker that panics (a bug) must not leave the
/// others waiting for work forever, so the panic reaches whoever joins the workers. (Release
/// builds abort on a panic anyway; this is for builds that unwind, such as the tests'.)
pub struct StopOnPanic<'q, J>(pub &'q Queue<J>);

impl<J> Drop for StopOnPanic<'_, J> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn one_worker_takes_what_was_pushed_then_ends() {
        let q = Queue::new(1);
        q.push(1);
        q.push(2);
        assert_eq!(q.take(), Some(2));
        assert_eq!(q.take(), Some(1));
        assert_eq!(q.take(), None, "alone and idle: the walk is over");
        assert_eq!(q.take(), None, "and stays over");
    }

    #[test]
    fn offers_go_only_to_a_waiting_worker_and_within_the_bound() {
        let q: Queue<u32> = Queue::new(2);
        assert_eq!(q.offer(7), Err(7), "nobody is waiting");
        // Pretend one worker waits (as `take` would count it), without a thread.
        q.idle.store(1, Ordering::Relaxed);
        for i in 0..QUEUE_CAP {
            assert_eq!(q.offer(u32::try_from(i).unwrap()), Ok(()));
        }
        assert_eq!(q.offer(99), Err(99), "full at QUEUE_CAP");
        q.state.lock().unwrap().done = true;
        q.state.lock().unwrap().jobs.clear();
        assert_eq!(q.offer(5), Err(5), "over");
    }

    #[test]
    fn a_stop_ends_every_take() {
        let q = Queue::new(3);
        q.push(1);
        q.stop();
        assert!(q.stopped());
        assert_eq!(q.take(), None);
    }

    /// Workers that each turn a job n into jobs n-1 and n-2 (offered, else done in place) walk
    /// a tree of known size: every job is taken exactly once, and every worker ends.
    #[test]
    fn no_job_is_lost_or_taken_twice_among_workers() {
        fn fib_nodes(n: u64) -> u64 {
            if n < 2 {
                1
            } else {
                1 + fib_nodes(n - 1) + fib_nodes(n - 2)
            }
        }
        for workers in [1, 2, 4, 8] {
            let q = Queue::new(workers);
            let done = AtomicU64::new(0);
            q.push(18u64);
            std::thread::scope(|s| {
                for _ in 0..workers {
                    s.spawn(|| {
                        let mut stack = Vec::new();
                        while let Some(job) = q.take() {
                            stack.push(job);
                            while let Some(n) = stack.pop() {
                                done.fetch_add(1, Ordering::Relaxed);
                                for child in
                                    [n.checked_sub(1), n.checked_sub(2)].into_iter().flatten()
                                {
                                    if n >= 2
                                        && let Err(child) = q.offer(child)
                                    {
                                        stack.push(child);
                                    }
                                }
                            }
                        }
                    });
                }
            });
            assert_eq!(done.into_inner(), fib_nodes(18), "{workers} workers");
        }
    }

    #[test]
    fn a_worker_that_panics_stops_the_others() {
        let q = Queue::new(2);
        q.push(1u32);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::thread::scope(|s| {
                // Panics before it ever asks for work; the other would wait for it forever.
                s.spawn(|| {
                    let _stop = StopOnPanic(&q);
                    panic!("a bug in a worker");
                });
                s.spawn(|| {
                    let _stop = StopOnPanic(&q);
                    while q.take().is_some() {}
                });
            });
        }));
        assert!(outcome.is_err(), "the panic reaches the caller");
        assert!(q.stopped());
    }
}
