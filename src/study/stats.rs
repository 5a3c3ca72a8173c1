//! The statistics the studies report: order statistics, and 95% bootstrap confidence intervals
//! for a median and for the difference of two medians.
//!
//! The bootstrap is written here rather than taken from a crate: it is twenty lines, and its
//! generator (splitmix64 with a fixed seed) makes every interval reproducible bit for bit across
//! builds, which `rand`'s generators do not promise between versions.

use serde::Serialize;

/// Resamples per bootstrap interval: enough for stable 2.5/97.5 percentiles of the median.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;
/// Seed of the bootstrap generator (any fixed value; fixed so reports are reproducible).
const SEED: u64 = 0x5EED_CAFE_F00D_0001;

/// The value at quantile `q` (0..=1) of sorted data, linearly interpolated between order
/// statistics (type 7, as numpy's and R's default); None for no data.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    let fraction = position - low as f64;
    Some(sorted[low] + (sorted[high] - sorted[low]) * fraction)
}

/// Sorted copy without NaN.
pub fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// An estimate with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// splitmix64: tiny, fast, and good enough to pick resampling indices.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        // Multiply-shift: uniform enough for bounds far below 2^64.
        ((self.next() as u128 * bound as u128) >> 64) as usize
    }
}

fn median_of(values: &mut [f64]) -> f64 {
    let mid = values.len() / 2;
    let (_, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if values.len() % 2 == 1 {
        return upper;
    }
    let lower = values[..mid].iter().copied().fold(f64::MIN, f64::max);
    (lower + upper) / 2.0
}

/// The median of `values`.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut copy: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    (!copy.is_empty()).then(|| median_of(&mut copy))
}

fn resampled_median(values: &[f64], rng: &mut SplitMix, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend((0..values.len()).map(|_| values[rng.below(values.len())]));
    median_of(scratch)
}

fn percentile_interval(estimate: f64, mut replicates: Vec<f64>) -> Interval {
    replicates.sort_by(f64::total_cmp);
    Interval {
        estimate,
        low: quantile(&replicates, 0.025).unwrap_or(estimate),
        high: quantile(&replicates, 0.975).unwrap_or(estimate),
    }
}

/// The median with a 95% percentile-bootstrap interval; None for no data.
pub fn median_ci(values: &[f64]) -> Option<Interval> {
    let clean: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    let estimate = median(&clean)?;
    let mut rng = SplitMix(SEED);
    let mut scratch = Vec::with_capacity(clean.len());
    let replicates = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| resampled_median(&clean, &mut rng, &mut scratch))
        .collect();
    Some(percentile_interval(estimate, replicates))
}

/// median(`treated`) - median(`control`) with a 95% percentile-bootstrap interval, both groups
/// resampled independently; None when either is empty.
pub fn median_difference_ci(treated: &[f64], control: &[f64]) -> Option<Interval> {
    let estimate = median(treated)? - median(control)?;
    let mut rng = SplitMix(SEED);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let replicates = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            resampled_median(treated, &mut rng, &mut a)
                - resampled_median(control, &mut rng, &mut b)
        })
        .collect();
    Some(percentile_interval(estimate, replicates))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let data = sorted(&[4.0, 1.0, 3.0, 2.0, f64::NAN]);
        assert_eq!(data, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(quantile(&data, 0.5), Some(2.5));
        assert_eq!(quantile(&data, 0.0), Some(1.0));
        assert_eq!(quantile(&data, 1.0), Some(4.0));
        assert!((quantile(&data, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn bootstrap_intervals_cover_the_estimate_and_shrink_with_more_data() {
        let noisy = |n: usize| -> Vec<f64> {
            let mut rng = SplitMix(7);
            (0..n)
                .map(|_| 100.0 + (rng.below(1000) as f64) / 100.0)
                .collect()
        };
        let small = median_ci(&noisy(30)).unwrap();
        let large = median_ci(&noisy(3000)).unwrap();
        for interval in [small, large] {
            assert!(interval.low <= interval.estimate && interval.estimate <= interval.high);
        }
        assert!(large.high - large.low < small.high - small.low);
        assert!((large.estimate - 105.0).abs() < 0.5, "{large:?}");
        assert_eq!(median_ci(&noisy(30)), Some(small), "reproducible");

        let shifted: Vec<f64> = noisy(500).iter().map(|v| v + 2.0).collect();
        let difference = median_difference_ci(&shifted, &noisy(500)).unwrap();
        assert!((difference.estimate - 2.0).abs() < 1e-9);
        assert!(
            difference.low > 0.5 && difference.high < 3.5,
            "{difference:?}"
        );
        assert_eq!(median_difference_ci(&[], &[1.0]), None);
    }
}
