//! How values read for people: times, durations, sizes, statuses. Shared
//! by the command line and the admin UI.

use crate::model::{Exchange, Micros};
use crate::timefmt::short;

/// `2026-11-23 18:54:02.123`
pub fn time_ms(at: Micros) -> String {
    format!("{}.{:03}", short(at), at.rem_euclid(1_000_000) / 1000)
}

pub fn status_text(ex: &Exchange) -> String {
    match (ex.status, &ex.error) {
        (Some(s), _) => match ex.reason.as_deref() {
            Some(r) if !r.is_empty() => format!("{s} {r}"),
            _ => s.to_string(),
        },
        (None, Some(_)) => "error".into(),
        (None, None) => "-".into(),
    }
}

pub fn duration(micros: i64) -> String {
    if micros < 1_000_000 {
        format!("{:.1}ms", micros as f64 / 1000.0)
    } else {
        format!("{:.2}s", micros as f64 / 1_000_000.0)
    }
}

pub fn size(n: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(1536), "1.5K");
        assert_eq!(size(3 * 1024 * 1024), "3.0M");
        assert_eq!(duration(12_345), "12.3ms");
        assert_eq!(duration(2_500_000), "2.50s");
        assert_eq!(time_ms(1_700_000_000_123_456), "2023-11-14 22:13:20.123");
    }
}
