//! Fault injection (issue 19): a practice `bootstrap-root`, a practice `rotate-root-keys` and a
//! practice `sign-rstuf-pending-root` are killed at every durable boundary they cross (each file
//! write, fsync, rename, folder made or removed, transcript append, export file, key-event log
//! file, copy of the practice token store, and each token object operation), then the same command is run again without faults, and the
//! result must be a verified ceremony with a signed key-event log, no leftover files, and exactly
//! the recorded keys on the tokens (no duplicate, no orphan). `bootstrap-rstuf`,
//! `rotate-rstuf-root-keys` and `refresh-rstuf-expiry` are killed in their final writes.
//!
//! The power cut is emulated: the failpoints of `src/fault.rs` (compiled into test builds only)
//! count the boundaries crossed (`CONCLAVE_TEST_FAULT_LOG`) and make the process `SIGKILL`
//! itself at the Nth (`CONCLAVE_TEST_FAULT_KILL_AT`): nothing after that point runs, no
//! destructor, no flush. What a real power cut adds (written data the kernel had not flushed)
//! is not emulated here; the transcript's torn-line repair and the token store's format check
//! have their own tests. SoftHSM2 stands in for the tokens.
//!
//! `CONCLAVE_FAULTS_QUICK=1` tries every 7th point only, and the last (for local iteration);
//! `cargo test` and `make test` try every point.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const FAULT_LOG: &str = "CONCLAVE_TEST_FAULT_LOG";
const FAULT_KILL_AT: &str = "CONCLAVE_TEST_FAULT_KILL_AT";

fn conclave() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_conclave"));
    c.env_remove(FAULT_LOG).env_remove(FAULT_KILL_AT);
    c
}

/// `conclave rehearse --headless --script SCRIPT --workspace WS`, with the fault log `log` and
/// the kill point `kill_at` when given; (exit code, printed text).
fn rehearse(
    ws: &Path,
    script: &str,
    log: Option<&Path>,
    kill_at: Option<usize>,
) -> (Option<i32>, String) {
    let mut cmd = conclave();
    cmd.args(["rehearse", "--headless", "--script", script, "--workspace"])
        .arg(ws);
    if let Some(log) = log {
        cmd.env(FAULT_LOG, log);
    }
    if let Some(k) = kill_at {
        cmd.env(FAULT_KILL_AT, k.to_string());
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The points a fault log lists, in order.
fn points(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, n)| n).to_string())
        .collect()
}

/// A run of `script` in `ws` counting its points; the points.
fn counting_run(ws: &Path, script: &str) -> Vec<String> {
    let log = ws.with_extension("faults.log");
    let _ = std::fs::remove_file(&log);
    let (code, out) = rehearse(ws, script, Some(&log), None);
    assert_eq!(code, Some(0), "{script}: {out}");
    let names = points(&log);
    let text = std::fs::read_to_string(&log).unwrap();
    for (i, line) in text.lines().enumerate() {
        assert!(
            line.starts_with(&format!("{} ", i + 1)),
            "ordinals count up across the processes: {line}"
        );
    }
    names
}

/// Anything an interrupted run may leave: temporary files of atomic writes and exports, a
/// half-written log directory, `*.tmp`, and empty folders.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        if entries.is_empty() && d != dir {
            found.push(format!("empty folder {}", d.display()));
        }
        for p in entries {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.contains(".conclave-tmp") || name.contains(".partial") || name.ends_with(".tmp")
            {
                found.push(p.display().to_string());
            }
            if p.symlink_metadata().unwrap().is_dir() {
                todo.push(p);
            }
        }
    }
    found
}

/// Keys the workspace's transcripts record as generated, per keyholder.
fn recorded_keys(ws: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(ws).unwrap() {
        let p = e.unwrap().path();
        if !p.to_string_lossy().ends_with(".transcript.jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            if r["action"] == "key-generated" && r["details"]["existing"] != true {
                let who = r["details"]["keyholder"].as_str().unwrap().to_string();
                *out.entry(who).or_insert(0) += 1;
            }
        }
    }
    out
}

/// `pkcs11-tool` on the workspace's practice tokens; what it printed (must succeed).
fn pkcs11_tool(ws: &Path, args: &[&str]) -> String {
    let out = Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", ws.join("softhsm2.conf"))
        .args(["--module", "/usr/lib/softhsm/libsofthsm2.so"])
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

/// What is wrong with the tokens: each keyholder has exactly one token, and it holds exactly
/// the keys recorded for them, each a private and a public object under one `CKA_ID`.
fn token_problems(ws: &Path, keyholders: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let slots = pkcs11_tool(ws, &["--list-token-slots"]);
    let recorded = recorded_keys(ws);
    let pins: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.join("practice-tokens.json")).unwrap()).unwrap();
    for who in keyholders {
        let tokens = slots
            .lines()
            .filter(|l| {
                l.trim_start().starts_with("token label")
                    && l.split_once(':').is_some_and(|(_, v)| v.trim() == *who)
            })
            .count();
        if tokens != 1 {
            problems.push(format!("{tokens} tokens labelled {who}"));
            continue;
        }
        let pin = pins[*who].as_str().unwrap();
        let listing = pkcs11_tool(
            ws,
            &[
                "--token-label",
                who,
                "--login",
                "--pin",
                pin,
                "--list-objects",
            ],
        );
        // (class, CKA_ID) of every object.
        let mut objects: Vec<(String, String)> = Vec::new();
        for line in listing.lines() {
            if !line.starts_with(' ') && line.contains("Object") {
                let class = line.split(';').next().unwrap_or(line).trim().to_string();
                objects.push((class, String::new()));
            } else if let Some(id) = line.trim().strip_prefix("ID:")
                && let Some(last) = objects.last_mut()
            {
                last.1 = id.trim().to_string();
            }
        }
        let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (class, id) in objects {
            by_id.entry(id).or_default().push(class);
        }
        let want = recorded.get(*who).copied().unwrap_or(0);
        if by_id.len() != want {
            problems.push(format!(
                "the token of {who} holds {} keys, {want} recorded: {by_id:?}",
                by_id.len()
            ));
        }
        for (id, mut classes) in by_id {
            classes.sort();
            if classes != ["Private Key Object", "Public Key Object"] {
                problems.push(format!("the token of {who}: CKA_ID {id} holds {classes:?}"));
            }
        }
    }
    problems
}

/// What is wrong with the finished ceremony of `suite` in `ws` after its rerun printed `out`.
fn ceremony_problems(ws: &Path, suite: &Suite<'_>, out: &str) -> Vec<String> {
    let (transcript, keyholders) = (suite.transcript, suite.keyholders);
    let mut problems = Vec::new();
    // The rerun's own auditor checks: the export, the transcript and the key-event log.
    for check in [
        suite.output_check,
        "conclave transcript verify",
        "conclave log verify --log",
    ] {
        if !out
            .lines()
            .any(|l| l.starts_with(check) && l.contains(": VALID"))
        {
            problems.push(format!("no VALID `{check}`"));
        }
    }
    if !out.contains("VALID (checkpoint signed") {
        problems.push("the key-event log's checkpoint is not signed".into());
    }
    // The auditor's command, anchored in the workspace's first root.
    let audit = conclave()
        .args(["transcript", "verify"])
        .arg(ws.join(transcript))
        .arg("--artifacts")
        .arg(ws.join("export"))
        .arg("--trusted-root")
        .arg(ws.join("export/1.root.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&audit.stdout);
    if audit.status.code() != Some(0)
        || !text.contains("Verdict: VALID (anchored")
        || !text.contains("script conformance: every step followed the script")
    {
        problems.push(format!("transcript verify: {text}"));
    }
    problems.extend(leftovers(ws).into_iter().map(|l| format!("leftover: {l}")));
    problems.extend(token_problems(ws, keyholders));
    problems
}

/// The figures of one ceremony's fault run.
struct Figures {
    points: usize,
    tried: usize,
    held: usize,
}

/// One ceremony's fault run: where it runs, what it must end in, where it is cut.
struct Suite<'a> {
    /// The shipped script rehearsed.
    script: &'a str,
    /// The workspace each run starts from (copied), or a fresh one.
    template: Option<&'a Path>,
    /// The transcript the ceremony writes (in the workspace).
    transcript: &'a str,
    /// The practice keyholders whose tokens are checked.
    keyholders: &'a [&'a str],
    /// The start of the rerun's own check of the exported output (the first of its checks).
    output_check: &'a str,
    /// Which points are tried.
    kills: Kills,
}

/// Which of the counted points a suite kills at.
#[derive(Clone, Copy)]
enum Kills {
    /// Every point (every 7th, and the last, with `CONCLAVE_FAULTS_QUICK=1`).
    Every,
    /// The ceremony's final writes: every point from the transcript's own export (the
    /// temporary file of `export/TRANSCRIPT` created) to the end (every 7th from there, and
    /// the last, with `CONCLAVE_FAULTS_QUICK=1`), through the last write (the rename of
    /// `SHA256SUMS`) and the points after it (the fsync of the folder, the final `sync`),
    /// which leave under `SIGKILL` what a finished ceremony leaves: the rerun reports it.
    FinalWrites,
}

/// The ordinals (1-based) of the points of `counted` that `suite` kills at.
fn chosen_points(suite: &Suite<'_>, counted: &[String], quick: bool) -> Vec<usize> {
    let n = counted.len();
    let (first, last) = match suite.kills {
        Kills::Every => (1, n),
        Kills::FinalWrites => {
            let export = format!("export create export/.{}", suite.transcript);
            let at = counted
                .iter()
                .position(|p| p.starts_with(&export))
                .unwrap_or_else(|| panic!("{}: no point {export:?}", suite.script));
            let sums = counted
                .iter()
                .rposition(|p| p == "export rename export/SHA256SUMS")
                .unwrap_or_else(|| panic!("{}: no rename of SHA256SUMS", suite.script));
            assert!(sums > at, "{}: {counted:?}", suite.script);
            (at + 1, n)
        }
    };
    (first..=last)
        .filter(|k| !quick || (k - first) % 7 == 0 || *k == last)
        .collect()
}

/// Kill the suite's ceremony at each chosen point ([`Kills`]), each time in a fresh copy of
/// its template (or a fresh workspace), then run it again without faults and check the result.
fn kill_everywhere(suite: &Suite<'_>, extra: impl Fn(&Path) -> Vec<String> + Sync) -> Figures {
    let (script, template) = (suite.script, suite.template);
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let fresh = |name: &str| -> PathBuf {
        let ws = tmp.path().join(name);
        if let Some(t) = template {
            let ok = Command::new("cp")
                .arg("-a")
                .arg(t)
                .arg(&ws)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        ws
    };
    let counted = counting_run(&fresh("count"), script);
    let n = counted.len();
    assert!(n > 50, "{script}: only {n} points: {counted:?}");
    let quick = std::env::var_os("CONCLAVE_FAULTS_QUICK").is_some();
    let ks = chosen_points(suite, &counted, quick);
    // One kill and rerun: `None` when it held, else what went wrong.
    let one = |k: usize| -> Option<String> {
        let ws = fresh(&format!("k{k}"));
        let log = tmp.path().join(format!("k{k}.faults.log"));
        let (code, out) = rehearse(&ws, script, Some(&log), Some(k));
        let passed = points(&log);
        let at = counted[k - 1].as_str();
        if code == Some(0) || passed.len() != k {
            return Some(format!(
                "point {k} ({at}): not reached ({} points passed, exit {code:?}): {out}",
                passed.len()
            ));
        }
        // Killed in the rehearsal's child (the parent, killed itself, has no exit code): the
        // parent says so, naming the signal, and exits 2.
        if code.is_some() && !(code == Some(2) && out.contains("was killed by signal 9 (SIGKILL)"))
        {
            return Some(format!(
                "point {k} ({at}): the child's SIGKILL not said (exit {code:?}): {out}"
            ));
        }
        let (code, out) = rehearse(&ws, script, None, None);
        let mut problems = if code == Some(0) {
            ceremony_problems(&ws, suite, &out)
        } else {
            vec![format!("the rerun failed (exit {code:?}): {out}")]
        };
        problems.extend(extra(&ws));
        if problems.is_empty() {
            let _ = std::fs::remove_dir_all(&ws);
            None
        } else {
            Some(format!("point {k} ({at}): {}", problems.join("; ")))
        }
    };
    // As many workers as the machine has cores, each taking the next point.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(&k) = ks.get(i) else { break };
                    let r = one(k);
                    results.lock().unwrap().push((k, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(k, _)| *k);
    let held = results.iter().filter(|(_, r)| r.is_none()).count();
    let failures: Vec<String> = results.into_iter().filter_map(|(_, r)| r).collect();
    eprintln!(
        "{script}: {n} points, {} tried, {held} held, in {:.0} s",
        ks.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{script}: {} of {} kills did not resume to a verified ceremony:\n{}",
        failures.len(),
        ks.len(),
        failures.join("\n")
    );
    Figures {
        points: n,
        tried: ks.len(),
        held,
    }
}

#[test]
fn the_counting_run_names_every_kind_of_boundary() {
    let tmp = tempfile::tempdir().unwrap();
    let names = counting_run(&tmp.path().join("ws"), "bootstrap-root");
    for kind in [
        "mkdir ",
        "create temporary ",
        "write ",
        "fsync ",
        "rename ",
        "fsync folder of ",
        "transcript create",
        "transcript append begin",
        "transcript fsync seal",
        "export write ",
        "export rename ",
        "log mkdir ",
        "log rename ",
        "token C_InitToken alice",
        "token C_InitPIN alice",
        "token C_GenerateKeyPair ",
        "token C_Sign self-test ",
        "token C_Sign ",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(kind)),
            "no point {kind:?} in {names:?}"
        );
    }
    // Without the environment, no point is counted and nothing is written.
    let (code, out) = rehearse(&tmp.path().join("ws2"), "bootstrap-root", None, None);
    assert_eq!(code, Some(0), "{out}");
    assert!(!tmp.path().join("ws2.faults.log").exists());
}

#[test]
fn bootstrap_root_resumes_from_a_power_cut_at_every_point() {
    let f = kill_everywhere(
        &Suite {
            script: "bootstrap-root",
            template: None,
            transcript: "bootstrap-root.transcript.jsonl",
            keyholders: &["alice", "bob", "carol"],
            output_check: VERIFY,
            kills: Kills::Every,
        },
        |_| Vec::new(),
    );
    assert_eq!(f.held, f.tried, "{} points", f.points);
}

#[test]
fn rotate_root_keys_resumes_from_a_power_cut_at_every_point() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("bootstrapped");
    let (code, out) = rehearse(&template, "bootstrap-root", None, None);
    assert_eq!(code, Some(0), "{out}");
    let f = kill_everywhere(
        &Suite {
            script: "rotate-root-keys",
            template: Some(&template),
            transcript: "rotate-root-keys-v2.transcript.jsonl",
            keyholders: &["alice", "bob", "carol", "dave"],
            output_check: VERIFY,
            kills: Kills::Every,
        },
        |ws| one_ceremony(ws, "rotate-root-keys", 3),
    );
    assert_eq!(f.held, f.tried, "{} points", f.points);
}

/// The start of the rerun's check of an exported repository.
const VERIFY: &str = "conclave verify --trusted-root";

/// What shows that a second ceremony of `script` was started after the one under test (whose
/// root and log are version `next - 1`): its transcript, its root or its key-event log.
fn one_ceremony(ws: &Path, script: &str, next: u32) -> Vec<String> {
    [
        format!("{script}-v{next}.transcript.jsonl"),
        format!("export/{next}.root.json"),
        format!("export/log-{next:03}"),
    ]
    .into_iter()
    .filter(|f| ws.join(f).exists())
    .map(|f| format!("a second {script} was started: {f}"))
    .collect()
}

/// Rehearse `scripts` one after the other in the workspace `ws`, each to a verified ceremony.
fn rehearsed(ws: &Path, scripts: &[&str]) {
    for script in scripts {
        let (code, out) = rehearse(ws, script, None, None);
        assert_eq!(code, Some(0), "{script}: {out}");
    }
}

fn json_file(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// RSTUF's Distributed Asynchronous Signing, rehearsed: a practice bootstrap-rstuf's workspace
/// (root v1) receives RSTUF's pending file (`input/rstuf-pending.json`, `GET
/// /api/v1/metadata/sign/`) for a root v2 made elsewhere (a copy of the workspace refreshes the
/// root's expiry: the same keys) and signed there by one keyholder only, its trusted root this
/// workspace's root v1. sign-rstuf-pending-root is killed at every point and run again: besides
/// the checks of every suite (the rerun's output check is the sign payloads' over the pending
/// root), one transcript only (a rerun never signs the same pending root again in a new one),
/// one key-event log, and exactly the two missing signatures, each exported once.
#[test]
fn sign_rstuf_pending_root_resumes_from_a_power_cut_at_every_point() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("bootstrapped");
    rehearsed(&template, &["bootstrap-rstuf"]);
    let elsewhere = tmp.path().join("elsewhere");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(&template)
        .arg(&elsewhere)
        .status()
        .unwrap();
    assert!(ok.success());
    rehearsed(&elsewhere, &["refresh-rstuf-expiry"]);
    let mut root_v2 = json_file(&elsewhere.join("export/2.root.json"));
    let signatures = root_v2["signatures"].as_array_mut().unwrap();
    assert_eq!(signatures.len(), 3);
    signatures.truncate(1);
    let pending = serde_json::json!({ "data": { "metadata": {
        "root": root_v2,
        "trusted_root": json_file(&template.join("export/1.root.json")),
    } } });
    std::fs::write(
        template.join("input/rstuf-pending.json"),
        serde_json::to_vec_pretty(&pending).unwrap(),
    )
    .unwrap();
    let transcript = "sign-rstuf-pending-root-v1.transcript.jsonl";
    let f = kill_everywhere(
        &Suite {
            script: "sign-rstuf-pending-root",
            template: Some(&template),
            transcript,
            keyholders: &["alice", "bob", "carol"],
            output_check: "rstuf admin send sign",
            kills: Kills::Every,
        },
        |ws| {
            let mut p = Vec::new();
            for second in [
                "sign-rstuf-pending-root-v2.transcript.jsonl",
                "export/log-003",
            ] {
                if ws.join(second).exists() {
                    p.push(format!("the pending root was signed again: {second}"));
                }
            }
            let payloads = std::fs::read_dir(ws.join("export"))
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    let name = name.to_string_lossy();
                    name.starts_with("sign-payload-v2-") && name.ends_with(".json")
                })
                .count();
            if payloads != 2 {
                p.push(format!(
                    "{payloads} sign payloads exported, 2 missing signatures"
                ));
            }
            let signed = std::fs::read_to_string(ws.join(transcript))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("\"event\":\"signed\""))
                .count();
            if signed != 2 {
                p.push(format!("{signed} signatures recorded, 2 missing"));
            }
            p
        },
    );
    assert_eq!(f.held, f.tried, "{} points", f.points);
}

/// The other RSTUF ceremonies, each killed in its final writes (from the transcript's own
/// export to the end: the copy in `export/`, `SHA256SUMS`, the final `sync`) and run again:
/// the checks of every suite, and never a second ceremony. After the last write (the rename of
/// `SHA256SUMS`) the workspace is that of a finished ceremony: the same command reports it and
/// verifies it again (a new one needs `--new`), so these points are held too.
#[test]
fn rstuf_ceremonies_resume_from_a_power_cut_in_their_final_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let f = kill_everywhere(
        &Suite {
            script: "bootstrap-rstuf",
            template: None,
            transcript: "bootstrap-rstuf.transcript.jsonl",
            keyholders: &["alice", "bob", "carol"],
            output_check: VERIFY,
            kills: Kills::FinalWrites,
        },
        |ws| one_ceremony(ws, "bootstrap-rstuf", 2),
    );
    assert_eq!(f.held, f.tried, "{} points", f.points);
    let template = tmp.path().join("bootstrapped");
    rehearsed(&template, &["bootstrap-rstuf"]);
    for (script, keyholders) in [
        (
            "rotate-rstuf-root-keys",
            &["alice", "bob", "carol", "dave"][..],
        ),
        ("refresh-rstuf-expiry", &["alice", "bob", "carol"][..]),
    ] {
        let transcript = format!("{script}-v2.transcript.jsonl");
        let f = kill_everywhere(
            &Suite {
                script,
                template: Some(&template),
                transcript: &transcript,
                keyholders,
                output_check: VERIFY,
                kills: Kills::FinalWrites,
            },
            |ws| one_ceremony(ws, script, 3),
        );
        assert_eq!(f.held, f.tried, "{script}: {} points", f.points);
    }
}
