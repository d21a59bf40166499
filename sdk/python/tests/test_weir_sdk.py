"""Unit tests of the Python SDK and of plugins/python/restaurant-enricher-py under plain
CPython: ``python3 -m unittest discover -s sdk/python/tests`` from the repository root."""

import json
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "sdk/python"))
sys.path.insert(0, str(ROOT / "plugins/python/restaurant-enricher-py"))

from weir_sdk import (  # noqa: E402
    Aggregator,
    Config,
    Enricher,
    Event,
    Json,
    Parser,
    Timestamp,
    decode_batch,
    encode_events,
    export_aggregator,
    export_enricher,
    export_parser,
    format_rfc3339,
    host,
    parse_rfc3339,
    value_kind,
)
from weir_sdk import _native_types as wit  # noqa: E402
from weir_sdk.raw_batch import RawBatchError, RawRecord, pack_raw_batch, raw_records  # noqa: E402
from weir_sdk.testing import event_to_json, events_from_ndjson  # noqa: E402

FIXTURES = ROOT / "plugins/restaurant-enricher/fixtures"


def batch(events):
    return encode_events(events, wit.EventBatch)


class CountingHost(host.MapHost):
    def __init__(self, tables=None):
        super().__init__(tables)
        self.lookups = 0

    def lookup(self, table, key):
        self.lookups += 1
        return super().lookup(table, key)


class Values(unittest.TestCase):
    def test_every_kind_survives_a_batch_round_trip(self):
        events = [
            Event(
                1_764_155_100_000_000,
                "r-7",
                {
                    "s": "héllo",
                    "i": -3,
                    "f": 2.0,
                    "b": True,
                    "n": None,
                    "t": Timestamp(5),
                    "raw": b"\x00\xff",
                    "doc": Json('{"a":[1,2]}'),
                },
            ),
            Event(0),
            Event(-1, None, {"i": 2**63 - 1, "f": 0.1, "d": {"x": 1}}),
        ]
        decoded = decode_batch(batch(events))
        self.assertEqual([event_to_json(e) for e in decoded], [event_to_json(e) for e in events])
        self.assertEqual(decoded[:2], events[:2])
        self.assertEqual(value_kind(decoded[0]["f"]), "float")
        self.assertEqual(value_kind(decoded[0]["b"]), "bool")
        self.assertEqual(value_kind(decoded[2]["d"]), "json")
        self.assertIsNone(decoded[1].key)

    def test_number_columns_cross_packed_little_endian(self):
        b = batch([Event(-2, "k", {"n": 0x01020304, "s": "ab"})])
        self.assertEqual(b.times, b"\xfe" + b"\xff" * 7)
        self.assertEqual(b.scalars, bytes([4, 3, 2, 1, 0, 0, 0, 0]) + bytes(8))
        self.assertEqual(b.key_ends, bytes([1, 0, 0, 0]))
        self.assertEqual(b.field_counts, bytes([2, 0, 0, 0]))
        self.assertEqual(b.field_ids, bytes([0, 0, 0, 0, 1, 0, 0, 0]))
        self.assertEqual(b.text_ends, bytes([0, 0, 0, 0, 2, 0, 0, 0]))

    def test_a_packed_column_cut_inside_an_element_fails_every_input_with_its_name(self):
        b = batch([Event(1, None, {"n": 1}), Event(2, None, {"n": 2})])
        b.text_ends += b"\x00"

        class Passing(Enricher):
            def enrich(self, event):
                return event

        enrich = export_enricher(Passing)()
        enrich.configure([])
        out = enrich.enrich(b)
        self.assertEqual(out.counts, [0, 0])
        reason = "malformed event batch: text-ends has 9 bytes, not a whole number of packed u32 (4 bytes each)"
        self.assertEqual([(e.index, e.message) for e in out.errors], [(0, reason), (1, reason)])

    def test_json_documents_that_look_like_tags_and_non_finite_floats_read_back_as_themselves(self):
        event = Event(0, None, {"doc": Json('{"$timestamp":"2026-11-26T10:15:00Z"}'), "nan": float("nan"), "inf": float("-inf")})
        line = event_to_json(event)
        self.assertEqual(
            line,
            '{"time":"1970-01-01T00:00:00Z","fields":{"doc":{"$json":{"$timestamp":"2026-11-26T10:15:00Z"}},'
            '"nan":{"$float":"NaN"},"inf":{"$float":"-inf"}}}',
        )
        self.assertEqual(event_to_json(events_from_ndjson(line)[0]), line)

    def test_timestamps_format_like_the_rust_sdk(self):
        for text in ["1970-01-01T00:00:00Z", "2026-11-26T10:15:00Z", "2024-02-29T23:59:59.250Z", "1969-12-31T23:59:59.000001Z"]:
            self.assertEqual(format_rfc3339(parse_rfc3339(text)), text)
        self.assertEqual(parse_rfc3339("2026-11-26T11:15:00+01:00"), parse_rfc3339("2026-11-26T10:15:00Z"))
        with self.assertRaisesRegex(ValueError, "is not an RFC 3339 timestamp"):
            parse_rfc3339("yesterday")

    def test_out_of_range_ints_and_unknown_types_are_refused(self):
        with self.assertRaisesRegex(ValueError, "does not fit in 64 bits"):
            batch([Event(0, None, {"i": 2**63})])
        with self.assertRaisesRegex(TypeError, "a set cannot be a field value"):
            batch([Event(0, None, {"x": set()})])


class Adapters(unittest.TestCase):
    def setUp(self):
        host.set_native_host(host.MapHost())

    def test_one_bad_event_fails_only_itself(self):
        class Bad(Enricher):
            def enrich(self, event):
                mode = event.get_str("mode")
                if mode == "set":
                    return event.set("x", {1})
                if mode == "key":
                    return event["missing"]
                if mode == "refuse":
                    raise ValueError("refused")
                if mode == "drop":
                    return None
                if mode == "list":
                    return [event]
                return event

        exported = export_enricher(Bad)()
        exported.configure([])
        modes = ["ok", "set", "key", "refuse", "drop", "list", "ok"]
        out = exported.enrich(batch([Event(0, None, {"mode": m}) for m in modes]))
        self.assertEqual(out.counts, [1, 0, 0, 0, 0, 0, 1])
        self.assertEqual([e.index for e in out.errors], [1, 2, 3, 5])
        self.assertTrue(out.errors[0].message.startswith("TypeError: field 'x': a set cannot"), out.errors[0])
        self.assertEqual(out.errors[1].message, "KeyError: 'missing'")
        self.assertEqual(out.errors[2].message, "refused")
        self.assertEqual(len(decode_batch(out.events)), 2)

    def test_a_batch_before_configure_and_a_rejected_configuration_fail_every_input(self):
        exported = export_enricher(Enricher)()
        two = batch([Event(0), Event(1)])
        self.assertTrue(exported.enrich(two).errors[1].message.startswith("plugin not configured"))
        with self.assertRaises(wit.Err) as raised:
            exported.configure([("x", "1")])
        self.assertEqual(raised.exception.value, "unknown config key x: this plugin takes no configuration")
        self.assertEqual(len(exported.enrich(two).errors), 2)

    def test_lookups_cross_once_per_key_per_batch_and_counters_are_summed(self):
        native = CountingHost({"restaurants": {"r-1": {"name": "Pho Real"}}})
        host.set_native_host(native)

        class Counting(Enricher):
            def enrich(self, event):
                host.counter_add("seen")
                event["name"] = host.lookup_json("restaurants", "r-1")["name"]
                event["none"] = host.lookup("restaurants", "r-9")
                return event

        exported = export_enricher(Counting)()
        exported.configure([])
        exported.enrich(batch([Event(0), Event(0), Event(0)]))
        self.assertEqual(native.lookups, 2)
        self.assertEqual(native.counters, {"seen": 3})
        exported.enrich(batch([Event(0)]))
        self.assertEqual(native.lookups, 4, "the memo does not outlive its batch")

    def test_a_raw_batch_reads_back_the_records_it_was_packed_from(self):
        records = [
            RawRecord(b'{"a":1}', "k1", "application/json", 10),
            RawRecord(b"x,y", None, "text/csv", 11),
            RawRecord(b"", "cl\u00e9", "application/json", 12),
        ]
        batch = pack_raw_batch(records, wit.RawBatch)
        self.assertEqual(batch.content_types, ["application/json", "text/csv"])
        self.assertEqual(raw_records(batch), records)

    def test_a_malformed_raw_batch_fails_every_record_with_the_reason(self):
        parse = export_parser(Parser)()
        parse.configure([])
        batch = pack_raw_batch([RawRecord(b"a", None, "t", 1), RawRecord(b"b", None, "t", 2)], wit.RawBatch)
        batch.arrival_times = batch.arrival_times[:8]
        out = parse.parse(batch)
        self.assertEqual(out.counts, [0, 0])
        reason = "malformed raw-record batch: arrival-times has 1 elements for 2 records"
        self.assertEqual(out.errors[1], wit.RecordError(1, reason))
        batch = pack_raw_batch([RawRecord(b"a", "\u00e9", "t", 1)], wit.RawBatch)
        batch.key_ends = batch.key_ends[:0] + (1).to_bytes(4, "little")
        with self.assertRaisesRegex(RawBatchError, "key 0 is not UTF-8"):
            raw_records(batch)
        batch.data_ends = (5).to_bytes(4, "little")
        with self.assertRaisesRegex(RawBatchError, r"data-ends\[0\] is 5, after 0, in a buffer of 1 bytes"):
            raw_records(batch)

    def test_parser_and_aggregator_adapters(self):
        class Numbers(Parser):
            def parse(self, record):
                for part in record.text().split(","):
                    if part:
                        if not part.isdigit():
                            raise ValueError(f"{part!r} is not a number")
                        yield Event(record.arrival_time, None, {"n": int(part)})

        parse = export_parser(Numbers)()
        parse.configure([])
        records = [RawRecord(t.encode(), None, "text/plain", 7) for t in ["1,2", "", "3,x", "4"]]
        out = parse.parse(pack_raw_batch(records, wit.RawBatch))
        self.assertEqual(out.counts, [2, 0, 0, 1])
        self.assertEqual(out.errors, [wit.RecordError(2, "'x' is not a number")])

        class Sum(Aggregator):
            @classmethod
            def empty_state(cls):
                return {"events": 0, "total": 0}

            def accumulate(self, state, event):
                n = event.get_int("n")
                if n is None:
                    raise ValueError("no n")
                state["events"] += 1
                state["total"] += n

            def merge(self, into, other):
                return {k: into[k] + other[k] for k in into}

            def finish(self, state, window, key):
                return [Event(window.start, key, {"total": state["total"]})]

        agg = export_aggregator(Sum)()
        agg.configure([])
        init = agg.init()
        self.assertEqual(init, b'{"events":0,"total":0}')
        events = batch([Event(0, None, {"n": 2}), Event(0), Event(0, None, {"n": 5})])
        acc = agg.accumulate([init, b"kept"], events, [0, 0, 0])
        self.assertEqual(acc.states, [b'{"events":2,"total":7}', b"kept"])
        self.assertEqual(acc.errors, [wit.RecordError(1, "no n")])
        merged = agg.merge([(acc.states[0], acc.states[0]), (init, b"nope")])
        self.assertEqual(merged[0], wit.Ok(b'{"events":4,"total":14}'))
        self.assertTrue(merged[1].value.startswith("second state: "), merged[1])
        fin = agg.finish([wit.FinishedGroup(merged[0].value, wit.Window(60, 120), "a")])
        self.assertEqual(decode_batch(fin.events), [Event(60, "a", {"total": 14})])


class RestaurantEnricherPy(unittest.TestCase):
    def test_the_fixture_gives_the_rust_plugins_expected_output(self):
        import app

        native = host.MapHost(json.loads((FIXTURES / "lookup.json").read_text()))
        host.set_native_host(native)
        exported = app.Enrich()
        exported.configure([])
        out = exported.enrich(batch(events_from_ndjson((FIXTURES / "input.ndjson").read_text())))
        self.assertEqual(
            [(e.index, e.message) for e in out.errors],
            [(11, "unknown restaurant r-99: not in reference table restaurants")],
        )
        expected = (FIXTURES / "expected.ndjson").read_text().splitlines()
        self.assertEqual([event_to_json(e) for e in decode_batch(out.events)], expected)
        self.assertEqual(native.counters, {"test_orders_dropped": 2})

    def test_configuration_errors_match_the_rust_plugin(self):
        import app

        exported = app.Enrich()
        with self.assertRaises(wit.Err) as raised:
            exported.configure([("drop_test_orders", "yes")])
        self.assertEqual(
            raised.exception.value,
            'config key drop_test_orders: "yes" is not valid: provided string was not `true` or `false`',
        )
        with self.assertRaises(wit.Err) as raised:
            exported.configure([("tabel", "x")])
        self.assertEqual(raised.exception.value, "unknown config key tabel: expected one of table, drop_test_orders")

    def test_late_delivery_is_refused_with_rust_formatted_times(self):
        import app

        host.set_native_host(host.MapHost({"restaurants": {"r-2": {"name": "x"}}}))
        placed = Timestamp.parse("2026-11-26T11:05:00Z")
        event = Event(placed, "r-2", {"restaurant_id": "r-2", "placed_at": placed, "delivered_at": Timestamp(0)})
        with self.assertRaises(ValueError) as raised:
            app.RestaurantEnricher().enrich(event)
        self.assertEqual(
            str(raised.exception), "delivered_at 1970-01-01T00:00:00Z is before placed_at 2026-11-26T11:05:00Z"
        )


class ConfigTests(unittest.TestCase):
    def test_the_last_value_wins(self):
        config = Config([("t", "a"), ("t", "b")])
        self.assertEqual(config.get("t"), "b")
        self.assertEqual(config.get("missing", "fallback"), "fallback")
        self.assertEqual(config.get_int("missing", 3), 3)


if __name__ == "__main__":
    unittest.main()
