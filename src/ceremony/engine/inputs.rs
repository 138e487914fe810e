//! Phase: what the input media bring: the current metadata, an in-toto layout, key requests,
//! target files and online keys.

use super::{Engine, EngineError, KeyRequest, Need, RequestSource, int_param};
use crate::text::show;
use crate::tuf::canonical::Value;
use crate::tuf::compat;
use crate::tuf::metadata::{Expires, Metadata, RoleType, Root, Targets, key_from_value};
use crate::tuf::verify::trust_root;
use std::collections::BTreeMap;

impl Engine {
    /// The current root and targets from the input media, checked and trusted.
    pub(super) fn on_metadata_loaded(
        &mut self,
        root: &Value,
        targets: &Value,
        not_before: Option<&str>,
        warnings: &mut Vec<String>,
    ) -> Result<(), EngineError> {
        if let Some(nb) = not_before {
            let t = Expires::parse(nb.to_string(), "not_before")
                .map_err(|e| self.policy(e.to_string()))?;
            let now = self.now()?;
            if now < t.time {
                return Err(self.policy(format!(
                    "the confirmed clock ({}) is earlier than {nb}, the last time the previous ceremony's transcript recorded: the clock is wrong; set it and confirm it again",
                    Expires::from_time(now).raw
                )));
            }
        }
        let root_md = Metadata::<Root>::from_value(root.clone())
            .map_err(|e| self.policy(format!("current root: {e}")))?;
        let (trusted, _) = trust_root("current root", &root_md.to_file_bytes())
            .map_err(|e| self.policy(e.to_string()))?;
        // RSTUF's model: targets is signed online and not loaded (`null`).
        let targets_md = if self.rstuf() && *targets == Value::Null {
            None
        } else {
            let t = Metadata::<Targets>::from_value(targets.clone())
                .map_err(|e| self.policy(format!("current targets: {e}")))?;
            let m = trusted.count(RoleType::Targets, t.signed_bytes(), &t.signatures);
            if !m.verified() {
                return Err(self.policy(format!("current targets: {}", m.summary())));
            }
            Some(t)
        };
        if self.rstuf() {
            crate::tuf::rstuf::check_model("current root", root_md.signed())
                .map_err(|e| self.policy(e.to_string()))?;
        }
        if let Some(now) = self.clock
            && root_md.signed().common.expires.is_expired(now)
        {
            warnings.push(format!(
                "the current root expired at {}",
                root_md.signed().common.expires.raw
            ));
        }
        // Every later root carries consistent_snapshot over as it is: a root without
        // it is refused here, before any key is generated.
        if root_md.signed().consistent_snapshot.is_none() {
            let f = compat::check_root(root_md.signed())
                .into_iter()
                .find(|f| f.rule == "consistent-snapshot");
            if let Some(f) = f {
                self.gate(
                    &format!("current root: {}: {}", f.field, f.problem),
                    &f.clients,
                )?;
            }
        }
        self.current = Some((root_md, targets_md));
        self.advance();
        Ok(())
    }

    /// The unsigned in-toto layout from the input media.
    pub(super) fn on_layout_imported(&mut self, file: &str) -> Result<(), EngineError> {
        let layout = crate::intoto::LayoutFile::from_bytes(file.as_bytes())
            .map_err(|e| self.policy(format!("the layout: {e}")))?;
        if !layout.signatures().is_empty() {
            return Err(self.policy(
                "the layout carries signatures already: bring it unsigned, the keyholders sign it here",
            ));
        }
        layout
            .summary()
            .map_err(|e| self.policy(format!("the layout: {e}")))?;
        self.layout = Some(layout);
        self.advance();
        Ok(())
    }

    /// Developers' key requests from the input media.
    pub(super) fn on_requests_imported(
        &mut self,
        requests: &[Value],
        sources: &[RequestSource],
    ) -> Result<(), EngineError> {
        let max = int_param(&self.params, "max_requests").max(1) as usize;
        if requests.is_empty() {
            return Err(self.policy("no key requests on the input media"));
        }
        if !sources.is_empty() && sources.len() != requests.len() {
            return Err(self.policy(format!(
                "{} request file(s) named for {} request(s)",
                sources.len(),
                requests.len()
            )));
        }
        for (i, src) in sources.iter().enumerate() {
            if src.sha256.len() != 64
                || !src
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                return Err(self.policy(format!(
                    "request {} ({}): sha256 is not 64 lower-case hex digits",
                    i + 1,
                    show(&src.file)
                )));
            }
        }
        if requests.len() > max {
            return Err(self.policy(format!(
                "{} requests, more than the {max} this ceremony reviews",
                requests.len()
            )));
        }
        let mut parsed: Vec<KeyRequest> = Vec::new();
        for (i, v) in requests.iter().enumerate() {
            let r = KeyRequest::from_value(v)
                .map_err(|e| self.policy(format!("request {}: {e}", i + 1)))?;
            for (k, key) in r.keys.iter().enumerate() {
                self.gate_new_key(
                    &format!("request {} ({}) key {}", i + 1, r.project, k + 1),
                    key,
                )?;
            }
            if parsed.iter().any(|o| o.project == r.project) {
                return Err(self.policy(format!("project {} is requested twice", r.project)));
            }
            let delegated = self
                .current
                .as_ref()
                .and_then(|(_, t)| t.as_ref())
                .is_some_and(|t| {
                    t.signed()
                        .delegations
                        .as_ref()
                        .is_some_and(|d| d.role_for(&r.project).is_some())
                });
            if delegated {
                return Err(self.policy(format!("project {} is delegated already", r.project)));
            }
            parsed.push(r);
        }
        self.requests = parsed;
        self.request_sources = sources.to_vec();
        self.advance();
        Ok(())
    }

    /// Target files and a delegation to publish, from the input media.
    pub(super) fn on_targets_imported(
        &mut self,
        manifest: &Value,
        files: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let max = crate::ceremony::publish::max_target_bytes(int_param(
            &self.params,
            crate::ceremony::publish::MAX_TARGET_BYTES,
        ));
        let publication = crate::ceremony::publish::Publication::read(manifest, files, max)
            .map_err(|e| self.policy(e))?;
        let (_, current) = self.loaded()?;
        publication
            .check_against(current.signed())
            .map_err(|e| self.policy(e))?;
        if let Some(d) = &publication.delegation {
            for (i, key) in d.keys.iter().enumerate() {
                self.gate_new_key(
                    &format!(
                        "{}: $.delegation.keys[{i}]",
                        crate::ceremony::publish::MANIFEST_FILE
                    ),
                    key,
                )?;
            }
        }
        self.publication = Some(publication);
        self.advance();
        Ok(())
    }

    /// Online public keys from the input media.
    pub(super) fn on_keys_imported(
        &mut self,
        keys: &BTreeMap<String, Value>,
    ) -> Result<(), EngineError> {
        let wanted: Vec<String> = match self.need() {
            Need::ImportKeys { roles } => roles,
            _ => Vec::new(),
        };
        let mut parsed = BTreeMap::new();
        for (role, v) in keys {
            let key = key_from_value(v.clone(), &format!("keys.{role}"))
                .map_err(|e| self.policy(e.to_string()))?;
            key.public_key()
                .map_err(|e| self.policy(format!("{role} key: {e}")))?;
            self.gate_new_key(&format!("the {role} key"), &key)?;
            parsed.insert(role.clone(), key);
        }
        for role in &wanted {
            if !parsed.contains_key(role) {
                return Err(self.policy(format!("no {role} key on the input media")));
            }
        }
        self.online = parsed;
        self.advance();
        Ok(())
    }
}
