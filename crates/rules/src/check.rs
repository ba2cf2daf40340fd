//! Validation of rule files at load: every problem is reported with file, line and column,
//! group, rule, and for expressions the position inside the expression, as
//! `promtool check rules` would refuse them.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use serde_saphyr::Spanned;

use crate::file::{self, RawGroup, RawRule};
use crate::template::Template;

/// A validated group, ready to schedule.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// File the group came from (for `/api/v1/rules`).
    pub file: String,
    /// Group name.
    pub name: String,
    /// Evaluation interval; `None` uses the engine default.
    pub interval: Option<Duration>,
    /// Most series/alerts a rule may produce (0 = unlimited).
    pub limit: u64,
    /// Rules in evaluation order.
    pub rules: Vec<RuleSpec>,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub enum RuleSpec {
    /// Writes `expr`'s result as metric `name` with `labels` added.
    Recording {
        /// Metric name written.
        name: String,
        /// PromQL.
        expr: String,
        /// Labels set on every written series.
        labels: Vec<(String, String)>,
    },
    /// Raises alert `name` for every series `expr` returns.
    Alerting(AlertSpec),
}

/// A validated alerting rule.
#[derive(Debug, Clone)]
pub struct AlertSpec {
    /// Alert name (`alertname` label).
    pub name: String,
    /// PromQL.
    pub expr: String,
    /// Pending time before firing.
    pub for_: Duration,
    /// Time a firing alert keeps firing after its condition clears.
    pub keep_firing_for: Duration,
    /// Labels, templated.
    pub labels: Vec<(String, Template)>,
    /// Annotations, templated.
    pub annotations: Vec<(String, Template)>,
    /// The labels as written (for `/api/v1/rules`).
    pub raw_labels: Vec<(String, String)>,
    /// The annotations as written (for `/api/v1/rules`).
    pub raw_annotations: Vec<(String, String)>,
}

impl RuleSpec {
    /// The rule's name (record or alert).
    pub fn name(&self) -> &str {
        match self {
            RuleSpec::Recording { name, .. } => name,
            RuleSpec::Alerting(a) => &a.name,
        }
    }

    /// The rule's expression.
    pub fn expr(&self) -> &str {
        match self {
            RuleSpec::Recording { expr, .. } => expr,
            RuleSpec::Alerting(a) => &a.expr,
        }
    }
}

/// One problem in a rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    /// File name as given.
    pub file: String,
    /// 1-based line in the file (0 when unknown).
    pub line: u32,
    /// 1-based column in the file (0 when unknown).
    pub column: u32,
    /// Group name, when the problem is inside a group.
    pub group: Option<String>,
    /// 1-based index and name of the rule, when the problem is inside a rule.
    pub rule: Option<(usize, String)>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if let Some(g) = &self.group {
            write!(f, "group {g:?}, ")?;
        }
        if let Some((i, name)) = &self.rule {
            write!(f, "rule {i} {name:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Parses and validates one rule file's text. `file` names it in errors.
pub fn load(file: &str, text: &str) -> Result<Vec<GroupSpec>, Vec<RuleError>> {
    let raw = file::parse(text).map_err(|(line, column, message)| {
        vec![RuleError {
            file: file.to_string(),
            line,
            column,
            group: None,
            rule: None,
            message: format!("not a valid rule file: {message}"),
        }]
    })?;
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut seen = HashSet::new();
    for g in &raw.groups {
        let mut at = Reporter {
            file,
            group: Some(g.name.value.clone()),
            rule: None,
            errors: &mut errors,
        };
        if g.name.value.trim().is_empty() {
            at.error(&g.name, "groupname must not be empty".into());
        } else if !seen.insert(g.name.value.clone()) {
            at.error(
                &g.name,
                format!(
                    "groupname {:?} is repeated in the same file; group names must be unique",
                    g.name.value
                ),
            );
        }
        if let Some(spec) = check_group(g, &mut at) {
            groups.push(spec);
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

struct Reporter<'a> {
    file: &'a str,
    group: Option<String>,
    rule: Option<(usize, String)>,
    errors: &'a mut Vec<RuleError>,
}

impl Reporter<'_> {
    fn error<T>(&mut self, at: &Spanned<T>, message: String) {
        self.errors.push(RuleError {
            file: self.file.to_string(),
            line: at.referenced.line() as u32,
            column: at.referenced.column() as u32,
            group: self.group.clone(),
            rule: self.rule.clone(),
            message,
        });
    }

    fn duration(&mut self, d: &Option<Spanned<String>>, field: &str) -> Option<Duration> {
        let d = d.as_ref()?;
        match promql_parser::util::parse_duration(d.value.trim()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(d, format!("{field}: {e} (write e.g. 30s, 5m, 1h30m)"));
                None
            }
        }
    }
}

fn check_group(g: &RawGroup, at: &mut Reporter<'_>) -> Option<GroupSpec> {
    let before = at.errors.len();
    let interval = at.duration(&g.interval, "interval");
    if let (Some(i), Some(d)) = (&g.interval, interval)
        && d.is_zero()
    {
        at.error(i, "interval must be greater than zero".into());
    }
    let mut rules = Vec::new();
    for (i, r) in g.rules.iter().enumerate() {
        let name = r
            .record
            .as_ref()
            .or(r.alert.as_ref())
            .map(|s| s.value.clone())
            .unwrap_or_default();
        at.rule = Some((i + 1, name));
        if let Some(spec) = check_rule(r, at) {
            rules.push(spec);
        }
    }
    at.rule = None;
    (at.errors.len() == before).then(|| GroupSpec {
        file: at.file.to_string(),
        name: g.name.value.clone(),
        interval,
        limit: g.limit.unwrap_or(0),
        rules,
    })
}

fn check_rule(r: &RawRule, at: &mut Reporter<'_>) -> Option<RuleSpec> {
    let before = at.errors.len();
    let anchor = r.record.as_ref().or(r.alert.as_ref()).or(r.expr.as_ref());
    let fail = |at: &mut Reporter<'_>, msg: &str| match anchor {
        Some(a) => at.error(a, msg.to_string()),
        None => at.errors.push(RuleError {
            file: at.file.to_string(),
            line: 0,
            column: 0,
            group: at.group.clone(),
            rule: at.rule.clone(),
            message: msg.to_string(),
        }),
    };
    match (&r.record, &r.alert) {
        (Some(_), Some(_)) => fail(at, "only one of 'record' and 'alert' must be set"),
        (None, None) => fail(at, "one of 'record' or 'alert' must be set"),
        _ => {}
    }
    let expr = match &r.expr {
        Some(e) if !e.value.trim().is_empty() => {
            if let Err(msg) = promql_parser::parser::parse(&e.value) {
                at.error(e, describe_parse_error(&e.value, &msg));
            }
            e.value.clone()
        }
        _ => {
            fail(at, "field 'expr' must be set in rule");
            String::new()
        }
    };
    for k in r.labels.keys() {
        if !strata_core::labels::valid_name(k) || k == "__name__" {
            fail(
                at,
                &format!("invalid label name: {k:?} (use [a-zA-Z_][a-zA-Z0-9_]*, not __name__)"),
            );
        }
    }
    for k in r.annotations.keys() {
        if !strata_core::labels::valid_name(k) {
            fail(at, &format!("invalid annotation name: {k:?}"));
        }
    }
    let for_ = at.duration(&r.for_, "for").unwrap_or_default();
    let keep = at
        .duration(&r.keep_firing_for, "keep_firing_for")
        .unwrap_or_default();
    if let Some(rec) = &r.record {
        if !r.annotations.is_empty() {
            at.error(rec, "invalid field 'annotations' in recording rule".into());
        }
        if r.for_.is_some() {
            at.error(rec, "invalid field 'for' in recording rule".into());
        }
        if r.keep_firing_for.is_some() {
            at.error(
                rec,
                "invalid field 'keep_firing_for' in recording rule".into(),
            );
        }
        if !strata_core::labels::valid_metric_name(&rec.value) {
            at.error(
                rec,
                format!(
                    "invalid recording rule name: {:?} (use [a-zA-Z_:][a-zA-Z0-9_:]*)",
                    rec.value
                ),
            );
        }
        return (at.errors.len() == before).then(|| RuleSpec::Recording {
            name: rec.value.clone(),
            expr,
            labels: r
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        });
    }
    let alert = r.alert.as_ref()?;
    let labels = templates(&r.labels, "label", alert, at);
    let annotations = templates(&r.annotations, "annotation", alert, at);
    (at.errors.len() == before).then(|| {
        RuleSpec::Alerting(AlertSpec {
            name: alert.value.clone(),
            expr,
            for_,
            keep_firing_for: keep,
            labels,
            annotations,
            raw_labels: r
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            raw_annotations: r
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    })
}

fn templates(
    map: &std::collections::BTreeMap<String, String>,
    kind: &str,
    anchor: &Spanned<String>,
    at: &mut Reporter<'_>,
) -> Vec<(String, Template)> {
    let mut out = Vec::new();
    for (k, v) in map {
        match Template::parse(v) {
            Ok(t) => out.push((k.clone(), t)),
            Err(e) => at.error(anchor, format!("{kind} {k:?}: {e}")),
        }
    }
    out
}

/// promql-parser's message plus where in the expression it is (`tsdb`'s locator).
fn describe_parse_error(expr: &str, msg: &str) -> String {
    match tsdb::promql::parse_error_place(expr, msg) {
        Some(place) => format!("could not parse expression: {place}: {msg}"),
        None => format!("could not parse expression: {msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match load("r.yml", text) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn good_file_loads_with_types() {
        let text = "groups:\n- name: vllm\n  interval: 15s\n  rules:\n  - record: job:x:rate5m\n    expr: sum(rate(x[5m]))\n  - alert: QueueHigh\n    expr: vllm:num_requests_waiting > 10\n    for: 2m\n    keep_firing_for: 1m\n    labels: {severity: page}\n    annotations:\n      summary: '{{ $labels.model }} queue {{ $value }}'\n";
        let groups = load("r.yml", text).expect("valid");
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].interval, Some(Duration::from_secs(15)));
        let RuleSpec::Alerting(a) = &groups[0].rules[1] else {
            panic!("second rule is an alert");
        };
        assert_eq!(
            (a.for_, a.keep_firing_for),
            (Duration::from_secs(120), Duration::from_secs(60))
        );
    }

    #[test]
    fn expression_errors_point_into_the_expression() {
        let e = errors("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(rate(x[5m])\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("r.yml:5:11: group \"g\", rule 1 \"A\": could not parse expression: 1:4 (near \"(rate(x[5m])\"): unclosed left parenthesis"), "{}", e[0]);
        let e = errors("groups:\n- name: g\n  rules:\n  - record: r\n    expr: up + bogus(up)\n");
        assert!(
            e[0].contains("1:6 (near \"bogus(up)\"): unknown function with name 'bogus'"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn structural_errors_are_all_reported() {
        let e = errors(concat!(
            "groups:\n- name: g\n  rules:\n",
            "  - record: bad name\n    expr: up\n    for: 5m\n",
            "  - alert: A\n    record: B\n    expr: up\n",
            "  - alert: C\n",
            "  - alert: D\n    expr: up\n    for: 5 minutes\n    annotations: {s: '{{ if $value }}'}\n",
            "- name: g\n  rules: []\n",
        ));
        let all = e.join("\n");
        for want in [
            "invalid recording rule name",
            "invalid field 'for' in recording rule",
            "only one of 'record' and 'alert' must be set",
            "field 'expr' must be set",
            "for: ",
            "annotation \"s\"",
            "is repeated in the same file",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
    }

    #[test]
    fn yaml_errors_and_unknown_fields_have_positions() {
        let e = errors("groups:\n- name: g\n  rulez: []\n");
        assert!(e[0].starts_with("r.yml:3:"), "{e:?}");
        assert!(!errors("groups: [\n").is_empty());
        assert!(errors("").is_empty());
    }
}
