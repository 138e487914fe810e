//! A token key opened to sign one thing outside a ceremony (`conclave sign`, `bundle export`,
//! `rstuf sign`, `tuf-on-ci sign` and `accept`, `intoto sign`, `log sign`): found through the
//! token seam ([`TokenModule`]), its public key read before any PIN, the PIN asked through the
//! [`Keyholder`] the caller chooses (the command line: the terminal or standard input; the unit
//! tests: fixed answers), then a signer. Errors stay typed ([`SigningError`]): a wrong PIN is a
//! [`TokenError::WrongPin`] value; the command line maps them to exit codes.

use zeroize::Zeroizing;

use super::module::ModuleError;
use super::token_device::{Located, OpenToken, TokenModule, TokenSigner, locate_key};
use crate::signer::pkcs11::{Pin, TokenDesc, TokenError, TokenKey};
use crate::tuf::key::PublicKey;

/// Why a signing command signed nothing.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The token layer's typed error (`WrongPin`, `PinLocked`, `TokenRemoved`, a key not found).
    #[error(transparent)]
    Token(Box<TokenError>),
    /// The PKCS#11 module could not be chosen or loaded.
    #[error(transparent)]
    Module(Box<ModuleError>),
    /// The request cannot be carried out as given (bad arguments, a PIN that cannot be read).
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The input does not allow the signature (it does not verify, no role names the key, the
    /// token's signature is bad).
    #[error("{0}")]
    Invalid(String),
}

impl From<TokenError> for SigningError {
    fn from(e: TokenError) -> Self {
        SigningError::Token(Box::new(e))
    }
}

impl From<ModuleError> for SigningError {
    fn from(e: ModuleError) -> Self {
        SigningError::Module(Box::new(e))
    }
}

/// What the driver asks a keyholder for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// The token's user PIN (never asked on a PIN pad: see [`ask_pin`]).
    Pin,
    /// A YubiKey's PIV management key.
    ManagementKey,
}

/// The person at the token, as a signing or key-generating command reaches them: asked for
/// secrets, shown notes (firmware advisories, PIN-pad and TPM notes, `--force` warnings) before
/// the PIN.
pub trait Keyholder {
    /// The secret `what` for `token`; `prompt` says who, which device and what for (it never
    /// contains a secret).
    fn ask(&mut self, what: Ask, token: &TokenDesc, prompt: &str) -> Result<Pin, SigningError>;

    /// A note the keyholder reads before the next question.
    fn note(&mut self, text: &str);
}

/// The user PIN of `token`: none on a reader with a PIN pad (the keyholder types it there: an
/// empty PIN, `C_Login` without one), else asked through `kh`; a token on a TPM first gets the
/// note that wrong PINs count toward one lockout for every token on it.
pub fn ask_pin(
    kh: &mut dyn Keyholder,
    token: &TokenDesc,
    prompt: &str,
) -> Result<Pin, SigningError> {
    if token.protected_path {
        kh.note(&token.pin_pad_note());
        return Ok(Zeroizing::new(String::new()));
    }
    if token.shares_tpm_lockout() {
        kh.note(&format!(
            "NOTE: {token} is on a TPM: wrong PINs on any of its tokens count toward one lockout, which locks every keyholder's token on it (3 in total on a TPM set up as usual)"
        ));
    }
    kh.ask(Ask::Pin, token, prompt)
}

/// Write every firmware advisory of `token` that concerns keys of `alg` as a note.
pub fn note_advisories(kh: &mut dyn Keyholder, token: &TokenDesc, alg: crate::tuf::key::Algorithm) {
    for a in token.advisories_for_alg(alg) {
        kh.note(&format!(
            "WARNING: {token} firmware {}: {a}",
            token.firmware
        ));
    }
}

/// A key on a token by label or TUF key id ([`locate_key`]: on the token named by label or
/// serial, else on whichever present token holds it), and for a token that shows its keys only
/// after login (YubiHSM 2): its PIN (the prompt says `purpose`), the login, then the key. The
/// flag says whether it logged in (then no PIN is asked again).
pub fn open_key_or_login(
    module: &dyn TokenModule,
    token: Option<&str>,
    key: &str,
    keyholder: Option<&str>,
    kh: &mut dyn Keyholder,
    purpose: &str,
) -> Result<(Box<dyn OpenToken>, TokenKey, bool), SigningError> {
    match locate_key(module, token, key).map_err(|e| e.for_keyholder(keyholder))? {
        Located::Found(session, tkey) => Ok((session, *tkey, false)),
        Located::AfterLogin(session) => {
            let t = session.token().clone();
            let holder = keyholder
                .map(|k| format!(" of keyholder {k}"))
                .unwrap_or_default();
            session.check_not_locked()?;
            let pin = ask_pin(
                kh,
                &t,
                &format!(
                    "PIN for {t}{holder} (it shows its keys only after login) to {purpose} with key \"{key}\": "
                ),
            )?;
            session.login(&pin)?;
            drop(pin);
            let tkey = session.find_key(key)?;
            Ok((session, tkey, true))
        }
    }
}

/// A key on a token, opened for one signing command: found among the token's public objects (no
/// PIN yet), or after its keyholder's PIN on a token that shows its keys only after login; with
/// its public key, so every check that needs no PIN comes before [`SigningKey::login`].
pub struct SigningKey {
    /// The session on the key's token.
    pub session: Box<dyn OpenToken>,
    /// The key.
    pub key: TokenKey,
    /// The token holding it.
    pub token: TokenDesc,
    /// The key's public key.
    pub public: PublicKey,
    /// The session is logged in already (the token showed the key only after login).
    logged_in: bool,
    /// The module, loaded for as long as the session is used.
    _module: Box<dyn TokenModule>,
}

impl SigningKey {
    /// Find the key on `module` (`purpose` goes into the PIN prompt of a token that shows its
    /// keys only after login) and take its public key; a key Conclave cannot use is refused
    /// here, before any PIN for signing.
    pub fn on(
        module: Box<dyn TokenModule>,
        token: Option<&str>,
        key: &str,
        keyholder: Option<&str>,
        kh: &mut dyn Keyholder,
        purpose: &str,
    ) -> Result<SigningKey, SigningError> {
        let (session, tkey, logged_in) =
            open_key_or_login(module.as_ref(), token, key, keyholder, kh, purpose)?;
        let token = session.token().clone();
        // A key Conclave cannot use is a device error (exit 2), as docs/hsm.md says for every
        // command that signs with a token key.
        let public = tkey
            .public
            .clone()
            .map_err(|reason| TokenError::UnsupportedKey {
                token: token.to_string(),
                label: tkey.label.clone(),
                reason,
            })?;
        Ok(SigningKey {
            session,
            key: tkey,
            token,
            public,
            logged_in,
            _module: module,
        })
    }

    /// Log in to sign, unless the session is logged in already: the lockout is checked first,
    /// then the PIN asked with `prompt` ([`ask_pin`]: none on a PIN pad).
    pub fn login(&self, kh: &mut dyn Keyholder, prompt: &str) -> Result<(), SigningError> {
        if self.logged_in {
            return Ok(());
        }
        self.session.check_not_locked()?;
        let pin = ask_pin(kh, &self.token, prompt)?;
        self.session.login(&pin)?;
        drop(pin);
        Ok(())
    }

    /// [`SigningKey::login`] with `prompt`, then the signer (the session taken over); the
    /// module stays loaded as long as the returned [`HeldSigner`].
    pub fn signer(self, kh: &mut dyn Keyholder, prompt: &str) -> Result<HeldSigner, SigningError> {
        self.login(kh, prompt)?;
        let signer = self.session.signer(&self.key)?;
        Ok(HeldSigner {
            signer,
            _module: self._module,
        })
    }
}

/// A logged-in token key's signer, with the module it needs loaded.
pub struct HeldSigner {
    /// The signer (it verifies each signature against the token's public key).
    pub signer: TokenSigner,
    /// The module, loaded for as long as the signer is used.
    _module: Box<dyn TokenModule>,
}
