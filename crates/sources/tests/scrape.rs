//! The scraper against real HTTP servers on loopback.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use sources::gpu::FieldSet;
use sources::scrape::{
    KindProfiles, Profile, ProfileSettings, Scraper, Target, TargetKind, TargetSpec, TargetState,
};
use tokio::sync::mpsc;

const VLLM: &str = "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=\"m\"} 3\n# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{model_name=\"m\"} 0.5\n";

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn target(base: &str, path: &str) -> TargetSpec {
    let url = format!("{base}{path}").parse().expect("url");
    TargetSpec::new("test", url, TargetKind::Engine)
}

fn settings(timeout_ms: u64) -> ProfileSettings {
    ProfileSettings {
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(timeout_ms),
        fields: FieldSet::Full,
    }
}

fn meta(report: &sources::scrape::ScrapeReport, name: &str) -> f64 {
    report
        .all_points()
        .find(|p| p.name == name)
        .map(|p| p.value)
        .expect(name)
}

#[tokio::test]
async fn plain_gzip_auth_and_openmetrics_bodies_scrape() {
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(VLLM.as_bytes()).expect("gzip");
        e.finish().expect("gzip")
    };
    let router = Router::new()
        .route("/metrics", get(|| async { VLLM }))
        .route(
            "/gzip",
            get(move |h: HeaderMap| {
                let gz = gz.clone();
                async move {
                    let asked = h
                        .get(header::ACCEPT_ENCODING)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.contains("gzip"));
                    assert!(asked, "scraper must ask for gzip");
                    ([(header::CONTENT_ENCODING, "gzip")], gz)
                }
            }),
        )
        .route(
            "/auth",
            get(|h: HeaderMap| async move {
                match h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
                    Some("Bearer s3cret") => (StatusCode::OK, VLLM),
                    _ => (StatusCode::UNAUTHORIZED, "no"),
                }
            }),
        )
        .route(
            "/om",
            get(|h: HeaderMap| async move {
                let accept = h
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                assert!(
                    accept.starts_with("application/openmetrics-text"),
                    "{accept}"
                );
                (
                    [(
                        header::CONTENT_TYPE,
                        expo::Format::OpenMetrics.content_type(),
                    )],
                    "# TYPE x counter\nx_total 1 # {trace_id=\"ab\"} 1.0\n# EOF\n",
                )
            }),
        );
    let base = serve(router).await;

    for path in ["/metrics", "/gzip"] {
        let mut t = TargetState::new(target(&base, path)).expect("client");
        let r = t.scrape(settings(2000)).await;
        assert_eq!(r.error, None, "{path}");
        assert_eq!(r.samples_scraped, 2, "{path}");
        assert_eq!(meta(&r, "up"), 1.0);
        assert_eq!(meta(&r, "scrape_samples_scraped"), 2.0);
        assert!(meta(&r, "scrape_duration_seconds") > 0.0);
        assert_eq!(
            r.dialect.map(|d| (d.table.name.as_str(), d.version)),
            Some(("vllm", "0.10-0.11"))
        );
        let running = r
            .native_points()
            .find(|p| p.name == "vllm:num_requests_running")
            .expect("running");
        assert_eq!(
            running.label("instance"),
            Some(base.trim_start_matches("http://"))
        );
        assert_eq!(running.label("job"), Some("test"));
    }

    let mut no_token = TargetState::new(target(&base, "/auth")).expect("client");
    let r = no_token.scrape(settings(2000)).await;
    let err = r.error.clone().expect("401 must fail");
    assert!(err.contains("401") && err.contains("bearer_token"), "{err}");
    assert_eq!(meta(&r, "up"), 0.0);

    let mut spec = target(&base, "/auth");
    spec.bearer_token = Some("s3cret".into());
    let r = TargetState::new(spec)
        .expect("client")
        .scrape(settings(2000))
        .await;
    assert_eq!(r.error, None);

    let r = TargetState::new(target(&base, "/om"))
        .expect("client")
        .scrape(settings(2000))
        .await;
    assert_eq!(r.error, None);
    assert!(r.parse_errors.is_empty(), "{:?}", r.parse_errors);
    assert_eq!(
        r.native_points().map(|p| p.name).collect::<Vec<_>>(),
        ["x_total"]
    );
    assert_eq!(r.metadata.len(), 1, "{:?}", r.metadata);
    assert_eq!(r.metadata[0].name, "x");
    assert_eq!(r.metadata[0].metric_type, expo::MetricType::Counter);
}

#[tokio::test]
async fn oversized_slow_dead_and_garbage_targets_fail_cleanly() {
    let router = Router::new()
        .route("/big", get(|| async { "a 1\n".repeat(100_000) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                VLLM
            }),
        )
        .route(
            "/garbage",
            get(|| async { "ok 1\n{{{ not a metric\nalso_ok{a=\"1\"} 2\n\u{0}\u{1}\n" }),
        );
    let base = serve(router).await;

    let mut spec = target(&base, "/big");
    spec.max_body_bytes = 64 * 1024;
    let r = TargetState::new(spec)
        .expect("client")
        .scrape(settings(2000))
        .await;
    assert!(
        r.error
            .as_deref()
            .is_some_and(|e| e.contains("max_body_bytes")),
        "{:?}",
        r.error
    );

    let r = TargetState::new(target(&base, "/slow"))
        .expect("client")
        .scrape(settings(100))
        .await;
    assert!(
        r.error
            .as_deref()
            .is_some_and(|e| e.contains("did not answer within")),
        "{:?}",
        r.error
    );
    assert!(r.duration < Duration::from_secs(2));

    // A port nobody listens on.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead_url = format!("http://{}", dead.local_addr().expect("addr"));
    drop(dead);
    let r = TargetState::new(target(&dead_url, "/metrics"))
        .expect("client")
        .scrape(settings(500))
        .await;
    assert!(
        r.error
            .as_deref()
            .is_some_and(|e| e.contains("cannot reach")),
        "{:?}",
        r.error
    );

    let r = TargetState::new(target(&base, "/garbage"))
        .expect("client")
        .scrape(settings(2000))
        .await;
    assert_eq!(r.error, None, "bad lines do not fail the scrape");
    assert_eq!(r.samples_scraped, 2, "good lines around bad ones are kept");
    assert_eq!(r.parse_errors.len(), 2, "{:?}", r.parse_errors);
}

/// `/metrics` answering its `n`-th request (from 0) with `answer(n)`.
fn in_turn(answer: fn(usize) -> (StatusCode, &'static str)) -> Router {
    let calls = Arc::new(AtomicUsize::new(0));
    Router::new().route(
        "/metrics",
        get(move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { answer(n) }
        }),
    )
}

#[tokio::test]
async fn disappearing_series_and_targets_go_stale() {
    let base = serve(in_turn(|n| match n {
        0 => (StatusCode::OK, "a 1\nb 2\n"),
        1 => (StatusCode::OK, "a 1\n"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, ""),
    }))
    .await;
    let mut t = TargetState::new(target(&base, "/metrics")).expect("client");
    let first = t.scrape(settings(1000)).await;
    assert!(first.all_points().all(|p| !expo::is_stale_nan(p.value)));
    let second = t.scrape(settings(1000)).await;
    let stale: Vec<_> = second
        .all_points()
        .filter(|p| expo::is_stale_nan(p.value))
        .map(|p| p.name)
        .collect();
    assert_eq!(stale, ["b"]);
    let third = t.scrape(settings(1000)).await;
    let stale: Vec<_> = third
        .all_points()
        .filter(|p| expo::is_stale_nan(p.value))
        .map(|p| p.name)
        .collect();
    assert_eq!(stale, ["a"]);
    assert_eq!(meta(&third, "up"), 0.0);
}

/// The store appends a report of a repeated `series_layout` by position: two reports of one
/// layout must list the same series in the same order, meta points included. A report with
/// staleness markers is longer than the next one, so it has no layout (regression: `up` went
/// into a vanished series' slot after an incident switch).
#[tokio::test]
async fn reports_of_one_layout_list_the_same_series_in_order() {
    let base = serve(in_turn(|n| match n {
        0 => (StatusCode::OK, "a 1\nb 2\n"),
        _ => (StatusCode::OK, "a 1\n"),
    }))
    .await;
    let mut t = TargetState::new(target(&base, "/metrics")).expect("client");
    let mut reports = Vec::new();
    for _ in 0..4 {
        reports.push(t.scrape(settings(1000)).await);
    }
    let series = |r: &sources::scrape::ScrapeReport| -> Vec<(String, Vec<(String, String)>)> {
        r.all_points().map(|p| (p.name, p.labels)).collect()
    };
    assert_ne!(reports[0].series_layout, 0);
    assert!(reports[1].all_points().any(|p| expo::is_stale_nan(p.value)));
    assert_eq!(
        reports[1].series_layout, 0,
        "a report with staleness markers"
    );
    assert_ne!(reports[2].series_layout, 0);
    assert_eq!(reports[2].series_layout, reports[3].series_layout);
    assert_eq!(series(&reports[2]), series(&reports[3]));
}

#[tokio::test]
async fn slow_target_never_delays_others_and_profile_switches_at_run_time() {
    let router = Router::new()
        .route("/fast", get(|| async { "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 50\nDCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"0\"} 9\n" }))
        .route(
            "/stuck",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                VLLM
            }),
        );
    let base = serve(router).await;
    let gpu_profiles = KindProfiles {
        steady: ProfileSettings {
            interval: Duration::from_millis(400),
            timeout: Duration::from_millis(300),
            fields: FieldSet::Full,
        },
        incident: ProfileSettings {
            interval: Duration::from_millis(40),
            timeout: Duration::from_millis(30),
            fields: FieldSet::Reduced,
        },
    };
    let mut fast = target(&base, "/fast");
    fast.job = "dcgm".into();
    fast.kind = TargetKind::Gpu;
    fast.profiles = gpu_profiles;
    let mut stuck = target(&base, "/stuck");
    stuck.job = "stuck".into();
    stuck.profiles.steady.timeout = Duration::from_secs(20);
    let (tx, mut rx) = mpsc::channel(64);
    let scraper = Scraper::start(
        vec![Target::Http(stuck), Target::Http(fast)],
        Profile::Steady,
        tx,
    )
    .expect("start");

    // Steady: the fast GPU target reports on its own cadence while the engine hangs.
    let mut fast_reports = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1000);
    while let Ok(Some(r)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        assert_eq!(
            r.job, "dcgm",
            "the stuck target cannot report within a second"
        );
        assert_eq!(r.samples_scraped, 2);
        assert_eq!(
            r.native_points().count(),
            2,
            "steady keeps the full field set"
        );
        fast_reports += 1;
    }
    assert!(
        (2..=4).contains(&fast_reports),
        "steady 400 ms cadence: {fast_reports}"
    );

    scraper.set_profile(Profile::Incident);
    assert_eq!(scraper.profile(), Profile::Incident);
    let mut incident_reports = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1000);
    while let Ok(Some(r)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        if r.job == "dcgm" && r.native_points().count() == 1 {
            let p = r.native_points().next().expect("one");
            assert_eq!(
                p.name, "DCGM_FI_DEV_GPU_UTIL",
                "incident keeps only incident fields"
            );
            incident_reports += 1;
        }
    }
    assert!(
        incident_reports >= 10,
        "incident 40 ms cadence: {incident_reports}"
    );
    scraper.stop();
}

/// A target's series list is built once and shared while its body names the same series;
/// whenever the body changes (values only, order, a series gone, a label value, the same
/// series written differently), every sample still comes with its own series, and vanished
/// series get their staleness marker.
#[tokio::test]
async fn changing_bodies_keep_every_sample_on_its_series() {
    const BODIES: [&str; 7] = [
        "a{x=\"1\"} 1\nb 2\n",
        "a{x=\"1\"} 3\nb 4\n",
        "b 5\na{x=\"1\"} 6\n",
        "a{x=\"1\"} 7\n",
        "a{x=\"2\"} 8\n",
        "a{x=\"2\",} 9\n",
        "a{x=\"2\",} 10\n",
    ];
    let base = serve(in_turn(|n| (StatusCode::OK, BODIES[n.min(6)]))).await;
    let spec = target(&base, "/metrics");
    let labels = sources::scrape::target_labels(&spec.job, &spec.instance(), &[]);
    let mut t = TargetState::new(spec).expect("client");
    let mut reports = Vec::new();
    for body in BODIES {
        let r = t.scrape(settings(1000)).await;
        assert_eq!(r.error, None);
        let expected: Vec<_> = sources::scrape::to_points(
            &expo::parse(body, expo::Format::Prometheus),
            &labels,
            r.timestamp_ms,
        );
        let native: Vec<_> = r.native_points().collect();
        assert_eq!(native, expected, "{body}");
        reports.push(r);
    }
    let stale = |r: &sources::scrape::ScrapeReport| -> Vec<(String, Option<String>)> {
        r.all_points()
            .filter(|p| expo::is_stale_nan(p.value))
            .map(|p| (p.name.clone(), p.label("x").map(str::to_string)))
            .collect()
    };
    let stale: Vec<_> = reports.iter().map(stale).collect();
    assert_eq!(
        stale,
        [
            vec![],
            vec![],
            vec![],
            vec![("b".to_string(), None)],
            vec![("a".to_string(), Some("1".to_string()))],
            vec![],
            vec![],
        ]
    );
    let shared =
        |i: usize, j: usize| Arc::ptr_eq(&reports[i].samples.series, &reports[j].samples.series);
    assert!(shared(0, 1), "same series: the list is shared");
    assert!(!shared(1, 2), "reordered");
    assert!(shared(5, 6), "same text again");
    let layout: Vec<_> = reports.iter().map(|r| r.series_layout).collect();
    assert_eq!(layout[0], layout[1]);
    assert_ne!(layout[1], layout[2]);
    assert_eq!(layout[3], 0, "staleness markers");
    assert_eq!(layout[4], 0, "staleness markers");
    assert_ne!(layout[5], 0, "same series written differently: no marker");
    assert_eq!(layout[5], layout[6]);
}
