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

/// `conclave rehearse --headless --script SCRIPT --workspace WS` succeeds; what it printed.
fn rehearse_script(ws: &Path, script: &str) -> String {
    rehearse_script_with(ws, script, &[])
}

/// [`rehearse_script`] with more arguments (`--new`: another ceremony of a script done before).
fn rehearse_script_with(ws: &Path, script: &str, more: &[&str]) -> String {
    let out = conclave()
        .args(["rehearse", "--headless", "--script", script, "--workspace"])
        .arg(ws)
        .args(more)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{script}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn python_accepts(export: &Path) {
    python_accepts_targets(&export.join("1.root.json"), &export.join("1.targets.json"));
}

fn transcript_verifies(ws: &Path) -> String {
    transcript_named_verifies(ws, "bootstrap-root.transcript.jsonl")
}

/// `conclave transcript verify WS/NAME --artifacts WS/export --trusted-root
/// WS/export/1.root.json` passes, script conformance included, the seal anchored in the
/// workspace's first root.
fn transcript_named_verifies(ws: &Path, name: &str) -> String {
    let out = conclave()
        .args(["transcript", "verify"])
        .arg(ws.join(name))
        .arg("--artifacts")
        .arg(ws.join("export"))
        .arg("--trusted-root")
        .arg(ws.join("export/1.root.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{name}: {text}");
    assert!(text.contains("Verdict: VALID (anchored"), "{name}: {text}");
    assert!(
        text.contains("script conformance: every step followed the script"),
        "{name}: {text}"
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
    let text = transcript_verifies(&ws);
    one_id_per_key_in_the_auditor_report(&ws, &text);
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
    let mut everything = out.clone() + &err;
    everything += &std::fs::read_to_string(ws.join("bootstrap-root.transcript.jsonl")).unwrap();
    // The exported files and the key-event log's files.
    let mut files = vec![ws.join("export")];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            everything += &String::from_utf8_lossy(&std::fs::read(&p).unwrap());
        }
    }
    // The key-event log was started at the seal and its checkpoint signed by the tokens.
    assert!(
        out.contains("conclave log verify --log")
            && out.contains("VALID (checkpoint signed here by alice, bob, carol)"),
        "{out}"
    );
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

/// The auditor's report (text and Markdown) names each key by the key id root lists it under
/// (with its owner field), as every UI screen does; the token key's own id appears only where
/// a line explains the mapping, labelled (before: `key-generated` and `seal-signature` lines
/// and the seal's signer list named the token key's id, a second id for the same key).
fn one_id_per_key_in_the_auditor_report(ws: &Path, text: &str) {
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.join("export/1.root.json")).unwrap()).unwrap();
    let root_ids: Vec<String> = root["signed"]["keys"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let transcript = std::fs::read_to_string(ws.join("bootstrap-root.transcript.jsonl")).unwrap();
    let token_ids: Vec<String> = transcript
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["action"] == "seal-signature")
        .map(|r| r["details"]["keyid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(token_ids.len(), 3, "{transcript}");
    let md = ws.join("report.md");
    let out = conclave()
        .args(["transcript", "verify"])
        .arg(ws.join("bootstrap-root.transcript.jsonl"))
        .arg("--trusted-root")
        .arg(ws.join("export/1.root.json"))
        .arg("--report")
        .arg(&md)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let markdown = std::fs::read_to_string(&md).unwrap();
    for (what, report) in [("text", text), ("markdown", markdown.as_str())] {
        for id in &token_ids {
            assert!(
                !root_ids.contains(id),
                "the token key id is not the metadata's"
            );
            for (at, _) in report.match_indices(id.as_str()) {
                let before = &report[..at];
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                let line_end = report[at..].find('\n').map_or(report.len(), |i| at + i);
                let line = &report[line_start..line_end];
                // In the text, labelled where it is named; in the report's anchor table, a
                // row of the column "token key id (seal record)" beside the root key id.
                let mapping_row = report.contains("| token key id (seal record) |")
                    && root_ids.iter().any(|r| line.contains(r.as_str()));
                assert!(
                    before.ends_with("token key id in the seal record: ") || mapping_row,
                    "{what}: token key id {id} named without its label:\n{report}"
                );
            }
        }
        let generated: Vec<&str> = report
            .lines()
            .filter(|l| l.contains("generated key"))
            .collect();
        assert_eq!(generated.len(), 3, "{what}:\n{report}");
        for line in generated {
            assert!(
                root_ids.iter().any(|id| line.contains(id.as_str())),
                "{what}: {line}"
            );
        }
    }
}

/// SIGKILL the process group a rehearsal was started in (the rehearsal runs its ceremony in a
/// child process) and wait until every process of it has ended: the workspace lock is free
/// only once the ceremony child is gone, and a killed process can take a moment to end on a
/// loaded machine.
fn kill_group(child: &mut std::process::Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &group])
        .status();
    let _ = child.wait();
    let pgid = child.id().to_string();
    // Live (not zombie) processes of the group.
    let alive = || {
        Command::new("ps")
            .args(["-eo", "pgid=,stat="])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).lines().any(|l| {
                    let mut f = l.split_whitespace();
                    f.next() == Some(pgid.as_str())
                        && f.next().is_some_and(|st| !st.starts_with('Z'))
                })
            })
            .unwrap_or(false)
    };
    let start = Instant::now();
    while alive() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the killed rehearsal's processes did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
        kill_group(&mut child);
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

#[test]
fn later_ceremonies_continue_from_the_export_and_the_chain_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let (code, out, err) = rehearse(&ws);
    assert_eq!(code, 0, "{out}{err}");
    let refresh = |ws: &Path, new: bool| {
        conclave()
            .args([
                "rehearse",
                "--headless",
                "--script",
                "refresh-expiry",
                "--workspace",
            ])
            .arg(ws)
            .args(new.then_some("--new"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    // The first refresh is killed after its export, before the seal: the next run must finish
    // that same ceremony (v2), not start another one.
    let transcript = ws.join("refresh-expiry-v2.transcript.jsonl");
    let mut child = conclave()
        .args([
            "rehearse",
            "--headless",
            "--script",
            "refresh-expiry",
            "--workspace",
        ])
        .arg(&ws)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !std::fs::read_to_string(&transcript).is_ok_and(|t| t.contains("\"exported\""))
        && start.elapsed() < Duration::from_secs(60)
        && child.try_wait().unwrap().is_none()
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    kill_group(&mut child);
    // --new over the unfinished refresh is refused, naming it, and changes nothing (its keys
    // and signatures are never abandoned).
    let before = workspace_files(&ws);
    let out = refresh(&ws, true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&transcript.display().to_string())
            && stderr.contains("is not finished")
            && stderr.contains("continue it: run without --new"),
        "{stderr}"
    );
    assert_eq!(
        workspace_files(&ws),
        before,
        "the refused --new changed the workspace"
    );
    let out = refresh(&ws, false);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let transcripts = || {
        let mut names: Vec<String> = std::fs::read_dir(&ws)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".transcript.jsonl"))
            .collect();
        names.sort();
        names
    };
    // The same command again reports the finished refresh (v2) and verifies it again; it
    // never starts a second one.
    let out = refresh(&ws, false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("already complete and sealed; nothing was changed")
            && stdout.contains(
                "to start another refresh-expiry ceremony in this workspace: the same command with --new"
            )
            && stdout.contains("refresh-expiry-v2.transcript.jsonl")
            && !stdout.contains("FAILED"),
        "{stdout}"
    );
    assert_eq!(
        transcripts(),
        [
            "bootstrap-root.transcript.jsonl",
            "refresh-expiry-v2.transcript.jsonl"
        ]
    );
    // A third refresh only when asked for.
    let out = refresh(&ws, true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = transcripts();
    assert_eq!(
        names,
        [
            "bootstrap-root.transcript.jsonl",
            "refresh-expiry-v2.transcript.jsonl",
            "refresh-expiry-v3.transcript.jsonl"
        ]
    );
    // Every transcript verifies with script conformance; the chain 1 -> 3 verifies in Conclave
    // and in python-tuf (each new root signed by the previous root's threshold and its own).
    for n in &names {
        transcript_named_verifies(&ws, n);
    }
    // The refresh's clock was checked against the time the bootstrap's sealed transcript (in
    // the export) recorded last: the metadata-loaded record carries it.
    let last_time = |name: &str| {
        let text = std::fs::read_to_string(ws.join(name)).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        last["time"].as_str().unwrap().to_string()
    };
    let v2 = std::fs::read_to_string(ws.join("refresh-expiry-v2.transcript.jsonl")).unwrap();
    assert!(
        v2.contains(&format!(
            "\"not_before\":\"{}\"",
            last_time("bootstrap-root.transcript.jsonl")
        )),
        "{v2}"
    );
    let export = ws.join("export");
    let verify = conclave()
        .args(["verify", "--trusted-root"])
        .arg(export.join("1.root.json"))
        .arg("--repo")
        .arg(&export)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{report}");
    assert!(report.contains("root chain to v3"), "{report}");
    let run = common::python_root_chain(&export);
    assert_eq!(run.code(), 0, "python-tuf refused the root chain: {run:?}");
    assert!(run.stdout.contains("\"version\": 3"), "{}", run.stdout);
    python_accepts_targets(&export.join("3.root.json"), &export.join("3.targets.json"));
}

/// Every file under `dir` with its bytes, but the lock (whose text names its last holder).
fn workspace_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.ends_with("conclave.lock") {
            continue;
        } else if p.is_dir() {
            out.extend(workspace_files(&p));
        } else {
            let bytes = std::fs::read(&p).unwrap();
            out.push((p, bytes));
        }
    }
    out.sort();
    out
}

fn python_accepts_targets(root: &Path, targets: &Path) {
    let run = common::run_python(
        "verify_offline.py",
        &[root.to_str().unwrap(), targets.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(
        run.code(),
        0,
        "python-tuf refused the ceremony's output: {run:?}"
    );
}

#[test]
fn a_root_rotation_adds_dave_removes_carol_and_clients_follow_it() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let (code, out, err) = rehearse(&ws);
    assert_eq!(code, 0, "{out}{err}");
    let run = |script: &str| {
        let out = conclave()
            .args(["rehearse", "--headless", "--script", script, "--workspace"])
            .arg(&ws)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{script}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let rotation = run("rotate-root-keys");
    // The review names what changes, with owners.
    assert!(rotation.contains("root v1 -> v2"), "{rotation}");
    let added = rotation
        .lines()
        .find(|l| l.trim_start().starts_with("+ "))
        .unwrap();
    let removed = rotation
        .lines()
        .find(|l| l.trim_start().starts_with("- "))
        .unwrap();
    assert!(added.contains("owner dave"), "{rotation}");
    assert!(removed.contains("owner carol"), "{rotation}");
    // Keys are named by their key id only (no second identifier), and the whole root key set
    // is shown before and after, not only the changes.
    assert!(!rotation.contains("fingerprint"), "{rotation}");
    let root_keys = rotation
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("root: threshold"))
        .take_while(|l| !l.trim_start().starts_with("snapshot: threshold"))
        .collect::<Vec<_>>()
        .join("\n");
    // Each key by its owner and the key id's first 16 hex digits.
    let set = |label: &str| -> Vec<String> {
        let line = root_keys
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} line: {root_keys}"));
        line.split(", ").map(|k| k.trim().to_string()).collect()
    };
    let owners = |keys: &[String]| -> Vec<String> {
        keys.iter()
            .map(|k| {
                let (owner, id) = k.split_once(' ').unwrap_or((k, ""));
                assert!(
                    id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
                    "{k}: owner and short key id"
                );
                owner.to_string()
            })
            .collect()
    };
    assert_eq!(owners(&set("keys now:")), ["alice", "bob", "carol"]);
    assert_eq!(owners(&set("keys after:")), ["alice", "bob", "dave"]);
    // After the rotation, a refresh is signed by the new root keyholders; then the online keys
    // are replaced (new public keys from the input media).
    run("refresh-expiry");
    let online = run("rotate-online-keys");
    assert!(online.contains("root v3 -> v4"), "{online}");
    assert_eq!(
        online
            .lines()
            .filter(|l| l.trim_start().starts_with("+ "))
            .count(),
        2,
        "one new snapshot key and one new timestamp key: {online}"
    );
    // Then new targets keys: each keyholder signs root with their root key and the next targets
    // with their new targets key.
    let targets = run("rotate-targets-keys");
    assert!(
        targets.contains("root v4 -> v5") && targets.contains("targets v2 -> v3"),
        "{targets}"
    );
    // The targets key set now and after differ on screen, though the same people hold them
    // (before: "alice, bob, carol" twice).
    let targets_sets: Vec<&str> = targets
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("targets: threshold"))
        .filter(|l| l.contains("keys now:") || l.contains("keys after:"))
        .take(2)
        .map(|l| l.split_once(':').map_or("", |(_, r)| r.trim()))
        .collect();
    assert_eq!(targets_sets.len(), 2, "{targets}");
    assert_ne!(targets_sets[0], targets_sets[1], "{targets}");
    let export = ws.join("export");
    let root2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("2.root.json")).unwrap()).unwrap();
    let owners: Vec<&str> = root2["signed"]["roles"]["root"]["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            root2["signed"]["keys"][id.as_str().unwrap()]["x-tuf-on-ci-keyowner"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(owners.len(), 3);
    assert!(
        owners.contains(&"dave") && !owners.contains(&"carol"),
        "{owners:?}"
    );
    // python-tuf follows the chain 1 -> 2 -> 3 (each new root signed by the previous root's
    // threshold and its own) and accepts the newest targets.
    let chain = common::python_root_chain(&export);
    assert_eq!(
        chain.code(),
        0,
        "python-tuf refused the rotated chain: {chain:?}"
    );
    assert!(chain.stdout.contains("\"version\": 5"), "{}", chain.stdout);
    python_accepts_targets(&export.join("5.root.json"), &export.join("3.targets.json"));
    // The old targets keys no longer count for targets.
    let run_old = common::run_python(
        "verify_offline.py",
        &[
            export.join("5.root.json").to_str().unwrap(),
            export.join("2.targets.json").to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(
        run_old.code(),
        1,
        "targets v2 (old keys) must not verify under root v5: {run_old:?}"
    );
    let root3: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("3.root.json")).unwrap()).unwrap();
    let root4: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("4.root.json")).unwrap()).unwrap();
    for role in ["snapshot", "timestamp"] {
        assert_ne!(
            root3["signed"]["roles"][role]["keyids"], root4["signed"]["roles"][role]["keyids"],
            "{role} key not replaced"
        );
    }
    for name in [
        "rotate-root-keys-v2.transcript.jsonl",
        "refresh-expiry-v3.transcript.jsonl",
        "rotate-online-keys-v4.transcript.jsonl",
        "rotate-targets-keys-v5.transcript.jsonl",
    ] {
        transcript_named_verifies(&ws, name);
    }
    // The auditor sees the keys before and after: dave's root key added, carol's removed, the
    // others kept; in the text output and in the Markdown report.
    let text = transcript_named_verifies(&ws, "rotate-root-keys-v2.transcript.jsonl");
    let section = text
        .split("Keys before and after the ceremony:")
        .nth(1)
        .expect("a key table");
    let root_part: String = section
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("root: threshold 2 -> 2"))
        .skip(1)
        .take_while(|l| l.trim_start().starts_with(['+', '-', '=']))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(root_part.matches("+ added").count(), 1, "{section}");
    assert!(root_part.contains("owner dave"), "{root_part}");
    assert_eq!(root_part.matches("- removed").count(), 1, "{section}");
    assert!(
        root_part
            .lines()
            .find(|l| l.contains("- removed"))
            .unwrap()
            .contains("owner carol"),
        "{root_part}"
    );
    assert_eq!(root_part.matches("= kept").count(), 2, "{root_part}");
    let report = ws.join("rotation-audit.md");
    let out = conclave()
        .args(["transcript", "verify"])
        .arg(ws.join("rotate-root-keys-v2.transcript.jsonl"))
        .arg("--artifacts")
        .arg(ws.join("export"))
        .arg("--trusted-root")
        .arg(ws.join("export/1.root.json"))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("## Keys before and after"), "{md}");
    assert!(md.contains("| root (threshold 2 → 2) |"), "{md}");
    assert!(md.contains("| dave | — | yes | added |"), "{md}");
    assert!(md.contains("| carol | yes | — | removed |"), "{md}");
    // People and tokens: dave's new token, and who signed what (carol's old key still counted
    // for the current root's threshold).
    assert!(md.contains("## People and tokens"), "{md}");
    let dave = md
        .lines()
        .find(|l| l.starts_with("| dave |"))
        .expect("dave's row");
    assert!(
        dave.contains("keyholder") && dave.contains("root: "),
        "{dave}"
    );
    assert!(
        md.lines()
            .any(|l| l.starts_with("| administrator | administrator |")),
        "{md}"
    );
}

#[test]
fn claimed_projects_are_delegated_and_python_tuf_accepts_the_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let (code, out, err) = rehearse(&ws);
    assert_eq!(code, 0, "{out}{err}");
    let out = conclave()
        .args([
            "rehearse",
            "--headless",
            "--script",
            "delegate-claimed-projects",
            "--workspace",
        ])
        .arg(&ws)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("+ delegation \"example-pkg\""), "{text}");
    // Each project is shown with the request file it came from and that file's SHA-256, and
    // the request set with the digest `sha256sum *.json | sha256sum` gives in the folder.
    let sums = Command::new("sh")
        .args(["-c", "sha256sum *.json | sha256sum"])
        .current_dir(ws.join("input/requests"))
        .output()
        .unwrap();
    let set = String::from_utf8_lossy(&sums.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(
        text.contains("key requests: 2 file(s); SHA-256 of the request set") && text.contains(&set),
        "request set {set}:\n{text}"
    );
    let file_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            std::fs::read(ws.join("input/requests/example-pkg.json")).unwrap(),
        ))
    };
    assert!(
        text.contains("from request file example-pkg.json")
            && text.contains(&format!("sha256 {file_sha}")),
        "{text}"
    );
    let export = ws.join("export");
    python_accepts_targets(&export.join("1.root.json"), &export.join("2.targets.json"));
    let targets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("2.targets.json")).unwrap()).unwrap();
    let roles = targets["signed"]["delegations"]["roles"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = roles.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["example-pkg", "other-pkg"]);
    assert!(roles.iter().all(|r| r["terminating"] == true));
    // The same command reports that ceremony; a new one with the same requests is refused:
    // those projects are delegated already.
    let text = rehearse_script(&ws, "delegate-claimed-projects");
    assert!(
        text.contains("already complete and sealed; nothing was changed"),
        "{text}"
    );
    let again = conclave()
        .args([
            "rehearse",
            "--headless",
            "--new",
            "--script",
            "delegate-claimed-projects",
            "--workspace",
        ])
        .arg(&ws)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("delegated already"));
}

/// The newest transcript of `script` in the workspace, if any.
fn transcript_of(ws: &Path, script: &str) -> Option<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(ws)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&format!("{script}-v")) && n.ends_with(".transcript.jsonl")
            })
        })
        .collect();
    found.sort();
    found.pop()
}

#[test]
fn every_later_script_killed_mid_ceremony_finishes_and_the_chain_verifies() {
    // Two chains of every shipped script after a bootstrap; in each, every ceremony is killed
    // (SIGKILL of the process group) once its transcript has a given share of its records, then
    // the same command finishes it. Chain A kills early, chain B late.
    let scripts = [
        "rotate-root-keys",
        "refresh-expiry",
        "rotate-online-keys",
        "rotate-targets-keys",
        "delegate-claimed-projects",
    ];
    let mut interrupted = 0;
    for (chain, share) in [("a", 0.3f64), ("b", 0.75)] {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join(chain);
        let (code, out, err) = rehearse(&ws);
        assert_eq!(code, 0, "{out}{err}");
        for script in scripts {
            let run = || {
                conclave()
                    .args(["rehearse", "--headless", "--script", script, "--workspace"])
                    .arg(&ws)
                    .output()
                    .unwrap()
            };
            // A whole ceremony of this kind has about 25 records: kill at the share of that.
            let kill_after = (25.0 * share) as usize;
            let mut child = conclave()
                .args(["rehearse", "--headless", "--script", script, "--workspace"])
                .arg(&ws)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap();
            let start = Instant::now();
            while transcript_of(&ws, script).is_none_or(|t| lines(&t) < kill_after)
                && start.elapsed() < Duration::from_secs(60)
                && child.try_wait().unwrap().is_none()
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            kill_group(&mut child);
            let out = run();
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{chain}/{script}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            if text.contains("continued an interrupted run") {
                interrupted += 1;
            }
            let t = transcript_of(&ws, script).unwrap();
            transcript_named_verifies(&ws, t.file_name().unwrap().to_str().unwrap());
        }
        // python-tuf follows the whole root chain and accepts the newest targets.
        let export = ws.join("export");
        let chain_run = common::python_root_chain(&export);
        assert_eq!(chain_run.code(), 0, "{chain}: {chain_run:?}");
        assert!(
            chain_run.stdout.contains("\"version\": 5"),
            "{}",
            chain_run.stdout
        );
        python_accepts_targets(&export.join("5.root.json"), &export.join("4.targets.json"));
    }
    // Most kills landed inside a ceremony (a kill can land after a fast ceremony finished).
    assert!(
        interrupted >= 7,
        "only {interrupted} of 10 ceremonies were interrupted"
    );
}

#[test]
fn an_intoto_layout_is_signed_by_the_targets_keyholders_and_published_as_a_target() {
    use sha2::Digest;
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let (code, out, err) = rehearse(&ws);
    assert_eq!(code, 0, "{out}{err}");
    // A supply chain made by the in-toto reference implementation: a functionary's link for
    // step "build" and the unsigned layout, brought on the input media.
    let chain = tmp.path().join("chain");
    let made = common::run_python(
        "intoto_check.py",
        &["make", chain.to_str().unwrap()],
        Duration::from_secs(120),
    );
    assert_eq!(made.code(), 0, "{made:?}");
    std::fs::copy(chain.join("root.layout"), ws.join("input/root.layout")).unwrap();
    let text = rehearse_script(&ws, "sign-intoto-layout");
    // The review showed the layout's step and what targets gets.
    assert!(
        text.contains("step \"build\"") && text.contains("targets gets in-toto/root.layout"),
        "{text}"
    );
    let export = ws.join("export");
    // python-tuf accepts the new targets under the current root ...
    python_accepts_targets(&export.join("1.root.json"), &export.join("2.targets.json"));
    // ... which lists the signed layout file exactly as exported.
    let layout = std::fs::read(export.join("2.root.layout")).unwrap();
    let targets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("2.targets.json")).unwrap()).unwrap();
    let entry = &targets["signed"]["targets"]["in-toto/root.layout"];
    assert_eq!(entry["length"], layout.len());
    assert_eq!(
        entry["hashes"]["sha256"],
        hex::encode(sha2::Sha256::digest(&layout))
    );
    assert_eq!(entry["custom"]["in-toto"], "layout");
    // in-toto verifies the supply chain against the layout the targets keyholders signed.
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("1.root.json")).unwrap()).unwrap();
    let keyids: Vec<String> = root["signed"]["roles"]["targets"]["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let layout_path = export.join("2.root.layout");
    let mut args = vec![
        "verify",
        chain.to_str().unwrap(),
        layout_path.to_str().unwrap(),
    ];
    let root_path = export.join("1.root.json");
    args.push(root_path.to_str().unwrap());
    args.extend(keyids.iter().map(String::as_str));
    let verified = common::run_python("intoto_check.py", &args, Duration::from_secs(120));
    assert_eq!(verified.code(), 0, "{verified:?}");
    assert!(verified.stdout.contains("VERIFIED"), "{verified:?}");
    // A layout changed after signing is refused by in-toto.
    let changed = tmp.path().join("changed.layout");
    let text = String::from_utf8(layout.clone())
        .unwrap()
        .replacen("\"build\"", "\"build2\"", 1);
    std::fs::write(&changed, text).unwrap();
    args[2] = changed.to_str().unwrap();
    let refused = common::run_python("intoto_check.py", &args, Duration::from_secs(120));
    assert_eq!(refused.code(), 1, "{refused:?}");
    let t = transcript_of(&ws, "sign-intoto-layout").unwrap();
    transcript_named_verifies(&ws, t.file_name().unwrap().to_str().unwrap());
    // A later ceremony publishes the same layout as a DSSE envelope: targets v3 lists it (the
    // earlier file stays as it was), in-toto verifies the chain against it.
    std::fs::remove_file(ws.join("input/root.layout")).unwrap();
    std::fs::copy(chain.join("root.dsse.layout"), ws.join("input/root.layout")).unwrap();
    let text = rehearse_script_with(&ws, "sign-intoto-layout", &["--new"]);
    assert!(text.contains("in-toto layout (DSSE envelope)"), "{text}");
    assert_eq!(std::fs::read(export.join("2.root.layout")).unwrap(), layout);
    python_accepts_targets(&export.join("1.root.json"), &export.join("3.targets.json"));
    let dsse = export.join("3.root.layout");
    args[2] = dsse.to_str().unwrap();
    let verified = common::run_python("intoto_check.py", &args, Duration::from_secs(120));
    assert_eq!(verified.code(), 0, "{verified:?}");
}

/// Keep only the first signature line of a log's checkpoint (as a run cut short after the
/// first keyholder's checkpoint signature leaves it: below the threshold of 2).
fn keep_one_checkpoint_signature(log: &Path) {
    let path = log.join("checkpoint");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut seen = 0;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            if l.starts_with('\u{2014}') {
                seen += 1;
                seen == 1
            } else {
                true
            }
        })
        .collect();
    std::fs::write(&path, format!("{}\n", lines.join("\n"))).unwrap();
    assert_eq!(checkpoint_signatures(log), 1);
}

fn checkpoint_signatures(log: &Path) -> usize {
    std::fs::read_to_string(log.join("checkpoint"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('\u{2014}'))
        .count()
}

#[test]
fn a_rerun_finishes_an_interrupted_key_event_log_and_a_finished_ceremony_is_verified_again() {
    // Before, a rerun after an interruption between the checkpoint signatures said "already
    // complete", exited 0 and skipped the log check, leaving the log short of signatures; a
    // rotation's rerun started a second rotation.
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    rehearse_script(&ws, "bootstrap-root");
    let log = ws.join("export/log-001");
    let signed = checkpoint_signatures(&log);
    assert!(signed >= 2, "{signed}");
    keep_one_checkpoint_signature(&log);
    let out = rehearse_script(&ws, "bootstrap-root");
    assert!(!out.contains("already complete"), "{out}");
    assert!(
        out.contains("conclave log verify --log")
            && out.contains(": VALID (checkpoint signed here by"),
        "{out}"
    );
    assert_eq!(
        checkpoint_signatures(&log),
        signed,
        "the log step was finished"
    );
    // Run again: finished; it says so and verifies everything again, the log included.
    let out = rehearse_script(&ws, "bootstrap-root");
    assert!(out.contains("already complete"), "{out}");
    assert!(
        out.contains("conclave log verify --log")
            && out.contains(": VALID (checkpoint signed in an earlier run)"),
        "{out}"
    );

    // A rotation cut short the same way is finished by its rerun; no second rotation starts.
    rehearse_script(&ws, "rotate-root-keys");
    let log = ws.join("export/log-002");
    let signed = checkpoint_signatures(&log);
    keep_one_checkpoint_signature(&log);
    let out = rehearse_script(&ws, "rotate-root-keys");
    assert!(
        out.contains("rotate-root-keys-v2.transcript.jsonl"),
        "{out}"
    );
    assert_eq!(
        checkpoint_signatures(&log),
        signed,
        "the log step was finished"
    );
    assert!(
        !ws.join("rotate-root-keys-v3.transcript.jsonl").exists(),
        "no second rotation"
    );
    assert!(!ws.join("export/log-003").exists());
    // Run once more: the practice rotation is finished; it is reported and verified again, and
    // no second rotation starts (it could only fail: dave is a keyholder already).
    let out = rehearse_script(&ws, "rotate-root-keys");
    assert!(out.contains("already complete"), "{out}");
    assert!(
        out.contains("rotate-root-keys-v2.transcript.jsonl") && out.contains(": VALID"),
        "{out}"
    );
    assert!(
        out.contains("the practice rotate-root-keys adds dave and removes carol")
            && out.contains("use a new workspace"),
        "{out}"
    );
    // A second practice rotation is refused even when asked for: it could only fail.
    let again = conclave()
        .args([
            "rehearse",
            "--headless",
            "--new",
            "--script",
            "rotate-root-keys",
            "--workspace",
        ])
        .arg(&ws)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{err}");
    assert!(
        err.contains("rotate-root-keys-v2.transcript.jsonl") && err.contains("use a new workspace"),
        "{err}"
    );
    assert!(!ws.join("rotate-root-keys-v3.transcript.jsonl").exists());
    assert!(!ws.join("export/3.root.json").exists());
}

/// `pkcs11-tool` on a practice token of the workspace (its SoftHSM2 configuration), logged in
/// with the keyholder's practice PIN; what it printed.
fn practice_pkcs11_tool(ws: &Path, keyholder: &str, args: &[&str]) -> String {
    let pins: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.join("practice-tokens.json")).unwrap()).unwrap();
    let pin = pins[keyholder].as_str().unwrap();
    let out = Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", ws.join("softhsm2.conf"))
        .args([
            "--module",
            "/usr/lib/softhsm/libsofthsm2.so",
            "--token-label",
        ])
        .arg(keyholder)
        .args(["--login", "--pin", pin])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pkcs11-tool {args:?}: {text}");
    text
}

#[test]
fn half_made_keys_of_the_ceremony_are_removed_on_resume_and_recorded_never_another_key() {
    use sha2::Digest;
    // Kill the bootstrap once its transcript is begun (the practice tokens exist, no key yet).
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
    while lines(&transcript) < 1 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    kill_group(&mut child);
    let text = std::fs::read(&transcript).unwrap();
    assert!(
        !String::from_utf8_lossy(&text).contains("key-generated"),
        "the kill landed after a key was recorded"
    );
    // What a power cut inside a key generation of this ceremony leaves (its CKA_ID under the
    // ceremony's prefix: SHA-256 of "conclave key id " and the begin record): on alice's token
    // a public key without its private half, on bob's a whole pair never recorded. Carol's
    // token holds someone else's key under the ceremony's label.
    let first = text.split(|b| *b == b'\n').next().unwrap();
    let digest = sha2::Sha256::digest([b"conclave key id ".as_slice(), first].concat());
    let prefix = hex::encode(&digest[..8]);
    let half = format!("{prefix}00000000000000a1");
    let pair = format!("{prefix}00000000000000b2");
    let make_pair = |who: &str, id: &str| {
        practice_pkcs11_tool(
            &ws,
            who,
            &[
                "--keypairgen",
                "--key-type",
                "EC:prime256v1",
                "--label",
                "conclave-bootstrap-root",
                "--id",
                id,
            ],
        )
    };
    make_pair("alice", &half);
    practice_pkcs11_tool(
        &ws,
        "alice",
        &["--delete-object", "--type", "privkey", "--id", &half],
    );
    make_pair("bob", &pair);
    make_pair("carol", "0123456789abcdef");

    let (code, out, err) = rehearse(&ws);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("continued an interrupted run"), "{out}");
    assert!(
        out.contains("cleaned after an interruption") && out.contains(&half) && out.contains(&pair),
        "{out}"
    );
    let recorded = std::fs::read_to_string(&transcript).unwrap();
    assert!(
        recorded.contains("\"exception\"") && recorded.contains(&half) && recorded.contains(&pair),
        "the removal is not in the transcript"
    );
    for (who, id) in [("alice", &half), ("bob", &pair)] {
        let objects = practice_pkcs11_tool(&ws, who, &["--list-objects"]);
        assert!(!objects.contains(id.as_str()), "{who}: {objects}");
    }
    let objects = practice_pkcs11_tool(&ws, "carol", &["--list-objects"]);
    assert!(
        objects.contains("0123456789abcdef"),
        "carol's other key: {objects}"
    );
    python_accepts(&ws.join("export"));
    transcript_verifies(&ws);
}

#[test]
fn a_transcript_cut_while_it_began_is_started_again_and_that_is_recorded() {
    // A power cut right after the transcript was created: empty, or a torn first line.
    for left in [&b""[..], &b"{\"seq\":0,\"prev\":\"00"[..]] {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        let transcript = ws.join("bootstrap-root.transcript.jsonl");
        std::fs::write(&transcript, left).unwrap();
        let (code, out, err) = rehearse(&ws);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("cleaned after an interruption")
                && out.contains(&format!("({} bytes", left.len()))
                && out.contains("started again"),
            "{out}"
        );
        assert!(!format!("{out}{err}").contains("move the file aside"));
        let recorded = std::fs::read_to_string(&transcript).unwrap();
        assert!(recorded.contains("started again"), "not in the transcript");
        python_accepts(&ws.join("export"));
        transcript_verifies(&ws);
    }
}

/// Start a bootstrap rehearsal in `ws` and kill it once its transcript holds a record (the
/// practice tokens and their saved copy exist, no key yet).
fn kill_after_begin(ws: &Path) {
    let transcript = ws.join("bootstrap-root.transcript.jsonl");
    let mut child = conclave()
        .args(["rehearse", "--headless", "--workspace"])
        .arg(ws)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while lines(&transcript) < 1 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    kill_group(&mut child);
}

#[test]
fn practice_token_leftovers_are_cleaned_on_resume_and_recorded() {
    // A saved PIN whose token was never made (cut between the two).
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("practice-tokens.json"), "{\"alice\": \"314159\"}").unwrap();
    let (code, out, err) = rehearse(&ws);
    assert_eq!(code, 0, "a saved PIN without its token: {out}{err}");
    transcript_verifies(&ws);

    // A token made before its PIN was saved (what an earlier version left), and a temporary
    // file of the saved token copy.
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    kill_after_begin(&ws);
    let pins = ws.join("practice-tokens.json");
    let mut saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&pins).unwrap()).unwrap();
    saved.as_object_mut().unwrap().remove("bob");
    std::fs::write(&pins, saved.to_string()).unwrap();
    // Alice's saved copy (SoftHSM2 keeps the label in token.object, padded to 32 bytes).
    let alice = format!("{:<32}", "alice");
    let saved_dir = std::fs::read_dir(ws.join("tokens.saved"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|d| {
            std::fs::read(d.join("token.object"))
                .is_ok_and(|b| b.windows(32).any(|w| w == alice.as_bytes()))
        })
        .unwrap();
    let torn = saved_dir.join("token.tmp");
    std::fs::write(&torn, b"half").unwrap();
    let (code, out, err) = rehearse(&ws);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("the practice token of bob") && out.contains("made again"),
        "{out}"
    );
    assert!(
        out.contains("a temporary file of the saved token copy"),
        "{out}"
    );
    assert!(!torn.exists());
    let live = ws
        .join("tokens")
        .join(saved_dir.file_name().unwrap())
        .join("token.tmp");
    assert!(
        !live.exists(),
        "the repair put its temporary file into the token store"
    );
    let recorded = std::fs::read_to_string(ws.join("bootstrap-root.transcript.jsonl")).unwrap();
    assert!(
        recorded.contains("made before its PIN was saved"),
        "not in the transcript"
    );
    python_accepts(&ws.join("export"));
    transcript_verifies(&ws);
}

#[test]
fn a_copied_workspace_uses_its_own_tokens_once_the_original_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let original = tmp.path().join("ws");
    let (code, out, err) = rehearse(&original);
    assert_eq!(code, 0, "{out}{err}");
    let copy = tmp.path().join("copy");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&original)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(cp.success());
    std::fs::remove_dir_all(&original).unwrap();
    let out = rehearse_script(&copy, "refresh-expiry");
    assert!(out.contains("VALID"), "{out}");
    let conf = std::fs::read_to_string(copy.join("softhsm2.conf")).unwrap();
    assert!(
        conf.contains(
            &copy
                .canonicalize()
                .unwrap()
                .join("tokens")
                .display()
                .to_string()
        ),
        "{conf}"
    );
}

/// `conclave rehearse` without `--workspace` (what `make demo` runs) continues the newest
/// unfinished rehearsal folder in the current folder and says so; once it is finished, the next
/// run starts a new folder, and `--new` starts one even beside an unfinished rehearsal.
#[test]
fn rehearse_without_a_workspace_continues_the_newest_unfinished_rehearsal() {
    let tmp = tempfile::tempdir().unwrap();
    let older = tmp.path().join("rehearsal-20260101-000000");
    let newer = tmp.path().join("rehearsal-20260102-000000");
    // The older one is interrupted right after its transcript began; the newer one is a
    // finished ceremony; a folder of another name is never a candidate.
    kill_after_begin(&older);
    assert!(lines(&older.join("bootstrap-root.transcript.jsonl")) >= 1);
    let (code, out, err) = rehearse(&newer);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::create_dir(tmp.path().join("rehearsal-notes")).unwrap();
    let rehearsals = || {
        let mut n: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("rehearsal-2"))
            .collect();
        n.sort();
        n
    };
    let here = |args: &[&str]| {
        let out = conclave()
            .args(["rehearse", "--headless"])
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, out, err) = here(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("continuing the unfinished practice ceremony \"bootstrap-root\" in rehearsal-20260101-000000")
            && err.contains("conclave rehearse --new"),
        "{err}"
    );
    assert!(out.contains("continued an interrupted run"), "{out}");
    assert_eq!(rehearsals().len(), 2, "no new folder: {:?}", rehearsals());
    transcript_verifies(&older);

    // Nothing unfinished now: a new folder.
    let (code, out, err) = here(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("continuing"), "{err}");
    assert_eq!(rehearsals().len(), 3, "{:?}", rehearsals());

    // --new beside an unfinished rehearsal.
    let cut = tmp.path().join("rehearsal-20260103-000000");
    kill_after_begin(&cut);
    std::thread::sleep(Duration::from_millis(1100));
    let (code, out, err) = here(&["--new"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("continuing"), "{err}");
    assert_eq!(rehearsals().len(), 5, "{:?}", rehearsals());
    assert!(rehearsal_is_unfinished(&cut));
}

/// The transcript of the folder's bootstrap-root ends before the seal.
fn rehearsal_is_unfinished(ws: &Path) -> bool {
    let t = std::fs::read_to_string(ws.join("bootstrap-root.transcript.jsonl")).unwrap_or_default();
    !t.contains("\"sealed\"")
}
