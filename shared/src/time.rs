//! Wall-clock time as the contract writes it.

use chrono::{DateTime, SecondsFormat, Utc};

/// A duration in whole milliseconds, saturating.
pub fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// RFC 3339 in UTC with milliseconds, `2024-03-27T10:05:49.794Z`.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(unix_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_in_utc() {
        assert_eq!(rfc3339_ms(1_711_533_949_794), "2024-03-27T10:05:49.794Z");
        assert_eq!(rfc3339_ms(1_711_533_949_000), "2024-03-27T10:05:49.000Z");
    }
}
