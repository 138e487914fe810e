//! bootstrap-root: the first root and targets.

use super::{Engine, EngineError, Proposal, int_param};
use crate::tuf::edit::{self, RoleKeys};
use crate::tuf::key::Key;
use crate::tuf::metadata::{Metadata, RoleType};
use time::Duration;

impl Engine {
    /// bootstrap-root: root v1 with the generated keys for root and targets and the
    /// imported online keys for snapshot and timestamp, targets v1 (optional TAP 15 hash
    /// bins).
    pub(super) fn build_bootstrap(&self) -> Result<Proposal, EngineError> {
        let now = self.now()?;
        let days = |name: &str| Duration::days(int_param(&self.params, name).max(1));
        let root_expires = now + days("root_expiry_days");
        let targets_expires = now + days("targets_expiry_days");
        let keys: Vec<Key> = self
            .generated
            .iter()
            .map(|(who, _, k)| self.owned(k, who))
            .collect();
        let online = |role: &str| -> Result<Key, EngineError> {
            self.online
                .get(role)
                .cloned()
                .ok_or_else(|| self.policy(format!("no {role} key was imported")))
        };
        let threshold = |name: &str| int_param(&self.params, name).max(0) as u64;
        let roles = vec![
            RoleKeys {
                role: RoleType::Root,
                keys: keys.clone(),
                threshold: threshold("root_threshold"),
            },
            RoleKeys {
                role: RoleType::Targets,
                keys,
                threshold: threshold("targets_threshold"),
            },
            RoleKeys {
                role: RoleType::Snapshot,
                keys: vec![online("snapshot")?],
                threshold: 1,
            },
            RoleKeys {
                role: RoleType::Timestamp,
                keys: vec![online("timestamp")?],
                threshold: 1,
            },
        ];
        let root = edit::new_root(&roles, root_expires).map_err(|e| self.policy(e.to_string()))?;
        let mut targets = edit::new_targets(targets_expires);
        let bins = int_param(&self.params, "hash_bins");
        if bins > 0 {
            let bits = bins.trailing_zeros();
            if bins.count_ones() != 1 || bits == 0 || bits > 32 {
                return Err(self.policy(format!(
                    "hash_bins {bins} is not a power of two between 2 and 2^32"
                )));
            }
            let key = self
                .online
                .get("bins")
                .cloned()
                .map_or_else(|| online("snapshot"), Ok)?;
            edit::set_succinct_delegation(&mut targets, "bins", bits, &[key], 1)
                .map_err(|e| self.policy(e.to_string()))?;
        }
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(Metadata::new(root)),
            targets: Some(Metadata::new(targets)),
        })
    }
}
