// Write weir plugins in JavaScript (componentize-js).
//
// A plugin is a class extending `Parser`, `Enricher` or `Aggregator`, written one record
// or event at a time, plus one export line naming the WIT interface it implements. The SDK
// handles the rest of the `weir:plugin` contract: it decodes the columnar batches the host
// sends into `Event` objects, calls the plugin per record, turns an exception thrown for one
// record into that record's error (dead-lettered) while the rest of the batch proceeds, and
// encodes the events produced.
//
//     import { Enricher, exportEnricher, host } from '../../../sdk/js/weir-sdk.js';
//
//     class UserCountry extends Enricher {
//       enrich(event) {
//         const userId = event.getString('user_id');
//         if (userId === null) return null;                       // dropped
//         const user = host.lookupJson('users', userId);
//         if (user === null) throw new Error(`unknown user ${userId}`);  // this event's error
//         return event.set('country', user.country ?? 'unknown');
//       }
//     }
//
//     export const enrich = exportEnricher(UserCountry);
//
// Values: null, boolean, bigint (int: exact signed 64-bit), number (float), string (text),
// Uint8Array (bytes), `Timestamp` and `Json`. A plain object or array is stored as Json;
// undefined as null. Ints are bigints so that a value keeps its kind through a plugin that
// does not touch it (a JS number cannot tell 15 from 15.0). See docs/plugins-js.md.

import * as witHost from 'weir:plugin/host@0.3.0';

// The WIT `value-kind` numbers.
const NULL = 0, BOOL = 1, INT = 2, FLOAT = 3, TEXT = 4, BYTES = 5, TIMESTAMP = 6, JSON_KIND = 7;
const KIND_NAMES = ['null', 'bool', 'int', 'float', 'text', 'bytes', 'timestamp', 'json'];
const I64_MIN = -(1n << 63n), I64_MAX = (1n << 63n) - 1n;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------
// Time

const MICROS_PER_SEC = 1000000n;

function floorDiv(a, b) {
  const q = a / b;
  return (a % b !== 0n && (a < 0n) !== (b < 0n)) ? q - 1n : q;
}

// Howard Hinnant's algorithms, as in the Rust SDK (weir_events::time), on bigints.
function daysFromCivil(y, m, d) {
  y = m <= 2n ? y - 1n : y;
  const era = floorDiv(y, 400n);
  const yoe = y - era * 400n;
  const doy = (153n * (m + (m > 2n ? -3n : 9n)) + 2n) / 5n + d - 1n;
  const doe = yoe * 365n + yoe / 4n - yoe / 100n + doy;
  return era * 146097n + doe - 719468n;
}

function civilFromDays(z) {
  z += 719468n;
  const era = floorDiv(z, 146097n);
  const doe = z - era * 146097n;
  const yoe = (doe - doe / 1460n + doe / 36524n - doe / 146096n) / 365n;
  const y = yoe + era * 400n;
  const doy = doe - (365n * yoe + yoe / 4n - yoe / 100n);
  const mp = (5n * doy + 2n) / 153n;
  const d = doy - (153n * mp + 2n) / 5n + 1n;
  const m = mp < 10n ? mp + 3n : mp - 9n;
  return [m <= 2n ? y + 1n : y, m, d];
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})?$/;

/** Parses `2026-11-26T10:15:00Z`, `2026-11-26T10:15:00.250+01:00` or `2026-11-26 10:15:00`
 * (taken as UTC) into microseconds since the Unix epoch (a bigint). Throws an Error with the
 * same message as the Rust SDK. */
export function parseRfc3339(text) {
  const m = RFC3339.exec(text);
  const err = () => new Error(`${JSON.stringify(text)} is not an RFC 3339 timestamp like 2026-11-26T10:15:00Z`);
  if (!m) throw err();
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(BigInt);
  if (mo < 1n || mo > 12n || d < 1n || d > 31n || h > 23n || mi > 59n || s > 60n) throw err();
  const micros = m[7] ? BigInt(m[7].slice(0, 6).padEnd(6, '0')) : 0n;
  let offset = 0n;
  if (m[8] && m[8] !== 'Z' && m[8] !== 'z') {
    const sign = m[8][0] === '-' ? -1n : 1n;
    offset = sign * (BigInt(m[8].slice(1, 3)) * 3600n + BigInt(m[8].slice(4, 6)) * 60n);
  }
  const secs = daysFromCivil(y, mo, d) * 86400n + h * 3600n + mi * 60n + s - offset;
  return secs * MICROS_PER_SEC + micros;
}

const pad = (n, width) => String(n).padStart(width, '0');

/** Formats microseconds since the Unix epoch (bigint or number) as RFC 3339 in UTC, with a
 * fraction only when there is one, exactly as the Rust SDK does. */
export function formatRfc3339(micros) {
  micros = BigInt(micros);
  const secs = floorDiv(micros, MICROS_PER_SEC);
  const frac = micros - secs * MICROS_PER_SEC;
  const days = floorDiv(secs, 86400n);
  const sod = secs - days * 86400n;
  const [y, m, d] = civilFromDays(days);
  const base = `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}T${pad(sod / 3600n, 2)}:${pad(sod % 3600n / 60n, 2)}:${pad(sod % 60n, 2)}`;
  if (frac === 0n) return `${base}Z`;
  if (frac % 1000n === 0n) return `${base}.${pad(frac / 1000n, 3)}Z`;
  return `${base}.${pad(frac, 6)}Z`;
}

/** A `timestamp` value: microseconds since the Unix epoch, UTC, as a bigint (`micros`). */
export class Timestamp {
  constructor(micros) {
    this.micros = BigInt(micros);
  }

  /** The timestamp of RFC 3339 text; throws when it is not one. */
  static parse(text) {
    return new Timestamp(parseRfc3339(text));
  }

  /** The timestamp of a JS Date (millisecond precision). */
  static fromDate(date) {
    return new Timestamp(BigInt(date.getTime()) * 1000n);
  }

  /** A JS Date (loses the microseconds). */
  toDate() {
    return new Date(Number(floorDiv(this.micros, 1000n)));
  }

  /** RFC 3339 text in UTC, e.g. `2026-11-26T11:05:00Z`. */
  toString() {
    return formatRfc3339(this.micros);
  }

  toJSON() {
    return this.toString();
  }

  /** Lets `<` and `>` compare timestamps (as microseconds). */
  valueOf() {
    return this.micros;
  }

  equals(other) {
    return other instanceof Timestamp && other.micros === this.micros;
  }
}

const UNPARSED = Symbol('unparsed');

/** A `json` value: a JSON document kept as text (nested data). `Json.of(value)` encodes a
 * JS value; `.value` parses the text (once; do not mutate the result). */
export class Json {
  constructor(text) {
    if (typeof text !== 'string') throw new TypeError('Json holds JSON text; use Json.of(value)');
    this.text = text;
    this._parsed = UNPARSED;
  }

  static of(value) {
    return new Json(JSON.stringify(value));
  }

  get value() {
    if (this._parsed === UNPARSED) this._parsed = JSON.parse(this.text);
    return this._parsed;
  }

  toString() {
    return this.text;
  }

  equals(other) {
    return other instanceof Json && other.text === this.text;
  }
}

// ---------------------------------------------------------------------------------------
// Events

/** The fields of one event, in order: a Map-like object (`get`, `set`, `has`, `delete`,
 * `size`, `forEach`, `keys`, `values`, `entries`, iteration as `[name, value]` pairs) kept
 * as two arrays. Iterating a real `Map` costs about 1.6 µs per entry in the engine's
 * interpreter (the iterator protocol); indexed loops over arrays cost a tenth of that, and
 * the SDK encodes every field of every event. */
export class Fields {
  constructor(entries = undefined) {
    this.names = [];
    this.vals = [];
    if (entries !== undefined) {
      const pairs = entries instanceof Map || entries instanceof Fields || Array.isArray(entries) ? entries : Object.entries(entries);
      for (const [name, value] of pairs) this.set(name, value);
    }
  }

  get size() {
    return this.names.length;
  }

  get(name) {
    const i = this.names.indexOf(name);
    return i < 0 ? undefined : this.vals[i];
  }

  has(name) {
    return this.names.indexOf(name) >= 0;
  }

  /** Sets `name` (in place, or added last); returns the fields. */
  set(name, value) {
    const i = this.names.indexOf(name);
    if (i < 0) {
      this.names.push(name);
      this.vals.push(value);
    } else {
      this.vals[i] = value;
    }
    return this;
  }

  /** Removes `name`; returns whether it was there. */
  delete(name) {
    const i = this.names.indexOf(name);
    if (i < 0) return false;
    this.names.splice(i, 1);
    this.vals.splice(i, 1);
    return true;
  }

  forEach(callback, thisArg = undefined) {
    for (let i = 0; i < this.names.length; i++) callback.call(thisArg, this.vals[i], this.names[i], this);
  }

  keys() {
    return this.names.slice().values();
  }

  values() {
    return this.vals.slice().values();
  }

  *entries() {
    for (let i = 0; i < this.names.length; i++) yield [this.names[i], this.vals[i]];
  }

  [Symbol.iterator]() {
    return this.entries();
  }
}

/** One event: an optional `key` (partition and group key; `null` when none), an event
 * `time` (a bigint, microseconds since the Unix epoch) and typed `fields` (a `Fields`,
 * Map-like, in the event's field order; the constructor also takes a `Map`, an array of
 * pairs or a plain object). */
export class Event {
  constructor(time = 0n, key = null, fields = undefined) {
    this.time = time instanceof Timestamp ? time.micros : BigInt(time);
    this.key = key || null;
    this.fields = fields instanceof Fields ? fields : new Fields(fields);
  }

  /** The value of field `name`, `undefined` when the event has no such field. */
  get(name) {
    return this.fields.get(name);
  }

  /** Sets field `name` (in place, or added last); returns the event, so calls chain. */
  set(name, value) {
    this.fields.set(name, value);
    return this;
  }

  has(name) {
    return this.fields.has(name);
  }

  /** Removes field `name`; returns whether it was there. */
  delete(name) {
    return this.fields.delete(name);
  }

  // Typed access, like the Rust SDK's `get_*`: null unless the field has that kind.

  getString(name) {
    const v = this.fields.get(name);
    return typeof v === 'string' ? v : null;
  }

  /** An int field, as a bigint. */
  getInt(name) {
    const v = this.fields.get(name);
    return typeof v === 'bigint' ? v : null;
  }

  /** An int or float field, as a number. */
  getNumber(name) {
    const v = this.fields.get(name);
    return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : null;
  }

  getBool(name) {
    const v = this.fields.get(name);
    return typeof v === 'boolean' ? v : null;
  }

  getTimestamp(name) {
    const v = this.fields.get(name);
    return v instanceof Timestamp ? v : null;
  }

  /** The parsed document of a json field. */
  getJson(name) {
    const v = this.fields.get(name);
    return v instanceof Json ? v.value : null;
  }
}

/** The kind a value crosses the boundary as (`null`, `bool`, `int`, ...). */
export function valueKind(value) {
  return KIND_NAMES[encodeValue(value, new Columns(1, 1), [], 0)];
}

/** The host sent a batch whose lists disagree (never happens with a correct host). */
export class BatchError extends Error {
  constructor(message) {
    super(`malformed event batch: ${message}`);
    this.name = 'BatchError';
  }
}

// The number columns of an `event-batch` are packed little-endian into `list<u8>` (WIT
// 0.2.0), which crosses as one Uint8Array. Typed arrays use the platform's byte order,
// and WebAssembly (where the component runs) is little-endian, as is every machine the
// SDK's unit tests run on.

/** A packed number column as a typed array over the same bytes (a copy only when the
 * bytes do not start at a multiple of the element size). */
function unpack(bytes, Type, column, ErrorType = BatchError) {
  const size = Type.BYTES_PER_ELEMENT;
  if (bytes.length % size !== 0) {
    const wit = Type === Uint32Array ? 'u32' : 's64';
    throw new ErrorType(`${column} has ${bytes.length} bytes, not a whole number of packed ${wit} (${size} bytes each)`);
  }
  if (bytes.byteOffset % size === 0) return new Type(bytes.buffer, bytes.byteOffset, bytes.length / size);
  const aligned = new Uint8Array(bytes.length);
  aligned.set(bytes);
  return new Type(aligned.buffer);
}

/** The bytes of a typed array, as the WIT's packed columns carry them. */
function packed(array) {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** The number of events in a WIT `event-batch` (its packed `times`: 8 bytes each). */
export function batchLength(batch) {
  return Math.floor(batch.times.length / 8);
}

/** A function returning the text of `buf[start..end]`: one decode of the whole buffer,
 * sliced by byte offsets when it is ASCII (the common case), else one decode per value. */
function textReader(buf) {
  let whole;
  try {
    whole = utf8.decode(buf);
  } catch {
    whole = null;
  }
  if (whole !== null && whole.length === buf.length) return (start, end) => whole.slice(start, end);
  return (start, end) => utf8.decode(buf.subarray(start, end));
}

/** Decodes a WIT `event-batch` (as componentize-js lifts it) into events. Throws a
 * `BatchError` when its lists disagree. */
export function decodeBatch(batch) {
  const { names, keyText, kinds, text } = batch;
  const times = unpack(batch.times, BigInt64Array, 'times');
  const keyEnds = unpack(batch.keyEnds, Uint32Array, 'key-ends');
  const fieldCounts = unpack(batch.fieldCounts, Uint32Array, 'field-counts');
  const fieldIds = unpack(batch.fieldIds, Uint32Array, 'field-ids');
  const scalars = unpack(batch.scalars, BigInt64Array, 'scalars');
  const textEnds = unpack(batch.textEnds, Uint32Array, 'text-ends');
  const n = times.length;
  if (keyEnds.length !== n || fieldCounts.length !== n) {
    throw new BatchError(`${n} event times but ${keyEnds.length} key ends and ${fieldCounts.length} field counts`);
  }
  let values = 0;
  for (let e = 0; e < n; e++) values += fieldCounts[e];
  if (fieldIds.length !== values || kinds.length !== values || scalars.length !== values || textEnds.length !== values) {
    throw new BatchError(
      `field counts add up to ${values} values but there are ${fieldIds.length} field ids, ${kinds.length} kinds, ` +
        `${scalars.length} scalars and ${textEnds.length} text ends`,
    );
  }
  if ((n ? keyEnds[n - 1] : 0) !== keyText.length || (values ? textEnds[values - 1] : 0) !== text.length) {
    throw new BatchError('the key or text offsets do not end at the end of their buffer');
  }
  const floats = kinds.includes(FLOAT) ? new Float64Array(scalars.buffer, scalars.byteOffset, scalars.length) : null;
  const keyOf = textReader(keyText);
  const textOf = textReader(text);
  const events = new Array(n);
  let v = 0;
  let keyStart = 0;
  let textStart = 0;
  try {
    for (let e = 0; e < n; e++) {
      const keyEnd = keyEnds[e];
      const key = keyEnd > keyStart ? keyOf(keyStart, keyEnd) : null;
      keyStart = keyEnd;
      const fields = new Fields();
      const fieldNames = fields.names;
      const fieldValues = fields.vals;
      for (const last = v + fieldCounts[e]; v < last; v++) {
        const kind = kinds[v];
        const end = textEnds[v];
        let value;
        switch (kind) {
          case TEXT: value = textOf(textStart, end); break;
          case INT: value = scalars[v]; break;
          case FLOAT: value = floats[v]; break;
          case TIMESTAMP: value = new Timestamp(scalars[v]); break;
          case BOOL: value = scalars[v] !== 0n; break;
          case NULL: value = null; break;
          case JSON_KIND: value = new Json(textOf(textStart, end)); break;
          // A copy made here: the lifted buffer may come from another realm, where
          // `instanceof Uint8Array` would be false in plugin code.
          case BYTES: value = new Uint8Array(text.subarray(textStart, end)); break;
          default: throw new BatchError(`value ${v} has unknown kind ${kind}`);
        }
        if (end !== textStart && kind !== TEXT && kind !== JSON_KIND && kind !== BYTES) {
          throw new BatchError(`value ${v} is ${KIND_NAMES[kind]} but has text`);
        }
        textStart = end;
        const name = names[fieldIds[v]];
        if (name === undefined) throw new BatchError(`value ${v} names field ${fieldIds[v]} but only ${names.length} names were sent`);
        fieldNames.push(name);
        fieldValues.push(value);
      }
      events[e] = new Event(times[e], key, fields);
    }
  } catch (err) {
    if (err instanceof BatchError) throw err;
    throw new BatchError(`near value ${v}: ${err}`);
  }
  return events;
}

/** Typed lists that grow as values are appended (one value's scalar is written either as
 * an int64 or, for a float, as the float64 sharing its bytes: no bigint is made for it). */
class Columns {
  constructor(events, values) {
    this.times = new BigInt64Array(events);
    this.fieldCounts = new Uint32Array(events);
    this.allocValues(values);
  }

  allocValues(values, old = null) {
    this.fieldIds = grow(Uint32Array, old?.fieldIds, values);
    this.kinds = grow(Uint8Array, old?.kinds, values);
    const scalars = new ArrayBuffer(values * 8);
    if (old) new Uint8Array(scalars).set(new Uint8Array(old.i64.buffer));
    this.i64 = new BigInt64Array(scalars);
    this.f64 = new Float64Array(scalars);
  }

  reserve(events, values) {
    if (events > this.times.length) {
      const size = Math.max(events, this.times.length * 2);
      this.times = grow(BigInt64Array, this.times, size);
      this.fieldCounts = grow(Uint32Array, this.fieldCounts, size);
    }
    if (values > this.kinds.length) this.allocValues(Math.max(values, this.kinds.length * 2), { ...this });
  }
}

function grow(Type, old, size) {
  const array = new Type(size);
  if (old) array.set(old);
  return array;
}

/** A Uint8Array, also one made in another realm (the component's bindings lift lists of
 * bytes into arrays for which `instanceof Uint8Array` is false). */
function isBytes(value) {
  return Object.prototype.toString.call(value) === '[object Uint8Array]';
}

/** Writes the kind, scalar and payload of value `v`. Throws a TypeError or RangeError for
 * what cannot cross the boundary. */
function encodeValue(value, c, texts, v) {
  let kind;
  switch (typeof value) {
    case 'string':
      texts[v] = value;
      kind = TEXT;
      break;
    case 'number':
      c.f64[v] = value;
      kind = FLOAT;
      break;
    case 'bigint':
      if (value < I64_MIN || value > I64_MAX) throw new RangeError(`the int ${value} does not fit in 64 bits`);
      c.i64[v] = value;
      kind = INT;
      break;
    case 'boolean':
      c.i64[v] = value ? 1n : 0n;
      kind = BOOL;
      break;
    case 'undefined':
      kind = NULL;
      break;
    case 'object':
      if (value === null) kind = NULL;
      else if (value instanceof Timestamp) {
        c.i64[v] = value.micros;
        kind = TIMESTAMP;
      } else if (value instanceof Json) {
        texts[v] = value.text;
        kind = JSON_KIND;
      } else if (isBytes(value)) {
        texts[v] = value;
        kind = BYTES;
      } else if (value instanceof Date) {
        throw new TypeError('a Date is not a field value: use Timestamp.fromDate(date)');
      } else if (Array.isArray(value) || Object.getPrototypeOf(value) === Object.prototype) {
        texts[v] = JSON.stringify(value);
        kind = JSON_KIND;
      }
      break;
    default:
      break;
  }
  if (kind === undefined) {
    const what = value?.constructor?.name ?? typeof value;
    throw new TypeError(
      `a ${what} cannot be a field value: use null, boolean, bigint (int), number (float), string, ` +
        'Uint8Array, Timestamp, Json (or a plain object/array, stored as Json)',
    );
  }
  // Payload kinds keep the scalar 0 the arrays start with (`truncate` zeroes what it drops).
  if (kind === NULL) c.i64[v] = 0n;
  c.kinds[v] = kind;
  return kind;
}

/** Writes events into the lists of an `event-batch`, interning field names. `push` is all
 * or nothing: an event with a value that cannot cross throws before it counts.
 *
 * Texts are kept as strings and encoded once per batch (`finish`): when the batch's text
 * is ASCII, as it mostly is, one `TextEncoder` call serves every value. */
export class BatchBuilder {
  constructor(capacity = 64) {
    this.names = [];
    this.ids = new Map();
    this.c = new Columns(capacity, capacity * 16);
    this.keys = []; // per event: its key, '' for none
    this.texts = []; // per value: string, Uint8Array or undefined
    this.events = 0;
    this.values = 0;
  }

  get length() {
    return this.events;
  }

  push(event) {
    if (!(event instanceof Event)) throw new TypeError(`expected an Event, got ${event?.constructor?.name ?? typeof event}`);
    const time = typeof event.time === 'bigint' ? event.time : BigInt(event.time);
    if (time < I64_MIN || time > I64_MAX) throw new RangeError(`event time ${time} does not fit in 64 bits`);
    const key = event.key;
    if (key !== null && key !== undefined && typeof key !== 'string') throw new TypeError('an event key is a string or null');
    const e = this.events;
    let v = this.values;
    const c = this.c;
    const fieldNames = event.fields.names;
    const fieldValues = event.fields.vals;
    const count = fieldNames.length;
    c.reserve(e + 1, v + count);
    const texts = this.texts;
    const ids = this.ids;
    for (let i = 0; i < count; i++) {
      const name = fieldNames[i];
      const value = fieldValues[i];
      let id = ids.get(name);
      if (id === undefined) {
        if (typeof name !== 'string') throw new TypeError(`field names are strings, not ${typeof name}`);
        id = this.names.length;
        ids.set(name, id);
        this.names.push(name);
      }
      texts[v] = undefined;
      try {
        encodeValue(value, c, texts, v);
      } catch (err) {
        c.i64.fill(0n, this.values, v + 1); // the scalars this event wrote
        err.message = `field ${JSON.stringify(name)}: ${err.message}`;
        throw err;
      }
      c.fieldIds[v] = id;
      v++;
    }
    this.keys[e] = key || '';
    c.times[e] = time;
    c.fieldCounts[e] = v - this.values;
    this.events = e + 1;
    this.values = v;
  }

  /** Forgets the events pushed after the first `events` (and their values). */
  truncate(events, values) {
    this.c.i64.fill(0n, values, this.values);
    this.events = events;
    this.values = values;
  }

  /** The batch, in the shape componentize-js lowers into an `event-batch`. */
  finish() {
    const { c, events: n, values: nv } = this;
    this.keys.length = n;
    this.texts.length = nv;
    const [keyText, keyEnds] = packTexts(this.keys, n);
    const [text, textEnds] = packTexts(this.texts, nv);
    return {
      names: this.names,
      keyText,
      keyEnds: packed(keyEnds),
      times: packed(c.times.slice(0, n)),
      fieldCounts: packed(c.fieldCounts.slice(0, n)),
      fieldIds: packed(c.fieldIds.slice(0, nv)),
      kinds: c.kinds.slice(0, nv),
      scalars: packed(c.i64.slice(0, nv)),
      text,
      textEnds: packed(textEnds),
    };
  }
}

/** One buffer holding every payload, and the end offset of each. */
function packTexts(parts, count) {
  const ends = new Uint32Array(count);
  let allStrings = true;
  for (let i = 0; i < count; i++) {
    if (parts[i] !== undefined && typeof parts[i] !== 'string') {
      allStrings = false;
      break;
    }
  }
  if (allStrings) {
    const joined = parts.join('');
    const bytes = encoder.encode(joined);
    if (bytes.length === joined.length) {
      // ASCII: byte offsets are string offsets.
      let at = 0;
      for (let i = 0; i < count; i++) {
        const part = parts[i];
        if (part !== undefined) at += part.length;
        ends[i] = at;
      }
      return [bytes, ends];
    }
  }
  const chunks = new Array(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const part = parts[i];
    const chunk = part === undefined ? null : typeof part === 'string' ? encoder.encode(part) : part;
    chunks[i] = chunk;
    if (chunk !== null) at += chunk.length;
    ends[i] = at;
  }
  const out = new Uint8Array(at);
  at = 0;
  for (const chunk of chunks) {
    if (chunk !== null) {
      out.set(chunk, at);
      at += chunk.length;
    }
  }
  return [out, ends];
}

/** Encodes events into the shape of an `event-batch`. */
export function encodeEvents(events) {
  const builder = new BatchBuilder();
  for (const event of events) builder.push(event);
  return builder.finish();
}

// ---------------------------------------------------------------------------------------
// Host

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];
let memo = new Map(); // `${table}\u0000${key}` -> { text, parsed }
let counters = new Map(); // name -> bigint

/** What the host offers a plugin: logging, counters and reference-data lookups. Lookups
 * are memoised for the duration of one batch (one host call per key per batch; the JSON
 * is parsed once); counter deltas are summed and sent when the batch ends. */
export const host = {
  /** Writes a line to the plugin's log at `level` (trace, debug, info, warn, error). */
  log(level, message) {
    if (!LEVELS.includes(level)) throw new RangeError(`unknown log level ${JSON.stringify(level)}: expected one of ${LEVELS.join(', ')}`);
    witHost.log(level, String(message));
  },
  trace: (message) => host.log('trace', message),
  debug: (message) => host.log('debug', message),
  info: (message) => host.log('info', message),
  warn: (message) => host.log('warn', message),
  error: (message) => host.log('error', message),

  /** Adds `delta` (number or bigint, default 1) to the plugin's counter `name`. */
  counterAdd(name, delta = 1) {
    counters.set(name, (counters.get(name) ?? 0n) + BigInt(delta));
  },

  /** The reference data stored under `key` in `table`, as JSON text, or null. */
  lookup(table, key) {
    return entry(table, key).text;
  },

  /** The same, parsed (once per batch: every event gets the same object, do not mutate
   * it), or null. Throws an Error naming the table and key when it is not JSON. */
  lookupJson(table, key) {
    const e = entry(table, key);
    if (e.parsed === UNPARSED) {
      if (e.text === null) {
        e.parsed = null;
      } else {
        try {
          e.parsed = JSON.parse(e.text);
        } catch (err) {
          e.parsed = new Error(`reference data ${table}/${key} is not valid JSON: ${err.message}`);
        }
      }
    }
    if (e.parsed instanceof Error) throw e.parsed;
    return e.parsed;
  },
};

function entry(table, key) {
  const id = `${table}\u0000${key}`;
  let e = memo.get(id);
  if (e === undefined) {
    const text = witHost.lookup(table, key);
    e = { text: text ?? null, parsed: UNPARSED };
    memo.set(id, e);
  }
  return e;
}

/** Runs one batch (or `configure`) as the export adapters do: an empty lookup memo at the
 * start, the counter deltas sent at the end (also when `run` throws). */
export function inBatch(run) {
  memo = new Map();
  try {
    return run();
  } finally {
    const pending = counters;
    counters = new Map();
    for (const [name, delta] of pending) witHost.counterAdd(name, delta);
  }
}

// ---------------------------------------------------------------------------------------
// Plugins

/** The configuration given to a plugin when an instance starts: `[key, value]` pairs. When
 * a key is given more than once, the last value wins. */
export class Config {
  constructor(pairs = []) {
    this.pairs = pairs.map(([k, v]) => [String(k), String(v)]);
  }

  /** The value of `key`, or `fallback` (default null) when it was not given. */
  get(key, fallback = null) {
    for (let i = this.pairs.length - 1; i >= 0; i--) if (this.pairs[i][0] === key) return this.pairs[i][1];
    return fallback;
  }

  /** `true` or `false`; throws (same message as the Rust SDK) otherwise. */
  getBool(key, fallback) {
    const value = this.get(key);
    if (value === null) return fallback;
    if (value === 'true' || value === 'false') return value === 'true';
    throw new Error(`config key ${key}: ${JSON.stringify(value)} is not valid: provided string was not \`true\` or \`false\``);
  }

  /** A decimal integer (as a number); throws naming the key and value otherwise. */
  getInt(key, fallback = null) {
    const value = this.get(key);
    if (value === null) return fallback;
    if (!/^[+-]?\d+$/.test(value)) throw new Error(`config key ${key}: ${JSON.stringify(value)} is not valid: not an integer`);
    return Number(value);
  }

  /** Throws naming the first key that is not one of `known`. */
  rejectUnknown(known) {
    for (const [k] of this.pairs) {
      if (!known.includes(k)) {
        if (known.length === 0) throw new Error(`unknown config key ${k}: this plugin takes no configuration`);
        throw new Error(`unknown config key ${k}: expected one of ${known.join(', ')}`);
      }
    }
  }
}

/** A raw record as it arrived: `data` (Uint8Array), `key` (string or null), `contentType`,
 * `arrivalTime` (bigint, microseconds since the epoch). */
export class RawRecord {
  constructor(data, key, contentType, arrivalTime) {
    this.data = data;
    this.key = key ?? null;
    this.contentType = contentType;
    this.arrivalTime = BigInt(arrivalTime);
  }

  /** The payload as UTF-8 text; throws saying it is not UTF-8. */
  text() {
    try {
      return utf8.decode(this.data);
    } catch {
      throw new Error('record is not UTF-8 text');
    }
  }
}

/** The host sent a raw batch whose lists disagree (never happens with a correct host). */
export class RawBatchError extends Error {
  constructor(message) {
    super(`malformed raw-record batch: ${message}`);
    this.name = 'RawBatchError';
  }
}

/** The number of records in a WIT `raw-batch` (its packed `data-ends`), rounded down. */
export function rawBatchLength(batch) {
  return Math.floor(batch.dataEnds.length / 4);
}

/** The records of a WIT `raw-batch` (WIT 0.3.0: every payload in one buffer with their
 * ends, the keys likewise, each content type once with a per-record index), checked as the
 * Rust SDK checks them: a `RawBatchError` names the first column that disagrees. Each
 * record's `data` is a view of the batch's buffer, not a copy. */
export function rawRecords(batch) {
  const { data, keys, contentTypes } = batch;
  const dataEnds = unpack(batch.dataEnds, Uint32Array, 'data-ends', RawBatchError);
  const keyEnds = unpack(batch.keyEnds, Uint32Array, 'key-ends', RawBatchError);
  const typeIds = unpack(batch.contentTypeIds, Uint32Array, 'content-type-ids', RawBatchError);
  const times = unpack(batch.arrivalTimes, BigInt64Array, 'arrival-times', RawBatchError);
  const n = dataEnds.length;
  for (const [name, column] of [['key-ends', keyEnds], ['content-type-ids', typeIds], ['arrival-times', times]]) {
    if (column.length !== n) throw new RawBatchError(`${name} has ${column.length} elements for ${n} records`);
  }
  const records = new Array(n);
  let start = 0;
  let keyStart = 0;
  for (let i = 0; i < n; i++) {
    const end = dataEnds[i];
    const keyEnd = keyEnds[i];
    if (end < start || end > data.length) {
      throw new RawBatchError(`data-ends[${i}] is ${end}, after ${start}, in a buffer of ${data.length} bytes`);
    }
    if (keyEnd < keyStart || keyEnd > keys.length) {
      throw new RawBatchError(`key-ends[${i}] is ${keyEnd}, after ${keyStart}, in a buffer of ${keys.length} bytes`);
    }
    if (typeIds[i] >= contentTypes.length) {
      throw new RawBatchError(`record ${i} has content type ${typeIds[i]}, but the batch has ${contentTypes.length}`);
    }
    let key = null;
    if (keyEnd > keyStart) {
      try {
        key = utf8.decode(keys.subarray(keyStart, keyEnd));
      } catch {
        throw new RawBatchError(`key ${i} is not UTF-8`);
      }
    }
    records[i] = new RawRecord(data.subarray(start, end), key, contentTypes[typeIds[i]], times[i]);
    start = end;
    keyStart = keyEnd;
  }
  return records;
}

/** `records` (`RawRecord`s) as the WIT carries them: what the host sends, for tests and
 * benchmarks. An empty key is no key. */
export function packRawBatch(records) {
  const payloads = records.map((r) => r.data);
  const keyBytes = records.map((r) => encoder.encode(r.key ?? ''));
  const concat = (parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    const ends = new Uint32Array(parts.length);
    parts.forEach((p, i) => {
      out.set(p, at);
      at += p.length;
      ends[i] = at;
    });
    return [out, ends];
  };
  const [data, dataEnds] = concat(payloads);
  const [keys, keyEnds] = concat(keyBytes);
  const typeIndex = new Map();
  const typeIds = Uint32Array.from(records, (r) => {
    if (!typeIndex.has(r.contentType)) typeIndex.set(r.contentType, typeIndex.size);
    return typeIndex.get(r.contentType);
  });
  return {
    data,
    dataEnds: packed(dataEnds),
    keys,
    keyEnds: packed(keyEnds),
    contentTypes: [...typeIndex.keys()],
    contentTypeIds: packed(typeIds),
    arrivalTimes: packed(BigInt64Array.from(records, (r) => BigInt(r.arrivalTime))),
  };
}

class Plugin {
  /** Builds the plugin from its configuration when an instance starts. Throw to reject the
   * configuration. The default takes no configuration. */
  static configure(config) {
    config.rejectUnknown([]);
    return new this();
  }
}

/** A parser: `parse(record)` returns the events one record holds (an array or iterable;
 * null for none), or throws to dead-letter the record. */
export class Parser extends Plugin {
  parse(_record) {
    throw new Error('parse is not implemented');
  }
}

/** An enricher or filter: `enrich(event)` returns the event (usually changed), or null to
 * drop it, or throws to dead-letter it. */
export class Enricher extends Plugin {
  enrich(_event) {
    throw new Error('enrich is not implemented');
  }
}

/** An aggregator. States cross the boundary as JSON, so they must be JSON-able (use
 * numbers, not bigints, in states). `accumulate(state, event)` and `merge(into, other)`
 * return the new state (returning undefined keeps the one passed, changed in place);
 * `finish(state, window, key)` returns events; `static emptyState()` the empty state. */
export class Aggregator extends Plugin {
  static emptyState() {
    return {};
  }

  accumulate(_state, _event) {
    throw new Error('accumulate is not implemented');
  }

  merge(_into, _other) {
    throw new Error('merge is not implemented');
  }

  finish(_state, _window, _key) {
    throw new Error('finish is not implemented');
  }
}

/** The record error (or configuration error) a thrown value becomes: the message of a
 * plain `Error` (the way plugins refuse bad input), `Name: message` for the built-in error
 * types (a bug such as `TypeError: x is undefined`), or the thrown value as text. */
export function errorMessage(err) {
  if (err instanceof Error) {
    if (err.constructor === Error && err.message) return err.message;
    return err.message ? `${err.name}: ${err.message}` : err.name;
  }
  return String(err);
}

const NOT_CONFIGURED = 'plugin not configured: the host sent a batch before a successful configure';

class Output {
  constructor() {
    this.events = new BatchBuilder();
    this.counts = [];
    this.errors = [];
  }

  /** Appends the events of one input; one that cannot be encoded fails the input. */
  produced(events) {
    const b = this.events;
    const [events0, values0] = [b.events, b.values];
    try {
      for (let i = 0; i < events.length; i++) b.push(events[i]);
    } catch (err) {
      b.truncate(events0, values0);
      this.failed(errorMessage(err));
      return;
    }
    this.counts.push(events.length);
  }

  /** Appends the one event of an input (an enricher's), or fails the input. */
  producedOne(event) {
    const b = this.events;
    try {
      b.push(event);
    } catch (err) {
      this.failed(errorMessage(err));
      return;
    }
    this.counts.push(1);
  }

  failed(message) {
    this.errors.push({ index: this.counts.length, message });
    this.counts.push(0);
  }

  finish() {
    return { events: this.events.finish(), counts: Uint32Array.from(this.counts), errors: this.errors };
  }
}

function allFailed(inputs, message) {
  const out = new Output();
  for (let i = 0; i < inputs; i++) out.failed(message);
  return out.finish();
}

function checkedEvents(produced, what) {
  if (produced === null || produced === undefined) return [];
  if (produced instanceof Event) throw new TypeError(`${what} must return an array of events, not one Event`);
  const events = Array.from(produced);
  for (const event of events) {
    if (!(event instanceof Event)) throw new TypeError(`${what} returned a ${event?.constructor?.name ?? typeof event} where an Event was expected`);
  }
  return events;
}

/** Holds the configured plugin of this instance. */
class Slot {
  constructor(PluginClass) {
    this.PluginClass = PluginClass;
    this.plugin = null;
  }

  configure(pairs) {
    this.plugin = null;
    let plugin;
    try {
      plugin = inBatch(() => this.PluginClass.configure(new Config(pairs)));
    } catch (err) {
      // componentize-js turns a thrown string into the `err` of `result<_, string>`.
      throw errorMessage(err);
    }
    if (!plugin) throw `${this.PluginClass.name}.configure returned ${plugin} instead of the plugin`;
    this.plugin = plugin;
  }
}

/** The object implementing the `weir:plugin/enrich` export for an `Enricher` subclass:
 * `export const enrich = exportEnricher(MyEnricher);` in the plugin's entry module. */
export function exportEnricher(PluginClass) {
  const slot = new Slot(PluginClass);
  const enrichBatch = (batch) => {
    let events;
    try {
      events = decodeBatch(batch);
    } catch (err) {
      return allFailed(batchLength(batch), err.message);
    }
    const plugin = slot.plugin;
    if (plugin === null) return allFailed(events.length, NOT_CONFIGURED);
    const out = new Output();
    // Indexed loops on the hot paths: `for...of` goes through the iterator protocol, which
    // the engine's interpreter makes costly.
    for (let i = 0; i < events.length; i++) {
      let result;
      try {
        result = plugin.enrich(events[i]);
        if (result !== null && result !== undefined && !(result instanceof Event)) {
          throw new TypeError(`enrich must return an Event or null, not ${result?.constructor?.name ?? typeof result}`);
        }
      } catch (err) {
        out.failed(errorMessage(err));
        continue;
      }
      if (result === null || result === undefined) out.counts.push(0);
      else out.producedOne(result);
    }
    return out.finish();
  };
  return {
    configure: (config) => slot.configure(config),
    enrich: (batch) => inBatch(() => enrichBatch(batch)),
  };
}

/** The object implementing the `weir:plugin/parse` export for a `Parser` subclass:
 * `export const parse = exportParser(MyParser);`. */
export function exportParser(PluginClass) {
  const slot = new Slot(PluginClass);
  const parseBatch = (batch) => {
    let records;
    try {
      records = rawRecords(batch);
    } catch (err) {
      if (err instanceof RawBatchError) return allFailed(rawBatchLength(batch), err.message);
      throw err;
    }
    const plugin = slot.plugin;
    if (plugin === null) return allFailed(records.length, NOT_CONFIGURED);
    const out = new Output();
    for (const record of records) {
      let events;
      try {
        events = checkedEvents(plugin.parse(record), 'parse');
      } catch (err) {
        out.failed(errorMessage(err));
        continue;
      }
      out.produced(events);
    }
    return out.finish();
  };
  return {
    configure: (config) => slot.configure(config),
    parse: (records) => inBatch(() => parseBatch(records)),
  };
}

function encodeState(state) {
  return encoder.encode(JSON.stringify(state));
}

function decodeState(bytes) {
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch (err) {
    const shown = new TextDecoder().decode(bytes.subarray(0, 200));
    throw new Error(`aggregator state ${JSON.stringify(shown)} does not decode: ${err.message}`);
  }
}

/** The object implementing the `weir:plugin/aggregate` export for an `Aggregator`
 * subclass: `export const aggregate = exportAggregator(MyAggregator);`. */
export function exportAggregator(PluginClass) {
  const slot = new Slot(PluginClass);
  const accumulateBatch = (states, batch, groups) => {
    const n = batchLength(batch);
    const allFailedAcc = (message) => ({
      states,
      errors: Array.from({ length: n }, (_, index) => ({ index, message })),
    });
    const plugin = slot.plugin;
    if (plugin === null) return allFailedAcc(NOT_CONFIGURED);
    let events;
    try {
      events = decodeBatch(batch);
    } catch (err) {
      return allFailedAcc(err.message);
    }
    if (groups.length !== events.length) return allFailedAcc(`the host sent ${groups.length} group numbers for ${events.length} events`);
    const open = new Map(); // group -> state, or the Error that decoding it gave
    const errors = [];
    events.forEach((event, index) => {
      const group = groups[index];
      if (group >= states.length) {
        errors.push({ index, message: `event ${index} belongs to group ${group}, but only ${states.length} states were sent` });
        return;
      }
      if (!open.has(group)) {
        try {
          open.set(group, decodeState(states[group]));
        } catch (err) {
          open.set(group, err);
        }
      }
      try {
        const state = open.get(group);
        if (state instanceof Error) throw state;
        const next = plugin.accumulate(state, event);
        if (next !== undefined) open.set(group, next);
      } catch (err) {
        errors.push({ index, message: errorMessage(err) });
      }
    });
    const newStates = states.map((bytes, group) => {
      if (!open.has(group) || open.get(group) instanceof Error) return bytes;
      try {
        return encodeState(open.get(group));
      } catch (err) {
        const message = `the aggregator state cannot be encoded as JSON: ${err.message}`;
        groups.forEach((g, index) => g === group && errors.push({ index, message }));
        return bytes;
      }
    });
    errors.sort((a, b) => a.index - b.index);
    return { states: newStates, errors };
  };
  const mergePairs = (pairs) =>
    pairs.map(([first, second]) => {
      const plugin = slot.plugin;
      if (plugin === null) return { tag: 'err', val: NOT_CONFIGURED };
      try {
        let into, other;
        try {
          into = decodeState(first);
        } catch (err) {
          throw new Error(`first state: ${err.message}`);
        }
        try {
          other = decodeState(second);
        } catch (err) {
          throw new Error(`second state: ${err.message}`);
        }
        const merged = plugin.merge(into, other);
        return { tag: 'ok', val: encodeState(merged === undefined ? into : merged) };
      } catch (err) {
        return { tag: 'err', val: errorMessage(err) };
      }
    });
  const finishGroups = (groups) => {
    const plugin = slot.plugin;
    if (plugin === null) return allFailed(groups.length, NOT_CONFIGURED);
    const out = new Output();
    for (const g of groups) {
      let events;
      try {
        events = checkedEvents(plugin.finish(decodeState(g.state), { start: g.window.start, end: g.window.end }, g.key), 'finish');
      } catch (err) {
        out.failed(errorMessage(err));
        continue;
      }
      out.produced(events);
    }
    return out.finish();
  };
  return {
    configure: (config) => slot.configure(config),
    init: () => encodeState(PluginClass.emptyState()),
    accumulate: (states, events, groups) => inBatch(() => accumulateBatch(states, events, groups)),
    merge: (pairs) => inBatch(() => mergePairs(pairs)),
    finish: (groups) => inBatch(() => finishGroups(groups)),
  };
}
