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
    room_with("alice,bob,carol")
}

/// `conclave` run at umask 000 (through `sh -c 'umask 000; exec conclave ...'`).
fn conclave_umask_000() -> Command {
    let mut c = Command::new("sh");
    c.args([
        "-c",
        "umask 000; exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_conclave"),
    ]);
    c
}

/// Tokens labelled as `labels` (comma separated), without keys.
fn room_with(labels: &str) -> Room {
    room_made_by(labels, conclave)
}

/// Tokens labelled as `labels`, made by the `conclave` command that `cmd` gives.
fn room_made_by(labels: &str, cmd: fn() -> Command) -> Room {
    let tmp = tempfile::tempdir().unwrap();
    let hsm = tmp.path().join("hsm");
    let out = cmd()
        .args(["token", "init-practice", "--dir"])
        .arg(&hsm)
        .args(["--keyholders", labels, "--type", "none", "--json"])
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
    run_script(room, "bootstrap-root", answers, &room.pins)
}

fn run_script(room: &Room, script: &str, answers: &Path, pins: &str) -> (i32, String, String) {
    run_script_env(room, script, answers, pins, &[])
}

fn run_script_env(
    room: &Room,
    script: &str,
    answers: &Path,
    pins: &str,
    env: &[(&str, &Path)],
) -> (i32, String, String) {
    run_script_with(conclave, room, script, answers, pins, env)
}

fn run_script_with(
    cmd: fn() -> Command,
    room: &Room,
    script: &str,
    answers: &Path,
    pins: &str,
    env: &[(&str, &Path)],
) -> (i32, String, String) {
    let mut child = cmd()
        .envs(env.iter().copied())
        .args(["ceremony", "run", script, "--workspace"])
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
    let _ = child.stdin.take().unwrap().write_all(pins.as_bytes());
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
    // The answers also name a folder on "removable media" that receives the export: a folder
    // of this machine that a fake system tree shows mounted from a USB stick's partition.
    let mount = room.ws.parent().unwrap().join("stick");
    std::fs::create_dir(&mount).unwrap();
    let system = common::fake_usb_system(room.ws.parent().unwrap(), &mount);
    let stick = mount.join("conclave-export");
    let a = answers(&room, true, &format!("export_to = \"{}\"", stick.display()));
    let (code, out, err) = run_script_env(
        &room,
        "bootstrap-root",
        &a,
        &room.pins,
        &[("CONCLAVE_TEST_SYSTEM_ROOT", &system)],
    );
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
    // The sealed transcript travels with the export, on the stick too; SHA256SUMS, written
    // again after the seal, lists it; `usb import` recognises it.
    for f in [
        "1.root.json",
        "1.targets.json",
        "SHA256SUMS",
        "bootstrap-root.transcript.jsonl",
    ] {
        assert_eq!(
            std::fs::read(stick.join(f)).unwrap(),
            std::fs::read(export.join(f)).unwrap(),
            "{f} on the stick"
        );
    }
    assert_eq!(
        std::fs::read(stick.join("bootstrap-root.transcript.jsonl")).unwrap(),
        std::fs::read(room.ws.join("bootstrap-root.transcript.jsonl")).unwrap(),
        "the sealed transcript as the workspace holds it"
    );
    let sums = std::fs::read_to_string(stick.join("SHA256SUMS")).unwrap();
    assert!(
        sums.lines()
            .any(|l| l.ends_with("  bootstrap-root.transcript.jsonl")),
        "{sums}"
    );
    let import = conclave()
        .args(["usb", "import"])
        .arg(&stick)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&import.stdout);
    assert_eq!(import.status.code(), Some(0), "{listing}");
    assert!(
        listing.contains("ceremony transcript: script bootstrap-root")
            && listing.contains("sealed (seal "),
        "{listing}"
    );
    assert!(
        listing.contains("SHA256SUMS: all 3 files match"),
        "{listing}"
    );
    let transcript =
        std::fs::read_to_string(room.ws.join("bootstrap-root.transcript.jsonl")).unwrap();
    assert!(
        transcript.contains(&stick.display().to_string()),
        "the destination is recorded"
    );
    assert!(transcript.contains("\"ada\"") && transcript.contains("BAG-A1234567"));
    // A practice run without a reference time took the machine clock and recorded that it did.
    assert!(transcript.contains("\"by\":\"practice\""), "{transcript}");
    for line in room.pins.lines() {
        let pin = line.split_once('=').unwrap().1;
        assert!(!transcript.contains(pin) && !out.contains(pin) && !err.contains(pin));
    }
}

/// `export_to` on the appliance's own disk (any folder that is not on a mounted removable or
/// USB medium): refused before anything is written there, naming the folder; before this fix the
/// export was written to the internal disk and reported as a success.
#[test]
fn export_to_a_folder_that_is_not_removable_media_is_refused() {
    let room = room();
    let stick = room
        .ws
        .parent()
        .unwrap()
        .join("not-a-stick/conclave-export");
    let a = answers(&room, true, &format!("export_to = \"{}\"", stick.display()));
    let (code, out, err) = run(&room, &a);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains(&stick.display().to_string())
            && err.contains("not on removable media")
            && err.contains("nothing was written"),
        "{err}"
    );
    assert!(!stick.exists(), "nothing was written there");
    assert!(
        !room.ws.join("export").join("SHA256SUMS").exists(),
        "nor to the workspace's export"
    );
}

#[test]
fn a_real_run_stops_at_a_failed_airgap_check_before_any_key_exists() {
    let room = room();
    let a = answers(&room, false, &reference_time(time::Duration::ZERO));
    let airgapped = String::from_utf8_lossy(&conclave().arg("selfcheck").output().unwrap().stdout)
        .contains("air-gapped: yes");
    let (code, out, err) = run(&room, &a);
    if airgapped {
        // Air-gapped, the run goes on to the room's tokens, which are SoftHSM2 ones: a real
        // ceremony refuses them (`a_real_ceremony_never_uses_softhsm2_tokens`).
        assert_eq!(code, 1, "{out}{err}");
        assert!(err.contains("a real ceremony never uses one"), "{err}");
        return;
    }
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("not air-gapped"), "{err}");
    assert!(!room.ws.join("export").exists(), "nothing exported");
}

/// A real ceremony never lands on SoftHSM2, whatever names it: the appliance's configuration
/// (`pkcs11.module`) or the answers file's `module` (the token is judged by its manufacturer
/// too, so SoftHSM2 tokens behind p11-kit-proxy are refused as well: the unit test
/// `softhsm2_tokens_are_known_by_maker_or_module`). Run air-gapped (`unshare
/// --net --mount`, as root, as `make test` runs here) so that the run gets past its air-gap
/// check to the tokens; before, it generated the root keys on the SoftHSM2 tokens and exported
/// a root. The same answers marked `practice = true` are not refused.
#[test]
fn a_real_ceremony_never_uses_softhsm2_tokens() {
    let airgapped = |room: &Room, a: &Path, config: &Path| {
        let mut cmd = Command::new("unshare");
        cmd.args(["--net", "--mount", "sh", "-c"])
            .arg("mount -t sysfs sysfs /sys || { echo 'unshare-airgap: cannot mount sysfs' >&2; exit 97; }; exec \"$@\"")
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_conclave"))
            .args(["ceremony", "run", "bootstrap-root", "--workspace"])
            .arg(&room.ws)
            .arg("--answers")
            .arg(a)
            .arg("--pin-stdin")
            .env("SOFTHSM2_CONF", &room.conf)
            .env("CONCLAVE_CONFIG", config);
        let run =
            common::run_with_timeout(&mut cmd, room.pins.as_bytes(), Duration::from_secs(180));
        assert!(
            run.code() != 97 && !run.stderr.contains("unshare: "),
            "this test makes an air-gapped room with `unshare --net --mount` (run as root): {run:?}"
        );
        run
    };
    let when = reference_time(time::Duration::ZERO);
    for named_by in ["configuration", "answers"] {
        let room = room();
        let dir = room.ws.parent().unwrap().to_path_buf();
        let config = dir.join("config.toml");
        let (config_text, extra) = if named_by == "configuration" {
            (format!("[pkcs11]\nmodule = \"{SOFTHSM}\"\n"), when.clone())
        } else {
            (String::new(), format!("{when}\nmodule = \"{SOFTHSM}\""))
        };
        std::fs::write(&config, config_text).unwrap();
        let a = answers(&room, false, &extra);
        let run = airgapped(&room, &a, &config);
        assert_eq!(run.code(), 1, "named by the {named_by}: {run:?}");
        assert!(
            run.stderr.contains("is a SoftHSM2 token")
                && run.stderr.contains("a real ceremony never uses one")
                && run.stderr.contains("practice = true"),
            "named by the {named_by}: {run:?}"
        );
        assert!(
            !room.ws.join("export").join("1.root.json").exists(),
            "named by the {named_by}: no root made: {run:?}"
        );
        let t = std::fs::read_to_string(room.ws.join("bootstrap-root.transcript.jsonl"))
            .unwrap_or_default();
        assert!(
            !t.contains("\"key-generated\""),
            "named by the {named_by}: no key generated: {t}"
        );
        // Practice on the same tokens goes through.
        let room = self::room();
        let a = answers(&room, true, &extra);
        let run = airgapped(&room, &a, &config);
        assert_eq!(run.code(), 0, "practice, named by the {named_by}: {run:?}");
    }
}

/// The answers file's `reference_time` line: the time a reference clock shows now, moved by
/// `shift` (`YYYY-MM-DD HH:MM` UTC).
fn reference_time(shift: time::Duration) -> String {
    let t = time::OffsetDateTime::now_utc() + shift;
    format!(
        "reference_time = \"{:04}-{:02}-{:02} {:02}:{:02}\"",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

#[test]
fn a_real_run_without_a_reference_time_is_refused_before_any_key_exists() {
    // Before, the clock step took the machine clock as it was: a clock three years back made
    // a root that expired before the one it replaced.
    let room = room();
    let a = answers(&room, false, "");
    let (code, out, err) = run(&room, &a);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("confirms the machine clock against a reference time")
            && err.contains("reference_time = \"YYYY-MM-DD HH:MM\"")
            && err.contains("answers file"),
        "{err}"
    );
    assert!(
        !room.ws.join("bootstrap-root.transcript.jsonl").exists(),
        "no ceremony began"
    );
    assert!(!room.ws.join("export").exists(), "nothing exported");
}

#[test]
fn the_clock_is_confirmed_against_the_answers_reference_time() {
    // A machine clock three years off the room's reference stops the ceremony at its clock
    // step, before any key exists, naming the difference.
    let room = room();
    let a = answers(
        &room,
        true,
        &reference_time(time::Duration::days(3 * 365 + 1)),
    );
    let (code, out, err) = run(&room, &a);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("the machine clock")
            && err.contains("is off: 109")
            && err.contains("behind the reference time")
            && err.contains("set the machine clock"),
        "{err}"
    );
    let transcript = transcript_text(&room);
    assert!(!transcript.contains("key-generated"), "{transcript}");
    assert!(!transcript.contains("clock-confirmed"), "{transcript}");
    // A reference within five minutes: the ceremony goes on, the reference and the difference
    // recorded with the clock.
    let room = self::room();
    let a = answers(&room, true, &reference_time(time::Duration::ZERO));
    let (code, out, err) = run(&room, &a);
    assert_eq!(code, 0, "{out}{err}");
    let transcript = transcript_text(&room);
    assert!(
        transcript.contains("\"by\":\"reference\"")
            && transcript.contains("\"difference_seconds\":"),
        "{transcript}"
    );
}

/// `conclave` with its clock two years ahead (libfaketime's `faketime -f +730d`).
fn conclave_two_years_ahead() -> Command {
    let mut c = Command::new("faketime");
    c.args(["-f", "+730d", env!("CARGO_BIN_EXE_conclave")]);
    c
}

#[test]
fn a_resumed_run_whose_clock_jumped_confirms_it_again() {
    // Before, a ceremony resumed with the clock two years ahead went on with the clock it had
    // confirmed, and sealed metadata already expired in real time.
    let room = room();
    let a = answers(&room, true, "");
    // carol's PIN is wrong: the run stops at her key, after the clock step.
    let wrong: String = room
        .pins
        .lines()
        .map(|l| {
            if l.starts_with("carol=") {
                "carol=000000\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let (code, out, err) = run_script(&room, "bootstrap-root", &a, &wrong);
    assert_ne!(code, 0, "{out}{err}");
    let before = transcript_text(&room);
    assert_eq!(
        before.matches("\"action\":\"clock-confirmed\"").count(),
        1,
        "{before}"
    );
    assert!(before.contains("key-generated"), "{before}");
    // Resumed two years later: the clock is confirmed again before the ceremony goes on.
    let (code, out, err) = run_script_with(
        conclave_two_years_ahead,
        &room,
        "bootstrap-root",
        &a,
        &room.pins,
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let after = transcript_text(&room);
    let records: Vec<&str> = after.lines().collect();
    let clocks: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("\"clock-confirmed\""))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(clocks.len(), 2, "{after}");
    assert!(
        records[clocks[1] - 1].contains("\"resume\""),
        "confirmed again right after the resume: {after}"
    );
    let year = (time::OffsetDateTime::now_utc() + time::Duration::days(730)).year();
    assert!(
        records[clocks[1]].contains(&format!("\"time\":\"{year}-")),
        "{}",
        records[clocks[1]]
    );
    // The sealed ceremony run again (clock back to now) changes nothing, and says how another
    // one starts.
    let (code, out, err) = run(&room, &a);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("already complete and sealed; nothing was changed")
            && out.contains(
                "a workspace holds one bootstrap-root ceremony: another one starts in a new workspace"
            ),
        "{out}"
    );
    assert_eq!(
        transcript_text(&room)
            .matches("\"action\":\"clock-confirmed\"")
            .count(),
        2
    );
}

#[test]
fn answers_never_carry_pins() {
    let room = room();
    let a = answers(&room, true, "pins = { alice = \"123456\" }");
    let (code, _, err) = run(&room, &a);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("answers never hold PINs"), "{err}");
}

#[test]
fn a_keyholder_replaces_their_own_token_in_a_root_rotation() {
    // alice brings a second token (alice-new): her old key signs for the current root's
    // threshold, her new key (generated in the new token) for the new root's.
    let room = room_with("alice,bob,carol,alice-new");
    let pins: String = room
        .pins
        .lines()
        .filter(|l| !l.starts_with("alice-new="))
        .map(|l| format!("{l}\n"))
        .collect();
    let new_pin = room
        .pins
        .lines()
        .find_map(|l| l.strip_prefix("alice-new="))
        .unwrap()
        .to_string();
    let a = answers(&room, true, "");
    let (code, out, err) = run_script(&room, "bootstrap-root", &a, &pins);
    assert_eq!(code, 0, "{out}{err}");
    let path = room.ws.parent().unwrap().join("rotation.toml");
    std::fs::write(
        &path,
        "practice = true\nacknowledgement = \"BAG-A1234568\"\n\n[people]\nadministrator = \"ada\"\nkeyholders = [\"alice\", \"bob\", \"carol\"]\nwitnesses = [\"wendy\"]\n\n[parameters]\nadd_keyholders = \"alice\"\nremove_keyholders = \"alice\"\nkey_type = \"ed25519\"\n\n[tokens]\nalice = \"alice-new\"\n",
    )
    .unwrap();
    let both = format!("{pins}alice@alice-new={new_pin}\n");
    let (code, out, err) = run_script(&room, "rotate-root-keys", &path, &both);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(&new_pin) && !err.contains(&new_pin));
    let export = room.ws.join("export");
    let v1: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("1.root.json")).unwrap()).unwrap();
    let v2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("2.root.json")).unwrap()).unwrap();
    let alice_keys = |root: &serde_json::Value| -> Vec<String> {
        root["signed"]["roles"]["root"]["keyids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .filter(|id| root["signed"]["keys"][id]["x-tuf-on-ci-keyowner"] == "alice")
            .collect()
    };
    let (old, new) = (alice_keys(&v1), alice_keys(&v2));
    assert_eq!((old.len(), new.len()), (1, 1));
    assert_ne!(old, new, "alice's root key was replaced");
    // Both of alice's keys signed root v2: the old one for v1's threshold, the new one for v2's.
    let signers: Vec<&str> = v2["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap())
        .collect();
    assert!(signers.contains(&old[0].as_str()), "{signers:?}");
    assert!(signers.contains(&new[0].as_str()), "{signers:?}");
    // The new key is in the new token: the token list shows it on alice-new.
    let list = conclave()
        .args(["token", "list", "--json"])
        .env("SOFTHSM2_CONF", &room.conf)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    let tokens: serde_json::Value = serde_json::from_str(&text).unwrap();
    let on_new = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "alice-new")
        .unwrap()
        .to_string();
    // Root lists the key with its owner (a different key id); the public key is the same.
    let public = v2["signed"]["keys"][&new[0]]["keyval"]["public"]
        .as_str()
        .unwrap();
    assert!(on_new.contains(public), "{on_new}");
    // Clients follow the rotation.
    let chain = common::python_root_chain(&export);
    assert_eq!(chain.code(), 0, "python-tuf refused: {chain:?}");
}

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// `conclave ceremony run` with `--config` (or `CONCLAVE_CONFIG`) naming the module.
fn run_with_config(
    room: &Room,
    answers: &Path,
    config: &Path,
    by_env: bool,
) -> (i32, String, String) {
    let mut cmd = conclave();
    if by_env {
        cmd.env("CONCLAVE_CONFIG", config);
    } else {
        cmd.arg("--config")
            .arg(config)
            .env_remove("CONCLAVE_CONFIG");
    }
    let mut child = cmd
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
    let _ = child.stdin.take().unwrap().write_all(room.pins.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ceremony_run_takes_the_module_from_the_configuration_and_says_which_it_loaded() {
    let room = room();
    let dir = room.ws.parent().unwrap().to_path_buf();
    // A configured module that is missing stops the run before anything is written, by
    // --config and by CONCLAVE_CONFIG alike (before, `ceremony run` ignored the configuration).
    let missing = dir.join("missing-config.toml");
    std::fs::write(
        &missing,
        "[pkcs11]\nmodule = \"/nonexistent/vendor-pkcs11.so\"\n",
    )
    .unwrap();
    let a = answers(&room, false, "");
    for by_env in [false, true] {
        let (code, out, err) = run_with_config(&room, &a, &missing, by_env);
        assert_eq!(code, 2, "{out}{err}");
        assert!(
            err.contains("/nonexistent/vendor-pkcs11.so")
                && err.contains("missing-config.toml:2 (pkcs11.module)"),
            "{err}"
        );
        assert!(!room.ws.join("bootstrap-root.transcript.jsonl").exists());
    }
    // A real run without a module named never falls back to SoftHSM2.
    let empty = dir.join("empty-config.toml");
    std::fs::write(&empty, "").unwrap();
    let (_, out, err) = run_with_config(&room, &a, &empty, false);
    assert!(
        !err.contains("libsofthsm2.so (chosen"),
        "a real ceremony loaded SoftHSM2 by itself: {out}{err}"
    );
    // The configured module is loaded and named (in a new room: the real run above may have
    // begun a transcript before its air-gap check stopped it).
    let room = self::room();
    let dir = room.ws.parent().unwrap().to_path_buf();
    let good = dir.join("config.toml");
    std::fs::write(&good, format!("[pkcs11]\nmodule = \"{SOFTHSM}\"\n")).unwrap();
    let a = answers(&room, true, "");
    let (code, out, err) = run_with_config(&room, &a, &good, false);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(&format!(
            "PKCS#11 module {SOFTHSM} (chosen by {}:2 (pkcs11.module))",
            good.display()
        )),
        "{err}"
    );
}

#[test]
fn a_second_run_on_a_workspace_in_use_is_refused_naming_the_holder() {
    // Before, two runs on one workspace wove two hash chains into one transcript and both
    // created tokens. Now the first holds the workspace's lock for its whole run.
    let room = room();
    let a = answers(&room, true, "");
    let held =
        conclave::driver::WorkspaceLock::acquire(&room.ws, &conclave::driver::SystemClock).unwrap();
    let (code, out, err) = run(&room, &a);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("is in use by another conclave run")
            && err.contains(&format!("pid {}", std::process::id())),
        "the holder is named: {err}"
    );
    assert!(
        !room.ws.join("bootstrap-root.transcript.jsonl").exists(),
        "nothing was started"
    );
    // The lock goes with its holder (the kernel releases it also after kill -9): the same
    // command then runs.
    drop(held);
    let (code, out, err) = run(&room, &a);
    assert_eq!(code, 0, "{out}{err}");
}

fn answers_with(room: &Room, parameters: &str) -> PathBuf {
    let path = room.ws.parent().unwrap().join("answers.toml");
    std::fs::write(
        &path,
        format!(
            "practice = true\nacknowledgement = \"BAG-A1234567\"\n\n[people]\nadministrator = \"ada\"\nkeyholders = [\"alice\", \"bob\", \"carol\"]\nwitnesses = [\"wendy\"]\n\n[parameters]\n{parameters}\n"
        ),
    )
    .unwrap();
    path
}

fn transcript_text(room: &Room) -> String {
    let mut text = String::new();
    for e in std::fs::read_dir(&room.ws).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".transcript.jsonl") {
            text.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
    text
}

/// The compatibility gate on the keyholders' tokens: P-384 keys, which tough and tuf-js clients
/// reject, are refused when the parameters are recorded, before any token generates a key;
/// with the clients named in accept_client_loss the ceremony runs and the transcript records the
/// parameter and the accepted loss.
#[test]
fn p384_keys_are_refused_before_any_key_exists_unless_the_loss_is_accepted() {
    let room = room();
    let a = answers_with(&room, "key_type = \"ecdsa-p384\"");
    let (code, out, err) = run(&room, &a);
    assert_ne!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("key_type = \"ecdsa-p384\"")
            && all.contains("tough and tuf-js clients reject it")
            && all.contains("accept_client_loss"),
        "{all}"
    );
    assert!(!transcript_text(&room).contains("key-generated"));
    assert!(!room.ws.join("export/1.root.json").exists());

    let room = self::room();
    let a = answers_with(
        &room,
        "key_type = \"ecdsa-p384\"\naccept_client_loss = \"tough,tuf-js\"",
    );
    let (code, out, err) = run(&room, &a);
    assert_eq!(code, 0, "{out}{err}");
    let t = transcript_text(&room);
    assert!(t.contains("\"accept_client_loss\":\"tough,tuf-js\""), "{t}");
    assert!(
        t.contains("tough and tuf-js clients will reject this root: $.signed.keys."),
        "{t}"
    );
    assert!(room.ws.join("export/1.root.json").exists());
}

/// With `--pin-stdin`, no keyholder's PIN is left in the process's memory once the ceremony is
/// done (the binary stops itself at exit in test builds; the test reads its memory as root).
/// Before, all three PINs sat in the standard input buffer, which is never wiped.
#[test]
fn no_pin_is_left_in_memory_after_the_ceremony() {
    if !cfg!(debug_assertions) {
        eprintln!("skipped: the stop hook exists in debug builds only");
        return;
    }
    if !common::is_root() {
        eprintln!("skipped: reading the memory of a process that is not dumpable needs root");
        return;
    }
    let room = room();
    let a = answers(&room, true, "");
    let mut child = conclave()
        .env("CONCLAVE_TEST_STOP_AT_EXIT", "1")
        .args(["ceremony", "run", "bootstrap-root", "--workspace"])
        .arg(&room.ws)
        .arg("--answers")
        .arg(&a)
        .arg("--pin-stdin")
        .env("SOFTHSM2_CONF", &room.conf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(room.pins.as_bytes())
        .unwrap();
    let pid = child.id();
    common::wait_until_stopped(pid, Duration::from_secs(300));
    let pins: Vec<&str> = room
        .pins
        .lines()
        .map(|l| l.split_once('=').unwrap().1)
        .collect();
    let found = common::found_in_memory(pid, &pins);
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
    assert!(found.is_empty(), "PINs left in memory: {found:#?}");
}

/// Every file and folder under `dir` with its permission bits, relative to `dir`.
fn modes_under(dir: &Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = p.symlink_metadata().unwrap();
            if meta.file_type().is_symlink() {
                continue;
            }
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            out.push((rel, meta.permissions().mode() & 0o7777));
            if meta.is_dir() {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

/// At umask 000 nothing Conclave writes is writable by others: the practice tokens'
/// softhsm2.conf and token folder are the owner's only, the transcript, the export and the
/// key-event log are 0644 in 0755 folders. Before, they followed the umask (world-writable).
#[test]
fn modes_do_not_follow_the_callers_umask() {
    let room = room_made_by("alice,bob,carol", conclave_umask_000);
    let a = answers(&room, true, "log_origin = \"registry.example/key-events\"");
    let (code, out, err) = run_script_with(
        conclave_umask_000,
        &room,
        "bootstrap-root",
        &a,
        &room.pins,
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let hsm = room.conf.parent().unwrap();
    let conf_mode = modes_under(hsm)
        .into_iter()
        .find(|(n, _)| n == "softhsm2.conf")
        .unwrap()
        .1;
    assert_eq!(conf_mode, 0o600, "softhsm2.conf");
    let all: Vec<(String, u32)> = modes_under(hsm)
        .into_iter()
        .map(|(n, m)| (format!("hsm/{n}"), m))
        .chain(
            modes_under(&room.ws)
                .into_iter()
                .map(|(n, m)| (format!("ws/{n}"), m)),
        )
        .collect();
    let writable: Vec<_> = all.iter().filter(|(_, m)| m & 0o022 != 0).collect();
    assert!(writable.is_empty(), "writable by others: {writable:?}");
    let mode = |name: &str| all.iter().find(|(n, _)| n == name).map(|(_, m)| *m);
    assert_eq!(mode("ws/bootstrap-root.transcript.jsonl"), Some(0o644));
    assert_eq!(mode("ws/export"), Some(0o755));
    assert_eq!(mode("ws/export/1.root.json"), Some(0o644));
    assert_eq!(mode("ws/export/SHA256SUMS"), Some(0o644));
    assert_eq!(mode("hsm/tokens"), Some(0o700));
    assert!(
        all.iter().any(|(n, m)| n.contains("log") && *m == 0o644),
        "the key-event log's files: {all:?}"
    );
}

/// A wrong PIN stops the run with exit code 1 (refused, as docs/hsm.md and
/// docs/ceremony-guide.md say), and the transcript records the failed attempt: the step, the
/// keyholder and the token's answer, never the PIN typed. The same command with the right PIN
/// then finishes the ceremony.
#[test]
fn a_wrong_pin_exits_1_and_the_failed_attempt_is_recorded_without_the_pin() {
    let room = room();
    let a = answers(&room, true, "");
    let wrong = "bob=97531864";
    let pins: String = room
        .pins
        .lines()
        .map(|l| if l.starts_with("bob=") { wrong } else { l })
        .map(|l| format!("{l}\n"))
        .collect();
    let (code, out, err) = run_script(&room, "bootstrap-root", &a, &pins);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("wrong PIN") && err.contains("bob"), "{err}");
    // The stop says what was left in which token: alice's key, generated before bob's turn.
    assert!(
        err.contains("stopped at step 6: keys generated so far stay in the tokens")
            && err.contains("alice: key ")
            && err.contains("label \"alice\""),
        "{err}"
    );
    let transcript = transcript_text(&room);
    let failure = transcript
        .lines()
        .find(|l| l.contains("\"exception\"") && l.contains("wrong PIN"))
        .unwrap_or_else(|| panic!("the failed attempt is not recorded:\n{transcript}"));
    assert!(
        failure.contains("step ")
            && failure.contains("bob")
            && failure.contains("CKR_PIN_INCORRECT"),
        "{failure}"
    );
    assert!(!transcript.contains("97531864") && !err.contains("97531864"));
    let (code, out, err) = run(&room, &a);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(": VALID"), "{out}");
}

/// One dead token does not stall `ceremony run`: the answers file's `[skip]` names carol with a
/// reason; she is skipped at signing and at the seal, each skip recorded, and the transcript's
/// display and the auditor's report show both. `close_signing_when_met` closes signing once
/// both thresholds are met: the keyholder left is never asked. (Before: every keyholder present
/// had to sign, and a keyholder whose token could not sign the seal was left out unrecorded.)
#[test]
fn skipped_keyholders_and_signing_closed_when_met_are_recorded() {
    let room = room();
    let a = answers(&room, true, "");
    let text = std::fs::read_to_string(&a).unwrap();
    std::fs::write(
        &a,
        format!("{text}\n[skip]\ncarol = \"token does not start\"\n"),
    )
    .unwrap();
    let (code, out, err) = run(&room, &a);
    assert_eq!(code, 0, "{out}{err}");
    let tpath = room.ws.join("bootstrap-root.transcript.jsonl");
    let t = std::fs::read_to_string(&tpath).unwrap();
    assert!(t.contains("\"action\":\"signer-skipped\""), "{t}");
    assert!(t.contains("\"action\":\"seal-skipped\""), "{t}");
    assert!(
        !t.contains("\"keyholder\":\"carol\",\"role\""),
        "carol never signed"
    );
    let export = room.ws.join("export");
    let report = room.ws.parent().unwrap().join("report.md");
    let v = conclave()
        .args(["transcript", "verify"])
        .arg(&tpath)
        .arg("--artifacts")
        .arg(&export)
        .arg("--trusted-root")
        .arg(export.join("1.root.json"))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("SKIPPED at signing: carol does not sign (token does not start)")
            && shown.contains("SKIPPED at the seal: carol does not sign the seal"),
        "{shown}"
    );
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(
        md.contains("SKIP") && md.contains("carol does not sign the seal: token does not start"),
        "{md}"
    );

    // Signing closed once both thresholds are met: carol is not asked.
    let room = self::room();
    let a = answers(&room, true, "close_signing_when_met = true");
    let (code, out, err) = run(&room, &a);
    assert_eq!(code, 0, "{out}{err}");
    let t = std::fs::read_to_string(room.ws.join("bootstrap-root.transcript.jsonl")).unwrap();
    assert!(t.contains("\"action\":\"signing-closed\""), "{t}");
    assert!(
        !t.contains("\"keyholder\":\"carol\",\"role\""),
        "carol was not asked"
    );
    assert!(!t.contains("skipped"), "nobody was skipped: {t}");
}

/// The fault point (its ordinal in a `CONCLAVE_TEST_FAULT_LOG`) where a practice
/// bootstrap-root's first seal signature is appended (a counting run in a room of its own).
fn first_seal_signature_point() -> usize {
    let counting = room();
    let log = counting.ws.parent().unwrap().join("faults.log");
    let a = answers(&counting, true, "");
    let (code, out, err) = run_script_env(
        &counting,
        "bootstrap-root",
        &a,
        &counting.pins,
        &[("CONCLAVE_TEST_FAULT_LOG", &log)],
    );
    assert_eq!(code, 0, "{out}{err}");
    std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .position(|l| l.ends_with(" transcript append seal-signature"))
        .expect("a seal signature is appended")
        + 1
}

/// A practice bootstrap-root killed (SIGKILL, src/fault.rs) at point `at`, the first seal
/// signature: the seal is written, nobody signed it; then carol's SoftHSM2 token is deleted, as
/// a token unplugged for good. The room and its answers (no withdrawal yet).
fn sealed_then_carol_gone(at: usize) -> (Room, PathBuf) {
    let room = room();
    let log = room.ws.parent().unwrap().join("faults.log");
    let kill = at.to_string();
    let a = answers(&room, true, "");
    let (code, out, err) = run_script_env(
        &room,
        "bootstrap-root",
        &a,
        &room.pins,
        &[
            ("CONCLAVE_TEST_FAULT_LOG", &log),
            ("CONCLAVE_TEST_FAULT_KILL_AT", Path::new(&kill)),
        ],
    );
    assert_ne!(code, 0, "killed at the first seal signature: {out}{err}");
    let _ = std::fs::remove_file(&log);
    let t = std::fs::read_to_string(room.ws.join("bootstrap-root.transcript.jsonl")).unwrap();
    assert!(
        t.contains("\"action\":\"seal\"") && !t.contains("\"action\":\"seal-signature\""),
        "{t}"
    );
    let del = Command::new("softhsm2-util")
        .args(["--delete-token", "--token", "carol"])
        .env("SOFTHSM2_CONF", &room.conf)
        .output()
        .unwrap();
    assert!(
        del.status.success(),
        "{}",
        String::from_utf8_lossy(&del.stderr)
    );
    (room, a)
}

/// Add `[withdraw] carol = REASON` to the answers file `a`.
fn withdraw_carol(a: &Path) {
    let text = std::fs::read_to_string(a).unwrap();
    std::fs::write(
        a,
        format!("{text}\n[withdraw]\ncarol = \"token died after the seal was written\"\n"),
    )
    .unwrap();
}

/// What is wrong with a finished withdrawal in `room`: one `seal-withdrawal`, two seals, the
/// new seal signed by alice and bob, `transcript verify` VALID anchored in the exported first
/// root, no temporary file left in the workspace.
fn withdrawal_problems(room: &Room) -> Vec<String> {
    let mut p = Vec::new();
    let tpath = room.ws.join("bootstrap-root.transcript.jsonl");
    let t = std::fs::read_to_string(&tpath).unwrap();
    for (action, n) in [("seal-withdrawal", 1), ("seal", 2), ("seal-signature", 2)] {
        let found = t.matches(&format!("\"action\":\"{action}\"")).count();
        if found != n {
            p.push(format!("{found} {action} records, {n} expected"));
        }
    }
    let export = room.ws.join("export");
    let v = conclave()
        .args(["transcript", "verify"])
        .arg(&tpath)
        .arg("--artifacts")
        .arg(&export)
        .arg("--trusted-root")
        .arg(export.join("1.root.json"))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&v.stdout);
    if v.status.code() != Some(0) || !shown.contains("Verdict: VALID (anchored") {
        p.push(format!("transcript verify: {shown}"));
    }
    let mut todo = vec![room.ws.clone()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.contains(".conclave-tmp") || name.contains(".partial") || name.ends_with(".tmp")
            {
                p.push(format!("leftover {}", path.display()));
            }
            if path.symlink_metadata().unwrap().is_dir() {
                todo.push(path);
            }
        }
    }
    p
}

/// Fault injection for the seal withdrawal (issue 19): the run that withdraws carol from the
/// written seal is killed (SIGKILL at a failpoint) at every durable boundary it crosses (with
/// `CONCLAVE_FAULTS_QUICK=1` only those from the `seal-withdrawal` record to the new seal's
/// first signature: each append and fsync, and the token's signature), then run again with the
/// same answers: every time the rerun finishes with one withdrawal, the new seal signed by
/// alice and bob, a transcript the auditor verifies, and no temporary file left.
#[test]
fn a_seal_withdrawal_resumes_from_a_power_cut_at_each_of_its_points() {
    let at = first_seal_signature_point();
    // The withdrawing run's points, counted once.
    let (room, a) = sealed_then_carol_gone(at);
    withdraw_carol(&a);
    let log = room.ws.parent().unwrap().join("withdraw.faults");
    let (code, out, err) = run_script_env(
        &room,
        "bootstrap-root",
        &a,
        &room.pins,
        &[("CONCLAVE_TEST_FAULT_LOG", &log)],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(withdrawal_problems(&room), Vec::<String>::new());
    let points: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, n)| n).to_string())
        .collect();
    let first = points
        .iter()
        .position(|p| p == "transcript append seal-withdrawal")
        .unwrap_or_else(|| panic!("no withdrawal among {points:?}"));
    let last = first
        + points[first..]
            .iter()
            .position(|p| p == "transcript fsync seal-signature")
            .unwrap_or_else(|| panic!("no seal signature after the withdrawal: {points:?}"));
    let window: Vec<usize> = (first + 1..=last + 1).collect();
    assert!(
        window.len() >= 6,
        "withdrawal, new seal and a signature: {:?}",
        &points[first..=last]
    );
    // Every point of the withdrawing run; with CONCLAVE_FAULTS_QUICK the withdrawal's only.
    let ks: Vec<usize> = if std::env::var_os("CONCLAVE_FAULTS_QUICK").is_some() {
        window
    } else {
        (1..=points.len()).collect()
    };
    let mut failures = Vec::new();
    let mut held = 0;
    for &k in &ks {
        let before = failures.len();
        let (room, a) = sealed_then_carol_gone(at);
        withdraw_carol(&a);
        let log = room.ws.parent().unwrap().join("k.faults");
        let kill = k.to_string();
        let (code, out, err) = run_script_env(
            &room,
            "bootstrap-root",
            &a,
            &room.pins,
            &[
                ("CONCLAVE_TEST_FAULT_LOG", &log),
                ("CONCLAVE_TEST_FAULT_KILL_AT", Path::new(&kill)),
            ],
        );
        let name = &points[k - 1];
        if code != -1 {
            failures.push(format!(
                "point {k} ({name}): not killed (exit {code}): {out}{err}"
            ));
            continue;
        }
        let (code, out, err) = run(&room, &a);
        if code != 0 {
            failures.push(format!("point {k} ({name}): the rerun failed: {out}{err}"));
            continue;
        }
        for problem in withdrawal_problems(&room) {
            failures.push(format!("point {k} ({name}): {problem}"));
        }
        if failures.len() == before {
            held += 1;
        }
    }
    eprintln!(
        "seal withdrawal: {} points in the withdrawing run, {} tried, {held} held",
        points.len(),
        ks.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A keyholder's token dies after the seal record is written (the run is killed there, then
/// carol's SoftHSM2 token is deleted, as a token unplugged for good): the rerun stops and says
/// how to finish without her instead of finishing short; with `[withdraw] carol = REASON` in
/// the answers, the withdrawal is recorded, a new seal lists alice and bob, both sign it, and
/// `transcript verify` passes and shows the withdrawal with its reason. (Before: a listed
/// signer whose token died after the seal blocked the seal for good.)
#[test]
fn a_token_that_dies_after_the_seal_is_written_is_withdrawn_by_the_answers() {
    let (room, a) = sealed_then_carol_gone(first_seal_signature_point());
    let tpath = room.ws.join("bootstrap-root.transcript.jsonl");

    // Without a withdrawal the run stops, naming the way out; nothing is exported as complete.
    let (code, out, err) = run(&room, &a);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("lists carol") && err.contains("[withdraw] carol"),
        "{out}{err}"
    );
    assert!(!out.contains("complete"), "{out}");

    withdraw_carol(&a);
    let (code, out, err) = run(&room, &a);
    assert_eq!(code, 0, "{out}{err}");
    let t = std::fs::read_to_string(&tpath).unwrap();
    assert!(t.contains("\"action\":\"seal-withdrawal\""), "{t}");
    assert_eq!(t.matches("\"action\":\"seal\"").count(), 2, "{t}");
    assert_eq!(t.matches("\"action\":\"seal-signature\"").count(), 2, "{t}");
    let export = room.ws.join("export");
    let report = room.ws.parent().unwrap().join("report.md");
    let v = conclave()
        .args(["transcript", "verify"])
        .arg(&tpath)
        .arg("--artifacts")
        .arg(&export)
        .arg("--trusted-root")
        .arg(export.join("1.root.json"))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("WITHDRAWN: key")
            && shown.contains("reason: \"token died after the seal was written\""),
        "{shown}"
    );
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(
        md.contains("Withdrawn from an earlier seal")
            && md.contains("token died after the seal was written"),
        "{md}"
    );
}
