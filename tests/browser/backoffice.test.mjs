// Works the back-office page in Debian's headless Chromium, as reviewers would: one in English
// at 1280 px signs in, filters the queue, looks at a flagged attempt on the map (tiles from the
// test's own tile server when TOURNEE_TILES_ORIGIN is set, else the sketch) and approves a
// correction; one in French at 390 px (the browser's language) reads the same entries in
// French words, with nothing wider than the screen, and rejects the flagged attempt; the language
// switch is remembered. Run by tests/backoffice_page.rs, which starts the servers and checks
// afterwards that the decisions reached the phone. Prints one JSON line on success; exits
// non-zero on any failure.
//
// Environment: TOURNEE_BASE (http://127.0.0.1:PORT), TOURNEE_TOKEN (a back-office token),
// TOURNEE_CORRECTION_ENTRY and TOURNEE_ATTEMPT_ENTRY (queue ids), TOURNEE_S10 (an item to
// search), TOURNEE_TILES_ORIGIN (the tile server's origin, when the server has one), optional
// CHROMIUM (default /usr/bin/chromium) and TOURNEE_SCREENSHOTS (a directory).
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("TOURNEE_BASE");
const token = env("TOURNEE_TOKEN");
const correctionEntry = env("TOURNEE_CORRECTION_ENTRY");
const attemptEntry = env("TOURNEE_ATTEMPT_ENTRY");
const s10 = env("TOURNEE_S10");
const tilesOrigin = process.env.TOURNEE_TILES_ORIGIN || null;
const screenshots = process.env.TOURNEE_SCREENSHOTS;
const origin = new URL(base).origin;
// Codes that must never reach a reviewer's eyes: they have words.
const RAW_CODES = ["addressee_absent", "delivered_to_addressee", "house_number", "far_from_pin", "dp-0000", "EMI", "EMH", "EDG"];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const offOrigin = [];
const problems = [];
let requests = 0;
let tiles = 0;

/** A page in a browser of this language and width, watched for errors and other origins. */
async function open(locale, width) {
  const context = await browser.newContext({ viewport: { width, height: 900 }, locale });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("request", (request) => {
    requests += 1;
    const url = request.url();
    if (url.startsWith("data:")) return;
    const from = new URL(url).origin;
    if (tilesOrigin && from === tilesOrigin) tiles += 1;
    else if (from !== origin) offOrigin.push(url);
  });
  // A CSP violation or a script error shows up here.
  page.on("console", (message) => {
    if (message.type() === "error" && !/status of 40[13]/.test(message.text())) problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("response", (response) => {
    if (response.status() === 404) problems.push(`404 for ${response.url()}`);
  });
  return page;
}

/** The flagged attempt against the pin: on the map with its tiles drawn, or on the sketch. */
async function positionShown(page) {
  if (tilesOrigin) {
    await page.locator("#position-map .leaflet-tile-loaded").first().waitFor();
    await page.locator("#position-map path.map-pin").waitFor();
    await page.locator("#position-map path.map-seen").waitFor();
    const drawn = await page.$$eval("#position-map img.leaflet-tile-loaded", (imgs) => imgs.filter((i) => i.naturalWidth === 256).length);
    assert.ok(drawn > 0, "the map drew tiles of the test's tile server");
    return Number(await page.getAttribute("#position-map", "data-distance-m"));
  }
  await page.locator("#position-svg #pin-marker").waitFor();
  assert.ok(await page.locator("#position-svg #attempt-marker").count() === 1);
  return Number(await page.getAttribute("#position-svg", "data-distance-m"));
}

/** Nothing is wider than the window, and no raw code is on the page. */
async function readable(page, what) {
  const overflow = await page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll("body *")]
      .filter((e) => e.getBoundingClientRect().right > width + 1 && !e.closest(".leaflet-container"))
      .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`);
    return { scroll: document.scrollingElement.scrollWidth, width, wide };
  });
  assert.ok(overflow.scroll <= overflow.width, `${what}: the page is wider than the window: ${JSON.stringify(overflow)}`);
  assert.deepEqual(overflow.wide, [], `${what}: cut off`);
  const text = await page.evaluate(() => document.body.innerText);
  for (const code of RAW_CODES) {
    assert.ok(!new RegExp(`\\b${code}\\b`).test(text), `${what}: raw code ${code} on the page`);
  }
}

const shot = async (page, name) => {
  if (!screenshots) return;
  // Every tile of the map in view drawn first.
  await page.waitForFunction(() => document.querySelectorAll("#position-map img.leaflet-tile:not(.leaflet-tile-loaded)").length === 0);
  await page.screenshot({ path: join(screenshots, name), fullPage: true });
};

let attemptDistance;
try {
  // ---------------------------------------------------------------- in English, 1280 px
  const page = await open("en-GB", 1280);
  await page.goto(`${base}/backoffice`);
  await page.locator("#status", { hasText: "Sign in" }).waitFor();
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.equal(await page.locator("#workspace").isVisible(), false, "nothing shows before sign-in");

  // A token that is not one is refused, and the page says so.
  await page.fill("#token", "not-a-token");
  await page.click("#sign-in");
  await page.locator("#status.error").waitFor();
  assert.equal(await page.locator("#workspace").isVisible(), false);

  await page.fill("#token", token);
  await page.click("#sign-in");
  await page.locator(`#queue [data-queue-id="${correctionEntry}"]`).waitFor();
  await page.locator(`#queue [data-queue-id="${attemptEntry}"]`).waitFor();
  // The queue names the address, not the delivery point's id, and the reason in words.
  const attemptRow = await page.textContent(`#queue [data-queue-id="${attemptEntry}"]`);
  assert.match(attemptRow, /Flagged attempt/);
  assert.match(attemptRow, /recorded \d+ m from the address's pin/);
  assert.match(attemptRow, /rue/i, `the address in the queue: ${attemptRow}`);

  // The kind filter narrows the list.
  await page.selectOption("#kind-filter", "attempt");
  await page.locator(`#queue [data-queue-id="${correctionEntry}"]`).waitFor({ state: "detached" });
  await page.locator(`#queue [data-queue-id="${attemptEntry}"]`).waitFor();
  await page.selectOption("#kind-filter", "correction");
  await page.locator(`#queue [data-queue-id="${attemptEntry}"]`).waitFor({ state: "detached" });
  await page.selectOption("#kind-filter", "");

  // The flagged attempt: its position against the pin, with the distance.
  await page.click(`#queue [data-queue-id="${attemptEntry}"] button`);
  await page.locator(`#detail[data-queue-id="${attemptEntry}"]`).waitFor();
  attemptDistance = await positionShown(page);
  assert.ok(attemptDistance > 150, `a flagged attempt is far from the pin: ${attemptDistance} m`);
  await page.locator("#timeline li[data-code=attempt]").first().waitFor();
  assert.match(await page.textContent("#detail"), /handed to the addressee/);
  // Who signed it: this test's phone does not sign, and the page says so in words.
  assert.match(await page.textContent("#detail"), /Signaturenot signed \(an app of an earlier version\)/);
  await readable(page, "attempt, en, 1280");
  await shot(page, "backoffice-en-1280-attempt.png");

  // The correction: fields side by side, the proposed pin drawn, then approved with a comment.
  await page.click(`#queue [data-queue-id="${correctionEntry}"] button`);
  await page.locator(`#detail[data-queue-id="${correctionEntry}"] #correction-table`).waitFor();
  assert.equal(await page.textContent('#correction-table tr[data-field="house_number"] td.proposed'), "35");
  assert.equal(await page.textContent('#correction-table tr[data-field="house_number"] th'), "house number");
  // The door code it would overwrite is in view, not "—".
  const doorCodeNow = await page.textContent('#correction-table tr[data-field="door_code"] td:not(.proposed)');
  assert.match(doorCodeNow, /^[0-9A-Z]{4,}$/, `current door code shown: ${doorCodeNow}`);
  await shot(page, "backoffice-en-1280-correction.png");

  await page.click("#approve");
  await page.locator("#status.error", { hasText: "comment" }).waitFor();
  assert.equal(await page.getAttribute("#entry-status", "data-status"), "open", "no comment, no decision");

  await page.fill("#comment", "Checked on the cadastre: number 35.");
  await page.click("#approve");
  await page.locator("#entry-status[data-status=approved]").waitFor();
  await page.locator("#status.ok").waitFor();
  // Decided entries leave the open queue and show under "decided".
  await page.locator(`#queue [data-queue-id="${correctionEntry}"]`).waitFor({ state: "detached" });
  await page.selectOption("#status-filter", "closed");
  await page.locator(`#queue [data-queue-id="${correctionEntry}"][data-status="approved"]`).waitFor();
  await shot(page, "backoffice-en-1280-approved.png");

  // Search by S10, then the item's timeline.
  await page.fill("#search-s10", s10);
  await page.click("#search-button");
  await page.locator(`#search-results [data-item="${s10}"] button`).click();
  await page.locator(`#timeline[data-item="${s10}"] li`).first().waitFor();

  // The token survives a reload of the tab (sessionStorage), and sign-out forgets it.
  await page.reload();
  await page.locator(`#queue [data-queue-id="${attemptEntry}"]`).waitFor();
  await page.click("#sign-out");
  await page.locator("#sign-in-form").waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);

  // ---------------------------------------------------------------- in French, 390 px
  const phone = await open("fr-FR", 390);
  await phone.goto(`${base}/backoffice`);
  await phone.locator("#status", { hasText: "Connectez-vous" }).waitFor();
  assert.equal(await phone.getAttribute("html", "lang"), "fr");
  await readable(phone, "sign-in, fr, 390");
  await phone.fill("#token", token);
  await phone.click("#sign-in");
  await phone.locator(`#queue [data-queue-id="${attemptEntry}"]`).waitFor();
  assert.match(await phone.textContent(`#queue [data-queue-id="${attemptEntry}"]`), /Tentative signalée.*enregistrée à \d+ m du repère/s);
  await readable(phone, "queue, fr, 390");
  await shot(phone, "backoffice-fr-390-queue.png");
  await phone.click(`#queue [data-queue-id="${attemptEntry}"] button`);
  await phone.locator(`#detail[data-queue-id="${attemptEntry}"]`).waitFor();
  await positionShown(phone);
  await phone.locator("#timeline li[data-code=attempt]").first().waitFor();
  const detail = await phone.textContent("#detail");
  assert.match(detail, /remis au destinataire/);
  assert.match(detail, /Signaturenon signée \(application d'une version antérieure\)/);
  assert.match(detail, /Livré/);
  // One date format: French words in French (a month written in French, never in English).
  assert.match(detail, /\d{1,2} (janv|févr|mars|avr|mai|juin|juil|août|sept|oct|nov|déc)\.? \d{4}/);
  assert.ok(!/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d/.test(detail), "no English month in French");
  await readable(phone, "attempt, fr, 390");
  await shot(phone, "backoffice-fr-390-attempt.png");

  // A decision in French: the attempt is rejected; a refusal's message is French too.
  await phone.click("#reject");
  await phone.locator("#status.error", { hasText: "commentaire" }).waitFor();
  await phone.fill("#comment", "Position hors de l'adresse : à revoir avec le facteur.");
  await phone.click("#reject");
  await phone.locator("#entry-status[data-status=rejected]").waitFor();
  assert.equal(await phone.textContent("#entry-status"), "rejetée");
  await readable(phone, "decided, fr, 390");
  await shot(phone, "backoffice-fr-390-rejected.png");

  // The switch: English, remembered after a reload; then back to French.
  await phone.click("#language");
  await phone.locator("#queue-title", { hasText: "Review queue" }).waitFor();
  await phone.reload();
  await phone.locator("#queue-title", { hasText: "Review queue" }).waitFor();
  assert.equal(await phone.getAttribute("html", "lang"), "en");
  await readable(phone, "queue, en, 390");
  await shot(phone, "backoffice-en-390-queue.png");
  await phone.click("#language");
  await phone.locator("#queue-title", { hasText: "File de vérification" }).waitFor();

  // The French reviewer at 1280 px too.
  const wide = await open("fr-FR", 1280);
  await wide.goto(`${base}/backoffice`);
  await wide.fill("#token", token);
  await wide.click("#sign-in");
  await wide.selectOption("#status-filter", "all");
  await wide.locator(`#queue [data-queue-id="${attemptEntry}"][data-status="rejected"]`).waitFor();
  await wide.click(`#queue [data-queue-id="${attemptEntry}"] button`);
  await wide.locator(`#detail[data-queue-id="${attemptEntry}"] #timeline li`).first().waitFor();
  await positionShown(wide);
  await readable(wide, "attempt, fr, 1280");
  await shot(wide, "backoffice-fr-1280-attempt.png");

  assert.deepEqual(offOrigin, [], "the page fetches nothing from another origin but the tiles");
  assert.deepEqual(problems, [], "no script error and no CSP violation");
  if (tilesOrigin) assert.ok(tiles > 0, "tiles were fetched from the tile server");
  console.log(JSON.stringify({ ok: true, approved: Number(correctionEntry), rejected: Number(attemptEntry), attemptDistance, requests, tiles, offOrigin }));
} finally {
  await browser.close();
}
