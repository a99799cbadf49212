// Registers a passkey the way a person does: opens registration links in
// headless Chromium (Debian's package, driven over the DevTools protocol by
// playwright-core), presses the button and reads what the page says. A
// virtual authenticator (WebAuthn.addVirtualAuthenticator) stands in for
// the device; all links are opened in one browser with one authenticator,
// so a second link shows what happens when the same authenticator registers
// again.
//
//   node tests/browser/register.mjs <link> [<link> ...]
//
// Prints one JSON object: {"results": [{"link": n, "status": "...",
// "kind": "success" | "error"}], "screenshot": "path"}. Exits non-zero on a
// failure of the harness itself (no browser, a page that never answers).
// CHROMIUM overrides the browser path (default /usr/bin/chromium);
// PASSLINK_BROWSER_SCREENSHOT names a PNG of the last page.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(root, 'tools', 'package.json'));
const { chromium } = require('playwright-core');

const STEP_TIMEOUT_MS = 30_000;
const links = process.argv.slice(2);
if (links.length === 0) {
  console.error('usage: node tests/browser/register.mjs <link> [<link> ...]');
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), 'passlink-chromium-'));
let context;
// A hung browser must not hang the test run.
const watchdog = setTimeout(() => {
  console.error('the browser test did not finish within 120 s');
  process.exit(3);
}, 120_000);

try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: STEP_TIMEOUT_MS,
    // Without the background-networking flags Chromium reaches out to
    // Google services, which this closed network refuses.
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const console_lines = [];
  page.on('console', (message) => console_lines.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => console_lines.push(`pageerror: ${error.message}`));

  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  const results = [];
  for (const [index, link] of links.entries()) {
    await page.goto(link, { waitUntil: 'load' });
    // The page offers the button, or says at once why the link cannot work.
    const status = page.locator('#status.success, #status.error');
    const button = page.locator('#start:visible');
    await button.or(status).first().waitFor({ state: 'visible' });
    if (await button.isVisible()) {
      await button.click();
      // Done when the page shows a success or an error.
      await status.waitFor({ state: 'visible' });
    }
    results.push({
      link: index + 1,
      status: (await status.textContent()).trim(),
      kind: await status.getAttribute('class'),
    });
  }

  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  const screenshot = process.env.PASSLINK_BROWSER_SCREENSHOT;
  if (screenshot) {
    await page.screenshot({ path: screenshot });
  }
  console.log(JSON.stringify({
    results,
    authenticatorCredentials: credentials.length,
    console: console_lines,
    screenshot: screenshot || null,
  }));
} catch (error) {
  console.error(`browser test failed: ${error && error.stack ? error.stack : error}`);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  if (context) {
    await context.close().catch(() => {});
  }
  rmSync(profile, { recursive: true, force: true });
}
