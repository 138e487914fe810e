//! An RSTUF bootstrap may leave root v1 pending (fewer signatures than its threshold: RSTUF's
//! Distributed Asynchronous Signing collects the rest). Its output is then checked as RSTUF's
//! payload (`conclave rstuf review`), and the transcript cannot be anchored in root v1 yet.

use std::path::Path;

use crate::tuf::metadata::{Metadata, RoleType, Root};
use crate::tuf::rstuf::{self, Pending};
use crate::tuf::verify::count_signatures;

/// When `export` holds an RSTUF ceremony payload whose root v1 does not meet its threshold
/// yet: the verdict of the payload's checks (the `conclave rstuf review` command, whether it
/// passed, why not, and the pending state). `None` for every other export.
pub(super) fn pending_bootstrap(export: &Path) -> Option<(String, bool, Option<String>, String)> {
    let path = export.join(rstuf::CEREMONY_PAYLOAD);
    let bytes = std::fs::read(&path).ok()?;
    let command = format!("conclave rstuf review {}", path.display());
    let fail = |why: String| Some((command.clone(), false, Some(why), String::new()));
    let root = match rstuf::read_ceremony_payload(&path.display().to_string(), &bytes) {
        Ok((_, root)) => root,
        Err(e) => return fail(e.to_string()),
    };
    let own = count_signatures(
        |id| root.signed().key(id),
        root.signed().role(RoleType::Root),
        root.signed_bytes(),
        &root.signatures,
    );
    if own.verified() {
        return None;
    }
    let first = std::fs::read(export.join("1.root.json"))
        .ok()
        .and_then(|b| Metadata::<Root>::from_bytes(&b).ok());
    if first.as_ref().map(Metadata::signed_bytes) != Some(root.signed_bytes()) {
        return fail("1.root.json is not the root of ceremony-payload.json".into());
    }
    let file = path.display().to_string();
    let p = Pending {
        root,
        trusted: None,
        other_roles: Vec::new(),
    };
    match rstuf::review_pending(&file, &p) {
        Ok(r) if !r.by_self.signed.is_empty() => Some((
            command,
            true,
            None,
            format!(
                "root v1 pending in RSTUF: {}; RSTUF collects the rest",
                r.by_self.summary()
            ),
        )),
        Ok(_) => fail(format!(
            "{file}: $.metadata.root.signatures: no valid signature"
        )),
        Err(e) => fail(e.to_string()),
    }
}
