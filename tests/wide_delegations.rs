//! Repositories whose targets delegates to many roles at once (hash bins, claimed projects):
//! Conclave verifies such siblings on several cores ahead of its walk. These tests check that
//! what a user sees does not depend on that: the report lists the roles in the specification's
//! order (pre-order, depth first, in listed order), a role reached through two delegators is
//! verified against each, and the failure reported is the first one in that order.

mod common;

use common::builders::*;
use serde_json::Value as J;

/// Number of roles targets delegates to: above the count at which siblings are verified in
/// parallel.
const WIDE: usize = 40;

fn key(i: usize) -> TestKey {
    TestKey::ed25519(20 + i as u8)
}

fn name(i: usize) -> String {
    format!("role-{i:02}")
}

fn leaf(version: u64) -> J {
    targets(version, &[("file.txt", b"content")], None)
}

/// targets → role-00..role-39 (one key each); role-03 → nested-a, nested-b, role-05.
fn wide_repo() -> Repo {
    let keys: Vec<TestKey> = (0..WIDE).map(key).collect();
    let key_refs: Vec<&TestKey> = keys.iter().collect();
    let entries: Vec<J> = (0..WIDE)
        .map(|i| drole(&name(i), &[&keys[i]], 1, false, &["*"]))
        .collect();
    let mut repo = Repo::new();
    repo.targets = targets(1, &[], Some(delegations(&key_refs, entries)));
    let (na, nb) = (TestKey::ed25519(90), TestKey::ed25519(91));
    for i in 0..WIDE {
        let signed = if i == 3 {
            targets(
                1,
                &[],
                Some(delegations(
                    &[&na, &nb, &keys[5]],
                    vec![
                        drole("nested-a", &[&na], 1, false, &["*"]),
                        drole("nested-b", &[&nb], 1, false, &["*"]),
                        drole(&name(5), &[&keys[5]], 1, false, &["*"]),
                    ],
                )),
            )
        } else {
            leaf(1)
        };
        repo = repo.role(&name(i), signed, &[&keys[i]]);
    }
    repo.role("nested-a", leaf(1), &[&na])
        .role("nested-b", leaf(1), &[&nb])
}

fn roles_in_report(
    repo_files: &Repo,
    extra: Vec<(String, Vec<u8>)>,
) -> Result<Vec<String>, String> {
    let report = repo_files.verify_with(extra.into_iter().collect());
    verdict(&report)?;
    Ok(report
        .roles
        .iter()
        .map(|r| format!("{} by {}", r.role, r.delegator))
        .collect())
}

#[test]
fn many_sibling_roles_are_reported_in_the_specifications_order() {
    let repo = wide_repo();
    let got = roles_in_report(&repo, Vec::new()).expect("the wide repository verifies");
    let mut want = vec![
        "timestamp by root".to_string(),
        "snapshot by root".to_string(),
        "targets by root".to_string(),
    ];
    for i in 0..WIDE {
        want.push(format!("{} by targets", name(i)));
        if i == 3 {
            want.push("nested-a by role-03".into());
            want.push("nested-b by role-03".into());
            want.push("role-05 by role-03".into());
        }
    }
    assert_eq!(got, want);
}

#[test]
fn a_role_reached_through_two_delegators_is_checked_against_each() {
    // role-03 lists role-05 with a key that did not sign role-05: reached through role-03 the
    // role fails, even though targets (whose entry is checked later) names the right key.
    let mut repo = wide_repo();
    let (_, signed, _) = repo
        .roles
        .iter_mut()
        .find(|(n, _, _)| n == "role-03")
        .unwrap();
    let other = TestKey::ed25519(99);
    let d = &mut signed["delegations"];
    d["keys"][other.id.clone()] = other.json.clone();
    d["roles"][2]["keyids"] = serde_json::json!([other.id.clone()]);
    let err = verdict(&repo.verify()).expect_err("role-05 is not signed by role-03's key");
    assert!(err.contains("role-05"), "{err}");
    assert!(
        err.contains("role-03"),
        "names the delegator it was checked against: {err}"
    );
}

#[test]
fn the_first_failure_in_the_walks_order_is_the_one_reported() {
    let repo = wide_repo();
    let wrong = TestKey::ed25519(98);
    let mut files = repo.files();
    // role-30 signed by a key nobody delegated to, role-12 too, and nested-b (reached after
    // role-03, before role-04) as well: nested-b comes first in the walk.
    for role in ["role-30", "role-12", "nested-b"] {
        let (_, signed, _) = repo.roles.iter().find(|(n, _, _)| n == role).unwrap();
        files.insert(format!("{role}.json"), sign(signed, &[&wrong]));
    }
    let trusted = repo.trusted_root();
    let report =
        conclave::tuf::repository::verify_repository("1.root.json", &trusted, &files, now());
    let err = verdict(&report).expect_err("three roles are badly signed");
    assert!(
        err.contains("nested-b"),
        "the first in pre-order is reported: {err}"
    );
    assert!(
        !err.contains("role-12") && !err.contains("role-30"),
        "{err}"
    );
    // Without nested-b's fault, role-12 is the first.
    files.insert(
        "nested-b.json".into(),
        sign(
            &repo
                .roles
                .iter()
                .find(|(n, _, _)| n == "nested-b")
                .unwrap()
                .1,
            &[&TestKey::ed25519(91)],
        ),
    );
    let report =
        conclave::tuf::repository::verify_repository("1.root.json", &trusted, &files, now());
    let err = verdict(&report).expect_err("two roles are badly signed");
    assert!(err.contains("role-12") && !err.contains("role-30"), "{err}");
}

#[test]
fn a_missing_sibling_file_is_named_in_order_among_bad_signatures() {
    let repo = wide_repo();
    let mut files = repo.files();
    files.remove("role-07.json");
    let wrong = TestKey::ed25519(98);
    let (_, signed, _) = repo.roles.iter().find(|(n, _, _)| n == "role-20").unwrap();
    files.insert("role-20.json".into(), sign(signed, &[&wrong]));
    let trusted = repo.trusted_root();
    let report =
        conclave::tuf::repository::verify_repository("1.root.json", &trusted, &files, now());
    let err = verdict(&report).expect_err("role-07 is missing");
    assert!(err.contains("role-07"), "{err}");
    assert!(!err.contains("role-20"), "{err}");
}

#[test]
fn wide_repository_verifies_from_a_folder_with_the_command() {
    // The same through `conclave verify` on a folder, as an auditor runs it.
    let repo = wide_repo();
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in repo.files() {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    std::fs::write(dir.path().join("1.root.json"), repo.trusted_root()).unwrap();
    let stdout = verify_valid(
        std::process::Command::new(env!("CARGO_BIN_EXE_conclave")),
        dir.path(),
    );
    let pos = |s: &str| {
        stdout
            .find(s)
            .unwrap_or_else(|| panic!("{s} missing:\n{stdout}"))
    };
    assert!(
        pos("  role-03 v1 (") < pos("  nested-a v1 (")
            && pos("  nested-b v1 (") < pos("  role-04 v1 ("),
        "{stdout}"
    );
}

#[test]
fn a_folder_that_can_be_searched_but_not_listed_still_verifies() {
    // An auditor's copy where the folder is 0711 and its files readable: every file is opened
    // by name, nothing needs the listing (root ignores permissions, so as root the command runs
    // as nobody).
    let repo = wide_repo();
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("repo");
    std::fs::create_dir(&dir).unwrap();
    for (name, bytes) in repo.files() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    std::fs::write(dir.join("1.root.json"), repo.trusted_root()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    let as_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let cmd = if as_root {
        // A copy beside the folder: the build's own folder may be closed to nobody.
        let bin = top.path().join("conclave");
        std::fs::copy(env!("CARGO_BIN_EXE_conclave"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        c.arg(bin);
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_conclave"))
    };
    let verified =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| verify_valid(cmd, &dir)));
    // Listable again, so that the temporary folder can be removed whatever happened.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    if let Err(panic) = verified {
        std::panic::resume_unwind(panic);
    }
}

/// Run `cmd verify` on the repository in `dir` (trusted root `dir/1.root.json`), check that it
/// is VALID, and return what it printed.
fn verify_valid(mut cmd: std::process::Command, dir: &std::path::Path) -> String {
    let out = cmd
        .args(["verify", "--trusted-root"])
        .arg(dir.join("1.root.json"))
        .arg("--repo")
        .arg(dir)
        .args(["--at", "2026-01-01T00:00:00Z"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("VALID"), "{stdout}");
    stdout
}
