//! The auditor's verdict on a transcript, as data: chain, seal, artifacts. Pure: the bytes and
//! the artifacts found come in as arguments. The CLI renders it as text or JSON.
//!
//! Not checked here yet: that each step followed the script (needs the ceremony engine's replay).

use super::chain::{ChainError, TornTail, VerifiedTranscript, scan_chain, split_torn_tail};
use super::details::FileDigest;
use super::record::{Digest, Record};
use super::seal::{ArtifactCheck, SealError, VerifiedSeal, check_artifacts};

/// The outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Chain intact, sealed, every listed signer signed, artifacts (if given) match.
    Valid,
    /// `--partial`: chain intact up to `last_seq`, not (completely) sealed.
    Partial {
        /// Last good record.
        last_seq: u64,
        /// Why it is incomplete.
        why: String,
    },
    /// Tampered, malformed or unsealed: the first problem.
    Invalid(String),
}

/// What the auditor gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audit {
    /// Records that verified, in order (all of them when the chain is intact).
    pub records: Vec<Record>,
    /// Hash of the last good record.
    pub head: Option<Digest>,
    /// The first bad record, if any.
    pub chain_error: Option<ChainError>,
    /// A torn last line tolerated because a partial verification was asked for.
    pub torn: Option<TornTail>,
    /// The seal, when the chain verified.
    pub seal: Option<Result<VerifiedSeal, SealError>>,
    /// The artifacts folder compared with the seal (when a folder was given and the seal
    /// verified).
    pub artifacts: Option<ArtifactCheck>,
    /// The outcome.
    pub verdict: Verdict,
    /// Script conformance as the ceremony engine judged it (set by the caller that replays the
    /// events; `None`: not checked).
    pub conformance: Option<String>,
    /// Every role's keys before and after the ceremony, from the engine's replay (empty when
    /// not replayed).
    pub keys: Vec<crate::ceremony::engine::RoleKeyTable>,
}

impl Audit {
    /// Exit code 0 (valid, or partial when asked for) versus 1.
    pub fn passed(&self) -> bool {
        !matches!(self.verdict, Verdict::Invalid(_))
    }
}

/// Verify a transcript: `found` is the artifacts folder's content when one was given; `partial`
/// accepts a transcript that is not sealed yet (or whose last line is torn) and reports how far
/// it got.
pub fn audit(bytes: &[u8], found: Option<&[FileDigest]>, partial: bool) -> Audit {
    let (input, torn) = if partial {
        split_torn_tail(bytes)
    } else {
        (bytes, None)
    };
    let (records, state, chain_error) = scan_chain(input);
    let head = (!records.is_empty()).then(|| state.head());
    let mut a = Audit {
        records,
        head,
        chain_error: chain_error.clone(),
        torn,
        seal: None,
        artifacts: None,
        verdict: Verdict::Valid,
        conformance: None,
        keys: Vec::new(),
    };
    if let Some(e) = chain_error {
        a.verdict = Verdict::Invalid(e.to_string());
        return a;
    }
    let vt = VerifiedTranscript::from_verified_parts(a.records.clone(), state);
    let last_seq = vt.last_seq();
    let seal = super::seal::verify_seal(&vt);
    a.verdict = match &seal {
        Ok(s) => {
            if let Some(found) = found {
                let check = check_artifacts(&s.details.artifacts, found);
                let problem = check
                    .missing
                    .first()
                    .map(|m| format!("artifact {} listed in the seal is missing", m.name))
                    .or_else(|| {
                        check.mismatched.first().map(|m| {
                            format!(
                                "artifact {} differs from the seal (sealed sha256 {} length {}, found sha256 {} length {})",
                                m.expected.name,
                                hex::encode(m.expected.sha256),
                                m.expected.length,
                                hex::encode(m.found.sha256),
                                m.found.length
                            )
                        })
                    });
                a.artifacts = Some(check);
                match problem {
                    Some(p) => Verdict::Invalid(p),
                    None => Verdict::Valid,
                }
            } else {
                Verdict::Valid
            }
        }
        Err(e @ (SealError::NotSealed { .. } | SealError::MissingSignature { .. })) if partial => {
            Verdict::Partial {
                last_seq,
                why: e.to_string(),
            }
        }
        Err(e) => Verdict::Invalid(e.to_string()),
    };
    if let (Verdict::Valid, Some(t)) = (&a.verdict, &a.torn) {
        a.verdict = Verdict::Partial {
            last_seq,
            why: format!(
                "a torn last line of {} bytes follows the last record",
                t.bytes
            ),
        };
    }
    a.seal = Some(seal);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Signer;
    use crate::signer::software::SoftwareSigner;
    use crate::transcript::chain::ChainState;
    use crate::transcript::details::BeginDetails;
    use crate::transcript::record::Timestamp;
    use crate::transcript::seal::{SealDetails, SealSignature};
    use crate::tuf::canonical::Value;
    use crate::tuf::key::Algorithm;

    fn t(s: u32) -> Timestamp {
        Timestamp::parse(&format!("2026-11-23T06:00:{s:02}Z")).unwrap()
    }

    /// begin, one step, seal over `artifact`, one signature: all in memory.
    fn sealed(artifact: &FileDigest) -> Vec<String> {
        let mut signer = SoftwareSigner::from_seed(Algorithm::Ed25519, &[4; 32]).unwrap();
        let mut s = ChainState::new();
        let mut lines = Vec::new();
        let mut push = |s: &mut ChainState, actor: &str, action: &str, d: Value, n: u32| {
            let r = s.build(actor, None, action, d, t(n)).unwrap();
            s.accept(&r).unwrap();
            lines.push(r.to_line());
            r
        };
        let begin = BeginDetails::new("practice", b"x", false, vec![]).to_value();
        push(&mut s, "admin", "begin", begin, 0);
        push(&mut s, "admin", "export", Value::Null, 1);
        let seal = SealDetails {
            head: s.head(),
            artifacts: vec![artifact.clone()],
            signers: vec![signer.key_id()],
        };
        let seal = push(&mut s, "admin", "seal", seal.to_value(), 2);
        let sig = SealSignature::sign(&mut signer, &seal).unwrap();
        push(&mut s, "alice", "seal-signature", sig.to_value(), 3);
        lines
    }

    #[test]
    fn valid_partial_and_invalid() {
        let art = FileDigest::of("1.root.json", b"{}");
        let lines = sealed(&art);
        let all = lines.concat();
        assert_eq!(
            audit(all.as_bytes(), Some(std::slice::from_ref(&art)), false).verdict,
            Verdict::Valid
        );

        let other = FileDigest::of("1.root.json", b"{ }");
        let a = audit(all.as_bytes(), Some(&[other]), false);
        assert!(
            matches!(&a.verdict, Verdict::Invalid(w) if w.contains("differs")),
            "{a:?}"
        );
        assert!(!a.passed());

        let unsealed = lines[..2].concat();
        assert!(!audit(unsealed.as_bytes(), None, false).passed());
        let a = audit(unsealed.as_bytes(), None, true);
        assert!(
            matches!(a.verdict, Verdict::Partial { last_seq: 1, .. }),
            "{a:?}"
        );
        assert!(a.passed());

        let signing = lines[..3].concat();
        let a = audit(signing.as_bytes(), None, true);
        assert!(
            matches!(&a.verdict, Verdict::Partial { last_seq: 2, why } if why.contains("has not signed")),
            "{a:?}"
        );

        let torn = format!("{all}{{\"act");
        assert!(!audit(torn.as_bytes(), None, false).passed());
        let a = audit(torn.as_bytes(), None, true);
        assert!(
            matches!(a.verdict, Verdict::Partial { last_seq: 3, .. }),
            "{a:?}"
        );
        assert_eq!(a.torn.map(|t| t.bytes), Some(5));
    }

    #[test]
    fn the_good_prefix_and_the_first_bad_record_are_reported() {
        let lines = sealed(&FileDigest::of("a", b"a"));
        let broken = format!("{}{}", lines[0], lines[2]);
        let a = audit(broken.as_bytes(), None, true);
        assert_eq!(a.records.len(), 1);
        assert_eq!(a.head, Some(a.records[0].hash));
        let e = a.chain_error.unwrap();
        assert_eq!((e.line, e.seq), (2, Some(2)));
        assert!(a.seal.is_none());
        assert!(matches!(a.verdict, Verdict::Invalid(w) if w.starts_with("line 2 (seq 2)")));
    }
}
