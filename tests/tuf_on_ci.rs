//! tuf-on-ci signing events signed offline (issue 21 part 1), against tuf-on-ci's own signing
//! tools: `tuf-on-ci-delegate` and `tuf-on-ci-sign` 0.21.0 from PyPI (`make tuf-on-ci-venv`,
//! found through `$CONCLAVE_TUF_ON_CI`, else `.venv-tuf-on-ci/bin`), with a git repository whose
//! remote is a local bare repository (no network) and a SoftHSM2 token whose P-384 key sits at
//! CKA_ID 02, as tuf-on-ci's own end-to-end test (`tests/e2e.sh`) sets up its "Yubikey".
//!
//! The scenario: @tuf-on-ci-u1 creates the repository (root and targets signed by the token
//! key, a sigstore-oidc online key for timestamp and snapshot, which Conclave cannot use);
//! @tuf-on-ci-u2, no keyholder, opens a signing event that changes root (expiry period 365 -> 200
//! days). Conclave reviews a copy of the event and signs it with u1's token; `conclave
//! tuf-on-ci apply` writes the signatures into the git checkout; after the commit
//! `tuf-on-ci-sign EVENT --no-push` as u1 says "Nothing to do." (before it, it asks for u1's
//! signature), and python-tuf verifies the new root by the known-good root and by itself, and
//! re-serialises both written files to the same bytes. Then hostile events are refused by file
//! and field before any PIN.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Run, manifest_dir, run_with_timeout};

const BIN: &str = env!("CARGO_BIN_EXE_conclave");
const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TIMEOUT: Duration = Duration::from_secs(120);
const EVENT: &str = "sign/root-expiry";

/// The folder with `tuf-on-ci-sign`, `tuf-on-ci-delegate` and the python that has them.
fn tools() -> PathBuf {
    let dir = match std::env::var_os("CONCLAVE_TUF_ON_CI") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => manifest_dir().join(".venv-tuf-on-ci").join("bin"),
    };
    let ok = Command::new(dir.join("tuf-on-ci-sign"))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("0.21.0"));
    assert!(
        matches!(ok, Ok(true)),
        "tuf-on-ci-sign 0.21.0 not found in {}: run `make tuf-on-ci-venv` or set CONCLAVE_TUF_ON_CI",
        dir.display()
    );
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// The whole world of one test: an upstream bare repository, two users' clones, u1's token.
struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    tools: PathBuf,
}

impl World {
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// A command with the world's environment: tuf-on-ci's tools first on PATH, HOME and the
    /// XDG folders inside the world (tuf-on-ci-sign's PyPI version check finds its cache fresh,
    /// so it never reaches the network), the user's softhsm2.conf.
    fn cmd(&self, program: &str, user: &str) -> Command {
        let mut c = Command::new(program);
        let path = format!(
            "{}:{}",
            self.tools.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env("PATH", path)
            .env("HOME", self.path("home"))
            .env("XDG_CACHE_HOME", self.path("home/cache"))
            .env("XDG_DATA_HOME", self.path("home/data"))
            .env("SOFTHSM2_CONF", self.path(&format!("{user}/softhsm2.conf")))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("PYKCS11LIB");
        c
    }

    fn run(&self, program: &str, user: &str, args: &[&str], dir: &Path, stdin: &str) -> Run {
        let mut c = self.cmd(program, user);
        c.args(args).current_dir(dir);
        run_with_timeout(&mut c, stdin.as_bytes(), TIMEOUT)
    }

    fn ok(&self, program: &str, user: &str, args: &[&str], dir: &Path, stdin: &str) -> Run {
        let r = self.run(program, user, args, dir, stdin);
        assert_eq!(r.code(), 0, "{program} {args:?} failed: {r:?}");
        r
    }

    fn git(&self, user: &str, args: &[&str]) -> Run {
        self.ok("git", user, args, &self.path(&format!("{user}/git")), "")
    }

    fn conclave(&self, args: &[&str], stdin: &str) -> Run {
        self.run(BIN, "u1", args, &self.root, stdin)
    }

    fn clone_of(&self, user: &str) -> PathBuf {
        self.path(&format!("{user}/git"))
    }
}

/// Up to the event on the upstream repository, and a copy of the event's and main's
/// `metadata/` on a "stick" for the offline side.
fn world() -> World {
    let tools = tools();
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().to_path_buf();
    let w = World {
        _tmp: tmp,
        root: root.clone(),
        tools,
    };
    let cache = w.path("home/cache/tuf-on-ci-sign");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("pypi_release_version"), "0.21.0").unwrap();
    let upstream = w.path("upstream.git");
    w.ok(
        "git",
        "u1",
        &[
            "init",
            "-q",
            "--bare",
            "--initial-branch=main",
            s(&upstream),
        ],
        &root,
        "",
    );
    for user in ["u1", "u2"] {
        let dir = w.path(user);
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        std::fs::write(
            dir.join("softhsm2.conf"),
            format!("directories.tokendir = {}\n", dir.join("tokens").display()),
        )
        .unwrap();
        w.ok("git", user, &["clone", "-q", s(&upstream), "git"], &dir, "");
        w.git(
            user,
            &["config", "user.email", &format!("{user}@example.com")],
        );
        w.git(user, &["config", "user.name", user]);
        w.git(user, &["config", "commit.gpgsign", "false"]);
        std::fs::write(
            w.clone_of(user).join(".tuf-on-ci-sign.ini"),
            format!(
                "[settings]\npykcs11lib = {SOFTHSM}\nuser-name = @tuf-on-ci-{user}\n\
                 push-remote = origin\npull-remote = origin\n"
            ),
        )
        .unwrap();
    }
    // A first commit on main, as tuf-on-ci's test makes one.
    std::fs::write(w.clone_of("u1").join(".dummy"), "").unwrap();
    w.git("u1", &["add", ".dummy"]);
    w.git("u1", &["commit", "-q", "-m", "init"]);
    w.git("u1", &["push", "-q", "origin", "main"]);
    w.git("u2", &["pull", "-q", "origin", "main"]);

    // u1's "Yubikey": a P-384 key imported into SoftHSM2 at CKA_ID 02, PIN 0000.
    let pem = w.path("u1/eckey.pem");
    w.ok(
        "openssl",
        "u1",
        &[
            "genpkey",
            "-out",
            s(&pem),
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:secp384r1",
            "-pkeyopt",
            "ec_param_enc:named_curve",
        ],
        &root,
        "",
    );
    let u1 = w.path("u1");
    w.ok(
        "softhsm2-util",
        "u1",
        &[
            "--init-token",
            "--slot",
            "0",
            "--label",
            "mytoken",
            "--so-pin",
            "0000",
            "--pin",
            "0000",
        ],
        &u1,
        "",
    );
    w.ok(
        "softhsm2-util",
        "u1",
        &[
            "--import",
            s(&pem),
            "--token",
            "mytoken",
            "--label",
            "mykey",
            "--id",
            "02",
            "--pin",
            "0000",
        ],
        &u1,
        "",
    );
    std::fs::remove_file(&pem).unwrap();

    // u1 creates the repository: root and targets by u1, the default sigstore online key;
    // choose "Yubikey", PIN for root and for targets.
    let c1 = w.clone_of("u1");
    w.ok(
        "tuf-on-ci-delegate",
        "u1",
        &["--no-push", "sign/init"],
        &c1,
        "\n\n\n2\n\n0000\n0000\n\n",
    );
    w.git("u1", &["checkout", "-q", "main"]);
    w.git("u1", &["merge", "-q", "--ff-only", "sign/init"]);
    w.git("u1", &["push", "-q", "origin", "main"]);

    // u2 (no key) proposes root's expiry period 200 days, signing period 30 days.
    let c2 = w.clone_of("u2");
    w.git("u2", &["pull", "-q", "origin", "main"]);
    w.ok(
        "tuf-on-ci-delegate",
        "u2",
        &["--no-push", EVENT, "root"],
        &c2,
        "2\n200\n30\n\n\n",
    );
    w.git("u2", &["push", "-q", "origin", EVENT]);

    // The offline copy: the event's metadata/ and main's.
    w.git("u2", &["checkout", "-q", EVENT]);
    common::copy_dir(&c2.join("metadata"), &w.path("stick/event"));
    w.git("u2", &["checkout", "-q", "main"]);
    common::copy_dir(&c2.join("metadata"), &w.path("stick/known-good"));
    w
}

fn review(w: &World, event: &Path) -> Run {
    w.conclave(
        &[
            "tuf-on-ci",
            "review",
            "--event",
            s(event),
            "--known-good",
            s(&w.path("stick/known-good")),
        ],
        "",
    )
}

fn sign(w: &World, event: &Path, out: &Path) -> Run {
    w.conclave(
        &[
            "tuf-on-ci",
            "sign",
            "--event",
            s(event),
            "--known-good",
            s(&w.path("stick/known-good")),
            "--module",
            SOFTHSM,
            "--key",
            "mykey",
            "--keyholder",
            "@tuf-on-ci-u1",
            "--pin-stdin",
            "--out",
            s(out),
        ],
        "0000\n",
    )
}

#[test]
fn conclave_signs_a_root_event_that_tuf_on_ci_then_accepts() {
    let w = world();
    let event = w.path("stick/event");

    // The stick's event folder as `usb import` lists it: root_history/ only with --sub-folders.
    let r = w.conclave(&["usb", "import", s(&event)], "");
    assert!(
        r.stdout.contains("refused root_history: is a folder"),
        "{r:?}"
    );
    let r = w.conclave(&["usb", "import", "--sub-folders", s(&event)], "");
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(!r.stdout.contains("refused"), "{r:?}");
    let line = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("root_history/2.root.json"))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(line.ends_with("root v2"), "{line}");

    // The review: the root change, the keyholder by handle, the online key Conclave cannot use.
    let r = review(&w, &event);
    assert_eq!(r.code(), 0, "{r:?}");
    for want in [
        "known-good root chain verified: v1 to v1",
        "root v2 (was v1) in root.json and root_history/2.root.json",
        "expiry period 200 days, signing period 30 days (was: expiry period 365 days, signing period 60 days)",
        "root: 1 of 1: @tuf-on-ci-u1 [ECDSA P-384]",
        "timestamp: 1 of 1: online key sigstore: [sigstore-oidc/Fulcio: a key type Conclave cannot use (never counted here)]",
        "all of tuf-on-ci's CI rules pass for 1 changed role(s)",
    ] {
        assert!(
            r.stdout.contains(want),
            "missing {want:?} in:\n{}",
            r.stdout
        );
    }

    // Before Conclave's signature, tuf-on-ci-sign wants u1's signature (no PIN given: it gives up).
    let c1 = w.clone_of("u1");
    w.git("u1", &["fetch", "-q", "origin"]);
    let before = w.run("tuf-on-ci-sign", "u1", &["--no-push", EVENT], &c1, "");
    assert!(
        before
            .stdout
            .contains("Your signature is requested for role(s) {'root'}"),
        "{before:?}"
    );
    assert!(!before.stdout.contains("Nothing to do."), "{before:?}");

    // Offline: sign with u1's token.
    let sigs = w.path("stick/signatures");
    let r = sign(&w, &event, &sigs);
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(
        r.stdout.contains(
            "root v2: known-good root v1: 1 of 1 keys signed, threshold 1 (threshold met)"
        ),
        "{}",
        r.stdout
    );
    let bundles: Vec<_> = std::fs::read_dir(&sigs).unwrap().collect();
    assert_eq!(bundles.len(), 1, "one role, one key id");

    // Connected side: write the signatures into the event's checkout, commit, push.
    w.git(
        "u1",
        &["checkout", "-q", "-B", EVENT, &format!("origin/{EVENT}")],
    );
    let r = w.conclave(
        &[
            "tuf-on-ci",
            "apply",
            "--event",
            s(&c1.join("metadata")),
            "--known-good",
            s(&w.path("stick/known-good")),
            s(&sigs),
        ],
        "",
    );
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(
        r.stdout
            .contains("root_history/2.root.json: signature by @tuf-on-ci-u1"),
        "{}",
        r.stdout
    );
    // Only the two signature lines changed.
    let diff = w.git("u1", &["diff", "--numstat"]).stdout;
    assert_eq!(
        diff.lines().collect::<Vec<_>>(),
        [
            "1\t1\tmetadata/root.json",
            "1\t1\tmetadata/root_history/2.root.json"
        ],
        "{diff}"
    );
    w.git("u1", &["add", "metadata"]);
    w.git(
        "u1",
        &["commit", "-q", "-m", "Signature from @tuf-on-ci-u1"],
    );
    w.git("u1", &["push", "-q", "origin", EVENT]);
    w.git("u1", &["checkout", "-q", "main"]);

    // tuf-on-ci-sign as u1: nothing left to do.
    let after = w.ok("tuf-on-ci-sign", "u1", &["--no-push", EVENT], &c1, "");
    assert!(after.stdout.contains("Nothing to do."), "{after:?}");

    // python-tuf (with tuf-on-ci's key types registered): the new root verifies by the
    // known-good root and by itself, and both files are byte for byte what JSONSerializer writes.
    w.git("u1", &["checkout", "-q", EVENT]);
    python_verifies_root_v2(&w, "u1", &c1, &w.path("stick/known-good/root.json"));
}

/// Edit the event's root.json (and its root_history copy) as JSON.
fn edit_root(event: &Path, f: impl Fn(&mut serde_json::Value)) {
    let p = event.join("root.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    let bytes = serde_json::to_vec_pretty(&v).unwrap();
    std::fs::write(&p, &bytes).unwrap();
    std::fs::write(event.join("root_history/2.root.json"), &bytes).unwrap();
}

#[test]
fn hostile_events_are_refused_by_file_and_field_before_any_pin() {
    let w = world();
    let good = w.path("stick/event");
    let case = |name: &str| {
        let dir = w.path(&format!("stick/{name}"));
        common::copy_dir(&good, &dir);
        dir
    };

    // Root version +2, consistent_snapshot off, expiry beyond the period, and an owner name
    // with a terminal escape (which also breaks the key id).
    let bad = case("bad-root");
    edit_root(&bad, |v| {
        v["signed"]["version"] = 3.into();
        v["signed"]["consistent_snapshot"] = false.into();
        v["signed"]["expires"] = "2099-01-01T00:00:00Z".into();
        let keys = v["signed"]["keys"].as_object_mut().unwrap();
        for k in keys.values_mut() {
            if k.get("x-tuf-on-ci-keyowner").is_some() {
                k["x-tuf-on-ci-keyowner"] = "\u{1b}[2J@evil".into();
            }
        }
    });
    let r = review(&w, &bad);
    assert_eq!(r.code(), 1, "{r:?}");
    let file = format!("{}/root.json", bad.display());
    for want in [
        format!(
            "{file}: $.signed.version: root version 3 after known-good version 1: must be exactly 2"
        ),
        format!("{file}: $.signed.consistent_snapshot: must be true"),
        format!(
            "{file}: $.signed.expires: 2099-01-01T00:00:00Z is later than now + the expiry period of 200 days"
        ),
        "key id is not the SHA-256 of the canonical key with its custom fields".to_string(),
        "\\x1b[2J@evil".to_string(),
    ] {
        assert!(
            r.stdout.contains(&want),
            "missing {want:?} in:\n{}",
            r.stdout
        );
    }
    assert!(
        !r.stdout.contains('\u{1b}'),
        "a raw escape reached the terminal"
    );

    // Signing it is refused before the token is touched: no PIN is read.
    let r = sign(&w, &bad, &w.path("stick/out-bad"));
    assert_eq!(r.code(), 1, "{r:?}");
    assert!(r.stderr.contains("no PIN was asked"), "{r:?}");
    assert!(!w.path("stick/out-bad").exists());

    // An open invite in .signing-event-state.
    let invited = case("invited");
    std::fs::write(
        invited.join(".signing-event-state"),
        r#"{"invites": {"@tuf-on-ci-u2": ["root"]}}"#,
    )
    .unwrap();
    let r = review(&w, &invited);
    assert_eq!(r.code(), 1, "{r:?}");
    let want = format!(
        "{}/.signing-event-state: $.invites[\"@tuf-on-ci-u2\"]: open invite for @tuf-on-ci-u2 to sign root",
        invited.display()
    );
    assert!(
        r.stdout.contains(&want),
        "missing {want:?} in:\n{}",
        r.stdout
    );

    // A root_history copy that differs from root.json.
    let split = case("split");
    let h = split.join("root_history/2.root.json");
    let mut bytes = std::fs::read(&h).unwrap();
    bytes.push(b'\n');
    std::fs::write(&h, bytes).unwrap();
    let r = review(&w, &split);
    assert_eq!(r.code(), 1, "{r:?}");
    let want = format!("{}: -: not a byte-identical copy of root.json", h.display());
    assert!(
        r.stdout.contains(&want),
        "missing {want:?} in:\n{}",
        r.stdout
    );

    // The connected side refuses a bundle for other content and leaves the files alone.
    let sigs = w.path("stick/signatures");
    assert_eq!(sign(&w, &good, &sigs).code(), 0);
    let other = case("other");
    edit_root(&other, |v| {
        v["signed"]["x-tuf-on-ci-signing-period"] = 31.into()
    });
    let before = std::fs::read(other.join("root.json")).unwrap();
    let r = w.conclave(&["tuf-on-ci", "apply", "--event", s(&other), s(&sigs)], "");
    assert_eq!(r.code(), 1, "{r:?}");
    assert!(r.stderr.contains("no file changed; refused:"), "{r:?}");
    assert!(
        r.stderr
            .contains("$.signed_sha256: no file of the event has signed bytes with SHA-256"),
        "{r:?}"
    );
    assert_eq!(std::fs::read(other.join("root.json")).unwrap(), before);
}

/// Sigstore's real production metadata (roots v1 to v12, targets v11, the npm delegation, as a
/// client saw them on 2025-02-09) laid out as tuf-on-ci keeps it, as the known-good state; the
/// event changes targets (one file added, one removed, version 12). The review names sigstore's
/// keyholders by handle, the threshold 3 of 5, the expiry against the 3650-day period and the
/// target changes, and every CI rule passes.
#[test]
fn sigstore_production_metadata_as_known_good_shows_a_correct_review() {
    use conclave::tuf::tuf_on_ci::{MetadataFolder, review_event};
    let dir = manifest_dir()
        .join("tests/data/vectors/tuf-conformance-static/sigstore-root-signing/metadata");
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let mut files = vec![
        ("root.json".to_string(), read("12.root.json")),
        ("targets.json".to_string(), read("11.targets.json")),
        (
            "registry.npmjs.org.json".to_string(),
            read("5.registry.npmjs.org.json"),
        ),
    ];
    for n in 1..=12 {
        files.push((
            format!("root_history/{n}.root.json"),
            read(&format!("{n}.root.json")),
        ));
    }
    let known_good = MetadataFolder {
        label: "main/metadata".into(),
        files: files.clone(),
    };
    let mut t: serde_json::Value = serde_json::from_slice(&read("11.targets.json")).unwrap();
    let roles = serde_json::from_slice::<serde_json::Value>(&read("12.root.json")).unwrap()
        ["signed"]["roles"]["targets"]["keyids"]
        .clone();
    t["signatures"] = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|k| serde_json::json!({"keyid": k, "sig": ""}))
        .collect();
    t["signed"]["version"] = 12.into();
    t["signed"]["expires"] = "2034-12-01T00:00:00Z".into();
    let targets = t["signed"]["targets"].as_object_mut().unwrap();
    targets.remove("ctfe.pub");
    targets.insert(
        "ctfe_2025.pub".into(),
        serde_json::json!({"length": 178, "hashes": {"sha256": "ab".repeat(32)},
            "custom": {"sigstore": {"status": "Active", "usage": "CTFE"}}}),
    );
    let mut event_files = files;
    event_files[1].1 = serde_json::to_vec_pretty(&t).unwrap();
    let event = MetadataFolder {
        label: "event/metadata".into(),
        files: event_files,
    };
    let at = time::macros::datetime!(2025-02-09 12:02:08 UTC);
    let r = review_event(&event, &known_good, at).expect("known good verifies");
    assert!(r.failures.is_empty(), "{}", r.text);
    assert_eq!(r.known_good_root, 12);
    assert_eq!(r.changed.len(), 1, "{}", r.text);
    for want in [
        "known-good root chain verified: v1 to v12 (root_history/), root.json is v12",
        "targets v12 (was v11) in targets.json",
        "expires 2034-12-01T00:00:00Z (3581 days from now); expiry period 3650 days, signing period 31 days",
        "  + target ctfe_2025.pub (178 bytes, sha256 abababab",
        "custom {\"sigstore\":{\"status\":\"Active\",\"usage\":\"CTFE\"}})",
        "  - target ctfe.pub (",
        "  delegation registry.npmjs.org: 1 of 1: online key",
        "signatures for the targets role of root v12: 0 of 5 keys signed, threshold 3",
    ] {
        assert!(r.text.contains(want), "missing {want:?} in:\n{}", r.text);
    }
    let slots: Vec<String> = r.changed[0]
        .slots
        .iter()
        .map(|s| {
            s.key
                .unrecognized
                .get("x-tuf-on-ci-keyowner")
                .and_then(|v| v.as_str())
                .unwrap_or("-")
                .to_string()
        })
        .collect();
    assert_eq!(
        slots,
        [
            "@dlorenc",
            "@mnm678",
            "@santiagotorres",
            "@bobcallaway",
            "@joshuagl"
        ]
    );
}

/// A delegated role: u1 delegates `delegated` to itself (signed there and then by
/// tuf-on-ci-delegate on the token, merged to main); u2 changes the role's expiry period in a
/// new event, which changes `delegated.json` only. Conclave signs it as the delegation in
/// targets.json lists the key, `apply` writes it, and tuf-on-ci-sign has nothing left to do.
#[test]
fn conclave_signs_a_delegated_role_event() {
    let w = world();
    let (c1, c2) = (w.clone_of("u1"), w.clone_of("u2"));
    w.git("u1", &["checkout", "-q", "main"]);
    w.ok(
        "tuf-on-ci-delegate",
        "u1",
        &["--no-push", "sign/add-delegated", "delegated"],
        &c1,
        "1\n1\n\n\n2\n\n0000\n0000\n\n",
    );
    w.git("u1", &["merge", "-q", "--ff-only", "sign/add-delegated"]);
    w.git("u1", &["push", "-q", "origin", "main"]);
    w.git("u2", &["checkout", "-q", "main"]);
    w.git("u2", &["pull", "-q", "origin", "main"]);
    let event_name = "sign/delegated-expiry";
    w.ok(
        "tuf-on-ci-delegate",
        "u2",
        &["--no-push", event_name, "delegated"],
        &c2,
        "2\n100\n20\n\n\n",
    );
    w.git("u2", &["push", "-q", "origin", event_name]);
    w.git("u2", &["checkout", "-q", event_name]);
    let stick = w.path("stick2");
    common::copy_dir(&c2.join("metadata"), &stick.join("event"));
    w.git("u2", &["checkout", "-q", "main"]);
    common::copy_dir(&c2.join("metadata"), &stick.join("known-good"));

    let args = |cmd: &str| {
        vec![
            "tuf-on-ci".to_string(),
            cmd.to_string(),
            "--event".into(),
            s(&stick.join("event")).into(),
            "--known-good".into(),
            s(&stick.join("known-good")).into(),
        ]
    };
    let r = w.conclave(
        &args("review")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "",
    );
    assert_eq!(r.code(), 0, "{r:?}");
    for want in [
        "delegated v2 (was v1) in delegated.json",
        "expiry period 100 days, signing period 20 days (was: expiry period 365 days, signing period 60 days)",
        "signatures for the delegation in targets v2: 0 of 1 keys signed, threshold 1",
    ] {
        assert!(
            r.stdout.contains(want),
            "missing {want:?} in:\n{}",
            r.stdout
        );
    }
    let sigs = stick.join("signatures");
    let mut sign = args("sign");
    for a in [
        "--module",
        SOFTHSM,
        "--key",
        "mykey",
        "--pin-stdin",
        "--out",
        s(&sigs),
    ] {
        sign.push(a.into());
    }
    let r = w.conclave(
        &sign.iter().map(String::as_str).collect::<Vec<_>>(),
        "0000\n",
    );
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(
        r.stdout.contains("delegated v2: delegation in targets v2: 1 of 1 keys signed, threshold 1 (threshold met)"),
        "{}",
        r.stdout
    );

    w.git("u1", &["fetch", "-q", "origin"]);
    w.git(
        "u1",
        &[
            "checkout",
            "-q",
            "-B",
            event_name,
            &format!("origin/{event_name}"),
        ],
    );
    let r = w.conclave(
        &[
            "tuf-on-ci",
            "apply",
            "--event",
            s(&c1.join("metadata")),
            s(&sigs),
        ],
        "",
    );
    assert_eq!(r.code(), 0, "{r:?}");
    let diff = w.git("u1", &["diff", "--numstat"]).stdout;
    assert_eq!(diff.trim(), "1\t1\tmetadata/delegated.json", "{diff}");
    w.git(
        "u1",
        &["commit", "-q", "-am", "Signature from @tuf-on-ci-u1"],
    );
    w.git("u1", &["push", "-q", "origin", event_name]);
    w.git("u1", &["checkout", "-q", "main"]);
    let after = w.ok("tuf-on-ci-sign", "u1", &["--no-push", event_name], &c1, "");
    assert!(after.stdout.contains("Nothing to do."), "{after:?}");
}

/// Make a P-384 key at CKA_ID 02 on a new SoftHSM2 token of `user` (PIN 0000).
fn token_for(w: &World, user: &str, label: &str) {
    let dir = w.path(user);
    let pem = dir.join("eckey.pem");
    w.ok(
        "openssl",
        user,
        &[
            "genpkey",
            "-out",
            s(&pem),
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:secp384r1",
            "-pkeyopt",
            "ec_param_enc:named_curve",
        ],
        &dir,
        "",
    );
    w.ok(
        "softhsm2-util",
        user,
        &[
            "--init-token",
            "--slot",
            "0",
            "--label",
            label,
            "--so-pin",
            "0000",
            "--pin",
            "0000",
        ],
        &dir,
        "",
    );
    w.ok(
        "softhsm2-util",
        user,
        &[
            "--import",
            s(&pem),
            "--token",
            label,
            "--label",
            "mykey",
            "--id",
            "02",
            "--pin",
            "0000",
        ],
        &dir,
        "",
    );
    std::fs::remove_file(&pem).unwrap();
}

/// An invite: u1 makes u2 a second root signer (threshold 1), which opens an invite for u2.
/// Conclave accepts it with u2's token key and signs root; the connected machine replaces
/// metadata/ with the edited folder. tuf-on-ci-sign as u2 then has nothing to do, and the
/// edit is what tuf-on-ci-sign's own acceptance writes (the same `signed` but for the expiry
/// time, the same placeholders, the invite file removed).
#[test]
fn conclave_accepts_an_invite_as_tuf_on_ci_sign_does() {
    let w = world();
    let (c1, c2) = (w.clone_of("u1"), w.clone_of("u2"));
    w.git("u1", &["checkout", "-q", "main"]);
    let event_name = "sign/invite-u2";
    w.ok(
        "tuf-on-ci-delegate",
        "u1",
        &["--no-push", event_name, "root"],
        &c1,
        "1\n@tuf-on-ci-u1, @tuf-on-ci-u2\n1\n\n2\n\n",
    );
    w.git("u1", &["push", "-q", "origin", event_name]);
    token_for(&w, "u2", "u2token");
    w.git("u2", &["fetch", "-q", "origin"]);
    w.git(
        "u2",
        &[
            "checkout",
            "-q",
            "-B",
            event_name,
            &format!("origin/{event_name}"),
        ],
    );
    let stick = w.path("stick3");
    common::copy_dir(&c2.join("metadata"), &stick.join("event"));
    w.git("u2", &["checkout", "-q", "main"]);
    w.git("u2", &["pull", "-q", "origin", "main"]);
    common::copy_dir(&c2.join("metadata"), &stick.join("known-good"));

    // The review refuses the event as it is: the invite is open.
    let r = review(&w, &stick.join("event"));
    assert_eq!(r.code(), 1, "{r:?}");
    assert!(
        r.stdout
            .contains("open invite for @tuf-on-ci-u2 to sign root"),
        "{r:?}"
    );

    let out = stick.join("accepted");
    let mut cmd = w.cmd(BIN, "u2");
    cmd.args([
        "tuf-on-ci",
        "accept",
        "--event",
        s(&stick.join("event")),
        "--known-good",
        s(&stick.join("known-good")),
        "--module",
        SOFTHSM,
        "--key",
        "mykey",
        "--keyholder",
        "@tuf-on-ci-U2",
        "--pin-stdin",
        "--out",
        s(&out),
    ]);
    let r = run_with_timeout(&mut cmd, b"0000\n", TIMEOUT);
    assert_eq!(r.code(), 0, "{r:?}");
    for want in [
        "of @tuf-on-ci-u2 added to role root",
        "root: 1 of 2: @tuf-on-ci-u1 [ECDSA P-384]",
        "root v2: root v2 (this event): 1 of 2 keys signed, threshold 1 (threshold met)",
        "root v2: known-good root v1: 0 of 1 keys signed, threshold 1 (not enough signatures yet)",
    ] {
        assert!(
            r.stdout.contains(want),
            "missing {want:?} in:\n{}",
            r.stdout
        );
    }
    assert!(!out.join(".signing-event-state").exists());

    // Connected side: replace metadata/ with the edited folder, commit, push.
    w.git("u2", &["checkout", "-q", event_name]);
    std::fs::remove_dir_all(c2.join("metadata")).unwrap();
    common::copy_dir(&out, &c2.join("metadata"));
    w.git("u2", &["add", "-A", "metadata"]);
    w.git(
        "u2",
        &["commit", "-q", "-m", "@tuf-on-ci-u2 accepted invitation"],
    );
    w.git("u2", &["push", "-q", "origin", event_name]);
    w.git("u2", &["checkout", "-q", "main"]);
    let after = w.ok("tuf-on-ci-sign", "u2", &["--no-push", event_name], &c2, "");
    assert!(after.stdout.contains("Nothing to do."), "{after:?}");

    // tuf-on-ci-sign's own acceptance of the same invite, on a copy of the event branch.
    let orig = "sign/invite-u2-by-tuf-on-ci";
    w.git(
        "u2",
        &[
            "push",
            "-q",
            "origin",
            &format!("origin/{event_name}~1:refs/heads/{orig}"),
        ],
    );
    let fresh = w.path("u2/fresh");
    w.ok(
        "git",
        "u2",
        &["clone", "-q", s(&w.path("upstream.git")), s(&fresh)],
        &w.root,
        "",
    );
    std::fs::copy(
        c2.join(".tuf-on-ci-sign.ini"),
        fresh.join(".tuf-on-ci-sign.ini"),
    )
    .unwrap();
    for (k, v) in [("user.email", "u2@example.com"), ("user.name", "u2")] {
        w.ok("git", "u2", &["config", k, v], &fresh, "");
    }
    w.ok(
        "tuf-on-ci-sign",
        "u2",
        &["--no-push", orig],
        &fresh,
        "2\n\n0000\n",
    );
    w.ok("git", "u2", &["checkout", "-q", orig], &fresh, "");
    assert!(!fresh.join("metadata/.signing-event-state").exists());
    let norm = |p: &Path| {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        v["signed"]["expires"] = "EXPIRES".into();
        for sig in v["signatures"].as_array_mut().unwrap() {
            sig["sig"] = if sig["sig"] == "" { "" } else { "SIG" }.into();
        }
        v
    };
    for f in ["root.json", "root_history/2.root.json"] {
        assert_eq!(
            norm(&fresh.join("metadata").join(f)),
            norm(&out.join(f)),
            "{f}: Conclave's acceptance differs from tuf-on-ci-sign's"
        );
    }
}

/// An invite to targets: u1 makes u2 a second targets signer. The event changes only the
/// state file; accepting edits root (u2's key in the targets role), and u2 signs targets.json,
/// unchanged otherwise, as tuf-on-ci-sign does. Root still needs u1 (a root key), so tuf-on-ci-sign
/// as u2 has nothing to do, and both files equal tuf-on-ci-sign's own acceptance.
#[test]
fn conclave_accepts_a_targets_invite_and_signs_the_unchanged_targets() {
    let w = world();
    let (c1, c2) = (w.clone_of("u1"), w.clone_of("u2"));
    w.git("u1", &["checkout", "-q", "main"]);
    let event_name = "sign/invite-u2-targets";
    w.ok(
        "tuf-on-ci-delegate",
        "u1",
        &["--no-push", event_name, "targets"],
        &c1,
        "1\n1\n@tuf-on-ci-u1, @tuf-on-ci-u2\n1\n\n2\n\n",
    );
    w.git("u1", &["push", "-q", "origin", event_name]);
    token_for(&w, "u2", "u2token");
    w.git("u2", &["fetch", "-q", "origin"]);
    w.git(
        "u2",
        &[
            "checkout",
            "-q",
            "-B",
            event_name,
            &format!("origin/{event_name}"),
        ],
    );
    let stick = w.path("stick4");
    common::copy_dir(&c2.join("metadata"), &stick.join("event"));
    w.git("u2", &["checkout", "-q", "main"]);
    w.git("u2", &["pull", "-q", "origin", "main"]);
    common::copy_dir(&c2.join("metadata"), &stick.join("known-good"));

    let out = stick.join("accepted");
    let mut cmd = w.cmd(BIN, "u2");
    cmd.args([
        "tuf-on-ci",
        "accept",
        "--event",
        s(&stick.join("event")),
        "--known-good",
        s(&stick.join("known-good")),
        "--module",
        SOFTHSM,
        "--key",
        "mykey",
        "--keyholder",
        "@tuf-on-ci-u2",
        "--pin-stdin",
        "--out",
        s(&out),
    ]);
    let r = run_with_timeout(&mut cmd, b"0000\n", TIMEOUT);
    assert_eq!(r.code(), 0, "{r:?}");
    for want in [
        "of @tuf-on-ci-u2 added to role targets",
        "targets v1: targets role of root v2: 2 of 2 keys signed, threshold 1 (threshold met)",
    ] {
        assert!(
            r.stdout.contains(want),
            "missing {want:?} in:\n{}",
            r.stdout
        );
    }

    w.git("u2", &["checkout", "-q", event_name]);
    std::fs::remove_dir_all(c2.join("metadata")).unwrap();
    common::copy_dir(&out, &c2.join("metadata"));
    w.git("u2", &["add", "-A", "metadata"]);
    w.git(
        "u2",
        &["commit", "-q", "-m", "@tuf-on-ci-u2 accepted invitation"],
    );
    w.git("u2", &["push", "-q", "origin", event_name]);
    w.git("u2", &["checkout", "-q", "main"]);
    let after = w.ok("tuf-on-ci-sign", "u2", &["--no-push", event_name], &c2, "");
    assert!(after.stdout.contains("Nothing to do."), "{after:?}");

    let orig = "sign/invite-u2-targets-by-tuf-on-ci";
    w.git(
        "u2",
        &[
            "push",
            "-q",
            "origin",
            &format!("origin/{event_name}~1:refs/heads/{orig}"),
        ],
    );
    let fresh = w.path("u2/fresh");
    w.ok(
        "git",
        "u2",
        &["clone", "-q", s(&w.path("upstream.git")), s(&fresh)],
        &w.root,
        "",
    );
    std::fs::copy(
        c2.join(".tuf-on-ci-sign.ini"),
        fresh.join(".tuf-on-ci-sign.ini"),
    )
    .unwrap();
    for (k, v) in [("user.email", "u2@example.com"), ("user.name", "u2")] {
        w.ok("git", "u2", &["config", k, v], &fresh, "");
    }
    w.ok(
        "tuf-on-ci-sign",
        "u2",
        &["--no-push", orig],
        &fresh,
        "2\n\n0000\n",
    );
    w.ok("git", "u2", &["checkout", "-q", orig], &fresh, "");
    let norm = |p: &Path| {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        if p.to_string_lossy().ends_with("root.json") {
            v["signed"]["expires"] = "EXPIRES".into();
        }
        for sig in v["signatures"].as_array_mut().unwrap() {
            sig["sig"] = if sig["sig"] == "" { "" } else { "SIG" }.into();
        }
        v
    };
    for f in ["root.json", "root_history/2.root.json", "targets.json"] {
        assert_eq!(
            norm(&fresh.join("metadata").join(f)),
            norm(&out.join(f)),
            "{f}: Conclave's acceptance differs from tuf-on-ci-sign's"
        );
    }
}

/// A workspace for the sign-tuf-on-ci-event ceremony: the event and the known-good metadata
/// on its input media, as the ceremony script names them.
fn ceremony_workspace(w: &World, name: &str, event: &Path) -> PathBuf {
    ceremony_workspace_with(
        w,
        name,
        (event, "tuf-on-ci-event"),
        (&w.path("stick/known-good"), "tuf-on-ci-known-good"),
    )
}

/// A workspace with `event` and `known_good` copied to `input/` under the given folder names.
fn ceremony_workspace_with(
    w: &World,
    name: &str,
    event: (&Path, &str),
    known_good: (&Path, &str),
) -> PathBuf {
    let ws = w.path(name);
    common::copy_dir(event.0, &ws.join("input").join(event.1));
    common::copy_dir(known_good.0, &ws.join("input").join(known_good.1));
    ws
}

/// `conclave ceremony run` of the shipped sign-tuf-on-ci-event script, headless: u1 is the
/// keyholder (named by handle, as tuf-on-ci records owners) with the token "mytoken".
fn run_ceremony(w: &World, ws: &Path) -> Run {
    let script = manifest_dir().join("ceremony-scripts/sign-tuf-on-ci-event.toml");
    run_ceremony_with(w, ws, &script, &[])
}

/// `conclave ceremony run SCRIPT` in `ws` as [`run_ceremony`] runs it, with more environment.
fn run_ceremony_with(w: &World, ws: &Path, script: &Path, env: &[(&str, &str)]) -> Run {
    run_ceremony_as(w, ws, script, &[("@tuf-on-ci-u1", "mytoken")], env)
}

/// `conclave ceremony run SCRIPT` in `ws`, headless, with u1's SoftHSM2 token folder: the
/// keyholders (by handle) with their token labels, each PIN 0000, and more environment.
fn run_ceremony_as(
    w: &World,
    ws: &Path,
    script: &Path,
    keyholders: &[(&str, &str)],
    env: &[(&str, &str)],
) -> Run {
    let answers = w.path("answers.toml");
    let names: Vec<String> = keyholders.iter().map(|(k, _)| format!("\"{k}\"")).collect();
    let tokens: String = keyholders
        .iter()
        .map(|(k, t)| format!("\"{k}\" = \"{t}\"\n"))
        .collect();
    std::fs::write(
        &answers,
        format!(
            "practice = true\nacknowledgement = \"BAG-T0C1\"\n[people]\nadministrator = \"ada\"\n\
             keyholders = [{}]\nwitnesses = [\"wendy\"]\n[tokens]\n{tokens}",
            names.join(", ")
        ),
    )
    .unwrap();
    let pins: String = keyholders
        .iter()
        .map(|(k, _)| format!("{k}=0000\n"))
        .collect();
    let mut c = w.cmd(BIN, "u1");
    c.args([
        "ceremony",
        "run",
        s(script),
        "--workspace",
        s(ws),
        "--answers",
        s(&answers),
        "--pin-stdin",
    ])
    .current_dir(&w.root)
    .env_remove("CONCLAVE_TEST_FAULT_LOG")
    .env_remove("CONCLAVE_TEST_FAULT_KILL_AT");
    for (k, v) in env {
        c.env(k, v);
    }
    run_with_timeout(&mut c, pins.as_bytes(), TIMEOUT)
}

/// The event signed as a ceremony: the review (root change, owner by handle, digest) before
/// any PIN, u1's token signs, the transcript records the event, the digests and the signature
/// and is sealed; `conclave transcript verify` anchors it in the known-good root. The exported
/// bundles go into the event's checkout with `conclave tuf-on-ci apply`, after which
/// `tuf-on-ci-sign --no-push` as u1 says "Nothing to do." and python-tuf verifies the new root.
#[test]
fn the_sign_tuf_on_ci_event_ceremony_signs_an_event_that_tuf_on_ci_then_accepts() {
    let w = world();
    let ws = ceremony_workspace(&w, "ws", &w.path("stick/event"));
    let r = run_ceremony(&w, &ws);
    assert_eq!(r.code(), 0, "{r:?}");

    // The transcript: the event imported whole, the changed role's digest proposed and
    // approved, one signature by u1, sealed.
    let transcript = ws.join("sign-tuf-on-ci-event-v1.transcript.jsonl");
    let text = std::fs::read_to_string(&transcript).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let details = |event: &str| -> Vec<&serde_json::Value> {
        records
            .iter()
            .map(|r| &r["details"])
            .filter(|d| d["event"] == event)
            .collect()
    };
    let imported = details("event-imported");
    assert_eq!(imported.len(), 1, "{text}");
    assert!(imported[0]["files"]["root_history/2.root.json"].is_string());
    assert!(imported[0]["known_good"]["root.json"].is_string());
    let root_v2 = std::fs::read(w.path("stick/event/root.json")).unwrap();
    let md = conclave::tuf::metadata::AnyMetadata::from_bytes(&root_v2).unwrap();
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(md.signed_bytes()))
    };
    let proposed = details("proposed");
    assert_eq!(proposed.len(), 1, "{text}");
    assert_eq!(proposed[0]["digests"]["root"], digest.as_str(), "{text}");
    assert_eq!(details("approved")[0]["digests"]["root"], digest.as_str());
    let signed = details("signed");
    assert_eq!(signed.len(), 1, "one role, one key id: {text}");
    assert_eq!(signed[0]["keyholder"], "@tuf-on-ci-u1");
    assert_eq!(signed[0]["role"], "root");
    assert_eq!(details("sealed").len(), 1, "{text}");

    // The auditor: the transcript verifies, anchored in the known-good root.
    let r = w.conclave(
        &[
            "transcript",
            "verify",
            s(&transcript),
            "--trusted-root",
            s(&w.path("stick/known-good/root.json")),
        ],
        "",
    );
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(r.stdout.contains("VALID"), "{r:?}");

    // The export: one bundle in a folder named after the event's digests.
    let export = ws.join("export");
    let dirs: Vec<PathBuf> = std::fs::read_dir(&export)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("tuf-on-ci-signatures-")
        })
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let bundles: Vec<_> = std::fs::read_dir(&dirs[0])
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".bundle"))
        .collect();
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    assert!(bundles[0].starts_with("root-v2-"), "{bundles:?}");

    // Connected side: apply, commit, push; tuf-on-ci has nothing left to ask of u1.
    let c1 = w.clone_of("u1");
    w.git("u1", &["fetch", "-q", "origin"]);
    w.git(
        "u1",
        &["checkout", "-q", "-B", EVENT, &format!("origin/{EVENT}")],
    );
    let r = w.conclave(
        &[
            "tuf-on-ci",
            "apply",
            "--event",
            s(&c1.join("metadata")),
            "--known-good",
            s(&w.path("stick/known-good")),
            s(&dirs[0]),
        ],
        "",
    );
    assert_eq!(r.code(), 0, "{r:?}");
    w.git("u1", &["add", "metadata"]);
    w.git(
        "u1",
        &["commit", "-q", "-m", "Signature from @tuf-on-ci-u1"],
    );
    w.git("u1", &["push", "-q", "origin", EVENT]);
    w.git("u1", &["checkout", "-q", "main"]);
    let after = w.ok("tuf-on-ci-sign", "u1", &["--no-push", EVENT], &c1, "");
    assert!(after.stdout.contains("Nothing to do."), "{after:?}");

    w.git("u1", &["checkout", "-q", EVENT]);
    python_verifies_root_v2(&w, "u1", &c1, &w.path("stick/known-good/root.json"));
}

/// A CI-rule violation (root version +2) stops the ceremony at the import step, naming file
/// and field: no review, no PIN, no signature in the transcript, nothing exported.
#[test]
fn the_ceremony_refuses_an_event_breaking_a_ci_rule_before_any_pin() {
    let w = world();
    let bad = w.path("stick/bad-version");
    common::copy_dir(&w.path("stick/event"), &bad);
    edit_root(&bad, |v| v["signed"]["version"] = 3.into());
    let ws = ceremony_workspace(&w, "ws-bad", &bad);
    let r = run_ceremony(&w, &ws);
    assert_ne!(r.code(), 0, "{r:?}");
    let all = format!("{}{}", r.stdout, r.stderr);
    for want in [
        "tuf-on-ci-event/root.json: $.signed.version: root version 3 after known-good version 1: must be exactly 2",
        "no PIN was asked",
    ] {
        assert!(all.contains(want), "missing {want:?} in {r:?}");
    }
    let text = std::fs::read_to_string(ws.join("sign-tuf-on-ci-event-v1.transcript.jsonl"))
        .unwrap_or_default();
    for event in ["\"event\":\"event-imported\"", "\"event\":\"signed\""] {
        assert!(!text.contains(event), "{event} recorded: {text}");
    }
    let exported = std::fs::read_dir(ws.join("export"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(exported, 0, "nothing is exported");
}

/// The one folder of signature bundles a ceremony exported.
fn exported_signatures(ws: &Path) -> PathBuf {
    exported_folder(ws, "tuf-on-ci-signatures-")
}

/// The connected side for u1: the bundles applied to the event's checkout (with the
/// known-good folder), committed and pushed; then `tuf-on-ci-sign --no-push` as u1 must say
/// "Nothing to do." Returns `git diff --numstat` of the applied signatures.
fn apply_and_check_nothing_left(
    w: &World,
    event: &str,
    known_good: &Path,
    bundles: &Path,
) -> String {
    let c1 = w.clone_of("u1");
    w.git("u1", &["checkout", "-q", "main"]);
    w.git("u1", &["fetch", "-q", "origin"]);
    w.git(
        "u1",
        &["checkout", "-q", "-B", event, &format!("origin/{event}")],
    );
    let r = w.conclave(
        &[
            "tuf-on-ci",
            "apply",
            "--event",
            s(&c1.join("metadata")),
            "--known-good",
            s(known_good),
            s(bundles),
        ],
        "",
    );
    assert_eq!(r.code(), 0, "{r:?}");
    let diff = w.git("u1", &["diff", "--numstat"]).stdout;
    w.git(
        "u1",
        &["commit", "-q", "-am", "Signature from @tuf-on-ci-u1"],
    );
    w.git("u1", &["push", "-q", "origin", event]);
    w.git("u1", &["checkout", "-q", "main"]);
    let after = w.ok("tuf-on-ci-sign", "u1", &["--no-push", event], &c1, "");
    assert!(after.stdout.contains("Nothing to do."), "{after:?}");
    diff
}

/// `conclave transcript verify` of a ceremony's transcript anchored in `known_good/root.json`:
/// must be VALID; its text.
fn audit(w: &World, ws: &Path, known_good: &Path) -> String {
    let r = w.conclave(
        &[
            "transcript",
            "verify",
            s(&ws.join("sign-tuf-on-ci-event-v1.transcript.jsonl")),
            "--trusted-root",
            s(&known_good.join("root.json")),
        ],
        "",
    );
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(r.stdout.contains("VALID"), "{r:?}");
    r.stdout
}

/// Events that change targets and a delegated role, signed as a ceremony. u2 changes
/// targets' expiry period (`targets.json` only); the ceremony runs from a copy of the script
/// whose import step names other input folders (`event = "ev"`, `known_good = "kg"`), so the
/// end-of-run check must read them by the script's names. Then u1 delegates `delegated` to
/// itself (merged), and u2 changes that role's expiry period (`delegated.json` only). Each
/// time the auditor's key table shows the changed role with its versions and its keys by
/// owner (not the known-good root's other roles), `apply` changes one placeholder line and
/// tuf-on-ci-sign has nothing left to ask of u1.
#[test]
fn the_ceremony_signs_targets_and_delegated_role_events_and_the_audit_shows_their_keys() {
    let w = world();
    let c2 = w.clone_of("u2");
    let snapshot = |event: &str, stick: &str| -> (PathBuf, PathBuf) {
        w.git("u2", &["checkout", "-q", event]);
        let dir = w.path(stick);
        common::copy_dir(&c2.join("metadata"), &dir.join("event"));
        w.git("u2", &["checkout", "-q", "main"]);
        common::copy_dir(&c2.join("metadata"), &dir.join("known-good"));
        (dir.join("event"), dir.join("known-good"))
    };

    // targets: expiry period 100 days, signing period 20 days.
    let targets_event = "sign/targets-expiry";
    w.ok(
        "tuf-on-ci-delegate",
        "u2",
        &["--no-push", targets_event, "targets"],
        &c2,
        "2\n100\n20\n\n",
    );
    w.git("u2", &["push", "-q", "origin", targets_event]);
    let (event, kg) = snapshot(targets_event, "stick-targets");
    let script_text =
        std::fs::read_to_string(manifest_dir().join("ceremony-scripts/sign-tuf-on-ci-event.toml"))
            .unwrap();
    let renamed = script_text.replace(
        "with = { event = \"tuf-on-ci-event\", known_good = \"tuf-on-ci-known-good\" }",
        "with = { event = \"ev\", known_good = \"kg\" }",
    );
    assert_ne!(
        renamed, script_text,
        "the script's import step names its folders"
    );
    let script = w.path("renamed.toml");
    std::fs::write(&script, renamed).unwrap();
    let ws = ceremony_workspace_with(&w, "ws-targets", (&event, "ev"), (&kg, "kg"));
    let r = run_ceremony_with(&w, &ws, &script, &[]);
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(
        r.stdout
            .contains("1 signature(s) go into the event's placeholders"),
        "the end-of-run check reads the script's folders: {r:?}"
    );
    let text = audit(&w, &ws, &kg);
    for want in [
        "targets, changed by the event: v2 (known-good v1): threshold 1 -> 1",
        ", owner @tuf-on-ci-u1",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    for unwanted in ["timestamp: threshold", "root: threshold"] {
        assert!(
            !text.contains(unwanted),
            "{unwanted:?}: the event does not change root:\n{text}"
        );
    }
    let bundles = exported_signatures(&ws);
    let diff = apply_and_check_nothing_left(&w, targets_event, &kg, &bundles);
    assert_eq!(diff.trim(), "1\t1\tmetadata/targets.json", "{diff}");

    // A delegated role: u1 delegates it to itself, signed there and merged to main.
    let c1 = w.clone_of("u1");
    w.git("u1", &["checkout", "-q", "main"]);
    w.git("u1", &["pull", "-q", "origin", "main"]);
    w.ok(
        "tuf-on-ci-delegate",
        "u1",
        &["--no-push", "sign/add-delegated", "delegated"],
        &c1,
        "1\n1\n\n\n2\n\n0000\n0000\n\n",
    );
    w.git("u1", &["merge", "-q", "--ff-only", "sign/add-delegated"]);
    w.git("u1", &["push", "-q", "origin", "main"]);
    w.git("u2", &["checkout", "-q", "main"]);
    w.git("u2", &["pull", "-q", "origin", "main"]);
    let delegated_event = "sign/delegated-expiry";
    w.ok(
        "tuf-on-ci-delegate",
        "u2",
        &["--no-push", delegated_event, "delegated"],
        &c2,
        "2\n100\n20\n\n\n",
    );
    w.git("u2", &["push", "-q", "origin", delegated_event]);
    let (event, kg) = snapshot(delegated_event, "stick-delegated");
    let ws = ceremony_workspace_with(
        &w,
        "ws-delegated",
        (&event, "tuf-on-ci-event"),
        (&kg, "tuf-on-ci-known-good"),
    );
    let r = run_ceremony(&w, &ws);
    assert_eq!(r.code(), 0, "{r:?}");
    let text = audit(&w, &ws, &kg);
    assert!(
        text.contains(
            "delegated (delegated by targets), changed by the event: v2 (known-good v1): threshold 1 -> 1"
        ),
        "{text}"
    );
    assert!(!text.contains("root: threshold"), "{text}");
    let bundles = exported_signatures(&ws);
    let diff = apply_and_check_nothing_left(&w, delegated_event, &kg, &bundles);
    assert_eq!(diff.trim(), "1\t1\tmetadata/delegated.json", "{diff}");
}

/// A power cut after the first signature: the headless run is killed (SIGKILL at the
/// failpoint right after the `signed` record is appended and fsynced; `src/fault.rs`, debug
/// builds), the same command is run again, and it resumes to the result of an uninterrupted
/// run: the same digests and bundle names, the signature recorded before the cut (not a new
/// one) in the export, one `signed` record, a sealed transcript that verifies, and tuf-on-ci
/// accepts the signature.
#[test]
fn a_ceremony_killed_after_the_first_signature_resumes_to_the_same_verified_result() {
    let w = world();
    let script = manifest_dir().join("ceremony-scripts/sign-tuf-on-ci-event.toml");
    let event = w.path("stick/event");
    let kg = w.path("stick/known-good");

    // The uninterrupted run, counting the failpoints it passes.
    let reference = ceremony_workspace(&w, "ws-reference", &event);
    let log = w.path("reference.faults");
    let r = run_ceremony_with(
        &w,
        &reference,
        &script,
        &[("CONCLAVE_TEST_FAULT_LOG", s(&log))],
    );
    assert_eq!(r.code(), 0, "{r:?}");
    let points: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, n)| n).to_string())
        .collect();
    let fsync = points
        .iter()
        .position(|p| p == "transcript fsync signed")
        .unwrap_or_else(|| panic!("no signed record among {points:?}"));
    // 1-based ordinals: the point after the signed record's fsync.
    let kill_at = (fsync + 2).to_string();

    let ws = ceremony_workspace(&w, "ws-killed", &event);
    let r = run_ceremony_with(
        &w,
        &ws,
        &script,
        &[
            ("CONCLAVE_TEST_FAULT_LOG", s(&w.path("killed.faults"))),
            ("CONCLAVE_TEST_FAULT_KILL_AT", &kill_at),
        ],
    );
    assert_eq!(r.status.code(), None, "killed by SIGKILL: {r:?}");
    let transcript = ws.join("sign-tuf-on-ci-event-v1.transcript.jsonl");
    let records = |p: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let before = records(&transcript);
    let signed_before: Vec<&serde_json::Value> =
        before.iter().filter(|r| r["action"] == "signed").collect();
    assert_eq!(signed_before.len(), 1, "{before:?}");
    assert!(!before.iter().any(|r| r["action"] == "seal"), "{before:?}");
    let sig_before = signed_before[0]["details"]["sig"].clone();
    assert!(sig_before.is_string(), "{:?}", signed_before[0]);

    // The same command again, no fault: it resumes and finishes.
    let r = run_ceremony_with(&w, &ws, &script, &[]);
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(
        !ws.join("sign-tuf-on-ci-event-v2.transcript.jsonl").exists(),
        "the interrupted transcript is continued, not a new one started"
    );
    let after = records(&transcript);
    assert!(after.iter().any(|r| r["action"] == "resume"), "{after:?}");
    let signed: Vec<&serde_json::Value> =
        after.iter().filter(|r| r["action"] == "signed").collect();
    assert_eq!(signed.len(), 1, "no second signature: {after:?}");
    let digests = |rs: &[serde_json::Value]| {
        rs.iter()
            .find(|r| r["action"] == "approved")
            .map(|r| r["details"]["digests"].clone())
    };
    assert_eq!(
        digests(&after),
        digests(&records(
            &reference.join("sign-tuf-on-ci-event-v1.transcript.jsonl")
        ))
    );
    assert!(digests(&after).is_some());
    audit(&w, &ws, &kg);

    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let (bundles, ref_bundles) = (exported_signatures(&ws), exported_signatures(&reference));
    assert_eq!(
        bundles.file_name(),
        ref_bundles.file_name(),
        "the same roles and digests signed"
    );
    assert_eq!(names(&bundles), names(&ref_bundles));
    let bundle = names(&bundles)
        .into_iter()
        .find(|n| n.ends_with(".bundle"))
        .unwrap();
    let b: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundles.join(&bundle)).unwrap()).unwrap();
    assert_eq!(
        b["sig"], sig_before,
        "the export holds the signature recorded before the cut"
    );
    apply_and_check_nothing_left(&w, EVENT, &kg, &bundles);
}

/// The ceremony in the terminal UI (`conclave tui` in tmux, 80×24; `--practice` only because
/// this machine is not air-gapped) on a prepared workspace, up to the signing: the import
/// screen runs, the review pages show the changed role with its versions and files, its
/// keys by @owner and its digest, the signing screen names the keyholder by handle, the role
/// and the digest again, and its confirmation repeats the digest. Stopped there: nothing
/// is signed.
#[test]
fn the_tui_runs_the_ceremony_up_to_the_signing_showing_roles_digests_and_owners() {
    use common::tmux::Tmux;
    let w = world();
    let ws = ceremony_workspace(&w, "ws-tui", &w.path("stick/event"));
    let root_v2 = std::fs::read(w.path("stick/event/root.json")).unwrap();
    let md = conclave::tuf::metadata::AnyMetadata::from_bytes(&root_v2).unwrap();
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(md.signed_bytes()))
    };
    // The digest as the screens group it: two lines of eight groups of four.
    let groups = |half: &str| {
        half.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (first, second) = (groups(&digest[..32]), groups(&digest[32..]));
    let script = manifest_dir().join("ceremony-scripts/sign-tuf-on-ci-event.toml");
    let t = Tmux::start(
        "tot-tui",
        &format!(
            "SOFTHSM2_CONF={} {BIN} tui --practice --workspace {} --script {}",
            s(&w.path("u1/softhsm2.conf")),
            s(&ws),
            s(&script)
        ),
    );
    t.begin();
    t.open_with_roll_call("BAG-T0C1", ["ada", "@tuf-on-ci-u1", "wendy"]);
    // The import screen names the script's folders; importing runs the review.
    let s = t.wait_for("Enter import and review");
    assert!(
        s.contains("tuf-on-ci-event/") && s.contains("tuf-on-ci-known-good/"),
        "{s}"
    );
    t.send(&["Enter"]);
    t.wait_for("Enter build the proposal");
    t.send(&["Enter"]);
    // The review, page by page (lines wrap at 80 columns: compare without line breaks).
    let mut screen = t.wait_for("What changes: lines");
    let mut pages = String::new();
    for _ in 0..20 {
        pages.push_str(&screen);
        if !screen.contains("↓ more (PgDn)") {
            break;
        }
        t.send(&["PageDown"]);
        screen = t.wait_change(&screen);
    }
    // A long review line continues on rows marked `↳` (the review wraps at spaces): read the
    // pages as the room does, the continuation marks left out.
    let flat: String = pages.split_whitespace().filter(|w| *w != "↳").collect();
    for want in [
        "root v2 (was v1) in root.json and root_history/2.root.json",
        "root: 1 of 1: @tuf-on-ci-u1 [ECDSA P-384]",
        "targets: 1 of 1: @tuf-on-ci-u1",
        &format!("SHA-256 of the signed bytes: {digest}"),
        &format!("root v2 (root.json): {digest}"),
        "@tuf-on-ci-u1: ",
        &first,
        &second,
    ] {
        let w: String = want.split_whitespace().collect();
        assert!(
            flat.contains(&w),
            "the review never showed {want:?}:\n{pages}"
        );
    }
    t.send(&["Enter"]);
    t.wait_for("│ y  yes");
    t.send(&["y"]);
    t.wait_for("Keyholder @tuf-on-ci-u1: sign root");
    // The tokens are polled on a thread of their own: the line comes with the first answer.
    let s = t.wait_for("token mytoken of @tuf-on-ci-u1 is present");
    assert!(
        s.contains("Keyholder @tuf-on-ci-u1: sign root")
            && s.contains(&first)
            && s.contains(&second),
        "{s}"
    );
    t.send(&["Enter"]);
    let s = t.wait_for("│ y  yes");
    assert!(
        s.contains("@tuf-on-ci-u1 signs root") && s.contains(&first),
        "{s}"
    );
    // Not signed: stop here.
    t.send(&["n"]);
    t.wait_for("Not confirmed: nothing was done.");
    t.send(&["C-c"]);
    t.wait_for("Stop now?");
    t.send(&["y"]);
    t.wait_for("EXIT=");
    let text =
        std::fs::read_to_string(ws.join("sign-tuf-on-ci-event-v1.transcript.jsonl")).unwrap();
    assert!(text.contains("\"action\":\"approved\""), "{text}");
    assert!(!text.contains("\"action\":\"signed\""), "{text}");
}

/// `conclave rehearse` has no practice run of this ceremony (its practice tokens hold none of
/// an event's keys): it says so and why before making any workspace.
#[test]
fn rehearse_refuses_the_ceremony_with_the_reason_before_making_a_workspace() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("rehearsal");
    let out = Command::new(BIN)
        .args([
            "rehearse",
            "--headless",
            "--script",
            "sign-tuf-on-ci-event",
            "--workspace",
        ])
        .arg(&ws)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("sign-tuf-on-ci-event has no practice run")
            && err.contains("practice tokens are made new and hold none of them"),
        "{err}"
    );
    assert!(!ws.exists(), "no workspace is made");
}

/// `conclave ceremony run` of the shipped accept-tuf-on-ci-invite script in `ws`, headless: u1
/// (a root keyholder of the known-good root, token "mytoken") and the invitee u2 (token
/// "u2token", in the same SoftHSM2 token folder, where the ceremony generates u2's key).
fn run_invite_ceremony(w: &World, ws: &Path, env: &[(&str, &str)]) -> Run {
    let script = manifest_dir().join("ceremony-scripts/accept-tuf-on-ci-invite.toml");
    run_invite_ceremony_with(w, ws, &script, env)
}

/// [`run_invite_ceremony`] with another script.
fn run_invite_ceremony_with(w: &World, ws: &Path, script: &Path, env: &[(&str, &str)]) -> Run {
    run_ceremony_as(
        w,
        ws,
        script,
        &[("@tuf-on-ci-u1", "mytoken"), ("@tuf-on-ci-u2", "u2token")],
        env,
    )
}

/// The export folder of `ws` whose name starts with `prefix`.
fn exported_folder(ws: &Path, prefix: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(ws.join("export"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    assert_eq!(dirs.len(), 1, "{prefix}: {dirs:?}");
    dirs[0].clone()
}

/// Invites as a ceremony: u1 makes u2 a second root signer (threshold 1), which opens an
/// invite for u2. The accept-tuf-on-ci-invite ceremony, with u1 and u2 present, generates u2's
/// key on u2's token, proposes the edit (u2's key with its owner and whole-key id in root, the
/// invite removed, placeholders reset), and both sign root; the auditor verifies the sealed
/// transcript anchored in the known-good root. On the connected machine `apply --accepted`
/// writes the edit and the signatures; after the commit `tuf-on-ci-sign --no-push` says
/// "Nothing to do." for u2 and for u1, and python-tuf verifies the new root by the known-good
/// root and by itself. Then a run killed right after the first signature is recorded resumes
/// to the same result: the key generated once, the recorded signature in the export, which
/// `apply` takes. A script without the key step refuses the invite at the import, before any
/// PIN, and so does this one when the invitee is not present.
#[test]
fn the_accept_invite_ceremony_accepts_an_invite_that_tuf_on_ci_then_accepts() {
    let w = world();
    let (c1, c2) = (w.clone_of("u1"), w.clone_of("u2"));
    w.git("u1", &["checkout", "-q", "main"]);
    let event_name = "sign/invite-u2";
    w.ok(
        "tuf-on-ci-delegate",
        "u1",
        &["--no-push", event_name, "root"],
        &c1,
        "1\n@tuf-on-ci-u1, @tuf-on-ci-u2\n1\n\n2\n\n",
    );
    w.git("u1", &["push", "-q", "origin", event_name]);
    w.git("u1", &["checkout", "-q", event_name]);
    let stick = w.path("stick-invite");
    let (event, kg) = (stick.join("event"), stick.join("known-good"));
    common::copy_dir(&c1.join("metadata"), &event);
    w.git("u1", &["checkout", "-q", "main"]);
    common::copy_dir(&c1.join("metadata"), &kg);
    assert!(event.join(".signing-event-state").exists());
    // u2's token, empty, beside u1's (the ceremony's one token module).
    w.ok(
        "softhsm2-util",
        "u1",
        &[
            "--init-token",
            "--free",
            "--label",
            "u2token",
            "--so-pin",
            "0000",
            "--pin",
            "0000",
        ],
        &w.path("u1"),
        "",
    );

    // The sign-tuf-on-ci-event script (no key step) refuses the open invite before any PIN.
    let ws = ceremony_workspace_with(
        &w,
        "ws-sign-invite",
        (&event, "tuf-on-ci-event"),
        (&kg, "tuf-on-ci-known-good"),
    );
    let r = run_ceremony(&w, &ws);
    assert_ne!(r.code(), 0, "{r:?}");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("open invite for @tuf-on-ci-u2 to sign root"),
        "{r:?}"
    );

    // The ceremony.
    let ws = ceremony_workspace_with(
        &w,
        "ws-invite",
        (&event, "tuf-on-ci-event"),
        (&kg, "tuf-on-ci-known-good"),
    );
    let log = w.path("invite.faults");
    let r = run_invite_ceremony(&w, &ws, &[("CONCLAVE_TEST_FAULT_LOG", s(&log))]);
    assert_eq!(r.code(), 0, "{r:?}");
    let transcript = ws.join("accept-tuf-on-ci-invite-v1.transcript.jsonl");
    let records = |p: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let recs = records(&transcript);
    let of = |rs: &[serde_json::Value], action: &str| -> Vec<serde_json::Value> {
        rs.iter()
            .filter(|r| r["action"] == action)
            .map(|r| r["details"].clone())
            .collect()
    };
    let generated = of(&recs, "key-generated");
    assert_eq!(generated.len(), 1, "{recs:?}");
    assert_eq!(generated[0]["keyholder"], "@tuf-on-ci-u2");
    assert_ne!(generated[0]["existing"], true, "a new key: {generated:?}");
    let signed = of(&recs, "signed");
    let signers: Vec<&str> = signed
        .iter()
        .map(|d| d["keyholder"].as_str().unwrap())
        .collect();
    assert!(signers.contains(&"@tuf-on-ci-u1"), "{signed:?}");
    assert!(signers.contains(&"@tuf-on-ci-u2"), "{signed:?}");
    assert!(signed.iter().all(|d| d["role"] == "root"), "{signed:?}");
    let a = audit_transcript(&w, &transcript, &kg);
    assert!(a.contains("@tuf-on-ci-u2"), "{a}");

    // The export: the edited metadata/ (u2's key in root with its owner and whole-key id, no
    // invite left) and the bundles.
    let accepted = exported_folder(&ws, "tuf-on-ci-accepted-");
    let bundles = exported_folder(&ws, "tuf-on-ci-signatures-");
    assert!(!accepted.join(".signing-event-state").exists());
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(accepted.join("root.json")).unwrap()).unwrap();
    let u2_ids: Vec<&String> = root["signed"]["keys"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, k)| k["x-tuf-on-ci-keyowner"] == "@tuf-on-ci-u2")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(u2_ids.len(), 1, "{root}");
    assert!(
        root["signed"]["roles"]["root"]["keyids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == u2_ids[0].as_str()),
        "{root}"
    );
    assert!(
        root["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["sig"] == "")
    );

    // Connected side: apply the edit and the signatures in u2's checkout, commit, push.
    w.git("u2", &["fetch", "-q", "origin"]);
    w.git(
        "u2",
        &[
            "checkout",
            "-q",
            "-B",
            event_name,
            &format!("origin/{event_name}"),
        ],
    );
    let r = w.conclave(
        &[
            "tuf-on-ci",
            "apply",
            "--event",
            s(&c2.join("metadata")),
            "--known-good",
            s(&kg),
            "--accepted",
            s(&accepted),
            s(&bundles),
        ],
        "",
    );
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(
        r.stdout.contains("of @tuf-on-ci-u2 joins role root"),
        "{r:?}"
    );
    assert!(!c2.join("metadata/.signing-event-state").exists());
    w.git("u2", &["add", "-A", "metadata"]);
    w.git(
        "u2",
        &["commit", "-q", "-m", "@tuf-on-ci-u2 accepted invitation"],
    );
    w.git("u2", &["push", "-q", "origin", event_name]);
    w.git("u2", &["checkout", "-q", "main"]);
    let after = w.ok("tuf-on-ci-sign", "u2", &["--no-push", event_name], &c2, "");
    assert!(after.stdout.contains("Nothing to do."), "{after:?}");
    w.git("u1", &["fetch", "-q", "origin"]);
    let after = w.ok("tuf-on-ci-sign", "u1", &["--no-push", event_name], &c1, "");
    assert!(after.stdout.contains("Nothing to do."), "{after:?}");

    w.git("u2", &["checkout", "-q", event_name]);
    python_verifies_root_v2(&w, "u2", &c2, &kg.join("root.json"));

    // An edit that changes more than the acceptance is refused by `apply --accepted`.
    let tampered = w.path("tampered");
    common::copy_dir(&accepted, &tampered);
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tampered.join("root.json")).unwrap()).unwrap();
    v["signed"]["roles"]["root"]["threshold"] = 2.into();
    std::fs::write(tampered.join("root.json"), serde_json::to_vec(&v).unwrap()).unwrap();
    // (the folder's SHA256SUMS would refuse it first: the tamperer drops it)
    std::fs::remove_file(tampered.join("SHA256SUMS")).unwrap();
    let copy = w.path("event-copy");
    common::copy_dir(&event, &copy);
    let r = w.conclave(
        &[
            "tuf-on-ci",
            "apply",
            "--event",
            s(&copy),
            "--accepted",
            s(&tampered),
        ],
        "",
    );
    assert_eq!(r.code(), 1, "{r:?}");
    assert!(
        r.stderr.contains("changes more than accepting an invite"),
        "{r:?}"
    );
    assert_eq!(
        std::fs::read(copy.join("root.json")).unwrap(),
        std::fs::read(event.join("root.json")).unwrap(),
        "no file changed"
    );

    // `apply --accepted` killed at each of its writes, then run again (issue 19).
    apply_survives_a_kill_at_every_point(&w, &event, &kg, &accepted, &bundles);

    // Killed right after the first signature is recorded, then run again: it resumes.
    let points: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, n)| n).to_string())
        .collect();
    let fsync = points
        .iter()
        .position(|p| p == "transcript fsync signed")
        .unwrap_or_else(|| panic!("no signed record among {points:?}"));
    let kill_at = (fsync + 2).to_string();
    let ws = ceremony_workspace_with(
        &w,
        "ws-invite-killed",
        (&event, "tuf-on-ci-event"),
        (&kg, "tuf-on-ci-known-good"),
    );
    let r = run_invite_ceremony(
        &w,
        &ws,
        &[
            ("CONCLAVE_TEST_FAULT_LOG", s(&w.path("killed.faults"))),
            ("CONCLAVE_TEST_FAULT_KILL_AT", &kill_at),
        ],
    );
    assert_eq!(r.status.code(), None, "killed by SIGKILL: {r:?}");
    let transcript = ws.join("accept-tuf-on-ci-invite-v1.transcript.jsonl");
    let before = records(&transcript);
    let signed_before = of(&before, "signed");
    assert_eq!(signed_before.len(), 1, "{before:?}");
    let r = run_invite_ceremony(&w, &ws, &[]);
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(
        !ws.join("accept-tuf-on-ci-invite-v2.transcript.jsonl")
            .exists()
    );
    let after = records(&transcript);
    assert!(after.iter().any(|r| r["action"] == "resume"), "{after:?}");
    assert_eq!(of(&after, "key-generated").len(), 1, "one key: {after:?}");
    assert_eq!(of(&after, "signed").len(), 2, "{after:?}");
    audit_transcript(&w, &transcript, &kg);
    let bundles = exported_folder(&ws, "tuf-on-ci-signatures-");
    let accepted = exported_folder(&ws, "tuf-on-ci-accepted-");
    let recorded = signed_before[0]["sig"].as_str().unwrap().to_string();
    let exported: Vec<String> = std::fs::read_dir(&bundles)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bundle"))
        .map(|p| {
            let b: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            b["sig"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(exported.contains(&recorded), "{exported:?}");
    let copy = w.path("event-copy-2");
    common::copy_dir(&event, &copy);
    let r = w.conclave(
        &[
            "tuf-on-ci",
            "apply",
            "--event",
            s(&copy),
            "--known-good",
            s(&kg),
            "--accepted",
            s(&accepted),
            s(&bundles),
        ],
        "",
    );
    assert_eq!(r.code(), 0, "{r:?}");

    // Killed at each point of its export and seal, then run again (issue 19).
    invite_export_survives_a_kill_at_every_point(&w, &log, &event, &kg);

    // A script whose key step says `existing = "use"`: u2's key from the first run (under the
    // ceremony's key label) is taken, recorded and reviewed as existing, and joins root under
    // the same whole-key id.
    let text = std::fs::read_to_string(
        manifest_dir().join("ceremony-scripts/accept-tuf-on-ci-invite.toml"),
    )
    .unwrap()
    .replace(
        "action = \"generate-key\"\n",
        "action = \"generate-key\"\nwith = { existing = \"use\" }\n",
    );
    assert!(text.contains("existing = \"use\""));
    let script = w.path("accept-existing.toml");
    std::fs::write(&script, text).unwrap();
    let ws = ceremony_workspace_with(
        &w,
        "ws-invite-existing",
        (&event, "tuf-on-ci-event"),
        (&kg, "tuf-on-ci-known-good"),
    );
    let r = run_invite_ceremony_with(&w, &ws, &script, &[]);
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(
        r.stdout
            .contains("@tuf-on-ci-u2 accepts the invite to sign root with the existing key"),
        "{r:?}"
    );
    let recs = records(&ws.join("accept-tuf-on-ci-invite-v1.transcript.jsonl"));
    let generated = of(&recs, "key-generated");
    assert_eq!(generated[0]["existing"], true, "{generated:?}");
    let existing_root: serde_json::Value = serde_json::from_slice(
        &std::fs::read(exported_folder(&ws, "tuf-on-ci-accepted-").join("root.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        existing_root["signed"]["keys"][u2_ids[0].as_str()]["x-tuf-on-ci-keyowner"],
        "@tuf-on-ci-u2",
        "the first run's key: {existing_root}"
    );

    // The invitee not present: refused at the import, before any PIN.
    let ws = ceremony_workspace_with(
        &w,
        "ws-invite-absent",
        (&event, "tuf-on-ci-event"),
        (&kg, "tuf-on-ci-known-good"),
    );
    let script = manifest_dir().join("ceremony-scripts/accept-tuf-on-ci-invite.toml");
    let r = run_ceremony_with(&w, &ws, &script, &[]);
    assert_ne!(r.code(), 0, "{r:?}");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains(
            "@tuf-on-ci-u2 is invited to sign root but is not a keyholder of the roll call"
        ),
        "{r:?}"
    );
}

/// Every file below `dir` (relative name, bytes).
fn files_below(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.symlink_metadata().unwrap().is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The accept-tuf-on-ci-invite ceremony killed (SIGKILL, src/fault.rs) at every point from its
/// first export write to its end (the accepted edit's folder, the signature bundles, the seal,
/// the key-event log, the transcript's export; with `CONCLAVE_FAULTS_QUICK=1` every 7th, the
/// first and the last), each time in a fresh workspace, then run again: the rerun exits 0, the
/// auditor's `transcript verify` is VALID, the export holds one accepted folder and one folder
/// of bundles and no temporary file, and `apply --accepted` of them on a copy of the event
/// succeeds. `counted`: the fault log of an uninterrupted run.
fn invite_export_survives_a_kill_at_every_point(
    w: &World,
    counted: &Path,
    event: &Path,
    kg: &Path,
) {
    let points: Vec<String> = std::fs::read_to_string(counted)
        .unwrap()
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, n)| n).to_string())
        .collect();
    let first = points
        .iter()
        .position(|p| p.starts_with("export "))
        .unwrap_or_else(|| panic!("no export point among {points:?}"));
    let quick = std::env::var_os("CONCLAVE_FAULTS_QUICK").is_some();
    let ks: Vec<usize> = (first + 1..=points.len())
        .filter(|k| !quick || (k - first - 1) % 7 == 0 || *k == points.len())
        .collect();
    let mut failures = Vec::new();
    let mut held = 0;
    for &k in &ks {
        let at = &points[k - 1];
        let ws = ceremony_workspace_with(
            w,
            &format!("ws-invite-export-k{k}"),
            (event, "tuf-on-ci-event"),
            (kg, "tuf-on-ci-known-good"),
        );
        let log = w.path(&format!("invite-export-k{k}.faults"));
        let kill = k.to_string();
        let r = run_invite_ceremony(
            w,
            &ws,
            &[
                ("CONCLAVE_TEST_FAULT_LOG", s(&log)),
                ("CONCLAVE_TEST_FAULT_KILL_AT", &kill),
            ],
        );
        if r.status.code().is_some() {
            failures.push(format!("point {k} ({at}): not killed: {r:?}"));
            continue;
        }
        let r = run_invite_ceremony(w, &ws, &[]);
        if r.status.code() != Some(0) {
            failures.push(format!("point {k} ({at}): the rerun failed: {r:?}"));
            continue;
        }
        let mut problems = Vec::new();
        let v = w.conclave(
            &[
                "transcript",
                "verify",
                s(&ws.join("accept-tuf-on-ci-invite-v1.transcript.jsonl")),
                "--trusted-root",
                s(&kg.join("root.json")),
            ],
            "",
        );
        if v.status.code() != Some(0) || !v.stdout.contains("VALID") {
            problems.push(format!("transcript verify: {v:?}"));
        }
        let files = files_below(&ws);
        for rel in files.keys() {
            let name = rel.rsplit('/').next().unwrap_or(rel);
            if name.contains(".conclave-tmp") || name.contains(".partial") {
                problems.push(format!("leftover {rel}"));
            }
        }
        let folders = |prefix: &str| -> Vec<PathBuf> {
            std::fs::read_dir(ws.join("export"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with(prefix)
                })
                .collect()
        };
        let (accepted, bundles) = (
            folders("tuf-on-ci-accepted-"),
            folders("tuf-on-ci-signatures-"),
        );
        if accepted.len() != 1 || bundles.len() != 1 {
            problems.push(format!("exported folders: {accepted:?} {bundles:?}"));
        } else {
            let copy = w.path(&format!("invite-export-k{k}-event"));
            common::copy_dir(event, &copy);
            let a = w.conclave(
                &[
                    "tuf-on-ci",
                    "apply",
                    "--event",
                    s(&copy),
                    "--known-good",
                    s(kg),
                    "--accepted",
                    s(&accepted[0]),
                    s(&bundles[0]),
                ],
                "",
            );
            if a.status.code() != Some(0) {
                problems.push(format!("apply --accepted of the export: {a:?}"));
            }
            let _ = std::fs::remove_dir_all(&copy);
        }
        if problems.is_empty() {
            held += 1;
            let _ = std::fs::remove_dir_all(&ws);
        } else {
            failures.push(format!("point {k} ({at}): {}", problems.join("; ")));
        }
    }
    eprintln!(
        "accept-tuf-on-ci-invite from its first export write: {} points of {}, {} tried, {held} held",
        points.len() - first,
        points.len(),
        ks.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `conclave tuf-on-ci apply --accepted` killed (SIGKILL, the failpoints of src/fault.rs) at
/// every point it crosses, each time on a fresh copy of the event's `metadata/`: what the kill
/// leaves has every file either as the event had it or as a whole apply writes it (never
/// torn), and the same command run again finishes: the folder then holds exactly what one
/// uninterrupted apply writes, no temporary file left (it would be committed with
/// `git add -A metadata`). Issue 19: the apply's writes are fault points like a ceremony's.
fn apply_survives_a_kill_at_every_point(
    w: &World,
    event: &Path,
    kg: &Path,
    accepted: &Path,
    bundles: &Path,
) {
    let apply = |dir: &Path, env: &[(&str, &str)]| -> Run {
        let mut c = w.cmd(BIN, "u1");
        c.args(["tuf-on-ci", "apply", "--event"])
            .arg(dir)
            .arg("--known-good")
            .arg(kg)
            .arg("--accepted")
            .arg(accepted)
            .arg(bundles)
            .current_dir(&w.root)
            .env_remove("CONCLAVE_TEST_FAULT_LOG")
            .env_remove("CONCLAVE_TEST_FAULT_KILL_AT");
        for (k, v) in env {
            c.env(k, v);
        }
        run_with_timeout(&mut c, b"", TIMEOUT)
    };
    let old = files_below(event);
    // One uninterrupted apply, counting its points.
    let clean = w.path("apply-clean");
    common::copy_dir(event, &clean);
    let log = w.path("apply-clean.faults");
    let r = apply(&clean, &[("CONCLAVE_TEST_FAULT_LOG", s(&log))]);
    assert_eq!(r.code(), 0, "{r:?}");
    let new = files_below(&clean);
    assert_ne!(new, old, "the apply changed the folder");
    let points: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, n)| n).to_string())
        .collect();
    for kind in [
        "rename root.json",
        "rename 2.root.json",
        "remove apply-clean/.signing-event-state",
    ] {
        assert!(
            points.iter().any(|p| p == kind),
            "no point {kind:?} in {points:?}"
        );
    }
    let mut failures = Vec::new();
    let mut held = 0;
    for k in 1..=points.len() {
        let before = failures.len();
        let dir = w.path(&format!("apply-k{k}"));
        common::copy_dir(event, &dir);
        let log = w.path(&format!("apply-k{k}.faults"));
        let kill = k.to_string();
        let r = apply(
            &dir,
            &[
                ("CONCLAVE_TEST_FAULT_LOG", s(&log)),
                ("CONCLAVE_TEST_FAULT_KILL_AT", &kill),
            ],
        );
        let at = &points[k - 1];
        if r.status.code().is_some() {
            failures.push(format!("point {k} ({at}): not killed: {r:?}"));
            continue;
        }
        for (rel, bytes) in files_below(&dir) {
            if rel.contains(".conclave-tmp") {
                continue;
            }
            if old.get(&rel) != Some(&bytes) && new.get(&rel) != Some(&bytes) {
                failures.push(format!("point {k} ({at}): {rel} is torn"));
            }
        }
        let r = apply(&dir, &[]);
        if r.code() != 0 {
            failures.push(format!("point {k} ({at}): the rerun failed: {r:?}"));
            continue;
        }
        let after = files_below(&dir);
        if after != new {
            let names = |m: &std::collections::BTreeMap<String, Vec<u8>>| -> Vec<String> {
                m.keys().cloned().collect()
            };
            failures.push(format!(
                "point {k} ({at}): after the rerun the folder differs from one whole apply: {:?} vs {:?}",
                names(&after),
                names(&new)
            ));
        }
        if failures.len() == before {
            held += 1;
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    eprintln!(
        "tuf-on-ci apply --accepted: {} points, {} tried, {held} held",
        points.len(),
        points.len(),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// python-tuf (with tuf-on-ci's key types registered) verifies `checkout`'s
/// `metadata/root.json` (v2) by the known-good root and by itself; `root_history/2.root.json` is
/// the same bytes, and both are byte for byte what python-tuf's JSONSerializer writes.
fn python_verifies_root_v2(w: &World, user: &str, checkout: &Path, known_good_root: &Path) {
    let check = r#"
import sys
import tuf_on_ci_sign._signer_repository  # registers sigstore-oidc keys, as tuf-on-ci does
from tuf.api.metadata import Metadata
from tuf.api.serialization.json import JSONSerializer
kg, new, hist = (open(p, "rb").read() for p in sys.argv[1:4])
old_md, new_md = Metadata.from_bytes(kg), Metadata.from_bytes(new)
old_md.verify_delegate("root", new_md)
new_md.verify_delegate("root", new_md)
assert new == hist, "root_history copy differs"
assert new_md.to_bytes(JSONSerializer()) == new, "not JSONSerializer's bytes"
print("verified root v%d" % new_md.signed.version)
"#;
    let py = w.tools.join("python");
    let r = w.ok(
        s(&py),
        user,
        &[
            "-c",
            check,
            s(known_good_root),
            s(&checkout.join("metadata/root.json")),
            s(&checkout.join("metadata/root_history/2.root.json")),
        ],
        checkout,
        "",
    );
    assert_eq!(r.stdout.trim(), "verified root v2", "{r:?}");
}

/// `conclave transcript verify TRANSCRIPT --trusted-root KNOWN_GOOD/root.json`: VALID; its text.
fn audit_transcript(w: &World, transcript: &Path, known_good: &Path) -> String {
    let r = w.conclave(
        &[
            "transcript",
            "verify",
            s(transcript),
            "--trusted-root",
            s(&known_good.join("root.json")),
        ],
        "",
    );
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(r.stdout.contains("VALID"), "{r:?}");
    r.stdout
}

/// Hostile text a signing event can carry in names: a title-setting OSC, a screen clear, a
/// bidi override, zero-width characters, NUL, a newline that would start a fake review line,
/// and 100 KB of name.
fn hostile_handle() -> String {
    format!(
        "@evil\u{1b}]0;PWNED-TITLE\u{7}\u{1b}[2J\u{202e}live\u{200b}\u{200d}\u{0}\n- removed owner carol{}",
        "A".repeat(100 * 1024)
    )
}

/// The sign-tuf-on-ci-event ceremony in the terminal UI (tmux, 80×24, every byte the program
/// writes logged by `pipe-pane`) on a hostile event: its `.signing-event-state` invites a user
/// whose handle and role name carry [`hostile_handle`]'s escape sequences, bidi override,
/// zero-width characters, NUL and 100 KB, and the event folder holds a file whose name carries
/// an escape sequence, a bidi override and a zero-width space. The import refuses the event
/// with the file and the field named, every hostile character shown as a visible escape (the
/// 100 KB cut with its length), no raw control byte or OSC written to the terminal, the pane's
/// title unchanged, no line of the screen starting with the smuggled "- removed owner" line,
/// and nothing signed. The accept-tuf-on-ci-invite ceremony then refuses the same invite (its
/// hostile invitee is no keyholder of the roll call) the same way.
#[test]
fn the_tui_refuses_a_hostile_event_showing_every_name_escaped() {
    use common::tmux::Tmux;
    let w = world();
    let event = w.path("stick/hostile-event");
    common::copy_dir(&w.path("stick/event"), &event);
    let handle = hostile_handle();
    let state = serde_json::json!({ "invites": { handle.clone(): ["root\u{1b}[31m\u{202e}"] } });
    std::fs::write(
        event.join(".signing-event-state"),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();
    std::fs::write(event.join("evil\u{1b}[8m\u{202e}\u{200b}.json"), b"{}").unwrap();
    let ws = ceremony_workspace(&w, "ws-hostile", &event);
    let script = manifest_dir().join("ceremony-scripts/sign-tuf-on-ci-event.toml");
    let t = Tmux::start(
        "tot-hostile",
        &format!(
            "SOFTHSM2_CONF={} {BIN} tui --practice --workspace {} --script {}",
            s(&w.path("u1/softhsm2.conf")),
            s(&ws),
            s(&script)
        ),
    );
    let log = w.path("pane.log");
    t.log_output(&log);
    let title = t.title();
    t.begin();
    t.open_with_roll_call("BAG-T0C1", ["ada", "@tuf-on-ci-u1", "wendy"]);
    t.wait_for("Enter import and review");
    t.send(&["Enter"]);
    // The file name first: refused, named escaped.
    let screen = t.wait_for_words(
        "evil\\x1b[8m\\u{202e}\\u{200b}.json: \"evil\\x1b[8m\\u{202e}\\u{200b}.json\": not a",
    );
    let flat = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("not a valid file name: contains a control character"),
        "{screen}"
    );
    assert_only_sgr(&t.styled_screen());
    // The file taken off the media, the import again: the hostile invite is refused, its
    // handle shown escaped and cut with its length, the file and the field named.
    let event_in = ws.join("input/tuf-on-ci-event");
    for e in std::fs::read_dir(&event_in).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("evil") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    t.send(&["Enter"]);
    let screen = t.wait_for_words("open invite for");
    let flat: String = screen.split_whitespace().collect();
    for want in [
        ".signing-event-state",
        "@evil\\x1b]0;PWNED-TITLE\\x07\\x1b[2J\\u{202e}live\\u{200b}\\u{200d}\\x00\\n-",
    ] {
        let want: String = want.split_whitespace().collect();
        assert!(
            flat.contains(&want),
            "the screen never showed {want:?}:\n{screen}"
        );
    }
    for line in screen.lines() {
        assert!(
            !line.trim_start().starts_with("- removed owner carol")
                && !line.trim_start().starts_with("n- removed owner"),
            "a fake line:\n{screen}"
        );
    }
    let styled = t.styled_screen();
    assert_only_sgr(&styled);
    let raw = std::fs::read(&log).unwrap();
    assert_no_hostile_bytes(&raw);
    assert_eq!(t.title(), title, "the terminal title changed");
    t.send(&["C-c"]);
    t.wait_for("Stop now?");
    t.send(&["y"]);
    t.wait_for("EXIT=");
    let raw = std::fs::read(&log).unwrap();
    assert_no_hostile_bytes(&raw);
    let text =
        std::fs::read_to_string(ws.join("sign-tuf-on-ci-event-v1.transcript.jsonl")).unwrap();
    assert!(!text.contains("\"action\":\"signed\""), "{text}");

    // The accept-tuf-on-ci-invite ceremony on the same event (the bad file name gone): the
    // hostile invitee is no keyholder present, so the import refuses the invite, the handle
    // shown escaped, nothing raw on the terminal.
    let ws = ceremony_workspace_with(
        &w,
        "ws-hostile-invite",
        (&event_in, "tuf-on-ci-event"),
        (&w.path("stick/known-good"), "tuf-on-ci-known-good"),
    );
    let script = manifest_dir().join("ceremony-scripts/accept-tuf-on-ci-invite.toml");
    let t = Tmux::start(
        "tot-hostile-invite",
        &format!(
            "SOFTHSM2_CONF={} {BIN} tui --practice --workspace {} --script {}",
            s(&w.path("u1/softhsm2.conf")),
            s(&ws),
            s(&script)
        ),
    );
    let log = w.path("pane-invite.log");
    t.log_output(&log);
    let title = t.title();
    t.begin();
    t.open_with_roll_call("BAG-T0C1", ["ada", "@tuf-on-ci-u1", "wendy"]);
    t.wait_for("Enter import and review");
    t.send(&["Enter"]);
    let screen = t.wait_for("@evil\\x1b]0;PWNED-TITLE\\x07\\x1b[2J\\u{202e}live\\u{200b}");
    let flat = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("(102455 characters) is invited to sign root\\x1b[31m\\u{202e} but is not a keyholder of the roll call"),
        "{screen}"
    );
    for line in screen.lines() {
        assert!(
            !line.trim_start().starts_with("- removed owner carol")
                && !line.trim_start().starts_with("n- removed owner"),
            "a fake line:\n{screen}"
        );
    }
    assert_only_sgr(&t.styled_screen());
    assert_eq!(t.title(), title, "the terminal title changed");
    t.send(&["C-c"]);
    t.wait_for("Stop now?");
    t.send(&["y"]);
    t.wait_for("EXIT=");
    assert_no_hostile_bytes(&std::fs::read(&log).unwrap());
}

/// Every escape sequence of a `capture-pane -e` screen is the UI's own styling (SGR).
fn assert_only_sgr(styled: &str) {
    let mut rest = styled;
    while let Some(i) = rest.find('\u{1b}') {
        let seq = &rest[i + 1..];
        let ok = seq.starts_with('[')
            && seq[1..]
                .find(|c: char| !(c.is_ascii_digit() || c == ';' || c == ':'))
                .is_some_and(|end| seq.as_bytes().get(1 + end) == Some(&b'm'));
        assert!(
            ok,
            "not a styling sequence: {:?}",
            seq.chars().take(20).collect::<String>()
        );
        rest = &rest[i + 1..];
    }
}

/// What the program wrote to the pane holds none of the hostile bytes raw: no title-setting
/// OSC, no NUL, no bidi override or zero-width character, not the event's clear-screen or
/// conceal sequence followed by its text.
fn assert_no_hostile_bytes(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    for bad in [
        "\u{1b}]",
        "\u{202e}",
        "\u{200b}",
        "\u{200d}",
        "\u{1b}[2J\u{202e}",
        "\u{1b}[8m\u{202e}",
        "\u{1b}[31m\u{202e}",
        "PWNED-TITLE\u{7}",
    ] {
        assert!(!text.contains(bad), "{bad:?} reached the terminal raw");
    }
    assert!(!raw.contains(&0), "a NUL reached the terminal");
}
