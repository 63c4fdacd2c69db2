//! JSON with each key once: a job body in which an object names a key twice
//! (`{"width": 1000, "width": 64}`) is refused, naming the key, on every door. A gateway or
//! an audit log that reads the first value would otherwise check another job than the worker
//! runs (serde_json keeps the last). `StrictJson` parses like `serde_json::Value` and, when it
//! meets a repeated key, marks the body's root object with the first such key's path under
//! [`DUPLICATE_MARK`]; `parse::job_from_value` refuses a marked body with `invalid_input`.
//! The mark travels with the value through every door (queues, claim checks, event files,
//! Lambda events) without a second parse of the bytes.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

/// The root key a body with a repeated key is marked with; its value is the key's path
/// (`output.destination`, `loras[1].scale`). Never a job field (`$` is in no field's name).
pub const DUPLICATE_MARK: &str = "$duplicate_key";

/// A JSON value parsed with duplicate keys detected (see the module header).
#[derive(Debug, Clone, PartialEq)]
pub struct StrictJson(pub Value);

impl<'de> Deserialize<'de> for StrictJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let first = RefCell::new(None);
        let mut value = Build {
            path: String::new(),
            first: &first,
        }
        .deserialize(deserializer)?;
        if let (Some(path), Value::Object(map)) = (first.into_inner(), &mut value) {
            map.insert(DUPLICATE_MARK.to_owned(), Value::String(path));
        }
        Ok(StrictJson(value))
    }
}

/// The repeated key a parsed body was marked with, removing the mark.
pub(crate) fn take_mark(body: &mut Value) -> Option<String> {
    match body.as_object_mut()?.remove(DUPLICATE_MARK)? {
        Value::String(path) => Some(path),
        other => Some(other.to_string()),
    }
}

/// Move a wrapper's mark onto its member `name` (`input` of `{"id", "input"}`) when the
/// repeated key lies inside it, with the path made relative to it.
pub(crate) fn mark_member(wrapper: &Value, name: &str, member: &mut Value) {
    let Some(path) = wrapper.get(DUPLICATE_MARK).and_then(Value::as_str) else {
        return;
    };
    let Some(inner) = path.strip_prefix(name).and_then(|p| p.strip_prefix('.')) else {
        return;
    };
    if let Value::Object(map) = member {
        map.insert(DUPLICATE_MARK.to_owned(), Value::String(inner.to_owned()));
    }
}

/// Builds one value at `path`, noting the first repeated key in `first`.
struct Build<'a> {
    path: String,
    first: &'a RefCell<Option<String>>,
}

impl Build<'_> {
    fn child(&self, segment: &str) -> Self {
        let path = if self.path.is_empty() {
            segment.to_owned()
        } else if segment.starts_with('[') {
            format!("{}{segment}", self.path)
        } else {
            format!("{}.{segment}", self.path)
        };
        Build {
            path,
            first: self.first,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Build<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Build<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(self.child(&format!("[{}]", items.len())))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.child(&key))?;
            if !seen.insert(key.clone()) {
                let mut first = self.first.borrow_mut();
                if first.is_none() {
                    *first = Some(self.child(&key).path);
                }
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Value {
        serde_json::from_str::<StrictJson>(text).unwrap().0
    }

    #[test]
    fn a_body_without_repeated_keys_parses_as_serde_json_does() {
        let text =
            r#"{"a": [1, -2, 2.5, "x", null, true, {"b": {}}], "c": {"d": 18446744073709551615}}"#;
        assert_eq!(parse(text), serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn the_first_repeated_key_is_marked_with_its_path() {
        assert_eq!(
            parse(r#"{"width": 1000, "width": 64}"#),
            json!({"width": 64, DUPLICATE_MARK: "width"})
        );
        let mut nested = parse(
            r#"{"output": {"destination": "s3://a/x", "destination": "s3://b/y"}, "loras": [{"scale": 1, "scale": 2}]}"#,
        );
        assert_eq!(
            take_mark(&mut nested).as_deref(),
            Some("output.destination")
        );
        assert_eq!(take_mark(&mut nested), None, "taken");
        let mut listed = parse(r#"{"loras": [{}, {"scale": 1, "scale": 2}]}"#);
        assert_eq!(take_mark(&mut listed).as_deref(), Some("loras[1].scale"));
    }

    #[test]
    fn a_wrappers_mark_moves_onto_its_member() {
        let wrapper = parse(r#"{"id": "j", "input": {"prompt": "a", "prompt": "b"}}"#);
        let mut input = wrapper["input"].clone();
        mark_member(&wrapper, "input", &mut input);
        assert_eq!(input[DUPLICATE_MARK], "prompt");
        let other = parse(r#"{"id": "j", "id": "k", "input": {}}"#);
        let mut input = other["input"].clone();
        mark_member(&other, "input", &mut input);
        assert_eq!(input, json!({}), "the repeated key is the wrapper's own");
    }
}
