//! Drawing: the common frame (header, step, message, keys), one module per screen body, and
//! the prompt and help overlays. Pure: a [`ViewState`] in, cells out. 16 colours only, so it
//! reads on the Linux console; everything fits 80×24.

mod choose;
mod help;
mod load;
mod people;
mod prompt;
pub mod review;
mod seal;
mod simple;
mod summary;
mod token;

use crate::text::{show, show_lines, show_message};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use std::ops::Range;

use super::state::{Screen, ViewState};

/// The most rows a step's instructions take (the body needs the rest at 80x24). A shipped
/// script's instructions fit them at 80 columns (`view::tests`): what is cut is never read.
pub const INSTRUCTION_ROWS: u16 = 4;

/// The frame's areas: header, banner, title, instructions, body, message, keys.
fn areas(s: &ViewState, area: Rect) -> [Rect; 7] {
    let instr_lines = if s.instructions.is_empty() {
        0
    } else {
        wrapped_height(&s.instructions, area.width.saturating_sub(2), true).min(INSTRUCTION_ROWS)
    };
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(s.banner.is_some())),
        Constraint::Length(1),
        Constraint::Length(instr_lines),
        Constraint::Min(BODY_MIN_ROWS),
        Constraint::Length(message_rows(
            s,
            area.width,
            area.height
                .saturating_sub(3 + u16::from(s.banner.is_some()) + instr_lines + BODY_MIN_ROWS),
        )),
        Constraint::Length(1),
    ])
    .areas(area)
}

/// Rows for the message under the body: none without one; the rows it takes (before: at least
/// three, two of them blank under a one-row message, rows the review's changes did without);
/// up to [`MESSAGE_MAX_ROWS`] for a long one, so a token's answer to a wrong PIN or an
/// export's "safe to remove the media" is not cut off. An error takes up to `room` rows (what
/// the rest of the frame and [`BODY_MIN_ROWS`] of body leave): a refusal's reason is read whole
/// (before: an event refused for an open invite showed its file and field but not why).
fn message_rows(s: &ViewState, width: u16, room: u16) -> u16 {
    match &s.message {
        None => 0,
        Some(m) => {
            let width = width.saturating_sub(2);
            let max = if m.error {
                room.max(MESSAGE_MAX_ROWS)
            } else {
                MESSAGE_MAX_ROWS
            };
            wrapped_height(&message_text(&m.text, width), width, true).clamp(1, max)
        }
    }
}

/// The rows of body a long error message leaves.
const BODY_MIN_ROWS: u16 = 3;

/// The most rows a message takes.
const MESSAGE_MAX_ROWS: u16 = 4;

/// The review's layout on a terminal of `width`×`height`, when the screen is the review:
/// what the app pages by and approves against.
pub fn review_layout(s: &ViewState, width: u16, height: u16) -> Option<review::Layout> {
    let Screen::Review { digests, .. } = &s.screen else {
        return None;
    };
    let [_, _, _, _, body, _, _] = areas(s, Rect::new(0, 0, width, height));
    Some(review::Layout::of(inset(body), digests))
}

pub use review::position as review_position;

/// Whether the digests the screen asks to approve or sign are on screen whole on a terminal
/// of `width`×`height` (true on screens without digests).
pub fn digests_fit(s: &ViewState, width: u16, height: u16) -> bool {
    let [_, _, _, _, body, _, _] = areas(s, Rect::new(0, 0, width, height));
    match &s.screen {
        Screen::Review { digests, .. } => review::Layout::of(inset(body), digests).fits,
        Screen::Token { .. } => token::layout(inset(body), &s.screen, s.rows_scroll).fits,
        _ => true,
    }
}

pub use token::RowsPage;

/// Where a token screen's rows (meters and signers) or the export's files stand on a terminal of
/// `width`×`height` when they page (`None`: not a token screen, or every row is on screen):
/// what the app pages by.
pub fn token_rows(s: &ViewState, width: u16, height: u16) -> Option<RowsPage> {
    let [_, _, _, _, body, _, _] = areas(s, Rect::new(0, 0, width, height));
    match &s.screen {
        Screen::Token { .. } | Screen::SigningDone { .. } => {
            token::layout(inset(body), &s.screen, s.rows_scroll).page
        }
        Screen::Export {
            files,
            destinations,
            selected,
        } => seal::export_layout(inset(body), files, destinations, *selected, s.rows_scroll).page,
        _ => None,
    }
}

/// Draw the whole screen.
pub fn draw(frame: &mut Frame<'_>, s: &ViewState) {
    let area = frame.area();
    let [header, banner, title, instr, body, message, keys] = areas(s, area);
    let instr_lines = instr.height;

    // Header: ceremony, practice marker, step progress and who acts.
    let mut left = vec![Span::styled(
        " CONCLAVE ",
        Style::new()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD),
    )];
    left.push(Span::raw(format!(" {} ", show(&s.ceremony))));
    if s.practice {
        left.push(Span::styled(
            " PRACTICE ",
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    let right = format!("{} · {} ", s.progress, show(&s.actor));
    let [hl, hr] = Layout::horizontal([
        Constraint::Min(10),
        Constraint::Length(right.chars().count() as u16),
    ])
    .areas(header);
    frame.render_widget(Paragraph::new(Line::from(left)), hl);
    frame.render_widget(
        Paragraph::new(Span::styled(right, Style::new().fg(Color::Cyan))),
        hr,
    );
    if let Some(b) = &s.banner {
        frame.render_widget(
            Paragraph::new(Span::styled(
                format!(" {}", show_message(b)),
                Style::new().fg(Color::Black).bg(Color::Yellow),
            )),
            banner,
        );
    }
    frame.render_widget(
        Paragraph::new(Span::styled(
            format!(" {}", show_message(&s.title)),
            Style::new().add_modifier(Modifier::BOLD),
        )),
        title,
    );
    if instr_lines > 0 {
        frame.render_widget(
            Paragraph::new(show_lines(&s.instructions))
                .wrap(Wrap { trim: true })
                .style(Style::new().fg(Color::Gray)),
            inset(instr),
        );
    }

    let body = inset(body);
    match &s.screen {
        Screen::Blank => {}
        Screen::Choose {
            scripts,
            selected,
            workspace,
        } => choose::draw(frame, body, scripts, *selected, workspace),
        Screen::Parameters { rows, selected } => simple::parameters(frame, body, rows, *selected),
        Screen::Acknowledge {
            prompt,
            record_text,
            text,
        } => simple::acknowledge(frame, body, prompt, *record_text, text),
        Screen::Checking { what } => simple::checking(frame, body, what),
        Screen::Airgap { interfaces, radios } => simple::airgap(frame, body, interfaces, radios),
        Screen::Clock { now, reference } => simple::clock(frame, body, now, reference),
        Screen::RollCall {
            fields,
            selected,
            min_keyholders,
            min_witnesses,
        } => people::draw(
            frame,
            body,
            fields,
            *selected,
            *min_keyholders,
            *min_witnesses,
        ),
        Screen::Load { what, source, keys } => load::draw(frame, body, what, source, keys),
        Screen::Token { .. } | Screen::SigningDone { .. } => {
            token::draw(frame, body, &s.screen, s.rows_scroll)
        }
        Screen::Propose => simple::propose(frame, body),
        Screen::Review {
            lines,
            digests,
            scroll,
            pane,
        } => review::draw(frame, body, lines, digests, *scroll, *pane),
        Screen::Verify { meters } => seal::verify(frame, body, meters),
        Screen::Export {
            files,
            destinations,
            selected,
        } => seal::export(frame, body, files, destinations, *selected, s.rows_scroll),
        Screen::Seal { artifacts, hash } => seal::seal(frame, body, artifacts, hash),
        Screen::Summary {
            seal_hex,
            seal_words,
            seal_qr,
            lines,
        } => summary::draw(frame, body, seal_hex, seal_words, seal_qr, lines),
    }

    if let Some(m) = &s.message {
        let style = if m.error {
            Style::new()
                .fg(Color::LightRed)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::LightGreen)
        };
        let area = inset(message);
        frame.render_widget(
            Paragraph::new(ratatui::text::Text::styled(
                message_text(&m.text, area.width),
                style,
            ))
            .wrap(Wrap { trim: true }),
            area,
        );
    }
    let mut spans = Vec::new();
    for (i, (k, what)) in key_line(&s.keys, keys.width).into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(
            k.to_string(),
            Style::new().fg(Color::Black).bg(Color::Gray),
        ));
        spans.push(Span::raw(format!(" {what}")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), keys);

    prompt::draw(frame, area, &s.prompt, digest_rows(s, body));
    if let Some(q) = &s.qr {
        summary::qr_overlay(frame, area, q);
    }
    if let Some(w) = &s.welcome {
        help::welcome(frame, area, w);
    }
    if s.help {
        help::draw(frame, area, &s.keys);
    }
}

/// The rows of the screen the digests to approve, sign or export take when they are shown whole
/// (the review's digest block, the signing and seal screens' digests, the export's files with
/// their sizes and SHA-256), with `body` the screen's body: a prompt opens beside them, never
/// over them, so the room reads the digests it approves, signs or exports while it confirms and
/// types the PIN.
fn digest_rows(s: &ViewState, body: Rect) -> Option<Range<u16>> {
    let rows = |r: Range<usize>| {
        let at = |i: usize| body.y.saturating_add(u16::try_from(i).unwrap_or(u16::MAX));
        at(r.start)..at(r.end)
    };
    match &s.screen {
        Screen::Review { digests, .. } => {
            let l = review::Layout::of(body, digests);
            l.fits.then(|| l.digest_rows())
        }
        Screen::Token { .. } => token::layout(body, &s.screen, s.rows_scroll)
            .digests
            .map(rows),
        Screen::Export {
            files,
            destinations,
            selected,
        } => seal::export_layout(body, files, destinations, *selected, s.rows_scroll)
            .files
            .map(rows),
        _ => None,
    }
}

/// The keys on the bottom line: all of them when they fit in `width`; else as many as fit
/// from the left and then `?`, whose help lists every key, so the way to the others is never
/// cut off (before, at 80 columns the key generation's line ended in "? h").
fn key_line(keys: &[(String, String)], width: u16) -> Vec<(&str, &str)> {
    let all: Vec<(&str, &str)> = keys.iter().map(|(k, w)| (k.as_str(), w.as_str())).collect();
    let wide = |k: &str, w: &str| k.chars().count() + 1 + w.chars().count();
    let total: usize = all.iter().map(|(k, w)| wide(k, w) + 2).sum::<usize>();
    let width = usize::from(width);
    if total.saturating_sub(2) <= width {
        return all;
    }
    let help = all.iter().copied().find(|(k, _)| *k == "?");
    let room = width.saturating_sub(help.map_or(0, |(k, w)| wide(k, w) + 2));
    let mut out = Vec::new();
    let mut used = 0;
    for (k, w) in all.iter().copied().filter(|(k, _)| *k != "?") {
        let need = wide(k, w) + if out.is_empty() { 0 } else { 2 };
        if used + need > room {
            break;
        }
        used += need;
        out.push((k, w));
    }
    out.extend(help);
    out
}

/// One column of margin on each side.
fn inset(r: Rect) -> Rect {
    Rect {
        x: r.x.saturating_add(1),
        width: r.width.saturating_sub(2),
        ..r
    }
}

/// A message as shown ([`show_message`]) on rows of `width`: a word longer than a row is cut
/// into rows here, never inside a visible escape (`\n`, `\x1b`, `\u{202e}`), so no row starts
/// with the tail of one ("n- removed owner" after a cut `\n` reads as a line of its own).
fn message_text(text: &str, width: u16) -> String {
    let width = usize::from(width.max(12));
    let shown = show_message(text);
    let mut out = String::with_capacity(shown.len());
    for (i, word) in shown.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let mut rest: Vec<char> = word.chars().collect();
        while rest.len() > width {
            let cut = escape_safe_cut(&rest, width);
            out.extend(&rest[..cut]);
            out.push('\n');
            rest.drain(..cut);
        }
        out.extend(&rest);
    }
    out
}

/// Where to cut `chars` (longer than `width`) at most `width` in: before a visible escape
/// (`\n`, `\xHH`, `\u{...}`) that would otherwise be split.
fn escape_safe_cut(chars: &[char], width: usize) -> usize {
    let Some(at) = chars[..width].iter().rposition(|c| *c == '\\') else {
        return width;
    };
    let len = match chars.get(at + 1) {
        Some('x') => 4,
        Some('u') => chars[at..]
            .iter()
            .position(|c| *c == '}')
            .map_or(2, |end| end + 1),
        _ => 2,
    };
    if at + len > width && at > 0 {
        at
    } else {
        width
    }
}

/// Rows a text takes drawn by a `Paragraph` wrapped at `width` with `Wrap { trim }`: counted
/// by ratatui's own word wrapper, so padded rows (runs of spaces kept with `trim: false`) are
/// counted as they are drawn. An empty text takes no row.
fn wrapped_height(text: &str, width: u16, trim: bool) -> u16 {
    if text.is_empty() {
        return 0;
    }
    let rows = Paragraph::new(text)
        .wrap(Wrap { trim })
        .line_count(width.max(1));
    u16::try_from(rows).unwrap_or(u16::MAX)
}

/// Rows `lines` take drawn by a `Paragraph` with `Wrap { trim: false }` (as the export and the
/// prompts draw them) at `width`, an empty line one row.
fn lines_height(lines: &[Line<'_>], width: u16) -> u16 {
    let rows = Paragraph::new(lines.to_vec())
        .wrap(Wrap { trim: false })
        .line_count(width.max(1));
    u16::try_from(rows).unwrap_or(u16::MAX)
}

/// A centred rectangle of at most `w`×`h` inside `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Style for a good (green) or bad (red) state.
fn good_bad(good: bool) -> Style {
    if good {
        Style::new()
            .fg(Color::LightGreen)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::new()
            .fg(Color::LightRed)
            .add_modifier(Modifier::BOLD)
    }
}

/// Threshold meter lines: "root v2 (new root)   ■■□  2 of 3 ✓".
fn meter_lines(meters: &[super::state::Meter]) -> Vec<Line<'static>> {
    // The label column: 34 columns, or wider when a label is longer (a tuf-on-ci role's
    // "root v2 by the root v2 (this event)"), so that a label never runs into its bar.
    let labels: Vec<String> = meters.iter().map(|m| show(&m.label)).collect();
    let width = labels
        .iter()
        .map(|l| l.chars().count() + 1)
        .max()
        .unwrap_or(0)
        .max(34);
    meters
        .iter()
        .zip(labels)
        .map(|(m, label)| {
            let met = m.have >= m.need;
            let bar: String = (0..m.need.max(m.have))
                .map(|i| if i < m.have { '■' } else { '□' })
                .collect();
            Line::from(vec![
                Span::raw(format!("{label:<width$}")),
                Span::styled(format!("{bar:<6}"), good_bad(met)),
                Span::styled(
                    format!(
                        " {} of {} {}",
                        m.have,
                        m.need,
                        if met { "threshold met" } else { "" }
                    ),
                    good_bad(met),
                ),
            ])
        })
        .collect()
}

#[cfg(test)]
mod tests;
