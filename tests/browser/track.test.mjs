// Works the public tracking page in Debian's headless Chromium, as a customer without an account
// would: a wrong postcode first, then the right one; reads the status, the history and where the
// item waits in French; chooses a pickup point; switches to English; then on a phone-sized screen
// in English (the browser's language) looks the item up by its notice card and finds pickup
// points near them. Checks that nothing is wider than the window and that no raw code shows.
// Run by tests/tracking_page.rs. Prints one JSON line on success; exits non-zero on failure.
//
// Environment: TOURNEE_BASE, TOURNEE_S10, TOURNEE_NOTICE, TOURNEE_POSTCODE; optional CHROMIUM
// and TOURNEE_SCREENSHOTS (a directory).
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("TOURNEE_BASE");
const s10 = env("TOURNEE_S10");
const notice = env("TOURNEE_NOTICE");
const postcode = env("TOURNEE_POSTCODE");
const screenshots = process.env.TOURNEE_SCREENSHOTS;
const origin = new URL(base).origin;

// What a customer must never read: the API's codes and ids.
const RAW = ["addressee_absent", "post_office", "pickup_point", "bp-paris-11", "pp-paris", "redeliver_on", "EMH", "EDG", "undefined", "null"];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const offOrigin = [];
const problems = [];
let choiceId = null;

function watch(page) {
  page.setDefaultTimeout(15_000);
  page.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith("data:") && new URL(url).origin !== origin) offOrigin.push(url);
  });
  page.on("console", (message) => {
    if (message.type() === "error" && !/status of 404/.test(message.text())) problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));
}

async function fitsTheWindow(page, what) {
  const sizes = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
    wide: [...document.querySelectorAll("body *")]
      .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
      .map((e) => `${e.tagName}#${e.id}.${e.className}`)
      .slice(0, 5),
  }));
  assert.ok(sizes.scroll <= sizes.client, `${what}: ${sizes.scroll} px wide in ${sizes.client} px: ${sizes.wide}`);
}

async function noRawCodes(page, what) {
  const text = await page.locator("main").innerText();
  for (const raw of RAW) assert.ok(!text.includes(raw), `${what}: "${raw}" shows on the page`);
}

async function shoot(page, name) {
  if (screenshots) await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
}

try {
  // French (the default), wide screen.
  const wide = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "fr-FR" });
  const page = await wide.newPage();
  watch(page);
  await page.goto(`${base}/track`);
  assert.equal(await page.getAttribute("html", "lang"), "fr");
  await page.locator("#lookup-title", { hasText: "Suivre un envoi" }).waitFor();

  await page.fill("#number", s10.toLowerCase());
  await page.fill("#postcode", "75012");
  await page.click("#track");
  await page.locator("#status.error", { hasText: "Aucun envoi ne correspond" }).waitFor();
  assert.equal(await page.locator("#result").isVisible(), false);

  await page.fill("#postcode", postcode);
  await page.click("#track");
  await page.locator('#result[data-status="attempted"]').waitFor();
  await page.locator("#status-text", { hasText: "Nous sommes passés" }).waitFor();
  assert.equal(await page.locator("#events li").count(), 2);
  await page.locator("#events li", { hasText: "avis de passage" }).waitFor();
  await page.locator("#waiting-place", { hasText: "BUREAU DE POSTE PARIS ROQUETTE" }).waitFor();
  await page.locator("#waiting-place", { hasText: "lundi : 09:00–19:00" }).waitFor();
  await page.locator("#waiting-place .until", { hasText: "Jusqu'au" }).waitFor();
  await noRawCodes(page, "fr 1280");
  await fitsTheWindow(page, "fr 1280");
  await shoot(page, "track-fr-1280");

  // Choose a pickup point: the list comes from the postcode, with addresses and hours.
  await page.check('#options input[value="pickup_point"]');
  await page.locator("#places li", { hasText: "TABAC DE LA ROQUETTE" }).waitFor();
  await page.check('#places input[value="pp-paris-11-03"]');
  await page.click("#confirm");
  await page.locator("#status.ok", { hasText: "Votre choix est enregistré" }).waitFor();
  await page.locator("#choice-now", { hasText: "TABAC DE LA ROQUETTE" }).waitFor();
  choiceId = await page.getAttribute("#status", "data-choice-id");
  assert.ok(choiceId, "the page shows the choice's answer");
  // The item now waits at the pickup point chosen.
  await page.locator("#waiting-place", { hasText: "TABAC DE LA ROQUETTE" }).waitFor();
  await noRawCodes(page, "fr 1280 after the choice");
  await shoot(page, "track-fr-1280-chosen");

  // The switch: English words from the server and the page.
  await page.click("#lang-en");
  await page.locator("#lookup-title", { hasText: "Track an item" }).waitFor();
  await page.locator("#status-text", { hasText: "We called" }).waitFor();
  await page.locator("#events li", { hasText: "nobody was in" }).waitFor();
  await page.locator("#choice-now", { hasText: "Your choice: Delivery to the pickup point TABAC DE LA ROQUETTE" }).waitFor();
  assert.equal(await page.getAttribute("html", "lang"), "en");
  await noRawCodes(page, "en 1280");
  await shoot(page, "track-en-1280");
  await wide.close();

  // English by the browser's language, on a phone, by the notice card; pickup points near me.
  const narrow = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: "en-GB",
    geolocation: { latitude: 48.8591, longitude: 2.3791 },
    permissions: ["geolocation"],
  });
  const phone = await narrow.newPage();
  watch(phone);
  await phone.goto(`${base}/track`);
  assert.equal(await phone.getAttribute("html", "lang"), "en");
  await phone.locator("#lookup-title", { hasText: "Track an item" }).waitFor();
  await phone.fill("#number", notice);
  await phone.fill("#postcode", postcode);
  await phone.click("#track");
  await phone.locator('#result[data-status="attempted"]').waitFor();
  await phone.locator("#waiting-place", { hasText: "TABAC DE LA ROQUETTE" }).waitFor();
  await fitsTheWindow(phone, "en 390");
  await noRawCodes(phone, "en 390");
  await shoot(phone, "track-en-390");

  await phone.check('#options input[value="pickup_point"]');
  await phone.locator("#places li").first().waitFor();
  await phone.click("#near-me");
  await phone.locator("#places li .distance", { hasText: " m away" }).first().waitFor();
  const nearest = await phone.locator("#places li .name").first().innerText();
  assert.equal(nearest, "TABAC DE LA ROQUETTE", "the nearest place comes first");
  await fitsTheWindow(phone, "en 390 with pickup points");
  await shoot(phone, "track-en-390-pickup-points");

  await phone.click("#lang-fr");
  await phone.locator("#lookup-title", { hasText: "Suivre un envoi" }).waitFor();
  await phone.locator("#places li .distance", { hasText: "à " }).first().waitFor();
  await phone.check('#options input[value="redeliver_on"]');
  await phone.locator("#detail-redeliver_on").waitFor();
  await fitsTheWindow(phone, "fr 390");
  await noRawCodes(phone, "fr 390");
  await shoot(phone, "track-fr-390");
  await narrow.close();

  assert.deepEqual(problems, [], `the page logged errors: ${problems.join("; ")}`);
  console.log(JSON.stringify({ ok: true, offOrigin, choiceId }));
} catch (error) {
  console.error(error);
  console.log(JSON.stringify({ ok: false, offOrigin, problems, error: String(error) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
