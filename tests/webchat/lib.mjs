// Shared helpers of the web chat browser tests: arguments, a headless Chromium from the
// system (never downloaded), page guards (no external request, no console error, no CSP
// violation) and screenshots under .work/artifacts/webchat/.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export function parseArgs(argv, defaults = {}) {
  const args = { url: null, target: "scripted", out: join(root, ".work/artifacts/webchat"), timeout: null, ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split("=", 2);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    if (flag === "--url") args.url = value();
    else if (flag === "--target") args.target = value();
    else if (flag === "--out") args.out = value();
    else if (flag === "--timeout") args.timeout = Number(value());
    else if (flag === "--only") args.only = value().split(",");
    else if (flag === "--help" || flag === "-h") args.help = true;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!args.help && !args.url) throw new Error("--url http://127.0.0.1:PORT is required");
  if (!["scripted", "demo"].includes(args.target)) throw new Error("--target is scripted or demo");
  // The real agent answers more slowly than the scripted responder (chain, fulfilment).
  args.timeout = args.timeout || (args.target === "demo" ? 60000 : 20000);
  args.url = args.url ? args.url.replace(/\/+$/, "") : args.url;
  mkdirSync(args.out, { recursive: true });
  return args;
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.WORLDSTORE_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}

/// A fresh context (own local storage) and page, with guards that record problems.
export async function openPage(browser, args, user) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const page = await context.newPage();
  const base = new URL(args.url);
  page.problems = [];
  // Against the real demo, catalogue images may live elsewhere: they are refused (tests
  // never use the network) but not counted as a page problem.
  const imagesMayBeExternal = args.target === "demo";
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (imagesMayBeExternal && m.text().startsWith("Failed to load resource")) return;
    page.problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => page.problems.push(`page error: ${e.message}`));
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.protocol === "data:") return;
    if (imagesMayBeExternal && r.resourceType() === "image") return;
    if (u.host !== base.host) page.problems.push(`external request: ${r.url()}`);
  });
  // Everything outside our origin is refused, so a test never waits on the network.
  await context.route((url) => url.host !== base.host, (route) => route.abort());
  await page.goto(`${args.url}/?user=${encodeURIComponent(user)}`);
  await page.locator('[data-testid="connection"][data-state="open"]').waitFor({ timeout: args.timeout });
  return page;
}

export function expect(condition, message) {
  if (!condition) throw new Error(`expectation failed: ${message}`);
}

export async function shot(page, args, name) {
  await page.screenshot({ path: join(args.out, `${args.target}-${name}.png`), fullPage: true });
}

export async function say(page, text) {
  const input = page.getByTestId("composer-input");
  await input.fill(text);
  await input.press("Enter");
}

/// The sequence numbers of the logged messages on screen, in order.
export async function seqs(page) {
  return page.$$eval('[data-testid="msg"][data-seq]', (nodes) => nodes.map((n) => Number(n.dataset.seq)));
}

/// Every seq once, increasing: no duplicate, no reordering.
export async function expectCleanTranscript(page, label) {
  const list = await seqs(page);
  for (let i = 1; i < list.length; i++) {
    expect(list[i] > list[i - 1], `${label}: seqs strictly increase (got ${list.join(",")})`);
  }
  return list;
}

/// Runs named checks, each in its own context; prints one line per check.
export async function runChecks(args, checks) {
  const browser = await launch();
  let failed = 0;
  try {
    for (const [name, check] of Object.entries(checks)) {
      if (args.only && !args.only.includes(name)) continue;
      const started = Date.now();
      try {
        const skipped = await check(browser);
        console.log(skipped ? `skip ${name}: ${skipped}` : `ok   ${name} (${Date.now() - started} ms)`);
      } catch (e) {
        failed += 1;
        console.log(`FAIL ${name}: ${e.stack || e}`);
      }
    }
  } finally {
    await browser.close();
  }
  console.log(failed ? `${failed} check(s) failed; screenshots in ${args.out}` : `all checks passed; screenshots in ${args.out}`);
  process.exitCode = failed ? 1 : 0;
}

export async function closeClean(page) {
  const problems = page.problems;
  await page.context().close();
  expect(problems.length === 0, `no console errors, CSP violations or external requests: ${problems.join("; ")}`);
}
