//! Whole ceremonies on YubiKeys through ykcs11, emulated: `conclave ceremony run` against
//! SoftHSM2 tokens seen through the device-profile module (`tests/pkcs11-profile/`, profile
//! `ykcs11`), which imposes the documented behaviour of Yubico's `ykcs11` (yubico-piv-tool
//! `ykcs11/ykcs11.c` `C_Login` and `C_GenerateKeyPair`, `ykcs11/objects.c`): key generation
//! only after `C_Login(CKU_SO)` with the PIV management key, the first byte of `CKA_ID` as the
//! PIV slot, an occupied slot overwritten without asking, and on slot 9c a PIN verification
//! before every signature. None of this ran on a physical YubiKey.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::Run;
use common::profile::{Bench, ceremony_files, python_accepts, root_key_ids};

/// The factory-default PIV management key (3DES).
const FACTORY: &str = "010203040506070801020304050607080102030405060708";
/// A changed management key, as a registry sets it before a real ceremony.
const CHANGED: &str = "8f3a9c51d2e7b6404a1c9e2f7d3b5a6c8e1f0d2c4b6a7988";
/// Firmware without the YSA-2024-03 ECDSA advisory: 5.7.2, the bound for a YubiKey whose series
/// ykcs11 does not name (`YubiKey YK5` is also what a 5 FIPS or a Bio reports).
const FIXED_FIRMWARE: &str = "5.7.2";

/// Tokens `labels` seen as YubiKeys through the `ykcs11` profile (management key `mgmkey`,
/// firmware 5.7.2), and each keyholder's YubiKey label ("YubiKey PIV #serial").
fn yubikeys(labels: &str, mgmkey: &str) -> (Bench, Vec<(String, String)>) {
    let mut b = Bench::new(labels, "none");
    let run = b.conclave(&["token", "list", "--module", "MODULE", "--json"], "");
    assert_eq!(run.code(), 0, "{run:?}");
    let keys: Vec<(String, String)> = run.json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["flags"]["token_initialized"] == true)
        .map(|t| {
            // The profile shows the backing serial in decimal, as ykcs11 does.
            let hex = t["serial"].as_str().unwrap();
            let decimal = u64::from_str_radix(hex, 16).unwrap() % 100_000_000;
            (
                t["label"].as_str().unwrap().to_string(),
                format!("YubiKey PIV #{decimal}"),
            )
        })
        .collect();
    b.set("CONCLAVE_PROFILE", "ykcs11");
    b.set("CONCLAVE_PROFILE_FIRMWARE", FIXED_FIRMWARE);
    b.set("CONCLAVE_PROFILE_MGMKEY", mgmkey);
    (b, keys)
}

fn yubikey<'a>(keys: &'a [(String, String)], who: &str) -> &'a str {
    &keys.iter().find(|(w, _)| w == who).unwrap().1
}

/// A bootstrap-root workspace and answers file for alice, bob and carol on their YubiKeys
/// (P-256 keys; `extra` lines added at the top, e.g. `piv_slot`), with a key-event log.
fn answers(b: &Bench, keys: &[(String, String)], ws: &str, extra: &str) -> (String, String) {
    let (ws, answers) = ceremony_files(&b.root, ws, b.module(), "ecdsa-p256");
    let text = std::fs::read_to_string(&answers).unwrap();
    let mut text = format!("{extra}log_origin = \"registry.example/conclave-key-events\"\n{text}");
    text.push_str("\n[tokens]\n");
    for who in ["alice", "bob", "carol"] {
        text.push_str(&format!("{who} = \"{}\"\n", yubikey(keys, who)));
    }
    std::fs::write(&answers, text).unwrap();
    (ws, answers)
}

/// Standard input of `conclave ceremony run --pin-stdin`: each keyholder's PIN, and the
/// management key of each keyholder's YubiKey.
fn secrets(b: &Bench, who: &[&str], mgmkey: &str) -> String {
    who.iter()
        .map(|w| format!("{w}={}\nmanagement-key:{w}={mgmkey}\n", b.pin(w)))
        .collect()
}

fn args<'a>(script: &'a str, ws: &'a str, answers: &'a str) -> Vec<&'a str> {
    vec![
        "ceremony",
        "run",
        script,
        "--workspace",
        ws,
        "--answers",
        answers,
        "--pin-stdin",
    ]
}

/// The YubiKey's keys as `token list --json` shows them (public objects, no PIN).
fn keys_on(b: &Bench, label: &str) -> Vec<serde_json::Value> {
    let run = b.conclave(&["token", "list", "--module", "MODULE", "--json"], "");
    assert_eq!(run.code(), 0, "{run:?}");
    run.json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == label)
        .unwrap_or_else(|| panic!("no token {label}: {run:?}"))["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn transcript(ws: &str, name: &str) -> String {
    std::fs::read_to_string(Path::new(ws).join(name)).unwrap()
}

/// Nothing of `secret` in the run's output or in any file of the workspace.
fn never_written(run: &Run, ws: &str, secret: &str) {
    assert!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "a secret in the output: {run:?}"
    );
    for entry in walk(Path::new(ws)) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a secret in {}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `conclave` as in a real ceremony room: in a network namespace of its own with only the
/// loopback interface and a sysfs that shows it, so the ceremony's air-gap check passes
/// (needs root, as `make test` runs here: `unshare --net --mount`).
fn airgapped(b: &Bench, args: &[&str], stdin: &str) -> Run {
    let config = b.root.join("appliance-config.toml");
    std::fs::write(&config, format!("[pkcs11]\nmodule = \"{}\"\n", b.module())).unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "--mount", "sh", "-c"])
        .arg("mount -t sysfs sysfs /sys || { echo 'unshare-airgap: cannot mount sysfs' >&2; exit 97; }; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_conclave"))
        .args(args)
        .env("SOFTHSM2_CONF", &b.conf)
        .env("CONCLAVE_CONFIG", &config)
        .current_dir(&b.root);
    for (k, v) in &b.env {
        cmd.env(k, v);
    }
    let run = common::run_with_timeout(&mut cmd, stdin.as_bytes(), Duration::from_secs(180));
    assert!(
        run.code() != 97 && !run.stderr.contains("unshare: "),
        "this test makes an air-gapped room with `unshare --net --mount` (run as root): {run:?}"
    );
    run
}

/// [`answers`] for a real ceremony: not practice, with the reference clock's time.
fn real_answers(b: &Bench, keys: &[(String, String)], ws: &str) -> (String, String) {
    let (ws, answers) = answers(b, keys, ws, &reference_time());
    let text = std::fs::read_to_string(&answers).unwrap();
    std::fs::write(
        &answers,
        text.replace("practice = true\n", "practice = false\n"),
    )
    .unwrap();
    (ws, answers)
}

/// The answers' `reference_time` line for now (UTC), as the room reads a reference clock.
fn reference_time() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "reference_time = \"{:04}-{:02}-{:02} {:02}:{:02}\"\n",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// A whole bootstrap-root on three YubiKeys (practice, factory-default management key): each
/// P-256 key goes into PIV slot 9c after a management-key login, the slot is recorded with
/// the key (transcript and the auditor's report), the factory key is recorded as an exception
/// for each token; every signature on slot 9c (root and targets, the seal, the key-event log
/// checkpoint right after it) gets its PIN verification; the seal and the log verify and
/// python-tuf accepts the root. Then rotate-root-keys in which alice moves to a new YubiKey:
/// her old key signs for the current root, her new key (slot 9c of the new YubiKey) for the new
/// one; python-tuf follows the chain.
#[test]
fn a_whole_ceremony_on_yubikeys_generates_in_slot_9c_then_alice_moves_to_a_new_yubikey() {
    let (b, keys) = yubikeys("alice,bob,carol,alice-new", FACTORY);
    let (ws, answers) = answers(&b, &keys, "ws", "");
    let stdin = secrets(&b, &["alice", "bob", "carol"], FACTORY);
    let run = b.conclave(&args("bootstrap-root", &ws, &answers), &stdin);
    assert_eq!(run.code(), 0, "bootstrap-root: {run:?}");
    assert!(run.stdout.contains("\nseal: "), "{run:?}");
    let log = run
        .stdout
        .lines()
        .find(|l| l.starts_with("conclave log verify "))
        .unwrap_or_else(|| panic!("no key-event log verified: {run:?}"));
    assert!(
        log.contains("export/log-001 ")
            && log.contains(": VALID (checkpoint signed here by alice, bob, carol)"),
        "{log}"
    );
    let export = Path::new(&ws).join("export");
    let root = export.join("1.root.json");
    python_accepts(&root);
    assert_eq!(root_key_ids(&root).len(), 3);
    let text = std::fs::read_to_string(&root).unwrap();
    assert_eq!(text.matches("\"ecdsa-sha2-nistp256\"").count(), 3, "{text}");

    let t = transcript(&ws, "bootstrap-root.transcript.jsonl");
    assert_eq!(t.matches("\"piv_slot\":\"9c\"").count(), 3, "{t}");
    assert_eq!(
        t.matches("still has the factory-default PIV management key")
            .count(),
        3,
        "the practice run records the factory key of each YubiKey: {t}"
    );
    never_written(&run, &ws, FACTORY);
    for who in ["alice", "bob", "carol"] {
        never_written(&run, &ws, &b.pin(who));
        // The key is in slot 9c (CKA_ID 02), labelled by the module.
        let on = keys_on(&b, yubikey(&keys, who));
        assert_eq!(on.len(), 1, "{who}: {on:?}");
        assert_eq!(on[0]["id"], "02", "{who}: {on:?}");
    }

    // The auditor sees the slot with each keyholder's token.
    let report = b.root.join("report.md");
    let tpath = Path::new(&ws).join("bootstrap-root.transcript.jsonl");
    let run = b.conclave(
        &[
            "transcript",
            "verify",
            tpath.to_str().unwrap(),
            "--artifacts",
            export.to_str().unwrap(),
            "--trusted-root",
            root.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(
        run.stdout
            .matches("(ecdsa-sha2-nistp256) in PIV slot 9c")
            .count(),
        3,
        "the printed transcript names the slot: {run:?}"
    );
    let md = std::fs::read_to_string(&report).unwrap();
    assert_eq!(md.matches(".so, PIV slot 9c |").count(), 3, "{md}");

    // alice moves to a new YubiKey.
    let new = yubikey(&keys, "alice-new").to_string();
    let rotation = b.root.join("rotation.toml");
    std::fs::write(
        &rotation,
        format!(
            "practice = true\nacknowledgement = \"BAG-A1234568\"\nmodule = \"{}\"\n\n[people]\nadministrator = \"ada\"\nkeyholders = [\"alice\", \"bob\", \"carol\"]\nwitnesses = [\"wendy\"]\n\n[parameters]\nadd_keyholders = \"alice\"\nremove_keyholders = \"alice\"\nkey_type = \"ecdsa-p256\"\n\n[tokens]\nalice = \"{new}\"\nbob = \"{}\"\ncarol = \"{}\"\n",
            b.module(),
            yubikey(&keys, "bob"),
            yubikey(&keys, "carol"),
        ),
    )
    .unwrap();
    let new_pin = b.pin("alice-new");
    let stdin = format!(
        "{}alice@{new}={new_pin}\nmanagement-key:alice@{new}={FACTORY}\n",
        secrets(&b, &["alice", "bob", "carol"], FACTORY)
    );
    let run = b.conclave(
        &args("rotate-root-keys", &ws, rotation.to_str().unwrap()),
        &stdin,
    );
    assert_eq!(run.code(), 0, "rotate-root-keys: {run:?}");
    assert!(run.stdout.contains("\nseal: "), "{run:?}");
    let log = run
        .stdout
        .lines()
        .find(|l| l.starts_with("conclave log verify "))
        .unwrap_or_else(|| panic!("no key-event log verified: {run:?}"));
    assert!(
        log.contains("export/log-002 --previous ") && log.contains("2.root.json: VALID"),
        "{log}"
    );
    let t = transcript(&ws, "rotate-root-keys-v2.transcript.jsonl");
    assert_eq!(t.matches("\"piv_slot\":\"9c\"").count(), 1, "{t}");
    assert!(t.contains(&format!("label \\\"{new}\\\"")), "{t}");
    never_written(&run, &ws, &new_pin);
    let on_new = keys_on(&b, &new);
    assert_eq!(on_new.len(), 1, "{on_new:?}");
    assert_eq!(on_new[0]["id"], "02", "{on_new:?}");
    let v2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("2.root.json")).unwrap()).unwrap();
    assert!(
        v2["signed"]["roles"]["root"]["keyids"]
            .as_array()
            .unwrap()
            .iter()
            .all(
                |id| !root_key_ids(&root).contains(&id.as_str().unwrap().to_string())
                    || v2["signed"]["keys"][id.as_str().unwrap()]["x-tuf-on-ci-keyowner"]
                        != "alice"
            ),
        "alice's old key left root: {v2}"
    );
    let chain = common::python_root_chain(&export);
    assert_eq!(chain.code(), 0, "python-tuf refused: {chain:?}");
}

/// A wrong management key: refused as such (not as a wrong PIN), the keyholder and token
/// named, the attempt recorded without the key, and nothing generated in the YubiKey.
#[test]
fn a_wrong_management_key_is_refused_by_name_and_nothing_is_generated() {
    let (b, keys) = yubikeys("alice,bob,carol", CHANGED);
    let (ws, answers) = answers(&b, &keys, "ws", "");
    let wrong = "00112233445566778899aabbccddeeff0011223344556677";
    let run = b.conclave(
        &args("bootstrap-root", &ws, &answers),
        &secrets(&b, &["alice", "bob", "carol"], wrong),
    );
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr.contains("generating the key of alice in PIV slot 9c: wrong PIV management key for token \"YubiKey PIV #"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("wrong PIN"), "{run:?}");
    assert!(
        keys_on(&b, yubikey(&keys, "alice")).is_empty(),
        "nothing generated"
    );
    let t = transcript(&ws, "bootstrap-root.transcript.jsonl");
    assert!(
        t.contains("wrong PIV management key: generating the key of alice"),
        "the attempt is recorded: {t}"
    );
    assert!(!t.contains("key-generated"), "{t}");
    never_written(&run, &ws, wrong);
    never_written(&run, &ws, CHANGED);

    // The right key continues the same ceremony.
    let run = b.conclave(
        &args("bootstrap-root", &ws, &answers),
        &secrets(&b, &["alice", "bob", "carol"], CHANGED),
    );
    assert_eq!(run.code(), 0, "{run:?}");
    python_accepts(&Path::new(&ws).join("export/1.root.json"));
    never_written(&run, &ws, CHANGED);
}

/// A real ceremony (air-gapped room, reference clock) refuses the factory-default
/// management key before anything is sent to the YubiKey, naming how to change it; nothing is
/// generated. With the changed key the same command runs the whole ceremony, recording no
/// exception about the management key.
#[test]
fn a_real_ceremony_refuses_the_factory_default_management_key() {
    let (mut b, keys) = yubikeys("alice,bob,carol", FACTORY);
    let (ws, answers) = real_answers(&b, &keys, "ws");
    let run = airgapped(
        &b,
        &args("bootstrap-root", &ws, &answers),
        &secrets(&b, &["alice", "bob", "carol"], FACTORY),
    );
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr
            .contains("still has the factory-default PIV management key; change it (ykman piv access change-management-key)"),
        "{run:?}"
    );
    assert!(
        keys_on(&b, yubikey(&keys, "alice")).is_empty(),
        "nothing generated"
    );
    never_written(&run, &ws, FACTORY);

    b.set("CONCLAVE_PROFILE_MGMKEY", CHANGED);
    let (ws, answers) = real_answers(&b, &keys, "ws-real");
    let run = airgapped(
        &b,
        &args("bootstrap-root", &ws, &answers),
        &secrets(&b, &["alice", "bob", "carol"], CHANGED),
    );
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(!run.stdout.contains("PRACTICE"), "{run:?}");
    let t = transcript(&ws, "bootstrap-root.transcript.jsonl");
    assert_eq!(t.matches("\"piv_slot\":\"9c\"").count(), 3, "{t}");
    assert!(!t.contains("management key"), "{t}");
    python_accepts(&Path::new(&ws).join("export/1.root.json"));
    never_written(&run, &ws, CHANGED);
}

/// An occupied PIV slot is refused before any secret is sent, naming the slot and the key id
/// of the key in it (PIV key generation would replace it without asking); that key stays.
/// The answers' per-keyholder slot then puts bob's key in slot 9d, recorded as such.
#[test]
fn an_occupied_slot_is_refused_naming_its_key_and_another_slot_can_be_chosen() {
    let (b, keys) = yubikeys("alice,bob,carol", FACTORY);
    let bob = yubikey(&keys, "bob").to_string();
    // A key already in bob's slot 9c (made with `token keygen`).
    let run = b.conclave(
        &[
            "token",
            "keygen",
            "--module",
            "MODULE",
            "--token",
            &bob,
            "--type",
            "ecdsa-p256",
            "--label",
            "ignored",
            "--practice",
            "--pin-stdin",
            "--json",
        ],
        &format!("{}\n{FACTORY}\n", b.pin("bob")),
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let there = run.json()["keyid"].as_str().unwrap().to_string();

    // A slot PIV does not have is refused before anything starts, naming the field.
    let (ws, answers) = answers(&b, &keys, "ws-bad", "piv_slot = \"9b\"\n");
    let stdin = secrets(&b, &["alice", "bob", "carol"], FACTORY);
    let run = b.conclave(&args("bootstrap-root", &ws, &answers), &stdin);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr
            .contains("piv_slot: \"9b\" is not a PIV key slot (9a, 9c, 9d, 9e or 82..95)"),
        "{run:?}"
    );
    assert!(
        !Path::new(&ws)
            .join("bootstrap-root.transcript.jsonl")
            .exists()
    );

    let (ws, answers) = self::answers(&b, &keys, "ws", "");
    let run = b.conclave(&args("bootstrap-root", &ws, &answers), &stdin);
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("the token of bob: token \"{bob}\""))
            && run.stderr.contains(&format!(
                "a key or certificate in PIV slot 9c (key id {there})"
            )),
        "{run:?}"
    );
    let on = keys_on(&b, &bob);
    assert_eq!(on.len(), 1, "{on:?}");
    assert_eq!(
        on[0]["keyid"],
        there.as_str(),
        "the key in 9c stays: {on:?}"
    );

    // bob's key goes into slot 9d instead: the same ceremony continues.
    let text = std::fs::read_to_string(&answers).unwrap();
    std::fs::write(&answers, format!("{text}\n[piv_slots]\nbob = \"9d\"\n")).unwrap();
    let run = b.conclave(&args("bootstrap-root", &ws, &answers), &stdin);
    assert_eq!(run.code(), 0, "{run:?}");
    let t = transcript(&ws, "bootstrap-root.transcript.jsonl");
    assert_eq!(t.matches("\"piv_slot\":\"9c\"").count(), 2, "{t}");
    assert_eq!(t.matches("\"piv_slot\":\"9d\"").count(), 1, "{t}");
    let on = keys_on(&b, &bob);
    let ids: Vec<&str> = on.iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{on:?}");
    assert!(
        ids.contains(&"02") && ids.contains(&"03"),
        "9c and 9d: {on:?}"
    );
    python_accepts(&Path::new(&ws).join("export/1.root.json"));
}

/// The terminal UI on three YubiKeys (practice): the administrator assigns each keyholder's
/// YubiKey, the keyholder types the PIN and then the management key in the same masked prompt;
/// a wrong management key says so and asks for it again (the PIN kept), nothing generated;
/// the key goes into slot 9c; signing and the seal ask each PIN and every slot 9c signature
/// gets its PIN verification.
#[test]
fn the_terminal_ui_asks_the_management_key_like_a_pin_and_again_when_it_is_wrong() {
    use common::tmux::Tmux;
    let (b, keys) = yubikeys("alice,bob,carol", CHANGED);
    let (ws, _) = answers(&b, &keys, "ws", "");
    let env: String = b.env.iter().map(|(k, v)| format!("{k}='{v}' ")).collect();
    let t = Tmux::start(
        "piv",
        &format!(
            "env SOFTHSM2_CONF='{}' CONCLAVE_CONFIG='{}' {env}{} tui --practice --workspace '{ws}' --script bootstrap-root",
            b.conf.display(),
            b.root.join("appliance-config.toml").display(),
            env!("CARGO_BIN_EXE_conclave"),
        ),
    );
    t.begin();
    t.open_with_roll_call("BAG-0042", ["ada", "alice, bob, carol", "wendy"]);
    t.wait_for("Public keys of the online roles");
    t.send(&["Enter"]);
    t.wait_for("│ y  yes");
    t.send(&["y"]);
    let wrong = "00112233445566778899aabbccddeeff0011223344556677";
    for who in ["alice", "bob", "carol"] {
        t.wait_for_words(&format!("Keyholder {who}:"));
        let label = yubikey(&keys, who);
        let mut found = false;
        for _ in 0..4 {
            let before = t.screen();
            t.send(&["t"]);
            let s = t.wait_change(&before);
            if s.contains(&format!("token \"{label}\"")) && s.contains("press a") {
                found = true;
                break;
            }
        }
        assert!(found, "{label} could not be selected:\n{}", t.screen());
        t.send(&["a"]);
        t.wait_for("│ y  yes");
        t.send(&["y"]);
        t.wait_for_words(&format!("is {who}'s for this"));
        t.send(&["Enter"]);
        t.wait_for("│ y  yes");
        t.send(&["y"]);
        t.wait_for(&format!("PIN of token {label} "));
        t.type_text(&b.pin(who));
        t.send(&["Enter"]);
        t.wait_for_words("PIV management key of token");
        if who == "alice" {
            t.type_text(wrong);
            let s = t.screen();
            assert!(!s.contains(wrong), "the management key is masked:\n{s}");
            t.send(&["Enter"]);
            t.wait_for_words("wrong PIV management key for token");
            let s = t.wait_for("management key of token");
            assert!(s.contains("(try again;"), "asked again:\n{s}");
            assert!(
                keys_on(&b, label).is_empty(),
                "nothing generated after a wrong management key"
            );
        }
        t.type_text(CHANGED);
        t.send(&["Enter"]);
        t.wait_for_words("in PIV slot 9c of the token, self-test passed:");
    }
    // Signing and the seal: each PIN typed.
    let mut screen = t.idle_screen();
    for _ in 0..300 {
        if screen.contains("Sealed: the ceremony is complete") {
            break;
        }
        assert!(!screen.contains("EXIT="), "conclave ended early:\n{screen}");
        if screen.contains("↓ more (PgDn)") {
            t.send(&["PageDown"]);
        } else if screen.contains("PIN: ") {
            let who = ["alice", "bob", "carol"]
                .into_iter()
                .find(|w| screen.contains(&format!("PIN of token {} ", yubikey(&keys, w))))
                .unwrap_or_else(|| panic!("which token?\n{screen}"));
            t.type_text(&b.pin(who));
            std::thread::sleep(Duration::from_millis(100));
            t.send(&["Enter"]);
        } else if screen.contains("│ y  yes") {
            t.send(&["y"]);
        } else {
            t.send(&["Enter"]);
        }
        screen = t.wait_change(&screen);
    }
    assert!(
        screen.contains("Transcript (transcript verify): VALID"),
        "{screen}"
    );
    t.send(&["q"]);
    t.wait_for("EXIT=0");
    python_accepts(&Path::new(&ws).join("export/1.root.json"));
    let text = transcript(&ws, "bootstrap-root.transcript.jsonl");
    assert_eq!(text.matches("\"piv_slot\":\"9c\"").count(), 3, "{text}");
    for secret in [CHANGED, wrong] {
        assert!(!text.contains(secret), "a management key in the transcript");
    }
}
