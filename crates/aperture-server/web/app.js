// Aperture's web page: search, browse, upload. Plain JavaScript with no build step and nothing
// fetched from elsewhere, so the page works offline and the server can embed it whole.
//
// Every string that comes from the server (names, OCR text, error messages) goes into the page
// as text, never as HTML: file names and text read from photos are untrusted.
'use strict';

const PAGE = 48;
const DEBOUNCE_MS = 200;
const POLL_BUSY_MS = 2000;
const POLL_IDLE_MS = 10000;
const KINDS = ['image', 'video', 'audio', 'document'];
// How many moments a label of a video offers to play from.
const MOMENTS = 8;

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  // The search in flight, so the next keystroke can abort it.
  searchAbort: null,
  searchTimer: 0,
  // The cursor of the next page of the newest-assets listing; null when there is none.
  next: null,
  // Ids of sensitive assets the user chose to see; kept across re-renders.
  revealed: new Set(),
  // The address of the search whose results the grid holds (null when it holds none), and
  // how many pages of them.
  shown: null,
  pages: 0,
  // The address of the last search shown, where "Back to search" goes.
  lastSearch: '#/',
  pollTimer: 0,
  // Numbers the status requests, so that only the latest answer is shown.
  statusSeq: 0,
  // Whether the last status answer showed work pending, to notice when it ends.
  wasBusy: null,
  // Bumped on every route change, so a slow answer for a page left behind is dropped.
  routeToken: 0,
};

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

// h('a', {href: '#/'}, 'text', child): builds an element. Strings become text nodes.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'style') el.style.cssText = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function humanSize(bytes) {
  if (bytes === null || bytes === undefined) return '';
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} bytes` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[unit]}`;
}

function formatMillis(ms) {
  return ms ? new Date(ms).toLocaleString() : '';
}

function percent(x) {
  return `${Math.round(x * 100)}%`;
}

// A moment of a video or a recording as hours, minutes and seconds: 83200 → "00:01:23".
function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60].map((n) => String(n).padStart(2, '0')).join(':');
}

// Where a time place starts, in milliseconds; null for any other place.
function startOf(place) {
  return place && place.type === 'time' && Number.isFinite(place.start_ms) ? place.start_ms : null;
}

// The moment of a video a search reason points at, in milliseconds, or null.
function momentOf(reason) {
  return Number.isFinite(reason.start_ms) ? reason.start_ms : startOf(reason.place);
}

// Highlights are UTF-8 byte ranges into `text` (what the Rust side counts), so they are cut
// out of the encoded bytes, never out of the JavaScript string, whose indexes are UTF-16 units.
// Returns [{text, mark}] pieces around the highlights, trimmed to `context` characters on
// each side of the first one so that a long page of OCR text stays one line.
function highlightPieces(text, highlights, context = 40) {
  const bytes = new TextEncoder().encode(text);
  const decoder = new TextDecoder();
  const ranges = (highlights || [])
    .filter((r) => r.start < r.end && r.end <= bytes.length)
    .sort((a, b) => a.start - b.start);
  const pieces = [];
  let at = 0;
  for (const r of ranges) {
    if (r.start < at) continue; // overlapping range: the first one wins
    pieces.push({ text: decoder.decode(bytes.subarray(at, r.start)), mark: false });
    pieces.push({ text: decoder.decode(bytes.subarray(r.start, r.end)), mark: true });
    at = r.end;
  }
  pieces.push({ text: decoder.decode(bytes.subarray(at)), mark: false });
  if (ranges.length > 0) {
    const first = pieces[0];
    if (first.text.length > context) first.text = `…${first.text.slice(-context)}`;
    const last = pieces[pieces.length - 1];
    if (last.text.length > context) last.text = `${last.text.slice(0, context)}…`;
  } else if (pieces[0].text.length > 2 * context) {
    pieces[0].text = `${pieces[0].text.slice(0, 2 * context)}…`;
  }
  return pieces.filter((p) => p.text !== '');
}

// One reason of a hit as a short phrase, with the matched words marked, after the moment of
// the video it was found at.
function reasonNodes(reason) {
  const moment = momentOf(reason);
  const phrase = reasonPhrase(reason);
  return moment === null ? phrase : [h('span', { class: 'moment' }, clock(moment)), ' ', ...phrase];
}

// Text with its highlighted ranges in <mark>.
function marked(text, highlights) {
  return highlightPieces(text || '', highlights).map((p) => (p.mark ? h('mark', {}, p.text) : p.text));
}

function reasonPhrase(reason) {
  switch (reason.type) {
    case 'words':
      return [
        `${reason.field || 'text'}: `,
        ...marked(reason.text, reason.highlights),
        ...(reason.original
          ? [h('span', { class: 'original', lang: reason.original.language },
            ` (from ${languageName(reason.original.language)}: `,
            ...marked(reason.original.text, reason.original.highlights), ')')]
          : []),
      ];
    case 'meaning':
      return [`meaning ${Number(reason.similarity).toFixed(2)}`];
    case 'similar':
      return [`looks similar ${Number(reason.similarity).toFixed(2)}`];
    case 'filters':
      return ['matches the filters'];
    default:
      return [reason.type || ''];
  }
}

// ---------------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The message of an error answer: `{"error":{"code","message"}}`, else the status line.
async function errorOf(res) {
  try {
    const body = await res.json();
    if (body && body.error) {
      return new ApiError(res.status, body.error.code, body.error.message || body.error.code);
    }
  } catch (_) {
    // Not JSON (a proxy's page, say): fall through to the status line.
  }
  return new ApiError(res.status, 'http', `${res.status} ${res.statusText || 'error'}`.trim());
}

// Calls the API with the session cookie. Writes carry X-Aperture, which a cross-site form
// cannot send: the server refuses cookie-authenticated writes without it. A 401 anywhere but
// at sign-in means the session is gone, so the sign-in form comes back.
async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-Aperture'] = '1';
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    credentials: 'same-origin',
  });
  if (!res.ok) {
    const err = await errorOf(res);
    // On arrival (no session yet) the form needs no error; a session that ended does.
    if (res.status === 401 && path !== '/api/v1/session') showSignIn(state.me ? err.message : '');
    throw err;
  }
  if (res.status === 204) return null;
  return res.json();
}

// ---------------------------------------------------------------------------------------------
// Signing in and out
// ---------------------------------------------------------------------------------------------

async function start() {
  wireEvents();
  // A link such as https://host/#token=apt_… offers to sign in with its token; the token
  // leaves the address bar and the history at once, where it would otherwise linger.
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (match) {
    history.replaceState(null, '', `${location.pathname}${location.search}#/`);
    let token = '';
    try {
      token = decodeURIComponent(match[1]);
    } catch {
      // A mangled link: the sign-in form below.
    }
    if (token) {
      await askLinkSignIn(token);
      return;
    }
  }
  await loadMe();
}

// A link never signs in by itself: anyone could send you a link with their own token (login
// CSRF), and what you then uploaded or searched would be theirs to see. The page says whose
// token it is, and who you are now, and waits for a click.
async function askLinkSignIn(token) {
  let linked;
  try {
    const res = await fetch('/api/v1/me', {
      headers: { Authorization: `Bearer ${token}` },
      credentials: 'omit',
    });
    if (!res.ok) throw await errorOf(res);
    linked = await res.json();
  } catch (err) {
    showSignIn(err.message);
    return;
  }
  let current = null;
  try {
    const res = await fetch('/api/v1/me', { credentials: 'same-origin' });
    if (res.ok) current = await res.json();
  } catch {
    // Not signed in (or unreachable): nothing to compare with.
  }
  const where = linked.collections ? `collections ${linked.collections.join(', ')}` : 'every collection';
  const now = current ? ` You are signed in as "${current.name}" now.` : '';
  $('link-who').textContent =
    `This link signs you in as "${linked.name}" (${linked.scopes.join(', ')}; ${where}).${now}`;
  $('link-view').hidden = false;
  $('link-form').onsubmit = async (event) => {
    event.preventDefault();
    $('link-view').hidden = true;
    try {
      await api('/api/v1/session', { method: 'POST', body: { token } });
    } catch (err) {
      showSignIn(err.message);
      return;
    }
    await loadMe();
  };
  $('link-cancel').onclick = async () => {
    $('link-view').hidden = true;
    await loadMe();
  };
}

async function loadMe() {
  try {
    state.me = await api('/api/v1/me');
  } catch (err) {
    if (err.status !== 401) showSignIn(err.message);
    return;
  }
  signedIn();
}

function showSignIn(message) {
  state.me = null;
  clearTimeout(state.pollTimer);
  if (state.searchAbort) state.searchAbort.abort();
  $('top').hidden = true;
  $('upload-panel').hidden = true;
  $('search-view').hidden = true;
  $('asset-view').hidden = true;
  $('asset-view').replaceChildren();
  // The next person to sign in may see other collections: nothing of this session stays.
  $('grid').replaceChildren();
  $('uploads').replaceChildren();
  state.shown = null;
  state.lastSearch = '#/';
  state.revealed.clear();
  $('signin-view').hidden = false;
  const error = $('signin-error');
  error.hidden = !message;
  error.textContent = message || '';
  $('token').focus();
}

async function signIn(event) {
  event.preventDefault();
  const token = $('token').value.trim();
  const error = $('signin-error');
  error.hidden = true;
  try {
    await api('/api/v1/session', { method: 'POST', body: { token } });
  } catch (err) {
    error.textContent = err.status === 401 ? `Sign-in failed: ${err.message}` : err.message;
    error.hidden = false;
    return;
  }
  $('token').value = '';
  await loadMe();
}

async function signOut() {
  try {
    await api('/api/v1/session', { method: 'DELETE' });
  } catch (_) {
    // Signed out either way: the page forgets the session.
  }
  showSignIn('');
}

// Whether the signed-in token may do this. The admin scope allows everything, as on the
// server: an admin token lists only "admin" among its scopes.
function can(scope) {
  const scopes = (state.me && state.me.scopes) || [];
  return scopes.includes(scope) || scopes.includes('admin');
}

function signedIn() {
  $('signin-view').hidden = true;
  $('top').hidden = false;
  $('who').textContent = state.me.name || '';
  $('upload-button').hidden = !can('ingest');
  loadCollections();
  pollStatus();
  route();
}

// ---------------------------------------------------------------------------------------------
// Routes: #/ (the newest assets), #/search?q=…&kind=…&collection=… (a search: the address can be
// shared, and the back button returns to the search before) and #/asset/<id>?t=<seconds>
// ---------------------------------------------------------------------------------------------

// The search an address names: {q, kind, collection}, empty strings for what it leaves out.
function searchOfHash(hash) {
  const match = /^#\/search\?(.*)$/.exec(hash);
  const params = new URLSearchParams(match ? match[1] : '');
  const kind = params.get('kind') || '';
  return {
    q: (params.get('q') || '').trim(),
    kind: KINDS.includes(kind) ? kind : '',
    collection: params.get('collection') || '',
  };
}

// The address of a search; the empty one is #/, the newest assets.
function hashOfSearch(search) {
  const params = new URLSearchParams();
  for (const key of ['q', 'kind', 'collection']) {
    if (search[key]) params.set(key, search[key]);
  }
  const query = params.toString();
  return query ? `#/search?${query}` : '#/';
}

function isSearchHash(hash) {
  return /^(#\/?)?$/.test(hash) || /^#\/search(\?|$)/.test(hash);
}

// The search that the box and the filters say.
function controlsSearch() {
  return { q: $('q').value.trim(), kind: $('kind').value, collection: $('collection').value };
}

function setControls(search) {
  $('q').value = search.q;
  $('kind').value = search.kind;
  // The collections may not be listed yet (they load beside the first search): the one the
  // address names is offered until they are.
  const select = $('collection');
  if (search.collection && !Array.from(select.options).some((o) => o.value === search.collection)) {
    select.append(h('option', { value: search.collection }, search.collection));
  }
  select.value = search.collection;
}

// Whether `next` only refines `previous` ("ca", "cat", "cats"): typing then replaces the
// search in the history instead of adding one per pause, so Back returns to another search.
function refines(previous, next) {
  return previous.kind === next.kind && previous.collection === next.collection &&
    previous.q !== '' && next.q !== '' && (previous.q.startsWith(next.q) || next.q.startsWith(previous.q));
}

// Runs the search the controls say, writing it into the address first. `force` runs it even
// when the grid already answers it (Enter in the box).
function searchFromControls({ force = false } = {}) {
  clearTimeout(state.searchTimer);
  const wanted = controlsSearch();
  const hash = hashOfSearch(wanted);
  const here = isSearchHash(location.hash) ? searchOfHash(location.hash) : null;
  if (here === null || hashOfSearch(here) !== hash) {
    if (here !== null && refines(here, wanted)) history.replaceState(null, '', hash);
    else history.pushState(null, '', hash);
  }
  if (force) state.shown = null;
  route();
}

// The seconds of a `t=` parameter, or null.
function secondsParam(text) {
  const t = Number.parseFloat(text || '');
  return Number.isFinite(t) && t >= 0 ? t : null;
}

function route() {
  if (!state.me) return;
  const hash = location.hash;
  const asset = /^#\/asset\/([^/?#]+)(?:\?(.*))?/.exec(hash);
  // Any other address is an anchor in the page (the skip link's #main): no route.
  if (!asset && !isSearchHash(hash)) return;
  state.routeToken += 1;
  if (asset) {
    $('search-view').hidden = true;
    const params = new URLSearchParams(asset[2] || '');
    showAsset(decodeURIComponent(asset[1]), state.routeToken, secondsParam(params.get('t')));
    return;
  }
  document.title = 'Aperture';
  $('asset-view').hidden = true;
  $('asset-view').replaceChildren();
  $('search-view').hidden = false;
  const wanted = searchOfHash(hash);
  state.lastSearch = hashOfSearch(wanted);
  // The grid is kept while an asset is shown, so coming back is instant and keeps the place;
  // it is refilled when the address asks for another search (a link, Back, Forward).
  if (state.shown !== state.lastSearch) {
    const controls = controlsSearch();
    // Touching the box while the user types would move the caret.
    if (hashOfSearch(controls) !== state.lastSearch) setControls(wanted);
    runSearch();
  } else if (!state.searchAbort) {
    setBusy(false); // a keystroke that changed nothing ("cat" to "cat ")
  }
}

// ---------------------------------------------------------------------------------------------
// Search and the grid
// ---------------------------------------------------------------------------------------------

// The box's words plus the filter controls, in the query language.
function composedQuery() {
  const parts = [$('q').value.trim()];
  const kind = $('kind').value;
  const collection = $('collection').value;
  if (kind) parts.push(`kind:${kind}`);
  if (collection) parts.push(/[\s"]/.test(collection) ? `collection:"${collection}"` : `collection:${collection}`);
  return parts.filter(Boolean).join(' ');
}

// The grid is marked busy from the first keystroke: what it shows no longer answers the box.
function setBusy(busy) {
  $('grid').setAttribute('aria-busy', busy ? 'true' : 'false');
}

function scheduleSearch() {
  setBusy(true);
  clearTimeout(state.searchTimer);
  state.searchTimer = setTimeout(searchFromControls, DEBOUNCE_MS);
}

function showQueryError(message) {
  const error = $('query-error');
  error.textContent = message || '';
  error.hidden = !message;
  $('q').setAttribute('aria-invalid', message ? 'true' : 'false');
}

// Runs the search in the box, or lists the newest assets when it is empty. `more` appends
// the next page of the listing.
async function runSearch({ more = false } = {}) {
  if (state.searchAbort) state.searchAbort.abort();
  const abort = new AbortController();
  state.searchAbort = abort;
  if (!more) state.shown = hashOfSearch(controlsSearch());
  setBusy(true);
  const words = $('q').value.trim();
  const summary = $('results-summary');
  const grid = $('grid');
  try {
    let hits;
    let took = null;
    if (words === '') {
      const params = new URLSearchParams({ limit: String(PAGE) });
      if (more && state.next) params.set('cursor', state.next);
      if ($('kind').value) params.set('kind', $('kind').value);
      if ($('collection').value) params.set('collection', $('collection').value);
      const page = await api(`/api/v1/assets?${params}`, { signal: abort.signal });
      hits = page.items.map((asset) => ({ asset, reasons: [] }));
      state.next = page.next || null;
    } else {
      const params = new URLSearchParams({ q: composedQuery(), limit: String(PAGE) });
      const found = await api(`/api/v1/search?${params}`, { signal: abort.signal });
      hits = found.hits;
      took = found.took_ms;
      state.next = null;
    }
    showQueryError('');
    const cards = hits.map(card);
    if (more) grid.append(...cards);
    else grid.replaceChildren(...cards);
    state.pages = more ? state.pages + 1 : 1;
    $('more').hidden = !state.next;
    const shown = grid.children.length;
    if (shown === 0) summary.textContent = words ? `No results for “${words}”.` : 'Nothing here yet: upload some files.';
    else if (words) summary.textContent = `${shown} result${shown === 1 ? '' : 's'} for “${words}”${took === null ? '' : ` in ${Number(took).toFixed(1)} ms`}`;
    else summary.textContent = `Newest ${shown} asset${shown === 1 ? '' : 's'}`;
  } catch (err) {
    if (err.name === 'AbortError' || err.status === 401) return;
    if (err.status === 400) {
      showQueryError(err.message);
    } else {
      showQueryError('');
      summary.textContent = err.message;
    }
  } finally {
    if (state.searchAbort === abort) {
      state.searchAbort = null;
      setBusy(false);
    }
  }
}

function kindBadge(asset) {
  const sub = (asset.mime || '').split('/')[1] || '';
  const label = asset.kind === 'document' && sub ? sub.replace(/^x-/, '').slice(0, 6) : asset.kind;
  return h('span', { class: 'badge', 'aria-hidden': 'true' }, (label || 'file').toUpperCase());
}

// The picture of an asset: its thumbnail, or a badge naming its kind when it has none.
function picture(asset, { eager = false } = {}) {
  if (asset.thumbnail) {
    return h('img', {
      src: asset.thumbnail,
      alt: '',
      loading: eager ? 'eager' : 'lazy',
      decoding: 'async',
      width: asset.width || undefined,
      height: asset.height || undefined,
    });
  }
  return h('span', { class: 'placeholder' }, kindBadge(asset));
}

function isBlurred(asset) {
  return Boolean(asset.sensitive && asset.sensitive.blur === true) && !state.revealed.has(asset.id);
}

// One result: a link to the asset page, so Tab and Enter work without extra code.
function card(hit) {
  const asset = hit.asset;
  // One "looks similar" per hit (the best), though several embedding spaces may agree.
  const similar = (hit.reasons || []).filter((r) => r.type === 'similar');
  const best = similar.reduce((a, r) => (a && a.similarity >= r.similarity ? a : r), null);
  const why = (hit.reasons || []).filter(
    (r) => (r.type !== 'filters' || hit.reasons.length === 1) && (r.type !== 'similar' || r === best),
  );
  const whyNodes = why.flatMap((r, i) => (i === 0 ? reasonNodes(r) : [' · ', ...reasonNodes(r)]));
  // A hit found at a moment of a video opens the video there.
  const moment = [...why, ...(hit.reasons || [])].map(momentOf).find((m) => m !== null);
  const at = moment === undefined ? '' : `?t=${moment / 1000}`;
  const link = h(
    'a',
    { class: 'card', href: `#/asset/${encodeURIComponent(asset.id)}${at}`, 'data-id': asset.id, 'data-kind': asset.kind },
    h('span', { class: 'thumb' }, picture(asset), h('span', { class: 'veil' }, 'Sensitive — click to show')),
    h('span', { class: 'name' }, asset.name),
    whyNodes.length ? h('span', { class: 'why' }, whyNodes) : null,
  );
  if (isBlurred(asset)) link.classList.add('blurred');
  return h('li', {}, link);
}

// The first click on a blurred asset shows it; only the next one opens it. Enter on a link
// fires a click, so the keyboard gets the same.
function onCardClick(event) {
  const link = event.target.closest('a.card.blurred');
  if (!link) return;
  event.preventDefault();
  state.revealed.add(link.dataset.id);
  link.classList.remove('blurred');
}

async function loadCollections() {
  try {
    const list = await api('/api/v1/collections');
    const select = $('collection');
    const chosen = select.value;
    select.replaceChildren(
      h('option', { value: '' }, 'All collections'),
      ...list.map((c) => h('option', { value: c.name }, c.name)),
    );
    select.value = list.some((c) => c.name === chosen) ? chosen : '';
    $('collection-names').replaceChildren(...list.map((c) => h('option', { value: c.name })));
    // A token limited to some collections cannot upload to "default" unless it is one of them.
    const allowed = state.me && state.me.collections;
    const input = $('upload-collection');
    if (allowed && allowed.length && !allowed.includes(input.value)) input.value = allowed[0];
  } catch (_) {
    // The filter then offers "All collections" only; searching still works.
  }
}

// ---------------------------------------------------------------------------------------------
// Indexing progress
// ---------------------------------------------------------------------------------------------

async function pollStatus() {
  clearTimeout(state.pollTimer);
  // Only the latest request may speak: an answer sent before an upload queued its jobs
  // must not arrive after it and claim "Up to date".
  state.statusSeq += 1;
  const seq = state.statusSeq;
  let busy = false;
  try {
    const status = await api('/api/v1/status');
    if (seq !== state.statusSeq) return;
    const jobs = status.jobs || {};
    const pending = (jobs.queued || 0) + (jobs.running || 0);
    const done = (jobs.succeeded || 0) + (jobs.failed || 0) + (jobs.skipped || 0);
    const indexLag = (status.index && status.index.pending_changes) || 0;
    const text = $('indexing-text');
    const bar = $('indexing-progress');
    if (status.jobs == null) {
      // An older server tells a token for some collections only whether work is under way.
      text.textContent = status.busy ? 'Indexing…' : 'Up to date';
      bar.hidden = true;
    } else if (pending > 0) {
      text.textContent = `Indexing: ${done} of ${done + pending} jobs done`;
      bar.max = done + pending;
      bar.value = done;
      bar.hidden = false;
    } else if (indexLag > 0) {
      // Analysed, but not yet in the search index (it follows within a second or so):
      // "Up to date" would promise that a search finds it already.
      text.textContent = `Indexing: ${indexLag} change${indexLag === 1 ? '' : 's'} not yet searchable`;
      bar.hidden = true;
    } else {
      text.textContent = 'Up to date';
      bar.hidden = true;
    }
    // A token for some collections only is not told how many assets there are in all.
    const assets = status.assets == null ? '' : `${status.assets} assets; `;
    $('indexing').title = status.jobs == null ? '' : `${assets}${jobs.failed || 0} jobs failed` +
      (indexLag ? `; ${indexLag} changes not yet searchable` : '');
    busy = status.jobs == null ? Boolean(status.busy) : pending > 0 || indexLag > 0;
    // When work finishes, what is shown may have changed (new labels, text read by OCR):
    // refresh the first page of results, but never pages the user has loaded beyond it.
    if (state.wasBusy && !busy && !$('search-view').hidden && state.pages <= 1) runSearch();
    state.wasBusy = busy;
  } catch (err) {
    if (err.status === 401 || seq !== state.statusSeq) return;
    $('indexing-text').textContent = 'Status unavailable';
    $('indexing-progress').hidden = true;
  }
  state.pollTimer = setTimeout(pollStatus, busy ? POLL_BUSY_MS : POLL_IDLE_MS);
}

// ---------------------------------------------------------------------------------------------
// The asset page
// ---------------------------------------------------------------------------------------------

function insightsOf(detail, kind) {
  return (detail.insights || []).filter((i) => i.kind === kind);
}

// The translations of the insight `of` (same kind of source, same place), each
// {language, text, engine, note}: what shows beside the original.
function translationsOf(detail, of) {
  const place = JSON.stringify(of.place);
  return insightsOf(detail, 'translation')
    .filter((t) => t.value && t.value.source === of.kind && t.value.text && JSON.stringify(t.place) === place)
    .map((t) => ({ language: t.value.target_language, text: t.value.text, engine: t.value.engine, pivot: t.value.pivot_language }));
}

// An original and its translations side by side (one column each); `original` is the node
// holding the original text; translations longer than `max` characters are cut.
function sideBySide(detail, insight, original, max = Infinity) {
  const translated = translationsOf(detail, insight)
    .map((t) => ({ ...t, text: t.text.length > max ? `${t.text.slice(0, max)}…` : t.text }));
  if (translated.length === 0) return original;
  return h('div', { class: 'side-by-side' },
    h('div', { lang: insight.language || null }, original),
    translated.map((t) => h('div', {
      class: 'translation',
      lang: t.language,
      title: `Translated into ${languageName(t.language)} by ${t.engine}${t.pivot ? ` via ${languageName(t.pivot)}` : ''}`,
    }, t.text)));
}

// Languages that untranslatable text is in, from the notes the translate analyzer left.
function untranslated(detail) {
  return insightsOf(detail, 'translation')
    .filter((t) => t.value && !t.value.text && t.value.note)
    .map((t) => t.value.note);
}

// The box of an insight on the first page, the picture or the frames of a video, in 0–1
// coordinates, if it has one.
function rectOf(place) {
  if (!place) return null;
  if (place.type === 'region') return place.rect;
  if (place.type === 'page' && (place.page || 1) === 1) return place.rect || null;
  if (place.type === 'time') return place.rect || null;
  return null;
}

// An object derived from an asset: a keyframe, the storyboard.
function derivedUrl(asset, name) {
  return `/api/v1/assets/${encodeURIComponent(asset.id)}/derived/${encodeURIComponent(name)}`;
}

// A button that plays the video from the moment something was found at.
function seekButton(player, ms) {
  return h('button', {
    type: 'button',
    class: 'seek',
    'aria-label': `Play from ${clock(ms)}`,
    onclick: () => player.seek(ms),
  }, clock(ms));
}

async function showAsset(id, token, startSeconds = null) {
  const view = $('asset-view');
  view.hidden = false;
  view.replaceChildren(h('p', { class: 'summary' }, 'Loading…'));
  let detail;
  try {
    detail = await api(`/api/v1/assets/${encodeURIComponent(id)}`);
  } catch (err) {
    if (token !== state.routeToken || err.status === 401) return;
    view.replaceChildren(
      h('p', { class: 'error', role: 'alert' }, err.message),
      h('p', {}, h('a', { href: state.lastSearch }, '← Back to search')),
    );
    return;
  }
  if (token !== state.routeToken) return; // the user moved on meanwhile
  const asset = detail.asset;
  document.title = `${asset.name} — Aperture`;

  const player = asset.kind === 'video' ? videoPlayer(asset, detail)
    : asset.kind === 'audio' ? audioPlayer(asset, detail) : null;
  const ocr = insightsOf(detail, 'ocr_line');
  const similar = h('section', { class: 'related', id: 'similar', 'aria-labelledby': 'similar-title' },
    h('h2', { id: 'similar-title' }, 'Similar images'), h('p', { class: 'hint' }, 'Loading…'));
  const duplicates = h('section', { class: 'related', id: 'duplicates', 'aria-labelledby': 'duplicates-title' },
    h('h2', { id: 'duplicates-title' }, 'Near-duplicates'), h('p', { class: 'hint' }, 'Loading…'));

  view.replaceChildren(
    h('p', { class: 'back' }, h('a', { href: state.lastSearch }, '← Back to search')),
    h('h1', { id: 'asset-title', tabindex: '-1' }, asset.name),
    h('div', { class: 'asset' }, assetMedia(asset, ocr, player), assetSide(asset, detail, ocr, player)),
    similar,
    duplicates,
  );
  $('asset-title').focus();
  // An address with ?t= (a search hit found there) opens the video or recording at that moment.
  if (player && startSeconds !== null) player.seek(startSeconds * 1000, { play: false });
  loadRelated(asset, similar, duplicates, token);
}

// The picture or the video, with boxes where text was read on it; under a video, its scrub
// bar and its shots.
function assetMedia(asset, ocr, player) {
  if (player && player.audio) {
    return h('div', { class: 'media' }, h('figure', { class: 'figure audio' }, player.video, player.note));
  }
  const frame = h('div', { class: 'frame' }, player ? player.video : picture(asset, { eager: true }));
  for (const line of ocr) {
    const rect = rectOf(line.place);
    if (!rect || !(asset.thumbnail || player)) continue;
    const start = startOf(line.place);
    frame.append(h('span', {
      class: 'ocr-box',
      title: (line.value && line.value.text) || '',
      style: `left:${rect.x * 100}%;top:${rect.y * 100}%;width:${rect.w * 100}%;height:${rect.h * 100}%`,
      // A box on a video shows while its line is on screen (followBoxes).
      'data-start': start,
      'data-end': start === null ? null : line.place.end_ms,
      hidden: start !== null,
    }));
  }
  frame.append(h('span', { class: 'veil' }, 'Sensitive — click to show'));
  const figure = h('figure', { class: 'figure' }, frame);
  const media = h('div', { class: 'media' }, figure);
  if (player) {
    frame.classList.add('video-frame');
    // A tall video fits the screen; the frame hugs the picture so the boxes stay on it.
    if (asset.width && asset.height) frame.style.maxWidth = `calc(75vh * ${asset.width / asset.height})`;
    followBoxes(player.video, frame);
    figure.append(...[player.note, player.scrub].filter(Boolean));
    if (player.shots) media.append(player.shots);
  }
  if (ocr.length) {
    const where = player ? 'boxes on the video while it shows them' : 'boxes on the picture';
    figure.append(h('figcaption', {}, `${ocr.length} line${ocr.length === 1 ? '' : 's'} of text read (${where})`));
  }
  if (isBlurred(asset)) cover(asset, media, frame, player ? [player.video, player.scrub, player.shots] : []);
  return media;
}

// A sensitive asset is blurred (its picture or video, storyboard and keyframes) until the user
// asks to see it: the frame is the button that does, and until then the player cannot be used.
function cover(asset, media, frame, parts) {
  const covered = parts.filter(Boolean);
  media.classList.add('blurred');
  frame.tabIndex = 0;
  frame.setAttribute('role', 'button');
  for (const part of covered) part.inert = true;
  const reveal = (event) => {
    if (event.type === 'keydown' && event.key !== 'Enter' && event.key !== ' ') return;
    event.preventDefault();
    state.revealed.add(asset.id);
    media.classList.remove('blurred');
    frame.removeAttribute('role');
    frame.removeAttribute('tabindex');
    for (const part of covered) part.inert = false;
    frame.removeEventListener('click', reveal);
    frame.removeEventListener('keydown', reveal);
  };
  frame.addEventListener('click', reveal);
  frame.addEventListener('keydown', reveal);
}

// The details beside the picture: the buttons, the metadata, and what analysis found.
function assetSide(asset, detail, ocr, player) {
  const metadata = detail.metadata || {};
  const rows = [
    ['Name', asset.name],
    ['Kind', asset.kind],
    ['Type', asset.mime],
    ['Size', `${humanSize(asset.size)} (${asset.size} bytes)`],
    ['Collection', asset.collection],
    ['Ingested', formatMillis(asset.ingested_at)],
    ['Captured', asset.captured_at ? asset.captured_at.replace('T', ' ') : null],
    ['Dimensions', asset.width && asset.height ? `${asset.width} × ${asset.height}` : null],
    ['Duration', metadata.duration_ms ? clock(metadata.duration_ms) : null],
    ['Sensitive score', asset.sensitive ? `${Number(asset.sensitive.score).toFixed(2)}${asset.sensitive.blur ? ' (blurred)' : ''}` : null],
    ['Id', asset.id],
  ].filter(([, value]) => value !== null && value !== undefined && value !== '');
  const sources = detail.sources || [];
  const table = h(
    'table',
    { class: 'meta' },
    h('caption', { class: 'visually-hidden' }, 'Details'),
    h('tbody', {},
      rows.map(([key, value]) => h('tr', {}, h('th', { scope: 'row' }, key), h('td', {}, value))),
      sources.length
        ? h('tr', {}, h('th', { scope: 'row' }, sources.length === 1 ? 'Source' : 'Sources'),
          h('td', {}, h('ul', { class: 'plain' }, sources.map((s) => h('li', {}, h('code', {}, s.path))))))
        : null),
  );

  const labels = labelItems(detail, player);
  const texts = insightsOf(detail, 'text');
  const said = transcriptOf(detail);
  const languages = [...new Set(
    [...insightsOf(detail, 'language'), ...ocr, ...texts, ...said]
      .map((i) => i.language || (i.kind === 'language' && i.value && (i.value.language || i.value.code)))
      .filter(Boolean),
  )];

  return h('div', { class: 'side' },
    h('p', { class: 'buttons' },
      h('a', { class: 'button', id: 'download', href: asset.original, download: asset.name }, 'Download original'),
      can('admin') ? h('button', { type: 'button', class: 'danger', id: 'delete', onclick: () => deleteAsset(asset) }, 'Delete') : null),
    table,
    labels.length
      ? h('section', { 'aria-labelledby': 'labels-title' },
        h('h2', { id: 'labels-title' }, 'Labels'),
        h('ul', { class: 'labels', id: 'labels' }, labels))
      : null,
    languages.length ? h('p', {}, h('strong', {}, 'Language: '), languages.join(', ')) : null,
    untranslated(detail).map((note) => h('p', { class: 'hint untranslated' }, `Not translated: ${note}`)),
    said.length
      ? h('section', { 'aria-labelledby': 'transcript-title' },
        h('h2', { id: 'transcript-title' }, 'What was said'),
        transcriptSwitch(detail, said),
        h('ol', { class: 'ocr-lines', id: 'transcript' }, transcriptItems(detail, said, player)))
      : null,
    ocr.length
      ? h('section', { 'aria-labelledby': 'ocr-title' },
        h('h2', { id: 'ocr-title' }, player ? 'Text in the video' : 'Text in the picture'),
        h('ol', { class: 'ocr-lines', id: 'ocr-lines' }, ocrItems(detail, ocr, player)))
      : null,
    texts.length
      ? h('section', { 'aria-labelledby': 'text-title' },
        h('h2', { id: 'text-title' }, 'Text'),
        texts.slice(0, 3).map((t) => {
          const body = (t.value && t.value.text) || '';
          const page = t.place && t.place.type === 'page' ? `Page ${t.place.page}: ` : '';
          const start = player ? startOf(t.place) : null;
          const excerpt = h('p', { class: 'excerpt' }, start === null ? null : [seekButton(player, start), ' '], page,
            body.length > 600 ? `${body.slice(0, 600)}…` : body);
          return sideBySide(detail, t, excerpt, 600);
        }),
        texts.length > 3 ? h('p', { class: 'hint' }, `and ${texts.length - 3} more pages`) : null)
      : null,
  );
}

// The labels, best first. A video's label found at several moments is listed once, with
// buttons that play it from the first few of them.
function labelItems(detail, player) {
  const groups = new Map();
  for (const label of insightsOf(detail, 'label')) {
    const name = (label.value && label.value.name) || '?';
    const key = player ? name : Symbol(name);
    const group = groups.get(key) || { name, confidence: null, moments: [] };
    const c = label.confidence;
    if (c !== null && c !== undefined && (group.confidence === null || c > group.confidence)) group.confidence = c;
    const start = player ? startOf(label.place) : null;
    if (start !== null) group.moments.push(start);
    groups.set(key, group);
  }
  return [...groups.values()]
    .sort((a, b) => (b.confidence || 0) - (a.confidence || 0))
    .map((g) => h('li', {}, h('span', {}, g.name), ' ',
      h('span', { class: 'confidence' }, g.confidence === null ? '' : percent(g.confidence)),
      g.moments.sort((a, b) => a - b).slice(0, MOMENTS).flatMap((ms) => [' ', seekButton(player, ms)])));
}

// The lines of text read; on a video, in the order they appear, each a button that plays
// the video from there.
function ocrItems(detail, ocr, player) {
  const timed = (line) => (player ? startOf(line.place) : null);
  const lines = player ? ocr.slice().sort((a, b) => (timed(a) ?? 0) - (timed(b) ?? 0)) : ocr;
  return lines.map((line) => {
    const text = sideBySide(detail, line, (line.value && line.value.text) || '');
    const start = timed(line);
    if (start === null) return h('li', {}, text);
    return h('li', {}, h('button', { type: 'button', class: 'line', onclick: () => player.seek(start) },
      h('span', { class: 'moment' }, clock(start)), ' ', text));
  });
}

// The transcript's segments with a time, in the order they were said.
function transcriptOf(detail) {
  return insightsOf(detail, 'transcript_segment')
    .filter((s) => startOf(s.place) !== null && s.value && s.value.text)
    .sort((a, b) => a.place.start_ms - b.place.start_ms);
}

// Each segment a button that plays from where it was said, its language beside it when the
// recording has more than one.
function transcriptItems(detail, said, player) {
  const several = new Set(said.map((s) => s.language)).size > 1;
  return said.map((s) => {
    const start = s.place.start_ms;
    const lang = several && s.language ? h('span', { class: 'lang', lang: s.language }, ` [${s.language}]`) : null;
    const text = sideBySide(detail, s, h('span', { lang: s.language || null }, s.value.text));
    if (!player) return h('li', {}, h('span', { class: 'moment' }, clock(start)), ' ', text, lang);
    return h('li', {}, h('button', { type: 'button', class: 'line', 'data-start': start, onclick: () => player.seek(start) },
      h('span', { class: 'moment' }, clock(start)), ' ', text, lang));
  });
}

// Which languages of the transcript to show, when it was translated: the original, a
// translation, or both side by side (the default). It switches a class on the list.
function transcriptSwitch(detail, said) {
  const targets = [...new Set(said.flatMap((s) => translationsOf(detail, s).map((t) => t.language)))];
  if (targets.length === 0) return null;
  const select = h('select', {
    id: 'transcript-language',
    onchange: () => {
      const list = $('transcript');
      list.dataset.show = select.value;
      for (const node of list.querySelectorAll('.side-by-side > div')) {
        const isOriginal = !node.classList.contains('translation');
        node.hidden = !(select.value === 'both' || (select.value === 'original' ? isOriginal : node.lang === select.value));
      }
    },
  },
  h('option', { value: 'both' }, 'Original and translation'),
  h('option', { value: 'original' }, 'Original only'),
  targets.map((lang) => h('option', { value: lang }, `${languageName(lang)} only`)));
  return h('p', { class: 'switch' }, h('label', { for: 'transcript-language' }, 'Show: '), select);
}

// The captions tracks of a video or a recording: everything said, shown by default (a browser
// shows a video's; the transcript list serves a recording), and where several languages are
// spoken or the transcript was translated, one track for each language.
function captionTracks(asset, detail) {
  const said = transcriptOf(detail);
  const languages = [...new Set([
    ...said.map((s) => s.language),
    ...said.flatMap((s) => translationsOf(detail, s).map((t) => t.language)),
  ].filter(Boolean))];
  if (languages.length === 0) return [];
  const url = `/api/v1/assets/${encodeURIComponent(asset.id)}/captions.vtt`;
  const all = h('track', {
    kind: 'captions',
    src: languages.length === 1 ? `${url}?lang=${encodeURIComponent(languages[0])}` : url,
    srclang: languages[0],
    label: languages.length === 1 ? languageName(languages[0]) : 'All languages',
    default: true,
  });
  if (languages.length === 1) return [all];
  return [all, ...languages.map((lang) => h('track', {
    kind: 'captions',
    src: `${url}?lang=${encodeURIComponent(lang)}`,
    srclang: lang,
    label: languageName(lang),
  }))];
}

// A language's name in the browser's language ("es" → "Spanish"), or the code.
function languageName(code) {
  try {
    return new Intl.DisplayNames([navigator.language || 'en'], { type: 'language' }).of(code) || code;
  } catch {
    return code;
  }
}

// Moves `element` (a video or audio element) to `ms` and plays from there; before the
// metadata has come, the position waits for it.
function seeker(element) {
  return (ms, { play = true } = {}) => {
    const go = () => {
      element.currentTime = ms / 1000;
      // play() is refused without a gesture where autoplay is blocked: the position stays set.
      if (play) element.play().catch(() => {});
    };
    if (element.readyState >= HTMLMediaElement.HAVE_METADATA) go();
    else element.addEventListener('loadedmetadata', go, { once: true });
  };
}

// The player of a recording: the original (browsers play WAV, MP3, AAC, Opus, FLAC), a note
// for when this one cannot, and `seek`.
function audioPlayer(asset, detail) {
  const audio = h('audio', {
    id: 'player',
    controls: true,
    preload: 'metadata',
    src: asset.original,
    'aria-label': asset.name,
  }, captionTracks(asset, detail));
  const note = h('p', { class: 'error', role: 'alert', hidden: true });
  audio.addEventListener('error', () => {
    note.textContent = `This browser cannot play this recording (${asset.mime}): download the original to listen to it.`;
    note.hidden = false;
  });
  return { video: audio, audio: true, note, seek: seeker(audio), scrub: null, shots: null };
}

// Similar images and near-duplicates, each filled when its answer comes (or says why not).
function loadRelated(asset, similar, duplicates, token) {
  const fill = (section, items, empty) => {
    if (token !== state.routeToken) return;
    const note = section.querySelector('p.hint');
    section.dataset.state = 'done';
    if (items.length === 0) {
      note.textContent = empty;
      return;
    }
    note.remove();
    section.append(h('ul', { class: 'grid small' }, items));
  };
  const failed = (section, err) => {
    if (token !== state.routeToken || err.status === 401) return;
    const note = section.querySelector('p.hint');
    section.dataset.state = 'failed';
    note.textContent = err.message;
  };
  const id = encodeURIComponent(asset.id);
  api(`/api/v1/assets/${id}/similar?limit=12`)
    .then((found) => fill(similar, found.hits.filter((x) => x.asset.id !== asset.id).map(card), 'No similar images.'))
    .catch((err) => failed(similar, err));
  api(`/api/v1/assets/${id}/duplicates`)
    // Only near ones: an exact copy of the same bytes is this very asset (stored once).
    .then((found) => fill(duplicates, (found.near || []).map((n) => card({
      asset: n.asset,
      reasons: [{ type: 'similar', similarity: n.similarity }],
    })), 'No near-duplicates.'))
    .catch((err) => failed(duplicates, err));
}

async function deleteAsset(asset) {
  if (!confirm(`Delete ${asset.name}? Its original and everything derived from it go too.`)) return;
  try {
    await api(`/api/v1/assets/${encodeURIComponent(asset.id)}`, { method: 'DELETE' });
  } catch (err) {
    alert(err.message);
    return;
  }
  state.shown = null;
  $('grid').replaceChildren();
  location.hash = state.lastSearch;
  loadCollections();
  pollStatus();
}

// ---------------------------------------------------------------------------------------------
// Video: the player, its scrub bar with the storyboard, the shot strip
// ---------------------------------------------------------------------------------------------

// What the browser plays: the preview made for browsers when its codecs are not ones they
// play, else the original (both answer range requests, so seeking does not load it all).
function videoSource(asset, detail) {
  const preview = insightsOf(detail, 'preview').find((i) => i.value && i.value.name);
  return preview ? `/api/v1/assets/${encodeURIComponent(asset.id)}/preview` : asset.original;
}

// The video's storyboard, if it has a usable one: one sprite of `tiles` pictures of
// `tile_width` × `tile_height` in rows of `columns`, tile n showing the moment n × interval_ms.
function storyboardOf(detail) {
  const board = insightsOf(detail, 'storyboard').map((i) => i.value).find(Boolean);
  const positive = (n) => Number.isFinite(n) && n > 0;
  if (!board || typeof board.sprite !== 'string') return null;
  return ['tile_width', 'tile_height', 'columns', 'tiles', 'interval_ms'].every((k) => positive(board[k])) ? board : null;
}

// Where the storyboard's picture of the moment `ms` lies on its sprite, in pixels.
function tileAt(board, ms) {
  const n = Math.min(board.tiles - 1, Math.max(0, Math.floor(ms / board.interval_ms)));
  return { x: (n % board.columns) * board.tile_width, y: Math.floor(n / board.columns) * board.tile_height };
}

// The player of a video asset and what goes with it: a note for when the browser cannot play
// it, the scrub bar with the storyboard, the strip of shots, and `seek`.
function videoPlayer(asset, detail) {
  const video = h('video', {
    id: 'player',
    controls: true,
    preload: 'metadata',
    playsinline: true,
    src: videoSource(asset, detail),
    poster: asset.thumbnail || null,
    // Sizes the player before the video's metadata comes, so the page does not jump.
    width: asset.width || null,
    height: asset.height || null,
    'aria-label': asset.name,
  }, captionTracks(asset, detail));
  const note = h('p', { class: 'error', role: 'alert', hidden: true });
  video.addEventListener('error', () => {
    note.textContent = `This browser cannot play this video (${asset.mime}): download the original to watch it.`;
    note.hidden = false;
  });
  const seek = seeker(video);
  const board = storyboardOf(detail);
  const durationMs = (detail.metadata && detail.metadata.duration_ms) || 0;
  const shots = insightsOf(detail, 'shot')
    .filter((s) => startOf(s.place) !== null)
    .sort((a, b) => a.place.start_ms - b.place.start_ms);
  return {
    video,
    note,
    seek,
    scrub: board ? scrubBar(video, board, derivedUrl(asset, board.sprite), durationMs) : null,
    shots: shots.length ? shotStrip(asset, shots, video, seek) : null,
  };
}

// A bar under the video: the pointer over it shows the storyboard's picture of that moment,
// and a click, a drag or the arrow keys seek there (it is a range input).
function scrubBar(video, board, sprite, durationMs) {
  let duration = durationMs;
  let dragging = false;
  const input = h('input', {
    type: 'range',
    id: 'scrub',
    min: '0',
    max: String(duration / 1000),
    step: '0.1',
    value: '0',
    'aria-label': 'Position in the video',
    'aria-valuetext': `${clock(0)} of ${clock(duration)}`,
  });
  const tile = h('span', { class: 'storyboard-tile', style: `width:${board.tile_width}px;height:${board.tile_height}px` });
  tile.style.backgroundImage = `url("${sprite}")`;
  const time = h('span', { class: 'tip-time' });
  const tip = h('span', { class: 'scrub-tip', 'aria-hidden': 'true', hidden: true }, tile, time);
  const bar = h('div', { class: 'scrub' }, input, tip);

  const show = (ms) => {
    if (!(duration > 0)) return;
    const at = Math.min(duration, Math.max(0, ms));
    const { x, y } = tileAt(board, at);
    tile.style.backgroundPosition = `-${x}px -${y}px`;
    time.textContent = clock(at);
    tip.hidden = false;
    // Centred over the moment, but never past the ends of the bar.
    const width = bar.clientWidth;
    const left = (at / duration) * width - tip.offsetWidth / 2;
    tip.style.left = `${Math.max(0, Math.min(width - tip.offsetWidth, left))}px`;
  };
  const hide = () => {
    tip.hidden = true;
  };
  const stopDragging = (event) => {
    dragging = false;
    if (event.pointerType && event.pointerType !== 'mouse') hide(); // a finger lifted
  };
  input.addEventListener('pointermove', (e) => {
    const box = input.getBoundingClientRect();
    show(((e.clientX - box.left) / box.width) * duration);
  });
  input.addEventListener('pointerleave', () => {
    if (!dragging) hide();
  });
  input.addEventListener('pointerdown', () => {
    dragging = true;
  });
  for (const type of ['pointerup', 'pointercancel', 'change']) input.addEventListener(type, stopDragging);
  input.addEventListener('input', () => {
    video.currentTime = Number(input.value);
    show(Number(input.value) * 1000);
  });
  input.addEventListener('blur', hide);
  video.addEventListener('loadedmetadata', () => {
    if (Number.isFinite(video.duration) && video.duration > 0) {
      duration = video.duration * 1000;
      input.max = String(video.duration);
    }
  });
  video.addEventListener('timeupdate', () => {
    if (!dragging) input.value = String(video.currentTime);
    input.setAttribute('aria-valuetext', `${clock(video.currentTime * 1000)} of ${clock(duration)}`);
  });
  return bar;
}

// The shots in order, each a button with its keyframe, its start and how it begins, that
// plays the video from there. The shot on screen is marked as the video plays.
function shotStrip(asset, shots, video, seek) {
  const buttons = shots.map((shot, i) => {
    const start = shot.place.start_ms;
    const value = shot.value || {};
    return h('button', { type: 'button', class: 'shot', 'data-start': start, onclick: () => seek(start) },
      value.keyframe
        ? h('img', {
          src: derivedUrl(asset, value.keyframe),
          alt: '',
          loading: 'lazy',
          decoding: 'async',
          width: asset.width || null,
          height: asset.height || null,
        })
        : h('span', { class: 'no-keyframe' }),
      h('span', { class: 'visually-hidden' }, `Shot ${i + 1} at `),
      h('span', { class: 'shot-time' }, clock(start)),
      h('span', { class: 'visually-hidden' }, ', '),
      h('span', { class: 'shot-how' }, [value.transition, value.content].filter(Boolean).join(', ')));
  });
  const strip = h('ol', { class: 'shots', id: 'shots' }, buttons.map((b) => h('li', {}, b)));
  let current = null;
  const follow = () => {
    const ms = video.currentTime * 1000;
    // 1 ms of slack: a seek to a shot's start may land a rounding error before it.
    const now = buttons.filter((b) => Number(b.dataset.start) <= ms + 1).pop() || buttons[0];
    if (now === current) return;
    if (current) current.removeAttribute('aria-current');
    current = now;
    now.setAttribute('aria-current', 'true');
    keepInView(strip, now.parentElement);
  };
  follow();
  video.addEventListener('timeupdate', follow);
  return h('section', { class: 'shots-section', 'aria-labelledby': 'shots-title' },
    h('h2', { id: 'shots-title' }, 'Shots'), strip);
}

// Scrolls the strip, not the page, so that `item` is in view.
function keepInView(strip, item) {
  const left = item.offsetLeft;
  if (left < strip.scrollLeft || left + item.offsetWidth > strip.scrollLeft + strip.clientWidth) {
    strip.scrollLeft = left - (strip.clientWidth - item.offsetWidth) / 2;
  }
}

// Shows the boxes of the text read on a video while their lines are on screen.
function followBoxes(video, frame) {
  const boxes = Array.from(frame.querySelectorAll('.ocr-box[data-start]'));
  if (boxes.length === 0) return;
  const follow = () => {
    const ms = video.currentTime * 1000;
    for (const box of boxes) box.hidden = !(Number(box.dataset.start) <= ms && ms < Number(box.dataset.end));
  };
  follow();
  video.addEventListener('timeupdate', follow);
}

// ---------------------------------------------------------------------------------------------
// Upload
// ---------------------------------------------------------------------------------------------

function openUploadPanel() {
  $('upload-panel').hidden = false;
  $('upload-button').setAttribute('aria-expanded', 'true');
}

function closeUploadPanel() {
  const panel = $('upload-panel');
  if (panel.hidden) return;
  panel.hidden = true;
  $('upload-button').setAttribute('aria-expanded', 'false');
  $('upload-button').focus();
}

const STATUS_TEXT = {
  new: 'added',
  stored: 'added',
  duplicate: 'already here: same content as a stored asset',
  known: 'already uploaded',
  failed: 'failed',
};

// Sends the files in one multipart request: first the collection, then one `file` part each.
// XMLHttpRequest rather than fetch, because only it reports upload progress.
function upload(files) {
  if (!files.length || !can('ingest')) return;
  openUploadPanel();
  const collection = $('upload-collection').value.trim() || 'default';
  const names = files.map((f) => f.name).join(', ');
  const bar = h('progress', { max: 1, value: 0, 'aria-label': `Uploading ${names}` });
  const note = h('span', { class: 'hint' }, `Uploading ${files.length} file${files.length === 1 ? '' : 's'} to ${collection}…`);
  const results = h('ul', { class: 'plain results' });
  const item = h('li', { class: 'upload' }, h('div', { class: 'upload-files' }, names), bar, note, results);
  $('uploads').prepend(item);

  const form = new FormData();
  form.append('collection', collection);
  for (const file of files) form.append('file', file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open('POST', '/api/v1/assets');
  xhr.setRequestHeader('X-Aperture', '1');
  xhr.setRequestHeader('Accept', 'application/json');
  xhr.responseType = 'json';
  xhr.upload.addEventListener('progress', (e) => {
    if (e.lengthComputable) {
      bar.max = e.total;
      bar.value = e.loaded;
    }
  });
  xhr.addEventListener('load', () => {
    bar.hidden = true;
    const body = xhr.response;
    if (xhr.status === 401) {
      showSignIn('Your session ended; sign in again.');
      return;
    }
    if (xhr.status < 200 || xhr.status >= 300 || !body || !Array.isArray(body.files)) {
      const message = body && body.error ? body.error.message : `upload failed: ${xhr.status} ${xhr.statusText}`;
      note.replaceWith(h('p', { class: 'error', role: 'alert' }, message));
      item.dataset.state = 'failed';
      return;
    }
    // The new files' jobs are queued by now: until the next status answer says otherwise,
    // the indicator must not keep claiming "Up to date".
    if (body.files.some((f) => f.status === 'new' || f.status === 'stored')) {
      $('indexing-text').textContent = 'Indexing: new files queued';
    }
    const added = body.files.filter((f) => f.status !== 'failed').length;
    note.textContent = `${added} of ${body.files.length} stored in ${collection}`;
    results.replaceChildren(...body.files.map((f) => h('li', { 'data-status': f.status, 'data-name': f.name },
      f.asset ? h('a', { href: `#/asset/${encodeURIComponent(f.asset)}` }, f.name) : h('span', {}, f.name),
      ' — ',
      h('span', { class: `status status-${f.status}` }, STATUS_TEXT[f.status] || f.status),
      f.error ? h('span', { class: 'error' }, `: ${f.error}`) : null)));
    item.dataset.state = 'done';
    loadCollections();
    pollStatus();
    if (!$('search-view').hidden) runSearch();
    else state.shown = null;
  });
  xhr.addEventListener('error', () => {
    bar.hidden = true;
    note.replaceWith(h('p', { class: 'error', role: 'alert' }, 'upload failed: the server could not be reached'));
    item.dataset.state = 'failed';
  });
  xhr.send(form);
}

// Dragging files over the page shows where they will go. dragenter and dragleave fire for
// every child crossed, so a counter tells when the pointer has really left the page.
let dragDepth = 0;

function hasFiles(event) {
  return Boolean(event.dataTransfer && Array.from(event.dataTransfer.types || []).includes('Files'));
}

function hideDropOverlay() {
  dragDepth = 0;
  $('drop-overlay').hidden = true;
}

function wireDragAndDrop() {
  document.addEventListener('dragenter', (e) => {
    if (!hasFiles(e) || !can('ingest')) return;
    e.preventDefault();
    dragDepth += 1;
    $('drop-collection').textContent = $('upload-collection').value.trim() || 'default';
    $('drop-overlay').hidden = false;
  });
  document.addEventListener('dragover', (e) => {
    if (!hasFiles(e) || !can('ingest')) return;
    e.preventDefault(); // lets the drop happen instead of the browser opening the file
    e.dataTransfer.dropEffect = 'copy';
  });
  document.addEventListener('dragleave', (e) => {
    if (!hasFiles(e)) return;
    dragDepth -= 1;
    if (dragDepth <= 0) hideDropOverlay();
  });
  document.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    hideDropOverlay();
    upload(Array.from(e.dataTransfer.files));
  });
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

function wireEvents() {
  $('signin-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    searchFromControls({ force: true });
  });
  $('q').addEventListener('input', () => {
    // Typing from the asset page goes back to the results at once.
    if ($('search-view').hidden) searchFromControls();
    else scheduleSearch();
  });
  for (const id of ['kind', 'collection']) {
    $(id).addEventListener('change', () => searchFromControls());
  }
  $('more').addEventListener('click', () => runSearch({ more: true }));
  $('grid').addEventListener('click', onCardClick);
  $('asset-view').addEventListener('click', onCardClick);
  $('upload-button').addEventListener('click', () => {
    if ($('upload-panel').hidden) {
      openUploadPanel();
      $('choose-files').focus();
    } else {
      closeUploadPanel();
    }
  });
  $('upload-close').addEventListener('click', closeUploadPanel);
  $('choose-files').addEventListener('click', () => $('file-input').click());
  $('file-input').addEventListener('change', (e) => {
    upload(Array.from(e.target.files));
    e.target.value = ''; // choosing the same file again uploads it again
  });
  wireDragAndDrop();
  window.addEventListener('hashchange', route);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      if (!$('drop-overlay').hidden) hideDropOverlay();
      else closeUploadPanel();
      return;
    }
    // "/" jumps to the search box, as on many sites, unless the user is typing somewhere.
    const typing = e.target.closest && e.target.closest('input, textarea, select, [contenteditable]');
    if (e.key === '/' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey && state.me) {
      e.preventDefault();
      $('q').focus();
      $('q').select();
    }
  });
}

// The kinds the filter offers must be the ones the query language knows.
console.assert(KINDS.every((k) => document.querySelector(`#kind option[value="${k}"]`)), 'kind options');

start();
