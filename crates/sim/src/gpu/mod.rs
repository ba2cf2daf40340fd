//! The GPU model: what a DCGM exporter would read from each simulated GPU.
//!
//! Activity ratios (tensor pipe, SM, DRAM, graphics engine) follow the batch step by step
//! and are smoothed over about a second, as DCGM's profiling counters are. Power follows
//! activity and SM clock; temperature follows power with a first-order thermal lag (tens
//! of seconds); above the slowdown temperature the SM clock drops until power and cooling
//! balance, and the engine's steps slow by the same ratio.

use crate::rng::Rng;

/// Identity labels of one GPU, as the DCGM exporter writes them.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuIdentity {
    /// Index (`gpu` label).
    pub index: u32,
    /// `UUID` label.
    pub uuid: String,
    /// `pci_bus_id` label.
    pub pci_bus_id: String,
    /// `device` label (`nvidia0`).
    pub device: String,
    /// `modelName` label.
    pub model_name: String,
}

impl GpuIdentity {
    /// Deterministic identity for GPU `index` of a run seeded with `seed`.
    pub fn new(seed: u64, index: u32, model_name: &str) -> GpuIdentity {
        const BUSES: [u8; 8] = [0x19, 0x3B, 0x4C, 0x5D, 0x9B, 0xBB, 0xCB, 0xDB];
        let mut r = Rng::fork(seed, 0x6770_7500 + index as u64);
        let (a, b) = (r.next_u64(), r.next_u64());
        GpuIdentity {
            index,
            uuid: format!(
                "GPU-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                (a >> 32) as u32,
                (a >> 16) as u16,
                a as u16,
                (b >> 48) as u16,
                b & 0xffff_ffff_ffff
            ),
            pci_bus_id: format!("00000000:{:02X}:00.0", BUSES[index as usize % BUSES.len()]),
            device: format!("nvidia{index}"),
            model_name: model_name.to_string(),
        }
    }
}

/// What the GPU does during some interval (ratios 0..1, rates in bytes/s).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Activity {
    /// Graphics engine active (any kernel running).
    pub gr: f64,
    /// SMs with at least one warp.
    pub sm: f64,
    /// Warps resident per SM, normalised.
    pub occupancy: f64,
    /// Tensor (HMMA) pipe active.
    pub tensor: f64,
    /// HBM interface active.
    pub dram: f64,
    /// NVLink bytes/s sent (and received: all-reduce is symmetric).
    pub nvlink_bps: f64,
    /// PCIe bytes/s host to GPU.
    pub pcie_rx_bps: f64,
    /// PCIe bytes/s GPU to host.
    pub pcie_tx_bps: f64,
    /// Activation memory in use beyond the static allocation, MiB.
    pub workspace_mib: f64,
}

impl Activity {
    /// Time-weighted mix of two activities (`w` = weight of `b`).
    pub fn mix(a: &Activity, b: &Activity, w: f64) -> Activity {
        let m = |x: f64, y: f64| x + (y - x) * w;
        Activity {
            gr: m(a.gr, b.gr),
            sm: m(a.sm, b.sm),
            occupancy: m(a.occupancy, b.occupancy),
            tensor: m(a.tensor, b.tensor),
            dram: m(a.dram, b.dram),
            nvlink_bps: m(a.nvlink_bps, b.nvlink_bps),
            pcie_rx_bps: m(a.pcie_rx_bps, b.pcie_rx_bps),
            pcie_tx_bps: m(a.pcie_tx_bps, b.pcie_tx_bps),
            workspace_mib: a.workspace_mib.max(b.workspace_mib),
        }
    }

    /// Nothing running (a trickle of PCIe housekeeping).
    pub fn idle() -> Activity {
        Activity {
            pcie_rx_bps: 40_000.0,
            pcie_tx_bps: 25_000.0,
            ..Activity::default()
        }
    }

    /// Spinning in a collective that does not complete (NCCL stall): the kernel occupies a
    /// few SMs, the tensor pipe and NVLink are silent.
    pub fn stalled() -> Activity {
        Activity {
            gr: 1.0,
            sm: 0.06,
            occupancy: 0.02,
            tensor: 0.0,
            dram: 0.01,
            ..Activity::idle()
        }
    }
}

/// Thermal and electrical constants of one GPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thermal {
    /// Inlet air, °C.
    pub ambient_c: f64,
    /// Thermal resistance to air, °C/W (scenarios raise it when cooling degrades).
    pub resistance_c_per_w: f64,
    /// Thermal time constant, s.
    pub tau_s: f64,
    /// SM clock starts dropping above this, °C.
    pub slowdown_c: f64,
    /// MHz dropped per °C above `slowdown_c`.
    pub mhz_per_c: f64,
    /// Lowest throttled clock, MHz.
    pub min_clock_mhz: f64,
}

impl Default for Thermal {
    fn default() -> Thermal {
        Thermal {
            ambient_c: 28.0,
            resistance_c_per_w: 0.075,
            tau_s: 40.0,
            slowdown_c: 85.0,
            mhz_per_c: 60.0,
            min_clock_mhz: 900.0,
        }
    }
}

/// `DCGM_FI_DEV_CLOCK_THROTTLE_REASONS` bits.
pub mod throttle {
    /// Nothing running.
    pub const GPU_IDLE: u64 = 0x1;
    /// Software thermal slowdown.
    pub const SW_THERMAL: u64 = 0x20;
    /// Hardware thermal slowdown.
    pub const HW_THERMAL: u64 = 0x40;
}

/// One simulated GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpu {
    /// Identity labels.
    pub id: GpuIdentity,
    /// Thermal constants (scenarios change the resistance).
    pub thermal: Thermal,
    /// Framebuffer, MiB.
    pub fb_total_mib: f64,
    /// Static allocation (context, weights shard, KV pool, graphs), MiB.
    pub fb_static_mib: f64,
    /// Reserved by the driver, MiB.
    pub fb_reserved_mib: f64,
    power_idle_w: f64,
    power_max_w: f64,
    clock_max_mhz: f64,
    clock_idle_mhz: f64,
    /// Memory clock, MHz.
    pub mem_clock_mhz: f64,
    /// Smoothed activity (what DCGM reports).
    pub avg: Activity,
    /// Latest activity.
    pub now: Activity,
    /// Core temperature, °C.
    pub temp_c: f64,
    /// Smoothed board power, W.
    pub power_w: f64,
    /// Energy since "boot", mJ.
    pub energy_mj: f64,
    /// Current SM clock, MHz.
    pub sm_clock_mhz: f64,
    /// Throttle reason bits.
    pub throttle_reasons: u64,
    /// NVLink bytes since boot (all lanes, both directions).
    pub nvlink_total_bytes: f64,
    /// Last XID error (0: none).
    pub xid_last: u32,
    /// PCIe replays since boot.
    pub pcie_replays: u64,
}

/// Electrical and clock limits for [`Gpu::new`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuLimits {
    /// Framebuffer, MiB.
    pub fb_total_mib: f64,
    /// Static allocation, MiB.
    pub fb_static_mib: f64,
    /// Idle board power, W.
    pub power_idle_w: f64,
    /// Full-activity board power at boost clock, W.
    pub power_max_w: f64,
    /// Boost SM clock, MHz.
    pub clock_max_mhz: f64,
    /// Idle SM clock, MHz.
    pub clock_idle_mhz: f64,
    /// Memory clock, MHz.
    pub mem_clock_mhz: f64,
}

const SMOOTHING_S: f64 = 1.0;

impl Gpu {
    /// A GPU at rest.
    pub fn new(id: GpuIdentity, limits: GpuLimits, thermal: Thermal) -> Gpu {
        let temp = thermal.ambient_c + thermal.resistance_c_per_w * limits.power_idle_w;
        Gpu {
            id,
            thermal,
            fb_total_mib: limits.fb_total_mib,
            fb_static_mib: limits.fb_static_mib,
            fb_reserved_mib: 479.0,
            power_idle_w: limits.power_idle_w,
            power_max_w: limits.power_max_w,
            clock_max_mhz: limits.clock_max_mhz,
            clock_idle_mhz: limits.clock_idle_mhz,
            mem_clock_mhz: limits.mem_clock_mhz,
            avg: Activity::idle(),
            now: Activity::idle(),
            temp_c: temp,
            power_w: limits.power_idle_w,
            energy_mj: 0.0,
            sm_clock_mhz: limits.clock_idle_mhz,
            throttle_reasons: throttle::GPU_IDLE,
            nvlink_total_bytes: 0.0,
            xid_last: 0,
            pcie_replays: 0,
        }
    }

    /// The clock the GPU can run kernels at given its temperature, MHz.
    pub fn busy_clock_mhz(&self) -> f64 {
        let t = &self.thermal;
        if self.temp_c <= t.slowdown_c {
            self.clock_max_mhz
        } else {
            (self.clock_max_mhz - t.mhz_per_c * (self.temp_c - t.slowdown_c))
                .clamp(t.min_clock_mhz, self.clock_max_mhz)
        }
    }

    /// Framebuffer in use, MiB.
    pub fn fb_used_mib(&self) -> f64 {
        (self.fb_static_mib + self.now.workspace_mib).min(self.fb_total_mib - self.fb_reserved_mib)
    }

    /// Lives `dt` seconds doing `a`.
    pub fn advance(&mut self, dt: f64, a: &Activity) {
        if dt <= 0.0 {
            self.now = *a;
            return;
        }
        let k = 1.0 - (-dt / SMOOTHING_S).exp();
        self.avg = Activity::mix(&self.avg, a, k);
        self.now = *a;
        let busy = a.gr > 0.05;
        let clock = if busy {
            self.busy_clock_mhz()
        } else {
            self.clock_idle_mhz
        };
        self.sm_clock_mhz = clock;
        let f = clock / self.clock_max_mhz;
        let use_ = 0.1 * a.gr + 0.3 * a.sm + 0.4 * a.tensor + 0.2 * a.dram;
        let p = (self.power_idle_w + (self.power_max_w - self.power_idle_w) * use_ * f * f)
            .min(self.power_max_w);
        self.energy_mj += p * dt * 1000.0;
        self.power_w += (p - self.power_w) * k;
        let t = &self.thermal;
        let target = t.ambient_c + t.resistance_c_per_w * p;
        self.temp_c += (target - self.temp_c) * (1.0 - (-dt / t.tau_s).exp());
        self.nvlink_total_bytes += 2.0 * a.nvlink_bps * dt;
        self.throttle_reasons = if !busy {
            throttle::GPU_IDLE
        } else if self.temp_c > t.slowdown_c {
            throttle::SW_THERMAL | throttle::HW_THERMAL
        } else {
            0
        };
    }

    /// Memory (HBM) temperature, °C.
    pub fn memory_temp_c(&self) -> f64 {
        self.temp_c + 4.0 + 10.0 * self.avg.dram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu() -> Gpu {
        Gpu::new(
            GpuIdentity::new(1, 0, "NVIDIA H100 80GB HBM3"),
            GpuLimits {
                fb_total_mib: 81559.0,
                fb_static_mib: 72000.0,
                power_idle_w: 70.0,
                power_max_w: 700.0,
                clock_max_mhz: 1980.0,
                clock_idle_mhz: 345.0,
                mem_clock_mhz: 2619.0,
            },
            Thermal::default(),
        )
    }

    fn busy() -> Activity {
        Activity {
            gr: 1.0,
            sm: 0.8,
            occupancy: 0.3,
            tensor: 0.5,
            dram: 0.7,
            ..Activity::idle()
        }
    }

    #[test]
    fn identity_is_deterministic_and_dcgm_shaped() {
        let a = GpuIdentity::new(9, 1, "m");
        assert_eq!(a, GpuIdentity::new(9, 1, "m"));
        assert_ne!(a.uuid, GpuIdentity::new(9, 0, "m").uuid);
        assert!(
            a.uuid.starts_with("GPU-") && a.uuid.len() == 40,
            "{}",
            a.uuid
        );
        assert_eq!(
            (a.device.as_str(), a.pci_bus_id.as_str()),
            ("nvidia1", "00000000:3B:00.0")
        );
    }

    #[test]
    fn temperature_lags_power_and_bad_cooling_throttles() {
        let mut g = gpu();
        let t0 = g.temp_c;
        g.advance(1.0, &busy());
        let t1 = g.temp_c;
        for _ in 0..300 {
            g.advance(1.0, &busy());
        }
        assert!(t1 > t0 && t1 - t0 < 5.0, "inertia: {t0} -> {t1}");
        assert!(
            g.temp_c < 80.0 && g.sm_clock_mhz == 1980.0,
            "healthy: {g:?}"
        );
        assert!(g.power_w > 350.0);
        g.thermal.resistance_c_per_w = 0.22;
        for _ in 0..300 {
            g.advance(1.0, &busy());
        }
        assert!(g.temp_c > 87.0, "{}", g.temp_c);
        assert!(g.sm_clock_mhz < 1700.0, "{}", g.sm_clock_mhz);
        assert_ne!(g.throttle_reasons & throttle::HW_THERMAL, 0);
        g.advance(600.0, &Activity::idle());
        assert_eq!(g.sm_clock_mhz, 345.0);
        assert!(g.temp_c < 60.0);
    }
}
