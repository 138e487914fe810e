//! Phase: the files the export writes, and the check of what was exported.

use super::{Engine, EngineError};
use crate::tuf::canonical::Value;
use crate::tuf::rstuf;
use std::collections::BTreeMap;

impl Engine {
    /// The files the export step writes (consistent-snapshot names), once signed.
    pub fn export_files(&self) -> Vec<(String, Vec<u8>)> {
        if self.is_tuf_on_ci() {
            return self.tuf_on_ci_export();
        }
        if self.is_rstuf_pending() {
            return self.rstuf_pending_export();
        }
        let mut out = Vec::new();
        if let Some(p) = &self.proposal {
            if let Some(l) = &p.layout {
                out.push((self.layout_file_name(), l.to_file_bytes()));
            }
            if let Some(r) = &p.root {
                let v = r.signed().common.version;
                out.push((format!("{v}.root.json"), r.to_file_bytes()));
                if self.rstuf()
                    && let Ok(payload) = self.rstuf_payload(r)
                {
                    out.push(payload);
                }
            }
            if let Some(t) = &p.targets {
                out.push((
                    format!("{}.targets.json", t.signed().common.version),
                    t.to_file_bytes(),
                ));
            }
            if let Some(publication) = &self.publication {
                out.extend(publication.target_files(self.publish_sha512()));
            }
        }
        out
    }

    /// The export: every file written as proposed and signed.
    pub(super) fn on_exported(
        &mut self,
        files: &BTreeMap<String, String>,
        rstuf_settings: Option<&Value>,
    ) -> Result<(), EngineError> {
        use sha2::Digest;
        for (name, bytes) in self.export_files() {
            let digest = hex::encode(sha2::Sha256::digest(&bytes));
            if files.get(&name) != Some(&digest) {
                return Err(self.policy(format!("{name} was not exported as proposed and signed")));
            }
        }
        // The RSTUF settings recorded must be the ones the payload was built with (absent in
        // transcripts written before they were recorded).
        if let Some(recorded) = rstuf_settings {
            match self.rstuf_settings_record() {
                None => {
                    return Err(self.policy(format!(
                        "the export records RSTUF settings, but this ceremony writes no {}",
                        rstuf::CEREMONY_PAYLOAD
                    )));
                }
                Some(ours) => {
                    if let Some(d) = rstuf::settings_difference(recorded, &ours) {
                        return Err(self.policy(format!(
                            "the RSTUF settings recorded at the export differ from the ones {} was built with: {}",
                            rstuf::CEREMONY_PAYLOAD,
                            d.describe("the record", "the parameters")
                        )));
                    }
                }
            }
        }
        self.advance();
        Ok(())
    }
}
