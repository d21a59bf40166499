// The JavaScript restaurant enricher (plugins/js/restaurant-enricher-js) run by plain Node
// on the same events `weir plugin bench` feeds its component: the baseline of issue 15
// item 2 (a JavaScript plugin within 2x of the same logic in native Node). The twin of
// host/bench/python/enricher_native.py, with the same two figures (median of ROUNDS
// rounds after one warm-up, per input):
// - `logic`: the plugin's own `enrich` over events already in memory (fresh copies each
//   round, made outside the timing);
// - `adapter`: the SDK's export adapter natively: the columnar batch decoded, enriched and
//   encoded again, in batches of BATCH.
//
// Usage (from the repository root):
//   node --import ./sdk/js/test/register.js host/bench/js/enricher_native.mjs \
//     EVENTS.ndjson LOOKUP.json INPUTS ROUNDS [BATCH]
import { readFileSync } from 'node:fs';

import { Event, Fields, encodeEvents, inBatch } from '../../../sdk/js/weir-sdk.js';
import { eventsFromNdjson } from '../../../sdk/js/weir-testing.js';
import { mapHost, setNativeHost } from '../../../sdk/js/test/host-stub.js';
import { RestaurantEnricher, enrich as exported } from '../../../plugins/js/restaurant-enricher-js/app.js';

const [eventsPath, lookupPath, inputsArg, roundsArg, batchArg] = process.argv.slice(2);
const inputs = Number(inputsArg);
const rounds = Number(roundsArg);
const batchSize = Number(batchArg ?? 1024);
setNativeHost(mapHost(JSON.parse(readFileSync(lookupPath, 'utf8'))));
const fixture = eventsFromNdjson(readFileSync(eventsPath, 'utf8'));
// The fixtures repeated up to INPUTS, as `weir plugin bench --inputs-per-round` does.
const events = Array.from({ length: inputs }, (_, i) => fixture[i % fixture.length]);
const chunks = [];
for (let i = 0; i < events.length; i += batchSize) chunks.push(events.slice(i, i + batchSize));
const plugin = new RestaurantEnricher();
exported.configure([]);
const batches = chunks.map((chunk) => encodeEvents(chunk));

function logic() {
  const copies = chunks.map((chunk) => chunk.map((e) => new Event(e.time, e.key, new Fields(e.fields))));
  const started = process.hrtime.bigint();
  for (const chunk of copies) {
    inBatch(() => {
      for (let i = 0; i < chunk.length; i++) {
        try {
          plugin.enrich(chunk[i]);
        } catch {
          // an unknown restaurant: the record error a plugin reports
        }
      }
    });
  }
  return Number(process.hrtime.bigint() - started);
}

function adapter() {
  const started = process.hrtime.bigint();
  for (const batch of batches) exported.enrich(batch);
  return Number(process.hrtime.bigint() - started);
}

const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [name, measure] of [
  ['logic', logic],
  ['adapter', adapter],
]) {
  measure(); // warm-up
  const perInput = median(Array.from({ length: rounds }, measure)) / events.length;
  console.log(`${name.padEnd(8)} ${perInput.toFixed(0).padStart(8)} ns/input`);
}
