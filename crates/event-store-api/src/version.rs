//! The optimistic-concurrency condition of an append: `expected_version` on the wire, a number
//! (the stream's current version; 0 = the stream must not exist) or `"any"`.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The version an append expects the stream to be at. `Exact(0)` means the stream must not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The version of the stream's last event; 0 means the stream must not exist yet.
    Exact(u64),
    /// Append whatever the stream's version is.
    Any,
}

impl ExpectedVersion {
    /// The stream must not exist yet.
    pub const NO_STREAM: ExpectedVersion = ExpectedVersion::Exact(0);
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Exact(version) => write!(f, "{version}"),
            ExpectedVersion::Any => f.write_str("any"),
        }
    }
}

impl Serialize for ExpectedVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ExpectedVersion::Exact(version) => serializer.serialize_u64(*version),
            ExpectedVersion::Any => serializer.serialize_str("any"),
        }
    }
}

impl<'de> Deserialize<'de> for ExpectedVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExpectedVisitor;
        impl Visitor<'_> for ExpectedVisitor {
            type Value = ExpectedVersion;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer (the stream's current version) or \"any\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                if v > i64::MAX as u64 {
                    return Err(E::invalid_value(de::Unexpected::Unsigned(v), &self));
                }
                Ok(ExpectedVersion::Exact(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(ExpectedVersion::Exact)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "any" {
                    Ok(ExpectedVersion::Any)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }
        deserializer.deserialize_any(ExpectedVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<ExpectedVersion>) {
        let got = serde_json::from_str::<ExpectedVersion>(input).ok();
        assert_eq!(got, expected, "{input}");
        if let Some(version) = got {
            let back = serde_json::to_string(&version).expect("serialises");
            assert_eq!(serde_json::from_str::<ExpectedVersion>(&back).ok(), got);
        }
    }

    #[test]
    fn wire_format() {
        check("0", Some(ExpectedVersion::NO_STREAM));
        check("17", Some(ExpectedVersion::Exact(17)));
        check("\"any\"", Some(ExpectedVersion::Any));
        check("-1", None);
        check("\"3\"", None);
        check("\"some\"", None);
        check("1.5", None);
        check("null", None);
        check("true", None);
        check(&(i64::MAX as u64 + 1).to_string(), None);
        assert_eq!(ExpectedVersion::Exact(4).to_string(), "4");
        assert_eq!(ExpectedVersion::Any.to_string(), "any");
    }
}
