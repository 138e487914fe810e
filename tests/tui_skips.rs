//! The terminal UI's signing and seal skips, driven through `App::update` on SoftHSM2 tokens
//! (SoftHSM2 stands in for the keyholders' devices; the steps before signing are answered by the
//! same driver path as `conclave ceremony run`). One test in this binary: it sets
//! `SOFTHSM2_CONF` for the process before any module is loaded.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use conclave::ceremony::engine::{Need, ParamJson};
use conclave::driver::module::{ModuleUse, choose_module};
use conclave::driver::{Opened, Plan, Session, Workspace, shipped_script};
use conclave::tui::app::{App, Msg, Phase};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

const KEYHOLDERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

fn press(app: &mut App, code: KeyCode) {
    app.update(Msg::Key(KeyEvent::from(code)));
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
        Some(Path::new("/usr/lib/softhsm/libsofthsm2.so")),
        false,
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

    // Every step before signing, answered as `conclave ceremony run` answers it.
    let Opened::Running(mut session) =
        Session::open(&ws, "bootstrap-root", text, &sys, Some(plan(&pins))).unwrap()
    else {
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
    for who in ["dave", "erin"] {
        sign_with_token(&mut app, &pins[who]);
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
    let again = App::open(&ws, "bootstrap-root", text, &sys, Some(plan(&pins))).unwrap();
    let shown = screen(&again);
    assert!(!shown.contains("complete and sealed"), "{shown}");
    assert!(
        !shown.contains("title: Sealed: the ceremony is complete"),
        "{shown}"
    );
}
