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
use crate::tui::state::Message;
use crate::tui::state::Prompt;

/// A key, pressed once the screen shows the tokens as they are (the terminal asks them about
/// once a second), and the token job it started (if any) waited for and applied.
fn press(app: &mut App, code: KeyCode) {
    app.refresh_tokens();
    press_now(app, code);
    app.wait_idle();
}

/// A key, without waiting for a token job: as the room presses keys while a token works.
fn press_now(app: &mut App, code: KeyCode) {
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

/// A device with a firmware advisory (a YubiHSM 2 at firmware 2.3.1, YSA-2024-03 for ECDSA):
/// the advisory is said when its keyholder's key is generated, as headless says it, and an
/// ECDSA key is refused there before any PIN is asked (before: the key was generated with
/// nothing on screen, and the advisory was only recorded).
#[test]
fn a_firmware_advisory_is_shown_when_the_key_is_generated() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, false);
    fakes.set_device("alice", "Yubico", "YubiHSM", (2, 3, 1));
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    start_token_step(&mut app);
    enter_pin(&mut app, &pin_of("alice"));
    let shown = screen(&app);
    assert!(
        shown.contains("Key of alice generated in the token, self-test passed")
            && shown.contains("WARNING: firmware advisory on alice's token")
            && shown.contains("YSA-2024-03 (ECDSA)"),
        "{shown}"
    );
    assert_eq!(fakes.key_count("alice"), 1);
    let Phase::Ceremony(s) = &app.phase else {
        panic!("{}", screen(&app))
    };
    let e = s
        .generate_key_event("alice", "ecdsa-p256", None, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("YSA-2024-03"), "{e}");
    assert_eq!(fakes.key_count("alice"), 1);
}

/// Draw the app as the terminal loop does, on a test backend; the drawn text.
fn draw(app: &App) -> String {
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 50)).unwrap();
    let state = app.view_state();
    terminal
        .draw(|f| crate::tui::view::draw(f, &state))
        .unwrap();
    let buffer = terminal.backend().buffer();
    buffer
        .content()
        .chunks(usize::from(buffer.area.width))
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Type `pin` and Enter without waiting for the token job it starts.
fn enter_pin_now(app: &mut App, pin: &str) {
    type_text(app, pin);
    press_now(app, KeyCode::Enter);
}

#[test]
fn a_slow_token_leaves_the_ui_responsive_and_its_result_is_applied_when_it_answers() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, false);
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    let at = step(&app);
    // Alice's token is a slow device: its C_Login answers only when the gate opens.
    let gate = fakes.hold_next_login("alice");
    start_token_step(&mut app);
    enter_pin_now(&mut app, &pin_of("alice"));
    assert!(app.busy(), "{}", screen(&app));
    let working = "working: generating the ed25519 key of alice on token alice";
    assert!(screen(&app).contains(working), "{}", screen(&app));
    // The screen is drawn while the token works, with what it waits for.
    let drawn = draw(&app);
    assert!(drawn.contains("working: generating"), "{drawn}");
    // Harmless keys are handled: the help opens and closes; ticks pass.
    press_now(&mut app, KeyCode::Char('?'));
    assert!(app.view_state().help);
    app.update(Msg::Tick);
    press_now(&mut app, KeyCode::Esc);
    assert!(!app.view_state().help);
    // A second token action is refused while busy: Enter and y start nothing.
    press_now(&mut app, KeyCode::Enter);
    press_now(&mut app, KeyCode::Char('y'));
    assert_eq!(app.view_state().prompt, Prompt::None, "{}", screen(&app));
    assert!(app.busy());
    // Ctrl-C asks before it stops; anything but y keeps the ceremony going.
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('c'),
        ratatui::crossterm::event::KeyModifiers::CONTROL,
    )));
    assert!(
        matches!(&app.view_state().prompt, Prompt::Confirm { question } if question.contains("Stop now, while the token is still generating")),
        "{}",
        screen(&app)
    );
    press_now(&mut app, KeyCode::Char('n'));
    assert!(!app.quit);
    assert_eq!(app.view_state().prompt, Prompt::None);
    assert_eq!(
        fakes.key_count("alice"),
        0,
        "the token has not answered yet"
    );

    gate.open();
    app.wait_idle();
    assert!(!app.busy());
    let shown = screen(&app);
    assert!(
        shown.contains("Key of alice generated in the token, self-test passed"),
        "{shown}"
    );
    assert!(!shown.contains("working:"), "{shown}");
    assert_eq!(
        fakes.key_count("alice"),
        1,
        "one key: the refused keys started nothing"
    );
    // The same step (every keyholder generates in it): bob is next.
    assert_eq!(step(&app), at);
    assert!(
        matches!(need(&app), Need::GenerateKey { keyholder, .. } if keyholder == "bob"),
        "{shown}"
    );
}

#[test]
fn ctrl_c_confirmed_while_a_slow_token_works_ends_the_ui_at_once() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, false);
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    let gate = fakes.hold_next_login("alice");
    start_token_step(&mut app);
    enter_pin_now(&mut app, &pin_of("alice"));
    assert!(app.busy());
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('c'),
        ratatui::crossterm::event::KeyModifiers::CONTROL,
    )));
    press_now(&mut app, KeyCode::Char('y'));
    assert!(app.quit, "{}", screen(&app));
    // The run loop returns at once; the operation is abandoned (the process then ends).
    assert!(app.report().is_none());
    drop(app);
    gate.open();
}

#[test]
fn a_wrong_pin_answered_by_a_slow_token_keeps_the_step_and_asks_again() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, false);
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    let at = step(&app);
    let gate = fakes.hold_next_login("alice");
    start_token_step(&mut app);
    enter_pin_now(&mut app, "not-alices-pin");
    assert!(app.busy());
    assert!(app.session().is_none(), "the ceremony is with the worker");
    gate.open();
    app.wait_idle();
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
}

#[test]
fn a_token_job_that_panics_ends_the_ui_with_a_message_instead_of_hanging() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, false);
    app.submit(
        "a job that fails".into(),
        "no token".into(),
        |_| -> () { panic!("test: a job that panics") },
        |app, ()| {
            app.message = Some(Message {
                error: false,
                text: "applied".into(),
            })
        },
    );
    app.wait_idle();
    assert!(app.quit);
    assert!(
        app.exit_message
            .as_deref()
            .is_some_and(|m| m.contains("the same command continues the ceremony")),
        "{:?}",
        app.exit_message
    );
    assert!(!screen(&app).contains("applied"));
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
    drive_by_keys_until(app, |a| matches!(a.phase, Phase::Summary { .. }))
}

/// [`drive_by_keys_to_the_summary`], stopping when `stop` says so.
fn drive_by_keys_until(app: &mut App, stop: impl Fn(&App) -> bool) -> Vec<String> {
    drive_with_pins_until(app, stop, |label| {
        pin_of(label.split(':').next().unwrap_or_default())
    })
}

/// [`drive_by_keys_to_the_summary`] typing `pin(label)` at each PIN prompt.
fn drive_with_pins(app: &mut App, pin: impl Fn(&str) -> String) -> Vec<String> {
    drive_with_pins_until(app, |a| matches!(a.phase, Phase::Summary { .. }), pin)
}

/// [`drive_by_keys_until`] typing `pin(label)` at each PIN prompt.
fn drive_with_pins_until(
    app: &mut App,
    stop: impl Fn(&App) -> bool,
    pin: impl Fn(&str) -> String,
) -> Vec<String> {
    let mut messages = Vec::new();
    let mut last = String::new();
    let mut same = 0;
    for _ in 0..400 {
        if stop(app) {
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

/// What the prompt asks, as the room reads it.
fn prompt_of(app: &App) -> String {
    format!("{:?}", app.view_state().prompt)
}

/// The room chooses a token with t and assigns it with a; in between the list changes (a token
/// pulled out, the poller lists the tokens again). a assigns the very token the room saw, not the
/// one now at its place in the list, and a token pulled out is said to be gone, never replaced.
#[test]
fn assigning_follows_the_token_chosen_when_the_list_changes_between_t_and_a() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open_yubihsms(&fakes, "ed25519", false);
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    let [alices, bobs, carols] = KEYHOLDERS.map(yubihsm_serial_of);
    // Bob's token chosen (second in the list), then the token before it pulled out.
    choose_in_room(&mut app, &bobs);
    fakes.remove(&alices);
    press(&mut app, KeyCode::Char('a'));
    let asked = prompt_of(&app);
    assert!(
        asked.contains(&format!("serial {bobs}")) && asked.contains("is the token alice brought"),
        "{}",
        screen(&app)
    );
    assert!(!asked.contains(&carols), "{}", screen(&app));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.view_state().prompt, Prompt::None, "{}", screen(&app));
    // Alice's token back and chosen, then pulled out before a: said to be gone, nothing asked.
    fakes.insert(&alices);
    choose_in_room(&mut app, &alices);
    fakes.remove(&alices);
    press(&mut app, KeyCode::Char('a'));
    let shown = screen(&app);
    assert!(
        shown.contains(&format!(
            "the token you chose, {alices}, is no longer present"
        )),
        "{shown}"
    );
    assert_eq!(app.view_state().prompt, Prompt::None, "{shown}");
    // Put back: a assigns it.
    fakes.insert(&alices);
    press(&mut app, KeyCode::Char('a'));
    assert!(
        prompt_of(&app).contains(&format!("serial {alices}")),
        "{}",
        screen(&app)
    );
    press(&mut app, KeyCode::Char('y'));
    assert!(
        screen(&app).contains(&format!("The token with serial {alices} is alice's")),
        "{}",
        screen(&app)
    );
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

/// bob's token is removed after the seal record is written (alice has signed it): bob cannot
/// sign, and before this nothing could finish the seal. The administrator withdraws bob with
/// `w`, a reason and a confirmation; a new seal lists alice and carol, both sign it, the
/// ceremony completes and the transcript's seal verifies with the withdrawal and its reason.
/// A second withdrawal that would leave fewer signers than the root threshold is warned about.
#[test]
fn a_token_removed_after_the_seal_is_written_is_withdrawn_and_a_new_seal_is_signed() {
    let fakes = FakeTokens::new();
    let (tmp, mut app) = open(&fakes, false);
    drive_by_keys_until(
        &mut app,
        |a| matches!(&a.phase, Phase::Sealing { sealed, .. } if sealed.iter().any(|w| w == "alice")),
    );
    let first_seal = match &app.phase {
        Phase::Sealing { seal: Some(h), .. } => h.clone(),
        _ => panic!("{}", screen(&app)),
    };
    fakes.remove("bob");
    let keys = format!("{:?}", app.view_state().keys);
    assert!(keys.contains("withdraw this keyholder"), "{keys}");
    // bob's turn: his token is gone, and skipping is no longer possible: the way out is named.
    press(&mut app, KeyCode::Char('s'));
    assert!(
        screen(&app).contains("press w to withdraw bob"),
        "{}",
        screen(&app)
    );
    press(&mut app, KeyCode::Char('w'));
    assert!(
        screen(&app).contains("Why is bob withdrawn from the seal?"),
        "{}",
        screen(&app)
    );
    // No reason, no withdrawal.
    press(&mut app, KeyCode::Enter);
    assert!(
        screen(&app).contains("a withdrawal needs its reason"),
        "{}",
        screen(&app)
    );
    press(&mut app, KeyCode::Char('w'));
    type_text(&mut app, "token died after the seal was written");
    press(&mut app, KeyCode::Enter);
    let shown = screen(&app);
    assert!(
        shown.contains(
            "Withdraw bob from the written seal (token died after the seal was written)?"
        ),
        "{shown}"
    );
    assert!(
        !shown.contains("WARNING"),
        "2 of 3 are left for a 2-of-3 root: {shown}"
    );
    press(&mut app, KeyCode::Char('y'));
    let shown = screen(&app);
    assert!(
        shown.contains("bob is withdrawn from the seal (recorded)"),
        "{shown}"
    );
    assert!(
        shown.contains("withdrawn from the seal (recorded): token died after the seal was written"),
        "{shown}"
    );
    let new_seal = match &app.phase {
        Phase::Sealing {
            seal: Some(h),
            sealed,
            ..
        } => {
            assert!(sealed.is_empty(), "everyone signs the new seal");
            h.clone()
        }
        _ => panic!("{shown}"),
    };
    assert_ne!(new_seal, first_seal);
    // alice's turn again: withdrawing her too would leave one signer for a threshold of 2.
    press(&mut app, KeyCode::Char('w'));
    type_text(&mut app, "leaves");
    press(&mut app, KeyCode::Enter);
    let shown = screen(&app);
    assert!(
        shown.contains("WARNING: only 1 keyholder(s) holding a root key would be left to sign"),
        "{shown}"
    );
    press(&mut app, KeyCode::Char('n'));
    let messages = drive_by_keys_to_the_summary(&mut app).join("\n");
    assert!(messages.contains("alice signed the seal."), "{messages}");
    assert!(messages.contains("carol signed the seal."), "{messages}");
    let done = screen(&app);
    assert!(!done.contains("FAILED"), "{done}");
    assert!(
        done.contains("The ceremony is complete and sealed."),
        "{done}"
    );
    let path = std::fs::read_dir(tmp.path().join("ws"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(".transcript.jsonl")
        })
        .map(|e| e.path())
        .unwrap();
    let t = crate::transcript::chain::verify_chain(&std::fs::read(path).unwrap()).unwrap();
    let sealed = crate::transcript::verify_seal(&t).unwrap();
    assert_eq!(hex::encode(sealed.seal_hash), new_seal);
    assert_eq!(sealed.signers.len(), 2);
    assert_eq!(sealed.withdrawals.len(), 1);
    assert_eq!(
        sealed.withdrawals[0].reason,
        "token died after the seal was written"
    );
}

/// The practice bootstrap of `tmp` opened again in a new UI, as rerunning the same command
/// does after an interruption (the transcript is resumed, the seal phase restored from it).
fn reopen(fakes: &FakeTokens, tmp: &tempfile::TempDir) -> App {
    use crate::ceremony::engine::ParamJson;
    let values = [
        ("root_threshold", ParamJson::Integer(2)),
        ("targets_threshold", ParamJson::Integer(2)),
        ("key_type", ParamJson::Text("ed25519".into())),
    ];
    let session = crate::driver::fake_tokens::open_on(
        fakes,
        tmp,
        "bootstrap-root",
        &values,
        false,
        Default::default(),
    );
    let mut app = App::new(Phase::Gone);
    app.term = (120, 50);
    // As the UI opens a ceremony (on the worker): the seal phase restored from the transcript.
    let opened = super::opened_phase(crate::driver::Opened::Running(Box::new(session)));
    app.show_opened(opened, false);
    app
}

/// Withdraw `who` (next at the written seal) with `reason`, answering a warning `y`.
fn withdraw(app: &mut App, who: &str, reason: &str) {
    press(app, KeyCode::Char('w'));
    type_text(app, reason);
    press(app, KeyCode::Enter);
    press(app, KeyCode::Char('y'));
    assert!(
        screen(app).contains(&format!("{who} is withdrawn from the seal (recorded)")),
        "{}",
        screen(app)
    );
}

/// The signers' rows of the seal screen: (keyholder, status).
fn seal_rows(app: &App) -> Vec<(String, String)> {
    match app.view_state().screen {
        crate::tui::state::Screen::Token { signers, .. } => signers
            .into_iter()
            .map(|r| (r.keyholder, r.status))
            .collect(),
        other => panic!("not the seal signatures: {other:?}"),
    }
}

/// The transcript of the practice bootstrap in `tmp`.
fn transcript_of(tmp: &tempfile::TempDir) -> crate::transcript::chain::VerifiedTranscript {
    let path = std::fs::read_dir(tmp.path().join("ws"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(".transcript.jsonl")
        })
        .map(|e| e.path())
        .unwrap();
    crate::transcript::chain::verify_chain(&std::fs::read(path).unwrap()).unwrap()
}

/// Interrupted after bob's withdrawal once alice signed the new seal: the rerun shows alice's
/// signature of the new seal and bob's withdrawal, asks only carol to sign it, and alice logs
/// in only for the key-event log's checkpoint (she is never asked to sign the seal twice).
#[test]
fn a_seal_signature_made_after_a_withdrawal_is_restored_when_the_ceremony_resumes() {
    let fakes = FakeTokens::new();
    let (tmp, mut app) = open(&fakes, false);
    drive_by_keys_until(
        &mut app,
        |a| matches!(&a.phase, Phase::Sealing { sealed, .. } if sealed.iter().any(|w| w == "alice")),
    );
    fakes.remove("bob");
    withdraw(&mut app, "bob", "token died after the seal was written");
    drive_by_keys_until(
        &mut app,
        |a| matches!(&a.phase, Phase::Sealing { sealed, .. } if sealed.iter().any(|w| w == "alice")),
    );
    let new_seal = match &app.phase {
        Phase::Sealing { seal: Some(h), .. } => h.clone(),
        _ => panic!("{}", screen(&app)),
    };
    drop(app);
    let mut app = reopen(&fakes, &tmp);
    match &app.phase {
        Phase::Sealing {
            seal: Some(h),
            sealed,
            ..
        } => {
            assert_eq!(*h, new_seal, "the seal in force is the new seal");
            assert_eq!(sealed, &["alice".to_string()], "{}", screen(&app));
        }
        _ => panic!("{}", screen(&app)),
    }
    assert_eq!(app.phase.next_sealer().map(String::as_str), Some("carol"));
    let rows = seal_rows(&app);
    let status = |who: &str| {
        rows.iter()
            .find(|(w, _)| w == who)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    };
    assert!(
        status("alice").starts_with("signed the seal before the interruption"),
        "{rows:?}"
    );
    assert!(
        status("bob").contains("withdrawn from the seal (recorded): token died"),
        "{rows:?}"
    );
    assert_eq!(status("carol"), "to sign the seal", "{rows:?}");
    let messages = drive_by_keys_to_the_summary(&mut app).join("\n");
    assert!(messages.contains("carol signed the seal."), "{messages}");
    assert!(
        !messages.contains("alice signed the seal") && !messages.contains("had signed the seal"),
        "alice is not asked to sign the seal again: {messages}"
    );
    assert!(
        messages.contains("alice is logged in: their token signs the key-event log"),
        "{messages}"
    );
    let done = screen(&app);
    assert!(!done.contains("FAILED"), "{done}");
    assert!(
        done.contains("The ceremony is complete and sealed."),
        "{done}"
    );
    let sealed = crate::transcript::verify_seal(&transcript_of(&tmp)).unwrap();
    assert_eq!(hex::encode(sealed.seal_hash), new_seal);
    assert_eq!(sealed.signers.len(), 2);
    assert_eq!(sealed.withdrawals.len(), 1);
}

/// bob and alice withdrawn, carol alone signs the new seal: the ceremony is NOT complete (the
/// key-event log's checkpoint needs 2 of 3). The rerun shows carol's seal signature (not "to
/// sign the seal"), both withdrawals, and asks carol only to log in for the checkpoint.
#[test]
fn a_rerun_after_a_seal_signed_below_threshold_shows_who_signed_and_who_was_withdrawn() {
    let fakes = FakeTokens::new();
    let (tmp, mut app) = open(&fakes, false);
    drive_by_keys_until(
        &mut app,
        |a| matches!(&a.phase, Phase::Sealing { sealed, .. } if sealed.iter().any(|w| w == "alice")),
    );
    fakes.remove("bob");
    withdraw(&mut app, "bob", "token died after the seal was written");
    withdraw(&mut app, "alice", "left the room");
    let messages = drive_by_keys_to_the_summary(&mut app).join("\n");
    assert!(messages.contains("carol signed the seal."), "{messages}");
    assert!(screen(&app).contains("NOT complete"), "{}", screen(&app));
    drop(app);
    let mut app = reopen(&fakes, &tmp);
    let rows = seal_rows(&app);
    let status = |who: &str| {
        rows.iter()
            .find(|(w, _)| w == who)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        status("carol"),
        "signed the seal before the interruption; logs in for the key-event log",
        "{rows:?}"
    );
    assert!(status("alice").contains("withdrawn from the seal (recorded): left the room"));
    assert!(status("bob").contains("withdrawn from the seal (recorded): token died"));
    assert!(
        !rows.iter().any(|(_, s)| s == "to sign the seal"),
        "{rows:?}"
    );
    let messages = drive_by_keys_to_the_summary(&mut app).join("\n");
    assert!(
        !messages.contains("carol signed the seal") && !messages.contains("had signed the seal"),
        "carol is not asked to sign the seal again: {messages}"
    );
    assert!(screen(&app).contains("NOT complete"), "{}", screen(&app));
    let sealed = crate::transcript::verify_seal(&transcript_of(&tmp)).unwrap();
    assert_eq!(sealed.signers.len(), 1);
    assert_eq!(sealed.withdrawals.len(), 2);
}

/// On a small terminal the signing screen's meters and signers page: PgDn shows the next rows
/// (one screen less one row on), End the last, Home the first, as the review pages. (The
/// height at which they page depends on the digest words of this run's fresh keys: the first
/// height from 12 rows up where the digests fit and the rows page is used.)
#[test]
fn the_signing_screen_pages_its_rows_with_the_reviews_keys() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, true);
    answer_until(&mut app, |n| matches!(n, Need::Sign { .. }));
    let v = app.view_state();
    let h = (12..=40)
        .find(|h| {
            crate::tui::view::digests_fit(&v, 80, *h)
                && crate::tui::view::token_rows(&v, 80, *h).is_some()
        })
        .expect("some 80-column terminal where the rows page");
    app.term = (80, h);
    let rows = |app: &App| crate::tui::view::token_rows(&app.view_state(), 80, h);
    let first = rows(&app).unwrap();
    assert_eq!(first.first, 0);
    assert!(first.shown < first.total, "{first:?}");
    press(&mut app, KeyCode::PageDown);
    let next = rows(&app).unwrap();
    assert_eq!(
        next.first,
        (first.shown.saturating_sub(1).max(1)).min(first.total - first.shown)
    );
    press(&mut app, KeyCode::End);
    let last = rows(&app).unwrap();
    assert_eq!(last.first + last.shown, last.total);
    press(&mut app, KeyCode::Home);
    assert_eq!(rows(&app).unwrap().first, 0);
    // Paging never signs: the step is the same and nothing was asked.
    assert!(matches!(need(&app), Need::Sign { .. }));
    assert!(!screen(&app).contains("Confirm"), "{}", screen(&app));
}

/// Wait (up to 20 s) until `done` holds: for what another thread does.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "waited 20 s for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn ctrl_c(app: &mut App) {
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('c'),
        ratatui::crossterm::event::KeyModifiers::CONTROL,
    )));
}

/// About a second of the terminal loop's ticks: the tokens are asked again.
fn a_second_passes(app: &mut App) {
    for _ in 0..4 {
        app.update(Msg::Tick);
    }
}

#[test]
fn a_token_listing_that_hangs_leaves_the_screen_drawn_and_the_pin_prompt_typed_into() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, false);
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    app.refresh_tokens();
    // The module gets stuck: the next listing does not return (a YubiHSM connector timing
    // out). The poller asks it about a second later and waits there.
    let stuck = fakes.hold_next_listing();
    a_second_passes(&mut app);
    wait_until("the poller to ask the stuck module", || {
        fakes.calls_waiting() == 1
    });
    // Keys are handled meanwhile, from what the tokens said last: the step's confirmation
    // and the PIN prompt open, and the PIN is typed into the prompt.
    press_now(&mut app, KeyCode::Enter);
    assert!(screen(&app).contains("Confirm"), "{}", screen(&app));
    press_now(&mut app, KeyCode::Char('y'));
    let pin = pin_of("alice");
    for c in pin.chars() {
        press_now(&mut app, KeyCode::Char(c));
    }
    assert!(
        matches!(&app.view_state().prompt, Prompt::Pin { label, typed, .. }
            if label.contains("PIN of token alice") && *typed == pin.len()),
        "{}",
        screen(&app)
    );
    let drawn = draw(&app);
    assert!(drawn.contains("PIN of token alice"), "{drawn}");
    assert!(!app.busy(), "no token work started yet");
    // A few seconds on, the screen says the tokens have not answered.
    std::thread::sleep(std::time::Duration::from_millis(3100));
    a_second_passes(&mut app);
    let shown = screen(&app);
    assert!(
        shown.contains("The tokens have not answered for 3 s"),
        "{shown}"
    );
    assert!(shown.contains("PIN of token alice"), "{shown}");
    assert_eq!(fakes.calls_waiting(), 1, "the listing still hangs");
    // The module answers; the PIN typed goes to the token.
    stuck.open();
    press_now(&mut app, KeyCode::Enter);
    app.wait_idle();
    let shown = screen(&app);
    assert!(
        shown.contains("Key of alice generated in the token, self-test passed"),
        "{shown}"
    );
    assert_eq!(fakes.key_count("alice"), 1);
}

#[test]
fn a_poll_answer_for_a_step_the_ceremony_has_left_is_dropped() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, true);
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    app.refresh_tokens();
    assert!(
        screen(&app).contains("label: \"carol\""),
        "{}",
        screen(&app)
    );
    // Carol's token is taken out; the next poll sees it gone but answers late.
    fakes.remove("carol");
    let stuck = fakes.hold_next_listing();
    a_second_passes(&mut app);
    wait_until("the poller to ask the stuck module", || {
        fakes.calls_waiting() == 1
    });
    // Meanwhile the ceremony moves on (alice's key is made and recorded).
    let Phase::Ceremony(s) = &mut app.phase else {
        panic!("{}", screen(&app))
    };
    let made = s
        .generate_key_event("alice", "ed25519", None, None)
        .unwrap();
    s.record("alice", made).unwrap();
    stuck.open();
    // The late answer was asked before the key was recorded: dropped.
    let late = app.poll_answer(None).expect("the late answer");
    app.update(late);
    assert!(
        screen(&app).contains("label: \"carol\""),
        "the late answer was applied: {}",
        screen(&app)
    );
    // An answer for the ceremony as it is now is applied.
    app.refresh_tokens();
    assert!(
        !screen(&app).contains("label: \"carol\""),
        "{}",
        screen(&app)
    );
    assert!(screen(&app).contains("label: \"bob\""), "{}", screen(&app));
}

#[test]
fn a_key_generation_stopped_by_ctrl_c_leaves_a_pair_the_resumed_ceremony_removes_and_records() {
    let fakes = FakeTokens::new();
    let (tmp, mut app) = open(&fakes, false);
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    let at = step(&app);
    // Alice's token makes the pair and answers late (a slow device).
    let slow = fakes.hold_next_generation("alice");
    start_token_step(&mut app);
    enter_pin_now(&mut app, &pin_of("alice"));
    wait_until("the token to make the pair", || fakes.calls_waiting() == 1);
    assert_eq!(fakes.key_count("alice"), 1);
    // Stopped, confirmed, while the token has not answered: the key is never recorded.
    ctrl_c(&mut app);
    press_now(&mut app, KeyCode::Char('y'));
    assert!(app.quit, "{}", screen(&app));
    drop(app);
    // The abandoned worker ends when the token answers (as the process would end), and the
    // ceremony with it (its workspace lock too).
    slow.open();
    let ws = crate::driver::Workspace {
        dir: tmp.path().join("ws"),
    };
    let text = crate::driver::shipped_script("bootstrap-root").unwrap();
    let start = std::time::Instant::now();
    let session = loop {
        let plan = crate::driver::Plan {
            practice: true,
            log_origin: Some("test.conclave.invalid/key-events".into()),
            ..crate::driver::Plan::default()
        };
        match Session::open_with_tokens(
            &ws,
            "bootstrap-root",
            text,
            &tmp.path().join("sys"),
            plan,
            crate::driver::Start::Continue,
            Box::new(fakes.clone()),
        ) {
            Ok(crate::driver::Opened::Running(s)) => break s,
            Ok(crate::driver::Opened::Finished(_)) => panic!("the ceremony is not finished"),
            Err(crate::driver::DriverError::InUse(_))
                if start.elapsed() < std::time::Duration::from_secs(20) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(session.resumed);
    let mut app = App::new(Phase::Ceremony(session));
    app.term = (120, 50);
    assert_eq!(step(&app), at);
    assert!(
        matches!(need(&app), Need::GenerateKey { keyholder, .. } if keyholder == "alice"),
        "{}",
        screen(&app)
    );
    // Resumed: alice generates again; what the stopped run left is found, reported, removed
    // and recorded before the new key.
    start_token_step(&mut app);
    enter_pin(&mut app, &pin_of("alice"));
    let shown = screen(&app);
    assert!(
        shown.contains("Key of alice generated in the token, self-test passed"),
        "{shown}"
    );
    assert!(
        shown.contains("what an interrupted key generation of this ceremony left, never recorded"),
        "{shown}"
    );
    assert_eq!(fakes.key_count("alice"), 1, "the leftover pair is gone");
    let s = app.session().unwrap();
    assert_eq!(s.engine.generated_keys().len(), 1);
    let transcript = std::fs::read_to_string(&s.tpath).unwrap();
    let leftover = transcript
        .lines()
        .position(|l| l.contains("what an interrupted key generation of this ceremony left"))
        .expect("the removal is recorded");
    let generated = transcript
        .lines()
        .position(|l| l.contains("\"key-generated\""))
        .expect("the key is recorded");
    assert!(leftover < generated, "{transcript}");
    // The key recorded is the one on the token: alice signs with it later.
    let tokens = s.token_module().find_token("alice").unwrap();
    let keys = s
        .token_module()
        .open(&tokens, false)
        .unwrap()
        .keys()
        .unwrap();
    let recorded = s.engine.generated_keys()[0].2.key_id();
    assert!(
        keys.iter()
            .any(|k| k.tuf_key().is_some_and(|t| t.key_id() == recorded)),
        "{transcript}"
    );
}

/// The actions of the transcript's records, in order.
fn actions(tmp: &tempfile::TempDir) -> Vec<String> {
    transcript_of(tmp)
        .records()
        .iter()
        .map(|r| r.action.clone())
        .collect()
}

/// The session of the UI (the ceremony is with the UI: no job runs).
fn session_mut(app: &mut App) -> &mut Session {
    match &mut app.phase {
        Phase::Ceremony(s) | Phase::Sealing { session: s, .. } => s,
        _ => panic!("no ceremony on screen"),
    }
}

/// A transcript write on a slow disk (the append held before it writes, as an fsync on a
/// failing USB stick takes seconds) runs off the UI thread: the screen is drawn with
/// "recording: ...", harmless keys work, and keys pressed meanwhile (twice Enter and y, as an
/// impatient administrator would) neither record the next step early nor record this one
/// twice. Once the write is on disk the records stand in the order they were confirmed, the
/// hash chain verifies, and the next step records as usual.
#[test]
fn a_slow_transcript_write_keeps_the_screen_live_and_quick_keys_neither_reorder_nor_duplicate() {
    let fakes = FakeTokens::new();
    let (tmp, mut app) = open(&fakes, false);
    assert_eq!(need(&app), Need::Parameters);
    let before = actions(&tmp);
    let disk = session_mut(&mut app).hold_next_append();
    press(&mut app, KeyCode::Enter);
    assert!(
        screen(&app).contains("Record these parameter values"),
        "{}",
        screen(&app)
    );
    press_now(&mut app, KeyCode::Char('y'));
    assert!(app.busy(), "{}", screen(&app));
    let recording = "recording: the parameters record in the transcript";
    assert!(screen(&app).contains(recording), "{}", screen(&app));
    assert!(
        draw(&app).contains("recording: the parameters record"),
        "{}",
        draw(&app)
    );
    // The screen stays live: the help opens and closes, ticks pass.
    press_now(&mut app, KeyCode::Char('?'));
    assert!(app.view_state().help);
    press_now(&mut app, KeyCode::Esc);
    app.update(Msg::Tick);
    // Quick keys while the write is pending: ignored, nothing queued behind it.
    for _ in 0..2 {
        press_now(&mut app, KeyCode::Enter);
        press_now(&mut app, KeyCode::Char('y'));
    }
    assert!(app.busy());
    assert_eq!(actions(&tmp), before, "nothing is on disk before the write");
    disk.send(()).unwrap();
    app.wait_idle();
    assert!(!app.busy());
    let mut expected = before.clone();
    expected.push("parameters".into());
    assert_eq!(
        actions(&tmp),
        expected,
        "one parameters record, nothing after it"
    );
    assert!(screen(&app).contains("Recorded."), "{}", screen(&app));
    assert!(
        !matches!(need(&app), Need::Parameters),
        "the ceremony moved on once: {}",
        screen(&app)
    );
    assert!(!screen(&app).contains("Confirm"), "{}", screen(&app));
    // The next step records after it, once, on the same chain.
    let next = step(&app);
    press(&mut app, KeyCode::Enter);
    assert!(screen(&app).contains("Confirm"), "{}", screen(&app));
    press(&mut app, KeyCode::Char('y'));
    expected.push("acknowledged".into());
    assert_eq!(actions(&tmp), expected, "{}", screen(&app));
    let records = transcript_of(&tmp);
    let last = records.records().last().unwrap();
    assert_eq!(last.step.as_deref(), Some(next.as_str()));
}

/// A transcript write that fails (the disk is full: writes go to /dev/full, ENOSPC as the
/// kernel reports it) is shown as a typed error naming the step and the record; it stays on
/// screen when a later key says something else, the ceremony stays at the step, and when the
/// room stops the UI it is said again after the terminal is restored.
#[test]
fn a_failed_transcript_write_names_the_step_stays_on_screen_and_is_said_when_the_ui_ends() {
    let fakes = FakeTokens::new();
    let (tmp, mut app) = open(&fakes, false);
    answer_until(&mut app, |n| matches!(n, Need::AirgapCheck));
    let at = step(&app);
    let before = actions(&tmp);
    session_mut(&mut app).fill_the_disk();
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('y'));
    let v = app.view_state();
    let message = v.message.expect("the failure is on screen");
    assert!(message.error, "{message:?}");
    assert!(
        message.text.starts_with(&format!(
            "step {at}: the airgap-checked record was NOT recorded: "
        )) && message.text.contains("No space left on device")
            && message.text.contains("run the same command"),
        "{message:?}"
    );
    assert_eq!(step(&app), at);
    assert_eq!(actions(&tmp), before);
    // A later message does not hide it: a confirmation declined says "nothing was done", and
    // the failed write is still what the screen shows.
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('n'));
    let shown = app.view_state().message.unwrap();
    assert!(
        shown.error && shown.text.contains("NOT recorded"),
        "{shown:?}"
    );
    // Stopped by the room: the command says it after the terminal is restored.
    ctrl_c(&mut app);
    press_now(&mut app, KeyCode::Char('y'));
    assert!(app.quit);
    let said = app.exit_message.clone().expect("said when the UI ends");
    assert!(
        said.contains(&format!(
            "step {at}: the airgap-checked record was NOT recorded"
        )) && said.contains("No space left on device"),
        "{said}"
    );
}

/// The roll call, before any key or PIN, with the key type left at the script's default
/// (ecdsa-p256) and bob's YubiHSM 2 at firmware 2.3.1 (YSA-2024-03 concerns ECDSA there, as
/// `yubihsm_pkcs11` reports such a device: see [`FakeTokens::set_device`]): Ed25519, safe on
/// every token present, is proposed with the reason; recorded once the administrator confirms,
/// then the roll call is confirmed as usual and the keys are Ed25519. Nothing reached a token.
#[test]
fn the_roll_call_proposes_ed25519_for_the_default_key_type_on_an_old_yubihsm() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open_yubihsms(&fakes, "", true);
    fakes.set_device(&yubihsm_serial_of("bob"), "Yubico", "YubiHSM", (2, 3, 1));
    answer_until(&mut app, |n| matches!(n, Need::RollCall { .. }));
    // Enter before the tokens of this step were listed: the roll call waits for the token
    // poller's answer, then goes on by itself.
    assert!(app.tokens_unknown());
    press_now(&mut app, KeyCode::Enter);
    app.wait_idle();
    let shown = screen(&app);
    assert!(
        shown.contains("Record the correction (PARAMETERS CORRECTED: key_type = \\\"ed25519\\\" (proposed by Conclave:")
            && shown.contains("left at the script's default ecdsa-p256")
            && shown.contains(&yubihsm_serial_of("bob"))
            && shown.contains("firmware 2.3.1")
            && shown.contains("YSA-2024-03"),
        "{shown}"
    );
    press(&mut app, KeyCode::Char('y'));
    assert!(
        matches!(need(&app), Need::RollCall { .. }),
        "{}",
        screen(&app)
    );
    let key_type = |app: &App| {
        app.session()
            .and_then(|s| s.engine.parameters().get("key_type").map(|v| v.to_string()))
    };
    assert_eq!(key_type(&app).as_deref(), Some("ed25519"));
    press(&mut app, KeyCode::Enter);
    assert!(
        screen(&app).contains("Record these people as present?"),
        "{}",
        screen(&app)
    );
    press(&mut app, KeyCode::Char('y'));
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    assert!(
        matches!(need(&app), Need::GenerateKey { key_type, .. } if key_type == "ed25519"),
        "{}",
        screen(&app)
    );
    for who in KEYHOLDERS {
        assert_eq!(fakes.key_count(&yubihsm_serial_of(who)), 0);
    }
}

/// The same device with a key type the administrator named (the plan, as an answers file's
/// `key_type`): refused at the roll call, in the UI and headless alike, naming the device,
/// its firmware and advisory, the key type safe on it and how to choose it; nothing recorded.
#[test]
fn the_roll_call_refuses_a_named_key_type_an_advisory_concerns() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open_yubihsms(&fakes, "ecdsa-p256", true);
    fakes.set_device(&yubihsm_serial_of("carol"), "Yubico", "YubiHSM", (2, 3, 1));
    answer_until(&mut app, |n| matches!(n, Need::RollCall { .. }));
    let at = step(&app);
    press(&mut app, KeyCode::Enter);
    let shown = screen(&app);
    let said = |m: &str| {
        m.contains("key type ecdsa-p256 refused at the roll call, before any key or PIN")
            && m.contains(&yubihsm_serial_of("carol"))
            && m.contains("firmware 2.3.1")
            && m.contains("advisory YSA-2024-03 (ECDSA), YubiHSM 2 / YubiHSM 2 FIPS below 2.4.0")
            && m.contains("No ECDSA P-256 key is generated on it; safe on it: ed25519")
            && m.contains("key_type = \"ed25519\" in the answers file")
            && m.contains("Esc back to the parameters")
    };
    assert!(said(&shown.replace("\\\"", "\"")), "{shown}");
    assert!(!shown.contains("Record these people"), "{shown}");
    assert_eq!(step(&app), at);
    let Phase::Ceremony(s) = &app.phase else {
        panic!("{}", screen(&app))
    };
    let e = s.answer(need(&app), None).unwrap_err().to_string();
    assert!(said(&e), "{e}");
}

/// A YubiKey through ykcs11 (model `YubiKey YK5`) at firmware 5.4.3 has no key type Conclave
/// supports that is safe (its PIV application has Ed25519 only from 5.7): with the key type
/// left at the default nothing is proposed, and the roll call is refused saying so.
#[test]
fn a_yubikey_below_5_7_leaves_no_safe_key_type_to_propose() {
    let fakes = FakeTokens::new();
    for (i, who) in KEYHOLDERS.iter().enumerate() {
        fakes.add(who, &format!("100{i}"), &pin_of(who));
    }
    let (_tmp, session) = open_bootstrap(&fakes, false, "", Default::default());
    let mut app = App::new(Phase::Ceremony(Box::new(session)));
    app.term = (120, 50);
    fakes.set_device("alice", "Yubico (www.yubico.com)", "YubiKey YK5", (5, 4, 3));
    answer_until(&mut app, |n| matches!(n, Need::RollCall { .. }));
    let Phase::Ceremony(s) = &app.phase else {
        panic!("{}", screen(&app))
    };
    let e = s.answer(need(&app), None).unwrap_err().to_string();
    assert!(
        e.contains("key type ecdsa-p256 (the script's default; no key type is safe on every token present, so none is proposed) refused at the roll call")
            && e.contains("firmware 5.4.3")
            && e.contains("YubiKey below 5.7.2 (the module does not tell YubiKey 5, 5 FIPS and Bio apart")
            && e.contains("no key type Conclave supports is safe on it"),
        "{e}"
    );
    press(&mut app, KeyCode::Enter);
    assert!(
        screen(&app).contains("no key type Conclave supports is safe on it"),
        "{}",
        screen(&app)
    );
    assert!(matches!(need(&app), Need::RollCall { .. }));
}

/// Headless (`conclave ceremony run`'s answers, the driver's [`Session::answer`]): the key
/// type left at the default on an old YubiHSM 2 is answered at the roll call by the
/// correction with its reason, recorded in the transcript and said as a warning, then by the
/// roll call.
#[test]
fn headless_the_roll_call_records_the_proposed_key_type_with_its_reason() {
    let fakes = FakeTokens::new();
    let (_tmp, mut session) = bootstrap_on_yubihsms(&fakes, "", true);
    fakes.set_device(&yubihsm_serial_of("alice"), "Yubico", "YubiHSM", (2, 3, 1));
    loop {
        let n = session.need();
        if matches!(n, Need::RollCall { .. }) {
            break;
        }
        let (actor, event) = session.answer(n, None).unwrap();
        session.record(&actor, event).unwrap();
    }
    let (actor, event) = session.answer(session.need(), None).unwrap();
    let warning = crate::transcript::display::advisory_warning(&event).unwrap_or_default();
    assert!(
        matches!(&event, crate::ceremony::engine::Event::ParametersCorrected { reason: Some(r), .. } if r.contains("YSA-2024-03")),
        "{event:?}"
    );
    assert!(
        warning.starts_with("WARNING: PARAMETERS CORRECTED: key_type = \"ed25519\" (proposed by Conclave: key_type was left at the script's default ecdsa-p256"),
        "{warning}"
    );
    session.record(&actor, event).unwrap();
    let (_, event) = session.answer(session.need(), None).unwrap();
    assert!(
        matches!(event, crate::ceremony::engine::Event::RollCall { .. }),
        "{event:?}"
    );
}

/// A root rotation after a bootstrap on three YubiHSM 2s that turn out to be at firmware
/// 2.3.1, the key type left at the script's default (ecdsa-p256): the old YubiHSMs hold the
/// current keys (the bootstrap's `key-generated` records name them) and only sign, so the roll
/// call checks only alice's new token: at 2.4.0 nothing is proposed; at 2.3.1 Ed25519 is.
#[test]
fn the_roll_call_leaves_out_tokens_that_hold_recorded_keys() {
    use crate::ceremony::engine::{Event, ParamJson};
    use crate::driver::fake_tokens::open_on;
    use zeroize::Zeroizing;
    let fakes = FakeTokens::new();
    let (tmp, mut session) = bootstrap_on_yubihsms(&fakes, "ed25519", true);
    // The bootstrap, answered headless up to the proposal: every key generated and recorded.
    loop {
        let n = session.need();
        if matches!(n, Need::Propose) {
            break;
        }
        let pin = match &n {
            Need::GenerateKey { keyholder, .. } => Some(Zeroizing::new(pin_of(keyholder))),
            _ => None,
        };
        let (actor, event) = session.answer(n, pin.as_ref()).unwrap();
        session.record(&actor, event).unwrap();
    }
    drop(session);
    for who in KEYHOLDERS {
        fakes.set_device(&yubihsm_serial_of(who), "Yubico", "YubiHSM", (2, 3, 1));
    }
    let new = "02000009";
    fakes.add_yubihsm(new, "alice-new-pin-5678");
    fakes.set_device(new, "Yubico", "YubiHSM", (2, 4, 0));
    let rotation = |fakes: &FakeTokens| {
        let mut s = open_on(
            fakes,
            &tmp,
            "rotate-root-keys",
            &[
                ("add_keyholders", ParamJson::Text("alice".into())),
                ("remove_keyholders", ParamJson::Text("alice".into())),
            ],
            false,
            [("alice".to_string(), new.to_string())]
                .into_iter()
                .collect(),
        );
        loop {
            let n = s.need();
            if matches!(n, Need::RollCall { .. }) {
                break;
            }
            let (actor, event) = s.answer(n, None).unwrap();
            s.record(&actor, event).unwrap();
        }
        s.answer(s.need(), None).unwrap().1
    };
    let event = rotation(&fakes);
    assert!(matches!(event, Event::RollCall { .. }), "{event:?}");
    // The same rotation again, from its start (its transcript removed).
    for e in std::fs::read_dir(tmp.path().join("ws")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("rotate-root-keys") && name.ends_with(".transcript.jsonl") {
            std::fs::remove_file(&p).unwrap();
        }
    }
    fakes.set_device(new, "Yubico", "YubiHSM", (2, 3, 1));
    let event = rotation(&fakes);
    match &event {
        Event::ParametersCorrected {
            values,
            reason: Some(why),
            ..
        } => {
            assert_eq!(
                values.get("key_type"),
                Some(&ParamJson::Text("ed25519".into()))
            );
            assert!(why.contains(new), "{why}");
            for who in KEYHOLDERS {
                assert!(!why.contains(&yubihsm_serial_of(who)), "{why}");
            }
        }
        other => panic!("{other:?}"),
    }
}

/// The practice rotation after [`open`]'s bootstrap that removes alice's root key (the new
/// root: bob and carol, 2 of 2), in a new UI: opened, or continued after an interruption.
fn rotation_removing_alice(fakes: &FakeTokens, tmp: &tempfile::TempDir) -> App {
    use crate::ceremony::engine::ParamJson;
    let session = crate::driver::fake_tokens::open_on(
        fakes,
        tmp,
        "rotate-root-keys",
        &[
            ("remove_keyholders", ParamJson::Text("alice".into())),
            ("key_type", ParamJson::Text("ed25519".into())),
        ],
        false,
        Default::default(),
    );
    let mut app = App::new(Phase::Gone);
    app.term = (120, 50);
    // As the UI opens a ceremony (on the worker): the seal phase restored from the transcript.
    let opened = super::opened_phase(crate::driver::Opened::Running(Box::new(session)));
    app.show_opened(opened, false);
    app
}

/// The key-event log's checkpoint is a signature of the new root's threshold: only keyholders
/// holding a key of that root are asked for it. In a rotation that removes alice's root key,
/// skipping bob at the seal leaves alice and carol but only carol holds a root key, so the
/// skip is warned about (before: "2 left, threshold 2", no warning). Interrupted before the
/// log step, the rerun asks bob and carol to log in for the checkpoint and never alice (before:
/// alice was asked, and her token, gone, stalled the ceremony).
#[test]
fn only_holders_of_a_current_root_key_are_asked_for_the_checkpoint() {
    let fakes = FakeTokens::new();
    let (tmp, mut app) = open(&fakes, false);
    drive_by_keys_to_the_summary(&mut app);
    drop(app);
    let mut app = rotation_removing_alice(&fakes, &tmp);
    drive_by_keys_until(&mut app, |a| {
        a.phase.next_sealer().map(String::as_str) == Some("bob")
            && matches!(&a.phase, Phase::Sealing { seal: None, .. })
    });
    press(&mut app, KeyCode::Char('s'));
    type_text(&mut app, "token left at home");
    press(&mut app, KeyCode::Enter);
    let shown = screen(&app);
    assert!(
        shown.contains("WARNING: only 1 keyholder(s) holding a root key would be left to sign"),
        "{shown}"
    );
    press(&mut app, KeyCode::Char('n'));
    drive_by_keys_to_the_summary(&mut app);
    assert!(!screen(&app).contains("FAILED"), "{}", screen(&app));
    drop(app);
    // The interruption: every seal signature made, the log step never ran.
    let log = tmp.path().join("ws/export/log-002");
    assert!(log.is_dir());
    std::fs::remove_dir_all(&log).unwrap();
    fakes.remove("alice");
    let alice_before = fakes.pin_attempts("alice");
    let mut app = rotation_removing_alice(&fakes, &tmp);
    let rows = seal_rows(&app);
    let status = |who: &str| {
        rows.iter()
            .find(|(w, _)| w == who)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        status("alice"),
        "signed the seal before the interruption; holds no current root key: not asked for the key-event log",
        "{rows:?}"
    );
    for who in ["bob", "carol"] {
        assert_eq!(
            status(who),
            "signed the seal before the interruption; logs in for the key-event log",
            "{rows:?}"
        );
    }
    assert_eq!(app.phase.next_sealer().map(String::as_str), Some("bob"));
    let messages = drive_by_keys_to_the_summary(&mut app).join("\n");
    for who in ["bob", "carol"] {
        assert!(
            messages.contains(&format!(
                "{who} is logged in: their token signs the key-event log"
            )),
            "{messages}"
        );
    }
    assert!(!messages.contains("alice is logged in"), "{messages}");
    let done = screen(&app);
    assert!(!done.contains("FAILED"), "{done}");
    assert_eq!(
        fakes.pin_attempts("alice"),
        alice_before,
        "alice is not asked"
    );
    assert!(log.join("checkpoint").is_file());
}

/// The seal's PIN prompt says what the PIN does: before the seal is written a keyholder only
/// logs in (the confirmation says nothing is signed yet), so the prompt does not say "to sign
/// the seal" (before: it did, contradicting the confirmation just answered).
#[test]
fn the_seal_login_prompt_says_nothing_is_signed_yet() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, false);
    drive_by_keys_until(&mut app, |a| {
        matches!(&a.phase, Phase::Sealing { seal: None, .. })
            && matches!(a.view_state().prompt, Prompt::Pin { .. })
    });
    let Prompt::Pin { label, .. } = app.view_state().prompt else {
        panic!("{}", screen(&app))
    };
    assert!(
        label.contains("to log in for the seal (nothing is signed yet)")
            && !label.contains("to sign the seal"),
        "{label}"
    );
}

/// The confirmation of a recorded text (the tamper-evident bag serial) shows the value typed,
/// escaped as every typed string is (a bidi override is shown as `\u{202e}`), so the room
/// checks what goes into the transcript (before: only "Confirm: <prompt>", without the value).
#[test]
fn the_bag_serial_confirmation_shows_the_value_typed_escaped() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, false);
    answer_until(&mut app, |n| {
        matches!(
            n,
            Need::Acknowledge {
                record_text: true,
                ..
            }
        )
    });
    press(&mut app, KeyCode::Char('e'));
    for _ in 0..40 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "BAG-0042\u{202e}x");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Enter);
    let Prompt::Confirm { question } = app.view_state().prompt else {
        panic!("{}", screen(&app))
    };
    assert!(
        question.contains("Tamper-evident bag serial")
            && question.contains("Recorded as typed: BAG-0042\\u{202e}x")
            && !question.contains('\u{202e}'),
        "{question}"
    );
}

/// Messages describe the present state: the review's "Not approved: lines ... have not been on
/// screen" goes when the room pages on (before: it stayed after paging had shown those lines),
/// and a note such as "Recorded." goes at the next key on the next step (before: it stayed
/// under the next step).
#[test]
fn a_refusal_and_a_note_go_when_the_state_they_describe_changes() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, false);
    app.term = (80, 24);
    answer_until(&mut app, |n| {
        matches!(
            n,
            Need::Acknowledge {
                record_text: true,
                ..
            }
        )
    });
    press(&mut app, KeyCode::Char('e'));
    type_text(&mut app, "7");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('y'));
    let said = format!("{:?}", app.view_state().message);
    assert!(said.contains("Recorded."), "{said}");
    press(&mut app, KeyCode::Down);
    assert_eq!(app.view_state().message, None, "{}", screen(&app));

    drive_by_keys_until(&mut app, |a| matches!(need(a), Need::Review { .. }));
    press(&mut app, KeyCode::Enter);
    let said = format!("{:?}", app.view_state().message);
    assert!(said.contains("have not been on screen"), "{said}");
    press(&mut app, KeyCode::PageDown);
    assert_eq!(app.view_state().message, None, "{}", screen(&app));
}

/// The bootstrap's review names each online key by what the room knows of it, the roles it
/// serves, next to its key id (before: "owner unknown").
#[test]
fn online_keys_are_named_by_their_roles_in_the_bootstrap_review() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, false);
    drive_by_keys_until(&mut app, |a| matches!(need(a), Need::Review { .. }));
    let crate::tui::state::Screen::Review { lines, .. } = app.view_state().screen else {
        panic!("{}", screen(&app))
    };
    let all = lines.join("\n");
    assert!(!all.contains("owner unknown"), "{all}");
    let online: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("added   online key of "))
        .collect();
    assert!(!online.is_empty(), "{all}");
    for l in online {
        assert!(
            l.contains("snapshot") || l.contains("timestamp") || l.contains("targets"),
            "{l}"
        );
    }
}

/// A finished ceremony opened again (the same command, or the script chosen in the UI) shows
/// its summary, verified again, with how another one starts, and records nothing; asked for
/// with `--new` ([`crate::driver::Start::New`]) the next ceremony of the script opens.
#[test]
fn a_finished_ceremony_opens_on_its_summary_and_new_opens_another() {
    use crate::driver::Start;
    let fakes = FakeTokens::new();
    let (tmp, mut app) = open(&fakes, false);
    drive_by_keys_to_the_summary(&mut app);
    drop(app);
    let opened = |start| {
        crate::driver::fake_tokens::opened_on(
            &fakes,
            &tmp,
            "refresh-expiry",
            &[],
            false,
            Default::default(),
            start,
        )
        .unwrap()
    };
    let show = |opened| {
        let mut app = App::new(Phase::Gone);
        app.term = (120, 50);
        app.show_opened(super::opened_phase(opened), true);
        app
    };
    let mut app = show(opened(Start::Continue));
    assert!(matches!(app.phase, Phase::Ceremony(_)), "{}", screen(&app));
    drive_by_keys_to_the_summary(&mut app);
    drop(app);
    let v2 = tmp.path().join("ws/refresh-expiry-v2.transcript.jsonl");
    let sealed = std::fs::read(&v2).unwrap();

    let app = show(opened(Start::Continue));
    let shown = screen(&app);
    assert!(matches!(app.phase, Phase::Summary { .. }), "{shown}");
    let another = "to start another refresh-expiry ceremony in this workspace: the same command \
                   with --new";
    assert!(
        shown.contains(&format!(
            "This ceremony was already complete and sealed; nothing was changed ({another})."
        )) && shown.contains(&format!("Already complete: {another}."))
            && shown.contains("title: Sealed: the ceremony is complete")
            && !shown.contains("FAILED"),
        "{shown}"
    );
    assert_eq!(std::fs::read(&v2).unwrap(), sealed, "nothing recorded");

    let app = show(opened(Start::New));
    match &app.phase {
        Phase::Ceremony(s) => assert!(
            !s.resumed && s.tpath.ends_with("refresh-expiry-v3.transcript.jsonl"),
            "{}",
            s.tpath.display()
        ),
        _ => panic!("--new did not open a new ceremony:\n{}", screen(&app)),
    }
}

/// The air-gap screen shows the machine reader's last reading (sysfs is never read at a draw
/// or a key): a cable plugged in after the reading came leaves the screen as it was. Enter and
/// `y` record only what the screen showed: the record job reads sysfs again, finds it changed,
/// records nothing and shows the new reading; confirmed again, the transcript holds exactly the
/// reading the room saw.
#[test]
fn the_airgap_check_records_the_reading_the_room_saw_and_no_draw_reads_sysfs() {
    use crate::ceremony::engine::Event;
    let fakes = FakeTokens::new();
    let (tmp, mut app) = open(&fakes, false);
    let sys = tmp.path().join("sys");
    std::fs::create_dir_all(sys.join("class/net/lo")).unwrap();
    answer_until(&mut app, |n| matches!(n, Need::AirgapCheck));
    let at = step(&app);
    // Until the first reading is applied the screen says it is checking (never "air gap OK").
    let checking = screen(&app);
    assert!(
        checking.contains("Checking this machine's network interfaces and radios"),
        "{checking}"
    );
    app.wait_idle();
    let shown = screen(&app);
    assert!(
        shown.contains("Airgap { interfaces: [], radios: [] }"),
        "{shown}"
    );
    assert!(draw(&app).contains("AIR GAP OK"), "{}", draw(&app));
    // A cable plugged in: the screen still shows what was read, at every draw and key.
    std::fs::create_dir_all(sys.join("class/net/eth0")).unwrap();
    assert_eq!(screen(&app), shown);
    assert!(draw(&app).contains("AIR GAP OK"), "{}", draw(&app));
    press(&mut app, KeyCode::Char('?'));
    press(&mut app, KeyCode::Esc);
    assert_eq!(screen(&app), shown);
    let before = actions(&tmp);
    press(&mut app, KeyCode::Enter);
    assert!(
        screen(&app).contains("Record this air-gap check"),
        "{}",
        screen(&app)
    );
    press(&mut app, KeyCode::Char('y'));
    // Read again when recorded: it differs from what was shown, so nothing is recorded and
    // the screen shows the machine as it reads now.
    assert_eq!(actions(&tmp), before, "{}", screen(&app));
    assert_eq!(step(&app), at);
    let changed = screen(&app);
    assert!(
        changed.contains("changed since it was on screen: nothing was recorded")
            && changed.contains("interfaces: [\"eth0\"]"),
        "{changed}"
    );
    let Phase::Ceremony(s) = &app.phase else {
        panic!("{changed}")
    };
    let seen = s.airgap_event_of(crate::system::AirgapReport {
        interfaces: vec!["eth0".into()],
        radios: Vec::new(),
    });
    // Confirmed again: recorded, and the record is the reading the screen showed.
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('y'));
    let records = transcript_of(&tmp);
    let last = records
        .records()
        .iter()
        .rev()
        .find(|r| r.action == "airgap-checked")
        .expect("the air-gap record");
    assert_eq!(Event::from_value(&last.details).unwrap(), seen);
    assert_ne!(step(&app), at, "{}", screen(&app));
}

/// Wait for the token job running (only it, not the tokens' poller) and apply its result, as
/// the terminal loop does when the job ends.
fn finish_job(app: &mut App) {
    match app.job_result(std::time::Duration::from_secs(20)) {
        Some(done) => app.update(done),
        None => panic!("no job ended:\n{}", screen(app)),
    }
}

/// Issue 19: `App::update` and the view never call a token, whatever the room does: each
/// keyholder's YubiHSM (all labelled alike) is chosen and assigned in the room (t, a: whose
/// token it is), each PIN prompt names its token, every key is generated, the ceremony is
/// signed and sealed. The test double notes every token call made from this thread (the UI
/// thread): none.
#[test]
fn the_ui_thread_makes_no_token_call_from_assigning_the_tokens_to_the_seal() {
    let fakes = FakeTokens::new();
    let (tmp, mut app) = open_yubihsms(&fakes, "ed25519", false);
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    fakes.watch_thread();
    for who in KEYHOLDERS {
        let serial = yubihsm_serial_of(who);
        choose_in_room(&mut app, &serial);
        press(&mut app, KeyCode::Char('a'));
        press(&mut app, KeyCode::Char('y'));
        start_token_step(&mut app);
        // The prompt names the token among those labelled alike: the driver's lookup, made
        // on what the poller listed.
        assert!(
            screen(&app).contains(&format!("the token with serial {serial}")),
            "{}",
            screen(&app)
        );
        assert!(
            draw(&app).contains(&format!("serial {serial}")),
            "{}",
            draw(&app)
        );
        enter_pin(&mut app, &pin_of(who));
        assert!(
            screen(&app).contains(&format!("Key of {who} generated in the token")),
            "{}",
            screen(&app)
        );
    }
    let messages = drive_by_keys_to_the_summary(&mut app).join("\n");
    for who in KEYHOLDERS {
        assert!(
            messages.contains(&format!("{who} signed root and targets")),
            "{messages}"
        );
    }
    draw(&app);
    assert_eq!(
        fakes.calls_from_watched(),
        Vec::<String>::new(),
        "token calls made on the UI thread"
    );
    no_pin_went_astray(&fakes);
    keys_and_seal_check(&fakes, &app, &tmp);
}

/// A YubiKey (PIV) asks for its management key after the PIN; whether it does is decided by
/// the generation job (it asks the token), never by `update` on the UI thread: the job hands
/// the PIN back, the management key is asked, and the generation goes to the token with both.
#[test]
fn a_yubikeys_management_key_is_asked_after_the_job_found_it_needed() {
    let fakes = FakeTokens::new();
    for (i, who) in KEYHOLDERS.iter().enumerate() {
        fakes.add(who, &format!("100{i}"), &pin_of(who));
    }
    fakes.set_device("alice", "Yubico (www.yubico.com)", "YubiKey YK5", (5, 7, 4));
    let (_tmp, session) = open_bootstrap(&fakes, false, "ed25519", Default::default());
    let mut app = App::new(Phase::Ceremony(Box::new(session)));
    app.term = (120, 50);
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    fakes.watch_thread();
    start_token_step(&mut app);
    enter_pin(&mut app, &pin_of("alice"));
    let shown = screen(&app);
    assert!(
        matches!(&app.view_state().prompt, Prompt::Pin { label, .. }
            if label.contains("alice: PIV management key of token alice to generate the ed25519 key in PIV slot 9c")),
        "{shown}"
    );
    assert_eq!(
        fakes.pin_attempts("alice").right,
        0,
        "nothing logged in yet: {shown}"
    );
    // The management key typed: the generation goes to the token (the test double has no
    // PIV slots, and says so), with the PIN typed first.
    enter_pin(&mut app, "010203040506070801020304050607080102030405060708");
    let shown = screen(&app);
    assert!(
        shown.contains("the test double has no PIV slots"),
        "{shown}"
    );
    assert_eq!(fakes.key_count("alice"), 0);
    assert_eq!(
        fakes.calls_from_watched(),
        Vec::<String>::new(),
        "token calls made on the UI thread"
    );
}

/// A token that hangs (the module stuck listing the tokens) right after a key was made: the
/// room's `a` (whose token is the one chosen) waits for the tokens' answer, saying so; the
/// screen is drawn, `y` starts nothing, Esc stops waiting, and Ctrl-C ends the UI.
#[test]
fn a_hung_token_leaves_the_screen_drawn_and_esc_and_ctrl_c_working_at_the_assignment() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open_yubihsms(&fakes, "ed25519", false);
    answer_until(&mut app, |n| matches!(n, Need::GenerateKey { .. }));
    fakes.watch_thread();
    let alices = yubihsm_serial_of("alice");
    choose_in_room(&mut app, &alices);
    press(&mut app, KeyCode::Char('a'));
    press(&mut app, KeyCode::Char('y'));
    start_token_step(&mut app);
    // The key is made while the module gets stuck: the tokens are asked when the job ends,
    // and that listing hangs.
    let made = fakes.hold_next_generation(&alices);
    enter_pin_now(&mut app, &pin_of("alice"));
    wait_until("the generation to reach the token", || {
        fakes.calls_waiting() == 1
    });
    let stuck = fakes.hold_next_listing();
    made.open();
    finish_job(&mut app);
    wait_until("the poller to ask the stuck module", || {
        fakes.calls_waiting() == 1
    });
    assert!(
        matches!(need(&app), Need::GenerateKey { keyholder, .. } if keyholder == "bob"),
        "{}",
        screen(&app)
    );
    // Bob's token chosen from the tokens listed before, then a: it waits for the tokens.
    press_now(&mut app, KeyCode::Char('t'));
    press_now(&mut app, KeyCode::Char('a'));
    let shown = screen(&app);
    assert!(
        shown.contains("Asking the tokens before going on"),
        "{shown}"
    );
    assert!(draw(&app).contains("Asking the tokens"), "{}", draw(&app));
    press_now(&mut app, KeyCode::Char('y'));
    assert_eq!(app.view_state().prompt, Prompt::None, "{}", screen(&app));
    press_now(&mut app, KeyCode::Esc);
    assert!(
        screen(&app).contains("Stopped waiting for the tokens."),
        "{}",
        screen(&app)
    );
    press_now(&mut app, KeyCode::Char('a'));
    assert!(
        screen(&app).contains("Asking the tokens"),
        "{}",
        screen(&app)
    );
    ctrl_c(&mut app);
    press_now(&mut app, KeyCode::Char('y'));
    assert!(app.quit, "{}", screen(&app));
    assert_eq!(fakes.calls_waiting(), 1, "the listing still hangs");
    assert_eq!(
        fakes.calls_from_watched(),
        Vec::<String>::new(),
        "token calls made on the UI thread"
    );
    drop(app);
    stuck.open();
}

/// Issue 19: the room stops the UI during the seal, every sealer logged in, and the first
/// token's session close hangs (a YubiHSM 2 over USB that stopped answering): Ctrl-C still ends
/// the UI, the signers are let go off the UI thread (it makes no token call, `C_CloseSession`
/// included), the UI's end waits a bounded time and says the sessions were still closing, and
/// once the token answers every session is closed. Before, the signers were dropped with the
/// UI on its thread, which hung there.
#[test]
fn stopping_the_ui_at_the_seal_closes_the_sealers_tokens_off_the_ui_thread() {
    let fakes = FakeTokens::new();
    let (_tmp, mut app) = open(&fakes, false);
    drive_by_keys_until(
        &mut app,
        |a| matches!(&a.phase, Phase::Sealing { signers, .. } if signers.len() == 3),
    );
    fakes.watch_thread();
    let stuck = fakes.hold_next_close();
    let closed = fakes.sessions_closed();
    ctrl_c(&mut app);
    press_now(&mut app, KeyCode::Char('y'));
    assert!(app.quit, "{}", screen(&app));
    let note = app
        .wait_for_closing(std::time::Duration::from_millis(100))
        .expect("the hung close is said");
    assert!(
        note.starts_with("the sealers' token sessions were still closing after 0.1 s")
            && note.contains("the UI ended without waiting for them"),
        "{note}"
    );
    assert_eq!(fakes.sessions_closed(), closed, "the first close hangs");
    drop(app);
    assert_eq!(
        fakes.calls_from_watched(),
        Vec::<String>::new(),
        "token calls made on the UI thread"
    );
    stuck.open();
    wait_until("the sealers' sessions to close", || {
        fakes.sessions_closed() == closed + 3
    });
}
