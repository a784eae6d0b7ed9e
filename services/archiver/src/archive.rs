//! The archive in object storage: a manifest plus segment objects, behind `object_store`, so a
//! local directory and an S3-compatible bucket take the same code path.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::manifest::{Manifest, SegmentEntry, MANIFEST_FORMAT, MANIFEST_NAME};
use crate::segment::{self, EncodedSegment, SEGMENT_DIR};

/// A handle on one archive. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    description: String,
}

/// What went wrong reading or writing the archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("invalid archive location {location:?}: {reason}; use a directory path, file:///dir or s3://bucket/prefix")]
    InvalidLocation { location: String, reason: String },
    #[error("could not create the archive directory {path}: {source}; check DATA_DIR and its permissions")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not {action} {name} in {archive}: {source}")]
    Store {
        action: &'static str,
        name: String,
        archive: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("the manifest of {archive} is unreadable: {reason}; run `archiver verify` and see the runbook in the README")]
    BadManifest { archive: String, reason: String },
}

impl Archive {
    /// Opens the archive at `location`: a local directory (a plain path or `file:///dir`,
    /// created if missing) or `s3://bucket/optional/prefix`, configured by the usual `AWS_*`
    /// variables (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...).
    pub fn open(location: &str) -> Result<Self, ArchiveError> {
        Self::open_with(location, &[])
    }

    /// Like [`Archive::open`], with S3 settings given in code that take precedence over the
    /// environment: pairs of an `AWS_*` variable's name and its value, e.g.
    /// `("AWS_ENDPOINT", "http://127.0.0.1:9000")`. A local directory ignores them.
    pub fn open_with(
        location: &str,
        s3_options: &[(String, String)],
    ) -> Result<Self, ArchiveError> {
        let invalid = |reason: String| ArchiveError::InvalidLocation {
            location: location.to_owned(),
            reason,
        };
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("the bucket name is missing".into()));
            }
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            for (name, value) in s3_options {
                let key: AmazonS3ConfigKey = name.to_ascii_lowercase().parse().map_err(|_| {
                    invalid(format!(
                        "{name} is not an S3 setting; use the name of an AWS_* variable, e.g. AWS_ENDPOINT"
                    ))
                })?;
                builder = builder.with_config(key, value);
            }
            #[cfg(not(feature = "s3-tls"))]
            let builder = builder.with_http_connector(crate::s3http::PlainHttpConnector);
            let s3 = builder.build().map_err(|e| invalid(e.to_string()))?;
            let prefix = prefix.trim_matches('/');
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                let path = Path::parse(prefix).map_err(|e| invalid(e.to_string()))?;
                Arc::new(PrefixStore::new(s3, path))
            };
            return Ok(Self {
                store,
                description: location.to_owned(),
            });
        }
        if location.contains("://") && !location.starts_with("file://") {
            return Err(invalid("only file:// and s3:// are supported".into()));
        }
        let dir = location.strip_prefix("file://").unwrap_or(location);
        if dir.is_empty() {
            return Err(invalid("the directory is empty".into()));
        }
        std::fs::create_dir_all(dir).map_err(|source| ArchiveError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let local = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| invalid(e.to_string()))?
            .with_fsync(true);
        Ok(Self {
            store: Arc::new(local),
            description: dir.to_owned(),
        })
    }

    /// An archive over any object store (e.g. `object_store::memory::InMemory` in tests).
    pub fn from_store(store: Arc<dyn ObjectStore>, description: impl Into<String>) -> Self {
        Self {
            store,
            description: description.into(),
        }
    }

    /// Where the archive is, for messages.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The underlying object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Reads the manifest; a missing manifest is an empty archive.
    pub async fn load_manifest(&self) -> Result<Manifest, ArchiveError> {
        let bytes = match self.get(MANIFEST_NAME).await {
            Ok(bytes) => bytes,
            Err(error) if error.is_not_found() => return Ok(Manifest::default()),
            Err(error) => return Err(error),
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| ArchiveError::BadManifest {
                archive: self.description.clone(),
                reason: e.to_string(),
            })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(ArchiveError::BadManifest {
                archive: self.description.clone(),
                reason: format!(
                    "format {} is not supported (this archiver reads format {MANIFEST_FORMAT})",
                    manifest.format
                ),
            });
        }
        Ok(manifest)
    }

    /// Writes a segment object and returns its manifest entry. Writing the same segment again
    /// replaces the object with identical bytes, so a retry is harmless.
    pub async fn put_segment(
        &self,
        segment: &EncodedSegment,
    ) -> Result<SegmentEntry, ArchiveError> {
        let name = segment::segment_name(segment.first_position, segment.last_position);
        self.put(&name, segment.bytes.clone()).await?;
        Ok(SegmentEntry::for_segment(name, segment))
    }

    /// Replaces the manifest (a whole-object put, atomic in both backends).
    pub async fn put_manifest(&self, manifest: &Manifest) -> Result<(), ArchiveError> {
        let bytes = serde_json::to_vec_pretty(manifest).map_err(|e| ArchiveError::BadManifest {
            archive: self.description.clone(),
            reason: e.to_string(),
        })?;
        self.put(MANIFEST_NAME, bytes).await
    }

    /// Reads a whole object.
    pub async fn get(&self, name: &str) -> Result<bytes::Bytes, ArchiveError> {
        let path = Path::from(name);
        let result = self
            .store
            .get(&path)
            .await
            .map_err(|source| self.error("read", name, source))?;
        result
            .bytes()
            .await
            .map_err(|source| self.error("read", name, source))
    }

    /// The names of all segment objects, listed or not, in name (= position) order.
    pub async fn list_segment_objects(&self) -> Result<Vec<String>, ArchiveError> {
        let prefix = Path::from(SEGMENT_DIR);
        let mut names: Vec<String> = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .map_err(|source| self.error("list", SEGMENT_DIR, source))?;
        names.sort();
        Ok(names)
    }

    /// Deletes the segment objects a crash between writing a segment and committing the
    /// manifest can leave: unlisted segments that start right after the manifest's end (their
    /// events are archived again). Returns the names deleted.
    ///
    /// Other unlisted segments are not the archiver's leftovers and are kept (`verify` lists
    /// them). Segments without any manifest are refused: a lost manifest must be restored, not
    /// archived over.
    pub async fn remove_unlisted_segments(
        &self,
        manifest: &Manifest,
    ) -> Result<Vec<String>, ArchiveError> {
        let last = manifest.last_position();
        let unlisted: Vec<String> = self
            .list_segment_objects()
            .await?
            .into_iter()
            .filter(|name| !manifest.lists(name))
            .collect();
        if manifest.segments.is_empty() && unlisted.len() > 1 {
            return Err(ArchiveError::BadManifest {
                archive: self.description.clone(),
                reason: format!(
                    "there is no manifest but {} segment objects; put manifest.json back from a backup (or move the segments away to start a new archive)",
                    unlisted.len()
                ),
            });
        }
        let mut removed = Vec::new();
        for name in unlisted {
            let leftover =
                segment::parse_segment_name(&name).is_some_and(|(first, _)| first == last + 1);
            if !leftover {
                tracing::warn!(segment = %name, "a segment object the manifest does not list is kept; check it with `archiver verify`");
                continue;
            }
            self.store
                .delete(&Path::from(name.as_str()))
                .await
                .map_err(|source| self.error("delete", &name, source))?;
            removed.push(name);
        }
        Ok(removed)
    }

    /// Writes a whole object.
    pub async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), ArchiveError> {
        self.store
            .put(&Path::from(name), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|source| self.error("write", name, source))
    }

    fn error(&self, action: &'static str, name: &str, source: object_store::Error) -> ArchiveError {
        ArchiveError::Store {
            action,
            name: name.to_owned(),
            archive: self.description.clone(),
            source: Box::new(source),
        }
    }
}

impl ArchiveError {
    /// Whether the object read does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Store { source, .. } if matches!(**source, object_store::Error::NotFound { .. }))
    }
}
