//! The device-profile test bench: `tests/pkcs11-profile/` (a PKCS#11 module that forwards to
//! SoftHSM2 and imposes another vendor's documented behaviour, see its `src/lib.rs` and
//! docs/hsm.md), built once per test binary into `target/pkcs11-profile/`, and SoftHSM2 tokens
//! made for it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use conclave::tuf::edit::{RoleKeys, new_root};
use conclave::tuf::key::Key;
use conclave::tuf::metadata::{Metadata, RoleType};
use time::macros::datetime;

use super::{Run, manifest_dir, run_with_timeout};

/// SoftHSM2, the module every profile wraps.
pub const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TIMEOUT: Duration = Duration::from_secs(120);

/// Build the profile module (cargo's own lock makes parallel test binaries wait for one
/// build) and return its path.
pub fn profile_module() -> &'static Path {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE.get_or_init(|| {
        assert!(
            Path::new(SOFTHSM).is_file(),
            "{SOFTHSM} missing: install the Debian package softhsm2 (make deb-deps)"
        );
        let root = manifest_dir();
        // The same place as `make pkcs11-profile`.
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), PathBuf::from)
            .join("pkcs11-profile");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(&cargo)
            .args([
                "build",
                "--offline",
                "--locked",
                "--quiet",
                "--manifest-path",
            ])
            .arg(root.join("tests/pkcs11-profile/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
        assert!(
            out.status.success(),
            "building tests/pkcs11-profile failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let so = target.join("debug").join("libconclave_pkcs11_profile.so");
        assert!(so.is_file(), "{} was not built", so.display());
        so
    })
}

/// Tokens in a temporary directory, seen through the profile module: SoftHSM2 tokens made by
/// `conclave token init-practice` ([`Bench::new`]) or kryoptic tokens ([`Bench::over_kryoptic`]),
/// no keys.
pub struct Bench {
    _tmp: tempfile::TempDir,
    /// The temporary directory.
    pub root: PathBuf,
    /// The backing module's configuration (softhsm2.conf or kryoptic.conf).
    pub conf: PathBuf,
    /// (label, user PIN) of each token.
    pub tokens: Vec<(String, String)>,
    /// Environment for every conclave run (the profile and its settings).
    pub env: Vec<(String, String)>,
}

impl Bench {
    /// Tokens labelled `labels` (comma-separated) and the profile `profile` over all of them.
    pub fn new(labels: &str, profile: &str) -> Bench {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let dir = root.join("practice");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_conclave"));
        cmd.args(["token", "init-practice", "--json", "--type", "none"])
            .args(["--module", SOFTHSM, "--keyholders", labels])
            .arg("--dir")
            .arg(&dir)
            .env_remove("SOFTHSM2_CONF");
        let run = run_with_timeout(&mut cmd, b"", TIMEOUT);
        assert_eq!(run.code(), 0, "init-practice failed: {run:?}");
        let (conf, tokens) = practice_tokens(&run);
        Bench::with(
            tmp,
            ("SOFTHSM2_CONF", conf),
            SOFTHSM.into(),
            tokens,
            profile,
        )
    }

    /// kryoptic tokens labelled `labels` (comma-separated) and the profile `profile` over all
    /// of them: the profile module wraps kryoptic instead of SoftHSM2.
    pub fn over_kryoptic(labels: &str, profile: &str) -> Bench {
        let module = kryoptic_module();
        let tmp = tempfile::tempdir().unwrap();
        let labels: Vec<&str> = labels.split(',').collect();
        let (conf, tokens) = kryoptic_tokens(tmp.path(), &module, &labels);
        Bench::with(tmp, ("KRYOPTIC_CONF", conf), module, tokens, profile)
    }

    /// The bench over tokens of the module `target` (configured by the variable `conf`).
    fn with(
        tmp: tempfile::TempDir,
        conf: (&str, PathBuf),
        target: String,
        tokens: Vec<(String, String)>,
        profile: &str,
    ) -> Bench {
        let root = tmp.path().to_path_buf();
        let pins = tokens
            .iter()
            .map(|(l, p)| format!("{l}={p}"))
            .collect::<Vec<_>>()
            .join(",");
        let state = root.join("profile-state");
        std::fs::create_dir_all(&state).unwrap();
        let env = vec![
            (conf.0.into(), conf.1.display().to_string()),
            ("CONCLAVE_PROFILE".into(), profile.into()),
            ("CONCLAVE_PROFILE_TARGET".into(), target),
            ("CONCLAVE_PROFILE_PINS".into(), pins),
            ("CONCLAVE_PROFILE_STATE".into(), state.display().to_string()),
            (
                "CONCLAVE_PROFILE_REMOVED".into(),
                root.join("removed").display().to_string(),
            ),
        ];
        Bench {
            _tmp: tmp,
            root,
            conf: conf.1,
            tokens,
            env,
        }
    }

    /// The profile module's path as a string.
    pub fn module(&self) -> &'static str {
        profile_module().to_str().unwrap()
    }

    /// Set (or replace) an environment variable for later runs.
    pub fn set(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    /// The user PIN of the token labelled `label` (its SoftHSM2 label).
    pub fn pin(&self, label: &str) -> String {
        self.tokens
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("no token {label}"))
    }

    /// Pull (true) or put back (false) the token whose SoftHSM2 label is `label`.
    pub fn pull(&self, label: &str, pulled: bool) {
        let path = self.root.join("removed");
        let mut lines: Vec<String> = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l != label)
            .map(str::to_string)
            .collect();
        if pulled {
            lines.push(label.into());
        }
        std::fs::write(&path, lines.join("\n")).unwrap();
    }

    /// Run conclave with `--module` set to the profile module when `args` contains `MODULE`.
    /// The appliance's configuration (`CONCLAVE_CONFIG`) names the profile module, as on an
    /// appliance that uses it: an answers file may name only a configured module (or one in the
    /// image's module directories), never one from elsewhere.
    pub fn conclave(&self, args: &[&str], stdin: &str) -> Run {
        let module = self.module();
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "MODULE" { module } else { a })
            .collect();
        let config = self.root.join("appliance-config.toml");
        std::fs::write(&config, format!("[pkcs11]\nmodule = \"{module}\"\n")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_conclave"));
        cmd.args(&args)
            .env_remove("SOFTHSM2_CONF")
            .env("CONCLAVE_CONFIG", &config)
            .current_dir(&self.root);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        run_with_timeout(&mut cmd, stdin.as_bytes(), TIMEOUT)
    }
}

/// The SoftHSM2 configuration and each token's (label, user PIN) that `conclave token
/// init-practice --json` reported.
pub fn practice_tokens(run: &Run) -> (PathBuf, Vec<(String, String)>) {
    let v = run.json();
    let tokens = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["label"].as_str().unwrap().to_string(),
                t["pin"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (PathBuf::from(v["conf"].as_str().unwrap()), tokens)
}

/// A root whose every role is `keys` (threshold 1), written to `dir/root.json`.
pub fn root_file(dir: &Path, keys: &[Key]) -> PathBuf {
    let roles: Vec<RoleKeys> = [
        RoleType::Root,
        RoleType::Targets,
        RoleType::Snapshot,
        RoleType::Timestamp,
    ]
    .into_iter()
    .map(|role| RoleKeys {
        role,
        keys: keys.to_vec(),
        threshold: 1,
    })
    .collect();
    let md = Metadata::new(new_root(&roles, datetime!(2036-01-01 0:00 UTC)).unwrap());
    let path = dir.join("root.json");
    std::fs::write(&path, md.to_file_bytes()).unwrap();
    path
}

/// python-tuf 7.0.1 accepts the root as signed by its own root keys.
pub fn python_accepts(root: &Path) {
    let script = "import sys\n\
from tuf.api.metadata import Metadata, Root\n\
md = Metadata[Root].from_file(sys.argv[1])\n\
md.signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)\n\
print('python-tuf: ok')\n";
    let mut cmd = Command::new(super::python());
    cmd.args(["-c", script]).arg(root);
    let run = run_with_timeout(&mut cmd, b"", Duration::from_secs(60));
    assert_eq!(
        run.code(),
        0,
        "python-tuf rejects {}: {run:?}",
        root.display()
    );
}

/// python-tuf 7.0.1 verifies the signature of every root key on the root, each on its own (the
/// threshold of [`root_file`]'s roots is 1, so [`python_accepts`] alone would pass with one good
/// signature among several key types).
pub fn python_accepts_every_key(root: &Path) {
    let script = "import sys\n\
from tuf.api.metadata import Metadata, Root\n\
md = Metadata[Root].from_file(sys.argv[1])\n\
r = md.signed.get_verification_result(Root.type, md.signed_bytes, md.signatures)\n\
keys = set(md.signed.roles[Root.type].keyids)\n\
assert set(r.signed) == keys, ('not verified', sorted(keys - set(r.signed)))\n\
print('python-tuf: every key ok')\n";
    let mut cmd = Command::new(super::python());
    cmd.args(["-c", script]).arg(root);
    let run = run_with_timeout(&mut cmd, b"", Duration::from_secs(60));
    assert_eq!(
        run.code(),
        0,
        "python-tuf does not verify every key's signature on {}: {run:?}",
        root.display()
    );
}

/// A workspace `dir/ws_name` for `conclave ceremony run bootstrap-root` (the online keys on the
/// input media) and its answers file (keyholders alice, bob, carol; `module`; `key_type`; for
/// P-384 keys the clients the registry accepts losing, as the compatibility gate requires);
/// returns both paths.
pub fn ceremony_files(dir: &Path, ws_name: &str, module: &str, key_type: &str) -> (String, String) {
    use conclave::signer::Signer;
    let ws = dir.join(ws_name);
    std::fs::create_dir_all(ws.join("input")).unwrap();
    let online = |seed: u8| {
        conclave::signer::software::SoftwareSigner::from_seed(
            conclave::tuf::key::Algorithm::Ed25519,
            &[seed; 32],
        )
        .unwrap()
    };
    let keys = format!(
        "{{\"snapshot\": {}, \"timestamp\": {}}}",
        online(1).key().to_value().to_pretty_json(),
        online(2).key().to_value().to_pretty_json()
    );
    std::fs::write(ws.join("input/online-keys.json"), keys).unwrap();
    let answers = dir.join(format!("{ws_name}.answers.toml"));
    let loss = if key_type == "ecdsa-p384" {
        "accept_client_loss = \"tough,tuf-js\"\n"
    } else {
        ""
    };
    std::fs::write(
        &answers,
        format!(
            "practice = true\nacknowledgement = \"BAG-A1234567\"\nmodule = \"{module}\"\n\n[people]\nadministrator = \"ada\"\nkeyholders = [\"alice\", \"bob\", \"carol\"]\nwitnesses = [\"wendy\"]\n\n[parameters]\nkey_type = \"{key_type}\"\n{loss}"
        ),
    )
    .unwrap();
    (
        ws.to_str().unwrap().to_string(),
        answers.to_str().unwrap().to_string(),
    )
}

/// The signature scheme of each root key of an exported root.
pub fn root_key_schemes(root: &Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(root).unwrap()).unwrap();
    root_key_ids(root)
        .iter()
        .map(|id| {
            v["signed"]["keys"][id]["scheme"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// The root keys of an exported root, as key ids.
pub fn root_key_ids(root: &Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(root).unwrap()).unwrap();
    v["signed"]["roles"]["root"]["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

/// kryoptic's SO PIN in every test token.
pub const KRYOPTIC_SO_PIN: &str = "87654321";

/// kryoptic's module as `make kryoptic` builds it (or the one `CONCLAVE_KRYOPTIC` names); a
/// missing module fails the test with what to run.
pub fn kryoptic_module() -> String {
    let path = std::env::var_os("CONCLAVE_KRYOPTIC")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| manifest_dir().join("target"), PathBuf::from)
                .join("kryoptic/release/libkryoptic_pkcs11.so")
        });
    assert!(
        path.is_file(),
        "kryoptic's PKCS#11 module {} is missing: build it with `make kryoptic` (once; `make \
         test` does it)",
        path.display()
    );
    path.to_str().expect("UTF-8 module path").to_string()
}

/// kryoptic tokens in `dir`: a configuration (`dir/kryoptic.conf`, for `KRYOPTIC_CONF`) with
/// one sqlite-backed slot per label, each token initialised with `C_InitToken` and `C_InitPIN`
/// by OpenSC's `pkcs11-tool` (the Debian package opensc). Returns the configuration's path and
/// each token's (label, user PIN).
pub fn kryoptic_tokens(
    dir: &Path,
    module: &str,
    labels: &[&str],
) -> (PathBuf, Vec<(String, String)>) {
    let mut conf = String::new();
    for (i, label) in labels.iter().enumerate() {
        conf.push_str(&format!(
            "[[slots]]\nslot = {}\ndbtype = \"sqlite\"\ndbargs = \"{}\"\n\n",
            i + 1,
            dir.join(format!("{label}.sql")).display()
        ));
    }
    let conf_path = dir.join("kryoptic.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let tool = |args: &[&str]| {
        let mut cmd = Command::new("pkcs11-tool");
        cmd.args(["--module", module])
            .args(args)
            .env("KRYOPTIC_CONF", &conf_path);
        let run = run_with_timeout(&mut cmd, b"", TIMEOUT);
        assert_eq!(
            run.code(),
            0,
            "pkcs11-tool {args:?} (install opensc: make deb-deps): {run:?}"
        );
    };
    let mut pins = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let pin = format!("{:06}", 271_828 + i * 1_111);
        let slot = (i + 1).to_string();
        tool(&[
            "--slot",
            &slot,
            "--init-token",
            "--label",
            label,
            "--so-pin",
            KRYOPTIC_SO_PIN,
        ]);
        tool(&[
            "--slot",
            &slot,
            "--init-pin",
            "--login",
            "--login-type",
            "so",
            "--so-pin",
            KRYOPTIC_SO_PIN,
            "--new-pin",
            &pin,
        ]);
        pins.push((label.to_string(), pin));
    }
    (conf_path, pins)
}

/// Start the key-event log in a ceremony's answers file (`log_origin`).
pub fn with_log_origin(answers: &str) {
    let text = std::fs::read_to_string(answers).unwrap();
    let text = text.replacen(
        "practice = true\n",
        "practice = true\nlog_origin = \"registry.example/conclave-key-events\"\n",
        1,
    );
    std::fs::write(answers, text).unwrap();
}

/// The answers of a rotate-root-keys in which alice moves to a new token (`add_keyholders` and
/// `remove_keyholders` alice), written to `dir/rotation.toml`; `tokens` is the body of the
/// `[tokens]` table (`alice = "alice-new"`, with the other keyholders' tokens where they are
/// named by serial).
pub fn rotation_answers(dir: &Path, module: &str, key_type: &str, tokens: &str) -> PathBuf {
    let loss = if key_type == "ecdsa-p384" {
        "accept_client_loss = \"tough,tuf-js\"\n"
    } else {
        ""
    };
    let path = dir.join("rotation.toml");
    std::fs::write(
        &path,
        format!(
            "practice = true\nacknowledgement = \"BAG-A1234568\"\nmodule = \"{module}\"\n\n[people]\nadministrator = \"ada\"\nkeyholders = [\"alice\", \"bob\", \"carol\"]\nwitnesses = [\"wendy\"]\n\n[parameters]\nadd_keyholders = \"alice\"\nremove_keyholders = \"alice\"\nkey_type = \"{key_type}\"\n{loss}\n[tokens]\n{tokens}"
        ),
    )
    .unwrap();
    path
}

/// The `conclave log verify` line a ceremony printed (the key-event log it extended, verified).
fn log_verify_line(run: &Run) -> String {
    run.stdout
        .lines()
        .find(|l| l.starts_with("conclave log verify "))
        .unwrap_or_else(|| panic!("no key-event log verified: {run:?}"))
        .to_string()
}

/// A bootstrap-root run with `log_origin` finished: sealed, the key-event log started and
/// verified, python-tuf accepts `export/1.root.json` with three root keys.
pub fn check_bootstrap(run: &Run, export: &Path) {
    assert_eq!(run.code(), 0, "bootstrap-root: {run:?}");
    assert!(run.stdout.contains("\nseal: "), "{run:?}");
    let line = log_verify_line(run);
    assert!(
        line.contains("export/log-001 ") && line.contains(": VALID"),
        "{line}"
    );
    python_accepts(&export.join("1.root.json"));
    assert_eq!(root_key_ids(&export.join("1.root.json")).len(), 3);
}

/// A rotate-root-keys run in which alice moved to a new token finished: sealed, the key-event
/// log extended and verified, alice's root key replaced by one whose public key the new token
/// holds (`new_token` is its `token list --json` entry as text), both transcripts sealed and
/// free of `pins`, python-tuf follows the root chain 1 -> 2.
pub fn check_rotation(run: &Run, ws: &Path, new_token: &str, pins: &[&str]) {
    assert_eq!(run.code(), 0, "rotate-root-keys: {run:?}");
    assert!(run.stdout.contains("\nseal: "), "{run:?}");
    let line = log_verify_line(run);
    assert!(
        line.contains("export/log-002 --previous ")
            && line.contains("export/log-001 --trusted-root ")
            && line.contains("2.root.json: VALID"),
        "{line}"
    );
    for pin in pins {
        assert!(
            !run.stdout.contains(pin) && !run.stderr.contains(pin),
            "a PIN printed: {run:?}"
        );
    }
    let export = ws.join("export");
    let read = |n: u32| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(export.join(format!("{n}.root.json"))).unwrap())
            .unwrap()
    };
    let (v1, v2) = (read(1), read(2));
    let alice_key = |root: &serde_json::Value| -> String {
        let ids: Vec<String> = root["signed"]["roles"]["root"]["keyids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().to_string())
            .filter(|id| root["signed"]["keys"][id]["x-tuf-on-ci-keyowner"] == "alice")
            .collect();
        assert_eq!(ids.len(), 1, "{root}");
        ids[0].clone()
    };
    let (old, new) = (alice_key(&v1), alice_key(&v2));
    assert_ne!(old, new, "alice's root key was replaced");
    // Both of alice's keys signed root v2: the old one for v1's threshold, the new one for v2's.
    let signers: Vec<&str> = v2["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap())
        .collect();
    assert!(
        signers.contains(&old.as_str()) && signers.contains(&new.as_str()),
        "{signers:?}"
    );
    let public = v2["signed"]["keys"][&new]["keyval"]["public"]
        .as_str()
        .unwrap();
    // As JSON text (a PEM's line breaks escaped), as `new_token` is.
    let public = serde_json::Value::from(public).to_string();
    assert!(
        new_token.contains(&public),
        "the new key is not in the new token: {new_token}"
    );
    for transcript in [
        "bootstrap-root.transcript.jsonl",
        "rotate-root-keys-v2.transcript.jsonl",
    ] {
        let text = std::fs::read_to_string(ws.join(transcript)).unwrap();
        assert!(
            text.contains("\"action\":\"sealed\""),
            "{transcript} not sealed: {text}"
        );
        for pin in pins {
            assert!(!text.contains(pin), "a PIN in {transcript}");
        }
    }
    let logs = std::fs::read_dir(&export)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("log-")
        })
        .count();
    assert_eq!(logs, 2);
    let chain = super::python_root_chain(&export);
    assert_eq!(chain.code(), 0, "python-tuf refused: {chain:?}");
}
