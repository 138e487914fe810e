//! Target lookup: which targets role is trusted for a target path, following the
//! specification's pre-order depth-first search of delegations (client workflow 5.6.7).
//!
//! Every role on the way is verified against the delegator it is reached through, at the moment
//! it is reached (never reused from an earlier search through another delegator: a "diamond"
//! where two roles delegate the same role with different keys cannot borrow trust).

use std::collections::{HashMap, HashSet};

use super::metadata::{Metadata, TargetFile, Targets};
use super::verify::{TrustedSet, VerifyError};

/// At most this many roles are visited in one search (python-tuf's `max_delegations`).
pub const MAX_DELEGATIONS: usize = 32;

/// The outcome of a target search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSearch {
    /// The role that lists the target and the entry, when found.
    pub found: Option<(String, TargetFile)>,
    /// Roles visited, in order (each verified against the role it was reached from).
    pub visited: Vec<String>,
}

impl TrustedSet {
    /// Find `target` (a target path, matched as a raw string with no normalisation) by
    /// pre-order depth-first search from `targets`, in listed delegation order: a visited role
    /// is not visited again (cycles end), a terminating delegation that matches ends the search
    /// below it, succinct hash bins route a path to exactly one bin, and at most
    /// [`MAX_DELEGATIONS`] roles are visited.
    ///
    /// `load(role)` returns the metadata bytes of a delegated role (the caller maps the role name
    /// to a file, e.g. with [`super::repository::quote_role_name`]); `targets` is taken from the
    /// trusted set when it was already verified, else loaded too. Each loaded role is verified
    /// like [`TrustedSet::verify_targets_role`] against the delegator it was reached through.
    pub fn find_target(
        &self,
        target: &str,
        load: impl FnMut(&str) -> Option<Vec<u8>>,
    ) -> Result<TargetSearch, VerifyError> {
        self.find_target_cached(target, |_| None, load)
    }

    /// [`TrustedSet::find_target`] for a client with a cache: `cached(role)` is tried first, and
    /// when there is no cached copy or it does not verify against the delegator (keys changed,
    /// a threshold raised, a copy damaged on disk), `fetch(role)` is asked once for a new one,
    /// as python-tuf's ngclient does. A cached copy that no longer verifies never blocks the
    /// search until the role's version changes.
    pub fn find_target_cached(
        &self,
        target: &str,
        mut cached: impl FnMut(&str) -> Option<Vec<u8>>,
        mut load: impl FnMut(&str) -> Option<Vec<u8>>,
    ) -> Result<TargetSearch, VerifyError> {
        self.check_snapshot_current(&format!("{target} lookup"))?;
        let mut verified: HashMap<String, Metadata<Targets>> = HashMap::new();
        let mut visited: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut stack: Vec<(String, String)> = vec![("targets".into(), "root".into())];
        while let Some((role, delegator)) = stack.pop() {
            if seen.contains(&role) {
                continue;
            }
            if seen.len() >= MAX_DELEGATIONS {
                return Err(VerifyError::Search {
                    target: target.to_string(),
                    message: format!(
                        "stopped after visiting {MAX_DELEGATIONS} roles (max_delegations); \
                         \"{role}\" and others were not searched"
                    ),
                });
            }
            let md = self.load_for_search(&role, &delegator, &verified, &mut cached, &mut load)?;
            seen.insert(role.clone());
            visited.push(role.clone());
            if let Some(tf) = md.signed().target(target) {
                return Ok(TargetSearch {
                    found: Some((role, tf.clone())),
                    visited,
                });
            }
            let mut children: Vec<(String, String)> = Vec::new();
            if let Some(d) = &md.signed().delegations {
                if let Some(roles) = &d.roles {
                    for r in roles.iter().filter(|r| r.is_delegated_path(target)) {
                        children.push((r.name.clone(), role.clone()));
                        if r.terminating {
                            stack.clear();
                            break;
                        }
                    }
                } else if let Some(s) = &d.succinct_roles {
                    // TAP 15: every bin is terminating.
                    children.push((s.bin_for_target(target), role.clone()));
                    stack.clear();
                }
            }
            verified.insert(role, md);
            stack.extend(children.into_iter().rev());
        }
        Ok(TargetSearch {
            found: None,
            visited,
        })
    }

    fn load_for_search(
        &self,
        role: &str,
        delegator: &str,
        verified: &HashMap<String, Metadata<Targets>>,
        cached: &mut impl FnMut(&str) -> Option<Vec<u8>>,
        load: &mut impl FnMut(&str) -> Option<Vec<u8>>,
    ) -> Result<Metadata<Targets>, VerifyError> {
        let file = format!("{role}.json");
        if role == "targets"
            && delegator == "root"
            && let Some(t) = self.targets("targets")
        {
            return Ok(t.clone());
        }
        let parent = if delegator == "root" {
            None
        } else {
            match verified.get(delegator) {
                Some(p) => Some(p.signed()),
                None => {
                    return Err(VerifyError::Missing {
                        file,
                        message: format!("delegating role \"{delegator}\" was not verified"),
                    });
                }
            }
        };
        if let Some(bytes) = cached(role)
            && let Ok((md, _)) = self.verify_targets_role(&file, &bytes, role, delegator, parent)
        {
            return Ok(md);
        }
        let Some(bytes) = load(role) else {
            return Err(VerifyError::Missing {
                file,
                message: format!(
                    "metadata of role \"{role}\" (delegated by {delegator}) is not available"
                ),
            });
        };
        self.verify_targets_role(&file, &bytes, role, delegator, parent)
            .map(|(md, _)| md)
    }
}
