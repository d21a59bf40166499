//! The event-time period a run covers, its id, and which periods a schedule or a backfill
//! asks for.

use weir_events::time::{format_rfc3339, parse_rfc3339};

/// `[from, to)` in event time, microseconds since the Unix epoch, aligned to the job's
/// period length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    /// Start, inclusive.
    pub from: i64,
    /// End, exclusive.
    pub to: i64,
}

impl Period {
    /// The period of length `length` (µs, > 0) holding `time`.
    pub fn containing(time: i64, length: i64) -> Self {
        let from = time.div_euclid(length) * length;
        Self { from, to: from.saturating_add(length) }
    }

    /// The run id of the period: its start, `20261201T000000Z`. The same for every rerun
    /// and backfill of the period, so their outputs overwrite each other.
    pub fn run_id(&self) -> String {
        let text = format_rfc3339(self.from.div_euclid(1_000_000) * 1_000_000);
        text.replace(['-', ':'], "")
    }

    /// Whether `time` falls in the period.
    pub fn contains(&self, time: i64) -> bool {
        (self.from..self.to).contains(&time)
    }

    /// `2026-12-01T00:00:00Z..2026-12-02T00:00:00Z`.
    pub fn describe(&self) -> String {
        format!("{}..{}", format_rfc3339(self.from), format_rfc3339(self.to))
    }
}

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The newest period of length `length` closed at least `lateness` before `now`: what a
/// scheduled run at `now` covers.
pub fn closed_period(now: i64, length: i64, lateness: i64) -> Period {
    let current = Period::containing(now.saturating_sub(lateness), length);
    Period { from: current.from - length, to: current.from }
}

/// The periods of length `length` that meet `[from, to)`, in order (at most `max`).
///
/// # Errors
/// When `to` is not after `from`, or the range holds more than `max` periods.
pub fn periods_between(from: i64, to: i64, length: i64, max: usize) -> Result<Vec<Period>, String> {
    if to <= from {
        return Err(format!("--to {} is not after --from {}", format_rfc3339(to), format_rfc3339(from)));
    }
    let mut periods = Vec::new();
    let mut period = Period::containing(from, length);
    while period.from < to {
        if periods.len() == max {
            return Err(format!(
                "{}..{} holds more than {max} periods of the job; backfill it in parts",
                format_rfc3339(from),
                format_rfc3339(to)
            ));
        }
        periods.push(period);
        period = Period { from: period.to, to: period.to.saturating_add(length) };
    }
    Ok(periods)
}

/// A time given on the command line: RFC 3339 (`2026-12-01T00:00:00Z`) or a UTC date
/// (`2026-12-01`, its midnight).
///
/// # Errors
/// Neither form, with an example.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_owned() };
    parse_rfc3339(&full).map_err(|e| format!("{text:?} is not a time ({e}); write 2026-12-01 or 2026-12-01T06:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;
    const HOUR: i64 = 3_600_000_000;

    #[test]
    fn a_period_is_named_by_its_start() {
        let period = Period::containing(parse_time("2026-12-01T13:45:00Z").unwrap(), DAY);
        assert_eq!(period.run_id(), "20261201T000000Z");
        assert_eq!(period.describe(), "2026-12-01T00:00:00Z..2026-12-02T00:00:00Z");
    }

    #[test]
    fn a_scheduled_run_covers_the_newest_period_closed_for_the_lateness() {
        let at = |t| parse_time(t).unwrap();
        assert_eq!(closed_period(at("2026-12-02T01:30:00Z"), DAY, HOUR).run_id(), "20261201T000000Z");
        // 00:30 is within the hour of lateness after 2026-12-01 ended: the day before.
        assert_eq!(closed_period(at("2026-12-02T00:30:00Z"), DAY, HOUR).run_id(), "20261130T000000Z");
    }

    #[test]
    fn a_backfill_range_splits_into_whole_periods() {
        let periods = periods_between(parse_time("2026-12-01").unwrap(), parse_time("2026-12-03").unwrap(), DAY, 10);
        let ids: Vec<String> = periods.unwrap().iter().map(Period::run_id).collect();
        assert_eq!(ids, ["20261201T000000Z", "20261202T000000Z"]);
        assert!(periods_between(0, 100 * DAY, DAY, 10).unwrap_err().contains("more than 10"));
        assert!(periods_between(DAY, 0, DAY, 10).is_err());
    }
}
