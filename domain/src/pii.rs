//! Wrappers that keep personal data and secrets out of logs.
//!
//! `Pii<T>` holds a value about a person (name, email, address). Its `Debug` and `Display`
//! print a fixed placeholder, so `tracing::info!(?profile)` or a panic message cannot leak
//! it; the value is reachable only through [`Pii::expose`], which makes every read visible
//! in review.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Personal data that must never appear in logs. Serializes transparently (storage and
/// the wire need the value), but never formats.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Pii<T>(T);

impl<T> Pii<T> {
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// Reads the personal value. Call sites are where PII leaves the wrapper: keep them few.
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pii(<redacted>)")
    }
}

impl<T> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pii_never_formats_its_value() {
        let secret = Pii::new("pat@example.com".to_string());
        assert_eq!(format!("{secret:?}"), "Pii(<redacted>)");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(secret.expose(), "pat@example.com");
    }

    #[test]
    fn pii_serializes_transparently_for_storage() {
        let value = Pii::new("Pat Lee".to_string());
        assert_eq!(serde_json::to_string(&value).unwrap(), "\"Pat Lee\"");
    }
}
