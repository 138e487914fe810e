//! The seal: a `seal` record listing every exported artifact and the key ids of the keyholders
//! who will sign, then one `seal-signature` record per keyholder over the statement
//! `{"_type": "conclave-transcript-seal", "head": HEX, "seq": N}` (N and HEX: the seal record's
//! `seq` and `hash`).
//!
//! The seal names its signers, so cutting signatures off the end is detected like any other
//! truncation.
//!
//! A listed signer whose token dies after the seal is written (or who has to leave) is
//! withdrawn by the administrator: a `seal-withdrawal` record names the seal (its hash), the
//! signer's key id and the reason, and is followed by a new `seal` record over the same
//! artifacts listing the remaining signers in the same order, which all sign it. The superseded
//! seal's signatures stay in the transcript; the new seal's hash covers them and the
//! withdrawal. Truncation stays detected: a transcript that ends after a withdrawal, or whose
//! last seal lacks a listed signature, does not verify, and only the listed signers' keys can
//! produce the new seal's signatures.

use crate::tuf::canonical::{Map, Value};
use crate::tuf::key::{Key, KeyId};
use crate::tuf::metadata::key_from_value;
use crate::tuf::parse::{FieldError, Fields, index_path};

use super::chain::VerifiedTranscript;
use super::details::{FileDigest, no_rest};
use super::record::{Digest, Record, parse_digest};

/// The `_type` of the statement keyholders sign.
pub const SEAL_TYPE: &str = "conclave-transcript-seal";

/// `details` of the `seal` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealDetails {
    /// The head this seal closes: the hash of the record before the seal (equal to its `prev`).
    pub head: Digest,
    /// Every exported artifact.
    pub artifacts: Vec<FileDigest>,
    /// Key ids of the keyholders who sign the seal, each exactly once.
    pub signers: Vec<KeyId>,
}

impl SealDetails {
    /// As JSON.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("head".into(), hex::encode(self.head).into());
        m.insert(
            "artifacts".into(),
            Value::Array(self.artifacts.iter().map(FileDigest::to_value).collect()),
        );
        m.insert(
            "signers".into(),
            Value::Array(
                self.signers
                    .iter()
                    .map(|k| Value::String(k.0.clone()))
                    .collect(),
            ),
        );
        Value::Object(m)
    }

    /// Read from a `seal` record's details: artifact names unique and safe, at least one signer,
    /// no signer listed twice.
    pub fn from_value(v: Value, path: &str) -> Result<SealDetails, FieldError> {
        let mut f = Fields::new(v, path)?;
        let head_s = f.string("head")?;
        let head = parse_digest(&head_s).ok_or_else(|| {
            FieldError::new(f.child("head"), "not a SHA-256 in 64 lower-case hex digits")
        })?;
        let apath = f.child("artifacts");
        let artifacts = f
            .array("artifacts")?
            .into_iter()
            .enumerate()
            .map(|(i, v)| FileDigest::from_value(v, &index_path(&apath, i)))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in artifacts.iter().enumerate() {
            if artifacts[..i].iter().any(|b| b.name == a.name) {
                return Err(FieldError::new(
                    format!("{}.name", index_path(&apath, i)),
                    format!("artifact \"{}\" is listed twice", a.name.escape_debug()),
                ));
            }
        }
        let spath = f.child("signers");
        let mut signers = Vec::new();
        for (i, v) in f.array("signers")?.into_iter().enumerate() {
            let p = index_path(&spath, i);
            let id = match v {
                Value::String(s) => KeyId(s),
                other => {
                    return Err(FieldError::new(
                        p,
                        format!("expected a key id string, found {}", other.type_name()),
                    ));
                }
            };
            if signers.contains(&id) {
                return Err(FieldError::new(p, format!("key id {id} is listed twice")));
            }
            signers.push(id);
        }
        if signers.is_empty() {
            return Err(FieldError::new(spath, "a seal needs at least one signer"));
        }
        no_rest(f)?;
        Ok(SealDetails {
            head,
            artifacts,
            signers,
        })
    }
}

/// The statement each keyholder signs: its canonical bytes are the signed message.
pub fn seal_statement(seal_seq: u64, seal_hash: &Digest) -> Value {
    let mut m = Map::new();
    m.insert("_type".into(), SEAL_TYPE.into());
    m.insert("head".into(), hex::encode(seal_hash).into());
    m.insert("seq".into(), Value::from(seal_seq));
    Value::Object(m)
}

/// The bytes a keyholder signs to sign the seal record `seal`: the canonical bytes of its
/// [`seal_statement`].
pub fn seal_message(seal: &Record) -> Vec<u8> {
    seal_statement(seal.seq, &seal.hash).canonical_bytes()
}

/// `details` of a `seal-signature` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealSignature {
    /// The signer's key id (must equal `key.key_id()`).
    pub keyid: KeyId,
    /// The signer's public key as a TUF key object.
    pub key: Key,
    /// Signature in hex over the canonical bytes of [`seal_statement`].
    pub sig: String,
}

impl SealSignature {
    /// The details of a keyholder's signature `sig` (made over [`seal_message`] of the seal
    /// record) by `key`. Not verified here: the keyholder's signer verified it before returning
    /// it, and [`verify_seal`] verifies every one when the transcript is read.
    pub fn new(key: Key, sig: &[u8]) -> SealSignature {
        SealSignature {
            keyid: key.key_id(),
            key,
            sig: hex::encode(sig),
        }
    }

    /// As JSON.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("keyid".into(), self.keyid.0.clone().into());
        m.insert("key".into(), self.key.to_value());
        m.insert("sig".into(), self.sig.clone().into());
        Value::Object(m)
    }

    /// Read from a `seal-signature` record's details.
    pub fn from_value(v: Value, path: &str) -> Result<SealSignature, FieldError> {
        let mut f = Fields::new(v, path)?;
        let keyid = KeyId(f.string("keyid")?);
        let kpath = f.child("key");
        let key = key_from_value(f.take("key")?, &kpath)?;
        let sig = f.string("sig")?;
        no_rest(f)?;
        Ok(SealSignature { keyid, key, sig })
    }
}

/// The action of a withdrawal record.
pub const WITHDRAWAL_ACTION: &str = "seal-withdrawal";

/// Longest reason a withdrawal records (characters).
pub const WITHDRAWAL_REASON_MAX: usize = crate::ceremony::engine::MAX_REASON_CHARS;

/// Whether a record's action belongs to the transcript itself (its start, resumes and the seal)
/// rather than to the ceremony engine: these records carry no engine event.
pub fn is_transcript_action(action: &str) -> bool {
    matches!(
        action,
        "begin" | "resume" | "seal" | "seal-signature" | WITHDRAWAL_ACTION
    )
}

/// `details` of a `seal-withdrawal` record: a signer listed in the seal `seal` (its hash) does
/// not sign it, and why; a new seal without that signer follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealWithdrawal {
    /// Hash of the seal record superseded.
    pub seal: Digest,
    /// The withdrawn signer's key id, as the seal lists it.
    pub keyid: KeyId,
    /// Why (recorded by the administrator).
    pub reason: String,
}

impl SealWithdrawal {
    /// As JSON.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("seal".into(), hex::encode(self.seal).into());
        m.insert("keyid".into(), self.keyid.0.clone().into());
        m.insert("reason".into(), self.reason.clone().into());
        Value::Object(m)
    }

    /// Read from a `seal-withdrawal` record's details: a reason of 1 to
    /// [`WITHDRAWAL_REASON_MAX`] characters.
    pub fn from_value(v: Value, path: &str) -> Result<SealWithdrawal, FieldError> {
        let mut f = Fields::new(v, path)?;
        let seal_s = f.string("seal")?;
        let seal = parse_digest(&seal_s).ok_or_else(|| {
            FieldError::new(f.child("seal"), "not a SHA-256 in 64 lower-case hex digits")
        })?;
        let keyid = KeyId(f.string("keyid")?);
        let reason = f.string("reason")?;
        let n = reason.trim().chars().count();
        if n == 0 || n > WITHDRAWAL_REASON_MAX {
            return Err(FieldError::new(
                f.child("reason"),
                format!("a withdrawal gives its reason (1 to {WITHDRAWAL_REASON_MAX} characters)"),
            ));
        }
        no_rest(f)?;
        Ok(SealWithdrawal {
            seal,
            keyid,
            reason,
        })
    }
}

/// Why a sealed transcript does not verify, naming the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// There is no `seal` record: the transcript is incomplete or was cut short.
    #[error(
        "no seal: the transcript ends at seq {last_seq} without a seal record (truncated, or the ceremony did not finish)"
    )]
    NotSealed {
        /// Last record present.
        last_seq: u64,
    },
    /// A `seal-signature` record is not well formed.
    #[error("line {line} (seq {seq}): {source}")]
    BadRecord {
        /// 1-based line.
        line: usize,
        /// The record's seq.
        seq: u64,
        /// What is wrong.
        source: FieldError,
    },
    /// The key id is not the SHA-256 of the key object.
    #[error(
        "line {line} (seq {seq}): field \"details.keyid\": {recorded} is not the key id of the key given ({computed})"
    )]
    KeyIdMismatch {
        /// 1-based line.
        line: usize,
        /// The record's seq.
        seq: u64,
        /// As written.
        recorded: KeyId,
        /// `key.key_id()`.
        computed: KeyId,
    },
    /// Signed by a key the seal does not list.
    #[error(
        "line {line} (seq {seq}): key {keyid} signed, but the seal does not list it as a signer"
    )]
    UnexpectedSigner {
        /// 1-based line.
        line: usize,
        /// The record's seq.
        seq: u64,
        /// The signer.
        keyid: KeyId,
    },
    /// The same key signed twice (under the same or another key id).
    #[error("line {line} (seq {seq}): key {keyid} already signed the seal at seq {first_seq}")]
    DuplicateSigner {
        /// 1-based line.
        line: usize,
        /// The record's seq.
        seq: u64,
        /// The signer.
        keyid: KeyId,
        /// The earlier signature's record.
        first_seq: u64,
    },
    /// The signature does not verify.
    #[error(
        "line {line} (seq {seq}): field \"details.sig\": signature by {keyid} does not verify: {reason}"
    )]
    BadSignature {
        /// 1-based line.
        line: usize,
        /// The record's seq.
        seq: u64,
        /// The signer.
        keyid: KeyId,
        /// Why.
        reason: String,
    },
    /// Seal signatures are not in the order the seal lists their signers (records after the seal
    /// were reordered: only the seal hash is signed, so its list of signers fixes their order).
    #[error(
        "line {line} (seq {seq}): key {keyid} signed out of order: the seal lists {expected} next (seal signatures were reordered after the seal)"
    )]
    OutOfOrder {
        /// 1-based line.
        line: usize,
        /// The record's seq.
        seq: u64,
        /// The signer found.
        keyid: KeyId,
        /// The signer the seal lists at this place.
        expected: KeyId,
    },
    /// A record follows the last listed signer's signature (the transcript was closed there).
    #[error("line {line} (seq {seq}): every listed signer had signed the seal; nothing may follow")]
    AfterClose {
        /// 1-based line.
        line: usize,
        /// The record's seq.
        seq: u64,
    },
    /// A withdrawal names another seal, a signer the seal does not list, or one who signed.
    #[error("line {line} (seq {seq}): seal-withdrawal: {reason}")]
    BadWithdrawal {
        /// 1-based line.
        line: usize,
        /// The record's seq.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The transcript ends after a withdrawal, without the new seal (truncated?).
    #[error(
        "line {line} (seq {seq}): signer {keyid} was withdrawn from the seal but no new seal follows (truncated?)"
    )]
    WithdrawnNotResealed {
        /// 1-based line of the withdrawal.
        line: usize,
        /// Its seq.
        seq: u64,
        /// The withdrawn signer.
        keyid: KeyId,
    },
    /// The seal after a withdrawal is not the superseded seal without the withdrawn signer.
    #[error("line {line} (seq {seq}): the new seal after a withdrawal {reason}")]
    BadReseal {
        /// 1-based line.
        line: usize,
        /// The record's seq.
        seq: u64,
        /// What differs.
        reason: String,
    },
    /// A listed signer has no signature (the end of the transcript was cut off, or a keyholder
    /// did not sign).
    #[error(
        "after line {line} (seq {last_seq}): signer {keyid} listed in the seal has not signed (truncated?)"
    )]
    MissingSignature {
        /// Last line of the transcript.
        line: usize,
        /// Last seq of the transcript.
        last_seq: u64,
        /// The missing signer.
        keyid: KeyId,
    },
}

impl SealError {
    /// The seq of the record the error is about (the last record for missing parts).
    pub fn seq(&self) -> u64 {
        match self {
            SealError::NotSealed { last_seq } | SealError::MissingSignature { last_seq, .. } => {
                *last_seq
            }
            SealError::BadRecord { seq, .. }
            | SealError::KeyIdMismatch { seq, .. }
            | SealError::UnexpectedSigner { seq, .. }
            | SealError::DuplicateSigner { seq, .. }
            | SealError::OutOfOrder { seq, .. }
            | SealError::BadSignature { seq, .. }
            | SealError::BadWithdrawal { seq, .. }
            | SealError::WithdrawnNotResealed { seq, .. }
            | SealError::BadReseal { seq, .. }
            | SealError::AfterClose { seq, .. } => *seq,
        }
    }
}

/// A keyholder whose seal signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealSigner {
    /// Key id.
    pub keyid: KeyId,
    /// The key.
    pub key: Key,
    /// The record's actor.
    pub actor: String,
    /// The record's seq.
    pub seq: u64,
    /// The signature (hex) over the seal statement.
    pub sig: String,
}

/// A seal superseded because one of its signers was withdrawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withdrawal {
    /// seq of the superseded seal record.
    pub seal_seq: u64,
    /// Its hash.
    pub seal_hash: Digest,
    /// seq of the withdrawal record.
    pub seq: u64,
    /// Who recorded it (the record's actor).
    pub actor: String,
    /// The withdrawn signer.
    pub keyid: KeyId,
    /// Why.
    pub reason: String,
    /// Signers whose signature of the superseded seal verified before the withdrawal.
    pub signed: Vec<KeyId>,
}

/// A seal whose every signature verified and whose every listed signer signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSeal {
    /// seq of the seal record.
    pub seal_seq: u64,
    /// Hash of the seal record: what the keyholders signed and the witnesses write down.
    pub seal_hash: Digest,
    /// The seal's contents.
    pub details: SealDetails,
    /// Signatures in transcript order.
    pub signers: Vec<SealSigner>,
    /// Seals superseded before this one, each with the withdrawal that superseded it, in order.
    pub withdrawals: Vec<Withdrawal>,
}

/// Verify the seal of a transcript whose chain verified: the seal in force (the last) signed
/// by every signer it lists, and every seal before it superseded by a withdrawal of one of its
/// unsigned signers, followed by a seal over the same artifacts listing the others in order.
pub fn verify_seal(t: &VerifiedTranscript) -> Result<VerifiedSeal, SealError> {
    let records = t.records();
    let last_seq = t.last_seq();
    let seals: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.action == "seal")
        .map(|(i, _)| i)
        .collect();
    if seals.is_empty() {
        return Err(SealError::NotSealed { last_seq });
    }
    let mut withdrawals: Vec<Withdrawal> = Vec::new();
    let mut previous: Option<(SealDetails, KeyId)> = None;
    for (n, &seal_index) in seals.iter().enumerate() {
        let seal = &records[seal_index];
        let line = seal_index + 1;
        // The chain already checked the shape; read it again rather than trusting a cache.
        let details =
            SealDetails::from_value(seal.details.clone(), "details").map_err(|source| {
                SealError::BadRecord {
                    line,
                    seq: seal.seq,
                    source,
                }
            })?;
        if let Some((before, withdrawn)) = previous.take() {
            check_reseal(&before, &withdrawn, &details).map_err(|reason| SealError::BadReseal {
                line,
                seq: seal.seq,
                reason,
            })?;
        }
        let end = seals.get(n + 1).copied().unwrap_or(records.len());
        let segment = verify_seal_segment(records, seal_index, end, &details)?;
        match segment.withdrawal {
            Some(w) => {
                previous = Some((details, w.keyid.clone()));
                withdrawals.push(Withdrawal {
                    signed: segment
                        .signers
                        .iter()
                        .map(|(s, _)| s.keyid.clone())
                        .collect(),
                    ..w
                });
            }
            None if n + 1 < seals.len() => {
                // The chain refuses a seal after a seal without a withdrawal between them.
                return Err(SealError::BadReseal {
                    line: seals[n + 1] + 1,
                    seq: records[seals[n + 1]].seq,
                    reason: "follows a seal that no signer was withdrawn from".into(),
                });
            }
            None => {
                if let Some(missing) = details
                    .signers
                    .iter()
                    .find(|id| !segment.signers.iter().any(|(s, _)| &s.keyid == *id))
                {
                    return Err(SealError::MissingSignature {
                        line: records.len(),
                        last_seq,
                        keyid: missing.clone(),
                    });
                }
                return Ok(VerifiedSeal {
                    seal_seq: seal.seq,
                    seal_hash: seal.hash,
                    details,
                    signers: segment.signers.into_iter().map(|(s, _)| s).collect(),
                    withdrawals,
                });
            }
        }
    }
    // The last seal was withdrawn from and no new seal follows.
    let w = withdrawals.last().map_or_else(
        || SealError::NotSealed { last_seq },
        |w| SealError::WithdrawnNotResealed {
            line: records
                .iter()
                .position(|r| r.seq == w.seq)
                .map_or(0, |i| i + 1),
            seq: w.seq,
            keyid: w.keyid.clone(),
        },
    );
    Err(w)
}

/// The seal after a withdrawal lists the same artifacts and the superseded seal's signers
/// without the withdrawn one, in the same order.
fn check_reseal(
    before: &SealDetails,
    withdrawn: &KeyId,
    after: &SealDetails,
) -> Result<(), String> {
    if after.artifacts != before.artifacts {
        return Err("lists other artifacts than the seal it supersedes".into());
    }
    let expected: Vec<&KeyId> = before.signers.iter().filter(|k| *k != withdrawn).collect();
    if after.signers.iter().collect::<Vec<_>>() != expected {
        return Err(format!(
            "must list the superseded seal's signers without {withdrawn}, in the same order ({})",
            expected
                .iter()
                .map(|k| k.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// What follows one seal record up to the next seal (or the end).
struct Segment {
    signers: Vec<(SealSigner, Vec<u8>)>,
    withdrawal: Option<Withdrawal>,
}

/// Verify the records after the seal at `seal_index` up to `end`: each signature by a listed
/// signer, in the listed order, once; a withdrawal names this seal and a listed signer who has
/// not signed; nothing after the last listed signature.
fn verify_seal_segment(
    records: &[Record],
    seal_index: usize,
    end: usize,
    details: &SealDetails,
) -> Result<Segment, SealError> {
    let seal = &records[seal_index];
    let msg = seal_statement(seal.seq, &seal.hash).canonical_bytes();
    let mut signers: Vec<(SealSigner, Vec<u8>)> = Vec::new();
    let mut withdrawal = None;
    for (i, r) in records.iter().enumerate().take(end).skip(seal_index + 1) {
        let (line, seq) = (i + 1, r.seq);
        if signers.len() == details.signers.len() {
            // The writer closes the transcript with the last listed signature.
            return Err(SealError::AfterClose { line, seq });
        }
        if r.action == WITHDRAWAL_ACTION {
            let w = SealWithdrawal::from_value(r.details.clone(), "details")
                .map_err(|source| SealError::BadRecord { line, seq, source })?;
            let bad = |reason: String| SealError::BadWithdrawal { line, seq, reason };
            if w.seal != seal.hash {
                return Err(bad(format!(
                    "names seal {}, not the seal in force (seq {})",
                    hex::encode(w.seal),
                    seal.seq
                )));
            }
            if !details.signers.contains(&w.keyid) {
                return Err(bad(format!("the seal does not list {}", w.keyid)));
            }
            if signers.iter().any(|(s, _)| s.keyid == w.keyid) {
                return Err(bad(format!("{} has signed the seal already", w.keyid)));
            }
            if details.signers.len() < 2 {
                return Err(bad(format!(
                    "{} is the seal's only signer: no one would be left to sign",
                    w.keyid
                )));
            }
            withdrawal = Some(Withdrawal {
                seal_seq: seal.seq,
                seal_hash: seal.hash,
                seq,
                actor: r.actor.clone(),
                keyid: w.keyid,
                reason: w.reason,
                signed: Vec::new(),
            });
            continue;
        }
        if r.action != "seal-signature" {
            continue;
        }
        let s = SealSignature::from_value(r.details.clone(), "details")
            .map_err(|source| SealError::BadRecord { line, seq, source })?;
        let computed = s.key.key_id();
        if computed != s.keyid {
            return Err(SealError::KeyIdMismatch {
                line,
                seq,
                recorded: s.keyid,
                computed,
            });
        }
        if !details.signers.contains(&s.keyid) {
            return Err(SealError::UnexpectedSigner {
                line,
                seq,
                keyid: s.keyid,
            });
        }
        let bad = |reason: String, keyid: &KeyId| SealError::BadSignature {
            line,
            seq,
            keyid: keyid.clone(),
            reason,
        };
        let pk = s
            .key
            .public_key()
            .map_err(|e| bad(e.to_string(), &s.keyid))?;
        let material = pk.material();
        if let Some((first, _)) = signers.iter().find(|(_, m)| *m == material) {
            return Err(SealError::DuplicateSigner {
                line,
                seq,
                keyid: s.keyid,
                first_seq: first.seq,
            });
        }
        s.key
            .verify_hex(&msg, &s.sig)
            .map_err(|e| bad(e.to_string(), &s.keyid))?;
        // The writer appends the signatures in the order the seal lists their signers.
        if let Some(expected) = details.signers.get(signers.len())
            && *expected != s.keyid
        {
            return Err(SealError::OutOfOrder {
                line,
                seq,
                keyid: s.keyid,
                expected: expected.clone(),
            });
        }
        signers.push((
            SealSigner {
                keyid: s.keyid,
                key: s.key,
                actor: r.actor.clone(),
                seq,
                sig: s.sig,
            },
            material,
        ));
    }
    Ok(Segment {
        signers,
        withdrawal,
    })
}

/// A file found in the artifacts folder.
pub type FoundFile = FileDigest;

/// One listed artifact whose bytes differ from the seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactMismatch {
    /// As the seal lists it.
    pub expected: FileDigest,
    /// As found.
    pub found: FileDigest,
}

/// The artifacts folder compared with the seal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArtifactCheck {
    /// Listed and identical (name).
    pub matching: Vec<String>,
    /// Listed but absent.
    pub missing: Vec<FileDigest>,
    /// Listed but with other bytes.
    pub mismatched: Vec<ArtifactMismatch>,
    /// Present but not listed (reported, not a failure: the transcript itself and the script
    /// usually sit beside the artifacts).
    pub unlisted: Vec<String>,
}

impl ArtifactCheck {
    /// Every listed artifact is present with its hash and length.
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.mismatched.is_empty()
    }
}

/// Compare the seal's artifact list with the files found in a folder.
pub fn check_artifacts(listed: &[FileDigest], found: &[FoundFile]) -> ArtifactCheck {
    let mut check = ArtifactCheck::default();
    for a in listed {
        match found.iter().find(|f| f.name == a.name) {
            None => check.missing.push(a.clone()),
            Some(f) if f.sha256 == a.sha256 && f.length == a.length => {
                check.matching.push(a.name.clone())
            }
            Some(f) => check.mismatched.push(ArtifactMismatch {
                expected: a.clone(),
                found: f.clone(),
            }),
        }
    }
    check.unlisted = found
        .iter()
        .filter(|f| !listed.iter().any(|a| a.name == f.name))
        .map(|f| f.name.clone())
        .collect();
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_bytes_are_fixed() {
        let v = seal_statement(7, &[0xab; 32]);
        assert_eq!(
            String::from_utf8(v.canonical_bytes()).unwrap(),
            format!(
                "{{\"_type\":\"conclave-transcript-seal\",\"head\":\"{}\",\"seq\":7}}",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn seal_details_refuse_duplicates_and_no_signers() {
        let a = FileDigest::of("1.root.json", b"x");
        let good = SealDetails {
            head: [1; 32],
            artifacts: vec![a.clone()],
            signers: vec![KeyId("k1".into())],
        };
        assert_eq!(
            SealDetails::from_value(good.to_value(), "details").unwrap(),
            good
        );
        let mut twice = good.clone();
        twice.artifacts.push(a);
        assert_eq!(
            SealDetails::from_value(twice.to_value(), "details")
                .unwrap_err()
                .path,
            "details.artifacts[1].name"
        );
        let mut none = good.clone();
        none.signers.clear();
        assert_eq!(
            SealDetails::from_value(none.to_value(), "details")
                .unwrap_err()
                .path,
            "details.signers"
        );
        let mut dup = good;
        dup.signers.push(KeyId("k1".into()));
        assert_eq!(
            SealDetails::from_value(dup.to_value(), "details")
                .unwrap_err()
                .path,
            "details.signers[1]"
        );
    }

    #[test]
    fn artifacts_are_compared_by_name_hash_and_length() {
        let listed = vec![
            FileDigest::of("a", b"aaa"),
            FileDigest::of("b", b"bbb"),
            FileDigest::of("c", b"ccc"),
        ];
        let found = vec![
            FileDigest::of("a", b"aaa"),
            FileDigest::of("b", b"bbB"),
            FileDigest::of("d", b"ddd"),
        ];
        let c = check_artifacts(&listed, &found);
        assert_eq!(c.matching, vec!["a".to_string()]);
        assert_eq!(c.mismatched.len(), 1);
        assert_eq!(c.mismatched[0].expected.name, "b");
        assert_eq!(c.missing, vec![FileDigest::of("c", b"ccc")]);
        assert_eq!(c.unlisted, vec!["d".to_string()]);
        assert!(!c.is_ok());
        assert!(check_artifacts(&listed, &listed).is_ok());
    }
}
