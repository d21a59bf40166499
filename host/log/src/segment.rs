//! A shard's records as the log file stores them: the records one group commit appends to
//! one shard are one redb value, a segment, keyed by its first record's sequence number.
//!
//! One value per shard per transaction instead of one per record is what lets an append
//! transaction cost about an fsync: redb's B-tree insert per record, not the disk, was the
//! log's ceiling (BENCHMARKS.md, *A segment per shard per group commit*). A segment holds
//! consecutive sequence numbers, `first..first + count`, and is never changed once written,
//! except by retention, which rewrites the one segment it cuts through as its kept tail.
//!
//! ```text
//! layout 1:  [1] [count: u32 LE] count × ([len: u32 LE] [record, as crate::record encodes it])
//! ```

use crate::NewRecord;
use crate::record;

const LAYOUT_V1: u8 = 1;
const HEADER_BYTES: usize = 1 + 4;

/// A segment being written is closed once it holds this many bytes of records or
/// [`MAX_RECORDS`] records, so that it is at most this plus one record, and a reader that
/// wants one record from the middle of a segment walks no more than that.
pub(crate) const TARGET_BYTES: usize = 1 << 20;

/// Most records in a segment: with tiny records 1 MiB would hold tens of thousands, and
/// a consumer draining a segment in small reads (a small `commit_size`) walks the
/// lengths before its position on each read.
pub(crate) const MAX_RECORDS: u32 = 4096;

/// Builds one segment in a buffer that is reused for the next.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    bytes: Vec<u8>,
    count: u32,
}

impl SegmentWriter {
    pub(crate) fn new() -> Self {
        let mut bytes = Vec::new();
        start(&mut bytes);
        Self { bytes, count: 0 }
    }

    /// Whether the segment holds no record.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether the segment should be closed before another record is added.
    pub(crate) fn is_full(&self) -> bool {
        self.bytes.len() >= TARGET_BYTES || self.count >= MAX_RECORDS
    }

    /// Adds `record` (encoded as [`record`] does) and returns its encoded size, the size
    /// the log counts for retention by bytes.
    pub(crate) fn push(&mut self, new: &NewRecord) -> u64 {
        let len_at = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        record::encode_append(new, &mut self.bytes);
        self.close_entry(len_at)
    }

    /// Adds a record already encoded (as stored by an older layout or another segment).
    pub(crate) fn push_encoded(&mut self, encoded: &[u8]) -> u64 {
        let len_at = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        self.bytes.extend_from_slice(encoded);
        self.close_entry(len_at)
    }

    fn close_entry(&mut self, len_at: usize) -> u64 {
        let len = self.bytes.len() - len_at - 4;
        // A record is far below 4 GiB: ingest refuses requests long before (a few MiB).
        // Were one to get here, the length would saturate and the segment be misread from
        // that record on; it cannot wrap into a short length.
        let stored = u32::try_from(len).unwrap_or(u32::MAX);
        self.bytes[len_at..len_at + 4].copy_from_slice(&stored.to_le_bytes());
        self.count += 1;
        len as u64
    }

    /// The finished segment; [`clear`](Self::clear) it before writing the next one.
    pub(crate) fn finish(&mut self) -> &[u8] {
        self.bytes[1..HEADER_BYTES].copy_from_slice(&self.count.to_le_bytes());
        &self.bytes
    }

    pub(crate) fn clear(&mut self) {
        start(&mut self.bytes);
        self.count = 0;
    }
}

fn start(bytes: &mut Vec<u8>) {
    bytes.clear();
    bytes.push(LAYOUT_V1);
    bytes.extend_from_slice(&[0; 4]);
}

/// The records of the segment that begins at `first`: `(seq, encoded record)` in order.
/// Walking it costs its length and copies nothing; a cut or malformed segment yields an
/// error (once) instead of a record.
///
/// # Errors
///
/// An unknown layout or a value too short for its header.
pub(crate) fn records(first: u64, value: &[u8]) -> Result<Records<'_>, String> {
    let (header, rest) = match value.split_first() {
        Some((&LAYOUT_V1, rest)) if rest.len() >= 4 => rest.split_at(4),
        Some((&LAYOUT_V1, _)) => return Err("segment ends inside its header".to_owned()),
        Some((layout, _)) => return Err(format!("segment layout {layout}; this build reads layout {LAYOUT_V1}")),
        None => return Err("empty segment".to_owned()),
    };
    let mut count = [0; 4];
    count.copy_from_slice(header);
    Ok(Records { next_seq: first, left: u32::from_le_bytes(count), rest, failed: false })
}

/// Iterator over a segment's records; see [`records`].
#[derive(Debug)]
pub(crate) struct Records<'a> {
    next_seq: u64,
    left: u32,
    rest: &'a [u8],
    failed: bool,
}

impl Records<'_> {
    /// The sequence number after the segment's last record.
    pub(crate) fn end(&self) -> u64 {
        self.next_seq.saturating_add(u64::from(self.left))
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<(u64, &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.left == 0 {
            if self.rest.is_empty() {
                return None;
            }
            self.failed = true;
            return Some(Err(format!("{} bytes after the segment's last record", self.rest.len())));
        }
        let entry = self.rest.split_first_chunk::<4>().and_then(|(len, tail)| {
            let len = u32::from_le_bytes(*len) as usize;
            (tail.len() >= len).then(|| tail.split_at(len))
        });
        let Some((encoded, tail)) = entry else {
            self.failed = true;
            return Some(Err(format!("segment ends early, {} records short", self.left)));
        };
        let seq = self.next_seq;
        self.rest = tail;
        self.left -= 1;
        // Sequence numbers never come near u64::MAX; a corrupt key that does repeats the
        // last one rather than overflowing.
        self.next_seq = self.next_seq.saturating_add(1);
        Some(Ok((seq, encoded)))
    }
}

/// The part of the segment beginning at `first` from sequence number `keep_from` on, as a
/// segment of its own (to be stored under `keep_from`); `None` when nothing of it is kept.
///
/// # Errors
///
/// The segment cannot be walked.
pub(crate) fn tail(first: u64, value: &[u8], keep_from: u64) -> Result<Option<Vec<u8>>, String> {
    let mut kept = SegmentWriter::new();
    for entry in records(first, value)? {
        let (seq, encoded) = entry?;
        if seq >= keep_from {
            kept.push_encoded(encoded);
        }
    }
    Ok((!kept.is_empty()).then(|| kept.finish().to_vec()))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn order(i: i64) -> NewRecord {
        NewRecord {
            partition_key: (i % 2 == 0).then(|| format!("key-{i}")),
            data: Bytes::from(format!("{{\"order\":{i}}}")),
            content_type: "application/json".into(),
            arrival_time: i,
        }
    }

    fn segment_of(orders: &[NewRecord]) -> Vec<u8> {
        let mut writer = SegmentWriter::new();
        for order in orders {
            assert_eq!(writer.push(order), record::encode(order).len() as u64);
        }
        writer.finish().to_vec()
    }

    #[test]
    fn a_segment_gives_back_its_records_numbered_from_its_first_sequence_number() {
        let orders: Vec<NewRecord> = (0..5).map(order).collect();
        let segment = segment_of(&orders);
        let walked = records(40, &segment).unwrap();
        assert_eq!(walked.end(), 45);
        let read: Vec<(u64, Vec<u8>)> = walked.map(|entry| entry.map(|(seq, r)| (seq, r.to_vec())).unwrap()).collect();
        let expected: Vec<(u64, Vec<u8>)> = orders.iter().zip(40..).map(|(o, seq)| (seq, record::encode(o))).collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn a_segment_is_full_at_4096_records_however_small_or_at_1_mib() {
        let mut writer = SegmentWriter::new();
        for i in 0..i64::from(MAX_RECORDS) {
            assert!(!writer.is_full(), "full after {i} records");
            writer.push(&order(i));
        }
        assert!(writer.is_full());
        let mut large = SegmentWriter::new();
        large.push(&NewRecord { data: Bytes::from(vec![b'x'; TARGET_BYTES]), ..order(0) });
        assert!(large.is_full());
    }

    #[test]
    fn a_writer_is_reused_after_clear() {
        let mut writer = SegmentWriter::new();
        writer.push(&order(1));
        writer.finish();
        writer.clear();
        assert!(writer.is_empty());
        writer.push(&order(2));
        let segment = writer.finish().to_vec();
        let read: Vec<_> = records(7, &segment).unwrap().map(Result::unwrap).collect();
        assert_eq!(read, vec![(7, record::encode(&order(2)).as_slice())]);
    }

    #[test]
    fn the_tail_keeps_the_records_from_the_cut_on() {
        let orders: Vec<NewRecord> = (0..6).map(order).collect();
        let segment = segment_of(&orders);
        assert_eq!(tail(10, &segment, 13).unwrap().unwrap(), segment_of(&orders[3..]));
        assert_eq!(tail(10, &segment, 10).unwrap().unwrap(), segment);
        assert_eq!(tail(10, &segment, 16).unwrap(), None);
    }

    #[test]
    fn a_cut_or_unknown_segment_is_an_error_not_a_panic() {
        let segment = segment_of(&[order(1), order(2)]);
        let cut = &segment[..segment.len() - 1];
        let walked: Vec<_> = records(0, cut).unwrap().collect();
        assert_eq!(walked.len(), 2);
        assert!(walked[1].as_ref().unwrap_err().contains("ends early"), "{walked:?}");
        let mut longer = segment.clone();
        longer.push(0);
        assert!(records(0, &longer).unwrap().any(|entry| entry.is_err_and(|e| e.contains("after the segment's"))));
        let mut unknown = segment.clone();
        unknown[0] = 9;
        assert!(records(0, &unknown).unwrap_err().contains("layout 9"));
        assert!(records(0, &segment[..3]).unwrap_err().contains("header"));
        assert!(records(0, &[]).is_err());
        assert!(tail(0, cut, 1).is_err());
    }
}
