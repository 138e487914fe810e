//! What a registry's connected side does with a ceremony's export, played by the tests that give
//! published repositories to real clients (tests/client_gate.rs, tests/publish_targets.rs):
//! practice ceremonies, publish-targets' input media, serving a repository on 127.0.0.1, laying
//! target files out under every name a client asks for, and signing a role delegated to an
//! online key (test keys, software signers).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use conclave::signer::Signer;
use conclave::signer::software::SoftwareSigner;
use conclave::tuf::canonical::Value;
use conclave::tuf::edit;
use conclave::tuf::key::Algorithm;
use conclave::tuf::metadata::{Metadata, Targets};
use time::OffsetDateTime;

/// A software signer from a one-byte seed (test keys).
pub fn signer(alg: Algorithm, seed: u8) -> SoftwareSigner {
    SoftwareSigner::from_seed(alg, &[seed; 48]).expect("valid seed")
}

/// `conclave rehearse --headless --script SCRIPT --workspace WS` (practice tokens).
pub fn rehearse(ws: &Path, script: &str) -> super::Run {
    rehearse_with(ws, script, &[])
}

/// [`rehearse`] with more arguments (`--new`: another ceremony of a script done before).
pub fn rehearse_with(ws: &Path, script: &str, more: &[&str]) -> super::Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conclave"));
    cmd.args(["rehearse", "--headless", "--script", script, "--workspace"])
        .arg(ws)
        .args(more);
    super::run_with_timeout(&mut cmd, b"", Duration::from_secs(600))
}

/// The online keys file (`input/online-keys.json` or `online-keys-for-root-vN.json`).
pub fn online_keys(snapshot: &SoftwareSigner, timestamp: &SoftwareSigner) -> String {
    format!(
        "{{\"snapshot\": {}, \"timestamp\": {}}}",
        snapshot.key().to_value().to_pretty_json(),
        timestamp.key().to_value().to_pretty_json()
    )
}

/// The npm clients' folder (tests/js, `make js-clients`).
pub fn js_dir() -> PathBuf {
    super::manifest_dir().join("tests/js")
}

/// Puts publish-targets' manifest and its files (target path, bytes) on the workspace's input
/// media (`input/publish-targets/`).
pub fn put_manifest(ws: &Path, manifest: &str, files: &[(&str, &[u8])]) {
    let dir = ws.join("input/publish-targets");
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(dir.join("manifest.json"), manifest).unwrap();
    for (path, bytes) in files {
        let p = dir.join("files").join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// The TUF key object of `online` with its `x-tuf-on-ci-online-uri`, as a publish-targets
/// manifest delegates to it.
pub fn online_key_json(online: &SoftwareSigner, uri: &str) -> String {
    let mut key = online.key().to_value();
    if let Value::Object(m) = &mut key {
        m.insert("x-tuf-on-ci-online-uri".into(), Value::String(uri.into()));
    }
    key.to_pretty_json()
}

/// The first version of the role `name` that `targets` delegates to the online key `online`,
/// listing `files` (path, bytes), signed under the key id targets delegates to (the hash of the
/// whole key object, its `x-tuf-on-ci-online-uri` included). Returns the file's bytes.
pub fn online_role(
    targets: &Targets,
    name: &str,
    online: &mut SoftwareSigner,
    files: &[(&str, &[u8])],
    expires: OffsetDateTime,
) -> Vec<u8> {
    let mut role = edit::new_targets(expires);
    for (path, bytes) in files {
        edit::set_target(&mut role, path, edit::target_file(bytes, None)).unwrap();
    }
    let mut role = Metadata::new(role);
    let delegations = targets.delegations.as_ref().expect("targets delegates");
    let id = &delegations
        .role_for(name)
        .unwrap_or_else(|| panic!("targets does not delegate {name}"))
        .keyids[0];
    let sig = online.sign(role.signed_bytes()).unwrap();
    role.add_signature(id.clone(), &sig);
    role.to_file_bytes()
}

/// A target under every name the clients ask for: the plain path, python-tuf's and tuf-js's
/// consistent-snapshot name `DIR/HASH.NAME`, and tough's `HASH.PATH`.
pub fn put_target(repo: &Path, path: &str, bytes: &[u8]) {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(bytes));
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    let names = [
        path.to_string(),
        if parent.is_empty() {
            format!("{digest}.{name}")
        } else {
            format!("{parent}/{digest}.{name}")
        },
        format!("{digest}.{path}"),
    ];
    for n in names {
        let p = repo.join("targets").join(n);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// Serves `dir` on 127.0.0.1 (GET only) from a thread until the test process ends; returns the
/// base URL.
pub fn serve(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Drain the headers.
            let mut h = String::new();
            while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                h.clear();
            }
            let rel = line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            let ok = !rel.split('/').any(|p| p == ".." || p.is_empty());
            let body = if ok {
                std::fs::read(dir.join(&rel)).ok()
            } else {
                None
            };
            let _ = match body {
                Some(b) => stream
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            b.len()
                        )
                        .as_bytes(),
                    )
                    .and_then(|_| stream.write_all(&b)),
                None => stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
        }
    });
    format!("http://127.0.0.1:{port}")
}
