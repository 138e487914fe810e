//! Snapshots of every screen at 80×24 (the Linux console) and 120×40, drawn into ratatui's
//! `TestBackend`, plus checks that what people must read is on screen in full.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::text::Line;

use crate::tui::state::*;

fn render(s: &ViewState, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| super::draw(f, s)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn base(screen: Screen) -> ViewState {
    ViewState {
        ceremony: "rotate-root-keys".into(),
        practice: true,
        progress: "step 9 of 12".into(),
        actor: "keyholder".into(),
        title: "9. Sign".into(),
        instructions: "Each keyholder in turn inserts their token, checks the digest on screen, enters their PIN and confirms.".into(),
        screen,
        keys: vec![("Enter".into(), "sign".into()), ("?".into(), "help".into()), ("!".into(), "exception".into())],
        ..ViewState::default()
    }
}

const KEY_ID: &str = "3c5571bacad571ce54b9f2a23d5834cc013dc858cb6d8c206f3ce64b4acbd838";

fn meters() -> Vec<Meter> {
    vec![
        Meter {
            label: "root v2 (new root's keys)".into(),
            have: 1,
            need: 2,
        },
        Meter {
            label: "root v2 (current root's keys)".into(),
            have: 2,
            need: 2,
        },
    ]
}

fn signers() -> Vec<SignerRow> {
    vec![
        SignerRow {
            keyholder: "alice".into(),
            status: "signed".into(),
            done: true,
        },
        SignerRow {
            keyholder: "bob".into(),
            status: "to sign: root".into(),
            done: false,
        },
        SignerRow {
            keyholder: "carol".into(),
            status: "nothing to sign in this ceremony".into(),
            done: false,
        },
        SignerRow {
            keyholder: "dave".into(),
            status: "to sign: root".into(),
            done: false,
        },
    ]
}

fn token(label: &str, serial: &str, expected: bool) -> TokenRow {
    TokenRow {
        label: label.into(),
        serial: serial.into(),
        model: "Yubico YubiHSM".into(),
        flags: String::new(),
        expected,
    }
}

fn screens() -> Vec<(&'static str, ViewState)> {
    let mut out = vec![
        ("choose", base(Screen::Choose {
            scripts: vec![
                ("bootstrap-root".into(), "Bootstrap a TUF root".into(), "Create root v1.".into()),
                ("rotate-root-keys".into(), "Rotate root keys".into(), "Add or remove keyholders.".into()),
            ],
            selected: 1,
            workspace: "/media/CEREMONY/conclave on USB medium CEREMONY (/dev/sdb1, 900 MB free) (w: another medium)".into(),
        })),
        ("parameters", base(Screen::Parameters {
            rows: vec![
                ("root_threshold".into(), "2".into(), "Signatures root needs".into()),
                ("root_expiry_days".into(), "365".into(), "Days until root expires".into()),
            ],
            selected: 0,
        })),
        ("acknowledge", base(Screen::Acknowledge { prompt: "Tamper-evident bag serial of the appliance".into(), record_text: true, text: "A1234567".into() })),
        ("airgap-checking", base(Screen::Checking { what: "Checking this machine's network interfaces and radios ...".into() })),
        ("airgap-ok", base(Screen::Airgap { interfaces: vec![], radios: vec![] })),
        ("airgap-bad", base(Screen::Airgap { interfaces: vec!["eth0".into()], radios: vec!["phy0 (wireless)".into()] })),
        ("clock", base(Screen::Clock { now: "2026-11-23T06:50:00Z".into(), reference: "2026-11-23 06:49".into() })),
        ("roll-call", base(Screen::RollCall { fields: ["erin".into(), "alice, bob, carol".into(), "wendy".into()], selected: 1, min_keyholders: 3, min_witnesses: 1 })),
        ("load", base(Screen::Load { what: "The current root and targets metadata.".into(), source: "/media/input".into(), keys: vec![] })),
        ("load-keys", base(Screen::Load { what: "Public keys of the online roles: snapshot, timestamp.".into(), source: "/media/input".into(), keys: vec![("snapshot".into(), format!("key id {KEY_ID}")), ("timestamp".into(), "NOT USABLE: keyval.public is not 32 bytes of hex".into())] })),
        ("token-present", base(Screen::Token {
            keyholder: "alice".into(),
            purpose: "sign root".into(),
            expected: "yk-alice".into(),
            present: vec![token("yk-alice", "15830001", true)],
            status: TokenStatus::Present,
            meters: meters(),
            signers: signers(),
            digests: vec![digest("root v2", "ruffled autopsy optic hesitate stopwatch fortitude robust gadgetry")],
        })),
        ("token-wrong", base(Screen::Token {
            keyholder: "alice".into(),
            purpose: "generate a key of type ed25519 inside the token".into(),
            expected: "yk-carol".into(),
            present: vec![token("yk-bob", "15830002", false)],
            status: TokenStatus::Wrong("token yk-bob inserted, expected alice's token yk-carol".into()),
            meters: vec![],
            signers: vec![],
            digests: vec![],
        })),
        ("token-missing", base(Screen::Token {
            keyholder: "bob".into(),
            purpose: "sign the seal".into(),
            expected: "yk-bob".into(),
            present: vec![],
            status: TokenStatus::Missing,
            meters: vec![],
            signers: vec![],
            digests: vec![],
        })),
        ("signing-done", base(Screen::SigningDone { meters: meters(), signers: signers() })),
        ("propose", base(Screen::Propose)),
        ("review", base(Screen::Review {
            lines: vec![
                "root v1 -> v2, expires 2027-11-23T06:21:41Z -> 2027-11-23T06:21:57Z".into(),
                "  root: threshold 2 of 3 key(s)".into(),
                "    + added   owner dave, ecdsa-sha2-nistp256".into(),
                format!("      key id {KEY_ID}"),
                "    - removed owner carol, ecdsa-sha2-nistp256".into(),
                "      key id dc767379948cec31704c4c328d89e52f42a1976b39327f2057e422e2e0262b8d".into(),
            ],
            digests: vec![DigestRow {
                role: "root v2".into(),
                hex_groups: "b010 8d70 d760 ae62 39e9 3ddb d3f5 2fdc 8d4b f5b7 4688 f3a6 57f9 0a0b 0c0d 0e0f".into(),
                words: "ruffled autopsy optic hesitate stopwatch fortitude robust gadgetry".into(),
            }],
            scroll: 0,
            pane: ReviewPane::Changes,
        })),
        ("verify", base(Screen::Verify { meters: meters() })),
        ("export", base(Screen::Export { files: vec![("2.root.json".into(), 3021, "5f8a1e0c9b7d2a4c6e8f0a1b3c5d7e9f00112233445566778899aabbccddeeff".into())], destinations: vec!["workspace export folder /media/ceremony/export".into(), "USB medium KEYS (/dev/sdb1, 1000 MB free) at /media/usb0/conclave-export".into()], selected: 1 })),
        ("seal", base(Screen::Seal { artifacts: vec!["2.root.json".into()], hash: Vec::new() })),
        ("seal-sign", base(Screen::Token {
            keyholder: "bob".into(),
            purpose: "check the seal hash, then sign the seal".into(),
            expected: "yk-bob".into(),
            present: vec![token("yk-bob", "15830002", true)],
            status: TokenStatus::Present,
            meters: vec![],
            signers: signers(),
            digests: vec![digest("seal", "stagnate stethoscope adult article tycoon headwaters snowcap caravan")],
        })),
        ("seal-signed", base(Screen::Seal {
            artifacts: vec!["2.root.json".into()],
            hash: vec![digest("seal", "stagnate stethoscope adult article tycoon headwaters snowcap caravan")],
        })),
        ("summary", base(Screen::Summary {
            seal_hex: "d0d7 050c ee6e c325 d0cd d2c2 eb3f 6480 53dc bb4a cdbc 3784 9c90 5371 ae47 6769".into(),
            seal_words: "stagnate stethoscope adult article tycoon headwaters snowcap caravan".into(),
            seal_qr: crate::transport::qr::QrMatrix::encode("d0d7050cee6ec325d0cdd2c2eb3f648053dcbb4acdbc37849c905371ae476769", 0)
                .unwrap()
                .to_terminal(1)
                .lines()
                .map(str::to_string)
                .collect(),
            lines: vec!["Metadata (conclave verify): VALID".into(), "Transcript (transcript verify): VALID".into()],
        })),
    ];
    let mut confirm = base(Screen::Propose);
    confirm.prompt = Prompt::Confirm {
        question: "alice signs root with their token?".into(),
    };
    out.push(("prompt-confirm", confirm));
    let mut pin = base(Screen::Propose);
    pin.prompt = Prompt::Pin {
        label: "alice: PIN of token yk-alice to sign".into(),
        field: "PIN".into(),
        typed: 6,
        practice_hint: true,
    };
    pin.message = Some(Message {
        error: true,
        text: "login to the token of alice: wrong PIN for token \"yk-alice\"".into(),
    });
    out.push(("prompt-pin", pin));
    let mut text = base(Screen::Propose);
    text.prompt = Prompt::Text {
        label: "Exception by wendy: what happened".into(),
        value: "bob left the room".into(),
    };
    out.push(("prompt-text", text));
    let mut qr = base(Screen::Blank);
    qr.qr = Some(QrOverlay {
        lines: crate::transport::qr::QrMatrix::encode("UR:BYTES/1-9/LPADASCFAXHYDPSKENYUEYAXDPBT", 0)
            .unwrap()
            .to_terminal(2)
            .lines()
            .map(str::to_string)
            .collect(),
        status: "2.root.json  frame 1  (9 fragments; read at least that many)  sha256 0011aabb…  r next file  Esc close".into(),
    });
    out.push(("qr", qr));
    let mut welcome = base(Screen::Parameters {
        rows: vec![(
            "root_threshold".into(),
            "2".into(),
            "Signatures root needs".into(),
        )],
        selected: 0,
    });
    welcome.welcome = Some(vec![
        "Bootstrap a TUF root. Purpose, read aloud: Create root v1 and targets v1 for a new repository, with keys generated inside the keyholders' tokens.".into(),
        String::new(),
        "This is PRACTICE: the tokens are SoftHSM2 files in the workspace, not the keyholders' devices; no key made here is ever used for a registry.".into(),
        "The administrator sits at the keyboard and reads each step aloud. Each keyholder comes to the keyboard when their token is asked for, checks the digest on screen, types their PIN and confirms. Witnesses watch; ! records an exception.".into(),
        "F2 fills in a practice token's PIN at the PIN prompt.".into(),
        "? shows the keys of each screen. Ctrl-C stops; the same command continues later.".into(),
    ]);
    welcome.keys = vec![
        ("Enter".into(), "begin".into()),
        ("Ctrl-C".into(), "stop".into()),
    ];
    out.push(("welcome", welcome));
    let mut help = base(Screen::Propose);
    help.help = true;
    help.banner =
        Some("Continued an interrupted ceremony: 14 events replayed from the transcript.".into());
    out.push(("help", help));
    out
}

#[test]
fn every_screen_at_80x24_and_120x40() {
    for (name, s) in screens() {
        let small = render(&s, 80, 24);
        insta::assert_snapshot!(format!("{name}-80x24"), small);
        let large = render(&s, 120, 40);
        insta::assert_snapshot!(format!("{name}-120x40"), large);
        // The header always says practice, the step and who acts (a QR frame covers it all).
        assert!(
            name == "qr" || (small.contains("PRACTICE") && small.contains("step 9 of 12")),
            "{name}:\n{small}"
        );
    }
}

#[test]
fn what_people_read_aloud_is_whole_on_the_console() {
    let all = screens();
    let get = |n: &str| render(&all.iter().find(|(k, _)| *k == n).unwrap().1, 80, 24);
    let review = get("review");
    assert!(
        review.contains(KEY_ID),
        "full key id on one line:\n{review}"
    );
    assert!(review.contains("owner dave") && review.contains("owner carol"));
    assert!(
        review.contains("ruffled autopsy optic hesitate"),
        "{review}"
    );
    assert!(
        review.contains("0a0b 0c0d 0e0f"),
        "the whole digest is shown:\n{review}"
    );
    let wrong = get("token-wrong");
    assert!(
        wrong.contains("token yk-bob inserted, expected alice's token yk-carol"),
        "{wrong}"
    );
    let signing = get("token-present");
    assert!(
        signing.contains("root v2 (current root's keys)")
            && signing.contains("2 of 2 threshold met"),
        "{signing}"
    );
    assert!(signing.contains("1 of 2"), "{signing}");
    let pin = get("prompt-pin");
    assert!(pin.contains("PIN: ******_"), "masked:\n{pin}");
    let bad = get("airgap-bad");
    assert!(
        bad.contains("NOT AIR-GAPPED") && bad.contains("eth0"),
        "{bad}"
    );
}

#[test]
fn tiny_terminals_do_not_panic() {
    for (_, s) in screens() {
        for (w, h) in [(1, 1), (20, 5), (40, 10), (80, 12)] {
            let _ = render(&s, w, h);
        }
    }
}

/// Hostile strings in what the screens show (token labels, names, review lines, messages) reach
/// the terminal as visible escapes: no escape sequence, C1 control or bidi override lands in a
/// cell, and an owner padded with spaces does not wrap into a line of its own.
#[test]
fn hostile_strings_are_shown_escaped_on_every_screen() {
    let evil = "\u{1b}]0;owned\u{7}\u{202e}live\u{9b}2J\u{200b}";
    let padded = format!("mallory{}- removed owner carol", " ".repeat(70));
    let screens = [
        base(Screen::Token {
            keyholder: evil.into(),
            purpose: evil.into(),
            expected: evil.into(),
            present: vec![token(evil, evil, true)],
            status: TokenStatus::Wrong(evil.into()),
            meters: vec![],
            signers: vec![SignerRow {
                keyholder: evil.into(),
                status: evil.into(),
                done: false,
            }],
            digests: vec![digest(evil, evil)],
        }),
        base(Screen::Review {
            lines: vec![
                format!("  + added   owner {padded}, ed25519"),
                format!("  {evil}"),
            ],
            digests: vec![DigestRow {
                role: evil.into(),
                hex_groups: "b010 8d70".into(),
                words: "ruffled autopsy".into(),
            }],
            scroll: 0,
            pane: ReviewPane::Changes,
        }),
    ];
    for mut s in screens {
        s.title = evil.into();
        s.actor = evil.into();
        s.ceremony = evil.into();
        let shown = render(&s, 120, 40);
        assert!(
            !shown
                .chars()
                .any(|c| c.is_control() && c != '\n' || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{shown}"
        );
        assert!(shown.contains("\\u{202e}live"), "{shown}");
        assert!(
            !shown
                .lines()
                .any(|l| l.trim_start().starts_with("- removed owner carol")),
            "{shown}"
        );
    }
}

fn digest(role: &str, words: &str) -> DigestRow {
    DigestRow {
        role: role.into(),
        hex_groups:
            "b010 8d70 d760 ae62 39e9 3ddb d3f5 2fdc 8d4b f5b7 4688 f3a6 57f9 0a0b 0c0d 0e0f".into(),
        words: words.into(),
    }
}

fn bootstrap_review() -> ViewState {
    base(Screen::Review {
        lines: (1..=22).map(|i| format!("  change line {i}")).collect(),
        digests: vec![
            digest(
                "root v1",
                "ruffled autopsy optic hesitate stopwatch fortitude robust gadgetry",
            ),
            digest(
                "targets v1",
                "transit adrift tycoon tambourine spellbind hydraulic uproot leprosy",
            ),
        ],
        scroll: 6,
        pane: ReviewPane::Changes,
    })
}

/// Every role's words and hex are on screen whole at 80x24, labels never run into the words,
/// and the position in the review is shown (before: the targets hex was cut off at 80x24 and
/// the label read `targets v1transit`).
#[test]
fn every_digest_is_whole_at_80x24_with_the_position_shown() {
    let s = render(&bootstrap_review(), 80, 24);
    assert!(s.contains("targets v1  transit adrift"), "{s}");
    assert!(!s.contains("v1transit"), "{s}");
    assert_eq!(
        s.matches("0a0b 0c0d 0e0f").count(),
        2,
        "both hex whole:\n{s}"
    );
    assert_eq!(s.matches("b010 8d70").count(), 2, "{s}");
    let layout = super::review_layout(&bootstrap_review(), 80, 24).unwrap();
    assert!(layout.fits);
    let Screen::Review { lines, .. } = &bootstrap_review().screen else {
        unreachable!()
    };
    let shown = layout.shown(lines, 6);
    assert!(shown >= 1);
    assert!(
        s.contains(&format!("What changes: lines 7-{} of 22", 6 + shown)),
        "{s}"
    );
    assert!(s.contains(&format!("change line {}", 6 + shown)), "{s}");
    assert!(!s.contains(&format!("change line {}\n", 7 + shown)), "{s}");
}

/// At 60x20 the words continue on a second row and every digest is still whole; on a
/// terminal too small for them the screen says so instead of showing cut-off digests, and the
/// layout the app approves against says it does not fit (before: at 60x20 the targets digest
/// was invisible and could be approved).
#[test]
fn a_terminal_too_small_for_the_digests_says_so() {
    let s = render(&bootstrap_review(), 60, 20);
    assert_eq!(
        s.matches("0a0b 0c0d 0e0f").count(),
        2,
        "both hex whole:\n{s}"
    );
    assert!(s.contains("hydraulic uproot leprosy"), "{s}");
    assert!(s.contains("read the words aloud):"), "{s}");
    assert!(
        super::review_layout(&bootstrap_review(), 60, 20)
            .unwrap()
            .fits
    );
    for (w, h) in [(60, 15), (36, 40)] {
        let s = render(&bootstrap_review(), w, h);
        assert!(s.contains("too small"), "{w}x{h}:\n{s}");
        assert!(!s.contains("b010"), "no partial digest at {w}x{h}:\n{s}");
        assert!(
            !super::review_layout(&bootstrap_review(), w, h)
                .unwrap()
                .fits
        );
    }
    assert!(
        super::review_layout(&bootstrap_review(), 80, 24)
            .unwrap()
            .fits
    );
}

/// The signing screen shows the digest of each role the keyholder at the token signs, words
/// and hex whole at 80x24 (before: no digest at all while signing); when they cannot be shown
/// whole the screen says so and signing is refused.
#[test]
fn the_signing_screen_shows_the_digests_to_sign() {
    let all = screens();
    let signing = &all.iter().find(|(k, _)| *k == "token-present").unwrap().1;
    let s = render(signing, 80, 24);
    assert!(s.contains("root v2  ruffled autopsy optic hesitate"), "{s}");
    assert!(s.contains("8d4b f5b7 4688 f3a6 57f9 0a0b 0c0d 0e0f"), "{s}");
    assert!(super::digests_fit(signing, 80, 24));
    let s = render(signing, 50, 12);
    assert!(s.contains("too small"), "{s}");
    assert!(!super::digests_fit(signing, 50, 12));
}

/// The terminal-too-small notice and the refusal speak of the same thing: the size of the
/// whole terminal the review needs, and this terminal's size (before: the notice gave the body's
/// size as "this terminal gives 58x11" while the refusal asked for 54x21).
#[test]
fn the_too_small_notice_names_the_terminal_size_needed() {
    let s = render(&bootstrap_review(), 60, 15);
    let layout = super::review_layout(&bootstrap_review(), 60, 15).unwrap();
    let (w, h) = layout.terminal_needs((60, 15));
    assert!(h > 15, "{h}");
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(&format!(
            "needs a terminal of at least {w}x{h}; this one is 60x15"
        )),
        "{s}"
    );
    // Exactly: with that many rows it fits, with one fewer it does not.
    assert!(w <= 60, "{w}");
    assert!(
        super::review_layout(&bootstrap_review(), 60, h)
            .unwrap()
            .fits
    );
    assert!(
        !super::review_layout(&bootstrap_review(), 60, h - 1)
            .unwrap()
            .fits
    );
}

/// A key line wider than the terminal keeps `?` (whose help lists every key) instead of
/// cutting it off (before: key generation's line ended in "? h" at 80 columns).
#[test]
fn a_long_key_line_keeps_the_help_key() {
    let mut s = base(Screen::Blank);
    s.keys = [
        ("Enter", "generate the key"),
        ("t", "choose another token"),
        ("a", "assign it"),
        ("Esc", "parameters"),
        ("?", "help"),
        ("!", "exception"),
    ]
    .iter()
    .map(|(k, w)| (k.to_string(), w.to_string()))
    .collect();
    let out = render(&s, 80, 24);
    let last = out.lines().nth(23).unwrap();
    assert!(
        last.starts_with("Enter generate the key  t choose another token"),
        "{last}"
    );
    assert!(last.ends_with("? help"), "{last}");
    let out = render(&s, 120, 24);
    assert!(
        out.lines().nth(23).unwrap().ends_with("! exception"),
        "{out}"
    );
}

/// A prompt of several lines (the first step's purpose, read aloud, above its question) is
/// drawn line by line.
#[test]
fn an_acknowledge_prompt_keeps_its_lines() {
    let s = base(Screen::Acknowledge {
        prompt:
            "Purpose, read aloud: Create root v1.\n\nTamper-evident bag serial of the appliance"
                .into(),
        record_text: true,
        text: "A1".into(),
    });
    let out = render(&s, 80, 24);
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim() == "Purpose, read aloud: Create root v1.")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(lines[at + 1].trim(), "", "{out}");
    assert_eq!(
        lines[at + 2].trim(),
        "Tamper-evident bag serial of the appliance",
        "{out}"
    );
}

/// A rotate-targets-keys signing on the 80x24 console: four keyholders' tokens inserted, root
/// and targets to sign (words long enough to take two rows), a message and three meters. The
/// digests fit whole and signing is possible (before: "The terminal is too small to show the
/// digests to sign whole" at 80x24, and the ceremony could not be signed on the console).
#[test]
fn signing_two_roles_with_four_tokens_fits_80x24() {
    let mut s = two_role_signing();
    let Screen::Token {
        present, meters, ..
    } = &mut s.screen
    else {
        unreachable!()
    };
    *present = vec![
        token("dave", "e40f89b3a8002436", false),
        token("bob", "56ba81e343a527a4", false),
        token("alice", "976720eb4bf396b9", true),
        token("carol", "c6b6e9e051df5022", false),
    ];
    *meters = [
        "root v3 (new root's keys)",
        "root v3 (current root's keys)",
        "targets v2",
    ]
    .map(|label| Meter {
        label: label.into(),
        have: 0,
        need: 2,
    })
    .to_vec();
    s.instructions = "Each keyholder in turn inserts their token, checks the digest on screen, enters their PIN and confirms. Root is signed by the current root keys; targets by the new targets keys.".into();
    assert!(super::digests_fit(&s, 80, 24));
    let out = render(&s, 80, 24);
    assert!(!out.contains("too small"), "{out}");
    assert_eq!(
        out.matches("8d4b f5b7 4688 f3a6 57f9 0a0b 0c0d 0e0f")
            .count(),
        2,
        "{out}"
    );
    assert!(out.contains("▶ alice"), "{out}");
    // Two roles' digests leave little room for the meters and the signer list: they page,
    // with their position (before: "more row(s) not shown: enlarge the terminal").
    assert!(out.contains("rows 1-3 of 7 (PgDn: more)"), "{out}");
    assert!(!out.contains("not shown"), "{out}");
}

/// Every row a page shows at 80x24, paging as the app pages (one screen less one row).
fn pages_80x24(s: &mut ViewState) -> Vec<String> {
    let mut pages = Vec::new();
    s.rows_scroll = 0;
    loop {
        let page = super::token_rows(s, 80, 24).expect("the rows page at 80x24");
        pages.push(render(s, 80, 24));
        if page.first + page.shown >= page.total {
            return pages;
        }
        s.rows_scroll = page.first + page.shown.saturating_sub(1).max(1);
    }
}

/// A 9-keyholder root rotation signing two roles at 80x24: three meters and nine keyholders do
/// not fit beside two digests, so the rows page ("rows 1-5 of 12 (PgDn: more)"), the digests
/// stay on every page, and paging reaches every meter and every keyholder (before: "… 8 more
/// row(s) not shown: enlarge the terminal", and on the 80x24 console there was nothing larger).
#[test]
fn signing_rows_page_at_80x24_and_paging_reaches_every_row() {
    let names = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
    ];
    let mut s = base(Screen::Token {
        keyholder: "alice".into(),
        purpose: "sign targets and root".into(),
        expected: "alice".into(),
        present: vec![token("alice", "976720eb4bf396b9", true)],
        status: TokenStatus::Present,
        meters: vec![
            Meter {
                label: "root v3 (new root's keys)".into(),
                have: 0,
                need: 5,
            },
            Meter {
                label: "root v3 (current root's keys)".into(),
                have: 0,
                need: 5,
            },
            Meter {
                label: "targets v2".into(),
                have: 0,
                need: 5,
            },
        ],
        signers: names
            .iter()
            .map(|n| SignerRow {
                keyholder: (*n).into(),
                status: format!("to sign: root, targets ({n}'s row)"),
                done: false,
            })
            .collect(),
        digests: two_digests(),
    });
    let pages = pages_80x24(&mut s);
    assert!(pages.len() >= 2, "{pages:#?}");
    let all = pages.join("\n");
    for label in [
        "root v3 (new root's keys)",
        "root v3 (current root's keys)",
        "targets v2",
    ] {
        assert!(all.contains(label), "{label} on no page:\n{all}");
    }
    for n in names {
        assert!(
            all.contains(&format!("{n}'s row")),
            "{n} on no page:\n{all}"
        );
    }
    for p in &pages {
        // The digests to sign are on every page, and the rows' position is shown.
        assert_eq!(
            p.matches("8d4b f5b7 4688 f3a6 57f9 0a0b 0c0d 0e0f").count(),
            2,
            "{p}"
        );
        assert!(p.contains(" of 12 ("), "{p}");
        assert!(!p.contains("not shown"), "{p}");
    }
    assert!(pages.last().unwrap().contains("(PgUp: back)"));
    insta::assert_snapshot!("signing-rows-page-1-80x24", pages[0]);
    insta::assert_snapshot!("signing-rows-page-last-80x24", pages.last().unwrap());
}

/// Signing one role of a rotation at 80x24: the three meters and every keyholder's status are
/// on screen in the compact layout (before: the last rows, here dave's, fell off the bottom).
#[test]
fn a_rotation_signing_screen_keeps_every_meter_and_signer_at_80x24() {
    let mut s = base(Screen::Token {
        keyholder: "alice".into(),
        purpose: "sign root".into(),
        expected: "alice".into(),
        present: vec![token("alice", "976720eb4bf396b9", true)],
        status: TokenStatus::Present,
        meters: vec![
            Meter {
                label: "root v3 (new root's keys)".into(),
                have: 0,
                need: 2,
            },
            Meter {
                label: "root v3 (current root's keys)".into(),
                have: 0,
                need: 2,
            },
            Meter {
                label: "targets v2".into(),
                have: 0,
                need: 2,
            },
        ],
        signers: signers(),
        digests: vec![digest(
            "root v3",
            "Wilmington yesteryear Yucatan vagabond hurricane underfoot Pandora millionaire",
        )],
    });
    s.instructions = "Each keyholder in turn inserts their token, checks the digest on screen, enters their PIN and confirms. Root is signed by the current root keys; targets by the new targets keys.".into();
    s.message = Some(Message {
        error: false,
        text: "alice signed root.".into(),
    });
    let out = render(&s, 80, 24);
    for label in [
        "root v3 (new root's keys)",
        "root v3 (current root's keys)",
        "targets v2",
    ] {
        assert!(out.contains(label), "{label}:\n{out}");
    }
    for who in ["bob", "carol", "dave"] {
        assert!(out.contains(who), "{who}:\n{out}");
    }
    assert!(!out.contains("not shown"), "{out}");
}

/// The summary at 80x24 keeps every line: the checks, the export folder and the transcript's
/// path (before: beside the seal's QR code, the "Transcript:" line fell off the bottom); the
/// QR code gives way and says so.
#[test]
fn the_summary_keeps_the_transcript_path_at_80x24() {
    let hash = "d0d7050cee6ec325d0cdd2c2eb3f648053dcbb4acdbc37849c905371ae476769";
    let bytes = hex::decode(hash).unwrap();
    let s = base(Screen::Summary {
        seal_hex: crate::transcript::display::hex_groups(&bytes),
        seal_words: crate::transcript::display::pgp_words(&bytes).join(" "),
        seal_qr: crate::transport::qr::QrMatrix::encode(hash, 0)
            .unwrap()
            .to_terminal(1)
            .lines()
            .map(str::to_string)
            .collect(),
        lines: vec![
            "Metadata (conclave verify): VALID".into(),
            "Transcript (transcript verify): VALID".into(),
            "Key-event log (log verify): VALID".into(),
            String::new(),
            "Exported to /media/ceremony/conclave/export:".into(),
            "  1.root.json, 1.targets.json".into(),
            "Transcript: /media/ceremony/conclave/bootstrap-root.transcript.jsonl".into(),
        ],
    });
    let out = render(&s, 80, 24);
    assert!(
        out.contains("Transcript: /media/ceremony/conclave/bootstrap-root.transcript.jsonl"),
        "{out}"
    );
    assert!(out.contains("Key-event log (log verify): VALID"), "{out}");
    assert!(out.contains("QR code needs a larger terminal"), "{out}");
    // With room, the QR code is beside the text.
    let big = render(&s, 120, 40);
    assert!(
        big.contains("Transcript: /media") && big.contains("█▀▀▀▀▀▀▀█"),
        "{big}"
    );
}

/// A long message (a token's answer to a wrong PIN) is shown whole at 80x24 (before: three rows,
/// and "try again" was cut off).
#[test]
fn a_long_message_is_not_cut_off() {
    let mut s = base(Screen::Blank);
    s.message = Some(Message {
        error: true,
        text: "login to the token of alice: wrong PIN for token \"alice\" (serial 266c16c1d32104ef, SoftHSM project SoftHSM v2) (C_Login returned CKR_PIN_INCORRECT); the token reports a wrong PIN since the last successful login: try again".into(),
    });
    let out = render(&s, 80, 24);
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("since the last successful login: try again"),
        "{out}"
    );
}

/// A message quoting a long hostile name (escapes, a smuggled newline, no space for 80 columns)
/// is cut into rows between escapes, never inside one: no row starts with the "n- removed
/// owner" a cut `\n` would leave (before: `...\x00\` then a row `n- removed owner`).
#[test]
fn a_long_escaped_word_in_a_message_is_never_cut_inside_an_escape() {
    let mut s = base(Screen::Blank);
    s.message = Some(Message {
        error: true,
        text: "refused: $.invites[\"@evil\u{1b}]0;T\u{7}\u{1b}[2J\u{202e}live\u{200b}\u{200d}\u{0}abcdefghij\n- removed owner carol\"]".into(),
    });
    let out = render(&s, 80, 24);
    for line in out.lines() {
        let t = line.trim_start();
        assert!(
            !t.starts_with("n- removed") && !t.starts_with("u{"),
            "{out}"
        );
    }
    let flat: String = out.split_whitespace().collect();
    assert!(
        flat.contains(
            "\\x07\\x1b[2J\\u{202e}live\\u{200b}\\u{200d}\\x00abcdefghij\\n-removedownercarol"
        ),
        "{out}"
    );
}

/// The review of 10,000 claimed projects (generated requests with software keys, through the
/// engine) as the screen shows it first: its summary, at 80x24.
fn large_review(scroll: usize, pane: ReviewPane) -> (ViewState, Vec<String>) {
    use crate::transcript::display::{hex_groups, pgp_words};
    let engine = crate::ceremony::engine::summary::fixture::engine_at_review(10_000);
    let sum = engine.review_summary().expect("summary-first");
    let lines = super::review::summary_lines(&sum, &sum.line_by_line);
    let digests = engine
        .proposal()
        .unwrap()
        .digests()
        .into_iter()
        .map(|(role, hexd)| {
            let bytes = hex::decode(hexd).unwrap();
            DigestRow {
                role: format!("{role} v2"),
                hex_groups: hex_groups(&bytes),
                words: pgp_words(&bytes[..8]).join(" "),
            }
        })
        .collect();
    let v = ViewState {
        ceremony: "delegate-claimed-projects".into(),
        practice: false,
        progress: "step 8 of 12".into(),
        actor: "witness".into(),
        title: "8. Review the proposal".into(),
        instructions: "Review each delegation: project name, developers' keys with key ids, paths and threshold. The administrator reads the digest to sign aloud; every keyholder compares it with the screen.".into(),
        screen: Screen::Review {
            lines: lines.clone(),
            digests,
            scroll,
            pane,
        },
        keys: vec![
            ("↑↓ PgDn".into(), "scroll".into()),
            ("l".into(), "full list".into()),
            ("d".into(), "digest matches".into()),
            ("Enter".into(), "approve".into()),
        ],
        ..ViewState::default()
    };
    (v, lines)
}

/// A review of 10,000 claimed projects opens with its summary at 80x24: the counts per kind of
/// change first, the position in the summary, the digest to sign whole; paging through it shows
/// the checks, the top-level roles and the request set's SHA-256 in words and full hex with the
/// instruction to compare it with the published value.
#[test]
fn a_large_review_opens_with_its_summary_at_80x24() {
    let (first, lines) = large_review(0, ReviewPane::Summary { confirmed: false });
    let s = render(&first, 80, 24);
    insta::assert_snapshot!("large-review-summary-80x24", s);
    assert!(s.contains("Summary: lines 1-"), "{s}");
    assert!(s.contains("projects added"), "{s}");
    assert!(s.contains("10000"), "{s}");
    assert!(super::digests_fit(&first, 80, 24));
    // Every page, as the app pages (one screen less one line): every summary line is seen.
    let layout = super::review_layout(&first, 80, 24).unwrap();
    let mut seen = String::new();
    let mut at = 0;
    loop {
        let mut v = first.clone();
        if let Screen::Review { scroll, .. } = &mut v.screen {
            *scroll = at;
        }
        seen.push_str(&render(&v, 80, 24));
        let shown = layout.shown(&lines, at);
        if at + shown >= lines.len() {
            break;
        }
        at += shown.saturating_sub(1).max(1);
    }
    let engine_digest = lines
        .iter()
        .position(|l| l.starts_with("SHA-256 of the request set (10000 files"))
        .expect("the request set's digest");
    for l in &lines[engine_digest..] {
        let l = l.trim();
        if l.len() < 78 {
            assert!(seen.contains(l), "{l} never on screen:\n{seen}");
        }
    }
    assert!(seen.contains("press d"), "{seen}");
    assert!(seen.contains("no change to a top-level role's keys or thresholds"));
    assert!(seen.contains("each request: project name usable"), "{seen}");
}

/// Figures for `make bench` (release): a review of 10,000 claimed projects: importing the
/// requests and building the proposal, building the review lines and the summary, and drawing
/// the summary and the full list's last page at 80x24 (what every key press at the review does).
#[test]
#[ignore = "figures for make bench (release build)"]
fn large_review_figures() {
    use std::time::Instant;
    let started = Instant::now();
    let engine = crate::ceremony::engine::summary::fixture::engine_at_review(10_000);
    let import = started.elapsed();
    let started = Instant::now();
    let lines = engine.review_lines();
    let sum = engine.review_summary_of(&lines).expect("summary-first");
    let build = started.elapsed();
    let (v, _) = large_review(0, ReviewPane::Summary { confirmed: false });
    let started = Instant::now();
    let summary_lines = super::review::summary_lines(&sum, &sum.line_by_line);
    let s = render(&v, 80, 24);
    let draw_summary = started.elapsed();
    assert!(s.contains("projects added") && !summary_lines.is_empty());
    let started = Instant::now();
    let layout = super::review_layout(&v, 80, 24).unwrap();
    let last = layout.last_start(&lines);
    let mut list = v.clone();
    list.screen = Screen::Review {
        lines: lines.clone(),
        digests: vec![],
        scroll: last,
        pane: ReviewPane::FullList,
    };
    let s = render(&list, 80, 24);
    let draw_list = started.elapsed();
    assert!(s.contains(&format!("of {}", lines.len())), "{s}");
    println!(
        "large review (10,000 claimed projects, {} lines): import + proposal {:.0} ms, review lines + summary {:.0} ms, summary at 80x24 {:.1} ms, full list's last page {:.1} ms",
        lines.len(),
        import.as_secs_f64() * 1e3,
        build.as_secs_f64() * 1e3,
        draw_summary.as_secs_f64() * 1e3,
        draw_list.as_secs_f64() * 1e3
    );
}

/// A meter label longer than the usual column (a tuf-on-ci role signed "by the root v2 (this
/// event)") keeps a space before its bar: before, the label ran into it ("(this event)□").
#[test]
fn a_long_meter_label_never_runs_into_its_bar() {
    let meters = vec![
        Meter {
            label: "root v2 by the root v2 (this event)".into(),
            have: 0,
            need: 1,
        },
        Meter {
            label: "targets v2".into(),
            have: 1,
            need: 1,
        },
    ];
    let lines = super::meter_lines(&meters);
    let text: Vec<String> = lines
        .iter()
        .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
        .collect();
    assert!(text[0].contains("(this event) □"), "{:?}", text[0]);
    // Both bars start in the same column.
    let col = |t: &str, c: char| t.chars().position(|x| x == c);
    assert_eq!(col(&text[0], '□'), col(&text[1], '■'), "{text:?}");
}

/// Every step's instructions of every shipped script are on screen whole at 80 columns (the
/// instructions take at most [`super::INSTRUCTION_ROWS`] rows; the rest was cut without a
/// sign). Before: nine steps ran longer, sign-rstuf-pending-root's import to 14 rows, so the
/// room never read what the appliance checks, and the reviews of publish-targets and
/// sign-rstuf-pending-root lost "every keyholder compares it with the screen".
#[test]
fn shipped_instructions_fit_their_rows_at_80_columns() {
    let mut cut = Vec::new();
    for name in crate::driver::SHIPPED_SCRIPTS {
        let text = crate::driver::shipped_script(name).expect("shipped");
        let script = crate::ceremony::script::Script::parse(name, text).expect("parses");
        for step in &script.steps {
            // As the app joins them (`header` in app.rs), inside the frame's one-column inset.
            let joined = step
                .instructions
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let rows = super::wrapped_height(&joined, 78, true);
            if rows > super::INSTRUCTION_ROWS {
                cut.push(format!(
                    "{name} step {} ({}): {rows} rows",
                    step.id, step.title
                ));
            }
        }
    }
    assert!(
        cut.is_empty(),
        "instructions cut at 80x24:\n{}",
        cut.join("\n")
    );
}

/// The Welcome box keeps a blank column inside each border at 80x24 and 120x40: its words never
/// run into the border (before: "every│key", "! records│").
#[test]
fn the_welcome_words_never_touch_the_box_border() {
    let state = screens()
        .into_iter()
        .find(|(n, _)| *n == "welcome")
        .map(|(_, s)| s)
        .unwrap();
    for (w, h) in [(80, 24), (120, 40)] {
        let shown = render(&state, w, h);
        let rows: Vec<&str> = shown
            .lines()
            .skip_while(|l| !l.contains("┌ Welcome"))
            .skip(1)
            .take_while(|l| !l.contains('└'))
            .collect();
        assert!(rows.len() > 5, "{shown}");
        for row in rows {
            let inside: Vec<char> = row
                .chars()
                .skip_while(|c| *c != '│')
                .skip(1)
                .collect::<String>()
                .trim_end()
                .strip_suffix('│')
                .unwrap_or_else(|| panic!("no right border: {row}\n{shown}"))
                .chars()
                .collect();
            assert!(
                inside.first() == Some(&' ') && inside.last() == Some(&' '),
                "words touch the border at {w}x{h}: {row}\n{shown}"
            );
        }
    }
}

/// The seal signatures at 80x24 after a withdrawal and a rerun: long statuses continue under
/// the status column, never from column 0 (before: " was written" at the left edge).
#[test]
fn long_seal_statuses_wrap_under_the_status_column_at_80x24() {
    let row = |who: &str, status: &str, done: bool| SignerRow {
        keyholder: who.into(),
        status: status.into(),
        done,
    };
    let mut s = base(Screen::Token {
        keyholder: "carol".into(),
        purpose: "log in to sign the key-event log (the seal is signed)".into(),
        expected: "carol".into(),
        present: vec![token("carol", "976720eb4bf396b9", true)],
        status: TokenStatus::Present,
        meters: Vec::new(),
        signers: vec![
            row(
                "alice",
                "withdrawn from the seal (recorded): left the room before the new seal was written",
                false,
            ),
            row(
                "bob",
                "withdrawn from the seal (recorded): token died after the seal was written",
                false,
            ),
            row(
                "carol",
                "signed the seal before the interruption; logs in for the key-event log",
                true,
            ),
        ],
        digests: Vec::new(),
    });
    s.title = "Seal signatures".into();
    s.instructions = "The seal is written: each keyholder checks its hash and signs it with their token, in turn.".into();
    let out = render(&s, 80, 24);
    insta::assert_snapshot!("seal-long-statuses-80x24", out);
    let lines: Vec<&str> = out.lines().collect();
    for (i, words) in [
        "left the room",
        "token died after",
        "signed the seal before",
    ]
    .iter()
    .enumerate()
    {
        let at = lines
            .iter()
            .position(|l| l.contains(words))
            .unwrap_or_else(|| panic!("{words}:\n{out}"));
        let next = lines[at + 1];
        assert!(
            next.starts_with(&" ".repeat(16)) && next.trim().len() > 1,
            "row {i}: the status continues at column 0:\n{out}"
        );
    }
    for l in &lines {
        assert!(!l.starts_with("was written"), "{out}");
    }
}

/// The review of a tuf-on-ci event at 80x24 (accept-tuf-on-ci-invite and
/// sign-tuf-on-ci-event) fed owner names, @handles and file names carrying escape sequences
/// (terminal title, clear screen, conceal), a bidi override (U+202E) and zero-width
/// characters: nothing a terminal interprets reaches the screen, each shows as a visible
/// escape, and lines the engine escaped already (with `text::show`) are not escaped twice.
#[test]
fn hostile_tuf_on_ci_names_render_escaped_on_the_event_reviews_at_80x24() {
    let owner = "@al\u{202e}ecila";
    let handle = "@bob\u{200b}\u{2060}";
    let file = "targets/\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[8mevil.json";
    let raw_lines = vec![
        format!("role targets v2 ({file}): threshold 1 of 2 key(s)"),
        format!("  + added   owner {owner}, ed25519"),
        format!("  invite: {handle} to sign targets"),
        "digests to sign (SHA-256 of the canonical signed bytes):".into(),
        format!("  targets v2 ({file}): 0011aabb"),
        "keyholders present who sign:".into(),
        format!("  {handle}: key 976720eb signs targets"),
    ];
    let escaped_lines: Vec<String> = raw_lines
        .iter()
        .map(|l| crate::text::show_indented(l))
        .collect();
    for ceremony in ["accept-tuf-on-ci-invite", "sign-tuf-on-ci-event"] {
        for lines in [&raw_lines, &escaped_lines] {
            let mut s = base(Screen::Review {
                lines: lines.clone(),
                digests: vec![digest("targets", "ruffled autopsy")],
                scroll: 0,
                pane: ReviewPane::Changes,
            });
            s.ceremony = ceremony.into();
            s.title = "Review the event".into();
            let shown = render(&s, 80, 24);
            assert!(
                !shown.chars().any(|c| (c.is_control() && c != '\n')
                    || ('\u{202a}'..='\u{202e}').contains(&c)
                    || ('\u{200b}'..='\u{200f}').contains(&c)
                    || ('\u{2060}'..='\u{2064}').contains(&c)),
                "{ceremony}: an interpreted character reached the screen:\n{shown}"
            );
            for visible in [
                "@al\\u{202e}ecila",
                "@bob\\u{200b}\\u{2060}",
                "\\x1b]0;pwned\\x07",
            ] {
                assert!(
                    shown.contains(visible),
                    "{ceremony}: {visible} is not shown escaped:\n{shown}"
                );
            }
            assert!(!shown.contains("\\\\u{"), "escaped twice:\n{shown}");
        }
    }
}

/// A changes line wider than the pane is cut at spaces, never inside a key id or a hash, and
/// each row that continues a line is indented under it and marked, so it cannot read as a
/// line of its own (before: rows were cut at the 78th character, splitting a functionary's
/// key id and a layout's SHA-256 between two rows at column 0, and a long owner name could
/// continue as a row reading "- removed owner carol").
#[test]
fn long_review_lines_wrap_at_spaces_under_a_continuation_mark_at_80x24() {
    let layout_sha = "418f98f3475567a77ca3d52ae815fac348fbfb6f8bc01efe4a9363912b7dc1f4";
    let lines: Vec<String> = vec![
        "in-toto layout (metablock), expires 2027-06-07T04:20:43Z, 3 signature(s) so far".into(),
        format!("  functionary key {KEY_ID} (ed25519)"),
        format!(
            "targets gets in-toto/root.layout: the signed layout, 1730 bytes, sha256 {layout_sha}"
        ),
        format!(
            "    - removed owner {}- removed owner carol, ecdsa-sha2-nistp256",
            "bob of the long name ".repeat(3)
        ),
    ];
    let state = base(Screen::Review {
        lines: lines.clone(),
        digests: vec![digest(
            "targets v2",
            "ruffled autopsy optic hesitate stopwatch fortitude robust gadgetry",
        )],
        scroll: 0,
        pane: ReviewPane::Changes,
    });
    let s = render(&state, 80, 24);
    let rows: Vec<&str> = s.lines().collect();
    assert!(
        rows.iter().any(|r| r.contains(KEY_ID)),
        "the key id on one row:\n{s}"
    );
    assert!(
        rows.iter().any(|r| r.contains(layout_sha)),
        "the layout's SHA-256 on one row:\n{s}"
    );
    let continued: Vec<&&str> = rows
        .iter()
        .filter(|r| {
            r.trim_start()
                .starts_with(super::review::CONTINUED.trim_end())
        })
        .collect();
    assert!(continued.len() >= 3, "continuations are marked:\n{s}");
    assert!(
        !rows
            .iter()
            .any(|r| r.trim_start().starts_with("- removed owner carol")),
        "a wrapped name reads as a line of its own:\n{s}"
    );
    for r in &rows {
        assert!(r.chars().count() <= 80, "{r}");
    }
    let layout = super::review_layout(&state, 80, 24).unwrap();
    assert_eq!(layout.shown(&lines, 0), 4, "every line fits:\n{s}");
}

/// The export screen shows each file's whole SHA-256, as SHA256SUMS has it, for three files
/// at 80x24 (before: only its first 16 bytes, though the step says it shows the SHA-256 of
/// each file).
#[test]
fn the_export_shows_each_files_whole_sha256_at_80x24() {
    let files: Vec<(String, usize, String)> = ["2.root.json", "2.targets.json", "2.root.layout"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let sha: String = (0..32)
                .map(|b| format!("{:02x}", (b * 7 + i * 3) % 256))
                .collect();
            ((*name).to_string(), 1000 + i, sha)
        })
        .collect();
    let state = base(Screen::Export {
        files: files.clone(),
        destinations: vec!["workspace export folder /media/ceremony/export".into()],
        selected: 0,
    });
    let s = render(&state, 80, 24);
    let flat: Vec<&str> = s.split_whitespace().collect();
    for (name, _, sha) in &files {
        let bytes = hex::decode(sha).unwrap();
        let groups = crate::transcript::display::hex_groups(&bytes);
        let at = flat
            .iter()
            .position(|w| w == name)
            .unwrap_or_else(|| panic!("{name} not on screen:\n{s}"));
        // The name, its size, then the 16 groups of the whole SHA-256.
        let shown: Vec<&str> = flat.iter().skip(at + 2).take(16).copied().collect();
        let groups: Vec<&str> = groups.split(' ').collect();
        assert_eq!(shown, groups, "{name}'s whole SHA-256:\n{s}");
    }
}

/// Nine export files, each with its own SHA-256.
fn nine_export_files() -> Vec<(String, usize, String)> {
    (1..=9)
        .map(|i| {
            let sha: String = (0..32)
                .map(|b| format!("{:02x}", (b * 5 + i * 11) % 256))
                .collect();
            (format!("{i}.snapshot-{i}.json"), 2000 + i, sha)
        })
        .collect()
}

/// The export screen pages its files like the review and the signing rows: with nine files at
/// 80x24, and below 80 columns where the padded file rows wrap (70x24, 60x20), PgDn (one page
/// less one file, as the app pages) reaches every file, every file the page counts as shown is
/// on screen with its whole SHA-256, and the position is shown (before: files below the third
/// were cut off at 80x24; below 80 columns the wrapped rows were counted short, the last file
/// was cut and the position line fell off the screen).
#[test]
fn the_export_pages_every_file_at_80x24_and_below_80_columns() {
    let files = nine_export_files();
    for (w, h) in [(80, 24), (70, 24), (60, 20)] {
        let mut state = base(Screen::Export {
            files: files.clone(),
            destinations: vec!["workspace export folder /media/ceremony/export".into()],
            selected: 0,
        });
        let mut seen = std::collections::BTreeSet::new();
        let mut pages = 0;
        loop {
            let s = render(&state, w, h);
            let flat: Vec<&str> = s.split_whitespace().collect();
            let p = super::token_rows(&state, w, h)
                .unwrap_or_else(|| panic!("nine files page at {w}x{h}:\n{s}"));
            for (name, _, sha) in files.iter().skip(p.first).take(p.shown) {
                let at = flat
                    .iter()
                    .position(|x| x == name)
                    .unwrap_or_else(|| panic!("{name} not on screen at {w}x{h}:\n{s}"));
                let groups = crate::transcript::display::hex_groups(&hex::decode(sha).unwrap());
                let shown: Vec<&str> = flat.iter().skip(at + 2).take(16).copied().collect();
                let groups: Vec<&str> = groups.split(' ').collect();
                assert_eq!(shown, groups, "{name}'s whole SHA-256 at {w}x{h}:\n{s}");
                seen.insert(name.clone());
            }
            // "files 4-6 of 9", or "file 2 of 9" when a page holds one file.
            let position = super::review::position_of("file", p.first, p.shown, p.total);
            assert!(
                position.ends_with(" of 9") && s.contains(&position),
                "the position ({position}) is shown at {w}x{h}:\n{s}"
            );
            pages += 1;
            if p.first + p.shown >= p.total {
                break;
            }
            assert!(pages < 20, "paging ends");
            state.rows_scroll = p.first + p.shown.saturating_sub(1).max(1);
        }
        assert_eq!(
            seen.len(),
            9,
            "every file on some page at {w}x{h}: {seen:?}"
        );
    }
}

/// Rows `lines` take as a `Paragraph` with `Wrap { trim }` really draws them at `width`: the
/// row a sentinel line after them lands on.
fn drawn_rows(lines: &[Line<'static>], width: u16, trim: bool) -> usize {
    let mut with_end = lines.to_vec();
    with_end.push(Line::raw("@END@"));
    let mut t = Terminal::new(TestBackend::new(width, 400)).unwrap();
    t.draw(|f| {
        f.render_widget(
            ratatui::widgets::Paragraph::new(with_end.clone())
                .wrap(ratatui::widgets::Wrap { trim }),
            f.area(),
        );
    })
    .unwrap();
    let buf = t.backend().buffer();
    (0..400u16)
        .find(|&y| {
            let row: String = (0..width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect();
            row.contains("@END@")
        })
        .map(usize::from)
        .expect("the sentinel is drawn")
}

/// The rows the views count for wrapped text are the rows ratatui draws, at every width from 40
/// to 120, for the export's real lines (padded file rows, column heading) and prompt-like
/// text (before: runs of spaces were merged, and padded rows were counted short below 80
/// columns).
#[test]
fn wrapped_rows_are_counted_as_ratatui_draws_them() {
    let files = nine_export_files();
    let dest = vec!["workspace export folder /media/ceremony/export".to_string()];
    let text = "Type the PIN of   alice's token  (the YubiHSM with serial 02000001), then Enter.";
    for width in 40..=120u16 {
        let layout = super::seal::export_layout(Rect::new(0, 0, width, 400), &files, &dest, 0, 0);
        let lines = layout.lines;
        assert_eq!(
            usize::from(super::lines_height(&lines, width)),
            drawn_rows(&lines, width, false),
            "export at width {width}"
        );
        for line in &lines {
            let one = [line.clone()];
            assert_eq!(
                usize::from(super::lines_height(&one, width)),
                drawn_rows(&one, width, false),
                "{line:?} at width {width}"
            );
        }
        for trim in [true, false] {
            assert_eq!(
                usize::from(super::wrapped_height(text, width, trim)),
                drawn_rows(&[Line::raw(text)], width, trim),
                "prompt text at width {width}, trim {trim}"
            );
        }
    }
}

/// The approval's confirmation on the review leaves the digest block on screen at 80x24: the
/// room reads the digests it approves while it confirms (before: the centred popup covered part
/// of the digest block).
#[test]
fn the_approval_confirmation_leaves_every_digest_on_screen_at_80x24() {
    let mut state = bootstrap_review();
    state.prompt = Prompt::Confirm {
        question: "Approve: the room has reviewed every change and read the digests aloud?".into(),
    };
    // A message under the body (three rows) moves the digest block up to the middle rows,
    // where a centred popup sits.
    state.message = Some(Message {
        error: false,
        text: "The room pages through every line first.".into(),
    });
    let s = render(&state, 80, 24);
    assert!(s.contains("┌ Confirm"), "{s}");
    assert!(s.contains("y  yes"), "the question is whole:\n{s}");
    assert!(s.contains("ruffled autopsy optic hesitate"), "{s}");
    assert!(s.contains("targets v1  transit adrift"), "{s}");
    assert_eq!(s.matches("b010 8d70").count(), 2, "both hex whole:\n{s}");
    assert_eq!(
        s.matches("0a0b 0c0d 0e0f").count(),
        2,
        "both hex whole:\n{s}"
    );
}

/// Root and targets to sign, their words long enough to take two rows each at 80 columns.
fn two_digests() -> Vec<DigestRow> {
    vec![
        digest(
            "root v3",
            "Wilmington yesteryear Yucatan vagabond hurricane underfoot Pandora millionaire",
        ),
        digest(
            "targets v2",
            "tolerance Wilmington megaton yesteryear hydraulic Yucatan Atlantic vacancy",
        ),
    ]
}

/// The signing screen of a rotate-targets-keys ceremony on the 80x24 console: two roles whose
/// words take two rows each, four instruction rows, a message, the keyholders' rows paged.
fn two_role_signing() -> ViewState {
    let mut s = base(Screen::Token {
        keyholder: "alice".into(),
        purpose: "sign targets and root".into(),
        expected: "alice".into(),
        present: vec![token("alice", "976720eb4bf396b9", true)],
        status: TokenStatus::Present,
        meters: meters(),
        signers: signers(),
        digests: two_digests(),
    });
    s.instructions = "Each keyholder in turn inserts their token, checks the digest on screen, enters their PIN and confirms. The screen shows two meters: signatures counted for the current root's threshold and for the new root's threshold. Once both are met, the administrator may close signing (c).".into();
    s.message = Some(Message {
        error: false,
        text: "Approved: the keyholders sign next.".into(),
    });
    s
}

/// The signing PIN prompt as the app opens it after a wrong PIN on a practice token: the
/// token's warning in its label, the practice hint.
fn signing_pin() -> Prompt {
    Prompt::Pin {
        label: "alice: PIN of token alice (try again)\nWarning: the token reports a wrong PIN since the last successful login (CKF_USER_PIN_COUNT_LOW); it does not say how many tries are left".into(),
        field: "PIN".into(),
        typed: 4,
        practice_hint: true,
    }
}

/// The rows of `screen` from the digest heading to the last hex row (the digest block as the
/// room reads it), with their row numbers.
fn digest_block_rows(screen: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = screen.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains("To sign (SHA-256"))
        .unwrap_or_else(|| panic!("no digest block:\n{screen}"));
    let end = lines
        .iter()
        .rposition(|l| l.contains("0a0b 0c0d 0e0f"))
        .unwrap_or_else(|| panic!("no hex row:\n{screen}"));
    (start..=end).map(|i| (i, lines[i].to_string())).collect()
}

/// Whether `screen` shows the prompt whole: its top border with `title`, each of `rows`, and
/// its bottom border, in one box, whose last line is one of `last` (the box is not short of
/// rows: a prompt's lines that give way go from its end, the help then the blank lines).
fn prompt_whole(screen: &str, title: &str, rows: &[&str], last: &[&str]) -> bool {
    let lines: Vec<&str> = screen.lines().collect();
    let Some(top) = lines.iter().position(|l| l.contains(&format!("┌{title}"))) else {
        return false;
    };
    let Some(bottom) = lines[top..].iter().position(|l| l.contains('└')) else {
        return false;
    };
    let inside = boxed_rows(&lines[top + 1..top + bottom]);
    let Some(end) = inside.iter().rev().find(|l| !l.trim().is_empty()) else {
        return false;
    };
    rows.iter().all(|r| inside.iter().any(|l| l.contains(r)))
        && last.iter().any(|l| end.trim() == *l)
}

/// The text inside a box's side borders, row by row.
fn boxed_rows(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| {
            let a = l.find('│')?;
            let b = l.rfind('│')?;
            (b > a).then(|| l[a + '│'.len_utf8()..b].to_string())
        })
        .collect()
}

/// At 80x24 the signing confirmation and the PIN prompt open beside the digests being signed:
/// every digest row (heading, words, hex) is on screen, unchanged, while the keyholder confirms
/// and types the PIN, and the prompt is whole (before: the PIN prompt opened over the digest
/// rows).
#[test]
fn the_signing_prompts_leave_every_digest_row_on_screen_at_80x24() {
    let mut s = two_role_signing();
    let without = render(&s, 80, 24);
    let digest_rows = digest_block_rows(&without);
    assert!(digest_rows.len() >= 9, "{without}");
    let prompts = [
        (
            signing_pin(),
            " PIN (not shown, not recorded) ",
            vec!["alice: PIN of token alice (try again)", "PIN: ****_"],
            vec!["Practice token: F2 fills in its practice PIN", "PIN: ****_"],
        ),
        (
            Prompt::Confirm {
                question: "alice signs targets and root (the digests approved in the review) with their token? (token alice, serial 976720eb4bf396b9)".into(),
            },
            " Confirm ",
            vec!["alice signs targets and root", " y  yes"],
            vec!["y  yes     any other key  no"],
        ),
    ];
    for (prompt, title, rows, last) in prompts {
        s.prompt = prompt;
        let with = render(&s, 80, 24);
        let lines: Vec<&str> = with.lines().collect();
        for (i, row) in &digest_rows {
            assert_eq!(lines[*i], row, "digest row {i} covered:\n{with}");
        }
        assert!(prompt_whole(&with, title, &rows, &last), "{with}");
    }
}

/// On every terminal where signing is allowed (the digests fit), the PIN prompt leaves every
/// digest row on screen and is whole itself: when the rows above and below the digests are too
/// few for the whole prompt, its blank lines go, then its help; the digests never do.
#[test]
fn the_pin_prompt_never_covers_a_digest_row_where_signing_is_allowed() {
    let mut s = two_role_signing();
    let mut checked = 0;
    for w in [60, 70, 80, 100] {
        for h in 10..=40 {
            s.prompt = Prompt::None;
            if !super::digests_fit(&s, w, h) {
                continue;
            }
            let without = render(&s, w, h);
            let digest_rows = digest_block_rows(&without);
            s.prompt = signing_pin();
            let with = render(&s, w, h);
            let lines: Vec<&str> = with.lines().collect();
            for (i, row) in &digest_rows {
                assert_eq!(lines[*i], row, "{w}x{h}: digest row {i} covered:\n{with}");
            }
            assert!(
                prompt_whole(
                    &with,
                    " PIN",
                    &["alice: PIN of token alice", "PIN: ****_"],
                    &["Practice token: F2 fills in its practice PIN", "PIN: ****_"]
                ),
                "{w}x{h}:\n{with}"
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked}");
}

/// When the signing screen's head and digests fill the body exactly, the line saying rows are
/// below takes the blank row above the digests, not the last hex row (before: the digests were
/// said to fit and signing was allowed with the last hex row cut off).
#[test]
fn the_rows_below_never_take_a_digest_row() {
    let s = two_role_signing();
    for h in 10..=30 {
        if !super::digests_fit(&s, 80, h) {
            continue;
        }
        let out = render(&s, 80, h);
        assert_eq!(
            out.matches("8d4b f5b7 4688 f3a6 57f9 0a0b 0c0d 0e0f")
                .count(),
            2,
            "80x{h}:\n{out}"
        );
    }
}

/// A review of two roles whose words take two rows each, on the 80x24 console with four
/// instruction rows and a message: the changes pane shows at least 6 lines (before: 3; the
/// digest heading had a row of its own under the pane's lower border, and a one-row message
/// took three rows), and nothing is lost: the position, "more", the heading and every digest.
#[test]
fn a_two_digest_review_shows_six_lines_of_changes_at_80x24() {
    let mut s = base(Screen::Review {
        lines: (1..=22).map(|i| format!("  change line {i}")).collect(),
        digests: two_digests(),
        scroll: 0,
        pane: ReviewPane::Changes,
    });
    s.instructions = "Review the keys added and removed (with owners and key ids) and the whole key sets before and after, the new threshold and the expiry date. The administrator reads the digest to sign aloud; every keyholder compares it with the screen.".into();
    s.message = Some(Message {
        error: false,
        text: "Proposal built: review it.".into(),
    });
    let layout = super::review_layout(&s, 80, 24).unwrap();
    assert!(layout.fits);
    let Screen::Review { lines, .. } = &s.screen else {
        unreachable!()
    };
    let shown = layout.shown(lines, 0);
    assert!(shown >= 6, "{shown} lines of changes");
    let out = render(&s, 80, 24);
    assert!(
        out.contains(&format!(
            "What changes: lines 1-{shown} of 22  ↓ more (PgDn)"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("change line {shown}\n")), "{out}");
    assert!(
        out.contains("To sign (SHA-256 of the canonical bytes; read the words aloud):"),
        "{out}"
    );
    assert!(out.contains("Proposal built: review it."), "{out}");
    assert_eq!(out.matches("b010 8d70").count(), 2, "{out}");
    assert_eq!(out.matches("0a0b 0c0d 0e0f").count(), 2, "{out}");
    assert!(
        out.contains("hydraulic Yucatan Atlantic\n             vacancy\n"),
        "{out}"
    );
}

/// The export screen of the rotate-root-keys ceremony with `files` files and `destinations`.
fn export_screen(files: usize, destinations: &[&str]) -> ViewState {
    let files: Vec<(String, usize, String)> = [
        "2.root.json",
        "2.targets.json",
        "3.snapshot.json",
        "4.timestamp.json",
    ]
    .iter()
    .cycle()
    .take(files)
    .enumerate()
    .map(|(i, name)| {
        let sha: String = (0..32)
            .map(|b| format!("{:02x}", (b * 13 + i * 29 + 1) % 256))
            .collect();
        (format!("{i}-{name}"), 1500 + 7 * i, sha)
    })
    .collect();
    let mut s = base(Screen::Export {
        files,
        destinations: destinations.iter().map(|d| (*d).to_string()).collect(),
        selected: destinations.len() - 1,
    });
    s.title = "11. Export".into();
    s.actor = "administrator".into();
    s.keys = vec![
        ("↑↓".into(), "destination".into()),
        ("Enter".into(), "export".into()),
    ];
    s.instructions = "Insert the output media. The appliance writes the metadata, reads it back and shows the SHA-256 of each file.".into();
    s
}

/// The rows of `screen` that show a SHA-256 row of one of the export's files, with their row
/// numbers.
fn sha256_rows(s: &ViewState, screen: &str) -> Vec<(usize, String)> {
    let Screen::Export { files, .. } = &s.screen else {
        unreachable!()
    };
    let chunks: Vec<String> = files
        .iter()
        .flat_map(|(_, _, sha)| {
            let groups = crate::transcript::display::hex_groups(&hex::decode(sha).unwrap());
            let groups: Vec<String> = groups.split(' ').map(String::from).collect();
            groups.chunks(8).map(|c| c.join(" ")).collect::<Vec<_>>()
        })
        .collect();
    screen
        .lines()
        .enumerate()
        .filter(|(_, l)| chunks.iter().any(|c| l.contains(c.as_str())))
        .map(|(i, l)| (i, l.to_string()))
        .collect()
}

/// The export's confirmation opens beside the files' rows, never over them: at 80x24 and
/// 100x30, with the workspace only or a removable medium too (the longer question), with a
/// message under the body, every SHA-256 row drawn without the prompt is drawn unchanged with
/// it, and the prompt is whole (before: the centred prompt covered the files' SHA-256 rows
/// while the room confirmed the export).
#[test]
fn the_export_confirmation_leaves_every_sha256_row_on_screen() {
    let workspace = "workspace export folder /var/lib/conclave/ceremonies/rotate-root-keys/export";
    let cases = [
        (80, 24, 3, vec![workspace], None),
        (
            80,
            24,
            3,
            vec![workspace, "/media/CONCLAVE-OUT"],
            Some("/media/CONCLAVE-OUT/conclave-export"),
        ),
        (
            80,
            24,
            9,
            vec![workspace, "/media/CONCLAVE-OUT"],
            Some("/media/CONCLAVE-OUT/conclave-export"),
        ),
        (
            100,
            30,
            4,
            vec![workspace, "/media/CONCLAVE-OUT"],
            Some("/media/CONCLAVE-OUT/conclave-export"),
        ),
        (100, 30, 9, vec![workspace], None),
    ];
    for (w, h, files, destinations, medium) in cases {
        for message in [false, true] {
            let mut s = export_screen(files, &destinations);
            if message {
                s.message = Some(Message {
                    error: true,
                    text: "The medium /media/CONCLAVE-OUT is read-only: insert a writable one or choose the workspace folder.".into(),
                });
            }
            let export = "/var/lib/conclave/ceremonies/rotate-root-keys/export";
            let question = match medium {
                Some(m) => {
                    format!("Write the signed files to {m} and to the workspace copy {export}?")
                }
                None => format!("Write the signed files to {export}?"),
            };
            let rows = confirm_beside_the_files(&mut s, question, w, h);
            s.prompt = Prompt::None;
            let shown = super::token_rows(&s, w, h).map_or(files, |p| p.shown);
            assert!(shown >= 2, "{w}x{h}:\n{}", render(&s, w, h));
            assert_eq!(
                rows,
                2 * shown,
                "{w}x{h}: every file on screen has two SHA-256 rows:\n{}",
                render(&s, w, h)
            );
        }
    }
}

/// Opens the export's confirmation with `question` on `s` at `w`x`h` and checks that every
/// SHA-256 row drawn without it is drawn unchanged with it, and that it is whole; the number of
/// SHA-256 rows checked.
fn confirm_beside_the_files(s: &mut ViewState, question: String, w: u16, h: u16) -> usize {
    let without = render(s, w, h);
    let rows = sha256_rows(s, &without);
    s.prompt = Prompt::Confirm { question };
    let with = render(s, w, h);
    let lines: Vec<&str> = with.lines().collect();
    for (i, row) in &rows {
        assert_eq!(lines[*i], row, "{w}x{h}: SHA-256 row {i} covered:\n{with}");
    }
    assert!(
        prompt_whole(
            &with,
            " Confirm ",
            &["Write the signed files to", " y  yes"],
            &["y  yes     any other key  no"]
        ),
        "{w}x{h}:\n{with}"
    );
    rows.len()
}

/// On every terminal from 80x20 to 120x40, the export's confirmation leaves every SHA-256 row
/// of the files on screen as it was, and is whole.
#[test]
fn the_export_confirmation_never_covers_a_sha256_row() {
    let mut checked = 0;
    for w in [80, 100, 120] {
        for h in 20..=40 {
            let mut s = export_screen(
                9,
                &[
                    "workspace export folder /var/lib/x/export",
                    "/media/CONCLAVE-OUT",
                ],
            );
            s.message = Some(Message {
                error: false,
                text: "Choose where the signed files go.".into(),
            });
            let rows = confirm_beside_the_files(
                &mut s,
                "Write the signed files to /media/CONCLAVE-OUT/conclave-export and to the workspace copy /var/lib/x/export?".into(),
                w,
                h,
            );
            assert!(rows >= 4, "{w}x{h}: {rows} SHA-256 rows");
            checked += 1;
        }
    }
    assert_eq!(checked, 63);
}
