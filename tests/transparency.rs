//! The key-event log against real parts: practice ceremonies on SoftHSM2 tokens (bootstrap ->
//! rotate-root-keys -> refresh-expiry) each extend the log of the previous one, the keyholders'
//! tokens sign the checkpoints, `conclave log verify` accepts the chain and refuses a rewritten,
//! forked or truncated history and a checkpoint signed below threshold, each with its cause; an
//! independent Python implementation (tests/python/transparency_check.py: RFC 9162 proofs,
//! securesystemslib canonical JSON, `cryptography` note signatures) agrees.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::builders::{self, TestKey};
use conclave::transparency::event::{CeremonyRef, Export, KeyState, Published};
use conclave::transparency::{Log, SignedCheckpoint, ceremony_events};
use conclave::tuf::metadata::{Root, Targets};

fn conclave() -> Command {
    Command::new(env!("CARGO_BIN_EXE_conclave"))
}

/// Run conclave with `SOFTHSM2_CONF` of the workspace and `stdin`; (code, stdout, stderr).
fn run(ws: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = conclave()
        .args(args)
        .env("SOFTHSM2_CONF", ws.join("softhsm2.conf"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn rehearse(ws: &Path, script: &str) {
    let (code, out, err) = run(
        ws,
        &[
            "rehearse",
            "--headless",
            "--script",
            script,
            "--workspace",
            s(ws),
        ],
        "",
    );
    assert_eq!(code, 0, "{script}: {out}{err}");
}

/// The highest-numbered `N.ROLE.json` in the export.
fn latest(export: &Path, role: &str) -> PathBuf {
    let mut best = (0u64, PathBuf::new());
    for e in std::fs::read_dir(export).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_suffix(&format!(".{role}.json"))
            .and_then(|n| n.parse::<u64>().ok())
            && n > best.0
        {
            best = (n, export.join(&name));
        }
    }
    best.1
}

fn pin(ws: &Path, who: &str) -> String {
    let pins: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.join("practice-tokens.json")).unwrap()).unwrap();
    format!("{}\n", pins[who].as_str().unwrap())
}

/// `conclave log sign` with keyholder `who`'s token.
fn sign(ws: &Path, log: &Path, who: &str, label: &str) -> (i32, String, String) {
    run(
        ws,
        &[
            "log",
            "sign",
            "--log",
            s(log),
            "--token",
            who,
            "--key",
            label,
            "--keyholder",
            who,
            "--pin-stdin",
        ],
        &pin(ws, who),
    )
}

fn verify(ws: &Path, args: &[&str]) -> (i32, String) {
    let mut all = vec!["log", "verify"];
    all.extend_from_slice(args);
    let (code, out, err) = run(ws, &all, "");
    (code, format!("{out}{err}"))
}

/// The Python check of `log` (proofs from `conclave log proof`): (exit code, its JSON).
fn python_check(ws: &Path, log: &Path, trusted_root: Option<&Path>) -> (i32, serde_json::Value) {
    let (code, proofs, err) = run(ws, &["log", "proof", "--log", s(log)], "");
    assert_eq!(code, 0, "{err}");
    let pfile = log.with_extension("proofs.json");
    std::fs::write(&pfile, proofs).unwrap();
    let mut args = vec![s(log), s(&pfile)];
    if let Some(t) = trusted_root {
        args.push(s(t));
    }
    let r = common::run_python("transparency_check.py", &args, Duration::from_secs(60));
    let v: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("transparency_check.py: {e}: {r:?}"));
    (r.code(), v)
}

/// sigstore-python's Rekor code on `log` (tests/python/transparency_sigstore.py): its checkpoint
/// parser and ECDSA P-256 note verification, its RFC 6962 inclusion proof check.
fn sigstore_check(ws: &Path, log: &Path, root: &Path) -> (i32, serde_json::Value) {
    let (code, proofs, err) = run(ws, &["log", "proof", "--log", s(log)], "");
    assert_eq!(code, 0, "{err}");
    let pfile = log.with_extension("sigstore-proofs.json");
    std::fs::write(&pfile, proofs).unwrap();
    let r = common::run_python(
        "transparency_sigstore.py",
        &[s(log), s(&pfile), s(root)],
        Duration::from_secs(60),
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| {
        panic!(
            "transparency_sigstore.py (sigstore-python in the venv: run `make venv`): {e}: {r:?}"
        )
    });
    (r.code(), v)
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Rewrite a log directory's entries with `edit` and write its new (unsigned) checkpoint, as
/// someone holding the keys would before re-signing.
fn rewrite(dir: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let text = std::fs::read_to_string(dir.join("entries.jsonl")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    edit(&mut lines);
    let text = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    std::fs::write(dir.join("entries.jsonl"), &text).unwrap();
    let log = Log::parse_jsonl(text.as_bytes()).unwrap();
    let old =
        SignedCheckpoint::parse(&std::fs::read_to_string(dir.join("checkpoint")).unwrap()).unwrap();
    let cp = SignedCheckpoint::new(log.checkpoint(&old.checkpoint.origin));
    std::fs::write(dir.join("checkpoint"), cp.to_text()).unwrap();
}

#[test]
fn three_ceremonies_extend_one_log_signed_on_tokens_and_every_rewrite_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ws = t.join("ws");
    let export = ws.join("export");
    let origin = "registry.example/conclave-key-events";
    // Root keyholders signing each ceremony's checkpoint (threshold 2): carol is rotated out
    // and dave in by the second ceremony.
    let signers: [&[(&str, &str)]; 3] = [
        &[
            ("alice", "conclave-bootstrap-root"),
            ("carol", "conclave-bootstrap-root"),
        ],
        &[
            ("bob", "conclave-bootstrap-root"),
            ("dave", "conclave-rotate-root-keys"),
        ],
        &[
            ("dave", "conclave-rotate-root-keys"),
            ("alice", "conclave-bootstrap-root"),
        ],
    ];
    let scripts = [
        ("bootstrap-root", "bootstrap-root.transcript.jsonl"),
        ("rotate-root-keys", "rotate-root-keys-v2.transcript.jsonl"),
        ("refresh-expiry", "refresh-expiry-v3.transcript.jsonl"),
    ];
    let mut logs: Vec<PathBuf> = Vec::new();
    for (k, (script, transcript)) in scripts.iter().enumerate() {
        rehearse(&ws, script);
        let log = t.join(format!("log{}", k + 1));
        let root = latest(&export, "root");
        let targets = latest(&export, "targets");
        let tpath = ws.join(transcript);
        let mut args = vec![
            "log",
            "append",
            "--log",
            s(&log),
            "--transcript",
            s(&tpath),
            "--root",
            s(&root),
            "--targets",
            s(&targets),
        ];
        match logs.last() {
            Some(prev) => args.extend(["--previous-log", s(prev)]),
            None => args.extend(["--origin", origin]),
        }
        let (code, out, err) = run(&ws, &args, "");
        assert_eq!(code, 0, "append {script}: {out}{err}");
        assert!(out.contains(&format!("ceremony \"{script}\"")), "{out}");
        let trusted = ["--log", s(&log), "--trusted-root", s(&root)];
        // Unsigned, then one signature: below threshold (exit 1, the cause named).
        let (code, report) = verify(&ws, &trusted);
        assert_eq!(code, 1, "{report}");
        assert!(
            report.contains("below threshold: 0 of 3 root keys signed, threshold 2"),
            "{report}"
        );
        let (who, label) = signers[k][0];
        let (code, out, err) = sign(&ws, &log, who, label);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("not enough signatures yet"), "{out}");
        let (code, report) = verify(&ws, &trusted);
        assert_eq!(code, 1, "{report}");
        assert!(report.contains("below threshold: 1 of 3"), "{report}");
        let (py, j) = python_check(&ws, &log, Some(&root));
        assert_eq!(py, 1, "python must refuse one signature of two: {j}");
        let (py, j) = sigstore_check(&ws, &log, &root);
        assert_eq!(py, 1, "sigstore must refuse one signature of two: {j}");
        let (who, label) = signers[k][1];
        let (code, out, err) = sign(&ws, &log, who, label);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("(threshold met)"), "{out}");
        // Signed: VALID with the trusted root and the previous log; Python agrees.
        let mut full = trusted.to_vec();
        if let Some(prev) = logs.last() {
            full.extend(["--previous", s(prev)]);
        }
        let (code, report) = verify(&ws, &full);
        assert_eq!(code, 0, "{report}");
        assert!(report.contains(": VALID"), "{report}");
        let (py, j) = python_check(&ws, &log, Some(&root));
        assert_eq!(py, 0, "{j}");
        assert_eq!(j["size"], j["inclusion_verified"]);
        assert_eq!(
            j["consistency_verified_from"].as_array().unwrap().len(),
            k,
            "{j}"
        );
        let (py, j) = sigstore_check(&ws, &log, &root);
        assert_eq!(py, 0, "{j}");
        assert_eq!(j["signed_by"].as_array().unwrap().len(), 2, "{j}");
        assert_eq!(j["size"], j["inclusion_verified"], "{j}");
        logs.push(log);
    }
    let [log1, log2, log3] = [&logs[0], &logs[1], &logs[2]];
    // What the log says: carol's root key removed and dave's added by root v2, with keyholders.
    let entries = std::fs::read_to_string(log3.join("entries.jsonl")).unwrap();
    let rotation: Vec<&str> = entries
        .lines()
        .filter(|l| l.contains("\"ceremony\":\"rotate-root-keys\""))
        .collect();
    assert!(
        rotation
            .iter()
            .any(|l| l.contains("\"event\":\"key-removed\"")
                && l.contains("\"keyholder\":\"carol\"")),
        "{rotation:#?}"
    );
    assert!(
        rotation
            .iter()
            .any(|l| l.contains("\"event\":\"key-added\"") && l.contains("\"keyholder\":\"dave\"")),
        "{rotation:#?}"
    );
    let (code, report) = verify(
        &ws,
        &["--log", s(log3), "--previous", s(&log1.join("checkpoint"))],
    );
    assert_eq!(code, 0, "{report}");
    // Carol's key is no root key any more: she cannot sign the log of ceremony 2.
    let (code, _, err) = sign(&ws, log2, "carol", "conclave-bootstrap-root");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is not a root key of the log's latest root"),
        "{err}"
    );

    // Rewritten: an entry changed after signing. Carol's key renamed where it was added: the
    // replay names the entry whose removal no longer fits.
    let rewritten = t.join("rewritten");
    copy_dir(log3, &rewritten);
    let entries_path = rewritten.join("entries.jsonl");
    let text = std::fs::read_to_string(&entries_path).unwrap();
    std::fs::write(
        &entries_path,
        text.replacen("\"keyholder\":\"carol\"", "\"keyholder\":\"carol2\"", 1)
            .replacen(
                "\"x-tuf-on-ci-keyowner\":\"carol\"",
                "\"x-tuf-on-ci-keyowner\":\"carol2\"",
                1,
            ),
    )
    .unwrap();
    let (code, report) = verify(&ws, &["--log", s(&rewritten)]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("entry 15 (key-removed root")
            && report.contains("with a key object different from the one added"),
        "{report}"
    );
    let (py, j) = python_check(&ws, &rewritten, None);
    assert_eq!(py, 1, "{j}");
    // Another ceremony name in the first entry: the tree no longer hashes to the checkpoint.
    std::fs::write(
        &entries_path,
        text.replacen(
            "\"ceremony\":\"bootstrap-root\"",
            "\"ceremony\":\"bootstrap-r00t\"",
            1,
        ),
    )
    .unwrap();
    let (code, report) = verify(&ws, &["--log", s(&rewritten)]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("an entry was changed after signing"),
        "{report}"
    );
    let (py, j) = python_check(&ws, &rewritten, None);
    assert_eq!(py, 1, "{j}");
    let (py, j) = sigstore_check(&ws, &rewritten, &latest(&export, "root"));
    assert_eq!(
        py, 1,
        "sigstore must refuse the changed entry's inclusion proof: {j}"
    );

    // Forked: history rewritten and re-signed by a threshold of root keys. `log sign` refuses
    // while the earlier checkpoints are in the log; without them it signs, and the previous
    // log names the first differing entry, the previous checkpoint the rewrite.
    let forked = t.join("forked");
    copy_dir(log3, &forked);
    rewrite(&forked, |lines| {
        lines[1] = lines[1].replacen(
            "\"ceremony\":\"bootstrap-root\"",
            "\"ceremony\":\"bootstrap-r00t\"",
            1,
        );
    });
    let (code, _, err) = sign(&ws, &forked, signers[2][0].0, signers[2][0].1);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("checkpoints/15: REWRITTEN HISTORY"), "{err}");
    std::fs::remove_dir_all(forked.join("checkpoints")).unwrap();
    for (who, label) in signers[2] {
        let (code, out, err) = sign(&ws, &forked, who, label);
        assert_eq!(code, 0, "{out}{err}");
    }
    let (code, report) = verify(&ws, &["--log", s(&forked)]);
    assert_eq!(code, 0, "alone, a re-signed fork is a valid log: {report}");
    let (code, report) = verify(&ws, &["--log", s(&forked), "--previous", s(log2)]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("FORKED / REWRITTEN HISTORY: entry 1 (line 2 of entries.jsonl) differs"),
        "{report}"
    );
    assert!(report.contains("bootstrap-r00t"), "{report}");
    let (code, report) = verify(
        &ws,
        &[
            "--log",
            s(&forked),
            "--previous",
            s(&log2.join("checkpoint")),
        ],
    );
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("REWRITTEN HISTORY: the first 19 entries"),
        "{report}"
    );

    // Truncated inside a ceremony: refused by the log alone.
    let truncated = t.join("truncated");
    copy_dir(log3, &truncated);
    rewrite(&truncated, |lines| lines.truncate(17));
    let (code, report) = verify(&ws, &["--log", s(&truncated)]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("TRUNCATED: the log ends inside ceremony \"rotate-root-keys\" (entry 16"),
        "{report}"
    );
    // Truncated to the end of an earlier ceremony and re-signed: the earlier checkpoints still
    // fit, but the previous log and its checkpoint show what is missing.
    std::fs::remove_dir_all(&truncated).unwrap();
    copy_dir(log3, &truncated);
    rewrite(&truncated, |lines| lines.truncate(19));
    for (who, label) in signers[1] {
        let (code, out, err) = sign(&ws, &truncated, who, label);
        assert_eq!(code, 0, "{out}{err}");
    }
    let (code, report) = verify(&ws, &["--log", s(&truncated), "--previous", s(log3)]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("TRUNCATED: entry 19 (line 20 of entries.jsonl) is missing"),
        "{report}"
    );
    let (code, report) = verify(
        &ws,
        &[
            "--log",
            s(&truncated),
            "--previous",
            s(&log3.join("checkpoint")),
        ],
    );
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("TRUNCATED: it covers 22 entries, this log has only 19"),
        "{report}"
    );

    // Appending the same ceremony twice is refused, and the output directory must be new.
    let (code, _, err) = run(
        &ws,
        &[
            "log",
            "append",
            "--log",
            s(&t.join("again")),
            "--previous-log",
            s(log3),
            "--transcript",
            s(&ws.join(scripts[2].1)),
            "--root",
            s(&latest(&export, "root")),
        ],
        "",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is already in the previous log"), "{err}");
}

/// Keys of three types and delegated projects, through the library API the ceremony runner uses
/// (`ceremony_events`, `Log::append`, `SignedCheckpoint::add_signature`): `conclave log verify`
/// and the Python check accept it, and both refuse it once an entry changes.
#[test]
fn library_api_with_ed25519_p256_p384_keys_and_delegations_python_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (ed, p256, p384, ed2) = (
        TestKey::ed25519(1),
        TestKey::p256(2),
        TestKey::p384(3),
        TestKey::ed25519(4),
    );
    let online = TestKey::ed25519(9);
    let (dev_a, dev_b) = (TestKey::p256(20), TestKey::ed25519(21));
    let root1 = builders::root(
        1,
        &[
            ("root", &[&ed, &p256, &p384], 2),
            ("targets", &[&ed, &p256], 1),
            ("snapshot", &[&online], 1),
            ("timestamp", &[&online], 1),
        ],
    );
    let root2 = builders::root(
        2,
        &[
            ("root", &[&ed, &p256, &p384, &ed2], 3),
            ("targets", &[&ed, &p256], 1),
            ("snapshot", &[&online], 1),
            ("timestamp", &[&online], 1),
        ],
    );
    let t1 = builders::targets(
        1,
        &[],
        Some(builders::delegations(
            &[&dev_a],
            vec![builders::drole(
                "project-a",
                &[&dev_a],
                1,
                true,
                &["project-a/*"],
            )],
        )),
    );
    let t2 = builders::targets(
        2,
        &[],
        Some(builders::delegations(
            &[&dev_a, &dev_b],
            vec![
                builders::drole("project-a", &[&dev_b], 1, true, &["project-a/*"]),
                builders::drole("project-b", &[&dev_a, &dev_b], 2, true, &["project-b/*"]),
            ],
        )),
    );
    let r1 = Published::<Root>::from_bytes(&builders::sign(&root1, &[&ed, &p256])).unwrap();
    let r2 = Published::<Root>::from_bytes(&builders::sign(&root2, &[&ed, &p256, &ed2])).unwrap();
    let tg1 = Published::<Targets>::from_bytes(&builders::sign(&t1, &[&ed])).unwrap();
    let tg2 = Published::<Targets>::from_bytes(&builders::sign(&t2, &[&ed])).unwrap();
    let mut log = Log::new();
    let mut state = KeyState::default();
    let mut cps = Vec::new();
    for (i, (r, tg)) in [(&r1, &tg1), (&r2, &tg2)].into_iter().enumerate() {
        let ceremony = CeremonyRef {
            name: format!("ceremony-{i}"),
            seal: [i as u8 + 1; 32],
        };
        let export = Export {
            root: Some(r.clone()),
            targets: Some(tg.clone()),
        };
        log.append(ceremony_events(&ceremony, &state, &export));
        state = log.replay(log.len()).unwrap();
        let mut cp = SignedCheckpoint::new(log.checkpoint("registry.example/mixed"));
        let keys: &[&TestKey] = if i == 0 {
            &[&ed, &p384]
        } else {
            &[&ed, &p256, &p384]
        };
        for k in keys {
            conclave::driver::log_dir::sign_note(&mut cp, &mut k.signer()).unwrap();
        }
        cps.push(cp);
    }
    let summaries: Vec<String> = log.entries().iter().map(|e| e.summary()).collect();
    assert!(
        summaries
            .iter()
            .any(|s| s.starts_with("role-added project-b (delegated by targets), threshold 2")),
        "{summaries:#?}"
    );
    assert!(
        summaries
            .iter()
            .any(|s| s.starts_with("key-removed project-a (delegated by targets)")),
        "{summaries:#?}"
    );
    assert!(
        summaries
            .iter()
            .any(|s| s == "threshold-changed root 2 -> 3 (v2)"),
        "{summaries:#?}"
    );
    std::fs::create_dir(&dir).unwrap();
    std::fs::create_dir(dir.join("checkpoints")).unwrap();
    std::fs::write(dir.join("entries.jsonl"), log.to_jsonl()).unwrap();
    std::fs::write(dir.join("checkpoint"), cps[1].to_text()).unwrap();
    std::fs::write(
        dir.join("checkpoints")
            .join(cps[0].checkpoint.size.to_string()),
        cps[0].to_text(),
    )
    .unwrap();
    let rootfile = tmp.path().join("2.root.json");
    std::fs::write(&rootfile, builders::sign(&root2, &[&ed, &p256, &ed2])).unwrap();
    let (code, report) = verify(
        tmp.path(),
        &["--log", s(&dir), "--trusted-root", s(&rootfile)],
    );
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("3 of 4 root keys signed, threshold 3"),
        "{report}"
    );
    let (py, j) = python_check(tmp.path(), &dir, Some(&rootfile));
    assert_eq!(py, 0, "{j}");
    assert_eq!(j["signed_by"].as_array().unwrap().len(), 3, "{j}");
    // Python replays the root keys from the log itself too.
    let (py, j) = python_check(tmp.path(), &dir, None);
    assert_eq!(py, 0, "{j}");
    // One entry changed: both refuse.
    let text = std::fs::read_to_string(dir.join("entries.jsonl")).unwrap();
    std::fs::write(
        dir.join("entries.jsonl"),
        text.replacen("project-b", "project-c", 1),
    )
    .unwrap();
    let (code, report) = verify(tmp.path(), &["--log", s(&dir)]);
    assert_eq!(code, 1, "{report}");
    let (py, _) = python_check(tmp.path(), &dir, None);
    assert_eq!(py, 1);
}
