//! Reading PINs without leaving copies in memory (an edge: it reads standard input).
//!
//! A PIN is read straight from file descriptor 0 into a buffer that is allocated once, at its
//! final capacity, and wiped when dropped ([`Zeroizing`]). Nothing goes through the standard
//! library's `Stdin`, whose internal 8 KiB buffer is never wiped and keeps every line read through
//! it for the life of the process; no buffer grows (a growing buffer leaves its earlier copies
//! behind in freed memory).

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
}
