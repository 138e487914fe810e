//! `conclave ceremony run`: a ceremony on tokens (SoftHSM2 stands in for the keyholders' devices),
//! answered by an answers file, PINs on standard input.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn conclave() -> Command {
    Command::new(env!("CARGO_BIN_EXE_conclave"))
}

struct Room {
    _tmp: tempfile::TempDir,
    conf: PathBuf,
    pins: String,
    ws: PathBuf,
}

/// Three tokens without keys (as keyholders bring them), the online keys on the input media.
fn room() -> Room {
    let tmp = tempfile::tempdir().unwrap();
    let hsm = tmp.path().join("hsm");
    let out = conclave()
        .args(["token", "init-practice", "--dir"])
        .arg(&hsm)
        .args([
            "--keyholders",
            "alice,bob,carol",
            "--type",
            "none",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pins: String = v["tokens"]
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
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(ws.join("input")).unwrap();
    let online = |seed: u8| {
        conclave::signer::software::SoftwareSigner::from_seed(
            conclave::tuf::key::Algorithm::Ed25519,
            &[seed; 32],
        )
        .unwrap()
    };
    use conclave::signer::Signer;
    let keys = format!(
        "{{\"snapshot\": {}, \"timestamp\": {}}}",
        online(1).key().to_value().to_pretty_json(),
        online(2).key().to_value().to_pretty_json()
    );
    std::fs::write(ws.join("input/online-keys.json"), keys).unwrap();
    Room {
        conf: hsm.join("softhsm2.conf"),
        pins,
        ws,
        _tmp: tmp,
    }
}

fn answers(room: &Room, practice: bool, extra: &str) -> PathBuf {
    let path = room.ws.parent().unwrap().join("answers.toml");
    std::fs::write(
        &path,
        format!(
            "practice = {practice}\nacknowledgement = \"BAG-A1234567\"\n{extra}\n[people]\nadministrator = \"ada\"\nkeyholders = [\"alice\", \"bob\", \"carol\"]\nwitnesses = [\"wendy\"]\n\n[parameters]\nkey_type = \"ed25519\"\n"
        ),
    )
    .unwrap();
    path
}

fn run(room: &Room, answers: &Path) -> (i32, String, String) {
    let mut child = conclave()
        .args(["ceremony", "run", "bootstrap-root", "--workspace"])
        .arg(&room.ws)
        .arg("--answers")
        .arg(answers)
        .arg("--pin-stdin")
        .env("SOFTHSM2_CONF", &room.conf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may refuse its answers before reading any PIN (a closed pipe is fine).
    let _ = child.stdin.take().unwrap().write_all(room.pins.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_ceremony_answered_by_a_file_signs_with_the_tokens_and_never_records_a_pin() {
    let room = room();
    let a = answers(&room, true, "");
    let (code, out, err) = run(&room, &a);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("transcript verify") && out.contains(": VALID"),
        "{out}"
    );
    let export = room.ws.join("export");
    let py = common::run_python(
        "verify_offline.py",
        &[
            export.join("1.root.json").to_str().unwrap(),
            export.join("1.targets.json").to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(py.code(), 0, "python-tuf refused: {py:?}");
    let transcript =
        std::fs::read_to_string(room.ws.join("bootstrap-root.transcript.jsonl")).unwrap();
    assert!(transcript.contains("\"ada\"") && transcript.contains("BAG-A1234567"));
    for line in room.pins.lines() {
        let pin = line.split_once('=').unwrap().1;
        assert!(!transcript.contains(pin) && !out.contains(pin) && !err.contains(pin));
    }
}

#[test]
fn a_real_run_stops_at_a_failed_airgap_check_before_any_key_exists() {
    let room = room();
    let a = answers(&room, false, "");
    let airgapped = String::from_utf8_lossy(&conclave().arg("selfcheck").output().unwrap().stdout)
        .contains("air-gapped: yes");
    let (code, out, err) = run(&room, &a);
    if airgapped {
        assert_eq!(code, 0, "{out}{err}");
        return;
    }
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("not air-gapped"), "{err}");
    assert!(!room.ws.join("export").exists(), "nothing exported");
}

#[test]
fn answers_never_carry_pins() {
    let room = room();
    let a = answers(&room, true, "pins = { alice = \"123456\" }");
    let (code, _, err) = run(&room, &a);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("answers never hold PINs"), "{err}");
}
