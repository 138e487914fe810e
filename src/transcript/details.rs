//! Typed `details` of the records the transcript layer itself gives meaning to: `begin` (the
//! first record) and `resume` (after a restart). `seal` and `seal-signature` are in
//! [`super::seal`]. Other actions' details belong to the ceremony engine.

use crate::tuf::canonical::{Map, Value};
use crate::tuf::parse::{FieldError, Fields, index_path};

use super::record::{Digest, parse_digest};

/// A file named with its SHA-256 and length (inputs in `begin`, artifacts in `seal`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// File name (a relative path with `/` separators, no `.` or `..` components).
    pub name: String,
    /// SHA-256 of the file's bytes.
    pub sha256: Digest,
    /// Length in bytes.
    pub length: u64,
}

impl FileDigest {
    /// Name, hash and length of `bytes`.
    pub fn of(name: &str, bytes: &[u8]) -> FileDigest {
        FileDigest {
            name: name.to_string(),
            sha256: super::record::sha256(bytes),
            length: bytes.len() as u64,
        }
    }

    /// As JSON: `{"length": N, "name": "...", "sha256": "hex"}`.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), self.name.clone().into());
        m.insert("sha256".into(), hex::encode(self.sha256).into());
        m.insert("length".into(), Value::from(self.length));
        Value::Object(m)
    }

    /// Read from JSON at `path`; unknown members are refused.
    pub fn from_value(v: Value, path: &str) -> Result<FileDigest, FieldError> {
        let mut f = Fields::new(v, path)?;
        let name = f.string("name")?;
        if !is_safe_relative_name(&name) {
            return Err(FieldError::new(
                f.child("name"),
                format!(
                    "\"{}\" is not a plain relative file name (no leading '/', no '.' or '..' components, no backslash)",
                    crate::text::show(&name)
                ),
            ));
        }
        let sha = f.string("sha256")?;
        let sha256 = parse_digest(&sha).ok_or_else(|| {
            FieldError::new(
                f.child("sha256"),
                "not a SHA-256 in 64 lower-case hex digits",
            )
        })?;
        let length = f.u64("length")?;
        no_rest(f)?;
        Ok(FileDigest {
            name,
            sha256,
            length,
        })
    }
}

/// A relative name that cannot leave the folder it is looked up in.
pub fn is_safe_relative_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && !name.chars().any(char::is_control)
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The ceremony script as the first record carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptRef {
    /// The script's name (e.g. `bootstrap-root`).
    pub name: String,
    /// SHA-256 of the script file's bytes.
    pub sha256: Digest,
    /// The script text itself, when carried in the transcript (otherwise it is exported beside
    /// the transcript and checked against `sha256`).
    pub text: Option<String>,
}

/// `details` of the first record (action `begin`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BeginDetails {
    /// The script that runs.
    pub script: ScriptRef,
    /// The Conclave version that wrote the transcript.
    pub conclave_version: String,
    /// Hashes of the ceremony's inputs (metadata, keys on the input media).
    pub inputs: Vec<FileDigest>,
    /// Anything else the engine records at the start (parameters, people expected, ...).
    pub extra: Map,
}

impl BeginDetails {
    /// Start a transcript for `script_bytes`, carrying the script text when `embed` is true,
    /// with this build's version.
    pub fn new(
        script_name: &str,
        script_bytes: &[u8],
        embed: bool,
        inputs: Vec<FileDigest>,
    ) -> Self {
        BeginDetails {
            script: ScriptRef {
                name: script_name.to_string(),
                sha256: super::record::sha256(script_bytes),
                text: embed.then(|| String::from_utf8_lossy(script_bytes).into_owned()),
            },
            conclave_version: env!("CARGO_PKG_VERSION").to_string(),
            inputs,
            extra: Map::new(),
        }
    }

    /// As JSON.
    pub fn to_value(&self) -> Value {
        let mut script = Map::new();
        script.insert("name".into(), self.script.name.clone().into());
        script.insert("sha256".into(), hex::encode(self.script.sha256).into());
        if let Some(text) = &self.script.text {
            script.insert("text".into(), text.clone().into());
        }
        let mut m = self.extra.clone();
        m.insert("script".into(), Value::Object(script));
        m.insert(
            "conclave_version".into(),
            self.conclave_version.clone().into(),
        );
        m.insert(
            "inputs".into(),
            Value::Array(self.inputs.iter().map(FileDigest::to_value).collect()),
        );
        Value::Object(m)
    }

    /// Read from the first record's details (at JSON path `path`).
    pub fn from_value(v: Value, path: &str) -> Result<BeginDetails, FieldError> {
        let mut f = Fields::new(v, path)?;
        let mut s = f.object("script")?;
        let name = s.string("name")?;
        let sha = s.string("sha256")?;
        let sha256 = parse_digest(&sha).ok_or_else(|| {
            FieldError::new(
                s.child("sha256"),
                "not a SHA-256 in 64 lower-case hex digits",
            )
        })?;
        let text = s.opt_string("text")?;
        if let Some(text) = &text
            && super::record::sha256(text.as_bytes()) != sha256
        {
            return Err(FieldError::new(
                s.child("text"),
                "the script text does not hash to script.sha256",
            ));
        }
        no_rest(s)?;
        let conclave_version = f.string("conclave_version")?;
        let inputs_path = f.child("inputs");
        let inputs = f
            .array("inputs")?
            .into_iter()
            .enumerate()
            .map(|(i, v)| FileDigest::from_value(v, &index_path(&inputs_path, i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BeginDetails {
            script: ScriptRef { name, sha256, text },
            conclave_version,
            inputs,
            extra: f.rest(),
        })
    }
}

/// `details` of a `resume` record: what was cut off the end of the file before continuing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeDetails {
    /// Bytes of a torn last line that were discarded (0 when the file ended cleanly).
    pub discarded_bytes: u64,
    /// SHA-256 of the discarded bytes.
    pub discarded_sha256: Digest,
}

impl ResumeDetails {
    /// As JSON.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("discarded_bytes".into(), Value::from(self.discarded_bytes));
        m.insert(
            "discarded_sha256".into(),
            hex::encode(self.discarded_sha256).into(),
        );
        Value::Object(m)
    }

    /// Read from a `resume` record's details.
    pub fn from_value(v: Value, path: &str) -> Result<ResumeDetails, FieldError> {
        let mut f = Fields::new(v, path)?;
        let discarded_bytes = f.u64("discarded_bytes")?;
        let sha = f.string("discarded_sha256")?;
        let discarded_sha256 = parse_digest(&sha).ok_or_else(|| {
            FieldError::new(
                f.child("discarded_sha256"),
                "not a SHA-256 in 64 lower-case hex digits",
            )
        })?;
        no_rest(f)?;
        Ok(ResumeDetails {
            discarded_bytes,
            discarded_sha256,
        })
    }
}

/// Refuse members that were not read.
pub(crate) fn no_rest(f: Fields) -> Result<(), FieldError> {
    let path = f.path().to_string();
    let rest = f.rest();
    match rest.keys().next() {
        None => Ok(()),
        Some(k) => Err(FieldError::new(
            crate::tuf::parse::member_path(&path, k),
            "unknown field",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_round_trips_and_checks_the_script_text() {
        let mut b = BeginDetails::new(
            "bootstrap-root",
            b"name = \"bootstrap-root\"\n",
            true,
            vec![FileDigest::of("1.root.json", b"{}")],
        );
        b.extra.insert("threshold".into(), Value::from(2u64));
        let v = b.to_value();
        assert_eq!(BeginDetails::from_value(v.clone(), "details").unwrap(), b);
        assert_eq!(b.conclave_version, env!("CARGO_PKG_VERSION"));

        let mut tampered = v.as_object().unwrap().clone();
        let mut script = tampered.get("script").unwrap().as_object().unwrap().clone();
        script.insert("text".into(), "name = \"other\"\n".into());
        tampered.insert("script".into(), Value::Object(script));
        let err = BeginDetails::from_value(Value::Object(tampered), "details").unwrap_err();
        assert_eq!(err.path, "details.script.text");
    }

    #[test]
    fn file_names_cannot_leave_the_folder() {
        for good in ["1.root.json", "metadata/2.root.json", "SHA256SUMS"] {
            assert!(is_safe_relative_name(good), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a\\b",
            "a\nb",
            "a/",
        ] {
            assert!(!is_safe_relative_name(bad), "{bad}");
        }
        let v = Value::parse(br#"{"name":"../x","sha256":"00","length":1}"#).unwrap();
        assert_eq!(
            FileDigest::from_value(v, "details.artifacts[0]")
                .unwrap_err()
                .path,
            "details.artifacts[0].name"
        );
    }

    #[test]
    fn resume_round_trips_and_refuses_unknown_members() {
        let r = ResumeDetails {
            discarded_bytes: 17,
            discarded_sha256: [7; 32],
        };
        assert_eq!(
            ResumeDetails::from_value(r.to_value(), "details").unwrap(),
            r
        );
        let mut m = r.to_value().as_object().unwrap().clone();
        m.insert("why".into(), "x".into());
        assert_eq!(
            ResumeDetails::from_value(Value::Object(m), "details")
                .unwrap_err()
                .path,
            "details.why"
        );
    }
}
