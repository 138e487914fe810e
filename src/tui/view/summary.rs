//! The end: the seal hash to write on the paper form (hex groups, words, QR code) and the
//! checks of the output.

use crate::text::show_indented;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

pub(super) fn draw(
    frame: &mut Frame<'_>,
    area: Rect,
    hex: &str,
    words: &str,
    qr: &[String],
    lines: &[String],
) {
    let qr_w = qr.first().map_or(0, |l| l.chars().count());
    let mut show_qr = qr_w > 0
        && u16::try_from(qr_w).is_ok_and(|w| w + 42 <= area.width)
        && u16::try_from(qr.len()).is_ok_and(|h| h <= area.height);
    // The text beside the QR code must fit whole (the checks and the transcript's path): when
    // it does not, the QR code gives way and a row says so.
    let mut texts: Vec<String> = vec![
        "Seal (write it on the paper form):".into(),
        hex.to_string(),
        words.to_string(),
        String::new(),
    ];
    texts.extend(lines.iter().map(|l| show_indented(l)));
    let text_width = usize::from(area.width).saturating_sub(qr_w + 1);
    if show_qr && wrapped_rows(&texts, text_width) > usize::from(area.height) {
        show_qr = false;
    }
    let [text, code] = Layout::horizontal([
        Constraint::Min(40),
        Constraint::Length(if show_qr {
            u16::try_from(qr_w + 1).unwrap_or(0)
        } else {
            0
        }),
    ])
    .areas(area);
    let mut out = vec![
        Line::from(Span::styled(
            "Seal (write it on the paper form):",
            Style::new().add_modifier(Modifier::BOLD),
        )),
        Line::from(Span::styled(
            hex.to_string(),
            Style::new().fg(Color::LightCyan),
        )),
        Line::from(Span::styled(
            words.to_string(),
            Style::new().fg(Color::LightCyan),
        )),
        Line::raw(""),
    ];
    for l in lines {
        let style = if l.contains("FAILED") {
            Style::new()
                .fg(Color::LightRed)
                .add_modifier(Modifier::BOLD)
        } else if l.ends_with("VALID") {
            Style::new().fg(Color::LightGreen)
        } else {
            Style::new()
        };
        out.push(Line::from(Span::styled(show_indented(l), style)));
    }
    if !show_qr && qr_w > 0 {
        out.push(Line::from(Span::styled(
            "(the seal's QR code needs a larger terminal)",
            Style::new().fg(Color::Gray),
        )));
    }
    frame.render_widget(Paragraph::new(out).wrap(Wrap { trim: false }), text);
    if show_qr {
        let q: Vec<Line<'_>> = qr.iter().map(|l| Line::raw(l.as_str())).collect();
        let code = Rect {
            x: code.x.saturating_add(1),
            width: code.width.saturating_sub(1),
            ..code
        };
        frame.render_widget(Paragraph::new(q), code);
    }
}

/// Rows `texts` take word-wrapped at `width` columns (each at least one row; a word longer
/// than the row is broken).
fn wrapped_rows(texts: &[String], width: usize) -> usize {
    let width = width.max(1);
    texts
        .iter()
        .map(|t| {
            let mut rows = 1;
            let mut col = 0;
            for word in t.split(' ') {
                let w = word.chars().count();
                let need = if col == 0 { w } else { col + 1 + w };
                if need <= width {
                    col = need;
                } else {
                    rows += 1;
                    col = w % width;
                    rows += w / width;
                    if col == 0 && w > 0 {
                        rows -= 1;
                        col = width;
                    }
                }
            }
            rows
        })
        .sum()
}

/// An animated QR frame over the whole screen (white modules as text on the dark console).
pub(super) fn qr_overlay(frame: &mut Frame<'_>, area: Rect, q: &crate::tui::state::QrOverlay) {
    frame.render_widget(ratatui::widgets::Clear, area);
    let h = u16::try_from(q.lines.len()).unwrap_or(u16::MAX);
    let w = q
        .lines
        .first()
        .map_or(0, |l| u16::try_from(l.chars().count()).unwrap_or(u16::MAX));
    let [code, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let x = code.x + code.width.saturating_sub(w) / 2;
    let y = code.y + code.height.saturating_sub(h) / 2;
    let r = Rect {
        x,
        y,
        width: w.min(code.width),
        height: h.min(code.height),
    };
    let lines: Vec<Line<'_>> = q.lines.iter().map(|l| Line::raw(l.as_str())).collect();
    frame.render_widget(
        Paragraph::new(lines).style(Style::new().fg(Color::White)),
        r,
    );
    frame.render_widget(
        Paragraph::new(Span::styled(
            q.status.as_str(),
            Style::new().fg(Color::Yellow),
        )),
        status,
    );
}
