//! The transcript's file edge: a transcript file written one record at a time with `fsync`,
//! created exclusively with an explicit mode, resumed after a power cut (a torn last line cut
//! off and accounted for), with a failpoint at each write, fsync and repair for the
//! fault-injection suite.
//!
//! Every decision is the pure [`TranscriptWriter`]'s (which record comes next, what may be
//! appended, how a file found on disk is resumed, what a keyholder signs to seal); this module
//! reads and writes the bytes and asks the keyholder's [`Signer`]. Times are arguments: the
//! clock belongs to the engine.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::signer::{Signer, SignerError};
use crate::transcript::chain::{ChainError, ChainErrorKind, ChainState, TornTail};
use crate::transcript::details::FileDigest;
use crate::transcript::seal::{SealError, SealSignature, WITHDRAWAL_ACTION, seal_message};
use crate::transcript::writer::{SYSTEM_ACTOR, TranscriptWriter, WriteError, plan_resume};
use crate::transcript::{Record, Timestamp, VerifiedTranscript};
use crate::tuf::canonical::{DEFAULT_MAX_FILE_SIZE, Value};
use crate::tuf::key::KeyId;

/// Why the transcript file could not be written or resumed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The operating system refused.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The file exists but its chain does not verify.
    #[error("{path}: {source}")]
    Chain {
        /// The file.
        path: PathBuf,
        /// The first bad record.
        source: ChainError,
    },
    /// The seal present in the file does not verify.
    #[error("{path}: {source}")]
    Seal {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: SealError,
    },
    /// The record would not verify, so it was not written.
    #[error("{path}: record not written: {source}")]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ChainErrorKind,
    },
    /// The file holds no complete record (the first write was torn): nothing to resume.
    #[error(
        "{path}: no complete record to resume from ({bytes} bytes of a torn first line); nothing was recorded: move the file aside and start again"
    )]
    NothingToResume {
        /// The file.
        path: PathBuf,
        /// Size of the torn line.
        bytes: usize,
    },
    /// Larger than Conclave reads: it is not resumed (and never cut).
    #[error("{path}: over the size limit of {limit} bytes; not resumed")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// Sealed and every signer signed: the transcript is closed.
    #[error(
        "{path}: the transcript is sealed and every signer has signed; nothing more can be appended"
    )]
    Closed {
        /// The file.
        path: PathBuf,
    },
    /// A seal signature cannot be added (no seal yet, signer not listed or already signed).
    #[error("{path}: seal signature not written: {reason}")]
    SealSignature {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An earlier write failed part way: the file must be reopened with `open_resume`.
    #[error("{path}: an earlier write failed; reopen the transcript to resume")]
    Poisoned {
        /// The file.
        path: PathBuf,
    },
}

impl FileError {
    /// The writer's refusal, about the file at `path`.
    fn of(path: &Path, e: WriteError) -> FileError {
        let path = path.to_path_buf();
        match e {
            WriteError::Chain(source) => FileError::Chain { path, source },
            WriteError::Seal(source) => FileError::Seal { path, source },
            WriteError::Refused(source) => FileError::Refused { path, source },
            WriteError::NothingToResume { bytes } => FileError::NothingToResume { path, bytes },
            WriteError::Closed => FileError::Closed { path },
            WriteError::SealSignature(reason) => FileError::SealSignature { path, reason },
        }
    }
}

/// What `open_resume` found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resumed {
    /// The torn last line that was cut off, if any.
    pub discarded: Option<TornTail>,
    /// seq of the last complete record before the resume.
    pub last_seq: u64,
    /// The records that were already there (verified): what the engine folds over to resume.
    pub transcript: VerifiedTranscript,
    /// The `resume` record appended.
    pub record: Record,
}

/// A transcript file open for appending.
#[derive(Debug)]
pub struct TranscriptFile {
    file: File,
    path: PathBuf,
    writer: TranscriptWriter,
    poisoned: bool,
    /// SLOW DISK (test builds only): the next append waits here before it writes
    /// ([`TranscriptFile::hold_next_append`]).
    #[cfg(test)]
    held: Option<std::sync::mpsc::Receiver<()>>,
}

fn io<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(std::io::Error) -> FileError + 'a {
    move |source| FileError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

impl TranscriptFile {
    /// Create a new transcript; an existing file is never overwritten. The folder is synced so
    /// the new name survives a power cut.
    pub fn create(path: &Path) -> Result<TranscriptFile, FileError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        crate::fault::point("transcript create");
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o644)
            .open(path)
            .map_err(io(path, "cannot create (it must not exist yet)"))?;
        // Readable by all, written by its owner only, whatever the umask.
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io(path, "cannot set the mode of"))?;
        sync_parent(path)?;
        Ok(TranscriptFile {
            file,
            path: path.to_path_buf(),
            writer: TranscriptWriter::new(),
            #[cfg(test)]
            held: None,
            poisoned: false,
        })
    }

    /// Open an existing transcript to continue it: verify the chain, cut off a torn last line
    /// (a power cut mid-write), and append a `resume` record (actor `conclave`) saying how many
    /// bytes were discarded and their SHA-256.
    pub fn open_resume(
        path: &Path,
        time: Timestamp,
    ) -> Result<(TranscriptFile, Resumed), FileError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(io(path, "cannot open"))?;
        let mut bytes = Vec::new();
        (&mut file)
            .take(DEFAULT_MAX_FILE_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(io(path, "cannot read"))?;
        if bytes.len() as u64 > DEFAULT_MAX_FILE_SIZE {
            // Never cut a file that was not read whole.
            return Err(FileError::TooLarge {
                path: path.to_path_buf(),
                limit: DEFAULT_MAX_FILE_SIZE,
            });
        }
        // The plan checked the resume record before anything is cut: the discarded bytes are
        // never cut without being accounted for.
        let plan = plan_resume(&bytes, time).map_err(|e| FileError::of(path, e))?;
        if let Some(t) = &plan.torn {
            crate::fault::point("transcript cut torn line");
            file.set_len(t.offset as u64)
                .map_err(io(path, "cannot cut off the torn last line"))?;
            crate::fault::point("transcript fsync after cut");
            file.sync_all()
                .map_err(io(path, "cannot sync after cutting the torn line"))?;
        }
        let mut tf = TranscriptFile {
            file,
            path: path.to_path_buf(),
            writer: plan.writer,
            poisoned: false,
            #[cfg(test)]
            held: None,
        };
        let last_seq = plan.transcript.last_seq();
        let record = tf.append(SYSTEM_ACTOR, None, "resume", plan.details.to_value(), time)?;
        Ok((
            tf,
            Resumed {
                discarded: plan.torn,
                last_seq,
                transcript: plan.transcript,
                record,
            },
        ))
    }

    /// The chain state after the last record written (head hash, next seq, last time).
    pub fn state(&self) -> &ChainState {
        self.writer.state()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SLOW DISK (test builds only): the next append waits before it writes until the returned
    /// sender sends (or is dropped, or a minute passed), as a write and fsync on a slow or
    /// failing USB medium take seconds.
    #[cfg(test)]
    pub(crate) fn hold_next_append(&mut self) -> std::sync::mpsc::Sender<()> {
        let (open, wait) = std::sync::mpsc::channel();
        self.held = Some(wait);
        open
    }

    /// FULL DISK (test builds only): from now on the records are written to `/dev/full`, where
    /// every write fails with `ENOSPC` (the kernel's own full-device behaviour).
    #[cfg(test)]
    pub(crate) fn fill_the_disk(&mut self) -> std::io::Result<()> {
        self.file = OpenOptions::new().append(true).open("/dev/full")?;
        Ok(())
    }

    /// Append one record: seq, prev and hash are computed; the record is checked as the verifier
    /// will check it (time not before the last record's, no secret-like fields, ...), written as
    /// one line and synced to disk before this returns.
    pub fn append(
        &mut self,
        actor: &str,
        step: Option<&str>,
        action: &str,
        details: Value,
        time: Timestamp,
    ) -> Result<Record, FileError> {
        if self.poisoned {
            return Err(FileError::Poisoned {
                path: self.path.clone(),
            });
        }
        let record = self
            .writer
            .build(actor, step, action, details, time)
            .map_err(|e| FileError::of(&self.path, e))?;
        let line = record.to_line();
        // Poisoned until the line is on disk: a half-written line is only repaired by resuming.
        self.poisoned = true;
        crate::fault::point(&format!("transcript append {action}"));
        #[cfg(test)]
        if let Some(gate) = self.held.take() {
            // A test that never opens the gate fails instead of hanging.
            let _ = gate.recv_timeout(std::time::Duration::from_secs(60));
        }
        self.file
            .write_all(line.as_bytes())
            .map_err(io(&self.path, "cannot write a record"))?;
        crate::fault::point(&format!("transcript fsync {action}"));
        self.file
            .sync_data()
            .map_err(io(&self.path, "cannot sync a record to disk"))?;
        self.poisoned = false;
        // Cannot fail: `build` checked the record against this state.
        self.writer
            .accept(&record)
            .map_err(|e| FileError::of(&self.path, e))?;
        Ok(record)
    }

    /// A signer withdrawn from the seal whose new seal is not written yet (a run interrupted
    /// between the two records): [`TranscriptFile::append_reseal`] writes it.
    pub fn withdrawal_pending(&self) -> Option<&KeyId> {
        self.writer.withdrawal_pending()
    }

    /// Withdraw a signer listed in the seal who has not signed it (their token died, or they
    /// had to leave), with the reason: appends the `seal-withdrawal` record. The new seal
    /// ([`TranscriptFile::append_reseal`]) must follow.
    pub fn append_seal_withdrawal(
        &mut self,
        actor: &str,
        keyid: &KeyId,
        reason: &str,
        time: Timestamp,
    ) -> Result<Record, FileError> {
        let details = self
            .writer
            .withdrawal(keyid, reason)
            .map_err(|e| FileError::of(&self.path, e))?;
        let record = self.append(actor, None, WITHDRAWAL_ACTION, details, time)?;
        self.writer.accept_withdrawal(keyid);
        Ok(record)
    }

    /// After a withdrawal: the new seal, over the same artifacts, listing the superseded seal's
    /// signers without the withdrawn one, in the same order.
    pub fn append_reseal(&mut self, actor: &str, time: Timestamp) -> Result<Record, FileError> {
        let (artifacts, signers) = self
            .writer
            .reseal()
            .map_err(|e| FileError::of(&self.path, e))?;
        self.append_seal(actor, None, artifacts, signers, time)
    }

    /// Append the `seal` record: it seals the current head, lists the exported artifacts and the
    /// key ids of the keyholders who will sign (each then signs with
    /// [`TranscriptFile::append_seal_signature`]).
    pub fn append_seal(
        &mut self,
        actor: &str,
        step: Option<&str>,
        artifacts: Vec<FileDigest>,
        signers: Vec<KeyId>,
        time: Timestamp,
    ) -> Result<Record, FileError> {
        let details = self.writer.seal_details(artifacts, signers);
        self.append(actor, step, "seal", details, time)
    }

    /// Have a keyholder's token sign the seal and append the `seal-signature` record.
    pub fn append_seal_signature(
        &mut self,
        actor: &str,
        signer: &mut dyn Signer,
        time: Timestamp,
    ) -> Result<Record, FileError> {
        let keyid = signer.key_id();
        let statement = self
            .writer
            .seal_to_sign(&keyid)
            .map_err(|e| FileError::of(&self.path, e))?;
        let details = signature_over(signer, &statement).map_err(|e| FileError::SealSignature {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let record = self.append(actor, None, "seal-signature", details.to_value(), time)?;
        self.writer.accept_seal_signature(&keyid);
        Ok(record)
    }
}

/// Have a keyholder's token sign the seal record `seal` (its [`seal_message`]): the details of
/// their `seal-signature` record.
pub fn sign_seal(signer: &mut dyn Signer, seal: &Record) -> Result<SealSignature, SignerError> {
    signature_over(signer, &seal_message(seal))
}

/// The signer's signature over the seal statement bytes `msg` (verified by the signer).
fn signature_over(signer: &mut dyn Signer, msg: &[u8]) -> Result<SealSignature, SignerError> {
    let sig = signer.sign(msg)?;
    Ok(SealSignature::new(signer.key().clone(), &sig))
}

fn sync_parent(path: &Path) -> Result<(), FileError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    crate::fault::point("transcript fsync folder");
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io(parent, "cannot sync the folder"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::details::BeginDetails;
    use crate::transcript::seal::{SealDetails, verify_seal};
    use crate::transcript::verify_chain;

    fn t(s: u32) -> Timestamp {
        Timestamp::parse(&format!("2026-11-23T05:00:{s:02}Z")).unwrap()
    }

    #[test]
    fn create_never_overwrites_and_append_syncs_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let mut f = TranscriptFile::create(&path).unwrap();
        let begin = BeginDetails::new("practice", b"s", false, vec![]).to_value();
        f.append("admin", None, "begin", begin, t(0)).unwrap();
        f.append("admin", Some("2"), "acknowledge", Value::from(1u64), t(1))
            .unwrap();
        assert!(matches!(
            TranscriptFile::create(&path),
            Err(FileError::Io { .. })
        ));
        let err = f
            .append("admin", None, "note", Value::Null, t(0))
            .unwrap_err();
        assert!(
            err.to_string().contains("before the previous record"),
            "{err}"
        );
        let bytes = std::fs::read(&path).unwrap();
        let v = verify_chain(&bytes).unwrap();
        assert_eq!(v.records().len(), 2);
        assert_eq!(v.head(), f.state().head());
    }

    #[test]
    fn seal_then_signatures_close_the_transcript() {
        use crate::signer::software::SoftwareSigner;
        use crate::tuf::key::Algorithm;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let mut f = TranscriptFile::create(&path).unwrap();
        let begin = BeginDetails::new("practice", b"s", false, vec![]).to_value();
        f.append("admin", None, "begin", begin, t(0)).unwrap();
        let mut alice = SoftwareSigner::from_seed(Algorithm::Ed25519, &[1; 32]).unwrap();
        let mut bob = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[2; 32]).unwrap();
        let mut mallory = SoftwareSigner::from_seed(Algorithm::Ed25519, &[3; 32]).unwrap();
        let early = f.append_seal_signature("alice", &mut alice, t(1));
        assert!(
            matches!(early, Err(FileError::SealSignature { .. })),
            "{early:?}"
        );
        let artifacts = vec![FileDigest::of("1.root.json", b"{}")];
        let signers = vec![alice.key_id(), bob.key_id()];
        let seal = f
            .append_seal("admin", Some("9"), artifacts, signers, t(1))
            .unwrap();
        let d = SealDetails::from_value(seal.details.clone(), "details").unwrap();
        assert_eq!(d.head, seal.prev);
        let outsider = f.append_seal_signature("mallory", &mut mallory, t(2));
        assert!(
            matches!(outsider, Err(FileError::SealSignature { .. })),
            "{outsider:?}"
        );
        f.append_seal_signature("alice", &mut alice, t(2)).unwrap();
        f.append_seal_signature("bob", &mut bob, t(3)).unwrap();
        let done = f.append_seal_signature("bob", &mut bob, t(4));
        assert!(
            matches!(done, Err(FileError::SealSignature { .. })),
            "{done:?}"
        );
        let vt = verify_chain(&std::fs::read(&path).unwrap()).unwrap();
        let sealed = verify_seal(&vt).unwrap();
        assert_eq!(sealed.signers.len(), 2);
        assert!(matches!(
            TranscriptFile::open_resume(&path, t(5)),
            Err(FileError::Closed { .. })
        ));
    }

    /// Three keyholders listed in the seal; alice signs, then bob's token dies.
    fn sealed_by_three(
        path: &Path,
    ) -> (TranscriptFile, [crate::signer::software::SoftwareSigner; 3]) {
        use crate::signer::software::SoftwareSigner;
        use crate::tuf::key::Algorithm;
        let mut f = TranscriptFile::create(path).unwrap();
        let begin = BeginDetails::new("practice", b"s", false, vec![]).to_value();
        f.append("admin", None, "begin", begin, t(0)).unwrap();
        let mut alice = SoftwareSigner::from_seed(Algorithm::Ed25519, &[1; 32]).unwrap();
        let bob = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[2; 32]).unwrap();
        let carol = SoftwareSigner::from_seed(Algorithm::Ed25519, &[4; 32]).unwrap();
        let artifacts = vec![FileDigest::of("1.root.json", b"{}")];
        let signers = vec![alice.key_id(), bob.key_id(), carol.key_id()];
        f.append_seal("admin", None, artifacts, signers, t(1))
            .unwrap();
        f.append_seal_signature("alice", &mut alice, t(2)).unwrap();
        (f, [alice, bob, carol])
    }

    fn seal_of(path: &Path) -> Result<crate::transcript::VerifiedSeal, SealError> {
        verify_seal(&verify_chain(&std::fs::read(path).unwrap()).unwrap())
    }

    #[test]
    fn a_withdrawn_signer_and_a_new_seal_verify_and_nothing_less() {
        use crate::signer::software::SoftwareSigner;
        use crate::tuf::key::Algorithm;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let (mut f, [mut alice, bob, mut carol]) = sealed_by_three(&path);
        let mallory = SoftwareSigner::from_seed(Algorithm::Ed25519, &[3; 32]).unwrap();
        // Only a listed signer who has not signed is withdrawn.
        for (k, why) in [(&alice, "has signed"), (&mallory, "not listed")] {
            let e = f.append_seal_withdrawal("admin", &k.key_id(), "x", t(3));
            assert!(matches!(e, Err(FileError::SealSignature { .. })), "{why}");
        }
        let first = f.writer.seal().unwrap().hash;
        f.append_seal_withdrawal("admin", &bob.key_id(), "token dead after the seal", t(3))
            .unwrap();
        // A withdrawal without a new seal does not verify (cut off after the withdrawal).
        assert!(
            matches!(
                seal_of(&path),
                Err(SealError::WithdrawnNotResealed { ref keyid, .. }) if *keyid == bob.key_id()
            ),
            "{:?}",
            seal_of(&path)
        );
        // Interrupted here: the resume knows the new seal is due.
        drop(f);
        let (mut f, _) = TranscriptFile::open_resume(&path, t(4)).unwrap();
        assert_eq!(f.withdrawal_pending(), Some(&bob.key_id()));
        let new = f.append_reseal("admin", t(4)).unwrap();
        let d = SealDetails::from_value(new.details.clone(), "details").unwrap();
        assert_eq!(d.signers, vec![alice.key_id(), carol.key_id()]);
        // alice signs again: her first signature was over the superseded seal.
        f.append_seal_signature("alice", &mut alice, t(5)).unwrap();
        assert!(matches!(
            seal_of(&path),
            Err(SealError::MissingSignature { ref keyid, .. }) if *keyid == carol.key_id()
        ));
        f.append_seal_signature("carol", &mut carol, t(6)).unwrap();
        let sealed = seal_of(&path).unwrap();
        assert_eq!(sealed.seal_hash, new.hash);
        assert_eq!(sealed.signers.len(), 2);
        assert_eq!(sealed.withdrawals.len(), 1);
        let w = &sealed.withdrawals[0];
        assert_eq!(w.keyid, bob.key_id());
        assert_eq!(w.reason, "token dead after the seal");
        assert_eq!(w.seal_hash, first);
        assert_eq!(w.signed, vec![alice.key_id()]);
        // A forged transcript that drops the last seal signature still fails.
        let bytes = std::fs::read(&path).unwrap();
        let cut = &bytes[..bytes[..bytes.len() - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .unwrap()
            + 1];
        let t2 = verify_chain(cut).unwrap();
        assert!(matches!(
            verify_seal(&t2),
            Err(SealError::MissingSignature { .. })
        ));
    }

    #[test]
    fn a_withdrawal_cannot_replace_a_missing_signature_nor_change_the_signers() {
        let dir = tempfile::tempdir().unwrap();
        // A transcript whose last signatures were cut off: carol's and bob's are missing.
        let path = dir.path().join("t.jsonl");
        let (mut f, [_, bob, carol]) = sealed_by_three(&path);
        let alice_sig = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .last()
            .map(|l| crate::transcript::record::Record::parse_line(l.as_bytes()).unwrap())
            .unwrap();
        // The forger withdraws bob and writes a new seal, but cannot sign it with carol's or
        // alice's key: replaying alice's old signature does not verify over the new seal.
        f.append_seal_withdrawal("admin", &bob.key_id(), "forged", t(3))
            .unwrap();
        f.append_reseal("admin", t(4)).unwrap();
        f.append("alice", None, "seal-signature", alice_sig.details, t(5))
            .unwrap();
        assert!(
            matches!(seal_of(&path), Err(SealError::BadSignature { .. })),
            "{:?}",
            seal_of(&path)
        );
        // A new seal that drops another signer too is refused.
        let path2 = dir.path().join("t2.jsonl");
        let (mut f2, [alice, bob, _]) = sealed_by_three(&path2);
        let artifacts =
            SealDetails::from_value(f2.writer.seal().unwrap().details.clone(), "details")
                .unwrap()
                .artifacts;
        f2.append_seal_withdrawal("admin", &bob.key_id(), "token dead", t(3))
            .unwrap();
        f2.append_seal("admin", None, artifacts, vec![alice.key_id()], t(4))
            .unwrap();
        assert!(
            matches!(seal_of(&path2), Err(SealError::BadReseal { .. })),
            "{:?}",
            seal_of(&path2)
        );
        // A seal after a seal without a withdrawal does not fit the chain.
        let e = f2.append_seal("admin", None, vec![], vec![carol.key_id()], t(5));
        assert!(matches!(e, Err(FileError::Refused { .. })), "{e:?}");
    }

    #[test]
    fn a_torn_first_line_is_not_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(&path, b"{\"act").unwrap();
        assert!(matches!(
            TranscriptFile::open_resume(&path, t(0)),
            Err(FileError::NothingToResume { bytes: 5, .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"act");
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(
            TranscriptFile::open_resume(&path, t(0)),
            Err(FileError::NothingToResume { bytes: 0, .. })
        ));
    }
}
