// The console's shell: sign-in, navigation by the URL's fragment, and the
// one event stream every view listens to.
import { token, get, follow, ApiError } from './api.js';
import { h, say } from './ui.js';
import * as views from './views.js';

const app = { role: null, you: null, jobs: new Map(), listener: null, stop: null };

function shell() {
  const nav = h('nav', { 'aria-label': 'Main' }, h('ul', {},
    h('li', {}, h('a', { href: '#/' }, 'Estate')),
    h('li', {}, h('a', { href: '#/history' }, 'History'))));
  const who = h('p', { id: 'who' }, `${app.you} (${app.role})`, ' ',
    h('span', { id: 'live', role: 'status' }, ''), ' ',
    h('button', { type: 'button', id: 'sign-out', onclick: signOut }, 'Sign out'));
  document.body.replaceChildren(
    h('a', { href: '#main', class: 'skip' }, 'Skip to content'),
    h('header', {}, h('p', { class: 'brand' }, 'vpool'), nav, who),
    h('div', { id: 'message', hidden: true }),
    h('main', { id: 'main', tabindex: '-1' }));
}

function signInPage(problem) {
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true,
                             spellcheck: 'false' });
  document.body.replaceChildren(
    h('main', { id: 'main', class: 'signin' },
      h('h1', {}, 'vpool console'),
      h('div', { id: 'message', hidden: true }),
      h('form', { class: 'form', onsubmit: (ev) => { ev.preventDefault(); token.set(input.value.trim()); start(); } },
        h('label', { for: 'token' }, 'API token (vpool token add NAME --role ROLE)'), input,
        h('button', { type: 'submit', id: 'sign-in' }, 'Sign in')),
      h('p', { class: 'note' }, 'The token stays in this tab only and is sent to this server alone.')));
  if (problem) say(problem, 'error');
  input.focus();
}

function signOut() {
  token.clear();
  if (app.stop) app.stop();
  app.stop = null;
  signInPage();
}

// The view the fragment names: #/, #/pool/P, #/move/P, #/host/ENV/HOST,
// #/migration/ID (#/migration/ID/abort: its abort to confirm), #/history?pool=P.
async function route() {
  const main = document.getElementById('main');
  if (!main || !app.role) return;
  const [path, query] = location.hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  app.listener = null;
  say(null);
  try {
    let fn;
    switch (parts[0]) {
      case 'pool': fn = await views.pool(app, main, parts[1]); break;
      case 'move': fn = await views.move(app, main, parts[1]); break;
      case 'host': fn = await views.host(app, main, parts[1], parts[2]); break;
      case 'migration': fn = await views.migration(app, main, parts[1], parts[2] === 'abort'); break;
      case 'history': fn = await views.history(app, main, query ?? ''); break;
      default: fn = await views.estate(app, main);
    }
    app.listener = fn;
    document.title = `${main.querySelector('h1')?.textContent ?? 'vpool'} · vpool`;
    main.setAttribute('aria-busy', 'false');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return signInPage(e.message);
    main.replaceChildren(h('h1', {}, 'Not shown'));
    say(e.message, 'error');
  }
}

function onEvent(ev) {
  if (ev.kind === 'job' && app.jobs.has(ev.subject)) {
    const what = app.jobs.get(ev.subject);
    if (ev.state === 'failed') say(`${what}: job ${ev.subject} failed: ${ev.detail ?? ''}`, 'error');
    else say(`${what}: job ${ev.subject} ${ev.state}`);
  }
  if (app.listener) app.listener(ev);
}

async function start() {
  if (!token.get()) return signInPage();
  try {
    const idx = await get('/v1');
    app.role = idx.role;
    app.you = idx.you;
  } catch (e) {
    token.clear();
    return signInPage(e instanceof ApiError ? e.message : String(e));
  }
  shell();
  if (app.stop) app.stop();
  app.stop = follow(onEvent, (up) => {
    const live = document.getElementById('live');
    if (live) live.textContent = up ? '● live' : '○ reconnecting';
  });
  await route();
}

window.addEventListener('hashchange', route);
start();
