//! [`Key`]: the text identifiers the store indexes (user ids, machine ids, order ids,
//! inbound message ids, idempotency and ordering keys, worker ids).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest identifier accepted, in bytes.
pub const MAX_KEY_LEN: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an identifier must not be empty")]
    Empty,
    #[error("an identifier must be at most {MAX_KEY_LEN} bytes")]
    TooLong,
    #[error("an identifier must be printable ASCII without spaces")]
    BadCharacter,
}

/// A stored identifier: 1 to 200 bytes of printable ASCII without spaces.
///
/// Identifiers are not personal data (they are inbox ids, order ids and keys chosen by the
/// system), so they may appear in errors and logs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Key(String);

impl Key {
    pub fn parse(input: &str) -> Result<Self, IdError> {
        if input.is_empty() {
            return Err(IdError::Empty);
        }
        if input.len() > MAX_KEY_LEN {
            return Err(IdError::TooLong);
        }
        if !input.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdError::BadCharacter);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Key {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Key> for String {
    fn from(value: Key) -> Self {
        value.0
    }
}

impl std::str::FromStr for Key {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?})", self.0)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_printable_ascii_without_spaces() {
        assert_eq!(Key::parse("user:0xabc").unwrap().as_str(), "user:0xabc");
        assert_eq!(Key::parse(""), Err(IdError::Empty));
        assert_eq!(Key::parse("a b"), Err(IdError::BadCharacter));
        assert_eq!(Key::parse("é"), Err(IdError::BadCharacter));
        assert_eq!(Key::parse(&"x".repeat(201)), Err(IdError::TooLong));
        assert!(serde_json::from_str::<Key>("\"\"").is_err());
    }
}
