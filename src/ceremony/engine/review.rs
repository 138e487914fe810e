//! What the review shows: the lines people read and the key table before and after.

use super::{
    Engine, KeyName, accepted_loss_line, key_name, key_owner, online_roles, proposal_findings,
    request_set_digest,
};
use crate::ceremony::publish::ONLINE_URI_FIELD;
use crate::text::{show, show_message};
use crate::tuf::key::{Key, KeyId};
use crate::tuf::metadata::{KeyMap, Role, RoleType, Root, Targets};
use std::collections::{HashMap, HashSet};

/// One role's keys before and after a ceremony.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleKeyTable {
    /// Role name (top-level, or "NAME (delegated by targets)").
    pub role: String,
    /// Threshold before the ceremony (`None`: the role did not exist).
    pub threshold_before: Option<u64>,
    /// Threshold after it (`None`: the role is gone).
    pub threshold_after: Option<u64>,
    /// Keys of the role before or after.
    pub keys: Vec<KeyRow>,
}

/// One key of a role, before and after a ceremony.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRow {
    /// Key id.
    pub keyid: String,
    /// Signature scheme.
    pub scheme: String,
    /// Keyholder who owns it (`x-tuf-on-ci-keyowner`), when recorded.
    pub owner: Option<String>,
    /// Listed for the role before.
    pub before: bool,
    /// Listed for the role after.
    pub after: bool,
}

impl Engine {
    /// What was loaded, in one sentence for the room once the load step is recorded: each
    /// loaded role's version, each top-level role's threshold and keyholders, and the expiry
    /// dates (the load step promises to show the current keys, thresholds and expiry dates;
    /// the review shows them again beside the new ones, key by key). `None` before a load.
    pub fn loaded_summary(&self) -> Option<String> {
        let (root, targets) = self.current.as_ref()?;
        let r = root.signed();
        let roles: Vec<String> = RoleType::ALL
            .iter()
            .map(|ty| {
                let role = r.role(*ty);
                let owners: Vec<String> = role
                    .keyids
                    .iter()
                    .map(|id| match r.key(id).and_then(key_owner) {
                        Some(o) => show(o),
                        None => format!("key {}", show(&id.0.chars().take(16).collect::<String>())),
                    })
                    .collect();
                format!(
                    "{ty} {} of {} ({})",
                    role.threshold,
                    role.keyids.len(),
                    owners.join(", ")
                )
            })
            .collect();
        let mut out = format!(
            "root v{}, expires {}; thresholds: {}",
            r.common.version,
            show(&r.common.expires.raw),
            roles.join("; ")
        );
        if let Some(t) = targets {
            let t = t.signed();
            out.push_str(&format!(
                "; targets v{}, expires {}",
                t.common.version,
                show(&t.common.expires.raw)
            ));
        }
        Some(out)
    }

    /// Every role's keys before this ceremony (the loaded metadata) and after it (the
    /// proposal, or the loaded metadata for what it does not change): the auditor's table.
    pub fn key_table(&self) -> Vec<RoleKeyTable> {
        if self.is_tuf_on_ci() {
            return self.tuf_on_ci_key_table();
        }
        let before_root = self.current.as_ref().map(|(r, _)| r.signed());
        let after_root = self
            .proposal
            .as_ref()
            .and_then(|p| p.root.as_ref())
            .map(|r| r.signed())
            .or(before_root);
        let before_targets = self
            .current
            .as_ref()
            .and_then(|(_, t)| t.as_ref())
            .map(|t| t.signed());
        let after_targets = self
            .proposal
            .as_ref()
            .and_then(|p| p.targets.as_ref())
            .map(|t| t.signed())
            .or(before_targets);
        key_table_of(before_root, after_root, before_targets, after_targets)
    }

    /// The review as lines people read: for each role the version and expiry change, thresholds,
    /// and every key added or removed with its type, owner and key id (the diff against the
    /// current metadata; for a bootstrap, everything is new).
    pub fn review_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Some(p) = &self.proposal else {
            return out;
        };
        if self.is_tuf_on_ci() {
            return self.tuf_on_ci_review_lines(p);
        }
        if self.is_rstuf_pending() {
            return self.rstuf_pending_review_lines(p);
        }
        for (role, f) in proposal_findings(p) {
            out.push(accepted_loss_line(role, &f));
        }
        out.extend(self.rstuf_settings_lines());
        if let Some(l) = &p.layout {
            match l.summary() {
                Ok(sum) => {
                    let kind = match l {
                        crate::intoto::LayoutFile::Metablock { .. } => "metablock",
                        crate::intoto::LayoutFile::Dsse { .. } => "DSSE envelope",
                    };
                    out.push(format!(
                        "in-toto layout ({kind}), expires {}, {} signature(s) so far",
                        show(&sum.expires),
                        l.signatures().len()
                    ));
                    for st in &sum.steps {
                        out.push(format!(
                            "  step \"{}\": expected command \"{}\", {} of {} functionary key(s)",
                            show(&st.name),
                            show_message(&st.expected_command),
                            st.threshold,
                            st.pubkeys.len()
                        ));
                    }
                    for (name, run) in &sum.inspections {
                        out.push(format!(
                            "  inspection \"{}\": runs \"{}\"",
                            show(name),
                            show_message(run)
                        ));
                    }
                    for (id, scheme) in &sum.keys {
                        out.push(format!("  functionary key {} ({})", show(id), show(scheme)));
                    }
                }
                Err(e) => out.push(format!("in-toto layout: {}", show_message(&e.to_string()))),
            }
            if p.targets.is_some() {
                use sha2::Digest;
                let bytes = l.to_file_bytes();
                out.push(format!(
                    "targets gets {}: the signed layout, {} bytes, sha256 {}",
                    self.layout_target(),
                    bytes.len(),
                    hex::encode(sha2::Sha256::digest(&bytes))
                ));
            }
        }
        // A key is named by its key id everywhere the room reads it (the review, the signing
        // screens, the seal): one identifier, no second "fingerprint"; beside it, who holds it
        // ([`key_name`]: its keyholder, or the roles an online key serves).
        let describe = |id: &KeyId, k: &Key, name: Option<KeyName>| {
            let usable = match k.public_key() {
                Ok(_) => String::new(),
                Err(e) => format!(", unusable: {}", show_message(&e.to_string())),
            };
            let name = match name {
                Some(KeyName::Keyholder(o)) => format!(", owner {o}"),
                Some(online) => format!(", {online}"),
                None => String::new(),
            };
            format!("{} ({}{name}{usable})", show(&id.0), show(&k.scheme))
        };
        // A top-level key without an owner (an online key) is named by the roles it serves in
        // `root` (before: "owner unknown" in the UI).
        let describe_in = |id: &KeyId, k: &Key, root: &Root| {
            describe(id, k, key_name(k, &online_roles(id, root)))
        };
        // A role's whole key set in one line, for a rotation's "now" and "after": each key by
        // its name and the key id's first 16 hex digits (what the room wrote down at key
        // generation), so keys replaced for the same people differ on screen (before: owners
        // only, and a targets rotation read "alice, bob, carol" before and after; an online
        // key read "key 1a2b..." where its added and removed lines named its role).
        let key_set = |ids: &[KeyId], root: &Root| {
            let names: Vec<String> = ids
                .iter()
                .map(|id| {
                    let short = show(&id.0.chars().take(16).collect::<String>());
                    match root
                        .key(id)
                        .and_then(|k| key_name(k, &online_roles(id, root)))
                    {
                        Some(name) => format!("{name} {short}"),
                        None => format!("key {short}"),
                    }
                })
                .collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        let old_root = self.current.as_ref().map(|(r, _)| r.signed());
        if let Some(r) = &p.root {
            let new = r.signed();
            match old_root {
                Some(old) => out.push(format!(
                    "root v{} -> v{}, expires {} -> {}",
                    old.common.version,
                    new.common.version,
                    show(&old.common.expires.raw),
                    show(&new.common.expires.raw)
                )),
                None => out.push(format!(
                    "root v{} (new), expires {}",
                    new.common.version,
                    show(&new.common.expires.raw)
                )),
            }
            for ty in RoleType::ALL {
                let nr = new.role(ty);
                let before = old_root.map(|o| o.role(ty));
                let thr = match before {
                    Some(o) if o.threshold != nr.threshold => {
                        format!("threshold {} -> {}", o.threshold, nr.threshold)
                    }
                    _ => format!("threshold {}", nr.threshold),
                };
                out.push(format!("  {ty}: {thr} of {} key(s)", nr.keyids.len()));
                for id in &nr.keyids {
                    if before.is_none_or(|o| !o.keyids.contains(id))
                        && let Some(k) = new.key(id)
                    {
                        out.push(format!("    + {}", describe_in(id, k, new)));
                    }
                }
                if let (Some(o), Some(old)) = (before, old_root) {
                    for id in &o.keyids {
                        if !nr.keyids.contains(id)
                            && let Some(k) = old.key(id)
                        {
                            out.push(format!("    - {}", describe_in(id, k, old)));
                        }
                    }
                    // The whole sets, not only the changes: what signs this role now and after.
                    out.push(format!("    keys now:   {}", key_set(&o.keyids, old)));
                    out.push(format!("    keys after: {}", key_set(&nr.keyids, new)));
                }
            }
        }
        if let (Some(publication), Some((_, Some(current)))) = (&self.publication, &self.current) {
            out.extend(publication.review_lines(current.signed(), self.publish_sha512()));
        }
        if let Some(t) = &p.targets {
            let new = t.signed();
            match self
                .current
                .as_ref()
                .and_then(|(_, t)| t.as_ref())
                .map(|t| t.signed())
            {
                Some(old) => out.push(format!(
                    "targets v{} -> v{}, expires {} -> {}",
                    old.common.version,
                    new.common.version,
                    show(&old.common.expires.raw),
                    show(&new.common.expires.raw)
                )),
                None => out.push(format!(
                    "targets v{} (new), expires {}",
                    new.common.version,
                    show(&new.common.expires.raw)
                )),
            }
            let before = self
                .current
                .as_ref()
                .and_then(|(_, t)| t.as_ref())
                .and_then(|t| t.signed().delegations.as_ref());
            if !self.request_sources.is_empty() {
                out.push(format!(
                    "  key requests: {} file(s); SHA-256 of the request set (sha256sum *.json | sha256sum):",
                    self.request_sources.len()
                ));
                out.push(format!("    {}", request_set_digest(&self.request_sources)));
            }
            // Looked up in maps built once: a review of 10,000 projects is built in linear time.
            let before_roles: HashSet<&str> = before
                .and_then(|b| b.roles.as_ref())
                .map(|roles| roles.iter().map(|r| r.name.as_str()).collect())
                .unwrap_or_default();
            let delegated_before = |name: &str| match before {
                Some(b) if b.roles.is_some() => before_roles.contains(name),
                Some(b) => b.role_for(name).is_some(),
                None => false,
            };
            let mut request_of: HashMap<&str, usize> = HashMap::with_capacity(self.requests.len());
            for (i, q) in self.requests.iter().enumerate() {
                request_of.entry(q.project.as_str()).or_insert(i);
            }
            if let Some(roles) = new.delegations.as_ref().and_then(|d| d.roles.as_ref()) {
                for r in roles {
                    if delegated_before(&r.name) {
                        continue;
                    }
                    out.push(format!(
                        "  + delegation \"{}\": paths [{}], threshold {} of {}{}",
                        show(&r.name),
                        r.paths
                            .iter()
                            .flatten()
                            .map(|p| format!("\"{}\"", show(p)))
                            .collect::<Vec<_>>()
                            .join(", "),
                        r.role.threshold,
                        r.role.keyids.len(),
                        if r.terminating { ", terminating" } else { "" }
                    ));
                    if let Some(src) = request_of
                        .get(r.name.as_str())
                        .and_then(|&i| self.request_sources.get(i))
                    {
                        out.push(format!("      from request file {}", show(&src.file)));
                        out.push(format!("      sha256 {}", show(&src.sha256)));
                    }
                    if let Some(d) = &new.delegations {
                        for id in &r.role.keyids {
                            if let Some(k) = d.key(id) {
                                // A delegation's online key (it names where it lives)
                                // serves the delegated role.
                                let online = if k.unrecognized.contains_key(ONLINE_URI_FIELD) {
                                    vec![format!("\"{}\"", show(&r.name))]
                                } else {
                                    Vec::new()
                                };
                                let name = key_name(k, &online);
                                out.push(format!("      key {}", describe(id, k, name)));
                            }
                        }
                    }
                }
            }
            if let Some(d) = &new.delegations
                && let Some(s) = &d.succinct_roles
            {
                out.push(format!(
                    "  delegates every target to {} hash bins ({}..{})",
                    s.bin_count(),
                    show(&s.bin_name(0)),
                    show(&s.bin_name(s.bin_count() - 1))
                ));
            }
        }
        out
    }
}

/// Every role's keys before and after, from the roots and targets before and after (a missing
/// "after" is the "before"): top-level roles from the roots, delegated roles from the targets.
pub(super) fn key_table_of(
    before_root: Option<&Root>,
    after_root: Option<&Root>,
    before_targets: Option<&Targets>,
    after_targets: Option<&Targets>,
) -> Vec<RoleKeyTable> {
    let describe = |id: &KeyId, keys: &[(KeyId, Key)]| -> (String, Option<String>) {
        keys.iter()
            .find(|(k, _)| k == id)
            .map(|(_, k)| (k.scheme.clone(), key_owner(k).map(str::to_string)))
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    let mut add = |role: String,
                   before: Option<(&Role, &[(KeyId, Key)])>,
                   after: Option<(&Role, &[(KeyId, Key)])>| {
        let mut ids: Vec<KeyId> = Vec::new();
        for (r, _) in [before, after].into_iter().flatten() {
            for id in &r.keyids {
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
        let keys = ids
            .into_iter()
            .map(|id| {
                let in_before = before.is_some_and(|(r, _)| r.keyids.contains(&id));
                let in_after = after.is_some_and(|(r, _)| r.keyids.contains(&id));
                let (scheme, owner) = after
                    .filter(|_| in_after)
                    .or(before)
                    .map(|(_, keys)| describe(&id, keys))
                    .unwrap_or_default();
                KeyRow {
                    keyid: id.0,
                    scheme,
                    owner,
                    before: in_before,
                    after: in_after,
                }
            })
            .collect();
        out.push(RoleKeyTable {
            role,
            threshold_before: before.map(|(r, _)| r.threshold),
            threshold_after: after.map(|(r, _)| r.threshold),
            keys,
        });
    };
    for ty in RoleType::ALL {
        add(
            ty.as_str().to_string(),
            before_root.map(|r| (r.role(ty), r.keys.as_slice())),
            after_root.map(|r| (r.role(ty), r.keys.as_slice())),
        );
    }
    // Borrowed, and looked up by name in maps built once (10,000 delegated projects).
    fn delegated(t: Option<&Targets>) -> Vec<(String, &Role, &KeyMap)> {
        let Some(d) = t.and_then(|t| t.delegations.as_ref()) else {
            return Vec::new();
        };
        let mut v: Vec<(String, &Role, &KeyMap)> = d
            .roles
            .iter()
            .flatten()
            .map(|r| (r.name.clone(), &r.role, &d.keys))
            .collect();
        if let Some(s) = &d.succinct_roles {
            v.push((format!("{}-* (hash bins)", s.name_prefix), &s.role, &d.keys));
        }
        v
    }
    let before_d = delegated(before_targets);
    let after_d = delegated(after_targets);
    let by_name = |v: &[(String, &Role, &KeyMap)]| -> HashMap<String, usize> {
        let mut m = HashMap::with_capacity(v.len());
        for (i, (n, _, _)) in v.iter().enumerate() {
            m.entry(n.clone()).or_insert(i);
        }
        m
    };
    let (before_at, after_at) = (by_name(&before_d), by_name(&after_d));
    let mut seen: HashSet<&str> = HashSet::new();
    for (n, _, _) in before_d.iter().chain(after_d.iter()) {
        if !seen.insert(n.as_str()) {
            continue;
        }
        let b = before_at.get(n).and_then(|&i| before_d.get(i));
        let a = after_at.get(n).and_then(|&i| after_d.get(i));
        add(
            format!("{n} (delegated by targets)"),
            b.map(|(_, r, k)| (*r, k.as_slice())),
            a.map(|(_, r, k)| (*r, k.as_slice())),
        );
    }
    out
}
