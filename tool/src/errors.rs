//! Error text shared by the steps that collect several failures before they report.

/// An error and its sources on one line, as `{:#}` prints an anyhow chain.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

/// `"{count} {what}:"` and then each error's chain on a line of its own, indented.
pub(crate) fn several<E: std::error::Error>(what: &str, errors: &[E]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| format!("  {}", chain(e))).collect();
    format!("{} {what}:\n{}", errors.len(), lines.join("\n"))
}
