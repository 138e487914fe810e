//! The ceremony engine: a pure state machine. Its state is a fold over events (what the
//! transcript records); [`Engine::need`] says what the current step waits for, and
//! [`Engine::apply`] checks an event against the step and the policy before it is accepted. No
//! I/O happens here: tokens, files, the clock and the air-gap check are edges that produce
//! events. The headless runner, the TUI and the auditor replay the same events through the same
//! engine, so they cannot disagree.
//!
//! Every shipped kind has its proposal here: bootstrap-root (keys generated in tokens, online
//! keys imported, root v1 and targets v1, optional TAP 15 hash bins), refresh-expiry,
//! rotate-root-keys, rotate-online-keys, rotate-targets-keys and delegate-claimed-projects.

use crate::text::{check_name, show, show_message};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::script::{Action, Kind, ParamValue, Person, Script};
use crate::tuf::canonical::Value;
use crate::tuf::compat::{self, Client, Finding};
use crate::tuf::edit::{self, RoleKeys};
use crate::tuf::key::{Key, KeyId};
use crate::tuf::metadata::{
    Expires, KeyMap, Metadata, Role, RoleType, Root, Targets, key_from_value,
};
use crate::tuf::verify::{ThresholdResult, count_signatures, trust_root, update_root};

mod rstuf;
pub mod summary;
mod tuf_on_ci;
pub use rstuf::{BOOTSTRAP_SIGNATURES, MODEL_PARAM};
pub use summary::{
    ReviewSummary, SUMMARY_FIRST_ABOVE_LINES, answered_request_set, top_level_lines,
};
pub use tuf_on_ci::{EVENT_DIR, KNOWN_GOOD_DIR, SIGNATURES_DIR};

/// Something that happened in the ceremony: the `details` of a transcript record, tagged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Event {
    /// The parameter values in force (defaults of the script, or the administrator's values).
    Parameters {
        /// Name to value (integers as numbers, choices and text as strings).
        values: BTreeMap<String, ParamJson>,
        /// A practice run (rehearsal on practice tokens): a failed air-gap check becomes a
        /// warning recorded in the transcript instead of stopping the ceremony.
        #[serde(default)]
        practice: bool,
    },
    /// The administrator corrected recorded parameter values before any key was generated
    /// (and before any proposal).
    ParametersCorrected {
        /// Step id at the time.
        step: String,
        /// Name to the corrected value (the others keep theirs).
        values: BTreeMap<String, ParamJson>,
    },
    /// A person confirmed something; `value` is what they typed when the step records text.
    Acknowledged {
        /// Step id.
        step: String,
        /// Recorded text (e.g. a bag serial).
        value: Option<String>,
    },
    /// Result of the air-gap self-check.
    AirgapChecked {
        /// Step id.
        step: String,
        /// Network interfaces found other than loopback.
        interfaces: Vec<String>,
        /// Wireless or Bluetooth devices found.
        radios: Vec<String>,
    },
    /// The administrator confirmed the clock.
    ClockConfirmed {
        /// Step id.
        step: String,
        /// The confirmed time (RFC 3339 UTC); expiry dates are computed from it.
        time: String,
        /// How the time was confirmed (absent in transcripts written before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirmation: Option<ClockConfirmation>,
    },
    /// Names of the people present.
    RollCall {
        /// Step id.
        step: String,
        /// Ceremony administrator.
        administrator: String,
        /// Keyholders, in the order they act.
        keyholders: Vec<String>,
        /// Witnesses.
        witnesses: Vec<String>,
    },
    /// The current metadata, loaded from the input media and verified by the runner from the
    /// trusted root (carried whole, so the ceremony can be replayed from its transcript).
    MetadataLoaded {
        /// Step id.
        step: String,
        /// The current root file as JSON.
        root: Value,
        /// The current targets file as JSON (`null` in RSTUF's model: targets is signed online).
        targets: Value,
        /// The latest time the inputs prove (RFC 3339 UTC): the last record of the previous
        /// ceremony's sealed transcript among the inputs. The confirmed clock may not be earlier.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_before: Option<String>,
    },
    /// Developers' key requests imported from the input media (PEP 480 claimed projects).
    RequestsImported {
        /// Step id.
        step: String,
        /// The requests, each as read (`conclave-key-request` objects).
        requests: Vec<Value>,
        /// The file each request came from, with its SHA-256, in the same order (absent in
        /// transcripts written before it was recorded).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sources: Vec<RequestSource>,
    },
    /// Target files and a delegation to publish, imported from the input media
    /// (publish-targets).
    TargetsImported {
        /// Step id.
        step: String,
        /// The manifest as read (`conclave-publish-targets`).
        manifest: Value,
        /// Target path to the file's bytes (base64), for every added or replaced file.
        files: BTreeMap<String, String>,
    },
    /// An in-toto layout imported from the input media (sign-intoto-layout).
    LayoutImported {
        /// Step id.
        step: String,
        /// The layout file's text exactly as read (JSON: a metablock or a DSSE envelope).
        file: String,
    },
    /// A tuf-on-ci signing event imported from the input media (sign-tuf-on-ci-event): the
    /// event's `metadata/` folder and the known-good one whole, so the review and every CI rule
    /// are replayed from the transcript.
    EventImported {
        /// Step id.
        step: String,
        /// The event's files: path relative to its `metadata/` to the bytes (base64).
        files: BTreeMap<String, String>,
        /// The known-good `metadata/` (the main branch): path to the bytes (base64).
        known_good: BTreeMap<String, String>,
    },
    /// Public keys of online roles imported from the input media.
    KeysImported {
        /// Step id.
        step: String,
        /// Role name to TUF key object.
        keys: BTreeMap<String, Value>,
    },
    /// A key pair generated inside a keyholder's token.
    KeyGenerated {
        /// Step id.
        step: String,
        /// Whose token.
        keyholder: String,
        /// Token serial number.
        token_serial: String,
        /// What identifies the token: module, serial and label (serial numbers alone are not
        /// unique: tpm2-pkcs11 gives every token the same). Absent in older transcripts, where
        /// the serial stands for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// Firmware advisories of the device (e.g. `YSA-2024-03 (ECDSA)`), shown at key
        /// generation.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        advisories: Vec<String>,
        /// The key existed on the token before this step (a script step allowed taking it);
        /// false: generated now.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        existing: bool,
        /// The public key (TUF key object).
        key: Value,
    },
    /// The engine's proposal, with the digests of the canonical bytes to sign.
    Proposed {
        /// Step id.
        step: String,
        /// Role name to hex SHA-256 of its canonical signed bytes.
        digests: BTreeMap<String, String>,
    },
    /// The room approved the proposal with these digests.
    Approved {
        /// Step id.
        step: String,
        /// The digests read aloud (must equal the proposal's).
        digests: BTreeMap<String, String>,
        /// The room confirmed that the request set's SHA-256 (this value) matches the one the
        /// registry published before the ceremony: required for a summary-first review
        /// ([`SUMMARY_FIRST_ABOVE_LINES`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_set_sha256: Option<String>,
    },
    /// A keyholder signed one role's digest with their token.
    Signed {
        /// Step id.
        step: String,
        /// Who signed.
        keyholder: String,
        /// Role signed.
        role: String,
        /// Key id that signed.
        keyid: String,
        /// Hex signature (verified by the engine before it is accepted).
        sig: String,
    },
    /// Signing is closed (thresholds met). Keyholders who have not signed yet do not sign.
    SigningClosed {
        /// Step id.
        step: String,
    },
    /// The administrator skipped a keyholder at the signing step (their token is dead or
    /// missing): they are not asked to sign.
    SignerSkipped {
        /// Step id.
        step: String,
        /// The keyholder skipped.
        keyholder: String,
        /// Why, as the administrator said it.
        reason: String,
    },
    /// A keyholder does not sign the seal (their token is not available). Recorded after the
    /// last step, before the seal.
    SealSkipped {
        /// Step id (`end`: after the last step).
        step: String,
        /// The keyholder skipped.
        keyholder: String,
        /// Why, as the administrator said it.
        reason: String,
    },
    /// The signed result verified.
    Verified {
        /// Step id.
        step: String,
    },
    /// Files written to the export media.
    Exported {
        /// Step id.
        step: String,
        /// File name to hex SHA-256.
        files: BTreeMap<String, String>,
        /// Where (as the administrator chose it).
        destination: String,
    },
    /// The transcript was sealed.
    Sealed {
        /// Step id.
        step: String,
    },
    /// A witness recorded a deviation from the script.
    Exception {
        /// Step id at the time.
        step: String,
        /// Who recorded it.
        witness: String,
        /// What happened.
        text: String,
    },
    /// The administrator acknowledged a policy warning.
    WarningAcknowledged {
        /// Step id.
        step: String,
        /// The warning text.
        warning: String,
    },
}

/// A parameter value as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamJson {
    /// An integer.
    Integer(i64),
    /// A string.
    Text(String),
}

/// How the room confirmed the machine clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ClockConfirmation {
    /// The administrator typed the time a reference clock showed (a phone, a radio clock).
    Reference {
        /// The reference time typed (RFC 3339 UTC, whole minutes or seconds).
        reference: String,
        /// The machine time minus the reference time, in seconds (within
        /// [`CLOCK_TOLERANCE_SECONDS`] either way).
        difference_seconds: i64,
    },
    /// A practice run took the machine clock without a reference (never in a real ceremony).
    Practice,
}

/// How far (seconds, either way) the machine clock may be from the reference time the room
/// reads: five minutes.
pub const CLOCK_TOLERANCE_SECONDS: i64 = 300;

/// How far forward (seconds) the machine clock may move between the last record of an
/// interrupted ceremony and its resumption before the clock is confirmed again: 24 hours. A
/// clock that went backwards is always confirmed again.
pub const RESUME_CLOCK_ALLOWANCE_SECONDS: i64 = 24 * 3600;

/// Whether a resumed ceremony confirms its clock again: the machine clock at `now` went back
/// from `last` (the last record's time), or moved forward by more than
/// [`RESUME_CLOCK_ALLOWANCE_SECONDS`].
pub fn clock_needs_reconfirming(last: OffsetDateTime, now: OffsetDateTime) -> bool {
    let forward = (now - last).whole_seconds();
    !(0..=RESUME_CLOCK_ALLOWANCE_SECONDS).contains(&forward)
}

/// Parse a reference time as the room types it: `YYYY-MM-DD HH:MM` in UTC (a `T` instead of the
/// space, seconds, and a trailing `Z` or ` UTC` are accepted too).
pub fn parse_reference_time(text: &str) -> Result<OffsetDateTime, String> {
    let bad = || {
        format!(
            "\"{}\" is not a UTC time written YYYY-MM-DD HH:MM",
            show(text)
        )
    };
    let t = text.trim();
    let t = t
        .strip_suffix(" UTC")
        .or_else(|| t.strip_suffix('Z'))
        .unwrap_or(t);
    let (date, clock) = t
        .split_once(' ')
        .or_else(|| t.split_once('T'))
        .ok_or_else(bad)?;
    let num = |s: &str, len: usize| -> Result<u32, String> {
        if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let d: Vec<&str> = date.split('-').collect();
    let c: Vec<&str> = clock.trim().split(':').collect();
    let ([y, mo, da], [h, mi, rest @ ..]) = (d.as_slice(), c.as_slice()) else {
        return Err(bad());
    };
    let sec = match rest {
        [] => 0,
        [s] => num(s, 2)?,
        _ => return Err(bad()),
    };
    let month =
        time::Month::try_from(u8::try_from(num(mo, 2)?).map_err(|_| bad())?).map_err(|_| bad())?;
    let year = i32::try_from(num(y, 4)?).map_err(|_| bad())?;
    let day = u8::try_from(num(da, 2)?).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
    let hms = |v: u32| u8::try_from(v).map_err(|_| bad());
    let clock =
        time::Time::from_hms(hms(num(h, 2)?)?, hms(num(mi, 2)?)?, hms(sec)?).map_err(|_| bad())?;
    Ok(time::PrimitiveDateTime::new(date, clock).assume_utc())
}

/// A time difference for people: `3 days 2 h 5 min 7 s ahead` (or `behind`).
pub fn show_clock_difference(seconds: i64) -> String {
    let dir = if seconds < 0 { "behind" } else { "ahead" };
    let s = seconds.unsigned_abs();
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d} days"));
    }
    if d > 0 || h > 0 {
        parts.push(format!("{h} h"));
    }
    if d > 0 || h > 0 || m > 0 {
        parts.push(format!("{m} min"));
    }
    parts.push(format!("{s} s"));
    format!("{} {dir}", parts.join(" "))
}

impl Event {
    /// As a transcript record's details.
    pub fn to_value(&self) -> Value {
        // Serialising these plain structures to JSON cannot fail; an empty object is never
        // accepted back by `from_value`, so a failure could not go unnoticed.
        let text = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        Value::parse(&text).unwrap_or(Value::Null)
    }

    /// From a transcript record's details.
    pub fn from_value(v: &Value) -> Result<Event, EngineError> {
        let text = serde_json::to_vec(v).map_err(|e| EngineError::Event(e.to_string()))?;
        serde_json::from_slice(&text).map_err(|e| EngineError::Event(e.to_string()))
    }

    /// The transcript `action` name of this event.
    pub fn action(&self) -> &'static str {
        match self {
            Event::Parameters { .. } => "parameters",
            Event::ParametersCorrected { .. } => "parameters-corrected",
            Event::Acknowledged { .. } => "acknowledged",
            Event::AirgapChecked { .. } => "airgap-checked",
            Event::ClockConfirmed { .. } => "clock-confirmed",
            Event::RollCall { .. } => "roll-call",
            Event::KeysImported { .. } => "keys-imported",
            Event::MetadataLoaded { .. } => "metadata-loaded",
            Event::RequestsImported { .. } => "requests-imported",
            Event::KeyGenerated { .. } => "key-generated",
            Event::LayoutImported { .. } => "layout-imported",
            Event::EventImported { .. } => "event-imported",
            Event::TargetsImported { .. } => "targets-imported",
            Event::Proposed { .. } => "proposed",
            Event::Approved { .. } => "approved",
            Event::Signed { .. } => "signed",
            Event::SigningClosed { .. } => "signing-closed",
            Event::SignerSkipped { .. } => "signer-skipped",
            Event::SealSkipped { .. } => "seal-skipped",
            Event::Verified { .. } => "verified",
            Event::Exported { .. } => "exported",
            Event::Sealed { .. } => "sealed",
            Event::Exception { .. } => "exception",
            Event::WarningAcknowledged { .. } => "warning-acknowledged",
        }
    }

    /// The step id the event belongs to (`None` for the parameters).
    pub fn step_id(&self) -> Option<&str> {
        match self {
            Event::Parameters { .. } => None,
            Event::Acknowledged { step, .. }
            | Event::ParametersCorrected { step, .. }
            | Event::AirgapChecked { step, .. }
            | Event::ClockConfirmed { step, .. }
            | Event::RollCall { step, .. }
            | Event::KeysImported { step, .. }
            | Event::MetadataLoaded { step, .. }
            | Event::RequestsImported { step, .. }
            | Event::KeyGenerated { step, .. }
            | Event::LayoutImported { step, .. }
            | Event::EventImported { step, .. }
            | Event::TargetsImported { step, .. }
            | Event::Proposed { step, .. }
            | Event::Approved { step, .. }
            | Event::Signed { step, .. }
            | Event::SigningClosed { step }
            | Event::SignerSkipped { step, .. }
            | Event::SealSkipped { step, .. }
            | Event::Verified { step }
            | Event::Exported { step, .. }
            | Event::Sealed { step }
            | Event::Exception { step, .. }
            | Event::WarningAcknowledged { step, .. } => Some(step),
        }
    }
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The event does not belong to the current step.
    #[error("step {step} ({action}) cannot take a \"{event}\" event")]
    WrongEvent {
        /// Current step id.
        step: String,
        /// Its action.
        action: String,
        /// The event offered.
        event: String,
    },
    /// The event breaks the ceremony's policy (the reason says which rule).
    #[error("step {step}: {reason}")]
    Policy {
        /// Step id.
        step: String,
        /// The rule broken.
        reason: String,
    },
    /// The ceremony kind has no engine support yet.
    #[error("ceremony kind {0} is not implemented by this version of the engine")]
    Unsupported(String),
    /// Event details that cannot be read.
    #[error("event details: {0}")]
    Event(String),
    /// The ceremony is over.
    #[error("the ceremony is complete")]
    Complete,
}

/// What the current step waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// Parameter values (first event of every ceremony).
    Parameters,
    /// A person's confirmation (with typed text when `record_text`).
    Acknowledge {
        /// What to confirm.
        prompt: String,
        /// Whether text must be typed and recorded.
        record_text: bool,
    },
    /// The air-gap self-check result.
    AirgapCheck,
    /// The clock confirmation.
    ClockConfirm,
    /// Names of the people present, with the script's minimum counts.
    RollCall {
        /// Keyholders required.
        keyholders: u32,
        /// Witnesses required.
        witnesses: u32,
    },
    /// The current root and targets from the input media.
    LoadMetadata,
    /// Developers' key requests from the input media.
    ImportRequests,
    /// Target files and a delegation to publish, from the input media.
    ImportTargets,
    /// An in-toto layout from the input media (this file name).
    ImportLayout {
        /// File name on the input media.
        file: String,
    },
    /// A tuf-on-ci signing event and the known-good metadata from the input media (folder
    /// names under the input folder).
    ImportEvent {
        /// The event's `metadata/` folder.
        event: String,
        /// The known-good `metadata/` folder.
        known_good: String,
    },
    /// Online public keys for these roles from the input media.
    ImportKeys {
        /// Roles.
        roles: Vec<String>,
    },
    /// A key generated in this keyholder's token.
    GenerateKey {
        /// Whose token.
        keyholder: String,
        /// Key type to generate (`ed25519`, `ecdsa-p256`, `ecdsa-p384`).
        key_type: String,
    },
    /// The proposal: call [`Engine::proposal`] and record its digests.
    Propose,
    /// The room's approval of these digests.
    Review {
        /// Role name to hex digest.
        digests: BTreeMap<String, String>,
    },
    /// Signatures: keyholders who have not signed yet, and the meters.
    Sign {
        /// Keyholders yet to sign (in roll-call order).
        pending: Vec<String>,
        /// Per role: the count so far.
        meters: BTreeMap<String, ThresholdResult>,
    },
    /// Verification of the signed result.
    Verify,
    /// Export of these files (name, bytes).
    Export {
        /// Files to write.
        files: Vec<(String, Vec<u8>)>,
    },
    /// The seal.
    Seal,
    /// Nothing: the ceremony is complete.
    Done,
}

/// Parameters that hold keyholders' names, comma-separated; each name is checked like a name
/// at the roll call.
pub const NAME_LIST_PARAMS: [&str; 2] = ["add_keyholders", "remove_keyholders"];

/// `_type` of a developer's key request file.
pub const KEY_REQUEST_TYPE: &str = "conclave-key-request";

/// Where a key request came from: its file on the input media and the SHA-256 of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSource {
    /// File name on the input media (`requests/NAME.json`).
    pub file: String,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
}

/// SHA-256 of a request set, as anyone computes it from the files: the SHA-256 of the lines
/// `SHA256  NAME` (two spaces, one line per file, in file-name order), which is what
/// `sha256sum *.json | sha256sum` prints in the request folder. The registry publishes it before
/// the ceremony; the review shows it.
pub fn request_set_digest(sources: &[RequestSource]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for s in sources {
        h.update(format!("{}  {}\n", s.sha256, s.file).as_bytes());
    }
    hex::encode(h.finalize())
}

/// A developer's request to sign their own project (PEP 480 "claimed" project).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRequest {
    /// Project name (becomes the delegated role's name).
    pub project: String,
    /// Target path patterns the project's keys may sign (all under `PROJECT/`).
    pub paths: Vec<String>,
    /// Signatures required.
    pub threshold: u64,
    /// The developers' public keys.
    pub keys: Vec<Key>,
}

impl KeyRequest {
    /// Read and check a request: project name usable as a role name, paths inside the project,
    /// keys usable and distinct, threshold reachable.
    pub fn from_value(v: &Value) -> Result<KeyRequest, String> {
        use crate::tuf::parse::Fields;
        let mut f = Fields::new(v.clone(), "$").map_err(|e| e.to_string())?;
        let ty = f.string("_type").map_err(|e| e.to_string())?;
        if ty != KEY_REQUEST_TYPE {
            return Err(format!(
                "$._type: expected \"{KEY_REQUEST_TYPE}\", found \"{ty}\""
            ));
        }
        let project = f.string("project").map_err(|e| e.to_string())?;
        let paths = f
            .opt_string_array("paths")
            .map_err(|e| e.to_string())?
            .ok_or("$.paths: required field is missing")?;
        let threshold = f.u64("threshold").map_err(|e| e.to_string())?;
        let keys_path = f.child("keys");
        let keys = f
            .array("keys")
            .map_err(|e| e.to_string())?
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                key_from_value(k, &format!("{keys_path}[{i}]")).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<Key>, String>>()?;
        let ok_name = !project.is_empty()
            && project
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !project.starts_with('.');
        if !ok_name {
            return Err(format!(
                "$.project: \"{project}\" is not a usable project name"
            ));
        }
        if paths.is_empty() {
            return Err("$.paths: at least one path pattern".into());
        }
        let prefix = format!("{project}/");
        if let Some(p) = paths
            .iter()
            .find(|p| !p.starts_with(&prefix) || p.contains(".."))
        {
            return Err(format!(
                "$.paths: \"{p}\" is not inside the project (\"{prefix}...\")"
            ));
        }
        let mut materials = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            // The owner is written into targets as the developer's name: checked like a
            // person's name.
            if let Some(o) = k.unrecognized.get(OWNER_FIELD) {
                let o = o
                    .as_str()
                    .ok_or_else(|| format!("$.keys[{i}].{OWNER_FIELD}: expected a string"))?;
                check_name(o).map_err(|e| format!("$.keys[{i}].{OWNER_FIELD}: the owner {e}"))?;
            }
            let m = k
                .public_key()
                .map_err(|e| format!("$.keys[{i}]: {e}"))?
                .material();
            if materials.contains(&m) {
                return Err(format!("$.keys[{i}]: the same key is listed twice"));
            }
            materials.push(m);
        }
        if threshold < 1 || threshold > keys.len() as u64 {
            return Err(format!(
                "$.threshold: {threshold} is not between 1 and the {} key(s)",
                keys.len()
            ));
        }
        Ok(KeyRequest {
            project,
            paths,
            threshold,
            keys,
        })
    }
}

/// The parameter naming the clients the registry accepts losing (comma-separated profile
/// names: `python-tuf`, `tough`, `tuf-js`, `go-tuf`). Whatever a client profile rejects is
/// refused unless every client that rejects it is named here; what is accepted this way is shown
/// on the review and recorded in the transcript.
pub const ACCEPT_CLIENT_LOSS: &str = "accept_client_loss";

/// Keys the proposal adds (not in the current root or delegations) whose key id is not the
/// SHA-256 of their key object: a refusal, whatever the parameters say (tough refuses the whole
/// file, and a published root once broke every tough-based client this way). Keys carried
/// forward from the current metadata are the client profiles' business.
pub fn added_key_id_mismatches(current: Option<&Current>, p: &Proposal) -> Vec<String> {
    let known = |id: &KeyId| {
        current.is_some_and(|(r, t)| {
            r.signed().key(id).is_some()
                || t.as_ref()
                    .and_then(|t| t.signed().delegations.as_ref())
                    .is_some_and(|d| d.key(id).is_some())
        })
    };
    let mut out = Vec::new();
    let mut check = |where_: &str, keys: &[(KeyId, Key)]| {
        for (id, k) in keys {
            if !known(id) && k.key_id() != *id {
                out.push(format!(
                    "{where_}: the ceremony adds key {}, which is not the SHA-256 of its key ({}): tough refuses such metadata",
                    show(&id.0),
                    k.key_id()
                ));
            }
        }
    };
    if let Some(r) = &p.root {
        check("root", &r.signed().keys);
    }
    if let Some(d) = p
        .targets
        .as_ref()
        .and_then(|t| t.signed().delegations.as_ref())
    {
        check("targets delegations", &d.keys);
    }
    out
}

/// What the client profiles find in a proposal: ("root" or "targets", finding).
pub fn proposal_findings(p: &Proposal) -> Vec<(&'static str, Finding)> {
    let mut out = Vec::new();
    if let Some(r) = &p.root {
        out.extend(
            compat::check_root(r.signed())
                .into_iter()
                .map(|f| ("root", f)),
        );
    }
    if let Some(t) = &p.targets {
        out.extend(
            compat::check_targets(t.signed())
                .into_iter()
                .map(|f| ("targets", f)),
        );
    }
    out
}

/// The line the review shows and the transcript records for a loss the registry accepted:
/// "tough and tuf-js clients will reject this root: FIELD: PROBLEM".
pub fn accepted_loss_line(role: &str, f: &Finding) -> String {
    let what = if role == "root" {
        "this root".to_string()
    } else {
        format!("this {role} metadata")
    };
    format!(
        "{} clients will reject {what}: {}: {} (accepted in {ACCEPT_CLIENT_LOSS})",
        compat::client_list(&f.clients),
        f.field,
        f.problem
    )
}

/// One role's keys before and after a ceremony.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleKeyTable {
    /// Role name (top-level, or "NAME (delegated by targets)").
    pub role: String,
    /// Threshold before the ceremony (`None`: the role did not exist).
    pub threshold_before: Option<u64>,
    /// Threshold after it (`None`: the role is gone).
    pub threshold_after: Option<u64>,
    /// Keys of the role before or after.
    pub keys: Vec<KeyRow>,
}

/// One key of a role, before and after a ceremony.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRow {
    /// Key id.
    pub keyid: String,
    /// Signature scheme.
    pub scheme: String,
    /// Keyholder who owns it (`x-tuf-on-ci-keyowner`), when recorded.
    pub owner: Option<String>,
    /// Listed for the role before.
    pub before: bool,
    /// Listed for the role after.
    pub after: bool,
}

/// The metadata a ceremony proposes, as built from its events.
#[derive(Clone, Debug)]
pub struct Proposal {
    /// The in-toto layout being signed (sign-intoto-layout), with the signatures so far.
    pub layout: Option<crate::intoto::LayoutFile>,
    /// The new root, if the ceremony changes root.
    pub root: Option<Metadata<Root>>,
    /// The new targets, if the ceremony changes targets.
    pub targets: Option<Metadata<Targets>>,
    /// The roles a tuf-on-ci signing event changes (sign-tuf-on-ci-event), with the signatures
    /// so far; empty for every other kind.
    pub tuf_on_ci: Vec<crate::tuf::tuf_on_ci::ChangedRole>,
}

impl Proposal {
    /// Role name to hex SHA-256 of its canonical signed bytes (what is reviewed and signed).
    pub fn digests(&self) -> BTreeMap<String, String> {
        let mut d = BTreeMap::new();
        if let Some(l) = &self.layout {
            use sha2::Digest;
            d.insert(
                "layout".into(),
                hex::encode(sha2::Sha256::digest(l.signed_message())),
            );
        }
        if let Some(r) = &self.root {
            d.insert("root".into(), hex::encode(r.signed_digest()));
        }
        if let Some(t) = &self.targets {
            d.insert("targets".into(), hex::encode(t.signed_digest()));
        }
        tuf_on_ci::digests(&self.tuf_on_ci, &mut d);
        d
    }
}

/// The metadata a ceremony loads: the current root and targets (none in RSTUF's model, whose
/// targets are signed online).
pub type Current = (Metadata<Root>, Option<Metadata<Targets>>);

/// The engine state: a fold over the events so far.
#[derive(Clone, Debug)]
pub struct Engine {
    script: Script,
    params: BTreeMap<String, ParamValue>,
    have_params: bool,
    practice: bool,
    step: usize,
    clock: Option<OffsetDateTime>,
    /// The clock is confirmed again before anything else (a resumed ceremony whose machine
    /// clock went back or jumped forward since the last record).
    reconfirm_clock: bool,
    keyholders: Vec<String>,
    online: BTreeMap<String, Key>,
    current: Option<Current>,
    requests: Vec<KeyRequest>,
    request_sources: Vec<RequestSource>,
    layout: Option<crate::intoto::LayoutFile>,
    /// The imported tuf-on-ci signing event, reviewed (sign-tuf-on-ci-event).
    tuf_on_ci: Option<Box<tuf_on_ci::ImportedEvent>>,
    publication: Option<super::publish::Publication>,
    generated: Vec<(String, String, Key)>,
    proposal: Option<Proposal>,
    approved: bool,
    signed_by: Vec<String>,
    signers: Vec<(String, String)>,
    /// Keyholders skipped at the signing step, with the reason.
    signing_skipped: Vec<(String, String)>,
    /// Keyholders who do not sign the seal, with the reason.
    seal_skipped: Vec<(String, String)>,
    exceptions: Vec<(String, String, String)>,
}

/// The longest reason recorded for skipping a keyholder.
pub const MAX_REASON_CHARS: usize = 300;

/// The script parameter (a choice of `no` and `yes`) that lets a new root or targets version
/// expire no later than the one it replaces.
pub const ALLOW_EARLIER_EXPIRY: &str = "allow_earlier_expiry";

/// The custom field naming a key's owner in root (the one tuf-on-ci writes, so both tools show
/// the same owners).
pub const OWNER_FIELD: &str = "x-tuf-on-ci-keyowner";

/// A keyholder's key as the ceremony writes it into root: the token's public key with its owner.
pub fn owned_key(key: &Key, keyholder: &str) -> Key {
    let mut k = key.clone();
    k.unrecognized.insert(
        OWNER_FIELD.to_string(),
        Value::String(keyholder.to_string()),
    );
    k
}

/// The owner recorded in a key object, if any.
pub fn key_owner(key: &Key) -> Option<&str> {
    key.unrecognized
        .get(OWNER_FIELD)
        .or_else(|| key.unrecognized.get(crate::tuf::rstuf::KEY_NAME_FIELD))
        .and_then(Value::as_str)
}

/// Thresholds against the keyholders present: no root or targets threshold above their
/// number.
fn threshold_rule(params: &BTreeMap<String, ParamValue>, keyholders: usize) -> Result<(), String> {
    for name in ["root_threshold", "targets_threshold"] {
        let t = int_param(params, name);
        if t > keyholders as i64 {
            return Err(format!(
                "{name} = {t} is more than the {keyholders} keyholders present"
            ));
        }
    }
    Ok(())
}

fn int_param(params: &BTreeMap<String, ParamValue>, name: &str) -> i64 {
    match params.get(name) {
        Some(ParamValue::Integer(i)) => *i,
        _ => 0,
    }
}

impl Engine {
    /// A new ceremony for `script`; the kind must be one the engine implements.
    pub fn new(script: Script) -> Result<Engine, EngineError> {
        if !matches!(
            script.kind,
            Kind::BootstrapRoot
                | Kind::RefreshExpiry
                | Kind::RotateRootKeys
                | Kind::RotateOnlineKeys
                | Kind::RotateTargetsKeys
                | Kind::DelegateClaimedProjects
                | Kind::SignIntotoLayout
                | Kind::PublishTargets
                | Kind::SignTufOnCiEvent
        ) {
            return Err(EngineError::Unsupported(script.kind.as_str().to_string()));
        }
        let params = script
            .parameters
            .iter()
            .map(|p| (p.name.clone(), p.default.clone()))
            .collect();
        Ok(Engine {
            script,
            params,
            have_params: false,
            practice: false,
            step: 0,
            clock: None,
            reconfirm_clock: false,
            keyholders: Vec::new(),
            online: BTreeMap::new(),
            current: None,
            requests: Vec::new(),
            request_sources: Vec::new(),
            layout: None,
            tuf_on_ci: None,
            publication: None,
            generated: Vec::new(),
            proposal: None,
            approved: false,
            signed_by: Vec::new(),
            signers: Vec::new(),
            signing_skipped: Vec::new(),
            seal_skipped: Vec::new(),
            exceptions: Vec::new(),
        })
    }

    /// Replay events (e.g. from a transcript after a power cut).
    pub fn replay(script: Script, events: &[Event]) -> Result<Engine, (usize, EngineError)> {
        let mut e = Engine::new(script).map_err(|err| (0, err))?;
        for (i, ev) in events.iter().enumerate() {
            e.apply(ev).map_err(|err| (i, err))?;
        }
        Ok(e)
    }

    /// The script.
    pub fn script(&self) -> &Script {
        &self.script
    }

    /// The current step's id, if any step remains.
    pub fn current_step(&self) -> Option<&str> {
        self.script.steps.get(self.step).map(|s| s.id.as_str())
    }

    /// Exceptions recorded so far (step, witness, text).
    pub fn exceptions(&self) -> &[(String, String, String)] {
        &self.exceptions
    }

    /// The parameter values in force (the script's defaults until values are recorded).
    pub fn parameters(&self) -> &BTreeMap<String, ParamValue> {
        &self.params
    }

    /// Keyholders skipped at the signing step, with the reason recorded.
    pub fn signing_skipped(&self) -> &[(String, String)] {
        &self.signing_skipped
    }

    /// Keyholders who do not sign the seal, with the reason recorded.
    pub fn seal_skipped(&self) -> &[(String, String)] {
        &self.seal_skipped
    }

    /// Whether this is a practice run.
    pub fn is_practice(&self) -> bool {
        self.practice
    }

    /// Keys generated so far: keyholder, token serial, key.
    pub fn generated_keys(&self) -> &[(String, String, Key)] {
        &self.generated
    }

    /// An integer parameter in force (0 when the script has no such integer parameter).
    pub fn int_parameter(&self, name: &str) -> i64 {
        int_param(&self.params, name)
    }

    /// The keyholders from the roll call.
    pub fn keyholders(&self) -> &[String] {
        &self.keyholders
    }

    /// The proposal, once keys and parameters allow it (built deterministically from the events).
    pub fn proposal(&self) -> Result<Proposal, EngineError> {
        // At a propose step the proposal is built (anew for a ceremony's second proposal);
        // afterwards it is the one recorded, with its signatures.
        if self.need() == Need::Propose {
            return self.build_proposal();
        }
        if let Some(p) = &self.proposal {
            return Ok(p.clone());
        }
        self.build_proposal()
    }

    fn step_id(&self) -> String {
        self.current_step().unwrap_or("end").to_string()
    }

    fn policy(&self, reason: impl Into<String>) -> EngineError {
        EngineError::Policy {
            step: self.step_id(),
            reason: reason.into(),
        }
    }

    /// What the current step waits for.
    pub fn need(&self) -> Need {
        if !self.have_params {
            return Need::Parameters;
        }
        let Some(step) = self.script.steps.get(self.step) else {
            return Need::Done;
        };
        if self.reconfirm_clock {
            return Need::ClockConfirm;
        }
        match step.action {
            Action::Acknowledge => Need::Acknowledge {
                prompt: step.with.get("prompt").cloned().unwrap_or_default(),
                record_text: step.with.get("record").is_some_and(|r| r == "text"),
            },
            Action::AirgapCheck => Need::AirgapCheck,
            Action::ClockConfirm => Need::ClockConfirm,
            Action::RollCall => Need::RollCall {
                keyholders: self
                    .script
                    .presence
                    .get(&Person::Keyholder)
                    .map_or(0, |p| p.min),
                witnesses: self
                    .script
                    .presence
                    .get(&Person::Witness)
                    .map_or(0, |p| p.min),
            },
            Action::LoadMetadata => Need::LoadMetadata,
            Action::ImportRequests => Need::ImportRequests,
            Action::ImportTargets => Need::ImportTargets,
            Action::ImportLayout => Need::ImportLayout {
                file: step
                    .with
                    .get("file")
                    .cloned()
                    .unwrap_or_else(|| "root.layout".into()),
            },
            Action::ImportEvent => tuf_on_ci::need(step),
            Action::ImportKeys => Need::ImportKeys {
                roles: step
                    .with
                    .get("roles")
                    .map(|r| r.split(',').map(|s| s.trim().to_string()).collect())
                    .unwrap_or_default(),
            },
            Action::GenerateKey => {
                let next = self
                    .keyholders_to_generate()
                    .into_iter()
                    .find(|k| !self.generated.iter().any(|(g, _, _)| g == k));
                match next {
                    Some(k) => Need::GenerateKey {
                        keyholder: k,
                        key_type: match self.params.get("key_type") {
                            Some(ParamValue::Choice(c)) => c.clone(),
                            _ => "ecdsa-p256".into(),
                        },
                    },
                    None => Need::Done,
                }
            }
            Action::Propose => Need::Propose,
            Action::Review => Need::Review {
                digests: self
                    .proposal
                    .as_ref()
                    .map(Proposal::digests)
                    .unwrap_or_default(),
            },
            Action::Sign => Need::Sign {
                pending: self
                    .keyholders
                    .iter()
                    .filter(|k| {
                        !self.signed_by.contains(k)
                            && !self.signing_skipped.iter().any(|(s, _)| s == *k)
                            && self.keyholder_may_sign(k)
                    })
                    .filter(|_| !self.rstuf_collected())
                    .cloned()
                    .collect(),
                meters: self.meters(),
            },
            Action::Verify => Need::Verify,
            Action::Export => Need::Export {
                files: self.export_files(),
            },
            Action::Seal => Need::Seal,
            // Actions of other kinds; the engine refuses those scripts in `new`.
            _ => Need::Done,
        }
    }

    /// Threshold meters of the roles being signed.
    pub fn meters(&self) -> BTreeMap<String, ThresholdResult> {
        let mut m = BTreeMap::new();
        let Some(p) = &self.proposal else {
            return m;
        };
        if self.is_tuf_on_ci() {
            return tuf_on_ci::meters(p);
        }
        if let Some(l) = &p.layout
            && p.targets.is_none()
            && let Some(r) = self.layout_meter(l)
        {
            m.insert("layout".into(), r);
        }
        if p.root.is_none()
            && let (Some(t), Some((root, _))) = (&p.targets, &self.current)
        {
            let root = root.signed();
            m.insert(
                "targets".into(),
                count_signatures(
                    |id| root.key(id),
                    root.role(RoleType::Targets),
                    t.signed_bytes(),
                    &t.signatures,
                ),
            );
        }
        if let Some(r) = &p.root {
            let root = r.signed();
            m.insert(
                "root".into(),
                count_signatures(
                    |id| root.key(id),
                    root.role(RoleType::Root),
                    r.signed_bytes(),
                    &r.signatures,
                ),
            );
            if let Some((old, _)) = &self.current {
                let old = old.signed();
                m.insert(
                    "root (by the current root)".into(),
                    count_signatures(
                        |id| old.key(id),
                        old.role(RoleType::Root),
                        r.signed_bytes(),
                        &r.signatures,
                    ),
                );
            }
            if let Some(t) = &p.targets {
                m.insert(
                    "targets".into(),
                    count_signatures(
                        |id| root.key(id),
                        root.role(RoleType::Targets),
                        t.signed_bytes(),
                        &t.signatures,
                    ),
                );
            }
        }
        m
    }

    /// The files the export step writes (consistent-snapshot names), once signed.
    pub fn export_files(&self) -> Vec<(String, Vec<u8>)> {
        if self.is_tuf_on_ci() {
            return self.tuf_on_ci_export();
        }
        let mut out = Vec::new();
        if let Some(p) = &self.proposal {
            if let Some(l) = &p.layout {
                out.push((self.layout_file_name(), l.to_file_bytes()));
            }
            if let Some(r) = &p.root {
                let v = r.signed().common.version;
                out.push((format!("{v}.root.json"), r.to_file_bytes()));
                if self.rstuf()
                    && let Ok(payload) = self.rstuf_payload(r)
                {
                    out.push(payload);
                }
            }
            if let Some(t) = &p.targets {
                out.push((
                    format!("{}.targets.json", t.signed().common.version),
                    t.to_file_bytes(),
                ));
            }
            if let Some(publication) = &self.publication {
                out.extend(publication.target_files(self.publish_sha512()));
            }
        }
        out
    }

    /// publish-targets: whether new target entries get a SHA-512 too (the current targets use it).
    fn publish_sha512(&self) -> bool {
        self.current
            .as_ref()
            .and_then(|(_, t)| t.as_ref())
            .is_some_and(|t| super::publish::uses_sha512(t.signed()))
    }

    /// publish-targets: the next targets version with the imported files added, replaced or
    /// removed, and the delegation to an online role added.
    fn build_publication(&self) -> Result<Proposal, EngineError> {
        let now = self.now()?;
        let (_, targets) = self.loaded()?;
        let publication = self
            .publication
            .as_ref()
            .ok_or_else(|| self.policy("no target files were imported"))?;
        let days = Duration::days(int_param(&self.params, "targets_expiry_days").max(1));
        let mut new_targets = edit::bump(targets.signed(), now + days);
        publication
            .apply(&mut new_targets, self.publish_sha512())
            .map_err(|e| self.policy(e))?;
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: None,
            targets: Some(Metadata::new(new_targets)),
        })
    }

    /// The signed layout's target path in targets (parameter `layout_target`).
    fn layout_target(&self) -> String {
        match self.params.get("layout_target") {
            Some(ParamValue::Text(t)) if !t.trim().is_empty() => t.trim().to_string(),
            _ => "in-toto/root.layout".to_string(),
        }
    }

    /// The exported layout file's name: the target path's last part, after the version of the
    /// targets that lists it (`2.root.layout`), so a later layout never meets an earlier file.
    fn layout_file_name(&self) -> String {
        let t = self.layout_target();
        let base = t.rsplit('/').next().unwrap_or("root.layout");
        let version = self
            .proposal
            .as_ref()
            .and_then(|p| p.targets.as_ref())
            .map(|t| t.signed().common.version);
        match version {
            Some(v) => format!("{v}.{base}"),
            None => base.to_string(),
        }
    }

    /// The layout's signatures counted against the current root's targets keys and threshold
    /// (each key once; a layout signature names the key by its plain key id).
    pub fn layout_meter(&self, layout: &crate::intoto::LayoutFile) -> Option<ThresholdResult> {
        let (root, _) = self.current.as_ref()?;
        let root = root.signed();
        let role = root.role(RoleType::Targets);
        let msg = layout.signed_message();
        let mut signed = Vec::new();
        for id in &role.keyids {
            let Some(pk) = root.key(id).and_then(|k| k.public_key().ok()) else {
                continue;
            };
            let plain = Key::from_public_key(&pk).key_id();
            let ok = layout
                .signatures()
                .iter()
                .any(|s| s.keyid == plain && pk.verify(&msg, &s.sig).is_ok());
            if ok {
                signed.push(id.clone());
            }
        }
        Some(ThresholdResult {
            threshold: role.threshold,
            signed,
            unsigned: Vec::new(),
            ignored: Vec::new(),
        })
    }

    /// sign-intoto-layout: first the imported layout alone; once the targets keyholders have
    /// signed it to the threshold, the next targets version listing the signed layout file.
    fn build_layout(&self) -> Result<Proposal, EngineError> {
        let Some(previous) = &self.proposal else {
            let layout = self
                .layout
                .clone()
                .ok_or_else(|| self.policy("no in-toto layout was imported"))?;
            return Ok(Proposal {
                layout: Some(layout),
                tuf_on_ci: Vec::new(),
                root: None,
                targets: None,
            });
        };
        let layout = previous
            .layout
            .clone()
            .ok_or_else(|| self.policy("no in-toto layout was proposed"))?;
        let meter = self
            .layout_meter(&layout)
            .ok_or_else(|| self.policy("the current metadata has not been loaded"))?;
        if !meter.verified() {
            return Err(self.policy(format!(
                "the layout has {} of {} signatures: the targets cannot list it yet",
                meter.signed.len(),
                meter.threshold
            )));
        }
        let now = self.now()?;
        let (_, targets) = self.loaded()?;
        let days = Duration::days(int_param(&self.params, "targets_expiry_days").max(1));
        let mut new_targets = edit::bump(targets.signed(), now + days);
        let mut custom = crate::tuf::canonical::Map::new();
        custom.insert("in-toto".into(), Value::String("layout".into()));
        edit::set_target(
            &mut new_targets,
            &self.layout_target(),
            edit::target_file(&layout.to_file_bytes(), Some(Value::Object(custom))),
        )
        .map_err(|e| self.policy(e.to_string()))?;
        Ok(Proposal {
            layout: Some(layout),
            tuf_on_ci: Vec::new(),
            root: None,
            targets: Some(Metadata::new(new_targets)),
        })
    }

    fn build_proposal(&self) -> Result<Proposal, EngineError> {
        match self.script.kind {
            Kind::SignIntotoLayout => return self.build_layout(),
            Kind::RefreshExpiry => return self.build_refresh(),
            Kind::RotateRootKeys => return self.build_rotation(),
            Kind::RotateOnlineKeys => return self.build_online_rotation(),
            Kind::RotateTargetsKeys => return self.build_targets_rotation(),
            Kind::DelegateClaimedProjects => return self.build_delegations(),
            Kind::PublishTargets => return self.build_publication(),
            Kind::SignTufOnCiEvent => return self.build_tuf_on_ci(),
            Kind::BootstrapRoot if self.rstuf() => return self.build_rstuf_bootstrap(),
            _ => {}
        }
        let now = self.now()?;
        let days = |name: &str| Duration::days(int_param(&self.params, name).max(1));
        let root_expires = now + days("root_expiry_days");
        let targets_expires = now + days("targets_expiry_days");
        let keys: Vec<Key> = self
            .generated
            .iter()
            .map(|(who, _, k)| self.owned(k, who))
            .collect();
        let online = |role: &str| -> Result<Key, EngineError> {
            self.online
                .get(role)
                .cloned()
                .ok_or_else(|| self.policy(format!("no {role} key was imported")))
        };
        let threshold = |name: &str| int_param(&self.params, name).max(0) as u64;
        let roles = vec![
            RoleKeys {
                role: RoleType::Root,
                keys: keys.clone(),
                threshold: threshold("root_threshold"),
            },
            RoleKeys {
                role: RoleType::Targets,
                keys,
                threshold: threshold("targets_threshold"),
            },
            RoleKeys {
                role: RoleType::Snapshot,
                keys: vec![online("snapshot")?],
                threshold: 1,
            },
            RoleKeys {
                role: RoleType::Timestamp,
                keys: vec![online("timestamp")?],
                threshold: 1,
            },
        ];
        let root = edit::new_root(&roles, root_expires).map_err(|e| self.policy(e.to_string()))?;
        let mut targets = edit::new_targets(targets_expires);
        let bins = int_param(&self.params, "hash_bins");
        if bins > 0 {
            let bits = bins.trailing_zeros();
            if bins.count_ones() != 1 || bits == 0 || bits > 32 {
                return Err(self.policy(format!(
                    "hash_bins {bins} is not a power of two between 2 and 2^32"
                )));
            }
            let key = self
                .online
                .get("bins")
                .cloned()
                .map_or_else(|| online("snapshot"), Ok)?;
            edit::set_succinct_delegation(&mut targets, "bins", bits, &[key], 1)
                .map_err(|e| self.policy(e.to_string()))?;
        }
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(Metadata::new(root)),
            targets: Some(Metadata::new(targets)),
        })
    }

    /// refresh-expiry: the next versions of the current root and targets, with new expiry and
    /// nothing else changed.
    fn build_refresh(&self) -> Result<Proposal, EngineError> {
        if self.rstuf() {
            return self.build_rstuf_refresh();
        }
        let now = self.now()?;
        let (root, targets) = self.loaded()?;
        let days = |name: &str| Duration::days(int_param(&self.params, name).max(1));
        let new_root = edit::next_root(root.signed(), now + days("root_expiry_days"));
        edit::check_root(&new_root).map_err(|e| self.policy(e.to_string()))?;
        let new_targets = edit::bump(targets.signed(), now + days("targets_expiry_days"));
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(Metadata::new(new_root)),
            targets: Some(Metadata::new(new_targets)),
        })
    }

    /// The roles a key may sign in this ceremony: root when the new or the current root's root
    /// role names it, targets when the new root's targets role names it.
    pub fn roles_for_key(&self, keyid: &KeyId) -> Vec<String> {
        let mut roles = Vec::new();
        let Some(p) = &self.proposal else {
            return roles;
        };
        if self.is_tuf_on_ci() {
            return tuf_on_ci::roles_for_key(p, keyid);
        }
        let new_root = p.root.as_ref().map(|r| r.signed());
        let old_root = self.current.as_ref().map(|(r, _)| r.signed());
        let names =
            |r: Option<&Root>, ty: RoleType| r.is_some_and(|r| r.role(ty).keyids.contains(keyid));
        if p.root.is_some() && (names(new_root, RoleType::Root) || names(old_root, RoleType::Root))
        {
            roles.push("root".to_string());
        }
        if p.targets.is_some() && names(new_root.or(old_root), RoleType::Targets) {
            roles.push("targets".to_string());
        }
        if p.layout.is_some() && p.targets.is_none() && names(old_root, RoleType::Targets) {
            roles.push("layout".to_string());
        }
        roles
    }

    /// Whether the root in force after this ceremony (the proposal's, else the loaded one)
    /// lists `keyid` for the root role.
    pub fn is_root_key_after(&self, keyid: &KeyId) -> bool {
        let (new_root, old_root) = self.roots();
        new_root
            .or(old_root)
            .is_some_and(|r| r.role(RoleType::Root).keyids.contains(keyid))
    }

    /// Every role's keys before this ceremony (the loaded metadata) and after it (the
    /// proposal, or the loaded metadata for what it does not change): the auditor's table.
    pub fn key_table(&self) -> Vec<RoleKeyTable> {
        if self.is_tuf_on_ci() {
            return self.tuf_on_ci_key_table();
        }
        let before_root = self.current.as_ref().map(|(r, _)| r.signed());
        let after_root = self
            .proposal
            .as_ref()
            .and_then(|p| p.root.as_ref())
            .map(|r| r.signed())
            .or(before_root);
        let before_targets = self
            .current
            .as_ref()
            .and_then(|(_, t)| t.as_ref())
            .map(|t| t.signed());
        let after_targets = self
            .proposal
            .as_ref()
            .and_then(|p| p.targets.as_ref())
            .map(|t| t.signed())
            .or(before_targets);
        key_table_of(before_root, after_root, before_targets, after_targets)
    }

    /// The key id under which the proposal's new root or the current root lists the key with
    /// this material (a token's public key), if either does.
    pub fn key_for_material(&self, material: &[u8]) -> Option<KeyId> {
        self.key_ids_for_material(material).into_iter().next()
    }

    /// Every key id under which the proposal's new root, the current root (or, signing a
    /// tuf-on-ci event, a changed role's delegator) lists the key with this material: a token
    /// key may be listed under several (a key id hashes the whole key, owner field included).
    pub fn key_ids_for_material(&self, material: &[u8]) -> Vec<KeyId> {
        let mut ids = self.tuf_on_ci_key_ids(material);
        let (new_root, old_root) = self.roots();
        for r in [new_root, old_root].into_iter().flatten() {
            for (id, k) in &r.keys {
                if k.public_key().is_ok_and(|p| p.material() == material) && !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
        ids
    }

    /// The review as lines people read: for each role the version and expiry change, thresholds,
    /// and every key added or removed with its type, owner and key id (the diff against the
    /// current metadata; for a bootstrap, everything is new).
    pub fn review_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Some(p) = &self.proposal else {
            return out;
        };
        if self.is_tuf_on_ci() {
            return self.tuf_on_ci_review_lines(p);
        }
        for (role, f) in proposal_findings(p) {
            out.push(accepted_loss_line(role, &f));
        }
        if let Some(l) = &p.layout {
            match l.summary() {
                Ok(sum) => {
                    let kind = match l {
                        crate::intoto::LayoutFile::Metablock { .. } => "metablock",
                        crate::intoto::LayoutFile::Dsse { .. } => "DSSE envelope",
                    };
                    out.push(format!(
                        "in-toto layout ({kind}), expires {}, {} signature(s) so far",
                        show(&sum.expires),
                        l.signatures().len()
                    ));
                    for st in &sum.steps {
                        out.push(format!(
                            "  step \"{}\": expected command \"{}\", {} of {} functionary key(s)",
                            show(&st.name),
                            show_message(&st.expected_command),
                            st.threshold,
                            st.pubkeys.len()
                        ));
                    }
                    for (name, run) in &sum.inspections {
                        out.push(format!(
                            "  inspection \"{}\": runs \"{}\"",
                            show(name),
                            show_message(run)
                        ));
                    }
                    for (id, scheme) in &sum.keys {
                        out.push(format!("  functionary key {} ({})", show(id), show(scheme)));
                    }
                }
                Err(e) => out.push(format!("in-toto layout: {}", show_message(&e.to_string()))),
            }
            if p.targets.is_some() {
                use sha2::Digest;
                let bytes = l.to_file_bytes();
                out.push(format!(
                    "targets gets {}: the signed layout, {} bytes, sha256 {}",
                    self.layout_target(),
                    bytes.len(),
                    hex::encode(sha2::Sha256::digest(&bytes))
                ));
            }
        }
        // A key is named by its key id everywhere the room reads it (the review, the signing
        // screens, the seal): one identifier, no second "fingerprint".
        let describe = |id: &KeyId, k: &Key| {
            let usable = match k.public_key() {
                Ok(_) => String::new(),
                Err(e) => format!(", unusable: {}", show_message(&e.to_string())),
            };
            let owner = key_owner(k)
                .map(|o| format!(", owner {}", show(o)))
                .unwrap_or_default();
            format!("{} ({}{owner}{usable})", show(&id.0), show(&k.scheme))
        };
        // A role's whole key set in one line: owners (or the key id's first 16 hex digits for
        // a key without one), for a rotation's "now" and "after".
        let key_set = |ids: &[KeyId], root: &Root| {
            let names: Vec<String> = ids
                .iter()
                .map(|id| match root.key(id).and_then(key_owner) {
                    Some(o) => show(o),
                    None => format!("key {}", show(&id.0.chars().take(16).collect::<String>())),
                })
                .collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        let old_root = self.current.as_ref().map(|(r, _)| r.signed());
        if let Some(r) = &p.root {
            let new = r.signed();
            match old_root {
                Some(old) => out.push(format!(
                    "root v{} -> v{}, expires {} -> {}",
                    old.common.version,
                    new.common.version,
                    show(&old.common.expires.raw),
                    show(&new.common.expires.raw)
                )),
                None => out.push(format!(
                    "root v{} (new), expires {}",
                    new.common.version,
                    show(&new.common.expires.raw)
                )),
            }
            for ty in RoleType::ALL {
                let nr = new.role(ty);
                let before = old_root.map(|o| o.role(ty));
                let thr = match before {
                    Some(o) if o.threshold != nr.threshold => {
                        format!("threshold {} -> {}", o.threshold, nr.threshold)
                    }
                    _ => format!("threshold {}", nr.threshold),
                };
                out.push(format!("  {ty}: {thr} of {} key(s)", nr.keyids.len()));
                for id in &nr.keyids {
                    if before.is_none_or(|o| !o.keyids.contains(id))
                        && let Some(k) = new.key(id)
                    {
                        out.push(format!("    + {}", describe(id, k)));
                    }
                }
                if let (Some(o), Some(old)) = (before, old_root) {
                    for id in &o.keyids {
                        if !nr.keyids.contains(id)
                            && let Some(k) = old.key(id)
                        {
                            out.push(format!("    - {}", describe(id, k)));
                        }
                    }
                    // The whole sets, not only the changes: what signs this role now and after.
                    out.push(format!("    keys now:   {}", key_set(&o.keyids, old)));
                    out.push(format!("    keys after: {}", key_set(&nr.keyids, new)));
                }
            }
        }
        if let (Some(publication), Some((_, Some(current)))) = (&self.publication, &self.current) {
            out.extend(publication.review_lines(current.signed(), self.publish_sha512()));
        }
        if let Some(t) = &p.targets {
            let new = t.signed();
            match self
                .current
                .as_ref()
                .and_then(|(_, t)| t.as_ref())
                .map(|t| t.signed())
            {
                Some(old) => out.push(format!(
                    "targets v{} -> v{}, expires {} -> {}",
                    old.common.version,
                    new.common.version,
                    show(&old.common.expires.raw),
                    show(&new.common.expires.raw)
                )),
                None => out.push(format!(
                    "targets v{} (new), expires {}",
                    new.common.version,
                    show(&new.common.expires.raw)
                )),
            }
            let before = self
                .current
                .as_ref()
                .and_then(|(_, t)| t.as_ref())
                .and_then(|t| t.signed().delegations.as_ref());
            if !self.request_sources.is_empty() {
                out.push(format!(
                    "  key requests: {} file(s); SHA-256 of the request set (sha256sum *.json | sha256sum):",
                    self.request_sources.len()
                ));
                out.push(format!("    {}", request_set_digest(&self.request_sources)));
            }
            if let Some(roles) = new.delegations.as_ref().and_then(|d| d.roles.as_ref()) {
                for r in roles {
                    if before.is_some_and(|b| b.role_for(&r.name).is_some()) {
                        continue;
                    }
                    out.push(format!(
                        "  + delegation \"{}\": paths [{}], threshold {} of {}{}",
                        show(&r.name),
                        r.paths
                            .iter()
                            .flatten()
                            .map(|p| format!("\"{}\"", show(p)))
                            .collect::<Vec<_>>()
                            .join(", "),
                        r.role.threshold,
                        r.role.keyids.len(),
                        if r.terminating { ", terminating" } else { "" }
                    ));
                    if let Some(src) = self
                        .requests
                        .iter()
                        .position(|q| q.project == r.name)
                        .and_then(|i| self.request_sources.get(i))
                    {
                        out.push(format!("      from request file {}", show(&src.file)));
                        out.push(format!("      sha256 {}", show(&src.sha256)));
                    }
                    if let Some(d) = &new.delegations {
                        for id in &r.role.keyids {
                            if let Some(k) = d.key(id) {
                                out.push(format!("      key {}", describe(id, k)));
                            }
                        }
                    }
                }
            }
            if let Some(d) = &new.delegations
                && let Some(s) = &d.succinct_roles
            {
                out.push(format!(
                    "  delegates every target to {} hash bins ({}..{})",
                    s.bin_count(),
                    show(&s.bin_name(0)),
                    show(&s.bin_name(s.bin_count() - 1))
                ));
            }
        }
        out
    }

    /// The key ids of a keyholder's keys in this ceremony: keys generated for them here and keys
    /// the new or the current root lists with them as owner.
    /// Every key of a keyholder the ceremony knows: generated here, or owned in the new or the
    /// current root.
    pub fn keyholder_all_key_ids(&self, who: &str) -> Vec<KeyId> {
        self.keyholder_keys(who)
    }

    fn keyholder_keys(&self, who: &str) -> Vec<KeyId> {
        if self.is_tuf_on_ci() {
            return self.tuf_on_ci_keyholder_keys(who);
        }
        let mut ids: Vec<KeyId> = self
            .generated
            .iter()
            .filter(|(k, _, _)| k == who)
            .map(|(k, _, key)| self.owned(key, k).key_id())
            .collect();
        let (new_root, old_root) = self.roots();
        for root in [new_root, old_root].into_iter().flatten() {
            for (id, k) in &root.keys {
                if key_owner(k) == Some(who) && !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
        ids
    }

    /// The keys of a keyholder that take part in this ceremony (listed for a role being signed).
    pub fn keyholder_key_ids(&self, who: &str) -> Vec<KeyId> {
        self.keyholder_keys(who)
            .into_iter()
            .filter(|id| !self.roles_for_key(id).is_empty())
            .collect()
    }

    /// What a keyholder still has to sign: (key id, role) pairs their keys may sign and have not.
    pub fn roles_left(&self, who: &str) -> Vec<(KeyId, String)> {
        let Some(p) = &self.proposal else {
            return Vec::new();
        };
        if self.is_tuf_on_ci() {
            return self.tuf_on_ci_roles_left(p, who);
        }
        let signed = |role: &str, id: &KeyId| {
            if role == "layout" {
                // A layout signature names the key by its plain key id.
                let plain = self
                    .current
                    .as_ref()
                    .and_then(|(r, _)| r.signed().key(id))
                    .and_then(|k| k.public_key().ok())
                    .map(|pk| Key::from_public_key(&pk).key_id());
                return p.layout.as_ref().is_some_and(|l| {
                    l.signatures()
                        .iter()
                        .any(|s| Some(&s.keyid) == plain.as_ref())
                });
            }
            let sigs = match role {
                "root" => p.root.as_ref().map(|m| &m.signatures),
                _ => p.targets.as_ref().map(|m| &m.signatures),
            };
            sigs.is_some_and(|sigs| sigs.iter().any(|s| s.keyid == *id && !s.sig.is_empty()))
        };
        let mut left = Vec::new();
        for id in self.keyholder_keys(who) {
            for role in self.roles_for_key(&id) {
                if !signed(&role, &id) {
                    left.push((id.clone(), role));
                }
            }
        }
        left
    }

    /// Whether a keyholder holds a key that may sign in this ceremony: a key generated for them
    /// here, or a key root lists with them as owner. When no key names an owner (metadata made
    /// by another tool), every keyholder is asked.
    fn keyholder_may_sign(&self, who: &str) -> bool {
        if self.is_tuf_on_ci() {
            return !self.keyholder_key_ids(who).is_empty();
        }
        if self.generated.iter().any(|(k, _, _)| k == who) {
            return true;
        }
        let (new_root, old_root) = self.roots();
        let mut owners_known = false;
        for root in [new_root, old_root].into_iter().flatten() {
            for (id, k) in &root.keys {
                if let Some(owner) = key_owner(k) {
                    owners_known = true;
                    if owner == who && !self.roles_for_key(id).is_empty() {
                        return true;
                    }
                }
            }
        }
        !owners_known
    }

    /// Why recorded parameters can no longer be corrected (`None`: they can): a key was
    /// generated or a proposal built from them.
    pub fn correction_closed(&self) -> Option<String> {
        if !self.generated.is_empty() {
            return Some(
                "parameters are corrected only before the first key is generated".to_string(),
            );
        }
        if self.proposal.is_some() {
            return Some("parameters are corrected only before the proposal".to_string());
        }
        None
    }

    /// Check parameter values before they are recorded, as the engine will when they are:
    /// every value against the script (type, range, choices, names, expiry window) and every
    /// rule between values and what is known (hash bins a power of two, thresholds against the
    /// keyholders: those of the roll call once recorded, else `keyholders` when the caller
    /// knows who will come, e.g. from an answers file; the client profiles). The one check
    /// of parameters: the UI, the headless runner and `ceremony run` call it before they
    /// record, and [`Engine::apply`] calls it when they do.
    pub fn check_parameters(
        &self,
        values: &BTreeMap<String, ParamJson>,
        keyholders: Option<usize>,
    ) -> Result<(), EngineError> {
        self.checked_parameters(values, keyholders).map(|_| ())
    }

    /// The parameters in force once `values` are set over the current ones, checked (see
    /// [`Engine::check_parameters`]).
    fn checked_parameters(
        &self,
        values: &BTreeMap<String, ParamJson>,
        keyholders: Option<usize>,
    ) -> Result<BTreeMap<String, ParamValue>, EngineError> {
        let mut params = self.params.clone();
        for (name, v) in values {
            let Some(p) = self.script.parameters.iter().find(|p| &p.name == name) else {
                return Err(self.policy(format!("the script has no parameter \"{}\"", show(name))));
            };
            let value = match (&p.default, v) {
                (ParamValue::Integer(_), ParamJson::Integer(i)) => {
                    if p.min.is_some_and(|m| *i < m) || p.max.is_some_and(|m| *i > m) {
                        return Err(self.policy(format!(
                            "{name} = {i} is outside the script's range: {}",
                            p.allowed()
                        )));
                    }
                    if name.ends_with("expiry_days") {
                        self.check_expiry_window(name, *i)?;
                    }
                    ParamValue::Integer(*i)
                }
                (ParamValue::Text(_), ParamJson::Text(s))
                    if NAME_LIST_PARAMS.contains(&name.as_str()) =>
                {
                    for n in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        check_name(n).map_err(|e| self.policy(format!("{name}: the name {e}")))?;
                    }
                    ParamValue::Text(s.clone())
                }
                (ParamValue::Choice(_), ParamJson::Text(s)) => {
                    if !p.choices.contains(s) {
                        return Err(self.policy(format!(
                            "{name} = \"{}\" is not {}",
                            show(s),
                            p.allowed()
                        )));
                    }
                    ParamValue::Choice(s.clone())
                }
                (ParamValue::Text(_), ParamJson::Text(s)) => ParamValue::Text(s.clone()),
                _ => {
                    return Err(self.policy(format!("{name} has the wrong type: {}", p.allowed())));
                }
            };
            params.insert(name.clone(), value);
        }
        // Rules between values. (A keyholder may be in both add_keyholders and
        // remove_keyholders: they replace their own token.)
        let bins = int_param(&params, "hash_bins");
        if bins != 0 && (bins < 2 || bins.count_ones() != 1) {
            return Err(self.policy(format!(
                "hash_bins = {bins} is not a power of two (2, 4, 8, ... 16384), or 0 for no hash bins"
            )));
        }
        let names = |param: &str| -> Vec<String> {
            match params.get(param) {
                Some(ParamValue::Text(t)) => t
                    .split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect(),
                _ => Vec::new(),
            }
        };
        let (added, removed) = (names("add_keyholders"), names("remove_keyholders"));
        for list in [&added, &removed] {
            if let Some(n) = list
                .iter()
                .enumerate()
                .find(|(i, n)| list[..*i].contains(n))
            {
                return Err(self.policy(format!("{} is named twice", n.1)));
            }
        }
        let present = if self.keyholders.is_empty() {
            keyholders
        } else {
            Some(self.keyholders.len())
        };
        if let Some(n) = present {
            threshold_rule(&params, n).map_err(|e| self.policy(e))?;
        }
        if !self.requests.is_empty() {
            let max = int_param(&params, "max_requests").max(1) as usize;
            if self.requests.len() > max {
                return Err(self.policy(format!(
                    "max_requests = {max}: {} requests are imported already",
                    self.requests.len()
                )));
            }
        }
        let mut trial = self.clone();
        trial.params = params;
        trial.gate_parameters()?;
        Ok(trial.params)
    }

    /// A keyholder skipped (at signing or at the seal, `done` listing those skipped there
    /// already): one of the roll call, skipped once, with a reason.
    fn check_skip(
        &self,
        keyholder: &str,
        reason: &str,
        done: &[(String, String)],
    ) -> Result<(), EngineError> {
        if !self.keyholders.iter().any(|k| k == keyholder) {
            return Err(self.policy(format!(
                "\"{}\" is not a keyholder of the roll call",
                show(keyholder)
            )));
        }
        if reason.trim().is_empty() {
            return Err(self.policy(format!(
                "skipping {keyholder} needs a reason (e.g. \"token does not start\")"
            )));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(self.policy(format!(
                "the reason for skipping {keyholder} is longer than {MAX_REASON_CHARS} characters"
            )));
        }
        if done.iter().any(|(k, _)| k == keyholder) {
            return Err(self.policy(format!("{keyholder} is skipped already")));
        }
        Ok(())
    }

    /// The current metadata loaded by this ceremony, if any.
    pub fn current(&self) -> Option<&Current> {
        self.current.as_ref()
    }

    /// A new version of root or targets must expire later than the version it replaces: an
    /// earlier expiry means the clock is wrong (set back) or the parameters are, and clients
    /// would see the registry's metadata expire sooner than they were told. Allowed only when
    /// the script declares the parameter [`ALLOW_EARLIER_EXPIRY`] and the recorded parameters
    /// set it to `yes`.
    fn check_expiry_moves_forward(&self, p: &Proposal) -> Result<(), EngineError> {
        let Some((old_root, old_targets)) = &self.current else {
            return Ok(());
        };
        if matches!(self.params.get(ALLOW_EARLIER_EXPIRY), Some(ParamValue::Choice(v)) if v == "yes")
        {
            return Ok(());
        }
        let pairs = [
            (
                "root",
                p.root.as_ref().map(|r| &r.signed().common),
                &old_root.signed().common,
            ),
            (
                "targets",
                p.targets.as_ref().map(|t| &t.signed().common),
                match old_targets {
                    Some(t) => &t.signed().common,
                    None => &old_root.signed().common,
                },
            ),
        ];
        for (role, new, old) in pairs {
            let Some(new) = new else { continue };
            if role == "targets" && old_targets.is_none() {
                continue;
            }
            // Strictly earlier: a new version made within the same second as the one it replaces
            // (a rotation right after a bootstrap, in a rehearsal) has the same expiry, which
            // says nothing about the clock.
            if new.version != old.version && new.expires.time < old.expires.time {
                return Err(self.policy(format!(
                    "{role} v{} would expire at {}, earlier than v{} it replaces (expires {}): check the clock; only a script parameter {ALLOW_EARLIER_EXPIRY} = \"yes\", recorded in the transcript, allows it",
                    new.version, new.expires.raw, old.version, old.expires.raw
                )));
            }
        }
        Ok(())
    }

    /// An expiry in days must lie in the script's window: below the minimum is refused, beyond
    /// the maximum is refused too (the script's author set that bound for this ceremony).
    fn check_expiry_window(&self, name: &str, days: i64) -> Result<(), EngineError> {
        if days < self.script.min_expiry_days {
            return Err(self.policy(format!(
                "{name} = {days} is inside the script's minimum expiry window of {} days",
                self.script.min_expiry_days
            )));
        }
        if let Some(max) = self.script.max_expiry_days
            && days > max
        {
            return Err(self.policy(format!(
                "{name} = {days} is beyond the script's maximum expiry window of {max} days"
            )));
        }
        Ok(())
    }

    /// The clients the registry accepts losing (parameter [`ACCEPT_CLIENT_LOSS`]).
    pub fn accepted_losses(&self) -> Vec<Client> {
        match self.params.get(ACCEPT_CLIENT_LOSS) {
            Some(ParamValue::Text(t)) => compat::parse_client_list(t).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Refuse what some client rejects unless the registry accepted losing every such client:
    /// the message names the clients and what they reject.
    fn gate(&self, what: &str, clients: &[Client]) -> Result<(), EngineError> {
        let refused: Vec<Client> = clients
            .iter()
            .copied()
            .filter(|c| !self.accepted_losses().contains(c))
            .collect();
        if refused.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = refused.iter().map(|c| c.name()).collect();
        Err(self.policy(format!(
            "{what}: {} clients reject it. Choose another value or key, or name the clients the registry accepts losing in the parameter {ACCEPT_CLIENT_LOSS} (\"{}\")",
            compat::client_list(&refused),
            names.join(",")
        )))
    }

    /// The parameters against the client profiles, before any key exists: the key type every
    /// token generates and the hash bins.
    fn gate_parameters(&self) -> Result<(), EngineError> {
        if let Some(ParamValue::Text(t)) = self.params.get(ACCEPT_CLIENT_LOSS) {
            compat::parse_client_list(t)
                .map_err(|e| self.policy(format!("{ACCEPT_CLIENT_LOSS}: {e}")))?;
        }
        if let Some(ParamValue::Choice(c)) = self.params.get("key_type")
            && let Some(alg) = crate::tuf::key::Algorithm::from_key_type(c)
        {
            self.gate(
                &format!("key_type = \"{c}\" ({} keys)", alg.label()),
                &compat::algorithm_rejected_by(alg),
            )?;
        }
        let bins = int_param(&self.params, "hash_bins");
        if bins > 0 {
            self.gate(
                &format!("hash_bins = {bins} (TAP 15 hash bins, delegations.succinct_roles)"),
                &compat::SUCCINCT_ROLES_REJECTED_BY,
            )?;
        }
        Ok(())
    }

    /// A key entering from the input media (an online key, a developer's key): in an encoding
    /// every profile reads (a refusal whatever the parameters say), and of a type the clients
    /// verify (unless the registry accepted losing those that do not).
    fn gate_new_key(&self, what: &str, key: &Key) -> Result<(), EngineError> {
        for f in compat::check_key(&key.key_id(), key, what) {
            if f.rule == "ecdsa-encoding" {
                return Err(self.policy(format!(
                    "{what}: an ECDSA public key that is not PEM: {} clients cannot read it; bring the key as PEM (SubjectPublicKeyInfo), which every client reads",
                    compat::client_list(&f.clients)
                )));
            }
            self.gate(&format!("{}: {}", f.field, f.problem), &f.clients)?;
        }
        Ok(())
    }

    /// Ask for the clock to be confirmed again before the next step (a resumed ceremony whose
    /// machine clock went back or jumped forward: [`clock_needs_reconfirming`]). Nothing to do
    /// before the clock step.
    pub fn require_clock_confirmation(&mut self) {
        if self.clock.is_some() && self.current_step().is_some() {
            self.reconfirm_clock = true;
        }
    }

    /// The time a clock confirmation records, checked against how it was confirmed: a
    /// reference time within [`CLOCK_TOLERANCE_SECONDS`] of it, or a practice run's own clock.
    /// Transcripts written before the confirmation was recorded carry none.
    fn check_clock(
        &self,
        time: &str,
        confirmation: Option<&ClockConfirmation>,
    ) -> Result<OffsetDateTime, EngineError> {
        let t = Expires::parse(time.to_string(), "time")
            .map_err(|e| self.policy(e.to_string()))?
            .time;
        match confirmation {
            None => {}
            Some(ClockConfirmation::Practice) if !self.practice => {
                return Err(
                    self.policy("only a practice run confirms the clock without a reference time")
                );
            }
            Some(ClockConfirmation::Practice) => {}
            Some(ClockConfirmation::Reference {
                reference,
                difference_seconds,
            }) => {
                let r = Expires::parse(reference.clone(), "reference")
                    .map_err(|e| self.policy(e.to_string()))?
                    .time;
                let diff = (t - r).whole_seconds();
                if diff != *difference_seconds {
                    return Err(self.policy(format!(
                        "the recorded difference ({difference_seconds} s) is not the machine time minus the reference ({diff} s)"
                    )));
                }
                if diff.abs() > CLOCK_TOLERANCE_SECONDS {
                    return Err(self.policy(format!(
                        "the machine clock ({time}) is off: {} the reference time ({reference}), more than {} minutes: set the machine clock and confirm it again",
                        show_clock_difference(diff),
                        CLOCK_TOLERANCE_SECONDS / 60
                    )));
                }
            }
        }
        Ok(t)
    }

    /// The confirmed clock.
    fn now(&self) -> Result<OffsetDateTime, EngineError> {
        self.clock
            .ok_or_else(|| self.policy("the clock has not been confirmed"))
    }

    /// The current root and targets loaded by this ceremony.
    fn loaded(&self) -> Result<(&Metadata<Root>, &Metadata<Targets>), EngineError> {
        match &self.current {
            Some((r, Some(t))) => Ok((r, t)),
            Some((_, None)) => Err(self.policy(
                "this ceremony changes targets, which RSTUF's model signs online: no targets was loaded",
            )),
            None => Err(self.policy("the current metadata has not been loaded")),
        }
    }

    /// The current root, loaded (with or without targets).
    fn loaded_root(&self) -> Result<&Metadata<Root>, EngineError> {
        self.current
            .as_ref()
            .map(|(r, _)| r)
            .ok_or_else(|| self.policy("the current metadata has not been loaded"))
    }

    /// The proposal's new root and the current root, where they exist.
    fn roots(&self) -> (Option<&Root>, Option<&Root>) {
        let new_root = self
            .proposal
            .as_ref()
            .and_then(|p| p.root.as_ref())
            .map(|r| r.signed());
        (new_root, self.current.as_ref().map(|(r, _)| r.signed()))
    }

    fn advance(&mut self) {
        self.step += 1;
        // A generate-key step with nobody to generate for (a rotation that only removes
        // keyholders or changes the threshold) has nothing to wait for.
        while self
            .script
            .steps
            .get(self.step)
            .is_some_and(|s| s.action == Action::GenerateKey)
            && self.keyholders_to_generate().is_empty()
        {
            self.step += 1;
        }
    }

    /// Names from a comma-separated text parameter (one of [`NAME_LIST_PARAMS`]).
    fn name_list(&self, param: &str) -> Vec<String> {
        match self.params.get(param) {
            Some(ParamValue::Text(t)) => t
                .split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whose tokens get a new key in this ceremony: every keyholder at a bootstrap, the joining
    /// keyholders (`add_keyholders`) at a root rotation.
    fn keyholders_to_generate(&self) -> Vec<String> {
        match self.script.kind {
            Kind::BootstrapRoot | Kind::RotateTargetsKeys => self.keyholders.clone(),
            Kind::RotateRootKeys => self.name_list("add_keyholders"),
            _ => Vec::new(),
        }
    }

    /// delegate-claimed-projects: the next targets version delegates each requested project
    /// (terminating, its paths only) to the developers' keys.
    fn build_delegations(&self) -> Result<Proposal, EngineError> {
        let now = self.now()?;
        let (_, targets) = self.loaded()?;
        let days = Duration::days(int_param(&self.params, "targets_expiry_days").max(1));
        let mut new_targets = edit::bump(targets.signed(), now + days);
        for r in &self.requests {
            edit::add_delegation(
                &mut new_targets,
                &edit::NewDelegation {
                    name: r.project.clone(),
                    keys: r.keys.clone(),
                    threshold: r.threshold,
                    paths: r.paths.clone(),
                    terminating: true,
                },
            )
            .map_err(|e| self.policy(format!("project {}: {e}", r.project)))?;
        }
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: None,
            targets: Some(Metadata::new(new_targets)),
        })
    }

    /// rotate-targets-keys: the next root version lists the keys generated in the keyholders'
    /// tokens as the targets keys (the old ones leave the targets role) with the new threshold,
    /// and the next targets version is signed by the new keys.
    fn build_targets_rotation(&self) -> Result<Proposal, EngineError> {
        let now = self.now()?;
        let (root, targets) = self.loaded()?;
        let days = |name: &str| Duration::days(int_param(&self.params, name).max(1));
        let mut new_root = edit::next_root(root.signed(), now + days("root_expiry_days"));
        let old: Vec<KeyId> = new_root.role(RoleType::Targets).keyids.clone();
        for (who, _, key) in &self.generated {
            edit::add_root_key(&mut new_root, RoleType::Targets, owned_key(key, who))
                .map_err(|e| self.policy(e.to_string()))?;
        }
        for id in old {
            edit::remove_root_key(&mut new_root, RoleType::Targets, &id)
                .map_err(|e| self.policy(e.to_string()))?;
        }
        let threshold = int_param(&self.params, "targets_threshold").max(0) as u64;
        edit::set_root_threshold(&mut new_root, RoleType::Targets, threshold)
            .map_err(|e| self.policy(e.to_string()))?;
        edit::check_root(&new_root).map_err(|e| self.policy(e.to_string()))?;
        let new_targets = edit::bump(targets.signed(), now + days("targets_expiry_days"));
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(Metadata::new(new_root)),
            targets: Some(Metadata::new(new_targets)),
        })
    }

    /// rotate-online-keys: the next root version with the snapshot and timestamp keys replaced by
    /// the keys imported from the input media (threshold 1 each).
    fn build_online_rotation(&self) -> Result<Proposal, EngineError> {
        if self.rstuf() {
            return self.build_rstuf_online_rotation();
        }
        let now = self.now()?;
        let root = self.loaded_root()?;
        let days = Duration::days(int_param(&self.params, "root_expiry_days").max(1));
        let mut new_root = edit::next_root(root.signed(), now + days);
        for (ty, name) in [
            (RoleType::Snapshot, "snapshot"),
            (RoleType::Timestamp, "timestamp"),
        ] {
            let key = self
                .online
                .get(name)
                .cloned()
                .ok_or_else(|| self.policy(format!("no new {name} key was imported")))?;
            let material = key.public_key().ok().map(|p| p.material());
            let old: Vec<KeyId> = new_root.role(ty).keyids.clone();
            if old.iter().any(|id| {
                new_root
                    .key(id)
                    .and_then(|k| k.public_key().ok())
                    .map(|p| p.material())
                    == material
            }) {
                return Err(self.policy(format!(
                    "the imported {name} key is the current one: nothing to rotate"
                )));
            }
            edit::add_root_key(&mut new_root, ty, key).map_err(|e| self.policy(e.to_string()))?;
            for id in old {
                edit::remove_root_key(&mut new_root, ty, &id)
                    .map_err(|e| self.policy(e.to_string()))?;
            }
            edit::set_root_threshold(&mut new_root, ty, 1)
                .map_err(|e| self.policy(e.to_string()))?;
        }
        edit::check_root(&new_root).map_err(|e| self.policy(e.to_string()))?;
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(Metadata::new(new_root)),
            targets: None,
        })
    }

    /// rotate-root-keys: the next root version with the leaving keyholders' root keys removed,
    /// the joining keyholders' new keys added, and the root threshold set.
    fn build_rotation(&self) -> Result<Proposal, EngineError> {
        let now = self.now()?;
        let root = self.loaded_root()?;
        let days = Duration::days(int_param(&self.params, "root_expiry_days").max(1));
        let mut new_root = edit::next_root(root.signed(), now + days);
        for name in self.name_list("remove_keyholders") {
            let owned: Vec<KeyId> = new_root
                .role(RoleType::Root)
                .keyids
                .iter()
                .filter(|id| new_root.key(id).and_then(key_owner) == Some(name.as_str()))
                .cloned()
                .collect();
            if owned.is_empty() {
                return Err(self.policy(format!("no root key is owned by {name}")));
            }
            for id in owned {
                edit::remove_root_key(&mut new_root, RoleType::Root, &id)
                    .map_err(|e| self.policy(e.to_string()))?;
            }
        }
        for (who, _, key) in &self.generated {
            edit::add_root_key(&mut new_root, RoleType::Root, self.owned(key, who))
                .map_err(|e| self.policy(e.to_string()))?;
        }
        let threshold = int_param(&self.params, "root_threshold").max(0) as u64;
        edit::set_root_threshold(&mut new_root, RoleType::Root, threshold)
            .map_err(|e| self.policy(e.to_string()))?;
        edit::check_root(&new_root).map_err(|e| self.policy(e.to_string()))?;
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(Metadata::new(new_root)),
            targets: None,
        })
    }

    /// Check an event against the current step and the policy, and fold it into the state.
    /// Returns warnings the administrator must acknowledge (recorded as events).
    pub fn apply(&mut self, ev: &Event) -> Result<Vec<String>, EngineError> {
        // Events that may come at any step.
        match ev {
            Event::Exception {
                step,
                witness,
                text,
            } => {
                self.exceptions
                    .push((step.clone(), witness.clone(), text.clone()));
                return Ok(Vec::new());
            }
            Event::WarningAcknowledged { .. } => return Ok(Vec::new()),
            Event::SealSkipped {
                keyholder, reason, ..
            } => {
                // After the last step (the seal follows): the seal's signers are chosen then.
                if !self.have_params || self.current_step().is_some() {
                    return Err(
                        self.policy("a keyholder is skipped at the seal only after the last step")
                    );
                }
                self.check_skip(keyholder, reason, &self.seal_skipped)?;
                self.seal_skipped.push((keyholder.clone(), reason.clone()));
                return Ok(Vec::new());
            }
            Event::Parameters { values, practice } => {
                if self.have_params {
                    return Err(self.policy("parameters are set once, at the start"));
                }
                self.params = self.checked_parameters(values, None)?;
                self.have_params = true;
                self.practice = *practice;
                return Ok(Vec::new());
            }
            Event::ParametersCorrected { step, values } => {
                if !self.have_params {
                    return Err(self.policy("the parameters must be recorded first"));
                }
                if self.current_step() != Some(step.as_str()) {
                    return Err(self.policy(format!(
                        "a correction recorded at step {} belongs to the current step",
                        show(step)
                    )));
                }
                if let Some(why) = self.correction_closed() {
                    return Err(self.policy(why));
                }
                if values.is_empty() {
                    return Err(self.policy("a correction changes at least one value"));
                }
                self.params = self.checked_parameters(values, None)?;
                return Ok(Vec::new());
            }
            _ => {}
        }
        if !self.have_params {
            return Err(self.policy("the parameters must be recorded first"));
        }
        let Some(step) = self.script.steps.get(self.step).cloned() else {
            return Err(EngineError::Complete);
        };
        let wrong = || EngineError::WrongEvent {
            step: step.id.clone(),
            action: step.action.as_str().to_string(),
            event: ev.action().to_string(),
        };
        if ev.step_id() != Some(step.id.as_str()) {
            return Err(wrong());
        }
        let mut warnings = Vec::new();
        match (step.action, ev) {
            (Action::Acknowledge, Event::Acknowledged { value, .. }) => {
                let needs_text = step.with.get("record").is_some_and(|r| r == "text");
                if needs_text && value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                    return Err(self.policy("this step records text: it cannot be empty"));
                }
                self.advance();
            }
            (
                Action::AirgapCheck,
                Event::AirgapChecked {
                    interfaces, radios, ..
                },
            ) => {
                if !interfaces.is_empty() || !radios.is_empty() {
                    let msg = format!(
                        "the appliance is not air-gapped: interfaces {interfaces:?}, radios {radios:?}"
                    );
                    if !self.practice {
                        return Err(self.policy(msg));
                    }
                    warnings.push(format!("practice run: {msg}"));
                }
                self.advance();
            }
            (
                Action::ClockConfirm,
                Event::ClockConfirmed {
                    time, confirmation, ..
                },
            ) => {
                self.clock = Some(self.check_clock(time, confirmation.as_ref())?);
                self.reconfirm_clock = false;
                self.advance();
            }
            (
                _,
                Event::ClockConfirmed {
                    time, confirmation, ..
                },
            ) if self.clock.is_some() => {
                // The clock confirmed again at a later step (a resumed ceremony): expiry checks
                // from here on use the new time.
                self.clock = Some(self.check_clock(time, confirmation.as_ref())?);
                self.reconfirm_clock = false;
            }
            (
                Action::RollCall,
                Event::RollCall {
                    administrator,
                    keyholders,
                    witnesses,
                    ..
                },
            ) => {
                let min = |p: Person| self.script.presence.get(&p).map_or(0, |x| x.min) as usize;
                if administrator.trim().is_empty() {
                    return Err(self.policy("the administrator's name is missing"));
                }
                // Names are written into the transcript and, for keyholders, into root as key
                // owners: printable, bounded, no padding (see `text::check_name`).
                let named = std::iter::once(("administrator", administrator))
                    .chain(keyholders.iter().map(|k| ("keyholder", k)))
                    .chain(witnesses.iter().map(|w| ("witness", w)));
                for (role, name) in named {
                    check_name(name).map_err(|e| self.policy(format!("the {role}'s name {e}")))?;
                }
                if keyholders.len() < min(Person::Keyholder) {
                    return Err(self.policy(format!(
                        "{} keyholder(s) present, the script requires {}",
                        keyholders.len(),
                        min(Person::Keyholder)
                    )));
                }
                if witnesses.len() < min(Person::Witness) {
                    return Err(self.policy(format!(
                        "{} witness(es) present, the script requires {}",
                        witnesses.len(),
                        min(Person::Witness)
                    )));
                }
                let mut all: Vec<&String> = keyholders.iter().chain(witnesses).collect();
                all.push(administrator);
                all.sort();
                if all.windows(2).any(|w| w[0] == w[1]) || all.iter().any(|n| n.trim().is_empty()) {
                    return Err(self.policy("every person is named once, and no name is empty"));
                }
                let t = int_param(&self.params, "root_threshold")
                    .max(int_param(&self.params, "targets_threshold"));
                threshold_rule(&self.params, keyholders.len()).map_err(|e| {
                    self.policy(format!(
                        "{e}; correct the parameter before any key is generated (a recorded correction), or bring the keyholders"
                    ))
                })?;
                if t == keyholders.len() as i64 {
                    warnings.push(format!("threshold {t} equals the number of keyholders: there is no spare keyholder if one token is lost"));
                }
                self.keyholders = keyholders.clone();
                for name in self.keyholders_to_generate() {
                    if !keyholders.contains(&name) {
                        self.keyholders.clear();
                        return Err(self.policy(format!(
                            "{name} joins as a keyholder in this ceremony but is not present"
                        )));
                    }
                }
                self.advance();
            }
            (
                Action::LoadMetadata,
                Event::MetadataLoaded {
                    root,
                    targets,
                    not_before,
                    ..
                },
            ) => {
                if let Some(nb) = not_before {
                    let t = Expires::parse(nb.clone(), "not_before")
                        .map_err(|e| self.policy(e.to_string()))?;
                    let now = self.now()?;
                    if now < t.time {
                        return Err(self.policy(format!(
                            "the confirmed clock ({}) is earlier than {nb}, the last time the previous ceremony's transcript recorded: the clock is wrong; set it and confirm it again",
                            Expires::from_time(now).raw
                        )));
                    }
                }
                let root_md = Metadata::<Root>::from_value(root.clone())
                    .map_err(|e| self.policy(format!("current root: {e}")))?;
                let (trusted, _) = trust_root("current root", &root_md.to_file_bytes())
                    .map_err(|e| self.policy(e.to_string()))?;
                // RSTUF's model: targets is signed online and not loaded (`null`).
                let targets_md = if self.rstuf() && *targets == Value::Null {
                    None
                } else {
                    let t = Metadata::<Targets>::from_value(targets.clone())
                        .map_err(|e| self.policy(format!("current targets: {e}")))?;
                    let m = trusted.count(RoleType::Targets, t.signed_bytes(), &t.signatures);
                    if !m.verified() {
                        return Err(self.policy(format!("current targets: {}", m.summary())));
                    }
                    Some(t)
                };
                if self.rstuf() {
                    crate::tuf::rstuf::check_model("current root", root_md.signed())
                        .map_err(|e| self.policy(e.to_string()))?;
                }
                if let Some(now) = self.clock
                    && root_md.signed().common.expires.is_expired(now)
                {
                    warnings.push(format!(
                        "the current root expired at {}",
                        root_md.signed().common.expires.raw
                    ));
                }
                // Every later root carries consistent_snapshot over as it is: a root without
                // it is refused here, before any key is generated.
                if root_md.signed().consistent_snapshot.is_none() {
                    let f = compat::check_root(root_md.signed())
                        .into_iter()
                        .find(|f| f.rule == "consistent-snapshot");
                    if let Some(f) = f {
                        self.gate(
                            &format!("current root: {}: {}", f.field, f.problem),
                            &f.clients,
                        )?;
                    }
                }
                self.current = Some((root_md, targets_md));
                self.advance();
            }
            (
                Action::ImportEvent,
                Event::EventImported {
                    files, known_good, ..
                },
            ) => {
                self.import_tuf_on_ci(files, known_good)?;
                self.advance();
            }
            (Action::ImportLayout, Event::LayoutImported { file, .. }) => {
                let layout = crate::intoto::LayoutFile::from_bytes(file.as_bytes())
                    .map_err(|e| self.policy(format!("the layout: {e}")))?;
                if !layout.signatures().is_empty() {
                    return Err(self.policy(
                        "the layout carries signatures already: bring it unsigned, the keyholders sign it here",
                    ));
                }
                layout
                    .summary()
                    .map_err(|e| self.policy(format!("the layout: {e}")))?;
                self.layout = Some(layout);
                self.advance();
            }
            (
                Action::ImportRequests,
                Event::RequestsImported {
                    requests, sources, ..
                },
            ) => {
                let max = int_param(&self.params, "max_requests").max(1) as usize;
                if requests.is_empty() {
                    return Err(self.policy("no key requests on the input media"));
                }
                if !sources.is_empty() && sources.len() != requests.len() {
                    return Err(self.policy(format!(
                        "{} request file(s) named for {} request(s)",
                        sources.len(),
                        requests.len()
                    )));
                }
                for (i, src) in sources.iter().enumerate() {
                    if src.sha256.len() != 64
                        || !src
                            .sha256
                            .bytes()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                    {
                        return Err(self.policy(format!(
                            "request {} ({}): sha256 is not 64 lower-case hex digits",
                            i + 1,
                            show(&src.file)
                        )));
                    }
                }
                if requests.len() > max {
                    return Err(self.policy(format!(
                        "{} requests, more than the {max} this ceremony reviews",
                        requests.len()
                    )));
                }
                let mut parsed: Vec<KeyRequest> = Vec::new();
                for (i, v) in requests.iter().enumerate() {
                    let r = KeyRequest::from_value(v)
                        .map_err(|e| self.policy(format!("request {}: {e}", i + 1)))?;
                    for (k, key) in r.keys.iter().enumerate() {
                        self.gate_new_key(
                            &format!("request {} ({}) key {}", i + 1, r.project, k + 1),
                            key,
                        )?;
                    }
                    if parsed.iter().any(|o| o.project == r.project) {
                        return Err(
                            self.policy(format!("project {} is requested twice", r.project))
                        );
                    }
                    let delegated = self
                        .current
                        .as_ref()
                        .and_then(|(_, t)| t.as_ref())
                        .is_some_and(|t| {
                            t.signed()
                                .delegations
                                .as_ref()
                                .is_some_and(|d| d.role_for(&r.project).is_some())
                        });
                    if delegated {
                        return Err(
                            self.policy(format!("project {} is delegated already", r.project))
                        );
                    }
                    parsed.push(r);
                }
                self.requests = parsed;
                self.request_sources = sources.clone();
                self.advance();
            }
            (
                Action::ImportTargets,
                Event::TargetsImported {
                    manifest, files, ..
                },
            ) => {
                let max = super::publish::max_target_bytes(int_param(
                    &self.params,
                    super::publish::MAX_TARGET_BYTES,
                ));
                let publication = super::publish::Publication::read(manifest, files, max)
                    .map_err(|e| self.policy(e))?;
                let (_, current) = self.loaded()?;
                publication
                    .check_against(current.signed())
                    .map_err(|e| self.policy(e))?;
                if let Some(d) = &publication.delegation {
                    for (i, key) in d.keys.iter().enumerate() {
                        self.gate_new_key(
                            &format!("{}: $.delegation.keys[{i}]", super::publish::MANIFEST_FILE),
                            key,
                        )?;
                    }
                }
                self.publication = Some(publication);
                self.advance();
            }
            (Action::ImportKeys, Event::KeysImported { keys, .. }) => {
                let wanted: Vec<String> = match self.need() {
                    Need::ImportKeys { roles } => roles,
                    _ => Vec::new(),
                };
                let mut parsed = BTreeMap::new();
                for (role, v) in keys {
                    let key = key_from_value(v.clone(), &format!("keys.{role}"))
                        .map_err(|e| self.policy(e.to_string()))?;
                    key.public_key()
                        .map_err(|e| self.policy(format!("{role} key: {e}")))?;
                    self.gate_new_key(&format!("the {role} key"), &key)?;
                    parsed.insert(role.clone(), key);
                }
                for role in &wanted {
                    if !parsed.contains_key(role) {
                        return Err(self.policy(format!("no {role} key on the input media")));
                    }
                }
                self.online = parsed;
                self.advance();
            }
            (
                Action::GenerateKey,
                Event::KeyGenerated {
                    keyholder,
                    token_serial,
                    token,
                    key,
                    ..
                },
            ) => {
                let token_id = token.as_ref().unwrap_or(token_serial);
                let Need::GenerateKey {
                    keyholder: expected,
                    ..
                } = self.need()
                else {
                    return Err(wrong());
                };
                if *keyholder != expected {
                    return Err(self.policy(format!("it is {expected}'s turn, not {keyholder}'s")));
                }
                let key =
                    key_from_value(key.clone(), "key").map_err(|e| self.policy(e.to_string()))?;
                let pk = key.public_key().map_err(|e| self.policy(e.to_string()))?;
                let material = pk.material();
                let same =
                    |k: &Key| k.public_key().ok().map(|p| p.material()) == Some(material.clone());
                // The same key twice: someone else's token was given to this keyholder. Say
                // whose token it is, so the room hands over the right one.
                if let Some((owner, owner_token, _)) =
                    self.generated.iter().find(|(_, _, k)| same(k))
                {
                    return Err(self.policy(format!(
                        "token {token_id} holds the key of {owner} (generated on token {owner_token}), not a new key of {keyholder}: {keyholder}'s own token is expected"
                    )));
                }
                if self.online.values().any(same) {
                    return Err(self.policy(format!(
                        "token {token_id} holds one of the ceremony's online keys, not a new key of {keyholder}"
                    )));
                }
                if self.generated.iter().any(|(_, s, _)| s == token_id) {
                    return Err(self.policy(format!(
                        "token {token_id} already holds another keyholder's key"
                    )));
                }
                self.generated
                    .push((keyholder.clone(), token_id.clone(), key));
                if self.generated.len() == self.keyholders_to_generate().len() {
                    self.advance();
                }
            }
            (Action::Propose, Event::Proposed { digests, .. }) => {
                let p = self.build_proposal()?;
                if p.digests() != *digests {
                    return Err(self.policy(
                        "the recorded digests are not those of the proposal the events build",
                    ));
                }
                if let Some(e) = added_key_id_mismatches(self.current.as_ref(), &p)
                    .into_iter()
                    .next()
                {
                    return Err(self.policy(e));
                }
                for (role, f) in proposal_findings(&p) {
                    self.gate(&format!("{role}: {}: {}", f.field, f.problem), &f.clients)?;
                    warnings.push(accepted_loss_line(role, &f));
                }
                // A later proposal of the same ceremony (sign-intoto-layout's targets) is
                // reviewed and signed anew.
                self.approved = false;
                self.signed_by.clear();
                self.signing_skipped.clear();
                // Nothing expiring inside the script's minimum window is ever signed.
                let now = self.now()?;
                let min = Duration::days(self.script.min_expiry_days);
                let expiries = [
                    p.root.as_ref().map(|r| {
                        (
                            "root",
                            r.signed().common.version,
                            &r.signed().common.expires,
                        )
                    }),
                    p.targets.as_ref().map(|t| {
                        (
                            "targets",
                            t.signed().common.version,
                            &t.signed().common.expires,
                        )
                    }),
                ];
                for (role, version, expires) in expiries.into_iter().flatten() {
                    if expires.time < now + min {
                        return Err(self.policy(format!(
                            "{role} v{version} would expire at {}, inside the script's minimum expiry window of {} days",
                            expires.raw, self.script.min_expiry_days
                        )));
                    }
                }
                self.check_expiry_moves_forward(&p)?;
                self.proposal = Some(p);
                self.advance();
            }
            (
                Action::Review,
                Event::Approved {
                    digests,
                    request_set_sha256,
                    ..
                },
            ) => {
                self.check_request_set_confirmation(request_set_sha256.as_deref())?;
                let expected = self
                    .proposal
                    .as_ref()
                    .map(Proposal::digests)
                    .unwrap_or_default();
                if *digests != expected {
                    return Err(self.policy("the approved digests differ from the proposal's"));
                }
                self.approved = true;
                self.advance();
            }
            (
                Action::Sign,
                Event::Signed {
                    keyholder,
                    role,
                    keyid,
                    sig,
                    ..
                },
            ) if self.is_tuf_on_ci() => self.tuf_on_ci_signed(keyholder, role, keyid, sig)?,
            (Action::Sign, Event::SigningClosed { .. }) if self.is_tuf_on_ci() => {
                self.tuf_on_ci_close()?;
                self.advance();
            }
            (Action::Verify, Event::Verified { .. }) if self.is_tuf_on_ci() => {
                self.tuf_on_ci_verify()?;
                self.advance();
            }
            (
                Action::Sign,
                Event::Signed {
                    keyholder,
                    role,
                    keyid,
                    sig,
                    ..
                },
            ) => {
                if !self.approved {
                    return Err(
                        self.policy("nothing is signed before the room approves the proposal")
                    );
                }
                if self.signing_skipped.iter().any(|(k, _)| k == keyholder) {
                    return Err(self.policy(format!(
                        "{keyholder} was skipped at this signing step (recorded): they do not sign"
                    )));
                }
                let id = KeyId(keyid.clone());
                let found = self
                    .generated
                    .iter()
                    .filter(|(k, _, _)| k == keyholder)
                    .map(|(k, _, key)| self.owned(key, k))
                    .find(|k| k.key_id() == id)
                    .or_else(|| {
                        self.proposal
                            .as_ref()
                            .and_then(|p| p.root.as_ref())
                            .and_then(|r| r.signed().key(&id))
                            .cloned()
                    })
                    .or_else(|| {
                        self.current
                            .as_ref()
                            .and_then(|(r, _)| r.signed().key(&id))
                            .cloned()
                    });
                let key = match found {
                    Some(k) if self.keyholders.contains(keyholder) => k,
                    _ => {
                        return Err(
                            self.policy(format!("{keyholder} has no key {keyid} in this ceremony"))
                        );
                    }
                };
                if let Some(owner) = key_owner(&key)
                    && owner != keyholder
                {
                    return Err(self.policy(format!(
                        "key {keyid} belongs to {owner}, not to {keyholder}"
                    )));
                }
                if !self.roles_for_key(&KeyId(keyid.clone())).contains(role) {
                    return Err(
                        self.policy(format!("key {keyid} of {keyholder} may not sign {role}"))
                    );
                }
                if let Some((_, other)) = self
                    .signers
                    .iter()
                    .find(|(k, who)| *k == *keyid && who != keyholder)
                {
                    return Err(self.policy(format!("key {keyid} signed already for {other}")));
                }
                if !self.signers.iter().any(|(k, _)| k == keyid) {
                    self.signers.push((keyid.clone(), keyholder.clone()));
                }
                let raw = hex::decode(sig).map_err(|_| self.policy("signature is not hex"))?;
                let Some(p) = self.proposal.as_mut() else {
                    return Err(EngineError::Policy {
                        step: step.id.clone(),
                        reason: "no proposal".into(),
                    });
                };
                // Each signature is verified over exactly the proposed bytes before it counts.
                let verify = |bytes: &[u8]| {
                    key.public_key()
                        .and_then(|pk| pk.verify(bytes, &raw))
                        .map_err(|e| EngineError::Policy {
                            step: step.id.clone(),
                            reason: format!("{keyholder}'s {role} signature: {e}"),
                        })
                };
                match role.as_str() {
                    "root" => {
                        let Some(r) = p.root.as_mut() else {
                            return Err(wrong());
                        };
                        verify(r.signed_bytes())?;
                        r.add_signature(KeyId(keyid.clone()), &raw);
                    }
                    "targets" => {
                        let Some(t) = p.targets.as_mut() else {
                            return Err(wrong());
                        };
                        verify(t.signed_bytes())?;
                        t.add_signature(KeyId(keyid.clone()), &raw);
                    }
                    "layout" => {
                        let Some(l) = p.layout.as_mut() else {
                            return Err(wrong());
                        };
                        verify(&l.signed_message())?;
                        let plain = key
                            .public_key()
                            .map(|pk| Key::from_public_key(&pk).key_id())
                            .map_err(|e| EngineError::Policy {
                                step: step.id.clone(),
                                reason: e.to_string(),
                            })?;
                        l.add_signature_bytes(plain, raw.clone());
                    }
                    other => {
                        return Err(self.policy(format!("role {other} is not signed in this step")));
                    }
                }
                if self.roles_left(keyholder).is_empty() && !self.signed_by.contains(keyholder) {
                    self.signed_by.push(keyholder.clone());
                }
            }
            (
                Action::Sign,
                Event::SignerSkipped {
                    keyholder, reason, ..
                },
            ) => {
                self.check_skip(keyholder, reason, &self.signing_skipped)?;
                if !self.approved {
                    return Err(self.policy("signing starts after the room approves the proposal"));
                }
                self.signing_skipped
                    .push((keyholder.clone(), reason.clone()));
            }
            (Action::Sign, Event::SigningClosed { .. }) => {
                let meters = self.meters();
                if let Some((role, m)) = meters.iter().find(|(r, m)| !self.meter_done(r, m)) {
                    return Err(self.policy(format!(
                        "{role} has {} of {} signatures: signing cannot close yet",
                        m.signed.len(),
                        if role == "root" {
                            self.root_signatures_needed(m)
                        } else {
                            m.threshold
                        }
                    )));
                }
                self.advance();
            }
            (Action::Verify, Event::Verified { .. }) => {
                let p = self
                    .proposal
                    .as_ref()
                    .ok_or_else(|| self.policy("no proposal"))?;
                if let Some(l) = &p.layout {
                    let m = self
                        .layout_meter(l)
                        .ok_or_else(|| self.policy("the current metadata has not been loaded"))?;
                    if !m.verified() {
                        return Err(self.policy(format!(
                            "the layout has {} of {} valid signatures by the targets keys",
                            m.signed.len(),
                            m.threshold
                        )));
                    }
                }
                if let (Some(r), None, true) = (&p.root, &self.current, self.rstuf()) {
                    self.verify_rstuf_bootstrap(r)?;
                } else if let Some(r) = &p.root {
                    let trusted = match &self.current {
                        // A new version: signed by the current root's threshold and its own.
                        Some((old, _)) => {
                            let (old, _) = trust_root("current root", &old.to_file_bytes())
                                .map_err(|e| self.policy(e.to_string()))?;
                            let file = format!("{}.root.json", r.signed().common.version);
                            update_root(&old, &file, &r.to_file_bytes())
                                .map_err(|e| self.policy(e.to_string()))?
                                .0
                        }
                        None => {
                            trust_root("root", &r.to_file_bytes())
                                .map_err(|e| self.policy(e.to_string()))?
                                .0
                        }
                    };
                    if let Some(t) = &p.targets {
                        let m = trusted.count(RoleType::Targets, t.signed_bytes(), &t.signatures);
                        if !m.verified() {
                            return Err(self.policy(format!("targets: {}", m.summary())));
                        }
                    }
                    if let Some(now) = self.clock
                        && r.signed().common.expires.is_expired(now)
                    {
                        return Err(self.policy("the new root is already expired"));
                    }
                } else if let (Some(t), Some((root, _))) = (&p.targets, &self.current) {
                    // Targets only: signed by the current root's targets keys.
                    let (trusted, _) = trust_root("current root", &root.to_file_bytes())
                        .map_err(|e| self.policy(e.to_string()))?;
                    let m = trusted.count(RoleType::Targets, t.signed_bytes(), &t.signatures);
                    if !m.verified() {
                        return Err(self.policy(format!("targets: {}", m.summary())));
                    }
                }
                self.advance();
            }
            (Action::Export, Event::Exported { files, .. }) => {
                use sha2::Digest;
                for (name, bytes) in self.export_files() {
                    let digest = hex::encode(sha2::Sha256::digest(&bytes));
                    if files.get(&name) != Some(&digest) {
                        return Err(
                            self.policy(format!("{name} was not exported as proposed and signed"))
                        );
                    }
                }
                self.advance();
            }
            (Action::Seal, Event::Sealed { .. }) => self.advance(),
            _ => return Err(wrong()),
        }
        Ok(warnings)
    }
}

/// Every role's keys before and after, from the roots and targets before and after (a missing
/// "after" is the "before"): top-level roles from the roots, delegated roles from the targets.
pub(crate) fn key_table_of(
    before_root: Option<&Root>,
    after_root: Option<&Root>,
    before_targets: Option<&Targets>,
    after_targets: Option<&Targets>,
) -> Vec<RoleKeyTable> {
    let describe = |id: &KeyId, keys: &[(KeyId, Key)]| -> (String, Option<String>) {
        keys.iter()
            .find(|(k, _)| k == id)
            .map(|(_, k)| (k.scheme.clone(), key_owner(k).map(str::to_string)))
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    let mut add = |role: String,
                   before: Option<(&Role, &[(KeyId, Key)])>,
                   after: Option<(&Role, &[(KeyId, Key)])>| {
        let mut ids: Vec<KeyId> = Vec::new();
        for (r, _) in [before, after].into_iter().flatten() {
            for id in &r.keyids {
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
        let keys = ids
            .into_iter()
            .map(|id| {
                let in_before = before.is_some_and(|(r, _)| r.keyids.contains(&id));
                let in_after = after.is_some_and(|(r, _)| r.keyids.contains(&id));
                let (scheme, owner) = after
                    .filter(|_| in_after)
                    .or(before)
                    .map(|(_, keys)| describe(&id, keys))
                    .unwrap_or_default();
                KeyRow {
                    keyid: id.0,
                    scheme,
                    owner,
                    before: in_before,
                    after: in_after,
                }
            })
            .collect();
        out.push(RoleKeyTable {
            role,
            threshold_before: before.map(|(r, _)| r.threshold),
            threshold_after: after.map(|(r, _)| r.threshold),
            keys,
        });
    };
    for ty in RoleType::ALL {
        add(
            ty.as_str().to_string(),
            before_root.map(|r| (r.role(ty), r.keys.as_slice())),
            after_root.map(|r| (r.role(ty), r.keys.as_slice())),
        );
    }
    let delegated = |t: Option<&Targets>| -> Vec<(String, Role, KeyMap)> {
        let Some(d) = t.and_then(|t| t.delegations.as_ref()) else {
            return Vec::new();
        };
        let mut v: Vec<(String, Role, KeyMap)> = d
            .roles
            .iter()
            .flatten()
            .map(|r| (r.name.clone(), r.role.clone(), d.keys.clone()))
            .collect();
        if let Some(s) = &d.succinct_roles {
            v.push((
                format!("{}-* (hash bins)", s.name_prefix),
                s.role.clone(),
                d.keys.clone(),
            ));
        }
        v
    };
    let before_d = delegated(before_targets);
    let after_d = delegated(after_targets);
    let mut names: Vec<String> = Vec::new();
    for (n, _, _) in before_d.iter().chain(after_d.iter()) {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    for n in names {
        let b = before_d.iter().find(|(x, _, _)| *x == n);
        let a = after_d.iter().find(|(x, _, _)| *x == n);
        add(
            format!("{n} (delegated by targets)"),
            b.map(|(_, r, k)| (r, k.as_slice())),
            a.map(|(_, r, k)| (r, k.as_slice())),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Signer;
    use crate::signer::software::SoftwareSigner;
    use crate::tuf::key::Algorithm;

    fn script() -> Script {
        let text = std::fs::read_to_string(format!(
            "{}/ceremony-scripts/bootstrap-root.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        Script::parse("bootstrap-root.toml", &text).unwrap()
    }

    struct Room {
        signers: Vec<(String, SoftwareSigner)>,
        online: SoftwareSigner,
        /// The online key object as the input media carry it.
        online_key: Value,
        /// Parameter values the administrator enters.
        params: BTreeMap<String, ParamJson>,
        /// The current root and targets the input media carry (ceremonies that load them).
        current: Option<(Value, Value)>,
        /// Developers' key requests on the input media.
        requests: Vec<Value>,
        /// publish-targets: the manifest and the files (target path to base64) on the input
        /// media.
        publish: Option<(Value, BTreeMap<String, String>)>,
        /// The time the clock step confirms.
        clock: &'static str,
    }

    /// Three keyholders with Ed25519 and P-256 keys (what every client profile reads).
    fn room() -> Room {
        room_with([
            Algorithm::Ed25519,
            Algorithm::EcdsaP256,
            Algorithm::EcdsaP256,
        ])
    }

    fn room_with(algs: [Algorithm; 3]) -> Room {
        let online = SoftwareSigner::from_seed(Algorithm::Ed25519, &[9; 48]).unwrap();
        Room {
            online_key: online.key().to_value(),
            params: BTreeMap::new(),
            current: None,
            requests: Vec::new(),
            publish: None,
            clock: "2026-11-23T10:00:00Z",
            signers: ["alice", "bob", "carol"]
                .iter()
                .zip(algs)
                .enumerate()
                .map(|(i, (n, a))| {
                    (
                        n.to_string(),
                        SoftwareSigner::from_seed(a, &[i as u8 + 1; 48]).unwrap(),
                    )
                })
                .collect(),
            online,
        }
    }

    /// Drive the engine through a whole bootstrap as a runner would; returns the events.
    fn run(engine: &mut Engine, room: &mut Room, stop_after: usize) -> Vec<Event> {
        try_run(engine, room, stop_after).unwrap_or_else(|(ev, e)| panic!("{ev}: {e}"))
    }

    /// As [`run`], but the first refused event ends the run with the refusal. Warnings are
    /// acknowledged as events, as the runners do.
    fn try_run(
        engine: &mut Engine,
        room: &mut Room,
        stop_after: usize,
    ) -> Result<Vec<Event>, (&'static str, EngineError)> {
        let mut events = Vec::new();
        while events.len() < stop_after {
            let step = engine.current_step().unwrap_or("end").to_string();
            let ev = match engine.need() {
                Need::Parameters => Event::Parameters {
                    values: room.params.clone(),
                    practice: false,
                },
                Need::Acknowledge { .. } => Event::Acknowledged {
                    step,
                    value: Some("BAG-0001".into()),
                },
                Need::AirgapCheck => Event::AirgapChecked {
                    step,
                    interfaces: vec![],
                    radios: vec![],
                },
                Need::ClockConfirm => Event::ClockConfirmed {
                    step,
                    time: room.clock.into(),
                    confirmation: None,
                },
                Need::RollCall { .. } => Event::RollCall {
                    step,
                    administrator: "ada".into(),
                    keyholders: room.signers.iter().map(|(n, _)| n.clone()).collect(),
                    witnesses: vec!["wendy".into()],
                },
                Need::ImportKeys { .. } => Event::KeysImported {
                    step,
                    keys: [
                        ("snapshot".to_string(), room.online_key.clone()),
                        ("timestamp".to_string(), room.online_key.clone()),
                    ]
                    .into_iter()
                    .collect(),
                },
                Need::GenerateKey { keyholder, .. } => {
                    let (_, (_, s)) = room
                        .signers
                        .iter()
                        .enumerate()
                        .find(|(_, (n, _))| *n == keyholder)
                        .unwrap();
                    // Every token has the same serial, as on tpm2-pkcs11: the token's identity
                    // (module, serial, label) tells them apart.
                    Event::KeyGenerated {
                        step,
                        token: Some(format!(
                            "serial 0000000000000000 label \"{keyholder}\" in /usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so"
                        )),
                        keyholder,
                        token_serial: "0000000000000000".into(),
                        advisories: Vec::new(),
                        existing: false,
                        key: s.key().to_value(),
                    }
                }
                Need::Propose => Event::Proposed {
                    step,
                    digests: engine.proposal().unwrap().digests(),
                },
                Need::Review { digests } => Event::Approved {
                    step,
                    digests,
                    request_set_sha256: engine.request_set_sha256(),
                },
                Need::Sign { pending, .. } => match pending.first() {
                    None => Event::SigningClosed { step },
                    Some(who) => {
                        let p = engine.proposal().unwrap();
                        let (_, s) = room.signers.iter_mut().find(|(n, _)| n == who).unwrap();
                        let material = s.key().public_key().unwrap().material();
                        let keyid = engine.key_for_material(&material).unwrap();
                        let role = if p
                            .root
                            .as_ref()
                            .is_none_or(|r| r.signatures.iter().any(|x| x.keyid == keyid))
                        {
                            "targets"
                        } else {
                            "root"
                        };
                        let bytes = if role == "root" {
                            p.root.unwrap().signed_bytes().to_vec()
                        } else {
                            p.targets.unwrap().signed_bytes().to_vec()
                        };
                        Event::Signed {
                            step,
                            keyholder: who.clone(),
                            role: role.into(),
                            keyid: keyid.0,
                            sig: hex::encode(s.sign(&bytes).unwrap()),
                        }
                    }
                },
                Need::Verify => Event::Verified { step },
                Need::Export { files } => {
                    use sha2::Digest;
                    Event::Exported {
                        step,
                        files: files
                            .iter()
                            .map(|(n, b)| (n.clone(), hex::encode(sha2::Sha256::digest(b))))
                            .collect(),
                        destination: "export".into(),
                    }
                }
                Need::Seal => Event::Sealed { step },
                Need::LoadMetadata => {
                    let (root, targets) = room.current.clone().expect("current metadata");
                    Event::MetadataLoaded {
                        step,
                        root,
                        targets,
                        not_before: None,
                    }
                }
                Need::ImportRequests => Event::RequestsImported {
                    step,
                    requests: room.requests.clone(),
                    sources: Vec::new(),
                },
                Need::ImportLayout { .. } => panic!("these tests import no layout"),
                Need::ImportEvent { .. } => panic!("these tests import no tuf-on-ci event"),
                Need::ImportTargets => {
                    let (manifest, files) = room.publish.clone().expect("a publish manifest");
                    Event::TargetsImported {
                        step,
                        manifest,
                        files,
                    }
                }
                Need::Done => break,
            };
            let warnings = match engine.apply(&ev) {
                Ok(w) => w,
                Err(e) => return Err((ev.action(), e)),
            };
            // Every event survives the trip through transcript details.
            assert_eq!(Event::from_value(&ev.to_value()).unwrap(), ev);
            events.push(ev);
            for warning in warnings {
                let ack = Event::WarningAcknowledged {
                    step: engine.current_step().unwrap_or("end").to_string(),
                    warning,
                };
                engine.apply(&ack).unwrap();
                events.push(ack);
            }
        }
        Ok(events)
    }

    #[test]
    fn bootstrap_runs_to_the_end_and_replays_to_the_same_state() {
        let mut room = room();
        let mut engine = Engine::new(script()).unwrap();
        let events = run(&mut engine, &mut room, usize::MAX);
        assert_eq!(engine.need(), Need::Done);
        let files = engine.export_files();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["1.root.json", "1.targets.json"]);
        // The exported root verifies as a client's trusted root; the keys are the keyholders'.
        let (root, self_count) = trust_root("1.root.json", &files[0].1).unwrap();
        assert_eq!(self_count.signed.len(), 3);
        assert_eq!(root.root().role(RoleType::Root).threshold, 2);
        // Replay from the events gives the same result (resume after a power cut).
        let again = Engine::replay(script(), &events).unwrap();
        assert_eq!(again.need(), Need::Done);
        assert_eq!(again.export_files(), files);
        // Replaying a prefix resumes at the right step: parameters, steps 1-5, two keys made.
        let half = Engine::replay(script(), &events[..8]).unwrap();
        assert_eq!(half.current_step(), Some("6"));
        assert!(matches!(half.need(), Need::GenerateKey { keyholder, .. } if keyholder == "carol"));
        // A replay that skips an event stops at it, naming the event's position.
        let mut gap = events.clone();
        gap.remove(3);
        let (at, err) = Engine::replay(script(), &gap).unwrap_err();
        assert_eq!(at, 3, "{err}");
    }

    #[test]
    fn policy_refuses_what_a_careful_room_would_refuse() {
        let mut room = room();
        let mut engine = Engine::new(script()).unwrap();
        // Up to the air-gap check: parameters and acknowledgement.
        run(&mut engine, &mut room, 2);
        let e = engine
            .apply(&Event::AirgapChecked {
                step: "2".into(),
                interfaces: vec!["eth0".into()],
                radios: vec![],
            })
            .unwrap_err();
        assert!(e.to_string().contains("not air-gapped"), "{e}");
        // An event for another step is refused.
        let e = engine
            .apply(&Event::Verified { step: "10".into() })
            .unwrap_err();
        assert!(matches!(e, EngineError::WrongEvent { .. }), "{e}");
        run(&mut engine, &mut room, 2); // air-gap, clock
        let e = engine
            .apply(&Event::RollCall {
                step: "4".into(),
                administrator: "ada".into(),
                keyholders: vec!["alice".into(), "bob".into()],
                witnesses: vec!["wendy".into()],
            })
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("2 keyholder(s) present, the script requires 3"),
            "{e}"
        );
        let e = engine
            .apply(&Event::RollCall {
                step: "4".into(),
                administrator: "ada".into(),
                keyholders: vec!["alice".into(), "bob".into(), "alice".into()],
                witnesses: vec!["wendy".into()],
            })
            .unwrap_err();
        assert!(e.to_string().contains("named once"), "{e}");
    }

    /// Every parameter rule is checked when the values are recorded, before any key exists
    /// (before: `hash_bins = 3` was accepted and refused at the proposal, after three keys were
    /// generated); a threshold above the keyholders is refused as soon as they are known, and a
    /// recorded value is corrected (an event) until the first key is generated.
    #[test]
    fn parameters_are_checked_when_recorded_and_corrected_before_any_key() {
        let params = |pairs: &[(&str, ParamJson)]| -> BTreeMap<String, ParamJson> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        };
        let refused = |engine: &mut Engine, ev: &Event| engine.apply(ev).unwrap_err().to_string();
        let mut engine = Engine::new(script()).unwrap();
        let bins = Event::Parameters {
            values: params(&[
                ("hash_bins", ParamJson::Integer(3)),
                ("accept_client_loss", ParamJson::Text("tough".into())),
            ]),
            practice: false,
        };
        let e = refused(&mut engine, &bins);
        assert!(e.contains("hash_bins = 3 is not a power of two"), "{e}");
        // The ranges and choices are said.
        let e = refused(
            &mut engine,
            &Event::Parameters {
                values: params(&[("root_expiry_days", ParamJson::Integer(4000))]),
                practice: false,
            },
        );
        assert!(e.contains("a whole number from 1 to 1830"), "{e}");
        let e = refused(
            &mut engine,
            &Event::Parameters {
                values: params(&[("key_type", ParamJson::Text("rsa".into()))]),
                practice: false,
            },
        );
        assert!(e.contains("one of ed25519, ecdsa-p256, ecdsa-p384"), "{e}");
        // Who will come is known to the caller (an answers file): checked before recording.
        let five = params(&[("root_threshold", ParamJson::Integer(5))]);
        let e = engine
            .check_parameters(&five, Some(3))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("root_threshold = 5 is more than the 3 keyholders present"),
            "{e}"
        );
        // Recorded without knowing: the roll call refuses it and says how to correct it.
        let mut room = room();
        room.params = five;
        run(&mut engine, &mut room, 4);
        assert!(matches!(engine.need(), Need::RollCall { .. }));
        let roll = Event::RollCall {
            step: "4".into(),
            administrator: "ada".into(),
            keyholders: vec!["alice".into(), "bob".into(), "carol".into()],
            witnesses: vec!["wendy".into()],
        };
        let e = refused(&mut engine, &roll);
        assert!(e.contains("correct the parameter"), "{e}");
        let fix = |step: &str, t: i64| Event::ParametersCorrected {
            step: step.into(),
            values: params(&[("root_threshold", ParamJson::Integer(t))]),
        };
        assert!(refused(&mut engine, &fix("3", 2)).contains("belongs to the current step"));
        engine.apply(&fix("4", 2)).unwrap();
        engine.apply(&roll).unwrap();
        // Once the roll call is known, a correction is checked against it.
        let e = refused(&mut engine, &fix("5", 4));
        assert!(e.contains("more than the 3 keyholders present"), "{e}");
        // After the first key, nothing is corrected.
        run(&mut engine, &mut room, 2);
        assert!(!engine.generated_keys().is_empty());
        let e = refused(&mut engine, &fix("6", 3));
        assert!(e.contains("only before the first key is generated"), "{e}");
        // The correction is shown in the transcript display.
        assert_eq!(
            crate::transcript::display::describe(&fix("4", 2)),
            "PARAMETERS CORRECTED: root_threshold = 2"
        );
    }

    #[test]
    fn expiry_inside_the_scripts_window_is_never_signed() {
        let text = std::fs::read_to_string(format!(
            "{}/ceremony-scripts/bootstrap-root.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        // The shipped window: at least a week.
        let mut engine = Engine::new(script()).unwrap();
        let mut values = BTreeMap::new();
        values.insert("targets_expiry_days".to_string(), ParamJson::Integer(3));
        let e = engine
            .apply(&Event::Parameters {
                values: values.clone(),
                practice: false,
            })
            .unwrap_err();
        assert!(
            e.to_string().contains(
                "targets_expiry_days = 3 is inside the script's minimum expiry window of 7 days"
            ),
            "{e}"
        );
        // A script that allows at most 400 days refuses 500 for root.
        let bounded = text.replace(
            "kind = \"bootstrap-root\"",
            "kind = \"bootstrap-root\"\nmax_expiry_days = 400",
        );
        let bounded = Script::parse("bounded.toml", &bounded).unwrap();
        assert_eq!(bounded.max_expiry_days, Some(400));
        let mut engine = Engine::new(bounded).unwrap();
        values.clear();
        values.insert("root_expiry_days".to_string(), ParamJson::Integer(500));
        let e = engine
            .apply(&Event::Parameters {
                values,
                practice: false,
            })
            .unwrap_err();
        assert!(e.to_string().contains("beyond the script's maximum"), "{e}");
        // At exactly the minimum the ceremony runs to the end.
        let mut engine = Engine::new(script()).unwrap();
        let mut values = BTreeMap::new();
        values.insert("targets_expiry_days".to_string(), ParamJson::Integer(7));
        engine
            .apply(&Event::Parameters {
                values,
                practice: false,
            })
            .unwrap();
        let mut room = room();
        run(&mut engine, &mut room, 100);
        assert_eq!(engine.need(), Need::Done);
    }

    /// Drive a refresh-expiry ceremony up to its proposal: clock at `clock`, the bootstrap's
    /// signed root and targets loaded.
    fn refresh_until_proposal(
        script: Script,
        values: BTreeMap<String, ParamJson>,
        clock: &str,
        root: &[u8],
        targets: &[u8],
        not_before: Option<&str>,
    ) -> Result<Vec<String>, EngineError> {
        let mut engine = Engine::new(script)?;
        engine.apply(&Event::Parameters {
            values,
            practice: false,
        })?;
        loop {
            let step = engine.current_step().unwrap_or("end").to_string();
            let ev = match engine.need() {
                Need::Acknowledge { .. } => Event::Acknowledged {
                    step,
                    value: Some("BAG-0002".into()),
                },
                Need::AirgapCheck => Event::AirgapChecked {
                    step,
                    interfaces: vec![],
                    radios: vec![],
                },
                Need::ClockConfirm => Event::ClockConfirmed {
                    step,
                    time: clock.into(),
                    confirmation: None,
                },
                Need::RollCall { .. } => Event::RollCall {
                    step,
                    administrator: "ada".into(),
                    keyholders: vec!["alice".into(), "bob".into(), "carol".into()],
                    witnesses: vec!["wendy".into()],
                },
                Need::LoadMetadata => Event::MetadataLoaded {
                    step,
                    root: Value::parse(root).unwrap(),
                    targets: Value::parse(targets).unwrap(),
                    not_before: not_before.map(str::to_string),
                },
                Need::Propose => {
                    let digests = engine.proposal()?.digests();
                    return engine.apply(&Event::Proposed { step, digests });
                }
                other => panic!("refresh-expiry before its proposal: {other:?}"),
            };
            engine.apply(&ev)?;
        }
    }

    #[test]
    fn a_new_version_must_expire_later_than_the_one_it_replaces() {
        // Root v1 and targets v1 made with the clock at 2026-11-23.
        let mut engine = Engine::new(script()).unwrap();
        let mut room = room();
        run(&mut engine, &mut room, 100);
        let files = engine.export_files();
        let root = &files.iter().find(|(n, _)| n == "1.root.json").unwrap().1;
        let targets = &files.iter().find(|(n, _)| n == "1.targets.json").unwrap().1;
        let text = std::fs::read_to_string(format!(
            "{}/ceremony-scripts/refresh-expiry.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let refresh = Script::parse("refresh-expiry.toml", &text).unwrap();
        // The clock three years back: root v2 would expire before root v1.
        let e = refresh_until_proposal(
            refresh.clone(),
            BTreeMap::new(),
            "2023-11-23T10:00:00Z",
            root,
            targets,
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains(
                "root v2 would expire at 2024-11-22T10:00:00Z, earlier than v1 it replaces (expires 2027-11-23T10:00:00Z): check the clock"
            ),
            "{e}"
        );
        // The right clock: later than v1, accepted.
        refresh_until_proposal(
            refresh.clone(),
            BTreeMap::new(),
            "2027-01-10T10:00:00Z",
            root,
            targets,
            None,
        )
        .unwrap();
        // Shorter targets expiry than what it replaces is refused as well.
        let mut short = BTreeMap::new();
        short.insert("targets_expiry_days".to_string(), ParamJson::Integer(7));
        let e = refresh_until_proposal(
            refresh.clone(),
            short.clone(),
            "2026-11-24T10:00:00Z",
            root,
            targets,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("targets v2 would expire at"), "{e}");
        // A script that declares the parameter, with the room's "yes" recorded: allowed.
        let allowing = Script::parse(
            "refresh-expiry.toml",
            &text.replace(
                "[parameters]\n",
                "[parameters]\nallow_earlier_expiry = { default = \"no\", choices = [\"no\", \"yes\"], description = \"Allow a new version to expire no later than the one it replaces\" }\n",
            ),
        )
        .unwrap();
        let e = refresh_until_proposal(
            allowing.clone(),
            short.clone(),
            "2026-11-24T10:00:00Z",
            root,
            targets,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("targets v2 would expire at"), "{e}");
        short.insert(
            ALLOW_EARLIER_EXPIRY.to_string(),
            ParamJson::Text("yes".into()),
        );
        refresh_until_proposal(allowing, short, "2026-11-24T10:00:00Z", root, targets, None)
            .unwrap();

        // A clock earlier than the last time the previous ceremony's transcript recorded is
        // refused when the metadata is loaded; at or after it, the ceremony goes on.
        let e = refresh_until_proposal(
            refresh.clone(),
            BTreeMap::new(),
            "2027-01-10T10:00:00Z",
            root,
            targets,
            Some("2027-01-10T10:00:01Z"),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains(
                "the confirmed clock (2027-01-10T10:00:00Z) is earlier than 2027-01-10T10:00:01Z, the last time the previous ceremony's transcript recorded"
            ),
            "{e}"
        );
        refresh_until_proposal(
            refresh,
            BTreeMap::new(),
            "2027-01-10T10:00:00Z",
            root,
            targets,
            Some("2027-01-10T10:00:00Z"),
        )
        .unwrap();
    }

    /// Confirm the clock of a fresh bootstrap engine (parameters, acknowledgement and air-gap
    /// check recorded) with `confirmation`.
    fn confirm_clock(
        practice: bool,
        time: &str,
        confirmation: Option<ClockConfirmation>,
    ) -> Result<Engine, EngineError> {
        let mut engine = Engine::new(script()).unwrap();
        engine
            .apply(&Event::Parameters {
                values: BTreeMap::new(),
                practice,
            })
            .unwrap();
        while engine.need() != Need::ClockConfirm {
            let step = engine.current_step().unwrap().to_string();
            let ev = match engine.need() {
                Need::Acknowledge { .. } => Event::Acknowledged {
                    step,
                    value: Some("BAG-0001".into()),
                },
                Need::AirgapCheck => Event::AirgapChecked {
                    step,
                    interfaces: vec![],
                    radios: vec![],
                },
                other => panic!("{other:?}"),
            };
            engine.apply(&ev).unwrap();
        }
        let step = engine.current_step().unwrap().to_string();
        engine.apply(&Event::ClockConfirmed {
            step,
            time: time.into(),
            confirmation,
        })?;
        Ok(engine)
    }

    #[test]
    fn the_clock_is_confirmed_against_a_reference_time() {
        let reference = |r: &str, d: i64| {
            Some(ClockConfirmation::Reference {
                reference: r.into(),
                difference_seconds: d,
            })
        };
        // Within five minutes of the reference: confirmed.
        confirm_clock(
            false,
            "2026-11-23T10:03:00Z",
            reference("2026-11-23T10:00:00Z", 180),
        )
        .unwrap();
        // The machine clock three years back from the room's reference: refused, with the
        // difference named.
        let e = confirm_clock(
            false,
            "2023-11-23T10:00:00Z",
            reference("2026-11-23T10:00:00Z", -94_694_400),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains(
                "is off: 1096 days 0 h 0 min 0 s behind the reference time (2026-11-23T10:00:00Z), more than 5 minutes: set the machine clock"
            ),
            "{e}"
        );
        // A recorded difference that is not the two times' difference is refused.
        let e = confirm_clock(
            false,
            "2026-11-23T10:03:00Z",
            reference("2026-11-23T10:00:00Z", 0),
        )
        .unwrap_err();
        assert!(e.to_string().contains("recorded difference"), "{e}");
        // Only a practice run takes the machine clock without a reference.
        let e = confirm_clock(
            false,
            "2026-11-23T10:00:00Z",
            Some(ClockConfirmation::Practice),
        )
        .unwrap_err();
        assert!(e.to_string().contains("only a practice run"), "{e}");
        confirm_clock(
            true,
            "2026-11-23T10:00:00Z",
            Some(ClockConfirmation::Practice),
        )
        .unwrap();
        // Transcripts written before the confirmation was recorded still replay.
        let old: Event = serde_json::from_str(
            r#"{"event":"clock-confirmed","step":"3","time":"2026-11-23T10:00:00Z"}"#,
        )
        .unwrap();
        assert!(matches!(
            old,
            Event::ClockConfirmed {
                confirmation: None,
                ..
            }
        ));
        confirm_clock(false, "2026-11-23T10:00:00Z", None).unwrap();
        // The confirmation is recorded as the transcript's details.
        let ev = Event::ClockConfirmed {
            step: "3".into(),
            time: "2026-11-23T10:03:00Z".into(),
            confirmation: reference("2026-11-23T10:00:00Z", 180),
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["confirmation"]["by"], "reference");
        assert_eq!(v["confirmation"]["difference_seconds"], 180);
    }

    #[test]
    fn reference_times_are_typed_in_utc() {
        let t = parse_reference_time("2026-11-23 10:05").unwrap();
        assert_eq!(t.unix_timestamp(), 1_795_428_300);
        for same in [
            "2026-11-23T10:05",
            "2026-11-23 10:05:00Z",
            " 2026-11-23 10:05 UTC ",
        ] {
            assert_eq!(parse_reference_time(same).unwrap(), t, "{same}");
        }
        for bad in [
            "",
            "10:05",
            "2026-11-23",
            "2026-13-01 10:00",
            "2026-11-23 25:00",
            "23/11/2026 10:05",
            "2026-11-23 10:05+01:00",
        ] {
            let e = parse_reference_time(bad).unwrap_err();
            assert!(e.contains("YYYY-MM-DD HH:MM"), "{bad}: {e}");
        }
        assert_eq!(
            show_clock_difference(-94_694_400),
            "1096 days 0 h 0 min 0 s behind"
        );
        assert_eq!(show_clock_difference(400), "6 min 40 s ahead");
    }

    #[test]
    fn a_resumed_clock_that_jumped_is_confirmed_again_and_then_checks_expiry() {
        let at = |s: &str| Expires::parse(s.to_string(), "t").unwrap().time;
        let last = at("2026-11-23T10:00:00Z");
        assert!(!clock_needs_reconfirming(last, at("2026-11-23T12:00:00Z")));
        assert!(!clock_needs_reconfirming(last, last));
        assert!(
            clock_needs_reconfirming(last, at("2026-11-23T09:59:59Z")),
            "backwards"
        );
        assert!(
            clock_needs_reconfirming(last, at("2028-11-23T10:00:00Z")),
            "2 years ahead"
        );
        assert!(
            clock_needs_reconfirming(last, at("2026-11-24T10:00:01Z")),
            "beyond 24 h"
        );

        // A bootstrap interrupted at its sign step, resumed with the clock 2 years ahead.
        let mut room = room();
        let mut engine = Engine::new(script()).unwrap();
        let mut events = run(&mut engine, &mut room, 11);
        assert!(matches!(engine.need(), Need::Sign { .. }));
        let mut resumed = Engine::replay(script(), &events).unwrap();
        resumed.require_clock_confirmation();
        assert_eq!(resumed.need(), Need::ClockConfirm);
        // Nothing else is accepted before the clock is confirmed again.
        let sign_step = resumed.current_step().unwrap().to_string();
        let again = Event::ClockConfirmed {
            step: sign_step.clone(),
            time: "2028-11-23T10:00:00Z".into(),
            confirmation: Some(ClockConfirmation::Reference {
                reference: "2028-11-23T10:00:00Z".into(),
                difference_seconds: 0,
            }),
        };
        resumed.apply(&again).unwrap();
        assert!(matches!(resumed.need(), Need::Sign { .. }));
        assert_eq!(resumed.current_step(), Some(sign_step.as_str()));
        // The confirmation replays from the transcript, and the new time is the one the
        // verification checks: the new root (one year) is already expired.
        events.push(again);
        let mut replayed = Engine::replay(script(), &events).unwrap();
        assert!(matches!(replayed.need(), Need::Sign { .. }));
        let rest = try_run(&mut replayed, &mut room, 10).unwrap_err();
        assert!(
            rest.1
                .to_string()
                .contains("the new root is already expired"),
            "{rest:?}"
        );
        // A clock confirmed again at a step before any clock is refused as out of place.
        let mut fresh = Engine::new(script()).unwrap();
        fresh.require_clock_confirmation();
        assert_eq!(fresh.need(), Need::Parameters);
    }

    #[test]
    fn signatures_over_other_bytes_and_early_closing_are_refused() {
        let mut room = room();
        let mut engine = Engine::new(script()).unwrap();
        // Run up to the sign step (parameters + 8 steps + 3 key events).
        let events = run(&mut engine, &mut room, 11);
        assert!(matches!(engine.need(), Need::Sign { .. }), "{events:?}");
        let e = engine
            .apply(&Event::SigningClosed { step: "9".into() })
            .unwrap_err();
        assert!(e.to_string().contains("signing cannot close yet"), "{e}");
        let (_, alice) = &mut room.signers[0];
        let forged = Event::Signed {
            step: "9".into(),
            keyholder: "alice".into(),
            role: "root".into(),
            keyid: owned_key(alice.key(), "alice").key_id().0,
            sig: hex::encode(alice.sign(b"something else").unwrap()),
        };
        let e = engine.apply(&forged).unwrap_err();
        assert!(e.to_string().contains("root signature"), "{e}");
        let (_, bob) = &mut room.signers[1];
        let wrong_key = Event::Signed {
            step: "9".into(),
            keyholder: "alice".into(),
            role: "root".into(),
            keyid: owned_key(bob.key(), "bob").key_id().0,
            sig: "00".into(),
        };
        assert!(
            engine
                .apply(&wrong_key)
                .unwrap_err()
                .to_string()
                .contains("belongs to bob, not to alice")
        );
    }

    /// One dead token does not stall the ceremony: the administrator skips its keyholder with
    /// a reason (an event), closes signing once every threshold is met, and a keyholder who
    /// does not sign the seal is recorded too (before: neither skip was an event, and the TUI
    /// only said "skipped (recorded)").
    #[test]
    fn a_dead_token_is_skipped_with_a_reason_and_signing_closes_once_thresholds_are_met() {
        let mut room = room();
        let mut engine = Engine::new(script()).unwrap();
        run(&mut engine, &mut room, 11);
        let skip = |who: &str, reason: &str| Event::SignerSkipped {
            step: "9".into(),
            keyholder: who.into(),
            reason: reason.into(),
        };
        let refused = |engine: &mut Engine, ev: &Event| engine.apply(ev).unwrap_err().to_string();
        assert!(refused(&mut engine, &skip("alice", " ")).contains("needs a reason"));
        assert!(refused(&mut engine, &skip("mallory", "gone")).contains("not a keyholder"));
        engine
            .apply(&skip("alice", "token does not start"))
            .unwrap();
        assert!(refused(&mut engine, &skip("alice", "again")).contains("skipped already"));
        let Need::Sign { pending, .. } = engine.need() else {
            panic!("the signing step")
        };
        assert_eq!(pending, ["bob", "carol"], "alice is no longer asked");
        // bob signs root and targets: one of two each, signing cannot close yet.
        run(&mut engine, &mut room, 2);
        assert!(
            refused(&mut engine, &Event::SigningClosed { step: "9".into() })
                .contains("signing cannot close yet")
        );
        // A skipped keyholder's signature is refused.
        let p = engine.proposal().unwrap();
        let (_, alice) = &mut room.signers[0];
        let keyid = engine
            .key_for_material(&alice.key().public_key().unwrap().material())
            .unwrap();
        let late = Event::Signed {
            step: "9".into(),
            keyholder: "alice".into(),
            role: "root".into(),
            keyid: keyid.0,
            sig: hex::encode(alice.sign(p.root.unwrap().signed_bytes()).unwrap()),
        };
        assert!(refused(&mut engine, &late).contains("skipped at this signing step"));
        // carol signs: both thresholds met; signing closes and the ceremony goes on.
        run(&mut engine, &mut room, 2);
        engine
            .apply(&Event::SigningClosed { step: "9".into() })
            .unwrap();
        assert!(matches!(engine.need(), Need::Verify));
        assert_eq!(
            engine.signing_skipped(),
            [("alice".to_string(), "token does not start".to_string())]
        );
        // The seal skip: only after the last step.
        let seal_skip = |who: &str| Event::SealSkipped {
            step: "end".into(),
            keyholder: who.into(),
            reason: "token does not start".into(),
        };
        assert!(refused(&mut engine, &seal_skip("alice")).contains("only after the last step"));
        run(&mut engine, &mut room, 4);
        assert_eq!(engine.need(), Need::Done);
        engine.apply(&seal_skip("alice")).unwrap();
        assert!(refused(&mut engine, &seal_skip("alice")).contains("skipped already"));
        assert_eq!(engine.seal_skipped().len(), 1);
        // Both are shown in the transcript display.
        let shown = crate::transcript::display::describe(&skip("alice", "token does not start"));
        assert_eq!(
            shown,
            "SKIPPED at signing: alice does not sign (token does not start)"
        );
        assert!(
            crate::transcript::display::describe(&seal_skip("alice"))
                .contains("alice does not sign the seal")
        );
    }

    #[test]
    fn a_key_the_ceremony_adds_must_have_its_hash_as_key_id() {
        let a = SoftwareSigner::from_seed(Algorithm::Ed25519, &[1; 48]).unwrap();
        let roles: Vec<RoleKeys> = RoleType::ALL
            .iter()
            .map(|r| RoleKeys {
                role: *r,
                keys: vec![a.key().clone()],
                threshold: 1,
            })
            .collect();
        let mut root =
            edit::new_root(&roles, time::macros::datetime!(2030-01-01 0:00 UTC)).unwrap();
        let good = Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(Metadata::new(root.clone())),
            targets: None,
        };
        assert!(added_key_id_mismatches(None, &good).is_empty());
        // The same key under a label that is not its hash (as sigstore v11 had).
        let label = KeyId("0c87432c".into());
        let old = root.keys[0].0.clone();
        root.keys[0].0 = label.clone();
        for (_, r) in root.roles.iter_mut() {
            r.keyids = vec![label.clone()];
        }
        let bad = Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(Metadata::new(root.clone())),
            targets: None,
        };
        let w = added_key_id_mismatches(None, &bad);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("0c87432c") && w[0].contains(&old.0) && w[0].contains("tough"),
            "{w:?}"
        );
        // Carried forward from the current root, it is the client profiles' business (tough).
        let current = (
            Metadata::new(root),
            Some(Metadata::new(edit::new_targets(
                time::macros::datetime!(2030-01-01 0:00 UTC),
            ))),
        );
        assert!(added_key_id_mismatches(Some(&current), &bad).is_empty());
        let f = proposal_findings(&bad);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].1.rule, "key-id");
        assert_eq!(f[0].1.clients, [Client::Tough]);
    }

    fn with_params(mut room: Room, params: &[(&str, ParamJson)]) -> Room {
        for (n, v) in params {
            room.params.insert(n.to_string(), v.clone());
        }
        room
    }

    fn text(s: &str) -> ParamJson {
        ParamJson::Text(s.into())
    }

    /// alice's token handed to bob at his key generation: the refusal says whose token it is
    /// and which one is expected (before: "the key of bob is already in the ceremony").
    #[test]
    fn a_token_of_another_keyholder_is_named_with_its_owner() {
        let mut room = room();
        let alice = room.signers[0].1.key().to_value();
        room.signers[1].1 = SoftwareSigner::from_seed(Algorithm::Ed25519, &[1; 48]).unwrap();
        assert_eq!(
            room.signers[1].1.key().to_value(),
            alice,
            "bob's token holds alice's key"
        );
        let mut engine = Engine::new(script()).unwrap();
        let (_, e) = try_run(&mut engine, &mut room, usize::MAX).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("holds the key of alice"), "{e}");
        assert!(
            e.contains("label \"alice\""),
            "the owner's token is named: {e}"
        );
        assert!(e.contains("bob's own token is expected"), "{e}");
    }

    /// The refusal of a run that must fail, and the events accepted before it.
    fn refusal(kind: &str, room: &mut Room) -> (Vec<String>, String) {
        let mut engine = Engine::new(script_named(kind)).unwrap();
        let mut before = Vec::new();
        match try_run(&mut engine, room, usize::MAX) {
            Ok(_) => panic!("{kind}: the ceremony ran to the end"),
            Err((ev, e)) => {
                before.push(ev.to_string());
                before.extend(
                    engine
                        .generated_keys()
                        .iter()
                        .map(|(who, _, _)| format!("key of {who}")),
                );
                (before, e.to_string())
            }
        }
    }

    fn script_named(name: &str) -> Script {
        let text = std::fs::read_to_string(format!(
            "{}/ceremony-scripts/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        Script::parse(&format!("{name}.toml"), &text).unwrap()
    }

    #[test]
    fn ecdsa_p384_and_hash_bins_are_refused_with_the_parameters_before_any_key_exists() {
        for (params, clients, field) in [
            (
                vec![("key_type", text("ecdsa-p384"))],
                "tough and tuf-js clients reject it",
                "key_type = \"ecdsa-p384\"",
            ),
            (
                vec![("hash_bins", ParamJson::Integer(4))],
                "tough clients reject it",
                "hash_bins = 4",
            ),
            (
                // Accepting one of the two is not enough.
                vec![
                    ("key_type", text("ecdsa-p384")),
                    ("accept_client_loss", text("tuf-js")),
                ],
                "tough clients reject it",
                "key_type",
            ),
            (
                vec![("accept_client_loss", text("rust-tuf"))],
                "\"rust-tuf\" is not a client profile",
                "accept_client_loss",
            ),
        ] {
            let mut room = with_params(room(), &params);
            let (at, e) = refusal("bootstrap-root", &mut room);
            assert_eq!(at, ["parameters"], "{e}");
            assert!(e.contains(clients) && e.contains(field), "{e}");
        }
    }

    #[test]
    fn an_accepted_loss_is_shown_on_the_review_and_recorded() {
        let mut room = with_params(
            room_with([Algorithm::EcdsaP384; 3]),
            &[
                ("key_type", text("ecdsa-p384")),
                ("accept_client_loss", text("tuf-js, tough")),
            ],
        );
        let mut engine = Engine::new(script()).unwrap();
        let events = run(&mut engine, &mut room, usize::MAX);
        assert_eq!(engine.need(), Need::Done);
        let line = "tough and tuf-js clients will reject this root: $.signed.keys.";
        assert!(
            engine.review_lines().iter().any(|l| l.starts_with(line)),
            "{:#?}",
            engine.review_lines()
        );
        let recorded: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::WarningAcknowledged { warning, .. } => Some(warning.as_str()),
                _ => None,
            })
            .collect();
        // One per P-384 key, recorded at the proposal (before anything is signed).
        assert_eq!(recorded.len(), 3, "{recorded:?}");
        assert!(recorded.iter().all(|w| w.starts_with(line)), "{recorded:?}");
        let propose = events
            .iter()
            .position(|e| matches!(e, Event::Proposed { .. }))
            .unwrap();
        assert!(matches!(
            events[propose + 1],
            Event::WarningAcknowledged { .. }
        ));
        // Without the parameter the same keys are refused at the proposal, naming both clients.
        let mut room = with_params(
            room_with([Algorithm::EcdsaP384; 3]),
            &[("key_type", text("ed25519"))],
        );
        let (at, e) = refusal("bootstrap-root", &mut room);
        assert_eq!(at[0], "proposed", "{e}");
        assert!(
            e.contains("tough and tuf-js clients reject it") && e.contains(".scheme"),
            "{e}"
        );
    }

    #[test]
    fn online_keys_from_the_input_media_must_be_pem_whatever_the_parameters() {
        let p256 = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[8; 48]).unwrap();
        let mut hex_key = p256.key().clone();
        let Ok(crate::tuf::key::PublicKey::EcdsaP256(vk)) = hex_key.public_key() else {
            unreachable!()
        };
        hex_key.public = hex::encode(vk.to_encoded_point(false).as_bytes());
        let mut room = with_params(room(), &[("accept_client_loss", text("python-tuf,go-tuf"))]);
        room.online_key = hex_key.to_value();
        let (at, e) = refusal("bootstrap-root", &mut room);
        assert_eq!(at, ["keys-imported"], "{e}");
        assert!(
            e.contains("python-tuf and go-tuf clients cannot read it") && e.contains("PEM"),
            "{e}"
        );
        // An online P-384 key: tough and tuf-js, refused unless accepted.
        let mut room = self::room();
        room.online_key = SoftwareSigner::from_seed(Algorithm::EcdsaP384, &[8; 48])
            .unwrap()
            .key()
            .to_value();
        let (at, e) = refusal("bootstrap-root", &mut room);
        assert_eq!(at, ["keys-imported"], "{e}");
        assert!(e.contains("tough and tuf-js clients reject it"), "{e}");
    }

    /// The exported root and targets of a bootstrap by `room`, as the next ceremony's input.
    fn bootstrapped(room: &mut Room) -> (Metadata<Root>, Metadata<Targets>) {
        let mut engine = Engine::new(script()).unwrap();
        run(&mut engine, room, usize::MAX);
        let files = engine.export_files();
        (
            Metadata::from_bytes(&files[0].1).unwrap(),
            Metadata::from_bytes(&files[1].1).unwrap(),
        )
    }

    /// `signed` changed and signed again by the room's keyholders (as another tool would).
    fn resigned<T: crate::tuf::metadata::SignedPayload>(
        room: &mut Room,
        root: &Root,
        signed: T,
    ) -> Value {
        let mut md = Metadata::new(signed);
        for (_, s) in room.signers.iter_mut() {
            let m = s.key().public_key().unwrap().material();
            let id = root
                .keys
                .iter()
                .find(|(_, k)| k.public_key().is_ok_and(|p| p.material() == m))
                .map(|(id, _)| id.clone())
                .unwrap();
            let sig = s.sign(md.signed_bytes()).unwrap();
            md.add_signature(id, &sig);
        }
        md.to_value()
    }

    #[test]
    fn a_current_root_without_consistent_snapshot_is_refused_when_loaded() {
        let mut room = room();
        let (root, targets) = bootstrapped(&mut room);
        // The next ceremony, a day later: its root expires later than the bootstrap's.
        room.clock = "2026-11-24T10:00:00Z";
        let mut r = root.signed().clone();
        r.consistent_snapshot = None;
        let root_value = resigned(&mut room, &r, r.clone());
        room.current = Some((root_value, targets.to_value()));
        let (at, e) = refusal("refresh-expiry", &mut room);
        assert_eq!(at, ["metadata-loaded"], "{e}");
        assert!(
            e.contains("tough, tuf-js and go-tuf clients reject it")
                && e.contains("consistent_snapshot"),
            "{e}"
        );
        // Accepted: the next root carries it over, the review says so.
        room.params
            .insert("accept_client_loss".into(), text("tough,tuf-js,go-tuf"));
        let mut engine = Engine::new(script_named("refresh-expiry")).unwrap();
        try_run(&mut engine, &mut room, usize::MAX).unwrap_or_else(|(ev, e)| panic!("{ev}: {e}"));
        assert!(engine.review_lines()[0].starts_with(
            "go-tuf, tough and tuf-js clients will reject this root: $.signed.consistent_snapshot"
        ) || engine.review_lines()[0].starts_with(
            "tough, tuf-js and go-tuf clients will reject this root: $.signed.consistent_snapshot"
        ), "{:?}", engine.review_lines());
    }

    #[test]
    fn carried_forward_key_ids_and_delegation_fields_are_refused_at_the_proposal() {
        // A current root listing a keyholder's key under a label (sigstore v11's mistake).
        let mut room = room();
        let (root, targets) = bootstrapped(&mut room);
        let mut r = root.signed().clone();
        let old = r.role(RoleType::Root).keyids[0].clone();
        let label = KeyId("0c87432c".into());
        for (id, _) in r.keys.iter_mut() {
            if *id == old {
                *id = label.clone();
            }
        }
        r.keys.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, role) in r.roles.iter_mut() {
            for id in role.keyids.iter_mut() {
                if *id == old {
                    *id = label.clone();
                }
            }
        }
        let root_value = resigned(&mut room, &r, r.clone());
        let mut t = targets.signed().clone();
        edit::add_delegation(
            &mut t,
            &edit::NewDelegation {
                name: "proj".into(),
                keys: vec![room.online.key().clone()],
                threshold: 1,
                paths: vec!["proj/*".into()],
                terminating: true,
            },
        )
        .unwrap();
        let targets_value = resigned(&mut room, &r, t.clone());
        room.current = Some((root_value, targets_value));
        let (at, e) = refusal("refresh-expiry", &mut room);
        assert_eq!(at[0], "proposed", "{e}");
        assert!(
            e.contains("tough clients reject it") && e.contains("0c87432c"),
            "{e}"
        );
        // Unknown fields in a delegated role, carried into the next targets.
        let mut room = self::room();
        let (root, _) = bootstrapped(&mut room);
        let mut t = edit::new_targets(time::macros::datetime!(2030-01-01 0:00 UTC));
        edit::add_delegation(
            &mut t,
            &edit::NewDelegation {
                name: "proj".into(),
                keys: vec![room.online.key().clone()],
                threshold: 1,
                paths: vec!["proj/*".into()],
                terminating: true,
            },
        )
        .unwrap();
        t.delegations.as_mut().unwrap().roles.as_mut().unwrap()[0]
            .role
            .unrecognized
            .insert("x-owner".into(), Value::String("dev".into()));
        let targets_value = resigned(&mut room, root.signed(), t);
        room.current = Some((root.to_value(), targets_value));
        let (at, e) = refusal("refresh-expiry", &mut room);
        assert_eq!(at[0], "proposed", "{e}");
        assert!(
            e.contains("tough clients reject it")
                && e.contains("$.signed.delegations.roles[0].x-owner"),
            "{e}"
        );
    }

    #[test]
    fn developer_keys_in_requests_are_checked_against_the_profiles() {
        let mut room = room();
        let (root, targets) = bootstrapped(&mut room);
        room.current = Some((root.to_value(), targets.to_value()));
        let request = |key: &Key| {
            let text = format!(
                r#"{{"_type": "conclave-key-request", "project": "proj", "paths": ["proj/*"], "threshold": 1, "keys": [{}]}}"#,
                key.to_value().to_pretty_json()
            );
            Value::parse(text.as_bytes()).unwrap()
        };
        let p384 = SoftwareSigner::from_seed(Algorithm::EcdsaP384, &[7; 48]).unwrap();
        room.requests = vec![request(p384.key())];
        let (at, e) = refusal("delegate-claimed-projects", &mut room);
        assert_eq!(at, ["requests-imported"], "{e}");
        assert!(
            e.contains("request 1 (proj) key 1")
                && e.contains("tough and tuf-js clients reject it"),
            "{e}"
        );
        let p256 = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[7; 48]).unwrap();
        let mut hex_key = p256.key().clone();
        let Ok(crate::tuf::key::PublicKey::EcdsaP256(vk)) = hex_key.public_key() else {
            unreachable!()
        };
        hex_key.public = hex::encode(vk.to_encoded_point(false).as_bytes());
        room.requests = vec![request(&hex_key)];
        let (at, e) = refusal("delegate-claimed-projects", &mut room);
        assert_eq!(at, ["requests-imported"], "{e}");
        assert!(
            e.contains("python-tuf and go-tuf clients cannot read it"),
            "{e}"
        );
    }

    #[test]
    fn published_files_and_an_online_delegation_are_reviewed_signed_exported_and_replayed() {
        use base64::Engine as _;
        let mut room = room();
        let (root, targets) = bootstrapped(&mut room);
        room.current = Some((root.to_value(), targets.to_value()));
        let online = |alg: Algorithm| {
            let s = SoftwareSigner::from_seed(alg, &[8; 48]).unwrap();
            let mut v = s.key().to_value();
            if let Value::Object(m) = &mut v {
                m.insert(
                    super::super::publish::ONLINE_URI_FIELD.into(),
                    Value::String("azurekms://vault/keys/npm".into()),
                );
            }
            v.to_pretty_json()
        };
        let manifest = |key: &str| {
            let text = format!(
                r#"{{"_type": "conclave-publish-targets", "targets": [{{"path": "trusted_root.json", "action": "add", "custom": {{"sigstore": {{"status": "Active", "usage": "Unknown"}}}}}}], "delegation": {{"name": "registry.npmjs.org", "paths": ["registry.npmjs.org/*"], "threshold": 1, "keys": [{key}]}}}}"#
            );
            Value::parse(text.as_bytes()).unwrap()
        };
        let content = b"{\"mediaType\": \"trusted root\"}";
        let files: BTreeMap<String, String> = [(
            "trusted_root.json".to_string(),
            base64::engine::general_purpose::STANDARD.encode(content),
        )]
        .into();
        // An online key a client profile refuses (P-384: tough, tuf-js) is refused at import,
        // before any token signs.
        room.publish = Some((manifest(&online(Algorithm::EcdsaP384)), files.clone()));
        let (at, e) = refusal("publish-targets", &mut room);
        assert_eq!(at, ["targets-imported"], "{e}");
        assert!(
            e.contains("publish-targets/manifest.json: $.delegation.keys[0]")
                && e.contains("tough and tuf-js clients reject it"),
            "{e}"
        );
        room.publish = Some((manifest(&online(Algorithm::EcdsaP256)), files));
        let mut engine = Engine::new(script_named("publish-targets")).unwrap();
        let events = run(&mut engine, &mut room, usize::MAX);
        let lines = engine.review_lines().join("\n");
        assert!(
            lines.contains(&format!(
                "+ add trusted_root.json: {} bytes, sha256 ",
                content.len()
            )) && lines.contains("at azurekms://vault/keys/npm")
                && lines.contains("+ delegation \"registry.npmjs.org\""),
            "{lines}"
        );
        let out = engine.export_files();
        let new_targets = Metadata::<Targets>::from_bytes(&out[0].1).unwrap();
        assert_eq!(out[0].0, "2.targets.json");
        let entry = new_targets.signed().target("trusted_root.json").unwrap();
        assert_eq!(entry.length, content.len() as u64);
        assert_eq!(
            out[1],
            (
                format!("targets/{}.trusted_root.json", entry.hashes[0].1),
                content.to_vec()
            )
        );
        // Signed by the targets keys of the current root; the auditor's replay of the
        // recorded events builds the same files.
        let m = trust_root("root", &root.to_file_bytes()).unwrap().0.count(
            RoleType::Targets,
            new_targets.signed_bytes(),
            &new_targets.signatures,
        );
        assert!(m.verified(), "{}", m.summary());
        let replayed = Engine::replay(script_named("publish-targets"), &events).unwrap();
        assert_eq!(replayed.export_files(), out);
    }

    #[test]
    fn expiry_forms_clients_refuse_never_reach_a_proposal() {
        // A current root with a fraction and an offset (as sigstore's first roots had): every
        // ceremony writes a new expiry in the strict form, so the proposal passes the profiles.
        let mut room = room();
        let (root, targets) = bootstrapped(&mut room);
        // The next ceremony, a day later: its root expires later than the bootstrap's.
        room.clock = "2026-11-24T10:00:00Z";
        let mut r = root.signed().clone();
        r.common.expires =
            Expires::parse("2027-11-23T11:00:00.500+01:00".into(), "expires").unwrap();
        let root_value = resigned(&mut room, &r, r.clone());
        room.current = Some((root_value, targets.to_value()));
        let mut engine = Engine::new(script_named("refresh-expiry")).unwrap();
        try_run(&mut engine, &mut room, usize::MAX).unwrap_or_else(|(ev, e)| panic!("{ev}: {e}"));
        let p = engine.proposal().unwrap();
        assert!(p.root.as_ref().unwrap().signed().common.expires.is_strict());
        assert_eq!(proposal_findings(&p).len(), 0);
        // Had one reached it, python-tuf and tough would be named.
        let mut bad = p.clone();
        if let Some(r) = bad.root.as_mut() {
            let mut s = r.signed().clone();
            s.common.expires = Expires::parse("2027-11-23T10:00:00.5Z".into(), "e").unwrap();
            r.set_signed(s);
        }
        let f = proposal_findings(&bad);
        assert_eq!(f[0].1.clients, [Client::PythonTuf, Client::Tough]);
    }

    #[test]
    fn key_requests_are_checked() {
        let dev = SoftwareSigner::from_seed(Algorithm::Ed25519, &[4; 48]).unwrap();
        let key = String::from_utf8(dev.key().to_value().canonical_bytes()).unwrap();
        let req = |project: &str, paths: &str, threshold: u64, keys: &str| {
            let text = format!(
                r#"{{"_type": "conclave-key-request", "project": "{project}", "paths": {paths}, "threshold": {threshold}, "keys": {keys}}}"#
            );
            KeyRequest::from_value(&Value::parse(text.as_bytes()).unwrap())
        };
        let one = format!("[{key}]");
        let r = req("example-pkg", r#"["example-pkg/*"]"#, 1, &one).unwrap();
        assert_eq!(r.project, "example-pkg");
        let cases = [
            (
                req("example-pkg", r#"["other/*"]"#, 1, &one),
                "not inside the project",
            ),
            (
                req("example-pkg", r#"["example-pkg/../x"]"#, 1, &one),
                "not inside the project",
            ),
            (
                req("../evil", r#"["../evil/*"]"#, 1, &one),
                "not a usable project name",
            ),
            (req("example-pkg", "[]", 1, &one), "at least one path"),
            (
                req("example-pkg", r#"["example-pkg/*"]"#, 2, &one),
                "threshold",
            ),
            (
                req(
                    "example-pkg",
                    r#"["example-pkg/*"]"#,
                    1,
                    &format!("[{key}, {key}]"),
                ),
                "twice",
            ),
        ];
        for (got, why) in cases {
            let e = got.unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        // A developer's key may name its owner; the owner is written into targets, so it is
        // checked like a person's name.
        let owned = |owner: &str| {
            let mut v = Value::parse(key.as_bytes()).unwrap();
            if let Value::Object(m) = &mut v {
                m.insert(OWNER_FIELD.into(), Value::String(owner.into()));
            }
            format!("[{}]", v.to_pretty_json())
        };
        assert!(req("example-pkg", r#"["example-pkg/*"]"#, 1, &owned("dev")).is_ok());
        for (owner, why) in [
            ("dev\u{1b}[2K", "control, bidi or invisible"),
            ("\u{202e}ved", "control, bidi or invisible"),
            ("dev      ", "starts or ends with a space"),
            (&"d".repeat(100_000)[..], "100000 characters long"),
        ] {
            let e = req("example-pkg", r#"["example-pkg/*"]"#, 1, &owned(owner)).unwrap_err();
            assert!(
                e.contains("$.keys[0].x-tuf-on-ci-keyowner: the owner"),
                "{e}"
            );
            assert!(e.contains(why), "{e}");
            assert!(!e.contains('\u{1b}') && !e.contains('\u{202e}'), "{e}");
        }
    }

    #[test]
    fn names_of_people_are_printable_bounded_and_unpadded() {
        let mut room = room();
        for (who, bad, why) in [
            (
                "administrator",
                "ada\u{1b}]0;owned\u{7}",
                "control, bidi or invisible",
            ),
            ("keyholder", "\u{202e}ecila", "control, bidi or invisible"),
            ("keyholder", "bob\u{200b}", "control, bidi or invisible"),
            (
                "keyholder",
                "carol                                         ",
                "starts or ends",
            ),
            ("witness", &"w".repeat(100_000), "more than the 64 allowed"),
            ("witness", "wendy\0", "control, bidi or invisible"),
        ] {
            let mut engine = Engine::new(script()).unwrap();
            run(&mut engine, &mut room, 4); // parameters, acknowledgement, air gap, clock
            let mut people = (
                "ada".to_string(),
                vec!["alice".to_string(), "bob".to_string(), "carol".to_string()],
                vec!["wendy".to_string()],
            );
            match who {
                "administrator" => people.0 = bad.to_string(),
                "keyholder" => people.1[2] = bad.to_string(),
                _ => people.2[0] = bad.to_string(),
            }
            let e = engine
                .apply(&Event::RollCall {
                    step: "4".into(),
                    administrator: people.0,
                    keyholders: people.1,
                    witnesses: people.2,
                })
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("the {who}'s name")), "{e}");
            assert!(e.contains(why), "{e}");
            assert!(
                !e.chars().any(|c| c.is_control() || c == '\u{202e}'),
                "{e:?}"
            );
        }
        // Names in parameters (keyholders joining or leaving a root rotation) too.
        let text = std::fs::read_to_string(format!(
            "{}/ceremony-scripts/rotate-root-keys.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut engine = Engine::new(Script::parse("r.toml", &text).unwrap()).unwrap();
        let mut values = BTreeMap::new();
        values.insert(
            "add_keyholders".to_string(),
            ParamJson::Text("dave, \u{202e}eve".into()),
        );
        let e = engine
            .apply(&Event::Parameters {
                values,
                practice: false,
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("add_keyholders: the name"), "{e}");
        assert!(e.contains("\\u{202e}eve"), "{e}");
    }

    #[test]
    fn every_shipped_kind_has_an_engine() {
        for name in [
            "bootstrap-root",
            "rotate-root-keys",
            "rotate-targets-keys",
            "refresh-expiry",
            "rotate-online-keys",
            "delegate-claimed-projects",
            "publish-targets",
        ] {
            let text = std::fs::read_to_string(format!(
                "{}/ceremony-scripts/{name}.toml",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let s = Script::parse(&format!("{name}.toml"), &text).unwrap();
            assert!(Engine::new(s).is_ok(), "{name}");
        }
    }
}
