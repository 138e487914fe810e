//! Repository Service for TUF (RSTUF) payloads: what its CLI and API take from an offline root
//! ceremony, and the pending root its API hands out for Distributed Asynchronous Signing.
//!
//! RSTUF's role model differs from Conclave's: ONE online key is the only key of targets,
//! snapshot and timestamp (threshold 1) and carries `x-rstuf-online-key-uri`; keys are named in
//! `x-rstuf-key-name`. RSTUF's API keeps only `x-rstuf-*` custom fields of a key, so a key with
//! any other custom field changes the signed bytes on the way in and the root stays pending with
//! no error: in these payloads keys carry only `x-rstuf-*` fields, and every check here refuses
//! others, naming the file and the JSON path.
//!
//! Pure: bytes in, bytes out; no clock (the caller passes expiry days), no I/O.

use super::canonical::{Map, Value};
use super::key::{Key, KeyId};
use super::metadata::{Metadata, RoleType, Root};
use super::verify::{ThresholdResult, count_signatures};
use crate::text::show;

/// The custom field naming a key (RSTUF's CLI shows it; Conclave writes the keyholder's name).
pub const KEY_NAME_FIELD: &str = "x-rstuf-key-name";
/// The custom field of the online key: where RSTUF's worker finds its private key
/// (`fn:`, `awskms:`, `gcpkms:`, `azurekms:`, `hv:` ...).
pub const ONLINE_URI_FIELD: &str = "x-rstuf-online-key-uri";
/// The only custom fields a key may carry in an RSTUF payload.
pub const CUSTOM_PREFIX: &str = "x-rstuf-";
/// Seconds RSTUF's API waits for the bootstrap task (`timeout` of ceremony-payload.json).
pub const BOOTSTRAP_TIMEOUT: u64 = 300;
/// The file names RSTUF's CLI reads and writes.
pub const CEREMONY_PAYLOAD: &str = "ceremony-payload.json";
/// See [`CEREMONY_PAYLOAD`].
pub const UPDATE_PAYLOAD: &str = "update-payload.json";
/// See [`CEREMONY_PAYLOAD`].
pub const SIGN_PAYLOAD: &str = "sign-payload.json";
/// The smallest root threshold a bootstrap in RSTUF's model writes (the bootstrap-rstuf
/// script's `root_threshold` has the same minimum; this holds whatever a script says).
pub const MIN_ROOT_THRESHOLD: u64 = 2;
/// The roles RSTUF signs online, all with the one online key.
pub const ONLINE_ROLES: [RoleType; 3] =
    [RoleType::Targets, RoleType::Snapshot, RoleType::Timestamp];

/// Why an RSTUF payload or pending file was refused: the file, the field (JSON path) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {reason}")]
pub struct RstufError {
    /// File (or what is being built, e.g. `ceremony-payload.json`).
    pub file: String,
    /// JSON path or parameter.
    pub field: String,
    /// Why.
    pub reason: String,
}

fn err(file: &str, field: impl Into<String>, reason: impl Into<String>) -> RstufError {
    RstufError {
        file: file.to_string(),
        field: field.into(),
        reason: reason.into(),
    }
}

/// The delegation of RSTUF's targets: hash bins signed online, or custom delegations (RSTUF's
/// `delegations` object, passed as given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `bins`: `number_of_delegated_bins` (a power of two, 2..16384), expiry in days.
    Bins {
        /// Days until a bin expires.
        expiration: u64,
        /// Number of bins.
        number: u64,
    },
    /// `delegations`: RSTUF's custom delegations (`keys`, `roles`).
    Delegations(Value),
}

/// `settings.roles` of ceremony-payload.json: expiry in days of each role, and the layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Days root stays valid (RSTUF's reminder for the next root).
    pub root: u64,
    /// Days for timestamp.
    pub timestamp: u64,
    /// Days for snapshot.
    pub snapshot: u64,
    /// Days for targets.
    pub targets: u64,
    /// Bins or delegations: exactly one.
    pub layout: Layout,
}

/// A key as RSTUF payloads carry it: the same key material with only `x-rstuf-*` custom
/// fields, named `name`. Any other custom field (e.g. `x-tuf-on-ci-keyowner`) is dropped.
pub fn named_key(key: &Key, name: &str) -> Key {
    let mut k = key.clone();
    k.unrecognized = key
        .unrecognized
        .iter()
        .filter(|(f, _)| f.starts_with(CUSTOM_PREFIX))
        .map(|(f, v)| (f.clone(), v.clone()))
        .collect();
    k.unrecognized
        .insert(KEY_NAME_FIELD.to_string(), Value::String(name.to_string()));
    k
}

/// The name of a key (`x-rstuf-key-name`), if it has one.
pub fn key_name(key: &Key) -> Option<&str> {
    key.unrecognized.get(KEY_NAME_FIELD).and_then(Value::as_str)
}

/// The online key's URI (`x-rstuf-online-key-uri`), if it has one.
pub fn online_uri(key: &Key) -> Option<&str> {
    key.unrecognized
        .get(ONLINE_URI_FIELD)
        .and_then(Value::as_str)
}

/// A URI RSTUF's worker can resolve: `scheme:rest`, scheme lower-case letters, digits or `-`.
fn check_uri(uri: &str) -> Result<(), String> {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err(format!(
            "\"{}\" has no scheme (e.g. fn:, awskms:, gcpkms:)",
            show(uri)
        ));
    };
    let scheme_ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !scheme_ok || rest.is_empty() || uri.chars().any(char::is_control) {
        return Err(format!("\"{}\" is not a key URI", show(uri)));
    }
    Ok(())
}

/// The online key of an RSTUF root: the one key of targets, snapshot and timestamp.
pub fn online_key<'r>(file: &str, root: &'r Root) -> Result<(KeyId, &'r Key), RstufError> {
    let ts = root.role(RoleType::Timestamp);
    let Some(id) = ts.keyids.first() else {
        return Err(err(
            file,
            "$.signed.roles.timestamp.keyids",
            "no online key",
        ));
    };
    for ty in ONLINE_ROLES {
        let r = root.role(ty);
        let field = format!("$.signed.roles.{}", ty.as_str());
        if r.keyids.len() != 1 || r.keyids[0] != *id {
            return Err(err(
                file,
                format!("{field}.keyids"),
                format!(
                    "RSTUF signs targets, snapshot and timestamp with one online key: {} must list exactly key {}",
                    ty.as_str(),
                    id.short()
                ),
            ));
        }
        if r.threshold != 1 {
            return Err(err(
                file,
                format!("{field}.threshold"),
                format!(
                    "threshold {} (the online roles have threshold 1)",
                    r.threshold
                ),
            ));
        }
    }
    let key = root.key(id).ok_or_else(|| {
        err(
            file,
            format!("$.signed.keys.{id}"),
            "the online key is not listed",
        )
    })?;
    Ok((id.clone(), key))
}

/// RSTUF's custom delegations (the ceremony payload's `settings.roles.delegations`, as
/// python-tuf's `Delegations.to_dict()` that RSTUF's CLI writes): `{"keys": {...}, "roles":
/// [...]}` read as TUF delegations (no hash bins: those are `bins`), at least one role, keys
/// with only `x-rstuf-*` custom fields. `file` names where the text came from.
pub fn parse_delegations(file: &str, text: &str) -> Result<Value, RstufError> {
    let v = Value::parse(text.as_bytes()).map_err(|e| err(file, "$", format!("not JSON: {e}")))?;
    check_delegations(file, &v, "$")?;
    Ok(v)
}

/// The rules of [`parse_delegations`] for a delegations value found at JSON path `at` of
/// `file` (`$` for the parameter's text, `$.settings.roles.delegations` in a payload).
fn check_delegations(file: &str, v: &Value, at: &str) -> Result<(), RstufError> {
    let d = super::metadata::Delegations::from_value(v.clone(), at)
        .map_err(|e| err(file, e.path.clone(), e.message.clone()))?;
    if d.roles.as_ref().is_none_or(Vec::is_empty) {
        return Err(err(
            file,
            format!("{at}.roles"),
            "custom delegations need at least one role (hash bins are the bins setting)",
        ));
    }
    for (id, key) in &d.keys {
        for field in key.unrecognized.keys() {
            if !field.starts_with(CUSTOM_PREFIX) {
                return Err(err(
                    file,
                    format!("{at}.keys.{}.{}", show(id.as_str()), show(field)),
                    "RSTUF's API drops key fields other than x-rstuf-*",
                ));
            }
        }
    }
    Ok(())
}

/// Check a root is in RSTUF's model: keys carry only `x-rstuf-*` custom fields, root keys are
/// named, the one online key of targets/snapshot/timestamp has a URI and is not a root key.
pub fn check_model(file: &str, root: &Root) -> Result<(), RstufError> {
    for (id, key) in &root.keys {
        for field in key.unrecognized.keys() {
            if !field.starts_with(CUSTOM_PREFIX) {
                return Err(err(
                    file,
                    format!("$.signed.keys.{id}.{}", show(field)),
                    "RSTUF's API drops key fields other than x-rstuf-*: the signed bytes would change and the root stay pending",
                ));
            }
        }
    }
    for id in &root.role(RoleType::Root).keyids {
        let field = format!("$.signed.keys.{id}.{KEY_NAME_FIELD}");
        match root.key(id).map(key_name) {
            Some(Some(n)) if !n.trim().is_empty() => {}
            _ => {
                return Err(err(
                    file,
                    field,
                    "every root key is named (RSTUF shows the name)",
                ));
            }
        }
    }
    let (id, key) = online_key(file, root)?;
    let field = format!("$.signed.keys.{id}.{ONLINE_URI_FIELD}");
    let uri = online_uri(key).ok_or_else(|| err(file, &field, "the online key has no URI"))?;
    check_uri(uri).map_err(|r| err(file, &field, r))?;
    if root.role(RoleType::Root).keyids.contains(&id) {
        return Err(err(
            file,
            "$.signed.roles.root.keyids",
            format!("the online key {} is also a root key", id.short()),
        ));
    }
    Ok(())
}

/// Root version 1 in RSTUF's model: `root_keys` (named, see [`named_key`]) with `threshold`,
/// and the one `online` key (with its URI) as the only key of targets, snapshot and timestamp.
pub fn new_root(
    root_keys: &[Key],
    threshold: u64,
    online: &Key,
    expires: time::OffsetDateTime,
) -> Result<Root, RstufError> {
    let file = "root v1";
    if threshold < MIN_ROOT_THRESHOLD {
        return Err(err(
            file,
            "$.signed.roles.root.threshold",
            format!(
                "{threshold}: an RSTUF root needs at least {MIN_ROOT_THRESHOLD} root signatures"
            ),
        ));
    }
    let mut roles = vec![super::edit::RoleKeys {
        role: RoleType::Root,
        keys: root_keys.to_vec(),
        threshold,
    }];
    let name = key_name(online).unwrap_or("online").to_string();
    for role in ONLINE_ROLES {
        roles.push(super::edit::RoleKeys {
            role,
            keys: vec![named_key(online, &name)],
            threshold: 1,
        });
    }
    let root =
        super::edit::new_root(&roles, expires).map_err(|e| err(file, "$.signed", e.to_string()))?;
    check_model(file, &root)?;
    Ok(root)
}

/// The signatures over a root by its own root keys (RSTUF bootstraps with fewer than the
/// threshold: the root is then pending until the rest arrive).
fn own_count(md: &Metadata<Root>) -> ThresholdResult {
    let root = md.signed();
    count_signatures(
        |id| root.key(id),
        root.role(RoleType::Root),
        md.signed_bytes(),
        &md.signatures,
    )
}

fn check_settings(file: &str, s: &Settings) -> Result<Value, RstufError> {
    let mut roles = Map::new();
    for (name, days) in [
        ("root", s.root),
        ("timestamp", s.timestamp),
        ("snapshot", s.snapshot),
        ("targets", s.targets),
    ] {
        if days == 0 {
            return Err(err(
                file,
                format!("$.settings.roles.{name}.expiration"),
                "at least 1 day",
            ));
        }
        let mut m = Map::new();
        m.insert("expiration".into(), days.into());
        roles.insert(name.into(), Value::Object(m));
    }
    match &s.layout {
        Layout::Bins { expiration, number } => {
            if *expiration == 0 {
                return Err(err(
                    file,
                    "$.settings.roles.bins.expiration",
                    "at least 1 day",
                ));
            }
            if !number.is_power_of_two() || !(2..=16384).contains(number) {
                return Err(err(
                    file,
                    "$.settings.roles.bins.number_of_delegated_bins",
                    format!("{number} is not a power of two between 2 and 16384"),
                ));
            }
            let mut m = Map::new();
            m.insert("expiration".into(), (*expiration).into());
            m.insert("number_of_delegated_bins".into(), (*number).into());
            roles.insert("bins".into(), Value::Object(m));
        }
        Layout::Delegations(d) => {
            let ok = d.as_object().is_some_and(|m| {
                m.get("roles").and_then(Value::as_object).is_some()
                    || matches!(m.get("roles"), Some(Value::Array(a)) if !a.is_empty())
            });
            if !ok {
                return Err(err(
                    file,
                    "$.settings.roles.delegations",
                    "custom delegations need a \"roles\" member",
                ));
            }
            check_delegations(file, d, "$.settings.roles.delegations")?;
            roles.insert("delegations".into(), d.clone());
        }
    }
    let mut settings = Map::new();
    settings.insert("roles".into(), Value::Object(roles));
    Ok(Value::Object(settings))
}

/// The `settings` object `ceremony-payload.json` carries for `s`, exactly as
/// [`ceremony_payload`] writes it (what a bootstrap's transcript records at the export).
pub fn settings_value(s: &Settings) -> Result<Value, RstufError> {
    check_settings(CEREMONY_PAYLOAD, s)
}

/// The first field where a payload's `settings` differs from the settings recorded elsewhere
/// (the sealed transcript, or the ceremony's parameters): its path from the payload's top
/// (`settings.roles.timestamp.expiration`) and both values as compact JSON (`None`: absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsDifference {
    /// The field's path, from the payload's top.
    pub field: String,
    /// Its value on one side (`found`), compact JSON; `None` when absent.
    pub found: Option<String>,
    /// Its value as recorded, compact JSON; `None` when absent.
    pub recorded: Option<String>,
}

impl SettingsDifference {
    /// `FIELD is A in FOUND_IN, B in RECORDED_IN`, values shown through [`show`].
    pub fn describe(&self, found_in: &str, recorded_in: &str) -> String {
        let side = |v: &Option<String>, place: &str| match v {
            Some(v) => format!("{} in {place}", show(v)),
            None => format!("absent in {place}"),
        };
        format!(
            "{} is {}, {}",
            show(&self.field),
            side(&self.found, found_in),
            side(&self.recorded, recorded_in)
        )
    }
}

/// The first difference between `found` and `recorded` (each a payload's `settings` object),
/// member by member and item by item; `None` when they are equal.
pub fn settings_difference(found: &Value, recorded: &Value) -> Option<SettingsDifference> {
    fn compact(v: &Value) -> String {
        String::from_utf8_lossy(&v.canonical_bytes()).into_owned()
    }
    fn walk(
        path: String,
        found: Option<&Value>,
        recorded: Option<&Value>,
    ) -> Option<SettingsDifference> {
        if found == recorded {
            return None;
        }
        match (found, recorded) {
            (Some(Value::Object(f)), Some(Value::Object(r))) => {
                let mut names: Vec<&String> = r.keys().collect();
                names.extend(f.keys().filter(|k| !r.contains_key(k)));
                names
                    .into_iter()
                    .find_map(|k| walk(format!("{path}.{k}"), f.get(k), r.get(k)))
            }
            (Some(Value::Array(f)), Some(Value::Array(r))) => (0..f.len().max(r.len()))
                .find_map(|i| walk(format!("{path}[{i}]"), f.get(i), r.get(i))),
            _ => Some(SettingsDifference {
                field: path,
                found: found.map(compact),
                recorded: recorded.map(compact),
            }),
        }
    }
    let (f, r) = (found.clone().unpacked(), recorded.clone().unpacked());
    walk("settings".to_string(), Some(&f), Some(&r))
}

/// The `settings` of a `ceremony-payload.json` file's bytes, compared with the settings
/// `recorded` (by the sealed transcript): `Err` names the file and the first field that
/// differs (`ceremony-payload.json: settings.roles.timestamp.expiration is 365 in the file, 1
/// in the sealed transcript`), or why the file has no settings to compare.
pub fn check_payload_settings(file: &str, bytes: &[u8], recorded: &Value) -> Result<(), String> {
    let v = Value::parse(bytes).map_err(|e| {
        format!(
            "{}: not JSON ({e}), so its settings cannot be compared with the sealed transcript's",
            show(file)
        )
    })?;
    let found = v.as_object().and_then(|m| m.get("settings"));
    let Some(found) = found else {
        return Err(format!(
            "{}: settings is absent in the file, {} in the sealed transcript",
            show(file),
            show(&String::from_utf8_lossy(&recorded.canonical_bytes()))
        ));
    };
    match settings_difference(found, recorded) {
        None => Ok(()),
        Some(d) => Err(format!(
            "{}: {}",
            show(file),
            d.describe("the file", "the sealed transcript")
        )),
    }
}

/// `ceremony-payload.json` for `rstuf admin send bootstrap` / `POST /api/v1/bootstrap`: the
/// settings and root v1 with at least one valid signature by its own root keys.
pub fn ceremony_payload(settings: &Settings, root: &Metadata<Root>) -> Result<Vec<u8>, RstufError> {
    let file = CEREMONY_PAYLOAD;
    let settings = check_settings(file, settings)?;
    let r = root.signed();
    if r.common.version != 1 {
        return Err(err(
            file,
            "$.metadata.root.signed.version",
            format!("bootstrap takes root version 1, not {}", r.common.version),
        ));
    }
    root_for_payload(file, root)?;
    let mut metadata = Map::new();
    metadata.insert("root".into(), root.to_value());
    let mut m = Map::new();
    m.insert("settings".into(), settings);
    m.insert("metadata".into(), Value::Object(metadata));
    m.insert("timeout".into(), BOOTSTRAP_TIMEOUT.into());
    Ok(Value::Object(m).to_pretty_json().into_bytes())
}

fn root_for_payload(file: &str, root: &Metadata<Root>) -> Result<(), RstufError> {
    let prefix = |e: RstufError| RstufError {
        field: e.field.replacen('$', "$.metadata.root", 1),
        ..e
    };
    check_model(file, root.signed()).map_err(prefix)?;
    if own_count(root).signed.is_empty() {
        return Err(err(
            file,
            "$.metadata.root.signatures",
            "no valid signature by a root key (RSTUF needs at least one)",
        ));
    }
    Ok(())
}

/// Read and check a `ceremony-payload.json` (RSTUF's CLI's, or Conclave's): every rule
/// [`ceremony_payload`] writes by. Returns the settings and root v1.
pub fn read_ceremony_payload(
    file: &str,
    bytes: &[u8],
) -> Result<(Settings, Metadata<Root>), RstufError> {
    let v = Value::parse(bytes).map_err(|e| err(file, "$", format!("not JSON: {e}")))?;
    let top = v
        .as_object()
        .ok_or_else(|| err(file, "$", "not an object"))?;
    match top.get("timeout") {
        Some(Value::Int(t)) if *t >= 1 => {}
        _ => return Err(err(file, "$.timeout", "missing or not a positive integer")),
    }
    let roles = top
        .get("settings")
        .and_then(Value::as_object)
        .and_then(|m| m.get("roles"))
        .and_then(Value::as_object)
        .ok_or_else(|| err(file, "$.settings.roles", "missing or not an object"))?;
    let days = |role: &str| -> Result<u64, RstufError> {
        let field = format!("$.settings.roles.{role}.expiration");
        match roles
            .get(role)
            .and_then(Value::as_object)
            .and_then(|m| m.get("expiration"))
        {
            Some(Value::Int(d)) => u64::try_from(*d).map_err(|_| err(file, &field, "negative")),
            _ => Err(err(file, field, "missing or not an integer")),
        }
    };
    let layout = match (roles.get("bins"), roles.get("delegations")) {
        (Some(b), None | Some(Value::Null)) if *b != Value::Null => {
            let number = match b
                .as_object()
                .and_then(|m| m.get("number_of_delegated_bins"))
            {
                Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
                _ => {
                    return Err(err(
                        file,
                        "$.settings.roles.bins.number_of_delegated_bins",
                        "missing or not an integer",
                    ));
                }
            };
            Layout::Bins {
                expiration: days("bins")?,
                number,
            }
        }
        (None | Some(Value::Null), Some(d)) if *d != Value::Null => Layout::Delegations(d.clone()),
        _ => {
            return Err(err(
                file,
                "$.settings.roles",
                "exactly one of bins and delegations",
            ));
        }
    };
    let settings = Settings {
        root: days("root")?,
        timestamp: days("timestamp")?,
        snapshot: days("snapshot")?,
        targets: days("targets")?,
        layout,
    };
    check_settings(file, &settings)?;
    let root = top
        .get("metadata")
        .and_then(Value::as_object)
        .and_then(|m| m.get("root"))
        .ok_or_else(|| err(file, "$.metadata.root", "missing"))?;
    let root = Metadata::<Root>::from_value(root.clone())
        .map_err(|e| err(file, "$.metadata.root", e.to_string()))?;
    if root.signed().common.version != 1 {
        return Err(err(
            file,
            "$.metadata.root.signed.version",
            "bootstrap takes root version 1",
        ));
    }
    root_for_payload(file, &root)?;
    Ok((settings, root))
}

/// `update-payload.json` for `POST /api/v1/metadata`: the next root version (rotation, expiry
/// refresh, online-key rotation), with at least one valid signature by its own root keys.
pub fn update_payload(root: &Metadata<Root>) -> Result<Vec<u8>, RstufError> {
    let file = UPDATE_PAYLOAD;
    if root.signed().common.version < 2 {
        return Err(err(
            file,
            "$.metadata.root.signed.version",
            "an update is root version 2 or later (version 1 is a bootstrap)",
        ));
    }
    root_for_payload(file, root)?;
    let mut metadata = Map::new();
    metadata.insert("root".into(), root.to_value());
    let mut m = Map::new();
    m.insert("metadata".into(), Value::Object(metadata));
    Ok(Value::Object(m).to_pretty_json().into_bytes())
}

/// `sign-payload.json` for `POST /api/v1/metadata/sign`: one signature over the pending root.
pub fn sign_payload(keyid: &KeyId, sig: &[u8]) -> Vec<u8> {
    let mut s = Map::new();
    s.insert("keyid".into(), keyid.0.clone().into());
    s.insert("sig".into(), hex::encode(sig).into());
    let mut m = Map::new();
    m.insert("role".into(), "root".into());
    m.insert("signature".into(), Value::Object(s));
    Value::Object(m).to_pretty_json().into_bytes()
}

/// Read a `sign-payload.json` (RSTUF's `SignPayload`: `{"role": "root", "signature":
/// {"keyid": K, "sig": HEX}}`, nothing else): the key id and the signature bytes.
pub fn read_sign_payload(file: &str, bytes: &[u8]) -> Result<(KeyId, Vec<u8>), RstufError> {
    let v = Value::parse(bytes).map_err(|e| err(file, "$", format!("not JSON: {e}")))?;
    let top = v
        .as_object()
        .ok_or_else(|| err(file, "$", "not an object"))?;
    if let Some(k) = top.keys().find(|k| *k != "role" && *k != "signature") {
        return Err(err(
            file,
            format!("$.{}", show(k)),
            "not a member of RSTUF's sign payload",
        ));
    }
    if top.get("role").and_then(Value::as_str) != Some("root") {
        return Err(err(
            file,
            "$.role",
            "not \"root\" (Conclave signs pending roots only)",
        ));
    }
    let sig = top
        .get("signature")
        .and_then(Value::as_object)
        .ok_or_else(|| err(file, "$.signature", "missing or not an object"))?;
    if let Some(k) = sig.keys().find(|k| *k != "keyid" && *k != "sig") {
        return Err(err(
            file,
            format!("$.signature.{}", show(k)),
            "not a member of a signature",
        ));
    }
    let keyid = sig
        .get("keyid")
        .and_then(Value::as_str)
        .filter(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            err(
                file,
                "$.signature.keyid",
                "missing or not a hex SHA-256 key id",
            )
        })?;
    let raw = sig
        .get("sig")
        .and_then(Value::as_str)
        .and_then(|s| hex::decode(s).ok())
        .filter(|b| !b.is_empty())
        .ok_or_else(|| err(file, "$.signature.sig", "missing, empty or not hex"))?;
    Ok((KeyId(keyid.to_string()), raw))
}

/// RSTUF's pending file (`GET /api/v1/metadata/sign/`), parsed.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The root waiting for signatures.
    pub root: Metadata<Root>,
    /// The root it replaces (`trusted_root`), absent for a pending bootstrap (version 1).
    pub trusted: Option<Metadata<Root>>,
    /// Other pending roles (e.g. custom delegations): not signed here.
    pub other_roles: Vec<String>,
}

/// Parse RSTUF's pending file: `{"data": {"metadata": {"root": PENDING, "trusted_root":
/// CURRENT}}}`.
pub fn parse_pending(file: &str, bytes: &[u8]) -> Result<Pending, RstufError> {
    let v = Value::parse(bytes).map_err(|e| err(file, "$", format!("not JSON: {e}")))?;
    let data = v
        .as_object()
        .and_then(|m| m.get("data"))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            err(
                file,
                "$.data",
                "missing (expected RSTUF's GET api/v1/metadata/sign/ response)",
            )
        })?;
    let metadata = data
        .get("metadata")
        .and_then(Value::as_object)
        .ok_or_else(|| err(file, "$.data.metadata", "missing or not an object"))?;
    let load = |name: &str| -> Result<Option<Metadata<Root>>, RstufError> {
        metadata
            .get(name)
            .map(|v| {
                Metadata::<Root>::from_value(v.clone())
                    .map_err(|e| err(file, format!("$.data.metadata.{name}"), e.to_string()))
            })
            .transpose()
    };
    let root = load("root")?.ok_or_else(|| {
        err(
            file,
            "$.data.metadata.root",
            "no pending root (Conclave signs pending roots only)",
        )
    })?;
    let trusted = load("trusted_root")?;
    let version = root.signed().common.version;
    match &trusted {
        None if version > 1 => {
            return Err(err(
                file,
                "$.data.metadata.trusted_root",
                format!(
                    "missing: root v{version} is reviewed against root v{}",
                    version - 1
                ),
            ));
        }
        Some(t) if t.signed().common.version.checked_add(1) != Some(version) => {
            return Err(err(
                file,
                "$.data.metadata.trusted_root.signed.version",
                format!(
                    "{} is not the version before the pending root's {version}",
                    t.signed().common.version
                ),
            ));
        }
        _ => {}
    }
    let other_roles = metadata
        .keys()
        .filter(|k| *k != "root" && !k.starts_with("trusted_"))
        .map(|k| show(k))
        .collect();
    Ok(Pending {
        root,
        trusted,
        other_roles,
    })
}

/// The review of a pending root: what changes against `trusted_root`, and the chain rule's two
/// counts (by the trusted root's root keys and threshold, by the pending root's own).
#[derive(Clone, Debug)]
pub struct PendingReview {
    /// Lines for the review screen (untrusted names already shown safely).
    pub lines: Vec<String>,
    /// Signatures counted with the trusted root's root keys (absent for version 1).
    pub by_trusted: Option<ThresholdResult>,
    /// Signatures counted with the pending root's own root keys.
    pub by_self: ThresholdResult,
}

impl PendingReview {
    /// Whether the pending root already meets both thresholds (nothing left to sign).
    pub fn complete(&self) -> bool {
        self.by_self.verified()
            && self
                .by_trusted
                .as_ref()
                .is_none_or(ThresholdResult::verified)
    }

    /// Key ids whose signature would still count (in either root's root role), in order.
    pub fn still_to_sign(&self) -> Vec<KeyId> {
        let mut ids: Vec<KeyId> = Vec::new();
        for r in self.by_trusted.iter().chain([&self.by_self]) {
            for (id, _) in &r.unsigned {
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
        ids
    }
}

fn name_of(root: &Root, id: &KeyId) -> String {
    root.key(id).and_then(key_name).map_or_else(
        || id.short().to_string(),
        |n| format!("{} ({})", show(n), id.short()),
    )
}

/// The pending file's `trusted_root` against the root the appliance already trusts (`anchor`,
/// named `anchor_name`: a root it holds, not one from the connected side). The trusted root
/// must be the anchor (the same signed bytes) or its next version signed by a threshold of the
/// anchor's root keys; anything else is refused, naming the file and the field. A trusted root
/// that only meets its own threshold proves nothing: whoever controls the connected side can
/// list the real keyholders' keys beside keys of its own that meet the threshold. Returns the
/// review line that says how the chain is anchored.
pub fn check_anchor(
    file: &str,
    p: &Pending,
    anchor_name: &str,
    anchor: &Metadata<Root>,
) -> Result<String, RstufError> {
    let field = "$.data.metadata.trusted_root";
    let Some(t) = &p.trusted else {
        return Err(err(
            file,
            field,
            "missing: the pending root cannot be anchored in the root the appliance trusts",
        ));
    };
    let a = anchor.signed();
    let (tv, av) = (t.signed().common.version, a.common.version);
    let anchor_desc = format!(
        "{} (root v{av}, signed bytes SHA-256 {})",
        show(anchor_name),
        hex::encode(anchor.signed_digest())
    );
    if t.signed_bytes() == anchor.signed_bytes() {
        return Ok(format!(
            "trusted_root is the root this appliance trusts: {anchor_desc}"
        ));
    }
    if av.checked_add(1) == Some(tv) {
        let by_anchor = count_signatures(
            |id| a.key(id),
            a.role(RoleType::Root),
            t.signed_bytes(),
            &t.signatures,
        );
        if by_anchor.verified() {
            return Ok(format!(
                "trusted_root v{tv} chains from the root this appliance trusts, {anchor_desc}: {}",
                by_anchor.summary()
            ));
        }
        return Err(err(
            file,
            format!("{field}.signatures"),
            format!(
                "root v{tv} is not signed by a threshold of the root keys of {anchor_desc}: {}; refusing to sign",
                by_anchor.summary()
            ),
        ));
    }
    Err(err(
        file,
        field,
        format!(
            "root v{tv} (signed bytes SHA-256 {}) is not the root this appliance trusts, {anchor_desc}, nor its next version; refusing to sign",
            hex::encode(t.signed_digest())
        ),
    ))
}

/// One line per signature of `md` under a root key id that does not verify (named by key):
/// it does not count, and the key's holder is asked to sign again.
fn invalid_signature_lines(md: &Metadata<Root>, keys: &[&Root], lines: &mut Vec<String>) {
    let mut seen: Vec<KeyId> = Vec::new();
    for root in keys {
        let r = count_signatures(
            |id| root.key(id),
            root.role(RoleType::Root),
            md.signed_bytes(),
            &md.signatures,
        );
        for (id, why) in &r.unsigned {
            if let super::verify::Uncounted::InvalidSignature(reason) = why
                && !seen.contains(id)
            {
                seen.push(id.clone());
                lines.push(format!(
                    "signature by {} is INVALID ({}): not counted; the key signs again",
                    name_of(root, id),
                    show(reason)
                ));
            }
        }
    }
}

/// Review a pending root against its trusted root. Refuses a pending root outside RSTUF's
/// model and a trusted root that does not meet its own threshold.
pub fn review_pending(file: &str, p: &Pending) -> Result<PendingReview, RstufError> {
    let pre = |e: RstufError| RstufError {
        field: e.field.replacen('$', "$.data.metadata.root", 1),
        ..e
    };
    let new = p.root.signed();
    check_model(file, new).map_err(pre)?;
    let by_self = own_count(&p.root);
    let mut lines = vec![format!(
        "root v{} expires {}",
        new.common.version,
        show(&new.common.expires.raw)
    )];
    let by_trusted = match &p.trusted {
        None if new.common.version == 1 => {
            lines.push("bootstrap: no trusted root before it".into());
            None
        }
        None => {
            lines.push(
                "no trusted root given: changes against the previous version not shown".into(),
            );
            None
        }
        Some(t) => {
            let old = t.signed();
            let before = lines.len();
            let own = own_count(t);
            if !own.verified() {
                return Err(err(
                    file,
                    "$.data.metadata.trusted_root.signatures",
                    format!(
                        "the trusted root does not meet its own threshold: {}",
                        own.summary()
                    ),
                ));
            }
            if old.common.expires.raw != new.common.expires.raw {
                lines.push(format!(
                    "expiry: {} -> {}",
                    show(&old.common.expires.raw),
                    show(&new.common.expires.raw)
                ));
            }
            for ty in RoleType::ALL {
                let (a, b) = (old.role(ty), new.role(ty));
                if a.threshold != b.threshold {
                    lines.push(format!(
                        "{} threshold: {} -> {}",
                        ty.as_str(),
                        a.threshold,
                        b.threshold
                    ));
                }
                for id in b.keyids.iter().filter(|id| !a.keyids.contains(id)) {
                    lines.push(format!("{} key added: {}", ty.as_str(), name_of(new, id)));
                }
                for id in a.keyids.iter().filter(|id| !b.keyids.contains(id)) {
                    lines.push(format!("{} key removed: {}", ty.as_str(), name_of(old, id)));
                }
            }
            for (id, k) in &new.keys {
                if old.key(id).is_some_and(|o| o != k) {
                    lines.push(format!(
                        "key {} changed its fields under the same key id (name, URI)",
                        name_of(new, id)
                    ));
                }
            }
            if lines.len() == before {
                lines.push(format!(
                    "no change against trusted root v{} but the version",
                    old.common.version
                ));
            }
            Some(count_signatures(
                |id| old.key(id),
                old.role(RoleType::Root),
                p.root.signed_bytes(),
                &p.root.signatures,
            ))
        }
    };
    let threshold = new.role(RoleType::Root).threshold;
    lines.push(format!(
        "root keys (threshold {threshold}): {}",
        new.role(RoleType::Root)
            .keyids
            .iter()
            .map(|id| name_of(new, id))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if let Ok((id, key)) = online_key(file, new) {
        lines.push(format!(
            "online key (targets, snapshot, timestamp): {} at {}",
            name_of(new, &id),
            show(online_uri(key).unwrap_or(""))
        ));
    }
    if let Some(t) = &by_trusted {
        lines.push(format!(
            "signatures by the trusted root's keys: {}",
            t.summary()
        ));
    }
    lines.push(format!("signatures by its own keys: {}", by_self.summary()));
    let roots: Vec<&Root> = p.trusted.iter().map(|t| t.signed()).chain([new]).collect();
    invalid_signature_lines(&p.root, &roots, &mut lines);
    for r in &p.other_roles {
        lines.push(format!("also pending, not signed here: {r}"));
    }
    Ok(PendingReview {
        lines,
        by_trusted,
        by_self,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::software::SoftwareSigner;
    use crate::signer::{Signer, sign_metadata};
    use crate::tuf::edit::{RoleKeys, add_root_key, new_root, next_root, remove_root_key};
    use crate::tuf::key::Algorithm;
    use time::macros::datetime;

    fn signer(n: u8, name: &str) -> SoftwareSigner {
        let s = SoftwareSigner::from_seed(Algorithm::Ed25519, &[n; 48]).unwrap();
        let k = named_key(s.key(), name);
        s.with_key(k).unwrap()
    }

    fn online() -> Key {
        let s = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[9; 48]).unwrap();
        let mut k = named_key(s.key(), "online");
        k.unrecognized
            .insert(ONLINE_URI_FIELD.into(), "fn:online-key".into());
        k
    }

    fn root_v1(signers: &[&SoftwareSigner], threshold: u64) -> Root {
        let mut roles = vec![RoleKeys {
            role: RoleType::Root,
            keys: signers.iter().map(|s| s.key().clone()).collect(),
            threshold,
        }];
        for role in ONLINE_ROLES {
            roles.push(RoleKeys {
                role,
                keys: vec![online()],
                threshold: 1,
            });
        }
        new_root(&roles, datetime!(2031-01-01 0:00 UTC)).unwrap()
    }

    fn bins() -> Settings {
        Settings {
            root: 365,
            timestamp: 1,
            snapshot: 1,
            targets: 365,
            layout: Layout::Bins {
                expiration: 1,
                number: 256,
            },
        }
    }

    #[test]
    fn a_ceremony_payload_carries_settings_and_a_partly_signed_root() {
        let (a, b, c) = (signer(1, "alice"), signer(2, "bob"), signer(3, "carol"));
        let mut md = Metadata::new(root_v1(&[&a, &b, &c], 2));
        assert_eq!(
            ceremony_payload(&bins(), &md).unwrap_err().to_string(),
            "ceremony-payload.json: $.metadata.root.signatures: no valid signature by a root key (RSTUF needs at least one)"
        );
        let mut a2 = signer(1, "alice");
        sign_metadata(&mut md, &mut a2).unwrap();
        let bytes = ceremony_payload(&bins(), &md).unwrap();
        let v = Value::parse(&bytes).unwrap();
        let m = v.as_object().unwrap();
        assert_eq!(m.get("timeout"), Some(&Value::Int(300)));
        let roles = m
            .get("settings")
            .unwrap()
            .as_object()
            .unwrap()
            .get("roles")
            .unwrap();
        let roles = roles.as_object().unwrap();
        assert!(roles.get("delegations").is_none());
        let b = roles.get("bins").unwrap().as_object().unwrap();
        assert_eq!(b.get("number_of_delegated_bins"), Some(&Value::Int(256)));
        let root = m
            .get("metadata")
            .unwrap()
            .as_object()
            .unwrap()
            .get("root")
            .unwrap();
        let back = Metadata::<Root>::from_value(root.clone()).unwrap();
        assert_eq!(back.signed_bytes(), md.signed_bytes());
        assert_eq!(back.signatures.len(), 1);
    }

    #[test]
    fn a_payload_whose_settings_differ_from_the_recorded_ones_names_the_field() {
        let a = signer(1, "alice");
        let mut md = Metadata::new(root_v1(&[&a, &signer(2, "bob")], 2));
        sign_metadata(&mut md, &mut signer(1, "alice")).unwrap();
        let bytes = ceremony_payload(&bins(), &md).unwrap();
        let recorded = settings_value(&bins()).unwrap();
        let file = CEREMONY_PAYLOAD;
        assert_eq!(check_payload_settings(file, &bytes, &recorded), Ok(()));
        // An expiration edited, a member added, one removed; not JSON.
        let mut v = Value::parse(&bytes).unwrap();
        let edit = |v: &mut Value, f: &dyn Fn(&mut Map)| {
            let Value::Object(top) = v else { panic!() };
            let Some(Value::Object(settings)) = top.get_mut("settings") else {
                panic!()
            };
            let Some(Value::Object(roles)) = settings.get_mut("roles") else {
                panic!()
            };
            f(roles);
        };
        edit(&mut v, &|roles| {
            let Some(Value::Object(ts)) = roles.get_mut("timestamp") else {
                panic!()
            };
            ts.insert("expiration".into(), Value::Int(365));
        });
        assert_eq!(
            check_payload_settings(file, v.to_pretty_json().as_bytes(), &recorded).unwrap_err(),
            "ceremony-payload.json: settings.roles.timestamp.expiration is 365 in the file, 1 in the sealed transcript"
        );
        let mut v = Value::parse(&bytes).unwrap();
        edit(&mut v, &|roles| {
            roles.insert("x-extra".into(), Value::Int(1));
        });
        assert_eq!(
            check_payload_settings(file, v.to_pretty_json().as_bytes(), &recorded).unwrap_err(),
            "ceremony-payload.json: settings.roles.x-extra is 1 in the file, absent in the sealed transcript"
        );
        let mut v = Value::parse(&bytes).unwrap();
        edit(&mut v, &|roles| {
            roles.remove("bins");
        });
        assert_eq!(
            check_payload_settings(file, v.to_pretty_json().as_bytes(), &recorded).unwrap_err(),
            "ceremony-payload.json: settings.roles.bins is absent in the file, {\"expiration\":1,\"number_of_delegated_bins\":256} in the sealed transcript"
        );
        let err = check_payload_settings(file, b"{not json", &recorded).unwrap_err();
        assert!(err.starts_with("ceremony-payload.json: not JSON"), "{err}");
        // Equal settings written in another member order are the same settings.
        let mut v = Value::parse(&bytes).unwrap();
        edit(&mut v, &|roles| {
            let bins = roles.remove("bins").unwrap();
            roles.insert("bins".into(), bins);
        });
        assert_eq!(
            check_payload_settings(file, v.to_pretty_json().as_bytes(), &recorded),
            Ok(())
        );
    }

    #[test]
    fn a_ceremony_payload_reads_back_and_broken_ones_name_the_field() {
        let a = signer(1, "alice");
        let mut md = Metadata::new(root_v1(&[&a, &signer(2, "bob")], 2));
        sign_metadata(&mut md, &mut signer(1, "alice")).unwrap();
        let bytes = ceremony_payload(&bins(), &md).unwrap();
        let (s, root) = read_ceremony_payload("p.json", &bytes).unwrap();
        assert_eq!(s, bins());
        assert_eq!(root.signed_bytes(), md.signed_bytes());
        let text = String::from_utf8(bytes).unwrap();
        let broken = |from: &str, to: &str| {
            let t = text.replacen(from, to, 1);
            assert_ne!(t, text, "{from}");
            read_ceremony_payload("p.json", t.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            broken(
                "\"number_of_delegated_bins\": 256",
                "\"number_of_delegated_bins\": 3"
            ),
            "p.json: $.settings.roles.bins.number_of_delegated_bins: 3 is not a power of two between 2 and 16384"
        );
        assert_eq!(
            broken("\"timeout\": 300", "\"timeout\": \"300\""),
            "p.json: $.timeout: missing or not a positive integer"
        );
        assert_eq!(
            broken(
                "\"bins\": {",
                "\"delegations\": {\"roles\": {}}, \"bins\": {"
            ),
            "p.json: $.settings.roles: exactly one of bins and delegations"
        );
        assert!(broken("\"sig\": \"", "\"sig\": \"00").contains("$.metadata.root.signatures"));
    }

    /// Custom delegations in a payload follow the rules of the `delegations` parameter both
    /// ways (written and read back): keys carry only `x-rstuf-*` fields, at least one role.
    #[test]
    fn payload_delegations_keep_only_rstuf_key_fields_both_ways() {
        let a = signer(1, "alice");
        let mut md = Metadata::new(root_v1(&[&a, &signer(2, "bob")], 2));
        sign_metadata(&mut md, &mut signer(1, "alice")).unwrap();
        let carol = signer(3, "carol").key().clone();
        let id = carol.key_id();
        let delegations = |key: &Key| {
            Value::parse(
                format!(
                    r#"{{"keys": {{"{id}": {}}}, "roles": [{{"name": "claimed", "keyids": ["{id}"], "threshold": 1, "paths": ["claimed/*"], "terminating": true}}]}}"#,
                    String::from_utf8(key.to_value().canonical_bytes()).unwrap()
                )
                .as_bytes(),
            )
            .unwrap()
        };
        let mut s = bins();
        s.layout = Layout::Delegations(delegations(&carol));
        let bytes = ceremony_payload(&s, &md).unwrap();
        assert_eq!(read_ceremony_payload("p.json", &bytes).unwrap().0, s);
        // The same key with a field RSTUF's API drops (same key id: the id is not checked here).
        let mut owned = carol.clone();
        owned
            .unrecognized
            .insert("x-tuf-on-ci-keyowner".into(), "@carol".into());
        let want = format!("$.settings.roles.delegations.keys.{id}.x-tuf-on-ci-keyowner");
        s.layout = Layout::Delegations(delegations(&owned));
        assert_eq!(ceremony_payload(&s, &md).unwrap_err().field, want);
        let text = String::from_utf8(bytes).unwrap().replacen(
            "\"x-rstuf-key-name\": \"carol\"",
            "\"x-rstuf-key-name\": \"carol\", \"x-tuf-on-ci-keyowner\": \"@carol\"",
            1,
        );
        assert!(text.contains("x-tuf-on-ci-keyowner"), "{text}");
        assert_eq!(
            read_ceremony_payload("p.json", text.as_bytes())
                .unwrap_err()
                .field,
            want
        );
        // No role: refused both ways too.
        s.layout = Layout::Delegations(Value::parse(br#"{"keys": {}, "roles": []}"#).unwrap());
        assert!(ceremony_payload(&s, &md).is_err());
    }

    #[test]
    fn the_trusted_root_is_anchored_in_the_appliances_root_or_its_next_version() {
        let (a, b, m) = (signer(1, "alice"), signer(2, "bob"), signer(7, "alice"));
        let signed_by = |r: Root, who: &[u8]| {
            let mut md = Metadata::new(r);
            for n in who {
                let name = if *n == 2 { "bob" } else { "alice" };
                sign_metadata(&mut md, &mut signer(*n, name)).unwrap();
            }
            md
        };
        let v1 = signed_by(root_v1(&[&a, &b], 2), &[1, 2]);
        let v2 = next_root(v1.signed(), datetime!(2032-01-01 0:00 UTC));
        let pending = |trusted: &Metadata<Root>| Pending {
            root: Metadata::new(next_root(trusted.signed(), datetime!(2033-01-01 0:00 UTC))),
            trusted: Some(trusted.clone()),
            other_roles: Vec::new(),
        };
        let line = check_anchor("p.json", &pending(&v1), "t.json", &v1).unwrap();
        assert!(
            line.starts_with("trusted_root is the root this appliance trusts: t.json (root v1"),
            "{line}"
        );
        // The next version, signed by a threshold of the anchor's root keys: it chains.
        let good_v2 = signed_by(v2.clone(), &[1, 2]);
        let line = check_anchor("p.json", &pending(&good_v2), "t.json", &v1).unwrap();
        assert!(line.contains("trusted_root v2 chains from"), "{line}");
        // The next version signed by the attacker's own key it lists (its own threshold met
        // with alice's real key): one of the anchor's two keys only.
        let mut forged = v2.clone();
        add_root_key(&mut forged, RoleType::Root, m.key().clone()).unwrap();
        let forged = signed_by(forged, &[1, 7]);
        let e = check_anchor("p.json", &pending(&forged), "t.json", &v1).unwrap_err();
        assert_eq!(e.field, "$.data.metadata.trusted_root.signatures");
        assert!(e.reason.contains("1 of 2 keys signed, threshold 2"), "{e}");
        // A root v1 other than the anchor (same keys plus the attacker's), meeting its own
        // threshold: refused.
        let mut other = root_v1(&[&a, &b], 2);
        add_root_key(&mut other, RoleType::Root, m.key().clone()).unwrap();
        let other = signed_by(other, &[1, 7]);
        let e = check_anchor("p.json", &pending(&other), "t.json", &v1).unwrap_err();
        assert_eq!(e.field, "$.data.metadata.trusted_root");
        assert!(
            e.reason
                .contains("is not the root this appliance trusts, t.json (root v1"),
            "{e}"
        );
        // Two versions ahead: no intermediate root to verify the chain by.
        let v3 = signed_by(next_root(&v2, datetime!(2032-06-01 0:00 UTC)), &[1, 2]);
        let e = check_anchor("p.json", &pending(&v3), "t.json", &v1).unwrap_err();
        assert!(e.reason.contains("nor its next version"), "{e}");
    }

    #[test]
    fn settings_refusals_name_the_field() {
        let a = signer(1, "alice");
        let mut md = Metadata::new(root_v1(&[&a], 1));
        sign_metadata(&mut md, &mut signer(1, "alice")).unwrap();
        let mut s = bins();
        s.layout = Layout::Bins {
            expiration: 1,
            number: 100,
        };
        assert_eq!(
            ceremony_payload(&s, &md).unwrap_err().field,
            "$.settings.roles.bins.number_of_delegated_bins"
        );
        s.layout = Layout::Bins {
            expiration: 1,
            number: 32768,
        };
        assert!(ceremony_payload(&s, &md).is_err());
        s.layout = Layout::Bins {
            expiration: 1,
            number: 2,
        };
        s.snapshot = 0;
        assert_eq!(
            ceremony_payload(&s, &md).unwrap_err().field,
            "$.settings.roles.snapshot.expiration"
        );
        s.snapshot = 1;
        s.layout = Layout::Delegations(Value::Object(Map::new()));
        assert_eq!(
            ceremony_payload(&s, &md).unwrap_err().field,
            "$.settings.roles.delegations"
        );
    }

    #[test]
    fn keys_with_other_custom_fields_or_a_shared_online_key_are_refused() {
        let a = signer(1, "alice");
        let mut root = root_v1(&[&a], 1);
        check_model("r.json", &root).unwrap();
        // A tuf-on-ci owner field on a root key: RSTUF's API would drop it.
        let mut k = a.key().clone();
        k.unrecognized
            .insert("x-tuf-on-ci-keyowner".into(), "@alice".into());
        let mut bad = root.clone();
        remove_root_key(&mut bad, RoleType::Root, &a.key().key_id()).unwrap();
        let id = add_root_key(&mut bad, RoleType::Root, k).unwrap();
        let e = check_model("r.json", &bad).unwrap_err();
        assert_eq!(e.field, format!("$.signed.keys.{id}.x-tuf-on-ci-keyowner"));
        assert!(e.reason.contains("drops key fields"), "{e}");
        // Targets signed by an offline key: not RSTUF's model.
        let other = signer(5, "eve");
        add_root_key(&mut root, RoleType::Targets, other.key().clone()).unwrap();
        assert_eq!(
            check_model("r.json", &root).unwrap_err().field,
            "$.signed.roles.targets.keyids"
        );
        // An online key without a URI.
        let mut r2 = root_v1(&[&a], 1);
        let (oid, _) = online_key("r", &r2).unwrap();
        let mut plain = online();
        plain.unrecognized.remove(ONLINE_URI_FIELD);
        for ty in ONLINE_ROLES {
            remove_root_key(&mut r2, ty, &oid).unwrap();
            add_root_key(&mut r2, ty, plain.clone()).unwrap();
        }
        let e = check_model("r.json", &r2).unwrap_err();
        assert!(e.field.ends_with(ONLINE_URI_FIELD), "{e}");
        // An unnamed root key.
        let unnamed = SoftwareSigner::from_seed(Algorithm::Ed25519, &[7; 48]).unwrap();
        let mut r3 = root_v1(&[&a], 1);
        add_root_key(&mut r3, RoleType::Root, unnamed.key().clone()).unwrap();
        assert!(
            check_model("r.json", &r3)
                .unwrap_err()
                .field
                .ends_with(KEY_NAME_FIELD)
        );
    }

    /// Root v1 in RSTUF's model: threshold 2 or more, whatever the script allows.
    #[test]
    fn a_new_root_needs_a_threshold_of_two() {
        let (a, b) = (signer(1, "alice"), signer(2, "bob"));
        let keys = [a.key().clone(), b.key().clone()];
        let at = datetime!(2031-01-01 0:00 UTC);
        for t in [0, 1] {
            let e = super::new_root(&keys, t, &online(), at).unwrap_err();
            assert_eq!(e.field, "$.signed.roles.root.threshold", "{e}");
        }
        let r = super::new_root(&keys, 2, &online(), at).unwrap();
        assert_eq!(r.role(RoleType::Root).threshold, 2);
        check_model("r.json", &r).unwrap();
    }

    #[test]
    fn named_keys_keep_only_rstuf_fields() {
        let a = SoftwareSigner::from_seed(Algorithm::Ed25519, &[1; 48]).unwrap();
        let mut k = a.key().clone();
        k.unrecognized
            .insert("x-tuf-on-ci-keyowner".into(), "@a".into());
        k.unrecognized
            .insert(ONLINE_URI_FIELD.into(), "fn:x".into());
        let n = named_key(&k, "alice");
        let fields: Vec<&String> = n.unrecognized.keys().collect();
        assert_eq!(fields, [KEY_NAME_FIELD, ONLINE_URI_FIELD]);
        assert_eq!(key_name(&n), Some("alice"));
    }

    fn pending_json(root: &Metadata<Root>, trusted: Option<&Metadata<Root>>) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("root".into(), root.to_value());
        if let Some(t) = trusted {
            m.insert("trusted_root".into(), t.to_value());
        }
        let mut d = Map::new();
        d.insert("metadata".into(), Value::Object(m));
        let mut top = Map::new();
        top.insert("data".into(), Value::Object(d));
        Value::Object(top).to_pretty_json().into_bytes()
    }

    #[test]
    fn a_pending_rotation_is_reviewed_against_the_trusted_root() {
        let (a, b, c) = (signer(1, "alice"), signer(2, "bob"), signer(3, "carol"));
        let mut v1 = Metadata::new(root_v1(&[&a, &b], 2));
        sign_metadata(&mut v1, &mut signer(1, "alice")).unwrap();
        sign_metadata(&mut v1, &mut signer(2, "bob")).unwrap();
        let mut r2 = next_root(v1.signed(), datetime!(2032-01-01 0:00 UTC));
        remove_root_key(&mut r2, RoleType::Root, &b.key().key_id()).unwrap();
        add_root_key(&mut r2, RoleType::Root, c.key().clone()).unwrap();
        let mut v2 = Metadata::new(r2);
        sign_metadata(&mut v2, &mut signer(1, "alice")).unwrap();
        let bytes = pending_json(&v2, Some(&v1));
        let p = parse_pending("pending.json", &bytes).unwrap();
        let r = review_pending("pending.json", &p).unwrap();
        let text = r.lines.join("\n");
        assert!(text.contains("root key added: carol ("), "{text}");
        assert!(text.contains("root key removed: bob ("), "{text}");
        assert!(
            text.contains("expiry: 2031-01-01T00:00:00Z -> 2032-01-01T00:00:00Z"),
            "{text}"
        );
        assert!(!r.complete());
        // bob (old root) and carol (new root) may still sign.
        let left = r.still_to_sign();
        assert!(left.contains(&b.key().key_id()) && left.contains(&c.key().key_id()));
        let payload = sign_payload(&c.key().key_id(), &[0xab, 0xcd]);
        assert_eq!(
            read_sign_payload("s.json", &payload).unwrap(),
            (c.key().key_id(), vec![0xab, 0xcd])
        );
        let extra = String::from_utf8(payload.clone()).unwrap().replacen(
            "\"role\"",
            "\"x\": 1, \"role\"",
            1,
        );
        assert_eq!(
            read_sign_payload("s.json", extra.as_bytes())
                .unwrap_err()
                .field,
            "$.x"
        );
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            format!(
                "{{\n  \"role\": \"root\",\n  \"signature\": {{\n    \"keyid\": \"{}\",\n    \"sig\": \"abcd\"\n  }}\n}}\n",
                c.key().key_id()
            )
        );
    }

    /// A pending file with more than Conclave writes: RSTUF's `message` beside `data`, another
    /// pending role, an unknown field in the root's `signed` (signed as received), and a key
    /// field RSTUF's API would drop (refused, naming the field under the pending root).
    #[test]
    fn pending_files_with_extra_fields() {
        let (a, b) = (signer(1, "alice"), signer(2, "bob"));
        let mut v1 = Metadata::new(root_v1(&[&a, &b], 2));
        sign_metadata(&mut v1, &mut signer(1, "alice")).unwrap();
        let with = |root: &Metadata<Root>| {
            let v = Value::parse(&pending_json(root, None)).unwrap();
            let Value::Object(mut top) = v else { panic!() };
            top.insert("message".into(), "Metadata role(s) pending signing".into());
            let Some(Value::Object(d)) = top.get_mut("data") else {
                panic!()
            };
            let Some(Value::Object(m)) = d.get_mut("metadata") else {
                panic!()
            };
            m.insert("bins-0".into(), Value::Object(Map::new()));
            Value::Object(top).to_pretty_json().into_bytes()
        };
        let p = parse_pending("p.json", &with(&v1)).unwrap();
        assert_eq!(p.other_roles, ["bins-0"]);
        let r = review_pending("p.json", &p).unwrap();
        assert!(
            r.lines
                .contains(&"also pending, not signed here: bins-0".to_string()),
            "{:?}",
            r.lines
        );
        // An unknown field in signed: kept, and it is what the signatures cover.
        let mut extra = v1.signed().clone();
        extra.unrecognized.insert("x-note".into(), "kept".into());
        let mut v1x = Metadata::new(extra);
        sign_metadata(&mut v1x, &mut signer(1, "alice")).unwrap();
        let p = parse_pending("p.json", &with(&v1x)).unwrap();
        assert_eq!(p.root.signed_bytes(), v1x.signed_bytes());
        assert!(String::from_utf8_lossy(p.root.signed_bytes()).contains("\"x-note\":\"kept\""));
        assert_eq!(
            review_pending("p.json", &p).unwrap().by_self.signed.len(),
            1
        );
        // A key field RSTUF's API drops: refused under the pending root, by field.
        let mut k = b.key().clone();
        k.unrecognized
            .insert("x-tuf-on-ci-keyowner".into(), "@bob".into());
        let mut r = v1.signed().clone();
        remove_root_key(&mut r, RoleType::Root, &b.key().key_id()).unwrap();
        let id = add_root_key(&mut r, RoleType::Root, k).unwrap();
        let p = parse_pending("p.json", &with(&Metadata::new(r))).unwrap();
        let e = review_pending("p.json", &p).unwrap_err();
        assert_eq!(
            e.field,
            format!("$.data.metadata.root.signed.keys.{id}.x-tuf-on-ci-keyowner")
        );
    }

    #[test]
    fn pending_files_missing_parts_are_refused_by_field() {
        let a = signer(1, "alice");
        let mut v1 = Metadata::new(root_v1(&[&a], 1));
        sign_metadata(&mut v1, &mut signer(1, "alice")).unwrap();
        let v2 = Metadata::new(next_root(v1.signed(), datetime!(2032-01-01 0:00 UTC)));
        let e = parse_pending("p.json", &pending_json(&v2, None)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.json: $.data.metadata.trusted_root: missing: root v2 is reviewed against root v1"
        );
        let e = parse_pending("p.json", b"{\"data\": {\"metadata\": {}}}").unwrap_err();
        assert_eq!(e.field, "$.data.metadata.root");
        let e = parse_pending("p.json", b"{}").unwrap_err();
        assert_eq!(e.field, "$.data");
        let e = parse_pending("p.json", b"not json").unwrap_err();
        assert_eq!(e.field, "$");
        let e = parse_pending("p.json", &pending_json(&v1, Some(&v1))).unwrap_err();
        assert_eq!(e.field, "$.data.metadata.trusted_root.signed.version");
        // An unsigned trusted root is not trusted.
        let unsigned = Metadata::new(v1.signed().clone());
        let p = parse_pending("p.json", &pending_json(&v2, Some(&unsigned))).unwrap();
        let e = review_pending("p.json", &p).unwrap_err();
        assert_eq!(e.field, "$.data.metadata.trusted_root.signatures");
        let _ = a.key_id();
    }
}
