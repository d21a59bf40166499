//! Where a consumer is in a shard, and the batch it is working on.
//!
//! A stored checkpoint is one redb value:
//!
//! ```text
//! version 1:  [1] [next_seq: u64 LE] [pending flag: 0 | 1] ([first: u64 LE] [last: u64 LE])
//! ```
//!
//! The consumer's state is stored as given, in a table of its own.

use crate::record::Reader;

/// A consumer's position in one shard of a stream, read by
/// [`EmbeddedLog::checkpoint`](crate::EmbeddedLog::checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The first sequence number not yet processed: every record below it went through the
    /// consumer and was acknowledged by its sinks.
    pub next_seq: u64,
    /// The batch begun with [`EmbeddedLog::begin_batch`](crate::EmbeddedLog::begin_batch) and not
    /// yet committed. After a crash the consumer must process exactly this range again first.
    pub pending: Option<BatchRange>,
    /// The consumer's opaque state as of `next_seq` (aggregator states, for instance), stored by
    /// the last [`EmbeddedLog::commit_batch`](crate::EmbeddedLog::commit_batch). Empty before the
    /// first commit.
    pub state: Vec<u8>,
}

/// An inclusive range of sequence numbers, `first..=last`, processed as one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchRange {
    /// The batch's first sequence number.
    pub first: u64,
    /// The batch's last sequence number (included).
    pub last: u64,
}

const FORMAT_V1: u8 = 1;

/// A consumer's position in a shard: the stored part of a [`Checkpoint`] other than its
/// state, which is kept in a table of its own so that beginning a batch does not rewrite it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Position {
    pub(crate) next_seq: u64,
    pub(crate) pending: Option<BatchRange>,
}

pub(crate) fn encode(position: Position) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 8 + 1 + 16);
    out.push(FORMAT_V1);
    out.extend_from_slice(&position.next_seq.to_le_bytes());
    match position.pending {
        None => out.push(0),
        Some(range) => {
            out.push(1);
            out.extend_from_slice(&range.first.to_le_bytes());
            out.extend_from_slice(&range.last.to_le_bytes());
        }
    }
    out
}

pub(crate) fn decode(value: &[u8]) -> Result<Position, String> {
    let mut reader = Reader::new(value)?;
    let next_seq = reader.u64()?;
    let pending = match reader.u8()? {
        0 => None,
        1 => Some(BatchRange { first: reader.u64()?, last: reader.u64()? }),
        other => return Err(format!("pending-batch flag {other}, expected 0 or 1")),
    };
    if !reader.rest().is_empty() {
        return Err("unexpected bytes after the checkpoint".to_owned());
    }
    Ok(Position { next_seq, pending })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_decodes_to_what_was_encoded() {
        for pending in [None, Some(BatchRange { first: 3, last: 7 })] {
            let position = Position { next_seq: 3, pending };
            assert_eq!(decode(&encode(position)).unwrap(), position);
        }
        assert!(decode(&[1, 0]).unwrap_err().contains("ends early"));
    }
}
