//! Records as producers hand them in and as consumers read them back, and their encoding in
//! the log file.
//!
//! A record is stored inside a segment ([`crate::segment`]) as a format-version byte, then
//! the fields, then the data (the whole redb value in log format 1, before segments):
//!
//! ```text
//! version 1:  [1] [arrival_time: i64 LE] [key flag: 0 | 1] ([key len: u32 LE] [key])
//!             [content type len: u32 LE] [content type] [data ... to the end]
//! ```

use std::borrow::Cow;

use bytes::Bytes;

/// A record handed to [`EmbeddedLog::append`](crate::EmbeddedLog::append).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// Chooses the shard: records with the same key land on the same shard, in order. Without
    /// one the shard follows from the data.
    pub partition_key: Option<String>,
    /// The payload, stored as given: a slice of the request it came in where it can be (no
    /// copy and no allocation per record between the body and the log's encoding).
    pub data: Bytes,
    /// The payload's media type (`application/json`, `text/csv`...), stored as given;
    /// borrowed when it is one of the host's own, so that a request's records share it.
    pub content_type: Cow<'static, str>,
    /// When the record reached weir, in microseconds since the Unix epoch; retention by age
    /// measures from it.
    pub arrival_time: i64,
}

/// Where [`EmbeddedLog::append`](crate::EmbeddedLog::append) put one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The shard the record landed on.
    pub shard: u32,
    /// Its sequence number within that shard.
    pub seq: u64,
}

/// A record read back by [`EmbeddedLog::read`](crate::EmbeddedLog::read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The shard it is stored on.
    pub shard: u32,
    /// Its sequence number within that shard.
    pub seq: u64,
    /// As appended.
    pub partition_key: Option<String>,
    /// As appended.
    pub data: Vec<u8>,
    /// As appended.
    pub content_type: String,
    /// As appended, microseconds since the Unix epoch.
    pub arrival_time: i64,
}

const FORMAT_V1: u8 = 1;

/// Encodes a record (format version 1) on its own.
#[cfg(test)]
pub(crate) fn encode(record: &NewRecord) -> Vec<u8> {
    let mut out = Vec::new();
    encode_append(record, &mut out);
    out
}

/// Encodes a record (format version 1) at the end of `out`: an append writes its records
/// straight into the segment they are stored in ([`crate::segment`]).
pub(crate) fn encode_append(record: &NewRecord, out: &mut Vec<u8>) {
    let key_len = record.partition_key.as_ref().map_or(0, |key| 4 + key.len());
    out.reserve(1 + 8 + 1 + key_len + 4 + record.content_type.len() + record.data.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&record.arrival_time.to_le_bytes());
    match &record.partition_key {
        None => out.push(0),
        Some(key) => {
            out.push(1);
            put_str(out, key);
        }
    }
    put_str(out, &record.content_type);
    out.extend_from_slice(&record.data);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Partition keys and content types are short; a longer one would be a bug upstream, and
    // is cut rather than corrupting the record.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
}

/// The arrival time of an encoded record, read without decoding the rest (retention walks
/// many records and needs nothing else).
pub(crate) fn arrival_time(value: &[u8]) -> Result<i64, String> {
    let mut reader = Reader::new(value)?;
    reader.i64()
}

/// Decodes a stored record.
pub(crate) fn decode(shard: u32, seq: u64, value: &[u8]) -> Result<StoredRecord, String> {
    let mut reader = Reader::new(value)?;
    let arrival_time = reader.i64()?;
    let partition_key = match reader.u8()? {
        0 => None,
        1 => Some(reader.string()?),
        other => return Err(format!("partition-key flag {other}, expected 0 or 1")),
    };
    let content_type = reader.string()?;
    let data = reader.rest().to_vec();
    Ok(StoredRecord { shard, seq, partition_key, data, content_type, arrival_time })
}

/// Reads the fields of a versioned value; every error says what was expected.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Checks the format-version byte.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self, String> {
        match bytes.split_first() {
            Some((&FORMAT_V1, rest)) => Ok(Self { bytes: rest }),
            Some((version, _)) => Err(format!("format version {version}; this build reads version {FORMAT_V1}")),
            None => Err("empty value".to_owned()),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err(format!("value ends early: {n} bytes expected, {} left", self.bytes.len()));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, String> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a string field is not UTF-8".to_owned())
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_decodes_to_what_was_encoded() {
        for partition_key in [None, Some("restaurant-7".to_owned()), Some(String::new())] {
            let record = NewRecord {
                partition_key: partition_key.clone(),
                data: Bytes::from_static(b"{\"order\":1}"),
                content_type: "application/json".into(),
                arrival_time: -5,
            };
            let decoded = decode(2, 9, &encode(&record)).unwrap();
            assert_eq!(
                decoded,
                StoredRecord {
                    shard: 2,
                    seq: 9,
                    partition_key,
                    data: record.data.to_vec(),
                    content_type: record.content_type.to_string(),
                    arrival_time: -5
                }
            );
            assert_eq!(arrival_time(&encode(&record)).unwrap(), -5);
        }
    }

    #[test]
    fn an_unknown_format_version_or_a_cut_value_is_an_error_not_a_panic() {
        let mut bytes = encode(&NewRecord {
            partition_key: Some("k".into()),
            data: Bytes::new(),
            content_type: "text/plain".into(),
            arrival_time: 1,
        });
        assert!(decode(0, 0, &bytes[..bytes.len() - 1]).unwrap_err().contains("ends early"));
        bytes[0] = 9;
        assert!(decode(0, 0, &bytes).unwrap_err().contains("format version 9"));
        assert!(decode(0, 0, &[]).is_err());
    }
}
