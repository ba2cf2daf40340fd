//! What `strata top` shows: one snapshot of engines, GPUs, findings and alerts, the tables
//! made from it, and the view state (which view, which sort) that keys change.

use std::cmp::Ordering;
use std::time::Duration;

/// One engine instance (rows of the Engines view); `None` where the engine exposes no such
/// signal (TGI has no KV cache ratio, llama.cpp no latency histograms...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Engine {
    /// The scrape target (`host:port`).
    pub instance: String,
    /// The dialect: vllm, tgi, sglang, llamacpp.
    pub engine: String,
    /// The served model, when the engine labels it.
    pub model: String,
    /// `llm:requests_running`.
    pub running: Option<f64>,
    /// `llm:requests_waiting`.
    pub waiting: Option<f64>,
    /// `llm:kv_cache_usage_ratio`, 0..1.
    pub kv_ratio: Option<f64>,
    /// `rate(llm:preemptions_total[1m])`.
    pub preemptions_per_s: Option<f64>,
    /// p95 of `llm:ttft_seconds` over the last minute.
    pub ttft_p95_s: Option<f64>,
    /// p95 of `llm:itl_seconds` over the last minute.
    pub itl_p95_s: Option<f64>,
    /// `rate(llm:generation_tokens_total[1m])`.
    pub tokens_per_s: Option<f64>,
}

/// One GPU (rows of the GPUs view).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gpu {
    /// The GPU index on its node (`gpu` label).
    pub gpu: String,
    /// The node: the exporter's `Hostname`, else its scrape target.
    pub node: String,
    /// The GPU model (`modelName`).
    pub model: String,
    /// `gpu:tensor_active_ratio`, 0..1.
    pub tensor_ratio: Option<f64>,
    /// `gpu:sm_clock_hz`.
    pub sm_clock_hz: Option<f64>,
    /// `gpu:power_watts`.
    pub power_w: Option<f64>,
    /// `gpu:temp_celsius`.
    pub temp_c: Option<f64>,
    /// `gpu:fb_used_bytes` over used + free.
    pub fb_used_ratio: Option<f64>,
}

/// An open finding of `GET /api/v1/findings`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Finding {
    /// The pattern (`cache_thrash`...).
    pub name: String,
    /// page, ticket or info.
    pub severity: String,
    /// The affected identity labels, `k=v` joined.
    pub affected: String,
    /// When it started (Unix ms).
    pub started_ms: i64,
    /// What to do.
    pub action: String,
}

/// A firing alert of `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Alert {
    /// `alertname`.
    pub name: String,
    /// The `severity` label.
    pub severity: String,
    /// The `instance` label, when it has one.
    pub instance: String,
    /// The `summary` annotation.
    pub summary: String,
    /// When it became active (Unix ms), when known.
    pub active_ms: Option<i64>,
}

/// Everything one refresh read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Engines by instance.
    pub engines: Vec<Engine>,
    /// GPUs.
    pub gpus: Vec<Gpu>,
    /// Open findings.
    pub findings: Vec<Finding>,
    /// Firing alerts.
    pub alerts: Vec<Alert>,
}

/// The views, switched with tab or 1-2-3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Per-engine rows.
    Engines,
    /// Per-GPU rows.
    Gpus,
    /// Open findings and firing alerts.
    Findings,
}

impl View {
    /// In tab order.
    pub const ALL: [View; 3] = [View::Engines, View::Gpus, View::Findings];

    /// Its position in [`View::ALL`].
    pub fn index(self) -> usize {
        match self {
            View::Engines => 0,
            View::Gpus => 1,
            View::Findings => 2,
        }
    }

    /// Its tab name.
    pub fn name(self) -> &'static str {
        match self {
            View::Engines => "Engines",
            View::Gpus => "GPUs",
            View::Findings => "Findings",
        }
    }
}

/// How a cell sorts.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Num(f64),
    Text(String),
    Missing,
}

/// One table cell: the text shown and the key it sorts by.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// What is shown.
    pub text: String,
    key: Key,
}

impl Cell {
    fn text(s: &str) -> Cell {
        Cell {
            text: s.to_string(),
            key: Key::Text(s.to_lowercase()),
        }
    }

    fn num(v: Option<f64>, show: impl Fn(f64) -> String) -> Cell {
        match v.filter(|v| v.is_finite()) {
            Some(v) => Cell {
                text: show(v),
                key: Key::Num(v),
            },
            None => Cell {
                text: "-".into(),
                key: Key::Missing,
            },
        }
    }

    fn ranked(s: &str, rank: f64) -> Cell {
        Cell {
            text: s.to_string(),
            key: Key::Num(rank),
        }
    }
}

/// A column: its header, whether it may be cut to fit (long text) and its alignment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    /// Header text.
    pub header: &'static str,
    /// Cut first when the row does not fit.
    pub grow: bool,
    /// Right-aligned (numbers).
    pub right: bool,
}

/// Long text, cut to fit.
const fn text(header: &'static str) -> Column {
    Column {
        header,
        grow: true,
        right: false,
    }
}

/// A short word, kept whole.
const fn word(header: &'static str) -> Column {
    Column {
        header,
        grow: false,
        right: false,
    }
}

/// A number, kept whole, right-aligned.
const fn num(header: &'static str) -> Column {
    Column {
        header,
        grow: false,
        right: true,
    }
}

/// A titled table of one view.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Section title (`Engines`, `Firing alerts`...).
    pub title: &'static str,
    /// Columns.
    pub columns: &'static [Column],
    /// Rows, one cell per column.
    pub rows: Vec<Vec<Cell>>,
    /// What an empty table means.
    pub empty: &'static str,
    /// The sorted column and whether the order is reversed, when this table is sorted.
    pub sort: Option<(usize, bool)>,
}

impl Table {
    /// Sorts rows by `column` (missing values last), descending when `reversed`.
    fn sorted(mut self, column: usize, reversed: bool) -> Table {
        self.rows.sort_by(|a, b| {
            let (ka, kb) = (&a[column].key, &b[column].key);
            match (ka, kb) {
                (Key::Missing, Key::Missing) => Ordering::Equal,
                (Key::Missing, _) => Ordering::Greater,
                (_, Key::Missing) => Ordering::Less,
                (Key::Num(x), Key::Num(y)) => x.total_cmp(y),
                (Key::Text(x), Key::Text(y)) => x.cmp(y),
                (Key::Num(_), Key::Text(_)) => Ordering::Less,
                (Key::Text(_), Key::Num(_)) => Ordering::Greater,
            }
        });
        if reversed {
            // Keep missing values last when reversing.
            let missing = self
                .rows
                .iter()
                .position(|r| r[column].key == Key::Missing)
                .unwrap_or(self.rows.len());
            self.rows[..missing].reverse();
        }
        self.sort = Some((column, reversed));
        self
    }
}

const ENGINE_COLUMNS: &[Column] = &[
    text("INSTANCE"),
    word("ENGINE"),
    text("MODEL"),
    num("RUN/WAIT"),
    num("KV%"),
    num("PRE/s"),
    num("TTFT95"),
    num("ITL95"),
    num("TOK/s"),
];

const GPU_COLUMNS: &[Column] = &[
    num("GPU"),
    text("NODE"),
    text("MODEL"),
    num("TENSOR%"),
    num("SM MHz"),
    num("POWER W"),
    num("TEMP C"),
    num("FB%"),
];

const FINDING_COLUMNS: &[Column] = &[
    text("FINDING"),
    word("SEV"),
    text("AFFECTED"),
    num("AGE"),
    text("ACTION"),
];

const ALERT_COLUMNS: &[Column] = &[
    text("ALERT"),
    word("SEV"),
    text("INSTANCE"),
    num("FOR"),
    text("SUMMARY"),
];

/// `0.1234` → `12`.
fn pct(v: f64) -> String {
    format!("{:.0}", v * 100.0)
}

/// Seconds as `850us`, `12.3ms`, `178ms`, `1.25s`, `95s`.
pub fn secs(v: f64) -> String {
    if v < 0.001 {
        format!("{:.0}us", v * 1e6)
    } else if v < 0.1 {
        format!("{:.1}ms", v * 1e3)
    } else if v < 1.0 {
        format!("{:.0}ms", v * 1e3)
    } else if v < 100.0 {
        format!("{:.2}s", v)
    } else {
        format!("{:.0}s", v)
    }
}

/// A rate: one decimal below 100, none above.
fn rate(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// An age in ms as `45s`, `12m`, `3h`, `2d`.
pub fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// page before ticket before info.
fn severity(s: &str) -> Cell {
    let rank = match s {
        "page" | "critical" => 0.0,
        "ticket" | "warning" => 1.0,
        "info" => 2.0,
        _ => 3.0,
    };
    Cell::ranked(s, rank)
}

/// `meta-llama/Llama-3.1-8B-Instruct` → `Llama-3.1-8B-Instruct`; `NVIDIA L4` → `L4`.
fn short_model(m: &str) -> &str {
    let m = m.rsplit('/').next().unwrap_or(m);
    m.strip_prefix("NVIDIA ").unwrap_or(m)
}

fn engines_table(s: &Snapshot) -> Table {
    let rows = s
        .engines
        .iter()
        .map(|e| {
            let rw = match (e.running, e.waiting) {
                (None, None) => Cell::num(None, rate),
                (r, w) => Cell {
                    text: format!(
                        "{}/{}",
                        r.map_or("-".into(), |v| format!("{v:.0}")),
                        w.map_or("-".into(), |v| format!("{v:.0}"))
                    ),
                    key: Key::Num(r.unwrap_or(0.0) + w.unwrap_or(0.0)),
                },
            };
            vec![
                Cell::text(&e.instance),
                Cell::text(&e.engine),
                Cell::text(short_model(&e.model)),
                rw,
                Cell::num(e.kv_ratio, pct),
                Cell::num(e.preemptions_per_s, rate),
                Cell::num(e.ttft_p95_s, secs),
                Cell::num(e.itl_p95_s, secs),
                Cell::num(e.tokens_per_s, rate),
            ]
        })
        .collect();
    Table {
        title: "Engines",
        columns: ENGINE_COLUMNS,
        rows,
        empty: "no llm:* series yet: is Strata scraping an engine?",
        sort: None,
    }
}

fn gpus_table(s: &Snapshot) -> Table {
    let rows = s
        .gpus
        .iter()
        .map(|g| {
            let index = Cell {
                key: g
                    .gpu
                    .parse::<f64>()
                    .map_or_else(|_| Key::Text(g.gpu.clone()), Key::Num),
                text: g.gpu.clone(),
            };
            vec![
                index,
                Cell::text(&g.node),
                Cell::text(short_model(&g.model)),
                Cell::num(g.tensor_ratio, pct),
                Cell::num(g.sm_clock_hz, |v| format!("{:.0}", v / 1e6)),
                Cell::num(g.power_w, |v| format!("{v:.0}")),
                Cell::num(g.temp_c, |v| format!("{v:.0}")),
                Cell::num(g.fb_used_ratio, pct),
            ]
        })
        .collect();
    Table {
        title: "GPUs",
        columns: GPU_COLUMNS,
        rows,
        empty: "no gpu:* series yet: is Strata scraping a DCGM exporter or NVML?",
        sort: None,
    }
}

fn findings_table(s: &Snapshot, now_ms: i64) -> Table {
    let rows = s
        .findings
        .iter()
        .map(|f| {
            vec![
                Cell::text(&f.name),
                severity(&f.severity),
                Cell::text(&f.affected),
                Cell {
                    text: age(now_ms - f.started_ms),
                    key: Key::Num((now_ms - f.started_ms) as f64),
                },
                Cell::text(&f.action),
            ]
        })
        .collect();
    Table {
        title: "Open findings",
        columns: FINDING_COLUMNS,
        rows,
        empty: "no open findings",
        sort: None,
    }
}

fn alerts_table(s: &Snapshot, now_ms: i64) -> Table {
    let rows = s
        .alerts
        .iter()
        .map(|a| {
            vec![
                Cell::text(&a.name),
                severity(&a.severity),
                Cell::text(&a.instance),
                Cell::num(a.active_ms.map(|t| (now_ms - t) as f64), |v| age(v as i64)),
                Cell::text(&a.summary),
            ]
        })
        .collect();
    Table {
        title: "Firing alerts",
        columns: ALERT_COLUMNS,
        rows,
        empty: "no firing alerts",
        sort: None,
    }
}

/// The state of the UI: the latest data, where it came from and how it is shown.
#[derive(Debug, Clone)]
pub struct App {
    /// The Strata being read.
    pub url: String,
    /// The refresh interval.
    pub interval: Duration,
    /// The view shown.
    pub view: View,
    /// The sorted column and reversal per view.
    sort: [(usize, bool); 3],
    /// The latest data read (kept, marked stale, when a refresh fails).
    pub snapshot: Snapshot,
    /// When the last refresh succeeded (Unix ms).
    pub refreshed_ms: i64,
    /// Why the latest refresh failed, while it does.
    pub error: Option<String>,
}

impl App {
    /// A UI on `snapshot`, read from `url` at `now_ms`; findings sort by severity first.
    pub fn new(url: &str, interval: Duration, snapshot: Snapshot, now_ms: i64) -> App {
        App {
            url: url.to_string(),
            interval,
            view: View::Engines,
            sort: [(0, false), (1, false), (1, false)],
            snapshot,
            refreshed_ms: now_ms,
            error: None,
        }
    }

    /// Takes a refresh's result: new data, or the error (the old data stays, stale).
    pub fn update(&mut self, result: Result<Snapshot, String>, now_ms: i64) {
        match result {
            Ok(s) => {
                self.snapshot = s;
                self.refreshed_ms = now_ms;
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Whether the data shown is stale (the latest refresh failed).
    pub fn stale(&self) -> bool {
        self.error.is_some()
    }

    /// Sorts the current view by its next column.
    pub fn cycle_sort(&mut self) {
        let columns = self.tables(0)[0].columns.len();
        let s = &mut self.sort[self.view.index()];
        *s = ((s.0 + 1) % columns, s.1);
    }

    /// Reverses the current view's order.
    pub fn reverse(&mut self) {
        let s = &mut self.sort[self.view.index()];
        s.1 = !s.1;
    }

    /// The tables of `view`, the first sorted as chosen (firing alerts by severity, then
    /// name).
    pub fn tables_of(&self, view: View, now_ms: i64) -> Vec<Table> {
        let (column, reversed) = self.sort[view.index()];
        let s = &self.snapshot;
        match view {
            View::Engines => vec![engines_table(s).sorted(column, reversed)],
            View::Gpus => vec![gpus_table(s).sorted(column, reversed)],
            View::Findings => {
                let mut alerts = alerts_table(s, now_ms).sorted(0, false).sorted(1, false);
                alerts.sort = None;
                vec![findings_table(s, now_ms).sorted(column, reversed), alerts]
            }
        }
    }

    /// The tables of the current view.
    pub fn tables(&self, now_ms: i64) -> Vec<Table> {
        self.tables_of(self.view, now_ms)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Two vLLM engines and a TGI one, three GPUs, a finding and an alert.
    pub(crate) fn sample() -> Snapshot {
        let vllm = |instance: &str, running, ttft| Engine {
            instance: instance.into(),
            engine: "vllm".into(),
            model: "meta-llama/Llama-3.1-8B-Instruct".into(),
            running: Some(running),
            waiting: Some(2.0),
            kv_ratio: Some(0.42),
            preemptions_per_s: Some(0.0),
            ttft_p95_s: Some(ttft),
            itl_p95_s: Some(0.0183),
            tokens_per_s: Some(1279.4),
        };
        let gpu = |node: &str, model: &str, tensor| Gpu {
            gpu: "0".into(),
            node: node.into(),
            model: model.into(),
            tensor_ratio: Some(tensor),
            sm_clock_hz: Some(1.98e9),
            power_w: Some(512.3),
            temp_c: Some(61.0),
            fb_used_ratio: Some(0.9),
        };
        Snapshot {
            engines: vec![
                vllm("127.0.0.1:38049", 15.0, 0.178),
                Engine {
                    instance: "127.0.0.1:42759".into(),
                    engine: "tgi".into(),
                    running: Some(45.0),
                    waiting: Some(81.0),
                    itl_p95_s: Some(0.05),
                    ..Engine::default()
                },
                vllm("127.0.0.1:35741", 29.0, 1.5),
            ],
            gpus: vec![
                gpu("demo-node-a", "NVIDIA H100 80GB HBM3", 0.4),
                gpu("demo-node-c", "NVIDIA L4", 0.556),
            ],
            findings: vec![Finding {
                name: "cache_thrash".into(),
                severity: "page".into(),
                affected: "instance=127.0.0.1:35741".into(),
                started_ms: 1_000_000,
                action: "Lower max_num_seqs or add KV cache memory".into(),
            }],
            alerts: vec![Alert {
                name: "LLMRequestQueueBackup".into(),
                severity: "ticket".into(),
                instance: "127.0.0.1:42759".into(),
                summary: "81 requests queued".into(),
                active_ms: Some(1_030_000),
            }],
        }
    }

    fn column(t: &Table, c: usize) -> Vec<&str> {
        t.rows.iter().map(|r| r[c].text.as_str()).collect()
    }

    #[test]
    fn cells_read_well() {
        assert_eq!(secs(0.178), "178ms");
        assert_eq!(secs(0.0183), "18.3ms");
        assert_eq!(secs(1.5), "1.50s");
        assert_eq!(secs(0.0004), "400us");
        assert_eq!(age(125_000), "2m");
        assert_eq!(age(-5), "0s");
        assert_eq!(
            short_model("meta-llama/Llama-3.1-8B-Instruct"),
            "Llama-3.1-8B-Instruct"
        );
        assert_eq!(short_model("NVIDIA L4"), "L4");
        let t = engines_table(&sample());
        assert_eq!(column(&t, 3), ["15/2", "45/81", "29/2"], "running/waiting");
        assert_eq!(column(&t, 4), ["42", "-", "42"]);
        assert_eq!(column(&t, 8), ["1279", "-", "1279"]);
    }

    #[test]
    fn sorting_cycles_reverses_and_keeps_missing_values_last() {
        let mut app = App::new("http://x", Duration::from_secs(2), sample(), 1_060_000);
        let t = &app.tables(0)[0];
        assert_eq!(t.sort, Some((0, false)));
        assert_eq!(
            column(t, 0),
            ["127.0.0.1:35741", "127.0.0.1:38049", "127.0.0.1:42759"]
        );
        for _ in 0..6 {
            app.cycle_sort();
        }
        let t = &app.tables(0)[0];
        assert_eq!(t.sort, Some((6, false)), "TTFT95");
        assert_eq!(column(t, 6), ["178ms", "1.50s", "-"]);
        app.reverse();
        assert_eq!(column(&app.tables(0)[0], 6), ["1.50s", "178ms", "-"]);
        for _ in 0..3 {
            app.cycle_sort();
        }
        assert_eq!(app.tables(0)[0].sort, Some((0, true)), "wraps around");

        app.view = View::Findings;
        let t = app.tables(1_060_000);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].sort, Some((1, false)), "findings by severity");
        assert_eq!(column(&t[0], 3), ["1m"]);
        assert_eq!(column(&t[1], 3), ["30s"]);
        assert_eq!(app.tables_of(View::Engines, 0)[0].sort, Some((0, true)));
    }

    #[test]
    fn a_failed_refresh_keeps_the_data_and_marks_it_stale() {
        let mut app = App::new("http://x", Duration::from_secs(2), sample(), 5);
        app.update(Err("connection refused".into()), 9);
        assert!(app.stale());
        assert_eq!(app.snapshot, sample());
        assert_eq!(app.refreshed_ms, 5);
        app.update(Ok(Snapshot::default()), 11);
        assert!(!app.stale());
        assert_eq!(app.refreshed_ms, 11);
        assert!(app.tables(11)[0].rows.is_empty());
    }
}
