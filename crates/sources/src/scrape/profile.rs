//! Scrape profiles: *steady* (engines 10 s, GPUs 5 s, full field set) and *incident*
//! (GPUs 250 ms, reduced field set), switchable at run time.

use std::time::Duration;

use crate::gpu::FieldSet;

/// Which profile the scraper runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Normal operation.
    Steady,
    /// Short-lived high-resolution GPU sampling, switched on by an alert.
    Incident,
}

/// What a target kind does under one profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfileSettings {
    /// Time between scrapes.
    pub interval: Duration,
    /// Per-scrape timeout (never more than the interval).
    pub timeout: Duration,
    /// GPU fields kept (engines always keep everything).
    pub fields: FieldSet,
}

/// The settings of both profiles for one target kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KindProfiles {
    /// *steady* settings.
    pub steady: ProfileSettings,
    /// *incident* settings.
    pub incident: ProfileSettings,
}

impl KindProfiles {
    /// Settings for `profile`.
    pub fn get(&self, profile: Profile) -> ProfileSettings {
        match profile {
            Profile::Steady => self.steady,
            Profile::Incident => self.incident,
        }
    }

    /// Engines: 10 s in both profiles ("vLLM kept at 10 s, no faster path exists").
    pub fn engine_default() -> KindProfiles {
        let steady = ProfileSettings {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            fields: FieldSet::Full,
        };
        KindProfiles {
            steady,
            incident: steady,
        }
    }

    /// GPUs: 5 s full field set; 250 ms reduced field set in an incident.
    pub fn gpu_default() -> KindProfiles {
        KindProfiles {
            steady: ProfileSettings {
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(4),
                fields: FieldSet::Full,
            },
            incident: ProfileSettings {
                interval: Duration::from_millis(250),
                timeout: Duration::from_millis(200),
                fields: FieldSet::Reduced,
            },
        }
    }
}
