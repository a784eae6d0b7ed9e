//! Whether a new JSON Schema (draft 2020-12, as schemars writes it) of an event version may
//! replace the running one under the same `Type@version`.
//!
//! The rule is conservative: events already stored must stay valid, and consumers built against
//! the running schema must read the new events. So a required field added or removed, an
//! optional field made required (or the reverse), a type changed (nullability included), an enum
//! value or a variant removed or added, a constraint (`format`, `minimum`, ...) changed, or a
//! keyword this comparison does not understand changed: each is incompatible. An optional field
//! added or removed is compatible, unless the schema allows no other fields
//! (`additionalProperties: false`). Annotations (`title`, `description`, `examples`, ...) are
//! ignored. Local `$ref`s (`#/$defs/...`) are resolved on each side; a remote `$ref` is reported.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Each incompatibility of `new` with `old`, as `field `a.b`: what changed`; empty when
/// compatible.
pub fn incompatibilities(old: &Value, new: &Value) -> Vec<String> {
    let mut cx = Cx {
        old_root: old,
        new_root: new,
        out: Vec::new(),
        seen: BTreeSet::new(),
    };
    cx.compare(old, new, "");
    cx.out
}

/// Keywords that only annotate; a change in them changes nothing.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$anchor",
    "$defs",
    "definitions",
    "title",
    "description",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Keywords that narrow or widen the values; any change is reported.
const CONSTRAINTS: &[&str] = &[
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
];

/// Keywords compared structurally below.
const HANDLED: &[&str] = &[
    "$ref",
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "oneOf",
    "anyOf",
    "allOf",
];

struct Cx<'a> {
    old_root: &'a Value,
    new_root: &'a Value,
    out: Vec<String>,
    /// `$ref` pairs already compared (recursive types).
    seen: BTreeSet<(String, String)>,
}

impl<'a> Cx<'a> {
    fn compare(&mut self, old: &'a Value, new: &'a Value, path: &str) {
        let (old, old_ref) = match resolve(self.old_root, old) {
            Ok(r) => r,
            Err(e) => return self.push(path, format!("the running schema: {e}")),
        };
        let (new, new_ref) = match resolve(self.new_root, new) {
            Ok(r) => r,
            Err(e) => return self.push(path, format!("the new schema: {e}")),
        };
        if old_ref.is_some() || new_ref.is_some() {
            let key = (old_ref.unwrap_or_default(), new_ref.unwrap_or_default());
            if !self.seen.insert(key) {
                return;
            }
        }
        if old == new {
            return;
        }
        let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
            return self.push(
                path,
                format!("the schema changed from {} to {}", brief(old), brief(new)),
            );
        };
        let (ot, nt) = (types(o), types(n));
        if ot != nt {
            return self.push(
                path,
                format!(
                    "type changed from {} to {}",
                    types_text(&ot),
                    types_text(&nt)
                ),
            );
        }
        for k in ["enum", "const"] {
            if o.get(k) != n.get(k) {
                self.values(path, k, o.get(k), n.get(k));
            }
        }
        for &k in CONSTRAINTS {
            if o.get(k) != n.get(k) {
                self.push(
                    path,
                    format!("`{k}` changed from {} to {}", opt(o.get(k)), opt(n.get(k))),
                );
            }
        }
        self.object(o, n, path);
        if let (Some(oi), Some(ni)) = (o.get("items"), n.get("items")) {
            self.compare(oi, ni, &format!("{path}[]"));
        } else if o.get("items") != n.get("items") {
            self.push(path, "`items` added or removed".to_string());
        }
        for k in ["prefixItems", "oneOf", "anyOf", "allOf"] {
            self.alternatives(k, o.get(k), n.get(k), path);
        }
        let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
        for k in keys {
            let k = k.as_str();
            if ANNOTATIONS.contains(&k) || CONSTRAINTS.contains(&k) || HANDLED.contains(&k) {
                continue;
            }
            if o.get(k) != n.get(k) {
                self.push(
                    path,
                    format!(
                        "`{k}` changed, and the deployer cannot tell whether that is compatible"
                    ),
                );
            }
        }
    }

    fn object(&mut self, o: &'a Map, n: &'a Map, path: &str) {
        static EMPTY: std::sync::LazyLock<Map> = std::sync::LazyLock::new(Map::new);
        let op = o
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&EMPTY);
        let np = n
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&EMPTY);
        let (or, nr) = (required(o), required(n));
        let closed = |m: &Map| m.get("additionalProperties") == Some(&Value::Bool(false));
        for f in or.difference(&nr) {
            let what = if np.contains_key(*f) {
                "a required field is no longer required"
            } else {
                "a required field was removed"
            };
            self.push(&join(path, f), what.to_string());
        }
        for f in nr.difference(&or) {
            let what = if op.contains_key(*f) {
                "an optional field became required"
            } else {
                "a required field was added"
            };
            self.push(&join(path, f), what.to_string());
        }
        for f in op
            .keys()
            .filter(|f| !np.contains_key(*f) && !or.contains(f.as_str()))
        {
            if closed(n) {
                self.push(
                    &join(path, f),
                    "an optional field was removed, and the new schema allows no other fields (additionalProperties: false)".to_string(),
                );
            }
        }
        for f in np
            .keys()
            .filter(|f| !op.contains_key(*f) && !nr.contains(f.as_str()))
        {
            if closed(o) {
                self.push(
                    &join(path, f),
                    "an optional field was added, but the running schema allows no other fields (additionalProperties: false)".to_string(),
                );
            }
        }
        for (f, os) in op {
            if let Some(ns) = np.get(f) {
                self.compare(os, ns, &join(path, f));
            }
        }
        match (o.get("additionalProperties"), n.get("additionalProperties")) {
            (Some(a), Some(b)) if a.is_object() && b.is_object() => {
                self.compare(a, b, &join(path, "*"))
            }
            (a, b) if closed(o) && a != b => self.push(
                path,
                format!(
                    "additionalProperties changed from false to {}; consumers built against the running schema refuse other fields",
                    opt(b)
                ),
            ),
            _ => {}
        }
    }

    /// `oneOf`/`anyOf`/`allOf`/`prefixItems`: variants matched by their tag when every one
    /// has a distinct tag, else by position.
    fn alternatives(&mut self, k: &str, o: Option<&'a Value>, n: Option<&'a Value>, path: &str) {
        let (o, n) = match (o.and_then(Value::as_array), n.and_then(Value::as_array)) {
            (None, None) => return,
            (Some(o), Some(n)) => (o, n),
            (None, Some(n)) => {
                return self.push(path, format!("`{k}` added ({} alternatives)", n.len()))
            }
            (Some(_), None) => return self.push(path, format!("`{k}` removed")),
        };
        let ot = self.tags(self.old_root, o);
        let nt = self.tags(self.new_root, n);
        if let (Some(ot), Some(nt)) = (ot, nt) {
            for t in ot.keys().filter(|t| !nt.contains_key(*t)) {
                self.push(path, format!("variant {t} was removed"));
            }
            for t in nt.keys().filter(|t| !ot.contains_key(*t)) {
                self.push(
                    path,
                    format!("variant {t} was added; consumers built against the running schema do not know it"),
                );
            }
            for (t, os) in &ot {
                if let Some(ns) = nt.get(t) {
                    self.compare(os, ns, &format!("{path}<{t}>"));
                }
            }
        } else if o.len() == n.len() {
            for (i, (a, b)) in o.iter().zip(n).enumerate() {
                self.compare(a, b, &format!("{path}<{k} {i}>"));
            }
        } else {
            self.push(
                path,
                format!("`{k}` changed from {} to {} alternatives", o.len(), n.len()),
            );
        }
    }

    /// Each alternative by its tag, or `None` when one has no tag or two share one.
    fn tags(&self, root: &'a Value, list: &'a [Value]) -> Option<BTreeMap<String, &'a Value>> {
        let mut out = BTreeMap::new();
        for v in list {
            let (r, _) = resolve(root, v).ok()?;
            let t = tag(r)?;
            if out.insert(t, v).is_some() {
                return None;
            }
        }
        Some(out)
    }

    fn values(&mut self, path: &str, k: &str, o: Option<&Value>, n: Option<&Value>) {
        let set = |v: Option<&Value>| -> Option<Vec<Value>> {
            match (k, v) {
                (_, None) => None,
                ("const", Some(v)) => Some(vec![v.clone()]),
                (_, Some(Value::Array(a))) => Some(a.clone()),
                (_, Some(v)) => Some(vec![v.clone()]),
            }
        };
        match (set(o), set(n)) {
            (Some(o), Some(n)) => {
                let removed: Vec<String> = o.iter().filter(|v| !n.contains(v)).map(brief).collect();
                let added: Vec<String> = n.iter().filter(|v| !o.contains(v)).map(brief).collect();
                if !removed.is_empty() {
                    self.push(path, format!("{k} value {} removed", removed.join(", ")));
                }
                if !added.is_empty() {
                    self.push(
                        path,
                        format!(
                            "{k} value {} added; consumers built against the running schema do not know it",
                            added.join(", ")
                        ),
                    );
                }
            }
            (o, n) => self.push(
                path,
                format!(
                    "`{k}` changed from {} to {}",
                    o.map_or("(none)".to_string(), |v| brief(&Value::Array(v))),
                    n.map_or("(none)".to_string(), |v| brief(&Value::Array(v)))
                ),
            ),
        }
    }

    fn push(&mut self, path: &str, what: String) {
        let line = if path.is_empty() {
            format!("the event: {what}")
        } else {
            format!("field `{path}`: {what}")
        };
        if !self.out.contains(&line) {
            self.out.push(line);
        }
    }
}

type Map = serde_json::Map<String, Value>;

/// Follows local `$ref`s; the last one followed, when any, names the result.
fn resolve<'v>(root: &'v Value, mut v: &'v Value) -> Result<(&'v Value, Option<String>), String> {
    let mut named = None;
    for _ in 0..32 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            return Ok((v, named));
        };
        let Some(pointer) = r.strip_prefix('#') else {
            return Err(format!(
                "cannot resolve $ref {r:?}: only local references (#/$defs/...) are followed"
            ));
        };
        v = root
            .pointer(pointer)
            .ok_or_else(|| format!("$ref {r:?} points at nothing"))?;
        named = Some(r.to_string());
    }
    Err("$ref chain longer than 32".to_string())
}

fn types(m: &Map) -> Option<BTreeSet<String>> {
    match m.get("type")? {
        Value::String(s) => Some(BTreeSet::from([s.clone()])),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
        ),
        _ => None,
    }
}

fn types_text(t: &Option<BTreeSet<String>>) -> String {
    match t {
        None => "(any)".to_string(),
        Some(t) if t.len() == 1 => t.iter().next().cloned().unwrap_or_default(),
        Some(t) => format!("[{}]", t.iter().cloned().collect::<Vec<_>>().join(", ")),
    }
}

fn required(m: &Map) -> BTreeSet<&str> {
    m.get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The tag of an enum variant as schemars writes it: a `const` (or one-value `enum`), a
/// property holding one (internally or adjacently tagged), or the single required property of
/// an externally tagged variant; `null` for the null alternative of an `Option`.
fn tag(v: &Value) -> Option<String> {
    let one = |v: &Value| -> Option<String> {
        if let Some(c) = v.get("const") {
            return Some(brief(c));
        }
        match v.get("enum").and_then(Value::as_array) {
            Some(a) if a.len() == 1 => Some(brief(&a[0])),
            _ => None,
        }
    };
    if let Some(t) = one(v) {
        return Some(t);
    }
    if let Some(props) = v.get("properties").and_then(Value::as_object) {
        if let Some((k, t)) = props.iter().find_map(|(k, p)| one(p).map(|t| (k, t))) {
            return Some(format!("{k}={t}"));
        }
        let req = v.get("required").and_then(Value::as_array);
        if let (1, Some([Value::String(r)])) = (props.len(), req.map(Vec::as_slice)) {
            return Some(r.clone());
        }
    }
    if v.get("type") == Some(&Value::String("null".to_string())) {
        return Some("null".to_string());
    }
    None
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn opt(v: Option<&Value>) -> String {
    v.map_or("(none)".to_string(), brief)
}

/// A value in one line, cut when long.
fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}
