//! The auditor's verdict on a transcript, as data: chain, seal, artifacts. Pure: the bytes and
//! the artifacts found come in as arguments. The CLI renders it as text or JSON.
//!
//! This layer alone never says VALID: a chain and a seal anyone can recompute with keys of their
//! own prove nothing about who signed. [`audit`] ends at [`Verdict::Unanchored`];
//! `ceremony::conformance::verify_transcript` replays the events through the engine and anchors
//! the seal's signers in the root the auditor trusts, and only it can return [`Verdict::Valid`].

use super::chain::{ChainError, TornTail, VerifiedTranscript, scan_chain, split_torn_tail};
use super::details::FileDigest;
use super::record::{Digest, Record};
use super::seal::{ArtifactCheck, SealError, VerifiedSeal, check_artifacts};

/// The outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Chain intact, sealed, every listed signer signed, artifacts (if given) match, every step
    /// followed the script, and the seal is signed by a threshold of the root keys of the root in
    /// force at the end of the ceremony, reached from the root the auditor trusts.
    Valid,
    /// Chain intact, sealed, every listed signer signed, artifacts (if given) match, but nothing
    /// ties the signers to the registry's keys (no trusted root was given): not verified.
    Unanchored,
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
    /// The seal anchored in the trusted root (`None`: no trusted root given, or the transcript
    /// did not get that far).
    pub anchor: Option<Anchor>,
    /// The key-event log's check (`None`: no log given).
    pub log: Option<LogCheck>,
    /// What the room recorded: practice, air-gap state, warnings and exceptions (`None`: the
    /// events were not replayed).
    pub room: Option<Room>,
    /// (token key id, metadata key id): a key generated in a token or signing the seal is
    /// named in its record by the token key's own id; the metadata lists it under another id
    /// (the key with its owner field), the one id the room and the report use. Empty when
    /// the events were not replayed.
    pub key_ids: Vec<(String, String)>,
}

/// The seal's signers checked against the root the auditor trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// The trusted root: file name, version and the SHA-256 of its signed part.
    pub trusted: String,
    /// Each step of the root chain from the trusted root to the root in force at the end of the
    /// ceremony (empty when they are the same root).
    pub chain: Vec<String>,
    /// Version of the root in force at the end of the ceremony.
    pub root_version: Option<u64>,
    /// The seal's signatures counted against that root's root role (one threshold counter).
    pub count: Option<crate::tuf::verify::ThresholdResult>,
    /// Each seal signature: who the record names, who the transcript says holds the key.
    pub signers: Vec<AnchorSigner>,
    /// Why the seal is not anchored (`None`: anchored).
    pub error: Option<String>,
}

/// One seal signature as the anchor judged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorSigner {
    /// The seal-signature record's seq.
    pub seq: u64,
    /// The record's actor.
    pub actor: String,
    /// The key id the record gives.
    pub keyid: String,
    /// The keyholder the transcript says holds this key, if it says.
    pub holder: Option<String>,
    /// The key id the root in force lists this key under for the root role, if it does.
    pub root_keyid: Option<String>,
}

/// The key-event log checked for this transcript's seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogCheck {
    /// The log as named by the caller.
    pub name: String,
    /// Every check passed and the log holds the seal.
    pub passed: bool,
    /// What was checked, one line each (`ok` / `FAIL` first).
    pub lines: Vec<String>,
    /// The first failure.
    pub failure: Option<String>,
}

/// A warning acknowledged or an exception recorded during the ceremony.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The record's seq.
    pub seq: u64,
    /// When.
    pub time: String,
    /// Who recorded it (the witness for an exception, the record's actor for a warning).
    pub who: String,
    /// The step.
    pub step: String,
    /// `warning` or `exception`.
    pub kind: &'static str,
    /// What.
    pub text: String,
}

/// What the room recorded, from the replayed events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Room {
    /// A practice run (practice tokens; a failed air-gap check is only a warning).
    pub practice: bool,
    /// The air-gap self-check: network interfaces and radios found (`None`: not recorded).
    pub airgap: Option<(Vec<String>, Vec<String>)>,
    /// Every warning and exception, in order.
    pub notes: Vec<Note>,
}

/// Why an intact transcript without an anchor is not verified.
pub const UNANCHORED_WHY: &str = "the hash chain and the seal are intact, but nothing ties the seal's signers to the registry's keys (anyone can recompute a chain and sign a seal with keys of their own); give the root you trust with --trusted-root ROOT.json";

impl Audit {
    /// The id the metadata lists a key under, given the token key's own id (as a
    /// `key-generated` or `seal-signature` record names it); the id itself when the metadata
    /// does not list that key under another.
    pub fn metadata_key_id<'a>(&'a self, token_key_id: &'a str) -> &'a str {
        self.key_ids
            .iter()
            .find(|(t, _)| t == token_key_id)
            .map_or(token_key_id, |(_, m)| m.as_str())
    }

    /// A record's one-line summary for the report, naming keys by their metadata key id.
    pub fn record_summary(&self, r: &Record) -> String {
        let mut line = super::display::summary(r);
        if matches!(r.action.as_str(), "key-generated" | "seal-signature") {
            for (token, meta) in &self.key_ids {
                line = line.replace(token.as_str(), meta);
            }
        }
        line
    }

    /// The verdict's word (`VALID`, `UNANCHORED`, `PARTIAL`, `INVALID`) and what it rests on.
    pub fn verdict_text(&self) -> (&'static str, String) {
        match &self.verdict {
            Verdict::Valid => (
                "VALID",
                match &self.anchor {
                    Some(an) => format!(
                        "anchored in the trusted root {}; the seal is signed by root keys of root version {}, {}",
                        an.trusted,
                        an.root_version.unwrap_or_default(),
                        an.count.as_ref().map(|c| c.summary()).unwrap_or_default(),
                    ),
                    None => String::new(),
                },
            ),
            Verdict::Unanchored => ("UNANCHORED", UNANCHORED_WHY.to_string()),
            Verdict::Partial { last_seq, why } => {
                ("PARTIAL", format!("verified up to seq {last_seq}; {why}"))
            }
            Verdict::Invalid(why) => ("INVALID", why.clone()),
        }
    }

    /// Exit code 0 (valid, or partial when asked for) versus 1: an unanchored transcript is not
    /// verified.
    pub fn passed(&self) -> bool {
        matches!(self.verdict, Verdict::Valid | Verdict::Partial { .. })
    }

    /// The hash chain and the seal (and the artifacts, when given) are intact, anchored or not.
    pub fn intact(&self) -> bool {
        matches!(
            self.verdict,
            Verdict::Valid | Verdict::Unanchored | Verdict::Partial { .. }
        )
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
        verdict: Verdict::Unanchored,
        conformance: None,
        keys: Vec::new(),
        anchor: None,
        log: None,
        room: None,
        key_ids: Vec::new(),
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
                    None => Verdict::Unanchored,
                }
            } else {
                Verdict::Unanchored
            }
        }
        Err(
            e @ (SealError::NotSealed { .. }
            | SealError::MissingSignature { .. }
            | SealError::WithdrawnNotResealed { .. }),
        ) if partial => Verdict::Partial {
            last_seq,
            why: e.to_string(),
        },
        Err(e) => Verdict::Invalid(e.to_string()),
    };
    if let (Verdict::Unanchored, Some(t)) = (&a.verdict, &a.torn) {
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
    use crate::transcript::seal::SealDetails;
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
        let sig = crate::driver::transcript_file::sign_seal(&mut signer, &seal).unwrap();
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
            Verdict::Unanchored
        );
        assert!(!audit(all.as_bytes(), None, false).passed());

        let other = FileDigest::of("1.root.json", b"{ }");
        let a = audit(all.as_bytes(), Some(&[other]), false);
        assert!(
            matches!(&a.verdict, Verdict::Invalid(w) if w.contains("differs")),
            "{a:?}"
        );
        assert!(!a.passed());

        let unsealed = lines[..2].concat();
        assert!(!audit(unsealed.as_bytes(), None, false).intact());
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
        assert!(!audit(torn.as_bytes(), None, false).intact());
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
