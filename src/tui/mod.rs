//! The terminal UI (ratatui + crossterm): what the ceremony room looks at. Elm style: an
//! [`app::App`] model, [`app::Msg`] messages from keys, ticks and finished token jobs,
//! `update` calling the ceremony session (the engine decides), and a pure [`view`] of a
//! [`state::ViewState`]. Token work (logins, key generation, signatures, the seal, the
//! key-event log, exports, opening the ceremony) runs on a worker thread ([`worker`]), and the
//! tokens shown on screen are asked on a poller thread ([`poller`]), the air-gap reading and
//! the removable media on a machine reader thread: the loop polls the terminal, the job's
//! result and the pollers' answers, so the screen keeps drawing and keys keep working while a
//! token or a medium works or hangs. The UI thread reads no file, `/proc`, `/sys` or
//! transcript.
//! Works on the 80×24 Linux console with 16 colours; the terminal is restored on exit and on
//! panic (ratatui's hook).

pub mod app;
pub mod poller;
pub mod state;
pub mod view;
pub mod worker;

use std::time::Duration;

use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};

use app::{App, Msg};

/// What the terminal has for the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Bytes to read.
    Ready,
    /// Nothing within the wait.
    Idle,
    /// The terminal hung up or the input ended: nothing will come any more.
    Ended,
}

/// Wait up to `wait` for input on standard input (the terminal the UI runs on).
fn wait_for_input(wait: Duration) -> Input {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdin = std::io::stdin();
    let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
    let timeout = Timespec {
        tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(wait.subsec_nanos()),
    };
    match poll(&mut fds, Some(&timeout)) {
        Ok(0) => Input::Idle,
        Ok(_) => input_state(fds[0].revents()),
        Err(rustix::io::Errno::INTR) => Input::Idle,
        Err(_) => Input::Ended,
    }
}

/// The poll flags of standard input as the UI reads them.
fn input_state(revents: rustix::event::PollFlags) -> Input {
    use rustix::event::PollFlags;
    if revents.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
        Input::Ended
    } else if revents.contains(PollFlags::IN) {
        Input::Ready
    } else {
        Input::Idle
    }
}

/// Run the UI until the ceremony is finished or the administrator stops it. Returns the
/// message to print after the terminal is restored, if the UI ended early.
pub fn run_owned(app: &mut App) -> std::io::Result<Option<String>> {
    let mut terminal = ratatui::init();
    let result = (|| -> std::io::Result<()> {
        loop {
            if let Ok(size) = terminal.size() {
                app.term = (size.width, size.height);
            }
            let state = app.view_state();
            terminal.draw(|f| view::draw(f, &state))?;
            if app.quit {
                return Ok(());
            }
            // A token job that finished comes back first: its result is applied (keys typed
            // while it ran are drained below if it opens a prompt) and drawn on the next pass.
            // Events crossterm has read already come next. Then wait for input ourselves:
            // crossterm reads a hung-up terminal (EIO) or the end of input again and again
            // inside its own poll, so the UI would spin for good. A hangup ends the UI (the
            // transcript holds every step; the same command continues).
            if let Some(done) = app.job_result(Duration::ZERO) {
                app.update(done);
            } else if let Some(polled) = app.poll_answer(Some(Duration::ZERO)) {
                // The tokens as the poller found them (dropped if the ceremony moved on).
                app.update(polled);
            } else if let Some(read) = app.read_answer(Some(Duration::ZERO)) {
                // The air gap or the media as the machine reader found them.
                app.update(read);
            } else if event::poll(Duration::ZERO)? {
                match event::read()? {
                    // Only presses: crossterm also reports releases and repeats on some terminals.
                    TermEvent::Key(k) if k.kind == KeyEventKind::Press => app.update(Msg::Key(k)),
                    // A resize is drawn on the next pass.
                    _ => {}
                }
            } else {
                // While a token job runs, a shorter wait: the spinner and the elapsed seconds
                // move, and its result is picked up soon after it arrives.
                let wait = if app.busy() { 100 } else { 250 };
                match wait_for_input(Duration::from_millis(wait)) {
                    Input::Ended => {
                        app.exit_message = Some(
                            "the terminal went away (end of input); the same command continues the ceremony"
                                .into(),
                        );
                        return Ok(());
                    }
                    // Read on the next pass.
                    Input::Ready => {}
                    Input::Idle => app.update(Msg::Tick),
                }
            }
            if app.drain {
                // Keys typed ahead of a PIN or confirmation prompt are discarded.
                app.drain = false;
                while event::poll(Duration::from_millis(0))? {
                    let _ = event::read()?;
                }
            }
        }
    })();
    // The seal's logged-in signers are let go off this thread (however the UI ended): the
    // end waits for their sessions to close a bounded time, saying so if they do not.
    app.close_sealers();
    ratatui::restore();
    if let Some(note) = app.wait_for_closing(app::CLOSE_WAIT) {
        eprintln!("{note}");
    }
    result.map(|()| app.exit_message.take())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::PollFlags;

    #[test]
    fn a_hung_up_terminal_ends_the_ui() {
        assert_eq!(input_state(PollFlags::IN | PollFlags::HUP), Input::Ended);
        assert_eq!(input_state(PollFlags::ERR), Input::Ended);
        assert_eq!(input_state(PollFlags::NVAL), Input::Ended);
        assert_eq!(input_state(PollFlags::IN), Input::Ready);
        assert_eq!(input_state(PollFlags::empty()), Input::Idle);
    }
}
