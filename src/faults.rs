//! Faults injected on purpose, for test suites that must see their retry and error paths
//! run (the admin API adds and removes the rules). A rule targets either a method, whose
//! calls then answer an error, after a delay or not, or only wait; or a kind of background
//! work (`create-image`, ...), whose next operations then end failed. A rule fires a
//! number of times, on every match, or with a probability.
//!
//! Rules live in memory, each replica its own. The RPC layer asks [`Faults::on_call`]
//! before every call, gRPC and REST alike; the executor asks [`Faults::on_ending`] before
//! it ends work. Both cost one atomic load while no rule is set. Every injection is logged
//! as injected and counted in the metrics.
//!
//! An operation's firing is reserved until the store has ended the operation: if another
//! ending (a cancel, a finish, a reset) won, the executor gives it back
//! ([`Faults::settle`]), so that a rule of `times: 1` fails the next operation that does
//! end by its work, whatever races it.

use crate::error::Code;
use crate::pb::google::rpc::Status;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tracing::warn;

/// The most rules set at once: every call of a method looks through them.
pub const MAX_RULES: usize = 1000;

/// What a rule matches.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Calls of a method, by its gRPC path (`/yandex.cloud.compute.v1.ImageService/Get`).
    Method(String),
    /// Operations of a kind of work (`model::resource::WORK_KINDS`), when their work ends.
    Operation(String),
}

/// How often a rule fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Firing {
    /// This many more times, then the rule is gone.
    Times(u64),
    /// On every match, until removed.
    Always,
    /// On each match with this probability (0 < p <= 1), until removed.
    Probability(f64),
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub target: Target,
    /// The error to answer or end with; `None`: only the delay (a method rule).
    pub code: Option<Code>,
    pub message: String,
    /// How long a matched call waits first (a method rule).
    pub delay: Duration,
    pub firing: Firing,
}

impl Rule {
    /// The status it injects, if it injects one.
    fn status(&self) -> Option<Status> {
        let code = self.code?;
        let message = match self.message.is_empty() {
            true => format!("injected fault {}: {}", self.id, code.name()),
            false => self.message.clone(),
        };
        Some(Status {
            code: code.number(),
            message,
            details: Vec::new(),
        })
    }
}

/// What a call of a method is to suffer: a wait, then perhaps an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    pub delay: Duration,
    pub error: Option<Status>,
}

/// An operation rule's firing, reserved until its operation has ended
/// ([`Faults::settle`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    pub status: Status,
    pub rule_id: String,
}

/// The rules in force (see the module documentation).
#[derive(Debug, Default)]
pub struct Faults {
    table: Mutex<Table>,
    /// Whether any rule is set: the fast path of every call.
    any: AtomicBool,
}

#[derive(Debug, Default)]
struct Table {
    rules: Vec<Rule>,
    /// Firings of operation rules whose operations have not ended yet, by rule id: how
    /// many, and the rule as it fired (to set it again if a given-back firing was its
    /// last). A rule removed through the API loses its reservations.
    reserved: HashMap<String, (u64, Rule)>,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a rule (its id given by the caller); false, and nothing added, when
    /// [`MAX_RULES`] are set already.
    pub fn add(&self, rule: Rule) -> bool {
        let mut table = self.lock();
        if table.rules.len() >= MAX_RULES {
            return false;
        }
        table.rules.push(rule);
        self.any.store(true, Ordering::Release);
        true
    }

    /// The rules in force, in the order they were added (`Times` counts what is left).
    pub fn list(&self) -> Vec<Rule> {
        self.lock().rules.clone()
    }

    /// Removes a rule; whether it was there.
    pub fn remove(&self, id: &str) -> bool {
        let mut table = self.lock();
        table.reserved.remove(id);
        let before = table.rules.len();
        table.rules.retain(|rule| rule.id != id);
        self.any.store(!table.rules.is_empty(), Ordering::Release);
        table.rules.len() < before
    }

    /// Removes every rule; how many there were.
    pub fn clear(&self) -> usize {
        let mut table = self.lock();
        let count = table.rules.len();
        table.rules.clear();
        table.reserved.clear();
        self.any.store(false, Ordering::Release);
        count
    }

    /// Whether a rule targets operations of `kind` (their work must then end through the
    /// executor, where [`Faults::on_ending`] is asked).
    pub fn targets_operation(&self, kind: &str) -> bool {
        self.any.load(Ordering::Acquire)
            && self
                .lock()
                .rules
                .iter()
                .any(|rule| rule.target == Target::Operation(kind.to_string()))
    }

    /// What a call of the method at `path` suffers, if a rule fires for it.
    pub fn on_call(&self, path: &str) -> Option<Injection> {
        let rule = self.fire(
            |target| matches!(target, Target::Method(method) if method == path),
            false,
        )?;
        count_injected(path);
        warn!(fault_id = %rule.id, method = path, code = rule.code.map(Code::name), delay = ?rule.delay, "injected fault");
        Some(Injection {
            delay: rule.delay,
            error: rule.status(),
        })
    }

    /// The status an operation of `kind` ends with instead of its work's outcome, if a rule
    /// fires for it; the firing is reserved until [`Faults::settle`].
    pub fn on_ending(&self, kind: &str, operation_id: &str) -> Option<Fired> {
        let rule = self.fire(
            |target| matches!(target, Target::Operation(of) if of == kind),
            true,
        )?;
        let status = rule.status()?;
        count_injected(kind);
        warn!(fault_id = %rule.id, operation_id, kind, code = status.code, "injected fault: the operation fails");
        Some(Fired {
            status,
            rule_id: rule.id,
        })
    }

    /// Settles a reserved firing once its operation's ending was stored or lost: kept if
    /// `took_effect`, else given back (a counted rule fires once more; set again if that
    /// firing was its last), unless the rule was removed meanwhile.
    pub fn settle(&self, fired: &Fired, took_effect: bool) {
        let mut table = self.lock();
        let Some((count, rule)) = table.reserved.get_mut(&fired.rule_id) else {
            return;
        };
        *count -= 1;
        let rule = rule.clone();
        if *count == 0 {
            table.reserved.remove(&fired.rule_id);
        }
        if took_effect {
            return;
        }
        tracing::info!(fault_id = %fired.rule_id, "the operation ended otherwise first: its injected fault is given back");
        match table.rules.iter_mut().find(|set| set.id == rule.id) {
            Some(set) => {
                if let Firing::Times(left) = &mut set.firing {
                    *left += 1;
                }
            }
            None if matches!(rule.firing, Firing::Times(_)) => {
                table.rules.push(Rule {
                    firing: Firing::Times(1),
                    ..rule
                });
                self.any.store(true, Ordering::Release);
            }
            None => {}
        }
    }

    /// The first rule that matches and fires, with `Times` counted down (and the rule
    /// gone at zero); with `reserve`, the firing is reserved (see [`Faults::settle`]).
    fn fire(&self, matches: impl Fn(&Target) -> bool, reserve: bool) -> Option<Rule> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let mut table = self.lock();
        let index = table.rules.iter().position(|rule| {
            matches(&rule.target)
                && match rule.firing {
                    Firing::Probability(p) => rand::random::<f64>() < p,
                    Firing::Times(_) | Firing::Always => true,
                }
        })?;
        let fired = table.rules[index].clone();
        // Only a firing that injects an error is reserved: one without (never an
        // operation's: the admin API requires their code) is never settled.
        if reserve && fired.code.is_some() {
            table
                .reserved
                .entry(fired.id.clone())
                .or_insert_with(|| (0, fired.clone()))
                .0 += 1;
        }
        if let Firing::Times(left) = &mut table.rules[index].firing {
            *left = left.saturating_sub(1);
            if *left == 0 {
                table.rules.remove(index);
                self.any.store(!table.rules.is_empty(), Ordering::Release);
            }
        }
        Some(fired)
    }
}

/// Counts an injection in the metrics, by what the rule targets.
fn count_injected(target: &str) {
    crate::metrics::global()
        .faults_injected
        .get_or_create(&crate::metrics::TargetLabel {
            target: target.to_string(),
        })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, target: Target, firing: Firing) -> Rule {
        Rule {
            id: id.into(),
            target,
            code: Some(Code::Unavailable),
            message: String::new(),
            delay: Duration::ZERO,
            firing,
        }
    }

    #[test]
    fn a_counted_rule_fires_its_times_then_is_gone() {
        let faults = Faults::default();
        let get = "/yandex.cloud.compute.v1.ImageService/Get";
        faults.add(rule("f1", Target::Method(get.into()), Firing::Times(2)));
        assert!(faults
            .on_call("/yandex.cloud.compute.v1.ImageService/List")
            .is_none());
        for _ in 0..2 {
            let injected = faults.on_call(get).unwrap();
            assert_eq!(injected.error.unwrap().code, 14);
        }
        assert!(faults.on_call(get).is_none());
        assert!(faults.list().is_empty());
    }

    #[test]
    fn operation_rules_match_their_kind_only() {
        let faults = Faults::default();
        faults.add(rule(
            "f1",
            Target::Operation("create-disk".into()),
            Firing::Always,
        ));
        assert!(faults.targets_operation("create-disk"));
        assert!(!faults.targets_operation("create-image"));
        assert!(faults.on_ending("create-image", "op1").is_none());
        let fired = faults.on_ending("create-disk", "op1").unwrap();
        assert_eq!(fired.status.message, "injected fault f1: UNAVAILABLE");
        assert!(faults.on_ending("create-disk", "op2").is_some());
        assert!(faults.remove("f1"));
        assert!(!faults.remove("f1"));
        assert!(faults.on_ending("create-disk", "op3").is_none());
    }

    #[test]
    fn a_firing_whose_operation_ended_otherwise_is_given_back() {
        let faults = Faults::default();
        let target = || Target::Operation("create-disk".into());
        faults.add(rule("f1", target(), Firing::Times(2)));
        let first = faults.on_ending("create-disk", "op1").unwrap();
        let second = faults.on_ending("create-disk", "op2").unwrap();
        assert!(faults.list().is_empty(), "both firings are out");
        // op1 lost to a cancel: its firing comes back, as a rule of one time.
        faults.settle(&first, false);
        assert_eq!(faults.list()[0].firing, Firing::Times(1));
        faults.settle(&second, true);
        let third = faults.on_ending("create-disk", "op3").unwrap();
        faults.settle(&third, true);
        assert!(faults.on_ending("create-disk", "op4").is_none());

        // With firings left, a given-back one adds to them.
        faults.add(rule("f2", target(), Firing::Times(3)));
        let fired = faults.on_ending("create-disk", "op5").unwrap();
        faults.settle(&fired, false);
        assert_eq!(faults.list()[0].firing, Firing::Times(3));

        // A rule removed meanwhile stays removed.
        let fired = faults.on_ending("create-disk", "op6").unwrap();
        assert!(faults.remove("f2"));
        faults.settle(&fired, false);
        assert!(faults.list().is_empty());
    }

    #[test]
    fn a_probability_rule_fires_about_that_often() {
        let faults = Faults::default();
        faults.add(rule(
            "f1",
            Target::Method("/m".into()),
            Firing::Probability(0.5),
        ));
        let fired = (0..2000).filter(|_| faults.on_call("/m").is_some()).count();
        // Far outside the binomial's spread (sd ~22) only if the rule were ignored.
        assert!((800..1200).contains(&fired), "{fired}");
    }
}
