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

use common::profile::{
    ceremony_files, check_bootstrap, check_rotation, kryoptic_module, kryoptic_tokens,
    practice_tokens, python_accepts_every_key, root_file, root_key_schemes, rotation_answers,
    with_log_origin,
};
use common::{Run, run_with_timeout};
use conclave::tuf::canonical::Value;
use conclave::tuf::key::Key;
use conclave::tuf::metadata::key_from_value;

const TIMEOUT: Duration = Duration::from_secs(120);

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
        let module = kryoptic_module();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let (conf_path, pins) = kryoptic_tokens(&dir, &module, labels);
        // The appliance's configuration names the module: an answers file may name only a
        // configured module.
        let config = dir.join("appliance-config.toml");
        std::fs::write(&config, format!("[pkcs11]\nmodule = \"{module}\"\n")).unwrap();
        Kryoptic {
            _tmp: tmp,
            dir,
            module,
            env: vec![
                ("KRYOPTIC_CONF".into(), conf_path.display().to_string()),
                ("CONCLAVE_CONFIG".into(), config.display().to_string()),
            ],
            pins,
        }
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
    python_accepts_every_key(&root);
}

/// A whole bootstrap-root ceremony on kryoptic tokens (Ed25519), then rotate-root-keys in
/// which alice moves to a new token: each sealed, each extending the key-event log, which
/// Conclave verifies; python-tuf follows the root chain.
#[test]
fn a_whole_ceremony_on_kryoptic_then_a_keyholder_moves_to_a_new_token() {
    let k = Kryoptic::new(&["alice", "bob", "carol", "alice-new"]);
    let (ws, answers) = ceremony_files(&k.dir, "ws", &k.module, "ed25519");
    with_log_origin(&answers);
    let pins: String = ["alice", "bob", "carol"]
        .iter()
        .map(|w| format!("{w}={}\n", k.pin(w)))
        .collect();
    let run = k.ceremony("bootstrap-root", &ws, &answers, &pins);
    let ws = Path::new(&ws);
    check_bootstrap(&run, &ws.join("export"));

    let rotation = rotation_answers(&k.dir, &k.module, "ed25519", "alice = \"alice-new\"\n");
    let both = format!("{pins}alice@alice-new={}\n", k.pin("alice-new"));
    let run = k.ceremony(
        "rotate-root-keys",
        ws.to_str().unwrap(),
        rotation.to_str().unwrap(),
        &both,
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("  alice ") && l.contains("label \"alice-new\"")),
        "alice's new key is generated in the new token: {run:?}"
    );
    let on_new = tokens(&k)
        .into_iter()
        .find(|t| t["label"] == "alice-new")
        .unwrap()
        .to_string();
    let all_pins: Vec<&str> = k.pins.iter().map(|(_, p)| p.as_str()).collect();
    check_rotation(&run, ws, &on_new, &all_pins);
}

/// p11-kit-proxy: one module over several. p11-kit loads the modules registered in
/// /usr/share/p11-kit/modules (SoftHSM2's among them) and /etc/pkcs11/modules, and a user's own
/// registrations in ~/.config/pkcs11/modules, which it skips for root. The test registers
/// kryoptic there (in a home directory of its own, the other registered modules switched off
/// for conclave with `disable-in`, so the mix is exactly SoftHSM2 + kryoptic) and, when it runs
/// as root, runs conclave as an ordinary user in a user namespace of its own (`unshare --user
/// --map-user=1000 --map-group=1000`: files keep their owners).
struct Proxy {
    home: PathBuf,
    env: Vec<(String, String)>,
}

const PROXY: &str = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so";

impl Proxy {
    fn new(k: &Kryoptic, softhsm_conf: &Path) -> Proxy {
        assert!(
            Path::new(PROXY).is_file(),
            "{PROXY} missing: install p11-kit-modules (make deb-deps)"
        );
        let home = k.dir.join("home");
        let modules = home.join(".config/pkcs11/modules");
        std::fs::create_dir_all(&modules).unwrap();
        std::fs::write(
            modules.join("kryoptic.module"),
            format!("module: {}\ncritical: yes\n", k.module),
        )
        .unwrap();
        for name in std::fs::read_dir("/usr/share/p11-kit/modules")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".module") && n != "softhsm2.module")
        {
            std::fs::write(
                modules.join(name),
                "module: /nonexistent/disabled.so\ndisable-in: conclave\n",
            )
            .unwrap();
        }
        let mut env = k.env.clone();
        env.push(("SOFTHSM2_CONF".into(), softhsm_conf.display().to_string()));
        env.push(("HOME".into(), home.display().to_string()));
        Proxy { home, env }
    }

    /// `conclave ARGS` (`MODULE` is the proxy) as a user p11-kit reads the registrations of.
    fn conclave(&self, args: &[&str], stdin: &str) -> Run {
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "MODULE" { PROXY } else { a })
            .collect();
        let mut cmd = if common::is_root() {
            let mut c = Command::new("unshare");
            c.args(["--user", "--map-user=1000", "--map-group=1000", "--"])
                .arg(env!("CARGO_BIN_EXE_conclave"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_conclave"))
        };
        cmd.args(&args)
            .current_dir(&self.home)
            .env_remove("XDG_CONFIG_HOME");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        run_with_timeout(&mut cmd, stdin.as_bytes(), TIMEOUT)
    }
}

/// Keyholders on different devices in one ceremony through p11-kit-proxy: alice on kryoptic,
/// bob and carol on SoftHSM2 (Ed25519, bootstrap-root sealed, the key-event log started); then
/// rotate-root-keys in which alice moves from her kryoptic token to a SoftHSM2 one.
#[test]
fn one_ceremony_mixes_softhsm2_and_kryoptic_tokens_through_p11_kit_proxy() {
    let k = Kryoptic::new(&["alice"]);
    let practice = k.dir.join("practice");
    let run = k.conclave(
        &[
            "token",
            "init-practice",
            "--json",
            "--type",
            "none",
            "--keyholders",
            "bob,carol,alice-new",
            "--module",
            "/usr/lib/softhsm/libsofthsm2.so",
            "--dir",
            practice.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let (softhsm_conf, soft) = practice_tokens(&run);
    let pin = |who: &str| -> String {
        soft.iter()
            .chain(k.pins.iter())
            .find(|(l, _)| l == who)
            .unwrap()
            .1
            .clone()
    };
    let p = Proxy::new(&k, &softhsm_conf);
    let run = p.conclave(&["token", "list", "--module", "MODULE", "--json"], "");
    assert_eq!(run.code(), 0, "{run:?}");
    let listed = run.json()["tokens"].as_array().unwrap().clone();
    let maker = |label: &str| -> String {
        listed
            .iter()
            .find(|t| t["label"] == label)
            .unwrap_or_else(|| panic!("no token {label}: {listed:?}"))["manufacturer"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(maker("alice"), "Kryoptic Project");
    for who in ["bob", "carol", "alice-new"] {
        assert_eq!(maker(who), "SoftHSM project");
    }

    let (ws, answers) = ceremony_files(&k.dir, "ws", PROXY, "ed25519");
    with_log_origin(&answers);
    let pins: String = ["alice", "bob", "carol"]
        .iter()
        .map(|w| format!("{w}={}\n", pin(w)))
        .collect();
    let ceremony = |script: &str, answers: &str, pins: &str| {
        p.conclave(
            &[
                "ceremony",
                "run",
                script,
                "--workspace",
                &ws,
                "--answers",
                answers,
                "--pin-stdin",
            ],
            pins,
        )
    };
    let run = ceremony("bootstrap-root", &answers, &pins);
    let ws = Path::new(&ws);
    check_bootstrap(&run, &ws.join("export"));

    let rotation = rotation_answers(&k.dir, PROXY, "ed25519", "alice = \"alice-new\"\n");
    let both = format!("{pins}alice@alice-new={}\n", pin("alice-new"));
    let run = ceremony("rotate-root-keys", rotation.to_str().unwrap(), &both);
    let run_list = p.conclave(&["token", "list", "--module", "MODULE", "--json"], "");
    let on_new = run_list.json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "alice-new")
        .unwrap()
        .to_string();
    let all: Vec<String> = ["alice", "bob", "carol", "alice-new"]
        .iter()
        .map(|w| pin(w))
        .collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    check_rotation(&run, ws, &on_new, &all);

    // ECDSA through the proxy on both modules: P-256 and P-384 on alice's kryoptic token,
    // P-384 on bob's SoftHSM2 token; each signs, python-tuf verifies every signature.
    let keygen = |token: &str, ty: &str, label: &str| -> Key {
        let run = p.conclave(
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
            &format!("{}\n", pin(token)),
        );
        assert_eq!(run.code(), 0, "keygen {ty} on {token}: {run:?}");
        let text = serde_json::to_string(&run.json()["key"]).unwrap();
        key_from_value(Value::parse(text.as_bytes()).unwrap(), "$").unwrap()
    };
    let signers = [
        ("alice", "alice-p256", "ecdsa-p256"),
        ("alice", "alice-p384", "ecdsa-p384"),
        ("bob", "bob-p384", "ecdsa-p384"),
    ];
    let keys: Vec<Key> = signers
        .iter()
        .map(|(token, label, ty)| keygen(token, ty, label))
        .collect();
    let root = root_file(&k.dir, &keys);
    let f = root.to_str().unwrap();
    for (token, label, _) in signers {
        let run = p.conclave(
            &[
                "sign",
                "--module",
                "MODULE",
                "--token",
                token,
                "--key",
                label,
                "--in",
                f,
                "--out",
                f,
                "--pin-stdin",
            ],
            &format!("{}\n", pin(token)),
        );
        assert_eq!(run.code(), 0, "sign with {label}: {run:?}");
    }
    let mut schemes = root_key_schemes(&root);
    schemes.sort();
    assert_eq!(
        schemes,
        [
            "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp384",
            "ecdsa-sha2-nistp384"
        ]
    );
    python_accepts_every_key(&root);
}
