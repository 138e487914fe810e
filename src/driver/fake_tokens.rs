//! TEST DOUBLE: in-memory tokens for unit tests of the driver and the terminal UI (compiled
//! for tests only; never reachable from a ceremony). It implements the driver's token seam
//! ([`TokenModule`], [`OpenToken`]) with real software Ed25519, ECDSA P-256 and ECDSA P-384
//! keys ([`crate::signer::software::SoftwareSigner`]: the `ed25519-dalek`, `p256` and `p384`
//! crates the project signs and verifies with), so signatures verify like a token's (ECDSA
//! signatures come DER-encoded, as [`crate::signer::pkcs11`] hands them on after converting
//! the token's raw r||s).
//!
//! It follows the PKCS#11 v2.40 behaviour SoftHSM2 and hardware tokens show at the edges the
//! ceremony decides on: `C_Login` with a wrong PIN returns `CKR_PIN_INCORRECT` and sets
//! `CKF_USER_PIN_COUNT_LOW` (and `CKF_USER_PIN_FINAL_TRY` before the last try); when the tries
//! run out the token sets `CKF_USER_PIN_LOCKED` and `C_Login` returns `CKR_PIN_LOCKED` (as a
//! YubiHSM 2 or smart card does; SoftHSM2 itself never locks); a token taken out answers
//! `CKR_DEVICE_REMOVED` to every call on an open session and is missing from the slot list;
//! public key objects are listed without login, generating and signing need it
//! (`CKR_USER_NOT_LOGGED_IN`). PIV slots are not emulated.
//!
//! A token added with [`FakeTokens::add_yubihsm`] (or flagged with
//! [`FakeTokens::hide_keys_until_login`]) follows Yubico's `yubihsm_pkcs11` (yubihsm-shell,
//! `pkcs11/yubihsm_pkcs11.c`, `C_FindObjectsInit`: "we're lying about the operation being
//! successful" on a session that has not logged in): before `C_Login` every object search finds
//! nothing, so the token shows no key at all; after `C_Login` on the session its keys are
//! listed as usual. Such a token is labelled "YubiHSM" like every YubiHSM 2 (keyholders' tokens
//! are told apart by serial), as the device profile `yubihsm` of the tests does over a real
//! module. Login state is kept per session (a real module keeps it per token for the
//! application; the driver logs in on each session it uses, so the difference does not show).
//!
//! A slow device is emulated too ([`FakeTokens::hold_next_login`]): `C_Login` that does not
//! return until the test lets it, as a PIN pad waits for the keyholder at the reader and a
//! YubiHSM 2 over USB or a TPM takes seconds per operation. Likewise `C_GenerateKeyPair`
//! ([`FakeTokens::hold_next_generation`]: the pair is on the token, the answer has not come
//! back yet) and a stuck module ([`FakeTokens::hold_next_listing`]: `C_GetSlotList` that does
//! not return, as yubihsm_pkcs11 waiting for a connector that times out, or tpm2-pkcs11 behind
//! a stuck resource manager).
//!
//! A [`FakeTokens`] is a shared handle: a test keeps a clone to take a token out, put it back
//! or lock it while a session uses another clone.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use zeroize::Zeroizing;

use crate::signer::pkcs11::{
    EdParams, GeneratedKey, Pin, PinTries, PivSlot, TokenDesc, TokenError, TokenKey,
};
use crate::signer::software::SoftwareSigner;
use crate::signer::{Signer, SignerError};
use crate::tuf::key::{Algorithm, Key};

use super::token_device::{OpenToken, TokenModule, TokenSigner};
use super::{Opened, Plan, Session, Workspace, shipped_script};
use crate::ceremony::engine::ParamJson;
use std::collections::BTreeMap;

/// What the double calls itself where a module path is shown.
const MODULE: &str = "fake-tokens (test double)";

/// Wrong PINs a fake token takes before it locks, unless set otherwise.
pub const DEFAULT_TRIES: u32 = 3;

struct FakeKey {
    label: String,
    id: Vec<u8>,
    alg: Algorithm,
    /// The private scalar's seed (32 bytes used for Ed25519 and P-256, 48 for P-384).
    seed: Zeroizing<[u8; 48]>,
    key: Key,
}

struct FakeToken {
    desc: TokenDesc,
    pin: Zeroizing<String>,
    tries_left: u32,
    max_tries: u32,
    present: bool,
    /// Taken out by the keyholder while the next `C_Sign` runs.
    pull_at_sign: bool,
    /// Objects are found only after `C_Login` (yubihsm_pkcs11).
    hides_keys_until_login: bool,
    /// `C_Login` calls with the right PIN and with a wrong one.
    logins: PinAttempts,
    /// SLOW DEVICE: the next `C_Login` waits for this gate ([`FakeTokens::hold_next_login`]).
    held_login: Option<Receiver<()>>,
    /// SLOW DEVICE: the next `C_GenerateKeyPair` answers when this gate opens
    /// ([`FakeTokens::hold_next_generation`]).
    held_generation: Option<Receiver<()>>,
    keys: Vec<FakeKey>,
}

/// How often a fake token was given its PIN: right and wrong (a wrong PIN spends one of the
/// token's tries, whoever typed it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PinAttempts {
    /// `C_Login` with the token's PIN.
    pub right: u32,
    /// `C_Login` with another PIN.
    pub wrong: u32,
}

impl FakeToken {
    fn flags(&self) -> PinTries {
        PinTries {
            count_low: self.tries_left < self.max_tries,
            final_try: self.tries_left == 1,
            locked: self.tries_left == 0,
            shared_lockout: None,
        }
    }

    fn described(&self) -> TokenDesc {
        let mut d = self.desc.clone();
        d.pin = self.flags();
        d
    }
}

/// Note `function` called if the watched thread calls it ([`FakeTokens::watch_thread`]).
fn note(st: &mut State, function: &str) {
    if let Some((thread, calls)) = &mut st.watched
        && *thread == std::thread::current().id()
    {
        calls.push(function.to_string());
    }
}

#[derive(Default)]
struct State {
    tokens: Vec<FakeToken>,
    /// Keys generated so far (to number them).
    generated: u32,
    /// STUCK MODULE: the next token listing waits for this gate
    /// ([`FakeTokens::hold_next_listing`]).
    held_listing: Option<Receiver<()>>,
    /// STUCK CLOSE: the next signer's session close waits for this gate
    /// ([`FakeTokens::hold_next_close`]).
    held_close: Option<Receiver<()>>,
    /// Signers' sessions closed so far ([`FakeTokens::sessions_closed`]).
    closed: u32,
    /// Calls waiting at a gate now.
    waiting: u32,
    /// A thread no token call should come from (the terminal UI's), and the calls that came
    /// from it ([`FakeTokens::watch_thread`]).
    watched: Option<(std::thread::ThreadId, Vec<String>)>,
}

/// TEST DOUBLE: a set of in-memory tokens (see the module documentation).
#[derive(Clone, Default)]
pub struct FakeTokens {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeTokens (test double)")
    }
}

fn removed(token: &str, function: &str) -> TokenError {
    TokenError::TokenRemoved {
        token: token.to_string(),
        function: function.to_string(),
        rv: "CKR_DEVICE_REMOVED".into(),
    }
}

fn not_logged_in(token: &str, function: &str) -> TokenError {
    TokenError::Pkcs11 {
        function: function.to_string(),
        rv: "CKR_USER_NOT_LOGGED_IN".into(),
        context: token.to_string(),
    }
}

impl FakeTokens {
    /// No tokens yet.
    pub fn new() -> FakeTokens {
        FakeTokens::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Add a present, initialised token `label` (serial `serial`) whose user PIN is `pin`,
    /// taking [`DEFAULT_TRIES`] wrong PINs before it locks.
    pub fn add(&self, label: &str, serial: &str, pin: &str) -> &Self {
        let mut desc = TokenDesc::example(label, serial);
        desc.manufacturer = "Conclave test double".into();
        desc.model = "FakeToken".into();
        desc.firmware = "1.0".into();
        desc.module = MODULE.into();
        desc.pin_len = (4, 64);
        self.lock().tokens.push(FakeToken {
            desc,
            pin: Zeroizing::new(pin.to_string()),
            tries_left: DEFAULT_TRIES,
            max_tries: DEFAULT_TRIES,
            present: true,
            pull_at_sign: false,
            hides_keys_until_login: false,
            logins: PinAttempts::default(),
            held_login: None,
            held_generation: None,
            keys: Vec::new(),
        });
        self
    }

    /// Add a YubiHSM 2 as `yubihsm_pkcs11` shows it: labelled "YubiHSM", serial `serial`, user
    /// PIN `pin`, no object visible before `C_Login` (see the module documentation).
    pub fn add_yubihsm(&self, serial: &str, pin: &str) -> &Self {
        self.add(YUBIHSM_LABEL, serial, pin);
        self.hide_keys_until_login(serial);
        self
    }

    /// From now on `name` (label or serial) shows no object before `C_Login`, as
    /// `yubihsm_pkcs11` does.
    pub fn hide_keys_until_login(&self, name: &str) {
        self.with(name, |t| t.hides_keys_until_login = true);
    }

    /// The token named `name`: its serial, else its label (which must then be unique).
    fn with<T>(&self, name: &str, f: impl FnOnce(&mut FakeToken) -> T) -> T {
        let mut st = self.lock();
        let by_serial = st.tokens.iter().position(|t| t.desc.serial == name);
        let by_label: Vec<usize> = (0..st.tokens.len())
            .filter(|&i| st.tokens[i].desc.label == name)
            .collect();
        let i = match (by_serial, by_label.as_slice()) {
            (Some(i), _) => i,
            (None, [i]) => *i,
            (None, []) => panic!("test set-up: no fake token labelled or numbered {name}"),
            (None, _) => panic!("test set-up: several fake tokens labelled {name}: use a serial"),
        };
        f(&mut st.tokens[i])
    }

    /// How often `name` (label or serial) was given a right and a wrong PIN.
    pub fn pin_attempts(&self, name: &str) -> PinAttempts {
        self.with(name, |t| t.logins)
    }

    /// Set how many wrong PINs `label` takes before it locks (0: locked now).
    pub fn set_tries(&self, label: &str, tries: u32) {
        self.with(label, |t| t.tries_left = tries);
    }

    /// Take `label` out (its open sessions answer `CKR_DEVICE_REMOVED`).
    pub fn remove(&self, label: &str) {
        self.with(label, |t| t.present = false);
    }

    /// Put `label` back.
    pub fn insert(&self, label: &str) {
        self.with(label, |t| t.present = true);
    }

    /// Take `label` out during its next signature: that `C_Sign` answers
    /// `CKR_DEVICE_REMOVED` and the token stays out until [`FakeTokens::insert`].
    pub fn pull_during_next_signature(&self, label: &str) {
        self.with(label, |t| t.pull_at_sign = true);
    }

    /// SLOW DEVICE: the next `C_Login` on `label` does not return until the returned gate is
    /// opened (or dropped, or a minute passed), as a PIN pad waits for the keyholder at the reader and a YubiHSM 2
    /// over USB or a TPM takes seconds per operation. The caller meanwhile sees the token busy.
    pub fn hold_next_login(&self, label: &str) -> SlowGate {
        let (open, wait) = channel();
        self.with(label, |t| t.held_login = Some(wait));
        SlowGate(open)
    }

    /// SLOW DEVICE: the next `C_GenerateKeyPair` on `label` makes the pair on the token and
    /// then does not return until the returned gate is opened (or dropped, or a minute
    /// passed), as a YubiHSM 2 over a slow connector or a TPM answers seconds after the device
    /// made the key: a process stopped meanwhile leaves a key pair it never recorded.
    pub fn hold_next_generation(&self, label: &str) -> SlowGate {
        let (open, wait) = channel();
        self.with(label, |t| t.held_generation = Some(wait));
        SlowGate(open)
    }

    /// STUCK MODULE: the next listing of the tokens (`C_GetSlotList` and `C_GetTokenInfo`)
    /// reads the slots and then does not return until the returned gate is opened (or dropped,
    /// or a minute passed), as yubihsm_pkcs11 does while its connector times out and
    /// tpm2-pkcs11 behind a stuck resource manager: the answer, when it comes, describes the
    /// tokens as they were when asked.
    pub fn hold_next_listing(&self) -> SlowGate {
        let (open, wait) = channel();
        self.lock().held_listing = Some(wait);
        SlowGate(open)
    }

    /// STUCK CLOSE: the next close of a logged-in signer's session (`C_CloseSession`, when
    /// the signer is dropped) does not return until the returned gate is opened (or dropped,
    /// or a minute passed), as a YubiHSM 2 over USB whose connector stopped answering.
    pub fn hold_next_close(&self) -> SlowGate {
        let (open, wait) = channel();
        self.lock().held_close = Some(wait);
        SlowGate(open)
    }

    /// How many logged-in signers' sessions were closed (their `C_CloseSession` returned).
    pub fn sessions_closed(&self) -> u32 {
        self.lock().closed
    }

    /// From now on note every call (`C_GetSlotList`, `C_OpenSession`, a session's functions)
    /// made from the calling thread: the terminal UI's thread, which must make none
    /// ([`FakeTokens::calls_from_watched`]).
    pub fn watch_thread(&self) {
        self.lock().watched = Some((std::thread::current().id(), Vec::new()));
    }

    /// The calls made from the thread [`FakeTokens::watch_thread`] watches, in order.
    pub fn calls_from_watched(&self) -> Vec<String> {
        self.lock()
            .watched
            .as_ref()
            .map(|(_, calls)| calls.clone())
            .unwrap_or_default()
    }

    /// How many calls wait at a gate now ([`FakeTokens::hold_next_listing`],
    /// [`FakeTokens::hold_next_generation`], [`FakeTokens::hold_next_login`]).
    pub fn calls_waiting(&self) -> u32 {
        self.lock().waiting
    }

    /// Wait at `gate` (opened, dropped, or a minute: a caller that blocks on it fails its
    /// test instead of hanging it), counted in [`FakeTokens::calls_waiting`].
    fn wait_at(&self, gate: &Receiver<()>) {
        self.lock().waiting += 1;
        let _ = gate.recv_timeout(std::time::Duration::from_secs(60));
        self.lock().waiting -= 1;
    }

    /// Make `label` report itself as `manufacturer` `model` with firmware `fw` (as decoded
    /// from the module, see [`crate::signer::pkcs11::decode_firmware`]), with the firmware
    /// advisories Conclave's table gives such a device, as the PKCS#11 module reads them.
    pub fn set_device(&self, label: &str, manufacturer: &str, model: &str, fw: (u8, u8, u8)) {
        self.with(label, |t| {
            t.desc.manufacturer = manufacturer.into();
            t.desc.model = model.into();
            t.desc.firmware = format!("{}.{}.{}", fw.0, fw.1, fw.2);
            t.desc.advisories = crate::signer::pkcs11::advisories_for(manufacturer, model, fw);
        });
    }

    /// How many keys `name` (label or serial) holds.
    pub fn key_count(&self, name: &str) -> usize {
        self.with(name, |t| t.keys.len())
    }

    /// The public keys `name` (label or serial) holds, whether or not it shows them before
    /// login (what the test sees, not what a session sees).
    pub fn keys_of(&self, name: &str) -> Vec<Key> {
        self.with(name, |t| t.keys.iter().map(|k| k.key.clone()).collect())
    }
}

/// The label `yubihsm_pkcs11` gives every YubiHSM 2.
pub const YUBIHSM_LABEL: &str = "YubiHSM";

impl TokenModule for FakeTokens {
    fn name(&self) -> String {
        MODULE.into()
    }

    /// A new token in a free slot, as SoftHSM2's `C_InitToken` + `C_InitPIN` make one (its
    /// serial numbered here); the SO PIN is not kept (the double has no SO login).
    fn init_token(
        &self,
        label: &str,
        _so_pin: &Pin,
        user_pin: &Pin,
    ) -> Result<TokenDesc, TokenError> {
        let serial = format!("fake{:04}", self.lock().tokens.len() + 1);
        self.add(label, &serial, user_pin);
        self.find_token(&serial)
    }

    fn tokens(&self) -> Result<Vec<TokenDesc>, TokenError> {
        let (present, held) = {
            let mut st = self.lock();
            note(&mut st, "C_GetSlotList");
            let present = st
                .tokens
                .iter()
                .filter(|t| t.present)
                .map(FakeToken::described)
                .collect();
            (present, st.held_listing.take())
        };
        // A stuck module: the answer comes when let go (without holding the tokens' state).
        if let Some(gate) = held {
            self.wait_at(&gate);
        }
        Ok(present)
    }

    /// As [`crate::signer::pkcs11::Module::find_token`]: several tokens of that name
    /// (YubiHSMs, all labelled "YubiHSM") are ambiguous.
    fn find_token(&self, wanted: &str) -> Result<TokenDesc, TokenError> {
        crate::signer::pkcs11::pick_token(&self.tokens()?, wanted, MODULE, &[])
    }

    fn open(&self, token: &TokenDesc, _rw: bool) -> Result<Box<dyn OpenToken>, TokenError> {
        let mut st = self.lock();
        note(&mut st, "C_OpenSession");
        let found = st
            .tokens
            .iter()
            .find(|t| t.present && t.desc.serial == token.serial && t.desc.label == token.label);
        let Some(t) = found else {
            return Err(removed(&token.to_string(), "C_OpenSession"));
        };
        Ok(Box::new(FakeSession {
            fakes: self.clone(),
            token: t.described(),
            logged_in: std::cell::Cell::new(false),
        }))
    }
}

/// SLOW DEVICE: lets a held `C_Login` return ([`FakeTokens::hold_next_login`]).
#[derive(Debug)]
pub struct SlowGate(Sender<()>);

impl SlowGate {
    /// The device answers: the held `C_Login` goes on.
    pub fn open(self) {
        // A login that was never attempted has nobody waiting: nothing to tell.
        let _ = self.0.send(());
    }
}

/// TEST DOUBLE: a session on one fake token.
struct FakeSession {
    fakes: FakeTokens,
    token: TokenDesc,
    logged_in: std::cell::Cell<bool>,
}

impl FakeSession {
    /// The token's state, or `CKR_DEVICE_REMOVED` when it was taken out.
    fn on_token<T>(
        &self,
        function: &str,
        f: impl FnOnce(&mut FakeToken) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let mut st = self.fakes.lock();
        note(&mut st, function);
        match st
            .tokens
            .iter_mut()
            .find(|t| t.present && t.desc.serial == self.token.serial)
        {
            Some(t) => f(t),
            None => Err(removed(&self.token.to_string(), function)),
        }
    }

    /// Whether an object search finds this token's objects now (not before `C_Login` on a
    /// token that hides them, as yubihsm_pkcs11).
    fn objects_visible(&self, t: &FakeToken) -> bool {
        !t.hides_keys_until_login || self.logged_in.get()
    }

    fn require_login(&self, function: &str) -> Result<(), TokenError> {
        if self.logged_in.get() {
            Ok(())
        } else {
            Err(not_logged_in(&self.token.to_string(), function))
        }
    }
}

impl OpenToken for FakeSession {
    fn token(&self) -> &TokenDesc {
        &self.token
    }

    fn check_not_locked(&self) -> Result<(), TokenError> {
        let name = self.token.to_string();
        self.on_token("C_GetTokenInfo", |t| {
            if t.flags().locked {
                return Err(TokenError::PinLocked {
                    token: name,
                    how: "token flags say CKF_USER_PIN_LOCKED".into(),
                });
            }
            Ok(())
        })
    }

    fn login(&self, pin: &Pin) -> Result<(), TokenError> {
        let name = self.token.to_string();
        // A slow device: the call waits (without holding the tokens' state) until let go.
        let held = self
            .fakes
            .lock()
            .tokens
            .iter_mut()
            .find(|t| t.desc.serial == self.token.serial)
            .and_then(|t| t.held_login.take());
        if let Some(gate) = held {
            // Opened or dropped: the device answers now.
            self.fakes.wait_at(&gate);
        }
        let ok = self.on_token("C_Login", |t| {
            if t.tries_left == 0 {
                return Err(TokenError::PinLocked {
                    token: name,
                    how: "C_Login returned CKR_PIN_LOCKED".into(),
                });
            }
            if pin.as_bytes() == t.pin.as_bytes() {
                t.tries_left = t.max_tries;
                t.logins.right += 1;
                return Ok(());
            }
            t.tries_left -= 1;
            t.logins.wrong += 1;
            Err(TokenError::WrongPin {
                token: name,
                tries: t.flags(),
            })
        });
        self.logged_in.set(ok.is_ok());
        ok
    }

    fn keys(&self) -> Result<Vec<TokenKey>, TokenError> {
        self.on_token("C_FindObjects", |t| {
            if !self.objects_visible(t) {
                return Ok(Vec::new());
            }
            Ok(t.keys
                .iter()
                .map(|k| TokenKey {
                    label: k.label.clone(),
                    id: k.id.clone(),
                    public: k.key.public_key().map_err(|e| e.to_string()),
                })
                .collect())
        })
    }

    /// The double holds no certificate objects.
    fn certificates_for(&self, _id: &[u8]) -> Result<Vec<(String, Vec<u8>)>, TokenError> {
        self.on_token("C_FindObjects", |_| Ok(Vec::new()))
    }

    fn objects_with_id_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, String)>, TokenError> {
        self.on_token("C_FindObjects", |t| {
            if !self.objects_visible(t) {
                return Ok(Vec::new());
            }
            Ok(t.keys
                .iter()
                .filter(|k| k.id.starts_with(prefix))
                .flat_map(|k| {
                    [
                        (k.id.clone(), format!("public key \"{}\"", k.label)),
                        (k.id.clone(), format!("private key \"{}\"", k.label)),
                    ]
                })
                .collect())
        })
    }

    fn destroy_id(&self, id: &[u8]) -> Result<usize, TokenError> {
        self.require_login("C_DestroyObject")?;
        self.on_token("C_DestroyObject", |t| {
            let before = t.keys.len();
            t.keys.retain(|k| k.id != id);
            Ok(2 * (before - t.keys.len()))
        })
    }

    fn generate(
        &self,
        alg: Algorithm,
        label: &str,
        id: Option<Vec<u8>>,
        _ed_params: EdParams,
    ) -> Result<GeneratedKey, TokenError> {
        self.require_login("C_GenerateKeyPair")?;
        if !matches!(
            alg,
            Algorithm::Ed25519 | Algorithm::EcdsaP256 | Algorithm::EcdsaP384
        ) {
            return Err(TokenError::Pkcs11 {
                function: "C_GenerateKeyPair".into(),
                rv: "CKR_MECHANISM_INVALID".into(),
                context: format!(
                    "{}: the test double makes Ed25519, ECDSA P-256 and P-384 keys only",
                    self.token
                ),
            });
        }
        // A seed that is no valid scalar (all but impossible) is drawn again.
        let mut seed = Zeroizing::new([0u8; 48]);
        let signer = loop {
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, seed.as_mut());
            if let Some(s) = SoftwareSigner::from_seed(alg, seed.as_ref()) {
                break s;
            }
        };
        let key = signer.key().clone();
        let public = key.public_key().map_err(|e| TokenError::Pkcs11 {
            function: "C_GetAttributeValue".into(),
            rv: "CKR_GENERAL_ERROR".into(),
            context: e.to_string(),
        })?;
        let label = label.to_string();
        let id = id.unwrap_or_else(|| {
            let mut st = self.fakes.lock();
            st.generated += 1;
            st.generated.to_be_bytes().to_vec()
        });
        let generated = GeneratedKey {
            label: label.clone(),
            id: id.clone(),
            public,
            key: key.clone(),
            ec_params: Vec::new(),
        };
        let held = self.on_token("C_GenerateKeyPair", |t| {
            t.keys.push(FakeKey {
                label,
                id,
                alg,
                seed,
                key,
            });
            Ok(t.held_generation.take())
        })?;
        // A slow device: the pair is made; the answer comes when let go.
        if let Some(gate) = held {
            self.fakes.wait_at(&gate);
        }
        Ok(generated)
    }

    fn check_piv_slot_free(&self, _slot: PivSlot) -> Result<(), TokenError> {
        Err(no_piv(&self.token))
    }

    fn generate_piv(
        &self,
        _alg: Algorithm,
        _slot: PivSlot,
        _management_key: &Pin,
        _pin: &Pin,
        _practice: bool,
    ) -> Result<GeneratedKey, TokenError> {
        Err(no_piv(&self.token))
    }

    fn signer(self: Box<Self>, key: &TokenKey) -> Result<TokenSigner, TokenError> {
        self.require_login("C_SignInit")?;
        let inner = self.on_token("C_SignInit", |t| {
            t.keys
                .iter()
                .find(|k| k.id == key.id)
                .and_then(|k| SoftwareSigner::from_seed(k.alg, k.seed.as_ref()))
                .ok_or_else(|| TokenError::Pkcs11 {
                    function: "C_SignInit".into(),
                    rv: "CKR_KEY_HANDLE_INVALID".into(),
                    context: format!("{}: no key {}", self.token, key.describe()),
                })
        })?;
        Ok(Box::new(FakeSigner {
            session: *self,
            inner,
        }))
    }
}

fn no_piv(token: &TokenDesc) -> TokenError {
    TokenError::Pkcs11 {
        function: "C_GenerateKeyPair".into(),
        rv: "CKR_FUNCTION_NOT_SUPPORTED".into(),
        context: format!("{token}: the test double has no PIV slots"),
    }
}

/// TEST DOUBLE: a fake token's key, logged in; signing fails with `CKR_DEVICE_REMOVED` while
/// the token is out.
struct FakeSigner {
    session: FakeSession,
    inner: SoftwareSigner,
}

impl Signer for FakeSigner {
    fn key(&self) -> &Key {
        self.inner.key()
    }

    fn sign_raw(&mut self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        let name = self.session.token.to_string();
        self.session
            .on_token("C_Sign", |t| {
                if t.pull_at_sign {
                    t.pull_at_sign = false;
                    t.present = false;
                    return Err(removed(&name, "C_Sign"));
                }
                Ok(())
            })
            .map_err(|e| SignerError::Token(Box::new(e)))?;
        self.inner.sign_raw(msg)
    }
}

/// Dropping a signer closes its session (`C_CloseSession`: a token call, noted from a
/// watched thread; held by [`FakeTokens::hold_next_close`]).
impl Drop for FakeSigner {
    fn drop(&mut self) {
        let held = {
            let mut st = self.session.fakes.lock();
            note(&mut st, "C_CloseSession");
            st.held_close.take()
        };
        if let Some(gate) = held {
            self.session.fakes.wait_at(&gate);
        }
        self.session.fakes.lock().closed += 1;
    }
}

/// The keyholders of [`bootstrap_on_fakes`].
pub const KEYHOLDERS: [&str; 3] = ["alice", "bob", "carol"];

/// The PIN of `who`'s fake token in [`bootstrap_on_fakes`].
pub fn pin_of(who: &str) -> String {
    format!("{who}-pin-1234")
}

/// A practice 2-of-3 bootstrap-root opened on fake tokens labelled after the keyholders
/// (added to `fakes`), in a new temporary workspace. With `planned_pins` the plan holds the
/// PINs (for steps answered by the driver).
pub fn bootstrap_on_fakes(fakes: &FakeTokens, planned_pins: bool) -> (tempfile::TempDir, Session) {
    for (i, who) in KEYHOLDERS.iter().enumerate() {
        fakes.add(who, &format!("100{i}"), &pin_of(who));
    }
    open_bootstrap(fakes, planned_pins, "ed25519", BTreeMap::new())
}

/// The serial of `who`'s YubiHSM in [`bootstrap_on_yubihsms`].
pub fn yubihsm_serial_of(who: &str) -> String {
    let i = KEYHOLDERS
        .iter()
        .position(|k| *k == who)
        .unwrap_or(KEYHOLDERS.len());
    format!("0{}", 2_000_001 + i)
}

/// [`bootstrap_on_fakes`] on YubiHSM 2s as `yubihsm_pkcs11` shows them (every one labelled
/// "YubiHSM", no key visible before login, see [`FakeTokens::add_yubihsm`]), one per keyholder
/// with serial [`yubihsm_serial_of`]; `name_tokens`: the plan names each keyholder's token by
/// its serial (as `[tokens]` in an answers file), else the room assigns them in the ceremony.
/// Keys of type `key_type`.
pub fn bootstrap_on_yubihsms(
    fakes: &FakeTokens,
    key_type: &str,
    name_tokens: bool,
) -> (tempfile::TempDir, Session) {
    let mut tokens = BTreeMap::new();
    for who in KEYHOLDERS {
        fakes.add_yubihsm(&yubihsm_serial_of(who), &pin_of(who));
        if name_tokens {
            tokens.insert(who.to_string(), yubihsm_serial_of(who));
        }
    }
    open_bootstrap(fakes, false, key_type, tokens)
}

/// A practice 2-of-3 bootstrap-root with keys of `key_type` on the tokens already in `fakes`,
/// the plan naming the keyholders' tokens as `tokens` says.
pub fn open_bootstrap(
    fakes: &FakeTokens,
    planned_pins: bool,
    key_type: &str,
    tokens: BTreeMap<String, String>,
) -> (tempfile::TempDir, Session) {
    let tmp = tempfile::tempdir().unwrap();
    let ws_dir = tmp.path().join("ws");
    std::fs::create_dir_all(ws_dir.join("input")).unwrap();
    let online = |seed: u8| {
        crate::signer::software::SoftwareSigner::from_seed(
            crate::tuf::key::Algorithm::Ed25519,
            &[seed; 32],
        )
        .unwrap()
        .key()
        .to_value()
        .to_pretty_json()
    };
    std::fs::write(
        ws_dir.join("input/online-keys.json"),
        format!(
            "{{\"snapshot\": {}, \"timestamp\": {}}}",
            online(1),
            online(2)
        ),
    )
    .unwrap();
    let mut values = vec![
        ("root_threshold", ParamJson::Integer(2)),
        ("targets_threshold", ParamJson::Integer(2)),
    ];
    // Empty: the plan leaves the key type at the script's default.
    if !key_type.is_empty() {
        values.push(("key_type", ParamJson::Text(key_type.into())));
    }
    let session = open_on(fakes, &tmp, "bootstrap-root", &values, planned_pins, tokens);
    (tmp, session)
}

/// A practice ceremony `script` (shipped) with parameters `values`, opened on the fake tokens
/// in the workspace `tmp/ws` (made by [`open_bootstrap`]), keyholders [`KEYHOLDERS`]; the plan
/// names the keyholders' tokens as `tokens` says, and holds the PINs if `planned_pins`.
pub fn open_on(
    fakes: &FakeTokens,
    tmp: &tempfile::TempDir,
    script: &str,
    values: &[(&str, ParamJson)],
    planned_pins: bool,
    tokens: BTreeMap<String, String>,
) -> Session {
    let Opened::Running(session) = opened_on(
        fakes,
        tmp,
        script,
        values,
        planned_pins,
        tokens,
        crate::driver::Start::Continue,
    )
    .unwrap() else {
        panic!("a new ceremony")
    };
    *session
}

/// [`open_on`] as [`Session::open`] answers it, `start` saying whether a new ceremony is asked
/// for (`--new`).
pub fn opened_on(
    fakes: &FakeTokens,
    tmp: &tempfile::TempDir,
    script: &str,
    values: &[(&str, ParamJson)],
    planned_pins: bool,
    tokens: BTreeMap<String, String>,
    start: crate::driver::Start,
) -> Result<Opened, crate::driver::DriverError> {
    let ws = Workspace {
        dir: tmp.path().join("ws"),
    };
    let sys = tmp.path().join("sys");
    std::fs::create_dir_all(&sys).unwrap();
    let pins: BTreeMap<String, Zeroizing<String>> = if planned_pins {
        KEYHOLDERS
            .iter()
            .map(|w| (w.to_string(), Zeroizing::new(pin_of(w))))
            .collect()
    } else {
        BTreeMap::new()
    };
    let plan = Plan {
        practice: true,
        administrator: "ada".into(),
        keyholders: KEYHOLDERS.iter().map(|k| k.to_string()).collect(),
        witnesses: vec!["wendy".into()],
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        acknowledgement: "BAG-A1234567".into(),
        pins,
        tokens,
        log_origin: Some("test.conclave.invalid/key-events".into()),
        ..Plan::default()
    };
    let text = shipped_script(script).unwrap();
    Session::open_with_tokens(
        &ws,
        script,
        text,
        &sys,
        plan,
        start,
        Box::new(fakes.clone()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::DriverError;

    /// The driver keeps the token's answers as values: a wrong PIN, a locked PIN and a token
    /// pulled out while it signs reach its caller as `WrongPin`, `PinLocked`, `TokenRemoved`.
    #[test]
    fn the_driver_answers_with_typed_token_errors() {
        let fakes = FakeTokens::new();
        let (_tmp, mut session) = bootstrap_on_fakes(&fakes, true);
        loop {
            let need = session.need();
            if matches!(need, crate::ceremony::engine::Need::GenerateKey { .. }) {
                break;
            }
            let (actor, event) = session.answer(need, None).unwrap();
            session.record(&actor, event).unwrap();
        }
        let wrong = Zeroizing::new("not-the-pin".to_string());
        let e = session
            .generate_key_event("alice", "ed25519", Some(&wrong), None)
            .unwrap_err();
        assert!(matches!(e, DriverError::WrongPin(_)), "{e:?}");
        fakes.set_tries("alice", 0);
        let right = Zeroizing::new(pin_of("alice"));
        let e = session
            .generate_key_event("alice", "ed25519", Some(&right), None)
            .unwrap_err();
        assert!(matches!(e, DriverError::PinLocked(_)), "{e:?}");
        fakes.set_tries("alice", DEFAULT_TRIES);
        loop {
            let need = session.need();
            if matches!(need, crate::ceremony::engine::Need::Sign { .. }) {
                break;
            }
            let (actor, event) = session.answer(need, None).unwrap();
            session.record(&actor, event).unwrap();
        }
        fakes.pull_during_next_signature("alice");
        let e = session.sign_event("alice", Some(&right)).unwrap_err();
        assert!(matches!(e, DriverError::TokenRemoved(_)), "{e:?}");
        fakes.insert("alice");
        assert!(session.sign_event("alice", Some(&right)).is_ok());
    }

    #[test]
    fn the_double_counts_pins_locks_and_goes_away_like_a_token() {
        let fakes = FakeTokens::new();
        fakes.add("alice", "1001", "alice-pin");
        let t = fakes.find_token("alice").unwrap();
        let s = fakes.open(&t, true).unwrap();
        assert!(
            s.generate(Algorithm::Ed25519, "k", None, EdParams::Auto)
                .is_err(),
            "generating needs a login"
        );
        let wrong = s.login(&Zeroizing::new("nope".into())).unwrap_err();
        assert!(matches!(wrong, TokenError::WrongPin { ref tries, .. } if tries.count_low));
        s.login(&Zeroizing::new("alice-pin".into())).unwrap();
        let made = s
            .generate(Algorithm::Ed25519, "k", Some(vec![7]), EdParams::Auto)
            .unwrap();
        let tkey = s.keys().unwrap().remove(0);
        let mut signer = s.signer(&tkey).unwrap();
        assert_eq!(signer.key(), &made.key);
        let sig = signer.sign(b"msg").unwrap();
        made.key.public_key().unwrap().verify(b"msg", &sig).unwrap();
        fakes.remove("alice");
        assert!(matches!(
            signer.sign(b"msg"),
            Err(SignerError::Token(e)) if matches!(*e, TokenError::TokenRemoved { .. })
        ));
        assert!(fakes.tokens().unwrap().is_empty());
        fakes.insert("alice");
        assert!(signer.sign(b"msg").is_ok());
        fakes.set_tries("alice", 1);
        let s = fakes.open(&t, true).unwrap();
        assert!(matches!(
            s.login(&Zeroizing::new("nope".into())),
            Err(TokenError::WrongPin { .. })
        ));
        assert!(matches!(
            s.check_not_locked(),
            Err(TokenError::PinLocked { .. })
        ));
        assert!(matches!(
            s.login(&Zeroizing::new("alice-pin".into())),
            Err(TokenError::PinLocked { .. })
        ));
    }
}

/// TEST DOUBLE: a keyholder who answers every PIN prompt with one PIN and keeps what the driver
/// asked and noted (the command line's keyholder reads the terminal: `cli::token::Terminal`).
#[derive(Debug, Default)]
pub struct Answering {
    /// The PIN given to every question.
    pub pin: String,
    /// The prompts asked, in order.
    pub asked: Vec<(super::Ask, String)>,
    /// The notes shown, in order.
    pub notes: Vec<String>,
}

impl Answering {
    /// A keyholder answering `pin`.
    pub fn new(pin: &str) -> Answering {
        Answering {
            pin: pin.to_string(),
            ..Answering::default()
        }
    }
}

impl super::Keyholder for Answering {
    fn ask(
        &mut self,
        what: super::Ask,
        _token: &TokenDesc,
        prompt: &str,
    ) -> Result<Pin, super::SigningError> {
        self.asked.push((what, prompt.to_string()));
        Ok(Zeroizing::new(self.pin.clone()))
    }

    fn note(&mut self, text: &str) {
        self.notes.push(text.to_string());
    }
}
