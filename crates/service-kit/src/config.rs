//! Configuration from environment variables with documented defaults.
//!
//! Fleet-wide convention: every service reads `PORT` and `DATA_DIR` and listens on 0.0.0.0;
//! service-specific variables carry the service's prefix (e.g. `EVENT_STORE_MAX_BATCH`).

use std::fmt::Display;
use std::str::FromStr;

/// A variable is set but its value cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} has the invalid value {value:?}: {reason}; unset it to use the default ({default})")]
    Invalid {
        name: String,
        value: String,
        reason: String,
        default: String,
    },
    #[error("environment variable {name} is not valid unicode; unset it or give it a plain value")]
    NotUnicode { name: String },
}

/// Reads `name` and parses it, or returns `default` when it is unset or empty.
pub fn env_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr + Display,
    T::Err: Display,
{
    lookup(name, default, |n| std::env::var(n))
}

/// Reads the port from `PORT`, defaulting to `default`.
pub fn env_port(default: u16) -> Result<u16, ConfigError> {
    env_or("PORT", default)
}

fn lookup<T>(
    name: &str,
    default: T,
    get: impl Fn(&str) -> Result<String, std::env::VarError>,
) -> Result<T, ConfigError>
where
    T: FromStr + Display,
    T::Err: Display,
{
    match get(name) {
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::NotUnicode {
            name: name.to_owned(),
        }),
        Ok(value) if value.trim().is_empty() => Ok(default),
        Ok(value) => value
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name: name.to_owned(),
                value: value.clone(),
                reason: e.to_string(),
                default: default.to_string(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: Option<&str>, expected: Result<u16, &str>) {
        let got = lookup("PORT", 8100u16, |_| {
            value
                .map(str::to_owned)
                .ok_or(std::env::VarError::NotPresent)
        });
        match (got, expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(got), Err(want)) => assert_eq!(got.to_string(), want),
            (got, want) => panic!("for {value:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn port_values() {
        check(None, Ok(8100));
        check(Some(""), Ok(8100));
        check(Some("9000"), Ok(9000));
        check(Some(" 0 "), Ok(0));
        check(
            Some("http"),
            Err("environment variable PORT has the invalid value \"http\": invalid digit found in string; unset it to use the default (8100)"),
        );
        check(
            Some("70000"),
            Err("environment variable PORT has the invalid value \"70000\": number too large to fit in target type; unset it to use the default (8100)"),
        );
    }
}
