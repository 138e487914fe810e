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
