//! JSON read into a `serde_json::Value` with every object key unique.
//!
//! `serde_json` keeps the last of two equal keys without a word, so a report ending in a second,
//! empty `"runs": []` reads as a clean scan. RFC 8259 leaves duplicate names to the reader; a
//! gate must not guess which one the scanner meant, so a duplicate anywhere is an error. Keys are
//! compared after JSON unescaping (`"r\u0075ns"` is `"runs"`), as every reader would see them.
//!
//! Written here rather than taken from a crate: it is one visitor, and it keeps `serde_json`'s
//! parser with its recursion limit (128 levels), position reporting and number handling.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why strict reading failed.
#[derive(Debug)]
pub enum StrictError {
    /// An object names one key twice: `duplicate key "runs" at line 3 column 9`.
    DuplicateKey(String),
    /// Not JSON at all (syntax, end of file, nesting deeper than 128).
    NotJson(String),
}

/// Parse `bytes` as one JSON value, refusing any object that repeats a key.
pub fn from_slice(bytes: &[u8]) -> Result<Value, StrictError> {
    match serde_json::from_slice::<Strict>(bytes) {
        Ok(Strict(v)) => Ok(v),
        // The visitor accepts every JSON type, so the only data error it can raise is its own
        // duplicate-key error; syntax, EOF and recursion-limit errors have other categories.
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            Err(StrictError::DuplicateKey(e.to_string()))
        }
        Err(e) => Err(StrictError::NotJson(e.to_string())),
    }
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // The JSON grammar has no NaN or infinity; serde_json's own visitor does the same.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(text: &str) -> String {
        match from_slice(text.as_bytes()) {
            Err(StrictError::DuplicateKey(m)) => m,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn duplicates_anywhere_are_refused_with_their_position() {
        assert_eq!(
            dup(r#"{"runs":[1],"runs":[]}"#),
            "duplicate key \"runs\" at line 1 column 18"
        );
        assert!(
            dup("{\"a\":[{\"b\":{\"level\":\"error\",\n\"level\":\"note\"}}]}")
                .contains("\"level\" at line 2")
        );
        // Escapes are decoded before keys are compared.
        assert!(dup(r#"{"runs":1,"r\u0075ns":2}"#).starts_with("duplicate key \"runs\""));
    }

    #[test]
    fn values_read_like_serde_json() {
        let text = r#"{"a":[1,-2,3.5,"x",true,null,{}],"b":{"c":18446744073709551615}}"#;
        let strict = from_slice(text.as_bytes()).unwrap();
        let plain: Value = serde_json::from_str(text).unwrap();
        assert_eq!(strict, plain);
        // Equal keys in different objects are fine.
        assert!(from_slice(br#"[{"a":1},{"a":2}]"#).is_ok());
    }

    #[test]
    fn syntax_and_depth_errors_are_not_json() {
        assert!(matches!(from_slice(b"{"), Err(StrictError::NotJson(_))));
        assert!(matches!(from_slice(b"{} x"), Err(StrictError::NotJson(_))));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        match from_slice(deep.as_bytes()) {
            Err(StrictError::NotJson(m)) => assert!(m.contains("recursion limit"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
