//! Which names the store accepts: stream ids and consumer group names share one alphabet, so they
//! go into a URL path as they are; event types are any printable text.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest accepted stream id or group name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest accepted event type, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 256;
/// The characters a name may hold besides ASCII letters and digits.
pub const NAME_PUNCTUATION: &str = "-_.:@$+";

/// Whether `name` is a valid stream id or consumer group name: 1 to [`MAX_NAME_LEN`] ASCII
/// letters, digits or `- _ . : @ $ +`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && first_bad_character(name).is_none()
}

/// Whether `event_type` is a valid event type: 1 to [`MAX_EVENT_TYPE_LEN`] bytes, no control
/// characters.
pub fn is_valid_event_type(event_type: &str) -> bool {
    !event_type.is_empty()
        && event_type.len() <= MAX_EVENT_TYPE_LEN
        && !event_type.chars().any(char::is_control)
}

fn first_bad_character(name: &str) -> Option<char> {
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || NAME_PUNCTUATION.contains(*c)))
}

/// The id of one stream, such as `Account-6f1c...`: a valid name (see [`is_valid_name`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

/// Why a stream id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    #[error("stream id is empty; use something like Account-<uuid>")]
    Empty,
    #[error("stream id is {len} characters long; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error(
        "stream id {id:?} contains {found:?}; use only ASCII letters, digits and - _ . : @ $ +"
    )]
    BadCharacter { id: String, found: char },
}

impl StreamId {
    pub const MAX_LEN: usize = MAX_NAME_LEN;

    /// Checks `raw` against the name rules.
    pub fn parse(raw: impl Into<String>) -> Result<Self, StreamIdError> {
        let raw = raw.into();
        if raw.is_empty() {
            return Err(StreamIdError::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(StreamIdError::TooLong {
                len: raw.len(),
                max: Self::MAX_LEN,
            });
        }
        if let Some(found) = first_bad_character(&raw) {
            return Err(StreamIdError::BadCharacter { id: raw, found });
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StreamId {
    type Error = StreamIdError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl std::str::FromStr for StreamId {
    type Err = StreamIdError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

impl From<StreamId> for String {
    fn from(id: StreamId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, ok: bool) {
        assert_eq!(is_valid_name(raw), ok, "{raw:?}");
        assert_eq!(StreamId::parse(raw).is_ok(), ok, "{raw:?}");
    }

    #[test]
    fn name_rules() {
        check("Account-6f1c2b9e-0000-4000-8000-000000000001", true);
        check("a.b:c@d_e", true);
        check("$all+x", true);
        check("transfer:42", true);
        check("a", true);
        check("", false);
        check("has space", false);
        check("slash/inside", false);
        check("query?x", false);
        check("ümlaut", false);
        check("new\nline", false);
        check(&"x".repeat(MAX_NAME_LEN), true);
        check(&"x".repeat(MAX_NAME_LEN + 1), false);
    }

    #[test]
    fn stream_id_error_says_what_to_use() {
        let error = StreamId::parse("a b").expect_err("space is refused");
        assert_eq!(
            error.to_string(),
            "stream id \"a b\" contains ' '; use only ASCII letters, digits and - _ . : @ $ +"
        );
    }

    #[test]
    fn event_types() {
        assert!(is_valid_event_type("AccountOpened"));
        assert!(is_valid_event_type("with space and ümlaut"));
        assert!(!is_valid_event_type(""));
        assert!(!is_valid_event_type("tab\there"));
        assert!(!is_valid_event_type(&"T".repeat(MAX_EVENT_TYPE_LEN + 1)));
    }
}
