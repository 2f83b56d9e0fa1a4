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
// Migrations the command line left interrupted (to resume) and partial (to abort).
const RESUME = env('VPOOL_RESUME_ID'), ABORT = env('VPOOL_ABORT_ID');
// The process that holds the disk of the partial migration's failed VM.
const LOCKER = Number(env('VPOOL_LOCKER'));
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
// The view HASH names, once drawn: its heading starts with HEADING, and it
// is not the heading of the view before (which may start the same way).
const go = async (hash, heading) => {
  await page.evaluate((h) => {
    const old = document.querySelector('main h1');
    if (old) old.dataset.stale = 'yes';
    location.hash = h;
  }, hash);
  await page.waitForFunction((h) => {
    const el = document.querySelector('main h1');
    return el && !el.dataset.stale && el.textContent.startsWith(h);
  }, { timeout: 30000 }, heading);
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
      // Nor does a table scroll sideways in its frame (a long value wraps).
      const cut = await page.$$eval('main .table-wrap', (els) => els.filter((e) => e.scrollWidth > e.clientWidth + 1)
        .map((e) => `${e.querySelector('caption')?.textContent}: ${e.scrollWidth} px in ${e.clientWidth}`));
      check(`${name}: every table's content fits the phone's width`, cut.length === 0, ...cut);
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
  return page.$$eval('main button, main a[href^="#/move/"], main a[href$="/abort"]',
                     (els) => els.map((e) => e.textContent.trim()));
}

// What the page shows of a migration, each time it changes: the stream's
// events redraw it, with no reload and no polling.
async function watchMigration() {
  await page.evaluate(() => {
    window.__seen = { steps: new Set(), states: new Set() };
    new MutationObserver(() => {
      document.querySelectorAll('main td[data-label="Step"]').forEach((td) => window.__seen.steps.add(td.innerText.trim()));
      const st = document.getElementById('migration-state');
      if (st) window.__seen.states.add(st.innerText.trim());
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
}
const seenOfMigration = () => page.evaluate(() => ({ steps: [...window.__seen.steps], states: [...window.__seen.states] }));
const focusedId = () => page.evaluate(() => document.activeElement?.id ?? '');

// A viewer sees every view and no button that would be refused: none on
// the migrations left unfinished either, nor their abort's confirmation.
async function viewerChecks() {
  await page.click('#sign-out');
  await page.waitForSelector('#token');
  await signIn(env('VPOOL_VIEWER_TOKEN'));
  check('a viewer sees the estate', (await text('main')).includes(POOL));
  const views = [['#/', 'Estate'], [`#/pool/${POOL}`, `Pool ${POOL}`], [`#/host/${TO}/${TO}`, `Host ${TO}`],
                 [`#/migration/${RESUME}`, `Migration ${RESUME}`], [`#/migration/${ABORT}`, `Migration ${ABORT}`],
                 [`#/migration/${ABORT}/abort`, `Migration ${ABORT}`]];
  for (const [hash, heading] of views) {
    await go(hash, heading);
    const b = await buttons();
    check(`a viewer sees no action button on ${hash.slice(2) || 'the estate'}`, b.length === 0, b.join(', '));
  }
  check('a viewer is shown no abort to confirm', (await page.$('#abort-plan')) === null);
  const said = await text('#migration-summary');
  check('a viewer is told in words that the migration ended partial and an operator may act',
        /^Ended partial: .*An operator may resume it or abort it\.$/.test(said), said);
  await shots('viewer-migration-partial');
  await go(`#/pool/${POOL}`, `Pool ${POOL}`);
  await shots('viewer-pool');
}

// The migration the command line left interrupted: the page says so in
// words, Resume is reached and pressed with the keyboard, and the page
// follows it to done.
async function resumeFromPage() {
  await go(`#/migration/${RESUME}`, `Migration ${RESUME}`);
  const said = await text('#migration-summary');
  check('the interrupted migration says so in words, with what Resume and Abort would do',
        /^Interrupted: .*0 of 2 VMs moved to /.test(said) && /Resume goes on from its journal/.test(said) &&
        /\binterrupted\b/.test(await text('#migration-state')), said);
  await axe('the interrupted migration');
  await shots('migration-interrupted');
  await watchMigration();
  await page.focus('#migration-summary');
  await page.keyboard.press('Tab');
  check('Tab from the summary reaches Resume', (await focusedId()) === 'migration-resume', await focusedId());
  await page.keyboard.press('Enter');
  try {
    await waitText('#migration-state', /done/, 600000);
    ok('Resume pressed from the keyboard: the migration reaches done in the page, from the event stream');
  } catch {
    notOk('Resume pressed: the migration reaches done in the page', await text('main'));
  }
  const seen = await seenOfMigration();
  console.log(`# steps shown: ${seen.steps.join(', ')}; states shown: ${seen.states.join(' | ').replace(/\s+/g, ' ')}`);
  check('the page followed the resumed migration live (running, then done)',
        seen.states.some((x) => /running/.test(x)) && seen.states.some((x) => /done/.test(x)), seen.states.join(' | '));
  check('the page says the resumed migration is done in words', /^Done: 2 of 2 VMs moved to /.test(await text('#migration-summary')),
        await text('#migration-summary'));
  check('the message line names the resume\'s job', new RegExp(`resume migration ${RESUME}: job \\d+`).test(await text('#message')),
        await text('#message'));
  check('with its button gone, the keyboard\'s focus is on the summary, not lost',
        (await focusedId()) === 'migration-summary', await focusedId());
  check('the resumed migration offers no action any more', (await buttons()).length === 0, (await buttons()).join(', '));
}

// The migration the command line left partial: its error shown as text
// (markup in it too); a resume while the disk is still held fails with the
// API's words and leaves it partial; then, the holder gone, the abort's
// confirmation saying which VMs go back, reached from the estate's link,
// confirmed.
async function abortFromPage() {
  await go(`#/migration/${ABORT}`, `Migration ${ABORT}`);
  const said = await text('#migration-summary');
  check('the partial migration says so in words: what moved, what failed, what Resume and Abort would do',
        /^Ended partial: 1 of 2 VMs moved to .*; 1 failed, the Error column says why\. /.test(said) &&
        /Resume retries it once the cause is gone; Abort gives every VM not yet handed over back to /.test(said) &&
        /leaves the 1 VM on .* there\.$/.test(said) && /\bpartial\b/.test(await text('#migration-state')), said);
  const err = await page.$$eval('main td[data-label="Error"]', (tds) => tds.map((td) => td.textContent));
  check('the failed VM\'s error is shown as the API gave it, markup as text',
        err.some((e) => /is still locked by pid \d+ \(python3, guest <img src=x onerror="window.__xss=1">\)/.test(e)),
        err.join(' | '));
  const injected = await page.evaluate(() => ({ imgs: document.querySelectorAll('main img').length, xss: window.__xss ?? null }));
  check('no element came of that markup, nothing of it ran', injected.imgs === 0 && injected.xss === null, JSON.stringify(injected));
  await axe('the partial migration');
  await shots('migration-partial');

  await page.click('#migration-resume');
  await waitText('#message', new RegExp(`resume migration ${ABORT}: job \\d+ failed`));
  const failedResume = await text('#message');
  check('a resume while the disk is held fails, the page saying so with the API\'s words',
        new RegExp(`failed: migration ${ABORT} partial: 1 of 2 VMs moved`).test(failedResume) &&
        (await page.$eval('#message', (el) => el.getAttribute('role'))) === 'alert', failedResume);
  await page.waitForFunction(() => {
    const b = document.getElementById('migration-resume');
    return b && b.getAttribute('aria-disabled') !== 'true';
  }, { timeout: 30000 });
  check('the migration stays partial and Resume is offered again', /^Ended partial: 1 of 2/.test(await text('#migration-summary')),
        await text('#migration-summary'));
  const again = await page.$$eval('main td[data-label="Error"]', (tds) => tds.map((td) => td.textContent));
  check('its Error column names the holder again, as text', again.some((e) => /guest <img src=x onerror=/.test(e)) &&
        (await page.$$('main img')).length === 0, again.join(' | '));
  process.kill(LOCKER);
  ok('the process holding the disk ends');

  await page.click('#migration-abort');
  await page.waitForSelector('#abort-confirm');
  check('Abort… opens its confirmation with the focus on Confirm', (await focusedId()) === 'abort-confirm', await focusedId());
  const plan = await text('#abort-plan');
  check('the confirmation says which VM goes back and which stays',
        /1 VM goes back to .*; 1 VM handed over stays on /.test(plan) && /w3-002[^\n]*\n?[^\n]*goes back/.test(plan) &&
        /w3-001[^\n]*\n?[^\n]*stays/.test(plan), plan);
  await axe('the abort\'s confirmation');
  await shots('migration-abort');
  await page.click('#abort-cancel');
  await page.waitForFunction(() => !document.getElementById('abort-plan'));
  check('Cancel closes it and gives the focus back to Abort…', (await focusedId()) === 'migration-abort', await focusedId());
  const st = await page.evaluate(async (id) => (await (await fetch(`/v1/migrations/${id}`, {
    headers: { Authorization: `Bearer ${sessionStorage.getItem('vpool.token')}` } })).json()).state, ABORT);
  check('nothing was aborted by opening and cancelling', st === 'partial', st);

  // The estate's link opens the same confirmation.
  await go('#/', 'Estate');
  await page.click(`#migrations a[aria-label="Abort migration ${ABORT}…"]`);
  await page.waitForSelector('#abort-confirm');
  check('the estate\'s Abort… opens the migration with its confirmation, focus on Confirm',
        (await focusedId()) === 'abort-confirm' && (await text('main h1')).startsWith(`Migration ${ABORT}`), await focusedId());
  await watchMigration();
  await page.click('#abort-confirm');
  try {
    await waitText('#migration-state', /aborted/, 300000);
    ok('Confirm: the migration reaches aborted in the page, from the event stream');
  } catch {
    notOk('Confirm: the migration reaches aborted in the page', await text('main'));
  }
  const after = await text('#migration-summary');
  check('the page says in words where the VMs are now',
        /^Aborted: 1 of 2 VMs given back to .*; 1 VM handed over before the abort stays on .*\.$/.test(after), after);
  check('the address no longer names the abort', (await page.evaluate(() => location.hash)) === `#/migration/${ABORT}`,
        await page.evaluate(() => location.hash));
  check('the aborted migration offers no action any more', (await buttons()).length === 0, (await buttons()).join(', '));
  await shots('migration-aborted');
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
  await watchMigration();
  await page.click('#move-confirm');
  await page.waitForFunction(() => /^Migration \d+/.test(document.querySelector('main h1')?.textContent ?? ''), { timeout: 60000 });
  ok('confirming starts the migration and shows it');
  try {
    await waitText('#migration-state', /done/, 600000);
    ok('the migration reaches done in the page, from the event stream');
  } catch {
    notOk('the migration reaches done in the page', await text('main'));
  }
  const seen = await seenOfMigration();
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

  // --- the migrations the command line left unfinished, in the estate ---
  await go('#/', 'Estate');
  const migs = await text('#migrations');
  check('the estate lists the interrupted and the partial migration, their states in words',
        new RegExp(`${RESUME}\\s+w2[^\\n]*\\n?[^\\n]*interrupted`).test(migs) &&
        new RegExp(`${ABORT}\\s+w3[^\\n]*\\n?[^\\n]*partial`).test(migs), migs);
  const labels = await page.$$eval('#migrations [aria-label]', (els) => els.map((e) => e.getAttribute('aria-label')));
  const w2Action = await page.$$eval('#estate-pools tbody tr', (trs) => trs.filter((tr) => tr.cells[0].textContent === 'w2')
    .map((tr) => [tr.cells[tr.cells.length - 1].textContent, tr.querySelector('a[href^="#/move/"]') !== null]));
  check('a pool whose migration is not over links to that migration instead of offering a move',
        JSON.stringify(w2Action) === JSON.stringify([[`Migration ${RESUME} (interrupted)`, false]]), JSON.stringify(w2Action));
  check('an operator is offered Resume and Abort for each, named by migration',
        [RESUME, ABORT].every((id) => labels.includes(`Resume migration ${id}`) && labels.includes(`Abort migration ${id}…`)),
        labels.join(', '));

  await viewerChecks();
  await signIn(env('VPOOL_OP_TOKEN'));
  await resumeFromPage();
  await abortFromPage();

  check('no script error in the page', consoleErrors.length === 0, ...consoleErrors);
} catch (e) {
  notOk('the browser script ran to its end', e.stack || e);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
