//! What the screen shows, as plain data: built by [`super::app::App`] from the ceremony, drawn
//! by [`super::view`]. Snapshot tests build these directly, without tokens or files.

/// The whole screen: the step header, one screen body, the input in progress and the messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewState {
    /// Ceremony title (script name) and whether it is practice.
    pub ceremony: String,
    /// A practice ceremony (practice tokens): shown in the header, always.
    pub practice: bool,
    /// "Step 7 of 15".
    pub progress: String,
    /// Who acts in this step ("administrator", "keyholder", "witness").
    pub actor: String,
    /// The step's title.
    pub title: String,
    /// The step's instructions from the script.
    pub instructions: String,
    /// The screen body.
    pub screen: Screen,
    /// A prompt in progress (confirmation, PIN, text), drawn over the body.
    pub prompt: Prompt,
    /// The last result or error, shown at the bottom.
    pub message: Option<Message>,
    /// A banner at the top (e.g. "continued an interrupted ceremony").
    pub banner: Option<String>,
    /// The key help overlay is open.
    pub help: bool,
    /// The welcome of a new ceremony (paragraphs), drawn over the first step until Enter.
    pub welcome: Option<Vec<String>>,
    /// Keys of the current screen: (key, what it does).
    pub keys: Vec<(String, String)>,
    /// A token screen's first row of meters and signers shown, when they page (PgUp PgDn).
    pub rows_scroll: usize,
    /// An animated QR frame shown over the whole screen.
    pub qr: Option<QrOverlay>,
}

/// One QR frame over the whole screen, with a status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrOverlay {
    /// The frame in half blocks.
    pub lines: Vec<String>,
    /// File, frame number, fragments, hash, keys.
    pub status: String,
}

/// A message line: what happened, or what went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// An error (red) or a result (green).
    pub error: bool,
    /// The text.
    pub text: String,
}

/// A prompt in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Prompt {
    /// None: the screen's own keys apply.
    #[default]
    None,
    /// A yes/no question for a destructive or signing action; only `y` confirms.
    Confirm {
        /// The question.
        question: String,
    },
    /// A PIN being typed, shown masked.
    Pin {
        /// Whose PIN, for which token.
        label: String,
        /// What is typed, as the masked field's label: "PIN", or "management key" for a PIV
        /// management key.
        field: String,
        /// Characters typed (only the count is shown).
        typed: usize,
        /// Practice tokens: F2 fills in the practice PIN.
        practice_hint: bool,
    },
    /// A line of text being typed.
    Text {
        /// What is typed.
        label: String,
        /// The text so far.
        value: String,
    },
}

/// A token as a keyholder sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRow {
    /// Label.
    pub label: String,
    /// Serial number.
    pub serial: String,
    /// Manufacturer and model.
    pub model: String,
    /// Flags worth a warning (PIN count low, final try, locked).
    pub flags: String,
    /// Whether it is the token expected for this keyholder.
    pub expected: bool,
}

/// Where the expected token stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenStatus {
    /// The expected token is present.
    Present,
    /// Another token is present instead ("token X inserted, expected alice's token Y").
    Wrong(String),
    /// No token present.
    Missing,
    /// Tokens cannot be listed (module error).
    Error(String),
}

/// A threshold meter: signatures counted so far against the threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meter {
    /// "root v2 (new root's keys)".
    pub label: String,
    /// Valid signatures counted.
    pub have: usize,
    /// Threshold.
    pub need: usize,
}

/// A keyholder's signing status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerRow {
    /// Keyholder.
    pub keyholder: String,
    /// "signed", "to sign: root, targets", "nothing to sign".
    pub status: String,
    /// Whether this keyholder is done.
    pub done: bool,
}

/// One digest to read aloud.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestRow {
    /// Role and version ("root v2").
    pub role: String,
    /// Hex in groups of four.
    pub hex_groups: String,
    /// The first eight bytes as PGP words (the short digest read aloud).
    pub words: String,
}

/// The screen body, one per kind of step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Screen {
    /// Nothing yet.
    #[default]
    Blank,
    /// Choose the ceremony script.
    Choose {
        /// (name, title, purpose).
        scripts: Vec<(String, String, String)>,
        /// Selected row.
        selected: usize,
        /// Where the workspace (transcript, export) will be.
        workspace: String,
    },
    /// The parameters of this ceremony.
    Parameters {
        /// (name, value, description).
        rows: Vec<(String, String, String)>,
        /// Selected row.
        selected: usize,
    },
    /// A person confirms something physical.
    Acknowledge {
        /// What to confirm.
        prompt: String,
        /// Text to type and record (e.g. the bag serial).
        record_text: bool,
        /// Text typed so far.
        text: String,
    },
    /// What the screen shows is being read from the machine (its first answer has not come).
    Checking {
        /// What is read ("Checking this machine's network interfaces and radios ...").
        what: String,
    },
    /// The air-gap self-check.
    Airgap {
        /// Network interfaces other than loopback.
        interfaces: Vec<String>,
        /// Wireless and Bluetooth devices.
        radios: Vec<String>,
    },
    /// The clock.
    Clock {
        /// Current UTC time.
        now: String,
        /// The reference time typed so far (`YYYY-MM-DD HH:MM` UTC).
        reference: String,
    },
    /// Roll call.
    RollCall {
        /// Administrator, keyholders (comma separated), witnesses (comma separated).
        fields: [String; 3],
        /// Selected field.
        selected: usize,
        /// Minimum keyholders.
        min_keyholders: u32,
        /// Minimum witnesses.
        min_witnesses: u32,
    },
    /// Loading from the input media.
    Load {
        /// What is loaded.
        what: String,
        /// From where.
        source: String,
        /// Keys read from the input media, shown before they are recorded so that they can be
        /// read aloud: (role, "key id HEX" or "NOT USABLE: why").
        keys: Vec<(String, String)>,
    },
    /// A keyholder's token: key generation, signing or the seal.
    Token {
        /// Whose token.
        keyholder: String,
        /// What the token is for ("generate an ecdsa-p256 key", "sign root v2", "sign the seal").
        purpose: String,
        /// The token expected (label or serial).
        expected: String,
        /// Tokens present.
        present: Vec<TokenRow>,
        /// Where the expected token stands.
        status: TokenStatus,
        /// Threshold meters (signing only).
        meters: Vec<Meter>,
        /// Keyholders' signing status (signing only).
        signers: Vec<SignerRow>,
        /// The digests of what this keyholder is about to sign (signing only), as approved in
        /// the review.
        digests: Vec<DigestRow>,
    },
    /// Signing is complete: every threshold met.
    SigningDone {
        /// Meters.
        meters: Vec<Meter>,
        /// Keyholders' status.
        signers: Vec<SignerRow>,
    },
    /// The proposal to build.
    Propose,
    /// The review: what changes, and the digests to approve.
    Review {
        /// The changes, as lines.
        lines: Vec<String>,
        /// Digests to read aloud.
        digests: Vec<DigestRow>,
        /// First line shown.
        scroll: usize,
        /// Which list `lines` is: every change, or a large review's summary or full list.
        pane: ReviewPane,
    },
    /// Verification of the signed result.
    Verify {
        /// Roles signed with their meters.
        meters: Vec<Meter>,
    },
    /// Export to the media.
    Export {
        /// (file name, size in bytes, SHA-256 in hex) of each file to export.
        files: Vec<(String, usize, String)>,
        /// Destinations to choose from (the workspace's export folder first, then the
        /// removable media found).
        destinations: Vec<String>,
        /// Selected destination.
        selected: usize,
    },
    /// The seal.
    Seal {
        /// Exported artifacts listed in the seal.
        artifacts: Vec<String>,
        /// The seal hash once the seal is written (what the keyholders sign).
        hash: Vec<DigestRow>,
    },
    /// Done: the seal hash and the auditor's checks.
    Summary {
        /// Seal hash in hex groups.
        seal_hex: String,
        /// Seal hash as PGP words.
        seal_words: String,
        /// The seal hash as a QR code (terminal half blocks), if it fits.
        seal_qr: Vec<String>,
        /// Result lines (exported files, checks).
        lines: Vec<String>,
    },
}

/// What the review's changes pane shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReviewPane {
    /// Every change, read line by line.
    #[default]
    Changes,
    /// A large review's summary (the full list is behind it).
    Summary {
        /// The room confirmed the request set's SHA-256 matches the published value.
        confirmed: bool,
    },
    /// A large review's full list, behind the summary.
    FullList,
}
