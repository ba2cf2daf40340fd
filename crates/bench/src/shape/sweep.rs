//! `--sweep concurrency:1,4,16` or `--sweep rate:2,4,8`: one run per value.

use super::Shape;

/// Parses a sweep; `burstiness` and `max_concurrency` apply to every rate step.
pub fn parse_sweep(
    s: &str,
    burstiness: f64,
    max_concurrency: Option<u32>,
) -> Result<Vec<Shape>, String> {
    let help = "write concurrency:1,4,16 or rate:2,4,8";
    let (kind, list) = s.split_once(':').ok_or_else(|| format!("`{s}`: {help}"))?;
    let values: Vec<&str> = list.split(',').map(str::trim).collect();
    let shapes = match kind.trim() {
        "concurrency" | "c" => values
            .iter()
            .map(|v| match v.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(Shape::Concurrency { n }),
                _ => Err(format!("`{v}` is not a concurrency ≥ 1; {help}")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        "rate" | "r" => values
            .iter()
            .map(|v| match v.parse::<f64>() {
                Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(Shape::Rate {
                    rate,
                    burstiness,
                    max_concurrency,
                }),
                _ => Err(format!("`{v}` is not a rate > 0 (requests/s); {help}")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => return Err(format!("unknown sweep kind `{other}`; {help}")),
    };
    Ok(shapes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_of_both_kinds_and_errors() {
        assert_eq!(
            parse_sweep("concurrency:1, 4,16", 1.0, None).unwrap(),
            [1, 4, 16].map(|n| Shape::Concurrency { n })
        );
        assert_eq!(
            parse_sweep("rate:2.5,8", 0.5, Some(4)).unwrap(),
            [2.5, 8.0].map(|rate| Shape::Rate {
                rate,
                burstiness: 0.5,
                max_concurrency: Some(4),
            })
        );
        for bad in [
            "1,2",
            "concurrency:0",
            "rate:x",
            "qps:1",
            "rate:-1",
            "concurrency:",
        ] {
            assert!(parse_sweep(bad, 1.0, None).is_err(), "{bad}");
        }
    }
}
