//! The device-profile test bench: `tests/pkcs11-profile/` (a PKCS#11 module that forwards to
//! SoftHSM2 and imposes another vendor's documented behaviour, see its `src/lib.rs` and
//! docs/hsm.md), built once per test binary into `target/pkcs11-profile/`, and SoftHSM2 tokens
//! made for it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

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
    pub fn conclave(&self, args: &[&str], stdin: &str) -> Run {
        let module = self.module();
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "MODULE" { module } else { a })
            .collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_conclave"));
        cmd.args(&args)
            .env("SOFTHSM2_CONF", &self.conf)
            .env_remove("CONCLAVE_CONFIG")
            .current_dir(&self.root);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        run_with_timeout(&mut cmd, stdin.as_bytes(), TIMEOUT)
    }
}
