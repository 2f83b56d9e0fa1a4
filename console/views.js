// The console's views. Each renders into MAIN from what the API answers
// and returns a function the event stream calls with each event.
import { get, post, ApiError } from './api.js';
import { h, badge, bar, table, link, say, mib } from './ui.js';

const enc = encodeURIComponent;
const ROLES = ['viewer', 'operator', 'admin'];
const can = (app, role) => ROLES.indexOf(app.role) >= ROLES.indexOf(role);

// Run a change: its 202 job is announced; job events tell how it ends.
async function change(app, path, body, what) {
  try {
    const job = await post(path, body);
    app.jobs.set(String(job.id), what);
    say(`${what}: job ${job.id} ${job.state}`);
    return job;
  } catch (e) {
    say(e instanceof ApiError ? `${what} refused: ${e.message}` : String(e), 'error');
    return null;
  }
}

function button(text, onclick, attrs) {
  return h('button', { type: 'button', onclick, ...attrs }, text);
}

// Coalesce bursts of events into one refresh.
function debounce(fn, ms) {
  let t = null;
  return () => { clearTimeout(t); t = setTimeout(fn, ms); };
}

// ---- estate ----

function hostRow(env) {
  return [
    { title: 'Host', cell: (x) => link(`#/host/${enc(env)}/${enc(x.name)}`, x.name) },
    { title: 'Reachable', cell: (x) => badge(x.reachable ? 'reachable' : 'unreachable') },
    { title: 'Maintenance', cell: (x) => (x.maintenance ? badge('maintenance') : 'in service') },
    { title: 'CPU', cell: (x) => (x.reachable ? bar('vCPUs', x.vcpus_running ?? 0, x.cpus) : 'not answering') },
    { title: 'Memory', cell: (x) => (x.reachable ? bar('MiB used', mib(x.memory_kib - x.memory_free_kib), mib(x.memory_kib))
                                                  : 'not answering') },
    { title: 'VMs', cell: (x) => String(x.vm_count ?? '?') },
  ];
}

function statesCell(p) {
  if (!p.vm_states.length) return 'no VM';
  return h('ul', { class: 'states' }, p.vm_states.map((s) => h('li', {}, badge(s.state), ` ${s.count}`)));
}

// An action of a button, sent once: the button says it is busy (and keeps
// the focus, as a disabled one would not) until the API has answered; it
// is offered again only when the change was refused.
function once(fn) {
  return async (ev) => {
    const b = ev.currentTarget;
    if (b.getAttribute('aria-disabled') === 'true') return;
    b.setAttribute('aria-disabled', 'true');
    const job = await fn();
    if (!job) b.removeAttribute('aria-disabled');
  };
}

const stuck = (m) => m.state === 'partial' || m.state === 'interrupted';

function resume(app, m, refresh) {
  return once(() => change(app, `/v1/migrations/${m.id}/resume`, {}, `resume migration ${m.id}`)
    .then((job) => { refresh(); return job; }));
}

// A migration's actions in a list of them: Resume at once, Abort through
// the migration's own page, where it says which VMs go back.
function migrationActions(app, m, refresh) {
  if (!can(app, 'operator') || !stuck(m)) return '';
  return h('span', { class: 'actions' },
    button('Resume', resume(app, m, refresh), { 'aria-label': `Resume migration ${m.id}` }),
    h('a', { href: `#/migration/${m.id}/abort`, 'aria-label': `Abort migration ${m.id}…` }, 'Abort…'));
}

function progress(m) {
  return h('span', { class: 'bar' },
    h('progress', { max: Math.max(1, m.total), value: m.done, 'aria-label': `migration ${m.id} progress` }),
    h('span', { class: 'bar-text' }, `${m.done}/${m.total} VMs`));
}

function migrationsTable(app, migs, refresh) {
  return table('Migrations not over', [
    { title: 'Id', cell: (m) => link(`#/migration/${m.id}`, String(m.id)) },
    { title: 'Pool', cell: (m) => link(`#/pool/${enc(m.pool)}`, m.pool) },
    { title: 'From → to', cell: (m) => `${m.from ?? '?'} → ${m.to ?? '?'}` },
    { title: 'State', cell: (m) => badge(m.state) },
    { title: 'Progress', cell: progress },
    { title: 'Actions', cell: (m) => migrationActions(app, m, refresh) },
  ], migs, 'No migration is running.');
}

// A pool's action in the estate: its move, or while a migration of it is
// not over (the API would refuse another), that migration, for anyone to
// follow and an operator to resume or abort.
function poolAction(app, p, migs) {
  const m = migs.find((x) => x.pool === p.name);
  if (m) return link(`#/migration/${m.id}`, `Migration ${m.id} (${m.state})`);
  return can(app, 'operator') ? link(`#/move/${enc(p.name)}`, `Move ${p.name}…`) : '';
}

export async function estate(app, main) {
  const draw = async () => {
    const est = await get('/v1/estate');
    const sections = [h('h1', {}, 'Estate')];
    const envs = h('section', { 'aria-labelledby': 'envs-h' }, h('h2', { id: 'envs-h' }, 'Environments'));
    for (const e of est.envs)
      envs.append(h('h3', {}, `${e.name} `, h('small', {}, `${e.host_count ?? 0} hosts, ${e.pool_count ?? 0} pools`)),
        table(`Hosts of ${e.name}`, hostRow(e.name), e.hosts, 'No host.'));
    const pools = h('section', { 'aria-labelledby': 'pools-h' }, h('h2', { id: 'pools-h' }, 'Pools'),
      table('Pools', [
        { title: 'Pool', cell: (p) => link(`#/pool/${enc(p.name)}`, p.name) },
        { title: 'Env', cell: (p) => p.env ?? '—' },
        { title: 'Profile', cell: (p) => p.profile ?? '—' },
        { title: 'State', cell: (p) => badge(p.state) },
        { title: 'VMs', cell: (p) => String(p.size) },
        { title: 'VMs by state', cell: statesCell },
        { title: 'Actions', cell: (p) => poolAction(app, p, est.migrations) },
      ], est.pools, 'No pool.'));
    pools.querySelector('table')?.setAttribute('id', 'estate-pools');
    const migs = h('section', { 'aria-labelledby': 'migs-h', id: 'migrations' }, h('h2', { id: 'migs-h' }, 'Migrations'),
      migrationsTable(app, est.migrations, refresh));
    sections.push(envs, pools, migs);
    main.replaceChildren(...sections);
  };
  const refresh = debounce(() => draw().catch((e) => say(e.message, 'error')), 300);
  await draw();
  return (ev) => {
    if (ev.kind === 'step' && ev.migration) refreshMigration(app, main, ev.migration, refresh);
    else if (ev.kind !== 'job') refresh();
  };
}

// One migration's row brought up to date from its own document.
async function refreshMigration(app, main, id, refresh) {
  const m = await get(`/v1/migrations/${id}`);
  const row = [...main.querySelectorAll('#migrations tbody tr')].find((tr) => tr.cells[0].textContent === String(id));
  if (!row) return refresh();
  row.cells[3].replaceChildren(badge(m.state));
  row.cells[4].replaceChildren(progress(m));
  row.cells[5].replaceChildren(migrationActions(app, m, refresh));
}

// ---- a pool ----

export async function pool(app, main, name) {
  const draw = async () => {
    const p = await get(`/v1/pools/${enc(name)}`);
    const op = can(app, 'operator');
    const vmActions = (v) => (op ? h('span', { class: 'actions' },
      button('Start', () => change(app, `/v1/vms/${enc(v.name)}/start`, {}, `start ${v.name}`), { 'aria-label': `Start ${v.name}` }),
      button('Stop', () => change(app, `/v1/vms/${enc(v.name)}/stop`, {}, `stop ${v.name}`), { 'aria-label': `Stop ${v.name}` }))
      : '');
    main.replaceChildren(
      h('h1', {}, `Pool ${p.name}`),
      h('dl', { class: 'facts' },
        h('dt', {}, 'State'), h('dd', {}, badge(p.state)),
        h('dt', {}, 'Env'), h('dd', {}, p.env ?? '—'),
        h('dt', {}, 'Profile'), h('dd', {}, p.profile ?? '—'),
        h('dt', {}, 'Image'), h('dd', {}, p.image ?? '—'),
        h('dt', {}, 'VMs'), h('dd', {}, String(p.size))),
      op ? h('p', { class: 'actions' },
        button('Start pool', () => change(app, `/v1/pools/${enc(name)}/start`, {}, `start pool ${name}`)),
        button('Stop pool', () => change(app, `/v1/pools/${enc(name)}/stop`, {}, `stop pool ${name}`)),
        link(`#/move/${enc(name)}`, 'Move this pool…')) : '',
      table(`VMs of ${p.name}`, [
        { title: 'VM', cell: (v) => v.name },
        { title: 'State', cell: (v) => badge(v.state) },
        { title: 'Env', cell: (v) => v.env ?? '—' },
        { title: 'Host', cell: (v) => v.host ?? '—' },
        { title: 'Generation', cell: (v) => String(v.generation) },
        { title: 'Owner', cell: (v) => v.owner },
        ...(op ? [{ title: 'Actions', cell: vmActions }] : []),
      ], p.vms, 'No VM.'));
  };
  const refresh = debounce(() => draw().catch((e) => say(e.message, 'error')), 300);
  await draw();
  return (ev) => { if (ev.pool === name) refresh(); };
}

// ---- moving a pool: choose, plan, confirm, follow ----

function planView(plan) {
  const changes = plan.hardware_changes.length
    ? h('ul', {}, plan.hardware_changes.map((c) => h('li', {}, c)))
    : h('p', {}, 'No hardware difference.');
  return h('section', { id: 'plan', 'aria-labelledby': 'plan-h' },
    h('h2', { id: 'plan-h' }, `Plan: ${plan.pool} from ${plan.from_env} to ${plan.to_env}`),
    h('p', {}, `Profile ${plan.from_profile} → ${plan.to_profile}`),
    h('h3', {}, 'Hardware differences'), changes,
    h('h3', {}, 'Memory'),
    h('p', {}, bar('MiB needed of free', plan.memory_needed_mib, plan.memory_free_mib)),
    table('Target hosts', [
      { title: 'Host', cell: (x) => x.host },
      { title: 'Takes VMs', cell: (x) => (x.eligible ? badge('reachable') : h('span', {}, badge('failed'), ` ${x.why_not ?? ''}`)) },
      { title: 'VMs placed', cell: (x) => String(x.vm_count) },
      { title: 'Memory needed', cell: (x) => `${x.memory_needed_mib} MiB` },
      { title: 'Memory free', cell: (x) => `${x.memory_free_mib} MiB` },
    ], plan.hosts, 'No host.'),
    table('VMs', [
      { title: 'VM', cell: (v) => v.vm },
      { title: 'From', cell: (v) => `${v.source_env} / ${v.source_host ?? '?'}` },
      { title: 'To', cell: (v) => `${v.target_env} / ${v.target_host}` },
      { title: 'Running', cell: (v) => (v.running ? 'yes: started there' : 'no') },
    ], plan.vms));
}

// N VMs, in words.
const nvms = (n) => `${n} VM${n === 1 ? '' : 's'}`;

// What a migration's state means for its VMs, in words (the badge's colour
// and icon only add to them), and what resuming or aborting it would do.
function migrationSummary(app, m) {
  const from = m.from ?? 'its source env', to = m.to ?? 'its target env';
  const moved = `${m.done} of ${nvms(m.total)} moved to ${to}`;
  const failed = m.vms.filter((v) => v.error).length;
  const choice = (resume) => (can(app, 'operator')
    ? ` ${resume}; Abort gives every VM not yet handed over back to ${from}` +
      (m.done ? ` and leaves the ${nvms(m.done)} on ${to} there.` : '.')
    : ' An operator may resume it or abort it.');
  switch (m.state) {
    case 'running': return `Running: ${moved} so far.`;
    case 'done': return `Done: ${moved}.`;
    case 'interrupted':
      return `Interrupted: the process that ran it stopped before the end and none works on it now; ${moved}.` +
        choice('Resume goes on from its journal');
    case 'partial':
      return `Ended partial: ${moved}; ${failed} failed, the Error column says why.` +
        choice(`Resume retries ${failed === 1 ? 'it' : 'them'} once the cause is gone`);
    case 'aborted': {
      const back = m.vms.filter((v) => v.step === 'returned').length;
      return `Aborted: ${back} of ${nvms(m.total)} given back to ${from}` +
        (m.done ? `; ${nvms(m.done)} handed over before the abort ${m.done === 1 ? 'stays' : 'stay'} on ${to}.` : '.');
    }
    default: return `State: ${m.state}.`;
  }
}

// The abort's confirmation: which VMs go back to the source, which stay.
function abortPlan(app, m, done, cancel) {
  const stay = m.vms.filter((v) => v.step === 'done'), back = m.vms.filter((v) => v.step !== 'done');
  return h('section', { id: 'abort-plan', 'aria-labelledby': 'abort-h' },
    h('h2', { id: 'abort-h' }, `Abort migration ${m.id}: what happens`),
    h('p', {}, `${nvms(back.length)} ${back.length === 1 ? 'goes' : 'go'} back to ${m.from ?? 'the source env'}; ` +
      `${nvms(stay.length)} handed over ${stay.length === 1 ? 'stays' : 'stay'} on ${m.to ?? 'the target env'}.`),
    table('VMs and where they end', [
      { title: 'VM', cell: (v) => v.vm },
      { title: 'Step reached', cell: (v) => badge(v.step) },
      { title: 'Ends on', cell: (v) => (v.step === 'done' ? `${v.target ?? '?'} (stays)` : `${v.source ?? '?'} (goes back)`) },
    ], m.vms),
    h('p', { class: 'actions' },
      button(`Confirm: abort migration ${m.id}`, once(() => change(app, `/v1/migrations/${m.id}/abort`, {},
        `abort migration ${m.id}`).then((job) => { done(job); return job; })), { id: 'abort-confirm' }),
      button('Cancel', cancel, { id: 'abort-cancel' })));
}

export async function migration(app, main, id, aborting) {
  let confirming = Boolean(aborting), drawn = false;
  const draw = async () => {
    const m = await get(`/v1/migrations/${id}`);
    const op = can(app, 'operator') && stuck(m);
    confirming = confirming && op;
    const focused = drawn && main.contains(document.activeElement) ? document.activeElement.id : '';
    drawn = true;
    const summary = h('p', { id: 'migration-summary', tabindex: '-1' }, migrationSummary(app, m));
    // The abort's confirmation opened or closed; the address names it only
    // while it is open.
    const confirm = (on) => {
      confirming = on;
      if (!on && location.hash.endsWith('/abort')) window.history.replaceState(null, '', `#/migration/${id}`);
    };
    const after = (job) => { confirm(false); refresh(); return job; };
    const toggle = (on) => () => {
      confirm(on);
      draw().then(() => main.querySelector(on ? '#abort-confirm' : '#migration-abort')?.focus());
    };
    main.replaceChildren(
      h('h1', {}, `Migration ${m.id}: pool ${m.pool}`),
      h('p', { id: 'migration-state' }, badge(m.state), ' ', progress(m), ' ',
        `${m.from ?? '?'} → ${m.to ?? '?'}, profile ${m.from_profile ?? '?'} → ${m.to_profile ?? '?'}`),
      summary,
      op ? h('p', { class: 'actions' },
        button('Resume', resume(app, m, refresh), { id: 'migration-resume' }),
        button('Abort…', toggle(true), { id: 'migration-abort', 'aria-expanded': String(confirming) })) : '',
      confirming ? abortPlan(app, m, after, toggle(false)) : '',
      table('Each VM\'s step', [
        { title: 'VM', cell: (v) => v.vm },
        { title: 'Step', cell: (v) => badge(v.step) },
        { title: 'From', cell: (v) => `${v.source ?? '?'} / ${v.source_host ?? '?'}` },
        { title: 'To', cell: (v) => `${v.target ?? '?'} / ${v.target_host ?? '—'}` },
        { title: 'Generation', cell: (v) => String(v.generation) },
        { title: 'Error', cell: (v) => v.error ?? '' },
      ], m.vms));
    // A redraw keeps the keyboard's place; when the element that had it is
    // gone (the button of an action now under way), the summary takes it.
    if (focused) (document.getElementById(focused) ?? summary).focus();
  };
  const refresh = debounce(() => draw().catch((e) => say(e.message, 'error')), 150);
  await draw();
  if (confirming) main.querySelector('#abort-confirm')?.focus();
  // Its steps, and the end of a job this page asked for: a resume that
  // failed before any step leaves the migration as it was, its button to
  // be offered again.
  return (ev) => { if (String(ev.migration) === String(id) || (ev.kind === 'job' && app.jobs.has(ev.subject))) refresh(); };
}

export async function move(app, main, name) {
  const [p, envs, profiles] = await Promise.all([get(`/v1/pools/${enc(name)}`), get('/v1/envs?limit=1000'),
                                                 get('/v1/profiles?limit=1000')]);
  const target = envs.items.find((e) => e.name !== p.env)?.name;
  const envSel = h('select', { id: 'move-env', name: 'to', required: true },
    envs.items.map((e) => h('option', { value: e.name, selected: e.name === target }, e.name)));
  const profSel = h('select', { id: 'move-profile', name: 'profile' },
    profiles.items.map((x) => h('option', { value: x.name, selected: x.name === p.profile }, x.name)));
  const out = h('div', { id: 'move-out' });
  const confirm = async (body) => {
    const job = await change(app, `/v1/pools/${enc(name)}/migrations`, body, `move ${name}`);
    if (job && job.migration) location.hash = `#/migration/${job.migration}`;
  };
  const plan = async (ev) => {
    ev.preventDefault();
    const body = { to: envSel.value, profile: profSel.value };
    out.replaceChildren();
    try {
      const pl = await post(`/v1/pools/${enc(name)}/migrations`, { ...body, dry_run: true });
      say(null);
      out.append(planView(pl), h('p', { class: 'actions' },
        button(`Confirm: move ${name} to ${body.to}`, () => confirm(body), { id: 'move-confirm' }),
        button('Cancel', () => { out.replaceChildren(); envSel.focus(); })));
      out.querySelector('#move-confirm').focus();
    } catch (e) {
      say(e instanceof ApiError ? `The move would be refused: ${e.message}` : String(e), 'error');
    }
  };
  main.replaceChildren(
    h('h1', {}, `Move pool ${name}`),
    h('p', {}, `Now on ${p.env ?? '?'} with profile ${p.profile ?? '?'}, ${p.size} VMs.`),
    h('form', { onsubmit: plan, class: 'form' },
      h('label', { for: 'move-env' }, 'Target env'), envSel,
      h('label', { for: 'move-profile' }, 'Target profile'), profSel,
      h('button', { type: 'submit', id: 'move-plan' }, 'Plan the move (dry run)')),
    out);
  return () => {};
}

// ---- a host ----

export async function host(app, main, env, name) {
  const draw = async () => {
    const [hosts, vms] = await Promise.all([get(`/v1/envs/${enc(env)}/hosts?limit=1000`),
                                            get(`/v1/vms?env=${enc(env)}&host=${enc(name)}&limit=1000`)]);
    const x = hosts.items.find((y) => y.name === name);
    if (!x) throw new ApiError(404, { detail: `env '${env}' has no host '${name}'` });
    const others = hosts.items.filter((y) => y.name !== name);
    const out = h('div', { id: 'host-out' });
    const op = can(app, 'operator');
    const drainPlan = () => out.replaceChildren(h('section', { 'aria-labelledby': 'drain-h' },
      h('h2', { id: 'drain-h' }, `Drain ${name}: what would move`),
      h('p', {}, `${name} goes into maintenance; its ${vms.total} VMs move to the other hosts of ${env} that take VMs.`),
      table('VMs that move', [{ title: 'VM', cell: (v) => v.name }, { title: 'Pool', cell: (v) => v.pool ?? '—' },
                              { title: 'State', cell: (v) => badge(v.state) }], vms.items, 'No VM: nothing moves.'),
      table('Hosts that may take them', [
        { title: 'Host', cell: (y) => y.name },
        { title: 'Takes VMs', cell: (y) => (y.reachable && !y.maintenance ? badge('reachable') : badge(y.reachable ? 'maintenance' : 'unreachable')) },
        { title: 'Memory free', cell: (y) => (y.reachable ? `${mib(y.memory_free_kib)} MiB` : '—') },
      ], others, 'No other host.'),
      h('p', { class: 'actions' },
        button(`Confirm: drain ${name}`, () => change(app, `/v1/envs/${enc(env)}/hosts/${enc(name)}/drain`, {}, `drain ${name}`)
          .then(refresh), { id: 'drain-confirm' }),
        button('Cancel', () => out.replaceChildren()))));
    const resumePlan = () => out.replaceChildren(h('section', {},
      h('p', {}, `${name} takes VMs again once out of maintenance; nothing moves back by itself.`),
      h('p', { class: 'actions' },
        button(`Confirm: end maintenance of ${name}`, () => change(app, `/v1/envs/${enc(env)}/hosts/${enc(name)}/resume`, {},
          `end maintenance of ${name}`).then(refresh), { id: 'resume-confirm' }),
        button('Cancel', () => out.replaceChildren()))));
    main.replaceChildren(
      h('h1', {}, `Host ${name} of ${env}`),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Reachable'), h('dd', {}, badge(x.reachable ? 'reachable' : 'unreachable')),
        h('dt', {}, 'Maintenance'), h('dd', {}, x.maintenance ? badge('maintenance') : 'in service'),
        h('dt', {}, 'CPU'), h('dd', {}, x.reachable ? bar('vCPUs', x.vcpus_running ?? 0, x.cpus) : '—'),
        h('dt', {}, 'Memory'), h('dd', {}, x.reachable ? bar('MiB used', mib(x.memory_kib - x.memory_free_kib), mib(x.memory_kib)) : '—'),
        h('dt', {}, 'URI'), h('dd', {}, x.uri)),
      op ? h('p', { class: 'actions' }, x.maintenance ? button('End maintenance…', resumePlan, { id: 'host-resume' })
                                                      : button('Drain…', drainPlan, { id: 'host-drain' })) : '',
      out,
      table(`VMs on ${name}`, [{ title: 'VM', cell: (v) => v.name }, { title: 'Pool', cell: (v) => v.pool ?? '—' },
                               { title: 'State', cell: (v) => badge(v.state) }], vms.items, 'No VM.'));
  };
  const refresh = debounce(() => draw().catch((e) => say(e.message, 'error')), 300);
  await draw();
  return (ev) => { if (ev.kind === 'host' && ev.subject === `${env}/${name}`) refresh(); };
}

// ---- history ----

export async function history(app, main, query) {
  const q = new URLSearchParams(query);
  const field = (id, label, hint) => [h('label', { for: id }, label),
    h('input', { id, name: id.replace('h-', ''), value: q.get(id.replace('h-', '')) ?? '', placeholder: hint })];
  const form = h('form', { class: 'form', onsubmit: (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const k of ['pool', 'vm', 'since', 'via']) { const v = form.elements[k].value.trim(); if (v) p.set(k, v); }
    location.hash = `#/history?${p}`;
  } }, field('h-pool', 'Pool', 'any'), field('h-vm', 'VM', 'any'), field('h-since', 'Since', '1h, 2d, or a date'),
  h('label', { for: 'h-via' }, 'Through'),
  h('select', { id: 'h-via', name: 'via' }, ['', 'cli', 'api', 'policy'].map((v) =>
    h('option', { value: v, selected: (q.get('via') ?? '') === v }, v || 'anything'))),
  h('button', { type: 'submit' }, 'Show'));
  const api = new URLSearchParams();
  for (const k of ['pool', 'vm', 'since', 'via']) if (q.get(k)) api.set(k, q.get(k));
  api.set('limit', '200');
  const page = await get(`/v1/history?${api}`);
  const rows = page.items.slice().reverse();
  main.replaceChildren(h('h1', {}, 'History'), form,
    h('p', {}, `${page.total} entries${page.total > page.items.length ? `, the first ${page.items.length} shown` : ''}.`),
    table('History', [
      { title: 'When', cell: (x) => x.at },
      { title: 'Who', cell: (x) => (x.user ? `${x.user} (${x.via ?? 'cli'})` : '—') },
      { title: 'What', cell: (x) => (x.type === 'command' ? x.command : `migration ${x.migration}: ${x.vm ?? ''} ${x.step}`) },
      { title: 'Outcome', cell: (x) => badge(x.outcome === 'ok' ? 'done' : x.outcome.startsWith('failed') ? 'failed' : x.outcome),
      },
      { title: 'Detail', cell: (x) => (x.outcome.startsWith('failed') ? x.outcome : x.detail ?? '') },
    ], rows, 'Nothing recorded.'));
  return () => {};
}
