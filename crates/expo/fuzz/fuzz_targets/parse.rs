//! Feeds arbitrary bytes through the parser in both formats: it must never panic, label sets
//! it accepted must iterate, and the good families must survive write → parse unchanged
//! (a second write gives the same bytes).
#![no_main]

use expo::{Format, Writer, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = match std::str::from_utf8(data) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(data),
    };
    for format in [Format::Prometheus, Format::OpenMetrics] {
        for ev in expo::Parser::new(&text, format) {
            if let Ok(expo::Event::Sample(s)) = ev {
                let _ = s.labels.iter().count();
                if let Some(e) = &s.exemplar {
                    let _ = e.labels.to_pairs();
                }
            }
        }
        let exp = parse(&text, format);
        let owned = exp.to_owned_families();
        let once = Writer::render(format, &owned);
        let back = parse(&once, format);
        assert!(back.errors.is_empty(), "re-parse errors {:?}\n{once}", back.errors);
        assert_eq!(back.sample_count(), exp.sample_count() - stale(&exp), "{once}");
        let twice = Writer::render(format, &back.to_owned_families());
        let third = Writer::render(format, &parse(&twice, format).to_owned_families());
        // Grouping may normalise once (e.g. an OpenMetrics `x_total` counter is declared as
        // `x`), after which the text is a fixed point.
        assert_eq!(twice, third);
    }
});

fn stale(exp: &expo::Exposition<'_>) -> usize {
    exp.samples().filter(|s| expo::is_stale_nan(s.value)).count()
}
