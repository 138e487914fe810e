//! Builders for attack and vector tests: deterministic test keys, builders for root/timestamp/snapshot/targets and
//! delegations as JSON, signing over Conclave's canonical bytes, and reading/mutating the real
//! vectors. Inputs are built as `serde_json` values so that tests can also make files that
//! Conclave's own model would refuse to build (threshold 0, duplicate key ids, ...).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use conclave::signer::Signer;
use conclave::signer::software::SoftwareSigner;
use conclave::tuf::canonical::Value;
use conclave::tuf::key::Algorithm;
use conclave::tuf::repository::{Report, quote_role_name, verify_repository};
use serde_json::{Value as J, json};
use sha2::Digest;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Expiry of everything the builders make.
pub const EXPIRES: &str = "2030-01-01T00:00:00Z";

/// A reference time inside [`EXPIRES`].
pub fn now() -> OffsetDateTime {
    at("2026-01-01T00:00:00Z")
}

/// Parse an RFC 3339 time.
pub fn at(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap()
}

/// A deterministic test key: algorithm, seed, the TUF key object and the key id used for it.
#[derive(Clone, Debug)]
pub struct TestKey {
    alg: Algorithm,
    seed: Vec<u8>,
    /// The key object as it goes into metadata.
    pub json: J,
    /// The key id it is listed under.
    pub id: String,
}

impl TestKey {
    fn new(alg: Algorithm, n: u8) -> Self {
        let len = if alg == Algorithm::EcdsaP384 { 48 } else { 32 };
        let mut seed = vec![n; len];
        seed[0] = 1; // keep the scalar valid and small enough for every curve
        let signer = SoftwareSigner::from_seed(alg, &seed).unwrap();
        let json = serde_json::to_value(signer.key().to_value()).unwrap();
        let id = signer.key_id().0;
        TestKey {
            alg,
            seed,
            json,
            id,
        }
    }

    /// Ed25519 key number `n`.
    pub fn ed25519(n: u8) -> Self {
        Self::new(Algorithm::Ed25519, n)
    }

    /// ECDSA P-256 key number `n`.
    pub fn p256(n: u8) -> Self {
        Self::new(Algorithm::EcdsaP256, n)
    }

    /// ECDSA P-384 key number `n`.
    pub fn p384(n: u8) -> Self {
        Self::new(Algorithm::EcdsaP384, n)
    }

    /// The same private key listed under another key id (an opaque label).
    pub fn with_id(mut self, id: &str) -> Self {
        self.id = id.to_string();
        self
    }

    /// The same private key with a different key object (e.g. a wrong scheme).
    pub fn with_json(mut self, edit: impl FnOnce(&mut J)) -> Self {
        edit(&mut self.json);
        self
    }

    /// The private key as a software signer (its key object without custom fields).
    pub fn signer(&self) -> SoftwareSigner {
        SoftwareSigner::from_seed(self.alg, &self.seed).unwrap()
    }

    /// Hex signature over the canonical bytes of `signed`.
    pub fn sign_hex(&self, signed: &J) -> String {
        let mut s = SoftwareSigner::from_seed(self.alg, &self.seed).unwrap();
        hex::encode(s.sign_raw(&canonical(signed)).unwrap())
    }

    /// `(keyid, sig)` over `signed`.
    pub fn sig(&self, signed: &J) -> (String, String) {
        (self.id.clone(), self.sign_hex(signed))
    }
}

/// Conclave's canonical bytes of a JSON value (what signatures cover).
pub fn canonical(signed: &J) -> Vec<u8> {
    Value::parse(&serde_json::to_vec(signed).unwrap())
        .unwrap()
        .canonical_bytes()
}

/// A metadata file with the given signatures, pretty-printed.
pub fn envelope(signed: &J, sigs: &[(String, String)]) -> Vec<u8> {
    let sigs: Vec<J> = sigs
        .iter()
        .map(|(k, s)| json!({"keyid": k, "sig": s}))
        .collect();
    serde_json::to_vec_pretty(&json!({"signed": signed, "signatures": sigs})).unwrap()
}

/// A metadata file signed by each key.
pub fn sign(signed: &J, keys: &[&TestKey]) -> Vec<u8> {
    let sigs: Vec<(String, String)> = keys.iter().map(|k| k.sig(signed)).collect();
    envelope(signed, &sigs)
}

fn keys_object(keys: &[&TestKey]) -> J {
    let mut m = serde_json::Map::new();
    for k in keys {
        m.insert(k.id.clone(), k.json.clone());
    }
    J::Object(m)
}

fn ids(keys: &[&TestKey]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for k in keys {
        if !v.contains(&k.id) {
            v.push(k.id.clone());
        }
    }
    v
}

/// The `signed` part of a root: `roles` lists (role, keys, threshold); `keys` is their union.
pub fn root(version: u64, roles: &[(&str, &[&TestKey], u64)]) -> J {
    let all: Vec<&TestKey> = roles
        .iter()
        .flat_map(|(_, k, _)| k.iter().copied())
        .collect();
    let mut rm = serde_json::Map::new();
    for (name, keys, threshold) in roles {
        rm.insert(
            name.to_string(),
            json!({"keyids": ids(keys), "threshold": threshold}),
        );
    }
    json!({
        "_type": "root",
        "spec_version": "1.0.31",
        "version": version,
        "expires": EXPIRES,
        "consistent_snapshot": false,
        "keys": keys_object(&all),
        "roles": rm,
    })
}

/// A target entry for `content`.
pub fn target_entry(content: &[u8]) -> J {
    json!({
        "length": content.len(),
        "hashes": {"sha256": hex::encode(sha2::Sha256::digest(content))},
    })
}

/// The `signed` part of a targets role listing `targets` (path, content).
pub fn targets(version: u64, targets: &[(&str, &[u8])], delegations: Option<J>) -> J {
    let mut tm = serde_json::Map::new();
    for (path, content) in targets {
        tm.insert(path.to_string(), target_entry(content));
    }
    let mut t = json!({
        "_type": "targets",
        "spec_version": "1.0.31",
        "version": version,
        "expires": EXPIRES,
        "targets": tm,
    });
    if let Some(d) = delegations {
        t["delegations"] = d;
    }
    t
}

/// A delegated role entry with `paths`.
pub fn drole(
    name: &str,
    keys: &[&TestKey],
    threshold: u64,
    terminating: bool,
    paths: &[&str],
) -> J {
    json!({
        "name": name,
        "keyids": ids(keys),
        "threshold": threshold,
        "terminating": terminating,
        "paths": paths,
    })
}

/// `delegations` with the given keys and role entries.
pub fn delegations(keys: &[&TestKey], roles: Vec<J>) -> J {
    json!({"keys": keys_object(keys), "roles": roles})
}

/// The `signed` part of a snapshot listing (file name, version).
pub fn snapshot(version: u64, meta: &[(&str, u64)]) -> J {
    let mut m = serde_json::Map::new();
    for (name, v) in meta {
        m.insert(name.to_string(), json!({"version": v}));
    }
    json!({
        "_type": "snapshot",
        "spec_version": "1.0.31",
        "version": version,
        "expires": EXPIRES,
        "meta": m,
    })
}

/// The `signed` part of a timestamp naming snapshot version `snapshot_version`.
pub fn timestamp(version: u64, snapshot_version: u64) -> J {
    json!({
        "_type": "timestamp",
        "spec_version": "1.0.31",
        "version": version,
        "expires": EXPIRES,
        "meta": {"snapshot.json": {"version": snapshot_version}},
    })
}

/// A whole small repository: one key per top-level role, `targets` and delegated roles, signed
/// on demand so that tests can edit any part first.
#[derive(Clone, Debug)]
pub struct Repo {
    /// Root key (threshold 1).
    pub root_key: TestKey,
    /// Timestamp key.
    pub timestamp_key: TestKey,
    /// Snapshot key.
    pub snapshot_key: TestKey,
    /// Targets key.
    pub targets_key: TestKey,
    /// `signed` of root v1.
    pub root: J,
    /// `signed` of targets.
    pub targets: J,
    /// Delegated roles: name, `signed`, signing keys.
    pub roles: Vec<(String, J, Vec<TestKey>)>,
    /// Snapshot version.
    pub snapshot_version: u64,
    /// Timestamp version.
    pub timestamp_version: u64,
}

impl Default for Repo {
    fn default() -> Self {
        Self::new()
    }
}

impl Repo {
    /// Keys 1–4, root v1, empty targets v1, snapshot v1, timestamp v1.
    pub fn new() -> Self {
        let (r, t, s, g) = (
            TestKey::ed25519(1),
            TestKey::ed25519(2),
            TestKey::ed25519(3),
            TestKey::ed25519(4),
        );
        let root = root(
            1,
            &[
                ("root", &[&r], 1),
                ("timestamp", &[&t], 1),
                ("snapshot", &[&s], 1),
                ("targets", &[&g], 1),
            ],
        );
        Repo {
            root_key: r,
            timestamp_key: t,
            snapshot_key: s,
            targets_key: g,
            root,
            targets: targets(1, &[], None),
            roles: Vec::new(),
            snapshot_version: 1,
            timestamp_version: 1,
        }
    }

    /// Add a delegated role's metadata (signed by `keys` when files are made).
    pub fn role(mut self, name: &str, signed: J, keys: &[&TestKey]) -> Self {
        self.roles.push((
            name.to_string(),
            signed,
            keys.iter().map(|k| (*k).clone()).collect(),
        ));
        self
    }

    /// The trusted root file (v1).
    pub fn trusted_root(&self) -> Vec<u8> {
        sign(&self.root, &[&self.root_key])
    }

    /// The snapshot `signed` part for the current targets and roles.
    pub fn snapshot_signed(&self) -> J {
        let mut meta: Vec<(String, u64)> = vec![(
            "targets.json".into(),
            self.targets["version"].as_u64().unwrap(),
        )];
        for (name, signed, _) in &self.roles {
            meta.push((format!("{name}.json"), signed["version"].as_u64().unwrap()));
        }
        let refs: Vec<(&str, u64)> = meta.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        snapshot(self.snapshot_version, &refs)
    }

    /// Every file, signed, by file name (delegated roles under their quoted names).
    pub fn files(&self) -> HashMap<String, Vec<u8>> {
        let mut f = HashMap::new();
        f.insert(
            "targets.json".into(),
            sign(&self.targets, &[&self.targets_key]),
        );
        for (name, signed, keys) in &self.roles {
            let refs: Vec<&TestKey> = keys.iter().collect();
            f.insert(
                format!("{}.json", quote_role_name(name)),
                sign(signed, &refs),
            );
        }
        f.insert(
            "snapshot.json".into(),
            sign(&self.snapshot_signed(), &[&self.snapshot_key]),
        );
        f.insert(
            "timestamp.json".into(),
            sign(
                &timestamp(self.timestamp_version, self.snapshot_version),
                &[&self.timestamp_key],
            ),
        );
        f
    }

    /// `verify_repository` from root v1 over [`Repo::files`] plus `extra` files.
    pub fn verify_with(&self, extra: HashMap<String, Vec<u8>>) -> Report {
        let mut files = self.files();
        files.extend(extra);
        verify_repository("1.root.json", &self.trusted_root(), &files, now())
    }

    /// `verify_repository` from root v1 over [`Repo::files`].
    pub fn verify(&self) -> Report {
        self.verify_with(HashMap::new())
    }
}

/// A report as a verdict: `Ok` (with a summary) when valid, `Err(error text)` when not.
pub fn verdict(r: &Report) -> Result<String, String> {
    match &r.error {
        None => Ok(format!(
            "valid, root v{}, {} role(s)",
            r.final_root_version().unwrap_or(0),
            r.roles.len()
        )),
        Some(e) => Err(e.clone()),
    }
}

/// Path of a file under tests/data/vectors.
pub fn vector_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/vectors")
        .join(rel)
}

/// Bytes of a file under tests/data/vectors.
pub fn vector(rel: &str) -> Vec<u8> {
    std::fs::read(vector_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Sigstore production root `n` (root_history).
pub fn sigstore_root(n: u64) -> Vec<u8> {
    vector(&format!(
        "sigstore-root-signing/metadata/root_history/{n}.root.json"
    ))
}

/// Parse, edit and re-serialise a JSON file (the `signed` canonical form does not depend on
/// member order or whitespace, so untouched signatures stay valid).
pub fn mutate(bytes: &[u8], edit: impl FnOnce(&mut J)) -> Vec<u8> {
    let mut v: J = serde_json::from_slice(bytes).unwrap();
    edit(&mut v);
    serde_json::to_vec_pretty(&v).unwrap()
}

/// Every `*.json` file directly in `dir` (relative to the vectors), by file name.
pub fn folder(rel: &str) -> HashMap<String, Vec<u8>> {
    let mut m = HashMap::new();
    for e in std::fs::read_dir(vector_path(rel)).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() && p.extension().is_some_and(|x| x == "json") {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            m.insert(name, std::fs::read(&p).unwrap());
        }
    }
    m
}

/// The sigstore production repository as a client sees it: root_history N.root.json plus the
/// published top-level and delegated metadata.
pub fn sigstore_repo() -> HashMap<String, Vec<u8>> {
    let mut m = folder("sigstore-root-signing/metadata");
    m.extend(folder("sigstore-root-signing/metadata/root_history"));
    m
}

/// Same for sigstore staging.
pub fn staging_repo() -> HashMap<String, Vec<u8>> {
    let mut m = folder("sigstore-root-signing-staging/metadata");
    m.extend(folder(
        "sigstore-root-signing-staging/metadata/root_history",
    ));
    m
}
