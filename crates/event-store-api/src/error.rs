//! The body of every refusal: `{"error": <code>, "message": <text>, ...}`, plus fields some codes
//! add (`current_version` with `wrong_expected_version`, `field`, `position`, `head`).

use serde::{Deserialize, Serialize};

/// The error body the store answers a refusal or failure with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A machine-readable code, such as `wrong_expected_version`.
    pub error: String,
    /// What went wrong and how to fix it.
    #[serde(default)]
    pub message: String,
}

/// The extra field of a 409 `wrong_expected_version` answer to an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrongExpectedVersionBody {
    /// The stream's version when the append was refused.
    pub current_version: u64,
}

impl ErrorBody {
    /// How many bytes of a body that is not an error body an error message keeps.
    pub const MAX_RAW_CHARS: usize = 200;

    /// Reads an error body, if `body` is one.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }

    /// A readable message for an answer's body: its `message`, else its `error` code, else the
    /// start of the raw text.
    pub fn message_of(body: &[u8]) -> String {
        match Self::parse(body) {
            Some(parsed) if parsed.message.is_empty() => parsed.error,
            Some(parsed) => parsed.message,
            None => Self::raw_text(body),
        }
    }

    /// The code and message of an answer's body; the code is `unknown` when it is not an error
    /// body.
    pub fn code_and_message(body: &[u8]) -> (String, String) {
        Self::parse(body).map_or_else(
            || ("unknown".to_owned(), Self::raw_text(body)),
            |parsed| (parsed.error, parsed.message),
        )
    }

    fn raw_text(body: &[u8]) -> String {
        String::from_utf8_lossy(body)
            .chars()
            .take(Self::MAX_RAW_CHARS)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let check = |body: &str, expected: &str| {
            assert_eq!(ErrorBody::message_of(body.as_bytes()), expected, "{body}");
        };
        check(
            r#"{"error":"bad_request","message":"limit must be positive"}"#,
            "limit must be positive",
        );
        check(r#"{"error":"unavailable"}"#, "unavailable");
        check("plain text", "plain text");
        assert_eq!(
            ErrorBody::code_and_message(b"oops"),
            ("unknown".to_owned(), "oops".to_owned())
        );
    }
}
