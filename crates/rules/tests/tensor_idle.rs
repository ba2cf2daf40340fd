//! `DiagnosisTensorIdleUnderLoad` holds for stalls only: a GPU whose tensor pipe idles while
//! its SMs decode (llama.cpp, f16, small batches on an H200: tensor 1.0-1.6 %, SM activity
//! 19-58 %, requests in flight) is not "doing no math", while a stalled GPU (tensor and SMs
//! both idle) is. Evaluated by Strata's rule engine in virtual time over the built-in packs.

use std::collections::BTreeSet;
use std::time::Duration;

use rules::triage::Triage;
use sources::Point;
use testkit::db::Db;

const T0: i64 = 1_700_000_000_000;

/// Runs the packs for 10 minutes over one GPU reading `tensor` and `sm` (fractions) with
/// 12 requests running; the diagnoses that fired or went pending.
fn diagnoses(tensor: f64, sm: Option<f64>) -> BTreeSet<String> {
    let db = Db::new();
    let groups = rules::packs::groups("chat").expect("packs load");
    let mut triage = Triage::new(
        groups,
        Duration::from_secs(15),
        Duration::from_secs(600),
        Vec::new(),
    );
    let gpu = || {
        vec![
            ("Hostname".to_string(), "h200".to_string()),
            ("gpu".to_string(), "0".to_string()),
            ("gpu_uuid".to_string(), "GPU-1".to_string()),
        ]
    };
    let engine = || {
        vec![
            ("instance".to_string(), "127.0.0.1:8080".to_string()),
            ("engine".to_string(), "llamacpp".to_string()),
        ]
    };
    let mut seen = BTreeSet::new();
    for step in 0..40 {
        let t = T0 + step * 15_000;
        let mut points = vec![
            Point::new("gpu:tensor_active_ratio", gpu(), tensor, t),
            Point::new("gpu:util_ratio", gpu(), 0.6, t),
            Point::new("llm:requests_running", engine(), 12.0, t),
        ];
        if let Some(sm) = sm {
            points.push(Point::new("gpu:sm_active_ratio", gpu(), sm, t));
        }
        db.write("test", &points);
        triage.step(t, &db, &db);
        seen.extend(triage.findings.open().map(|f| f.name.clone()));
        seen.extend(
            triage
                .fired()
                .iter()
                .filter(|a| a.starts_with("Diagnosis"))
                .cloned(),
        );
    }
    seen
}

#[test]
fn a_stalled_gpu_is_tensor_idle_under_load() {
    let d = diagnoses(0.0, Some(0.05));
    assert!(d.contains("tensor_idle_under_load"), "{d:?}");
}

#[test]
fn small_batch_decode_on_cuda_cores_is_not_a_stall() {
    // The shape measured under llama.cpp on an H200: tensor ~1.3 %, SMs 19-58 % busy.
    for sm in [0.19, 0.35, 0.58] {
        let d = diagnoses(0.013, Some(sm));
        assert!(
            !d.contains("tensor_idle_under_load") && !d.contains("DiagnosisTensorIdleUnderLoad"),
            "SM activity {sm}: {d:?}"
        );
    }
}

#[test]
fn without_sm_activity_the_diagnosis_stays_silent() {
    let d = diagnoses(0.0, None);
    assert!(!d.contains("tensor_idle_under_load"), "{d:?}");
}
