//! The hash chain: the rules every record must follow given the records before it. The writer
//! and the verifier use the same [`ChainState`], so what one accepts the other accepts.
//!
//! Rules: `seq` counts from 0 without gaps; `prev` is the previous record's `hash` (64 zeros for
//! the first); times never go backwards; the first record is `begin` and no other is; after the
//! `seal` record only `seal-signature`, `seal-withdrawal` (and `resume`) records follow;
//! `seal-signature` appears only after a seal; a `seal-withdrawal` (a listed signer withdrawn
//! by the administrator, with the reason) must be followed by a new `seal` record, and a seal
//! follows a seal only after a withdrawal; the details of `begin`, `resume`, `seal`,
//! `seal-signature` and `seal-withdrawal` have their typed shape; no member of any details is
//! named like a secret.

use crate::tuf::canonical::Value;
use crate::tuf::parse::FieldError;

use super::details::{BeginDetails, ResumeDetails};
use super::record::{Digest, GENESIS_PREV, Record, RecordError, Timestamp, sha256};
use super::seal::{SealDetails, SealSignature, SealWithdrawal, WITHDRAWAL_ACTION};

/// Why a record does not fit the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainErrorKind {
    /// The line itself is bad (not JSON, missing field, edited, ...).
    #[error(transparent)]
    Record(#[from] RecordError),
    /// `seq` is not the next number.
    #[error(
        "field \"seq\": expected {expected}, found {found} (a record was deleted, inserted, duplicated or moved)"
    )]
    WrongSeq {
        /// The next seq.
        expected: u64,
        /// As written.
        found: u64,
    },
    /// `prev` is not the previous record's hash.
    #[error("field \"prev\": expected {expected} (hash of the previous record), found {found}")]
    PrevMismatch {
        /// Previous record's hash.
        expected: String,
        /// As written.
        found: String,
    },
    /// The time is before the previous record's.
    #[error("field \"time\": {this} is before the previous record's {previous}")]
    TimeBackwards {
        /// Previous record's time.
        previous: Timestamp,
        /// This record's time.
        this: Timestamp,
    },
    /// The action is not allowed here.
    #[error("field \"action\": \"{action}\" {reason}")]
    OutOfPlace {
        /// The action.
        action: String,
        /// Why not here.
        reason: &'static str,
    },
    /// The details of a `begin`, `resume`, `seal` or `seal-signature` record are malformed.
    #[error("{0}")]
    BadDetails(FieldError),
    /// The file does not end with a newline: the last line was torn (power cut mid-write).
    #[error("the last line has {bytes} bytes and no newline: torn by an interrupted write")]
    TornLastLine {
        /// Length of the torn line.
        bytes: usize,
    },
    /// No records at all.
    #[error("the transcript is empty")]
    Empty,
}

/// The first bad record: its 1-based line, its seq when it could be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ChainError {
    /// 1-based line number in the file.
    pub line: usize,
    /// The record's `seq` as written, when the line could be read.
    pub seq: Option<u64>,
    /// What is wrong.
    pub kind: ChainErrorKind,
}

impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "line {} (seq {seq}): {}", self.line, self.kind),
            None => write!(f, "line {}: {}", self.line, self.kind),
        }
    }
}

/// Where the chain stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No record yet: the next must be `begin`.
    Empty,
    /// Begun, not sealed.
    Open,
    /// Sealed: only `seal-signature`, `seal-withdrawal` and `resume` records may follow.
    Sealed,
    /// A signer of the seal was withdrawn: only a new `seal` record (or `resume`) may follow.
    Withdrawn,
}

/// The state the next record is checked against: next seq, head hash, last time, phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainState {
    next_seq: u64,
    head: Digest,
    last_time: Option<Timestamp>,
    phase: Phase,
}

impl Default for ChainState {
    fn default() -> Self {
        ChainState::new()
    }
}

impl ChainState {
    /// Before the first record.
    pub fn new() -> ChainState {
        ChainState {
            next_seq: 0,
            head: GENESIS_PREV,
            last_time: None,
            phase: Phase::Empty,
        }
    }

    /// The seq the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Hash of the last record ([`GENESIS_PREV`] before the first).
    pub fn head(&self) -> Digest {
        self.head
    }

    /// Time of the last record.
    pub fn last_time(&self) -> Option<Timestamp> {
        self.last_time
    }

    /// Where the chain stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Check that `r` may come next (its own hash and fields are checked when it is parsed or
    /// built).
    pub fn check(&self, r: &Record) -> Result<(), ChainErrorKind> {
        if r.seq != self.next_seq {
            return Err(ChainErrorKind::WrongSeq {
                expected: self.next_seq,
                found: r.seq,
            });
        }
        if r.prev != self.head {
            return Err(ChainErrorKind::PrevMismatch {
                expected: hex::encode(self.head),
                found: hex::encode(r.prev),
            });
        }
        if let Some(previous) = self.last_time
            && r.time < previous
        {
            return Err(ChainErrorKind::TimeBackwards {
                previous,
                this: r.time,
            });
        }
        let out_of_place = |reason| {
            Err(ChainErrorKind::OutOfPlace {
                action: r.action.clone(),
                reason,
            })
        };
        match (self.phase, r.action.as_str()) {
            (Phase::Empty, "begin") => {}
            (Phase::Empty, _) => {
                return out_of_place("cannot be the first record, which is \"begin\"");
            }
            (_, "begin") => return out_of_place("is only allowed as the first record"),
            (Phase::Open, "seal-signature") => {
                return out_of_place("before the seal record");
            }
            (Phase::Open, WITHDRAWAL_ACTION) => {
                return out_of_place("before the seal record (only a seal's signer is withdrawn)");
            }
            (Phase::Sealed, "seal") => {
                return out_of_place(
                    "a transcript is sealed again only after a seal-withdrawal record",
                );
            }
            (Phase::Sealed, "seal-signature" | "resume" | WITHDRAWAL_ACTION) => {}
            (Phase::Sealed, _) => {
                return out_of_place(
                    "after the seal (only seal-signature, seal-withdrawal and resume records may follow it)",
                );
            }
            (Phase::Withdrawn, "seal" | "resume") => {}
            (Phase::Withdrawn, _) => {
                return out_of_place(
                    "after a seal-withdrawal (only a new seal record, or resume, may follow it)",
                );
            }
            (Phase::Open, _) => {}
        }
        let details = || r.details.clone();
        let shape = match r.action.as_str() {
            "begin" => BeginDetails::from_value(details(), "details").map(drop),
            "resume" => ResumeDetails::from_value(details(), "details").map(drop),
            "seal" => SealDetails::from_value(details(), "details").and_then(|s| {
                if s.head == r.prev {
                    Ok(())
                } else {
                    Err(FieldError::new(
                        "details.head",
                        "the sealed head is not the previous record's hash",
                    ))
                }
            }),
            "seal-signature" => SealSignature::from_value(details(), "details").map(drop),
            WITHDRAWAL_ACTION => SealWithdrawal::from_value(details(), "details").map(drop),
            _ => Ok(()),
        };
        shape.map_err(ChainErrorKind::BadDetails)
    }

    /// Check `r` and move past it.
    pub fn accept(&mut self, r: &Record) -> Result<(), ChainErrorKind> {
        self.check(r)?;
        self.next_seq += 1;
        self.head = r.hash;
        self.last_time = Some(r.time);
        self.phase = match (self.phase, r.action.as_str()) {
            (_, "seal") => Phase::Sealed,
            (_, WITHDRAWAL_ACTION) => Phase::Withdrawn,
            (Phase::Empty, _) => Phase::Open,
            (p, _) => p,
        };
        Ok(())
    }

    /// Build the next record (seq, prev, hash filled in) and check it as the verifier will:
    /// a record that would not verify is refused before it is written.
    pub fn build(
        &self,
        actor: &str,
        step: Option<&str>,
        action: &str,
        details: Value,
        time: Timestamp,
    ) -> Result<Record, ChainErrorKind> {
        let r = Record::new(self.next_seq, time, actor, step, action, details, self.head);
        r.check_fields()?;
        self.check(&r)?;
        Ok(r)
    }
}

/// A torn last line: bytes after the last newline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Offset of the torn line in the file (length of the complete part).
    pub offset: usize,
    /// Its length.
    pub bytes: usize,
    /// SHA-256 of its bytes.
    pub sha256: Digest,
}

/// Split a transcript into its complete lines and a torn last line (bytes after the last `\n`).
pub fn split_torn_tail(bytes: &[u8]) -> (&[u8], Option<TornTail>) {
    let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if end == bytes.len() {
        return (bytes, None);
    }
    let tail = &bytes[end..];
    (
        &bytes[..end],
        Some(TornTail {
            offset: end,
            bytes: tail.len(),
            sha256: sha256(tail),
        }),
    )
}

/// A transcript whose every record parsed, hashed and chained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTranscript {
    records: Vec<Record>,
    state: ChainState,
}

impl VerifiedTranscript {
    /// Only from a chain that verified (see [`scan_chain`]).
    pub(super) fn from_verified_parts(records: Vec<Record>, state: ChainState) -> Self {
        VerifiedTranscript { records, state }
    }

    /// The records, in order (never empty).
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The chain state after the last record (what a writer continues from).
    pub fn state(&self) -> &ChainState {
        &self.state
    }

    /// Hash of the last record.
    pub fn head(&self) -> Digest {
        self.state.head
    }

    /// seq of the last record.
    pub fn last_seq(&self) -> u64 {
        self.records.last().map_or(0, |r| r.seq)
    }

    /// Index of the seal in force, if sealed: the last `seal` record (an earlier one was
    /// superseded after a `seal-withdrawal`). `None` also while a withdrawal awaits its new
    /// seal.
    pub fn seal_index(&self) -> Option<usize> {
        if self.state.phase() == Phase::Withdrawn {
            return None;
        }
        self.records.iter().rposition(|r| r.action == "seal")
    }

    /// The first record's details.
    pub fn begin(&self) -> Option<BeginDetails> {
        let first = self.records.first()?;
        BeginDetails::from_value(first.details.clone(), "details").ok()
    }
}

/// Read records until the first bad one: the good prefix, and the error that stopped reading.
/// A torn last line is reported as [`ChainErrorKind::TornLastLine`] after the good records.
pub fn scan_chain(bytes: &[u8]) -> (Vec<Record>, ChainState, Option<ChainError>) {
    let (complete, torn) = split_torn_tail(bytes);
    let mut state = ChainState::new();
    let mut records = Vec::new();
    let body = complete.strip_suffix(b"\n").unwrap_or(complete);
    if !complete.is_empty() {
        for (i, line) in body.split(|b| *b == b'\n').enumerate() {
            let line_no = i + 1;
            let record = match Record::parse_line(line) {
                Ok(r) => r,
                Err(e) => {
                    let err = ChainError {
                        line: line_no,
                        seq: seq_of_bad_line(line),
                        kind: e.into(),
                    };
                    return (records, state, Some(err));
                }
            };
            if let Err(kind) = state.accept(&record) {
                let err = ChainError {
                    line: line_no,
                    seq: Some(record.seq),
                    kind,
                };
                return (records, state, Some(err));
            }
            records.push(record);
        }
    }
    if let Some(t) = torn {
        let err = ChainError {
            line: records.len() + 1,
            seq: None,
            kind: ChainErrorKind::TornLastLine { bytes: t.bytes },
        };
        return (records, state, Some(err));
    }
    if records.is_empty() {
        let err = ChainError {
            line: 1,
            seq: None,
            kind: ChainErrorKind::Empty,
        };
        return (records, state, Some(err));
    }
    (records, state, None)
}

/// Verify the whole chain: every line a record, hashes, seq, prev, times, structure, no secrets.
/// Whether it is sealed is checked by [`super::seal::verify_seal`].
pub fn verify_chain(bytes: &[u8]) -> Result<VerifiedTranscript, ChainError> {
    match scan_chain(bytes) {
        (records, state, None) => Ok(VerifiedTranscript { records, state }),
        (_, _, Some(err)) => Err(err),
    }
}

/// The seq written in a line that did not parse as a record, for the error message.
fn seq_of_bad_line(line: &[u8]) -> Option<u64> {
    let v = Value::parse(line).ok()?;
    match v.as_object()?.get("seq")? {
        Value::Int(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::details::FileDigest;

    fn t(s: u32) -> Timestamp {
        Timestamp::parse(&format!("2026-11-23T04:{:02}:{:02}Z", s / 60, s % 60)).unwrap()
    }

    fn begin() -> Value {
        BeginDetails::new(
            "practice",
            b"script",
            false,
            vec![FileDigest::of("in", b"x")],
        )
        .to_value()
    }

    fn build(n: usize) -> (String, ChainState) {
        let mut s = ChainState::new();
        let mut out = String::new();
        for i in 0..n {
            let (action, details) = if i == 0 {
                ("begin", begin())
            } else {
                ("acknowledge", Value::from(i as u64))
            };
            let r = s
                .build("admin", Some("1"), action, details, t(i as u32))
                .unwrap();
            s.accept(&r).unwrap();
            out.push_str(&r.to_line());
        }
        (out, s)
    }

    #[test]
    fn a_built_chain_verifies_and_reports_its_head() {
        let (text, state) = build(5);
        let v = verify_chain(text.as_bytes()).unwrap();
        assert_eq!(v.records().len(), 5);
        assert_eq!(v.head(), state.head());
        assert_eq!(v.state(), &state);
        assert_eq!(v.last_seq(), 4);
        assert_eq!(v.begin().unwrap().script.name, "practice");
        assert_eq!(v.seal_index(), None);
    }

    #[test]
    fn the_writer_refuses_what_the_verifier_would_refuse() {
        let (_, s) = build(3);
        let err = s
            .build("admin", None, "note", Value::Null, t(1))
            .unwrap_err();
        assert!(matches!(err, ChainErrorKind::TimeBackwards { .. }), "{err}");
        let err = s.build("admin", None, "begin", begin(), t(9)).unwrap_err();
        assert!(matches!(err, ChainErrorKind::OutOfPlace { .. }), "{err}");
        let pin = Value::parse(br#"{"token": {"pin": "1234"}}"#).unwrap();
        let err = s.build("admin", None, "login", pin, t(9)).unwrap_err();
        assert_eq!(
            err,
            ChainErrorKind::Record(RecordError::SecretField {
                path: "details.token.pin".into()
            })
        );
        let err = s
            .build("admin", None, "seal-signature", Value::Null, t(9))
            .unwrap_err();
        assert!(matches!(err, ChainErrorKind::OutOfPlace { .. }), "{err}");
        let err = ChainState::new()
            .build("admin", None, "note", Value::Null, t(0))
            .unwrap_err();
        assert!(matches!(err, ChainErrorKind::OutOfPlace { .. }), "{err}");
        let bad_seal = Value::parse(br#"{"head": "00"}"#).unwrap();
        let err = s.build("admin", None, "seal", bad_seal, t(9)).unwrap_err();
        assert!(matches!(err, ChainErrorKind::BadDetails(_)), "{err}");
    }

    #[test]
    fn empty_torn_and_blank_lines_are_named() {
        assert_eq!(verify_chain(b"").unwrap_err().kind, ChainErrorKind::Empty);
        let (text, _) = build(3);
        let mut torn = text.clone().into_bytes();
        torn.extend_from_slice(b"{\"act");
        let err = verify_chain(&torn).unwrap_err();
        assert_eq!(err.line, 4);
        assert_eq!(err.kind, ChainErrorKind::TornLastLine { bytes: 5 });
        let (complete, tail) = split_torn_tail(&torn);
        assert_eq!(complete, text.as_bytes());
        assert_eq!(tail.unwrap().offset, text.len());

        let blank = text.replacen('\n', "\n\n", 1);
        let err = verify_chain(blank.as_bytes()).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(matches!(
            err.kind,
            ChainErrorKind::Record(RecordError::NotJson { .. })
        ));
    }

    #[test]
    fn scan_returns_the_good_prefix() {
        let (text, _) = build(4);
        let lines: Vec<&str> = text.lines().collect();
        let mangled = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]);
        let (good, state, err) = scan_chain(mangled.as_bytes());
        assert_eq!(good.len(), 1);
        assert_eq!(state.next_seq(), 1);
        let err = err.unwrap();
        assert_eq!((err.line, err.seq), (2, Some(2)));
        assert_eq!(
            err.kind,
            ChainErrorKind::WrongSeq {
                expected: 1,
                found: 2
            }
        );
        assert!(err.to_string().starts_with("line 2 (seq 2): field \"seq\""));
    }
}
