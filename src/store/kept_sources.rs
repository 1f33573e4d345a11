//! The sources of copies that a PostgreSQL replica keeps, so that a create from a source
//! it read lately does not read it again: on PostgreSQL that read was a round trip of
//! its own before the create's statement, and took a third of a create's time.
//!
//! A kept copy is never trusted: the create carries the body it read ([`SourceSeen`]),
//! and its statement writes only if the source's row still has that body (locked `FOR
//! SHARE`), else answers `SourceChanged`. The domain then reads the source from the
//! database and tries once more, as it does for any refusal of a create that a stale
//! copy could have caused (`Catalog::reading_source`), so no refusal comes from a stale
//! copy either.
//!
//! Only READY sources are kept (a copy is only ever made from one), at most
//! [`MAX_KEPT`]; when that many are kept, the next one starts the set afresh.

use super::{Source, SourceSeen};
use crate::model::resource::{Readiness, Resource};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most sources kept at once.
pub const MAX_KEPT: usize = 4096;

/// See the module documentation.
#[derive(Default)]
pub struct KeptSources {
    sources: Mutex<HashMap<String, Source>>,
}

impl KeptSources {
    /// The copy kept of `id`, if any.
    pub fn get(&self, id: &str) -> Option<Source> {
        self.lock().get(id).cloned()
    }

    /// Keeps `resource`, read from the database with the stored `body`, if it is READY
    /// (and forgets an earlier copy otherwise); answers it as a [`Source`].
    pub fn read(&self, id: &str, found: Option<(Resource, Vec<u8>)>) -> Option<Source> {
        let mut sources = self.lock();
        let Some((resource, body)) = found else {
            sources.remove(id);
            return None;
        };
        let source = Source {
            resource,
            seen: SourceSeen::Body(Arc::from(body)),
        };
        if source.resource.readiness() != Readiness::Ready {
            sources.remove(id);
            return Some(source);
        }
        if sources.len() >= MAX_KEPT && !sources.contains_key(id) {
            sources.clear();
        }
        sources.insert(id.to_string(), source.clone());
        Some(source)
    }

    /// Forgets every copy (after a reset or a state import).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Source>> {
        self.sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
