//! sign-tuf-on-ci-event: the keyholders present sign a tuf-on-ci signing event as a ceremony.
//!
//! The input media hold the event's `metadata/` folder and the known-good `metadata/` (the
//! main branch). Both are recorded whole in the transcript (`event-imported`); the pure review
//! ([`crate::tuf::tuf_on_ci::review_event`]) runs when they are imported, against the confirmed
//! clock, so a break of tuf-on-ci's CI rules stops the ceremony before any PIN. The proposal is
//! the changed roles as they are (nothing in `signed` changes); their digests are reviewed,
//! each keyholder's token signs every changed role one of its key ids may sign, each signature
//! is verified and must count for a delegator, and the export holds one signature bundle per
//! role and key id — the form `conclave tuf-on-ci apply` writes into the event's placeholders —
//! after the same placement has been tried here on the imported event.

use std::collections::BTreeMap;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::review::key_table_of;
use super::{Engine, EngineError, Need, Proposal, RoleKeyTable, key_owner};
use crate::ceremony::script::{Kind, Step};
use crate::text::show;
use crate::tuf::bundle::Bundle;
use crate::tuf::key::{Key, KeyId};
use crate::tuf::metadata::{AnyMetadata, Metadata, Root, Targets};
use crate::tuf::tuf_on_ci::{
    self as tot, ChangedRole, DetachedSignature, MetadataFolder, Review, describe_key,
};
use crate::tuf::verify::{ThresholdResult, Uncounted};

/// The event's `metadata/` folder under the input folder (script setting `event`).
pub const EVENT_DIR: &str = "tuf-on-ci-event";
/// The known-good `metadata/` folder under the input folder (script setting `known_good`).
pub const KNOWN_GOOD_DIR: &str = "tuf-on-ci-known-good";
/// The export's folder of signature bundles: `SIGNATURES_DIR-HEX12`, named after the digests
/// of the roles signed, so the bundles of different events never mix.
pub const SIGNATURES_DIR: &str = "tuf-on-ci-signatures";
/// The export's folder holding the whole edited `metadata/` when the ceremony accepted
/// invites (`ACCEPTED_DIR-HEX12`, the same HEX12 as the bundles): `conclave tuf-on-ci apply
/// --accepted` checks it against the event and writes it with the bundles' signatures.
pub const ACCEPTED_DIR: &str = "tuf-on-ci-accepted";

/// The imported event, reviewed: the review, the two folders as recorded, the known-good root,
/// the open invites, and once proposed the edit that accepts them.
#[derive(Clone, Debug)]
pub(super) struct ImportedEvent {
    review: Review,
    event: MetadataFolder,
    known_good: MetadataFolder,
    known_good_root: Metadata<Root>,
    /// The event's open invites (`.signing-event-state`), by user; in a ceremony that accepts
    /// invites all of them are accepted (their invitees are keyholders present).
    invites: Vec<(String, Vec<String>)>,
    /// Invitees whose key was an existing one on their token (the script step says so).
    existing: Vec<String>,
    /// The event with the invites accepted, from the proposal on.
    accepted: Option<Box<AcceptedEdit>>,
}

/// The event after the invitees' keys joined the roles they were invited to.
#[derive(Clone, Debug)]
struct AcceptedEdit {
    event: MetadataFolder,
    review: Review,
    /// What the edit changed, for the review.
    lines: Vec<String>,
}

impl ImportedEvent {
    /// The event as it is signed: the edit once invites are accepted, else as imported.
    fn signed_event(&self) -> &MetadataFolder {
        self.accepted.as_ref().map_or(&self.event, |a| &a.event)
    }

    /// The review of [`ImportedEvent::signed_event`].
    fn signed_review(&self) -> &Review {
        self.accepted.as_ref().map_or(&self.review, |a| &a.review)
    }
}

/// What the import step waits for: the two folders the script names.
pub(super) fn need(step: &Step) -> Need {
    let dir = |k: &str, d: &str| step.with.get(k).cloned().unwrap_or_else(|| d.to_string());
    Need::ImportEvent {
        event: dir("event", EVENT_DIR),
        known_good: dir("known_good", KNOWN_GOOD_DIR),
    }
}

/// Role name to hex SHA-256 of the canonical signed bytes of each changed role.
pub(super) fn digests(roles: &[ChangedRole], d: &mut BTreeMap<String, String>) {
    for r in roles {
        d.insert(
            r.name.clone(),
            hex::encode(Sha256::digest(r.md.signed_bytes())),
        );
    }
}

/// HEX12 of the export's folders: the first 12 hex digits of the SHA-256 of the signed roles'
/// digests, so the exports of different events never mix.
fn export_tag(p: &Proposal) -> String {
    let mut d = BTreeMap::new();
    digests(&p.tuf_on_ci, &mut d);
    hex::encode(Sha256::digest(
        d.iter()
            .map(|(r, h)| format!("{r} {h}\n"))
            .collect::<String>()
            .as_bytes(),
    ))
    .chars()
    .take(12)
    .collect()
}

/// Per changed role and delegator, the count over the signatures so far.
pub(super) fn meters(p: &Proposal) -> BTreeMap<String, ThresholdResult> {
    let mut m = BTreeMap::new();
    for r in &p.tuf_on_ci {
        for (by, count) in r.status() {
            m.insert(
                format!("{} v{} by the {by}", r.name, r.md.common().version),
                count,
            );
        }
    }
    m
}

/// The changed roles a key id may sign.
pub(super) fn roles_for_key(p: &Proposal, keyid: &KeyId) -> Vec<String> {
    p.tuf_on_ci
        .iter()
        .filter(|r| r.slots.iter().any(|s| s.keyid == *keyid))
        .map(|r| r.name.clone())
        .collect()
}

/// Whether `md` carries a (non-empty) signature by `keyid`.
fn has_signature(md: &AnyMetadata, keyid: &KeyId) -> bool {
    md.signatures()
        .iter()
        .any(|s| s.keyid == *keyid && !s.sig.is_empty())
}

/// `md` with `sig` in the slot of `keyid` (appended when there is none).
fn with_signature(md: &AnyMetadata, keyid: &KeyId, sig: &[u8]) -> AnyMetadata {
    fn add<T: crate::tuf::metadata::SignedPayload>(
        m: &Metadata<T>,
        keyid: &KeyId,
        sig: &[u8],
    ) -> Metadata<T>
    where
        Metadata<T>: Clone,
    {
        let mut m = m.clone();
        m.add_signature(keyid.clone(), sig);
        m
    }
    match md {
        AnyMetadata::Root(m) => AnyMetadata::Root(add(m, keyid, sig)),
        AnyMetadata::Targets(m) => AnyMetadata::Targets(add(m, keyid, sig)),
        AnyMetadata::Snapshot(m) => AnyMetadata::Snapshot(add(m, keyid, sig)),
        AnyMetadata::Timestamp(m) => AnyMetadata::Timestamp(add(m, keyid, sig)),
    }
}

/// A folder recorded in the transcript (path to base64) as the review reads it.
fn folder(label: &str, files: &BTreeMap<String, String>) -> Result<MetadataFolder, String> {
    let mut out = Vec::new();
    for (rel, b64) in files {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("{}/{}: not base64: {e}", show(label), show(rel)))?;
        out.push((rel.clone(), bytes));
    }
    Ok(MetadataFolder {
        label: label.to_string(),
        files: out,
    })
}

impl Engine {
    /// Signing a tuf-on-ci event: the folders under the input media the script's import step
    /// names, (event, known good) — its `event` and `known_good` settings, else the defaults.
    pub fn tuf_on_ci_input_folders(&self) -> Option<(String, String)> {
        if !self.is_tuf_on_ci() {
            return None;
        }
        let step = self
            .script
            .steps
            .iter()
            .find(|s| s.action == crate::ceremony::script::Action::ImportEvent)?;
        match need(step) {
            Need::ImportEvent { event, known_good } => Some((event, known_good)),
            _ => None,
        }
    }

    /// Whether this ceremony signs a tuf-on-ci signing event.
    pub(super) fn is_tuf_on_ci(&self) -> bool {
        self.script.kind == Kind::SignTufOnCiEvent
    }

    /// The import step: the known-good chain verified, the event reviewed against it at the
    /// confirmed clock; any broken CI rule, an event that changes nothing, or one no keyholder
    /// present may sign, is refused here, before any PIN.
    pub(super) fn import_tuf_on_ci(
        &mut self,
        event: &BTreeMap<String, String>,
        known_good: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let (ev_dir, kg_dir) = match self.need() {
            Need::ImportEvent { event, known_good } => (event, known_good),
            _ => (EVENT_DIR.to_string(), KNOWN_GOOD_DIR.to_string()),
        };
        let ev = folder(&ev_dir, event).map_err(|e| self.policy(e))?;
        let kg = folder(&kg_dir, known_good).map_err(|e| self.policy(e))?;
        let now = self.now()?;
        let (kg_root, _) = tot::verify_known_good(&kg).map_err(|e| self.policy(e.to_string()))?;
        let review = tot::review_event(&ev, &kg, now).map_err(|e| self.policy(e.to_string()))?;
        let invites = tot::open_invites(&ev).map_err(|e| self.policy(e.to_string()))?;
        if self.accepts_invites() {
            self.check_invites(&review, &invites)?;
        } else {
            self.check_signable(&review)?;
        }
        // The known-good root is the root in force: the seal is anchored in it.
        self.current = Some((kg_root.clone(), None));
        self.tuf_on_ci = Some(Box::new(ImportedEvent {
            review,
            event: ev,
            known_good: kg,
            known_good_root: kg_root,
            invites,
            existing: Vec::new(),
            accepted: None,
        }));
        Ok(())
    }

    /// Every CI rule holds for `what` (reviewed in `review`) and it changes a role: else
    /// refused, listing the broken rules, saying `pin` (no PIN was asked).
    fn rules_hold(&self, review: &Review, what: &str, pin: &str) -> Result<(), EngineError> {
        if !review.failures.is_empty() {
            return Err(self.policy(format!(
                "{what} breaks {} of tuf-on-ci's CI rules; nothing is signed ({pin}):\n{}",
                review.failures.len(),
                review
                    .failures
                    .iter()
                    .map(|f| format!("  {f}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )));
        }
        if review.changed.is_empty() {
            return Err(self.policy(format!("{what} changes no role: nothing to sign")));
        }
        Ok(())
    }

    /// The import's checks of an event signed as it is: every CI rule holds, it changes a
    /// role, and a keyholder present owns a key that may sign one.
    fn check_signable(&self, review: &Review) -> Result<(), EngineError> {
        self.rules_hold(review, "the event", "no PIN was asked")?;
        let owners: Vec<String> = review
            .changed
            .iter()
            .flat_map(|r| r.slots.iter())
            .filter_map(|s| key_owner(&s.key).map(str::to_string))
            .collect();
        if !self.keyholders.iter().any(|k| owners.contains(k)) {
            return Err(self.policy(format!(
                "no keyholder of the roll call owns a key that may sign the changed roles ({}); the keys' owners: {} (keyholders are named by their @handle, as x-tuf-on-ci-keyowner writes it)",
                review
                    .changed
                    .iter()
                    .map(|r| show(&r.name))
                    .collect::<Vec<_>>()
                    .join(", "),
                {
                    let mut o: Vec<String> = owners.iter().map(|o| show(o)).collect();
                    o.dedup();
                    o.join(", ")
                }
            )));
        }
        Ok(())
    }

    /// Whether the script accepts invites: it has a generate-key step (accept-tuf-on-ci-invite),
    /// where each invitee's key is made (or the existing one taken) before the proposal.
    fn accepts_invites(&self) -> bool {
        self.script
            .steps
            .iter()
            .any(|s| s.action == crate::ceremony::script::Action::GenerateKey)
    }

    /// The import's checks of an event whose invites this ceremony accepts: it has open
    /// invites, every invitee is a keyholder present, and every rule but "no open invites"
    /// holds already, before any PIN. The rules are checked again on the edit when it is
    /// proposed, before any signature.
    fn check_invites(
        &self,
        review: &Review,
        invites: &[(String, Vec<String>)],
    ) -> Result<(), EngineError> {
        let list = |v: &[String]| v.iter().map(|r| show(r)).collect::<Vec<_>>().join(", ");
        if invites.is_empty() {
            return Err(self.policy(
                "the event has no open invite: sign it with the sign-tuf-on-ci-event ceremony",
            ));
        }
        if let Some((who, roles)) = invites
            .iter()
            .find(|(u, _)| !self.keyholders.iter().any(|k| k == u))
        {
            return Err(self.policy(format!(
                "{} is invited to sign {} but is not a keyholder of the roll call: tuf-on-ci accepts no event with open invites, so every invitee accepts here, named by their @handle as the invite names them (one invitee alone: conclave tuf-on-ci accept); nothing is accepted or signed (no PIN was asked)",
                show(who),
                list(roles)
            )));
        }
        let others: Vec<String> = review
            .failures
            .iter()
            .filter(|f| !(f.file.ends_with(tot::STATE_FILE) && f.field.starts_with("$.invites")))
            .map(|f| format!("  {f}"))
            .collect();
        if !others.is_empty() {
            return Err(self.policy(format!(
                "the event breaks {} of tuf-on-ci's CI rules besides its open invites; nothing is accepted or signed (no PIN was asked):\n{}",
                others.len(),
                others.join("\n")
            )));
        }
        Ok(())
    }

    /// The invitees whose keys this ceremony makes, in roll-call order (none unless the script
    /// accepts invites and the event is imported).
    pub(super) fn tuf_on_ci_invitees(&self) -> Vec<String> {
        let Some(imported) = &self.tuf_on_ci else {
            return Vec::new();
        };
        if !self.accepts_invites() {
            return Vec::new();
        }
        self.keyholders
            .iter()
            .filter(|k| imported.invites.iter().any(|(u, _)| u == *k))
            .cloned()
            .collect()
    }

    /// An invitee's key was an existing one on their token (recorded so; the review says so).
    pub(super) fn tuf_on_ci_existing_key(&mut self, keyholder: &str) {
        if let Some(i) = self.tuf_on_ci.as_mut()
            && !i.existing.iter().any(|k| k == keyholder)
        {
            i.existing.push(keyholder.to_string());
        }
    }

    /// The edit that accepts every invite with the invitees' keys as recorded, as
    /// `tuf-on-ci-sign` accepts one ([`tot::accept_invites`], at the confirmed clock), reviewed
    /// with every CI rule: any break refuses it (before any signature).
    fn tuf_on_ci_edit(&self, imported: &ImportedEvent) -> Result<AcceptedEdit, EngineError> {
        let now = self.now()?;
        let mut ev = imported.event.clone();
        let mut also: Vec<String> = Vec::new();
        let mut lines = vec!["invites accepted here (the only edit of the event):".to_string()];
        for who in self.tuf_on_ci_invitees() {
            let Some((_, token, key)) = self.generated.iter().find(|(k, _, _)| *k == who) else {
                return Err(self.policy(format!("no key of {} was recorded", show(&who))));
            };
            let roles = imported
                .invites
                .iter()
                .find(|(u, _)| *u == who)
                .map(|(_, r)| r.clone())
                .unwrap_or_default();
            let a = tot::accept_invites(&ev, &imported.known_good, &who, key, now)
                .map_err(|e| self.policy(e.to_string()))?;
            let owned = super::owned_key(key, &who);
            lines.push(format!(
                "  {} accepts the invite to sign {} with {} key on token {}: {}, key id {} (the SHA-256 of the whole key, x-tuf-on-ci-keyowner included)",
                show(&who),
                roles.iter().map(|r| show(r)).collect::<Vec<_>>().join(", "),
                if imported.existing.contains(&who) {
                    "the existing"
                } else {
                    "a new"
                },
                show(token),
                describe_key(&owned.key_id(), &owned),
                owned.key_id()
            ));
            lines.extend(a.lines.iter().map(|l| format!("    {l}")));
            for f in a.role_files {
                if !also.contains(&f) {
                    also.push(f);
                }
            }
            ev = a.event;
        }
        for (rel, bytes) in &ev.files {
            if imported.event.get(rel) != Some(bytes.as_slice()) && rel.ends_with(".json") {
                lines.push(format!(
                    "    {}: version known-good + 1, expires at the confirmed clock + its expiry period, empty placeholders for every key that may sign it",
                    show(rel)
                ));
            }
        }
        lines.push(match ev.get(tot::STATE_FILE) {
            None => format!("    {}: removed (no invite left open)", tot::STATE_FILE),
            Some(_) => format!("    {}: the accepted invites removed", tot::STATE_FILE),
        });
        let review = tot::review_event_with(&ev, &imported.known_good, now, &also)
            .map_err(|e| self.policy(e.to_string()))?;
        self.rules_hold(
            &review,
            "the event with the invites accepted",
            "no signing PIN was asked",
        )?;
        Ok(AcceptedEdit {
            event: ev,
            review,
            lines,
        })
    }

    /// The proposal was recorded: an edit that accepts invites is the event from now on.
    pub(super) fn tuf_on_ci_take_edit(&mut self) -> Result<(), EngineError> {
        let edit = match &self.tuf_on_ci {
            Some(i) if i.accepted.is_none() && !self.tuf_on_ci_invitees().is_empty() => {
                self.tuf_on_ci_edit(i)?
            }
            _ => return Ok(()),
        };
        if let Some(i) = self.tuf_on_ci.as_mut() {
            i.accepted = Some(Box::new(edit));
        }
        Ok(())
    }

    /// The proposal: the changed roles exactly as the event holds them.
    pub(super) fn build_tuf_on_ci(&self) -> Result<Proposal, EngineError> {
        let imported = self
            .tuf_on_ci
            .as_ref()
            .ok_or_else(|| self.policy("no signing event was imported"))?;
        let changed = if imported.accepted.is_none() && !self.tuf_on_ci_invitees().is_empty() {
            self.tuf_on_ci_edit(imported)?.review.changed
        } else {
            imported.signed_review().changed.clone()
        };
        Ok(Proposal {
            layout: None,
            tuf_on_ci: changed,
            root: None,
            targets: None,
        })
    }

    /// The key ids the changed roles' delegators list for this key material.
    pub(super) fn tuf_on_ci_key_ids(&self, material: &[u8]) -> Vec<KeyId> {
        let mut ids: Vec<KeyId> = Vec::new();
        let Some(imported) = &self.tuf_on_ci else {
            return ids;
        };
        for s in imported
            .signed_review()
            .changed
            .iter()
            .flat_map(|r| r.slots.iter())
        {
            if s.key.public_key().is_ok_and(|p| p.material() == material) && !ids.contains(&s.keyid)
            {
                ids.push(s.keyid.clone());
            }
        }
        ids
    }

    /// The key ids owned by `who` (`x-tuf-on-ci-keyowner`) that may sign a changed role.
    pub(super) fn tuf_on_ci_keyholder_keys(&self, who: &str) -> Vec<KeyId> {
        let mut ids: Vec<KeyId> = Vec::new();
        let Some(imported) = &self.tuf_on_ci else {
            return ids;
        };
        for s in imported
            .signed_review()
            .changed
            .iter()
            .flat_map(|r| r.slots.iter())
        {
            if key_owner(&s.key) == Some(who) && !ids.contains(&s.keyid) {
                ids.push(s.keyid.clone());
            }
        }
        ids
    }

    /// (key id, role) pairs `who` may still sign.
    pub(super) fn tuf_on_ci_roles_left(&self, p: &Proposal, who: &str) -> Vec<(KeyId, String)> {
        let mut left = Vec::new();
        for id in self.tuf_on_ci_keyholder_keys(who) {
            for r in &p.tuf_on_ci {
                if r.slots.iter().any(|s| s.keyid == id) && !has_signature(&r.md, &id) {
                    left.push((id.clone(), r.name.clone()));
                }
            }
        }
        left
    }

    /// The canonical signed bytes of a changed role (what a token signs).
    pub fn tuf_on_ci_signed_bytes(&self, role: &str) -> Option<Vec<u8>> {
        self.proposal
            .as_ref()?
            .tuf_on_ci
            .iter()
            .find(|r| r.name == role)
            .map(|r| r.md.signed_bytes().to_vec())
    }

    /// A keyholder's signature over one changed role: after the approval, by a key of theirs
    /// that the role's delegators list, verified over the role's signed bytes, and counted by
    /// every delegator that lists that key id.
    pub(super) fn tuf_on_ci_signed(
        &mut self,
        keyholder: &str,
        role: &str,
        keyid: &str,
        sig: &str,
    ) -> Result<(), EngineError> {
        if !self.approved {
            return Err(self.policy("nothing is signed before the room approves the proposal"));
        }
        if self.signing_skipped.iter().any(|(k, _)| k == keyholder) {
            return Err(self.policy(format!(
                "{keyholder} was skipped at this signing step (recorded): they do not sign"
            )));
        }
        if !self.keyholders.iter().any(|k| k == keyholder) {
            return Err(self.policy(format!(
                "\"{}\" is not a keyholder of the roll call",
                show(keyholder)
            )));
        }
        let id = KeyId(keyid.to_string());
        let Some(p) = &self.proposal else {
            return Err(self.policy("no proposal"));
        };
        let Some(idx) = p.tuf_on_ci.iter().position(|r| r.name == role) else {
            return Err(self.policy(format!("role {} is not changed by this event", show(role))));
        };
        let changed = &p.tuf_on_ci[idx];
        let Some(key) = changed
            .slots
            .iter()
            .find(|s| s.keyid == id)
            .map(|s| s.key.clone())
        else {
            return Err(self.policy(format!("key {} may not sign {}", show(keyid), show(role))));
        };
        if key_owner(&key) != Some(keyholder) {
            return Err(self.policy(format!(
                "key {} belongs to {}, not to {}",
                show(keyid),
                key_owner(&key).map_or_else(|| "nobody named".to_string(), show),
                show(keyholder)
            )));
        }
        if has_signature(&changed.md, &id) {
            return Err(self.policy(format!(
                "{} holds a signature by key {} already",
                show(role),
                show(keyid)
            )));
        }
        let raw = hex::decode(sig).map_err(|_| self.policy("signature is not hex"))?;
        key.verify_hex(changed.md.signed_bytes(), sig)
            .map_err(|e| self.policy(format!("{keyholder}'s {role} signature: {e}")))?;
        let md = with_signature(&changed.md, &id, &raw);
        let mut after = changed.clone();
        after.md = md;
        for (by, count) in after.status() {
            if let Some((_, why)) = count
                .unsigned
                .iter()
                .find(|(k, why)| *k == id && !matches!(why, Uncounted::SameKeyAs(_)))
            {
                return Err(self.policy(format!(
                    "{keyholder}'s signature of {role} does not count for key {} in the {by}: {why}",
                    show(keyid)
                )));
            }
        }
        if let Some(p) = self.proposal.as_mut()
            && let Some(slot) = p.tuf_on_ci.get_mut(idx)
        {
            *slot = after;
        }
        if !self.signers.iter().any(|(k, _)| k == keyid) {
            self.signers
                .push((keyid.to_string(), keyholder.to_string()));
        }
        if self.roles_left(keyholder).is_empty() && !self.signed_by.iter().any(|k| k == keyholder) {
            self.signed_by.push(keyholder.to_string());
        }
        Ok(())
    }

    /// Closing the signing step: the keyholders present signed what they could; a threshold
    /// not met yet is tuf-on-ci's to collect (other keyholders sign the event later), but a
    /// ceremony without a single signature has nothing to export.
    pub(super) fn tuf_on_ci_close(&self) -> Result<(), EngineError> {
        if self.signers.is_empty() {
            return Err(self
                .policy("no keyholder has signed: nothing to export (skip the ceremony instead)"));
        }
        Ok(())
    }

    /// The signatures made here as detached signatures (bundles), in role order: (file name,
    /// bundle).
    fn tuf_on_ci_bundles(&self) -> Vec<(String, Bundle)> {
        let mut out = Vec::new();
        let Some(p) = &self.proposal else {
            return out;
        };
        let time = self
            .clock
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .replace_nanosecond(0)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let tag = export_tag(p);
        for r in &p.tuf_on_ci {
            for s in r.md.signatures() {
                if s.sig.is_empty() || !self.signers.iter().any(|(k, _)| *k == s.keyid.0) {
                    continue;
                }
                let (Ok(raw), Some(name)) = (
                    hex::decode(&s.sig),
                    tot::bundle_file_name(&r.name, r.md.common().version, &s.keyid),
                ) else {
                    continue;
                };
                out.push((
                    format!("{SIGNATURES_DIR}-{tag}/{name}"),
                    Bundle::new(&r.md, s.keyid.clone(), &raw, None, time),
                ));
            }
        }
        out
    }

    /// The export: one signature bundle per role and key id signed here; when invites were
    /// accepted, also the whole edited `metadata/` (unsigned placeholders) in
    /// `ACCEPTED_DIR-HEX12/`.
    pub(super) fn tuf_on_ci_export(&self) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = self
            .tuf_on_ci_bundles()
            .into_iter()
            .map(|(n, b)| (n, b.to_bytes()))
            .collect();
        if let (Some(a), Some(p)) = (
            self.tuf_on_ci.as_ref().and_then(|i| i.accepted.as_ref()),
            &self.proposal,
        ) {
            let tag = export_tag(p);
            out.extend(
                a.event
                    .files
                    .iter()
                    .map(|(rel, b)| (format!("{ACCEPTED_DIR}-{tag}/{rel}"), b.clone())),
            );
        }
        out
    }

    /// The verify step: every signature made here verifies again, and the bundles go into the
    /// imported event's placeholders as `conclave tuf-on-ci apply` will put them (every file
    /// carrying the role, `signed` unchanged).
    pub(super) fn tuf_on_ci_verify(&self) -> Result<(), EngineError> {
        let imported = self
            .tuf_on_ci
            .as_ref()
            .ok_or_else(|| self.policy("no signing event was imported"))?;
        let bundles = self.tuf_on_ci_bundles();
        if bundles.is_empty() {
            return Err(self.policy("no signature was made: nothing to export"));
        }
        let sigs: Vec<DetachedSignature> = bundles
            .iter()
            .map(|(name, b)| DetachedSignature {
                source: name.clone(),
                version: b.version,
                signed_sha256: b.signed_sha256.clone(),
                keyid: b.keyid.clone(),
                sig: b.sig.clone(),
            })
            .collect();
        tot::apply_signatures(
            imported.signed_event(),
            Some(&imported.known_good_root),
            &sigs,
        )
        .map_err(|errs| {
            self.policy(format!(
                "the signatures do not go into the event: {}",
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })?;
        Ok(())
    }

    /// The review: tuf-on-ci's review of the event (known-good chain, every changed role with
    /// its keys by owner, thresholds, expiry against the period, target changes), the digests
    /// to sign, and which keyholder present may sign what.
    pub(super) fn tuf_on_ci_review_lines(&self, p: &Proposal) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(imported) = &self.tuf_on_ci {
            if let Some(a) = &imported.accepted {
                out.extend(a.lines.iter().cloned());
            } else if !self.tuf_on_ci_invitees().is_empty()
                && let Ok(a) = self.tuf_on_ci_edit(imported)
            {
                out.extend(a.lines);
            }
            out.extend(imported.signed_review().text.lines().map(str::to_string));
        }
        out.push("digests to sign (SHA-256 of the canonical signed bytes):".into());
        for r in &p.tuf_on_ci {
            out.push(format!(
                "  {} v{} ({}): {}",
                show(&r.name),
                r.md.common().version,
                show(&r.file),
                hex::encode(Sha256::digest(r.md.signed_bytes()))
            ));
        }
        out.push("keyholders present who sign:".into());
        for who in &self.keyholders {
            let ids = self.tuf_on_ci_keyholder_keys(who);
            if ids.is_empty() {
                out.push(format!(
                    "  {}: no key of theirs may sign this event",
                    show(who)
                ));
                continue;
            }
            for id in ids {
                let key: Option<&Key> = p
                    .tuf_on_ci
                    .iter()
                    .flat_map(|r| r.slots.iter())
                    .find(|s| s.keyid == id)
                    .map(|s| &s.key);
                let roles = roles_for_key(p, &id);
                out.push(format!(
                    "  {}: {} signs {}",
                    show(who),
                    key.map_or_else(|| show(id.short()), |k| describe_key(&id, k)),
                    roles.iter().map(|r| show(r)).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        out
    }

    /// The auditor's key table for a signed event: the roles the event changes with their
    /// keys and thresholds in the known-good state (before) and in the event (after), each
    /// labelled with its versions; a changed root brings every top-level role (it names their
    /// keys), a changed `targets.json` its delegations.
    pub(super) fn tuf_on_ci_key_table(&self) -> Vec<RoleKeyTable> {
        let Some(imported) = &self.tuf_on_ci else {
            return Vec::new();
        };
        let targets = |f: &MetadataFolder| {
            f.get("targets.json")
                .and_then(|b| Metadata::<Targets>::from_bytes(b).ok())
        };
        let ev_root = imported
            .signed_event()
            .get("root.json")
            .and_then(|b| Metadata::<Root>::from_bytes(b).ok());
        let (kg_targets, ev_targets) = (
            targets(&imported.known_good),
            targets(imported.signed_event()),
        );
        let table = key_table_of(
            Some(imported.known_good_root.signed()),
            ev_root
                .as_ref()
                .map(Metadata::signed)
                .or(Some(imported.known_good_root.signed())),
            kg_targets.as_ref().map(Metadata::signed),
            ev_targets
                .as_ref()
                .or(kg_targets.as_ref())
                .map(Metadata::signed),
        );
        let changed = |name: &str| {
            imported
                .signed_review()
                .changed
                .iter()
                .find(|r| r.name == name)
        };
        let label = |r: &ChangedRole, row: &str| {
            let was = r
                .known_good_version
                .map_or_else(|| "new".to_string(), |v| format!("v{v}"));
            format!(
                "{row}, changed by the event: v{} (known-good {was})",
                r.md.common().version
            )
        };
        table
            .into_iter()
            .filter_map(|mut row| {
                let delegated = row.role.strip_suffix(" (delegated by targets)");
                let own = changed(delegated.unwrap_or(&row.role));
                let keep = own.is_some()
                    || changed("root").is_some() && delegated.is_none()
                    || changed("targets").is_some() && delegated.is_some();
                if let Some(r) = own {
                    row.role = label(r, &row.role);
                }
                keep.then_some(row)
            })
            .collect()
    }
}
