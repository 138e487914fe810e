//! The transcript as it is written, without the disk: the chain state after the last record on
//! disk, the seal in force and who has signed it, and a signer withdrawn from it. It builds the
//! next record (checked as the verifier will check it), decides what may be appended (seal
//! signatures in the seal's order, withdrawals), produces the statement bytes a keyholder signs,
//! and plans how a file found on disk is resumed (verify, find a torn last line, build the
//! `resume` record).
//!
//! The driver's transcript file ([`crate::driver::transcript_file`]) writes each record's line
//! with `fsync` and only then tells the writer it is on disk ([`TranscriptWriter::accept`]).
//! Times are arguments: the clock belongs to the engine.

use crate::tuf::canonical::Value;
use crate::tuf::key::KeyId;

use super::chain::{
    ChainError, ChainErrorKind, ChainState, Phase, TornTail, VerifiedTranscript, split_torn_tail,
    verify_chain,
};
use super::details::{FileDigest, ResumeDetails};
use super::record::{Record, Timestamp, sha256};
use super::seal::{
    SealDetails, SealError, SealSignature, SealWithdrawal, WITHDRAWAL_ACTION, seal_message,
    verify_seal,
};

/// The actor of records Conclave writes by itself (`resume`).
pub const SYSTEM_ACTOR: &str = "conclave";

/// Why a record cannot be appended or a transcript cannot be resumed (the transcript file adds
/// the path).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The existing records do not verify.
    #[error(transparent)]
    Chain(ChainError),
    /// The seal present in the transcript does not verify.
    #[error(transparent)]
    Seal(SealError),
    /// The record would not verify, so it is not written.
    #[error("record not written: {0}")]
    Refused(ChainErrorKind),
    /// No complete record (the first write was torn): nothing to resume.
    #[error("no complete record to resume from ({bytes} bytes of a torn first line)")]
    NothingToResume {
        /// Size of the torn line.
        bytes: usize,
    },
    /// Sealed and every signer signed: the transcript is closed.
    #[error("the transcript is sealed and every signer has signed; nothing more can be appended")]
    Closed,
    /// A seal signature or withdrawal cannot be added (no seal yet, signer not listed, already
    /// signed, out of the seal's order).
    #[error("seal signature not written: {0}")]
    SealSignature(String),
}

/// The seal in force: its record, its details and the key ids that signed it so far.
#[derive(Clone, Debug)]
struct OpenSeal {
    record: Record,
    details: SealDetails,
    signed: Vec<KeyId>,
}

/// The state a transcript file is written from (see the module documentation).
#[derive(Clone, Debug)]
pub struct TranscriptWriter {
    state: ChainState,
    seal: Option<OpenSeal>,
    /// A signer withdrawn from this seal, whose new seal is not written yet.
    withdrawn: Option<(SealDetails, KeyId)>,
}

/// How a transcript found on disk is resumed: what [`plan_resume`] decided.
#[derive(Clone, Debug)]
pub struct ResumePlan {
    /// The writer after the complete records (before the `resume` record).
    pub writer: TranscriptWriter,
    /// The torn last line to cut off (at its offset), if any.
    pub torn: Option<TornTail>,
    /// The records that were already there (verified): what the engine folds over to resume.
    pub transcript: VerifiedTranscript,
    /// The details of the `resume` record to append (actor [`SYSTEM_ACTOR`]), already checked
    /// against the chain: the discarded bytes are never cut without being accounted for.
    pub details: ResumeDetails,
}

impl Default for TranscriptWriter {
    fn default() -> Self {
        TranscriptWriter::new()
    }
}

impl TranscriptWriter {
    /// A new, empty transcript.
    pub fn new() -> TranscriptWriter {
        TranscriptWriter {
            state: ChainState::new(),
            seal: None,
            withdrawn: None,
        }
    }

    /// The chain state after the last record accepted (head hash, next seq, last time).
    pub fn state(&self) -> &ChainState {
        &self.state
    }

    /// The next record: seq, prev and hash computed, checked as the verifier will check it
    /// (time not before the last record's, no secret-like fields, a `seal`'s details well
    /// formed, ...). Nothing changes until [`TranscriptWriter::accept`].
    pub fn build(
        &self,
        actor: &str,
        step: Option<&str>,
        action: &str,
        details: Value,
        time: Timestamp,
    ) -> Result<Record, WriteError> {
        let record = self
            .state
            .build(actor, step, action, details, time)
            .map_err(WriteError::Refused)?;
        if action == "seal" {
            SealDetails::from_value(record.details.clone(), "details")
                .map_err(|e| WriteError::Refused(ChainErrorKind::BadDetails(e)))?;
        }
        Ok(record)
    }

    /// The record built by [`TranscriptWriter::build`] is on disk: advance the chain (a `seal`
    /// becomes the seal in force).
    pub fn accept(&mut self, record: &Record) -> Result<(), WriteError> {
        let seal = if record.action == "seal" {
            let details = SealDetails::from_value(record.details.clone(), "details")
                .map_err(|e| WriteError::Refused(ChainErrorKind::BadDetails(e)))?;
            Some(OpenSeal {
                record: record.clone(),
                details,
                signed: Vec::new(),
            })
        } else {
            None
        };
        self.state.accept(record).map_err(WriteError::Refused)?;
        if seal.is_some() {
            self.seal = seal;
            self.withdrawn = None;
        }
        Ok(())
    }

    /// The details of a `seal` record sealing the current head: the exported artifacts and the
    /// key ids of the keyholders who will sign, in order.
    pub fn seal_details(&self, artifacts: Vec<FileDigest>, signers: Vec<KeyId>) -> Value {
        SealDetails {
            head: self.state.head(),
            artifacts,
            signers,
        }
        .to_value()
    }

    /// A signer withdrawn from the seal whose new seal is not written yet.
    pub fn withdrawal_pending(&self) -> Option<&KeyId> {
        self.withdrawn.as_ref().map(|(_, k)| k)
    }

    /// The details of a `seal-withdrawal` record withdrawing `keyid` (listed in the seal, not
    /// signed yet, not the only signer) with `reason`. Append it with action
    /// [`WITHDRAWAL_ACTION`], then call [`TranscriptWriter::accept_withdrawal`].
    pub fn withdrawal(&self, keyid: &KeyId, reason: &str) -> Result<Value, WriteError> {
        let refuse = |r: String| WriteError::SealSignature(r);
        let Some(seal) = &self.seal else {
            return Err(refuse("no seal record to withdraw a signer from".into()));
        };
        if !seal.details.signers.contains(keyid) {
            return Err(refuse(format!("key {keyid} is not listed in the seal")));
        }
        if seal.signed.contains(keyid) {
            return Err(refuse(format!(
                "key {keyid} has signed the seal already and cannot be withdrawn"
            )));
        }
        if seal.details.signers.len() < 2 {
            return Err(refuse(format!(
                "key {keyid} is the seal's only signer: no one would be left to sign"
            )));
        }
        Ok(SealWithdrawal {
            seal: seal.record.hash,
            keyid: keyid.clone(),
            reason: reason.to_string(),
        }
        .to_value())
    }

    /// The withdrawal of `keyid` is on disk (after [`TranscriptWriter::accept`]): the seal is
    /// superseded and a new seal is due.
    pub fn accept_withdrawal(&mut self, keyid: &KeyId) {
        if let Some(seal) = self.seal.take() {
            self.withdrawn = Some((seal.details, keyid.clone()));
        }
    }

    /// After a withdrawal: the new seal's artifacts and signers (the superseded seal's signers
    /// without the withdrawn one, in the same order).
    pub fn reseal(&self) -> Result<(Vec<FileDigest>, Vec<KeyId>), WriteError> {
        let Some((before, withdrawn)) = &self.withdrawn else {
            return Err(WriteError::SealSignature(
                "no signer was withdrawn: the seal in force stands".into(),
            ));
        };
        let signers = before
            .signers
            .iter()
            .filter(|k| *k != withdrawn)
            .cloned()
            .collect();
        Ok((before.artifacts.clone(), signers))
    }

    /// The bytes keyholder `keyid` signs to sign the seal in force ([`seal_message`]), if it is their turn: listed in the seal, not signed yet, next in
    /// the seal's order.
    pub fn seal_to_sign(&self, keyid: &KeyId) -> Result<Vec<u8>, WriteError> {
        let refuse = |r: String| WriteError::SealSignature(r);
        let Some(seal) = &self.seal else {
            return Err(refuse("the transcript has no seal record yet".into()));
        };
        let (details, signed) = (&seal.details, &seal.signed);
        if !details.signers.contains(keyid) {
            return Err(refuse(format!("key {keyid} is not listed in the seal")));
        }
        if signed.contains(keyid) {
            return Err(refuse(format!("key {keyid} has already signed the seal")));
        }
        if details.signers.len() == signed.len() {
            return Err(WriteError::Closed);
        }
        if let Some(next) = details.signers.get(signed.len())
            && next != keyid
        {
            return Err(refuse(format!(
                "the seal lists {next} to sign next, not {keyid} (seal signatures follow the seal's list of signers)"
            )));
        }
        Ok(seal_message(&seal.record))
    }

    /// The `seal-signature` record of `keyid` is on disk (after [`TranscriptWriter::accept`]).
    pub fn accept_seal_signature(&mut self, keyid: &KeyId) {
        if let Some(seal) = &mut self.seal {
            seal.signed.push(keyid.clone());
        }
    }

    /// The seal in force (its record), if any.
    pub fn seal(&self) -> Option<&Record> {
        self.seal.as_ref().map(|s| &s.record)
    }
}

/// Plan the resume of a transcript whose bytes are `bytes` (read whole): verify the chain of
/// the complete records, find a torn last line (a power cut mid-write), refuse a closed or
/// badly sealed transcript, and build the `resume` record's details (how many bytes are
/// discarded and their SHA-256), checked against the chain at `time`.
pub fn plan_resume(bytes: &[u8], time: Timestamp) -> Result<ResumePlan, WriteError> {
    let (complete, torn) = split_torn_tail(bytes);
    if complete.is_empty() {
        return Err(WriteError::NothingToResume {
            bytes: torn.map_or(0, |t| t.bytes),
        });
    }
    let verified = verify_chain(complete).map_err(WriteError::Chain)?;
    let mut seal = None;
    let mut withdrawn = None;
    if matches!(verified.state().phase(), Phase::Sealed | Phase::Withdrawn) {
        match verify_seal(&verified) {
            Ok(_) => return Err(WriteError::Closed),
            Err(SealError::MissingSignature { .. }) => {}
            Err(SealError::WithdrawnNotResealed { .. }) => {
                withdrawn = pending_withdrawal(&verified);
            }
            Err(source) => return Err(WriteError::Seal(source)),
        }
        if let Some(i) = verified.seal_index() {
            let r = verified.records()[i].clone();
            let details = SealDetails::from_value(r.details.clone(), "details").map_err(|e| {
                WriteError::Chain(ChainError {
                    line: i + 1,
                    seq: Some(r.seq),
                    kind: ChainErrorKind::BadDetails(e),
                })
            })?;
            let signed = verified.records()[i + 1..]
                .iter()
                .filter_map(|x| SealSignature::from_value(x.details.clone(), "details").ok())
                .map(|s| s.keyid)
                .collect();
            seal = Some(OpenSeal {
                record: r,
                details,
                signed,
            });
        }
    }
    let discarded = torn.as_ref().map_or(&[][..], |t| &bytes[t.offset..]);
    let details = ResumeDetails {
        discarded_bytes: discarded.len() as u64,
        discarded_sha256: sha256(discarded),
    };
    let writer = TranscriptWriter {
        state: verified.state().clone(),
        seal,
        withdrawn,
    };
    // Check the resume record (e.g. its time) before anything is cut.
    writer.build(SYSTEM_ACTOR, None, "resume", details.to_value(), time)?;
    Ok(ResumePlan {
        writer,
        torn,
        transcript: verified,
        details,
    })
}

/// The seal a signer was withdrawn from and that signer, when the transcript ends after the
/// withdrawal.
fn pending_withdrawal(t: &VerifiedTranscript) -> Option<(SealDetails, KeyId)> {
    let records = t.records();
    let w = records
        .iter()
        .rposition(|r| r.action == WITHDRAWAL_ACTION)?;
    let s = records[..w].iter().rposition(|r| r.action == "seal")?;
    let d = SealDetails::from_value(records[s].details.clone(), "details").ok()?;
    let k = SealWithdrawal::from_value(records[w].details.clone(), "details").ok()?;
    Some((d, k.keyid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Signer;
    use crate::signer::software::SoftwareSigner;
    use crate::transcript::details::BeginDetails;
    use crate::tuf::key::Algorithm;

    fn t(s: u32) -> Timestamp {
        Timestamp::parse(&format!("2026-11-23T05:00:{s:02}Z")).unwrap()
    }

    /// Build, "write" (to `out`) and accept one record.
    fn put(w: &mut TranscriptWriter, out: &mut Vec<u8>, actor: &str, action: &str, d: Value) {
        let time = t(w.state().next_seq() as u32);
        let r = w.build(actor, None, action, d, time).unwrap();
        out.extend_from_slice(r.to_line().as_bytes());
        w.accept(&r).unwrap();
    }

    #[test]
    fn seal_statements_go_out_in_the_seal_s_order_and_resume_plans_from_bytes_alone() {
        let mut alice = SoftwareSigner::from_seed(Algorithm::Ed25519, &[1; 32]).unwrap();
        let bob = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[2; 32]).unwrap();
        let mut w = TranscriptWriter::new();
        let mut out = Vec::new();
        let begin = BeginDetails::new("practice", b"s", false, vec![]).to_value();
        put(&mut w, &mut out, "admin", "begin", begin);
        assert!(matches!(
            w.seal_to_sign(&alice.key_id()),
            Err(WriteError::SealSignature(_))
        ));
        let seal = w.seal_details(
            vec![FileDigest::of("1.root.json", b"{}")],
            vec![alice.key_id(), bob.key_id()],
        );
        put(&mut w, &mut out, "admin", "seal", seal);
        // bob is listed second: not his turn yet.
        let e = w.seal_to_sign(&bob.key_id()).unwrap_err();
        assert!(e.to_string().contains("to sign next"), "{e}");
        let msg = w.seal_to_sign(&alice.key_id()).unwrap();
        assert_eq!(msg, seal_message(w.seal().unwrap()));
        let sig = SealSignature::new(alice.key().clone(), &alice.sign(&msg).unwrap());
        put(&mut w, &mut out, "alice", "seal-signature", sig.to_value());
        w.accept_seal_signature(&alice.key_id());
        assert!(w.seal_to_sign(&alice.key_id()).is_err(), "signed already");
        assert!(w.seal_to_sign(&bob.key_id()).is_ok());

        // A power cut in the next line: the plan cuts it and accounts for it, from the bytes.
        let complete = out.len();
        out.extend_from_slice(b"{\"actor\":\"bo");
        let plan = plan_resume(&out, t(9)).unwrap();
        let torn = plan.torn.clone().unwrap();
        assert_eq!((torn.offset, torn.bytes), (complete, 12));
        assert_eq!(plan.details.discarded_bytes, 12);
        assert_eq!(plan.transcript.records().len(), 3);
        // The seal in force and alice's signature are known again: bob signs next.
        assert!(plan.writer.seal_to_sign(&alice.key_id()).is_err());
        assert!(plan.writer.seal_to_sign(&bob.key_id()).is_ok());
        // A resume time before the last record's is refused before anything is cut.
        assert!(matches!(
            plan_resume(&out, t(0)),
            Err(WriteError::Refused(_))
        ));
        assert!(matches!(
            plan_resume(b"{\"act", t(9)),
            Err(WriteError::NothingToResume { bytes: 5 })
        ));
    }
}
