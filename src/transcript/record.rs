//! One transcript record: its fields, its hash, and the line it is written as.
//!
//! A record is a JSON object with exactly these members:
//!
//! | member    | type                    | meaning                                               |
//! |-----------|-------------------------|-------------------------------------------------------|
//! | `seq`     | integer                 | 0 for the first record, then consecutive             |
//! | `time`    | string                  | UTC, `YYYY-MM-DDTHH:MM:SSZ`                           |
//! | `actor`   | string                  | who acted (administrator, a keyholder, `conclave`)    |
//! | `step`    | string (optional)       | the script's step id, absent outside steps            |
//! | `action`  | string                  | what happened (`begin`, `sign`, `seal`, ...)          |
//! | `details` | any JSON (no floats)    | what the action recorded                              |
//! | `prev`    | string, 64 hex          | `hash` of the previous record; 64 zeros for the first |
//! | `hash`    | string, 64 hex          | SHA-256 of the canonical JSON of the record without `hash` |
//!
//! Each record is written as one line of compact JSON (members sorted, control characters
//! escaped, so a PEM key with newlines stays on one line) followed by `\n`. The hash is over the
//! canonical bytes, not over the line; the line must nevertheless be exactly the compact form, so
//! one file can never be read two ways.

use std::fmt;

use sha2::{Digest as _, Sha256};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::tuf::canonical::{Map, Value};

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// The `prev` of the first record.
pub const GENESIS_PREV: Digest = [0; 32];

/// Member names that look like secrets: a transcript never carries them (compared ignoring case,
/// with `-` read as `_`).
pub const SECRET_NAMES: [&str; 4] = ["pin", "so_pin", "password", "secret"];

/// A UTC time with whole seconds, written `YYYY-MM-DDTHH:MM:SSZ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(PrimitiveDateTime);

impl Timestamp {
    /// Parse the strict form `YYYY-MM-DDTHH:MM:SSZ` (no fractions, no offsets other than `Z`).
    pub fn parse(s: &str) -> Result<Timestamp, String> {
        let b = s.as_bytes();
        let shape_ok = b.len() == 20
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'Z',
                _ => c.is_ascii_digit(),
            });
        if !shape_ok {
            return Err(format!(
                "\"{}\" is not a UTC time of the form YYYY-MM-DDTHH:MM:SSZ",
                crate::text::show(s)
            ));
        }
        let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        PrimitiveDateTime::parse(&s[..19], fmt)
            .map(Timestamp)
            .map_err(|e| format!("\"{s}\" is not a valid date and time ({e})"))
    }

    /// From a clock reading: converted to UTC, fractions of a second dropped. `None` outside the
    /// years 0000 to 9999.
    pub fn from_datetime(dt: OffsetDateTime) -> Option<Timestamp> {
        let utc = dt.to_offset(UtcOffset::UTC);
        if !(0..=9999).contains(&utc.year()) {
            return None;
        }
        let utc = utc.replace_nanosecond(0).ok()?;
        Some(Timestamp(PrimitiveDateTime::new(utc.date(), utc.time())))
    }

    /// As an [`OffsetDateTime`] in UTC.
    pub fn to_datetime(self) -> OffsetDateTime {
        self.0.assume_utc()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        )
    }
}

/// What is wrong with one line of a transcript, or with a record about to be appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not JSON, or JSON canonical JSON cannot carry (duplicate member, float, ...).
    #[error("not valid JSON: {message} (column {column})")]
    NotJson {
        /// What the parser said (e.g. `duplicate object member "seq"`).
        message: String,
        /// 1-based column.
        column: usize,
    },
    /// An object member appears twice (anywhere in the record): the line could be read two ways.
    #[error("member \"{name}\" appears twice (column {column}): a record can only be read one way")]
    DuplicateMember {
        /// The member's name (as the parser shows it).
        name: String,
        /// 1-based column.
        column: usize,
    },
    /// The line is JSON but not an object.
    #[error("a record must be a JSON object, found {0}")]
    NotObject(&'static str),
    /// A required member is missing.
    #[error("field \"{0}\" is missing")]
    MissingField(&'static str),
    /// A member has the wrong JSON type.
    #[error("field \"{field}\" must be {expected}, found {found}")]
    WrongType {
        /// The member.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// A member that records do not have.
    #[error("unknown field \"{0}\"")]
    UnknownField(String),
    /// A member has a value that is not allowed.
    #[error("field \"{field}\": {message}")]
    BadValue {
        /// The member.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The line is not the compact form Conclave writes (extra spaces, member order, escapes).
    #[error(
        "the line is not in the compact form Conclave writes (whitespace, order or escapes changed)"
    )]
    NotCompact,
    /// The recorded hash is not the hash of the record: the record was edited.
    #[error("field \"hash\": recorded {recorded}, but the record hashes to {computed} (edited)")]
    HashMismatch {
        /// `hash` as written.
        recorded: String,
        /// The hash of the record as it is.
        computed: String,
    },
    /// A member whose name looks like a secret.
    #[error(
        "field \"{path}\" is named like a secret (pin, so_pin, password, secret): a transcript never carries secrets"
    )]
    SecretField {
        /// JSON path of the member, e.g. `details.login.pin`.
        path: String,
    },
}

/// One record of a transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Position in the transcript, from 0.
    pub seq: u64,
    /// When it happened (UTC).
    pub time: Timestamp,
    /// Who acted.
    pub actor: String,
    /// The script step, if the record belongs to one.
    pub step: Option<String>,
    /// What happened.
    pub action: String,
    /// What the action recorded.
    pub details: Value,
    /// Hash of the previous record ([`GENESIS_PREV`] for the first).
    pub prev: Digest,
    /// Hash of this record (see [`Record::compute_hash`]).
    pub hash: Digest,
}

const FIELDS: [&str; 8] = [
    "action", "actor", "details", "hash", "prev", "seq", "step", "time",
];

impl Record {
    /// A new record; its `hash` is computed. The fields are checked by
    /// [`Record::check_fields`] (and by the chain when the record is appended).
    pub fn new(
        seq: u64,
        time: Timestamp,
        actor: &str,
        step: Option<&str>,
        action: &str,
        details: Value,
        prev: Digest,
    ) -> Record {
        let mut r = Record {
            seq,
            time,
            actor: actor.to_string(),
            step: step.map(str::to_string),
            action: action.to_string(),
            details,
            prev,
            hash: [0; 32],
        };
        r.hash = r.compute_hash();
        r
    }

    /// The record as a JSON object without its `hash` member: what the hash is computed over.
    pub fn body(&self) -> Map {
        let mut m = Map::new();
        m.insert("seq".into(), Value::from(self.seq));
        m.insert("time".into(), Value::String(self.time.to_string()));
        m.insert("actor".into(), Value::String(self.actor.clone()));
        if let Some(step) = &self.step {
            m.insert("step".into(), Value::String(step.clone()));
        }
        m.insert("action".into(), Value::String(self.action.clone()));
        m.insert("details".into(), self.details.clone());
        m.insert("prev".into(), Value::String(hex::encode(self.prev)));
        m
    }

    /// SHA-256 over the canonical JSON bytes of [`Record::body`].
    pub fn compute_hash(&self) -> Digest {
        Value::Object(self.body()).canonical_sha256()
    }

    /// The whole record as JSON.
    pub fn to_value(&self) -> Value {
        let mut m = self.body();
        m.insert("hash".into(), Value::String(hex::encode(self.hash)));
        Value::Object(m)
    }

    /// The line written to the transcript file: compact JSON and `\n`.
    pub fn to_line(&self) -> String {
        let mut line = compact(&self.to_value());
        line.push('\n');
        line
    }

    /// `hash` in hex.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// Read one line (without its `\n`): strict JSON, exactly the record's members, compact form,
    /// valid field values, and a `hash` that matches the record.
    pub fn parse_line(line: &[u8]) -> Result<Record, RecordError> {
        let value = Value::parse(line).map_err(|e| match e {
            crate::tuf::canonical::JsonError::Syntax {
                message, column, ..
            } => match message.strip_prefix("duplicate object member ") {
                Some(name) => RecordError::DuplicateMember {
                    name: name.trim_matches('"').to_string(),
                    column,
                },
                None => RecordError::NotJson { message, column },
            },
            other => RecordError::NotJson {
                message: other.to_string(),
                column: 0,
            },
        })?;
        let map = match &value {
            Value::Object(m) => m,
            other => return Err(RecordError::NotObject(other.type_name())),
        };
        if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(RecordError::UnknownField(unknown.clone()));
        }
        let seq = match required(map, "seq")? {
            Value::Int(i) => u64::try_from(*i).map_err(|_| RecordError::BadValue {
                field: "seq",
                message: format!("{i} is not a sequence number"),
            })?,
            other => return Err(wrong_type("seq", "an integer", other)),
        };
        let time =
            Timestamp::parse(string(map, "time")?).map_err(|message| RecordError::BadValue {
                field: "time",
                message,
            })?;
        let actor = string(map, "actor")?.to_string();
        let step = match map.get("step") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return Err(wrong_type("step", "a string", other)),
        };
        let action = string(map, "action")?.to_string();
        let details = required(map, "details")?.clone();
        let prev = digest(map, "prev")?;
        let hash = digest(map, "hash")?;
        if compact(&value).as_bytes() != line {
            return Err(RecordError::NotCompact);
        }
        let record = Record {
            seq,
            time,
            actor,
            step,
            action,
            details,
            prev,
            hash,
        };
        let computed = record.compute_hash();
        if computed != hash {
            return Err(RecordError::HashMismatch {
                recorded: hex::encode(hash),
                computed: hex::encode(computed),
            });
        }
        record.check_fields()?;
        Ok(record)
    }

    /// Checks on field values shared by the reader and the writer: non-empty actor and action
    /// (action in lower case letters, digits and `-`), non-empty step, no secret-like members.
    pub fn check_fields(&self) -> Result<(), RecordError> {
        if self.actor.is_empty() {
            return Err(RecordError::BadValue {
                field: "actor",
                message: "must not be empty".into(),
            });
        }
        if self.step.as_deref() == Some("") {
            return Err(RecordError::BadValue {
                field: "step",
                message: "must not be empty (leave it out instead)".into(),
            });
        }
        let action_ok = !self.action.is_empty()
            && self
                .action
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !action_ok {
            return Err(RecordError::BadValue {
                field: "action",
                message: format!(
                    "\"{}\" is not an action name (lower case letters, digits, '-')",
                    crate::text::show(&self.action)
                ),
            });
        }
        if let Some(path) = find_secret(&self.details, "details") {
            return Err(RecordError::SecretField { path });
        }
        Ok(())
    }
}

/// Compact JSON as serde_json writes it: sorted members, no spaces, control characters escaped.
pub fn compact(v: &Value) -> String {
    // Serialising a Value cannot fail: no floats, only string keys.
    serde_json::to_string(v).unwrap_or_default()
}

/// The path of the first member below `v` whose name looks like a secret.
pub fn find_secret(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::Object(m) => m.iter().find_map(|(k, child)| {
            let here = crate::tuf::parse::member_path(path, k);
            let norm = k.to_ascii_lowercase().replace('-', "_");
            if SECRET_NAMES.contains(&norm.as_str()) {
                Some(here)
            } else {
                find_secret(child, &here)
            }
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, child)| find_secret(child, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// SHA-256 of bytes.
pub fn sha256(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// Parse 64 lower-case hex digits.
pub fn parse_digest(s: &str) -> Option<Digest> {
    if s.len() != 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

fn required<'a>(map: &'a Map, field: &'static str) -> Result<&'a Value, RecordError> {
    map.get(field).ok_or(RecordError::MissingField(field))
}

fn wrong_type(field: &'static str, expected: &'static str, found: &Value) -> RecordError {
    RecordError::WrongType {
        field,
        expected,
        found: found.type_name(),
    }
}

fn string<'a>(map: &'a Map, field: &'static str) -> Result<&'a str, RecordError> {
    match required(map, field)? {
        Value::String(s) => Ok(s),
        other => Err(wrong_type(field, "a string", other)),
    }
}

fn digest(map: &Map, field: &'static str) -> Result<Digest, RecordError> {
    let s = string(map, field)?;
    parse_digest(s).ok_or_else(|| RecordError::BadValue {
        field,
        message: format!(
            "\"{}\" is not a SHA-256 in 64 lower-case hex digits",
            crate::text::show(s)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn sample() -> Record {
        let details = Value::parse(br#"{"pem": "-----BEGIN\nabc\n-----END\n", "n": 3}"#).unwrap();
        Record::new(
            0,
            t("2026-11-23T04:00:00Z"),
            "administrator",
            Some("1"),
            "begin",
            details,
            GENESIS_PREV,
        )
    }

    #[test]
    fn timestamps_are_strict_utc_seconds() {
        assert_eq!(
            t("2026-02-28T23:59:59Z").to_string(),
            "2026-02-28T23:59:59Z"
        );
        for bad in [
            "2026-02-28T23:59:59",
            "2026-02-28T23:59:59.5Z",
            "2026-02-28t23:59:59Z",
            "2026-02-28T23:59:59+00:00",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            " 2026-01-01T00:00:00Z",
            "+2026-01-01T00:00:0Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
        assert!(t("2026-01-01T00:00:00Z") < t("2026-01-01T00:00:01Z"));
        let dt = time::macros::datetime!(2026-05-01 12:30:15.75 +02:00);
        assert_eq!(
            Timestamp::from_datetime(dt).unwrap().to_string(),
            "2026-05-01T10:30:15Z"
        );
    }

    #[test]
    fn line_round_trips_and_stays_on_one_line() {
        let r = sample();
        let line = r.to_line();
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(line.contains(r#"-----BEGIN\nabc"#));
        assert!(line.starts_with(r#"{"action":"begin","actor":"administrator","details":"#));
        let back = Record::parse_line(line.trim_end_matches('\n').as_bytes()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn hash_is_over_canonical_body_without_hash() {
        let r = sample();
        let body = Value::Object(r.body());
        assert_eq!(r.hash, sha256(&body.canonical_bytes()));
        // Canonical bytes carry the raw newline; the line carries "\n" escaped.
        assert!(body.canonical_bytes().contains(&b'\n'));
        assert!(!body.canonical_bytes().windows(4).any(|w| w == b"hash"));
    }

    #[test]
    fn parse_refuses_each_kind_of_bad_line() {
        let good = sample().to_line();
        let good = good.trim_end();
        type Expect = fn(&RecordError) -> bool;
        let cases: Vec<(String, Expect)> = vec![
            ("{".into(), |e| matches!(e, RecordError::NotJson { .. })),
            (
                good.replacen(r#""n":3"#, r#""n":3,"n":4"#, 1),
                |e| matches!(e, RecordError::DuplicateMember { name, .. } if name == "n"),
            ),
            ("[1]".into(), |e| {
                matches!(e, RecordError::NotObject("array"))
            }),
            (
                good.replacen(r#""seq":0,"#, r#""seq":0,"seq":0,"#, 1),
                |e| matches!(e, RecordError::DuplicateMember { name, .. } if name == "seq"),
            ),
            (good.replacen(r#""seq":0,"#, "", 1), |e| {
                matches!(e, RecordError::MissingField("seq"))
            }),
            (good.replacen(r#""seq":0"#, r#""seq":"0""#, 1), |e| {
                matches!(e, RecordError::WrongType { field: "seq", .. })
            }),
            (good.replacen(r#""seq":0"#, r#""seq":-1"#, 1), |e| {
                matches!(e, RecordError::BadValue { field: "seq", .. })
            }),
            (
                good.replacen(r#""seq":0"#, r#""seq":0,"zz":1"#, 1),
                |e| matches!(e, RecordError::UnknownField(f) if f == "zz"),
            ),
            (good.replacen("04:00:00Z", "04:00:00.1Z", 1), |e| {
                matches!(e, RecordError::BadValue { field: "time", .. })
            }),
            (good.replacen(r#""prev":"00"#, r#""prev":"0A"#, 1), |e| {
                matches!(e, RecordError::BadValue { field: "prev", .. })
            }),
            (good.replacen(r#""seq":0,"#, r#""seq": 0,"#, 1), |e| {
                matches!(e, RecordError::NotCompact)
            }),
            (good.replacen("administrator", "adminlstrator", 1), |e| {
                matches!(e, RecordError::HashMismatch { .. })
            }),
        ];
        for (line, ok) in cases {
            let err = Record::parse_line(line.as_bytes()).unwrap_err();
            assert!(ok(&err), "{line}\n{err:?}");
        }
    }

    #[test]
    fn secret_like_members_are_found_anywhere_in_details() {
        for (json, path) in [
            (r#"{"pin": "1234"}"#, "details.pin"),
            (r#"{"token": {"SO-PIN": "x"}}"#, "details.token.SO-PIN"),
            (r#"{"a": [1, {"Password": ""}]}"#, "details.a[1].Password"),
            (r#"{"secret": null}"#, "details.secret"),
        ] {
            let v = Value::parse(json.as_bytes()).unwrap();
            assert_eq!(find_secret(&v, "details").as_deref(), Some(path));
            let mut r = sample();
            r.details = v;
            r.hash = r.compute_hash();
            let line = r.to_line();
            assert_eq!(
                Record::parse_line(line.trim_end().as_bytes()),
                Err(RecordError::SecretField { path: path.into() })
            );
        }
        let fine = Value::parse(br#"{"pin_entered": true, "secrets": 0, "pins": []}"#).unwrap();
        assert_eq!(find_secret(&fine, "details"), None);
    }

    fn text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(
            prop_oneof![
                (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap_or(' ')),
                Just('"'),
                Just('\\'),
                Just('\u{2028}'),
                Just('\u{2029}'),
                Just('\u{7f}'),
                Just('\u{feff}'),
                any::<char>(),
            ],
            0..8,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    fn details() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| Value::Int(i128::from(i))),
            any::<u64>().prop_map(|i| Value::Int(i128::from(i))),
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec((text(), inner), 0..5)
                    .prop_map(|e| Value::Object(Map::from_entries(e))),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(300))]

        /// Any details, actor and step (control characters, line separators, quotes, any
        /// Unicode) make exactly one line that reads back as the same record with the same hash.
        #[test]
        fn any_record_is_one_line_and_reads_back(
            d in details(),
            actor in text(),
            step in proptest::option::of(text()),
        ) {
            let actor = format!("a{actor}");
            let step = step.map(|s| format!("s{s}"));
            let r = Record::new(7, t("2026-11-23T04:00:00Z"), &actor, step.as_deref(), "note", d, [9; 32]);
            let line = r.to_line();
            proptest::prop_assert_eq!(line.bytes().filter(|b| *b == b'\n').count(), 1);
            proptest::prop_assert!(line.ends_with('\n'));
            let back = Record::parse_line(line.trim_end_matches('\n').as_bytes());
            match find_secret(&r.details, "details") {
                None => proptest::prop_assert_eq!(back, Ok(r)),
                Some(path) => proptest::prop_assert_eq!(back, Err(RecordError::SecretField { path })),
            }
        }
    }

    #[test]
    fn field_values_are_checked() {
        let mut r = sample();
        r.action = "Sign".into();
        assert!(matches!(
            r.check_fields(),
            Err(RecordError::BadValue {
                field: "action",
                ..
            })
        ));
        let mut r = sample();
        r.actor.clear();
        assert!(r.check_fields().is_err());
        let mut r = sample();
        r.step = Some(String::new());
        assert!(r.check_fields().is_err());
    }
}
