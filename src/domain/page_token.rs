//! Page tokens: where the previous page ended, opaque to clients and signed, so that a
//! token cannot be forged or altered (a tampered one is INVALID_ARGUMENT), and bound to
//! the query that issued it (another folder, filter or order cannot continue from it).
//!
//! A token is base64url of: a version byte, 2 bytes of the query's SHA-256 (its scope),
//! the position, and 6 bytes of an HMAC-SHA256 over all that with the database's key
//! (`Store::page_key`, shared by every replica and kept across restarts). Positions are
//! compact enough that every token fits the API's 100 characters: an order by name keeps
//! only the last name (names are unique in a folder) unless it was empty.

use crate::error::Error;
use base64::Engine;
use ring::{digest, hmac};

const VERSION: u8 = 1;
const SCOPE_BYTES: usize = 2;
const TAG_BYTES: usize = 6;

/// Where a page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// After this id (lists ordered by id).
    Id(String),
    /// After this text (a name); with an id only when the text is empty (empty names
    /// are not unique).
    Text(String, String),
    /// After this number (a time in milliseconds), then this id.
    Number(i64, String),
    /// After this many items (short lists kept whole, such as access bindings).
    Offset(u32),
}

/// Issues and reads page tokens with one key.
pub struct PageTokens {
    key: hmac::Key,
}

fn scope_hash(scope: &str) -> [u8; SCOPE_BYTES] {
    let hash = digest::digest(&digest::SHA256, scope.as_bytes());
    let mut bytes = [0u8; SCOPE_BYTES];
    bytes.copy_from_slice(&hash.as_ref()[..SCOPE_BYTES]);
    bytes
}

fn push_text(bytes: &mut Vec<u8>, text: &str) {
    let text = text.as_bytes();
    let length = text.len().min(255);
    bytes.push(length as u8);
    bytes.extend_from_slice(&text[..length]);
}

/// Reads a length-prefixed text from `bytes`, advancing it.
fn take_text(bytes: &mut &[u8]) -> Option<String> {
    let (&length, rest) = bytes.split_first()?;
    let text = rest.get(..length as usize)?;
    *bytes = &rest[length as usize..];
    String::from_utf8(text.to_vec()).ok()
}

impl PageTokens {
    pub fn new(key: &[u8]) -> PageTokens {
        PageTokens {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// The token that continues the query named by `scope` after `position`.
    pub fn issue(&self, scope: &str, position: &Position) -> String {
        let mut bytes = vec![VERSION];
        bytes.extend_from_slice(&scope_hash(scope));
        match position {
            Position::Id(id) => {
                bytes.push(0);
                push_text(&mut bytes, id);
            }
            Position::Text(text, id) => {
                bytes.push(1);
                push_text(&mut bytes, text);
                push_text(&mut bytes, if text.is_empty() { id } else { "" });
            }
            Position::Number(number, id) => {
                bytes.push(2);
                bytes.extend_from_slice(&number.to_be_bytes());
                push_text(&mut bytes, id);
            }
            Position::Offset(offset) => {
                bytes.push(3);
                bytes.extend_from_slice(&offset.to_be_bytes());
            }
        }
        let tag = hmac::sign(&self.key, &bytes);
        bytes.extend_from_slice(&tag.as_ref()[..TAG_BYTES]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position a token names, if it is one of ours, unaltered, for this query.
    pub fn read(&self, scope: &str, token: &str) -> Result<Position, Error> {
        let invalid = |why: &str| Error::invalid_field("page_token", why.to_string());
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| invalid("is not a page token of this server"))?;
        if bytes.len() < 1 + SCOPE_BYTES + 1 + TAG_BYTES {
            return Err(invalid("is not a page token of this server"));
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_BYTES);
        let expected = hmac::sign(&self.key, payload);
        if expected.as_ref()[..TAG_BYTES] != *tag || payload[0] != VERSION {
            return Err(invalid(
                "is not a page token of this server, or was altered",
            ));
        }
        if payload[1..1 + SCOPE_BYTES] != scope_hash(scope) {
            return Err(invalid(
                "belongs to another query (folder, filter or order): start without a page token",
            ));
        }
        let mut rest = &payload[1 + SCOPE_BYTES + 1..];
        let broken = || invalid("is damaged");
        let position = match payload[1 + SCOPE_BYTES] {
            0 => Position::Id(take_text(&mut rest).ok_or_else(broken)?),
            1 => {
                let text = take_text(&mut rest).ok_or_else(broken)?;
                Position::Text(text, take_text(&mut rest).ok_or_else(broken)?)
            }
            2 => {
                let number = rest.get(..8).ok_or_else(broken)?;
                let number = i64::from_be_bytes(number.try_into().map_err(|_| broken())?);
                rest = &rest[8..];
                Position::Number(number, take_text(&mut rest).ok_or_else(broken)?)
            }
            3 => {
                let offset = rest.get(..4).ok_or_else(broken)?;
                let offset = u32::from_be_bytes(offset.try_into().map_err(|_| broken())?);
                rest = &rest[4..];
                Position::Offset(offset)
            }
            _ => return Err(broken()),
        };
        if !rest.is_empty() {
            return Err(broken());
        }
        Ok(position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_fit_100_characters_and_refuse_tampering() {
        let tokens = PageTokens::new(b"key");
        let longest_name = format!("a{}", "b".repeat(62));
        for position in [
            Position::Id("fd8aaaaaaaaaaaaaaaaa".into()),
            Position::Text(longest_name, "fd8aaaaaaaaaaaaaaaaa".into()),
            Position::Text(String::new(), "fd8aaaaaaaaaaaaaaaaa".into()),
            Position::Number(1_700_000_000_000, "oprbbbbbbbbbbbbbbbbb".into()),
            Position::Offset(7),
        ] {
            let token = tokens.issue("scope", &position);
            assert!(token.len() <= 100, "{} characters", token.len());
            let read = tokens.read("scope", &token).unwrap();
            match (&position, &read) {
                (Position::Text(text, _), Position::Text(read_text, read_id))
                    if !text.is_empty() =>
                {
                    assert_eq!((read_text, read_id.as_str()), (text, ""));
                }
                _ => assert_eq!(read, position),
            }
            // Any changed character is refused.
            let mut altered: Vec<char> = token.chars().collect();
            let middle = altered.len() / 2;
            altered[middle] = if altered[middle] == 'A' { 'B' } else { 'A' };
            let altered: String = altered.into_iter().collect();
            assert!(tokens.read("scope", &altered).is_err());
            let error = tokens.read("another", &token).unwrap_err();
            assert!(error.message().contains("another query"), "{error}");
            assert!(PageTokens::new(b"other key").read("scope", &token).is_err());
        }
        assert!(tokens.read("scope", "not a token!").is_err());
        assert!(tokens.read("scope", "").is_err());
    }
}
