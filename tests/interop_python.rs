//! Interoperability with the reference implementation, python-tuf 7.0.1.
//!
//! python-tuf builds repositories (`tests/python/make_repo.py`) and judges them
//! (`tests/python/verify_repo.py`: `Metadata.verify_delegate` over every role, then
//! `tuf.ngclient.Updater` refreshing from a local HTTP server and downloading targets).
//! The first tests prove that this harness works and can say no; the `conclave_*` tests hold
//! Conclave's verdict to python-tuf's on the same files.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{AT, copy_dir, make_repo, run_with_timeout, securesystemslib_canonical, verify_repo};

/// Flips one hex digit in the middle of the first signature of a metadata file, leaving every
/// other byte as it was. Returns the key id whose signature was broken.
fn flip_signature_byte(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("metadata file");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("metadata is JSON");
    let sig = doc["signatures"][0]["sig"].as_str().expect("a signature");
    let keyid = doc["signatures"][0]["keyid"].as_str().expect("a key id");
    let mut flipped: Vec<char> = sig.chars().collect();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == '0' { '1' } else { '0' };
    let flipped: String = flipped.into_iter().collect();
    assert_eq!(
        text.matches(sig).count(),
        1,
        "signature is unique in the file"
    );
    std::fs::write(file, text.replace(sig, &flipped)).expect("write tampered file");
    keyid.to_string()
}

fn role_signers(report: &serde_json::Value, role: &str) -> Vec<String> {
    report["roles"][role]["signed_by"]
        .as_array()
        .unwrap_or_else(|| panic!("no report for role {role}: {report}"))
        .iter()
        .map(|k| k.as_str().expect("key id").to_string())
        .collect()
}

#[test]
fn python_tuf_repository_with_rotations_and_delegations_verifies_in_python_tuf() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let summary = make_repo(
        &repo,
        &[
            "--key-types",
            "ed25519,ecdsa",
            "--root-rotations",
            "2",
            "--targets",
            "10",
        ],
    );
    let metadata = repo.join("metadata");
    for name in [
        "1.root.json",
        "2.root.json",
        "3.root.json",
        "root.json",
        "timestamp.json",
        "1.snapshot.json",
        "1.targets.json",
        "1.release team.json",
        "1.hashed.json",
        "1.frozen.json",
        "1.bins.json",
        "1.bin-0.json",
        "1.bin-3.json",
    ] {
        assert!(metadata.join(name).is_file(), "{name} was not written");
    }
    let keys = std::fs::read_to_string(repo.join("keys/keys.json")).expect("keys.json");
    assert!(keys.contains("\"ecdsa-sha2-nistp256\"") && keys.contains("\"ed25519\""));

    // (a) Metadata API only: root chain and every role, with who signed.
    let run = verify_repo(&metadata, &["--at", AT, "--no-client"]);
    assert_eq!(
        run.code(),
        0,
        "python-tuf rejected its own repository: {run:?}"
    );
    let report = run.json();
    assert_eq!(report["valid"], true);
    let versions: Vec<u64> = report["roots"]
        .as_array()
        .expect("roots")
        .iter()
        .map(|r| r["version"].as_u64().expect("version"))
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    // Each rotation is signed by the old root's threshold and the new root's threshold.
    for root in &report["roots"].as_array().expect("roots")[1..] {
        let old = &root["previous"];
        assert!(
            old["signed_by"].as_array().expect("signers").len() as u64
                >= old["threshold"].as_u64().expect("threshold")
        );
        assert_ne!(
            old["signed_by"], root["signed_by"],
            "old and new keys differ"
        );
    }
    assert_eq!(role_signers(&report, "hashed").len(), 2, "threshold 2 role");
    for role in [
        "release team",
        "frozen",
        "bins",
        "bin-0",
        "bin-1",
        "bin-2",
        "bin-3",
    ] {
        assert_eq!(role_signers(&report, role).len(), 1, "{role}");
    }
    assert_eq!(report["warnings"], serde_json::json!([]));

    // (b) ngclient refreshes from 127.0.0.1 and downloads every target through the delegations.
    let run = verify_repo(&metadata, &["--at", AT, "--download-all"]);
    assert_eq!(run.code(), 0, "ngclient rejected the repository: {run:?}");
    let report = run.json();
    assert_eq!(report["client"]["refreshed"], true);
    assert_eq!(report["client"]["root_version"], 3);
    let downloads = report["client"]["downloads"]
        .as_object()
        .expect("downloads");
    let targets = summary["targets"].as_object().expect("targets");
    assert_eq!(downloads.len(), targets.len());
    for (name, target) in targets {
        assert_eq!(downloads[name]["sha256"], target["sha256"], "{name}");
    }
    assert!(targets.contains_key("bins/t4.txt") && targets.contains_key("hashed/t2.txt"));
}

#[test]
fn python_tuf_rejects_a_flipped_byte_in_the_snapshot_signature() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    // Without lengths and hashes in timestamp, the signature is the only thing that breaks.
    make_repo(&repo, &["--no-meta-hashes", "--targets", "5"]);
    let good = verify_repo(
        &repo.join("metadata"),
        &["--at", AT, "--download", "readme-0.txt"],
    );
    assert_eq!(good.code(), 0, "untampered copy must verify: {good:?}");

    let keyid = flip_signature_byte(&repo.join("metadata/1.snapshot.json"));
    let run = verify_repo(&repo.join("metadata"), &["--at", AT, "--no-client"]);
    assert_eq!(run.code(), 1, "tampered snapshot accepted: {run:?}");
    assert!(run.stderr.contains("role snapshot"), "{}", run.stderr);
    assert!(run.stderr.contains("1.snapshot.json"), "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["valid"], false);
    assert_eq!(report["role"], "snapshot");
    let error = report["error"].as_str().expect("error");
    assert!(error.contains("UnsignedMetadataError"), "{error}");
    assert!(
        !error.contains(&keyid),
        "the broken signature must not count: {error}"
    );

    // The root chain is untouched: the failure is the snapshot's alone.
    let run = verify_repo(&repo.join("metadata"), &["--at", AT, "--roots-only"]);
    assert_eq!(run.code(), 0, "{run:?}");
}

/// Removes the signature of key `name` (from keys/keys.json) from a metadata file.
fn drop_signature(repo: &Path, file: &str, name: &str) {
    let keys: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("keys/keys.json")).expect("keys"))
            .expect("keys.json");
    let keyid = keys[name]["keyid"].as_str().expect("key id").to_string();
    let path = repo.join("metadata").join(file);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("file")).expect("JSON");
    let sigs = doc["signatures"].as_array_mut().expect("signatures");
    let before = sigs.len();
    sigs.retain(|s| s["keyid"] != keyid.as_str());
    assert_eq!(sigs.len() + 1, before, "{name} had signed {file}");
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).expect("JSON")).expect("write");
}

#[test]
fn python_tuf_rejects_a_rotation_without_the_old_threshold() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    make_repo(&repo, &["--root-rotations", "1", "--targets", "0"]);
    // Root 1 needs 2 of root-1..root-3; 2.root.json is signed by root-1 and root-2 (old) and by
    // root-4 (new, threshold 1). Without root-1 the new threshold still holds, the old does not.
    drop_signature(&repo, "2.root.json", "root-1");
    let run = verify_repo(&repo.join("metadata"), &["--at", AT, "--roots-only"]);
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(run.stderr.contains("role root") && run.stderr.contains("2.root.json"));
    assert!(run.stderr.contains("threshold 2"), "{}", run.stderr);
}

#[test]
fn python_tuf_verdict_follows_the_reference_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    make_repo(
        &repo,
        &["--root-rotations", "1", "--expires", "2031-06-01T00:00:00Z"],
    );
    let metadata = repo.join("metadata");
    let inside = verify_repo(&metadata, &["--at", "2031-05-31T23:59:59Z"]);
    assert_eq!(inside.code(), 0, "{inside:?}");
    let after = verify_repo(&metadata, &["--at", "2031-06-01T00:00:01Z", "--no-client"]);
    assert_eq!(after.code(), 1, "{after:?}");
    assert!(after.stderr.contains("role root") && after.stderr.contains("expired"));
    let roots_after = verify_repo(&metadata, &["--at", "2031-06-01T00:00:01Z", "--roots-only"]);
    assert_eq!(roots_after.code(), 1, "{roots_after:?}");
    let usage = verify_repo(&metadata, &["--at", "not a time"]);
    assert_eq!(usage.code(), 2, "{usage:?}");
}

#[test]
fn python_tuf_repository_with_p384_keys_verifies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    make_repo(
        &repo,
        &["--key-types", "ecdsa-p384,ecdsa,ed25519", "--targets", "5"],
    );
    let keys = std::fs::read_to_string(repo.join("keys/keys.json")).expect("keys.json");
    assert!(keys.contains("\"ecdsa-sha2-nistp384\""), "{keys}");
    let root = std::fs::read_to_string(repo.join("metadata/1.root.json")).expect("root");
    assert!(root.contains("\"ecdsa-sha2-nistp384\""));
    let run = verify_repo(
        &repo.join("metadata"),
        &["--at", AT, "--download", "files/t1.txt"],
    );
    assert_eq!(run.code(), 0, "{run:?}");
}

#[test]
fn make_repo_with_a_seed_is_reproducible() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    // Ed25519 signatures are deterministic, so every file must be byte-identical.
    make_repo(&a, &["--key-types", "ed25519", "--seed", "s1"]);
    make_repo(&b, &["--key-types", "ed25519", "--seed", "s1"]);
    for entry in std::fs::read_dir(a.join("metadata")).expect("metadata") {
        let name = entry.expect("entry").file_name();
        let left = std::fs::read(a.join("metadata").join(&name)).expect("a");
        let right = std::fs::read(b.join("metadata").join(&name)).expect("b");
        assert!(left == right, "{name:?} differs between runs with one seed");
    }
    let c = tmp.path().join("c");
    make_repo(&c, &["--key-types", "ed25519", "--seed", "s2"]);
    assert_ne!(
        std::fs::read(a.join("metadata/1.root.json")).expect("a"),
        std::fs::read(c.join("metadata/1.root.json")).expect("c"),
        "another seed, other keys"
    );
}

#[test]
fn securesystemslib_canonical_harness_answers_in_order() {
    let mut docs: Vec<String> = vec![
        r#"{"b": 1, "a": "é"}"#.into(),
        "1.5".into(),
        r#""\ud800""#.into(),
        "not json".into(),
        // non-NFC (e + combining acute) stays as is; control characters are not escaped
        "{\"k\":\n\"e\\u0301\\u0001\\\\\\\"\"}".into(),
        "[-12345678901234567890, true, null]".into(),
    ];
    docs.extend((0..2000).map(|i| format!(r#"{{"n": {i}, "a": [{i}]}}"#)));
    let out = securesystemslib_canonical(&docs);
    assert_eq!(out[0], Ok(r#"{"a":"é","b":1}"#.as_bytes().to_vec()));
    assert!(
        out[1].as_ref().is_err_and(|e| e.contains("1.5")),
        "{:?}",
        out[1]
    );
    assert!(
        out[2].is_err(),
        "lone surrogate cannot be UTF-8: {:?}",
        out[2]
    );
    assert!(
        out[3]
            .as_ref()
            .is_err_and(|e| e.contains("JSONDecodeError"))
    );
    assert_eq!(
        out[4],
        Ok(b"{\"k\":\"e\xcc\x81\x01\\\\\\\"\"}".to_vec()),
        "{:?}",
        out[4]
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    );
    assert_eq!(out[5], Ok(b"[-12345678901234567890,true,null]".to_vec()));
    for (i, result) in out[6..].iter().enumerate() {
        assert_eq!(
            result,
            &Ok(format!(r#"{{"a":[{i}],"n":{i}}}"#).into_bytes())
        );
    }
}

/// Runs `conclave verify` on a python-tuf repository.
fn conclave_verify(repo: &Path) -> common::Run {
    let metadata = repo.join("metadata");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conclave"));
    cmd.arg("verify")
        .arg("--trusted-root")
        .arg(metadata.join("1.root.json"))
        .arg("--repo")
        .arg(&metadata)
        .arg("--at")
        .arg(AT);
    run_with_timeout(&mut cmd, b"", Duration::from_secs(60))
}

#[test]
fn conclave_verify_accepts_a_python_tuf_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    make_repo(
        &repo,
        &["--key-types", "ed25519,ecdsa", "--root-rotations", "2"],
    );
    let python = verify_repo(&repo.join("metadata"), &["--at", AT, "--no-client"]);
    assert_eq!(
        python.code(),
        0,
        "python-tuf itself must accept it: {python:?}"
    );
    let run = conclave_verify(&repo);
    assert_eq!(
        run.code(),
        0,
        "conclave rejected what python-tuf accepts: {run:?}"
    );
}

#[test]
fn conclave_verify_accepts_p384_keys_and_rejects_a_rotation_without_the_old_threshold() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    make_repo(
        &repo,
        &[
            "--key-types",
            "ecdsa-p384,ed25519,ecdsa",
            "--root-rotations",
            "1",
        ],
    );
    let run = conclave_verify(&repo);
    assert_eq!(run.code(), 0, "P-384 + Ed25519 + P-256 repository: {run:?}");
    drop_signature(&repo, "2.root.json", "root-1");
    let python = verify_repo(&repo.join("metadata"), &["--at", AT, "--roots-only"]);
    assert_eq!(python.code(), 1, "python-tuf must reject it: {python:?}");
    let run = conclave_verify(&repo);
    assert_eq!(
        run.code(),
        1,
        "rotation signed by only one old key accepted: {run:?}"
    );
}

#[test]
fn conclave_verify_rejects_a_flipped_byte_in_the_snapshot_signature() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    make_repo(&repo, &["--key-types", "ed25519,ecdsa", "--no-meta-hashes"]);
    let good = tmp.path().join("good");
    copy_dir(&repo, &good);
    flip_signature_byte(&repo.join("metadata/1.snapshot.json"));
    let python = verify_repo(&repo.join("metadata"), &["--at", AT, "--no-client"]);
    assert_eq!(python.code(), 1, "python-tuf must reject it: {python:?}");

    let run = conclave_verify(&good);
    assert_eq!(run.code(), 0, "untampered copy: {run:?}");
    let run = conclave_verify(&repo);
    assert_eq!(
        run.code(),
        1,
        "conclave accepted a broken snapshot signature: {run:?}"
    );
    assert!(
        format!("{}{}", run.stdout, run.stderr).contains("snapshot"),
        "the reason names the role: {run:?}"
    );
}
