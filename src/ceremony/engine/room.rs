//! Phase: the room: confirmations, the air-gap check and the roll call.

use super::checks::threshold_rule;
use super::{Engine, EngineError, int_param};
use crate::ceremony::script::{Person, Step};
use crate::text::check_name;

impl Engine {
    /// A person confirmed the step (with text when the step records it).
    pub(super) fn on_acknowledged(
        &mut self,
        step: &Step,
        value: Option<&str>,
    ) -> Result<(), EngineError> {
        let needs_text = step.with.get("record").is_some_and(|r| r == "text");
        if needs_text && value.is_none_or(|v| v.trim().is_empty()) {
            return Err(self.policy("this step records text: it cannot be empty"));
        }
        self.advance();
        Ok(())
    }

    /// The air-gap self-check: a failure stops a real ceremony, warns in practice.
    pub(super) fn on_airgap_checked(
        &mut self,
        interfaces: &[String],
        radios: &[String],
        warnings: &mut Vec<String>,
    ) -> Result<(), EngineError> {
        if !interfaces.is_empty() || !radios.is_empty() {
            let msg = format!(
                "the appliance is not air-gapped: interfaces {interfaces:?}, radios {radios:?}"
            );
            if !self.practice {
                return Err(self.policy(msg));
            }
            warnings.push(format!("practice run: {msg}"));
        }
        self.advance();
        Ok(())
    }

    /// The people present: named once, enough of them for the script and the thresholds.
    pub(super) fn on_roll_call(
        &mut self,
        administrator: &str,
        keyholders: &[String],
        witnesses: &[String],
        warnings: &mut Vec<String>,
    ) -> Result<(), EngineError> {
        let min = |p: Person| self.script.presence.get(&p).map_or(0, |x| x.min) as usize;
        if administrator.trim().is_empty() {
            return Err(self.policy("the administrator's name is missing"));
        }
        // Names are written into the transcript and, for keyholders, into root as key
        // owners: printable, bounded, no padding (see `text::check_name`).
        let named = std::iter::once(("administrator", administrator))
            .chain(keyholders.iter().map(|k| ("keyholder", k.as_str())))
            .chain(witnesses.iter().map(|w| ("witness", w.as_str())));
        for (role, name) in named {
            check_name(name).map_err(|e| self.policy(format!("the {role}'s name {e}")))?;
        }
        if keyholders.len() < min(Person::Keyholder) {
            return Err(self.policy(format!(
                "{} keyholder(s) present, the script requires {}",
                keyholders.len(),
                min(Person::Keyholder)
            )));
        }
        if witnesses.len() < min(Person::Witness) {
            return Err(self.policy(format!(
                "{} witness(es) present, the script requires {}",
                witnesses.len(),
                min(Person::Witness)
            )));
        }
        let mut all: Vec<&str> = keyholders
            .iter()
            .chain(witnesses)
            .map(String::as_str)
            .collect();
        all.push(administrator);
        all.sort();
        if all.windows(2).any(|w| w[0] == w[1]) || all.iter().any(|n| n.trim().is_empty()) {
            return Err(self.policy("every person is named once, and no name is empty"));
        }
        let t = int_param(&self.params, "root_threshold")
            .max(int_param(&self.params, "targets_threshold"));
        threshold_rule(&self.params, keyholders.len()).map_err(|e| {
            self.policy(format!(
                "{e}; correct the parameter before any key is generated (a recorded correction), or bring the keyholders"
            ))
        })?;
        if t == keyholders.len() as i64 {
            warnings.push(format!("threshold {t} equals the number of keyholders: there is no spare keyholder if one token is lost"));
        }
        self.keyholders = keyholders.to_vec();
        for name in self.keyholders_to_generate() {
            if !keyholders.contains(&name) {
                self.keyholders.clear();
                return Err(self.policy(format!(
                    "{name} joins as a keyholder in this ceremony but is not present"
                )));
            }
        }
        self.advance();
        Ok(())
    }
}
