//! sign-rstuf-pending-root: the keyholders present sign RSTUF's pending root as a ceremony
//! (RSTUF's Distributed Asynchronous Signing, offline).
//!
//! The input media hold RSTUF's pending file (the response of `GET /api/v1/metadata/sign/`:
//! `{"data": {"metadata": {"root": PENDING, "trusted_root": CURRENT}}}`). Its text is recorded
//! whole in the transcript (`pending-imported`) with the root the room already trusts (the
//! anchor, from the input media, confirmed by the digest of its signed bytes in parameter
//! `trusted_root_sha256`), and reviewed when it is imported, against the confirmed clock: the
//! pending file's trusted root is the anchor or its next version signed by it (a root from the
//! connected side that only meets its own threshold proves nothing), it meets its own threshold and is in RSTUF's model, the
//! pending root is its next version in RSTUF's model, not expired, able to meet its thresholds
//! and still missing a valid signature some keyholder present can give (a signature that does
//! not verify does not count: its key signs again). Anything else is refused
//! there, before any PIN. The trusted root is the root in force (the seal is anchored in it);
//! the proposal is the pending root exactly as RSTUF sent it (its signatures kept). Each
//! keyholder's token signs with every key of theirs whose signature the trusted or the pending
//! root still misses, each signature is verified and must count, and the export holds one
//! `sign-payload.json` per signature in RSTUF's format (`rstuf admin send sign FILE`).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::{Engine, EngineError, Need, Proposal, key_owner};
use crate::ceremony::script::ParamValue;
use crate::ceremony::script::{Kind, Step};
use crate::text::show;
use crate::tuf::key::KeyId;
use crate::tuf::metadata::{Metadata, RoleType, Root};
use crate::tuf::rstuf::{self, Pending, PendingReview, RstufError};
use crate::tuf::verify::{ThresholdResult, count_signatures, trust_root};

/// The pending file on the input media (script setting `file`).
pub const PENDING_FILE: &str = "rstuf-pending.json";
/// The root the room already trusts, on the input media (script setting `trusted_root`): the
/// anchor the pending file's `trusted_root` must be (or chain from by one verified version).
pub const TRUSTED_ROOT_FILE: &str = "rstuf-trusted-root.json";
/// The parameter by which the room confirms that root: the SHA-256 of its canonical signed
/// bytes (the digest its ceremony signed, from that ceremony's record).
pub const TRUSTED_ROOT_SHA256: &str = "trusted_root_sha256";

/// The exported file of one signature: `sign-payload-vN-KEYID16.json` (RSTUF's CLI calls it
/// `sign-payload.json`; one per signature here, so they never overwrite each other).
pub fn sign_payload_file_name(version: u64, keyid: &KeyId) -> String {
    let id: String = keyid
        .as_str()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(16)
        .collect();
    format!("sign-payload-v{version}-{id}.json")
}

/// The imported pending file, reviewed.
#[derive(Clone, Debug)]
pub(super) struct Imported {
    /// The file's name on the input media.
    name: String,
    /// SHA-256 of the file as read.
    sha256: String,
    pending: Pending,
    review: PendingReview,
    /// How the trusted root is anchored in the root the room confirmed (a review line).
    anchored: String,
}

/// A root the room trusts: its name (input media or workspace), its signed bytes' SHA-256.
struct Anchor {
    name: String,
    digest: String,
    root: Metadata<Root>,
}

impl Anchor {
    fn describe_version(&self) -> String {
        format!("root v{}", self.root.signed().common.version)
    }
}

/// What the import step waits for: the files the script names.
pub(super) fn need(step: &Step) -> Need {
    let setting = |name: &str, default: &str| {
        step.with
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    Need::ImportPending {
        file: setting("file", PENDING_FILE),
        trusted_root: setting("trusted_root", TRUSTED_ROOT_FILE),
    }
}

/// A check of the trusted root named under `$.data.metadata.trusted_root`.
fn under_trusted(e: RstufError) -> RstufError {
    RstufError {
        field: e.field.replacen('$', "$.data.metadata.trusted_root", 1),
        ..e
    }
}

impl Engine {
    /// Whether this ceremony signs RSTUF's pending root.
    pub fn is_rstuf_pending(&self) -> bool {
        self.script.kind == Kind::SignRstufPendingRoot
    }

    /// The files the script's import step reads from the input media: RSTUF's pending file
    /// and the root the room trusts (`None` for every other ceremony).
    pub fn rstuf_pending_input(&self) -> Option<(String, String)> {
        if !self.is_rstuf_pending() {
            return None;
        }
        let step = self
            .script
            .steps
            .iter()
            .find(|s| s.action == crate::ceremony::script::Action::ImportPending)?;
        match need(step) {
            Need::ImportPending { file, trusted_root } => Some((file, trusted_root)),
            _ => None,
        }
    }

    fn refuse_pending(&self, why: impl std::fmt::Display) -> EngineError {
        self.policy(format!("{why}; nothing is signed (no PIN was asked)"))
    }

    /// The digest the room confirmed (parameter `trusted_root_sha256`), lower case; empty when
    /// not given.
    fn confirmed_digest(&self) -> String {
        match self.params.get(TRUSTED_ROOT_SHA256) {
            Some(ParamValue::Text(t)) => t.trim().to_ascii_lowercase(),
            _ => String::new(),
        }
    }

    /// The root the room trusts: from the input media (`input`: name, text; confirmed by the
    /// digest of its signed bytes the parameter gives) and/or the workspace's own export
    /// (`workspace`: the root the ceremony that wrote it left there). When both exist they
    /// must be the same root (else refused, naming both hashes); a digest given without the
    /// file must be the workspace root's. `None` when neither exists.
    fn rstuf_anchor(
        &self,
        input: (&str, &str),
        workspace: (&str, &str),
    ) -> Result<Option<Anchor>, EngineError> {
        let parse = |(name, text): (&str, &str)| -> Result<Option<Anchor>, EngineError> {
            if text.is_empty() {
                return Ok(None);
            }
            let root = Metadata::<Root>::from_bytes(text.as_bytes()).map_err(|e| {
                self.refuse_pending(format!("{}: {}", show(name), show(&e.to_string())))
            })?;
            Ok(Some(Anchor {
                name: name.to_string(),
                digest: hex::encode(root.signed_digest()),
                root,
            }))
        };
        let from_input = parse(input)?;
        let from_workspace = parse(workspace)?;
        let confirmed = self.confirmed_digest();
        if let Some(a) = &from_input {
            if confirmed.is_empty() {
                return Err(self.refuse_pending(format!(
                    "parameter {TRUSTED_ROOT_SHA256}: empty: the room confirms {} (root v{}) by the SHA-256 of its signed bytes from its own records; the file's is {}",
                    show(&a.name),
                    a.root.signed().common.version,
                    a.digest
                )));
            }
            if confirmed != a.digest {
                return Err(self.refuse_pending(format!(
                    "{}: $.signed: SHA-256 of the signed bytes is {}, not {} (parameter {TRUSTED_ROOT_SHA256}): not the root the room confirmed",
                    show(&a.name),
                    a.digest,
                    show(&confirmed)
                )));
            }
        }
        match (&from_input, &from_workspace) {
            (Some(a), Some(w)) if a.digest != w.digest => {
                return Err(self.refuse_pending(format!(
                    "the input media's {} ({}, signed bytes SHA-256 {}) and this workspace's {} ({}, signed bytes SHA-256 {}) are not the same root: refusing to choose",
                    show(&a.name),
                    a.describe_version(),
                    a.digest,
                    show(&w.name),
                    w.describe_version(),
                    w.digest
                )));
            }
            (None, Some(w)) if !confirmed.is_empty() && confirmed != w.digest => {
                return Err(self.refuse_pending(format!(
                    "parameter {TRUSTED_ROOT_SHA256} ({}) is not the SHA-256 of the signed bytes of this workspace's {} ({}, {}): refusing to choose",
                    show(&confirmed),
                    show(&w.name),
                    w.describe_version(),
                    w.digest
                )));
            }
            _ => {}
        }
        Ok(from_input.or(from_workspace))
    }

    /// A pending root v1 (a bootstrap RSTUF keeps pending: no trusted root) is anchored in
    /// itself: the SHA-256 of its signed bytes is the digest the room confirmed (parameter)
    /// and/or the root v1 this workspace's bootstrap exported. Returns the review line.
    fn anchor_pending_v1(
        &self,
        file: &str,
        pending: &Pending,
        anchor: Option<&Anchor>,
    ) -> Result<String, EngineError> {
        let digest = hex::encode(pending.root.signed_digest());
        let confirmed = self.confirmed_digest();
        if !confirmed.is_empty() && confirmed != digest {
            return Err(self.refuse_pending(format!(
                "{file}: $.data.metadata.root.signed: SHA-256 of root v1's signed bytes is {digest}, not {} (parameter {TRUSTED_ROOT_SHA256}): not the root v1 the room confirmed",
                show(&confirmed)
            )));
        }
        if let Some(a) = anchor
            && a.root.signed_bytes() != pending.root.signed_bytes()
        {
            return Err(self.refuse_pending(format!(
                "{file}: $.data.metadata.root.signed: SHA-256 of root v1's signed bytes is {digest}, not {}'s {} ({}): not the root v1 this room bootstrapped",
                show(&a.name),
                a.digest,
                a.describe_version()
            )));
        }
        let mut by = Vec::new();
        if !confirmed.is_empty() {
            by.push(format!("parameter {TRUSTED_ROOT_SHA256}"));
        }
        if let Some(a) = anchor {
            by.push(show(&a.name));
        }
        if by.is_empty() {
            return Err(self.refuse_pending(format!(
                "{file}: $.data.metadata.root: a pending root v1 (RSTUF keeps a bootstrap pending until its threshold) is anchored in the SHA-256 of its signed bytes ({digest}): give it as parameter {TRUSTED_ROOT_SHA256} from the bootstrap's records, or sign in the workspace whose bootstrap-rstuf exported it"
            )));
        }
        Ok(format!(
            "pending root v1 (signed bytes SHA-256 {digest}) is the root v1 the room bootstrapped, by {}; it must meet its own threshold (RSTUF verifies a bootstrap by itself)",
            by.join(" and ")
        ))
    }

    /// The import step: the pending file parsed and reviewed against its trusted root at the
    /// confirmed clock; the trusted root must be the root the room confirmed (the anchor from
    /// the input media and/or the workspace's export) or its next version signed by it; a
    /// pending root v1 must be the root v1 the room confirmed. A pending root that cannot
    /// become a valid update, or that no keyholder present can sign, is refused here, before
    /// any PIN.
    pub(super) fn import_rstuf_pending(
        &mut self,
        name: &str,
        text: &str,
        input: (&str, &str),
        workspace: (&str, &str),
    ) -> Result<(), EngineError> {
        let file = show(name);
        let bad = |e: RstufError| self.refuse_pending(e);
        let pending = rstuf::parse_pending(&file, text.as_bytes()).map_err(bad)?;
        let anchor = self.rstuf_anchor(input, workspace)?;
        let (trusted, anchored) = match pending.trusted.clone() {
            None => (
                None,
                self.anchor_pending_v1(&file, &pending, anchor.as_ref())?,
            ),
            Some(trusted) => {
                let anchored = match &anchor {
                    Some(a) => {
                        rstuf::check_anchor(&file, &pending, &a.name, &a.root).map_err(bad)?
                    }
                    None => {
                        return Err(self.refuse_pending(format!(
                            "{}: missing from the input media, and this workspace's export holds no root before root v{}: bring the root this appliance trusts (the last root of the room's own records), confirmed by parameter {TRUSTED_ROOT_SHA256}, or sign in the workspace whose ceremony wrote it",
                            show(input.0),
                            pending.root.signed().common.version
                        )));
                    }
                };
                (Some(trusted), anchored)
            }
        };
        if let Some(trusted) = &trusted {
            trust_root(
                &format!("{file}: $.data.metadata.trusted_root"),
                &trusted.to_file_bytes(),
            )
            .map_err(|e| self.refuse_pending(e))?;
            rstuf::check_model(&file, trusted.signed())
                .map_err(under_trusted)
                .map_err(bad)?;
        }
        let review = rstuf::review_pending(&file, &pending).map_err(bad)?;
        let new = pending.root.signed();
        let role = new.role(RoleType::Root);
        let listed = role
            .keyids
            .iter()
            .filter(|id| new.key(id).is_some())
            .count();
        if role.threshold == 0 || role.threshold > listed as u64 {
            return Err(self.refuse_pending(format!(
                "{file}: $.data.metadata.root.signed.roles.root.threshold: {} with {listed} listed root key(s): root v{} can never meet it",
                role.threshold, new.common.version
            )));
        }
        let now = self.now()?;
        if new.common.expires.is_expired(now) {
            return Err(self.refuse_pending(format!(
                "{file}: $.data.metadata.root.signed.expires: root v{} expired at {} (by the confirmed clock)",
                new.common.version,
                show(&new.common.expires.raw)
            )));
        }
        if review.complete() {
            return Err(self.refuse_pending(format!(
                "{file}: $.data.metadata.root.signatures: the pending root already meets its thresholds: nothing to sign"
            )));
        }
        let missing = review.still_to_sign();
        let owner = |id: &KeyId| {
            [Some(new), trusted.as_ref().map(Metadata::signed)]
                .into_iter()
                .flatten()
                .find_map(|r| r.key(id).and_then(key_owner))
        };
        if !self
            .keyholders
            .iter()
            .any(|k| missing.iter().any(|id| owner(id) == Some(k.as_str())))
        {
            let mut names: Vec<String> = missing
                .iter()
                .map(|id| owner(id).map_or_else(|| show(id.short()), show))
                .collect();
            names.dedup();
            return Err(self.refuse_pending(format!(
                "no keyholder of the roll call holds a root key whose signature is still missing; missing: {} (keyholders are named as x-rstuf-key-name names the keys)",
                names.join(", ")
            )));
        }
        // The trusted root is the root in force: the seal is anchored in it. A pending root v1
        // has none: no root is in force until RSTUF has its threshold.
        self.current = trusted.map(|t| (t, None));
        self.rstuf_pending = Some(Box::new(Imported {
            name: name.to_string(),
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            pending,
            review,
            anchored,
        }));
        Ok(())
    }

    /// The proposal: the pending root exactly as RSTUF sent it, its signatures kept.
    pub(super) fn build_rstuf_pending(&self) -> Result<Proposal, EngineError> {
        let imported = self
            .rstuf_pending
            .as_ref()
            .ok_or_else(|| self.policy("no RSTUF pending file was imported"))?;
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(imported.pending.root.clone()),
            targets: None,
        })
    }

    /// The pending root RSTUF sent, as imported (for the ceremony's end state: its keys are
    /// keys of this ceremony, though the trusted root stays the root in force).
    pub fn rstuf_pending_root(&self) -> Option<&Metadata<Root>> {
        self.rstuf_pending.as_ref().map(|i| &i.pending.root)
    }

    /// Closing the signing step: the keyholders present signed what they could; the rest of
    /// the thresholds is RSTUF's to collect, but a ceremony without a signature has nothing to
    /// export.
    pub(super) fn rstuf_pending_close(&self) -> Result<(), EngineError> {
        if self.signers.is_empty() {
            return Err(self
                .policy("no keyholder has signed: nothing to export (skip the ceremony instead)"));
        }
        Ok(())
    }

    /// The chain rule's two counts over `r` (the pending root with the signatures so far): by
    /// the trusted root's root keys and threshold, and by its own. Only signatures that verify
    /// count.
    fn rstuf_pending_counts(&self, r: &Metadata<Root>) -> (ThresholdResult, ThresholdResult) {
        let count = |root: &Root| {
            count_signatures(
                |id| root.key(id),
                root.role(RoleType::Root),
                r.signed_bytes(),
                &r.signatures,
            )
        };
        let by_trusted = match &self.current {
            Some((t, _)) => count(t.signed()),
            None => ThresholdResult {
                threshold: 0,
                signed: Vec::new(),
                unsigned: Vec::new(),
                ignored: Vec::new(),
            },
        };
        (by_trusted, count(r.signed()))
    }

    /// The root key ids whose signature on the proposal verifies (for either root): the keys
    /// that need not sign again. An invalid signature from the connected side is not among them.
    pub(super) fn rstuf_pending_counted(&self, p: &Proposal) -> Vec<KeyId> {
        let Some(r) = &p.root else {
            return Vec::new();
        };
        let (by_trusted, by_self) = self.rstuf_pending_counts(r);
        let mut ids = by_trusted.signed;
        for id in by_self.signed {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    /// The signatures made here: (key id, signature bytes), in signing order.
    fn rstuf_pending_signatures(&self) -> Vec<(KeyId, Vec<u8>)> {
        let Some(r) = self.proposal.as_ref().and_then(|p| p.root.as_ref()) else {
            return Vec::new();
        };
        self.signers
            .iter()
            .filter_map(|(id, _)| {
                let s = r.signatures.iter().find(|s| s.keyid.0 == *id)?;
                Some((s.keyid.clone(), hex::decode(&s.sig).ok()?))
            })
            .collect()
    }

    /// The verify step: the pending root is still the one imported, every signature made here
    /// verifies and counts for the trusted root's root role or the pending root's own, and
    /// its payload builds.
    pub(super) fn rstuf_pending_verify(&self) -> Result<(), EngineError> {
        let imported = self
            .rstuf_pending
            .as_ref()
            .ok_or_else(|| self.policy("no RSTUF pending file was imported"))?;
        let r = self
            .proposal
            .as_ref()
            .and_then(|p| p.root.as_ref())
            .ok_or_else(|| self.policy("no proposal"))?;
        if r.signed_bytes() != imported.pending.root.signed_bytes() {
            return Err(self.policy("the signed root differs from the pending root imported"));
        }
        // A pending root v1 has no trusted root: its own root keys alone count.
        let trusted = self.current.as_ref().map(|(t, _)| t.signed());
        if trusted.is_none() && imported.pending.trusted.is_some() {
            return Err(self.policy("no trusted root"));
        }
        let (by_trusted, by_self) = self.rstuf_pending_counts(r);
        let sigs = self.rstuf_pending_signatures();
        if sigs.len() != self.signers.len() || sigs.is_empty() {
            return Err(self.policy("a signature made here is missing from the pending root"));
        }
        for (id, _) in &sigs {
            if !by_trusted.signed.contains(id) && !by_self.signed.contains(id) {
                return Err(self.policy(match trusted {
                    Some(t) => format!(
                        "the signature by key {} counts neither for trusted root v{} nor for root v{}",
                        show(id.short()),
                        t.common.version,
                        r.signed().common.version
                    ),
                    None => format!(
                        "the signature by key {} does not count for root v{}",
                        show(id.short()),
                        r.signed().common.version
                    ),
                }));
            }
        }
        if let Some(now) = self.clock
            && r.signed().common.expires.is_expired(now)
        {
            return Err(self.policy("the pending root is already expired"));
        }
        Ok(())
    }

    /// The export: one `sign-payload.json` (RSTUF's format) per signature made here.
    pub(super) fn rstuf_pending_export(&self) -> Vec<(String, Vec<u8>)> {
        let version = self
            .proposal
            .as_ref()
            .and_then(|p| p.root.as_ref())
            .map_or(0, |r| r.signed().common.version);
        self.rstuf_pending_signatures()
            .into_iter()
            .map(|(id, sig)| {
                (
                    sign_payload_file_name(version, &id),
                    rstuf::sign_payload(&id, &sig),
                )
            })
            .collect()
    }

    /// The review: the pending file and its trusted root, what changes, the chain rule's two
    /// counts, the digest to sign, and which keyholder present signs with which key.
    pub(super) fn rstuf_pending_review_lines(&self, p: &Proposal) -> Vec<String> {
        let mut out = Vec::new();
        let (Some(imported), Some(r)) = (&self.rstuf_pending, &p.root) else {
            return out;
        };
        let new = r.signed();
        out.push(format!(
            "RSTUF pending file {} (SHA-256 {})",
            show(&imported.name),
            imported.sha256
        ));
        out.push(imported.anchored.clone());
        if let Some((t, _)) = &self.current {
            let old = t.signed();
            out.push(format!(
                "trusted root v{} (signed bytes SHA-256 {}) meets its own threshold; root v{} must be signed by {} of its root keys and {} of its own",
                old.common.version,
                hex::encode(t.signed_digest()),
                new.common.version,
                old.role(RoleType::Root).threshold,
                new.role(RoleType::Root).threshold
            ));
        }
        out.extend(imported.review.lines.iter().cloned());
        let mut counts = BTreeMap::new();
        for (name, m) in self.meters() {
            counts.insert(name, m.summary());
        }
        for (name, summary) in counts {
            out.push(format!("now: {name}: {summary}"));
        }
        out.push("digest to sign (SHA-256 of the canonical signed bytes):".into());
        out.push(format!(
            "  root v{}: {}",
            new.common.version,
            hex::encode(r.signed_digest())
        ));
        out.push("keyholders present who sign:".into());
        let trusted = self.current.as_ref().map(|(t, _)| t.signed());
        for who in &self.keyholders {
            let left = self.roles_left(who);
            if left.is_empty() {
                out.push(format!(
                    "  {}: no key of theirs is still missing a signature",
                    show(who)
                ));
                continue;
            }
            for (id, _) in left {
                let mut counts_for = Vec::new();
                if trusted.is_some_and(|t| t.role(RoleType::Root).keyids.contains(&id)) {
                    counts_for.push("the trusted root");
                }
                if new.role(RoleType::Root).keyids.contains(&id) {
                    counts_for.push("the pending root");
                }
                let name = [Some(new), trusted]
                    .into_iter()
                    .flatten()
                    .find_map(|r| r.key(&id).and_then(rstuf::key_name))
                    .map_or_else(|| "unnamed".to_string(), show);
                out.push(format!(
                    "  {}: key {name} ({}) signs root v{}, counted by {}",
                    show(who),
                    show(id.short()),
                    new.common.version,
                    counts_for.join(" and ")
                ));
            }
        }
        out
    }
}
