//! A second, independent verifier: `tests/python/verify_transcript.py` checks transcripts with
//! securesystemslib only (canonical JSON, SSlibKey signatures), written from the auditor guide's
//! record format. It must accept what Conclave accepts and refuse what Conclave refuses.

mod common;

use std::path::Path;
use std::time::Duration;

use conclave::driver::audit_files::read_artifact_dir;
use conclave::transcript::audit::{Verdict, audit};
use conclave::transcript::record::Record;

fn python_verdict(transcript: &Path, artifacts: Option<&Path>) -> common::Run {
    let mut args = vec![transcript.to_str().unwrap()];
    if let Some(dir) = artifacts {
        args.push("--artifacts");
        args.push(dir.to_str().unwrap());
    }
    common::run_python("verify_transcript.py", &args, Duration::from_secs(60))
}

#[test]
fn securesystemslib_agrees_on_the_example_transcript_and_its_tampered_copies() {
    let dir = common::manifest_dir().join("tests/data/transcript");
    let transcript = dir.join("ceremony.jsonl");
    let export = dir.join("export");
    let bytes = std::fs::read(&transcript).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    let run = python_verdict(&transcript, Some(&export));
    assert_eq!(run.code(), 0, "{run:?}");
    let seal = lines
        .iter()
        .map(|l| Record::parse_line(l.as_bytes()).unwrap())
        .find(|r| r.action == "seal")
        .unwrap();
    assert_eq!(run.stdout.trim(), format!("ok {}", seal.hash_hex()));

    // Tampered copies: both verifiers refuse each one.
    let tmp = tempfile::tempdir().unwrap();
    let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
    variants.push((
        "edited actor".into(),
        text.replacen("\"actor\":\"bob\"", "\"actor\":\"bot\"", 1)
            .into_bytes(),
    ));
    let mut deleted: Vec<&str> = lines.clone();
    deleted.remove(4);
    variants.push((
        "deleted record".into(),
        format!("{}\n", deleted.join("\n")).into_bytes(),
    ));
    // The last two seal signatures swapped, the records after the seal renumbered and rechained
    // (only the seal hash is signed): the seal's list of signers fixes their order.
    let mut records: Vec<Record> = lines
        .iter()
        .map(|l| Record::parse_line(l.as_bytes()).unwrap())
        .collect();
    let n = records.len();
    records.swap(n - 1, n - 2);
    for i in n - 2..n {
        records[i].seq = i as u64;
        records[i].prev = records[i - 1].hash;
        records[i].hash = records[i].compute_hash();
    }
    variants.push((
        "seal signatures reordered".into(),
        records
            .iter()
            .map(Record::to_line)
            .collect::<String>()
            .into_bytes(),
    ));
    variants.push((
        "truncated".into(),
        format!("{}\n", lines[..12].join("\n")).into_bytes(),
    ));
    variants.push((
        "last signature cut".into(),
        format!("{}\n", lines[..lines.len() - 1].join("\n")).into_bytes(),
    ));
    for (what, b) in &variants {
        let path = tmp.path().join("t.jsonl");
        std::fs::write(&path, b).unwrap();
        let ours = audit(b, None, false);
        assert!(!ours.intact(), "{what}: Conclave accepted it");
        let run = python_verdict(&path, None);
        assert_eq!(run.code(), 1, "{what}: {run:?}");
        std::fs::remove_file(&path).unwrap();
    }

    // A changed artifact: both refuse.
    let art = tmp.path().join("export");
    std::fs::create_dir(&art).unwrap();
    for f in read_artifact_dir(&export).unwrap() {
        std::fs::copy(export.join(&f.name), art.join(&f.name)).unwrap();
    }
    std::fs::write(art.join("1.targets.json"), b"{\"targets\": {1}}").unwrap();
    let ours = audit(&bytes, Some(&read_artifact_dir(&art).unwrap()), false);
    assert!(matches!(ours.verdict, Verdict::Invalid(_)));
    let run = python_verdict(&transcript, Some(&art));
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(run.stdout.contains("1.targets.json differs"), "{run:?}");
}
