//! Ceremonies in RSTUF's role model (script parameter `model = "rstuf"`): root keys named in
//! `x-rstuf-key-name`, one online key (imported from the input media with its
//! `x-rstuf-online-key-uri`) the only key of targets, snapshot and timestamp, no offline targets.
//! The export adds RSTUF's payload: `ceremony-payload.json` for root v1, `update-payload.json`
//! for later versions. A bootstrap may collect fewer root signatures than the threshold
//! (parameter `bootstrap_signatures`): RSTUF keeps the root pending and collects the rest.

use time::Duration;

use super::{Engine, EngineError, Proposal, int_param, owned_key};
use crate::ceremony::script::ParamValue;
use crate::text::show;
use crate::tuf::canonical::Value;
use crate::tuf::edit;
use crate::tuf::key::Key;
use crate::tuf::metadata::{Metadata, RoleType, Root};
use crate::tuf::rstuf::{self, Layout, Settings};
use crate::tuf::verify::{ThresholdResult, count_signatures};

/// The parameter that selects RSTUF's model.
pub const MODEL_PARAM: &str = "model";
/// The parameter: root signatures a bootstrap collects before export (0: the threshold).
pub const BOOTSTRAP_SIGNATURES: &str = "bootstrap_signatures";
/// The parameter: RSTUF's custom delegations (JSON) instead of hash bins; empty for bins.
pub const DELEGATIONS_PARAM: &str = "delegations";

impl Engine {
    /// Whether this ceremony builds RSTUF's role model.
    pub fn rstuf(&self) -> bool {
        matches!(self.params.get(MODEL_PARAM), Some(ParamValue::Choice(c)) if c == "rstuf")
    }

    /// A keyholder's key as this ceremony writes it into root: named with `x-rstuf-key-name`
    /// (and no other custom field) in RSTUF's model, with its tuf-on-ci owner otherwise.
    pub(super) fn owned(&self, key: &Key, keyholder: &str) -> Key {
        if self.rstuf() {
            rstuf::named_key(key, keyholder)
        } else {
            owned_key(key, keyholder)
        }
    }

    /// Root signatures this ceremony must collect: the threshold, or fewer at an RSTUF
    /// bootstrap that asked for fewer (at least one).
    pub(super) fn root_signatures_needed(&self, m: &ThresholdResult) -> u64 {
        let asked = int_param(&self.params, BOOTSTRAP_SIGNATURES);
        if self.rstuf() && self.current.is_none() && asked > 0 {
            (asked as u64).min(m.threshold)
        } else {
            m.threshold
        }
    }

    /// Whether a role's meter allows closing the signing step.
    pub(super) fn meter_done(&self, role: &str, m: &ThresholdResult) -> bool {
        if role == "root" {
            m.signed.len() as u64 >= self.root_signatures_needed(m)
        } else {
            m.verified()
        }
    }

    /// At an RSTUF bootstrap that asked for fewer root signatures (`bootstrap_signatures` > 0),
    /// whether root has them (no one else is asked). Otherwise every keyholder signs, as at any
    /// bootstrap.
    pub(super) fn rstuf_collected(&self) -> bool {
        self.rstuf()
            && self.current.is_none()
            && int_param(&self.params, BOOTSTRAP_SIGNATURES) > 0
            && self
                .meters()
                .get("root")
                .is_some_and(|m| self.meter_done("root", m))
    }

    /// bootstrap-root with `model = "rstuf"`: root v1 in RSTUF's model, no targets.
    pub(super) fn build_rstuf_bootstrap(&self) -> Result<Proposal, EngineError> {
        let now = self.now()?;
        let days = Duration::days(int_param(&self.params, "root_expiry_days").max(1));
        let keys: Vec<Key> = self
            .generated
            .iter()
            .map(|(who, _, k)| self.owned(k, who))
            .collect();
        let online = self
            .online
            .get("online")
            .ok_or_else(|| self.policy("no online key was imported"))?;
        let threshold = int_param(&self.params, "root_threshold").max(0) as u64;
        let root = rstuf::new_root(&keys, threshold, online, now + days)
            .map_err(|e| self.policy(e.to_string()))?;
        // The settings are checked now, before anything is signed.
        self.rstuf_settings()?;
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(Metadata::new(root)),
            targets: None,
        })
    }

    /// rotate-online-keys in RSTUF's model: the next root with the one online key of targets,
    /// snapshot and timestamp replaced by the `online` key from the input media.
    pub(super) fn build_rstuf_online_rotation(&self) -> Result<Proposal, EngineError> {
        let now = self.now()?;
        let root = self.loaded_root()?;
        let days = Duration::days(int_param(&self.params, "root_expiry_days").max(1));
        let mut new_root = edit::next_root(root.signed(), now + days);
        let new = self
            .online
            .get("online")
            .ok_or_else(|| self.policy("no new online key was imported"))?;
        let (old_id, old) = rstuf::online_key("current root", root.signed())
            .map_err(|e| self.policy(e.to_string()))?;
        let same = |a: &Key, b: &Key| {
            a.public_key().ok().map(|p| p.material()) == b.public_key().ok().map(|p| p.material())
        };
        if same(old, new) {
            return Err(
                self.policy("the imported online key is the current one: nothing to rotate")
            );
        }
        let name = rstuf::key_name(new).unwrap_or("online").to_string();
        let new = rstuf::named_key(new, &name);
        for ty in rstuf::ONLINE_ROLES {
            edit::add_root_key(&mut new_root, ty, new.clone())
                .map_err(|e| self.policy(e.to_string()))?;
            edit::remove_root_key(&mut new_root, ty, &old_id)
                .map_err(|e| self.policy(e.to_string()))?;
        }
        rstuf::check_model("the new root", &new_root).map_err(|e| self.policy(e.to_string()))?;
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(Metadata::new(new_root)),
            targets: None,
        })
    }

    /// refresh-expiry in RSTUF's model: the next root with a new expiry, nothing else changed
    /// (RSTUF refreshes its online roles itself).
    pub(super) fn build_rstuf_refresh(&self) -> Result<Proposal, EngineError> {
        let now = self.now()?;
        let root = self.loaded_root()?;
        let days = Duration::days(int_param(&self.params, "root_expiry_days").max(1));
        let new_root = edit::next_root(root.signed(), now + days);
        rstuf::check_model("the new root", &new_root).map_err(|e| self.policy(e.to_string()))?;
        Ok(Proposal {
            layout: None,
            tuf_on_ci: Vec::new(),
            root: Some(Metadata::new(new_root)),
            targets: None,
        })
    }

    /// The settings of ceremony-payload.json from the script's parameters.
    fn rstuf_settings(&self) -> Result<Settings, EngineError> {
        let days = |name: &str| -> Result<u64, EngineError> {
            let d = int_param(&self.params, name);
            if d < 1 {
                return Err(self.policy(format!("{name} must be at least 1 day")));
            }
            Ok(d as u64)
        };
        let layout = match self.params.get(DELEGATIONS_PARAM) {
            Some(ParamValue::Text(t)) if !t.trim().is_empty() => Layout::Delegations(
                rstuf::parse_delegations(&format!("parameter {DELEGATIONS_PARAM}"), t)
                    .map_err(|e| self.policy(e.to_string()))?,
            ),
            _ => self.rstuf_bins(days("bins_expiration")?)?,
        };
        Ok(Settings {
            root: days("root_expiry_days")?,
            timestamp: days("timestamp_expiration")?,
            snapshot: days("snapshot_expiration")?,
            targets: days("targets_expiration")?,
            layout,
        })
    }

    /// At an RSTUF bootstrap, the settings `ceremony-payload.json` carries beside root v1 (not
    /// signed: RSTUF's worker applies them): the online roles' expirations, and the hash bins
    /// or every custom delegation (name, paths, threshold and keys by name).
    pub(super) fn rstuf_settings_lines(&self) -> Vec<String> {
        if !self.rstuf() || self.current.is_some() || self.is_rstuf_pending() {
            return Vec::new();
        }
        let s = match self.rstuf_settings() {
            Ok(s) => s,
            Err(e) => return vec![format!("RSTUF settings: {e}")],
        };
        let mut out = vec![format!(
            "RSTUF settings (ceremony-payload.json; no TUF signature covers them, the sealed transcript records them): expiration days: timestamp {}, snapshot {}, targets {}",
            s.timestamp, s.snapshot, s.targets
        )];
        match &s.layout {
            Layout::Bins { expiration, number } => out.push(format!(
                "  targets delegated to {number} hash bins (expiration {expiration} days)"
            )),
            Layout::Delegations(v) => {
                let Ok(d) = crate::tuf::metadata::Delegations::from_value(v.clone(), "$") else {
                    return out;
                };
                for r in d.roles.iter().flatten() {
                    let keys: Vec<String> = r
                        .role
                        .keyids
                        .iter()
                        .map(|id| {
                            d.keys
                                .iter()
                                .find(|(k, _)| k == id)
                                .and_then(|(_, key)| rstuf::key_name(key))
                                .map_or_else(|| show(id.short()), show)
                        })
                        .collect();
                    out.push(format!(
                        "  custom delegation {}: paths {}, threshold {} of {}",
                        show(&r.name),
                        r.paths
                            .iter()
                            .flatten()
                            .map(|p| show(p))
                            .collect::<Vec<_>>()
                            .join(", "),
                        r.role.threshold,
                        if keys.is_empty() {
                            "the online key".to_string()
                        } else {
                            keys.join(", ")
                        }
                    ));
                }
            }
        }
        out
    }

    /// At an RSTUF bootstrap whose export writes `ceremony-payload.json`: the `settings` object
    /// it carries, as the transcript's export record keeps it. `None` in other ceremonies.
    pub fn rstuf_settings_record(&self) -> Option<Value> {
        let v1 = self
            .proposal
            .as_ref()
            .and_then(|p| p.root.as_ref())
            .is_some_and(|r| r.signed().common.version == 1);
        if !self.rstuf() || self.is_rstuf_pending() || !v1 {
            return None;
        }
        let s = self.rstuf_settings().ok()?;
        rstuf::settings_value(&s).ok()
    }

    /// RSTUF's hash bins (parameter `hash_bins`), valid `expiration` days.
    fn rstuf_bins(&self, expiration: u64) -> Result<Layout, EngineError> {
        let number = int_param(&self.params, "hash_bins").max(0) as u64;
        if !number.is_power_of_two() || !(2..=16384).contains(&number) {
            return Err(self.policy(format!(
                "hash_bins {number}: RSTUF takes a power of two between 2 and 16384"
            )));
        }
        Ok(Layout::Bins { expiration, number })
    }

    /// RSTUF's payload for the signed root: (file name, bytes).
    pub(super) fn rstuf_payload(
        &self,
        root: &Metadata<Root>,
    ) -> Result<(String, Vec<u8>), EngineError> {
        let policy = |e: rstuf::RstufError| self.policy(e.to_string());
        if root.signed().common.version == 1 {
            let s = self.rstuf_settings()?;
            Ok((
                rstuf::CEREMONY_PAYLOAD.to_string(),
                rstuf::ceremony_payload(&s, root).map_err(policy)?,
            ))
        } else {
            // One per root version: a workspace keeps every ceremony's export.
            Ok((
                format!("update-payload-v{}.json", root.signed().common.version),
                rstuf::update_payload(root).map_err(policy)?,
            ))
        }
    }

    /// The verify step of an RSTUF bootstrap: RSTUF's model, and the root signatures asked for
    /// valid by root v1's own keys (RSTUF collects the rest); the payload builds.
    pub(super) fn verify_rstuf_bootstrap(&self, r: &Metadata<Root>) -> Result<(), EngineError> {
        let root = r.signed();
        rstuf::check_model("root v1", root).map_err(|e| self.policy(e.to_string()))?;
        let m = count_signatures(
            |id| root.key(id),
            root.role(RoleType::Root),
            r.signed_bytes(),
            &r.signatures,
        );
        if !self.meter_done("root", &m) {
            return Err(self.policy(format!(
                "root: {} (this ceremony collects {})",
                m.summary(),
                self.root_signatures_needed(&m)
            )));
        }
        self.rstuf_payload(r).map(|_| ())
    }
}
