//! The prompt overlay: confirmation (never pre-selected), masked PIN, a line of text.

use std::ops::Range;

use crate::text::{show_lines, show_message};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::{centered, lines_height};
use crate::tui::state::Prompt;

/// What a prompt's line is, for what gives way when the prompt must be shorter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The question, the field typed in, the answer keys of a confirmation: always shown.
    Text,
    /// A blank line between the parts: the first to go.
    Blank,
    /// The keys of a PIN or text prompt and the practice hint (the help lists them too):
    /// they go after the blank lines.
    Help,
}

/// A prompt's lines, each with what it is.
type Lines = Vec<(Line<'static>, Kind)>;

/// The prompt's title, lines and colour.
fn content(p: &Prompt) -> Option<(&'static str, Lines, Color)> {
    let text_lines = |s: &str| -> Lines {
        show_lines(s)
            .split('\n')
            .map(|l| {
                let kind = if l.trim().is_empty() {
                    Kind::Blank
                } else {
                    Kind::Text
                };
                (Line::raw(l.to_string()), kind)
            })
            .collect()
    };
    let blank = || (Line::raw(""), Kind::Blank);
    Some(match p {
        Prompt::None => return None,
        Prompt::Confirm { question } => {
            let mut l = text_lines(question);
            l.extend([
                blank(),
                (
                    Line::from(vec![
                        Span::styled(" y ", Style::new().fg(Color::Black).bg(Color::Yellow)),
                        Span::raw(" yes    "),
                        Span::styled(
                            " any other key ",
                            Style::new().fg(Color::Black).bg(Color::Gray),
                        ),
                        Span::raw(" no"),
                    ]),
                    Kind::Text,
                ),
            ]);
            (" Confirm ", l, Color::Yellow)
        }
        Prompt::Pin {
            label,
            field,
            typed,
            practice_hint,
        } => {
            let mut l = text_lines(label);
            l.extend([
                blank(),
                (
                    Line::from(vec![
                        Span::raw(format!("{}: ", show_message(field))),
                        Span::styled(
                            format!("{}_", "*".repeat(*typed)),
                            Style::new().add_modifier(Modifier::BOLD),
                        ),
                    ]),
                    Kind::Text,
                ),
                blank(),
                (Line::raw("Enter: log in   Esc: cancel"), Kind::Help),
            ]);
            if *practice_hint {
                l.push((
                    Line::from(Span::styled(
                        "Practice token: F2 fills in its practice PIN",
                        Style::new().fg(Color::Yellow),
                    )),
                    Kind::Help,
                ));
            }
            let title = if field == "PIN" {
                " PIN (not shown, not recorded) "
            } else {
                " management key (not shown, not recorded) "
            };
            (title, l, Color::LightCyan)
        }
        Prompt::Text { label, value } => {
            let mut l = text_lines(label);
            l.extend([
                blank(),
                (
                    Line::from(Span::styled(
                        format!("{}_", show_message(value)),
                        Style::new().fg(Color::Yellow),
                    )),
                    Kind::Text,
                ),
                blank(),
                (Line::raw("Enter: done   Esc: cancel"), Kind::Help),
            ]);
            (" Type ", l, Color::LightCyan)
        }
    })
}

/// The prompt's forms, longest first: whole with a spare row under it; without blank lines;
/// without blank lines and help. Each: the lines kept and the box's rows, its lines wrapped at
/// words inside the box (68 columns) and its borders (before: the rows were counted as if
/// lines were cut at any character, one row short for a long warning, and the prompt's last
/// line fell off its box).
fn forms(lines: &[(Line<'static>, Kind)], width: u16) -> [(Vec<Line<'static>>, u16); 3] {
    let inner = width.min(70).saturating_sub(2).max(1);
    let form = |keep: &dyn Fn(Kind) -> bool, spare: u16| {
        let kept: Vec<Line<'static>> = lines
            .iter()
            .filter(|(_, k)| keep(*k))
            .map(|(l, _)| l.clone())
            .collect();
        let rows = lines_height(&kept, inner);
        (kept, rows.saturating_add(2 + spare))
    };
    [
        form(&|_| true, 1),
        form(&|k| k != Kind::Blank, 0),
        form(&|k| k == Kind::Text, 0),
    ]
}

/// Where the prompt goes in `area` and in which form (an index into [`forms`]), of the forms'
/// `heights`. `keep`: the rows the room reads while answering (the digests approved or signed,
/// the files exported with their SHA-256):
/// the prompt goes above them, else below them, whole if it fits there, else without its blank
/// lines, else without its help too; only when no form fits beside them is it centred over
/// them (a cut question would be worse). Without `keep`, centred and whole.
fn place(area: Rect, keep: Option<&Range<u16>>, heights: [u16; 3]) -> (Rect, usize) {
    if let Some(keep) = keep {
        let bottom = area.y.saturating_add(area.height);
        let band = |from: u16, to: u16| Rect {
            y: from,
            height: to.saturating_sub(from),
            ..area
        };
        let above = band(area.y, keep.start.clamp(area.y, bottom));
        let below = band(keep.end.clamp(area.y, bottom), bottom);
        for (form, room) in [
            (0, above),
            (1, above),
            (0, below),
            (1, below),
            (2, above),
            (2, below),
        ] {
            if heights[form] <= room.height {
                return (centered(room, 70, heights[form]), form);
            }
        }
    }
    (centered(area, 70, heights[0]), 0)
}

/// The prompt over `area`, beside the rows `keep` when it fits there ([`place`]).
pub(super) fn draw(frame: &mut Frame<'_>, area: Rect, p: &Prompt, keep: Option<Range<u16>>) {
    let Some((title, lines, colour)) = content(p) else {
        return;
    };
    let [a, b, c] = forms(&lines, area.width);
    let (r, form) = place(area, keep.as_ref(), [a.1, b.1, c.1]);
    let lines = match form {
        0 => a.0,
        1 => b.0,
        _ => c.0,
    };
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::new()
                .borders(Borders::ALL)
                .border_style(Style::new().fg(colour))
                .title(title),
        ),
        r,
    );
}
