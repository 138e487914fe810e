//! Phase: keys generated in the keyholders' tokens, and who holds which key and may sign what.

use super::tuf_on_ci;
use super::{Engine, EngineError, Need};
use crate::ceremony::script::{Kind, ParamValue};
use crate::text::show;
use crate::tuf::canonical::Value;
use crate::tuf::key::{Key, KeyId};
use crate::tuf::metadata::{RoleType, Root, key_from_value};

/// The custom field naming a key's owner in root (the one tuf-on-ci writes, so both tools show
/// the same owners).
pub const OWNER_FIELD: &str = "x-tuf-on-ci-keyowner";

/// A keyholder's key as the ceremony writes it into root: the token's public key with its owner.
pub fn owned_key(key: &Key, keyholder: &str) -> Key {
    let mut k = key.clone();
    k.unrecognized.insert(
        OWNER_FIELD.to_string(),
        Value::String(keyholder.to_string()),
    );
    k
}

/// The owner recorded in a key object, if any.
pub fn key_owner(key: &Key) -> Option<&str> {
    key.unrecognized
        .get(OWNER_FIELD)
        .or_else(|| key.unrecognized.get(crate::tuf::rstuf::KEY_NAME_FIELD))
        .and_then(Value::as_str)
}

/// How the room names a key of a root: by its keyholder, or, for a key without one that serves
/// top-level roles other than root (an online key, imported or generated outside the
/// ceremony), by those roles. The key id stays its one identifier beside the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyName {
    /// The keyholder named in the key (rendered with `text::show`).
    Keyholder(String),
    /// The top-level roles an online key serves ("timestamp and snapshot").
    Online(String),
}

impl std::fmt::Display for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyName::Keyholder(o) => f.write_str(o),
            KeyName::Online(roles) => write!(f, "online key of {roles}"),
        }
    }
}

/// The name of `key`: its keyholder, else, when it serves `online_roles` (an online key), those
/// roles; `None` when neither: only its key id names it. The one naming of a key for the
/// review's key lines and key sets.
pub fn key_name(key: &Key, online_roles: &[String]) -> Option<KeyName> {
    if let Some(o) = key_owner(key) {
        return Some(KeyName::Keyholder(show(o)));
    }
    (!online_roles.is_empty()).then(|| KeyName::Online(online_roles.join(" and ")))
}

/// The top-level roles key `id` serves in `root` when it is an online key's (none when it
/// serves root: a root key is never online).
pub fn online_roles(id: &KeyId, root: &Root) -> Vec<String> {
    let roles: Vec<RoleType> = RoleType::ALL
        .into_iter()
        .filter(|ty| root.role(*ty).keyids.contains(id))
        .collect();
    if roles.contains(&RoleType::Root) {
        return Vec::new();
    }
    roles.iter().map(ToString::to_string).collect()
}

impl Engine {
    /// A key generated in the next keyholder's token.
    pub(super) fn on_key_generated(
        &mut self,
        keyholder: &str,
        token_serial: &str,
        token: Option<&str>,
        key: &Value,
        wrong: &dyn Fn() -> EngineError,
    ) -> Result<(), EngineError> {
        let token_id = token.unwrap_or(token_serial);
        let Need::GenerateKey {
            keyholder: expected,
            ..
        } = self.need()
        else {
            return Err(wrong());
        };
        if *keyholder != expected {
            return Err(self.policy(format!("it is {expected}'s turn, not {keyholder}'s")));
        }
        let key = key_from_value(key.clone(), "key").map_err(|e| self.policy(e.to_string()))?;
        let pk = key.public_key().map_err(|e| self.policy(e.to_string()))?;
        let material = pk.material();
        let same = |k: &Key| k.public_key().ok().map(|p| p.material()) == Some(material.clone());
        // The same key twice: someone else's token was given to this keyholder. Say
        // whose token it is, so the room hands over the right one.
        if let Some((owner, owner_token, _)) = self.generated.iter().find(|(_, _, k)| same(k)) {
            return Err(self.policy(format!(
                "token {token_id} holds the key of {owner} (generated on token {owner_token}), not a new key of {keyholder}: {keyholder}'s own token is expected"
            )));
        }
        if self.online.values().any(same) {
            return Err(self.policy(format!(
                "token {token_id} holds one of the ceremony's online keys, not a new key of {keyholder}"
            )));
        }
        if self.generated.iter().any(|(_, s, _)| s == token_id) {
            return Err(self.policy(format!(
                "token {token_id} already holds another keyholder's key"
            )));
        }
        self.generated
            .push((keyholder.to_string(), token_id.to_string(), key));
        if self.generated.len() == self.keyholders_to_generate().len() {
            self.advance();
        }
        Ok(())
    }

    /// Whose tokens get a new key in this ceremony: every keyholder at a bootstrap, the joining
    /// keyholders (`add_keyholders`) at a root rotation.
    pub(super) fn keyholders_to_generate(&self) -> Vec<String> {
        match self.script.kind {
            Kind::BootstrapRoot | Kind::RotateTargetsKeys => self.keyholders.clone(),
            Kind::RotateRootKeys => self.name_list("add_keyholders"),
            // Accepting tuf-on-ci invites: the invitees of the imported event (all present).
            Kind::SignTufOnCiEvent => self.tuf_on_ci_invitees(),
            _ => Vec::new(),
        }
    }

    /// Names from a comma-separated text parameter (one of [`NAME_LIST_PARAMS`](super::NAME_LIST_PARAMS)).
    pub(super) fn name_list(&self, param: &str) -> Vec<String> {
        match self.params.get(param) {
            Some(ParamValue::Text(t)) => t
                .split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The roles a key may sign in this ceremony: root when the new or the current root's root
    /// role names it, targets when the new root's targets role names it.
    pub fn roles_for_key(&self, keyid: &KeyId) -> Vec<String> {
        let mut roles = Vec::new();
        let Some(p) = &self.proposal else {
            return roles;
        };
        if self.is_tuf_on_ci() {
            return tuf_on_ci::roles_for_key(p, keyid);
        }
        let new_root = p.root.as_ref().map(|r| r.signed());
        let old_root = self.current.as_ref().map(|(r, _)| r.signed());
        let names =
            |r: Option<&Root>, ty: RoleType| r.is_some_and(|r| r.role(ty).keyids.contains(keyid));
        if p.root.is_some() && (names(new_root, RoleType::Root) || names(old_root, RoleType::Root))
        {
            roles.push("root".to_string());
        }
        if p.targets.is_some() && names(new_root.or(old_root), RoleType::Targets) {
            roles.push("targets".to_string());
        }
        if p.layout.is_some() && p.targets.is_none() && names(old_root, RoleType::Targets) {
            roles.push("layout".to_string());
        }
        roles
    }

    /// Whether the root in force after this ceremony (the proposal's, else the loaded one)
    /// lists `keyid` for the root role.
    pub fn is_root_key_after(&self, keyid: &KeyId) -> bool {
        let (new_root, old_root) = self.roots();
        new_root
            .or(old_root)
            .is_some_and(|r| r.role(RoleType::Root).keyids.contains(keyid))
    }

    /// The key id under which the proposal's new root or the current root lists the key with
    /// this material (a token's public key), if either does.
    pub fn key_for_material(&self, material: &[u8]) -> Option<KeyId> {
        self.key_ids_for_material(material).into_iter().next()
    }

    /// Every key id under which the proposal's new root, the current root (or, signing a
    /// tuf-on-ci event, a changed role's delegator) lists the key with this material: a token
    /// key may be listed under several (a key id hashes the whole key, owner field included).
    pub fn key_ids_for_material(&self, material: &[u8]) -> Vec<KeyId> {
        let mut ids = self.tuf_on_ci_key_ids(material);
        let (new_root, old_root) = self.roots();
        for r in [new_root, old_root].into_iter().flatten() {
            for (id, k) in &r.keys {
                if k.public_key().is_ok_and(|p| p.material() == material) && !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
        ids
    }

    /// The key ids of a keyholder's keys in this ceremony: keys generated for them here and keys
    /// the new or the current root lists with them as owner.
    /// Every key of a keyholder the ceremony knows: generated here, or owned in the new or the
    /// current root.
    pub fn keyholder_all_key_ids(&self, who: &str) -> Vec<KeyId> {
        self.keyholder_keys(who)
    }

    pub(super) fn keyholder_keys(&self, who: &str) -> Vec<KeyId> {
        if self.is_tuf_on_ci() {
            return self.tuf_on_ci_keyholder_keys(who);
        }
        let mut ids: Vec<KeyId> = self
            .generated
            .iter()
            .filter(|(k, _, _)| k == who)
            .map(|(k, _, key)| self.owned(key, k).key_id())
            .collect();
        let (new_root, old_root) = self.roots();
        for root in [new_root, old_root].into_iter().flatten() {
            for (id, k) in &root.keys {
                if key_owner(k) == Some(who) && !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
        ids
    }

    /// The keys of a keyholder that take part in this ceremony (listed for a role being signed).
    pub fn keyholder_key_ids(&self, who: &str) -> Vec<KeyId> {
        self.keyholder_keys(who)
            .into_iter()
            .filter(|id| !self.roles_for_key(id).is_empty())
            .collect()
    }

    /// What a keyholder still has to sign: (key id, role) pairs their keys may sign and have not.
    pub fn roles_left(&self, who: &str) -> Vec<(KeyId, String)> {
        let Some(p) = &self.proposal else {
            return Vec::new();
        };
        if self.is_tuf_on_ci() {
            return self.tuf_on_ci_roles_left(p, who);
        }
        // RSTUF's pending root arrives with signatures from the connected side: only those
        // that verify (by the trusted root's root keys or its own) count as given; a key whose
        // signature there is invalid signs again.
        let rstuf_counted = if self.is_rstuf_pending() {
            self.rstuf_pending_counted(p)
        } else {
            Vec::new()
        };
        let signed = |role: &str, id: &KeyId| {
            if self.is_rstuf_pending() {
                return role == "root" && rstuf_counted.contains(id);
            }
            if role == "layout" {
                // A layout signature names the key by its plain key id.
                let plain = self
                    .current
                    .as_ref()
                    .and_then(|(r, _)| r.signed().key(id))
                    .and_then(|k| k.public_key().ok())
                    .map(|pk| Key::from_public_key(&pk).key_id());
                return p.layout.as_ref().is_some_and(|l| {
                    l.signatures()
                        .iter()
                        .any(|s| Some(&s.keyid) == plain.as_ref())
                });
            }
            let sigs = match role {
                "root" => p.root.as_ref().map(|m| &m.signatures),
                _ => p.targets.as_ref().map(|m| &m.signatures),
            };
            sigs.is_some_and(|sigs| sigs.iter().any(|s| s.keyid == *id && !s.sig.is_empty()))
        };
        let mut left = Vec::new();
        for id in self.keyholder_keys(who) {
            for role in self.roles_for_key(&id) {
                if !signed(&role, &id) {
                    left.push((id.clone(), role));
                }
            }
        }
        left
    }

    /// Whether a keyholder holds a key that may sign in this ceremony: a key generated for them
    /// here, or a key root lists with them as owner. When no key names an owner (metadata made
    /// by another tool), every keyholder is asked.
    pub(super) fn keyholder_may_sign(&self, who: &str) -> bool {
        if self.is_tuf_on_ci() {
            return !self.keyholder_key_ids(who).is_empty();
        }
        if self.is_rstuf_pending() {
            return !self.roles_left(who).is_empty();
        }
        if self.generated.iter().any(|(k, _, _)| k == who) {
            return true;
        }
        let (new_root, old_root) = self.roots();
        let mut owners_known = false;
        for root in [new_root, old_root].into_iter().flatten() {
            for (id, k) in &root.keys {
                if let Some(owner) = key_owner(k) {
                    owners_known = true;
                    if owner == who && !self.roles_for_key(id).is_empty() {
                        return true;
                    }
                }
            }
        }
        !owners_known
    }
}
