// {{name}}: a weir parser. Each record is one JSON object; it becomes one event whose key
// is the object's `key` member (else the record's partition key), whose time is its
// `time` member (RFC 3339; else the record's arrival time), and whose fields are the
// other members. Whole numbers become ints (bigint), other numbers floats, objects and
// arrays JSON values.

import { Event, Json, Parser, Timestamp, exportParser } from './weir-sdk.js';

export class Plugin extends Parser {
  parse(record) {
    let document;
    try {
      document = JSON.parse(record.text());
    } catch (err) {
      throw new Error(`not a JSON object: ${err.message}`);
    }
    if (document === null || typeof document !== 'object' || Array.isArray(document)) {
      throw new Error('not a JSON object');
    }
    const event = new Event(record.arrivalTime, record.key);
    for (const [name, value] of Object.entries(document)) {
      if (name === 'key' && typeof value === 'string') event.key = value;
      else if (name === 'time' && typeof value === 'string') event.time = Timestamp.parse(value).micros;
      else event.set(name, fieldValue(value));
    }
    return [event];
  }
}

function fieldValue(value) {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (value !== null && typeof value === 'object') return Json.of(value);
  return value;
}

// The `weir:plugin/parse` export.
export const parse = exportParser(Plugin);
