//! publish-targets: the next targets with the imported files and delegation.

use super::{Engine, EngineError, Proposal, int_param};
use crate::tuf::edit;
use crate::tuf::metadata::Metadata;
use time::Duration;

impl Engine {
    /// publish-targets: whether new target entries get a SHA-512 too (the current targets use it).
    pub(super) fn publish_sha512(&self) -> bool {
        self.current
            .as_ref()
            .and_then(|(_, t)| t.as_ref())
            .is_some_and(|t| crate::ceremony::publish::uses_sha512(t.signed()))
    }

    /// publish-targets: the next targets version with the imported files added, replaced or
    /// removed, and the delegation to an online role added.
    pub(super) fn build_publication(&self) -> Result<Proposal, EngineError> {
        let now = self.now()?;
        let (_, targets) = self.loaded()?;
        let publication = self
            .publication
            .as_ref()
            .ok_or_else(|| self.policy("no target files were imported"))?;
        let days = Duration::days(int_param(&self.params, "targets_expiry_days").max(1));
        let mut new_targets = edit::bump(targets.signed(), now + days);
        publication
            .apply(&mut new_targets, self.publish_sha512())
            .map_err(|e| self.policy(e))?;
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: None,
            targets: Some(Metadata::new(new_targets)),
        })
    }
}
