//! `[[slo]]`: SLO profiles beside the built-in `chat`, `rag` and `code` — a custom name
//! with its own targets, or a built-in name with some targets changed. `strata up`
//! evaluates the one its `slo_profile` names; `strata diagnose --slo NAME` reports one
//! over its window.

use std::path::Path;
use std::time::Duration;

use rules::slo::SloProfile;
use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;
use super::schema::{Config, duration};

/// One `[[slo]]` entry; unset keys take the built-in profile's value (same name) or
/// Strata's defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSection {
    /// Profile name: the `profile` label of the SLO series.
    pub name: Spanned<String>,
    /// Regex of the `model` label values the profile covers.
    pub models: Option<Spanned<String>>,
    /// p95 time-to-first-token target.
    #[serde(default, deserialize_with = "duration")]
    pub ttft_p95: Option<Spanned<Duration>>,
    /// p95 inter-token-latency target.
    #[serde(default, deserialize_with = "duration")]
    pub itl_p95: Option<Spanned<Duration>>,
    /// Share of requests that must meet the latency targets.
    pub latency_objective: Option<Spanned<f64>>,
    /// Share of requests that must complete (2xx with a finish reason).
    pub success_objective: Option<Spanned<f64>>,
    /// Share of requests that must end on `stop`.
    pub completeness_objective: Option<Spanned<f64>>,
    /// Queue depth the engine must stay under (capacity headroom).
    pub queue_limit: Option<Spanned<f64>>,
    /// Share of time the queue must stay under `queue_limit`.
    pub headroom_objective: Option<Spanned<f64>>,
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

impl SloSection {
    /// The profile, checked; errors point at the offending key.
    fn profile(&self, path: &Path, text: &str) -> Result<SloProfile, ConfigError> {
        let at = |span, message: String, fix: &str| {
            ConfigError::at(path, text, Some(span), message, fix.to_string())
        };
        let name = self.name.get_ref();
        if !valid_name(name) {
            return Err(at(
                self.name.span(),
                format!("SLO profile name {name:?} is not a plain name"),
                "use lowercase letters, digits, `-` and `_` (it becomes the `profile` label)",
            ));
        }
        let builtin = SloProfile::builtin().into_iter().find(|p| &p.name == name);
        let target = |d: &Option<Spanned<Duration>>, key: &str| -> Result<f64, ConfigError> {
            match (d, &builtin) {
                (Some(d), _) => Ok(d.get_ref().as_secs_f64()),
                (None, Some(b)) => Ok(if key == "ttft_p95" {
                    b.ttft_seconds
                } else {
                    b.itl_seconds
                }),
                (None, None) => Err(at(
                    self.name.span(),
                    format!("SLO profile {name:?} has no {key}"),
                    &format!(
                        "add `{key} = \"...\"` (like \"1s\" or \"80ms\"): only the built-in chat, rag and code have defaults"
                    ),
                )),
            }
        };
        let mut p = builtin
            .clone()
            .unwrap_or_else(|| SloProfile::custom(name, 0.0, 0.0));
        p.ttft_seconds = target(&self.ttft_p95, "ttft_p95")?;
        p.itl_seconds = target(&self.itl_p95, "itl_p95")?;
        if let Some(m) = &self.models {
            p.models = m.get_ref().clone();
            // The rules the profile makes are the check: each matcher compiles the regex.
            if let Err(e) = rules::load("slo", &rules::slo::file(&p)) {
                return Err(at(
                    m.span(),
                    format!("models does not make valid rules: {}", e[0]),
                    "write a regular expression over model names, like \"llama-.*\"",
                ));
            }
        }
        let shares = [
            (&self.latency_objective, &mut p.latency_objective),
            (&self.success_objective, &mut p.success_objective),
            (&self.completeness_objective, &mut p.completeness_objective),
            (&self.headroom_objective, &mut p.headroom_objective),
        ];
        for (value, slot) in shares {
            if let Some(v) = value {
                if !(*v.get_ref() > 0.0 && *v.get_ref() < 1.0) {
                    return Err(at(
                        v.span(),
                        format!("objective {} is not a share", v.get_ref()),
                        "write an objective between 0 and 1, like 0.95 (95 % of requests)",
                    ));
                }
                *slot = *v.get_ref();
            }
        }
        if let Some(q) = &self.queue_limit {
            if !(*q.get_ref() > 0.0 && q.get_ref().is_finite()) {
                return Err(at(
                    q.span(),
                    format!("queue_limit {} is not a positive depth", q.get_ref()),
                    "write the queue depth the engine should stay under, like 10",
                ));
            }
            p.queue_limit = *q.get_ref();
        }
        Ok(p)
    }
}

impl Config {
    /// The `[[slo]]` profiles, checked: names unique, targets present and positive.
    pub fn slo_profiles(&self, path: &Path, text: &str) -> Result<Vec<SloProfile>, ConfigError> {
        let mut out: Vec<SloProfile> = Vec::new();
        for s in &self.slos {
            let p = s.profile(path, text)?;
            if out.iter().any(|o| o.name == p.name) {
                return Err(ConfigError::at(
                    path,
                    text,
                    Some(s.name.span()),
                    format!("SLO profile {:?} is defined twice", p.name),
                    "give each [[slo]] its own name".into(),
                ));
            }
            out.push(p);
        }
        Ok(out)
    }

    /// The SLO profile called `name`: a configured `[[slo]]` first, else a built-in one.
    pub fn slo_profile(&self, name: &str) -> Result<SloProfile, String> {
        // The config was validated when it was loaded; a default config has no [[slo]].
        let configured = self
            .slo_profiles(Path::new("strata.toml"), "")
            .map_err(|e| e.to_string())?;
        let mut all = configured;
        for b in SloProfile::builtin() {
            if !all.iter().any(|p| p.name == b.name) {
                all.push(b);
            }
        }
        let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
        let list = names.join(", ");
        all.iter().find(|p| p.name == name).cloned().ok_or_else(|| {
            format!("unknown SLO profile {name:?}: one of {list} (add custom ones as [[slo]] in strata.toml)")
        })
    }

    /// The rule groups of SLO profile `name` (SLI recording rules and burn-rate alerts), for
    /// `strata up` and `strata diagnose --slo`.
    pub fn slo_rule_groups(&self, name: &str) -> Result<Vec<rules::GroupSpec>, String> {
        let p = self.slo_profile(name)?;
        let file = format!("slo-{}.yml", p.name);
        rules::load(&file, &rules::slo::file(&p)).map_err(|e| {
            let lines: Vec<String> = e.iter().map(ToString::to_string).collect();
            format!(
                "SLO profile {name:?} makes invalid rules: {}",
                lines.join("; ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::parse;

    #[test]
    fn custom_and_overridden_profiles_resolve_with_defaults() {
        let text = "[[slo]]\nname = \"batch\"\nmodels = \"llama-.*\"\nttft_p95 = \"10s\"\nitl_p95 = \"200ms\"\nqueue_limit = 50\n\n[[slo]]\nname = \"chat\"\nttft_p95 = \"700ms\"\n";
        let c = parse(Path::new("s.toml"), text).expect("valid");
        let batch = c.slo_profile("batch").expect("configured");
        assert_eq!(
            (batch.ttft_seconds, batch.itl_seconds, batch.queue_limit),
            (10.0, 0.2, 50.0)
        );
        assert_eq!(
            (batch.models.as_str(), batch.latency_objective),
            ("llama-.*", 0.95)
        );
        let chat = c.slo_profile("chat").expect("overridden built-in");
        assert_eq!((chat.ttft_seconds, chat.itl_seconds), (0.7, 0.08));
        assert_eq!(c.slo_profile("code").expect("built-in").ttft_seconds, 0.5);
        let e = c.slo_profile("nope").expect_err("unknown");
        assert!(e.contains("batch, chat, rag, code"), "{e}");
        let groups = c.slo_rule_groups("batch").expect("groups");
        assert_eq!(groups.len(), 2);
        assert!(
            groups.iter().any(|g| g.name == "slo-batch-alerts"),
            "{groups:?}"
        );
    }

    #[test]
    fn bad_entries_name_line_column_and_fix() {
        let cases = [
            (
                "[[slo]]\nname = \"batch\"\nitl_p95 = \"1s\"\n",
                "s.toml:2:8",
                "ttft_p95",
            ),
            ("[[slo]]\nname = \"Bad Name\"\n", "s.toml:2:8", "lowercase"),
            (
                "[[slo]]\nname = \"chat\"\nlatency_objective = 95\n",
                "s.toml:3:21",
                "between 0 and 1",
            ),
            (
                "[[slo]]\nname = \"chat\"\nmodels = \"(\"\n",
                "s.toml:3:10",
                "regular expression",
            ),
            (
                "[[slo]]\nname = \"chat\"\nqueue_limit = -1\n",
                "s.toml:3:15",
                "queue depth",
            ),
            (
                "[[slo]]\nname = \"chat\"\nttft_p95 = \"soon\"\n",
                "s.toml:3:12",
                "duration",
            ),
            (
                "[[slo]]\nname = \"chat\"\n[[slo]]\nname = \"chat\"\n",
                "s.toml:4:8",
                "twice",
            ),
            (
                "[[slo]]\nname = \"chat\"\nttft = \"1s\"\n",
                "s.toml:3:1",
                "unknown field",
            ),
        ];
        crate::assert_located_errors(&cases);
    }
}
