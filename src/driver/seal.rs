//! Sealing the transcript and signing the seal.

use std::path::Path;

use super::token_device::TokenSigner;
use crate::transcript::details::FileDigest;
use crate::tuf::canonical::Value;
use crate::tuf::key::KeyId;

use super::error::{DriverError, io};
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
        self.record(
            "administrator",
            crate::ceremony::engine::Event::SealSkipped {
                step: self.step(),
                keyholder: who.to_string(),
                reason: reason.to_string(),
            },
        )
        .map(|_| ())
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
        let at = self.stamp();
        let seal = self
            .file()?
            .append_seal("administrator", None, artifacts, ids, at)
            .map_err(io("sealing the transcript"))?;
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
        let at = self.stamp();
        self.file()?
            .append_seal_signature(who, signer.as_mut(), at)
            .map_err(io(format!("{who}'s seal signature")))?;
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
        let key_log = self.key_event_log(seal_hash, &mut signers)?;
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
                .filter(|(_, who, _)| who == crate::transcript::file::SYSTEM_ACTOR)
                .map(|(_, _, text)| text.clone())
                .collect(),
            resumed: self.resumed,
            already_complete: false,
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
    let Some(seal) = t.seal_index().and_then(|i| t.records().get(i)) else {
        return Ok(None);
    };
    let signed = t
        .records()
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
