//! publish-targets end to end: after a bootstrap on practice tokens (`conclave rehearse
//! --headless`), the ceremony publishes sigstore's `trusted_root.json` (the real file, from
//! tests/data) and a `signing_config.v0.2.json` with their `custom` fields, and delegates
//! `registry.npmjs.org` to an online key (`x-tuf-on-ci-online-uri`), as sigstore's production
//! repository does. The registry's connected side is played by the test: it builds the
//! repository from the export (every root, the new targets, the exported `targets/` folder),
//! signs the delegated role with the online key and snapshot and timestamp with the online keys
//! imported at the bootstrap (test keys here, software signers), and serves it on 127.0.0.1.
//! @sigstore/tuf 4.0.2 (tests/js, `make js-clients`) and python-tuf 7.0.1's ngclient (the venv)
//! then fetch the files, and get exactly their bytes. Hostile manifests are refused with the
//! file and field named.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::publish::{
    js_dir, online_key_json, online_keys, online_role, put_manifest, rehearse, rehearse_with,
    serve, signer,
};
use conclave::signer::Signer;
use conclave::signer::software::SoftwareSigner;
use conclave::tuf::edit;
use conclave::tuf::key::Algorithm;
use conclave::tuf::metadata::{Metadata, Targets};
use time::OffsetDateTime;
use time::macros::datetime;

const EXPIRES: OffsetDateTime = datetime!(2035-01-01 0:00 UTC);
const NPM_URI: &str = "gcpkms://projects/example/locations/global/keyRings/tuf/cryptoKeys/npm";
const NPM_TARGET: &str = "registry.npmjs.org/keys.json";
const NPM_CONTENT: &[u8] = b"{\"keys\": []}\n";
const SIGNING_CONFIG: &[u8] = br#"{
  "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
  "caUrls": [{"url": "https://fulcio.sigstore.dev", "majorApiVersion": 1, "validFor": {"start": "2023-04-14T21:38:40Z"}, "operator": "sigstore.dev"}],
  "rekorTlogUrls": [{"url": "https://rekor.sigstore.dev", "majorApiVersion": 1, "validFor": {"start": "2021-01-12T11:53:27Z"}, "operator": "sigstore.dev"}],
  "rekorTlogConfig": {"selector": "ANY"}
}
"#;

/// A workspace after a bootstrap on practice tokens, with the online keys `s` and `t`.
fn bootstrapped(dir: &Path, s: &SoftwareSigner, t: &SoftwareSigner) -> PathBuf {
    let ws = dir.join("ws");
    std::fs::create_dir_all(ws.join("input")).unwrap();
    std::fs::write(ws.join("input/online-keys.json"), online_keys(s, t)).unwrap();
    let run = rehearse(&ws, "bootstrap-root");
    assert_eq!(run.code(), 0, "bootstrap-root: {run:?}");
    ws
}

fn trusted_root_json() -> Vec<u8> {
    std::fs::read(common::manifest_dir().join(
        "tests/data/vectors/tuf-conformance-static/sigstore-root-signing/targets/f44a1b88128e55ebfb62189becbc0fa48d4ec9915c65ac54ba0e46a008b12d5b.trusted_root.json",
    ))
    .unwrap()
}

#[test]
fn published_target_files_reach_sigstore_tuf_and_python_tuf_byte_for_byte() {
    assert!(
        js_dir()
            .join("node_modules/@sigstore/tuf/package.json")
            .exists(),
        "the npm clients are missing: run `make js-clients`"
    );
    let tmp = tempfile::tempdir().unwrap();
    let (mut s, mut t) = (
        signer(Algorithm::Ed25519, 51),
        signer(Algorithm::Ed25519, 52),
    );
    let mut npm = signer(Algorithm::EcdsaP256, 53);
    let ws = bootstrapped(tmp.path(), &s, &t);
    let trusted_root = trusted_root_json();
    let manifest = format!(
        r#"{{
  "_type": "conclave-publish-targets",
  "targets": [
    {{"path": "trusted_root.json", "action": "add", "custom": {{"sigstore": {{"status": "Active", "usage": "Unknown"}}}}}},
    {{"path": "signing_config.v0.2.json", "action": "add", "custom": {{"sigstore": {{"status": "Active", "usage": "Unknown"}}}}}}
  ],
  "delegation": {{"name": "registry.npmjs.org", "paths": ["registry.npmjs.org/*"], "terminating": true, "threshold": 1, "keys": [{}]}}
}}"#,
        online_key_json(&npm, NPM_URI)
    );
    put_manifest(
        &ws,
        &manifest,
        &[
            ("trusted_root.json", &trusted_root),
            ("signing_config.v0.2.json", SIGNING_CONFIG),
        ],
    );
    let run = rehearse(&ws, "publish-targets");
    assert_eq!(run.code(), 0, "publish-targets: {run:?}");
    // The review showed every file with its length, SHA-256 and custom, and the online key.
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(&trusted_root));
    for want in [
        format!(
            "+ add trusted_root.json: {} bytes, sha256 {digest}, custom {{\"sigstore\":{{\"status\":\"Active\",\"usage\":\"Unknown\"}}}}",
            trusted_root.len()
        ),
        format!(
            "+ add signing_config.v0.2.json: {} bytes, sha256 {}",
            SIGNING_CONFIG.len(),
            hex::encode(sha2::Sha256::digest(SIGNING_CONFIG))
        ),
        "+ delegation \"registry.npmjs.org\": paths [\"registry.npmjs.org/*\"], threshold 1 of 1, terminating".to_string(),
        format!("at {NPM_URI}"),
    ] {
        assert!(run.stdout.contains(&want), "review lacks {want}: {}", run.stdout);
    }

    // The registry's connected side: the repository from the export.
    let export = ws.join("export");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::copy(export.join("1.root.json"), repo.join("1.root.json")).unwrap();
    let targets_bytes = std::fs::read(export.join("2.targets.json")).unwrap();
    std::fs::write(repo.join("2.targets.json"), &targets_bytes).unwrap();
    common::copy_dir(&export.join("targets"), &repo.join("targets"));
    assert!(
        repo.join(format!("targets/{digest}.trusted_root.json"))
            .exists(),
        "the export lays the file out by its consistent-snapshot name"
    );
    let targets = Metadata::<Targets>::from_bytes(&targets_bytes).unwrap();
    let entry = targets.signed().target("trusted_root.json").unwrap();
    assert_eq!(entry.length, trusted_root.len() as u64);
    // The online-signed role: its first version, signed by the online key.
    let npm_role = online_role(
        targets.signed(),
        "registry.npmjs.org",
        &mut npm,
        &[(NPM_TARGET, NPM_CONTENT)],
        EXPIRES,
    );
    std::fs::write(repo.join("1.registry.npmjs.org.json"), npm_role).unwrap();
    let npm_digest = hex::encode(sha2::Sha256::digest(NPM_CONTENT));
    std::fs::create_dir_all(repo.join("targets/registry.npmjs.org")).unwrap();
    std::fs::write(
        repo.join(format!("targets/registry.npmjs.org/{npm_digest}.keys.json")),
        NPM_CONTENT,
    )
    .unwrap();
    // Snapshot and timestamp by the online keys the bootstrap imported.
    let mut snapshot = Metadata::new(edit::new_snapshot(
        1,
        EXPIRES,
        &[
            ("targets".to_string(), 2),
            ("registry.npmjs.org".to_string(), 1),
        ],
    ));
    conclave::signer::sign_metadata(&mut snapshot, &mut s).unwrap();
    let snapshot_bytes = snapshot.to_file_bytes();
    std::fs::write(repo.join("1.snapshot.json"), &snapshot_bytes).unwrap();
    let mut timestamp = Metadata::new(edit::new_timestamp(1, EXPIRES, 1, &snapshot_bytes));
    conclave::signer::sign_metadata(&mut timestamp, &mut t).unwrap();
    std::fs::write(repo.join("timestamp.json"), timestamp.to_file_bytes()).unwrap();

    // @sigstore/tuf: initTUF from root v1, getTarget returns the files' bytes.
    let mut cmd = Command::new("node");
    cmd.arg(js_dir().join("get-target.js"))
        .arg(&repo)
        .arg(repo.join("1.root.json"))
        .args(["trusted_root.json", "signing_config.v0.2.json", NPM_TARGET]);
    let js = common::run_with_timeout(&mut cmd, b"", Duration::from_secs(120));
    let out: serde_json::Value = serde_json::from_str(js.stdout.trim())
        .unwrap_or_else(|_| panic!("@sigstore/tuf did not run: {js:?}"));
    assert_eq!(out["ok"], true, "@sigstore/tuf refused: {js:?}");
    assert_eq!(
        out["targets"]["trusted_root.json"]
            .as_str()
            .unwrap()
            .as_bytes(),
        trusted_root.as_slice()
    );
    assert_eq!(
        out["targets"]["signing_config.v0.2.json"]
            .as_str()
            .unwrap()
            .as_bytes(),
        SIGNING_CONFIG
    );
    assert_eq!(
        out["targets"][NPM_TARGET].as_str().unwrap().as_bytes(),
        NPM_CONTENT
    );

    // python-tuf's ngclient downloads the published target too.
    let meta = tmp.path().join("py-metadata");
    let init = common::run_python(
        "ngclient_cli.py",
        &[
            "--metadata-dir",
            meta.to_str().unwrap(),
            "init",
            repo.join("1.root.json").to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(init.code(), 0, "{init:?}");
    let base = serve(repo.clone());
    let tdir = tmp.path().join("py-targets");
    let (metadata_url, target_url) = (format!("{base}/"), format!("{base}/targets/"));
    let run = common::run_python(
        "ngclient_cli.py",
        &[
            "--metadata-dir",
            meta.to_str().unwrap(),
            "--metadata-url",
            &metadata_url,
            "--target-base-url",
            &target_url,
            "--target-dir",
            tdir.to_str().unwrap(),
            "--target-name",
            "trusted_root.json",
            "--target-name",
            "signing_config.v0.2.json",
            "--target-name",
            NPM_TARGET,
            "download",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(run.code(), 0, "python-tuf refused: {run:?}");
    assert_eq!(
        std::fs::read(tdir.join("trusted_root.json")).unwrap(),
        trusted_root
    );
    assert_eq!(
        std::fs::read(tdir.join("registry.npmjs.org%2Fkeys.json")).unwrap(),
        NPM_CONTENT
    );

    // A later ceremony replaces one file and removes the other: the review shows what each
    // replaces, the new targets lists the new bytes and no longer the removed path.
    std::fs::remove_dir_all(ws.join("input/publish-targets")).unwrap();
    let replaced =
        b"{\"mediaType\": \"application/vnd.dev.sigstore.trustedroot+json;version=0.1\"}\n";
    put_manifest(
        &ws,
        r#"{"_type": "conclave-publish-targets", "targets": [
  {"path": "trusted_root.json", "action": "replace", "custom": {"sigstore": {"status": "Active", "usage": "Unknown"}}},
  {"path": "signing_config.v0.2.json", "action": "remove"}]}"#,
        &[("trusted_root.json", replaced)],
    );
    // The same command reports the finished one; another is asked for with --new.
    let run = rehearse(&ws, "publish-targets");
    assert_eq!(run.code(), 0, "publish-targets again: {run:?}");
    assert!(
        run.stdout
            .contains("already complete and sealed; nothing was changed")
            && run.stdout.contains("the same command with --new"),
        "{run:?}"
    );
    let run = rehearse_with(&ws, "publish-targets", &["--new"]);
    assert_eq!(run.code(), 0, "second publish-targets: {run:?}");
    assert!(
        run.stdout.contains(&format!(
            "~ replace trusted_root.json: {} bytes",
            replaced.len()
        )) && run.stdout.contains(&format!(
            "was {} bytes, sha256 {digest}",
            trusted_root.len()
        )) && run
            .stdout
            .contains("- remove signing_config.v0.2.json: was"),
        "{}",
        run.stdout
    );
    let v3 =
        Metadata::<Targets>::from_bytes(&std::fs::read(export.join("3.targets.json")).unwrap())
            .unwrap();
    assert_eq!(
        v3.signed().target("trusted_root.json").unwrap().length,
        replaced.len() as u64
    );
    assert!(v3.signed().target("signing_config.v0.2.json").is_none());
    assert!(
        export
            .join(format!(
                "targets/{}.trusted_root.json",
                hex::encode(sha2::Sha256::digest(replaced))
            ))
            .exists()
    );
}

/// A hostile manifest: name, manifest text, files (target path, bytes), the error expected.
type HostileCase = (
    &'static str,
    String,
    Vec<(&'static str, Vec<u8>)>,
    &'static str,
);

#[test]
fn hostile_manifests_are_refused_naming_the_file_and_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, t) = (
        signer(Algorithm::Ed25519, 61),
        signer(Algorithm::Ed25519, 62),
    );
    let base = bootstrapped(tmp.path(), &s, &t);
    let head = r#"{"_type": "conclave-publish-targets", "targets": ["#;
    let cases: Vec<HostileCase> = vec![
        (
            "traversal",
            format!(r#"{head}{{"path": "../../etc/passwd", "action": "add"}}]}}"#),
            vec![],
            "publish-targets/manifest.json: $.targets[0].path: the target path \"../../etc/passwd\" has an empty, \".\" or \"..\" part",
        ),
        (
            "custom not an object",
            format!(r#"{head}{{"path": "a.json", "action": "add", "custom": "Active"}}]}}"#),
            vec![("a.json", b"{}".to_vec())],
            "publish-targets/manifest.json: $.targets[0].custom (a.json): expected a JSON object, found string",
        ),
        (
            "missing file",
            format!(r#"{head}{{"path": "gone.json", "action": "add"}}]}}"#),
            vec![],
            "publish-targets/manifest.json: $.targets[0] (gone.json): the file publish-targets/files/gone.json is not on the input media",
        ),
        (
            "huge file",
            format!(r#"{head}{{"path": "big.bin", "action": "add"}}]}}"#),
            vec![],
            "publish-targets/manifest.json: $.targets[0] (big.bin): the file is 4194305 bytes, more than max_target_bytes (4194304)",
        ),
        (
            "a link out of the files folder",
            format!(r#"{head}{{"path": "linked.json", "action": "add"}}]}}"#),
            vec![],
            "publish-targets/manifest.json: $.targets[0] (linked.json): ",
        ),
        (
            "replace of a path not listed",
            format!(r#"{head}{{"path": "a.json", "action": "replace"}}]}}"#),
            vec![("a.json", b"{}".to_vec())],
            "publish-targets/manifest.json: $.targets[0].action: \"a.json\" is not listed in targets",
        ),
        (
            "online key without its URI",
            format!(
                r#"{{"_type": "conclave-publish-targets", "delegation": {{"name": "npm", "paths": ["npm/*"], "threshold": 1, "keys": [{}]}}}}"#,
                signer(Algorithm::EcdsaP256, 63)
                    .key()
                    .to_value()
                    .to_pretty_json()
            ),
            vec![],
            "publish-targets/manifest.json: $.delegation.keys[0].x-tuf-on-ci-online-uri",
        ),
    ];
    for (i, (name, manifest, files, want)) in cases.into_iter().enumerate() {
        let ws = tmp.path().join(format!("case-{i}"));
        common::copy_dir(&base, &ws);
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (*p, b.as_slice())).collect();
        put_manifest(&ws, &manifest, &refs);
        if name == "a link out of the files folder" {
            let secret = tmp.path().join(format!("secret-{i}"));
            std::fs::write(&secret, b"not for publishing").unwrap();
            std::os::unix::fs::symlink(&secret, ws.join("input/publish-targets/files/linked.json"))
                .unwrap();
        }
        if name == "huge file" {
            // One byte over the default limit (a sparse file: never read).
            let f = std::fs::File::create(ws.join("input/publish-targets/files/big.bin")).unwrap();
            f.set_len(4 * 1024 * 1024 + 1).unwrap();
        }
        let run = rehearse(&ws, "publish-targets");
        assert_ne!(run.code(), 0, "{name}: accepted: {run:?}");
        let text = format!("{}{}", run.stdout, run.stderr);
        assert!(text.contains(want), "{name}: expected {want:?} in:\n{text}");
        if name == "a link out of the files folder" {
            assert!(
                text.contains("leads out of publish-targets/files (a symbolic link): refused"),
                "{text}"
            );
        }
        assert!(
            !ws.join("export/2.targets.json").exists(),
            "{name}: nothing is exported"
        );
    }
}
