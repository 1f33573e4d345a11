//! Resource and operation IDs: 20 characters matching `[a-z][a-z0-9]{19}`, a three-letter
//! prefix per kind, 8 characters of creation time (milliseconds since 2020, base 36) and 9
//! random characters (about 46 bits of randomness per millisecond).
//!
//! Time first, so that IDs of one kind sort by creation: new rows land at the end of the
//! databases' primary-key B-trees instead of on random pages, which keeps the pages one
//! commit writes few (the embedded store's group commit writes each dirty page to the WAL).
//!
//! With `--deterministic-ids SEED` ([`make_deterministic`]) the random characters come from
//! a generator seeded with SEED, and the time, in ids and in the timestamps that stamp
//! resources and operations ([`now`]), from a clock that starts at
//! [`DETERMINISTIC_START`] and advances one millisecond a reading: the same calls, made in
//! the same order, answer the same ids and times on every run.

use rand::{Rng, SeedableRng};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

/// Where the deterministic clock starts: 2026-01-01T00:00:00Z.
pub const DETERMINISTIC_START: u64 = 1_767_225_600;

/// The seeded sequence of `--deterministic-ids`.
struct Sequence {
    seed: u64,
    rng: rand::rngs::StdRng,
    /// Milliseconds since [`DETERMINISTIC_START`] at the last reading.
    clock_ms: u64,
}

static SEQUENCE: OnceLock<Mutex<Sequence>> = OnceLock::new();

/// From now on, ids and times come from the sequence of `seed` (for this process; the
/// first call wins).
pub fn make_deterministic(seed: u64) {
    let _ = SEQUENCE.set(Mutex::new(Sequence {
        seed,
        rng: rand::rngs::StdRng::seed_from_u64(seed),
        clock_ms: 0,
    }));
}

/// Whether ids and times come from a seeded sequence.
pub fn is_deterministic() -> bool {
    SEQUENCE.get().is_some()
}

/// 32 bytes derived from the seed and `label` (a key that must repeat from run to run,
/// such as the page tokens'), if ids are deterministic.
pub fn deterministic_key(label: &str) -> Option<Vec<u8>> {
    let sequence = SEQUENCE.get()?;
    let seed = lock(sequence).seed;
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(&seed.to_be_bytes());
    digest.update(label.as_bytes());
    Some(digest.finish().as_ref().to_vec())
}

fn lock(sequence: &Mutex<Sequence>) -> std::sync::MutexGuard<'_, Sequence> {
    sequence
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The time that stamps a new record: the system's, or the deterministic clock's next
/// reading.
pub fn now() -> SystemTime {
    match SEQUENCE.get() {
        None => SystemTime::now(),
        Some(sequence) => {
            let mut sequence = lock(sequence);
            sequence.clock_ms += 1;
            deterministic_time(sequence.clock_ms)
        }
    }
}

/// The time of the deterministic clock at `clock_ms`.
fn deterministic_time(clock_ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH
        + Duration::from_secs(DETERMINISTIC_START)
        + Duration::from_millis(clock_ms)
}

/// The time now without taking a reading: the system's, or the deterministic clock's last
/// reading (what a record stamped now would not repeat). For what reports the time but
/// stores nothing, such as a snapshot's `exportedAt`.
pub fn current() -> SystemTime {
    match SEQUENCE.get() {
        None => SystemTime::now(),
        Some(sequence) => deterministic_time(lock(sequence).clock_ms),
    }
}

/// Moves the deterministic clock past `unix_ms` (an imported snapshot's latest record), so
/// that the ids and times made next come after the snapshot's; nothing without
/// `--deterministic-ids`.
pub fn advance_past(unix_ms: i64) {
    let Some(sequence) = SEQUENCE.get() else {
        return;
    };
    let since_start = u64::try_from(unix_ms)
        .unwrap_or(0)
        .saturating_sub(DETERMINISTIC_START * 1000);
    let mut sequence = lock(sequence);
    sequence.clock_ms = sequence.clock_ms.max(since_start);
}

/// Digits in ASCII order, so that byte order is numeric order.
const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The start of ID time: 2020-01-01T00:00:00Z. Eight base-36 digits of milliseconds
/// last until 2109.
const EPOCH_SECONDS: u64 = 1_577_836_800;

/// The ID prefixes, one per kind of record.
pub mod prefix {
    pub const COMPUTE_IMAGE: &str = "fd8";
    pub const SNAPSHOT: &str = "fd9";
    pub const DISK: &str = "fhm";
    pub const BAREMETAL_IMAGE: &str = "ly5";
    pub const OPERATION: &str = "opr";
}

/// A new ID with the given three-letter prefix.
pub fn new_id(prefix: &str) -> String {
    let (at, random) = match SEQUENCE.get() {
        None => (SystemTime::now(), rand::rng().random::<u64>()),
        Some(sequence) => {
            let random = lock(sequence).rng.random::<u64>();
            (now(), random)
        }
    };
    id_of(prefix, at, random)
}

/// A new ID from the system's clock and randomness, deterministic ids or not: for what
/// a client never stores, such as request ids, so that they do not move the sequence.
pub fn new_random_id(prefix: &str) -> String {
    id_of(prefix, SystemTime::now(), rand::rng().random::<u64>())
}

fn id_of(prefix: &str, at: SystemTime, random: u64) -> String {
    debug_assert_eq!(prefix.len(), 3);
    let millis = at
        .duration_since(SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_SECONDS))
        .map_or(0, |elapsed| elapsed.as_millis());
    let mut id = String::with_capacity(20);
    id.push_str(prefix);
    push_base36(&mut id, millis, 8);
    push_base36(&mut id, random.into(), 9);
    id
}

/// Whether `id` has the shape of the ids [`new_id`] makes with `prefix`: the prefix, then
/// 17 lowercase letters or digits.
pub fn is_shaped(prefix: &str, id: &str) -> bool {
    id.len() == 20
        && id.starts_with(prefix)
        && id[prefix.len()..]
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
}

/// Appends the lowest `digits` base-36 digits of `value`, most significant first.
fn push_base36(id: &mut String, mut value: u128, digits: usize) {
    let mut buffer = [0u8; 9];
    for slot in buffer[..digits].iter_mut().rev() {
        *slot = ALPHABET[(value % 36) as usize];
        value /= 36;
    }
    id.extend(buffer[..digits].iter().map(|&byte| byte as char));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_documented_shape() {
        let shape = regex::Regex::new("^[a-z][a-z0-9]{19}$").unwrap();
        for prefix in [
            prefix::COMPUTE_IMAGE,
            prefix::SNAPSHOT,
            prefix::DISK,
            prefix::BAREMETAL_IMAGE,
            prefix::OPERATION,
        ] {
            let id = new_id(prefix);
            assert!(shape.is_match(&id), "{id}");
            assert!(id.starts_with(prefix));
            assert!(is_shaped(prefix, &id), "{id}");
        }
        assert!(!is_shaped(prefix::DISK, &new_id(prefix::COMPUTE_IMAGE)));
        for bad in [
            "fhm",
            "fhm000000000000000000",
            "fhm0000000000000000A",
            "fhm0000000000000000-",
        ] {
            assert!(!is_shaped(prefix::DISK, bad), "{bad}");
        }
        assert_ne!(new_id("abc"), new_id("abc"));
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let earlier = new_id("opr");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = new_id("opr");
        assert!(earlier < later, "{earlier} !< {later}");
    }
}
