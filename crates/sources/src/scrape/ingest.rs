//! Turning a parsed body into points: target labels attached, clashes renamed the way
//! Prometheus does (`exported_<name>`), and the GPU field set applied.

use expo::Exposition;

use crate::dialect::{self, Layer};
use crate::gpu::FieldSet;
use crate::point::{LabelSet, Point};

/// Labels the scraper attaches to every sample of a target (`job`, `instance`, extras).
pub fn target_labels(job: &str, instance: &str, extra: &[(String, String)]) -> LabelSet {
    let mut labels = vec![
        ("job".to_string(), job.to_string()),
        ("instance".to_string(), instance.to_string()),
    ];
    labels.extend(extra.iter().cloned());
    labels
}

/// Converts a parsed exposition into points stamped `timestamp_ms` (unless a sample carries
/// its own timestamp). A sample label that clashes with a target label is kept as
/// `exported_<name>`, as Prometheus does without `honor_labels`.
pub fn to_points(exposition: &Exposition<'_>, target: &LabelSet, timestamp_ms: i64) -> Vec<Point> {
    let mut out = Vec::with_capacity(exposition.sample_count());
    for sample in exposition.samples() {
        let mut labels: LabelSet = Vec::with_capacity(target.len() + sample.labels.len());
        for (name, value) in sample.labels.iter() {
            let name = if target.iter().any(|(t, _)| t == name) {
                format!("exported_{name}")
            } else {
                name.to_string()
            };
            labels.push((name, value.into_owned()));
        }
        labels.extend(target.iter().cloned());
        out.push(Point::new(
            sample.name,
            labels,
            sample.value,
            sample.timestamp_ms.unwrap_or(timestamp_ms),
        ));
    }
    out
}

/// An exemplar a target exposed (OpenMetrics ` # {trace_id="..."} value ts`) with the sample
/// it was attached to: its series and scrape time.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapedExemplar {
    /// The sample's point, as [`to_points`] made it (target labels attached).
    pub point: Point,
    /// The exemplar.
    pub exemplar: strata_core::Exemplar,
}

/// The exemplars of `exposition`, each with its sample's point from `points` (the output of
/// [`to_points`] for the same exposition: one point per sample, in order).
pub fn exemplars_of(exposition: &Exposition<'_>, points: &[Point]) -> Vec<ScrapedExemplar> {
    exposition
        .samples()
        .zip(points)
        .filter_map(|(s, p)| {
            let e = s.exemplar.as_ref()?;
            Some(ScrapedExemplar {
                point: p.clone(),
                exemplar: strata_core::Exemplar {
                    labels: e.labels.to_pairs(),
                    value: e.value,
                    timestamp: e.timestamp,
                },
            })
        })
        .collect()
}

/// Keeps only the samples of the GPU fields in `fields` (incident mode polls a few fields
/// fast). Non-GPU bodies and [`FieldSet::Full`] keep everything.
pub fn apply_field_set(points: &mut Vec<Point>, fields: FieldSet) {
    if fields == FieldSet::Full {
        return;
    }
    let Some(detected) = dialect::detect(points.iter().map(|p| p.name.as_str())) else {
        return;
    };
    if detected.table.layer != Layer::Gpu {
        return;
    }
    let keep: Vec<&str> = detected
        .table
        .maps
        .iter()
        .filter(|m| fields.includes(&m.canonical))
        .map(|m| m.native.as_str())
        .collect();
    points.retain(|p| keep.contains(&p.name.as_str()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clashing_labels_become_exported_and_targets_labels_win() {
        let body = "m{instance=\"inner\",a=\"1\"} 2 1700000000000\nn 3\n";
        let exp = expo::parse(body, expo::Format::Prometheus);
        let pts = to_points(&exp, &target_labels("vllm", "h:8000", &[]), 42);
        assert_eq!(pts.len(), 2);
        assert_eq!(pts[0].label("instance"), Some("h:8000"));
        assert_eq!(pts[0].label("exported_instance"), Some("inner"));
        assert_eq!(
            pts[0].timestamp_ms, 1_700_000_000_000,
            "sample timestamp kept"
        );
        assert_eq!(pts[1].timestamp_ms, 42);
        assert_eq!(pts[1].label("job"), Some("vllm"));
    }

    #[test]
    fn exemplars_keep_their_sample_series_and_labels() {
        let body = "# TYPE x histogram\nx_bucket{le=\"0.5\"} 3 # {trace_id=\"abc\"} 0.42 1700000000.123\nx_bucket{le=\"+Inf\"} 3\nx_sum 1\nx_count 3\n# EOF\n";
        let exp = expo::parse(body, expo::Format::OpenMetrics);
        let pts = to_points(&exp, &target_labels("vllm", "h:8000", &[]), 42);
        let ex = exemplars_of(&exp, &pts);
        assert_eq!(ex.len(), 1, "{ex:?}");
        assert_eq!(ex[0].point.name, "x_bucket");
        assert_eq!(ex[0].point.label("le"), Some("0.5"));
        assert_eq!(ex[0].point.label("job"), Some("vllm"));
        assert_eq!(
            ex[0].exemplar.labels,
            [("trace_id".to_string(), "abc".to_string())]
        );
        assert_eq!(ex[0].exemplar.value, 0.42);
        assert_eq!(ex[0].exemplar.timestamp, Some(1_700_000_000.123));
    }

    #[test]
    fn reduced_field_set_keeps_only_incident_gpu_fields() {
        let body = "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{gpu=\"0\"} 0.9\nDCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"0\"} 5\nDCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 100\n";
        let exp = expo::parse(body, expo::Format::Prometheus);
        let mut pts = to_points(&exp, &Vec::new(), 0);
        apply_field_set(&mut pts, FieldSet::Reduced);
        let names: Vec<_> = pts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_DEV_GPU_UTIL"]
        );
        let engine = expo::parse("vllm:num_requests_running 1\n", expo::Format::Prometheus);
        let mut pts = to_points(&engine, &Vec::new(), 0);
        apply_field_set(&mut pts, FieldSet::Reduced);
        assert_eq!(pts.len(), 1, "engines are never reduced");
    }
}
