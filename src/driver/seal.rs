//! Sealing the transcript and signing the seal.

use std::path::Path;

use crate::signer::pkcs11::Pkcs11Signer;
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
    /// continues a seal an interruption left half signed.
    pub fn seal(
        mut self,
        mut signers: Vec<(String, Pkcs11Signer)>,
    ) -> Result<CeremonyReport, DriverError> {
        let mut artifacts = Vec::new();
        let mut exported = Vec::new();
        for (name, data) in self.engine.export_files() {
            artifacts.push(FileDigest::of(&name, &data));
            exported.push(name);
        }
        if signers.is_empty() {
            return Err(DriverError::Io(
                "no keyholder's token can seal the transcript".into(),
            ));
        }
        let (seal_hash, already_signed) = match transcript_seal_state(&self.tpath)? {
            Some(state) => state,
            None => {
                let ids: Vec<KeyId> = signers.iter().map(|(_, s)| s.key_id()).collect();
                let at = self.stamp();
                let seal = self
                    .file()?
                    .append_seal("administrator", None, artifacts, ids, at)
                    .map_err(io("sealing the transcript"))?;
                (hex::encode(seal.hash), Vec::new())
            }
        };
        for (who, s) in signers.iter_mut() {
            // A transcript sealed and signed earlier takes no more signatures (a rerun that
            // finishes the key-event log: its signers sign only the checkpoint).
            if already_signed.contains(&s.key_id().0) || self.transcript.is_none() {
                continue;
            }
            let at = self.stamp();
            self.file()?
                .append_seal_signature(who, s, at)
                .map_err(io(format!("{who}'s seal signature")))?;
        }
        let key_log = self.key_event_log(&seal_hash, &mut signers)?;
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
            seal: seal_hash,
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
