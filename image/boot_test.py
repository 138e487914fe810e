#!/usr/bin/env python3
"""Boot test of image/out/conclave.iso (`make image-test`).

Usage: boot_test.py [--firmware bios|uefi|secureboot|all] [--timeout SECONDS] [--iso PATH]

Boots the ISO in qemu-system-x86_64 (TCG, no network device) with a USB stick (a vfat image
labelled CNCLVTEST, input files in inputs/) and drives the serial console: at the GRUB menu it
presses `e` and adds `conclave.test=1 console=ttyS0,115200 panic=-1` to the kernel command line
(no menu entry has it), so /usr/local/sbin/conclave-image-test runs on ttyS0: it shows the tty1
screen (the Conclave session), runs `conclave selfcheck` (the air-gap check), `conclave usb list`
and `usb import` of the inputs, `conclave verify` of the input repository, and a headless
bootstrap-root rehearsal with its workspace on the stick, then powers off. The host then reads
the stick with mtools and verifies the export with `conclave verify`, python-tuf
(tests/python/verify_offline.py) and `conclave transcript verify`.

Two UEFI boots (OVMF) run without the stick, up to the air-gap check and `conclave token list`:
plain UEFI, and UEFI with Secure Boot enforced and Microsoft's keys enrolled (what a stock laptop
does), which must boot through Debian's signed shim, GRUB and kernel and show that the guest
really runs with Secure Boot on. Every boot also checks that `conclave token list` with the
image's /etc/conclave/config.toml loads a keyholder module (ykcs11), never SoftHSM2, and that it
and yubihsm_pkcs11 report no token cleanly.
Exit 0 when every check passed; 1 otherwise (the reason and the serial log path on stderr).
Environment: CONCLAVE (the host conclave binary), CONCLAVE_PYTHON (python with python-tuf).
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOP = HERE.parent
OUT = HERE / "out"
ISO = OUT / "conclave.iso"
TEST = OUT / "test"
EXTRA = " conclave.test=1 console=ttyS0,115200 panic=-1"
SIGSTORE = TOP / "tests/data/vectors/tuf-conformance-static/sigstore-root-signing/metadata"
OVMF = Path("/usr/share/ovmf/OVMF.fd")
# Secure Boot: OVMF built with it, and a variable store with Microsoft's keys enrolled and Secure
# Boot on (Debian's ovmf package). The store is copied: the firmware writes to it.
OVMF_SECBOOT = Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd")
OVMF_MS_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
# What the firmware, shim or GRUB print when Secure Boot refuses what they were given to start.
REFUSED = (b"Access Denied", b"Security Violation", b"bad shim signature",
           b"you need to load the kernel first")
FIRMWARES = {"bios": "BIOS", "uefi": "UEFI", "secureboot": "UEFI Secure Boot"}


class Failed(Exception):
    pass


def run(cmd, timeout=120, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    return r


def must(cmd, what, timeout=120):
    r = run(cmd, timeout=timeout)
    if r.returncode != 0:
        raise Failed(f"{what}: {' '.join(map(str, cmd))} exited {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def make_stick(path: Path):
    """A 64 MiB vfat image labelled CNCLVTEST with inputs/ (no partition table, like many sticks)."""
    path.unlink(missing_ok=True)
    with open(path, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    must(["mkfs.vfat", "-n", "CNCLVTEST", "-i", "c0c1a7e5", str(path)], "mkfs.vfat")
    img = ["-i", str(path)]
    must(["mmd", *img, "::/inputs", "::/inputs/sigstore"], "mmd")
    files = sorted(SIGSTORE.glob("*.json"))
    must(["mcopy", *img, *map(str, files), "::/inputs/sigstore/"], "mcopy inputs")
    readme = TEST / "README.txt"
    readme.write_text("Input files of the Conclave image boot test (image/boot_test.py).\n")
    must(["mcopy", *img, str(readme), "::/inputs/README.txt"], "mcopy README")


class Serial:
    """The guest's first serial port, through a Unix socket (QEMU waits for us to connect)."""

    def __init__(self, path: Path, log: Path, proc):
        self.log = open(log, "wb")
        self.buf = b""
        self.proc = proc
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise Failed("QEMU did not open the serial socket")
                time.sleep(0.1)
        self.sock.settimeout(0.5)

    def pump(self):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        if not data:
            return False
        self.log.write(data)
        self.log.flush()
        self.buf += data
        return True

    def wait_for(self, pattern: bytes, deadline: float, start: int = 0):
        """Reads until `pattern` appears after offset `start`; returns its end offset. Fails at
        once when the firmware, shim or GRUB refused to start the next stage (Secure Boot)."""
        while True:
            i = self.buf.find(pattern, start)
            if i >= 0:
                return i + len(pattern)
            for refused in REFUSED:
                j = self.buf.find(refused)
                if j >= 0:
                    line = self.buf[self.buf.rfind(b"\n", 0, j) + 1:].split(b"\n")[0]
                    raise Failed(f"the boot was refused before {pattern!r} appeared: "
                                 f"{line.decode(errors='replace').strip()!r} (Secure Boot)")
            if time.monotonic() > deadline:
                raise Failed(f"timed out waiting for {pattern!r} on the serial console")
            if not self.pump():
                raise Failed(f"the guest stopped before {pattern!r} appeared on the serial console")

    def send(self, data: bytes):
        for b in data:
            self.sock.sendall(bytes([b]))
            time.sleep(0.02)


def boot(firmware: str, stick: Path | None, timeout: float):
    """Boots the ISO, enters the test mode at the GRUB menu, returns (serial text, figures)."""
    sock = TEST / f"serial-{firmware}.sock"
    log = TEST / f"serial-{firmware}.log"
    sock.unlink(missing_ok=True)
    cmd = ["timeout", str(int(timeout) + 30), "qemu-system-x86_64", "-accel", "tcg",
           "-m", "1024", "-smp", "2", "-display", "none", "-nic", "none", "-no-reboot",
           "-monitor", "none",
           # The ISO first: the stick's vfat boot sector would otherwise say "not a bootable disk".
           "-drive", f"if=none,id=cd,media=cdrom,readonly=on,file={ISO}",
           "-device", "ide-cd,drive=cd,bootindex=0",
           "-chardev", f"socket,id=ser0,path={sock},server=on,wait=on", "-serial", "chardev:ser0"]
    if firmware == "uefi":
        cmd += ["-bios", str(OVMF)]
    elif firmware == "secureboot":
        # SMM keeps the variable store out of the guest OS's reach: OVMF's Secure Boot needs it.
        vars_copy = TEST / "OVMF_VARS_4M.ms.fd"
        shutil.copyfile(OVMF_MS_VARS, vars_copy)
        cmd += ["-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on",
                "-drive", f"if=pflash,format=raw,unit=0,file={OVMF_SECBOOT},readonly=on",
                "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]
    if stick is not None:
        cmd += ["-device", "qemu-xhci,id=xhci",
                "-drive", f"if=none,id=stick,format=raw,file={stick}",
                "-device", "usb-storage,bus=xhci.0,drive=stick,removable=on"]
    t0 = time.monotonic()
    # Its own process group: on a failure, `timeout` and QEMU are killed together (killing only
    # `timeout` would leave QEMU running, holding the output pipe read below).
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    figures = {}
    try:
        ser = Serial(sock, log, proc)
        deadline = t0 + timeout
        # GRUB's menu, then its countdown (the menu is drawn and ready for keys).
        at = ser.wait_for(b"Conclave (offline ceremony appliance)", deadline)
        at = ser.wait_for(b"automatically", deadline, at)
        figures["grub menu"] = time.monotonic() - t0
        ser.send(b"e")
        at = ser.wait_for(b"ipv6.disable=1", deadline, at)
        time.sleep(0.5)
        # GRUB's editor shows `setparams 'TITLE'`, then the entry as written in image/grub.cfg:
        # an empty line (after `{`), then the `linux` line.
        ser.send(b"\x0e\x0e")  # Ctrl-N twice: down to the `linux` line
        ser.send(b"\x05")  # Ctrl-E: its end
        ser.send(EXTRA.encode())
        time.sleep(0.3)
        ser.send(b"\x18")  # Ctrl-X: boot
        at = ser.wait_for(b"CONCLAVE-TEST: start", deadline, at)
        figures["power-on to the sessions (tty1, ttyS0)"] = time.monotonic() - t0
        ser.wait_for(b"CONCLAVE-TEST: done", deadline, at)
        figures["whole boot and guest test"] = time.monotonic() - t0
        # poweroff -f: QEMU exits.
        while ser.pump():
            if time.monotonic() > deadline:
                raise Failed("the guest did not power off")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        qemu_out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        if qemu_out.strip():
            (TEST / f"qemu-{firmware}.log").write_text(qemu_out)
    text = log.read_bytes().decode(errors="replace").replace("\r", "")
    return text, figures


def check(text: str, what: str, pattern: str):
    if not re.search(pattern, text, re.M):
        raise Failed(f"{what}: {pattern!r} not found on the serial console")
    print(f"  ok  {what}")


def check_guest(text: str, firmware: str, with_stick: bool):
    print(f"guest checks ({FIRMWARES[firmware]}):")
    check(text, "kernel command line has ipv6.disable=1 and conclave.test=1",
          r"^CONCLAVE-TEST: kernel .*cmdline: .*ipv6\.disable=1.*conclave\.test=1")
    check(text, "root filesystem is the read-only squashfs under a tmpfs overlay",
          r"^CONCLAVE-TEST: root filesystem: overlay overlay ")
    check(text, "tty1 session started Conclave",
          r"^CONCLAVE-TEST: tty1 session: conclave-session: starting 'conclave (tui|--help)' on tty1")
    screen = re.search(r"^CONCLAVE-TEST: tty1 screen begins\n(.*?)^CONCLAVE-TEST: tty1 screen ends",
                       text, re.M | re.S)
    if not screen or not re.search(r"(?i)conclave", screen.group(1)):
        raise Failed("the tty1 screen does not show Conclave")
    print("  ok  tty1 screen shows Conclave")
    check(text, "only lo in /sys/class/net", r"^CONCLAVE-TEST: network interfaces in /sys/class/net: lo $")
    check(text, "no network kernel modules on disk", r"^CONCLAVE-TEST: network kernel modules on disk: 0$")
    check(text, "conclave selfcheck: air-gapped", r"^air-gapped: yes$")
    check(text, "conclave selfcheck: no interface but lo", r"^  network interfaces other than lo: none$")
    check(text, "conclave selfcheck exits 0", r"^CONCLAVE-TEST: selfcheck exit 0$")
    if firmware == "bios":
        check(text, "booted by BIOS", r"^CONCLAVE-TEST: firmware: BIOS$")
    elif firmware == "uefi":
        check(text, "booted by UEFI", r"^CONCLAVE-TEST: firmware: UEFI, ")
        if re.search(r"^CONCLAVE-TEST: kernel secure boot: secureboot: Secure boot enabled", text, re.M):
            raise Failed("the plain UEFI boot says Secure Boot is enabled")
    else:
        check(text, "firmware's SecureBoot variable is 1 (Secure Boot on)",
              r"^CONCLAVE-TEST: firmware: UEFI, SecureBoot variable: 1$")
        check(text, "kernel: Secure boot enabled",
              r"^CONCLAVE-TEST: kernel secure boot: secureboot: Secure boot enabled")
        check(text, "kernel locked down by Secure Boot (integrity)",
              r"^CONCLAVE-TEST: kernel lockdown: .*\[(integrity|confidentiality)\]")
    check_token_list(text)
    if not with_stick:
        return
    check(text, "stick automounted under /media", r"^CONCLAVE-TEST: stick mounted on /media/CNCLVTEST")
    check(text, "conclave usb list shows it", r"^/media/CNCLVTEST\S*  /dev/sd[a-z]+1?  vfat  label \"CNCLVTEST\"")
    check(text, "conclave usb import of the inputs", r"^CONCLAVE-TEST: usb import exit 0$")
    check(text, "conclave verify of the input repository (sigstore)", r"^CONCLAVE-TEST: verify inputs exit 0$")
    check(text, "rehearsal ran air-gapped (no air-gap warning)", r"^PRACTICE ceremony \"bootstrap-root\"")
    if re.search(r"not air-gapped", text):
        raise Failed("the rehearsal says the appliance is not air-gapped")
    check(text, "rehearsal exits 0", r"^CONCLAVE-TEST: rehearse exit 0 ")
    check(text, "stick unmounted", r"^CONCLAVE-TEST: umount exit 0$")


def check_token_list(text: str):
    """`conclave token list` with the image's configuration, then with yubihsm_pkcs11; no device."""
    first = re.search(r"^CONCLAVE-TEST: pcscd: .*?\n(.*?)^CONCLAVE-TEST: token list exit (\d+)$", text, re.M | re.S)
    second = re.search(r"^CONCLAVE-TEST: token list exit \d+\n(.*?)^CONCLAVE-TEST: token list yubihsm exit (\d+)$",
                       text, re.M | re.S)
    if not first or not second:
        raise Failed("the guest did not run both `conclave token list` commands")
    out, status = first.groups()
    # e.g. "module /usr/lib/x86_64-linux-gnu/libykcs11.so (chosen by /etc/conclave/config.toml:6 (pkcs11.modules))"
    chosen = re.search(r"^module (\S+) \(chosen by (.*)\)$", out, re.M)
    if not chosen:
        raise Failed(f"`conclave token list` (exit {status}) printed no module line:\n{out}")
    module, chosen_by = chosen.groups()
    if "softhsm" in module.lower() or not chosen_by.startswith("/etc/conclave/config.toml"):
        raise Failed(f"`conclave token list` loaded {module} (chosen by {chosen_by}); the image's "
                     "configuration must choose a keyholder module, never SoftHSM2")
    if status != "0" or not re.search(r"(?i)no tokens? present", out):
        raise Failed(f"`conclave token list` with {module} and no device: exit {status}, not a "
                     f"clean 'no tokens present':\n{out}")
    print(f"  ok  token list: {module} (chosen by {chosen_by}), no tokens present")
    out, status = second.groups()
    if (status != "0" or not re.search(r"^module \S*/yubihsm_pkcs11\.so ", out, re.M)
            or not re.search(r"(?i)no tokens? present", out)):
        raise Failed("`conclave token list --module yubihsm_pkcs11.so` with no device: exit "
                     f"{status}, not a clean 'no tokens present':\n{out}")
    print("  ok  token list --module yubihsm_pkcs11.so (connector yhusb://): no tokens present")


def check_stick(stick: Path, conclave: str, python: str):
    print("host checks of the stick:")
    ws = TEST / "ws"
    shutil.rmtree(ws, ignore_errors=True)
    must(["mcopy", "-s", "-n", "-i", str(stick), "::/ws", str(TEST)], "mcopy the workspace")
    export = ws / "export"
    for f in ("1.root.json", "1.targets.json"):
        if not (export / f).is_file():
            raise Failed(f"{export / f} is not on the stick")
    r = must([conclave, "verify", "--trusted-root", str(export / "1.root.json"), "--repo", str(export)],
             "conclave verify of the export")
    print(f"  ok  conclave verify: {r.stdout.strip().splitlines()[-1] if r.stdout.strip() else 'exit 0'}")
    must([python, str(TOP / "tests/python/verify_offline.py"), str(export / "1.root.json"),
          str(export / "1.targets.json")], "python-tuf (verify_offline.py)")
    print("  ok  python-tuf verifies root v1 and targets v1")
    transcripts = sorted(ws.glob("*.transcript.jsonl"))
    if not transcripts:
        raise Failed(f"no transcript in {ws}")
    # Anchored in the exported root: the seal must be signed by its root keys.
    r = must([conclave, "transcript", "verify", str(transcripts[0]), "--artifacts", str(export),
              "--trusted-root", str(export / "1.root.json")],
             "conclave transcript verify")
    if "Verdict: VALID (anchored" not in r.stdout:
        raise Failed(f"conclave transcript verify did not say VALID (anchored): {r.stdout[-400:]}")
    print(f"  ok  conclave transcript verify {transcripts[0].name}")
    must([python, str(TOP / "tests/python/verify_transcript.py"), str(transcripts[0]),
          "--artifacts", str(export)], "verify_transcript.py (securesystemslib)")
    print("  ok  verify_transcript.py (independent, securesystemslib)")


def main() -> int:
    global ISO
    # `timeout` or Ctrl-C: stop QEMU too (the `finally` in boot()).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--firmware", choices=[*FIRMWARES, "all"], default="all")
    ap.add_argument("--timeout", type=float, default=900, help="per boot, seconds")
    ap.add_argument("--iso", type=Path, default=ISO, help=f"default: {ISO}")
    a = ap.parse_args()
    ISO = a.iso.resolve()
    target = Path(os.environ.get("CARGO_TARGET_DIR", TOP / "target"))
    conclave = os.environ.get("CONCLAVE", str(target / "release/conclave"))
    python = os.environ.get("CONCLAVE_PYTHON", str(TOP / ".venv/bin/python"))
    if not ISO.is_file():
        print(f"boot_test.py: {ISO} not found; run `make image`", file=sys.stderr)
        return 2
    for tool in ("qemu-system-x86_64", "mkfs.vfat", "mcopy"):
        if shutil.which(tool) is None:
            print(f"boot_test.py: {tool} not found; run `make image-deps`", file=sys.stderr)
            return 2
    TEST.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        figures = {}
        if a.firmware in ("bios", "all"):
            stick = TEST / "stick.img"
            make_stick(stick)
            text, f = boot("bios", stick, a.timeout)
            figures.update({f"BIOS: {k}": v for k, v in f.items()})
            check_guest(text, "bios", True)
            check_stick(stick, conclave, python)
        for firmware in ("uefi", "secureboot"):
            if a.firmware not in (firmware, "all"):
                continue
            for needed in ((OVMF,) if firmware == "uefi" else (OVMF_SECBOOT, OVMF_MS_VARS)):
                if not needed.is_file():
                    raise Failed(f"{needed} not found (Debian package ovmf)")
            text, f = boot(firmware, None, a.timeout)
            figures.update({f"{FIRMWARES[firmware]}: {k}": v for k, v in f.items()})
            check_guest(text, firmware, False)
    except (Failed, subprocess.TimeoutExpired) as e:
        print(f"image test FAILED: {e}\nserial logs: {TEST}/serial-*.log", file=sys.stderr)
        return 1
    for k, v in figures.items():
        print(f"{k}: {v:.0f} s")
    print(f"image test passed in {time.monotonic() - started:.0f} s (ISO {ISO.stat().st_size / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
