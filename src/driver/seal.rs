//! Sealing the transcript and signing the seal.

use std::path::Path;

use super::token_device::TokenSigner;
use crate::transcript::details::FileDigest;
use crate::transcript::seal::{
    SealDetails, SealWithdrawal, WITHDRAWAL_ACTION, WITHDRAWAL_REASON_MAX,
};
use crate::tuf::canonical::Value;
use crate::tuf::key::KeyId;

use super::error::{DriverError, KEY_LOG_RECORD, NotRecorded, io, record_name, record_named};
use super::report::{CeremonyReport, summary};
use super::session::Session;

impl Session {
    /// Record that `who` does not sign the seal, and why (before the seal is written). A
    /// transcript sealed already records nothing more: the skip stands as the seal's signer
    /// list shows it.
    pub fn skip_sealer(&mut self, who: &str, reason: &str) -> Result<(), DriverError> {
        if self.transcript.is_none() || transcript_seal_state(&self.tpath)?.is_some() {
            return Ok(());
        }
        let event = crate::ceremony::engine::Event::SealSkipped {
            step: self.step(),
            keyholder: who.to_string(),
            reason: reason.to_string(),
        };
        self.seal_record(&record_name(&event), |s| {
            s.record("administrator", event).map(|_| ())
        })
    }

    /// The script's seal step as the engine names it (its id; "seal" for a script without
    /// one): the step a record of the seal stage belongs to.
    pub fn seal_step(&self) -> String {
        self.script
            .steps
            .iter()
            .rev()
            .find(|s| s.action == crate::ceremony::script::Action::Seal)
            .map_or_else(|| "seal".to_string(), |s| s.id.clone())
    }

    /// `work` writes the seal stage's record `what`: if it is not written, a
    /// [`NotRecorded`] naming the seal step ([`Session::seal_step`]) and `what`, its source
    /// keeping the kind (a failed write is I/O, a refusal refused), as
    /// [`Session::record_step`] names a step's record.
    fn seal_record<R>(
        &mut self,
        what: &str,
        work: impl FnOnce(&mut Session) -> Result<R, DriverError>,
    ) -> Result<R, DriverError> {
        work(self).map_err(|source| NotRecorded::new(self.seal_step(), what, source).into())
    }

    /// Withdraw `who` from the written seal (their token died after the seal was written, or
    /// they had to leave), with the administrator's reason: the withdrawal is recorded and a
    /// new seal written over the same artifacts listing the other signers, who all sign it.
    /// `key`: the key `who` logged in with, if they did in this run (else the seal's listed key
    /// is found among `who`'s keys). Returns the new seal hash (hex).
    pub fn withdraw_sealer(
        &mut self,
        who: &str,
        key: Option<KeyId>,
        reason: &str,
    ) -> Result<String, DriverError> {
        let reason = reason.trim();
        self.seal_record(&record_named(WITHDRAWAL_ACTION), |s| {
            let n = reason.chars().count();
            if n == 0 || n > WITHDRAWAL_REASON_MAX {
                return Err(DriverError::Refused(format!(
                    "{who} is not withdrawn from the seal: give the reason (1 to {WITHDRAWAL_REASON_MAX} characters)"
                )));
            }
            let listed = s.seal_listed()?;
            let keyid = s.listed_key_of(who, key, &listed).ok_or_else(|| {
                DriverError::Refused(format!(
                    "the seal lists no key of {who}: nothing to withdraw"
                ))
            })?;
            let at = s.stamp();
            s.file()?
                .append_seal_withdrawal("administrator", &keyid, reason, at)
                .map_err(io(format!("withdrawing {who} from the seal")))
        })?;
        let seal = self.seal_record(&record_named("seal"), |s| {
            let at = s.stamp();
            s.file()?
                .append_reseal("administrator", at)
                .map_err(io(format!("the new seal without {who}")))
        })?;
        Ok(hex::encode(seal.hash))
    }

    /// Whether the written seal lists a key of `who` (`key`: the key they logged in with).
    pub fn seal_lists(&self, who: &str, key: Option<KeyId>) -> bool {
        self.seal_listed()
            .is_ok_and(|l| self.listed_key_of(who, key, &l).is_some())
    }

    /// Keyholders withdrawn from a seal of this transcript (before an interruption), with the
    /// reason recorded.
    pub fn seal_withdrawn(&self) -> Result<Vec<(String, String)>, DriverError> {
        let bytes = std::fs::read(&self.tpath).map_err(io(self.tpath.display()))?;
        let t = crate::transcript::chain::verify_chain(&bytes)
            .map_err(|e| DriverError::Refused(format!("{}: {e}", self.tpath.display())))?;
        let withdrawals: Vec<SealWithdrawal> = t
            .records()
            .iter()
            .filter(|r| r.action == WITHDRAWAL_ACTION)
            .filter_map(|r| SealWithdrawal::from_value(r.details.clone(), "details").ok())
            .collect();
        Ok(self
            .sealers()
            .into_iter()
            .filter_map(|who| {
                let w = withdrawals.iter().find(|w| {
                    self.listed_key_of(&who, None, std::slice::from_ref(&w.keyid))
                        .is_some()
                })?;
                Some((who, w.reason.clone()))
            })
            .collect())
    }

    /// Whether a key of `who` is among `signed` (key ids that signed the seal in force).
    pub fn seal_signed(&self, who: &str, signed: &[String]) -> bool {
        let ids: Vec<KeyId> = signed.iter().map(|s| KeyId(s.clone())).collect();
        self.listed_key_of(who, None, &ids).is_some()
    }

    /// The key ids the seal in force lists (empty before the seal).
    fn seal_listed(&self) -> Result<Vec<KeyId>, DriverError> {
        let bytes = std::fs::read(&self.tpath).map_err(io(self.tpath.display()))?;
        let t = crate::transcript::chain::verify_chain(&bytes)
            .map_err(|e| DriverError::Refused(format!("{}: {e}", self.tpath.display())))?;
        Ok(t.seal_index()
            .and_then(|i| t.records().get(i))
            .and_then(|r| SealDetails::from_value(r.details.clone(), "details").ok())
            .map(|d| d.signers)
            .unwrap_or_default())
    }

    /// The key of `who` that `listed` names: the one they logged in with, else one of their
    /// keys ([`Session::key_ids_of`]).
    fn listed_key_of(&self, who: &str, key: Option<KeyId>, listed: &[KeyId]) -> Option<KeyId> {
        key.into_iter()
            .chain(self.key_ids_of(who))
            .find(|id| listed.contains(id))
    }

    /// The key ids of `who`: of the keys generated for them in this ceremony and in the
    /// workspace's earlier ceremonies (the token key's own id, as a seal signature names it),
    /// and those listed as theirs in the metadata.
    pub(super) fn key_ids_of(&self, who: &str) -> Vec<KeyId> {
        let generated = self
            .engine
            .generated_keys()
            .iter()
            .filter(|(w, _, _)| w == who)
            .map(|(_, _, k)| k.key_id());
        let earlier = self
            .earlier_keys
            .iter()
            .filter(|(w, _, _)| w == who)
            .map(|(_, _, k)| k.key_id());
        generated
            .chain(earlier)
            .chain(self.engine.keyholder_all_key_ids(who))
            .collect()
    }

    /// Seal the transcript (artifacts with their hashes) and sign the seal with each signer;
    /// continues a seal an interruption left half signed. (The terminal UI takes the same
    /// steps one by one: [`Session::write_seal`], [`Session::sign_seal`] per keyholder once
    /// the hash is on screen, [`Session::finish_seal`].)
    pub fn seal(
        mut self,
        mut signers: Vec<(String, TokenSigner)>,
    ) -> Result<CeremonyReport, DriverError> {
        if signers.is_empty() {
            return Err(DriverError::Io(
                "no keyholder's token can seal the transcript".into(),
            ));
        }
        let seal_hash = self.write_seal(&signers)?;
        for (who, s) in signers.iter_mut() {
            self.sign_seal(who, s)?;
        }
        self.finish_seal(&seal_hash, signers)
    }

    /// The seal hash (hex) and the key ids that signed it, if the transcript is sealed.
    pub fn seal_state(&self) -> Result<Option<(String, Vec<String>)>, DriverError> {
        transcript_seal_state(&self.tpath)
    }

    /// Write the seal record: every exported artifact with its hash, and as its signers the
    /// keys of `signers` (logged in, none signed yet), in this order. Returns the seal hash in
    /// hex: the digest each signer then signs, fixed before the first signature. A transcript
    /// sealed already keeps its seal (an interrupted seal continues).
    pub fn write_seal(&mut self, signers: &[(String, TokenSigner)]) -> Result<String, DriverError> {
        if let Some((hash, _)) = transcript_seal_state(&self.tpath)? {
            return Ok(hash);
        }
        if signers.is_empty() {
            return Err(DriverError::Io(
                "no keyholder's token can seal the transcript".into(),
            ));
        }
        let artifacts = self
            .engine
            .export_files()
            .into_iter()
            .map(|(name, data)| FileDigest::of(&name, &data))
            .collect();
        let ids: Vec<KeyId> = signers.iter().map(|(_, s)| s.key_id()).collect();
        let seal = self.seal_record(&record_named("seal"), |s| {
            let at = s.stamp();
            s.file()?
                .append_seal("administrator", None, artifacts, ids, at)
                .map_err(io("sealing the transcript"))
        })?;
        Ok(hex::encode(seal.hash))
    }

    /// `who`'s token signs the written seal. `Ok(false)`: nothing to sign (this key signed it
    /// before an interruption, or the transcript was sealed and closed earlier).
    pub fn sign_seal(&mut self, who: &str, signer: &mut TokenSigner) -> Result<bool, DriverError> {
        // A transcript sealed and signed earlier takes no more signatures (a rerun that
        // finishes the key-event log: its signers sign only the checkpoint).
        if self.transcript.is_none() {
            return Ok(false);
        }
        let already_signed = transcript_seal_state(&self.tpath)?
            .map(|(_, signed)| signed)
            .unwrap_or_default();
        if already_signed.contains(&signer.key_id().0) {
            return Ok(false);
        }
        self.seal_record(&record_named("seal-signature"), |s| {
            let at = s.stamp();
            s.file()?
                .append_seal_signature(who, signer.as_mut(), at)
                .map_err(io(format!("{who}'s seal signature")))
        })?;
        Ok(true)
    }

    /// After the seal signatures: the key-event log (its checkpoint signed by the signers
    /// whose key is a root key), the transcript exported, and the report.
    pub fn finish_seal(
        self,
        seal_hash: &str,
        mut signers: Vec<(String, TokenSigner)>,
    ) -> Result<CeremonyReport, DriverError> {
        let exported = self
            .engine
            .export_files()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let key_log = self
            .key_event_log(seal_hash, &mut signers)
            .map_err(|source| NotRecorded::new(self.seal_step(), KEY_LOG_RECORD, source))?;
        super::export::export_transcript(&self.ws, self.plan.export_to.as_deref(), &self.tpath)?;
        let (keys, digests) = summary(&self.engine);
        Ok(CeremonyReport {
            key_log,
            review: self.engine.review_lines(),
            keyholders: self.engine.keyholders().to_vec(),
            event_inputs: self.engine.tuf_on_ci_input_folders(),
            keys,
            digests,
            transcript: self.tpath,
            exported,
            export_dir: self.ws.export(),
            seal: seal_hash.to_string(),
            repaired: self.repaired,
            cleaned: self
                .engine
                .exceptions()
                .iter()
                .filter(|(_, who, _)| who == crate::transcript::writer::SYSTEM_ACTOR)
                .map(|(_, _, text)| text.clone())
                .collect(),
            resumed: self.resumed,
            already_complete: false,
            another: None,
            resumed_events: self.resumed_events,
            warnings: self.warnings,
        })
    }
}

/// If the transcript is sealed already (a run interrupted while sealing): the seal hash and
/// the key ids that have signed it.
pub(super) fn transcript_seal_state(
    path: &Path,
) -> Result<Option<(String, Vec<String>)>, DriverError> {
    let bytes = std::fs::read(path).map_err(io(path.display()))?;
    let t = crate::transcript::chain::verify_chain(&bytes)
        .map_err(|e| DriverError::Refused(format!("{}: {e}", path.display())))?;
    let Some(at) = t.seal_index() else {
        return Ok(None);
    };
    let seal = &t.records()[at];
    let signed = t.records()[at + 1..]
        .iter()
        .filter(|r| r.action == "seal-signature")
        .filter_map(|r| {
            r.details
                .as_object()
                .and_then(|m| m.get("keyid"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    Ok(Some((hex::encode(seal.hash), signed)))
}
