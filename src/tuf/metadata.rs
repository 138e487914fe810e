//! The TUF metadata model (specification 1.0.x, as python-tuf 7 reads it).
//!
//! Every object keeps its unrecognized members, so a file another tool wrote loads and saves with
//! its `signed` part unchanged, and signatures are over exactly what was loaded.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::canonical::{JsonError, Map, Value};
use super::key::{Key, KeyId};
use super::parse::{FieldError, Fields, as_string, as_u64, index_path, member_path};

/// The four top-level roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoleType {
    /// `root`
    Root,
    /// `targets` (also the type of delegated targets roles)
    Targets,
    /// `snapshot`
    Snapshot,
    /// `timestamp`
    Timestamp,
}

impl RoleType {
    /// The `_type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleType::Root => "root",
            RoleType::Targets => "targets",
            RoleType::Snapshot => "snapshot",
            RoleType::Timestamp => "timestamp",
        }
    }

    /// All four, in the order of the client workflow.
    pub const ALL: [RoleType; 4] = [
        RoleType::Root,
        RoleType::Timestamp,
        RoleType::Snapshot,
        RoleType::Targets,
    ];

    fn parse(s: &str) -> Option<RoleType> {
        RoleType::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for RoleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a metadata file could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// Not acceptable JSON.
    #[error("{0}")]
    Json(#[from] JsonError),
    /// A field is missing, mistyped or has a forbidden value.
    #[error("{0}")]
    Field(#[from] FieldError),
    /// `_type` is not what the caller expected (a targets file offered as root, ...).
    #[error("$.signed._type: expected \"{expected}\", found \"{}\"", crate::text::show(.found))]
    WrongType {
        /// What was expected.
        expected: String,
        /// What the file says.
        found: String,
    },
}

/// A timestamp as written in metadata, with its parsed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expires {
    /// As written (kept so that the file's bytes do not change).
    pub raw: String,
    /// Parsed (RFC 3339; fractions and offsets are read, as real repositories contain them).
    pub time: OffsetDateTime,
}

impl Expires {
    /// Parse an `expires` string.
    pub fn parse(raw: String, path: &str) -> Result<Self, FieldError> {
        let time = OffsetDateTime::parse(&raw, &Rfc3339)
            .map_err(|e| FieldError::new(path, format!("not an RFC 3339 time \"{raw}\" ({e})")))?;
        Ok(Expires { raw, time })
    }

    /// The spec's format `YYYY-MM-DDTHH:MM:SSZ` (what Conclave writes), from a time.
    pub fn from_time(t: OffsetDateTime) -> Self {
        let t = t
            .to_offset(time::UtcOffset::UTC)
            .replace_nanosecond(0)
            .unwrap_or(t);
        let raw = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        Expires { raw, time: t }
    }

    /// Whether the role is expired at `now` (expired when `expires <= now`).
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.time <= now
    }

    /// Whether the raw string is in the strict spec format python-tuf requires.
    pub fn is_strict(&self) -> bool {
        Expires::from_time(self.time).raw == self.raw
    }
}

/// Fields every `signed` part has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Common {
    /// `spec_version`
    pub spec_version: String,
    /// `version` (at least 1)
    pub version: u64,
    /// `expires`
    pub expires: Expires,
}

impl Common {
    fn take(f: &mut Fields) -> Result<Self, FieldError> {
        let spec_version = f.string("spec_version")?;
        let parts: Vec<&str> = spec_version.split('.').collect();
        let numeric = parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !(2..=3).contains(&parts.len()) || !numeric {
            return Err(FieldError::new(
                f.child("spec_version"),
                format!("cannot parse spec_version \"{spec_version}\""),
            ));
        }
        if parts[0] != "1" {
            return Err(FieldError::new(
                f.child("spec_version"),
                format!("unsupported spec_version \"{spec_version}\" (Conclave reads 1.x)"),
            ));
        }
        let version = f.u64("version")?;
        if version == 0 {
            return Err(FieldError::new(
                f.child("version"),
                "version must be at least 1",
            ));
        }
        let path = f.child("expires");
        let expires = Expires::parse(f.string("expires")?, &path)?;
        Ok(Common {
            spec_version,
            version,
            expires,
        })
    }

    fn put(&self, m: &mut Map, ty: RoleType) {
        m.insert("_type".into(), ty.as_str().into());
        m.insert("spec_version".into(), self.spec_version.clone().into());
        m.insert("version".into(), self.version.into());
        m.insert("expires".into(), self.expires.raw.clone().into());
    }
}

/// One entry of `signatures`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The key id the signature claims.
    pub keyid: KeyId,
    /// Hex signature; empty (`""`) means "no signature yet", as tuf-on-ci writes.
    pub sig: String,
    /// Unrecognized members.
    pub unrecognized: Map,
}

impl Signature {
    fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        m.insert("keyid".into(), self.keyid.0.clone().into());
        m.insert("sig".into(), self.sig.clone().into());
        Value::Object(m)
    }
}

/// A role's keys and threshold (`roles` in root; delegated roles add more).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// Key ids allowed to sign, unique.
    pub keyids: Vec<KeyId>,
    /// Signatures needed, at least 1.
    pub threshold: u64,
    /// Unrecognized members (e.g. `x-tuf-on-ci-expiry-period-hours`).
    pub unrecognized: Map,
}

impl Role {
    fn take(f: &mut Fields) -> Result<Self, FieldError> {
        let keyids = take_keyids(f)?;
        let threshold = take_threshold(f)?;
        Ok(Role {
            keyids,
            threshold,
            unrecognized: Map::new(),
        })
    }

    fn put(&self, m: &mut Map) {
        m.insert(
            "keyids".into(),
            Value::Array(self.keyids.iter().map(|k| k.0.clone().into()).collect()),
        );
        m.insert("threshold".into(), self.threshold.into());
    }

    fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        self.put(&mut m);
        Value::Object(m)
    }
}

fn take_keyids(f: &mut Fields) -> Result<Vec<KeyId>, FieldError> {
    let path = f.child("keyids");
    let items = f.array("keyids")?;
    let mut out: Vec<KeyId> = Vec::with_capacity(items.len());
    for (i, v) in items.into_iter().enumerate() {
        let id = KeyId(as_string(v, &index_path(&path, i))?);
        if out.contains(&id) {
            return Err(FieldError::new(
                index_path(&path, i),
                format!("key id {id} is listed twice"),
            ));
        }
        out.push(id);
    }
    Ok(out)
}

fn take_threshold(f: &mut Fields) -> Result<u64, FieldError> {
    let path = f.child("threshold");
    let v = f.take("threshold")?;
    if let Value::Int(i) = v
        && i < 1
    {
        return Err(FieldError::new(
            path,
            format!("threshold must be at least 1, found {i}"),
        ));
    }
    as_u64(&v, &path)
}

/// Keys by key id, in key id order.
pub type KeyMap = Vec<(KeyId, Key)>;

fn take_keys(f: &mut Fields) -> Result<KeyMap, FieldError> {
    let path = f.child("keys");
    let map = f.map("keys")?;
    map.into_iter()
        .map(|(id, v)| {
            let kp = member_path(&path, &id);
            Ok((KeyId(id), key_from_value(v, &kp)?))
        })
        .collect()
}

fn keys_to_value(keys: &KeyMap) -> Value {
    Value::Object(
        keys.iter()
            .map(|(id, k)| (id.0.clone(), k.to_value()))
            .collect(),
    )
}

/// Read a key object (keytype, scheme, keyval.public) at `path`. The key is not decoded here:
/// a key of an unknown type loads, and its signatures simply do not count.
pub fn key_from_value(v: Value, path: &str) -> Result<Key, FieldError> {
    let mut f = Fields::new(v, path)?;
    let keytype = f.string("keytype")?;
    let scheme = f.string("scheme")?;
    let mut kv = f.object("keyval")?;
    // Keys of types Conclave cannot use may have no `public` (tuf-on-ci's `sigstore-oidc`
    // keys carry `identity` and `issuer`): they load, and never verify anything.
    let public = kv.opt_string("public")?.unwrap_or_default();
    Ok(Key {
        keytype,
        scheme,
        public,
        keyval_unrecognized: kv.rest(),
        unrecognized: f.rest(),
    })
}

/// Look up a key id in a key map.
pub fn find_key<'a>(keys: &'a KeyMap, id: &KeyId) -> Option<&'a Key> {
    keys.binary_search_by(|(k, _)| k.cmp(id))
        .ok()
        .map(|i| &keys[i].1)
}

/// The `signed` part of `root.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    /// Version, expiry, spec version.
    pub common: Common,
    /// `consistent_snapshot`, when present.
    pub consistent_snapshot: Option<bool>,
    /// All keys the top-level roles use.
    pub keys: KeyMap,
    /// `root`, `targets`, `snapshot`, `timestamp`, each exactly once.
    pub roles: Vec<(RoleType, Role)>,
    /// Unrecognized members.
    pub unrecognized: Map,
}

impl Root {
    /// The key ids and threshold of a top-level role.
    pub fn role(&self, ty: RoleType) -> &Role {
        // Parsing guarantees all four roles; fall back to the first to avoid a panic path.
        self.roles
            .iter()
            .find(|(t, _)| *t == ty)
            .map(|(_, r)| r)
            .unwrap_or(&self.roles[0].1)
    }

    /// The role, mutable.
    pub fn role_mut(&mut self, ty: RoleType) -> Option<&mut Role> {
        self.roles
            .iter_mut()
            .find(|(t, _)| *t == ty)
            .map(|(_, r)| r)
    }

    /// The key for a key id.
    pub fn key(&self, id: &KeyId) -> Option<&Key> {
        find_key(&self.keys, id)
    }
}

/// An entry of `meta` in snapshot and timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaFile {
    /// Version of the listed file.
    pub version: u64,
    /// Length in bytes, when listed.
    pub length: Option<u64>,
    /// Hashes by algorithm name (hex), when listed.
    pub hashes: Option<Vec<(String, String)>>,
    /// Unrecognized members.
    pub unrecognized: Map,
}

impl MetaFile {
    fn from_value(v: Value, path: &str) -> Result<Self, FieldError> {
        let mut f = Fields::new(v, path)?;
        let version = f.u64("version")?;
        if version == 0 {
            return Err(FieldError::new(
                f.child("version"),
                "version must be at least 1",
            ));
        }
        let length = f.opt_u64("length")?;
        let hashes = match f.take_opt("hashes") {
            None => None,
            Some(v) => Some(take_hashes(v, || f.child("hashes"))?),
        };
        Ok(MetaFile {
            version,
            length,
            hashes,
            unrecognized: f.rest(),
        })
    }

    /// As JSON.
    pub fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        m.insert("version".into(), self.version.into());
        if let Some(l) = self.length {
            m.insert("length".into(), l.into());
        }
        if let Some(h) = &self.hashes {
            m.insert("hashes".into(), hashes_to_value(h));
        }
        Value::Object(m)
    }
}

/// `path` makes the hashes' JSON path, only when there is an error to report (a snapshot lists
/// thousands of files).
fn take_hashes(v: Value, path: impl Fn() -> String) -> Result<Vec<(String, String)>, FieldError> {
    let Value::Object(m) = v else {
        return Err(FieldError::new(
            path(),
            format!("expected an object, found {}", v.type_name()),
        ));
    };
    if m.is_empty() {
        return Err(FieldError::new(path(), "hashes must not be empty"));
    }
    m.into_iter()
        .map(|(alg, h)| match h {
            Value::String(d) => Ok((alg, d)),
            other => Err(FieldError::new(
                member_path(&path(), &alg),
                format!("expected a string, found {}", other.type_name()),
            )),
        })
        .collect()
}

fn hashes_to_value(h: &[(String, String)]) -> Value {
    Value::Object(
        h.iter()
            .map(|(a, d)| (a.clone(), d.clone().into()))
            .collect(),
    )
}

/// The `signed` part of `snapshot.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Version, expiry, spec version.
    pub common: Common,
    /// Targets metadata files by file name (`targets.json`, `ROLE.json`).
    pub meta: Vec<(String, MetaFile)>,
    /// Unrecognized members.
    pub unrecognized: Map,
}

impl Snapshot {
    /// The entry for a file name.
    pub fn meta_for(&self, name: &str) -> Option<&MetaFile> {
        self.meta
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.meta[i].1)
    }
}

/// The `signed` part of `timestamp.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// Version, expiry, spec version.
    pub common: Common,
    /// `meta["snapshot.json"]`.
    pub snapshot_meta: MetaFile,
    /// Other members of `meta` (not used, kept).
    pub meta_unrecognized: Map,
    /// Unrecognized members.
    pub unrecognized: Map,
}

/// A delegated role in `delegations.roles`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelegatedRole {
    /// Role name.
    pub name: String,
    /// Key ids and threshold.
    pub role: Role,
    /// Whether the search for a target stops here.
    pub terminating: bool,
    /// Path patterns (`fnmatch` style, `*` does not cross `/`).
    pub paths: Option<Vec<String>>,
    /// Hex prefixes of SHA-256 of target paths.
    pub path_hash_prefixes: Option<Vec<String>>,
}

impl DelegatedRole {
    fn from_value(v: Value, path: &str) -> Result<Self, FieldError> {
        let mut f = Fields::new(v, path)?;
        let name = f.string("name")?;
        let mut role = Role::take(&mut f)?;
        let terminating = f.bool("terminating")?;
        let paths = f.opt_string_array("paths")?;
        let path_hash_prefixes = f.opt_string_array("path_hash_prefixes")?;
        match (&paths, &path_hash_prefixes) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    path,
                    "a delegation has either paths or path_hash_prefixes, not both",
                ));
            }
            (None, None) => {
                return Err(FieldError::new(
                    path,
                    "a delegation needs one of paths or path_hash_prefixes",
                ));
            }
            _ => {}
        }
        role.unrecognized = f.rest();
        Ok(DelegatedRole {
            name,
            role,
            terminating,
            paths,
            path_hash_prefixes,
        })
    }

    fn to_value(&self) -> Value {
        let mut m = self.role.unrecognized.clone();
        self.role.put(&mut m);
        m.insert("name".into(), self.name.clone().into());
        m.insert("terminating".into(), self.terminating.into());
        let strings = |v: &Vec<String>| Value::Array(v.iter().map(|s| s.clone().into()).collect());
        if let Some(p) = &self.paths {
            m.insert("paths".into(), strings(p));
        }
        if let Some(p) = &self.path_hash_prefixes {
            m.insert("path_hash_prefixes".into(), strings(p));
        }
        Value::Object(m)
    }

    /// Whether this role is trusted for `target` (by path pattern or hash prefix).
    pub fn is_delegated_path(&self, target: &str) -> bool {
        if let Some(patterns) = &self.paths {
            return patterns.iter().any(|p| path_matches(p, target));
        }
        if let Some(prefixes) = &self.path_hash_prefixes {
            let digest = hex::encode(sha256(target.as_bytes()));
            return prefixes.iter().any(|p| digest.starts_with(p.as_str()));
        }
        false
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

/// TUF path pattern matching, as python-tuf does it: the target path and the pattern must have
/// the same number of `/`-separated parts, and each part matches with `fnmatch` (`*`, `?`,
/// `[...]`), so `*` never crosses a `/`.
pub fn path_matches(pattern: &str, target: &str) -> bool {
    let pp: Vec<&str> = pattern.split('/').collect();
    let tp: Vec<&str> = target.split('/').collect();
    pp.len() == tp.len()
        && pp
            .iter()
            .zip(&tp)
            .all(|(p, t)| fnmatch(p.as_bytes(), t.as_bytes()))
}

/// Shell-style matching of one path part (`*`, `?`, `[seq]`, `[!seq]`), on characters.
fn fnmatch(pattern: &[u8], text: &[u8]) -> bool {
    let p: Vec<char> = String::from_utf8_lossy(pattern).chars().collect();
    let t: Vec<char> = String::from_utf8_lossy(text).chars().collect();
    // Iterative matcher with backtracking on the last '*'.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = match_class(&p, pi, t[ti]) {
                        if matched {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Match a `[...]` class starting at `p[start]`; `None` when the bracket is not closed (then it
/// is a literal `[`, as in Python's fnmatch).
fn match_class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && p[i] == '!';
    if negate {
        i += 1;
    }
    let first = i;
    let mut matched = false;
    while i < p.len() && (p[i] != ']' || i == first) {
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    if i >= p.len() {
        return None;
    }
    Some((matched != negate, i + 1))
}

/// TAP 15 hash-bin delegation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuccinctRoles {
    /// Key ids and threshold shared by every bin.
    pub role: Role,
    /// Number of bits of SHA-256(target path) that select the bin (1..=32).
    pub bit_length: u32,
    /// Bin names are `{name_prefix}-{i:0w x}`.
    pub name_prefix: String,
}

impl SuccinctRoles {
    fn from_value(v: Value, path: &str) -> Result<Self, FieldError> {
        let mut f = Fields::new(v, path)?;
        let mut role = Role::take(&mut f)?;
        let bl_path = f.child("bit_length");
        let bit_length = f.u64("bit_length")?;
        if !(1..=32).contains(&bit_length) {
            return Err(FieldError::new(
                bl_path,
                format!("bit_length must be between 1 and 32, found {bit_length}"),
            ));
        }
        let name_prefix = f.string("name_prefix")?;
        role.unrecognized = f.rest();
        Ok(SuccinctRoles {
            role,
            bit_length: bit_length as u32,
            name_prefix,
        })
    }

    fn to_value(&self) -> Value {
        let mut m = self.role.unrecognized.clone();
        self.role.put(&mut m);
        m.insert("bit_length".into(), u64::from(self.bit_length).into());
        m.insert("name_prefix".into(), self.name_prefix.clone().into());
        Value::Object(m)
    }

    /// Number of bins (2^bit_length).
    pub fn bin_count(&self) -> u64 {
        1u64 << self.bit_length
    }

    fn suffix_len(&self) -> usize {
        format!("{:x}", self.bin_count() - 1).len()
    }

    /// The name of bin `i`.
    pub fn bin_name(&self, i: u64) -> String {
        format!("{}-{:0w$x}", self.name_prefix, i, w = self.suffix_len())
    }

    /// The bin a target path belongs to.
    pub fn bin_for_target(&self, target: &str) -> String {
        let d = sha256(target.as_bytes());
        let first = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
        let shift = 32 - self.bit_length;
        self.bin_name(u64::from(first >> shift))
    }

    /// Whether `name` is exactly one of the bins (GHSA-77hh-43cm-v8j6: nothing else is).
    pub fn is_delegated_role(&self, name: &str) -> bool {
        let Some(suffix) = name
            .strip_prefix(self.name_prefix.as_str())
            .and_then(|s| s.strip_prefix('-'))
        else {
            return false;
        };
        if suffix.len() != self.suffix_len()
            || !suffix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return false;
        }
        u64::from_str_radix(suffix, 16).is_ok_and(|i| i < self.bin_count())
    }
}

/// `delegations` of a targets role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delegations {
    /// Keys the delegated roles use (they apply only to these delegations).
    pub keys: KeyMap,
    /// Ordered delegated roles (search order), when not succinct.
    pub roles: Option<Vec<DelegatedRole>>,
    /// Hash-bin delegation, when succinct.
    pub succinct_roles: Option<SuccinctRoles>,
    /// Unrecognized members.
    pub unrecognized: Map,
}

impl Delegations {
    /// Read a `delegations` object at JSON path `path`.
    pub fn from_value(v: Value, path: &str) -> Result<Self, FieldError> {
        let mut f = Fields::new(v, path)?;
        let keys = take_keys(&mut f)?;
        let roles = match f.take_opt("roles") {
            None => None,
            Some(Value::Array(items)) => {
                let rp = f.child("roles");
                let mut roles: Vec<DelegatedRole> = Vec::with_capacity(items.len());
                let mut names: std::collections::HashSet<String> =
                    std::collections::HashSet::with_capacity(items.len());
                for (i, v) in items.into_iter().enumerate() {
                    let p = index_path(&rp, i);
                    let r = DelegatedRole::from_value(v, &p)?;
                    if !names.insert(r.name.clone()) {
                        return Err(FieldError::new(
                            member_path(&p, "name"),
                            format!("role \"{}\" is delegated twice", r.name),
                        ));
                    }
                    if RoleType::parse(&r.name).is_some() {
                        return Err(FieldError::new(
                            member_path(&p, "name"),
                            format!(
                                "\"{}\" is a top-level role name and cannot be delegated",
                                r.name
                            ),
                        ));
                    }
                    roles.push(r);
                }
                Some(roles)
            }
            Some(other) => {
                return Err(FieldError::new(
                    f.child("roles"),
                    format!("expected an array, found {}", other.type_name()),
                ));
            }
        };
        let succinct_roles = match f.take_opt("succinct_roles") {
            None => None,
            Some(v) => Some(SuccinctRoles::from_value(v, &f.child("succinct_roles"))?),
        };
        if roles.is_some() == succinct_roles.is_some() {
            return Err(FieldError::new(
                path,
                "delegations need exactly one of roles or succinct_roles",
            ));
        }
        Ok(Delegations {
            keys,
            roles,
            succinct_roles,
            unrecognized: f.rest(),
        })
    }

    fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        m.insert("keys".into(), keys_to_value(&self.keys));
        if let Some(roles) = &self.roles {
            m.insert(
                "roles".into(),
                Value::Array(roles.iter().map(DelegatedRole::to_value).collect()),
            );
        }
        if let Some(s) = &self.succinct_roles {
            m.insert("succinct_roles".into(), s.to_value());
        }
        Value::Object(m)
    }

    /// The key for a key id.
    pub fn key(&self, id: &KeyId) -> Option<&Key> {
        find_key(&self.keys, id)
    }

    /// The names of every delegated role, in search order (all bins for succinct roles; capped
    /// by the caller for huge bin counts).
    pub fn role_names(&self) -> Vec<String> {
        if let Some(roles) = &self.roles {
            return roles.iter().map(|r| r.name.clone()).collect();
        }
        match &self.succinct_roles {
            Some(s) => (0..s.bin_count()).map(|i| s.bin_name(i)).collect(),
            None => Vec::new(),
        }
    }

    /// [`Delegations::role_for`] when the caller knows where the role likely stands in `roles`
    /// (the delegation walk does): the role at `position` if it has that name, else the search.
    /// Names are unique in parsed metadata (a name delegated twice is refused), so both find the
    /// same role; with the position, looking up each of n sibling roles costs O(n), not O(n^2).
    pub fn role_for_at(&self, name: &str, position: usize) -> Option<&Role> {
        if let Some(r) = self
            .roles
            .as_ref()
            .and_then(|roles| roles.get(position))
            .filter(|r| r.name == name)
        {
            return Some(&r.role);
        }
        self.role_for(name)
    }

    /// Key ids and threshold for a delegated role name, if this object delegates it.
    pub fn role_for(&self, name: &str) -> Option<&Role> {
        if let Some(roles) = &self.roles {
            return roles.iter().find(|r| r.name == name).map(|r| &r.role);
        }
        self.succinct_roles
            .as_ref()
            .filter(|s| s.is_delegated_role(name))
            .map(|s| &s.role)
    }
}

/// A target file entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetFile {
    /// Length in bytes.
    pub length: u64,
    /// Hashes by algorithm (hex).
    pub hashes: Vec<(String, String)>,
    /// Unrecognized members (`custom` among them).
    pub unrecognized: Map,
}

impl TargetFile {
    /// Check that a JSON value is a valid target entry without taking it apart. `path` makes
    /// the entry's JSON path, only when there is an error to report.
    pub fn check(v: &Value, path: impl Fn() -> String) -> Result<(), FieldError> {
        let Some(m) = v.as_object() else {
            if let Value::Packed(_) = v {
                return Ok(());
            }
            return Err(FieldError::new(
                path(),
                format!("expected an object, found {}", v.type_name()),
            ));
        };
        let lp = || member_path(&path(), "length");
        match m.get("length") {
            None => return Err(FieldError::new(lp(), "required field is missing")),
            Some(Value::Int(i)) if *i >= 0 && *i <= i128::from(u64::MAX) => {}
            Some(l) => {
                as_u64(l, &lp())?;
            }
        }
        let hp = || member_path(&path(), "hashes");
        match m.get("hashes") {
            None => Err(FieldError::new(hp(), "required field is missing")),
            Some(Value::Object(h)) if h.is_empty() => {
                Err(FieldError::new(hp(), "hashes must not be empty"))
            }
            Some(Value::Object(h)) => {
                for (alg, d) in h.iter() {
                    if d.as_str().is_none() {
                        return Err(FieldError::new(
                            member_path(&hp(), alg),
                            format!("expected a string, found {}", d.type_name()),
                        ));
                    }
                }
                Ok(())
            }
            Some(other) => Err(FieldError::new(
                hp(),
                format!("expected an object, found {}", other.type_name()),
            )),
        }
    }

    /// Read a target entry.
    pub fn from_value(v: Value, path: &str) -> Result<Self, FieldError> {
        let mut f = Fields::new(v, path)?;
        let length = f.u64("length")?;
        let hashes = take_hashes(f.take("hashes")?, || f.child("hashes"))?;
        Ok(TargetFile {
            length,
            hashes,
            unrecognized: f.rest(),
        })
    }

    /// As JSON.
    pub fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        m.insert("length".into(), self.length.into());
        m.insert("hashes".into(), hashes_to_value(&self.hashes));
        Value::Object(m)
    }
}

/// The `signed` part of `targets.json` or a delegated targets role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    /// Version, expiry, spec version.
    pub common: Common,
    /// Target entries by target path, as JSON (each entry checked to be a valid target file
    /// when loaded; entries of loaded files are kept packed, see [`Value::Packed`]). Use
    /// [`Targets::target`] and [`Targets::target_files`] to read them, [`crate::tuf::edit`] to
    /// change them.
    pub targets: Map,
    /// Delegations, when present.
    pub delegations: Option<Delegations>,
    /// Unrecognized members.
    pub unrecognized: Map,
}

impl Targets {
    /// The entry for a target path.
    pub fn target(&self, name: &str) -> Option<TargetFile> {
        let v = self.targets.get(name)?;
        TargetFile::from_value(v.clone().unpacked(), "$").ok()
    }

    /// Every target entry, in name order.
    pub fn target_files(&self) -> impl Iterator<Item = (&String, Option<TargetFile>)> {
        self.targets
            .iter()
            .map(|(n, v)| (n, TargetFile::from_value(v.clone().unpacked(), "$").ok()))
    }
}

/// A `signed` part of one of the four types.
pub trait SignedPayload: Sized + Clone {
    /// The `_type` this payload has.
    const TYPE: RoleType;
    /// Read it from JSON (the whole `signed` object), keeping unrecognized members.
    fn from_value(v: Value, path: &str) -> Result<Self, FieldError>;
    /// Back to JSON; `from_value(v).to_value() == v` for every accepted `v`.
    fn to_value(&self) -> Value;
    /// Version, expiry, spec version.
    fn common(&self) -> &Common;
    /// Mutable common fields.
    fn common_mut(&mut self) -> &mut Common;
}

fn begin(v: Value, path: &str, ty: RoleType) -> Result<(Fields, Common), FieldError> {
    let mut f = Fields::new(v, path)?;
    let t = f.string("_type")?;
    if t != ty.as_str() {
        return Err(FieldError::new(
            f.child("_type"),
            format!("expected \"{ty}\", found \"{}\"", crate::text::show(&t)),
        ));
    }
    let common = Common::take(&mut f)?;
    Ok((f, common))
}

impl SignedPayload for Root {
    const TYPE: RoleType = RoleType::Root;
    fn from_value(v: Value, path: &str) -> Result<Self, FieldError> {
        let (mut f, common) = begin(v, path, RoleType::Root)?;
        let consistent_snapshot = f.opt_bool("consistent_snapshot")?;
        let keys = take_keys(&mut f)?;
        let rp = f.child("roles");
        let roles_map = f.map("roles")?;
        let mut roles = Vec::with_capacity(4);
        for (name, v) in roles_map {
            let p = member_path(&rp, &name);
            let Some(ty) = RoleType::parse(&name) else {
                return Err(FieldError::new(
                    p,
                    "root.roles may name only root, timestamp, snapshot and targets",
                ));
            };
            let mut rf = Fields::new(v, &p)?;
            let mut role = Role::take(&mut rf)?;
            role.unrecognized = rf.rest();
            roles.push((ty, role));
        }
        for ty in RoleType::ALL {
            if !roles.iter().any(|(t, _)| *t == ty) {
                return Err(FieldError::new(
                    member_path(&rp, ty.as_str()),
                    "required role is missing",
                ));
            }
        }
        Ok(Root {
            common,
            consistent_snapshot,
            keys,
            roles,
            unrecognized: f.rest(),
        })
    }
    fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        self.common.put(&mut m, RoleType::Root);
        if let Some(c) = self.consistent_snapshot {
            m.insert("consistent_snapshot".into(), c.into());
        }
        m.insert("keys".into(), keys_to_value(&self.keys));
        m.insert(
            "roles".into(),
            Value::Object(
                self.roles
                    .iter()
                    .map(|(t, r)| (t.as_str().to_string(), r.to_value()))
                    .collect(),
            ),
        );
        Value::Object(m)
    }
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

impl SignedPayload for Timestamp {
    const TYPE: RoleType = RoleType::Timestamp;
    fn from_value(v: Value, path: &str) -> Result<Self, FieldError> {
        let (mut f, common) = begin(v, path, RoleType::Timestamp)?;
        let mut meta = f.object("meta")?;
        let sp = meta.child("snapshot.json");
        let snapshot_meta = MetaFile::from_value(meta.take("snapshot.json")?, &sp)?;
        Ok(Timestamp {
            common,
            snapshot_meta,
            meta_unrecognized: meta.rest(),
            unrecognized: f.rest(),
        })
    }
    fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        self.common.put(&mut m, RoleType::Timestamp);
        let mut meta = self.meta_unrecognized.clone();
        meta.insert("snapshot.json".into(), self.snapshot_meta.to_value());
        m.insert("meta".into(), Value::Object(meta));
        Value::Object(m)
    }
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

impl SignedPayload for Snapshot {
    const TYPE: RoleType = RoleType::Snapshot;
    fn from_value(v: Value, path: &str) -> Result<Self, FieldError> {
        let (mut f, common) = begin(v, path, RoleType::Snapshot)?;
        let mp = f.child("meta");
        let meta = f
            .map("meta")?
            .into_iter()
            // Read with relative paths: the entry's path is made only for an error.
            .map(|(name, v)| match MetaFile::from_value(v, "") {
                Ok(m) => Ok((name, m)),
                Err(e) => Err(e.under(&member_path(&mp, &name))),
            })
            .collect::<Result<Vec<_>, FieldError>>()?;
        Ok(Snapshot {
            common,
            meta,
            unrecognized: f.rest(),
        })
    }
    fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        self.common.put(&mut m, RoleType::Snapshot);
        m.insert(
            "meta".into(),
            Value::Object(
                self.meta
                    .iter()
                    .map(|(n, mf)| (n.clone(), mf.to_value()))
                    .collect(),
            ),
        );
        Value::Object(m)
    }
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

impl SignedPayload for Targets {
    const TYPE: RoleType = RoleType::Targets;
    fn from_value(v: Value, path: &str) -> Result<Self, FieldError> {
        let (mut f, common) = begin(v, path, RoleType::Targets)?;
        let tp = f.child("targets");
        let targets = f.map("targets")?;
        for (name, v) in targets.iter() {
            TargetFile::check(v, || member_path(&tp, name))?;
        }
        let delegations = match f.take_opt("delegations") {
            None => None,
            Some(v) => Some(Delegations::from_value(v, &f.child("delegations"))?),
        };
        Ok(Targets {
            common,
            targets,
            delegations,
            unrecognized: f.rest(),
        })
    }
    fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        self.common.put(&mut m, RoleType::Targets);
        m.insert("targets".into(), Value::Object(self.targets.clone()));
        if let Some(d) = &self.delegations {
            m.insert("delegations".into(), d.to_value());
        }
        Value::Object(m)
    }
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

/// A signed metadata file: the `signed` payload, its canonical bytes (what signatures cover) and
/// the signatures. The payload can only change through [`Metadata::set_signed`], which drops the
/// signatures, so canonical bytes and payload never disagree.
#[derive(Clone, Debug)]
pub struct Metadata<T> {
    signed: T,
    canonical: Vec<u8>,
    /// Signatures in file order; key ids are unique.
    pub signatures: Vec<Signature>,
    /// Unrecognized members of the envelope.
    pub unrecognized: Map,
}

impl<T: SignedPayload> Metadata<T> {
    /// Load from file bytes. Refuses duplicate signature key ids (python-tuf does too).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetadataError> {
        Self::from_value(parse_file(bytes)?)
    }

    /// Load from a parsed JSON value.
    pub fn from_value(v: Value) -> Result<Self, MetadataError> {
        Self::from_value_in(v, Vec::new())
    }

    /// [`Metadata::from_value`], the canonical bytes written into `buffer`'s memory (see
    /// [`Value::canonical_bytes_in`]).
    pub fn from_value_in(v: Value, buffer: Vec<u8>) -> Result<Self, MetadataError> {
        let mut f = Fields::new(v, "$")?;
        let signed_value = f.take("signed")?;
        if let Some(Value::String(t)) = signed_value.as_object().and_then(|m| m.get("_type"))
            && t != T::TYPE.as_str()
        {
            return Err(MetadataError::WrongType {
                expected: T::TYPE.as_str().to_string(),
                found: t.clone(),
            });
        }
        let canonical = signed_value.canonical_bytes_in(buffer);
        let signed = T::from_value(signed_value, "$.signed")?;
        let signatures = take_signatures(&mut f)?;
        Ok(Metadata {
            signed,
            canonical,
            signatures,
            unrecognized: f.rest(),
        })
    }

    /// New unsigned metadata.
    pub fn new(signed: T) -> Self {
        let canonical = signed.to_value().canonical_bytes();
        Metadata {
            signed,
            canonical,
            signatures: Vec::new(),
            unrecognized: Map::new(),
        }
    }

    /// The payload.
    pub fn signed(&self) -> &T {
        &self.signed
    }

    /// The canonical bytes of the payload: exactly what signatures cover.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.canonical
    }

    /// SHA-256 of the canonical bytes of the payload (the digest people read aloud).
    pub fn signed_digest(&self) -> [u8; 32] {
        sha256(&self.canonical)
    }

    /// Replace the payload; all signatures are dropped since they no longer apply.
    pub fn set_signed(&mut self, signed: T) {
        self.canonical = signed.to_value().canonical_bytes();
        self.signed = signed;
        self.signatures.clear();
    }

    /// The whole file as JSON.
    pub fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        m.insert("signed".into(), self.signed.to_value());
        m.insert(
            "signatures".into(),
            Value::Array(self.signatures.iter().map(Signature::to_value).collect()),
        );
        Value::Object(m)
    }

    /// The file as Conclave writes it (indented JSON ending in a newline).
    pub fn to_file_bytes(&self) -> Vec<u8> {
        self.to_value().to_pretty_json().into_bytes()
    }

    /// Add or replace the signature for a key id (an empty `""` slot is replaced).
    pub fn add_signature(&mut self, keyid: KeyId, sig: &[u8]) {
        let sig = hex::encode(sig);
        if let Some(s) = self.signatures.iter_mut().find(|s| s.keyid == keyid) {
            s.sig = sig;
        } else {
            self.signatures.push(Signature {
                keyid,
                sig,
                unrecognized: Map::new(),
            });
        }
    }
}

/// Parse a metadata file, checking and packing target entries as they are read.
pub fn parse_file(bytes: &[u8]) -> Result<Value, JsonError> {
    Value::parse_metadata(
        bytes,
        super::canonical::DEFAULT_MAX_FILE_SIZE,
        &|name, v| {
            TargetFile::check(v, || member_path("$.signed.targets", name))
                .map_err(|e| e.to_string())
        },
    )
}

fn take_signatures(f: &mut Fields) -> Result<Vec<Signature>, FieldError> {
    let path = f.child("signatures");
    let items = f.array("signatures")?;
    let mut out: Vec<Signature> = Vec::with_capacity(items.len());
    for (i, v) in items.into_iter().enumerate() {
        let p = index_path(&path, i);
        let mut sf = Fields::new(v, &p)?;
        let keyid = KeyId(sf.string("keyid")?);
        let sig = sf.string("sig")?;
        if out.iter().any(|s| s.keyid == keyid) {
            return Err(FieldError::new(
                p,
                format!("multiple signatures found for key id {keyid}"),
            ));
        }
        out.push(Signature {
            keyid,
            sig,
            unrecognized: sf.rest(),
        });
    }
    Ok(out)
}

/// Any of the four kinds, for tools that take whatever file they are given.
#[derive(Clone, Debug)]
pub enum AnyMetadata {
    /// root
    Root(Metadata<Root>),
    /// targets or a delegated targets role
    Targets(Metadata<Targets>),
    /// snapshot
    Snapshot(Metadata<Snapshot>),
    /// timestamp
    Timestamp(Metadata<Timestamp>),
}

impl AnyMetadata {
    /// Load any metadata file, dispatching on `signed._type`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetadataError> {
        let v = parse_file(bytes)?;
        let ty = v
            .as_object()
            .and_then(|m| m.get("signed"))
            .and_then(Value::as_object)
            .and_then(|m| m.get("_type"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let ty = match ty {
            Some(t) => t,
            None => {
                // Let the normal path produce the precise error.
                return Metadata::<Root>::from_value(v).map(AnyMetadata::Root);
            }
        };
        match RoleType::parse(&ty) {
            Some(RoleType::Root) => Metadata::from_value(v).map(AnyMetadata::Root),
            Some(RoleType::Targets) => Metadata::from_value(v).map(AnyMetadata::Targets),
            Some(RoleType::Snapshot) => Metadata::from_value(v).map(AnyMetadata::Snapshot),
            Some(RoleType::Timestamp) => Metadata::from_value(v).map(AnyMetadata::Timestamp),
            None => Err(FieldError::new(
                "$.signed._type",
                format!("unknown metadata type \"{ty}\""),
            )
            .into()),
        }
    }

    /// The role type.
    pub fn role_type(&self) -> RoleType {
        match self {
            AnyMetadata::Root(_) => RoleType::Root,
            AnyMetadata::Targets(_) => RoleType::Targets,
            AnyMetadata::Snapshot(_) => RoleType::Snapshot,
            AnyMetadata::Timestamp(_) => RoleType::Timestamp,
        }
    }

    /// Common fields.
    pub fn common(&self) -> &Common {
        match self {
            AnyMetadata::Root(m) => m.signed().common(),
            AnyMetadata::Targets(m) => m.signed().common(),
            AnyMetadata::Snapshot(m) => m.signed().common(),
            AnyMetadata::Timestamp(m) => m.signed().common(),
        }
    }

    /// Signatures.
    pub fn signatures(&self) -> &[Signature] {
        match self {
            AnyMetadata::Root(m) => &m.signatures,
            AnyMetadata::Targets(m) => &m.signatures,
            AnyMetadata::Snapshot(m) => &m.signatures,
            AnyMetadata::Timestamp(m) => &m.signatures,
        }
    }

    /// Canonical bytes of the `signed` part.
    pub fn signed_bytes(&self) -> &[u8] {
        match self {
            AnyMetadata::Root(m) => m.signed_bytes(),
            AnyMetadata::Targets(m) => m.signed_bytes(),
            AnyMetadata::Snapshot(m) => m.signed_bytes(),
            AnyMetadata::Timestamp(m) => m.signed_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_like_python() {
        assert!(path_matches("*", "file.txt"));
        assert!(!path_matches("*", "dir/file.txt"));
        assert!(path_matches("dir/*", "dir/file.txt"));
        assert!(path_matches("*/*", "dir/file.txt"));
        assert!(!path_matches("dir/*", "dir/sub/file.txt"));
        assert!(path_matches(
            "registry.npmjs.org/*",
            "registry.npmjs.org/x.tgz"
        ));
        assert!(path_matches("file?.txt", "file1.txt"));
        assert!(path_matches("file[0-9].txt", "file3.txt"));
        assert!(!path_matches("file[!0-9].txt", "file3.txt"));
        assert!(path_matches("a*b*c", "aXXbYYc"));
        assert!(!path_matches("a*b*c", "aXXbYY"));
        assert!(path_matches("[ab", "[ab"));
        assert!(path_matches("file3.txt", "file3.txt"));
        assert!(!path_matches("", "x"));
    }

    #[test]
    fn succinct_bin_names_are_exact() {
        let s = SuccinctRoles {
            role: Role {
                keyids: vec![],
                threshold: 1,
                unrecognized: Map::new(),
            },
            bit_length: 3,
            name_prefix: "bins".into(),
        };
        assert_eq!(s.bin_name(0), "bins-0");
        assert_eq!(s.bin_name(7), "bins-7");
        for good in ["bins-0", "bins-7"] {
            assert!(s.is_delegated_role(good), "{good}");
        }
        for bad in [
            "bins-8", "bins-07", "bins-a", "other", "bins-", "bins--1", "bins-+1",
        ] {
            assert!(!s.is_delegated_role(bad), "{bad}");
        }
        let s8 = SuccinctRoles { bit_length: 8, ..s };
        assert_eq!(s8.bin_name(10), "bins-0a");
        assert!(s8.is_delegated_role(&s8.bin_for_target("some/file.tgz")));
    }

    /// Paths made only on error (snapshot entries, hashes, path patterns) name the same field
    /// as paths made eagerly did.
    #[test]
    fn lazily_made_paths_name_the_field() {
        let snapshot = |meta: &str| {
            let text = format!(
                r#"{{"_type":"snapshot","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","meta":{meta}}}"#
            );
            Snapshot::from_value(parse_file(text.as_bytes()).unwrap(), "$.signed")
                .map(|_| ())
                .map_err(|e| (e.path, e.message))
        };
        let err = |path: &str, message: &str| Err((path.to_string(), message.to_string()));
        assert_eq!(
            snapshot(r#"{"a.json":{"version":1},"b.json":{"version":0}}"#),
            err(
                r#"$.signed.meta["b.json"].version"#,
                "version must be at least 1"
            )
        );
        assert_eq!(
            snapshot(r#"{"b.json":{}}"#),
            err(
                r#"$.signed.meta["b.json"].version"#,
                "required field is missing"
            )
        );
        assert_eq!(
            snapshot(r#"{"b.json":3}"#),
            err(
                r#"$.signed.meta["b.json"]"#,
                "expected an object, found integer"
            )
        );
        assert_eq!(
            snapshot(r#"{"b.json":{"version":1,"hashes":[]}}"#),
            err(
                r#"$.signed.meta["b.json"].hashes"#,
                "expected an object, found array"
            )
        );
        assert_eq!(
            snapshot(r#"{"b.json":{"version":1,"hashes":{}}}"#),
            err(
                r#"$.signed.meta["b.json"].hashes"#,
                "hashes must not be empty"
            )
        );
        assert_eq!(
            snapshot(r#"{"b.json":{"version":1,"hashes":{"sha256":1}}}"#),
            err(
                r#"$.signed.meta["b.json"].hashes.sha256"#,
                "expected a string, found integer"
            )
        );
        assert_eq!(snapshot(r#"{"b.json":{"version":1,"length":5}}"#), Ok(()));
        let text = r#"{"keys":{},"roles":[{"name":"r","keyids":[],"threshold":1,"paths":["a",2],"terminating":false}]}"#;
        let e =
            Delegations::from_value(parse_file(text.as_bytes()).unwrap(), "$.signed.delegations")
                .unwrap_err();
        assert_eq!(e.path, "$.signed.delegations.roles[0].paths[1]");
        assert_eq!(e.message, "expected a string, found integer");
        let e = TargetFile::from_value(
            parse_file(br#"{"length":1,"hashes":{"sha256":null}}"#).unwrap(),
            "$.t",
        )
        .unwrap_err();
        assert_eq!(e.path, "$.t.hashes.sha256");
    }

    #[test]
    fn role_for_at_uses_the_position_only_when_the_name_matches() {
        let roles: Vec<String> = (0..5)
            .map(|i| {
                format!(
                    r#"{{"name":"r{i}","keyids":[],"threshold":{},"paths":["*"],"terminating":false}}"#,
                    i + 1
                )
            })
            .collect();
        let text = format!(r#"{{"keys":{{}},"roles":[{}]}}"#, roles.join(","));
        let d = Delegations::from_value(parse_file(text.as_bytes()).unwrap(), "$").unwrap();
        let threshold = |r: Option<&Role>| r.map(|r| r.threshold);
        assert_eq!(threshold(d.role_for_at("r3", 3)), Some(4));
        // A wrong or out-of-range position still finds the role by name.
        assert_eq!(threshold(d.role_for_at("r3", 0)), Some(4));
        assert_eq!(threshold(d.role_for_at("r3", 99)), Some(4));
        // A name the delegator does not delegate is not found at any position.
        assert_eq!(threshold(d.role_for_at("r9", 3)), None);
        for i in 0..5 {
            assert_eq!(
                d.role_for_at(&format!("r{i}"), i),
                d.role_for(&format!("r{i}"))
            );
        }
    }

    #[test]
    fn expires_formats() {
        let e = Expires::parse("2026-08-22T10:00:00Z".into(), "$").unwrap();
        assert!(e.is_strict());
        let e = Expires::parse("2021-12-18T13:28:12.99008-06:00".into(), "$").unwrap();
        assert!(!e.is_strict());
        assert_eq!(Expires::from_time(e.time).raw, "2021-12-18T19:28:12Z");
        assert!(Expires::parse("tomorrow".into(), "$.signed.expires").is_err());
    }
}
