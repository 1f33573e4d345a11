//! Resource and operation IDs: 20 characters matching `[a-z][a-z0-9]{19}`, a three-letter
//! prefix per kind followed by 17 random characters (about 87 bits of randomness).

use rand::Rng;

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// The ID prefixes, one per kind of record.
pub mod prefix {
    pub const COMPUTE_IMAGE: &str = "fd8";
    pub const SNAPSHOT: &str = "fd9";
    pub const DISK: &str = "fhm";
    pub const BAREMETAL_IMAGE: &str = "ly5";
    pub const OPERATION: &str = "opr";
}

/// A new random ID with the given three-letter prefix.
pub fn new_id(prefix: &str) -> String {
    debug_assert_eq!(prefix.len(), 3);
    // One 128-bit draw gives all 17 characters: 36^17 < 2^88.
    let mut entropy: u128 = rand::rng().random();
    let mut id = String::with_capacity(20);
    id.push_str(prefix);
    for _ in 0..17 {
        id.push(ALPHABET[(entropy % 36) as usize] as char);
        entropy /= 36;
    }
    id
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
        }
        assert_ne!(new_id("abc"), new_id("abc"));
    }
}
