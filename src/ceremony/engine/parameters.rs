//! Phase: the parameter values, recorded once at the start and corrected before any key or
//! proposal exists.

use super::{Engine, EngineError, ParamJson};
use crate::text::show;
use std::collections::BTreeMap;

impl Engine {
    /// The parameter values in force, recorded once at the start.
    pub(super) fn on_parameters(
        &mut self,
        values: &BTreeMap<String, ParamJson>,
        practice: bool,
    ) -> Result<(), EngineError> {
        if self.have_params {
            return Err(self.policy("parameters are set once, at the start"));
        }
        self.params = self.checked_parameters(values, None)?;
        self.have_params = true;
        self.practice = practice;
        Ok(())
    }

    /// Parameter values corrected before any key or proposal.
    pub(super) fn on_parameters_corrected(
        &mut self,
        step: &str,
        values: &BTreeMap<String, ParamJson>,
    ) -> Result<(), EngineError> {
        if !self.have_params {
            return Err(self.policy("the parameters must be recorded first"));
        }
        if self.current_step() != Some(step) {
            return Err(self.policy(format!(
                "a correction recorded at step {} belongs to the current step",
                show(step)
            )));
        }
        if let Some(why) = self.correction_closed() {
            return Err(self.policy(why));
        }
        if values.is_empty() {
            return Err(self.policy("a correction changes at least one value"));
        }
        self.params = self.checked_parameters(values, None)?;
        Ok(())
    }
}
