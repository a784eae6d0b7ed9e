//! `${VAR}` interpolation, as Compose does it: `${VAR}` and `$VAR` (must be set),
//! `${VAR:-default}` (default when unset or empty), `${VAR-default}` (default when unset),
//! `${VAR:?message}` (error with the message when unset or empty), and `$$` for a literal `$`.

use super::types::Problem;

/// Replaces every variable in `text`. `env` answers look-ups.
pub(super) fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Problem> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(braced) = after.strip_prefix('{') {
            let Some(end) = braced.find('}') else {
                return Err(Problem::new(
                    format!("`${{` without a closing `}}` in `{text}`"),
                    "write ${VAR} or ${VAR:-default}, or $$ for a literal $",
                ));
            };
            out.push_str(&expand(&braced[..end], text, env)?);
            rest = &braced[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..len];
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(Problem::new(
                    format!("a lone `$` in `{text}`"),
                    "write $$ for a literal $, or ${VAR} for a variable",
                ));
            }
            out.push_str(&expand(name, text, env)?);
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn expand(
    inner: &str,
    whole: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Problem> {
    let name_len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, op) = inner.split_at(name_len);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(Problem::new(
            format!("`${{{inner}}}` in `{whole}` does not name a variable"),
            "variable names are letters, digits and `_`, not starting with a digit",
        ));
    }
    let value = env(name);
    if op.is_empty() {
        return value.ok_or_else(|| {
            Problem::new(
                format!("the variable `{name}` is not set"),
                format!(
                    "set {name} in the environment, or give a default with ${{{name}:-default}}"
                ),
            )
        });
    }
    if let Some(default) = op.strip_prefix(":-") {
        return Ok(value
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_owned()));
    }
    if let Some(default) = op.strip_prefix('-') {
        return Ok(value.unwrap_or_else(|| default.to_owned()));
    }
    if let Some(message) = op.strip_prefix(":?").or_else(|| op.strip_prefix('?')) {
        return value.filter(|v| !v.is_empty()).ok_or_else(|| {
            let why = if message.is_empty() {
                "is required".to_owned()
            } else {
                message.to_owned()
            };
            Problem::new(
                format!("the variable `{name}` is not set: {why}"),
                format!("set {name} in the environment"),
            )
        });
    }
    Err(Problem::new(
        format!("`${{{inner}}}` in `{whole}` is not a supported substitution"),
        "write ${VAR}, ${VAR:-default}, ${VAR-default} or ${VAR:?message}",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let env = |k: &str| match k {
            "TAG" => Some("1.2".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let got = match interpolate(input, &env) {
            Ok(s) => s,
            Err(p) => format!("error: {}; {}", p.problem, p.fix),
        };
        assert_eq!(got, expected, "input: {input}");
    }

    #[test]
    fn cases() {
        check("api:${TAG}", "api:1.2");
        check("api:$TAG", "api:1.2");
        check("${MISSING:-x}", "x");
        check("${EMPTY:-x}", "x");
        check("${EMPTY-x}", "");
        check("${MISSING-x}", "x");
        check("cost $$5", "cost $5");
        check("no vars", "no vars");
        check(
            "${MISSING}",
            "error: the variable `MISSING` is not set; set MISSING in the environment, or give a default with ${MISSING:-default}",
        );
        check(
            "${MISSING:?give the db url}",
            "error: the variable `MISSING` is not set: give the db url; set MISSING in the environment",
        );
        check(
            "${TAG",
            "error: `${` without a closing `}` in `${TAG`; write ${VAR} or ${VAR:-default}, or $$ for a literal $",
        );
        check(
            "5$",
            "error: a lone `$` in `5$`; write $$ for a literal $, or ${VAR} for a variable",
        );
        check(
            "${TAG:+x}",
            "error: `${TAG:+x}` in `${TAG:+x}` is not a supported substitution; write ${VAR}, ${VAR:-default}, ${VAR-default} or ${VAR:?message}",
        );
    }
}
