//! Key events: the entries of the key-event log, what a ceremony changed in the keys and
//! thresholds of the roles, and which metadata it published.
//!
//! Every entry is one canonical-JSON object (its canonical bytes are the Merkle leaf). Entries are
//! derived from the metadata before and after a ceremony ([`ceremony_events`]), so anyone can
//! recompute them from the exported files, and replaying them ([`KeyState::apply`]) gives the keys
//! and thresholds of every role at any point of the log.

use crate::text::show;
use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::tuf::canonical::{Map, Value};
use crate::tuf::key::{Key, KeyId};
use crate::tuf::metadata::{
    Metadata, MetadataError, Role, RoleType, Root, SignedPayload, Targets, key_from_value,
};
use crate::tuf::parse::{FieldError, Fields};

/// The `_type` of every entry.
pub const ENTRY_TYPE: &str = "conclave-key-event";
/// The entry format version (`"v"`).
pub const ENTRY_VERSION: u64 = 1;
/// The key field naming a key's keyholder (tuf-on-ci's, which Conclave writes too).
pub const OWNER_FIELD: &str = "x-tuf-on-ci-keyowner";

/// A role the log tracks: a top-level role of root, or a role delegated by top-level targets
/// (a project). Ordered: root, targets, snapshot, timestamp, then delegated roles by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleName {
    rank: u8,
    delegator: String,
    name: String,
}

impl RoleName {
    /// A top-level role.
    pub fn top(ty: RoleType) -> RoleName {
        let rank = match ty {
            RoleType::Root => 0,
            RoleType::Targets => 1,
            RoleType::Snapshot => 2,
            RoleType::Timestamp => 3,
        };
        RoleName {
            rank,
            delegator: String::new(),
            name: ty.as_str().to_string(),
        }
    }

    /// A role delegated by `delegator` (Conclave tracks delegations of top-level `targets`).
    pub fn delegated(delegator: &str, name: &str) -> RoleName {
        RoleName {
            rank: 4,
            delegator: delegator.to_string(),
            name: name.to_string(),
        }
    }

    /// The role's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The delegating role, for a delegated role.
    pub fn delegator(&self) -> Option<&str> {
        (self.rank == 4).then_some(self.delegator.as_str())
    }

    /// Whether this is one of the four top-level roles (changed by root).
    pub fn is_top_level(&self) -> bool {
        self.rank < 4
    }

    fn put(&self, m: &mut Map) {
        m.insert("role".into(), self.name.clone().into());
        if let Some(d) = self.delegator() {
            m.insert("delegated_by".into(), d.into());
        }
    }

    fn take(f: &mut Fields) -> Result<RoleName, FieldError> {
        let path = f.child("role");
        let name = f.string("role")?;
        match f.opt_string("delegated_by")? {
            Some(d) => Ok(RoleName::delegated(&d, &name)),
            None => ["root", "targets", "snapshot", "timestamp"]
                .iter()
                .zip([
                    RoleType::Root,
                    RoleType::Targets,
                    RoleType::Snapshot,
                    RoleType::Timestamp,
                ])
                .find(|(n, _)| **n == name)
                .map(|(_, ty)| RoleName::top(ty))
                .ok_or_else(|| {
                    FieldError::new(
                        path,
                        format!(
                            "\"{}\" is not a top-level role (a delegated role needs delegated_by)",
                            show(&name.to_string())
                        ),
                    )
                }),
        }
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.delegator() {
            Some(d) => write!(f, "{} (delegated by {d})", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// What a published metadata file is, as the log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedRef {
    /// `root` or `targets`.
    pub role: RoleType,
    /// Metadata version.
    pub version: u64,
    /// `expires` as written.
    pub expires: String,
    /// SHA-256 of the canonical `signed` bytes: what the keyholders signed and read aloud.
    pub signed_sha256: [u8; 32],
    /// SHA-256 of the exported file's bytes: what clients download.
    pub file_sha256: [u8; 32],
    /// Length of the exported file.
    pub length: u64,
}

/// A metadata file as exported: the parsed metadata with the digest and length of its bytes.
#[derive(Clone, Debug)]
pub struct Published<T> {
    /// The metadata.
    pub metadata: Metadata<T>,
    /// SHA-256 of the file's bytes.
    pub file_sha256: [u8; 32],
    /// The file's length.
    pub length: u64,
}

impl<T: SignedPayload> Published<T> {
    /// Read an exported file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetadataError> {
        Ok(Published {
            metadata: Metadata::from_bytes(bytes)?,
            file_sha256: Sha256::digest(bytes).into(),
            length: bytes.len() as u64,
        })
    }

    /// What the log records about it.
    pub fn reference(&self) -> PublishedRef {
        PublishedRef {
            role: T::TYPE,
            version: self.metadata.signed().common().version,
            expires: self.metadata.signed().common().expires.raw.clone(),
            signed_sha256: self.metadata.signed_digest(),
            file_sha256: self.file_sha256,
            length: self.length,
        }
    }
}

/// One thing that happened to the keys or the published metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A role appeared (the top-level roles at bootstrap, a delegated project later).
    RoleAdded {
        /// The role.
        role: RoleName,
        /// Its threshold.
        threshold: u64,
        /// Version of the metadata that added it (root, or targets for a delegation).
        version: u64,
    },
    /// A delegated role disappeared.
    RoleRemoved {
        /// The role.
        role: RoleName,
        /// Version of the metadata that removed it.
        version: u64,
    },
    /// A key may now sign for the role.
    KeyAdded {
        /// The role.
        role: RoleName,
        /// Key id as the metadata lists it.
        keyid: KeyId,
        /// The TUF key object (key type, scheme, public key, custom fields).
        key: Key,
        /// Version of the metadata that added it.
        version: u64,
    },
    /// A key may no longer sign for the role.
    KeyRemoved {
        /// The role.
        role: RoleName,
        /// Key id.
        keyid: KeyId,
        /// The key object that was listed.
        key: Key,
        /// Version of the metadata that removed it.
        version: u64,
    },
    /// A role's threshold changed.
    ThresholdChanged {
        /// The role.
        role: RoleName,
        /// Before.
        from: u64,
        /// After.
        to: u64,
        /// Version of the metadata that changed it.
        version: u64,
    },
    /// A root or targets version was published.
    Published(PublishedRef),
    /// The ceremony that made the events above was sealed (always the last entry of a ceremony).
    CeremonySealed {
        /// The root version in force after the ceremony.
        root_version: Option<u64>,
        /// The targets version in force after the ceremony.
        targets_version: Option<u64>,
    },
}

/// One log entry: an event, with the ceremony that made it and the hash of that ceremony's seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The ceremony (script name, e.g. `rotate-root-keys`).
    pub ceremony: String,
    /// SHA-256 of the ceremony transcript's seal record, in hex (what the keyholders signed at
    /// the seal).
    pub seal: String,
    /// What happened.
    pub event: Event,
}

/// The ceremony a set of events comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CeremonyRef {
    /// Script name.
    pub name: String,
    /// Hash of the transcript's seal record.
    pub seal: [u8; 32],
}

fn owner(key: &Key) -> Option<&str> {
    key.unrecognized.get(OWNER_FIELD).and_then(Value::as_str)
}

fn hex32(f: &mut Fields, name: &str) -> Result<[u8; 32], FieldError> {
    let path = f.child(name);
    let s = f.string(name)?;
    let ok = s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex::decode(&s)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .filter(|_| ok)
        .ok_or_else(|| FieldError::new(path, "not a SHA-256 in 64 lower-case hex digits"))
}

impl Entry {
    /// The event's name as written in `event`.
    pub fn kind(&self) -> &'static str {
        match &self.event {
            Event::RoleAdded { .. } => "role-added",
            Event::RoleRemoved { .. } => "role-removed",
            Event::KeyAdded { .. } => "key-added",
            Event::KeyRemoved { .. } => "key-removed",
            Event::ThresholdChanged { .. } => "threshold-changed",
            Event::Published(p) if p.role == RoleType::Root => "root-published",
            Event::Published(_) => "targets-published",
            Event::CeremonySealed { .. } => "ceremony-sealed",
        }
    }

    /// As JSON (its canonical bytes are the Merkle leaf).
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("_type".into(), ENTRY_TYPE.into());
        m.insert("v".into(), ENTRY_VERSION.into());
        m.insert("ceremony".into(), self.ceremony.clone().into());
        m.insert("seal".into(), self.seal.clone().into());
        m.insert("event".into(), self.kind().into());
        match &self.event {
            Event::RoleAdded {
                role,
                threshold,
                version,
            } => {
                role.put(&mut m);
                m.insert("threshold".into(), (*threshold).into());
                m.insert("version".into(), (*version).into());
            }
            Event::RoleRemoved { role, version } => {
                role.put(&mut m);
                m.insert("version".into(), (*version).into());
            }
            Event::KeyAdded {
                role,
                keyid,
                key,
                version,
            }
            | Event::KeyRemoved {
                role,
                keyid,
                key,
                version,
            } => {
                role.put(&mut m);
                m.insert("keyid".into(), keyid.0.clone().into());
                m.insert("key".into(), key.to_value());
                if let Some(o) = owner(key) {
                    m.insert("keyholder".into(), o.into());
                }
                m.insert("version".into(), (*version).into());
            }
            Event::ThresholdChanged {
                role,
                from,
                to,
                version,
            } => {
                role.put(&mut m);
                m.insert("from".into(), (*from).into());
                m.insert("to".into(), (*to).into());
                m.insert("version".into(), (*version).into());
            }
            Event::Published(p) => {
                m.insert("version".into(), p.version.into());
                m.insert("expires".into(), p.expires.clone().into());
                m.insert("signed_sha256".into(), hex::encode(p.signed_sha256).into());
                m.insert("file_sha256".into(), hex::encode(p.file_sha256).into());
                m.insert("length".into(), p.length.into());
            }
            Event::CeremonySealed {
                root_version,
                targets_version,
            } => {
                if let Some(v) = root_version {
                    m.insert("root_version".into(), (*v).into());
                }
                if let Some(v) = targets_version {
                    m.insert("targets_version".into(), (*v).into());
                }
            }
        }
        Value::Object(m)
    }

    /// The Merkle leaf data: canonical JSON bytes of [`Entry::to_value`].
    pub fn leaf_bytes(&self) -> Vec<u8> {
        self.to_value().canonical_bytes()
    }

    /// Read an entry; every member must be known (nothing is silently carried).
    pub fn from_value(v: Value, path: &str) -> Result<Entry, FieldError> {
        let mut f = Fields::new(v, path)?;
        let ty = f.string("_type")?;
        if ty != ENTRY_TYPE {
            return Err(FieldError::new(
                f.child("_type"),
                format!("expected \"{ENTRY_TYPE}\", found \"{}\"", show(&ty)),
            ));
        }
        let vpath = f.child("v");
        let v = f.u64("v")?;
        if v != ENTRY_VERSION {
            return Err(FieldError::new(
                vpath,
                format!(
                    "entry format version {v} is not one this Conclave reads ({ENTRY_VERSION})"
                ),
            ));
        }
        let ceremony = f.string("ceremony")?;
        let seal = hex::encode(hex32(&mut f, "seal")?);
        let epath = f.child("event");
        let kind = f.string("event")?;
        let event = match kind.as_str() {
            "role-added" => Event::RoleAdded {
                role: RoleName::take(&mut f)?,
                threshold: positive(&mut f, "threshold")?,
                version: positive(&mut f, "version")?,
            },
            "role-removed" => Event::RoleRemoved {
                role: RoleName::take(&mut f)?,
                version: positive(&mut f, "version")?,
            },
            "key-added" | "key-removed" => {
                let role = RoleName::take(&mut f)?;
                let keyid = KeyId(f.string("keyid")?);
                let kpath = f.child("key");
                let key = key_from_value(f.take("key")?, &kpath)?;
                let hpath = f.child("keyholder");
                let holder = f.opt_string("keyholder")?;
                if holder.as_deref() != owner(&key) {
                    return Err(FieldError::new(
                        hpath,
                        format!("keyholder must repeat the key's {OWNER_FIELD}"),
                    ));
                }
                let version = positive(&mut f, "version")?;
                if kind == "key-added" {
                    Event::KeyAdded {
                        role,
                        keyid,
                        key,
                        version,
                    }
                } else {
                    Event::KeyRemoved {
                        role,
                        keyid,
                        key,
                        version,
                    }
                }
            }
            "threshold-changed" => Event::ThresholdChanged {
                role: RoleName::take(&mut f)?,
                from: positive(&mut f, "from")?,
                to: positive(&mut f, "to")?,
                version: positive(&mut f, "version")?,
            },
            "root-published" | "targets-published" => Event::Published(PublishedRef {
                role: if kind == "root-published" {
                    RoleType::Root
                } else {
                    RoleType::Targets
                },
                version: positive(&mut f, "version")?,
                expires: f.string("expires")?,
                signed_sha256: hex32(&mut f, "signed_sha256")?,
                file_sha256: hex32(&mut f, "file_sha256")?,
                length: f.u64("length")?,
            }),
            "ceremony-sealed" => Event::CeremonySealed {
                root_version: f.opt_u64("root_version")?,
                targets_version: f.opt_u64("targets_version")?,
            },
            other => {
                return Err(FieldError::new(epath, format!("unknown event \"{other}\"")));
            }
        };
        let rest = f.rest();
        if let Some(k) = rest.keys().next() {
            return Err(FieldError::new(
                format!("{path}.{k}"),
                format!("unexpected member in a {kind} entry"),
            ));
        }
        Ok(Entry {
            ceremony,
            seal,
            event,
        })
    }

    /// One line for people: "key-added root 4c3e65e0... (ecdsa-sha2-nistp256, keyholder dave) in root v2".
    pub fn summary(&self) -> String {
        match &self.event {
            Event::RoleAdded {
                role,
                threshold,
                version,
            } => format!(
                "role-added {}, threshold {threshold} (v{version})",
                show(&role.to_string())
            ),
            Event::RoleRemoved { role, version } => {
                format!("role-removed {} (v{version})", show(&role.to_string()))
            }
            Event::KeyAdded {
                role,
                keyid,
                key,
                version,
            }
            | Event::KeyRemoved {
                role,
                keyid,
                key,
                version,
            } => format!(
                "{} {} {} ({}{}) (v{version})",
                self.kind(),
                show(&role.to_string()),
                show(&keyid.to_string()),
                show(&key.scheme),
                owner(key)
                    .map(|o| format!(", keyholder {}", show(o)))
                    .unwrap_or_default()
            ),
            Event::ThresholdChanged {
                role,
                from,
                to,
                version,
            } => format!(
                "threshold-changed {} {from} -> {to} (v{version})",
                show(&role.to_string())
            ),
            Event::Published(p) => format!(
                "{} v{} signed sha256 {}",
                self.kind(),
                p.version,
                hex::encode(p.signed_sha256)
            ),
            Event::CeremonySealed { .. } => {
                format!(
                    "ceremony-sealed \"{}\" seal {}",
                    show(&self.ceremony.to_string()),
                    show(&self.seal.to_string())
                )
            }
        }
    }
}

fn positive(f: &mut Fields, name: &str) -> Result<u64, FieldError> {
    let path = f.child(name);
    let v = f.u64(name)?;
    if v == 0 {
        return Err(FieldError::new(path, "must be at least 1"));
    }
    Ok(v)
}

/// A role's keys and threshold.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RoleKeys {
    /// Signatures needed.
    pub threshold: u64,
    /// Keys by key id.
    pub keys: BTreeMap<KeyId, Key>,
}

impl RoleKeys {
    fn from_role(role: &Role, lookup: impl Fn(&KeyId) -> Option<Key>) -> RoleKeys {
        RoleKeys {
            threshold: role.threshold,
            keys: role
                .keyids
                .iter()
                .filter_map(|id| lookup(id).map(|k| (id.clone(), k)))
                .collect(),
        }
    }
}

/// The keys and thresholds of every tracked role, and the latest published root and targets:
/// from metadata ([`KeyState::from_metadata`]) or by replaying a log ([`KeyState::apply`]).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct KeyState {
    /// Roles, in [`RoleName`] order.
    pub roles: BTreeMap<RoleName, RoleKeys>,
    /// The latest published root.
    pub root: Option<PublishedRef>,
    /// The latest published targets.
    pub targets: Option<PublishedRef>,
}

impl KeyState {
    /// The state a root and targets describe: the four top-level roles, and the roles delegated
    /// by targets (a succinct hash-bin delegation is one role named `PREFIX-*`).
    pub fn from_metadata(
        root: Option<&Published<Root>>,
        targets: Option<&Published<Targets>>,
    ) -> KeyState {
        let mut s = KeyState::default();
        if let Some(r) = root {
            s.set_root(r);
        }
        if let Some(t) = targets {
            s.set_targets(t);
        }
        s
    }

    fn set_root(&mut self, r: &Published<Root>) {
        let root = r.metadata.signed();
        self.roles.retain(|n, _| !n.is_top_level());
        for ty in [
            RoleType::Root,
            RoleType::Targets,
            RoleType::Snapshot,
            RoleType::Timestamp,
        ] {
            let keys = RoleKeys::from_role(root.role(ty), |id| root.key(id).cloned());
            self.roles.insert(RoleName::top(ty), keys);
        }
        self.root = Some(r.reference());
    }

    fn set_targets(&mut self, t: &Published<Targets>) {
        self.roles.retain(|n, _| n.is_top_level());
        if let Some(d) = &t.metadata.signed().delegations {
            let lookup = |id: &KeyId| d.key(id).cloned();
            for r in d.roles.iter().flatten() {
                self.roles.insert(
                    RoleName::delegated("targets", &r.name),
                    RoleKeys::from_role(&r.role, lookup),
                );
            }
            if let Some(s) = &d.succinct_roles {
                self.roles.insert(
                    RoleName::delegated("targets", &format!("{}-*", s.name_prefix)),
                    RoleKeys::from_role(&s.role, lookup),
                );
            }
        }
        self.targets = Some(t.reference());
    }

    /// The root role's keys and threshold (what signs checkpoints), if a root was published.
    pub fn root_keys(&self) -> Option<&RoleKeys> {
        self.roles.get(&RoleName::top(RoleType::Root))
    }

    /// Apply one entry, checking that it fits the state (a key added twice, a key removed that
    /// was not there, a threshold changed from a value it did not have are refused).
    pub fn apply(&mut self, e: &Entry) -> Result<(), String> {
        match &e.event {
            Event::RoleAdded {
                role, threshold, ..
            } => {
                if self.roles.contains_key(role) {
                    return Err(format!("role {role} is added but already exists"));
                }
                self.roles.insert(
                    role.clone(),
                    RoleKeys {
                        threshold: *threshold,
                        keys: BTreeMap::new(),
                    },
                );
            }
            Event::RoleRemoved { role, .. } => {
                let Some(r) = self.roles.remove(role) else {
                    return Err(format!("role {role} is removed but does not exist"));
                };
                if !r.keys.is_empty() {
                    return Err(format!(
                        "role {role} is removed while it still has {} key(s)",
                        r.keys.len()
                    ));
                }
            }
            Event::KeyAdded {
                role, keyid, key, ..
            } => {
                let r = self.role_mut(role)?;
                if r.keys.insert(keyid.clone(), key.clone()).is_some() {
                    return Err(format!(
                        "key {keyid} is added to {role} but is already there"
                    ));
                }
            }
            Event::KeyRemoved {
                role, keyid, key, ..
            } => {
                let r = self.role_mut(role)?;
                match r.keys.remove(keyid) {
                    Some(k) if &k == key => {}
                    Some(_) => {
                        return Err(format!(
                            "key {keyid} is removed from {role} with a key object different from the one added"
                        ));
                    }
                    None => {
                        return Err(format!(
                            "key {keyid} is removed from {role} but was never added"
                        ));
                    }
                }
            }
            Event::ThresholdChanged { role, from, to, .. } => {
                let r = self.role_mut(role)?;
                if r.threshold != *from {
                    return Err(format!(
                        "threshold of {role} changes from {from}, but it is {}",
                        r.threshold
                    ));
                }
                r.threshold = *to;
            }
            Event::Published(p) => {
                let slot = if p.role == RoleType::Root {
                    &mut self.root
                } else {
                    &mut self.targets
                };
                if let Some(old) = slot
                    && old.version >= p.version
                {
                    return Err(format!(
                        "{} version {} is published after version {}",
                        p.role, p.version, old.version
                    ));
                }
                *slot = Some(p.clone());
            }
            Event::CeremonySealed {
                root_version,
                targets_version,
            } => {
                let have = (
                    self.root.as_ref().map(|p| p.version),
                    self.targets.as_ref().map(|p| p.version),
                );
                if have != (*root_version, *targets_version) {
                    return Err(format!(
                        "the ceremony's seal names root {root_version:?} and targets {targets_version:?}, but the log has root {:?} and targets {:?}",
                        have.0, have.1
                    ));
                }
            }
        }
        Ok(())
    }

    fn role_mut(&mut self, role: &RoleName) -> Result<&mut RoleKeys, String> {
        self.roles
            .get_mut(role)
            .ok_or_else(|| format!("role {role} is changed but does not exist"))
    }
}

/// What one ceremony exported: the root and targets now in force. `None`: that metadata was not
/// changed by the ceremony (the previous one stays in force).
#[derive(Clone, Debug, Default)]
pub struct Export {
    /// The root after the ceremony.
    pub root: Option<Published<Root>>,
    /// The targets after the ceremony.
    pub targets: Option<Published<Targets>>,
}

/// The entries one ceremony appends: for each tracked role the keys removed and added and the
/// threshold changes (top-level roles when root changed, delegated roles when targets changed),
/// the root and targets published (only when their signed bytes changed), and last a
/// `ceremony-sealed` entry. Deterministic: the same inputs always give the same entries.
///
/// `before` is the state before the ceremony: [`KeyState::from_metadata`] of the previous root
/// and targets, or the state a replay of the previous log gives.
pub fn ceremony_events(ceremony: &CeremonyRef, before: &KeyState, after: &Export) -> Vec<Entry> {
    let mut after_state = before.clone();
    if let Some(r) = &after.root
        && before.root.as_ref().map(|p| p.signed_sha256) != Some(r.metadata.signed_digest())
    {
        after_state.set_root(r);
    }
    if let Some(t) = &after.targets
        && before.targets.as_ref().map(|p| p.signed_sha256) != Some(t.metadata.signed_digest())
    {
        after_state.set_targets(t);
    }
    let mut events = Vec::new();
    let root_changed = after_state.root != before.root;
    let targets_changed = after_state.targets != before.targets;
    if root_changed && let Some(p) = &after_state.root {
        diff_roles(before, &after_state, true, p.version, &mut events);
        events.push(Event::Published(p.clone()));
    }
    if targets_changed && let Some(p) = &after_state.targets {
        diff_roles(before, &after_state, false, p.version, &mut events);
        events.push(Event::Published(p.clone()));
    }
    events.push(Event::CeremonySealed {
        root_version: after_state.root.as_ref().map(|p| p.version),
        targets_version: after_state.targets.as_ref().map(|p| p.version),
    });
    let seal = hex::encode(ceremony.seal);
    events
        .into_iter()
        .map(|event| Entry {
            ceremony: ceremony.name.clone(),
            seal: seal.clone(),
            event,
        })
        .collect()
}

fn diff_roles(
    before: &KeyState,
    after: &KeyState,
    top_level: bool,
    version: u64,
    out: &mut Vec<Event>,
) {
    let mut names: Vec<&RoleName> = before
        .roles
        .keys()
        .chain(after.roles.keys())
        .filter(|n| n.is_top_level() == top_level)
        .collect();
    names.sort();
    names.dedup();
    let empty = RoleKeys::default();
    for name in names {
        let (old, new) = (before.roles.get(name), after.roles.get(name));
        if old.is_none()
            && let Some(n) = new
        {
            out.push(Event::RoleAdded {
                role: name.clone(),
                threshold: n.threshold,
                version,
            });
        }
        let (o, n) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
        for (id, key) in &o.keys {
            if n.keys.get(id) != Some(key) {
                out.push(Event::KeyRemoved {
                    role: name.clone(),
                    keyid: id.clone(),
                    key: key.clone(),
                    version,
                });
            }
        }
        for (id, key) in &n.keys {
            if o.keys.get(id) != Some(key) {
                out.push(Event::KeyAdded {
                    role: name.clone(),
                    keyid: id.clone(),
                    key: key.clone(),
                    version,
                });
            }
        }
        match (old, new) {
            (Some(o), Some(n)) if o.threshold != n.threshold => {
                out.push(Event::ThresholdChanged {
                    role: name.clone(),
                    from: o.threshold,
                    to: n.threshold,
                    version,
                });
            }
            (Some(_), None) => out.push(Event::RoleRemoved {
                role: name.clone(),
                version,
            }),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Signer;
    use crate::signer::software::SoftwareSigner;
    use crate::tuf::key::Algorithm;

    fn key(seed: u8, owner: Option<&str>) -> (KeyId, Key) {
        let s = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[seed; 32]).unwrap();
        let mut k = s.key().clone();
        if let Some(o) = owner {
            k.unrecognized.insert(OWNER_FIELD.into(), o.into());
        }
        (k.key_id(), k)
    }

    fn entry(event: Event) -> Entry {
        Entry {
            ceremony: "rotate-root-keys".into(),
            seal: "ab".repeat(32),
            event,
        }
    }

    fn every_event() -> Vec<Entry> {
        let (keyid, key) = key(3, Some("dave"));
        let project = RoleName::delegated("targets", "project-a");
        vec![
            entry(Event::RoleAdded {
                role: project.clone(),
                threshold: 2,
                version: 4,
            }),
            entry(Event::RoleRemoved {
                role: project,
                version: 5,
            }),
            entry(Event::KeyAdded {
                role: RoleName::top(RoleType::Root),
                keyid: keyid.clone(),
                key: key.clone(),
                version: 2,
            }),
            entry(Event::KeyRemoved {
                role: RoleName::top(RoleType::Timestamp),
                keyid,
                key,
                version: 2,
            }),
            entry(Event::ThresholdChanged {
                role: RoleName::top(RoleType::Targets),
                from: 1,
                to: 2,
                version: 2,
            }),
            entry(Event::Published(PublishedRef {
                role: RoleType::Targets,
                version: 3,
                expires: "2030-01-01T00:00:00Z".into(),
                signed_sha256: [1; 32],
                file_sha256: [2; 32],
                length: 1234,
            })),
            entry(Event::CeremonySealed {
                root_version: Some(2),
                targets_version: None,
            }),
        ]
    }

    #[test]
    fn every_event_round_trips_through_its_json() {
        for e in every_event() {
            let v = e.to_value();
            // Written as ordinary JSON (canonical JSON keeps a PEM key's raw newlines).
            let back =
                Entry::from_value(Value::parse(&serde_json::to_vec(&v).unwrap()).unwrap(), "$")
                    .unwrap_or_else(|err| panic!("{}: {err}", e.kind()));
            assert_eq!(back, e);
        }
        let text = every_event()[2].to_value().canonical_bytes();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("\"keyholder\":\"dave\""), "{text}");
        assert!(text.contains("\"event\":\"key-added\""), "{text}");
    }

    #[test]
    fn strict_parsing_names_the_field() {
        let base = every_event()[2].to_value();
        let edit = |f: &dyn Fn(&mut Map)| {
            let Value::Object(mut m) = base.clone() else {
                unreachable!()
            };
            f(&mut m);
            Entry::from_value(Value::Object(m), "$")
                .unwrap_err()
                .to_string()
        };
        assert!(
            edit(&|m| {
                m.insert("extra".into(), 1u64.into());
            })
            .contains("$.extra: unexpected member")
        );
        assert!(
            edit(&|m| {
                m.insert("keyholder".into(), "mallory".into());
            })
            .contains("$.keyholder")
        );
        assert!(
            edit(&|m| {
                m.insert("seal".into(), "AB".repeat(32).into());
            })
            .contains("$.seal")
        );
        assert!(
            edit(&|m| {
                m.insert("event".into(), "key-stolen".into());
            })
            .contains("unknown event \"key-stolen\"")
        );
        assert!(
            edit(&|m| {
                m.insert("role".into(), "project-x".into());
            })
            .contains("not a top-level role")
        );
        assert!(
            edit(&|m| {
                m.insert("v".into(), 2u64.into());
            })
            .contains("format version 2")
        );
    }

    #[test]
    fn a_ceremony_that_changes_nothing_appends_only_its_seal() {
        let state = KeyState {
            root: Some(PublishedRef {
                role: RoleType::Root,
                version: 1,
                expires: String::new(),
                signed_sha256: [0; 32],
                file_sha256: [0; 32],
                length: 0,
            }),
            ..KeyState::default()
        };
        let c = CeremonyRef {
            name: "check".into(),
            seal: [9; 32],
        };
        let entries = ceremony_events(&c, &state, &Export::default());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].kind(), "ceremony-sealed");
        assert_eq!(entries[0].seal, "09".repeat(32));
        let mut replayed = state.clone();
        replayed.apply(&entries[0]).unwrap();
        // Replay refuses what contradicts the state.
        let e = every_event();
        let mut s = KeyState::default();
        assert!(s.apply(&e[1]).unwrap_err().contains("does not exist"));
        assert!(s.apply(&e[3]).unwrap_err().contains("does not exist"));
        assert!(
            s.apply(&e[6])
                .unwrap_err()
                .contains("the ceremony's seal names root")
        );
    }
}
