//! String helpers of the checker: typo suggestions, variable names, quoting, command words.

use super::super::types::Problem;

/// The allowed word closest to `word` by edit distance, if close enough to be a likely typo.
pub(super) fn closest<'w>(
    word: &str,
    candidates: impl Iterator<Item = &'w str>,
) -> Option<&'w str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

pub(super) fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// Splits a command string like a shell would for words: whitespace separates, single and
/// double quotes group, backslash escapes the next character outside single quotes.
pub(super) fn split_words(s: &str) -> Result<Vec<String>, Problem> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(unclosed(s)),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => cur.push(c),
                            None => return Err(unclosed(s)),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(unclosed(s)),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn unclosed(s: &str) -> Problem {
    Problem::new(
        format!("unclosed quote in the command `{s}`"),
        "close the quote, or write the command as a list: command: [\"serve\", \"--port\", \"8080\"]",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::check::service::SERVICE_KEYS;

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("enviroment", SERVICE_KEYS.iter().copied()),
            Some("environment")
        );
        assert_eq!(
            closest("imgae", SERVICE_KEYS.iter().copied()),
            Some("image")
        );
        assert_eq!(closest("port", SERVICE_KEYS.iter().copied()), Some("ports"));
        assert_eq!(closest("zzzzzzzz", SERVICE_KEYS.iter().copied()), None);
    }

    #[test]
    fn words() {
        let check = |s: &str, expected: &[&str]| {
            assert_eq!(
                split_words(s).ok(),
                Some(expected.iter().map(|w| w.to_string()).collect::<Vec<_>>()),
                "input: {s}"
            )
        };
        check("serve --port 8080", &["serve", "--port", "8080"]);
        check("sh -c 'echo hi'", &["sh", "-c", "echo hi"]);
        check("a \"b c\" d\\ e", &["a", "b c", "d e"]);
        check("''", &[""]);
        assert!(split_words("'open").is_err());
    }
}
