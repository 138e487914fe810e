//! The rotations: rotate-root-keys, rotate-online-keys and rotate-targets-keys.

use super::{Engine, EngineError, Proposal, int_param, key_owner, owned_key};
use crate::tuf::edit;
use crate::tuf::key::KeyId;
use crate::tuf::metadata::{Metadata, RoleType};
use time::Duration;

impl Engine {
    /// rotate-root-keys: the next root version with the leaving keyholders' root keys removed,
    /// the joining keyholders' new keys added, and the root threshold set.
    pub(super) fn build_rotation(&self) -> Result<Proposal, EngineError> {
        let now = self.now()?;
        let root = self.loaded_root()?;
        let days = Duration::days(int_param(&self.params, "root_expiry_days").max(1));
        let mut new_root = edit::next_root(root.signed(), now + days);
        for name in self.name_list("remove_keyholders") {
            let owned: Vec<KeyId> = new_root
                .role(RoleType::Root)
                .keyids
                .iter()
                .filter(|id| new_root.key(id).and_then(key_owner) == Some(name.as_str()))
                .cloned()
                .collect();
            if owned.is_empty() {
                return Err(self.policy(format!("no root key is owned by {name}")));
            }
            for id in owned {
                edit::remove_root_key(&mut new_root, RoleType::Root, &id)
                    .map_err(|e| self.policy(e.to_string()))?;
            }
        }
        for (who, _, key) in &self.generated {
            edit::add_root_key(&mut new_root, RoleType::Root, self.owned(key, who))
                .map_err(|e| self.policy(e.to_string()))?;
        }
        let threshold = int_param(&self.params, "root_threshold").max(0) as u64;
        edit::set_root_threshold(&mut new_root, RoleType::Root, threshold)
            .map_err(|e| self.policy(e.to_string()))?;
        edit::check_root(&new_root).map_err(|e| self.policy(e.to_string()))?;
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(Metadata::new(new_root)),
            targets: None,
        })
    }

    /// rotate-online-keys: the next root version with the snapshot and timestamp keys replaced by
    /// the keys imported from the input media (threshold 1 each).
    pub(super) fn build_online_rotation(&self) -> Result<Proposal, EngineError> {
        if self.rstuf() {
            return self.build_rstuf_online_rotation();
        }
        let now = self.now()?;
        let root = self.loaded_root()?;
        let days = Duration::days(int_param(&self.params, "root_expiry_days").max(1));
        let mut new_root = edit::next_root(root.signed(), now + days);
        for (ty, name) in [
            (RoleType::Snapshot, "snapshot"),
            (RoleType::Timestamp, "timestamp"),
        ] {
            let key = self
                .online
                .get(name)
                .cloned()
                .ok_or_else(|| self.policy(format!("no new {name} key was imported")))?;
            let material = key.public_key().ok().map(|p| p.material());
            let old: Vec<KeyId> = new_root.role(ty).keyids.clone();
            if old.iter().any(|id| {
                new_root
                    .key(id)
                    .and_then(|k| k.public_key().ok())
                    .map(|p| p.material())
                    == material
            }) {
                return Err(self.policy(format!(
                    "the imported {name} key is the current one: nothing to rotate"
                )));
            }
            edit::add_root_key(&mut new_root, ty, key).map_err(|e| self.policy(e.to_string()))?;
            for id in old {
                edit::remove_root_key(&mut new_root, ty, &id)
                    .map_err(|e| self.policy(e.to_string()))?;
            }
            edit::set_root_threshold(&mut new_root, ty, 1)
                .map_err(|e| self.policy(e.to_string()))?;
        }
        edit::check_root(&new_root).map_err(|e| self.policy(e.to_string()))?;
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(Metadata::new(new_root)),
            targets: None,
        })
    }

    /// rotate-targets-keys: the next root version lists the keys generated in the keyholders'
    /// tokens as the targets keys (the old ones leave the targets role) with the new threshold,
    /// and the next targets version is signed by the new keys.
    pub(super) fn build_targets_rotation(&self) -> Result<Proposal, EngineError> {
        let now = self.now()?;
        let (root, targets) = self.loaded()?;
        let days = |name: &str| Duration::days(int_param(&self.params, name).max(1));
        let mut new_root = edit::next_root(root.signed(), now + days("root_expiry_days"));
        let old: Vec<KeyId> = new_root.role(RoleType::Targets).keyids.clone();
        for (who, _, key) in &self.generated {
            edit::add_root_key(&mut new_root, RoleType::Targets, owned_key(key, who))
                .map_err(|e| self.policy(e.to_string()))?;
        }
        for id in old {
            edit::remove_root_key(&mut new_root, RoleType::Targets, &id)
                .map_err(|e| self.policy(e.to_string()))?;
        }
        let threshold = int_param(&self.params, "targets_threshold").max(0) as u64;
        edit::set_root_threshold(&mut new_root, RoleType::Targets, threshold)
            .map_err(|e| self.policy(e.to_string()))?;
        edit::check_root(&new_root).map_err(|e| self.policy(e.to_string()))?;
        let new_targets = edit::bump(targets.signed(), now + days("targets_expiry_days"));
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(Metadata::new(new_root)),
            targets: Some(Metadata::new(new_targets)),
        })
    }
}
