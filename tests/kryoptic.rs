//! kryoptic 1.5.4 (crates.io), a PKCS#11 3.x software token with EdDSA: a real second module
//! with Ed25519, not an emulation. `make kryoptic` builds its `libkryoptic_pkcs11.so` once
//! (tests/kryoptic pins it, with the OpenSSL 3.5.5 it links statically) into
//! `target/kryoptic/`; `make unit` names it in `CONCLAVE_KRYOPTIC`. Each test makes its own
//! tokens: a kryoptic configuration (`KRYOPTIC_CONF`) with one sqlite-backed slot per
//! keyholder, each token initialised with `C_InitToken` and `C_InitPIN` by OpenSC's
//! `pkcs11-tool` (the Debian package opensc, `make deb-deps`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::profile::{ceremony_files, python_accepts, root_file, root_key_ids};
use common::{Run, manifest_dir, run_with_timeout};
use conclave::tuf::canonical::Value;
use conclave::tuf::key::Key;
use conclave::tuf::metadata::key_from_value;

const TIMEOUT: Duration = Duration::from_secs(120);
const SO_PIN: &str = "87654321";

/// The module `make kryoptic` built (or the one `CONCLAVE_KRYOPTIC` names); a missing module
/// fails the test with what to run.
fn module() -> String {
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

/// kryoptic tokens in a temporary directory: one slot (an sqlite database) per label.
struct Kryoptic {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    module: String,
    env: Vec<(String, String)>,
    pins: Vec<(String, String)>,
}

impl Kryoptic {
    fn new(labels: &[&str]) -> Kryoptic {
        let module = module();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
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
        // The appliance's configuration names the module: an answers file may name only a
        // configured module.
        let config = dir.join("appliance-config.toml");
        std::fs::write(&config, format!("[pkcs11]\nmodule = \"{module}\"\n")).unwrap();
        let mut k = Kryoptic {
            _tmp: tmp,
            dir,
            module,
            env: vec![
                ("KRYOPTIC_CONF".into(), conf_path.display().to_string()),
                ("CONCLAVE_CONFIG".into(), config.display().to_string()),
            ],
            pins: Vec::new(),
        };
        for (i, label) in labels.iter().enumerate() {
            let pin = format!("{:06}", 271_828 + i * 1_111);
            let slot = (i + 1).to_string();
            k.pkcs11_tool(&[
                "--slot",
                &slot,
                "--init-token",
                "--label",
                label,
                "--so-pin",
                SO_PIN,
            ]);
            k.pkcs11_tool(&[
                "--slot",
                &slot,
                "--init-pin",
                "--login",
                "--login-type",
                "so",
                "--so-pin",
                SO_PIN,
                "--new-pin",
                &pin,
            ]);
            k.pins.push((label.to_string(), pin));
        }
        k
    }

    /// OpenSC's pkcs11-tool on the module (token initialisation only).
    fn pkcs11_tool(&self, args: &[&str]) {
        let mut cmd = Command::new("pkcs11-tool");
        cmd.args(["--module", &self.module]).args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let run = run_with_timeout(&mut cmd, b"", TIMEOUT);
        assert_eq!(
            run.code(),
            0,
            "pkcs11-tool {args:?} (install opensc: make deb-deps): {run:?}"
        );
    }

    fn pin(&self, label: &str) -> String {
        self.pins
            .iter()
            .find(|(l, _)| l == label)
            .unwrap_or_else(|| panic!("no token {label}"))
            .1
            .clone()
    }

    /// `conclave` with `MODULE` in `args` replaced by the module's path.
    fn conclave(&self, args: &[&str], stdin: &str) -> Run {
        let args: Vec<&str> = args
            .iter()
            .map(|a| {
                if *a == "MODULE" {
                    self.module.as_str()
                } else {
                    *a
                }
            })
            .collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_conclave"));
        cmd.args(&args).current_dir(&self.dir);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        run_with_timeout(&mut cmd, stdin.as_bytes(), TIMEOUT)
    }

    fn keygen(&self, token: &str, ty: &str, label: &str) -> Key {
        let run = self.conclave(
            &[
                "token",
                "keygen",
                "--module",
                "MODULE",
                "--token",
                token,
                "--type",
                ty,
                "--label",
                label,
                "--pin-stdin",
                "--json",
            ],
            &format!("{}\n", self.pin(token)),
        );
        assert_eq!(run.code(), 0, "keygen {ty} on {token}: {run:?}");
        let text = serde_json::to_string(&run.json()["key"]).unwrap();
        key_from_value(Value::parse(text.as_bytes()).unwrap(), "$").unwrap()
    }

    /// `conclave ceremony run SCRIPT` in workspace `ws` with `answers`, the PINs on stdin.
    fn ceremony(&self, script: &str, ws: &str, answers: &str, pins: &str) -> Run {
        self.conclave(
            &[
                "ceremony",
                "run",
                script,
                "--workspace",
                ws,
                "--answers",
                answers,
                "--pin-stdin",
            ],
            pins,
        )
    }
}

/// The token list as JSON.
fn tokens(k: &Kryoptic) -> Vec<serde_json::Value> {
    let run = k.conclave(&["token", "list", "--module", "MODULE", "--json"], "");
    assert_eq!(run.code(), 0, "{run:?}");
    run.json()["tokens"].as_array().unwrap().clone()
}

/// List; Ed25519, P-256 and P-384 keys generated through `conclave token keygen`; a root
/// signed with each through `conclave sign`; python-tuf accepts it.
#[test]
fn kryoptic_lists_generates_ed25519_p256_p384_signs_and_python_tuf_accepts() {
    let k = Kryoptic::new(&["alice", "bob", "carol"]);
    let run = k.conclave(&["token", "list", "--module", "MODULE"], "");
    assert_eq!(run.code(), 0, "{run:?}");
    for who in ["alice", "bob", "carol"] {
        assert!(run.stdout.contains(&format!("token \"{who}\"")), "{run:?}");
    }
    assert_eq!(
        run.stdout.matches("manufacturer  Kryoptic Project").count(),
        3,
        "{run:?}"
    );

    let keys = [
        k.keygen("alice", "ed25519", "alice"),
        k.keygen("bob", "ecdsa-p256", "bob"),
        k.keygen("carol", "ecdsa-p384", "carol"),
    ];
    // Each key is in its token, shown by the list.
    let listed = tokens(&k);
    for (who, key) in ["alice", "bob", "carol"].iter().zip(&keys) {
        let token = listed
            .iter()
            .find(|t| t["label"] == *who)
            .unwrap_or_else(|| panic!("no token {who}: {listed:?}"))
            .to_string();
        assert!(token.contains(key.key_id().as_str()), "{who}: {token}");
    }

    let root = root_file(&k.dir, &keys);
    let f = root.to_str().unwrap();
    for who in ["alice", "bob", "carol"] {
        let run = k.conclave(
            &[
                "sign",
                "--module",
                "MODULE",
                "--token",
                who,
                "--key",
                who,
                "--in",
                f,
                "--out",
                f,
                "--pin-stdin",
            ],
            &format!("{}\n", k.pin(who)),
        );
        assert_eq!(run.code(), 0, "sign on {who}: {run:?}");
    }
    let text = std::fs::read_to_string(&root).unwrap();
    for scheme in ["ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384"] {
        assert!(text.contains(&format!("\"{scheme}\"")), "{scheme}: {text}");
    }
    python_accepts(&root);
}

/// A whole bootstrap-root ceremony on kryoptic tokens (Ed25519), then rotate-root-keys in
/// which alice moves to a new token: each sealed, each extending the key-event log, which
/// Conclave verifies; python-tuf follows the root chain.
#[test]
fn a_whole_ceremony_on_kryoptic_then_a_keyholder_moves_to_a_new_token() {
    let k = Kryoptic::new(&["alice", "bob", "carol", "alice-new"]);
    let (ws, answers) = ceremony_files(&k.dir, "ws", &k.module, "ed25519");
    let mut text = std::fs::read_to_string(&answers).unwrap();
    text = text.replacen(
        "practice = true\n",
        "practice = true\nlog_origin = \"registry.example/conclave-key-events\"\n",
        1,
    );
    std::fs::write(&answers, text).unwrap();
    let pins: String = ["alice", "bob", "carol"]
        .iter()
        .map(|w| format!("{w}={}\n", k.pin(w)))
        .collect();
    let run = k.ceremony("bootstrap-root", &ws, &answers, &pins);
    assert_eq!(run.code(), 0, "bootstrap-root: {run:?}");
    // Sealed, then the key-event log started and verified as an auditor would.
    let log_verify = |run: &Run| -> String {
        run.stdout
            .lines()
            .find(|l| l.starts_with("conclave log verify "))
            .unwrap_or_else(|| panic!("no key-event log verified: {run:?}"))
            .to_string()
    };
    assert!(run.stdout.contains("\nseal: "), "{run:?}");
    let line = log_verify(&run);
    assert!(
        line.contains("export/log-001 ") && line.contains(": VALID"),
        "{line}"
    );
    let ws = Path::new(&ws);
    let export = ws.join("export");
    python_accepts(&export.join("1.root.json"));
    assert_eq!(root_key_ids(&export.join("1.root.json")).len(), 3);

    let rotation = k.dir.join("rotation.toml");
    std::fs::write(
        &rotation,
        format!(
            "practice = true\nacknowledgement = \"BAG-A1234568\"\nmodule = \"{}\"\n\n[people]\nadministrator = \"ada\"\nkeyholders = [\"alice\", \"bob\", \"carol\"]\nwitnesses = [\"wendy\"]\n\n[parameters]\nadd_keyholders = \"alice\"\nremove_keyholders = \"alice\"\nkey_type = \"ed25519\"\n\n[tokens]\nalice = \"alice-new\"\n",
            k.module
        ),
    )
    .unwrap();
    let new_pin = k.pin("alice-new");
    let both = format!("{pins}alice@alice-new={new_pin}\n");
    let run = k.ceremony(
        "rotate-root-keys",
        ws.to_str().unwrap(),
        rotation.to_str().unwrap(),
        &both,
    );
    assert_eq!(run.code(), 0, "rotate-root-keys: {run:?}");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("  alice ") && l.contains("label \"alice-new\"")),
        "alice's new key is generated in the new token: {run:?}"
    );
    assert!(run.stdout.contains("\nseal: "), "{run:?}");
    let line = log_verify(&run);
    assert!(
        line.contains("export/log-002 --previous ")
            && line.contains("export/log-001 --trusted-root ")
            && line.contains("2.root.json: VALID"),
        "{line}"
    );
    assert!(!run.stdout.contains(&new_pin) && !run.stderr.contains(&new_pin));

    // alice's root key changed, and the new one is in the new token.
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
    let public = v2["signed"]["keys"][&new]["keyval"]["public"]
        .as_str()
        .unwrap();
    let on_new = tokens(&k)
        .into_iter()
        .find(|t| t["label"] == "alice-new")
        .unwrap()
        .to_string();
    assert!(on_new.contains(public), "{on_new}");

    // Both transcripts sealed; two key-event logs, the second extending the first; python-tuf
    // follows the root chain v1 -> v2.
    for transcript in [
        "bootstrap-root.transcript.jsonl",
        "rotate-root-keys-v2.transcript.jsonl",
    ] {
        let text = std::fs::read_to_string(ws.join(transcript)).unwrap();
        assert!(
            text.contains("\"action\":\"sealed\""),
            "{transcript} not sealed: {text}"
        );
        for (_, pin) in &k.pins {
            assert!(!text.contains(pin.as_str()), "a PIN in {transcript}");
        }
    }
    let logs: Vec<String> = std::fs::read_dir(&export)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("log-"))
        .collect();
    assert_eq!(logs.len(), 2, "{logs:?}");
    let chain = common::python_root_chain(&export);
    assert_eq!(chain.code(), 0, "python-tuf refused: {chain:?}");
}
