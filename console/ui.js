// Building the page: every value goes in as text (textContent), never as
// markup, so nothing the API returns can become HTML.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// A state shown by an icon and its word (never by colour alone).
const ICONS = {
  running: '▶', 'shut off': '■', paused: '⏸', undefined: '∅', unreachable: '⚠', unknown: '?', crashed: '✖',
  done: '✔', partial: '◐', interrupted: '⚠', aborted: '✖', failed: '✖', active: '●', migrating: '⇄',
  creating: '…', queued: '…', reachable: '✔', maintenance: '🔧', returned: '↩',
};
export function badge(state) {
  const s = state ?? 'unknown';
  return h('span', { class: `badge st-${String(s).replace(/[^a-z]+/g, '-')}` },
    h('span', { 'aria-hidden': 'true' }, ICONS[s] ?? '•'), ' ', s);
}

// A quantity as a meter with its figures in words beside it.
export function bar(label, value, max, unit) {
  const v = Math.max(0, Number(value) || 0), m = Math.max(1, Number(max) || 1);
  const pct = Math.round((100 * v) / m);
  return h('span', { class: 'bar' },
    h('meter', { min: 0, max: m, value: Math.min(v, m), high: m * 0.85, 'aria-label': label }),
    h('span', { class: 'bar-text' }, `${label} ${v}/${m}${unit ? ' ' + unit : ''} (${pct}%)`));
}

// A table: COLS [{title, cell(row) -> node|text}], one row per item.
export function table(caption, cols, rows, empty) {
  if (!rows.length) return h('p', { class: 'empty' }, empty || 'none');
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c.title)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => h('td', { 'data-label': c.title }, c.cell(r))))))));
}

export const link = (href, text) => h('a', { href }, text);

// The message line: errors are announced (role=alert), the rest politely.
export function say(text, kind) {
  const el = document.getElementById('message');
  if (!el) return;
  el.replaceChildren();
  if (!text) { el.hidden = true; return; }
  el.hidden = false;
  el.className = kind === 'error' ? 'msg error' : 'msg info';
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  el.append(h('span', { 'aria-hidden': 'true' }, kind === 'error' ? '✖ ' : 'ℹ '), text);
}

export const mib = (kib) => (kib === null || kib === undefined ? null : Math.round(kib / 1024));
