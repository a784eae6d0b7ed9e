//! Domain newtypes, parsed once at the edge: ids, customer ids and money in minor units.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A value that failed to parse into a domain type. `field` names what was being parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field} must be a UUID such as 0b3c6a8e-5d1f-4a43-9b7e-2f0c1d2e3f40, got {value:?}")]
    MalformedId { field: &'static str, value: String },
    #[error("{field} must be greater than zero (an integer number of minor units), got {value}")]
    NotPositive { field: &'static str, value: i64 },
    #[error("{field} must not be negative (an integer number of minor units), got {value}")]
    Negative { field: &'static str, value: i64 },
    #[error("{field} must be 1 to 64 letters, digits, '-' or '_', got {value:?}")]
    MalformedCustomerId { field: &'static str, value: String },
    #[error("{field} must be 1 to {max} characters long")]
    BadLength { field: &'static str, max: usize },
}

macro_rules! uuid_id {
    ($name:ident, $field:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            Serialize,
            Deserialize,
            JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// Parses a UUID in its hyphenated text form.
            pub fn parse(s: &str) -> Result<Self, DomainError> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| DomainError::MalformedId {
                        field: $field,
                        value: s.to_owned(),
                    })
            }

            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

uuid_id!(
    AccountId,
    "account_id",
    "The id of an Account aggregate (its stream is `Account-<id>`)."
);
uuid_id!(
    TransferId,
    "transfer_id",
    "The id of a MoneyTransfer aggregate; also the `transaction_id` of the account events it causes."
);

/// An amount of money as a non-negative integer number of minor units (cents). Never a float.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(transparent)]
pub struct Money(u64);

impl Money {
    pub const ZERO: Money = Money(0);

    /// A balance: zero or more minor units.
    pub fn parse_balance(field: &'static str, value: i64) -> Result<Self, DomainError> {
        u64::try_from(value)
            .map(Money)
            .map_err(|_| DomainError::Negative { field, value })
    }

    /// An amount to move: strictly more than zero minor units.
    pub fn parse_amount(field: &'static str, value: i64) -> Result<Self, DomainError> {
        if value <= 0 {
            return Err(DomainError::NotPositive { field, value });
        }
        Ok(Money(value as u64))
    }

    pub const fn from_minor(units: u64) -> Self {
        Money(units)
    }

    pub const fn minor_units(self) -> u64 {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// The amount as a signed delta, saturating at `i64::MAX` (balances never get there).
    pub fn as_delta(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The bank's customer reference: 1 to 64 letters, digits, `-` or `_`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct CustomerId(String);

impl CustomerId {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(DomainError::MalformedCustomerId {
                field: "customer_id",
                value: s.to_owned(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Checks a free-text field's length (in characters) and returns it trimmed.
pub fn parse_text(
    field: &'static str,
    s: &str,
    max: usize,
    required: bool,
) -> Result<String, DomainError> {
    let t = s.trim();
    let n = t.chars().count();
    if (required && n == 0) || n > max {
        return Err(DomainError::BadLength { field, max });
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_parses_only_integral_non_negative_amounts() {
        fn check(value: i64, amount: Result<u64, ()>, balance: Result<u64, ()>) {
            assert_eq!(
                Money::parse_amount("amount", value)
                    .map(Money::minor_units)
                    .map_err(|_| ()),
                amount,
                "amount {value}"
            );
            assert_eq!(
                Money::parse_balance("initial_balance", value)
                    .map(Money::minor_units)
                    .map_err(|_| ()),
                balance,
                "balance {value}"
            );
        }
        check(1, Ok(1), Ok(1));
        check(15000, Ok(15000), Ok(15000));
        check(0, Err(()), Ok(0));
        check(-1, Err(()), Err(()));
        check(i64::MIN, Err(()), Err(()));
    }

    #[test]
    fn money_errors_name_the_field() {
        let e = Money::parse_amount("amount", -5).unwrap_err().to_string();
        assert!(e.starts_with("amount must be greater than zero"), "{e}");
    }

    #[test]
    fn ids_parse_uuids_and_reject_garbage() {
        let id = AccountId::new();
        assert_eq!(AccountId::parse(&id.to_string()), Ok(id));
        let e = TransferId::parse("not-a-uuid").unwrap_err().to_string();
        assert!(e.starts_with("transfer_id must be a UUID"), "{e}");
        assert!(AccountId::parse("").is_err());
    }

    #[test]
    fn customer_ids_are_short_plain_tokens() {
        assert!(CustomerId::parse("cust-42_a").is_ok());
        assert!(CustomerId::parse("").is_err());
        assert!(CustomerId::parse("a b").is_err());
        assert!(CustomerId::parse(&"x".repeat(65)).is_err());
    }
}
