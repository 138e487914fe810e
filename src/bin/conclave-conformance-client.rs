//! `conclave-conformance-client`: a TUF client over Conclave's verification core, speaking the
//! command-line protocol of the public TUF client conformance suite (tuf-conformance's
//! CLIENT-CLI: `init`, `refresh`, `download`).
//!
//! It exists to measure the core (`conclave::tuf::verify`, `conclave::tuf::lookup`) against the
//! specification's client workflow; it is built only with the cargo feature
//! `conformance-client`, which also brings in its HTTP client. The appliance binary `conclave`
//! and the default build contain no network code.
//!
//! This file is the edge: HTTP fetches with length limits, files in the metadata and target
//! folders, and the order of the workflow's steps. Every verification decision is the core's.
//!
//! Exit status: 0 when the whole command succeeded, 1 when any part failed (the reason on
//! standard error), 2 on a usage error.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use time::OffsetDateTime;

use conclave::tuf::metadata::{Metadata, Targets};
use conclave::tuf::repository::quote_role_name;
use conclave::tuf::verify::{TrustedSet, check_hashes, check_meta_file, trust_root};

/// Most root versions fetched in one refresh (python-tuf 7's `max_root_rotations`).
const MAX_ROOT_ROTATIONS: u64 = 256;
/// Largest root file fetched (python-tuf's `root_max_length`).
const ROOT_MAX_LENGTH: u64 = 512_000;
/// Largest timestamp file fetched.
const TIMESTAMP_MAX_LENGTH: u64 = 16_384;
/// Largest snapshot file fetched when timestamp gives no length.
const SNAPSHOT_MAX_LENGTH: u64 = 2_000_000;
/// Largest targets file fetched when snapshot gives no length.
const TARGETS_MAX_LENGTH: u64 = 5_000_000;
/// Time limit of one HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Parser, Debug)]
#[command(
    name = "conclave-conformance-client",
    version,
    about = "TUF client over Conclave's verification core (tuf-conformance CLIENT protocol)"
)]
struct Cli {
    /// Folder of the metadata the client trusts (root.json, timestamp.json, ...).
    #[arg(long, value_name = "DIR")]
    metadata_dir: PathBuf,
    /// Base URL of the repository's metadata.
    #[arg(long, value_name = "URL")]
    metadata_url: Option<String>,
    /// Target path to download (repeatable; downloaded in this order).
    #[arg(long, value_name = "PATH")]
    target_name: Vec<String>,
    /// Base URL of the repository's target files.
    #[arg(long, value_name = "URL")]
    target_base_url: Option<String>,
    /// Folder where verified target files are stored.
    #[arg(long, value_name = "DIR")]
    target_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Store TRUSTED_ROOT as the trusted root (METADATA_DIR/root.json). No network.
    Init {
        /// The initial trusted root file.
        trusted_root: PathBuf,
    },
    /// Update the trusted metadata from the repository (TUF client workflow 5.3-5.5).
    Refresh,
    /// Refresh, then find, download and verify each --target-name (workflow 5.6-5.7).
    Download,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conclave-conformance-client: {}", error_text(&e));
            ExitCode::from(1)
        }
    }
}

/// An error and its causes on one line, each cause once: the core's errors already embed their
/// cause in their text (`VerifyError::Load` shows the file and the parse error), so printing
/// the chain as it is (`{:#}`) repeated it ("X: X: X").
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Init { trusted_root } => init(&cli.metadata_dir, trusted_root),
        Command::Refresh => {
            let client = Client::new(cli)?;
            client.refresh().map(|_| ())
        }
        Command::Download => {
            let client = Client::new(cli)?;
            let base = cli
                .target_base_url
                .as_deref()
                .ok_or_else(|| anyhow!("download needs --target-base-url"))?;
            let tdir = cli
                .target_dir
                .as_deref()
                .ok_or_else(|| anyhow!("download needs --target-dir"))?;
            if cli.target_name.is_empty() {
                bail!("download needs at least one --target-name");
            }
            let set = client.refresh()?;
            let base = with_trailing_slash(base);
            for name in &cli.target_name {
                client
                    .download(&set, name, &base, tdir)
                    .with_context(|| format!("target {name:?}"))?;
            }
            Ok(())
        }
    }
}

/// `init`: the protocol asks for no checks here (the root is verified against itself at each
/// refresh); the file is copied as it is.
fn init(dir: &Path, trusted_root: &Path) -> Result<()> {
    let bytes = std::fs::read(trusted_root)
        .with_context(|| format!("cannot read trusted root {}", trusted_root.display()))?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create metadata folder {}", dir.display()))?;
    write_atomic(&dir.join("root.json"), &bytes)
}

/// Outcome of one HTTP GET.
enum Fetched {
    Body(Vec<u8>),
    /// The server answered with this status (not 200).
    Status(u16),
}

struct Client {
    dir: PathBuf,
    base: String,
    agent: ureq::Agent,
    now: OffsetDateTime,
}

impl Client {
    fn new(cli: &Cli) -> Result<Self> {
        let url = cli
            .metadata_url
            .as_deref()
            .ok_or_else(|| anyhow!("this command needs --metadata-url"))?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Never a proxy from the environment: the client talks to the URL it is given.
            .proxy(None)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build();
        Ok(Client {
            dir: cli.metadata_dir.clone(),
            base: with_trailing_slash(url),
            agent: config.into(),
            now: OffsetDateTime::now_utc(),
        })
    }

    /// GET `url`, refusing a body longer than `max` bytes.
    fn get(&self, url: &str, max: u64) -> Result<Fetched> {
        let mut resp = self
            .agent
            .get(url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Ok(Fetched::Status(status));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(max)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(n) => {
                    anyhow!("GET {url}: longer than the {n} bytes allowed")
                }
                other => anyhow!("GET {url}: {other}"),
            })?;
        Ok(Fetched::Body(body))
    }

    /// GET `url`; anything but 200 is an error.
    fn get_ok(&self, url: &str, max: u64) -> Result<Vec<u8>> {
        match self.get(url, max)? {
            Fetched::Body(b) => Ok(b),
            Fetched::Status(s) => bail!("GET {url}: HTTP status {s}"),
        }
    }

    fn local(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join(name)).ok()
    }

    fn persist(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.dir.join(name), bytes)
    }

    /// The client workflow up to the top-level targets role (spec 5.3-5.5, in python-tuf's
    /// order): root chain, timestamp, snapshot, targets. Each file is persisted under its
    /// non-versioned name once verified.
    fn refresh(&self) -> Result<TrustedSet> {
        // 5.2: the trusted root on disk, verified against itself.
        let root_bytes = self.local("root.json").ok_or_else(|| {
            anyhow!(
                "no trusted root: {} is missing (run init)",
                self.dir.join("root.json").display()
            )
        })?;
        let (root, _) = trust_root("root.json", &root_bytes)?;
        let mut set = TrustedSet::new(root, self.now);

        // 5.3: root N+1, N+2, ... until the repository has none (403/404).
        let first = set.root().root().common.version;
        for step in 1..=MAX_ROOT_ROTATIONS {
            let Some(version) = first.checked_add(step) else {
                break;
            };
            let file = format!("{version}.root.json");
            match self.get(&format!("{}{file}", self.base), ROOT_MAX_LENGTH)? {
                Fetched::Status(403 | 404) => break,
                Fetched::Status(s) => bail!("GET {}{file}: HTTP status {s}", self.base),
                Fetched::Body(bytes) => {
                    set.update_root(&file, &bytes)?;
                    self.persist("root.json", &bytes)?;
                }
            }
        }

        // 5.4: the stored timestamp (kept even if expired, for rollback checks; not loaded when
        // the timestamp keys changed), then the repository's.
        if let Some(bytes) = self.local("timestamp.json")
            && let Err(e) = set.load_stored_timestamp("timestamp.json", &bytes)
        {
            eprintln!("note: stored timestamp not used: {e}");
        }
        let bytes = self.get_ok(
            &format!("{}timestamp.json", self.base),
            TIMESTAMP_MAX_LENGTH,
        )?;
        if set.update_timestamp_or_keep("timestamp.json", &bytes)? {
            self.persist("timestamp.json", &bytes)?;
        }

        // 5.5: the stored snapshot when it is still the one the timestamp names, else the
        // repository's, checked for rollback against the stored one.
        let stored_final = match self.local("snapshot.json") {
            Some(bytes) => match set.load_stored_snapshot("snapshot.json", &bytes) {
                Ok(is_final) => is_final,
                Err(e) => {
                    eprintln!("note: stored snapshot not used: {e}");
                    false
                }
            },
            None => false,
        };
        if !stored_final {
            let pin = set
                .timestamp()
                .ok_or_else(|| anyhow!("no trusted timestamp"))?
                .signed()
                .snapshot_meta
                .clone();
            let name = if self.consistent(&set) {
                format!("{}.snapshot.json", pin.version)
            } else {
                "snapshot.json".to_string()
            };
            let bytes = self.get_ok(
                &format!("{}{name}", self.base),
                pin.length.unwrap_or(SNAPSHOT_MAX_LENGTH),
            )?;
            set.update_snapshot(&name, &bytes)?;
            self.persist("snapshot.json", &bytes)?;
        }

        // 5.6: top-level targets, the stored file when it is what snapshot pins.
        let stored_ok = match self.local("targets.json") {
            Some(bytes) => set.update_targets("targets.json", &bytes).is_ok(),
            None => false,
        };
        if !stored_ok {
            let bytes = self.fetch_role(&set, "targets")?;
            set.update_targets("targets.json", &bytes)?;
            self.persist("targets.json", &bytes)?;
        }
        Ok(set)
    }

    fn consistent(&self, set: &TrustedSet) -> bool {
        set.root().root().consistent_snapshot == Some(true)
    }

    /// Fetch a targets role's metadata as snapshot pins it (versioned name with consistent
    /// snapshots; at most the pinned length).
    fn fetch_role(&self, set: &TrustedSet, role: &str) -> Result<Vec<u8>> {
        let snapshot = set
            .snapshot()
            .ok_or_else(|| anyhow!("no trusted snapshot"))?;
        let meta = snapshot
            .signed()
            .meta_for(&format!("{role}.json"))
            .ok_or_else(|| anyhow!("role {role:?} is not listed in snapshot"))?;
        let quoted = quote_role_name(role);
        let name = if self.consistent(set) {
            format!("{}.{quoted}.json", meta.version)
        } else {
            format!("{quoted}.json")
        };
        self.get_ok(
            &format!("{}{name}", self.base),
            meta.length.unwrap_or(TARGETS_MAX_LENGTH),
        )
    }

    /// A delegated role's stored metadata when it is what the trusted snapshot pins (version,
    /// and length and hashes when given) and not expired. The core verifies it anyway; this
    /// only decides whether to fetch a new one.
    fn stored_role(&self, set: &TrustedSet, role: &str) -> Option<Vec<u8>> {
        let bytes = self.local(&format!("{}.json", quote_role_name(role)))?;
        let meta = set.snapshot()?.signed().meta_for(&format!("{role}.json"))?;
        check_meta_file(role, meta, &bytes).ok()?;
        let md = Metadata::<Targets>::from_bytes(&bytes).ok()?;
        let common = &md.signed().common;
        (common.version == meta.version && !common.expires.is_expired(self.now)).then_some(bytes)
    }

    /// 5.6.7 and 5.7: find `target` through the delegations, then fetch and verify it into
    /// `tdir` (not fetched when the stored copy already has the right length and hashes).
    fn download(&self, set: &TrustedSet, target: &str, base: &str, tdir: &Path) -> Result<()> {
        let fetched: RefCell<Vec<(String, Vec<u8>)>> = RefCell::new(Vec::new());
        let errors: RefCell<Vec<String>> = RefCell::new(Vec::new());
        // A stored role that no longer verifies is fetched once more (python-tuf does).
        let search = set.find_target_cached(
            target,
            |role| self.stored_role(set, role),
            |role| match self.fetch_role(set, role) {
                Ok(bytes) => {
                    fetched.borrow_mut().push((role.to_string(), bytes.clone()));
                    Some(bytes)
                }
                Err(e) => {
                    errors.borrow_mut().push(error_text(&e));
                    None
                }
            },
        );
        // Keep every fetched role the search verified (each visited role was).
        let visited: Vec<String> = match &search {
            Ok(s) => s.visited.clone(),
            Err(_) => Vec::new(),
        };
        for (role, bytes) in fetched.borrow().iter() {
            if visited.contains(role) {
                self.persist(&format!("{}.json", quote_role_name(role)), bytes)?;
            }
        }
        let search = search.map_err(|e| match errors.borrow().last() {
            Some(fetch) => anyhow!("{e} ({fetch})"),
            None => anyhow!("{e}"),
        })?;
        let Some((role, info)) = search.found else {
            bail!(
                "not found in any trusted targets role (searched: {})",
                search.visited.join(", ")
            );
        };

        std::fs::create_dir_all(tdir)
            .with_context(|| format!("cannot create target folder {}", tdir.display()))?;
        let stored = tdir.join(quote_role_name(target));
        if let Ok(bytes) = std::fs::read(&stored)
            && bytes.len() as u64 == info.length
            && check_hashes(target, &info.hashes, &bytes).is_ok()
        {
            return Ok(());
        }
        // With consistent snapshots the file is HASH.NAME; any listed hash names it (spec
        // 5.7.3), so each is tried in turn (sorted by algorithm) while the server has none.
        let paths: Vec<String> = if self.consistent(set) {
            info.hashes
                .iter()
                .map(|(_, digest)| match target.rsplit_once('/') {
                    Some((dir, file)) => format!("{dir}/{digest}.{file}"),
                    None => format!("{digest}.{target}"),
                })
                .collect()
        } else {
            vec![target.to_string()]
        };
        let mut fetched = None;
        for path in &paths {
            let url = format!("{base}{}", url_path(path));
            match self.get(&url, info.length)? {
                Fetched::Body(bytes) => {
                    fetched = Some((url, bytes));
                    break;
                }
                Fetched::Status(403 | 404) => eprintln!("note: GET {url}: not found"),
                Fetched::Status(s) => bail!("GET {url}: HTTP status {s}"),
            }
        }
        let Some((url, bytes)) = fetched else {
            bail!(
                "the repository has no file for it (tried {})",
                paths.join(", ")
            );
        };
        if bytes.len() as u64 != info.length {
            bail!(
                "{url}: {} bytes where {role} says {}",
                bytes.len(),
                info.length
            );
        }
        check_hashes(&url, &info.hashes, &bytes)?;
        write_atomic(&stored, &bytes)
    }
}

fn with_trailing_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

/// A target path as a URL path: bytes that cannot stand in a URL path are percent-encoded,
/// `/` separates segments as in the target path.
fn url_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Write through a temporary file and rename, so that a failed write never leaves a half file
/// where trusted metadata or a verified target was.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} is not a file path", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}
