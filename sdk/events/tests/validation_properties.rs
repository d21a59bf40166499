//! Property tests of the batch validation the host runs on every batch a plugin returns:
//! whatever lists a plugin hands back, `validate` answers — accepted, or refused with a
//! message — and never panics; and a batch it accepts always decodes.

use proptest::prelude::*;
use weir_events::{Columns, Event, Value};

/// Any lists at all, small and with values near the valid range so that many pass the
/// first checks and reach the deeper ones.
fn any_lists() -> impl Strategy<Value = Columns> {
    let offsets = || proptest::collection::vec(0u32..24, 0..6);
    (
        proptest::collection::vec("[a-c_]{0,3}", 0..4),
        proptest::collection::vec(any::<u8>(), 0..16),
        offsets(),
        proptest::collection::vec(any::<i64>(), 0..5),
        proptest::collection::vec(0u32..4, 0..5),
        proptest::collection::vec(0u32..5, 0..8),
        proptest::collection::vec(0u8..10, 0..8),
        proptest::collection::vec(any::<i64>(), 0..8),
        proptest::collection::vec(any::<u8>(), 0..24),
        offsets(),
    )
        .prop_map(
            |(names, key_text, key_ends, times, field_counts, field_ids, kinds, scalars, text, text_ends)| Columns {
                names,
                key_text,
                key_ends,
                times,
                field_counts,
                field_ids,
                kinds,
                scalars,
                text,
                text_ends,
            },
        )
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        // NaN is never equal to itself, so the round trip compares finite floats.
        (-1e12f64..1e12).prop_map(Value::Float),
        "[a-zé\"\\\\{}]{0,6}".prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 0..4).prop_map(Value::Bytes),
        (-1_000_000_000_000i64..1_000_000_000_000).prop_map(Value::Timestamp),
        prop_oneof![Just("{}"), Just("[1,2]"), Just("\"x\""), Just("{\"a\":[null]}")]
            .prop_map(|json| Value::Json(json.to_owned())),
    ]
}

fn any_events() -> impl Strategy<Value = Vec<Event>> {
    let event = (
        -1_000_000_000i64..1_000_000_000,
        // An empty key is no key: the encoding does not tell them apart.
        proptest::option::of("[a-z]{1,3}"),
        proptest::collection::btree_map("[a-d]{1,2}", any_value(), 0..4),
    )
        .prop_map(|(time, key, fields)| {
            let mut event = Event::new(time);
            event.key = key;
            for (name, value) in fields {
                event = event.with(&name, value);
            }
            event
        });
    proptest::collection::vec(event, 0..5)
}

/// One change to one list of a valid batch, at `at` (taken modulo its length).
#[derive(Debug, Clone)]
enum Mutation {
    TextByte(usize, u8),
    KeyByte(usize, u8),
    TextEnd(usize, u32),
    KeyEnd(usize, u32),
    FieldId(usize, u32),
    Kind(usize, u8),
    FieldCount(usize, u32),
    Time(usize, i64),
    NameTwice,
    DropLast,
}

fn any_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::TextByte(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::KeyByte(i, b)),
        (any::<usize>(), 0u32..64).prop_map(|(i, n)| Mutation::TextEnd(i, n)),
        (any::<usize>(), 0u32..64).prop_map(|(i, n)| Mutation::KeyEnd(i, n)),
        (any::<usize>(), 0u32..8).prop_map(|(i, n)| Mutation::FieldId(i, n)),
        (any::<usize>(), 0u8..12).prop_map(|(i, k)| Mutation::Kind(i, k)),
        (any::<usize>(), 0u32..8).prop_map(|(i, n)| Mutation::FieldCount(i, n)),
        (any::<usize>(), any::<i64>()).prop_map(|(i, t)| Mutation::Time(i, t)),
        Just(Mutation::NameTwice),
        Just(Mutation::DropLast),
    ]
}

fn set<T>(list: &mut [T], at: usize, value: T) {
    if !list.is_empty() {
        let i = at % list.len();
        list[i] = value;
    }
}

fn mutate(columns: &mut Columns, mutation: Mutation) {
    match mutation {
        Mutation::TextByte(i, b) => set(&mut columns.text, i, b),
        Mutation::KeyByte(i, b) => set(&mut columns.key_text, i, b),
        Mutation::TextEnd(i, n) => set(&mut columns.text_ends, i, n),
        Mutation::KeyEnd(i, n) => set(&mut columns.key_ends, i, n),
        Mutation::FieldId(i, n) => set(&mut columns.field_ids, i, n),
        Mutation::Kind(i, k) => set(&mut columns.kinds, i, k),
        Mutation::FieldCount(i, n) => set(&mut columns.field_counts, i, n),
        Mutation::Time(i, t) => set(&mut columns.times, i, t),
        Mutation::NameTwice => {
            if let Some(first) = columns.names.first().cloned() {
                columns.names.push(first);
            }
        }
        Mutation::DropLast => {
            columns.scalars.pop();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_lists_are_accepted_or_refused_with_a_message_and_accepted_ones_decode(columns in any_lists()) {
        match columns.validate() {
            Ok(()) => prop_assert!(columns.decode().is_ok(), "accepted but does not decode: {columns:?}"),
            Err(err) => prop_assert!(!err.0.is_empty()),
        }
    }

    #[test]
    fn a_valid_batch_changed_in_one_place_is_accepted_and_decodes_or_is_refused(
        events in any_events(),
        mutation in any_mutation(),
    ) {
        let mut columns = Columns::encode(&events);
        prop_assert!(columns.validate().is_ok(), "an encoded batch is valid");
        prop_assert_eq!(columns.decode().unwrap(), events);
        mutate(&mut columns, mutation);
        match columns.validate() {
            Ok(()) => {
                let decoded = columns.decode();
                prop_assert!(decoded.is_ok(), "accepted but does not decode: {columns:?}");
                // What decodes encodes again into a batch the host accepts.
                prop_assert!(Columns::encode(&decoded.unwrap()).validate().is_ok());
            }
            Err(err) => prop_assert!(!err.0.is_empty()),
        }
    }
}
