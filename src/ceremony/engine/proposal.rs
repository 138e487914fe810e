//! Phase: the proposal (built by the module of the ceremony kind), its checks, and the
//! room's approval.

use super::tuf_on_ci;
use super::{ACCEPT_CLIENT_LOSS, Current, Engine, EngineError, Need};
use crate::ceremony::script::Kind;
use crate::text::show;
use crate::tuf::compat::{self, Finding};
use crate::tuf::key::{Key, KeyId};
use crate::tuf::metadata::{Metadata, Root, Targets};
use std::collections::BTreeMap;
use time::Duration;

/// The metadata a ceremony proposes, as built from its events.
#[derive(Clone, Debug)]
pub struct Proposal {
    /// The in-toto layout being signed (sign-intoto-layout), with the signatures so far.
    pub layout: Option<crate::intoto::LayoutFile>,
    /// The new root, if the ceremony changes root.
    pub root: Option<Metadata<Root>>,
    /// The new targets, if the ceremony changes targets.
    pub targets: Option<Metadata<Targets>>,
    /// The roles a tuf-on-ci signing event changes (sign-tuf-on-ci-event), with the signatures
    /// so far; empty for every other kind.
    pub tuf_on_ci: Vec<crate::tuf::tuf_on_ci::ChangedRole>,
}

impl Proposal {
    /// Role name to hex SHA-256 of its canonical signed bytes (what is reviewed and signed).
    pub fn digests(&self) -> BTreeMap<String, String> {
        let mut d = BTreeMap::new();
        if let Some(l) = &self.layout {
            use sha2::Digest;
            d.insert(
                "layout".into(),
                hex::encode(sha2::Sha256::digest(l.signed_message())),
            );
        }
        if let Some(r) = &self.root {
            d.insert("root".into(), hex::encode(r.signed_digest()));
        }
        if let Some(t) = &self.targets {
            d.insert("targets".into(), hex::encode(t.signed_digest()));
        }
        tuf_on_ci::digests(&self.tuf_on_ci, &mut d);
        d
    }
}

/// Keys the proposal adds (not in the current root or delegations) whose key id is not the
/// SHA-256 of their key object: a refusal, whatever the parameters say (tough refuses the whole
/// file, and a published root once broke every tough-based client this way). Keys carried
/// forward from the current metadata are the client profiles' business.
pub fn added_key_id_mismatches(current: Option<&Current>, p: &Proposal) -> Vec<String> {
    let known = |id: &KeyId| {
        current.is_some_and(|(r, t)| {
            r.signed().key(id).is_some()
                || t.as_ref()
                    .and_then(|t| t.signed().delegations.as_ref())
                    .is_some_and(|d| d.key(id).is_some())
        })
    };
    let mut out = Vec::new();
    let mut check = |where_: &str, keys: &[(KeyId, Key)]| {
        for (id, k) in keys {
            if !known(id) && k.key_id() != *id {
                out.push(format!(
                    "{where_}: the ceremony adds key {}, which is not the SHA-256 of its key ({}): tough refuses such metadata",
                    show(&id.0),
                    k.key_id()
                ));
            }
        }
    };
    if let Some(r) = &p.root {
        check("root", &r.signed().keys);
    }
    if let Some(d) = p
        .targets
        .as_ref()
        .and_then(|t| t.signed().delegations.as_ref())
    {
        check("targets delegations", &d.keys);
    }
    out
}

/// What the client profiles find in a proposal: ("root" or "targets", finding).
pub fn proposal_findings(p: &Proposal) -> Vec<(&'static str, Finding)> {
    let mut out = Vec::new();
    if let Some(r) = &p.root {
        out.extend(
            compat::check_root(r.signed())
                .into_iter()
                .map(|f| ("root", f)),
        );
    }
    if let Some(t) = &p.targets {
        out.extend(
            compat::check_targets(t.signed())
                .into_iter()
                .map(|f| ("targets", f)),
        );
    }
    out
}

/// The line the review shows and the transcript records for a loss the registry accepted:
/// "tough and tuf-js clients will reject this root: FIELD: PROBLEM".
pub fn accepted_loss_line(role: &str, f: &Finding) -> String {
    let what = if role == "root" {
        "this root".to_string()
    } else {
        format!("this {role} metadata")
    };
    format!(
        "{} clients will reject {what}: {}: {} (accepted in {ACCEPT_CLIENT_LOSS})",
        compat::client_list(&f.clients),
        f.field,
        f.problem
    )
}

impl Engine {
    /// The proposal, once keys and parameters allow it (built deterministically from the events).
    pub fn proposal(&self) -> Result<Proposal, EngineError> {
        // At a propose step the proposal is built (anew for a ceremony's second proposal);
        // afterwards it is the one recorded, with its signatures.
        if self.need() == Need::Propose {
            return self.build_proposal();
        }
        if let Some(p) = &self.proposal {
            return Ok(p.clone());
        }
        self.build_proposal()
    }

    /// The proposal the events build: one builder per ceremony kind.
    pub(super) fn build_proposal(&self) -> Result<Proposal, EngineError> {
        match self.script.kind {
            Kind::SignIntotoLayout => self.build_layout(),
            Kind::RefreshExpiry => self.build_refresh(),
            Kind::RotateRootKeys => self.build_rotation(),
            Kind::RotateOnlineKeys => self.build_online_rotation(),
            Kind::RotateTargetsKeys => self.build_targets_rotation(),
            Kind::DelegateClaimedProjects => self.build_delegations(),
            Kind::PublishTargets => self.build_publication(),
            Kind::SignTufOnCiEvent => self.build_tuf_on_ci(),
            Kind::SignRstufPendingRoot => self.build_rstuf_pending(),
            Kind::BootstrapRoot if self.rstuf() => self.build_rstuf_bootstrap(),
            // bootstrap-root (`Engine::new` refuses the kinds not listed here).
            _ => self.build_bootstrap(),
        }
    }

    /// The proposal recorded: its digests are those the events build, and it passes the policy.
    pub(super) fn on_proposed(
        &mut self,
        digests: &BTreeMap<String, String>,
        warnings: &mut Vec<String>,
    ) -> Result<(), EngineError> {
        let p = self.build_proposal()?;
        if p.digests() != *digests {
            return Err(
                self.policy("the recorded digests are not those of the proposal the events build")
            );
        }
        if let Some(e) = added_key_id_mismatches(self.current.as_ref(), &p)
            .into_iter()
            .next()
        {
            return Err(self.policy(e));
        }
        for (role, f) in proposal_findings(&p) {
            self.gate(&format!("{role}: {}: {}", f.field, f.problem), &f.clients)?;
            warnings.push(accepted_loss_line(role, &f));
        }
        // A later proposal of the same ceremony (sign-intoto-layout's targets) is
        // reviewed and signed anew.
        self.approved = false;
        self.signed_by.clear();
        self.signing_skipped.clear();
        // Nothing expiring inside the script's minimum window is ever signed.
        let now = self.now()?;
        let min = Duration::days(self.script.min_expiry_days);
        let expiries = [
            p.root.as_ref().map(|r| {
                (
                    "root",
                    r.signed().common.version,
                    &r.signed().common.expires,
                )
            }),
            p.targets.as_ref().map(|t| {
                (
                    "targets",
                    t.signed().common.version,
                    &t.signed().common.expires,
                )
            }),
        ];
        for (role, version, expires) in expiries.into_iter().flatten() {
            if expires.time < now + min {
                return Err(self.policy(format!(
                    "{role} v{version} would expire at {}, inside the script's minimum expiry window of {} days",
                    expires.raw, self.script.min_expiry_days
                )));
            }
        }
        self.check_expiry_moves_forward(&p)?;
        // An accepted tuf-on-ci invite: the edit proposed is the event from now on.
        if self.is_tuf_on_ci() {
            self.tuf_on_ci_take_edit()?;
        }
        self.proposal = Some(p);
        self.advance();
        Ok(())
    }

    /// The room's approval of the proposal's digests.
    pub(super) fn on_approved(
        &mut self,
        digests: &BTreeMap<String, String>,
        request_set_sha256: Option<&str>,
    ) -> Result<(), EngineError> {
        self.check_request_set_confirmation(request_set_sha256)?;
        let expected = self
            .proposal
            .as_ref()
            .map(Proposal::digests)
            .unwrap_or_default();
        if *digests != expected {
            return Err(self.policy("the approved digests differ from the proposal's"));
        }
        self.approved = true;
        self.advance();
        Ok(())
    }
}
