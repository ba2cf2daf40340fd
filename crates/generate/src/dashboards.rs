//! Grafana dashboards (JSON model, current schemaVersion): Overview (SLOs, burn, alerts and
//! findings), Engine, GPU, Tenants & cost, Gateway. Every query uses the canonical names the
//! packs record (`llm:*`, `gpu:*`, `slo:*`) or the gateway's own (`strata_gateway_*`), and
//! the `${datasource}` variable, so one dashboard works against Prometheus, VictoriaMetrics
//! or Strata's own query API, for every engine.

use serde_json::{Value, json};

use super::File;

/// Grafana's dashboard JSON schema version these dashboards are written in.
const SCHEMA_VERSION: u32 = 42;

/// How a panel draws its queries.
#[derive(Clone, Copy)]
enum Kind {
    /// Lines over time.
    Series,
    /// One big number (the last value).
    Stat,
    /// Rows of label sets and values (the last value).
    Table,
}

/// One panel: title, what it tells, kind, unit, and `(PromQL, legend)` queries.
struct Panel {
    title: &'static str,
    description: &'static str,
    kind: Kind,
    unit: &'static str,
    queries: &'static [(&'static str, &'static str)],
}

/// One dashboard: file name, uid, title, what it is for, and its panels.
struct Board {
    file: &'static str,
    uid: &'static str,
    title: &'static str,
    description: &'static str,
    panels: &'static [Panel],
}

const fn p(
    title: &'static str,
    description: &'static str,
    kind: Kind,
    unit: &'static str,
    queries: &'static [(&'static str, &'static str)],
) -> Panel {
    Panel {
        title,
        description,
        kind,
        unit,
        queries,
    }
}

use Kind::{Series, Stat, Table};

const OVERVIEW: &[Panel] = &[
    p(
        "Generation throughput",
        "Output tokens per second, all engines.",
        Stat,
        "suffix: tokens/s",
        &[(
            "sum(rate(llm:generation_tokens_total{model=~\"$model\"}[$__rate_interval]))",
            "tokens/s",
        )],
    ),
    p(
        "Requests running",
        "Requests in the running batches of every engine.",
        Stat,
        "suffix: requests",
        &[("sum(llm:requests_running{model=~\"$model\"})", "running")],
    ),
    p(
        "Requests waiting",
        "Requests queued for admission: the first saturation signal.",
        Stat,
        "suffix: requests",
        &[("sum(llm:requests_waiting{model=~\"$model\"})", "waiting")],
    ),
    p(
        "Firing alerts",
        "Alerts of the packs firing now (page and ticket).",
        Stat,
        "suffix: alerts",
        &[(
            "count(ALERTS{alertstate=\"firing\"}) or vector(0)",
            "firing",
        )],
    ),
    p(
        "SLO error budget remaining (30 d)",
        "1 = untouched, 0 = spent, below 0 = overspent; per profile and SLI.",
        Series,
        "percentunit",
        &[(
            "min by (profile, slo) (slo:error_budget_remaining:ratio)",
            "{{profile}} {{slo}}",
        )],
    ),
    p(
        "SLI error ratio, 5 m and 1 h",
        "Share of requests missing each SLO; burn rate = this / (1 - objective). Pages at 14.4x over 1 h and 5 m.",
        Series,
        "percentunit",
        &[
            (
                "max by (profile, slo) (slo:sli_error:ratio_rate5m)",
                "{{profile}} {{slo}} 5m",
            ),
            (
                "max by (profile, slo) (slo:sli_error:ratio_rate1h)",
                "{{profile}} {{slo}} 1h",
            ),
        ],
    ),
    p(
        "Alerts firing",
        "Every firing alert of the packs, with severity.",
        Table,
        "none",
        &[(
            "sum by (alertname, severity, instance, model, gpu) (ALERTS{alertstate=\"firing\", kind!=\"diagnosis\"})",
            "",
        )],
    ),
    p(
        "Findings (diagnoses)",
        "Paired-pattern diagnoses firing now; `strata diagnose` explains each with evidence.",
        Table,
        "none",
        &[(
            "sum by (diagnosis, severity, instance, model, gpu) (ALERTS{alertstate=\"firing\", kind=\"diagnosis\"})",
            "",
        )],
    ),
    p(
        "TTFT p95: gateway (user) vs engine",
        "The gap is proxy buffering or network; the engine line alone flatters.",
        Series,
        "s",
        &[
            (
                "histogram_quantile(0.95, sum by (model, le) (rate(strata_gateway_ttft_seconds_bucket{model=~\"$model\"}[$__rate_interval])))",
                "gateway {{model}}",
            ),
            (
                "histogram_quantile(0.95, sum by (model, le) (rate(llm:ttft_seconds_bucket{model=~\"$model\"}[$__rate_interval])))",
                "engine {{model}}",
            ),
        ],
    ),
    p(
        "KV cache usage",
        "Above 90 % new requests queue or preempt running ones.",
        Series,
        "percentunit",
        &[(
            "max by (instance, model) (llm:kv_cache_usage_ratio{model=~\"$model\"})",
            "{{instance}} {{model}}",
        )],
    ),
];

const ENGINE: &[Panel] = &[
    p(
        "Requests running and waiting",
        "Running batch and admission queue per engine.",
        Series,
        "suffix: requests",
        &[
            (
                "sum by (instance, model) (llm:requests_running{model=~\"$model\"})",
                "running {{instance}} {{model}}",
            ),
            (
                "sum by (instance, model) (llm:requests_waiting{model=~\"$model\"})",
                "waiting {{instance}} {{model}}",
            ),
        ],
    ),
    p(
        "KV cache usage",
        "KV cache occupation (0..1); at 1 with preemptions the engine thrashes.",
        Series,
        "percentunit",
        &[(
            "max by (instance, model) (llm:kv_cache_usage_ratio{model=~\"$model\"})",
            "{{instance}} {{model}}",
        )],
    ),
    p(
        "Preemptions",
        "Sequences evicted and recomputed per second (vLLM).",
        Series,
        "suffix: preemptions/s",
        &[(
            "sum by (instance, model) (rate(llm:preemptions_total{model=~\"$model\"}[$__rate_interval]))",
            "{{instance}} {{model}}",
        )],
    ),
    p(
        "Token throughput",
        "Prompt (prefill) and generation (decode) tokens per second.",
        Series,
        "suffix: tokens/s",
        &[
            (
                "sum by (model) (rate(llm:prompt_tokens_total{model=~\"$model\"}[$__rate_interval]))",
                "prompt {{model}}",
            ),
            (
                "sum by (model) (rate(llm:generation_tokens_total{model=~\"$model\"}[$__rate_interval]))",
                "generation {{model}}",
            ),
        ],
    ),
    p(
        "TTFT p50 / p95 / p99 (engine)",
        "Time to first token as the engine measures it: queueing plus prefill.",
        Series,
        "s",
        &[
            (
                "histogram_quantile(0.5, sum by (model, le) (rate(llm:ttft_seconds_bucket{model=~\"$model\"}[$__rate_interval])))",
                "p50 {{model}}",
            ),
            (
                "histogram_quantile(0.95, sum by (model, le) (rate(llm:ttft_seconds_bucket{model=~\"$model\"}[$__rate_interval])))",
                "p95 {{model}}",
            ),
            (
                "histogram_quantile(0.99, sum by (model, le) (rate(llm:ttft_seconds_bucket{model=~\"$model\"}[$__rate_interval])))",
                "p99 {{model}}",
            ),
        ],
    ),
    p(
        "Inter-token latency p50 / p95 (engine)",
        "Decode step time per token; stalls show here, not in TTFT.",
        Series,
        "s",
        &[
            (
                "histogram_quantile(0.5, sum by (model, le) (rate(llm:itl_seconds_bucket{model=~\"$model\"}[$__rate_interval])))",
                "p50 {{model}}",
            ),
            (
                "histogram_quantile(0.95, sum by (model, le) (rate(llm:itl_seconds_bucket{model=~\"$model\"}[$__rate_interval])))",
                "p95 {{model}}",
            ),
        ],
    ),
    p(
        "End-to-end and queue time p95 (engine)",
        "Whole request, and the part spent waiting for admission.",
        Series,
        "s",
        &[
            (
                "histogram_quantile(0.95, sum by (model, le) (rate(llm:e2e_seconds_bucket{model=~\"$model\"}[$__rate_interval])))",
                "e2e {{model}}",
            ),
            (
                "histogram_quantile(0.95, sum by (model, le) (rate(llm:queue_seconds_bucket{model=~\"$model\"}[$__rate_interval])))",
                "queue {{model}}",
            ),
        ],
    ),
    p(
        "Finish reasons",
        "Requests finished per second by reason (stop, length, abort).",
        Series,
        "reqps",
        &[(
            "sum by (model, finish_reason) (rate(llm:requests_finished_total{model=~\"$model\"}[$__rate_interval]))",
            "{{finish_reason}} {{model}}",
        )],
    ),
    p(
        "Prefix cache hit ratio",
        "Share of prompt tokens served from the prefix cache.",
        Series,
        "percentunit",
        &[(
            "sum by (instance, model) (rate(llm:prefix_cache_hits_total{model=~\"$model\"}[$__rate_interval])) / sum by (instance, model) (rate(llm:prefix_cache_queries_total{model=~\"$model\"}[$__rate_interval]))",
            "{{instance}} {{model}}",
        )],
    ),
];

const GPU: &[Panel] = &[
    p(
        "GPU utilisation (coarse)",
        "Share of time a kernel ran; 100 % says little about how busy the SMs are.",
        Series,
        "percentunit",
        &[(
            "max by (Hostname, gpu) (gpu:util_ratio)",
            "{{Hostname}} GPU {{gpu}}",
        )],
    ),
    p(
        "SM active and tensor active",
        "Fraction of cycles with warps on the SMs, and with the tensor pipes busy.",
        Series,
        "percentunit",
        &[
            (
                "max by (Hostname, gpu) (gpu:sm_active_ratio)",
                "SM {{Hostname}} GPU {{gpu}}",
            ),
            (
                "max by (Hostname, gpu) (gpu:tensor_active_ratio)",
                "tensor {{Hostname}} GPU {{gpu}}",
            ),
        ],
    ),
    p(
        "Frame buffer used",
        "Memory used over total; near 100 % the next allocation can fail with OOM.",
        Series,
        "percentunit",
        &[(
            "max by (Hostname, gpu) (gpu:fb_used_bytes / (gpu:fb_used_bytes + gpu:fb_free_bytes))",
            "{{Hostname}} GPU {{gpu}}",
        )],
    ),
    p(
        "Power",
        "Board power draw.",
        Series,
        "watt",
        &[(
            "max by (Hostname, gpu) (gpu:power_watts)",
            "{{Hostname}} GPU {{gpu}}",
        )],
    ),
    p(
        "Temperature",
        "GPU die temperature; throttling starts in the 80s.",
        Series,
        "celsius",
        &[(
            "max by (Hostname, gpu) (gpu:temp_celsius)",
            "{{Hostname}} GPU {{gpu}}",
        )],
    ),
    p(
        "SM clock",
        "A persistent drop is the first sign of thermal throttling.",
        Series,
        "hertz",
        &[(
            "max by (Hostname, gpu) (gpu:sm_clock_hz)",
            "{{Hostname}} GPU {{gpu}}",
        )],
    ),
    p(
        "NVLink and PCIe transmit",
        "Collective traffic; PCIe above NVLink means the links fell back.",
        Series,
        "Bps",
        &[
            (
                "max by (Hostname, gpu) (gpu:nvlink_tx_bytes_per_second)",
                "NVLink {{Hostname}} GPU {{gpu}}",
            ),
            (
                "max by (Hostname, gpu) (gpu:pcie_tx_bytes_per_second)",
                "PCIe {{Hostname}} GPU {{gpu}}",
            ),
        ],
    ),
    p(
        "Last XID",
        "The last driver/hardware fault per GPU (0: none).",
        Table,
        "none",
        &[("max by (Hostname, gpu, gpu_uuid) (gpu:xid_last)", "")],
    ),
];

const TENANTS: &[Panel] = &[
    p(
        "Generation tokens by tenant",
        "Output tokens per second each tenant is served (measured at the gateway).",
        Series,
        "suffix: tokens/s",
        &[(
            "sum by (tenant) (rate(strata_gateway_generation_tokens_total{tenant=~\"$tenant\", model=~\"$model\"}[$__rate_interval]))",
            "{{tenant}}",
        )],
    ),
    p(
        "Prompt tokens by tenant",
        "Prompt tokens per second; they price differently from generation tokens.",
        Series,
        "suffix: tokens/s",
        &[(
            "sum by (tenant) (rate(strata_gateway_prompt_tokens_total{tenant=~\"$tenant\", model=~\"$model\"}[$__rate_interval]))",
            "{{tenant}}",
        )],
    ),
    p(
        "Requests by tenant",
        "Requests per second by tenant and status.",
        Series,
        "reqps",
        &[(
            "sum by (tenant, status) (rate(strata_gateway_requests_total{tenant=~\"$tenant\", model=~\"$model\"}[$__rate_interval]))",
            "{{tenant}} {{status}}",
        )],
    ),
    p(
        "TTFT p95 by tenant",
        "What each tenant feels before the first token.",
        Series,
        "s",
        &[(
            "histogram_quantile(0.95, sum by (tenant, le) (rate(strata_gateway_ttft_seconds_bucket{tenant=~\"$tenant\", model=~\"$model\"}[$__rate_interval])))",
            "{{tenant}}",
        )],
    ),
    p(
        "Token share by tenant (24 h)",
        "Each tenant's share of the generation tokens of the last day: the split of the GPU bill.",
        Table,
        "percentunit",
        &[(
            "sum by (tenant) (increase(strata_gateway_generation_tokens_total{tenant=~\"$tenant\"}[1d])) / scalar(sum(increase(strata_gateway_generation_tokens_total[1d])))",
            "",
        )],
    ),
    p(
        "GPU cost by tenant (last hour)",
        "Each tenant's share of the GPU hour, idle time included (cost pack, needs [cost]).",
        Series,
        "suffix: per hour",
        &[(
            "sum by (tenant, currency) (cost:tenant_gpu_cost:sum1h{tenant=~\"$tenant\"})",
            "{{tenant}} {{currency}}",
        )],
    ),
    p(
        "Billed per hour by tenant",
        "Token prices times the gateway's token counters (cost pack, needs [cost]).",
        Series,
        "suffix: per hour",
        &[(
            "sum by (tenant, currency) (cost:tenant_billed:per_hour{tenant=~\"$tenant\"})",
            "{{tenant}} {{currency}}",
        )],
    ),
    p(
        "Effective cost per token",
        "The full GPU hour, idle included, over the tokens produced (the seeds' capacity number).",
        Stat,
        "suffix: per token",
        &[(
            "max by (currency) (cost:effective_per_token:1h)",
            "{{currency}}",
        )],
    ),
    p(
        "Useful over billed tokens",
        "Tokens of failed, cut or truncated requests are billed, not useful.",
        Stat,
        "percentunit",
        &[("min(cost:useful_tokens:ratio_rate1h)", "useful")],
    ),
    p(
        "GPU energy per generated token",
        "Joules per output token, node-wide: the efficiency behind the cost per token.",
        Series,
        "suffix: J/token",
        &[(
            "sum(rate(gpu:energy_joules_total[$__rate_interval])) / sum(rate(llm:generation_tokens_total[$__rate_interval]))",
            "J/token",
        )],
    ),
];

const GATEWAY: &[Panel] = &[
    p(
        "Requests by status and finish reason",
        "Requests per second through the gateway.",
        Series,
        "reqps",
        &[(
            "sum by (status, finish_reason) (rate(strata_gateway_requests_total{model=~\"$model\"}[$__rate_interval]))",
            "{{status}} {{finish_reason}}",
        )],
    ),
    p(
        "In flight",
        "Requests open at the gateway now.",
        Series,
        "suffix: requests",
        &[(
            "sum by (model) (strata_gateway_requests_in_flight{model=~\"$model\"})",
            "{{model}}",
        )],
    ),
    p(
        "TTFT, ITL and E2E p95 (user side)",
        "Latency as the gateway measures it, streaming included.",
        Series,
        "s",
        &[
            (
                "histogram_quantile(0.95, sum by (model, le) (rate(strata_gateway_ttft_seconds_bucket{model=~\"$model\"}[$__rate_interval])))",
                "TTFT {{model}}",
            ),
            (
                "histogram_quantile(0.95, sum by (model, le) (rate(strata_gateway_itl_seconds_bucket{model=~\"$model\"}[$__rate_interval])))",
                "ITL {{model}}",
            ),
            (
                "histogram_quantile(0.95, sum by (model, le) (rate(strata_gateway_e2e_seconds_bucket{model=~\"$model\"}[$__rate_interval])))",
                "E2E {{model}}",
            ),
        ],
    ),
    p(
        "Errors by class",
        "Upstream errors, timeouts, client disconnects per second.",
        Series,
        "reqps",
        &[(
            "sum by (model, class) (rate(strata_gateway_errors_total{model=~\"$model\"}[$__rate_interval]))",
            "{{class}} {{model}}",
        )],
    ),
    p(
        "Refusals, short and malformed responses",
        "Quality signals per second: refusals, suspiciously short answers, malformed streams.",
        Series,
        "reqps",
        &[
            (
                "sum by (model) (rate(strata_gateway_refusals_total{model=~\"$model\"}[$__rate_interval]))",
                "refusals {{model}}",
            ),
            (
                "sum by (model) (rate(strata_gateway_short_responses_total{model=~\"$model\"}[$__rate_interval]))",
                "short {{model}}",
            ),
            (
                "sum by (model) (rate(strata_gateway_malformed_responses_total{model=~\"$model\"}[$__rate_interval]))",
                "malformed {{model}}",
            ),
        ],
    ),
    p(
        "Traces kept and dropped",
        "Tail sampling: traces kept per second, and any lost to a full export queue.",
        Series,
        "suffix: traces/s",
        &[
            (
                "sum(rate(strata_gateway_traces_kept_total[$__rate_interval]))",
                "kept",
            ),
            (
                "sum(rate(strata_gateway_traces_dropped_total[$__rate_interval]))",
                "dropped",
            ),
        ],
    ),
];

const BOARDS: [Board; 5] = [
    Board {
        file: "strata-overview.json",
        uid: "strata-overview",
        title: "Strata / Overview",
        description: "SLOs and their burn, alerts and findings, the few numbers to read first.",
        panels: OVERVIEW,
    },
    Board {
        file: "strata-engine.json",
        uid: "strata-engine",
        title: "Strata / Engine",
        description: "Inference engines in canonical names (vLLM, TGI, SGLang, llama.cpp alike).",
        panels: ENGINE,
    },
    Board {
        file: "strata-gpu.json",
        uid: "strata-gpu",
        title: "Strata / GPU",
        description: "GPU silicon from DCGM or NVML in canonical names.",
        panels: GPU,
    },
    Board {
        file: "strata-tenants.json",
        uid: "strata-tenants",
        title: "Strata / Tenants & cost",
        description: "Per-tenant tokens, requests and latency from the gateway; the basis of cost per tenant.",
        panels: TENANTS,
    },
    Board {
        file: "strata-gateway.json",
        uid: "strata-gateway",
        title: "Strata / Gateway",
        description: "Strata's streaming gateway: what users see, per model.",
        panels: GATEWAY,
    },
];

/// The datasource every panel and variable uses: the `${datasource}` variable.
fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

/// A query variable over the values of `label` of `metric` (multi, with All = `.*`, which
/// also matches series without the label).
fn label_variable(name: &str, label: &str, metric: &str) -> Value {
    json!({
        "name": name,
        "label": label,
        "type": "query",
        "datasource": datasource(),
        "query": {"query": format!("label_values({metric}, {label})"), "refId": format!("{name}-values")},
        "refresh": 2,
        "includeAll": true,
        "multi": true,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "sort": 1
    })
}

/// The matchers every selector of every panel gets: the `$node` and `$instance` variables
/// (All is `.*`, which also matches series without the label).
const SCOPE: &str = "node=~\"$node\", instance=~\"$instance\"";

/// Aggregation operators: a name followed by `by`/`without` or `(`, never a metric.
const AGGREGATIONS: [&str; 12] = [
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
];

/// Keywords whose parenthesised list (`by (model, le)`) holds label names, not selectors.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// `expr` with [`SCOPE`] added to every vector selector: `m` becomes `m{SCOPE}`,
/// `m{a="b"}` becomes `m{a="b", SCOPE}`. Strings, range brackets, function and aggregation
/// names, grouping label lists and numbers are left alone.
fn scoped(expr: &str) -> String {
    let b = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let next_non_space = |mut i: usize| {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        i
    };
    let mut out = String::with_capacity(expr.len() + 64);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            // A string literal, escapes included.
            let start = i;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            out.push_str(&expr[start..i]);
        } else if c == b'[' {
            let end = expr[i..].find(']').map_or(b.len(), |e| i + e + 1);
            out.push_str(&expr[i..end]);
            i = end;
        } else if c.is_ascii_digit() || c == b'$' {
            let start = i;
            i += 1;
            while i < b.len() && (ident(b[i]) || b[i] == b'.') {
                i += 1;
            }
            out.push_str(&expr[start..i]);
        } else if ident(c) {
            let start = i;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            out.push_str(word);
            let n = next_non_space(i);
            if LABEL_LISTS.contains(&word) && b.get(n) == Some(&b'(') {
                let end = expr[n..].find(')').map_or(b.len(), |e| n + e + 1);
                out.push_str(&expr[i..end]);
                i = end;
            } else if b.get(n) == Some(&b'(')
                || AGGREGATIONS.contains(&word)
                || LABEL_LISTS.contains(&word)
                || ["and", "or", "unless", "bool", "offset"].contains(&word)
            {
                // A call, an operator or a keyword.
            } else if b.get(n) == Some(&b'{') {
                // Copy the matchers (strings may hold `}`), then add the scope.
                let mut j = n + 1;
                while j < b.len() && b[j] != b'}' {
                    if b[j] == b'"' {
                        j += 1;
                        while j < b.len() && b[j] != b'"' {
                            j += if b[j] == b'\\' { 2 } else { 1 };
                        }
                    }
                    j += 1;
                }
                let inner = expr[n + 1..j.min(b.len())].trim();
                out.push_str(&expr[i..n]);
                if inner.is_empty() {
                    out.push_str(&format!("{{{SCOPE}}}"));
                } else {
                    out.push_str(&format!("{{{inner}, {SCOPE}}}"));
                }
                i = (j + 1).min(b.len());
            } else {
                out.push_str(&format!("{{{SCOPE}}}"));
            }
        } else {
            let ch = expr[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Grafana panel type, width and height (of 24 columns) of a kind.
fn shape(kind: Kind) -> (&'static str, u32, u32) {
    match kind {
        Series => ("timeseries", 12, 8),
        Stat => ("stat", 6, 4),
        Table => ("table", 12, 8),
    }
}

fn panel(id: usize, x: u32, y: u32, pn: &Panel) -> Value {
    let (kind, w, h) = shape(pn.kind);
    let instant = !matches!(pn.kind, Series);
    let targets: Vec<Value> = pn
        .queries
        .iter()
        .zip('A'..='Z')
        .map(|((expr, legend), ref_id)| {
            json!({
                "refId": ref_id.to_string(),
                "datasource": datasource(),
                "expr": scoped(expr),
                "legendFormat": if legend.is_empty() { "__auto" } else { legend },
                "range": !instant,
                "instant": instant,
                "format": if matches!(pn.kind, Table) { "table" } else { "time_series" }
            })
        })
        .collect();
    json!({
        "id": id,
        "type": kind,
        "title": pn.title,
        "description": pn.description,
        "datasource": datasource(),
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": pn.unit}, "overrides": []},
        "options": {},
        "targets": targets
    })
}

fn dashboard(b: &Board) -> Value {
    let (mut x, mut y, mut row_h) = (0u32, 0u32, 0u32);
    let mut panels = Vec::new();
    for (i, pn) in b.panels.iter().enumerate() {
        let (_, w, h) = shape(pn.kind);
        if x + w > 24 {
            x = 0;
            y += row_h;
            row_h = 0;
        }
        panels.push(panel(i + 1, x, y, pn));
        x += w;
        row_h = row_h.max(h);
    }
    let exprs: Vec<String> = b
        .panels
        .iter()
        .flat_map(|pn| pn.queries.iter().map(|(e, _)| scoped(e)))
        .collect();
    let used = |var: &str| exprs.iter().any(|e| e.contains(&format!("${var}\"")));
    let mut vars = vec![
        json!({
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "refresh": 1
        }),
        label_variable("node", "node", "up"),
        label_variable("instance", "instance", "up{node=~\"$node\"}"),
    ];
    for (var, metric) in [
        ("model", "llm:requests_running"),
        ("tenant", "strata_gateway_requests_total"),
    ] {
        if used(var) {
            vars.push(label_variable(var, var, metric));
        }
    }
    json!({
        "uid": b.uid,
        "title": b.title,
        "description": b.description,
        "tags": ["strata", "llm"],
        "schemaVersion": SCHEMA_VERSION,
        "editable": true,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "links": [{
            "title": "Strata",
            "type": "dashboards",
            "tags": ["strata"],
            "asDropdown": true,
            "includeVars": true,
            "keepTime": true,
            "icon": "external link",
            "targetBlank": false,
            "tooltip": "Other Strata dashboards"
        }],
        "annotations": {"list": []},
        "templating": {"list": vars},
        "panels": panels
    })
}

/// `dashboards/*.json`, one per dashboard, ready for Grafana's import or provisioning.
pub(super) fn files() -> Result<Vec<File>, String> {
    BOARDS
        .iter()
        .map(|b| {
            serde_json::to_string_pretty(&dashboard(b))
                .map(|t| (b.file.to_string(), t + "\n"))
                .map_err(|e| format!("{}: {e}", b.file))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_selector_gets_the_node_and_instance_scope() {
        let s = |e: &str| scoped(e).replace(SCOPE, "S");
        assert_eq!(
            s(
                "histogram_quantile(0.95, sum by (model, le) (rate(llm:ttft_seconds_bucket{model=~\"$model\"}[$__rate_interval])))"
            ),
            "histogram_quantile(0.95, sum by (model, le) (rate(llm:ttft_seconds_bucket{model=~\"$model\", S}[$__rate_interval])))"
        );
        assert_eq!(
            s("count(ALERTS{alertstate=\"firing\"}) or vector(0)"),
            "count(ALERTS{alertstate=\"firing\", S}) or vector(0)"
        );
        assert_eq!(
            s(
                "sum(rate(a_total[5m])) / on (x) group_left (y) max without (z) (b{c=\"}{\"}) > bool 1e3"
            ),
            "sum(rate(a_total{S}[5m])) / on (x) group_left (y) max without (z) (b{c=\"}{\", S}) > bool 1e3"
        );
        assert_eq!(s("up{}"), "up{S}");
    }

    #[test]
    fn dashboards_scope_every_query_use_every_variable_and_have_units() {
        for b in &BOARDS {
            let d = dashboard(b);
            let vars: Vec<&str> = d["templating"]["list"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v["name"].as_str())
                .collect();
            assert!(
                vars.contains(&"node") && vars.contains(&"instance"),
                "{}: {vars:?}",
                b.uid
            );
            let panels = d["panels"].as_array().cloned().unwrap_or_default();
            let exprs: Vec<String> = panels
                .iter()
                .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
                .filter_map(|t| t["expr"].as_str().map(str::to_string))
                .collect();
            for e in &exprs {
                assert!(
                    e.contains(SCOPE),
                    "{}: {e} is not filtered by node and instance",
                    b.uid
                );
                for word in e.split('$').skip(1) {
                    let name: String = word
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    assert!(
                        name.starts_with("__") || vars.contains(&name.as_str()),
                        "{}: ${name} is used but not defined",
                        b.uid
                    );
                }
            }
            for v in vars.iter().filter(|v| **v != "datasource") {
                assert!(
                    exprs.iter().any(|e| e.contains(&format!("${v}\""))),
                    "{}: variable ${v} is unused",
                    b.uid
                );
            }
            for p in &panels {
                let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("");
                assert!(
                    !unit.is_empty() && unit != "short",
                    "{} / {}: give the panel a unit, not {unit:?}",
                    b.uid,
                    p["title"]
                );
            }
        }
    }
}
