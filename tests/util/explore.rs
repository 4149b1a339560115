//! Exhaustive interleaving search shared by the protocol models (`park_model.rs`,
//! `slot_model.rs`): every reachable state of a small state machine is visited once, with the
//! number of complete interleavings through it counted, and the first broken property comes
//! back with the trace of steps that led to it.

#![allow(dead_code)] // each model reads a different part of the report

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hash;

/// One enabled step: what it does (for the trace) and the state after it, or the property it
/// broke.
pub type Step<S> = Result<(String, S), String>;

/// What a search found.
#[derive(Debug, Default)]
pub struct Report {
    pub states: usize,
    pub finals: usize,
    /// Complete interleavings (paths from the start to a final state).
    pub interleavings: u128,
    /// What `finish` said of each final state, deduplicated.
    pub outcomes: BTreeSet<String>,
}

/// Visits every state reachable from `start` through `steps`. `check` runs on every state,
/// `finish` on every state with no step left (its Ok value is collected as an outcome). A state
/// seen again on the current path is a livelock. Err carries the first failure and its trace.
pub fn explore<S: Clone + Eq + Hash>(
    start: S,
    steps: impl Fn(&S) -> Vec<Step<S>>,
    check: impl Fn(&S) -> Result<(), String>,
    finish: impl Fn(&S) -> Result<String, String>,
) -> Result<Report, String> {
    struct Search<S, St, C, F> {
        steps: St,
        check: C,
        finish: F,
        /// Completed states and how many interleavings run from each to an end.
        done: HashMap<S, u128>,
        on_path: HashSet<S>,
        trace: Vec<String>,
        finals: usize,
        outcomes: BTreeSet<String>,
    }

    impl<S, St, C, F> Search<S, St, C, F>
    where
        S: Clone + Eq + Hash,
        St: Fn(&S) -> Vec<Step<S>>,
        C: Fn(&S) -> Result<(), String>,
        F: Fn(&S) -> Result<String, String>,
    {
        fn visit(&mut self, s: &S) -> Result<u128, String> {
            if let Some(&n) = self.done.get(s) {
                return Ok(n);
            }
            if !self.on_path.insert(s.clone()) {
                return Err(self.fail("livelock: the interleaving can cycle forever"));
            }
            (self.check)(s).map_err(|e| self.fail(&e))?;
            let steps = (self.steps)(s);
            let mut paths = 0u128;
            if steps.is_empty() {
                self.finals += 1;
                let outcome = (self.finish)(s).map_err(|e| self.fail(&e))?;
                self.outcomes.insert(outcome);
                paths = 1;
            }
            for step in steps {
                let (what, next) = step.map_err(|e| self.fail(&e))?;
                self.trace.push(what);
                paths += self.visit(&next)?;
                self.trace.pop();
            }
            self.on_path.remove(s);
            self.done.insert(s.clone(), paths);
            Ok(paths)
        }

        fn fail(&self, why: &str) -> String {
            format!("{why}\n  after:\n    {}", self.trace.join("\n    "))
        }
    }

    let mut search = Search {
        steps,
        check,
        finish,
        done: HashMap::new(),
        on_path: HashSet::new(),
        trace: Vec::new(),
        finals: 0,
        outcomes: BTreeSet::new(),
    };
    let interleavings = search.visit(&start)?;
    Ok(Report {
        states: search.done.len(),
        finals: search.finals,
        interleavings,
        outcomes: search.outcomes,
    })
}
