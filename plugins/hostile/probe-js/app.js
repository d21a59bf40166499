// Test-only sandbox probe (JavaScript, componentize-js): for each event it tries what a
// plugin must not be able to do and reports what happened in fields instead of failing:
//
// - `file`: reads the file named by config `path` (default `/etc/hostname`);
// - `socket`: reaches 127.0.0.1:<config `port`> (default 80);
// - `env`: the environment (`env_count`, `home` beside it).
//
// With config `spin=true` it loops forever instead, for the CPU limit to stop: the
// component is compiled ahead of time (weval), and the limit must hold on that code too.
//
// StarlingMonkey, the engine componentize-js embeds, has no filesystem, socket, process or
// environment API at all: the only way out is `fetch` (the `http` feature, which imports
// `wasi:http`, which the host does not link). So each field says `no ... API` unless the
// engine offers one (and then tries it). Built with every feature
// disabled (`-d stdio random clocks http fetch-event`, probe_js.wasm) the component imports
// no WASI at all; see plugins/hostile/README.md for the build with the default features.

import { Enricher, exportEnricher } from '../../../sdk/js/weir-sdk.js';

const g = globalThis;

function describe(err) {
  return `denied: ${err && err.name ? `${err.name}: ${err.message}` : String(err)}`;
}

/** Whichever file API the engine has (none in StarlingMonkey). */
function readFile(path) {
  if (typeof g.require === 'function') return `read: ${g.require('fs').readFileSync(path, 'utf8').slice(0, 80)}`;
  if (g.Deno && typeof g.Deno.readTextFileSync === 'function') return `read: ${g.Deno.readTextFileSync(path).slice(0, 80)}`;
  if (g.std && typeof g.std.loadFile === 'function') return `read: ${String(g.std.loadFile(path)).slice(0, 80)}`;
  return 'no fs API (no require, Deno, std or fs in this engine)';
}

function environment() {
  const env = g.process && g.process.env;
  if (env === undefined) return { env: 'no environment API (no process.env in this engine)', count: 0, home: null };
  const names = Object.keys(env).sort();
  return { env: names.length ? `${names.length} variables: ${names.join(',')}` : 'empty', count: names.length, home: env.HOME ?? null };
}

/** Whichever network API the engine has. StarlingMonkey's only one is `fetch`. Built
 * without the `http` feature, `fetch` is still defined but calling it traps the call
 * (wasm `unreachable`: the harness reports a failed call), so it is not called here; built
 * with it, the component imports `wasi:http` and the host refuses it at load. */
function network() {
  if (typeof g.WebSocket === 'function') return 'WebSocket exists';
  if (typeof g.fetch === 'function') return 'no socket API: fetch is defined but not wired without the http feature (calling it traps)';
  return 'no socket API (no fetch, WebSocket or net in this engine)';
}

class Probe extends Enricher {
  constructor(path, port, spin) {
    super();
    this.path = path;
    this.port = port;
    this.spin = spin;
  }

  static configure(config) {
    config.rejectUnknown(['path', 'port', 'spin']);
    return new Probe(config.get('path', '/etc/hostname'), config.getInt('port', 80), config.getBool('spin', false));
  }

  enrich(event) {
    if (this.spin) {
      for (;;) {
        // Until the host's CPU limit stops the call.
      }
    }
    let file;
    try {
      file = readFile(this.path);
    } catch (err) {
      file = describe(err);
    }
    const { env, count, home } = environment();
    return event
      .set('file', file)
      .set('socket', network())
      .set('env', env)
      .set('env_count', BigInt(count))
      .set('home', home);
  }
}

export const enrich = exportEnricher(Probe);
