//! Verifying a whole repository folder as a client would see it: the root chain from a trusted
//! root, then timestamp → snapshot → targets → delegated roles. Pure: files come in through
//! [`MetadataSource`], the reference time is an argument, and the result is a [`Report`].

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use time::OffsetDateTime;

use super::key::{Key, KeyId};
use super::metadata::{
    Delegations, Expires, KeyMap, Metadata, RoleType, Root, SignedPayload, Targets,
};
use super::parallel::map_in_order;
use super::verify::{
    RoleCheck, RootChecks, RootStep, ThresholdResult, TrustedSet, VerifiedTargets, VerifyError,
    check_final_root, precheck_root, trust_root,
};

/// Where metadata files come from (a folder, a USB stick, a test's map). Names are single file
/// names, never paths.
pub trait MetadataSource: Sync {
    /// The file names present.
    fn names(&self) -> Vec<String>;
    /// The bytes of a file, `Ok(None)` when it does not exist, `Err` when it cannot be read or
    /// is refused.
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, SourceError>;
}

/// Why a [`MetadataSource`] could not give a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The medium failed (permissions, I/O error): not a verdict on the repository.
    #[error("{0}")]
    Io(String),
    /// The file was refused (over the size limit, a link leaving the folder, not a regular
    /// file, an unsafe name): the repository is not acceptable as it is.
    #[error("{0}")]
    Refused(String),
}

fn source_error(file: &str, e: SourceError) -> VerifyError {
    match e {
        SourceError::Io(message) => VerifyError::Io {
            file: file.to_string(),
            message,
        },
        SourceError::Refused(message) => VerifyError::Missing {
            file: file.to_string(),
            message,
        },
    }
}

/// An in-memory source (tests, files received over QR).
impl MetadataSource for HashMap<String, Vec<u8>> {
    fn names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(self.get(name).cloned())
    }
}

/// Upper bound on delegated roles visited in one verification (cycles and huge graphs).
pub const MAX_DELEGATED_ROLES: usize = 100_000;

/// A key as a person reviews it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct KeySummary {
    /// Key id as written.
    pub keyid: String,
    /// keytype as written.
    pub keytype: String,
    /// scheme as written.
    pub scheme: String,
    /// Short fingerprint of the key material, or why the key cannot be used.
    pub fingerprint: String,
    /// Whether the key id is the SHA-256 of the key object.
    pub keyid_is_hash: bool,
}

impl KeySummary {
    /// Summarise a key.
    pub fn new(id: &KeyId, key: &Key) -> Self {
        KeySummary {
            keyid: id.0.clone(),
            keytype: key.keytype.clone(),
            scheme: key.scheme.clone(),
            fingerprint: match key.public_key() {
                Ok(pk) => pk.fingerprint(),
                Err(e) => format!("unusable: {e}"),
            },
            keyid_is_hash: key.key_id() == *id,
        }
    }
}

/// Keys and threshold of one role.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RoleSummary {
    /// Role name.
    pub role: String,
    /// Threshold.
    pub threshold: u64,
    /// Key ids.
    pub keyids: Vec<String>,
}

/// A root version as a person reviews it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RootSummary {
    /// File it came from.
    pub file: String,
    /// Version.
    pub version: u64,
    /// `expires` as written.
    pub expires: String,
    /// `consistent_snapshot`.
    pub consistent_snapshot: Option<bool>,
    /// Keys.
    pub keys: Vec<KeySummary>,
    /// Roles.
    pub roles: Vec<RoleSummary>,
    /// Root keys whose signatures counted (for the trusted root: its self-signature).
    pub signed_by: Vec<String>,
    /// For a chain step: root keys of the previous version whose signatures counted.
    pub signed_by_previous: Option<Vec<String>>,
}

impl RootSummary {
    fn new(
        file: &str,
        root: &Root,
        by_self: &ThresholdResult,
        by_prev: Option<&ThresholdResult>,
    ) -> Self {
        RootSummary {
            file: file.to_string(),
            version: root.common.version,
            expires: root.common.expires.raw.clone(),
            consistent_snapshot: root.consistent_snapshot,
            keys: summarize_keys(&root.keys),
            roles: RoleType::ALL
                .iter()
                .map(|t| RoleSummary {
                    role: t.as_str().into(),
                    threshold: root.role(*t).threshold,
                    keyids: root.role(*t).keyids.iter().map(|k| k.0.clone()).collect(),
                })
                .collect(),
            signed_by: ids(&by_self.signed),
            signed_by_previous: by_prev.map(|r| ids(&r.signed)),
        }
    }
}

fn summarize_keys(keys: &KeyMap) -> Vec<KeySummary> {
    keys.iter().map(|(id, k)| KeySummary::new(id, k)).collect()
}

fn ids(v: &[KeyId]) -> Vec<String> {
    v.iter().map(|k| k.0.clone()).collect()
}

/// One verified non-root role.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RoleReport {
    /// Role name.
    pub role: String,
    /// Who delegated it.
    pub delegator: String,
    /// File.
    pub file: String,
    /// Version.
    pub version: u64,
    /// Expiry as written.
    pub expires: String,
    /// Threshold.
    pub threshold: u64,
    /// Key ids whose signatures counted.
    pub signed_by: Vec<String>,
    /// Key ids that did not count, with the reason.
    pub not_counted: Vec<(String, String)>,
    /// Number of target files listed (targets roles).
    pub target_count: Option<usize>,
    /// Delegated roles it names (targets roles).
    pub delegates_to: Vec<String>,
}

impl RoleReport {
    fn from_check(c: &RoleCheck, target_count: Option<usize>, delegates_to: Vec<String>) -> Self {
        RoleReport {
            role: c.role.clone(),
            delegator: c.delegator.clone(),
            file: c.file.clone(),
            version: c.version,
            expires: c.expires.clone(),
            threshold: c.threshold.threshold,
            signed_by: ids(&c.threshold.signed),
            not_counted: not_counted(&c.threshold),
            target_count,
            delegates_to,
        }
    }
}

fn not_counted(r: &ThresholdResult) -> Vec<(String, String)> {
    r.unsigned
        .iter()
        .map(|(k, why)| (k.0.clone(), why.to_string()))
        .collect()
}

/// Everything `conclave verify` found, in order. `error` is the first failure, if any; the
/// parts before it were verified.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Reference time (RFC 3339).
    pub reference_time: String,
    /// The trusted root (self-signed).
    pub trusted_root: Option<RootSummary>,
    /// Each newer root, verified against the previous one and itself.
    pub chain: Vec<RootSummary>,
    /// Timestamp, snapshot, targets and delegated roles, in the order verified.
    pub roles: Vec<RoleReport>,
    /// Warnings and observations that do not fail verification.
    pub notes: Vec<String>,
    /// The first failure.
    pub error: Option<String>,
    /// The first failure, structured (for callers; not serialised).
    #[serde(skip)]
    pub failure: Option<VerifyError>,
}

impl Report {
    /// Whether everything present verified.
    pub fn is_valid(&self) -> bool {
        self.error.is_none()
    }

    /// The newest verified root version.
    pub fn final_root_version(&self) -> Option<u64> {
        self.chain
            .last()
            .or(self.trusted_root.as_ref())
            .map(|r| r.version)
    }

    fn fail(&mut self, e: VerifyError) {
        self.error = Some(e.to_string());
        self.failure = Some(e);
    }
}

/// Python's `urllib.parse.quote(name, safe="")`: how python-tuf names delegated role files.
pub fn quote_role_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `name` can be used as one file name inside a folder: no separators, no NUL, not `.`
/// or `..`. Role names that fail this are only ever looked up in their quoted form.
pub fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// The version in a versioned metadata file name of `role` (`N.ROLE.json`), when `N` is written
/// as a client asks for it: decimal digits without a sign or leading zeros (`3.root.json`, not
/// `03.root.json` or `+3.root.json`). A file under another spelling is never fetched by a client
/// and never read by the verifier, so it is no link of the root chain and no version of a role;
/// every reader of a repository folder lists versions through this one rule.
pub fn file_version(name: &str, role: &str) -> Option<u64> {
    let stem = name
        .strip_suffix(".json")?
        .strip_suffix(role)?
        .strip_suffix('.')?;
    let v = stem.parse::<u64>().ok()?;
    (v.to_string() == stem).then_some(v)
}

/// Candidate file names for a role's metadata: versioned first (consistent snapshots), then
/// plain; the quoted name first (what python-tuf and tough fetch: the role "a%2Fb" lives in
/// "a%252Fb.json", while "a%2Fb.json" belongs to the role "a/b"), then the raw name when it
/// is a safe single file name and differs (older repositories stored e.g. "ö.json" raw).
fn candidate_names(role: &str, version: Option<u64>) -> Vec<String> {
    let mut stems = Vec::new();
    let quoted = quote_role_name(role);
    for stem in [quoted, role.to_string()] {
        if !stems.contains(&stem) {
            stems.push(stem);
        }
    }
    let mut out = Vec::new();
    for stem in &stems {
        if let Some(v) = version {
            out.push(format!("{v}.{stem}.json"));
        }
    }
    for stem in &stems {
        out.push(format!("{stem}.json"));
    }
    out.retain(|n| is_safe_file_name(n));
    out
}

fn find_file(
    src: &dyn MetadataSource,
    role: &str,
    version: Option<u64>,
) -> Result<Option<(String, Vec<u8>)>, VerifyError> {
    for name in candidate_names(role, version) {
        match src.read(&name) {
            Ok(Some(bytes)) => return Ok(Some((name, bytes))),
            Ok(None) => {}
            Err(e) => return Err(source_error(&name, e)),
        }
    }
    Ok(None)
}

/// Verify the repository in `src` starting from the trusted root bytes.
pub fn verify_repository(
    trusted_root_file: &str,
    trusted_root: &[u8],
    src: &dyn MetadataSource,
    now: OffsetDateTime,
) -> Report {
    verify_repository_keeping(trusted_root_file, trusted_root, src, now).0
}

/// [`verify_repository`], also returning what was verified (when everything was), for a caller
/// that decides when to free it: a command that exits right after forgets it, and the system
/// takes its memory back at once instead of it being freed allocation by allocation (make bench,
/// 100,000 targets: 4 of 75 ms).
pub fn verify_repository_keeping(
    trusted_root_file: &str,
    trusted_root: &[u8],
    src: &dyn MetadataSource,
    now: OffsetDateTime,
) -> (Report, Option<TrustedSet>) {
    let mut report = Report {
        reference_time: Expires::from_time(now).raw,
        trusted_root: None,
        chain: Vec::new(),
        roles: Vec::new(),
        notes: Vec::new(),
        error: None,
        failure: None,
    };
    let mut kept = None;
    if let Err(e) = walk(
        trusted_root_file,
        trusted_root,
        src,
        now,
        &mut report,
        &mut kept,
    ) {
        report.fail(e);
    }
    (report, kept)
}

fn walk(
    trusted_file: &str,
    trusted_bytes: &[u8],
    src: &dyn MetadataSource,
    now: OffsetDateTime,
    report: &mut Report,
    kept: &mut Option<TrustedSet>,
) -> Result<(), VerifyError> {
    let (root, self_result) = trust_root(trusted_file, trusted_bytes)?;
    report.trusted_root = Some(RootSummary::new(
        trusted_file,
        root.root(),
        &self_result,
        None,
    ));
    note_root(root.root(), trusted_file, &mut report.notes);
    let mut set = TrustedSet::new(root, now);

    // Root chain: every N.root.json newer than the trusted root, without gaps.
    let names = src.names();
    let mut newer: Vec<u64> = names
        .iter()
        .filter_map(|n| file_version(n, "root"))
        .filter(|v| *v > set.root().root().common.version)
        .collect();
    newer.sort_unstable();
    let mut last_file = trusted_file.to_string();
    // The signature checks of the next roots are made ahead, on all cores, a batch at a time
    // (memory stays bounded whatever the number of roots); the walk below still decides.
    let mut ahead: std::collections::VecDeque<(String, Vec<u8>, Option<RootChecks>)> =
        std::collections::VecDeque::new();
    let mut previous_bytes = trusted_bytes.to_vec();
    // No root can follow version 2^64-1 (a saturating "+1" would read the same file again).
    while let Some(next) = set.root().root().common.version.checked_add(1) {
        let name = format!("{next}.root.json");
        if ahead.front().is_none_or(|(n, _, _)| *n != name) {
            ahead = precheck_roots(src, next, &previous_bytes);
        }
        let (bytes, checks) = match ahead.pop_front() {
            Some((n, bytes, checks)) if n == name => (bytes, checks),
            _ => match src.read(&name).map_err(|e| source_error(&name, e))? {
                Some(bytes) => (bytes, None),
                None => break,
            },
        };
        let RootStep {
            by_previous,
            by_self,
            ..
        } = set.update_root_checked(&name, &bytes, checks)?;
        previous_bytes = bytes;
        report.chain.push(RootSummary::new(
            &name,
            set.root().root(),
            &by_self,
            Some(&by_previous),
        ));
        note_root(set.root().root(), &name, &mut report.notes);
        last_file = name;
    }
    let final_version = set.root().root().common.version;
    if let Some(v) = newer.iter().find(|v| **v > final_version) {
        return Err(VerifyError::Version {
            file: format!("{v}.root.json"),
            message: format!(
                "root chain has a gap: {}.root.json is missing",
                final_version + 1
            ),
        });
    }
    check_final_root(set.root(), &last_file, now)?;
    if let Some(Ok(Some(bytes))) = names
        .iter()
        .any(|n| n == "root.json")
        .then(|| src.read("root.json"))
        && let Ok(md) = super::metadata::Metadata::<Root>::from_bytes(&bytes)
        && md.signed_bytes() != set.root().metadata().signed_bytes()
    {
        report.notes.push(format!(
            "root.json (version {}) differs from the newest root in the chain (version {final_version})",
            md.signed().common.version
        ));
    }

    let consistent = set.root().root().consistent_snapshot.unwrap_or(false);

    // Timestamp and snapshot.
    match src
        .read("timestamp.json")
        .map_err(|e| source_error("timestamp.json", e))?
    {
        Some(bytes) => {
            let r = set.update_timestamp("timestamp.json", &bytes)?;
            let md = set.timestamp().map(|m| m.signed().clone());
            if let Some(ts) = md {
                report
                    .roles
                    .push(simple_role_report("timestamp", "timestamp.json", &ts, &r));
                let v = ts.snapshot_meta.version;
                let Some((file, bytes)) = find_file(src, "snapshot", consistent.then_some(v))?
                else {
                    return Err(VerifyError::Missing {
                        file: if consistent {
                            format!("{v}.snapshot.json")
                        } else {
                            "snapshot.json".into()
                        },
                        message: format!(
                            "timestamp names snapshot version {v}, but the file is not present"
                        ),
                    });
                };
                let r = set.update_snapshot(&file, &bytes)?;
                if let Some(s) = set.snapshot() {
                    report
                        .roles
                        .push(simple_role_report("snapshot", &file, s.signed(), &r));
                }
            }
        }
        None => report
            .notes
            .push("timestamp.json is not present: timestamp and snapshot were not checked".into()),
    }

    // Targets.
    let targets_version = set
        .snapshot()
        .and_then(|s| s.signed().meta_for("targets.json"))
        .map(|m| m.version);
    if set.snapshot().is_some() && targets_version.is_none() {
        return Err(VerifyError::Missing {
            file: "snapshot".into(),
            message: "snapshot does not list targets.json".into(),
        });
    }
    let targets_file = match targets_version {
        Some(v) => find_file(src, "targets", consistent.then_some(v))?,
        None => find_file(src, "targets", None)?.or(newest_versioned(src, &names, "targets")?),
    };
    let Some((file, bytes)) = targets_file else {
        if let Some(v) = targets_version {
            return Err(VerifyError::Missing {
                file: format!("{v}.targets.json"),
                message: format!("snapshot names targets version {v}, but the file is not present"),
            });
        }
        report
            .notes
            .push("targets.json is not present: targets was not checked".into());
        // Everything present verified: kept as when targets is there (a root-only folder).
        *kept = Some(set);
        return Ok(());
    };
    // While targets.json is verified, the second core reads the delegated roles' files that
    // snapshot lists, for the walk below to take instead of reading them itself.
    let ahead = ReadAhead::new(src);
    let ahead_names = read_ahead_names(&set, consistent);
    let check = if ahead_names.len() >= PREFETCH_MIN_SIBLINGS && super::parallel::cores() > 1 {
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| ahead.fill(&ahead_names, &stop));
            let check = set.update_targets(&file, bytes);
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            check
        })
    } else {
        set.update_targets(&file, bytes)
    }?;
    let src: &dyn MetadataSource = &ahead;
    push_targets_report(&set, &check, report);

    // Delegated roles: pre-order depth-first, in listed order.
    let mut visited: HashSet<(String, String)> = HashSet::new();
    let mut reached: HashSet<String> = HashSet::new();
    reached.insert("targets".into());
    let kids = children(&set, "targets", &names);
    let mut ready = Ready::new();
    prefetch(
        &set, src, "targets", &kids, consistent, &visited, &mut ready,
    );
    let mut stack: Vec<(String, String)> = kids
        .into_iter()
        .rev()
        .map(|c| (c, "targets".to_string()))
        .collect();
    report.roles.reserve(ready.len());
    while let Some(key) = stack.pop() {
        if !visited.insert(key.clone()) {
            continue;
        }
        let prefetched = ready.remove(&key);
        let (role, delegator) = key;
        if visited.len() > MAX_DELEGATED_ROLES {
            return Err(VerifyError::Version {
                file: format!("{role}.json"),
                message: format!("more than {MAX_DELEGATED_ROLES} delegated roles; stopped"),
            });
        }
        if let Some(prefetched) = prefetched {
            let Prefetched {
                report: role_report,
                notes,
                delegating,
            } = *prefetched?;
            if let Some(v) = delegating {
                set.trust(*v);
            }
            report.notes.extend(notes);
            report.roles.push(role_report);
            if reached.insert(role.clone()) {
                let kids = children(&set, &role, &names);
                prefetch(&set, src, &role, &kids, consistent, &visited, &mut ready);
                stack.extend(kids.into_iter().rev().map(|c| (c, role.clone())));
            }
            continue;
        }
        let version = match set.snapshot() {
            Some(s) => match s.signed().meta_for(&format!("{role}.json")) {
                Some(m) => Some(m.version),
                None => {
                    report.notes.push(format!(
                        "role \"{role}\" (delegated by {delegator}) is not listed in snapshot: not checked"
                    ));
                    continue;
                }
            },
            None => None,
        };
        let found = find_file(src, &role, version.filter(|_| consistent))?;
        let Some((file, bytes)) = found else {
            if set.snapshot().is_some() {
                return Err(VerifyError::Missing {
                    file: format!("{role}.json"),
                    message: format!(
                        "snapshot lists role \"{role}\" (delegated by {delegator}), but its file is not present"
                    ),
                });
            }
            report.notes.push(format!(
                "role \"{role}\" (delegated by {delegator}): no file present, not checked"
            ));
            continue;
        };
        let check = set.update_delegated_targets(&file, bytes, &role, &delegator)?;
        let first_time = reached.insert(role.clone());
        push_targets_report(&set, &check, report);
        if first_time {
            let kids = children(&set, &role, &names);
            prefetch(&set, src, &role, &kids, consistent, &visited, &mut ready);
            stack.extend(kids.into_iter().rev().map(|c| (c, role.clone())));
        }
    }

    // Snapshot entries that no verified role delegates.
    if let Some(s) = set.snapshot() {
        let stale: Vec<&str> = s
            .signed()
            .meta
            .iter()
            .filter_map(|(n, _)| n.strip_suffix(".json"))
            .filter(|n| *n != "root" && !reached.contains(*n))
            .collect();
        if !stale.is_empty() {
            report.notes.push(format!(
                "snapshot lists {} role(s) that no verified role delegates: {}",
                stale.len(),
                stale.join(", ")
            ));
        }
    }
    *kept = Some(set);
    Ok(())
}

/// Most bytes kept by [`ReadAhead`] (it stops before reading more).
const READ_AHEAD_BYTES: usize = 32 << 20;

/// Files read ahead by another thread while the walk is busy (verifying targets.json), each
/// taken by the walk at most once. Reading is all that is done ahead: a file that is missing or
/// cannot be read is not kept, so the walk reads it itself and reports it where it would have.
struct ReadAhead<'a> {
    src: &'a dyn MetadataSource,
    kept: std::sync::Mutex<HashMap<String, Vec<u8>>>,
}

impl<'a> ReadAhead<'a> {
    fn new(src: &'a dyn MetadataSource) -> Self {
        ReadAhead {
            src,
            kept: std::sync::Mutex::default(),
        }
    }

    /// Read `names` in order until `stop` is set or [`READ_AHEAD_BYTES`] are kept.
    fn fill(&self, names: &[String], stop: &std::sync::atomic::AtomicBool) {
        let mut bytes = 0;
        for name in names {
            if bytes >= READ_AHEAD_BYTES || stop.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            if let Ok(Some(file)) = self.src.read(name) {
                bytes += file.len();
                if let Ok(mut kept) = self.kept.lock() {
                    kept.insert(name.clone(), file);
                }
            }
        }
    }
}

impl MetadataSource for ReadAhead<'_> {
    fn names(&self) -> Vec<String> {
        self.src.names()
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let kept = self.kept.lock().ok().and_then(|mut k| k.remove(name));
        match kept {
            Some(file) => Ok(Some(file)),
            None => self.src.read(name),
        }
    }
}

/// The file names of the delegated roles that snapshot lists, in its order, as the walk will
/// first look for them ([`candidate_names`]).
fn read_ahead_names(set: &TrustedSet, consistent: bool) -> Vec<String> {
    let Some(s) = set.snapshot() else {
        return Vec::new();
    };
    s.signed()
        .meta
        .iter()
        .filter_map(|(n, m)| {
            let role = n.strip_suffix(".json")?;
            if role == "root" || role == "targets" {
                return None;
            }
            candidate_names(role, consistent.then_some(m.version))
                .into_iter()
                .next()
        })
        .collect()
}

/// Root files read and signature-checked ahead of the chain walk at a time.
const ROOTS_AHEAD: u64 = 64;

/// Read the root files from version `first` on (up to [`ROOTS_AHEAD`], stopping at the first
/// that is missing or cannot be read: the walk reads it again and reports it), and make their
/// signature checks on all cores ([`precheck_root`]; each file with the one before it,
/// `previous` for the first).
fn precheck_roots(
    src: &dyn MetadataSource,
    first: u64,
    previous: &[u8],
) -> std::collections::VecDeque<(String, Vec<u8>, Option<RootChecks>)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for v in (first..first.saturating_add(ROOTS_AHEAD)).take(ROOTS_AHEAD as usize) {
        let name = format!("{v}.root.json");
        match src.read(&name) {
            Ok(Some(bytes)) => files.push((name, bytes)),
            _ => break,
        }
    }
    let pairs: Vec<(&[u8], &[u8])> = (0..files.len())
        .map(|i| {
            let prev = if i == 0 { previous } else { &files[i - 1].1 };
            (prev, files[i].1.as_slice())
        })
        .collect();
    let checks = map_in_order(pairs, 2, |(prev, bytes)| precheck_root(prev, bytes));
    files
        .into_iter()
        .zip(checks)
        .map(|((name, bytes), c)| (name, bytes, c))
        .collect()
}

/// Roles verified ahead of the walk, by (role, delegator).
/// The outcomes are boxed: a verified role is most of a kilobyte, and a thousand of them moved
/// through the map's growth (and its fresh pages) cost 2-3 ms of the walk on 1,000 roles.
type Ready = HashMap<(String, String), Result<Box<Prefetched>, VerifyError>>;

/// A role verified ahead of the walk: its lines of the report, and the role itself only when
/// it delegates further (a leaf role is not needed again, so its parsed form is dropped at once
/// and a thousand leaf roles never sit in memory together).
struct Prefetched {
    report: RoleReport,
    notes: Vec<String>,
    /// Boxed: a leaf role (most of them) then takes 8 bytes here instead of 560.
    delegating: Option<Box<VerifiedTargets>>,
}

/// Fewest sibling roles that are verified ahead of the walk, in parallel.
const PREFETCH_MIN_SIBLINGS: usize = 32;

/// Fewest sibling roles per thread (one signature check and one small file each).
const PREFETCH_PER_THREAD: usize = 16;

/// Verify the roles `delegator` delegates to ahead of the depth-first walk, on several cores,
/// when there are many of them. The walk still visits them in the specification's order and
/// reports the first failure in that order: an outcome is only used when the walk reaches it.
/// A role that is not listed in snapshot, has no file or cannot be read is left to the walk.
fn prefetch(
    set: &TrustedSet,
    src: &dyn MetadataSource,
    delegator: &str,
    kids: &[String],
    consistent: bool,
    visited: &HashSet<(String, String)>,
    ready: &mut Ready,
) {
    if kids.len() < PREFETCH_MIN_SIBLINGS {
        return;
    }
    // (role, version for consistent snapshots, its position among the delegator's roles:
    // `children` lists explicit roles in their order)
    let mut jobs: Vec<(String, Option<u64>, usize)> = Vec::with_capacity(kids.len());
    let mut queued: HashSet<&str> = HashSet::new();
    for (position, c) in kids.iter().enumerate() {
        let key = (c.clone(), delegator.to_string());
        if visited.contains(&key) || ready.contains_key(&key) || !queued.insert(c) {
            continue;
        }
        let version = match set.snapshot() {
            Some(s) => match s.signed().meta_for(&format!("{c}.json")) {
                Some(m) => Some(m.version),
                None => continue,
            },
            None => None,
        };
        jobs.push((c.clone(), version.filter(|_| consistent), position));
    }
    // Each thread reads its roles' files too: reading a thousand small files is a tenth of the
    // work, and the folder is read-only here.
    let outcomes =
        map_in_order(
            jobs,
            PREFETCH_PER_THREAD,
            |(role, version, position)| match find_file(src, &role, version) {
                Ok(Some((file, bytes))) => {
                    let outcome = set
                        .verify_delegated(&file, bytes, &role, delegator, Some(position))
                        .map(|v| {
                            let (report, notes) = targets_report(Some(v.metadata()), v.check());
                            let delegating = v
                                .metadata()
                                .signed()
                                .delegations
                                .is_some()
                                .then(|| Box::new(v));
                            Box::new(Prefetched {
                                report,
                                notes,
                                delegating,
                            })
                        });
                    Some((role, outcome))
                }
                _ => None,
            },
        );
    ready.reserve(outcomes.len());
    for (role, outcome) in outcomes.into_iter().flatten() {
        ready.insert((role, delegator.to_string()), outcome);
    }
}

fn newest_versioned(
    src: &dyn MetadataSource,
    names: &[String],
    role: &str,
) -> Result<Option<(String, Vec<u8>)>, VerifyError> {
    let newest = names.iter().filter_map(|n| file_version(n, role)).max();
    match newest {
        Some(v) => find_file(src, role, Some(v)),
        None => Ok(None),
    }
}

/// The roles `role` delegates to, in search order. For succinct hash bins only the bins that
/// the snapshot lists (or, without a snapshot, whose files are present) are visited.
fn children(set: &TrustedSet, role: &str, names: &[String]) -> Vec<String> {
    let Some(d) = set
        .targets(role)
        .and_then(|t| t.signed().delegations.as_ref())
    else {
        return Vec::new();
    };
    if let Some(roles) = &d.roles {
        return roles.iter().map(|r| r.name.clone()).collect();
    }
    let Some(s) = &d.succinct_roles else {
        return Vec::new();
    };
    let mut bins: Vec<String> = match set.snapshot() {
        Some(snap) => snap
            .signed()
            .meta
            .iter()
            .filter_map(|(n, _)| n.strip_suffix(".json"))
            .filter(|n| s.is_delegated_role(n))
            .map(str::to_string)
            .collect(),
        None => names
            .iter()
            .filter_map(|n| n.strip_suffix(".json"))
            .map(|n| {
                n.split_once('.')
                    .filter(|(v, _)| v.parse::<u64>().is_ok())
                    .map_or(n, |(_, r)| r)
            })
            .filter(|n| s.is_delegated_role(n))
            .map(str::to_string)
            .collect(),
    };
    bins.sort();
    bins.dedup();
    bins
}

fn delegated_names(d: Option<&Delegations>) -> Vec<String> {
    match d {
        None => Vec::new(),
        Some(d) => match (&d.roles, &d.succinct_roles) {
            (Some(roles), _) => roles.iter().map(|r| r.name.clone()).collect(),
            (None, Some(s)) => vec![format!(
                "{} hash bins {}..{}",
                s.bin_count(),
                s.bin_name(0),
                s.bin_name(s.bin_count() - 1)
            )],
            (None, None) => Vec::new(),
        },
    }
}

fn push_targets_report(set: &TrustedSet, check: &RoleCheck, report: &mut Report) {
    let (role_report, notes) = targets_report(set.targets(&check.role), check);
    report.notes.extend(notes);
    report.roles.push(role_report);
}

/// The report's line for a verified targets role, and its notes.
fn targets_report(md: Option<&Metadata<Targets>>, check: &RoleCheck) -> (RoleReport, Vec<String>) {
    let count = md.map(|m| m.signed().targets.len());
    let delegations = md.and_then(|m| m.signed().delegations.as_ref());
    let mut notes = Vec::new();
    if let Some(d) = delegations {
        for (id, key) in &d.keys {
            if key.key_id() != *id {
                notes.push(format!(
                    "{}: delegated key id {id} is not the SHA-256 of its key (accepted as a label)",
                    check.file
                ));
            }
        }
    }
    let delegates = delegated_names(delegations);
    (RoleReport::from_check(check, count, delegates), notes)
}

fn simple_role_report<T: SignedPayload>(
    role: &str,
    file: &str,
    signed: &T,
    r: &ThresholdResult,
) -> RoleReport {
    RoleReport {
        role: role.to_string(),
        delegator: "root".into(),
        file: file.to_string(),
        version: signed.common().version,
        expires: signed.common().expires.raw.clone(),
        threshold: r.threshold,
        signed_by: ids(&r.signed),
        not_counted: not_counted(r),
        target_count: None,
        delegates_to: Vec::new(),
    }
}

fn note_root(root: &Root, file: &str, notes: &mut Vec<String>) {
    for (id, key) in &root.keys {
        if key.key_id() != *id {
            notes.push(format!(
                "{file}: key id {id} is not the SHA-256 of its key (accepted as a label)"
            ));
        }
        if let Err(e) = key.public_key() {
            notes.push(format!("{file}: key {id} cannot verify signatures: {e}"));
        }
    }
    for ty in RoleType::ALL {
        let role = root.role(ty);
        if role.threshold > role.keyids.len() as u64 {
            notes.push(format!(
                "{file}: {ty} threshold {} is more than its {} keys: it can never be met",
                role.threshold,
                role.keyids.len()
            ));
        }
    }
    if !root.common.expires.is_strict() {
        notes.push(format!(
            "{file}: expires \"{}\" is not in the strict YYYY-MM-DDTHH:MM:SSZ form (python-tuf refuses it)",
            crate::text::show(&root.common.expires.raw)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that counts reads and refuses one file.
    struct Counting {
        files: HashMap<String, Vec<u8>>,
        reads: std::sync::Mutex<Vec<String>>,
    }

    impl MetadataSource for Counting {
        fn names(&self) -> Vec<String> {
            self.files.keys().cloned().collect()
        }
        fn read(&self, name: &str) -> Result<Option<Vec<u8>>, SourceError> {
            self.reads.lock().unwrap().push(name.to_string());
            if name == "refused.json" {
                return Err(SourceError::Refused("refused.json is refused".into()));
            }
            Ok(self.files.get(name).cloned())
        }
    }

    #[test]
    fn a_file_version_is_spelled_as_a_client_asks_for_it() {
        assert_eq!(file_version("1.root.json", "root"), Some(1));
        assert_eq!(file_version("12.targets.json", "targets"), Some(12));
        assert_eq!(file_version("3.a.b.json", "a.b"), Some(3));
        for other in [
            "01.root.json",
            "+1.root.json",
            "1.root.json.bak",
            "root.json",
            ".root.json",
            "1.xroot.json",
            "1.root.targets.json",
            "18446744073709551616.root.json",
            "١.root.json",
        ] {
            assert_eq!(file_version(other, "root"), None, "{other}");
        }
        assert_eq!(file_version("0.root.json", "root"), Some(0));
    }

    #[test]
    fn read_ahead_keeps_only_files_it_read_and_gives_each_once() {
        let src = Counting {
            files: [("a.json", b"A".to_vec()), ("b.json", b"B".to_vec())]
                .into_iter()
                .map(|(n, b)| (n.to_string(), b))
                .collect(),
            reads: std::sync::Mutex::default(),
        };
        let ahead = ReadAhead::new(&src);
        let names: Vec<String> = ["a.json", "missing.json", "refused.json", "b.json"]
            .into_iter()
            .map(String::from)
            .collect();
        ahead.fill(&names, &std::sync::atomic::AtomicBool::new(false));
        assert_eq!(src.reads.lock().unwrap().len(), 4);
        // Kept files come from memory, once; everything else is read again from the source,
        // so a missing or refused file is reported by the walk as without reading ahead.
        assert_eq!(ahead.read("a.json").unwrap(), Some(b"A".to_vec()));
        assert_eq!(src.reads.lock().unwrap().len(), 4);
        assert_eq!(ahead.read("a.json").unwrap(), Some(b"A".to_vec()));
        assert_eq!(ahead.read("missing.json").unwrap(), None);
        assert!(matches!(
            ahead.read("refused.json"),
            Err(SourceError::Refused(m)) if m.contains("refused")
        ));
        assert_eq!(src.reads.lock().unwrap().len(), 7);
        // A stop asked for before the start reads nothing.
        let stopped = ReadAhead::new(&src);
        stopped.fill(&names, &std::sync::atomic::AtomicBool::new(true));
        assert_eq!(src.reads.lock().unwrap().len(), 7);
        assert_eq!(stopped.read("b.json").unwrap(), Some(b"B".to_vec()));
        assert_eq!(src.reads.lock().unwrap().len(), 8);
    }
}
