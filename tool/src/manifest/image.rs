//! Image references, checked against Docker's reference grammar.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::types::Problem;

/// An image reference `[registry[:port]/]repository[:tag][@digest]`, checked against Docker's
/// reference grammar. `Display` gives the reference exactly as written in the manifest, which is
/// also the key of `plan::Observed::image_digests`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    original: String,
    /// Registry host (and port) if the reference names one, e.g. `127.0.0.1:5000`.
    pub registry: Option<String>,
    /// Repository path, e.g. `library/redis`, `team/api` or `api`.
    pub repository: String,
    pub tag: Option<String>,
    /// Pinned digest such as `sha256:…`, if the reference has `@digest`.
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<Self, Problem> {
        let fix = "write an image reference like `api:1.2`, `registry.example.com:5000/team/api:1.2` or `api@sha256:<64 hex digits>`";
        let bad = |why: &str| {
            Err(Problem::new(
                format!("`{s}` is not a valid image reference: {why}"),
                fix,
            ))
        };
        if s.is_empty() {
            return Err(Problem::new("the image reference is empty", fix));
        }
        if s.len() > 255 + 128 + 72 {
            return bad("it is too long");
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => {
                if !is_valid_digest(digest) {
                    return bad(
                        "the digest must look like `sha256:` followed by 64 lowercase hex digits",
                    );
                }
                (rest, Some(digest.to_owned()))
            }
            None => (s, None),
        };
        // The tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(rest[at + 1..].to_owned()))
            }
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
            if !valid {
                return bad(
                    "the tag may hold only letters, digits, `_`, `.` and `-` (at most 128)",
                );
            }
        }
        let mut parts: Vec<&str> = name.split('/').collect();
        let registry = if parts.len() > 1
            && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
        {
            let host = parts.remove(0);
            if !is_valid_registry(host) {
                return bad("the registry host is invalid");
            }
            Some(host.to_owned())
        } else {
            None
        };
        if parts.is_empty() || parts.iter().any(|p| !is_valid_path_component(p)) {
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                return bad("the repository name must be lowercase");
            }
            return bad("each path component must be lowercase letters and digits, separated by `.`, `_`, `__` or `-`");
        }
        Ok(ImageRef {
            original: s.to_owned(),
            registry,
            repository: parts.join("/"),
            tag,
            digest,
        })
    }

    /// The reference as written in the manifest.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The tag, `latest` when none is written.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }
}

fn is_valid_digest(d: &str) -> bool {
    match d.split_once(':') {
        Some(("sha256", hex)) => {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        Some(("sha512", hex)) => {
            hex.len() == 128
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        _ => false,
    }
}

fn is_valid_registry(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port {
        if port.parse::<u16>().is_err() {
            return false;
        }
    }
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_valid_path_component(p: &str) -> bool {
    // [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
    let b = p.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &p[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl Serialize for ImageRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.original)
    }
}

impl<'de> Deserialize<'de> for ImageRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ImageRef::parse(&s).map_err(|p| serde::de::Error::custom(p.problem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_image(input: &str, expected: &str) {
        let got = match ImageRef::parse(input) {
            Ok(r) => format!(
                "registry={:?} repo={} tag={:?} digest={:?}",
                r.registry, r.repository, r.tag, r.digest
            ),
            Err(p) => format!("error: {}; {}", p.problem, p.fix),
        };
        assert_eq!(got, expected, "input: {input}");
    }

    #[test]
    fn image_refs() {
        check_image("api", "registry=None repo=api tag=None digest=None");
        check_image(
            "api:1.2",
            "registry=None repo=api tag=Some(\"1.2\") digest=None",
        );
        check_image(
            "127.0.0.1:5000/team/api:v1",
            "registry=Some(\"127.0.0.1:5000\") repo=team/api tag=Some(\"v1\") digest=None",
        );
        check_image(
            "localhost/api",
            "registry=Some(\"localhost\") repo=api tag=None digest=None",
        );
        check_image(
            "library/redis_x__y-z.w:7",
            "registry=None repo=library/redis_x__y-z.w tag=Some(\"7\") digest=None",
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        check_image(
            &format!("api@{digest}"),
            &format!("registry=None repo=api tag=None digest=Some(\"{digest}\")"),
        );
        check_image("Api:1", "error: `Api:1` is not a valid image reference: the repository name must be lowercase; write an image reference like `api:1.2`, `registry.example.com:5000/team/api:1.2` or `api@sha256:<64 hex digits>`");
        check_image("api:", "error: `api:` is not a valid image reference: the tag may hold only letters, digits, `_`, `.` and `-` (at most 128); write an image reference like `api:1.2`, `registry.example.com:5000/team/api:1.2` or `api@sha256:<64 hex digits>`");
        check_image("api@sha256:12", "error: `api@sha256:12` is not a valid image reference: the digest must look like `sha256:` followed by 64 lowercase hex digits; write an image reference like `api:1.2`, `registry.example.com:5000/team/api:1.2` or `api@sha256:<64 hex digits>`");
        check_image("a//b", "error: `a//b` is not a valid image reference: each path component must be lowercase letters and digits, separated by `.`, `_`, `__` or `-`; write an image reference like `api:1.2`, `registry.example.com:5000/team/api:1.2` or `api@sha256:<64 hex digits>`");
    }
}
