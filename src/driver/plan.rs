//! Who takes part in a ceremony and how each step is answered.

use std::collections::BTreeMap;
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::ceremony::engine::ParamJson;

use super::module::ChosenModule;

/// Who takes part and how each step is answered: made by the rehearsal for practice tokens, or
/// read from an answers file for a run on real tokens (`conclave ceremony run`).
#[derive(Debug, Default)]
pub struct Plan {
    /// A practice run: a failed air-gap check is a recorded warning instead of a stop.
    pub practice: bool,
    /// The ceremony administrator.
    pub administrator: String,
    /// Keyholders in the order they act.
    pub keyholders: Vec<String>,
    /// Witnesses.
    pub witnesses: Vec<String>,
    /// Parameter values (others keep the script's defaults).
    pub values: BTreeMap<String, ParamJson>,
    /// The time a reference clock shows, as the room reads it (`YYYY-MM-DD HH:MM` UTC): the
    /// clock step checks the machine clock against it. A ceremony on real tokens needs it; a
    /// practice run without one takes the machine clock and records that it did.
    pub reference_time: Option<String>,
    /// Text recorded at acknowledgement steps that record text (e.g. the bag serial).
    pub acknowledgement: String,
    /// Keyholder to token label or serial (default: a token labelled with the keyholder's name).
    pub tokens: BTreeMap<String, String>,
    /// PINs by keyholder; a keyholder without one is asked on the terminal (no echo).
    pub pins: BTreeMap<String, Zeroizing<String>>,
    /// The PKCS#11 module chosen by the caller ([`super::module::choose_module`]); without one
    /// the built-in search for a ceremony of this kind (practice or real).
    pub module: Option<ChosenModule>,
    /// A folder on removable media that receives the export as well (headless runs).
    pub export_to: Option<PathBuf>,
    /// The key-event log's name when this ceremony starts a new log (no previous log in the
    /// workspace's export or on the input media); without it and without a previous log, no
    /// log is written. Practice runs use `practice.conclave.invalid/key-events`.
    pub log_origin: Option<String>,
    /// Keyholders whose token cannot be used, with the reason: skipped at the signing step and
    /// at the seal, each skip recorded in the transcript.
    pub skip: BTreeMap<String, String>,
    /// Close the signing step as soon as every threshold is met: keyholders not asked yet do
    /// not sign (otherwise every keyholder present signs).
    pub close_signing_when_met: bool,
    /// The SHA-256 of the key request set the registry published before the ceremony
    /// (`sha256sum *.json | sha256sum` in the request folder): the review is approved only when
    /// the imported set hashes to it, and a summary-first review needs it
    /// ([`crate::ceremony::engine::answered_request_set`]).
    pub request_set_sha256: Option<String>,
}
