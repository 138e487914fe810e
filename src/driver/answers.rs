//! The answers file of `conclave ceremony run` (the headless runner's input: people, parameter
//! values, tokens, never PINs) and the PIN lines on standard input, read and checked where they
//! enter: every mistake names the file (or input line) and the field.

use std::path::{Path, PathBuf};

use crate::ceremony::engine::ParamJson;
use crate::folder::read_limited;
use crate::signer::pkcs11::PivSlot;

use super::scripts::MAX_SCRIPT;

/// Why the answers file or the PIN lines were not taken.
#[derive(Debug, thiserror::Error)]
pub enum AnswersError {
    /// The file or standard input could not be read.
    #[error("{0}")]
    Unreadable(String),
    /// The content is not what a ceremony takes (the message names file or line and field).
    #[error("{0}")]
    Invalid(String),
}

/// An answers file (TOML).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    /// Practice tokens (the air-gap check then warns instead of stopping).
    #[serde(default)]
    pub practice: bool,
    /// Who is in the room.
    pub people: AnswerPeople,
    /// The script's parameter values as written (integers or strings).
    #[serde(default)]
    pub parameters: std::collections::BTreeMap<String, toml::Value>,
    /// The same values checked by [`read_answers`] (each an integer or a string), as the
    /// ceremony's plan takes them.
    #[serde(skip)]
    pub values: std::collections::BTreeMap<String, ParamJson>,
    /// Recorded at acknowledgement steps that record text.
    pub acknowledgement: String,
    /// The time a reference clock (a phone, a radio clock) shows, `YYYY-MM-DD HH:MM` UTC: the
    /// clock step checks the machine clock against it. Required unless `practice`.
    pub reference_time: Option<String>,
    /// Keyholder to token label or serial.
    #[serde(default)]
    pub tokens: std::collections::BTreeMap<String, String>,
    /// PKCS#11 module.
    pub module: Option<PathBuf>,
    /// A folder on removable media that receives the export too (besides `WORKSPACE/export/`).
    pub export_to: Option<PathBuf>,
    /// The key-event log's name, when this ceremony starts the registry's log (otherwise the
    /// previous log comes on the input media as `WORKSPACE/input/log`).
    pub log_origin: Option<String>,
    /// Keyholders whose token cannot be used, with the reason (`carol = "token does not
    /// start"`): skipped at the signing step and at the seal, each skip recorded.
    #[serde(default)]
    pub skip: std::collections::BTreeMap<String, String>,
    /// Keyholders who do not sign the seal, with the reason, also once the seal is written
    /// (`carol = "token died after the seal was written"`): skipped before the seal; withdrawn
    /// from a seal written before an interruption that lists them, and a new seal listing the
    /// others written, each recorded.
    #[serde(default)]
    pub withdraw: std::collections::BTreeMap<String, String>,
    /// Close signing as soon as every threshold is met (keyholders not asked yet do not sign).
    #[serde(default)]
    pub close_signing_when_met: bool,
    /// The PIV slot keys are generated in on a YubiKey (9a, 9c, 9d, 9e, 82..95; default 9c).
    pub piv_slot: Option<String>,
    /// Keyholder to PIV slot, where it differs from `piv_slot`.
    #[serde(default)]
    pub piv_slots: std::collections::BTreeMap<String, String>,
    /// The SHA-256 of the key request set the registry published before the ceremony
    /// (`sha256sum *.json | sha256sum` in the request folder, 64 hex digits): the review is
    /// approved only when the requests on the input media hash to it; required when the review
    /// opens with a summary (more than 200 lines).
    pub request_set_sha256: Option<String>,
}

/// The people of an answers file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerPeople {
    /// The ceremony administrator.
    pub administrator: String,
    /// The keyholders, in the order they sign.
    pub keyholders: Vec<String>,
    /// The witnesses.
    pub witnesses: Vec<String>,
}

/// Read and check an answers file: at most [`MAX_SCRIPT`] bytes of UTF-8 TOML, no unknown
/// field, every person's name checked, `skip` naming keyholders with a reason, the request set
/// digest as 64 lowercase hex digits.
pub fn read_answers(path: &Path) -> Result<Answers, AnswersError> {
    let bytes = read_limited(path, MAX_SCRIPT).map_err(AnswersError::Unreadable)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| AnswersError::Invalid(format!("{}: not UTF-8 text", path.display())))?;
    let answers: Answers = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(0, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        AnswersError::Invalid(format!(
            "{}:{line}: {} (answers never hold PINs: use --pin-stdin or the terminal)",
            path.display(),
            crate::text::show_message(e.message().trim())
        ))
    })?;
    check_names(path, &answers)?;
    let mut answers = answers;
    if let Some(d) = &answers.request_set_sha256 {
        let d = d.trim().to_ascii_lowercase();
        if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AnswersError::Invalid(format!(
                "{}: request_set_sha256: expected the 64 hex digits of a SHA-256, found \"{}\"",
                path.display(),
                crate::text::show(&d)
            )));
        }
        answers.request_set_sha256 = Some(d);
    }
    answers.values = parameter_values(path, &answers.parameters)?;
    Ok(answers)
}

/// The `parameters` table as the plan takes it: each value an integer or a string, else
/// refused naming the file and the parameter.
fn parameter_values(
    path: &Path,
    parameters: &std::collections::BTreeMap<String, toml::Value>,
) -> Result<std::collections::BTreeMap<String, ParamJson>, AnswersError> {
    parameters
        .iter()
        .map(|(k, v)| match v {
            toml::Value::Integer(i) => Ok((k.clone(), ParamJson::Integer(*i))),
            toml::Value::String(s) => Ok((k.clone(), ParamJson::Text(s.clone()))),
            other => Err(AnswersError::Invalid(format!(
                "{}: parameters.{}: expected an integer or a string, found {}",
                path.display(),
                crate::text::show(k),
                other.type_str()
            ))),
        })
        .collect()
}

/// The people's names of an answers file, checked where they enter (they are written into the
/// transcript and into root as key owners): see [`crate::text::check_name`].
fn check_names(path: &Path, a: &Answers) -> Result<(), AnswersError> {
    let p = &a.people;
    let mut fields = vec![("people.administrator".to_string(), p.administrator.as_str())];
    for (list, names) in [("keyholders", &p.keyholders), ("witnesses", &p.witnesses)] {
        for (i, n) in names.iter().enumerate() {
            fields.push((format!("people.{list}[{i}]"), n.as_str()));
        }
    }
    for k in a.tokens.keys() {
        fields.push((format!("tokens.{}", crate::text::show(k)), k.as_str()));
    }
    for (table, entries) in [("skip", &a.skip), ("withdraw", &a.withdraw)] {
        for (k, reason) in entries {
            fields.push((format!("{table}.{}", crate::text::show(k)), k.as_str()));
            if !p.keyholders.contains(k) {
                return Err(AnswersError::Invalid(format!(
                    "{}: {table}.{}: not one of people.keyholders",
                    path.display(),
                    crate::text::show(k)
                )));
            }
            if reason.trim().is_empty()
                || reason.chars().count() > crate::ceremony::engine::MAX_REASON_CHARS
            {
                return Err(AnswersError::Invalid(format!(
                    "{}: {table}.{}: give the reason the keyholder does not sign (1 to {} characters)",
                    path.display(),
                    crate::text::show(k),
                    crate::ceremony::engine::MAX_REASON_CHARS
                )));
            }
        }
    }
    for param in crate::ceremony::engine::NAME_LIST_PARAMS {
        if let Some(toml::Value::String(s)) = a.parameters.get(param) {
            for n in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                fields.push((format!("parameters.{param}"), n));
            }
        }
    }
    for (field, name) in fields {
        crate::text::check_name(name).map_err(|e| {
            AnswersError::Invalid(format!("{}: {field}: the name {e}", path.display()))
        })?;
    }
    Ok(())
}

/// Secrets read from standard input, by keyholder (or `keyholder@token`).
pub type Secrets = std::collections::BTreeMap<String, zeroize::Zeroizing<String>>;

/// Prefix of a standard input line giving a PIV management key instead of a PIN.
const MANAGEMENT_KEY_LINE: &str = "management-key:";

/// The PINs (`keyholder=PIN`, `keyholder@token=PIN`) and PIV management keys
/// (`management-key:keyholder=HEX`, `management-key:keyholder@token=HEX`) on standard input.
pub fn read_pins(keyholders: &[String]) -> Result<(Secrets, Secrets), AnswersError> {
    let mut pins = Secrets::new();
    let mut management_keys = Secrets::new();
    // One wiped buffer read straight from the descriptor (not through Stdin's buffer, which is
    // never wiped); each PIN is copied once, into its own wiped string.
    let input = crate::pin::read_pin_input()
        .map_err(|e| AnswersError::Unreadable(format!("reading PINs from standard input: {e}")))?;
    for (n, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((who, pin)) = line.split_once('=') else {
            return Err(AnswersError::Invalid(format!(
                "standard input line {}: expected keyholder=PIN, keyholder@token=PIN or {MANAGEMENT_KEY_LINE}keyholder=KEY",
                n + 1
            )));
        };
        // `keyholder@token=PIN`: the PIN of one of the keyholder's tokens (label or serial),
        // for a keyholder who brings two (e.g. replacing their own token in a rotation). A
        // keyholder named by a handle (`@alice`, as tuf-on-ci records owners) keeps its `@`.
        let name_of = |w: &'_ str| -> usize {
            if keyholders.iter().any(|k| k == w) {
                w.len()
            } else {
                w.char_indices()
                    .skip(1)
                    .find(|(_, c)| *c == '@')
                    .map_or(w.len(), |(i, _)| i)
            }
        };
        let is_keyholder = |w: &str| keyholders.iter().any(|k| *k == w[..name_of(w)]);
        let who = who.trim();
        let (who, into) = match who.strip_prefix(MANAGEMENT_KEY_LINE) {
            Some(rest) if !is_keyholder(who) => (rest.trim(), &mut management_keys),
            _ => (who, &mut pins),
        };
        if !is_keyholder(who) {
            let name = &who[..name_of(who)];
            return Err(AnswersError::Invalid(format!(
                "standard input line {}: \"{}\" is not a keyholder of the answers file",
                n + 1,
                crate::text::show(name)
            )));
        }
        into.insert(who.to_string(), zeroize::Zeroizing::new(pin.to_string()));
    }
    Ok((pins, management_keys))
}

/// The answers file's PIV slots: the ceremony's and each keyholder's.
pub fn piv_slots(
    path: &Path,
    one: Option<&str>,
    each: &std::collections::BTreeMap<String, String>,
    keyholders: &[String],
) -> Result<(Option<PivSlot>, std::collections::BTreeMap<String, PivSlot>), AnswersError> {
    let parse = |field: String, s: &str| {
        PivSlot::parse(s).ok_or_else(|| {
            AnswersError::Invalid(format!(
                "{}: {field}: \"{}\" is not a PIV key slot (9a, 9c, 9d, 9e or 82..95)",
                path.display(),
                crate::text::show(s)
            ))
        })
    };
    let ceremony = one.map(|s| parse("piv_slot".to_string(), s)).transpose()?;
    let mut slots = std::collections::BTreeMap::new();
    for (who, s) in each {
        let field = format!("piv_slots.{}", crate::text::show(who));
        if !keyholders.contains(who) {
            return Err(AnswersError::Invalid(format!(
                "{}: {field}: not one of people.keyholders",
                path.display()
            )));
        }
        slots.insert(who.clone(), parse(field, s)?);
    }
    Ok((ceremony, slots))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answers' parameters are checked where the file is read: integers and strings pass,
    /// anything else is refused naming the file and the parameter.
    #[test]
    fn parameters_are_integers_or_strings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answers.toml");
        let base = "acknowledgement = \"ok\"\npractice = true\n[people]\nadministrator = \"ada\"\nkeyholders = [\"alice\"]\nwitnesses = [\"wes\"]\n";
        std::fs::write(
            &path,
            format!("{base}[parameters]\nthreshold = 2\nexpiry = \"2030-01-01\"\n"),
        )
        .unwrap();
        let a = read_answers(&path).ok().unwrap();
        assert_eq!(a.values.get("threshold"), Some(&ParamJson::Integer(2)));
        assert_eq!(
            a.values.get("expiry"),
            Some(&ParamJson::Text("2030-01-01".into()))
        );
        std::fs::write(&path, format!("{base}[parameters]\nthreshold = 2.5\n")).unwrap();
        let Err(AnswersError::Invalid(m)) = read_answers(&path) else {
            panic!("a float parameter was taken");
        };
        assert!(
            m.ends_with("parameters.threshold: expected an integer or a string, found float"),
            "{m}"
        );
    }
}
