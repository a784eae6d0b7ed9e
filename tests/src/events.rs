//! The event-type declarations images are labelled with: `ci/events/<service>.produces` and
//! `.consumes`, one `EventType@schema_version` per line (`*` means every event).

use std::collections::BTreeSet;

use crate::{workspace_root, Error};

/// The declared events of `service` in `kind` (`produces` or `consumes`); empty when the
/// service declares none.
pub fn declared(service: &str, kind: &str) -> Result<BTreeSet<String>, Error> {
    let path = workspace_root().join(format!("ci/events/{service}.{kind}"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()))(e)),
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}
