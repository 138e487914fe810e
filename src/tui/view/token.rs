//! A keyholder's token: which token is expected, which are present, and for signing the
//! threshold meters of every role (the old and the new root's during a rotation) and each
//! keyholder's status.

use std::ops::Range;

use crate::text::{show, show_message};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{good_bad, meter_lines};
use crate::tui::state::{Screen, SignerRow, TokenStatus};

/// One row per keyholder (mark, name, status); a status too long for `width` continues on
/// the next rows under the status column, never from column 0 (before: " was written").
fn signer_lines(signers: &[SignerRow], width: u16) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for r in signers {
        let head = format!("{:<12} ", show(&r.keyholder));
        let indent = 3 + head.chars().count();
        let mut pieces = hanging(&show_message(&r.status), usize::from(width), indent).into_iter();
        lines.push(Line::from(vec![
            Span::styled(if r.done { " ✓ " } else { " · " }, good_bad(r.done)),
            Span::raw(format!("{head}{}", pieces.next().unwrap_or_default())),
        ]));
        lines.extend(pieces.map(|p| Line::raw(format!("{}{p}", " ".repeat(indent)))));
    }
    lines
}

/// `text` cut at spaces into pieces that fit `width` after an `indent` (at least 16 columns
/// each; a word longer than that is cut inside).
fn hanging(text: &str, width: usize, indent: usize) -> Vec<String> {
    let room = width.saturating_sub(indent).max(16);
    let mut pieces: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        let used = current.chars().count();
        if used > 0 && used + 1 + word.len() > room {
            pieces.push(std::mem::take(&mut current));
        }
        while word.len() > room {
            let rest = word.split_off(room);
            if !current.is_empty() {
                pieces.push(std::mem::take(&mut current));
            }
            pieces.push(word.into_iter().collect());
            word = rest;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.extend(word);
    }
    pieces.push(current);
    pieces
}

/// Where a token screen's rows (its meters and signers) stand when they do not fit at once
/// and page: the first row shown (0-based), how many are shown, of how many.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowsPage {
    /// First row shown.
    pub first: usize,
    /// Rows shown.
    pub shown: usize,
    /// Rows in all.
    pub total: usize,
}

/// A token screen as drawn in its body area.
pub(super) struct Layout {
    /// Its lines, one row each.
    pub lines: Vec<Line<'static>>,
    /// Whether the digests to sign are on screen whole (when not, they are replaced by a "too
    /// small" notice and signing is refused).
    pub fits: bool,
    /// Where the rows stand when they page (`None`: all on screen).
    pub page: Option<RowsPage>,
    /// The rows of the body the digest block takes (its heading, words and hex), when shown:
    /// what a prompt leaves on screen.
    pub digests: Option<Range<usize>>,
}

/// The token screen at `area` with its rows paged from `scroll`.
pub(super) fn layout(area: Rect, screen: &Screen, scroll: usize) -> Layout {
    let mut lines = Vec::new();
    let mut fits = true;
    let mut page = None;
    let mut digest_rows = None;
    match screen {
        Screen::Token {
            keyholder,
            purpose,
            expected,
            present,
            status,
            meters,
            signers,
            digests,
        } => {
            lines.push(Line::from(vec![
                Span::raw("Keyholder "),
                Span::styled(
                    show(keyholder),
                    Style::new()
                        .fg(Color::LightCyan)
                        .add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!(": {}", show_message(purpose))),
            ]));
            let (expected, keyholder) = (show(expected), show(keyholder));
            let (text, good) = match status {
                TokenStatus::Present => {
                    (format!("token {expected} of {keyholder} is present"), true)
                }
                TokenStatus::Wrong(m) => (show_message(m), false),
                TokenStatus::Missing => {
                    (format!("insert the token {expected} of {keyholder}"), false)
                }
                TokenStatus::Error(e) => (
                    format!("tokens cannot be listed: {}", show_message(e)),
                    false,
                ),
            };
            let style = if matches!(status, TokenStatus::Missing) {
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
            } else {
                good_bad(good)
            };
            lines.push(Line::from(Span::styled(text, style)));
            if present.is_empty() {
                lines.push(Line::raw("  (no token present)"));
            }
            // Signing with the expected token present: its row only, so the digests to sign
            // fit the 80x24 console with every keyholder's token inserted (before: four
            // tokens and two roles left no room and signing was refused at 80x24).
            let only_expected = matches!(status, TokenStatus::Present) && !digests.is_empty();
            for t in present.iter().filter(|t| t.expected || !only_expected) {
                lines.push(Line::from(vec![
                    Span::styled(if t.expected { " ▶ " } else { "   " }, good_bad(t.expected)),
                    Span::raw(format!(
                        "{:<12} serial {:<18} {}",
                        show(&t.label),
                        show(&t.serial),
                        show(&t.model)
                    )),
                    Span::styled(format!(" {}", t.flags), Style::new().fg(Color::LightRed)),
                ]));
            }
            if !digests.is_empty() {
                let (sums, widest) = super::review::sum_lines(digests, area.width);
                // Every line so far is one row (the screen's lines are shorter than the body).
                fits = widest <= area.width
                    && lines.len() + 1 + sums.len() <= usize::from(area.height);
                lines.push(Line::raw(""));
                if fits {
                    digest_rows = Some(lines.len()..lines.len() + sums.len());
                    lines.extend(sums);
                } else {
                    lines.push(Line::from(Span::styled(
                        "The terminal is too small to show the digests to sign whole: enlarge it; signing is refused until they fit.",
                        good_bad(false),
                    )));
                }
            }
            (lines, page) = fit(lines, &mut digest_rows, meters, signers, area, scroll);
        }
        Screen::SigningDone { meters, signers } => {
            lines.push(Line::from(Span::styled(
                "Every threshold is met: signing can be closed.",
                good_bad(true),
            )));
            (lines, page) = fit(lines, &mut None, meters, signers, area, scroll);
        }
        _ => {}
    }
    Layout {
        lines,
        fits,
        page,
        digests: digest_rows,
    }
}

/// The signer rows grouped by status, one row per status ("✓ signed: alice, bob"): the
/// compact form when one row per keyholder does not fit.
fn grouped_signer_lines(signers: &[SignerRow]) -> Vec<Line<'static>> {
    let mut groups: Vec<(bool, &str, Vec<String>)> = Vec::new();
    for r in signers {
        match groups
            .iter_mut()
            .find(|(d, st, _)| *d == r.done && *st == r.status)
        {
            Some((_, _, names)) => names.push(show(&r.keyholder)),
            None => groups.push((r.done, &r.status, vec![show(&r.keyholder)])),
        }
    }
    groups
        .into_iter()
        .map(|(done, status, names)| {
            Line::from(vec![
                Span::styled(if done { " ✓ " } else { " · " }, good_bad(done)),
                Span::raw(format!("{}: {}", show_message(status), names.join(", "))),
            ])
        })
        .collect()
}

/// `head` (one row per line), then the meters and the signers: with blank rows between them
/// when that fits `height`, else without, else with the signers grouped by status; else the
/// head stays and the rows below it (one per meter and per keyholder) page from `scroll`,
/// with their position shown as the review shows it ("rows 7-12 of 22") and the keys that
/// page. Nothing is dropped: paging reaches every row. When the head (with the digests, at
/// `digests`) fills the area, the blank row above the digests gives way to the line that says
/// rows are below (before: that line took the digests' last hex row).
fn fit(
    mut head: Vec<Line<'static>>,
    digests: &mut Option<Range<usize>>,
    meters: &[crate::tui::state::Meter],
    signers: &[SignerRow],
    area: Rect,
    scroll: usize,
) -> (Vec<Line<'static>>, Option<RowsPage>) {
    let height = usize::from(area.height);
    let assemble = |gap: bool, compact: bool| {
        let mut lines = head.clone();
        if !meters.is_empty() {
            if gap {
                lines.push(Line::raw(""));
            }
            lines.extend(meter_lines(meters));
        }
        if !signers.is_empty() {
            if gap {
                lines.push(Line::raw(""));
            }
            lines.extend(if compact {
                grouped_signer_lines(signers)
            } else {
                signer_lines(signers, area.width)
            });
        }
        lines
    };
    for (gap, compact) in [(true, false), (false, false), (false, true)] {
        let lines = assemble(gap, compact);
        if lines.len() <= height {
            return (lines, None);
        }
    }
    let mut rows = meter_lines(meters);
    rows.extend(signer_lines(signers, area.width));
    let total = rows.len();
    // The head fits (the digests were checked); one row is the position line.
    if head.len() >= height
        && let Some(d) = digests.as_mut()
        && d.start > 0
        && head.get(d.start - 1).is_some_and(|l| l.width() == 0)
    {
        head.remove(d.start - 1);
        *d = d.start - 1..d.end - 1;
    }
    let room = height.saturating_sub(head.len() + 1);
    let mut lines = head;
    if room == 0 {
        lines.truncate(height.saturating_sub(1));
        lines.push(Line::from(Span::styled(
            format!("{total} row(s) below: enlarge the terminal to see them"),
            good_bad(false),
        )));
        return (lines, None);
    }
    let shown = room.min(total);
    let first = scroll.min(total - shown);
    lines.extend(rows.into_iter().skip(first).take(shown));
    lines.push(page_line("row", first, shown, total));
    (
        lines,
        Some(RowsPage {
            first,
            shown,
            total,
        }),
    )
}

pub(super) fn draw(frame: &mut Frame<'_>, area: Rect, screen: &Screen, scroll: usize) {
    let lines = layout(area, screen, scroll).lines;
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

/// The line under a paged list: its position ("rows 7-12 of 22") and the keys that move it.
pub(super) fn page_line(kind: &str, first: usize, shown: usize, total: usize) -> Line<'static> {
    let more = match (first > 0, first + shown < total) {
        (true, true) => "PgUp PgDn: more",
        (false, _) => "PgDn: more",
        (true, false) => "PgUp: back",
    };
    Line::from(Span::styled(
        format!(
            "{} ({more})",
            super::review::position_of(kind, first, shown, total)
        ),
        Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
    ))
}
