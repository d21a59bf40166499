//! Where a record is: its shard's id and its position in that shard, both opaque to
//! consumers.
//!
//! The embedded log numbers shards `0..n` and records `0, 1, 2…`; Kinesis names shards
//! `shardId-000000000003` and gives records sequence numbers of up to 128 decimal digits,
//! increasing but with gaps, and splits and merges shards. A consumer therefore never does
//! arithmetic on either: it compares positions, keeps the last one it committed, and asks
//! the log for what comes after it.

use std::cmp::Ordering;
use std::fmt;

/// The most digits a [`Position`] may have: Kinesis documents sequence numbers of up to
/// 128 digits.
pub const MAX_POSITION_DIGITS: usize = 128;

/// The longest [`ShardId`], in bytes (Kinesis shard ids are at most 128 characters).
pub const MAX_SHARD_ID_BYTES: usize = 128;

/// A record's position in its shard: a non-negative integer of up to
/// [`MAX_POSITION_DIGITS`] decimal digits, compared as an integer (so
/// `9 < 10 < 49590338271490256608559692538361571095921575989136588898`).
///
/// Opaque to consumers: positions are compared, stored and shown, never added to.
/// Shown as its decimal digits without leading zeros, which for the embedded log is the
/// record's sequence number as before.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Position(Box<str>);

impl Position {
    /// Parses a decimal position; leading zeros are dropped.
    ///
    /// # Errors
    /// The text is empty, holds something other than ASCII digits, or is longer than
    /// [`MAX_POSITION_DIGITS`].
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.len() > MAX_POSITION_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
            let shown: String = text.chars().take(40).collect();
            return Err(format!("{shown:?} is not a position: expected 1 to {MAX_POSITION_DIGITS} decimal digits"));
        }
        let trimmed = text.trim_start_matches('0');
        Ok(Self(if trimmed.is_empty() { "0".into() } else { trimmed.into() }))
    }

    /// The position as decimal digits, without leading zeros.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The position as a `u64`, when it is one (always, for the embedded log).
    pub fn to_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }
}

impl From<u64> for Position {
    /// One allocation of the digits' length: ingest makes one per appended record.
    fn from(value: u64) -> Self {
        Self(itoa::Buffer::new().format(value).into())
    }
}

impl Ord for Position {
    fn cmp(&self, other: &Self) -> Ordering {
        // Without leading zeros, a longer number is a larger one; numbers of one length
        // compare digit by digit.
        self.0.len().cmp(&other.0.len()).then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Position({})", self.0)
    }
}

/// A shard's id: a name the log gives it, up to [`MAX_SHARD_ID_BYTES`] bytes of printable
/// ASCII. The embedded log's shards are `0`, `1`, …; Kinesis's `shardId-000000000000`, ….
///
/// Ordered by length, then by bytes, so that numbered shards sort as numbers.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ShardId(Box<str>);

impl ShardId {
    /// Checks and wraps a shard id.
    ///
    /// # Errors
    /// The id is empty, longer than [`MAX_SHARD_ID_BYTES`], or holds something other than
    /// printable ASCII (it is used in file names, metric labels and messages).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.len() > MAX_SHARD_ID_BYTES || !text.bytes().all(|b| b.is_ascii_graphic()) {
            let shown: String = text.chars().take(40).collect();
            return Err(format!(
                "{shown:?} is not a shard id: expected 1 to {MAX_SHARD_ID_BYTES} printable ASCII characters"
            ));
        }
        Ok(Self(text.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shard's number, when the id is one (always, for the embedded log).
    pub fn to_u32(&self) -> Option<u32> {
        self.0.parse().ok().filter(|_| !self.0.starts_with('0') || &*self.0 == "0")
    }
}

impl From<u32> for ShardId {
    /// One allocation of the digits' length: ingest makes one per appended record.
    fn from(value: u32) -> Self {
        Self(itoa::Buffer::new().format(value).into())
    }
}

impl Ord for ShardId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.len().cmp(&other.0.len()).then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for ShardId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShardId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(text: &str) -> Position {
        Position::parse(text).unwrap()
    }

    #[test]
    fn positions_compare_as_integers_of_any_length() {
        let kinesis = "49590338271490256608559692538361571095921575989136588898";
        let mut positions = [position(kinesis), position("10"), position("9"), position("0"), position("0010")];
        positions.sort();
        let shown: Vec<&str> = positions.iter().map(Position::as_str).collect();
        assert_eq!(shown, ["0", "9", "10", "10", kinesis]);
        assert!(position(kinesis) > Position::from(u64::MAX));
        assert_eq!(position("007"), Position::from(7));
    }

    #[test]
    fn a_position_shows_as_the_sequence_number_and_pads_like_one() {
        assert_eq!(Position::from(42).to_string(), "42");
        assert_eq!(format!("{:0>20}", Position::from(42)), format!("{:020}", 42));
        assert_eq!(Position::from(42).to_u64(), Some(42));
        assert_eq!(position(&"9".repeat(40)).to_u64(), None);
    }

    #[test]
    fn malformed_positions_are_refused_with_the_reason() {
        for bad in ["", "-1", "1e5", " 1", &"1".repeat(MAX_POSITION_DIGITS + 1)] {
            let error = Position::parse(bad).unwrap_err();
            assert!(error.contains("not a position"), "{bad:?}: {error}");
        }
        assert!(Position::parse(&"1".repeat(MAX_POSITION_DIGITS)).is_ok());
    }

    #[test]
    fn shard_ids_are_printable_and_numbered_ones_sort_as_numbers() {
        let mut ids: Vec<ShardId> = [10, 2, 0].into_iter().map(ShardId::from).collect();
        ids.sort();
        assert_eq!(ids, [ShardId::from(0), ShardId::from(2), ShardId::from(10)]);
        assert_eq!(format!("{:0>4}", ShardId::from(3)), "0003");
        assert_eq!(ShardId::from(3).to_u32(), Some(3));
        assert_eq!(ShardId::parse("shardId-000000000003").unwrap().to_u32(), None);
        assert_eq!(ShardId::parse("03").unwrap().to_u32(), None, "one shard, one spelling");
        for bad in ["", "a b", "é", &"s".repeat(MAX_SHARD_ID_BYTES + 1)] {
            assert!(ShardId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
