//! Arrow record batches as plugin batches: the reverse of [`crate::table`], so that what
//! the lake and the warehouse hold (or any Parquet a batch job reads) can go through the
//! same plugins as the stream.
//!
//! Each row becomes one event. The key is the `_key` column when there is one (text);
//! the time is the `_time` column (a timestamp of any unit, or integer microseconds), else
//! the `default_time` the caller gives. The other metadata columns of a lake table
//! (`_id`, `_seq`, `_lineage`) are not fields. Every other column is a field of the same
//! name, except that the lake's escaping of fields named like a metadata column is undone
//! (`__id` → `_id`). A null cell is a missing field, as in the lake.
//!
//! | Arrow type | value |
//! | --- | --- |
//! | Boolean | bool |
//! | Int8–Int64, UInt8–UInt32 | int |
//! | UInt64 | int (a value above `i64::MAX` is refused) |
//! | Float32, Float64 | float |
//! | Utf8, LargeUtf8, Utf8View | text |
//! | Binary, LargeBinary, BinaryView | bytes |
//! | Timestamp (any unit, any zone), Date32, Date64 | timestamp (µs UTC) |
//! | Null | no field |
//!
//! Other types (lists, structs, maps, decimals…) are refused with the column's name: the
//! job names a SQL cast to one of these. Decoding is one pass over the cells, linear in
//! the batch.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use weir_events::{Columns, ColumnsBuilder, Event, Name, Value};

use crate::table::META;

/// Why a record batch cannot become a plugin batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column:?}: {reason}")]
pub struct ArrowDecodeError {
    /// The column at fault.
    pub column: String,
    /// What is wrong with it and what to do.
    pub reason: String,
}

/// How a column's cells become values.
enum Reader<'a> {
    Bool(&'a arrow_array::BooleanArray),
    Int(Box<dyn Fn(usize) -> Result<i64, String> + 'a>),
    Float(Box<dyn Fn(usize) -> f64 + 'a>),
    Text(Box<dyn Fn(usize) -> &'a str + 'a>),
    Bytes(Box<dyn Fn(usize) -> &'a [u8] + 'a>),
    /// Microseconds since the epoch, or why the value does not fit.
    Time(Box<dyn Fn(usize) -> Result<i64, String> + 'a>),
    Null,
}

impl<'a> Reader<'a> {
    fn of(column: &str, array: &'a ArrayRef) -> Result<Self, ArrowDecodeError> {
        let refused = |reason: String| ArrowDecodeError { column: column.to_owned(), reason };
        Ok(match array.data_type() {
            DataType::Boolean => Reader::Bool(array.as_boolean()),
            DataType::Int8 => int(array.as_primitive::<Int8Type>(), i64::from),
            DataType::Int16 => int(array.as_primitive::<Int16Type>(), i64::from),
            DataType::Int32 => int(array.as_primitive::<Int32Type>(), i64::from),
            DataType::Int64 => int(array.as_primitive::<Int64Type>(), |v| v),
            DataType::UInt8 => int(array.as_primitive::<UInt8Type>(), i64::from),
            DataType::UInt16 => int(array.as_primitive::<UInt16Type>(), i64::from),
            DataType::UInt32 => int(array.as_primitive::<UInt32Type>(), i64::from),
            DataType::UInt64 => {
                let values = array.as_primitive::<UInt64Type>();
                Reader::Int(Box::new(move |row| {
                    i64::try_from(values.value(row)).map_err(|_| {
                        format!("{} is above the largest int; cast the column to double", values.value(row))
                    })
                }))
            }
            DataType::Float32 => {
                let values = array.as_primitive::<Float32Type>();
                Reader::Float(Box::new(move |row| f64::from(values.value(row))))
            }
            DataType::Float64 => {
                let values = array.as_primitive::<Float64Type>();
                Reader::Float(Box::new(move |row| values.value(row)))
            }
            DataType::Utf8 => {
                let values = array.as_string::<i32>();
                Reader::Text(Box::new(move |row| values.value(row)))
            }
            DataType::LargeUtf8 => {
                let values = array.as_string::<i64>();
                Reader::Text(Box::new(move |row| values.value(row)))
            }
            DataType::Utf8View => {
                let values = array.as_string_view();
                Reader::Text(Box::new(move |row| values.value(row)))
            }
            DataType::Binary => {
                let values = array.as_binary::<i32>();
                Reader::Bytes(Box::new(move |row| values.value(row)))
            }
            DataType::LargeBinary => {
                let values = array.as_binary::<i64>();
                Reader::Bytes(Box::new(move |row| values.value(row)))
            }
            DataType::BinaryView => {
                let values = array.as_binary_view();
                Reader::Bytes(Box::new(move |row| values.value(row)))
            }
            DataType::Timestamp(unit, _) => {
                let (values, per_micro): (Box<dyn Fn(usize) -> i64>, Scale) = match unit {
                    TimeUnit::Second => (primitive(array.as_primitive::<TimestampSecondType>()), Scale::Up(1_000_000)),
                    TimeUnit::Millisecond => {
                        (primitive(array.as_primitive::<TimestampMillisecondType>()), Scale::Up(1_000))
                    }
                    TimeUnit::Microsecond => {
                        (primitive(array.as_primitive::<TimestampMicrosecondType>()), Scale::Up(1))
                    }
                    TimeUnit::Nanosecond => {
                        (primitive(array.as_primitive::<TimestampNanosecondType>()), Scale::Down(1_000))
                    }
                };
                Reader::Time(Box::new(move |row| per_micro.apply(values(row))))
            }
            DataType::Date32 => {
                let values = array.as_primitive::<Date32Type>();
                Reader::Time(Box::new(move |row| Scale::Up(86_400_000_000).apply(i64::from(values.value(row)))))
            }
            DataType::Date64 => {
                let values = array.as_primitive::<Date64Type>();
                Reader::Time(Box::new(move |row| Scale::Up(1_000).apply(values.value(row))))
            }
            DataType::Null => Reader::Null,
            other => {
                return Err(refused(format!(
                    "{other} values cannot be plugin values; cast the column to text, a number, bytes or a timestamp"
                )));
            }
        })
    }

    /// The value of `row`, `None` for a null cell.
    fn value(&self, array: &ArrayRef, row: usize) -> Result<Option<Value>, String> {
        if array.is_null(row) {
            return Ok(None);
        }
        Ok(Some(match self {
            Reader::Bool(values) => Value::Bool(values.value(row)),
            Reader::Int(read) => Value::Int(read(row)?),
            Reader::Float(read) => Value::Float(read(row)),
            Reader::Text(read) => Value::Text(read(row).to_owned()),
            Reader::Bytes(read) => Value::Bytes(read(row).to_vec()),
            Reader::Time(read) => Value::Timestamp(read(row)?),
            Reader::Null => return Ok(None),
        }))
    }
}

fn int<'a, T: arrow_array::ArrowPrimitiveType>(
    values: &'a arrow_array::PrimitiveArray<T>,
    widen: impl Fn(T::Native) -> i64 + 'a,
) -> Reader<'a> {
    Reader::Int(Box::new(move |row| Ok(widen(values.value(row)))))
}

fn primitive<'a, T: arrow_array::ArrowPrimitiveType<Native = i64>>(
    values: &'a arrow_array::PrimitiveArray<T>,
) -> Box<dyn Fn(usize) -> i64 + 'a> {
    Box::new(move |row| values.value(row))
}

/// From a time unit to microseconds.
#[derive(Clone, Copy)]
enum Scale {
    Up(i64),
    Down(i64),
}

impl Scale {
    fn apply(self, value: i64) -> Result<i64, String> {
        match self {
            Scale::Up(factor) => value
                .checked_mul(factor)
                .ok_or_else(|| format!("{value} is out of the range of microsecond timestamps")),
            Scale::Down(divisor) => Ok(value.div_euclid(divisor)),
        }
    }
}

/// The field name a lake column stands for: the lake writes a field named like a
/// metadata column with one more leading `_` (`_id` → `__id`, and `___id` when `__id` is
/// taken too); this undoes it. Only names of two or more underscores and a metadata
/// word are read as escaped, so a field genuinely named `__id` in a batch without an
/// `_id` field reads back as `_id`.
fn field_name(column: &str) -> &str {
    match column.strip_prefix('_') {
        Some(unescaped) if unescaped.starts_with('_') => {
            let word = unescaped.trim_start_matches('_');
            if META.iter().any(|meta| meta.strip_prefix('_') == Some(word)) { unescaped } else { column }
        }
        _ => column,
    }
}

/// The events of `batch`, one per row, as a plugin batch; `default_time` is the time of
/// every event when the batch has no `_time` column.
///
/// # Errors
/// A column of a type plugins have no value for, a `_key` that is not text, a `_time`
/// that is neither a timestamp nor an integer, or a value out of range — naming the
/// column.
pub fn plugin_batch_from_arrow(batch: &RecordBatch, default_time: i64) -> Result<Columns, ArrowDecodeError> {
    let schema = batch.schema();
    let mut key = None;
    let mut time = None;
    let mut fields: Vec<(Name, &ArrayRef, Reader<'_>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let name = field.name().as_str();
        let reader = Reader::of(name, array)?;
        match name {
            "_key" => match reader {
                Reader::Text(_) | Reader::Null => key = Some((array, reader)),
                _ => return Err(refused(name, format!("the key must be text, not {}", array.data_type()))),
            },
            "_time" => match reader {
                Reader::Time(_) | Reader::Int(_) => time = Some((array, reader)),
                _ => {
                    return Err(refused(
                        name,
                        format!(
                            "the event time must be a timestamp or integer microseconds, not {}",
                            array.data_type()
                        ),
                    ));
                }
            },
            "_id" | "_seq" | "_lineage" => {}
            _ => {
                let field_name = field_name(name);
                if !seen.insert(field_name) {
                    return Err(refused(name, format!("a second column stands for field {field_name:?}; rename one")));
                }
                fields.push((Name::from(field_name), array, reader));
            }
        }
    }
    let mut builder = ColumnsBuilder::default();
    for row in 0..batch.num_rows() {
        let mut event = Event::new(default_time);
        if let Some((array, reader)) = &key {
            event.key = match reader.value(array, row).map_err(|reason| refused("_key", reason))? {
                Some(Value::Text(text)) => Some(text),
                _ => None,
            };
        }
        if let Some((array, reader)) = &time {
            match reader.value(array, row).map_err(|reason| refused("_time", reason))? {
                Some(Value::Timestamp(micros) | Value::Int(micros)) => event.time = micros,
                _ => return Err(refused("_time", format!("row {row} has no event time"))),
            }
        }
        for (name, array, reader) in &fields {
            if let Some(value) = reader.value(array, row).map_err(|reason| refused(name, reason))? {
                event.fields.push((name.clone(), value));
            }
        }
        builder.push(&event);
    }
    Ok(builder.finish())
}

fn refused(column: &str, reason: String) -> ArrowDecodeError {
    ArrowDecodeError { column: column.to_owned(), reason }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{Int64Array, StringArray, TimestampNanosecondArray, UInt64Array};
    use arrow_schema::{Field, Schema};

    use super::*;
    use crate::sink::{EventItem, SinkRecord};
    use crate::table::record_batch;

    fn lake_rows(events: &[Event]) -> RecordBatch {
        let items: Vec<EventItem> =
            events.iter().map(|event| EventItem { event: event.clone(), lineage: "p@1".to_owned() }).collect();
        let records: Vec<SinkRecord> = (0..events.len())
            .map(|i| SinkRecord {
                id: crate::CommitId::log_range("orders", "0", "0", "0").record_id(&i.to_string(), 0),
                position: i.to_string(),
                item: crate::sink::SinkItem::Event(std::sync::Arc::new(items[i].clone())),
            })
            .collect();
        let rows: Vec<(&SinkRecord, &EventItem)> = records.iter().zip(&items).collect();
        record_batch(&rows).unwrap()
    }

    fn decoded(batch: &RecordBatch, default_time: i64) -> Vec<Event> {
        plugin_batch_from_arrow(batch, default_time).unwrap().decode().unwrap()
    }

    #[test]
    fn events_written_to_the_lake_read_back_as_the_same_events() {
        let events = vec![
            Event::new(1_700_000_000_000_000)
                .with_key("r-1")
                .with("total", 12.5)
                .with("items", 3_i64)
                .with("name", "Müller")
                .with("paid", true)
                .with("_id", "a field named like a metadata column")
                .with("blob", Value::Bytes(vec![0, 255]))
                .with("at", Value::Timestamp(-5)),
            Event::new(-42).with("total", 7.0).with("name", "x"),
        ];
        assert_eq!(decoded(&lake_rows(&events), 0), events);
    }

    #[test]
    fn a_batch_without_times_takes_the_default_and_units_are_converted_to_microseconds() {
        let schema = Schema::new(vec![
            Field::new("when", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            Field::new("count", DataType::UInt64, true),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampNanosecondArray::from(vec![Some(1_999), None])),
            Arc::new(UInt64Array::from(vec![Some(5), Some(6)])),
        ];
        let batch = RecordBatch::try_new(Arc::new(schema), columns).unwrap();
        let events = decoded(&batch, 77);
        assert_eq!(events[0], Event::new(77).with("when", Value::Timestamp(1)).with("count", 5_i64));
        assert_eq!(events[1], Event::new(77).with("count", 6_i64), "a null cell is a missing field");
    }

    #[test]
    fn a_column_plugins_have_no_value_for_is_refused_by_name() {
        let mut list = ListBuilder::new(StringBuilder::new());
        list.values().append_value("a");
        list.append(true);
        let tags: ArrayRef = Arc::new(list.finish());
        let schema = Schema::new(vec![Field::new("tags", tags.data_type().clone(), true)]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![tags]).unwrap();
        let error = plugin_batch_from_arrow(&batch, 0).unwrap_err();
        assert_eq!(error.column, "tags");
        assert!(error.reason.contains("cast the column"), "{error}");
    }

    #[test]
    fn values_out_of_range_and_keys_of_the_wrong_type_are_refused_by_name() {
        let too_large = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("n", DataType::UInt64, false)])),
            vec![Arc::new(UInt64Array::from(vec![u64::MAX]))],
        )
        .unwrap();
        assert_eq!(plugin_batch_from_arrow(&too_large, 0).unwrap_err().column, "n");

        let numeric_key = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("_key", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap();
        assert_eq!(plugin_batch_from_arrow(&numeric_key, 0).unwrap_err().column, "_key");

        let seconds_overflow = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("_time", DataType::Timestamp(TimeUnit::Second, None), false)])),
            vec![Arc::new(arrow_array::TimestampSecondArray::from(vec![i64::MAX]))],
        )
        .unwrap();
        assert_eq!(plugin_batch_from_arrow(&seconds_overflow, 0).unwrap_err().column, "_time");
    }

    #[test]
    fn two_columns_for_one_field_are_refused() {
        let schema = Schema::new(vec![Field::new("a", DataType::Utf8, true), Field::new("a", DataType::Utf8, true)]);
        let columns: Vec<ArrayRef> =
            vec![Arc::new(StringArray::from(vec![Some("x")])), Arc::new(StringArray::from(vec![Some("y")]))];
        let batch = RecordBatch::try_new(Arc::new(schema), columns).unwrap();
        assert!(plugin_batch_from_arrow(&batch, 0).unwrap_err().reason.contains("second column"));
    }
}
