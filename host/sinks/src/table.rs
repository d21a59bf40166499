//! Events as an Arrow record batch and a Parquet file.
//!
//! Columns: `_id` (utf8), `_key` (utf8, nullable), `_time` (timestamp µs UTC), `_seq`
//! (uint64), `_lineage` (utf8), then one nullable column per field name in first-seen
//! order, typed by the kinds of value the field holds across the batch:
//!
//! | kinds (nulls aside) | column |
//! | --- | --- |
//! | bool | Boolean |
//! | int | Int64 |
//! | float, or int and float | Float64 |
//! | text | Utf8 |
//! | bytes | Binary |
//! | timestamp | Timestamp(µs, UTC) |
//! | json | Utf8, the JSON text |
//! | none (only nulls) | Utf8, all null |
//! | any other mix | Utf8, each value's JSON form (`weir_events::json::value_to_json`) |
//!
//! A field missing from an event, or null, is a null cell. A field named like one of the
//! five metadata columns gets one more leading `_` per clash (`_id` → `__id`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use weir_events::{Name, Value, ValueKind};

use crate::sink::{EventItem, SinkRecord};

/// The metadata columns, in order.
pub(crate) const META: [&str; 5] = ["_id", "_key", "_time", "_seq", "_lineage"];

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The column a field becomes, from the set of kinds it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Bool,
    Int,
    Float,
    Text,
    Bytes,
    Timestamp,
    JsonText,
    /// Only nulls.
    Null,
    /// Mixed kinds: the JSON form of each value.
    Mixed,
}

impl Column {
    fn from_kinds(kinds: u16) -> Self {
        let bit = |k: ValueKind| 1u16 << (k as u8);
        match kinds {
            0 => Self::Null,
            k if k == bit(ValueKind::Bool) => Self::Bool,
            k if k == bit(ValueKind::Int) => Self::Int,
            k if k == bit(ValueKind::Float) || k == bit(ValueKind::Int) | bit(ValueKind::Float) => Self::Float,
            k if k == bit(ValueKind::Text) => Self::Text,
            k if k == bit(ValueKind::Bytes) => Self::Bytes,
            k if k == bit(ValueKind::Timestamp) => Self::Timestamp,
            k if k == bit(ValueKind::Json) => Self::JsonText,
            _ => Self::Mixed,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Self::Bool => DataType::Boolean,
            Self::Int => DataType::Int64,
            Self::Float => DataType::Float64,
            Self::Bytes => DataType::Binary,
            Self::Timestamp => utc_micros(),
            Self::Text | Self::JsonText | Self::Null | Self::Mixed => DataType::Utf8,
        }
    }

    fn array(self, cells: &[Option<&Value>]) -> ArrayRef {
        match self {
            Self::Bool => Arc::new(cells.iter().map(|c| c.and_then(Value::as_bool)).collect::<BooleanArray>()),
            Self::Int => Arc::new(cells.iter().map(|c| c.and_then(Value::as_int)).collect::<Int64Array>()),
            Self::Float => Arc::new(cells.iter().map(|c| c.and_then(Value::as_f64)).collect::<Float64Array>()),
            Self::Text => Arc::new(cells.iter().map(|c| c.and_then(Value::as_str)).collect::<StringArray>()),
            Self::JsonText => Arc::new(
                cells
                    .iter()
                    .map(|c| match c {
                        Some(Value::Json(text)) => Some(text.as_str()),
                        _ => None,
                    })
                    .collect::<StringArray>(),
            ),
            Self::Bytes => Arc::new(BinaryArray::from_iter(cells.iter().map(|c| match c {
                Some(Value::Bytes(bytes)) => Some(bytes.as_slice()),
                _ => None,
            }))),
            Self::Timestamp => Arc::new(
                cells
                    .iter()
                    .map(|c| c.and_then(Value::as_timestamp))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("UTC"),
            ),
            Self::Null => Arc::new(StringArray::new_null(cells.len())),
            Self::Mixed => Arc::new(
                cells
                    .iter()
                    .map(|c| match c {
                        None | Some(Value::Null) => None,
                        Some(value) => Some(weir_events::json::value_to_json(value).to_string()),
                    })
                    .collect::<StringArray>(),
            ),
        }
    }
}

/// The record batch of `rows` (each a record and its event item), columns as in the
/// crate docs: what the lake and the warehouse write, and what a batch job's SQL reads.
///
/// # Errors
/// A batch too large for Arrow's offsets, with the reason.
pub fn event_record_batch(rows: &[(&SinkRecord, &EventItem)]) -> Result<RecordBatch, String> {
    record_batch(rows)
}

/// See [`event_record_batch`].
pub(crate) fn record_batch(rows: &[(&SinkRecord, &EventItem)]) -> Result<RecordBatch, String> {
    // Field names in first-seen order, the kinds each holds, and each event's cells.
    let mut names: Vec<&Name> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut kinds: Vec<u16> = Vec::new();
    let mut cells: Vec<Vec<Option<&Value>>> = Vec::new();
    for (row, (_, item)) in rows.iter().enumerate() {
        for (name, value) in &item.event.fields {
            let col = *index.entry(name).or_insert_with(|| {
                names.push(name);
                kinds.push(0);
                cells.push(vec![None; rows.len()]);
                names.len() - 1
            });
            if !matches!(value, Value::Null) {
                kinds[col] |= 1 << (value.kind() as u8);
            }
            cells[col][row] = Some(value);
        }
    }

    let mut fields = vec![
        Field::new(META[0], DataType::Utf8, false),
        Field::new(META[1], DataType::Utf8, true),
        Field::new(META[2], utc_micros(), false),
        Field::new(META[3], DataType::Utf8, false),
        Field::new(META[4], DataType::Utf8, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(rows.iter().map(|(r, _)| Some(r.id.as_str())).collect::<StringArray>()),
        Arc::new(rows.iter().map(|(_, e)| e.event.key.as_deref()).collect::<StringArray>()),
        Arc::new(
            rows.iter().map(|(_, e)| Some(e.event.time)).collect::<TimestampMicrosecondArray>().with_timezone("UTC"),
        ),
        Arc::new(rows.iter().map(|(r, _)| Some(r.position.as_str())).collect::<StringArray>()),
        Arc::new(rows.iter().map(|(_, e)| Some(e.lineage.as_str())).collect::<StringArray>()),
    ];
    let mut taken: std::collections::HashSet<String> = META.iter().map(|m| (*m).to_owned()).collect();
    taken.extend(names.iter().map(|n| n.to_string()));
    for ((name, kinds), cells) in names.iter().zip(kinds).zip(&cells) {
        let mut column_name = name.to_string();
        if META.contains(&column_name.as_str()) {
            while taken.contains(&column_name) {
                column_name.insert(0, '_');
            }
            taken.insert(column_name.clone());
        }
        let column = Column::from_kinds(kinds);
        fields.push(Field::new(column_name, column.data_type(), true));
        columns.push(column.array(cells));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}

/// `rows` as a Parquet file: one row group, snappy-compressed, the Arrow schema embedded.
pub(crate) fn parquet_file(rows: &[(&SinkRecord, &EventItem)]) -> Result<Vec<u8>, String> {
    let batch = record_batch(rows)?;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(out)
}
