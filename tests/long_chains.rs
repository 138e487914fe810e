//! Long root chains: Conclave checks the signatures of the next roots on several cores, a batch
//! at a time, ahead of its walk. These tests check that the verdicts are the walk's own: every
//! version is counted against the keys of the root before it and its own, the first faulty
//! version is the one named, and chains longer than one batch verify to the end.

mod common;

use std::collections::HashMap;

use common::builders::*;
use conclave::tuf::repository::verify_repository;

/// Root version `v`, whose root key (and every other role's) is key `v`.
fn root_v(v: u64) -> serde_json::Value {
    let k = key(v);
    root(
        v,
        &[
            ("root", &[&k], 1),
            ("timestamp", &[&k], 1),
            ("snapshot", &[&k], 1),
            ("targets", &[&k], 1),
        ],
    )
}

fn key(v: u64) -> TestKey {
    TestKey::ed25519((v % 200) as u8 + 30)
}

/// Roots 2..=n, each signed by the previous root's key and its own (a rotation at every
/// version), as a folder of files; the trusted root is v1.
fn chain(n: u64) -> (Vec<u8>, HashMap<String, Vec<u8>>) {
    let mut files = HashMap::new();
    for v in 2..=n {
        files.insert(
            format!("{v}.root.json"),
            sign(&root_v(v), &[&key(v - 1), &key(v)]),
        );
    }
    (sign(&root_v(1), &[&key(1)]), files)
}

fn verdict_of(trusted: &[u8], files: &HashMap<String, Vec<u8>>) -> Result<u64, String> {
    let report = verify_repository("1.root.json", trusted, files, now());
    verdict(&report)?;
    Ok(report.final_root_version().unwrap_or(0))
}

#[test]
fn a_chain_longer_than_one_batch_verifies_to_its_last_version() {
    let (trusted, files) = chain(150);
    assert_eq!(verdict_of(&trusted, &files), Ok(150));
}

#[test]
fn a_version_not_signed_by_the_previous_root_is_named_even_deep_in_a_batch() {
    for bad in [2u64, 40, 64, 65, 66, 129] {
        let (trusted, mut files) = chain(140);
        // Signed by its own key only: the previous root's threshold is not met.
        files.insert(format!("{bad}.root.json"), sign(&root_v(bad), &[&key(bad)]));
        let err = verdict_of(&trusted, &files).expect_err("the chain is broken");
        assert!(err.contains(&format!("{bad}.root.json")), "{bad}: {err}");
    }
}

#[test]
fn a_version_not_signed_by_its_own_keys_is_refused() {
    let (trusted, mut files) = chain(80);
    files.insert("70.root.json".into(), sign(&root_v(70), &[&key(69)]));
    let err = verdict_of(&trusted, &files).expect_err("v70 lacks its own signature");
    assert!(
        err.contains("70.root.json") && err.contains("its own"),
        "{err}"
    );
}

#[test]
fn a_signature_copied_from_another_version_does_not_count() {
    // v31 carries v30's valid signatures (over other bytes): checks made for one file are
    // never used for another.
    let (trusted, mut files) = chain(90);
    let v30: serde_json::Value = serde_json::from_slice(&files["30.root.json"]).unwrap();
    let mut v31: serde_json::Value = serde_json::from_slice(&files["31.root.json"]).unwrap();
    v31["signatures"] = v30["signatures"].clone();
    files.insert("31.root.json".into(), serde_json::to_vec(&v31).unwrap());
    let err = verdict_of(&trusted, &files).expect_err("v31's signatures are over v30");
    assert!(err.contains("31.root.json"), "{err}");
}

#[test]
fn an_unreadable_or_missing_version_ends_or_breaks_the_chain_where_it_is() {
    let (trusted, mut files) = chain(100);
    files.insert("77.root.json".into(), b"{not json".to_vec());
    let err = verdict_of(&trusted, &files).expect_err("v77 does not parse");
    assert!(err.contains("77.root.json"), "{err}");

    let (trusted, mut files) = chain(100);
    files.remove("77.root.json");
    let err = verdict_of(&trusted, &files).expect_err("a gap at v77");
    assert!(err.contains("77"), "{err}");
}
