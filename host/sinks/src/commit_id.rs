//! What a sink commit is of: a range of one shard of a stream's log, or one partition of
//! one run of a batch job. Sinks derive every key from it — object keys, file names,
//! record ids — so writing the same commit again overwrites instead of duplicating.
//!
//! Positions are text (decimal digits, as the log gives them: the embedded log's
//! sequence numbers, Kinesis' sequence numbers of up to 128 digits) and shard ids are
//! text too (`3`, `shardId-000000000003`). Sinks never do arithmetic on either.

use std::fmt::Write as _;

/// The identity of one commit: the same on every replay of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CommitId {
    /// Log records `first..=last` of one shard of a stream.
    Log(LogRange),
    /// Output partition `partition` of run `run` of a batch job.
    Job(JobPartition),
}

/// A range of one shard of a stream's log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogRange {
    /// The stream, e.g. `orders`.
    pub stream: String,
    /// The shard's id as the log gives it: `3`, `shardId-000000000003`.
    pub shard: String,
    /// The position of the first record (decimal digits).
    pub first: String,
    /// The position of the last record, inclusive.
    pub last: String,
}

/// One output partition of one run of a batch job.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobPartition {
    /// The job, e.g. `daily-restaurant-stats`.
    pub job: String,
    /// The run: the same text for a rerun of the same scheduled run (e.g. the scheduled
    /// time `20261201T000000Z`), so a rerun overwrites what the failed run wrote.
    pub run: String,
    /// The partition of the run's output.
    pub partition: u32,
}

/// Positions are zero-padded to this many digits in keys, so that the embedded log's
/// keys sort in log order (a `u64` has at most 20 digits; longer positions stay as they
/// are).
const POSITION_KEY_DIGITS: usize = 20;

impl CommitId {
    /// A log range (the usual case; for tests and the stage).
    pub fn log_range(stream: &str, shard: &str, first: &str, last: &str) -> Self {
        Self::Log(LogRange {
            stream: stream.to_owned(),
            shard: shard.to_owned(),
            first: first.to_owned(),
            last: last.to_owned(),
        })
    }

    /// A batch job's output partition.
    pub fn job_partition(job: &str, run: &str, partition: u32) -> Self {
        Self::Job(JobPartition { job: job.to_owned(), run: run.to_owned(), partition })
    }

    /// What the records come from: the stream, or the job. Sinks file outputs under it
    /// (the lake's `stream=`/`job=` directory, the warehouse's table directory, the
    /// serving document's `source`).
    pub fn source(&self) -> &str {
        match self {
            Self::Log(range) => &range.stream,
            Self::Job(part) => &part.job,
        }
    }

    /// The part of the source, as the source names it: the shard id (`3`,
    /// `shardId-000000000003`), or the job's run.
    pub fn part(&self) -> &str {
        match self {
            Self::Log(range) => &range.shard,
            Self::Job(part) => &part.run,
        }
    }

    /// [`part`](Self::part) as it appears in keys: a numbered shard padded to four digits
    /// (`0003`).
    pub fn part_key(&self) -> String {
        match self {
            Self::Log(range) => shard_key(&range.shard),
            Self::Job(part) => part.run.clone(),
        }
    }

    /// The lake's directory levels for this commit around the date:
    /// (`stream=orders`, `shard=0003`) or (`job=daily-stats`, `run=20261201T000000Z`).
    pub fn lake_dirs(&self) -> (String, String) {
        match self {
            Self::Log(range) => (format!("stream={}", range.stream), format!("shard={}", shard_key(&range.shard))),
            Self::Job(part) => (format!("job={}", part.job), format!("run={}", part.run)),
        }
    }

    /// The file stem within [`part`](Self::part): `00000000000000000042-00000000000000000057`
    /// for a log range, `part-00003` for a job partition.
    pub fn file_stem(&self) -> String {
        match self {
            Self::Log(range) => format!("{}-{}", position_key(&range.first), position_key(&range.last)),
            Self::Job(part) => format!("part-{:05}", part.partition),
        }
    }

    /// The deterministic id of output number `output` of the record at `position`
    /// (its log position, or its row in a job partition):
    /// `orders-0003-00000000000000000042-0`, `daily-stats-20261201T000000Z-00003-00000000000000000007-0`.
    pub fn record_id(&self, position: &str, output: usize) -> String {
        let mut id = String::with_capacity(self.source().len() + 48);
        let _ = match self {
            Self::Log(range) => {
                write!(id, "{}-{}-{}-{output}", range.stream, shard_key(&range.shard), position_key(position))
            }
            Self::Job(part) => {
                write!(id, "{}-{}-{:05}-{}-{output}", part.job, part.run, part.partition, position_key(position))
            }
        };
        id
    }
}

impl std::fmt::Display for CommitId {
    /// `orders/0003 [42..=57]` or `job daily-stats run 20261201T000000Z part 3`: how
    /// messages name the commit.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Log(range) => {
                write!(f, "{}/{} [{}..={}]", range.stream, shard_key(&range.shard), range.first, range.last)
            }
            Self::Job(part) => write!(f, "job {} run {} part {}", part.job, part.run, part.partition),
        }
    }
}

/// A shard id as it appears in keys: numbers padded to four digits, anything else as is.
fn shard_key(shard: &str) -> String {
    if !shard.is_empty() && shard.len() < 4 && shard.bytes().all(|b| b.is_ascii_digit()) {
        format!("{shard:0>4}")
    } else {
        shard.to_owned()
    }
}

/// A position as it appears in keys: zero-padded to [`POSITION_KEY_DIGITS`].
fn position_key(position: &str) -> String {
    format!("{position:0>POSITION_KEY_DIGITS$}")
}

/// Compares two positions (decimal digits without leading zeros) as the integers they
/// are: the longer one is larger, equal lengths compare as text.
pub fn compare_positions(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ranges_key_as_the_embedded_log_always_has() {
        let id = CommitId::log_range("orders", "3", "42", "57");
        assert_eq!(id.lake_dirs(), ("stream=orders".to_owned(), "shard=0003".to_owned()));
        assert_eq!(id.file_stem(), "00000000000000000042-00000000000000000057");
        assert_eq!(id.record_id("42", 0), "orders-0003-00000000000000000042-0");
        assert_eq!(id.to_string(), "orders/0003 [42..=57]");
    }

    #[test]
    fn kinesis_shards_and_long_sequence_numbers_key_without_loss() {
        let seq = "49590338271490256608559692538361571095921575989136588898";
        let id = CommitId::log_range("orders", "shardId-000000000003", seq, seq);
        assert_eq!(id.lake_dirs().1, "shard=shardId-000000000003");
        assert_eq!(id.file_stem(), format!("{seq}-{seq}"));
        assert_eq!(id.record_id(seq, 2), format!("orders-shardId-000000000003-{seq}-2"));
    }

    #[test]
    fn job_partitions_key_by_job_run_and_partition_the_same_on_every_rerun() {
        let id = CommitId::job_partition("daily-stats", "20261201T000000Z", 3);
        assert_eq!(id, CommitId::job_partition("daily-stats", "20261201T000000Z", 3));
        assert_eq!(id.lake_dirs(), ("job=daily-stats".to_owned(), "run=20261201T000000Z".to_owned()));
        assert_eq!(id.file_stem(), "part-00003");
        assert_eq!(id.record_id("7", 0), "daily-stats-20261201T000000Z-00003-00000000000000000007-0");
        assert_ne!(
            id.record_id("7", 0),
            CommitId::job_partition("daily-stats", "20261201T000000Z", 4).record_id("7", 0)
        );
        assert_eq!(id.to_string(), "job daily-stats run 20261201T000000Z part 3");
    }

    #[test]
    fn positions_compare_as_integers() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_positions("9", "10"), Less);
        assert_eq!(compare_positions("10", "10"), Equal);
        assert_eq!(compare_positions("0010", "9"), Greater);
        assert_eq!(
            compare_positions("49590338271490256608559692538361571095921575989136588898", "18446744073709551615"),
            Greater
        );
    }
}
