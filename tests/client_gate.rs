//! The compatibility gate against the real clients: a corpus of metadata mutations, one per rule
//! of `conclave::tuf::compat`, each built into a whole repository (root v1 -> v2, targets with a
//! delegated role, snapshot, timestamp, one target) and given to every client that runs here:
//! python-tuf 7.0.1's ngclient (the venv, `CONCLAVE_PYTHON`), tough 0.24 (dev-dependency),
//! tuf-js 5.0.1 and @sigstore/tuf 4.0.2 with its tuf-js 4.1.0 (tests/js, `make js-clients`).
//! For every case and client, the client refuses the repository exactly when the gate's findings
//! name that client's profile. go-tuf is not run (no Go toolchain here): its profile is taken
//! from its source.
//!
//! The table the test prints (`--nocapture`) is the one in docs/verification.md. A second test
//! runs all eight ceremonies in a row (publish-targets last) and gives the published result, its
//! target files included, to the same clients.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::publish::{
    js_dir, online_key_json, online_keys, online_role, put_manifest, put_target, rehearse, serve,
    signer,
};
use conclave::signer::Signer;
use conclave::signer::software::SoftwareSigner;
use conclave::tuf::canonical::Value;
use conclave::tuf::compat::{Client, Finding, check_root, check_targets, client_list};
use conclave::tuf::edit::{self, NewDelegation, RoleKeys};
use conclave::tuf::key::{Algorithm, Key, KeyId, PublicKey};
use conclave::tuf::metadata::{Expires, Metadata, RoleType, SignedPayload, Targets};
use time::OffsetDateTime;
use time::macros::datetime;

const EXPIRES: OffsetDateTime = datetime!(2035-01-01 0:00 UTC);
const TARGET: &str = "proj/app.txt";
const CONTENT: &[u8] = b"the app\n";

/// How a key the case adds is made.
#[derive(Clone, Copy, Debug)]
enum KeyKind {
    Ed25519,
    /// P-256, public key PEM (what Conclave writes).
    P256,
    /// P-256, public key as hex SEC1 (what some tools write).
    P256Hex,
    P384,
}

/// One mutation of the repository (data: the corpus).
#[derive(Clone, Copy, Debug)]
struct Case {
    name: &'static str,
    /// The rule it exercises (`None`: a control every client accepts).
    rule: Option<&'static str>,
    /// The key root v2 lists for the root role (the only one: it must verify).
    root_key: KeyKind,
    /// Root v2 lists that key under this key id instead of its hash.
    root_keyid: Option<&'static str>,
    /// Root v2 has `consistent_snapshot` (true) or not at all.
    consistent_snapshot: bool,
    /// Root v2's `expires` as written.
    root_expires: Option<&'static str>,
    /// The developer's key the delegation (or the hash bins) uses.
    dev_key: KeyKind,
    /// Delegate to 2 hash bins (TAP 15) instead of the role `proj`.
    hash_bins: bool,
    /// An unknown field in targets' `delegations`.
    delegations_field: bool,
    /// An unknown field in the delegated role `proj`.
    role_field: bool,
    /// An integer above 2^53 in targets (an unknown field).
    big_integer: bool,
}

const BASE: Case = Case {
    name: "control: what Conclave writes (P-256 PEM keys)",
    rule: None,
    root_key: KeyKind::P256,
    root_keyid: None,
    consistent_snapshot: true,
    root_expires: None,
    dev_key: KeyKind::P256,
    hash_bins: false,
    delegations_field: false,
    role_field: false,
    big_integer: false,
};

const CASES: &[Case] = &[
    BASE,
    Case {
        name: "control: Ed25519 keys",
        root_key: KeyKind::Ed25519,
        dev_key: KeyKind::Ed25519,
        ..BASE
    },
    Case {
        name: "root expires with a fraction .5 (tough writes .500)",
        rule: Some("expires"),
        root_expires: Some("2035-01-01T00:00:00.5Z"),
        ..BASE
    },
    Case {
        name: "root key ECDSA P-384",
        rule: Some("key-type"),
        root_key: KeyKind::P384,
        ..BASE
    },
    Case {
        name: "developer key ECDSA P-384",
        rule: Some("key-type"),
        dev_key: KeyKind::P384,
        ..BASE
    },
    Case {
        name: "root key P-256 as hex",
        rule: Some("ecdsa-encoding"),
        root_key: KeyKind::P256Hex,
        ..BASE
    },
    Case {
        name: "developer key P-256 as hex",
        rule: Some("ecdsa-encoding"),
        dev_key: KeyKind::P256Hex,
        ..BASE
    },
    Case {
        name: "root key id not the SHA-256 of the key",
        rule: Some("key-id"),
        root_keyid: Some("c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"),
        ..BASE
    },
    Case {
        name: "root without consistent_snapshot",
        rule: Some("consistent-snapshot"),
        consistent_snapshot: false,
        ..BASE
    },
    Case {
        name: "root expires with an offset",
        rule: Some("expires"),
        root_expires: Some("2035-01-01T01:00:00+01:00"),
        ..BASE
    },
    Case {
        name: "root expires with a fraction .500 (go-tuf writes .5)",
        rule: Some("expires"),
        root_expires: Some("2035-01-01T00:00:00.500Z"),
        ..BASE
    },
    Case {
        name: "hash bins (succinct_roles)",
        rule: Some("succinct-roles"),
        hash_bins: true,
        ..BASE
    },
    Case {
        name: "unknown field in delegations",
        rule: Some("delegation-fields"),
        delegations_field: true,
        ..BASE
    },
    Case {
        name: "unknown field in a delegated role",
        rule: Some("delegation-fields"),
        role_field: true,
        ..BASE
    },
    Case {
        name: "integer above 2^53 in targets",
        rule: Some("big-integer"),
        big_integer: true,
        ..BASE
    },
];

/// The signer for a key kind, and the key object as the case writes it.
fn case_key(kind: KeyKind, seed: u8) -> (SoftwareSigner, Key) {
    let alg = match kind {
        KeyKind::Ed25519 => Algorithm::Ed25519,
        KeyKind::P256 | KeyKind::P256Hex => Algorithm::EcdsaP256,
        KeyKind::P384 => Algorithm::EcdsaP384,
    };
    let s = signer(alg, seed);
    let mut key = s.key().clone();
    if let (KeyKind::P256Hex, Ok(PublicKey::EcdsaP256(vk))) = (kind, key.public_key()) {
        key.public = hex::encode(vk.to_encoded_point(false).as_bytes());
    }
    (s, key)
}

fn sign_as<T: SignedPayload>(md: &mut Metadata<T>, s: &mut SoftwareSigner, id: &KeyId) {
    let sig = s.sign(md.signed_bytes()).expect("software signer signs");
    md.add_signature(id.clone(), &sig);
}

/// A repository built for one case, and the gate's findings on what the ceremony would propose
/// (root v2, targets, the delegated role).
struct Built {
    dir: PathBuf,
    findings: Vec<Finding>,
}

fn build(case: &Case, dir: &Path) -> Built {
    let mut a = signer(Algorithm::Ed25519, 1);
    let mut t = signer(Algorithm::Ed25519, 2);
    let mut online = signer(Algorithm::Ed25519, 3);
    let roles = |root: Key| {
        vec![
            RoleKeys {
                role: RoleType::Root,
                keys: vec![root],
                threshold: 1,
            },
            RoleKeys {
                role: RoleType::Targets,
                keys: vec![t.key().clone()],
                threshold: 1,
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
        ]
    };
    let mut v1 = Metadata::new(edit::new_root(&roles(a.key().clone()), EXPIRES).unwrap());
    conclave::signer::sign_metadata(&mut v1, &mut a).unwrap();

    // v2: the case's root key replaces A (so it must verify), signed by A and by it.
    let (mut r, r_key) = case_key(case.root_key, 11);
    let mut r2 = edit::next_root(v1.signed(), EXPIRES);
    let mut r_id = edit::add_root_key(&mut r2, RoleType::Root, r_key).unwrap();
    edit::remove_root_key(&mut r2, RoleType::Root, &a.key_id()).unwrap();
    if let Some(id) = case.root_keyid {
        let new = KeyId(id.to_string());
        for (kid, _) in r2.keys.iter_mut() {
            if *kid == r_id {
                *kid = new.clone();
            }
        }
        r2.keys.sort_by(|x, y| x.0.cmp(&y.0));
        for (_, role) in r2.roles.iter_mut() {
            for kid in role.keyids.iter_mut() {
                if *kid == r_id {
                    *kid = new.clone();
                }
            }
        }
        r_id = new;
    }
    if !case.consistent_snapshot {
        r2.consistent_snapshot = None;
    }
    if let Some(raw) = case.root_expires {
        r2.common.expires = Expires::parse(raw.to_string(), "expires").unwrap();
    }
    let root_findings = check_root(&r2);
    let mut v2 = Metadata::new(r2);
    conclave::signer::sign_metadata(&mut v2, &mut a).unwrap();
    sign_as(&mut v2, &mut r, &r_id);

    // targets delegates proj/* to the developer's key (or everything to two hash bins).
    let (mut dev, dev_key) = case_key(case.dev_key, 21);
    let dev_id = dev_key.key_id();
    let mut targets = edit::new_targets(EXPIRES);
    edit::set_target(&mut targets, "readme.txt", edit::target_file(b"hi\n", None)).unwrap();
    let mut delegated: Vec<(String, Targets)> = Vec::new();
    let mut listed = edit::new_targets(EXPIRES);
    edit::set_target(&mut listed, TARGET, edit::target_file(CONTENT, None)).unwrap();
    if case.hash_bins {
        edit::set_succinct_delegation(&mut targets, "bin", 1, &[dev_key], 1).unwrap();
        let s = targets
            .delegations
            .as_ref()
            .and_then(|d| d.succinct_roles.clone())
            .unwrap();
        for i in 0..s.bin_count() {
            let name = s.bin_name(i);
            if s.bin_for_target(TARGET) == name {
                delegated.push((name, listed.clone()));
            } else {
                delegated.push((name, edit::new_targets(EXPIRES)));
            }
        }
    } else {
        edit::add_delegation(
            &mut targets,
            &NewDelegation {
                name: "proj".into(),
                keys: vec![dev_key],
                threshold: 1,
                paths: vec!["proj/*".into()],
                terminating: true,
            },
        )
        .unwrap();
        delegated.push(("proj".into(), listed));
    }
    let d = targets.delegations.as_mut().unwrap();
    if case.delegations_field {
        d.unrecognized
            .insert("x-note".into(), Value::String("claimed projects".into()));
    }
    if case.role_field {
        d.roles.as_mut().unwrap()[0]
            .role
            .unrecognized
            .insert("x-owner".into(), Value::String("dev@example.org".into()));
    }
    if case.big_integer {
        targets
            .unrecognized
            .insert("x-serial".into(), Value::Int((1 << 53) + 1));
    }
    let mut findings = root_findings;
    findings.extend(check_targets(&targets));
    for (_, role) in &delegated {
        findings.extend(check_targets(role));
    }
    let mut targets_md = Metadata::new(targets);
    conclave::signer::sign_metadata(&mut targets_md, &mut t).unwrap();

    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("1.root.json".into(), v1.to_file_bytes()),
        ("2.root.json".into(), v2.to_file_bytes()),
    ];
    let mut snapshot_roles = vec![("targets".to_string(), 1)];
    let mut with_plain = |name: &str, bytes: Vec<u8>| {
        files.push((format!("1.{name}.json"), bytes.clone()));
        files.push((format!("{name}.json"), bytes));
    };
    with_plain("targets", targets_md.to_file_bytes());
    for (name, role) in delegated {
        let mut md = Metadata::new(role);
        sign_as(&mut md, &mut dev, &dev_id);
        with_plain(&name, md.to_file_bytes());
        snapshot_roles.push((name, 1));
    }
    let mut snapshot = Metadata::new(edit::new_snapshot(1, EXPIRES, &snapshot_roles));
    conclave::signer::sign_metadata(&mut snapshot, &mut online).unwrap();
    let snapshot_bytes = snapshot.to_file_bytes();
    with_plain("snapshot", snapshot_bytes.clone());
    let mut timestamp = Metadata::new(edit::new_timestamp(1, EXPIRES, 1, &snapshot_bytes));
    conclave::signer::sign_metadata(&mut timestamp, &mut online).unwrap();
    files.push(("timestamp.json".into(), timestamp.to_file_bytes()));

    std::fs::create_dir_all(dir.join("targets/proj")).unwrap();
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    // The target under every name a client may ask for (plain, and consistent-snapshot
    // `HASH.NAME` in its folder).
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(CONTENT));
    std::fs::write(dir.join("targets").join(TARGET), CONTENT).unwrap();
    std::fs::write(dir.join(format!("targets/proj/{digest}.app.txt")), CONTENT).unwrap();
    // tough 0.24 asks for `HASH.proj/app.txt`: the hash before the whole path.
    std::fs::create_dir_all(dir.join(format!("targets/{digest}.proj"))).unwrap();
    std::fs::write(dir.join(format!("targets/{digest}.{TARGET}")), CONTENT).unwrap();
    Built {
        dir: dir.to_path_buf(),
        findings,
    }
}

/// python-tuf's ngclient (tests/python/ngclient_cli.py): init with root v1, download the
/// targets.
fn python_tuf(dir: &Path, targets: &[&str], work: &Path) -> Result<(), String> {
    let meta = work.join("py-metadata");
    let root = dir.join("1.root.json");
    let init = common::run_python(
        "ngclient_cli.py",
        &[
            "--metadata-dir",
            meta.to_str().unwrap(),
            "init",
            root.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(init.code(), 0, "{init:?}");
    let base = serve(dir.to_path_buf());
    let (metadata_url, target_url) = (format!("{base}/"), format!("{base}/targets/"));
    let tdir = work.join("py-targets");
    let mut args = vec![
        "--metadata-dir",
        meta.to_str().unwrap(),
        "--metadata-url",
        &metadata_url,
        "--target-base-url",
        &target_url,
        "--target-dir",
        tdir.to_str().unwrap(),
    ];
    for t in targets {
        args.extend(["--target-name", t]);
    }
    args.push("download");
    let run = common::run_python("ngclient_cli.py", &args, Duration::from_secs(120));
    match run.code() {
        0 => Ok(()),
        1 => Err(run.stderr.trim().to_string()),
        _ => panic!("python-tuf client did not run: {run:?}"),
    }
}

/// tough 0.24 from root v1 over file:// URLs, then the targets (`(path, content)`).
fn tough(dir: &Path, targets: &[(&str, &[u8])]) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use futures_util::TryStreamExt;
        let root = std::fs::read(dir.join("1.root.json")).unwrap();
        let m = url::Url::from_directory_path(dir).unwrap();
        let t = url::Url::from_directory_path(dir.join("targets")).unwrap();
        let repo = tough::RepositoryLoader::new(&root, m, t)
            .load()
            .await
            .map_err(|e| e.to_string())?;
        for (target, content) in targets {
            let name = tough::TargetName::new(*target).map_err(|e| e.to_string())?;
            let stream = repo
                .read_target(&name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{target} not found"))?;
            let bytes: Vec<u8> = stream
                .map_ok(|b| b.to_vec())
                .try_concat()
                .await
                .map_err(|e| e.to_string())?;
            if bytes != *content {
                return Err(format!("{target}: wrong content"));
            }
        }
        Ok(())
    })
}

/// tuf-js 5.0.1 or @sigstore/tuf 4.0.2 (tests/js/client.js).
fn js(client: &str, dir: &Path, targets: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("node");
    cmd.arg(js_dir().join("client.js"))
        .arg(client)
        .arg(dir)
        .arg(dir.join("1.root.json"))
        .args(targets);
    let run = common::run_with_timeout(&mut cmd, b"", Duration::from_secs(120));
    let out: serde_json::Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|_| panic!("{client} did not run: {run:?}"));
    if out["ok"] == true {
        Ok(())
    } else {
        Err(out["error"].as_str().unwrap_or("").to_string())
    }
}

/// The clients run here, each with the profile that speaks for it.
const RUN: [(&str, Client); 4] = [
    ("python-tuf 7.0.1", Client::PythonTuf),
    ("tough 0.24", Client::Tough),
    ("tuf-js 5.0.1", Client::TufJs),
    ("@sigstore/tuf 4.0.2 (tuf-js 4.1.0)", Client::TufJs),
];

#[test]
fn the_gate_says_what_every_real_client_does() {
    assert!(
        js_dir().join("node_modules/tuf-js/package.json").exists()
            && js_dir()
                .join("node_modules/@sigstore/tuf/package.json")
                .exists(),
        "the npm clients are missing: run `make js-clients`"
    );
    let mut table = String::from(
        "| case | rule | gate: rejected by | python-tuf 7.0.1 | tough 0.24 | tuf-js 5.0.1 | @sigstore/tuf 4.0.2 |\n|---|---|---|---|---|---|---|\n",
    );
    let mut disagreements = Vec::new();
    let mut covered = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        let built = build(case, &repo);
        let gate: Vec<Client> = {
            let mut v: Vec<Client> = built
                .findings
                .iter()
                .flat_map(|f| f.clients.clone())
                .collect();
            v.sort();
            v.dedup();
            v
        };
        if let Some(rule) = case.rule {
            assert!(
                built.findings.iter().any(|f| f.rule == rule),
                "case {i} ({}) does not exercise rule {rule}: {:?}",
                case.name,
                built.findings
            );
            covered.push(rule);
        }
        let mut results: BTreeMap<&str, Result<(), String>> = BTreeMap::new();
        results.insert(RUN[0].0, python_tuf(&built.dir, &[TARGET], tmp.path()));
        results.insert(RUN[1].0, tough(&built.dir, &[(TARGET, CONTENT)]));
        results.insert(RUN[2].0, js("tuf-js", &built.dir, &[TARGET]));
        results.insert(RUN[3].0, js("sigstore-tuf", &built.dir, &[TARGET]));
        let mut row = format!(
            "| {} | {} | {} |",
            case.name,
            case.rule.unwrap_or("-"),
            if gate.is_empty() {
                "nobody".to_string()
            } else {
                client_list(&gate)
            }
        );
        for (label, profile) in RUN {
            let result = &results[label];
            let predicted = gate.contains(&profile);
            if predicted == result.is_ok() {
                disagreements.push(format!(
                    "{}: {label} {} but the gate says it {}",
                    case.name,
                    match result {
                        Ok(()) => "accepts".to_string(),
                        Err(e) => format!("rejects ({e})"),
                    },
                    if predicted { "rejects" } else { "accepts" }
                ));
            }
            row.push_str(if result.is_ok() {
                " accepts |"
            } else {
                " **rejects** |"
            });
        }
        table.push_str(&row);
        table.push('\n');
        for (label, r) in &results {
            if let Err(e) = r {
                println!(
                    "  {}: {label}: {}",
                    case.name,
                    e.lines().next().unwrap_or("")
                );
            }
        }
    }
    println!("{table}");
    assert!(
        disagreements.is_empty(),
        "the gate and the clients disagree:\n{}",
        disagreements.join("\n")
    );
    for rule in [
        "key-type",
        "ecdsa-encoding",
        "key-id",
        "consistent-snapshot",
        "expires",
        "succinct-roles",
        "delegation-fields",
        "big-integer",
    ] {
        assert!(covered.contains(&rule), "no case exercises rule {rule}");
    }
}

fn latest_version(dir: &Path, role: &str) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(&format!(".{role}.json"))?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap()
}

/// publish-targets' file in the chain (with a `custom` field) and the role it delegates to an
/// online key, with the file that role lists.
const PUBLISHED: &str = "config/service.json";
const PUBLISHED_CONTENT: &[u8] = b"{\"service\": \"https://service.example.org\"}\n";
const ONLINE_ROLE: &str = "feeds";
const ONLINE_TARGET: &str = "feeds/latest.json";
const ONLINE_CONTENT: &[u8] = b"{\"feed\": 1}\n";
const ONLINE_URI: &str = "awskms:arn:aws:kms:eu-west-1:111122223333:key/feeds";

/// The bytes of a target the newest targets lists, from the export: publish-targets lays its
/// files out under `targets/` by their consistent-snapshot name (`DIR/HASH.NAME`); the other
/// ceremonies' targets (the in-toto layout) are top-level files. Found by length and hashes.
fn exported_target(
    export: &Path,
    path: &str,
    entry: &conclave::tuf::metadata::TargetFile,
) -> Vec<u8> {
    let ok = |b: &[u8]| {
        b.len() as u64 == entry.length
            && conclave::tuf::verify::check_hashes(path, &entry.hashes, b).is_ok()
    };
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    if let Some((_, sha)) = entry.hashes.iter().find(|(alg, _)| alg == "sha256") {
        let file = export
            .join("targets")
            .join(parent)
            .join(format!("{sha}.{name}"));
        if let Ok(b) = std::fs::read(&file) {
            assert!(ok(&b), "{}: wrong length or hash", file.display());
            return b;
        }
    }
    std::fs::read_dir(export)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| std::fs::read(p).unwrap())
        .find(|b| ok(b))
        .unwrap_or_else(|| panic!("{path} is not among the exported files"))
}

/// All eight ceremonies in a row on practice tokens (`conclave rehearse --headless`), the last
/// one publish-targets (a file with `custom`, and a role delegated to an online key), then the
/// repository a registry publishes from their exports — every root version, the newest targets,
/// the target files from the export, the claimed project's role signed by its developer, the
/// online role signed by its online key, snapshot and timestamp signed by the online keys the
/// ceremonies imported (test keys here) — served on 127.0.0.1: every client walks from root v1
/// to the newest root and downloads every target, each verified by its length and hashes.
#[test]
fn eight_ceremonies_then_every_client_walks_from_root_v1_and_downloads_every_target() {
    assert!(
        js_dir().join("node_modules/tuf-js/package.json").exists(),
        "the npm clients are missing: run `make js-clients`"
    );
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(ws.join("input/requests")).unwrap();
    let (s1, t1) = (
        signer(Algorithm::Ed25519, 31),
        signer(Algorithm::Ed25519, 32),
    );
    let (mut s2, mut t2) = (
        signer(Algorithm::Ed25519, 33),
        signer(Algorithm::Ed25519, 34),
    );
    std::fs::write(ws.join("input/online-keys.json"), online_keys(&s1, &t1)).unwrap();
    let mut dev = signer(Algorithm::EcdsaP256, 41);
    let mut feeds = signer(Algorithm::EcdsaP256, 42);
    std::fs::write(
        ws.join("input/requests/proj.json"),
        format!(
            "{{\"_type\": \"conclave-key-request\", \"project\": \"proj\", \"paths\": [\"proj/*\"], \"threshold\": 1, \"keys\": [{}]}}",
            dev.key().to_value().to_pretty_json()
        ),
    )
    .unwrap();
    put_manifest(
        &ws,
        &format!(
            r#"{{"_type": "conclave-publish-targets",
  "targets": [{{"path": "{PUBLISHED}", "action": "add", "custom": {{"x-service": {{"status": "Active"}}}}}}],
  "delegation": {{"name": "{ONLINE_ROLE}", "paths": ["{ONLINE_ROLE}/*"], "terminating": true, "threshold": 1, "keys": [{}]}}}}"#,
            online_key_json(&feeds, ONLINE_URI)
        ),
        &[(PUBLISHED, PUBLISHED_CONTENT)],
    );
    let export = ws.join("export");
    for script in [
        "bootstrap-root",
        "refresh-expiry",
        "rotate-root-keys",
        "rotate-online-keys",
        "rotate-targets-keys",
        "delegate-claimed-projects",
        "sign-intoto-layout",
        "publish-targets",
    ] {
        if script == "rotate-online-keys" {
            let next = latest_version(&export, "root") + 1;
            std::fs::write(
                ws.join(format!("input/online-keys-for-root-v{next}.json")),
                online_keys(&s2, &t2),
            )
            .unwrap();
        }
        let run = rehearse(&ws, script);
        assert_eq!(run.code(), 0, "{script}: {run:?}");
    }

    // What the registry publishes.
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("targets")).unwrap();
    let newest_root = latest_version(&export, "root");
    for v in 1..=newest_root {
        std::fs::copy(
            export.join(format!("{v}.root.json")),
            repo.join(format!("{v}.root.json")),
        )
        .unwrap();
    }
    let tv = latest_version(&export, "targets");
    let targets_bytes = std::fs::read(export.join(format!("{tv}.targets.json"))).unwrap();
    std::fs::write(repo.join(format!("{tv}.targets.json")), &targets_bytes).unwrap();
    std::fs::write(repo.join("targets.json"), &targets_bytes).unwrap();
    let targets_md = Metadata::<Targets>::from_bytes(&targets_bytes).unwrap();
    let mut contents: Vec<(String, Vec<u8>)> = Vec::new();
    for (path, entry) in targets_md.signed().target_files() {
        let entry = entry.unwrap();
        contents.push((path.clone(), exported_target(&export, path, &entry)));
    }
    for want in ["in-toto/root.layout", PUBLISHED] {
        assert!(
            contents.iter().any(|(p, _)| p == want),
            "{want}: {:?}",
            contents.iter().map(|(p, _)| p).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        contents.iter().find(|(p, _)| p == PUBLISHED).unwrap().1,
        PUBLISHED_CONTENT
    );
    // The claimed project's first targets, signed by its developer.
    let mut proj = edit::new_targets(EXPIRES);
    edit::set_target(&mut proj, TARGET, edit::target_file(CONTENT, None)).unwrap();
    let mut proj = Metadata::new(proj);
    conclave::signer::sign_metadata(&mut proj, &mut dev).unwrap();
    std::fs::write(repo.join("1.proj.json"), proj.to_file_bytes()).unwrap();
    contents.push((TARGET.to_string(), CONTENT.to_vec()));
    // The online role's first version, signed by its online key.
    let feeds_role = online_role(
        targets_md.signed(),
        ONLINE_ROLE,
        &mut feeds,
        &[(ONLINE_TARGET, ONLINE_CONTENT)],
        EXPIRES,
    );
    std::fs::write(repo.join(format!("1.{ONLINE_ROLE}.json")), feeds_role).unwrap();
    contents.push((ONLINE_TARGET.to_string(), ONLINE_CONTENT.to_vec()));
    for (path, bytes) in &contents {
        put_target(&repo, path, bytes);
    }
    // Snapshot and timestamp by the online keys in force (rotated to s2/t2 by the ceremony).
    let mut snapshot = Metadata::new(edit::new_snapshot(
        1,
        EXPIRES,
        &[
            ("targets".to_string(), tv),
            ("proj".to_string(), 1),
            (ONLINE_ROLE.to_string(), 1),
        ],
    ));
    conclave::signer::sign_metadata(&mut snapshot, &mut s2).unwrap();
    let snapshot_bytes = snapshot.to_file_bytes();
    std::fs::write(repo.join("1.snapshot.json"), &snapshot_bytes).unwrap();
    let mut timestamp = Metadata::new(edit::new_timestamp(1, EXPIRES, 1, &snapshot_bytes));
    conclave::signer::sign_metadata(&mut timestamp, &mut t2).unwrap();
    std::fs::write(repo.join("timestamp.json"), timestamp.to_file_bytes()).unwrap();

    let names: Vec<&str> = contents.iter().map(|(p, _)| p.as_str()).collect();
    let with_bytes: Vec<(&str, &[u8])> = contents
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    let work = tmp.path().join("py");
    let results = [
        ("python-tuf 7.0.1", python_tuf(&repo, &names, &work)),
        ("tough 0.24", tough(&repo, &with_bytes)),
        ("tuf-js 5.0.1", js("tuf-js", &repo, &names)),
        (
            "@sigstore/tuf 4.0.2 (tuf-js 4.1.0)",
            js("sigstore-tuf", &repo, &names),
        ),
    ];
    println!(
        "root v1 -> v{newest_root}, targets v{tv}, targets {names:?}: {:?}",
        results
            .iter()
            .map(|(c, r)| format!("{c}: {}", if r.is_ok() { "ok" } else { "refused" }))
            .collect::<Vec<_>>()
    );
    for (client, r) in results {
        assert!(
            r.is_ok(),
            "{client} refused the eight-ceremony chain: {r:?}"
        );
    }
    assert_eq!(newest_root, 5);
}
