//! Draws the [`App`]: a tab line, the current view's tables, a status line; and the same
//! tables as plain text for `--once`.

use std::time::{Duration, UNIX_EPOCH};

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table as TableWidget, Widget};

use super::model::{App, Table, View};

/// Space between columns.
const SPACING: u16 = 1;

/// `s` characters at most `width` wide, cut with an ellipsis.
fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else if width == 0 {
        String::new()
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}

/// The column widths in `width`: each column as wide as its widest cell (or header, with
/// the sort arrow); when that does not fit, the widest text columns are cut first, to the
/// same width, so short ones (an instance's host:port) stay whole.
fn widths(table: &Table, width: u16) -> Vec<u16> {
    let natural: Vec<usize> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let arrow = usize::from(table.sort.is_some_and(|(s, _)| s == i));
            let widest = table.rows.iter().map(|r| r[i].text.chars().count()).max();
            widest.unwrap_or(0).max(c.header.chars().count() + arrow)
        })
        .collect();
    let spacing = usize::from(SPACING) * natural.len().saturating_sub(1);
    let fixed: usize = (table.columns.iter().zip(&natural))
        .filter(|(c, _)| !c.grow)
        .map(|(_, w)| w)
        .sum();
    let budget = usize::from(width).saturating_sub(spacing + fixed);
    let grown = |cap: usize| -> usize {
        (table.columns.iter().zip(&natural))
            .filter(|(c, _)| c.grow)
            .map(|(_, w)| (*w).min(cap))
            .sum()
    };
    let mut cap = natural.iter().copied().max().unwrap_or(0);
    while cap > 0 && grown(cap) > budget {
        cap -= 1;
    }
    (table.columns.iter().zip(natural))
        .map(|(c, w)| if c.grow { w.min(cap) } else { w } as u16)
        .collect()
}

/// Title line and table widget of `table` in `area`; cells cut to their column.
fn draw_table(table: &Table, stale: bool, area: Rect, buf: &mut Buffer) {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let mut spans = vec![Span::styled(
        format!("{} ({})", table.title, table.rows.len()),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if stale {
        spans.push(Span::styled(
            "  STALE: Strata unreachable, data of the last refresh",
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    Line::from(spans).render(title, buf);

    let widths = widths(table, body.width);
    let cell = |i: usize, text: &str| {
        let line = Line::from(truncate(text, usize::from(widths[i])));
        if table.columns[i].right {
            line.alignment(Alignment::Right)
        } else {
            line
        }
    };
    let header = Row::new(table.columns.iter().enumerate().map(|(i, c)| {
        let arrow = match table.sort {
            Some((s, false)) if s == i => "▲",
            Some((s, true)) if s == i => "▼",
            _ => "",
        };
        cell(i, &format!("{}{arrow}", c.header))
    }))
    .style(Style::new().add_modifier(Modifier::REVERSED));
    let style = if stale {
        Style::new().fg(Color::DarkGray)
    } else {
        Style::new()
    };
    let rows = table
        .rows
        .iter()
        .map(|r| Row::new(r.iter().enumerate().map(|(i, c)| cell(i, &c.text))).style(style));
    TableWidget::new(rows, widths.iter().map(|w| Constraint::Length(*w)))
        .header(header)
        .column_spacing(SPACING)
        .render(body, buf);
    if table.rows.is_empty() && body.height > 1 {
        let [_, note] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(body);
        Paragraph::new(format!("  {}", table.empty)).render(note, buf);
    }
}

/// `HH:MM:SS` UTC of a Unix time in ms.
fn clock(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(11..19).unwrap_or(&s).to_string()
}

/// The status line: errors first (they must be seen), then the source and the keys.
fn status(app: &App, now_ms: i64) -> Line<'static> {
    let source = format!(
        "{} · refreshed {} UTC ({} ago, every {})",
        app.url,
        clock(app.refreshed_ms),
        super::model::age(now_ms - app.refreshed_ms),
        humantime::format_duration(app.interval)
    );
    let keys = " · s sort · r reverse · tab/1-3 view · q quit";
    match &app.error {
        Some(e) => Line::from(vec![
            Span::styled(
                format!("ERROR {} ", e.replace('\n', " ")),
                Style::new().fg(Color::White).bg(Color::Red),
            ),
            Span::raw(format!(" {source}{keys}")),
        ]),
        None => Line::from(format!("{source}{keys}")),
    }
}

/// The tab line: views, with counts of open findings and firing alerts.
fn tabs(app: &App) -> Line<'static> {
    let mut spans = vec![Span::styled(
        "strata top ",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    for v in View::ALL {
        let label = match v {
            View::Findings => format!(
                " {} {} ({}/{}) ",
                v.index() + 1,
                v.name(),
                app.snapshot.findings.len(),
                app.snapshot.alerts.len()
            ),
            _ => format!(" {} {} ", v.index() + 1, v.name()),
        };
        let style = if v == app.view {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new()
        };
        spans.push(Span::styled(label, style));
    }
    Line::from(spans)
}

/// Draws the whole UI at `now_ms`.
pub fn draw(frame: &mut Frame, app: &App, now_ms: i64) {
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(tabs(app), top);
    frame.render_widget(status(app, now_ms), bottom);
    let tables = app.tables(now_ms);
    let areas = Layout::vertical(tables.iter().map(|_| Constraint::Fill(1))).split(body);
    for (t, area) in tables.iter().zip(areas.iter()) {
        draw_table(t, app.stale(), *area, frame.buffer_mut());
    }
}

/// Every view's tables as plain text `width` columns wide (for `--once`).
pub fn plain(app: &App, now_ms: i64, width: u16) -> String {
    let mut out = format!(
        "strata top: {} at {} UTC\n",
        app.url,
        clock(app.refreshed_ms)
    );
    for view in View::ALL {
        for t in app.tables_of(view, now_ms) {
            // Title, header and rows (or the note of an empty table).
            let height = 2 + t.rows.len().max(1) as u16;
            let area = Rect::new(0, 0, width, height);
            let mut buf = Buffer::empty(area);
            draw_table(&t, app.stale(), area, &mut buf);
            out.push('\n');
            for y in 0..height {
                let line: String = (0..width).map(|x| buf[(x, y)].symbol()).collect();
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Snapshot;
    use crate::model::tests::sample;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    const NOW: i64 = 1_060_000;

    /// The screen of `app` at `w`×`h`, one string per line.
    fn screen(app: &App, w: u16, h: u16) -> Vec<String> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, app, NOW)).unwrap();
        let buf = t.backend().buffer();
        (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect())
            .collect()
    }

    fn app(s: Snapshot) -> App {
        App::new(
            "http://127.0.0.1:9464",
            Duration::from_secs(2),
            s,
            NOW - 3000,
        )
    }

    #[test]
    fn engines_fit_80_columns_with_every_header() {
        let lines = screen(&app(sample()), 80, 24);
        let all = lines.join("\n");
        assert!(lines[0].contains("1 Engines") && lines[0].contains("3 Findings (1/1)"));
        assert!(lines[1].starts_with("Engines (3)"), "{all}");
        for h in [
            "INSTANCE", "ENGINE", "MODEL", "RUN/WAIT", "KV%", "PRE/s", "TTFT95", "ITL95", "TOK/s",
        ] {
            assert!(lines[2].contains(h), "{h} in {:?}", lines[2]);
        }
        assert!(lines[2].contains("INSTANCE▲"), "sort arrow: {:?}", lines[2]);
        // Sorted by instance; the model cut with an ellipsis, numbers whole.
        assert!(lines[3].contains("127.0.0.1:35741"), "{all}");
        assert!(lines[3].contains('…'), "model truncated: {:?}", lines[3]);
        assert!(lines[3].contains("29/2") && lines[3].contains("1.50s"));
        assert!(lines[3].trim_end().ends_with("1279"), "{:?}", lines[3]);
        assert!(lines[5].contains("tgi") && lines[5].contains("45/81"));
        assert!(lines[23].starts_with("http://127.0.0.1:9464 · refreshed"));
        assert!(lines[23].contains("(3s ago, every 2s)"), "{:?}", lines[23]);
    }

    #[test]
    fn wide_screens_show_whole_names() {
        let mut a = app(sample());
        let lines = screen(&a, 160, 48);
        assert!(lines[3].contains("Llama-3.1-8B-Instruct"), "{:?}", lines[3]);
        assert!(lines[47].contains("q quit"));
        a.view = View::Gpus;
        let lines = screen(&a, 160, 48);
        for h in [
            "GPU", "NODE", "MODEL", "TENSOR%", "SM MHz", "POWER W", "TEMP C", "FB%",
        ] {
            assert!(lines[2].contains(h), "{h} in {:?}", lines[2]);
        }
        assert!(lines[3].contains("demo-node-a") && lines[3].contains("H100 80GB HBM3"));
        assert!(lines[3].contains("1980") && lines[3].contains("512"));
        a.view = View::Findings;
        let lines = screen(&a, 160, 48);
        let all = lines.join("\n");
        assert!(all.contains("Open findings (1)") && all.contains("Firing alerts (1)"));
        assert!(all.contains("cache_thrash") && all.contains("page") && all.contains("1m"));
        assert!(all.contains("Lower max_num_seqs"));
        assert!(all.contains("LLMRequestQueueBackup") && all.contains("30s"));
    }

    #[test]
    fn empty_data_and_tiny_screens_do_not_panic() {
        let mut a = app(Snapshot::default());
        for v in View::ALL {
            a.view = v;
            for (w, h) in [(80, 24), (160, 48), (20, 5), (1, 1), (0, 0)] {
                screen(&a, w, h);
            }
        }
        a.view = View::Engines;
        let all = screen(&a, 80, 24).join("\n");
        assert!(all.contains("Engines (0)") && all.contains("no llm:* series yet"));
        let mut b = app(sample());
        for (w, h) in [(20, 5), (3, 2), (40, 4)] {
            for v in View::ALL {
                b.view = v;
                screen(&b, w, h);
            }
        }
    }

    #[test]
    fn stale_data_and_errors_are_marked() {
        let mut a = app(sample());
        a.update(
            Err("cannot reach Strata at http://127.0.0.1:9464/".into()),
            NOW,
        );
        let lines = screen(&a, 80, 24);
        assert!(lines[1].contains("STALE"), "{:?}", lines[1]);
        assert!(lines[23].starts_with("ERROR cannot reach Strata"));
        assert!(lines[3].contains("127.0.0.1:35741"), "the old rows stay");
    }

    #[test]
    fn plain_text_holds_every_view() {
        let text = plain(&app(sample()), NOW, 120);
        for s in [
            "Engines (3)",
            "GPUs (2)",
            "Open findings (1)",
            "Firing alerts (1)",
            "Llama-3.1-8B-Instruct",
            "demo-node-c",
            "cache_thrash",
        ] {
            assert!(text.contains(s), "{s} in\n{text}");
        }
        let empty = plain(&app(Snapshot::default()), NOW, 80);
        assert!(empty.contains("no open findings") && empty.contains("no firing alerts"));
    }

    #[test]
    fn truncation_keeps_the_width() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(truncate("abc", 0), "");
    }
}
