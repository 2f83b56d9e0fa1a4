// The API client: the token lives in this tab's sessionStorage and goes out
// as a bearer header, so the browser sends no cookie and no other site can
// make requests in the user's name.
const KEY = 'vpool.token';

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

// A refusal of the API: its RFC 9457 problem (status, detail, field).
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status;
    this.problem = problem || null;
  }
}

function headers(extra) {
  const h = { Accept: 'application/json', ...extra };
  const t = token.get();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

export async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
                 cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) init.body = JSON.stringify(body);
  const resp = await fetch(path, init);
  const text = await resp.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch { doc = null; }
  if (!resp.ok) throw new ApiError(resp.status, doc);
  return doc;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body ?? {});

// Every record of a text/event-stream body, as it arrives: EventSource
// cannot send the Authorization header, so the stream is read with fetch.
async function readStream(resp, onRecord) {
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const rec = { id: null, event: 'message', data: '' };
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') rec.id = val;
        else if (field === 'event') rec.event = val;
        else if (field === 'data') rec.data += (rec.data ? '\n' : '') + val;
      }
      if (rec.data) onRecord(rec);
    }
  }
}

// Follow /v1/events from now on: ON_EVENT gets each api_event. A dropped
// stream is opened again with Last-Event-ID, so no event is missed.
// Returns a function that stops it.
export function follow(onEvent, onState) {
  const ctl = new AbortController();
  let last = null;
  const run = async () => {
    while (!ctl.signal.aborted) {
      try {
        if (last === null) last = String((await get('/v1/events?limit=1&since=0')).last_id);
        const resp = await fetch('/v1/events', { headers: headers({ Accept: 'text/event-stream', 'Last-Event-ID': last }),
                                                 signal: ctl.signal, cache: 'no-store', credentials: 'omit' });
        if (!resp.ok) throw new ApiError(resp.status, null);
        onState && onState(true);
        await readStream(resp, (rec) => {
          if (rec.id !== null) last = rec.id;
          try { onEvent(JSON.parse(rec.data)); } catch (e) { console.error(e); }
        });
      } catch (e) {
        if (ctl.signal.aborted) return;
      }
      onState && onState(false);
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  run();
  return () => ctl.abort();
}
