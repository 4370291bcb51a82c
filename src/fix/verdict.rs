//! Whether chown works here at all, and the messages held back until that is known.
//!
//! Where chown never works (ids a user namespace does not map, some NAS mounts) a sweep would
//! print one denial per entry; instead the messages of denied chowns are held while none has
//! succeeded, and after [`DENIED_LIMIT`] denials the sweep looks for evidence that chown cannot
//! work here (the probe): with it, the walk stops and one line says so; without it (a few
//! immutable files first in walk order), chown works, and the held messages go out as the
//! ordinary errors they are.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The probe that tells whether chown is impossible here.
pub type Probe = Box<dyn FnOnce() -> bool + Send>;

/// Denied chowns, with none succeeding, after which the probe is asked.
pub const DENIED_LIMIT: u64 = 8;

/// What is known of chown here.
pub struct Verdict<P> {
    /// Set once chown is known to work: one succeeded, or the probe found it possible.
    works: AtomicBool,
    impossible: AtomicBool,
    denied: AtomicU64,
    held: Mutex<Vec<String>>,
    /// Answers "is chown impossible here?"; asked once, under the lock.
    probe: Mutex<Option<P>>,
}

/// What to do after a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Go,
    /// Chown is impossible here: stop the walk.
    Stop,
}

impl<P: FnOnce() -> bool> Verdict<P> {
    pub fn new(probe: P) -> Verdict<P> {
        Verdict {
            works: AtomicBool::new(false),
            impossible: AtomicBool::new(false),
            denied: AtomicU64::new(0),
            held: Mutex::new(Vec::new()),
            probe: Mutex::new(Some(probe)),
        }
    }

    /// A chown succeeded; returns the held messages, due now.
    pub fn succeeded(&self) -> Vec<String> {
        if self.works.swap(true, Ordering::Relaxed) {
            return Vec::new();
        }
        self.release()
    }

    /// A chown was denied (EPERM or EINVAL) with message `line`: held while chown is not known
    /// to work, else returned to print now, and the walk told whether to go on.
    pub fn denied(&self, line: String) -> (Vec<String>, Next) {
        let mut out = Vec::new();
        if self.works.load(Ordering::Relaxed) {
            out.push(line);
        } else {
            self.held.lock().expect("held lock").push(line);
        }
        let denied = self.denied.fetch_add(1, Ordering::Relaxed) + 1;
        if denied < DENIED_LIMIT || self.works.load(Ordering::Relaxed) {
            return (out, Next::Go);
        }
        let probe = self.probe.lock().expect("probe lock").take();
        match probe.map(|p| p()) {
            Some(true) => {
                self.impossible.store(true, Ordering::Relaxed);
                return (out, Next::Stop);
            }
            Some(false) => {
                self.works.store(true, Ordering::Relaxed);
                out.extend(self.release());
            }
            // Asked already, by another worker: its answer stands.
            None => {}
        }
        let next = if self.impossible() {
            Next::Stop
        } else {
            Next::Go
        };
        (out, next)
    }

    /// Whether chown was found impossible here.
    pub fn impossible(&self) -> bool {
        self.impossible.load(Ordering::Relaxed)
    }

    /// At the end of the walk: what is still held, to print unless chown was impossible (then
    /// one line says so instead).
    pub fn finish(&self) -> Vec<String> {
        if self.impossible() {
            Vec::new()
        } else {
            self.release()
        }
    }

    fn release(&self) -> Vec<String> {
        std::mem::take(&mut *self.held.lock().expect("held lock"))
    }
}

#[cfg(test)]
impl Verdict<Probe> {
    /// A verdict for other modules' tests: chown found impossible already, or not yet judged
    /// (and never found impossible).
    pub fn decided(impossible: bool) -> Verdict<Probe> {
        let v = Verdict::new(Box::new(|| false) as Probe);
        v.impossible.store(impossible, Ordering::Relaxed);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn lines(n: u64) -> impl Iterator<Item = String> {
        (0..n).map(|i| format!("denied {i}"))
    }

    #[test]
    fn denials_are_held_then_stop_the_walk_on_evidence() {
        let asked = Cell::new(0);
        let v = Verdict::new(|| {
            asked.set(asked.get() + 1);
            true
        });
        for line in lines(DENIED_LIMIT - 1) {
            assert_eq!(v.denied(line), (vec![], Next::Go));
        }
        assert_eq!(asked.get(), 0, "not before the limit");
        assert_eq!(v.denied("last".into()), (vec![], Next::Stop));
        assert_eq!(asked.get(), 1);
        assert!(v.impossible());
        assert_eq!(v.denied("after".into()).1, Next::Stop, "stays impossible");
        assert_eq!(asked.get(), 1, "asked once");
        assert!(v.finish().is_empty(), "one line replaces them");
    }

    #[test]
    fn without_evidence_the_held_denials_are_ordinary_errors() {
        let v = Verdict::new(|| false);
        let mut printed = Vec::new();
        for line in lines(DENIED_LIMIT) {
            let (out, next) = v.denied(line);
            assert_eq!(next, Next::Go);
            printed.extend(out);
        }
        assert_eq!(
            printed,
            lines(DENIED_LIMIT).collect::<Vec<_>>(),
            "released, in order"
        );
        assert_eq!(
            v.denied("later".into()),
            (vec!["later".to_string()], Next::Go)
        );
        assert!(!v.impossible());
        assert!(v.finish().is_empty());
    }

    #[test]
    fn a_success_releases_and_the_probe_is_never_asked() {
        let v = Verdict::new(|| panic!("chown works: no probe needed"));
        assert_eq!(v.denied("first".into()), (vec![], Next::Go));
        assert_eq!(v.succeeded(), vec!["first".to_string()]);
        assert!(v.succeeded().is_empty(), "released once");
        for line in lines(2 * DENIED_LIMIT) {
            let (out, next) = v.denied(line.clone());
            assert_eq!((out, next), (vec![line], Next::Go));
        }
    }

    #[test]
    fn a_few_denials_without_success_come_out_at_the_end() {
        let v = Verdict::new(|| panic!("too few denials to ask"));
        for line in lines(DENIED_LIMIT - 1) {
            v.denied(line);
        }
        assert_eq!(v.finish(), lines(DENIED_LIMIT - 1).collect::<Vec<_>>());
    }
}
