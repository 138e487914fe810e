//! What a ceremony produced, as data: the headless runner, `conclave ceremony run` and the UI
//! render it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::ceremony::engine::{Engine, Event};
use crate::ceremony::script::Script;

use super::error::{DriverError, io};
use super::log_step::log_of_seal;
use super::workspace::Workspace;

/// The key-event log a ceremony extended at its seal.
#[derive(Debug, Clone)]
pub struct KeyLog {
    /// The new log directory (`export/log-NNN`).
    pub dir: PathBuf,
    /// The log it extends, if any.
    pub previous: Option<PathBuf>,
    /// Keyholders whose tokens signed its checkpoint here.
    pub signed_by: Vec<String>,
}

/// What a finished rehearsal produced.
#[derive(Debug)]
pub struct CeremonyReport {
    /// The key-event log extended at the seal, if one was written.
    pub key_log: Option<KeyLog>,
    /// The transcript.
    pub transcript: PathBuf,
    /// Exported files.
    pub exported: Vec<String>,
    /// Export folder.
    pub export_dir: PathBuf,
    /// Hash of the seal record (what witnesses write down).
    pub seal: String,
    /// Whether an earlier run's transcript was continued.
    pub resumed: bool,
    /// Whether the ceremony was already complete (sealed) and nothing was changed.
    pub already_complete: bool,
    /// Events replayed from an earlier, interrupted run.
    pub resumed_events: usize,
    /// A finished ceremony reported again: how another ceremony of its script starts (the
    /// same command with `--new`, or why not).
    pub another: Option<String>,
    /// Warnings the run acknowledged.
    pub warnings: Vec<String>,
    /// Practice token files restored after an interruption emptied them.
    pub repaired: Vec<String>,
    /// What an interruption left that Conclave removed, as the transcript records it.
    pub cleaned: Vec<String>,
    /// Each key generated.
    pub keys: Vec<KeyRow>,
    /// Role to the SHA-256 of the canonical bytes that were reviewed and signed.
    pub digests: BTreeMap<String, String>,
    /// The review: what changed, as people read it.
    pub review: Vec<String>,
    /// The keyholders who took part.
    pub keyholders: Vec<String>,
    /// A signed tuf-on-ci event: its folder and the known-good one under the input media, as
    /// the script names them.
    pub event_inputs: Option<(String, String)>,
}

/// A key generated in a token: keyholder, token serial, key id, scheme.
pub type KeyRow = (String, String, String, String);

pub(super) fn summary(engine: &Engine) -> (Vec<KeyRow>, BTreeMap<String, String>) {
    let keys = engine
        .generated_keys()
        .iter()
        .map(|(who, serial, k)| {
            let id = crate::ceremony::engine::owned_key(k, who).key_id().0;
            (who.clone(), serial.clone(), id, k.scheme.clone())
        })
        .collect();
    let digests = engine.proposal().map(|p| p.digests()).unwrap_or_default();
    (keys, digests)
}

/// A ceremony whose transcript is sealed and signed by every signer is finished: running the
/// same command again only reports it.
pub(super) fn finished(
    ws: &Workspace,
    tpath: &Path,
    script: &Script,
) -> Result<Option<CeremonyReport>, DriverError> {
    if !tpath.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(tpath).map_err(io(tpath.display()))?;
    let Ok(t) = crate::transcript::chain::verify_chain(&bytes) else {
        // A torn or damaged transcript: open_resume decides what can be repaired.
        return Ok(None);
    };
    let Some(seal_at) = t.seal_index() else {
        return Ok(None);
    };
    if crate::transcript::seal::verify_seal(&t).is_err() {
        return Ok(None);
    }
    let events: Vec<Event> = t
        .records()
        .iter()
        .filter(|r| !crate::transcript::seal::is_transcript_action(&r.action))
        .filter_map(|r| Event::from_value(&r.details).ok())
        .collect();
    let engine = Engine::replay(script.clone(), &events).map_err(|(i, e)| {
        DriverError::Refused(format!(
            "{}: event {i} does not replay: {e}",
            tpath.display()
        ))
    })?;
    let seal = t
        .records()
        .get(seal_at)
        .map(|r| hex::encode(r.hash))
        .unwrap_or_default();
    let (keys, digests) = summary(&engine);
    Ok(Some(CeremonyReport {
        // Its key-event log, for the checks to verify again.
        key_log: log_of_seal(ws, &seal).map(|(dir, previous)| KeyLog {
            dir,
            previous,
            signed_by: Vec::new(),
        }),
        review: engine.review_lines(),
        keyholders: engine.keyholders().to_vec(),
        event_inputs: engine.tuf_on_ci_input_folders(),
        keys,
        digests,
        transcript: tpath.to_path_buf(),
        exported: engine.export_files().into_iter().map(|(n, _)| n).collect(),
        export_dir: tpath
            .parent()
            .map_or_else(PathBuf::new, |p| p.join("export")),
        seal,
        repaired: Vec::new(),
        cleaned: Vec::new(),
        resumed: true,
        already_complete: true,
        resumed_events: events.len(),
        another: None,
        warnings: Vec::new(),
    }))
}
