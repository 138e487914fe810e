//! Phase: the seal: keyholders who do not sign it.

use super::{Engine, EngineError};

impl Engine {
    /// A keyholder who does not sign the seal (after the last step).
    pub(super) fn on_seal_skipped(
        &mut self,
        keyholder: &str,
        reason: &str,
    ) -> Result<(), EngineError> {
        // After the last step (the seal follows): the seal's signers are chosen then.
        if !self.have_params || self.current_step().is_some() {
            return Err(self.policy("a keyholder is skipped at the seal only after the last step"));
        }
        self.check_skip(keyholder, reason, &self.seal_skipped)?;
        self.seal_skipped
            .push((keyholder.to_string(), reason.to_string()));
        Ok(())
    }
}
