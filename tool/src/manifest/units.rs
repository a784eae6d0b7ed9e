//! Durations, memory sizes and CPU counts as the manifest writes them.

use std::time::Duration;

use super::types::Problem;

/// Parses `200ms`, `2s`, `1m`, `1h`, `1m30s`, `1.5s`.
pub fn parse_duration(s: &str) -> Result<Duration, Problem> {
    let bad = || {
        Problem::new(
            format!("`{s}` is not a duration"),
            "write durations like 200ms, 2s or 1m",
        )
    };
    let s_trim = s.trim();
    if s_trim.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s_trim;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ms = match &rest[..unit_len] {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let ms = number * unit_ms;
        if !ms.is_finite() || ms > 1e12 {
            return Err(bad());
        }
        total += Duration::from_micros((ms * 1000.0).round() as u64);
    }
    Ok(total)
}

/// Parses a memory size: `512m`, `1g`, `1.5g`, `65536k`, `1048576` (bytes), `512mb`, `1GiB`.
pub fn parse_memory(s: &str) -> Result<u64, Problem> {
    let bad = || {
        Problem::new(
            format!("`{s}` is not a memory size"),
            "write memory like 512m or 1g (units b, k, m, g)",
        )
    };
    let lower = s.trim().to_ascii_lowercase();
    let num_len = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    if num_len == 0 {
        return Err(bad());
    }
    let number: f64 = lower[..num_len].parse().map_err(|_| bad())?;
    let mult: u64 = match &lower[num_len..] {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    let bytes = number * mult as f64;
    if !bytes.is_finite() || bytes > 1e15 {
        return Err(bad());
    }
    let bytes = bytes.round() as u64;
    // Docker refuses memory limits below 6 MiB.
    if bytes < 6 << 20 {
        return Err(Problem::new(
            format!("memory `{s}` is below the engine's minimum of 6m"),
            "give at least 6m",
        ));
    }
    Ok(bytes)
}

/// Parses a CPU count like `0.5` or `2` into nano-CPUs.
pub fn parse_cpus(s: &str, available_max: f64) -> Result<u64, Problem> {
    let n: f64 = s.trim().parse().map_err(|_| {
        Problem::new(
            format!("`{s}` is not a number of CPUs"),
            "write cpus as a number like 0.5 or 2",
        )
    })?;
    if !n.is_finite() || n < 0.01 || n > available_max {
        return Err(Problem::new(
            format!("cpus `{s}` is out of range"),
            format!("give a number between 0.01 and {available_max}"),
        ));
    }
    Ok((n * 1e9).round() as u64)
}

/// Serde helper: a `Duration` as whole milliseconds.
pub mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let check = |s: &str, ms: Option<u64>| {
            assert_eq!(
                parse_duration(s).ok().map(|d| d.as_millis() as u64),
                ms,
                "input: {s}"
            )
        };
        check("200ms", Some(200));
        check("2s", Some(2000));
        check("1m", Some(60_000));
        check("1m30s", Some(90_000));
        check("1.5s", Some(1500));
        check("1h", Some(3_600_000));
        check("2", None);
        check("s", None);
        check("2 sec", None);
        check("", None);
    }

    #[test]
    fn memory_and_cpus() {
        assert_eq!(parse_memory("512m").ok(), Some(512 << 20));
        assert_eq!(parse_memory("1g").ok(), Some(1 << 30));
        assert_eq!(parse_memory("1.5G").ok(), Some(3 << 29));
        assert!(parse_memory("1k").is_err());
        assert!(parse_memory("lots").is_err());
        assert_eq!(parse_cpus("0.5", 64.0).ok(), Some(500_000_000));
        assert!(parse_cpus("0", 64.0).is_err());
        assert!(parse_cpus("half", 64.0).is_err());
    }
}
