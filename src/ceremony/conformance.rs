//! Script conformance and the auditor's whole verdict: replay a transcript's events through the
//! engine with the script the transcript carries, so every step is checked against the script by
//! the same code that ran the ceremony (order of steps, people, keys, digests reviewed and
//! signed, every signature verified, thresholds met, what was exported, the seal's artifacts);
//! then anchor the seal in the root the auditor trusts ([`verify_transcript`]).
//!
//! Pure: the transcript, the artifacts found, the trusted root, the exported roots and the
//! key-event log come in as bytes and values; the CLI reads the files.

use super::engine::{Engine, Event, RoleKeyTable, key_owner};
use super::script::Script;
use crate::transcript::audit::{Anchor, AnchorSigner, Audit, LogCheck, Note, Room, Verdict, audit};
use crate::transcript::details::{BeginDetails, FileDigest};
use crate::transcript::record::Record;
use crate::transcript::seal::{VerifiedSeal, seal_statement};
use crate::transparency::log::{Log, verify as verify_log};
use crate::transparency::note::SignedCheckpoint;
use crate::tuf::canonical::Map;
use crate::tuf::key::Key;
use crate::tuf::metadata::{Metadata, RoleType, Root, Signature};
use crate::tuf::verify::{TrustedRoot, trust_root, update_root};

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

/// What the replayed engine knows at the end of the ceremony: the anchor needs it.
#[derive(Clone, Debug, Default)]
pub struct EndState {
    /// The root before the ceremony (the one it loaded), if any.
    pub root_before: Option<Metadata<Root>>,
    /// The root in force at the end: the ceremony's new root, else the one it loaded.
    pub root_after: Option<Metadata<Root>>,
    /// Keys whose holder the transcript names: generated in a keyholder's token here, or listed
    /// with an owner by the root before or after.
    pub holders: Vec<(String, Key)>,
    /// Every key of the ceremony: generated here or listed by the root before or after.
    pub known: Vec<Key>,
    /// The keyholders of the roll call.
    pub keyholders: Vec<String>,
    /// (token key id, metadata key id) for every known key the metadata lists under another
    /// id than the token key's own (the owner field is part of the key id).
    pub key_ids: Vec<(String, String)>,
}

/// The replay: conformance, the room's record and the engine's end state.
#[derive(Clone, Debug)]
pub struct Replay {
    /// Whether the events follow the script.
    pub conformance: Conformance,
    /// Practice, air-gap, warnings and exceptions.
    pub room: Room,
    /// The end state (`None` unless every event was accepted).
    pub end: Option<EndState>,
}

/// Replay the (already chain-verified) records.
pub fn check(records: &[Record]) -> Conformance {
    replay(records).conformance
}

/// Replay the (already chain-verified) records, keeping what the anchor and the report need.
pub fn replay(records: &[Record]) -> Replay {
    let mut room = Room::default();
    let (conformance, engine) = replay_into(records, &mut room);
    let end = engine.as_ref().map(end_state);
    Replay {
        conformance,
        room,
        end,
    }
}

/// The engine's end state after a replay that was accepted.
fn end_state(engine: &Engine) -> EndState {
    let root_before = engine.current().map(|(r, _)| r.clone());
    // RSTUF's pending root is not in force when its ceremony ends (RSTUF collects the rest of
    // its thresholds): the trusted root it was reviewed against is; its keys are still keys of
    // this ceremony.
    let pending = engine.rstuf_pending_root().cloned();
    let root_after = engine
        .proposal()
        .ok()
        .and_then(|p| p.root)
        .filter(|_| pending.is_none())
        .or_else(|| root_before.clone());
    let mut holders: Vec<(String, Key)> = engine
        .generated_keys()
        .iter()
        .map(|(who, _, key)| (who.clone(), key.clone()))
        .collect();
    let mut known: Vec<Key> = holders.iter().map(|(_, k)| k.clone()).collect();
    for root in [&root_after, &root_before, &pending].into_iter().flatten() {
        for (_, key) in &root.signed().keys {
            if let Some(owner) = key_owner(key) {
                holders.push((owner.to_string(), key.clone()));
            }
            known.push(key.clone());
        }
    }
    let mut key_ids: Vec<(String, String)> = Vec::new();
    for key in &known {
        let Ok(pk) = key.public_key() else { continue };
        let token = Key::from_public_key(&pk).key_id().0;
        if let Some(meta) = engine.key_for_material(&pk.material())
            && meta.0 != token
            && !key_ids.iter().any(|(t, _)| *t == token)
        {
            key_ids.push((token, meta.0));
        }
    }
    EndState {
        root_before,
        root_after,
        holders,
        known,
        keyholders: engine.keyholders().to_vec(),
        key_ids,
    }
}

fn replay_into(records: &[Record], room: &mut Room) -> (Conformance, Option<Engine>) {
    let Some(first) = records.first() else {
        return (Conformance::NotChecked("empty transcript".into()), None);
    };
    let begin = match BeginDetails::from_value(first.details.clone(), "$.details") {
        Ok(b) => b,
        Err(e) => return (Conformance::NotChecked(format!("first record: {e}")), None),
    };
    let Some(text) = &begin.script.text else {
        return (
            Conformance::NotChecked(
                "the transcript does not carry its script text; check it against the exported script"
                    .into(),
            ),
            None,
        );
    };
    let script = match Script::parse(&format!("{}.toml", begin.script.name), text) {
        Ok(s) => s,
        Err(e) => {
            return (
                Conformance::Broken {
                    seq: first.seq,
                    reason: format!(
                        "the embedded script does not parse: {}",
                        e.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                },
                None,
            );
        }
    };
    let mut engine = match Engine::new(script) {
        Ok(e) => e,
        Err(e) => return (Conformance::NotChecked(e.to_string()), None),
    };
    let mut events = 0;
    let mut notes = Vec::new();
    let mut sealed_artifacts = None;
    for r in &records[1..] {
        match r.action.as_str() {
            "resume" | "seal-signature" => continue,
            crate::transcript::seal::WITHDRAWAL_ACTION => {
                // The seal's verification checks it; the room's notes list it with its reason.
                if let Ok(w) = crate::transcript::seal::SealWithdrawal::from_value(
                    r.details.clone(),
                    "details",
                ) {
                    let what = format!(
                        "key {} withdrawn from the seal (a new seal lists the others): {}",
                        w.keyid, w.reason
                    );
                    notes.push(format!("withdrawal: {what}"));
                    room.notes.push(Note {
                        seq: r.seq,
                        time: r.time.to_string(),
                        who: r.actor.clone(),
                        step: "seal".into(),
                        kind: "withdrawal",
                        text: what,
                    });
                }
                continue;
            }
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
                return (
                    Conformance::Broken {
                        seq: r.seq,
                        reason: format!("not an engine event: {e}"),
                    },
                    None,
                );
            }
        };
        if ev.action() != r.action {
            return (
                Conformance::Broken {
                    seq: r.seq,
                    reason: format!(
                        "record action \"{}\" does not match its details (\"{}\")",
                        r.action,
                        ev.action()
                    ),
                },
                None,
            );
        }
        match &ev {
            Event::Exception {
                witness,
                text,
                step,
            } => {
                notes.push(format!("exception by {witness}: {text}"));
                room.notes.push(Note {
                    seq: r.seq,
                    time: r.time.to_string(),
                    who: witness.clone(),
                    step: step.clone(),
                    kind: "exception",
                    text: text.clone(),
                });
            }
            Event::WarningAcknowledged { warning, step } => {
                notes.push(format!("warning: {warning}"));
                room.notes.push(Note {
                    seq: r.seq,
                    time: r.time.to_string(),
                    who: r.actor.clone(),
                    step: step.clone(),
                    kind: "warning",
                    text: warning.clone(),
                });
            }
            Event::SignerSkipped {
                keyholder,
                reason,
                step,
            }
            | Event::SealSkipped {
                keyholder,
                reason,
                step,
            } => {
                let what = if matches!(ev, Event::SealSkipped { .. }) {
                    format!("{keyholder} does not sign the seal: {reason}")
                } else {
                    format!("{keyholder} does not sign: {reason}")
                };
                notes.push(format!("skip: {what}"));
                room.notes.push(Note {
                    seq: r.seq,
                    time: r.time.to_string(),
                    who: r.actor.clone(),
                    step: step.clone(),
                    kind: "skip",
                    text: what,
                });
            }
            Event::ParametersCorrected { step, .. } => {
                let what = crate::transcript::display::describe(&ev);
                notes.push(what.clone());
                room.notes.push(Note {
                    seq: r.seq,
                    time: r.time.to_string(),
                    who: r.actor.clone(),
                    step: step.clone(),
                    kind: "correction",
                    text: what,
                });
            }
            Event::Parameters { practice, .. } => room.practice = *practice,
            Event::AirgapChecked {
                interfaces, radios, ..
            } => room.airgap = Some((interfaces.clone(), radios.clone())),
            _ => {}
        }
        if let Err(e) = engine.apply(&ev) {
            return (
                Conformance::Broken {
                    seq: r.seq,
                    reason: e.to_string(),
                },
                None,
            );
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
                return (
                    Conformance::Broken {
                        seq: records.last().map_or(0, |r| r.seq),
                        reason: format!(
                            "the seal does not list {name} as the engine built and signed it"
                        ),
                    },
                    None,
                );
            }
        }
    }
    (
        Conformance::Followed {
            events,
            complete,
            notes,
            keys: engine.key_table(),
        },
        Some(engine),
    )
}

/// The key-event log as read from its directory.
#[derive(Clone, Copy, Debug)]
pub struct LogInput<'a> {
    /// Its name for messages (the directory).
    pub name: &'a str,
    /// The entries.
    pub log: &'a Log,
    /// The latest checkpoint.
    pub checkpoint: &'a SignedCheckpoint,
    /// Earlier checkpoints (file name, checkpoint).
    pub history: &'a [(String, SignedCheckpoint)],
}

/// Everything `conclave transcript verify` checks, as values.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuditInput<'a> {
    /// The transcript's bytes.
    pub transcript: &'a [u8],
    /// The artifacts folder's files (`--artifacts`).
    pub artifacts: Option<&'a [FileDigest]>,
    /// Accept an unsealed transcript (`--partial`).
    pub partial: bool,
    /// The root the auditor trusts (file name, bytes) (`--trusted-root`).
    pub trusted_root: Option<(&'a str, &'a [u8])>,
    /// Exported root files (`N.root.json`: name, bytes) for the chain from the trusted root to
    /// the root the ceremony loaded.
    pub exported_roots: &'a [(String, Vec<u8>)],
    /// The key-event log (`--log`).
    pub log: Option<LogInput<'a>>,
    /// RSTUF payload files of the artifacts folder (name, bytes): their `settings` are compared
    /// with the ones the sealed transcript recorded at the export.
    pub payloads: &'a [(String, Vec<u8>)],
}

/// The auditor's verdict on a transcript: the hash chain, the seal and the artifacts
/// ([`audit`]); every step replayed through the engine ([`replay`]); the seal anchored in the
/// trusted root ([`anchor`]); the key-event log holding the seal. Without a trusted root the
/// verdict is at best [`Verdict::Unanchored`]. Every VALID Conclave prints after a ceremony comes
/// from this function.
pub fn verify_transcript(input: &AuditInput<'_>) -> Audit {
    let mut a = audit(input.transcript, input.artifacts, input.partial);
    if a.chain_error.is_some() {
        return a;
    }
    let r = replay(&a.records);
    if r.conformance.failed() {
        a.verdict = Verdict::Invalid(r.conformance.line());
    }
    a.conformance = Some(r.conformance.line());
    // An RSTUF payload edited after the ceremony: the field named, not only its digest.
    if !r.conformance.failed()
        && matches!(a.seal, Some(Ok(_)))
        && let Some(why) = payload_settings_problem(&a.records, input.payloads)
    {
        a.verdict = Verdict::Invalid(why);
    }
    a.keys = r.conformance.keys().to_vec();
    a.room = Some(r.room);
    a.key_ids = r
        .end
        .as_ref()
        .map(|e| e.key_ids.clone())
        .unwrap_or_default();
    let Some(Ok(seal)) = &a.seal else {
        return a;
    };
    let seal = seal.clone();
    let Some((name, bytes)) = input.trusted_root else {
        return a;
    };
    let end = match (&r.conformance, r.end) {
        (Conformance::Followed { complete: true, .. }, Some(end)) => end,
        (c, _) => {
            let why = format!(
                "the seal cannot be anchored: the replay of the events does not give the root the ceremony ended with ({})",
                c.line()
            );
            a.anchor = Some(Anchor {
                trusted: name.to_string(),
                chain: Vec::new(),
                root_version: None,
                count: None,
                signers: Vec::new(),
                error: Some(why.clone()),
            });
            if a.verdict == Verdict::Unanchored {
                a.verdict = Verdict::Invalid(why);
            }
            return a;
        }
    };
    let (anchored, trusted_root) = anchor(&seal, &end, name, bytes, input.exported_roots);
    let anchor_error = anchored.error.clone();
    a.anchor = Some(anchored);
    if let Some(l) = input.log {
        a.log = Some(match (&trusted_root, &end.root_after) {
            (Some(_), Some(root)) => check_log(&seal, root, l),
            _ => LogCheck {
                name: l.name.to_string(),
                passed: false,
                lines: Vec::new(),
                failure: Some(
                    "not checked: the seal is not anchored, so the root whose keys must sign the checkpoint is not known".into(),
                ),
            },
        });
    }
    if a.verdict == Verdict::Unanchored {
        a.verdict = match (anchor_error, &a.log) {
            (Some(e), _) => Verdict::Invalid(e),
            (None, Some(l)) if !l.passed => Verdict::Invalid(format!(
                "key-event log {}: {}",
                l.name,
                l.failure.as_deref().unwrap_or("does not verify")
            )),
            (None, _) => Verdict::Valid,
        };
    }
    a
}

/// The first RSTUF payload among `payloads` whose `settings` differ from the ones the
/// transcript's export record keeps, the file and field named. `None` when they agree, when no
/// payload was given, or when the transcript records no settings (written before they were
/// recorded: the seal's artifact digests still cover the file).
pub fn payload_settings_problem(
    records: &[Record],
    payloads: &[(String, Vec<u8>)],
) -> Option<String> {
    let recorded = records
        .iter()
        .filter(|r| r.action == "exported")
        .find_map(|r| match Event::from_value(&r.details) {
            Ok(Event::Exported {
                rstuf_settings: Some(v),
                ..
            }) => Some(v),
            _ => None,
        })?;
    payloads
        .iter()
        .filter(|(name, _)| name == crate::tuf::rstuf::CEREMONY_PAYLOAD)
        .find_map(|(name, bytes)| {
            crate::tuf::rstuf::check_payload_settings(name, bytes, &recorded).err()
        })
}

/// Anchor the seal: verify the trusted root by its own keys, walk the root chain from it to the
/// root in force at the end of the ceremony (the existing chain step, [`update_root`]), check
/// that every seal signature is by a key of this ceremony and labelled with the keyholder the
/// transcript says holds it, and count the signatures with that root's root role (the one
/// threshold counter, [`TrustedRoot::count`]: distinct keys, the root role's threshold).
pub fn anchor(
    seal: &VerifiedSeal,
    end: &EndState,
    trusted_name: &str,
    trusted_bytes: &[u8],
    exported_roots: &[(String, Vec<u8>)],
) -> (Anchor, Option<TrustedRoot>) {
    let mut out = Anchor {
        trusted: trusted_name.to_string(),
        chain: Vec::new(),
        root_version: None,
        count: None,
        signers: Vec::new(),
        error: None,
    };
    let fail = |mut out: Anchor, why: String| {
        out.error = Some(why);
        (out, None)
    };
    let trusted = match trust_root(trusted_name, trusted_bytes) {
        Ok((t, _)) => t,
        Err(e) => return fail(out, format!("the trusted root does not verify: {e}")),
    };
    let tv = trusted.root().common.version;
    out.trusted = format!(
        "{trusted_name} (root version {tv}, signed sha256 {})",
        hex::encode(trusted.metadata().signed_digest())
    );
    let Some(after) = &end.root_after else {
        return fail(
            out,
            "the ceremony neither loaded nor made a root, so its seal cannot be anchored".into(),
        );
    };
    let fv = after.signed().common.version;
    out.root_version = Some(fv);
    let root = if tv > fv {
        return fail(
            out,
            format!(
                "the trusted root is version {tv}, newer than root version {fv} this ceremony ended with: give the root in force at the ceremony or before it"
            ),
        );
    } else if tv == fv {
        if trusted.metadata().signed_digest() != after.signed_digest() {
            return fail(
                out,
                format!(
                    "the root this ceremony ended with (version {fv}, signed sha256 {}) is not the trusted root (version {tv}, signed sha256 {}): the transcript is of another registry, or its keys were replaced",
                    hex::encode(after.signed_digest()),
                    hex::encode(trusted.metadata().signed_digest())
                ),
            );
        }
        trusted
    } else {
        let mut cur = trusted;
        for v in tv + 1..=fv {
            let file = format!("{v}.root.json");
            let bytes = if v == fv {
                after.to_file_bytes()
            } else if let Some(before) = end
                .root_before
                .as_ref()
                .filter(|b| b.signed().common.version == v)
            {
                before.to_file_bytes()
            } else if let Some((_, b)) = exported_roots.iter().find(|(n, _)| *n == file) {
                b.clone()
            } else {
                return fail(
                    out,
                    format!(
                        "the root chain from the trusted root version {tv} to root version {fv} this ceremony ended with needs {file} (give the folder of exported roots with --artifacts)"
                    ),
                );
            };
            let what = if v == fv {
                format!("root version {v} this ceremony ended with")
            } else {
                file.clone()
            };
            match update_root(&cur, &what, &bytes) {
                Ok((next, step)) => {
                    out.chain.push(format!(
                        "{what}: signed by {} of version {}, and by {} of its own",
                        step.by_previous.summary(),
                        v - 1,
                        step.by_self.summary()
                    ));
                    cur = next;
                }
                Err(e) => {
                    return fail(
                        out,
                        format!("the root chain from the trusted root version {tv}: {e}"),
                    );
                }
            }
        }
        cur
    };
    // Each signature: a key of this ceremony, labelled with its holder.
    let role = root.root().role(RoleType::Root);
    let mut sigs = Vec::new();
    for s in &seal.signers {
        let material = s.key.public_key().map(|pk| pk.material()).ok();
        let same =
            |k: &Key| material.is_some() && k.public_key().map(|pk| pk.material()).ok() == material;
        let holder = end
            .holders
            .iter()
            .find(|(_, k)| same(k))
            .map(|(w, _)| w.clone());
        let root_keyid = role
            .keyids
            .iter()
            .find(|id| root.root().key(id).is_some_and(same))
            .cloned();
        out.signers.push(AnchorSigner {
            seq: s.seq,
            actor: s.actor.clone(),
            keyid: s.keyid.0.clone(),
            holder: holder.clone(),
            root_keyid: root_keyid.as_ref().map(|k| k.0.clone()),
        });
        if !end.known.iter().any(same) {
            return fail(
                out,
                format!(
                    "seal signature at seq {} (\"{}\"): key {} is not a key of this ceremony: no keyholder generated it here and no root of the ceremony lists it (a foreign key)",
                    s.seq, s.actor, s.keyid
                ),
            );
        }
        match &holder {
            Some(h) if *h != s.actor => {
                return fail(
                    out,
                    format!(
                        "seal signature at seq {}: labelled \"{}\", but the transcript says key {} is held by {h} (relabelled after the seal?)",
                        s.seq, s.actor, s.keyid
                    ),
                );
            }
            None if !end.keyholders.contains(&s.actor) => {
                return fail(
                    out,
                    format!(
                        "seal signature at seq {}: \"{}\" is not a keyholder of the roll call",
                        s.seq, s.actor
                    ),
                );
            }
            _ => {}
        }
        if let Some(id) = root_keyid {
            sigs.push(Signature {
                keyid: id,
                sig: s.sig.clone(),
                unrecognized: Map::new(),
            });
        }
    }
    let msg = seal_statement(seal.seal_seq, &seal.seal_hash).canonical_bytes();
    let count = root.count(RoleType::Root, &msg, &sigs);
    let enough = count.verified();
    let summary = count.summary();
    out.count = Some(count);
    if !enough {
        return fail(
            out,
            format!(
                "the seal is signed by too few root keys of root version {fv}, the root in force at the end of the ceremony: {summary}"
            ),
        );
    }
    (out, Some(root))
}

/// The key-event log: it verifies with the root in force at the end of the ceremony as its
/// latest root (so that root's keys signed its checkpoint), and one of its entries carries this
/// transcript's seal hash.
fn check_log(seal: &VerifiedSeal, root: &Metadata<Root>, l: LogInput<'_>) -> LogCheck {
    let seal_hex = hex::encode(seal.seal_hash);
    let published =
        crate::transparency::event::Published::<Root>::from_bytes(&root.to_file_bytes());
    let mut lines = Vec::new();
    let mut failure = match published {
        Ok(p) => {
            let v = verify_log(l.log, l.checkpoint, l.history, None, Some(&p));
            for c in &v.checks {
                lines.push(format!("{} {}", if c.ok { "ok  " } else { "FAIL" }, c.text));
            }
            v.first_failure().map(|c| c.text.clone())
        }
        Err(e) => Some(format!("the ceremony's root does not load: {e}")),
    };
    let holds = l.log.entries().iter().any(|e| e.seal == seal_hex);
    if holds {
        lines.push(format!(
            "ok   seal: the log's entries carry this transcript's seal {seal_hex}"
        ));
    } else {
        let why = format!(
            "seal: no entry of the log carries this transcript's seal {seal_hex} (the ceremony's key events were not logged, or another transcript's were)"
        );
        lines.push(format!("FAIL {why}"));
        failure.get_or_insert(why);
    }
    LogCheck {
        name: l.name.to_string(),
        passed: failure.is_none(),
        lines,
        failure,
    }
}
