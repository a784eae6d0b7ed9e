//! `ManifestError`: every problem names the file, line, column and key path, and suggests a fix.

use std::fmt;
use std::path::PathBuf;

/// One problem in a manifest, at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line; 0 when the problem is about the whole file.
    pub line: usize,
    /// 1-based column; 0 when the problem is about the whole file.
    pub column: usize,
    /// Key path such as `services.api.ports[0]`; empty for file-level problems.
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.problem)?;
        if !self.fix.is_empty() {
            write!(f, "; {}", self.fix)?;
        }
        Ok(())
    }
}

/// Why a manifest could not be loaded. Displays as
/// `FILE:LINE:COL: services.api.ports[0]: <problem>; <fix>`; several problems as `N problems:`
/// then one such line each.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("no manifest given: use -f FILE")]
    NoFiles,
    /// One or more problems in the manifest files, in file order.
    #[error("{}", join(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ManifestError {
    /// The problems, for callers that want to show them one by one.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ManifestError::Invalid(d) => d,
            _ => &[],
        }
    }
}

/// One problem on one line; several as `N problems:` followed by one line each.
fn join(d: &[Diagnostic]) -> String {
    let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
    match lines.len() {
        1 => lines.join(""),
        n => format!("{n} problems:\n{}", lines.join("\n")),
    }
}
