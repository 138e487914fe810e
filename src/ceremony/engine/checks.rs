//! Policy checks: parameter values against the script and each other, skipped keyholders,
//! expiry windows, and the client-profile gate (what a client rejects is refused unless the
//! registry accepted losing it).

use super::{Engine, EngineError, ParamJson, Proposal, int_param};
use crate::ceremony::script::ParamValue;
use crate::text::{check_name, show};
use crate::tuf::compat::{self, Client};
use crate::tuf::key::Key;
use std::collections::BTreeMap;

/// Parameters that hold keyholders' names, comma-separated; each name is checked like a name
/// at the roll call.
pub const NAME_LIST_PARAMS: [&str; 2] = ["add_keyholders", "remove_keyholders"];

/// The parameter naming the clients the registry accepts losing (comma-separated profile
/// names: `python-tuf`, `tough`, `tuf-js`, `go-tuf`). Whatever a client profile rejects is
/// refused unless every client that rejects it is named here; what is accepted this way is shown
/// on the review and recorded in the transcript.
pub const ACCEPT_CLIENT_LOSS: &str = "accept_client_loss";

/// The script parameter (a choice of `no` and `yes`) that lets a new root or targets version
/// expire no later than the one it replaces.
pub const ALLOW_EARLIER_EXPIRY: &str = "allow_earlier_expiry";

/// The longest reason recorded for skipping a keyholder.
pub const MAX_REASON_CHARS: usize = 300;

/// Thresholds against the keyholders present: no root or targets threshold above their
/// number.
pub(super) fn threshold_rule(
    params: &BTreeMap<String, ParamValue>,
    keyholders: usize,
) -> Result<(), String> {
    for name in ["root_threshold", "targets_threshold"] {
        let t = int_param(params, name);
        if t > keyholders as i64 {
            return Err(format!(
                "{name} = {t} is more than the {keyholders} keyholders present"
            ));
        }
    }
    Ok(())
}

impl Engine {
    /// Why recorded parameters can no longer be corrected (`None`: they can): a key was
    /// generated or a proposal built from them.
    pub fn correction_closed(&self) -> Option<String> {
        if !self.generated.is_empty() {
            return Some(
                "parameters are corrected only before the first key is generated".to_string(),
            );
        }
        if self.proposal.is_some() {
            return Some("parameters are corrected only before the proposal".to_string());
        }
        None
    }

    /// Check parameter values before they are recorded, as the engine will when they are:
    /// every value against the script (type, range, choices, names, expiry window) and every
    /// rule between values and what is known (hash bins a power of two, thresholds against the
    /// keyholders: those of the roll call once recorded, else `keyholders` when the caller
    /// knows who will come, e.g. from an answers file; the client profiles). The one check
    /// of parameters: the UI, the headless runner and `ceremony run` call it before they
    /// record, and [`Engine::apply`] calls it when they do.
    pub fn check_parameters(
        &self,
        values: &BTreeMap<String, ParamJson>,
        keyholders: Option<usize>,
    ) -> Result<(), EngineError> {
        self.checked_parameters(values, keyholders).map(|_| ())
    }

    /// The parameters in force once `values` are set over the current ones, checked (see
    /// [`Engine::check_parameters`]).
    pub(super) fn checked_parameters(
        &self,
        values: &BTreeMap<String, ParamJson>,
        keyholders: Option<usize>,
    ) -> Result<BTreeMap<String, ParamValue>, EngineError> {
        let mut params = self.params.clone();
        for (name, v) in values {
            let Some(p) = self.script.parameters.iter().find(|p| &p.name == name) else {
                return Err(self.policy(format!("the script has no parameter \"{}\"", show(name))));
            };
            let value = match (&p.default, v) {
                (ParamValue::Integer(_), ParamJson::Integer(i)) => {
                    if p.min.is_some_and(|m| *i < m) || p.max.is_some_and(|m| *i > m) {
                        return Err(self.policy(format!(
                            "{name} = {i} is outside the script's range: {}",
                            p.allowed()
                        )));
                    }
                    if name.ends_with("expiry_days") {
                        self.check_expiry_window(name, *i)?;
                    }
                    ParamValue::Integer(*i)
                }
                (ParamValue::Text(_), ParamJson::Text(s))
                    if NAME_LIST_PARAMS.contains(&name.as_str()) =>
                {
                    for n in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        check_name(n).map_err(|e| self.policy(format!("{name}: the name {e}")))?;
                    }
                    ParamValue::Text(s.clone())
                }
                (ParamValue::Choice(_), ParamJson::Text(s)) => {
                    if !p.choices.contains(s) {
                        return Err(self.policy(format!(
                            "{name} = \"{}\" is not {}",
                            show(s),
                            p.allowed()
                        )));
                    }
                    ParamValue::Choice(s.clone())
                }
                (ParamValue::Text(_), ParamJson::Text(s)) => ParamValue::Text(s.clone()),
                _ => {
                    return Err(self.policy(format!("{name} has the wrong type: {}", p.allowed())));
                }
            };
            params.insert(name.clone(), value);
        }
        // Rules between values. (A keyholder may be in both add_keyholders and
        // remove_keyholders: they replace their own token.)
        let bins = int_param(&params, "hash_bins");
        if bins != 0 && (bins < 2 || bins.count_ones() != 1) {
            return Err(self.policy(format!(
                "hash_bins = {bins} is not a power of two (2, 4, 8, ... 16384), or 0 for no hash bins"
            )));
        }
        let names = |param: &str| -> Vec<String> {
            match params.get(param) {
                Some(ParamValue::Text(t)) => t
                    .split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect(),
                _ => Vec::new(),
            }
        };
        let (added, removed) = (names("add_keyholders"), names("remove_keyholders"));
        for list in [&added, &removed] {
            if let Some(n) = list
                .iter()
                .enumerate()
                .find(|(i, n)| list[..*i].contains(n))
            {
                return Err(self.policy(format!("{} is named twice", n.1)));
            }
        }
        let present = if self.keyholders.is_empty() {
            keyholders
        } else {
            Some(self.keyholders.len())
        };
        if let Some(n) = present {
            threshold_rule(&params, n).map_err(|e| self.policy(e))?;
        }
        if !self.requests.is_empty() {
            let max = int_param(&params, "max_requests").max(1) as usize;
            if self.requests.len() > max {
                return Err(self.policy(format!(
                    "max_requests = {max}: {} requests are imported already",
                    self.requests.len()
                )));
            }
        }
        let mut trial = self.clone();
        trial.params = params;
        trial.gate_parameters()?;
        Ok(trial.params)
    }

    /// A keyholder skipped (at signing or at the seal, `done` listing those skipped there
    /// already): one of the roll call, skipped once, with a reason.
    pub(super) fn check_skip(
        &self,
        keyholder: &str,
        reason: &str,
        done: &[(String, String)],
    ) -> Result<(), EngineError> {
        if !self.keyholders.iter().any(|k| k == keyholder) {
            return Err(self.policy(format!(
                "\"{}\" is not a keyholder of the roll call",
                show(keyholder)
            )));
        }
        if reason.trim().is_empty() {
            return Err(self.policy(format!(
                "skipping {keyholder} needs a reason (e.g. \"token does not start\")"
            )));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(self.policy(format!(
                "the reason for skipping {keyholder} is longer than {MAX_REASON_CHARS} characters"
            )));
        }
        if done.iter().any(|(k, _)| k == keyholder) {
            return Err(self.policy(format!("{keyholder} is skipped already")));
        }
        Ok(())
    }

    /// A new version of root or targets must expire later than the version it replaces: an
    /// earlier expiry means the clock is wrong (set back) or the parameters are, and clients
    /// would see the registry's metadata expire sooner than they were told. Allowed only when
    /// the script declares the parameter [`ALLOW_EARLIER_EXPIRY`] and the recorded parameters
    /// set it to `yes`.
    pub(super) fn check_expiry_moves_forward(&self, p: &Proposal) -> Result<(), EngineError> {
        let Some((old_root, old_targets)) = &self.current else {
            return Ok(());
        };
        if matches!(self.params.get(ALLOW_EARLIER_EXPIRY), Some(ParamValue::Choice(v)) if v == "yes")
        {
            return Ok(());
        }
        let pairs = [
            (
                "root",
                p.root.as_ref().map(|r| &r.signed().common),
                &old_root.signed().common,
            ),
            (
                "targets",
                p.targets.as_ref().map(|t| &t.signed().common),
                match old_targets {
                    Some(t) => &t.signed().common,
                    None => &old_root.signed().common,
                },
            ),
        ];
        for (role, new, old) in pairs {
            let Some(new) = new else { continue };
            if role == "targets" && old_targets.is_none() {
                continue;
            }
            // Strictly earlier: a new version made within the same second as the one it replaces
            // (a rotation right after a bootstrap, in a rehearsal) has the same expiry, which
            // says nothing about the clock.
            if new.version != old.version && new.expires.time < old.expires.time {
                return Err(self.policy(format!(
                    "{role} v{} would expire at {}, earlier than v{} it replaces (expires {}): check the clock; only a script parameter {ALLOW_EARLIER_EXPIRY} = \"yes\", recorded in the transcript, allows it",
                    new.version, new.expires.raw, old.version, old.expires.raw
                )));
            }
        }
        Ok(())
    }

    /// An expiry in days must lie in the script's window: below the minimum is refused, beyond
    /// the maximum is refused too (the script's author set that bound for this ceremony).
    pub(super) fn check_expiry_window(&self, name: &str, days: i64) -> Result<(), EngineError> {
        if days < self.script.min_expiry_days {
            return Err(self.policy(format!(
                "{name} = {days} is inside the script's minimum expiry window of {} days",
                self.script.min_expiry_days
            )));
        }
        if let Some(max) = self.script.max_expiry_days
            && days > max
        {
            return Err(self.policy(format!(
                "{name} = {days} is beyond the script's maximum expiry window of {max} days"
            )));
        }
        Ok(())
    }

    /// The clients the registry accepts losing (parameter [`ACCEPT_CLIENT_LOSS`]).
    pub fn accepted_losses(&self) -> Vec<Client> {
        match self.params.get(ACCEPT_CLIENT_LOSS) {
            Some(ParamValue::Text(t)) => compat::parse_client_list(t).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Refuse what some client rejects unless the registry accepted losing every such client:
    /// the message names the clients and what they reject.
    pub(super) fn gate(&self, what: &str, clients: &[Client]) -> Result<(), EngineError> {
        let refused: Vec<Client> = clients
            .iter()
            .copied()
            .filter(|c| !self.accepted_losses().contains(c))
            .collect();
        if refused.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = refused.iter().map(|c| c.name()).collect();
        Err(self.policy(format!(
            "{what}: {} clients reject it. Choose another value or key, or name the clients the registry accepts losing in the parameter {ACCEPT_CLIENT_LOSS} (\"{}\")",
            compat::client_list(&refused),
            names.join(",")
        )))
    }

    /// The parameters against the client profiles, before any key exists: the key type every
    /// token generates and the hash bins.
    pub(super) fn gate_parameters(&self) -> Result<(), EngineError> {
        if let Some(ParamValue::Text(t)) = self.params.get(ACCEPT_CLIENT_LOSS) {
            compat::parse_client_list(t)
                .map_err(|e| self.policy(format!("{ACCEPT_CLIENT_LOSS}: {e}")))?;
        }
        if let Some(ParamValue::Choice(c)) = self.params.get("key_type")
            && let Some(alg) = crate::tuf::key::Algorithm::from_key_type(c)
        {
            self.gate(
                &format!("key_type = \"{c}\" ({} keys)", alg.label()),
                &compat::algorithm_rejected_by(alg),
            )?;
        }
        let bins = int_param(&self.params, "hash_bins");
        if bins > 0 {
            self.gate(
                &format!("hash_bins = {bins} (TAP 15 hash bins, delegations.succinct_roles)"),
                &compat::SUCCINCT_ROLES_REJECTED_BY,
            )?;
        }
        Ok(())
    }

    /// A key entering from the input media (an online key, a developer's key): in an encoding
    /// every profile reads (a refusal whatever the parameters say), and of a type the clients
    /// verify (unless the registry accepted losing those that do not).
    pub(super) fn gate_new_key(&self, what: &str, key: &Key) -> Result<(), EngineError> {
        for f in compat::check_key(&key.key_id(), key, what) {
            if f.rule == "ecdsa-encoding" {
                return Err(self.policy(format!(
                    "{what}: an ECDSA public key that is not PEM: {} clients cannot read it; bring the key as PEM (SubjectPublicKeyInfo), which every client reads",
                    compat::client_list(&f.clients)
                )));
            }
            self.gate(&format!("{}: {}", f.field, f.problem), &f.clients)?;
        }
        Ok(())
    }
}
