//! A walk through each of the seven ceremonies of Conclave's own role model in the terminal UI
//! at 80×24, as a new user would (`conclave rehearse --script NAME` in tmux; a rotation first
//! gets its earlier bootstrap with `conclave rehearse --headless` in the same workspace), with
//! what issue 17 promises checked on every screen:
//!
//! - no line wider than 80 columns; no label running into words (`targets v1transit`);
//! - the script's purpose on step 1's screen, whole;
//! - a review that pages says where it is ("lines 7-12 of 22"), pages one screen less one
//!   line, and refuses approval until every line has been on screen;
//! - every digest whole (its words and all 64 hex digits) on the review and on each signing
//!   screen, and the same digest everywhere; the signing confirmation and the PIN prompt open
//!   beside the digests being signed, which stay whole on screen;
//! - the PIN-count flags whole in the PIN prompt after a wrong PIN, before the next try;
//! - the seal hash on screen before the first seal signature, the same hash on the end screen;
//! - the export screen shows each file's whole SHA-256, equal to the exported file's;
//! - the end screen says complete, and `conclave transcript verify` agrees.
//!
//! One test per ceremony, so they run in parallel.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::tmux::Tmux;
use sha2::{Digest, Sha256};

fn conclave() -> &'static str {
    env!("CARGO_BIN_EXE_conclave")
}

/// A digest as shown: its words and its hex groups.
#[derive(Clone, Debug, PartialEq)]
struct Shown {
    words: Vec<String>,
    hex: Vec<String>,
}

fn is_group(w: &str) -> bool {
    w.len() == 4 && w.chars().all(|c| c.is_ascii_hexdigit())
}

/// The digest blocks under "To sign (SHA-256" on a screen without a popup: label -> digest.
/// Each label's row is the label, at least two spaces, then words; the words may continue on
/// rows indented to the same column; then rows of hex groups.
fn digest_blocks(screen: &str) -> BTreeMap<String, Shown> {
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = screen.lines().collect();
    let Some(start) = lines.iter().position(|l| l.contains("To sign (SHA-256")) else {
        return out;
    };
    let mut current: Option<(String, Shown)> = None;
    // The column where the words start: the same for every label of the block.
    let mut col: Option<usize> = None;
    for l in &lines[start + 1..] {
        let body = l.trim_start();
        if body.is_empty() {
            break;
        }
        let lead = l.len() - body.len();
        let words: Vec<&str> = body.split_whitespace().collect();
        if Some(lead) == col {
            // A continuation row: more words or hex groups.
            let Some((_, d)) = current.as_mut() else {
                break;
            };
            if words.iter().all(|w| is_group(w)) {
                d.hex.extend(words.iter().map(|w| w.to_string()));
            } else if d.hex.is_empty() {
                d.words.extend(words.iter().map(|w| w.to_string()));
            } else {
                break;
            }
            continue;
        }
        // A label row: " label  words..." (the label may hold one space: "root v2").
        let Some(cut) = body.find("  ") else {
            break;
        };
        let label = body[..cut].to_string();
        let after = &body[cut..];
        let word_col = lead + cut + (after.len() - after.trim_start().len());
        if col.is_some_and(|c| c != word_col) {
            break;
        }
        let rest: Vec<String> = after.split_whitespace().map(String::from).collect();
        if rest.is_empty() || rest.iter().any(|w| is_group(w)) {
            break;
        }
        col = Some(word_col);
        if let Some((k, d)) = current.take() {
            out.insert(k, d);
        }
        current = Some((
            label,
            Shown {
                words: rest,
                hex: Vec::new(),
            },
        ));
    }
    if let Some((k, d)) = current.take() {
        out.insert(k, d);
    }
    out
}

/// "lines A-B of N" (or "line A of N") in a review pane's title (its border line; the same
/// words in a message below are not the position).
fn position(screen: &str) -> Option<(usize, usize, usize)> {
    let title = screen
        .lines()
        .find(|l| l.contains('─') && l.contains(": line"))?;
    let at = title.find(": line")? + ": line".len();
    let rest = &title[at..];
    let nums: Vec<usize> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|x| !x.is_empty())
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    match nums.as_slice() {
        [a, b, n] if rest.starts_with("s ") => Some((*a, *b, *n)),
        [a, n, ..] => Some((*a, *a, *n)),
        _ => None,
    }
}

/// "files A-B of N" (or "file A of N") under the export's files.
fn export_position(screen: &str) -> Option<(usize, usize, usize)> {
    let l = screen.lines().find(|l| {
        let t = l.trim_start();
        (t.starts_with("files ") || t.starts_with("file ")) && t.contains(" of ")
    })?;
    let nums: Vec<usize> = l
        .split(|c: char| !c.is_ascii_digit())
        .filter(|x| !x.is_empty())
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    match nums.as_slice() {
        [a, b, n] if l.trim_start().starts_with("files ") => Some((*a, *b, *n)),
        [a, n, ..] => Some((*a, *a, *n)),
        _ => None,
    }
}

/// The text inside a popup's borders, row by row.
fn boxed(screen: &str) -> String {
    screen
        .lines()
        .filter_map(|l| {
            let a = l.find('│')?;
            let b = l.rfind('│')?;
            (b > a).then(|| l[a + '│'.len_utf8()..b].to_string())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn has_popup(screen: &str) -> bool {
    screen.contains("┌ Confirm") || screen.contains("┌ PIN")
}

/// What every screen must hold, whatever it shows.
fn check_every_screen(screen: &str) {
    for l in screen.lines() {
        assert!(
            l.chars().count() <= 80,
            "a line wider than 80 columns:\n{screen}"
        );
    }
    // A key id or hash is never cut between two rows: a hex run is whole (64 digits), a
    // 16-digit short key id or serial, or a group of four.
    for w in screen.split_whitespace() {
        let w = w.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        assert!(
            !(w.len() > 16 && w.len() < 64 && w.chars().all(|c| c.is_ascii_hexdigit())),
            "a hex value cut ({w}):\n{screen}"
        );
    }
    // A version label never runs into a word ("targets v1transit").
    for w in screen.split_whitespace() {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric());
        if let Some(rest) = w.strip_prefix('v')
            && let Some(i) = rest.find(|c: char| !c.is_ascii_digit())
            && i > 0
            && rest[i..].chars().all(|c| c.is_ascii_lowercase())
            && rest[i..].len() > 1
        {
            panic!("a label runs into a word ({w}):\n{screen}");
        }
    }
}

fn assert_whole(label: &str, d: &Shown, screen: &str) {
    assert_eq!(
        d.hex.len(),
        16,
        "{label}: the hex is not whole (16 groups):\n{screen}"
    );
    assert!(
        d.words.len() >= 8,
        "{label}: the words are not whole:\n{screen}"
    );
}

/// The purpose of a shipped script, as its TOML file has it.
fn purpose_of(script: &str) -> String {
    let path = common::manifest_dir().join(format!("ceremony-scripts/{script}.toml"));
    let v: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["ceremony"]["purpose"].as_str().unwrap().to_string()
}

fn flat(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn contains_words(screen: &str, words: &str) -> bool {
    let want = flat(words);
    flat(screen)
        .windows(want.len())
        .any(|w| w == want.as_slice())
}

fn practice_pins(ws: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(ws.join("practice-tokens.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The transcript of `script` in the workspace (a rotation's name carries the version).
fn transcript_of(ws: &Path, script: &str) -> std::path::PathBuf {
    std::fs::read_dir(ws)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with(script) && n.ends_with(".transcript.jsonl")
        })
        .unwrap_or_else(|| panic!("no transcript of {script} in {}", ws.display()))
}

/// Walk `script` to its end at 80x24.
fn walk(script: &str) {
    let started = std::time::Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    if script != "bootstrap-root" {
        let out = Command::new(conclave())
            .args(["rehearse", "--headless", "--workspace"])
            .arg(&ws)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the earlier bootstrap: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let t = Tmux::start(
        &format!("walk-{script}"),
        &format!(
            "{} rehearse --script {script} --workspace {}",
            conclave(),
            ws.display()
        ),
    );
    t.begin();
    let purpose = purpose_of(script);

    let mut digests: BTreeMap<String, Shown> = BTreeMap::new();
    let mut seen_step1 = false;
    let mut wrong_pin_typed = false;
    // Per review (by its step title): refused once unread, and where it was last.
    let mut review_refused: Vec<String> = Vec::new();
    let mut review_last: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut seal: Option<Shown> = None;
    let mut export_files: Vec<(String, Vec<String>)> = Vec::new();
    let mut signing_screens = 0;
    let mut signing_prompts = 0;
    // A load step promises the current keys, thresholds and expiry dates on screen.
    let mut load_step = false;
    let mut loaded_shown = false;
    let mut screen = t.idle_screen();
    for _ in 0..400 {
        check_every_screen(&screen);
        assert!(!screen.contains("EXIT="), "conclave ended early:\n{screen}");
        if screen.contains("Sealed: the ceremony is complete") {
            break;
        }
        let title = screen.lines().nth(1).unwrap_or("").trim().to_string();
        // The script's purpose, whole, on step 1's screen.
        if title == "1. Open the ceremony" && !has_popup(&screen) {
            assert!(
                contains_words(&screen, &format!("Purpose, read aloud: {purpose}")),
                "the purpose is not whole on step 1:\n{screen}"
            );
            seen_step1 = true;
        }
        if title.ends_with("Load the current metadata") {
            load_step = true;
        }
        if screen.contains("Loaded and recorded: root v")
            && contains_words(&screen, "thresholds: root")
            && screen.contains("expires")
        {
            loaded_shown = true;
        }
        // Digests, whole and the same everywhere.
        if !has_popup(&screen) && screen.contains("To sign (SHA-256") {
            let blocks = digest_blocks(&screen);
            assert!(!blocks.is_empty(), "no digest read:\n{screen}");
            for (label, d) in blocks {
                assert_whole(&label, &d, &screen);
                if label == "seal" {
                    if let Some(s) = &seal {
                        assert_eq!(s, &d, "the seal hash changed:\n{screen}");
                    }
                    seal = Some(d);
                    continue;
                }
                if let Some(before) = digests.get(&label) {
                    assert_eq!(
                        before, &d,
                        "{label}'s digest differs from the review:\n{screen}"
                    );
                } else {
                    assert!(
                        position(&screen).is_some(),
                        "{label}'s digest first shown outside a review:\n{screen}"
                    );
                    digests.insert(label, d);
                }
            }
            if screen.contains("Keyholder ") && screen.contains(": sign") {
                signing_screens += 1;
            }
        }
        // A signing confirmation and the PIN prompt that signs open beside the digests being
        // signed: every one stays whole on screen, the same as at the review (before: the
        // prompts opened over them).
        let popup = boxed(&screen);
        let signing_prompt = (screen.contains("┌ Confirm")
            && popup.contains(" signs ")
            && popup.contains("with their"))
            || (screen.contains("┌ PIN") && contains_words(&popup, "to sign"));
        if signing_prompt {
            let shown = digest_blocks(&screen);
            assert!(
                !shown.is_empty(),
                "a signing prompt over the digests it signs:\n{screen}"
            );
            for (label, d) in &shown {
                assert_whole(label, d, &screen);
                if label == "seal" {
                    assert_eq!(seal.as_ref(), Some(d), "{screen}");
                } else {
                    assert_eq!(
                        digests.get(label),
                        Some(d),
                        "{label} beside the signing prompt:\n{screen}"
                    );
                }
            }
            signing_prompts += 1;
        }
        // The seal hash is on screen before anyone signs the seal.
        if screen.contains("signed the seal") {
            assert!(
                seal.is_some(),
                "a seal signature before its hash was shown:\n{screen}"
            );
        }
        // The export's whole SHA-256 per file.
        // Files paged ("files 4-6 of 9") are collected page by page: every file is reachable.
        let export_page = export_position(&screen);
        if screen.contains("Destination:") && !has_popup(&screen) {
            if export_page.is_none_or(|(first, _, _)| first == 1) {
                export_files.clear();
            }
            let lines: Vec<&str> = screen.lines().collect();
            if let Some(h) = lines
                .iter()
                .position(|l| l.trim_start().starts_with("file "))
            {
                for l in &lines[h + 1..] {
                    let w = flat(l);
                    if w.len() == 10 && w[1].chars().all(|c| c.is_ascii_digit()) {
                        export_files.retain(|(n, _)| *n != w[0]);
                        export_files.push((w[0].clone(), w[2..].to_vec()));
                    } else if w.len() == 8 && w.iter().all(|g| is_group(g)) {
                        if let Some((_, g)) = export_files.last_mut() {
                            g.extend(w);
                        }
                    } else {
                        break;
                    }
                }
            }
            assert!(!export_files.is_empty(), "no file listed:\n{screen}");
            if let Some((_, last, total)) = export_page {
                if last < total {
                    t.send(&["PageDown"]);
                    std::thread::sleep(Duration::from_millis(250));
                    screen = t.wait_change(&screen);
                    continue;
                }
                assert_eq!(export_files.len(), total, "every file paged to:\n{screen}");
            }
        }

        // The answer.
        if let Some((first, last, total)) = position(&screen).filter(|_| !has_popup(&screen)) {
            if let Some(&(f0, l0, _)) = review_last.get(&title)
                && (first, last) != (f0, l0)
            {
                // One screen less one line: the last line shown before is shown again.
                assert!(
                    first > f0
                        && (first == l0
                            || (first < l0 && last == total)
                            // A page of one line (wider than the pane's rows) moves on by one.
                            || (f0 == l0 && first == l0 + 1)),
                    "PgDn moves one screen less one line: {f0}-{l0} then {first}-{last}:\n{screen}"
                );
            }
            review_last.insert(title.clone(), (first, last, total));
            if last < total {
                assert!(screen.contains("↓ more (PgDn)"), "{screen}");
                if !review_refused.contains(&title) {
                    // Approval before every line has been on screen is refused.
                    t.send(&["Enter"]);
                    let s = t.wait_for("have not been on screen");
                    assert!(!s.contains("│ y  yes"), "approval offered unread:\n{s}");
                    review_refused.push(title.clone());
                    // The refusal takes the rows it needs under the changes: PgDn pages from
                    // the screen as it is now.
                    if let Some(p) = position(&s) {
                        review_last.insert(title.clone(), p);
                    }
                    screen = s;
                }
                t.send(&["PageDown"]);
                std::thread::sleep(Duration::from_millis(250));
                screen = t.wait_change(&screen);
                continue;
            }
        }
        if screen.contains("PIN: ") {
            let who = screen
                .split_whitespace()
                .collect::<Vec<_>>()
                .windows(3)
                .find(|w| w[1] == "PIN" && w[2] == "of")
                .map(|w| {
                    w[0].rsplit('│')
                        .next()
                        .unwrap_or(w[0])
                        .trim_end_matches(':')
                        .to_string()
                })
                .unwrap_or_else(|| panic!("whose PIN?\n{screen}"));
            let pins = practice_pins(&ws);
            let pin = pins
                .get(&who)
                .unwrap_or_else(|| panic!("no practice PIN of {who}"));
            if !wrong_pin_typed {
                // A wrong PIN of the right length: the token's PIN-count flag is then shown
                // whole in the prompt, before the next try.
                let wrong: String = pin
                    .chars()
                    .map(|c| char::from(b'0' + (c as u8 - b'0' + 1) % 10))
                    .collect();
                t.type_text(&wrong);
                t.send(&["Enter"]);
                let s = t.wait_for("(try again)");
                // The whole redraw, not a capture taken halfway through it.
                drop(s);
                std::thread::sleep(Duration::from_millis(300));
                let s = t.screen();
                let boxed = boxed(&s);
                assert!(
                    contains_words(
                        &boxed,
                        "(CKF_USER_PIN_COUNT_LOW); it does not say how many tries are left"
                    ) && boxed.contains("PIN: "),
                    "the PIN-count flag is not whole in the prompt:\n{s}"
                );
                check_every_screen(&s);
                wrong_pin_typed = true;
                screen = s;
            }
            t.type_text(pin);
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
        screen.contains("Sealed: the ceremony is complete")
            && screen.contains("The ceremony is complete and sealed"),
        "the ceremony did not finish:\n{screen}"
    );
    check_every_screen(&screen);
    assert!(seen_step1, "step 1 was never on screen");
    assert!(
        loaded_shown || !load_step,
        "the load step never showed the loaded versions, thresholds and expiry dates"
    );
    assert!(wrong_pin_typed, "no PIN prompt");
    assert!(
        !digests.is_empty() && signing_screens > 0 && signing_prompts > 0,
        "no review, signing or signing prompt seen"
    );
    assert!(!review_last.is_empty(), "no review seen");
    for (title, (_, last, total)) in &review_last {
        assert_eq!(
            last, total,
            "{title}: the review's last line was never on screen"
        );
    }
    // The end screen's seal is the one signed.
    let seal = seal.expect("the seal hash was shown before its signatures");
    // The seal's hex groups (the QR code may stand beside them on the same rows).
    let hex_on_end: Vec<String> = flat(&screen)
        .into_iter()
        .skip_while(|w| w != "form):")
        .skip(1)
        .filter(|w| is_group(w))
        .take(16)
        .collect();
    assert_eq!(hex_on_end, seal.hex, "the end screen's seal:\n{screen}");
    t.send(&["q"]);
    t.wait_for("EXIT=0");
    t.kill();

    // The export screen's SHA-256 of each file is the exported file's.
    assert!(!export_files.is_empty(), "no export screen seen");
    for (name, groups) in &export_files {
        let bytes = std::fs::read(ws.join("export").join(name)).unwrap();
        let hex: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(groups.concat(), hex, "{name}: the export screen's SHA-256");
    }
    // Complete only if the transcript verifies.
    let transcript = transcript_of(&ws, script);
    let out = Command::new(conclave())
        .args(["transcript", "verify"])
        .arg(&transcript)
        .arg("--artifacts")
        .arg(ws.join("export"))
        .arg("--trusted-root")
        .arg(ws.join("export/1.root.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{script}: {text}");
    assert!(text.contains("Verdict: VALID"), "{text}");
    eprintln!("{script}: walked at 80x24 in {:.0?}", started.elapsed());
}

#[test]
fn walk_bootstrap_root_at_80x24() {
    walk("bootstrap-root");
}

#[test]
fn walk_rotate_root_keys_at_80x24() {
    walk("rotate-root-keys");
}

#[test]
fn walk_rotate_targets_keys_at_80x24() {
    walk("rotate-targets-keys");
}

#[test]
fn walk_rotate_online_keys_at_80x24() {
    walk("rotate-online-keys");
}

#[test]
fn walk_refresh_expiry_at_80x24() {
    walk("refresh-expiry");
}

#[test]
fn walk_delegate_claimed_projects_at_80x24() {
    walk("delegate-claimed-projects");
}

#[test]
fn walk_sign_intoto_layout_at_80x24() {
    walk("sign-intoto-layout");
}
