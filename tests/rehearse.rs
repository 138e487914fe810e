//! The practice ceremony end to end against real parts: SoftHSM2 practice tokens, the
//! transcript on disk, the export folder; its output verified by Conclave and by python-tuf; a
//! `kill -9` at many points of the ceremony, then the same command finishes a valid ceremony.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn conclave() -> Command {
    Command::new(env!("CARGO_BIN_EXE_conclave"))
}

fn rehearse(ws: &Path) -> (i32, String, String) {
    let out = conclave()
        .args(["rehearse", "--headless", "--workspace"])
        .arg(ws)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn python_accepts(export: &Path) {
    let run = common::run_python(
        "verify_offline.py",
        &[
            export.join("1.root.json").to_str().unwrap(),
            export.join("1.targets.json").to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(
        run.code(),
        0,
        "python-tuf refused the ceremony's output: {run:?}"
    );
}

fn transcript_verifies(ws: &Path) -> String {
    let out = conclave()
        .args(["transcript", "verify"])
        .arg(ws.join("bootstrap-root.transcript.jsonl"))
        .arg("--artifacts")
        .arg(ws.join("export"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("script conformance: every step followed the script"),
        "{text}"
    );
    text
}

#[test]
fn practice_ceremony_exports_what_conclave_and_python_tuf_accept() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let (code, out, err) = rehearse(&ws);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("--repo") && out.contains(": VALID"), "{out}");
    python_accepts(&ws.join("export"));
    transcript_verifies(&ws);
    // The root has the three keyholders' keys (from their tokens), threshold 2.
    let verify = conclave()
        .args(["verify", "--trusted-root"])
        .arg(ws.join("export/1.root.json"))
        .arg("--repo")
        .arg(ws.join("export"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{report}");
    assert!(report.contains("root      threshold 2 of 3"), "{report}");
    // No practice PIN appears in anything the ceremony printed or exported, or in the transcript.
    let pins = std::fs::read_to_string(ws.join("practice-tokens.json")).unwrap();
    let pins: serde_json::Value = serde_json::from_str(&pins).unwrap();
    let mut everything = out + &err;
    everything += &std::fs::read_to_string(ws.join("bootstrap-root.transcript.jsonl")).unwrap();
    for f in std::fs::read_dir(ws.join("export")).unwrap() {
        everything += &String::from_utf8_lossy(&std::fs::read(f.unwrap().path()).unwrap());
    }
    for (who, pin) in pins.as_object().unwrap() {
        let pin = pin.as_str().unwrap();
        assert_eq!(pin.len(), 6);
        assert!(
            !everything.contains(&format!("\"{pin}\"")),
            "PIN of {who} leaked"
        );
    }
    // A tampered transcript fails the auditor's check, naming the record.
    let t = ws.join("bootstrap-root.transcript.jsonl");
    let text = std::fs::read_to_string(&t).unwrap();
    std::fs::write(&t, text.replacen("\"PRACTICE\"", "\"PRACTICF\"", 1)).unwrap();
    let out = conclave()
        .args(["transcript", "verify"])
        .arg(&t)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("INVALID"));
}

fn lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

#[test]
fn killed_at_any_point_the_same_command_finishes_a_valid_ceremony() {
    // The transcript of a whole run has 27 records; kill after a growing number of them.
    let mut interrupted = 0;
    for kill_after in [1, 3, 6, 8, 10, 12, 14, 17, 20, 22, 23, 25] {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        let transcript = ws.join("bootstrap-root.transcript.jsonl");
        let mut child = conclave()
            .args(["rehearse", "--headless", "--workspace"])
            .arg(&ws)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let start = Instant::now();
        while lines(&transcript) < kill_after
            && start.elapsed() < Duration::from_secs(60)
            && child.try_wait().unwrap().is_none()
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        // SIGKILL the whole group (the rehearsal runs in a child process with its own config).
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", child.id())])
            .status();
        let _ = child.wait();
        let at_kill = lines(&transcript);
        let (code, out, err) = rehearse(&ws);
        assert_eq!(code, 0, "after a kill at record {kill_after}: {out}{err}");
        if (1..27).contains(&at_kill) {
            interrupted += 1;
            assert!(
                out.contains("continued an interrupted run"),
                "killed with {at_kill} records, not resumed: {out}"
            );
        }
        python_accepts(&ws.join("export"));
        transcript_verifies(&ws);
    }
    // The kills really landed inside the ceremony (not after it finished).
    assert!(interrupted >= 8, "only {interrupted} runs were interrupted");
}
