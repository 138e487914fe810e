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
    EdParams, GeneratedKey, Module, Pin, PivSlot, TokenDesc, TokenError, TokenKey, TokenSession,
};
use crate::tuf::key::Algorithm;

/// A signer held by a ceremony (a token's key, logged in): the seal and the key-event log
/// checkpoint are signed through it.
pub type TokenSigner = Box<dyn Signer + Send>;

/// Where the ceremony's tokens are found: the present tokens and a session on one of them.
pub trait TokenModule: Send {
    /// The present tokens, with their identity and flags.
    fn tokens(&self) -> Result<Vec<TokenDesc>, TokenError>;

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
    fn tokens(&self) -> Result<Vec<TokenDesc>, TokenError> {
        Module::tokens(self)
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
