// The weir console: one module, no framework, no build step. Every page is built with
// DOM calls (`h`), never from HTML strings, so what a record or a plugin returned is
// always shown as text. Every request carries the token the user logged in with; the
// host decides what it may do, the console only hides what it would refuse.

const TOKEN_KEY = 'weir-console-token';
const main = document.getElementById('main');
let who = null; // {token, role, can_act}
let timers = [];

// --- helpers ---------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const ns = ['svg', 'polyline', 'line', 'text', 'g', 'rect', 'path'].includes(tag) ? 'http://www.w3.org/2000/svg' : null;
  const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function toast(message, bad = false) {
  const box = h('div', { class: bad ? 'bad' : '' }, message);
  document.getElementById('toast').append(box);
  setTimeout(() => box.remove(), bad ? 9000 : 4000);
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(`${message} (${status} ${code})`);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, contentType = 'application/json') {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ''}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = contentType;
    init.body = contentType === 'application/json' ? JSON.stringify(body) : body;
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!response.ok) {
    if (response.status === 401 && path !== '/v1/whoami') { logout('Your token was refused; log in again.'); }
    throw new ApiError(response.status, json?.code ?? 'error', json?.error ?? text);
  }
  return json;
}

async function metricsText() {
  const response = await fetch('/metrics');
  return response.ok ? response.text() : '';
}

/** Prometheus text → Map of `name{labels}` → value. */
function parseMetrics(text) {
  const values = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

/** The labels of a series key `name{a="x",b="y"}`. */
function labelsOf(series) {
  const labels = {};
  const open = series.indexOf('{');
  if (open < 0) return labels;
  const re = /(\w+)="((?:[^"\\]|\\.)*)"/g;
  let m;
  while ((m = re.exec(series.slice(open))) !== null) labels[m[1]] = m[2].replace(/\\(.)/g, '$1');
  return labels;
}

function nameOf(series) {
  const open = series.indexOf('{');
  return open < 0 ? series : series.slice(0, open);
}

/** Sum of the series of `name` whose labels match `want`. */
function sum(values, name, want = {}) {
  let total = 0;
  for (const [series, v] of values) {
    if (nameOf(series) !== name) continue;
    const labels = labelsOf(series);
    if (Object.entries(want).every(([k, x]) => (typeof x === 'function' ? x(labels[k] ?? '') : labels[k] === x))) total += v;
  }
  return total;
}

function fmtRate(perSecond) {
  if (!Number.isFinite(perSecond)) return '–';
  return perSecond >= 100 ? perSecond.toFixed(0) : perSecond.toFixed(1);
}

/** Replaces the page's content, skipping absent parts (null, false). */
function show(...parts) {
  main.replaceChildren(...parts.flat().filter((p) => p !== null && p !== undefined && p !== false));
}

function every(ms, fn) {
  fn();
  timers.push(setInterval(fn, ms));
}

function canAct() {
  return who?.can_act === true;
}

/** A button for an action the admin role may take; disabled for other tokens, and while
 * `enabled()` says no. */
function actButton(label, onclick, cls = '', enabled = () => true) {
  const b = h('button', { type: 'button', class: cls, onclick: async () => {
    b.disabled = true;
    try { await onclick(); } catch (err) { toast(err.message, true); } finally { b.disabled = !canAct() || !enabled(); }
  } }, label);
  b.disabled = !canAct() || !enabled();
  if (!canAct()) b.title = 'needs a token with the admin role';
  return b;
}

function readOnlyNote() {
  return canAct() ? null : h('p', { class: 'warn', 'data-testid': 'read-only' },
    `Read-only: token ${who?.token} has the ${who?.role} role; actions need an admin token.`);
}

// --- routing ---------------------------------------------------------------------------

const pages = {
  graph: graphPage,
  plugins: pluginsPage,
  plugin: pluginPage,
  'dead-letters': deadLettersPage,
  metrics: metricsPage,
  audit: auditPage,
};

async function route() {
  timers.forEach(clearInterval);
  timers = [];
  const [page, arg] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (!sessionStorage.getItem(TOKEN_KEY)) return loginPage();
  if (!who) {
    try { who = await api('GET', '/v1/whoami'); } catch (err) { return loginPage(err.message); }
  }
  document.getElementById('nav').hidden = false;
  document.getElementById('logout').hidden = false;
  document.getElementById('who').textContent = `${who.token} (${who.role})`;
  const render = pages[page] || graphPage;
  for (const a of document.querySelectorAll('#nav a')) {
    const target = a.getAttribute('href').slice(2);
    if (target === (page === 'plugin' ? 'plugins' : page || 'graph')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  show(h('p', {}, 'Loading…'));
  try {
    await render(arg);
  } catch (err) {
    show(h('h1', {}, 'Something went wrong'), h('p', { class: 'error' }, err.message));
  }
  main.focus();
}

function logout(message) {
  timers.forEach(clearInterval);
  timers = [];
  sessionStorage.removeItem(TOKEN_KEY);
  who = null;
  document.getElementById('nav').hidden = true;
  document.getElementById('logout').hidden = true;
  document.getElementById('who').textContent = '';
  loginPage(message);
}

function loginPage(message) {
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'error', role: 'alert' }, message || '');
  const form = h('form', { class: 'panel login', onsubmit: async (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      who = await api('GET', '/v1/whoami');
      if (!location.hash || location.hash === '#/login') location.hash = '#/graph';
      else route();
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      error.textContent = err.message;
    }
  } },
  h('h1', {}, 'Log in to weir'),
  h('p', { class: 'muted' }, 'Use an API token: WEIR_ADMIN_TOKEN to act, WEIR_READ_TOKEN to look. It is kept for this tab only.'),
  h('p', {}, h('label', { for: 'token' }, 'Token'), input),
  error,
  h('button', { type: 'submit', class: 'primary' }, 'Log in'));
  show(form);
  input.focus();
}

// --- pipeline graph --------------------------------------------------------------------

function versionText(d) {
  if (!d) return '';
  const c = d.candidate;
  let text = `${d.plugin}@${d.live}`;
  if (c?.mode === 'canary') text += ` · canary ${c.version} on ${c.percent}%`;
  else if (c?.mode === 'shadow') text += ` · shadow ${c.version}`;
  return text;
}

async function graphPage() {
  const topology = await api('GET', '/v1/pipeline');
  const nodes = new Map(); // plugin name → node element showing name@version
  const edges = []; // {el, compute(values, dt)}
  const root = h('div', {});
  show(h('h1', {}, 'Pipeline'), readOnlyNote(), root);
  for (const s of topology.streams) {
    const flow = h('div', { class: 'flow', 'data-stream': s.name });
    const nodeOf = (kind, name) => {
      const label = h('div', { class: 'name', 'data-plugin': name }, name);
      const extra = h('div', { class: 'extra muted' }, '');
      nodes.set(name, { label, extra });
      return h('div', { class: 'node' }, h('div', { class: 'kind' }, kind), label, extra);
    };
    const edge = (compute) => {
      const rate = h('span', { class: 'rate' }, ' ');
      const err = h('span', { class: 'err' }, ' ');
      edges.push({ rate, err, compute });
      return h('div', { class: 'edge' }, rate, h('span', { class: 'arrow', 'aria-hidden': 'true' }), err);
    };
    const lag = h('div', { class: 'extra muted' }, 'lag –');
    flow.append(h('div', { class: 'node stream' }, h('div', { class: 'kind' }, 'stream'), h('div', { class: 'name' }, s.name), lag));
    edges.push({ rate: lag, err: null, compute: (v) => [`lag ${sum(v, 'weir_shard_lag_records', { stream: s.name })} records`] });
    flow.append(edge((v, r) => [`${fmtRate(r('weir_records_in_total', { stream: s.name }))} rec/s`,
      errorShare(r('weir_dead_letters_total', { stream: s.name, stage: 'parse' }), r('weir_records_in_total', { stream: s.name }), 'parse')]));
    flow.append(nodeOf('parser', s.parser));
    let previous = s.parser;
    for (const e of s.enrichers) {
      const from = previous;
      flow.append(edge((v, r) => [`${fmtRate(pluginOut(r, s.name, from))} ev/s`,
        errorShare(r('weir_dead_letters_total', { stream: s.name, stage: 'enrich' }), pluginOut(r, s.name, from), 'enrich')]));
      flow.append(nodeOf('enricher', e));
      previous = e;
    }
    if (s.aggregator) {
      const from = previous;
      flow.append(edge((v, r) => [`${fmtRate(pluginOut(r, s.name, from))} ev/s`,
        errorShare(r('weir_dead_letters_total', { stream: s.name, stage: 'aggregate' }), pluginOut(r, s.name, from), 'aggregate')]));
      flow.append(nodeOf(`aggregator · ${s.aggregator.window_seconds / 60} min windows`, s.aggregator.plugin));
    }
    const sinks = h('div', { class: 'sinks' });
    for (const [output, names] of Object.entries(s.routes)) {
      if (!names.length) continue;
      const list = h('ul', {});
      for (const sink of names) {
        const figure = h('span', { class: 'muted' }, '');
        edges.push({ rate: figure, err: null, compute: (v, r) => [`${fmtRate(r('weir_sink_write_seconds_count', { sink }))} commits/s`] });
        list.append(h('li', { 'data-sink': sink }, `${sink} `, figure));
      }
      sinks.append(h('div', { class: 'panel sinkgroup' }, h('h3', {}, `${output.replace('_', ' ')} →`), list));
    }
    root.append(h('section', { class: 'panel', 'aria-label': `stream ${s.name}` }, h('h2', {}, `Stream ${s.name}`), flow, sinks));
  }
  let last = null;
  every(2000, async () => {
    const [deployments, text] = await Promise.all([api('GET', '/v1/deployments'), metricsText()]);
    for (const d of deployments.deployments) {
      const node = nodes.get(d.plugin);
      if (!node) continue;
      node.label.textContent = versionText(d);
      const cannot = d.cannot_start ? Object.keys(d.cannot_start).join(', ') : null;
      node.extra.textContent = cannot ? `cannot start: ${cannot}` : (d.candidate ? `${d.candidate.stats?.inputs ?? 0} inputs to the candidate` : '');
    }
    const values = parseMetrics(text);
    const now = performance.now();
    if (last) {
      const dt = (now - last.at) / 1000;
      const r = (name, labels) => Math.max(0, (sum(values, name, labels) - sum(last.values, name, labels)) / dt);
      for (const e of edges) {
        const [rate, err] = e.compute(values, r);
        e.rate.textContent = rate;
        if (e.err) e.err.textContent = err || ' ';
      }
    } else {
      for (const e of edges) if (!e.err) e.rate.textContent = e.compute(values, () => NaN)[0];
    }
    last = { at: now, values };
  });
}

/** Events per second out of any version of `plugin` (the metric's label is name@version). */
function pluginOut(r, stream, plugin) {
  return r('weir_plugin_events_out_total', { stream, plugin: (p) => p === plugin || p.startsWith(`${plugin}@`) });
}

/** The share of what reached `stage` that it dead-lettered. */
function errorShare(failed, total, stage) {
  if (!(total > 0) && !(failed > 0)) return ' ';
  const share = total > 0 ? Math.min(100, (100 * failed) / total) : 100;
  return `${share.toFixed(1)}% dead-lettered in ${stage}`;
}

// --- plugins ---------------------------------------------------------------------------

async function pluginsPage() {
  const [plugins, deployments] = await Promise.all([api('GET', '/v1/plugins'), api('GET', '/v1/deployments')]);
  const byName = new Map(deployments.deployments.map((d) => [d.plugin, d]));
  const rows = plugins.plugins.map((p) => {
    const d = byName.get(p.name);
    return h('tr', {},
      h('td', {}, h('a', { href: `#/plugin/${encodeURIComponent(p.name)}` }, p.name)),
      h('td', {}, p.world),
      h('td', {}, d?.live ?? '–'),
      h('td', {}, d?.candidate ? `${d.candidate.mode} ${d.candidate.version}` : '–'),
      h('td', {}, p.versions.join(', ')));
  });
  show(h('h1', {}, 'Plugins'), readOnlyNote(),
    h('table', {}, h('thead', {}, h('tr', {}, ['Plugin', 'World', 'Live', 'Candidate', 'Versions'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows)));
}

function readFileBytes(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsArrayBuffer(file);
  });
}

/** The deployment summary of plugin `name` and a shadow's differing samples. */
function deploymentParts(name, d, post) {
  const c = d.candidate;
  const cannotStart = d.cannot_start ? Object.entries(d.cannot_start).map(([id, o]) => `${id}: ${o.last_error ?? ''}`).join('; ') : null;
  const summary = h('div', { class: 'panel', 'data-testid': 'deployment' },
    d.live ? h('p', {}, h('strong', {}, 'Live: '), h('span', { 'data-testid': 'live' }, d.live),
      d.previous?.length ? h('span', { class: 'muted' }, ` · previous ${d.previous.join(', ')}`) : null)
      : h('p', { class: 'warn' }, `No stream of this pipeline uses ${name}: add [plugins.${name}] to a stream's chain in the configuration to run it.`),
    cannotStart ? h('p', { class: 'error' }, `cannot start: ${cannotStart}`) : null,
    c ? h('p', { 'data-testid': 'candidate' }, h('strong', {}, 'Candidate: '),
      c.mode === 'canary' ? `${c.version} is the canary on ${c.percent}% of keys` : `${c.version} runs as a shadow`,
      ` · ${c.stats?.inputs ?? 0} inputs, ${c.stats?.failed ?? 0} failed`,
      c.mode === 'shadow' ? ` · ${c.stats?.compared ?? 0} compared, ${c.stats?.differing ?? 0} differ` : '') : h('p', { class: 'muted' }, 'No candidate running.'),
    d.last_candidate ? h('p', { class: 'muted' }, `Last candidate: ${d.last_candidate.version} ${d.last_candidate.outcome} at ${d.last_candidate.at} by ${d.last_candidate.actor}${d.last_candidate.reason ? ` (${d.last_candidate.reason})` : ''}`) : null,
    h('div', { class: 'row' },
      c ? actButton('Promote', () => post('promote', {}, () => `${name}: ${c.version} is live`), 'primary') : null,
      c ? actButton('Abort', () => post('abort', {}, () => `${name}: candidate stopped`)) : null,
      d.previous?.length ? actButton('Roll back', () => post('rollback', {}, (a) => `${name}: ${a?.live ?? 'previous version'} is live`), 'danger') : null));

  // Shadow differences, side by side.
  const samples = c?.stats?.samples ?? [];
  const diffs = samples.length ? h('section', { class: 'panel', 'aria-label': 'shadow differences' }, h('h2', {}, 'Shadow differences'),
    samples.slice(0, 10).map((s) => h('div', { class: 'sample', 'data-testid': 'shadow-sample' },
      h('p', {}, h('strong', {}, `record ${s.record}`), ' ', (s.changes || []).join('; ')),
      h('div', { class: 'side-by-side' },
        h('div', {}, h('div', { class: 'muted' }, `live ${d.live}`), h('pre', {}, JSON.stringify(s.live, null, 2))),
        h('div', {}, h('div', { class: 'muted' }, `candidate ${c.version}`), h('pre', {}, JSON.stringify(s.candidate, null, 2))))))) : null;
  return [summary, diffs];
}

async function pluginPage(name) {
  const [plugin, audit] = await Promise.all([api('GET', `/v1/plugins/${encodeURIComponent(name)}`), newestAudit()]);
  // A plugin no stream uses has versions but no deployment.
  const d = plugin.deployment ?? { plugin: name, live: null, previous: [], candidate: null, last_candidate: null };
  const versions = (plugin.versions || []).map((v) => (typeof v === 'string' ? { version: v } : v));
  const refresh = () => route();
  const post = async (verb, body, said) => {
    const answer = await api('POST', `/v1/deployments/${encodeURIComponent(name)}/${verb}`, body);
    toast(said(answer));
    refresh();
  };

  // The deployment, redrawn in place while a candidate runs (the forms below keep what
  // the user typed).
  const deployment = h('div', {});
  const drawDeployment = (d) => deployment.replaceChildren(...deploymentParts(name, d, post).filter(Boolean));
  drawDeployment(d);
  if (d.candidate) {
    timers.push(setInterval(async () => {
      try { drawDeployment(await api('GET', `/v1/deployments/${encodeURIComponent(name)}`)); } catch { /* the next tick retries */ }
    }, 3000));
  }

  // Versions with their actions.
  const percent = h('input', { type: 'range', min: 0, max: 100, step: 1, value: 10, id: 'canary-percent', 'aria-describedby': 'canary-out' });
  const percentOut = h('output', { id: 'canary-out', for: 'canary-percent' }, '10%');
  percent.addEventListener('input', () => { percentOut.textContent = `${percent.value}%`; });
  const versionRows = versions.map((v) => h('tr', { 'data-version': v.version },
    h('td', {}, v.version, v.version === d.live ? h('span', { class: 'good' }, ' (live)') : ''),
    h('td', {}, v.size ? `${v.size} bytes` : ''),
    h('td', {}, v.fixtures ? 'fixtures attached' : h('span', { class: 'muted' }, 'no fixtures')),
    h('td', {}, v.config ? configText(v.config) : h('span', { class: 'muted' }, 'the plugin\'s')),
    h('td', {}, h('div', { class: 'row' },
      actButton('Activate', () => post('activate', { version: v.version }, () => `${name}: ${v.version} is live`)),
      actButton('Canary', () => post('canary', { version: v.version, percent: Number(percent.value) }, () => `${name}: ${v.version} is the canary on ${percent.value}%`)),
      actButton('Shadow', () => post('shadow', { version: v.version }, () => `${name}: ${v.version} runs as a shadow`))))));
  const versionsTable = h('section', { class: 'panel', 'aria-label': 'versions' }, h('h2', {}, 'Versions'),
    h('div', { class: 'row' }, h('label', { for: 'canary-percent' }, 'Canary share'), percent, percentOut),
    h('table', {}, h('thead', {}, h('tr', {}, ['Version', 'Size', 'Fixtures', 'Configuration', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))), h('tbody', {}, versionRows)));

  // Upload: drag and drop, or the file picker (keyboard).
  const file = h('input', { type: 'file', id: 'upload-file', accept: '.wasm,application/wasm' });
  const newVersion = h('input', { type: 'text', id: 'upload-version', placeholder: 'next integer', size: 12 });
  const result = h('p', { 'data-testid': 'upload-result', role: 'status' }, '');
  let chosen = null;
  const drop = h('div', { class: 'drop', 'data-testid': 'drop' }, 'Drop a component (.wasm) here, or choose one: ', file);
  const choose = (f) => { chosen = f; drop.firstChild.textContent = `${f.name} (${f.size} bytes) — `; };
  file.addEventListener('change', () => file.files[0] && choose(file.files[0]));
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); if (e.dataTransfer.files[0]) choose(e.dataTransfer.files[0]); });
  const upload = h('section', { class: 'panel', 'aria-label': 'upload' }, h('h2', {}, 'Upload a version'), drop,
    h('div', { class: 'row' }, h('label', { for: 'upload-version' }, 'Version'), newVersion,
      actButton('Upload', async () => {
        if (!chosen) throw new Error('choose a component first');
        const bytes = await readFileBytes(chosen);
        const query = newVersion.value.trim() ? `?version=${encodeURIComponent(newVersion.value.trim())}` : '';
        try {
          const answer = await api('POST', `/v1/plugins/${encodeURIComponent(name)}/versions${query}`, bytes, 'application/wasm');
          result.className = 'good';
          result.textContent = `uploaded ${name}@${answer.version} (${answer.world}, WIT ${answer.wit_version})${answer.warnings ? ` — ${answer.warnings.join('; ')}` : ''}`;
          setTimeout(refresh, 800);
        } catch (err) {
          result.className = 'error';
          result.textContent = `refused: ${err.message}`;
        }
      }, 'primary')), result);

  // A version's configuration and fixtures.
  const target = h('select', { id: 'target-version' }, versions.map((v) => h('option', { value: v.version }, v.version)));
  if (versions.length) target.value = versions[versions.length - 1].version;
  const config = h('textarea', { id: 'config', rows: 3, cols: 40, placeholder: 'KEY=VALUE, one per line (empty: no keys)' });
  const fixturesIn = h('input', { type: 'file', id: 'fixtures-input' });
  const fixturesExpected = h('input', { type: 'file', id: 'fixtures-expected' });
  const configResult = h('p', { role: 'status', 'data-testid': 'version-result' }, '');
  const versionSettings = h('section', { class: 'panel', 'aria-label': 'version settings' }, h('h2', {}, 'Configuration and fixtures of a version'),
    h('div', { class: 'row' }, h('label', { for: 'target-version' }, 'Version'), target),
    h('div', { class: 'row' }, h('label', { for: 'config' }, 'Configuration'), config,
      actButton('Set configuration', async () => {
        const body = {};
        for (const line of config.value.split('\n').map((l) => l.trim()).filter(Boolean)) {
          const at = line.indexOf('=');
          if (at < 1) throw new Error(`${line} is not KEY=VALUE`);
          body[line.slice(0, at).trim()] = line.slice(at + 1);
        }
        try {
          await api('PUT', `/v1/plugins/${encodeURIComponent(name)}/versions/${encodeURIComponent(target.value)}/config`, body);
          configResult.className = 'good';
          configResult.textContent = `${name}@${target.value} runs with ${Object.keys(body).length ? JSON.stringify(body) : 'no keys'}`;
          const cell = main.querySelector(`tr[data-version="${CSS.escape(target.value)}"] td:nth-child(4)`);
          if (cell) cell.textContent = configText(body);
        } catch (err) { configResult.className = 'error'; configResult.textContent = err.message; }
      })),
    h('div', { class: 'row' }, h('label', { for: 'fixtures-input' }, 'Fixture input'), fixturesIn,
      h('label', { for: 'fixtures-expected' }, 'Expected output'), fixturesExpected,
      actButton('Run and attach fixtures', async () => {
        const [i, e] = [fixturesIn.files[0], fixturesExpected.files[0]];
        if (!i || !e) throw new Error('choose both fixture files');
        const body = { input: await i.text(), expected: await e.text(), files: { input: i.name, expected: e.name } };
        try {
          await api('PUT', `/v1/plugins/${encodeURIComponent(name)}/versions/${encodeURIComponent(target.value)}/fixtures`, body);
          configResult.className = 'good';
          configResult.textContent = `fixtures pass: attached to ${name}@${target.value}`;
        } catch (err) { configResult.className = 'error'; configResult.textContent = err.message; }
      })),
    configResult);

  const entries = audit.filter((e) => e.target === name || e.target.startsWith(`${name}@`));
  const auditTable = h('section', { class: 'panel', 'aria-label': 'audit' }, h('h2', {}, 'Audit log'),
    entries.length ? auditRows(entries.slice(0, 50)) : h('p', { class: 'muted' }, 'Nothing done to this plugin yet.'));

  show(h('h1', {}, `Plugin ${name} `, h('span', { class: 'muted' }, `(${versions[0]?.world ?? d.world})`)), readOnlyNote(),
    deployment, versionsTable, upload, versionSettings, auditTable);
}

function configText(config) {
  const pairs = Object.entries(config).map(([k, x]) => `${k}=${x}`);
  return pairs.length ? pairs.join(', ') : 'its own: no keys';
}

/** The newest `keep` audit entries, newest first: the log is read forward a page at a
 * time (it answers oldest first), keeping only the tail. */
async function newestAudit(keep = 500) {
  let after = 0;
  let tail = [];
  for (let pages = 0; pages < 200; pages++) {
    const page = await api('GET', `/v1/audit?after=${after}&limit=1000`);
    const entries = page.entries || [];
    tail = tail.concat(entries).slice(-keep);
    if (entries.length < 1000) break;
    after = entries[entries.length - 1].seq;
  }
  return tail.reverse();
}

function auditRows(entries) {
  return h('table', { 'data-testid': 'audit' }, h('thead', {}, h('tr', {}, ['When', 'Who', 'What', 'On', 'Result'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, entries.map((e) => h('tr', {}, h('td', {}, e.at), h('td', {}, e.actor), h('td', {}, e.action), h('td', {}, e.target),
      h('td', { class: e.result === 'ok' ? 'good' : 'bad' }, e.result)))));
}

async function auditPage() {
  const entries = await newestAudit();
  show(h('h1', {}, 'Audit log'), entries.length ? auditRows(entries) : h('p', { class: 'muted' }, 'Nothing done yet.'));
}

// --- dead letters ----------------------------------------------------------------------

/** A hex dump of a dead letter's original bytes: `original` (UTF-8 text) or, for bytes
 * that are not UTF-8, `original_base64`. */
function hexDump(text, base64) {
  const bytes = base64 ? Array.from(atob(base64), (c) => c.charCodeAt(0)) : Array.from(new TextEncoder().encode(text ?? ''));
  const lines = [];
  for (let i = 0; i < Math.min(bytes.length, 4096); i += 16) {
    const row = bytes.slice(i, i + 16);
    const hexes = row.map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const chars = row.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${i.toString(16).padStart(6, '0')}  ${hexes.padEnd(47)}  ${chars}`);
  }
  if (bytes.length > 4096) lines.push(`… ${bytes.length - 4096} more bytes`);
  return lines.join('\n');
}

async function deadLettersPage() {
  const topology = await api('GET', '/v1/pipeline');
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const stream = h('select', { id: 'dl-stream' }, topology.streams.map((s) => h('option', { value: s.name }, s.name)));
  const plugin = h('input', { id: 'dl-plugin', placeholder: 'name or name@version', value: params.get('plugin') || '' });
  const stage = h('select', { id: 'dl-stage' }, ['', 'decode', 'parse', 'validate', 'enrich', 'aggregate', 'sink'].map((s) => h('option', { value: s }, s || 'any')));
  const reason = h('input', { id: 'dl-reason', placeholder: 'text in the reason' });
  const body = h('tbody', {});
  const detail = h('section', { class: 'panel', 'aria-label': 'dead letter', 'data-testid': 'detail', hidden: true });
  const status = h('p', { role: 'status', 'data-testid': 'dl-status' }, '');
  const selected = new Set();
  let next = null;
  let rows = [];
  const more = h('button', { type: 'button', hidden: true, onclick: () => load(false) }, 'Load more');

  const showLetter = (row) => {
    detail.hidden = false;
    detail.replaceChildren(h('h2', {}, `Dead letter ${row.id}`),
      h('p', {}, `${row.plugin ?? ''} · stage ${row.stage ?? ''} · arrived ${row.arrival_time ?? ''} · ${row.content_type ?? ''}`),
      h('p', { class: 'error' }, row.reason ?? ''),
      h('div', { class: 'side-by-side' },
        h('div', {}, h('div', { class: 'muted' }, 'text'), h('pre', { 'data-testid': 'original-text' }, row.original ?? '(not UTF-8: see the bytes)')),
        h('div', {}, h('div', { class: 'muted' }, 'bytes'), h('pre', { 'data-testid': 'original-hex' }, hexDump(row.original, row.original_base64)))));
  };

  async function load(fresh) {
    if (fresh) { rows = []; next = null; selected.clear(); body.replaceChildren(); replay.disabled = true; }
    const q = new URLSearchParams({ limit: '100' });
    for (const [k, el] of [['plugin', plugin], ['stage', stage], ['reason', reason]]) if (el.value.trim()) q.set(k, el.value.trim());
    if (next) q.set('after', next);
    const page = await api('GET', `/v1/lake/${encodeURIComponent(stream.value)}/dead-letters?${q}`);
    next = page.more ? page.next : null;
    more.hidden = !next;
    for (const row of page.rows) {
      rows.push(row);
      const box = h('input', { type: 'checkbox', 'aria-label': `select ${row.id}`, onchange: (e) => {
        if (e.target.checked) selected.add(row.id); else selected.delete(row.id);
        tr.classList.toggle('selected', e.target.checked);
        replay.disabled = !canAct() || selected.size === 0 || selected.size > 100;
        status.textContent = selected.size > 100 ? `${selected.size} selected: replay takes at most 100 at a time` : `${selected.size} selected`;
      } });
      const tr = h('tr', { 'data-id': row.id }, h('td', {}, box),
        h('td', {}, h('button', { type: 'button', class: 'linklike', onclick: () => showLetter(row) }, row.id)),
        h('td', {}, row.plugin ?? ''), h('td', {}, row.stage ?? ''), h('td', {}, row.reason ?? ''), h('td', {}, row.arrival_time ?? ''));
      body.append(tr);
    }
    status.textContent = `${rows.length} dead letter${rows.length === 1 ? '' : 's'}${next ? ' (more to load)' : ''}`;
  }

  const replay = actButton('Replay selected', async () => {
    const ids = [...selected];
    const answer = await api('POST', `/v1/streams/${encodeURIComponent(stream.value)}/dead-letters/replay`, { ids });
    const replayed = answer.replayed?.length ?? 0;
    status.textContent = `replayed ${replayed} of ${ids.length} into ${stream.value}${answer.not_found?.length ? `; not found: ${answer.not_found.join(', ')}` : ''}`;
    toast(status.textContent);
  }, 'primary', () => selected.size > 0 && selected.size <= 100);

  const filters = h('form', { class: 'panel row', onsubmit: (e) => { e.preventDefault(); load(true).catch((err) => toast(err.message, true)); } },
    h('label', { for: 'dl-stream' }, 'Stream'), stream, h('label', { for: 'dl-plugin' }, 'Plugin'), plugin,
    h('label', { for: 'dl-stage' }, 'Stage'), stage, h('label', { for: 'dl-reason' }, 'Reason'), reason,
    h('button', { type: 'submit' }, 'Filter'));
  show(h('h1', {}, 'Dead letters'), readOnlyNote(), filters, h('div', { class: 'row' }, replay, status),
    h('table', {}, h('thead', {}, h('tr', {}, ['', 'Id', 'Plugin', 'Stage', 'Reason', 'Arrived'].map((t) => h('th', { scope: 'col' }, t)))), body),
    more, detail);
  await load(true);
}

// --- metrics ---------------------------------------------------------------------------

const COLORS = ['#1f5fbf', '#b42318', '#146c2e', '#8a5a00', '#6941c6', '#0e7490', '#c2410c', '#4d7c0f'];

/** A line chart of `lines` ({label, points: [[t, v]...]}) over `times`. */
function chart(title, unit, times, lines) {
  const W = 600, H = 180, L = 48, B = 22;
  const t0 = times[0] ?? 0, t1 = times[times.length - 1] ?? 1;
  const max = Math.max(1e-9, ...lines.flatMap((l) => l.points.map((p) => p[1]).filter(Number.isFinite)));
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - 6);
  const y = (v) => H - B - (v / max) * (H - B - 8);
  const svg = h('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title}: ${lines.map((l) => l.label).join(', ') || 'no data'}` },
    h('line', { x1: L, y1: H - B, x2: W, y2: H - B, stroke: '#9aa7b5' }),
    h('line', { x1: L, y1: 4, x2: L, y2: H - B, stroke: '#9aa7b5' }),
    h('text', { x: 4, y: 14, 'font-size': 11, fill: '#5b6673' }, `${max.toPrecision(3)}`),
    h('text', { x: 4, y: H - B, 'font-size': 11, fill: '#5b6673' }, '0'),
    h('text', { x: L, y: H - 4, 'font-size': 11, fill: '#5b6673' }, new Date(t0 * 1000).toLocaleTimeString()),
    h('text', { x: W - 70, y: H - 4, 'font-size': 11, fill: '#5b6673' }, new Date(t1 * 1000).toLocaleTimeString()),
    lines.map((l, i) => h('polyline', { fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 2, 'data-series': l.label,
      points: l.points.filter((p) => Number.isFinite(p[1])).map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ') })));
  const legend = h('div', { class: 'legend' }, lines.map((l, i) => {
    const s = h('span', {}, l.label);
    s.style.setProperty('--c', COLORS[i % COLORS.length]);
    return s;
  }));
  return h('figure', { class: 'chart', 'data-testid': 'chart' }, h('figcaption', {}, h('strong', {}, title), ` (${unit})`), svg,
    lines.length ? legend : h('p', { class: 'muted' }, 'nothing yet'));
}

/** Per-interval rates of the counter series matching `pick`, grouped by `group(labels)`. */
function rates(history, name, group, pick = () => true) {
  const grouped = new Map();
  for (const [series, values] of Object.entries(history.series)) {
    if (nameOf(series) !== name) continue;
    const labels = labelsOf(series);
    if (!pick(labels)) continue;
    const key = group(labels);
    const sums = grouped.get(key) || history.times.map(() => 0);
    values.forEach((v, i) => { sums[i] += v ?? 0; });
    grouped.set(key, sums);
  }
  return [...grouped].map(([label, sums]) => ({
    label,
    points: history.times.slice(1).map((t, i) => [t, Math.max(0, sums[i + 1] - sums[i]) / Math.max(1, t - history.times[i])]),
  }));
}

/** p99 of each interval from the histogram buckets' increments, per stream. */
function p99(history, name) {
  const byStream = new Map();
  for (const [series, values] of Object.entries(history.series)) {
    if (nameOf(series) !== `${name}_bucket`) continue;
    const { stream, le } = labelsOf(series);
    if (!byStream.has(stream)) byStream.set(stream, []);
    byStream.get(stream).push({ le: le === '+Inf' ? Infinity : Number(le), values });
  }
  return [...byStream].map(([stream, buckets]) => {
    buckets.sort((a, b) => a.le - b.le);
    const points = history.times.slice(1).map((t, i) => {
      const inc = buckets.map((b) => Math.max(0, (b.values[i + 1] ?? 0) - (b.values[i] ?? 0)));
      const total = inc[inc.length - 1];
      if (!(total > 0)) return [t, NaN];
      const k = buckets.findIndex((b, j) => inc[j] >= 0.99 * total);
      const le = buckets[k].le;
      return [t, Number.isFinite(le) ? le * 1000 : NaN];
    });
    return { label: stream, points };
  });
}

async function metricsPage() {
  const root = h('div', { class: 'charts' });
  show(h('h1', {}, 'Metrics, last hour'), h('p', { class: 'muted' }, 'One sample every 10 s, kept by the host for an hour.'), root);
  every(10000, async () => {
    const history = await api('GET', '/v1/metrics/history');
    root.replaceChildren(
      chart('Throughput', 'records/s', history.times.slice(1), rates(history, 'weir_ingested_records_total', (l) => `${l.stream} ingested`)
        .concat(rates(history, 'weir_events_out_total', (l) => `${l.stream} events out`))),
      chart('Commit latency p99', 'ms', history.times.slice(1), p99(history, 'weir_commit_seconds')),
      chart('Plugin traps and limit hits', 'per s', history.times.slice(1),
        rates(history, 'weir_plugin_failures_total', (l) => `${l.plugin} ${l.kind}`, (l) => ['trap', 'limit'].includes(l.kind))),
      chart('Dead letters', 'records/s', history.times.slice(1), rates(history, 'weir_dead_letters_total', (l) => `${l.stream} ${l.stage}`)));
  });
}

// --- start -----------------------------------------------------------------------------

document.getElementById('logout').addEventListener('click', () => logout('Logged out.'));
window.addEventListener('hashchange', route);
route();
