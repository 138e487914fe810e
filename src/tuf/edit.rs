//! Building and changing metadata: new roots and root versions, key and threshold changes,
//! targets and delegations, snapshot and timestamp. Every change is checked so that Conclave
//! never writes metadata that cannot be verified (threshold 0 or above the number of keys,
//! unsafe role names, versions that do not move forward).

use std::collections::{BTreeMap, HashSet};

use time::OffsetDateTime;

use super::canonical::Map;
use super::key::{Key, KeyId};
use super::metadata::{
    Common, DelegatedRole, Delegations, Expires, MetaFile, Role, RoleType, Root, SignedPayload,
    Snapshot, SuccinctRoles, TargetFile, Targets, Timestamp,
};
use super::repository::is_safe_file_name;

/// The spec version Conclave writes.
pub const SPEC_VERSION: &str = "1.0.31";

/// Why an edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// A threshold below 1 or above the number of keys.
    #[error("{role}: threshold {threshold} is not between 1 and the role's {keys} key(s)")]
    Threshold {
        /// Role name.
        role: String,
        /// Threshold asked for.
        threshold: u64,
        /// Keys the role has.
        keys: usize,
    },
    /// A key is already listed for the role.
    #[error("{role}: key {keyid} is already listed")]
    DuplicateKey {
        /// Role name.
        role: String,
        /// Key id.
        keyid: KeyId,
    },
    /// The same key material is already listed for the role under another key id.
    #[error("{role}: key {keyid} is the same key as {existing}, already listed")]
    SameKeyMaterial {
        /// Role name.
        role: String,
        /// New key id.
        keyid: KeyId,
        /// Key id already present.
        existing: KeyId,
    },
    /// A key to remove is not listed.
    #[error("{role}: key {keyid} is not listed")]
    UnknownKey {
        /// Role name.
        role: String,
        /// Key id.
        keyid: KeyId,
    },
    /// The key cannot be used (unknown scheme, bad encoding).
    #[error("key {keyid}: {reason}")]
    BadKey {
        /// Key id.
        keyid: KeyId,
        /// Why.
        reason: String,
    },
    /// A role name that cannot be a file name, or is taken.
    #[error("role name \"{}\": {reason}", crate::text::show(.name))]
    RoleName {
        /// Name.
        name: String,
        /// Why.
        reason: String,
    },
    /// An expiry that is not in the future of the reference time.
    #[error("expiry {expires} is not after {now}")]
    Expiry {
        /// Asked for.
        expires: String,
        /// Reference time.
        now: String,
    },
    /// Anything else about the edit that does not hold.
    #[error("{0}")]
    Invalid(String),
}

fn common(version: u64, expires: OffsetDateTime) -> Common {
    Common {
        spec_version: SPEC_VERSION.to_string(),
        version,
        expires: Expires::from_time(expires),
    }
}

fn check_key(key: &Key) -> Result<KeyId, EditError> {
    let id = key.key_id();
    key.public_key().map_err(|e| EditError::BadKey {
        keyid: id.clone(),
        reason: e.to_string(),
    })?;
    Ok(id)
}

/// Check that a role's threshold can be met by its keys.
pub fn check_threshold(role: &str, r: &Role) -> Result<(), EditError> {
    if r.threshold < 1 || r.threshold > r.keyids.len() as u64 {
        return Err(EditError::Threshold {
            role: role.to_string(),
            threshold: r.threshold,
            keys: r.keyids.len(),
        });
    }
    Ok(())
}

/// Check an expiry against the reference time.
pub fn check_expiry(expires: OffsetDateTime, now: OffsetDateTime) -> Result<(), EditError> {
    if expires <= now {
        return Err(EditError::Expiry {
            expires: Expires::from_time(expires).raw,
            now: Expires::from_time(now).raw,
        });
    }
    Ok(())
}

/// Keys and threshold for one top-level role of a new root.
#[derive(Clone, Debug)]
pub struct RoleKeys {
    /// The role.
    pub role: RoleType,
    /// Its keys (TUF key objects; key ids are computed).
    pub keys: Vec<Key>,
    /// Threshold.
    pub threshold: u64,
}

/// Root version 1: keys and thresholds for the four roles, consistent snapshots on.
pub fn new_root(roles: &[RoleKeys], expires: OffsetDateTime) -> Result<Root, EditError> {
    let mut root = Root {
        common: common(1, expires),
        consistent_snapshot: Some(true),
        keys: Vec::new(),
        roles: RoleType::ALL
            .iter()
            .map(|t| {
                (
                    *t,
                    Role {
                        keyids: Vec::new(),
                        threshold: 1,
                        unrecognized: Map::new(),
                    },
                )
            })
            .collect(),
        unrecognized: Map::new(),
    };
    for rk in roles {
        for key in &rk.keys {
            add_root_key(&mut root, rk.role, key.clone())?;
        }
        if let Some(r) = root.role_mut(rk.role) {
            r.threshold = rk.threshold;
        }
    }
    check_root(&root)?;
    Ok(root)
}

/// Check every role of a root: threshold between 1 and its number of keys, every key id listed.
pub fn check_root(root: &Root) -> Result<(), EditError> {
    for ty in RoleType::ALL {
        let r = root.role(ty);
        check_threshold(ty.as_str(), r)?;
        for id in &r.keyids {
            if root.key(id).is_none() {
                return Err(EditError::UnknownKey {
                    role: ty.as_str().to_string(),
                    keyid: id.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The next root version: same content, version + 1, new expiry. Changes are made on the result.
pub fn next_root(prev: &Root, expires: OffsetDateTime) -> Root {
    let mut r = prev.clone();
    r.common.version = prev.common.version.saturating_add(1);
    r.common.expires = Expires::from_time(expires);
    r
}

/// Add a key to a top-level role of a root (and to `keys` if it is new there). Refuses a key
/// already in the role, by key id or by key material.
pub fn add_root_key(root: &mut Root, role: RoleType, key: Key) -> Result<KeyId, EditError> {
    let id = check_key(&key)?;
    let material = key.public_key().map(|pk| pk.material()).ok();
    let existing_ids = root.role(role).keyids.clone();
    for existing in &existing_ids {
        if *existing == id {
            return Err(EditError::DuplicateKey {
                role: role.as_str().to_string(),
                keyid: id,
            });
        }
        let same = root
            .key(existing)
            .and_then(|k| k.public_key().ok())
            .map(|pk| pk.material());
        if same.is_some() && same == material {
            return Err(EditError::SameKeyMaterial {
                role: role.as_str().to_string(),
                keyid: id,
                existing: existing.clone(),
            });
        }
    }
    if root.key(&id).is_none() {
        let pos = root.keys.partition_point(|(k, _)| *k < id);
        root.keys.insert(pos, (id.clone(), key));
    }
    if let Some(r) = root.role_mut(role) {
        r.keyids.push(id.clone());
    }
    Ok(id)
}

/// Remove a key from a top-level role (and from `keys` when no role uses it any more).
pub fn remove_root_key(root: &mut Root, role: RoleType, keyid: &KeyId) -> Result<(), EditError> {
    let Some(r) = root.role_mut(role) else {
        return Err(EditError::Invalid(format!("root has no role {role}")));
    };
    let Some(pos) = r.keyids.iter().position(|k| k == keyid) else {
        return Err(EditError::UnknownKey {
            role: role.as_str().to_string(),
            keyid: keyid.clone(),
        });
    };
    r.keyids.remove(pos);
    let used = root.roles.iter().any(|(_, r)| r.keyids.contains(keyid));
    if !used {
        root.keys.retain(|(k, _)| k != keyid);
    }
    Ok(())
}

/// Set a top-level role's threshold (checked against its keys).
pub fn set_root_threshold(
    root: &mut Root,
    role: RoleType,
    threshold: u64,
) -> Result<(), EditError> {
    let Some(r) = root.role_mut(role) else {
        return Err(EditError::Invalid(format!("root has no role {role}")));
    };
    r.threshold = threshold;
    check_threshold(role.as_str(), r)
}

/// An empty targets role, version 1.
pub fn new_targets(expires: OffsetDateTime) -> Targets {
    Targets {
        common: common(1, expires),
        targets: Map::new(),
        delegations: None,
        unrecognized: Map::new(),
    }
}

/// The next version of any payload with a new expiry.
pub fn bump<T: SignedPayload>(prev: &T, expires: OffsetDateTime) -> T {
    let mut t = prev.clone();
    let c = t.common_mut();
    c.version = c.version.saturating_add(1);
    c.expires = Expires::from_time(expires);
    t
}

/// A target file entry for `bytes` (length and SHA-256), with optional `custom` data.
pub fn target_file(bytes: &[u8], custom: Option<super::canonical::Value>) -> TargetFile {
    use sha2::Digest;
    let mut unrecognized = Map::new();
    if let Some(c) = custom {
        unrecognized.insert("custom".into(), c);
    }
    TargetFile {
        length: bytes.len() as u64,
        hashes: vec![("sha256".into(), hex::encode(sha2::Sha256::digest(bytes)))],
        unrecognized,
    }
}

/// Add or replace a target. Target paths are URL path fragments: no empty parts, no `.` or `..`
/// parts, no leading `/`, no backslash or NUL.
pub fn set_target(targets: &mut Targets, path: &str, file: TargetFile) -> Result<(), EditError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains(['\\', '\0'])
        || path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..");
    if bad {
        return Err(EditError::Invalid(format!(
            "target path \"{}\" is not a plain relative path",
            crate::text::show(path)
        )));
    }
    targets
        .targets
        .insert(path.to_string(), file.to_value().packed());
    Ok(())
}

/// Check a delegated role's name: usable as a file name (no `/`, `\`, NUL, `.` or `..`, no
/// name that reads as a versioned file such as `2.x`) and not a top-level role's name.
pub fn check_role_name(name: &str) -> Result<(), EditError> {
    if !is_safe_file_name(name)
        || name.starts_with(|c: char| c.is_ascii_digit()) && name.contains('.')
    {
        return Err(EditError::RoleName {
            name: name.to_string(),
            reason: "must be usable as a file name (no '/', '\\', NUL, '.' or '..')".into(),
        });
    }
    if ["root", "targets", "snapshot", "timestamp"].contains(&name) {
        return Err(EditError::RoleName {
            name: name.to_string(),
            reason: "is a top-level role name".into(),
        });
    }
    Ok(())
}

/// What a new delegation says.
#[derive(Clone, Debug)]
pub struct NewDelegation {
    /// Role name (safe as a file name).
    pub name: String,
    /// Keys of the delegated role.
    pub keys: Vec<Key>,
    /// Threshold.
    pub threshold: u64,
    /// Path patterns (`*` does not cross `/`).
    pub paths: Vec<String>,
    /// Stop the search here.
    pub terminating: bool,
}

fn delegations_mut(targets: &mut Targets) -> Result<&mut Delegations, EditError> {
    let d = targets.delegations.get_or_insert_with(|| Delegations {
        keys: Vec::new(),
        roles: Some(Vec::new()),
        succinct_roles: None,
        unrecognized: Map::new(),
    });
    Ok(d)
}

fn add_delegation_key(d: &mut Delegations, key: &Key) -> Result<KeyId, EditError> {
    let id = check_key(key)?;
    if d.key(&id).is_none() {
        let pos = d.keys.partition_point(|(k, _)| *k < id);
        d.keys.insert(pos, (id.clone(), key.clone()));
    }
    Ok(id)
}

/// Add a delegation (appended: last in search order). Refuses an existing role name.
pub fn add_delegation(targets: &mut Targets, new: &NewDelegation) -> Result<(), EditError> {
    add_delegations(targets, std::slice::from_ref(new)).map_err(|(_, e)| e)
}

/// Add delegations (appended in order: last in search order), each checked as
/// [`add_delegation`] checks one, in time linear in the roles and keys (up to sorting the key
/// map once): the delegation of 10,000 claimed projects. On a refusal, the index of the
/// delegation refused, and `targets` is unchanged.
pub fn add_delegations(
    targets: &mut Targets,
    news: &[NewDelegation],
) -> Result<(), (usize, EditError)> {
    if news.is_empty() {
        return Ok(());
    }
    let existing = targets.delegations.as_ref();
    let mut names: HashSet<&str> = existing
        .and_then(|d| d.roles.as_ref())
        .map(|roles| roles.iter().map(|r| r.name.as_str()).collect())
        .unwrap_or_default();
    let mut added_keys: BTreeMap<KeyId, &Key> = BTreeMap::new();
    let mut roles = Vec::with_capacity(news.len());
    for (i, new) in news.iter().enumerate() {
        check_role_name(&new.name).map_err(|e| (i, e))?;
        if existing.is_some_and(|d| d.succinct_roles.is_some()) {
            return Err((
                i,
                EditError::Invalid(
                    "this targets role delegates to hash bins; it cannot also list roles".into(),
                ),
            ));
        }
        if !names.insert(new.name.as_str()) {
            return Err((
                i,
                EditError::RoleName {
                    name: new.name.clone(),
                    reason: "is already delegated".into(),
                },
            ));
        }
        let mut keyids: Vec<KeyId> = Vec::new();
        let mut materials = Vec::new();
        for k in &new.keys {
            let id = check_key(k).map_err(|e| (i, e))?;
            if existing.is_none_or(|d| d.key(&id).is_none()) {
                added_keys.entry(id.clone()).or_insert(k);
            }
            let m = k.public_key().map(|p| p.material()).ok();
            if keyids.contains(&id) || (m.is_some() && materials.contains(&m)) {
                return Err((
                    i,
                    EditError::DuplicateKey {
                        role: new.name.clone(),
                        keyid: id,
                    },
                ));
            }
            materials.push(m);
            keyids.push(id);
        }
        let role = Role {
            keyids,
            threshold: new.threshold,
            unrecognized: Map::new(),
        };
        check_threshold(&new.name, &role).map_err(|e| (i, e))?;
        roles.push(DelegatedRole {
            name: new.name.clone(),
            role,
            terminating: new.terminating,
            paths: Some(new.paths.clone()),
            path_hash_prefixes: None,
        });
    }
    let added_keys: Vec<(KeyId, Key)> = added_keys
        .into_iter()
        .map(|(id, k)| (id, k.clone()))
        .collect();
    let d = delegations_mut(targets).map_err(|e| (0, e))?;
    // The key map stays sorted by key id (looked up by binary search): both parts are sorted
    // and share no id.
    d.keys.extend(added_keys);
    d.keys.sort_by(|(a, _), (b, _)| a.cmp(b));
    d.roles.get_or_insert_with(Vec::new).extend(roles);
    Ok(())
}

/// Delegate every target path to `2^bit_length` hash bins (TAP 15), signed by `keys`.
pub fn set_succinct_delegation(
    targets: &mut Targets,
    name_prefix: &str,
    bit_length: u32,
    keys: &[Key],
    threshold: u64,
) -> Result<(), EditError> {
    check_role_name(name_prefix)?;
    if !(1..=32).contains(&bit_length) {
        return Err(EditError::Invalid(format!(
            "bit_length must be between 1 and 32, found {bit_length}"
        )));
    }
    if targets
        .delegations
        .as_ref()
        .is_some_and(|d| d.roles.as_ref().is_some_and(|r| !r.is_empty()))
    {
        return Err(EditError::Invalid(
            "this targets role already lists delegated roles; it cannot also use hash bins".into(),
        ));
    }
    let mut d = Delegations {
        keys: Vec::new(),
        roles: None,
        succinct_roles: None,
        unrecognized: Map::new(),
    };
    let mut keyids = Vec::new();
    for k in keys {
        let id = add_delegation_key(&mut d, k)?;
        if !keyids.contains(&id) {
            keyids.push(id);
        }
    }
    let role = Role {
        keyids,
        threshold,
        unrecognized: Map::new(),
    };
    check_threshold(name_prefix, &role)?;
    d.succinct_roles = Some(SuccinctRoles {
        role,
        bit_length,
        name_prefix: name_prefix.to_string(),
    });
    targets.delegations = Some(d);
    Ok(())
}

/// A [`MetaFile`] entry for metadata bytes: version, length and SHA-256.
pub fn meta_file(version: u64, bytes: &[u8]) -> MetaFile {
    use sha2::Digest;
    MetaFile {
        version,
        length: Some(bytes.len() as u64),
        hashes: Some(vec![(
            "sha256".into(),
            hex::encode(sha2::Sha256::digest(bytes)),
        )]),
        unrecognized: Map::new(),
    }
}

/// A snapshot listing targets metadata files by name (`targets.json`, `ROLE.json`) and version
/// (version-only entries, as python-tuf writes by default).
pub fn new_snapshot(version: u64, expires: OffsetDateTime, roles: &[(String, u64)]) -> Snapshot {
    let mut meta: Vec<(String, MetaFile)> = roles
        .iter()
        .map(|(role, v)| {
            (
                format!("{role}.json"),
                MetaFile {
                    version: *v,
                    length: None,
                    hashes: None,
                    unrecognized: Map::new(),
                },
            )
        })
        .collect();
    meta.sort_by(|a, b| a.0.cmp(&b.0));
    Snapshot {
        common: common(version, expires),
        meta,
        unrecognized: Map::new(),
    }
}

/// A timestamp pinning snapshot bytes (version, length, SHA-256).
pub fn new_timestamp(
    version: u64,
    expires: OffsetDateTime,
    snapshot_version: u64,
    snapshot_bytes: &[u8],
) -> Timestamp {
    Timestamp {
        common: common(version, expires),
        snapshot_meta: meta_file(snapshot_version, snapshot_bytes),
        meta_unrecognized: Map::new(),
        unrecognized: Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::software::SoftwareSigner;
    use crate::signer::{Signer, sign_metadata as sign};
    use crate::tuf::key::Algorithm;
    use crate::tuf::metadata::Metadata;
    use crate::tuf::verify::{trust_root, update_root};
    use time::macros::datetime;

    fn signer(n: u8, alg: Algorithm) -> SoftwareSigner {
        SoftwareSigner::from_seed(alg, &[n; 48]).unwrap()
    }

    #[test]
    fn thresholds_and_names_are_checked() {
        let a = signer(1, Algorithm::Ed25519);
        let exp = datetime!(2030-01-01 0:00 UTC);
        let roles: Vec<RoleKeys> = RoleType::ALL
            .iter()
            .map(|r| RoleKeys {
                role: *r,
                keys: vec![a.key().clone()],
                threshold: 2,
            })
            .collect();
        assert!(matches!(
            new_root(&roles, exp),
            Err(EditError::Threshold { .. })
        ));
        let roles: Vec<RoleKeys> = roles
            .into_iter()
            .map(|r| RoleKeys { threshold: 1, ..r })
            .collect();
        let mut root = new_root(&roles, exp).unwrap();
        assert!(matches!(
            add_root_key(&mut root, RoleType::Root, a.key().clone()),
            Err(EditError::DuplicateKey { .. })
        ));
        // The same key with a custom field has another key id but the same material.
        let mut same = a.key().clone();
        same.unrecognized.insert("x-owner".into(), "alice".into());
        assert!(matches!(
            add_root_key(&mut root, RoleType::Root, same),
            Err(EditError::SameKeyMaterial { .. })
        ));
        assert!(set_root_threshold(&mut root, RoleType::Root, 0).is_err());
        let mut t = new_targets(exp);
        for bad in ["../x", "a/b", ".", "..", "", "root"] {
            let d = NewDelegation {
                name: bad.into(),
                keys: vec![a.key().clone()],
                threshold: 1,
                paths: vec!["*".into()],
                terminating: false,
            };
            assert!(add_delegation(&mut t, &d).is_err(), "{bad}");
        }
        for bad in ["../etc/passwd", "/abs", "a//b", "a/./b", ""] {
            assert!(
                set_target(&mut t, bad, target_file(b"x", None)).is_err(),
                "{bad}"
            );
        }
    }

    /// Delegations added in one batch are the delegations added one by one (same roles in the
    /// same order, same sorted key map, a key shared by two roles listed once); a refusal names
    /// the delegation refused and leaves the targets unchanged.
    #[test]
    fn a_batch_of_delegations_is_the_same_as_one_by_one() {
        let exp = datetime!(2030-01-01 0:00 UTC);
        let keys: Vec<Key> = (10..16)
            .map(|n| signer(n, Algorithm::Ed25519).key().clone())
            .collect();
        let news: Vec<NewDelegation> = (0..5)
            .map(|i| NewDelegation {
                name: format!("project-{i}"),
                keys: vec![keys[i].clone(), keys[i + 1].clone()],
                threshold: 1 + (i as u64 % 2),
                paths: vec![format!("project-{i}/*")],
                terminating: true,
            })
            .collect();
        let mut one_by_one = new_targets(exp);
        add_delegation(&mut one_by_one, &news[0]).unwrap();
        let mut batch = one_by_one.clone();
        for n in &news[1..] {
            add_delegation(&mut one_by_one, n).unwrap();
        }
        add_delegations(&mut batch, &news[1..]).unwrap();
        assert_eq!(batch, one_by_one);
        let d = batch.delegations.as_ref().unwrap();
        assert_eq!(d.keys.len(), 6);
        assert!(d.keys.windows(2).all(|w| w[0].0 < w[1].0));
        // A name twice in the batch, or already delegated: refused at its index, nothing added.
        let before = batch.clone();
        let mut again = news[2].clone();
        again.keys = vec![signer(20, Algorithm::Ed25519).key().clone()];
        let fresh = NewDelegation {
            name: "project-new".into(),
            ..again.clone()
        };
        let refused = add_delegations(&mut batch, &[fresh.clone(), fresh.clone()]);
        assert!(
            matches!(refused, Err((1, EditError::RoleName { .. }))),
            "{refused:?}"
        );
        let refused = add_delegations(&mut batch, &[again]);
        assert!(
            matches!(refused, Err((0, EditError::RoleName { .. }))),
            "{refused:?}"
        );
        assert_eq!(batch, before);
    }

    #[test]
    fn rotation_signed_by_old_and_new_verifies() {
        let exp = datetime!(2030-01-01 0:00 UTC);
        let mut a = signer(1, Algorithm::Ed25519);
        let mut b = signer(2, Algorithm::EcdsaP256);
        let mut c = signer(3, Algorithm::EcdsaP384);
        let roles: Vec<RoleKeys> = RoleType::ALL
            .iter()
            .map(|r| RoleKeys {
                role: *r,
                keys: vec![a.key().clone(), b.key().clone()],
                threshold: 2,
            })
            .collect();
        let mut v1 = Metadata::new(new_root(&roles, exp).unwrap());
        sign(&mut v1, &mut a).unwrap();
        sign(&mut v1, &mut b).unwrap();
        let (trusted, _) = trust_root("1.root.json", &v1.to_file_bytes()).unwrap();
        let mut r2 = next_root(v1.signed(), exp);
        remove_root_key(&mut r2, RoleType::Root, &a.key_id()).unwrap();
        add_root_key(&mut r2, RoleType::Root, c.key().clone()).unwrap();
        let mut v2 = Metadata::new(r2);
        sign(&mut v2, &mut b).unwrap();
        sign(&mut v2, &mut c).unwrap();
        // Old threshold not met (only b of a, b): refused.
        assert!(update_root(&trusted, "2.root.json", &v2.to_file_bytes()).is_err());
        sign(&mut v2, &mut a).unwrap();
        let (_, step) = update_root(&trusted, "2.root.json", &v2.to_file_bytes()).unwrap();
        assert_eq!(step.by_previous.signed.len(), 2);
        assert_eq!(step.by_self.signed.len(), 2);
        // a's key is still used by the other roles, so it stays in keys.
        assert!(v2.signed().key(&a.key_id()).is_some());
    }
}
