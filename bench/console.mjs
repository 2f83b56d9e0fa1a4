// The console's estate of VPOOL_VMS VMs in Debian's Chromium (puppeteer-core
// from tests/browser/): from the page's request to the pool table rendered
// with every VM counted, VPOOL_RUNS times after one warm-up; and GET
// /v1/estate alone, the API's share. Prints JSON.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/browser/package.json'));
const puppeteer = require('puppeteer-core');
const BASE = process.env.VPOOL_BASE, TOKEN = process.env.VPOOL_TOKEN;
const RUNS = Number(process.env.VPOOL_RUNS || 5), VMS = Number(process.env.VPOOL_VMS || 1000);
const median = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

const browser = await puppeteer.launch({ executablePath: process.env.VPOOL_CHROMIUM || '/usr/bin/chromium', headless: true,
                                         args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
const page = await browser.newPage();
await page.setViewport({ width: 1366, height: 768 });
await page.evaluateOnNewDocument((t) => sessionStorage.setItem('vpool.token', t), TOKEN);
const samples = [], api = [];
for (let i = 0; i <= RUNS; i++) {
  const t0 = Date.now();
  await page.goto(`${BASE}/`, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction((n) => {
    const t = document.querySelector('#estate-pools');
    return t && new RegExp(`\\b${n}\\b`).test(t.querySelector('td[data-label="VMs by state"]')?.innerText ?? '');
  }, { polling: 'mutation', timeout: 60000 }, VMS);
  const ms = Date.now() - t0;
  const a = await page.evaluate(async (t) => {
    const s = performance.now();
    await (await fetch('/v1/estate', { headers: { Authorization: `Bearer ${t}` } })).json();
    return performance.now() - s;
  }, TOKEN);
  if (i > 0) { samples.push(ms); api.push(a); }
}
await browser.close();
console.log(JSON.stringify({ vms: VMS, runs: RUNS, samples_ms: samples, median_ms: median(samples),
                             api_median_ms: median(api) }));
