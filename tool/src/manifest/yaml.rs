//! A small YAML tree that remembers where each node came from (file, line, column), built from
//! saphyr's event parser, and the overlay merge. Scalars stay strings: the checker decides
//! what they mean, so `8080:80` is never read as a base-60 number and `on` never as a bool.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Where a node starts: index into the list of files, 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Pos {
    pub file: usize,
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    /// `~`, `null`, or nothing.
    Null,
    /// A scalar's text; `quoted` when written in quotes (never interpolated differently, but
    /// never null either).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Keys in file order, each with its own position.
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Key {
    pub name: String,
    pub pos: Pos,
}

/// A parse problem: position, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ParseError {
    pub pos: Pos,
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl Node {
    /// A short name of the node's type, for "expected a map, found a list" messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "nothing",
            Kind::Scalar { .. } => "a single value",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a map",
        }
    }
}

/// Most nodes one document may expand to, aliases counted at their full size: a manifest of
/// hundreds of services stays far below it, an alias bomb (`b: [*a, *a, ...]` nested) stops
/// here instead of exhausting memory.
pub(super) const MAX_NODES: usize = 200_000;
/// Deepest nesting of maps and lists.
pub(super) const MAX_DEPTH: usize = 64;

/// Parses one file's text into a tree. An empty document gives a `Null` root. Problems that do
/// not stop the parse (a duplicate key) are all reported; the first one that does ends it.
pub(super) fn parse(text: &str, file: usize) -> Result<Node, Vec<ParseError>> {
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        file,
        anchors: HashMap::new(),
        nodes: 0,
        depth: 0,
        problems: Vec::new(),
    };
    match b.document() {
        Ok(node) if b.problems.is_empty() => Ok(node),
        Ok(_) => Err(b.problems),
        Err(e) => {
            b.problems.push(e);
            Err(b.problems)
        }
    }
}

/// Deep-merges `over` onto `base`: maps merge key by key (recursively), anything else in
/// `over` replaces what is in `base`. A `Null` in `over` replaces too (so `key: ~` clears it).
pub(super) fn merge(base: Node, over: Node) -> Node {
    match (base.kind, over.kind) {
        (Kind::Map(mut base_entries), Kind::Map(over_entries)) => {
            let mut index: HashMap<String, usize> = base_entries
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.name.clone(), i))
                .collect();
            for (key, value) in over_entries {
                match index.get(&key.name) {
                    Some(&i) => {
                        let placeholder = (
                            key.clone(),
                            Node {
                                kind: Kind::Null,
                                pos: key.pos,
                            },
                        );
                        let (_, old) = std::mem::replace(&mut base_entries[i], placeholder);
                        base_entries[i] = (key, merge(old, value));
                    }
                    None => {
                        index.insert(key.name.clone(), base_entries.len());
                        base_entries.push((key, value));
                    }
                }
            }
            Node {
                kind: Kind::Map(base_entries),
                pos: over.pos,
            }
        }
        (_, kind) => Node {
            kind,
            pos: over.pos,
        },
    }
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    file: usize,
    /// Each anchor's node and how many nodes it holds.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes built so far, aliases counted at their full size.
    nodes: usize,
    /// Maps and lists open around the node being built.
    depth: usize,
    /// Problems found so far that did not stop the parse.
    problems: Vec<ParseError>,
}

impl<'a> Builder<'a> {
    fn pos(&self, span: &Span) -> Pos {
        Pos {
            file: self.file,
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), ParseError> {
        match self.parser.next_event() {
            Some(Ok((ev, span))) => Ok((ev, span)),
            Some(Err(e)) => Err(ParseError {
                pos: Pos {
                    file: self.file,
                    line: e.marker().line(),
                    col: e.marker().col() + 1,
                },
                key: String::new(),
                problem: format!("invalid YAML: {}", e.info()),
                fix: if e.info().contains("tab") {
                    "indent with spaces; YAML does not allow tabs for indentation".into()
                } else {
                    "check the indentation, the `:` after each key and the quoting near here".into()
                },
            }),
            None => Err(ParseError {
                pos: Pos {
                    file: self.file,
                    ..Pos::default()
                },
                key: String::new(),
                problem: "invalid YAML: the document ends too early".into(),
                fix: "check that every list and map is complete".into(),
            }),
        }
    }

    fn document(&mut self) -> Result<Node, ParseError> {
        let mut root = None;
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::DocumentStart(_) => {
                    if root.is_some() {
                        return Err(ParseError {
                            pos: self.pos(&span),
                            key: String::new(),
                            problem: "the file holds more than one YAML document".into(),
                            fix: "keep one document per manifest file, and pass overlays as further -f files".into(),
                        });
                    }
                    let (ev, span) = self.next()?;
                    let ev = owned_event(ev);
                    root = Some(self.node(ev, span, "")?);
                }
                Event::StreamEnd => {
                    return Ok(root.unwrap_or(Node {
                        kind: Kind::Null,
                        pos: Pos {
                            file: self.file,
                            line: 1,
                            col: 1,
                        },
                    }))
                }
                _ => {
                    let pos = self.pos(&span);
                    return Err(ParseError {
                        pos,
                        key: String::new(),
                        problem: "invalid YAML: unexpected content".into(),
                        fix: "check the indentation near here".into(),
                    });
                }
            }
        }
    }

    /// Counts `n` more nodes against `MAX_NODES`.
    fn grow(&mut self, n: usize, pos: Pos, path: &str) -> Result<(), ParseError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(ParseError {
                pos,
                key: path.to_owned(),
                problem: format!(
                    "the document expands to more than {MAX_NODES} values (aliases counted in full); this looks like an alias bomb"
                ),
                fix: "write the manifest without aliases that repeat other aliases".into(),
            });
        }
        Ok(())
    }

    fn node(&mut self, ev: OwnedEvent, span: Span, path: &str) -> Result<Node, ParseError> {
        let pos = self.pos(&span);
        let nodes_before = self.nodes;
        let built = if matches!(ev, OwnedEvent::SeqStart(_) | OwnedEvent::MapStart(_)) {
            if self.depth >= MAX_DEPTH {
                return Err(ParseError {
                    pos,
                    key: path.to_owned(),
                    problem: format!("maps and lists are nested more than {MAX_DEPTH} deep"),
                    fix: "flatten the document; a manifest needs only a few levels".into(),
                });
            }
            self.depth += 1;
            let built = self.node_inner(ev, pos, path);
            self.depth -= 1;
            built
        } else {
            self.node_inner(ev, pos, path)
        };
        let (node, anchor) = built?;
        if anchor != 0 {
            let size = self.nodes - nodes_before;
            self.anchors.insert(anchor, (node.clone(), size));
        }
        Ok(node)
    }

    fn node_inner(
        &mut self,
        ev: OwnedEvent,
        pos: Pos,
        path: &str,
    ) -> Result<(Node, usize), ParseError> {
        self.grow(1, pos, path)?;
        Ok(match ev {
            OwnedEvent::Scalar {
                text,
                style,
                anchor,
            } => {
                let quoted = style != ScalarStyle::Plain;
                let kind =
                    if !quoted && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
                        Kind::Null
                    } else {
                        Kind::Scalar { text, quoted }
                    };
                (Node { kind, pos }, anchor)
            }
            OwnedEvent::Alias(id) => match self.anchors.get(&id).map(|(_, size)| *size) {
                Some(size) => {
                    // Counted before the copy is made, so a bomb stops before it grows.
                    self.grow(size.saturating_sub(1), pos, path)?;
                    let mut n = self.anchors[&id].0.clone();
                    n.pos = pos;
                    (n, 0)
                }
                None => {
                    return Err(ParseError {
                        pos,
                        key: path.to_owned(),
                        problem: "this alias names no anchor defined before it".into(),
                        fix: "define the `&anchor` before using `*anchor`".into(),
                    })
                }
            },
            OwnedEvent::SeqStart(anchor) => {
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.next()?;
                    let ev = owned_event(ev);
                    if matches!(ev, OwnedEvent::SeqEnd) {
                        break;
                    }
                    let child_path = format!("{path}[{}]", items.len());
                    items.push(self.node(ev, span, &child_path)?);
                }
                (
                    Node {
                        kind: Kind::Seq(items),
                        pos,
                    },
                    anchor,
                )
            }
            OwnedEvent::MapStart(anchor) => {
                let mut entries: Vec<(Key, Node)> = Vec::new();
                let mut merged: Vec<(Key, Node)> = Vec::new();
                // Key names seen, so that a map of many keys is not checked in quadratic time.
                let mut seen: HashSet<String> = HashSet::new();
                let mut seen_merged: HashSet<String> = HashSet::new();
                loop {
                    let (ev, span) = self.next()?;
                    let ev = owned_event(ev);
                    if matches!(ev, OwnedEvent::MapEnd) {
                        break;
                    }
                    let key_pos = self.pos(&span);
                    let key_name = match ev {
                        OwnedEvent::Scalar { text, .. } => text,
                        _ => {
                            return Err(ParseError {
                                pos: key_pos,
                                key: path.to_owned(),
                                problem: "a key must be a single value, not a list or map".into(),
                                fix: "write keys as plain words".into(),
                            })
                        }
                    };
                    let child_path = join_path(path, &key_name);
                    let (ev, span) = self.next()?;
                    let ev = owned_event(ev);
                    let value = self.node(ev, span, &child_path)?;
                    if key_name == "<<" {
                        // YAML merge key: `<<: *defaults` or `<<: [*a, *b]`.
                        let sources = match value.kind {
                            Kind::Map(m) => vec![m],
                            Kind::Seq(items) => {
                                let mut maps = Vec::new();
                                for item in items {
                                    match item.kind {
                                        Kind::Map(m) => maps.push(m),
                                        _ => return Err(merge_key_error(key_pos, &child_path)),
                                    }
                                }
                                maps
                            }
                            _ => return Err(merge_key_error(key_pos, &child_path)),
                        };
                        for m in sources {
                            for (k, v) in m {
                                if seen_merged.insert(k.name.clone()) {
                                    merged.push((k, v));
                                }
                            }
                        }
                        continue;
                    }
                    if !seen.insert(key_name.clone()) {
                        // Reported, and the parse goes on to find the others.
                        self.problems.push(ParseError {
                            pos: key_pos,
                            key: child_path,
                            problem: "this key appears twice in the same map".into(),
                            fix: "keep only one of them".into(),
                        });
                        continue;
                    }
                    entries.push((
                        Key {
                            name: key_name,
                            pos: key_pos,
                        },
                        value,
                    ));
                }
                for (k, v) in merged {
                    if !seen.contains(&k.name) {
                        entries.push((k, v));
                    }
                }
                (
                    Node {
                        kind: Kind::Map(entries),
                        pos,
                    },
                    anchor,
                )
            }
            OwnedEvent::SeqEnd | OwnedEvent::MapEnd | OwnedEvent::Other => {
                return Err(ParseError {
                    pos,
                    key: path.to_owned(),
                    problem: "invalid YAML: unexpected content".into(),
                    fix: "check the indentation near here".into(),
                })
            }
        })
    }
}

fn merge_key_error(pos: Pos, path: &str) -> ParseError {
    ParseError {
        pos,
        key: path.to_owned(),
        problem: "`<<` must be given a map or a list of maps".into(),
        fix: "write `<<: *anchor` where the anchor names a map".into(),
    }
}

/// Joins a key path: `services` + `api` -> `services.api`.
pub(super) fn join_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Events without the parser's borrow, so the builder can recurse.
enum OwnedEvent {
    Scalar {
        text: String,
        style: ScalarStyle,
        anchor: usize,
    },
    Alias(usize),
    SeqStart(usize),
    SeqEnd,
    MapStart(usize),
    MapEnd,
    Other,
}

fn owned_event(ev: Event<'_>) -> OwnedEvent {
    match ev {
        Event::Scalar(text, style, anchor, _) => OwnedEvent::Scalar {
            text: text.into_owned(),
            style,
            anchor,
        },
        Event::Alias(id) => OwnedEvent::Alias(id),
        Event::SequenceStart(anchor, _) => OwnedEvent::SeqStart(anchor),
        Event::SequenceEnd => OwnedEvent::SeqEnd,
        Event::MappingStart(anchor, _) => OwnedEvent::MapStart(anchor),
        Event::MappingEnd => OwnedEvent::MapEnd,
        _ => OwnedEvent::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(n: &Node) -> String {
        match &n.kind {
            Kind::Null => format!("~@{}:{}", n.pos.line, n.pos.col),
            Kind::Scalar { text, .. } => format!("{text:?}@{}:{}", n.pos.line, n.pos.col),
            Kind::Seq(items) => format!(
                "[{}]",
                items.iter().map(show).collect::<Vec<_>>().join(", ")
            ),
            Kind::Map(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{}@{}:{}={}", k.name, k.pos.line, k.pos.col, show(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn check(input: &str, expected: &str) {
        let got = match parse(input, 0) {
            Ok(n) => show(&n),
            Err(errors) => errors
                .iter()
                .map(|e| {
                    format!(
                        "error {}:{} {}: {}; {}",
                        e.pos.line, e.pos.col, e.key, e.problem, e.fix
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        };
        assert_eq!(got, expected, "input:\n{input}");
    }

    #[test]
    fn positions_and_scalars_stay_text() {
        check(
            "a: 8080:80\nb:\n  - on\n  - '1'\nc:\n",
            "{a@1:1=\"8080:80\"@1:4, b@2:1=[\"on\"@3:5, \"1\"@4:5], c@5:1=~@5:2}",
        );
        check("", "~@1:1");
    }

    #[test]
    fn anchors_and_merge_keys() {
        check(
            "x: &d {a: 1, b: 2}\ny:\n  <<: *d\n  b: 3\n",
            "{x@1:1={a@1:8=\"1\"@1:11, b@1:14=\"2\"@1:17}, y@2:1={b@4:3=\"3\"@4:6, a@1:8=\"1\"@1:11}}",
        );
    }

    #[test]
    fn errors() {
        check(
            "a: 1\na: 2\n",
            "error 2:1 a: this key appears twice in the same map; keep only one of them",
        );
        check(
            "a: [1, 2\n",
            "error 2:1 : invalid YAML: while parsing a flow sequence, expected ',' or ']'; check the indentation, the `:` after each key and the quoting near here",
        );
    }

    // Regression (issue 18): a second duplicate key appeared only once the first was fixed.
    #[test]
    fn every_duplicate_key_is_reported() {
        check(
            "a: 1\na: 2\nb: {c: 1, c: 2}\n",
            "error 2:1 a: this key appears twice in the same map; keep only one of them\n\
             error 3:11 b.c: this key appears twice in the same map; keep only one of them",
        );
    }

    /// The billion-laughs document: each level holds ten aliases of the one before.
    fn alias_bomb(levels: usize) -> String {
        let mut doc = String::from("x-a0: &a0 [lol]\n");
        for i in 1..=levels {
            let prev = format!("*a{}", i - 1);
            let items = [prev.as_str(); 10].join(", ");
            doc.push_str(&format!("x-a{i}: &a{i} [{items}]\n"));
        }
        doc.push_str("project: p\n");
        doc
    }

    // Regression (issue 18): an alias bomb, even under an ignored `x-` key, hung for over 20 s
    // and then aborted on memory.
    #[test]
    fn an_alias_bomb_fails_fast() {
        let errors = parse(&alias_bomb(9), 0).expect_err("a bomb is refused");
        assert_eq!(errors.len(), 1);
        let e = &errors[0];
        assert_eq!(
            (e.pos.line, e.key.as_str()),
            (6, "x-a5[8]"),
            "{}",
            e.problem
        );
        assert_eq!(
            e.problem,
            "the document expands to more than 200000 values (aliases counted in full); this looks like an alias bomb"
        );
        // A few levels are fine: anchors for shared settings stay usable.
        assert!(parse(&alias_bomb(3), 0).is_ok());
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!(
            "a: {}1{}\n",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        let errors = parse(&deep, 0).expect_err("too deep");
        assert_eq!(
            errors[0].problem,
            "maps and lists are nested more than 64 deep"
        );
        let fine = format!(
            "a: {}1{}\n",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(parse(&fine, 0).is_ok());
    }

    #[test]
    fn merge_overlays() {
        let base = parse("a: {x: 1, y: [1, 2]}\nb: 1\n", 0).ok();
        let over = parse("a: {y: [3]}\nc: 2\n", 1).ok();
        let (Some(base), Some(over)) = (base, over) else {
            panic!("parse failed")
        };
        let merged = merge(base, over);
        assert_eq!(
            show(&merged),
            "{a@1:1={x@1:5=\"1\"@1:8, y@1:5=[\"3\"@1:9]}, b@2:1=\"1\"@2:4, c@2:1=\"2\"@2:4}"
        );
    }
}
