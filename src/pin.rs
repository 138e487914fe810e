//! Reading PINs without leaving copies in memory (an edge: it reads standard input).
//!
//! A PIN is read straight from file descriptor 0 into a buffer that is allocated once, at its
//! final capacity, and wiped when dropped ([`Zeroizing`]). Nothing goes through the standard
//! library's `Stdin`, whose internal 8 KiB buffer is never wiped and keeps every line read through
//! it for the life of the process; no buffer grows (a growing buffer leaves its earlier copies
//! behind in freed memory). PINs typed at the terminal are read the same way, from `/dev/tty`
//! with echo turned off ([`prompt_pin`]), not through a crate that collects them in a growing
//! `String`.

use std::io;
use std::os::fd::AsFd;

use zeroize::Zeroizing;

/// Capacity of every PIN buffer, in bytes: PKCS#11 tokens take PINs of at most 255 bytes
/// (SoftHSM2; most devices far fewer).
pub const PIN_CAPACITY: usize = 256;

/// Largest standard input read for PINs (`keyholder=PIN` lines of one ceremony).
pub const MAX_PIN_INPUT: usize = 64 * 1024;

/// An empty PIN buffer of [`PIN_CAPACITY`] bytes (the terminal UI types into it).
pub fn pin_buffer() -> Zeroizing<String> {
    Zeroizing::new(String::with_capacity(PIN_CAPACITY))
}

/// Appends `c` to a PIN buffer made by [`pin_buffer`] when it still fits, never reallocating;
/// returns whether it was added.
pub fn push_pin_char(buf: &mut Zeroizing<String>, c: char) -> bool {
    if buf.len() + c.len_utf8() > buf.capacity() {
        return false;
    }
    buf.push(c);
    true
}

/// Fills `buf` from standard input, one `read(2)` at a time, until `stop` says the bytes read
/// so far are enough, end of input, or the buffer is full. Returns the bytes read.
fn read_stdin_into(
    buf: &mut [u8],
    stop: impl Fn(&[u8]) -> bool,
    one_byte: bool,
) -> io::Result<usize> {
    let stdin = io::stdin();
    let fd = stdin.as_fd();
    let mut len = 0;
    while len < buf.len() && !stop(&buf[..len]) {
        let end = if one_byte { len + 1 } else { buf.len() };
        match rustix::io::read(fd, &mut buf[len..end]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(len)
}

/// Turns the first `len` bytes of a zeroizing buffer into a zeroizing string without a copy (the
/// same allocation), refusing text that is not UTF-8.
fn into_string(mut bytes: Zeroizing<Vec<u8>>, len: usize) -> io::Result<Zeroizing<String>> {
    bytes.truncate(len);
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(e) => {
            // Wipe the bytes handed back with the error.
            drop(Zeroizing::new(e.into_bytes()));
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "standard input is not UTF-8 text",
            ))
        }
    }
}

/// Reads one line (a PIN) from standard input, byte by byte so that nothing after the line is
/// consumed, into a buffer of [`PIN_CAPACITY`] bytes; the line end (`\n`, `\r\n`) is removed.
/// A line longer than the buffer is an error.
pub fn read_pin_line() -> io::Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new(vec![0u8; PIN_CAPACITY]);
    let len = read_stdin_into(&mut bytes, |b| b.last() == Some(&b'\n'), true)?;
    let line_end = bytes[..len].last() == Some(&b'\n');
    if len == PIN_CAPACITY && !line_end {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the PIN line is longer than {PIN_CAPACITY} bytes"),
        ));
    }
    let mut text = into_string(bytes, len)?;
    while text.ends_with('\n') || text.ends_with('\r') {
        text.pop();
    }
    Ok(text)
}

/// Reads all of standard input (at most [`MAX_PIN_INPUT`] bytes) into one buffer allocated
/// once; more input is an error.
pub fn read_pin_input() -> io::Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new(vec![0u8; MAX_PIN_INPUT + 1]);
    let len = read_stdin_into(&mut bytes, |_| false, false)?;
    if len > MAX_PIN_INPUT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("standard input is longer than {MAX_PIN_INPUT} bytes"),
        ));
    }
    into_string(bytes, len)
}

/// Puts a terminal's modes back when dropped (also when reading fails or panics).
struct EchoOff<'a, Fd: AsFd> {
    fd: &'a Fd,
    saved: rustix::termios::Termios,
}

impl<'a, Fd: AsFd> EchoOff<'a, Fd> {
    /// Turns echo off on `fd` (a terminal), keeping the echo of the line end so that the next
    /// output starts on a line of its own; the line editing (canonical mode) stays.
    fn new(fd: &'a Fd) -> io::Result<Self> {
        use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
        let saved = tcgetattr(fd.as_fd())?;
        let mut quiet = saved.clone();
        quiet.local_modes &= !(LocalModes::ECHO | LocalModes::ECHOE | LocalModes::ECHOK);
        quiet.local_modes |= LocalModes::ECHONL;
        tcsetattr(fd.as_fd(), OptionalActions::Flush, &quiet)?;
        Ok(EchoOff { fd, saved })
    }
}

impl<Fd: AsFd> Drop for EchoOff<'_, Fd> {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            self.fd.as_fd(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// Writes `prompt` to the terminal `tty` and reads one line from it with echo off, byte by byte,
/// into a buffer of [`PIN_CAPACITY`] bytes allocated once and wiped when dropped; the line end is
/// removed. A line longer than the buffer is an error (the rest of it is read and wiped too).
pub fn read_pin_from_terminal<T: AsFd>(tty: &T, prompt: &str) -> io::Result<Zeroizing<String>> {
    let echo = EchoOff::new(tty)?;
    write_all(tty, prompt.as_bytes())?;
    let mut bytes = Zeroizing::new(vec![0u8; PIN_CAPACITY]);
    let mut len = 0;
    let mut too_long = false;
    loop {
        let mut one = Zeroizing::new([0u8; 1]);
        match rustix::io::read(tty.as_fd(), &mut one[..]) {
            Ok(0) => break,
            Ok(_) => {
                if one[0] == b'\n' {
                    break;
                }
                if len < PIN_CAPACITY {
                    bytes[len] = one[0];
                    len += 1;
                } else {
                    too_long = true;
                }
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    drop(echo);
    if too_long {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the PIN is longer than {PIN_CAPACITY} bytes"),
        ));
    }
    let mut text = into_string(bytes, len)?;
    while text.ends_with('\r') {
        text.pop();
    }
    Ok(text)
}

fn write_all<T: AsFd>(fd: &T, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd.as_fd(), bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Asks for a PIN on the controlling terminal (`/dev/tty`) without echo; see
/// [`read_pin_from_terminal`]. Without a terminal it is an error (scripts use `--pin-stdin`).
pub fn prompt_pin(prompt: &str) -> io::Result<Zeroizing<String>> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    read_pin_from_terminal(&tty, prompt)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Typing the longest PIN the buffer takes never moves it (no copy left behind in freed
    /// memory), and a character that does not fit is refused.
    #[test]
    fn a_pin_buffer_never_reallocates() {
        let mut buf = pin_buffer();
        let at = buf.as_ptr();
        let mut typed = 0;
        while push_pin_char(&mut buf, 'é') {
            typed += 1;
            assert_eq!(buf.as_ptr(), at);
        }
        assert_eq!(typed, PIN_CAPACITY / 2);
        assert_eq!(buf.capacity(), PIN_CAPACITY);
        assert!(!push_pin_char(&mut buf, '1') || buf.len() <= PIN_CAPACITY);
        assert_eq!(buf.as_ptr(), at);
    }

    #[test]
    fn into_string_keeps_the_allocation() {
        let mut bytes = Zeroizing::new(vec![0u8; 16]);
        bytes[..4].copy_from_slice(b"1234");
        let at = bytes.as_ptr();
        let s = into_string(bytes, 4).unwrap();
        assert_eq!(s.as_str(), "1234");
        assert_eq!(s.as_ptr(), at);
        let mut bad = Zeroizing::new(vec![0u8; 4]);
        bad[0] = 0xff;
        assert!(into_string(bad, 1).is_err());
    }

    /// A pseudo-terminal pair: (controller, terminal) — the test types on the controller side.
    fn pty() -> (std::fs::File, std::fs::File) {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&controller).unwrap();
        unlockpt(&controller).unwrap();
        let name = ptsname(&controller, Vec::new()).unwrap();
        let terminal = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().unwrap())
            .unwrap();
        (std::fs::File::from(controller), terminal)
    }

    /// What the terminal echoed back to the controller so far (non-blocking).
    fn echoed(controller: &std::fs::File) -> Vec<u8> {
        use rustix::fs::{OFlags, fcntl_setfl};
        fcntl_setfl(controller, OFlags::NONBLOCK | OFlags::RDWR).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = rustix::io::read(controller, &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// A PIN typed at a terminal is read without being echoed, the prompt is shown, and the
    /// terminal's echo is back on afterwards.
    #[test]
    fn a_pin_typed_at_a_terminal_is_not_echoed_and_echo_comes_back() {
        use rustix::termios::{LocalModes, tcgetattr};
        let (controller, terminal) = pty();
        assert!(
            tcgetattr(&terminal)
                .unwrap()
                .local_modes
                .contains(LocalModes::ECHO)
        );
        let reader = std::thread::spawn(move || {
            let pin = read_pin_from_terminal(&terminal, "PIN for alice: ").unwrap();
            (pin.to_string(), terminal)
        });
        // Wait for the prompt (echo is off by then), then type.
        let mut seen = Vec::new();
        for _ in 0..200 {
            seen.extend(echoed(&controller));
            if seen.ends_with(b"PIN for alice: ") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(seen.ends_with(b"PIN for alice: "), "{seen:?}");
        rustix::io::write(&controller, b"s3cret-pin\n").unwrap();
        let (pin, terminal) = reader.join().unwrap();
        assert_eq!(pin, "s3cret-pin");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let after = echoed(&controller);
        assert!(
            !String::from_utf8_lossy(&after).contains("s3cret"),
            "the PIN was echoed: {after:?}"
        );
        assert!(
            tcgetattr(&terminal)
                .unwrap()
                .local_modes
                .contains(LocalModes::ECHO)
        );
    }

    /// A line longer than the buffer is refused, and echo still comes back.
    #[test]
    fn a_pin_too_long_for_the_buffer_is_refused() {
        use rustix::termios::{LocalModes, tcgetattr};
        let (controller, terminal) = pty();
        let typing = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let line = format!("{}\n", "7".repeat(PIN_CAPACITY + 10));
            rustix::io::write(&controller, line.as_bytes()).unwrap();
            controller
        });
        let e = read_pin_from_terminal(&terminal, "PIN: ").unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
        let _controller = typing.join().unwrap();
        assert!(
            tcgetattr(&terminal)
                .unwrap()
                .local_modes
                .contains(LocalModes::ECHO)
        );
    }
}
