//! The events a transcript records, why the engine refuses one, and what a step waits for.

use super::RequestSource;
use crate::tuf::canonical::Value;
use crate::tuf::verify::ThresholdResult;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
        /// Why, when Conclave proposed the correction rather than the administrator typing it
        /// (a key type left at the script's default that a firmware advisory concerns on a
        /// present token, replaced at the roll call by one safe on every present token).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
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
    /// RSTUF's pending file imported from the input media (sign-rstuf-pending-root): its text
    /// exactly as read, so the review against its trusted root is replayed from the transcript.
    PendingImported {
        /// Step id.
        step: String,
        /// The file's name on the input media.
        name: String,
        /// The file's text exactly as read (RSTUF's `GET /api/v1/metadata/sign/` response).
        file: String,
        /// The name on the input media of the root the room already trusts (the anchor).
        #[serde(default)]
        trusted_root_name: String,
        /// That root's text exactly as read (empty when it was missing).
        #[serde(default)]
        trusted_root: String,
        /// The workspace's own root (its name under the workspace: the newest `N.root.json` of
        /// the export before the pending version, the one the ceremony that wrote it left
        /// there); empty when the workspace has none.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        workspace_root_name: String,
        /// That root's text exactly as read (empty when there is none).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        workspace_root: String,
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
        /// The PIV slot the key is in (`9c`), on a YubiKey through ykcs11; absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        piv_slot: Option<String>,
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
        /// At an RSTUF bootstrap: the `settings` object `ceremony-payload.json` carries (the
        /// online roles' expirations, the hash bins or custom delegations), which no TUF
        /// signature covers; the replay checks it against the parameters and the auditor's
        /// `--artifacts` check against the exported file. Absent in other ceremonies and in
        /// transcripts written before it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rstuf_settings: Option<Value>,
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
        /// [`CLOCK_TOLERANCE_SECONDS`](super::CLOCK_TOLERANCE_SECONDS) either way).
        difference_seconds: i64,
    },
    /// A practice run took the machine clock without a reference (never in a real ceremony).
    Practice,
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
            Event::PendingImported { .. } => "pending-imported",
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
            | Event::PendingImported { step, .. }
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
    /// RSTUF's pending file from the input media (this file name).
    ImportPending {
        /// File name on the input media.
        file: String,
        /// File name on the input media of the root the room already trusts.
        trusted_root: String,
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
    /// The proposal: call [`Engine::proposal`](super::Engine::proposal) and record its digests.
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
