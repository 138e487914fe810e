//! The terminal UI (ratatui + crossterm): what the ceremony room looks at. Elm style: an
//! [`app::App`] model, [`app::Msg`] messages from keys and ticks, `update` calling the
//! ceremony session (the engine decides), and a pure [`view`] of a [`state::ViewState`].
//! Works on the 80×24 Linux console with 16 colours; the terminal is restored on exit and on
//! panic (ratatui's hook).

pub mod app;
pub mod state;
pub mod view;

use std::time::Duration;

use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};

use app::{App, Msg};

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
            if event::poll(Duration::from_millis(250))? {
                match event::read()? {
                    // Only presses: crossterm also reports releases and repeats on some terminals.
                    TermEvent::Key(k) if k.kind == KeyEventKind::Press => app.update(Msg::Key(k)),
                    // A resize is drawn on the next pass.
                    _ => {}
                }
            } else {
                app.update(Msg::Tick);
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
    ratatui::restore();
    result.map(|()| app.exit_message.take())
}
