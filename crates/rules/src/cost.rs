//! Cost, generated as rules from a plain [`CostModel`] (the binary fills it from `[cost]`):
//! the hourly price of every GPU (matched on the `modelName` label that the DCGM exporter
//! and Strata's NVML collector both write), per-model token prices as reference series,
//! billed cost per tenant and per model from the gateway's token counters, the seeds'
//! effective cost per token (the full GPU hour, idle included, spread over the tokens
//! produced), useful vs billed tokens, and each tenant's share of the GPU hour with its
//! share of the idle time.
//!
//! [`report`] reads the same series back over any window (`strata cost`), through any
//! [`Query`] implementation: the HTTP API of a running Strata, or the store in tests.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::Query;
use crate::yaml::{Group, Rule, render};

/// How often the cost group is evaluated, in seconds. Sums of the per-hour gauges over a
/// window are turned into money with it (each sample stands for one interval).
pub const INTERVAL_S: u64 = 30;

/// The labels that name one GPU on the `gpu:*` series.
pub const GPU_LABELS: &str = "Hostname, gpu, gpu_uuid, modelName";

/// Gateway counters: prompt and generated tokens billed, and those of useful requests.
const PROMPT: &str = "strata_gateway_prompt_tokens_total";
const GENERATION: &str = "strata_gateway_generation_tokens_total";
const USEFUL_PROMPT: &str = "strata_gateway_useful_prompt_tokens_total";
const USEFUL_GENERATION: &str = "strata_gateway_useful_generation_tokens_total";
/// The engines' own generated-token counter (canonical), preferred for "tokens produced".
const ENGINE_GENERATION: &str = "llm:generation_tokens_total";

/// How a GPU price entry matches the `modelName` label.
#[derive(Debug, Clone, PartialEq)]
pub enum GpuMatch {
    /// The whole label value, e.g. `NVIDIA H100 80GB HBM3`.
    Exact(String),
    /// A part of it, e.g. `H100`.
    Contains(String),
}

/// The hourly price of the GPUs one entry matches.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuPrice {
    /// Which GPUs.
    pub matches: GpuMatch,
    /// Price of one GPU for one hour, in the model's currency.
    pub per_hour: f64,
}

/// Token prices of one served model (the gateway's `model` label).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPrice {
    /// Model name as clients ask for it.
    pub model: String,
    /// Price of one million prompt tokens.
    pub prompt_per_million: f64,
    /// Price of one million generated tokens.
    pub generation_per_million: f64,
}

/// Everything the cost rules need.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CostModel {
    /// Currency code, written as the `currency` label (`EUR`, `USD`).
    pub currency: String,
    /// GPU prices; exact entries win over `Contains` ones, which apply in order.
    pub gpus: Vec<GpuPrice>,
    /// Hourly price of GPUs no entry matches (none: such GPUs are not priced).
    pub default_gpu_per_hour: Option<f64>,
    /// Token prices per model.
    pub models: Vec<ModelPrice>,
}

/// A PromQL string literal.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `s` as a regex matching itself literally.
fn regex_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A number as PromQL reads it (never an exponent, never `NaN`).
fn num(v: f64) -> String {
    format!("{v}")
}

impl CostModel {
    fn gpu_alternatives(&self) -> Vec<(String, f64)> {
        let exact = self.gpus.iter().filter_map(|g| match &g.matches {
            GpuMatch::Exact(m) => Some((format!("modelName={}", quoted(m)), g.per_hour)),
            GpuMatch::Contains(_) => None,
        });
        let contains = self.gpus.iter().filter_map(|g| match &g.matches {
            GpuMatch::Contains(m) => Some((
                format!(
                    "modelName=~{}",
                    quoted(&format!(".*{}.*", regex_literal(m)))
                ),
                g.per_hour,
            )),
            GpuMatch::Exact(_) => None,
        });
        let default = self.default_gpu_per_hour.map(|p| (String::new(), p));
        exact.chain(contains).chain(default).collect()
    }

    fn currency(&self) -> Vec<(String, String)> {
        vec![("currency".into(), self.currency.clone())]
    }
}

fn record(name: &str, expr: String, labels: Vec<(String, String)>, comment: &str) -> Rule {
    Rule {
        comment: if comment.is_empty() {
            Vec::new()
        } else {
            vec![comment.to_string()]
        },
        record: Some(name.to_string()),
        expr,
        labels,
        ..Rule::default()
    }
}

/// What counter `c` counted over window `w`: `increase` for series older than the window,
/// the whole value for series born inside it (Strata's counters start at 0 with their
/// process, and `increase` alone would drop everything counted before a new series' first
/// sample).
fn total(c: &str, w: &str) -> String {
    format!("((increase({c}[{w}]) and ({c} offset {w} + 0)) or (last_over_time({c}[{w}]) + 0))")
}

/// Per hour from a sum of per-hour samples taken every [`INTERVAL_S`].
fn hours_of(sum: &str) -> String {
    format!("{sum} * {INTERVAL_S} / 3600")
}

/// The cost rule group (one group: later rules read earlier ones at the same evaluation).
pub fn groups(m: &CostModel) -> Vec<Group> {
    let cur = m.currency();
    let mut rules = Vec::new();
    let gpu = m.gpu_alternatives();
    if !gpu.is_empty() {
        let expr = gpu
            .iter()
            .map(|(sel, p)| {
                format!(
                    "group by ({GPU_LABELS}) (gpu:util_ratio{{{sel}}}) * {}",
                    num(*p)
                )
            })
            .collect::<Vec<_>>()
            .join("\nor\n");
        rules.push(record(
            "cost:gpu_price:per_hour",
            expr,
            cur.clone(),
            "Hourly price of each GPU seen (exact modelName first, then substrings in order, then the default).",
        ));
        rules.push(record(
            "cost:gpu_idle:ratio",
            format!("1 - clamp(max by ({GPU_LABELS}) (gpu:util_ratio), 0, 1)"),
            Vec::new(),
            "Share of the last interval the GPU ran no kernel (1 - gpu:util_ratio).",
        ));
        rules.push(record(
            "cost:gpu_idle_cost:per_hour",
            "cost:gpu_price:per_hour * ignoring(currency) cost:gpu_idle:ratio".into(),
            cur.clone(),
            "The part of each GPU's hourly price paid for idle time.",
        ));
        rules.push(record(
            "cost:node_price:per_hour",
            "sum by (Hostname) (cost:gpu_price:per_hour)".into(),
            cur.clone(),
            "Hourly price of each node's GPUs.",
        ));
        rules.push(record(
            "cost:gpu_cost:sum1h",
            hours_of("sum_over_time(cost:gpu_price:per_hour[1h])"),
            cur.clone(),
            "What each GPU cost over the last hour (only the time it was seen).",
        ));
        rules.push(record(
            "cost:gpu_idle_cost:sum1h",
            hours_of("sum_over_time(cost:gpu_idle_cost:per_hour[1h])"),
            cur.clone(),
            "The idle part of cost:gpu_cost:sum1h.",
        ));
        rules.push(record(
            "cost:generation_tokens:increase1h",
            format!(
                "sum({})\nor\nsum({})",
                total(ENGINE_GENERATION, "1h"),
                total(GENERATION, "1h")
            ),
            Vec::new(),
            "Tokens produced over the last hour: the engines' count, else the gateway's.",
        ));
        rules.push(record(
            "cost:effective_per_token:1h",
            "sum(cost:gpu_cost:sum1h) / cost:generation_tokens:increase1h".into(),
            cur.clone(),
            "The seeds' effective cost per token: the full GPU hour, idle included, over the tokens produced.",
        ));
        rules.push(record(
            "cost:tenant_tokens:share1h",
            format!(
                "clamp_max(\n  sum by (tenant) ({g})\n  / ignoring(tenant) group_left\n  cost:generation_tokens:increase1h,\n  1\n)",
                g = total(GENERATION, "1h")
            ),
            Vec::new(),
            "Each tenant's share of the tokens the engines generated over the last hour: its gateway tokens over every token produced (the rest did not go through the gateway).",
        ));
        rules.push(record(
            "cost:not_via_gateway_gpu_cost:sum1h",
            "sum(cost:gpu_cost:sum1h)\n* clamp_min(1 - (sum(cost:tenant_tokens:share1h) or vector(0)), 0)".into(),
            cur.clone(),
            "The GPU cost of the last hour spent on tokens that did not go through the gateway (no tenant known).",
        ));
        rules.push(record(
            "cost:tenant_gpu_cost:sum1h",
            "cost:tenant_tokens:share1h * ignoring(tenant) group_left sum(cost:gpu_cost:sum1h)"
                .into(),
            cur.clone(),
            "Each tenant's share of the GPU cost of the last hour, idle time included.",
        ));
        rules.push(record(
            "cost:tenant_gpu_idle_cost:sum1h",
            "cost:tenant_tokens:share1h * ignoring(tenant) group_left sum(cost:gpu_idle_cost:sum1h)"
                .into(),
            cur.clone(),
            "Each tenant's share of the idle part of the GPU cost of the last hour.",
        ));
    }
    for p in &m.models {
        for (kind, price) in [
            ("prompt", p.prompt_per_million),
            ("generation", p.generation_per_million),
        ] {
            let mut labels = vec![
                ("model".to_string(), p.model.clone()),
                ("type".to_string(), kind.to_string()),
            ];
            labels.extend(cur.clone());
            rules.push(record(
                "cost:token_price:per_million",
                format!("vector({})", num(price)),
                labels,
                "",
            ));
        }
    }
    if !m.models.is_empty() {
        let billed = |counter: &str, kind: &str| {
            format!(
                "sum by (tenant, model) (rate({counter}[5m]))\n  * on(model) group_left\n  max by (model) (cost:token_price:per_million{{type=\"{kind}\"}})"
            )
        };
        rules.push(record(
            "cost:billed:per_hour",
            format!(
                "(\n  {}\n+\n  {}\n) * 3600 / 1e6",
                billed(PROMPT, "prompt"),
                billed(GENERATION, "generation")
            ),
            cur.clone(),
            "Billed cost per hour by tenant and model: token prices x the gateway's token counters.",
        ));
        rules.push(record(
            "cost:tenant_billed:per_hour",
            "sum by (tenant) (cost:billed:per_hour)".into(),
            cur.clone(),
            "",
        ));
        rules.push(record(
            "cost:model_billed:per_hour",
            "sum by (model) (cost:billed:per_hour)".into(),
            cur.clone(),
            "",
        ));
    }
    rules.push(record(
        "cost:useful_tokens:ratio_rate1h",
        {
            let by = |c: &str| format!("sum by (tenant, model) ({})", total(c, "1h"));
            format!(
                "(\n  {}\n  + {}\n)\n/\n(\n  {}\n  + {}\n)",
                by(USEFUL_PROMPT),
                by(USEFUL_GENERATION),
                by(PROMPT),
                by(GENERATION)
            )
        },
        Vec::new(),
        "Useful over billed tokens: tokens of requests that failed, were cut or hit max_tokens are billed, not useful.",
    ));
    vec![Group {
        name: "cost".into(),
        interval: Some(format!("{INTERVAL_S}s")),
        comment: vec![format!(
            "Currency {}; {} GPU price entries, {} priced models.",
            m.currency,
            m.gpus.len() + usize::from(m.default_gpu_per_hour.is_some()),
            m.models.len()
        )],
        rules,
    }]
}

/// The cost rule file.
pub fn file(m: &CostModel) -> String {
    render(
        &[
            "GENERATED by rules::cost from the [cost] section of strata.toml: do not edit.".into(),
            "Regenerate after changing prices (`strata generate`, or restart `strata up`).".into(),
        ],
        &groups(m),
    )
}

/// One tenant or model over the report window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Tenant or model name.
    pub name: String,
    /// Billed cost (tokens of priced models x their prices).
    pub billed_cost: f64,
    /// Prompt tokens billed.
    pub prompt_tokens: f64,
    /// Generated tokens billed.
    pub generation_tokens: f64,
    /// Tokens (prompt and generated) of useful requests.
    pub useful_tokens: f64,
    /// Share of the GPU cost, idle included (tenants only: their generated tokens over all
    /// the engines produced).
    pub gpu_cost: f64,
    /// The idle part of `gpu_cost`.
    pub gpu_idle_cost: f64,
}

/// One GPU over the report window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GpuUsage {
    /// `Hostname` label.
    pub node: String,
    /// GPU index.
    pub gpu: String,
    /// GPU UUID.
    pub gpu_uuid: String,
    /// `modelName` label.
    pub model_name: String,
    /// Hours the GPU was seen.
    pub hours: f64,
    /// What it cost.
    pub cost: f64,
    /// The part paid for idle time.
    pub idle_cost: f64,
}

/// `strata cost`: what the window cost, per tenant, model and GPU.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Window, seconds.
    pub window_s: f64,
    /// Currency of every amount.
    pub currency: String,
    /// Per tenant, largest billed cost first.
    pub tenants: Vec<Usage>,
    /// Per model, largest billed cost first.
    pub models: Vec<Usage>,
    /// Per GPU.
    pub gpus: Vec<GpuUsage>,
    /// GPU hours.
    pub gpu_hours: f64,
    /// GPU cost.
    pub gpu_cost: f64,
    /// Idle part of the GPU cost.
    pub gpu_idle_cost: f64,
    /// `gpu_idle_cost / gpu_cost` (none without GPU cost).
    pub idle_share: Option<f64>,
    /// Tokens produced (the engines' count, else the gateway's).
    pub tokens_produced: f64,
    /// GPU cost / tokens produced (none without tokens or GPU prices).
    pub effective_cost_per_token: Option<f64>,
    /// Billed cost, all tenants.
    pub billed_cost: f64,
    /// Tokens billed (prompt and generated).
    pub billed_tokens: f64,
    /// Tokens of useful requests.
    pub useful_tokens: f64,
    /// Generated tokens the engines counted that did not go through the gateway.
    pub not_via_gateway_tokens: f64,
    /// The GPU cost of those tokens (no tenant to charge).
    pub not_via_gateway_gpu_cost: f64,
}

type Rows = Vec<(crate::alert::Labels, f64)>;

fn label<'a>(l: &'a crate::alert::Labels, name: &str) -> &'a str {
    l.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

/// Reads the cost series of the `window_s` seconds before `t_ms` through `q`. Fails when
/// no cost series exist (`[cost]` not configured) or a query fails.
pub fn report(q: &dyn Query, t_ms: i64, window_s: u64) -> Result<Report, String> {
    let w = format!("{window_s}s");
    let ask = |e: String| q.instant(&e, t_ms).map_err(|err| format!("{e}: {err}"));
    let currency: Rows = ask(format!(
        "count by (currency) (last_over_time(cost:gpu_price:per_hour[{w}]))\nor\ncount by (currency) (last_over_time(cost:token_price:per_million[{w}]))"
    ))?;
    let Some((labels, _)) = currency.first() else {
        return Err(format!(
            "no cost series (cost:gpu_price:per_hour, cost:token_price:per_million) in the last {w}: add a [cost] section with GPU and token prices to strata.toml and restart `strata up`"
        ));
    };
    let mut r = Report {
        window_s: window_s as f64,
        currency: label(labels, "currency").to_string(),
        ..Report::default()
    };
    let hours = INTERVAL_S as f64 / 3600.0;
    let gpu_sum = |what: &str, f: &str| ask(format!("{f}({what}[{w}])"));
    let mut gpus: BTreeMap<(String, String, String, String), GpuUsage> = BTreeMap::new();
    for (metric, f, set) in [
        (
            "cost:gpu_price:per_hour",
            "count_over_time",
            (|g: &mut GpuUsage, v| g.hours = v) as fn(&mut GpuUsage, f64),
        ),
        ("cost:gpu_price:per_hour", "sum_over_time", |g, v| {
            g.cost = v
        }),
        ("cost:gpu_idle_cost:per_hour", "sum_over_time", |g, v| {
            g.idle_cost = v
        }),
    ] {
        for (l, v) in gpu_sum(metric, f)? {
            let key = (
                label(&l, "Hostname").to_string(),
                label(&l, "gpu").to_string(),
                label(&l, "gpu_uuid").to_string(),
                label(&l, "modelName").to_string(),
            );
            let g = gpus.entry(key.clone()).or_insert_with(|| GpuUsage {
                node: key.0,
                gpu: key.1,
                gpu_uuid: key.2,
                model_name: key.3,
                ..GpuUsage::default()
            });
            set(g, v * hours);
        }
    }
    r.gpus = gpus.into_values().collect();
    r.gpu_hours = r.gpus.iter().map(|g| g.hours).sum();
    r.gpu_cost = r.gpus.iter().map(|g| g.cost).sum();
    r.gpu_idle_cost = r.gpus.iter().map(|g| g.idle_cost).sum();
    r.idle_share = ratio(r.gpu_idle_cost, r.gpu_cost);

    let produced = ask(format!(
        "sum({})\nor\nsum({})",
        total(ENGINE_GENERATION, &w),
        total(GENERATION, &w)
    ))?;
    r.tokens_produced = produced.first().map_or(0.0, |(_, v)| *v);
    r.effective_cost_per_token = ratio(r.gpu_cost, r.tokens_produced).filter(|_| r.gpu_cost > 0.0);

    let mut prices: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (l, v) in ask(format!(
        "max by (model, type) (last_over_time(cost:token_price:per_million[{w}]))"
    ))? {
        prices.insert(
            (
                label(&l, "model").to_string(),
                label(&l, "type").to_string(),
            ),
            v / 1e6,
        );
    }
    // (tenant, model) → [prompt, generation, useful prompt, useful generation].
    let mut cells: BTreeMap<(String, String), [f64; 4]> = BTreeMap::new();
    for (i, counter) in [PROMPT, GENERATION, USEFUL_PROMPT, USEFUL_GENERATION]
        .iter()
        .enumerate()
    {
        for (l, v) in ask(format!("sum by (tenant, model) ({})", total(counter, &w)))? {
            let key = (
                label(&l, "tenant").to_string(),
                label(&l, "model").to_string(),
            );
            cells.entry(key).or_default()[i] = v;
        }
    }
    let gateway_generation: f64 = cells.values().map(|c| c[1]).sum();
    let mut tenants: BTreeMap<String, Usage> = BTreeMap::new();
    let mut models: BTreeMap<String, Usage> = BTreeMap::new();
    for ((tenant, model), c) in &cells {
        let price = |kind: &str| prices.get(&(model.clone(), kind.to_string())).copied();
        let billed = match (price("prompt"), price("generation")) {
            (Some(p), Some(g)) => c[0] * p + c[1] * g,
            _ => 0.0,
        };
        for (map, name) in [(&mut tenants, tenant), (&mut models, model)] {
            let u = map.entry(name.clone()).or_insert_with(|| Usage {
                name: name.clone(),
                ..Usage::default()
            });
            u.billed_cost += billed;
            u.prompt_tokens += c[0];
            u.generation_tokens += c[1];
            u.useful_tokens += c[2] + c[3];
        }
    }
    // The GPUs served every token the engines counted; tenants pay for their part of those,
    // the rest is shown as not via the gateway.
    let all_tokens = r.tokens_produced.max(gateway_generation);
    for t in tenants.values_mut() {
        let share = ratio(t.generation_tokens, all_tokens).unwrap_or(0.0);
        t.gpu_cost = share * r.gpu_cost;
        t.gpu_idle_cost = share * r.gpu_idle_cost;
    }
    r.not_via_gateway_tokens = all_tokens - gateway_generation;
    let rest = ratio(r.not_via_gateway_tokens, all_tokens).unwrap_or(0.0);
    r.not_via_gateway_gpu_cost = rest * r.gpu_cost;
    let ordered = |m: BTreeMap<String, Usage>| {
        let mut v: Vec<Usage> = m.into_values().collect();
        v.sort_by(|a, b| {
            b.billed_cost
                .total_cmp(&a.billed_cost)
                .then(b.generation_tokens.total_cmp(&a.generation_tokens))
        });
        v
    };
    r.tenants = ordered(tenants);
    r.models = ordered(models);
    r.billed_cost = r.tenants.iter().map(|t| t.billed_cost).sum();
    r.billed_tokens = r
        .tenants
        .iter()
        .map(|t| t.prompt_tokens + t.generation_tokens)
        .sum();
    r.useful_tokens = r.tenants.iter().map(|t| t.useful_tokens).sum();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> CostModel {
        CostModel {
            currency: "EUR".into(),
            gpus: vec![
                GpuPrice {
                    matches: GpuMatch::Contains("A100".into()),
                    per_hour: 1.2,
                },
                GpuPrice {
                    matches: GpuMatch::Exact("NVIDIA H100 80GB HBM3".into()),
                    per_hour: 2.5,
                },
            ],
            default_gpu_per_hour: Some(1.0),
            models: vec![ModelPrice {
                model: "meta-llama/Llama-3.1-8B-Instruct".into(),
                prompt_per_million: 0.1,
                generation_per_million: 0.4,
            }],
        }
    }

    #[test]
    fn exact_gpu_prices_come_before_substrings_and_the_default_last() {
        let g = groups(&model());
        let price = &g[0].rules[0];
        assert_eq!(price.record.as_deref(), Some("cost:gpu_price:per_hour"));
        let alts: Vec<&str> = price.expr.split("\nor\n").collect();
        assert_eq!(alts.len(), 3);
        assert!(alts[0].contains("modelName=\"NVIDIA H100 80GB HBM3\"}) * 2.5"));
        assert!(alts[1].contains("modelName=~\".*A100.*\"}) * 1.2"));
        assert!(alts[2].contains("(gpu:util_ratio{}) * 1"));
    }

    #[test]
    fn label_values_are_escaped_for_promql_and_regex() {
        assert_eq!(regex_literal("H100 (SXM)+"), "H100 \\(SXM\\)\\+");
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
        let m = CostModel {
            currency: "USD".into(),
            gpus: vec![GpuPrice {
                matches: GpuMatch::Contains("H100 (SXM)".into()),
                per_hour: 3.0,
            }],
            ..CostModel::default()
        };
        crate::load("cost.yml", &file(&m)).expect("valid");
    }

    #[test]
    fn the_file_loads_and_prices_every_model_twice() {
        let text = file(&model());
        let groups = crate::load("cost.yml", &text).expect("valid");
        let prices = groups[0]
            .rules
            .iter()
            .filter(|r| r.name() == "cost:token_price:per_million")
            .count();
        assert_eq!(prices, 2);
        assert_eq!(groups[0].interval, Some(std::time::Duration::from_secs(30)));
    }

    #[test]
    fn without_prices_only_the_token_ratio_is_recorded() {
        let g = groups(&CostModel {
            currency: "EUR".into(),
            ..CostModel::default()
        });
        let names: Vec<_> = g[0].rules.iter().filter_map(|r| r.record.clone()).collect();
        assert_eq!(names, ["cost:useful_tokens:ratio_rate1h"]);
    }
}
