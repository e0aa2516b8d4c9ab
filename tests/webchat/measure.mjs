// Measures the web chat's round trip for a search, as a person sees it: from pressing Send
// to the product cards drawn (the browser, the WebSocket, the agent, the catalogue and back).
//   node measure.mjs --url http://127.0.0.1:PORT [--runs 20]
// Prints one JSON line: runs, p50 and max in milliseconds.
import { launch, openPage, parseArgs, say } from "./lib.mjs";

const argv = process.argv.slice(2);
const at = argv.indexOf("--runs");
const runs = at >= 0 ? Number(argv.splice(at, 2)[1]) : 20;
const args = parseArgs(argv);
const browser = await launch();
const page = await openPage(browser, args, `measure-${Date.now().toString(36)}`);
const times = [];
for (let i = 0; i < runs; i++) {
  const before = await page.getByTestId("product-card").count();
  const started = performance.now();
  await say(page, i % 2 ? "search earbuds" : "search usb-c cable");
  await page.getByTestId("product-card").nth(before).waitFor({ timeout: 30_000 });
  times.push(performance.now() - started);
}
await browser.close();
times.sort((a, b) => a - b);
const ms = (v) => Math.round(v * 10) / 10;
console.log(JSON.stringify({ runs, p50: ms(times[Math.floor(runs / 2)]), max: ms(times[runs - 1]) }));
