//! A bounded cache of the records the SQLite store wrote or read last, so that hot reads
//! (the operation a client polls, the source many creates copy from) skip the database.
//!
//! Why it can be exact: one writer thread makes every change (the data directory is
//! locked to one process), and it tells the cache about each committed batch before any
//! caller hears back. A read that misses registers itself before it reads the database;
//! if a commit touches that record meanwhile, the read is marked stale and its result is
//! not kept (it may predate the commit). So the cache never holds a value older than the
//! last commit.
//!
//! Bounded: at most `capacity` records and `max_bytes` of them (their encoded size plus
//! a per-entry overhead), evicted oldest-inserted first; a record larger than a tenth of
//! `max_bytes` is never kept. Records are small (every string and list a request carries
//! has a limit), but their count alone did not bound memory when they were not.

use crate::model::resource::{OperationRecord, Resource};
use prost::Message;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// A cached record, by id (ids of every kind have distinct prefixes).
#[derive(Debug, Clone)]
pub enum Record {
    Resource(Resource),
    Operation(OperationRecord),
}

/// A committed write: the new state of a record, or `None` if it is gone or only its
/// database row knows its new state.
pub type Write = (String, Option<Record>);

/// Reads of records not in the cache, under way.
struct PendingRead {
    readers: usize,
    stale: bool,
}

/// Bytes counted for an entry besides its encoded record: keys, maps, enum and box.
const ENTRY_OVERHEAD: usize = 256;

/// About how much memory a cached record takes.
fn size_of(id: &str, record: &Record) -> usize {
    let body = match record {
        Record::Resource(resource) => resource.encoded_len(),
        Record::Operation(record) => {
            let uri = record.work.import_uri().map_or(0, str::len);
            record.operation.encoded_len() + uri
        }
    };
    ENTRY_OVERHEAD + 2 * id.len() + body
}

/// A cached record, its counted size, and the number of its slot in the eviction order.
type Entry = (Record, usize, u64);

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Insertions, oldest first. A record inserted again keeps its old slot here until
    /// that slot comes up; the slot numbers tell the old slot from the live one.
    order: VecDeque<(String, u64)>,
    next_slot: u64,
    reads: HashMap<String, PendingRead>,
    bytes: usize,
}

impl Inner {
    fn remove(&mut self, id: &str) {
        if let Some((_, size, _)) = self.entries.remove(id) {
            self.bytes -= size;
        }
    }
}

pub struct ReadCache {
    inner: Mutex<Inner>,
    capacity: usize,
    max_bytes: usize,
}

impl ReadCache {
    pub fn new(capacity: usize, max_bytes: usize) -> ReadCache {
        ReadCache {
            inner: Mutex::new(Inner::default()),
            capacity,
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached record, or `None` after registering a read of the database; the
    /// caller must then call [`ReadCache::finish_read`] with what it found.
    pub fn begin_read(&self, id: &str) -> Option<Record> {
        let mut inner = self.lock();
        if let Some((record, _, _)) = inner.entries.get(id) {
            return Some(record.clone());
        }
        inner
            .reads
            .entry(id.to_string())
            .or_insert(PendingRead {
                readers: 0,
                stale: false,
            })
            .readers += 1;
        None
    }

    /// Ends a read begun by [`ReadCache::begin_read`]: keeps what it found unless a
    /// commit touched the record meanwhile.
    pub fn finish_read(&self, id: &str, found: Option<&Record>) {
        let mut inner = self.lock();
        let Some(pending) = inner.reads.get_mut(id) else {
            return;
        };
        pending.readers -= 1;
        let fresh = !pending.stale;
        if pending.readers == 0 {
            inner.reads.remove(id);
        }
        if let (true, Some(record)) = (fresh, found) {
            if !inner.entries.contains_key(id) {
                self.insert(&mut inner, id.to_string(), record.clone());
            }
        }
    }

    /// Takes in a committed batch.
    pub fn apply(&self, writes: Vec<Write>) {
        if writes.is_empty() {
            return;
        }
        let mut inner = self.lock();
        for (id, record) in writes {
            if let Some(pending) = inner.reads.get_mut(&id) {
                pending.stale = true;
            }
            match record {
                Some(record) => self.insert(&mut inner, id, record),
                None => inner.remove(&id),
            }
        }
    }

    fn insert(&self, inner: &mut Inner, id: String, record: Record) {
        let size = size_of(&id, &record);
        inner.remove(&id);
        if size > self.max_bytes / 10 {
            return;
        }
        let slot = inner.next_slot;
        inner.next_slot += 1;
        inner.entries.insert(id.clone(), (record, size, slot));
        inner.bytes += size;
        inner.order.push_back((id, slot));
        while inner.order.len() > self.capacity || inner.bytes > self.max_bytes {
            let Some((oldest, slot)) = inner.order.pop_front() else {
                break;
            };
            // Only the entry's live slot evicts it, not one left by an earlier insertion.
            if inner.entries.get(&oldest).map(|entry| entry.2) == Some(slot) {
                inner.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::compute::Image;

    fn image(id: &str, name: &str) -> Record {
        Record::Resource(Resource::ComputeImage(Image {
            id: id.into(),
            name: name.into(),
            ..Default::default()
        }))
    }

    fn name_of(record: Option<Record>) -> Option<String> {
        match record {
            Some(Record::Resource(resource)) => Some(resource.name().to_string()),
            _ => None,
        }
    }

    #[test]
    fn a_read_that_overlaps_a_commit_is_not_kept() {
        let cache = ReadCache::new(10, 1 << 20);
        assert!(cache.begin_read("a").is_none());
        // A commit changes "a" while the read is under way; the read saw the old state.
        cache.apply(vec![("a".into(), None)]);
        cache.finish_read("a", Some(&image("a", "old")));
        assert!(cache.begin_read("a").is_none(), "the stale read was kept");
        cache.finish_read("a", Some(&image("a", "new")));
        assert_eq!(name_of(cache.begin_read("a")), Some("new".into()));
    }

    #[test]
    fn commits_replace_and_remove_entries() {
        let cache = ReadCache::new(10, 1 << 20);
        cache.apply(vec![("a".into(), Some(image("a", "one")))]);
        assert_eq!(name_of(cache.begin_read("a")), Some("one".into()));
        cache.apply(vec![("a".into(), Some(image("a", "two")))]);
        assert_eq!(name_of(cache.begin_read("a")), Some("two".into()));
        cache.apply(vec![("a".into(), None)]);
        assert!(cache.begin_read("a").is_none());
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity() {
        let cache = ReadCache::new(3, 1 << 20);
        for n in 0..10 {
            cache.apply(vec![(format!("r{n}"), Some(image(&format!("r{n}"), "x")))]);
        }
        let inner = cache.lock();
        assert_eq!(inner.entries.len(), 3);
        assert!(inner.order.len() <= 3);
        assert!(inner.entries.contains_key("r9") && !inner.entries.contains_key("r0"));
    }

    #[test]
    fn a_record_written_again_is_evicted_as_the_newest() {
        let cache = ReadCache::new(3, 1 << 20);
        for id in ["a", "b", "c"] {
            cache.apply(vec![(id.into(), Some(image(id, "one")))]);
        }
        // "a" again: it is now the newest, and its first insertion must not evict it.
        cache.apply(vec![("a".into(), Some(image("a", "two")))]);
        assert_eq!(name_of(cache.begin_read("a")), Some("two".into()));
        cache.apply(vec![("d".into(), Some(image("d", "one")))]);
        assert_eq!(name_of(cache.begin_read("a")), Some("two".into()));
        let inner = cache.lock();
        assert!(!inner.entries.contains_key("b"), "the oldest goes first");
        assert_eq!(inner.entries.len(), 3);
    }

    #[test]
    fn the_cache_holds_at_most_its_bytes() {
        let cache = ReadCache::new(1000, 64 * 1024);
        for n in 0..100 {
            let id = format!("r{n}");
            cache.apply(vec![(id.clone(), Some(image(&id, &"x".repeat(4000))))]);
        }
        {
            let inner = cache.lock();
            assert!(inner.bytes <= 64 * 1024, "{} bytes", inner.bytes);
            assert!(inner.entries.len() < 20);
            let counted: usize = inner.entries.values().map(|(_, size, _)| size).sum();
            assert_eq!(counted, inner.bytes);
        }
        // A record over a tenth of the budget is not kept at all.
        cache.apply(vec![(
            "huge".into(),
            Some(image("huge", &"x".repeat(10_000))),
        )]);
        assert!(cache.begin_read("huge").is_none());
        // Replacing and removing keep the count exact.
        cache.apply(vec![("r99".into(), Some(image("r99", "short")))]);
        cache.apply(vec![("r98".into(), None)]);
        let inner = cache.lock();
        let counted: usize = inner.entries.values().map(|(_, size, _)| size).sum();
        assert_eq!(counted, inner.bytes);
    }
}
