//! Weak-schema JSON for events: upcasting older schema versions, and the default codec that maps
//! an event enum to `(event_type, schema_version, data)` and back.
//!
//! Weak schema means: a missing field takes its default (`#[serde(default)]` on the payload), an
//! unknown field is ignored (serde's default), and a registered upcaster rewrites an older schema
//! version of an event into the current one before serde sees it.

use std::collections::BTreeMap;

use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Value};

/// One upcasting step: the JSON `data` of schema version `n` in, version `n + 1` out.
pub type UpcastFn = fn(Value) -> Value;

/// A registry of upcasting steps keyed by `(event_type, from_version)`.
///
/// Decoding applies steps from the stored version upwards while a step is registered, so a
/// version-1 event with steps for 1 and 2 is read as version 3.
#[derive(Debug, Clone, Default)]
pub struct Upcasters {
    steps: BTreeMap<&'static str, BTreeMap<u32, UpcastFn>>,
}

/// An event split into its stored parts.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEvent {
    pub event_type: &'static str,
    pub schema_version: u32,
    pub data: Value,
}

/// Why an event could not be turned into stored JSON.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("could not serialise event {event_type}: {source}")]
    Serialise {
        event_type: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "event_type() says {event_type} but serde wrote {written}; name the enum variant like its \
         event type (or #[serde(rename)] it), or override DomainEvent::encode and decode"
    )]
    TypeMismatch {
        event_type: &'static str,
        written: String,
    },
}

/// Why stored JSON could not be turned into a typed event.
#[derive(Debug, thiserror::Error)]
#[error(
    "could not decode event {event_type} (schema version {schema_version}): {source}; \
     register an upcaster for older versions or give new fields #[serde(default)]"
)]
pub struct DecodeError {
    pub event_type: String,
    pub schema_version: u32,
    #[source]
    pub source: serde_json::Error,
}

impl Upcasters {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared empty registry, for event types without upcasters.
    pub fn none() -> &'static Upcasters {
        static NONE: Upcasters = Upcasters {
            steps: BTreeMap::new(),
        };
        &NONE
    }

    /// Registers the step that turns `event_type` at `from_version` into `from_version + 1`.
    pub fn with(mut self, event_type: &'static str, from_version: u32, step: UpcastFn) -> Self {
        self.steps
            .entry(event_type)
            .or_default()
            .insert(from_version, step);
        self
    }

    /// Applies the registered steps from `schema_version` upwards and returns the upcast data.
    pub fn upcast(&self, event_type: &str, schema_version: u32, mut data: Value) -> Value {
        let Some(steps) = self.steps.get(event_type) else {
            return data;
        };
        let mut version = schema_version;
        while let Some(step) = steps.get(&version) {
            data = step(data);
            version = version.saturating_add(1);
        }
        data
    }

    /// The schema version that data stored at `schema_version` has after upcasting.
    pub fn current_version(&self, event_type: &str, schema_version: u32) -> u32 {
        let mut version = schema_version;
        if let Some(steps) = self.steps.get(event_type) {
            while steps.contains_key(&version) {
                version = version.saturating_add(1);
            }
        }
        version
    }
}

/// Encodes an enum the way serde writes it by default (`{"Variant": data}` or `"Variant"`).
///
/// A unit variant is stored as `{}`, so it can later grow fields with defaults.
pub fn encode_externally_tagged<E: Serialize>(
    event: &E,
    event_type: &'static str,
    schema_version: u32,
) -> Result<EncodedEvent, EncodeError> {
    let value = serde_json::to_value(event)
        .map_err(|source| EncodeError::Serialise { event_type, source })?;
    let data = match value {
        Value::String(variant) if variant == event_type => Value::Object(Map::new()),
        Value::Object(mut map) if map.len() == 1 && map.contains_key(event_type) => {
            map.remove(event_type).unwrap_or(Value::Null)
        }
        other => {
            let written = match &other {
                Value::Object(map) => map.keys().cloned().collect::<Vec<_>>().join(", "),
                value => value.to_string(),
            };
            return Err(EncodeError::TypeMismatch {
                event_type,
                written,
            });
        }
    };
    Ok(EncodedEvent {
        event_type,
        schema_version,
        data,
    })
}

/// Decodes `data` of `event_type` into an externally tagged enum.
pub fn decode_externally_tagged<E: DeserializeOwned>(
    event_type: &str,
    schema_version: u32,
    data: Value,
) -> Result<E, DecodeError> {
    let unit_candidate = data.is_null() || data.as_object().is_some_and(Map::is_empty);
    let mut tagged = Map::with_capacity(1);
    tagged.insert(event_type.to_owned(), data);
    match serde_json::from_value(Value::Object(tagged)) {
        Ok(event) => Ok(event),
        Err(error) => {
            if unit_candidate {
                if let Ok(event) = serde_json::from_value(Value::String(event_type.to_owned())) {
                    return Ok(event);
                }
            }
            Err(DecodeError {
                event_type: event_type.to_owned(),
                schema_version,
                source: error,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;
    use crate::DomainEvent;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum TransferEvent {
        TransferCreated(TransferCreated),
        TransferCancelled,
        MemoChanged { memo: String },
    }

    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct TransferCreated {
        amount: i64,
        /// Added in schema version 2; version-1 events load with an empty memo.
        memo: String,
        /// Renamed from `to` in schema version 3.
        to_account: String,
    }

    impl DomainEvent for TransferEvent {
        fn event_type(&self) -> &'static str {
            match self {
                TransferEvent::TransferCreated(_) => "TransferCreated",
                TransferEvent::TransferCancelled => "TransferCancelled",
                TransferEvent::MemoChanged { .. } => "MemoChanged",
            }
        }

        fn schema_version(&self) -> u32 {
            match self {
                TransferEvent::TransferCreated(_) => 3,
                _ => 1,
            }
        }

        fn upcasters() -> &'static Upcasters {
            static UPCASTERS: LazyLock<Upcasters> = LazyLock::new(|| {
                Upcasters::new()
                    .with("TransferCreated", 1, |data| data)
                    .with("TransferCreated", 2, rename_to_field)
            });
            &UPCASTERS
        }
    }

    fn rename_to_field(mut data: Value) -> Value {
        if let Some(map) = data.as_object_mut() {
            if let Some(to) = map.remove("to") {
                map.insert("to_account".into(), to);
            }
        }
        data
    }

    fn decode(event_type: &str, schema_version: u32, data: Value) -> TransferEvent {
        match TransferEvent::decode(event_type, schema_version, data) {
            Ok(event) => event,
            Err(error) => panic!("decode failed: {error}"),
        }
    }

    fn created(amount: i64, memo: &str, to_account: &str) -> TransferEvent {
        TransferEvent::TransferCreated(TransferCreated {
            amount,
            memo: memo.into(),
            to_account: to_account.into(),
        })
    }

    #[test]
    fn missing_field_takes_its_default() {
        let event = decode(
            "TransferCreated",
            3,
            json!({"amount": 80, "to_account": "b"}),
        );
        assert_eq!(event, created(80, "", "b"));
    }

    #[test]
    fn unknown_field_is_ignored() {
        let data = json!({"amount": 5, "memo": "m", "to_account": "b", "added_later": [1, 2]});
        assert_eq!(decode("TransferCreated", 3, data), created(5, "m", "b"));
    }

    #[test]
    fn old_schema_version_is_upcast_through_every_step() {
        let event = decode("TransferCreated", 1, json!({"amount": 80, "to": "acc-2"}));
        assert_eq!(event, created(80, "", "acc-2"));
        let upcasters = TransferEvent::upcasters();
        assert_eq!(upcasters.current_version("TransferCreated", 1), 3);
        assert_eq!(upcasters.current_version("TransferCreated", 3), 3);
        assert_eq!(upcasters.current_version("MemoChanged", 1), 1);
    }

    #[test]
    fn current_schema_version_is_not_upcast() {
        // A current event that happens to carry a field named like the old one keeps both apart.
        let data = json!({"amount": 1, "to": "old", "to_account": "new"});
        assert_eq!(decode("TransferCreated", 3, data), created(1, "", "new"));
    }

    #[test]
    fn encoding_splits_type_and_data_and_round_trips() {
        let cases = [
            (
                created(3, "x", "b"),
                json!({"amount": 3, "memo": "x", "to_account": "b"}),
            ),
            (TransferEvent::TransferCancelled, json!({})),
            (
                TransferEvent::MemoChanged { memo: "m".into() },
                json!({"memo": "m"}),
            ),
        ];
        for (event, expected_data) in cases {
            let encoded = event.encode().expect("encodes");
            assert_eq!(encoded.event_type, event.event_type());
            assert_eq!(encoded.schema_version, event.schema_version());
            assert_eq!(encoded.data, expected_data);
            let back = decode(encoded.event_type, encoded.schema_version, encoded.data);
            assert_eq!(back, event);
        }
    }

    #[test]
    fn unit_variant_also_loads_from_null_data() {
        assert_eq!(
            decode("TransferCancelled", 1, Value::Null),
            TransferEvent::TransferCancelled
        );
    }

    #[test]
    fn unknown_event_type_is_a_decode_error_naming_the_type() {
        let error = TransferEvent::decode("Nope", 1, json!({})).expect_err("must fail");
        assert_eq!(error.event_type, "Nope");
        assert!(
            error.to_string().contains("could not decode event Nope"),
            "{error}"
        );
    }

    #[test]
    fn wrong_field_type_is_a_decode_error() {
        let result = TransferEvent::decode("TransferCreated", 3, json!({"amount": "eighty"}));
        assert!(result.is_err());
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    enum Misnamed {
        #[serde(rename = "Something")]
        Opened,
    }

    impl DomainEvent for Misnamed {
        fn event_type(&self) -> &'static str {
            "Opened"
        }
    }

    #[test]
    fn event_type_that_differs_from_the_serde_variant_is_an_encode_error() {
        let error = Misnamed::Opened.encode().expect_err("must fail");
        assert!(matches!(error, EncodeError::TypeMismatch { .. }));
        assert!(
            error.to_string().contains("serde wrote \"Something\""),
            "{error}"
        );
    }
}
