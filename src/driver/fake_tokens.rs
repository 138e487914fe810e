//! TEST DOUBLE: in-memory tokens for unit tests of the driver and the terminal UI (compiled
//! for tests only; never reachable from a ceremony). It implements the driver's token seam
//! ([`TokenModule`], [`OpenToken`]) with real software Ed25519 keys
//! ([`crate::signer::software::SoftwareSigner`]), so signatures verify like a token's.
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
//! A slow device is emulated too ([`FakeTokens::hold_next_login`]): `C_Login` that does not
//! return until the test lets it, as a PIN pad waits for the keyholder at the reader and a
//! YubiHSM 2 over USB or a TPM takes seconds per operation.
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
use super::{Opened, Plan, Session, SystemClock, Workspace, shipped_script};
use crate::ceremony::engine::ParamJson;
use std::collections::BTreeMap;

/// What the double calls itself where a module path is shown.
const MODULE: &str = "fake-tokens (test double)";

/// Wrong PINs a fake token takes before it locks, unless set otherwise.
pub const DEFAULT_TRIES: u32 = 3;

struct FakeKey {
    label: String,
    id: Vec<u8>,
    seed: Zeroizing<[u8; 32]>,
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
    /// SLOW DEVICE: the next `C_Login` waits for this gate ([`FakeTokens::hold_next_login`]).
    held_login: Option<Receiver<()>>,
    keys: Vec<FakeKey>,
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

#[derive(Default)]
struct State {
    tokens: Vec<FakeToken>,
    /// Keys generated so far (to number them).
    generated: u32,
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
            held_login: None,
            keys: Vec::new(),
        });
        self
    }

    fn with<T>(&self, label: &str, f: impl FnOnce(&mut FakeToken) -> T) -> T {
        let mut st = self.lock();
        let Some(t) = st.tokens.iter_mut().find(|t| t.desc.label == label) else {
            panic!("test set-up: no fake token labelled {label}");
        };
        f(t)
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

    /// How many keys `label` holds.
    pub fn key_count(&self, label: &str) -> usize {
        self.with(label, |t| t.keys.len())
    }
}

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
        Ok(self
            .lock()
            .tokens
            .iter()
            .filter(|t| t.present)
            .map(FakeToken::described)
            .collect())
    }

    fn find_token(&self, wanted: &str) -> Result<TokenDesc, TokenError> {
        let present = self.tokens()?;
        present
            .iter()
            .find(|t| t.is_named(wanted))
            .cloned()
            .ok_or_else(|| TokenError::TokenNotFound {
                wanted: wanted.to_string(),
                module: MODULE.into(),
                present: present.iter().map(ToString::to_string).collect(),
                keyholder: None,
            })
    }

    fn open(&self, token: &TokenDesc, _rw: bool) -> Result<Box<dyn OpenToken>, TokenError> {
        let st = self.lock();
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
        match st
            .tokens
            .iter_mut()
            .find(|t| t.present && t.desc.serial == self.token.serial)
        {
            Some(t) => f(t),
            None => Err(removed(&self.token.to_string(), function)),
        }
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
            // Opened or dropped: the device answers now. A gate never opened lets go after
            // a minute, so a caller that blocks on the login fails its test instead of
            // hanging it.
            let _ = gate.recv_timeout(std::time::Duration::from_secs(60));
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
                return Ok(());
            }
            t.tries_left -= 1;
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
        let unsupported = || TokenError::Pkcs11 {
            function: "C_GenerateKeyPair".into(),
            rv: "CKR_MECHANISM_INVALID".into(),
            context: format!("{}: the test double makes Ed25519 keys only", self.token),
        };
        if alg != Algorithm::Ed25519 {
            return Err(unsupported());
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, seed.as_mut());
        let signer = SoftwareSigner::from_seed(alg, seed.as_ref()).ok_or_else(unsupported)?;
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
        self.on_token("C_GenerateKeyPair", |t| {
            t.keys.push(FakeKey {
                label,
                id,
                seed,
                key,
            });
            Ok(())
        })?;
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
                .and_then(|k| SoftwareSigner::from_seed(Algorithm::Ed25519, k.seed.as_ref()))
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
    let ws = Workspace { dir: ws_dir };
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
        values: [
            ("root_threshold", ParamJson::Integer(2)),
            ("targets_threshold", ParamJson::Integer(2)),
            ("key_type", ParamJson::Text("ed25519".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        acknowledgement: "BAG-A1234567".into(),
        pins,
        log_origin: Some("test.conclave.invalid/key-events".into()),
        ..Plan::default()
    };
    let text = shipped_script("bootstrap-root").unwrap();
    let Opened::Running(session) = Session::open_with_tokens(
        &ws,
        "bootstrap-root",
        text,
        &sys,
        plan,
        Arc::new(SystemClock),
        Box::new(fakes.clone()),
    )
    .unwrap() else {
        panic!("a new ceremony")
    };
    (tmp, *session)
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
