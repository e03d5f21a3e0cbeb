//! A generic YAML tree that keeps the line and column of every node and every mapping key.
//!
//! The validator walks this tree by hand instead of deserializing straight into typed structs,
//! so that it can report every problem at once, each at its own location. Duplicate keys are
//! kept (serde-saphyr forwards them to our visitor) and reported by the validator like any other
//! problem.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::options::{DuplicateKeyPolicy, MergeKeyPolicy};
use serde_saphyr::{Options, Spanned};

/// A 1-based position in a source file; 0 when unknown. `src` indexes the loader's list of
/// source files (0 is the pipeline file, then each `uses:` file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub src: usize,
    pub line: usize,
    pub column: usize,
}

/// One YAML node and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in source order, duplicates included.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// A short name of the node's type, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The node as found, for messages: scalars quoted, collections by type.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Str(s) => format!("{s:?}"),
            Value::Int(i) => format!("the integer {i}"),
            Value::Float(f) => format!("the number {f}"),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Seq(s) if s.is_empty() => "an empty list".to_string(),
            Value::Map(m) if m.is_empty() => "an empty mapping".to_string(),
            other => other.type_name().to_string(),
        }
    }

    /// The text of a scalar key (non-string scalars as written in canonical form).
    pub fn key_text(&self) -> String {
        match &self.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".to_string(),
            Value::Seq(_) | Value::Map(_) => "<complex key>".to_string(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(d)?;
        let loc = spanned.referenced;
        Ok(Node {
            pos: Pos {
                src: 0,
                line: usize::try_from(loc.line()).unwrap_or(0),
                column: usize::try_from(loc.column()).unwrap_or(0),
            },
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            out.push(n);
        }
        Ok(Value::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<Node>()? {
            let v = map.next_value::<Node>()?;
            out.push((k, v));
        }
        Ok(Value::Map(out))
    }
}

/// A problem that stops parsing: the YAML itself is malformed or hostile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub pos: Pos,
    pub message: String,
}

/// Limits for configuration files: a pipeline is a few hundred lines, so anything much bigger
/// is a mistake or an attack, and should fail fast with bounded memory.
const MAX_DEPTH: usize = 32;

fn options() -> Options {
    let budget = serde_saphyr::budget! {
        max_depth: MAX_DEPTH,
        max_aliases: 100,
        max_anchors: 100,
        max_nodes: 20_000,
        max_events: 100_000,
        max_total_scalar_bytes: 1 << 20,
        max_documents: 1,
        max_merge_keys: 0,
    };
    let alias_limits = serde_saphyr::alias_limits! {
        max_total_replayed_events: 10_000,
        max_replay_stack_depth: 16,
    };
    serde_saphyr::options! {
        budget: budget,
        alias_limits: alias_limits,
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        merge_keys: MergeKeyPolicy::Error,
        // `on`, `yes`, `no` stay strings: only true/false are booleans.
        strict_booleans: true,
        reject_unsupported_tags: true,
        with_snippet: false,
    }
}

/// Parse one YAML document into a spanned tree; every position gets source id `src`.
pub fn parse(text: &str, src: usize) -> Result<Node, ParseError> {
    let result: Result<Node, serde_saphyr::Error> =
        serde_saphyr::from_str_with_options(text, options());
    match result {
        Ok(mut node) => {
            set_src(&mut node, src);
            Ok(node)
        }
        Err(e) => Err(to_parse_error(&e, src)),
    }
}

/// Depth is bounded by the budget, so this recursion is too.
fn set_src(node: &mut Node, src: usize) {
    node.pos.src = src;
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| set_src(n, src)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            set_src(k, src);
            set_src(v, src);
        }),
        _ => {}
    }
}

fn to_parse_error(e: &serde_saphyr::Error, src: usize) -> ParseError {
    {
        let e = e.without_snippet();
        let pos = e
            .location()
            .map(|l| Pos {
                src,
                line: usize::try_from(l.line()).unwrap_or(0),
                column: usize::try_from(l.column()).unwrap_or(0),
            })
            .unwrap_or_default();
        ParseError {
            pos,
            message: clean_message(&e.to_string()),
        }
    }
}

/// serde-saphyr's message ends with its own " at line L column C"; our diagnostics carry the
/// position separately.
fn clean_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    // The budget's own wording names internal counters; say what the user did instead.
    if first.contains("alias replay limit") || first.contains("Aliases") {
        return "invalid YAML: aliases expand to too many nodes (an alias bomb?); \
                a pipeline needs no more than a few aliases"
            .to_string();
    }
    if first.contains("recursion limit") || first.contains("Depth") {
        return format!("invalid YAML: nesting deeper than {MAX_DEPTH} levels");
    }
    if first.contains("Documents") {
        return "invalid YAML: a pipeline file holds exactly one YAML document (found `---`)"
            .to_string();
    }
    if first.contains("budget breached") {
        return format!("invalid YAML: the file is too large or complex ({first})");
    }
    if first.contains("merge key") {
        return "invalid YAML: merge keys (`<<`) are not supported; write the keys out, \
                or share a gate with `uses:`"
            .to_string();
    }
    let first = match first.rfind(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    let first = first
        .strip_prefix("error: ")
        .unwrap_or(first)
        .trim_end_matches(':');
    format!("invalid YAML: {first}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_keys(n: &Node) -> Vec<String> {
        n.as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.key_text())
            .collect()
    }

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let n = parse("a: 1\nb:\n  c: [x, y]\n", 0).unwrap();
        let m = n.as_map().unwrap();
        assert_eq!((m[0].0.pos.line, m[0].0.pos.column), (1, 1));
        assert_eq!((m[0].1.pos.line, m[0].1.pos.column), (1, 4));
        let (ck, cv) = &m[1].1.as_map().unwrap()[0];
        assert_eq!((ck.pos.line, ck.pos.column), (3, 3));
        let seq = cv.as_seq().unwrap();
        assert_eq!((seq[1].pos.line, seq[1].pos.column), (3, 10));
        assert_eq!(seq[1].value, Value::Str("y".into()));
    }

    #[test]
    fn scalar_types() {
        let n = parse("a: 1\nb: \"1\"\nc: true\nd: on\ne: ~\nf: 1.5\n", 0).unwrap();
        let vals: Vec<_> = n
            .as_map()
            .unwrap()
            .iter()
            .map(|(_, v)| v.value.clone())
            .collect();
        assert_eq!(
            vals,
            [
                Value::Int(1),
                Value::Str("1".into()),
                Value::Bool(true),
                Value::Str("on".into()),
                Value::Null,
                Value::Float(1.5)
            ]
        );
    }

    #[test]
    fn duplicates_are_kept_for_the_validator() {
        let n = parse("a: 1\nb: 2\na: 3\n", 0).unwrap();
        assert_eq!(map_keys(&n), ["a", "b", "a"]);
        assert_eq!(n.as_map().unwrap()[2].0.pos.line, 3);
    }

    #[test]
    fn syntax_error_has_a_position() {
        let e = parse("a: 1\nb: [1, 2\nc: 3\n", 0).unwrap_err();
        assert!(e.pos.line >= 2, "{e:?}");
        assert!(e.message.starts_with("invalid YAML"), "{e:?}");
    }

    #[test]
    fn merge_keys_and_custom_tags_are_refused() {
        let e = parse("base: &b {x: 1}\nc:\n  <<: *b\n", 0).unwrap_err();
        assert!(e.message.contains("merge"), "{e:?}");
        let e = parse("a: !secret x\n", 0).unwrap_err();
        assert!(e.message.contains("tag"), "{e:?}");
    }

    #[test]
    fn alias_bomb_fails_fast() {
        let mut y = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            y.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let t = std::time::Instant::now();
        let e = parse(&y, 0).unwrap_err();
        assert!(t.elapsed().as_millis() < 1000);
        assert!(e.message.starts_with("invalid YAML"), "{e:?}");
    }

    #[test]
    fn deep_nesting_fails_fast() {
        let y = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let t = std::time::Instant::now();
        let e = parse(&y, 0).unwrap_err();
        assert!(t.elapsed().as_millis() < 1000);
        assert!(e.message.starts_with("invalid YAML"), "{e:?}");
        let mut y = String::new();
        for i in 0..10_000 {
            y.push_str(&" ".repeat(i));
            y.push_str("a:\n");
        }
        assert!(parse(&y, 0).is_err());
    }
}
