//! The rule groups `strata up` evaluates.

use rules::GroupSpec;

use super::UpArgs;

/// Every rule group `strata up` evaluates, in evaluation order: the rule files given with
/// `--rules`. (Cost and custom SLO packs add their groups here.)
pub(crate) fn rule_groups(args: &UpArgs) -> Result<Vec<GroupSpec>, String> {
    let mut groups = Vec::new();
    for file in &args.rules {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read rule file {}: {e}", file.display()))?;
        let loaded = rules::load(&file.display().to_string(), &text).map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
            format!(
                "rule file {} is invalid:\n  {}",
                file.display(),
                lines.join("\n  ")
            )
        })?;
        groups.extend(loaded);
    }
    Ok(groups)
}
