//! How every command that takes a ceremony script names it, through the binary: one rule
//! (`driver::find_script`) and one exit code per failure. A path-like argument (a '/' in it, or
//! ending in `.toml`) is a file; otherwise a shipped script's name wins, said on stderr when a
//! file of that name is in the current folder; a file read but not a valid script is refused
//! input (exit 1, the file named), a file that cannot be read exit 2.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Run, run_with_timeout};

const BIN: &str = env!("CARGO_BIN_EXE_conclave");

/// `conclave ARGS` in `dir`, without a terminal.
fn conclave_in(dir: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args);
    run_with_timeout(&mut cmd, b"", Duration::from_secs(60))
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("ceremony-scripts")
            .join(format!("{name}.toml")),
    )
    .unwrap()
}

/// The title line of a script's text (`title = "..."`).
fn title(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("title = \""))
        .and_then(|t| t.strip_suffix('"'))
        .expect("a title")
        .to_string()
}

/// A script file that is not UTF-8 is refused input in every command that takes a script:
/// exit 1, the file named (before: 2 in `ceremony run`, 1 in `check` and `print`); a script
/// file that cannot be read is exit 2 in every one.
#[test]
fn a_script_that_is_not_text_is_refused_input_in_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("bad.toml"), [b'n', b'a', 0xff, 0xfe, b'\n']).unwrap();
    std::fs::write(dir.join("answers.toml"), "practice = true\n").unwrap();
    let commands: [&[&str]; 5] = [
        &["ceremony", "check"],
        &["ceremony", "print"],
        &["ceremony", "print", "--html"],
        &[
            "ceremony",
            "run",
            "--workspace",
            "ws",
            "--answers",
            "answers.toml",
        ],
        &["tui", "--workspace", "ws"],
    ];
    for args in commands {
        for (script, code, said) in [
            ("bad.toml", 1, "bad.toml: not UTF-8 text"),
            ("missing.toml", 2, "cannot open missing.toml"),
        ] {
            let mut full = args.to_vec();
            if args[0] == "tui" {
                full.extend(["--script", script]);
            } else {
                full.push(script);
            }
            let run = conclave_in(dir, &full);
            assert_eq!(run.code(), code, "{full:?}: {run:?}");
            assert!(run.stderr.contains(said), "{full:?}: {run:?}");
            assert!(run.stdout.is_empty(), "{full:?}: {run:?}");
        }
        // Refused before any workspace was made.
        assert!(!dir.join("ws").exists(), "{args:?}");
    }
}

/// A file named like a shipped script in the current folder: `ceremony check` and `ceremony
/// run` both use the shipped script and say so on stderr, with how to name the file ("./NAME");
/// named so, the file is used, and its name is the one inside it.
#[test]
fn a_shipped_name_wins_over_a_file_and_the_clash_is_said() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The file holds another script (refresh-expiry's text).
    let refresh = shipped("refresh-expiry");
    std::fs::write(dir.join("bootstrap-root"), &refresh).unwrap();
    let note = "conclave: \"bootstrap-root\" is the shipped script; the file bootstrap-root in \
                the current folder is not used (to use the file, name it ./bootstrap-root)";

    let run = conclave_in(dir, &["ceremony", "check", "bootstrap-root"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stderr.contains(note), "{run:?}");
    let bootstrap = title(&shipped("bootstrap-root"));
    assert!(
        run.stdout
            .starts_with(&format!("bootstrap-root: {bootstrap} (bootstrap-root), ")),
        "{run:?}"
    );

    let run = conclave_in(dir, &["ceremony", "check", "./bootstrap-root"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(!run.stderr.contains("shipped script"), "{run:?}");
    assert!(
        run.stdout.starts_with(&format!(
            "./bootstrap-root: {} (refresh-expiry), ",
            title(&refresh)
        )),
        "{run:?}"
    );

    // `ceremony run`: the same rule and the same note, before the answers file is read (a file
    // that is missing here: exit 2 naming it, after the script was chosen).
    let run = conclave_in(
        dir,
        &[
            "ceremony",
            "run",
            "bootstrap-root",
            "--workspace",
            "ws",
            "--answers",
            "no-answers.toml",
        ],
    );
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains(note), "{run:?}");
    assert!(run.stderr.contains("no-answers.toml"), "{run:?}");
    // Named "./bootstrap-root", the file is the script: here one that is not text, refused
    // (exit 1) naming it; with the bare name the shipped script is still used.
    std::fs::write(dir.join("bootstrap-root"), [0xff, 0xfe]).unwrap();
    let run = conclave_in(
        dir,
        &[
            "ceremony",
            "run",
            "./bootstrap-root",
            "--workspace",
            "ws",
            "--answers",
            "no-answers.toml",
        ],
    );
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr.contains("./bootstrap-root: not UTF-8 text"),
        "{run:?}"
    );
    let run = conclave_in(dir, &["ceremony", "check", "bootstrap-root"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stderr.contains(note), "{run:?}");
}
