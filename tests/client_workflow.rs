//! The core's client-workflow steps that a TUF client needs beyond verifying a repository folder
//! (used by `conclave-conformance-client`): the metadata a client stored at its last update is
//! loaded first and kept for rollback checks even when it is expired (spec 5.4-5.5, python-tuf's
//! `TrustedMetadataSet`), a timestamp with the trusted version is discarded rather than refused,
//! and an expired stored timestamp never lets a snapshot through.

mod common;

use common::builders::*;
use conclave::tuf::verify::{TrustedSet, trust_root};
use serde_json::Value as J;

fn session(repo: &Repo) -> TrustedSet {
    let (root, _) = trust_root("1.root.json", &repo.trusted_root()).unwrap();
    TrustedSet::new(root, now())
}

fn ts(repo: &Repo, version: u64, snapshot_version: u64, expires: &str) -> Vec<u8> {
    let mut t = timestamp(version, snapshot_version);
    t["expires"] = J::from(expires);
    sign(&t, &[&repo.timestamp_key])
}

fn snap(repo: &Repo, version: u64, targets_version: u64, expires: &str) -> Vec<u8> {
    let mut s = snapshot(version, &[("targets.json", targets_version)]);
    s["expires"] = J::from(expires);
    sign(&s, &[&repo.snapshot_key])
}

fn targets_file(repo: &Repo, version: u64) -> Vec<u8> {
    sign(&targets(version, &[], None), &[&repo.targets_key])
}

const PAST: &str = "2025-01-01T00:00:00Z";

#[test]
fn expired_stored_timestamp_is_kept_for_rollback_checks_only() {
    let repo = Repo::new();
    let mut set = session(&repo);
    set.load_stored_timestamp("timestamp.json", &ts(&repo, 5, 3, PAST))
        .unwrap();
    // A rollback below the stored version is refused...
    let err = set
        .update_timestamp_or_keep("timestamp.json", &ts(&repo, 4, 3, EXPIRES))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("timestamp version 4 is older than trusted version 5"),
        "{err}"
    );
    // ...and so is a timestamp naming an older snapshot.
    let err = set
        .update_timestamp_or_keep("timestamp.json", &ts(&repo, 6, 2, EXPIRES))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("snapshot version 2, older than trusted version 3"),
        "{err}"
    );
    // The same version is discarded, not an error; the expired stored one stays, and no
    // snapshot can be verified against it.
    assert!(
        !set.update_timestamp_or_keep("timestamp.json", &ts(&repo, 5, 3, EXPIRES))
            .unwrap()
    );
    let err = set
        .update_snapshot("snapshot.json", &snap(&repo, 3, 1, EXPIRES))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("timestamp expired at 2025-01-01T00:00:00Z"),
        "{err}"
    );
    // A newer timestamp replaces it and the snapshot verifies.
    assert!(
        set.update_timestamp_or_keep("timestamp.json", &ts(&repo, 6, 3, EXPIRES))
            .unwrap()
    );
    set.update_snapshot("snapshot.json", &snap(&repo, 3, 1, EXPIRES))
        .unwrap();
    set.update_targets("targets.json", targets_file(&repo, 1))
        .unwrap();
}

#[test]
fn stored_timestamp_by_a_key_root_no_longer_lists_is_not_loaded() {
    // After a timestamp key rotation the stored timestamp does not verify: it is not loaded, so
    // a repository that had to reset its timestamp version is followed (fast-forward recovery).
    let repo = Repo::new();
    let mut set = session(&repo);
    let by_old_key = sign(&timestamp(1000, 1), &[&TestKey::ed25519(9)]);
    let err = set
        .load_stored_timestamp("timestamp.json", &by_old_key)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("timestamp is not signed by a threshold"),
        "{err}"
    );
    assert!(set.timestamp().is_none());
    assert!(
        set.update_timestamp_or_keep("timestamp.json", &ts(&repo, 1, 1, EXPIRES))
            .unwrap()
    );
}

#[test]
fn equal_timestamp_is_still_an_error_for_update_timestamp() {
    // The existing step keeps its behaviour: only the client step discards an equal version.
    let repo = Repo::new();
    let mut set = session(&repo);
    set.update_timestamp("timestamp.json", &ts(&repo, 2, 1, EXPIRES))
        .unwrap();
    let err = set
        .update_timestamp("timestamp.json", &ts(&repo, 2, 1, EXPIRES))
        .unwrap_err()
        .to_string();
    assert!(err.contains("equals the trusted version"), "{err}");
}

#[test]
fn stored_snapshot_is_final_only_when_it_is_the_named_version_and_not_expired() {
    let repo = Repo::new();
    // The version the timestamp names, not expired: final, targets verify against it.
    let mut set = session(&repo);
    set.update_timestamp("timestamp.json", &ts(&repo, 2, 2, EXPIRES))
        .unwrap();
    assert!(
        set.load_stored_snapshot("snapshot.json", &snap(&repo, 2, 1, EXPIRES))
            .unwrap()
    );
    set.update_targets("targets.json", targets_file(&repo, 1))
        .unwrap();

    // An older version: kept for rollback checks, targets cannot be verified against it.
    let mut set = session(&repo);
    set.update_timestamp("timestamp.json", &ts(&repo, 3, 3, EXPIRES))
        .unwrap();
    assert!(
        !set.load_stored_snapshot("snapshot.json", &snap(&repo, 2, 4, EXPIRES))
            .unwrap()
    );
    let err = set
        .update_targets("targets.json", targets_file(&repo, 4))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("snapshot version 3 named by the trusted timestamp is not loaded"),
        "{err}"
    );
    // The new snapshot may not take targets back below the stored snapshot's version 4...
    let err = set
        .update_snapshot("snapshot.json", &snap(&repo, 3, 3, EXPIRES))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("targets.json version 3 is older than trusted version 4"),
        "{err}"
    );
    // ...and is trusted when it does not.
    set.update_snapshot("snapshot.json", &snap(&repo, 3, 4, EXPIRES))
        .unwrap();
    set.update_targets("targets.json", targets_file(&repo, 4))
        .unwrap();

    // Expired: kept for rollback checks only.
    let mut set = session(&repo);
    set.update_timestamp("timestamp.json", &ts(&repo, 2, 2, EXPIRES))
        .unwrap();
    assert!(
        !set.load_stored_snapshot("snapshot.json", &snap(&repo, 2, 1, PAST))
            .unwrap()
    );
    assert!(
        set.update_targets("targets.json", targets_file(&repo, 1))
            .is_err()
    );
}

#[test]
fn stored_snapshot_needs_a_valid_signature_and_a_current_timestamp() {
    let repo = Repo::new();
    let mut set = session(&repo);
    let err = set
        .load_stored_snapshot("snapshot.json", &snap(&repo, 1, 1, EXPIRES))
        .unwrap_err()
        .to_string();
    assert!(err.contains("before a timestamp is trusted"), "{err}");

    set.update_timestamp("timestamp.json", &ts(&repo, 2, 2, EXPIRES))
        .unwrap();
    let by_other_key = sign(
        &snapshot(2, &[("targets.json", 1)]),
        &[&TestKey::ed25519(9)],
    );
    let err = set
        .load_stored_snapshot("snapshot.json", &by_other_key)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("snapshot is not signed by a threshold"),
        "{err}"
    );
    assert!(set.snapshot().is_none());

    let mut set = session(&repo);
    set.load_stored_timestamp("timestamp.json", &ts(&repo, 2, 2, PAST))
        .unwrap();
    let err = set
        .load_stored_snapshot("snapshot.json", &snap(&repo, 2, 1, EXPIRES))
        .unwrap_err()
        .to_string();
    assert!(err.contains("timestamp expired"), "{err}");
}

/// A client's cached copy of a delegated role that no longer verifies (its delegator's keys
/// changed and the repository re-signed it, a copy damaged on disk) is replaced by a fetched
/// one, as python-tuf's ngclient does; before, the search failed on the cached copy and the
/// client never fetched the role again until its version changed.
#[test]
fn a_cached_delegated_role_that_no_longer_verifies_is_fetched_once_more() {
    let dev = TestKey::ed25519(7);
    let old_dev = TestKey::ed25519(8);
    let role = targets(1, &[("proj/app.txt", b"app")], None);
    let mut repo = Repo::new();
    repo.targets = targets(
        1,
        &[],
        Some(delegations(
            &[&dev],
            vec![drole("proj", &[&dev], 1, true, &["proj/*"])],
        )),
    );
    let repo = repo.role("proj", role.clone(), &[&dev]);
    let f = repo.files();
    let mut set = session(&repo);
    set.update_timestamp("timestamp.json", &f["timestamp.json"])
        .unwrap();
    set.update_snapshot("snapshot.json", &f["snapshot.json"])
        .unwrap();
    set.update_targets("targets.json", &f["targets.json"])
        .unwrap();
    // The cached copy: the same version, signed by the key the role had before.
    let stale = sign(&role, &[&old_dev]);
    let fetched = std::cell::Cell::new(0);
    let search = set
        .find_target_cached(
            "proj/app.txt",
            |_| Some(stale.clone()),
            |r| {
                fetched.set(fetched.get() + 1);
                f.get(&format!("{r}.json")).cloned()
            },
        )
        .unwrap();
    assert_eq!(search.found.map(|(r, _)| r), Some("proj".to_string()));
    assert_eq!(fetched.get(), 1, "the role is fetched exactly once");
    // A cached copy that verifies is used without a fetch.
    let fetched = std::cell::Cell::new(0);
    set.find_target_cached(
        "proj/app.txt",
        |r| f.get(&format!("{r}.json")).cloned(),
        |_| {
            fetched.set(fetched.get() + 1);
            None
        },
    )
    .unwrap();
    assert_eq!(fetched.get(), 0);
    // And when the fetched copy does not verify either, the error is the fetched copy's.
    let err = set
        .find_target_cached(
            "proj/app.txt",
            |_| Some(stale.clone()),
            |_| Some(stale.clone()),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("proj"), "{err}");
}
