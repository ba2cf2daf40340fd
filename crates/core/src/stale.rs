//! Prometheus' staleness marker: a NaN with a distinct bit pattern that ends a series'
//! lookback ("this series is gone"), as opposed to an ordinary NaN sample.

/// The bit pattern of a staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// A staleness marker value.
pub fn marker() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// True for a staleness marker (not for other NaNs).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_a_nan_told_apart_from_other_nans() {
        assert!(marker().is_nan() && is_stale(marker()));
        assert!(!is_stale(f64::NAN) && !is_stale(0.0));
    }
}
