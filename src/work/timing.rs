//! How long each kind of background work takes before its operation ends
//! (`--operation-delay`, and the admin API's SetOperationTiming at run time): a default,
//! and a delay per kind of work, where a kind is the kebab-case name of what runs
//! (`create-image`, `import-image`, `delete-disk`, ...: [`WORK_KINDS`]). A delay is a duration
//! from the operation's creation, or `manual`: the operation is held running until the
//! admin API finishes it (`FinishOperation`); imports cannot be held (a `manual` default
//! leaves them without a delay). A change (an update, a move, a relocation) is stored
//! when asked: its delay, which only its own kind sets (the default does not apply),
//! holds its operation, which then ends done ([`CHANGES`]). A change of access bindings
//! is done when stored and takes no delay.
//!
//! The text form, for the flag and the API alike: comma-separated items, each `DURATION`
//! or `manual` (the default) or `KIND=DURATION` / `KIND=manual`; e.g.
//! `1s,create-disk=manual,import-image=0s`.

use crate::model::resource::{work_kind, ResourceKind, Work, WORK_KINDS};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The longest delay: a year (the scheduler's timers reach about two).
pub const MAX_DELAY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The word for a held operation.
pub const MANUAL: &str = "manual";

/// The kinds that are changes: stored when asked, so their delay holds only their
/// operation, which then ends done (it cannot fail afterwards).
pub const CHANGES: &[&str] = &[
    "update-image",
    "update-snapshot",
    "update-disk",
    "update-baremetal-image",
    "move-disk",
    "relocate-disk",
];

/// The kinds that cannot be held: an import ends with what its transfer found.
const NOT_MANUAL: &[&str] = &["import-image", "import-baremetal-image"];

/// How long one kind of work takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// Ends this long after the operation's creation (an import: when its transfer is
    /// done, and not before then).
    After(Duration),
    /// Held running until the admin API finishes it.
    Manual,
}

impl Delay {
    fn parse(text: &str) -> Result<Delay, String> {
        if text == MANUAL {
            return Ok(Delay::Manual);
        }
        let duration = humantime::parse_duration(text).map_err(|error| {
            format!("{text:?} is neither a duration (such as 500ms, 2s, 5m) nor {MANUAL}: {error}")
        })?;
        if duration > MAX_DELAY {
            return Err(format!("{text:?} is longer than 365days"));
        }
        Ok(Delay::After(duration))
    }
}

impl fmt::Display for Delay {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delay::After(duration) => {
                write!(formatter, "{}", humantime::format_duration(*duration))
            }
            Delay::Manual => formatter.write_str(MANUAL),
        }
    }
}

/// The delays of every kind of work (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    default: Delay,
    kinds: BTreeMap<&'static str, Delay>,
}

impl Default for Timing {
    /// Every kind of work ends at once.
    fn default() -> Timing {
        Timing::uniform(Duration::ZERO)
    }
}

impl Timing {
    /// The same delay for every kind of work.
    pub fn uniform(delay: Duration) -> Timing {
        Timing {
            default: Delay::After(delay),
            kinds: BTreeMap::new(),
        }
    }

    /// Reads the text form; an error names the item and the rule.
    pub fn parse(text: &str) -> Result<Timing, String> {
        let mut default = None;
        let mut kinds = Vec::new();
        for item in text.split(',').map(str::trim) {
            match item.split_once('=') {
                None if item.is_empty() => {
                    return Err("an item is empty (items are comma-separated)".into())
                }
                None if default.is_some() => {
                    return Err(format!(
                        "{item:?}: the default is given twice (one item without KIND=)"
                    ))
                }
                None => default = Some(item),
                Some((kind, delay)) => kinds.push((kind.trim(), delay.trim())),
            }
        }
        Timing::from_parts(default, &kinds)
    }

    /// The delays from their parts: the default (none: `0s`) and `(KIND, DELAY)` pairs, each
    /// as the text form writes it; an error names the part and the rule.
    pub fn from_parts(default: Option<&str>, parts: &[(&str, &str)]) -> Result<Timing, String> {
        let default = match default {
            Some(delay) => Delay::parse(delay)?,
            None => Delay::After(Duration::ZERO),
        };
        let mut kinds = BTreeMap::new();
        for (kind, delay) in parts {
            let Some(known) = WORK_KINDS.iter().find(|known| *known == kind) else {
                return Err(format!(
                    "{kind:?} is not a kind of work: one of {}",
                    WORK_KINDS.join(", ")
                ));
            };
            let delay = Delay::parse(delay)?;
            if delay == Delay::Manual && NOT_MANUAL.contains(known) {
                return Err(format!(
                    "{kind}={MANUAL}: an import cannot be held (it ends with what its \
                     transfer found); give it a duration"
                ));
            }
            if kinds.insert(*known, delay).is_some() {
                return Err(format!("{kind:?} is given twice"));
            }
        }
        Ok(Timing { default, kinds })
    }

    /// The delay of every kind that has none of its own.
    pub fn default_delay(&self) -> Delay {
        self.default
    }

    /// The kinds that have a delay of their own.
    pub fn kinds(&self) -> impl Iterator<Item = (&'static str, Delay)> + '_ {
        self.kinds.iter().map(|(kind, delay)| (*kind, *delay))
    }

    /// The delay of a kind of work ([`WORK_KINDS`]). A `manual` default leaves imports, which
    /// cannot be held, without a delay; the default does not apply to changes, which take
    /// a delay only when their kind is named (a suite that slows creates down keeps its
    /// updates as they were).
    pub fn of(&self, kind: &str) -> Delay {
        match self.kinds.get(kind) {
            Some(delay) => *delay,
            None if CHANGES.contains(&kind) => Delay::After(Duration::ZERO),
            None if self.default == Delay::Manual && NOT_MANUAL.contains(&kind) => {
                Delay::After(Duration::ZERO)
            }
            None => self.default,
        }
    }

    /// The delay of an operation's work; `None` for a change of access bindings, which is
    /// done when stored.
    pub fn of_work(&self, work: &Work, resource: ResourceKind) -> Option<Delay> {
        work_kind(work, resource).map(|kind| self.of(kind))
    }
}

impl fmt::Display for Timing {
    /// The text form [`Timing::parse`] reads: the default, then each kind that has its own.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.default)?;
        for (kind, delay) in &self.kinds {
            write!(formatter, ",{kind}={delay}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_reads_a_default_and_kinds_and_writes_itself_back() {
        let timing = Timing::parse("1s,create-disk=manual,import-image=250ms").unwrap();
        assert_eq!(timing.of("create-disk"), Delay::Manual);
        assert_eq!(
            timing.of("import-image"),
            Delay::After(Duration::from_millis(250))
        );
        assert_eq!(
            timing.of("delete-disk"),
            Delay::After(Duration::from_secs(1))
        );
        assert_eq!(Timing::parse(&timing.to_string()).unwrap(), timing);
        assert_eq!(Timing::parse("0s").unwrap(), Timing::default());
        assert_eq!(
            Timing::parse("create-image=2s").unwrap().of("create-disk"),
            Delay::After(Duration::ZERO)
        );
        let held = Timing::parse("manual").unwrap();
        assert_eq!(held.of("delete-image"), Delay::Manual);
        assert_eq!(held.of("update-image"), Delay::After(Duration::ZERO));
        assert_eq!(
            Timing::parse("1s,update-disk=manual")
                .unwrap()
                .of("update-disk"),
            Delay::Manual
        );
        assert_eq!(held.of("import-image"), Delay::After(Duration::ZERO));
    }

    #[test]
    fn a_bad_item_is_refused_naming_it() {
        for (text, expected) in [
            (
                "create-vm=1s",
                "\"create-vm\" is not a kind of work: one of create-image",
            ),
            (
                "access-bindings-image=1s",
                "\"access-bindings-image\" is not a kind of work",
            ),
            ("create-disk=soon", "\"soon\" is neither a duration"),
            ("import-image=manual", "an import cannot be held"),
            ("1s,2s", "the default is given twice"),
            (
                "create-disk=1s,create-disk=2s",
                "\"create-disk\" is given twice",
            ),
            ("1s,,create-disk=1s", "an item is empty"),
            ("400days", "longer than 365days"),
        ] {
            let error = Timing::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn every_kind_of_background_work_has_a_name() {
        use crate::model::resource::ChangeKind;
        use crate::model::resource::ResourceKind::*;
        let uri = || Work::ImportUri { uri: "u".into() };
        let copy = || Work::Copy { source: None };
        assert_eq!(work_kind(&copy(), ComputeImage), Some("create-image"));
        assert_eq!(work_kind(&copy(), Disk), Some("create-disk"));
        assert_eq!(work_kind(&copy(), Snapshot), Some("create-snapshot"));
        assert_eq!(work_kind(&uri(), ComputeImage), Some("import-image"));
        assert_eq!(
            work_kind(&uri(), BaremetalImage),
            Some("import-baremetal-image")
        );
        assert_eq!(
            work_kind(&Work::Delete, BaremetalImage),
            Some("delete-baremetal-image")
        );
        assert_eq!(
            work_kind(&Work::Change(ChangeKind::Update), Disk),
            Some("update-disk")
        );
        assert_eq!(
            work_kind(&Work::Change(ChangeKind::Relocate), Disk),
            Some("relocate-disk")
        );
        assert_eq!(
            work_kind(&Work::Change(ChangeKind::AccessBindings), Disk),
            None
        );
        for kind in CHANGES {
            assert!(WORK_KINDS.contains(kind), "{kind}");
        }
    }
}
