//! Process hardening and the no-network property, checked from outside the process.

use std::path::Path;
use std::process::Command;

fn conclave() -> Command {
    Command::new(env!("CARGO_BIN_EXE_conclave"))
}

#[test]
fn selfcheck_reports_core_dumps_off_and_not_dumpable() {
    let out = conclave().arg("selfcheck").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("core dumps off: yes"), "{text}");
    assert!(text.contains("process not dumpable: yes"), "{text}");
    // This test machine has a network: the check must say so (exit 1), never hide it.
    let airgapped = text.contains("air-gapped: yes");
    assert_eq!(
        out.status.code(),
        Some(if airgapped { 0 } else { 1 }),
        "{text}"
    );
}

/// Network sockets (other than AF_UNIX and AF_NETLINK) and non-local connects in an strace log.
fn network_calls(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            let socket = l.contains("socket(") || l.contains("socketpair(");
            let connect = l.contains("connect(");
            (socket && !(l.contains("AF_UNIX") || l.contains("AF_NETLINK")))
                || (connect && !l.contains("AF_UNIX"))
        })
        .filter(|l| !l.contains("resumed>") || l.contains("AF_"))
        .map(str::to_string)
        .collect()
}

fn strace(args: &[&str], log: &Path) -> std::process::ExitStatus {
    Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=socket,socketpair,connect", "-o"])
        .arg(log)
        .args(args)
        .output()
        .expect("strace is installed by `make test` (deb-deps)")
        .status
}

#[test]
fn a_whole_practice_ceremony_opens_no_network_socket() {
    let tmp = tempfile::tempdir().unwrap();
    // Control: the same tracing sees a program that does open an internet socket.
    let control = tmp.path().join("control.log");
    strace(
        &[
            "python3",
            "-c",
            "import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM)",
        ],
        &control,
    );
    let seen = network_calls(&std::fs::read_to_string(&control).unwrap());
    assert!(
        seen.iter().any(|l| l.contains("AF_INET")),
        "the strace check cannot see sockets: {seen:?}"
    );
    // The ceremony: tokens, keys, signatures, transcript, export, seal, self-verification.
    let log = tmp.path().join("ceremony.log");
    let ws = tmp.path().join("ws");
    let bin = env!("CARGO_BIN_EXE_conclave");
    let status = strace(
        &[
            bin,
            "rehearse",
            "--headless",
            "--workspace",
            ws.to_str().unwrap(),
        ],
        &log,
    );
    assert!(status.success(), "the ceremony failed under strace");
    assert!(ws.join("export/1.root.json").exists());
    let text = std::fs::read_to_string(&log).unwrap();
    let calls = network_calls(&text);
    assert!(calls.is_empty(), "network system calls: {calls:#?}");
}

/// Whether this test process could lock all its memory (CAP_IPC_LOCK or no memlock limit):
/// the conclave it starts inherits both.
fn can_lock_memory() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let cap_ipc_lock = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|c| c & (1 << 14) != 0);
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let unlimited = limits
        .lines()
        .any(|l| l.starts_with("Max locked memory") && l.contains("unlimited"));
    cap_ipc_lock || unlimited
}

#[test]
fn selfcheck_reports_memory_locked_or_warns_why_not() {
    let out = conclave().arg("selfcheck").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    if can_lock_memory() {
        assert!(
            text.contains("memory locked (mlockall, no swap): yes"),
            "{text}"
        );
        assert!(!err.contains("memory not locked"), "{err}");
    } else {
        assert!(
            text.contains("memory locked (mlockall, no swap): NO"),
            "{text}"
        );
        assert!(err.contains("warning: memory not locked"), "{err}");
    }
}

#[test]
fn without_the_right_to_lock_memory_every_command_warns_and_selfcheck_fails() {
    // setpriv drops CAP_IPC_LOCK, prlimit sets a 64 KiB memlock limit: mlockall would make later
    // allocations fail, so conclave must not lock, and must say so on stderr.
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-ipc_lock", "--inh-caps", "-ipc_lock"])
        .args(["prlimit", "--memlock=65536:65536"])
        .arg(env!("CARGO_BIN_EXE_conclave"))
        .arg("selfcheck")
        .output()
        .expect("setpriv and prlimit (util-linux) are installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("memory locked (mlockall, no swap): NO"),
        "{text}"
    );
    assert!(
        err.contains(
            "conclave: warning: memory not locked: RLIMIT_MEMLOCK is 64 KiB and the process \
             lacks CAP_IPC_LOCK"
        ),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    // The other commands still run, with the same warning.
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-ipc_lock", "--inh-caps", "-ipc_lock"])
        .args(["prlimit", "--memlock=65536:65536"])
        .arg(env!("CARGO_BIN_EXE_conclave"))
        .args(["ceremony", "check", "ceremony-scripts/bootstrap-root.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: memory not locked"));
    // `verify` and `inspect` read only public metadata: they do not lock memory, so they have
    // nothing to warn about.
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-ipc_lock", "--inh-caps", "-ipc_lock"])
        .args(["prlimit", "--memlock=65536:65536"])
        .arg(env!("CARGO_BIN_EXE_conclave"))
        .args([
            "verify",
            "--trusted-root",
            "/nonexistent/1.root.json",
            "--repo",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent"), "{err}");
    assert!(!err.contains("memory not locked"), "{err}");
}

#[test]
fn proxy_variables_are_scrubbed_at_start_and_named_by_selfcheck() {
    let out = conclave()
        .arg("selfcheck")
        .env("http_proxy", "http://proxy.invalid:3128")
        .env(
            "HTTPS_PROXY",
            "http://secret-user:secret-pass@proxy.invalid:3128",
        )
        .env("ALL_PROXY", "socks5://proxy.invalid:1080")
        .env("no_proxy", "localhost")
        .env("FTP_PROXY", "http://proxy.invalid:21")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "proxy variables scrubbed from the environment: ALL_PROXY, FTP_PROXY, HTTPS_PROXY, \
             http_proxy, no_proxy"
        ),
        "{text}"
    );
    assert!(
        text.contains("proxy variables left in the environment: none"),
        "{text}"
    );
    // Names only: a proxy URL can carry credentials.
    assert!(
        !text.contains("secret-pass") && !text.contains("proxy.invalid"),
        "{text}"
    );
    // Without any, selfcheck says so.
    let out = conclave()
        .arg("selfcheck")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env_remove("no_proxy")
        .env_remove("NO_PROXY")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let inherited: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.to_ascii_lowercase().ends_with("_proxy") && k.len() > 6)
        .filter(|k| {
            ![
                "http_proxy",
                "https_proxy",
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "ALL_PROXY",
                "all_proxy",
                "no_proxy",
                "NO_PROXY",
            ]
            .contains(&k.as_str())
        })
        .collect();
    if inherited.is_empty() {
        assert!(
            text.contains("proxy variables scrubbed from the environment: none"),
            "{text}"
        );
    }
}
