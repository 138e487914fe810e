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
//!
//! The engine is split by what a step does and by ceremony kind: [`Engine::apply`] here is the
//! dispatcher (events that may come at any step, the checks every step makes, and the one
//! "wrong event for this step" refusal); a module per phase takes the events of its steps
//! (parameters, room, inputs, keys, proposal, signing, export, seal); a module per kind builds
//! its proposal (bootstrap, refresh, rotation, delegations, layout, publication, rstuf, tuf_on_ci); checks,
//! clock and review hold the policy checks, the ceremony clock and what the review shows
//! (summary: the summary-first review of a large claimed-project review).

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::script::{Action, Kind, ParamValue, Person, Script};
use crate::tuf::key::Key;
use crate::tuf::metadata::{Metadata, Root, Targets};

mod bootstrap;
mod checks;
mod clock;
mod delegations;
mod event;
mod export;
mod inputs;
mod keys;
mod layout;
mod parameters;
mod proposal;
mod publication;
mod refresh;
mod review;
mod room;
mod rotation;
mod rstuf;
mod rstuf_pending;
mod seal;
mod signing;
pub mod summary;
mod tests;
mod tuf_on_ci;

pub use checks::{ACCEPT_CLIENT_LOSS, ALLOW_EARLIER_EXPIRY, MAX_REASON_CHARS, NAME_LIST_PARAMS};
pub use clock::{
    CLOCK_TOLERANCE_SECONDS, RESUME_CLOCK_ALLOWANCE_SECONDS, clock_needs_reconfirming,
    parse_reference_time, show_clock_difference,
};
pub use delegations::{KEY_REQUEST_TYPE, KeyRequest, RequestSource, request_set_digest};
pub use event::{ClockConfirmation, EngineError, Event, Need, ParamJson};
pub use keys::{KeyName, OWNER_FIELD, key_name, key_owner, online_roles, owned_key};
pub use proposal::{Proposal, accepted_loss_line, added_key_id_mismatches, proposal_findings};
pub use review::{KeyRow, RoleKeyTable};
pub use rstuf::{BOOTSTRAP_SIGNATURES, MODEL_PARAM};
pub use rstuf_pending::{
    PENDING_FILE, TRUSTED_ROOT_FILE, TRUSTED_ROOT_SHA256, sign_payload_file_name,
};
pub use summary::{
    ReviewSummary, SUMMARY_FIRST_ABOVE_LINES, answered_request_set, top_level_lines,
};
pub use tuf_on_ci::{ACCEPTED_DIR, EVENT_DIR, KNOWN_GOOD_DIR, SIGNATURES_DIR};

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
    /// RSTUF's imported pending root, reviewed (sign-rstuf-pending-root).
    rstuf_pending: Option<Box<rstuf_pending::Imported>>,
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
    /// Changes whenever an event is applied (see [`Engine::revision`]).
    revision: u64,
}

/// Revisions handed out so far, across every engine of the process: a revision names one
/// engine state, even after a session replaces its engine by a replayed one.
static REVISIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn next_revision() -> u64 {
    REVISIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
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
                | Kind::SignRstufPendingRoot
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
            rstuf_pending: None,
            publication: None,
            generated: Vec::new(),
            proposal: None,
            approved: false,
            signed_by: Vec::new(),
            signers: Vec::new(),
            signing_skipped: Vec::new(),
            seal_skipped: Vec::new(),
            exceptions: Vec::new(),
            revision: next_revision(),
        })
    }

    /// The engine state's revision: a new value (never used by any engine of this process
    /// before) each time an event is applied, accepted or not. What is computed from the state
    /// (the review lines and summary the UI shows) is cached under it and rebuilt only when it
    /// changes.
    pub fn revision(&self) -> u64 {
        self.revision
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

    /// The current metadata loaded by this ceremony, if any.
    pub fn current(&self) -> Option<&Current> {
        self.current.as_ref()
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
            Action::ImportPending => rstuf_pending::need(step),
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

    /// Check an event against the current step and the policy, and take it: the dispatcher.
    /// Events that may come at any step are taken first; every other event must name the
    /// current step and be one its action takes ("wrong event for this step" is refused here
    /// and only here); the phase's module checks and takes it. Returns warnings to show.
    pub fn apply(&mut self, ev: &Event) -> Result<Vec<String>, EngineError> {
        // A refused event may have changed part of the state before it was refused.
        self.revision = next_revision();
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
                self.on_seal_skipped(keyholder, reason)?;
                return Ok(Vec::new());
            }
            Event::Parameters { values, practice } => {
                self.on_parameters(values, *practice)?;
                return Ok(Vec::new());
            }
            Event::ParametersCorrected { step, values, .. } => {
                self.on_parameters_corrected(step, values)?;
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
                self.on_acknowledged(&step, value.as_deref())?;
            }
            (
                Action::AirgapCheck,
                Event::AirgapChecked {
                    interfaces, radios, ..
                },
            ) => self.on_airgap_checked(interfaces, radios, &mut warnings)?,
            (
                Action::ClockConfirm,
                Event::ClockConfirmed {
                    time, confirmation, ..
                },
            ) => {
                self.confirm_clock(time, confirmation.as_ref())?;
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
                self.confirm_clock(time, confirmation.as_ref())?;
            }
            (
                Action::RollCall,
                Event::RollCall {
                    administrator,
                    keyholders,
                    witnesses,
                    ..
                },
            ) => self.on_roll_call(administrator, keyholders, witnesses, &mut warnings)?,
            (
                Action::LoadMetadata,
                Event::MetadataLoaded {
                    root,
                    targets,
                    not_before,
                    ..
                },
            ) => self.on_metadata_loaded(root, targets, not_before.as_deref(), &mut warnings)?,
            (
                Action::ImportEvent,
                Event::EventImported {
                    files, known_good, ..
                },
            ) => {
                self.import_tuf_on_ci(files, known_good)?;
                self.advance();
            }
            (
                Action::ImportPending,
                Event::PendingImported {
                    name,
                    file,
                    trusted_root_name,
                    trusted_root,
                    workspace_root_name,
                    workspace_root,
                    ..
                },
            ) => {
                self.import_rstuf_pending(
                    name,
                    file,
                    (trusted_root_name, trusted_root),
                    (workspace_root_name, workspace_root),
                )?;
                self.advance();
            }
            (Action::ImportLayout, Event::LayoutImported { file, .. }) => {
                self.on_layout_imported(file)?;
            }
            (
                Action::ImportRequests,
                Event::RequestsImported {
                    requests, sources, ..
                },
            ) => self.on_requests_imported(requests, sources)?,
            (
                Action::ImportTargets,
                Event::TargetsImported {
                    manifest, files, ..
                },
            ) => self.on_targets_imported(manifest, files)?,
            (Action::ImportKeys, Event::KeysImported { keys, .. }) => {
                self.on_keys_imported(keys)?
            }
            (
                Action::GenerateKey,
                Event::KeyGenerated {
                    keyholder,
                    token_serial,
                    token,
                    key,
                    existing,
                    ..
                },
            ) => {
                self.on_key_generated(keyholder, token_serial, token.as_deref(), key, &wrong)?;
                if *existing {
                    self.tuf_on_ci_existing_key(keyholder);
                }
            }
            (Action::Propose, Event::Proposed { digests, .. }) => {
                self.on_proposed(digests, &mut warnings)?;
            }
            (
                Action::Review,
                Event::Approved {
                    digests,
                    request_set_sha256,
                    ..
                },
            ) => self.on_approved(digests, request_set_sha256.as_deref())?,
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
            (Action::Sign, Event::SigningClosed { .. }) if self.is_rstuf_pending() => {
                self.rstuf_pending_close()?;
                self.advance();
            }
            (Action::Verify, Event::Verified { .. }) if self.is_rstuf_pending() => {
                self.rstuf_pending_verify()?;
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
            ) => self.on_signed(&step, keyholder, role, keyid, sig, &wrong)?,
            (
                Action::Sign,
                Event::SignerSkipped {
                    keyholder, reason, ..
                },
            ) => self.on_signer_skipped(keyholder, reason)?,
            (Action::Sign, Event::SigningClosed { .. }) => self.on_signing_closed()?,
            (Action::Verify, Event::Verified { .. }) => self.on_verified()?,
            (
                Action::Export,
                Event::Exported {
                    files,
                    rstuf_settings,
                    ..
                },
            ) => self.on_exported(files, rstuf_settings.as_ref())?,
            (Action::Seal, Event::Sealed { .. }) => self.advance(),
            _ => return Err(wrong()),
        }
        Ok(warnings)
    }
}
