//! The scrape targets of `strata up`.

use sources::gpu::nvml::NvmlCollector;
use sources::scrape::{KindProfiles, NvmlTarget, Target, TargetKind, TargetSpec};

use super::UpArgs;

/// The scraper's targets from the flags.
pub(crate) async fn targets(args: &UpArgs) -> Result<Vec<Target>, String> {
    let mut out: Vec<Target> = args
        .engines
        .iter()
        .map(|u| Target::Http(TargetSpec::new("engine", u.clone(), TargetKind::Engine)))
        .collect();
    for g in &args.gpus {
        if g == "nvml" {
            let node = crate::host::hostname();
            let n = node.clone();
            let collector = tokio::task::spawn_blocking(move || NvmlCollector::open(&n))
                .await
                .map_err(|e| format!("NVML task failed: {e}"))?
                .map_err(|e| format!("--gpu nvml: {e}"))?;
            out.push(Target::Nvml(NvmlTarget::new(
                collector,
                node,
                KindProfiles::gpu_default(),
            )));
        } else {
            let url = g
                .parse()
                .map_err(|e| format!("--gpu {g:?}: {e} (give a URL or `nvml`)"))?;
            out.push(Target::Http(TargetSpec::new("gpu", url, TargetKind::Gpu)));
        }
    }
    Ok(out)
}
