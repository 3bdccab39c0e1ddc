/**
 * Helpers of the web console's browser tests: headless Debian chromium driven by playwright-core
 * (never a downloaded browser), screenshots for docs/console.md, and the first-load size of the
 * console's JavaScript and CSS as a browser fetches it (compressed).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from '../helpers/node.js';

/** The system chromium (scripts/ensure-system-deps.sh installs it). */
export const CHROMIUM = '/usr/bin/chromium';
/** Where the screenshots shown in docs/console.md go. */
export const SHOTS = join(ROOT, 'docs/console');

/** Launches headless chromium. */
export function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/** A page at 1280×800 whose console errors and CSP violations are collected in `problems`. */
export async function openPage(browser: Browser, opts: { colorScheme?: 'light' | 'dark'; width?: number; height?: number } = {}): Promise<{ page: Page; problems: string[] }> {
  const ctx = await browser.newContext({ viewport: { width: opts.width ?? 1280, height: opts.height ?? 800 }, colorScheme: opts.colorScheme ?? 'light' });
  const page = await ctx.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  // The page's last events, printed by `diagnose` when a test fails (a flaky wait in CI then
  // says what the page was doing: which requests were pending, failed or answered).
  const events: string[] = [];
  traces.set(page, events);
  lastOpened = page;
  const note = (line: string): void => {
    events.push(`${new Date().toISOString().slice(11, 23)} ${line.slice(0, 200)}`);
    if (events.length > TRACE_LINES) events.splice(0, events.length - TRACE_LINES);
  };
  page.on('request', (r) => note(`-> ${r.method()} ${r.url()}`));
  page.on('requestfinished', (r) => note(`<- ${r.method()} ${r.url()}`));
  page.on('requestfailed', (r) => note(`!! ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) note(`navigated ${f.url()}`);
  });
  page.on('console', (m) => note(`console ${m.type()} ${m.text()}`));
  page.on('pageerror', (e) => note(`pageerror ${String(e)}`));
  page.on('websocket', (ws) => {
    note(`ws open ${ws.url()}`);
    ws.on('close', () => note('ws closed'));
  });
  page.on('requestfailed', (r) => {
    if (process.env.BEACON_CONSOLE_DEBUG) console.log(`# request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`);
  });
  page.on('request', (r) => {
    if (process.env.BEACON_CONSOLE_DEBUG) console.log(`# ${new Date().toISOString()} -> ${r.method()} ${r.url()}`);
  });
  page.on('websocket', (ws) => {
    if (!process.env.BEACON_CONSOLE_DEBUG) return;
    console.log(`# ${new Date().toISOString()} ws open ${ws.url()}`);
    ws.on('framereceived', (f) => console.log(`# ${new Date().toISOString()} ws frame ${String(f.payload).slice(0, 120)}`));
    ws.on('close', () => console.log(`# ${new Date().toISOString()} ws closed`));
    ws.on('socketerror', (e) => console.log(`# ${new Date().toISOString()} ws error ${e}`));
  });
  page.on('console', (m) => {
    if (process.env.BEACON_CONSOLE_DEBUG) console.log(`# console ${m.type()} ${m.text()}`);
  });
  page.on('response', (r) => {
    if (process.env.BEACON_CONSOLE_DEBUG) console.log(`# ${new Date().toISOString()} <- ${r.status()} ${r.url()}`);
  });
  return { page, problems };
}

const TRACE_LINES = 80;
const traces = new WeakMap<Page, string[]>();
/** The page {@link openPage} opened last. */
let lastOpened: Page | undefined;

/** Prints what `page` shows and its last events (requests, navigations, console) to the test's output. */
export async function diagnose(page: Page): Promise<void> {
  const text = await page.locator('body').innerText({ timeout: 2000 }).catch((err: unknown) => `(no text: ${String(err)})`);
  console.log(`# page ${page.url()} shows:\n# ${text.slice(0, 1500).replace(/\n/g, '\n# ')}`);
  console.log(`# its last events:\n# ${(traces.get(page) ?? []).join('\n# ')}`);
}

/**
 * `it` whose failure prints {@link diagnose} of the page the test was using (`page()`, read
 * when it fails; by default the page opened last), so a wait that timed out in CI says what the
 * page was doing.
 */
export function itWithPage(
  it: (name: string, fn: () => Promise<void>) => unknown,
  page: () => Page | undefined = () => lastOpened,
): (name: string, fn: () => Promise<void>) => void {
  return (name, fn) => {
    it(name, async () => {
      try {
        await fn();
      } catch (err) {
        const p = page();
        if (p !== undefined && !p.isClosed()) await diagnose(p);
        throw err;
      }
    });
  };
}

/** Saves a screenshot of the page as docs/console/<name>.png. */
export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** Median of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
