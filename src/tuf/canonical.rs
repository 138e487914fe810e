//! JSON values as TUF needs them, and their canonical bytes.
//!
//! Metadata is parsed strictly into [`Value`]: duplicate object members, floats, integers that do
//! not fit 64 bits and lone surrogates are refused, so one file can never be read two ways. The
//! canonical form is the one securesystemslib (python-tuf) computes: object members sorted by code
//! point, no whitespace, only `"` and `\` escaped, strings emitted as raw UTF-8 without any Unicode
//! normalisation.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use sha2::{Digest, Sha256};

/// A JSON object: members kept sorted by code point (the canonical order) in one compact vector,
/// so that large maps such as a targets list with 100,000 entries stay small in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

impl Map {
    /// An empty object.
    pub fn new() -> Self {
        Map::default()
    }

    /// Build from members in any order; a later duplicate replaces an earlier one.
    pub fn from_entries(mut entries: Vec<(String, Value)>) -> Self {
        entries.reverse();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, earlier| later.0 == earlier.0);
        Map { entries }
    }

    /// Build from members in any order, refusing duplicate names (returns the duplicated name).
    pub fn from_unique_entries(mut entries: Vec<(String, Value)>) -> Result<Self, String> {
        // Files written by TUF tools are usually sorted already: check before sorting.
        if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
        }
        if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(w[0].0.clone());
        }
        Ok(Map { entries })
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The member named `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).ok().map(|i| &self.entries[i].1)
    }

    /// The member named `key`, mutable.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self.position(key) {
            Ok(i) => Some(&mut self.entries[i].1),
            Err(_) => None,
        }
    }

    /// Whether a member named `key` exists.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Set a member, returning the previous value.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Remove a member.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        match self.position(key) {
            Ok(i) => Some(self.entries.remove(i).1),
            Err(_) => None,
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Members in canonical order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&String, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Member names in canonical order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Map::from_entries(iter.into_iter().collect())
    }
}

/// A JSON value restricted to what canonical JSON can carry (no floats).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// An integer in the range of `i64` or `u64`.
    Int(i128),
    /// A string (any Unicode scalar values, kept exactly as written).
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(Map),
}

/// Default upper bound on the size of a metadata file that Conclave reads.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 * 1024 * 1024;

/// Why bytes could not be read as metadata JSON.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON, or JSON that canonical JSON cannot carry (float, duplicate member, ...).
    #[error("{message} (line {line}, column {column})")]
    Syntax {
        /// What is wrong.
        message: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
    },
    /// Larger than the configured limit.
    #[error("{size} bytes is over the size limit of {limit} bytes")]
    TooLarge {
        /// Size of the input.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
}

impl Value {
    /// Parse JSON text strictly. See the module documentation for what is refused.
    pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
        Self::parse_limited(bytes, DEFAULT_MAX_FILE_SIZE)
    }

    /// Parse JSON text strictly, refusing inputs larger than `limit` bytes.
    pub fn parse_limited(bytes: &[u8], limit: u64) -> Result<Value, JsonError> {
        let size = bytes.len() as u64;
        if size > limit {
            return Err(JsonError::TooLarge { size, limit });
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = Value::deserialize(&mut de).map_err(syntax)?;
        de.end().map_err(syntax)?;
        Ok(value)
    }

    /// Canonical JSON bytes, byte-equal to securesystemslib's `encode_canonical(..).encode()`.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write_canonical(&mut out);
        out
    }

    /// Append the canonical bytes of this value to `out`.
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Value::String(s) => write_canonical_str(s, out),
            Value::Array(items) => {
                out.push(b'[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    item.write_canonical(out);
                }
                out.push(b']');
            }
            Value::Object(map) => {
                out.push(b'{');
                for (n, (k, v)) in map.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    write_canonical_str(k, out);
                    out.push(b':');
                    v.write_canonical(out);
                }
                out.push(b'}');
            }
        }
    }

    /// SHA-256 of the canonical bytes.
    pub fn canonical_sha256(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_bytes()).into()
    }

    /// Ordinary JSON text (indented, sorted members, ending in a newline): what Conclave writes
    /// to files. Canonical bytes are what gets signed; they are not always valid JSON.
    pub fn to_pretty_json(&self) -> String {
        // Serialising a Value cannot fail: it holds no floats and only string keys.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// A short name of the JSON type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }
}

fn write_canonical_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for b in s.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

fn syntax(e: serde_json::Error) -> JsonError {
    JsonError::Syntax {
        message: strip_position(&e.to_string()),
        line: e.line(),
        column: e.column(),
    }
}

/// serde_json appends " at line L column C"; we report the position separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.canonical_bytes()))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<u64> for Value {
    fn from(i: u64) -> Self {
        Value::Int(i128::from(i))
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Object(m)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Array(v)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value without floats or duplicate object members")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(i)))
    }
    fn visit_u64<E>(self, i: u64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(i)))
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        if f == 0.0 {
            return Err(E::custom(
                "number -0 or 0.0 is not canonical; canonical JSON carries only plain integers",
            ));
        }
        Err(E::custom(format!(
            "number {f} is not an integer in the 64-bit range; canonical JSON carries only integers"
        )))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value::<Value>()?;
            entries.push((key, value));
        }
        Map::from_unique_entries(entries)
            .map(Value::Object)
            .map_err(|key| {
                de::Error::custom(format!(
                    "duplicate object member \"{}\"",
                    key.escape_debug()
                ))
            })
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i128(*i),
            Value::String(v) => s.serialize_str(v),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, v) in map.iter() {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        String::from_utf8(Value::parse(text.as_bytes()).unwrap().canonical_bytes()).unwrap()
    }

    #[test]
    fn sorts_members_and_strips_whitespace() {
        assert_eq!(
            canon(r#"{ "b": [1, 2, {"z": null, "a": true}], "a": "x" }"#),
            r#"{"a":"x","b":[1,2,{"a":true,"z":null}]}"#
        );
    }

    #[test]
    fn escapes_only_quote_and_backslash_and_keeps_raw_utf8() {
        // \u00f6 in the file becomes raw UTF-8; a newline stays a raw newline (as in PEM keys).
        assert_eq!(
            canon(r#"{"k": "a\"b\\c\n\u00f6\ud83d\ude00"}"#),
            "{\"k\":\"a\\\"b\\\\c\n\u{f6}\u{1f600}\"}"
        );
    }

    #[test]
    fn does_not_normalise_unicode() {
        // "e" + combining acute (NFD) must stay as is; NFC would turn it into U+00E9.
        assert_eq!(canon("\"e\\u0301\""), "\"e\u{301}\"");
    }

    #[test]
    fn sorts_by_code_point() {
        assert_eq!(
            canon(r#"{"é": 1, "z": 2, "Z": 3, "\ud83d\ude00": 4, "ｚ": 5}"#),
            "{\"Z\":3,\"z\":2,\"\u{e9}\":1,\"\u{ff5a}\":5,\"\u{1f600}\":4}"
        );
    }

    #[test]
    fn integers_in_64_bit_range() {
        assert_eq!(
            canon("[18446744073709551615, -9223372036854775808, 0]"),
            "[18446744073709551615,-9223372036854775808,0]"
        );
        // serde_json reads -0 as a float; refusing it is safe (python-tuf would read 0).
        assert!(
            Value::parse(b"-0")
                .unwrap_err()
                .to_string()
                .contains("not canonical")
        );
    }

    #[test]
    fn refuses_floats_and_exponents() {
        for bad in [
            "1.0",
            "[1e3]",
            "{\"a\": 0.5}",
            "18446744073709551616",
            "-1E2",
        ] {
            let err = Value::parse(bad.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("not an integer"), "{bad}: {err}");
        }
    }

    #[test]
    fn refuses_duplicate_members_with_position() {
        let err = Value::parse(b"{\"signed\": {\"version\": 1,\n \"version\": 2}}").unwrap_err();
        match err {
            JsonError::Syntax { message, line, .. } => {
                assert!(
                    message.contains("duplicate object member \"version\""),
                    "{message}"
                );
                assert_eq!(line, 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_lone_surrogates_trailing_data_and_size() {
        assert!(Value::parse(br#""\ud800""#).is_err());
        assert!(Value::parse(b"{} {}").is_err());
        assert!(Value::parse(b"").is_err());
        assert!(Value::parse(b"\xff").is_err());
        assert_eq!(
            Value::parse_limited(b"[1, 2, 3]", 4),
            Err(JsonError::TooLarge { size: 9, limit: 4 })
        );
    }

    #[test]
    fn refuses_deep_nesting_without_overflow() {
        let deep = "[".repeat(100_000);
        assert!(Value::parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn pretty_json_round_trips() {
        let v = Value::parse("{\"a\": [1, \"\\n\\u0001é\"], \"b\": {}}".as_bytes()).unwrap();
        let again = Value::parse(v.to_pretty_json().as_bytes()).unwrap();
        assert_eq!(v, again);
    }
}
