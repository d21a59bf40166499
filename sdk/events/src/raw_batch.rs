//! The raw records of one `parse` call as they cross the Wasm boundary
//! (`weir:plugin/types.raw-batch`, WIT 0.3.0).
//!
//! Up to 0.2.0 a parser received a `list<raw-record>`: for each record the host called
//! into the guest's allocator three times (payload, key, content type) and the guest
//! freed them again, a cost that grew with the number of records rather than their bytes.
//! A raw batch carries the records as bulk lists instead — every payload in one buffer
//! with their ends, the keys likewise, the content types once each with a per-record
//! index — which the host and every guest's bindings copy in one piece each.

use std::collections::HashMap;
use std::fmt;

use crate::columns::{unpack_i64, unpack_u32};

/// A malformed raw batch, with what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBatchError(pub String);

impl fmt::Display for RawBatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed raw-record batch: {}", self.0)
    }
}

impl std::error::Error for RawBatchError {}

fn bad(msg: impl Into<String>) -> RawBatchError {
    RawBatchError(msg.into())
}

/// A batch of raw records as bulk columns: record `i`'s payload is
/// `data[data_ends[i - 1]..data_ends[i]]` (from 0 for the first), its key likewise in
/// `keys` (an empty key is no key), its content type `content_types[content_type_ids[i]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawBatch {
    /// Every record's payload, one after the other.
    pub data: Vec<u8>,
    /// The end of each record's payload in `data`.
    pub data_ends: Vec<u32>,
    /// Every record's key as UTF-8, one after the other.
    pub keys: Vec<u8>,
    /// The end of each record's key in `keys`.
    pub key_ends: Vec<u32>,
    /// The batch's distinct content types.
    pub content_types: Vec<String>,
    /// Each record's content type, as an index into `content_types`.
    pub content_type_ids: Vec<u32>,
    /// When the host received each record, microseconds since the Unix epoch.
    pub arrival_times: Vec<i64>,
}

/// One record of a [`RawBatch`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecordRef<'a> {
    /// The payload exactly as received.
    pub data: &'a [u8],
    /// The producer's partition key, if it gave a non-empty one.
    pub key: Option<&'a str>,
    /// The content type it was sent with.
    pub content_type: &'a str,
    /// When the host received it, microseconds since the Unix epoch.
    pub arrival_time: i64,
}

impl RawBatch {
    /// The number of records.
    pub fn len(&self) -> usize {
        self.data_ends.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.data_ends.is_empty()
    }

    /// Checks that the columns agree, in one pass over them: as many ends, ids and times
    /// as records, ends that never decrease nor pass their buffer, keys that are UTF-8
    /// and end on character boundaries, ids within the content types. A batch that
    /// passes can be read with [`RawBatch::record`] without a panic.
    ///
    /// # Errors
    /// A [`RawBatchError`] naming the first column that disagrees.
    pub fn validate(&self) -> Result<(), RawBatchError> {
        let n = self.len();
        for (name, len) in [
            ("key-ends", self.key_ends.len()),
            ("content-type-ids", self.content_type_ids.len()),
            ("arrival-times", self.arrival_times.len()),
        ] {
            if len != n {
                return Err(bad(format!("{name} has {len} elements for {n} records")));
            }
        }
        check_ends("data-ends", &self.data_ends, self.data.len())?;
        check_ends("key-ends", &self.key_ends, self.keys.len())?;
        let keys = std::str::from_utf8(&self.keys)
            .map_err(|e| bad(format!("keys are not UTF-8 at byte {}", e.valid_up_to())))?;
        if let Some(i) = self.key_ends.iter().position(|&end| !keys.is_char_boundary(end as usize)) {
            return Err(bad(format!("key {i} ends inside a UTF-8 character")));
        }
        let types = self.content_types.len();
        if let Some(i) = self.content_type_ids.iter().position(|&id| id as usize >= types) {
            return Err(bad(format!(
                "record {i} has content type {}, but the batch has {types}",
                self.content_type_ids[i]
            )));
        }
        Ok(())
    }

    /// Record `i` of a batch that passed [`RawBatch::validate`].
    ///
    /// # Panics
    /// When `i` is out of range or the batch was not validated and its columns disagree.
    pub fn record(&self, i: usize) -> RawRecordRef<'_> {
        let start = |ends: &[u32]| if i == 0 { 0 } else { ends[i - 1] as usize };
        let key = &self.keys[start(&self.key_ends)..self.key_ends[i] as usize];
        RawRecordRef {
            data: &self.data[start(&self.data_ends)..self.data_ends[i] as usize],
            // Validated as UTF-8 with every end on a character boundary.
            key: (!key.is_empty()).then(|| std::str::from_utf8(key).unwrap_or_default()),
            content_type: &self.content_types[self.content_type_ids[i] as usize],
            arrival_time: self.arrival_times[i],
        }
    }

    /// The batch back from the WIT's columns, the number columns unpacked.
    ///
    /// # Errors
    /// A [`RawBatchError`] naming a packed column whose length is not a whole number of
    /// elements.
    pub fn from_packed(
        data: Vec<u8>,
        data_ends: &[u8],
        keys: Vec<u8>,
        key_ends: &[u8],
        content_types: Vec<String>,
        content_type_ids: &[u8],
        arrival_times: &[u8],
    ) -> Result<Self, RawBatchError> {
        let unpacked = |e: crate::BatchError| RawBatchError(e.0);
        Ok(Self {
            data,
            data_ends: unpack_u32("data-ends", data_ends).map_err(unpacked)?,
            keys,
            key_ends: unpack_u32("key-ends", key_ends).map_err(unpacked)?,
            content_types,
            content_type_ids: unpack_u32("content-type-ids", content_type_ids).map_err(unpacked)?,
            arrival_times: unpack_i64("arrival-times", arrival_times).map_err(unpacked)?,
        })
    }
}

fn check_ends(name: &str, ends: &[u32], buffer: usize) -> Result<(), RawBatchError> {
    let mut previous = 0;
    for (i, &end) in ends.iter().enumerate() {
        if end < previous || end as usize > buffer {
            return Err(bad(format!("{name}[{i}] is {end}, after {previous}, in a buffer of {buffer} bytes")));
        }
        previous = end;
    }
    Ok(())
}

/// Writes a [`RawBatch`] record by record.
#[derive(Debug, Default)]
pub struct RawBatchBuilder {
    batch: RawBatch,
    // Content types seen, so that each is carried once; the last one is checked first,
    // since a batch's records mostly share one.
    type_ids: HashMap<String, u32>,
    last_type: Option<u32>,
}

impl RawBatchBuilder {
    /// A builder with room for `records` records of `data_bytes` payload bytes in all.
    pub fn with_capacity(records: usize, data_bytes: usize) -> Self {
        let mut builder = Self::default();
        let batch = &mut builder.batch;
        batch.data.reserve(data_bytes);
        batch.data_ends.reserve(records);
        batch.key_ends.reserve(records);
        batch.content_type_ids.reserve(records);
        batch.arrival_times.reserve(records);
        builder
    }

    /// Appends a record; an empty key is carried as no key.
    ///
    /// # Errors
    /// When the batch's payloads or keys would pass 4 GiB, which its `u32` ends cannot
    /// address; the batch is left as it was.
    pub fn push(
        &mut self,
        data: &[u8],
        key: Option<&str>,
        content_type: &str,
        arrival_time: i64,
    ) -> Result<(), RawBatchError> {
        let key = key.unwrap_or_default();
        let data_end = end_after("payloads", self.batch.data.len(), data.len())?;
        let key_end = end_after("keys", self.batch.keys.len(), key.len())?;
        let type_id = self.type_id(content_type)?;
        let batch = &mut self.batch;
        batch.data.extend_from_slice(data);
        batch.data_ends.push(data_end);
        batch.keys.extend_from_slice(key.as_bytes());
        batch.key_ends.push(key_end);
        batch.content_type_ids.push(type_id);
        batch.arrival_times.push(arrival_time);
        Ok(())
    }

    fn type_id(&mut self, content_type: &str) -> Result<u32, RawBatchError> {
        if let Some(id) = self.last_type
            && self.batch.content_types[id as usize] == content_type
        {
            return Ok(id);
        }
        let id = match self.type_ids.get(content_type) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.batch.content_types.len())
                    .map_err(|_| bad("more than 2^32 content types in one batch"))?;
                self.batch.content_types.push(content_type.to_owned());
                self.type_ids.insert(content_type.to_owned(), id);
                id
            }
        };
        self.last_type = Some(id);
        Ok(id)
    }

    /// The number of records pushed.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// The finished batch.
    pub fn finish(self) -> RawBatch {
        self.batch
    }
}

fn end_after(what: &str, len: usize, more: usize) -> Result<u32, RawBatchError> {
    len.checked_add(more)
        .and_then(|end| u32::try_from(end).ok())
        .ok_or_else(|| bad(format!("the batch's {what} would pass 4 GiB")))
}

/// Writes the conversions between [`RawBatch`] and a WIT-generated `raw-batch` record
/// (the host's wasmtime bindings, a guest's wit-bindgen bindings), like
/// [`event_batch_conversions!`](crate::event_batch_conversions).
#[macro_export]
macro_rules! raw_batch_conversions {
    ($batch:ty) => {
        impl ::core::convert::From<$crate::RawBatch> for $batch {
            fn from(b: $crate::RawBatch) -> Self {
                Self {
                    data_ends: $crate::pack_u32(&b.data_ends),
                    key_ends: $crate::pack_u32(&b.key_ends),
                    content_type_ids: $crate::pack_u32(&b.content_type_ids),
                    arrival_times: $crate::pack_i64(&b.arrival_times),
                    data: b.data,
                    keys: b.keys,
                    content_types: b.content_types,
                }
            }
        }
        impl ::core::convert::TryFrom<$batch> for $crate::RawBatch {
            type Error = $crate::RawBatchError;
            fn try_from(b: $batch) -> ::core::result::Result<Self, $crate::RawBatchError> {
                $crate::RawBatch::from_packed(
                    b.data,
                    &b.data_ends,
                    b.keys,
                    &b.key_ends,
                    b.content_types,
                    &b.content_type_ids,
                    &b.arrival_times,
                )
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> RawBatch {
        let mut b = RawBatchBuilder::with_capacity(3, 16);
        b.push(br#"{"a":1}"#, Some("k1"), "application/json", 10).unwrap();
        b.push(b"x,y", None, "text/csv", 11).unwrap();
        b.push(b"", Some("clé"), "application/json", 12).unwrap();
        b.finish()
    }

    #[test]
    fn records_read_back_as_pushed_with_each_content_type_carried_once() {
        let batch = three();
        assert_eq!(batch.validate(), Ok(()));
        assert_eq!(batch.content_types, ["application/json", "text/csv"]);
        assert_eq!(batch.content_type_ids, [0, 1, 0]);
        let records: Vec<_> = (0..batch.len()).map(|i| batch.record(i)).collect();
        assert_eq!(
            records,
            [
                RawRecordRef {
                    data: br#"{"a":1}"#,
                    key: Some("k1"),
                    content_type: "application/json",
                    arrival_time: 10
                },
                RawRecordRef { data: b"x,y", key: None, content_type: "text/csv", arrival_time: 11 },
                RawRecordRef { data: b"", key: Some("clé"), content_type: "application/json", arrival_time: 12 },
            ]
        );
    }

    #[test]
    fn an_empty_key_is_no_key() {
        let mut b = RawBatchBuilder::default();
        b.push(b"1", Some(""), "text/plain", 0).unwrap();
        assert_eq!(b.finish().record(0).key, None);
    }

    #[test]
    fn columns_that_disagree_are_refused_by_name() {
        let refused = |change: fn(&mut RawBatch)| {
            let mut batch = three();
            change(&mut batch);
            batch.validate().unwrap_err().to_string()
        };
        assert_eq!(
            refused(|b| {
                b.arrival_times.pop();
            }),
            "malformed raw-record batch: arrival-times has 2 elements for 3 records"
        );
        assert_eq!(
            refused(|b| b.data_ends[1] = 2),
            "malformed raw-record batch: data-ends[1] is 2, after 7, in a buffer of 10 bytes"
        );
        assert_eq!(
            refused(|b| b.data_ends[2] = 11),
            "malformed raw-record batch: data-ends[2] is 11, after 10, in a buffer of 10 bytes"
        );
        // "clé": the é is two bytes, so an end one byte before the last cuts it.
        assert_eq!(refused(|b| b.key_ends[2] = 5), "malformed raw-record batch: key 2 ends inside a UTF-8 character");
        assert_eq!(refused(|b| b.keys[0] = 0xff), "malformed raw-record batch: keys are not UTF-8 at byte 0");
        assert_eq!(
            refused(|b| b.content_type_ids[1] = 2),
            "malformed raw-record batch: record 1 has content type 2, but the batch has 2"
        );
    }

    #[test]
    fn packed_columns_cut_inside_an_element_are_refused_by_name() {
        let err = RawBatch::from_packed(vec![], &[0, 0, 0], vec![], &[], vec![], &[], &[]).unwrap_err();
        assert_eq!(err.0, "data-ends has 3 bytes, not a whole number of packed u32 (4 bytes each)");
        let err = RawBatch::from_packed(vec![], &[], vec![], &[], vec![], &[], &[0; 7]).unwrap_err();
        assert_eq!(err.0, "arrival-times has 7 bytes, not a whole number of packed s64 (8 bytes each)");
    }

    #[test]
    fn many_distinct_content_types_are_each_carried_once() {
        let mut b = RawBatchBuilder::default();
        for i in 0..1000 {
            b.push(b"", None, &format!("type/{}", i % 300), i).unwrap();
        }
        let batch = b.finish();
        assert_eq!(batch.content_types.len(), 300);
        assert_eq!(batch.validate(), Ok(()));
        assert_eq!(batch.record(999).content_type, "type/99");
    }
}
