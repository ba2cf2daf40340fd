// Strata's web UI: hash-routed pages over the Prometheus API (canonical llm:*, gpu:* and
// strata_gateway_* names), the findings, alerts, requests and scenario endpoints.

import { api, optional, instant, range, seriesName, fmt, clock, ApiError } from "./api.js";
import { timeChart, timeline, el } from "./chart.js";

const main = document.getElementById("main");
const rangeSelect = document.getElementById("range");
const REFRESH_MS = 10000;

const PAGES = {
  overview: { title: "Overview", render: overview, live: true },
  engines: { title: "Engines", render: engines, live: true },
  gpus: { title: "GPUs", render: gpus, live: true },
  tenants: { title: "Tenants & cost", render: tenants, live: true },
  requests: { title: "Requests", render: requests, live: true },
  request: { title: "Request → silicon", render: drilldown, live: false },
};

// ---- small DOM helpers ----------------------------------------------------------------

function section(title, ...children) {
  const id = `h-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return el("section", { "aria-labelledby": id }, el("h2", { id }, title), ...children);
}

function note(text, cls = "note") {
  return el("p", { class: cls }, text);
}

function table(caption, head, rows, cls) {
  const t = el("table", { class: cls || "" });
  t.append(el("caption", {}, caption));
  const tr = el("tr");
  for (const h of head) tr.append(el("th", { scope: "col" }, h));
  t.append(el("thead", {}, tr));
  const body = el("tbody");
  for (const r of rows) {
    const row = el("tr");
    r.forEach((c, i) => row.append(i === 0 ? el("th", { scope: "row" }, c) : el("td", {}, c)));
    body.append(row);
  }
  t.append(body);
  return el("div", { class: "table-wrap" }, t);
}

function failure(what, e) {
  return note(`${what}: ${e instanceof Error ? e.message : String(e)}`, "error");
}

function grid(...charts) {
  return el("div", { class: "grid" }, ...charts);
}

/** The window the range selector asks for: {from, to} in ms and a step in seconds. */
function window_() {
  const to = Date.now();
  const secs = Number(rangeSelect.value) || 900;
  return { from: to - secs * 1000, to, step: Math.max(2, Math.round(secs / 150)) };
}

/** A chart of `expr` over `w`; series named by the labels `by`. */
async function chart(title, expr, unit, w, by, extra = {}) {
  try {
    const series = await range(expr, w.from / 1000, w.to / 1000, w.step);
    return timeChart({
      title,
      unit,
      from: w.from,
      to: w.to,
      series: series.map((s) => ({ name: seriesName(s.metric, by), points: s.points })),
      ...extra,
    });
  } catch (e) {
    return el("figure", { class: "chart", "data-points": 0 }, el("figcaption", {}, title), failure("query failed", e));
  }
}

/** Instant values of several expressions keyed by the labels `by`: Map(key → {labels, v:[...]}) */
async function rowsBy(by, exprs) {
  const results = await Promise.all(exprs.map((e) => instant(e).catch(() => [])));
  const rows = new Map();
  results.forEach((res, i) => {
    for (const s of res) {
      const key = by.map((k) => s.metric[k] ?? "").join("\u0000");
      if (!rows.has(key)) rows.set(key, { labels: s.metric, v: new Array(exprs.length).fill(null) });
      rows.get(key).v[i] = s.value;
    }
  });
  return [...rows.values()].sort((a, b) => by.map((k) => a.labels[k] ?? "").join().localeCompare(by.map((k) => b.labels[k] ?? "").join()));
}

const q = (quantile, metric, by, win = "2m") =>
  `histogram_quantile(${quantile}, sum by (${by}, le) (rate(${metric}_bucket[${win}])))`;

// The highest finite bucket bound of each histogram, asked once per page load.
const topBounds = new Map();
function topBound(metric) {
  if (!topBounds.has(metric)) {
    topBounds.set(
      metric,
      instant(`count by (le) (${metric}_bucket)`)
        .then((rs) => Math.max(...rs.map((r) => Number(r.metric.le)).filter(Number.isFinite)))
        .catch(() => Infinity),
    );
  }
  return topBounds.get(metric);
}

/** A latency quantile as shown: histogram_quantile answers the top finite bucket's bound when
 * the quantile lies above it, so such a value is a floor and reads "≥ X", not X. */
function fmtQuantile(v, top) {
  if (Number.isFinite(v) && Number.isFinite(top) && v >= top * (1 - 1e-9)) {
    return el("span", { title: `at or above the histogram's top bucket (${fmt(top, "s")}): the real value is higher` }, `≥ ${fmt(top, "s")}`);
  }
  return fmt(v, "s");
}

// ---- Overview ---------------------------------------------------------------------------

async function overview() {
  const w = window_();
  const [findings, alerts, slos] = await Promise.all([findingsSection(), alertsSection(), sloSection()]);
  const headline = section(
    "Traffic at the gateway",
    grid(
      await chart("Requests per second by status", 'sum by (status) (rate(strata_gateway_requests_total[1m]))', "/s", w, ["status"]),
      await chart("TTFT p95 at the gateway by model", q(0.95, "strata_gateway_ttft_seconds", "model"), "s", w, ["model"]),
    ),
  );
  return [findings, alerts, slos, headline];
}

async function findingsSection() {
  let data;
  try {
    data = await optional("/api/v1/findings");
  } catch (e) {
    return section("Findings", failure("findings unavailable", e));
  }
  if (data === null) return section("Findings", note("This Strata serves no findings (no rule engine with the diagnosis pack)."));
  const open = data.open || [];
  const history = (data.history || []).filter((f) => f.ended_ms).slice(-10).reverse();
  const parts = [];
  if (!open.length) parts.push(note("No active findings: no diagnosis rule is firing.", "ok"));
  for (const f of open) parts.push(findingCard(f));
  if (history.length) {
    parts.push(
      table(
        "Recently cleared findings",
        ["Finding", "Severity", "Affected", "Started", "Cleared"],
        history.map((f) => [f.name, f.severity, affected(f.affected), clock(f.started_ms), clock(f.ended_ms)]),
      ),
    );
  }
  const s = section(`Findings (${open.length} active)`, ...parts);
  s.dataset.findings = String(open.length);
  s.id = "findings";
  return s;
}

function affected(a) {
  return Object.entries(a || {})
    .filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

/** The chart unit (`fmt`'s) of an evidence unit of `/api/v1/findings`. */
const EVIDENCE_UNITS = {
  percent: "ratio",
  ratio: "x",
  seconds: "s",
  per_second: "/s",
  bytes: "bytes",
  bytes_per_second: "B/s",
  count: "",
};

/** The engines of a finding by display name (model, node), else its affected labels. */
function engineList(f) {
  const engines = f.engines || [];
  if (!engines.length) return affected(f.affected) || "–";
  return engines
    .map((e) => {
      const more = [e.model, e.node].filter((x) => x).join(", ");
      return more ? `${e.name} (${more})` : e.name;
    })
    .join("; ");
}

function findingCard(f) {
  const since = Math.round((Date.now() - f.started_ms) / 60000);
  const card = el(
    "article",
    { class: `finding sev-${f.severity}`, "data-finding": f.name },
    el("h3", {}, `${f.name} `, el("span", { class: "badge" }, f.severity)),
    el("p", {}, f.summary || ""),
    el("p", {}, el("strong", {}, "What to do: "), f.action || "–"),
    el("p", { class: "meta" }, `Affected: ${engineList(f)} · since ${clock(f.started_ms)} (${since} min)`),
  );
  const symptoms = f.symptoms || [];
  if (symptoms.length) {
    const list = el("ul", { class: "symptoms" });
    for (const s of symptoms) {
      const where = s.labels.instance || s.labels.model || s.labels.gpu || "";
      list.append(el("li", { "data-alert": s.alert }, `${s.alert} (${s.severity || "–"}${where ? `, ${where}` : ""}): ${s.summary || ""}`));
    }
    card.append(el("details", {}, el("summary", {}, `Explains ${symptoms.length} firing alert${symptoms.length > 1 ? "s" : ""} (muted)`), list));
  }
  const ev = (f.evidence || []).filter((e) => e.series && e.series.length);
  if (ev.length) {
    const charts = ev.map((e) => {
      const pts = e.series.flatMap((s) => s.points.map((p) => p[0]));
      const from = Math.min(...pts);
      const to = Math.max(...pts, from + 1000);
      const unit = EVIDENCE_UNITS[e.unit] ?? "";
      return timeChart({
        title: e.title || e.expr,
        unit,
        from,
        to,
        window: from < f.started_ms ? [from, f.started_ms] : undefined,
        windowLabel: "before onset",
        threshold: e.threshold ?? undefined,
        series: e.series.map((s) => ({ name: seriesName(s.labels), points: s.points })),
      });
    });
    card.append(el("details", {}, el("summary", {}, `Evidence (${ev.length} charts)`), grid(...charts)));
  }
  return card;
}

/** `alertname` + labels: the key of an alert in `inhibited`. */
function alertKey(labels) {
  return JSON.stringify(Object.entries(labels || {}).sort());
}

async function alertsSection() {
  try {
    const [data, findings] = await Promise.all([api("/api/v1/alerts"), optional("/api/v1/findings").catch(() => null)]);
    const muted = new Set(((findings && findings.inhibited) || []).map((s) => alertKey(s.labels)));
    const all = data.alerts || [];
    const active = all.filter((a) => !(a.labels.kind === "diagnosis"));
    const firingAll = active.filter((a) => a.state === "firing");
    const firing = firingAll.filter((a) => !muted.has(alertKey(a.labels)));
    const inhibited = firingAll.length - firing.length;
    const pending = active.length - firingAll.length;
    const rows = firing.map((a) => [
      a.labels.alertname,
      a.labels.severity || "–",
      affected(Object.fromEntries(Object.entries(a.labels).filter(([k]) => !["alertname", "severity", "kind", "diagnosis"].includes(k)))),
      a.activeAt ? clock(Date.parse(a.activeAt)) : "–",
      (a.annotations && a.annotations.summary) || "",
    ]);
    const body = rows.length
      ? table("Firing alerts", ["Alert", "Severity", "Labels", "Active since", "Summary"], rows)
      : note("No alert is firing.", "ok");
    const s = section(`Alerts (${firing.length} firing, ${inhibited} muted under findings, ${pending} pending)`, body);
    s.id = "alerts";
    return s;
  } catch (e) {
    return section("Alerts", failure("alerts unavailable", e));
  }
}

/** Error budgets per (slo, profile) read from the SLO packs' budget rules (`… / 0.05`). */
async function sloBudgets() {
  const budgets = new Map();
  const data = await api("/api/v1/rules?type=record");
  for (const g of data.groups || []) {
    for (const r of g.rules || []) {
      if (r.name !== "slo:error_budget_remaining:ratio") continue;
      const m = /\/\s*([0-9.eE+-]+)\s*$/.exec(r.query || "");
      if (m && r.labels) budgets.set(`${r.labels.slo}|${r.labels.profile}`, Number(m[1]));
    }
  }
  return budgets;
}

async function sloSection() {
  try {
    const [budgets, rows] = await Promise.all([
      sloBudgets(),
      rowsBy(
        ["profile", "slo", "model"],
        [
          "slo:error_budget_remaining:ratio",
          "slo:sli_error:ratio_rate5m",
          "slo:sli_error:ratio_rate1h",
          "slo:sli_error:ratio_rate6h",
        ],
      ),
    ]);
    if (!rows.length) {
      return section("SLOs", note("No SLO series yet: load an SLO pack (crates/rules/packs/slo-*.yml) and give it a few minutes of traffic."));
    }
    const burn = (r, i) => {
      const b = budgets.get(`${r.labels.slo}|${r.labels.profile}`);
      return b && r.v[i] !== null ? fmt(r.v[i] / b, "x") : "–";
    };
    const start = await instant("min(slo:data_start:timestamp)").catch(() => []);
    let budgetHead = "Budget left (30 d)";
    if (start.length) {
      const t0 = Number(start[0].value) * 1000;
      const mins = Math.max(0, Math.round((Date.now() - t0) / 60000));
      const elapsed = mins < 120 ? `${mins} min` : mins < 2880 ? `${Math.round(mins / 60)} h` : `${Math.round(mins / 1440)} d`;
      const since = new Date(t0).toTimeString().slice(0, 5);
      budgetHead = mins >= 43200 ? "Budget left (30 d)" : `Budget left (since ${since}, ${elapsed} of 30 d)`;
    }
    const t = table(
      "Error budget and burn rates (burn rate = error ratio ÷ error budget; 1× spends the budget exactly over 30 days). Budget spent so far counts only the elapsed part of the 30 days.",
      ["SLO", "Profile", "Model", budgetHead, "Burn 5 m", "Burn 1 h", "Burn 6 h"],
      rows.map((r) => [
        r.labels.slo || "–",
        r.labels.profile || "–",
        r.labels.model || "all",
        r.v[0] === null ? "–" : fmt(r.v[0], "ratio"),
        burn(r, 1),
        burn(r, 2),
        burn(r, 3),
      ]),
    );
    return section("SLOs", t);
  } catch (e) {
    return section("SLOs", failure("SLOs unavailable", e));
  }
}

// ---- Engines ----------------------------------------------------------------------------

/** instance → {name, model, node} from `strata_engine_info` (empty for old data). */
async function engineNames() {
  const names = new Map();
  const res = await instant("max by (instance, name, model, node) (strata_engine_info)").catch(() => []);
  for (const s of res) names.set(s.metric.instance, s.metric);
  return names;
}

/** An engine as people call it: its name, else the scrape address. */
function engineName(names, instance) {
  const e = names.get(instance);
  return e && e.name ? e.name : instance || "–";
}

async function engines() {
  const w = window_();
  const names = await engineNames();
  const by = "instance, model";
  const keys = ["instance", "model"];
  const rows = await rowsBy(
    keys,
    [
      `max by (${by}) (llm:requests_running)`,
      `max by (${by}) (llm:requests_waiting)`,
      `max by (${by}) (llm:kv_cache_usage_ratio)`,
      `sum by (${by}) (rate(llm:preemptions_total[2m]))`,
      `sum by (${by}) (rate(llm:generation_tokens_total[2m]))`,
      q(0.5, "llm:ttft_seconds", by),
      q(0.95, "llm:ttft_seconds", by),
      q(0.99, "llm:ttft_seconds", by),
      q(0.5, "llm:itl_seconds", by),
      q(0.95, "llm:itl_seconds", by),
      q(0.99, "llm:itl_seconds", by),
      q(0.5, "llm:e2e_seconds", by),
      q(0.95, "llm:e2e_seconds", by),
      q(0.99, "llm:e2e_seconds", by),
    ],
  );
  const units = ["", "", "ratio", "/s", "/s", "s", "s", "s", "s", "s", "s", "s", "s", "s"];
  const latency = ["llm:ttft_seconds", "llm:itl_seconds", "llm:e2e_seconds"];
  const tops = await Promise.all(latency.map(topBound));
  // Columns 5.. are p50/p95/p99 of TTFT, ITL and E2E in turn.
  const cell = (v, i) => (i >= 5 ? fmtQuantile(v, tops[Math.floor((i - 5) / 3)]) : fmt(v, units[i]));
  const t = rows.length
    ? table(
        "Per instance, now (percentiles over the last 2 minutes)",
        ["Engine", "Model", "Running", "Waiting", "KV cache", "Preempt/s", "Tokens/s", "TTFT p50", "p95", "p99", "ITL p50", "p95", "p99", "E2E p50", "p95", "p99"],
        rows.map((r) => [
          el("span", { title: r.labels.instance || "" }, engineName(names, r.labels.instance)),
          r.labels.model || (names.get(r.labels.instance) || {}).model || "–",
          ...r.v.map(cell),
        ]),
        "wide",
      )
    : note("No engine series yet (llm:*): scrape an engine with strata up --engine URL and load crates/rules/packs/canonical.yml.");
  const charts = await Promise.all([
    chart("TTFT p95", q(0.95, "llm:ttft_seconds", by), "s", w, keys),
    chart("ITL p95", q(0.95, "llm:itl_seconds", by), "s", w, keys),
    chart("E2E p95", q(0.95, "llm:e2e_seconds", by), "s", w, keys),
    chart("Requests waiting (queue)", `max by (${by}) (llm:requests_waiting)`, "", w, keys),
    chart("Requests running", `max by (${by}) (llm:requests_running)`, "", w, keys),
    chart("KV cache usage", `max by (${by}) (llm:kv_cache_usage_ratio)`, "ratio", w, keys),
    chart("Preemptions per second", `sum by (${by}) (rate(llm:preemptions_total[2m]))`, "/s", w, keys),
    chart("Generated tokens per second", `sum by (${by}) (rate(llm:generation_tokens_total[2m]))`, "/s", w, keys),
  ]);
  return [section("Instances", t), section("Series", grid(...charts))];
}

// ---- GPUs -------------------------------------------------------------------------------

/** `node-1 · GPU 0 · NVIDIA H200`, leaving out what the series do not say. */
function gpuName(l) {
  const node = l.node || l.Hostname;
  return [node, `GPU ${l.gpu ?? "?"}`, l.modelName].filter(Boolean).join(" · ");
}

async function gpus() {
  const w = window_();
  // A GPU as people name it: node · index · model (the UUID on hover). DCGM and NVML both
  // label Hostname and modelName; agents add node.
  const keys = ["node", "Hostname", "gpu", "gpu_uuid", "modelName"];
  const by = keys.join(", ");
  const legend = ["node", "Hostname", "gpu"];
  const m = (name) => `max by (${by}) (${name})`;
  const rows = await rowsBy(keys, [
    m("gpu:tensor_active_ratio"),
    m("gpu:sm_active_ratio"),
    m("gpu:sm_clock_hz"),
    m("gpu:power_watts"),
    m("gpu:temp_celsius"),
    m("gpu:fb_used_bytes"),
    m("gpu:fb_free_bytes"),
    m("gpu:nvlink_rx_bytes_per_second + gpu:nvlink_tx_bytes_per_second"),
    m("gpu:pcie_rx_bytes_per_second + gpu:pcie_tx_bytes_per_second"),
  ]);
  const units = ["ratio", "ratio", "Hz", "W", "C", "bytes", "bytes", "B/s", "B/s"];
  const t = rows.length
    ? table(
        "Per GPU, now",
        ["GPU", "Tensor active", "SM active", "SM clock", "Power", "Temperature", "FB used", "FB free", "NVLink rx+tx", "PCIe rx+tx"],
        rows.map((r) => [el("span", { title: r.labels.gpu_uuid || "" }, gpuName(r.labels)), ...r.v.map((v, i) => fmt(v, units[i]))]),
        "wide",
      )
    : note("No GPU series yet (gpu:*): give strata up --gpu URL|nvml and load crates/rules/packs/canonical.yml.");
  const charts = await Promise.all([
    chart("Tensor pipe active", m("gpu:tensor_active_ratio"), "ratio", w, legend),
    chart("SM active", m("gpu:sm_active_ratio"), "ratio", w, legend),
    chart("SM clock", m("gpu:sm_clock_hz"), "Hz", w, legend),
    chart("Power", m("gpu:power_watts"), "W", w, legend),
    chart("Temperature", m("gpu:temp_celsius"), "C", w, legend),
    chart("Framebuffer used", m("gpu:fb_used_bytes"), "bytes", w, legend),
    chart("NVLink rx + tx", m("gpu:nvlink_rx_bytes_per_second + gpu:nvlink_tx_bytes_per_second"), "B/s", w, legend),
    chart("PCIe rx + tx", m("gpu:pcie_rx_bytes_per_second + gpu:pcie_tx_bytes_per_second"), "B/s", w, legend),
  ]);
  return [section("GPUs", t), await fabric(), section("Series", grid(...charts))];
}

/** One line on the fabric: RDMA ports (fabric:ib_*), NVSwitch links and the fabric manager's
 * registration of the GPUs (gpu:fabric_state), or that none is visible. */
async function fabric() {
  const one = async (e) => (await instant(e).catch(() => []))[0]?.value ?? 0;
  const [ports, active, nvswitch, reported, registered, failed] = await Promise.all([
    one("count(fabric:ib_port_state)"),
    one("count(fabric:ib_port_state == 4)"),
    one("sum(strata_gpu_nvswitch_links)"),
    one("count(gpu:fabric_state > 0)"),
    one("count(gpu:fabric_state == 3)"),
    one("count(gpu:fabric_state == 4)"),
  ]);
  if (!ports && !nvswitch && !reported) {
    return note("Fabric not visible from this node: no InfiniBand/RoCE port under /sys/class/infiniband, no NVSwitch-connected NVLink and no fabric manager state (NVML or DCGM).");
  }
  const parts = [];
  if (ports) parts.push(`${ports} RDMA port(s), ${active} ACTIVE`);
  parts.push(nvswitch ? `${nvswitch} NVSwitch link(s)` : "no NVSwitch link visible");
  if (reported) {
    const rest = reported - registered - failed;
    parts.push(`fabric manager: ${registered}/${reported} GPU(s) registered` +
      (failed ? `, ${failed} FAILED` : "") + (rest ? `, ${rest} not yet` : ""));
  }
  return note(`Fabric: ${parts.join(" · ")}`);
}

// ---- Tenants & cost ---------------------------------------------------------------------

async function tenants() {
  const w = window_();
  const rows = await rowsBy(
    ["tenant"],
    [
      "sum by (tenant) (rate(strata_gateway_requests_total[5m]))",
      'sum by (tenant) (rate(strata_gateway_requests_total{status!~"2.."}[5m]))',
      "sum by (tenant) (rate(strata_gateway_prompt_tokens_total[5m]))",
      "sum by (tenant) (rate(strata_gateway_generation_tokens_total[5m]))",
      q(0.95, "strata_gateway_ttft_seconds", "tenant", "5m"),
      q(0.95, "strata_gateway_itl_seconds", "tenant", "5m"),
      q(0.95, "strata_gateway_e2e_seconds", "tenant", "5m"),
    ],
  );
  const units = ["/s", "/s", "/s", "/s", "s", "s", "s"];
  const tops = await Promise.all(["strata_gateway_ttft_seconds", "strata_gateway_itl_seconds", "strata_gateway_e2e_seconds"].map(topBound));
  const cell = (v, i) => (i >= 4 ? fmtQuantile(v, tops[i - 4]) : fmt(v, units[i]));
  const t = rows.length
    ? table(
        "Per tenant (rates and p95 over the last 5 minutes, at the gateway)",
        ["Tenant", "Requests/s", "Errors/s", "Prompt tokens/s", "Output tokens/s", "TTFT p95", "ITL p95", "E2E p95"],
        rows.map((r) => [r.labels.tenant, ...r.v.map(cell)]),
      )
    : note("No gateway series (strata_gateway_*): tenants are measured by the gateway ([gateway] in strata.toml).");
  const charts = await Promise.all([
    chart("Requests per second", "sum by (tenant) (rate(strata_gateway_requests_total[1m]))", "/s", w, ["tenant"]),
    chart("Output tokens per second", "sum by (tenant) (rate(strata_gateway_generation_tokens_total[1m]))", "/s", w, ["tenant"]),
    chart("TTFT p95", q(0.95, "strata_gateway_ttft_seconds", "tenant"), "s", w, ["tenant"]),
    chart("E2E p95", q(0.95, "strata_gateway_e2e_seconds", "tenant"), "s", w, ["tenant"]),
  ]);
  return [section("Tenants", t, grid(...charts)), await costSection(w)];
}

async function costSection(w) {
  let names = [];
  try {
    names = (await api("/api/v1/label/__name__/values")).filter((n) => /(^|[:_])cost/.test(n));
  } catch (e) {
    return section("Cost", failure("metric names unavailable", e));
  }
  if (!names.length) {
    return section("Cost", note("No cost series: configure prices in the [cost] section of strata.toml to see cost per tenant."));
  }
  const charts = await Promise.all(
    names.slice(0, 8).map((n) =>
      n.endsWith("_total")
        ? chart(`${n} (per hour)`, `sum by (tenant) (rate(${n}[5m])) * 3600`, "", w, ["tenant"])
        : chart(n, `sum by (tenant) (${n})`, "", w, ["tenant"]),
    ),
  );
  return section("Cost", grid(...charts));
}

// ---- Requests ---------------------------------------------------------------------------

function requestRows(list) {
  return list.map((r) => [
    el("a", { href: `#/request/${encodeURIComponent(r.request_id)}` }, r.request_id),
    clock(r.received_ms),
    r.tenant,
    r.model || "–",
    r.upstream || "–",
    String(r.status),
    r.finish_reason || r.error_class || "–",
    fmt(r.ttft_ms, "ms"),
    fmt(r.e2e_ms, "ms"),
    `${r.prompt_tokens ?? "–"} / ${r.output_tokens}`,
    r.cost === null || r.cost === undefined ? "–" : String(r.cost),
  ]);
}

const REQ_HEAD = ["Request", "Received", "Tenant", "Model", "Upstream", "Status", "Finish", "TTFT", "E2E", "Tokens in / out", "Cost"];

async function requests() {
  let recent;
  let slowest;
  try {
    [recent, slowest] = await Promise.all([
      optional("/api/v1/requests?order=recent&limit=50"),
      optional("/api/v1/requests?order=slowest&limit=20"),
    ]);
  } catch (e) {
    return [section("Requests", failure("requests unavailable", e))];
  }
  if (recent === null) {
    return [section("Requests", note("No gateway runs in this Strata: requests are recorded by the gateway ([gateway] in strata.toml)."))];
  }
  const intro = note(
    "Requests the gateway finished (no prompts or completions are kept). Open one to see its timeline beside its engine's and GPU's series.",
  );
  const s1 = section(`Slowest (by E2E, last 15 minutes)`, slowest.length ? table("Slowest requests", REQ_HEAD, requestRows(slowest), "wide requests") : note("None yet."));
  const s2 = section(`Recent`, recent.length ? table("Most recent requests", REQ_HEAD, requestRows(recent), "wide requests") : note("None yet: send traffic through the gateway."));
  s2.id = "recent";
  return [intro, s1, s2];
}

// ---- Drill-down: request → silicon ------------------------------------------------------

const UUID = /^GPU-/i;

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\\\$&");
}

async function drilldown(id) {
  let r;
  try {
    r = await api(`/api/v1/requests/${encodeURIComponent(id)}`);
  } catch (e) {
    return [section("Request", failure(`request ${id}`, e), el("p", {}, el("a", { href: "#/requests" }, "Back to requests")))];
  }
  const end = r.received_ms + (r.e2e_ms || 0);
  const pad = Math.max(60000, (r.e2e_ms || 0) * 2);
  const w = { from: r.received_ms - pad, to: Math.min(Date.now(), end + pad), step: 1 };
  w.to = Math.max(w.to, end + 1000);
  const facts = el("dl", { class: "facts" });
  const fact = (k, v) => facts.append(el("dt", {}, k), el("dd", {}, v));
  fact("Request id", r.request_id);
  fact("Tenant", r.tenant);
  fact("Model", r.model || "–");
  fact("Upstream", `${r.upstream || "–"} (${r.instance || "no address"})`);
  fact("Status", `${r.status} ${r.finish_reason || r.error_class || ""}`);
  fact("Received", new Date(r.received_ms).toISOString());
  fact("TTFT / E2E", `${fmt(r.ttft_ms, "ms")} / ${fmt(r.e2e_ms, "ms")}`);
  fact("Tokens in / out", `${r.prompt_tokens ?? "–"} / ${r.output_tokens}`);
  fact("Cost", r.cost === null || r.cost === undefined ? "not priced" : String(r.cost));

  // Engine: the upstream's address as the scrape's instance label, else the model.
  let engSel = r.instance ? `instance="${r.instance}"` : "";
  let engNote = `Engine series: instance="${r.instance}" (the upstream's address, as Strata scrapes it).`;
  if (engSel) {
    const probe = await range(`llm:requests_running{${engSel}}`, w.from / 1000, w.to / 1000, 5).catch(() => []);
    if (!probe.length) engSel = "";
  }
  if (!engSel && r.model) {
    engSel = `model="${r.model}"`;
    engNote = `No engine series carry instance="${r.instance}" (is the engine scraped at the address the gateway uses?): showing every instance serving model ${r.model}.`;
  } else if (!engSel) {
    engNote = "No engine is known for this request: showing every instance.";
  }
  let gpuSel = "";
  let gpuNote = "No GPUs are configured for this upstream (gpus = [...] in [[gateway.upstream]]): showing every GPU on the node.";
  const links = r.instance
    ? await instant(`max by (name, node, gpu, gpu_uuid, gpu_model) (strata_engine_gpu_info{instance="${r.instance}"})`).catch(() => [])
    : [];
  if (links.length) {
    gpuSel = `gpu_uuid=~"${links.map((l) => escapeRe(l.metric.gpu_uuid)).join("|")}"`;
    const named = links.map((l) => `${l.metric.node} · GPU ${l.metric.gpu} · ${l.metric.gpu_model}`).join(", ");
    gpuNote = `The GPUs ${links[0].metric.name || r.instance} runs on (discovered): ${named}.`;
  } else if (r.gpus && r.gpus.length) {
    const uuid = r.gpus.every((g) => UUID.test(g));
    gpuSel = `${uuid ? "gpu_uuid" : "gpu"}=~"${r.gpus.map(escapeRe).join("|")}"`;
    gpuNote = `GPU series: ${gpuSel} (the GPUs configured for upstream ${r.upstream}).`;
  }
  const wopts = {
    window: [r.received_ms, end],
    windowLabel: "this request",
    empty: "No samples for this engine over these seconds: not every engine exposes every signal (TGI has no KV cache ratio and no token counter).",
  };
  const eng = (m) => `max by (instance, model) (${m}{${engSel}})`;
  const gpu = (m) => `max by (gpu, gpu_uuid) (${m}{${gpuSel}})`;
  const ek = ["instance", "model"];
  const gk = ["gpu", "gpu_uuid"];
  const charts = await Promise.all([
    chart("Requests running", eng("llm:requests_running"), "", w, ek, wopts),
    chart("Requests waiting", eng("llm:requests_waiting"), "", w, ek, wopts),
    chart("KV cache usage", eng("llm:kv_cache_usage_ratio"), "ratio", w, ek, wopts),
    chart("Generated tokens per second", `sum by (instance, model) (rate(llm:generation_tokens_total{${engSel}}[30s]))`, "/s", w, ek, wopts),
    chart("Tensor pipe active", gpu("gpu:tensor_active_ratio"), "ratio", w, gk, wopts),
    chart("SM clock", gpu("gpu:sm_clock_hz"), "Hz", w, gk, wopts),
    chart("Power", gpu("gpu:power_watts"), "W", w, gk, wopts),
    chart("Temperature", gpu("gpu:temp_celsius"), "C", w, gk, wopts),
  ]);
  charts.slice(0, 4).forEach((c) => c.classList.add("engine-series"));
  charts.slice(4).forEach((c) => c.classList.add("gpu-series"));
  const honest = el(
    "p",
    { class: "join" },
    el("strong", {}, "A time-window join, not a per-request measurement. "),
    "The timeline is this request as the gateway saw it. The engine and GPU charts are the whole instance's and GPU's samples over the same seconds (shaded), ",
    "shared by every request in the batch at the time; they show the conditions this request ran in, not what it alone used. ",
    "Samples are as coarse as the scrape interval, so a request shorter than that falls between samples.",
  );
  return [
    el("p", {}, el("a", { href: "#/requests" }, "← Back to requests")),
    section("Request", facts, timeline(r)),
    section("Its engine over the same seconds", note(engNote), grid(...charts.slice(0, 4))),
    section("Its GPU over the same seconds", note(gpuNote), grid(...charts.slice(4))),
    honest,
  ];
}

// ---- Router and refresh -----------------------------------------------------------------

let rendering = 0;

function route() {
  const [, name = "overview", ...rest] = (location.hash || "#/overview").split("/");
  return { name: PAGES[name] ? name : "overview", arg: decodeURIComponent(rest.join("/")) };
}

async function show(navigated) {
  const { name, arg } = route();
  const page = PAGES[name];
  const ticket = ++rendering;
  document.title = `${page.title} · Strata`;
  for (const a of document.querySelectorAll("nav a")) {
    const here = a.getAttribute("href") === `#/${name}` || (name === "request" && a.getAttribute("href") === "#/requests");
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (navigated) {
    main.setAttribute("aria-busy", "true");
    main.replaceChildren(el("h1", {}, page.title), note("Loading…"));
  }
  let parts;
  try {
    parts = await page.render(arg);
  } catch (e) {
    parts = [failure("this page could not be drawn", e)];
  }
  if (ticket !== rendering) return; // a newer render won
  const focusKey = document.activeElement && main.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
  main.replaceChildren(el("h1", {}, page.title), ...parts);
  main.dataset.page = name;
  main.dataset.updated = String(Date.now());
  main.removeAttribute("aria-busy");
  if (focusKey) {
    const again = main.querySelector(`[href="${CSS.escape(focusKey)}"]`);
    if (again) again.focus();
  } else if (navigated) {
    main.focus({ preventScroll: true });
  }
}

function schedule() {
  setInterval(() => {
    if (document.visibilityState === "visible" && PAGES[route().name].live) show(false);
  }, REFRESH_MS);
}

// ---- Scenario switch --------------------------------------------------------------------

const form = document.getElementById("scenario");
const select = document.getElementById("scenario-select");
const status = document.getElementById("scenario-status");
const tokenWrap = document.getElementById("token-wrap");
const tokenInput = document.getElementById("admin-token");

async function loadScenario() {
  let s;
  try {
    s = await optional("/api/v1/scenario");
  } catch {
    s = null;
  }
  if (!s) {
    form.hidden = true;
    return;
  }
  form.hidden = false;
  const current = s.current;
  if (select.options.length !== s.available.length) {
    select.replaceChildren(...s.available.map((a) => el("option", { value: a.name, title: a.help || "" }, a.name)));
  }
  if (document.activeElement !== select) select.value = current;
  form.dataset.current = current;
  const help = s.available.find((a) => a.name === current);
  const line = help && help.help ? help.help : "";
  // The scenario says what is injected, not what is wrong: while findings are open (a
  // backlog still draining after a switch back, say), the line says so.
  let open = [];
  let pages = [];
  try {
    const [f, a] = await Promise.all([optional("/api/v1/findings"), api("/api/v1/alerts")]);
    open = ((f && f.open) || []).filter((x) => x.name !== "incident_mode");
    const muted = new Set(((f && f.inhibited) || []).map((x) => alertKey(x.labels)));
    pages = (a.alerts || []).filter(
      (x) => x.state === "firing" && x.labels.severity === "page" && x.labels.kind !== "diagnosis" && !muted.has(alertKey(x.labels)),
    );
  } catch {
    open = [];
  }
  const wrong = [
    ...open.map((x) => x.name),
    ...pages.map((x) => x.labels.alertname),
  ];
  const helpLine = document.getElementById("scenario-help");
  helpLine.textContent = wrong.length
    ? `${line} — but ${wrong.length} finding${wrong.length > 1 ? "s or page alerts are" : " or page alert is"} still open (${[...new Set(wrong)].join(", ")}): see Findings and Alerts`
    : line;
  helpLine.dataset.open = String(wrong.length);
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = select.value;
  const headers = { "content-type": "application/json" };
  const token = tokenInput.value || sessionStorage.getItem("strata-admin-token");
  if (token) headers.authorization = `Bearer ${token}`;
  status.textContent = `Switching to ${name}…`;
  try {
    await api("/api/v1/scenario", { method: "POST", headers, body: JSON.stringify({ scenario: name }) });
    if (token) sessionStorage.setItem("strata-admin-token", token);
    tokenWrap.hidden = true;
    status.textContent = `Scenario ${name} since ${clock(Date.now())}. Diagnoses fire once their condition has held for its rule's "for" (about 1–3 minutes).`;
    await loadScenario();
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      tokenWrap.hidden = false;
      tokenInput.focus();
      status.textContent = "This Strata needs its admin token to switch scenarios: enter it and switch again.";
    } else {
      status.textContent = `Switch failed: ${e.message}`;
    }
  }
});

// ---- Start ------------------------------------------------------------------------------

rangeSelect.addEventListener("change", () => show(false));
window.addEventListener("hashchange", () => show(true));
show(true);
loadScenario();
setInterval(loadScenario, REFRESH_MS);
schedule();
