//! The tokens as the driver sees them: a small seam between a ceremony and the devices that
//! hold its keys. [`TokenModule`] lists the present tokens and opens one; [`OpenToken`] logs in,
//! lists, makes, removes and signs with keys. The PKCS#11 module
//! ([`crate::signer::pkcs11::Module`]) implements it for every real and practice ceremony; the
//! unit tests of the driver and the terminal UI use an in-memory test double
//! (`driver::fake_tokens`, compiled for tests only). Errors stay the token edge's typed
//! [`TokenError`]s (`WrongPin`, `PinLocked`, `TokenRemoved`...), which the driver turns into
//! [`super::DriverError`] kinds.

use crate::signer::Signer;
use crate::signer::pkcs11::{
    EdParams, GeneratedKey, Module, Pin, PivSlot, Scan, TokenDesc, TokenError, TokenKey,
    TokenSession, UnreadableSlot, hidden_until_login, pick_key,
};
use crate::tuf::key::Algorithm;

/// A signer held by a ceremony (a token's key, logged in): the seal and the key-event log
/// checkpoint are signed through it.
pub type TokenSigner = Box<dyn Signer + Send>;

/// Where the ceremony's tokens are found: the present tokens and a session on one of them.
/// `Sync`: the terminal UI lists tokens on a poller thread while the ceremony's own work runs
/// on another (it lets one of them reach the module at a time; see `tui::poller`). A PKCS#11
/// module is initialised with `CKF_OS_LOCKING_OK` and cryptoki's context may be shared between
/// threads; the sessions ([`OpenToken`]) stay with the thread that opened them.
pub trait TokenModule: Send + Sync {
    /// The module as people see it named (its file).
    fn name(&self) -> String;

    /// The present tokens, with their identity and flags.
    fn tokens(&self) -> Result<Vec<TokenDesc>, TokenError>;

    /// The present tokens, and the slots whose token could not be described (with why).
    fn scan(&self) -> Result<Scan, TokenError> {
        Ok(Scan {
            tokens: self.tokens()?,
            unreadable: Vec::new(),
        })
    }

    /// Initialise a new token in a free slot with `label`, the SO PIN and the user PIN
    /// (practice tokens only).
    fn init_token(
        &self,
        label: &str,
        so_pin: &Pin,
        user_pin: &Pin,
    ) -> Result<TokenDesc, TokenError>;

    /// The one initialised token whose label or serial number is `wanted`.
    fn find_token(&self, wanted: &str) -> Result<TokenDesc, TokenError>;

    /// A session on `token` (read-write if `rw`); not logged in.
    fn open(&self, token: &TokenDesc, rw: bool) -> Result<Box<dyn OpenToken>, TokenError>;
}

/// A session on one token.
pub trait OpenToken {
    /// The token.
    fn token(&self) -> &TokenDesc;

    /// Refuse a token whose user PIN is locked (before any PIN is asked).
    fn check_not_locked(&self) -> Result<(), TokenError>;

    /// Log in as the user: [`TokenError::WrongPin`], [`TokenError::PinLocked`] and
    /// [`TokenError::TokenRemoved`] are the answers the room acts on.
    fn login(&self, pin: &Pin) -> Result<(), TokenError>;

    /// The key pairs found through their public key objects.
    fn keys(&self) -> Result<Vec<TokenKey>, TokenError>;

    /// The key by label, or by TUF key id (full, or a unique prefix of 8+ hex digits).
    fn find_key(&self, wanted: &str) -> Result<TokenKey, TokenError> {
        pick_key(self.token(), self.keys()?, wanted)
    }

    /// Certificates the token holds for the key with this `CKA_ID` (label, DER).
    fn certificates_for(&self, id: &[u8]) -> Result<Vec<(String, Vec<u8>)>, TokenError>;

    /// Every object whose `CKA_ID` starts with `prefix`: (id, what it is).
    fn objects_with_id_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, String)>, TokenError>;

    /// Remove every object with this `CKA_ID`; how many were removed.
    fn destroy_id(&self, id: &[u8]) -> Result<usize, TokenError>;

    /// Generate a key pair (label, id) and read its public key back.
    fn generate(
        &self,
        alg: Algorithm,
        label: &str,
        id: Option<Vec<u8>>,
        ed_params: EdParams,
    ) -> Result<GeneratedKey, TokenError>;

    /// Refuse a PIV slot that holds a key already (a YubiKey through ykcs11 only).
    fn check_piv_slot_free(&self, slot: PivSlot) -> Result<(), TokenError>;

    /// Generate a key pair in a PIV slot after a management-key login (ykcs11 only).
    fn generate_piv(
        &self,
        alg: Algorithm,
        slot: PivSlot,
        management_key: &Pin,
        pin: &Pin,
        practice: bool,
    ) -> Result<GeneratedKey, TokenError>;

    /// A signer for `key`, taking the session over.
    fn signer(self: Box<Self>, key: &TokenKey) -> Result<TokenSigner, TokenError>;
}

impl TokenModule for Module {
    fn name(&self) -> String {
        self.path().display().to_string()
    }

    fn tokens(&self) -> Result<Vec<TokenDesc>, TokenError> {
        Module::tokens(self)
    }

    fn scan(&self) -> Result<Scan, TokenError> {
        Module::scan(self)
    }

    fn init_token(
        &self,
        label: &str,
        so_pin: &Pin,
        user_pin: &Pin,
    ) -> Result<TokenDesc, TokenError> {
        Module::init_token(self, label, so_pin, user_pin)
    }

    fn find_token(&self, wanted: &str) -> Result<TokenDesc, TokenError> {
        Module::find_token(self, wanted)
    }

    fn open(&self, token: &TokenDesc, rw: bool) -> Result<Box<dyn OpenToken>, TokenError> {
        Ok(Box::new(self.open_session(token, rw)?))
    }
}

impl OpenToken for TokenSession {
    fn token(&self) -> &TokenDesc {
        TokenSession::token(self)
    }

    fn check_not_locked(&self) -> Result<(), TokenError> {
        TokenSession::check_not_locked(self)
    }

    fn login(&self, pin: &Pin) -> Result<(), TokenError> {
        TokenSession::login(self, pin)
    }

    fn keys(&self) -> Result<Vec<TokenKey>, TokenError> {
        TokenSession::keys(self)
    }

    fn certificates_for(&self, id: &[u8]) -> Result<Vec<(String, Vec<u8>)>, TokenError> {
        TokenSession::certificates_for(self, id)
    }

    fn objects_with_id_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, String)>, TokenError> {
        TokenSession::objects_with_id_prefix(self, prefix)
    }

    fn destroy_id(&self, id: &[u8]) -> Result<usize, TokenError> {
        TokenSession::destroy_id(self, id)
    }

    fn generate(
        &self,
        alg: Algorithm,
        label: &str,
        id: Option<Vec<u8>>,
        ed_params: EdParams,
    ) -> Result<GeneratedKey, TokenError> {
        TokenSession::generate(self, alg, label, id, ed_params)
    }

    fn check_piv_slot_free(&self, slot: PivSlot) -> Result<(), TokenError> {
        TokenSession::check_piv_slot_free(self, slot)
    }

    fn generate_piv(
        &self,
        alg: Algorithm,
        slot: PivSlot,
        management_key: &Pin,
        pin: &Pin,
        practice: bool,
    ) -> Result<GeneratedKey, TokenError> {
        TokenSession::generate_piv(self, alg, slot, management_key, pin, practice)
    }

    fn signer(self: Box<Self>, key: &TokenKey) -> Result<TokenSigner, TokenError> {
        Ok(Box::new(TokenSession::signer(*self, key)?))
    }
}

/// Where [`locate_key`] found a key.
pub enum Located {
    /// On this token, seen without login.
    Found(Box<dyn OpenToken>, Box<TokenKey>),
    /// This token hides its keys until login: log in, then [`OpenToken::find_key`].
    AfterLogin(Box<dyn OpenToken>),
}

/// Where a key (by label or TUF key id) is, as far as can be seen before login: on the token
/// named by label or serial, else on the one present token that holds it. A token that requires
/// login and shows no key (`yubihsm_pkcs11` hides every object until `C_Login`) is
/// [`Located::AfterLogin`]: ask its keyholder's PIN, log in, then look the key up. When no token
/// shows the key and exactly one hides its keys, that one; several must be told apart by name.
pub fn locate_key(
    module: &dyn TokenModule,
    token: Option<&str>,
    key: &str,
) -> Result<Located, TokenError> {
    if let Some(wanted) = token {
        let t = module.find_token(wanted)?;
        let session = module.open(&t, false)?;
        return match session.find_key(key) {
            Ok(k) => Ok(Located::Found(session, Box::new(k))),
            Err(e) if hidden_until_login(&t, &e) => Ok(Located::AfterLogin(session)),
            Err(e) => Err(e),
        };
    }
    let mut hits = Vec::new();
    let mut present = Vec::new();
    let mut hidden = Vec::new();
    let scan = module.scan()?;
    for t in scan.tokens.into_iter().filter(|t| t.initialized) {
        let session = module.open(&t, false)?;
        match session.find_key(key) {
            Ok(k) => hits.push((session, k)),
            Err(e) if hidden_until_login(&t, &e) => {
                present.push(format!("none visible on {t} before login"));
                hidden.push(session);
            }
            Err(TokenError::KeyNotFound { .. }) => {
                present.extend(
                    session
                        .keys()?
                        .iter()
                        .map(|k| format!("{} on {t}", k.describe())),
                );
            }
            Err(e) => return Err(e),
        }
    }
    present.extend(scan.unreadable.iter().map(UnreadableSlot::to_string));
    if hits.is_empty() && hidden.len() == 1 {
        return Ok(Located::AfterLogin(hidden.remove(0)));
    }
    match hits.len() {
        1 => {
            let (s, k) = hits.remove(0);
            Ok(Located::Found(s, Box::new(k)))
        }
        0 => Err(TokenError::NoTokenHoldsKey {
            module: module.name(),
            wanted: key.to_string(),
            present,
            keyholder: None,
        }),
        _ => Err(TokenError::AmbiguousKey {
            token: "the present tokens".into(),
            wanted: key.to_string(),
            matches: hits
                .iter()
                .map(|(s, k)| format!("{} on {}", k.describe(), s.token()))
                .collect(),
        }),
    }
}
