// Stands in for the `weir:plugin/host@0.3.0` import when the SDK or plugin code runs under
// Node (unit tests): `register.js` maps the import to this module. Install a host with
// `setNativeHost({ log, counterAdd, lookup })`; by default logs go to stderr and lookups
// find nothing.

const defaultHost = {
  log: (level, message) => console.error(`[${level.toUpperCase()}] ${message}`),
  counterAdd: () => {},
  lookup: () => undefined,
};

let current = defaultHost;

export function setNativeHost(host) {
  current = { ...defaultHost, ...host };
}

/** A host serving reference data shaped like a `lookup.json` fixture; it records counter
 * totals (bigints) in `counters` and log lines in `lines`. */
export function mapHost(tables = {}) {
  const host = {
    counters: new Map(),
    lines: [],
    log: (level, message) => host.lines.push([level, message]),
    counterAdd: (name, delta) => host.counters.set(name, (host.counters.get(name) ?? 0n) + delta),
    lookup: (table, key) => (Object.hasOwn(tables, table) && Object.hasOwn(tables[table], key) ? JSON.stringify(tables[table][key]) : undefined),
  };
  return host;
}

export const log = (level, message) => current.log(level, message);
export const counterAdd = (name, delta) => {
  if (typeof delta !== 'bigint') throw new TypeError('counter-add takes an s64: a bigint');
  current.counterAdd(name, delta);
};
export const lookup = (table, key) => current.lookup(table, key);
