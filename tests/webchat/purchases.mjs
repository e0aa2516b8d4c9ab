// Buys N times through the web chat of a running `worldstore demo`, each time as a new user
// (new users get the faucet's sandbox USDC): profile, search, "buy 1", "yes", until the
// payment's transaction card shows. Used to measure the demo's memory after N purchases.
//   node purchases.mjs --url http://127.0.0.1:PORT [--count 100]
// Prints one JSON line: purchases, seconds, p50 and max milliseconds per purchase.
import { launch, openPage, parseArgs, say } from "./lib.mjs";

const argv = process.argv.slice(2);
const at = argv.indexOf("--count");
const count = at >= 0 ? Number(argv.splice(at, 2)[1]) : 100;
const args = parseArgs(argv, { target: "demo" });
const T = { timeout: args.timeout };
const stamp = Date.now().toString(36);
const browser = await launch();
const times = [];
const started = performance.now();
for (let i = 0; i < count; i++) {
  const page = await openPage(browser, args, `load-${stamp}-${i}`);
  const t0 = performance.now();
  await say(page, `name: Load Tester ${i}, email: load${i}@example.com, address: ${i + 1} Main St, Seattle, WA 98101`);
  await page.getByTestId("text").filter({ hasText: /profile is complete/i }).first().waitFor(T);
  await say(page, "search usb-c cable");
  await page.getByTestId("product-card").first().waitFor(T);
  await say(page, "buy 1");
  await page.getByTestId("quote-card").first().waitFor(T);
  await say(page, "yes");
  await page.locator('[data-testid="tx-card"][data-purpose="payment"]').first().waitFor(T);
  times.push(performance.now() - t0);
  if (page.problems.length) throw new Error(page.problems.join("\n"));
  await page.context().close();
}
await browser.close();
times.sort((a, b) => a - b);
const ms = (v) => Math.round(v);
console.log(JSON.stringify({
  purchases: count,
  seconds: Math.round((performance.now() - started) / 100) / 10,
  p50_ms: ms(times[Math.floor(count / 2)]),
  max_ms: ms(times[count - 1]),
}));
