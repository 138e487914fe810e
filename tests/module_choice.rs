//! Which PKCS#11 module a command loads when nothing names one (issue 16 item 7): two real
//! modules, SoftHSM2 and kryoptic (a software token, `CONCLAVE_KRYOPTIC`), listed in the
//! configuration's `pkcs11.modules`; tokens on one, the other or both. Each candidate is loaded
//! and its tokens listed: the one module with a token present is used and named, several are
//! refused naming each, and a real ceremony never loads SoftHSM2 while practice may.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::profile::{SOFTHSM, kryoptic_module, kryoptic_tokens, practice_tokens, profile_module};
use common::{Run, run_with_timeout};

const TIMEOUT: Duration = Duration::from_secs(120);

/// SoftHSM2 and kryoptic configurations, each with tokens or empty, and a configuration file
/// listing both modules.
struct Two {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    kryoptic: String,
    config: PathBuf,
    softhsm_conf: PathBuf,
    kryoptic_conf: PathBuf,
}

impl Two {
    /// `softhsm`/`kryoptic`: the token labels each module shows (none: an empty store, whose
    /// only slot holds no initialised token).
    fn new(softhsm: &[&str], kryoptic: &[&str]) -> Two {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let module = kryoptic_module();
        let softhsm_conf = if softhsm.is_empty() {
            let dir = root.join("softhsm-empty");
            std::fs::create_dir_all(&dir).unwrap();
            let conf = root.join("softhsm2-empty.conf");
            std::fs::write(&conf, format!("directories.tokendir = {}\n", dir.display())).unwrap();
            conf
        } else {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_conclave"));
            cmd.args(["token", "init-practice", "--json", "--type", "none"])
                .args(["--module", SOFTHSM, "--keyholders", &softhsm.join(",")])
                .arg("--dir")
                .arg(root.join("practice"))
                .env_remove("SOFTHSM2_CONF");
            let run = run_with_timeout(&mut cmd, b"", TIMEOUT);
            assert_eq!(run.code(), 0, "init-practice failed: {run:?}");
            practice_tokens(&run).0
        };
        let kdir = root.join("kryoptic");
        std::fs::create_dir_all(&kdir).unwrap();
        let kryoptic_conf = if kryoptic.is_empty() {
            let conf = kdir.join("kryoptic.conf");
            std::fs::write(
                &conf,
                format!(
                    "[[slots]]\nslot = 1\ndbtype = \"sqlite\"\ndbargs = \"{}\"\n",
                    kdir.join("empty.sql").display()
                ),
            )
            .unwrap();
            conf
        } else {
            kryoptic_tokens(&kdir, &module, kryoptic).0
        };
        let config = root.join("config.toml");
        std::fs::write(
            &config,
            format!("[pkcs11]\nmodules = [\"{SOFTHSM}\", \"{module}\"]\n"),
        )
        .unwrap();
        Two {
            _tmp: tmp,
            root,
            kryoptic: module,
            config,
            softhsm_conf,
            kryoptic_conf,
        }
    }

    fn conclave(&self, args: &[&str]) -> Run {
        self.conclave_env(args, &[])
    }

    fn conclave_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_conclave"));
        cmd.envs(env.iter().copied());
        cmd.args(args)
            .env("CONCLAVE_CONFIG", &self.config)
            .env("SOFTHSM2_CONF", &self.softhsm_conf)
            .env("KRYOPTIC_CONF", &self.kryoptic_conf)
            .current_dir(&self.root);
        run_with_timeout(&mut cmd, b"", TIMEOUT)
    }

    /// `ceremony run bootstrap-root` with an answers file that names no module; only the
    /// module line and the refusal matter here (no PINs are given).
    fn ceremony(&self, practice: bool) -> Run {
        let ws = self.root.join(format!("ws-{practice}"));
        std::fs::create_dir_all(ws.join("input")).unwrap();
        let answers = self.root.join(format!("answers-{practice}.toml"));
        std::fs::write(
            &answers,
            format!(
                "practice = {practice}\nacknowledgement = \"BAG-A1234567\"\n\n[people]\n\
                 administrator = \"ada\"\nkeyholders = [\"alice\", \"bob\", \"carol\"]\n\
                 witnesses = [\"wendy\"]\n\n[parameters]\nkey_type = \"ed25519\"\n"
            ),
        )
        .unwrap();
        self.conclave(&[
            "ceremony",
            "run",
            "bootstrap-root",
            "--workspace",
            ws.to_str().unwrap(),
            "--answers",
            answers.to_str().unwrap(),
            "--pin-stdin",
        ])
    }
}

/// The `conclave: PKCS#11 module ...` line of a `ceremony run` (standard error).
fn module_line(run: &Run) -> &str {
    run.stderr
        .lines()
        .find(|l| l.starts_with("conclave: PKCS#11 module "))
        .unwrap_or_else(|| panic!("no module line: {run:?}"))
}

/// The `module ...` line of a `token list`: its first line on standard output, the module and
/// what chose it and why, said once (nothing about the module on standard error).
fn listed_module_line(run: &Run) -> &str {
    assert!(
        !run.stderr.contains("PKCS#11 module"),
        "said twice: {run:?}"
    );
    run.stdout
        .lines()
        .next()
        .filter(|l| l.starts_with("module "))
        .unwrap_or_else(|| panic!("no module line: {run:?}"))
}

#[test]
fn the_one_module_with_a_token_present_is_picked_and_named() {
    // Tokens on kryoptic only; SoftHSM2 (listed first) shows only its empty slot.
    let two = Two::new(&[], &["bob"]);
    let run = two.conclave(&["token", "list"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("token \"bob\""), "{run:?}");
    let line = listed_module_line(&run);
    assert!(
        line.starts_with(&format!("module {} (chosen by ", two.kryoptic))
            && line
                .contains("config.toml:2 (pkcs11.modules): the only one with a token present: bob"),
        "{line}"
    );

    // Tokens on SoftHSM2 only: a token command (practice allowed) picks SoftHSM2.
    let two = Two::new(&["alice"], &[]);
    let run = two.conclave(&["token", "list"]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("token \"alice\""), "{run:?}");
    assert!(
        listed_module_line(&run).starts_with(&format!("module {SOFTHSM} (chosen by ")),
        "{run:?}"
    );
}

#[test]
fn two_modules_with_tokens_are_refused_naming_both() {
    let two = Two::new(&["alice"], &["bob"]);
    let run = two.conclave(&["token", "list"]);
    assert_eq!(run.code(), 2, "{run:?}");
    let e = &run.stderr;
    assert!(
        e.contains("several PKCS#11 modules have a token present")
            && e.contains(&format!("{SOFTHSM} (alice (serial "))
            && e.contains(&format!("{} (bob (serial ", two.kryoptic))
            && e.contains("--module PATH or with pkcs11.module"),
        "{run:?}"
    );
    // --module settles it.
    let run = two.conclave(&["token", "list", "--module", &two.kryoptic]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("token \"bob\""), "{run:?}");
    assert!(!run.stdout.contains("token \"alice\""), "{run:?}");
}

#[test]
fn practice_may_pick_softhsm2_and_a_real_ceremony_never_does() {
    // SoftHSM2 tokens only: practice picks SoftHSM2, a real ceremony loads kryoptic (SoftHSM2
    // left out of its candidates) and never SoftHSM2.
    let two = Two::new(&["alice", "bob", "carol"], &[]);
    let practice = two.ceremony(true);
    assert!(
        module_line(&practice)
            .starts_with(&format!("conclave: PKCS#11 module {SOFTHSM} (chosen by ")),
        "{practice:?}"
    );
    let real = two.ceremony(false);
    assert_ne!(real.code(), 0, "no token for a real ceremony: {real:?}");
    let line = module_line(&real);
    assert!(
        line.starts_with(&format!(
            "conclave: PKCS#11 module {} (chosen by ",
            two.kryoptic
        )),
        "{real:?}"
    );
    assert!(!real.stderr.contains(SOFTHSM), "{real:?}");

    // Tokens on both: practice is refused naming both; a real ceremony still takes kryoptic.
    let two = Two::new(&["alice"], &["bob"]);
    let practice = two.ceremony(true);
    assert_eq!(practice.code(), 2, "{practice:?}");
    assert!(
        practice
            .stderr
            .contains("several PKCS#11 modules have a token present")
            && practice.stderr.contains(SOFTHSM)
            && practice.stderr.contains(&two.kryoptic),
        "{practice:?}"
    );
    let real = two.ceremony(false);
    assert!(
        module_line(&real).starts_with(&format!(
            "conclave: PKCS#11 module {} (chosen by ",
            two.kryoptic
        )),
        "{real:?}"
    );
    assert!(!Path::new(&two.kryoptic).ends_with("libsofthsm2.so"));
}

/// A module that hangs while listing its slots (the device-profile module over SoftHSM2 with
/// `CONCLAVE_PROFILE_HANG_SECONDS`: no vendor's behaviour, a stuck driver) is named and skipped
/// after the probe's 15 s; the other listed module, with a token present, is used.
#[test]
fn a_module_that_hangs_is_named_and_skipped() {
    let two = Two::new(&["alice"], &["bob"]);
    let profile = profile_module().to_str().unwrap().to_string();
    std::fs::write(
        &two.config,
        format!(
            "[pkcs11]\nmodules = [\"{profile}\", \"{}\"]\n",
            two.kryoptic
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let run = two.conclave_env(
        &["token", "list"],
        &[
            ("CONCLAVE_PROFILE", "none"),
            ("CONCLAVE_PROFILE_HANG_SECONDS", "90"),
        ],
    );
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(60), "{run:?}");
    assert!(run.stdout.contains("token \"bob\""), "{run:?}");
    let line = listed_module_line(&run);
    assert!(
        line.starts_with(&format!("module {} (chosen by ", two.kryoptic))
            && line.contains("the only one with a token present: bob")
            && line.contains(&format!(
                "{profile} skipped: loading it or listing its tokens did not finish within 15 s"
            )),
        "{line}"
    );
}
