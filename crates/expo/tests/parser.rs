//! Parser behaviour, one test per feature.

use std::borrow::Cow;

use expo::{Event, Format, Labels, MetricType, Parser, parse};

const P: Format = Format::Prometheus;
const OM: Format = Format::OpenMetrics;

fn one_sample(input: &str, format: Format) -> expo::Sample<'_> {
    let exp = parse(input, format);
    assert!(
        exp.errors.iter().all(|e| e.message.contains("EOF")),
        "{:?}",
        exp.errors
    );
    let all: Vec<_> = exp.families.into_iter().flat_map(|f| f.samples).collect();
    assert_eq!(all.len(), 1, "{input:?}");
    all.into_iter().next().unwrap()
}

fn pairs(l: &Labels<'_>) -> Vec<(String, String)> {
    l.to_pairs()
}

#[test]
fn counter_gauge_untyped_0_0_4() {
    let body = "# HELP http_requests_total The total.\n# TYPE http_requests_total counter\n\
                http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                http_requests_total{method=\"post\",code=\"400\"} 3 1395066363000\n\
                # TYPE temp gauge\ntemp -3.5\n# TYPE u untyped\nu 1\n";
    let exp = parse(body, P);
    assert!(exp.errors.is_empty(), "{:?}", exp.errors);
    assert!(!exp.saw_eof);
    assert_eq!(exp.families.len(), 3);
    let f = &exp.families[0];
    assert_eq!(f.name, "http_requests_total");
    assert_eq!(f.metric_type, MetricType::Counter);
    assert_eq!(f.help.as_deref(), Some("The total."));
    assert_eq!(f.samples.len(), 2);
    assert_eq!(f.samples[0].timestamp_ms, Some(1395066363000));
    assert_eq!(f.samples[0].labels.get("code").as_deref(), Some("200"));
    assert_eq!(f.samples[0].line, 3);
    assert_eq!(exp.families[1].metric_type, MetricType::Gauge);
    assert_eq!(exp.families[1].samples[0].value, -3.5);
    assert_eq!(exp.families[2].metric_type, MetricType::Unknown);
    assert_eq!(exp.sample_count(), 4);
}

#[test]
fn histogram_and_summary_grouping() {
    let body = "# TYPE rpc histogram\nrpc_bucket{le=\"0.1\"} 1\nrpc_bucket{le=\"+Inf\"} 3\n\
                rpc_sum 1.5\nrpc_count 3\n# TYPE lat summary\nlat{quantile=\"0.5\"} 0.2\n\
                lat_sum 10\nlat_count 50\nother 1\n";
    let exp = parse(body, P);
    assert!(exp.errors.is_empty());
    assert_eq!(exp.families.len(), 3);
    assert_eq!(exp.families[0].samples.len(), 4);
    assert_eq!(exp.families[1].samples.len(), 3);
    assert_eq!(exp.families[2].name, "other");
    assert_eq!(exp.families[2].metric_type, MetricType::Unknown);
}

#[test]
fn openmetrics_types_unit_created_eof() {
    let body = "# TYPE foo counter\n# UNIT foo seconds\n# HELP foo A \\\"quoted\\\" help.\n\
                foo_total 17.0 1520879607.789\nfoo_created 1520430000.123\n\
                # TYPE gh gaugehistogram\ngh_bucket{le=\"1\"} 2\ngh_bucket{le=\"+Inf\"} 3\n\
                gh_gsum 4\ngh_gcount 3\n# TYPE build info\nbuild_info{version=\"1.2\"} 1\n\
                # TYPE ss stateset\nss{ss=\"a\"} 1\nss{ss=\"b\"} 0\n# TYPE h histogram\n\
                h_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\nh_created 1.5\n# EOF\n";
    let exp = parse(body, OM);
    assert!(exp.errors.is_empty(), "{:?}", exp.errors);
    assert!(exp.saw_eof);
    let names: Vec<_> = exp
        .families
        .iter()
        .map(|f| (f.name, f.metric_type, f.samples.len()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("foo", MetricType::Counter, 2),
            ("gh", MetricType::GaugeHistogram, 4),
            ("build", MetricType::Info, 1),
            ("ss", MetricType::StateSet, 2),
            ("h", MetricType::Histogram, 4),
        ]
    );
    let foo = &exp.families[0];
    assert_eq!(foo.unit, Some("seconds"));
    assert_eq!(foo.help.as_deref(), Some("A \"quoted\" help."));
    assert_eq!(foo.samples[0].timestamp_ms, Some(1_520_879_607_789));
    assert_eq!(foo.samples[1].name, "foo_created");
}

#[test]
fn unit_is_a_comment_in_0_0_4() {
    let events: Vec<_> = Parser::new("# UNIT foo seconds\nfoo 1\n", P).collect();
    assert_eq!(events.len(), 1);
    assert!(matches!(events[0], Ok(Event::Sample(_))));
    let events: Vec<_> = Parser::new("# UNIT foo seconds\nfoo 1\n# EOF\n", OM).collect();
    assert_eq!(
        events[0],
        Ok(Event::Unit {
            family: "foo",
            unit: "seconds"
        })
    );
}

#[test]
fn comments_are_skipped() {
    let exp = parse("# just a comment\n#nospace\n# HELPX no\nfoo 1\n", P);
    assert!(exp.errors.is_empty());
    assert_eq!(exp.sample_count(), 1);
}

#[test]
fn exemplars_both_formats() {
    let line = "foo_bucket{le=\"0.5\"} 17 # {trace_id=\"abc\",span_id=\"d\"} 0.5 1700000000.123\n";
    for format in [P, OM] {
        let s = one_sample(line, format);
        let ex = s.exemplar.expect("exemplar");
        assert_eq!(ex.labels.get("trace_id").as_deref(), Some("abc"));
        assert_eq!(ex.labels.len(), 2);
        assert_eq!(ex.value, 0.5);
        assert_eq!(ex.timestamp, Some(1700000000.123));
        assert_eq!(s.timestamp_ms, None);
    }
    // Exemplar after a timestamp, without its own timestamp.
    let s = one_sample("foo_total 3 1700000000 # {trace_id=\"x\"} 1\n# EOF\n", OM);
    assert_eq!(s.timestamp_ms, Some(1_700_000_000_000));
    assert_eq!(s.exemplar.unwrap().timestamp, None);
    // Empty exemplar label set.
    let s = one_sample("foo 3 # {} 1\n", P);
    assert!(s.exemplar.unwrap().labels.is_empty());
}

#[test]
fn bad_exemplars_are_errors() {
    for line in [
        "foo 1 # trace 1",
        "foo 1 #{a=\"b\"} 1",
        "foo 1 # {a=\"b\"}",
        "foo 1 # {a=\"b\"} x",
        "foo 1 # {a=\"b\"} 1 2 3",
        "foo 1 # {a=b} 1",
    ] {
        let exp = parse(line, P);
        assert_eq!(exp.errors.len(), 1, "{line}");
        assert_eq!(exp.sample_count(), 0, "{line}");
    }
}

#[test]
fn timestamps() {
    assert_eq!(one_sample("a 1 -1500\n", P).timestamp_ms, Some(-1500));
    assert_eq!(one_sample("a 1 1.5\n# EOF\n", OM).timestamp_ms, Some(1500));
    assert_eq!(
        one_sample("a 1 1.7e9\n# EOF\n", OM).timestamp_ms,
        Some(1_700_000_000_000)
    );
    // Fractional timestamps are not 0.0.4.
    assert_eq!(parse("a 1 1.5\n", P).errors.len(), 1);
    assert_eq!(parse("a 1 NaN\n# EOF\n", OM).errors.len(), 1);
    assert_eq!(parse("a 1 99999999999999999999\n", P).errors.len(), 1);
}

#[test]
fn label_escaping_and_lazy_unescape() {
    let s = one_sample(
        r#"a{path="C:\\dir\\",msg="say \"hi\"\nbye",plain="x"} 1"#,
        P,
    );
    let got = pairs(&s.labels);
    assert_eq!(
        got,
        vec![
            ("path".into(), "C:\\dir\\".into()),
            ("msg".into(), "say \"hi\"\nbye".into()),
            ("plain".into(), "x".into())
        ]
    );
    let plain = s.labels.get("plain").unwrap();
    assert!(matches!(plain, Cow::Borrowed("x")));
    assert!(matches!(s.labels.get("msg").unwrap(), Cow::Owned(_)));
    assert_eq!(s.labels.get("nope"), None);
    // `}` and `,` and `#` inside a value do not end anything.
    let s = one_sample(r#"a{v="}{,# x=\"y\""} 2"#, P);
    assert_eq!(s.labels.get("v").as_deref(), Some(r#"}{,# x="y""#));
    assert_eq!(s.value, 2.0);
    // Unknown escapes are rejected.
    assert_eq!(parse(r#"a{v="\t"} 1"#, P).errors.len(), 1);
}

#[test]
fn label_set_shapes() {
    let s = one_sample("a{} 1", P);
    assert!(s.labels.is_empty());
    assert_eq!(s.labels.len(), 0);
    let s = one_sample("a{b=\"c\",} 1", P);
    assert_eq!(pairs(&s.labels), vec![("b".into(), "c".into())]);
    assert_eq!(s.labels.raw(), "b=\"c\",");
    let s2 = one_sample("a{ b = \"c\" } 1", P);
    assert_eq!(s.labels, s2.labels); // equality is semantic, not raw
    let s = one_sample("a{_x=\"1\",Y9=\"2\"} 1", P);
    assert_eq!(s.labels.len(), 2);
    for bad in [
        "a{,} 1",
        "a{b=\"c\",,} 1",
        "a{9b=\"c\"} 1",
        "a{b:c=\"d\"} 1",
        "a{b=\"c\" d=\"e\"} 1",
        "a{b=\"c\" 1",
        "a{b=\"c 1",
        "a{b} 1",
        "a{b=c} 1",
    ] {
        let exp = parse(bad, P);
        assert_eq!(exp.errors.len(), 1, "{bad}");
    }
}

#[test]
fn labels_parse_api() {
    let l = Labels::parse("a=\"1\",b=\"x\\\"y\"").unwrap();
    assert_eq!(l.get("b").as_deref(), Some("x\"y"));
    assert!(Labels::parse("a=1").is_err());
    assert!(Labels::parse("a=\"1\"} junk").is_err());
    assert!(Labels::parse(" ").unwrap().is_empty());
}

#[test]
fn values() {
    let cases: &[(&str, f64)] = &[
        ("1e-3", 1e-3),
        ("+5", 5.0),
        ("-0", -0.0),
        ("+Inf", f64::INFINITY),
        ("-Inf", f64::NEG_INFINITY),
        ("Inf", f64::INFINITY),
        ("1.7976931348623157e308", f64::MAX),
        ("4.9e-324", 4.9e-324),
        (".5", 0.5),
        ("22.0", 22.0),
        ("1E6", 1e6),
    ];
    for (text, want) in cases {
        let line = format!("x {text}\n");
        let s = one_sample(&line, P);
        assert_eq!(s.value.to_bits(), want.to_bits(), "{text}");
    }
    assert!(one_sample("x NaN", P).value.is_nan());
    for bad in ["x abc", "x 1_0", "x 0x1F", "x", "x ", "x 1 2 3"] {
        assert_eq!(parse(bad, P).errors.len(), 1, "{bad}");
    }
}

#[test]
fn names_with_colons_and_validation() {
    let s = one_sample("vllm:num_requests_running{model_name=\"m\"} 3", P);
    assert_eq!(s.name, "vllm:num_requests_running");
    assert_eq!(one_sample(":a_b:c9 1", P).name, ":a_b:c9");
    for bad in [
        "9abc 1",
        "a-b 1",
        "a.b 1",
        "é 1",
        "{a=\"b\"} 1",
        "# TYPE 9x gauge",
        "# HELP",
    ] {
        assert_eq!(parse(bad, P).errors.len(), 1, "{bad}");
    }
    assert_eq!(parse("# TYPE x flubber\n", P).errors.len(), 1);
}

#[test]
fn whitespace_crlf_blank_lines() {
    let body = "\r\n# HELP a  Help with trailing ws.  \r\n# TYPE a gauge\r\n\r\n  a{b=\"c\"}   1\t \r\n\n\t\na 2";
    let exp = parse(body, P);
    assert!(exp.errors.is_empty(), "{:?}", exp.errors);
    assert_eq!(exp.families.len(), 1);
    assert_eq!(
        exp.families[0].help.as_deref(),
        Some("Help with trailing ws.")
    );
    assert_eq!(exp.sample_count(), 2);
    assert_eq!(exp.families[0].samples[1].line, 8);
}

#[test]
fn help_escapes() {
    let exp = parse("# HELP a back\\\\slash\\nnewline \\q\n# HELP b\na 1\n", P);
    assert_eq!(
        exp.families[0].help.as_deref(),
        Some("back\\slash\nnewline \\q")
    );
    assert_eq!(exp.families[1].help.as_deref(), Some(""));
}

#[test]
fn error_recovery_with_line_numbers() {
    let body = "# TYPE a gauge\na 1\nthis is garbage {\na 2\n";
    let exp = parse(body, P);
    assert_eq!(exp.errors.len(), 1);
    assert_eq!(exp.errors[0].line, 3);
    assert!(exp.errors[0].excerpt.starts_with("this is garbage"));
    assert!(exp.errors[0].to_string().starts_with("line 3: "));
    let values: Vec<f64> = exp.samples().map(|s| s.value).collect();
    assert_eq!(values, vec![1.0, 2.0]);
    // The streaming parser reports the same thing in order.
    let ev: Vec<_> = Parser::new(body, P).collect();
    assert_eq!(ev.len(), 4);
    assert!(ev[2].is_err());
}

#[test]
fn long_bad_line_excerpt_is_truncated() {
    let line = format!("{}é garbage", "x".repeat(79));
    let exp = parse(&line, P);
    assert_eq!(exp.errors.len(), 1);
    assert!(exp.errors[0].excerpt.len() <= 80 + '…'.len_utf8());
}

#[test]
fn eof_rules() {
    // OpenMetrics requires it.
    let exp = parse("a 1\n", OM);
    assert_eq!(exp.errors.len(), 1);
    assert!(exp.errors[0].message.contains("EOF"));
    assert_eq!(exp.errors[0].line, 1);
    assert_eq!(exp.sample_count(), 1);
    assert!(parse("", OM).errors.len() == 1);
    // Not in 0.0.4.
    assert!(parse("a 1\n", P).errors.is_empty());
    assert!(parse("", P).errors.is_empty());
    // Content after EOF: one error, then stop.
    for format in [P, OM] {
        let exp = parse("a 1\n# EOF\n\nb 2\nc 3\n", format);
        assert!(exp.saw_eof);
        assert_eq!(exp.errors.len(), 1, "{format:?}");
        assert_eq!(exp.errors[0].line, 4);
        assert_eq!(exp.sample_count(), 1);
    }
    // Blank lines after EOF are fine.
    let exp = parse("a 1\n# EOF\n\n", OM);
    assert!(exp.errors.is_empty());
    let ev: Vec<_> = Parser::new("# EOF", OM).collect();
    assert_eq!(ev, vec![Ok(Event::Eof)]);
}

#[test]
fn samples_without_metadata_form_families() {
    let exp = parse("a 1\na{x=\"1\"} 2\nb 3\na 4\n", P);
    let fams: Vec<_> = exp
        .families
        .iter()
        .map(|f| (f.name, f.samples.len()))
        .collect();
    assert_eq!(fams, vec![("a", 2), ("b", 1), ("a", 1)]);
    assert!(
        exp.families
            .iter()
            .all(|f| f.metric_type == MetricType::Unknown)
    );
    // A sample that does not fit the declared family starts its own.
    let exp = parse("# TYPE g gauge\ng_total 1\n", P);
    assert_eq!(exp.families.len(), 2);
    assert_eq!(exp.families[0].samples.len(), 0);
    assert_eq!(exp.families[1].name, "g_total");
}

#[test]
fn metadata_attachment() {
    // HELP before TYPE and after: both attach to one family.
    let exp = parse(
        "# HELP a h\n# TYPE a gauge\na 1\n# TYPE b counter\n# HELP b hb\nb 2\n",
        P,
    );
    assert_eq!(exp.families.len(), 2);
    assert_eq!(exp.families[1].help.as_deref(), Some("hb"));
    // Metadata for a family that already has samples opens a new one.
    let exp = parse("# TYPE a gauge\na 1\n# HELP a again\na 2\n", P);
    assert_eq!(exp.families.len(), 2);
    // A HELP without TYPE makes an untyped family that its samples join.
    let exp = parse("# HELP x only help\nx 1\n", P);
    assert_eq!(exp.families.len(), 1);
    assert_eq!(exp.families[0].samples.len(), 1);
}

#[test]
fn openmetrics_counter_suffixes() {
    let exp = parse(
        "# TYPE c counter\nc_total 1\nc_created 2\nc_bucket 3\n# EOF\n",
        OM,
    );
    assert_eq!(exp.families.len(), 2);
    assert_eq!(exp.families[0].samples.len(), 2);
    assert_eq!(exp.families[1].name, "c_bucket");
}

#[test]
fn to_owned_family_round_trip() {
    let exp = parse("# HELP a x\\ny\n# TYPE a gauge\na{l=\"q\\\"\"} 1 5\n", P);
    let owned = exp.families[0].to_owned_family();
    assert_eq!(owned.help.as_deref(), Some("x\ny"));
    assert_eq!(
        owned.samples[0].labels,
        vec![("l".to_string(), "q\"".to_string())]
    );
    assert_eq!(owned.samples[0].timestamp_ms, Some(5));
    assert_eq!(expo::OwnedFamily::from(&exp.families[0]), owned);
}

#[test]
fn streaming_events() {
    let body = "# HELP a h\n# TYPE a gauge\na 1\n# EOF\n";
    let ev: Vec<_> = Parser::new(body, OM).map(Result::unwrap).collect();
    assert_eq!(ev.len(), 4);
    assert_eq!(
        ev[0],
        Event::Help {
            family: "a",
            text: Cow::Borrowed("h")
        }
    );
    assert_eq!(
        ev[1],
        Event::Type {
            family: "a",
            metric_type: MetricType::Gauge
        }
    );
    assert!(matches!(&ev[2], Event::Sample(s) if s.name == "a" && s.value == 1.0));
    assert_eq!(ev[3], Event::Eof);
}

#[test]
fn name_helpers() {
    assert!(expo::is_metric_name("vllm:x_1"));
    assert!(!expo::is_metric_name("1x"));
    assert!(!expo::is_metric_name(""));
    assert!(expo::is_label_name("_a1"));
    assert!(!expo::is_label_name("a:b"));
}
