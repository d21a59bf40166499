//! `[[jobs]]`: the batch layer's scheduled jobs, and the cron schedules they run on.

use crate::{ByteSize, HumanDuration};

/// `[[jobs]]`: one batch job. Each run reads one closed period of a stream's raw archive
/// from the lake, puts it through the stream's plugins again (or the versions a backfill
/// names) and computes each of its [`levels`](Self::levels) over the events, writing each
/// level's rows to its sinks as one commit per sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobConfig {
    /// `name`: as a stream's name; unique among jobs. Required.
    pub name: String,
    /// `stream`: the stream whose raw archive the job reads. Required.
    pub stream: String,
    /// `input`: the lake sink holding that raw archive. By default the first sink of
    /// type `lake` in the stream's `raw` route.
    pub input: String,
    /// `parser`: by default the stream's.
    pub parser: String,
    /// `enrichers`: by default the stream's.
    pub enrichers: Vec<String>,
    /// `period`: the event time one run covers, aligned to the Unix epoch (UTC days for
    /// `1d`). By default 1 day.
    pub period: HumanDuration,
    /// `lateness`: how long after a period's end records of it may still reach the raw
    /// archive: a run reads records that arrived up to this long after the period, and a
    /// scheduled run covers the newest period closed this long ago. By default 1 hour.
    pub lateness: HumanDuration,
    /// `schedule`: when runs start, a cron expression in UTC (`"30 1 * * *"`: 01:30
    /// every day). By default none: the job runs on demand only (`weir batch run`).
    pub schedule: Option<Schedule>,
    /// `batch_size`: records per plugin call, 1 to 100 000. By default 1 024.
    pub batch_size: usize,
    /// `max_input_bytes`: the most bytes of record data one run holds. A run holds its
    /// period's records and events in memory (up to about 9× the archive's bytes), so a
    /// period holding more fails while it is read, before anything is delivered, naming
    /// the limit. By default 1 GiB.
    pub max_input_bytes: ByteSize,
    /// `events`: sinks the run's events (after the plugins) are written to. By default
    /// none.
    pub events: Vec<String>,
    /// `dead_letters`: sinks for records the plugins refuse and rows a level cannot
    /// write. By default the stream's dead-letter route.
    pub dead_letters: Vec<String>,
    /// `[[jobs.tables]]`: more inputs for the levels' SQL: lake prefixes read as tables.
    /// By default none.
    pub tables: Vec<JobTable>,
    /// `[[jobs.levels]]`: what the run computes. At least one.
    pub levels: Vec<JobLevel>,
}

/// `[[jobs.tables]]`: Parquet or NDJSON files under a prefix of the job's lake, or a
/// reference table, as a table the levels' SQL can join with `events` (another stream's
/// events, a dimension table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTable {
    /// `name`: the SQL table name, `a-z`, `0-9` and `_`, not `events`. Required.
    pub name: String,
    /// `path`: the prefix in the lake, e.g. `events/stream=payments`. Required unless
    /// `reference` is given (then empty).
    pub path: String,
    /// `reference`: a `[reference.NAME]` table of type `file` instead of a lake prefix:
    /// one row per key, `_key` and one column per top-level member of the documents
    /// (types inferred from the JSON).
    pub reference: Option<String>,
    /// `format`: `parquet` (the default) or `ndjson`.
    pub format: TableFormat,
    /// `partitions`: hive partition columns of the directories under the prefix, in
    /// order (`["date"]` for the lake's own layout); filters on them prune the listing.
    /// By default none.
    pub partitions: Vec<String>,
}

/// The files of a [`JobTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// `parquet`: `*.parquet`.
    Parquet,
    /// `ndjson`: `*.ndjson`, one JSON object per line (schema inferred).
    Ndjson,
}

impl JobConfig {
    /// The plugins the job runs and the world each is used as.
    pub fn plugins(&self) -> impl Iterator<Item = (&str, weir_runtime::World)> {
        use weir_runtime::World;
        std::iter::once((self.parser.as_str(), World::Parser))
            .chain(self.enrichers.iter().map(|name| (name.as_str(), World::Enricher)))
            .chain(self.levels.iter().filter_map(|level| match &level.compute {
                LevelCompute::Aggregator { plugin, .. } => Some((plugin.as_str(), World::Aggregator)),
                LevelCompute::Sql(_) => None,
            }))
    }

    /// The level named `name`.
    pub fn level(&self, name: &str) -> Option<&JobLevel> {
        self.levels.iter().find(|level| level.name == name)
    }
}

/// `[[jobs.levels]]`: one aggregation level of a job (per restaurant per day, per zone per
/// hour…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLevel {
    /// `name`: unique within the job. Its rows are written under the source
    /// `<job>.<level>` (the lake's `job=` directory, the warehouse's table). Required.
    pub name: String,
    /// `sql` or `aggregator`: how its rows are computed.
    pub compute: LevelCompute,
    /// `sinks`: where its rows go, as aggregates. Required (may be empty).
    pub sinks: Vec<String>,
    /// `replaces_stream_aggregates`: the level recomputes the stream's own aggregates
    /// (same aggregator plugin, same window), so for the periods it has run,
    /// `GET /v1/aggregates/{stream}` answers its rows instead of the stream's. By
    /// default false.
    pub replaces_stream_aggregates: bool,
}

impl JobLevel {
    /// The source its rows are written under: `<job>.<level>`.
    pub fn source(&self, job: &str) -> String {
        format!("{job}.{}", self.name)
    }
}

/// How a level computes its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LevelCompute {
    /// `sql`: a DataFusion SQL query over the table `events` (the run's events, columns as
    /// in the lake: `_key`, `_time`, then one per field). Its result columns become the
    /// rows' fields; a `_key` column (text) is the row's key and a `_time` column (a
    /// timestamp) its time (else the period's start).
    Sql(String),
    /// `aggregator`: an aggregator plugin over tumbling windows of `window`, grouped by the
    /// events' key (or the text field `key_field`); partial states of the run's
    /// partitions are combined with the plugin's `merge`.
    Aggregator {
        /// `aggregator`: the plugin.
        plugin: String,
        /// `window`: by default the job's period.
        window: HumanDuration,
        /// `key_field`: group by this text field instead of the events' key.
        key_field: Option<String>,
    },
}

/// A cron schedule in UTC: five fields (minute 0-59, hour 0-23, day of month 1-31,
/// month 1-12, day of week 0-7 with 0 and 7 Sunday), each `*`, a number, a range `a-b`,
/// a step `*/n` or `a-b/n`, or a list of those separated by commas. As in cron, when
/// both day fields are restricted a day matching either runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    any_day: bool,
    any_weekday: bool,
}

impl Schedule {
    /// Parses a five-field cron expression.
    ///
    /// # Errors
    /// What is wrong with which field, and what is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "{text:?} has {} fields; a cron schedule has five: minute hour day-of-month month day-of-week \
                 (UTC), e.g. \"30 1 * * *\" for 01:30 every day",
                fields.len()
            ));
        }
        let minutes = field(fields[0], "minute", 0, 59)?;
        let hours = field(fields[1], "hour", 0, 23)?;
        let days = field(fields[2], "day of month", 1, 31)?;
        let months = field(fields[3], "month", 1, 12)?;
        let mut weekdays = field(fields[4], "day of week", 0, 7)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Self {
            text: fields.join(" "),
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: (weekdays & 0x7f) as u8,
            any_day: fields[2] == "*",
            any_weekday: fields[4] == "*",
        })
    }

    /// The expression, fields separated by one space.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first time the schedule fires strictly after `after` (microseconds since the
    /// Unix epoch, UTC), on a whole minute. `None` when it never does within eight years
    /// (`0 0 31 2 *`).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        const MINUTE: i64 = 60_000_000;
        const DAY: i64 = 24 * 60 * MINUTE;
        let mut minute = after.div_euclid(MINUTE) + 1;
        let last = minute + 8 * 366 * 24 * 60;
        while minute < last {
            let day = (minute * MINUTE).div_euclid(DAY);
            let (_, month, day_of_month) = civil_from_days(day);
            let weekday = (day + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday
            let day_matches = match (self.any_day, self.any_weekday) {
                (true, true) => true,
                (false, true) => self.days & (1 << day_of_month) != 0,
                (true, false) => self.weekdays & (1 << weekday) != 0,
                (false, false) => self.days & (1 << day_of_month) != 0 || self.weekdays & (1 << weekday) != 0,
            };
            if !day_matches || self.months & (1 << month) == 0 {
                minute = (day + 1) * 24 * 60;
                continue;
            }
            let minute_of_day = minute - day * 24 * 60;
            let (hour, min) = (minute_of_day / 60, minute_of_day % 60);
            if self.hours & (1 << hour) == 0 {
                minute = day * 24 * 60 + (hour + 1) * 60;
                continue;
            }
            if self.minutes & (1 << min) == 0 {
                minute += 1;
                continue;
            }
            return Some(minute * MINUTE);
        }
        None
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The bit set of values one cron field allows.
fn field(text: &str, name: &str, min: u32, max: u32) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in text.split(',') {
        let bad = |why: &str| {
            format!(
                "the {name} field {text:?}: {why}; expected *, a number from {min} to {max}, a range a-b, a step */n or a-b/n, or a list of those"
            )
        };
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| bad("the step is not a positive number"))?,
            ),
            None => (part, 1),
        };
        let number = |text: &str| -> Result<u32, String> {
            text.parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| bad(&format!("{text:?} is out of range")))
        };
        let (from, to) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (number(a)?, number(b)?);
            if a > b {
                return Err(bad("a range must go upwards"));
            }
            (a, b)
        } else {
            let n = number(range)?;
            (n, if step > 1 { max } else { n })
        };
        for value in (from..=to).step_by(step as usize) {
            bits |= 1 << value;
        }
    }
    Ok(bits)
}

/// (year, month 1-12, day 1-31) of a day number since 1970-01-01 (Howard Hinnant's
/// algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        weir_events::time::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn a_daily_schedule_fires_once_a_day_at_its_minute() {
        let daily = Schedule::parse("30 1 * * *").unwrap();
        assert_eq!(daily.next_after(at("2026-12-01T00:00:00Z")), Some(at("2026-12-01T01:30:00Z")));
        assert_eq!(daily.next_after(at("2026-12-01T01:30:00Z")), Some(at("2026-12-02T01:30:00Z")));
    }

    #[test]
    fn steps_lists_ranges_and_weekdays() {
        let every_quarter = Schedule::parse("*/15 * * * *").unwrap();
        assert_eq!(every_quarter.next_after(at("2026-12-01T10:16:00Z")), Some(at("2026-12-01T10:30:00Z")));
        let weekdays = Schedule::parse("0 9,17 * * 1-5").unwrap();
        // 2026-12-05 is a Saturday: the next run is Monday 09:00.
        assert_eq!(weekdays.next_after(at("2026-12-04T17:00:00Z")), Some(at("2026-12-07T09:00:00Z")));
        let sunday = Schedule::parse("0 0 * * 7").unwrap();
        assert_eq!(sunday.next_after(at("2026-12-01T00:00:00Z")), Some(at("2026-12-06T00:00:00Z")));
        let month_end = Schedule::parse("0 0 31 * *").unwrap();
        assert_eq!(month_end.next_after(at("2026-11-01T00:00:00Z")), Some(at("2026-12-31T00:00:00Z")));
        assert_eq!(Schedule::parse("0 0 31 2 *").unwrap().next_after(0), None);
    }

    #[test]
    fn malformed_schedules_say_which_field_is_wrong() {
        assert!(Schedule::parse("30 1 * *").unwrap_err().contains("has 4 fields"));
        assert!(Schedule::parse("61 * * * *").unwrap_err().contains("minute field"));
        assert!(Schedule::parse("* * * * 1-9").unwrap_err().contains("day of week"));
        assert!(Schedule::parse("*/0 * * * *").unwrap_err().contains("step"));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_423), (2025, 12, 1));
    }
}
