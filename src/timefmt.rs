//! Time as tracer shows and reads it: microseconds since the epoch inside,
//! RFC 3339 (UTC) outside.

use crate::model::Micros;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn now_micros() -> Micros {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_micros() as Micros
}

/// `2026-11-23T18:54:02.123456Z`
pub fn rfc3339(at: Micros) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(at as i128 * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| at.to_string())
}

/// `2026-11-23 18:54:02` for tables.
pub fn short(at: Micros) -> String {
    let s = rfc3339(at);
    s.get(..19).map(|s| s.replace('T', " ")).unwrap_or(s)
}

/// Reads a time a user typed: RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC), a date,
/// or a span back from `now` such as `90s`, `10m`, `2h`, `1d`.
pub fn parse_user_time(s: &str, now: Micros) -> Result<Micros, String> {
    let s = s.trim();
    if let Some(span) = parse_span(s) {
        return Ok(now - span);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1000) as Micros);
    }
    let with_t = s.replacen(' ', "T", 1);
    for candidate in [format!("{with_t}Z"), format!("{with_t}T00:00:00Z")] {
        if let Ok(t) = OffsetDateTime::parse(&candidate, &Rfc3339) {
            return Ok((t.unix_timestamp_nanos() / 1000) as Micros);
        }
    }
    Err(format!(
        "{s:?} is not a time: use RFC 3339 (2026-11-23T10:00:00Z), '2026-11-23 10:00:00' (UTC) or a span like 10m"
    ))
}

fn parse_span(s: &str) -> Option<Micros> {
    let unit_at = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(unit_at);
    let n: i64 = n.parse().ok()?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    Some(n * secs * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = 1_700_000_000_123_456;
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123456Z");
        assert_eq!(parse_user_time(&rfc3339(t), 0).unwrap(), t);
        assert_eq!(
            parse_user_time("2023-11-14 22:13:20", 0).unwrap(),
            1_700_000_000_000_000
        );
        assert_eq!(parse_user_time("10m", 1_000_000_000).unwrap(), 400_000_000);
        assert!(parse_user_time("yesterday", 0).is_err());
        assert_eq!(short(t), "2023-11-14 22:13:20");
    }
}
