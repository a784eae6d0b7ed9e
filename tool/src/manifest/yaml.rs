//! A small YAML tree that remembers where each node came from (file, line, column), built from
//! saphyr's event parser, and the overlay merge. Scalars stay strings: the checker decides
//! what they mean, so `8080:80` is never read as a base-60 number and `on` never as a bool.

use std::collections::HashMap;

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

/// Parses one file's text into a tree. An empty document gives a `Null` root.
pub(super) fn parse(text: &str, file: usize) -> Result<Node, ParseError> {
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        file,
        anchors: HashMap::new(),
    };
    b.document()
}

/// Deep-merges `over` onto `base`: maps merge key by key (recursively), anything else in
/// `over` replaces what is in `base`. A `Null` in `over` replaces too (so `key: ~` clears it).
pub(super) fn merge(base: Node, over: Node) -> Node {
    match (base.kind, over.kind) {
        (Kind::Map(mut base_entries), Kind::Map(over_entries)) => {
            for (key, value) in over_entries {
                match base_entries.iter().position(|(k, _)| k.name == key.name) {
                    Some(i) => {
                        let (_, old) = base_entries.remove(i);
                        base_entries.insert(i, (key, merge(old, value)));
                    }
                    None => base_entries.push((key, value)),
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
    anchors: HashMap<usize, Node>,
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

    fn node(&mut self, ev: OwnedEvent, span: Span, path: &str) -> Result<Node, ParseError> {
        let pos = self.pos(&span);
        let (node, anchor) = match ev {
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
            OwnedEvent::Alias(id) => match self.anchors.get(&id) {
                Some(n) => {
                    let mut n = n.clone();
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
                                if !merged.iter().any(|(mk, _)| mk.name == k.name) {
                                    merged.push((k, v));
                                }
                            }
                        }
                        continue;
                    }
                    if entries.iter().any(|(k, _)| k.name == key_name) {
                        return Err(ParseError {
                            pos: key_pos,
                            key: child_path,
                            problem: "this key appears twice in the same map".into(),
                            fix: "keep only one of them".into(),
                        });
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
                    if !entries.iter().any(|(ek, _)| ek.name == k.name) {
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
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
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
            Err(e) => format!(
                "error {}:{} {}: {}; {}",
                e.pos.line, e.pos.col, e.key, e.problem, e.fix
            ),
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
