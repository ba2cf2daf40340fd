//! Writing rule files: generated rule groups rendered as readable Prometheus YAML (comments
//! kept, one expression alternative per line), the same text Strata evaluates and exports.

use std::fmt::Write;

/// A rule group to write.
#[derive(Debug, Clone, Default)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Evaluation interval (`15s`), or the evaluator's default.
    pub interval: Option<String>,
    /// Comment lines written above the group.
    pub comment: Vec<String>,
    /// The rules, in evaluation order.
    pub rules: Vec<Rule>,
}

/// A recording or alerting rule to write.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    /// Comment lines written above the rule.
    pub comment: Vec<String>,
    /// `record:` name, or (when `alert` is set) unused.
    pub record: Option<String>,
    /// `alert:` name.
    pub alert: Option<String>,
    /// PromQL; lines are kept as written.
    pub expr: String,
    /// `for:` duration.
    pub for_: Option<String>,
    /// Labels.
    pub labels: Vec<(String, String)>,
    /// Annotations (alerts only).
    pub annotations: Vec<(String, String)>,
}

/// A YAML single-quoted scalar (only `'` needs escaping).
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn comments(out: &mut String, indent: &str, lines: &[String]) {
    for l in lines {
        let _ = writeln!(out, "{indent}# {l}");
    }
}

fn scalar(out: &mut String, indent: &str, key: &str, value: &str) {
    if value.contains('\n') {
        let _ = writeln!(out, "{indent}{key}: |-");
        for l in value.lines() {
            let _ = writeln!(out, "{indent}  {l}");
        }
    } else {
        let _ = writeln!(out, "{indent}{key}: {}", quote(value));
    }
}

fn map(out: &mut String, key: &str, pairs: &[(String, String)]) {
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(out, "    {key}:");
    for (k, v) in pairs {
        scalar(out, "      ", k, v);
    }
}

/// Renders `groups` as a rule file, `header` lines as the leading comment.
pub fn render(header: &[String], groups: &[Group]) -> String {
    let mut out = String::new();
    comments(&mut out, "", header);
    out.push_str("groups:\n");
    for g in groups {
        comments(&mut out, "", &g.comment);
        let _ = writeln!(out, "- name: {}", quote(&g.name));
        if let Some(i) = &g.interval {
            let _ = writeln!(out, "  interval: {i}");
        }
        out.push_str("  rules:\n");
        for r in &g.rules {
            comments(&mut out, "  ", &r.comment);
            match (&r.alert, &r.record) {
                (Some(a), _) => {
                    let _ = writeln!(out, "  - alert: {a}");
                }
                (None, Some(rec)) => {
                    let _ = writeln!(out, "  - record: {rec}");
                }
                (None, None) => continue,
            }
            scalar(&mut out, "    ", "expr", &r.expr);
            if let Some(f) = &r.for_ {
                let _ = writeln!(out, "    for: {f}");
            }
            map(&mut out, "labels", &r.labels);
            map(&mut out, "annotations", &r.annotations);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_file_the_loader_accepts_with_quotes_and_multiline_exprs() {
        let g = Group {
            name: "g".into(),
            interval: Some("10s".into()),
            comment: vec!["a group".into()],
            rules: vec![
                Rule {
                    record: Some("llm:x".into()),
                    expr: "a{b=\"it's\"}\nor\nc".into(),
                    labels: vec![("k".into(), "v".into())],
                    ..Rule::default()
                },
                Rule {
                    alert: Some("A".into()),
                    expr: "up == 0".into(),
                    for_: Some("1m".into()),
                    annotations: vec![("summary".into(), "{{ $labels.instance }} is down".into())],
                    ..Rule::default()
                },
            ],
        };
        let text = render(&["header".into()], &[g]);
        assert!(
            text.starts_with("# header\ngroups:\n# a group\n- name: 'g'\n"),
            "{text}"
        );
        let groups = crate::load("t.yml", &text).expect("valid");
        assert_eq!(groups[0].rules[0].expr(), "a{b=\"it's\"}\nor\nc");
        assert_eq!(groups[0].rules[1].name(), "A");
        assert_eq!(groups[0].interval, Some(std::time::Duration::from_secs(10)));
    }
}
