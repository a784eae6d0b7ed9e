//! Files named by the manifest: `env_file` entries and secret `file`s, read relative to the
//! manifest that names them.

use std::collections::BTreeMap;

use super::super::input::{read_text, ReadFailure};
use super::super::types::{Problem, Secret};
use super::super::yaml::{join_path, Kind, Node};
use super::text::{is_env_name, unquote};
use super::Checker;

const SECRET_KEYS: &[&str] = &["file", "env"];

impl Checker<'_> {
    /// `env_file: FILE` or a list of files, read relative to the manifest that names them.
    pub(super) fn env_files(&mut self, node: &Node, path: &str) -> Vec<(String, String)> {
        let items: Vec<(String, &Node)> = match &node.kind {
            Kind::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("{path}[{i}]"), n))
                .collect(),
            _ => vec![(path.to_owned(), node)],
        };
        let mut out = Vec::new();
        for (p, item) in items {
            let Some(file) = self.string(item, &p) else {
                continue;
            };
            let full = self.dir_of(item.pos).join(&file);
            let text = match read_text(&full) {
                Ok(t) => t,
                Err(f) => {
                    self.err(
                        item.pos,
                        &p,
                        Problem::new(
                            format!(
                                "cannot read the env file `{}`: {}",
                                full.display(),
                                f.problem
                            ),
                            unreadable_fix(&f),
                        ),
                    );
                    continue;
                }
            };
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let line = line.strip_prefix("export ").unwrap_or(line);
                match line.split_once('=') {
                    Some((k, v)) if is_env_name(k.trim()) => {
                        out.push((k.trim().to_owned(), unquote(v.trim()).to_owned()));
                    }
                    _ => self.err(
                        item.pos,
                        &p,
                        Problem::new(
                            format!("line {} of `{}` is not KEY=VALUE", n + 1, full.display()),
                            "write one KEY=VALUE per line; lines starting with # are comments",
                        ),
                    ),
                }
            }
        }
        out
    }

    pub(super) fn secrets(
        &mut self,
        node: &Node,
        path: &str,
        environment: &BTreeMap<String, String>,
    ) -> BTreeMap<String, Secret> {
        let mut out = BTreeMap::new();
        let Some(entries) = self.map(
            node,
            path,
            "write each secret as `NAME: {file: PATH}` or `NAME: {env: VAR}`",
        ) else {
            return out;
        };
        for (key, value) in entries {
            let p = join_path(path, &key.name);
            if !is_env_name(&key.name) {
                self.err(
                    key.pos,
                    &p,
                    Problem::new(
                        format!("`{}` is not a valid variable name", key.name),
                        "secrets are delivered as environment variables: use letters, digits and `_`",
                    ),
                );
                continue;
            }
            if environment.contains_key(&key.name) {
                self.err(
                    key.pos,
                    &p,
                    Problem::new(
                        format!("`{}` is both in environment and in secrets", key.name),
                        "keep it in one of them",
                    ),
                );
                continue;
            }
            let Some(entries) = self.map(value, &p, "write `{file: PATH}` or `{env: VAR}`") else {
                continue;
            };
            let f = self.fields(entries, &p, SECRET_KEYS);
            let secret = match (f.get("file"), f.get("env")) {
                (Some((_, file)), None) => {
                    let fp = join_path(&p, "file");
                    let Some(name) = self.string(file, &fp) else {
                        continue;
                    };
                    let full = self.dir_of(file.pos).join(&name);
                    match read_text(&full) {
                        Ok(mut text) => {
                            if text.ends_with('\n') {
                                text.pop();
                                if text.ends_with('\r') {
                                    text.pop();
                                }
                            }
                            Secret::new(text)
                        }
                        Err(f) => {
                            self.err(
                                file.pos,
                                &fp,
                                Problem::new(
                                    format!(
                                        "cannot read the secret file `{}`: {}",
                                        full.display(),
                                        f.problem
                                    ),
                                    unreadable_fix(&f),
                                ),
                            );
                            continue;
                        }
                    }
                }
                (None, Some((_, var))) => {
                    let vp = join_path(&p, "env");
                    let Some(var_name) = self.string(var, &vp) else {
                        continue;
                    };
                    match (self.env)(&var_name) {
                        Some(v) => Secret::new(v),
                        None => {
                            self.err(
                                var.pos,
                                &vp,
                                Problem::new(
                                    format!("the variable `{var_name}` is not set"),
                                    format!("set {var_name} in the environment of the deployer"),
                                ),
                            );
                            continue;
                        }
                    }
                }
                _ => {
                    self.err(
                        value.pos,
                        &p,
                        Problem::new(
                            "a secret needs exactly one of `file` or `env`",
                            "write `{file: PATH}` or `{env: VAR}`",
                        ),
                    );
                    continue;
                }
            };
            out.insert(key.name.clone(), secret);
        }
        out
    }
}

/// The fix for a file named by the manifest that could not be read: where a missing path is
/// looked for, else the reader's own fix.
fn unreadable_fix(f: &ReadFailure) -> String {
    if f.fix == "check the path" {
        "check the path; it is relative to the manifest file".to_owned()
    } else {
        f.fix.clone()
    }
}
