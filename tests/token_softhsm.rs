//! Keyholder tokens against real SoftHSM2 tokens, through the `conclave` binary.
//!
//! Every test makes its own practice tokens in a temporary directory with its own
//! `softhsm2.conf` (`conclave token init-practice`), and passes `SOFTHSM2_CONF` to each child
//! process only: SoftHSM2 reads it at `C_Initialize`, and the system token directory is never
//! used. Needs the Debian packages softhsm2 and opensc (`make deb-deps`); python-tuf checks use
//! the venv (`make venv`) like the other interop tests.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Run, run_with_timeout};
use conclave::tuf::canonical::Value;
use conclave::tuf::edit::{
    RoleKeys, add_root_key, new_root, new_targets, next_root, remove_root_key,
};
use conclave::tuf::key::Key;
use conclave::tuf::metadata::{Metadata, RoleType, Root, Targets, key_from_value};
use conclave::tuf::verify::{trust_root, update_root};
use time::macros::datetime;

const BIN: &str = env!("CARGO_BIN_EXE_conclave");
const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TIMEOUT: Duration = Duration::from_secs(60);

fn softhsm() -> &'static str {
    assert!(
        Path::new(SOFTHSM).is_file(),
        "{SOFTHSM} missing: install the Debian package softhsm2 (make deb-deps)"
    );
    SOFTHSM
}

/// Practice tokens in a temporary directory.
struct Practice {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    conf: PathBuf,
    tokens: Vec<serde_json::Value>,
}

impl Practice {
    fn new(keyholders: &str, types: &str) -> Practice {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let dir = root.join("practice");
        let mut cmd = Command::new(BIN);
        cmd.args(["token", "init-practice", "--json", "--module", softhsm()])
            .arg("--dir")
            .arg(&dir)
            .args(["--keyholders", keyholders, "--type", types])
            .env_remove("SOFTHSM2_CONF");
        let run = run_with_timeout(&mut cmd, b"", TIMEOUT);
        assert_eq!(run.code(), 0, "init-practice failed: {run:?}");
        let v = run.json();
        let conf = PathBuf::from(v["conf"].as_str().unwrap());
        assert_eq!(conf, dir.canonicalize().unwrap().join("softhsm2.conf"));
        let tokens = v["tokens"].as_array().unwrap().clone();
        Practice {
            _tmp: tmp,
            root,
            conf,
            tokens,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn conclave(&self, args: &[&str], stdin: &str) -> Run {
        self.conclave_env(args, stdin, &[])
    }

    fn conclave_env(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .current_dir(&self.root);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_with_timeout(&mut cmd, stdin.as_bytes(), TIMEOUT)
    }

    fn token(&self, name: &str) -> &serde_json::Value {
        self.tokens
            .iter()
            .find(|t| t["keyholder"] == name)
            .unwrap_or_else(|| panic!("no practice token {name}"))
    }

    fn pin(&self, name: &str) -> String {
        self.token(name)["pin"].as_str().unwrap().to_string()
    }

    fn key(&self, name: &str) -> Key {
        json_key(&self.token(name)["key"]["key"])
    }

    /// `conclave sign` in place with the keyholder's token and key named after them.
    fn sign(&self, name: &str, file: &Path, extra: &[&str]) -> Run {
        let f = file.to_str().unwrap();
        let mut args = vec![
            "sign",
            "--module",
            SOFTHSM,
            "--token",
            name,
            "--key",
            name,
            "--in",
            f,
            "--out",
            f,
            "--pin-stdin",
        ];
        args.extend_from_slice(extra);
        self.conclave(&args, &format!("{}\n", self.pin(name)))
    }

    fn pkcs11_tool(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new("pkcs11-tool");
        cmd.args(["--module", SOFTHSM])
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf);
        let run = run_with_timeout(&mut cmd, b"", TIMEOUT);
        assert_eq!(
            run.code(),
            0,
            "pkcs11-tool failed (install opensc): {run:?}"
        );
        run
    }
}

fn json_key(v: &serde_json::Value) -> Key {
    let text = serde_json::to_string(v).unwrap();
    key_from_value(Value::parse(text.as_bytes()).unwrap(), "$").unwrap()
}

fn root_md(root_keys: &[Key], threshold: u64) -> Metadata<Root> {
    let other = vec![root_keys[0].clone()];
    let roles = [
        RoleKeys {
            role: RoleType::Root,
            keys: root_keys.to_vec(),
            threshold,
        },
        RoleKeys {
            role: RoleType::Targets,
            keys: other.clone(),
            threshold: 1,
        },
        RoleKeys {
            role: RoleType::Snapshot,
            keys: other.clone(),
            threshold: 1,
        },
        RoleKeys {
            role: RoleType::Timestamp,
            keys: other,
            threshold: 1,
        },
    ];
    Metadata::new(new_root(&roles, datetime!(2036-01-01 0:00 UTC)).unwrap())
}

fn python_verify_root(trusted: &Path, new: &Path) {
    let script = "import sys\n\
from tuf.api.metadata import Metadata, Root\n\
old = Metadata[Root].from_file(sys.argv[1])\n\
new = Metadata[Root].from_file(sys.argv[2])\n\
old.signed.verify_delegate(Root.type, new.signed_bytes, new.signatures)\n\
new.signed.verify_delegate(Root.type, new.signed_bytes, new.signatures)\n\
print('python-tuf: ok')\n";
    let mut cmd = Command::new(common::python());
    cmd.args(["-c", script]).arg(trusted).arg(new);
    let run = run_with_timeout(&mut cmd, b"", TIMEOUT);
    assert_eq!(
        run.code(),
        0,
        "python-tuf rejects {}: {run:?}",
        new.display()
    );
    assert!(run.stdout.contains("python-tuf: ok"));
}

fn sign_ms(run: &Run) -> u64 {
    run.stdout
        .split(" in ")
        .nth(1)
        .and_then(|s| s.split(" ms").next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no timing in {run:?}"))
}

#[test]
fn several_tokens_every_key_type_sign_and_verify() {
    let p = Practice::new("alice,bob,carol", "ed25519,ecdsa-p256,ecdsa-p384");
    let list = p.conclave(&["token", "list", "--json", "--module", SOFTHSM], "");
    assert_eq!(list.code(), 0, "{list:?}");
    let v = list.json();
    let tokens: Vec<&serde_json::Value> = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["flags"]["token_initialized"] == true)
        .collect();
    assert_eq!(tokens.len(), 3, "{v}");
    for (name, scheme) in [
        ("alice", "ed25519"),
        ("bob", "ecdsa-sha2-nistp256"),
        ("carol", "ecdsa-sha2-nistp384"),
    ] {
        let t = tokens.iter().find(|t| t["label"] == name).unwrap();
        assert_eq!(t["serial"], p.token(name)["serial"]);
        assert_eq!(t["manufacturer"], "SoftHSM project");
        assert_eq!(t["flags"]["login_required"], true);
        let keys = t["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{t}");
        assert_eq!(keys[0]["keyid"], p.token(name)["key"]["keyid"]);
        assert_eq!(keys[0]["key"]["scheme"], scheme);
        assert_eq!(p.key(name).key_id().0, keys[0]["keyid"].as_str().unwrap());
    }

    let keys = [p.key("alice"), p.key("bob"), p.key("carol")];
    let md = root_md(&keys, 3);
    let file = p.path("1.root.json");
    std::fs::write(&file, md.to_file_bytes()).unwrap();
    for name in ["alice", "bob", "carol"] {
        let run = p.sign(name, &file, &[]);
        assert_eq!(run.code(), 0, "{run:?}");
        assert!(run.stdout.contains("signature added for key id"), "{run:?}");
        eprintln!("sign with {name}: {} ms", sign_ms(&run));
    }
    let signed = Metadata::<Root>::from_bytes(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        signed.signed_bytes(),
        md.signed_bytes(),
        "signed part changed"
    );
    assert_eq!(signed.signatures.len(), 3);
    for k in &keys {
        let s = signed
            .signatures
            .iter()
            .find(|s| s.keyid == k.key_id())
            .unwrap();
        k.verify_hex(signed.signed_bytes(), &s.sig).unwrap();
    }
    let (_, result) = trust_root("1.root.json", &std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(result.signed.len(), 3);
    python_verify_root(&file, &file);
}

#[test]
fn root_rotation_two_of_three_signed_token_by_token() {
    let p = Practice::new(
        "alice,bob,carol,dave",
        "ed25519,ecdsa-p256,ecdsa-p384,ed25519",
    );
    let (a, b, c, d) = (p.key("alice"), p.key("bob"), p.key("carol"), p.key("dave"));
    let v1 = root_md(&[a.clone(), b.clone(), c.clone()], 2);
    let f1 = p.path("1.root.json");
    std::fs::write(&f1, v1.to_file_bytes()).unwrap();
    for name in ["alice", "carol"] {
        let run = p.sign(name, &f1, &[]);
        assert_eq!(run.code(), 0, "{run:?}");
    }
    let (trusted, _) = trust_root("1.root.json", &std::fs::read(&f1).unwrap()).unwrap();

    // Version 2: carol's key replaced by dave's, still 2 of 3.
    let mut root2 = next_root(v1.signed(), datetime!(2036-06-01 0:00 UTC));
    remove_root_key(&mut root2, RoleType::Root, &c.key_id()).unwrap();
    add_root_key(&mut root2, RoleType::Root, d.clone()).unwrap();
    let v2 = Metadata::new(root2);
    let f2 = p.path("2.root.json");
    std::fs::write(&f2, v2.to_file_bytes()).unwrap();
    let trusted_arg = ["--trusted-root", f1.to_str().unwrap()];

    let run = p.sign("alice", &f2, &trusted_arg);
    assert_eq!(run.code(), 0, "{run:?}");
    let run = p.sign("dave", &f2, &trusted_arg);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("not enough signatures yet"), "{run:?}");
    // alice + dave: 2 of the new root's keys, but only 1 of the old root's: not yet valid.
    let err = update_root(&trusted, "2.root.json", &std::fs::read(&f2).unwrap()).unwrap_err();
    assert!(err.to_string().contains("root"), "{err}");

    let run = p.sign("bob", &f2, &trusted_arg);
    assert_eq!(run.code(), 0, "{run:?}");
    let (_, step) = update_root(&trusted, "2.root.json", &std::fs::read(&f2).unwrap()).unwrap();
    assert!(
        step.by_previous.verified() && step.by_self.verified(),
        "{step:?}"
    );
    assert_eq!(step.by_self.signed.len(), 3);
    let signed = Metadata::<Root>::from_bytes(&std::fs::read(&f2).unwrap()).unwrap();
    assert_eq!(signed.signed_bytes(), v2.signed_bytes());
    python_verify_root(&f1, &f2);
}

#[test]
fn wrong_pin_is_reported_and_softhsm_never_locks() {
    let p = Practice::new("alice", "ed25519");
    let md = root_md(&[p.key("alice")], 1);
    let file = p.path("root.json");
    let original = md.to_file_bytes();
    std::fs::write(&file, &original).unwrap();
    let out = p.path("signed.json");
    let args = [
        "sign",
        "--module",
        SOFTHSM,
        "--token",
        "alice",
        "--key",
        "alice",
        "--in",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--pin-stdin",
    ];
    let flags = |p: &Practice| {
        let v = p
            .conclave(&["token", "list", "--json", "--module", SOFTHSM], "")
            .json();
        v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["label"] == "alice")
            .unwrap()["flags"]
            .clone()
    };
    assert_eq!(flags(&p)["user_pin_count_low"], false);
    for attempt in 0..12 {
        let run = p.conclave(&args, "not-the-pin\n");
        assert_eq!(run.code(), 1, "{run:?}");
        assert!(
            run.stderr.contains("wrong PIN for token \"alice\"")
                && run.stderr.contains("CKR_PIN_INCORRECT"),
            "{run:?}"
        );
        if attempt > 0 {
            assert!(run.stderr.contains("CKF_USER_PIN_COUNT_LOW"), "{run:?}");
        }
        assert!(!out.exists());
        assert_eq!(std::fs::read(&file).unwrap(), original);
    }
    // What SoftHSM2 2.6 supports: COUNT_LOW after a wrong PIN, never FINAL_TRY or LOCKED.
    let f = flags(&p);
    assert_eq!(f["user_pin_count_low"], true, "{f}");
    assert_eq!(f["user_pin_final_try"], false, "{f}");
    assert_eq!(f["user_pin_locked"], false, "{f}");
    let run = p.conclave(&args, &format!("{}\n", p.pin("alice")));
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(flags(&p)["user_pin_count_low"], false);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        original,
        "input must stay as it was"
    );
}

#[test]
fn key_not_named_by_the_role_is_refused_unless_forced() {
    let p = Practice::new("alice,bob,carol", "ed25519,ecdsa-p256,ed25519");
    let md = root_md(&[p.key("alice"), p.key("bob")], 1);
    let file = p.path("root.json");
    let original = md.to_file_bytes();
    std::fs::write(&file, &original).unwrap();

    let run = p.sign("carol", &file, &[]);
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr.contains("refusing to sign root version 1"),
        "{run:?}"
    );
    assert!(run.stderr.contains(&p.key("carol").key_id().0), "{run:?}");
    assert_eq!(std::fs::read(&file).unwrap(), original);

    // Another output path that exists is never overwritten.
    let other = p.path("other.json");
    std::fs::write(&other, b"keep me").unwrap();
    let run = p.conclave(
        &[
            "sign",
            "--module",
            SOFTHSM,
            "--token",
            "alice",
            "--key",
            "alice",
            "--in",
            file.to_str().unwrap(),
            "--out",
            other.to_str().unwrap(),
            "--pin-stdin",
        ],
        &format!("{}\n", p.pin("alice")),
    );
    assert_eq!(run.code(), 2, "{run:?}");
    assert_eq!(std::fs::read(&other).unwrap(), b"keep me");

    let run = p.sign("carol", &file, &["--force"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stderr.contains("WARNING: --force"), "{run:?}");
    assert!(run.stderr.contains("does NOT count"), "{run:?}");
    let signed = Metadata::<Root>::from_bytes(&std::fs::read(&file).unwrap()).unwrap();
    let carol = p.key("carol");
    let s = signed
        .signatures
        .iter()
        .find(|s| s.keyid == carol.key_id())
        .unwrap();
    carol.verify_hex(signed.signed_bytes(), &s.sig).unwrap();
    assert!(trust_root("root.json", &std::fs::read(&file).unwrap()).is_err());

    // A targets file: without a trusted root nobody can say which keys count.
    let targets: Metadata<Targets> = Metadata::new(new_targets(datetime!(2036-01-01 0:00 UTC)));
    let tfile = p.path("targets.json");
    std::fs::write(&tfile, targets.to_file_bytes()).unwrap();
    let run = p.sign("alice", &tfile, &[]);
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(run.stderr.contains("--trusted-root"), "{run:?}");
    // A trusted root that does not verify (only carol's forced signature) decides nothing.
    let run = p.sign("alice", &tfile, &["--trusted-root", file.to_str().unwrap()]);
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr.contains("the trusted root does not verify"),
        "{run:?}"
    );
    let run = p.sign("alice", &file, &[]);
    assert_eq!(run.code(), 0, "{run:?}");
    let run = p.sign("bob", &tfile, &["--trusted-root", file.to_str().unwrap()]);
    assert_eq!(run.code(), 1, "bob does not hold the targets key: {run:?}");
    assert!(
        run.stderr.contains("is not named by the targets role"),
        "{run:?}"
    );
    let run = p.sign("alice", &tfile, &["--trusted-root", file.to_str().unwrap()]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("threshold met"), "{run:?}");
}

#[test]
fn unusable_keys_missing_tokens_and_bad_modules_are_clear_errors() {
    let p = Practice::new("alice", "ed25519");
    let md = root_md(&[p.key("alice")], 1);
    let file = p.path("root.json");
    let original = md.to_file_bytes();
    std::fs::write(&file, &original).unwrap();
    let f = file.to_str().unwrap();

    // A key on a curve Conclave does not use (secp256k1, made with pkcs11-tool).
    p.pkcs11_tool(&[
        "--token-label",
        "alice",
        "--login",
        "--pin",
        &p.pin("alice"),
        "--keypairgen",
        "--key-type",
        "EC:secp256k1",
        "--label",
        "k1",
        "--id",
        "0102",
    ]);
    let list = p.conclave(&["token", "list", "--module", SOFTHSM], "");
    assert_eq!(list.code(), 0, "{list:?}");
    assert!(
        list.stdout.contains("k1") && list.stdout.contains("unusable"),
        "{list:?}"
    );
    let pin = format!("{}\n", p.pin("alice"));
    let run = p.conclave(
        &[
            "sign",
            "--module",
            SOFTHSM,
            "--token",
            "alice",
            "--key",
            "k1",
            "--in",
            f,
            "--out",
            f,
            "--pin-stdin",
        ],
        &pin,
    );
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr.contains("key \"k1\" on token \"alice\"")
            && run.stderr.contains("not Ed25519, P-256 or P-384"),
        "{run:?}"
    );

    // No such key, no such token.
    let run = p.conclave(
        &[
            "sign",
            "--module",
            SOFTHSM,
            "--token",
            "alice",
            "--key",
            "nokey",
            "--in",
            f,
            "--out",
            f,
            "--pin-stdin",
        ],
        &pin,
    );
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr
            .contains("holds no key with label or key id \"nokey\""),
        "{run:?}"
    );
    let run = p.conclave(
        &[
            "sign",
            "--module",
            SOFTHSM,
            "--token",
            "bob",
            "--key",
            "alice",
            "--in",
            f,
            "--out",
            f,
            "--pin-stdin",
        ],
        &pin,
    );
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr.contains("no token with label or serial \"bob\"")
            && run.stderr.contains("token \"alice\""),
        "{run:?}"
    );

    // Module path missing, a file that is not a library, a library that is not PKCS#11.
    let garbage = p.path("garbage.so");
    std::fs::write(&garbage, b"\x7fELF but not really").unwrap();
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/aarch64-linux-gnu/libc.so.6",
        "/usr/lib64/libc.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file())
    .expect("libc.so.6");
    for (module, expect) in [
        ("/nonexistent/libnothing.so", "does not exist"),
        (
            garbage.to_str().unwrap(),
            "is not a loadable PKCS#11 module",
        ),
        (libc, "C_GetFunctionList"),
    ] {
        let run = p.conclave(
            &[
                "sign",
                "--module",
                module,
                "--token",
                "alice",
                "--key",
                "alice",
                "--in",
                f,
                "--out",
                f,
                "--pin-stdin",
            ],
            &pin,
        );
        assert_eq!(run.code(), 2, "{run:?}");
        assert!(
            run.stderr.contains(expect) && run.stderr.contains(module),
            "{module}: {run:?}"
        );
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        original,
        "input must stay as it was"
    );
}

#[test]
fn keygen_refuses_existing_labels_and_accepts_both_ed25519_spellings() {
    let p = Practice::new("alice", "none");
    let pin = format!("{}\n", p.pin("alice"));
    let mut made = Vec::new();
    for (ty, label, params) in [
        ("ed25519", "ed-oid", "oid"),
        ("ed25519", "ed-name", "name"),
        ("ecdsa-p256", "p256", "auto"),
        ("ecdsa-p384", "p384", "auto"),
    ] {
        let run = p.conclave(
            &[
                "token",
                "keygen",
                "--module",
                SOFTHSM,
                "--token",
                "alice",
                "--type",
                ty,
                "--label",
                label,
                "--ed-params",
                params,
                "--pin-stdin",
                "--json",
            ],
            &pin,
        );
        assert_eq!(run.code(), 0, "{run:?}");
        let v = run.json();
        let key = json_key(&v["key"]);
        assert_eq!(key.key_id().0, v["keyid"].as_str().unwrap());
        key.public_key().unwrap();
        assert_eq!(v["device"]["serial"], p.token("alice")["serial"], "{v}");
        assert_eq!(v["certificates"], serde_json::json!([]), "{v}");
        made.push((label, key, v["id"].as_str().unwrap().to_string()));
    }
    // A certificate stored under a key's CKA_ID (as ykcs11 exposes a PIV attestation) is shown
    // with that key.
    let der = common::manifest_dir().join("tests/data/test-attestation.der");
    p.pkcs11_tool(&[
        "--token-label",
        "alice",
        "--login",
        "--pin",
        &p.pin("alice"),
        "--write-object",
        der.to_str().unwrap(),
        "--type",
        "cert",
        "--id",
        &made[2].2,
        "--label",
        "X.509 Certificate for PIV Attestation",
    ]);
    let list = p
        .conclave(&["token", "list", "--json", "--module", SOFTHSM], "")
        .json();
    let keys = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "alice")
        .unwrap()["keys"]
        .clone();
    let p256 = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "p256")
        .unwrap();
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(std::fs::read(&der).unwrap()));
    assert_eq!(p256["certificates"][0]["sha256"], sha.as_str(), "{p256}");
    assert_eq!(
        p256["certificates"][0]["label"],
        "X.509 Certificate for PIV Attestation"
    );
    let others = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["label"] != "p256");
    assert!(
        others
            .into_iter()
            .all(|k| k["certificates"] == serde_json::json!([])),
        "{keys}"
    );
    let again = p.conclave(
        &[
            "token",
            "keygen",
            "--module",
            SOFTHSM,
            "--token",
            "alice",
            "--type",
            "ed25519",
            "--label",
            "p256",
            "--pin-stdin",
        ],
        &pin,
    );
    assert_eq!(again.code(), 1, "{again:?}");
    assert!(
        again
            .stderr
            .contains("already holds an object with label \"p256\""),
        "{again:?}"
    );
    // Both Ed25519 spellings come back as the same kind of key, and each key signs.
    let md = root_md(
        &made.iter().map(|(_, k, _)| k.clone()).collect::<Vec<_>>(),
        4,
    );
    let file = p.path("root.json");
    std::fs::write(&file, md.to_file_bytes()).unwrap();
    let f = file.to_str().unwrap();
    for (label, _, _) in &made {
        let run = p.conclave(
            &[
                "sign",
                "--module",
                SOFTHSM,
                "--token",
                "alice",
                "--key",
                label,
                "--in",
                f,
                "--out",
                f,
                "--pin-stdin",
            ],
            &pin,
        );
        assert_eq!(run.code(), 0, "{run:?}");
    }
    let (_, r) = trust_root("root.json", &std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(r.signed.len(), 4);
    python_verify_root(&file, &file);
}

#[test]
fn the_pin_is_never_printed_or_written() {
    let p = Practice::new("alice", "ecdsa-p256");
    let secret = "Zq9w-7f3a-PIN-4c1d";
    let wrong = "Wr0ng-8e2b-Guess";
    p.pkcs11_tool(&[
        "--token-label",
        "alice",
        "--login",
        "--pin",
        &p.pin("alice"),
        "--change-pin",
        "--new-pin",
        secret,
    ]);
    let md = root_md(&[p.key("alice")], 1);
    let file = p.path("root.json");
    std::fs::write(&file, md.to_file_bytes()).unwrap();
    let out = p.path("signed.json");
    let (f, o) = (file.to_str().unwrap(), out.to_str().unwrap());
    let sign = [
        "sign",
        "--module",
        SOFTHSM,
        "--token",
        "alice",
        "--key",
        "alice",
        "--in",
        f,
        "--out",
        o,
        "--pin-stdin",
    ];
    let bundle = p.path("alice.bundle.json");
    let export = [
        "bundle",
        "export",
        "--module",
        SOFTHSM,
        "--token",
        "alice",
        "--key",
        "alice",
        "--metadata",
        f,
        "--out",
        bundle.to_str().unwrap(),
        "--pin-stdin",
        "--keyholder",
        "alice",
    ];
    let mut transcript = String::new();
    for (args, stdin, code) in [
        (&sign[..], wrong, 1),
        (&sign[..], secret, 0),
        (&export[..], wrong, 1),
        (&export[..], secret, 0),
        (
            &[
                "token",
                "keygen",
                "--module",
                SOFTHSM,
                "--token",
                "alice",
                "--type",
                "ed25519",
                "--label",
                "second",
                "--pin-stdin",
            ][..],
            secret,
            0,
        ),
        (&["token", "list", "--json", "--module", SOFTHSM][..], "", 0),
    ] {
        let run = p.conclave(args, &format!("{stdin}\n"));
        assert_eq!(run.code(), code, "{run:?}");
        transcript.push_str(&run.stdout);
        transcript.push_str(&run.stderr);
    }
    assert!(out.exists());
    assert!(bundle.exists());
    assert!(
        !transcript.contains(secret) && !transcript.contains(wrong),
        "PIN printed:\n{transcript}"
    );
    // Every file in the test directory (metadata, softhsm2.conf, the token store).
    let mut stack = vec![p.root.clone()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            for pin in [secret, wrong] {
                assert!(
                    !bytes.windows(pin.len()).any(|w| w == pin.as_bytes()),
                    "PIN found in {}",
                    path.display()
                );
            }
        }
    }
    assert!(files >= 5, "only {files} files checked");
}

/// The mechanism check against the real token's mechanism list (SoftHSM2 has no
/// CKM_ECDSA_SHA256). Runs in a child of this test binary so that `SOFTHSM2_CONF` is set for
/// that process only.
#[test]
fn a_missing_mechanism_is_named() {
    use conclave::signer::pkcs11::{Module, TokenError};
    use cryptoki::mechanism::MechanismType;
    const CHILD: &str = "CONCLAVE_TEST_MECHANISM_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let m = Module::open(Some(Path::new(SOFTHSM))).unwrap();
        let t = m.find_token("alice").unwrap();
        let s = m.open_session(&t, false).unwrap();
        s.require_mechanism(MechanismType::EDDSA, "sign with Ed25519")
            .unwrap();
        let e = s
            .require_mechanism(MechanismType::ECDSA_SHA256, "sign with ECDSA over SHA-256")
            .unwrap_err();
        assert!(matches!(e, TokenError::MechanismMissing { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("CKM_ECDSA_SHA256") && msg.contains("token \"alice\""),
            "{msg}"
        );
        println!("child checked: {msg}");
        return;
    }
    let p = Practice::new("alice", "none");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "a_missing_mechanism_is_named",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, "1")
    .env("SOFTHSM2_CONF", &p.conf);
    let run = run_with_timeout(&mut cmd, b"", TIMEOUT);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stdout.contains("child checked:") && run.stdout.contains("1 passed"),
        "{run:?}"
    );
}

/// Build `tests/data/pkcs11-fault-shim.c`: a module that forwards to SoftHSM2 and injects the fault
/// named by `CONCLAVE_FAULT` (a C compiler is present wherever Rust links).
fn fault_shim(dir: &Path) -> PathBuf {
    let src = common::manifest_dir().join("tests/data/pkcs11-fault-shim.c");
    let out = dir.join("fault-shim.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-ldl")
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc}: {e}"));
    assert!(status.success(), "{cc} failed to build {}", src.display());
    out
}

/// What SoftHSM2 never does (lock a PIN, announce a final try, lose a token mid-signature, lack
/// EdDSA, want the curve name), injected by a forwarding module: each gives its own error, and
/// the metadata file stays as it was.
#[test]
fn injected_token_faults_give_their_own_errors() {
    let p = Practice::new("alice", "ed25519");
    let shim = fault_shim(&p.root);
    let shim = shim.to_str().unwrap();
    let md = root_md(&[p.key("alice")], 1);
    let file = p.path("root.json");
    let original = md.to_file_bytes();
    std::fs::write(&file, &original).unwrap();
    let f = file.to_str().unwrap();
    let pin = format!("{}\n", p.pin("alice"));
    let sign = [
        "sign",
        "--module",
        shim,
        "--token",
        "alice",
        "--key",
        "alice",
        "--in",
        f,
        "--out",
        f,
        "--pin-stdin",
    ];
    let keygen = |ty: &str, label: &str, params: &str, fault: &str| {
        p.conclave_env(
            &[
                "token",
                "keygen",
                "--module",
                shim,
                "--token",
                "alice",
                "--type",
                ty,
                "--label",
                label,
                "--ed-params",
                params,
                "--pin-stdin",
            ],
            &pin,
            &[("CONCLAVE_FAULT", fault)],
        )
    };

    // Without a fault the shim is transparent.
    let run = p.conclave(&["token", "list", "--module", shim], "");
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("token \"alice\""), "{run:?}");

    for (fault, code, expect) in [
        (
            "sign-removed",
            2,
            "was removed or is not present (C_Sign returned CKR_DEVICE_REMOVED)",
        ),
        (
            "login-locked",
            1,
            "is locked (C_Login returned CKR_PIN_LOCKED); nothing was attempted",
        ),
        (
            "flags-locked",
            1,
            "is locked (token flags say CKF_USER_PIN_LOCKED)",
        ),
        ("final-try", 1, "the token reports ONE try left"),
        (
            "no-eddsa",
            2,
            "does not support CKM_EDDSA (needed to sign with Ed25519)",
        ),
    ] {
        let run = p.conclave_env(&sign, &pin, &[("CONCLAVE_FAULT", fault)]);
        assert_eq!(run.code(), code, "{fault}: {run:?}");
        assert!(run.stderr.contains(expect), "{fault}: {run:?}");
        assert!(run.stderr.contains("token \"alice\""), "{fault}: {run:?}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            original,
            "{fault} changed the file"
        );
    }
    let run = p.conclave_env(
        &["token", "list", "--module", shim],
        "",
        &[("CONCLAVE_FAULT", "flags-locked")],
    );
    assert!(run.stdout.contains("user PIN LOCKED"), "{run:?}");

    // A token without EdDSA: the keyholder is told which mechanism, and no other type is made.
    let run = keygen("ed25519", "k-ed", "auto", "no-eddsa");
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "does not support CKM_EC_EDWARDS_KEY_PAIR_GEN (needed to generate an Ed25519 key)"
        ),
        "{run:?}"
    );
    let list = p
        .conclave(&["token", "list", "--json", "--module", SOFTHSM], "")
        .json();
    assert!(
        !list.to_string().contains("k-ed"),
        "a key was made anyway: {list}"
    );

    // A token that wants the curve name: auto falls back to it, --ed-params oid does not.
    let run = keygen("ed25519", "k-oid", "oid", "ed-name-only");
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr.contains("does not support the curve Ed25519 (C_GenerateKeyPair returned CKR_CURVE_NOT_SUPPORTED)"),
        "{run:?}"
    );
    let run = keygen("ed25519", "k-name", "auto", "ed-name-only");
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stdout
            .contains("CKA_EC_PARAMS 130c656477617264733235353139"),
        "{run:?}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), original);
}

/// A module the configuration names but that is missing stops every command that loads a
/// module (one choice for all, `driver::module::choose_module`), by `--config` and by
/// `CONCLAVE_CONFIG` alike: exit 2, naming the file and its line, never a fallback to another
/// module (SoftHSM2 holds alice's token and key here, so a fallback would succeed).
#[test]
fn a_missing_configured_module_stops_every_token_command() {
    let p = Practice::new("alice", "ed25519");
    let missing = p.path("missing.toml");
    std::fs::write(
        &missing,
        "[pkcs11]\nmodule = \"/nonexistent/vendor-pkcs11.so\"\n",
    )
    .unwrap();
    let m = missing.to_str().unwrap();
    let md = root_md(&[p.key("alice")], 1);
    let file = p.path("root.json");
    std::fs::write(&file, md.to_file_bytes()).unwrap();
    let f = file.to_str().unwrap();
    let pin = format!("{}\n", p.pin("alice"));
    let commands: [&[&str]; 4] = [
        &["token", "list"],
        &[
            "token",
            "keygen",
            "--token",
            "alice",
            "--type",
            "ed25519",
            "--label",
            "k2",
            "--pin-stdin",
        ],
        &[
            "token",
            "bench",
            "--token",
            "alice",
            "--key",
            "alice",
            "--pin-stdin",
        ],
        &[
            "sign",
            "--key",
            "alice",
            "--in",
            f,
            "--out",
            f,
            "--pin-stdin",
        ],
    ];
    for args in commands {
        let mut flagged = vec!["--config", m];
        flagged.extend_from_slice(args);
        for run in [
            p.conclave(&flagged, &pin),
            p.conclave_env(args, &pin, &[("CONCLAVE_CONFIG", m)]),
        ] {
            assert_eq!(run.code(), 2, "{args:?}: {run:?}");
            assert!(
                run.stderr.contains("/nonexistent/vendor-pkcs11.so")
                    && run.stderr.contains(&format!("{m}:2 (pkcs11.module)")),
                "{args:?}: {run:?}"
            );
        }
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        md.to_file_bytes(),
        "file changed"
    );
}

/// The configuration file chooses the module: `--config`, `CONCLAVE_CONFIG`; `--module` wins
/// over it; a file that is not a PKCS#11 module, a missing named file and a misspelt field are
/// clear errors naming the configuration file, its line and the field.
#[test]
fn the_config_file_chooses_the_module() {
    let p = Practice::new("alice", "ed25519");
    let good = p.path("good.toml");
    std::fs::write(&good, format!("[pkcs11]\nmodule = \"{SOFTHSM}\"\n")).unwrap();
    let g = good.to_str().unwrap();
    let not_module = p.path("not-a-module.so");
    std::fs::write(&not_module, b"just text, no ELF\n").unwrap();
    let bad = p.path("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "# appliance settings\n[pkcs11]\nmodule = \"{}\"\n",
            not_module.display()
        ),
    )
    .unwrap();
    let b = bad.to_str().unwrap();

    // --config before or after the subcommand (a global option).
    for args in [
        vec!["--config", g, "token", "list"],
        vec!["token", "list", "--config", g],
    ] {
        let run = p.conclave(&args, "");
        assert_eq!(run.code(), 0, "{run:?}");
        assert!(
            run.stdout.contains(&format!(
                "module {SOFTHSM} (chosen by {g}:2 (pkcs11.module))"
            )),
            "{run:?}"
        );
        assert!(run.stdout.contains("token \"alice\""), "{run:?}");
    }
    // CONCLAVE_CONFIG, and signing through the configured module.
    let md = root_md(&[p.key("alice")], 1);
    let file = p.path("root.json");
    std::fs::write(&file, md.to_file_bytes()).unwrap();
    let f = file.to_str().unwrap();
    let pin = format!("{}\n", p.pin("alice"));
    let sign = [
        "sign",
        "--token",
        "alice",
        "--key",
        "alice",
        "--in",
        f,
        "--out",
        f,
        "--pin-stdin",
    ];
    let run = p.conclave_env(&sign, &pin, &[("CONCLAVE_CONFIG", g)]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("signature added"), "{run:?}");

    // A configured file that is not a module: the error names it and the configuration.
    let before = std::fs::read(&file).unwrap();
    for run in [
        p.conclave(&["token", "list", "--config", b], ""),
        p.conclave_env(&sign, &pin, &[("CONCLAVE_CONFIG", b)]),
    ] {
        assert_eq!(run.code(), 2, "{run:?}");
        assert!(
            run.stderr.contains(&format!(
                "{} is not a loadable PKCS#11 module",
                not_module.display()
            )),
            "{run:?}"
        );
        assert!(
            run.stderr
                .contains(&format!("module chosen by {b}:3 (pkcs11.module)")),
            "{run:?}"
        );
    }
    assert_eq!(std::fs::read(&file).unwrap(), before, "file changed");
    // --module wins over the configuration.
    let run = p.conclave(&["token", "list", "--config", b, "--module", SOFTHSM], "");
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("module {SOFTHSM} (chosen by --module)")),
        "{run:?}"
    );
    // The flag wins over the environment.
    let run = p.conclave_env(
        &["token", "list", "--config", g],
        "",
        &[("CONCLAVE_CONFIG", b)],
    );
    assert_eq!(run.code(), 0, "{run:?}");

    // A search list of its own: the first existing file.
    let list = p.path("list.toml");
    std::fs::write(
        &list,
        format!("[pkcs11]\nmodules = [\"/nonexistent/libykcs11.so\", \"{SOFTHSM}\"]\n"),
    )
    .unwrap();
    let run = p.conclave(&["token", "list", "--config", list.to_str().unwrap()], "");
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("token \"alice\""), "{run:?}");

    // A named file that does not exist; a misspelt field.
    let missing = p.path("missing.toml");
    let run = p.conclave(
        &["token", "list", "--config", missing.to_str().unwrap()],
        "",
    );
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("missing.toml"), "{run:?}");
    assert!(run.stderr.contains("named by --config"), "{run:?}");
    let typo = p.path("typo.toml");
    std::fs::write(&typo, "[pkcs11]\n\nmodul = \"/x.so\"\n").unwrap();
    let run = p.conclave(&["token", "list", "--config", typo.to_str().unwrap()], "");
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "{}:3: pkcs11.modul: unknown field",
            typo.display()
        )),
        "{run:?}"
    );
}

/// With several keyholders' tokens present and no --token, Conclave picks the token that holds
/// the key; the prompt names the device and the person; a missing token is asked for by label or
/// serial and keyholder.
#[test]
fn the_token_holding_the_key_is_picked_and_prompts_name_device_and_person() {
    let p = Practice::new("alice,bob,carol", "ed25519,ecdsa-p256,ed25519");
    let md = root_md(&[p.key("alice"), p.key("bob"), p.key("carol")], 2);
    let file = p.path("root.json");
    std::fs::write(&file, md.to_file_bytes()).unwrap();
    let f = file.to_str().unwrap();
    let bob_id = p.key("bob").key_id().0;
    let bob_serial = p.token("bob")["serial"].as_str().unwrap().to_string();
    let run = p.conclave(
        &[
            "sign",
            "--module",
            SOFTHSM,
            "--key",
            &bob_id[..12],
            "--keyholder",
            "bob",
            "--in",
            f,
            "--out",
            f,
            "--pin-stdin",
        ],
        &format!("{}\n", p.pin("bob")),
    );
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "with key \"bob\" on token \"bob\" (serial {bob_serial}"
        )),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "PIN for token \"bob\" (serial {bob_serial}, SoftHSM project SoftHSM v2) of keyholder bob to sign root version 1"
        )),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains(&format!("signature added for key id {bob_id}"))
    );
    let signed = Metadata::<Root>::from_bytes(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(signed.signatures.len(), 1);
    assert_eq!(signed.signatures[0].keyid.0, bob_id);

    // A key no present token holds (dave's token is not plugged in): the keyholder is named.
    let before = std::fs::read(&file).unwrap();
    let run = p.conclave(
        &[
            "sign",
            "--module",
            SOFTHSM,
            "--key",
            "dave",
            "--keyholder",
            "dave",
            "--in",
            f,
            "--out",
            f,
            "--pin-stdin",
        ],
        "000000\n",
    );
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr
            .contains("holds a key with label or key id \"dave\"")
            && run
                .stderr
                .contains("insert the token that holds it for keyholder dave"),
        "{run:?}"
    );
    // A token named by serial that is not present.
    let run = p.conclave(
        &[
            "sign",
            "--module",
            SOFTHSM,
            "--token",
            "1583aa07",
            "--key",
            "dave",
            "--keyholder",
            "dave",
            "--in",
            f,
            "--out",
            f,
            "--pin-stdin",
        ],
        "000000\n",
    );
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "insert the token with label or serial \"1583aa07\" for keyholder dave and try again"
        ),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("token \"alice\""),
        "present tokens listed: {run:?}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before, "file changed");
}

/// A token that returns a bad signature (one bit flipped by the fault shim): caught by the
/// software verification, nothing written, for each key type.
#[test]
fn a_bad_signature_from_the_token_is_never_written() {
    let p = Practice::new("alice,bob,carol", "ed25519,ecdsa-p256,ecdsa-p384");
    let shim = fault_shim(&p.root);
    let shim = shim.to_str().unwrap();
    let md = root_md(&[p.key("alice"), p.key("bob"), p.key("carol")], 2);
    let file = p.path("root.json");
    let original = md.to_file_bytes();
    std::fs::write(&file, &original).unwrap();
    let f = file.to_str().unwrap();
    for name in ["alice", "bob", "carol"] {
        let args = [
            "sign",
            "--module",
            shim,
            "--token",
            name,
            "--key",
            name,
            "--in",
            f,
            "--out",
            f,
            "--pin-stdin",
        ];
        let pin = format!("{}\n", p.pin(name));
        let run = p.conclave_env(&args, &pin, &[("CONCLAVE_FAULT", "sign-corrupt")]);
        assert_eq!(run.code(), 1, "{name}: {run:?}");
        assert!(
            run.stderr
                .contains("the token's signature is bad, nothing written"),
            "{name}: {run:?}"
        );
        assert_eq!(
            std::fs::read(&file).unwrap(),
            original,
            "{name}: file changed"
        );
        // The same run without the fault signs: the shim is what broke it.
        let run = p.conclave_env(&args, &pin, &[("CONCLAVE_FAULT", "none")]);
        assert_eq!(run.code(), 0, "{name}: {run:?}");
        std::fs::write(&file, &original).unwrap();
    }
}

/// `token list --trusted-root`: which roles each key on the present tokens serves, and which
/// keys of the root no present token holds; a root that does not verify decides nothing.
#[test]
fn token_list_shows_the_roles_each_key_serves() {
    use conclave::signer::{Signer as _, software::SoftwareSigner};
    let p = Practice::new("alice,bob,carol", "ed25519,ecdsa-p256,ecdsa-p384");
    let dave = SoftwareSigner::generate(
        conclave::tuf::key::Algorithm::Ed25519,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    // Root keys alice, bob, dave (threshold 1); targets, snapshot, timestamp: alice.
    let md = root_md(&[p.key("alice"), p.key("bob"), dave.key().clone()], 1);
    let file = p.path("root.json");
    std::fs::write(&file, md.to_file_bytes()).unwrap();
    let f = file.to_str().unwrap();
    // Unsigned, the root does not verify: refused before any token is looked at.
    let run = p.conclave(
        &["token", "list", "--module", SOFTHSM, "--trusted-root", f],
        "",
    );
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr.contains("the trusted root does not verify"),
        "{run:?}"
    );
    assert_eq!(p.sign("alice", &file, &[]).code(), 0);

    let run = p.conclave(
        &["token", "list", "--module", SOFTHSM, "--trusted-root", f],
        "",
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let alice = p.key("alice").key_id();
    let bob = p.key("bob").key_id();
    assert!(
        run.stdout.contains(&format!(
            "serves        root, targets, snapshot, timestamp in root version 1 (as key id {alice})"
        )),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(&format!(
            "serves        root in root version 1 (as key id {bob})"
        )),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("serves        nothing: root version 1 does not list this key"),
        "carol: {run:?}"
    );
    assert!(
        run.stdout.contains(&format!(
            "keys of root version 1 on no present token:\n  {} root\n",
            dave.key_id()
        )),
        "{run:?}"
    );

    let v = p
        .conclave(
            &[
                "token",
                "list",
                "--json",
                "--module",
                SOFTHSM,
                "--trusted-root",
                f,
            ],
            "",
        )
        .json();
    let token = |name: &str| {
        v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["label"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        token("bob")["keys"][0]["trusted_root"],
        serde_json::json!([{"keyid": bob.0, "roles": ["root"], "owner": null}])
    );
    assert_eq!(
        token("carol")["keys"][0]["trusted_root"],
        serde_json::json!([])
    );
    assert_eq!(
        v["trusted_root_keys_not_present"][0]["keyid"],
        dave.key_id().0.as_str()
    );
}

/// `bundle export --pin-stdin` leaves no copy of the PIN in the process's memory once it is
/// done: the debug binary stops itself at exit (`CONCLAVE_TEST_STOP_AT_EXIT`) and the test reads
/// its memory as root. Before, the PIN sat in the standard input buffer, which is never wiped.
#[test]
fn bundle_export_leaves_no_pin_in_memory() {
    if !cfg!(debug_assertions) {
        eprintln!("skipped: the stop hook exists in debug builds only");
        return;
    }
    if !common::is_root() {
        eprintln!("skipped: reading the memory of a process that is not dumpable needs root");
        return;
    }
    let p = Practice::new("alice", "ed25519");
    let secret = "Mem-Scan-5e8b-PIN-91d2";
    p.pkcs11_tool(&[
        "--token-label",
        "alice",
        "--login",
        "--pin",
        &p.pin("alice"),
        "--change-pin",
        "--new-pin",
        secret,
    ]);
    let md = root_md(&[p.key("alice")], 1);
    let file = p.path("root.json");
    std::fs::write(&file, md.to_file_bytes()).unwrap();
    let bundle = p.path("alice.bundle.json");
    let mut child = Command::new(BIN)
        .args(["bundle", "export", "--module", SOFTHSM, "--token", "alice"])
        .args(["--key", "alice", "--keyholder", "alice", "--pin-stdin"])
        .arg("--metadata")
        .arg(&file)
        .arg("--out")
        .arg(&bundle)
        .env("SOFTHSM2_CONF", &p.conf)
        .env("CONCLAVE_TEST_STOP_AT_EXIT", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{secret}\n").as_bytes()).unwrap();
    }
    let pid = child.id();
    common::wait_until_stopped(pid, TIMEOUT);
    let found = common::found_in_memory(pid, &[secret]);
    let _ = Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(bundle.exists());
    assert!(found.is_empty(), "the PIN is left in memory: {found:#?}");
}
