//! `make bench` only (ignored in `make test`): the two measurements of the benchmark table that
//! are not a command line, each run as a child process by tests/bench/compare.py on a repository
//! that tests/bench/run.sh generated (`BENCH_REPO=DIR`, with DIR/metadata and DIR/bench.json):
//!
//! - `tough_child`: tough 0.24 (AWS's Rust TUF client) loads the repository from `file://`
//!   URLs: root chain, timestamp, snapshot, targets and every delegated role (tough loads them
//!   all at load time), and the test checks that it did;
//! - `floor_child`: the floor, what any verifier must at least do: SHA-256 over every byte of
//!   the metadata plus one signature check per signature (keys decoded and canonical bytes made
//!   beforehand, not timed).
//!
//! Each prints one JSON line (`BENCH {...}`) that compare.py reads; compare.py measures wall time
//! and peak RSS of the process from outside.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use conclave::tuf::key::PublicKey;
use conclave::tuf::metadata::AnyMetadata;
use sha2::Digest;

fn bench_repo() -> PathBuf {
    let dir = std::env::var("BENCH_REPO").expect("BENCH_REPO=DIR (run by make bench)");
    // file:// URLs need an absolute path.
    std::fs::canonicalize(dir).expect("BENCH_REPO exists")
}

fn bench_json() -> serde_json::Value {
    let text = std::fs::read_to_string(bench_repo().join("bench.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
#[ignore = "benchmark: run by `make bench` (tests/bench/compare.py) with BENCH_REPO set"]
async fn tough_child() {
    let dir = bench_repo();
    let metadata = dir.join("metadata");
    let root = std::fs::read(metadata.join("1.root.json")).unwrap();
    let m = url::Url::from_directory_path(&metadata).unwrap();
    let t = url::Url::from_directory_path(dir.join("targets")).unwrap();
    let start = Instant::now();
    let repo = tough::RepositoryLoader::new(&root, m, t)
        .expiration_enforcement(tough::ExpirationEnforcement::Unsafe)
        .load()
        .await
        .expect("tough loads the bench repository");
    let seconds = start.elapsed().as_secs_f64();
    let bench = bench_json();
    let targets = repo.targets().signed.targets.len();
    let delegations = repo.targets().signed.delegations.as_ref();
    let loaded = delegations.map_or(0, |d| {
        d.roles.iter().filter(|r| r.targets.is_some()).count()
    });
    assert_eq!(targets as u64, bench["targets"].as_u64().unwrap());
    assert_eq!(
        loaded as u64,
        bench["delegated_roles"].as_u64().unwrap_or(0)
    );
    assert_eq!(
        repo.root().signed.version.get(),
        bench["root_versions"].as_u64().unwrap()
    );
    println!(
        "BENCH {}",
        serde_json::json!({"tool": "tough 0.24", "seconds": seconds, "targets": targets, "delegated_roles": loaded})
    );
}

#[test]
#[ignore = "benchmark: run by `make bench` (tests/bench/compare.py) with BENCH_REPO set"]
fn floor_child() {
    let metadata = bench_repo().join("metadata");
    let mut files: Vec<Vec<u8>> = Vec::new();
    for e in std::fs::read_dir(&metadata).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().is_some_and(|n| n != "root.json")
            && p.extension().is_some_and(|x| x == "json")
        {
            files.push(std::fs::read(&p).unwrap());
        }
    }
    // Untimed: decode every key any root or delegation lists, and pair each signature with
    // its key and the canonical bytes it covers.
    let parsed: Vec<AnyMetadata> = files
        .iter()
        .map(|b| AnyMetadata::from_bytes(b).unwrap())
        .collect();
    let mut keys: HashMap<String, PublicKey> = HashMap::new();
    for md in &parsed {
        let list = match md {
            AnyMetadata::Root(r) => Some(&r.signed().keys),
            AnyMetadata::Targets(t) => t.signed().delegations.as_ref().map(|d| &d.keys),
            _ => None,
        };
        for (id, key) in list.into_iter().flatten() {
            keys.insert(id.0.clone(), key.public_key().unwrap());
        }
    }
    let mut work: Vec<(&PublicKey, &[u8], Vec<u8>)> = Vec::new();
    for md in &parsed {
        for s in md.signatures() {
            if let (Some(pk), false) = (keys.get(&s.keyid.0), s.sig.is_empty()) {
                work.push((pk, md.signed_bytes(), hex::decode(&s.sig).unwrap()));
            }
        }
    }
    let bytes: usize = files.iter().map(Vec::len).sum();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for f in &files {
            std::hint::black_box(sha2::Sha256::digest(f));
        }
        for (pk, msg, sig) in &work {
            pk.verify(msg, sig)
                .expect("every signature of the bench repository verifies");
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    assert_eq!(
        work.len() as u64,
        bench_json()["signatures"].as_u64().unwrap(),
        "one check per signature in the files"
    );
    println!(
        "BENCH {}",
        serde_json::json!({"tool": "floor", "seconds": best, "bytes": bytes, "signatures": work.len()})
    );
}
