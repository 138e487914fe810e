//! Transcript scenario: a 20-record ceremony transcript sealed by three keyholders, then every kind
//! of tampering, truncation and power cut, checked through the library and the `conclave` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use conclave::driver::audit_files::read_artifact_dir;
use conclave::driver::transcript_file::{FileError, TranscriptFile, sign_seal};
use conclave::signer::Signer;
use conclave::signer::software::SoftwareSigner;
use conclave::transcript::audit::{Verdict, audit};
use conclave::transcript::chain::{ChainErrorKind, ChainState, scan_chain, verify_chain};
use conclave::transcript::details::{BeginDetails, FileDigest};
use conclave::transcript::record::{Record, RecordError, Timestamp, compact};
use conclave::transcript::seal::{SealDetails, SealError, SealSignature, verify_seal};
use conclave::tuf::canonical::Value;
use conclave::tuf::key::Algorithm;

const SEAL_SEQ: usize = 16;
const RECORDS: usize = 20;

fn t(n: u32) -> Timestamp {
    Timestamp::parse(&format!("2026-11-23T09:{:02}:{:02}Z", n / 60, n % 60)).unwrap()
}

fn signers() -> Vec<SoftwareSigner> {
    vec![
        SoftwareSigner::from_seed(Algorithm::Ed25519, &[1; 32]).unwrap(),
        SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[2; 32]).unwrap(),
        SoftwareSigner::from_seed(Algorithm::Ed25519, &[3; 32]).unwrap(),
    ]
}

fn json(text: &str) -> Value {
    Value::parse(text.as_bytes()).unwrap()
}

struct Ceremony {
    _dir: tempfile::TempDir,
    transcript: PathBuf,
    export: PathBuf,
}

/// begin, 15 steps, seal, 3 seal signatures = 20 records; 3 artifacts in `export/`.
fn ceremony() -> Ceremony {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    std::fs::create_dir(&export).unwrap();
    let transcript = dir.path().join("ceremony.jsonl");
    let mut f = TranscriptFile::create(&transcript).unwrap();
    // The transcript layer's own test: made-up events, so the script text is not carried and
    // script conformance (the engine's replay) reports "not checked". Real ceremony transcripts
    // are tested through `conclave rehearse` (tests/rehearse.rs).
    let begin = BeginDetails::new(
        "bootstrap-root",
        b"name = \"bootstrap-root\"\n",
        false,
        vec![FileDigest::of("input/snapshot.pub", b"online key")],
    );
    f.append("administrator", None, "begin", begin.to_value(), t(0))
        .unwrap();
    let mut s = signers();
    let steps: Vec<(&str, &str, Value)> = vec![
        (
            "administrator",
            "airgap-check",
            json(r#"{"interfaces": [], "ok": true}"#),
        ),
        (
            "witness-1",
            "acknowledge",
            json(r#"{"bag_serial": "A1234567"}"#),
        ),
        (
            "administrator",
            "clock-confirm",
            json(r#"{"clock": "2026-11-23T09:00:02Z"}"#),
        ),
        (
            "administrator",
            "roll-call",
            json(r#"{"present": ["alice", "bob", "carol", "witness-1"]}"#),
        ),
        (
            "alice",
            "enroll-token",
            json(r#"{"serial": "0001", "label": "alice"}"#),
        ),
        (
            "bob",
            "enroll-token",
            json(r#"{"serial": "0002", "label": "bob"}"#),
        ),
        (
            "carol",
            "enroll-token",
            json(r#"{"serial": "0003", "label": "carol"}"#),
        ),
        ("alice", "generate-key", s[0].key().to_value()),
        ("bob", "generate-key", s[1].key().to_value()),
        ("carol", "generate-key", s[2].key().to_value()),
        (
            "administrator",
            "propose",
            json(r#"{"role": "root", "version": 1, "sha256": "ab"}"#),
        ),
        ("alice", "sign", json(r#"{"role": "root", "keyid": "k1"}"#)),
        ("bob", "sign", json(r#"{"role": "root", "keyid": "k2"}"#)),
        (
            "witness-1",
            "exception",
            json("{\"text\": \"coffee spilt\\non the form\"}"),
        ),
        ("administrator", "export", json(r#"{"files": 3}"#)),
    ];
    for (i, (actor, action, details)) in steps.into_iter().enumerate() {
        let n = i as u32 + 1;
        let step = n.to_string();
        f.append(actor, Some(&step), action, details, t(n)).unwrap();
    }
    let mut artifacts = Vec::new();
    for (name, bytes) in [
        ("1.root.json", &b"{\"signed\": {}}"[..]),
        ("1.targets.json", b"{\"targets\": {}}"),
        ("SHA256SUMS", b"sums\n"),
    ] {
        std::fs::write(export.join(name), bytes).unwrap();
        artifacts.push(FileDigest::of(name, bytes));
    }
    let seal = SealDetails {
        head: f.state().head(),
        artifacts,
        signers: s.iter().map(|x| x.key_id()).collect(),
    };
    let r = f
        .append("administrator", Some("16"), "seal", seal.to_value(), t(16))
        .unwrap();
    assert_eq!(r.seq as usize, SEAL_SEQ);
    for (i, (who, signer)) in ["alice", "bob", "carol"]
        .iter()
        .zip(s.iter_mut())
        .enumerate()
    {
        f.append_seal_signature(who, signer, t(17 + i as u32))
            .unwrap();
    }
    Ceremony {
        _dir: dir,
        transcript,
        export,
    }
}

fn lines(c: &Ceremony) -> Vec<String> {
    std::fs::read_to_string(&c.transcript)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn join(lines: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out.into_bytes()
}

fn found(c: &Ceremony) -> Vec<FileDigest> {
    read_artifact_dir(&c.export).unwrap()
}

/// Replace member `field` of the record on `line`, keeping the compact form.
fn edit(line: &str, field: &str, value: Value) -> String {
    let mut m = json(line).as_object().unwrap().clone();
    m.insert(field.into(), value);
    compact(&Value::Object(m))
}

fn parse(line: &str) -> Record {
    Record::parse_line(line.as_bytes()).unwrap()
}

/// Rebuild the records from `from` on so the chain is consistent again (what a forger does).
fn rechain(lines: &mut [String], from: usize) {
    for i in from..lines.len() {
        let mut m = json(&lines[i]).as_object().unwrap().clone();
        if i > 0 {
            let prev = json(&lines[i - 1]);
            let prev_hash = prev.as_object().unwrap().get("hash").unwrap().clone();
            m.insert("prev".into(), prev_hash);
        }
        m.remove("hash");
        let hash = hex::encode(Value::Object(m.clone()).canonical_sha256());
        m.insert("hash".into(), hash.into());
        lines[i] = compact(&Value::Object(m));
    }
}

#[test]
fn the_sealed_ceremony_verifies_with_its_artifacts() {
    let c = ceremony();
    let bytes = std::fs::read(&c.transcript).unwrap();
    let vt = verify_chain(&bytes).unwrap();
    assert_eq!(vt.records().len(), RECORDS);
    let seal = verify_seal(&vt).unwrap();
    assert_eq!(seal.seal_seq as usize, SEAL_SEQ);
    assert_eq!(seal.signers.len(), 3);
    assert_eq!(seal.seal_hash, vt.records()[SEAL_SEQ].hash);
    let a = audit(&bytes, Some(&found(&c)), false);
    assert_eq!(a.verdict, Verdict::Unanchored);
    assert!(a.artifacts.unwrap().unlisted.is_empty());
    // The exception's newline is escaped: every record is exactly one line.
    assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), RECORDS);
    // Sealed and signed by every listed keyholder: closed, nothing more is appended.
    let closed = TranscriptFile::open_resume(&c.transcript, t(30));
    assert!(
        matches!(closed, Err(FileError::Closed { .. })),
        "{closed:?}"
    );
    assert_eq!(std::fs::read(&c.transcript).unwrap(), bytes);
}

#[test]
fn editing_any_field_of_any_record_is_detected_at_that_record() {
    let c = ceremony();
    let original = lines(&c);
    for i in 0..original.len() {
        let rec = parse(&original[i]);
        let edits: Vec<(&str, Value)> = vec![
            ("seq", Value::from(rec.seq + 100)),
            ("time", Value::from("2026-11-23T09:00:00Z")),
            ("actor", Value::from(format!("{}x", rec.actor))),
            ("step", Value::from("99")),
            ("action", Value::from(format!("{}x", rec.action))),
            ("details", json(r#"{"forged": true}"#)),
            ("prev", Value::from("1".repeat(64))),
            ("hash", Value::from("2".repeat(64))),
        ];
        for (field, value) in edits {
            let mut tampered = original.clone();
            tampered[i] = edit(&original[i], field, value);
            if tampered[i] == original[i] {
                continue; // e.g. the first record's time is already 09:00:00
            }
            let err = verify_chain(&join(&tampered)).unwrap_err();
            assert_eq!(err.line, i + 1, "record {i} field {field}: {err}");
            assert!(
                matches!(
                    err.kind,
                    ChainErrorKind::Record(RecordError::HashMismatch { .. })
                ),
                "record {i} field {field}: {err}"
            );
            let a = audit(&join(&tampered), Some(&found(&c)), true);
            assert!(!a.intact(), "--partial does not excuse tampering");
        }
        // An editor who recomputes the edited record's hash breaks the next record's prev.
        if i + 1 < original.len() {
            let mut tampered = original.clone();
            tampered[i] = edit(&original[i], "actor", Value::from("mallory"));
            rechain(&mut tampered[..=i], i);
            let err = verify_chain(&join(&tampered)).unwrap_err();
            assert_eq!((err.line, err.seq), (i + 2, Some(i as u64 + 1)), "{err}");
            assert!(
                matches!(err.kind, ChainErrorKind::PrevMismatch { .. }),
                "{err}"
            );
        }
    }
}

#[test]
fn rewriting_history_before_the_seal_breaks_every_seal_signature() {
    let c = ceremony();
    for i in [0, 5, SEAL_SEQ] {
        let mut tampered = lines(&c);
        let value = if i == 0 {
            // The begin record must keep its shape: change the recorded version.
            let mut d = parse(&tampered[0]).details.as_object().unwrap().clone();
            d.insert("conclave_version".into(), "9.9.9".into());
            Value::Object(d)
        } else if i == SEAL_SEQ {
            let mut d = parse(&tampered[i]).details.as_object().unwrap().clone();
            d.insert("artifacts".into(), Value::Array(vec![]));
            Value::Object(d)
        } else {
            json(r#"{"serial": "9999", "label": "mallory"}"#)
        };
        tampered[i] = edit(&tampered[i], "details", value);
        rechain(&mut tampered, i);
        // The seal's "head" names the record before it: fix it too, as a forger would.
        if i < SEAL_SEQ {
            let head = parse(&tampered[SEAL_SEQ - 1]).hash_hex();
            let mut d = parse(&tampered[SEAL_SEQ])
                .details
                .as_object()
                .unwrap()
                .clone();
            d.insert("head".into(), head.into());
            tampered[SEAL_SEQ] = edit(&tampered[SEAL_SEQ], "details", Value::Object(d));
            rechain(&mut tampered, SEAL_SEQ);
        }
        let vt = verify_chain(&join(&tampered)).unwrap();
        let err = verify_seal(&vt).unwrap_err();
        assert!(
            matches!(err, SealError::BadSignature { line, seq: 17, .. } if line == 18),
            "record {i}: {err}"
        );
        assert!(!audit(&join(&tampered), None, true).intact());
    }
}

#[test]
fn deleting_any_record_is_detected() {
    let c = ceremony();
    let original = lines(&c);
    for i in 0..original.len() {
        let mut tampered = original.clone();
        tampered.remove(i);
        let bytes = join(&tampered);
        let a = audit(&bytes, Some(&found(&c)), false);
        assert!(!a.intact(), "deleting record {i}");
        if i + 1 < original.len() {
            let err = verify_chain(&bytes).unwrap_err();
            assert_eq!((err.line, err.seq), (i + 1, Some(i as u64 + 1)), "{err}");
            assert_eq!(
                err.kind,
                ChainErrorKind::WrongSeq {
                    expected: i as u64,
                    found: i as u64 + 1
                }
            );
        } else {
            // The last seal signature: the chain is intact but the seal names a missing signer.
            let vt = verify_chain(&bytes).unwrap();
            let err = verify_seal(&vt).unwrap_err();
            assert!(
                matches!(err, SealError::MissingSignature { last_seq: 18, .. }),
                "{err}"
            );
        }
    }
}

#[test]
fn reordering_inserting_and_duplicating_records_is_detected() {
    let c = ceremony();
    let original = lines(&c);
    for i in 0..original.len() - 1 {
        let mut swapped = original.clone();
        swapped.swap(i, i + 1);
        let err = verify_chain(&join(&swapped)).unwrap_err();
        assert_eq!(
            (err.line, err.seq),
            (i + 1, Some(i as u64 + 1)),
            "swap {i}: {err}"
        );
        assert!(matches!(err.kind, ChainErrorKind::WrongSeq { .. }));
    }
    for (copy, at) in [(3usize, 7usize), (7, 8), (0, 1), (SEAL_SEQ, 18)] {
        let mut inserted = original.clone();
        inserted.insert(at, original[copy].clone());
        let err = verify_chain(&join(&inserted)).unwrap_err();
        assert_eq!((err.line, err.seq), (at + 1, Some(copy as u64)), "{err}");
        assert_eq!(
            err.kind,
            ChainErrorKind::WrongSeq {
                expected: at as u64,
                found: copy as u64
            }
        );
    }
    // Appending after the last signature, even a well-formed chained record, is refused.
    let mut appended = original.clone();
    let resume = conclave::transcript::details::ResumeDetails {
        discarded_bytes: 0,
        discarded_sha256: conclave::transcript::record::sha256(b""),
    };
    let last = parse(&original[RECORDS - 1]);
    let extra = Record::new(
        RECORDS as u64,
        t(30),
        "conclave",
        None,
        "resume",
        resume.to_value(),
        last.hash,
    );
    appended.push(extra.to_line().trim_end().to_string());
    let vt = verify_chain(&join(&appended)).unwrap();
    let err = verify_seal(&vt).unwrap_err();
    assert_eq!(
        err,
        SealError::AfterClose {
            line: RECORDS + 1,
            seq: RECORDS as u64
        }
    );

    let mut dup = original.clone();
    dup.push(original[RECORDS - 1].clone());
    let err = verify_chain(&join(&dup)).unwrap_err();
    assert_eq!((err.line, err.seq), (RECORDS + 1, Some(RECORDS as u64 - 1)));
}

#[test]
fn truncation_fails_unless_partial_which_reports_the_last_good_record() {
    let c = ceremony();
    let original = lines(&c);
    for keep in 1..original.len() {
        let bytes = join(&original[..keep]);
        let full = audit(&bytes, None, false);
        assert!(
            matches!(&full.verdict, Verdict::Invalid(why) if why.contains("seq")),
            "keep {keep}: {:?}",
            full.verdict
        );
        let partial = audit(&bytes, None, true);
        match partial.verdict {
            Verdict::Partial { last_seq, .. } => assert_eq!(last_seq, keep as u64 - 1),
            other => panic!("keep {keep}: {other:?}"),
        }
    }
    assert_eq!(
        audit(&join(&original), None, true).verdict,
        Verdict::Unanchored
    );
    // A torn last line: invalid, or partial with --partial.
    let mut torn = join(&original[..5]);
    torn.extend_from_slice(&original[5].as_bytes()[..40]);
    assert!(!audit(&torn, None, false).intact());
    let a = audit(&torn, None, true);
    assert!(
        matches!(a.verdict, Verdict::Partial { last_seq: 4, .. }),
        "{:?}",
        a.verdict
    );
    assert_eq!(a.torn.unwrap().bytes, 40);
}

#[test]
fn changed_removed_and_extra_artifacts() {
    let c = ceremony();
    let bytes = std::fs::read(&c.transcript).unwrap();
    std::fs::write(c.export.join("notes.txt"), b"extra").unwrap();
    let a = audit(&bytes, Some(&found(&c)), false);
    assert_eq!(
        a.verdict,
        Verdict::Unanchored,
        "unlisted files are reported, not fatal"
    );
    assert_eq!(a.artifacts.unwrap().unlisted, vec!["notes.txt".to_string()]);

    let root = c.export.join("1.root.json");
    let mut content = std::fs::read(&root).unwrap();
    content[3] ^= 1;
    std::fs::write(&root, &content).unwrap();
    let a = audit(&bytes, Some(&found(&c)), false);
    assert!(
        matches!(&a.verdict, Verdict::Invalid(w) if w.contains("1.root.json differs")),
        "{:?}",
        a.verdict
    );
    std::fs::remove_file(&root).unwrap();
    let a = audit(&bytes, Some(&found(&c)), false);
    assert!(
        matches!(&a.verdict, Verdict::Invalid(w) if w.contains("1.root.json listed in the seal is missing")),
        "{:?}",
        a.verdict
    );
}

/// Replace the details of the seal-signature on `line_index` and rechain from there.
fn resign(lines: &mut [String], line_index: usize, sig: &SealSignature) {
    lines[line_index] = edit(&lines[line_index], "details", sig.to_value());
    rechain(lines, line_index);
}

#[test]
fn forged_and_repeated_seal_signatures_are_rejected() {
    let c = ceremony();
    let original = lines(&c);
    let seal = parse(&original[SEAL_SEQ]);
    let mut s = signers();

    // Flip one byte of bob's signature.
    let mut forged = original.clone();
    let mut sig = SealSignature::from_value(parse(&original[18]).details, "details").unwrap();
    let mut raw = hex::decode(&sig.sig).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    sig.sig = hex::encode(raw);
    resign(&mut forged, 18, &sig);
    let err = verify_seal(&verify_chain(&join(&forged)).unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            SealError::BadSignature {
                line: 19,
                seq: 18,
                ..
            }
        ),
        "{err}"
    );

    // A signature by an outsider over the right statement, claiming to be bob's key.
    let mut outsider = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[9; 32]).unwrap();
    let mut claim = sign_seal(&mut outsider, &seal).unwrap();
    claim.keyid = s[1].key_id();
    let mut forged = original.clone();
    resign(&mut forged, 18, &claim);
    let err = verify_seal(&verify_chain(&join(&forged)).unwrap()).unwrap_err();
    assert!(
        matches!(err, SealError::KeyIdMismatch { line: 19, .. }),
        "{err}"
    );

    // bob's key object with alice's signature.
    let mut swapped = sign_seal(&mut s[0], &seal).unwrap();
    swapped.key = s[1].key().clone();
    swapped.keyid = s[1].key_id();
    let mut forged = original.clone();
    resign(&mut forged, 18, &swapped);
    let err = verify_seal(&verify_chain(&join(&forged)).unwrap()).unwrap_err();
    assert!(
        matches!(err, SealError::BadSignature { line: 19, .. }),
        "{err}"
    );

    // The outsider signing as themself: not a listed signer.
    let own = sign_seal(&mut outsider, &seal).unwrap();
    let mut forged = original.clone();
    resign(&mut forged, 18, &own);
    let err = verify_seal(&verify_chain(&join(&forged)).unwrap()).unwrap_err();
    assert!(
        matches!(err, SealError::UnexpectedSigner { line: 19, .. }),
        "{err}"
    );

    // alice signing twice, in bob's place.
    let twice = sign_seal(&mut s[0], &seal).unwrap();
    let mut forged = original.clone();
    resign(&mut forged, 18, &twice);
    let err = verify_seal(&verify_chain(&join(&forged)).unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            SealError::DuplicateSigner {
                line: 19,
                first_seq: 17,
                ..
            }
        ),
        "{err}"
    );

    // A signature over another seq (replayed from a different transcript position).
    let mut other_seal = seal.clone();
    other_seal.seq += 1;
    let replay = sign_seal(&mut s[1], &other_seal).unwrap();
    let mut forged = original.clone();
    resign(&mut forged, 18, &replay);
    let err = verify_seal(&verify_chain(&join(&forged)).unwrap()).unwrap_err();
    assert!(
        matches!(err, SealError::BadSignature { line: 19, .. }),
        "{err}"
    );
}

#[test]
fn one_key_under_two_key_ids_signs_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let mut f = TranscriptFile::create(&path).unwrap();
    let begin = BeginDetails::new("practice", b"x", false, vec![]);
    f.append("admin", None, "begin", begin.to_value(), t(0))
        .unwrap();
    let mut a = SoftwareSigner::from_seed(Algorithm::Ed25519, &[5; 32]).unwrap();
    let mut key = a.key().clone();
    key.unrecognized.insert("x-owner".into(), "alice".into());
    let mut a2 = SoftwareSigner::from_seed(Algorithm::Ed25519, &[5; 32])
        .unwrap()
        .with_key(key)
        .unwrap();
    assert_ne!(a.key_id(), a2.key_id());
    let seal = SealDetails {
        head: f.state().head(),
        artifacts: vec![],
        signers: vec![a.key_id(), a2.key_id()],
    };
    f.append("admin", None, "seal", seal.to_value(), t(1))
        .unwrap();
    f.append_seal_signature("alice", &mut a, t(2)).unwrap();
    let again = f.append_seal_signature("alice", &mut a, t(3)).unwrap_err();
    assert!(again.to_string().contains("already signed"), "{again}");
    f.append_seal_signature("alice", &mut a2, t(3)).unwrap();
    let vt = verify_chain(&std::fs::read(&path).unwrap()).unwrap();
    let err = verify_seal(&vt).unwrap_err();
    assert!(
        matches!(
            err,
            SealError::DuplicateSigner {
                line: 4,
                seq: 3,
                first_seq: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn pin_like_fields_are_refused_when_writing_and_when_verifying() {
    let c = ceremony();
    let mut f = {
        // A fresh, unsealed transcript to append to.
        let path = c.transcript.with_file_name("open.jsonl");
        let mut f = TranscriptFile::create(&path).unwrap();
        let begin = BeginDetails::new("practice", b"x", false, vec![]);
        f.append("admin", None, "begin", begin.to_value(), t(0))
            .unwrap();
        f
    };
    for details in [
        r#"{"pin": "123456"}"#,
        r#"{"token": {"so_pin": "87654321"}}"#,
        r#"{"login": [{"Password": "hunter2"}]}"#,
        r#"{"SECRET": "x"}"#,
    ] {
        let err = f
            .append("alice", Some("3"), "enroll-token", json(details), t(1))
            .unwrap_err();
        assert!(
            matches!(
                &err,
                FileError::Refused {
                    source: ChainErrorKind::Record(RecordError::SecretField { .. }),
                    ..
                }
            ),
            "{err}"
        );
    }
    // A forger who writes one anyway, with a consistent chain, is still caught.
    let mut tampered = lines(&c);
    tampered[5] = edit(
        &tampered[5],
        "details",
        json(r#"{"serial": "0001", "pin": "1234"}"#),
    );
    rechain(&mut tampered, 5);
    let err = verify_chain(&join(&tampered)).unwrap_err();
    assert_eq!((err.line, err.seq), (6, Some(5)));
    assert_eq!(
        err.kind,
        ChainErrorKind::Record(RecordError::SecretField {
            path: "details.pin".into()
        })
    );
}

#[test]
fn a_torn_last_line_is_cut_off_and_the_ceremony_continues() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.jsonl");
    let mut f = TranscriptFile::create(&src).unwrap();
    let begin = BeginDetails::new("practice", b"x", false, vec![]);
    f.append("admin", None, "begin", begin.to_value(), t(0))
        .unwrap();
    for i in 1..4u32 {
        let details = json(&format!(
            "{{\"n\": {i}, \"pem\": \"-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----\\n\"}}"
        ));
        f.append("alice", Some(&i.to_string()), "generate-key", details, t(i))
            .unwrap();
    }
    // The last line is short (fewer cut positions, each one costs several fsyncs).
    f.append("alice", Some("4"), "acknowledge", json("{}"), t(4))
        .unwrap();
    let full = std::fs::read(&src).unwrap();
    let last_start = full[..full.len() - 1]
        .iter()
        .rposition(|b| *b == b'\n')
        .unwrap()
        + 1;
    // Every cut position inside the last line; fsync dominates, so the cuts run on threads.
    let cuts: Vec<usize> = (last_start..full.len()).collect();
    assert!(cuts.len() > 100, "the last line has {} bytes", cuts.len());
    std::thread::scope(|scope| {
        for chunk in cuts.chunks(cuts.len().div_ceil(8)) {
            let (dir, full) = (dir.path(), &full);
            scope.spawn(move || {
                for &cut in chunk {
                    resume_at(dir, full, last_start, cut);
                }
            });
        }
    });
}

fn resume_at(dir: &Path, full: &[u8], last_start: usize, cut: usize) {
    let path = dir.join(format!("cut-{cut}.jsonl"));
    std::fs::write(&path, &full[..cut]).unwrap();
    let (mut f, resumed) = TranscriptFile::open_resume(&path, t(10)).unwrap();
    let discarded = cut - last_start;
    assert_eq!(resumed.last_seq, 3, "cut at {cut}");
    assert_eq!(resumed.discarded.as_ref().map_or(0, |t| t.bytes), discarded);
    assert_eq!(resumed.record.seq, 4);
    assert_eq!(resumed.record.action, "resume");
    let d = resumed.record.details.as_object().unwrap();
    assert_eq!(
        d.get("discarded_bytes"),
        Some(&Value::from(discarded as u64))
    );
    assert_eq!(
        d.get("discarded_sha256"),
        Some(&Value::from(hex::encode(
            conclave::transcript::record::sha256(&full[last_start..cut])
        )))
    );
    // The ceremony redoes the interrupted step; every 16th run (and the first and last cut)
    // also seals, the others check the chain.
    f.append("alice", Some("4"), "acknowledge", json("{}"), t(11))
        .unwrap();
    if !cut.is_multiple_of(16) && cut != last_start && cut != full.len() - 1 {
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            verify_chain(&bytes).unwrap().records().len(),
            6,
            "cut at {cut}"
        );
        return;
    }
    let mut signer = SoftwareSigner::from_seed(Algorithm::Ed25519, &[7; 32]).unwrap();
    let seal = SealDetails {
        head: f.state().head(),
        artifacts: vec![],
        signers: vec![signer.key_id()],
    };
    f.append("admin", None, "seal", seal.to_value(), t(12))
        .unwrap();
    f.append_seal_signature("alice", &mut signer, t(13))
        .unwrap();
    drop(f);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..last_start], &full[..last_start]);
    assert_eq!(
        audit(&bytes, None, false).verdict,
        Verdict::Unanchored,
        "cut at {cut}"
    );
}

#[test]
fn resuming_during_the_seal_and_refusing_what_does_not_verify() {
    let c = ceremony();
    let original = lines(&c);
    // Power cut after alice signed the seal: resume, then bob and carol sign.
    let path = c.transcript.with_file_name("sealing.jsonl");
    std::fs::write(&path, join(&original[..18])).unwrap();
    let (mut f, resumed) = TranscriptFile::open_resume(&path, t(40)).unwrap();
    assert_eq!(resumed.last_seq, 17);
    assert_eq!(resumed.transcript.records().len(), 18);
    assert_eq!(resumed.record.prev, resumed.transcript.head());
    let mut s = signers();
    let again = f
        .append_seal_signature("alice", &mut s[0], t(41))
        .unwrap_err();
    assert!(again.to_string().contains("already signed"), "{again}");
    f.append_seal_signature("bob", &mut s[1], t(41)).unwrap();
    f.append_seal_signature("carol", &mut s[2], t(42)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        audit(&bytes, Some(&found(&c)), false).verdict,
        Verdict::Unanchored
    );
    let err = f
        .append("admin", None, "note", Value::Null, t(43))
        .unwrap_err();
    assert!(err.to_string().contains("after the seal"), "{err}");

    // A tampered file is not resumed: the chain error names the record.
    let mut tampered = original[..10].to_vec();
    tampered[4] = edit(&tampered[4], "actor", Value::from("mallory"));
    std::fs::write(&path, join(&tampered)).unwrap();
    let err = TranscriptFile::open_resume(&path, t(50)).unwrap_err();
    assert!(err.to_string().contains("line 5 (seq 4)"), "{err}");
    // A time before the last record is refused, and a torn line is then left in place.
    let mut torn = join(&original[..10]);
    torn.extend_from_slice(&original[10].as_bytes()[..30]);
    std::fs::write(&path, &torn).unwrap();
    let err = TranscriptFile::open_resume(&path, t(1)).unwrap_err();
    assert!(
        err.to_string().contains("before the previous record"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), torn);
    // The writer's state and the verifier's agree.
    let (records, state, err) = scan_chain(&join(&original[..10]));
    assert!(err.is_none());
    assert_eq!(state.next_seq(), 10);
    assert_eq!(state.head(), records[9].hash);
    assert_ne!(ChainState::new(), state);
}

fn conclave(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn cli_verify_exit_codes_and_output() {
    let c = ceremony();
    let (code, out, err) = conclave(&[
        "transcript",
        "verify",
        p(&c.transcript),
        "--artifacts",
        p(&c.export),
    ]);
    // Intact, but without a trusted root never VALID: exit 1.
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("Verdict: UNANCHORED: the hash chain and the seal are intact"),
        "{out}"
    );
    assert!(!out.contains("VALID"), "{out}");
    assert!(
        out.contains(
            "script conformance: not checked (the transcript does not carry its script text"
        ),
        "{out}"
    );
    assert!(out.contains("signed by 3 keyholder(s)"), "{out}");
    assert!(out.contains("  ok        1.root.json"), "{out}");
    assert!(out.contains("Script: bootstrap-root"), "{out}");
    let original = lines(&c);
    let seal_hash = parse(&original[SEAL_SEQ]).hash_hex();
    assert!(
        out.contains(&format!("seal hash: {}", &seal_hash[..4])),
        "{out}"
    );
    let seal_digest: [u8; 32] = hex::decode(&seal_hash).unwrap().try_into().unwrap();
    for line in conclave::transcript::display::pgp_word_lines(&seal_digest) {
        assert!(out.contains(&format!("    {line}\n")), "{out}");
    }

    // JSON.
    let (code, out, _) = conclave(&["transcript", "verify", p(&c.transcript), "--json"]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["verdict"], "unanchored");
    assert_eq!(doc["records"].as_array().unwrap().len(), RECORDS);
    assert_eq!(doc["seal"]["hash"], seal_hash);

    // An edited record: exit 1, naming the file, line and seq.
    let mut tampered = original.clone();
    tampered[7] = edit(&tampered[7], "actor", Value::from("mallory"));
    let bad = c.transcript.with_file_name("tampered.jsonl");
    std::fs::write(&bad, join(&tampered)).unwrap();
    let (code, out, _) = conclave(&["transcript", "verify", p(&bad)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "INVALID: {}: line 8 (seq 7): field \"hash\"",
            p(&bad)
        )),
        "{out}"
    );
    assert!(out.contains("Timeline (7 verified records)"), "{out}");
    let (code, out, _) = conclave(&["transcript", "verify", p(&bad), "--json"]);
    assert_eq!(code, 1, "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["verdict"], "invalid");
    assert_eq!(doc["first_bad_record"]["line"], 8);
    assert_eq!(doc["first_bad_record"]["seq"], 7);
    assert_eq!(doc["records"].as_array().unwrap().len(), 7);

    // Truncated: 1 without --partial, 0 with it.
    let cut = c.transcript.with_file_name("cut.jsonl");
    std::fs::write(&cut, join(&original[..9])).unwrap();
    let (code, out, _) = conclave(&["transcript", "verify", p(&cut)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no seal"), "{out}");
    let (code, out, _) = conclave(&["transcript", "verify", p(&cut), "--partial"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PARTIAL (verified up to seq 8"), "{out}");

    // A changed artifact: 1.
    std::fs::write(c.export.join("SHA256SUMS"), b"other\n").unwrap();
    let (code, out, _) = conclave(&[
        "transcript",
        "verify",
        p(&c.transcript),
        "--artifacts",
        p(&c.export),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("CHANGED   SHA256SUMS"), "{out}");

    // The Markdown report: written once, never overwritten; only .md.
    let report = c.transcript.with_file_name("audit.md");
    let (code, out, _) = conclave(&[
        "transcript",
        "verify",
        p(&cut),
        "--partial",
        "--report",
        p(&report),
    ]);
    assert_eq!(code, 0, "{out}");
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(
        md.contains("| Verdict | **PARTIAL**: verified up to seq 8;"),
        "{md}"
    );
    assert!(
        md.contains("| 8 | 2026-11-23T09:00:08Z | alice |  | 8 | generate-key |"),
        "{md}"
    );
    assert!(md.contains("script conformance: not checked"), "{md}");
    let (code, _, err) = conclave(&["transcript", "verify", p(&cut), "--report", p(&report)]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(std::fs::read_to_string(&report).unwrap(), md);
    let html = c.transcript.with_file_name("audit.html");
    let (code, out, _) = conclave(&[
        "transcript",
        "verify",
        p(&c.transcript),
        "--report",
        p(&html),
    ]);
    assert_eq!(code, 1, "{out}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<strong>UNANCHORED</strong>"), "{page}");
    assert!(page.contains(&seal_hash[..4]), "{page}");
    let txt = c.transcript.with_file_name("audit.txt");
    let (code, _, err) = conclave(&["transcript", "verify", p(&cut), "--report", p(&txt)]);
    assert_eq!(code, 2, "{err}");
    assert!(!txt.exists());

    // The transcript inside the artifacts folder is not an unlisted artifact.
    let inside = c.export.join("ceremony.jsonl");
    std::fs::copy(&c.transcript, &inside).unwrap();
    std::fs::write(c.export.join("SHA256SUMS"), b"sums\n").unwrap();
    let (code, out, _) = conclave(&[
        "transcript",
        "verify",
        p(&inside),
        "--artifacts",
        p(&c.export),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Verdict: UNANCHORED"), "{out}");
    assert!(!out.contains("unlisted"), "{out}");
    std::fs::write(c.export.join("notes.txt"), b"x").unwrap();
    let (code, out, _) = conclave(&[
        "transcript",
        "verify",
        p(&inside),
        "--artifacts",
        p(&c.export),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Verdict: UNANCHORED"), "{out}");
    assert!(out.contains("unlisted  notes.txt"), "{out}");

    // Usage and I/O: 2.
    let (code, _, err) = conclave(&["transcript", "verify", "/nonexistent/t.jsonl"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/t.jsonl"), "{err}");
    let (code, _, err) = conclave(&[
        "transcript",
        "verify",
        p(&c.transcript),
        "--artifacts",
        "/nonexistent-dir",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = conclave(&["transcript", "verify"]);
    assert_eq!(code, 2);
}

/// A stored transcript (written by this version with fixed times and keys) keeps verifying: the
/// record format cannot drift without this test noticing. `CONCLAVE_WRITE_FIXTURE=1` rewrites it.
#[test]
fn the_stored_example_transcript_verifies() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/transcript");
    if std::env::var_os("CONCLAVE_WRITE_FIXTURE").is_some() {
        let c = ceremony();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("export")).unwrap();
        std::fs::copy(&c.transcript, dir.join("ceremony.jsonl")).unwrap();
        for f in found(&c) {
            std::fs::copy(c.export.join(&f.name), dir.join("export").join(&f.name)).unwrap();
        }
    }
    let bytes = std::fs::read(dir.join("ceremony.jsonl")).unwrap();
    let found = read_artifact_dir(&dir.join("export")).unwrap();
    let a = audit(&bytes, Some(&found), false);
    assert_eq!(a.verdict, Verdict::Unanchored);
    assert_eq!(a.records.len(), RECORDS);
    let (code, out, _) = conclave(&[
        "transcript",
        "verify",
        p(&dir.join("ceremony.jsonl")),
        "--artifacts",
        p(&dir.join("export")),
    ]);
    // It does not carry its script, so it cannot be anchored: intact, UNANCHORED, exit 1.
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Verdict: UNANCHORED"), "{out}");
}

/// A changed byte anywhere in the sealed transcript fails verification (the line form is
/// strict, so even a byte that keeps the JSON meaning, such as an escape spelled differently, is
/// caught).
#[test]
fn every_single_byte_change_is_detected() {
    let c = ceremony();
    let bytes = std::fs::read(&c.transcript).unwrap();
    // Every 7th byte (all of them take ~25 s in a debug build), flipping different bits.
    for (n, i) in (0..bytes.len()).step_by(7).enumerate() {
        let flip = [0x01u8, 0x20, 0x02, 0x40][n % 4];
        let mut b = bytes.clone();
        b[i] ^= flip;
        let a = audit(&b, None, false);
        assert!(!a.intact(), "byte {i} xor {flip:#x} went unnoticed");
    }
}

#[test]
fn a_time_going_backwards_is_detected_even_with_a_consistent_chain() {
    let c = ceremony();
    for i in [1usize, 9, SEAL_SEQ, RECORDS - 1] {
        let mut tampered = lines(&c);
        tampered[i] = edit(&tampered[i], "time", Value::from("2026-11-23T08:59:59Z"));
        rechain(&mut tampered, i);
        let err = verify_chain(&join(&tampered)).unwrap_err();
        assert_eq!((err.line, err.seq), (i + 1, Some(i as u64)), "{err}");
        assert!(
            matches!(err.kind, ChainErrorKind::TimeBackwards { .. }),
            "{err}"
        );
    }
}
