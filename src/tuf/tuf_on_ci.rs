//! tuf-on-ci signing events, signed offline.
//!
//! tuf-on-ci (the tool behind sigstore's root-signing repository) turns every change into a
//! signing event: a git branch whose `metadata/` folder holds the proposed roles with empty
//! placeholder signatures (`{"keyid": K, "sig": ""}`) for every key that may sign, next to the
//! known-good `metadata/` of the main branch. This module is pure: it takes the files of both
//! folders as bytes and a reference time, and
//!
//! - verifies the known-good root chain (`root_history/1.root.json` onwards, else `root.json`
//!   by its own root keys);
//! - finds the roles the event changes (bytes differ from known good, as tuf-on-ci-sign does);
//! - runs tuf-on-ci's CI rules on them before any PIN is asked, each failure naming file and
//!   field ([`Finding`]): no open invites, versions grow (root exactly +1), `expires` no later
//!   than the expiry period allows, `consistent_snapshot`, timestamp and snapshot sharing keys
//!   and threshold with sane online periods, key ids that hash the whole key, a threshold that
//!   the delegator's keys can reach, and no bad signature already in the file;
//! - writes the review text (keys by `@owner`, thresholds, expiry against the period, target
//!   file changes), every input string through [`crate::text::show`];
//! - lists which key ids a token key may sign each changed role as ([`Review::slots_for`]);
//! - on the connected machine, writes detached signatures into the placeholders of every file
//!   that carries the role (`root.json` and `root_history/N.root.json`), in python-tuf's
//!   `JSONSerializer` format ([`python_tuf_json`]), never changing `signed`
//!   ([`apply_signatures`]).
//!
//! Keys of types Conclave cannot use (`sigstore-oidc`, ML-DSA) are shown as such: they never
//! count toward a threshold here and are never a failure.

use std::fmt;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::canonical::{Map, Value};
use super::key::{Key, KeyId};
use super::metadata::{
    AnyMetadata, Metadata, Role, RoleType, Root, Signature, SignedPayload, Targets, parse_file,
};
use super::parse::member_path;
use super::verify::{ThresholdResult, count_signatures, trust_root, update_root};
use crate::text::show;

/// The key field naming a key's keyholder (`@github-handle`).
pub use crate::ceremony::engine::OWNER_FIELD;
/// The key field of an online key: where its signer lives.
pub const ONLINE_URI_FIELD: &str = "x-tuf-on-ci-online-uri";
/// Days a role may be valid (in `signed`, and in root's timestamp/snapshot role entries).
pub const EXPIRY_PERIOD_FIELD: &str = "x-tuf-on-ci-expiry-period";
/// Days before expiry at which re-signing starts.
pub const SIGNING_PERIOD_FIELD: &str = "x-tuf-on-ci-signing-period";
/// The event's state file (open invites).
pub const STATE_FILE: &str = ".signing-event-state";
/// The folder of versioned roots.
pub const ROOT_HISTORY: &str = "root_history";

/// The files of one `metadata/` folder: paths relative to it (`root.json`,
/// `root_history/2.root.json`, `.signing-event-state`) with their bytes, and a label naming the
/// folder in messages.
#[derive(Clone, Debug, Default)]
pub struct MetadataFolder {
    /// How messages name the folder (its path as the user gave it).
    pub label: String,
    /// (relative path with `/`, bytes).
    pub files: Vec<(String, Vec<u8>)>,
}

impl MetadataFolder {
    /// The bytes of a file, by relative path.
    pub fn get(&self, rel: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == rel)
            .map(|(_, b)| b.as_slice())
    }

    /// How messages name one of its files.
    pub fn name(&self, rel: &str) -> String {
        if self.label.is_empty() {
            show(rel)
        } else {
            format!("{}/{}", show(&self.label), show(rel))
        }
    }
}

/// One failed rule: the file, the JSON field (or `-` for the file as a whole) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The file (as [`MetadataFolder::name`] names it).
    pub file: String,
    /// JSON path of the field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, show(&self.field), self.message)
    }
}

fn finding(file: String, field: impl Into<String>, message: impl Into<String>) -> Finding {
    Finding {
        file,
        field: field.into(),
        message: message.into(),
    }
}

/// A key that may sign a changed role, and who holds it.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The key id the role lists.
    pub keyid: KeyId,
    /// The key as listed.
    pub key: Key,
    /// Which delegation lists it ("root v2", "known-good root v1", "targets v2").
    pub by: String,
}

/// A delegation whose threshold counts for a changed role: its description, keys and threshold.
#[derive(Clone, Debug)]
pub struct Delegation {
    /// "root v2 (this event)", "known-good root v1".
    pub by: String,
    /// Key ids and threshold.
    pub role: Role,
    /// The keys the role's key ids name.
    pub keys: Vec<(KeyId, Key)>,
}

impl Delegation {
    /// Count `signatures` over `signed_bytes` with the verifier's one threshold counter.
    pub fn count(&self, signed_bytes: &[u8], signatures: &[Signature]) -> ThresholdResult {
        count_signatures(
            |id| self.keys.iter().find(|(k, _)| k == id).map(|(_, k)| k),
            &self.role,
            signed_bytes,
            signatures,
        )
    }
}

/// A role the event changes.
#[derive(Clone, Debug)]
pub struct ChangedRole {
    /// Role name (`root`, `targets`, a delegated role).
    pub name: String,
    /// Its file in the event (`root.json`).
    pub file: String,
    /// Other files carrying the same metadata (`root_history/2.root.json`).
    pub copies: Vec<String>,
    /// The metadata as proposed.
    pub md: AnyMetadata,
    /// Version in the known-good state, if the role existed.
    pub known_good_version: Option<u64>,
    /// Keys that may sign it (placeholders are expected for each).
    pub slots: Vec<Slot>,
    /// Delegations that must verify it once signed.
    pub delegations: Vec<Delegation>,
}

impl ChangedRole {
    /// The delegations' counts over the signatures now in the file.
    pub fn status(&self) -> Vec<(String, ThresholdResult)> {
        self.status_with(&[])
    }

    /// The counts with `added` signatures put into their slots.
    pub fn status_with(&self, added: &[Signature]) -> Vec<(String, ThresholdResult)> {
        let mut sigs: Vec<Signature> = self.md.signatures().to_vec();
        for a in added {
            match sigs.iter_mut().find(|s| s.keyid == a.keyid) {
                Some(s) => s.sig = a.sig.clone(),
                None => sigs.push(a.clone()),
            }
        }
        self.delegations
            .iter()
            .map(|d| (d.by.clone(), d.count(self.md.signed_bytes(), &sigs)))
            .collect()
    }
}

/// Everything known about an event before any PIN: the changed roles, every failed rule, and
/// the review text.
#[derive(Clone, Debug)]
pub struct Review {
    /// Version of the verified known-good root.
    pub known_good_root: u64,
    /// The roles the event changes, root first, then targets, then delegated roles.
    pub changed: Vec<ChangedRole>,
    /// Every rule that failed; signing is refused unless this is empty.
    pub failures: Vec<Finding>,
    /// The review text (every input string rendered through [`show`]).
    pub text: String,
}

/// A failure that stops the review: the known-good state does not verify, or the event has no
/// root.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReviewError(pub Finding);

/// One role's signature by a token key: (index into [`Review::changed`], the signature, the
/// key ids it is for).
pub type RoleSignature = (usize, Vec<u8>, Vec<KeyId>);

impl Review {
    /// Whether an edited event may be signed: no rule is broken, or only "no open invites" by
    /// invites of others still open (`conclave tuf-on-ci accept` then writes the edit unsigned).
    pub fn breaks_only_open_invites(&self) -> bool {
        self.failures
            .iter()
            .all(|f| f.file.ends_with(STATE_FILE) && f.field.starts_with("$.invites"))
    }

    /// `folder` with each signature written into the placeholders of every file carrying its
    /// role (`root.json` and `root_history/N.root.json` alike), in python-tuf's format; refuses,
    /// naming the file, if a `signed` part would change.
    pub fn with_signatures(
        &self,
        folder: &MetadataFolder,
        signed: &[RoleSignature],
    ) -> Result<MetadataFolder, String> {
        let mut out = folder.clone();
        for (i, sig, ids) in signed {
            let Some(role) = self.changed.get(*i) else {
                return Err(format!("no changed role number {i}"));
            };
            let sigs: Vec<(KeyId, String)> = ids
                .iter()
                .map(|id| (id.clone(), hex::encode(sig)))
                .collect();
            for rel in std::iter::once(&role.file).chain(role.copies.iter()) {
                let Some(entry) = out.files.iter_mut().find(|(n, _)| n == rel) else {
                    continue;
                };
                entry.1 = fill_placeholders(&entry.1, &sigs)
                    .map_err(|m| format!("{}: {m}", folder.name(rel)))?;
            }
        }
        Ok(out)
    }

    /// Signature bundles for signatures made by a token key: one per role and key id, named
    /// `ROLE-vN-KEYID16.bundle`, (file name, bytes).
    pub fn bundles(
        &self,
        signed: &[RoleSignature],
        token_serial: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut out = Vec::new();
        for (i, sig, ids) in signed {
            let Some(role) = self.changed.get(*i) else {
                return Err(format!("no changed role number {i}"));
            };
            for id in ids {
                let b = super::bundle::Bundle::new(
                    &role.md,
                    id.clone(),
                    sig,
                    token_serial.map(str::to_string),
                    now,
                );
                let name = bundle_file_name(&role.name, role.md.common().version, id).ok_or_else(
                    || {
                        format!(
                            "role name \"{}\" cannot name a bundle file",
                            show(&role.name)
                        )
                    },
                )?;
                out.push((name, b.to_bytes()));
            }
        }
        Ok(out)
    }

    /// For a token key's material ([`crate::tuf::key::PublicKey::material`]): each changed
    /// role (by index into [`Review::changed`]) with the key ids it may sign as.
    pub fn slots_for(&self, material: &[u8]) -> Vec<(usize, Vec<KeyId>)> {
        let mut out = Vec::new();
        for (i, role) in self.changed.iter().enumerate() {
            let mut ids: Vec<KeyId> = Vec::new();
            for s in &role.slots {
                if s.key.public_key().is_ok_and(|pk| pk.material() == material)
                    && !ids.contains(&s.keyid)
                {
                    ids.push(s.keyid.clone());
                }
            }
            if !ids.is_empty() {
                out.push((i, ids));
            }
        }
        out
    }
}

/// How a key is shown: owner (or online URI), type, key id.
pub fn describe_key(id: &KeyId, key: &Key) -> String {
    let who = match (
        key.unrecognized.get(OWNER_FIELD).and_then(Value::as_str),
        key.unrecognized
            .get(ONLINE_URI_FIELD)
            .and_then(Value::as_str),
    ) {
        (Some(o), _) => show(o),
        (None, Some(uri)) => format!("online key {}", show(uri)),
        (None, None) => "(no owner field)".to_string(),
    };
    let kind = match key.public_key() {
        Ok(pk) => pk.algorithm().label().to_string(),
        Err(_) => format!(
            "{}/{}: a key type Conclave cannot use (never counted here)",
            show(&key.keytype),
            show(&key.scheme)
        ),
    };
    format!("{who} [{kind}] {}", show(id.short()))
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Verify the known-good root: the chain `root_history/1.root.json` .. `N.root.json` when the
/// folder has one (its last root must be `root.json` byte for byte), else `root.json` by its
/// own root keys.
pub fn verify_known_good(kg: &MetadataFolder) -> Result<(Metadata<Root>, String), ReviewError> {
    let root_bytes = kg.get("root.json").ok_or_else(|| {
        ReviewError(finding(
            kg.name("root.json"),
            "-",
            "the known-good metadata has no root.json",
        ))
    })?;
    let mut history: Vec<(u64, &str, &[u8])> = Vec::new();
    for (rel, bytes) in &kg.files {
        if let Some(n) = rel
            .strip_prefix("root_history/")
            .and_then(|f| f.strip_suffix(".root.json"))
            .and_then(|v| v.parse::<u64>().ok())
        {
            history.push((n, rel, bytes));
        }
    }
    history.sort_by_key(|h| h.0);
    let fail = |rel: &str, e: &dyn fmt::Display| {
        ReviewError(finding(
            kg.name(rel),
            "-",
            format!("known-good root does not verify: {}", show(&e.to_string())),
        ))
    };
    if history.is_empty() {
        let (t, r) =
            trust_root(&kg.name("root.json"), root_bytes).map_err(|e| fail("root.json", &e))?;
        let note = format!(
            "known-good root v{} verified by its own root keys ({}; no root_history/ to walk)",
            t.root().common.version,
            r.summary()
        );
        return Ok((t.metadata().clone(), note));
    }
    for (i, (n, rel, _)) in history.iter().enumerate() {
        if *n != i as u64 + 1 {
            return Err(ReviewError(finding(
                kg.name(rel),
                "-",
                format!(
                    "root_history/ must hold 1.root.json, 2.root.json, ... without gaps; found version {n} where {} was expected",
                    i + 1
                ),
            )));
        }
    }
    let (first_n, first_rel, first) = history[0];
    let _ = first_n;
    let (mut trusted, _) =
        trust_root(&kg.name(first_rel), first).map_err(|e| fail(first_rel, &e))?;
    for (_, rel, bytes) in &history[1..] {
        let (next, _) = update_root(&trusted, &kg.name(rel), bytes).map_err(|e| fail(rel, &e))?;
        trusted = next;
    }
    let (_, last_rel, last) = history[history.len() - 1];
    if last != root_bytes {
        return Err(ReviewError(finding(
            kg.name("root.json"),
            "-",
            format!(
                "root.json is not byte for byte the last root of the chain ({})",
                show(last_rel)
            ),
        )));
    }
    let note = format!(
        "known-good root chain verified: v1 to v{} (root_history/), root.json is v{}",
        history.len(),
        trusted.root().common.version
    );
    Ok((trusted.metadata().clone(), note))
}

/// Read `.signing-event-state`: `{"invites": {"@user": ["root", ...]}}`.
fn read_invites(ev: &MetadataFolder, failures: &mut Vec<Finding>) -> Vec<(String, Vec<String>)> {
    let Some(bytes) = ev.get(STATE_FILE) else {
        return Vec::new();
    };
    let file = ev.name(STATE_FILE);
    let v = match Value::parse_limited(bytes, 1 << 20) {
        Ok(v) => v,
        Err(e) => {
            failures.push(finding(file, "$", format!("not JSON: {e}")));
            return Vec::new();
        }
    };
    let Some(inv) = v.as_object().and_then(|m| m.get("invites")) else {
        failures.push(finding(file, "$.invites", "missing"));
        return Vec::new();
    };
    let Some(inv) = inv.as_object() else {
        failures.push(finding(file, "$.invites", "expected an object"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (who, roles) in inv.iter() {
        let path = member_path("$.invites", who);
        let Value::Array(items) = roles else {
            failures.push(finding(
                file.clone(),
                path,
                "expected an array of role names",
            ));
            continue;
        };
        let names: Vec<String> = items
            .iter()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect();
        if !names.is_empty() {
            out.push((who.clone(), names));
        }
    }
    out
}

/// `now` + `days` days, if that is a date (periods of more than 100,000 days are not: they would
/// overflow the time arithmetic).
fn period_end(now: OffsetDateTime, days: u64) -> Option<OffsetDateTime> {
    let days = i64::try_from(days).ok().filter(|d| *d <= 100_000)?;
    now.checked_add(Duration::days(days))
}

fn u64_field(m: &Map, name: &str) -> Option<u64> {
    match m.get(name) {
        Some(Value::Int(i)) => u64::try_from(*i).ok(),
        _ => None,
    }
}

/// Review a signing event: `event` is the event's `metadata/` folder, `known_good` the main
/// branch's, `now` the reference time for the expiry rule.
pub fn review_event(
    event: &MetadataFolder,
    known_good: &MetadataFolder,
    now: OffsetDateTime,
) -> Result<Review, ReviewError> {
    review_event_with(event, known_good, now, &[])
}

/// [`review_event`], with role files (`targets.json`) that are to be signed even if unchanged:
/// after accepting an invite to a role, tuf-on-ci-sign signs that role's file whether or not
/// the event changed it.
pub fn review_event_with(
    event: &MetadataFolder,
    known_good: &MetadataFolder,
    now: OffsetDateTime,
    also: &[String],
) -> Result<Review, ReviewError> {
    let (kg_root, chain_note) = verify_known_good(known_good)?;
    let mut failures = Vec::new();
    let mut text = String::new();
    let _ = writeln!(text, "{chain_note}");

    // The event's root and top-level targets: the delegators, changed or not.
    let root_bytes = event.get("root.json").ok_or_else(|| {
        ReviewError(finding(
            event.name("root.json"),
            "-",
            "the event has no root.json",
        ))
    })?;
    let ev_root = Metadata::<Root>::from_bytes(root_bytes).map_err(|e| {
        ReviewError(finding(
            event.name("root.json"),
            field_of(&e.to_string()),
            message_of(&e.to_string()),
        ))
    })?;
    let ev_targets = match event
        .get("targets.json")
        .map(Metadata::<Targets>::from_bytes)
    {
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            failures.push(finding(
                event.name("targets.json"),
                field_of(&e.to_string()),
                message_of(&e.to_string()),
            ));
            None
        }
        None => None,
    };

    let invites = read_invites(event, &mut failures);
    for (who, roles) in &invites {
        failures.push(finding(
            event.name(STATE_FILE),
            member_path("$.invites", who),
            format!(
                "open invite for {} to sign {}: tuf-on-ci accepts no event with open invites (the invitee accepts first)",
                show(who),
                roles.iter().map(|r| show(r)).collect::<Vec<_>>().join(", ")
            ),
        ));
    }

    // Changed files, as tuf-on-ci-sign finds them: bytes differ from the known-good file.
    let mut role_files: Vec<String> = Vec::new();
    for (rel, bytes) in &event.files {
        if !rel.ends_with(".json") {
            continue;
        }
        if known_good.get(rel) == Some(bytes.as_slice()) && !also.contains(rel) {
            continue;
        }
        if rel.starts_with("root_history/") {
            continue; // checked with root below
        }
        if rel.contains('/') {
            failures.push(finding(
                event.name(rel),
                "-",
                "a file in a sub-folder other than root_history/: not part of a tuf-on-ci event",
            ));
            continue;
        }
        if rel == "timestamp.json" || rel == "snapshot.json" {
            failures.push(finding(
                event.name(rel),
                "-",
                "online roles change only in tuf-on-ci's CI, never in a signing event",
            ));
            continue;
        }
        role_files.push(rel.clone());
    }
    // Toplevel first, as tuf-on-ci orders them.
    role_files.sort_by_key(|f| match f.as_str() {
        "root.json" => (0, f.clone()),
        "targets.json" => (1, f.clone()),
        _ => (2, f.clone()),
    });

    // root_history: every changed copy must be the new root, byte for byte.
    let root_changed = role_files.iter().any(|f| f == "root.json");
    let new_root_version = ev_root.signed().common.version;
    let history_name = format!("{ROOT_HISTORY}/{new_root_version}.root.json");
    for (rel, bytes) in &event.files {
        if !rel.starts_with("root_history/") || known_good.get(rel) == Some(bytes.as_slice()) {
            continue;
        }
        if *rel != history_name || !root_changed {
            failures.push(finding(
                event.name(rel),
                "-",
                "a changed root_history/ file that is not the new root's copy",
            ));
        } else if bytes.as_slice() != root_bytes {
            failures.push(finding(
                event.name(rel),
                "-",
                "not a byte-identical copy of root.json",
            ));
        }
    }
    if root_changed && event.get(&history_name).is_none() {
        failures.push(finding(
            event.name(&history_name),
            "-",
            "missing: tuf-on-ci keeps a copy of every root in root_history/",
        ));
    }

    let mut changed = Vec::new();
    for file in &role_files {
        let name = file.trim_end_matches(".json").to_string();
        let fname = event.name(file);
        let bytes = event.get(file).unwrap_or_default();
        let parsed = if name == "root" {
            Metadata::<Root>::from_bytes(bytes).map(AnyMetadata::Root)
        } else {
            Metadata::<Targets>::from_bytes(bytes).map(AnyMetadata::Targets)
        };
        let md = match parsed {
            Ok(md) => md,
            Err(e) => {
                failures.push(finding(
                    fname,
                    field_of(&e.to_string()),
                    message_of(&e.to_string()),
                ));
                continue;
            }
        };
        let kg_md = known_good.get(file).map(AnyMetadata::from_bytes);
        let known_good_version = match &kg_md {
            Some(Ok(m)) => Some(m.common().version),
            _ => None,
        };
        let kg_signed = match &kg_md {
            Some(Ok(m)) => Some(m.signed_bytes().to_vec()),
            _ => None,
        };
        let (slots, delegations) = match delegators(&name, &ev_root, &kg_root, ev_targets.as_ref())
        {
            Ok(x) => x,
            Err(msg) => {
                failures.push(finding(fname, "-", msg));
                continue;
            }
        };
        let role = ChangedRole {
            name: name.clone(),
            file: file.clone(),
            copies: if name == "root" {
                vec![history_name.clone()]
            } else {
                Vec::new()
            },
            md,
            known_good_version,
            slots,
            delegations,
        };
        check_role(&role, kg_signed.as_deref(), now, &fname, &mut failures);
        changed.push(role);
    }

    if changed.is_empty() && failures.is_empty() {
        let _ = writeln!(text, "the event changes no role: nothing to sign");
    }
    for role in &changed {
        review_role(
            role,
            &kg_root,
            known_good,
            ev_targets.as_ref(),
            now,
            &mut text,
        );
    }
    if !failures.is_empty() {
        let _ = writeln!(
            text,
            "\nREFUSED: {} rule(s) of tuf-on-ci's CI fail:",
            failures.len()
        );
        for f in &failures {
            let _ = writeln!(text, "  {f}");
        }
    }
    Ok(Review {
        known_good_root: kg_root.signed().common.version,
        changed,
        failures,
        text,
    })
}

/// A metadata error text is "PATH: MESSAGE" when it names a field.
fn field_of(e: &str) -> String {
    match e.split_once(": ") {
        Some((p, _)) if p.starts_with('$') => p.to_string(),
        _ => "-".to_string(),
    }
}

fn message_of(e: &str) -> String {
    let m = match e.split_once(": ") {
        Some((p, m)) if p.starts_with('$') => m,
        _ => e,
    };
    show(m)
}

type Delegators = (Vec<Slot>, Vec<Delegation>);

/// The keys that may sign role `name` and the delegations that must verify it.
fn delegators(
    name: &str,
    ev_root: &Metadata<Root>,
    kg_root: &Metadata<Root>,
    ev_targets: Option<&Metadata<Targets>>,
) -> Result<Delegators, String> {
    let mut slots: Vec<Slot> = Vec::new();
    let mut dels = Vec::new();
    let mut add = |by: String, role: &Role, lookup: &dyn Fn(&KeyId) -> Option<Key>| {
        let mut keys = Vec::new();
        for id in &role.keyids {
            if let Some(k) = lookup(id) {
                if !slots.iter().any(|s| s.keyid == *id) {
                    slots.push(Slot {
                        keyid: id.clone(),
                        key: k.clone(),
                        by: by.clone(),
                    });
                }
                keys.push((id.clone(), k));
            }
        }
        dels.push(Delegation {
            by,
            role: role.clone(),
            keys,
        });
    };
    let er = ev_root.signed();
    let kr = kg_root.signed();
    match name {
        "root" => {
            add(
                format!("root v{} (this event)", er.common.version),
                er.role(RoleType::Root),
                &|id| er.key(id).cloned(),
            );
            add(
                format!("known-good root v{}", kr.common.version),
                kr.role(RoleType::Root),
                &|id| kr.key(id).cloned(),
            );
        }
        "targets" => add(
            format!("targets role of root v{}", er.common.version),
            er.role(RoleType::Targets),
            &|id| er.key(id).cloned(),
        ),
        other => {
            let Some(t) = ev_targets else {
                return Err("a delegated role, but the event has no readable targets.json".into());
            };
            let Some(d) = &t.signed().delegations else {
                return Err(format!(
                    "targets.json does not delegate \"{}\"",
                    show(other)
                ));
            };
            let Some(role) = d.role_for(other) else {
                return Err(format!(
                    "targets.json does not delegate \"{}\"",
                    show(other)
                ));
            };
            add(
                format!("delegation in targets v{}", t.signed().common.version),
                role,
                &|id| d.key(id).cloned(),
            );
        }
    }
    Ok((slots, dels))
}

/// tuf-on-ci's CI rules for one changed role.
fn check_role(
    role: &ChangedRole,
    kg_signed: Option<&[u8]>,
    now: OffsetDateTime,
    fname: &str,
    failures: &mut Vec<Finding>,
) {
    let mut fail = |field: &str, msg: String| failures.push(finding(fname.to_string(), field, msg));
    let common = role.md.common();
    let version = common.version;
    // Versions grow when the payload changes; root exactly +1.
    if let Some(kv) = role.known_good_version
        && kg_signed != Some(role.md.signed_bytes())
    {
        if role.name == "root" && Some(version) != kv.checked_add(1) {
            fail(
                "$.signed.version",
                format!(
                    "root version {version} after known-good version {kv}: must be exactly {}",
                    u128::from(kv) + 1
                ),
            );
        } else if version <= kv {
            fail(
                "$.signed.version",
                format!("version {version} does not grow past the known-good version {kv}"),
            );
        }
    }
    // expires <= now + expiry period.
    let unrec = match &role.md {
        AnyMetadata::Root(m) => &m.signed().unrecognized,
        AnyMetadata::Targets(m) => &m.signed().unrecognized,
        _ => return,
    };
    match u64_field(unrec, EXPIRY_PERIOD_FIELD) {
        None => fail(
            &format!("$.signed.{EXPIRY_PERIOD_FIELD}"),
            "missing or not a whole number of days".into(),
        ),
        Some(days) => {
            let limit = period_end(now, days);
            if limit.is_none() {
                fail(
                    &format!("$.signed.{EXPIRY_PERIOD_FIELD}"),
                    format!("{days} days is beyond any date Conclave can compute"),
                );
            }
            if let Some(limit) = limit
                && common.expires.time > limit
            {
                fail(
                    "$.signed.expires",
                    format!(
                        "{} is later than now + the expiry period of {days} days ({})",
                        show(&common.expires.raw),
                        super::metadata::Expires::from_time(limit).raw
                    ),
                );
            }
        }
    }
    if let AnyMetadata::Root(m) = &role.md {
        let r = m.signed();
        if r.consistent_snapshot != Some(true) {
            fail(
                "$.signed.consistent_snapshot",
                "must be true (tuf-on-ci publishes consistent snapshots)".into(),
            );
        }
        let ts = r.role(RoleType::Timestamp);
        let sn = r.role(RoleType::Snapshot);
        if ts.keyids != sn.keyids || ts.threshold != sn.threshold {
            fail(
                "$.signed.roles.snapshot",
                "timestamp and snapshot must have the same keys and threshold (one online signer)"
                    .into(),
            );
        }
        for (name, online) in [("timestamp", ts), ("snapshot", sn)] {
            let path = format!("$.signed.roles.{name}");
            let e = u64_field(&online.unrecognized, EXPIRY_PERIOD_FIELD);
            let s = u64_field(&online.unrecognized, SIGNING_PERIOD_FIELD);
            match (e, s) {
                (Some(e), Some(s)) if s >= 1 && e > s => {}
                (Some(e), Some(s)) => fail(
                    &format!("{path}.{SIGNING_PERIOD_FIELD}"),
                    format!(
                        "signing period {s} days must be at least 1 and shorter than the expiry period {e} days"
                    ),
                ),
                (None, _) => fail(
                    &format!("{path}.{EXPIRY_PERIOD_FIELD}"),
                    "missing or not a whole number of days".into(),
                ),
                (_, None) => fail(
                    &format!("{path}.{SIGNING_PERIOD_FIELD}"),
                    "missing or not a whole number of days".into(),
                ),
            }
        }
        check_key_ids(&r.keys, "$.signed.keys", &mut fail);
    }
    if let AnyMetadata::Targets(m) = &role.md
        && let Some(d) = &m.signed().delegations
    {
        check_key_ids(&d.keys, "$.signed.delegations.keys", &mut fail);
    }
    // The delegator's keys must be able to reach the threshold at all.
    for d in &role.delegations {
        let listed = d.keys.len() as u64;
        if listed < d.role.threshold {
            fail(
                "-",
                format!(
                    "the {} lists {listed} key(s) for a threshold of {}: it can never verify",
                    d.by, d.role.threshold
                ),
            );
        }
        // A signature already in the file must verify (an empty slot is a placeholder).
        let r = d.count(role.md.signed_bytes(), role.md.signatures());
        for (id, why) in &r.unsigned {
            if let super::verify::Uncounted::InvalidSignature(e) = why {
                fail(
                    &member_path("$.signatures", id.as_str()),
                    format!(
                        "the signature by {} does not verify: {}",
                        show(id.as_str()),
                        show(e)
                    ),
                );
            }
        }
    }
}

fn check_key_ids(keys: &[(KeyId, Key)], path: &str, fail: &mut dyn FnMut(&str, String)) {
    for (id, key) in keys {
        let want = key.key_id();
        if *id != want {
            fail(
                &member_path(path, id.as_str()),
                format!(
                    "key id is not the SHA-256 of the canonical key with its custom fields ({})",
                    want
                ),
            );
        }
    }
}

fn periods(m: &Map) -> String {
    let e = u64_field(m, EXPIRY_PERIOD_FIELD).map_or("?".to_string(), |d| d.to_string());
    let s = u64_field(m, SIGNING_PERIOD_FIELD).map_or("?".to_string(), |d| d.to_string());
    format!("expiry period {e} days, signing period {s} days")
}

fn signers(role: &Role, lookup: &dyn Fn(&KeyId) -> Option<Key>) -> String {
    let names: Vec<String> = role
        .keyids
        .iter()
        .map(|id| match lookup(id) {
            Some(k) => describe_key(id, &k),
            None => format!("{} (not in keys)", show(id.short())),
        })
        .collect();
    format!(
        "{} of {}: {}",
        role.threshold,
        role.keyids.len(),
        names.join(", ")
    )
}

/// The review text for one changed role.
fn review_role(
    role: &ChangedRole,
    kg_root: &Metadata<Root>,
    known_good: &MetadataFolder,
    ev_targets: Option<&Metadata<Targets>>,
    now: OffsetDateTime,
    out: &mut String,
) {
    let c = role.md.common();
    let was = role
        .known_good_version
        .map_or("new role".to_string(), |v| format!("was v{v}"));
    let _ = writeln!(
        out,
        "\n{} v{} ({was}) in {}{}",
        show(&role.name),
        c.version,
        show(&role.file),
        if role.copies.is_empty() {
            String::new()
        } else {
            format!(
                " and {}",
                role.copies
                    .iter()
                    .map(|f| show(f))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let _ = writeln!(
        out,
        "  SHA-256 of the signed bytes: {}",
        sha256_hex(role.md.signed_bytes())
    );
    let (unrec, kg_unrec) = match &role.md {
        AnyMetadata::Root(m) => (
            m.signed().unrecognized.clone(),
            Some(kg_root.signed().unrecognized.clone()),
        ),
        AnyMetadata::Targets(m) => (
            m.signed().unrecognized.clone(),
            known_good
                .get(&role.file)
                .and_then(|b| Metadata::<Targets>::from_bytes(b).ok())
                .map(|t| t.signed().unrecognized.clone()),
        ),
        _ => (Map::new(), None),
    };
    let days_left = (c.expires.time - now).whole_days();
    let _ = writeln!(
        out,
        "  expires {} ({days_left} days from now); {}{}",
        show(&c.expires.raw),
        periods(&unrec),
        match &kg_unrec {
            Some(k) if periods(k) != periods(&unrec) => format!(" (was: {})", periods(k)),
            _ => String::new(),
        }
    );
    match &role.md {
        AnyMetadata::Root(m) => {
            let r = m.signed();
            let k = kg_root.signed();
            for ty in [
                RoleType::Root,
                RoleType::Targets,
                RoleType::Timestamp,
                RoleType::Snapshot,
            ] {
                let now_s = signers(r.role(ty), &|id| r.key(id).cloned());
                let old_s = signers(k.role(ty), &|id| k.key(id).cloned());
                let mut line = format!("  {ty}: {now_s}");
                if ty == RoleType::Timestamp || ty == RoleType::Snapshot {
                    line.push_str(&format!("; {}", periods(&r.role(ty).unrecognized)));
                }
                if old_s != now_s || r.role(ty).unrecognized != k.role(ty).unrecognized {
                    line.push_str(&format!("\n    CHANGED (was: {old_s}"));
                    if ty == RoleType::Timestamp || ty == RoleType::Snapshot {
                        line.push_str(&format!("; {}", periods(&k.role(ty).unrecognized)));
                    }
                    line.push(')');
                }
                let _ = writeln!(out, "{line}");
            }
            if r.consistent_snapshot != k.consistent_snapshot {
                let _ = writeln!(
                    out,
                    "  consistent_snapshot: {:?} (was {:?})",
                    r.consistent_snapshot, k.consistent_snapshot
                );
            }
        }
        AnyMetadata::Targets(m) => {
            let t = m.signed();
            let kg_t = known_good
                .get(&role.file)
                .and_then(|b| Metadata::<Targets>::from_bytes(b).ok());
            review_targets(t, kg_t.as_ref().map(|m| m.signed()), out);
            let _ = ev_targets;
        }
        _ => {}
    }
    for d in &role.delegations {
        let r = d.count(role.md.signed_bytes(), role.md.signatures());
        let _ = writeln!(out, "  signatures for the {}: {}", d.by, r.summary());
    }
}

fn target_line(name: &str, v: &Value) -> String {
    let v = v.clone().unpacked();
    let m = v.as_object();
    let len = m.and_then(|m| u64_field(m, "length")).unwrap_or(0);
    let sha = m
        .and_then(|m| m.get("hashes"))
        .and_then(Value::as_object)
        .and_then(|h| h.get("sha256"))
        .and_then(Value::as_str)
        .unwrap_or("-");
    let custom = m
        .and_then(|m| m.get("custom"))
        .map(|c| {
            format!(
                ", custom {}",
                show(&String::from_utf8_lossy(&c.canonical_bytes()))
            )
        })
        .unwrap_or_default();
    format!("{} ({len} bytes, sha256 {}{custom})", show(name), show(sha))
}

fn review_targets(t: &Targets, kg: Option<&Targets>, out: &mut String) {
    let empty = Map::new();
    let old = kg.map_or(&empty, |k| &k.targets);
    let mut lines = Vec::new();
    for (name, v) in t.targets.iter() {
        match old.get(name) {
            None => lines.push(format!("  + target {}", target_line(name, v))),
            Some(o) if o != v => lines.push(format!(
                "  ~ target {} (was {})",
                target_line(name, v),
                target_line(name, o)
            )),
            Some(_) => {}
        }
    }
    for (name, v) in old.iter() {
        if t.targets.get(name).is_none() {
            lines.push(format!("  - target {}", target_line(name, v)));
        }
    }
    if lines.is_empty() {
        let _ = writeln!(
            out,
            "  target files: unchanged ({} listed)",
            t.targets.len()
        );
    }
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    if let Some(d) = &t.delegations
        && let Some(roles) = &d.roles
    {
        for r in roles {
            let _ = writeln!(
                out,
                "  delegation {}: {}",
                show(&r.name),
                signers(&r.role, &|id| d.key(id).cloned())
            );
        }
    }
}

// ---- invites: accepting one is an edit -----------------------------------------------------

/// What [`accept_invites`] made: the edited event and what changed.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// The event's `metadata/` after the edit (unsigned placeholders reset, as tuf-on-ci does).
    pub event: MetadataFolder,
    /// The roles the keyholder was invited to and now holds a key for.
    pub roles: Vec<String>,
    /// Their files (`root.json`, `targets.json`, `NAME.json`): tuf-on-ci-sign signs each,
    /// changed or not.
    pub role_files: Vec<String>,
    /// Invites still open for others, by user.
    pub remaining: Vec<(String, Vec<String>)>,
    /// One line per change, for the review.
    pub lines: Vec<String>,
}

fn json_obj<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Map> {
    let mut cur = v;
    for p in path {
        cur = match cur {
            Value::Object(m) => m.get_mut(p)?,
            _ => return None,
        };
    }
    match cur {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Accept `user`'s invites (`.signing-event-state`) with `key` (its public key from the token),
/// as `tuf-on-ci-sign` does: the key gets the owner field `user` and the key id that hashes the
/// whole key; it joins each invited role's key ids in the delegator (root for root and targets,
/// targets.json for a delegated role); the invite is removed; the delegator gets version
/// known-good + 1, `expires` now + its expiry period, and empty placeholders for every key that
/// may sign it. Nothing else in `signed` changes. `user` is `@handle` in lower case.
pub fn accept_invites(
    event: &MetadataFolder,
    known_good: &MetadataFolder,
    user: &str,
    key: &Key,
    now: OffsetDateTime,
) -> Result<Accepted, ReviewError> {
    let (kg_root, _) = verify_known_good(known_good)?;
    let err =
        |file: &str, field: &str, msg: String| ReviewError(finding(event.name(file), field, msg));
    let mut failures = Vec::new();
    let invites = read_invites(event, &mut failures);
    if let Some(f) = failures.into_iter().next() {
        return Err(ReviewError(f));
    }
    let Some((_, roles)) = invites.iter().find(|(u, _)| u == user) else {
        return Err(err(
            STATE_FILE,
            "$.invites",
            format!("no open invite for {}", show(user)),
        ));
    };
    let mut key = key.clone();
    key.unrecognized
        .insert(OWNER_FIELD.into(), Value::String(user.to_string()));
    let keyid = key.key_id();
    let mut files = event.files.clone();
    let mut lines = Vec::new();
    // Group the invited roles by delegator file.
    let mut by_file: Vec<(String, Vec<String>)> = Vec::new();
    for r in roles {
        let file = if r == "root" || r == "targets" {
            "root.json"
        } else {
            "targets.json"
        };
        match by_file.iter_mut().find(|(f, _)| f == file) {
            Some((_, v)) => v.push(r.clone()),
            None => by_file.push((file.to_string(), vec![r.clone()])),
        }
    }
    for (file, rnames) in &by_file {
        let bytes = event
            .get(file)
            .ok_or_else(|| err(file, "-", "missing: the invited role's delegator".into()))?;
        let mut v = parse_file(bytes)
            .map_err(|e| err(file, "$", show(&e.to_string())))?
            .unpacked();
        let is_root = file == "root.json";
        let keys_path: &[&str] = if is_root {
            &["signed", "keys"]
        } else {
            &["signed", "delegations", "keys"]
        };
        json_obj(&mut v, keys_path)
            .ok_or_else(|| err(file, "$.signed", "no key list to add the key to".into()))?
            .insert(keyid.0.clone(), key.to_value());
        for r in rnames {
            let ids: Option<&mut Value> = if is_root {
                json_obj(&mut v, &["signed", "roles", r]).and_then(|m| m.get_mut("keyids"))
            } else {
                match json_obj(&mut v, &["signed", "delegations"]).and_then(|m| m.get_mut("roles"))
                {
                    Some(Value::Array(list)) => list
                        .iter_mut()
                        .find(|d| {
                            d.as_object()
                                .and_then(|o| o.get("name"))
                                .and_then(Value::as_str)
                                == Some(r.as_str())
                        })
                        .and_then(|d| match d {
                            Value::Object(o) => o.get_mut("keyids"),
                            _ => None,
                        }),
                    _ => None,
                }
            };
            let Some(Value::Array(ids)) = ids else {
                return Err(err(
                    file,
                    "$.signed",
                    format!("does not delegate the invited role \"{}\"", show(r)),
                ));
            };
            if !ids.iter().any(|i| i.as_str() == Some(keyid.as_str())) {
                ids.push(Value::String(keyid.0.clone()));
            }
            lines.push(format!(
                "{}: key {} of {} added to role {}",
                event.name(file),
                show(keyid.as_str()),
                show(user),
                show(r)
            ));
        }
        // close(): version, expiry, placeholders.
        let kg_version = known_good
            .get(file)
            .and_then(|b| AnyMetadata::from_bytes(b).ok())
            .map_or(0, |m| m.common().version);
        let signed = json_obj(&mut v, &["signed"])
            .ok_or_else(|| err(file, "$.signed", "not an object".into()))?;
        let days = u64_field(signed, EXPIRY_PERIOD_FIELD).ok_or_else(|| {
            err(
                file,
                &format!("$.signed.{EXPIRY_PERIOD_FIELD}"),
                "missing or not a whole number of days".into(),
            )
        })?;
        let expires = period_end(now, days)
            .ok_or_else(|| err(file, EXPIRY_PERIOD_FIELD, "out of range".into()))?;
        signed.insert("version".into(), Value::Int(i128::from(kg_version) + 1));
        signed.insert(
            "expires".into(),
            Value::String(super::metadata::Expires::from_time(expires).raw),
        );
        let edited = Value::Object(signed.clone());
        let mut slots: Vec<KeyId> = Vec::new();
        if is_root {
            let new_root = <Root as SignedPayload>::from_value(edited, "$.signed")
                .map_err(|e| err(file, &e.path, show(&e.message)))?;
            let kr = kg_root.signed();
            for id in &kr.role(RoleType::Root).keyids {
                let known = kr.key(id).is_some_and(|k| {
                    k.unrecognized.contains_key(OWNER_FIELD)
                        || k.unrecognized.contains_key(ONLINE_URI_FIELD)
                });
                if known && !slots.contains(id) {
                    slots.push(id.clone());
                }
            }
            for id in &new_root.role(RoleType::Root).keyids {
                if new_root.key(id).is_some() && !slots.contains(id) {
                    slots.push(id.clone());
                }
            }
        } else {
            // targets.json is signed by the targets keys of the event's root.
            let root = event
                .get("root.json")
                .and_then(|b| Metadata::<Root>::from_bytes(b).ok())
                .ok_or_else(|| err("root.json", "-", "the event's root does not load".into()))?;
            let r = root.signed();
            for id in &r.role(RoleType::Targets).keyids {
                if r.key(id).is_some() && !slots.contains(id) {
                    slots.push(id.clone());
                }
            }
        }
        if let Value::Object(m) = &mut v {
            m.insert(
                "signatures".into(),
                Value::Array(
                    slots
                        .iter()
                        .map(|id| {
                            let mut o = Map::new();
                            o.insert("keyid".into(), Value::String(id.0.clone()));
                            o.insert("sig".into(), Value::String(String::new()));
                            Value::Object(o)
                        })
                        .collect(),
                ),
            );
        }
        let out = python_tuf_json(&v).into_bytes();
        AnyMetadata::from_bytes(&out)
            .map_err(|e| err(file, "$", format!("the edit does not load: {e}")))?;
        let set = |files: &mut Vec<(String, Vec<u8>)>, rel: String, b: Vec<u8>| match files
            .iter_mut()
            .find(|(n, _)| *n == rel)
        {
            Some(f) => f.1 = b,
            None => files.push((rel, b)),
        };
        if is_root {
            set(
                &mut files,
                format!("{ROOT_HISTORY}/{}.root.json", u128::from(kg_version) + 1),
                out.clone(),
            );
        }
        set(&mut files, file.clone(), out);
    }
    // The state file: the invite removed; the file removed when no invite is left.
    let mut remaining: Vec<(String, Vec<String>)> = Vec::new();
    for (u, rs) in &invites {
        let left: Vec<String> = if u == user {
            rs.iter().filter(|r| !roles.contains(r)).cloned().collect()
        } else {
            rs.clone()
        };
        if !left.is_empty() {
            remaining.push((u.clone(), left));
        }
    }
    files.retain(|(n, _)| n != STATE_FILE);
    if !remaining.is_empty() {
        // json.dumps({"invites": ...}, indent=2), as tuf-on-ci writes it (insertion order).
        let mut text = String::from("{\n  \"invites\": {");
        for (i, (u, rs)) in remaining.iter().enumerate() {
            let mut us = String::new();
            write_py_str(u, &mut us);
            let _ = write!(text, "{}\n    {us}: [", if i > 0 { "," } else { "" });
            for (j, r) in rs.iter().enumerate() {
                let mut r_s = String::new();
                write_py_str(r, &mut r_s);
                let _ = write!(text, "{}\n      {r_s}", if j > 0 { "," } else { "" });
            }
            text.push_str("\n    ]");
        }
        text.push_str("\n  }\n}");
        files.push((STATE_FILE.into(), text.into_bytes()));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Accepted {
        event: MetadataFolder {
            label: event.label.clone(),
            files,
        },
        role_files: roles.iter().map(|r| format!("{r}.json")).collect(),
        roles: roles.clone(),
        remaining,
        lines,
    })
}

/// The open invites of an event (`.signing-event-state`; none when the file is absent), by user
/// in the file's order. A state file that does not read is an error naming the field.
pub fn open_invites(event: &MetadataFolder) -> Result<Vec<(String, Vec<String>)>, ReviewError> {
    if event.get(STATE_FILE).is_none() {
        return Ok(Vec::new());
    }
    let mut failures = Vec::new();
    let invites = read_invites(event, &mut failures);
    match failures.into_iter().next() {
        Some(f) => Err(ReviewError(f)),
        None => Ok(invites),
    }
}

/// Check, on the connected machine, that `accepted` is `event` with invites accepted as
/// [`accept_invites`] edits it, and nothing else: every invite still open in `accepted` was open
/// in `event`; a file only `accepted` holds is the new root's `root_history/N.root.json` (the
/// same bytes as its `root.json`); no file but the state file disappears; and a role file whose
/// `signed` differs is `root.json` (and its history copy) or `targets.json`, where the only
/// changes are keys added with an owner whose invite is gone (their key id hashing the whole
/// key, the owner field included), those key ids added to roles the owner was invited to, and
/// `version` and `expires`. Signatures are not compared (the edit resets the placeholders).
/// Returns one line per key added.
pub fn check_acceptance(
    event: &MetadataFolder,
    accepted: &MetadataFolder,
) -> Result<Vec<String>, ReviewError> {
    let err = |file: &str, field: &str, msg: String| {
        ReviewError(finding(accepted.name(file), field, msg))
    };
    let before = open_invites(event)?;
    let after = open_invites(accepted)?;
    // The roles each user accepted: open before, gone after.
    let mut taken: Vec<(String, Vec<String>)> = Vec::new();
    for (u, rs) in &after {
        let was = before.iter().find(|(b, _)| b == u).map(|(_, r)| r);
        if let Some(r) = rs.iter().find(|r| !was.is_some_and(|w| w.contains(r))) {
            return Err(err(
                STATE_FILE,
                &member_path("$.invites", u),
                format!("invite to {} was not open in the event", show(r)),
            ));
        }
    }
    for (u, rs) in &before {
        let left = after.iter().find(|(a, _)| a == u).map(|(_, r)| r.clone());
        let gone: Vec<String> = rs
            .iter()
            .filter(|r| !left.as_ref().is_some_and(|l| l.contains(r)))
            .cloned()
            .collect();
        if !gone.is_empty() {
            taken.push((u.clone(), gone));
        }
    }
    if taken.is_empty() {
        return Err(err(
            STATE_FILE,
            "$.invites",
            "no invite of the event is accepted here".into(),
        ));
    }
    let root_version = accepted
        .get("root.json")
        .and_then(|b| AnyMetadata::from_bytes(b).ok())
        .map(|m| m.common().version);
    let history = root_version.map(|v| format!("{ROOT_HISTORY}/{v}.root.json"));
    for (rel, _) in &event.files {
        if rel != STATE_FILE && accepted.get(rel).is_none() {
            return Err(err(rel, "-", "the event's file is missing".into()));
        }
    }
    let mut lines = Vec::new();
    for (rel, bytes) in &accepted.files {
        if rel == STATE_FILE || event.get(rel) == Some(bytes.as_slice()) {
            continue;
        }
        if Some(rel) == history.as_ref() {
            if accepted.get("root.json") != Some(bytes.as_slice()) {
                return Err(err(
                    rel,
                    "-",
                    "differs from root.json: tuf-on-ci keeps a byte-identical copy".into(),
                ));
            }
            if event.get(rel).is_none() {
                continue;
            }
        }
        let delegator = match rel.as_str() {
            "root.json" => true,
            "targets.json" => false,
            _ if Some(rel) == history.as_ref() => true,
            _ => {
                return Err(err(
                    rel,
                    "-",
                    "changed, but accepting an invite changes only root.json, its root_history/ copy and targets.json".into(),
                ));
            }
        };
        let Some(old) = event.get(rel) else {
            return Err(err(rel, "-", "not a file of the event".into()));
        };
        let signed_of = |b: &[u8], what: &str| -> Result<Map, ReviewError> {
            parse_file(b)
                .map_err(|e| err(rel, "$", format!("{what}: {}", show(&e.to_string()))))?
                .unpacked()
                .as_object()
                .and_then(|m| m.get("signed"))
                .and_then(Value::as_object)
                .cloned()
                .ok_or_else(|| err(rel, "$.signed", format!("{what}: not an object")))
        };
        let old = signed_of(old, "the event's file")?;
        let mut new = signed_of(bytes, "the accepted file")?;
        for f in ["version", "expires"] {
            match old.get(f) {
                Some(v) => new.insert(f.into(), v.clone()),
                None => new.remove(f),
            };
        }
        let keys_path: &[&str] = if delegator {
            &["keys"]
        } else {
            &["delegations", "keys"]
        };
        let obj_at = |m: &Map, path: &[&str]| -> Option<Map> {
            let mut cur = m.clone();
            for p in path {
                cur = cur.get(p)?.as_object()?.clone();
            }
            Some(cur)
        };
        let old_keys = obj_at(&old, keys_path).unwrap_or_default();
        let new_keys = obj_at(&new, keys_path).unwrap_or_default();
        let mut added: Vec<(String, String)> = Vec::new();
        for (id, kv) in new_keys.iter() {
            if old_keys.contains_key(id) {
                continue;
            }
            let field = format!("$.signed.{}", keys_path.join("."));
            let key = super::metadata::key_from_value(kv.clone(), &field)
                .map_err(|e| err(rel, &member_path(&field, id), show(&e.to_string())))?;
            if key.key_id().0 != *id {
                return Err(err(
                    rel,
                    &member_path(&field, id),
                    "the key id is not the SHA-256 of the whole key".into(),
                ));
            }
            let owner = key
                .unrecognized
                .get(OWNER_FIELD)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if !taken.iter().any(|(u, _)| *u == owner) {
                return Err(err(
                    rel,
                    &member_path(&field, id),
                    format!(
                        "a key added for {}, who accepted no invite here",
                        show(&owner)
                    ),
                ));
            }
            added.push((id.clone(), owner));
        }
        // Remove the added keys and their ids from the roles they joined.
        let mut strip = |roles: &mut Vec<(String, &mut Value)>| -> Result<(), ReviewError> {
            for (role, entry) in roles.iter_mut() {
                let Value::Object(o) = entry else { continue };
                let Some(Value::Array(ids)) = o.get_mut("keyids") else {
                    continue;
                };
                for (id, owner) in &added {
                    if !ids.iter().any(|i| i.as_str() == Some(id)) {
                        continue;
                    }
                    let invited = taken
                        .iter()
                        .any(|(u, rs)| u == owner && rs.iter().any(|r| r == role));
                    if !invited {
                        return Err(err(
                            rel,
                            "$.signed",
                            format!(
                                "key {} of {} joins role {}, which they were not invited to",
                                show(id),
                                show(owner),
                                show(role)
                            ),
                        ));
                    }
                    ids.retain(|i| i.as_str() != Some(id));
                    lines.push(format!(
                        "{}: key {} of {} joins role {}",
                        accepted.name(rel),
                        show(id),
                        show(owner),
                        show(role)
                    ));
                }
            }
            Ok(())
        };
        if delegator {
            if let Some(Value::Object(roles)) = new.get_mut("roles") {
                let mut entries: Vec<(String, Value)> =
                    roles.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                let mut refs: Vec<(String, &mut Value)> =
                    entries.iter_mut().map(|(k, v)| (k.clone(), v)).collect();
                strip(&mut refs)?;
                *roles = Map::from_entries(entries);
            }
        } else if let Some(Value::Object(d)) = new.get_mut("delegations")
            && let Some(Value::Array(list)) = d.get_mut("roles")
        {
            let mut refs: Vec<(String, &mut Value)> = list
                .iter_mut()
                .map(|v| {
                    let name = v
                        .as_object()
                        .and_then(|o| o.get("name"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    (name, v)
                })
                .collect();
            strip(&mut refs)?;
        }
        let keys_obj = if delegator {
            Some(&mut new)
        } else {
            match new.get_mut("delegations") {
                Some(Value::Object(d)) => Some(d),
                _ => None,
            }
        };
        if let Some(Value::Object(k)) = keys_obj.and_then(|m| m.get_mut("keys")) {
            for (id, _) in &added {
                k.remove(id);
            }
        }
        if Value::Object(new) != Value::Object(old) {
            return Err(err(
                rel,
                "$.signed",
                "changes more than accepting an invite does (keys added for the invitees, their key ids in the invited roles, version and expires); refused".into(),
            ));
        }
    }
    Ok(lines)
}

// ---- the connected side: signatures into the placeholders ---------------------------------

/// A signature bundle's file name for a role and key id: `ROLE-vN-KEYID16.bundle` (`None`: the
/// role name cannot name a file).
pub fn bundle_file_name(role: &str, version: u64, keyid: &KeyId) -> Option<String> {
    let ok = !role.is_empty()
        && role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !role.starts_with('.');
    if !ok {
        return None;
    }
    let id: String = keyid
        .as_str()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(16)
        .collect();
    Some(format!("{role}-v{version}-{id}.bundle"))
}

/// A detached signature to write into an event (from a bundle).
#[derive(Clone, Debug)]
pub struct DetachedSignature {
    /// Where it came from (a bundle file), for messages.
    pub source: String,
    /// Version of the metadata it signs.
    pub version: u64,
    /// Hex SHA-256 of the canonical signed bytes it signs.
    pub signed_sha256: String,
    /// The key id.
    pub keyid: KeyId,
    /// Hex signature.
    pub sig: String,
}

/// What [`apply_signatures`] did: files to write (relative path, new bytes) and one line per
/// signature placed.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// (relative path, new bytes), every file carrying a signed role.
    pub files: Vec<(String, Vec<u8>)>,
    /// What was placed where.
    pub lines: Vec<String>,
}

/// Write `sigs` into the event's placeholders: each must match a file's signed bytes (by
/// SHA-256) and version, name a key that may sign that role (for root also a key of the
/// known-good root, which needs `known_good`), and verify. Every file holding that metadata
/// gets it (`root.json` and `root_history/N.root.json`). All or nothing: any refusal returns
/// every reason and no file.
pub fn apply_signatures(
    event: &MetadataFolder,
    known_good: Option<&Metadata<Root>>,
    sigs: &[DetachedSignature],
) -> Result<Applied, Vec<Finding>> {
    let mut errors = Vec::new();
    // Parse every role file of the event once.
    let mut parsed: Vec<(String, AnyMetadata, String)> = Vec::new();
    let root_bytes = event.get("root.json");
    for (rel, bytes) in &event.files {
        // Role files, and of root_history/ only the copy of the current root: an older root
        // is history and never signed again.
        let history = rel.starts_with("root_history/");
        if !rel.ends_with(".json") || (history && root_bytes != Some(bytes.as_slice())) {
            continue;
        }
        match AnyMetadata::from_bytes(bytes) {
            Ok(md) => {
                let d = sha256_hex(md.signed_bytes());
                parsed.push((rel.clone(), md, d));
            }
            Err(e) => errors.push(finding(
                event.name(rel),
                field_of(&e.to_string()),
                message_of(&e.to_string()),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let ev_root = parsed
        .iter()
        .find(|(r, _, _)| r == "root.json")
        .and_then(|(_, m, _)| match m {
            AnyMetadata::Root(r) => Some(r.clone()),
            _ => None,
        });
    let ev_targets = parsed
        .iter()
        .find(|(r, _, _)| r == "targets.json")
        .and_then(|(_, m, _)| match m {
            AnyMetadata::Targets(t) => Some(t.clone()),
            _ => None,
        });
    // (relative path, signatures to place)
    let mut placed: Vec<(String, Vec<(KeyId, String)>)> = Vec::new();
    let mut lines = Vec::new();
    for s in sigs {
        let src = show(&s.source);
        let targets: Vec<&(String, AnyMetadata, String)> = parsed
            .iter()
            .filter(|(_, _, d)| d.eq_ignore_ascii_case(&s.signed_sha256))
            .collect();
        if targets.is_empty() {
            errors.push(finding(
                src,
                "$.signed_sha256",
                format!(
                    "no file of the event has signed bytes with SHA-256 {}: the signature was made for other content",
                    show(&s.signed_sha256)
                ),
            ));
            continue;
        }
        for (rel, md, _) in targets {
            let fname = event.name(rel);
            if md.common().version != s.version {
                errors.push(finding(
                    src.clone(),
                    "$.version",
                    format!(
                        "signs version {}, {fname} is version {}",
                        s.version,
                        md.common().version
                    ),
                ));
                continue;
            }
            let role_name = rel
                .rsplit('/')
                .next()
                .unwrap_or(rel)
                .trim_end_matches(".json")
                .to_string();
            let key = match eligible_key(
                md,
                &role_name,
                &s.keyid,
                ev_root.as_ref(),
                ev_targets.as_ref(),
                known_good,
            ) {
                Ok(k) => k,
                Err(msg) => {
                    errors.push(finding(src.clone(), "$.keyid", format!("{fname}: {msg}")));
                    continue;
                }
            };
            if let Err(e) = key.verify_hex(md.signed_bytes(), &s.sig) {
                errors.push(finding(
                    src.clone(),
                    "$.sig",
                    format!(
                        "does not verify with key {} over {fname}: {e}",
                        show(s.keyid.as_str())
                    ),
                ));
                continue;
            }
            match md.signatures().iter().find(|x| x.keyid == s.keyid) {
                Some(x) if !x.sig.is_empty() && x.sig != s.sig => {
                    errors.push(finding(
                        src.clone(),
                        "$.keyid",
                        format!(
                            "{fname} holds another signature by {} already",
                            show(s.keyid.as_str())
                        ),
                    ));
                    continue;
                }
                _ => {}
            }
            match placed.iter_mut().find(|(r, _)| r == rel) {
                Some((_, v)) => {
                    if !v.iter().any(|(k, _)| *k == s.keyid) {
                        v.push((s.keyid.clone(), s.sig.clone()));
                    }
                }
                None => placed.push((rel.clone(), vec![(s.keyid.clone(), s.sig.clone())])),
            }
            lines.push(format!(
                "{fname}: signature by {} placed",
                describe_key(&s.keyid, &key)
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut files = Vec::new();
    for (rel, new_sigs) in placed {
        let bytes = event.get(&rel).unwrap_or_default();
        match fill_placeholders(bytes, &new_sigs) {
            Ok(b) => files.push((rel, b)),
            Err(msg) => errors.push(finding(event.name(&rel), "$.signatures", msg)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Applied { files, lines })
}

/// The key `keyid` names for role `name` (file metadata `md`), if that key may sign it.
fn eligible_key(
    md: &AnyMetadata,
    name: &str,
    keyid: &KeyId,
    ev_root: Option<&Metadata<Root>>,
    ev_targets: Option<&Metadata<Targets>>,
    known_good: Option<&Metadata<Root>>,
) -> Result<Key, String> {
    let in_role = |r: &Root, ty: RoleType| {
        r.role(ty)
            .keyids
            .contains(keyid)
            .then(|| r.key(keyid).cloned())
            .flatten()
    };
    match md {
        AnyMetadata::Root(m) => {
            if let Some(k) = in_role(m.signed(), RoleType::Root) {
                return Ok(k);
            }
            match known_good {
                Some(kg) => in_role(kg.signed(), RoleType::Root).ok_or_else(|| {
                    format!(
                        "key {} is neither a root key of this root nor of the known-good root",
                        show(keyid.as_str())
                    )
                }),
                None => Err(format!(
                    "key {} is not a root key of this root; if it is a key of the known-good root, give the known-good metadata (--known-good)",
                    show(keyid.as_str())
                )),
            }
        }
        AnyMetadata::Targets(_) if name == "targets" => ev_root
            .and_then(|r| in_role(r.signed(), RoleType::Targets))
            .ok_or_else(|| {
                format!(
                    "key {} is not a targets key of the event's root",
                    show(keyid.as_str())
                )
            }),
        AnyMetadata::Targets(_) => ev_targets
            .and_then(|t| t.signed().delegations.as_ref())
            .and_then(|d| {
                d.role_for(name)
                    .filter(|r| r.keyids.contains(keyid))
                    .and_then(|_| d.key(keyid).cloned())
            })
            .ok_or_else(|| {
                format!(
                    "key {} is not a key of the delegation \"{}\" in the event's targets.json",
                    show(keyid.as_str()),
                    show(name)
                )
            }),
        _ => Err("online roles are signed in tuf-on-ci's CI, not offline".into()),
    }
}

/// The file with `sigs` written into their slots (a slot missing is appended, as python-tuf
/// adds a signature), in python-tuf's JSONSerializer format; refuses if `signed` would change.
pub fn fill_placeholders(bytes: &[u8], sigs: &[(KeyId, String)]) -> Result<Vec<u8>, String> {
    let before = AnyMetadata::from_bytes(bytes).map_err(|e| e.to_string())?;
    let v = parse_file(bytes).map_err(|e| e.to_string())?.unpacked();
    let Value::Object(mut m) = v else {
        return Err("not a JSON object".into());
    };
    let Some(Value::Array(list)) = m.get_mut("signatures") else {
        return Err("no signatures array".into());
    };
    for (keyid, sig) in sigs {
        let slot = list.iter_mut().find(|s| {
            s.as_object()
                .and_then(|o| o.get("keyid"))
                .and_then(Value::as_str)
                == Some(keyid.as_str())
        });
        match slot {
            Some(Value::Object(o)) => {
                o.insert("sig".into(), Value::String(sig.clone()));
            }
            _ => {
                let mut o = Map::new();
                o.insert("keyid".into(), Value::String(keyid.0.clone()));
                o.insert("sig".into(), Value::String(sig.clone()));
                list.push(Value::Object(o));
            }
        }
    }
    let out = python_tuf_json(&Value::Object(m)).into_bytes();
    let after = AnyMetadata::from_bytes(&out).map_err(|e| format!("internal error: {e}"))?;
    if after.signed_bytes() != before.signed_bytes() {
        return Err("internal error: the signed part would change; nothing written".into());
    }
    Ok(out)
}

/// JSON text exactly as python-tuf's `JSONSerializer` writes it (`json.dumps(indent=1,
/// sort_keys=True)`): one space of indentation per level, `", "`-free separators (`","` at line
/// ends, `": "` between key and value), non-ASCII as `\uXXXX` escapes (lower-case hex,
/// surrogate pairs), no trailing newline.
pub fn python_tuf_json(v: &Value) -> String {
    let mut out = String::new();
    write_py(v, 0, &mut out);
    out
}

fn write_py(v: &Value, level: usize, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::String(s) => write_py_str(s, out),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                push_indent(level + 1, out);
                write_py(item, level + 1, out);
            }
            out.push('\n');
            push_indent(level, out);
            out.push(']');
        }
        Value::Object(m) if m.is_empty() => out.push_str("{}"),
        Value::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                push_indent(level + 1, out);
                write_py_str(k, out);
                out.push_str(": ");
                write_py(item, level + 1, out);
            }
            out.push('\n');
            push_indent(level, out);
            out.push('}');
        }
        Value::Packed(_) => write_py(&v.clone().unpacked(), level, out),
    }
}

fn push_indent(level: usize, out: &mut String) {
    for _ in 0..level {
        out.push(' ');
    }
}

fn write_py_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_tuf_json_is_json_dumps_indent_1_sort_keys() {
        // The expected text is what python3 -c 'json.dumps(v, indent=1, sort_keys=True)' prints.
        let v = Value::parse(
            "{\"b\":[1,{}],\"a\":\"\u{e9}\u{1F600}\\n\\\"x\\\\\\u007f\\u0001/\",\"c\":[],\"d\":{\"z\":true,\"y\":null}}"
                .as_bytes(),
        )
        .unwrap();
        let want = "{\n \"a\": \"\\u00e9\\ud83d\\ude00\\n\\\"x\\\\\\u007f\\u0001/\",\n \"b\": [\n  1,\n  {}\n ],\n \"c\": [],\n \"d\": {\n  \"y\": null,\n  \"z\": true\n }\n}";
        assert_eq!(python_tuf_json(&v), want);
    }

    fn targets_file(sigs: &str) -> Vec<u8> {
        format!(
            "{{\n \"signatures\": [{sigs}],\n \"signed\": {{\n  \"_type\": \"targets\",\n  \"expires\": \"2030-01-01T00:00:00Z\",\n  \"spec_version\": \"1.0.31\",\n  \"targets\": {{\n   \"a.txt\": {{\"length\": 1, \"hashes\": {{\"sha256\": \"00\"}}, \"custom\": {{\"x\": \"\u{e9}\"}}}}\n  }},\n  \"version\": 2,\n  \"x-tuf-on-ci-expiry-period\": 365\n }}\n}}"
        )
        .into_bytes()
    }

    #[test]
    fn placeholders_are_filled_and_signed_never_changes() {
        let bytes = targets_file(r#"{"keyid": "aa", "sig": ""}, {"keyid": "bb", "sig": ""}"#);
        let before = AnyMetadata::from_bytes(&bytes).unwrap();
        let out = fill_placeholders(&bytes, &[(KeyId("bb".into()), "0102".into())]).unwrap();
        let after = AnyMetadata::from_bytes(&out).unwrap();
        assert_eq!(after.signed_bytes(), before.signed_bytes());
        let sigs: Vec<(&str, &str)> = after
            .signatures()
            .iter()
            .map(|s| (s.keyid.as_str(), s.sig.as_str()))
            .collect();
        assert_eq!(
            sigs,
            [("aa", ""), ("bb", "0102")],
            "order kept, only the slot filled"
        );
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("\"x\": \"\\u00e9\""), "ASCII escapes: {text}");
        assert!(!text.ends_with('\n'), "no trailing newline");
        // Filling again with the same signature changes nothing; a key without a slot is
        // appended, as python-tuf adds a signature.
        assert_eq!(
            fill_placeholders(&out, &[(KeyId("bb".into()), "0102".into())]).unwrap(),
            out
        );
        let more = fill_placeholders(&out, &[(KeyId("cc".into()), "03".into())]).unwrap();
        let m = AnyMetadata::from_bytes(&more).unwrap();
        assert_eq!(m.signatures().len(), 3);
        assert_eq!(m.signed_bytes(), before.signed_bytes());
    }

    #[test]
    fn a_known_good_folder_without_root_is_refused_by_name() {
        let kg = MetadataFolder {
            label: "main/metadata".into(),
            files: vec![("targets.json".into(), targets_file(""))],
        };
        let e = verify_known_good(&kg).unwrap_err();
        assert_eq!(
            e.to_string(),
            "main/metadata/root.json: -: the known-good metadata has no root.json"
        );
    }

    use crate::signer::Signer;
    use crate::signer::software::SoftwareSigner;
    use crate::tuf::edit::{RoleKeys, new_root};
    use crate::tuf::key::Algorithm;

    fn person(seed: u8, owner: &str) -> SoftwareSigner {
        let s = SoftwareSigner::from_seed(Algorithm::Ed25519, &[seed; 32]).unwrap();
        let mut key = s.key().clone();
        key.unrecognized.insert(OWNER_FIELD.into(), owner.into());
        s.with_key(key).unwrap()
    }

    /// A tuf-on-ci root: `root_key` for root and targets, an online key for timestamp and
    /// snapshot with their periods, the root's own periods.
    fn tuf_on_ci_root(root_key: &Key, online: &Key, version: u64, expires: OffsetDateTime) -> Root {
        let rk = |role| RoleKeys {
            role,
            keys: vec![if matches!(role, RoleType::Root | RoleType::Targets) {
                root_key.clone()
            } else {
                online.clone()
            }],
            threshold: 1,
        };
        let mut r = new_root(&RoleType::ALL.map(rk), expires).unwrap();
        r.common.version = version;
        r.unrecognized
            .insert(EXPIRY_PERIOD_FIELD.into(), 365u64.into());
        r.unrecognized
            .insert(SIGNING_PERIOD_FIELD.into(), 60u64.into());
        for (ty, e, s) in [
            (RoleType::Timestamp, 2u64, 1u64),
            (RoleType::Snapshot, 365, 60),
        ] {
            let role = r.role_mut(ty).unwrap();
            role.unrecognized
                .insert(EXPIRY_PERIOD_FIELD.into(), e.into());
            role.unrecognized
                .insert(SIGNING_PERIOD_FIELD.into(), s.into());
        }
        r
    }

    fn file(md: &Metadata<Root>) -> Vec<u8> {
        python_tuf_json(&md.to_value()).into_bytes()
    }

    #[test]
    fn a_rotation_is_signed_by_the_known_good_key_too_and_applied_with_the_known_good_root() {
        let now = time::macros::datetime!(2026-06-01 00:00 UTC);
        let mut alice = person(1, "@alice");
        let bob = person(2, "@bob");
        let mut online = SoftwareSigner::from_seed(Algorithm::Ed25519, &[3; 32])
            .unwrap()
            .key()
            .clone();
        online
            .unrecognized
            .insert(ONLINE_URI_FIELD.into(), "gcpkms:x".into());
        let mut v1 = Metadata::new(tuf_on_ci_root(
            alice.key(),
            &online,
            1,
            now + Duration::days(300),
        ));
        crate::signer::sign_metadata(&mut v1, &mut alice).unwrap();
        let kg = MetadataFolder {
            label: "main".into(),
            files: vec![
                ("root.json".into(), file(&v1)),
                ("root_history/1.root.json".into(), file(&v1)),
            ],
        };
        // Root v2 hands root and targets to bob; placeholders for alice (known good) and bob.
        let mut v2 = Metadata::new(tuf_on_ci_root(
            bob.key(),
            &online,
            2,
            now + Duration::days(200),
        ));
        for k in [alice.key(), bob.key()] {
            v2.signatures.push(Signature {
                keyid: k.key_id(),
                sig: String::new(),
                unrecognized: Map::new(),
            });
        }
        let bytes = file(&v2);
        let mut ev = kg.clone();
        ev.label = "event".into();
        ev.files[0].1 = bytes.clone();
        ev.files.push(("root_history/2.root.json".into(), bytes));
        let r = review_event(&ev, &kg, now).unwrap();
        assert!(r.failures.is_empty(), "{}", r.text);
        assert!(
            r.text.contains("root: 1 of 1: @bob [Ed25519]"),
            "{}",
            r.text
        );
        assert!(
            r.text.contains("CHANGED (was: 1 of 1: @alice [Ed25519]"),
            "{}",
            r.text
        );
        assert!(
            r.text
                .contains("timestamp: 1 of 1: online key gcpkms:x [Ed25519]"),
            "{}",
            r.text
        );

        // Alice's key may sign root only as a key of the known-good root.
        let material = alice.key().public_key().unwrap().material();
        let plan = r.slots_for(&material);
        assert_eq!(plan, [(0, vec![alice.key().key_id()])]);
        let sig = alice.sign(r.changed[0].md.signed_bytes()).unwrap();
        let detached = DetachedSignature {
            source: "alice.bundle".into(),
            version: 2,
            signed_sha256: sha256_hex(r.changed[0].md.signed_bytes()),
            keyid: alice.key().key_id(),
            sig: hex::encode(&sig),
        };
        let e = apply_signatures(&ev, None, std::slice::from_ref(&detached)).unwrap_err();
        assert!(
            e[0].to_string()
                .contains("give the known-good metadata (--known-good)"),
            "{e:?}"
        );
        let done = apply_signatures(&ev, Some(&v1), std::slice::from_ref(&detached)).unwrap();
        let names: Vec<&str> = done.files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["root.json", "root_history/2.root.json"]);
        assert_eq!(done.files[0].1, done.files[1].1);
        let signed = Metadata::<Root>::from_bytes(&done.files[0].1).unwrap();
        assert_eq!(signed.signed_bytes(), r.changed[0].md.signed_bytes());
        let by_alice = signed
            .signatures
            .iter()
            .find(|s| s.keyid == alice.key().key_id());
        assert_eq!(
            by_alice.map(|s| s.sig.as_str()),
            Some(detached.sig.as_str())
        );

        // A (genuine) signature over root v1 finds no file: the history is never signed again.
        let old = DetachedSignature {
            source: "old.bundle".into(),
            version: 1,
            signed_sha256: sha256_hex(v1.signed_bytes()),
            keyid: alice.key().key_id(),
            sig: hex::encode(alice.sign(v1.signed_bytes()).unwrap()),
        };
        let e = apply_signatures(&ev, Some(&v1), &[old]).unwrap_err();
        assert!(
            e[0].to_string()
                .contains("old.bundle: $.signed_sha256: no file of the event"),
            "{e:?}"
        );

        // A signature by bob's key placed under alice's key id does not verify: refused.
        let mut forged = detached;
        forged.sig = hex::encode(
            person(2, "@bob")
                .sign(r.changed[0].md.signed_bytes())
                .unwrap(),
        );
        let e = apply_signatures(&ev, Some(&v1), &[forged]).unwrap_err();
        assert!(
            e[0].to_string()
                .contains("alice.bundle: $.sig: does not verify"),
            "{e:?}"
        );
    }

    /// A key of a type Conclave cannot use, as tuf-on-ci writes it (`sigstore-oidc` keyholder,
    /// securesystemslib's ML-DSA), owned by `owner`.
    fn unusable_key(json: &str) -> Key {
        crate::tuf::metadata::key_from_value(Value::parse(json.as_bytes()).unwrap(), "$").unwrap()
    }

    /// A root whose root role lists a sigstore-oidc keyholder and an ML-DSA keyholder beside
    /// @alice (threshold 1): the review passes every rule, shows both keys as keys Conclave
    /// cannot use and never counts them (not even a signature already in the file, which is
    /// not a failure), and applying @alice's signature keeps their signatures and every field
    /// (sigstore's `bundle`) as they are.
    #[test]
    fn keys_conclave_cannot_use_are_shown_never_counted_and_never_a_failure() {
        let now = time::macros::datetime!(2026-06-01 00:00 UTC);
        let mut alice = person(1, "@alice");
        let online = person(3, "@online").key().clone();
        let oidc = unusable_key(
            r#"{"keytype": "sigstore-oidc", "scheme": "Fulcio", "keyval": {"identity": "carol@example.com", "issuer": "https://github.com/login/oauth"}, "x-tuf-on-ci-keyowner": "@carol"}"#,
        );
        let mldsa = unusable_key(
            r#"{"keytype": "ml-dsa", "scheme": "ml-dsa-65/1", "keyval": {"public": "MIIHsjALBglghkgBZQMEAxIDggehAA=="}, "x-tuf-on-ci-keyowner": "@dave"}"#,
        );
        let alice_key = alice.key().clone();
        let root_with = |version: u64, days: i64| {
            let mut r = tuf_on_ci_root(&alice_key, &online, version, now + Duration::days(days));
            for k in [&oidc, &mldsa] {
                r.keys.push((k.key_id(), k.clone()));
                r.role_mut(RoleType::Root).unwrap().keyids.push(k.key_id());
            }
            r.keys.sort_by(|a, b| a.0.cmp(&b.0));
            r
        };
        // A sigstore signature: base64 in `sig`, the bundle beside it (securesystemslib's
        // SigstoreSigner); an ML-DSA signature Conclave cannot check.
        let mut bundle = Map::new();
        bundle.insert(
            "mediaType".into(),
            "application/vnd.dev.sigstore.bundle+json;version=0.3".into(),
        );
        let carol_sig = Signature {
            keyid: oidc.key_id(),
            sig: "MEUCIQDx/+base64==".into(),
            unrecognized: [("bundle".to_string(), Value::Object(bundle))]
                .into_iter()
                .collect(),
        };
        let dave_sig = Signature {
            keyid: mldsa.key_id(),
            sig: "00ff".into(),
            unrecognized: Map::new(),
        };
        let mut v1 = Metadata::new(root_with(1, 300));
        crate::signer::sign_metadata(&mut v1, &mut alice).unwrap();
        v1.signatures.push(carol_sig.clone());
        v1.signatures.push(dave_sig.clone());
        let kg = MetadataFolder {
            label: "main".into(),
            files: vec![
                ("root.json".into(), file(&v1)),
                ("root_history/1.root.json".into(), file(&v1)),
            ],
        };
        let mut v2 = Metadata::new(root_with(2, 200));
        v2.signatures.push(Signature {
            keyid: alice.key().key_id(),
            sig: String::new(),
            unrecognized: Map::new(),
        });
        v2.signatures.push(carol_sig.clone());
        v2.signatures.push(Signature {
            keyid: mldsa.key_id(),
            sig: String::new(),
            unrecognized: Map::new(),
        });
        let bytes = file(&v2);
        let mut ev = kg.clone();
        ev.label = "event".into();
        ev.files[0].1 = bytes.clone();
        ev.files.push(("root_history/2.root.json".into(), bytes));

        let r = review_event(&ev, &kg, now).unwrap();
        assert!(r.failures.is_empty(), "never a failure:\n{}", r.text);
        for want in [
            "@carol [sigstore-oidc/Fulcio: a key type Conclave cannot use (never counted here)]",
            "@dave [ml-dsa/ml-dsa-65/1: a key type Conclave cannot use (never counted here)]",
            "signatures for the root v2 (this event): 0 of 3 keys signed, threshold 1",
            "signatures for the known-good root v1: 0 of 3 keys signed, threshold 1",
        ] {
            assert!(r.text.contains(want), "missing {want:?} in:\n{}", r.text);
        }
        // Only @alice's token key has a slot to sign.
        let plan = r.slots_for(&alice.key().public_key().unwrap().material());
        assert_eq!(plan, [(0, vec![alice.key().key_id()])]);

        let sig = alice.sign(r.changed[0].md.signed_bytes()).unwrap();
        let detached = DetachedSignature {
            source: "alice.bundle".into(),
            version: 2,
            signed_sha256: sha256_hex(r.changed[0].md.signed_bytes()),
            keyid: alice.key().key_id(),
            sig: hex::encode(&sig),
        };
        let done = apply_signatures(&ev, Some(&v1), &[detached]).unwrap();
        let signed = Metadata::<Root>::from_bytes(&done.files[0].1).unwrap();
        assert_eq!(signed.signed_bytes(), r.changed[0].md.signed_bytes());
        assert_eq!(
            signed.signatures.iter().find(|s| s.keyid == oidc.key_id()),
            Some(&carol_sig),
            "the sigstore signature and its bundle are kept"
        );
        let counts = ChangedRole {
            md: AnyMetadata::Root(signed.clone()),
            ..r.changed[0].clone()
        }
        .status();
        for (by, c) in counts {
            assert_eq!(c.signed, [alice.key().key_id()], "{by}: only @alice counts");
            assert!(c.verified(), "{by}");
        }
        // A signature under the sigstore key id is refused: Conclave cannot check it.
        let forged = DetachedSignature {
            source: "carol.bundle".into(),
            version: 2,
            signed_sha256: sha256_hex(r.changed[0].md.signed_bytes()),
            keyid: oidc.key_id(),
            sig: hex::encode(&sig),
        };
        assert!(apply_signatures(&ev, Some(&v1), &[forged]).is_err());
    }

    /// A known-good state for invites: root v1 by @alice (and an online key), signed; and
    /// @bob's token key (no owner field yet).
    fn invite_known_good(now: OffsetDateTime) -> (SoftwareSigner, SoftwareSigner, MetadataFolder) {
        let mut alice = person(1, "@alice");
        let bob = SoftwareSigner::from_seed(Algorithm::Ed25519, &[2; 32]).unwrap();
        let online = person(3, "@online").key().clone();
        let mut v1 = Metadata::new(tuf_on_ci_root(
            alice.key(),
            &online,
            1,
            now + Duration::days(300),
        ));
        crate::signer::sign_metadata(&mut v1, &mut alice).unwrap();
        let kg = MetadataFolder {
            label: "main".into(),
            files: vec![
                ("root.json".into(), file(&v1)),
                ("root_history/1.root.json".into(), file(&v1)),
            ],
        };
        (alice, bob, kg)
    }

    #[test]
    fn accepting_an_invite_adds_the_key_and_keeps_other_invites() {
        let now = time::macros::datetime!(2026-06-01 00:00 UTC);
        let (alice, bob, kg) = invite_known_good(now);
        let mut ev = kg.clone();
        ev.files.push((
            STATE_FILE.into(),
            br#"{"invites": {"@bob": ["root"], "@carol": ["targets", "x"]}}"#.to_vec(),
        ));
        let a = accept_invites(&ev, &kg, "@bob", bob.key(), now).unwrap();
        assert_eq!(a.roles, ["root"]);
        let root_bytes = a.event.get("root.json").unwrap();
        assert_eq!(a.event.get("root_history/2.root.json"), Some(root_bytes));
        let md = Metadata::<Root>::from_bytes(root_bytes).unwrap();
        let r = md.signed();
        assert_eq!(r.common.version, 2);
        assert_eq!(r.common.expires.raw, "2027-06-01T00:00:00Z");
        let mut owned = bob.key().clone();
        owned.unrecognized.insert(OWNER_FIELD.into(), "@bob".into());
        let id = owned.key_id();
        assert_eq!(
            r.key(&id),
            Some(&owned),
            "the key with its owner, under its whole-key id"
        );
        assert_eq!(
            r.role(RoleType::Root).keyids,
            [alice.key().key_id(), id.clone()]
        );
        let slots: Vec<(&str, &str)> = md
            .signatures
            .iter()
            .map(|s| (s.keyid.as_str(), s.sig.as_str()))
            .collect();
        assert_eq!(
            slots,
            [(alice.key().key_id().as_str(), ""), (id.as_str(), "")]
        );
        // What json.dumps({"invites": ...}, indent=2) writes, @carol's invites untouched.
        assert_eq!(
            a.event.get(STATE_FILE),
            Some(&b"{\n  \"invites\": {\n    \"@carol\": [\n      \"targets\",\n      \"x\"\n    ]\n  }\n}"[..])
        );
        assert_eq!(
            a.remaining,
            [(
                "@carol".to_string(),
                vec!["targets".to_string(), "x".to_string()]
            )]
        );
        // Not invited: refused by file and field.
        let e = accept_invites(&ev, &kg, "@dave", bob.key(), now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "main/.signing-event-state: $.invites: no open invite for @dave"
        );
    }

    /// The connected side's check of an accepted edit: what [`accept_invites`] writes passes;
    /// any other change of `signed`, a key for someone who accepted nothing, a key id that
    /// does not hash the whole key, or a new invite is refused by file and field.
    #[test]
    fn an_acceptance_is_checked_to_change_nothing_else() {
        let now = time::macros::datetime!(2026-06-01 00:00 UTC);
        let (_, bob, kg) = invite_known_good(now);
        let mut ev = kg.clone();
        ev.label = "event".into();
        ev.files.push((
            STATE_FILE.into(),
            br#"{"invites": {"@bob": ["root"], "@carol": ["targets"]}}"#.to_vec(),
        ));
        let a = accept_invites(&ev, &kg, "@bob", bob.key(), now).unwrap();
        let lines = check_acceptance(&ev, &a.event).unwrap();
        assert!(
            lines.iter().any(|l| l.contains("of @bob joins role root")),
            "{lines:?}"
        );
        // Nothing accepted: refused.
        let e = check_acceptance(&ev, &ev).unwrap_err();
        assert!(
            e.to_string().contains("no invite of the event is accepted"),
            "{e}"
        );
        // Edit one field of root.json (and its history copy) in the accepted folder.
        let edited = |f: &dyn Fn(&mut Value)| -> MetadataFolder {
            let mut out = a.event.clone();
            let mut v = parse_file(out.get("root.json").unwrap())
                .unwrap()
                .unpacked();
            f(&mut v);
            let bytes = python_tuf_json(&v).into_bytes();
            for (rel, b) in out.files.iter_mut() {
                if rel == "root.json" || rel == "root_history/2.root.json" {
                    *b = bytes.clone();
                }
            }
            out
        };
        let threshold = edited(&|v| {
            let r = json_obj(v, &["signed", "roles", "root"]).unwrap();
            r.insert("threshold".into(), Value::Int(2));
        });
        let e = check_acceptance(&ev, &threshold).unwrap_err();
        assert_eq!(e.0.field, "$.signed", "{e}");
        assert!(e.to_string().contains("changes more than accepting"), "{e}");
        // A key for @carol, who accepted nothing.
        let carol = SoftwareSigner::from_seed(Algorithm::Ed25519, &[4; 32]).unwrap();
        let mut ck = carol.key().clone();
        ck.unrecognized.insert(OWNER_FIELD.into(), "@carol".into());
        let cid = ck.key_id();
        let foreign = edited(&|v| {
            json_obj(v, &["signed", "keys"])
                .unwrap()
                .insert(cid.0.clone(), ck.to_value());
        });
        let e = check_acceptance(&ev, &foreign).unwrap_err();
        assert!(e.to_string().contains("who accepted no invite here"), "{e}");
        // @bob's key under an id that does not hash the whole key.
        let mut owned = bob.key().clone();
        owned.unrecognized.insert(OWNER_FIELD.into(), "@bob".into());
        let id = owned.key_id();
        let short_id = bob.key().key_id();
        let bad_id = edited(&|v| {
            let keys = json_obj(v, &["signed", "keys"]).unwrap();
            let k = keys.remove(&id.0).unwrap();
            keys.insert(short_id.0.clone(), k);
            if let Some(Value::Array(ids)) = json_obj(v, &["signed", "roles", "root"])
                .unwrap()
                .get_mut("keyids")
            {
                for i in ids.iter_mut() {
                    if i.as_str() == Some(id.as_str()) {
                        *i = Value::String(short_id.0.clone());
                    }
                }
            }
        });
        let e = check_acceptance(&ev, &bad_id).unwrap_err();
        assert!(
            e.to_string().contains("not the SHA-256 of the whole key"),
            "{e}"
        );
        // A new invite in the accepted state file.
        let mut invited = a.event.clone();
        for (rel, b) in invited.files.iter_mut() {
            if rel == STATE_FILE {
                *b = br#"{"invites": {"@carol": ["targets", "root"]}}"#.to_vec();
            }
        }
        let e = check_acceptance(&ev, &invited).unwrap_err();
        assert!(e.to_string().contains("was not open in the event"), "{e}");
    }

    #[test]
    fn huge_expiry_periods_do_not_overflow() {
        let now = time::macros::datetime!(2026-01-01 00:00 UTC);
        assert!(period_end(now, 100_000).is_some());
        assert_eq!(period_end(now, 100_001), None);
        assert_eq!(period_end(now, u64::MAX), None);
    }

    #[test]
    fn invites_are_read_by_user() {
        let ev = MetadataFolder {
            label: "ev".into(),
            files: vec![(
                STATE_FILE.into(),
                br#"{"invites": {"@a": ["root", "targets"], "@b": []}}"#.to_vec(),
            )],
        };
        let mut failures = Vec::new();
        let inv = read_invites(&ev, &mut failures);
        assert!(failures.is_empty());
        assert_eq!(
            inv,
            [(
                "@a".to_string(),
                vec!["root".to_string(), "targets".to_string()]
            )]
        );
        let bad = MetadataFolder {
            label: "ev".into(),
            files: vec![(
                STATE_FILE.into(),
                br#"{"invites": {"@a": "root"}}"#.to_vec(),
            )],
        };
        read_invites(&bad, &mut failures);
        assert_eq!(
            failures[0].to_string(),
            "ev/.signing-event-state: $.invites[\"@a\"]: expected an array of role names"
        );
    }
}
