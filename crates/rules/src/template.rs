//! The subset of Go's text/template that Prometheus alert and recording rules use, parsed at
//! load (so a bad template is a load error with its offset) and rendered per alert.
//!
//! Supported: text with `{{ … }}` actions and `{{-`/`-}}` trimming; `$labels.NAME`,
//! `$value`, `$externalLabels.NAME`, `$externalURL`, `.Labels.NAME`, `.Value`; string and
//! number literals; pipelines `a | f`; the functions `humanize`, `humanize1024`,
//! `humanizePercentage`, `humanizeDuration`, `printf`, `toUpper`, `toLower`, `title`; and
//! `{{ if PIPELINE }} … {{ else }} … {{ end }}` with Go's truthiness (an empty string and 0
//! are false), so a label that may be missing is left out instead of printing `()`.
//! Anything else (`range`, `with`, `query`, `:=`, parentheses) is refused at load with the
//! offending word named, rather than rendered wrongly.

use std::fmt;

use crate::humanize;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

/// A template that cannot be parsed: byte offset in the source and why.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    /// Byte offset of the problem in the template source.
    pub offset: usize,
    /// What is wrong and what is supported instead.
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "template error at offset {}: {}",
            self.offset, self.message
        )
    }
}

/// What a template sees: the alert's labels and value, and Strata's external labels/URL.
#[derive(Debug, Clone, Copy)]
pub struct Data<'a> {
    /// The alert's labels (the sample's labels; `__name__` removed).
    pub labels: &'a [(String, String)],
    /// The sample value.
    pub value: f64,
    /// Labels Strata adds to everything it sends out.
    pub external_labels: &'a [(String, String)],
    /// Strata's own URL.
    pub external_url: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Vec<Command>),
    /// `{{ if cond }} then {{ else }} otherwise {{ end }}`.
    If {
        cond: Vec<Command>,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// An `if` being parsed: its condition, and whether `else` was seen.
struct OpenIf {
    offset: usize,
    cond: Vec<Command>,
    then: Vec<Node>,
    in_else: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Command {
    Operand(Operand),
    Call(Func, Vec<Operand>),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Labels(Source, Option<String>),
    Value,
    ExternalUrl,
    Str(String),
    Num(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    Alert,
    External,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Humanize,
    Humanize1024,
    HumanizePercentage,
    HumanizeDuration,
    Printf,
    ToUpper,
    ToLower,
    Title,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "humanize" => Func::Humanize,
            "humanize1024" => Func::Humanize1024,
            "humanizePercentage" => Func::HumanizePercentage,
            "humanizeDuration" => Func::HumanizeDuration,
            "printf" => Func::Printf,
            "toUpper" => Func::ToUpper,
            "toLower" => Func::ToLower,
            "title" => Func::Title,
            _ => return None,
        })
    }
}

const SUPPORTED: &str = "supported: $labels.NAME, $value, $externalLabels.NAME, $externalURL, \
                         .Labels.NAME, .Value, literals, pipelines and humanize, humanize1024, \
                         humanizePercentage, humanizeDuration, printf, toUpper, toLower, title";

/// A rendered value before it becomes text.
#[derive(Debug, Clone)]
enum Val {
    Str(String),
    Num(f64),
}

impl Val {
    fn text(&self) -> String {
        match self {
            Val::Str(s) => s.clone(),
            Val::Num(v) => go_v(*v),
        }
    }

    fn num(&self) -> Result<f64, String> {
        match self {
            Val::Num(v) => Ok(*v),
            Val::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a number")),
        }
    }
}

impl Template {
    /// Parses `src`.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        // `nodes` is the list being filled: the template's, or an open `if`'s branch.
        let mut nodes = Vec::new();
        let mut frames: Vec<(OpenIf, Vec<Node>)> = Vec::new();
        let mut rest = 0;
        while let Some(open) = src[rest..].find("{{").map(|i| rest + i) {
            let mut text = &src[rest..open];
            let mut start = open + 2;
            if src[start..].starts_with("- ") || src[start..].starts_with("-\t") {
                text = text.trim_end();
                start += 1;
            }
            push_text(&mut nodes, text);
            let close = find_close(src, start).ok_or_else(|| TemplateError {
                offset: open,
                message: "unclosed action: `{{` without `}}`".into(),
            })?;
            let (body, trim_after) = match src[start..close].strip_suffix(" -") {
                Some(b) => (b, true),
                None => (&src[start..close], false),
            };
            let keyword = body.split_whitespace().next().unwrap_or_default();
            match keyword {
                "if" => {
                    let after = body.find("if").map_or(0, |i| i + 2);
                    if body[after..].trim().is_empty() {
                        return Err(TemplateError {
                            offset: start,
                            message: "`if` needs a condition".into(),
                        });
                    }
                    let cond = parse_action(&body[after..], start + after)?;
                    let frame = OpenIf {
                        offset: open_at(src, start),
                        cond,
                        then: Vec::new(),
                        in_else: false,
                    };
                    frames.push((frame, std::mem::take(&mut nodes)));
                }
                "else" | "end" => {
                    let Some((mut frame, outer)) = frames.pop() else {
                        return Err(TemplateError {
                            offset: start,
                            message: format!("`{keyword}` without an open `if`"),
                        });
                    };
                    if body.split_whitespace().count() > 1 {
                        return Err(TemplateError {
                            offset: start,
                            message: format!("`{keyword}` takes nothing after it (no `else if`)"),
                        });
                    }
                    if keyword == "else" {
                        if frame.in_else {
                            return Err(TemplateError {
                                offset: start,
                                message: "a second `else` in one `if`".into(),
                            });
                        }
                        frame.then = std::mem::take(&mut nodes);
                        frame.in_else = true;
                        frames.push((frame, outer));
                    } else {
                        let branch = std::mem::take(&mut nodes);
                        let (then, otherwise) = if frame.in_else {
                            (frame.then, branch)
                        } else {
                            (branch, Vec::new())
                        };
                        nodes = outer;
                        nodes.push(Node::If {
                            cond: frame.cond,
                            then,
                            otherwise,
                        });
                    }
                }
                _ => {
                    let commands = parse_action(body, start)?;
                    if !commands.is_empty() {
                        nodes.push(Node::Action(commands));
                    }
                }
            }
            rest = close + 2;
            if trim_after {
                rest += src[rest..].len() - src[rest..].trim_start().len();
            }
        }
        push_text(&mut nodes, &src[rest..]);
        if let Some((frame, _)) = frames.pop() {
            return Err(TemplateError {
                offset: frame.offset,
                message: "`if` without `{{ end }}`".into(),
            });
        }
        Ok(Template { nodes })
    }

    /// Renders with `data`; an error names the failing function and argument.
    pub fn render(&self, data: &Data<'_>) -> Result<String, String> {
        let mut out = String::new();
        render_nodes(&self.nodes, data, &mut out)?;
        Ok(out)
    }
}

fn render_nodes(nodes: &[Node], data: &Data<'_>, out: &mut String) -> Result<(), String> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(commands) => {
                if let Some(v) = pipeline(commands, data)? {
                    out.push_str(&v.text());
                }
            }
            Node::If {
                cond,
                then,
                otherwise,
            } => {
                let truthy = pipeline(cond, data)?.is_some_and(|v| match v {
                    Val::Str(s) => !s.is_empty(),
                    Val::Num(n) => n != 0.0,
                });
                render_nodes(if truthy { then } else { otherwise }, data, out)?;
            }
        }
    }
    Ok(())
}

/// The value of a pipeline: each command's result piped into the next.
fn pipeline(commands: &[Command], data: &Data<'_>) -> Result<Option<Val>, String> {
    let mut piped: Option<Val> = None;
    for cmd in commands {
        piped = Some(run(cmd, piped, data)?);
    }
    Ok(piped)
}

/// Where the action whose body starts at `body_start` opens (`{{`, or `{{-`).
fn open_at(src: &str, body_start: usize) -> usize {
    src[..body_start].rfind("{{").unwrap_or(0)
}

fn push_text(nodes: &mut Vec<Node>, text: &str) {
    if !text.is_empty() {
        nodes.push(Node::Text(text.to_string()));
    }
}

/// The `}}` closing the action that starts at `from`, skipping string literals.
fn find_close(src: &str, from: usize) -> Option<usize> {
    let bytes = src.as_bytes();
    let mut i = from;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == b'\\' && q == b'"' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'`' => quote = Some(b),
            None if b == b'}' && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

/// Splits an action into words (keeping string literals whole), with their offsets.
fn words(body: &str, base: usize) -> Result<Vec<(usize, String)>, TemplateError> {
    let mut out = Vec::new();
    let mut chars = body.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '|' {
            out.push((base + i, "|".to_string()));
            chars.next();
            continue;
        }
        if c == '"' || c == '`' {
            chars.next();
            let mut lit = String::new();
            let mut closed = false;
            while let Some((_, d)) = chars.next() {
                if d == c {
                    closed = true;
                    break;
                }
                if d == '\\' && c == '"' {
                    match chars.next().map(|(_, e)| e) {
                        Some('n') => lit.push('\n'),
                        Some('t') => lit.push('\t'),
                        Some(e) => lit.push(e),
                        None => break,
                    }
                } else {
                    lit.push(d);
                }
            }
            if !closed {
                return Err(TemplateError {
                    offset: base + i,
                    message: "unterminated string literal".into(),
                });
            }
            out.push((base + i, format!("\"{lit}")));
            continue;
        }
        let mut word = String::new();
        while let Some(&(_, d)) = chars.peek() {
            if d.is_whitespace() || d == '|' {
                break;
            }
            word.push(d);
            chars.next();
        }
        out.push((base + i, word));
    }
    Ok(out)
}

fn parse_action(body: &str, base: usize) -> Result<Vec<Command>, TemplateError> {
    let words = words(body, base)?;
    let mut commands = Vec::new();
    for segment in words.split(|(_, w)| w == "|") {
        let Some(((first_at, first), args)) = segment.split_first() else {
            return Err(TemplateError {
                offset: base,
                message: "empty command in pipeline".into(),
            });
        };
        let cmd = match Func::from_name(first) {
            Some(f) => Command::Call(
                f,
                args.iter()
                    .map(|(at, w)| operand(*at, w))
                    .collect::<Result<_, _>>()?,
            ),
            None if args.is_empty() => Command::Operand(operand(*first_at, first)?),
            None => {
                return Err(TemplateError {
                    offset: *first_at,
                    message: format!(
                        "`{first}` is not a function Strata's templates know ({SUPPORTED})"
                    ),
                });
            }
        };
        commands.push(cmd);
    }
    Ok(commands)
}

fn operand(at: usize, word: &str) -> Result<Operand, TemplateError> {
    if let Some(lit) = word.strip_prefix('"') {
        return Ok(Operand::Str(lit.to_string()));
    }
    if let Ok(n) = word.parse::<f64>() {
        return Ok(Operand::Num(n));
    }
    let (root, field) = match word.split_once('.') {
        Some(("", rest)) => match rest.split_once('.') {
            Some((r, f)) => (format!(".{r}"), Some(f)),
            None => (format!(".{rest}"), None),
        },
        Some((r, f)) => (r.to_string(), Some(f)),
        None => (word.to_string(), None),
    };
    let field = field.map(str::to_string);
    let op = match (root.as_str(), &field) {
        ("$labels" | ".Labels", _) => Operand::Labels(Source::Alert, field),
        ("$externalLabels" | ".ExternalLabels", _) => Operand::Labels(Source::External, field),
        ("$value" | ".Value", None) => Operand::Value,
        ("$externalURL" | ".ExternalURL", None) => Operand::ExternalUrl,
        _ => {
            return Err(TemplateError {
                offset: at,
                message: format!("`{word}` is not supported ({SUPPORTED})"),
            });
        }
    };
    if matches!(&op, Operand::Labels(_, Some(f)) if f.contains('.')) {
        return Err(TemplateError {
            offset: at,
            message: format!("`{word}`: labels have no nested fields"),
        });
    }
    Ok(op)
}

fn eval(op: &Operand, data: &Data<'_>) -> Result<Val, String> {
    Ok(match op {
        Operand::Labels(src, field) => {
            let set = match src {
                Source::Alert => data.labels,
                Source::External => data.external_labels,
            };
            match field {
                Some(name) => Val::Str(
                    set.iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                ),
                None => {
                    let pairs: Vec<String> = set.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    Val::Str(format!("map[{}]", pairs.join(" ")))
                }
            }
        }
        Operand::Value => Val::Num(data.value),
        Operand::ExternalUrl => Val::Str(data.external_url.to_string()),
        Operand::Str(s) => Val::Str(s.clone()),
        Operand::Num(n) => Val::Num(*n),
    })
}

fn run(cmd: &Command, piped: Option<Val>, data: &Data<'_>) -> Result<Val, String> {
    let (func, ops) = match cmd {
        Command::Operand(op) if piped.is_none() => return eval(op, data),
        Command::Operand(_) => return Err("a value cannot take piped input".into()),
        Command::Call(f, ops) => (*f, ops),
    };
    let mut args: Vec<Val> = ops
        .iter()
        .map(|o| eval(o, data))
        .collect::<Result<_, _>>()?;
    args.extend(piped);
    let one = |args: &[Val]| -> Result<Val, String> {
        match args {
            [v] => Ok(v.clone()),
            _ => Err(format!("{func:?} takes one argument, got {}", args.len())),
        }
    };
    Ok(match func {
        Func::Humanize => Val::Str(humanize::humanize(one(&args)?.num()?)),
        Func::Humanize1024 => Val::Str(humanize::humanize1024(one(&args)?.num()?)),
        Func::HumanizePercentage => Val::Str(humanize::humanize_percentage(one(&args)?.num()?)),
        Func::HumanizeDuration => Val::Str(humanize::humanize_duration(one(&args)?.num()?)),
        Func::ToUpper => Val::Str(one(&args)?.text().to_uppercase()),
        Func::ToLower => Val::Str(one(&args)?.text().to_lowercase()),
        Func::Title => Val::Str(title(&one(&args)?.text())),
        Func::Printf => match args.split_first() {
            Some((Val::Str(format), rest)) => Val::Str(printf(format, rest)?),
            _ => return Err("printf needs a format string first".into()),
        },
    })
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(v, 'g', -1, 64)`): shortest digits,
/// exponent form when the decimal exponent is < -4 or >= 6 (`1e+06`, `1.234567e+06`).
fn go_v(v: f64) -> String {
    if !v.is_finite() {
        return humanize::go_g(v, 4);
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// `printf` with the verbs rules use: `%s %v %d %f %g %e %%`, optional precision.
fn printf(format: &str, args: &[Val]) -> Result<String, String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut precision = String::new();
        if chars.peek() == Some(&'.') {
            chars.next();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                precision.push(*d);
                chars.next();
            }
        }
        let prec: Option<usize> = precision.parse().ok();
        let verb = chars.next().ok_or("printf format ends with %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args
            .next()
            .ok_or_else(|| format!("printf: no argument for %{verb}"))?;
        match verb {
            's' | 'v' => out.push_str(&arg.text()),
            'd' => out.push_str(&format!("{}", arg.num()?.trunc() as i64)),
            'f' => out.push_str(&format!("{:.*}", prec.unwrap_or(6), arg.num()?)),
            'e' => out.push_str(&format!("{:.*e}", prec.unwrap_or(6), arg.num()?)),
            'g' => out.push_str(&match prec {
                Some(p) => humanize::go_g(arg.num()?, p),
                None => go_v(arg.num()?),
            }),
            other => {
                return Err(format!(
                    "printf verb %{other} is not supported (use %s %v %d %f %g %e)"
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, value: f64) -> String {
        let labels = vec![
            ("instance".to_string(), "gpu-0:8000".to_string()),
            ("model".to_string(), "llama-3-8b".to_string()),
        ];
        let ext = vec![("cluster".to_string(), "eu-1".to_string())];
        let data = Data {
            labels: &labels,
            value,
            external_labels: &ext,
            external_url: "http://strata:9464",
        };
        Template::parse(src)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .render(&data)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn renders_prometheus_rule_idioms() {
        assert_eq!(
            render(
                "{{ $labels.model }} on {{ $labels.instance }} queues {{ $value }}",
                12.0
            ),
            "llama-3-8b on gpu-0:8000 queues 12"
        );
        assert_eq!(render("{{ $value | humanizePercentage }}", 0.934), "93.4%");
        assert_eq!(render("p99 {{ humanizeDuration $value }}", 2.5), "p99 2.5s");
        assert_eq!(render("{{ .Value | humanize }}B", 1234567.0), "1.235MB");
        assert_eq!(render("{{ humanize1024 $value }}", 1073741824.0), "1Gi");
        assert_eq!(render(r#"{{ printf "%.2f" $value }}"#, 1.0 / 3.0), "0.33");
        assert_eq!(render("{{ $labels.missing }}|", 0.0), "|");
        assert_eq!(
            render("{{ $externalLabels.cluster }} {{ $externalURL }}", 0.0),
            "eu-1 http://strata:9464"
        );
        assert_eq!(render("{{ .Labels.model | toUpper }}", 0.0), "LLAMA-3-8B");
        assert_eq!(render("a  {{- $value -}}  b", 1.5), "a1.5b");
        assert_eq!(render(r#"{{ "x}}y" }}"#, 0.0), "x}}y");
        assert_eq!(render("{{ $value }}", 1e21), "1e+21");
        assert_eq!(render("{{ $value }}", 0.00001), "1e-05");
        assert_eq!(render("{{ $value }}", 1234567.0), "1.234567e+06");
        assert_eq!(render("{{ $value }}", 123456.0), "123456");
        assert_eq!(render("no actions", 0.0), "no actions");
    }

    #[test]
    fn if_else_end_with_go_truthiness() {
        let t = "on {{ $labels.instance }}{{ if $labels.model }} ({{ $labels.model }}){{ end }}";
        assert_eq!(render(t, 0.0), "on gpu-0:8000 (llama-3-8b)");
        let parsed = Template::parse(t).expect("parses");
        let bare = [("instance".to_string(), "127.0.0.1:8080".to_string())];
        let data = Data {
            labels: &bare,
            value: 0.0,
            external_labels: &[],
            external_url: "",
        };
        assert_eq!(parsed.render(&data).expect("renders"), "on 127.0.0.1:8080");
        assert_eq!(
            render("{{ if $value }}busy{{ else }}idle{{ end }}", 0.0),
            "idle"
        );
        assert_eq!(
            render(
                "{{ if $value }}busy {{ $value }}{{ else }}idle{{ end }}",
                2.0
            ),
            "busy 2"
        );
        assert_eq!(
            render(
                "{{ if $labels.model }}{{ if $labels.nope }}x{{ else }}y{{ end }}{{ end }}",
                0.0
            ),
            "y"
        );
        for (bad, offset, word) in [
            ("a {{ if $value }}x", 2, "without `{{ end }}`"),
            ("{{ end }}", 2, "without an open `if`"),
            ("{{ if }}x{{ end }}", 2, "needs a condition"),
            (
                "{{ if $value }}a{{ else }}b{{ else }}c{{ end }}",
                29,
                "second `else`",
            ),
            (
                "{{ if $value }}a{{ else if $value }}b{{ end }}",
                18,
                "no `else if`",
            ),
        ] {
            let err = Template::parse(bad).expect_err(bad);
            assert_eq!(err.offset, offset, "{bad}: {}", err.message);
            assert!(err.message.contains(word), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn refuses_what_it_does_not_implement_with_offsets() {
        let err = Template::parse("ok {{ range $labels }}x{{ end }}").expect_err("range");
        assert_eq!(err.offset, 6);
        assert!(err.message.contains("`range`"), "{}", err.message);
        let err = Template::parse("{{ $labels.model").expect_err("unclosed");
        assert_eq!(err.offset, 0);
        assert!(Template::parse("{{ $foo }}").is_err());
        assert!(Template::parse("{{ query \"up\" }}").is_err());
        assert!(Template::parse("{{ \"abc }}").is_err());
    }

    #[test]
    fn render_errors_name_the_problem() {
        let t = Template::parse("{{ humanize \"abc\" }}").expect("parses");
        let data = Data {
            labels: &[],
            value: 0.0,
            external_labels: &[],
            external_url: "",
        };
        let err = t.render(&data).expect_err("not a number");
        assert!(err.contains("not a number"), "{err}");
    }
}
