//! sign-intoto-layout: the layout signed by the targets keys, then the targets listing it.

use super::{Engine, EngineError, Proposal, int_param};
use crate::ceremony::script::ParamValue;
use crate::tuf::canonical::Value;
use crate::tuf::edit;
use crate::tuf::key::Key;
use crate::tuf::metadata::{Metadata, RoleType};
use crate::tuf::verify::ThresholdResult;
use time::Duration;

impl Engine {
    /// The signed layout's target path in targets (parameter `layout_target`).
    pub(super) fn layout_target(&self) -> String {
        match self.params.get("layout_target") {
            Some(ParamValue::Text(t)) if !t.trim().is_empty() => t.trim().to_string(),
            _ => "in-toto/root.layout".to_string(),
        }
    }

    /// The exported layout file's name: the target path's last part, after the version of the
    /// targets that lists it (`2.root.layout`), so a later layout never meets an earlier file.
    pub(super) fn layout_file_name(&self) -> String {
        let t = self.layout_target();
        let base = t.rsplit('/').next().unwrap_or("root.layout");
        let version = self
            .proposal
            .as_ref()
            .and_then(|p| p.targets.as_ref())
            .map(|t| t.signed().common.version);
        match version {
            Some(v) => format!("{v}.{base}"),
            None => base.to_string(),
        }
    }

    /// The layout's signatures counted against the current root's targets keys and threshold
    /// (each key once; a layout signature names the key by its plain key id).
    pub fn layout_meter(&self, layout: &crate::intoto::LayoutFile) -> Option<ThresholdResult> {
        let (root, _) = self.current.as_ref()?;
        let root = root.signed();
        let role = root.role(RoleType::Targets);
        let msg = layout.signed_message();
        let mut signed = Vec::new();
        for id in &role.keyids {
            let Some(pk) = root.key(id).and_then(|k| k.public_key().ok()) else {
                continue;
            };
            let plain = Key::from_public_key(&pk).key_id();
            let ok = layout
                .signatures()
                .iter()
                .any(|s| s.keyid == plain && pk.verify(&msg, &s.sig).is_ok());
            if ok {
                signed.push(id.clone());
            }
        }
        Some(ThresholdResult {
            threshold: role.threshold,
            signed,
            unsigned: Vec::new(),
            ignored: Vec::new(),
        })
    }

    /// sign-intoto-layout: first the imported layout alone; once the targets keyholders have
    /// signed it to the threshold, the next targets version listing the signed layout file.
    pub(super) fn build_layout(&self) -> Result<Proposal, EngineError> {
        let Some(previous) = &self.proposal else {
            let layout = self
                .layout
                .clone()
                .ok_or_else(|| self.policy("no in-toto layout was imported"))?;
            return Ok(Proposal {
                layout: Some(layout),
                tuf_on_ci: Vec::new(),
                root: None,
                targets: None,
            });
        };
        let layout = previous
            .layout
            .clone()
            .ok_or_else(|| self.policy("no in-toto layout was proposed"))?;
        let meter = self
            .layout_meter(&layout)
            .ok_or_else(|| self.policy("the current metadata has not been loaded"))?;
        if !meter.verified() {
            return Err(self.policy(format!(
                "the layout has {} of {} signatures: the targets cannot list it yet",
                meter.signed.len(),
                meter.threshold
            )));
        }
        let now = self.now()?;
        let (_, targets) = self.loaded()?;
        let days = Duration::days(int_param(&self.params, "targets_expiry_days").max(1));
        let mut new_targets = edit::bump(targets.signed(), now + days);
        let mut custom = crate::tuf::canonical::Map::new();
        custom.insert("in-toto".into(), Value::String("layout".into()));
        edit::set_target(
            &mut new_targets,
            &self.layout_target(),
            edit::target_file(&layout.to_file_bytes(), Some(Value::Object(custom))),
        )
        .map_err(|e| self.policy(e.to_string()))?;
        Ok(Proposal {
            layout: Some(layout),
            tuf_on_ci: Vec::new(),
            root: None,
            targets: Some(Metadata::new(new_targets)),
        })
    }
}
