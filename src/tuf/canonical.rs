//! JSON values as TUF needs them, and their canonical bytes.
//!
//! Metadata is parsed strictly into [`Value`]: duplicate object members, floats, integers that do
//! not fit 64 bits and lone surrogates are refused, so one file can never be read two ways. The
//! canonical form is the one securesystemslib (python-tuf) computes: object members sorted by code
//! point, no whitespace, only `"` and `\` escaped, strings emitted as raw UTF-8 without any Unicode
//! normalisation.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use sha2::{Digest, Sha256};

mod fast;
mod reader;

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
#[derive(Clone, Debug)]
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
    /// An object kept as its canonical bytes. Large metadata (a targets role with 100,000
    /// entries) keeps each entry this way: a fraction of the memory of a tree, and its canonical
    /// bytes are copied, not recomputed. Equal to the tree it stands for.
    Packed(Box<[u8]>),
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => a == b,
            (Value::Packed(a), Value::Packed(b)) => a == b,
            (Value::Packed(a), b @ Value::Object(_)) | (b @ Value::Object(_), Value::Packed(a)) => {
                **a == *b.canonical_bytes()
            }
            _ => false,
        }
    }
}

impl Eq for Value {}

/// Default upper bound on the size of a metadata file that Conclave reads.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 * 1024 * 1024;

/// JSON values (array elements and object members) any parse may build, whatever its size.
pub const VALUE_BUDGET_BASE: u64 = 1 << 17;
/// Input bytes per further value a parse may build: a tree of [`Value`]s takes up to about
/// 100 bytes per value, so `[0,0,...]` (one value per 2 bytes) would need 50 times its size;
/// with one value per 8 bytes the tree stays within about 12 times the input (TUF metadata has
/// one value per 15 to 70 bytes; target entries are kept packed and not counted).
pub const BYTES_PER_VALUE: u64 = 8;

/// The values a parse of `len` bytes may build: [`VALUE_BUDGET_BASE`] + `len` /
/// [`BYTES_PER_VALUE`].
pub fn value_budget(len: usize) -> u64 {
    VALUE_BUDGET_BASE + len as u64 / BYTES_PER_VALUE
}

thread_local! {
    /// Values the parse running on this thread may still build (`None`: no parse is counting).
    static BUDGET: Cell<Option<u64>> = const { Cell::new(None) };
}

/// The budget of the outermost parse on this thread; parses nested in it (a target entry read
/// on its own) draw from it.
struct ValueBudget {
    outermost: bool,
}

impl ValueBudget {
    fn enter(len: usize) -> ValueBudget {
        let outermost = BUDGET.with(|b| {
            if b.get().is_some() {
                return false;
            }
            b.set(Some(value_budget(len)));
            true
        });
        ValueBudget { outermost }
    }
}

impl Drop for ValueBudget {
    fn drop(&mut self) {
        if self.outermost {
            BUDGET.with(|b| b.set(None));
        }
    }
}

/// Counts one more value against this thread's budget; an error once it is spent.
fn charge_value<E: de::Error>() -> Result<(), E> {
    BUDGET.with(|b| match b.get() {
        None => Ok(()),
        Some(0) => Err(E::custom(format!(
            "more JSON values than a file of this size may hold (at most {VALUE_BUDGET_BASE} \
             plus one per {BYTES_PER_VALUE} bytes), refused to keep memory bounded"
        ))),
        Some(n) => {
            b.set(Some(n - 1));
            Ok(())
        }
    })
}

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
        let _budget = ValueBudget::enter(bytes.len());
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = Value::deserialize(&mut de).map_err(syntax)?;
        de.end().map_err(syntax)?;
        Ok(value)
    }

    /// Parse a metadata file strictly (as [`Value::parse_limited`]), keeping each entry of
    /// `signed.targets` packed as its canonical bytes. Memory stays a small multiple of the file
    /// size even for targets metadata with hundreds of thousands of entries.
    ///
    /// An entry that has the shape of a target file (`length` a non-negative 64-bit integer,
    /// `hashes` a non-empty object of strings) and is written as TUF tools write it (members in
    /// canonical order, no escapes) is packed straight from its text; every other entry is read
    /// into a tree and given to `check` (with the target name) before it is packed, so `check`
    /// must accept every entry of that shape and decides on all the others.
    pub fn parse_metadata(
        bytes: &[u8],
        limit: u64,
        check: &(dyn Fn(&str, &Value) -> Result<(), String> + Sync),
    ) -> Result<Value, JsonError> {
        let size = bytes.len() as u64;
        if size > limit {
            return Err(JsonError::TooLarge { size, limit });
        }
        {
            let _budget = ValueBudget::enter(bytes.len());
            if let Some(v) = reader::parse_metadata(bytes, check) {
                return Ok(v);
            }
        }
        // A fresh budget: what the fast reader built before it gave up is gone.
        let _budget = ValueBudget::enter(bytes.len());
        let entry_error = Cell::new(None);
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = de::DeserializeSeed::deserialize(
            LevelSeed {
                level: Level::Top,
                check,
                input: bytes,
                entry_error: &entry_error,
            },
            &mut de,
        )
        .and_then(|v| de.end().map(|()| v));
        match (value, entry_error.take()) {
            (Ok(v), _) => Ok(v),
            // A syntax error inside a target entry, found by reading the entry's own text:
            // reported at its place in the file.
            (Err(_), Some(e)) => Err(e),
            (Err(e), None) => Err(syntax(e)),
        }
    }

    /// Canonical JSON bytes, byte-equal to securesystemslib's `encode_canonical(..).encode()`.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        self.canonical_bytes_in(Vec::new())
    }

    /// [`Value::canonical_bytes`], written into `buffer`'s memory (its contents are dropped): a
    /// verifier that no longer needs a large file's bytes reuses their memory instead of
    /// allocating and faulting in as much again. The buffer's memory is the caller's: the edge
    /// that read the file asked the kernel for huge pages for it (`folder`'s reads, through
    /// `memory::advise_huge_pages`), and the canonical bytes of a file are never longer than
    /// the file. A buffer too small for them is replaced by one allocated once at their
    /// length ([`Value::canonical_len`]), without a hint: a caller that wants one allocates
    /// the buffer itself at that length.
    pub fn canonical_bytes_in(&self, mut buffer: Vec<u8>) -> Vec<u8> {
        let len = self.canonical_len();
        buffer.clear();
        if buffer.capacity() < len {
            buffer = Vec::with_capacity(len);
        }
        self.write_canonical(&mut buffer);
        buffer
    }

    /// The length of the canonical bytes, computed without writing them (so that the buffer is
    /// allocated once, at its final size: large files must not double their memory).
    pub fn canonical_len(&self) -> usize {
        fn str_len(s: &str) -> usize {
            2 + s.len() + memchr::memchr2_iter(b'"', b'\\', s.as_bytes()).count()
        }
        match self {
            Value::Null => 4,
            Value::Bool(true) => 4,
            Value::Bool(false) => 5,
            Value::Int(i) => i.to_string().len(),
            Value::String(s) => str_len(s),
            Value::Packed(b) => b.len(),
            Value::Array(items) => {
                2 + items.len().saturating_sub(1)
                    + items.iter().map(Value::canonical_len).sum::<usize>()
            }
            Value::Object(map) => {
                2 + map.len().saturating_sub(1)
                    + map
                        .iter()
                        .map(|(k, v)| str_len(k) + 1 + v.canonical_len())
                        .sum::<usize>()
            }
        }
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
            Value::Packed(bytes) => out.extend_from_slice(bytes),
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
            Value::Object(_) | Value::Packed(_) => "object",
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The object, if this is one (a packed object is not: see [`Value::unpacked`]).
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// This value with every packed object turned back into a tree.
    pub fn unpacked(self) -> Value {
        match self {
            Value::Packed(bytes) => {
                // Packed bytes are only ever made from a valid tree, so this cannot fail; keep
                // the packed form rather than panic if it somehow did.
                match parse_canonical(&bytes) {
                    Ok(v) => v,
                    Err(_) => Value::Packed(bytes),
                }
            }
            Value::Array(items) => Value::Array(items.into_iter().map(Value::unpacked).collect()),
            Value::Object(map) => Value::Object(Map {
                entries: map
                    .entries
                    .into_iter()
                    .map(|(k, v)| (k, v.unpacked()))
                    .collect(),
            }),
            other => other,
        }
    }

    /// Pack an object into its canonical bytes (other values are returned unchanged).
    pub fn packed(self) -> Value {
        match self {
            v @ Value::Object(_) => Value::Packed(v.canonical_bytes().into_boxed_slice()),
            other => other,
        }
    }
}

fn write_canonical_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let mut rest = s.as_bytes();
    while let Some(i) = memchr::memchr2(b'"', b'\\', rest) {
        out.extend_from_slice(&rest[..i]);
        out.push(b'\\');
        out.push(rest[i]);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Read canonical JSON bytes back into a value. Canonical JSON is not always valid JSON (strings
/// carry raw control characters and only `\"` and `\\` are escaped), so it has its own reader;
/// it accepts exactly what [`Value::write_canonical`] writes.
pub fn parse_canonical(bytes: &[u8]) -> Result<Value, String> {
    let mut r = CanonicalReader { b: bytes, i: 0 };
    let v = r.value(0)?;
    if r.i != bytes.len() {
        return Err(format!("trailing bytes at offset {}", r.i));
    }
    Ok(v)
}

struct CanonicalReader<'a> {
    b: &'a [u8],
    i: usize,
}

impl CanonicalReader<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at offset {}", c as char, self.i))
        }
    }

    fn literal(&mut self, lit: &[u8], v: Value) -> Result<Value, String> {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(v)
        } else {
            Err(format!("bad literal at offset {}", self.i))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated string".into()),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    match self.b.get(self.i + 1) {
                        Some(c @ (b'"' | b'\\')) => out.push(*c),
                        _ => return Err(format!("bad escape at offset {}", self.i)),
                    }
                    self.i += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| "string is not UTF-8".to_string())
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > 128 {
            return Err("nested too deeply".into());
        }
        match self.peek() {
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'"') => self.string().map(Value::String),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return Err(format!("expected ',' or ']' at offset {}", self.i)),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut entries = Vec::new();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Value::Object(Map::new()));
                }
                loop {
                    let at = self.i;
                    let k = self.string()?;
                    // Canonical JSON sorts members: anything else (also a duplicate) is another
                    // byte string for the same value, which this reader must not accept.
                    if let Some((prev, _)) = entries.last()
                        && *prev >= k
                    {
                        return Err(format!(
                            "member \"{}\" out of canonical order at offset {at}",
                            crate::text::show(&k)
                        ));
                    }
                    self.expect(b':')?;
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Map::from_unique_entries(entries)
                                .map(Value::Object)
                                .map_err(|k| format!("duplicate member \"{k}\""));
                        }
                        _ => return Err(format!("expected ',' or '}}' at offset {}", self.i)),
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                self.i += 1;
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
                let text = &self.b[start..self.i];
                // As the writer prints an integer: no leading zero, no "-0", no lone "-".
                let digits = text.strip_prefix(b"-").unwrap_or(text);
                let canonical = match digits {
                    [] => false,
                    [b'0'] => text.len() == 1,
                    [b'0', ..] => false,
                    _ => true,
                };
                std::str::from_utf8(text)
                    .ok()
                    .filter(|_| canonical)
                    .and_then(|t| t.parse::<i128>().ok())
                    .map(Value::Int)
                    .ok_or_else(|| format!("bad integer at offset {start}"))
            }
            _ => Err(format!("unexpected byte at offset {}", self.i)),
        }
    }
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
            charge_value()?;
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = access.next_key::<String>()? {
            charge_value()?;
            let value = access.next_value::<Value>()?;
            entries.push((key, value));
        }
        Map::from_unique_entries(entries)
            .map(Value::Object)
            .map_err(|key| {
                de::Error::custom(format!(
                    "duplicate object member \"{}\"",
                    crate::text::show(&key)
                ))
            })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    Signed,
    Targets,
}

#[derive(Clone, Copy)]
struct LevelSeed<'a> {
    level: Level,
    check: reader::Check<'a>,
    /// The whole text being parsed (to place errors found inside a target entry).
    input: &'a [u8],
    /// Such an error, with its place in the whole text.
    entry_error: &'a Cell<Option<JsonError>>,
}

impl LevelSeed<'_> {
    /// One target entry, given as its JSON text, packed as its canonical bytes. `scratch` is a
    /// buffer reused from entry to entry.
    fn pack_entry(&self, name: &str, text: &str, scratch: &mut Vec<u8>) -> Result<Value, String> {
        scratch.clear();
        if fast::pack_target_entry(text, scratch) {
            debug_assert!(
                parse_canonical(scratch).is_ok_and(|v| (self.check)(name, &v).is_ok()),
                "the fast path packed an entry that the check refuses: {text}"
            );
            return Ok(Value::Packed(scratch.as_slice().into()));
        }
        let v = Value::parse(text.as_bytes()).map_err(|e| {
            let message = e.to_string();
            if let JsonError::Syntax {
                message,
                line,
                column,
            } = e
            {
                let (line, column) = self.place_in_input(text, line, column);
                self.entry_error.set(Some(JsonError::Syntax {
                    message,
                    line,
                    column,
                }));
            }
            message
        })?;
        (self.check)(name, &v)?;
        Ok(v.packed())
    }

    /// Line and column in the whole input of (`line`, `column`) within `text`, a part of it.
    fn place_in_input(&self, text: &str, line: usize, column: usize) -> (usize, usize) {
        let offset = (text.as_ptr() as usize)
            .wrapping_sub(self.input.as_ptr() as usize)
            .min(self.input.len());
        let before = &self.input[..offset];
        let base_line = 1 + memchr::memchr_iter(b'\n', before).count();
        let base_column = before.len() - memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
        if line <= 1 {
            (base_line, base_column + column)
        } else {
            (base_line + line - 1, column)
        }
    }
}

impl<'de> de::DeserializeSeed<'de> for LevelSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LevelSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        StrictVisitor.expecting(f)
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
        StrictVisitor.visit_f64(f)
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        StrictVisitor.visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        let mut scratch = Vec::new();
        while let Some(key) = access.next_key::<String>()? {
            charge_value()?;
            let next = match (self.level, key.as_str()) {
                (Level::Top, "signed") => Some(Level::Signed),
                (Level::Signed, "targets") => Some(Level::Targets),
                _ => None,
            };
            let value = match next {
                Some(level) => access.next_value_seed(LevelSeed { level, ..self })?,
                None if self.level == Level::Targets => {
                    let text: &'de serde_json::value::RawValue = access.next_value()?;
                    self.pack_entry(&key, text.get(), &mut scratch)
                        .map_err(de::Error::custom)?
                }
                None => access.next_value::<Value>()?,
            };
            entries.push((key, value));
        }
        Map::from_unique_entries(entries)
            .map(Value::Object)
            .map_err(|key| {
                de::Error::custom(format!(
                    "duplicate object member \"{}\"",
                    crate::text::show(&key)
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
            Value::Packed(bytes) => match parse_canonical(bytes) {
                Ok(v) => v.serialize(s),
                Err(e) => Err(serde::ser::Error::custom(e)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of tiny values (`[0,0,...]`: one value per 2 bytes) is refused once it holds more
    /// values than its size allows, with a message that says why; before, a 256 MiB file built
    /// a 4.46 GB tree. Files with fewer values, and packed target entries, are not affected.
    #[test]
    fn canonical_bytes_fit_in_the_file_s_own_buffer() {
        // The verifier writes a file's canonical bytes into the memory of the file's bytes
        // (read and hinted by the edge): they are never longer than the file.
        let pretty = "{\n  \"signed\": {\n    \"targets\": {\n      \"a.txt\": {\n        \"hashes\": {\"sha256\": \"ab\"},\n        \"length\": 3\n      }\n    },\n    \"_type\": \"targets\"\n  },\n  \"signatures\": []\n}\n";
        let texts = [
            r#"{"b": [1, -2, {"c": "\u00e9\n\/\"x"}], "a": null}"#,
            r#"{"a":"\ud83d\ude00","k":true,"z":[]}"#,
            r#"{"x":"plain"}"#,
            pretty,
        ];
        for text in texts {
            for v in [
                Value::parse(text.as_bytes()).unwrap(),
                Value::parse_metadata(text.as_bytes(), 1 << 20, &|_, _| Ok(())).unwrap(),
            ] {
                assert!(v.canonical_len() <= text.len(), "{text}");
                let mut buffer = text.as_bytes().to_vec();
                buffer.shrink_to_fit();
                let at = buffer.as_ptr();
                let out = v.canonical_bytes_in(buffer);
                assert_eq!(out.as_ptr(), at, "the file's buffer is reused: {text}");
                assert_eq!(out, v.canonical_bytes());
            }
        }
        // A buffer too small is replaced by one of the right length.
        let v = Value::parse(texts[0].as_bytes()).unwrap();
        let out = v.canonical_bytes_in(Vec::with_capacity(2));
        assert_eq!(out, v.canonical_bytes());
    }

    #[test]
    fn a_file_of_tiny_values_is_refused_by_the_value_budget() {
        let n = 1 << 20;
        let mut text = String::with_capacity(2 * n + 2);
        text.push('[');
        for i in 0..n {
            text.push_str(if i == 0 { "0" } else { ",0" });
        }
        text.push(']');
        let budget = value_budget(text.len());
        assert!((n as u64) > budget);
        let err = Value::parse(text.as_bytes()).expect_err("over the budget");
        assert!(
            err.to_string()
                .contains("more JSON values than a file of this size may hold"),
            "{err}"
        );
        let err = Value::parse_metadata(text.as_bytes(), u64::MAX, &|_, _| Ok(()))
            .expect_err("over the budget");
        assert!(
            err.to_string().contains("refused to keep memory bounded"),
            "{err}"
        );
        // Within the budget: parses (the budget is per parse, not per thread).
        let fits = format!("[{}]", vec!["0"; VALUE_BUDGET_BASE as usize].join(","));
        assert!(Value::parse(fits.as_bytes()).is_ok());
        assert!(Value::parse(fits.as_bytes()).is_ok());
        // Inside an object, and with empty objects as the values.
        let text = format!("{{\"a\":[{}]}}", vec!["{}"; n].join(","));
        assert!(Value::parse(text.as_bytes()).is_err());
        // 100,000 target entries are packed and not counted.
        let entries: Vec<String> = (0..100_000)
            .map(|i| {
                format!(
                    "\"f{i}\":{{\"hashes\":{{\"sha256\":\"{:064x}\"}},\"length\":{i}}}",
                    i
                )
            })
            .collect();
        let text = format!(
            "{{\"signatures\":[],\"signed\":{{\"_type\":\"targets\",\"targets\":{{{}}}}}}}",
            entries.join(",")
        );
        assert!(Value::parse_metadata(text.as_bytes(), u64::MAX, &|_, _| Ok(())).is_ok());
    }

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
    fn canonical_len_is_exact_and_packing_is_invisible() {
        let text = "{\"b\": [1, -20, true, false, null, \"q\\\"\\\\\\u0001é\"], \"a\": {\"x\": {}} , \"c\": []}";
        let v = Value::parse(text.as_bytes()).unwrap();
        assert_eq!(v.canonical_len(), v.canonical_bytes().len());
        // A packed object equals its tree, writes the same bytes, and reads back.
        let inner = v.as_object().unwrap().get("a").unwrap().clone();
        let packed = inner.clone().packed();
        assert!(matches!(packed, Value::Packed(_)));
        assert_eq!(packed, inner);
        assert_eq!(packed.canonical_bytes(), inner.canonical_bytes());
        assert_eq!(packed.clone().unpacked(), inner);
        let whole = v.clone().packed();
        assert_eq!(parse_canonical(&whole.canonical_bytes()).unwrap(), v);
        assert_eq!(Value::parse(whole.to_pretty_json().as_bytes()).unwrap(), v);
        for bad in [
            &b"{\"a\":1"[..],
            b"[1,]",
            b"\"\\n\"",
            b"01x",
            b"{\"a\":1,\"a\":2}",
            // Found by the canonical fuzz target (docs/security.md): members out of order were
            // accepted, so two byte strings read as one value; so were non-canonical integers.
            b"{\"keytype\":\"ecdsa\",\"keyids\":[]}",
            b"{\"b\":1,\"a\":2}",
            b"007",
            b"-0",
            b"-",
            b"[00]",
        ] {
            assert!(
                parse_canonical(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn parse_metadata_packs_target_entries_after_checking_them() {
        let text = br#"{"signed": {"targets": {"a": {"length": 1}, "b": {"length": 2}}, "x": {"y": 1}}, "signatures": []}"#;
        let v = Value::parse_metadata(text, 1 << 20, &|_, _| Ok(())).unwrap();
        let signed = v
            .as_object()
            .unwrap()
            .get("signed")
            .unwrap()
            .as_object()
            .unwrap();
        let targets = signed.get("targets").unwrap().as_object().unwrap();
        assert!(matches!(targets.get("a"), Some(Value::Packed(_))));
        assert!(matches!(signed.get("x"), Some(Value::Object(_))));
        assert_eq!(v, Value::parse(text).unwrap());
        let err = Value::parse_metadata(text, 1 << 20, &|name, _| {
            if name == "b" {
                Err("entry b is bad".into())
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("entry b is bad"), "{err}");
    }

    #[test]
    fn pretty_json_round_trips() {
        let v = Value::parse("{\"a\": [1, \"\\n\\u0001é\"], \"b\": {}}".as_bytes()).unwrap();
        let again = Value::parse(v.to_pretty_json().as_bytes()).unwrap();
        assert_eq!(v, again);
    }
}
