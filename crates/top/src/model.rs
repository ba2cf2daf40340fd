//! What `strata top` shows: one snapshot of engines, GPUs, findings and alerts, and the
//! tables made from it (cells, columns that may be dropped at narrow widths, severity tones).

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Label sets (`k → v`).
pub type Labels = BTreeMap<String, String>;

/// One engine instance (rows of the Engines view); `None` where the engine exposes no such
/// signal (TGI has no KV cache ratio, llama.cpp no latency histograms...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Engine {
    /// The scrape target (`host:port`).
    pub instance: String,
    /// The display name (`strata_engine_info`'s `name`), else the instance address.
    pub name: String,
    /// The dialect: vllm, tgi, sglang, llamacpp.
    pub engine: String,
    /// The served model, when the engine labels it.
    pub model: String,
    /// The node it runs on, when `strata_engine_info` says.
    pub node: String,
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

/// An engine a finding affects (newer nodes list them; older ones only have `affected`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineRef {
    /// Its scrape instance.
    pub instance: String,
    /// Its display name (may be empty on a node that does not know it).
    pub name: String,
    /// Its served model.
    pub model: String,
    /// Its node.
    pub node: String,
}

/// A firing alert that a finding explains (nested under it, not shown separately).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Symptom {
    /// `alertname`.
    pub alert: String,
    /// page or ticket.
    pub severity: String,
    /// Its summary.
    pub summary: String,
}

/// One evidence series: whose it is and its values over the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvidenceSeries {
    /// Its identity labels.
    pub labels: Labels,
    /// `(t_ms, value)`, oldest first; values the node could not compute left out.
    pub points: Vec<(i64, f64)>,
}

/// One piece of evidence of a finding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    /// Plain words (newer nodes), else the PromQL expression.
    pub title: String,
    /// `percent`, `seconds`, `count`, `per_second`, `bytes`, `bytes_per_second`, `ratio`,
    /// or empty when the node does not say.
    pub unit: String,
    /// The rule's threshold, when it has one.
    pub threshold: Option<f64>,
    /// Its series.
    pub series: Vec<EvidenceSeries>,
}

/// An open finding of `GET /api/v1/findings`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Finding {
    /// The pattern (`cache_thrash`...).
    pub name: String,
    /// page, ticket or info.
    pub severity: String,
    /// What is happening.
    pub summary: String,
    /// The affected identity labels.
    pub affected: Labels,
    /// When it started (Unix ms).
    pub started_ms: i64,
    /// What to do.
    pub action: String,
    /// The engines it affects (empty on older nodes).
    pub engines: Vec<EngineRef>,
    /// The firing alerts it explains (empty on older nodes).
    pub symptoms: Vec<Symptom>,
    /// Its evidence.
    pub evidence: Vec<Evidence>,
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
    /// Every label.
    pub labels: Labels,
    /// Every annotation.
    pub annotations: Labels,
}

/// What `strata_engine_info` says about one engine instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineInfo {
    /// The display name.
    pub name: String,
    /// The dialect.
    pub engine: String,
    /// The served model.
    pub model: String,
    /// The node.
    pub node: String,
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
    /// `strata_engine_info` by instance (empty on nodes without it).
    pub names: BTreeMap<String, EngineInfo>,
}

impl Snapshot {
    /// The display name of the engine at `instance`, else the address itself.
    pub fn name_of<'a>(&'a self, instance: &'a str) -> &'a str {
        self.names
            .get(instance)
            .map(|i| i.name.as_str())
            .filter(|n| !n.is_empty())
            .unwrap_or(instance)
    }

    /// What a finding affects, the way people name it: engine names, else the instance's
    /// name, a GPU on its node, or the labels.
    pub fn affected(&self, f: &Finding) -> String {
        if !f.engines.is_empty() {
            return f
                .engines
                .iter()
                .map(|e| {
                    if e.name.is_empty() {
                        self.name_of(&e.instance)
                    } else {
                        e.name.as_str()
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
        }
        let get = |k: &str| f.affected.get(k).map(String::as_str).unwrap_or("");
        let mut parts = Vec::new();
        if !get("instance").is_empty() {
            parts.push(self.name_of(get("instance")).to_string());
        }
        if !get("gpu").is_empty() {
            let node = get("Hostname");
            parts.push(if node.is_empty() {
                format!("gpu {}", get("gpu"))
            } else {
                format!("{node} gpu {}", get("gpu"))
            });
        }
        if !get("model").is_empty() {
            parts.push(short_model(get("model")).to_string());
        }
        if parts.is_empty() {
            parts = f.affected.iter().map(|(k, v)| format!("{k}={v}")).collect();
        }
        parts.join(" ")
    }

    /// What an alert is about: its engine's name, a GPU, or nothing.
    pub fn subject(&self, a: &Alert) -> String {
        let get = |k: &str| a.labels.get(k).map(String::as_str).unwrap_or("");
        if !a.instance.is_empty() && get("gpu").is_empty() {
            return self.name_of(&a.instance).to_string();
        }
        match (get("Hostname"), get("gpu")) {
            (_, "") => a.instance.clone(),
            ("", g) => format!("{} gpu {g}", a.instance),
            (n, g) => format!("{n} gpu {g}"),
        }
    }

    /// The worst severity of the findings and alerts about the engine at `instance`.
    fn health(&self, instance: &str) -> Tone {
        let findings = self.findings.iter().filter(|f| {
            f.engines.iter().any(|e| e.instance == instance)
                || f.affected.get("instance").is_some_and(|i| i == instance)
        });
        let alerts = self.alerts.iter().filter(|a| a.instance == instance);
        findings
            .map(|f| Tone::of(&f.severity))
            .chain(alerts.map(|a| Tone::of(&a.severity)))
            .filter(|t| matches!(t, Tone::Page | Tone::Ticket))
            .min()
            .unwrap_or(Tone::Ok)
    }
}

/// How a row (or its identity cell) is coloured: by severity, with healthy engines green
/// and unknown severities dim. Ordered worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tone {
    /// A page: red.
    Page,
    /// A ticket: yellow.
    Ticket,
    /// Nothing to say: the default colour.
    Plain,
    /// Healthy: green.
    Ok,
    /// Unknown or stale: dim.
    Dim,
}

impl Tone {
    /// The tone of a severity label.
    pub fn of(severity: &str) -> Tone {
        match severity {
            "page" | "critical" => Tone::Page,
            "ticket" | "warning" => Tone::Ticket,
            "ok" | "resolved" | "none" => Tone::Ok,
            "info" => Tone::Plain,
            _ => Tone::Dim,
        }
    }
}

/// The views, switched with 1-2-3 (tab moves through their panes).
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

    /// Its panes, top (or left) first.
    pub fn panes(self) -> &'static [Pane] {
        match self {
            View::Engines => &[Pane::Engines],
            View::Gpus => &[Pane::Gpus],
            View::Findings => &[Pane::Findings, Pane::Alerts],
        }
    }
}

/// One list on screen: each has its own sort, selection and scroll position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// Engines.
    Engines,
    /// GPUs.
    Gpus,
    /// Open findings.
    Findings,
    /// Firing alerts.
    Alerts,
}

impl Pane {
    /// In tab order (views in order, their panes in order).
    pub const ALL: [Pane; 4] = [Pane::Engines, Pane::Gpus, Pane::Findings, Pane::Alerts];

    /// Its position in [`Pane::ALL`].
    pub fn index(self) -> usize {
        match self {
            Pane::Engines => 0,
            Pane::Gpus => 1,
            Pane::Findings => 2,
            Pane::Alerts => 3,
        }
    }

    /// The view it belongs to.
    pub fn view(self) -> View {
        match self {
            Pane::Engines => View::Engines,
            Pane::Gpus => View::Gpus,
            Pane::Findings | Pane::Alerts => View::Findings,
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

/// A column: its header, whether it may be cut to fit (long text), its alignment and how
/// long it stays when the screen is narrow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    /// Header text.
    pub header: &'static str,
    /// Cut first when the row does not fit.
    pub grow: bool,
    /// Right-aligned (numbers).
    pub right: bool,
    /// Columns with the lowest `keep` are dropped first when the screen is too narrow;
    /// [`ALWAYS`] never (the identity: name, model, node).
    pub keep: u8,
}

/// The `keep` of a column that is never dropped.
pub const ALWAYS: u8 = u8::MAX;

/// Long text, cut to fit.
const fn text(header: &'static str, keep: u8) -> Column {
    Column {
        header,
        grow: true,
        right: false,
        keep,
    }
}

/// A short word, kept whole.
const fn word(header: &'static str, keep: u8) -> Column {
    Column {
        header,
        grow: false,
        right: false,
        keep,
    }
}

/// A number, kept whole, right-aligned.
const fn num(header: &'static str, keep: u8) -> Column {
    Column {
        header,
        grow: false,
        right: true,
        keep,
    }
}

/// One row: its cells, its tone and which item of the snapshot it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// One cell per column.
    pub cells: Vec<Cell>,
    /// Its colour.
    pub tone: Tone,
    /// Its index in the snapshot's list (engines, GPUs, findings or alerts).
    pub item: usize,
    /// What it is about, stable across refreshes (the selection follows it when rows move).
    pub id: String,
}

impl Row {
    /// Whether its text holds `needle` (lower case).
    fn matches(&self, needle: &str) -> bool {
        self.cells
            .iter()
            .any(|c| c.text.to_lowercase().contains(needle))
    }
}

/// A titled table of one pane.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Section title (`Engines`, `Firing alerts`...).
    pub title: &'static str,
    /// Columns.
    pub columns: &'static [Column],
    /// The columns coloured by the row's tone (the whole row when empty).
    pub tone_columns: &'static [usize],
    /// Rows.
    pub rows: Vec<Row>,
    /// How many rows there are before the filter.
    pub total: usize,
    /// What an empty table means.
    pub empty: &'static str,
    /// The sorted column and whether the order is reversed, when this table is sorted.
    pub sort: Option<(usize, bool)>,
}

impl Table {
    fn new(
        title: &'static str,
        columns: &'static [Column],
        tone_columns: &'static [usize],
        rows: Vec<Row>,
        empty: &'static str,
    ) -> Table {
        Table {
            title,
            columns,
            tone_columns,
            total: rows.len(),
            rows,
            empty,
            sort: None,
        }
    }

    /// Sorts rows by `column` (missing values last, ties by the first column), descending
    /// when `reversed`.
    pub fn sorted(mut self, column: usize, reversed: bool) -> Table {
        let by = |column: usize| {
            move |a: &Row, b: &Row| match (&a.cells[column].key, &b.cells[column].key) {
                (Key::Missing, Key::Missing) => Ordering::Equal,
                (Key::Missing, _) => Ordering::Greater,
                (_, Key::Missing) => Ordering::Less,
                (Key::Num(x), Key::Num(y)) => x.total_cmp(y),
                (Key::Text(x), Key::Text(y)) => x.cmp(y),
                (Key::Num(_), Key::Text(_)) => Ordering::Less,
                (Key::Text(_), Key::Num(_)) => Ordering::Greater,
            }
        };
        self.rows.sort_by(by(0));
        self.rows.sort_by(by(column));
        if reversed {
            // Keep missing values last when reversing.
            let missing = self
                .rows
                .iter()
                .position(|r| r.cells[column].key == Key::Missing)
                .unwrap_or(self.rows.len());
            self.rows[..missing].reverse();
        }
        self.sort = Some((column, reversed));
        self
    }

    /// Keeps the rows whose text holds `filter` (any case); all when it is empty.
    pub fn filtered(mut self, filter: &str) -> Table {
        let needle = filter.to_lowercase();
        if !needle.is_empty() {
            self.rows.retain(|r| r.matches(&needle));
        }
        self
    }
}

const ENGINE_COLUMNS: &[Column] = &[
    text("NAME", ALWAYS),
    word("ENGINE", 3),
    text("MODEL", ALWAYS),
    text("NODE", ALWAYS),
    num("RUN/WAIT", 7),
    num("KV%", 6),
    num("PRE/s", 1),
    num("TTFT95", 4),
    num("ITL95", 2),
    num("TOK/s", 5),
];

const GPU_COLUMNS: &[Column] = &[
    num("GPU", ALWAYS),
    text("NODE", ALWAYS),
    text("MODEL", ALWAYS),
    num("TENSOR%", 5),
    num("SM MHz", 3),
    num("POWER W", 4),
    num("TEMP C", 2),
    num("FB%", 6),
];

const FINDING_COLUMNS: &[Column] = &[
    text("FINDING", ALWAYS),
    word("SEV", ALWAYS),
    text("AFFECTED", ALWAYS),
    num("AGE", 4),
    text("ACTION", 1),
];

const ALERT_COLUMNS: &[Column] = &[
    text("ALERT", ALWAYS),
    word("SEV", ALWAYS),
    text("ENGINE", ALWAYS),
    num("FOR", 4),
    text("SUMMARY", 2),
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
    Cell::ranked(s, Tone::of(s) as u8 as f64)
}

/// `meta-llama/Llama-3.1-8B-Instruct` → `Llama-3.1-8B-Instruct`; `NVIDIA L4` → `L4`.
pub fn short_model(m: &str) -> &str {
    let m = m.rsplit('/').next().unwrap_or(m);
    m.strip_prefix("NVIDIA ").unwrap_or(m)
}

fn engines_table(s: &Snapshot) -> Table {
    let rows = s
        .engines
        .iter()
        .enumerate()
        .map(|(item, e)| {
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
            let name = if e.name.is_empty() {
                &e.instance
            } else {
                &e.name
            };
            Row {
                cells: vec![
                    Cell::text(name),
                    Cell::text(&e.engine),
                    Cell::text(short_model(&e.model)),
                    Cell::text(&e.node),
                    rw,
                    Cell::num(e.kv_ratio, pct),
                    Cell::num(e.preemptions_per_s, rate),
                    Cell::num(e.ttft_p95_s, secs),
                    Cell::num(e.itl_p95_s, secs),
                    Cell::num(e.tokens_per_s, rate),
                ],
                tone: s.health(&e.instance),
                item,
                id: e.instance.clone(),
            }
        })
        .collect();
    Table::new(
        "Engines",
        ENGINE_COLUMNS,
        &[0],
        rows,
        "no llm:* series yet: is Strata scraping an engine?",
    )
}

fn gpus_table(s: &Snapshot) -> Table {
    let rows = s
        .gpus
        .iter()
        .enumerate()
        .map(|(item, g)| {
            let index = Cell {
                key: g
                    .gpu
                    .parse::<f64>()
                    .map_or_else(|_| Key::Text(g.gpu.clone()), Key::Num),
                text: g.gpu.clone(),
            };
            Row {
                cells: vec![
                    index,
                    Cell::text(&g.node),
                    Cell::text(short_model(&g.model)),
                    Cell::num(g.tensor_ratio, pct),
                    Cell::num(g.sm_clock_hz, |v| format!("{:.0}", v / 1e6)),
                    Cell::num(g.power_w, |v| format!("{v:.0}")),
                    Cell::num(g.temp_c, |v| format!("{v:.0}")),
                    Cell::num(g.fb_used_ratio, pct),
                ],
                tone: Tone::Plain,
                item,
                id: format!("{}/{}/{}", g.node, g.gpu, g.model),
            }
        })
        .collect();
    Table::new(
        "GPUs",
        GPU_COLUMNS,
        &[],
        rows,
        "no gpu:* series yet: is Strata scraping a DCGM exporter or NVML?",
    )
}

fn findings_table(s: &Snapshot, now_ms: i64) -> Table {
    let rows = s
        .findings
        .iter()
        .enumerate()
        .map(|(item, f)| Row {
            cells: vec![
                Cell::text(&f.name),
                severity(&f.severity),
                Cell::text(&s.affected(f)),
                Cell {
                    text: age(now_ms - f.started_ms),
                    key: Key::Num((now_ms - f.started_ms) as f64),
                },
                Cell::text(&f.action),
            ],
            tone: Tone::of(&f.severity),
            item,
            id: format!("{} {:?} {}", f.name, f.affected, f.started_ms),
        })
        .collect();
    Table::new(
        "Open findings",
        FINDING_COLUMNS,
        &[0, 1],
        rows,
        "no open findings",
    )
}

fn alerts_table(s: &Snapshot, now_ms: i64) -> Table {
    let rows = s
        .alerts
        .iter()
        .enumerate()
        .map(|(item, a)| Row {
            cells: vec![
                Cell::text(&a.name),
                severity(&a.severity),
                Cell::text(&s.subject(a)),
                Cell::num(a.active_ms.map(|t| (now_ms - t) as f64), |v| age(v as i64)),
                Cell::text(&a.summary),
            ],
            tone: Tone::of(&a.severity),
            item,
            id: format!("{} {} {:?}", a.name, a.instance, a.labels),
        })
        .collect();
    Table::new(
        "Firing alerts",
        ALERT_COLUMNS,
        &[0, 1],
        rows,
        "no firing alerts",
    )
}

/// The unsorted, unfiltered table of `pane`.
pub fn table(s: &Snapshot, pane: Pane, now_ms: i64) -> Table {
    match pane {
        Pane::Engines => engines_table(s),
        Pane::Gpus => gpus_table(s),
        Pane::Findings => findings_table(s, now_ms),
        Pane::Alerts => alerts_table(s, now_ms),
    }
}

/// `HH:MM:SS` UTC of a Unix time in ms.
pub fn clock(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(11..19).unwrap_or(&s).to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Two vLLM engines and a TGI one (one vLLM without a name), two GPUs, a finding of a
    /// newer node (engines, symptoms, evidence metadata) and an alert.
    pub(crate) fn sample() -> Snapshot {
        let vllm = |instance: &str, name: &str, running, ttft| Engine {
            instance: instance.into(),
            name: name.into(),
            engine: "vllm".into(),
            model: "meta-llama/Llama-3.1-8B-Instruct".into(),
            node: if name.is_empty() { "" } else { "demo-node-a" }.into(),
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
        let info = |name: &str, engine: &str| EngineInfo {
            name: name.into(),
            engine: engine.into(),
            model: String::new(),
            node: "demo-node-a".into(),
        };
        let labels = |pairs: &[(&str, &str)]| -> Labels {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Snapshot {
            engines: vec![
                vllm("127.0.0.1:38049", "", 15.0, 0.178),
                Engine {
                    instance: "127.0.0.1:42759".into(),
                    name: "tgi-a".into(),
                    engine: "tgi".into(),
                    node: "demo-node-b".into(),
                    running: Some(45.0),
                    waiting: Some(81.0),
                    itl_p95_s: Some(0.05),
                    ..Engine::default()
                },
                vllm("127.0.0.1:35741", "vllm-a", 29.0, 1.5),
            ],
            gpus: vec![
                gpu("demo-node-a", "NVIDIA H100 80GB HBM3", 0.4),
                gpu("demo-node-c", "NVIDIA L4", 0.556),
            ],
            findings: vec![Finding {
                name: "cache_thrash".into(),
                severity: "page".into(),
                summary: "KV cache full on vllm-a, requests preempted".into(),
                affected: labels(&[("engine", "vllm"), ("instance", "127.0.0.1:35741")]),
                started_ms: 1_000_000,
                action: "Lower max_num_seqs or add KV cache memory".into(),
                engines: vec![EngineRef {
                    instance: "127.0.0.1:35741".into(),
                    name: "vllm-a".into(),
                    model: "meta-llama/Llama-3.1-8B-Instruct".into(),
                    node: "demo-node-a".into(),
                }],
                symptoms: vec![Symptom {
                    alert: "LLMPreemptions".into(),
                    severity: "ticket".into(),
                    summary: "requests preempted on vllm-a".into(),
                }],
                evidence: vec![Evidence {
                    title: "KV cache usage".into(),
                    unit: "percent".into(),
                    threshold: Some(0.9),
                    series: vec![EvidenceSeries {
                        labels: labels(&[("instance", "127.0.0.1:35741")]),
                        points: vec![(940_000, 0.4), (1_000_000, 0.95), (1_060_000, 0.97)],
                    }],
                }],
            }],
            alerts: vec![Alert {
                name: "LLMRequestQueueBackup".into(),
                severity: "ticket".into(),
                instance: "127.0.0.1:42759".into(),
                summary: "81 requests queued".into(),
                active_ms: Some(1_030_000),
                labels: labels(&[
                    ("alertname", "LLMRequestQueueBackup"),
                    ("instance", "127.0.0.1:42759"),
                    ("severity", "ticket"),
                ]),
                annotations: labels(&[("summary", "81 requests queued")]),
            }],
            names: [
                ("127.0.0.1:35741".to_string(), info("vllm-a", "vllm")),
                ("127.0.0.1:42759".to_string(), info("tgi-a", "tgi")),
            ]
            .into(),
        }
    }

    pub(crate) fn column(t: &Table, c: usize) -> Vec<&str> {
        t.rows.iter().map(|r| r.cells[c].text.as_str()).collect()
    }

    #[test]
    fn cells_read_well() {
        assert_eq!(secs(0.178), "178ms");
        assert_eq!(secs(0.0183), "18.3ms");
        assert_eq!(secs(1.5), "1.50s");
        assert_eq!(secs(0.0004), "400us");
        assert_eq!(age(125_000), "2m");
        assert_eq!(age(-5), "0s");
        assert_eq!(clock(3_723_000), "01:02:03");
        assert_eq!(
            short_model("meta-llama/Llama-3.1-8B-Instruct"),
            "Llama-3.1-8B-Instruct"
        );
        assert_eq!(short_model("NVIDIA L4"), "L4");
        let t = engines_table(&sample());
        assert_eq!(column(&t, 4), ["15/2", "45/81", "29/2"], "running/waiting");
        assert_eq!(column(&t, 5), ["42", "-", "42"]);
        assert_eq!(column(&t, 9), ["1279", "-", "1279"]);
    }

    #[test]
    fn engines_show_names_and_fall_back_to_the_address() {
        let s = sample();
        let t = engines_table(&s);
        assert_eq!(column(&t, 0), ["127.0.0.1:38049", "tgi-a", "vllm-a"]);
        assert_eq!(column(&t, 3), ["", "demo-node-b", "demo-node-a"]);
        // Health: a page finding on vllm-a, a ticket alert on tgi-a, nothing on the other.
        let tones: Vec<Tone> = t.rows.iter().map(|r| r.tone).collect();
        assert_eq!(tones, [Tone::Ok, Tone::Ticket, Tone::Page]);
        // Findings name their engines; an older node's finding (no `engines`) names the
        // instance through strata_engine_info, else shows the address.
        assert_eq!(s.affected(&s.findings[0]), "vllm-a");
        let mut old = s.findings[0].clone();
        old.engines.clear();
        assert_eq!(s.affected(&old), "vllm-a");
        let bare = Snapshot::default();
        assert_eq!(bare.affected(&old), "127.0.0.1:35741");
        old.affected = [("Hostname", "n1"), ("gpu", "3")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(s.affected(&old), "n1 gpu 3");
        assert_eq!(s.subject(&s.alerts[0]), "tgi-a");
        assert_eq!(Tone::of("mystery"), Tone::Dim);
    }

    #[test]
    fn sorting_keeps_missing_values_last_and_filters_narrow() {
        let t = engines_table(&sample()).sorted(7, false);
        assert_eq!(column(&t, 7), ["178ms", "1.50s", "-"]);
        let t = engines_table(&sample()).sorted(7, true);
        assert_eq!(column(&t, 7), ["1.50s", "178ms", "-"]);
        let t = engines_table(&sample()).sorted(0, false).filtered("VLLM");
        assert_eq!(column(&t, 0), ["127.0.0.1:38049", "vllm-a"]);
        assert_eq!((t.rows.len(), t.total), (2, 3));
        let t = engines_table(&sample()).filtered("");
        assert_eq!(t.rows.len(), 3);
    }
}
