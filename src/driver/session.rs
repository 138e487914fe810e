//! An open ceremony: opening or continuing it from its transcript, and recording events
//! (the engine decides first, then the transcript is appended).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::ceremony::engine::{Engine, Event, Need, clock_needs_reconfirming};
use crate::ceremony::script::{Kind, Person, Script};

use super::lock::WorkspaceLock;
use super::module::{ChosenModule, ModuleUse, Named, choose_module, choose_module_here};
use super::transcript_file::TranscriptFile;
use crate::transcript::details::BeginDetails;
use crate::transcript::record::Timestamp;
use crate::transcript::writer::SYSTEM_ACTOR;
use crate::tuf::canonical::Value;

use std::sync::Arc;

use super::clock::{Clock, SystemClock, timestamp};
use super::error::{DriverError, NotRecorded, io, record_name};
use super::inputs::{latest, online_keys};
use super::log_step::log_step_missing;
use super::plan::{Plan, Start};
use super::practice::{
    PRACTICE_LOG_ORIGIN, clean_practice_leftovers, practice_plan, practice_tokens,
};
use super::report::{CeremonyReport, finished};
use super::token_device::TokenModule;
use super::token_store::{repair_tokens, save_tokens};
use super::workspace::Workspace;

/// Whether a ceremony could be opened or was finished already.
pub enum Opened {
    /// Sealed and signed earlier: only its report.
    Finished(Box<CeremonyReport>),
    /// Open (new, or continued from its transcript).
    Running(Box<Session>),
}

/// An open ceremony: the engine, its transcript on disk and the token module. Every event goes
/// through [`Session::record`]: the engine decides first, only accepted events reach the
/// transcript. The headless runner and the terminal UI both drive a ceremony through this.
pub struct Session {
    /// The workspace.
    pub ws: Workspace,
    /// The script's name.
    pub script_name: String,
    /// The script.
    pub script: Script,
    /// The engine (state = fold over the recorded events).
    pub engine: Engine,
    /// The transcript's path.
    pub tpath: PathBuf,
    /// Who takes part and the answers given in advance.
    pub plan: Plan,
    /// Practice tokens of a rehearsal (made and kept by the workspace).
    pub practice_tokens: bool,
    /// Whether an earlier run's transcript was continued.
    pub resumed: bool,
    /// Events replayed from it.
    pub resumed_events: usize,
    /// Practice token files restored after an interruption.
    pub repaired: Vec<String>,
    /// Warnings acknowledged in this run.
    pub warnings: Vec<String>,
    /// `None` when the transcript is complete (sealed and signed by every signer).
    pub(super) transcript: Option<TranscriptFile>,
    /// The tokens: the PKCS#11 module, or a test double in unit tests. Shared with the
    /// terminal UI's token poller ([`Session::token_lookup`]), which lists tokens on a thread
    /// of its own.
    pub(super) tokens: Arc<dyn TokenModule>,
    /// The PKCS#11 module file and what chose it (`None`: tokens given by the caller).
    pub(super) chosen_module: Option<ChosenModule>,
    /// Held for the session's whole life.
    _lock: WorkspaceLock,
    pub(super) online: BTreeMap<String, Value>,
    /// The online keys' ids as the room reads them aloud ([`Session::online_key_ids`]),
    /// parsed once when the keys were read.
    pub(super) online_ids: Vec<(String, String)>,
    pub(super) sys: PathBuf,
    pub(super) clock: Arc<dyn Clock>,
    /// Events the machine found while making another event (half-made key objects it
    /// removed), recorded before the next event.
    pub(super) notes: std::sync::Mutex<Vec<Event>>,
    /// The keys earlier ceremonies of this workspace recorded at key generation, with the
    /// token each went into: where a key of the root in force is looked for first.
    pub(super) earlier_keys: Vec<RecordedKey>,
}

/// The online keys as the room reads them aloud before they are recorded: (role, "key id
/// HEX" or "NOT USABLE: why").
fn online_key_ids(online: &BTreeMap<String, Value>) -> Vec<(String, String)> {
    online
        .iter()
        .map(|(role, v)| {
            let id = match crate::tuf::metadata::key_from_value(v.clone(), role) {
                Ok(k) => format!("key id {}", k.key_id().0),
                Err(e) => format!("NOT USABLE: {e}"),
            };
            (role.clone(), id)
        })
        .collect()
}

/// A key a `key-generated` record names: keyholder, token (identity, or serial in older
/// transcripts), key.
pub type RecordedKey = (String, String, crate::tuf::key::Key);

/// The keys the workspace's other transcripts (`*.transcript.jsonl` besides `current`)
/// recorded at key generation, with the token each went into. Only to find a keyholder's
/// token (which token to ask the PIN for): a transcript whose hash chain does not verify, or a
/// record that does not parse, is left out, never trusted.
fn earlier_key_records(ws: &Workspace, current: &Path) -> Vec<RecordedKey> {
    let Ok(rd) = std::fs::read_dir(&ws.dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p != current
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".transcript.jsonl"))
        })
        .collect();
    paths.sort();
    let mut keys = Vec::new();
    for p in paths {
        let Ok(bytes) =
            crate::folder::read_limited(&p, crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE)
        else {
            continue;
        };
        let Ok(t) = crate::transcript::chain::verify_chain(&bytes) else {
            continue;
        };
        for r in t.records().iter().filter(|r| r.action == "key-generated") {
            if let Ok(Event::KeyGenerated {
                keyholder,
                token_serial,
                token,
                key,
                ..
            }) = Event::from_value(&r.details)
                && let Ok(key) = crate::tuf::metadata::key_from_value(key, "key")
            {
                keys.push((keyholder, token.unwrap_or(token_serial), key));
            }
        }
    }
    keys
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("script", &self.script_name)
            .field("transcript", &self.tpath)
            .finish_non_exhaustive()
    }
}

/// What the tests give instead of the machine's: the clock, and tokens instead of the
/// plan's PKCS#11 module.
struct Seams {
    clock: Arc<dyn Clock>,
    tokens: Option<Box<dyn TokenModule>>,
}

impl Session {
    /// Open the ceremony `script_name` in the workspace: practice tokens and a practice plan
    /// when `real` is `None`, else the keyholders' tokens and `real`. An unfinished transcript
    /// is continued (its events replayed through the engine); a finished one is reported
    /// ([`Opened::Finished`]) unless `start` asks for a new ceremony ([`Start`]).
    pub fn open(
        ws: &Workspace,
        script_name: &str,
        text: &str,
        sys: &Path,
        real: Option<Plan>,
        start: Start,
    ) -> Result<Opened, DriverError> {
        Self::open_with_clock(
            ws,
            script_name,
            text,
            sys,
            real,
            start,
            Arc::new(SystemClock),
        )
    }

    /// [`Session::open`] with the clock the ceremony reads (a fixed clock in tests).
    pub fn open_with_clock(
        ws: &Workspace,
        script_name: &str,
        text: &str,
        sys: &Path,
        real: Option<Plan>,
        start: Start,
        clock: Arc<dyn Clock>,
    ) -> Result<Opened, DriverError> {
        let seams = Seams {
            clock,
            tokens: None,
        };
        Self::open_inner(ws, script_name, text, sys, real, start, seams)
    }

    /// [`Session::open`] of a ceremony with a plan (not practice tokens) on the tokens
    /// `tokens` instead of the plan's PKCS#11 module, on the machine's clock: the seam the
    /// driver's and the terminal UI's unit tests use to drive a ceremony on an in-memory test
    /// double.
    pub fn open_with_tokens(
        ws: &Workspace,
        script_name: &str,
        text: &str,
        sys: &Path,
        plan: Plan,
        start: Start,
        tokens: Box<dyn TokenModule>,
    ) -> Result<Opened, DriverError> {
        let seams = Seams {
            clock: Arc::new(SystemClock),
            tokens: Some(tokens),
        };
        Self::open_inner(ws, script_name, text, sys, Some(plan), start, seams)
    }

    fn open_inner(
        ws: &Workspace,
        script_name: &str,
        text: &str,
        sys: &Path,
        real: Option<Plan>,
        start: Start,
        seams: Seams,
    ) -> Result<Opened, DriverError> {
        let Seams {
            clock,
            tokens: given,
        } = seams;
        // One run at a time on a workspace, from before the first token or file is touched
        // until the session ends.
        let lock = WorkspaceLock::acquire(&ws.dir, clock.as_ref())?;
        let script = Script::parse(&format!("{script_name}.toml"), text).map_err(|e| {
            DriverError::Refused(
                e.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?;
        let mut engine =
            Engine::new(script.clone()).map_err(|e| DriverError::Refused(e.to_string()))?;
        let practice_tokens_used = real.is_none();
        let mut plan = match real {
            Some(plan) => plan,
            None => {
                let (people, values) = practice_plan(script.kind);
                Plan {
                    practice: true,
                    administrator: "administrator".into(),
                    keyholders: people,
                    witnesses: vec!["witness".into()],
                    values,
                    reference_time: None,
                    acknowledgement: "PRACTICE".into(),
                    tokens: BTreeMap::new(),
                    // The practice tokens' PINs, once they are made (below).
                    pins: BTreeMap::new(),
                    module: None,
                    export_to: None,
                    log_origin: Some(PRACTICE_LOG_ORIGIN.into()),
                    ..Plan::default()
                }
            }
        };
        // Which ceremony this is, decided from the workspace's transcripts before any file or
        // token is touched (temporary files count for nothing in it): a refusal changes
        // nothing.
        let tpath = transcript_to_open(
            ws,
            script_name,
            &script,
            &engine,
            &plan,
            practice_tokens_used,
            start,
        )?;
        // What an interrupted run left (temporary files, a half-written log directory) goes
        // first; each removal is recorded.
        let swept = super::workspace::sweep_leftovers(ws)?;
        // A finished ceremony is reported (its transcript exported again: a rerun after a cut
        // at its last writes); a sealed one whose key-event log step was cut short is complete
        // (nothing more is appended), only the log is written.
        let mut complete = false;
        if let Some(mut done) = finished(ws, &tpath, &script)? {
            if !log_step_missing(ws, plan.log_origin.is_some(), &done.seal) {
                super::export::export_transcript(ws, plan.export_to.as_deref(), &tpath)?;
                done.another = Some(another_ceremony(
                    script_name,
                    script.kind,
                    practice_tokens_used,
                ));
                return Ok(Opened::Finished(Box::new(done)));
            }
            complete = true;
        }
        let (module, chosen_module, repaired, mut cleaned) = match given {
            _ if practice_tokens_used => {
                // Torn token files are put back from the saved copy before the leftovers are
                // judged (a token is never taken for a leftover because its file was torn).
                let repaired = repair_tokens(ws)?;
                let cleaned = clean_practice_leftovers(ws, &plan.keyholders)?;
                let chosen = choose_module(Named::Nothing, None, None, ModuleUse::Rehearsal)
                    .map_err(io("the SoftHSM2 module"))?;
                let module = chosen.open().map_err(io("the SoftHSM2 module"))?;
                plan.pins = practice_tokens(ws, &module, &plan.keyholders)?;
                let module: Box<dyn TokenModule> = Box::new(module);
                save_tokens(ws)?;
                (module, Some(chosen), repaired, cleaned)
            }
            Some(tokens) => (tokens, None, Vec::new(), Vec::new()),
            None => {
                let chosen = match &plan.module {
                    Some(c) => c.clone(),
                    None => choose_module_here(
                        Named::Nothing,
                        None,
                        ModuleUse::Ceremony {
                            practice: plan.practice,
                        },
                    )
                    .map_err(io("the PKCS#11 module"))?,
                };
                let module: Box<dyn TokenModule> =
                    Box::new(chosen.open().map_err(io("the PKCS#11 module"))?);
                (module, Some(chosen), Vec::new(), Vec::new())
            }
        };
        cleaned.splice(0..0, swept);
        // The online keys on the input media: the registry's current ones at a bootstrap, new
        // ones (one set per root version they are meant for) at an online key rotation.
        let keys_file = if script.kind == Kind::RotateOnlineKeys {
            let next = latest(&ws.export(), "root").map_or(1, |(v, _)| v + 1);
            format!("online-keys-for-root-v{next}.json")
        } else {
            "online-keys.json".to_string()
        };
        // Stand-ins (practice) for the roles the script's import step names.
        let import_roles: Vec<String> = script
            .steps
            .iter()
            .filter(|s| s.action == crate::ceremony::script::Action::ImportKeys)
            .filter_map(|s| s.with.get("roles"))
            .flat_map(|r| r.split(',').map(|x| x.trim().to_string()))
            .collect();
        // A tuf-on-ci event brings no online keys: its inputs are recorded whole when imported.
        // Nor does RSTUF's pending file (sign-rstuf-pending-root).
        let (online, inputs) = if matches!(
            script.kind,
            Kind::SignTufOnCiEvent | Kind::SignRstufPendingRoot
        ) {
            (Default::default(), Vec::new())
        } else {
            let (keys, digest) = online_keys(ws, &keys_file, practice_tokens_used, &import_roles)?;
            (keys, vec![digest])
        };

        let mut resumed_events = 0;
        // A transcript an interruption left without one complete record (cut while its
        // `begin` was written) holds nothing of the ceremony: it is started again, and the new
        // transcript says so.
        let mut notes: Vec<Event> = cleaned
            .into_iter()
            .map(|text| Event::Exception {
                step: engine.current_step().unwrap_or("end").to_string(),
                witness: SYSTEM_ACTOR.into(),
                text,
            })
            .collect();
        if !complete && let Some(note) = restart_if_empty(&tpath, &engine)? {
            notes.push(note);
        }
        let earlier_keys = earlier_key_records(ws, &tpath);
        let resumed = tpath.exists();
        let transcript = if resumed {
            let (file, records) = if complete {
                let bytes = std::fs::read(&tpath).map_err(io(tpath.display()))?;
                let t = crate::transcript::chain::verify_chain(&bytes)
                    .map_err(|e| DriverError::Refused(format!("{}: {e}", tpath.display())))?;
                (None, t.records().to_vec())
            } else {
                let (mut file, resumed) =
                    TranscriptFile::open_resume(&tpath, timestamp(clock.as_ref()))
                        .map_err(io("resuming the transcript"))?;
                // Interrupted between a signer's withdrawal and the new seal: the new seal is
                // the withdrawal's consequence (the same artifacts, the other signers).
                if file.withdrawal_pending().is_some() {
                    file.append_reseal("administrator", timestamp(clock.as_ref()))
                        .map_err(io("writing the new seal after a withdrawal"))?;
                }
                (Some(file), resumed.transcript.records().to_vec())
            };
            let mut events = Vec::new();
            for r in &records {
                if crate::transcript::seal::is_transcript_action(&r.action) {
                    continue;
                }
                events.push(Event::from_value(&r.details).map_err(|e| {
                    DriverError::Refused(format!("{}: record {}: {e}", tpath.display(), r.seq))
                })?);
            }
            resumed_events = events.len();
            engine = Engine::replay(script.clone(), &events).map_err(|(i, e)| {
                DriverError::Refused(format!(
                    "{}: event {i} does not replay: {e}",
                    tpath.display()
                ))
            })?;
            // Wrong PINs the earlier runs sent to TPM tokens still count toward the TPM's one
            // lockout (it keeps its counter): the warning before the last try counts them.
            let tpm_wrong_pins = engine
                .exceptions()
                .iter()
                .filter(|(_, witness, text)| {
                    witness == SYSTEM_ACTOR
                        && text.contains(crate::signer::pkcs11::TPM_SHARED_LOCKOUT)
                })
                .count();
            crate::signer::pkcs11::note_earlier_tpm_wrong_pins(
                u32::try_from(tpm_wrong_pins).unwrap_or(u32::MAX),
            );
            // A machine clock that went back, or jumped forward beyond the allowance, since the
            // last record is confirmed again before the ceremony continues.
            if !complete
                && let Some(last) = records.last()
                && clock_needs_reconfirming(last.time.to_datetime(), clock.now())
            {
                engine.require_clock_confirmation();
            }
            file
        } else {
            let mut file = TranscriptFile::create(&tpath).map_err(io("creating the transcript"))?;
            let begin = BeginDetails::new(script_name, text.as_bytes(), true, inputs);
            file.append(
                "conclave",
                None,
                "begin",
                begin.to_value(),
                timestamp(clock.as_ref()),
            )
            .map_err(io("writing the transcript"))?;
            Some(file)
        };
        Ok(Opened::Running(Box::new(Session {
            ws: ws.clone(),
            script_name: script_name.to_string(),
            script,
            engine,
            tpath,
            plan,
            practice_tokens: practice_tokens_used,
            resumed,
            resumed_events,
            repaired,
            warnings: Vec::new(),
            transcript,
            tokens: Arc::from(module),
            chosen_module,
            _lock: lock,
            online_ids: online_key_ids(&online),
            online,
            sys: sys.to_path_buf(),
            clock,
            notes: std::sync::Mutex::new(notes),
            earlier_keys,
        })))
    }

    /// The clock's time, as the transcript records it.
    pub(super) fn stamp(&self) -> Timestamp {
        timestamp(self.clock.as_ref())
    }

    /// The clock this ceremony reads.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// What the current step waits for.
    pub fn need(&self) -> Need {
        self.engine.need()
    }

    /// The transcript file, open for appending (not for a complete transcript).
    pub(super) fn file(&mut self) -> Result<&mut TranscriptFile, DriverError> {
        self.transcript.as_mut().ok_or_else(|| {
            DriverError::Refused(format!(
                "{}: the transcript is sealed and signed; nothing more is recorded",
                self.tpath.display()
            ))
        })
    }

    /// The transcript's actor of the current step (administrator, keyholder, witness).
    pub fn step_actor(&self) -> String {
        let step = self.engine.current_step().unwrap_or("end");
        match self
            .script
            .steps
            .iter()
            .find(|s| s.id == step)
            .map(|s| s.actor)
            .unwrap_or(Person::Administrator)
        {
            Person::Administrator => "administrator".to_string(),
            Person::Keyholder => "keyholder".to_string(),
            Person::Witness => "witness".to_string(),
        }
    }

    /// The current step's id ("end" after the last).
    pub fn step(&self) -> String {
        self.engine.current_step().unwrap_or("end").to_string()
    }

    /// The PKCS#11 module in use: its file and what chose it (`None`: the caller gave the
    /// tokens, [`Session::open_with_tokens`]).
    pub fn module_choice(&self) -> Option<&ChosenModule> {
        self.chosen_module.as_ref()
    }

    /// The tokens in use (the PKCS#11 module).
    pub fn token_module(&self) -> &dyn TokenModule {
        self.tokens.as_ref()
    }

    /// Record why the current step failed (a wrong or locked PIN, a token taken away, a failed
    /// export...) as an `exception` by Conclave naming the step and what failed, so that the
    /// transcript shows the attempt and not only the `resume` of the next run. The text is the
    /// error's: it names the keyholder and the token, never a PIN.
    pub fn record_failure(&mut self, e: &DriverError) -> Result<(), DriverError> {
        if self.transcript.is_none() {
            return Ok(());
        }
        let kind = match e {
            DriverError::WrongPin(_) => "wrong PIN",
            DriverError::WrongManagementKey(_) => "wrong PIV management key",
            DriverError::PinLocked(_) => "PIN locked",
            DriverError::TokenRemoved(_) => "token removed",
            DriverError::Refused(_) => "refused",
            DriverError::Io(_) => "failed",
            DriverError::InUse(_) => "workspace in use",
            DriverError::NotRecorded(_) => "not recorded",
        };
        let step = self.step();
        let text = format!("step {step}: {kind}: {e}");
        self.record_one(
            SYSTEM_ACTOR,
            Event::Exception {
                step,
                witness: SYSTEM_ACTOR.into(),
                text,
            },
        )?;
        Ok(())
    }

    /// Record an event: the engine decides first; only an accepted event is appended to the
    /// transcript (fsynced) and counts. Policy warnings it raises are acknowledged by the
    /// administrator as events of their own, and returned.
    pub fn record(&mut self, actor: &str, event: Event) -> Result<Vec<String>, DriverError> {
        let notes = std::mem::take(
            &mut *self
                .notes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for note in notes {
            self.record_one(SYSTEM_ACTOR, note)?;
        }
        self.record_one(actor, event)
    }

    /// Record the current step's event ([`Session::record`]); a record not written comes back
    /// as a [`NotRecorded`] naming the step and the record ([`record_name`]), its source keeping
    /// the kind (a failed write is I/O, an event the engine refuses is refused).
    pub fn record_step(&mut self, actor: &str, event: Event) -> Result<Vec<String>, NotRecorded> {
        let step = self.step();
        let what = record_name(&event);
        self.record(actor, event)
            .map_err(|source| NotRecorded::new(step, what, source))
    }

    fn record_one(&mut self, actor: &str, event: Event) -> Result<Vec<String>, DriverError> {
        let mut trial = self.engine.clone();
        let new_warnings = trial
            .apply(&event)
            .map_err(|e| DriverError::Refused(e.to_string()))?;
        let at = self.stamp();
        self.file()?
            .append(
                actor,
                trial_step(&event),
                event.action(),
                event.to_value(),
                at,
            )
            .map_err(io("writing the transcript"))?;
        self.engine = trial;
        if self.practice_tokens && matches!(event, Event::KeyGenerated { .. }) {
            save_tokens(&self.ws)?;
        }
        for w in &new_warnings {
            let ack = Event::WarningAcknowledged {
                step: self.step(),
                warning: w.clone(),
            };
            self.engine
                .apply(&ack)
                .map_err(|e| DriverError::Refused(e.to_string()))?;
            let at = self.stamp();
            self.file()?
                .append(
                    "administrator",
                    trial_step(&ack),
                    ack.action(),
                    ack.to_value(),
                    at,
                )
                .map_err(io("writing the transcript"))?;
            self.warnings.push(w.clone());
        }
        Ok(new_warnings)
    }
}

#[cfg(test)]
impl Session {
    /// SLOW DISK (test builds only): the next transcript append waits for the returned sender
    /// ([`super::transcript_file::TranscriptFile::hold_next_append`]).
    pub(crate) fn hold_next_append(&mut self) -> std::sync::mpsc::Sender<()> {
        match self.transcript.as_mut() {
            Some(t) => t.hold_next_append(),
            None => std::sync::mpsc::channel().0,
        }
    }

    /// FULL DISK (test builds only): every transcript write from now on fails with `ENOSPC`
    /// ([`super::transcript_file::TranscriptFile::fill_the_disk`]).
    pub(crate) fn fill_the_disk(&mut self) {
        if let Some(t) = self.transcript.as_mut() {
            t.fill_the_disk().expect("/dev/full");
        }
    }
}

/// Remove the transcript at `tpath` when it holds no complete record (empty, or only a torn
/// first line: an interruption while its `begin` was written); what was removed, as an event
/// for the new transcript.
fn restart_if_empty(tpath: &Path, engine: &Engine) -> Result<Option<Event>, DriverError> {
    let bytes = match std::fs::read(tpath) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(tpath.display())(e)),
    };
    if bytes.contains(&b'\n') {
        return Ok(None);
    }
    crate::fault::point("remove empty transcript");
    std::fs::remove_file(tpath).map_err(io(format!("removing {}", tpath.display())))?;
    let name = tpath
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Some(Event::Exception {
        step: engine.current_step().unwrap_or("end").to_string(),
        witness: SYSTEM_ACTOR.into(),
        text: format!(
            "an earlier run was interrupted while it began the transcript {name}: it held no \
             complete record ({} bytes, SHA-256 {}) and was started again",
            bytes.len(),
            hex::encode(crate::transcript::record::sha256(&bytes))
        ),
    }))
}

/// The transcripts of `script_name` in the workspace, oldest first: a bootstrap's one
/// (`SCRIPT.transcript.jsonl`), or one per ceremony (`SCRIPT-vN.transcript.jsonl`, by N).
fn transcripts(ws: &Workspace, script_name: &str, kind: Kind) -> Vec<PathBuf> {
    if kind == Kind::BootstrapRoot {
        let p = ws.transcript(script_name);
        return if p.exists() { vec![p] } else { Vec::new() };
    }
    let prefix = format!("{script_name}-v");
    let Ok(rd) = std::fs::read_dir(&ws.dir) else {
        return Vec::new();
    };
    let mut numbered: Vec<(u64, PathBuf)> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name
                .strip_prefix(&prefix)?
                .strip_suffix(".transcript.jsonl")?
                .parse::<u64>()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    numbered.sort();
    numbered.into_iter().map(|(_, p)| p).collect()
}

/// The transcript of `script_name` in the workspace that is not finished yet, if any: not
/// sealed, or sealed with its key-event log or its own export still to write.
pub(super) fn unfinished(
    ws: &Workspace,
    script_name: &str,
    script: &Script,
    log_planned: bool,
) -> Result<Option<PathBuf>, DriverError> {
    for p in transcripts(ws, script_name, script.kind) {
        match finished(ws, &p, script)? {
            None => return Ok(Some(p)),
            // Sealed, but its last writes were cut: the key-event log, or the transcript's
            // own export (the copy in `export/` and its line in `SHA256SUMS`).
            Some(done)
                if log_step_missing(ws, log_planned, &done.seal)
                    || !super::export::transcript_exported(ws, &p) =>
            {
                return Ok(Some(p));
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

/// The transcript opening `script_name` uses ([`Start`]), decided from the workspace's
/// transcripts alone (before any token is touched: a refusal changes nothing):
/// - an unfinished ceremony is continued; `--new` is refused (keys may exist: it is never
///   abandoned);
/// - else the newest finished one is reported again, never a new one started: a rerun after
///   a cut at its last writes looks exactly like a finished ceremony. A tuf-on-ci or RSTUF
///   signing ceremony is reported only when it signed the event now on the input media (the
///   same files; for RSTUF, the same keyholders); another event is a new signing ceremony,
///   with or without `--new`, and `--new` over the same event is refused (signed once);
/// - `--new` starts the next one, except a second bootstrap of the workspace or a second
///   practice root rotation (dave joins, carol leaves: a second one could only fail).
fn transcript_to_open(
    ws: &Workspace,
    script_name: &str,
    script: &Script,
    engine: &Engine,
    plan: &Plan,
    practice: bool,
    start: Start,
) -> Result<PathBuf, DriverError> {
    let new = start == Start::New;
    if let Some(p) = unfinished(ws, script_name, script, plan.log_origin.is_some())? {
        if new {
            return Err(DriverError::Refused(format!(
                "--new: the {script_name} ceremony of {} is not finished (keys may already be in \
                 the tokens): continue it: run without --new",
                p.display()
            )));
        }
        return Ok(p);
    }
    // Every transcript of the script here is finished.
    let newest = transcripts(ws, script_name, script.kind).pop();
    match script.kind {
        Kind::BootstrapRoot => match newest {
            Some(p) if new => Err(DriverError::Refused(format!(
                "--new: {} is this workspace's {script_name} ceremony, finished; {}",
                p.display(),
                another_ceremony(script_name, script.kind, practice)
            ))),
            _ => Ok(ws.transcript(script_name)),
        },
        Kind::SignTufOnCiEvent | Kind::SignRstufPendingRoot => {
            let signed = newest.filter(|p| {
                if script.kind == Kind::SignTufOnCiEvent {
                    engine
                        .tuf_on_ci_input_folders()
                        .is_some_and(|f| super::tuf_on_ci::signed_same_event(ws, p, &f))
                } else {
                    engine.rstuf_pending_input().is_some_and(|(file, _)| {
                        super::rstuf::signed_same_pending(ws, p, &file, &plan.keyholders)
                    })
                }
            });
            match signed {
                Some(p) if new => Err(DriverError::Refused(format!(
                    "--new: {} signed the event on the input media already; {}",
                    p.display(),
                    another_ceremony(script_name, script.kind, practice)
                ))),
                Some(p) => Ok(p),
                None => Ok(super::tuf_on_ci::next_transcript(ws, script_name)),
            }
        }
        _ => match newest {
            Some(p) if !new => Ok(p),
            Some(p) if practice && script.kind == Kind::RotateRootKeys => {
                Err(DriverError::Refused(format!(
                    "--new: {} is this workspace's practice {script_name}, finished; {}",
                    p.display(),
                    another_ceremony(script_name, script.kind, practice)
                )))
            }
            _ => {
                // Named after the version the ceremony produces: targets for a ceremony that
                // changes only targets, root otherwise.
                let role = if matches!(
                    script.kind,
                    Kind::DelegateClaimedProjects | Kind::SignIntotoLayout | Kind::PublishTargets
                ) {
                    "targets"
                } else {
                    "root"
                };
                let next = latest(&ws.export(), role).map_or(1, |(v, _)| v + 1);
                let p = ws
                    .dir
                    .join(format!("{script_name}-v{next}.transcript.jsonl"));
                if new && p.exists() {
                    return Err(DriverError::Refused(format!(
                        "--new: {} is a finished ceremony, but {next}.{role}.json is not in {}: \
                         nothing was started",
                        p.display(),
                        ws.export().display()
                    )));
                }
                Ok(p)
            }
        },
    }
}

/// How another ceremony of `script_name` starts, as the report of a finished one says it.
fn another_ceremony(script_name: &str, kind: Kind, practice: bool) -> String {
    match kind {
        Kind::BootstrapRoot => format!(
            "a workspace holds one {script_name} ceremony: another one starts in a new workspace"
        ),
        Kind::SignTufOnCiEvent | Kind::SignRstufPendingRoot => format!(
            "each event is signed once: another {script_name} ceremony starts when the input \
             media bring another event (the same command, without --new)"
        ),
        Kind::RotateRootKeys if practice => format!(
            "the practice {script_name} adds dave and removes carol, so a second one here could \
             only fail: to rehearse it again, use a new workspace (a bootstrap first)"
        ),
        _ => format!(
            "to start another {script_name} ceremony in this workspace: the same command with \
             --new"
        ),
    }
}

/// Whether the rehearsal workspace `dir` holds an unfinished practice ceremony of the shipped
/// script `script_name`: a transcript that is not sealed, or sealed with its key-event log step
/// missing (a rehearsal always keeps a log) or its own export cut short. `conclave rehearse`
/// without `--workspace` continues the newest such folder. Reads only; takes no lock and
/// touches no token.
pub fn rehearsal_unfinished(dir: &Path, script_name: &str) -> Result<bool, DriverError> {
    let text = super::scripts::shipped_script(script_name).ok_or_else(|| {
        DriverError::Refused(format!(
            "no shipped ceremony script named \"{script_name}\""
        ))
    })?;
    let script = Script::parse(&format!("{script_name}.toml"), text).map_err(|e| {
        DriverError::Refused(
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let ws = Workspace {
        dir: dir.to_path_buf(),
    };
    Ok(unfinished(&ws, script_name, &script, true)?.is_some())
}

pub(super) fn trial_step(ev: &Event) -> Option<&str> {
    ev.step_id()
}
