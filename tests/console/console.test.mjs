// The console in headless Chromium against a running `weir serve` (the demo pipeline
// with a crashing enricher, `chaos`, in front of the restaurant enricher): log in, watch
// the graph fill with live rates, upload a version by drag and drop, put it on a 10% canary with the
// keyboard, see a shadow's differences side by side, promote, roll back, find a dead
// letter and replay it after the fix, read the charts and the audit log; then a read
// token sees but cannot act. A screenshot of every page goes to $SCREENSHOTS.
//
// Run by tests/all/console.rs, which starts the host and passes: WEIR_URL, ADMIN_TOKEN,
// READ_TOKEN, CHAOS_WASM, PLAYWRIGHT_CORE (the package's directory), CHROMIUM, SCREENSHOTS,
// FIXTURES_INPUT, FIXTURES_EXPECTED and FIXTURES_WRONG (chaos@2's fixtures, and a wrong
// expectation).

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const url = env('WEIR_URL');
const [admin, reader] = [env('ADMIN_TOKEN'), env('READ_TOKEN')];
const shots = env('SCREENSHOTS');
mkdirSync(shots, { recursive: true });
const { chromium } = await import(pathToFileURL(join(env('PLAYWRIGHT_CORE'), 'index.mjs')).href);

const step = (text) => console.log(`· ${text}`);
const headers = (token) => ({ Authorization: `Bearer ${token}` });

// Orders, 10 every 300 ms, their ids cycling over o-0..o-39 so o-7 (the one chaos@1.0.0
// crashes on) keeps coming back.
let sent = 0;
let sending = true;
async function sendSome() {
  if (!sending) return;
  const now = Date.now();
  const lines = [];
  for (let i = 0; i < 10; i++, sent++) {
    lines.push(JSON.stringify({ order_id: `o-${sent % 40}`, restaurant_id: `r-${1 + (sent % 5)}`, customer_id: `c-${sent}`,
      status: 'delivered', total: 12.5, items: 2, placed_at: new Date(now - 600000).toISOString(), delivered_at: new Date(now - 60000).toISOString() }));
  }
  const r = await fetch(`${url}/v1/streams/orders/records?key_field=order_id`, { method: 'POST', headers: { 'Content-Type': 'application/x-ndjson' }, body: lines.join('\n') });
  if (!r.ok) throw new Error(`ingest: ${r.status} ${await r.text()}`);
}
// The sends under way, so that stopping the sender can wait for the last one to be
// acknowledged (a fixed nap is too short on a loaded machine).
const inFlight = new Set();
const sender = setInterval(() => {
  const send = sendSome().catch((e) => console.error(e)).finally(() => inFlight.delete(send));
  inFlight.add(send);
}, 300);
// One record that is not UTF-8 (a raw body is one record): the parser dead-letters it and
// the console must show its bytes.
{
  const r = await fetch(`${url}/v1/streams/orders/records`, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' },
    body: new Uint8Array([0x7b, 0xff, 0xfe, 0x00, 0x7d]) });
  if (!r.ok) throw new Error(`raw ingest: ${r.status} ${await r.text()}`);
}

async function caughtUp() {
  for (let i = 0; i < 300; i++) {
    const health = await (await fetch(`${url}/healthz`)).json();
    if (health.pending.orders === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the host did not catch up');
}

/** Events of order o-7 whose lineage names chaos@2, read page by page from the lake. */
async function fixedO7Events() {
  let after = null;
  let n = 0;
  for (let pages = 0; pages < 100; pages++) {
    const q = new URLSearchParams({ limit: '1000' });
    if (after) q.set('after', after);
    const page = await (await fetch(`${url}/v1/lake/orders/events?${q}`, { headers: headers(reader) })).json();
    n += page.rows.filter((e) => e.fields?.order_id === 'o-7' && String(e.lineage).includes('chaos@2')).length;
    if (!page.more) return n;
    after = page.next;
  }
  throw new Error('too many pages');
}

const browser = await chromium.launch({ executablePath: env('CHROMIUM'), args: ['--no-sandbox'], headless: true });
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('Failed to load resource')) errors.push(`console: ${m.text()}`);
  });
  const shot = async (name) => {
    // Nothing stray rendered at the top level of the page (a null, an undefined).
    const stray = await page.evaluate(() => [...document.querySelector('main').childNodes]
      .filter((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim()).map((n) => n.textContent));
    assert.deepEqual(stray, [], `stray text on ${name}`);
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
    step(`screenshot ${name}.png`);
  };

  step('log in with the admin token');
  await page.goto(`${url}/console/`);
  await page.getByLabel('Token').fill('not-a-token');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText('the token is not valid').waitFor();
  await shot('login-refused');
  await page.getByLabel('Token').fill(admin);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Stream orders' }).waitFor();

  step('the graph fills with live rates');
  await page.locator('[data-plugin="chaos"]', { hasText: 'chaos@1.0.0' }).waitFor();
  await page.locator('.edge .rate', { hasText: /^[1-9][0-9.]* rec\/s$/ }).first().waitFor({ timeout: 30000 });
  await page.locator('.edge .rate', { hasText: /^[1-9][0-9.]* ev\/s$/ }).first().waitFor({ timeout: 30000 });
  await page.locator('[data-sink="lake"]', { hasText: /commits\/s/ }).first().waitFor();
  // The layout does not move while the figures change.
  const box = await page.locator('[data-plugin="restaurant-enricher"]').boundingBox();
  await page.waitForTimeout(2500);
  assert.deepEqual(await page.locator('[data-plugin="restaurant-enricher"]').boundingBox(), box, 'the graph keeps its layout between refreshes');
  await shot('graph');

  step('upload chaos@2: a refused upload shows the API reason, a good one is stored');
  await page.getByRole('link', { name: 'Plugins' }).click();
  await page.getByRole('link', { name: 'chaos' }).click();
  await page.getByRole('heading', { name: /Plugin chaos/ }).waitFor();
  const junk = join(shots, 'not-a-component.wasm');
  writeFileSync(junk, 'this is not a WebAssembly component');
  await page.setInputFiles('#upload-file', junk);
  await page.fill('#upload-version', '3');
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.locator('[data-testid="upload-result"]', { hasText: /refused: .*\(4\d\d [a-z_]+\)/ }).waitFor();
  // The good one by drag and drop: a drop event carrying the file, as a desktop drag makes.
  const wasm = readFileSync(env('CHAOS_WASM')).toString('base64');
  const dataTransfer = await page.evaluateHandle((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], 'misbehaving_enricher.wasm', { type: 'application/wasm' }));
    return transfer;
  }, wasm);
  await page.dispatchEvent('[data-testid="drop"]', 'dragover', { dataTransfer });
  await page.dispatchEvent('[data-testid="drop"]', 'drop', { dataTransfer });
  await page.locator('[data-testid="drop"]', { hasText: 'misbehaving_enricher.wasm (' }).waitFor();
  await page.fill('#upload-version', '2');
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.locator('[data-testid="upload-result"]', { hasText: 'uploaded chaos@2 (enricher' }).waitFor();
  await page.locator('tr[data-version="2"]').waitFor();
  await page.selectOption('#target-version', '2');
  await page.getByRole('button', { name: 'Set configuration' }).click();
  await page.locator('[data-testid="version-result"]', { hasText: 'chaos@2 runs with no keys' }).waitFor();
  step('fixtures: a wrong expectation is refused with the API reason, the right one attached');
  await page.setInputFiles('#fixtures-input', env('FIXTURES_INPUT'));
  await page.setInputFiles('#fixtures-expected', env('FIXTURES_WRONG'));
  await page.getByRole('button', { name: 'Run and attach fixtures' }).click();
  await page.locator('[data-testid="version-result"]', { hasText: /does not pass its fixtures[\s\S]*\(422 fixtures_failed\)/ }).waitFor();
  await page.setInputFiles('#fixtures-expected', env('FIXTURES_EXPECTED'));
  await page.getByRole('button', { name: 'Run and attach fixtures' }).click();
  await page.locator('[data-testid="version-result"]', { hasText: 'fixtures pass: attached to chaos@2' }).waitFor();
  await shot('plugin-uploaded');

  step('a 10% canary, set with the keyboard');
  await page.locator('#canary-percent').focus();
  await page.keyboard.press('Home');
  for (let i = 0; i < 10; i++) await page.keyboard.press('ArrowRight');
  assert.equal(await page.locator('#canary-out').textContent(), '10%');
  await page.locator('tr[data-version="2"]').getByRole('button', { name: 'Canary' }).click();
  await page.locator('[data-testid="candidate"]', { hasText: '2 is the canary on 10% of keys' }).waitFor();
  await shot('canary');

  step('abort, then a shadow whose differences show side by side');
  await page.getByRole('button', { name: 'Abort' }).click();
  await page.getByText('No candidate running.').waitFor();
  await page.locator('tr[data-version="2"]').getByRole('button', { name: 'Shadow' }).click();
  await page.locator('[data-testid="candidate"]', { hasText: '2 runs as a shadow' }).waitFor();
  const sample = page.locator('[data-testid="shadow-sample"]').first();
  await sample.waitFor({ timeout: 60000 });
  assert.equal(await sample.locator('pre').count(), 2, 'live and candidate side by side');
  assert.match(await sample.textContent(), /o-7/);
  await shot('shadow');

  step('promote, then roll back');
  await page.getByRole('button', { name: 'Promote' }).click();
  await page.locator('[data-testid="live"]', { hasText: /^2$/ }).waitFor();
  await page.getByRole('button', { name: 'Roll back' }).click();
  await page.locator('[data-testid="live"]', { hasText: /^1\.0\.0$/ }).waitFor();
  await shot('rolled-back');

  step('the fix goes live; the sender stops; a dead letter of chaos@1.0.0 is found and replayed');
  await page.locator('tr[data-version="2"]').getByRole('button', { name: 'Activate' }).click();
  await page.locator('[data-testid="live"]', { hasText: /^2$/ }).waitFor();
  sending = false;
  clearInterval(sender);
  await Promise.all([...inFlight]);
  await caughtUp();
  const before = await fixedO7Events();
  await page.getByRole('link', { name: 'Dead letters' }).click();
  await page.fill('#dl-plugin', 'chaos@1.0.0');
  await page.getByRole('button', { name: 'Filter' }).click();
  const first = page.locator('tbody tr[data-id]').first();
  await first.waitFor();
  await first.getByRole('button').click();
  await page.locator('[data-testid="original-text"]', { hasText: '"o-7"' }).waitFor();
  assert.match(await page.locator('[data-testid="original-hex"]').textContent(), /^000000  7b 22/);
  await first.getByRole('checkbox').check();
  await page.getByRole('button', { name: 'Replay selected' }).click();
  await page.locator('[data-testid="dl-status"]', { hasText: 'replayed 1 of 1 into orders' }).waitFor();
  await shot('dead-letters');
  step('a record that is not UTF-8 shows as bytes');
  await page.fill('#dl-plugin', 'orders-parser');
  await page.getByRole('button', { name: 'Filter' }).click();
  const raw = page.locator('tbody tr[data-id]', { hasText: /UTF-8|utf-8/ }).first();
  await raw.waitFor();
  await raw.getByRole('button').click();
  await page.locator('[data-testid="original-text"]', { hasText: 'not UTF-8' }).waitFor();
  assert.match(await page.locator('[data-testid="original-hex"]').textContent(), /^000000  7b ff fe 00 7d /);
  await shot('dead-letter-bytes');
  await caughtUp();
  let after = before;
  for (let i = 0; i < 50 && after === before; i++) {
    await new Promise((r) => setTimeout(r, 200));
    after = await fixedO7Events();
  }
  assert.equal(after, before + 1, 'the replayed dead letter became one event through chaos@2');

  step('metrics charts and the audit log');
  await page.getByRole('link', { name: 'Metrics' }).click();
  await page.locator('[data-testid="chart"]').nth(3).waitFor();
  const throughput = page.locator('[data-testid="chart"]').first().locator('polyline[data-series="orders ingested"]');
  const points = (await throughput.getAttribute('points')).split(' ').filter((p) => /^[\d.]+,[\d.]+$/.test(p));
  assert.ok(points.length >= 2, `the throughput line has points: ${points}`);
  await page.locator('polyline[data-series="chaos@1.0.0 trap"]').waitFor({ state: 'attached' });
  await shot('metrics');
  await page.getByRole('link', { name: 'Audit log' }).click();
  for (const action of ['upload', 'canary', 'abort', 'shadow', 'promote', 'rollback', 'activate', 'replay']) {
    await page.locator('[data-testid="audit"] td', { hasText: new RegExp(`^${action}`) }).first().waitFor();
  }
  await shot('audit');

  step('a read token, logged in with the keyboard, sees everything and cannot act');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByLabel('Token').focus();
  await page.keyboard.type(reader);
  await page.keyboard.press('Enter');
  // Back on the page the session was on, with the read token.
  await page.getByRole('heading', { name: 'Audit log' }).waitFor();
  await page.getByRole('link', { name: 'Pipeline' }).click();
  await page.getByRole('heading', { name: 'Stream orders' }).waitFor();
  await page.locator('[data-plugin="chaos"]', { hasText: 'chaos@2' }).waitFor();
  await page.goto(`${url}/console/#/plugin/chaos`);
  await page.locator('[data-testid="read-only"]').waitFor();
  for (const name of ['Upload', 'Roll back', 'Set configuration']) {
    assert.ok(await page.getByRole('button', { name }).first().isDisabled(), `${name} is disabled for a read token`);
  }
  assert.ok(await page.locator('tr[data-version="2"]').getByRole('button', { name: 'Activate' }).isDisabled());
  const refused = await page.evaluate(async (token) => {
    const r = await fetch('/v1/deployments/chaos/rollback', { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: '{}' });
    return r.status;
  }, reader);
  assert.equal(refused, 403, 'the host refuses the read token whatever the page shows');
  await shot('read-only');
  await page.getByRole('link', { name: 'Dead letters' }).click();
  const row = page.locator('tbody tr[data-id]').first();
  await row.waitFor();
  await row.getByRole('checkbox').check();
  assert.ok(await page.getByRole('button', { name: 'Replay selected' }).isDisabled(), 'a read token cannot replay, even with a row selected');

  assert.deepEqual(errors, [], 'no script errors');
  console.log(`console test passed; screenshots in ${shots}`);
} catch (err) {
  // What the page showed when it failed.
  const pages = browser.contexts().flatMap((c) => c.pages());
  for (const p of pages) console.error(`page ${p.url()}:\n${await p.locator('main').textContent().catch(() => '?')}`);
  throw err;
} finally {
  sending = false;
  clearInterval(sender);
  await browser.close();
}
