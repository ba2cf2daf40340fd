//! `[cost]`: the currency, the hourly price of each GPU model (matched on the `modelName`
//! label of the DCGM exporter and of Strata's NVML collector, exactly or by substring,
//! with a default) and token prices per served model. `strata up` loads the cost rules
//! built from it, and the gateway prices each request with it.

use std::collections::HashMap;
use std::path::Path;

use gateway::{GatewayConfig, Prices, TokenPrice};
use rules::GroupSpec;
use rules::cost::{CostModel, GpuMatch, GpuPrice, ModelPrice};
use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;
use super::schema::Config;

/// `[cost]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSection {
    /// Currency code of every price (`EUR`, `USD`).
    pub currency: Spanned<String>,
    /// Hourly price of GPUs no `[[cost.gpu]]` entry matches.
    pub gpu_default_per_hour: Option<Spanned<f64>>,
    /// `[[cost.gpu]]`
    #[serde(default, rename = "gpu")]
    pub gpus: Vec<GpuSection>,
    /// `[[cost.model]]`
    #[serde(default, rename = "model")]
    pub models: Vec<ModelSection>,
}

/// `[[cost.gpu]]`: one GPU model's hourly price.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSection {
    /// The whole `modelName` label value (`NVIDIA H100 80GB HBM3`).
    pub model_name: Option<Spanned<String>>,
    /// A part of it (`H100`); exact entries win, substrings apply in file order.
    pub contains: Option<Spanned<String>>,
    /// Price of one GPU for one hour.
    pub per_hour: Spanned<f64>,
}

/// `[[cost.model]]`: one served model's token prices.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Model name as clients ask for it (the gateway's `model` label).
    pub name: Spanned<String>,
    /// Price of one million prompt tokens.
    pub prompt_per_million: Spanned<f64>,
    /// Price of one million generated tokens.
    pub generation_per_million: Spanned<f64>,
}

fn at<T>(path: &Path, text: &str, s: &Spanned<T>, message: String, fix: &str) -> ConfigError {
    ConfigError::at(path, text, Some(s.span()), message, fix.to_string())
}

fn price(path: &Path, text: &str, key: &str, v: &Spanned<f64>) -> Result<(), ConfigError> {
    let p = *v.get_ref();
    if p.is_finite() && p >= 0.0 {
        return Ok(());
    }
    Err(at(
        path,
        text,
        v,
        format!("{key} = {p} is not a price"),
        "give a finite number of at least 0 (in the [cost] currency)",
    ))
}

impl CostSection {
    /// Checks what serde cannot: currency, prices, GPU matchers, duplicate names.
    pub fn check(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let c = self.currency.get_ref();
        if c.is_empty() || c.len() > 8 || !c.chars().all(|ch| ch.is_alphabetic()) {
            return Err(at(
                path,
                text,
                &self.currency,
                format!("currency {c:?} is not a currency code"),
                "write a code of letters, e.g. \"EUR\" or \"USD\"",
            ));
        }
        if let Some(d) = &self.gpu_default_per_hour {
            price(path, text, "gpu_default_per_hour", d)?;
        }
        let mut exact: Vec<&str> = Vec::new();
        for g in &self.gpus {
            price(path, text, "per_hour", &g.per_hour)?;
            match (&g.model_name, &g.contains) {
                (Some(_), Some(c)) => {
                    return Err(at(
                        path,
                        text,
                        c,
                        "a [[cost.gpu]] entry has both model_name and contains".into(),
                        "keep one: model_name matches the whole modelName label, contains a part of it",
                    ));
                }
                (None, None) => {
                    return Err(at(
                        path,
                        text,
                        &g.per_hour,
                        "a [[cost.gpu]] entry names no GPU model".into(),
                        "add model_name = \"NVIDIA H100 80GB HBM3\" (the modelName label) or contains = \"H100\"",
                    ));
                }
                (Some(m), None) | (None, Some(m)) if m.get_ref().trim().is_empty() => {
                    return Err(at(
                        path,
                        text,
                        m,
                        "the GPU model is empty".into(),
                        "write the modelName label value, or a part of it",
                    ));
                }
                (Some(m), None) => {
                    if exact.contains(&m.get_ref().as_str()) {
                        return Err(at(
                            path,
                            text,
                            m,
                            format!("GPU model {:?} is priced twice", m.get_ref()),
                            "keep one [[cost.gpu]] entry per model_name",
                        ));
                    }
                    exact.push(m.get_ref());
                }
                (None, Some(_)) => {}
            }
        }
        let mut names: Vec<&str> = Vec::new();
        for m in &self.models {
            let n = m.name.get_ref();
            if n.is_empty() {
                return Err(at(
                    path,
                    text,
                    &m.name,
                    "the model name is empty".into(),
                    "write the model name clients send (the gateway's model label)",
                ));
            }
            if names.contains(&n.as_str()) {
                return Err(at(
                    path,
                    text,
                    &m.name,
                    format!("model {n:?} is priced twice"),
                    "keep one [[cost.model]] entry per model",
                ));
            }
            names.push(n);
            price(path, text, "prompt_per_million", &m.prompt_per_million)?;
            price(
                path,
                text,
                "generation_per_million",
                &m.generation_per_million,
            )?;
        }
        Ok(())
    }

    /// The cost model the rules are generated from (call after [`CostSection::check`]).
    pub fn model(&self) -> CostModel {
        CostModel {
            currency: self.currency.get_ref().clone(),
            gpus: self
                .gpus
                .iter()
                .filter_map(|g| {
                    let matches = match (&g.model_name, &g.contains) {
                        (Some(m), _) => GpuMatch::Exact(m.get_ref().clone()),
                        (None, Some(c)) => GpuMatch::Contains(c.get_ref().clone()),
                        (None, None) => return None,
                    };
                    Some(GpuPrice {
                        matches,
                        per_hour: *g.per_hour.get_ref(),
                    })
                })
                .collect(),
            default_gpu_per_hour: self.gpu_default_per_hour.as_ref().map(|d| *d.get_ref()),
            models: self
                .models
                .iter()
                .map(|m| ModelPrice {
                    model: m.name.get_ref().clone(),
                    prompt_per_million: *m.prompt_per_million.get_ref(),
                    generation_per_million: *m.generation_per_million.get_ref(),
                })
                .collect(),
        }
    }

    /// The token prices the gateway prices requests with.
    pub fn prices(&self) -> Prices {
        Prices {
            currency: self.currency.get_ref().as_str().into(),
            models: self
                .models
                .iter()
                .map(|m| {
                    (
                        m.name.get_ref().clone(),
                        TokenPrice {
                            prompt_per_million: *m.prompt_per_million.get_ref(),
                            generation_per_million: *m.generation_per_million.get_ref(),
                        },
                    )
                })
                .collect::<HashMap<_, _>>(),
        }
    }
}

impl Config {
    /// The `[gateway]` settings, with the token prices of `[cost]` when it is present.
    pub fn gateway_settings(&self, path: &Path, text: &str) -> Result<GatewayConfig, ConfigError> {
        let mut g = self.gateway.resolve(path, text)?;
        if let Some(c) = &self.cost {
            g.prices = c.prices();
        }
        Ok(g)
    }

    /// The cost rule group `strata up` evaluates (none without `[cost]`).
    pub fn cost_rule_groups(&self) -> Result<Vec<GroupSpec>, String> {
        let Some(c) = &self.cost else {
            return Ok(Vec::new());
        };
        rules::load("cost.yml", &rules::cost::file(&c.model())).map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
            format!(
                "the cost rules built from [cost] are invalid: {}",
                lines.join("; ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EXAMPLE, parse};
    use super::*;

    #[test]
    fn the_example_cost_section_resolves() {
        let c = parse(Path::new("strata.example.toml"), EXAMPLE).expect("example is valid");
        let m = c.cost.as_ref().expect("the example shows [cost]").model();
        assert_eq!(m.currency, "EUR");
        assert!(m.default_gpu_per_hour.is_some());
        assert!(
            m.gpus
                .iter()
                .any(|g| matches!(&g.matches, GpuMatch::Exact(n) if n == "NVIDIA H100 80GB HBM3"))
        );
        assert!(
            m.gpus
                .iter()
                .any(|g| matches!(&g.matches, GpuMatch::Contains(_)))
        );
        let llama = m
            .models
            .iter()
            .find(|p| p.model == "meta-llama/Llama-3.1-8B-Instruct")
            .expect("priced");
        assert!(llama.generation_per_million > llama.prompt_per_million);
        let g = c
            .gateway_settings(Path::new("strata.example.toml"), EXAMPLE)
            .expect("gateway");
        let cost = g
            .prices
            .cost(
                "meta-llama/Llama-3.1-8B-Instruct",
                Some(1_000_000),
                1_000_000,
            )
            .expect("priced");
        let want = llama.prompt_per_million + llama.generation_per_million;
        assert!((cost - want).abs() < 1e-12, "{cost} vs {want}");
        assert_eq!(&*g.prices.currency, "EUR");
        rules::load("cost.yml", &rules::cost::file(&m)).expect("the example's rules load");
    }

    #[test]
    fn no_cost_section_means_no_prices() {
        let c = parse(Path::new("s.toml"), "").expect("empty");
        assert!(c.cost.is_none());
        let g = c
            .gateway_settings(Path::new("s.toml"), "")
            .expect("gateway");
        assert!(g.prices.models.is_empty());
    }

    #[test]
    fn cost_mistakes_are_located_with_the_fix() {
        let cases = [
            (
                "[cost]\ngpu_default_per_hour = 1.0\n",
                "s.toml:1:1",
                "missing field `currency`",
            ),
            (
                "[cost]\ncurrency = \"E U R\"\n",
                "s.toml:2:12",
                "not a currency code",
            ),
            (
                "[cost]\ncurrency = \"EUR\"\ngpu_default_per_hour = -1.0\n",
                "s.toml:3:24",
                "is not a price",
            ),
            (
                "[cost]\ncurrency = \"EUR\"\n[[cost.gpu]]\nper_hour = 2.0\n",
                "s.toml:4:12",
                "names no GPU model",
            ),
            (
                "[cost]\ncurrency = \"EUR\"\n[[cost.gpu]]\nmodel_name = \"H100\"\ncontains = \"H\"\nper_hour = 2.0\n",
                "s.toml:5:12",
                "both model_name and contains",
            ),
            (
                "[cost]\ncurrency = \"EUR\"\n[[cost.gpu]]\nmodel_name = \"X\"\nper_hour = 1\n[[cost.gpu]]\nmodel_name = \"X\"\nper_hour = 2\n",
                "s.toml:7:14",
                "priced twice",
            ),
            (
                "[cost]\ncurrency = \"EUR\"\n[[cost.model]]\nname = \"m\"\nprompt_per_million = 0.1\ngeneration_per_million = nan\n",
                "s.toml:6:26",
                "is not a price",
            ),
            (
                "[cost]\ncurrency = \"EUR\"\n[[cost.model]]\nname = \"m\"\nprompt_per_million = 0.1\n",
                "s.toml:3:1",
                "missing field `generation_per_million`",
            ),
            (
                "[cost]\ncurrency = \"EUR\"\n[[cost.model]]\nname = \"m\"\nprompt_per_million = 1\ngeneration_per_million = 2\n[[cost.model]]\nname = \"m\"\nprompt_per_million = 1\ngeneration_per_million = 2\n",
                "s.toml:8:8",
                "priced twice",
            ),
            (
                "[cost]\ncurrency = \"EUR\"\n[[cost.gpu]]\nmodelName = \"X\"\nper_hour = 1\n",
                "s.toml:4:1",
                "unknown field `modelName`",
            ),
        ];
        super::super::assert_located_errors(&cases);
    }
}
