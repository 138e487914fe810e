//! Who takes part in a ceremony and how each step is answered.

use std::collections::BTreeMap;
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::ceremony::engine::ParamJson;
use crate::signer::pkcs11::PivSlot;

use super::module::ChosenModule;

/// What opening a ceremony does about the earlier ceremonies of the same script in the
/// workspace: `--new` on `conclave ceremony run`, `conclave tui` and `conclave rehearse`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Start {
    /// Continue the unfinished ceremony of the script; else report the newest finished one
    /// (its checks run again, nothing is changed); else start one.
    #[default]
    Continue,
    /// Start a new ceremony of the script (`--new`): refused while one is unfinished (keys may
    /// exist in the tokens: it is continued, never abandoned), for a second bootstrap of a
    /// workspace or a second practice root rotation, and for a signing event (tuf-on-ci,
    /// RSTUF) signed already (each event is signed once; a new event needs no `--new`).
    New,
}

/// Who takes part and how each step is answered: made by the rehearsal for practice tokens, or
/// read from an answers file for a run on real tokens (`conclave ceremony run`).
#[derive(Default)]
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
    /// PIV management keys (hex) by keyholder (`KEYHOLDER@LABEL` or `KEYHOLDER@SERIAL` first,
    /// like PINs), for key generation on a YubiKey through ykcs11; a keyholder without one is
    /// asked on the terminal (no echo). Never stored, printed or recorded.
    pub management_keys: BTreeMap<String, Zeroizing<String>>,
    /// The PIV slot keys are generated in on a YubiKey (default 9c, "Digital Signature").
    pub piv_slot: Option<PivSlot>,
    /// The PIV slot of one keyholder, where it differs from [`Plan::piv_slot`].
    pub piv_slots: BTreeMap<String, PivSlot>,
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
    /// Keyholders who do not sign the seal, with the reason: skipped before the seal is
    /// written; withdrawn from a written seal that lists them (a new seal lists the others).
    pub withdraw: BTreeMap<String, String>,
    /// Close the signing step as soon as every threshold is met: keyholders not asked yet do
    /// not sign (otherwise every keyholder present signs).
    pub close_signing_when_met: bool,
    /// The SHA-256 of the key request set the registry published before the ceremony
    /// (`sha256sum *.json | sha256sum` in the request folder): the review is approved only when
    /// the imported set hashes to it, and a summary-first review needs it
    /// ([`crate::ceremony::engine::answered_request_set`]).
    pub request_set_sha256: Option<String>,
}

impl Plan {
    /// The PIV slot `keyholder`'s key is generated in on a YubiKey: theirs, else the
    /// ceremony's, else 9c ("Digital Signature").
    pub fn piv_slot_for(&self, keyholder: &str) -> PivSlot {
        self.piv_slots
            .get(keyholder)
            .copied()
            .or(self.piv_slot)
            .unwrap_or(PivSlot::DIGITAL_SIGNATURE)
    }
}

/// Never the PINs or management keys: only whose are given.
impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("practice", &self.practice)
            .field("administrator", &self.administrator)
            .field("keyholders", &self.keyholders)
            .field("witnesses", &self.witnesses)
            .field("values", &self.values)
            .field("tokens", &self.tokens)
            .field("pins_given_for", &self.pins.keys().collect::<Vec<_>>())
            .field(
                "management_keys_given_for",
                &self.management_keys.keys().collect::<Vec<_>>(),
            )
            .field("piv_slot", &self.piv_slot)
            .field("piv_slots", &self.piv_slots)
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}
