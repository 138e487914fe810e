//! Taking typed fields out of JSON objects, with errors that name the JSON path.

use super::canonical::{Map, Value};

/// A field of a metadata file is missing, of the wrong type, or has a value that is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// JSON path of the field, e.g. `$.signed.roles.root.threshold`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A new error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The error of a value read with an empty path (`Fields::new(v, "")`: its paths are
    /// relative, and none is made unless there is an error), placed below `parent`.
    pub fn under(self, parent: &str) -> Self {
        FieldError {
            path: format!("{parent}{}", self.path),
            message: self.message,
        }
    }
}

/// The JSON path of member `name` below `parent`.
pub fn member_path(parent: &str, name: &str) -> String {
    let simple = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if simple {
        // Pushed, not `format!`: the formatting machinery was a seventh of reading a snapshot
        // with 1,000 entries (callgrind), where every entry's path is made.
        let mut path = String::with_capacity(parent.len() + 1 + name.len());
        path.push_str(parent);
        path.push('.');
        path.push_str(name);
        path
    } else if !name.contains(['"', '\\']) {
        // Canonical JSON escapes only these two: without them the quoted name is the name.
        let mut path = String::with_capacity(parent.len() + name.len() + 4);
        path.push_str(parent);
        path.push_str("[\"");
        path.push_str(name);
        path.push_str("\"]");
        path
    } else {
        format!("{parent}[{}]", Value::String(name.to_string()))
    }
}

/// The JSON path of element `i` below `parent`.
pub fn index_path(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// An object being taken apart: fields are removed as they are read, and what is left over is
/// kept as the object's unrecognized members.
pub struct Fields {
    map: Map,
    path: String,
}

impl Fields {
    /// Take `value` as an object at `path`.
    pub fn new(value: Value, path: &str) -> Result<Self, FieldError> {
        match value {
            Value::Object(map) => Ok(Fields {
                map,
                path: path.to_string(),
            }),
            other => Err(FieldError::new(
                path,
                format!("expected an object, found {}", other.type_name()),
            )),
        }
    }

    /// The path of this object.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path of a member of this object.
    pub fn child(&self, name: &str) -> String {
        member_path(&self.path, name)
    }

    /// Remove and return a required member.
    pub fn take(&mut self, name: &str) -> Result<Value, FieldError> {
        self.map
            .remove(name)
            .ok_or_else(|| FieldError::new(self.child(name), "required field is missing"))
    }

    /// Remove and return an optional member.
    pub fn take_opt(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name)
    }

    // The scalar accessors below make the member's JSON path only when there is an error to
    // report: formatting it for every field read was 4% of reading a large snapshot.

    /// A required string.
    pub fn string(&mut self, name: &str) -> Result<String, FieldError> {
        match self.take(name)? {
            Value::String(s) => Ok(s),
            other => Err(wrong_type(&self.child(name), "a string", &other)),
        }
    }

    /// An optional string.
    pub fn opt_string(&mut self, name: &str) -> Result<Option<String>, FieldError> {
        match self.take_opt(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(&self.child(name), "a string", &other)),
        }
    }

    /// A required non-negative integer.
    pub fn u64(&mut self, name: &str) -> Result<u64, FieldError> {
        let v = self.take(name)?;
        fast_u64(&v).map_or_else(|| as_u64(&v, &self.child(name)), Ok)
    }

    /// An optional non-negative integer.
    pub fn opt_u64(&mut self, name: &str) -> Result<Option<u64>, FieldError> {
        match self.take_opt(name) {
            None => Ok(None),
            Some(v) => fast_u64(&v)
                .map_or_else(|| as_u64(&v, &self.child(name)), Ok)
                .map(Some),
        }
    }

    /// A required boolean.
    pub fn bool(&mut self, name: &str) -> Result<bool, FieldError> {
        match self.take(name)? {
            Value::Bool(b) => Ok(b),
            other => Err(wrong_type(&self.child(name), "a boolean", &other)),
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&mut self, name: &str) -> Result<Option<bool>, FieldError> {
        match self.take_opt(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(wrong_type(&self.child(name), "a boolean", &other)),
        }
    }

    /// A required object, as fields.
    pub fn object(&mut self, name: &str) -> Result<Fields, FieldError> {
        let path = self.child(name);
        Fields::new(self.take(name)?, &path)
    }

    /// A required object, as a map.
    pub fn map(&mut self, name: &str) -> Result<Map, FieldError> {
        match self.take(name)? {
            Value::Object(m) => Ok(m),
            other => Err(wrong_type(&self.child(name), "an object", &other)),
        }
    }

    /// A required array.
    pub fn array(&mut self, name: &str) -> Result<Vec<Value>, FieldError> {
        match self.take(name)? {
            Value::Array(a) => Ok(a),
            other => Err(wrong_type(&self.child(name), "an array", &other)),
        }
    }

    /// An optional array of strings.
    pub fn opt_string_array(&mut self, name: &str) -> Result<Option<Vec<String>>, FieldError> {
        match self.take_opt(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    other => Err(wrong_type(
                        &index_path(&self.child(name), i),
                        "a string",
                        &other,
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(wrong_type(&self.child(name), "an array", &other)),
        }
    }

    /// What is left: the unrecognized members, kept so that they survive a load and save.
    pub fn rest(self) -> Map {
        self.map
    }
}

/// A string, or an error naming `path`.
pub fn as_string(v: Value, path: &str) -> Result<String, FieldError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(wrong_type(path, "a string", &other)),
    }
}

/// A non-negative 64-bit integer, or an error naming `path`.
pub fn as_u64(v: &Value, path: &str) -> Result<u64, FieldError> {
    match v {
        Value::Int(i) => u64::try_from(*i).map_err(|_| {
            FieldError::new(path, format!("must be a non-negative integer, found {i}"))
        }),
        other => Err(wrong_type(path, "an integer", other)),
    }
}

/// The value when it is an integer in `u64`'s range (the usual case), without making a path.
fn fast_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

fn wrong_type(path: &str, expected: &str, found: &Value) -> FieldError {
    FieldError::new(
        path,
        format!("expected {expected}, found {}", found.type_name()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_unusual_names() {
        assert_eq!(member_path("$", "signed"), "$.signed");
        assert_eq!(member_path("$.keys", "a/b"), "$.keys[\"a/b\"]");
        assert_eq!(
            member_path("$.meta", "snapshot.json"),
            "$.meta[\"snapshot.json\"]"
        );
        // The quick forms give what quoting the name as a canonical JSON string gives.
        assert_eq!(member_path("$.p", "a_b-1"), "$.p.a_b-1");
        for name in [
            "",
            "a.b",
            "a\"b",
            "a\\b",
            "\"\\",
            "é",
            "tab\there",
            "x]y",
            "日本",
        ] {
            let quoted = Value::String(name.to_string()).to_string();
            assert_eq!(
                member_path("$.p", name),
                format!("$.p[{quoted}]"),
                "{name:?}"
            );
        }
    }

    #[test]
    fn errors_name_the_field() {
        let v = Value::parse(br#"{"version": -1, "name": 3, "ok": true}"#).unwrap();
        let mut f = Fields::new(v, "$.signed").unwrap();
        assert_eq!(
            f.u64("version").unwrap_err().to_string(),
            "$.signed.version: must be a non-negative integer, found -1"
        );
        assert_eq!(
            f.string("name").unwrap_err().to_string(),
            "$.signed.name: expected a string, found integer"
        );
        assert_eq!(
            f.string("missing").unwrap_err().to_string(),
            "$.signed.missing: required field is missing"
        );
        assert!(f.bool("ok").unwrap());
        assert!(f.rest().is_empty());
    }
}
