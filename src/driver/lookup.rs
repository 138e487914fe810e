//! What a screen shows about the tokens (the present tokens, the token holding the key a
//! keyholder signs with next, the token a keyholder signs the seal with), looked up from a copy
//! of what the lookup reads, so that it can run on a thread other than the one that owns the
//! ceremony: the terminal UI polls the tokens on a thread of its own (`tui::poller`), and a
//! token that hangs there never stops the screen or the keys.

use std::sync::Arc;

use crate::ceremony::engine::Engine;
use crate::signer::pkcs11::{TokenDesc, TokenError};
use crate::tuf::key::KeyId;

use super::error::DriverError;
use super::plan::Plan;
use super::session::{RecordedKey, Session};
use super::token_device::TokenModule;
use super::tokens::{sealing_token, token_holding};

/// A token lookup detached from its [`Session`]: the token module (shared), and copies of the
/// engine and of the plan's token names and PINs as they were when it was made. Its answers
/// are for that state of the ceremony; the caller drops those that come back after the
/// ceremony moved on.
pub struct TokenLookup {
    module: Arc<dyn TokenModule>,
    engine: Engine,
    /// Only the token names and PINs (a PIN the plan gives is used to look into a token that
    /// shows its keys after login only, as the session's own lookup does); wiped on drop.
    plan: Plan,
    /// The keys earlier ceremonies of the workspace recorded (which token each was made on).
    earlier: Vec<RecordedKey>,
}

impl std::fmt::Debug for TokenLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenLookup")
            .field("module", &self.module.name())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A lookup of the tokens as this ceremony sees them now, to run on another thread.
    pub fn token_lookup(&self) -> TokenLookup {
        TokenLookup {
            module: Arc::clone(&self.tokens),
            engine: self.engine.clone(),
            plan: Plan {
                tokens: self.plan.tokens.clone(),
                pins: self.plan.pins.clone(),
                ..Plan::default()
            },
            earlier: self.earlier_keys.clone(),
        }
    }
}

impl TokenLookup {
    /// The present tokens (`C_GetSlotList`, `C_GetTokenInfo`).
    pub fn tokens(&self) -> Result<Vec<TokenDesc>, TokenError> {
        self.module.tokens()
    }

    /// The present token holding the key `who` signs with under `keyid` (the session's
    /// [`Session::next_signing_token`] lookup).
    pub fn token_holding(
        &self,
        who: &str,
        keyid: &KeyId,
    ) -> Result<Option<TokenDesc>, DriverError> {
        token_holding(
            self.module.as_ref(),
            who,
            &self.plan,
            &self.engine,
            &self.earlier,
            keyid,
        )
    }

    /// The present token with which `who` signs the seal ([`Session::sealing_token`]).
    pub fn sealing_token(&self, who: &str) -> Option<TokenDesc> {
        sealing_token(
            self.module.as_ref(),
            who,
            &self.plan,
            &self.engine,
            &self.earlier,
        )
        .ok()
        .flatten()
    }
}
