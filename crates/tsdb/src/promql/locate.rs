//! Where a query that does not parse goes wrong. `promql-parser` reports a syntax error as
//! "invalid promql query" and a lexer error without an offset, so the position is found
//! here: the last unclosed `(` for an unclosed parenthesis, the shortest prefix that fails
//! the same way for a lexer error, and otherwise the point right after the longest prefix
//! that is a whole expression (for `sum(x) by foo` that is `by`). Searching prefixes costs
//! one parse each, so only queries up to [`MAX_LOCATED`] bytes are located.

use promql_parser::parser::{lex, parse};

/// Longer queries get no position (locating costs a parse per candidate prefix).
pub(super) const MAX_LOCATED: usize = 1024;

/// Characters that start or end a token; a prefix is cut before or after one of them.
const PUNCTUATION: &[char] = &[
    '(', ')', '[', ']', '{', '}', ',', '+', '-', '*', '/', '^', '%', '=', '!', '<', '>', '~', '@',
    ':',
];

/// The byte offset in `expr` where `error` (the parser's message) arises, when it can be told.
pub(super) fn locate(expr: &str, error: &str) -> Option<usize> {
    if expr.len() > MAX_LOCATED {
        return None;
    }
    if error.starts_with("unclosed left parenthesis") || error.starts_with("too many left") {
        return last_unclosed_paren(expr);
    }
    if lex::lexer(expr).is_err() {
        return first_failing_prefix(expr, error);
    }
    if let Some(at) = quoted_name(error).and_then(|name| expr.find(name)) {
        return Some(at);
    }
    after_longest_expression(expr)
}

/// The offset of the last `(` outside string literals that no `)` closes.
fn last_unclosed_paren(expr: &str) -> Option<usize> {
    let mut open = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in expr.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q != '`' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' | '`' => quote = Some(c),
                '(' => open.push(i),
                ')' => {
                    open.pop();
                }
                _ => {}
            },
        }
    }
    open.pop()
}

/// The offset of the last character of the shortest prefix the lexer refuses with the same
/// message as the whole query.
fn first_failing_prefix(expr: &str, error: &str) -> Option<usize> {
    let kind = error.split(':').next().unwrap_or(error);
    expr.char_indices()
        .map(|(i, c)| (i, i + c.len_utf8()))
        .find(|&(_, end)| {
            lex::lexer(&expr[..end]).is_err_and(|e| e.split(':').next().unwrap_or(&e) == kind)
        })
        .map(|(i, _)| i)
}

/// The name a semantic error quotes (`unknown function with name 'foo'`).
fn quoted_name(error: &str) -> Option<&str> {
    let start = error.find('\'')? + 1;
    let len = error[start..].find('\'')?;
    let name = &error[start..start + len];
    (!name.is_empty()).then_some(name)
}

/// The offset of the first non-blank character after the longest prefix that parses on its
/// own; the end of the query when only the whole of it is missing something.
fn after_longest_expression(expr: &str) -> Option<usize> {
    let mut cuts: Vec<usize> = expr
        .char_indices()
        .flat_map(|(i, c)| {
            let boundary = c.is_whitespace() || PUNCTUATION.contains(&c);
            let after = i + c.len_utf8();
            [boundary.then_some(i), boundary.then_some(after)]
        })
        .flatten()
        .filter(|&i| i > 0 && i < expr.len())
        .collect();
    cuts.dedup();
    let parsed = cuts
        .iter()
        .rev()
        .find(|&&cut| !expr[..cut].trim().is_empty() && parse(&expr[..cut]).is_ok())?;
    let rest = &expr[*parsed..];
    Some(parsed + (rest.len() - rest.trim_start().len()))
}

/// `line:column` (both from 1) of byte offset `at`, and up to 24 characters of the query
/// from there: what an error message shows instead of echoing the whole query.
pub(super) fn describe(expr: &str, at: usize) -> String {
    let before = &expr[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let near: String = expr[at..].chars().take(24).collect();
    if near.is_empty() {
        format!("{line}:{column} (at the end)")
    } else {
        let more = if near.len() < expr.len() - at {
            "…"
        } else {
            ""
        };
        format!("{line}:{column} (near {near:?}{more})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(expr: &str) -> Option<usize> {
        let e = parse(expr).expect_err("the test query must not parse");
        locate(expr, &e)
    }

    #[test]
    fn points_at_what_cannot_follow_a_whole_expression() {
        assert_eq!(at("sum(rate(x[5m])) by foo"), Some(17));
        assert_eq!(at("up up"), Some(3));
        assert_eq!(at("rate(x[5m]) + on(job) group_left"), Some(12));
    }

    #[test]
    fn points_at_the_unclosed_parenthesis() {
        assert_eq!(at("sum(rate(x[5m])"), Some(3));
        assert_eq!(at("(up + (down)"), Some(0));
        assert_eq!(at("count(x{a=\"(\"}"), Some(5));
    }

    #[test]
    fn points_at_the_character_the_lexer_refuses() {
        assert_eq!(at("up{job=\"a\"} $ 1"), Some(12));
        assert_eq!(at("x[5m:1s:2s]"), Some(7));
    }

    #[test]
    fn points_at_an_unknown_function() {
        assert_eq!(at("1 + nosuchfn(up)"), Some(4));
    }

    #[test]
    fn a_missing_operand_is_at_the_operator() {
        assert_eq!(at("up +"), Some(3));
    }

    #[test]
    fn long_queries_are_not_located() {
        let long = format!("{} $", "up + ".repeat(MAX_LOCATED / 4));
        assert_eq!(locate(&long, "unexpected character: '$'"), None);
    }

    #[test]
    fn describe_gives_line_column_and_context() {
        assert_eq!(
            describe("sum(x) by foo", 7),
            "1:8 (near \"by foo\")".to_string()
        );
        assert_eq!(describe("up +", 4), "1:5 (at the end)".to_string());
        assert_eq!(describe("up\n  + $", 7), "2:5 (near \"$\")".to_string());
    }
}
