// Works the back-office page in Debian's headless Chromium, as a reviewer would: signs in,
// filters the queue, looks at a flagged attempt's position against the pin, approves a correction.
// Run by tests/backoffice_page.rs, which starts the server and checks afterwards that the
// approval reached the phone. Prints one JSON line on success; exits non-zero on any failure.
//
// Environment: TOURNEE_BASE (http://127.0.0.1:PORT), TOURNEE_TOKEN (a back-office token),
// TOURNEE_CORRECTION_ENTRY and TOURNEE_ATTEMPT_ENTRY (queue ids), TOURNEE_S10 (an item to
// search), optional CHROMIUM (default /usr/bin/chromium) and TOURNEE_SCREENSHOTS (a directory).
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
const screenshots = process.env.TOURNEE_SCREENSHOTS;
const origin = new URL(base).origin;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const offOrigin = [];
const problems = [];
let requests = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("request", (request) => {
    requests += 1;
    const url = request.url();
    if (!url.startsWith("data:") && new URL(url).origin !== origin) offOrigin.push(url);
  });
  // A CSP violation or a script error shows up here.
  page.on("console", (message) => {
    if (message.type() === "error" && !/status of 40[13]/.test(message.text())) problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("response", (response) => {
    if (response.status() === 404) problems.push(`404 for ${response.url()}`);
  });

  await page.goto(`${base}/backoffice`);
  await page.locator("#status", { hasText: "Sign in" }).waitFor();
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

  // The kind filter narrows the list.
  await page.selectOption("#kind-filter", "attempt");
  await page.locator(`#queue [data-queue-id="${correctionEntry}"]`).waitFor({ state: "detached" });
  await page.locator(`#queue [data-queue-id="${attemptEntry}"]`).waitFor();
  await page.selectOption("#kind-filter", "correction");
  await page.locator(`#queue [data-queue-id="${attemptEntry}"]`).waitFor({ state: "detached" });
  await page.selectOption("#kind-filter", "");

  // The flagged attempt: its position is drawn against the pin, with the distance.
  await page.click(`#queue [data-queue-id="${attemptEntry}"] button`);
  await page.locator(`#detail[data-queue-id="${attemptEntry}"] #position-svg`).waitFor();
  const attemptDistance = Number(await page.getAttribute("#position-svg", "data-distance-m"));
  assert.ok(attemptDistance > 150, `a flagged attempt is far from the pin: ${attemptDistance} m`);
  assert.ok(await page.locator("#position-svg #pin-marker").count() === 1);
  assert.ok(await page.locator("#position-svg #attempt-marker").count() === 1);
  await page.locator("#timeline li[data-code=attempt]").first().waitFor();
  if (screenshots) await page.screenshot({ path: join(screenshots, "attempt.png"), fullPage: true });

  // The correction: fields side by side, the proposed pin drawn, then approved with a comment.
  await page.click(`#queue [data-queue-id="${correctionEntry}"] button`);
  await page.locator(`#detail[data-queue-id="${correctionEntry}"] #correction-table`).waitFor();
  assert.equal(await page.textContent('#correction-table tr[data-field="house_number"] td.proposed'), "35");
  // The door code it would overwrite is in view, not "—".
  const doorCodeNow = await page.textContent('#correction-table tr[data-field="door_code"] td:not(.proposed)');
  assert.match(doorCodeNow, /^[0-9A-Z]{4,}$/, `current door code shown: ${doorCodeNow}`);
  await page.locator("#position-svg").waitFor();
  if (screenshots) await page.screenshot({ path: join(screenshots, "correction.png"), fullPage: true });

  await page.click("#approve");
  await page.locator("#status.error", { hasText: "comment" }).waitFor();
  assert.equal(await page.textContent("#entry-status"), "open", "no comment, no decision");

  await page.fill("#comment", "Checked on the cadastre: number 35.");
  await page.click("#approve");
  await page.locator("#entry-status", { hasText: "approved" }).waitFor();
  await page.locator("#status.ok").waitFor();
  // Decided entries leave the open queue and show under "decided".
  await page.locator(`#queue [data-queue-id="${correctionEntry}"]`).waitFor({ state: "detached" });
  await page.selectOption("#status-filter", "closed");
  await page.locator(`#queue [data-queue-id="${correctionEntry}"][data-status="approved"]`).waitFor();
  if (screenshots) await page.screenshot({ path: join(screenshots, "approved.png"), fullPage: true });

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

  assert.deepEqual(offOrigin, [], "the page fetches nothing from another origin");
  assert.deepEqual(problems, [], "no script error and no CSP violation");
  console.log(JSON.stringify({ ok: true, approved: Number(correctionEntry), attemptDistance, requests, offOrigin }));
} finally {
  await browser.close();
}
