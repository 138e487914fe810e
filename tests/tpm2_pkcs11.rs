//! tpm2-pkcs11 (Debian's `libtpm2-pkcs11-1` 1.9) on a software TPM (`swtpm`): a real second
//! PKCS#11 module, not an emulation. swtpm listens on 127.0.0.1; `tpm2_ptool` needs the
//! resource manager `tpm2-abrmd`, which runs on a private D-Bus session bus of its own. Needs
//! the Debian packages libtpm2-pkcs11-1, libtpm2-pkcs11-tools, swtpm, swtpm-tools, tpm2-tools,
//! tpm2-abrmd, libtss2-tcti-tabrmd0 and dbus (`make deb-deps`).

mod common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::profile::{
    ceremony_files, check_bootstrap, check_rotation, python_accepts, python_accepts_every_key,
    root_file, root_key_ids, rotation_answers, with_log_origin,
};
use common::{Run, run_with_timeout};
use conclave::tuf::canonical::Value;
use conclave::tuf::key::Key;
use conclave::tuf::metadata::key_from_value;

const MODULE: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so";
const TIMEOUT: Duration = Duration::from_secs(120);

/// A software TPM with tpm2-pkcs11 tokens; the processes it started are stopped when dropped.
struct Tpm {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    children: Vec<Child>,
    env: Vec<(String, String)>,
    pins: Vec<(String, String)>,
}

impl Drop for Tpm {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Two consecutive free ports.
fn free_port_pair() -> (u16, u16) {
    loop {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return (port, port + 1);
        }
    }
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot start {cmd:?} ({e}): install the TPM packages (make deb-deps)")
    })
}

impl Tpm {
    /// swtpm, a private D-Bus, tpm2-abrmd, a tpm2-pkcs11 store and one token per label.
    fn new(labels: &[&str]) -> Tpm {
        assert!(
            Path::new(MODULE).is_file(),
            "{MODULE} missing: install libtpm2-pkcs11-1 (make deb-deps)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        for d in ["state", "store"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let mut tpm = Tpm {
            _tmp: tmp,
            dir: dir.clone(),
            children: Vec::new(),
            env: Vec::new(),
            pins: Vec::new(),
        };
        // swtpm: TPM commands and its control channel on 127.0.0.1 (the swtpm TCTI expects the
        // control channel on the next port).
        let (port, ctrl) = free_port_pair();
        tpm.children.push(spawn(
            Command::new("swtpm")
                .args([
                    "socket",
                    "--tpm2",
                    "--flags",
                    "not-need-init,startup-clear",
                    "--tpmstate",
                ])
                .arg(format!("dir={}", dir.join("state").display()))
                .args([
                    "--server",
                    &format!("type=tcp,port={port},bindaddr=127.0.0.1"),
                ])
                .args([
                    "--ctrl",
                    &format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        ));
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < TIMEOUT, "swtpm did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // A private session bus for tpm2-abrmd.
        let mut dbus = spawn(
            Command::new("dbus-daemon")
                .args([
                    "--config-file=/usr/share/dbus-1/session.conf",
                    "--print-address=1",
                    "--nofork",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        let mut address = String::new();
        BufReader::new(dbus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        tpm.children.push(dbus);
        let address = address.trim().to_string();
        assert!(!address.is_empty(), "dbus-daemon printed no address");
        tpm.env = vec![
            ("DBUS_SESSION_BUS_ADDRESS".into(), address.clone()),
            (
                "TPM2_PKCS11_STORE".into(),
                dir.join("store").display().to_string(),
            ),
            ("TPM2_PKCS11_TCTI".into(), "tabrmd:bus_type=session".into()),
            ("TPM2TOOLS_TCTI".into(), "tabrmd:bus_type=session".into()),
        ];
        let mut abrmd = Command::new("tpm2-abrmd");
        abrmd
            .args([
                "--session",
                &format!("--tcti=swtpm:host=127.0.0.1,port={port}"),
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("tpm2-abrmd.log")).unwrap());
        // tpm2-abrmd refuses to run as root unless told it may.
        if rustix::process::getuid().is_root() {
            abrmd.arg("--allow-root");
        }
        tpm.children.push(spawn(&mut abrmd));
        // The store's primary key (retried until tpm2-abrmd is on the bus).
        let start = Instant::now();
        loop {
            let run = tpm.ptool(&["init"]);
            if run.code() == 0 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "tpm2_ptool init failed: {run:?}; tpm2-abrmd: {}",
                std::fs::read_to_string(dir.join("tpm2-abrmd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        for (i, label) in labels.iter().enumerate() {
            let pin = format!("{:06}", 314_159 + i * 1_111);
            let run = tpm.ptool(&[
                "addtoken",
                "--pid=1",
                &format!("--label={label}"),
                "--sopin=87654321",
                &format!("--userpin={pin}"),
            ]);
            assert_eq!(run.code(), 0, "tpm2_ptool addtoken: {run:?}");
            tpm.pins.push((label.to_string(), pin));
        }
        tpm
    }

    fn ptool(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new("tpm2_ptool");
        cmd.args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        run_with_timeout(&mut cmd, b"", TIMEOUT)
    }

    fn pin(&self, label: &str) -> String {
        self.pins
            .iter()
            .find(|(l, _)| l == label)
            .unwrap()
            .1
            .clone()
    }

    fn conclave(&self, args: &[&str], stdin: &str) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_conclave"));
        cmd.args(args)
            .env_remove("CONCLAVE_CONFIG")
            .current_dir(&self.dir);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        run_with_timeout(&mut cmd, stdin.as_bytes(), TIMEOUT)
    }

    /// `conclave ceremony run SCRIPT` headless, PINs on standard input.
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

    fn keygen(&self, token: &str, ty: &str, label: &str) -> Run {
        self.conclave(
            &[
                "token",
                "keygen",
                "--module",
                MODULE,
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
        )
    }
}

fn key_of(run: &Run) -> Key {
    assert_eq!(run.code(), 0, "{run:?}");
    let text = serde_json::to_string(&run.json()["key"]).unwrap();
    key_from_value(Value::parse(text.as_bytes()).unwrap(), "$").unwrap()
}

/// List, P-256 and P-384 keygen, Ed25519 refused by name, signatures python-tuf accepts.
#[test]
fn tpm2_pkcs11_lists_generates_signs_and_python_tuf_accepts() {
    let tpm = Tpm::new(&["alice", "bob"]);
    let run = tpm.conclave(&["token", "list", "--module", MODULE], "");
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stdout.contains("token \"alice\"") && run.stdout.contains("token \"bob\""),
        "{run:?}"
    );
    assert_eq!(
        run.stdout.matches("serial        0000000000000000").count(),
        2,
        "{run:?}"
    );
    assert!(!run.stdout.contains('\0'), "{run:?}");

    let p256 = key_of(&tpm.keygen("alice", "ecdsa-p256", "alice"));
    let p384 = key_of(&tpm.keygen("bob", "ecdsa-p384", "bob"));
    let run = tpm.keygen("bob", "ed25519", "bob-ed");
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr
            .contains("does not support CKM_EC_EDWARDS_KEY_PAIR_GEN"),
        "{run:?}"
    );

    let root = root_file(&tpm.dir, &[p256, p384]);
    let f = root.to_str().unwrap();
    for who in ["alice", "bob"] {
        let run = tpm.conclave(
            &[
                "sign",
                "--module",
                MODULE,
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
            &format!("{}\n", tpm.pin(who)),
        );
        assert_eq!(run.code(), 0, "{run:?}");
    }
    python_accepts(&root);
}

/// A whole bootstrap-root with three keyholders' tokens on one TPM (equal serials, so the
/// tokens are told apart by label), then rotate-root-keys in which alice moves to a new token on
/// the same TPM; each sealed, each extending the key-event log.
#[test]
fn a_whole_ceremony_on_tpm2_pkcs11_then_a_keyholder_moves_to_a_new_token() {
    let tpm = Tpm::new(&["alice", "bob", "carol", "alice-new"]);
    let (ws, answers) = ceremony_files(&tpm.dir, "ws", MODULE, "ecdsa-p256");
    with_log_origin(&answers);
    let pins: String = ["alice", "bob", "carol"]
        .iter()
        .map(|k| format!("{k}={}\n", tpm.pin(k)))
        .collect();
    let run = tpm.ceremony("bootstrap-root", &ws, &answers, &pins);
    let ws = Path::new(&ws);
    check_bootstrap(&run, &ws.join("export"));

    let rotation = rotation_answers(&tpm.dir, MODULE, "ecdsa-p256", "alice = \"alice-new\"\n");
    let both = format!("{pins}alice@alice-new={}\n", tpm.pin("alice-new"));
    let run = tpm.ceremony(
        "rotate-root-keys",
        ws.to_str().unwrap(),
        rotation.to_str().unwrap(),
        &both,
    );
    let list = tpm.conclave(&["token", "list", "--module", MODULE, "--json"], "");
    assert_eq!(list.code(), 0, "{list:?}");
    let on_new = list.json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "alice-new")
        .unwrap()
        .to_string();
    let all_pins: Vec<&str> = tpm.pins.iter().map(|(_, p)| p.as_str()).collect();
    check_rotation(&run, ws, &on_new, &all_pins);
}

/// Keyholders on different devices in one ceremony through p11-kit-proxy (which loads the
/// modules registered in /usr/share/p11-kit/modules: SoftHSM2 and tpm2-pkcs11 here): alice and
/// bob on SoftHSM2 tokens, carol on a TPM token; then P-384 (TPM) and Ed25519 (SoftHSM2) keys
/// generated and used through the proxy.
#[test]
fn one_ceremony_mixes_softhsm2_and_tpm_tokens_through_p11_kit_proxy() {
    const PROXY: &str = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so";
    assert!(
        Path::new(PROXY).is_file(),
        "{PROXY} missing: install p11-kit-modules (make deb-deps)"
    );
    let mut tpm = Tpm::new(&["carol"]);
    let practice = tpm.dir.join("practice");
    let run = tpm.conclave(
        &[
            "token",
            "init-practice",
            "--json",
            "--type",
            "none",
            "--keyholders",
            "alice,bob",
            "--module",
            "/usr/lib/softhsm/libsofthsm2.so",
            "--dir",
            practice.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let v = run.json();
    let mut pins: String = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}={}\n",
                t["keyholder"].as_str().unwrap(),
                t["pin"].as_str().unwrap()
            )
        })
        .collect();
    pins.push_str(&format!("carol={}\n", tpm.pin("carol")));
    tpm.env.push((
        "SOFTHSM2_CONF".into(),
        v["conf"].as_str().unwrap().to_string(),
    ));
    let run = tpm.conclave(&["token", "list", "--module", PROXY], "");
    assert_eq!(run.code(), 0, "{run:?}");
    for who in ["alice", "bob", "carol"] {
        assert!(run.stdout.contains(&format!("token \"{who}\"")), "{run:?}");
    }
    let (ws, answers) = ceremony_files(&tpm.dir, "ws", PROXY, "ecdsa-p256");
    let run = tpm.ceremony("bootstrap-root", &ws, &answers, &pins);
    assert_eq!(run.code(), 0, "{run:?}");
    let root = Path::new(&ws).join("export/1.root.json");
    python_accepts(&root);
    assert_eq!(root_key_ids(&root).len(), 3);

    // The other key types through the proxy: P-384 on carol's TPM token, Ed25519 on alice's
    // SoftHSM2 one (the TPM offers no Ed25519), each signing; python-tuf checks every key.
    let pin_of = |who: &str| -> String {
        pins.lines()
            .find_map(|l| l.strip_prefix(&format!("{who}=")))
            .unwrap()
            .to_string()
    };
    let keygen = |token: &str, ty: &str, label: &str| {
        key_of(&tpm.conclave(
            &[
                "token",
                "keygen",
                "--module",
                PROXY,
                "--token",
                token,
                "--type",
                ty,
                "--label",
                label,
                "--pin-stdin",
                "--json",
            ],
            &format!("{}\n", pin_of(token)),
        ))
    };
    let p384 = keygen("carol", "ecdsa-p384", "carol-p384");
    let ed = keygen("alice", "ed25519", "alice-ed25519");
    let root = root_file(&tpm.dir, &[p384, ed]);
    let f = root.to_str().unwrap();
    for (who, key) in [("carol", "carol-p384"), ("alice", "alice-ed25519")] {
        let run = tpm.conclave(
            &[
                "sign",
                "--module",
                PROXY,
                "--token",
                who,
                "--key",
                key,
                "--in",
                f,
                "--out",
                f,
                "--pin-stdin",
            ],
            &format!("{}\n", pin_of(who)),
        );
        assert_eq!(run.code(), 0, "{run:?}");
    }
    python_accepts_every_key(&root);
}
