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

/// SoftHSM2 tokens in a temporary directory (made by `conclave token init-practice`, no keys),
/// seen through the profile module.
pub struct Bench {
    _tmp: tempfile::TempDir,
    /// The temporary directory.
    pub root: PathBuf,
    /// Its softhsm2.conf.
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
        let v = run.json();
        let conf = PathBuf::from(v["conf"].as_str().unwrap());
        let tokens: Vec<(String, String)> = v["tokens"]
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
        let pins = tokens
            .iter()
            .map(|(l, p)| format!("{l}={p}"))
            .collect::<Vec<_>>()
            .join(",");
        let state = root.join("profile-state");
        std::fs::create_dir_all(&state).unwrap();
        let env = vec![
            ("CONCLAVE_PROFILE".into(), profile.into()),
            ("CONCLAVE_PROFILE_TARGET".into(), SOFTHSM.into()),
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
            conf,
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
            .env("SOFTHSM2_CONF", &self.conf)
            .env("CONCLAVE_CONFIG", &config)
            .current_dir(&self.root);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        run_with_timeout(&mut cmd, stdin.as_bytes(), TIMEOUT)
    }
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
