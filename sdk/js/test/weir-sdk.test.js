// Unit tests of the JavaScript SDK and of plugins/js/restaurant-enricher-js under Node:
//   node --import ./sdk/js/test/register.js --test sdk/js/test/
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import {
  Config,
  Enricher,
  Event,
  Json,
  Timestamp,
  decodeBatch,
  encodeEvents,
  exportAggregator,
  exportEnricher,
  exportParser,
  Aggregator,
  Parser,
  RawRecord,
  formatRfc3339,
  packRawBatch,
  rawRecords,
  host,
  parseRfc3339,
  valueKind,
} from '../weir-sdk.js';
import { eventToJson, eventsFromNdjson } from '../weir-testing.js';
import { mapHost, setNativeHost } from './host-stub.js';
import { enrich as restaurantEnrich } from '../../../plugins/js/restaurant-enricher-js/app.js';

const fixtures = new URL('../../../plugins/restaurant-enricher/fixtures/', import.meta.url);

test('every kind survives a batch round trip', () => {
  const events = [
    new Event(1764155100000000n, 'r-7', new Map([
      ['s', 'héllo'],
      ['i', -3n],
      ['f', 2],
      ['b', true],
      ['n', null],
      ['t', new Timestamp(5n)],
      ['raw', new Uint8Array([0, 255])],
      ['doc', new Json('{"a":[1,2]}')],
    ])),
    new Event(0n),
    new Event(-1n, null, new Map([['i', 9223372036854775807n], ['f', 0.1]])),
  ];
  const decoded = decodeBatch(encodeEvents(events));
  assert.equal(decoded.length, 3);
  assert.deepEqual(decoded.map(eventToJson), events.map(eventToJson));
  assert.equal(valueKind(decoded[0].get('f')), 'float');
  assert.equal(valueKind(decoded[0].get('i')), 'int');
  assert.equal(decoded[1].key, null);
  assert.equal(decoded[2].getInt('i'), 9223372036854775807n);
});

test('json documents that look like tags and non-finite floats read back as themselves', () => {
  const event = new Event(0n, null, new Map([
    ['doc', new Json('{"$timestamp":"2026-11-26T10:15:00Z"}')],
    ['nan', NaN],
    ['inf', -Infinity],
  ]));
  const line = eventToJson(event);
  assert.equal(line, '{"time":"1970-01-01T00:00:00Z","fields":{"doc":{"$json":{"$timestamp":"2026-11-26T10:15:00Z"}},"nan":{"$float":"NaN"},"inf":{"$float":"-inf"}}}');
  assert.equal(eventToJson(eventsFromNdjson(line)[0]), line);
});

test('timestamps format like the Rust SDK', () => {
  for (const text of ['1970-01-01T00:00:00Z', '2026-11-26T10:15:00Z', '2024-02-29T23:59:59.250Z', '1969-12-31T23:59:59.000001Z']) {
    assert.equal(formatRfc3339(parseRfc3339(text)), text);
  }
  assert.equal(parseRfc3339('2026-11-26T11:15:00+01:00'), parseRfc3339('2026-11-26T10:15:00Z'));
  assert.throws(() => parseRfc3339('yesterday'), /is not an RFC 3339 timestamp/);
});

test('values that cannot cross fail their own input only', () => {
  class Bad extends Enricher {
    enrich(event) {
      const mode = event.getString('mode');
      if (mode === 'set') return event.set('x', new Set());
      if (mode === 'type') return event.get('missing').x;
      if (mode === 'throw') throw new Error('refused');
      if (mode === 'string') throw 'plain string';
      if (mode === 'drop') return null;
      return event;
    }
  }
  const exported = exportEnricher(Bad);
  exported.configure([]);
  const modes = ['ok', 'set', 'type', 'throw', 'string', 'drop', 'ok'];
  const out = exported.enrich(encodeEvents(modes.map((m) => new Event(0n, null, new Map([['mode', m]])))));
  assert.deepEqual(Array.from(out.counts), [1, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual(out.errors.map((e) => e.index), [1, 2, 3, 4]);
  assert.match(out.errors[0].message, /^TypeError: field "x": a Set cannot be a field value/);
  assert.match(out.errors[1].message, /^TypeError: /);
  assert.equal(out.errors[2].message, 'refused');
  assert.equal(out.errors[3].message, 'plain string');
  assert.equal(decodeBatch(out.events).length, 2);
});

test('a batch before configure, and a rejected configuration, fail every input', () => {
  class Strict extends Enricher {}
  const exported = exportEnricher(Strict);
  const batch = encodeEvents([new Event(0n), new Event(1n)]);
  assert.match(exported.enrich(batch).errors[1].message, /^plugin not configured/);
  assert.throws(() => exported.configure([['x', '1']]), (e) => e === 'unknown config key x: this plugin takes no configuration');
  assert.equal(exported.enrich(batch).errors.length, 2);
});

test('lookups cross once per key per batch and counters are summed per batch', () => {
  const host_ = mapHost({ restaurants: { 'r-1': { name: 'Pho Real' } } });
  let lookups = 0;
  const inner = host_.lookup;
  host_.lookup = (t, k) => {
    lookups += 1;
    return inner(t, k);
  };
  setNativeHost(host_);
  class Counting extends Enricher {
    enrich(event) {
      host.counterAdd('seen');
      return event.set('name', host.lookupJson('restaurants', 'r-1').name).set('none', host.lookup('restaurants', 'r-9'));
    }
  }
  const exported = exportEnricher(Counting);
  exported.configure([]);
  exported.enrich(encodeEvents([new Event(0n), new Event(0n), new Event(0n)]));
  assert.equal(lookups, 2, 'one per distinct key');
  assert.equal(host_.counters.get('seen'), 3n);
  exported.enrich(encodeEvents([new Event(0n)]));
  assert.equal(lookups, 4, 'the memo does not outlive its batch');
});

test('a raw batch reads back the records it was packed from; a malformed one fails every record', () => {
  const enc = new TextEncoder();
  const records = [
    new RawRecord(enc.encode('{"a":1}'), 'k1', 'application/json', 10n),
    new RawRecord(enc.encode('x,y'), null, 'text/csv', 11n),
    new RawRecord(enc.encode(''), 'cl\u00e9', 'application/json', 12n),
  ];
  const batch = packRawBatch(records);
  assert.deepEqual(batch.contentTypes, ['application/json', 'text/csv']);
  assert.deepEqual(rawRecords(batch), records);
  const parse = exportParser(Parser);
  parse.configure([]);
  batch.arrivalTimes = batch.arrivalTimes.subarray(0, 16);
  const out = parse.parse(batch);
  assert.deepEqual(Array.from(out.counts), [0, 0, 0]);
  assert.deepEqual(out.errors[2], { index: 2, message: 'malformed raw-record batch: arrival-times has 2 elements for 3 records' });
});

test('parser and aggregator adapters', () => {
  class Numbers extends Parser {
    parse(record) {
      return record.text().split(',').filter((p) => p !== '').map((p) => {
        if (!/^\d+$/.test(p)) throw new Error(`${JSON.stringify(p)} is not a number`);
        return new Event(record.arrivalTime, null, new Map([['n', BigInt(p)]]));
      });
    }
  }
  const parse = exportParser(Numbers);
  parse.configure([]);
  const enc = new TextEncoder();
  const records = ['1,2', '', '3,x', '4'].map((t) => new RawRecord(enc.encode(t), null, 'text/plain', 7n));
  const out = parse.parse(packRawBatch(records));
  assert.deepEqual(Array.from(out.counts), [2, 0, 0, 1]);
  assert.deepEqual(out.errors, [{ index: 2, message: '"x" is not a number' }]);

  class Sum extends Aggregator {
    static emptyState() {
      return { events: 0, total: 0 };
    }
    accumulate(state, event) {
      const n = event.getNumber('n');
      if (n === null) throw new Error('no n');
      return { events: state.events + 1, total: state.total + n };
    }
    merge(a, b) {
      return { events: a.events + b.events, total: a.total + b.total };
    }
    finish(state, window, key) {
      return [new Event(window.start, key, new Map([['total', BigInt(state.total)]]))];
    }
  }
  const agg = exportAggregator(Sum);
  agg.configure([]);
  const init = agg.init();
  assert.equal(new TextDecoder().decode(init), '{"events":0,"total":0}');
  const events = encodeEvents([new Event(0n, null, new Map([['n', 2n]])), new Event(0n), new Event(0n, null, new Map([['n', 5n]]))]);
  const acc = agg.accumulate([init, enc.encode('kept')], events, Uint32Array.from([0, 0, 0]));
  assert.equal(new TextDecoder().decode(acc.states[0]), '{"events":2,"total":7}');
  assert.equal(new TextDecoder().decode(acc.states[1]), 'kept');
  assert.deepEqual(acc.errors, [{ index: 1, message: 'no n' }]);
  const merged = agg.merge([[acc.states[0], acc.states[0]], [init, enc.encode('nope')]]);
  assert.equal(merged[0].tag, 'ok');
  assert.equal(new TextDecoder().decode(merged[0].val), '{"events":4,"total":14}');
  assert.equal(merged[1].tag, 'err');
  assert.match(merged[1].val, /^second state: /);
  const fin = agg.finish([{ state: merged[0].val, window: { start: 60n, end: 120n }, key: 'a' }]);
  assert.equal(eventToJson(decodeBatch(fin.events)[0]), '{"key":"a","time":"1970-01-01T00:00:00.000060Z","fields":{"total":14}}');
});

test('the JS restaurant enricher gives the Rust fixture output', () => {
  const lookup = JSON.parse(readFileSync(new URL('lookup.json', fixtures), 'utf8'));
  const host_ = mapHost(lookup);
  setNativeHost(host_);
  const input = eventsFromNdjson(readFileSync(new URL('input.ndjson', fixtures), 'utf8'));
  const expected = readFileSync(new URL('expected.ndjson', fixtures), 'utf8').split('\n').filter((l) => l);
  restaurantEnrich.configure([]);
  const out = restaurantEnrich.enrich(encodeEvents(input));
  assert.deepEqual(out.errors, [{ index: 11, message: 'unknown restaurant r-99: not in reference table restaurants' }]);
  assert.deepEqual(decodeBatch(out.events).map(eventToJson), expected);
  assert.equal(host_.counters.get('test_orders_dropped'), 2n);
  assert.throws(() => restaurantEnrich.configure([['drop_test_orders', 'yes']]), (e) =>
    e === 'config key drop_test_orders: "yes" is not valid: provided string was not `true` or `false`');
  assert.throws(() => restaurantEnrich.configure([['tabel', 'x']]), (e) => e === 'unknown config key tabel: expected one of table, drop_test_orders');
});

test('config: last value wins', () => {
  const config = new Config([['table', 'a'], ['table', 'b']]);
  assert.equal(config.get('table'), 'b');
  assert.equal(config.get('missing', 'fallback'), 'fallback');
});

test('an event that fails to encode leaves no stale scalar behind', () => {
  class Mixed extends Enricher {
    enrich(event) {
      return event.getString('mode') === 'bad' ? event.set('a', 1.5).set('b', new Set()) : event.set('a', 'text');
    }
  }
  const exported = exportEnricher(Mixed);
  exported.configure([]);
  const out = exported.enrich(encodeEvents([new Event(0n, null, { mode: 'bad' }), new Event(0n, null, { mode: 'ok' })]));
  assert.deepEqual(Array.from(out.counts), [0, 1]);
  assert.deepEqual(Array.from(new BigInt64Array(out.events.scalars.slice().buffer)), [0n, 0n], 'text values have a zero scalar');
});

test('number columns cross packed little-endian, and one cut inside an element fails every input with its name', () => {
  const batch = encodeEvents([new Event(-2n, 'k', { n: 0x01020304n, s: 'ab' }), new Event(1n)]);
  assert.deepEqual(Array.from(batch.times), [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(batch.scalars), [4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(batch.keyEnds), [1, 0, 0, 0, 1, 0, 0, 0]);
  assert.deepEqual(Array.from(batch.fieldIds), [0, 0, 0, 0, 1, 0, 0, 0]);
  assert.deepEqual(Array.from(batch.textEnds), [0, 0, 0, 0, 2, 0, 0, 0]);
  assert.deepEqual(decodeBatch(batch).map((e) => e.get('n')), [0x01020304n, undefined]);

  class Passing extends Enricher {
    enrich(event) {
      return event;
    }
  }
  const exported = exportEnricher(Passing);
  exported.configure([]);
  const ragged = { ...batch, fieldCounts: Uint8Array.from([...batch.fieldCounts, 0]) };
  const out = exported.enrich(ragged);
  assert.deepEqual(Array.from(out.counts), [0, 0]);
  const reason = 'malformed event batch: field-counts has 9 bytes, not a whole number of packed u32 (4 bytes each)';
  assert.deepEqual(out.errors.map((e) => [e.index, e.message]), [[0, reason], [1, reason]]);
});
