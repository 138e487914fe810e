//! Phase: signatures, skipped signers, closing the signing step, and verifying the result.

use super::tuf_on_ci;
use super::{Engine, EngineError, key_owner};
use crate::ceremony::script::Step;
use crate::tuf::key::{Key, KeyId};
use crate::tuf::metadata::RoleType;
use crate::tuf::verify::{ThresholdResult, count_signatures, trust_root, update_root};
use std::collections::BTreeMap;

impl Engine {
    /// Threshold meters of the roles being signed.
    pub fn meters(&self) -> BTreeMap<String, ThresholdResult> {
        let mut m = BTreeMap::new();
        let Some(p) = &self.proposal else {
            return m;
        };
        if self.is_tuf_on_ci() {
            return tuf_on_ci::meters(p);
        }
        if let Some(l) = &p.layout
            && p.targets.is_none()
            && let Some(r) = self.layout_meter(l)
        {
            m.insert("layout".into(), r);
        }
        if p.root.is_none()
            && let (Some(t), Some((root, _))) = (&p.targets, &self.current)
        {
            let root = root.signed();
            m.insert(
                "targets".into(),
                count_signatures(
                    |id| root.key(id),
                    root.role(RoleType::Targets),
                    t.signed_bytes(),
                    &t.signatures,
                ),
            );
        }
        if let Some(r) = &p.root {
            let root = r.signed();
            m.insert(
                "root".into(),
                count_signatures(
                    |id| root.key(id),
                    root.role(RoleType::Root),
                    r.signed_bytes(),
                    &r.signatures,
                ),
            );
            if let Some((old, _)) = &self.current {
                let old = old.signed();
                m.insert(
                    "root (by the current root)".into(),
                    count_signatures(
                        |id| old.key(id),
                        old.role(RoleType::Root),
                        r.signed_bytes(),
                        &r.signatures,
                    ),
                );
            }
            if let Some(t) = &p.targets {
                m.insert(
                    "targets".into(),
                    count_signatures(
                        |id| root.key(id),
                        root.role(RoleType::Targets),
                        t.signed_bytes(),
                        &t.signatures,
                    ),
                );
            }
        }
        m
    }

    /// A signature, verified over exactly the proposed bytes before it counts.
    pub(super) fn on_signed(
        &mut self,
        step: &Step,
        keyholder: &str,
        role: &str,
        keyid: &str,
        sig: &str,
        wrong: &dyn Fn() -> EngineError,
    ) -> Result<(), EngineError> {
        if !self.approved {
            return Err(self.policy("nothing is signed before the room approves the proposal"));
        }
        if self.signing_skipped.iter().any(|(k, _)| k == keyholder) {
            return Err(self.policy(format!(
                "{keyholder} was skipped at this signing step (recorded): they do not sign"
            )));
        }
        let id = KeyId(keyid.to_string());
        let found = self
            .generated
            .iter()
            .filter(|(k, _, _)| k == keyholder)
            .map(|(k, _, key)| self.owned(key, k))
            .find(|k| k.key_id() == id)
            .or_else(|| {
                self.proposal
                    .as_ref()
                    .and_then(|p| p.root.as_ref())
                    .and_then(|r| r.signed().key(&id))
                    .cloned()
            })
            .or_else(|| {
                self.current
                    .as_ref()
                    .and_then(|(r, _)| r.signed().key(&id))
                    .cloned()
            });
        let key = match found {
            Some(k) if self.keyholders.iter().any(|k| k == keyholder) => k,
            _ => {
                return Err(self.policy(format!("{keyholder} has no key {keyid} in this ceremony")));
            }
        };
        if let Some(owner) = key_owner(&key)
            && owner != keyholder
        {
            return Err(self.policy(format!(
                "key {keyid} belongs to {owner}, not to {keyholder}"
            )));
        }
        if !self
            .roles_for_key(&KeyId(keyid.to_string()))
            .iter()
            .any(|r| r == role)
        {
            return Err(self.policy(format!("key {keyid} of {keyholder} may not sign {role}")));
        }
        if let Some((_, other)) = self
            .signers
            .iter()
            .find(|(k, who)| *k == *keyid && who != keyholder)
        {
            return Err(self.policy(format!("key {keyid} signed already for {other}")));
        }
        if !self.signers.iter().any(|(k, _)| k == keyid) {
            self.signers
                .push((keyid.to_string(), keyholder.to_string()));
        }
        let raw = hex::decode(sig).map_err(|_| self.policy("signature is not hex"))?;
        let Some(p) = self.proposal.as_mut() else {
            return Err(EngineError::Policy {
                step: step.id.clone(),
                reason: "no proposal".into(),
            });
        };
        // Each signature is verified over exactly the proposed bytes before it counts.
        let verify = |bytes: &[u8]| {
            key.public_key()
                .and_then(|pk| pk.verify(bytes, &raw))
                .map_err(|e| EngineError::Policy {
                    step: step.id.clone(),
                    reason: format!("{keyholder}'s {role} signature: {e}"),
                })
        };
        match role {
            "root" => {
                let Some(r) = p.root.as_mut() else {
                    return Err(wrong());
                };
                verify(r.signed_bytes())?;
                r.add_signature(KeyId(keyid.to_string()), &raw);
            }
            "targets" => {
                let Some(t) = p.targets.as_mut() else {
                    return Err(wrong());
                };
                verify(t.signed_bytes())?;
                t.add_signature(KeyId(keyid.to_string()), &raw);
            }
            "layout" => {
                let Some(l) = p.layout.as_mut() else {
                    return Err(wrong());
                };
                verify(&l.signed_message())?;
                let plain = key
                    .public_key()
                    .map(|pk| Key::from_public_key(&pk).key_id())
                    .map_err(|e| EngineError::Policy {
                        step: step.id.clone(),
                        reason: e.to_string(),
                    })?;
                l.add_signature_bytes(plain, raw.clone());
            }
            other => {
                return Err(self.policy(format!("role {other} is not signed in this step")));
            }
        }
        if self.roles_left(keyholder).is_empty() && !self.signed_by.iter().any(|k| k == keyholder) {
            self.signed_by.push(keyholder.to_string());
        }
        Ok(())
    }

    /// A keyholder skipped at the signing step, with a reason.
    pub(super) fn on_signer_skipped(
        &mut self,
        keyholder: &str,
        reason: &str,
    ) -> Result<(), EngineError> {
        self.check_skip(keyholder, reason, &self.signing_skipped)?;
        if !self.approved {
            return Err(self.policy("signing starts after the room approves the proposal"));
        }
        self.signing_skipped
            .push((keyholder.to_string(), reason.to_string()));
        Ok(())
    }

    /// Signing closes once every meter is met.
    pub(super) fn on_signing_closed(&mut self) -> Result<(), EngineError> {
        let meters = self.meters();
        if let Some((role, m)) = meters.iter().find(|(r, m)| !self.meter_done(r, m)) {
            return Err(self.policy(format!(
                "{role} has {} of {} signatures: signing cannot close yet",
                m.signed.len(),
                if role == "root" {
                    self.root_signatures_needed(m)
                } else {
                    m.threshold
                }
            )));
        }
        self.advance();
        Ok(())
    }

    /// The signed result verified as a client would.
    pub(super) fn on_verified(&mut self) -> Result<(), EngineError> {
        let p = self
            .proposal
            .as_ref()
            .ok_or_else(|| self.policy("no proposal"))?;
        if let Some(l) = &p.layout {
            let m = self
                .layout_meter(l)
                .ok_or_else(|| self.policy("the current metadata has not been loaded"))?;
            if !m.verified() {
                return Err(self.policy(format!(
                    "the layout has {} of {} valid signatures by the targets keys",
                    m.signed.len(),
                    m.threshold
                )));
            }
        }
        if let (Some(r), None, true) = (&p.root, &self.current, self.rstuf()) {
            self.verify_rstuf_bootstrap(r)?;
        } else if let Some(r) = &p.root {
            let trusted = match &self.current {
                // A new version: signed by the current root's threshold and its own.
                Some((old, _)) => {
                    let (old, _) = trust_root("current root", &old.to_file_bytes())
                        .map_err(|e| self.policy(e.to_string()))?;
                    let file = format!("{}.root.json", r.signed().common.version);
                    update_root(&old, &file, &r.to_file_bytes())
                        .map_err(|e| self.policy(e.to_string()))?
                        .0
                }
                None => {
                    trust_root("root", &r.to_file_bytes())
                        .map_err(|e| self.policy(e.to_string()))?
                        .0
                }
            };
            if let Some(t) = &p.targets {
                let m = trusted.count(RoleType::Targets, t.signed_bytes(), &t.signatures);
                if !m.verified() {
                    return Err(self.policy(format!("targets: {}", m.summary())));
                }
            }
            if let Some(now) = self.clock
                && r.signed().common.expires.is_expired(now)
            {
                return Err(self.policy("the new root is already expired"));
            }
        } else if let (Some(t), Some((root, _))) = (&p.targets, &self.current) {
            // Targets only: signed by the current root's targets keys.
            let (trusted, _) = trust_root("current root", &root.to_file_bytes())
                .map_err(|e| self.policy(e.to_string()))?;
            let m = trusted.count(RoleType::Targets, t.signed_bytes(), &t.signatures);
            if !m.verified() {
                return Err(self.policy(format!("targets: {}", m.summary())));
            }
        }
        self.advance();
        Ok(())
    }
}
