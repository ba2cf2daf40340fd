//! `strata cardinality`: the seeds' arithmetic offline, and the top series producers of a
//! real `strata up` scraping the real `strata sim`, read through its query API.

use testkit::live;

use live::{sim, strata, up};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimate_and_top_producers_of_a_running_strata() {
    let out = strata()
        .args([
            "cardinality",
            "--tenants",
            "10",
            "--models",
            "5",
            "--quantiles",
            "6",
        ])
        .args(["--buckets", "10", "--instances", "50", "--histograms", "3"])
        .output()
        .expect("run strata cardinality");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("10 × 5 × 6 × 10 × 50 = 150,000 series"),
        "{text}"
    );
    assert!(text.contains("450,000 series (≈ half a million)"), "{text}");

    let (_sim, engine, gpu) = sim(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (_up, base) = up(&["--engine", &engine, "--gpu", &gpu], dir.path()).await;
    let out = strata()
        .args(["cardinality", "--url", &base, "--top", "5"])
        .output()
        .expect("run strata cardinality --url");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<&str> = text
        .split("Metric names by series count:\n")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .expect("a metric-name list")
        .lines()
        .collect();
    assert_eq!(names.len(), 5, "{text}");
    // vLLM's histograms have the most series (one per bucket); counts are in order.
    assert!(
        names[0].contains("vllm:") && names[0].ends_with("_bucket"),
        "{text}"
    );
    let count = |l: &str| -> u64 {
        l.split_whitespace()
            .next()
            .unwrap_or("0")
            .replace(',', "")
            .parse()
            .unwrap_or(0)
    };
    assert!(
        names.windows(2).all(|w| count(w[0]) >= count(w[1])),
        "{text}"
    );
    let labels = text
        .split("Labels with the most values:\n")
        .nth(1)
        .expect("labels");
    assert!(
        labels.lines().next().is_some_and(|l| l.ends_with(" le")),
        "{text}"
    );

    let out = strata()
        .args(["cardinality", "--url", "http://127.0.0.1:9"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is `strata up` running there?"));
}
