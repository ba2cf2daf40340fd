//! A cheap scan of a query's text, run before the parser, that bounds how deeply its syntax
//! tree will nest. Parsing, evaluating and dropping a syntax tree all recurse once per level,
//! and the parser's type checks are quadratic in the length of an operator chain, so a
//! 10 KB query such as `'-'*10000+'up'` could abort the process with a stack overflow or
//! burn seconds of CPU; the engine refuses such queries with a clear error instead.

/// An upper bound on the depth of the syntax tree `expr` parses into. Within one pair of
/// parentheses (a "frame") every root-to-leaf path passes each operator node at most once
/// and ends in one atom, so a frame nests at most (its operators) + (its deepest
/// parenthesised atom) levels; operators are binary or unary (`a + b + c` nests one level
/// per operator), `[...]` (matrix selector or subquery) counts as one. Label matchers,
/// strings and comments add nothing. Linear in the length of `expr`.
pub(crate) fn nesting_bound(expr: &str) -> usize {
    let b = expr.as_bytes();
    // Per open frame: (operators in it, deepest closed sub-frame); the bottom one is the
    // top level.
    let mut frames: Vec<(usize, usize)> = vec![(0, 0)];
    let count = |frames: &mut Vec<(usize, usize)>, n: usize| {
        if let Some(f) = frames.last_mut() {
            f.0 = f.0.saturating_add(n);
        }
    };
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' | b'\'' | b'`' => {
                i = skip_string(b, i);
                continue;
            }
            b'#' => {
                while b.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b'{' | b'[' => {
                let close = if c == b'{' { b'}' } else { b']' };
                if c == b'[' {
                    count(&mut frames, 1);
                }
                i += 1;
                while let Some(&c) = b.get(i) {
                    match c {
                        b'"' | b'\'' | b'`' => i = skip_string(b, i) - 1,
                        _ if c == close => break,
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'(' => frames.push((0, 0)),
            b')' => close_frame(&mut frames),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'=' | b'!' | b'<' | b'>' => {
                // One run of operator characters: every `+`/`-` may be a unary operator of
                // its own, the rest (`==`, `<=`, `*`, …) make one binary operator.
                let (mut signs, mut other) = (0, 0);
                while let Some(&c) = b.get(i) {
                    match c {
                        b'+' | b'-' => signs += 1,
                        b'*' | b'/' | b'%' | b'^' | b'=' | b'!' | b'<' | b'>' => other = 1,
                        _ => break,
                    }
                    i += 1;
                }
                count(&mut frames, signs + other);
                continue;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b':' => {
                let start = i;
                while b
                    .get(i)
                    .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
                {
                    i += 1;
                }
                let word = expr.get(start..i).unwrap_or("");
                if ["and", "or", "unless", "atan2"]
                    .iter()
                    .any(|k| word.eq_ignore_ascii_case(k))
                {
                    count(&mut frames, 1);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    while frames.len() > 1 {
        close_frame(&mut frames);
    }
    frames.first().map_or(1, |f| f.0.saturating_add(f.1) + 1)
}

/// Folds the innermost frame into its parent as one more level (the parenthesis or call);
/// an unbalanced `)` at the top level is ignored (the parser rejects it).
fn close_frame(frames: &mut Vec<(usize, usize)>) {
    if frames.len() > 1
        && let Some((ops, deepest)) = frames.pop()
        && let Some(parent) = frames.last_mut()
    {
        parent.1 = parent.1.max(ops.saturating_add(deepest) + 1);
    }
}

/// Index of the byte after the string literal opening at `i` (or the end of input).
fn skip_string(b: &[u8], i: usize) -> usize {
    let quote = b.get(i).copied();
    let mut j = i + 1;
    while let Some(&c) = b.get(j) {
        if c == b'\\' && quote != Some(b'`') {
            j += 2;
            continue;
        }
        j += 1;
        if Some(c) == quote {
            break;
        }
    }
    j.min(b.len())
}

#[cfg(test)]
mod tests {
    use super::nesting_bound;
    use promql_parser::parser::{Expr, parse};

    /// The real depth of a parsed tree (test helper; recursion is fine for small trees).
    fn depth(e: &Expr) -> usize {
        1 + match e {
            Expr::Aggregate(a) => depth(&a.expr).max(a.param.as_deref().map_or(0, depth)),
            Expr::Unary(u) => depth(&u.expr),
            Expr::Binary(b) => depth(&b.lhs).max(depth(&b.rhs)),
            Expr::Paren(p) => depth(&p.expr),
            Expr::Subquery(s) => depth(&s.expr),
            Expr::Call(c) => c.args.args.iter().map(|a| depth(a)).max().unwrap_or(0),
            _ => 0,
        }
    }

    #[test]
    fn bound_is_at_least_the_parsed_depth() {
        for q in [
            "up",
            "-up",
            "- - -up",
            "1 + 2 * 3 ^ -4",
            "a + b + c + d - e",
            "sum by (job) (rate(x{a=\"(((\"}[5m])) / on (job) group_left count(y)",
            "abs(abs(abs(-up)))",
            "max_over_time(rate(x[5m])[1h:1m]) and on() vector(1) or y unless z",
            "((up))[5m:] # comment ((((",
            "x == bool -1",
            "histogram_quantile(0.9, sum by (le) (rate(b_bucket{le=~\"1|\\\\+Inf\"}[5m])))",
            "label_replace(up, 'a', '$1', 'b', '(.*)')",
            "up atan2 1 / up",
        ] {
            let ast = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
            let (b, d) = (nesting_bound(q), depth(&ast));
            assert!(b >= d, "{q}: bound {b} < depth {d}");
            assert!(b <= 3 * d + 3, "{q}: bound {b} far above depth {d}");
        }
    }

    #[test]
    fn attack_shapes_are_measured_linearly() {
        let n = 10_000;
        let shapes = [
            format!("{}up", "-".repeat(n)),
            vec!["up"; n].join("+"),
            format!("{}up{}", "(".repeat(n), ")".repeat(n)),
            format!("{}up{}", "abs(".repeat(n), ")".repeat(n)),
            format!("{}up", "+".repeat(n)),
            vec!["up"; n].join(" or "),
        ];
        for q in shapes {
            assert!(nesting_bound(&q) >= n - 1, "{}", &q[..20]);
        }
        // Strings, label matchers and unbalanced closers do not count or confuse the scan.
        assert_eq!(nesting_bound(&format!("up{{a=\"{}\"}}", "(".repeat(n))), 1);
        assert_eq!(nesting_bound(")))up"), 1);
        assert_eq!(nesting_bound("\"unterminated \\"), 1);
    }
}
