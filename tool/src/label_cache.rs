//! Image labels kept on disk by content digest, so a `plan` reads the labels of an image it has
//! seen before without asking the registry or the engine again.
//!
//! Only content-addressed keys are cached: a manifest digest (the labels of the image config it
//! names) or an image id (the digest of the config itself). What a digest names cannot change,
//! so an entry never goes stale and is never invalidated. A tag is never a key.
//!
//! The folder is `$DEPLOYER_CACHE_DIR`, else `$XDG_CACHE_HOME/deployer`, else
//! `$HOME/.cache/deployer`; `DEPLOYER_CACHE_DIR=off` turns the cache off. The cache is an
//! optimisation only: an entry that cannot be read (missing, truncated, not JSON, another
//! shape) is a miss, and an entry that cannot be written is skipped. Entries are written to a
//! temporary file and renamed into place, so a reader never sees half of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a cached digest names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyed {
    /// A registry manifest digest (for an index, the labels of its linux/amd64 image).
    Manifest,
    /// An engine image id.
    Image,
}

impl Keyed {
    fn folder(self) -> &'static str {
        match self {
            Keyed::Manifest => "manifest",
            Keyed::Image => "image",
        }
    }
}

/// The on-disk label cache; [`LabelCache::off`] caches nothing.
#[derive(Debug, Clone, Default)]
pub struct LabelCache {
    dir: Option<PathBuf>,
}

impl LabelCache {
    /// The cache in `dir` (created on the first write).
    pub fn at(dir: impl Into<PathBuf>) -> LabelCache {
        LabelCache {
            dir: Some(dir.into()),
        }
    }

    /// A cache that holds nothing.
    pub fn off() -> LabelCache {
        LabelCache { dir: None }
    }

    /// The cache the environment names (see the module's documentation).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> LabelCache {
        let set = |k: &str| env(k).filter(|v| !v.is_empty());
        match set("DEPLOYER_CACHE_DIR") {
            Some(v) if v == "off" => LabelCache::off(),
            Some(v) => LabelCache::at(v),
            None => match set("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| set("HOME").map(|h| Path::new(&h).join(".cache")))
            {
                Some(base) => LabelCache::at(base.join("deployer")),
                None => LabelCache::off(),
            },
        }
    }

    /// The labels cached for `digest`; `None` on a miss, for a key that is not a sha256
    /// digest, and for an entry that cannot be read.
    pub fn get(&self, keyed: Keyed, digest: &str) -> Option<BTreeMap<String, String>> {
        let path = self.path(keyed, digest)?;
        let text = std::fs::read(path).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Keeps `labels` for `digest`, if the key is a sha256 digest and the folder is writable.
    pub fn put(&self, keyed: Keyed, digest: &str, labels: &BTreeMap<String, String>) {
        let Some(path) = self.path(keyed, digest) else {
            return;
        };
        let Some(dir) = path.parent() else {
            return;
        };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        // Plain string maps always serialize.
        let Ok(text) = serde_json::to_vec(labels) else {
            return;
        };
        // A name of this process's own: concurrent deployers never write one file together.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = dir.join(format!(".{}.{nanos}.tmp", std::process::id()));
        if std::fs::write(&tmp, &text).is_ok() && std::fs::rename(&tmp, &path).is_ok() {
            return;
        }
        let _ = std::fs::remove_file(&tmp);
    }

    fn path(&self, keyed: Keyed, digest: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let hex = digest.strip_prefix("sha256:")?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        Some(
            dir.join("labels")
                .join(keyed.folder())
                .join(format!("{hex}.json")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:98e4a2c027c8d3791fc5cdbb5b71dae92ecda0aa6a45f58ac78c8e0ef9b021cf";

    fn labels() -> BTreeMap<String, String> {
        BTreeMap::from([("io.fleet.events.produces".into(), "A@1".into())])
    }

    #[test]
    fn an_entry_written_is_read_back_under_its_kind_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LabelCache::at(dir.path());
        assert_eq!(cache.get(Keyed::Image, DIGEST), None);
        cache.put(Keyed::Image, DIGEST, &labels());
        assert_eq!(cache.get(Keyed::Image, DIGEST), Some(labels()));
        assert_eq!(cache.get(Keyed::Manifest, DIGEST), None);
    }

    #[test]
    fn tags_and_malformed_digests_are_never_keys() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LabelCache::at(dir.path());
        for key in ["latest", "sha256:abc", "sha256:../../etc/passwd", "md5:00"] {
            cache.put(Keyed::Manifest, key, &labels());
            assert_eq!(cache.get(Keyed::Manifest, key), None, "{key}");
        }
        assert!(!dir.path().join("labels").exists(), "nothing was written");
    }

    #[test]
    fn an_unreadable_entry_is_a_miss_and_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LabelCache::at(dir.path());
        cache.put(Keyed::Manifest, DIGEST, &labels());
        let file = std::fs::read_dir(dir.path().join("labels/manifest"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        for garbage in [&b"{\"io.fleet"[..], b"[1,2]", b"\xff\xfe"] {
            std::fs::write(&file, garbage).unwrap();
            assert_eq!(cache.get(Keyed::Manifest, DIGEST), None);
        }
        cache.put(Keyed::Manifest, DIGEST, &labels());
        assert_eq!(cache.get(Keyed::Manifest, DIGEST), Some(labels()));
    }

    #[test]
    fn an_unwritable_folder_caches_nothing_and_fails_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let cache = LabelCache::at(file.join("sub"));
        cache.put(Keyed::Image, DIGEST, &labels());
        assert_eq!(cache.get(Keyed::Image, DIGEST), None);
    }

    #[test]
    fn the_folder_comes_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let dir = |c: LabelCache| c.dir;
        assert_eq!(
            dir(LabelCache::from_env(&env(&[
                ("DEPLOYER_CACHE_DIR", "/c"),
                ("HOME", "/h")
            ]))),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(
            dir(LabelCache::from_env(&env(&[("DEPLOYER_CACHE_DIR", "off")]))),
            None
        );
        assert_eq!(
            dir(LabelCache::from_env(&env(&[
                ("XDG_CACHE_HOME", "/x"),
                ("HOME", "/h")
            ]))),
            Some(PathBuf::from("/x/deployer"))
        );
        assert_eq!(
            dir(LabelCache::from_env(&env(&[("HOME", "/h")]))),
            Some(PathBuf::from("/h/.cache/deployer"))
        );
        assert_eq!(dir(LabelCache::from_env(&env(&[]))), None);
    }
}
