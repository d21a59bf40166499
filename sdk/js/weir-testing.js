// Helpers for unit tests of JavaScript plugins under Node (not used inside a component):
// the NDJSON event form of `weir plugin test` fixtures, read and written.
//
//     {"key":"r-1","time":"2026-11-26T11:05:00Z","fields":{"total":23.5,"items":2,
//      "placed_at":{"$timestamp":"2026-11-26T11:05:00Z"}}}
//
// JSON integers become ints (bigint), other numbers floats; `{"$timestamp": …}`,
// `{"$bytes": "hex"}`, `{"$float": "NaN"}` and `{"$json": …}` tag the other kinds; objects and arrays are json.
// `eventToJson` writes the form the harness prints (floats keep a `.0`), so lines can be
// compared with an `expected.ndjson`; `weir plugin test` remains the reference.

import { Event, Json, Timestamp, formatRfc3339, parseRfc3339 } from './weir-sdk.js';

/** Parses JSON text, keeping each number's text so that 2 (int) and 2.0 (float) differ. */
function parseKeepingNumbers(text) {
  const marked = text.replace(
    /("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g,
    (m, str, num) => (str !== undefined ? str : `{"$__number":"${num}"}`),
  );
  return JSON.parse(marked);
}

function number(text) {
  return /^-?\d+$/.test(text) ? BigInt(text) : Number(text);
}

function valueFromJson(json) {
  if (json === null || typeof json === 'boolean' || typeof json === 'string') return json;
  if (Array.isArray(json)) return Json.of(plain(json));
  if (Object.hasOwn(json, '$__number')) return number(json.$__number);
  const keys = Object.keys(json);
  if (keys.length === 1 && keys[0] === '$timestamp') {
    const t = json.$timestamp;
    return new Timestamp(typeof t === 'string' ? parseRfc3339(t) : BigInt(t.$__number));
  }
  if (keys.length === 1 && keys[0] === '$bytes') {
    const hex = json.$bytes;
    return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
  }
  if (keys.length === 1 && keys[0] === '$json') return Json.of(plain(json.$json));
  if (keys.length === 1 && keys[0] === '$float') {
    return { NaN: NaN, inf: Infinity, '-inf': -Infinity }[json.$float] ?? Number(json.$float);
  }
  return Json.of(plain(json));
}

/** The plain JS value of a parsed-with-numbers document. */
function plain(json) {
  if (json === null || typeof json !== 'object') return json;
  if (Array.isArray(json)) return json.map(plain);
  if (Object.hasOwn(json, '$__number')) return Number(json.$__number);
  return Object.fromEntries(Object.entries(json).map(([k, v]) => [k, plain(v)]));
}

/** The event of one NDJSON line. */
export function eventFromJson(line) {
  const json = parseKeepingNumbers(line);
  const time = typeof json.time === 'string' ? parseRfc3339(json.time) : BigInt(json.time.$__number);
  const fields = new Map();
  for (const [name, value] of Object.entries(json.fields ?? {})) fields.set(name, valueFromJson(value));
  return new Event(time, json.key ?? null, fields);
}

/** The events of an NDJSON text (blank lines skipped). */
export function eventsFromNdjson(text) {
  return text.split('\n').filter((l) => l.trim() !== '').map(eventFromJson);
}

function floatText(x) {
  // JSON has no such numbers; written as the Rust host writes them.
  if (!Number.isFinite(x)) return `{"$float":"${Number.isNaN(x) ? 'NaN' : x > 0 ? 'inf' : '-inf'}"}`;
  let s = String(x).replace('e+', 'e');
  if (/^-?\d+$/.test(s)) s += '.0';
  return s;
}

function valueText(value) {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'boolean':
      return String(value);
    case 'bigint':
      return value.toString();
    case 'number':
      return floatText(value);
    case 'string':
      return JSON.stringify(value);
    default:
      break;
  }
  if (value instanceof Timestamp) return `{"$timestamp":${JSON.stringify(value.toString())}}`;
  if (value instanceof Uint8Array) return `{"$bytes":"${Array.from(value, (b) => b.toString(16).padStart(2, '0')).join('')}"}`;
  if (value instanceof Json) {
    const doc = value.value;
    // An object of one `$` member would read back as a tag: tagged, as the host does.
    const tagLike = doc !== null && typeof doc === 'object' && !Array.isArray(doc)
      && Object.keys(doc).length === 1 && Object.keys(doc)[0].startsWith('$');
    const tagged = doc === null || typeof doc !== 'object' || tagLike;
    return tagged ? `{"$json":${JSON.stringify(doc)}}` : JSON.stringify(doc);
  }
  return JSON.stringify(value);
}

/** The NDJSON line of an event, in the harness's form. */
export function eventToJson(event) {
  const key = event.key !== null ? `"key":${JSON.stringify(event.key)},` : '';
  const fields = Array.from(event.fields, ([name, value]) => `${JSON.stringify(name)}:${valueText(value)}`);
  return `{${key}"time":${JSON.stringify(formatRfc3339(event.time))},"fields":{${fields.join(',')}}}`;
}
