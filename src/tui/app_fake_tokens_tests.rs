//! `App::update` driven by key events without a terminal (as gitui drives its app), on the
//! in-memory token test double ([`crate::driver::fake_tokens`]): what the room sees when a PIN
//! is wrong, a token is locked or a token is pulled out while it signs, and a whole practice
//! bootstrap to the seal. The test double follows PKCS#11 token behaviour (see its module).

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::{App, Msg, Phase};
use crate::ceremony::engine::Need;
use crate::driver::Session;
use crate::driver::fake_tokens::{
    FakeTokens, KEYHOLDERS, bootstrap_on_fakes, bootstrap_on_yubihsms, open_bootstrap, pin_of,
    yubihsm_serial_of,
};
use crate::tui::state::Prompt;

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

fn step(app: &App) -> String {
    app.session().map(Session::step).unwrap_or_default()
}

/// A practice 2-of-3 bootstrap-root on fake tokens labelled after the keyholders, in the UI.
fn open(fakes: &FakeTokens, planned_pins: bool) -> (tempfile::TempDir, App) {
    let (tmp, session) = bootstrap_on_fakes(fakes, planned_pins);
    let mut app = App::new(Phase::Ceremony(Box::new(session)));
    app.term = (120, 50);
    (tmp, app)
}

/// The steps the room answers without a token, answered by the driver as `conclave ceremony
/// run` answers them, until `stop`.
fn answer_until(app: &mut App, stop: impl Fn(&Need) -> bool) {
    loop {
        let Phase::Ceremony(s) = &mut app.phase else {
            panic!("{}", screen(app))
        };
        let need = s.need();
        if stop(&need) {
            break;
        }
        let (actor, event) = s.answer(need, None).unwrap();
        s.record(&actor, event).unwrap();
    }
    app.after_change();
}

fn need(app: &App) -> Need {
    app.session().map(Session::need).unwrap_or(Need::Done)
}

/// Enter on the token step, confirm, and the PIN prompt is shown.
fn start_token_step(app: &mut App) {
    press(app, KeyCode::Enter);
    assert!(screen(app).contains("Confirm"), "{}", screen(app));
    press(app, KeyCode::Char('y'));
    assert!(screen(app).contains("PIN of token"), "{}", screen(app));
}

fn enter_pin(app: &mut App, pin: &str) {
    type_text(app, pin);
    press(app, KeyCode::Enter);
}

#[test]
fn a_wrong_pin_is_shown_and_the_ceremony_stays_at_the_same_step() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, false);
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    let at = step(&app);
    start_token_step(&mut app);
    enter_pin(&mut app, "not-alices-pin");
    let shown = screen(&app);
    assert!(
        shown.contains("wrong PIN for token \\\"alice\\\""),
        "{shown}"
    );
    assert!(
        shown.contains("alice: PIN of token alice (try again)"),
        "{shown}"
    );
    assert_eq!(step(&app), at);
    assert_eq!(fakes.key_count("alice"), 0);
    // The right PIN at the prompt asked again generates the key.
    enter_pin(&mut app, &pin_of("alice"));
    let shown = screen(&app);
    assert!(
        shown.contains("Key of alice generated in the token, self-test passed"),
        "{shown}"
    );
    assert_eq!(fakes.key_count("alice"), 1);
    assert!(
        matches!(need(&app), Need::GenerateKey { keyholder, .. } if keyholder == "bob"),
        "{shown}"
    );
}

#[test]
fn a_locked_token_is_refused_with_its_message_and_no_pin_is_asked() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, false);
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    let at = step(&app);
    // Locked before the step: refused when the token is checked, before any PIN.
    fakes.set_tries("alice", 0);
    press(&mut app, KeyCode::Enter);
    let shown = screen(&app);
    assert!(
        shown.contains("the PIN is locked; the token's security officer must unlock it"),
        "{shown}"
    );
    assert!(!shown.contains("PIN of token"), "{shown}");
    assert_eq!(step(&app), at);

    // One try left: the last wrong PIN locks it, and the right one is then refused as locked.
    fakes.set_tries("alice", 1);
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('y'));
    // The token's CKF_USER_PIN_FINAL_TRY is read aloud before the PIN is typed.
    assert!(
        screen(&app).contains("the token reports ONE PIN try left (CKF_USER_PIN_FINAL_TRY)"),
        "{}",
        screen(&app)
    );
    press(&mut app, KeyCode::Char('y'));
    assert!(screen(&app).contains("PIN of token"), "{}", screen(&app));
    enter_pin(&mut app, "not-alices-pin");
    assert!(screen(&app).contains("wrong PIN"), "{}", screen(&app));
    enter_pin(&mut app, &pin_of("alice"));
    let shown = screen(&app);
    assert!(
        shown.contains("is locked (C_Login returned CKR_PIN_LOCKED); nothing was attempted")
            || shown.contains("is locked (token flags say CKF_USER_PIN_LOCKED)"),
        "{shown}"
    );
    assert!(!shown.contains("try again"), "{shown}");
    assert_eq!(step(&app), at);
    assert_eq!(fakes.key_count("alice"), 0);
}

#[test]
fn a_token_pulled_out_while_signing_shows_token_removed_and_signing_resumes_when_back() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, true);
    answer_until(&mut app, |n| matches!(n, Need::Sign { .. }));
    let at = step(&app);
    start_token_step(&mut app);
    fakes.pull_during_next_signature("alice");
    enter_pin(&mut app, &pin_of("alice"));
    let shown = screen(&app);
    assert!(
        shown.contains("was removed or is not present (C_Sign returned CKR_DEVICE_REMOVED)"),
        "{shown}"
    );
    assert_eq!(step(&app), at);
    let left = |app: &App| {
        app.session()
            .map(|s| s.engine.roles_left("alice").len())
            .unwrap_or_default()
    };
    assert_eq!(left(&app), 2, "nothing of alice's was recorded");
    // Still out: the room is told which token is missing, no PIN is asked.
    press(&mut app, KeyCode::Enter);
    assert!(
        screen(&app).contains("inserted, expected alice's token holding key"),
        "{}",
        screen(&app)
    );
    // Back in: signing goes on where it stopped.
    fakes.insert("alice");
    start_token_step(&mut app);
    enter_pin(&mut app, &pin_of("alice"));
    assert!(
        screen(&app).contains("alice signed root and targets; each signature verified."),
        "{}",
        screen(&app)
    );
    assert_eq!(left(&app), 0);
}

/// Drive the ceremony by keys as a room would: a confirmation is answered `y`, a PIN prompt
/// with the PIN of the keyholder it names, a review is read to its end (End) and approved
/// (Enter), every other screen goes on with Enter. Returns every message shown.
fn drive_by_keys_to_the_summary(app: &mut App) -> Vec<String> {
    drive_with_pins(app, |label| {
        pin_of(label.split(':').next().unwrap_or_default())
    })
}

/// [`drive_by_keys_to_the_summary`] typing `pin(label)` at each PIN prompt.
fn drive_with_pins(app: &mut App, pin: impl Fn(&str) -> String) -> Vec<String> {
    let mut messages = Vec::new();
    let mut last = String::new();
    let mut same = 0;
    for _ in 0..400 {
        if matches!(app.phase, Phase::Summary { .. }) {
            return messages;
        }
        let shown = screen(app);
        same = if shown == last { same + 1 } else { 0 };
        assert!(same < 4, "stuck on:\n{shown}");
        last = shown;
        let v = app.view_state();
        if let Some(m) = &v.message {
            messages.push(format!("{m:?}"));
        }
        match &v.prompt {
            Prompt::Pin { label, .. } => {
                let typed = pin(label);
                enter_pin(app, &typed);
            }
            Prompt::Confirm { .. } => press(app, KeyCode::Char('y')),
            Prompt::Text { .. } => panic!("no text is typed here:\n{}", screen(app)),
            Prompt::None => {
                if matches!(need(app), Need::Review { .. }) {
                    press(app, KeyCode::End);
                }
                press(app, KeyCode::Enter);
            }
        }
    }
    panic!("the ceremony did not reach its summary:\n{}", screen(app));
}

#[test]
fn a_practice_bootstrap_on_fake_tokens_is_driven_by_keys_to_the_seal() {
    let fakes = FakeTokens::new();
    let (tmp, mut app) = open(&fakes, false);
    let messages = drive_by_keys_to_the_summary(&mut app);
    let seen = messages.join("\n");
    for who in KEYHOLDERS {
        for said in [
            format!("Key of {who} generated in the token, self-test passed"),
            format!("{who} signed root and targets; each signature verified."),
            format!("{who}'s token will sign the seal"),
        ] {
            assert!(seen.contains(&said), "{said} not in:\n{seen}");
        }
        assert_eq!(fakes.key_count(who), 1);
    }
    let done = screen(&app);
    assert!(!done.contains("FAILED"), "{done}");
    let transcript = std::fs::read(tmp.path().join("ws/bootstrap-root.transcript.jsonl"))
        .or_else(|_| {
            std::fs::read_dir(tmp.path().join("ws"))
                .unwrap()
                .filter_map(Result::ok)
                .find(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .ends_with(".transcript.jsonl")
                })
                .map(|e| std::fs::read(e.path()))
                .unwrap()
        })
        .unwrap();
    let t = crate::transcript::chain::verify_chain(&transcript).unwrap();
    assert_eq!(
        t.records()
            .iter()
            .filter(|r| r.action == "seal-signature")
            .count(),
        3
    );
}

/// Every keyholder's token as `yubihsm_pkcs11` shows a YubiHSM 2 (the test double's
/// [`FakeTokens::add_yubihsm`]): three tokens present at once, all labelled "YubiHSM", no key
/// visible before login. `name_tokens`: the plan names each keyholder's token by serial;
/// otherwise the room assigns each keyholder's token in the UI (t, a) before the key is made.
fn open_yubihsms(
    fakes: &FakeTokens,
    key_type: &str,
    name_tokens: bool,
) -> (tempfile::TempDir, App) {
    let (tmp, session) = bootstrap_on_yubihsms(fakes, key_type, name_tokens);
    let mut app = App::new(Phase::Ceremony(Box::new(session)));
    app.term = (120, 50);
    (tmp, app)
}

/// No PIN went to another keyholder's token: every YubiHSM was only ever given its own
/// keyholder's PIN.
fn no_pin_went_astray(fakes: &FakeTokens) {
    for who in KEYHOLDERS {
        let tried = fakes.pin_attempts(&yubihsm_serial_of(who));
        assert_eq!(
            tried.wrong, 0,
            "{who}'s YubiHSM was given a wrong PIN: {tried:?}"
        );
        assert!(tried.right > 0, "{who}'s YubiHSM was never logged in to");
    }
}

/// The keys each YubiHSM holds are the ones the transcript records for its keyholder, and the
/// sealed transcript verifies with one seal signature per keyholder.
fn keys_and_seal_check(fakes: &FakeTokens, app: &App, tmp: &tempfile::TempDir) {
    for who in KEYHOLDERS {
        assert_eq!(fakes.key_count(&yubihsm_serial_of(who)), 1, "{who}");
    }
    let done = screen(app);
    assert!(!done.contains("FAILED"), "{done}");
    let transcript = std::fs::read(tmp.path().join("ws/bootstrap-root.transcript.jsonl")).unwrap();
    let t = crate::transcript::chain::verify_chain(&transcript).unwrap();
    for who in KEYHOLDERS {
        let held = fakes.keys_of(&yubihsm_serial_of(who));
        let recorded: Vec<_> = t
            .records()
            .iter()
            .filter(|r| r.action == "key-generated" && r.actor == who)
            .collect();
        assert_eq!(recorded.len(), 1, "{who}");
        let details = recorded[0].details.to_string();
        assert!(
            details.contains(&yubihsm_serial_of(who)),
            "{who}'s key is recorded on their YubiHSM: {details}"
        );
        let key = crate::tuf::metadata::key_from_value(
            recorded[0]
                .details
                .as_object()
                .and_then(|o| o.get("key"))
                .cloned()
                .expect("a key in the record"),
            "key",
        )
        .unwrap();
        assert_eq!(held[0].key_id(), key.key_id(), "{who}");
    }
    assert_eq!(
        t.records()
            .iter()
            .filter(|r| r.action == "seal-signature")
            .count(),
        3
    );
}

/// Three YubiHSM 2s at once, all labelled "YubiHSM" and hiding their keys until login, named
/// by serial in the plan: the UI generates each keyholder's key on their YubiHSM, then asks
/// each keyholder's PIN for the token the transcript recorded their key on, logs in, finds the
/// key and signs; no PIN ever reaches another keyholder's token; the seal is signed.
#[test]
fn several_yubihsms_hiding_their_keys_each_keyholder_signs_with_their_own() {
    let fakes = FakeTokens::new();
    let (tmp, mut app) = open_yubihsms(&fakes, "ed25519", true);
    let messages = drive_by_keys_to_the_summary(&mut app).join("\n");
    for who in KEYHOLDERS {
        for said in [
            format!("Key of {who} generated in the token, self-test passed"),
            format!("{who} signed root and targets; each signature verified."),
            format!("{who}'s token will sign the seal"),
        ] {
            assert!(messages.contains(&said), "{said} not in:\n{messages}");
        }
    }
    no_pin_went_astray(&fakes);
    keys_and_seal_check(&fakes, &app, &tmp);
}

/// At a key generation step, select the present token with serial `serial` (t, t...).
fn choose_in_room(app: &mut App, serial: &str) {
    for _ in 0..8 {
        press(app, KeyCode::Char('t'));
        if screen(app).contains(&format!("serial {serial}")) {
            return;
        }
    }
    panic!("token {serial} not offered:\n{}", screen(app));
}

/// After a restart the room's choices are gone, but the transcript recorded alice's key on
/// her YubiHSM: offering it as bob's is refused, and so is generating bob's key on it, before
/// bob's PIN reaches alice's token.
#[test]
fn another_keyholders_recorded_yubihsm_never_gets_a_pin() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open_yubihsms(&fakes, "ed25519", false);
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    let alices = yubihsm_serial_of("alice");
    choose_in_room(&mut app, &alices);
    press(&mut app, KeyCode::Char('a'));
    press(&mut app, KeyCode::Char('y'));
    start_token_step(&mut app);
    enter_pin(&mut app, &pin_of("alice"));
    assert!(
        matches!(need(&app), Need::GenerateKey { keyholder, .. } if keyholder == "bob"),
        "{}",
        screen(&app)
    );
    let Phase::Ceremony(s) = &mut app.phase else {
        panic!("{}", screen(&app))
    };
    s.plan.tokens.clear();
    choose_in_room(&mut app, &alices);
    press(&mut app, KeyCode::Char('a'));
    let shown = screen(&app);
    assert!(
        shown.contains(&format!(
            "token YubiHSM (serial {alices}) is alice's token; bob's own token is expected"
        )),
        "{shown}"
    );
    // Named for bob all the same (an answers file naming the wrong serial): refused before
    // the PIN reaches the token.
    if let Phase::Ceremony(s) = &mut app.phase {
        s.assign_token("bob", &alices);
    }
    start_token_step(&mut app);
    enter_pin(&mut app, &pin_of("bob"));
    let shown = screen(&app);
    assert!(shown.contains("is alice's token"), "{shown}");
    assert_eq!(fakes.pin_attempts(&alices).wrong, 0, "{shown}");
    assert_eq!(fakes.key_count(&alices), 1);
}

/// The same three YubiHSMs with no token named in the plan: the room picks each keyholder's
/// YubiHSM by serial when the key is made (t, a); from then on the serial recorded with the key
/// tells the UI which token to ask each keyholder's PIN for.
#[test]
fn yubihsms_assigned_in_the_room_are_found_again_by_the_serial_recorded_with_the_key() {
    let fakes = FakeTokens::new();
    let (tmp, mut app) = open_yubihsms(&fakes, "ed25519", false);
    for who in KEYHOLDERS {
        answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
        assert!(
            matches!(need(&app), Need::GenerateKey { keyholder, .. } if keyholder == who),
            "{}",
            screen(&app)
        );
        let serial = yubihsm_serial_of(who);
        choose_in_room(&mut app, &serial);
        press(&mut app, KeyCode::Char('a'));
        press(&mut app, KeyCode::Char('y'));
        assert!(
            screen(&app).contains(&format!("The token with serial {serial} is {who}'s")),
            "{}",
            screen(&app)
        );
        start_token_step(&mut app);
        enter_pin(&mut app, &pin_of(who));
        assert!(
            screen(&app).contains(&format!("Key of {who} generated in the token")),
            "{}",
            screen(&app)
        );
    }
    // The room's choice lives only in this run; the transcript's record is what signing goes
    // by (as after the appliance was restarted and the ceremony continued).
    if let Phase::Ceremony(s) = &mut app.phase {
        s.plan.tokens.clear();
    }
    let messages = drive_by_keys_to_the_summary(&mut app).join("\n");
    for who in KEYHOLDERS {
        assert!(
            messages.contains(&format!("{who} signed root and targets")),
            "{messages}"
        );
    }
    no_pin_went_astray(&fakes);
    keys_and_seal_check(&fakes, &app, &tmp);
}

/// A practice bootstrap with ECDSA P-256 keys (the test double makes them with the `p256`
/// crate), driven by key events to the seal: every signature verifies and the exported root
/// lists P-256 keys.
#[test]
fn a_p256_practice_bootstrap_is_driven_by_keys_to_the_seal() {
    let fakes = FakeTokens::new();
    for (i, who) in KEYHOLDERS.iter().enumerate() {
        fakes.add(who, &format!("300{i}"), &pin_of(who));
    }
    let (tmp, session) = open_bootstrap(&fakes, false, "ecdsa-p256", Default::default());
    let mut app = App::new(Phase::Ceremony(Box::new(session)));
    app.term = (120, 50);
    let messages = drive_by_keys_to_the_summary(&mut app).join("\n");
    for who in KEYHOLDERS {
        assert!(
            messages.contains(&format!(
                "{who} signed root and targets; each signature verified."
            )),
            "{messages}"
        );
        let keys = fakes.keys_of(who);
        assert_eq!(keys.len(), 1, "{who}");
        assert_eq!(keys[0].scheme, "ecdsa-sha2-nistp256", "{who}");
    }
    let root = std::fs::read(tmp.path().join("ws/export/1.root.json")).unwrap();
    let root = String::from_utf8(root).unwrap();
    assert!(root.contains("ecdsa-sha2-nistp256"), "{root}");
    assert!(!screen(&app).contains("FAILED"), "{}", screen(&app));
}

/// A root rotation in the UI after a bootstrap on three YubiHSMs (all "YubiHSM", keys hidden
/// until login): alice replaces her YubiHSM with a new one (its own PIN). The plan names only
/// alice's new token, as the room would assign it; the current root's keys are found on the
/// tokens the bootstrap's transcript recorded them on, so alice signs for the current root with
/// her old YubiHSM and for the new root with the new one, bob and carol with theirs, and no PIN
/// reaches a token it does not belong to.
#[test]
fn a_keyholder_replacing_their_yubihsm_signs_with_old_and_new_in_the_ui() {
    use crate::ceremony::engine::ParamJson;
    use crate::driver::fake_tokens::open_on;
    let fakes = FakeTokens::new();
    let (tmp, mut app) = open_yubihsms(&fakes, "ed25519", true);
    drive_by_keys_to_the_summary(&mut app);
    drop(app);
    let new = "02000009";
    let new_pin = "alice-new-pin-5678";
    fakes.add_yubihsm(new, new_pin);
    let session = open_on(
        &fakes,
        &tmp,
        "rotate-root-keys",
        &[
            ("add_keyholders", ParamJson::Text("alice".into())),
            ("remove_keyholders", ParamJson::Text("alice".into())),
            ("key_type", ParamJson::Text("ed25519".into())),
        ],
        false,
        [("alice".to_string(), new.to_string())]
            .into_iter()
            .collect(),
    );
    let mut app = App::new(Phase::Ceremony(Box::new(session)));
    app.term = (120, 50);
    let messages = drive_with_pins(&mut app, |label| {
        if label.contains(&format!("serial {new}")) {
            new_pin.to_string()
        } else {
            pin_of(label.split(':').next().unwrap_or_default())
        }
    })
    .join("\n");
    assert!(
        messages.contains("Key of alice generated in the token"),
        "{messages}"
    );
    assert!(!screen(&app).contains("FAILED"), "{}", screen(&app));
    assert_eq!(fakes.key_count(new), 1);
    let old = fakes.pin_attempts(&yubihsm_serial_of("alice"));
    let renewed = fakes.pin_attempts(new);
    assert!(
        old.right > 1 && old.wrong == 0,
        "alice's old YubiHSM: {old:?}"
    );
    assert!(
        renewed.right > 0 && renewed.wrong == 0,
        "alice's new YubiHSM: {renewed:?}"
    );
    for who in ["bob", "carol"] {
        let tried = fakes.pin_attempts(&yubihsm_serial_of(who));
        assert_eq!(tried.wrong, 0, "{who}: {tried:?}");
    }
    let root = std::fs::read_to_string(tmp.path().join("ws/export/2.root.json")).unwrap();
    // The new root lists the new YubiHSM's public key.
    let public = &fakes.keys_of(new)[0].public;
    assert!(root.contains(public.as_str()), "{public} not in {root}");
}
