//! Removable media: finding destinations, atomic export with read-back, import.
//!
//! Everything that touches the system goes through two small traits so the logic is tested
//! without hardware: [`SystemView`] (reads of `/proc`, `/sys`, `/dev/disk` and free space) for
//! discovery, and [`MediaFs`] (create, rename, sync, read) for export. [`StdFs`] and
//! [`RealSystem`] are the real edges.

use crate::text::{show, show_message};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Name of the checksum file written last by every export.
pub const SUMS_NAME: &str = "SHA256SUMS";
/// Default largest file that import reads.
pub const DEFAULT_IMPORT_LIMIT: u64 = 256 * 1024 * 1024;
/// One import reads at most this many times its per-file limit in all (files after that are
/// refused and listed): a stick full of large files cannot fill the appliance's memory.
pub const IMPORT_TOTAL_FACTOR: u64 = 2;
/// Suffix of temporary files during export (`.NAME.conclave-tmp`).
pub const TEMP_SUFFIX: &str = ".conclave-tmp";
/// Largest `SHA256SUMS` an export reads back from the media to keep its earlier entries (about
/// 10,000 lines).
pub const MAX_SUMS_SIZE: u64 = 1024 * 1024;

// =============================================================================================
// Errors

/// Errors of media discovery, export and import. Export errors say what was written and what not.
#[derive(Debug, thiserror::Error)]
pub enum UsbError {
    /// A file name that is not a plain name inside the folder.
    #[error("\"{}\": not a valid file name: {reason}", crate::text::show(.name))]
    InvalidName {
        /// The name.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The destination is not a folder.
    #[error("{0}: not a folder")]
    NotAFolder(PathBuf),
    /// A file named for export has no name Conclave can export it under.
    #[error("{}: not a file name Conclave can export", .0.display())]
    NotExportable(PathBuf),
    /// A file named for export cannot be read (missing, not a regular file, over the limit).
    #[error("{0}")]
    Unreadable(String),
    /// A file of the same name with different content exists; nothing was written.
    #[error(
        "{path}: exists with different content; nothing was written (export again with overwrite, or choose another folder)"
    )]
    Conflict {
        /// The existing file.
        path: PathBuf,
    },
    /// The media has too little free space; nothing was written.
    #[error(
        "{dir}: {free} bytes free, the export needs {needed} bytes (plus filesystem overhead); nothing was written"
    )]
    NoSpace {
        /// The destination folder.
        dir: PathBuf,
        /// Bytes free.
        free: u64,
        /// Bytes to write.
        needed: u64,
    },
    /// Writing failed part way. Files under `written` are complete and were read back; files under
    /// `not_written` were not touched (no partial file under a final name, temporary files removed).
    #[error("{path}: {op} failed: {source}; written: [{}]; not written: [{}]{}", .written.join(", "), .not_written.join(", "), leftover_note(.leftover))]
    Write {
        /// The file concerned.
        path: PathBuf,
        /// The operation that failed (write, rename, sync folder, read back, sync).
        op: &'static str,
        /// The underlying error.
        source: io::Error,
        /// Names written completely (final names).
        written: Vec<String>,
        /// Names not written.
        not_written: Vec<String>,
        /// A temporary file that could not be removed, if any.
        leftover: Option<PathBuf>,
    },
    /// Reading back a written file gave different bytes.
    #[error("{path}: read back differs from what was written ({actual_len} bytes read, {expected_len} meant); written: [{}]; not written: [{}]", .written.join(", "), .not_written.join(", "))]
    ReadBack {
        /// The file concerned.
        path: PathBuf,
        /// Bytes meant.
        expected_len: usize,
        /// Bytes read.
        actual_len: usize,
        /// Names written completely before this one.
        written: Vec<String>,
        /// Names not (verified as) written.
        not_written: Vec<String>,
    },
    /// Something other than a regular file sits at a name the export writes (a symbolic link,
    /// a named pipe, a device, a folder), or it cannot be read; nothing was written.
    #[error("{path}: {source}; nothing was written (remove it, or choose another folder)")]
    Unusable {
        /// The entry.
        path: PathBuf,
        /// What it is, or why it cannot be read.
        source: io::Error,
    },
    /// The export's destination is not on a mounted removable or USB medium; nothing was written.
    #[error("{path}: not on removable media: {reason}; nothing was written")]
    NotRemovable {
        /// The destination asked for.
        path: PathBuf,
        /// What it is on instead.
        reason: String,
    },
    /// Reading a folder or file failed.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

fn leftover_note(leftover: &Option<PathBuf>) -> String {
    match leftover {
        Some(p) => format!("; temporary file {} could not be removed", p.display()),
        None => String::new(),
    }
}

/// An entry the export cannot use: what it is (a link, a pipe, a device, a folder, too large)
/// as [`UsbError::Unusable`], a failed read as [`UsbError::Io`].
fn unusable(path: &Path, source: io::Error) -> UsbError {
    let path = path.to_path_buf();
    match source.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::FileTooLarge => {
            UsbError::Unusable { path, source }
        }
        _ => UsbError::Io { path, source },
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> UsbError + '_ {
    move |source| UsbError::Io {
        path: path.to_path_buf(),
        source,
    }
}

// =============================================================================================
// Discovery

/// Reads of the running system that discovery needs (real: [`RealSystem`]; tests: a fake).
pub trait SystemView {
    /// Reads a small text file (e.g. `/proc/mounts`, `/sys/block/sdb/removable`).
    fn read_to_string(&self, path: &Path) -> io::Result<String>;
    /// Reads a symbolic link's target.
    fn read_link(&self, path: &Path) -> io::Result<PathBuf>;
    /// Names in a folder.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Size and free space of the filesystem mounted at `mount_point`.
    fn space(&self, mount_point: &Path) -> io::Result<Space>;
    /// The first `len` bytes of a device (for the FAT label when udev gives none).
    fn read_head(&self, path: &Path, len: usize) -> io::Result<Vec<u8>>;
}

/// Size and free space of a filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Total size.
    pub total: u64,
    /// Space available to this user.
    pub free: u64,
}

/// The running system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealSystem;

impl SystemView for RealSystem {
    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::read_link(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
    fn read_head(&self, path: &Path, len: usize) -> io::Result<Vec<u8>> {
        let mut head = Vec::with_capacity(len);
        std::fs::File::open(path)?
            .take(len as u64)
            .read_to_end(&mut head)?;
        Ok(head)
    }
    fn space(&self, mount_point: &Path) -> io::Result<Space> {
        let st = rustix::fs::statvfs(mount_point).map_err(io::Error::from)?;
        Ok(Space {
            total: st.f_blocks.saturating_mul(st.f_frsize),
            free: st.f_bavail.saturating_mul(st.f_frsize),
        })
    }
}

/// One line of `/proc/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Device (e.g. `/dev/sdb1`).
    pub device: String,
    /// Mount point, unescaped.
    pub mount_point: PathBuf,
    /// Filesystem type (e.g. `vfat`).
    pub fstype: String,
    /// Mount options (e.g. `rw`, `relatime`).
    pub options: Vec<String>,
}

/// Undoes the octal escapes of `/proc/mounts` (`\040` space, `\011` tab, `\012`, `\134`).
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(Ok(v)) = field.get(i + 1..i + 4).map(|o| u8::from_str_radix(o, 8))
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the text of `/proc/mounts`; malformed lines are skipped.
pub fn parse_mounts(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let device = fields.next()?;
            let mount_point = fields.next()?;
            let fstype = fields.next()?;
            let options = fields.next()?;
            Some(MountEntry {
                device: unescape_octal(device),
                mount_point: PathBuf::from(unescape_octal(mount_point)),
                fstype: fstype.to_string(),
                options: options.split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// Undoes udev's `\xNN` escapes in `/dev/disk/by-label` names.
fn unescape_udev(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && bytes.get(i + 1) == Some(&b'x')
            && let Some(Ok(v)) = name.get(i + 2..i + 4).map(|h| u8::from_str_radix(h, 16))
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The volume label in a FAT12/16/32 boot sector, if it has one (`NO NAME` counts as none).
pub fn fat_label(boot_sector: &[u8]) -> Option<String> {
    if boot_sector.get(510..512)? != [0x55, 0xAA] {
        return None;
    }
    // Sectors per FAT in the BPB is 0 on FAT32, which moves the extended boot record.
    let fat32 = boot_sector.get(0x16..0x18)? == [0, 0];
    let (signature, label) = if fat32 { (0x42, 0x47) } else { (0x26, 0x2B) };
    if *boot_sector.get(signature)? != 0x29 {
        return None;
    }
    let raw = boot_sector.get(label..label + 11)?;
    let text: String = raw
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    let text = text.trim_end();
    (!text.is_empty() && text != "NO NAME").then(|| text.to_string())
}

/// A mounted filesystem on removable or USB storage: a candidate export destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Medium {
    /// Device node (e.g. `/dev/sdb1`).
    pub device: String,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Filesystem type.
    pub fstype: String,
    /// Filesystem label, when udev provides one.
    pub label: Option<String>,
    /// Size of the block device in bytes, when known.
    pub device_size: Option<u64>,
    /// Filesystem size and free space, when known.
    pub space: Option<Space>,
    /// Mounted read-only.
    pub read_only: bool,
    /// The disk reports itself removable.
    pub removable: bool,
    /// The disk is attached over USB.
    pub usb: bool,
}

/// Finds mounted filesystems on removable or USB block devices.
pub fn find_media(sys: &dyn SystemView) -> Result<Vec<Medium>, UsbError> {
    let mounts_path = Path::new("/proc/mounts");
    let mounts = sys
        .read_to_string(mounts_path)
        .map_err(io_at(mounts_path))?;
    let mut labels = BTreeMap::new();
    let by_label = Path::new("/dev/disk/by-label");
    for name in sys.read_dir(by_label).unwrap_or_default() {
        if let Ok(target) = sys.read_link(&by_label.join(&name))
            && let Some(dev) = target.file_name()
        {
            labels.insert(dev.to_string_lossy().into_owned(), unescape_udev(&name));
        }
    }
    let mut media = Vec::new();
    for m in parse_mounts(&mounts) {
        let Some(devname) = m.device.strip_prefix("/dev/") else {
            continue;
        };
        if devname.contains('/') || devname.is_empty() {
            continue; // /dev/mapper/..., /dev/disk/by-...: not a plain block device name
        }
        let class = Path::new("/sys/class/block").join(devname);
        let Ok(link) = sys.read_link(&class) else {
            continue;
        };
        let is_partition = sys.read_to_string(&class.join("partition")).is_ok();
        let disk = if is_partition {
            match link.parent().and_then(Path::file_name) {
                Some(d) => d.to_string_lossy().into_owned(),
                None => continue,
            }
        } else {
            devname.to_string()
        };
        let removable = sys
            .read_to_string(&Path::new("/sys/block").join(&disk).join("removable"))
            .map(|s| s.trim() == "1")
            .unwrap_or(false);
        let usb = link.to_string_lossy().contains("/usb");
        if !(removable || usb) {
            continue;
        }
        let device_size = sys
            .read_to_string(&class.join("size"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(|sectors| sectors.saturating_mul(512));
        let label = labels.get(devname).cloned().or_else(|| {
            matches!(m.fstype.as_str(), "vfat" | "msdos")
                .then(|| sys.read_head(Path::new(&m.device), 512).ok())
                .flatten()
                .and_then(|sector| fat_label(&sector))
        });
        media.push(Medium {
            label,
            space: sys.space(&m.mount_point).ok(),
            read_only: m.options.iter().any(|o| o == "ro"),
            device: m.device,
            mount_point: m.mount_point,
            fstype: m.fstype,
            device_size,
            removable,
            usb,
        });
    }
    Ok(media)
}

/// The system's files read below another folder: `ROOT/proc/self/mountinfo`, `ROOT/sys/...`,
/// `ROOT/dev/...`. Tests give a fake tree this way; [`RealSystem`] is the root `/`.
#[derive(Debug, Clone)]
pub struct RootedSystem {
    /// The folder that stands for `/`.
    pub root: PathBuf,
}

impl RootedSystem {
    fn at(&self, path: &Path) -> PathBuf {
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }
}

impl SystemView for RootedSystem {
    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        RealSystem.read_to_string(&self.at(path))
    }
    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        RealSystem.read_link(&self.at(path))
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        RealSystem.read_dir(&self.at(path))
    }
    fn space(&self, mount_point: &Path) -> io::Result<Space> {
        RealSystem.space(mount_point)
    }
    fn read_head(&self, path: &Path, len: usize) -> io::Result<Vec<u8>> {
        RealSystem.read_head(&self.at(path), len)
    }
}

/// Environment variable that, in debug builds only (the test suite), names a fake tree for
/// [`system`] (see [`RootedSystem`]). Release builds always read the running system.
pub const TEST_SYSTEM_ROOT: &str = "CONCLAVE_TEST_SYSTEM_ROOT";

/// The system view the ceremony's export decides with: the running system (in debug builds,
/// the fake tree named by [`TEST_SYSTEM_ROOT`] when it is set).
pub fn system() -> Box<dyn SystemView> {
    #[cfg(debug_assertions)]
    if let Some(root) = std::env::var_os(TEST_SYSTEM_ROOT) {
        return Box::new(RootedSystem {
            root: PathBuf::from(root),
        });
    }
    Box::new(RealSystem)
}

/// One line of `/proc/self/mountinfo`: the device numbers, the mount point, the filesystem type
/// and the mount source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// `MAJOR:MINOR` of the mounted device (major 0: not a block device, e.g. tmpfs, overlay).
    pub dev: String,
    /// Mount point, unescaped.
    pub mount_point: PathBuf,
    /// Filesystem type.
    pub fstype: String,
    /// Mount source (e.g. `/dev/sdb1`).
    pub source: String,
}

/// Parses the text of `/proc/self/mountinfo` (`ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS
/// [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`); malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut l = left.split_ascii_whitespace();
            let dev = l.nth(2)?;
            let mount_point = l.nth(1)?;
            let mut r = right.split_ascii_whitespace();
            Some(MountInfo {
                dev: dev.to_string(),
                mount_point: PathBuf::from(unescape_octal(mount_point)),
                fstype: r.next()?.to_string(),
                source: unescape_octal(r.next().unwrap_or("none")),
            })
        })
        .collect()
}

/// The nearest folder at or above `path` that exists, with links resolved.
fn existing_ancestor(path: &Path) -> io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut at = absolute.as_path();
    loop {
        match std::fs::canonicalize(at) {
            Ok(real) => return Ok(real),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match at.parent() {
                Some(parent) => at = parent,
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

/// Checks that `dir` (or, when it does not exist yet, the folder it would be created in) is on
/// a mounted filesystem of a removable or USB block device, the way [`find_media`] decides it:
/// the mount that holds it comes from `/proc/self/mountinfo` (the longest mount point above
/// it, the last mounted when several), its device from `/sys/dev/block/MAJOR:MINOR` (for a
/// partition, its disk), and it counts when `/sys/block/DISK/removable` is `1` or the device's
/// sysfs path goes through USB. Anything else (the appliance's own disk, tmpfs, overlay, a
/// network or device-mapper filesystem) is refused, naming the path and what it is on.
pub fn check_removable(sys: &dyn SystemView, dir: &Path) -> Result<MountInfo, UsbError> {
    let refuse = |reason: String| UsbError::NotRemovable {
        path: dir.to_path_buf(),
        reason,
    };
    let real = existing_ancestor(dir).map_err(io_at(dir))?;
    let mountinfo_path = Path::new("/proc/self/mountinfo");
    let text = sys
        .read_to_string(mountinfo_path)
        .map_err(io_at(mountinfo_path))?;
    let mount = parse_mountinfo(&text)
        .into_iter()
        .filter(|m| real.starts_with(&m.mount_point))
        .fold(None::<MountInfo>, |best, m| match best {
            Some(b) if b.mount_point.components().count() > m.mount_point.components().count() => {
                Some(b)
            }
            _ => Some(m),
        })
        .ok_or_else(|| refuse(format!("no mount holds {}", real.display())))?;
    let on = format!(
        "it is on {} ({} from {})",
        mount.mount_point.display(),
        mount.fstype,
        mount.source
    );
    if mount.dev.starts_with("0:") {
        return Err(refuse(format!("{on}, which is not a block device")));
    }
    let class = Path::new("/sys/dev/block").join(&mount.dev);
    let link = sys
        .read_link(&class)
        .map_err(|e| refuse(format!("{on}; its device {} is unknown: {e}", mount.dev)))?;
    let disk = if sys.read_to_string(&class.join("partition")).is_ok() {
        link.parent().and_then(Path::file_name)
    } else {
        link.file_name()
    }
    .map(|d| d.to_string_lossy().into_owned())
    .ok_or_else(|| refuse(format!("{on}; its device {} is unknown", mount.dev)))?;
    let removable = sys
        .read_to_string(&Path::new("/sys/block").join(&disk).join("removable"))
        .is_ok_and(|s| s.trim() == "1");
    let usb = link.to_string_lossy().contains("/usb");
    if removable || usb {
        Ok(mount)
    } else {
        Err(refuse(format!(
            "{on}, disk {disk}, which is neither removable nor attached over USB"
        )))
    }
}

// =============================================================================================
// Export

/// Filesystem operations export needs. Real: [`StdFs`]; tests wrap it to inject faults, or
/// implement it over mtools to write into a vfat image.
pub trait MediaFs {
    /// Whether anything (file, folder, link) exists at `path`.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Whether `path` is a folder.
    fn is_dir(&self, path: &Path) -> io::Result<bool>;
    /// Reads a whole regular file of at most `limit` bytes, without following a symbolic link
    /// and without blocking on a named pipe: a larger file is an error of kind
    /// [`io::ErrorKind::FileTooLarge`]; a link, pipe, device or folder is another error.
    fn read(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>>;
    /// Creates `path` (failing if it exists), writes `data`, and flushes it to the device (fsync).
    fn write_new(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Flushes a folder's entries (fsync of the folder).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Flushes everything to the devices (`sync`).
    fn sync_all(&self) -> io::Result<()>;
    /// Bytes available in the filesystem holding `dir`, when known.
    fn free_space(&self, _dir: &Path) -> io::Result<Option<u64>> {
        Ok(None)
    }
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

impl MediaFs for StdFs {
    fn exists(&self, path: &Path) -> io::Result<bool> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
    fn is_dir(&self, path: &Path) -> io::Result<bool> {
        Ok(std::fs::metadata(path)?.is_dir())
    }
    fn read(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        crate::folder::read_regular_nofollow(path, limit)
    }
    fn write_new(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let name = crate::folder::fault_name(path);
        crate::fault::point(&format!("export create {name}"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(crate::folder::FILE_MODE)
            .open(path)?;
        // Exactly 0644, whatever the umask (on FAT the mount options decide).
        crate::folder::set_mode(&f, crate::folder::FILE_MODE)?;
        crate::fault::point(&format!("export write {name}"));
        f.write_all(data)?;
        crate::fault::point(&format!("export fsync {name}"));
        f.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        crate::fault::point(&format!("export rename {}", crate::folder::fault_name(to)));
        std::fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        crate::fault::point(&format!(
            "export remove {}",
            crate::folder::fault_name(path)
        ));
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        crate::fault::point(&format!(
            "export fsync folder {}",
            crate::folder::fault_name(dir)
        ));
        std::fs::File::open(dir)?.sync_all()
    }
    fn sync_all(&self) -> io::Result<()> {
        crate::fault::point("export sync");
        rustix::fs::sync();
        Ok(())
    }
    fn free_space(&self, dir: &Path) -> io::Result<Option<u64>> {
        RealSystem.space(dir).map(|s| Some(s.free))
    }
}

/// One file to export: its final name in the destination folder and its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    /// Plain file name (no folders).
    pub name: String,
    /// The bytes to write.
    pub data: Vec<u8>,
}

/// Export options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Replace files of the same name with different content.
    pub overwrite: bool,
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportStatus {
    /// Written (it did not exist).
    Written,
    /// Replaced a file with different content (only with `overwrite`).
    Replaced,
    /// A file with exactly these bytes was there already; left as it was.
    AlreadyPresent,
}

/// One exported file in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedFile {
    /// Final name.
    pub name: String,
    /// Size in bytes.
    pub len: u64,
    /// SHA-256 of the bytes (read back and compared).
    pub sha256: [u8; 32],
    /// What happened.
    pub status: ExportStatus,
}

/// The result of a successful export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// Destination folder.
    pub dir: PathBuf,
    /// The files, in the order given, then `SHA256SUMS`.
    pub files: Vec<ExportedFile>,
    /// Everything was flushed with `sync`: the media can be removed.
    pub safe_to_remove: bool,
}

impl ExportReport {
    /// A short text for the user.
    pub fn summary(&self) -> String {
        let mut s = format!("export to {}\n", show(&self.dir.display().to_string()));
        for f in &self.files {
            let status = match f.status {
                ExportStatus::Written => "written",
                ExportStatus::Replaced => "replaced",
                ExportStatus::AlreadyPresent => "already present",
            };
            let _ = writeln!(
                s,
                "  {:<24} {:>9} bytes  sha256 {}  {status}",
                show(&f.name),
                f.len,
                hex::encode(f.sha256)
            );
        }
        if self.safe_to_remove {
            s.push_str("all files read back and synced: it is safe to remove the media now\n");
        } else {
            s.push_str("NOT synced: do not remove the media yet\n");
        }
        s
    }
}

/// Checks that `name` is a plain file name that stays in the folder.
pub fn check_name(name: &str) -> Result<(), UsbError> {
    let invalid = |reason| {
        Err(UsbError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("empty");
    }
    if name == "." || name == ".." {
        return invalid("refers to a folder");
    }
    if name.contains('/') || name.contains('\\') {
        return invalid("contains a path separator");
    }
    if name.chars().any(|c| c.is_control()) {
        return invalid("contains a control character");
    }
    if name.ends_with(TEMP_SUFFIX) {
        return invalid("is a temporary export name");
    }
    if name.len() > 200 {
        return invalid("longer than 200 bytes");
    }
    Ok(())
}

/// Temporary name used while writing `name`.
pub fn temp_name(name: &str) -> String {
    format!(".{name}{TEMP_SUFFIX}")
}

/// The `SHA256SUMS` text (sha256sum format) for the given files, sorted by name.
pub fn sums_text<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut lines: Vec<(String, String)> = files
        .into_iter()
        .map(|(name, data)| (name.to_string(), hex::encode(Sha256::digest(data))))
        .collect();
    lines.sort();
    lines
        .iter()
        .map(|(name, digest)| format!("{digest}  {name}\n"))
        .collect()
}

/// The files named for `conclave usb export`, each read whole but bounded (a regular file of at
/// most `limit` bytes; a named pipe or a device is refused, not waited on) and exported under
/// its own file name.
pub fn read_export_files(paths: &[PathBuf], limit: u64) -> Result<Vec<ExportFile>, UsbError> {
    paths
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| UsbError::NotExportable(p.clone()))?
                .to_string();
            let data = crate::folder::read_limited(p, limit).map_err(UsbError::Unreadable)?;
            Ok(ExportFile { name, data })
        })
        .collect()
}

/// Exports `files` into `dir` atomically (see the module documentation and `docs/transport.md`):
/// checks every name and existing file first, writes each file under a temporary name, fsyncs,
/// renames, fsyncs the folder, reads every file back, writes `SHA256SUMS` last the same way,
/// and finally syncs.
pub fn export_files(
    fs: &dyn MediaFs,
    dir: &Path,
    files: &[ExportFile],
    options: ExportOptions,
) -> Result<ExportReport, UsbError> {
    // 1. Check everything before touching the media.
    match fs.is_dir(dir) {
        Ok(true) => {}
        Ok(false) => return Err(UsbError::NotAFolder(dir.to_path_buf())),
        Err(e) => return Err(io_at(dir)(e)),
    }
    let mut seen = BTreeSet::new();
    for f in files {
        check_name(&f.name)?;
        if f.name == SUMS_NAME {
            return Err(UsbError::InvalidName {
                name: f.name.clone(),
                reason: "SHA256SUMS is written by the export itself",
            });
        }
        if !seen.insert(f.name.as_str()) {
            return Err(UsbError::InvalidName {
                name: f.name.clone(),
                reason: "given twice",
            });
        }
    }
    // SHA256SUMS is the folder's manifest: it keeps the entries of files exported earlier (a
    // later ceremony adds 2.root.json beside 1.root.json) and is replaced, never a conflict.
    let sums_path = dir.join(SUMS_NAME);
    let mut manifest: BTreeMap<String, String> = BTreeMap::new();
    if fs.exists(&sums_path).map_err(io_at(&sums_path))? {
        let old = fs
            .read(&sums_path, MAX_SUMS_SIZE)
            .map_err(|source| unusable(&sums_path, source))?;
        for (name, digest) in parse_sums(&String::from_utf8_lossy(&old)).0 {
            if fs.exists(&dir.join(&name)).map_err(io_at(dir))? {
                manifest.insert(name, digest);
            }
        }
    }
    for f in files {
        manifest.insert(f.name.clone(), hex::encode(Sha256::digest(&f.data)));
    }
    let sums: String = manifest
        .iter()
        .map(|(name, digest)| format!("{digest}  {name}\n"))
        .collect();
    let all: Vec<(&str, &[u8])> = files
        .iter()
        .map(|f| (f.name.as_str(), f.data.as_slice()))
        .chain(std::iter::once((SUMS_NAME, sums.as_bytes())))
        .collect();
    let mut plan = Vec::with_capacity(all.len());
    for &(name, data) in &all {
        let path = dir.join(name);
        let tmp = dir.join(temp_name(name));
        if fs.exists(&tmp).map_err(io_at(&tmp))? {
            // A leftover of an interrupted export: ours by name, never a final file.
            fs.remove(&tmp).map_err(io_at(&tmp))?;
        }
        let status = if fs.exists(&path).map_err(io_at(&path))? {
            // Only a regular file counts, read without following a link (a link to a file with
            // the same bytes would leave the media holding only a link back into this machine)
            // and without blocking (a named pipe); a larger file differs without being read.
            let same = match fs.read(&path, data.len() as u64) {
                Ok(existing) => existing == data,
                Err(e) if e.kind() == io::ErrorKind::FileTooLarge => false,
                Err(source) => return Err(unusable(&path, source)),
            };
            if same {
                ExportStatus::AlreadyPresent
            } else if options.overwrite || name == SUMS_NAME {
                ExportStatus::Replaced
            } else {
                return Err(UsbError::Conflict { path });
            }
        } else {
            ExportStatus::Written
        };
        plan.push((name, data, status));
    }

    let needed: u64 = plan
        .iter()
        .filter(|(_, _, status)| *status != ExportStatus::AlreadyPresent)
        .map(|(_, data, _)| data.len() as u64)
        .sum();
    if let Some(free) = fs.free_space(dir).map_err(io_at(dir))?
        && free < needed
    {
        return Err(UsbError::NoSpace {
            dir: dir.to_path_buf(),
            free,
            needed,
        });
    }

    // 2. Write, one file at a time; SHA256SUMS is last in `plan`.
    let mut done: Vec<String> = Vec::new();
    let names: Vec<String> = plan.iter().map(|(n, _, _)| n.to_string()).collect();
    let not_done = |done: &[String]| -> Vec<String> {
        names
            .iter()
            .filter(|n| !done.contains(n))
            .cloned()
            .collect()
    };
    let mut report = Vec::with_capacity(plan.len());
    for &(name, data, status) in &plan {
        let path = dir.join(name);
        if status != ExportStatus::AlreadyPresent {
            let tmp = dir.join(temp_name(name));
            let step = fs
                .write_new(&tmp, data)
                .map_err(|e| ("write", e))
                .and_then(|()| fs.rename(&tmp, &path).map_err(|e| ("rename", e)))
                .and_then(|()| fs.sync_dir(dir).map_err(|e| ("sync folder", e)));
            if let Err((op, source)) = step {
                let leftover = match fs.exists(&tmp) {
                    Ok(false) => None,
                    _ => fs.remove(&tmp).err().map(|_| tmp.clone()),
                };
                // After a failed rename or folder sync the final name may hold the complete new
                // file or the old one; it never holds a partial file. Report it as not written.
                return Err(UsbError::Write {
                    path,
                    op,
                    source,
                    written: done.clone(),
                    not_written: not_done(&done),
                    leftover,
                });
            }
        }
        // 3. Read back what is under the final name and compare with what was meant.
        let back = match fs.read(&path, data.len() as u64) {
            Ok(b) => b,
            Err(source) => {
                return Err(UsbError::Write {
                    path,
                    op: "read back",
                    source,
                    written: done.clone(),
                    not_written: not_done(&done),
                    leftover: None,
                });
            }
        };
        if back != data {
            return Err(UsbError::ReadBack {
                path,
                expected_len: data.len(),
                actual_len: back.len(),
                written: done.clone(),
                not_written: not_done(&done),
            });
        }
        done.push(name.to_string());
        report.push(ExportedFile {
            name: name.to_string(),
            len: data.len() as u64,
            sha256: Sha256::digest(data).into(),
            status,
        });
    }

    // 4. Flush everything so the media can be removed.
    if let Err(source) = fs.sync_all() {
        return Err(UsbError::Write {
            path: dir.to_path_buf(),
            op: "sync",
            source,
            written: done.clone(),
            not_written: Vec::new(),
            leftover: None,
        });
    }
    Ok(ExportReport {
        dir: dir.to_path_buf(),
        files: report,
        safe_to_remove: true,
    })
}

// =============================================================================================
// Import

/// What a file on the media appears to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// TUF metadata: `signed._type` and `signed.version`.
    TufMetadata {
        /// Role type: root, targets, snapshot or timestamp.
        role: String,
        /// `signed.version`.
        version: u64,
    },
    /// A `SHA256SUMS` file.
    Sha256Sums,
    /// A signature bundle (`conclave bundle`).
    SignatureBundle {
        /// Role of the signed metadata.
        role: String,
        /// Its version.
        version: u64,
        /// Key id that signed.
        keyid: String,
    },
    /// A ceremony transcript (`*.jsonl` whose hash chain verifies).
    Transcript {
        /// The script it ran.
        script: String,
        /// Hash of its seal record, when sealed.
        seal: Option<String>,
        /// Number of records.
        records: usize,
    },
    /// Anything else.
    Unknown,
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TufMetadata { role, version } => write!(f, "{role} v{version}"),
            Self::Sha256Sums => f.write_str("checksums"),
            Self::SignatureBundle {
                role,
                version,
                keyid,
            } => write!(f, "signature bundle: {role} v{version} by {keyid}"),
            Self::Transcript {
                script,
                seal,
                records,
            } => match seal {
                Some(h) => write!(
                    f,
                    "ceremony transcript: script {script}, {records} records, sealed (seal {h}); check it with conclave transcript verify --trusted-root"
                ),
                None => write!(
                    f,
                    "ceremony transcript: script {script}, {records} records, NOT sealed"
                ),
            },
            Self::Unknown => f.write_str("unknown"),
        }
    }
}

/// Guesses what `data` is (TUF metadata by `signed._type` and `signed.version`). The JSON is
/// read without building a tree (other members are skipped as they are read), so a file of
/// millions of tiny values costs no more memory than its own bytes.
pub fn sniff(name: &str, data: &[u8]) -> FileKind {
    if name == SUMS_NAME {
        return FileKind::Sha256Sums;
    }
    if name.ends_with(".jsonl")
        && let Ok(t) = crate::transcript::chain::verify_chain(data)
        && let Some(begin) = t.begin()
    {
        return FileKind::Transcript {
            script: crate::transcript::display::clean(&begin.script.name),
            seal: t
                .seal_index()
                .and_then(|i| t.records().get(i))
                .map(|r| r.hash_hex()),
            records: t.records().len(),
        };
    }
    let mut de = serde_json::Deserializer::from_slice(data);
    let Ok(head) = <Head as serde::Deserialize>::deserialize(&mut de) else {
        return FileKind::Unknown;
    };
    if de.end().is_err() {
        return FileKind::Unknown;
    }
    if head.ty == Scalar::Str(super::bundle::BUNDLE_TYPE.to_string())
        && data.len() as u64 <= super::bundle::MAX_BUNDLE_SIZE
        && let Ok(b) = super::bundle::Bundle::from_bytes(name, data)
    {
        return FileKind::SignatureBundle {
            role: b.role,
            version: b.version,
            keyid: b.keyid.0,
        };
    }
    let Some(signed) = head.signed else {
        return FileKind::Unknown;
    };
    match (signed.ty, signed.version) {
        (Scalar::Str(role), Scalar::U64(version))
            if matches!(role.as_str(), "root" | "targets" | "snapshot" | "timestamp") =>
        {
            FileKind::TufMetadata { role, version }
        }
        _ => FileKind::Unknown,
    }
}

/// A JSON value [`sniff`] looks at: a string, an unsigned integer, or anything else (skipped
/// without being kept).
#[derive(Debug, Default, PartialEq, Eq)]
enum Scalar {
    Str(String),
    U64(u64),
    #[default]
    Other,
}

/// The members [`sniff`] looks at in an object: `_type`, `version` and (at the top) `signed`.
#[derive(Debug, Default)]
struct Head {
    ty: Scalar,
    version: Scalar,
    signed: Option<Box<Head>>,
}

/// Skips the rest of a sequence or map without keeping it.
fn skip_seq<'de, A: serde::de::SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
    Ok(())
}

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, s: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(s.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::U64(v))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
                skip_seq(seq).map(|()| Scalar::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Scalar, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> serde::Deserialize<'de> for Head {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Head;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
                let mut head = Head::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match &*key {
                        "_type" => head.ty = map.next_value()?,
                        "version" => head.version = map.next_value()?,
                        "signed" => head.signed = Some(Box::new(map.next_value()?)),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(head)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Head, A::Error> {
                skip_seq(seq).map(|()| Head::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Head, E> {
                Ok(Head::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Head, E> {
                Ok(Head::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Head, E> {
                Ok(Head::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Head, E> {
                Ok(Head::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Head, E> {
                Ok(Head::default())
            }
            fn visit_unit<E>(self) -> Result<Head, E> {
                Ok(Head::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// A file found on the media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedFile {
    /// Name in the folder.
    pub name: String,
    /// Size in bytes.
    pub len: u64,
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
    /// What it appears to be.
    pub kind: FileKind,
    /// The content.
    pub data: Vec<u8>,
}

/// An entry that was not read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Name in the folder (lossy if not UTF-8).
    pub name: String,
    /// Why.
    pub reason: String,
}

/// Result of checking `SHA256SUMS` against the folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SumsCheck {
    /// Names whose content matches.
    pub matched: Vec<String>,
    /// Names whose content differs: (name, expected hex, actual hex).
    pub mismatched: Vec<(String, String, String)>,
    /// Names listed but not present (or refused).
    pub missing: Vec<String>,
    /// Lines that are not `HEX  NAME` with a plain name.
    pub bad_lines: Vec<String>,
}

impl SumsCheck {
    /// True when every listed file is present and matches and no line is malformed.
    pub fn all_ok(&self) -> bool {
        self.mismatched.is_empty() && self.missing.is_empty() && self.bad_lines.is_empty()
    }
}

/// What an import found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The folder.
    pub dir: PathBuf,
    /// Files read, sorted by name.
    pub files: Vec<ImportedFile>,
    /// Entries not read.
    pub refused: Vec<Refused>,
    /// The `SHA256SUMS` check, when the file is present.
    pub sums: Option<SumsCheck>,
}

impl ImportReport {
    /// A short text for the user.
    pub fn summary(&self) -> String {
        let mut s = format!("files in {}\n", show(&self.dir.display().to_string()));
        for f in &self.files {
            let _ = writeln!(
                s,
                "  {:<24} {:>9} bytes  sha256 {}  {}",
                show(&f.name),
                f.len,
                hex::encode(f.sha256),
                f.kind
            );
        }
        for r in &self.refused {
            let _ = writeln!(
                s,
                "  refused {}: {}",
                show(&r.name),
                show_message(&r.reason)
            );
        }
        match &self.sums {
            None => s.push_str("no SHA256SUMS\n"),
            Some(c) if c.all_ok() => {
                let _ = writeln!(s, "SHA256SUMS: all {} files match", c.matched.len());
            }
            Some(c) => {
                for (name, want, got) in &c.mismatched {
                    let _ = writeln!(
                        s,
                        "SHA256SUMS MISMATCH {}: listed {}, is {got}",
                        show(name),
                        show(want)
                    );
                }
                for name in &c.missing {
                    let _ = writeln!(s, "SHA256SUMS lists {}, which is missing", show(name));
                }
                for line in &c.bad_lines {
                    let _ = writeln!(s, "SHA256SUMS malformed line: \"{}\"", show(line));
                }
            }
        }
        s
    }
}

/// Parses sha256sum output: `HEX  NAME` or `HEX *NAME` per line. Returns (name, hex) pairs and
/// malformed lines (including names that are not plain names in the folder).
pub fn parse_sums(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = line.split_once(' ').and_then(|(digest, rest)| {
            let name = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('*'))?;
            let ok_digest = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
            (ok_digest && check_name(name).is_ok())
                .then(|| (name.to_string(), digest.to_ascii_lowercase()))
        });
        match parsed {
            Some(entry) => entries.push(entry),
            None => bad.push(line.to_string()),
        }
    }
    (entries, bad)
}

/// Lists and reads the files in `dir`: each with size, SHA-256 and kind. Refuses (and lists)
/// files over `limit` bytes, files past [`IMPORT_TOTAL_FACTOR`] × `limit` bytes read in all,
/// symbolic links leading outside the folder, sub-folders, special files (opened without
/// blocking, checked once open), non-UTF-8 names and leftover temporary files; checks
/// `SHA256SUMS` when present. Memory stays at the bytes read plus a small constant: what a file
/// is, is found without building a tree of its JSON.
pub fn import_dir(dir: &Path, limit: u64) -> Result<ImportReport, UsbError> {
    let total_limit = limit.saturating_mul(IMPORT_TOTAL_FACTOR);
    let mut total = 0u64;
    let root = std::fs::canonicalize(dir).map_err(io_at(dir))?;
    if !root.is_dir() {
        return Err(UsbError::NotAFolder(dir.to_path_buf()));
    }
    let mut files = Vec::new();
    let mut refused = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&root)
        .map_err(io_at(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_at(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let os_name = entry.file_name();
        let Some(name) = os_name.to_str().map(str::to_string) else {
            refused.push(Refused {
                name: os_name.to_string_lossy().into_owned(),
                reason: "name is not UTF-8".into(),
            });
            continue;
        };
        let mut refuse = |reason: String| {
            refused.push(Refused {
                name: name.clone(),
                reason,
            })
        };
        if let Err(e) = check_name(&name) {
            refuse(e.to_string());
            continue;
        }
        let path = root.join(&name);
        // Resolve links; the target must stay inside the folder.
        let real = match std::fs::canonicalize(&path) {
            Ok(r) => r,
            Err(e) => {
                refuse(format!("cannot resolve: {e}"));
                continue;
            }
        };
        if !real.starts_with(&root) {
            refuse(format!("leads outside the folder, to {}", real.display()));
            continue;
        }
        // Opened without following a link (`real` has none left, unless one was put there since)
        // and without blocking; only a regular file of at most `limit` bytes is read.
        let room = total_limit.saturating_sub(total);
        let data = match crate::folder::read_regular_nofollow(&real, limit.min(room)) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::FileTooLarge && room < limit => {
                refuse(format!(
                    "not read: the import holds {total} bytes already, and the files of one \
                     import are limited to {total_limit} bytes in total"
                ));
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                let size = std::fs::symlink_metadata(&real).map_or(0, |m| m.len());
                refuse(format!("{size} bytes is over the limit of {limit} bytes"));
                continue;
            }
            // What the entry is (a folder, a named pipe, a device, a link put there since).
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                refuse(e.to_string());
                continue;
            }
            Err(e) => {
                refuse(format!("cannot read: {e}"));
                continue;
            }
        };
        total += data.len() as u64;
        files.push(ImportedFile {
            kind: sniff(&name, &data),
            len: data.len() as u64,
            sha256: Sha256::digest(&data).into(),
            name,
            data,
        });
    }
    let sums = check_sums(&files);
    Ok(ImportReport {
        dir: dir.to_path_buf(),
        files,
        refused,
        sums,
    })
}

/// [`import_dir`], and the folders directly inside `dir` too (a tuf-on-ci event's
/// `metadata/root_history/`): their files are listed as `FOLDER/NAME` and count in
/// `SHA256SUMS`, which may list them so; deeper folders, links and special files inside them
/// are refused by name as [`import_dir`] refuses them.
pub fn import_dir_with_subfolders(dir: &Path, limit: u64) -> Result<ImportReport, UsbError> {
    let mut report = import_dir(dir, limit)?;
    let root = std::fs::canonicalize(dir).map_err(io_at(dir))?;
    let mut subs: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(&root).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        let is_dir = entry.file_type().map_err(io_at(dir))?.is_dir();
        if let (true, Some(name)) = (is_dir, entry.file_name().to_str())
            && check_name(name).is_ok()
        {
            subs.push(name.to_string());
        }
    }
    subs.sort();
    for name in subs {
        let sub = import_dir(&root.join(&name), limit)?;
        report.refused.retain(|r| r.name != name);
        report.files.extend(sub.files.into_iter().map(|mut f| {
            f.name = format!("{name}/{}", f.name);
            f
        }));
        report.refused.extend(sub.refused.into_iter().map(|mut r| {
            r.name = format!("{name}/{}", r.name);
            r
        }));
    }
    report.files.sort_by(|a, b| a.name.cmp(&b.name));
    report.sums = check_sums(&report.files);
    Ok(report)
}

/// The `SHA256SUMS` check over the files read, when the file is among them.
fn check_sums(files: &[ImportedFile]) -> Option<SumsCheck> {
    files.iter().find(|f| f.name == SUMS_NAME).map(|sums_file| {
        let (entries, bad_lines) = parse_sums(&String::from_utf8_lossy(&sums_file.data));
        let mut check = SumsCheck {
            bad_lines,
            ..SumsCheck::default()
        };
        for (name, want) in entries {
            match files.iter().find(|f| f.name == name) {
                Some(f) => {
                    let got = hex::encode(f.sha256);
                    if got == want {
                        check.matched.push(name);
                    } else {
                        check.mismatched.push((name, want, got));
                    }
                }
                None => check.missing.push(name),
            }
        }
        check
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::collections::HashMap;

    // ---- discovery -------------------------------------------------------------------------

    #[test]
    fn parse_mounts_unescapes_and_skips_malformed() {
        let text = "/dev/sdb1 /media/KEY\\040ONE vfat rw,nosuid,relatime 0 0\nbroken\n\
                    /dev/vda / ext4 ro,relatime 0 0\n";
        let m = parse_mounts(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_point, PathBuf::from("/media/KEY ONE"));
        assert_eq!(m[0].fstype, "vfat");
        assert!(m[1].options.contains(&"ro".to_string()));
        // Escapes at the end of a field or with non-ASCII text do not panic.
        assert_eq!(unescape_octal("a\\04"), "a\\04");
        assert_eq!(unescape_octal("é\\134x"), "é\\x");
        assert_eq!(unescape_udev("MY\\x20KEY"), "MY KEY");
        assert_eq!(unescape_udev("bad\\xZZ\\x"), "bad\\xZZ\\x");
    }

    #[derive(Default)]
    struct FakeSystem {
        files: HashMap<PathBuf, String>,
        links: HashMap<PathBuf, PathBuf>,
        dirs: HashMap<PathBuf, Vec<String>>,
        spaces: HashMap<PathBuf, Space>,
        heads: HashMap<PathBuf, Vec<u8>>,
    }

    fn nf() -> io::Error {
        io::Error::from(io::ErrorKind::NotFound)
    }

    impl SystemView for FakeSystem {
        fn read_to_string(&self, path: &Path) -> io::Result<String> {
            self.files.get(path).cloned().ok_or_else(nf)
        }
        fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
            self.links.get(path).cloned().ok_or_else(nf)
        }
        fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
            self.dirs.get(path).cloned().ok_or_else(nf)
        }
        fn space(&self, mount_point: &Path) -> io::Result<Space> {
            self.spaces.get(mount_point).copied().ok_or_else(nf)
        }
        fn read_head(&self, path: &Path, len: usize) -> io::Result<Vec<u8>> {
            let mut head = self.heads.get(path).cloned().ok_or_else(nf)?;
            head.truncate(len);
            Ok(head)
        }
    }

    fn fake_system() -> FakeSystem {
        let mut s = FakeSystem::default();
        let f = |p: &str| PathBuf::from(p);
        s.files.insert(
            f("/proc/mounts"),
            "/dev/vda / ext4 rw,relatime 0 0\n\
             proc /proc proc rw 0 0\n\
             /dev/sdb1 /media/CEREMONY\\040KEY vfat rw,relatime 0 0\n\
             /dev/mmcblk0p1 /media/sd vfat ro,relatime 0 0\n\
             /dev/sdc /media/ssd ext4 rw 0 0\n\
             /dev/mapper/crypt /mnt/crypt ext4 rw 0 0\n"
                .into(),
        );
        // Internal disk: not removable, not USB.
        s.links.insert(
            f("/sys/class/block/vda"),
            f("../../devices/pci0000:00/0000:00:04.0/virtio2/block/vda"),
        );
        s.files.insert(f("/sys/block/vda/removable"), "0\n".into());
        // USB stick partition.
        s.links.insert(
            f("/sys/class/block/sdb1"),
            f("../../devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host3/target3:0:0/3:0:0:0/block/sdb/sdb1"),
        );
        s.files
            .insert(f("/sys/class/block/sdb1/partition"), "1\n".into());
        s.files
            .insert(f("/sys/class/block/sdb1/size"), "15728640\n".into());
        s.files.insert(f("/sys/block/sdb/removable"), "1\n".into());
        // SD card in a built-in reader: removable, not USB.
        s.links.insert(
            f("/sys/class/block/mmcblk0p1"),
            f("../../devices/platform/mmc0/mmc0:0001/block/mmcblk0/mmcblk0p1"),
        );
        s.files
            .insert(f("/sys/class/block/mmcblk0p1/partition"), "1\n".into());
        s.files
            .insert(f("/sys/block/mmcblk0/removable"), "1\n".into());
        // USB SSD, whole disk, reports removable 0.
        s.links.insert(
            f("/sys/class/block/sdc"),
            f("../../devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host4/target4:0:0/4:0:0:0/block/sdc"),
        );
        s.files.insert(f("/sys/block/sdc/removable"), "0\n".into());
        // The SD card has no udev label link: the label comes from its FAT16 boot sector.
        let mut sector = vec![0u8; 512];
        sector[0x16] = 32; // sectors per FAT: not FAT32
        sector[0x26] = 0x29;
        sector[0x2B..0x36].copy_from_slice(b"SD CARD    ");
        sector[510] = 0x55;
        sector[511] = 0xAA;
        s.heads.insert(f("/dev/mmcblk0p1"), sector);
        s.dirs
            .insert(f("/dev/disk/by-label"), vec!["CEREMONY\\x20KEY".into()]);
        s.links
            .insert(f("/dev/disk/by-label/CEREMONY\\x20KEY"), f("../../sdb1"));
        s.spaces.insert(
            f("/media/CEREMONY KEY"),
            Space {
                total: 8_000_000_000,
                free: 7_000_000_000,
            },
        );
        s
    }

    #[test]
    fn find_media_lists_removable_and_usb_only() {
        let media = find_media(&fake_system()).expect("discovery");
        let devices: Vec<&str> = media.iter().map(|m| m.device.as_str()).collect();
        assert_eq!(devices, ["/dev/sdb1", "/dev/mmcblk0p1", "/dev/sdc"]);
        let stick = &media[0];
        assert_eq!(stick.label.as_deref(), Some("CEREMONY KEY"));
        assert_eq!(stick.mount_point, PathBuf::from("/media/CEREMONY KEY"));
        assert_eq!(stick.device_size, Some(15728640 * 512));
        assert_eq!(stick.space.map(|s| s.free), Some(7_000_000_000));
        assert!(stick.usb && stick.removable && !stick.read_only);
        assert!(media[1].removable && !media[1].usb && media[1].read_only);
        assert_eq!(
            media[1].label.as_deref(),
            Some("SD CARD"),
            "label from the boot sector"
        );
        assert!(media[2].usb && !media[2].removable && media[2].label.is_none());
    }

    #[test]
    fn find_media_on_this_machine_does_not_fail() {
        // The real edge: reads /proc and /sys; this machine may have no removable media.
        let media = find_media(&RealSystem).expect("discovery on the real system");
        for m in media {
            assert!(m.device.starts_with("/dev/"));
        }
        let space = RealSystem.space(Path::new("/")).expect("statvfs /");
        assert!(space.total > 0 && space.free <= space.total);
    }

    // ---- export ----------------------------------------------------------------------------

    fn sample_files() -> Vec<ExportFile> {
        vec![
            ExportFile {
                name: "2.root.json".into(),
                data: b"{\"signed\":{\"_type\":\"root\",\"version\":2}}\n".to_vec(),
            },
            ExportFile {
                name: "root.json".into(),
                data: b"{\"signed\":{\"_type\":\"root\",\"version\":2}}\n".to_vec(),
            },
            ExportFile {
                name: "transcript.seal".into(),
                data: b"seal 1234".to_vec(),
            },
        ]
    }

    fn dir_listing(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| {
                let e = e.expect("entry");
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).expect("read"),
                )
            })
            .collect()
    }

    #[test]
    fn export_writes_reads_back_and_writes_sums_last() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = sample_files();
        let report =
            export_files(&StdFs, dir.path(), &files, ExportOptions::default()).expect("export");
        assert!(report.safe_to_remove);
        assert_eq!(report.files.len(), 4);
        assert_eq!(report.files[3].name, SUMS_NAME);
        assert!(
            report
                .files
                .iter()
                .all(|f| f.status == ExportStatus::Written)
        );
        let listing = dir_listing(dir.path());
        for f in &files {
            assert_eq!(listing[&f.name], f.data);
        }
        let sums = String::from_utf8(listing[SUMS_NAME].clone()).expect("utf8");
        assert_eq!(sums.lines().count(), 3);
        assert!(sums.contains(&format!(
            "{}  transcript.seal\n",
            hex::encode(Sha256::digest(b"seal 1234"))
        )));
        assert!(report.summary().contains("safe to remove"));

        // Same export again: everything already present, nothing rewritten.
        let again = export_files(&StdFs, dir.path(), &files, ExportOptions::default())
            .expect("export again");
        assert!(
            again
                .files
                .iter()
                .all(|f| f.status == ExportStatus::AlreadyPresent)
        );

        // Different content under an existing name: refused, nothing changed.
        let mut changed = files.clone();
        changed[2].data = b"other seal".to_vec();
        let err = export_files(&StdFs, dir.path(), &changed, ExportOptions::default())
            .expect_err("conflict");
        assert!(
            matches!(&err, UsbError::Conflict { path } if path.ends_with("transcript.seal")),
            "{err}"
        );
        assert_eq!(dir_listing(dir.path()), listing);

        // With overwrite: replaced, and SHA256SUMS replaced too.
        let replaced = export_files(
            &StdFs,
            dir.path(),
            &changed,
            ExportOptions { overwrite: true },
        )
        .expect("overwrite");
        assert_eq!(replaced.files[2].status, ExportStatus::Replaced);
        assert_eq!(replaced.files[3].status, ExportStatus::Replaced);
        assert_eq!(replaced.files[0].status, ExportStatus::AlreadyPresent);
        assert_eq!(
            std::fs::read(dir.path().join("transcript.seal")).expect("read"),
            b"other seal"
        );
    }

    #[test]
    fn export_refuses_bad_names_before_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [
            "",
            "..",
            "a/b",
            "../x",
            "SHA256SUMS",
            ".x.conclave-tmp",
            "a\nb",
        ] {
            let files = [ExportFile {
                name: name.into(),
                data: b"x".to_vec(),
            }];
            let err =
                export_files(&StdFs, dir.path(), &files, ExportOptions::default()).expect_err(name);
            assert!(
                matches!(err, UsbError::InvalidName { .. }),
                "{name:?}: {err}"
            );
        }
        let twice = [sample_files()[0].clone(), sample_files()[0].clone()];
        assert!(export_files(&StdFs, dir.path(), &twice, ExportOptions::default()).is_err());
        assert!(dir_listing(dir.path()).is_empty());
        let not_dir = dir.path().join("missing");
        assert!(export_files(&StdFs, &not_dir, &sample_files(), ExportOptions::default()).is_err());
    }

    /// Wraps the real filesystem; fails when the byte budget runs out (after writing the bytes
    /// that fit, as a full disk does) or at the n-th operation.
    struct FaultFs {
        budget: Cell<u64>,
        fail_op: Option<u64>,
        ops: Cell<u64>,
        kind: fn() -> io::Error,
    }

    impl FaultFs {
        fn op(&self) -> io::Result<()> {
            let n = self.ops.get();
            self.ops.set(n + 1);
            if self.fail_op == Some(n) {
                return Err((self.kind)());
            }
            Ok(())
        }
    }

    impl MediaFs for FaultFs {
        fn exists(&self, path: &Path) -> io::Result<bool> {
            StdFs.exists(path)
        }
        fn is_dir(&self, path: &Path) -> io::Result<bool> {
            StdFs.is_dir(path)
        }
        fn read(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
            self.op()?;
            StdFs.read(path, limit)
        }
        fn write_new(&self, path: &Path, data: &[u8]) -> io::Result<()> {
            self.op()?;
            let budget = self.budget.get();
            if (data.len() as u64) <= budget {
                self.budget.set(budget - data.len() as u64);
                return write_new_unsynced(path, data);
            }
            self.budget.set(0);
            // The bytes that fit reach the file, then the device fails.
            let fit = usize::try_from(budget)
                .unwrap_or(usize::MAX)
                .min(data.len());
            write_new_unsynced(path, &data[..fit])?;
            Err((self.kind)())
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            self.op()?;
            StdFs.rename(from, to)
        }
        fn remove(&self, path: &Path) -> io::Result<()> {
            StdFs.remove(path)
        }
        fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
            // Counted as an operation that can fail; the real fsync is left out to keep hundreds
            // of runs fast (it changes nothing a test can observe).
            self.op()
        }
        fn sync_all(&self) -> io::Result<()> {
            self.op()?;
            Ok(())
        }
    }

    /// Exclusive create and write, without fsync (test speed).
    fn write_new_unsynced(path: &Path, data: &[u8]) -> io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?
            .write_all(data)
    }

    fn enospc() -> io::Error {
        io::Error::from_raw_os_error(28)
    }
    fn eio() -> io::Error {
        io::Error::from_raw_os_error(5)
    }

    /// Checks the invariants after a failed export and returns the error text.
    fn check_after_failure(
        dir: &Path,
        err: &UsbError,
        meant: &BTreeMap<String, Vec<u8>>,
        before: &BTreeMap<String, Vec<u8>>,
    ) {
        let after = dir_listing(dir);
        for (name, content) in &after {
            assert!(
                !name.ends_with(TEMP_SUFFIX),
                "temporary file left: {name} ({err})"
            );
            let is_meant = meant.get(name) == Some(content);
            let is_before = before.get(name) == Some(content);
            assert!(
                is_meant || is_before,
                "{name} holds neither old nor new content ({err})"
            );
        }
        for (name, content) in before {
            if !meant.contains_key(name) {
                assert_eq!(after.get(name), Some(content), "unrelated {name} touched");
            }
        }
        let (written, not_written) = match err {
            UsbError::Write {
                written,
                not_written,
                leftover,
                ..
            } => {
                assert!(leftover.is_none());
                (written, not_written)
            }
            UsbError::ReadBack {
                written,
                not_written,
                ..
            } => (written, not_written),
            UsbError::Io { .. } => {
                // Failed while checking, before writing: nothing may have changed.
                assert_eq!(&after, before, "{err}");
                return;
            }
            other => panic!("unexpected error {other}"),
        };
        assert_eq!(written.len() + not_written.len(), meant.len(), "{err}");
        for name in written {
            assert_eq!(
                after.get(name),
                meant.get(name),
                "{name} reported written ({err})"
            );
        }
        let text = err.to_string();
        assert!(
            text.contains("written: [") && text.contains("not written: ["),
            "{text}"
        );
        for name in not_written {
            assert!(text.contains(name.as_str()), "{text} does not name {name}");
        }
    }

    fn run_fault_matrix(overwrite: bool) -> usize {
        let files = sample_files();
        let sums = sums_text(files.iter().map(|f| (f.name.as_str(), f.data.as_slice())));
        let mut meant: BTreeMap<String, Vec<u8>> = files
            .iter()
            .map(|f| (f.name.clone(), f.data.clone()))
            .collect();
        meant.insert(SUMS_NAME.into(), sums.clone().into_bytes());
        // Present before: an unrelated file, one file with the same content (already present),
        // and, when overwriting, one file with old content.
        let mut before = BTreeMap::new();
        before.insert("notes.txt".to_string(), b"keep me".to_vec());
        before.insert("2.root.json".to_string(), files[0].data.clone());
        if overwrite {
            before.insert("transcript.seal".to_string(), b"old seal".to_vec());
        }
        let to_write: u64 = meant
            .iter()
            .filter(|(n, d)| before.get(*n) != Some(*d))
            .map(|(_, d)| d.len() as u64)
            .sum();
        let mut runs = 0;
        for kind in [enospc as fn() -> io::Error, eio] {
            // Every byte position.
            for budget in 0..to_write {
                let dir = tempfile::tempdir().expect("tempdir");
                for (n, d) in &before {
                    std::fs::write(dir.path().join(n), d).expect("setup");
                }
                let fs = FaultFs {
                    budget: Cell::new(budget),
                    fail_op: None,
                    ops: Cell::new(0),
                    kind,
                };
                let err = export_files(&fs, dir.path(), &files, ExportOptions { overwrite })
                    .expect_err("export must fail when the device fails");
                check_after_failure(dir.path(), &err, &meant, &before);
                runs += 1;
            }
            // Every operation (write, rename, folder sync, read back, final sync).
            let mut op = 0;
            loop {
                let dir = tempfile::tempdir().expect("tempdir");
                for (n, d) in &before {
                    std::fs::write(dir.path().join(n), d).expect("setup");
                }
                let fs = FaultFs {
                    budget: Cell::new(u64::MAX),
                    fail_op: Some(op),
                    ops: Cell::new(0),
                    kind,
                };
                match export_files(&fs, dir.path(), &files, ExportOptions { overwrite }) {
                    Ok(_) => {
                        assert!(fs.ops.get() <= op, "op {op} failed but export succeeded");
                        break;
                    }
                    Err(err) => check_after_failure(dir.path(), &err, &meant, &before),
                }
                op += 1;
                runs += 1;
            }
            assert!(op >= 10, "only {op} operations seen");
            // With enough budget and no failing operation, the export succeeds.
            let dir = tempfile::tempdir().expect("tempdir");
            for (n, d) in &before {
                std::fs::write(dir.path().join(n), d).expect("setup");
            }
            let fs = FaultFs {
                budget: Cell::new(to_write),
                fail_op: None,
                ops: Cell::new(0),
                kind,
            };
            export_files(&fs, dir.path(), &files, ExportOptions { overwrite })
                .expect("fits exactly");
            let after = dir_listing(dir.path());
            for (n, d) in &meant {
                assert_eq!(after.get(n), Some(d));
            }
        }
        runs
    }

    #[test]
    fn fault_at_every_byte_and_every_operation_leaves_no_partial_file() {
        let runs = run_fault_matrix(false);
        assert!(runs > 300, "{runs} runs");
    }

    #[test]
    fn fault_with_overwrite_keeps_old_or_new_never_partial() {
        run_fault_matrix(true);
    }

    /// The real filesystem, reporting a small amount of free space.
    struct AlmostFull(u64);

    impl MediaFs for AlmostFull {
        fn exists(&self, path: &Path) -> io::Result<bool> {
            StdFs.exists(path)
        }
        fn is_dir(&self, path: &Path) -> io::Result<bool> {
            StdFs.is_dir(path)
        }
        fn read(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
            StdFs.read(path, limit)
        }
        fn write_new(&self, path: &Path, data: &[u8]) -> io::Result<()> {
            StdFs.write_new(path, data)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            StdFs.rename(from, to)
        }
        fn remove(&self, path: &Path) -> io::Result<()> {
            StdFs.remove(path)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            StdFs.sync_dir(dir)
        }
        fn sync_all(&self) -> io::Result<()> {
            Ok(())
        }
        fn free_space(&self, _dir: &Path) -> io::Result<Option<u64>> {
            Ok(Some(self.0))
        }
    }

    #[test]
    fn too_little_free_space_is_refused_before_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = sample_files();
        let total: u64 = files.iter().map(|f| f.data.len() as u64).sum::<u64>()
            + sums_text(files.iter().map(|f| (f.name.as_str(), f.data.as_slice()))).len() as u64;
        let err = export_files(
            &AlmostFull(total - 1),
            dir.path(),
            &files,
            ExportOptions::default(),
        )
        .expect_err("no space");
        assert!(
            matches!(err, UsbError::NoSpace { needed, .. } if needed == total),
            "{err}"
        );
        assert!(dir_listing(dir.path()).is_empty());
        export_files(
            &AlmostFull(total),
            dir.path(),
            &files,
            ExportOptions::default(),
        )
        .expect("exactly enough");
        // StdFs reports real free space.
        assert!(
            StdFs
                .free_space(dir.path())
                .expect("statvfs")
                .is_some_and(|f| f > 0)
        );
    }

    #[test]
    fn leftover_temp_file_from_an_interrupted_export_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(temp_name("root.json")), b"partial").expect("setup");
        export_files(
            &StdFs,
            dir.path(),
            &sample_files(),
            ExportOptions::default(),
        )
        .expect("export");
        assert!(
            dir_listing(dir.path())
                .keys()
                .all(|n| !n.ends_with(TEMP_SUFFIX))
        );
    }

    // ---- import ----------------------------------------------------------------------------

    #[test]
    fn sniff_recognises_tuf_roles() {
        let k = |s: &str| sniff("x.json", s.as_bytes());
        assert_eq!(
            k(r#"{"signed":{"_type":"root","version":7},"signatures":[]}"#),
            FileKind::TufMetadata {
                role: "root".into(),
                version: 7
            }
        );
        assert_eq!(
            k(r#"{"signed":{"_type":"timestamp","version":1}}"#).to_string(),
            "timestamp v1"
        );
        assert_eq!(
            k(r#"{"signed":{"_type":"mirror","version":1}}"#),
            FileKind::Unknown
        );
        assert_eq!(
            k(r#"{"signed":{"_type":"root","version":-1}}"#),
            FileKind::Unknown
        );
        assert_eq!(k("not json"), FileKind::Unknown);
        assert_eq!(sniff(SUMS_NAME, b""), FileKind::Sha256Sums);
    }

    #[test]
    fn sniff_recognises_ceremony_transcripts() {
        let t = include_bytes!("../../tests/data/transcript/ceremony.jsonl");
        let k = sniff("ceremony.jsonl", t);
        assert_eq!(
            k.to_string(),
            "ceremony transcript: script bootstrap-root, 20 records, sealed (seal 3418634338fef953f1b98846157918efa560e4e59d2cfec9e8358f74d4fe9f76); check it with conclave transcript verify --trusted-root"
        );
        // Cut before its seal: not sealed. A changed byte: not a transcript (the chain breaks).
        let unsealed: Vec<u8> = t
            .split_inclusive(|b| *b == b'\n')
            .take(10)
            .flatten()
            .copied()
            .collect();
        assert!(
            sniff("ceremony.jsonl", &unsealed)
                .to_string()
                .ends_with("10 records, NOT sealed")
        );
        let mut changed = t.to_vec();
        changed[40] ^= 1;
        assert_eq!(sniff("ceremony.jsonl", &changed), FileKind::Unknown);
        assert_eq!(sniff("ceremony.json", t), FileKind::Unknown);
    }

    #[test]
    fn parse_sums_accepts_sha256sum_format_only() {
        let d = "a".repeat(64);
        let text = format!("{d}  root.json\n{d} *bin.dat\n{d}  ../escape\nxyz  short\n{d}  a/b\n");
        let (entries, bad) = parse_sums(&text);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].0, "bin.dat");
        assert_eq!(bad.len(), 3);
    }

    #[test]
    fn import_lists_checks_and_refuses() {
        let outer = tempfile::tempdir().expect("tempdir");
        let dir = outer.path().join("media");
        std::fs::create_dir(&dir).expect("mkdir");
        let root = br#"{"signed":{"_type":"root","version":3},"signatures":[]}"#;
        std::fs::write(dir.join("3.root.json"), root).expect("w");
        std::fs::write(dir.join("notes.txt"), b"hello").expect("w");
        std::fs::write(dir.join("big.bin"), vec![0u8; 2000]).expect("w");
        std::fs::write(outer.path().join("secret"), b"outside").expect("w");
        std::os::unix::fs::symlink(outer.path().join("secret"), dir.join("escape")).expect("ln");
        std::os::unix::fs::symlink("../media/notes.txt", dir.join("inside-link")).expect("ln");
        std::fs::create_dir(dir.join("sub")).expect("mkdir");
        let mut sums = sums_text([
            ("3.root.json", root.as_slice()),
            ("gone.json", b"x".as_slice()),
        ]);
        sums.push_str(&format!("{}  notes.txt\n", "0".repeat(64)));
        std::fs::write(dir.join(SUMS_NAME), sums).expect("w");

        let report = import_dir(&dir, 1000).expect("import");
        let names: Vec<&str> = report.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["3.root.json", SUMS_NAME, "inside-link", "notes.txt"]
        );
        assert_eq!(
            report.files[0].kind,
            FileKind::TufMetadata {
                role: "root".into(),
                version: 3
            }
        );
        assert_eq!(
            report.files[0].sha256,
            <[u8; 32]>::from(Sha256::digest(root))
        );
        assert_eq!(report.files[3].kind, FileKind::Unknown);
        let refused: BTreeMap<&str, &str> = report
            .refused
            .iter()
            .map(|r| (r.name.as_str(), r.reason.as_str()))
            .collect();
        assert!(refused["big.bin"].contains("over the limit"), "{refused:?}");
        assert!(refused["escape"].contains("outside"), "{refused:?}");
        assert!(refused["sub"].contains("folder"), "{refused:?}");
        let check = report.sums.as_ref().expect("sums checked");
        assert_eq!(check.matched, ["3.root.json"]);
        assert_eq!(check.missing, ["gone.json"]);
        assert_eq!(check.mismatched.len(), 1);
        assert_eq!(check.mismatched[0].0, "notes.txt");
        assert!(!check.all_ok());
        let text = report.summary();
        assert!(
            text.contains("root v3") && text.contains("MISMATCH notes.txt"),
            "{text}"
        );
    }

    #[test]
    fn files_named_for_export_are_read_bounded_under_their_own_names() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("1.root.json");
        std::fs::write(&a, b"{}").unwrap();
        let files = read_export_files(std::slice::from_ref(&a), 10).unwrap();
        assert_eq!(
            files,
            vec![ExportFile {
                name: "1.root.json".into(),
                data: b"{}".to_vec()
            }]
        );
        let e = read_export_files(std::slice::from_ref(&a), 1).unwrap_err();
        assert!(matches!(e, UsbError::Unreadable(_)), "{e}");
        let e = read_export_files(&[dir.path().join("..")], 10).unwrap_err();
        assert!(matches!(e, UsbError::NotExportable(_)), "{e}");
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let e = read_export_files(&[fifo], 10).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    fn mkfifo(path: &Path) {
        let made = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo");
        assert!(made.success());
    }

    /// A link at an export name is refused even when its target holds the same bytes (the media
    /// would hold only a link back into this machine), with or without overwrite; nothing is
    /// written.
    #[test]
    fn a_link_at_an_export_name_is_refused_not_already_present() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let files = sample_files();
        let target = elsewhere.path().join("root.json");
        std::fs::write(&target, &files[1].data).expect("w");
        std::os::unix::fs::symlink(&target, dir.path().join("root.json")).expect("link");
        for overwrite in [false, true] {
            let err = export_files(&StdFs, dir.path(), &files, ExportOptions { overwrite })
                .expect_err("a link is not a file");
            let text = err.to_string();
            assert!(
                matches!(err, UsbError::Unusable { .. })
                    && text.contains("root.json")
                    && text.contains("symbolic link")
                    && text.contains("nothing was written"),
                "{text}"
            );
            let names: Vec<String> = dir_listing_names(dir.path());
            assert_eq!(names, ["root.json"], "nothing written");
        }
    }

    fn dir_listing_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A named pipe at an export name, or SHA256SUMS linked to /dev/zero: refused at once
    /// (before this fix the export blocked on the pipe forever, and read /dev/zero until memory
    /// ran out).
    #[test]
    fn a_pipe_or_a_link_to_a_device_is_refused_without_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = sample_files();
        mkfifo(&dir.path().join("transcript.seal"));
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_path_buf();
        let f = files.clone();
        std::thread::spawn(move || {
            let _ = tx.send(export_files(&StdFs, &path, &f, ExportOptions::default()));
        });
        // A hang is a failure (the thread stays blocked in open); 60 s is far above the time
        // the refusal takes.
        let err = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the export must not block on a named pipe")
            .expect_err("a pipe is not a file");
        assert!(
            err.to_string().contains("transcript.seal") && err.to_string().contains("named pipe"),
            "{err}"
        );
        assert_eq!(dir_listing_names(dir.path()), ["transcript.seal"]);

        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(SUMS_NAME)).expect("link");
        let err = export_files(&StdFs, dir.path(), &files, ExportOptions::default())
            .expect_err("a link to a device is refused");
        assert!(
            err.to_string().contains(SUMS_NAME) && err.to_string().contains("symbolic link"),
            "{err}"
        );
        assert_eq!(dir_listing_names(dir.path()), [SUMS_NAME]);
        // The device itself (not through a link) is refused by what it is, without reading it.
        let e = StdFs
            .read(Path::new("/dev/zero"), 1 << 20)
            .expect_err("a device is not a file");
        assert!(e.to_string().contains("device"), "{e}");
    }

    /// A named pipe on the media is listed as refused (before, the import opened it and waited).
    #[test]
    fn import_refuses_a_pipe_and_stops_at_its_total() {
        let dir = tempfile::tempdir().expect("tempdir");
        mkfifo(&dir.path().join("pipe.json"));
        for name in ["a.bin", "b.bin", "c.bin"] {
            std::fs::write(dir.path().join(name), vec![7u8; 800]).expect("w");
        }
        let report = import_dir(dir.path(), 1000).expect("import");
        let names: Vec<&str> = report.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.bin", "b.bin"], "2 x 1000 bytes in total");
        let refused: BTreeMap<&str, &str> = report
            .refused
            .iter()
            .map(|r| (r.name.as_str(), r.reason.as_str()))
            .collect();
        assert!(refused["pipe.json"].contains("named pipe"), "{refused:?}");
        assert!(refused["c.bin"].contains("in total"), "{refused:?}");
    }

    /// What a file is, is found without a tree: a JSON array of many zeros is "unknown", and
    /// sniffing it allocates nothing in proportion to the number of values.
    #[test]
    fn sniff_reads_members_without_a_tree() {
        assert_eq!(
            sniff(
                "x.json",
                br#"{"signatures":[1,2,{"a":[]}],"signed":{"x":[0,0],"_type":"targets","version":7}}"#
            ),
            FileKind::TufMetadata {
                role: "targets".into(),
                version: 7
            }
        );
        for text in [
            &br#"{"signed":{"_type":"root","version":-1}}"#[..],
            br#"{"signed":{"_type":["root"],"version":1}}"#,
            br#"{"signed":"root"}"#,
            br#"[0,0,0]"#,
            br#"{"signed":{"_type":"root","version":1}} trailing"#,
        ] {
            assert_eq!(sniff("x.json", text), FileKind::Unknown, "{text:?}");
        }
    }

    // ---- the ceremony's export medium ------------------------------------------------------

    /// A fake system whose mountinfo mounts real temporary folders: `stick` from a USB
    /// partition, `sd` from a removable card, `disk` from an internal disk and `tmp` as tmpfs.
    fn mount_system(root: &Path) -> FakeSystem {
        let mut s = FakeSystem::default();
        let f = |p: &str| PathBuf::from(p);
        let at = |name: &str| root.join(name).display().to_string();
        s.files.insert(
            f("/proc/self/mountinfo"),
            format!(
                "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n\
                 30 22 8:17 / {} rw,nosuid - vfat /dev/sdb1 rw\n\
                 31 22 179:1 / {} rw shared:9 master:2 - vfat /dev/mmcblk0p1 rw\n\
                 32 22 254:16 / {} rw - ext4 /dev/vdb rw\n\
                 33 22 0:45 / {} rw - tmpfs tmpfs rw\n\
                 garbage\n",
                at("stick"),
                at("sd"),
                at("disk"),
                at("tmp")
            ),
        );
        s.links.insert(
            f("/sys/dev/block/8:17"),
            f("../../devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host3/target3:0:0/3:0:0:0/block/sdb/sdb1"),
        );
        s.files
            .insert(f("/sys/dev/block/8:17/partition"), "1\n".into());
        s.files.insert(f("/sys/block/sdb/removable"), "0\n".into());
        s.links.insert(
            f("/sys/dev/block/179:1"),
            f("../../devices/platform/mmc0/mmc0:0001/block/mmcblk0/mmcblk0p1"),
        );
        s.files
            .insert(f("/sys/dev/block/179:1/partition"), "1\n".into());
        s.files
            .insert(f("/sys/block/mmcblk0/removable"), "1\n".into());
        for (dev, disk) in [("254:1", "vda/vda1"), ("254:16", "vdb")] {
            s.links.insert(
                PathBuf::from(format!("/sys/dev/block/{dev}")),
                PathBuf::from(format!(
                    "../../devices/pci0000:00/0000:00:04.0/virtio2/block/{disk}"
                )),
            );
        }
        s.files
            .insert(f("/sys/dev/block/254:1/partition"), "1\n".into());
        s.files.insert(f("/sys/block/vda/removable"), "0\n".into());
        s.files.insert(f("/sys/block/vdb/removable"), "0\n".into());
        s
    }

    #[test]
    fn the_ceremony_export_goes_only_to_mounted_removable_media() {
        let root = tempfile::tempdir().expect("tempdir");
        for d in ["stick", "sd", "disk", "tmp"] {
            std::fs::create_dir(root.path().join(d)).expect("mkdir");
        }
        let sys = mount_system(root.path());
        // A USB partition (removable 0, but on the USB bus), a folder not made yet on it, and
        // a removable SD card.
        for ok in ["stick", "stick/conclave-export/new", "sd"] {
            let m = check_removable(&sys, &root.path().join(ok)).expect(ok);
            assert_eq!(m.fstype, "vfat");
        }
        for (bad, what) in [
            (
                "disk/conclave-export",
                "neither removable nor attached over USB",
            ),
            ("tmp", "not a block device"),
            ("elsewhere/conclave-export", "from /dev/vda1"),
        ] {
            let err = check_removable(&sys, &root.path().join(bad)).expect_err(bad);
            let text = err.to_string();
            assert!(
                text.contains(&root.path().join(bad).display().to_string())
                    && text.contains("not on removable media")
                    && text.contains(what)
                    && text.contains("nothing was written"),
                "{text}"
            );
        }
        assert!(!root.path().join("elsewhere").exists());
        let mi = parse_mountinfo("36 35 98:0 /mnt1 /mnt\\040two rw - ext3 /dev/root rw\n");
        assert_eq!(mi[0].mount_point, PathBuf::from("/mnt two"));
        assert_eq!(mi[0].dev, "98:0");
    }

    #[test]
    fn export_then_import_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        export_files(
            &StdFs,
            dir.path(),
            &sample_files(),
            ExportOptions::default(),
        )
        .expect("export");
        let report = import_dir(dir.path(), DEFAULT_IMPORT_LIMIT).expect("import");
        assert!(report.refused.is_empty());
        assert!(
            report.sums.as_ref().is_some_and(SumsCheck::all_ok),
            "{}",
            report.summary()
        );
        assert_eq!(report.files.len(), 4);
    }
}
