//! Verification: one threshold counter, the root chain, and the client workflow's consistency
//! rules between timestamp, snapshot, targets and delegated roles.
//!
//! Everything here is pure: bytes and a reference time come in, results come out. A verified
//! root can only be obtained from this module ([`TrustedRoot`]).

use std::collections::HashMap;

use sha2::Digest;
use time::OffsetDateTime;

use super::key::{Key, KeyId};
use super::metadata::{
    Delegations, MetaFile, Metadata, MetadataError, Role, RoleType, Root, Signature, SignedPayload,
    Snapshot, Targets, Timestamp, find_key,
};

/// Why one key of a role does not count toward its threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uncounted {
    /// No signature with this key id.
    NoSignature,
    /// An empty `"sig": ""` slot.
    EmptySignature,
    /// The role names a key id that the key list does not contain.
    KeyNotListed,
    /// The key cannot verify (unsupported scheme, bad public key, ...).
    UnusableKey(String),
    /// The signature does not verify, or is malformed.
    InvalidSignature(String),
    /// Same key material as another key id that already counted.
    SameKeyAs(KeyId),
}

impl std::fmt::Display for Uncounted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Uncounted::NoSignature => f.write_str("no signature"),
            Uncounted::EmptySignature => f.write_str("empty signature slot"),
            Uncounted::KeyNotListed => f.write_str("key not listed in keys"),
            Uncounted::UnusableKey(e) => write!(f, "unusable key: {e}"),
            Uncounted::InvalidSignature(e) => write!(f, "invalid signature: {e}"),
            Uncounted::SameKeyAs(k) => write!(f, "same key as {k}, counted once"),
        }
    }
}

/// The outcome of counting signatures for one role: which keys signed, which did not and why.
/// "Not enough signatures yet" is a state, not an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThresholdResult {
    /// Signatures needed.
    pub threshold: u64,
    /// Key ids whose valid signature counted (each distinct key once).
    pub signed: Vec<KeyId>,
    /// Key ids of the role that did not count, with the reason.
    pub unsigned: Vec<(KeyId, Uncounted)>,
    /// Key ids of signatures present in the file that the role does not name (ignored).
    pub ignored: Vec<KeyId>,
}

impl ThresholdResult {
    /// Whether the threshold is met.
    pub fn verified(&self) -> bool {
        self.signed.len() as u64 >= self.threshold
    }

    /// "2/3 (threshold 2)" style summary.
    pub fn summary(&self) -> String {
        format!(
            "{} of {} keys signed, threshold {}",
            self.signed.len(),
            self.signed.len() + self.unsigned.len(),
            self.threshold
        )
    }
}

/// Smallest file whose snapshot pin is hashed on a second thread while it is parsed.
const PARALLEL_HASH_MIN: usize = 1 << 20;

/// A targets role verified against its delegator but not trusted yet; only
/// [`TrustedSet::verify_delegated`] makes one, and [`TrustedSet::trust`] consumes it.
pub struct VerifiedTargets {
    role: String,
    md: Metadata<Targets>,
    check: RoleCheck,
}

impl VerifiedTargets {
    /// The verified metadata.
    pub fn metadata(&self) -> &Metadata<Targets> {
        &self.md
    }

    /// How it was verified.
    pub fn check(&self) -> &RoleCheck {
        &self.check
    }
}

/// Count the signatures over `signed_bytes` for a role: each distinct public key counts once,
/// whatever key ids it is listed under; only key ids the role names are checked (so the work is
/// bounded by the number of the role's keys, not by the number of signatures in the file).
pub fn count_signatures<'k>(
    keys: impl Fn(&KeyId) -> Option<&'k Key>,
    role: &Role,
    signed_bytes: &[u8],
    signatures: &[Signature],
) -> ThresholdResult {
    count_signatures_cached(
        keys,
        role,
        signed_bytes,
        signatures,
        &mut VerifyCache::default(),
    )
}

/// [`count_signatures`], for a caller that has just verified some signatures over the same
/// `signed_bytes` in software (a signer checks its own signature right after the token returns
/// it): a signature whose key material ([`crate::tuf::key::PublicKey::material`]) and exact
/// bytes are in `known` counts without running the verification a second time. Everything else
/// is checked as usual: the key the role lists under the key id, its material, the signature as
/// written (its hex must be exactly the encoding of the known bytes), one count per key.
pub fn count_signatures_known<'k>(
    keys: impl Fn(&KeyId) -> Option<&'k Key>,
    role: &Role,
    signed_bytes: &[u8],
    signatures: &[Signature],
    known: &[(Vec<u8>, Vec<u8>)],
) -> ThresholdResult {
    let mut cache = VerifyCache::default();
    for (material, sig) in known {
        cache
            .seen
            .push((material.clone(), hex::encode(sig), Ok(())));
    }
    count_signatures_cached(keys, role, signed_bytes, signatures, &mut cache)
}

/// Outcomes of signature checks over one message, by key material and signature, so that
/// counting the same signatures for two roles (a new root against the previous root's keys and
/// its own) verifies each signature once.
#[derive(Default)]
struct VerifyCache {
    seen: Vec<(Vec<u8>, String, Result<(), String>)>,
}

/// One signature as written (hex) over `signed_bytes` by `pk`.
fn check_signature(
    pk: &crate::tuf::key::PublicKey,
    signed_bytes: &[u8],
    sig_hex: &str,
) -> Result<(), String> {
    hex::decode(sig_hex)
        .map_err(|e| format!("not hex ({e})"))
        .and_then(|raw| pk.verify(signed_bytes, &raw).map_err(|e| e.to_string()))
}

/// The signature checks a root file needs in a chain walk, done ahead of it (on another core):
/// each signature of the file checked by every root key of the previous root and of the file
/// itself that its key id names. They are facts about exact bytes ("this signature by this key
/// over these bytes is valid or not"), so using them decides nothing: [`update_root_checked`]
/// still counts with the keys of the root it trusts, and only skips a check whose key material,
/// signature and signed bytes are exactly the ones checked here.
pub struct RootChecks {
    signed_bytes: Vec<u8>,
    seen: Vec<(Vec<u8>, String, Result<(), String>)>,
}

/// [`RootChecks`] for `bytes` (a root file) following `previous` (the root before it, as
/// bytes; both untrusted here). `None` when either does not parse: the walk then reports why.
pub fn precheck_root(previous: &[u8], bytes: &[u8]) -> Option<RootChecks> {
    let prev = Metadata::<Root>::from_bytes(previous).ok()?;
    let md = Metadata::<Root>::from_bytes(bytes).ok()?;
    let mut seen: Vec<(Vec<u8>, String, Result<(), String>)> = Vec::new();
    for root in [prev.signed(), md.signed()] {
        for keyid in &root.role(RoleType::Root).keyids {
            let (Some(sig), Some(key)) = (
                md.signatures.iter().find(|s| &s.keyid == keyid),
                root.key(keyid),
            ) else {
                continue;
            };
            let Ok(pk) = key.public_key() else { continue };
            let material = pk.material();
            if sig.sig.is_empty() || seen.iter().any(|(m, s, _)| *m == material && *s == sig.sig) {
                continue;
            }
            let verdict = check_signature(&pk, md.signed_bytes(), &sig.sig);
            seen.push((material, sig.sig.clone(), verdict));
        }
    }
    Some(RootChecks {
        signed_bytes: md.signed_bytes().to_vec(),
        seen,
    })
}

/// [`count_signatures`] with a cache shared between counts over the same `signed_bytes` (one
/// cache per message: never share it between different bytes).
fn count_signatures_cached<'k>(
    keys: impl Fn(&KeyId) -> Option<&'k Key>,
    role: &Role,
    signed_bytes: &[u8],
    signatures: &[Signature],
    cache: &mut VerifyCache,
) -> ThresholdResult {
    let mut signed = Vec::new();
    let mut unsigned = Vec::new();
    let mut counted_material: Vec<(Vec<u8>, KeyId)> = Vec::new();
    for keyid in &role.keyids {
        let Some(sig) = signatures.iter().find(|s| &s.keyid == keyid) else {
            unsigned.push((keyid.clone(), Uncounted::NoSignature));
            continue;
        };
        if sig.sig.is_empty() {
            unsigned.push((keyid.clone(), Uncounted::EmptySignature));
            continue;
        }
        let Some(key) = keys(keyid) else {
            unsigned.push((keyid.clone(), Uncounted::KeyNotListed));
            continue;
        };
        let pk = match key.public_key() {
            Ok(pk) => pk,
            Err(e) => {
                unsigned.push((keyid.clone(), Uncounted::UnusableKey(e.to_string())));
                continue;
            }
        };
        let material = pk.material();
        if let Some((_, first)) = counted_material.iter().find(|(m, _)| *m == material) {
            unsigned.push((keyid.clone(), Uncounted::SameKeyAs(first.clone())));
            continue;
        }
        let cached = cache
            .seen
            .iter()
            .find(|(m, s, _)| *m == material && *s == sig.sig)
            .map(|(_, _, v)| v.clone());
        let verdict = match cached {
            Some(v) => v,
            None => {
                let v = check_signature(&pk, signed_bytes, &sig.sig);
                cache
                    .seen
                    .push((material.clone(), sig.sig.clone(), v.clone()));
                v
            }
        };
        match verdict {
            Ok(()) => {
                counted_material.push((material, keyid.clone()));
                signed.push(keyid.clone());
            }
            Err(e) => unsigned.push((keyid.clone(), Uncounted::InvalidSignature(e))),
        }
    }
    let ignored = signatures
        .iter()
        .filter(|s| !role.keyids.contains(&s.keyid))
        .map(|s| s.keyid.clone())
        .collect();
    ThresholdResult {
        threshold: role.threshold,
        signed,
        unsigned,
        ignored,
    }
}

/// A verification failure: which file, which role, what is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The file could not be loaded.
    #[error("{file}: {source}")]
    Load {
        /// File name.
        file: String,
        /// Why.
        source: MetadataError,
    },
    /// Not enough valid signatures from the keys that must sign.
    #[error("{file}: {role} is not signed by a threshold of {by}: {}{}", result.summary(), describe_unsigned(result))]
    Threshold {
        /// File name.
        file: String,
        /// Role being verified.
        role: String,
        /// Whose keys ("the trusted root v3", "its own root keys", "targets", ...).
        by: String,
        /// The count.
        result: Box<ThresholdResult>,
    },
    /// A version that breaks the rules (root not N+1, rollback, mismatch with snapshot).
    #[error("{file}: {message}")]
    Version {
        /// File name.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// An expired role where it must not be.
    #[error("{file}: {role} expired at {expires} (reference time {now})")]
    Expired {
        /// File name.
        file: String,
        /// Role.
        role: String,
        /// `expires` as written.
        expires: String,
        /// Reference time used.
        now: String,
    },
    /// Bytes do not match what the pinning metadata says.
    #[error("{file}: {message}")]
    Mismatch {
        /// File name.
        file: String,
        /// Which hash or length differs.
        message: String,
    },
    /// A target search could not be completed.
    #[error("target {target}: {message}")]
    Search {
        /// The target path searched for.
        target: String,
        /// Why the search stopped.
        message: String,
    },
    /// A file could not be read (permissions, I/O error): not a verdict on the repository.
    #[error("{file}: {message}")]
    Io {
        /// File name.
        file: String,
        /// What failed.
        message: String,
    },
    /// A file required by the chain is missing or unreadable.
    #[error("{file}: {message}")]
    Missing {
        /// File name.
        file: String,
        /// What is missing.
        message: String,
    },
}

fn describe_unsigned(r: &ThresholdResult) -> String {
    let mut reasons: Vec<String> = r
        .unsigned
        .iter()
        .filter(|(_, why)| *why != Uncounted::NoSignature)
        .map(|(k, why)| format!("{}: {why}", k.short()))
        .collect();
    if !r.ignored.is_empty() {
        // Say whose signatures were there, so that "signed by the wrong keys" is not mistaken
        // for "not signed".
        let shown: Vec<&str> = r.ignored.iter().take(5).map(KeyId::short).collect();
        reasons.push(format!(
            "{} signature(s) by key ids the role does not name, ignored: {}{}",
            r.ignored.len(),
            shown.join(" "),
            if r.ignored.len() > shown.len() {
                " ..."
            } else {
                ""
            }
        ));
    } else if r.signed.is_empty() && reasons.is_empty() {
        reasons.push("no signatures".into());
    }
    if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", reasons.join("; "))
    }
}

/// A root that has been verified: the trusted root itself (self-signed) or a root reached from
/// it through the chain. Only this module can make one.
#[derive(Clone, Debug)]
pub struct TrustedRoot {
    md: Metadata<Root>,
}

impl TrustedRoot {
    /// The verified metadata.
    pub fn metadata(&self) -> &Metadata<Root> {
        &self.md
    }

    /// The `signed` part.
    pub fn root(&self) -> &Root {
        self.md.signed()
    }

    /// Count the signatures of any file's `signed` bytes for a top-level role of this root.
    pub fn count(&self, ty: RoleType, signed_bytes: &[u8], sigs: &[Signature]) -> ThresholdResult {
        let root = self.root();
        count_signatures(|id| root.key(id), root.role(ty), signed_bytes, sigs)
    }
}

/// One step of the root chain: the new root's version and both counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootStep {
    /// File name it came from.
    pub file: String,
    /// Version of the new root.
    pub version: u64,
    /// Signatures counted with the previous root's root keys and threshold.
    pub by_previous: ThresholdResult,
    /// Signatures counted with the new root's own root keys and threshold.
    pub by_self: ThresholdResult,
}

/// Load a root from bytes and check that it is signed by a threshold of its own root keys (what
/// every client does with the root it ships with). Expiry is not checked here.
pub fn trust_root(file: &str, bytes: &[u8]) -> Result<(TrustedRoot, ThresholdResult), VerifyError> {
    let md = Metadata::<Root>::from_bytes(bytes).map_err(|source| VerifyError::Load {
        file: file.to_string(),
        source,
    })?;
    let root = md.signed();
    let result = count_signatures(
        |id| root.key(id),
        root.role(RoleType::Root),
        md.signed_bytes(),
        &md.signatures,
    );
    if !result.verified() {
        return Err(VerifyError::Threshold {
            file: file.to_string(),
            role: "root".into(),
            by: "its own root keys".into(),
            result: Box::new(result),
        });
    }
    Ok((TrustedRoot { md }, result))
}

/// Verify root N+1 against trusted root N (spec 5.3.4–5.3.5): version exactly N+1, signed by a
/// threshold of N's root keys and by a threshold of its own root keys.
pub fn update_root(
    trusted: &TrustedRoot,
    file: &str,
    bytes: &[u8],
) -> Result<(TrustedRoot, RootStep), VerifyError> {
    update_root_checked(trusted, file, bytes, None)
}

/// [`update_root`], reusing signature checks made ahead of time ([`precheck_root`]) when they
/// were made over exactly the signed bytes of `bytes`.
pub fn update_root_checked(
    trusted: &TrustedRoot,
    file: &str,
    bytes: &[u8],
    checks: Option<RootChecks>,
) -> Result<(TrustedRoot, RootStep), VerifyError> {
    let md = Metadata::<Root>::from_bytes(bytes).map_err(|source| VerifyError::Load {
        file: file.to_string(),
        source,
    })?;
    let mut cache = VerifyCache::default();
    if let Some(c) = checks
        && c.signed_bytes == md.signed_bytes()
    {
        cache.seen = c.seen;
    }
    let old = trusted.root();
    let by_previous = count_signatures_cached(
        |id| old.key(id),
        old.role(RoleType::Root),
        md.signed_bytes(),
        &md.signatures,
        &mut cache,
    );
    if !by_previous.verified() {
        return Err(VerifyError::Threshold {
            file: file.to_string(),
            role: "root".into(),
            by: format!("the trusted root v{}", trusted.root().common.version),
            result: Box::new(by_previous),
        });
    }
    let version = md.signed().common.version;
    let Some(expected) = trusted.root().common.version.checked_add(1) else {
        return Err(VerifyError::Version {
            file: file.to_string(),
            message: format!(
                "root version {} is the largest version: no root can follow it",
                trusted.root().common.version
            ),
        });
    };
    if version != expected {
        return Err(VerifyError::Version {
            file: file.to_string(),
            message: format!(
                "root version {version} offered where version {expected} must come next"
            ),
        });
    }
    let new_root = md.signed();
    let by_self = count_signatures_cached(
        |id| new_root.key(id),
        new_root.role(RoleType::Root),
        md.signed_bytes(),
        &md.signatures,
        &mut cache,
    );
    if !by_self.verified() {
        return Err(VerifyError::Threshold {
            file: file.to_string(),
            role: "root".into(),
            by: format!("its own root keys (v{version})"),
            result: Box::new(by_self),
        });
    }
    Ok((
        TrustedRoot { md },
        RootStep {
            file: file.to_string(),
            version,
            by_previous,
            by_self,
        },
    ))
}

fn check_expiry<T: SignedPayload>(
    file: &str,
    role: &str,
    signed: &T,
    now: OffsetDateTime,
) -> Result<(), VerifyError> {
    let e = &signed.common().expires;
    if e.is_expired(now) {
        return Err(VerifyError::Expired {
            file: file.to_string(),
            role: role.to_string(),
            expires: e.raw.clone(),
            now: super::metadata::Expires::from_time(now).raw,
        });
    }
    Ok(())
}

/// The final root must not be expired at the reference time (intermediate roots may be).
pub fn check_final_root(
    root: &TrustedRoot,
    file: &str,
    now: OffsetDateTime,
) -> Result<(), VerifyError> {
    check_expiry(file, "final root", root.root(), now)
}

/// Check raw bytes against the length and hashes a snapshot or timestamp entry pins.
pub fn check_meta_file(file: &str, meta: &MetaFile, bytes: &[u8]) -> Result<(), VerifyError> {
    if let Some(len) = meta.length
        && len != bytes.len() as u64
    {
        return Err(VerifyError::Mismatch {
            file: file.to_string(),
            message: format!("length is {} bytes, expected {len}", bytes.len()),
        });
    }
    if let Some(hashes) = &meta.hashes {
        check_hashes(file, hashes, bytes)?;
    }
    Ok(())
}

/// Check bytes against `{algorithm: hex}` hashes; an unknown algorithm is an error.
pub fn check_hashes(
    file: &str,
    hashes: &[(String, String)],
    bytes: &[u8],
) -> Result<(), VerifyError> {
    for (alg, expected) in hashes {
        let actual = match alg.as_str() {
            "sha224" => hex::encode(sha2::Sha224::digest(bytes)),
            "sha256" => hex::encode(sha2::Sha256::digest(bytes)),
            "sha384" => hex::encode(sha2::Sha384::digest(bytes)),
            "sha512" => hex::encode(sha2::Sha512::digest(bytes)),
            other => {
                return Err(VerifyError::Mismatch {
                    file: file.to_string(),
                    message: format!("unsupported hash algorithm \"{other}\""),
                });
            }
        };
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(VerifyError::Mismatch {
                file: file.to_string(),
                message: format!("{alg} is {actual}, expected {expected}"),
            });
        }
    }
    Ok(())
}

/// The trusted state of a client, as in the specification's client workflow (python-tuf's
/// `TrustedMetadataSet`): each update verifies a new file against what is already trusted and
/// changes nothing when it fails.
#[derive(Debug)]
pub struct TrustedSet {
    now: OffsetDateTime,
    root: TrustedRoot,
    timestamp: Option<Metadata<Timestamp>>,
    snapshot: Option<Metadata<Snapshot>>,
    /// The timestamp's entry the trusted snapshot was checked against.
    snapshot_pin: Option<MetaFile>,
    targets: HashMap<String, Metadata<Targets>>,
}

/// How a delegated (or top-level targets) role was verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleCheck {
    /// Role name.
    pub role: String,
    /// Who delegated it (`root` for targets).
    pub delegator: String,
    /// File it came from.
    pub file: String,
    /// Version.
    pub version: u64,
    /// `expires` as written.
    pub expires: String,
    /// The count.
    pub threshold: ThresholdResult,
}

impl TrustedSet {
    /// Start from a verified root, with `now` as the reference time for expiry.
    pub fn new(root: TrustedRoot, now: OffsetDateTime) -> Self {
        TrustedSet {
            now,
            root,
            timestamp: None,
            snapshot: None,
            snapshot_pin: None,
            targets: HashMap::new(),
        }
    }

    /// The trusted root.
    pub fn root(&self) -> &TrustedRoot {
        &self.root
    }

    /// The trusted timestamp, if loaded.
    pub fn timestamp(&self) -> Option<&Metadata<Timestamp>> {
        self.timestamp.as_ref()
    }

    /// The trusted snapshot, if loaded.
    pub fn snapshot(&self) -> Option<&Metadata<Snapshot>> {
        self.snapshot.as_ref()
    }

    /// A trusted targets role (`targets` or a delegated role), if loaded.
    pub fn targets(&self, role: &str) -> Option<&Metadata<Targets>> {
        self.targets.get(role)
    }

    /// Update the root (before timestamp is loaded). See [`update_root`].
    pub fn update_root(&mut self, file: &str, bytes: &[u8]) -> Result<RootStep, VerifyError> {
        self.update_root_checked(file, bytes, None)
    }

    /// [`TrustedSet::update_root`] with signature checks made ahead ([`precheck_root`]).
    pub fn update_root_checked(
        &mut self,
        file: &str,
        bytes: &[u8],
        checks: Option<RootChecks>,
    ) -> Result<RootStep, VerifyError> {
        if self.timestamp.is_some() {
            return Err(VerifyError::Version {
                file: file.to_string(),
                message: "root cannot be updated after timestamp was loaded".into(),
            });
        }
        let (root, step) = update_root_checked(&self.root, file, bytes, checks)?;
        self.root = root;
        Ok(step)
    }

    /// Verify and trust a new timestamp: signed by root's timestamp role, not a rollback of the
    /// trusted one (its version and its snapshot version), not expired.
    pub fn update_timestamp(
        &mut self,
        file: &str,
        bytes: &[u8],
    ) -> Result<ThresholdResult, VerifyError> {
        self.timestamp_step(file, bytes, false).map(|(r, _)| r)
    }

    /// The client workflow's timestamp step (spec 5.4): [`TrustedSet::update_timestamp`], except
    /// that a timestamp signed as it must be and with the same version as the trusted one is
    /// not an error: it is discarded and the trusted timestamp stays (returns `Ok(false)`).
    /// `Ok(true)` when the new timestamp is now trusted.
    pub fn update_timestamp_or_keep(
        &mut self,
        file: &str,
        bytes: &[u8],
    ) -> Result<bool, VerifyError> {
        self.timestamp_step(file, bytes, true)
            .map(|(_, updated)| updated)
    }

    /// Load the timestamp a client kept from its last update, before the new one is fetched
    /// (spec 5.4.3-5.4.4 check the new one against it): it must be signed by a threshold of the
    /// trusted root's timestamp keys (after a timestamp key rotation it is not, and is not
    /// loaded: fast-forward recovery), and it is kept even when expired, for the rollback checks
    /// only. An expired trusted timestamp stops [`TrustedSet::update_snapshot`] until a newer
    /// timestamp replaces it.
    pub fn load_stored_timestamp(
        &mut self,
        file: &str,
        bytes: &[u8],
    ) -> Result<ThresholdResult, VerifyError> {
        if self.timestamp.is_some() {
            return Err(VerifyError::Version {
                file: file.to_string(),
                message: "a timestamp is already trusted: the stored one is loaded first".into(),
            });
        }
        let (md, result) = self.load_signed::<Timestamp>(file, bytes)?;
        self.timestamp = Some(md);
        Ok(result)
    }

    /// Load the snapshot a client kept from its last update, after the timestamp step (python-tuf's
    /// `update_snapshot(data, trusted=True)`): signed by a threshold of root's snapshot keys; its
    /// bytes are not checked against the timestamp's hashes (they were when it was downloaded).
    /// It is kept even when it is expired or not the version the trusted timestamp names, for
    /// the rollback checks of [`TrustedSet::update_snapshot`] only. Returns `Ok(true)` when it is
    /// the final snapshot (the version the timestamp names, not expired): targets roles can then
    /// be verified against it and no new snapshot is needed; `Ok(false)` when a new one must be
    /// fetched.
    pub fn load_stored_snapshot(&mut self, file: &str, bytes: &[u8]) -> Result<bool, VerifyError> {
        let Some(ts) = &self.timestamp else {
            return Err(VerifyError::Missing {
                file: file.to_string(),
                message: "cannot load a snapshot before a timestamp is trusted".into(),
            });
        };
        if self.snapshot.is_some() {
            return Err(VerifyError::Version {
                file: file.to_string(),
                message: "a snapshot is already trusted: the stored one is loaded first".into(),
            });
        }
        check_expiry("timestamp.json", "timestamp", ts.signed(), self.now)?;
        let pin = ts.signed().snapshot_meta.clone();
        let (md, _) = self.load_signed::<Snapshot>(file, bytes)?;
        let is_final = md.signed().common.version == pin.version
            && !md.signed().common.expires.is_expired(self.now);
        self.snapshot = Some(md);
        self.snapshot_pin = is_final.then_some(pin);
        self.targets.clear();
        Ok(is_final)
    }

    /// The timestamp step: `Ok((count, true))` when the new timestamp is trusted,
    /// `Ok((count, false))` when `keep_equal` and it has the trusted version (discarded).
    fn timestamp_step(
        &mut self,
        file: &str,
        bytes: &[u8],
        keep_equal: bool,
    ) -> Result<(ThresholdResult, bool), VerifyError> {
        check_final_root(&self.root, "root", self.now)?;
        let (md, result) = self.load_signed::<Timestamp>(file, bytes)?;
        if let Some(old) = &self.timestamp {
            let (ov, nv) = (old.signed().common.version, md.signed().common.version);
            if nv < ov {
                return Err(VerifyError::Version {
                    file: file.to_string(),
                    message: format!("timestamp version {nv} is older than trusted version {ov}"),
                });
            }
            if nv == ov && keep_equal {
                return Ok((result, false));
            }
            if nv == ov {
                return Err(VerifyError::Version {
                    file: file.to_string(),
                    message: format!(
                        "timestamp version {nv} equals the trusted version; keeping it"
                    ),
                });
            }
            let (os, ns) = (
                old.signed().snapshot_meta.version,
                md.signed().snapshot_meta.version,
            );
            if ns < os {
                return Err(VerifyError::Version {
                    file: file.to_string(),
                    message: format!(
                        "timestamp names snapshot version {ns}, older than trusted version {os}"
                    ),
                });
            }
        }
        check_expiry(file, "timestamp", md.signed(), self.now)?;
        self.timestamp = Some(md);
        Ok((result, true))
    }

    /// Verify and trust a new snapshot: matches the timestamp's pin (length, hashes, version),
    /// signed by root's snapshot role, lists every role the trusted snapshot listed with no lower
    /// version, not expired. Targets roles trusted before are dropped (they were checked
    /// against the previous snapshot) and must be verified again.
    pub fn update_snapshot(
        &mut self,
        file: &str,
        bytes: &[u8],
    ) -> Result<ThresholdResult, VerifyError> {
        let Some(ts) = &self.timestamp else {
            return Err(VerifyError::Missing {
                file: file.to_string(),
                message: "cannot verify snapshot before a timestamp is trusted".into(),
            });
        };
        // A stored timestamp (see `load_stored_timestamp`) may be expired: it is then good for
        // rollback checks only, never as the final timestamp a snapshot is checked against.
        check_expiry("timestamp.json", "timestamp", ts.signed(), self.now)?;
        let pin = ts.signed().snapshot_meta.clone();
        check_meta_file(file, &pin, bytes)?;
        let (md, result) = self.load_signed::<Snapshot>(file, bytes)?;
        let version = md.signed().common.version;
        if version != pin.version {
            return Err(VerifyError::Version {
                file: file.to_string(),
                message: format!(
                    "snapshot version {version} differs from version {} in timestamp",
                    pin.version
                ),
            });
        }
        if let Some(old) = &self.snapshot {
            for (name, old_meta) in &old.signed().meta {
                match md.signed().meta_for(name) {
                    None => {
                        return Err(VerifyError::Version {
                            file: file.to_string(),
                            message: format!(
                                "{name} was listed in the trusted snapshot and is missing now"
                            ),
                        });
                    }
                    Some(new_meta) if new_meta.version < old_meta.version => {
                        return Err(VerifyError::Version {
                            file: file.to_string(),
                            message: format!(
                                "{name} version {} is older than trusted version {}",
                                new_meta.version, old_meta.version
                            ),
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        check_expiry(file, "snapshot", md.signed(), self.now)?;
        self.snapshot = Some(md);
        self.snapshot_pin = Some(pin);
        // Targets roles verified against the previous snapshot are not what this one names.
        self.targets.clear();
        Ok(result)
    }

    /// When a timestamp is trusted, targets roles may only be checked against the snapshot it
    /// names: that snapshot must be loaded (not an older one kept for rollback checks).
    pub fn check_snapshot_current(&self, file: &str) -> Result<(), VerifyError> {
        let Some(ts) = &self.timestamp else {
            return Ok(());
        };
        let named = ts.signed().snapshot_meta.version;
        match &self.snapshot {
            Some(_) if self.snapshot_pin.as_ref() == Some(&ts.signed().snapshot_meta) => Ok(()),
            Some(s) if s.signed().common.version == named => Err(VerifyError::Missing {
                file: file.to_string(),
                message: format!(
                    "the trusted timestamp pins snapshot version {named} with other hashes or \
                     length than the trusted snapshot was checked against: load it again"
                ),
            }),
            Some(s) => Err(VerifyError::Missing {
                file: file.to_string(),
                message: format!(
                    "snapshot version {named} named by the trusted timestamp is not loaded \
                     (the trusted snapshot is version {})",
                    s.signed().common.version
                ),
            }),
            None => Err(VerifyError::Missing {
                file: file.to_string(),
                message: format!(
                    "snapshot version {named} named by the trusted timestamp is not loaded"
                ),
            }),
        }
    }

    /// Verify and trust the top-level targets role.
    pub fn update_targets<'b>(
        &mut self,
        file: &str,
        bytes: impl Into<FileBytes<'b>>,
    ) -> Result<RoleCheck, VerifyError> {
        self.update_delegated_targets(file, bytes, "targets", "root")
    }

    /// Verify and trust a targets role delegated by `delegator` (`root` for `targets`): pinned
    /// by snapshot when a snapshot is trusted, signed by a threshold of the delegator's keys for
    /// this role (keys from the delegator only), version as snapshot says, not expired.
    pub fn update_delegated_targets<'b>(
        &mut self,
        file: &str,
        bytes: impl Into<FileBytes<'b>>,
        role: &str,
        delegator: &str,
    ) -> Result<RoleCheck, VerifyError> {
        let parent = if delegator == "root" {
            None
        } else {
            let Some(parent) = self.targets.get(delegator) else {
                return Err(VerifyError::Missing {
                    file: file.to_string(),
                    message: format!(
                        "delegating role \"{}\" is not trusted yet",
                        crate::text::show(delegator)
                    ),
                });
            };
            Some(parent.signed())
        };
        let (md, check) = self.verify_targets_role(file, bytes, role, delegator, parent)?;
        self.targets.insert(role.to_string(), md);
        Ok(check)
    }

    /// Verify a role that `delegator` (already trusted, not `root`) delegates to, without
    /// trusting it: the checks of [`TrustedSet::update_delegated_targets`]. It borrows the set
    /// immutably, so sibling roles can be verified on several threads at once;
    /// [`TrustedSet::trust`] then adds each in the walk's order.
    ///
    /// `position` is where `role` likely stands among the delegator's roles (a hint: a wrong
    /// one only costs a search; see [`Delegations::role_for_at`]).
    pub fn verify_delegated(
        &self,
        file: &str,
        bytes: Vec<u8>,
        role: &str,
        delegator: &str,
        position: Option<usize>,
    ) -> Result<VerifiedTargets, VerifyError> {
        let Some(parent) = self.targets.get(delegator) else {
            return Err(VerifyError::Missing {
                file: file.to_string(),
                message: format!(
                    "delegating role \"{}\" is not trusted yet",
                    crate::text::show(delegator)
                ),
            });
        };
        let (md, check) = self.verify_targets_role_at(
            file,
            bytes,
            role,
            delegator,
            Some(parent.signed()),
            position,
        )?;
        Ok(VerifiedTargets {
            role: role.to_string(),
            md,
            check,
        })
    }

    /// Trust a role that [`TrustedSet::verify_delegated`] verified.
    pub fn trust(&mut self, verified: VerifiedTargets) -> RoleCheck {
        let VerifiedTargets { role, md, check } = verified;
        self.targets.insert(role, md);
        check
    }

    /// Verify a targets role without trusting it: `parent` is the `signed` part of the
    /// delegating role `delegator` (`None` when `delegator` is `root`, for `targets`). The role
    /// is checked against exactly this delegator's keys and threshold, whatever was verified
    /// before (a role reached through two delegators is verified against each).
    pub fn verify_targets_role<'b>(
        &self,
        file: &str,
        bytes: impl Into<FileBytes<'b>>,
        role: &str,
        delegator: &str,
        parent: Option<&Targets>,
    ) -> Result<(Metadata<Targets>, RoleCheck), VerifyError> {
        self.verify_targets_role_at(file, bytes, role, delegator, parent, None)
    }

    /// [`TrustedSet::verify_targets_role`] with a hint of where `role` stands among the
    /// delegator's roles.
    fn verify_targets_role_at<'b>(
        &self,
        file: &str,
        bytes: impl Into<FileBytes<'b>>,
        role: &str,
        delegator: &str,
        parent: Option<&Targets>,
        position: Option<usize>,
    ) -> Result<(Metadata<Targets>, RoleCheck), VerifyError> {
        let bytes = bytes.into().0;
        self.check_snapshot_current(file)?;
        let mut pin = None;
        if let Some(snapshot) = &self.snapshot {
            let meta_name = format!("{role}.json");
            let Some(meta) = snapshot.signed().meta_for(&meta_name) else {
                return Err(VerifyError::Missing {
                    file: file.to_string(),
                    message: format!("snapshot does not list {meta_name}"),
                });
            };
            pin = Some(meta);
        }
        // Hash the bytes (the snapshot's pin) on a second core while they are parsed: a large
        // targets file costs the time of the longer of the two, not their sum. Small files are
        // hashed inline: a thread per file cost more than it saved (make bench, 1,000 delegated
        // roles: 1,001 thread starts were half the run).
        let (pinned, parsed) = if bytes.len() < PARALLEL_HASH_MIN {
            let pinned = pin.map_or(Ok(()), |meta| check_meta_file(file, meta, &bytes));
            (pinned, super::metadata::parse_file(&bytes))
        } else {
            std::thread::scope(|s| {
                let hashing = pin.map(|meta| s.spawn(|| check_meta_file(file, meta, &bytes)));
                let parsed = super::metadata::parse_file(&bytes);
                let pinned = match hashing {
                    None => Ok(()),
                    Some(h) => h.join().unwrap_or_else(|_| {
                        Err(VerifyError::Mismatch {
                            file: file.to_string(),
                            message: "the hash check failed unexpectedly".into(),
                        })
                    }),
                };
                (pinned, parsed)
            })
        };
        pinned?;
        // The file's bytes are parsed and hashed: their memory takes the canonical bytes.
        let buffer = match bytes {
            std::borrow::Cow::Owned(b) => b,
            std::borrow::Cow::Borrowed(_) => Vec::new(),
        };
        let md = parsed
            .map_err(MetadataError::from)
            .and_then(|v| Metadata::<Targets>::from_value_in(v, buffer))
            .map_err(|source| VerifyError::Load {
                file: file.to_string(),
                source,
            })?;
        let result = match parent {
            None => {
                if role != "targets" {
                    return Err(VerifyError::Missing {
                        file: file.to_string(),
                        message: format!("root does not delegate \"{role}\""),
                    });
                }
                self.root
                    .count(RoleType::Targets, md.signed_bytes(), &md.signatures)
            }
            Some(parent) => {
                let Some(delegations) = &parent.delegations else {
                    return Err(VerifyError::Missing {
                        file: file.to_string(),
                        message: format!("\"{delegator}\" delegates no roles"),
                    });
                };
                count_delegated(delegations, role, position, &md).ok_or_else(|| {
                    VerifyError::Missing {
                        file: file.to_string(),
                        message: format!("\"{delegator}\" does not delegate \"{role}\""),
                    }
                })?
            }
        };
        if !result.verified() {
            return Err(threshold_error(
                file,
                role,
                &format!("the keys {delegator} delegates it to"),
                result,
            ));
        }
        let version = md.signed().common.version;
        if let Some(snapshot) = &self.snapshot
            && let Some(meta) = snapshot.signed().meta_for(&format!("{role}.json"))
            && meta.version != version
        {
            return Err(VerifyError::Version {
                file: file.to_string(),
                message: format!(
                    "{role} version {version} differs from version {} in snapshot",
                    meta.version
                ),
            });
        }
        check_expiry(file, role, md.signed(), self.now)?;
        let check = RoleCheck {
            role: role.to_string(),
            delegator: delegator.to_string(),
            file: file.to_string(),
            version,
            expires: md.signed().common.expires.raw.clone(),
            threshold: result,
        };
        Ok((md, check))
    }
}

fn count_delegated(
    delegations: &Delegations,
    role: &str,
    position: Option<usize>,
    md: &Metadata<Targets>,
) -> Option<ThresholdResult> {
    let r = match position {
        Some(i) => delegations.role_for_at(role, i)?,
        None => delegations.role_for(role)?,
    };
    Some(count_signatures(
        |id| find_key(&delegations.keys, id),
        r,
        md.signed_bytes(),
        &md.signatures,
    ))
}

/// File bytes handed to a verification step, borrowed or owned. Once owned bytes are parsed (and
/// hashed), their memory is reused for the canonical bytes, so verifying a large targets file
/// never holds the file, its parsed form and its canonical bytes at once.
pub struct FileBytes<'a>(std::borrow::Cow<'a, [u8]>);

impl<'a> From<&'a [u8]> for FileBytes<'a> {
    fn from(b: &'a [u8]) -> Self {
        FileBytes(std::borrow::Cow::Borrowed(b))
    }
}

impl<'a> From<&'a Vec<u8>> for FileBytes<'a> {
    fn from(b: &'a Vec<u8>) -> Self {
        FileBytes(std::borrow::Cow::Borrowed(b.as_slice()))
    }
}

impl From<Vec<u8>> for FileBytes<'static> {
    fn from(b: Vec<u8>) -> Self {
        FileBytes(std::borrow::Cow::Owned(b))
    }
}

impl TrustedSet {
    /// Parse a top-level role's file and count its signatures with the trusted root's keys for
    /// that role: an error unless the threshold is met.
    fn load_signed<T: SignedPayload>(
        &self,
        file: &str,
        bytes: &[u8],
    ) -> Result<(Metadata<T>, ThresholdResult), VerifyError> {
        let md = load::<T>(file, bytes)?;
        let result = self.root.count(T::TYPE, md.signed_bytes(), &md.signatures);
        if !result.verified() {
            let role = T::TYPE.as_str();
            return Err(threshold_error(
                file,
                role,
                &format!("root's {role} keys"),
                result,
            ));
        }
        Ok((md, result))
    }
}

fn load<T: SignedPayload>(file: &str, bytes: &[u8]) -> Result<Metadata<T>, VerifyError> {
    Metadata::<T>::from_bytes(bytes).map_err(|source| VerifyError::Load {
        file: file.to_string(),
        source,
    })
}

fn threshold_error(file: &str, role: &str, by: &str, result: ThresholdResult) -> VerifyError {
    VerifyError::Threshold {
        file: file.to_string(),
        role: role.to_string(),
        by: by.to_string(),
        result: Box::new(result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Signer as _;
    use crate::signer::software::SoftwareSigner;
    use crate::tuf::canonical::Map;
    use crate::tuf::key::Algorithm;

    #[test]
    fn known_signatures_count_only_for_their_key_and_exact_bytes() {
        let mut s = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[5u8; 32]).unwrap();
        let other = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[6u8; 32]).unwrap();
        let key = s.key().clone();
        let id = key.key_id();
        let material = key.public_key().unwrap().material();
        let other_material = other.key().public_key().unwrap().material();
        let role = Role {
            keyids: vec![id.clone()],
            threshold: 1,
            unrecognized: Map::new(),
        };
        let msg = b"signed bytes";
        let good = s.sign(msg).unwrap();
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let sigs = |raw: &[u8]| {
            vec![Signature {
                keyid: id.clone(),
                sig: hex::encode(raw),
                unrecognized: Map::new(),
            }]
        };
        let count = |raw: &[u8], known: &[(Vec<u8>, Vec<u8>)]| {
            count_signatures_known(|_| Some(&key), &role, msg, &sigs(raw), known).signed
        };
        // Without `known`, every signature is verified: the good one counts, the bad one not.
        assert_eq!(count(&good, &[]), vec![id.clone()]);
        assert!(count(&bad, &[]).is_empty());
        // A known (already verified) signature counts for its key and exact bytes...
        assert_eq!(
            count(&good, &[(material.clone(), good.clone())]),
            vec![id.clone()]
        );
        // ...and nothing else is waved through: other bytes or another key's material are
        // verified as usual.
        assert!(count(&bad, &[(material.clone(), good.clone())]).is_empty());
        assert!(count(&bad, &[(other_material, bad.clone())]).is_empty());
        // The contract: `known` must hold only signatures the caller verified over these bytes.
        assert_eq!(count(&bad, &[(material, bad.clone())]), vec![id]);
    }
}
