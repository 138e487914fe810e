//! Repositories that Conclave builds and signs (in-memory software keys for now) verify in the
//! reference clients: python-tuf's Metadata API and its ngclient Updater downloading targets
//! over HTTP on 127.0.0.1, and the tough crate. And the other way round: python-tuf's
//! repositories and the real public vectors load and verify in tough as they do in Conclave.

mod common;

use std::collections::HashMap;
use std::path::Path;

use conclave::signer::Signer;
use conclave::signer::software::SoftwareSigner;
use conclave::tuf::canonical::Value;
use conclave::tuf::edit::{self, NewDelegation, RoleKeys};
use conclave::tuf::key::Algorithm;
use conclave::tuf::metadata::{Metadata, RoleType, SignedPayload, Targets};
use conclave::tuf::repository::{MetadataSource, verify_repository};
use time::OffsetDateTime;
use time::macros::datetime;

const EXPIRES: OffsetDateTime = datetime!(2035-01-01 0:00 UTC);
const AT: &str = "2030-01-01T00:00:00Z";

fn signer(seed: u8, alg: Algorithm) -> SoftwareSigner {
    SoftwareSigner::from_seed(alg, &[seed; 48]).expect("valid seed")
}

fn sign_all<T: SignedPayload>(md: &mut Metadata<T>, signers: &mut [&mut SoftwareSigner]) {
    for s in signers.iter_mut() {
        conclave::signer::sign_metadata(md, *s).expect("software signer signs");
    }
}

/// A repository written the way a registry publishes it (consistent snapshots).
struct Written {
    metadata: std::path::PathBuf,
    targets: std::path::PathBuf,
}

fn write(dir: &Path, files: &[(String, Vec<u8>)], targets: &[(String, Vec<u8>)]) -> Written {
    let metadata = dir.join("metadata");
    let tdir = dir.join("targets");
    std::fs::create_dir_all(&metadata).unwrap();
    for (name, bytes) in files {
        std::fs::write(metadata.join(name), bytes).unwrap();
    }
    for (path, bytes) in targets {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(bytes));
        let p = Path::new(path);
        let parent = tdir.join(p.parent().unwrap_or(Path::new("")));
        std::fs::create_dir_all(&parent).unwrap();
        let name = p.file_name().unwrap().to_str().unwrap();
        std::fs::write(parent.join(format!("{digest}.{name}")), bytes).unwrap();
    }
    Written {
        metadata,
        targets: tdir,
    }
}

/// Builds: root v1 (Ed25519 + P-256 + P-384 keys, root 2-of-3) rotated to v2 (one key
/// replaced, threshold 2-of-3) and v3 (threshold raised to 3-of-3), targets with two files and
/// custom data, a terminating delegation `team` with paths, a hash-bin delegation under
/// `bins`-parent, snapshot and timestamp.
fn conclave_repository(dir: &Path) -> Written {
    build(dir, Algorithm::EcdsaP384, true)
}

/// tough 0.24 reads neither P-384 keys nor TAP 15 hash bins (`succinct_roles`), so its tests
/// get a repository whose third key is P-256 and whose `pkg` role delegates nothing.
fn conclave_repository_for_tough(dir: &Path) -> Written {
    build(dir, Algorithm::EcdsaP256, false)
}

fn build(dir: &Path, carol_alg: Algorithm, hash_bins: bool) -> Written {
    let mut alice = signer(1, Algorithm::Ed25519);
    let mut bob = signer(2, Algorithm::EcdsaP256);
    let carol = signer(3, carol_alg);
    let mut dave = signer(4, Algorithm::EcdsaP256);
    let mut online = signer(5, Algorithm::Ed25519);
    let mut team_key = signer(6, Algorithm::EcdsaP256);
    let mut bins_key = signer(7, Algorithm::Ed25519);

    let offline = vec![alice.key().clone(), bob.key().clone(), carol.key().clone()];
    let roles = vec![
        RoleKeys {
            role: RoleType::Root,
            keys: offline.clone(),
            threshold: 2,
        },
        RoleKeys {
            role: RoleType::Targets,
            keys: offline.clone(),
            threshold: 2,
        },
        RoleKeys {
            role: RoleType::Snapshot,
            keys: vec![online.key().clone()],
            threshold: 1,
        },
        RoleKeys {
            role: RoleType::Timestamp,
            keys: vec![online.key().clone()],
            threshold: 1,
        },
    ];
    let mut v1 = Metadata::new(edit::new_root(&roles, EXPIRES).unwrap());
    sign_all(&mut v1, &mut [&mut alice, &mut bob]);

    // v2: carol's key replaced by dave's; signed by 2 of v1's keys and 2 of v2's.
    let mut r2 = edit::next_root(v1.signed(), EXPIRES);
    edit::remove_root_key(&mut r2, RoleType::Root, &carol.key_id()).unwrap();
    edit::add_root_key(&mut r2, RoleType::Root, dave.key().clone()).unwrap();
    let mut v2 = Metadata::new(r2);
    sign_all(&mut v2, &mut [&mut alice, &mut bob, &mut dave]);

    // v3: threshold 3-of-3.
    let mut r3 = edit::next_root(v2.signed(), EXPIRES);
    edit::set_root_threshold(&mut r3, RoleType::Root, 3).unwrap();
    let mut v3 = Metadata::new(r3);
    sign_all(&mut v3, &mut [&mut alice, &mut bob, &mut dave]);

    let target_files: Vec<(String, Vec<u8>)> = vec![
        ("hello.txt".into(), b"hello, world\n".to_vec()),
        (
            "docs/readme.md".into(),
            "# Conclave \u{2713}\n".as_bytes().to_vec(),
        ),
        (
            "team/tool-1.0.tar.gz".into(),
            vec![0x1f, 0x8b, 8, 0, 1, 2, 3],
        ),
        ("pkg/bin-me-1.0.whl".into(), b"wheel".to_vec()),
    ];
    let mut targets = edit::new_targets(EXPIRES);
    let custom = Value::parse(br#"{"owner": "registry", "note": "caf\u00e9"}"#).unwrap();
    edit::set_target(
        &mut targets,
        "hello.txt",
        edit::target_file(&target_files[0].1, Some(custom)),
    )
    .unwrap();
    edit::set_target(
        &mut targets,
        "docs/readme.md",
        edit::target_file(&target_files[1].1, None),
    )
    .unwrap();
    edit::add_delegation(
        &mut targets,
        &NewDelegation {
            name: "team".into(),
            keys: vec![team_key.key().clone()],
            threshold: 1,
            paths: vec!["team/*".into()],
            terminating: true,
        },
    )
    .unwrap();
    edit::add_delegation(
        &mut targets,
        &NewDelegation {
            name: "pkg".into(),
            keys: vec![bins_key.key().clone()],
            threshold: 1,
            paths: vec!["pkg/*".into()],
            terminating: false,
        },
    )
    .unwrap();
    let mut targets_md = Metadata::new(targets);
    sign_all(&mut targets_md, &mut [&mut alice, &mut bob]);

    let mut team = edit::new_targets(EXPIRES);
    edit::set_target(
        &mut team,
        "team/tool-1.0.tar.gz",
        edit::target_file(&target_files[2].1, None),
    )
    .unwrap();
    let mut team_md = Metadata::new(team);
    sign_all(&mut team_md, &mut [&mut team_key]);

    // `pkg` delegates everything to 4 hash bins (TAP 15); the bin for the wheel lists it.
    let mut pkg = edit::new_targets(EXPIRES);
    if hash_bins {
        edit::set_succinct_delegation(&mut pkg, "bin", 2, &[online.key().clone()], 1).unwrap();
    } else {
        edit::set_target(
            &mut pkg,
            "pkg/bin-me-1.0.whl",
            edit::target_file(&target_files[3].1, None),
        )
        .unwrap();
    }
    let mut pkg_md = Metadata::new(pkg.clone());
    sign_all(&mut pkg_md, &mut [&mut bins_key]);
    let mut bin_files = Vec::new();
    let succinct = pkg
        .delegations
        .as_ref()
        .and_then(|d| d.succinct_roles.clone());
    for i in 0..succinct.as_ref().map_or(0, |s| s.bin_count()) {
        let Some(succinct) = &succinct else { break };
        let name = succinct.bin_name(i);
        let mut bin = edit::new_targets(EXPIRES);
        if succinct.bin_for_target("pkg/bin-me-1.0.whl") == name {
            edit::set_target(
                &mut bin,
                "pkg/bin-me-1.0.whl",
                edit::target_file(&target_files[3].1, None),
            )
            .unwrap();
        }
        let mut md: Metadata<Targets> = Metadata::new(bin);
        sign_all(&mut md, &mut [&mut online]);
        bin_files.push((name, md));
    }

    let mut snapshot_roles = vec![
        ("targets".to_string(), 1),
        ("team".to_string(), 1),
        ("pkg".to_string(), 1),
    ];
    snapshot_roles.extend(bin_files.iter().map(|(n, _)| (n.clone(), 1)));
    let mut snapshot = Metadata::new(edit::new_snapshot(1, EXPIRES, &snapshot_roles));
    sign_all(&mut snapshot, &mut [&mut online]);
    let snapshot_bytes = snapshot.to_file_bytes();
    let mut timestamp = Metadata::new(edit::new_timestamp(1, EXPIRES, 1, &snapshot_bytes));
    sign_all(&mut timestamp, &mut [&mut online]);

    let mut files = vec![
        ("1.root.json".to_string(), v1.to_file_bytes()),
        ("2.root.json".to_string(), v2.to_file_bytes()),
        ("3.root.json".to_string(), v3.to_file_bytes()),
        ("root.json".to_string(), v3.to_file_bytes()),
        ("1.targets.json".to_string(), targets_md.to_file_bytes()),
        ("1.team.json".to_string(), team_md.to_file_bytes()),
        ("1.pkg.json".to_string(), pkg_md.to_file_bytes()),
        ("1.snapshot.json".to_string(), snapshot_bytes),
        ("timestamp.json".to_string(), timestamp.to_file_bytes()),
    ];
    for (name, md) in &bin_files {
        files.push((format!("1.{name}.json"), md.to_file_bytes()));
    }
    write(dir, &files, &target_files)
}

fn folder(dir: &Path) -> HashMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn at() -> OffsetDateTime {
    OffsetDateTime::parse(AT, &time::format_description::well_known::Rfc3339).unwrap()
}

#[test]
fn conclave_repository_verifies_in_conclave() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = conclave_repository(tmp.path());
    let src = folder(&repo.metadata);
    let root1 = src.read("1.root.json").unwrap().unwrap();
    let report = verify_repository("1.root.json", &root1, &src, at());
    assert!(report.is_valid(), "{:?}\n{:?}", report.error, report.notes);
    assert_eq!(report.final_root_version(), Some(3));
    let roles: Vec<&str> = report.roles.iter().map(|r| r.role.as_str()).collect();
    assert_eq!(
        roles,
        [
            "timestamp",
            "snapshot",
            "targets",
            "team",
            "pkg",
            "bin-0",
            "bin-1",
            "bin-2",
            "bin-3"
        ]
    );
}

#[test]
fn conclave_repository_verifies_in_python_tuf_and_its_client_downloads_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = conclave_repository(tmp.path());
    let trusted = repo.metadata.join("1.root.json");
    let run = common::verify_repo(
        &repo.metadata,
        &[
            "--trusted-root",
            trusted.to_str().unwrap(),
            "--targets",
            repo.targets.to_str().unwrap(),
            "--at",
            AT,
            "--download-all",
        ],
    );
    assert_eq!(
        run.code(),
        0,
        "python-tuf refused Conclave's repository: {run:?}"
    );
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["valid"], true);
    let downloaded = summary["client"].to_string();
    for t in [
        "hello.txt",
        "docs/readme.md",
        "team/tool-1.0.tar.gz",
        "pkg/bin-me-1.0.whl",
    ] {
        assert!(downloaded.contains(t), "{t} not downloaded: {downloaded}");
    }
}

#[test]
fn python_tuf_rejects_conclave_repository_after_tampering() {
    // The positive test above is only meaningful if python-tuf would notice a change.
    let tmp = tempfile::tempdir().unwrap();
    let repo = conclave_repository(tmp.path());
    let path = repo.metadata.join("1.team.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"length\": 7", "\"length\": 8", 1)).unwrap();
    let trusted = repo.metadata.join("1.root.json");
    let run = common::verify_repo(
        &repo.metadata,
        &[
            "--trusted-root",
            trusted.to_str().unwrap(),
            "--at",
            AT,
            "--no-client",
        ],
    );
    assert_eq!(run.code(), 1, "{run:?}");
}

async fn tough_load(
    root: &[u8],
    metadata: &Path,
    targets: &Path,
) -> Result<tough::Repository, tough::error::Error> {
    let m = url::Url::from_directory_path(metadata).unwrap();
    let t = url::Url::from_directory_path(targets).unwrap();
    tough::RepositoryLoader::new(&root, m, t)
        .expiration_enforcement(tough::ExpirationEnforcement::Unsafe)
        .load()
        .await
}

#[tokio::test]
async fn conclave_repository_verifies_in_tough() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = conclave_repository_for_tough(tmp.path());
    let root = std::fs::read(repo.metadata.join("1.root.json")).unwrap();
    let loaded = tough_load(&root, &repo.metadata, &repo.targets)
        .await
        .expect("tough loads Conclave's repository");
    assert_eq!(u64::from(loaded.root().signed.version), 3);
    let name = tough::TargetName::new("hello.txt").unwrap();
    let stream = loaded
        .read_target(&name)
        .await
        .unwrap()
        .expect("target exists");
    use futures_util::TryStreamExt;
    let bytes: Vec<u8> = stream.map_ok(|b| b.to_vec()).try_concat().await.unwrap();
    assert_eq!(bytes, b"hello, world\n");
}

#[tokio::test]
async fn tough_rejects_conclave_repository_with_a_forged_root() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = conclave_repository_for_tough(tmp.path());
    // v2 signed by only one key of v1: rewrite it with one signature dropped.
    let path = repo.metadata.join("2.root.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["signatures"].as_array_mut().unwrap().truncate(1);
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let root = std::fs::read(repo.metadata.join("1.root.json")).unwrap();
    assert!(
        tough_load(&root, &repo.metadata, &repo.targets)
            .await
            .is_err()
    );
    // And Conclave agrees, naming the file.
    let src = folder(&repo.metadata);
    let report = verify_repository("1.root.json", &root, &src, at());
    let err = report.error.unwrap();
    assert!(
        err.contains("2.root.json") && err.contains("threshold"),
        "{err}"
    );
}

#[tokio::test]
async fn python_tuf_repository_verifies_in_tough_and_conclave() {
    let tmp = tempfile::tempdir().unwrap();
    // tough 0.24 reads neither P-384 keys nor hash bins: python-tuf's repository without them.
    common::make_repo(
        tmp.path(),
        &[
            "--root-rotations",
            "2",
            "--key-types",
            "ed25519,ecdsa",
            "--no-delegations",
        ],
    );
    let metadata = tmp.path().join("metadata");
    // tough's file transport does not decode %20 in role file names the way a web server does.
    for e in std::fs::read_dir(&metadata).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.contains(' ') {
            std::fs::copy(
                metadata.join(&name),
                metadata.join(name.replace(' ', "%20")),
            )
            .unwrap();
        }
    }
    let root = std::fs::read(metadata.join("1.root.json")).unwrap();
    tough_load(&root, &metadata, &tmp.path().join("targets"))
        .await
        .expect("tough loads python-tuf's repository");
    let report = verify_repository("1.root.json", &root, &folder(&metadata), at());
    assert!(report.is_valid(), "{:?}", report.error);
}

#[tokio::test]
async fn real_vectors_verify_in_tough_as_in_conclave() {
    let base = common::manifest_dir().join("tests/data/vectors/tuf-conformance-static");
    // tough rejects key ids that are not the key's hash (sigstore v11), so it starts from the
    // initial root the conformance suite uses (v12); tuf-on-ci from its own.
    for (name, root_file) in [
        ("tuf-on-ci-0.11", "initial_root.json"),
        ("sigstore-root-signing", "initial_root.json"),
    ] {
        let dir = base.join(name);
        let root = std::fs::read(dir.join(root_file)).unwrap();
        let metadata = dir.join("metadata");
        tough_load(&root, &metadata, &dir.join("targets"))
            .await
            .unwrap_or_else(|e| panic!("tough refused {name}: {e}"));
        let faketime = std::fs::read_to_string(dir.join("faketime")).unwrap();
        let when = OffsetDateTime::parse(
            &faketime.trim().replacen(' ', "T", 1).replace("+00:00", "Z"),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let report = verify_repository(root_file, &root, &folder(&metadata), when);
        assert!(report.is_valid(), "{name}: {:?}", report.error);
    }
}
