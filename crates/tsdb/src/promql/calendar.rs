//! Calendar fields of a Unix time in UTC for PromQL's date functions (`hour()`,
//! `day_of_week()`, `days_in_month()`, …), computed with the proleptic Gregorian
//! calendar (`strata_core::civil_from_days`) rather than pulling in a date crate.

use strata_core::civil_from_days;

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1-12) of `year`.
fn month_days(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The date function `name` of the Unix time `secs` (UTC); NaN for an unknown name or a
/// time too far out to represent.
pub(crate) fn part(name: &str, secs: i64) -> f64 {
    // Beyond ±100 million years the day arithmetic could overflow.
    if secs.unsigned_abs() > 3_000_000_000_000_000 {
        return f64::NAN;
    }
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let v = match name {
        "minute" => of_day / 60 % 60,
        "hour" => of_day / 3600,
        // 1970-01-01 was a Thursday (4); Sunday is 0.
        "day_of_week" => (days + 4).rem_euclid(7),
        "day_of_month" => day,
        "day_of_year" => (1..month).map(|m| month_days(year, m)).sum::<i64>() + day,
        "days_in_month" => month_days(year, month),
        "month" => month,
        "year" => year,
        _ => return f64::NAN,
    };
    v as f64
}

#[cfg(test)]
mod tests {
    use super::part;

    #[test]
    fn calendar_fields_match_known_dates() {
        // 2024-02-29T13:45:10Z, a Thursday, day 60 of a leap year.
        let t = 1_709_214_310;
        let got: Vec<f64> = [
            "minute",
            "hour",
            "day_of_week",
            "day_of_month",
            "day_of_year",
            "days_in_month",
            "month",
            "year",
        ]
        .iter()
        .map(|n| part(n, t))
        .collect();
        assert_eq!(got, [45.0, 13.0, 4.0, 29.0, 60.0, 29.0, 2.0, 2024.0]);
        // 1969-12-31T23:59:59Z (negative time), a Wednesday, day 365.
        assert_eq!(part("year", -1), 1969.0);
        assert_eq!(part("day_of_year", -1), 365.0);
        assert_eq!(part("day_of_week", -1), 3.0);
        assert_eq!(part("minute", -1), 59.0);
        // 2100 is not a leap year, 2000 is.
        assert_eq!(part("days_in_month", 4_107_542_400), 31.0); // 2100-03-01
        assert_eq!(part("days_in_month", 4_107_542_400 - 86_400), 28.0); // 2100-02-28
        assert_eq!(part("days_in_month", 951_782_400), 29.0); // 2000-02-29
        assert!(part("year", i64::MAX).is_nan());
    }
}
