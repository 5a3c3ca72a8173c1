//! Whether a run's guest clock kept real time: the guest kernel calibrates its TSC at boot
//! against the PIT and checks the result against the HPET (or ACPI PM timer). When the two
//! disagree, Linux keeps the PIT value and, unless it refines the calibration later, the guest's
//! clock runs fast or slow by their ratio. Under QEMU TCG on a busy host the PIT calibration can
//! be off by 20x, which would distort every latency and arrival gap of that run. (A kernel that
//! then finds the TSCs of its cores unsynchronized keeps time with the HPET instead, which is
//! right.)

use std::path::Path;

/// Runs whose clock is off by more than this share are flagged and left out of comparisons.
pub const TOLERANCE: f64 = 0.05;

/// Guest seconds per real second as the console shows it; None when the console does not say
/// (no console, or a platform such as gem5 whose clock is simulated).
pub fn skew(console: &str) -> Option<f64> {
    let number_after = |marker: &str| -> Option<Vec<f64>> {
        let line = console.lines().rev().find(|line| line.contains(marker))?;
        let rest = &line[line.find(marker)? + marker.len()..];
        Some(
            rest.split(|c: char| c.is_whitespace() || c == ',')
                .filter_map(|word| word.parse::<f64>().ok())
                .collect(),
        )
    };
    let clocksource = console
        .lines()
        .rev()
        .find_map(|line| line.split("Switched to clocksource ").nth(1))
        .map(str::trim);
    let detected_mhz = number_after("tsc: Detected ")?.first().copied()?;
    if clocksource.is_some_and(|source| !source.starts_with("tsc")) {
        // The kernel keeps time with another clock (the HPET when it marked the TSC
        // unstable); the TSC's calibration then does not matter.
        return Some(1.0);
    }
    let final_mhz = number_after("Refined TSC clocksource calibration: ")
        .and_then(|values| values.first().copied())
        .unwrap_or(detected_mhz);
    // "tsc: PIT calibration deviates from HPET: <pit kHz> <reference kHz>"
    let reference_khz = ["deviates from HPET: ", "deviates from PMTIMER: "]
        .iter()
        .find_map(|marker| number_after(marker).and_then(|v| v.get(1).copied()));
    Some(match reference_khz {
        Some(khz) if final_mhz > 0.0 => khz / 1000.0 / final_mhz,
        _ => 1.0,
    })
}

/// The skew of the run in `dir` (from its console.log).
pub fn run_skew(dir: &Path) -> Option<f64> {
    skew(&std::fs::read_to_string(dir.join("console.log")).ok()?)
}

/// Whether a run's numbers can be compared with others.
pub fn trustworthy(skew: Option<f64>) -> bool {
    skew.is_none_or(|s| (s - 1.0).abs() <= TOLERANCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pit_calibration_that_disagrees_with_the_hpet_is_measured() {
        let bad = "[0.0] tsc: PIT calibration deviates from HPET: 303271 2594846\n\
                   [0.0] tsc: Detected 303.271 MHz processor\n";
        let skew = skew(bad).unwrap();
        assert!((skew - 8.556).abs() < 0.01, "{skew}");
        assert!(!trustworthy(Some(skew)));
        let on_hpet = format!("{bad}[0.5] clocksource: Switched to clocksource hpet\n");
        assert_eq!(super::skew(&on_hpet), Some(1.0));
        let on_tsc = format!("{bad}[0.5] clocksource: Switched to clocksource tsc\n");
        assert!(super::skew(&on_tsc).unwrap() > 8.0);
        let refined = format!("{bad}[1.1] tsc: Refined TSC clocksource calibration: 2594.9 MHz\n");
        assert!((super::skew(&refined).unwrap() - 1.0).abs() < 0.001);
        assert_eq!(
            super::skew("[0.0] tsc: Detected 2595.128 MHz processor\n"),
            Some(1.0)
        );
        assert_eq!(super::skew("no tsc lines"), None);
        assert!(trustworthy(None));
    }
}
