//! Script conformance for the auditor: replay a transcript's events through the engine with the
//! script the transcript carries, so every step is checked against the script by the same code
//! that ran the ceremony (order of steps, people, keys, digests reviewed and signed, every
//! signature verified, thresholds met, what was exported, the seal's artifacts).

use super::engine::{Engine, Event, RoleKeyTable};
use super::script::Script;
use crate::transcript::details::BeginDetails;
use crate::transcript::record::Record;

/// What the replay found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conformance {
    /// Every event was accepted by the engine; `complete` when the ceremony reached its end.
    Followed {
        /// Engine events replayed.
        events: usize,
        /// Whether every step of the script was completed.
        complete: bool,
        /// Warnings and exceptions recorded.
        notes: Vec<String>,
        /// Every role's keys before and after the ceremony (the replayed engine's view).
        keys: Vec<RoleKeyTable>,
    },
    /// The first record the engine refuses.
    Broken {
        /// Its seq.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// Conformance cannot be checked (no embedded script, or a kind this engine cannot replay).
    NotChecked(String),
}

impl Conformance {
    /// One line for reports.
    pub fn line(&self) -> String {
        match self {
            Conformance::Followed {
                events,
                complete: true,
                ..
            } => format!(
                "script conformance: every step followed the script ({events} events replayed by the engine; signatures, thresholds and exports rechecked)"
            ),
            Conformance::Followed { events, .. } => format!(
                "script conformance: the {events} events recorded follow the script, but the ceremony did not reach its end"
            ),
            Conformance::Broken { seq, reason } => {
                format!("script conformance: BROKEN at seq {seq}: {reason}")
            }
            Conformance::NotChecked(why) => format!("script conformance: not checked ({why})"),
        }
    }

    /// The key table of a replayed ceremony.
    pub fn keys(&self) -> &[RoleKeyTable] {
        match self {
            Conformance::Followed { keys, .. } => keys,
            _ => &[],
        }
    }

    /// Whether the transcript conforms (a transcript that cannot be checked is not failed).
    pub fn failed(&self) -> bool {
        matches!(self, Conformance::Broken { .. })
    }
}

/// Replay the (already chain-verified) records.
pub fn check(records: &[Record]) -> Conformance {
    let Some(first) = records.first() else {
        return Conformance::NotChecked("empty transcript".into());
    };
    let begin = match BeginDetails::from_value(first.details.clone(), "$.details") {
        Ok(b) => b,
        Err(e) => return Conformance::NotChecked(format!("first record: {e}")),
    };
    let Some(text) = &begin.script.text else {
        return Conformance::NotChecked(
            "the transcript does not carry its script text; check it against the exported script"
                .into(),
        );
    };
    let script = match Script::parse(&format!("{}.toml", begin.script.name), text) {
        Ok(s) => s,
        Err(e) => {
            return Conformance::Broken {
                seq: first.seq,
                reason: format!(
                    "the embedded script does not parse: {}",
                    e.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            };
        }
    };
    let mut engine = match Engine::new(script) {
        Ok(e) => e,
        Err(e) => return Conformance::NotChecked(e.to_string()),
    };
    let mut events = 0;
    let mut notes = Vec::new();
    let mut sealed_artifacts = None;
    for r in &records[1..] {
        match r.action.as_str() {
            "resume" | "seal-signature" => continue,
            "seal" => {
                sealed_artifacts = r
                    .details
                    .as_object()
                    .and_then(|m| m.get("artifacts"))
                    .cloned();
                continue;
            }
            _ => {}
        }
        let ev = match Event::from_value(&r.details) {
            Ok(ev) => ev,
            Err(e) => {
                return Conformance::Broken {
                    seq: r.seq,
                    reason: format!("not an engine event: {e}"),
                };
            }
        };
        if ev.action() != r.action {
            return Conformance::Broken {
                seq: r.seq,
                reason: format!(
                    "record action \"{}\" does not match its details (\"{}\")",
                    r.action,
                    ev.action()
                ),
            };
        }
        match &ev {
            Event::Exception { witness, text, .. } => {
                notes.push(format!("exception by {witness}: {text}"))
            }
            Event::WarningAcknowledged { warning, .. } => notes.push(format!("warning: {warning}")),
            _ => {}
        }
        if let Err(e) = engine.apply(&ev) {
            return Conformance::Broken {
                seq: r.seq,
                reason: e.to_string(),
            };
        }
        events += 1;
    }
    let complete = engine.current_step().is_none();
    if complete && let Some(listed) = sealed_artifacts {
        use sha2::Digest;
        for (name, bytes) in engine.export_files() {
            let digest = hex::encode(sha2::Sha256::digest(&bytes));
            let found = listed.to_string().contains(&digest) && listed.to_string().contains(&name);
            if !found {
                return Conformance::Broken {
                    seq: records.last().map_or(0, |r| r.seq),
                    reason: format!(
                        "the seal does not list {name} as the engine built and signed it"
                    ),
                };
            }
        }
    }
    Conformance::Followed {
        events,
        complete,
        notes,
        keys: engine.key_table(),
    }
}
