//! The manifest: the list of segments with their ranges, sizes and checksums. It is rewritten
//! after each new segment, and that write is the archive's commit point: a segment file that
//! the manifest does not list is not part of the archive.

use serde::{Deserialize, Serialize};

use crate::segment::EncodedSegment;

/// The object name of the manifest inside the archive.
pub const MANIFEST_NAME: &str = "manifest.json";

/// The manifest format this code writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// The archive's table of contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Segments in position order; each starts right after the previous one ends.
    pub segments: Vec<SegmentEntry>,
}

/// One segment of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// The object name, such as `segments/<first>-<last>.ndjson.zst`.
    pub name: String,
    pub first_position: u64,
    pub last_position: u64,
    pub events: u64,
    /// Size of the compressed object.
    pub bytes: u64,
    pub uncompressed_bytes: u64,
    /// Hex SHA-256 of the compressed object.
    pub sha256: String,
}

/// Why a segment cannot be added to the manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("segment {name} starts at position {first}, but the archive ends at {last}; a segment must start at {expected}")]
    NotNext {
        name: String,
        first: u64,
        last: u64,
        expected: u64,
    },
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            format: MANIFEST_FORMAT,
            segments: Vec::new(),
        }
    }
}

impl Manifest {
    /// The last archived position (0 for an empty archive).
    pub fn last_position(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.last_position)
    }

    /// Events in the archive.
    pub fn events(&self) -> u64 {
        self.segments.iter().map(|s| s.events).sum()
    }

    /// Compressed bytes in the archive.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Adds the entry of a newly written segment, which must continue the archive.
    pub fn push(&mut self, entry: SegmentEntry) -> Result<(), ManifestError> {
        let last = self.last_position();
        if entry.first_position != last + 1 {
            return Err(ManifestError::NotNext {
                name: entry.name,
                first: entry.first_position,
                last,
                expected: last + 1,
            });
        }
        self.segments.push(entry);
        Ok(())
    }

    /// Whether `name` is one of the manifest's segments.
    pub fn lists(&self, name: &str) -> bool {
        self.segments.iter().any(|s| s.name == name)
    }
}

impl SegmentEntry {
    /// The entry describing `segment`, stored under `name`.
    pub fn for_segment(name: String, segment: &EncodedSegment) -> Self {
        Self {
            name,
            first_position: segment.first_position,
            last_position: segment.last_position,
            events: segment.events,
            bytes: segment.bytes.len() as u64,
            uncompressed_bytes: segment.uncompressed_bytes,
            sha256: segment.sha256.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(first: u64, last: u64) -> SegmentEntry {
        SegmentEntry {
            name: crate::segment::segment_name(first, last),
            first_position: first,
            last_position: last,
            events: last - first + 1,
            bytes: 10,
            uncompressed_bytes: 40,
            sha256: "00".into(),
        }
    }

    #[test]
    fn segments_must_continue_the_archive() {
        let mut manifest = Manifest::default();
        assert_eq!(manifest.last_position(), 0);
        manifest
            .push(entry(1, 10))
            .expect("first segment starts at 1");
        manifest.push(entry(11, 11)).expect("next segment");
        assert_eq!(manifest.last_position(), 11);
        assert_eq!(manifest.events(), 11);
        let error = manifest.push(entry(13, 20)).expect_err("gap");
        assert_eq!(error.to_string(), "segment segments/00000000000000000013-00000000000000000020.ndjson.zst starts at position 13, but the archive ends at 11; a segment must start at 12");
        assert!(manifest.push(entry(5, 20)).is_err(), "overlap");
        assert!(manifest.lists(&crate::segment::segment_name(11, 11)));
    }
}
