//! The TUF client workflow, end to end: `conclave-conformance-client` (Conclave's verification
//! core behind the tuf-conformance CLIENT protocol) and python-tuf 7's ngclient
//! (`tests/python/ngclient_cli.py`, the same protocol) are run side by side against
//! repositories that python-tuf's Metadata API builds and changes between runs
//! (`tests/python/conformance_sim.py`), served over HTTP on 127.0.0.1 by a small server in this
//! file that records every request.
//!
//! Each scenario states the verdict the specification asks for at each step; both clients must
//! give it, must then trust the same versions of root, timestamp, snapshot and targets (what
//! they keep in their metadata folders), and must request the same files from the server.
//!
//! Built only with `--features conformance-client` (`required-features` in Cargo.toml);
//! `make unit` runs it.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Run, python, python_script, run_with_timeout};
use conclave::tuf::repository::quote_role_name;

const CLIENT: &str = env!("CARGO_BIN_EXE_conclave-conformance-client");

/// A static file server on 127.0.0.1 (an ephemeral port) for one folder; it logs every
/// requested path (as sent, URL-quoted). Stops when dropped.
struct Server {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (root, log2, stop2) = (root.to_path_buf(), log.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (root, log) = (root.clone(), log2.clone());
                std::thread::spawn(move || serve_one(conn, &root, &log));
            }
        });
        Server { port, log, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn requests_since(&self, mark: usize) -> Vec<String> {
        self.log.lock().expect("log lock")[mark..].to_vec()
    }

    fn mark(&self) -> usize {
        self.log.lock().expect("log lock").len()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve_one(mut conn: TcpStream, root: &Path, log: &Mutex<Vec<String>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // Headers: read up to the blank line.
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let path = path.split('?').next().unwrap_or("").to_string();
    log.lock().expect("log lock").push(path.clone());
    // Paths are not URL-decoded: the simulator stores files under the quoted names clients
    // request, so no request can name a file outside the served folder.
    let body = if path.split('/').any(|s| s == "..") {
        None
    } else {
        std::fs::read(root.join(path.trim_start_matches('/'))).ok()
    };
    let head = match &body {
        Some(b) => format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            b.len()
        ),
        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    };
    let _ = conn.write_all(head.as_bytes());
    if let Some(b) = body {
        let _ = conn.write_all(&b);
    }
    let _ = conn.flush();
}

/// The two clients under comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Conclave,
    Ngclient,
}

const CLIENTS: [Client; 2] = [Client::Conclave, Client::Ngclient];

/// What one client run did.
struct Outcome {
    run: Run,
    requests: Vec<String>,
}

/// One scenario: a simulated repository, its server, and one metadata and target folder per
/// client.
struct Scenario {
    name: String,
    tmp: tempfile::TempDir,
    server: Server,
    step: usize,
    /// Clients run under `faketime` at this UTC time (static repositories of the past).
    faketime: Option<String>,
}

impl Scenario {
    /// Step 0 of `name`, both clients initialised with root v1.
    fn new(name: impl Into<String>) -> Scenario {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(tmp.path().join("serve")).expect("serve dir");
        let server = Server::start(&tmp.path().join("serve"));
        let s = Scenario {
            name: name.into(),
            tmp,
            server,
            step: 0,
            faketime: None,
        };
        s.sim(0);
        let root = s.tmp.path().join("serve/metadata/1.root.json");
        for c in CLIENTS {
            let out = s.client(c, &["init", root.to_str().expect("UTF-8 path")]);
            assert_eq!(out.run.code(), 0, "{c:?} init failed: {}", out.run.stderr);
            assert!(out.requests.is_empty(), "{c:?} init used the network");
        }
        s
    }

    fn sim(&self, step: usize) {
        let mut cmd = Command::new(python());
        cmd.arg(python_script("conformance_sim.py"))
            .arg(self.tmp.path().join("state"))
            .arg(self.tmp.path().join("serve"))
            .arg(&self.name)
            .arg(step.to_string());
        let run = run_with_timeout(&mut cmd, b"", Duration::from_secs(120));
        assert_eq!(
            run.code(),
            0,
            "conformance_sim.py {} {step}: {run:?}",
            self.name
        );
    }

    /// Apply the scenario's next change to the repository.
    fn next(&mut self) {
        self.step += 1;
        self.sim(self.step);
    }

    fn dir(&self, c: Client, what: &str) -> PathBuf {
        self.tmp.path().join(format!("{c:?}-{what}"))
    }

    fn client(&self, c: Client, args: &[&str]) -> Outcome {
        let program: Vec<PathBuf> = match c {
            Client::Conclave => vec![CLIENT.into()],
            Client::Ngclient => vec![python().to_path_buf(), python_script("ngclient_cli.py")],
        };
        let mut cmd = match &self.faketime {
            Some(at) => {
                let mut cmd = Command::new("faketime");
                cmd.env("TZ", "UTC").arg("-f").arg(format!("@{at}"));
                cmd.args(&program);
                cmd
            }
            None => {
                let mut cmd = Command::new(&program[0]);
                cmd.args(&program[1..]);
                cmd
            }
        };
        cmd.arg("--metadata-dir").arg(self.dir(c, "metadata"));
        if args[0] != "init" {
            cmd.args(["--metadata-url", &self.server.url("metadata")]);
        }
        cmd.args(args);
        let mark = self.server.mark();
        let run = run_with_timeout(&mut cmd, b"", Duration::from_secs(120));
        Outcome {
            run,
            requests: self.server.requests_since(mark),
        }
    }

    /// Run `args` with both clients; both must exit with `expected`, trust the same versions
    /// afterwards and have requested the same files. Returns Conclave's outcome.
    fn both(&self, args: &[String], expected: i32) -> Outcome {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut outcomes = Vec::new();
        for c in CLIENTS {
            let out = self.client(c, &args);
            assert_eq!(
                out.run.code(),
                expected,
                "{}, step {}: {c:?} {args:?} exited {} (expected {expected})\nstderr: {}",
                self.name,
                self.step,
                out.run.code(),
                out.run.stderr
            );
            outcomes.push(out);
        }
        self.assert_agree(&args, &outcomes);
        outcomes.swap_remove(0)
    }

    /// A refresh where the clients disagree on purpose (a documented difference): each must
    /// give its own verdict. Returns both outcomes, Conclave's first.
    fn refresh_each(&self, conclave: i32, ngclient: i32) -> Vec<Outcome> {
        CLIENTS
            .iter()
            .zip([conclave, ngclient])
            .map(|(c, expected)| {
                let out = self.client(*c, &["refresh"]);
                assert_eq!(
                    out.run.code(),
                    expected,
                    "{}, step {}: {c:?} refresh exited {} (expected {expected})\nstderr: {}",
                    self.name,
                    self.step,
                    out.run.code(),
                    out.run.stderr
                );
                out
            })
            .collect()
    }

    /// Both clients trust the same versions and requested the same files.
    fn assert_agree(&self, args: &[&str], outcomes: &[Outcome]) {
        let trusted: Vec<_> = CLIENTS.iter().map(|c| self.trusted_versions(*c)).collect();
        assert_eq!(
            trusted[0], trusted[1],
            "{}, step {}: Conclave and ngclient trust different versions after {args:?}",
            self.name, self.step
        );
        let asked: Vec<BTreeSet<&String>> = outcomes
            .iter()
            .map(|o| o.requests.iter().collect())
            .collect();
        assert_eq!(
            asked[0], asked[1],
            "{}, step {}: Conclave and ngclient requested different files for {args:?}",
            self.name, self.step
        );
    }

    fn refresh(&self, expected: i32) -> Outcome {
        self.both(&["refresh".to_string()], expected)
    }

    fn download(&self, targets: &[&str], expected: i32) -> Outcome {
        self.download_with(targets, [expected, expected], true)
    }

    /// A download where the clients disagree on purpose (a documented difference).
    fn download_each(&self, targets: &[&str], conclave: i32, ngclient: i32) -> Outcome {
        self.download_with(targets, [conclave, ngclient], false)
    }

    fn download_with(&self, targets: &[&str], expect: [i32; 2], agree: bool) -> Outcome {
        let mut args = Vec::new();
        for t in targets {
            args.push("--target-name".to_string());
            args.push(t.to_string());
        }
        args.push("--target-base-url".into());
        args.push(self.server.url("targets"));
        args.push("--target-dir".into());
        args.push("TARGET_DIR".into());
        // Each client has its own target folder.
        let mut out = None;
        let mut asked = Vec::new();
        for (c, expected) in CLIENTS.into_iter().zip(expect) {
            let tdir = self.dir(c, "targets");
            let args: Vec<String> = args
                .iter()
                .map(|a| {
                    if a == "TARGET_DIR" {
                        tdir.to_str().expect("UTF-8 path").to_string()
                    } else {
                        a.clone()
                    }
                })
                .chain(["download".to_string()])
                .collect();
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = self.client(c, &refs);
            assert_eq!(
                o.run.code(),
                expected,
                "{}, step {}: {c:?} download {targets:?} exited {} (expected {expected})\n\
                 stderr: {}",
                self.name,
                self.step,
                o.run.code(),
                o.run.stderr
            );
            asked.push(o.requests.iter().cloned().collect::<BTreeSet<String>>());
            if c == Client::Conclave {
                out = Some(o);
            }
        }
        if !agree {
            return out.expect("Conclave ran");
        }
        assert_eq!(
            asked[0], asked[1],
            "{}, step {}: Conclave and ngclient requested different files for {targets:?}",
            self.name, self.step
        );
        let files: Vec<BTreeSet<String>> = CLIENTS.iter().map(|c| self.stored(*c)).collect();
        assert_eq!(
            files[0], files[1],
            "{}: the clients stored different targets",
            self.name
        );
        out.expect("Conclave ran")
    }

    /// Versions of the top-level roles a client keeps in its metadata folder.
    fn trusted_versions(&self, c: Client) -> Vec<(String, Option<u64>)> {
        ["root", "timestamp", "snapshot", "targets"]
            .iter()
            .map(|r| (r.to_string(), self.version(c, r)))
            .collect()
    }

    fn version(&self, c: Client, role: &str) -> Option<u64> {
        let bytes = std::fs::read(self.dir(c, "metadata").join(format!("{role}.json"))).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("stored metadata JSON");
        v["signed"]["version"].as_u64()
    }

    /// Target files a client stored, with their contents.
    fn stored(&self, c: Client) -> BTreeSet<String> {
        let Ok(entries) = std::fs::read_dir(self.dir(c, "targets")) else {
            return BTreeSet::new();
        };
        entries
            .map(|e| {
                let e = e.expect("dir entry");
                let content = std::fs::read(e.path()).expect("target file");
                format!(
                    "{} = {}",
                    e.file_name().to_string_lossy(),
                    String::from_utf8_lossy(&content).trim_end()
                )
            })
            .collect()
    }

    fn stored_target(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir(Client::Conclave, "targets").join(name)).ok()
    }
}

fn target_requests(out: &Outcome) -> Vec<&String> {
    out.requests
        .iter()
        .filter(|r| r.starts_with("/targets/"))
        .collect()
}

fn basic(name: &'static str, consistent: bool) {
    let mut s = Scenario::new(name);
    let out = s.refresh(0);
    let expected_snapshot = if consistent {
        "/metadata/2.snapshot.json"
    } else {
        "/metadata/snapshot.json"
    };
    assert!(
        out.requests.iter().any(|r| r == expected_snapshot),
        "{name}: snapshot not fetched as {expected_snapshot}: {:?}",
        out.requests
    );
    let all = [
        "readme.txt",
        "files/app-1.0.tar.gz",
        "hashed/h1.txt",
        "bins/b1.txt",
    ];
    let out = s.download(&all, 0);
    assert_eq!(target_requests(&out).len(), 4, "{:?}", out.requests);
    if consistent {
        // Target files by HASH.NAME, delegated roles by VERSION.QUOTED-NAME.json.
        assert!(
            target_requests(&out)
                .iter()
                .all(|r| r.rsplit('/').next().is_some_and(|f| f.len() > 65)),
            "{:?}",
            out.requests
        );
        assert!(
            out.requests
                .contains(&"/metadata/1.release%20team.json".to_string()),
            "{:?}",
            out.requests
        );
    } else {
        assert!(out.requests.contains(&"/targets/readme.txt".to_string()));
        assert!(
            out.requests
                .contains(&"/metadata/release%20team.json".to_string())
        );
    }
    assert_eq!(
        s.stored_target("files%2Fapp-1.0.tar.gz").as_deref(),
        Some("app 1.0\n")
    );
    // Cached targets are not fetched again.
    let out = s.download(&all, 0);
    assert!(target_requests(&out).is_empty(), "{:?}", out.requests);
    // Unknown target; the first failure stops the command.
    s.download(&["nope.txt"], 1);
    s.download(&["nope.txt", "bins/b1.txt"], 1);
    // A changed target is fetched again into the same file.
    s.next();
    let out = s.download(&["readme.txt"], 0);
    assert_eq!(target_requests(&out).len(), 1, "{:?}", out.requests);
    assert_eq!(
        s.stored_target("readme.txt").as_deref(),
        Some("top-level target, second edition\n")
    );
}

#[test]
fn plain_refresh_and_download_with_consistent_snapshots() {
    basic("basic", true);
}

#[test]
fn plain_refresh_and_download_without_consistent_snapshots() {
    basic("basic_not_consistent", false);
}

/// Refresh at step 0 succeeds; after each later step, refresh ends with the given code.
fn refresh_steps(name: &'static str, codes: &[i32]) -> Scenario {
    let mut s = Scenario::new(name);
    s.refresh(0);
    for &code in codes {
        s.next();
        s.refresh(code);
    }
    s
}

#[test]
fn root_rotation_chain_with_changing_thresholds_is_followed() {
    let s = refresh_steps("root_rotation", &[0]);
    assert_eq!(s.version(Client::Conclave, "root"), Some(3));
}

#[test]
fn root_not_signed_by_the_trusted_root_threshold_is_refused() {
    let s = refresh_steps("root_not_signed_by_old", &[1]);
    assert_eq!(s.version(Client::Conclave, "root"), Some(1));
}

#[test]
fn root_not_signed_by_its_own_threshold_is_refused() {
    let s = refresh_steps("root_not_signed_by_new", &[1]);
    assert_eq!(s.version(Client::Conclave, "root"), Some(1));
}

#[test]
fn root_version_that_skips_is_refused() {
    let s = refresh_steps("root_version_skipped", &[1]);
    assert_eq!(s.version(Client::Conclave, "root"), Some(1));
}

#[test]
fn expired_intermediate_root_is_fine_expired_final_root_is_not() {
    let s = refresh_steps("expired_intermediate_root", &[0]);
    assert_eq!(s.version(Client::Conclave, "root"), Some(3));
    let s = refresh_steps("expired_final_root", &[1]);
    assert_eq!(s.version(Client::Conclave, "timestamp"), Some(2));
}

#[test]
fn targets_key_rotation_needs_the_new_threshold() {
    let s = refresh_steps("targets_threshold", &[1, 0]);
    assert_eq!(s.version(Client::Conclave, "root"), Some(2));
}

#[test]
fn timestamp_rollback_is_refused() {
    let s = refresh_steps("timestamp_rollback", &[0, 1]);
    assert_eq!(s.version(Client::Conclave, "timestamp"), Some(1000));
}

#[test]
fn fast_forward_recovery_after_timestamp_key_rotation() {
    let s = refresh_steps("fast_forward_recovery", &[0, 0, 0]);
    assert_eq!(s.version(Client::Conclave, "timestamp"), Some(2));
}

#[test]
fn snapshot_and_targets_rollbacks_are_refused() {
    let s = refresh_steps("snapshot_rollback", &[1]);
    assert_eq!(s.version(Client::Conclave, "snapshot"), Some(2));
    let s = refresh_steps("targets_rollback", &[1]);
    assert_eq!(s.version(Client::Conclave, "targets"), Some(2));
}

#[test]
fn expired_timestamp_snapshot_targets_are_refused() {
    // An expired timestamp, then a fresh one: the client recovers.
    refresh_steps("expired_timestamp", &[1, 0]);
    let s = refresh_steps("expired_snapshot", &[1]);
    assert_eq!(s.version(Client::Conclave, "snapshot"), Some(2));
    let s = refresh_steps("expired_targets", &[1]);
    assert_eq!(s.version(Client::Conclave, "targets"), Some(2));
}

#[test]
fn mix_and_match_and_unpinned_bytes_are_refused() {
    refresh_steps("mix_and_match", &[1]);
    refresh_steps("targets_not_as_pinned", &[1]);
}

#[test]
fn length_limits_are_enforced() {
    // A timestamp over 16384 bytes; a snapshot longer than the timestamp pins.
    refresh_steps("oversized_timestamp", &[1]);
    refresh_steps("snapshot_longer_than_pinned", &[1]);
}

#[test]
fn target_with_wrong_hash_or_length_is_refused_and_not_stored() {
    for name in ["target_bad_hash", "target_bad_length"] {
        let s = refresh_steps(name, &[0]);
        s.download(&["readme.txt"], 1);
        assert_eq!(s.stored_target("readme.txt"), None, "{name}");
    }
}

#[test]
fn delegations_terminating_paths_and_hash_prefixes() {
    let s = Scenario::new("terminating");
    s.download(&["a/in-a.txt"], 0);
    // "a" is terminating for a/*: "b" is never asked.
    let out = s.download(&["a/in-b.txt"], 1);
    assert!(
        !out.requests.iter().any(|r| r.contains(".b.json")),
        "{:?}",
        out.requests
    );
    s.download(&["d/outside.txt"], 1);
    s.download(&["h/ok.txt"], 0);
    s.download(&["h/no.txt"], 1);
    let s = Scenario::new("not_terminating");
    s.download(&["a/in-b.txt"], 0);
}

#[test]
fn succinct_hash_bins_route_each_target_to_one_bin() {
    let s = Scenario::new("succinct_bins");
    s.download(&["pkg/right.txt"], 0);
    s.download(&["pkg/wrong.txt"], 1);
}

#[test]
fn delegation_cycle_ends() {
    let s = Scenario::new("cycle");
    s.download(&["in-b.txt"], 0);
    s.download(&["missing.txt"], 1);
}

#[test]
fn delegated_role_needs_its_threshold() {
    let mut s = Scenario::new("delegated_threshold");
    s.download(&["two/x.txt"], 1);
    s.next();
    s.download(&["two/x.txt"], 0);
}

#[test]
fn timestamp_with_the_trusted_version_is_not_taken() {
    // Same version, other content: the stored timestamp stays (it names snapshot 2, not 100).
    let s = refresh_steps("timestamp_same_version", &[0]);
    let stored = std::fs::read(s.dir(Client::Conclave, "metadata").join("timestamp.json"))
        .expect("stored timestamp");
    let v: serde_json::Value = serde_json::from_slice(&stored).expect("JSON");
    assert_eq!(v["signed"]["meta"]["snapshot.json"]["version"], 2);
}

#[test]
fn unknown_fields_are_part_of_the_signed_content() {
    let s = refresh_steps("custom_fields", &[0]);
    assert_eq!(s.version(Client::Conclave, "root"), Some(2));
}

#[test]
fn invalid_or_unsigned_trusted_root_fails_before_any_request() {
    for edit in ["drop version", "bad signature"] {
        let s = Scenario::new("basic");
        for c in CLIENTS {
            let path = s.dir(c, "metadata").join("root.json");
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).expect("root")).expect("JSON");
            if edit == "drop version" {
                v["signed"]
                    .as_object_mut()
                    .expect("signed")
                    .remove("version");
            } else {
                let sig = v["signatures"][0]["sig"].as_str().expect("sig").to_string();
                let flipped = if sig.starts_with('0') { "1" } else { "0" };
                v["signatures"][0]["sig"] = format!("{flipped}{}", &sig[1..]).into();
            }
            std::fs::write(&path, serde_json::to_vec(&v).expect("JSON")).expect("write root");
        }
        let out = s.refresh(1);
        assert!(out.requests.is_empty(), "{edit}: {:?}", out.requests);
    }
}

#[test]
fn unusual_role_names_are_quoted_in_urls_and_file_names() {
    let s = Scenario::new("unusual_role_names");
    let out = s.download(&["nonexistent target"], 1);
    for quoted in ["%3F", "%23", "%2Fdelegatedrole", "..%2Fdelegatedrole"] {
        assert!(
            out.requests.contains(&format!("/metadata/1.{quoted}.json")),
            "{quoted}: {:?}",
            out.requests
        );
    }
    s.download(&["found-last.txt"], 0);
    let stored: BTreeSet<String> = std::fs::read_dir(s.dir(Client::Conclave, "metadata"))
        .expect("metadata dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for name in [
        "%3F.json",
        "%23.json",
        "%2Fdelegatedrole.json",
        "..%2Fdelegatedrole.json",
    ] {
        assert!(stored.contains(name), "{name} not stored: {stored:?}");
    }
    assert!(!s.tmp.path().join("delegatedrole.json").exists());
}

/// Root versions as (keys, threshold, signing keys), the verdict of the refresh, and the version
/// of root that must be trusted afterwards.
type RootChain = (
    &'static str,
    &'static [(&'static [u8], u8, &'static [u8])],
    i32,
    u64,
);

const ROOT_CHAINS: &[RootChain] = &[
    (
        "1-of-1 key replaced, signed by old and new",
        &[(&[1], 1, &[1]), (&[2], 1, &[2, 1]), (&[2], 1, &[2])],
        0,
        3,
    ),
    (
        "signatures by unlisted keys are ignored",
        &[
            (&[1], 1, &[3, 1, 4]),
            (&[2], 1, &[3, 2, 1, 4]),
            (&[2], 1, &[4, 2]),
        ],
        0,
        3,
    ),
    (
        "3 of 5, a different 3 each version",
        &[
            (&[0, 1, 2, 3, 4], 3, &[0, 2, 4]),
            (&[0, 1, 2, 3, 4], 3, &[1, 3, 4]),
            (&[0, 1, 2, 3, 4], 3, &[0, 1, 2]),
        ],
        0,
        3,
    ),
    (
        "3 of 5, one key replaced",
        &[
            (&[0, 1, 2, 3, 4], 3, &[0, 2, 4]),
            (&[0, 1, 3, 4, 5], 3, &[0, 1, 4]),
        ],
        0,
        2,
    ),
    (
        "3 of 5, all keys replaced through an intermediate version",
        &[
            (&[0, 1, 2, 3, 4], 3, &[0, 2, 4]),
            (&[5, 6, 7, 8, 9], 3, &[0, 2, 4, 5, 6, 7]),
            (&[5, 6, 7, 8, 9], 3, &[6, 8, 9]),
        ],
        0,
        3,
    ),
    (
        "threshold 1 of 3 raised to 2 of 3",
        &[(&[1, 2, 3], 1, &[1]), (&[1, 2, 3], 2, &[2, 3])],
        0,
        2,
    ),
    (
        "threshold 2 of 3 lowered to 1 of 3",
        &[
            (&[1, 2, 3], 2, &[1, 2]),
            (&[1, 2, 3], 1, &[1, 3]),
            (&[1, 2, 3], 1, &[3]),
        ],
        0,
        3,
    ),
    (
        "new key not signed by the old key",
        &[(&[1], 1, &[1]), (&[2], 1, &[2, 3, 4])],
        1,
        1,
    ),
    (
        "new key does not sign",
        &[(&[1], 1, &[1]), (&[2], 1, &[1, 3, 4])],
        1,
        1,
    ),
    (
        "3 of 5, one key replaced, only 2 of the new keys sign",
        &[
            (&[0, 1, 2, 3, 4], 3, &[0, 2, 4]),
            (&[0, 1, 3, 4, 5], 3, &[0, 2, 4]),
        ],
        1,
        1,
    ),
    (
        "3 of 5, one key replaced, only 2 of the old keys sign",
        &[
            (&[0, 1, 2, 3, 4], 3, &[0, 2, 4]),
            (&[0, 1, 3, 4, 5], 3, &[0, 4, 5]),
        ],
        1,
        1,
    ),
    (
        "threshold raised to 2 of 3, one signature",
        &[(&[1, 2, 3], 1, &[1]), (&[1, 2, 3], 2, &[2])],
        1,
        1,
    ),
    (
        "threshold lowered to 1 of 3 without the old threshold",
        &[(&[1, 2, 3], 2, &[1, 2]), (&[1, 2, 3], 1, &[1])],
        1,
        1,
    ),
    (
        "the third version fails after a good second",
        &[(&[1], 1, &[1]), (&[2], 1, &[1, 2]), (&[3], 1, &[3])],
        1,
        2,
    ),
];

fn versions_json(versions: &[(&[u8], u8, &[u8])]) -> String {
    let v: Vec<serde_json::Value> = versions
        .iter()
        .map(|(keys, threshold, sigs)| {
            serde_json::json!({"keys": keys, "threshold": threshold, "sigs": sigs})
        })
        .collect();
    serde_json::Value::Array(v).to_string()
}

fn root_chains(range: std::ops::Range<usize>) {
    for (case, versions, code, trusted) in &ROOT_CHAINS[range] {
        let s = Scenario::new(format!("root_chain={}", versions_json(versions)));
        s.refresh(*code);
        let served = std::fs::read(
            s.tmp
                .path()
                .join(format!("serve/metadata/{trusted}.root.json")),
        )
        .expect("served root");
        for c in CLIENTS {
            let stored = std::fs::read(s.dir(c, "metadata").join("root.json")).expect("root");
            assert!(
                stored == served,
                "{case}: {c:?} does not trust root v{trusted}"
            );
        }
    }
}

#[test]
fn root_rotations_accepted() {
    root_chains(0..7);
}

#[test]
fn root_rotations_refused() {
    root_chains(7..ROOT_CHAINS.len());
}

/// Keys, threshold and signing keys given to timestamp, snapshot and targets in turn (one new
/// root version each), and the verdict of each refresh.
const ROLE_KEYS: &[(&[u8], u8, &[u8], i32)] = &[
    (&[2], 1, &[2], 0),
    (&[1], 1, &[3, 1, 4], 0),
    (&[2], 1, &[1, 3, 4], 1),
    (&[0, 1, 3, 4, 5], 3, &[0, 2, 4], 1),
    (&[0, 1, 3, 4, 5], 3, &[0, 4], 1),
    (&[0, 1, 2, 3, 4], 3, &[0, 2, 4], 0),
    (&[0, 1, 2, 3, 4], 3, &[1, 2, 3], 0),
    (&[0, 1, 2, 3, 4], 3, &[2, 3, 4], 0),
];

#[test]
fn timestamp_snapshot_targets_key_rotations_and_thresholds() {
    for (keys, threshold, sigs, code) in ROLE_KEYS {
        let spec = serde_json::json!({"keys": keys, "threshold": threshold, "sigs": sigs});
        let mut s = Scenario::new(format!("role_keys={spec}"));
        s.refresh(0);
        for role in ["timestamp", "snapshot", "targets"] {
            s.next();
            s.refresh(*code);
            if *code == 0 {
                assert_eq!(
                    s.version(Client::Conclave, "root"),
                    Some(s.step as u64 + 1),
                    "{spec}: {role}"
                );
            }
        }
    }
}

/// A delegation (delegator, role, paths, terminating).
type Delegation = (&'static str, &'static str, &'static [&'static str], bool);

/// Delegated roles fetched (in order) by a download of `target` with both clients, and the
/// verdict.
fn graph_search(
    delegations: &[Delegation],
    targets: &[(&str, &str)],
    target: &str,
    code: i32,
) -> Vec<String> {
    let spec = serde_json::json!({
        "delegations": delegations
            .iter()
            .map(|(d, r, p, t)| serde_json::json!([d, r, p, t]))
            .collect::<Vec<_>>(),
        "targets": targets.iter().map(|(r, p)| serde_json::json!([r, p])).collect::<Vec<_>>(),
    });
    let s = Scenario::new(format!("graph={spec}"));
    s.refresh(0);
    let out = s.download(&[target], code);
    if code == 0 {
        let role = targets
            .iter()
            .find(|(_, p)| *p == target)
            .map(|(r, _)| *r)
            .expect("target listed");
        assert_eq!(
            s.stored_target(&quote_role_name(target)).as_deref(),
            Some(format!("{target} by {role}\n").as_str())
        );
    }
    out.requests
        .iter()
        .filter_map(|r| r.strip_prefix("/metadata/1."))
        .filter_map(|r| r.strip_suffix(".json"))
        .filter(|r| !["root", "timestamp", "snapshot", "targets"].contains(r))
        .map(str::to_string)
        .collect()
}

#[test]
fn delegation_graphs_are_searched_in_preorder_depth_first_order() {
    const ALL: &[&str] = &["*"];
    const PY: &[&str] = &["*.py"];
    let cases: &[(&str, &[Delegation], &[&str])] = &[
        ("one role", &[("targets", "A", ALL, false)], &["A"]),
        (
            "siblings in listed order",
            &[("targets", "A", ALL, false), ("targets", "B", ALL, false)],
            &["A", "B"],
        ),
        (
            "children before siblings",
            &[
                ("targets", "A", ALL, false),
                ("targets", "B", ALL, false),
                ("A", "C", ALL, false),
                ("A", "D", ALL, false),
            ],
            &["A", "C", "D", "B"],
        ),
        (
            "three levels deep first",
            &[
                ("targets", "A", ALL, false),
                ("targets", "B", ALL, false),
                ("A", "C", ALL, false),
                ("C", "D", ALL, false),
            ],
            &["A", "C", "D", "B"],
        ),
        (
            "terminating role: only its descendants",
            &[
                ("targets", "A", ALL, false),
                ("targets", "B", ALL, false),
                ("A", "C", ALL, true),
                ("A", "D", ALL, false),
            ],
            &["A", "C"],
        ),
        (
            "terminating role with a child",
            &[
                ("targets", "A", ALL, false),
                ("targets", "B", ALL, false),
                ("A", "C", ALL, true),
                ("C", "D", ALL, false),
            ],
            &["A", "C", "D"],
        ),
        (
            "branch whose paths do not match is skipped",
            &[
                ("targets", "A", PY, false),
                ("targets", "B", ALL, false),
                ("A", "C", ALL, false),
            ],
            &["B"],
        ),
        (
            "deeper branch whose paths do not match",
            &[
                ("targets", "A", ALL, false),
                ("targets", "B", ALL, false),
                ("A", "C", PY, false),
                ("C", "D", ALL, false),
            ],
            &["A", "B"],
        ),
        (
            "cycle",
            &[
                ("targets", "A", ALL, false),
                ("targets", "B", ALL, false),
                ("B", "C", ALL, false),
                ("C", "D", ALL, false),
                ("D", "B", ALL, false),
            ],
            &["A", "B", "C", "D"],
        ),
        (
            "role delegated by two roles is visited once, first through the first",
            &[
                ("targets", "A", ALL, false),
                ("targets", "B", ALL, false),
                ("B", "C", ALL, false),
                ("A", "C", ALL, false),
            ],
            &["A", "C", "B"],
        ),
        (
            "role delegated by two roles, reached through the one whose paths match",
            &[
                ("targets", "A", ALL, false),
                ("targets", "B", ALL, false),
                ("B", "C", ALL, false),
                ("A", "C", PY, false),
            ],
            &["A", "B", "C"],
        ),
    ];
    for (case, delegations, order) in cases {
        let fetched = graph_search(delegations, &[], "missingpath", 1);
        assert_eq!(fetched, *order, "{case}");
    }
}

#[test]
fn targets_are_found_through_path_patterns() {
    let delegations: &[Delegation] = &[
        ("targets", "A", &["*.doc", "*.md"], false),
        ("targets", "B", &["releases/*/*"], false),
        ("B", "C", &["releases/x/*"], false),
        ("B", "D", &["releases/y/*.zip"], false),
    ];
    let targets = &[
        ("targets", "targetfile"),
        ("A", "README.md"),
        ("C", "releases/x/x_v1"),
        ("D", "releases/y/y_v1.zip"),
        ("D", "releases/z/z_v1.zip"),
    ];
    let cases: &[(&str, i32, &[&str])] = &[
        ("targetfile", 0, &[]),
        ("README.md", 0, &["A"]),
        ("releases/x/x_v1", 0, &["B", "C"]),
        ("releases/y/y_v1.zip", 0, &["B", "D"]),
        // D lists it, but B delegates only releases/y/*.zip to D.
        ("releases/z/z_v1.zip", 1, &["B"]),
    ];
    for (target, code, order) in cases {
        let fetched = graph_search(delegations, targets, target, *code);
        assert_eq!(fetched, *order, "{target}");
    }
}

#[test]
fn snapshot_and_targets_fast_forward_recovery_after_key_rotation() {
    let s = refresh_steps("snapshot_fast_forward_recovery", &[0, 0]);
    assert_eq!(s.version(Client::Conclave, "snapshot"), Some(1));
    let s = refresh_steps("targets_fast_forward_recovery", &[0, 0]);
    assert_eq!(s.version(Client::Conclave, "targets"), Some(2));
}

#[test]
fn snapshot_other_than_the_version_timestamp_names_is_refused() {
    let s = refresh_steps("snapshot_version_mismatch", &[1]);
    assert_eq!(s.version(Client::Conclave, "snapshot"), Some(2));
}

impl Scenario {
    /// Put the simulator's expired copy of `role` (serve/stale-ROLE.json) in both clients'
    /// metadata folders, as if time had passed since they stored it.
    fn age_stored(&self, role: &str) {
        let stale = std::fs::read(self.tmp.path().join(format!("serve/stale-{role}.json")))
            .expect("stale copy");
        for c in CLIENTS {
            std::fs::write(self.dir(c, "metadata").join(format!("{role}.json")), &stale)
                .expect("write stored metadata");
        }
    }
}

#[test]
fn expired_stored_metadata_is_used_for_rollback_checks() {
    // A stored timestamp that expired (v3) does not stop an update to v4...
    let mut s = Scenario::new("expired_stored_timestamp");
    s.refresh(0);
    s.next();
    s.age_stored("timestamp");
    s.refresh(0);
    assert_eq!(s.version(Client::Conclave, "timestamp"), Some(4));
    // ...but one that expired at v10 still refuses v5.
    s.next();
    s.age_stored("timestamp");
    s.refresh(1);
    // An expired stored timestamp and the same version served: the stored one stays, and
    // being expired it stops the update.
    s.next();
    s.age_stored("timestamp");
    s.refresh(1);

    // A stored snapshot that expired is checked against: targets may not go below it.
    let mut s = Scenario::new("expired_stored_snapshot");
    s.refresh(0);
    s.next();
    s.age_stored("snapshot");
    s.refresh(0);
    s.next();
    s.age_stored("snapshot");
    s.refresh(1);
}

#[test]
fn expired_delegated_role_is_refused() {
    let s = Scenario::new("expired_delegated_role");
    s.download(&["a/x.txt"], 1);
}

#[test]
fn snapshot_threshold_above_its_key_count_is_never_met() {
    let s = refresh_steps("snapshot_threshold_unreachable", &[1]);
    assert_eq!(s.version(Client::Conclave, "root"), Some(2));
    assert_eq!(s.version(Client::Conclave, "snapshot"), Some(2));
}

#[test]
fn one_key_listed_under_two_key_ids_counts_once_in_conclave_only() {
    // Snapshot threshold 2, met only by one public key listed under two key ids and signing
    // under both. Conclave counts each distinct key once and refuses; python-tuf 7.0.1 counts
    // key ids and accepts (the one documented difference between the two clients here).
    let mut s = Scenario::new("one_key_two_key_ids");
    s.refresh(0);
    s.next();
    let outs = s.refresh_each(1, 0);
    assert!(
        outs[0].run.stderr.contains("same key as"),
        "{}",
        outs[0].run.stderr
    );
    assert_eq!(s.version(Client::Conclave, "snapshot"), Some(2));
    assert_eq!(s.version(Client::Ngclient, "snapshot"), Some(3));
}

#[test]
fn at_most_256_root_versions_per_refresh() {
    // Roots 2..260 published at once: one refresh follows 256 of them (python-tuf 7's
    // max_root_rotations), the next one the rest.
    let mut s = Scenario::new("many_roots");
    s.refresh(0);
    s.next();
    s.refresh(0);
    assert_eq!(s.version(Client::Conclave, "root"), Some(257));
    s.refresh(0);
    assert_eq!(s.version(Client::Conclave, "root"), Some(260));
}

#[test]
fn target_file_named_by_its_second_hash_is_found_by_conclave_only() {
    // A target listed with sha256 and sha512, served (consistent snapshots) only as
    // SHA512.NAME. Any listed hash may name the file (spec 5.7.3): Conclave tries each in turn,
    // python-tuf 7.0.1 only the first.
    let s = Scenario::new("target_under_second_hash");
    let out = s.download_each(&["two-hashes.txt"], 0, 1);
    assert_eq!(target_requests(&out).len(), 2, "{:?}", out.requests);
    assert_eq!(
        s.stored_target("two-hashes.txt").as_deref(),
        Some("listed with two hashes\n")
    );
}

/// A real repository from the public suite's static data (tests/data/vectors/
/// tuf-conformance-static), served as it is, both clients run under `faketime` at the time the
/// data was taken: init with its initial root, download its target path.
fn static_repository(name: &str) {
    let src = common::manifest_dir()
        .join("tests/data/vectors/tuf-conformance-static")
        .join(name);
    let read = |f: &str| {
        std::fs::read_to_string(src.join(f))
            .unwrap_or_else(|e| panic!("{name}/{f}: {e}"))
            .trim()
            .to_string()
    };
    // "2025-02-09 12:02:08+00:00" -> "2025-02-09 12:02:08" (TZ=UTC for faketime).
    let at = read("faketime").trim_end_matches("+00:00").to_string();
    let target = read("targetpath");
    let tmp = tempfile::tempdir().expect("tempdir");
    common::copy_dir(&src.join("metadata"), &tmp.path().join("serve/metadata"));
    common::copy_dir(&src.join("targets"), &tmp.path().join("serve/targets"));
    let server = Server::start(&tmp.path().join("serve"));
    let s = Scenario {
        name: format!("static {name}"),
        tmp,
        server,
        step: 0,
        faketime: Some(at),
    };
    let root = src.join("initial_root.json");
    for c in CLIENTS {
        let out = s.client(c, &["init", root.to_str().expect("UTF-8 path")]);
        assert_eq!(out.run.code(), 0, "{c:?} init: {}", out.run.stderr);
    }
    s.refresh(0);
    s.download(&[&target], 0);
    let stored = std::fs::read(
        s.dir(Client::Conclave, "targets")
            .join(quote_role_name(&target)),
    )
    .expect("downloaded target");
    assert!(!stored.is_empty());
    // Without faked time the same data has expired: refused.
    let late = Scenario {
        faketime: None,
        ..s
    };
    late.download(
        &[&target],
        if name == "sigstore-root-signing" {
            1
        } else {
            0
        },
    );
}

#[test]
fn static_sigstore_production_repository() {
    static_repository("sigstore-root-signing");
}

#[test]
fn static_tuf_on_ci_repository() {
    static_repository("tuf-on-ci-0.11");
}

/// An error is printed once with its causes, each once: a trusted root that does not parse
/// used to print the parse error three times ("X: X: X": `VerifyError::Load` embeds its cause
/// and the chain was printed again).
#[test]
fn an_error_names_its_cause_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metadata");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("root.json"),
        b"{\"signed\": {\"_type\": \"root\"}, \"signed\": 1}",
    )
    .unwrap();
    let mut cmd = Command::new(CLIENT);
    cmd.arg("--metadata-dir")
        .arg(&dir)
        .args(["--metadata-url", "http://127.0.0.1:9/", "refresh"]);
    let run = run_with_timeout(&mut cmd, b"", Duration::from_secs(60));
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let line = run.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert_eq!(line.matches("duplicate").count(), 1, "{line}");
    assert!(line.starts_with("conclave-conformance-client: "), "{line}");
}
