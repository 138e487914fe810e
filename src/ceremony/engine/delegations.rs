//! delegate-claimed-projects: developers' key requests and the delegations they become.

use super::{Engine, EngineError, OWNER_FIELD, Proposal, int_param};
use crate::text::check_name;
use crate::tuf::canonical::Value;
use crate::tuf::edit;
use crate::tuf::key::Key;
use crate::tuf::metadata::{Metadata, key_from_value};
use serde::{Deserialize, Serialize};
use time::Duration;

/// `_type` of a developer's key request file.
pub const KEY_REQUEST_TYPE: &str = "conclave-key-request";

/// Where a key request came from: its file on the input media and the SHA-256 of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSource {
    /// File name on the input media (`requests/NAME.json`).
    pub file: String,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
}

/// SHA-256 of a request set, as anyone computes it from the files: the SHA-256 of the lines
/// `SHA256  NAME` (two spaces, one line per file, in file-name order), which is what
/// `sha256sum *.json | sha256sum` prints in the request folder. The registry publishes it before
/// the ceremony; the review shows it.
pub fn request_set_digest(sources: &[RequestSource]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for s in sources {
        h.update(format!("{}  {}\n", s.sha256, s.file).as_bytes());
    }
    hex::encode(h.finalize())
}

/// A developer's request to sign their own project (PEP 480 "claimed" project).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRequest {
    /// Project name (becomes the delegated role's name).
    pub project: String,
    /// Target path patterns the project's keys may sign (all under `PROJECT/`).
    pub paths: Vec<String>,
    /// Signatures required.
    pub threshold: u64,
    /// The developers' public keys.
    pub keys: Vec<Key>,
}

impl KeyRequest {
    /// Read and check a request: project name usable as a role name, paths inside the project,
    /// keys usable and distinct, threshold reachable.
    pub fn from_value(v: &Value) -> Result<KeyRequest, String> {
        use crate::tuf::parse::Fields;
        let mut f = Fields::new(v.clone(), "$").map_err(|e| e.to_string())?;
        let ty = f.string("_type").map_err(|e| e.to_string())?;
        if ty != KEY_REQUEST_TYPE {
            return Err(format!(
                "$._type: expected \"{KEY_REQUEST_TYPE}\", found \"{ty}\""
            ));
        }
        let project = f.string("project").map_err(|e| e.to_string())?;
        let paths = f
            .opt_string_array("paths")
            .map_err(|e| e.to_string())?
            .ok_or("$.paths: required field is missing")?;
        let threshold = f.u64("threshold").map_err(|e| e.to_string())?;
        let keys_path = f.child("keys");
        let keys = f
            .array("keys")
            .map_err(|e| e.to_string())?
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                key_from_value(k, &format!("{keys_path}[{i}]")).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<Key>, String>>()?;
        let ok_name = !project.is_empty()
            && project
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !project.starts_with('.');
        if !ok_name {
            return Err(format!(
                "$.project: \"{project}\" is not a usable project name"
            ));
        }
        if paths.is_empty() {
            return Err("$.paths: at least one path pattern".into());
        }
        let prefix = format!("{project}/");
        if let Some(p) = paths
            .iter()
            .find(|p| !p.starts_with(&prefix) || p.contains(".."))
        {
            return Err(format!(
                "$.paths: \"{p}\" is not inside the project (\"{prefix}...\")"
            ));
        }
        let mut materials = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            // The owner is written into targets as the developer's name: checked like a
            // person's name.
            if let Some(o) = k.unrecognized.get(OWNER_FIELD) {
                let o = o
                    .as_str()
                    .ok_or_else(|| format!("$.keys[{i}].{OWNER_FIELD}: expected a string"))?;
                check_name(o).map_err(|e| format!("$.keys[{i}].{OWNER_FIELD}: the owner {e}"))?;
            }
            let m = k
                .public_key()
                .map_err(|e| format!("$.keys[{i}]: {e}"))?
                .material();
            if materials.contains(&m) {
                return Err(format!("$.keys[{i}]: the same key is listed twice"));
            }
            materials.push(m);
        }
        if threshold < 1 || threshold > keys.len() as u64 {
            return Err(format!(
                "$.threshold: {threshold} is not between 1 and the {} key(s)",
                keys.len()
            ));
        }
        Ok(KeyRequest {
            project,
            paths,
            threshold,
            keys,
        })
    }
}

impl Engine {
    /// delegate-claimed-projects: the next targets version delegates each requested project
    /// (terminating, its paths only) to the developers' keys.
    pub(super) fn build_delegations(&self) -> Result<Proposal, EngineError> {
        let now = self.now()?;
        let (_, targets) = self.loaded()?;
        let days = Duration::days(int_param(&self.params, "targets_expiry_days").max(1));
        let mut new_targets = edit::bump(targets.signed(), now + days);
        for r in &self.requests {
            edit::add_delegation(
                &mut new_targets,
                &edit::NewDelegation {
                    name: r.project.clone(),
                    keys: r.keys.clone(),
                    threshold: r.threshold,
                    paths: r.paths.clone(),
                    terminating: true,
                },
            )
            .map_err(|e| self.policy(format!("project {}: {e}", r.project)))?;
        }
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: None,
            targets: Some(Metadata::new(new_targets)),
        })
    }
}
