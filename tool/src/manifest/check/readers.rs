//! Typed readers: a YAML node read as a map, a checked set of keys, a string, a number, a list,
//! a command or `KEY: value` pairs, each recording a problem where the node does not fit.

use std::collections::BTreeMap;

use super::super::interpolate::interpolate;
use super::super::types::Problem;
use super::super::yaml::{join_path, Key, Kind, Node};
use super::text::{closest, is_env_name, split_words};
use super::Checker;

/// Keys other tools use, with what to write instead.
const FOREIGN_KEYS: &[(&str, &str)] = &[
    ("name", "the project name is written `project: NAME`"),
    ("version", "manifests have no version; remove it"),
    (
        "deploy",
        "write `replicas`, `update` and `resources` directly under the service",
    ),
    (
        "healthcheck",
        "write `health:` with `path` and `port`; the deployer checks over HTTP",
    ),
    (
        "container_name",
        "container names are always `<project>-<service>-<replica>-<id>`; remove it",
    ),
    ("build", "build the image first and name it with `image:`"),
    (
        "expose",
        "services reach each other by name on the project network without it; remove it",
    ),
    (
        "links",
        "services reach each other by name on the project network without it; remove it",
    ),
];

impl Checker<'_> {
    /// A map's entries; `Null` reads as an empty map.
    pub(super) fn map<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        fix: &str,
    ) -> Option<&'n [(Key, Node)]> {
        match &node.kind {
            Kind::Map(entries) => Some(entries),
            Kind::Null => Some(&[]),
            _ => {
                self.err(
                    node.pos,
                    path,
                    Problem::new(format!("expected a map, found {}", node.type_name()), fix),
                );
                None
            }
        }
    }

    /// The entries of a map whose keys must be in `allowed`; unknown keys are reported with the
    /// closest allowed key. Keys starting with `x-` are extension fields and ignored.
    pub(super) fn fields<'n>(
        &mut self,
        entries: &'n [(Key, Node)],
        path: &str,
        allowed: &[&str],
    ) -> BTreeMap<&'n str, (&'n Key, &'n Node)> {
        let mut out = BTreeMap::new();
        for (key, value) in entries {
            if allowed.contains(&key.name.as_str()) {
                out.insert(key.name.as_str(), (key, value));
                continue;
            }
            if key.name.starts_with("x-") {
                continue;
            }
            let fix = match FOREIGN_KEYS.iter().find(|(k, _)| *k == key.name) {
                Some((_, hint)) => {
                    if key.name == "name" {
                        self.suggested.insert(join_path(path, "project"));
                    }
                    (*hint).to_owned()
                }
                None => match closest(&key.name, allowed.iter().copied()) {
                    Some(s) => {
                        self.suggested.insert(join_path(path, s));
                        format!("did you mean `{s}`?")
                    }
                    None => format!("the keys allowed here are {}", allowed.join(", ")),
                },
            };
            self.err(
                key.pos,
                &join_path(path, &key.name),
                Problem::new(format!("unknown key `{}`", key.name), fix),
            );
        }
        out
    }

    /// A scalar, interpolated.
    pub(super) fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.kind {
            Kind::Scalar { text, .. } => match interpolate(text, self.env) {
                Ok(s) => Some(s),
                Err(p) => {
                    self.err(node.pos, path, p);
                    None
                }
            },
            Kind::Null => {
                self.err(
                    node.pos,
                    path,
                    Problem::new("the key has no value", "give it a value or remove the key"),
                );
                None
            }
            _ => {
                self.err(
                    node.pos,
                    path,
                    Problem::new(
                        format!("expected a single value, found {}", node.type_name()),
                        "write one value after the `:`",
                    ),
                );
                None
            }
        }
    }

    pub(super) fn parsed<T>(
        &mut self,
        node: &Node,
        path: &str,
        parse: impl Fn(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        let text = self.string(node, path)?;
        match parse(&text) {
            Ok(v) => Some(v),
            Err(p) => {
                self.err(node.pos, path, p);
                None
            }
        }
    }

    pub(super) fn number(
        &mut self,
        node: &Node,
        path: &str,
        min: u64,
        max: u64,
        what: &str,
    ) -> Option<u64> {
        let text = self.string(node, path)?;
        match text.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.err(
                    node.pos,
                    path,
                    Problem::new(
                        format!("`{text}` is not a valid {what}"),
                        format!("give a whole number from {min} to {max}"),
                    ),
                );
                None
            }
        }
    }

    /// A list's items with their index; a single value reads as a list of one.
    pub(super) fn list<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        fix: &str,
    ) -> Vec<(usize, &'n Node)> {
        match &node.kind {
            Kind::Seq(items) => items.iter().enumerate().collect(),
            Kind::Null => Vec::new(),
            _ => {
                self.err(
                    node.pos,
                    path,
                    Problem::new(format!("expected a list, found {}", node.type_name()), fix),
                );
                Vec::new()
            }
        }
    }

    pub(super) fn command(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        match &node.kind {
            Kind::Seq(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.push(self.string(item, &format!("{path}[{i}]"))?);
                }
                Some(out)
            }
            _ => {
                let text = self.string(node, path)?;
                match split_words(&text) {
                    Ok(words) if !words.is_empty() => Some(words),
                    Ok(_) => {
                        self.err(
                            node.pos,
                            path,
                            Problem::new(
                                "the command is empty",
                                "give a command or remove the key",
                            ),
                        );
                        None
                    }
                    Err(p) => {
                        self.err(node.pos, path, p);
                        None
                    }
                }
            }
        }
    }

    /// `KEY: value` maps or `- KEY=value` lists (environment, labels).
    pub(super) fn key_values(
        &mut self,
        node: &Node,
        path: &str,
        env_names: bool,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let check_name = |name: &str| -> Result<(), Problem> {
            if env_names && !is_env_name(name) {
                return Err(Problem::new(
                    format!("`{name}` is not a valid variable name"),
                    "use letters, digits and `_`, not starting with a digit",
                ));
            }
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(Problem::new(
                    format!("`{name}` is not a valid name"),
                    "use a name without spaces",
                ));
            }
            Ok(())
        };
        match &node.kind {
            Kind::Map(entries) => {
                for (key, value) in entries {
                    let p = join_path(path, &key.name);
                    if let Err(e) = check_name(&key.name) {
                        self.err(key.pos, &p, e);
                        continue;
                    }
                    match &value.kind {
                        Kind::Null if env_names => self.err(
                            value.pos,
                            &p,
                            Problem::new(
                                format!("`{}` has no value", key.name),
                                format!("write `{k}: value`, or `{k}: ${{{k}}}` to take it from the environment", k = key.name),
                            ),
                        ),
                        Kind::Null => out.push((key.name.clone(), String::new())),
                        _ => {
                            if let Some(v) = self.string(value, &p) {
                                out.push((key.name.clone(), v));
                            }
                        }
                    }
                }
            }
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    let Some(text) = self.string(item, &p) else {
                        continue;
                    };
                    let Some((k, v)) = text.split_once('=') else {
                        self.err(
                            item.pos,
                            &p,
                            Problem::new(
                                format!("`{text}` has no `=`"),
                                "write list items as KEY=value",
                            ),
                        );
                        continue;
                    };
                    if let Err(e) = check_name(k) {
                        self.err(item.pos, &p, e);
                        continue;
                    }
                    out.push((k.to_owned(), v.to_owned()));
                }
            }
            Kind::Null => {}
            Kind::Scalar { .. } => self.err(
                node.pos,
                path,
                Problem::new(
                    "expected a map or a list, found a single value",
                    "write `KEY: value` entries, one per line",
                ),
            ),
        }
        out
    }
}
