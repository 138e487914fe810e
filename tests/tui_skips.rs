//! The terminal UI's signing and seal skips, driven through `App::update` on SoftHSM2 tokens
//! (SoftHSM2 stands in for the keyholders' devices; the steps before signing are answered by the
//! same driver path as `conclave ceremony run`). One test in this binary: it sets
//! `SOFTHSM2_CONF` for the process before any module is loaded. The parameter editor's checks
//! and corrections are driven the same way, on a second workspace.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use conclave::ceremony::engine::{Need, ParamJson};
use conclave::driver::module::{ModuleUse, Named, choose_module};
use conclave::driver::{Opened, Plan, Session, Start, Workspace, shipped_script};
use conclave::tui::app::{App, Msg, Phase};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

const KEYHOLDERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

/// A key, and the token job it started (if any) waited for and applied.
fn press(app: &mut App, code: KeyCode) {
    app.update(Msg::Key(KeyEvent::from(code)));
    app.wait_idle();
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

/// What the screen says: title, banner, message, prompt and the screen's own text.
fn screen(app: &App) -> String {
    let v = app.view_state();
    format!(
        "title: {}\nbanner: {:?}\nmessage: {:?}\nprompt: {:?}\nscreen: {:?}",
        v.title, v.banner, v.message, v.prompt, v.screen
    )
}

fn plan(pins: &BTreeMap<String, String>) -> Plan {
    let module = choose_module(
        Named::Flag(Path::new("/usr/lib/softhsm/libsofthsm2.so")),
        None,
        None,
        ModuleUse::Ceremony { practice: true },
    )
    .unwrap();
    Plan {
        practice: true,
        administrator: "ada".into(),
        keyholders: KEYHOLDERS.iter().map(|k| k.to_string()).collect(),
        witnesses: vec!["wendy".into()],
        values: [
            ("root_threshold", ParamJson::Integer(3)),
            ("targets_threshold", ParamJson::Integer(2)),
            ("key_type", ParamJson::Text("ed25519".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        acknowledgement: "BAG-A1234567".into(),
        pins: pins
            .iter()
            .map(|(k, p)| (k.clone(), zeroize::Zeroizing::new(p.clone())))
            .collect(),
        module: Some(module),
        log_origin: Some("test.conclave.invalid/key-events".into()),
        ..Plan::default()
    }
}

/// A keyholder's token signs (at the signing step or the seal): Enter, confirm, PIN, Enter.
fn sign_with_token(app: &mut App, pin: &str) {
    press(app, KeyCode::Enter);
    assert!(screen(app).contains("Confirm"), "{}", screen(app));
    press(app, KeyCode::Char('y'));
    type_text(app, pin);
    press(app, KeyCode::Enter);
}

/// Skip the keyholder whose turn it is with a reason; returns the confirmation question.
fn skip(app: &mut App, reason: &str) -> String {
    press(app, KeyCode::Char('s'));
    type_text(app, reason);
    press(app, KeyCode::Enter);
    let question = screen(app);
    press(app, KeyCode::Char('y'));
    question
}

/// A 3-of-5 root. At signing, alice's dead token is skipped with a reason and signing is closed
/// once the thresholds are met without erin. At the seal, three keyholders are skipped: each
/// skip is recorded, the last one is warned about, and the summary says the key-event log
/// checkpoint FAILED instead of "complete and sealed"; a rerun says it again (before: the
/// skips were never written, signing could not be closed while a keyholder was left, and the
/// summary said complete).
#[test]
fn skips_are_recorded_signing_closes_when_met_and_a_failed_check_is_never_called_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let hsm = tmp.path().join("hsm");
    let out = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["token", "init-practice", "--dir"])
        .arg(&hsm)
        .args(["--keyholders", &KEYHOLDERS.join(","), "--type", "none"])
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pins: BTreeMap<String, String> = v["tokens"]
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
    // SAFETY: the only test of this binary sets it before any thread or module starts.
    unsafe { std::env::set_var("SOFTHSM2_CONF", hsm.join("softhsm2.conf")) };
    let ws_dir = tmp.path().join("ws");
    std::fs::create_dir_all(ws_dir.join("input")).unwrap();
    let online = |seed: u8| {
        use conclave::signer::Signer;
        conclave::signer::software::SoftwareSigner::from_seed(
            conclave::tuf::key::Algorithm::Ed25519,
            &[seed; 32],
        )
        .unwrap()
        .key()
        .to_value()
        .to_pretty_json()
    };
    std::fs::write(
        ws_dir.join("input/online-keys.json"),
        format!(
            "{{\"snapshot\": {}, \"timestamp\": {}}}",
            online(1),
            online(2)
        ),
    )
    .unwrap();
    let ws = Workspace {
        dir: ws_dir.canonicalize().unwrap(),
    };
    let sys = tmp.path().join("sys");
    std::fs::create_dir_all(&sys).unwrap();
    let text = shipped_script("bootstrap-root").unwrap();
    parameters_are_checked_before_recording_and_corrected_with_esc(tmp.path(), &sys, &pins);

    // Every step before signing, answered as `conclave ceremony run` answers it.
    let Opened::Running(mut session) = Session::open(
        &ws,
        "bootstrap-root",
        text,
        &sys,
        Some(plan(&pins)),
        Start::Continue,
    )
    .unwrap() else {
        panic!("a new ceremony")
    };
    loop {
        let need = session.need();
        if matches!(need, Need::Sign { .. }) {
            break;
        }
        let (actor, event) = session.answer(need, None).unwrap();
        session.record(&actor, event).unwrap();
    }
    let mut app = App::new(Phase::Ceremony(session));
    app.term = (120, 50);
    // Stopped here, the room is told which key is left in which token.
    let note = app.abandoned_note().unwrap();
    assert!(
        note.starts_with("stopped at step 9: keys generated so far stay in the tokens")
            && note.contains("alice: key ")
            && note.contains("erin: key ")
            && note.contains("label \"erin\""),
        "{note}"
    );

    // alice's token is dead: skipped with a reason, recorded.
    let question = skip(&mut app, "token does not start");
    assert!(
        question.contains("Go on without alice's signature (token does not start)"),
        "{question}"
    );
    assert!(
        screen(&app).contains("skipped (recorded): token does not start"),
        "{}",
        screen(&app)
    );
    // Signing cannot close before the thresholds are met.
    press(&mut app, KeyCode::Char('c'));
    assert!(
        screen(&app).contains("Signing cannot close yet: root 0 of 3"),
        "{}",
        screen(&app)
    );
    for who in ["bob", "carol", "dave"] {
        sign_with_token(&mut app, &pins[who]);
        assert!(
            screen(&app).contains(&format!("{who} signed")),
            "{}",
            screen(&app)
        );
    }
    // Both thresholds met, erin not asked: signing closes.
    assert!(
        screen(&app).contains("keyholder: \"erin\""),
        "{}",
        screen(&app)
    );
    press(&mut app, KeyCode::Char('c'));
    assert!(
        screen(&app)
            .contains("every threshold is met (root 3 of 3, targets 3 of 2). erin will not sign."),
        "{}",
        screen(&app)
    );
    press(&mut app, KeyCode::Char('y'));
    assert!(screen(&app).contains("Verify"), "{}", screen(&app));

    // Verify, export to the workspace, seal.
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('y'));
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('y'));
    assert!(
        matches!(app.phase, Phase::Sealing { .. }),
        "{}",
        screen(&app)
    );

    // The seal: alice, bob and carol are skipped; the third skip leaves two sealers for a
    // root threshold of 3 and is warned about.
    let first = skip(&mut app, "token does not start");
    assert!(!first.contains("checkpoint cannot be signed"), "{first}");
    assert!(
        screen(&app).contains("alice does not sign the seal: recorded in the transcript"),
        "{}",
        screen(&app)
    );
    skip(&mut app, "left the room");
    let third = skip(&mut app, "left the room");
    assert!(third.contains("checkpoint cannot be signed"), "{third}");
    // dave and erin log in; nothing is signed until the seal is written.
    for who in ["dave", "erin"] {
        sign_with_token(&mut app, &pins[who]);
    }
    let tpath = ws.dir.join("bootstrap-root.transcript.jsonl");
    assert!(
        !std::fs::read_to_string(&tpath)
            .unwrap()
            .contains("\"action\":\"seal\""),
        "the seal is written only once every keyholder has logged in or been skipped"
    );
    // The seal is written listing them, and its hash is on screen before the first seal
    // signature (before: the seal was written and signed in one go after the last login,
    // and its hash appeared only on the summary).
    press(&mut app, KeyCode::Enter);
    let question = screen(&app);
    assert!(
        question.contains("Write the seal? It lists dave, erin"),
        "{question}"
    );
    press(&mut app, KeyCode::Char('y'));
    let transcript = std::fs::read_to_string(&tpath).unwrap();
    assert!(!transcript.contains("seal-signature"), "{transcript}");
    let seal_line = transcript
        .lines()
        .find(|l| l.contains("\"action\":\"seal\""))
        .expect("the seal record is written");
    let record: serde_json::Value = serde_json::from_str(seal_line).unwrap();
    let seal_hash = record["hash"].as_str().unwrap().to_string();
    let grouped = |h: &str| {
        h.as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let before = screen(&app);
    assert!(
        before.contains("role: \"seal\"") && before.contains(&grouped(&seal_hash)),
        "the seal hash {seal_hash} is on the screen before anyone signs it:\n{before}"
    );
    // A skip once the seal lists its signers is refused: the way out is a withdrawal.
    press(&mut app, KeyCode::Char('s'));
    assert!(
        screen(&app).contains("dave signs it, or press w to withdraw dave from it"),
        "{}",
        screen(&app)
    );
    for who in ["dave", "erin"] {
        press(&mut app, KeyCode::Enter);
        let q = screen(&app);
        assert!(
            q.contains(&format!("{who} signs the seal")) && q.contains(&grouped(&seal_hash)[..9]),
            "{q}"
        );
        press(&mut app, KeyCode::Char('y'));
        assert!(
            screen(&app).contains(&format!("{who} signed the seal.")),
            "{}",
            screen(&app)
        );
    }
    press(&mut app, KeyCode::Enter);
    let done = screen(&app);
    assert!(matches!(app.phase, Phase::Summary { .. }), "{done}");
    assert!(!done.contains("complete and sealed"), "{done}");
    assert!(
        done.contains("Sealed, but a check FAILED: the ceremony is NOT complete"),
        "{done}"
    );
    assert!(
        done.contains("Key-event log (log verify): FAILED"),
        "{done}"
    );

    let transcript =
        std::fs::read_to_string(ws.dir.join("bootstrap-root.transcript.jsonl")).unwrap();
    assert_eq!(
        transcript.matches("\"action\":\"signer-skipped\"").count(),
        1
    );
    assert_eq!(transcript.matches("\"action\":\"seal-skipped\"").count(), 3);
    assert!(transcript.contains("\"action\":\"signing-closed\""));
    assert!(
        !transcript.contains("\"keyholder\":\"erin\",\"role\""),
        "erin never signed"
    );
    drop(app);

    // A rerun does not hide the failure: the seal is not called complete.
    let again = App::open(
        &ws,
        "bootstrap-root",
        text,
        &sys,
        Some(plan(&pins)),
        Start::Continue,
    )
    .unwrap();
    let shown = screen(&again);
    assert!(!shown.contains("complete and sealed"), "{shown}");
    assert!(
        !shown.contains("title: Sealed: the ceremony is complete"),
        "{shown}"
    );
}

/// The parameter editor: a threshold above the keyholders named is refused before anything
/// is recorded, the editor says what values each parameter takes, and at a later step before
/// any key Esc goes back to correct a recorded value, which is recorded as a correction
/// (before: threshold 5 for 3 keyholders was recorded and refused only at the roll call, with
/// no way back).
fn parameters_are_checked_before_recording_and_corrected_with_esc(
    dir: &Path,
    sys: &Path,
    pins: &BTreeMap<String, String>,
) {
    let ws_dir = dir.join("ws-parameters");
    std::fs::create_dir_all(ws_dir.join("input")).unwrap();
    std::fs::copy(
        dir.join("ws/input/online-keys.json"),
        ws_dir.join("input/online-keys.json"),
    )
    .unwrap();
    let ws = Workspace {
        dir: ws_dir.canonicalize().unwrap(),
    };
    let mut p = plan(pins);
    p.keyholders.truncate(3);
    p.values
        .insert("root_threshold".into(), ParamJson::Integer(5));
    let text = shipped_script("bootstrap-root").unwrap();
    let mut app = App::open(&ws, "bootstrap-root", text, sys, Some(p), Start::Continue).unwrap();
    app.term = (120, 50);
    // A new ceremony opens with its welcome: Enter begins.
    assert!(
        app.view_state()
            .welcome
            .is_some_and(|w| w.iter().any(|l| l.contains("Purpose, read aloud"))),
        "{}",
        screen(&app)
    );
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Enter);
    let shown = screen(&app);
    assert!(
        shown.contains("root_threshold = 5 is more than the 3 keyholders present"),
        "{shown}"
    );
    assert!(!shown.contains("Confirm"), "nothing to confirm: {shown}");
    assert!(
        shown.contains("Root signatures required (allowed: a whole number, at least 1)"),
        "{shown}"
    );
    // root_threshold is the fifth parameter: typed again, then recorded.
    for _ in 0..4 {
        press(&mut app, KeyCode::Down);
    }
    press(&mut app, KeyCode::Char('e'));
    assert!(
        screen(&app).contains("Value of root_threshold (a whole number, at least 1)"),
        "{}",
        screen(&app)
    );
    press(&mut app, KeyCode::Backspace);
    type_text(&mut app, "2");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('y'));
    let shown = screen(&app);
    assert!(shown.contains("Tamper-evident bag serial"), "{shown}");
    // Esc at step 1: the editor opens on the recorded values; targets_threshold corrected.
    press(&mut app, KeyCode::Esc);
    assert!(
        screen(&app).contains("title: Correct the parameters"),
        "{}",
        screen(&app)
    );
    press(&mut app, KeyCode::Enter);
    assert!(
        screen(&app).contains("Nothing was changed"),
        "{}",
        screen(&app)
    );
    for _ in 0..6 {
        press(&mut app, KeyCode::Down);
    }
    press(&mut app, KeyCode::Char('e'));
    press(&mut app, KeyCode::Backspace);
    type_text(&mut app, "7");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Enter);
    assert!(
        screen(&app).contains("targets_threshold = 7 is more than the 3 keyholders present"),
        "checked against the keyholders named: {}",
        screen(&app)
    );
    press(&mut app, KeyCode::Char('e'));
    press(&mut app, KeyCode::Backspace);
    type_text(&mut app, "3");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Enter);
    assert!(
        screen(&app).contains("PARAMETERS CORRECTED: targets_threshold = 3"),
        "{}",
        screen(&app)
    );
    press(&mut app, KeyCode::Char('y'));
    let shown = screen(&app);
    assert!(shown.contains("Correction recorded."), "{shown}");
    assert!(
        shown.contains("Tamper-evident bag serial"),
        "back at step 1: {shown}"
    );
    // Esc twice: in and out, nothing recorded.
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Esc);
    assert!(screen(&app).contains("Back to step 1: nothing was corrected."));
    drop(app);
    let t = std::fs::read_to_string(ws.dir.join("bootstrap-root.transcript.jsonl")).unwrap();
    assert_eq!(
        t.matches("\"action\":\"parameters-corrected\"").count(),
        1,
        "{t}"
    );
    assert!(t.contains("\"root_threshold\":2"), "{t}");
}
