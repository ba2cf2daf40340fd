//! Writer output, byte for byte, in both formats.

use expo::{Format, MetricType, OwnedExemplar, OwnedFamily, OwnedSample, Writer, stale_nan};

fn sample(name: &str, labels: &[(&str, &str)], value: f64) -> OwnedSample {
    OwnedSample::new(name, labels, value)
}

fn family(name: &str, t: MetricType, help: Option<&str>, samples: Vec<OwnedSample>) -> OwnedFamily {
    OwnedFamily {
        name: name.into(),
        metric_type: t,
        help: help.map(Into::into),
        unit: None,
        samples,
    }
}

#[test]
fn classic_counter_with_exemplar_and_escapes() {
    let mut s = sample("req_total", &[("path", "a\\b\"c\nd")], 3.0);
    s.timestamp_ms = Some(1_700_000_000_123);
    s.exemplar = Some(OwnedExemplar {
        labels: vec![("trace_id".into(), "abc".into())],
        value: 0.5,
        timestamp: Some(1.5),
    });
    let f = family(
        "req_total",
        MetricType::Counter,
        Some("Line1\nback\\slash \"q\""),
        vec![s],
    );
    let text = Writer::render(Format::Prometheus, std::slice::from_ref(&f));
    assert_eq!(
        text,
        "# TYPE req_total counter\n# HELP req_total Line1\\nback\\\\slash \"q\"\n\
         req_total{path=\"a\\\\b\\\"c\\nd\"} 3 1700000000123\n"
    );
    let om = Writer::render(Format::OpenMetrics, &[f]);
    assert_eq!(
        om,
        "# TYPE req counter\n# HELP req Line1\\nback\\\\slash \\\"q\\\"\n\
         req_total{path=\"a\\\\b\\\"c\\nd\"} 3 1700000000.123 # {trace_id=\"abc\"} 0.5 1.5\n# EOF\n"
    );
}

#[test]
fn values_formatting() {
    let cases = [
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (-0.0, "-0"),
        (0.0, "0"),
        (42.0, "42"),
        (-7.0, "-7"),
        (0.1, "0.1"),
        (1e300, "1e300"),
        (1.5e-7, "1.5e-7"),
        (123456.789, "123456.789"),
    ];
    for (v, want) in cases {
        let f = family("g", MetricType::Gauge, None, vec![sample("g", &[], v)]);
        let text = Writer::render(Format::Prometheus, &[f]);
        assert_eq!(text, format!("# TYPE g gauge\ng {want}\n"), "{v}");
    }
}

#[test]
fn stale_markers_are_skipped() {
    let f = family(
        "g",
        MetricType::Gauge,
        None,
        vec![
            sample("g", &[("a", "1")], stale_nan()),
            sample("g", &[("a", "2")], f64::NAN),
        ],
    );
    assert_eq!(
        Writer::render(Format::Prometheus, &[f]),
        "# TYPE g gauge\ng{a=\"2\"} NaN\n"
    );
}

#[test]
fn openmetrics_names_and_units() {
    let mut f = family(
        "c",
        MetricType::Counter,
        Some("h"),
        vec![sample("c_total", &[], 1.0), sample("c_created", &[], 1.7e9)],
    );
    f.unit = Some("bytes".into());
    let om = Writer::render(Format::OpenMetrics, std::slice::from_ref(&f));
    assert_eq!(
        om,
        "# TYPE c counter\n# UNIT c bytes\n# HELP c h\nc_total 1\nc_created 1700000000\n# EOF\n"
    );
    // Classic text: `c_total` counter plus a separate `c_created` gauge; no unit.
    let text = Writer::render(Format::Prometheus, &[f]);
    assert_eq!(
        text,
        "# TYPE c_total counter\n# HELP c_total h\nc_total 1\n\
         # TYPE c_created gauge\n# HELP c_created h\nc_created 1700000000\n"
    );
    let info = family(
        "build_info",
        MetricType::Info,
        None,
        vec![sample("build_info", &[("v", "1")], 1.0)],
    );
    assert_eq!(
        Writer::render(Format::OpenMetrics, std::slice::from_ref(&info)),
        "# TYPE build info\nbuild_info{v=\"1\"} 1\n# EOF\n"
    );
    assert_eq!(
        Writer::render(Format::Prometheus, &[info]),
        "# TYPE build_info gauge\nbuild_info{v=\"1\"} 1\n"
    );
}

#[test]
fn gauge_histogram_in_classic_text() {
    let f = family(
        "q",
        MetricType::GaugeHistogram,
        Some("queue"),
        vec![
            sample("q_bucket", &[("le", "+Inf")], 2.0),
            sample("q_gsum", &[], 3.0),
            sample("q_gcount", &[], 2.0),
        ],
    );
    assert_eq!(
        Writer::render(Format::Prometheus, &[f]),
        "# TYPE q histogram\n# HELP q queue\nq_bucket{le=\"+Inf\"} 2\n\
         # TYPE q_gsum gauge\n# HELP q_gsum queue\nq_gsum 3\n\
         # TYPE q_gcount gauge\n# HELP q_gcount queue\nq_gcount 2\n"
    );
}

#[test]
fn timestamps_in_seconds_for_openmetrics() {
    for (ms, want) in [
        (1500, "1.5"),
        (-1500, "-1.5"),
        (0, "0"),
        (1, "0.001"),
        (-1, "-0.001"),
        (12000, "12"),
    ] {
        let mut s = sample("g", &[], 1.0);
        s.timestamp_ms = Some(ms);
        let f = family("g", MetricType::Gauge, None, vec![s]);
        let om = Writer::render(Format::OpenMetrics, &[f]);
        assert_eq!(om, format!("# TYPE g gauge\ng 1 {want}\n# EOF\n"));
        let back = expo::parse(&om, Format::OpenMetrics);
        assert_eq!(back.families[0].samples[0].timestamp_ms, Some(ms));
    }
}

#[test]
fn incremental_writer() {
    let mut w = Writer::with_capacity(Format::OpenMetrics, 64);
    w.write_family(&family(
        "a",
        MetricType::Unknown,
        None,
        vec![sample("a", &[], 1.0)],
    ));
    w.write_family(&family(
        "b",
        MetricType::StateSet,
        None,
        vec![sample("b", &[("b", "x")], 1.0)],
    ));
    assert_eq!(
        w.finish(),
        "# TYPE a unknown\na 1\n# TYPE b stateset\nb{b=\"x\"} 1\n# EOF\n"
    );
    let empty = Writer::new(Format::Prometheus).finish();
    assert_eq!(empty, "");
}

/// Fuzz finding: a help-less family followed by a same-named one with help must read back
/// with the help on the second family (TYPE is written first so it opens each family).
#[test]
fn same_named_families_keep_their_metadata() {
    let fams = vec![
        family("foo", MetricType::Counter, None, vec![]),
        family("foo", MetricType::Counter, Some("h"), vec![]),
        family("foo", MetricType::Counter, None, vec![]),
    ];
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = Writer::render(format, &fams);
        let back = expo::parse(&text, format).to_owned_families();
        assert_eq!(back, fams, "{format:?}\n{text}");
    }
}
