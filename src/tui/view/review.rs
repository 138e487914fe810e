//! The review: what changes against the trusted metadata, and the digests of the bytes to
//! sign, each with a short form people read aloud.
//!
//! The layout is computed here once ([`Layout::of`]) and used both to draw and by the app to
//! page through the changes and to refuse approval until every line has been on screen and
//! every digest is shown whole.

use crate::text::{show, show_indented};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::ceremony::engine::ReviewSummary;
use crate::transcript::display::{hex_groups, pgp_words};
use crate::tui::state::{DigestRow, ReviewPane};

/// Rows the changes pane needs at least: its two borders (the lower one is the digest block's
/// heading) and one line.
const MIN_CHANGES_ROWS: u16 = 3;

/// How the review is laid out in the body area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The changes pane (with its top and bottom border).
    pub changes: Rect,
    /// The digest block under the changes pane's lower border, which is its heading.
    pub sums: Rect,
    /// The digest block's heading ("To sign (SHA-256 ..."), drawn in the changes pane's lower
    /// border (before: a row of its own under the border, one row less for the changes).
    pub heading: Line<'static>,
    /// The digest block's lines under its heading, each no wider than the body.
    pub sum_lines: Vec<Line<'static>>,
    /// Whether every digest and at least one line of changes fit; when not, the terminal is
    /// too small to approve or sign.
    pub fits: bool,
    /// The size the digest block needs (columns, rows of the body).
    pub needs: (u16, u16),
}

fn width_of(s: &str) -> usize {
    Line::from(s).width()
}

/// How a changes row that continues the line above it starts: the line's indentation, two
/// more spaces and this mark, so a continuation never reads as a line of its own (a name or
/// a text that wraps cannot pass for a "- removed ..." line).
pub const CONTINUED: &str = "\u{21b3} ";

/// The rows a changes line takes at `width` columns, as drawn: cut at spaces, so a key id, a
/// hash or a word is never split between two rows (unless it is wider than a row on its own),
/// each row after the first indented under the line and marked [`CONTINUED`].
fn rows_of(line: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    if width_of(line) <= width {
        return vec![line.to_string()];
    }
    let indent = line.len() - line.trim_start_matches(' ').len();
    let lead = format!("{}{CONTINUED}", " ".repeat((indent + 2).min(width / 2)));
    let lead_w = width_of(&lead);
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut col = 0;
    for seg in line.split_inclusive(' ') {
        let word_w = width_of(seg.trim_end_matches(' '));
        if col + word_w > width && !(row.is_empty() || row == lead) {
            rows.push(std::mem::take(&mut row).trim_end().to_string());
            row.push_str(&lead);
            col = lead_w;
        }
        for c in seg.chars() {
            let w = width_of(c.encode_utf8(&mut [0; 4]));
            if c != ' ' && col + w > width && !(row.is_empty() || row == lead) {
                rows.push(std::mem::take(&mut row).trim_end().to_string());
                row.push_str(&lead);
                col = lead_w;
            }
            row.push(c);
            col += w;
        }
    }
    rows.push(row.trim_end().to_string());
    rows
}

/// The digest block: a heading, then per role its label, the words and the hex in groups of
/// four (as many groups a row as fit, in rows of 16, 8 or 4 groups). The label column is as
/// wide as the longest label and two spaces, so a label never runs into the words.
pub(super) fn sum_lines(digests: &[DigestRow], width: u16) -> (Vec<Line<'static>>, u16) {
    let width = usize::from(width);
    let heading = if width >= 63 {
        "To sign (SHA-256 of the canonical bytes; read the words aloud):"
    } else {
        "To sign (SHA-256; read the words aloud):"
    };
    let mut out = vec![Line::from(Span::styled(
        heading,
        Style::new().add_modifier(Modifier::BOLD),
    ))];
    let labels: Vec<String> = digests.iter().map(|d| show(&d.role)).collect();
    let col = labels.iter().map(|l| width_of(l)).max().unwrap_or(0) + 2;
    let mut widest = width_of(heading);
    for (d, label) in digests.iter().zip(&labels) {
        // The words on the label's row, continued on the next rows if they do not fit.
        let mut rows: Vec<String> = vec![String::new()];
        for w in show(&d.words).split(' ') {
            let Some(last) = rows.last_mut() else { break };
            if !last.is_empty() && col + width_of(last) + 1 + width_of(w) > width {
                rows.push(w.to_string());
            } else {
                if !last.is_empty() {
                    last.push(' ');
                }
                last.push_str(w);
            }
        }
        let word_style = Style::new()
            .fg(Color::LightCyan)
            .add_modifier(Modifier::BOLD);
        for (i, row) in rows.into_iter().enumerate() {
            let head = if i == 0 {
                format!("{label}{}", " ".repeat(col - width_of(label)))
            } else {
                " ".repeat(col)
            };
            widest = widest.max(col + width_of(&row));
            out.push(Line::from(vec![
                Span::styled(head, Style::new().add_modifier(Modifier::BOLD)),
                Span::styled(row, word_style),
            ]));
        }
        let groups: Vec<String> = d.hex_groups.split(' ').map(show).collect();
        let per_row = [16, 8, 4]
            .into_iter()
            .find(|n| col + n * 5 - 1 <= width)
            .unwrap_or(4);
        for chunk in groups.chunks(per_row) {
            let row = format!("{}{}", " ".repeat(col), chunk.join(" "));
            widest = widest.max(width_of(&row));
            out.push(Line::from(Span::styled(row, Style::new().fg(Color::Gray))));
        }
    }
    (out, u16::try_from(widest).unwrap_or(u16::MAX))
}

impl Layout {
    /// The review's layout in `area` (the body).
    pub fn of(area: Rect, digests: &[DigestRow]) -> Layout {
        let (mut sum_lines, widest) = sum_lines(digests, area.width);
        let mut heading = if sum_lines.is_empty() {
            Line::default()
        } else {
            sum_lines.remove(0)
        };
        heading.spans.insert(0, Span::raw(" "));
        heading.spans.push(Span::raw(" "));
        let sum_rows = u16::try_from(sum_lines.len()).unwrap_or(u16::MAX);
        let fits = sum_rows.saturating_add(MIN_CHANGES_ROWS) <= area.height && widest <= area.width;
        let sums_h = sum_rows.min(area.height);
        let changes = Rect {
            height: area.height - sums_h,
            ..area
        };
        let sums = Rect {
            y: area.y + changes.height,
            height: sums_h,
            ..area
        };
        Layout {
            changes,
            sums,
            heading,
            sum_lines,
            fits,
            needs: (widest, sum_rows.saturating_add(MIN_CHANGES_ROWS)),
        }
    }

    /// The rows the digests take on screen: their heading (the changes pane's lower border)
    /// and the digest block.
    pub fn digest_rows(&self) -> std::ops::Range<u16> {
        self.sums.y.saturating_sub(1)..self.sums.y.saturating_add(self.sums.height)
    }

    /// The terminal size the review needs, on a terminal of `term` (columns, rows) that gives
    /// the body this layout was made for: what the screen and the refusal both say.
    pub fn terminal_needs(&self, term: (u16, u16)) -> (u16, u16) {
        let body_h = self.changes.height.saturating_add(self.sums.height);
        (
            term.0
                .saturating_sub(self.changes.width)
                .saturating_add(self.needs.0),
            term.1.saturating_sub(body_h).saturating_add(self.needs.1),
        )
    }

    /// The first line of the last screen: the lowest `scroll` that shows the last line (walked
    /// back from the end, so a list of 50,000 lines costs one screen of work).
    pub fn last_start(&self, lines: &[String]) -> usize {
        let inner = usize::from(self.changes.height.saturating_sub(2));
        let width = usize::from(self.changes.width);
        let mut used = 0;
        let mut start = lines.len();
        for l in lines.iter().rev() {
            let rows = rows_of(&show_indented(l), width).len();
            if used + rows > inner && start < lines.len() {
                break;
            }
            used += rows;
            start -= 1;
        }
        start.min(lines.len().saturating_sub(1))
    }

    /// How many lines from `scroll` are on screen whole.
    pub fn shown(&self, lines: &[String], scroll: usize) -> usize {
        let inner = usize::from(self.changes.height.saturating_sub(2));
        let width = usize::from(self.changes.width);
        let mut used = 0;
        let mut n = 0;
        for l in lines.iter().skip(scroll) {
            let rows = rows_of(&show_indented(l), width).len();
            if used + rows > inner {
                break;
            }
            used += rows;
            n += 1;
        }
        n
    }
}

/// "lines 7-12 of 22" for the lines shown from `scroll`.
pub fn position(scroll: usize, shown: usize, total: usize) -> String {
    position_of("line", scroll, shown, total)
}

/// "rows 7-12 of 22" (`noun` "row") for the `noun`s shown from `scroll`: the one position
/// display of every list that pages.
pub fn position_of(noun: &str, scroll: usize, shown: usize, total: usize) -> String {
    if total == 0 {
        format!("no {noun}s")
    } else if shown <= 1 {
        format!("{noun} {} of {total}", scroll + 1)
    } else {
        format!("{noun}s {}-{} of {total}", scroll + 1, scroll + shown)
    }
}

/// The summary a large review opens with, as the lines of the changes pane: the counts per
/// kind of change, the checks and their outcome, the top-level roles' key and threshold lines
/// whole (never folded), and the request set's SHA-256 in words and in full hex with the
/// instruction to compare it with the published value. Every string in it comes from the
/// engine, which renders untrusted text with `text::show`.
pub fn summary_lines(sum: &ReviewSummary, line_by_line: &[String]) -> Vec<String> {
    let mut out = vec![format!(
        "SUMMARY of a large review ({} lines, the full list behind it: l)",
        sum.total_lines
    )];
    out.extend(sum.versions.iter().cloned());
    out.push("Changes:".into());
    let col = sum.counts.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (kind, n) in &sum.counts {
        out.push(format!("  {kind:<col$}  {n:>6}"));
    }
    out.push("Checks the appliance ran on the requests:".into());
    out.extend(sum.policy.iter().map(|p| format!("  {p}")));
    out.push("Top-level roles, keys and thresholds (read line by line):".into());
    if line_by_line.is_empty() {
        out.push("  no change to a top-level role's keys or thresholds".into());
    } else {
        out.extend(line_by_line.iter().map(|l| format!("  {l}")));
    }
    out.push(format!(
        "SHA-256 of the request set ({} files; sha256sum *.json | sha256sum):",
        sum.request_files
    ));
    let bytes = hex::decode(&sum.request_set_sha256).unwrap_or_default();
    out.push(format!(
        "  {}",
        pgp_words(bytes.get(..8).unwrap_or(&bytes)).join(" ")
    ));
    let groups: Vec<String> = hex_groups(&bytes).split(' ').map(String::from).collect();
    for chunk in groups.chunks(8) {
        out.push(format!("  {}", chunk.join(" ")));
    }
    out.push(
        "Compare it group by group with the value the registry published before the ceremony; \
         when the room agrees it matches, press d. A mismatch: stop, approve nothing."
            .into(),
    );
    out
}

pub(super) fn draw(
    frame: &mut Frame<'_>,
    area: Rect,
    lines: &[String],
    digests: &[DigestRow],
    scroll: usize,
    pane: ReviewPane,
) {
    let layout = Layout::of(area, digests);
    if !layout.fits {
        let text = vec![
            Line::from(Span::styled(
                "The terminal is too small to show every digest whole.",
                Style::new()
                    .fg(Color::LightRed)
                    .add_modifier(Modifier::BOLD),
            )),
            {
                let full = frame.area();
                let (w, h) = layout.terminal_needs((full.width, full.height));
                Line::from(format!(
                    "The review needs a terminal of at least {w}x{h}; this one is {}x{}.",
                    full.width, full.height
                ))
            },
            Line::from("Enlarge the terminal (or use a smaller font)."),
            Line::from("Approval and signing are refused until it fits."),
        ];
        frame.render_widget(
            Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let width = usize::from(layout.changes.width);
    let inner = usize::from(layout.changes.height.saturating_sub(2));
    let shown = layout.shown(lines, scroll);
    let mut body: Vec<Line<'_>> = Vec::new();
    for l in lines.iter().skip(scroll) {
        let t = l.trim_start();
        let style = if t.starts_with("- removed") {
            Style::new().fg(Color::LightRed)
        } else if t.starts_with("+ added") {
            Style::new().fg(Color::LightGreen)
        } else {
            Style::new()
        };
        // Each line is shown whole, cut into rows at the pane's width (an owner padded with
        // spaces cannot wrap into a line of its own: the engine renders names with
        // `text::show`).
        for row in rows_of(&show_indented(l), width) {
            body.push(Line::from(Span::styled(row, style)));
        }
        if body.len() >= inner {
            break;
        }
    }
    body.truncate(inner);
    // Below the last line shown, more: said in the title beside the position (the lower
    // border is the digests' heading).
    let more = if scroll + shown < lines.len() {
        "  ↓ more (PgDn)"
    } else {
        ""
    };
    frame.render_widget(
        Paragraph::new(body).block(
            Block::new()
                .borders(Borders::TOP | Borders::BOTTOM)
                .title(format!(
                    " {}: {}{more} ",
                    match pane {
                        ReviewPane::Changes => "What changes",
                        ReviewPane::Summary { confirmed: false } => "Summary",
                        ReviewPane::Summary { confirmed: true } => "Summary, request set confirmed",
                        ReviewPane::FullList => "Full list (l: summary, / find)",
                    },
                    position(scroll, shown, lines.len())
                ))
                .title_bottom(layout.heading.clone()),
        ),
        layout.changes,
    );
    frame.render_widget(Paragraph::new(layout.sum_lines), layout.sums);
}
