// The web console in Debian's Chromium, driven by puppeteer-core (which
// downloads no browser) against the vpoold that test-console.sh started.
// Prints "ok DESC" / "not ok DESC" lines and "# detail" lines; the shell
// numbers them as TAP.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import puppeteer from 'puppeteer-core';

const require = createRequire(import.meta.url);
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const BASE = env('VPOOL_BASE'), POOL = env('VPOOL_POOL'), FROM = env('VPOOL_FROM'), TO = env('VPOOL_TO');
const SHOTS = env('VPOOL_SHOTS'), PROFILE = env('VPOOL_PROFILE');
const SIZES = { desktop: { width: 1366, height: 768 }, phone: { width: 390, height: 844 } };

let failed = 0;
const ok = (desc) => console.log(`ok ${desc}`);
const notOk = (desc, ...detail) => {
  failed++;
  console.log(`not ok ${desc}`);
  for (const d of detail) for (const l of String(d).split('\n')) console.log(`# ${l}`);
};
const check = (desc, cond, ...detail) => (cond ? ok(desc) : notOk(desc, ...detail));

const browser = await puppeteer.launch({
  executablePath: env('VPOOL_CHROMIUM'),
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
});
const page = await browser.newPage();
const consoleErrors = [];
// A refusal the test asks for is logged by Chromium as a failed load: not
// a script error.
page.on('console', (m) => {
  if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) consoleErrors.push(m.text());
});
page.on('pageerror', (e) => consoleErrors.push(String(e)));

const text = (sel) => page.$eval(sel, (el) => el.innerText).catch(() => '');
const waitText = async (sel, re, timeout = 30000) => {
  await page.waitForFunction((s, src) => {
    const el = document.querySelector(s);
    return el && new RegExp(src).test(el.innerText);
  }, { timeout }, sel, re.source);
};
const go = async (hash, heading) => {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForFunction((h) => document.querySelector('main h1')?.textContent.startsWith(h), { timeout: 30000 },
                             heading);
};

// axe-core on the view shown: no serious or critical violation.
async function axe(name) {
  await page.evaluate(axeSource);
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(`axe-core: no serious or critical violation on ${name}`, bad.length === 0,
        ...bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.join(', ')})`));
}

// The view at both sizes, saved as PNG; the phone's must not scroll sideways.
async function shots(name) {
  for (const [size, vp] of Object.entries(SIZES)) {
    await page.setViewport(vp);
    await new Promise((r) => setTimeout(r, 150));
    await page.screenshot({ path: path.join(SHOTS, `${name}-${size}.png`), fullPage: size === 'phone' });
    if (size === 'phone') {
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      check(`${name} fits a 390 px wide phone (page ${wide} px wide)`, wide <= 392);
    }
  }
  await page.setViewport(SIZES.desktop);
}

async function signIn(token) {
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(`${BASE}/`, { waitUntil: 'load' });
  await page.waitForSelector('#token');
  await page.type('#token', token);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Estate', { timeout: 30000 });
}

async function buttons() {
  return page.$$eval('main button, main a[href^="#/move/"]', (els) => els.map((e) => e.textContent.trim()));
}

try {
  // --- sign-in ---
  await page.setViewport(SIZES.desktop);
  await page.goto(`${BASE}/`, { waitUntil: 'load' });
  await page.waitForSelector('#token');
  check('the sign-in page asks for a token', (await text('main h1')) === 'vpool console');
  await axe('the sign-in page');
  await shots('signin');
  await page.type('#token', 'vpt_not-a-real-token');
  await page.click('#sign-in');
  await page.waitForSelector('#message[role="alert"]');
  const refusedSignIn = await text('#message');
  check('a bad token is refused with the API\'s message', /token/i.test(refusedSignIn), refusedSignIn);

  await signIn(env('VPOOL_OP_TOKEN'));
  ok('an operator signs in with a token');
  check('the header names the token and its role', /console-op \(operator\)/.test(await text('#who')), await text('#who'));
  const stored = await page.evaluate(() => ({ s: sessionStorage.getItem('vpool.token'), c: document.cookie }));
  check('the token is in sessionStorage, no cookie', stored.s && stored.c === '', JSON.stringify(stored));

  // --- estate ---
  const t0 = Date.now();
  await page.waitForSelector('#estate-pools');
  const estate = await text('main');
  check('the estate shows both envs', estate.includes(FROM) && estate.includes(TO));
  check('the estate shows the pool with its VMs by state', /w1[\s\S]*shut off\s*2/.test(estate), estate.slice(0, 800));
  check('hosts show reachability and CPU/memory bars in words',
        /reachable/.test(estate) && /vCPUs \d+\/\d+/.test(estate) && /MiB used \d+\/\d+/.test(estate));
  check('the estate has meters for CPU and memory', (await page.$$('main meter')).length >= 4);
  console.log(`# estate rendered in ${Date.now() - t0} ms after sign-in`);
  await axe('the estate');
  await shots('estate');

  // Keyboard: Tab reaches the first link of the navigation.
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement?.textContent);
  check('the keyboard reaches the page\'s links (Tab: skip link first)', /Skip to content|Estate/.test(focused), focused);

  // --- pool ---
  await go(`#/pool/${POOL}`, `Pool ${POOL}`);
  const poolText = await text('main');
  check('the pool view lists its VMs with state, env, host, generation, owner',
        /w1-001/.test(poolText) && /shut off/.test(poolText) && /vm:w1-001/.test(poolText) && poolText.includes(FROM));
  check('an operator has start and stop buttons', (await buttons()).includes('Start pool'));
  await axe('the pool view');
  await shots('pool');

  // --- move wizard ---
  await go(`#/move/${POOL}`, `Move pool ${POOL}`);
  await page.select('#move-env', TO);
  await page.select('#move-profile', PROFILE);
  await page.click('#move-plan');
  await page.waitForSelector('#plan', { timeout: 60000 });
  const plan = await text('#plan');
  check('the dry run shows every hardware difference', /machine: pc -> q35/.test(plan) && /disk bus: ide -> virtio/.test(plan),
        plan.slice(0, 400));
  check('the dry run shows memory needed and free per target host', /Memory needed/.test(plan) && /Memory free/.test(plan) && plan.includes(TO));
  check('the dry run lists each VM and where it goes', /w1-001/.test(plan) && /w1-002/.test(plan));
  await axe('the move wizard\'s plan');
  await shots('move-plan');
  // What the page shows of the migration, each time it changes: the
  // stream's events redraw it, with no reload and no polling.
  await page.evaluate(() => {
    window.__seen = { steps: new Set(), states: new Set() };
    new MutationObserver(() => {
      document.querySelectorAll('main td[data-label="Step"]').forEach((td) => window.__seen.steps.add(td.innerText.trim()));
      const st = document.getElementById('migration-state');
      if (st) window.__seen.states.add(st.innerText.trim());
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await page.click('#move-confirm');
  await page.waitForFunction(() => /^Migration \d+/.test(document.querySelector('main h1')?.textContent ?? ''), { timeout: 60000 });
  ok('confirming starts the migration and shows it');
  try {
    await waitText('#migration-state', /done/, 600000);
    ok('the migration reaches done in the page, from the event stream');
  } catch {
    notOk('the migration reaches done in the page', await text('main'));
  }
  const seen = await page.evaluate(() => ({ steps: [...window.__seen.steps], states: [...window.__seen.states] }));
  console.log(`# steps shown: ${seen.steps.join(', ')}; states shown: ${seen.states.join(' | ').replace(/\s+/g, ' ')}`);
  check('the page followed the migration live (its state redrawn before done)', seen.states.length >= 2,
        seen.states.join(' | '));
  await axe('the migration view');
  await shots('migration');

  // A move that the API refuses shows its message.
  await go(`#/move/${POOL}`, `Move pool ${POOL}`);
  await page.select('#move-env', TO);
  await page.select('#move-profile', PROFILE);
  await page.click('#move-plan');
  await page.waitForSelector('#message[role="alert"]', { timeout: 30000 });
  const refused = await text('#message');
  check('a refused move shows the API\'s message', /already runs on env/.test(refused), refused);

  // --- host ---
  await go(`#/host/${TO}/${TO}`, `Host ${TO}`);
  check('the host view offers a drain to an operator', (await buttons()).includes('Drain…'));
  await page.click('#host-drain');
  await page.waitForSelector('#drain-confirm');
  const drain = await text('#host-out');
  check('the drain plan lists the VMs that would move', /w1-001/.test(drain) && /w1-002/.test(drain), drain.slice(0, 300));
  await axe('the host view with its drain plan');
  await shots('host');

  // --- history ---
  await go(`#/history?pool=${POOL}&via=api`, 'History');
  const hist = await text('main');
  check('the history, filtered by pool and via, names the operator\'s move', /console-op \(api\)/.test(hist) && /migration/.test(hist), hist.slice(0, 500));
  await axe('the history');
  await shots('history');

  // --- a viewer ---
  await page.click('#sign-out');
  await page.waitForSelector('#token');
  await signIn(env('VPOOL_VIEWER_TOKEN'));
  check('a viewer sees the estate', (await text('main')).includes(POOL));
  const views = [['#/', 'Estate'], [`#/pool/${POOL}`, `Pool ${POOL}`], [`#/host/${TO}/${TO}`, `Host ${TO}`]];
  for (const [hash, heading] of views) {
    await go(hash, heading);
    const b = await buttons();
    check(`a viewer sees no action button on ${heading}`, b.length === 0, b.join(', '));
  }
  await shots('viewer-pool');

  check('no script error in the page', consoleErrors.length === 0, ...consoleErrors);
} catch (e) {
  notOk('the browser script ran to its end', e.stack || e);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
