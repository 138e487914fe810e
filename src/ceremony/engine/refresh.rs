//! refresh-expiry: the next root and targets with new expiry.

use super::{Engine, EngineError, Proposal, int_param};
use crate::tuf::edit;
use crate::tuf::metadata::Metadata;
use time::Duration;

impl Engine {
    /// refresh-expiry: the next versions of the current root and targets, with new expiry and
    /// nothing else changed.
    pub(super) fn build_refresh(&self) -> Result<Proposal, EngineError> {
        if self.rstuf() {
            return self.build_rstuf_refresh();
        }
        let now = self.now()?;
        let (root, targets) = self.loaded()?;
        let days = |name: &str| Duration::days(int_param(&self.params, name).max(1));
        let new_root = edit::next_root(root.signed(), now + days("root_expiry_days"));
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
