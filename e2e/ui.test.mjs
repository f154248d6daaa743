// End-to-end test of Aperture's web page in headless Chromium, against a running server with
// real models: sign in, upload real photos (file picker and drag and drop), wait for them to
// be analysed, then search, open and look at them as a person would, on a desktop and on a
// phone, with the mouse and with the keyboard. scripts/e2e.sh starts the server and sets:
//
//   APERTURE_URL         the server, e.g. http://127.0.0.1:41234
//   APERTURE_TOKEN       a token with every scope (admin)
//   APERTURE_READ_TOKEN  a token with read, search and ingest only
//   APERTURE_SAMPLES     the sample media (scripts/fetch-samples.sh)
//   E2E_ARTIFACTS        where screenshots go
//   CHROMIUM             the browser (default /usr/bin/chromium)
//
// The tests run in order and build on each other: the uploads come first. The video is made
// here with ffmpeg (H.264, which Debian's Chromium plays), and uploaded after the photos have
// been counted.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the test with scripts/e2e.sh`);
  return value;
}

const URL_ = env('APERTURE_URL').replace(/\/$/, '');
const ADMIN_TOKEN = env('APERTURE_TOKEN');
const READ_TOKEN = env('APERTURE_READ_TOKEN');
const SAMPLES = env('APERTURE_SAMPLES');
const ARTIFACTS = process.env.E2E_ARTIFACTS || new URL('./artifacts', import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// Photos with known content (scripts/fetch-samples.sh; the model tests check the same):
// the skimage cat, whose top label names a cat; a bald eagle; and a scanned page of English
// text that OCR reads ("Region-based segmentation").
const CAT = path.join(SAMPLES, 'photos/skimage/chelsea.png');
const EAGLE = path.join(SAMPLES, 'photos/imagenet/imagenet_17_22.jpg');
const PAGE = path.join(SAMPLES, 'photos/skimage/page.png');

// Analysis runs real models on a small CPU: generous, but finite.
const INDEXING_TIMEOUT_MS = 240_000;

// A video of two shots, 3 s each, cut at 3 s: moving colours, then still colour bars.
const VIDEO_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'aperture-e2e-'));
const VIDEO = path.join(VIDEO_DIR, 'clapboard.mp4');
// MPEG-4 Part 2 in AVI: Chromium cannot play it, so the server makes a preview that it can.
const OLD_VIDEO = path.join(VIDEO_DIR, 'archive.avi');
// A telephone prompt (scripts/fetch-samples.sh) after 1.5 s of silence: "Weasels have eaten
// our phone system", said from about 1.5 s.
const WEASELS = path.join(SAMPLES, 'audio/tt-weasels.wav');
const CALL = path.join(VIDEO_DIR, 'call.wav');
// A Spanish notice, for translation.
const NOTICE = path.join(VIDEO_DIR, 'aviso.txt');
fs.writeFileSync(NOTICE, 'La farmacia de guardia está cerrada los domingos. Los vecinos piden agua potable.\n');

let browser;
let context; // signed in as admin
let page;
const pageErrors = [];
let videoId; // the uploaded video, and its detail once analysed
let videoDetail;

async function newPage(ctx) {
  const p = await ctx.newPage();
  p.setDefaultTimeout(30_000);
  // An exception in the page is a bug even when nothing visible breaks.
  p.on('pageerror', (err) => pageErrors.push(`${p.url()}: ${err.message}`));
  // So is anything the server's Content-Security-Policy blocks (an inline style, say).
  p.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) pageErrors.push(`${p.url()}: ${msg.text()}`);
  });
  return p;
}

async function screenshot(p, name) {
  await p.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

// Puts a query in the search box, replacing what is there, and waits for its results: the
// grid is busy from the keystroke until the answer is shown.
async function search(p, query) {
  await p.getByRole('searchbox', { name: 'Search' }).fill(query);
  // The page writes a search into its address before it runs it (after a pause in typing):
  // once the address has this one, the grid's busy flag is this search's, not the last one's.
  await p.waitForFunction((q) => {
    const m = /^#\/search\?(.*)$/.exec(location.hash);
    if (m === null) return q === '';
    return (new URLSearchParams(m[1]).get('q') || '') === q;
  }, query);
  await p.locator('#grid[aria-busy="false"]').waitFor({ state: 'attached' });
}

function card(p, name) {
  return p.locator('#grid a.card', { has: p.locator('.name', { hasText: name }) });
}

// Signs in through the form with a token; returns once the header is there.
async function signInWithForm(p, token) {
  await p.goto(`${URL_}/`);
  await p.getByLabel('API token').fill(token);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('searchbox', { name: 'Search' }).waitFor();
}

async function assetIdOf(p, name) {
  const id = await card(p, name).first().getAttribute('data-id');
  assert.ok(id, `no id on the card of ${name}`);
  return id;
}

// Asks the API for the asset's detail until analysis has written insights of every kind named.
async function waitForInsights(p, id, kinds, timeout) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const detail = await p.evaluate(async (id) => (await fetch(`/api/v1/assets/${id}`)).json(), id);
    const have = new Set((detail.insights || []).map((i) => i.kind));
    if (kinds.every((k) => have.has(k))) return detail;
    assert.ok(Date.now() < deadline, `no ${kinds.join(' and ')} on ${id} after ${timeout} ms, only ${[...have]}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// Passes the server's JSON answers to requests for `url` through `edit`. An answer the page no
// longer waits for (a newer search replaced it, the page reloaded) is let go.
async function editAnswers(p, url, edit) {
  await p.route(url, async (route) => {
    try {
      const res = await route.fetch();
      const body = await res.json();
      edit(body);
      await route.fulfill({ response: res, json: body });
    } catch (_) {
      // The request was dropped while it was under way: nothing waits for it.
    }
  });
}

// Resolves once the page's player has its metadata and stands at `seconds` (to a frame).
async function playerAt(p, seconds) {
  await p.waitForFunction((t) => {
    const v = document.getElementById('player');
    return v && v.readyState >= 1 && Math.abs(v.currentTime - t) < 0.04;
  }, seconds);
}

describe('Aperture web page', { concurrency: 1 }, () => {
  before(async () => {
    for (const file of [CAT, EAGLE, PAGE]) {
      assert.ok(fs.existsSync(file), `${file} is missing: run scripts/fetch-samples.sh`);
    }
    execFileSync('ffmpeg', [
      '-v', 'error', '-y',
      '-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=25:d=3',
      '-f', 'lavfi', '-i', 'smptebars=s=320x240:r=25:d=3',
      '-filter_complex', '[0][1]concat=n=2:v=1:a=0',
      '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-movflags', '+faststart',
      VIDEO,
    ]);
    execFileSync('ffmpeg', [
      '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=25:d=3',
      '-c:v', 'mpeg4', '-q:v', '5', OLD_VIDEO,
    ]);
    execFileSync('ffmpeg', [
      '-v', 'error', '-y', '-f', 'lavfi', '-t', '1.5', '-i', 'anullsrc=r=8000:cl=mono', '-i', WEASELS,
      '-filter_complex', '[0][1]concat=n=2:v=0:a=1', CALL,
    ]);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        '--disable-dev-shm-usage',
      ],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await newPage(context);
  });

  after(async () => {
    await browser?.close();
    fs.rmSync(VIDEO_DIR, { recursive: true, force: true });
  });

  it('refuses a wrong token with a message', async () => {
    const ctx = await browser.newContext();
    const p = await newPage(ctx);
    await p.goto(`${URL_}/`);
    await p.getByLabel('API token').fill('apt_this-is-not-a-token');
    await p.getByRole('button', { name: 'Sign in' }).click();
    const alert = p.locator('#signin-error');
    await alert.waitFor({ state: 'visible' });
    assert.equal(await alert.getAttribute('role'), 'alert');
    assert.match(await alert.innerText(), /\S/, 'the error says something');
    assert.ok(await p.getByLabel('API token').isVisible(), 'still on the sign-in form');
    assert.ok(await p.locator('#top').isHidden(), 'nothing of the app is shown');
    await ctx.close();
  });

  it('signs in with a token in the link and takes it out of the address', async () => {
    await page.goto(`${URL_}/#token=${encodeURIComponent(ADMIN_TOKEN)}`);
    // The link asks first (a link from someone else must not sign you in as them).
    const confirm = page.getByRole('button', { name: 'Sign in with this link' });
    await confirm.waitFor();
    assert.ok(!page.url().includes(ADMIN_TOKEN), `token left in ${page.url()}`);
    assert.match(await page.locator('#link-who').textContent(), /signs you in as "/);
    assert.equal((await context.cookies(URL_)).length, 0, 'signed in before the click');
    await confirm.click();
    await page.getByRole('searchbox', { name: 'Search' }).waitFor();
    const cookies = await context.cookies(URL_);
    assert.ok(cookies.length > 0, 'a session cookie was set');
    assert.ok(cookies.every((c) => c.httpOnly), 'the session cookie is HttpOnly');
    // Reloading keeps the session: the cookie, not the token, signs in now.
    await page.reload();
    await page.getByRole('searchbox', { name: 'Search' }).waitFor();
  });

  it('uploads through the file picker and by drag and drop', async () => {
    await page.getByRole('button', { name: 'Upload' }).click();
    const panel = page.getByRole('dialog', { name: 'Upload' });
    await panel.waitFor();
    await panel.getByLabel('Collection').fill('e2e');
    // What the indexing indicator says from now on, for the next test.
    await page.evaluate(() => {
      const text = document.getElementById('indexing-text');
      const bar = document.getElementById('indexing-progress');
      window.e2eIndexing = [];
      new MutationObserver(() => window.e2eIndexing.push({ text: text.textContent, bar: !bar.hidden }))
        .observe(document.getElementById('indexing'), { subtree: true, childList: true, characterData: true, attributes: true });
    });

    // Two files through the (hidden) file input, as the "Choose files…" button opens it.
    await page.locator('#file-input').setInputFiles([CAT, EAGLE]);
    for (const name of ['chelsea.png', 'imagenet_17_22.jpg']) {
      await panel.locator(`li[data-name="${name}"]:is([data-status="new"], [data-status="stored"])`).waitFor();
    }

    // One file dropped onto the page: a DataTransfer made in the page holds a File of the
    // sample's bytes, and the drag events go to the body as a browser would send them.
    const bytes = fs.readFileSync(PAGE).toString('base64');
    await page.evaluate(({ bytes, name }) => {
      const raw = Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([raw], name, { type: 'image/png' }));
      window.e2eTransfer = transfer;
      for (const type of ['dragenter', 'dragover']) {
        document.body.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
      }
    }, { bytes, name: 'page.png' });
    await page.locator('#drop-overlay').waitFor({ state: 'visible' });
    assert.match(await page.locator('#drop-overlay').innerText(), /e2e/, 'the overlay names the collection');
    await page.evaluate(() => {
      document.body.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: window.e2eTransfer }));
    });
    await page.locator('#drop-overlay').waitFor({ state: 'hidden' });
    await panel.locator('li[data-name="page.png"]:is([data-status="new"], [data-status="stored"])').waitFor();

    // The same bytes again are recognised, not stored twice.
    await page.locator('#file-input').setInputFiles([CAT]);
    await panel
      .locator('li.upload')
      .first()
      .locator('li[data-name="chelsea.png"]:is([data-status="duplicate"], [data-status="known"])')
      .waitFor();

    // The new files are in the newest-assets grid, and their collection in the filter.
    for (const name of ['chelsea.png', 'imagenet_17_22.jpg', 'page.png']) {
      await card(page, name).waitFor();
    }
    await page.locator('#collection option[value="e2e"]').waitFor({ state: 'attached' });
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
  });

  it('shows indexing progress until everything is analysed', { timeout: INDEXING_TIMEOUT_MS + 30_000 }, async () => {
    const text = page.locator('#indexing-text');
    await page.locator('#indexing-text', { hasText: /^Up to date$/ }).waitFor({ timeout: INDEXING_TIMEOUT_MS });
    assert.ok(await page.locator('#indexing-progress').isHidden(), 'no progress bar when idle');
    assert.equal(await page.locator('#indexing').getAttribute('role'), 'status');
    assert.equal(await text.innerText(), 'Up to date');
    // On the way it said how far along it was, with a progress bar.
    const seen = await page.evaluate(() => window.e2eIndexing);
    assert.ok(
      seen.some((s) => /^Indexing: \d+ of \d+ jobs done$/.test(s.text) && s.bar),
      `progress shown: ${JSON.stringify(seen.map((s) => s.text))}`,
    );
    // Every analysis worked with the real models: the indicator's tooltip counts failures.
    assert.match(await page.locator('#indexing').getAttribute('title'), /^3 assets; 0 jobs failed$/);
  });

  it('finds the cat by its label and says why', async () => {
    await search(page, 'cat');
    const hit = card(page, 'chelsea.png');
    await hit.waitFor();
    assert.match(await hit.locator('.why').innerText(), /\S/, 'the hit says why it matched');
    const img = hit.locator('img');
    assert.match(await img.getAttribute('src'), /^\/api\/v1\/assets\/[^/]+\/thumbnail$/);
    assert.equal(await img.getAttribute('loading'), 'lazy');
    // The thumbnail really loads.
    await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
    await screenshot(page, 'search-results');

    // The kind filter narrows the search: no video shows a cat.
    await page.getByLabel('Kind').selectOption('video');
    await page.locator('#results-summary', { hasText: 'No results' }).waitFor();
    assert.equal(await card(page, 'chelsea.png').count(), 0);
    await page.getByLabel('Kind').selectOption('');
    await card(page, 'chelsea.png').waitFor();
  });

  it('finds the scanned page by a word OCR read, and marks the word', async () => {
    await search(page, 'segmentation');
    const hit = card(page, 'page.png');
    await hit.waitFor();
    const marks = await hit.locator('.why mark').allInnerTexts();
    assert.ok(marks.some((m) => /segment/i.test(m)), `marked: ${JSON.stringify(marks)}`);
  });

  it('shows a bad query\'s error under the box', async () => {
    await search(page, 'cat kind:banana');
    const error = page.locator('#query-error');
    await error.waitFor({ state: 'visible' });
    assert.equal(await error.getAttribute('role'), 'alert');
    assert.match(await error.innerText(), /banana/);
    await search(page, 'cat');
    await error.waitFor({ state: 'hidden' });
    await card(page, 'chelsea.png').waitFor();
  });

  it('keeps the search in the address: a link runs it, Back returns to the one before', async () => {
    const p = await newPage(context);
    const box = p.getByRole('searchbox', { name: 'Search' });
    const summary = p.locator('#results-summary');
    // A shared link to a result page shows that search.
    await p.goto(`${URL_}/#/search?q=cat`);
    await card(p, 'chelsea.png').waitFor();
    assert.equal(await box.inputValue(), 'cat');
    await summary.filter({ hasText: '“cat”' }).waitFor();

    await search(p, 'segmentation');
    await card(p, 'page.png').waitFor();
    assert.match(p.url(), /#\/search\?q=segmentation$/);
    await p.getByLabel('Kind').selectOption('video');
    await p.waitForURL(/#\/search\?q=segmentation&kind=video$/);
    await summary.filter({ hasText: 'No results' }).waitFor();

    // Back and Forward walk the searches, box and filters included.
    await p.goBack();
    await p.waitForURL(/#\/search\?q=segmentation$/);
    await card(p, 'page.png').waitFor();
    assert.equal(await p.getByLabel('Kind').inputValue(), '');
    await p.goBack();
    await p.waitForURL(/#\/search\?q=cat$/);
    await summary.filter({ hasText: '“cat”' }).waitFor();
    assert.equal(await box.inputValue(), 'cat');
    await card(p, 'chelsea.png').waitFor();
    await p.goForward();
    await p.waitForURL(/#\/search\?q=segmentation$/);
    await summary.filter({ hasText: '“segmentation”' }).waitFor();
    assert.equal(await box.inputValue(), 'segmentation');

    // Back from an asset returns to its search, kept as it was.
    await card(p, 'page.png').click();
    await p.getByRole('heading', { level: 1, name: 'page.png' }).waitFor();
    assert.equal(await p.getByRole('link', { name: '← Back to search' }).getAttribute('href'), '#/search?q=segmentation');
    await p.goBack();
    await card(p, 'page.png').waitFor();
    assert.equal(await box.inputValue(), 'segmentation');
    await p.close();
  });

  it('shows an asset page with what a person needs', async () => {
    await search(page, 'cat');
    const id = await assetIdOf(page, 'chelsea.png');
    await card(page, 'chelsea.png').click();
    await page.waitForURL(`**/#/asset/${id}`);
    await page.getByRole('heading', { level: 1, name: 'chelsea.png' }).waitFor();

    const details = page.locator('table.meta');
    const cell = (row) => details.locator('tr', { has: page.locator('th', { hasText: row }) }).locator('td');
    assert.equal(await cell('Type').innerText(), 'image/png');
    assert.equal(await cell('Collection').innerText(), 'e2e');
    assert.match(await cell('Size').innerText(), new RegExp(`\\(${fs.statSync(CAT).size} bytes\\)`));
    assert.match(await cell('Dimensions').innerText(), /^\d+ × \d+$/);

    const labels = await page.locator('#labels li').allInnerTexts();
    assert.ok(labels.length > 0, 'the cat has labels');
    assert.ok(labels.some((l) => /cat/i.test(l)), `a label names a cat: ${JSON.stringify(labels)}`);
    assert.ok(labels.every((l) => /\d+%$/.test(l)), `labels show a confidence: ${JSON.stringify(labels)}`);

    const download = page.getByRole('link', { name: 'Download original' });
    assert.equal(await download.getAttribute('href'), `/api/v1/assets/${id}/original`);
    assert.notEqual(await download.getAttribute('download'), null);
    // The link gives back the very bytes uploaded.
    const fetched = await page.evaluate(async (href) => {
      const res = await fetch(href, { credentials: 'same-origin' });
      return { status: res.status, size: (await res.arrayBuffer()).byteLength };
    }, await download.getAttribute('href'));
    assert.deepEqual(fetched, { status: 200, size: fs.statSync(CAT).size });

    // Similar images and near-duplicates each end up either with pictures or with a sentence;
    // the server answers both (an error shown there would be data-state="failed").
    for (const section of ['#similar', '#duplicates']) {
      await page.locator(`${section}:is([data-state="done"], [data-state="failed"])`).waitFor();
      assert.equal(await page.locator(section).getAttribute('data-state'), 'done', await page.locator(section).innerText());
    }
    // The other pictures are similar to some degree; the cat is not shown as similar to itself.
    const similar = await page.locator('#similar a.card .name').allInnerTexts();
    assert.ok(similar.length > 0, 'similar images are shown');
    assert.ok(!similar.includes('chelsea.png'), `similar: ${JSON.stringify(similar)}`);
    // Nothing uploaded looks like a copy of the cat.
    assert.equal(await page.locator('#duplicates a.card').count(), 0);
    assert.equal(await page.locator('#duplicates p.hint').innerText(), 'No near-duplicates.');
    assert.equal(await page.getByRole('button', { name: 'Delete' }).count(), 1, 'an admin may delete');
    await screenshot(page, 'asset-page');
  });

  it('draws the lines OCR read over the scanned page', async () => {
    await search(page, 'segmentation');
    await card(page, 'page.png').click();
    await page.getByRole('heading', { level: 1, name: 'page.png' }).waitFor();
    const boxes = page.locator('.frame .ocr-box');
    await boxes.first().waitFor();
    const lines = await page.locator('#ocr-lines li').allInnerTexts();
    assert.equal(await boxes.count(), lines.length, 'one box per line read');
    assert.ok(lines.some((l) => /segmentation/i.test(l)), `lines read: ${JSON.stringify(lines)}`);
    const titles = await boxes.evaluateAll((all) => all.map((b) => b.title));
    assert.deepEqual(titles, lines, 'each box carries its text');
    // The boxes lie on the picture, not somewhere else on the page (a box read at the very
    // edge may overhang it a little, so its centre is what must be inside).
    const img = await page.locator('.frame img').boundingBox();
    assert.ok(img.width > 200, `the picture is shown large (${img.width}px)`);
    for (const box of await boxes.evaluateAll((all) => all.map((b) => b.getBoundingClientRect().toJSON()))) {
      assert.ok(box.width > 0 && box.height > 0, 'a box has a size');
      const [cx, cy] = [box.x + box.width / 2, box.y + box.height / 2];
      const inside = cx >= img.x && cx <= img.x + img.width && cy >= img.y && cy <= img.y + img.height;
      assert.ok(inside, `box ${JSON.stringify(box)} on picture ${JSON.stringify(img)}`);
    }
    await screenshot(page, 'asset-page-ocr');
  });

  it('blurs sensitive pictures until asked, then opens on the second click', async () => {
    // The samples are harmless, so the server's answer is passed through with the first asset
    // marked sensitive: what is under test is how the page treats such an asset.
    await editAnswers(page, '**/api/v1/assets?*', (body) => {
      if (body.items.length > 0) body.items[0].sensitive = { score: 0.97, blur: true };
    });
    try {
      await page.goto(`${URL_}/#/`);
      await page.reload(); // a fresh grid, fetched through the route
      const blurred = page.locator('#grid a.card.blurred').first();
      await blurred.waitFor();
      const id = await blurred.getAttribute('data-id');
      const filter = await blurred.locator('img, .placeholder').first().evaluate((el) => getComputedStyle(el).filter);
      assert.match(filter, /blur\(24px\)/);
      await blurred.getByText('Sensitive — click to show').waitFor();
      const sensitive = page.locator(`#grid a.card[data-id="${id}"]`);
      await sensitive.click();
      assert.ok(page.url().endsWith('#/'), 'the first click only shows it');
      assert.ok(!(await sensitive.getAttribute('class')).includes('blurred'));
      assert.equal(await sensitive.locator('img, .placeholder').first().evaluate((el) => getComputedStyle(el).filter), 'none');
      await sensitive.click();
      await page.waitForURL(`**/#/asset/${id}`);
    } finally {
      await page.unroute('**/api/v1/assets?*');
    }
  });

  it('works from the keyboard: / to search, Tab to a result, Enter to open', async () => {
    await page.goto(`${URL_}/#/`);
    await page.reload();
    await page.locator('#grid a.card').first().waitFor();
    await page.locator('body').click({ position: { x: 5, y: 400 } });
    await page.keyboard.press('/');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'q', '/ focuses the search box');
    await page.keyboard.type('cat');
    await page.locator('#grid[aria-busy="false"]').waitFor({ state: 'attached' });
    await card(page, 'chelsea.png').waitFor();
    const first = await page.locator('#grid a.card .name').first().innerText();
    let reached = null;
    for (let i = 0; i < 20 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => {
        const el = document.activeElement;
        return el && el.matches('#grid a.card') ? el.querySelector('.name').textContent : null;
      });
    }
    assert.equal(reached, first, 'Tab reaches the first result');
    const focusRing = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(focusRing, 'none', 'the focused result is visibly marked');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: first }).waitFor();
    assert.match(page.url(), /#\/asset\//);
  });

  it('uploads a video and finds its shots', { timeout: INDEXING_TIMEOUT_MS + 30_000 }, async () => {
    await page.goto(`${URL_}/#/`);
    await page.locator('#file-input').setInputFiles([VIDEO]);
    const panel = page.getByRole('dialog', { name: 'Upload' });
    const link = panel.locator('li[data-name="clapboard.mp4"]:is([data-status="new"], [data-status="stored"]) a');
    await link.waitFor();
    videoId = decodeURIComponent((await link.getAttribute('href')).replace('#/asset/', ''));
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
    videoDetail = await waitForInsights(page, videoId, ['shot', 'storyboard'], INDEXING_TIMEOUT_MS);
    const starts = videoDetail.insights.filter((i) => i.kind === 'shot').map((i) => i.place.start_ms);
    assert.equal(starts.length, 2, `shots start at ${starts} ms`);
  });

  it('plays a video, with its shots and its storyboard', async () => {
    assert.ok(videoId, 'the video was uploaded');
    await page.goto(`${URL_}/#/asset/${videoId}`);
    await page.getByRole('heading', { level: 1, name: 'clapboard.mp4' }).waitFor();
    const player = page.locator('#player');
    assert.match(await player.getAttribute('src'), new RegExp(`^/api/v1/assets/${videoId}/(original|preview)$`));
    assert.equal(await player.getAttribute('preload'), 'metadata');
    assert.equal(await page.locator('.frame .badge').count(), 0, 'a player, not a badge');

    // It plays: the time advances.
    await playerAt(page, 0);
    const started = await player.evaluate((v) => v.play().then(() => v.currentTime));
    await page.waitForFunction((t) => document.getElementById('player').currentTime > t + 0.5, started);
    await player.evaluate((v) => v.pause());

    // The shot strip: two shots whose keyframes load; the second plays from its start.
    const shots = page.locator('#shots button.shot');
    assert.equal(await shots.count(), 2);
    await page.locator('#shots').scrollIntoViewIfNeeded();
    for (const img of await page.locator('#shots img').all()) {
      assert.equal(await img.getAttribute('loading'), 'lazy');
      await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
    }
    assert.match(await shots.nth(1).innerText(), /\d\d:\d\d:\d\d/);
    await page.getByRole('button', { name: /^Shot 2 at / }).click();
    await page.waitForFunction(() => document.getElementById('player').currentTime >= 2.9);
    await page.locator('#shots button.shot[aria-current="true"]', { hasText: 'Shot 2' }).waitFor();
    await player.evaluate((v) => v.pause());
    await screenshot(page, 'video-page');

    // Over the scrub bar, the storyboard shows the picture of the moment under the pointer.
    const board = videoDetail.insights.find((i) => i.kind === 'storyboard').value;
    const duration = await player.evaluate((v) => v.duration * 1000);
    const tile = Math.floor(Math.min(board.tiles, duration / board.interval_ms) / 2);
    const moment = (tile + 0.5) * board.interval_ms; // the middle of that tile's time
    const bar = await page.locator('#scrub').boundingBox();
    await page.mouse.move(bar.x + (bar.width * moment) / duration, bar.y + bar.height / 2);
    await page.locator('.scrub-tip').waitFor({ state: 'visible' });
    const shown = await page.locator('.storyboard-tile').evaluate((el) => ({
      position: el.style.backgroundPosition.split(' ').map((v) => Math.abs(Number.parseFloat(v))),
      image: el.style.backgroundImage,
    }));
    assert.deepEqual(shown.position, [
      (tile % board.columns) * board.tile_width,
      Math.floor(tile / board.columns) * board.tile_height,
    ]);
    assert.match(shown.image, new RegExp(`/api/v1/assets/${videoId}/derived/${board.sprite}`));
    const sprite = await page.evaluate(async (href) => {
      const res = await fetch(href);
      return { status: res.status, type: res.headers.get('content-type') };
    }, `/api/v1/assets/${videoId}/derived/${board.sprite}`);
    assert.deepEqual(sprite, { status: 200, type: 'image/jpeg' });
    await page.mouse.move(0, 0);
    await page.locator('.scrub-tip').waitFor({ state: 'hidden' });
  });

  it('plays the preview of a video whose codec the browser cannot play', { timeout: INDEXING_TIMEOUT_MS + 30_000 }, async () => {
    await page.goto(`${URL_}/#/`);
    await page.locator('#file-input').setInputFiles([OLD_VIDEO]);
    const panel = page.getByRole('dialog', { name: 'Upload' });
    const link = panel.locator('li[data-name="archive.avi"]:is([data-status="new"], [data-status="stored"]) a');
    await link.waitFor();
    const id = decodeURIComponent((await link.getAttribute('href')).replace('#/asset/', ''));
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
    assert.equal(
      await page.evaluate(() => document.createElement('video').canPlayType('video/x-msvideo')),
      '',
      'Chromium does not play AVI itself',
    );
    await waitForInsights(page, id, ['preview', 'shot'], INDEXING_TIMEOUT_MS);
    await page.goto(`${URL_}/#/asset/${id}`);
    await page.getByRole('heading', { level: 1, name: 'archive.avi' }).waitFor();
    const player = page.locator('#player');
    assert.equal(await player.getAttribute('src'), `/api/v1/assets/${id}/preview`);
    await playerAt(page, 0);
    const started = await player.evaluate((v) => v.play().then(() => v.currentTime));
    await page.waitForFunction((t) => document.getElementById('player').currentTime > t + 0.5, started);
    await player.evaluate((v) => v.pause());
    // The download is still the original, untouched.
    const original = await page.evaluate(async (id) => {
      const r = await fetch(`/api/v1/assets/${id}/original`);
      return { status: r.status, size: (await r.arrayBuffer()).byteLength };
    }, id);
    assert.deepEqual(original, { status: 200, size: fs.statSync(OLD_VIDEO).size });
  });

  it('transcribes a recording, finds it by a word said, and plays it from there', { timeout: INDEXING_TIMEOUT_MS + 30_000 }, async () => {
    await page.goto(`${URL_}/#/`);
    await page.locator('#file-input').setInputFiles([CALL]);
    const panel = page.getByRole('dialog', { name: 'Upload' });
    const link = panel.locator('li[data-name="call.wav"]:is([data-status="new"], [data-status="stored"]) a');
    await link.waitFor();
    const id = decodeURIComponent((await link.getAttribute('href')).replace('#/asset/', ''));
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
    const detail = await waitForInsights(page, id, ['transcript_segment'], INDEXING_TIMEOUT_MS);
    const said = detail.insights.filter((i) => i.kind === 'transcript_segment');
    assert.equal(said.length, 1, JSON.stringify(said));
    assert.match(said[0].value.text, /weasels/i);
    assert.equal(said[0].language, 'en');
    const start = said[0].place.start_ms;
    assert.ok(start >= 1000 && start <= 1600, `said from ${start} ms, after the silence`);

    // The search hit opens the recording at the moment the word was said.
    await search(page, 'weasels');
    const hit = card(page, 'call.wav');
    await hit.waitFor();
    assert.equal(await hit.getAttribute('href'), `#/asset/${id}?t=${start / 1000}`);
    assert.match(await hit.locator('.why').innerText(), /^00:00:01 transcript: .*weasels/i);
    await hit.click();
    await page.waitForURL(`**/#/asset/${id}?t=${start / 1000}`);
    await playerAt(page, start / 1000);
    const player = page.locator('#player');
    assert.equal(await player.evaluate((el) => el.tagName), 'AUDIO');
    assert.equal(await player.evaluate((v) => v.paused), true, 'it waits to be played');

    // Its captions track, in the language spoken, served as WebVTT.
    const track = page.locator('#player track');
    const href = `/api/v1/assets/${id}/captions.vtt?lang=en`;
    assert.equal(await track.getAttribute('src'), href);
    assert.equal(await track.getAttribute('srclang'), 'en');
    const vtt = await page.evaluate(async (url) => {
      const res = await fetch(url);
      return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
    }, href);
    assert.equal(vtt.status, 200);
    assert.equal(vtt.type, 'text/vtt; charset=utf-8');
    assert.match(vtt.text, /^WEBVTT\n\n00:00:01\.\d{3} --> /);
    assert.match(vtt.text, /weasels/i);

    // The transcript beside it: its line plays the recording from where it was said.
    await player.evaluate((v) => { v.currentTime = 0; });
    await playerAt(page, 0);
    const line = page.locator('#transcript button.line');
    assert.equal(await line.count(), 1);
    assert.match(await line.innerText(), /^00:00:01 .*weasels/i);
    await line.click();
    await page.waitForFunction((t) => document.getElementById('player').currentTime >= t, start / 1000);
    await player.evaluate((v) => v.pause());
    await screenshot(page, 'audio-page');
  });

  it('finds a Spanish notice by English words, showing the original beside its translation', { timeout: INDEXING_TIMEOUT_MS + 30_000 }, async () => {
    await page.goto(`${URL_}/#/`);
    await page.locator('#file-input').setInputFiles([NOTICE]);
    const panel = page.getByRole('dialog', { name: 'Upload' });
    const link = panel.locator('li[data-name="aviso.txt"]:is([data-status="new"], [data-status="stored"]) a');
    await link.waitFor();
    const id = decodeURIComponent((await link.getAttribute('href')).replace('#/asset/', ''));
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
    const detail = await waitForInsights(page, id, ['translation'], INDEXING_TIMEOUT_MS);
    const translation = detail.insights.find((i) => i.kind === 'translation');
    assert.equal(translation.value.source_language, 'es');
    assert.match(translation.value.text, /pharmacy/i);

    // The search index follows the catalog within seconds: wait until it has the translation.
    const deadline = Date.now() + INDEXING_TIMEOUT_MS;
    for (;;) {
      const body = await page.evaluate(async () => (await fetch('/api/v1/search?q=pharmacy')).json());
      const hit = (body.hits || []).find((h) => h.asset.id === id);
      if (hit && hit.reasons.some((r) => r.field === 'translation')) break;
      assert.ok(Date.now() < deadline, `the translation of ${id} is not searchable: ${JSON.stringify(hit)}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }

    // The hit says why in both languages, each with its word marked.
    await search(page, 'pharmacy');
    const hit = card(page, 'aviso.txt');
    await hit.waitFor();
    const why = hit.locator('.why');
    assert.match(await why.innerText(), /translation: .*pharmacy.*\(from Spanish: .*farmacia/i);
    assert.match(await why.locator('mark').first().innerText(), /farmacia|pharmacy/i);
    assert.match(await why.locator('.original mark').first().innerText(), /farmacia/i);

    // The page shows the text and its English translation side by side.
    await hit.click();
    await page.waitForURL(`**/#/asset/${id}`);
    const english = page.locator('.side-by-side .translation[lang="en"]');
    await english.waitFor();
    assert.match(await english.innerText(), /pharmacy/i);
    await screenshot(page, 'translation-page');
  });

  it('opens a search hit at the moment of the video it was found at', async () => {
    assert.ok(videoId, 'the video was uploaded');
    // What the analysers find in a test pattern is not known in advance, so the server's answer
    // is passed through with a moment added to the video's hit, as a line read at 4.2 s.
    await editAnswers(page, '**/api/v1/search?*', (body) => {
      for (const hit of body.hits.filter((x) => x.asset.id === videoId)) {
        hit.reasons.unshift({
          type: 'words', field: 'ocr', text: 'BARS', highlights: [{ start: 0, end: 4 }],
          place: { type: 'time', start_ms: 4200, end_ms: 5000, rect: null },
        });
      }
    });
    try {
      await page.goto(`${URL_}/#/`);
      await search(page, 'clapboard');
      const hit = card(page, 'clapboard.mp4');
      await hit.waitFor();
      assert.equal(await hit.getAttribute('href'), `#/asset/${videoId}?t=4.2`);
      assert.match(await hit.locator('.why').innerText(), /^00:00:04 ocr: BARS/);
      await hit.click();
      await page.waitForURL(`**/#/asset/${videoId}?t=4.2`);
      await playerAt(page, 4.2);
      assert.equal(await page.locator('#player').evaluate((v) => v.paused), true, 'it waits to be played');
      await page.getByRole('link', { name: '← Back to search' }).click();
      await page.waitForURL(/#\/search\?q=clapboard$/);
      await card(page, 'clapboard.mp4').waitFor();
    } finally {
      await page.unroute('**/api/v1/search?*');
    }
  });

  it('fits a phone on a video page: the shots scroll, not the page', async () => {
    assert.ok(videoId, 'the video was uploaded');
    const phone = await browser.newContext({
      viewport: { width: 375, height: 740 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      storageState: await context.storageState(),
    });
    const p = await newPage(phone);
    await p.goto(`${URL_}/#/asset/${videoId}`);
    await p.locator('#shots button.shot').nth(1).waitFor();
    await playerAt(p, 0);
    const player = await p.locator('#player').boundingBox();
    assert.ok(player.width > 300 && player.x >= 0 && player.x + player.width <= 375, `player ${JSON.stringify(player)}`);
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
    await screenshot(p, 'phone-video');
    await phone.close();
  });

  it('fits a phone: two columns, nothing sideways', async () => {
    const phone = await browser.newContext({
      viewport: { width: 375, height: 740 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      storageState: await context.storageState(),
    });
    const p = await newPage(phone);
    await p.goto(`${URL_}/#/`);
    await p.locator('#grid a.card').nth(1).waitFor();
    const tops = await p.locator('#grid > li').evaluateAll((items) => items.map((li) => Math.round(li.getBoundingClientRect().top)));
    const firstRow = tops.filter((t) => t === tops[0]).length;
    assert.equal(firstRow, 2, `items per row on a phone (tops ${tops})`);
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
    await screenshot(p, 'phone');
    await phone.close();
  });

  it('offers Delete to admins only, and Delete removes the asset', async () => {
    const ctx = await browser.newContext();
    const p = await newPage(ctx);
    await signInWithForm(p, READ_TOKEN);
    await search(p, 'cat');
    await card(p, 'chelsea.png').click();
    await p.getByRole('heading', { level: 1, name: 'chelsea.png' }).waitFor();
    await p.getByRole('link', { name: 'Download original' }).waitFor();
    assert.equal(await p.getByRole('button', { name: 'Delete' }).count(), 0, 'no Delete without the admin scope');
    await ctx.close();

    await page.goto(`${URL_}/#/`);
    await search(page, ''); // the newest assets
    await card(page, 'imagenet_17_22.jpg').waitFor();
    const id = await assetIdOf(page, 'imagenet_17_22.jpg');
    await card(page, 'imagenet_17_22.jpg').click();
    await page.getByRole('heading', { level: 1, name: 'imagenet_17_22.jpg' }).waitFor();
    page.once('dialog', (dialog) => dialog.accept());
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL(/#\/$/);
    await card(page, 'chelsea.png').waitFor();
    assert.equal(await card(page, 'imagenet_17_22.jpg').count(), 0, 'gone from the grid');
    const status = await page.evaluate(async (id) => (await fetch(`/api/v1/assets/${id}`)).status, id);
    assert.equal(status, 404);
  });

  it('signs out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
    await page.reload();
    await page.getByLabel('API token').waitFor();
    assert.ok(await page.locator('#top').isHidden());
  });

  it('raised no error in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
