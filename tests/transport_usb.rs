//! Export onto a real vfat filesystem image.
//!
//! When the test runs as root and a loop mount of vfat works, the export goes through the real
//! filesystem ([`StdFs`]) onto the mounted image. Otherwise (containers without the vfat module,
//! non-root CI) the same export logic runs through [`MtoolsFs`], which performs each
//! [`MediaFs`] operation on the image with mtools. Either way the result is read back from the
//! image with mtools, an independent FAT implementation.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use conclave::transport::usb::{
    self, ExportFile, ExportOptions, ExportStatus, MediaFs, SUMS_NAME, StdFs, TEMP_SUFFIX, UsbError,
};

fn tool(name: &str) -> bool {
    Command::new(name).arg("--version").output().is_ok()
}

fn run(cmd: &mut Command) -> io::Result<Vec<u8>> {
    let out = cmd.env("MTOOLS_SKIP_CHECK", "1").output()?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let msg = String::from_utf8_lossy(&out.stderr).into_owned();
        // mtools says "Disk full" when the filesystem has no room left.
        let kind = if msg.contains("Disk full") || msg.contains("No space") {
            io::ErrorKind::StorageFull
        } else if msg.contains("not found") {
            io::ErrorKind::NotFound
        } else {
            io::ErrorKind::Other
        };
        Err(io::Error::new(kind, format!("{cmd:?}: {}", msg.trim())))
    }
}

/// [`MediaFs`] over a FAT image with mtools. Paths look like `::/name`.
struct MtoolsFs {
    image: PathBuf,
    scratch: tempfile::TempDir,
}

impl MtoolsFs {
    fn new(image: &Path) -> Self {
        Self {
            image: image.to_path_buf(),
            scratch: tempfile::tempdir().expect("scratch dir"),
        }
    }
    fn cmd(&self, name: &str) -> Command {
        let mut c = Command::new(name);
        c.arg("-i").arg(&self.image);
        c
    }
    /// Names in the root folder, in lower case (FAT is case-insensitive), sorted.
    fn names(&self) -> Vec<String> {
        // `mdir -b` prints one bare path per line, e.g. `::/root.json`.
        let out = run(self.cmd("mdir").args(["-b", "::/"])).unwrap_or_default();
        String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("::/").map(str::to_string))
            .filter(|n| !n.is_empty())
            .map(|n| n.to_ascii_lowercase())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

impl MediaFs for MtoolsFs {
    fn exists(&self, path: &Path) -> io::Result<bool> {
        let name = path.to_string_lossy();
        let name = name.trim_start_matches("::/");
        // FAT names are case-insensitive (8.3 names come back in capitals).
        Ok(self.names().iter().any(|n| n.eq_ignore_ascii_case(name)))
    }
    fn is_dir(&self, path: &Path) -> io::Result<bool> {
        run(self.cmd("mdir").arg(path)).map(|_| true)
    }
    fn read(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        let host = self.scratch.path().join("read");
        let _ = std::fs::remove_file(&host);
        run(self.cmd("mcopy").arg("-n").arg(path).arg(&host))?;
        // FAT has no links, pipes or devices: the copy is a regular file; only its size counts.
        conclave::folder::read_regular_nofollow(&host, limit)
    }
    fn write_new(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        if self.exists(path)? {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let host = self.scratch.path().join("write");
        std::fs::write(&host, data)?;
        run(self.cmd("mcopy").arg(&host).arg(path))?;
        std::fs::File::open(&self.image)?.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        // mren does not replace; remove the old file first (not atomic: test adapter only).
        if self.exists(to)? {
            run(self.cmd("mdel").arg(to))?;
        }
        run(self.cmd("mren").arg(from).arg(to)).map(|_| ())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        run(self.cmd("mdel").arg(path)).map(|_| ())
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        std::fs::File::open(&self.image)?.sync_all()
    }
    fn sync_all(&self) -> io::Result<()> {
        std::fs::File::open(&self.image)?.sync_all()
    }
}

fn make_image(dir: &Path, kib: u32) -> PathBuf {
    let image = dir.join("media.img");
    let out = Command::new("mkfs.vfat")
        .args(["-C", "-n", "CEREMONY"])
        .arg(&image)
        .arg(kib.to_string())
        .output()
        .expect("run mkfs.vfat (install dosfstools)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    image
}

/// Tries a loop mount (root only). Returns the mount point when it worked.
fn try_loop_mount(image: &Path, dir: &Path) -> Option<PathBuf> {
    // SAFETY of the check: reading our uid needs no unsafe code through `id -u`.
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).ok()?;
    let ok = Command::new("mount")
        .args(["-t", "vfat", "-o", "loop"])
        .arg(image)
        .arg(&mnt)
        .output()
        .ok()?
        .status
        .success();
    ok.then_some(mnt)
}

fn files() -> Vec<ExportFile> {
    vec![
        ExportFile {
            name: "3.root.json".into(),
            data: br#"{"signed":{"_type":"root","version":3},"signatures":[]}"#.to_vec(),
        },
        ExportFile {
            name: "root.json".into(),
            data: br#"{"signed":{"_type":"root","version":3},"signatures":[]}"#.to_vec(),
        },
        ExportFile {
            name: "ceremony-transcript.jsonl".into(),
            data: (0..300u32)
                .map(|i| format!("{{\"seq\":{i}}}\n"))
                .collect::<String>()
                .into_bytes(),
        },
    ]
}

#[test]
fn export_onto_vfat_image_and_read_back_with_mtools() {
    assert!(
        tool("mkfs.vfat") && tool("mcopy"),
        "install dosfstools and mtools (make deps does)"
    );
    let work = tempfile::tempdir().expect("tempdir");
    let image = make_image(work.path(), 4096);
    let files = files();
    let report = match try_loop_mount(&image, work.path()) {
        Some(mnt) => {
            let r = usb::export_files(&StdFs, &mnt, &files, ExportOptions::default());
            let _ = Command::new("umount").arg(&mnt).status();
            eprintln!("exported through a loop mount of the vfat image");
            r.expect("export")
        }
        None => {
            eprintln!("loop mount unavailable: exporting through mtools onto the vfat image");
            let fs = MtoolsFs::new(&image);
            usb::export_files(&fs, Path::new("::/"), &files, ExportOptions::default())
                .expect("export")
        }
    };
    assert!(report.safe_to_remove);
    assert_eq!(report.files.len(), 4);

    // Independent read-back from the image.
    let fs = MtoolsFs::new(&image);
    let names = fs.names();
    assert_eq!(
        names,
        [
            "3.root.json",
            "ceremony-transcript.jsonl",
            "root.json",
            "sha256sums"
        ]
    );
    assert!(names.iter().all(|n| !n.ends_with(TEMP_SUFFIX)));
    for f in &files {
        assert_eq!(
            fs.read(&Path::new("::/").join(&f.name), 1 << 20)
                .expect("mcopy"),
            f.data
        );
    }
    // Copy everything out and import it: kinds and SHA256SUMS check out.
    let out = work.path().join("copied");
    std::fs::create_dir(&out).expect("mkdir");
    run(fs.cmd("mcopy").args(["-s", "::/"]).arg(&out)).expect("mcopy out");
    let imported = usb::import_dir(&out, usb::DEFAULT_IMPORT_LIMIT).expect("import");
    assert!(
        imported.sums.as_ref().is_some_and(|c| c.all_ok()),
        "{}",
        imported.summary()
    );
    assert_eq!(imported.files[0].kind.to_string(), "root v3");

    // Exporting again onto the same media: already present, nothing rewritten; a different
    // file under an existing name is refused.
    let again =
        usb::export_files(&fs, Path::new("::/"), &files, ExportOptions::default()).expect("again");
    assert!(
        again
            .files
            .iter()
            .all(|f| f.status == ExportStatus::AlreadyPresent)
    );
    let mut changed = files.clone();
    changed[1].data = b"{}".to_vec();
    let err = usb::export_files(&fs, Path::new("::/"), &changed, ExportOptions::default())
        .expect_err("conflict");
    assert!(matches!(err, UsbError::Conflict { .. }), "{err}");
}

#[test]
fn full_vfat_image_fails_cleanly() {
    assert!(
        tool("mkfs.vfat") && tool("mcopy"),
        "install dosfstools and mtools"
    );
    let work = tempfile::tempdir().expect("tempdir");
    // A small filesystem: the second large file does not fit (a real ENOSPC from FAT).
    let image = make_image(work.path(), 200);
    let fs = MtoolsFs::new(&image);
    std::fs::write(work.path().join("keep"), b"keep").expect("w");
    run(fs
        .cmd("mcopy")
        .arg(work.path().join("keep"))
        .arg("::/keep.txt"))
    .expect("setup");
    let big = |name: &str, byte: u8| ExportFile {
        name: name.into(),
        data: vec![byte; 110 * 1024],
    };
    let files = [big("a.bin", 1), big("b.bin", 2)];
    let err = usb::export_files(&fs, Path::new("::/"), &files, ExportOptions::default())
        .expect_err("disk full");
    let text = err.to_string();
    match &err {
        UsbError::Write {
            written,
            not_written,
            leftover,
            ..
        } => {
            assert_eq!(written, &["a.bin"], "{text}");
            assert_eq!(not_written, &["b.bin", SUMS_NAME], "{text}");
            assert!(leftover.is_none(), "{text}");
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(fs.names(), ["a.bin", "keep.txt"], "{text}");
    assert_eq!(
        fs.read(Path::new("::/a.bin"), 1 << 20).expect("read"),
        files[0].data
    );
    assert_eq!(
        fs.read(Path::new("::/keep.txt"), 1 << 20).expect("read"),
        b"keep"
    );
}

/// The FAT label read from the boot sector matches what mkfs.vfat wrote (FAT12 and FAT32).
#[test]
fn fat_label_from_real_images() {
    assert!(tool("mkfs.vfat"), "install dosfstools");
    let work = tempfile::tempdir().expect("tempdir");
    for (fat, kib, label) in [("12", "1024", "CEREMONY"), ("32", "40000", "ROOT KEYS")] {
        let image = work.path().join(format!("fat{fat}.img"));
        let out = Command::new("mkfs.vfat")
            .args(["-C", "-F", fat, "-n", label])
            .arg(&image)
            .arg(kib)
            .output()
            .expect("mkfs.vfat");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sector = std::fs::read(&image).expect("image");
        assert_eq!(
            usb::fat_label(&sector[..512]).as_deref(),
            Some(label),
            "FAT{fat}"
        );
    }
    let image = work.path().join("nolabel.img");
    let out = Command::new("mkfs.vfat")
        .arg("-C")
        .arg(&image)
        .arg("1024")
        .output()
        .expect("mkfs.vfat");
    assert!(out.status.success());
    let sector = std::fs::read(&image).expect("image");
    assert_eq!(usb::fat_label(&sector[..512]), None);
}
