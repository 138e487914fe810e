//! Animated QR codes: any file as a sequence of multipart Uniform Resources (UR, type `bytes`)
//! with fountain codes, shown in the terminal or written as PNG frames, and read back from PNGs.
//!
//! The UR message is a small envelope (see [`make_envelope`] and `docs/transport.md`):
//! the CBOR array `[1, file length, SHA-256 of the file, raw-deflate of the file]`.
//! A decoder checks the length and SHA-256 before it gives out a single byte.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use qrcode::{Color, EcLevel, QrCode};
use sha2::{Digest, Sha256};

use crate::transcript::display::{hex_groups, pgp_words};

/// Version number of the envelope format written by this module.
pub const ENVELOPE_VERSION: u64 = 1;
/// Default number of payload bytes per fountain fragment.
pub const DEFAULT_FRAGMENT_SIZE: usize = 250;
/// Default time each frame is shown.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(200);
/// Default pixels per QR module in PNG frames (decoders need at least 4).
pub const DEFAULT_MODULE_PX: u32 = 6;
/// Largest file the encoder accepts and the decoder rebuilds (beyond this, use USB media).
pub const MAX_FILE_SIZE: u64 = 4 * 1024 * 1024;
/// Largest PNG image `decode` reads.
pub const MAX_IMAGE_SIZE: u64 = 32 * 1024 * 1024;
/// Most pixels a PNG frame may declare (4096 x 4096; a v40 QR code at 6 pixels per module with
/// its quiet zone is under 1100 x 1100), checked from its header before it is decoded.
pub const MAX_IMAGE_PIXELS: u64 = 4096 * 4096;
/// Most pixels searched for QR codes: a larger image (a photo) is scaled down by a whole factor
/// first. The QR reader's time grows faster than the pixel count on noise (measured, release
/// build: 1024 x 1024 0.09 s, 2048 x 2048 2.3 s, 4096 x 4096 over 10 minutes).
pub const MAX_SCAN_PIXELS: usize = 1 << 20;
/// Most finder-pattern candidates (see [`finder_candidates`]) in the searched image. A frame has
/// its three finder patterns and up to about 150 look-alikes among its data modules (measured on
/// Conclave's frames up to 101 modules wide, at 4 to 12 pixels per module); noise has thousands.
/// The QR reader tries groups of candidates, copying the image for each: measured in a release
/// build, a page of 256 finder patterns takes it 1.1 s, 400 take 2.1 s, 625 take 5 s.
pub const MAX_FINDER_CANDIDATES: usize = 300;
/// Most fragments a message may have (a 4 MiB file in fragments of at least 64 bytes). Checked
/// from each frame's header before the `ur` crate sees the frame: it allocates per fragment.
pub const MAX_FRAGMENTS: u64 = 1 << 16;
/// Largest message (envelope) a frame may announce: a 4 MiB file that deflate cannot shrink
/// (stored blocks add 5 bytes per 64 KiB), plus the envelope's header.
pub const MAX_MESSAGE_LENGTH: u64 = MAX_FILE_SIZE + MAX_FILE_SIZE / 1024 + 1024;
/// Quiet zone (light border) around each code, in modules, for PNG frames.
pub const PNG_QUIET_ZONE: usize = 4;
/// Quiet zone in the terminal, in modules; the terminal's dark background already frames it.
pub const TERMINAL_QUIET_ZONE: usize = 2;

/// Errors from QR encoding and decoding. Each names the file or frame it concerns.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The input file is empty or larger than [`MAX_FILE_SIZE`].
    #[error("{path}: size {size} bytes is outside 1..={max} bytes that QR transport carries")]
    FileSize {
        /// The file concerned.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A fragment size of zero or one too large for one QR code.
    #[error("fragment size {0} is outside 10..=1000 bytes")]
    FragmentSize(usize),
    /// The UR encoder refused the message.
    #[error("UR encoding failed: {0}")]
    UrEncode(String),
    /// A frame's text does not fit into a QR code.
    #[error("frame {frame} does not fit into a QR code: {reason}")]
    QrEncode {
        /// Frame number (1-based).
        frame: usize,
        /// What qrcode said.
        reason: String,
    },
    /// A PNG could not be written or read.
    #[error("{path}: PNG: {reason}")]
    Png {
        /// The file concerned.
        path: PathBuf,
        /// What the PNG codec said.
        reason: String,
    },
    /// A frame was rejected (not a UR fragment, bad checksum, or from another message).
    #[error("{source_name}: frame rejected: {reason}")]
    FrameRejected {
        /// The image (or "text") the frame came from.
        source_name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Not enough frames were read to rebuild the file.
    #[error(
        "cannot rebuild the file: {resolved} of {needed} fragments recovered from {accepted} accepted frames ({rejected} rejected){}; scan more frames",
        .first_rejected.iter().map(|r| format!("\n  rejected {r}")).collect::<String>()
    )]
    Incomplete {
        /// Fragments recovered.
        resolved: usize,
        /// Fragments needed (0 when no frame was read at all).
        needed: usize,
        /// Frames accepted.
        accepted: usize,
        /// Frames rejected.
        rejected: usize,
        /// The first few rejected frames, each with the reason.
        first_rejected: Vec<String>,
    },
    /// The rebuilt message is not a valid envelope.
    #[error("rebuilt message is not a Conclave QR envelope: {0}")]
    Envelope(String),
    /// The rebuilt file's SHA-256 differs from the one carried in the envelope.
    #[error(
        "rebuilt file SHA-256 {actual} differs from the SHA-256 {expected} carried in the frames"
    )]
    HashMismatch {
        /// SHA-256 in the envelope (hex).
        expected: String,
        /// SHA-256 of the rebuilt file (hex).
        actual: String,
    },
    /// The output file exists already; nothing was written.
    #[error("{0}: exists already; nothing was written (choose another --out)")]
    OutputExists(PathBuf),
    /// The terminal cannot show a frame of this size.
    #[error(
        "terminal is {cols}x{rows}, a frame needs {need_cols}x{need_rows}: enlarge the terminal, use a smaller font, or a smaller --fragment-size"
    )]
    TerminalTooSmall {
        /// Terminal columns.
        cols: u16,
        /// Terminal rows.
        rows: u16,
        /// Columns needed.
        need_cols: usize,
        /// Rows needed.
        need_rows: usize,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> QrError + '_ {
    move |source| QrError::Io {
        path: path.to_path_buf(),
        source,
    }
}

// ---------------------------------------------------------------------------------------------
// Envelope: CBOR array [version, length, sha256, deflated]

fn cbor_head(out: &mut Vec<u8>, major: u8, value: u64) {
    let m = major << 5;
    match value {
        0..=23 => out.push(m | value as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, value as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

/// Reads one CBOR head (major type, argument) strictly: shortest form only, no indefinite lengths.
fn cbor_read_head(input: &mut &[u8]) -> Result<(u8, u64), String> {
    let (&first, rest) = input.split_first().ok_or("truncated CBOR")?;
    let major = first >> 5;
    let info = first & 0x1f;
    let (value, rest) = match info {
        0..=23 => (u64::from(info), rest),
        24..=27 => {
            let n = 1usize << (info - 24);
            if rest.len() < n {
                return Err("truncated CBOR".into());
            }
            let (bytes, rest) = rest.split_at(n);
            let v = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            let min = match n {
                1 => 24,
                2 => 0x100,
                4 => 0x1_0000,
                _ => 0x1_0000_0000,
            };
            if v < min {
                return Err("CBOR integer not in shortest form".into());
            }
            (v, rest)
        }
        _ => return Err(format!("unsupported CBOR additional info {info}")),
    };
    *input = rest;
    Ok((major, value))
}

fn cbor_read_bytes<'a>(input: &mut &'a [u8], what: &str) -> Result<&'a [u8], String> {
    let (major, len) = cbor_read_head(input)?;
    if major != 2 {
        return Err(format!(
            "{what}: expected a CBOR byte string, found major type {major}"
        ));
    }
    let len = usize::try_from(len).map_err(|_| format!("{what}: length too large"))?;
    if input.len() < len {
        return Err(format!(
            "{what}: truncated ({len} bytes declared, {} present)",
            input.len()
        ));
    }
    let (bytes, rest) = input.split_at(len);
    *input = rest;
    Ok(bytes)
}

fn cbor_read_uint(input: &mut &[u8], what: &str) -> Result<u64, String> {
    let (major, v) = cbor_read_head(input)?;
    if major != 0 {
        return Err(format!(
            "{what}: expected an unsigned integer, found major type {major}"
        ));
    }
    Ok(v)
}

/// Builds the envelope for `file`: CBOR `[1, len(file), sha256(file), raw_deflate(file)]`.
pub fn make_envelope(file: &[u8]) -> Vec<u8> {
    let digest: [u8; 32] = Sha256::digest(file).into();
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
    // Writing into a Vec cannot fail.
    let deflated = enc
        .write_all(file)
        .and_then(|()| enc.finish())
        .unwrap_or_default();
    envelope_from_parts(file.len() as u64, &digest, &deflated)
}

fn envelope_from_parts(len: u64, digest: &[u8; 32], deflated: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(deflated.len() + 48);
    cbor_head(&mut out, 4, 4);
    cbor_head(&mut out, 0, ENVELOPE_VERSION);
    cbor_head(&mut out, 0, len);
    cbor_head(&mut out, 2, 32);
    out.extend_from_slice(digest);
    cbor_head(&mut out, 2, deflated.len() as u64);
    out.extend_from_slice(deflated);
    out
}

/// Opens an envelope: checks version, inflates (bounded by the declared length and
/// [`MAX_FILE_SIZE`]), checks length and SHA-256. Returns the file and its SHA-256.
pub fn open_envelope(envelope: &[u8]) -> Result<(Vec<u8>, [u8; 32]), QrError> {
    let mut input = envelope;
    let bad = QrError::Envelope;
    let (major, n) = cbor_read_head(&mut input).map_err(bad)?;
    if major != 4 || n != 4 {
        return Err(QrError::Envelope(format!(
            "expected a CBOR array of 4 items, found major type {major} with {n} items"
        )));
    }
    let version = cbor_read_uint(&mut input, "version").map_err(bad)?;
    if version != ENVELOPE_VERSION {
        return Err(QrError::Envelope(format!(
            "version {version} is not supported (this Conclave reads version {ENVELOPE_VERSION})"
        )));
    }
    let len = cbor_read_uint(&mut input, "length").map_err(bad)?;
    if len > MAX_FILE_SIZE {
        return Err(QrError::Envelope(format!(
            "declared length {len} exceeds the limit of {MAX_FILE_SIZE} bytes"
        )));
    }
    let digest = cbor_read_bytes(&mut input, "sha256").map_err(bad)?;
    let expected: [u8; 32] = digest
        .try_into()
        .map_err(|_| QrError::Envelope(format!("sha256: {} bytes, expected 32", digest.len())))?;
    let deflated = cbor_read_bytes(&mut input, "deflated").map_err(bad)?;
    if !input.is_empty() {
        return Err(QrError::Envelope(format!("{} trailing bytes", input.len())));
    }
    let mut file = Vec::new();
    DeflateDecoder::new(deflated)
        .take(len + 1)
        .read_to_end(&mut file)
        .map_err(|e| QrError::Envelope(format!("deflated: {e}")))?;
    if file.len() as u64 != len {
        return Err(QrError::Envelope(format!(
            "inflated to {} bytes, the envelope declares {len}",
            file.len()
        )));
    }
    let actual: [u8; 32] = Sha256::digest(&file).into();
    if actual != expected {
        return Err(QrError::HashMismatch {
            expected: hex::encode(expected),
            actual: hex::encode(actual),
        });
    }
    Ok((file, actual))
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Options for encoding a file into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Maximum payload bytes per fountain fragment.
    pub fragment_size: usize,
    /// Pixels per module in PNG frames.
    pub module_px: u32,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            fragment_size: DEFAULT_FRAGMENT_SIZE,
            module_px: DEFAULT_MODULE_PX,
        }
    }
}

/// A file prepared for QR transport: an endless source of UR frames.
pub struct Animation {
    encoder: ur::Encoder<'static>,
    /// SHA-256 of the file.
    pub sha256: [u8; 32],
    /// Size of the file in bytes.
    pub file_len: usize,
    /// Size of the envelope (compressed file plus header) in bytes.
    pub envelope_len: usize,
}

impl std::fmt::Debug for Animation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Animation")
            .field("sha256", &hex::encode(self.sha256))
            .field("file_len", &self.file_len)
            .field("envelope_len", &self.envelope_len)
            .field("fragments", &self.fragment_count())
            .finish()
    }
}

impl Animation {
    /// Prepares `file` for QR transport.
    pub fn new(file: &[u8], options: &EncodeOptions) -> Result<Self, QrError> {
        if !(10..=1000).contains(&options.fragment_size) {
            return Err(QrError::FragmentSize(options.fragment_size));
        }
        let envelope = make_envelope(file);
        let encoder = ur::Encoder::bytes(&envelope, options.fragment_size)
            .map_err(|e| QrError::UrEncode(e.to_string()))?;
        Ok(Self {
            encoder,
            sha256: Sha256::digest(file).into(),
            file_len: file.len(),
            envelope_len: envelope.len(),
        })
    }

    /// Number of source fragments; at least this many frames must be read.
    pub fn fragment_count(&self) -> usize {
        self.encoder.fragment_count()
    }

    /// Frames written for printing or PNG export: 2.5 times the fragment count (rounded up).
    ///
    /// With the `ur` crate's fountain codes, 1.5 times was measured to be far too few for a
    /// reader that misses 30% of the frames: 6 of 200 random losses rebuilt a 20-fragment file
    /// even with our elimination decoder (4 of 200 with peeling alone); 2.5 times rebuilt 200 of
    /// 200 (20 and 80 fragments). See `docs/transport.md`.
    pub fn recommended_frames(&self) -> usize {
        (self.fragment_count() * 5).div_ceil(2).max(1)
    }

    /// The next frame's text: an uppercase UR fragment (`UR:BYTES/7-33/...`), which QR codes
    /// carry in the compact alphanumeric mode. The first `fragment_count` frames are the plain
    /// fragments; later ones are fountain mixtures of several.
    pub fn next_frame(&mut self) -> Result<String, QrError> {
        let part = self
            .encoder
            .next_part()
            .map_err(|e| QrError::UrEncode(e.to_string()))?;
        Ok(part.to_ascii_uppercase())
    }

    /// The next `n` frames.
    pub fn frames(&mut self, n: usize) -> Result<Vec<String>, QrError> {
        (0..n).map(|_| self.next_frame()).collect()
    }
}

/// One QR code as a square of modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrMatrix {
    width: usize,
    dark: Vec<bool>,
}

impl QrMatrix {
    /// Encodes `text` at error-correction level L (UR fountain codes make up for lost frames).
    pub fn encode(text: &str, frame: usize) -> Result<Self, QrError> {
        let code =
            QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L).map_err(|e| {
                QrError::QrEncode {
                    frame,
                    reason: e.to_string(),
                }
            })?;
        let width = code.width();
        let dark = code
            .to_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect();
        Ok(Self { width, dark })
    }

    /// Modules per side, without quiet zone.
    pub fn width(&self) -> usize {
        self.width
    }

    fn is_dark(&self, x: usize, y: usize, quiet: usize) -> bool {
        if x < quiet || y < quiet || x >= self.width + quiet || y >= self.width + quiet {
            return false;
        }
        self.dark
            .get((y - quiet) * self.width + (x - quiet))
            .copied()
            .unwrap_or(false)
    }

    /// Renders for a terminal with light text on a dark background: each character cell holds
    /// two modules stacked (`▀`, `▄`, `█`, space), light modules drawn as text.
    pub fn to_terminal(&self, quiet: usize) -> String {
        let side = self.width + 2 * quiet;
        let mut out = String::with_capacity((side + 1) * side.div_ceil(2) * 3);
        for y in (0..side).step_by(2) {
            for x in 0..side {
                let top_light = !self.is_dark(x, y, quiet);
                let bottom_light = y + 1 >= side || !self.is_dark(x, y + 1, quiet);
                out.push(match (top_light, bottom_light) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            out.push('\n');
        }
        out
    }

    /// Terminal size a frame needs (columns, rows).
    pub fn terminal_size(&self, quiet: usize) -> (usize, usize) {
        let side = self.width + 2 * quiet;
        (side, side.div_ceil(2))
    }

    /// Renders as an 8-bit greyscale PNG, black modules on white, `px` pixels per module.
    pub fn to_png(&self, px: u32, quiet: usize) -> Result<Vec<u8>, String> {
        let px = px.max(1) as usize;
        let side = (self.width + 2 * quiet) * px;
        let side_u32 = u32::try_from(side).map_err(|_| "image too large".to_string())?;
        let mut pixels = vec![255u8; side * side];
        for (i, p) in pixels.iter_mut().enumerate() {
            let (x, y) = ((i % side) / px, (i / side) / px);
            if self.is_dark(x, y, quiet) {
                *p = 0;
            }
        }
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, side_u32, side_u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// A frame drawn on a terminal with [`QrMatrix::to_terminal`] (light modules drawn, `█ ▀ ▄`),
/// as text captured from the screen, turned back into a greyscale PNG of `px` pixels per module:
/// what a camera pointed at the console sees. Leading columns common to every line are dropped.
pub fn terminal_frame_to_png(lines: &[String], px: usize) -> Result<Vec<u8>, String> {
    let px = px.max(1);
    let left = lines
        .iter()
        .map(|l| l.chars().take_while(|c| *c == ' ').count())
        .min()
        .unwrap_or(0);
    let rows: Vec<Vec<char>> = lines
        .iter()
        .map(|l| l.chars().skip(left).collect())
        .collect();
    let w = rows.iter().map(Vec::len).max().unwrap_or(0);
    let h = rows.len() * 2;
    if w == 0 || h == 0 {
        return Err("no frame".into());
    }
    let mut pixels = vec![0u8; w * px * h * px];
    for (row, line) in rows.iter().enumerate() {
        for (x, c) in line.iter().enumerate() {
            let (top, bottom) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                _ => (false, false),
            };
            for (dy, light) in [(0, top), (1, bottom)] {
                if !light {
                    continue;
                }
                let y = row * 2 + dy;
                for yy in y * px..(y + 1) * px {
                    let start = yy * w * px + x * px;
                    if let Some(span) = pixels.get_mut(start..start + px) {
                        span.fill(255);
                    }
                }
            }
        }
    }
    let width = u32::try_from(w * px).map_err(|_| "frame too wide".to_string())?;
    let height = u32::try_from(h * px).map_err(|_| "frame too tall".to_string())?;
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// Reads every QR code in a PNG image and returns their raw contents.
pub fn read_png_codes(png_bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    // The header declares the size: a few hundred bytes of PNG can claim 180 x 2,046,820,532
    // pixels (found by the qr_png fuzz target), and allocating that aborts the process. QR
    // frames are at most a few thousand pixels wide.
    let (width, height) = reader.info().size();
    if u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS {
        return Err(format!(
            "image of {width} x {height} pixels is over the limit of {MAX_IMAGE_PIXELS} pixels"
        ));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| "image too large".to_string())?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let stride = info.line_size;
    let luma = |x: usize, y: usize| -> u8 {
        let at = y * stride + x * channels;
        let px = buf.get(at..at + channels).unwrap_or(&[]);
        match px {
            [g] | [g, _] => *g,
            [r, g, b] | [r, g, b, _] => {
                ((u32::from(*r) * 299 + u32::from(*g) * 587 + u32::from(*b) * 114) / 1000) as u8
            }
            _ => 255,
        }
    };
    // Scale a large image down by a whole factor (box average), so that the search below never
    // sees more than MAX_SCAN_PIXELS; then refuse images with more finder-pattern candidates
    // than QR codes have, before the reader compares them pairwise.
    let (sw, sh, scaled) = scale_down(w, h, luma);
    let candidates = finder_candidates(sw, sh, &scaled);
    if candidates > MAX_FINDER_CANDIDATES {
        return Err(format!(
            "{candidates} finder-pattern candidates (at most {MAX_FINDER_CANDIDATES}): noise or \
             many codes, not a QR frame; crop the image to one code"
        ));
    }
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(sw, sh, |x, y| {
        scaled.get(y * sw + x).copied().unwrap_or(255)
    });
    let mut codes = Vec::new();
    for grid in img.detect_grids() {
        let mut content = Vec::new();
        if grid.decode_to(&mut content).is_ok() {
            codes.push(content);
        }
    }
    Ok(codes)
}

/// The image as grey values, scaled down by the smallest whole factor that leaves at most
/// [`MAX_SCAN_PIXELS`] (each pixel the average of a factor x factor box): width, height, pixels.
fn scale_down(w: usize, h: usize, luma: impl Fn(usize, usize) -> u8) -> (usize, usize, Vec<u8>) {
    let mut f = 1;
    while (w / f) * (h / f) > MAX_SCAN_PIXELS {
        f += 1;
    }
    let (sw, sh) = (w / f, h / f);
    let mut out = Vec::with_capacity(sw * sh);
    for y in 0..sh {
        for x in 0..sw {
            let mut sum = 0u32;
            for dy in 0..f {
                for dx in 0..f {
                    sum += u32::from(luma(x * f + dx, y * f + dy));
                }
            }
            out.push((sum / (f * f) as u32) as u8);
        }
    }
    (sw, sh, out)
}

/// Finder-pattern candidates in a grey image (dark below 128): runs dark, light, dark, light,
/// dark along a row in the ratio 1:1:3:1:1 (each outer run within 3/4 of their average, the
/// middle within 3/4 of an average of three times it), as QR readers look for them. A candidate
/// whose centre continues one of the row above (within one module) is the same one and is
/// counted once, so the count does not grow with the pixels per module.
fn finder_candidates(w: usize, h: usize, pixels: &[u8]) -> usize {
    let mut count = 0;
    let mut above: Vec<(usize, usize)> = Vec::new();
    let mut here: Vec<(usize, usize)> = Vec::new();
    for row in pixels.chunks(w.max(1)).take(h) {
        here.clear();
        // Lengths of the last five runs, the newest last, and where the run now growing began.
        let mut runs = [0usize; 5];
        let mut dark = row.first().is_some_and(|&p| p < 128);
        let mut len = 0usize;
        let mut x = 0usize;
        for &p in row.iter().chain(std::iter::once(&255u8)) {
            x += 1;
            let d = p < 128;
            if d == dark {
                len += 1;
                continue;
            }
            runs.rotate_left(1);
            runs[4] = len;
            // A run of dark pixels just ended at x - 1: the five runs end with a dark one.
            if dark && runs[0] > 0 {
                let avg = (runs[0] + runs[1] + runs[3] + runs[4]) / 4;
                let err = avg * 3 / 4;
                let near = |r: usize, want: usize| r + err >= want && r <= want + err;
                if avg > 0
                    && near(runs[0], avg)
                    && near(runs[1], avg)
                    && near(runs[3], avg)
                    && near(runs[4], avg)
                    && near(runs[2], 3 * avg)
                {
                    let centre = (x - 1).saturating_sub(runs[4] + runs[3] + runs[2] / 2);
                    if !above.iter().any(|&(c, m)| c.abs_diff(centre) <= m.max(1)) {
                        count += 1;
                    }
                    here.push((centre, avg));
                }
            }
            dark = d;
            len = 1;
        }
        std::mem::swap(&mut above, &mut here);
    }
    count
}

/// Progress after receiving a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Source fragments recovered so far.
    pub resolved: usize,
    /// Source fragments needed.
    pub needed: usize,
    /// Whether the message can be rebuilt now.
    pub complete: bool,
}

/// The header every fountain part of one message shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartHeader {
    /// This part's sequence number (not part of what all parts share; ignored when comparing).
    sequence: u64,
    sequence_count: u64,
    message_length: u64,
    checksum: u64,
    fragment_length: usize,
}

impl PartHeader {
    /// Whether two parts belong to the same message (all but the sequence number agree).
    fn same_message(&self, other: &PartHeader) -> bool {
        PartHeader {
            sequence: 0,
            ..*self
        } == PartHeader {
            sequence: 0,
            ..*other
        }
    }
}

/// Solves for the fragments by Gaussian elimination over GF(2), incrementally as parts arrive.
///
/// The `ur` crate's decoder only peels (resolves a mixed part when all but one of its fragments
/// are known), which gets stuck with sets of frames that determine the message. Elimination
/// rebuilds the message whenever the received parts determine it.
#[derive(Debug)]
struct Elimination {
    header: PartHeader,
    /// `pivots[c]`: a row (fragment set as bits, XOR of their data) whose lowest bit is `c`.
    pivots: Vec<Option<(Vec<u64>, Vec<u8>)>>,
    rank: usize,
}

impl Elimination {
    fn new(header: PartHeader) -> Option<Self> {
        let k = usize::try_from(header.sequence_count).ok()?;
        // Guard memory: at most MAX_FILE_SIZE of fragments (a few bytes of slack per fragment).
        if k == 0 || k.saturating_mul(header.fragment_length) > 2 * MAX_FILE_SIZE as usize {
            return None;
        }
        Some(Self {
            header,
            pivots: vec![None; k],
            rank: 0,
        })
    }

    fn complete(&self) -> bool {
        self.rank == self.pivots.len()
    }

    fn insert(&mut self, indexes: &[usize], data: &[u8]) {
        let k = self.pivots.len();
        let mut row = vec![0u64; k.div_ceil(64)];
        for &i in indexes {
            if let Some(word) = row.get_mut(i / 64) {
                *word ^= 1 << (i % 64);
            }
        }
        let mut data = data.to_vec();
        while let Some(c) = lowest_bit(&row) {
            match self.pivots.get(c) {
                Some(Some((prow, pdata))) => {
                    xor_into(&mut row, prow);
                    xor_into(&mut data, pdata);
                }
                Some(None) => {
                    if let Some(slot) = self.pivots.get_mut(c) {
                        *slot = Some((row, data));
                        self.rank += 1;
                    }
                    return;
                }
                None => return,
            }
        }
    }

    /// The message, once complete: back-substitution from the last column, then concatenation.
    fn message(mut self) -> Option<Vec<u8>> {
        if !self.complete() {
            return None;
        }
        let k = self.pivots.len();
        for c in (0..k).rev() {
            let (mut row, mut data) = self.pivots.get_mut(c)?.take()?;
            for q in (c + 1)..k {
                if row.get(q / 64).is_some_and(|w| w & (1 << (q % 64)) != 0) {
                    let (qrow, qdata) = self.pivots.get(q)?.as_ref()?;
                    xor_into(&mut row, qrow);
                    xor_into(&mut data, qdata);
                }
            }
            *self.pivots.get_mut(c)? = Some((row, data));
        }
        let mut message = Vec::with_capacity(k * self.header.fragment_length);
        for p in &self.pivots {
            message.extend_from_slice(&p.as_ref()?.1);
        }
        message.truncate(usize::try_from(self.header.message_length).ok()?);
        Some(message)
    }
}

fn lowest_bit(row: &[u64]) -> Option<usize> {
    row.iter()
        .enumerate()
        .find(|(_, w)| **w != 0)
        .map(|(i, w)| i * 64 + w.trailing_zeros() as usize)
}

fn xor_into<T: Copy + std::ops::BitXorAssign>(a: &mut [T], b: &[T]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= *y;
    }
}

/// Checks a fountain part's header against what Conclave sends: a message of 1 to
/// [`MAX_MESSAGE_LENGTH`] bytes cut into at most [`MAX_FRAGMENTS`] fragments of equal length
/// (the count is the length divided by the fragment length, rounded up, as every UR encoder
/// cuts), sequence number and checksum 32-bit.
fn check_part_header(h: &PartHeader) -> Result<(), String> {
    if h.message_length == 0 || h.message_length > MAX_MESSAGE_LENGTH {
        return Err(format!(
            "header announces a message of {} bytes (1 to {MAX_MESSAGE_LENGTH})",
            h.message_length
        ));
    }
    if h.sequence_count == 0 || h.sequence_count > MAX_FRAGMENTS {
        return Err(format!(
            "header announces {} fragments (1 to {MAX_FRAGMENTS})",
            h.sequence_count
        ));
    }
    let fragment = h.fragment_length as u64;
    if fragment == 0 || h.message_length.div_ceil(fragment) != h.sequence_count {
        return Err(format!(
            "header announces {} fragments for {} bytes, but its fragment holds {fragment} bytes",
            h.sequence_count, h.message_length
        ));
    }
    if h.sequence == 0 || h.sequence > u64::from(u32::MAX) || h.checksum > u64::from(u32::MAX) {
        return Err("header's sequence number or checksum is not a 32-bit number".into());
    }
    Ok(())
}

/// Reads a fountain part's CBOR `[seq, seqLen, messageLen, checksum, data]`: header and data.
fn part_header(cbor: &[u8]) -> Result<(PartHeader, &[u8]), String> {
    let mut input = cbor;
    let (major, n) = cbor_read_head(&mut input)?;
    if major != 4 || n != 5 {
        return Err("fountain part is not a CBOR array of 5 items".into());
    }
    let sequence = cbor_read_uint(&mut input, "sequence")?;
    let sequence_count = cbor_read_uint(&mut input, "sequence count")?;
    let message_length = cbor_read_uint(&mut input, "message length")?;
    let checksum = cbor_read_uint(&mut input, "checksum")?;
    let data = cbor_read_bytes(&mut input, "fragment")?;
    Ok((
        PartHeader {
            sequence,
            sequence_count,
            message_length,
            checksum,
            fragment_length: data.len(),
        },
        data,
    ))
}

/// Collects frames in any order until the file can be rebuilt.
#[derive(Default)]
pub struct Collector {
    decoder: ur::Decoder,
    elimination: Option<Elimination>,
    header: Option<PartHeader>,
    accepted: usize,
    rejected: Vec<String>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("accepted", &self.accepted)
            .field("rejected", &self.rejected)
            .field("complete", &self.decoder.complete())
            .finish()
    }
}

/// A file rebuilt from frames, with its checked SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// The file's bytes.
    pub data: Vec<u8>,
    /// Its SHA-256 (equal to the one carried in the frames).
    pub sha256: [u8; 32],
    /// Frames accepted.
    pub accepted: usize,
    /// Frames rejected, each with the reason.
    pub rejected: Vec<String>,
}

impl Collector {
    /// A collector with no frames yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Receives one frame's content. A frame that is not a UR `bytes` fragment, fails its
    /// checksum, or belongs to another message is rejected with an error (and counted).
    pub fn receive(&mut self, source_name: &str, content: &[u8]) -> Result<Progress, QrError> {
        let result = self.try_receive(content);
        match result {
            Ok(()) => {
                self.accepted += 1;
                Ok(self.progress())
            }
            Err(reason) => {
                self.rejected.push(format!("{source_name}: {reason}"));
                Err(QrError::FrameRejected {
                    source_name: source_name.to_string(),
                    reason,
                })
            }
        }
    }

    fn try_receive(&mut self, content: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(content).map_err(|_| "not text".to_string())?;
        let text = text.trim().to_ascii_lowercase();
        if !text.starts_with("ur:bytes/") {
            return Err("not a UR of type bytes".into());
        }
        // Parse the part ourselves first: every frame must belong to the same message, also
        // after the message is complete (the ur decoder stops checking then).
        let (_, cbor) = ur::ur::decode(&text).map_err(|e| e.to_string())?;
        let (header, data) = part_header(&cbor)?;
        // The `ur` crate allocates per fragment the header announces (32 GB for 4 x 10^9) and
        // works per fragment for each mixed frame: check the header before it sees the frame.
        check_part_header(&header)?;
        match self.header {
            Some(h) if !h.same_message(&header) => {
                return Err("belongs to another message (fountain part header differs)".into());
            }
            _ => {}
        }
        self.decoder.receive(&text).map_err(|e| e.to_string())?;
        self.header = Some(header);
        let part: ur::fountain::Part =
            minicbor::decode(&cbor).map_err(|e| format!("fountain part: {e}"))?;
        if self.elimination.is_none() {
            self.elimination = Elimination::new(header);
        }
        if let Some(e) = self.elimination.as_mut()
            && !e.complete()
        {
            e.insert(&part.indexes(), data);
        }
        Ok(())
    }

    fn complete(&self) -> bool {
        self.decoder.complete() || self.elimination.as_ref().is_some_and(Elimination::complete)
    }

    /// Current progress.
    pub fn progress(&self) -> Progress {
        let peeled = self.decoder.resolved_fragment_count().unwrap_or(0);
        let rank = self.elimination.as_ref().map_or(0, |e| e.rank);
        Progress {
            resolved: peeled.max(rank),
            needed: self.decoder.fragment_count(),
            complete: self.complete(),
        }
    }

    /// Rebuilds the file, checking length and SHA-256; fails when incomplete or inconsistent.
    pub fn finish(self) -> Result<Rebuilt, QrError> {
        let progress = self.progress();
        let incomplete = QrError::Incomplete {
            resolved: progress.resolved,
            needed: progress.needed,
            accepted: self.accepted,
            rejected: self.rejected.len(),
            first_rejected: self.rejected.iter().take(5).cloned().collect(),
        };
        if !progress.complete {
            return Err(incomplete);
        }
        let envelope = if self.decoder.complete() {
            self.decoder
                .message()
                .map_err(|e| QrError::Envelope(e.to_string()))?
        } else {
            // Elimination path: the message's CRC-32 is not rechecked here; the envelope's
            // length and SHA-256 are, below.
            self.elimination.and_then(Elimination::message)
        };
        let envelope = envelope.ok_or(incomplete)?;
        let (data, sha256) = open_envelope(&envelope)?;
        Ok(Rebuilt {
            data,
            sha256,
            accepted: self.accepted,
            rejected: self.rejected,
        })
    }
}

/// Reads PNG frames (any order, extra and unreadable ones tolerated and reported) and rebuilds
/// the file. Stops reading once complete.
pub fn decode_pngs<P: AsRef<Path>>(images: &[P]) -> Result<Rebuilt, QrError> {
    let mut collector = Collector::new();
    for image in images {
        let path = image.as_ref();
        let name = path.display().to_string();
        let size = std::fs::metadata(path).map_err(io_err(path))?.len();
        if size > MAX_IMAGE_SIZE {
            collector.rejected.push(format!(
                "{name}: {size} bytes is over the limit of {MAX_IMAGE_SIZE} bytes for one image"
            ));
            continue;
        }
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        match read_png_codes(&bytes) {
            Ok(codes) if codes.is_empty() => {
                collector.rejected.push(format!("{name}: no QR code found"))
            }
            Ok(codes) => {
                for code in codes {
                    // A rejected frame is recorded in the collector; keep reading the others.
                    let _ = collector.receive(&name, &code);
                }
            }
            Err(reason) => collector.rejected.push(format!("{name}: PNG: {reason}")),
        }
        if collector.progress().complete {
            break;
        }
    }
    collector.finish()
}

// ---------------------------------------------------------------------------------------------
// Files and the command line

fn read_input(path: &Path) -> Result<Vec<u8>, QrError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if meta.len() == 0 || meta.len() > MAX_FILE_SIZE {
        return Err(QrError::FileSize {
            path: path.to_path_buf(),
            size: meta.len(),
            max: MAX_FILE_SIZE,
        });
    }
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_SIZE + 1).read_to_end(&mut data))
        .map_err(io_err(path))?;
    Ok(data)
}

/// Writes `data` to `path` only if `path` does not exist (see [`crate::folder::write_new_file`]).
fn write_new_file(path: &Path, data: &[u8]) -> Result<(), QrError> {
    crate::folder::write_new_file(path, data).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            QrError::OutputExists(path.to_path_buf())
        } else {
            QrError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Largest envelope shown as one single frame at the default fragment size: a signature bundle
/// or a transcript seal then needs no fountain at all (a version-20 QR code, 97 modules wide).
pub const ONE_FRAME_MAX: usize = 400;

/// The fragment size for `data`: with the default size, a file whose envelope fits in
/// [`ONE_FRAME_MAX`] bytes is sent as one fragment; otherwise the size asked for.
pub fn one_frame_size(data: &[u8], fragment_size: usize) -> usize {
    let envelope = make_envelope(data).len();
    if fragment_size == DEFAULT_FRAGMENT_SIZE
        && envelope > fragment_size
        && envelope <= ONE_FRAME_MAX
    {
        envelope
    } else {
        fragment_size
    }
}

/// What `conclave qr encode` does: print the file's identity, then animate in the terminal,
/// print `frames` frames one after another (`animate == false`), or write PNG frames.
pub struct EncodeCommand<'a> {
    /// The file to send.
    pub file: &'a Path,
    /// Write PNG frames into this folder instead of animating.
    pub png_dir: Option<&'a Path>,
    /// Bytes per fragment.
    pub fragment_size: usize,
    /// Time per frame in the terminal animation.
    pub interval: Duration,
    /// Number of frames to write or print (default: 1.5 times the fragment count).
    pub frames: Option<usize>,
    /// Print frames one after another instead of animating (for logs and tests).
    pub animate: bool,
}

/// Runs `conclave qr encode`; messages go to `out`.
pub fn cli_encode(cmd: &EncodeCommand<'_>, out: &mut dyn Write) -> Result<(), QrError> {
    let data = read_input(cmd.file)?;
    let options = EncodeOptions {
        fragment_size: one_frame_size(&data, cmd.fragment_size),
        ..EncodeOptions::default()
    };
    let mut anim = Animation::new(&data, &options)?;
    let count = cmd
        .frames
        .unwrap_or_else(|| anim.recommended_frames())
        .max(1);
    let header = identity_text(cmd.file, &anim);
    let stdout_err = |source| QrError::Io {
        path: PathBuf::from("<stdout>"),
        source,
    };
    if let Some(dir) = cmd.png_dir {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let digits = count.to_string().len().max(3);
        for i in 1..=count {
            let text = anim.next_frame()?;
            let matrix = QrMatrix::encode(&text, i)?;
            let path = dir.join(format!("frame-{i:0digits$}.png"));
            let png = matrix
                .to_png(options.module_px, PNG_QUIET_ZONE)
                .map_err(|reason| QrError::Png {
                    path: path.clone(),
                    reason,
                })?;
            write_new_file(&path, &png)?;
        }
        writeln!(
            out,
            "{header}wrote {count} PNG frames to {} (a reader needs about {} of them)",
            dir.display(),
            anim.fragment_count()
        )
        .map_err(stdout_err)?;
        return Ok(());
    }
    if !cmd.animate {
        write!(out, "{header}").map_err(stdout_err)?;
        for i in 1..=count {
            let text = anim.next_frame()?;
            let matrix = QrMatrix::encode(&text, i)?;
            write!(
                out,
                "frame {i}/{count}\n{}",
                matrix.to_terminal(TERMINAL_QUIET_ZONE)
            )
            .map_err(stdout_err)?;
        }
        return Ok(());
    }
    terminal::animate(&mut anim, &header, cmd.interval)
}

fn identity_text(file: &Path, anim: &Animation) -> String {
    let mut s = String::new();
    let words = pgp_words(&anim.sha256);
    let _ = writeln!(
        s,
        "file     {} ({} bytes, {} compressed, {} fragments)",
        file.display(),
        anim.file_len,
        anim.envelope_len,
        anim.fragment_count()
    );
    // Two lines of eight groups, so it fits an 80-column console.
    let groups = hex_groups(&anim.sha256);
    let groups: Vec<&str> = groups.split(' ').collect();
    for (i, line) in groups.chunks(8).enumerate() {
        let label = if i == 0 { "sha256" } else { "" };
        let _ = writeln!(s, "{label:8} {}", line.join(" "));
    }
    for (i, line) in words.chunks(8).enumerate() {
        let label = if i == 0 { "words" } else { "" };
        let _ = writeln!(s, "{label:8} {}", line.join(" "));
    }
    s
}

/// Runs `conclave qr decode`: reads the PNG frames, rebuilds the file, and writes it to `out_file`
/// only if its SHA-256 matches the one in the frames and `out_file` does not exist yet.
pub fn cli_decode<P: AsRef<Path>>(
    images: &[P],
    out_file: &Path,
    out: &mut dyn Write,
) -> Result<Rebuilt, QrError> {
    if out_file.symlink_metadata().is_ok() {
        return Err(QrError::OutputExists(out_file.to_path_buf()));
    }
    let rebuilt = decode_pngs(images)?;
    write_new_file(out_file, &rebuilt.data)?;
    let stdout_err = |source| QrError::Io {
        path: PathBuf::from("<stdout>"),
        source,
    };
    for r in &rebuilt.rejected {
        // The reason may quote the frames' content: shown escaped.
        writeln!(
            out,
            "rejected {}",
            crate::text::show_message(&r.to_string())
        )
        .map_err(stdout_err)?;
    }
    let words = pgp_words(&rebuilt.sha256);
    write!(
        out,
        "wrote    {} ({} bytes from {} frames)\nsha256   {}\nwords    {}\n",
        out_file.display(),
        rebuilt.data.len(),
        rebuilt.accepted,
        hex_groups(&rebuilt.sha256),
        words.join(" ")
    )
    .map_err(stdout_err)?;
    Ok(rebuilt)
}

mod terminal {
    //! The terminal animation: alternate screen, raw mode, stops on any key press.
    use super::{Animation, QrError, QrMatrix, TERMINAL_QUIET_ZONE};
    use crossterm::event::{self, Event, KeyEventKind};
    use crossterm::{cursor, execute, queue, terminal};
    use std::io::Write;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    struct Guard;

    impl Drop for Guard {
        fn drop(&mut self) {
            let mut stdout = std::io::stdout();
            let _ = execute!(stdout, cursor::Show, terminal::LeaveAlternateScreen);
            let _ = terminal::disable_raw_mode();
        }
    }

    fn term_err(source: std::io::Error) -> QrError {
        QrError::Io {
            path: PathBuf::from("<terminal>"),
            source,
        }
    }

    pub(super) fn animate(
        anim: &mut Animation,
        header: &str,
        interval: Duration,
    ) -> Result<(), QrError> {
        // Render one cycle ahead of time so frame changes are instant; fountain frames after the
        // first cycle are generated as we go.
        let first = QrMatrix::encode(&anim.next_frame()?, 1)?;
        let (need_cols, qr_rows) = first.terminal_size(TERMINAL_QUIET_ZONE);
        // One status line is the minimum; the file's identity (SHA-256 in hex and words) is shown
        // above the code when the terminal has room, and always printed to the normal screen
        // before and after the animation.
        let need_rows = qr_rows + 1;
        let (cols, rows) = terminal::size().map_err(term_err)?;
        if usize::from(cols) < need_cols || usize::from(rows) < need_rows {
            return Err(QrError::TerminalTooSmall {
                cols,
                rows,
                need_cols,
                need_rows,
            });
        }
        let header_width = header.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        let show_header = usize::from(cols) >= header_width
            && usize::from(rows) >= need_rows + header.lines().count();
        terminal::enable_raw_mode().map_err(term_err)?;
        let _guard = Guard;
        let mut stdout = std::io::stdout();
        execute!(
            stdout,
            terminal::EnterAlternateScreen,
            cursor::Hide,
            terminal::Clear(terminal::ClearType::All)
        )
        .map_err(term_err)?;
        let mut matrix = first;
        let mut shown = 1usize;
        loop {
            let started = Instant::now();
            queue!(stdout, cursor::MoveTo(0, 0)).map_err(term_err)?;
            let mut text = String::new();
            if show_header {
                for line in header.lines() {
                    text.push_str(line);
                    text.push_str("\r\n");
                }
            }
            text.push_str(&format!(
                "frame {shown} (fragments {}) - any key stops\r\n",
                anim.fragment_count()
            ));
            text.push_str(
                &matrix
                    .to_terminal(TERMINAL_QUIET_ZONE)
                    .replace('\n', "\r\n"),
            );
            stdout.write_all(text.as_bytes()).map_err(term_err)?;
            stdout.flush().map_err(term_err)?;
            shown += 1;
            matrix = QrMatrix::encode(&anim.next_frame()?, shown)?;
            let wait = interval.saturating_sub(started.elapsed());
            if event::poll(wait).map_err(term_err)?
                && let Event::Key(key) = event::read().map_err(term_err)?
                && key.kind == KeyEventKind::Press
            {
                drop(_guard);
                println!("{header}stopped after {} frames", shown - 1);
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};

    #[test]
    fn a_png_declaring_billions_of_pixels_is_refused_not_allocated() {
        // Found by the qr_png fuzz target: a 633-byte PNG whose header claims 180 x 2,046,820,532
        // pixels made the decoder allocate 368 GB and abort the process. Same header here, on
        // a real frame, with a valid CRC.
        let mut png = QrMatrix::encode("UR:BYTES/1-1/XYZ", 0)
            .unwrap()
            .to_png(4, 4)
            .unwrap();
        assert!(read_png_codes(&png).is_ok(), "the unmodified frame reads");
        assert_eq!(&png[12..16], b"IHDR");
        png[16..20].copy_from_slice(&180u32.to_be_bytes());
        png[20..24].copy_from_slice(&2_046_820_532u32.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&png[12..29]);
        png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        let err = read_png_codes(&png).unwrap_err();
        assert_eq!(
            err,
            "image of 180 x 2046820532 pixels is over the limit of 16777216 pixels"
        );
    }

    /// A multipart UR frame with a header of our choosing (the `ur` crate's decoder trusts it).
    fn forged_frame(seq: u64, count: u64, message_length: u64, data: &[u8]) -> String {
        let mut cbor = Vec::new();
        cbor_head(&mut cbor, 4, 5);
        for v in [seq, count, message_length, 0x1234_5678] {
            cbor_head(&mut cbor, 0, v);
        }
        cbor_head(&mut cbor, 2, data.len() as u64);
        cbor.extend_from_slice(data);
        format!(
            "UR:BYTES/{seq}-{count}/{}",
            ur::bytewords::encode(&cbor, ur::bytewords::Style::Minimal)
        )
        .to_ascii_uppercase()
    }

    /// Headers that announce more than Conclave ever sends are refused before the `ur` crate
    /// sees the frame. Before: 4 x 10^9 fragments made it allocate 32 GB and abort the process,
    /// 2 x 10^7 ran past 60 s.
    #[test]
    fn a_frame_announcing_a_huge_message_is_refused_by_its_header() {
        for (seq, count, len, data, why) in [
            (
                9,
                4_000_000_000,
                4_000_000_000,
                &[1u8][..],
                "message of 4000000000 bytes",
            ),
            (
                30_000_000,
                20_000_000,
                20_000_000,
                &[1u8][..],
                "message of 20000000 bytes",
            ),
            (70_000, 65_537, 65_537, &[1u8][..], "65537 fragments"),
            (9, 4_000_000_000, 8, &[1u8; 8][..], "4000000000 fragments"),
            (9, 3, 8, &[1u8; 8][..], "3 fragments for 8 bytes"),
        ] {
            let frame = forged_frame(seq, count, len, data);
            let mut c = Collector::new();
            let err = c.receive("forged.png", frame.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(why), "{err} (wanted {why})");
            assert_eq!(c.progress().resolved, 0);
        }
        // A frame of the same shape with an honest header is accepted.
        let mut c = Collector::new();
        let frame = forged_frame(5, 4, 32, &[1u8; 8]);
        c.receive("honest.png", frame.as_bytes()).expect("accepted");
    }

    /// Grey noise where a frame belongs: a large image is scaled down before the search, and an
    /// image crossed by more finder-pattern candidates than QR codes have is refused before the
    /// QR reader compares them pairwise (an 8192 x 8192 noise PNG ran past 900 s; 4096 x 4096
    /// noise still takes minutes in that reader).
    #[test]
    fn noise_and_pages_of_finder_patterns_are_refused_quickly() {
        let png = |w: u32, h: u32, px: &[u8]| {
            let mut out = Vec::new();
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            let mut wr = enc.write_header().unwrap();
            wr.write_image_data(px).unwrap();
            wr.finish().unwrap();
            out
        };
        let n = 2048usize;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let noise: Vec<u8> = (0..n * n)
            .map(|_| if rng.next_u32() & 1 == 0 { 0 } else { 255 })
            .collect();
        let err = read_png_codes(&png(n as u32, n as u32, &noise)).unwrap_err();
        assert!(err.contains("finder-pattern candidates"), "{err}");
        // A page of finder patterns, 7 pixels each, 1 pixel apart.
        let n = 1024usize;
        let finder = |x: usize, y: usize| {
            let (x, y) = (x % 8, y % 8);
            if x == 7 || y == 7 {
                return 255;
            }
            let ring = x.min(y).min(6 - x).min(6 - y);
            if ring == 1 { 255 } else { 0 }
        };
        let page: Vec<u8> = (0..n * n).map(|i| finder(i % n, i / n)).collect();
        let err = read_png_codes(&png(n as u32, n as u32, &page)).unwrap_err();
        assert!(err.contains("finder-pattern candidates"), "{err}");
        // A real frame, scaled up three times beyond the search size, still reads.
        let frame = QrMatrix::encode("UR:BYTES/1-1/XYZ", 0).unwrap();
        let small = frame.to_png(4, 4).unwrap();
        assert_eq!(read_png_codes(&small).unwrap().len(), 1);
        let big = frame.to_png(48, 4).unwrap();
        assert_eq!(
            read_png_codes(&big).unwrap(),
            read_png_codes(&small).unwrap()
        );
    }

    /// Incompressible test data.
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut v = vec![0u8; n];
        rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
        v
    }

    #[test]
    fn envelope_round_trip_and_strictness() {
        let file = b"{\"signed\":{\"_type\":\"root\"}}".repeat(20);
        let env = make_envelope(&file);
        let (back, digest) = open_envelope(&env).expect("valid envelope");
        assert_eq!(back, file);
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&file)));

        // Wrong hash carried: refused with the hash mismatch.
        let mut deflated = DeflateEncoder::new(Vec::new(), Compression::best());
        deflated.write_all(&file).expect("vec");
        let deflated = deflated.finish().expect("vec");
        let wrong = envelope_from_parts(file.len() as u64, &[7u8; 32], &deflated);
        assert!(matches!(
            open_envelope(&wrong),
            Err(QrError::HashMismatch { .. })
        ));
        // Wrong length declared.
        let hash: [u8; 32] = Sha256::digest(&file).into();
        let short = envelope_from_parts(file.len() as u64 - 1, &hash, &deflated);
        assert!(matches!(open_envelope(&short), Err(QrError::Envelope(_))));
        // Trailing bytes, truncation, other version.
        let mut trailing = env.clone();
        trailing.push(0);
        assert!(matches!(
            open_envelope(&trailing),
            Err(QrError::Envelope(_))
        ));
        assert!(matches!(
            open_envelope(&env[..env.len() - 1]),
            Err(QrError::Envelope(_))
        ));
        let mut v2 = env.clone();
        v2[1] = 2;
        assert!(matches!(open_envelope(&v2), Err(QrError::Envelope(_))));
    }

    #[test]
    fn frames_are_uppercase_alphanumeric_mode_text() {
        let mut anim = Animation::new(&[1u8; 2000], &EncodeOptions::default()).expect("encode");
        for f in anim.frames(5).expect("frames") {
            assert!(f.starts_with("UR:BYTES/"), "{f}");
            assert!(
                f.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "/:-".contains(c)),
                "{f}"
            );
        }
    }

    #[test]
    fn terminal_rendering_uses_half_blocks_with_quiet_zone() {
        let m = QrMatrix::encode("UR:BYTES/HELLO", 1).expect("qr");
        let t = m.to_terminal(2);
        let lines: Vec<&str> = t.lines().collect();
        let side = m.width() + 4;
        assert_eq!(lines.len(), side.div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == side));
        assert!(
            lines[0].chars().all(|c| c == '█'),
            "quiet zone row is all light"
        );
        assert!(t.chars().all(|c| "▀▄█ \n".contains(c)));
        assert!(t.contains(' '), "dark modules present");
    }

    #[test]
    fn png_round_trip_through_rqrr() {
        let text = "UR:BYTES/1-3/LPADAXCSKP";
        let m = QrMatrix::encode(text, 1).expect("qr");
        let png = m.to_png(4, PNG_QUIET_ZONE).expect("png");
        let codes = read_png_codes(&png).expect("read");
        assert_eq!(codes, vec![text.as_bytes().to_vec()]);
    }

    #[test]
    fn corrupted_frame_text_is_rejected() {
        let file = noise(3000, 1);
        let mut anim = Animation::new(&file, &EncodeOptions::default()).expect("encode");
        let frames = anim.frames(anim.recommended_frames()).expect("frames");
        let mut c = Collector::new();
        // Change one character of the bytewords body of the first frame.
        let mut bad = frames[0].clone().into_bytes();
        let last = bad.len() - 10;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        assert!(matches!(
            c.receive("frame-1", &bad),
            Err(QrError::FrameRejected { .. })
        ));
        for f in &frames {
            c.receive("good", f.as_bytes())
                .expect("good frame accepted");
        }
        let rebuilt = c.finish().expect("rebuilt");
        assert_eq!(rebuilt.data, file);
        assert_eq!(rebuilt.rejected.len(), 1);
    }

    #[test]
    fn frame_from_other_message_rejected_before_completion() {
        let mut a = Animation::new(&noise(3000, 4), &EncodeOptions::default()).expect("a");
        let file_b = noise(3000, 2);
        let mut b = Animation::new(&file_b, &EncodeOptions::default()).expect("b");
        let mut c = Collector::new();
        c.receive("b1", b.next_frame().expect("b").as_bytes())
            .expect("first frame");
        let err = c.receive("a1", a.next_frame().expect("a").as_bytes());
        assert!(matches!(err, Err(QrError::FrameRejected { .. })), "{err:?}");
    }

    #[test]
    fn elimination_rebuilds_where_peeling_is_stuck() {
        use rand::seq::SliceRandom;
        let file = noise(4700, 7);
        let mut anim = Animation::new(&file, &EncodeOptions::default()).expect("encode");
        let k = anim.fragment_count();
        let frames = anim.frames(2 * k).expect("frames");
        let mut only_elimination = 0;
        for seed in 0..100 {
            let mut kept = frames.clone();
            kept.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            kept.truncate(frames.len() * 7 / 10);
            let mut c = Collector::new();
            for f in &kept {
                c.receive("f", f.as_bytes()).expect("accepted");
            }
            if c.progress().complete && !c.decoder.complete() {
                only_elimination += 1;
                assert_eq!(c.finish().expect("rebuilt by elimination").data, file);
            }
        }
        assert!(only_elimination > 0, "no case needed elimination");
    }

    #[test]
    fn frame_of_other_message_rejected_after_completion_too() {
        let file = noise(3000, 8);
        let mut anim = Animation::new(&file, &EncodeOptions::default()).expect("encode");
        let mut other = Animation::new(&noise(3000, 9), &EncodeOptions::default()).expect("b");
        let mut c = Collector::new();
        for f in anim.frames(anim.recommended_frames()).expect("frames") {
            c.receive("f", f.as_bytes()).expect("accepted");
        }
        assert!(c.progress().complete);
        let err = c.receive("other", other.next_frame().expect("frame").as_bytes());
        assert!(matches!(err, Err(QrError::FrameRejected { .. })), "{err:?}");
        assert_eq!(c.finish().expect("rebuilt").data, file);
    }

    #[test]
    fn incomplete_set_is_an_error_not_a_file() {
        let file = noise(5000, 3);
        let mut anim = Animation::new(&file, &EncodeOptions::default()).expect("encode");
        let frames = anim.frames(2).expect("frames");
        let mut c = Collector::new();
        for f in &frames {
            c.receive("f", f.as_bytes()).expect("accepted");
        }
        assert!(matches!(c.finish(), Err(QrError::Incomplete { .. })));
    }
}
