//! Signing across sites (issue 5): one root signed on three "appliances" (three workspaces, each
//! with its own SoftHSM2 token and `softhsm2.conf`), the signatures carried back as bundles, one
//! by animated QR code with frames lost and two by folder, merged with `conclave bundle merge`,
//! and the result accepted by `conclave verify` and by python-tuf. Then what merge refuses:
//! a bundle for other content, an unknown key, a duplicate key, a tampered signature.
//!
//! Needs the Debian package softhsm2 (`make deb-deps`) and python-tuf from the venv (`make venv`
//! or `CONCLAVE_PYTHON`). QR frames are read back by `conclave qr decode`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Run, run_with_timeout, verify_repo};
use conclave::signer::Signer;
use conclave::signer::software::SoftwareSigner;
use conclave::transcript::display::hex_groups;
use conclave::transport::bundle::{Bundle, ONE_FRAME_FRAGMENT_SIZE};
use conclave::transport::qr::{Animation, EncodeOptions};
use conclave::transport::usb::{
    ExportFile, ExportOptions, FileKind, StdFs, export_files, import_dir,
};
use conclave::tuf::canonical::Value;
use conclave::tuf::edit::{RoleKeys, new_root};
use conclave::tuf::key::{Algorithm, Key};
use conclave::tuf::metadata::{AnyMetadata, Metadata, RoleType, Root, key_from_value};
use sha2::{Digest, Sha256};
use time::macros::datetime;

const BIN: &str = env!("CARGO_BIN_EXE_conclave");
const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TIMEOUT: Duration = Duration::from_secs(60);

/// One appliance: a workspace with one keyholder's practice token.
struct Site {
    dir: PathBuf,
    conf: PathBuf,
    keyholder: String,
    pin: String,
    serial: String,
    key: Key,
}

fn conclave(args: &[&str], stdin: &str, conf: Option<&Path>) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("SOFTHSM2_CONF");
    if let Some(c) = conf {
        cmd.env("SOFTHSM2_CONF", c);
    }
    run_with_timeout(&mut cmd, stdin.as_bytes(), TIMEOUT)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

impl Site {
    /// A workspace with a practice token for `keyholder` (no key yet), then a key of `key_type`
    /// generated with `conclave token keygen --json`.
    fn new(base: &Path, keyholder: &str, key_type: &str) -> Site {
        assert!(
            Path::new(SOFTHSM).is_file(),
            "{SOFTHSM} missing: install the Debian package softhsm2 (make deb-deps)"
        );
        let dir = base.join(format!("site-{keyholder}"));
        std::fs::create_dir_all(&dir).unwrap();
        let practice = dir.join("practice");
        let run = conclave(
            &[
                "token",
                "init-practice",
                "--json",
                "--module",
                SOFTHSM,
                "--dir",
                s(&practice),
                "--keyholders",
                keyholder,
                "--type",
                "none",
            ],
            "",
            None,
        );
        assert_eq!(run.code(), 0, "init-practice: {run:?}");
        let v = run.json();
        let conf = PathBuf::from(v["conf"].as_str().unwrap());
        let tok = &v["tokens"][0];
        let pin = tok["pin"].as_str().unwrap().to_string();
        let serial = tok["serial"].as_str().unwrap().to_string();
        let run = conclave(
            &[
                "token",
                "keygen",
                "--json",
                "--module",
                SOFTHSM,
                "--token",
                keyholder,
                "--type",
                key_type,
                "--label",
                keyholder,
                "--pin-stdin",
            ],
            &format!("{pin}\n"),
            Some(&conf),
        );
        assert_eq!(run.code(), 0, "keygen: {run:?}");
        let v = run.json();
        let text = serde_json::to_string(&v["key"]).unwrap();
        let key = key_from_value(Value::parse(text.as_bytes()).unwrap(), "$").unwrap();
        assert_eq!(key.key_id().0, v["keyid"].as_str().unwrap());
        Site {
            dir,
            conf,
            keyholder: keyholder.to_string(),
            pin,
            serial,
            key,
        }
    }

    /// `conclave bundle export` at this site.
    fn export(&self, metadata: &Path, out: &Path) -> Run {
        conclave(
            &[
                "bundle",
                "export",
                "--module",
                SOFTHSM,
                "--token",
                &self.keyholder,
                "--key",
                &self.keyholder,
                "--metadata",
                s(metadata),
                "--out",
                s(out),
                "--pin-stdin",
                "--keyholder",
                &self.keyholder,
            ],
            &format!("{}\n", self.pin),
            Some(&self.conf),
        )
    }
}

fn root_v1(root_keys: &[Key], threshold: u64, expires: time::OffsetDateTime) -> Metadata<Root> {
    let online = vec![root_keys[0].clone()];
    let mut roles = vec![RoleKeys {
        role: RoleType::Root,
        keys: root_keys.to_vec(),
        threshold,
    }];
    for role in [RoleType::Targets, RoleType::Snapshot, RoleType::Timestamp] {
        roles.push(RoleKeys {
            role,
            keys: online.clone(),
            threshold: 1,
        });
    }
    Metadata::new(new_root(&roles, expires).unwrap())
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn merge(metadata: &Path, out: &Path, bundles: &[&Path]) -> Run {
    let mut args = vec![
        "bundle",
        "merge",
        "--metadata",
        s(metadata),
        "--out",
        s(out),
    ];
    args.extend(bundles.iter().map(|b| s(b)));
    conclave(&args, "", None)
}

#[test]
fn one_root_signed_at_three_sites_carried_by_qr_and_folder_merged_and_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let sites = [
        Site::new(base, "alice", "ed25519"),
        Site::new(base, "bob", "ecdsa-p256"),
        Site::new(base, "carol", "ecdsa-p384"),
    ];
    // Each appliance has its own token store: no token is visible from another site.
    for (i, site) in sites.iter().enumerate() {
        let other = &sites[(i + 1) % 3];
        let run = conclave(
            &["token", "list", "--json", "--module", SOFTHSM],
            "",
            Some(&site.conf),
        );
        assert_eq!(run.code(), 0, "{run:?}");
        let labels: Vec<String> = run.json()["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["label"].as_str().map(str::to_string))
            .collect();
        assert!(labels.contains(&site.keyholder), "{labels:?}");
        assert!(!labels.contains(&other.keyholder), "{labels:?}");
    }

    // The coordinating appliance builds root v1 naming the three keys, threshold 3 of 3 so
    // that every bundle must arrive for the root to verify.
    let coord = base.join("coordinator");
    std::fs::create_dir_all(&coord).unwrap();
    let keys: Vec<Key> = sites.iter().map(|s| s.key.clone()).collect();
    let md = root_v1(&keys, 3, datetime!(2036-01-01 0:00 UTC));
    let unsigned = md.to_file_bytes();
    let root_file = coord.join("root.json");
    std::fs::write(&root_file, &unsigned).unwrap();
    let signed_digest = sha256_hex(md.signed_bytes());

    // Each site receives the same file and exports a bundle.
    let mut bundle_files = Vec::new();
    for site in &sites {
        let copy = site.dir.join("root.json");
        std::fs::write(&copy, &unsigned).unwrap();
        let out = site.dir.join(format!("{}.bundle.json", site.keyholder));
        let run = site.export(&copy, &out);
        assert_eq!(
            run.code(),
            0,
            "bundle export at {}: {run:?}",
            site.keyholder
        );
        let bytes = std::fs::read(&out).unwrap();
        // The digests people compare, in hex groups.
        assert!(
            run.stdout.contains(&format!(
                "bundle file SHA-256   {}",
                hex_groups(&Sha256::digest(&bytes))
            )),
            "{run:?}"
        );
        assert!(
            run.stdout.contains(&format!(
                "signed bytes SHA-256  {}",
                hex_groups(&hex::decode(&signed_digest).unwrap())
            )),
            "{run:?}"
        );
        assert!(!run.stdout.contains(&site.pin) && !run.stderr.contains(&site.pin));
        // Real token signatures and serials: one QR frame at the one-frame fragment size.
        let one_frame = Animation::new(
            &bytes,
            &EncodeOptions {
                fragment_size: ONE_FRAME_FRAGMENT_SIZE,
                ..EncodeOptions::default()
            },
        )
        .unwrap();
        assert_eq!(one_frame.fragment_count(), 1, "{} bytes", bytes.len());
        let b = Bundle::from_bytes("b", &bytes).unwrap();
        assert_eq!(b.role, "root");
        assert_eq!(b.version, 1);
        assert_eq!(b.signed_sha256, signed_digest);
        assert_eq!(b.keyid, site.key.key_id());
        assert_eq!(b.token_serial.as_deref(), Some(site.serial.as_str()));
        let t =
            time::OffsetDateTime::parse(&b.time, &time::format_description::well_known::Rfc3339)
                .unwrap();
        let age = time::OffsetDateTime::now_utc() - t;
        assert!(age.whole_seconds().abs() < 300, "bundle time {}", b.time);
        // The site's copy of the metadata is untouched.
        assert_eq!(std::fs::read(&copy).unwrap(), unsigned);
        bundle_files.push(out);
    }

    // Bundle A (alice) travels as QR frames; four of twelve frames are lost on the way.
    let frames = base.join("frames-alice");
    let run = conclave(
        &[
            "qr",
            "encode",
            s(&bundle_files[0]),
            "--png",
            s(&frames),
            "--frames",
            "12",
        ],
        "",
        None,
    );
    assert_eq!(run.code(), 0, "qr encode: {run:?}");
    for lost in [1, 4, 7, 10] {
        std::fs::remove_file(frames.join(format!("frame-{lost:03}.png"))).unwrap();
    }
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(&frames)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pngs.sort();
    assert_eq!(pngs.len(), 8);
    let received = coord.join("from-qr");
    std::fs::create_dir_all(&received).unwrap();
    let a_received = received.join("alice.bundle.json");
    let mut args = vec!["qr", "decode", "--out", s(&a_received)];
    args.extend(pngs.iter().rev().map(|p| s(p)));
    let run = conclave(&args, "", None);
    assert_eq!(run.code(), 0, "qr decode: {run:?}");
    assert_eq!(
        std::fs::read(&a_received).unwrap(),
        std::fs::read(&bundle_files[0]).unwrap()
    );

    // Bundles B and C travel by folder (each keyholder's USB stick): atomic export with
    // read-back at the site, import listing at the coordinator, recognised as bundles.
    let mut carried = Vec::new();
    for f in &bundle_files[1..] {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        let stick = base.join(format!("stick-{}", name.trim_end_matches(".bundle.json")));
        std::fs::create_dir_all(&stick).unwrap();
        export_files(
            &StdFs,
            &stick,
            &[ExportFile {
                name: name.clone(),
                data: std::fs::read(f).unwrap(),
            }],
            ExportOptions::default(),
        )
        .unwrap();
        let report = import_dir(&stick, 1 << 20).unwrap();
        let found: Vec<&str> = report
            .files
            .iter()
            .filter(|f| matches!(f.kind, FileKind::SignatureBundle { .. }))
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(found, [name.as_str()], "{report:?}");
        assert!(
            report.sums.as_ref().is_some_and(|c| c.all_ok()),
            "{report:?}"
        );
        carried.push(stick.join(&name));
    }
    let (b_file, c_file) = (carried[0].clone(), carried[1].clone());

    // Two of three is not enough: merged, but the threshold is not met and verify refuses.
    let partial = coord.join("partial.root.json");
    let run = merge(&root_file, &partial, &[&a_received, &b_file]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stdout
            .contains("signatures counted: 2 of threshold 3 (not met yet)"),
        "{run:?}"
    );

    // All three: the threshold is met.
    let repo = coord.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let signed = repo.join("1.root.json");
    let run = merge(&root_file, &signed, &[&a_received, &b_file, &c_file]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stdout
            .contains("signatures counted: 3 of threshold 3 (met)"),
        "{run:?}"
    );
    assert_eq!(
        std::fs::read(&root_file).unwrap(),
        unsigned,
        "input untouched"
    );
    let merged = AnyMetadata::from_bytes(&std::fs::read(&signed).unwrap()).unwrap();
    assert_eq!(sha256_hex(merged.signed_bytes()), signed_digest);
    assert_eq!(merged.signatures().len(), 3);

    // conclave verify: root v1 as its own trust anchor (a threshold of its own keys).
    let run = conclave(
        &[
            "verify",
            "--trusted-root",
            s(&signed),
            "--repo",
            s(&repo),
            "--at",
            "2030-01-01T00:00:00Z",
        ],
        "",
        None,
    );
    assert_eq!(run.code(), 0, "conclave verify: {run:?}");
    // ... and the partial one is refused.
    let partial_repo = coord.join("partial-repo");
    std::fs::create_dir_all(&partial_repo).unwrap();
    std::fs::copy(&partial, partial_repo.join("1.root.json")).unwrap();
    let run = conclave(
        &[
            "verify",
            "--trusted-root",
            s(&partial),
            "--repo",
            s(&partial_repo),
            "--at",
            "2030-01-01T00:00:00Z",
        ],
        "",
        None,
    );
    assert_eq!(run.code(), 1, "a 2-of-3 root must not verify: {run:?}");

    // python-tuf: the root chain, and the signatures counted one by one.
    let run = verify_repo(
        &repo,
        &[
            "--roots-only",
            "--trusted-root",
            s(&signed),
            "--at",
            common::AT,
        ],
    );
    assert_eq!(run.code(), 0, "python-tuf verify_repo.py: {run:?}");
    let script = "import sys\n\
from tuf.api.metadata import Metadata, Root\n\
md = Metadata[Root].from_file(sys.argv[1])\n\
r = md.signed.get_verification_result(Root.type, md.signed_bytes, md.signatures)\n\
md.signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)\n\
print('signed', len(r.signed), 'unsigned', len(r.unsigned), 'threshold', r.threshold)\n";
    let mut cmd = Command::new(common::python());
    cmd.args(["-c", script]).arg(&signed);
    let run = run_with_timeout(&mut cmd, b"", TIMEOUT);
    assert_eq!(run.code(), 0, "python-tuf rejects the merged root: {run:?}");
    assert!(
        run.stdout.contains("signed 3 unsigned 0 threshold 3"),
        "{run:?}"
    );
    let mut cmd = Command::new(common::python());
    cmd.args(["-c", script]).arg(&partial);
    let run = run_with_timeout(&mut cmd, b"", TIMEOUT);
    assert_ne!(run.code(), 0, "python-tuf must reject 2 of 3: {run:?}");

    // What merge refuses. Every case: exit 1, the file and the reason named, nothing written.
    let refused = coord.join("refused");
    std::fs::create_dir_all(&refused).unwrap();

    // (a) A bundle for other content: bob signs a root that differs (expiry) from root.json.
    let other_md = root_v1(&keys, 3, datetime!(2035-01-01 0:00 UTC));
    let other_file = sites[1].dir.join("other-root.json");
    std::fs::write(&other_file, other_md.to_file_bytes()).unwrap();
    let other_bundle = sites[1].dir.join("bob-other.bundle.json");
    let run = sites[1].export(&other_file, &other_bundle);
    assert_eq!(run.code(), 0, "{run:?}");

    // (b) An unknown key: a key no role of root.json names signs the right bytes.
    let mut stranger = SoftwareSigner::from_seed(Algorithm::Ed25519, &[42; 32]).unwrap();
    let any = AnyMetadata::Root(md.clone());
    let sig = stranger.sign(md.signed_bytes()).unwrap();
    let unknown = Bundle::new(
        &any,
        stranger.key_id(),
        &sig,
        None,
        datetime!(2026-11-23 10:00 UTC),
    );
    let unknown_file = refused.join("stranger.bundle.json");
    std::fs::write(&unknown_file, unknown.to_bytes()).unwrap();

    // (c) A duplicate key: bob's bundle twice under two names.
    let dup_file = refused.join("bob-again.bundle.json");
    std::fs::copy(&b_file, &dup_file).unwrap();

    // (d) A tampered signature: one hex digit of carol's signature changed.
    let mut tampered = Bundle::from_bytes("c", &std::fs::read(&c_file).unwrap()).unwrap();
    let flipped = if tampered.sig.ends_with('0') {
        '1'
    } else {
        '0'
    };
    tampered.sig.pop();
    tampered.sig.push(flipped);
    let tampered_file = refused.join("carol-tampered.bundle.json");
    std::fs::write(&tampered_file, tampered.to_bytes()).unwrap();

    let cases: [(&str, Vec<&Path>, &Path, &str); 5] = [
        (
            "other content",
            vec![&a_received, &other_bundle],
            &other_bundle,
            "it was made for other content",
        ),
        (
            "unknown key",
            vec![&a_received, &unknown_file],
            &unknown_file,
            "is not one that may sign root",
        ),
        (
            "duplicate key",
            vec![&b_file, &dup_file],
            &dup_file,
            "duplicate: key",
        ),
        (
            "tampered signature",
            vec![&a_received, &tampered_file],
            &tampered_file,
            "does not verify",
        ),
        (
            "already signed",
            vec![&b_file],
            &b_file,
            "has signed this metadata already",
        ),
    ];
    for (i, (what, bundles, culprit, reason)) in cases.iter().enumerate() {
        let out = refused.join(format!("out-{i}.json"));
        // The last case merges into the merged root, which bob has already signed.
        let input = if *what == "already signed" {
            &signed
        } else {
            &root_file
        };
        let run = merge(input, &out, bundles);
        assert_eq!(run.code(), 1, "{what}: {run:?}");
        assert!(
            run.stderr.contains("no signature added; refused:")
                && run
                    .stderr
                    .lines()
                    .any(|l| l.contains(s(culprit)) && l.contains(reason)),
            "{what}: expected {reason} for {}: {run:?}",
            culprit.display()
        );
        assert!(!out.exists(), "{what}: {} was written", out.display());
    }

    // bundle export checks before the PIN: an existing --out is refused (exit 2, no PIN read),
    // and a key the root does not name is refused (exit 1).
    let run = sites[0].export(&sites[0].dir.join("root.json"), &bundle_files[0]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("exists already"), "{run:?}");
    let stranger_root = root_v1(&keys[1..], 2, datetime!(2036-01-01 0:00 UTC));
    let sr_file = sites[0].dir.join("root-without-alice.json");
    std::fs::write(&sr_file, stranger_root.to_file_bytes()).unwrap();
    let sr_out = sites[0].dir.join("not-named.bundle.json");
    let run = sites[0].export(&sr_file, &sr_out);
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr.contains("refusing to sign") && run.stderr.contains("is not named by"),
        "{run:?}"
    );
    assert!(!sr_out.exists());
}

/// A root rotation signed by bundles: carol's key leaves, dave's arrives. The old key signs with
/// `--trusted-root` (the previous root names it), the new key without; merge counts both roots.
#[test]
fn a_root_rotation_is_signed_by_bundles_from_old_and_new_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let sites = [
        Site::new(base, "alice", "ed25519"),
        Site::new(base, "bob", "ecdsa-p256"),
        Site::new(base, "carol", "ecdsa-p384"),
        Site::new(base, "dave", "ed25519"),
    ];
    let [alice, bob, carol, dave] = &sites;
    let repo = base.join("repo");
    std::fs::create_dir_all(&repo).unwrap();

    // Root v1: alice, bob, carol, 2 of 3, signed by alice and bob through bundles.
    let v1 = root_v1(
        &[alice.key.clone(), bob.key.clone(), carol.key.clone()],
        2,
        datetime!(2036-01-01 0:00 UTC),
    );
    let v1_unsigned = base.join("root-v1.json");
    std::fs::write(&v1_unsigned, v1.to_file_bytes()).unwrap();
    let mut v1_bundles = Vec::new();
    for site in [alice, bob] {
        let out = site.dir.join("v1.bundle.json");
        let run = site.export(&v1_unsigned, &out);
        assert_eq!(run.code(), 0, "{run:?}");
        v1_bundles.push(out);
    }
    let f1 = repo.join("1.root.json");
    let refs: Vec<&Path> = v1_bundles.iter().map(PathBuf::as_path).collect();
    let run = merge(&v1_unsigned, &f1, &refs);
    assert_eq!(run.code(), 0, "{run:?}");

    // Root v2: carol's key replaced by dave's, still 2 of 3.
    let mut root2 = conclave::tuf::edit::next_root(v1.signed(), datetime!(2036-06-01 0:00 UTC));
    conclave::tuf::edit::remove_root_key(&mut root2, RoleType::Root, &carol.key.key_id()).unwrap();
    conclave::tuf::edit::add_root_key(&mut root2, RoleType::Root, dave.key.clone()).unwrap();
    let v2 = Metadata::new(root2);
    let v2_unsigned = base.join("root-v2.json");
    std::fs::write(&v2_unsigned, v2.to_file_bytes()).unwrap();

    // carol's key is named only by v1: without the trusted root her export is refused.
    let carol_out = carol.dir.join("v2.bundle.json");
    let run = carol.export(&v2_unsigned, &carol_out);
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(run.stderr.contains("is not named by"), "{run:?}");
    assert!(!carol_out.exists());

    let export_trusted = |site: &Site, out: &Path| {
        conclave(
            &[
                "bundle",
                "export",
                "--module",
                SOFTHSM,
                "--key",
                &site.keyholder,
                "--metadata",
                s(&v2_unsigned),
                "--trusted-root",
                s(&f1),
                "--out",
                s(out),
                "--pin-stdin",
            ],
            &format!("{}\n", site.pin),
            Some(&site.conf),
        )
    };
    let mut v2_bundles = Vec::new();
    for site in [carol, dave] {
        let out = site.dir.join("v2.bundle.json");
        let run = export_trusted(site, &out);
        assert_eq!(run.code(), 0, "{}: {run:?}", site.keyholder);
        v2_bundles.push(out);
    }
    assert!(
        std::fs::read_to_string(&v2_bundles[0])
            .unwrap()
            .contains(&carol.key.key_id().0)
    );

    // Without the previous root, carol's key may not sign v2.
    let f2 = repo.join("2.root.json");
    let refs: Vec<&Path> = v2_bundles.iter().map(PathBuf::as_path).collect();
    let run = merge(&v2_unsigned, &f2, &refs);
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr.contains("is not one that may sign root"),
        "{run:?}"
    );
    assert!(!f2.exists());

    // With it: dave counts for v2, carol for v1 only; one more (alice) is needed by both.
    let merge_trusted = |out: &Path, bundles: &[&Path]| {
        let mut args = vec![
            "bundle",
            "merge",
            "--metadata",
            s(&v2_unsigned),
            "--trusted-root",
            s(&f1),
            "--out",
            s(out),
        ];
        args.extend(bundles.iter().map(|b| s(b)));
        conclave(&args, "", None)
    };
    let partial = base.join("partial-v2.json");
    let run = merge_trusted(&partial, &refs);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stdout
            .contains("signatures counted: 1 of threshold 2 (not met yet)")
            && run.stdout.contains(
                "signatures counted by the previous root: 1 of threshold 2 (not met yet)"
            ),
        "{run:?}"
    );
    let alice_out = alice.dir.join("v2.bundle.json");
    let run = export_trusted(alice, &alice_out);
    assert_eq!(run.code(), 0, "{run:?}");
    let mut all = refs.clone();
    all.push(&alice_out);
    let run = merge_trusted(&f2, &all);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stdout
            .contains("signatures counted: 2 of threshold 2 (met)")
            && run
                .stdout
                .contains("signatures counted by the previous root: 2 of threshold 2 (met)"),
        "{run:?}"
    );

    let run = conclave(
        &[
            "verify",
            "--trusted-root",
            s(&f1),
            "--repo",
            s(&repo),
            "--at",
            "2030-01-01T00:00:00Z",
        ],
        "",
        None,
    );
    assert_eq!(run.code(), 0, "conclave verify: {run:?}");
    assert!(run.stdout.contains("root chain to v2"), "{run:?}");
    let run = verify_repo(
        &repo,
        &["--roots-only", "--trusted-root", s(&f1), "--at", common::AT],
    );
    assert_eq!(run.code(), 0, "python-tuf verify_repo.py: {run:?}");
}
