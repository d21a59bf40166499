"""The Python restaurant enricher (plugins/python/restaurant-enricher-py) run by plain
CPython on the same events `weir plugin bench` feeds its component: the baseline of
issue 15 item 2 (a Python plugin within 2x of the same logic in native CPython).

Two figures, per input, the median of ROUNDS rounds after one warm-up:
- `logic`: the plugin's own `enrich` over events already in memory (each round works on
  fresh copies, made outside the timing): what the same code costs a data team that runs
  it as a plain Python function;
- `adapter`: the SDK's export adapter natively, the columnar batch decoded into events,
  enriched and encoded again, in batches of BATCH: what the component does per call,
  less the interpreter running inside WebAssembly and the boundary.

Usage (from the repository root):
  python3 host/bench/python/enricher_native.py EVENTS.ndjson LOOKUP.json INPUTS ROUNDS [BATCH]
Prints one line per figure: `logic 2550 ns/input` (the same unit as `weir plugin bench`).
"""

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "sdk/python"), str(ROOT / "plugins/python/restaurant-enricher-py")]

from weir_sdk import Event, host  # noqa: E402
from weir_sdk import _native_types as wit  # noqa: E402
from weir_sdk.events import encode_events  # noqa: E402
from weir_sdk.testing import events_from_ndjson  # noqa: E402

import app  # noqa: E402


def main() -> None:
    events_path, lookup_path, inputs, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    batch_size = int(sys.argv[5]) if len(sys.argv) > 5 else 1024
    host.set_native_host(host.MapHost.from_json(Path(lookup_path).read_text()))
    fixture = events_from_ndjson(Path(events_path).read_text())
    # The fixtures repeated up to INPUTS, as `weir plugin bench --inputs-per-round` does.
    events = (fixture * (inputs // len(fixture) + 1))[:inputs]
    plugin = app.RestaurantEnricher()
    exported = app.Enrich()
    exported.configure([])
    batches = [encode_events(events[i : i + batch_size], wit.EventBatch) for i in range(0, len(events), batch_size)]

    def logic() -> float:
        copies = [[Event(e.time, e.key, dict(e.fields)) for e in events[i : i + batch_size]] for i in range(0, len(events), batch_size)]
        started = time.perf_counter_ns()
        for chunk in copies:

            def run(chunk=chunk):
                for event in chunk:
                    try:
                        plugin.enrich(event)
                    except ValueError:
                        pass  # an unknown restaurant: the record error a plugin reports

            host.in_batch(run)
        return time.perf_counter_ns() - started

    def adapter() -> float:
        started = time.perf_counter_ns()
        for batch in batches:
            exported.enrich(batch)
        return time.perf_counter_ns() - started

    for name, measure in (("logic", logic), ("adapter", adapter)):
        measure()  # warm-up
        per_input = statistics.median(measure() for _ in range(rounds)) / len(events)
        print(f"{name:<8} {per_input:>8.0f} ns/input")


if __name__ == "__main__":
    main()
