// The proofs of delivery on the back-office page (issue #16), in Debian's headless Chromium: a
// reviewer opens a customer's dispute, sees the photo and the signature the postman took beside
// the attempt (fetched with the token, shown as images), and a proof never uploaded said so;
// then rejects the dispute with the photo in view. Run by tests/proofs_page.rs. Prints one JSON
// line on success; exits non-zero on any failure.
//
// Environment: TOURNEE_BASE, TOURNEE_TOKEN (back office), TOURNEE_DISPUTE_ENTRY (queue id),
// TOURNEE_PHOTO, TOURNEE_SIGNATURE, TOURNEE_MISSING (hashes), optional CHROMIUM and
// TOURNEE_SCREENSHOTS (a directory).
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("TOURNEE_BASE");
const entry = env("TOURNEE_DISPUTE_ENTRY");
const [photo, signature, missing] = ["TOURNEE_PHOTO", "TOURNEE_SIGNATURE", "TOURNEE_MISSING"].map(env);
const screenshots = process.env.TOURNEE_SCREENSHOTS;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const problems = [];
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.setDefaultTimeout(15_000);
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));

  await page.goto(`${base}/backoffice`);
  await page.fill("#token", env("TOURNEE_TOKEN"));
  await page.click("#sign-in");
  await page.click(`#queue [data-queue-id="${entry}"] button`);
  await page.locator(`#detail[data-queue-id="${entry}"] #proofs`).waitFor();

  // Each uploaded proof is an image the browser decoded; the missing one says why.
  const sizes = {};
  for (const sha of [photo, signature]) {
    const image = page.locator(`#proofs figure[data-sha256="${sha}"] img`);
    await image.waitFor();
    await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await image.elementHandle());
    sizes[sha] = await image.evaluate((img) => [img.naturalWidth, img.naturalHeight]);
    assert.match(await image.getAttribute("src"), /^data:image\/(png|svg\+xml);base64,/);
  }
  assert.deepEqual(sizes[photo], [240, 160], "the photo decoded at its size");
  assert.match(await page.textContent(`#proofs figure[data-sha256="${missing}"]`), /not uploaded/);
  assert.equal(await page.locator(`#proofs figure[data-sha256="${missing}"] img`).count(), 0);
  if (screenshots) await page.screenshot({ path: join(screenshots, "dispute-with-proofs.png"), fullPage: true });

  // The same proofs in French words, then back to English.
  await page.click("#language");
  await page.locator("#proofs h3", { hasText: "Preuves" }).waitFor();
  assert.match(await page.textContent(`#proofs figure[data-sha256="${missing}"]`), /pas envoyée par le téléphone/);
  assert.match(await page.textContent("#status"), /dans la file/, "the status line is said again in French");
  await page.locator(`#proofs figure[data-sha256="${photo}"] img`).waitFor();
  if (screenshots) await page.screenshot({ path: join(screenshots, "dispute-with-proofs-fr.png"), fullPage: true });
  await page.click("#language");
  await page.locator("#proofs h3", { hasText: "Proofs" }).waitFor();

  await page.fill("#comment", "The signature and the photo show the parcel was handed over.");
  await page.click("#reject");
  await page.locator("#entry-status", { hasText: "rejected" }).waitFor();

  assert.deepEqual(problems, [], "no script error and no CSP violation");
  console.log(JSON.stringify({ ok: true, sizes }));
} finally {
  await browser.close();
}
