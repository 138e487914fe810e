//! The key-event log: entries in order, their Merkle tree, replay, and the auditor's checks
//! (tree, checkpoint signatures by the root keys, inclusion of every entry, consistency with older
//! checkpoints and logs). Pure: the caller reads and writes the files.

use super::event::{Entry, Event, KeyState, Published, RoleName};
use super::merkle::{self, Hash};
use super::note::{Checkpoint, NoteCount, SignedCheckpoint};
use crate::tuf::canonical::Value;
use crate::tuf::metadata::{RoleType, Root};

/// Why a log file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LogError {
    /// 1-based line of `entries.jsonl`.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The entries and their leaf hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Log {
    entries: Vec<Entry>,
    leaves: Vec<Hash>,
}

/// An entry that does not fit the state before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {index} ({summary}): {reason}")]
pub struct ReplayError {
    /// 0-based leaf index.
    pub index: usize,
    /// The entry, summarised.
    pub summary: String,
    /// Why it does not fit.
    pub reason: String,
}

impl Log {
    /// An empty log.
    pub fn new() -> Log {
        Log::default()
    }

    /// Read `entries.jsonl`: one JSON object per line; each entry's leaf is the canonical JSON of
    /// the object.
    pub fn parse_jsonl(bytes: &[u8]) -> Result<Log, LogError> {
        let mut log = Log::new();
        if bytes.is_empty() {
            return Ok(log);
        }
        let Some(body) = bytes.strip_suffix(b"\n") else {
            return Err(LogError {
                line: bytes.split(|b| *b == b'\n').count(),
                message: "the last line has no newline (a torn write?)".into(),
            });
        };
        for (i, line) in body.split(|b| *b == b'\n').enumerate() {
            let err = |message: String| LogError {
                line: i + 1,
                message,
            };
            let v = Value::parse(line).map_err(|e| err(e.to_string()))?;
            let e = Entry::from_value(v, "$").map_err(|e| err(e.to_string()))?;
            log.append([e]);
        }
        Ok(log)
    }

    /// `entries.jsonl`: one compact JSON object per line.
    pub fn to_jsonl(&self) -> String {
        let mut s = String::new();
        for e in &self.entries {
            s.push_str(&serde_json::to_string(&e.to_value()).unwrap_or_default());
            s.push('\n');
        }
        s
    }

    /// Append entries.
    pub fn append(&mut self, entries: impl IntoIterator<Item = Entry>) {
        for e in entries {
            self.leaves.push(merkle::leaf_hash(&e.leaf_bytes()));
            self.entries.push(e);
        }
    }

    /// The entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The leaf hashes.
    pub fn leaves(&self) -> &[Hash] {
        &self.leaves
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Root hash of all entries.
    pub fn root(&self) -> Hash {
        merkle::root(&self.leaves)
    }

    /// Root hash of the first `n` entries.
    pub fn root_at(&self, n: usize) -> Option<Hash> {
        (n <= self.leaves.len()).then(|| merkle::root(&self.leaves[..n]))
    }

    /// The checkpoint of the whole log (unsigned).
    pub fn checkpoint(&self, origin: &str) -> Checkpoint {
        Checkpoint {
            origin: origin.to_string(),
            size: self.len() as u64,
            root: self.root(),
        }
    }

    /// Replay the first `n` entries from an empty state.
    pub fn replay(&self, n: usize) -> Result<KeyState, ReplayError> {
        let mut s = KeyState::default();
        for (index, e) in self.entries.iter().take(n).enumerate() {
            s.apply(e).map_err(|reason| ReplayError {
                index,
                summary: e.summary(),
                reason,
            })?;
        }
        Ok(s)
    }
}

/// Where two logs part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// 0-based index of the first entry that differs.
    pub index: usize,
    /// The older log's entry there (None: the older log ends there).
    pub old: Option<Entry>,
    /// The newer log's entry there (None: the newer log ends there: truncated).
    pub new: Option<Entry>,
}

impl Difference {
    /// "entry 3 (line 4): was ..., now ...".
    pub fn describe(&self) -> String {
        let at = format!(
            "entry {} (line {} of entries.jsonl)",
            self.index,
            self.index + 1
        );
        match (&self.old, &self.new) {
            (Some(o), Some(n)) => format!(
                "{at} differs: the older log has \"{}\" (ceremony {}), this log has \"{}\" (ceremony {})",
                o.summary(),
                o.ceremony,
                n.summary(),
                n.ceremony
            ),
            (Some(o), None) => format!(
                "{at} is missing: the older log continues with \"{}\" (ceremony {})",
                o.summary(),
                o.ceremony
            ),
            (None, _) => format!("{at}: no difference"),
        }
    }
}

/// The first entry where `new` does not extend `old` (changed, or missing because `new` is
/// shorter); `None` when `new` starts with every entry of `old`.
pub fn first_difference(old: &Log, new: &Log) -> Option<Difference> {
    for (i, o) in old.leaves.iter().enumerate() {
        match new.leaves.get(i) {
            Some(n) if n == o => continue,
            n => {
                return Some(Difference {
                    index: i,
                    old: old.entries.get(i).cloned(),
                    new: n.and_then(|_| new.entries.get(i).cloned()),
                });
            }
        }
    }
    None
}

/// One line of the verification report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Passed.
    pub ok: bool,
    /// What was checked and found.
    pub text: String,
}

/// An older view of the log to check against.
#[derive(Clone, Debug)]
pub enum Previous {
    /// An older checkpoint (a file name for messages, the checkpoint).
    Checkpoint(String, SignedCheckpoint),
    /// An older log directory: its entries and its checkpoint.
    Log(String, Log, SignedCheckpoint),
}

/// What `conclave log verify` checks, as data.
#[derive(Clone, Debug)]
pub struct Verification {
    /// Each check in order.
    pub checks: Vec<Check>,
    /// Notes that are not failures (no trusted root given, ...).
    pub notes: Vec<String>,
}

impl Verification {
    /// Every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The first failed check.
    pub fn first_failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| !c.ok)
    }

    fn pass(&mut self, text: String) {
        self.checks.push(Check { ok: true, text });
    }

    fn fail(&mut self, text: String) -> &mut Self {
        self.checks.push(Check { ok: false, text });
        self
    }
}

fn signature_check(
    v: &mut Verification,
    what: &str,
    cp: &SignedCheckpoint,
    state: &KeyState,
    whose: &str,
) {
    let Some(keys) = state.root_keys() else {
        v.fail(format!(
            "{what}: no root keys are known at size {} (no root published yet)",
            cp.checkpoint.size
        ));
        return;
    };
    let c: NoteCount = cp.count(keys);
    let summary = c.summary(keys.keys.len());
    if c.verified() {
        v.pass(format!("{what}: {summary} ({whose})"));
    } else if !c.bad.is_empty() {
        let bad: Vec<String> = c.bad.iter().map(|(k, r)| format!("{k}: {r}")).collect();
        v.fail(format!(
            "{what}: signature(s) by root keys do not verify ({})",
            bad.join("; ")
        ));
    } else {
        v.fail(format!("{what}: below threshold: {summary} ({whose})"));
    }
}

/// Check an older checkpoint against the log: same origin, not larger, consistent (an RFC 9162
/// consistency proof from its tree to the log's verifies), signed by the root keys in force at
/// its size.
fn older_checkpoint(
    v: &mut Verification,
    name: &str,
    log: &Log,
    origin: &str,
    cp: &SignedCheckpoint,
) {
    let c = &cp.checkpoint;
    if c.origin != origin {
        v.fail(format!(
            "{name}: origin \"{}\" is not this log's \"{origin}\" (another log)",
            crate::text::show(&c.origin)
        ));
        return;
    }
    let n = log.len() as u64;
    if c.size > n {
        v.fail(format!(
            "{name}: TRUNCATED: it covers {} entries, this log has only {n}",
            c.size
        ));
        return;
    }
    let m = c.size as usize;
    let proof = merkle::consistency_proof(m, log.leaves()).unwrap_or_default();
    match merkle::verify_consistency(c.size, n, &c.root, &log.root(), &proof) {
        Ok(()) => v.pass(format!(
            "{name}: consistent: the log of {m} entries it signed is a prefix of this one (consistency proof of {} hashes)",
            proof.len()
        )),
        Err(e) => {
            v.fail(format!(
                "{name}: REWRITTEN HISTORY: the first {m} entries of this log are not the ones it signed ({e}); give the older log directory with --previous to see the first differing entry"
            ));
            return;
        }
    }
    match log.replay(m) {
        Ok(state) => signature_check(
            v,
            &format!("{name} signatures"),
            cp,
            &state,
            &format!("root keys in force at entry {m}"),
        ),
        Err(e) => {
            v.fail(format!("{name}: {e}"));
        }
    }
}

/// Verify a log: the entries replay; the checkpoint covers exactly the entries and its root hash
/// is theirs; it is signed by a threshold of the root keys (of `trusted_root` when given, which
/// must be the log's latest root, else of the root keys the log records); every entry has an
/// inclusion proof that verifies; every older checkpoint (`history`, `previous`) is consistent
/// with the log and was signed by the root keys of its time; an older log (`previous`) is a
/// prefix of this one, else the first differing entry is named.
pub fn verify(
    log: &Log,
    checkpoint: &SignedCheckpoint,
    history: &[(String, SignedCheckpoint)],
    previous: Option<&Previous>,
    trusted_root: Option<&Published<Root>>,
) -> Verification {
    let mut v = Verification {
        checks: Vec::new(),
        notes: Vec::new(),
    };
    let origin = checkpoint.checkpoint.origin.as_str();
    let n = log.len();
    // 1. The entries replay.
    let state = match log.replay(n) {
        Ok(s) => {
            if let Some(last) = log.entries().last()
                && !matches!(last.event, Event::CeremonySealed { .. })
            {
                v.fail(format!(
                    "entries: TRUNCATED: the log ends inside ceremony \"{}\" (entry {} is \"{}\", not its ceremony-sealed entry)",
                    last.ceremony,
                    n - 1,
                    last.summary()
                ));
                return v;
            }
            v.pass(format!(
                "entries: {n} entries replay (keys added only once, removed only when present, thresholds and versions in order; each ceremony closed by its ceremony-sealed entry)"
            ));
            s
        }
        Err(e) => {
            v.fail(format!("entries: {e}"));
            return v;
        }
    };
    // 2. The checkpoint covers the entries.
    let cp = &checkpoint.checkpoint;
    if cp.size != n as u64 {
        let why = if (n as u64) < cp.size {
            "TRUNCATED: entries are missing"
        } else {
            "entries were added after it was signed"
        };
        v.fail(format!(
            "checkpoint: covers {} entries but the log has {n} ({why})",
            cp.size
        ));
        return v;
    }
    let root = log.root();
    if cp.root != root {
        v.fail(format!(
            "checkpoint: the entries do not hash to its root hash (computed {}, signed {}): an entry was changed after signing",
            hex::encode(root),
            hex::encode(cp.root)
        ));
        return v;
    }
    v.pass(format!(
        "checkpoint: origin {origin}, {n} entries, root hash {} matches the entries (RFC 9162)",
        hex::encode(root)
    ));
    // 3. Signatures by the root keys.
    match trusted_root {
        Some(t) => {
            let trusted = KeyState::from_metadata(Some(t), None);
            let tv = t.metadata.signed().common.version;
            match &state.root {
                Some(r) if r.signed_sha256 == t.metadata.signed_digest() => {
                    let mut same = true;
                    for ty in [
                        RoleType::Root,
                        RoleType::Targets,
                        RoleType::Snapshot,
                        RoleType::Timestamp,
                    ] {
                        let name = RoleName::top(ty);
                        if state.roles.get(&name) != trusted.roles.get(&name) {
                            same = false;
                            v.fail(format!(
                                "trusted root: the {ty} keys and threshold the log's events give are not those of root version {tv}"
                            ));
                        }
                    }
                    if same {
                        v.pass(format!(
                            "trusted root: version {tv} is the log's latest root, and the log's events give exactly its keys and thresholds"
                        ));
                    }
                    signature_check(
                        &mut v,
                        "checkpoint signatures",
                        checkpoint,
                        &trusted,
                        &format!("root keys of the trusted root v{tv}"),
                    );
                }
                Some(r) => {
                    v.fail(format!(
                        "trusted root: version {tv} (signed sha256 {}) is not the log's latest root (version {}, signed sha256 {})",
                        hex::encode(t.metadata.signed_digest()),
                        r.version,
                        hex::encode(r.signed_sha256)
                    ));
                }
                None => {
                    v.fail("trusted root: the log has published no root".to_string());
                }
            }
        }
        None => {
            v.notes.push(
                "no --trusted-root: the checkpoint is checked against the root keys the log itself records; give the registry's current root to anchor them".into(),
            );
            signature_check(
                &mut v,
                "checkpoint signatures",
                checkpoint,
                &state,
                "root keys the log records",
            );
        }
    }
    // 4. Inclusion of every entry.
    let mut included = 0;
    let mut tree = merkle::Tree::new(log.leaves());
    for (i, leaf) in log.leaves().iter().enumerate() {
        let proof = tree.inclusion_proof(i).unwrap_or_default();
        match merkle::verify_inclusion(i as u64, n as u64, leaf, &proof, &cp.root) {
            Ok(()) => included += 1,
            Err(e) => {
                v.fail(format!("inclusion: entry {i}: {e}"));
            }
        }
    }
    if included == n {
        v.pass(format!(
            "inclusion: every entry ({n}) has an inclusion proof that verifies against the checkpoint"
        ));
    }
    // 5. Older checkpoints kept in the log.
    for (name, h) in history {
        older_checkpoint(&mut v, name, log, origin, h);
    }
    // 6. The older view given on the command line.
    match previous {
        None => {}
        Some(Previous::Checkpoint(name, p)) => older_checkpoint(&mut v, name, log, origin, p),
        Some(Previous::Log(name, old, old_cp)) => {
            if let Some(d) = first_difference(old, log) {
                let what = if d.new.is_none() {
                    "TRUNCATED"
                } else {
                    "FORKED / REWRITTEN HISTORY"
                };
                v.fail(format!("{name}: {what}: {}", d.describe()));
            } else {
                v.pass(format!(
                    "{name}: its {} entries are the first {} entries of this log",
                    old.len(),
                    old.len()
                ));
                if old_cp.checkpoint.size != old.len() as u64
                    || old_cp.checkpoint.root != old.root()
                {
                    v.fail(format!(
                        "{name}: its checkpoint does not match its own entries"
                    ));
                } else {
                    older_checkpoint(&mut v, &format!("{name} checkpoint"), log, origin, old_cp);
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Signer;
    use crate::signer::software::SoftwareSigner;
    use crate::transparency::event::{CeremonyRef, Export, ceremony_events};
    use crate::tuf::canonical::Value;
    use crate::tuf::key::Algorithm;
    use crate::tuf::metadata::{Metadata, Root};

    fn signer(seed: u8, owner: &str) -> SoftwareSigner {
        let s = SoftwareSigner::from_seed(Algorithm::Ed25519, &[seed; 32]).unwrap();
        let mut k = s.key().clone();
        k.unrecognized
            .insert("x-tuf-on-ci-keyowner".into(), Value::from(owner));
        s.with_key(k).unwrap()
    }

    /// A root with the given root keys (threshold `t`) and one online key for the other roles.
    fn root(version: u64, keys: &[&SoftwareSigner], t: u64) -> Published<Root> {
        let online = SoftwareSigner::from_seed(Algorithm::Ed25519, &[99; 32]).unwrap();
        let mut ks: Vec<_> = keys.iter().map(|s| (s.key_id(), s.key().clone())).collect();
        ks.push((online.key_id(), online.key().clone()));
        ks.sort_by(|a, b| a.0.cmp(&b.0));
        let ids = |v: &[&SoftwareSigner]| {
            let mut ids: Vec<String> = v.iter().map(|s| s.key_id().0).collect();
            ids.sort();
            ids
        };
        let keys_json: serde_json::Map<String, serde_json::Value> = ks
            .iter()
            .map(|(id, k)| {
                (
                    id.0.clone(),
                    serde_json::from_slice(&k.to_value().canonical_bytes()).unwrap(),
                )
            })
            .collect();
        let v = serde_json::json!({
            "signed": {
                "_type": "root", "spec_version": "1.0.31", "version": version,
                "expires": "2030-01-01T00:00:00Z", "consistent_snapshot": true,
                "keys": keys_json,
                "roles": {
                    "root": {"keyids": ids(keys), "threshold": t},
                    "targets": {"keyids": ids(keys), "threshold": t},
                    "snapshot": {"keyids": [online.key_id().0], "threshold": 1},
                    "timestamp": {"keyids": [online.key_id().0], "threshold": 1}
                }
            },
            "signatures": []
        });
        let bytes = serde_json::to_vec_pretty(&v).unwrap();
        let p = Published::<Root>::from_bytes(&bytes).unwrap();
        let _: &Metadata<Root> = &p.metadata;
        p
    }

    fn sign(cp: &mut SignedCheckpoint, who: &[(u8, &str)]) {
        for (seed, owner) in who {
            crate::driver::log_dir::sign_note(cp, &mut signer(*seed, owner)).unwrap();
        }
    }

    fn ceremony(name: &str, n: u8) -> CeremonyRef {
        CeremonyRef {
            name: name.into(),
            seal: [n; 32],
        }
    }

    #[test]
    fn three_ceremonies_replay_sign_and_verify_and_a_rewrite_is_named() {
        let (a, b, c, d) = (
            signer(1, "alice"),
            signer(2, "bob"),
            signer(3, "carol"),
            signer(4, "dave"),
        );
        let r1 = root(1, &[&a, &b, &c], 2);
        let r2 = root(2, &[&a, &b, &d], 2);
        let r3 = root(3, &[&a, &b, &d], 3);
        let mut log = Log::new();
        let mut state = KeyState::default();
        let mut checkpoints = Vec::new();
        for (i, (name, r)) in [
            ("bootstrap-root", &r1),
            ("rotate-root-keys", &r2),
            ("raise-threshold", &r3),
        ]
        .into_iter()
        .enumerate()
        {
            let export = Export {
                root: Some(r.clone()),
                targets: None,
            };
            let events = ceremony_events(&ceremony(name, i as u8), &state, &export);
            log.append(events);
            state = log.replay(log.len()).unwrap();
            let mut cp = SignedCheckpoint::new(log.checkpoint("registry.example/keys"));
            let keys: &[(u8, &str)] = match i {
                0 => &[(1, "alice"), (2, "bob")],
                1 => &[(1, "alice"), (4, "dave")],
                _ => &[(1, "alice"), (2, "bob"), (4, "dave")],
            };
            sign(&mut cp, keys);
            checkpoints.push(cp);
        }
        let kinds: Vec<&str> = log.entries().iter().map(|e| e.kind()).collect();
        // Bootstrap: 4 roles added with their keys; then carol out and dave in (root and
        // targets); then the thresholds raised.
        assert_eq!(kinds.iter().filter(|k| **k == "role-added").count(), 4);
        let rotation: Vec<String> = log
            .entries()
            .iter()
            .filter(|e| e.ceremony == "rotate-root-keys")
            .map(|e| e.summary())
            .collect();
        assert_eq!(rotation.len(), 6, "{rotation:#?}");
        assert!(
            rotation[0].starts_with("key-removed root") && rotation[0].contains("keyholder carol")
        );
        assert!(
            rotation[1].starts_with("key-added root") && rotation[1].contains("keyholder dave")
        );
        assert!(rotation[4].starts_with("root-published v2"));
        assert!(
            log.entries()
                .iter()
                .any(|e| matches!(e.event, Event::ThresholdChanged { from: 2, to: 3, .. }))
        );
        // The JSONL round trip keeps every leaf.
        let back = Log::parse_jsonl(log.to_jsonl().as_bytes()).unwrap();
        assert_eq!(back, log);
        // Verification with history and the trusted root.
        let history = vec![
            ("checkpoints/a".to_string(), checkpoints[0].clone()),
            ("checkpoints/b".to_string(), checkpoints[1].clone()),
        ];
        let v = verify(&log, &checkpoints[2], &history, None, Some(&r3));
        assert!(v.passed(), "{:#?}", v.checks);
        // The trusted root must be the latest one.
        let v = verify(&log, &checkpoints[2], &[], None, Some(&r2));
        assert!(
            v.first_failure()
                .unwrap()
                .text
                .contains("is not the log's latest root")
        );
        // Below threshold: root v3 needs 3 signatures.
        let mut two = checkpoints[2].clone();
        two.signatures.pop();
        let v = verify(&log, &two, &[], None, None);
        assert!(
            v.first_failure().unwrap().text.contains("below threshold"),
            "{:#?}",
            v.checks
        );
        // A rewritten entry 0 (another ceremony name): the re-signed checkpoint verifies alone,
        // but not against the older checkpoint, and the older log names entry 1.
        let mut forged = Log::new();
        let mut entries = log.entries().to_vec();
        entries[0].ceremony = "not-a-ceremony".into();
        forged.append(entries);
        let old_log = {
            let mut l = Log::new();
            l.append(log.entries()[..checkpoints[0].checkpoint.size as usize].to_vec());
            l
        };
        let v = verify(
            &forged,
            &checkpoints[2],
            &[],
            Some(&Previous::Log(
                "old".into(),
                old_log.clone(),
                checkpoints[0].clone(),
            )),
            None,
        );
        assert!(
            v.first_failure().unwrap().text.contains("do not hash"),
            "{:#?}",
            v.checks
        );
        let mut resigned = SignedCheckpoint::new(forged.checkpoint("registry.example/keys"));
        sign(&mut resigned, &[(1, "alice"), (2, "bob"), (4, "dave")]);
        let v = verify(
            &forged,
            &resigned,
            &[],
            Some(&Previous::Log(
                "old".into(),
                old_log,
                checkpoints[0].clone(),
            )),
            None,
        );
        let f = v.first_failure().unwrap().text.clone();
        assert!(f.contains("FORKED") && f.contains("entry 0 (line 1"), "{f}");
        let v = verify(
            &forged,
            &resigned,
            &[],
            Some(&Previous::Checkpoint("cp".into(), checkpoints[0].clone())),
            None,
        );
        assert!(
            v.first_failure()
                .unwrap()
                .text
                .contains("REWRITTEN HISTORY")
        );
        // Truncated: an older checkpoint is larger than the log.
        let mut short = Log::new();
        short.append(log.entries()[..5].to_vec());
        let mut cp = SignedCheckpoint::new(short.checkpoint("registry.example/keys"));
        sign(&mut cp, &[(1, "alice"), (2, "bob"), (3, "carol")]);
        let v = verify(
            &short,
            &cp,
            &[],
            Some(&Previous::Checkpoint("cp".into(), checkpoints[1].clone())),
            None,
        );
        assert!(
            v.first_failure().unwrap().text.contains("TRUNCATED"),
            "{:#?}",
            v.checks
        );
    }
}
