//! Turns the merged YAML tree into a checked `Manifest`.

use std::path::PathBuf;

use super::{Diagnostic, Manifest, ManifestError};

pub(super) fn check(
    sources: &[(PathBuf, String)],
    _env: &dyn Fn(&str) -> Option<String>,
) -> Result<Manifest, ManifestError> {
    Err(ManifestError::Invalid(vec![Diagnostic {
        file: sources[0].0.clone(),
        line: 0,
        column: 0,
        key: String::new(),
        problem: "manifest checking is being written".into(),
        fix: String::new(),
    }]))
}
