//! Repository Service for TUF (RSTUF): Conclave's bootstrap-rstuf ceremony on tokens (SoftHSM2
//! stands in for the keyholders' devices) exports ceremony-payload.json with root v1 pending
//! (one of two signatures); python-tuf checks every rule of RSTUF's payload; the pending root
//! is completed by Distributed Asynchronous Signing from both sides: `conclave rstuf sign` with
//! bob's token and RSTUF's own CLI (`rstuf admin metadata sign --in PENDING --dry-run`, PyPI
//! repository-service-tuf 1.0.0b1) with carol's key; then RSTUF's CLI loads Conclave's root for
//! the next version (`rstuf admin metadata update --in ROOT --dry-run`) and Conclave signs that
//! pending root v2 against root v1. RSTUF's API and worker are containers, not on PyPI: the
//! pending files are written here in the API's response format
//! (`{"data": {"metadata": {"root": PENDING, "trusted_root": CURRENT}}}`).
//!
//! RSTUF's CLI signs root keys only from a PEM file (or a YubiKey): carol's key is made as an
//! encrypted PEM file and imported into her SoftHSM2 token, where the ceremony takes it as an
//! existing key (`existing = "use"`), so the same key signs through Conclave and through RSTUF.
//! The RSTUF CLI runs in its own virtualenv (`make rstuf-venv`; `$CONCLAVE_RSTUF_PYTHON`), driven
//! on a pseudo-terminal by tests/python/rstuf_cli.py.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use conclave::signer::Signer;

fn conclave() -> Command {
    Command::new(env!("CARGO_BIN_EXE_conclave"))
}

/// The RSTUF CLI's virtualenv python: `$CONCLAVE_RSTUF_PYTHON`, else `.venv-rstuf/bin/python`.
fn rstuf_python() -> PathBuf {
    let python = match std::env::var_os("CONCLAVE_RSTUF_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => common::manifest_dir().join(".venv-rstuf/bin/python"),
    };
    let check = "import repository_service_tuf.cli, pexpect; from importlib.metadata import version; \
                 v = version('repository-service-tuf'); assert v == '1.0.0b1', v; print(v)";
    let out = Command::new(&python).args(["-c", check]).output();
    match out {
        Ok(o) if o.status.success() => python,
        other => panic!(
            "the RSTUF CLI venv ({}) is missing or broken: {other:?}; run `make rstuf-venv`",
            python.display()
        ),
    }
}

struct Room {
    tmp: tempfile::TempDir,
    conf: PathBuf,
    pins: Vec<(String, String)>,
}

impl Room {
    fn dir(&self) -> &Path {
        self.tmp.path()
    }
    fn pin(&self, who: &str) -> String {
        self.pins
            .iter()
            .find(|(k, _)| k == who)
            .map(|(_, p)| p.clone())
            .unwrap()
    }
    fn pins_text(&self) -> String {
        self.pins
            .iter()
            .map(|(k, p)| format!("{k}={p}\n"))
            .collect()
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }
}

fn run(cmd: &mut Command, stdin: &str) -> common::Run {
    common::run_with_timeout(cmd, stdin.as_bytes(), Duration::from_secs(180))
}

/// Three SoftHSM2 tokens; carol's holds her key, imported from an encrypted PEM file
/// (`carol.pem`, password `carol-pass`) under the ceremony's label.
fn room() -> Room {
    let tmp = tempfile::tempdir().unwrap();
    let hsm = tmp.path().join("hsm");
    let out = run(
        conclave()
            .args(["token", "init-practice", "--dir"])
            .arg(&hsm)
            .args([
                "--keyholders",
                "alice,bob,carol",
                "--type",
                "none",
                "--json",
            ]),
        "",
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let v = out.json();
    let pins = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["keyholder"].as_str().unwrap().to_string(),
                t["pin"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let room = Room {
        conf: hsm.join("softhsm2.conf"),
        pins,
        tmp,
    };
    let keygen = "import sys\n\
from cryptography.hazmat.primitives.asymmetric import ec\n\
from cryptography.hazmat.primitives import serialization as s\n\
k = ec.generate_private_key(ec.SECP256R1())\n\
d = sys.argv[1]\n\
open(d + '/carol.der', 'wb').write(k.private_bytes(s.Encoding.DER, s.PrivateFormat.PKCS8, s.NoEncryption()))\n\
open(d + '/carol.pub.der', 'wb').write(k.public_key().public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo))\n\
open(d + '/carol.pem', 'wb').write(k.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.BestAvailableEncryption(b'carol-pass')))\n";
    let out = run(
        Command::new(common::python())
            .args(["-c", keygen])
            .arg(room.dir()),
        "",
    );
    assert_eq!(out.code(), 0, "{out:?}");
    for (ty, file) in [("privkey", "carol.der"), ("pubkey", "carol.pub.der")] {
        let out = run(
            Command::new("pkcs11-tool")
                .env("SOFTHSM2_CONF", &room.conf)
                .args(["--module", "/usr/lib/softhsm/libsofthsm2.so"])
                .args(["--token-label", "carol", "--login", "--pin"])
                .arg(room.pin("carol"))
                .arg("--write-object")
                .arg(room.path(file))
                .args(["--type", ty, "--id", "02"])
                .args(["--label", "conclave-bootstrap-rstuf"]),
            "",
        );
        assert_eq!(out.code(), 0, "importing carol's key: {out:?}");
    }
    std::fs::remove_file(room.path("carol.der")).unwrap();
    room
}

/// The registry's online key as RSTUF's CLI imports a PEM file: the key with its URI.
fn online_keys(ws: &Path) {
    let s = conclave::signer::software::SoftwareSigner::from_seed(
        conclave::tuf::key::Algorithm::EcdsaP256,
        &[7; 48],
    )
    .unwrap();
    let mut key = s.key().clone();
    let id = key.key_id();
    key.unrecognized.insert(
        conclave::tuf::rstuf::ONLINE_URI_FIELD.into(),
        format!("fn:{id}").into(),
    );
    std::fs::create_dir_all(ws.join("input")).unwrap();
    std::fs::write(
        ws.join("input/online-keys.json"),
        format!("{{\"online\": {}}}", key.to_value().to_pretty_json()),
    )
    .unwrap();
}

/// The shipped bootstrap-rstuf script, taking a key already on a token under the ceremony's
/// label (carol's) instead of generating one.
fn script(room: &Room) -> PathBuf {
    let text = std::fs::read_to_string(
        common::manifest_dir().join("ceremony-scripts/bootstrap-rstuf.toml"),
    )
    .unwrap()
    .replace(
        "with = { for = \"keyholders\" }",
        "with = { for = \"keyholders\", existing = \"use\" }",
    );
    assert!(text.contains("existing = \"use\""));
    let path = room.path("bootstrap-rstuf.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn ceremony(room: &Room, ws: &Path, extra: &str) -> common::Run {
    let answers = room.path("answers.toml");
    std::fs::write(
        &answers,
        format!(
            "practice = true\nacknowledgement = \"BAG-A1234567\"\n[people]\nadministrator = \"ada\"\nkeyholders = [\"alice\", \"bob\", \"carol\"]\nwitnesses = [\"wendy\"]\n\n[parameters]\nkey_type = \"ecdsa-p256\"\n{extra}\n"
        ),
    )
    .unwrap();
    let mut cmd = conclave();
    cmd.args(["ceremony", "run"])
        .arg(script(room))
        .arg("--workspace")
        .arg(ws)
        .arg("--answers")
        .arg(&answers)
        .arg("--pin-stdin")
        .env("SOFTHSM2_CONF", &room.conf);
    run(&mut cmd, &room.pins_text())
}

fn check(args: &[&Path]) -> common::Run {
    let args: Vec<&str> = args.iter().map(|p| p.to_str().unwrap()).collect();
    common::run_python("rstuf_check.py", &args, Duration::from_secs(60))
}

fn conclave_sign(
    room: &Room,
    pending: &Path,
    trusted: &Path,
    who: &str,
    out: &Path,
) -> common::Run {
    let mut cmd = conclave();
    cmd.args(["rstuf", "sign", "--pending"])
        .arg(pending)
        .arg("--trusted-root")
        .arg(trusted)
        .args(["--token", who, "--key", "conclave-bootstrap-rstuf"])
        .args(["--keyholder", who, "--pin-stdin", "--out"])
        .arg(out)
        .env("SOFTHSM2_CONF", &room.conf);
    run(&mut cmd, &format!("{}\n", room.pin(who)))
}

fn rstuf_cli(py: &Path, args: &[&str]) -> common::Run {
    let mut cmd = Command::new(py);
    cmd.arg(common::python_script("rstuf_cli.py")).args(args);
    run(&mut cmd, "")
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn write_json(path: &Path, v: &serde_json::Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

/// RSTUF's pending file for `root`, replacing `trusted_root` when given.
fn pending(path: &Path, root: &serde_json::Value, trusted: Option<&serde_json::Value>) {
    let mut metadata = serde_json::json!({ "root": root });
    if let Some(t) = trusted {
        metadata["trusted_root"] = t.clone();
    }
    write_json(
        path,
        &serde_json::json!({ "data": { "metadata": metadata } }),
    );
}

#[test]
fn an_rstuf_bootstrap_is_completed_and_updated_with_rstufs_own_cli() {
    let py = rstuf_python();
    let room = room();
    let ws = room.path("ws");
    online_keys(&ws);

    // The ceremony collects one root signature (alice's); RSTUF keeps root v1 pending.
    let out = ceremony(&room, &ws, "bootstrap_signatures = 1");
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout.contains("ceremony-payload.json: VALID (root v1 pending in RSTUF: 1 of 3 keys signed, threshold 2; RSTUF collects the rest)"),
        "{}",
        out.stdout
    );
    let export = ws.join("export");
    let payload = export.join("ceremony-payload.json");
    let py_check = check(&[Path::new("ceremony"), &payload, Path::new("1")]);
    assert_eq!(
        py_check.code(),
        0,
        "python-tuf refused the payload: {py_check:?}"
    );
    for rule in [
        "ok: timeout is 300",
        "ok: exactly one of bins and delegations",
        "ok: number_of_delegated_bins 256 is a power of two in 2..16384",
        "ok: that key is the same online key for the three roles",
        "ok: the online key carries x-rstuf-online-key-uri (fn:",
        "carries only x-rstuf-* fields",
        "ok: pending (below threshold)",
    ] {
        assert!(
            py_check.stdout.contains(rule),
            "{rule}: {}",
            py_check.stdout
        );
    }
    let payload_v = json(&payload);
    let root_v1 = payload_v["metadata"]["root"].clone();
    assert_eq!(
        json(&export.join("1.root.json"))["signed"],
        root_v1["signed"],
        "1.root.json is the payload's root"
    );

    // Distributed Asynchronous Signing of root v1: bob with Conclave, carol with RSTUF's CLI.
    let p1 = room.path("pending-v1.json");
    pending(&p1, &root_v1, None);
    let bob = room.path("sign-bob.json");
    let out = conclave_sign(&room, &p1, &export.join("1.root.json"), "bob", &bob);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout
            .contains("signatures by its own keys: 1 of 3 keys signed, threshold 2")
            && out.stdout.contains("root keys (threshold 2): alice ("),
        "{}",
        out.stdout
    );
    let carol = room.path("sign-carol.json");
    let pem = room.path("carol.pem");
    let cli = rstuf_cli(
        &py,
        &[
            "sign",
            p1.to_str().unwrap(),
            "carol",
            pem.to_str().unwrap(),
            "carol-pass",
            carol.to_str().unwrap(),
        ],
    );
    assert_eq!(cli.code(), 0, "rstuf admin metadata sign: {cli:?}");
    // RSTUF's CLI reviewed Conclave's root: names, threshold, the online key.
    for seen in [
        "Threshold: 2",
        "Version: 1",
        "alice",
        "Online",
        "1 signature missing",
    ] {
        assert!(cli.stdout.contains(seen), "{seen}: {}", cli.stdout);
    }
    let done = check(&[Path::new("signed"), &payload, &bob, &carol]);
    assert_eq!(done.code(), 0, "{done:?}");
    assert!(
        done.stdout.contains("ok: root v1 meets its threshold"),
        "{}",
        done.stdout
    );

    // Root v1 as RSTUF holds it once signed; a pending root already signed is refused.
    let mut full_v1 = root_v1.clone();
    for f in [&bob, &carol] {
        let sig = json(f)["signature"].clone();
        full_v1["signatures"].as_array_mut().unwrap().push(sig);
    }
    let full_v1_path = room.path("1.root.full.json");
    write_json(&full_v1_path, &full_v1);
    let p_done = room.path("pending-done.json");
    pending(&p_done, &full_v1, None);
    let out = conclave_sign(&room, &p_done, &full_v1_path, "alice", &room.path("x.json"));
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr
            .contains("already meets its thresholds; nothing to sign"),
        "{out:?}"
    );

    // RSTUF's CLI makes root v2 from Conclave's root v1 (carol signs there).
    let update = room.path("update-payload.json");
    let cli = rstuf_cli(
        &py,
        &[
            "update",
            full_v1_path.to_str().unwrap(),
            "carol",
            pem.to_str().unwrap(),
            "carol-pass",
            update.to_str().unwrap(),
        ],
    );
    assert_eq!(cli.code(), 0, "rstuf admin metadata update: {cli:?}");
    let up = check(&[Path::new("update"), &update, &full_v1_path]);
    assert_eq!(up.code(), 0, "{up:?}");
    // Conclave reads RSTUF's update payload.
    let review = run(conclave().args(["rstuf", "review"]).arg(&update), "");
    assert_eq!(review.code(), 0, "{review:?}");
    assert!(
        review.stdout.contains("RSTUF update payload") && review.stdout.contains("root v2"),
        "{review:?}"
    );

    // Pending root v2 against trusted root v1: alice signs with Conclave; the chain rule holds.
    let root_v2 = json(&update)["metadata"]["root"].clone();
    let p2 = room.path("pending-v2.json");
    pending(&p2, &root_v2, Some(&full_v1));
    let alice = room.path("sign-alice-v2.json");
    let out = conclave_sign(&room, &p2, &full_v1_path, "alice", &alice);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout
            .contains("no change against trusted root v1 but the version"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("signatures by the trusted root's keys: 1 of 3 keys signed, threshold 2"),
        "{}",
        out.stdout
    );
    let chain = check(&[Path::new("signed"), &p2, &alice]);
    assert_eq!(chain.code(), 0, "{chain:?}");
    assert!(
        chain
            .stdout
            .contains("meets the thresholds of trusted root v1 and its own"),
        "{}",
        chain.stdout
    );

    // A renamed key under the same key id (RSTUF's key ids do not hash the name) is shown as a
    // change, and a hostile name reaches the terminal escaped.
    let mut renamed = root_v2.clone();
    let first = renamed["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_string();
    renamed["signed"]["keys"][&first]["x-rstuf-key-name"] = "evil\u{1b}[2J\u{202e}evil".into();
    let p5 = room.path("pending-renamed.json");
    pending(&p5, &renamed, Some(&full_v1));
    let review = run(conclave().args(["rstuf", "review"]).arg(&p5), "");
    assert_eq!(review.code(), 0, "{review:?}");
    assert!(
        review.stdout.contains(&format!(
            "key evil\\x1b[2J\\u{{202e}}evil ({}) changed its fields under the same key id",
            &first[..16]
        )) && !review.stdout.contains('\u{1b}'),
        "{}",
        review.stdout
    );

    // Refusals name the file and the field, before any PIN.
    // A trusted_root that is not the appliance's root (another root v1 than the one it trusts).
    let mut other_v1 = full_v1.clone();
    other_v1["signed"]["expires"] = "2030-01-01T00:00:00Z".into();
    let p4 = room.path("pending-other-anchor.json");
    pending(&p4, &root_v2, Some(&other_v1));
    let out = conclave_sign(&room, &p4, &full_v1_path, "bob", &room.path("y.json"));
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr.contains(
            "$.data.metadata.trusted_root.signatures: the trusted root does not meet its own threshold"
        ),
        "{out:?}"
    );
    // A pending root v1 that is not the one this appliance's bootstrap exported.
    let v2_path = room.path("2.root.json");
    write_json(&v2_path, &root_v2);
    let out = conclave_sign(&room, &p1, &v2_path, "bob", &room.path("y.json"));
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr
            .contains("$.data.metadata.root: not the root this appliance trusts"),
        "{out:?}"
    );
    // A key field RSTUF's API would drop (the root would stay pending silently).
    let mut foreign = root_v2.clone();
    let keyid = foreign["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_string();
    foreign["signed"]["keys"][&keyid]["x-tuf-on-ci-keyowner"] = "@alice".into();
    let p3 = room.path("pending-foreign.json");
    pending(&p3, &foreign, Some(&full_v1));
    let out = conclave_sign(&room, &p3, &full_v1_path, "bob", &room.path("z.json"));
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "$.data.metadata.root.signed.keys.{keyid}.x-tuf-on-ci-keyowner: RSTUF's API drops key fields other than x-rstuf-*"
        )),
        "{out:?}"
    );
    assert!(!room.path("z.json").exists() && !room.path("y.json").exists());
}

#[test]
fn an_online_key_without_its_uri_is_refused_before_anything_is_signed() {
    let room = room();
    let ws = room.path("ws");
    // The online key without its URI: RSTUF's worker could not find its private key.
    let s = conclave::signer::software::SoftwareSigner::from_seed(
        conclave::tuf::key::Algorithm::EcdsaP256,
        &[7; 48],
    )
    .unwrap();
    std::fs::create_dir_all(ws.join("input")).unwrap();
    std::fs::write(
        ws.join("input/online-keys.json"),
        format!("{{\"online\": {}}}", s.key().to_value().to_pretty_json()),
    )
    .unwrap();
    let out = ceremony(&room, &ws, "");
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr
            .contains("x-rstuf-online-key-uri: the online key has no URI"),
        "{out:?}"
    );
    assert!(!ws.join("export/ceremony-payload.json").exists());
}

#[test]
fn practice_rstuf_ceremonies_bootstrap_refresh_and_rotate_with_update_payloads() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let out = run(
        conclave()
            .args([
                "rehearse",
                "--headless",
                "--script",
                "bootstrap-rstuf",
                "--workspace",
            ])
            .arg(&ws),
        "",
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let payload = ws.join("export/ceremony-payload.json");
    // Three keyholders, bootstrap_signatures left at 0: all three sign, root v1 is complete.
    let py_check = check(&[Path::new("ceremony"), &payload, Path::new("3")]);
    assert_eq!(py_check.code(), 0, "{py_check:?}");
    assert!(
        py_check.stdout.contains("ok: root meets its threshold")
            && py_check
                .stdout
                .contains("ok: the online key carries x-rstuf-online-key-uri (fn:"),
        "{}",
        py_check.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "conclave verify --trusted-root {0}/1.root.json --repo {0}: VALID",
            ws.join("export").display()
        )),
        "{}",
        out.stdout
    );

    // The update ceremonies in RSTUF's model, in the same workspace: each exports the next root
    // and its update-payload-vN.json (only root is loaded and signed: targets is RSTUF's).
    for (script, v) in [
        ("refresh-rstuf-expiry", 2),
        ("rotate-rstuf-online-key", 3),
        ("rotate-rstuf-root-keys", 4),
    ] {
        let out = run(
            conclave()
                .args(["rehearse", "--headless", "--script", script, "--workspace"])
                .arg(&ws),
            "",
        );
        assert_eq!(out.code(), 0, "{script}: {out:?}");
        assert!(
            out.stdout.contains(&format!("update-payload-v{v}.json"))
                && !out.stdout.contains("FAILED"),
            "{script}: {}",
            out.stdout
        );
        let payload = ws.join(format!("export/update-payload-v{v}.json"));
        let previous = ws.join(format!("export/{}.root.json", v - 1));
        let py_check = check(&[Path::new("update"), &payload, &previous]);
        assert_eq!(py_check.code(), 0, "{script}: {py_check:?}");
        let review = run(conclave().args(["rstuf", "review"]).arg(&payload), "");
        assert_eq!(review.code(), 0, "{review:?}");
        assert!(
            review.stdout.contains("root meets its thresholds"),
            "{}",
            review.stdout
        );
    }
    let v2 = json(&ws.join("export/2.root.json"));
    let v3 = json(&ws.join("export/3.root.json"));
    let online = |r: &serde_json::Value| r["signed"]["roles"]["timestamp"]["keyids"][0].clone();
    assert_ne!(online(&v2), online(&v3), "the online key was rotated");
    for role in ["targets", "snapshot"] {
        assert_eq!(
            v3["signed"]["roles"][role]["keyids"][0],
            online(&v3),
            "{role}"
        );
    }
    let v4 = std::fs::read_to_string(ws.join("export/4.root.json")).unwrap();
    assert!(
        v4.contains("\"x-rstuf-key-name\": \"dave\"") && !v4.contains("x-tuf-on-ci"),
        "{v4}"
    );
}

/// Root v1 from a partial bootstrap-rstuf (alice signs in the ceremony, bob with `conclave rstuf
/// sign`), then root v2 made by RSTUF's own CLI from it (`rstuf admin metadata update`, carol
/// signs there): RSTUF's pending file for v2 against trusted root v1, as its API serves it.
/// Returns (room, trusted root v1 file, pending file JSON).
fn pending_v2(py: &Path) -> (Room, PathBuf, serde_json::Value) {
    let room = room();
    let ws = room.path("ws");
    online_keys(&ws);
    let out = ceremony(&room, &ws, "bootstrap_signatures = 1");
    assert_eq!(out.code(), 0, "{out:?}");
    let export = ws.join("export");
    let root_v1 = json(&export.join("ceremony-payload.json"))["metadata"]["root"].clone();
    let p1 = room.path("pending-v1.json");
    pending(&p1, &root_v1, None);
    let bob = room.path("sign-bob.json");
    let out = conclave_sign(&room, &p1, &export.join("1.root.json"), "bob", &bob);
    assert_eq!(out.code(), 0, "{out:?}");
    let mut full_v1 = root_v1;
    let sig = json(&bob)["signature"].clone();
    full_v1["signatures"].as_array_mut().unwrap().push(sig);
    let v1 = room.path("1.root.full.json");
    write_json(&v1, &full_v1);
    let update = room.path("update-payload.json");
    let pem = room.path("carol.pem");
    let cli = rstuf_cli(
        py,
        &[
            "update",
            v1.to_str().unwrap(),
            "carol",
            pem.to_str().unwrap(),
            "carol-pass",
            update.to_str().unwrap(),
        ],
    );
    assert_eq!(cli.code(), 0, "rstuf admin metadata update: {cli:?}");
    let root_v2 = json(&update)["metadata"]["root"].clone();
    let pending_file =
        serde_json::json!({ "data": { "metadata": { "root": root_v2, "trusted_root": full_v1 } } });
    (room, v1, pending_file)
}

/// SHA-256 of a root's canonical signed bytes (the digest its ceremony signed).
fn signed_digest(root: &serde_json::Value) -> String {
    let md = conclave::tuf::metadata::Metadata::<conclave::tuf::metadata::Root>::from_bytes(
        &serde_json::to_vec(root).unwrap(),
    )
    .unwrap();
    hex::encode(md.signed_digest())
}

/// `conclave ceremony run` of the shipped sign-rstuf-pending-root script, headless, with
/// RSTUF's pending file and the root the room trusts (`anchor`) on the input media, that root
/// confirmed by `digest` (parameter trusted_root_sha256); alice, bob and carol present.
fn sign_pending_ceremony(
    room: &Room,
    ws: &Path,
    pending_file: &serde_json::Value,
    anchor: &serde_json::Value,
    digest: &str,
) -> common::Run {
    sign_pending_in(room, ws, pending_file, Some(anchor), digest)
}

/// [`sign_pending_ceremony`], the root the room trusts on the input media only when given
/// (otherwise the workspace's own export anchors it, or the digest alone for root v1).
fn sign_pending_in(
    room: &Room,
    ws: &Path,
    pending_file: &serde_json::Value,
    anchor: Option<&serde_json::Value>,
    digest: &str,
) -> common::Run {
    sign_pending_by(
        room,
        ws,
        pending_file,
        anchor,
        digest,
        &["alice", "bob", "carol"],
    )
}

/// [`sign_pending_in`] with `keyholders` present.
fn sign_pending_by(
    room: &Room,
    ws: &Path,
    pending_file: &serde_json::Value,
    anchor: Option<&serde_json::Value>,
    digest: &str,
    keyholders: &[&str],
) -> common::Run {
    std::fs::create_dir_all(ws.join("input")).unwrap();
    write_json(&ws.join("input/rstuf-pending.json"), pending_file);
    if let Some(anchor) = anchor {
        write_json(&ws.join("input/rstuf-trusted-root.json"), anchor);
    }
    let answers = room.path("answers-sign.toml");
    std::fs::write(
        &answers,
        format!("practice = true\nacknowledgement = \"BAG-R5TUF\"\n[people]\nadministrator = \"ada\"\nkeyholders = {keyholders:?}\nwitnesses = [\"wendy\"]\n[parameters]\ntrusted_root_sha256 = \"{digest}\"\n"),
    )
    .unwrap();
    let mut cmd = conclave();
    cmd.args(["ceremony", "run"])
        .arg(common::manifest_dir().join("ceremony-scripts/sign-rstuf-pending-root.toml"))
        .arg("--workspace")
        .arg(ws)
        .arg("--answers")
        .arg(&answers)
        .arg("--pin-stdin")
        .env("SOFTHSM2_CONF", &room.conf);
    let pins: String = keyholders
        .iter()
        .map(|k| format!("{k}={}\n", room.pin(k)))
        .collect();
    run(&mut cmd, &pins)
}

/// The pending root signed as a ceremony: the review against trusted root v1 before any PIN,
/// alice's and bob's tokens sign (carol signed in RSTUF's CLI: she is not asked), the
/// transcript records the import, the digest and both signatures and is sealed, anchored in
/// trusted root v1; each exported sign-payload is accepted by RSTUF's own CLI (root fully
/// signed with it) and python-tuf verifies root v2 by v1 and by itself with them.
#[test]
fn the_sign_rstuf_pending_root_ceremony_signs_what_rstuf_accepts() {
    let py = rstuf_python();
    let (room, v1, pending_file) = pending_v2(&py);
    let ws = room.path("ws-sign");
    let anchor = json(&v1);
    let out = sign_pending_ceremony(&room, &ws, &pending_file, &anchor, &signed_digest(&anchor));
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(!out.stdout.contains("FAILED"), "{}", out.stdout);

    let transcript = ws.join("sign-rstuf-pending-root-v1.transcript.jsonl");
    let text = std::fs::read_to_string(&transcript).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let details = |event: &str| -> Vec<serde_json::Value> {
        records
            .iter()
            .map(|r| r["details"].clone())
            .filter(|d| d["event"] == event)
            .collect()
    };
    let imported = details("pending-imported");
    assert_eq!(imported.len(), 1, "{text}");
    assert_eq!(imported[0]["name"], "rstuf-pending.json");
    let recorded: serde_json::Value =
        serde_json::from_str(imported[0]["file"].as_str().unwrap()).unwrap();
    assert_eq!(recorded, pending_file);
    let root_v2 = &pending_file["data"]["metadata"]["root"];
    let md = conclave::tuf::metadata::Metadata::<conclave::tuf::metadata::Root>::from_bytes(
        &serde_json::to_vec(root_v2).unwrap(),
    )
    .unwrap();
    let digest = hex::encode(md.signed_digest());
    assert_eq!(details("proposed")[0]["digests"]["root"], digest.as_str());
    assert_eq!(details("approved")[0]["digests"]["root"], digest.as_str());
    let signed = details("signed");
    let who: Vec<&str> = signed
        .iter()
        .map(|d| d["keyholder"].as_str().unwrap())
        .collect();
    assert_eq!(
        who,
        ["alice", "bob"],
        "carol signed in RSTUF already: {text}"
    );
    assert_eq!(details("sealed").len(), 1, "{text}");
    // The review the room saw: keys by name, the trusted root's threshold, the digest.
    let shown = &out.stdout;
    for want in [
        "trusted_root is the root this appliance trusts: rstuf-trusted-root.json (root v1",
        "trusted root v1 (signed bytes SHA-256",
        "root keys (threshold 2): alice (",
        digest.as_str(),
    ] {
        assert!(shown.contains(want), "{want}: {shown}");
    }

    // The auditor: anchored in trusted root v1.
    let r = run(
        conclave()
            .args(["transcript", "verify"])
            .arg(&transcript)
            .arg("--artifacts")
            .arg(ws.join("export"))
            .arg("--trusted-root")
            .arg(&v1),
        "",
    );
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(r.stdout.contains("VALID"), "{r:?}");

    // One sign-payload per signature.
    let mut payloads: Vec<PathBuf> = std::fs::read_dir(ws.join("export"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("sign-payload-v2-")
        })
        .collect();
    payloads.sort();
    assert_eq!(payloads.len(), 2, "{payloads:?}");
    let p2 = room.path("pending-v2.json");
    write_json(&p2, &pending_file);
    for (i, payload) in payloads.iter().enumerate() {
        let v = json(payload);
        assert_eq!(v["role"], "root", "{v}");
        // RSTUF's CLI: with this signature added (carol's is there already), root v2 meets
        // both thresholds by RSTUF's own verification.
        let out_p = room.path(&format!("pending-v2-with-{i}.json"));
        let cli = rstuf_cli(
            &py,
            &[
                "complete",
                p2.to_str().unwrap(),
                payload.to_str().unwrap(),
                out_p.to_str().unwrap(),
            ],
        );
        assert_eq!(
            cli.code(),
            0,
            "RSTUF's CLI on {}: {cli:?}",
            payload.display()
        );
        assert!(
            cli.stdout.contains("Metadata already fully signed"),
            "{}",
            cli.stdout
        );
    }
    let mut args: Vec<&Path> = vec![Path::new("signed"), &p2];
    args.extend(payloads.iter().map(PathBuf::as_path));
    let chain = check(&args);
    assert_eq!(chain.code(), 0, "{chain:?}");
    assert!(
        chain
            .stdout
            .contains("root v2 meets the thresholds of trusted root v1 and its own"),
        "{}",
        chain.stdout
    );
}

/// A pending root that does not chain (version 3 after trusted root v1) stops the ceremony at
/// the import step, naming file and field: no PIN, no signature, nothing exported.
#[test]
fn a_pending_root_that_does_not_chain_is_refused_before_any_pin() {
    let py = rstuf_python();
    let (room, v1, mut pending_file) = pending_v2(&py);
    pending_file["data"]["metadata"]["root"]["signed"]["version"] = 3.into();
    let ws = room.path("ws-bad");
    let anchor = json(&v1);
    let out = sign_pending_ceremony(&room, &ws, &pending_file, &anchor, &signed_digest(&anchor));
    assert_ne!(out.code(), 0, "{out:?}");
    let all = format!("{}{}", out.stdout, out.stderr);
    for want in [
        "rstuf-pending.json: $.data.metadata.trusted_root.signed.version: 1 is not the version before the pending root's 3",
        "no PIN was asked",
    ] {
        assert!(all.contains(want), "missing {want:?} in {out:?}");
    }
    let text = std::fs::read_to_string(ws.join("sign-rstuf-pending-root-v1.transcript.jsonl"))
        .unwrap_or_default();
    for event in ["\"event\":\"pending-imported\"", "\"event\":\"signed\""] {
        assert!(!text.contains(event), "{event} recorded: {text}");
    }
    let exported = std::fs::read_dir(ws.join("export"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(exported, 0, "nothing is exported");
}

/// Nothing signed, nothing exported: the transcript has no pending-imported or signed record.
fn nothing_signed(ws: &Path) {
    let text = std::fs::read_to_string(ws.join("sign-rstuf-pending-root-v1.transcript.jsonl"))
        .unwrap_or_default();
    for event in ["\"event\":\"pending-imported\"", "\"event\":\"signed\""] {
        assert!(!text.contains(event), "{event} recorded: {text}");
    }
    let exported = std::fs::read_dir(ws.join("export"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(exported, 0, "nothing is exported");
}

/// The connected side (RSTUF's API) is not trusted for the anchor: a `trusted_root` that lists
/// the real keyholders' keys plus two keys of the attacker's, named alice and bob (meeting the
/// threshold by themselves) is refused at import, before any PIN, because it is not the root the room
/// confirmed by digest. So are a trusted root file the room did not confirm (wrong digest)
/// and a ceremony without one.
#[test]
fn a_trusted_root_from_the_connected_side_is_not_an_anchor() {
    use common::builders::TestKey;
    let py = rstuf_python();
    let (room, v1, mut pending_file) = pending_v2(&py);
    let anchor = json(&v1);
    let digest = signed_digest(&anchor);
    // The attacker's trusted root v1: the real keys and threshold, plus m1 and m2 as root keys,
    // signed by m1 and m2 only (2 of threshold 2: it meets its own threshold).
    let real = pending_file.clone();
    let (m1, m2) = (TestKey::ed25519(201), TestKey::ed25519(202));
    let mut forged = anchor.clone();
    for (m, name) in [(&m1, "alice"), (&m2, "bob")] {
        // Named as the real keyholders, as an attacker would.
        let mut key = m.json.clone();
        key["x-rstuf-key-name"] = name.into();
        forged["signed"]["keys"][&m.id] = key;
        forged["signed"]["roles"]["root"]["keyids"]
            .as_array_mut()
            .unwrap()
            .push(m.id.clone().into());
    }
    let sigs: Vec<serde_json::Value> = [&m1, &m2]
        .iter()
        .map(|m| serde_json::json!({"keyid": m.id, "sig": m.sign_hex(&forged["signed"])}))
        .collect();
    forged["signatures"] = sigs.into();
    pending_file["data"]["metadata"]["trusted_root"] = forged;
    let ws = room.path("ws-forged");
    let out = sign_pending_ceremony(&room, &ws, &pending_file, &anchor, &digest);
    assert_ne!(
        out.code(),
        0,
        "a forged trusted_root was signed against: {out:?}"
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    for want in [
        "rstuf-pending.json: $.data.metadata.trusted_root: root v1 (signed bytes SHA-256",
        "is not the root this appliance trusts, rstuf-trusted-root.json (root v1",
        "no PIN was asked",
    ] {
        assert!(all.contains(want), "missing {want:?} in {out:?}");
    }
    nothing_signed(&ws);

    // The real pending file, but the room's digest is not the anchor file's.
    let ws = room.path("ws-wrong-digest");
    let out = sign_pending_ceremony(&room, &ws, &real, &anchor, &"0".repeat(64));
    assert_ne!(out.code(), 0, "{out:?}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains(&format!(
            "rstuf-trusted-root.json: $.signed: SHA-256 of the signed bytes is {digest}, not"
        )) && all.contains("no PIN was asked"),
        "{out:?}"
    );
    nothing_signed(&ws);
    // No digest confirmed by the room.
    let ws = room.path("ws-no-digest");
    let out = sign_pending_ceremony(&room, &ws, &real, &anchor, "");
    assert_ne!(out.code(), 0, "{out:?}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("parameter trusted_root_sha256: empty"),
        "{out:?}"
    );
    nothing_signed(&ws);
}

/// A signature already in the pending root counts only if it verifies: carol's, altered by
/// the connected side (one bit flipped: well-formed, invalid), is shown as invalid in the review, carol is asked and signs, and her exported payload
/// verifies (python-tuf) and with alice's and bob's meets both thresholds.
#[test]
fn an_invalid_signature_in_the_pending_root_does_not_count() {
    let py = rstuf_python();
    let (room, v1, mut pending_file) = pending_v2(&py);
    let root = &mut pending_file["data"]["metadata"]["root"];
    let sigs = root["signatures"].as_array_mut().unwrap();
    assert_eq!(
        sigs.len(),
        1,
        "carol's signature from RSTUF's CLI: {sigs:?}"
    );
    // A well-formed signature that does not verify under carol's key: one bit flipped.
    let mut raw = hex::decode(sigs[0]["sig"].as_str().unwrap()).unwrap();
    let n = raw.len();
    raw[n - 2] ^= 1;
    sigs[0]["sig"] = hex::encode(raw).into();
    let anchor = json(&v1);
    let ws = room.path("ws-invalid");
    let out = sign_pending_ceremony(&room, &ws, &pending_file, &anchor, &signed_digest(&anchor));
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout.contains("signature by carol (") && out.stdout.contains("is INVALID ("),
        "{}",
        out.stdout
    );
    let text =
        std::fs::read_to_string(ws.join("sign-rstuf-pending-root-v1.transcript.jsonl")).unwrap();
    let who: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["details"]["event"] == "signed")
        .map(|r| r["details"]["keyholder"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(who, ["alice", "bob", "carol"], "{text}");
    let mut payloads: Vec<PathBuf> = std::fs::read_dir(ws.join("export"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().contains("sign-payload-v2-"))
        .collect();
    payloads.sort();
    assert_eq!(payloads.len(), 3, "{payloads:?}");
    let p2 = room.path("pending-v2-invalid.json");
    write_json(&p2, &pending_file);
    let mut args: Vec<&Path> = vec![Path::new("signed"), &p2];
    args.extend(payloads.iter().map(PathBuf::as_path));
    let chain = check(&args);
    assert_eq!(chain.code(), 0, "{chain:?}");
    assert!(
        chain.stdout.contains("signature by carol verifies"),
        "{}",
        chain.stdout
    );
}

/// bootstrap-rstuf with RSTUF's custom delegations (parameter `delegations`) instead of hash
/// bins: ceremony-payload.json carries exactly `delegations` (python-tuf checks every rule of
/// the payload), RSTUF's CLI models and python-tuf's `Delegations` load it and it round-trips;
/// a delegation key with a field RSTUF's API drops is refused, naming the parameter and field.
#[test]
fn a_bootstrap_with_custom_delegations_writes_what_rstuf_reads() {
    use common::builders::TestKey;
    let py = rstuf_python();
    let room = room();
    let ws = room.path("ws-delegations");
    online_keys(&ws);
    let k = TestKey::ed25519(42);
    let mut key = k.json.clone();
    key["x-rstuf-key-name"] = "project-a-key".into();
    let d = serde_json::json!({
        "keys": { k.id.clone(): key },
        "roles": [{
            "name": "project-a", "keyids": [k.id.clone()], "threshold": 1,
            "terminating": true, "paths": ["project-a/*"], "x-rstuf-expire-policy": 30
        }]
    });
    let out = ceremony(
        &room,
        &ws,
        &format!("bootstrap_signatures = 1\ndelegations = '{d}'"),
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let payload = ws.join("export/ceremony-payload.json");
    let p = json(&payload);
    let roles = &p["settings"]["roles"];
    assert!(roles.get("bins").is_none(), "{p}");
    assert_eq!(roles["delegations"], d);
    // The room saw them on the review.
    assert!(
        out.stdout.contains(
            "custom delegation project-a: paths project-a/*, threshold 1 of project-a-key"
        ),
        "{}",
        out.stdout
    );
    let chk = check(&[Path::new("ceremony"), &payload, Path::new("1")]);
    assert_eq!(chk.code(), 0, "{chk:?}");
    assert!(
        chk.stdout
            .contains("ok: exactly one of bins and delegations"),
        "{}",
        chk.stdout
    );
    let cli = rstuf_cli(&py, &["payload", payload.to_str().unwrap()]);
    assert_eq!(cli.code(), 0, "{cli:?}");
    assert!(
        cli.stdout
            .contains("RSTUF's models load it; delegated roles: project-a"),
        "{}",
        cli.stdout
    );

    // A delegation key with a field RSTUF's API would drop.
    let mut bad = d.clone();
    bad["keys"][&k.id]["x-tuf-on-ci-keyowner"] = "@alice".into();
    let ws = room.path("ws-delegations-bad");
    online_keys(&ws);
    let out = ceremony(
        &room,
        &ws,
        &format!("bootstrap_signatures = 1\ndelegations = '{bad}'"),
    );
    assert_ne!(out.code(), 0, "{out:?}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains(&format!(
            "parameter delegations: $.keys.{}.x-tuf-on-ci-keyowner: RSTUF's API drops key fields other than x-rstuf-*",
            k.id
        )),
        "{out:?}"
    );
    assert!(!ws.join("export/ceremony-payload.json").exists());
}

/// The sign payloads a sign-rstuf-pending-root ceremony exported for root `version`.
fn sign_payloads(ws: &Path, version: u64) -> Vec<PathBuf> {
    let prefix = format!("sign-payload-v{version}-");
    let mut payloads: Vec<PathBuf> = std::fs::read_dir(ws.join("export"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&prefix)
        })
        .collect();
    payloads.sort();
    payloads
}

/// A partial-threshold bootstrap (alice signs root v1 in the ceremony) leaves root v1 pending
/// in RSTUF, whose pending file then has no trusted_root: the sign-rstuf-pending-root ceremony
/// signs it in the bootstrap's workspace, anchored in the digest the room confirms and the
/// workspace's own export of root v1 (a digest that is not that root's is refused before any
/// PIN, naming both hashes); bob and carol sign (alice's signature already counts), and RSTUF's
/// own CLI (`rstuf admin metadata sign --in PENDING --dry-run`) finds root v1 fully signed by
/// itself with either sign payload added.
#[test]
fn a_pending_root_v1_is_signed_as_a_ceremony_anchored_in_its_digest_and_the_bootstrap() {
    let py = rstuf_python();
    let room = room();
    let ws = room.path("ws");
    online_keys(&ws);
    let out = ceremony(&room, &ws, "bootstrap_signatures = 1");
    assert_eq!(out.code(), 0, "{out:?}");
    let root_v1 = json(&ws.join("export/ceremony-payload.json"))["metadata"]["root"].clone();
    let pending_file = serde_json::json!({ "data": { "metadata": { "root": root_v1 } } });
    let digest = signed_digest(&root_v1);

    // A digest that is not the workspace's root v1: refused, both hashes named, no PIN.
    let ws_bad = room.path("ws-bad-digest");
    std::fs::create_dir_all(ws_bad.join("export")).unwrap();
    std::fs::copy(
        ws.join("export/1.root.json"),
        ws_bad.join("export/1.root.json"),
    )
    .unwrap();
    let wrong = "ab".repeat(32);
    let out = sign_pending_in(&room, &ws_bad, &pending_file, None, &wrong);
    assert_ne!(out.code(), 0, "{out:?}");
    let all = format!("{}{}", out.stdout, out.stderr);
    for want in [
        format!(
            "parameter trusted_root_sha256 ({wrong}) is not the SHA-256 of the signed bytes of this workspace's export/1.root.json (root v1, {digest})"
        ),
        "no PIN was asked".to_string(),
    ] {
        assert!(all.contains(&want), "{want}: {all}");
    }
    no_signature(&ws_bad, 1);

    let out = sign_pending_in(&room, &ws, &pending_file, None, &digest);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(!out.stdout.contains("FAILED"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("pending root v1 (signed bytes SHA-256 {digest}) is the root v1 the room bootstrapped, by parameter trusted_root_sha256 and export/1.root.json")),
        "{}",
        out.stdout
    );
    let payloads = sign_payloads(&ws, 1);
    assert_eq!(payloads.len(), 2, "bob and carol sign: {payloads:?}");
    let p1 = room.path("pending-v1.json");
    write_json(&p1, &pending_file);
    for (i, payload) in payloads.iter().enumerate() {
        let out_p = room.path(&format!("pending-v1-with-{i}.json"));
        let cli = rstuf_cli(
            &py,
            &[
                "complete",
                p1.to_str().unwrap(),
                payload.to_str().unwrap(),
                out_p.to_str().unwrap(),
            ],
        );
        assert_eq!(
            cli.code(),
            0,
            "RSTUF's CLI on {}: {cli:?}",
            payload.display()
        );
        assert!(
            cli.stdout.contains("Metadata already fully signed"),
            "{}",
            cli.stdout
        );
    }
}

/// The root the room trusts can come from the workspace's own export (the ceremony that wrote
/// it here) instead of the input media: pending root v2 is signed in the bootstrap's workspace
/// with neither the file nor the digest. When the input media's root and the workspace's are
/// both there and differ, the ceremony refuses before any PIN, naming both hashes.
#[test]
fn the_anchor_comes_from_the_workspace_and_must_agree_with_the_input_media() {
    let py = rstuf_python();
    let (room, v1, pending_file) = pending_v2(&py);
    let anchor = json(&v1);
    let digest = signed_digest(&anchor);

    // A workspace whose export holds another root v1 than the input media's.
    let ws_bad = room.path("ws-disagree");
    std::fs::create_dir_all(ws_bad.join("export")).unwrap();
    let mut other = anchor.clone();
    other["signed"]["expires"] = "2031-01-01T00:00:00Z".into();
    let other_digest = signed_digest(&other);
    write_json(&ws_bad.join("export/1.root.json"), &other);
    let out = sign_pending_in(&room, &ws_bad, &pending_file, Some(&anchor), &digest);
    assert_ne!(out.code(), 0, "{out:?}");
    let all = format!("{}{}", out.stdout, out.stderr);
    for want in [
        format!(
            "the input media's rstuf-trusted-root.json (root v1, signed bytes SHA-256 {digest}) and this workspace's export/1.root.json (root v1, signed bytes SHA-256 {other_digest}) are not the same root"
        ),
        "no PIN was asked".to_string(),
    ] {
        assert!(all.contains(&want), "{want}: {all}");
    }
    no_signature(&ws_bad, 2);

    // The bootstrap's own workspace: anchored in its export, nothing on the input media.
    let ws = room.path("ws");
    let out = sign_pending_in(&room, &ws, &pending_file, None, "");
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(!out.stdout.contains("FAILED"), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "trusted_root is the root this appliance trusts: export/1.root.json (root v1"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(sign_payloads(&ws, 2).len(), 2);
}

/// No signature recorded, no sign payload exported for root `version` (the workspace's own
/// export may hold roots).
fn no_signature(ws: &Path, version: u64) {
    let text = std::fs::read_to_string(ws.join("sign-rstuf-pending-root-v1.transcript.jsonl"))
        .unwrap_or_default();
    assert!(!text.contains("\"event\":\"signed\""), "{text}");
    assert!(sign_payloads(ws, version).is_empty());
}

/// ceremony-payload.json's `settings` (the online roles' expirations, the hash bins) carry no
/// TUF signature: the bootstrap records them in its sealed transcript, and the auditor's
/// `conclave transcript verify --artifacts` compares the exported file's with them. An attacker
/// who edits the payload on its way to the connected machine can recompute `SHA256SUMS` (not
/// signed, not in the seal) but not the seal (the keyholders' root keys sign it): the verdict
/// is INVALID and names the field.
#[test]
fn an_edited_payload_setting_is_named_by_the_auditor() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let out = run(
        conclave()
            .args([
                "rehearse",
                "--headless",
                "--script",
                "bootstrap-rstuf",
                "--workspace",
            ])
            .arg(&ws),
        "",
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout
            .contains("the sealed transcript records them): expiration days: timestamp 1,"),
        "{}",
        out.stdout
    );
    let export = ws.join("export");
    let transcript = ws.join("bootstrap-rstuf.transcript.jsonl");
    let payload = export.join("ceremony-payload.json");
    let original = json(&payload);
    let text = std::fs::read_to_string(&transcript).unwrap();
    let exported: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["action"] == "exported")
        .unwrap();
    assert_eq!(
        exported["details"]["rstuf_settings"], original["settings"],
        "the export record keeps the payload's settings"
    );
    let verify = || {
        run(
            conclave()
                .args(["transcript", "verify"])
                .arg(&transcript)
                .arg("--artifacts")
                .arg(&export)
                .arg("--trusted-root")
                .arg(export.join("1.root.json")),
            "",
        )
    };
    let honest = verify();
    assert_eq!(honest.code(), 0, "{honest:?}");
    assert!(
        honest.stdout.contains("Verdict: VALID"),
        "{}",
        honest.stdout
    );

    // The replay checks the recorded settings against the parameters the payload was built
    // with; a transcript written before they were recorded (no `rstuf_settings`) still replays.
    use conclave::ceremony::conformance::check;
    use conclave::transcript::record::Record;
    let records: Vec<Record> = text
        .lines()
        .map(|l| Record::parse_line(l.as_bytes()).unwrap())
        .collect();
    let at = records.iter().position(|r| r.action == "exported").unwrap();
    let with_details = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut records = records.clone();
        let mut d: serde_json::Value =
            serde_json::from_slice(&records[at].details.canonical_bytes()).unwrap();
        edit(&mut d);
        records[at].details =
            conclave::tuf::canonical::Value::parse(&serde_json::to_vec(&d).unwrap()).unwrap();
        check(&records)
    };
    assert!(!check(&records).failed(), "{}", check(&records).line());
    let old = with_details(&|d| {
        d.as_object_mut().unwrap().remove("rstuf_settings");
    });
    assert!(!old.failed(), "{}", old.line());
    let lied = with_details(&|d| {
        d["rstuf_settings"]["roles"]["timestamp"]["expiration"] = 365.into();
    });
    assert!(
        lied.failed()
            && lied.line().contains(
                "the RSTUF settings recorded at the export differ from the ones ceremony-payload.json was built with: settings.roles.timestamp.expiration is 365 in the record, 1 in the parameters"
            ),
        "{}",
        lied.line()
    );

    // The attack: timestamp's expiration from 1 day to 365, SHA256SUMS recomputed.
    let mut forged = original.clone();
    forged["settings"]["roles"]["timestamp"]["expiration"] = 365.into();
    write_json(&payload, &forged);
    use sha2::Digest;
    let sums: String = std::fs::read_to_string(export.join("SHA256SUMS"))
        .unwrap()
        .lines()
        .map(|l| {
            let (_, name) = l.split_once("  ").unwrap();
            let bytes = std::fs::read(export.join(name)).unwrap();
            format!("{}  {name}\n", hex::encode(sha2::Sha256::digest(&bytes)))
        })
        .collect();
    std::fs::write(export.join("SHA256SUMS"), sums).unwrap();
    let r = verify();
    assert_eq!(r.code(), 1, "{r:?}");
    assert!(
        r.stdout.contains("Verdict: INVALID: ") && r.stdout.contains(
            "ceremony-payload.json: settings.roles.timestamp.expiration is 365 in the file, 1 in the sealed transcript"
        ),
        "{}",
        r.stdout
    );
    // Settings the sealed transcript does not have, the rest of the file unchanged.
    let mut forged = original.clone();
    forged["settings"]["roles"]["bins"]["number_of_delegated_bins"] = 16384.into();
    write_json(&payload, &forged);
    let r = verify();
    assert_eq!(r.code(), 1, "{r:?}");
    assert!(
        r.stdout.contains(
            "ceremony-payload.json: settings.roles.bins.number_of_delegated_bins is 16384 in the file, 256 in the sealed transcript"
        ),
        "{}",
        r.stdout
    );
}

/// Run again, the same ceremony is reported, never held twice: after sign-rstuf-pending-root
/// signed RSTUF's pending root v1 with bob (alice signed at the bootstrap), the same command
/// (the same pending file on the input media, the same keyholders) reports that sealed
/// ceremony and its checks and signs nothing (no second transcript, no other payload); the
/// same pending file with another keyholder present (carol) is a ceremony of its own, and she
/// signs. (`tests/faults.rs` cuts the ceremony at every point.)
#[test]
fn a_signed_pending_root_is_reported_again_and_other_keyholders_sign_in_a_ceremony_of_their_own() {
    let room = room();
    let ws = room.path("ws");
    online_keys(&ws);
    let out = ceremony(&room, &ws, "bootstrap_signatures = 1");
    assert_eq!(out.code(), 0, "{out:?}");
    let root_v1 = json(&ws.join("export/ceremony-payload.json"))["metadata"]["root"].clone();
    let pending_file = serde_json::json!({ "data": { "metadata": { "root": root_v1 } } });
    let digest = signed_digest(&root_v1);
    let first = ws.join("sign-rstuf-pending-root-v1.transcript.jsonl");
    let second = ws.join("sign-rstuf-pending-root-v2.transcript.jsonl");

    let out = sign_pending_by(&room, &ws, &pending_file, None, &digest, &["bob"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let signed = std::fs::read(&first).unwrap();
    assert_eq!(sign_payloads(&ws, 1).len(), 1);

    let again = sign_pending_by(&room, &ws, &pending_file, None, &digest, &["bob"]);
    assert_eq!(again.code(), 0, "{again:?}");
    assert!(
        again
            .stdout
            .contains("this ceremony was already complete and sealed; nothing was changed")
            && again.stdout.contains(": VALID")
            && !again.stdout.contains("FAILED"),
        "{}",
        again.stdout
    );
    assert!(!second.exists(), "no second ceremony: {again:?}");
    assert_eq!(
        std::fs::read(&first).unwrap(),
        signed,
        "the transcript as it was"
    );
    assert_eq!(sign_payloads(&ws, 1).len(), 1);

    let carol = sign_pending_by(&room, &ws, &pending_file, None, &digest, &["carol"]);
    assert_eq!(carol.code(), 0, "{carol:?}");
    let text = std::fs::read_to_string(&second).unwrap();
    assert!(
        text.contains("\"event\":\"signed\"") && text.contains("\"keyholder\":\"carol\""),
        "{text}"
    );
    assert_eq!(sign_payloads(&ws, 1).len(), 2, "bob's and carol's");
}
