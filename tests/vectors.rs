//! The real public metadata in tests/data/vectors verifies at a reference time inside its
//! validity, through the library and through the `conclave verify` binary (exit codes and report
//! text), with its quirks (empty signature slots, signatures by unknown key ids, expiry formats,
//! key ids that are not hashes, custom fields); tough's negative cases fail for their reason.
//! attacks.md section C, T1–T4, T11, T12, T18.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::builders::*;
use conclave::folder::FolderSource;
use conclave::tuf::canonical::DEFAULT_MAX_FILE_SIZE;
use conclave::tuf::lookup::TargetSearch;
use conclave::tuf::metadata::{Metadata, Targets};
use conclave::tuf::repository::{MetadataSource, Report, quote_role_name, verify_repository};
use conclave::tuf::verify::{TrustedSet, trust_root, update_root};
use sha2::Digest;

const SIGSTORE_OK: &str = "2026-08-22T00:00:00Z";

fn valid(r: &Report) {
    assert!(r.is_valid(), "{:?}\nnotes: {:#?}", r.error, r.notes);
}

fn role<'a>(r: &'a Report, name: &str) -> &'a conclave::tuf::repository::RoleReport {
    r.roles
        .iter()
        .find(|x| x.role == name)
        .unwrap_or_else(|| panic!("no role {name} in {:?}", r.roles))
}

fn has_note(r: &Report, text: &str) -> bool {
    r.notes.iter().any(|n| n.contains(text))
}

// ---------------------------------------------------------------------------------------------
// Library

/// T1: sigstore production 1 → 15 with the published top-level and delegated metadata; every
/// intermediate root is expired at the reference time.
#[test]
fn sigstore_production_chain_and_head() {
    let r = verify_repository(
        "1.root.json",
        &sigstore_root(1),
        &sigstore_repo(),
        at(SIGSTORE_OK),
    );
    valid(&r);
    assert_eq!(r.final_root_version(), Some(15));
    assert_eq!(r.chain.len(), 14);
    let versions: Vec<(String, u64)> = r
        .roles
        .iter()
        .map(|x| (x.role.clone(), x.version))
        .collect();
    assert_eq!(
        versions,
        [
            ("timestamp".to_string(), 762),
            ("snapshot".into(), 165),
            ("targets".into(), 14),
            ("registry.npmjs.org".into(), 8)
        ]
    );
    // Quirks: offset / nanosecond expiry strings read and noted; v11's key id is a label;
    // stale snapshot entries reported, not required.
    assert!(has_note(
        &r,
        "\"2021-12-18T13:28:12.99008-06:00\" is not in the strict"
    ));
    assert!(has_note(
        &r,
        "\"2022-05-11T19:09:02.663975009Z\" is not in the strict"
    ));
    assert!(has_note(&r, "11.root.json: key id 7247f0dbad85b147"));
    assert!(has_note(
        &r,
        "snapshot lists 3 role(s) that no verified role delegates: rekor, revocation, staging"
    ));
    // Every root step met both thresholds (3 of the previous root's keys and 3 of its own).
    for step in &r.chain {
        assert!(step.signed_by.len() >= 3, "{}", step.file);
        assert!(
            step.signed_by_previous
                .as_ref()
                .is_some_and(|p| p.len() >= 3),
            "{}",
            step.file
        );
    }
}

/// T1 (negative): at 2026-12-01 the final root v15 is expired, and the error names it.
#[test]
fn sigstore_final_root_expired() {
    let r = verify_repository(
        "1.root.json",
        &sigstore_root(1),
        &sigstore_repo(),
        at("2026-12-01T00:00:00Z"),
    );
    let e = r.error.clone().unwrap();
    assert!(
        e.starts_with("15.root.json: final root expired at 2026-11-20T13:58:18Z"),
        "{e}"
    );
    assert_eq!(r.final_root_version(), Some(15));
}

/// T2: the same chain from v4 (the first root with strict `Z` expiry strings).
#[test]
fn sigstore_chain_from_v4() {
    let r = verify_repository(
        "4.root.json",
        &sigstore_root(4),
        &sigstore_repo(),
        at(SIGSTORE_OK),
    );
    valid(&r);
    assert_eq!(r.chain.len(), 11);
    assert!(!has_note(&r, "is not in the strict"));
}

/// T3: staging 1 → 14 (key ids are not hashes in v5–v8, empty slots from v6).
#[test]
fn sigstore_staging_chain() {
    let r = verify_repository(
        "1.root.json",
        &vector("sigstore-root-signing-staging/metadata/root_history/1.root.json"),
        &staging_repo(),
        at(SIGSTORE_OK),
    );
    valid(&r);
    assert_eq!(r.final_root_version(), Some(14));
    for v in 5..=8 {
        assert!(
            has_note(&r, &format!("{v}.root.json: key id ")),
            "no key id note for v{v}"
        );
    }
    // T11: "sig": "" slots in targets do not count and are not an error.
    let t = role(&r, "targets");
    assert!(
        t.not_counted
            .iter()
            .any(|(_, why)| why == "empty signature slot"),
        "{t:?}"
    );
    assert!(role(&r, "registry.npmjs.org").version >= 1);
}

/// Refresh like a client (root chain, timestamp, snapshot, targets), then look a target up,
/// loading delegated roles by their consistent-snapshot or plain, quoted file names.
fn refresh_and_find(
    trusted: &[u8],
    files: &HashMap<String, Vec<u8>>,
    now: &str,
    target: &str,
) -> TargetSearch {
    let (root, _) = trust_root("trusted root", trusted).unwrap();
    let mut set = TrustedSet::new(root, at(now));
    loop {
        let next = set.root().root().common.version + 1;
        let name = format!("{next}.root.json");
        let Some(bytes) = files.get(&name) else { break };
        set.update_root(&name, bytes).unwrap();
    }
    let consistent = set.root().root().consistent_snapshot == Some(true);
    let pick = |role: &str, version: u64| -> Vec<u8> {
        let stem = quote_role_name(role);
        let versioned = format!("{version}.{stem}.json");
        match files.get(&versioned).filter(|_| consistent) {
            Some(b) => b.clone(),
            None => files[&format!("{stem}.json")].clone(),
        }
    };
    set.update_timestamp("timestamp.json", &files["timestamp.json"])
        .unwrap();
    let sv = set.timestamp().unwrap().signed().snapshot_meta.version;
    set.update_snapshot("snapshot.json", &pick("snapshot", sv))
        .unwrap();
    let meta_version = |set: &TrustedSet, role: &str| {
        set.snapshot()
            .unwrap()
            .signed()
            .meta_for(&format!("{role}.json"))
            .unwrap()
            .version
    };
    let tv = meta_version(&set, "targets");
    set.update_targets("targets.json", pick("targets", tv))
        .unwrap();
    let versions: HashMap<String, u64> = set
        .snapshot()
        .unwrap()
        .signed()
        .meta
        .iter()
        .filter_map(|(n, m)| n.strip_suffix(".json").map(|r| (r.to_string(), m.version)))
        .collect();
    set.find_target(target, |role| Some(pick(role, *versions.get(role)?)))
        .unwrap()
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn assert_target_matches(s: &TargetSearch, role: &str, content: &[u8]) {
    let (found_in, tf) = s.found.as_ref().expect("target found");
    assert_eq!(found_in, role);
    assert_eq!(tf.length, content.len() as u64);
    let sha = tf
        .hashes
        .iter()
        .find(|(a, _)| a == "sha256")
        .map(|(_, h)| h.clone())
        .unwrap();
    assert_eq!(sha, sha256_hex(content));
}

/// T4: tuf-on-ci 0.11 (no clock faking needed, but its faketime is used): refresh and find the
/// delegated target; its hashes match the published target file.
#[test]
fn tuf_on_ci_refresh_and_target_lookup() {
    let dir = "tuf-conformance-static/tuf-on-ci-0.11";
    let files = folder(&format!("{dir}/metadata"));
    let trusted = vector(&format!("{dir}/initial_root.json"));
    let r = verify_repository(
        "initial_root.json",
        &trusted,
        &files,
        at("2025-02-09T09:17:23Z"),
    );
    valid(&r);
    // T11: the delegated role has one good signature and one empty slot.
    let d = role(&r, "delegatedrole");
    assert_eq!(d.signed_by.len(), 1);
    assert!(
        d.not_counted
            .iter()
            .any(|(_, w)| w == "empty signature slot")
    );
    let target = String::from_utf8(vector(&format!("{dir}/targetpath"))).unwrap();
    let s = refresh_and_find(&trusted, &files, "2025-02-09T09:17:23Z", target.trim());
    let content = vector(&format!(
        "{dir}/targets/delegatedrole/45f337ee451b4c098d121d09cc224bacc7794503ac58a47a78cfe7ebefb7fab3.artifact"
    ));
    assert_target_matches(&s, "delegatedrole", &content);
    assert_eq!(s.visited, ["targets", "delegatedrole"]);
}

/// T4: the conformance suite's sigstore download at its faketime, from its initial root (v12)
/// and from v1; trusted_root.json resolves and matches the file.
#[test]
fn conformance_sigstore_refresh_and_target_lookup() {
    let dir = "tuf-conformance-static/sigstore-root-signing";
    let files = folder(&format!("{dir}/metadata"));
    let now = "2025-02-09T12:02:08Z";
    for trusted in [
        vector(&format!("{dir}/initial_root.json")),
        files["1.root.json"].clone(),
    ] {
        let r = verify_repository("trusted", &trusted, &files, at(now));
        valid(&r);
        assert_eq!(r.final_root_version(), Some(12));
        let s = refresh_and_find(&trusted, &files, now, "trusted_root.json");
        let content = vector(&format!(
            "{dir}/targets/f44a1b88128e55ebfb62189becbc0fa48d4ec9915c65ac54ba0e46a008b12d5b.trusted_root.json"
        ));
        assert_target_matches(&s, "targets", &content);
    }
}

/// T4: sigstore HEAD (2026-08-22): targets and the npm delegation resolve.
#[test]
fn sigstore_head_target_lookup() {
    let files = sigstore_repo();
    let s = refresh_and_find(&sigstore_root(1), &files, SIGSTORE_OK, "trusted_root.json");
    assert_eq!(s.found.unwrap().0, "targets");
    let s = refresh_and_find(
        &sigstore_root(1),
        &files,
        SIGSTORE_OK,
        "registry.npmjs.org/keys.json",
    );
    assert_eq!(s.found.unwrap().0, "registry.npmjs.org");
    assert_eq!(s.visited, ["targets", "registry.npmjs.org"]);
    // Terminating npm delegation: a path under it that it does not list is not searched further.
    let s = refresh_and_find(
        &sigstore_root(1),
        &files,
        SIGSTORE_OK,
        "registry.npmjs.org/other.json",
    );
    assert!(s.found.is_none());
}

/// T4: the legacy go-tuf layout (roots 1–9, timestamp pinning 155.snapshot.json by sha256,
/// sha512 and length) at 2024-09-01.
#[test]
fn sigstore_legacy_repository() {
    let files = folder("sigstore-root-signing/legacy/repository/repository");
    let r = verify_repository(
        "1.root.json",
        &files["1.root.json"],
        &files,
        at("2024-09-01T00:00:00Z"),
    );
    valid(&r);
    assert_eq!(r.final_root_version(), Some(9));
    assert_eq!(role(&r, "snapshot").version, 155);
}

/// T4: python-tuf's reference repository: RSA-3072 root key, Ed25519 others, keyid_hash_algorithms,
/// custom target fields, role1 → role2 delegations; targets resolve and match the files.
#[test]
fn python_tuf_repository_with_rsa_root() {
    let dir = "python-tuf/tests/repository_data/repository";
    let files = folder(&format!("{dir}/metadata"));
    let r = verify_repository(
        "1.root.json",
        &files["1.root.json"],
        &files,
        at("2025-01-01T00:00:00Z"),
    );
    valid(&r);
    let root = r.trusted_root.as_ref().unwrap();
    assert!(root.keys.iter().any(|k| k.scheme == "rsassa-pss-sha256"));
    let names: Vec<&str> = r.roles.iter().map(|x| x.role.as_str()).collect();
    assert_eq!(
        names,
        ["timestamp", "snapshot", "targets", "role1", "role2"]
    );
    for (target, role) in [
        ("file1.txt", "targets"),
        ("file2.txt", "targets"),
        ("file3.txt", "role1"),
    ] {
        let s = refresh_and_find(
            &files["1.root.json"],
            &files,
            "2025-01-01T00:00:00Z",
            target,
        );
        assert_target_matches(&s, role, &vector(&format!("{dir}/targets/{target}")));
    }
    // The custom field of file1.txt is kept.
    let t = Metadata::<Targets>::from_bytes(&files["targets.json"]).unwrap();
    assert!(
        t.signed()
            .target("file1.txt")
            .unwrap()
            .unrecognized
            .contains_key("custom")
    );
}

/// T12: the Datadog root: ten P-384 keys, ten valid signatures, threshold 2.
#[test]
fn datadog_p384_root() {
    let r = verify_repository(
        "root.json",
        &vector(
            "datadog-integrations-core/datadog_checks_downloader/datadog_checks/downloader/data/v2/metadata/root.json",
        ),
        &HashMap::new(),
        at(SIGSTORE_OK),
    );
    valid(&r);
    let root = r.trusted_root.as_ref().unwrap();
    assert_eq!(root.signed_by.len(), 10);
    assert_eq!(
        root.keys
            .iter()
            .filter(|k| k.scheme == "ecdsa-sha2-nistp384")
            .count(),
        11,
        "10 keyholder keys and the online key"
    );
    assert_eq!(
        root.roles
            .iter()
            .find(|x| x.role == "root")
            .unwrap()
            .threshold,
        2
    );
    assert!(has_note(&r, "timestamp.json is not present"));
}

/// T11 and quirk 3: v5 carries signatures by v4 key ids that v5 does not know (skipped), and
/// v12–v14 carry empty slots; both are accepted.
#[test]
fn signatures_by_unknown_key_ids_and_empty_slots() {
    let (v4, _) = trust_root("4.root.json", &sigstore_root(4)).unwrap();
    let (_, step) = update_root(&v4, "5.root.json", &sigstore_root(5)).unwrap();
    assert_eq!(step.by_self.ignored.len(), 4, "{:?}", step.by_self);
    assert_eq!(step.by_previous.ignored.len(), 4);
    assert_eq!(step.by_previous.signed.len(), 4);
    let (v11, _) = trust_root("11.root.json", &sigstore_root(11)).unwrap();
    let (_, step) = update_root(&v11, "12.root.json", &sigstore_root(12)).unwrap();
    let empty = step
        .by_self
        .unsigned
        .iter()
        .filter(|(_, w)| w.to_string() == "empty signature slot")
        .count();
    assert_eq!((step.by_self.signed.len(), empty), (3, 2));
}

/// T18: sigstore HEAD at 2026-08-29: the timestamp is expired (everything else is valid).
#[test]
fn sigstore_head_timestamp_expired() {
    let r = verify_repository(
        "1.root.json",
        &sigstore_root(1),
        &sigstore_repo(),
        at("2026-08-29T00:00:00Z"),
    );
    assert_eq!(
        r.error.as_deref(),
        Some(
            "timestamp.json: timestamp expired at 2026-08-28T19:25:56Z (reference time 2026-08-29T00:00:00Z)"
        )
    );
}

const TOUGH: &str = "tough/tough/tests/data";

fn tough_repo(name: &str, now: &str) -> Report {
    let dir = vector_path(&format!("{TOUGH}/{name}"));
    let meta = if dir.join("metadata").is_dir() {
        dir.join("metadata")
    } else {
        dir.clone()
    };
    let src = FolderSource::new(&meta, DEFAULT_MAX_FILE_SIZE).unwrap();
    let trusted = ["1.root.json", "root.json"]
        .iter()
        .find_map(|n| src.read(n).unwrap())
        .unwrap();
    verify_repository("trusted root", &trusted, &src, at(now))
}

/// tough's positive sets verify (folders read through FolderSource).
#[test]
fn tough_positive_sets() {
    for (name, now, final_version, roles) in [
        ("consistent-snapshots", "2020-01-01T00:00:00Z", 1, 3),
        ("dubious-role-names", "2020-01-01T00:00:00Z", 1, 6),
        ("safe-target-paths", "2020-01-01T00:00:00Z", 1, 4),
        ("tuf-reference-impl", "2020-01-01T00:00:00Z", 1, 5),
        ("rotated-root", "2020-01-01T00:00:00Z", 2, 3),
        ("simple-rsa", "2020-01-01T00:00:00Z", 1, 0),
        ("hex-encoded-ecdsa-sig-keys", "2022-01-01T00:00:00Z", 2, 0),
        ("pem-encoded-ecdsa-sig-keys", "2023-01-01T00:00:00Z", 5, 0),
        ("ecdsa-new-type-sig-keys", "2024-01-01T00:00:00Z", 9, 0),
    ] {
        let r = tough_repo(name, now);
        assert!(r.is_valid(), "{name}: {:?}", r.error);
        assert_eq!(r.final_root_version(), Some(final_version), "{name}");
        assert_eq!(r.roles.len(), roles, "{name}: {:?}", r.roles);
    }
}

/// tough's negative sets fail, each for its own reason.
#[test]
fn tough_negative_sets() {
    for (name, now, cause) in [
        (
            "duplicate-keyid",
            "2020-01-01T00:00:00Z",
            "duplicate object member \"8ec3a843",
        ),
        (
            "duplicate-sigs",
            "2020-01-01T00:00:00Z",
            "$.signatures[1]: multiple signatures found for key id 8ec3a843",
        ),
        (
            "duplicate-sig-keys",
            "2020-01-01T00:00:00Z",
            "$.signatures[1]: multiple signatures found for key id 8ec3a843",
        ),
        (
            "invalid-root-json-signature",
            "2020-01-01T00:00:00Z",
            "8ec3a843a0f9328c: invalid signature: signature does not verify",
        ),
        (
            "mismatched-root-json-keyids",
            "2020-01-01T00:00:00Z",
            "1 signature(s) by key ids the role does not name, ignored: 8ec3a843a0f9328c",
        ),
        (
            "no-root-json-signatures",
            "2020-01-01T00:00:00Z",
            "0 of 1 keys signed, threshold 1 (no signatures)",
        ),
        (
            "expired-root-json-signature",
            "2020-01-01T00:00:00Z",
            "final root expired at 1970-03-30T03:30:30Z",
        ),
        (
            "expired-repository",
            "2020-01-01T00:00:00Z",
            "timestamp.json: timestamp expired at 1999-01-01T00:00:00Z",
        ),
        ("cross-sign-root", "2020-01-01T00:00:00Z", "(no signatures)"),
    ] {
        let r = tough_repo(name, now);
        let e = r.error.unwrap_or_default();
        assert!(e.contains(cause), "{name}: {e}");
    }
}

/// The expired tough repository verifies when the reference time is inside its validity
/// (versions are unix times: u64).
#[test]
fn tough_expired_repository_inside_its_validity() {
    let r = tough_repo("expired-repository", "1998-06-01T00:00:00Z");
    valid(&r);
    assert_eq!(role(&r, "targets").version, 1_589_485_578);
}

// ---------------------------------------------------------------------------------------------
// Command line

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

/// A folder with the sigstore root history and the published metadata side by side, as a
/// client's metadata folder holds them.
fn sigstore_folder(dir: &Path) {
    for (name, bytes) in sigstore_repo() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn cli_sigstore_valid_then_expired() {
    let tmp = tempfile::tempdir().unwrap();
    sigstore_folder(tmp.path());
    let trusted = vector_path("sigstore-root-signing/metadata/root_history/1.root.json");
    let (code, out, err) = conclave(&[
        "verify",
        "--trusted-root",
        p(&trusted),
        "--repo",
        p(tmp.path()),
        "--at",
        SIGSTORE_OK,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("root v15 (15.root.json)  expires 2026-11-20T13:58:18Z"),
        "{out}"
    );
    assert!(
        out.contains("registry.npmjs.org v8 (registry.npmjs.org.json)"),
        "{out}"
    );
    assert!(out.contains("key id is not the key's hash"), "{out}");
    assert!(
        out.trim_end()
            .ends_with("VALID: root chain to v15 and every role present verified"),
        "{out}"
    );

    let (code, out, _) = conclave(&[
        "verify",
        "--trusted-root",
        p(&trusted),
        "--repo",
        p(tmp.path()),
        "--at",
        "2026-12-01T00:00:00Z",
    ]);
    assert_eq!(code, 1);
    assert!(
        out.contains("FAILED: 15.root.json: final root expired at 2026-11-20T13:58:18Z"),
        "{out}"
    );
}

#[test]
fn cli_json_report() {
    let tmp = tempfile::tempdir().unwrap();
    sigstore_folder(tmp.path());
    let trusted = vector_path("sigstore-root-signing/metadata/root_history/1.root.json");
    let (code, out, err) = conclave(&[
        "verify",
        "--trusted-root",
        p(&trusted),
        "--repo",
        p(tmp.path()),
        "--at",
        "2026-08-29T00:00:00Z",
        "--json",
    ]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["chain"].as_array().unwrap().len(), 14);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("timestamp.json: timestamp expired")
    );
}

#[test]
fn cli_real_repositories() {
    let cases = [
        (
            "tuf-conformance-static/tuf-on-ci-0.11/initial_root.json",
            "tuf-conformance-static/tuf-on-ci-0.11/metadata",
            "2025-02-09T09:17:23Z",
            "delegatedrole v2 (2.delegatedrole.json)",
        ),
        (
            "python-tuf/tests/repository_data/repository/metadata/1.root.json",
            "python-tuf/tests/repository_data/repository/metadata",
            "2025-01-01T00:00:00Z",
            "role2 v1 (role2.json)",
        ),
        (
            "datadog-integrations-core/datadog_checks_downloader/datadog_checks/downloader/data/v2/metadata/root.json",
            "datadog-integrations-core/datadog_checks_downloader/datadog_checks/downloader/data/v2/metadata",
            SIGSTORE_OK,
            "self-signed by 10 key(s) (threshold 2)",
        ),
        (
            "tough/tough/tests/data/dubious-role-names/metadata/1.root.json",
            "tough/tough/tests/data/dubious-role-names/metadata",
            "2020-01-01T00:00:00Z",
            "../../path/like/dubious v3 (..%2F..%2Fpath%2Flike%2Fdubious.json)",
        ),
    ];
    for (trusted, repo, now, expect) in cases {
        let (code, out, err) = conclave(&[
            "verify",
            "--trusted-root",
            p(&vector_path(trusted)),
            "--repo",
            p(&vector_path(repo)),
            "--at",
            now,
        ]);
        assert_eq!(code, 0, "{repo}: {out}{err}");
        assert!(out.contains(expect), "{repo}: {out}");
        assert!(out.contains("VALID: root chain to v"), "{out}");
    }
}

#[test]
fn cli_tough_negative_sets_exit_1_with_cause() {
    let empty = tempfile::tempdir().unwrap();
    for (name, cause) in [
        ("duplicate-keyid", "duplicate object member"),
        ("duplicate-sigs", "multiple signatures found for key id"),
        ("invalid-root-json-signature", "signature does not verify"),
        (
            "expired-root-json-signature",
            "final root expired at 1970-03-30T03:30:30Z",
        ),
    ] {
        let (code, out, err) = conclave(&[
            "verify",
            "--trusted-root",
            p(&vector_path(&format!("{TOUGH}/{name}/root.json"))),
            "--repo",
            p(empty.path()),
            "--at",
            "2020-01-01T00:00:00Z",
        ]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        let last = out
            .trim_end()
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        assert!(
            last.starts_with("FAILED: ") && last.contains(cause),
            "{name}: {last}"
        );
    }
}

#[test]
fn cli_usage_and_io_errors_exit_2() {
    let trusted = vector_path("sigstore-root-signing/metadata/root_history/1.root.json");
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = conclave(&[
        "verify",
        "--trusted-root",
        p(&trusted),
        "--repo",
        p(empty.path()),
        "--at",
        "2025-02-09 09:17:23",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--at"), "{err}");
    let (code, _, err) = conclave(&[
        "verify",
        "--trusted-root",
        p(&trusted),
        "--repo",
        p(&empty.path().join("missing")),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("missing"), "{err}");
    let (code, _, err) = conclave(&[
        "verify",
        "--trusted-root",
        p(&empty.path().join("no-root.json")),
        "--repo",
        p(empty.path()),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no-root.json"), "{err}");
}

#[test]
fn cli_inspect_real_files() {
    let (code, out, err) = conclave(&[
        "inspect",
        p(&vector_path(
            "sigstore-root-signing/metadata/root_history/12.root.json",
        )),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("root v12"), "{out}");
    assert!(out.contains("(empty slot)"), "{out}");
    // Custom fields (x-tuf-on-ci-keyowner inside a key) are shown, and the digest printed is
    // the one of the canonical signed part, custom fields included.
    let file = "tuf-conformance-static/tuf-on-ci-0.11/metadata/1.root.json";
    let (code, out, err) = conclave(&["inspect", p(&vector_path(file))]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("owner @jku"), "{out}");
    let md = Metadata::<conclave::tuf::metadata::Root>::from_bytes(&vector(file)).unwrap();
    assert!(
        out.contains(&format!("SHA-256 {}", hex::encode(md.signed_digest()))),
        "{out}"
    );
    let (code, _, err) = conclave(&[
        "inspect",
        p(&vector_path(&format!("{TOUGH}/duplicate-keyid/root.json"))),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("duplicate object member"), "{err}");
}
