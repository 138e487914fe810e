//! Every known attack on TUF metadata as ONE data-driven table. Section A: the classic attacks
//! on update systems the TUF specification names (arbitrary installation, endless data,
//! extraneous dependencies, fast-forward, indefinite freeze, malicious mirrors, mix-and-match,
//! rollback, slow retrieval, key compromise thresholds, wrong software installation) as they
//! apply to an offline verifier. Section B: the 33 historical TUF vulnerabilities of
//! ../shared/attacks.md section B. Each row names the attack, builds its input (mutating the real
//! vectors where the attack is about real data, otherwise signing a small repository with
//! deterministic test keys from tests/common) and states Conclave's expected verdict: accepted
//! (with a summary that must contain a given text) or rejected with an error that names the
//! cause. Every attack has a positive control beside it (the same input without the attack is
//! accepted), so no row can pass by rejecting everything. The results are written as a Markdown
//! table that must equal the one in docs/security.md (`CONCLAVE_BLESS=1` rewrites it).

mod common;

use std::collections::HashMap;

use common::builders::*;
use conclave::folder::FolderSource;
use conclave::tuf::canonical::Map;
use conclave::tuf::key::KeyId;
use conclave::tuf::lookup::TargetSearch;
use conclave::tuf::metadata::{Metadata, Role, Root, Signature, Targets};
use conclave::tuf::repository::{
    MetadataSource, is_safe_file_name, quote_role_name, verify_repository,
};
use conclave::tuf::verify::{TrustedSet, count_signatures, trust_root, update_root};
use serde_json::{Value as J, json};

/// What a row expects.
#[derive(Debug)]
enum Expect {
    /// Accepted; the summary contains this text.
    Accept(&'static str),
    /// Rejected; the error contains every one of these texts.
    Reject(&'static [&'static str]),
}
use Expect::{Accept, Reject};

/// One row: item number in attacks.md B, advisory id, the case, expected verdict, input+check.
struct Row {
    item: u8,
    id: &'static str,
    case: &'static str,
    expect: Expect,
    run: fn() -> Result<String, String>,
}

type Verdict = Result<String, String>;

// ---------------------------------------------------------------------------------------------
// Helpers

/// Walk a root chain with the library (no expiry involved): trust `trusted`, then offer each
/// file in order. `Ok("root vN")` or the first error.
fn chain(trusted: &[u8], offered: &[(&str, Vec<u8>)]) -> Verdict {
    let (mut root, _) = trust_root("trusted.root.json", trusted).map_err(|e| e.to_string())?;
    for (name, bytes) in offered {
        root = update_root(&root, name, bytes)
            .map_err(|e| e.to_string())?
            .0;
    }
    Ok(format!("root v{}", root.root().common.version))
}

/// Keep only the signatures whose key id satisfies `keep`.
fn filter_sigs(bytes: &[u8], keep: impl Fn(&str) -> bool) -> Vec<u8> {
    mutate(bytes, |v| {
        let sigs = v["signatures"].as_array_mut().unwrap();
        sigs.retain(|s| keep(s["keyid"].as_str().unwrap()));
    })
}

/// Root key ids of a root file.
fn root_keyids(bytes: &[u8]) -> Vec<String> {
    let v: J = serde_json::from_slice(bytes).unwrap();
    v["signed"]["roles"]["root"]["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

/// A trusted set over a synthetic repository's root.
fn session(repo: &Repo) -> TrustedSet {
    let (root, _) = trust_root("1.root.json", &repo.trusted_root()).unwrap();
    TrustedSet::new(root, now())
}

/// A trusted set with timestamp, snapshot and targets of `repo` loaded.
fn loaded(repo: &Repo) -> TrustedSet {
    let mut set = session(repo);
    let f = repo.files();
    set.update_timestamp("timestamp.json", &f["timestamp.json"])
        .unwrap();
    set.update_snapshot("snapshot.json", &f["snapshot.json"])
        .unwrap();
    set.update_targets("targets.json", &f["targets.json"])
        .unwrap();
    set
}

/// Run a target search over `repo` (roles loaded from its files by quoted name).
fn search(repo: &Repo, target: &str) -> Result<TargetSearch, String> {
    let set = loaded(repo);
    let files = repo.files();
    set.find_target(target, |role| {
        files
            .get(&format!("{}.json", quote_role_name(role)))
            .cloned()
    })
    .map_err(|e| e.to_string())
}

/// A search as a verdict: "found in ROLE (visited a,b,c)" or "not found (visited ...)".
fn lookup(repo: &Repo, target: &str) -> Verdict {
    let s = search(repo, target)?;
    let trail = s.visited.join(",");
    Ok(match s.found {
        Some((role, _)) => format!("found in {role} (visited {trail})"),
        None => format!("not found (visited {trail})"),
    })
}

fn ed(n: u8) -> TestKey {
    TestKey::ed25519(n)
}

/// Repository whose targets delegates `roles` (entries) with `keys`, plus role files.
fn delegating(keys: &[&TestKey], roles: Vec<J>, files: Vec<(&str, J, Vec<&TestKey>)>) -> Repo {
    let mut repo = Repo::new();
    repo.targets = targets(1, &[], Some(delegations(keys, roles)));
    for (name, signed, signers) in files {
        repo = repo.role(name, signed, &signers);
    }
    repo
}

fn with_root_threshold_keys(
    version: u64,
    root_keys: &[&TestKey],
    threshold: u64,
    repo: &Repo,
) -> J {
    root(
        version,
        &[
            ("root", root_keys, threshold),
            ("timestamp", &[&repo.timestamp_key], 1),
            ("snapshot", &[&repo.snapshot_key], 1),
            ("targets", &[&repo.targets_key], 1),
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// B.1 Threshold counting

fn b1_sigstore_v3_duplicated_sig() -> Verdict {
    // v3 carries exactly 3 valid signatures for threshold 3: drop one, duplicate another.
    let v3 = mutate(&sigstore_root(3), |v| {
        let sigs = v["signatures"].as_array_mut().unwrap();
        sigs.pop();
        let first = sigs[0].clone();
        sigs.push(first);
    });
    chain(&sigstore_root(2), &[("3.root.json", v3)])
}

fn b1_sigstore_v3_control() -> Verdict {
    chain(&sigstore_root(2), &[("3.root.json", sigstore_root(3))])
}

fn b1_tough_duplicate_sigs() -> Verdict {
    verdict(&verify_repository(
        "root.json",
        &vector("tough/tough/tests/data/duplicate-sigs/root.json"),
        &HashMap::new(),
        at("2020-01-01T00:00:00Z"),
    ))
}

fn b1_counter_counts_a_key_once() -> Verdict {
    // Below the loader: even if duplicate key ids reached the counter, one key counts once.
    let k = ed(10);
    let signed = json!({"any": "bytes"});
    let sig = k.sign_hex(&signed);
    let key = conclave::tuf::metadata::key_from_value(
        serde_json::from_value(k.json.clone()).unwrap(),
        "$",
    )
    .unwrap();
    let role = Role {
        keyids: vec![KeyId(k.id.clone())],
        threshold: 2,
        unrecognized: Map::new(),
    };
    let one = || Signature {
        keyid: KeyId(k.id.clone()),
        sig: sig.clone(),
        unrecognized: Map::new(),
    };
    let r = count_signatures(|_| Some(&key), &role, &canonical(&signed), &[one(), one()]);
    if r.verified() {
        Ok(format!("verified: {}", r.summary()))
    } else {
        Err(format!("threshold not met: {}", r.summary()))
    }
}

fn b2_tough_duplicate_sig_keys() -> Verdict {
    verdict(&verify_repository(
        "root.json",
        &vector("tough/tough/tests/data/duplicate-sig-keys/root.json"),
        &HashMap::new(),
        at("2020-01-01T00:00:00Z"),
    ))
}

fn b2_tough_simple_rsa_control() -> Verdict {
    verdict(&verify_repository(
        "root.json",
        &vector("tough/tough/tests/data/simple-rsa/root.json"),
        &HashMap::new(),
        at("2020-01-01T00:00:00Z"),
    ))
}

fn b3_one_key_two_keyids() -> Verdict {
    // One Ed25519 key listed under its key id and under a second label (as sha512 key ids
    // once were), both in roles.root, threshold 2; one signature attached under both ids.
    let k = ed(11);
    let alias = k.clone().with_id(&"5".repeat(128));
    let signed = root(
        1,
        &[
            ("root", &[&k, &alias], 2),
            ("timestamp", &[&k], 1),
            ("snapshot", &[&k], 1),
            ("targets", &[&k], 1),
        ],
    );
    let sig = k.sign_hex(&signed);
    let file = envelope(&signed, &[(k.id.clone(), sig.clone()), (alias.id, sig)]);
    chain(&file, &[])
}

fn b3_one_key_two_keyids_in_delegation() -> Verdict {
    let k = ed(12);
    let alias = k.clone().with_id("alias-of-k");
    let role = targets(1, &[("t", b"x")], None);
    let repo = delegating(
        &[&k, &alias],
        vec![drole("team", &[&k, &alias], 2, false, &["*"])],
        vec![("team", role, vec![&k, &alias])],
    );
    verdict(&repo.verify())
}

fn b3_one_ecdsa_key_pem_and_compressed_hex() -> Verdict {
    // go-tuf PR #733: deduplicate by key material whatever the encoding. One P-256 key as PEM
    // (keytype ecdsa) and as compressed SEC1 hex (keytype ecdsa-sha2-nistp256), threshold 2.
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::DecodePublicKey;
    let k = TestKey::p256(13);
    let pem = k.json["keyval"]["public"].as_str().unwrap().to_string();
    let point = p256::PublicKey::from_public_key_pem(&pem).unwrap();
    let compressed = hex::encode(point.to_encoded_point(true).as_bytes());
    let alias = k.clone().with_id("compressed-hex-alias").with_json(|j| {
        j["keytype"] = json!("ecdsa-sha2-nistp256");
        j["keyval"]["public"] = json!(compressed);
    });
    let signed = root(
        1,
        &[
            ("root", &[&k, &alias], 2),
            ("timestamp", &[&k], 1),
            ("snapshot", &[&k], 1),
            ("targets", &[&k], 1),
        ],
    );
    chain(&sign(&signed, &[&k, &alias]), &[])
}

fn b3_sigstore_v5_control() -> Verdict {
    // Each physical key under an old (v4) and a new (v5) key id across versions: accepted.
    chain(&sigstore_root(4), &[("5.root.json", sigstore_root(5))])
}

fn rotation_with_self_threshold_2(sign_c: bool) -> Verdict {
    let repo = Repo::new();
    let a = repo.root_key.clone();
    let b = ed(21);
    let b2 = b.clone().with_id("second-label-for-b");
    let c = ed(22);
    let v2 = with_root_threshold_keys(2, &[&b, &b2, &c], 2, &repo);
    let mut signers = vec![&a, &b, &b2];
    if sign_c {
        signers.push(&c);
    }
    chain(
        &repo.trusted_root(),
        &[("2.root.json", sign(&v2, &signers))],
    )
}

fn b4_new_threshold_by_one_key_twice() -> Verdict {
    rotation_with_self_threshold_2(false)
}

fn b4_control() -> Verdict {
    rotation_with_self_threshold_2(true)
}

fn sigstore_with_zero_threshold_delegation(threshold: i64) -> Verdict {
    let mut files = sigstore_repo();
    let t = mutate(&files["targets.json"], |v| {
        v["signed"]["delegations"]["roles"][0]["threshold"] = json!(threshold);
    });
    let npm = mutate(&files["registry.npmjs.org.json"], |v| {
        v["signatures"] = json!([]);
    });
    files.insert("targets.json".into(), t);
    files.insert("registry.npmjs.org.json".into(), npm);
    verdict(&verify_repository(
        "15.root.json",
        &sigstore_root(15),
        &files,
        at("2026-08-22T00:00:00Z"),
    ))
}

fn b5_delegation_threshold_zero() -> Verdict {
    sigstore_with_zero_threshold_delegation(0)
}

fn b5_delegation_threshold_negative() -> Verdict {
    sigstore_with_zero_threshold_delegation(-1)
}

fn b5_sigstore_control() -> Verdict {
    verdict(&verify_repository(
        "15.root.json",
        &sigstore_root(15),
        &sigstore_repo(),
        at("2026-08-22T00:00:00Z"),
    ))
}

fn b5_root_threshold_zero() -> Verdict {
    let repo = Repo::new();
    let mut signed = repo.root.clone();
    signed["roles"]["timestamp"]["threshold"] = json!(0);
    chain(&sign(&signed, &[&repo.root_key]), &[])
}

fn b5_threshold_above_key_count() -> Verdict {
    let mut repo = Repo::new();
    repo.root["roles"]["timestamp"]["threshold"] = json!(2);
    let r = repo.verify();
    let note = r
        .notes
        .iter()
        .find(|n| n.contains("can never be met"))
        .cloned()
        .unwrap_or_default();
    verdict(&r).map_err(|e| format!("{e} [note: {note}]"))
}

fn b6_v15_with_5000_copies() -> Verdict {
    let v15 = mutate(&sigstore_root(15), |v| {
        let sigs = v["signatures"].as_array_mut().unwrap();
        let mut bad = sigs[0].clone();
        bad["sig"] = json!("30".repeat(35)); // an invalid DER signature, 5000 times
        for _ in 0..5000 {
            sigs.push(bad.clone());
        }
    });
    chain(&sigstore_root(14), &[("15.root.json", v15)])
}

fn b6_v15_with_5000_unknown_keyids() -> Verdict {
    // Distinct key ids pass the duplicate check; none is a root key, so none is verified
    // (the counter only looks at the role's key ids) and v15 still verifies.
    let v15 = mutate(&sigstore_root(15), |v| {
        let sigs = v["signatures"].as_array_mut().unwrap();
        let mut bad = sigs[0].clone();
        for i in 0..5000 {
            bad["keyid"] = json!(format!("{i:064x}"));
            sigs.push(bad.clone());
        }
    });
    let (root, _) = trust_root("14.root.json", &sigstore_root(14)).unwrap();
    let (_, step) = update_root(&root, "15.root.json", &v15).map_err(|e| e.to_string())?;
    Ok(format!(
        "{}; {} signatures by unknown key ids ignored",
        step.by_self.summary(),
        step.by_self.ignored.len()
    ))
}

fn b6_control() -> Verdict {
    chain(&sigstore_root(14), &[("15.root.json", sigstore_root(15))])
}

// ---------------------------------------------------------------------------------------------
// B.2 Root rotation, versions, rollback, freeze, fast-forward

fn blank(bytes: &[u8]) -> Vec<u8> {
    mutate(bytes, |v| {
        for s in v["signatures"].as_array_mut().unwrap() {
            s["sig"] = json!("");
        }
    })
}

fn b7_failed_root_never_trusted() -> Verdict {
    // Every step of the sigstore chain: a blanked N+1 fails and the trusted root stays N; then
    // the real N+1 is accepted. A new run (Conclave persists nothing between runs) starts from
    // the trusted root again and stops at the same place.
    let mut set = TrustedSet::new(
        trust_root("1.root.json", &sigstore_root(1)).unwrap().0,
        now(),
    );
    let mut last_err = String::new();
    for n in 2..=15u64 {
        let name = format!("{n}.root.json");
        match set.update_root(&name, &blank(&sigstore_root(n))) {
            Ok(_) => return Ok(format!("BUG: blanked {name} accepted")),
            Err(e) => last_err = e.to_string(),
        }
        let trusted = set.root().root().common.version;
        if trusted != n - 1 {
            return Ok(format!(
                "BUG: trusted root is v{trusted} after {name} failed"
            ));
        }
        set.update_root(&name, &sigstore_root(n))
            .map_err(|e| format!("real {name}: {e}"))?;
    }
    let mut files = sigstore_repo();
    files.insert("5.root.json".into(), blank(&sigstore_root(5)));
    for _ in 0..2 {
        let r = verify_repository(
            "1.root.json",
            &sigstore_root(1),
            &files,
            at("2026-08-22T00:00:00Z"),
        );
        if r.final_root_version() != Some(4) || r.is_valid() {
            return Ok(format!("BUG: run trusted {:?}", r.final_root_version()));
        }
    }
    Err(last_err)
}

fn b7_control() -> Verdict {
    let offered: Vec<(String, Vec<u8>)> = (2..=15)
        .map(|n| (format!("{n}.root.json"), sigstore_root(n)))
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = offered
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    chain(&sigstore_root(1), &refs)
}

fn b8a_v5_as_4() -> Verdict {
    chain(&sigstore_root(3), &[("4.root.json", sigstore_root(5))])
}

fn b8a_control() -> Verdict {
    chain(
        &sigstore_root(3),
        &[
            ("4.root.json", sigstore_root(4)),
            ("5.root.json", sigstore_root(5)),
        ],
    )
}

fn b8b_conflicting_v5_after_v5() -> Verdict {
    chain(
        &sigstore_root(5),
        &[(
            "6.root.json",
            vector("sigstore-root-signing/legacy/ceremony/defunct/2022-10-03/staged/root.json"),
        )],
    )
}

fn b8b_conflicting_v5_is_validly_signed() -> Verdict {
    // The control: the same file offered where v5 belongs verifies (so only the version rule
    // rejects it above).
    chain(
        &sigstore_root(4),
        &[(
            "5.root.json",
            vector("sigstore-root-signing/legacy/ceremony/defunct/2022-10-03/staged/root.json"),
        )],
    )
}

fn b8_version_at_u64_max() -> Verdict {
    // Root v(2^64-2) trusted, v(2^64-1) offered: accepted once; the next version does not exist,
    // so the walk must stop (a saturating "N+1" would accept the same file forever).
    let repo = Repo::new();
    let mut old = repo.root.clone();
    old["version"] = json!(u64::MAX - 1);
    let mut new = repo.root.clone();
    new["version"] = json!(u64::MAX);
    let mut files = HashMap::new();
    files.insert(
        format!("{}.root.json", u64::MAX),
        sign(&new, &[&repo.root_key]),
    );
    let r = verify_repository("trusted", &sign(&old, &[&repo.root_key]), &files, now());
    let offered_again = chain(
        &sign(&new, &[&repo.root_key]),
        &[(
            "18446744073709551615.root.json",
            sign(&new, &[&repo.root_key]),
        )],
    );
    verdict(&r).map(|s| format!("{s}; v2^64-1 offered after itself: {offered_again:?}"))
}

fn b8c_v6_twice() -> Verdict {
    chain(
        &sigstore_root(5),
        &[
            ("6.root.json", sigstore_root(6)),
            ("7.root.json", sigstore_root(6)),
        ],
    )
}

fn b9_only_new_keyids() -> Verdict {
    let v5 = sigstore_root(5);
    let new = root_keyids(&v5);
    chain(
        &sigstore_root(4),
        &[(
            "5.root.json",
            filter_sigs(&v5, |k| new.iter().any(|n| n == k)),
        )],
    )
}

fn b9_only_old_keyids() -> Verdict {
    let v5 = sigstore_root(5);
    let old = root_keyids(&sigstore_root(4));
    chain(
        &sigstore_root(4),
        &[(
            "5.root.json",
            filter_sigs(&v5, |k| old.iter().any(|n| n == k)),
        )],
    )
}

fn b9_v10_only_old_keyids() -> Verdict {
    let v10 = sigstore_root(10);
    let old = root_keyids(&sigstore_root(9));
    chain(
        &sigstore_root(9),
        &[(
            "10.root.json",
            filter_sigs(&v10, |k| old.iter().any(|n| n == k)),
        )],
    )
}

fn b9_v9_only_new_keyids() -> Verdict {
    let v9 = sigstore_root(9);
    let new = root_keyids(&v9);
    chain(
        &sigstore_root(8),
        &[(
            "9.root.json",
            filter_sigs(&v9, |k| new.iter().any(|n| n == k)),
        )],
    )
}

fn b10_chain_at(t: &str) -> Verdict {
    verdict(&verify_repository(
        "1.root.json",
        &sigstore_root(1),
        &sigstore_repo(),
        at(t),
    ))
}

fn b10_expired_intermediates_ok() -> Verdict {
    b10_chain_at("2026-08-22T00:00:00Z")
}

fn b10_expired_final_root() -> Verdict {
    b10_chain_at("2026-12-01T00:00:00Z")
}

fn b10_tough_expired_root() -> Verdict {
    verdict(&verify_repository(
        "root.json",
        &vector("tough/tough/tests/data/expired-root-json-signature/root.json"),
        &HashMap::new(),
        at("2020-01-01T00:00:00Z"),
    ))
}

/// A repository at versions (timestamp, snapshot, targets).
fn versions(ts: u64, snap: u64, tg: u64) -> Repo {
    let mut r = Repo::new();
    r.timestamp_version = ts;
    r.snapshot_version = snap;
    r.targets["version"] = json!(tg);
    r
}

/// Load `first` into a trusted set, then offer `second`'s timestamp, snapshot and targets.
fn update_twice(first: &Repo, second: &Repo) -> Verdict {
    let mut set = loaded(first);
    let f = second.files();
    set.update_timestamp("timestamp.json", &f["timestamp.json"])
        .map_err(|e| e.to_string())?;
    set.update_snapshot("snapshot.json", &f["snapshot.json"])
        .map_err(|e| e.to_string())?;
    set.update_targets("targets.json", &f["targets.json"])
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "timestamp v{}, snapshot v{}",
        second.timestamp_version, second.snapshot_version
    ))
}

fn b11_timestamp_rollback() -> Verdict {
    update_twice(&versions(2, 1, 1), &versions(1, 1, 1))
}

fn b11_snapshot_version_rollback() -> Verdict {
    update_twice(&versions(2, 2, 1), &versions(3, 1, 1))
}

fn b11_targets_rollback() -> Verdict {
    update_twice(&versions(2, 2, 2), &versions(3, 3, 1))
}

fn b11_targets_version_not_as_snapshot() -> Verdict {
    let mut set = session(&Repo::new());
    let repo = versions(1, 1, 2);
    let f = repo.files();
    let stale_targets = sign(&targets(1, &[], None), &[&repo.targets_key]);
    set.update_timestamp("timestamp.json", &f["timestamp.json"])
        .map_err(|e| e.to_string())?;
    set.update_snapshot("snapshot.json", &f["snapshot.json"])
        .map_err(|e| e.to_string())?;
    set.update_targets("targets.json", &stale_targets)
        .map(|c| format!("targets v{}", c.version))
        .map_err(|e| e.to_string())
}

fn b11_control() -> Verdict {
    update_twice(&versions(2, 2, 2), &versions(3, 3, 3))
}

fn npm_repo(npm_version: u64, listed: bool, snapshot_version: u64) -> Repo {
    let k = ed(30);
    let mut repo = delegating(
        &[&k],
        vec![drole(
            "registry.npmjs.org",
            &[&k],
            1,
            true,
            &["registry.npmjs.org/*"],
        )],
        vec![(
            "registry.npmjs.org",
            targets(npm_version, &[("registry.npmjs.org/x.tgz", b"x")], None),
            vec![&k],
        )],
    );
    repo.snapshot_version = snapshot_version;
    repo.timestamp_version = snapshot_version;
    if !listed {
        repo.roles.clear();
    }
    repo
}

fn b12_drop_delegated_role() -> Verdict {
    update_twice(&npm_repo(2, true, 1), &npm_repo(2, false, 2))
}

fn b12_lower_delegated_version() -> Verdict {
    update_twice(&npm_repo(2, true, 1), &npm_repo(1, true, 2))
}

fn b12_control() -> Verdict {
    update_twice(&npm_repo(2, true, 1), &npm_repo(3, true, 2))
}

fn b13_failed_timestamp_not_kept() -> Verdict {
    let mut set = loaded(&versions(2, 2, 1));
    let bad = versions(3, 1, 1).files();
    if set
        .update_timestamp("timestamp.json", &bad["timestamp.json"])
        .is_ok()
    {
        return Ok("BUG: rollback timestamp accepted".into());
    }
    let kept = set.timestamp().map(|t| t.signed().common.version);
    if kept != Some(2) {
        return Ok(format!(
            "BUG: trusted timestamp is {kept:?} after a failure"
        ));
    }
    let good = versions(4, 3, 1).files();
    set.update_timestamp("timestamp.json", &good["timestamp.json"])
        .map_err(|e| e.to_string())?;
    set.update_snapshot("snapshot.json", &good["snapshot.json"])
        .map_err(|e| e.to_string())?;
    Ok("trusted timestamp stayed v2 after the failure; then v4 accepted".into())
}

/// Root v2 rotating the timestamp key to `new_ts`.
fn rotated_timestamp_key(repo: &Repo, new_ts: &TestKey) -> Vec<u8> {
    let v2 = root(
        2,
        &[
            ("root", &[&repo.root_key], 1),
            ("timestamp", &[new_ts], 1),
            ("snapshot", &[&repo.snapshot_key], 1),
            ("targets", &[&repo.targets_key], 1),
        ],
    );
    sign(&v2, &[&repo.root_key])
}

fn b14_fast_forward_timestamp_after_rotation() -> Verdict {
    // The compromised timestamp key signed v999999; root v2 rotates the timestamp key. The
    // attacker's file must not be accepted under v2.
    let repo = versions(999_999, 1, 1);
    let new_ts = ed(40);
    let mut extra = HashMap::new();
    extra.insert("2.root.json".into(), rotated_timestamp_key(&repo, &new_ts));
    verdict(&repo.verify_with(extra))
}

fn b14_recovery_control() -> Verdict {
    // Conclave keeps no timestamp between runs, so after the rotation the legitimate, much
    // lower timestamp version (5) is accepted: recovery needs nothing to be deleted.
    let repo = versions(999_999, 1, 1);
    let new_ts = ed(40);
    let mut extra = HashMap::new();
    extra.insert("2.root.json".into(), rotated_timestamp_key(&repo, &new_ts));
    extra.insert("timestamp.json".into(), sign(&timestamp(5, 1), &[&new_ts]));
    verdict(&repo.verify_with(extra))
}

fn b14_no_root_update_after_timestamp() -> Verdict {
    let repo = Repo::new();
    let mut set = loaded(&repo);
    set.update_root("2.root.json", &rotated_timestamp_key(&repo, &ed(40)))
        .map(|s| format!("root v{}", s.version))
        .map_err(|e| e.to_string())
}

fn b15_sigstore_head_at(t: &str) -> Verdict {
    b10_chain_at(t)
}

fn b15_timestamp_expired() -> Verdict {
    b15_sigstore_head_at("2026-08-29T00:00:00Z")
}

fn b15_tough_expired_repository() -> Verdict {
    let files = folder("tough/tough/tests/data/expired-repository/metadata");
    verdict(&verify_repository(
        "1.root.json",
        &files["1.root.json"],
        &files,
        at("2020-01-01T00:00:00Z"),
    ))
}

fn b15_expires_equal_now_is_expired() -> Verdict {
    let repo = Repo::new();
    let mut ts = timestamp(1, 1);
    ts["expires"] = json!("2026-01-01T00:00:00Z"); // == now()
    let mut extra = HashMap::new();
    extra.insert("timestamp.json".into(), sign(&ts, &[&repo.timestamp_key]));
    verdict(&repo.verify_with(extra))
}

fn b15_control() -> Verdict {
    verdict(&Repo::new().verify())
}

// ---------------------------------------------------------------------------------------------
// B.3 Keys, key ids, types, schemes, encodings

fn b16_tough_duplicate_keyid() -> Verdict {
    chain(
        &vector("tough/tough/tests/data/duplicate-keyid/root.json"),
        &[],
    )
}

fn root_with_version_text(duplicate: bool) -> Verdict {
    let repo = Repo::new();
    let bytes = repo.trusted_root();
    let text = String::from_utf8(bytes).unwrap();
    let needle = "\"version\": 1";
    assert!(text.contains(needle));
    let text = if duplicate {
        text.replacen(needle, "\"version\": 2, \"version\": 1", 1)
    } else {
        text
    };
    chain(text.as_bytes(), &[])
}

fn b16_duplicate_member_in_signed() -> Verdict {
    root_with_version_text(true)
}

fn b16_control() -> Verdict {
    root_with_version_text(false)
}

fn b17_targets_as_root() -> Verdict {
    chain(
        &sigstore_root(15),
        &[(
            "16.root.json",
            vector("sigstore-root-signing/metadata/targets.json"),
        )],
    )
}

fn b17_targets_signatures_do_verify_under_root_role() -> Verdict {
    // Control: the confused file's signatures meet v15's root threshold, so only the _type
    // check stops it.
    let (root, _) = trust_root("15.root.json", &sigstore_root(15)).unwrap();
    let t = Metadata::<Targets>::from_bytes(&vector("sigstore-root-signing/metadata/targets.json"))
        .unwrap();
    let r = root.count(
        conclave::tuf::metadata::RoleType::Root,
        t.signed_bytes(),
        &t.signatures,
    );
    if r.verified() {
        Ok(format!("root role: {}", r.summary()))
    } else {
        Err(r.summary())
    }
}

/// Root with A (Ed25519), B (P-256) and C, threshold 2; `c` is what C's key object says.
fn mixed_root(c: TestKey, signers: &[usize]) -> Verdict {
    let a = ed(50);
    let b = TestKey::p256(51);
    let keys = [&a, &b, &c];
    let signed = root(
        1,
        &[
            ("root", &keys, 2),
            ("timestamp", &[&a], 1),
            ("snapshot", &[&a], 1),
            ("targets", &[&a], 1),
        ],
    );
    let chosen: Vec<&TestKey> = signers.iter().map(|i| keys[*i]).collect();
    let file = sign(&signed, &chosen);
    let (_, r) = trust_root("root.json", &file).map_err(|e| e.to_string())?;
    let why: Vec<String> = r.unsigned.iter().map(|(_, w)| w.to_string()).collect();
    Ok(format!("{} ({})", r.summary(), why.join("; ")))
}

fn p384_declared_p256() -> TestKey {
    TestKey::p384(52).with_json(|j| j["scheme"] = json!("ecdsa-sha2-nistp256"))
}

fn b18_p384_declared_p256_with_two_others() -> Verdict {
    mixed_root(p384_declared_p256(), &[0, 1, 2])
}

fn b18_p384_declared_p256_below_threshold() -> Verdict {
    mixed_root(p384_declared_p256(), &[0, 2])
}

fn b18_p256_declared_p384() -> Verdict {
    mixed_root(
        TestKey::p256(55).with_json(|j| j["scheme"] = json!("ecdsa-sha2-nistp384")),
        &[0, 2],
    )
}

fn b18_unknown_scheme() -> Verdict {
    mixed_root(
        TestKey::p384(53).with_json(|j| j["scheme"] = json!("ecdsa-sha2-nistp521")),
        &[0, 2],
    )
}

fn b18_rsa_keytype_with_ed25519_scheme() -> Verdict {
    mixed_root(ed(54).with_json(|j| j["keytype"] = json!("rsa")), &[1, 2])
}

fn b18_datadog_p384_control() -> Verdict {
    let bytes = vector(
        "datadog-integrations-core/datadog_checks_downloader/datadog_checks/downloader/data/v2/metadata/root.json",
    );
    let (_, r) = trust_root("root.json", &bytes).map_err(|e| e.to_string())?;
    Ok(r.summary())
}

fn b19_empty_slots_threshold_met() -> Verdict {
    // sigstore v12 (2 empty slots), v13, v14 (1 each), one flipped signature in v15.
    let v15 = mutate(&sigstore_root(15), |v| {
        let s = v["signatures"][0]["sig"].as_str().unwrap().to_string();
        let flipped = format!(
            "{}{}",
            &s[..s.len() - 2],
            if s.ends_with("00") { "01" } else { "00" }
        );
        v["signatures"][0]["sig"] = json!(flipped);
    });
    chain(
        &sigstore_root(11),
        &[
            ("12.root.json", sigstore_root(12)),
            ("13.root.json", sigstore_root(13)),
            ("14.root.json", sigstore_root(14)),
            ("15.root.json", v15),
        ],
    )
}

fn b19_tuf_on_ci_delegated_empty_slot() -> Verdict {
    let files = folder("tuf-conformance-static/tuf-on-ci-0.11/metadata");
    let r = verify_repository(
        "initial_root.json",
        &vector("tuf-conformance-static/tuf-on-ci-0.11/initial_root.json"),
        &files,
        at("2025-02-09T09:17:23Z"),
    );
    let empty = r.roles.iter().find(|x| x.role == "delegatedrole").map(|x| {
        x.not_counted
            .iter()
            .any(|(_, w)| w == "empty signature slot")
    });
    verdict(&r).map(|s| format!("{s}; delegatedrole has an empty slot: {empty:?}"))
}

fn b19_defunct_all_empty() -> Verdict {
    chain(
        &sigstore_root(4),
        &[(
            "5.root.json",
            vector("sigstore-root-signing/legacy/ceremony/defunct/2022-10-17/staged/root.json"),
        )],
    )
}

fn b19_tough_invalid_signature() -> Verdict {
    chain(
        &vector("tough/tough/tests/data/invalid-root-json-signature/root.json"),
        &[],
    )
}

fn b20_keyid_not_hash_accepted() -> Verdict {
    let r = verify_repository(
        "10.root.json",
        &sigstore_root(10),
        &folder("sigstore-root-signing/metadata/root_history"),
        at("2026-08-22T00:00:00Z"),
    );
    let note = r
        .notes
        .iter()
        .find(|n| n.starts_with("11.root.json: key id 7247f0db"))
        .cloned()
        .unwrap_or_else(|| "NO NOTE".into());
    verdict(&r).map(|s| format!("{s}; {note}"))
}

fn b20_python_tuf_arbitrary_keyids() -> Verdict {
    let dir = "python-tuf/tests/generated_data/ed25519_metadata";
    let mut files = HashMap::new();
    for role in ["timestamp", "snapshot", "targets"] {
        files.insert(
            format!("{role}.json"),
            vector(&format!("{dir}/{role}_with_ed25519.json")),
        );
    }
    let r = verify_repository(
        "root_with_ed25519.json",
        &vector(&format!("{dir}/root_with_ed25519.json")),
        &files,
        at("2025-01-01T00:00:00Z"),
    );
    let notes = r
        .notes
        .iter()
        .filter(|n| n.contains("not the SHA-256"))
        .count();
    verdict(&r).map(|s| format!("{s}; {notes} key id notes"))
}

fn b20_new_keys_get_hash_keyids() -> Verdict {
    // Signing side: a key id Conclave computes is SHA-256 of the canonical key object with its
    // custom fields; every published sigstore v15 key id matches that rule.
    let md = Metadata::<Root>::from_bytes(&sigstore_root(15)).unwrap();
    let bad: Vec<String> = md
        .signed()
        .keys
        .iter()
        .filter(|(id, k)| k.key_id() != *id)
        .map(|(id, _)| id.0.clone())
        .collect();
    if bad.is_empty() {
        Ok(format!(
            "{} key ids are their key's hash",
            md.signed().keys.len()
        ))
    } else {
        Err(format!("key ids not hashes: {bad:?}"))
    }
}

// ---------------------------------------------------------------------------------------------
// B.4 Names and paths

fn fishy_dir() -> std::path::PathBuf {
    vector_path("python-tuf/tests/repository_data/fishy_rolenames/metadata")
}

fn b21_fishy_rolenames() -> Verdict {
    // The role "../a" is looked up only as "1...%2Fa.json" inside the folder; the decoy
    // "../1.a.json" (where a naive join lands) is never read, so the role is missing.
    let dir = fishy_dir();
    let src = FolderSource::new(&dir, 1 << 20).unwrap();
    let r = verify_repository(
        "1.root.json",
        &std::fs::read(dir.join("1.root.json")).unwrap(),
        &src,
        at("2025-01-01T00:00:00Z"),
    );
    verdict(&r)
}

fn b21_fishy_rolenames_quoted_copy() -> Verdict {
    // Control: the same repository with the role file under its quoted name verifies.
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fishy_dir()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, tmp.path().join(p.file_name().unwrap())).unwrap();
    }
    let decoy = vector("python-tuf/tests/repository_data/fishy_rolenames/1.a.json");
    let quoted = format!("1.{}.json", quote_role_name("../a"));
    std::fs::write(tmp.path().join(&quoted), decoy).unwrap();
    let src = FolderSource::new(tmp.path(), 1 << 20).unwrap();
    let r = verify_repository(
        "1.root.json",
        &std::fs::read(fishy_dir().join("1.root.json")).unwrap(),
        &src,
        at("2025-01-01T00:00:00Z"),
    );
    verdict(&r).map(|s| format!("{s}; read {quoted}"))
}

fn b21_names_never_leave_the_folder() -> Verdict {
    for (role, quoted) in [
        ("../a", "..%2Fa"),
        (".", "."),
        ("..", ".."),
        ("/etc/passwd", "%2Fetc%2Fpasswd"),
        ("a\\b", "a%5Cb"),
        ("a\0b", "a%00b"),
        ("ö", "%C3%B6"),
    ] {
        if quote_role_name(role) != quoted {
            return Ok(format!("BUG: {role:?} quoted as {}", quote_role_name(role)));
        }
        if !is_safe_file_name(&format!("{quoted}.json")) {
            return Ok(format!("BUG: {quoted}.json judged unsafe"));
        }
    }
    let src = FolderSource::new(&fishy_dir(), 1 << 20).unwrap();
    src.read("../1.a.json")
        .map(|_| "read the decoy".to_string())
        .map_err(|e| e.to_string())
}

/// Roles "a/b" and "a%2Fb" with different keys, files under python-tuf's names
/// (`quote(role)`): "a%2Fb.json" and "a%252Fb.json".
fn percent_roles_repo() -> Repo {
    let (k1, k2) = (ed(160), ed(161));
    delegating(
        &[&k1, &k2],
        vec![
            drole("a/b", &[&k1], 1, false, &["x/*"]),
            drole("a%2Fb", &[&k2], 1, false, &["y/*"]),
        ],
        vec![
            ("a/b", targets(1, &[("x/1", b"1")], None), vec![&k1]),
            ("a%2Fb", targets(1, &[("y/1", b"1")], None), vec![&k2]),
        ],
    )
}

fn b21_percent_in_role_names() -> Verdict {
    // tuf-conformance test_unusual_role_name: names are URL-quoted when fetched, so the file
    // of "a%2Fb" is "a%252Fb.json", never "a%2Fb.json" (which is the file of "a/b").
    let repo = percent_roles_repo();
    let files = repo.files();
    if !files.contains_key("a%2Fb.json") || !files.contains_key("a%252Fb.json") {
        return Ok("BUG: fixture".into());
    }
    let walk = verdict(&repo.verify())?;
    Ok(format!("{walk}; {}", lookup(&repo, "y/1")?))
}

fn b21_tough_dubious_role_names() -> Verdict {
    let dir = vector_path("tough/tough/tests/data/dubious-role-names/metadata");
    let src = FolderSource::new(&dir, 1 << 20).unwrap();
    let r = verify_repository(
        "1.root.json",
        &std::fs::read(dir.join("1.root.json")).unwrap(),
        &src,
        at("2020-01-01T00:00:00Z"),
    );
    let roles: Vec<String> = r.roles.iter().map(|x| x.role.clone()).collect();
    verdict(&r).map(|s| format!("{s}: {}", roles.join(" | ")))
}

fn safe_target_paths_set() -> (TrustedSet, HashMap<String, Vec<u8>>) {
    let files = folder("tough/tough/tests/data/safe-target-paths/metadata");
    let (root, _) = trust_root("1.root.json", &files["1.root.json"]).unwrap();
    let mut set = TrustedSet::new(root, at("2020-01-01T00:00:00Z"));
    set.update_timestamp("timestamp.json", &files["timestamp.json"])
        .unwrap();
    set.update_snapshot("snapshot.json", &files["snapshot.json"])
        .unwrap();
    set.update_targets("targets.json", &files["targets.json"])
        .unwrap();
    (set, files)
}

fn b22_target_names_are_raw_strings() -> Verdict {
    // Conclave does not write targets; its lookup matches target names as raw strings (no
    // normalisation of "..") and delegated paths with "*" not crossing "/".
    let (set, files) = safe_target_paths_set();
    let mut out = Vec::new();
    for t in [
        "foo/../bar/../baz/../data1.txt",
        "data1.txt",
        "../delegated/foo/../subdir/data3.txt",
        "delegated/subdir/data3.txt",
    ] {
        let s = set
            .find_target(t, |role| files.get(&format!("{role}.json")).cloned())
            .map_err(|e| e.to_string())?;
        out.push(format!("{t} -> {:?}", s.found.map(|(r, _)| r)));
    }
    Ok(out.join("; "))
}

fn b22_tough_safe_target_paths_verify() -> Verdict {
    let files = folder("tough/tough/tests/data/safe-target-paths/metadata");
    verdict(&verify_repository(
        "1.root.json",
        &files["1.root.json"],
        &files,
        at("2020-01-01T00:00:00Z"),
    ))
}

fn b22_escaping_names_refused() -> Verdict {
    let tmp = tempfile::tempdir().unwrap();
    let src = FolderSource::new(tmp.path(), 1 << 20).unwrap();
    let mut errors = Vec::new();
    for name in ["../escape.txt", "/abs.txt", "..", "sub/../x.json"] {
        if is_safe_file_name(name) {
            return Ok(format!("BUG: {name} judged safe"));
        }
        match src.read(name) {
            Ok(_) => return Ok(format!("BUG: {name} read")),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(errors.join("; "))
}

fn b23_link_outside_refused() -> Verdict {
    // No TAP 4 map or target cache in Conclave: the closest part is the folder reader, which
    // never follows a link (e.g. a repository named "../escaped-repo") out of its folder.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("root.json"), b"{}").unwrap();
    let repo = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("root.json"),
        repo.path().join("escaped-repo.json"),
    )
    .unwrap();
    if quote_role_name("../escaped-repo") != "..%2Fescaped-repo" {
        return Ok("BUG: quoting".into());
    }
    let src = FolderSource::new(repo.path(), 1 << 20).unwrap();
    src.read("escaped-repo.json")
        .map(|_| "followed".into())
        .map_err(|e| e.to_string())
}

fn b23_link_inside_control() -> Verdict {
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("real.json"), b"{}").unwrap();
    std::os::unix::fs::symlink(repo.path().join("real.json"), repo.path().join("link.json"))
        .unwrap();
    let src = FolderSource::new(repo.path(), 1 << 20).unwrap();
    src.read("link.json")
        .map(|b| format!("read {} bytes", b.map_or(0, |b| b.len())))
        .map_err(|e| e.to_string())
}

fn dfs_repo(a_lists_t: bool) -> Repo {
    // targets -> A, B (both "*"); B -> C ("*"). C always lists "t"; A lists it when asked.
    let (ka, kb, kc) = (ed(60), ed(61), ed(62));
    let a_targets: Vec<(&str, &[u8])> = if a_lists_t {
        vec![("t", b"from A")]
    } else {
        vec![("other", b"x")]
    };
    delegating(
        &[&ka, &kb],
        vec![
            drole("A", &[&ka], 1, false, &["*"]),
            drole("B", &[&kb], 1, false, &["*"]),
        ],
        vec![
            ("A", targets(1, &a_targets, None), vec![&ka]),
            (
                "B",
                targets(
                    1,
                    &[],
                    Some(delegations(
                        &[&kc],
                        vec![drole("C", &[&kc], 1, false, &["*"])],
                    )),
                ),
                vec![&kb],
            ),
            ("C", targets(1, &[("t", b"from C")], None), vec![&kc]),
        ],
    )
}

fn b24_preorder_first_match() -> Verdict {
    lookup(&dfs_repo(true), "t")
}

fn b24_preorder_order() -> Verdict {
    lookup(&dfs_repo(false), "t")
}

fn terminating_repo(terminating: bool) -> Repo {
    let (npm, evil) = (ed(70), ed(71));
    delegating(
        &[&npm, &evil],
        vec![
            drole(
                "registry.npmjs.org",
                &[&npm],
                1,
                terminating,
                &["registry.npmjs.org/*"],
            ),
            drole("evil", &[&evil], 1, false, &["registry.npmjs.org/*"]),
        ],
        vec![
            (
                "registry.npmjs.org",
                targets(1, &[("registry.npmjs.org/good.tgz", b"good")], None),
                vec![&npm],
            ),
            (
                "evil",
                targets(1, &[("registry.npmjs.org/evil", b"evil")], None),
                vec![&evil],
            ),
        ],
    )
}

fn b25_terminating_stops() -> Verdict {
    lookup(&terminating_repo(true), "registry.npmjs.org/evil")
}

fn b25_control_not_terminating() -> Verdict {
    lookup(&terminating_repo(false), "registry.npmjs.org/evil")
}

fn cycle_repo() -> Repo {
    // targets -> A; A -> B and A (itself); B -> A.
    let (ka, kb) = (ed(80), ed(81));
    let a_del = delegations(
        &[&ka, &kb],
        vec![
            drole("B", &[&kb], 1, false, &["*"]),
            drole("A", &[&ka], 1, false, &["*"]),
        ],
    );
    let b_del = delegations(&[&ka], vec![drole("A", &[&ka], 1, false, &["*"])]);
    delegating(
        &[&ka],
        vec![drole("A", &[&ka], 1, false, &["*"])],
        vec![
            ("A", targets(1, &[], Some(a_del)), vec![&ka]),
            ("B", targets(1, &[("in-b", b"b")], Some(b_del)), vec![&kb]),
        ],
    )
}

fn b26_cycle_terminates() -> Verdict {
    let repo = cycle_repo();
    let walk = verdict(&repo.verify())?;
    lookup(&repo, "missing").map(|s| format!("{s}; repository walk: {walk}"))
}

fn b26_control_found_in_b() -> Verdict {
    lookup(&cycle_repo(), "in-b")
}

fn chain_of_roles(n: usize) -> Repo {
    // targets -> r0 -> r1 -> ... -> r(n-1); the last one lists "deep".
    let keys: Vec<TestKey> = (0..n).map(|i| ed(100 + i as u8)).collect();
    let mut repo = delegating(
        &[&keys[0]],
        vec![drole("r0", &[&keys[0]], 1, false, &["*"])],
        vec![],
    );
    for i in 0..n {
        let signed = if i + 1 < n {
            targets(
                1,
                &[],
                Some(delegations(
                    &[&keys[i + 1]],
                    vec![drole(
                        &format!("r{}", i + 1),
                        &[&keys[i + 1]],
                        1,
                        false,
                        &["*"],
                    )],
                )),
            )
        } else {
            targets(1, &[("deep", b"d")], None)
        };
        repo = repo.role(&format!("r{i}"), signed, &[&keys[i]]);
    }
    repo
}

fn b26_depth_cap() -> Verdict {
    lookup(&chain_of_roles(40), "deep")
}

fn b26_depth_cap_control() -> Verdict {
    lookup(&chain_of_roles(10), "deep")
}

fn bin_index(path: &str, bit_length: u32) -> u32 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(path.as_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]]) >> (32 - bit_length)
}

/// Succinct bins (bit_length 3): "pkg/a" is listed by the bin `listed_in` (its own bin when
/// `None`).
fn bins_repo(listed_in: Option<u32>) -> Repo {
    let k = ed(90);
    let own = bin_index("pkg/a", 3);
    let bin = listed_in.unwrap_or(own);
    let mut repo = Repo::new();
    repo.targets = targets(
        1,
        &[],
        Some(json!({
            "keys": {k.id.clone(): k.json.clone()},
            "succinct_roles": {"keyids": [k.id.clone()], "threshold": 1, "bit_length": 3,
                               "name_prefix": "bins"},
        })),
    );
    if bin != own {
        // The bin the path belongs to exists and does not list it.
        repo = repo.role(&format!("bins-{own:x}"), targets(1, &[], None), &[&k]);
    }
    repo.role(
        &format!("bins-{bin:x}"),
        targets(1, &[("pkg/a", b"a")], None),
        &[&k],
    )
}

fn b27_target_in_wrong_bin() -> Verdict {
    let own = bin_index("pkg/a", 3);
    lookup(&bins_repo(Some((own + 1) % 8)), "pkg/a")
}

fn b27_control_right_bin() -> Verdict {
    lookup(&bins_repo(None), "pkg/a")
}

fn b27_names_outside_the_bins() -> Verdict {
    // "not-a-bin", "bins-8", "bins-07", "bins-a" signed with the bin keys: not delegated.
    let repo = bins_repo(None);
    let k = ed(90);
    let mut errors = Vec::new();
    for name in ["not-a-bin", "bins-8", "bins-07", "bins-a", "other"] {
        let signed = targets(1, &[("pkg/a", b"evil")], None);
        let bytes = sign(&signed, &[&k]);
        // Without a snapshot pin, the delegation check alone decides.
        let (root, _) = trust_root("1.root.json", &repo.trusted_root()).unwrap();
        let mut bare = TrustedSet::new(root, now());
        bare.update_targets("targets.json", &repo.files()["targets.json"])
            .unwrap();
        match bare.update_delegated_targets(&format!("{name}.json"), &bytes, name, "targets") {
            Ok(_) => return Ok(format!("BUG: {name} accepted as a bin")),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(errors.join("; "))
}

fn diamond_repo(release_signers: &[&TestKey]) -> Repo {
    let (kpa, kpb, ka, kb) = (ed(120), ed(121), ed(122), ed(123));
    let parent = |key: &TestKey, path: &str| {
        targets(
            1,
            &[],
            Some(delegations(
                &[key],
                vec![drole("release", &[key], 1, false, &[path])],
            )),
        )
    };
    let mut repo = delegating(
        &[&kpa, &kpb],
        vec![
            drole("parent-a", &[&kpa], 1, false, &["team-a/*"]),
            drole("parent-b", &[&kpb], 1, false, &["team-b/*"]),
        ],
        vec![
            ("parent-a", parent(&ka, "team-a/*"), vec![&kpa]),
            ("parent-b", parent(&kb, "team-b/*"), vec![&kpb]),
        ],
    );
    repo = repo.role(
        "release",
        targets(1, &[("team-a/x", b"a"), ("team-b/y", b"b")], None),
        release_signers,
    );
    repo
}

fn diamond_keys() -> (TestKey, TestKey) {
    (ed(122), ed(123))
}

fn b28_diamond_reverified() -> Verdict {
    // release is signed only by parent-a's key. Looking up team-a/x first verifies it through
    // parent-a; the later lookup of team-b/y reaches it through parent-b and must fail.
    let (ka, _) = diamond_keys();
    let repo = diamond_repo(&[&ka]);
    let first = lookup(&repo, "team-a/x")?;
    if !first.starts_with("found in release") {
        return Ok(format!("BUG: {first}"));
    }
    lookup(&repo, "team-b/y")
}

fn b28_diamond_refused_by_walk() -> Verdict {
    let (ka, _) = diamond_keys();
    verdict(&diamond_repo(&[&ka]).verify())
}

fn b28_control_signed_by_both() -> Verdict {
    let (ka, kb) = diamond_keys();
    let repo = diamond_repo(&[&ka, &kb]);
    let walk = verdict(&repo.verify())?;
    Ok(format!(
        "{}; {}; {walk}",
        lookup(&repo, "team-a/x")?,
        lookup(&repo, "team-b/y")?
    ))
}

fn delegation_entry(edit: impl FnOnce(&mut J)) -> Verdict {
    let k = ed(130);
    let mut role = drole("r", &[&k], 1, false, &["*"]);
    edit(&mut role);
    let repo = delegating(
        &[&k],
        vec![role],
        vec![("r", targets(1, &[], None), vec![&k])],
    );
    verdict(&repo.verify())
}

fn b29_paths_and_prefixes() -> Verdict {
    delegation_entry(|r| r["path_hash_prefixes"] = json!(["ab"]))
}

fn b29_neither() -> Verdict {
    delegation_entry(|r| {
        r.as_object_mut().unwrap().remove("paths");
    })
}

fn b29_non_string_prefix() -> Verdict {
    delegation_entry(|r| {
        r.as_object_mut().unwrap().remove("paths");
        r["path_hash_prefixes"] = json!([12]);
    })
}

fn b29_control() -> Verdict {
    delegation_entry(|_| {})
}

fn patterns_repo() -> Repo {
    let (k, h) = (ed(131), ed(132));
    use sha2::Digest;
    let prefix = hex::encode(sha2::Sha256::digest(b"hashed/file"))[..4].to_string();
    let mut hashed = drole("hashed", &[&h], 1, false, &[]);
    hashed.as_object_mut().unwrap().remove("paths");
    hashed["path_hash_prefixes"] = json!([prefix]);
    delegating(
        &[&k, &h],
        vec![
            drole("delegatedrole", &[&k], 1, false, &["delegatedrole/*"]),
            hashed,
        ],
        vec![
            (
                "delegatedrole",
                targets(
                    1,
                    &[
                        ("delegatedrole/x", b"x"),
                        ("delegatedrole/a/b", b"deep"),
                        ("../delegatedrole/x", b"up"),
                    ],
                    None,
                ),
                vec![&k],
            ),
            (
                "hashed",
                targets(1, &[("hashed/file", b"h"), ("hashed/other", b"o")], None),
                vec![&h],
            ),
        ],
    )
}

fn b29_matching() -> Verdict {
    let repo = patterns_repo();
    let mut out = Vec::new();
    for t in [
        "delegatedrole/x",
        "delegatedrole/a/b",
        "../delegatedrole/x",
        "hashed/file",
        "hashed/other",
    ] {
        out.push(format!("{t}: {}", lookup(&repo, t)?));
    }
    Ok(out.join("; "))
}

// ---------------------------------------------------------------------------------------------
// B.5 Mix-and-match, hashes, lengths

const LEGACY: &str = "sigstore-root-signing/legacy/repository/repository";

fn legacy_with(edit: impl FnOnce(&mut HashMap<String, Vec<u8>>)) -> Verdict {
    let mut files = folder(LEGACY);
    edit(&mut files);
    verdict(&verify_repository(
        "1.root.json",
        &files["1.root.json"],
        &files,
        at("2024-09-01T00:00:00Z"),
    ))
}

fn b30_pretty_printed_snapshot() -> Verdict {
    legacy_with(|f| {
        let v: J = serde_json::from_slice(&f["155.snapshot.json"]).unwrap();
        f.insert(
            "155.snapshot.json".into(),
            serde_json::to_vec_pretty(&v).unwrap(),
        );
    })
}

fn b30_legacy_control() -> Verdict {
    legacy_with(|_| {})
}

const CEREMONY_2021: &str = "sigstore-root-signing/legacy/ceremony/2021-06-18/repository";

fn ceremony_2021_with(edit: impl FnOnce(&mut HashMap<String, Vec<u8>>)) -> Verdict {
    let mut files = folder(CEREMONY_2021);
    edit(&mut files);
    verdict(&verify_repository(
        "root.json",
        &files["root.json"],
        &files,
        at("2021-07-01T00:00:00Z"),
    ))
}

fn b30_sha512_only_pin() -> Verdict {
    // Same length, one tab turned into a space: only the sha512 pin can tell.
    ceremony_2021_with(|f| {
        let b = f.get_mut("snapshot.json").unwrap();
        let i = b.iter().position(|c| *c == b'\t').unwrap();
        b[i] = b' ';
    })
}

fn b30_sha512_control() -> Verdict {
    ceremony_2021_with(|_| {})
}

fn b30_snapshot_version_not_as_timestamp() -> Verdict {
    let repo = Repo::new();
    let mut extra = HashMap::new();
    extra.insert(
        "timestamp.json".into(),
        sign(&timestamp(1, 2), &[&repo.timestamp_key]),
    );
    verdict(&repo.verify_with(extra))
}

fn b30_targets_version_not_as_snapshot() -> Verdict {
    let repo = Repo::new();
    let mut extra = HashMap::new();
    extra.insert(
        "snapshot.json".into(),
        sign(&snapshot(1, &[("targets.json", 2)]), &[&repo.snapshot_key]),
    );
    verdict(&repo.verify_with(extra))
}

/// Repository at versions (n, n, n) whose targets lists "t" with content `t-vN`.
fn listing_t(n: u64) -> Repo {
    let mut r = versions(n, n, n);
    let content = format!("t-v{n}");
    r.targets = targets(n, &[("t", content.as_bytes())], None);
    r
}

fn b30_lookup_after_new_snapshot() -> Verdict {
    // Timestamp and snapshot move to v2 (snapshot lists targets v2); the targets role is not
    // updated in the trusted set. A lookup must not answer from targets v1, which the current
    // snapshot no longer names: it loads and verifies targets v2.
    let mut set = loaded(&listing_t(1));
    let new = listing_t(2).files();
    set.update_timestamp("timestamp.json", &new["timestamp.json"])
        .map_err(|e| e.to_string())?;
    set.update_snapshot("snapshot.json", &new["snapshot.json"])
        .map_err(|e| e.to_string())?;
    let s = set
        .find_target("t", |role| new.get(&format!("{role}.json")).cloned())
        .map_err(|e| e.to_string())?;
    let (role, tf) = s.found.ok_or("not found")?;
    let want = target_entry(b"t-v2")["hashes"]["sha256"].clone();
    let got = &tf.hashes[0].1;
    Ok(format!(
        "found in {role}, {}",
        if *got == want {
            "entry of targets v2"
        } else {
            "STALE entry of targets v1"
        }
    ))
}

fn b30_targets_against_stale_snapshot() -> Verdict {
    // A new timestamp names snapshot v2, the snapshot is not updated: a targets file must not
    // be checked against the stale snapshot v1.
    let mut set = loaded(&listing_t(1));
    let new = listing_t(2).files();
    set.update_timestamp("timestamp.json", &new["timestamp.json"])
        .map_err(|e| e.to_string())?;
    let old = listing_t(1).files();
    set.update_targets("targets.json", &old["targets.json"])
        .map(|c| format!("targets v{} accepted", c.version))
        .map_err(|e| e.to_string())
}

fn b30_same_snapshot_version_other_pin() -> Verdict {
    // A new timestamp names the trusted snapshot's version but pins other bytes (length): the
    // trusted snapshot is not the one it names.
    let first = versions(2, 2, 1);
    let mut set = loaded(&first);
    let mut ts = timestamp(3, 2);
    ts["meta"]["snapshot.json"]["length"] = json!(1);
    set.update_timestamp("timestamp.json", &sign(&ts, &[&first.timestamp_key]))
        .map_err(|e| format!("BUG? timestamp refused: {e}"))?;
    set.update_targets("targets.json", &first.files()["targets.json"])
        .map(|c| format!("targets v{} accepted", c.version))
        .map_err(|e| e.to_string())
}

fn write_repo(repo: &Repo, dir: &std::path::Path) {
    for (name, bytes) in repo.files() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn big_targets_repo() -> Repo {
    let mut repo = Repo::new();
    let names: Vec<String> = (0..200).map(|i| format!("file-{i}")).collect();
    let list: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    repo.targets = targets(1, &list, None);
    repo
}

fn folder_verify(repo: &Repo, max: u64) -> Verdict {
    let tmp = tempfile::tempdir().unwrap();
    write_repo(repo, tmp.path());
    let src = FolderSource::new(tmp.path(), max).unwrap();
    verdict(&verify_repository(
        "1.root.json",
        &repo.trusted_root(),
        &src,
        now(),
    ))
}

fn b31_size_limit() -> Verdict {
    folder_verify(&big_targets_repo(), 16_384)
}

fn b31_size_limit_control() -> Verdict {
    folder_verify(&big_targets_repo(), 5_000_000)
}

fn b31_length_pin() -> Verdict {
    // The timestamp pins the snapshot's length; the served snapshot has 1 MB of padding.
    let repo = Repo::new();
    let files = repo.files();
    let snap = files["snapshot.json"].clone();
    let mut ts = timestamp(1, 1);
    ts["meta"]["snapshot.json"]["length"] = json!(snap.len());
    let mut padded = snap;
    padded.extend(std::iter::repeat_n(b' ', 1 << 20));
    let mut extra = HashMap::new();
    extra.insert("timestamp.json".into(), sign(&ts, &[&repo.timestamp_key]));
    extra.insert("snapshot.json".into(), padded);
    verdict(&repo.verify_with(extra))
}

// ---------------------------------------------------------------------------------------------
// B.6 Signing-tool specific

fn cross_signed(signers_old: bool, signers_new: bool) -> Verdict {
    let repo = Repo::new();
    let new = ed(140);
    let v2 = with_root_threshold_keys(2, &[&new], 1, &repo);
    let mut s: Vec<&TestKey> = Vec::new();
    if signers_old {
        s.push(&repo.root_key);
    }
    if signers_new {
        s.push(&new);
    }
    let (root, _) = trust_root("1.root.json", &repo.trusted_root()).unwrap();
    let (_, step) = update_root(&root, "2.root.json", &sign(&v2, &s)).map_err(|e| e.to_string())?;
    Ok(format!(
        "previous root: {}; own: {}",
        step.by_previous.summary(),
        step.by_self.summary()
    ))
}

fn b32_cross_signed_by_old_only() -> Verdict {
    cross_signed(true, false)
}

fn b32_signed_by_new_only() -> Verdict {
    cross_signed(false, true)
}

fn b32_both_counts_reported() -> Verdict {
    cross_signed(true, true)
}

fn b32_no_second_signature_per_keyid() -> Verdict {
    let repo = Repo::new();
    let mut md = Metadata::<Root>::from_bytes(&sign(&repo.root, &[])).unwrap();
    let id = KeyId(repo.root_key.id.clone());
    let sig = hex::decode(repo.root_key.sign_hex(&repo.root)).unwrap();
    md.add_signature(id.clone(), &sig);
    md.add_signature(id, &sig);
    let n = md.signatures.len();
    let again = Metadata::<Root>::from_bytes(&md.to_file_bytes()).map_err(|e| e.to_string())?;
    Ok(format!(
        "{n} signature(s) after adding twice; reloads with {}",
        again.signatures.len()
    ))
}

/// Targets delegates A (declaring key `evil` under `label` in its own delegations) and B;
/// B is listed under key id `b_id`.
fn notary_repo(b_signed_by_evil: bool) -> Repo {
    let (ka, kb, evil) = (ed(150), ed(151), ed(152));
    let label = "shared-label";
    let evil_l = evil.clone().with_id(label);
    let a_del = delegations(
        &[&evil_l],
        vec![drole("A-child", &[&evil_l], 1, false, &["*"])],
    );
    let (b_keys, b_signer): (Vec<&TestKey>, TestKey) = if b_signed_by_evil {
        (vec![], evil_l.clone())
    } else {
        (vec![&kb], kb.clone())
    };
    let mut b_role = drole("B", &[&kb], 1, false, &["*"]);
    if b_signed_by_evil {
        b_role["keyids"] = json!([label]);
    }
    let mut keys: Vec<&TestKey> = vec![&ka];
    keys.extend(b_keys);
    delegating(
        &keys,
        vec![drole("A", &[&ka], 1, false, &["a/*"]), b_role],
        vec![
            ("A", targets(1, &[], Some(a_del)), vec![&ka]),
            ("B", targets(1, &[("b", b"b")], None), vec![&b_signer]),
        ],
    )
}

fn b33_sibling_uses_keys_declared_by_a() -> Verdict {
    verdict(&notary_repo(true).verify())
}

fn b33_top_level_uses_keys_declared_by_a() -> Verdict {
    // A declares the attacker's key under the timestamp key's id; a timestamp signed by it
    // under that id is judged with root's key only.
    let repo = Repo::new();
    let evil = ed(153).with_id(&repo.timestamp_key.id);
    let k = ed(154);
    let mut repo = delegating(
        &[&k],
        vec![drole("A", &[&k], 1, false, &["*"])],
        vec![(
            "A",
            targets(
                1,
                &[],
                Some(delegations(
                    &[&evil],
                    vec![drole("x", &[&evil], 1, false, &["*"])],
                )),
            ),
            vec![&k],
        )],
    );
    repo.timestamp_key = evil;
    verdict(&repo.verify())
}

fn b33_control() -> Verdict {
    verdict(&notary_repo(false).verify())
}

// ---------------------------------------------------------------------------------------------
// A. The classic attacks on update systems (TUF specification, "Goals for specific attacks to
// protect against") as they apply to an offline verifier of a repository folder. Rows reuse
// the B functions where a historical vulnerability is the same attack.

/// Verify `repo` after `edit` changed its signed files (by file name).
fn tampered(repo: &Repo, edit: impl FnOnce(&mut HashMap<String, Vec<u8>>)) -> Verdict {
    let mut files = repo.files();
    edit(&mut files);
    verdict(&verify_repository(
        "1.root.json",
        &repo.trusted_root(),
        &files,
        now(),
    ))
}

/// A repository whose targets list one release.
fn release_repo() -> Repo {
    let mut repo = Repo::new();
    repo.targets = targets(1, &[("app-1.0.tgz", b"the reviewed release")], None);
    repo
}

fn a_control() -> Verdict {
    tampered(&release_repo(), |_| {})
}

fn a1_target_swapped_signature_kept() -> Verdict {
    tampered(&release_repo(), |f| {
        let t = mutate(&f["targets.json"], |v| {
            v["signed"]["targets"]["app-1.0.tgz"] = target_entry(b"malware");
        });
        f.insert("targets.json".into(), t);
    })
}

fn a1_target_added_signed_by_unknown_key() -> Verdict {
    let repo = release_repo();
    let mut t = repo.targets.clone();
    t["targets"]["backdoor.tgz"] = target_entry(b"malware");
    tampered(&repo, |f| {
        f.insert("targets.json".into(), sign(&t, &[&ed(60)]));
    })
}

fn a3_dependency_added_to_custom() -> Verdict {
    tampered(&release_repo(), |f| {
        let t = mutate(&f["targets.json"], |v| {
            v["signed"]["targets"]["app-1.0.tgz"]["custom"] =
                json!({"requires": ["evil-lib-6.6.6.tgz"]});
        });
        f.insert("targets.json".into(), t);
    })
}

/// targets delegates "team/*" to team, whose file also lists a path outside it.
fn scoped_team_repo() -> Repo {
    let team = ed(61);
    delegating(
        &[&team],
        vec![drole("team", &[&team], 1, false, &["team/*"])],
        vec![(
            "team",
            targets(
                1,
                &[("team/app.tgz", b"ok"), ("evil-lib.tgz", b"malware")],
                None,
            ),
            vec![&team],
        )],
    )
}

fn a3_role_lists_a_target_outside_its_paths() -> Verdict {
    lookup(&scoped_team_repo(), "evil-lib.tgz")
}

fn a3_control_target_inside_its_paths() -> Verdict {
    lookup(&scoped_team_repo(), "team/app.tgz")
}

/// A repository whose `role` (timestamp, snapshot, targets or the delegated role "team")
/// expires at `expires`, re-signed by its key.
fn expiring(role: &str, expires: &str) -> Verdict {
    let team = ed(62);
    let mut repo = delegating(
        &[&team],
        vec![drole("team", &[&team], 1, false, &["team/*"])],
        vec![("team", targets(1, &[("team/a", b"a")], None), vec![&team])],
    );
    match role {
        "targets" => repo.targets["expires"] = json!(expires),
        "team" => repo.roles[0].1["expires"] = json!(expires),
        _ => {}
    }
    let mut extra = HashMap::new();
    if role == "snapshot" {
        let mut s = repo.snapshot_signed();
        s["expires"] = json!(expires);
        extra.insert("snapshot.json".into(), sign(&s, &[&repo.snapshot_key]));
    }
    if role == "timestamp" {
        let mut t = timestamp(1, 1);
        t["expires"] = json!(expires);
        extra.insert("timestamp.json".into(), sign(&t, &[&repo.timestamp_key]));
    }
    verdict(&repo.verify_with(extra))
}

fn a5_snapshot_expired() -> Verdict {
    expiring("snapshot", "2020-01-01T00:00:00Z")
}

fn a5_targets_expired() -> Verdict {
    expiring("targets", "2020-01-01T00:00:00Z")
}

fn a5_delegated_role_expired() -> Verdict {
    expiring("team", "2020-01-01T00:00:00Z")
}

fn a5_control() -> Verdict {
    expiring("none", "2020-01-01T00:00:00Z")
}

fn a6_mirror_root_signed_by_its_own_key() -> Verdict {
    let repo = Repo::new();
    let mirror = ed(63);
    let v2 = with_root_threshold_keys(2, &[&mirror], 1, &repo);
    chain(
        &repo.trusted_root(),
        &[("2.root.json", sign(&v2, &[&mirror]))],
    )
}

fn a6_mirror_metadata_signed_by_its_own_key() -> Verdict {
    let repo = Repo::new();
    let mirror = ed(63);
    tampered(&repo, |f| {
        f.insert("timestamp.json".into(), sign(&timestamp(9, 1), &[&mirror]));
    })
}

fn a6_control_rotation_by_the_root_keys() -> Verdict {
    let repo = Repo::new();
    let v2 = with_root_threshold_keys(2, &[&repo.root_key], 1, &repo);
    chain(
        &repo.trusted_root(),
        &[("2.root.json", sign(&v2, &[&repo.root_key]))],
    )
}

/// A folder where `snapshot.json` is replaced by `make` (a FIFO, a link): verified with a
/// 10-second guard so that a blocking read fails the row instead of hanging the suite.
fn odd_snapshot_file(make: fn(&std::path::Path)) -> Verdict {
    let repo = Repo::new();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let tmp = tempfile::tempdir().unwrap();
        write_repo(&repo, tmp.path());
        let snap = tmp.path().join("snapshot.json");
        make(&snap);
        let src = FolderSource::new(tmp.path(), 1 << 20).unwrap();
        let v = verdict(&verify_repository(
            "1.root.json",
            &repo.trusted_root(),
            &src,
            now(),
        ));
        let _ = tx.send(v);
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .unwrap_or_else(|_| Ok("BUG: still reading after 10 s".into()))
}

fn fifo(snap: &std::path::Path) {
    std::fs::remove_file(snap).unwrap();
    let ok = std::process::Command::new("mkfifo")
        .arg(snap)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
}

fn a9_named_pipe_never_written() -> Verdict {
    odd_snapshot_file(fifo)
}

fn a9_link_to_a_named_pipe_inside() -> Verdict {
    odd_snapshot_file(|snap| {
        let real = snap.with_file_name("pipe.json");
        std::fs::rename(snap, &real).unwrap();
        fifo(&real);
        std::os::unix::fs::symlink(&real, snap).unwrap();
    })
}

fn a9_link_to_dev_zero() -> Verdict {
    odd_snapshot_file(|snap| {
        std::fs::remove_file(snap).unwrap();
        std::os::unix::fs::symlink("/dev/zero", snap).unwrap();
    })
}

fn a9_control_regular_file() -> Verdict {
    odd_snapshot_file(|_| {})
}

/// Root v1 with root keys 1 and 2 (threshold 2); v2 changes the timestamp key, signed by
/// `signers` (indexes into the two root keys).
fn root_threshold_two(signers: &[usize]) -> Verdict {
    let repo = Repo::new();
    let (k1, k2) = (ed(64), ed(65));
    let v1 = with_root_threshold_keys(1, &[&k1, &k2], 2, &repo);
    let mut v2 = with_root_threshold_keys(2, &[&k1, &k2], 2, &repo);
    v2["keys"][ed(66).id.as_str()] = ed(66).json.clone();
    v2["roles"]["timestamp"]["keyids"] = json!([ed(66).id]);
    let keys = [&k1, &k2];
    let by: Vec<&TestKey> = signers.iter().map(|&i| keys[i]).collect();
    chain(&sign(&v1, &[&k1, &k2]), &[("2.root.json", sign(&v2, &by))])
}

fn a10_one_of_two_root_keys_compromised() -> Verdict {
    root_threshold_two(&[0])
}

fn a10_control_both_root_keys() -> Verdict {
    root_threshold_two(&[0, 1])
}

fn a10_online_keys_cannot_sign_targets() -> Verdict {
    // Timestamp and snapshot keys (online) compromised: the attacker signs new targets with
    // both; the targets role is offline and its key is not theirs.
    let repo = release_repo();
    let mut t = repo.targets.clone();
    t["targets"]["backdoor.tgz"] = target_entry(b"malware");
    tampered(&repo, |f| {
        f.insert(
            "targets.json".into(),
            sign(&t, &[&repo.snapshot_key, &repo.timestamp_key]),
        );
    })
}

fn a10_targets_key_cannot_rotate_root() -> Verdict {
    let repo = Repo::new();
    let v2 = with_root_threshold_keys(2, &[&repo.targets_key], 1, &repo);
    chain(
        &repo.trusted_root(),
        &[("2.root.json", sign(&v2, &[&repo.targets_key]))],
    )
}

fn a11_delegated_role_served_for_another() -> Verdict {
    // Two delegated roles with their own keys; the file of "docs" is served as "team".
    let (team, docs) = (ed(67), ed(68));
    let repo = delegating(
        &[&team, &docs],
        vec![
            drole("team", &[&team], 1, false, &["team/*"]),
            drole("docs", &[&docs], 1, false, &["docs/*"]),
        ],
        vec![
            ("team", targets(1, &[("team/a", b"a")], None), vec![&team]),
            ("docs", targets(1, &[("docs/a", b"b")], None), vec![&docs]),
        ],
    );
    tampered(&repo, |f| {
        let docs_file = f["docs.json"].clone();
        f.insert("team.json".into(), docs_file);
    })
}

// ---------------------------------------------------------------------------------------------
// The table

fn table() -> Vec<Row> {
    macro_rules! row {
        ($item:expr, $id:expr, $case:expr, $expect:expr, $run:expr) => {
            Row {
                item: $item,
                id: $id,
                case: $case,
                expect: $expect,
                run: $run,
            }
        };
    }
    vec![
        // B.1
        row!(
            1,
            "CVE-2020-6174",
            "sigstore v3: one signature dropped, another duplicated",
            Reject(&["3.root.json", "multiple signatures found for key id"]),
            b1_sigstore_v3_duplicated_sig
        ),
        row!(
            1,
            "CVE-2020-6174",
            "control: sigstore v3 untouched",
            Accept("root v3"),
            b1_sigstore_v3_control
        ),
        row!(
            1,
            "CVE-2020-6174",
            "tough duplicate-sigs (same signature twice)",
            Reject(&["multiple signatures found for key id"]),
            b1_tough_duplicate_sigs
        ),
        row!(
            1,
            "CVE-2020-6174",
            "counter itself: two signature objects of one key, threshold 2",
            Reject(&["threshold not met", "1 of 1 keys signed, threshold 2"]),
            b1_counter_counts_a_key_once
        ),
        row!(
            2,
            "CVE-2020-15093",
            "tough duplicate-sig-keys (two distinct valid RSA-PSS sigs of one key)",
            Reject(&["multiple signatures found for key id"]),
            b2_tough_duplicate_sig_keys
        ),
        row!(
            2,
            "CVE-2020-15093",
            "control: tough simple-rsa",
            Accept("valid, root v1"),
            b2_tough_simple_rsa_control
        ),
        row!(
            3,
            "GHSA-3633-5h82-39pq",
            "root lists one key under two key ids, threshold 2, signed once under both",
            Reject(&[
                "root is not signed by a threshold",
                "same key as",
                "counted once"
            ]),
            b3_one_key_two_keyids
        ),
        row!(
            3,
            "GHSA-3633-5h82-39pq",
            "same in a delegation",
            Reject(&["team is not signed by a threshold", "same key as"]),
            b3_one_key_two_keyids_in_delegation
        ),
        row!(
            3,
            "GHSA-3633-5h82-39pq",
            "one P-256 key as PEM and as compressed SEC1 hex, threshold 2",
            Reject(&[
                "root is not signed by a threshold",
                "compressed-hex-a",
                "same key as"
            ]),
            b3_one_ecdsa_key_pem_and_compressed_hex
        ),
        row!(
            3,
            "GHSA-3633-5h82-39pq",
            "control: sigstore v4 -> v5 (one physical key under old and new key ids)",
            Accept("root v5"),
            b3_sigstore_v5_control
        ),
        row!(
            4,
            "GHSA-r7vq-6425-j94w",
            "N+1 threshold 2 met by one new key twice (old threshold met)",
            Reject(&["its own root keys (v2)", "same key as"]),
            b4_new_threshold_by_one_key_twice
        ),
        row!(
            4,
            "GHSA-r7vq-6425-j94w",
            "control: second new key signs too",
            Accept("root v2"),
            b4_control
        ),
        row!(
            5,
            "CVE-2026-23992",
            "sigstore targets: delegation threshold 0, role unsigned",
            Reject(&[
                "targets.json",
                "delegations.roles[0].threshold",
                "threshold must be at least 1, found 0"
            ]),
            b5_delegation_threshold_zero
        ),
        row!(
            5,
            "CVE-2026-23992",
            "sigstore targets: delegation threshold -1",
            Reject(&["threshold must be at least 1, found -1"]),
            b5_delegation_threshold_negative
        ),
        row!(
            5,
            "CVE-2026-23992",
            "root role threshold 0",
            Reject(&["roles.timestamp.threshold", "threshold must be at least 1"]),
            b5_root_threshold_zero
        ),
        row!(
            5,
            "CVE-2026-23992",
            "threshold above number of keys: never met, noted",
            Reject(&["timestamp is not signed by a threshold", "can never be met"]),
            b5_threshold_above_key_count
        ),
        row!(
            5,
            "CVE-2026-23992",
            "control: sigstore HEAD from trusted v15",
            Accept("valid, root v15"),
            b5_sigstore_control
        ),
        row!(
            6,
            "CVE-2020-6173",
            "sigstore v15 with 5000 copies of one invalid signature",
            Reject(&["15.root.json", "multiple signatures found for key id"]),
            b6_v15_with_5000_copies
        ),
        row!(
            6,
            "CVE-2020-6173",
            "sigstore v15 plus 5000 signatures by distinct unknown key ids",
            Accept("5 of 5 keys signed, threshold 3; 5000 signatures by unknown key ids ignored"),
            b6_v15_with_5000_unknown_keyids
        ),
        row!(
            6,
            "CVE-2020-6173",
            "control: sigstore v15 untouched",
            Accept("root v15"),
            b6_control
        ),
        // B.2
        row!(
            7,
            "CVE-2020-15163",
            "each sigstore N+1 blanked: rejected, trust stays N, nothing kept",
            Reject(&[
                "15.root.json",
                "not signed by a threshold",
                "empty signature slot"
            ]),
            b7_failed_root_never_trusted
        ),
        row!(
            7,
            "CVE-2020-15163",
            "control: the real chain 1->15",
            Accept("root v15"),
            b7_control
        ),
        row!(
            8,
            "CVE-2025-2885",
            "(a) sigstore v5 offered as 4.root.json to a v3 client",
            Reject(&[
                "4.root.json",
                "root version 5 offered where version 4 must come next"
            ]),
            b8a_v5_as_4
        ),
        row!(
            8,
            "CVE-2025-2885",
            "control: v3 -> v4 -> v5",
            Accept("root v5"),
            b8a_control
        ),
        row!(
            8,
            "CVE-2025-2885",
            "(b) defunct 2022-10-03 v5 offered after the published v5",
            Reject(&["6.root.json", "root version 5 offered where version 6"]),
            b8b_conflicting_v5_after_v5
        ),
        row!(
            8,
            "CVE-2025-2885",
            "control: defunct v5 is validly signed where v5 belongs",
            Accept("root v5"),
            b8b_conflicting_v5_is_validly_signed
        ),
        row!(
            8,
            "CVE-2025-2885",
            "root version 2^64-1: walk ends, no version after it",
            Accept(
                "valid, root v18446744073709551615, 0 role(s); v2^64-1 offered after itself: Err(\"18446744073709551615.root.json: root version 18446744073709551615 is the largest version"
            ),
            b8_version_at_u64_max
        ),
        row!(
            8,
            "CVE-2025-2885",
            "(c) published v6 offered twice",
            Reject(&["7.root.json", "root version 6 offered where version 7"]),
            b8c_v6_twice
        ),
        row!(
            9,
            "spec 5.3.4",
            "sigstore v5 with only v5-keyid signatures (old threshold unmet)",
            Reject(&[
                "5.root.json",
                "threshold of the trusted root v4",
                "4 signature(s) by key ids the role does not name"
            ]),
            b9_only_new_keyids
        ),
        row!(
            9,
            "spec 5.3.4",
            "sigstore v5 with only v4-keyid signatures (own threshold unmet)",
            Reject(&["5.root.json", "its own root keys (v5)"]),
            b9_only_old_keyids
        ),
        row!(
            9,
            "spec 5.3.4",
            "sigstore v9 with only v9-keyid signatures",
            Reject(&["9.root.json", "the trusted root v8"]),
            b9_v9_only_new_keyids
        ),
        row!(
            9,
            "spec 5.3.4",
            "sigstore v10 with only v9-keyid signatures",
            Reject(&["10.root.json", "its own root keys (v10)"]),
            b9_v10_only_old_keyids
        ),
        row!(
            9,
            "spec 5.3.4",
            "control: sigstore v4 -> v5 untouched",
            Accept("root v5"),
            b3_sigstore_v5_control
        ),
        row!(
            10,
            "spec 5.3.10",
            "sigstore 1->15 at 2026-08-22: intermediates expired",
            Accept("valid, root v15"),
            b10_expired_intermediates_ok
        ),
        row!(
            10,
            "spec 5.3.10",
            "sigstore 1->15 at 2026-12-01: final root expired",
            Reject(&["15.root.json", "final root expired at 2026-11-20T13:58:18Z"]),
            b10_expired_final_root
        ),
        row!(
            10,
            "spec 5.3.10",
            "tough expired-root-json-signature (ignored in tough)",
            Reject(&["final root expired at 1970-03-30"]),
            b10_tough_expired_root
        ),
        row!(
            11,
            "CVE-2022-29173",
            "timestamp version rollback",
            Reject(&["timestamp version 1 is older than trusted version 2"]),
            b11_timestamp_rollback
        ),
        row!(
            11,
            "CVE-2022-29173",
            "timestamp names an older snapshot version",
            Reject(&["timestamp names snapshot version 1, older than trusted version 2"]),
            b11_snapshot_version_rollback
        ),
        row!(
            11,
            "CVE-2022-29173",
            "snapshot lowers targets.json version",
            Reject(&[
                "snapshot.json",
                "targets.json version 1 is older than trusted version 2"
            ]),
            b11_targets_rollback
        ),
        row!(
            11,
            "CVE-2022-29173",
            "targets version differs from snapshot's",
            Reject(&["targets version 1 differs from version 2 in snapshot"]),
            b11_targets_version_not_as_snapshot
        ),
        row!(
            11,
            "CVE-2022-29173",
            "control: all versions move forward",
            Accept("timestamp v3, snapshot v3"),
            b11_control
        ),
        row!(
            12,
            "CVE-2025-2887",
            "new snapshot drops registry.npmjs.org.json",
            Reject(&["registry.npmjs.org.json was listed in the trusted snapshot and is missing"]),
            b12_drop_delegated_role
        ),
        row!(
            12,
            "CVE-2025-2887",
            "new snapshot lowers registry.npmjs.org.json",
            Reject(&["registry.npmjs.org.json version 1 is older than trusted version 2"]),
            b12_lower_delegated_version
        ),
        row!(
            12,
            "CVE-2025-2887",
            "control: delegated version moves forward",
            Accept("snapshot v2"),
            b12_control
        ),
        row!(
            13,
            "CVE-2025-2888",
            "timestamp failing the snapshot-version check is not kept",
            Accept("stayed v2 after the failure; then v4 accepted"),
            b13_failed_timestamp_not_kept
        ),
        row!(
            14,
            "spec 5.3.11",
            "fast-forwarded timestamp (old key) after timestamp key rotation",
            Reject(&[
                "timestamp.json",
                "timestamp is not signed by a threshold of root's timestamp keys"
            ]),
            b14_fast_forward_timestamp_after_rotation
        ),
        row!(
            14,
            "spec 5.3.11",
            "control: legitimate lower timestamp v5 by the new key accepted",
            Accept("valid, root v2"),
            b14_recovery_control
        ),
        row!(
            14,
            "spec 5.3.11",
            "root cannot change under a loaded timestamp",
            Reject(&["root cannot be updated after timestamp was loaded"]),
            b14_no_root_update_after_timestamp
        ),
        row!(
            15,
            "freeze",
            "sigstore HEAD at 2026-08-29: timestamp expired",
            Reject(&[
                "timestamp.json",
                "timestamp expired at 2026-08-28T19:25:56Z"
            ]),
            b15_timestamp_expired
        ),
        row!(
            15,
            "freeze",
            "tough expired-repository",
            Reject(&["timestamp.json", "expired at 1999"]),
            b15_tough_expired_repository
        ),
        row!(
            15,
            "freeze",
            "expires == reference time counts as expired",
            Reject(&["timestamp expired at 2026-01-01T00:00:00Z"]),
            b15_expires_equal_now_is_expired
        ),
        row!(
            15,
            "freeze",
            "control: fresh synthetic repository",
            Accept("valid, root v1"),
            b15_control
        ),
        // B.3
        row!(
            16,
            "tough duplicate-keyid",
            "same key id twice as a JSON member of signed.keys",
            Reject(&["duplicate object member"]),
            b16_tough_duplicate_keyid
        ),
        row!(
            16,
            "tough duplicate-keyid",
            "two \"version\" members inside signed",
            Reject(&["duplicate object member \"version\""]),
            b16_duplicate_member_in_signed
        ),
        row!(
            16,
            "tough duplicate-keyid",
            "control: same file without the duplicate",
            Accept("root v1"),
            b16_control
        ),
        row!(
            17,
            "test_incorrect_metadata_type",
            "sigstore targets.json served as 16.root.json",
            Reject(&["16.root.json", "expected \"root\", found \"targets\""]),
            b17_targets_as_root
        ),
        row!(
            17,
            "test_incorrect_metadata_type",
            "control: its signatures meet v15's root threshold",
            Accept("5 of 5 keys signed, threshold 3"),
            b17_targets_signatures_do_verify_under_root_role
        ),
        row!(
            18,
            "test_keytype_and_scheme",
            "P-384 key declared ecdsa-sha2-nistp256, signed by A, B, C",
            Accept(
                "2 of 3 keys signed, threshold 2 (unusable key: bad public key for scheme \"ecdsa-sha2-nistp256\": not a P-256 SPKI PEM key"
            ),
            b18_p384_declared_p256_with_two_others
        ),
        row!(
            18,
            "test_keytype_and_scheme",
            "same, signed by A and C only",
            Reject(&["threshold", "not a P-256 SPKI PEM key"]),
            b18_p384_declared_p256_below_threshold
        ),
        row!(
            18,
            "test_keytype_and_scheme",
            "P-256 key declared ecdsa-sha2-nistp384, signed by A and C",
            Reject(&["threshold", "not a P-384 SPKI PEM key"]),
            b18_p256_declared_p384
        ),
        row!(
            18,
            "test_keytype_and_scheme",
            "unknown scheme",
            Reject(&[
                "threshold",
                "unsupported signature scheme \"ecdsa-sha2-nistp521\""
            ]),
            b18_unknown_scheme
        ),
        row!(
            18,
            "test_keytype_and_scheme",
            "keytype rsa with scheme ed25519",
            Reject(&[
                "threshold",
                "keytype \"rsa\" does not match scheme \"ed25519\""
            ]),
            b18_rsa_keytype_with_ed25519_scheme
        ),
        row!(
            18,
            "test_keytype_and_scheme",
            "control: Datadog P-384 root, 10 valid signatures",
            Accept("10 of 10 keys signed, threshold 2"),
            b18_datadog_p384_control
        ),
        row!(
            19,
            "test_invalid_sig_in_valid_metadata",
            "sigstore v12-v14 empty slots, v15 one flipped signature",
            Accept("root v15"),
            b19_empty_slots_threshold_met
        ),
        row!(
            19,
            "test_invalid_sig_in_valid_metadata",
            "tuf-on-ci delegated role with an empty slot",
            Accept("delegatedrole has an empty slot: Some(true)"),
            b19_tuf_on_ci_delegated_empty_slot
        ),
        row!(
            19,
            "test_invalid_sig_in_valid_metadata",
            "defunct 2022-10-17 v5: every slot empty",
            Reject(&["5.root.json", "0 of 5 keys signed", "empty signature slot"]),
            b19_defunct_all_empty
        ),
        row!(
            19,
            "test_invalid_sig_in_valid_metadata",
            "tough invalid-root-json-signature",
            Reject(&["invalid signature", "signature does not verify"]),
            b19_tough_invalid_signature
        ),
        row!(
            20,
            "TAP 12",
            "sigstore v11 key id is not its hash: accepted, noted",
            Accept("is not the SHA-256 of its key (accepted as a label)"),
            b20_keyid_not_hash_accepted
        ),
        row!(
            20,
            "TAP 12",
            "python-tuf ed25519_metadata arbitrary key ids",
            Accept("4 key id notes"),
            b20_python_tuf_arbitrary_keyids
        ),
        row!(
            20,
            "TAP 12",
            "key ids Conclave computes = sha256(canonical key incl. custom fields)",
            Accept("key ids are their key's hash"),
            b20_new_keys_get_hash_keyids
        ),
        // B.4
        row!(
            21,
            "CVE-2021-41131",
            "python-tuf fishy_rolenames: \"../a\" only looked up quoted, decoy unread",
            Reject(&["snapshot lists role \"../a\"", "its file is not present"]),
            b21_fishy_rolenames
        ),
        row!(
            21,
            "CVE-2021-41131",
            "control: role file placed under its quoted name verifies",
            Accept("read 1...%2Fa.json"),
            b21_fishy_rolenames_quoted_copy
        ),
        row!(
            21,
            "CVE-2021-41131",
            "role names quoted to one safe file name; reader refuses ../",
            Reject(&["refusing unsafe file name \"../1.a.json\""]),
            b21_names_never_leave_the_folder
        ),
        row!(
            21,
            "CVE-2021-41131",
            "roles \"a/b\" and \"a%2Fb\": each read from its own quoted file",
            Accept("valid, root v1, 5 role(s); found in a%2Fb"),
            b21_percent_in_role_names
        ),
        row!(
            21,
            "CVE-2021-41131",
            "control: tough dubious-role-names verify from quoted files",
            Accept("../../path/like/dubious"),
            b21_tough_dubious_role_names
        ),
        row!(
            22,
            "CVE-2021-41150/CVE-2021-41149",
            "target names matched raw (Conclave writes no targets)",
            Accept(
                "foo/../bar/../baz/../data1.txt -> Some(\"targets\"); data1.txt -> None; ../delegated/foo/../subdir/data3.txt -> None; delegated/subdir/data3.txt -> None"
            ),
            b22_target_names_are_raw_strings
        ),
        row!(
            22,
            "CVE-2021-41150/CVE-2021-41149",
            "tough safe-target-paths verifies",
            Accept("valid, root v1"),
            b22_tough_safe_target_paths_verify
        ),
        row!(
            22,
            "CVE-2021-41150/CVE-2021-41149",
            "../escape.txt, /abs.txt never read",
            Reject(&[
                "refusing unsafe file name \"../escape.txt\"",
                "refusing unsafe file name \"/abs.txt\""
            ]),
            b22_escaping_names_refused
        ),
        row!(
            23,
            "CVE-2026-24137/CVE-2026-24686",
            "link to outside the folder (\"../escaped-repo\")",
            Reject(&["outside the folder"]),
            b23_link_outside_refused
        ),
        row!(
            23,
            "CVE-2026-24137/CVE-2026-24686",
            "control: link inside the folder",
            Accept("read 2 bytes"),
            b23_link_inside_control
        ),
        row!(
            24,
            "CVE-2024-47534",
            "A and C list the target: A wins (pre-order)",
            Accept("found in A (visited targets,A)"),
            b24_preorder_first_match
        ),
        row!(
            24,
            "CVE-2024-47534",
            "only C lists it: visit order targets, A, B, C",
            Accept("found in C (visited targets,A,B,C)"),
            b24_preorder_order
        ),
        row!(
            25,
            "CVE-2025-2886",
            "terminating registry.npmjs.org, evil role after it",
            Accept("not found (visited targets,registry.npmjs.org)"),
            b25_terminating_stops
        ),
        row!(
            25,
            "CVE-2025-2886",
            "control: not terminating, evil role is reached",
            Accept("found in evil"),
            b25_control_not_terminating
        ),
        row!(
            26,
            "GHSA-j8x2-777p-23fc",
            "A->B->A and A->A cycles end",
            Accept("not found (visited targets,A,B); repository walk: valid"),
            b26_cycle_terminates
        ),
        row!(
            26,
            "GHSA-j8x2-777p-23fc",
            "control: target in B found through the cycle",
            Accept("found in B"),
            b26_control_found_in_b
        ),
        row!(
            26,
            "GHSA-j8x2-777p-23fc",
            "delegation chain of 40 roles: max_delegations 32",
            Reject(&["target deep", "max_delegations"]),
            b26_depth_cap
        ),
        row!(
            26,
            "GHSA-j8x2-777p-23fc",
            "control: chain of 10 roles",
            Accept("found in r9"),
            b26_depth_cap_control
        ),
        row!(
            27,
            "GHSA-77hh-43cm-v8j6",
            "names other than bins-0..bins-7 signed by the bin keys",
            Reject(&[
                "\"targets\" does not delegate \"not-a-bin\"",
                "does not delegate \"bins-8\"",
                "does not delegate \"bins-07\"",
                "does not delegate \"bins-a\"",
                "does not delegate \"other\""
            ]),
            b27_names_outside_the_bins
        ),
        row!(
            27,
            "GHSA-77hh-43cm-v8j6",
            "target listed only in a bin that is not sha256(path)'s",
            Accept("not found"),
            b27_target_in_wrong_bin
        ),
        row!(
            27,
            "GHSA-77hh-43cm-v8j6",
            "control: target in its own bin",
            Accept("found in bins-"),
            b27_control_right_bin
        ),
        row!(
            28,
            "test_cached_role_is_verified_against_current_delegator",
            "release verified via parent-a, then reached via parent-b",
            Reject(&["release is not signed by a threshold of the keys parent-b delegates it to"]),
            b28_diamond_reverified
        ),
        row!(
            28,
            "test_cached_role_is_verified_against_current_delegator",
            "repository walk refuses the same diamond",
            Reject(&["release is not signed by a threshold of the keys parent-b delegates it to"]),
            b28_diamond_refused_by_walk
        ),
        row!(
            28,
            "test_cached_role_is_verified_against_current_delegator",
            "control: release signed for both delegators",
            Accept(
                "found in release (visited targets,parent-a,release); found in release (visited targets,parent-b,release); valid"
            ),
            b28_control_signed_by_both
        ),
        row!(
            29,
            "path_hash_prefixes vs paths",
            "both present",
            Reject(&["delegations.roles[0]", "not both"]),
            b29_paths_and_prefixes
        ),
        row!(
            29,
            "path_hash_prefixes vs paths",
            "both absent",
            Reject(&["needs one of paths or path_hash_prefixes"]),
            b29_neither
        ),
        row!(
            29,
            "path_hash_prefixes vs paths",
            "non-string prefix",
            Reject(&["path_hash_prefixes[0]", "expected a string"]),
            b29_non_string_prefix
        ),
        row!(
            29,
            "path_hash_prefixes vs paths",
            "control: paths only",
            Accept("valid"),
            b29_control
        ),
        row!(
            29,
            "path_hash_prefixes vs paths",
            "\"*\" does not cross \"/\", no normalisation; hash prefixes",
            Accept(
                "delegatedrole/x: found in delegatedrole (visited targets,delegatedrole); delegatedrole/a/b: not found (visited targets); ../delegatedrole/x: not found (visited targets); hashed/file: found in hashed (visited targets,hashed); hashed/other: not found"
            ),
            b29_matching
        ),
        // B.5
        row!(
            30,
            "test_snapshot_hash_mismatch",
            "legacy 155.snapshot.json pretty-printed (pinned sha256+sha512+length)",
            Reject(&["155.snapshot.json", "length is"]),
            b30_pretty_printed_snapshot
        ),
        row!(
            30,
            "test_snapshot_hash_mismatch",
            "control: legacy repository at 2024-09-01",
            Accept("valid, root v9"),
            b30_legacy_control
        ),
        row!(
            30,
            "test_snapshot_hash_mismatch",
            "2021 ceremony snapshot, same length, pinned by sha512 only",
            Reject(&["snapshot.json", "sha512 is"]),
            b30_sha512_only_pin
        ),
        row!(
            30,
            "test_snapshot_hash_mismatch",
            "control: 2021 ceremony set (sha512-only pin)",
            Accept("valid, root v1"),
            b30_sha512_control
        ),
        row!(
            30,
            "mix-and-match",
            "lookup after a new snapshot uses the targets it names",
            Accept("found in targets, entry of targets v2"),
            b30_lookup_after_new_snapshot
        ),
        row!(
            30,
            "mix-and-match",
            "targets checked against a snapshot the trusted timestamp no longer names",
            Reject(&[
                "targets.json",
                "snapshot version 2 named by the trusted timestamp"
            ]),
            b30_targets_against_stale_snapshot
        ),
        row!(
            30,
            "mix-and-match",
            "timestamp pins the trusted snapshot version with other bytes",
            Reject(&[
                "targets.json",
                "pins snapshot version 2 with other hashes or length"
            ]),
            b30_same_snapshot_version_other_pin
        ),
        row!(
            30,
            "test_url_and_metadata_version_mismatch",
            "snapshot version differs from timestamp's",
            Reject(&["snapshot version 1 differs from version 2 in timestamp"]),
            b30_snapshot_version_not_as_timestamp
        ),
        row!(
            30,
            "test_targets_hash_mismatch",
            "targets version differs from snapshot's",
            Reject(&["targets version 1 differs from version 2 in snapshot"]),
            b30_targets_version_not_as_snapshot
        ),
        row!(
            31,
            "endless data",
            "file over the folder reader's size limit",
            Reject(&["targets.json", "over the size limit of 16384 bytes"]),
            b31_size_limit
        ),
        row!(
            31,
            "endless data",
            "control: same repository under a larger limit",
            Accept("valid"),
            b31_size_limit_control
        ),
        row!(
            31,
            "endless data",
            "snapshot longer than the length timestamp pins",
            Reject(&["snapshot.json", "expected"]),
            b31_length_pin
        ),
        // B.6
        row!(
            32,
            "tough #229",
            "N+1 cross-signed by N's keys only",
            Reject(&["2.root.json", "its own root keys (v2)"]),
            b32_cross_signed_by_old_only
        ),
        row!(
            32,
            "tough #229",
            "N+1 signed by its new keys only",
            Reject(&["2.root.json", "the trusted root v1"]),
            b32_signed_by_new_only
        ),
        row!(
            32,
            "tough #229",
            "control: both counts reported",
            Accept(
                "previous root: 1 of 1 keys signed, threshold 1; own: 1 of 1 keys signed, threshold 1"
            ),
            b32_both_counts_reported
        ),
        row!(
            32,
            "tough #229",
            "a second signature for a key id replaces, never adds",
            Accept("1 signature(s) after adding twice; reloads with 1"),
            b32_no_second_signature_per_keyid
        ),
        row!(
            33,
            "Notary v1",
            "sibling B signed with a key only A's delegations declare",
            Reject(&["B is not signed by a threshold of the keys targets delegates it to"]),
            b33_sibling_uses_keys_declared_by_a
        ),
        row!(
            33,
            "Notary v1",
            "timestamp signed with a key A's delegations declare under the timestamp key id",
            Reject(&[
                "timestamp is not signed by a threshold of root's timestamp keys",
                "invalid signature"
            ]),
            b33_top_level_uses_keys_declared_by_a
        ),
        row!(
            33,
            "Notary v1",
            "control: B signed with the key targets declares",
            Accept("valid"),
            b33_control
        ),
    ]
}

/// One row of the classic attacks (section A): attack class, source, case, verdict.
struct Classic {
    n: u8,
    class: &'static str,
    source: &'static str,
    case: &'static str,
    expect: Expect,
    run: fn() -> Verdict,
}

/// The classic attack classes, numbered A.1 to A.11.
const CLASSES: [&str; 11] = [
    "arbitrary installation",
    "endless data",
    "extraneous dependencies",
    "fast-forward",
    "indefinite freeze",
    "malicious mirrors",
    "mix-and-match",
    "rollback",
    "slow retrieval",
    "key compromise (thresholds)",
    "wrong software installation",
];

fn classic_table() -> Vec<Classic> {
    macro_rules! row {
        ($n:expr, $source:expr, $case:expr, $expect:expr, $run:expr) => {
            Classic {
                n: $n,
                class: CLASSES[$n - 1],
                source: $source,
                case: $case,
                expect: $expect,
                run: $run,
            }
        };
    }
    const SPEC: &str = "TUF spec 1.5.2";
    vec![
        row!(
            1,
            SPEC,
            "a target's hashes replaced, the targets signature kept",
            Reject(&[
                "targets is not signed by a threshold of the keys root delegates it to",
                "invalid signature"
            ]),
            a1_target_swapped_signature_kept
        ),
        row!(
            1,
            SPEC,
            "a target added, targets signed by a key root does not name",
            Reject(&[
                "targets is not signed by a threshold of the keys root delegates it to",
                "key ids the role does not name"
            ]),
            a1_target_added_signed_by_unknown_key
        ),
        row!(
            1,
            SPEC,
            "control: the release as signed",
            Accept("valid"),
            a_control
        ),
        row!(
            2,
            "CVE-2020-6173",
            "5000 copies of one signature on a root",
            Reject(&["multiple signatures found for key id"]),
            b6_v15_with_5000_copies
        ),
        row!(
            2,
            SPEC,
            "targets.json over the folder reader's size limit",
            Reject(&["over the size limit"]),
            b31_size_limit
        ),
        row!(
            2,
            SPEC,
            "snapshot longer than the length the timestamp pins",
            Reject(&["snapshot.json: length is", "expected"]),
            b31_length_pin
        ),
        row!(
            2,
            SPEC,
            "control: same repository under a larger limit",
            Accept("valid"),
            b31_size_limit_control
        ),
        row!(
            3,
            SPEC,
            "a dependency added to a target's custom field, signature kept",
            Reject(&[
                "targets is not signed by a threshold of the keys root delegates it to",
                "invalid signature"
            ]),
            a3_dependency_added_to_custom
        ),
        row!(
            3,
            SPEC,
            "a role delegated team/* also lists evil-lib.tgz: never found through it",
            Accept("not found"),
            a3_role_lists_a_target_outside_its_paths
        ),
        row!(
            3,
            SPEC,
            "control: team/app.tgz found in team",
            Accept("found in team"),
            a3_control_target_inside_its_paths
        ),
        row!(
            4,
            "spec 5.3.11",
            "timestamp fast-forwarded by a compromised key, then the key rotated",
            Reject(&["timestamp is not signed by a threshold of root's timestamp keys"]),
            b14_fast_forward_timestamp_after_rotation
        ),
        row!(
            4,
            "CVE-2025-2885",
            "root version 2^64-1: no root can follow",
            Accept("v2^64-1 offered after itself: Err"),
            b8_version_at_u64_max
        ),
        row!(
            4,
            "spec 5.3.11",
            "control: after the rotation a lower timestamp version is accepted",
            Accept("valid, root v2"),
            b14_recovery_control
        ),
        row!(
            5,
            SPEC,
            "timestamp expired",
            Reject(&["timestamp.json: timestamp expired at"]),
            b15_timestamp_expired
        ),
        row!(
            5,
            SPEC,
            "snapshot expired",
            Reject(&["snapshot.json: snapshot expired at 2020-01-01T00:00:00Z"]),
            a5_snapshot_expired
        ),
        row!(
            5,
            SPEC,
            "targets expired",
            Reject(&["targets.json: targets expired at 2020-01-01T00:00:00Z"]),
            a5_targets_expired
        ),
        row!(
            5,
            SPEC,
            "delegated role expired",
            Reject(&["team.json: team expired at 2020-01-01T00:00:00Z"]),
            a5_delegated_role_expired
        ),
        row!(
            5,
            SPEC,
            "control: nothing expired",
            Accept("valid"),
            a5_control
        ),
        row!(
            6,
            SPEC,
            "a mirror's root v2 signed by the mirror's own key",
            Reject(&["2.root.json: root is not signed by a threshold of the trusted root v1"]),
            a6_mirror_root_signed_by_its_own_key
        ),
        row!(
            6,
            SPEC,
            "a mirror's timestamp signed by the mirror's own key",
            Reject(&["timestamp is not signed by a threshold of root's timestamp keys"]),
            a6_mirror_metadata_signed_by_its_own_key
        ),
        row!(
            6,
            SPEC,
            "control: root v2 signed by the root key",
            Accept("root v2"),
            a6_control_rotation_by_the_root_keys
        ),
        row!(
            7,
            "test_snapshot_hash_mismatch",
            "snapshot with other bytes than the timestamp pins",
            Reject(&["155.snapshot.json: length is"]),
            b30_pretty_printed_snapshot
        ),
        row!(
            7,
            SPEC,
            "targets checked against a snapshot the timestamp no longer names",
            Reject(&["is not loaded"]),
            b30_targets_against_stale_snapshot
        ),
        row!(
            7,
            SPEC,
            "snapshot version differs from the timestamp's",
            Reject(&["snapshot version 1 differs from version 2 in timestamp"]),
            b30_snapshot_version_not_as_timestamp
        ),
        row!(
            7,
            SPEC,
            "control: lookup after a new snapshot uses the targets it names",
            Accept("entry of targets v2"),
            b30_lookup_after_new_snapshot
        ),
        row!(
            8,
            "CVE-2022-29173",
            "timestamp version lower than trusted",
            Reject(&["timestamp version 1 is older than trusted version 2"]),
            b11_timestamp_rollback
        ),
        row!(
            8,
            "CVE-2022-29173",
            "snapshot lowers targets.json's version",
            Reject(&["targets.json version 1 is older than trusted version 2"]),
            b11_targets_rollback
        ),
        row!(
            8,
            "CVE-2025-2887",
            "snapshot lowers a delegated role's version",
            Reject(&["registry.npmjs.org.json version 1 is older than trusted version 2"]),
            b12_lower_delegated_version
        ),
        row!(
            8,
            "CVE-2025-2885",
            "root v5 offered as 4.root.json",
            Reject(&["root version 5 offered where version 4 must come next"]),
            b8a_v5_as_4
        ),
        row!(
            8,
            "CVE-2022-29173",
            "control: all versions move forward",
            Accept("timestamp v3, snapshot v3"),
            b11_control
        ),
        row!(
            9,
            SPEC,
            "snapshot.json is a named pipe nobody writes (would block forever)",
            Reject(&["snapshot.json is not a regular file"]),
            a9_named_pipe_never_written
        ),
        row!(
            9,
            SPEC,
            "snapshot.json links to a named pipe inside the folder",
            Reject(&["is not a regular file"]),
            a9_link_to_a_named_pipe_inside
        ),
        row!(
            9,
            SPEC,
            "snapshot.json links to /dev/zero (endless)",
            Reject(&["is a link to /dev/zero, outside the folder"]),
            a9_link_to_dev_zero
        ),
        row!(
            9,
            SPEC,
            "control: regular files",
            Accept("valid"),
            a9_control_regular_file
        ),
        row!(
            10,
            SPEC,
            "one of two root keys (threshold 2) signs a new root",
            Reject(&[
                "2.root.json: root is not signed by a threshold of the trusted root v1",
                "1 of 2 keys signed, threshold 2"
            ]),
            a10_one_of_two_root_keys_compromised
        ),
        row!(
            10,
            SPEC,
            "control: both root keys sign",
            Accept("root v2"),
            a10_control_both_root_keys
        ),
        row!(
            10,
            SPEC,
            "online keys (timestamp, snapshot) sign new targets",
            Reject(&["targets is not signed by a threshold of the keys root delegates it to"]),
            a10_online_keys_cannot_sign_targets
        ),
        row!(
            10,
            SPEC,
            "the targets key signs a new root",
            Reject(&["root is not signed by a threshold of the trusted root v1"]),
            a10_targets_key_cannot_rotate_root
        ),
        row!(
            10,
            "GHSA-3633-5h82-39pq",
            "one key under two key ids meets threshold 2",
            Reject(&["same key as", "counted once"]),
            b3_one_key_two_keyids
        ),
        row!(
            11,
            "test_incorrect_metadata_type",
            "targets.json served as the next root",
            Reject(&["$.signed._type: expected \"root\", found \"targets\""]),
            b17_targets_as_root
        ),
        row!(
            11,
            SPEC,
            "docs' file served as team's",
            Reject(&["team is not signed by a threshold of the keys targets delegates it to"]),
            a11_delegated_role_served_for_another
        ),
        row!(
            11,
            SPEC,
            "control: each role's own file",
            Accept("valid"),
            b33_control
        ),
    ]
}

/// Short names of the items of attacks.md section B.
const ITEMS: [&str; 33] = [
    "threshold: one key's signature counted twice",
    "threshold: two signatures of one key",
    "threshold: one key under two key ids",
    "root N+1 threshold met by one key twice",
    "threshold 0 or below",
    "signature flood (denial of service)",
    "failed root update kept",
    "root version skipped or replayed",
    "rotation needs old and new root thresholds",
    "expired intermediate root, expired final root",
    "rollback of timestamp, snapshot, targets",
    "rollback of delegated roles",
    "failed timestamp kept",
    "fast-forward recovery",
    "freeze (expiry)",
    "duplicate JSON members",
    "metadata type confusion",
    "keytype and scheme mismatch",
    "invalid or empty signatures",
    "key id that is not a hash",
    "role names used as paths",
    "role and target names escaping a folder",
    "links out of the folder",
    "delegation search order",
    "terminating delegations",
    "delegation cycles and depth",
    "succinct roles (hash bins)",
    "diamond delegation",
    "paths and path_hash_prefixes",
    "mix-and-match and hash pins",
    "endless data",
    "signing tool skips the root threshold",
    "delegated keys used outside their scope",
];

/// A message as the docs show it: one line, no `|`, temporary folders replaced, cut at 240
/// characters.
fn doc_cell(s: &str) -> String {
    let tmp = format!("{}/.tmp", std::env::temp_dir().display());
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(&tmp) {
        out.push_str(&rest[..i]);
        out.push_str("$TMPDIR/.tmpXXXXXX");
        let after = &rest[i + tmp.len()..];
        let random = after
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .count();
        rest = &after[random..];
    }
    out.push_str(rest);
    let mut out: String = out.replace('|', "\\|").replace('\n', " ");
    if out.chars().count() > 240 {
        out = out.chars().take(240).collect::<String>() + " …";
    }
    out
}

/// The Markdown table docs/security.md carries, from the rows and their results.
fn markdown(classic: &[(&Classic, &Verdict)], historical: &[(&Row, &Verdict)]) -> String {
    let mut md = String::from(
        "| # | attack | source | input | verdict | Conclave's message |\n|---|---|---|---|---|---|\n",
    );
    let mut line = |n: String, attack: &str, source: &str, case: &str, got: &Verdict| {
        let (verdict, msg) = match got {
            Ok(s) => ("accepted", s),
            Err(e) => ("**rejected**", e),
        };
        md.push_str(&format!(
            "| {n} | {} | {} | {} | {verdict} | {} |\n",
            doc_cell(attack),
            doc_cell(source),
            doc_cell(case),
            doc_cell(msg)
        ));
    };
    for (r, got) in classic {
        line(format!("A.{}", r.n), r.class, r.source, r.case, got);
    }
    for (r, got) in historical {
        line(
            format!("B.{}", r.item),
            ITEMS[usize::from(r.item) - 1],
            r.id,
            r.case,
            got,
        );
    }
    md
}

const DOC: &str = "docs/security.md";
const BEGIN: &str = "<!-- BEGIN attack table: generated by tests/attacks.rs -->\n";
const END: &str = "<!-- END attack table -->";

/// The table in docs/security.md must be what the suite produced; `CONCLAVE_BLESS=1` rewrites
/// it.
fn check_doc_table(table: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
    let doc = std::fs::read_to_string(&path).unwrap();
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("{DOC} has no attack table markers");
    };
    let current = &doc[b + BEGIN.len()..e];
    if current == table {
        return;
    }
    if std::env::var_os("CONCLAVE_BLESS").is_some() {
        let new = format!("{}{BEGIN}{table}{}", &doc[..b], &doc[e..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    let first = current
        .lines()
        .zip(table.lines())
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!("doc:   {a}\nsuite: {b}"))
        .unwrap_or_else(|| "the tables differ in length".into());
    panic!(
        "the attack table in {DOC} differs from what the suite produced (regenerate with \
         CONCLAVE_BLESS=1 cargo test --test attacks):\n{first}"
    );
}

#[test]
fn historical_attacks_table() {
    let rows = table();
    let classic = classic_table();
    // Rows are independent: run them on two threads (results kept in table order).
    let runs: Vec<fn() -> Verdict> = classic
        .iter()
        .map(|r| r.run)
        .chain(rows.iter().map(|r| r.run))
        .collect();
    let half = runs.len() / 2;
    let (first, second) = runs.split_at(half);
    let all: Vec<Verdict> = std::thread::scope(|s| {
        let h = s.spawn(|| second.iter().map(|run| run()).collect::<Vec<_>>());
        let mut out: Vec<Verdict> = first.iter().map(|run| run()).collect();
        out.extend(h.join().unwrap());
        out
    });
    let (classic_results, results) = all.split_at(classic.len());
    let mut failures = Vec::new();
    let mut lines = Vec::new();
    for (r, got) in classic.iter().zip(classic_results) {
        let ok = match (&r.expect, got) {
            (Accept(want), Ok(summary)) => summary.contains(want),
            (Reject(wants), Err(error)) => wants.iter().all(|w| error.contains(w)),
            _ => false,
        };
        let shown = match got {
            Ok(s) => format!("accepted: {s}"),
            Err(e) => format!("rejected: {e}"),
        };
        lines.push(format!(
            "{} A.{:<2} {:<22} {} -> {}",
            if ok { "ok  " } else { "FAIL" },
            r.n,
            r.class,
            r.case,
            shown
        ));
        if !ok {
            failures.push(format!(
                "A.{} {} ({}): expected {:?}, got {shown}",
                r.n, r.class, r.case, r.expect
            ));
        }
    }
    let classes: std::collections::BTreeSet<u8> = classic.iter().map(|r| r.n).collect();
    assert_eq!(
        classes,
        (1..=CLASSES.len() as u8).collect(),
        "every classic attack class has a row"
    );
    for n in 1..=CLASSES.len() as u8 {
        let rows_of = || classic.iter().filter(move |r| r.n == n);
        assert!(
            rows_of().any(|r| matches!(r.expect, Accept(_)))
                && rows_of().any(|r| !r.case.starts_with("control")),
            "A.{n} needs an attack row and a control"
        );
    }
    for (r, got) in rows.iter().zip(results) {
        let ok = match (&r.expect, got) {
            (Accept(want), Ok(summary)) => summary.contains(want),
            (Reject(wants), Err(error)) => wants.iter().all(|w| error.contains(w)),
            _ => false,
        };
        let shown = match got {
            Ok(s) => format!("accepted: {s}"),
            Err(e) => format!("rejected: {e}"),
        };
        lines.push(format!(
            "{} B.{:<2} {:<22} {} -> {}",
            if ok { "ok  " } else { "FAIL" },
            r.item,
            r.id,
            r.case,
            shown
        ));
        if !ok {
            failures.push(format!(
                "B.{} {} ({}): expected {:?}, got {shown}",
                r.item, r.id, r.case, r.expect
            ));
        }
    }
    eprintln!("{}", lines.join("\n"));
    let items: std::collections::BTreeSet<u8> = rows.iter().map(|r| r.item).collect();
    assert_eq!(
        items,
        (1..=33).collect(),
        "every item of attacks.md section B has a row"
    );
    for item in 1..=33u8 {
        let has_positive = rows
            .iter()
            .any(|r| r.item == item && matches!(r.expect, Accept(_)));
        assert!(
            has_positive,
            "B.{item} needs a row where the input is accepted (a control)"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let table = markdown(
        &classic.iter().zip(classic_results).collect::<Vec<_>>(),
        &rows.iter().zip(results).collect::<Vec<_>>(),
    );
    check_doc_table(&table);
}
