// Checks of the page itself against the scripted test server (adapters' webchat
// `scripted` responder, run by `cargo run -p worldstore-adapters --example webchat_scripted`):
//
//   node page.mjs --url http://127.0.0.1:PORT [--only escaping,markdown,...] [--out DIR]
//
// escaping:  hostile catalogue text shows as text; no script runs, no javascript: image.
// markdown:  bold, https links (new tab, no referrer), line breaks; other markup stays text.
// keyboard:  the input is labelled and focused, Enter sends, menu buttons answer by keyboard.
// isolation: two users in two browsers never see each other's messages.
// cards:     the funding card and transaction references render with their data.
import { closeClean, expect, openPage, parseArgs, runChecks, say, shot } from "./lib.mjs";

const args = parseArgs(process.argv.slice(2));
const T = { timeout: args.timeout };
const stamp = Date.now().toString(36);

const checks = {
  async escaping(browser) {
    const page = await openPage(browser, args, `escape-${stamp}`);
    await say(page, "search earbuds");
    const hostile = page.locator('[data-testid="product-card"][data-asin="B0SCRIPT03"]');
    await hostile.waitFor(T);
    const title = await hostile.getByTestId("product-title").textContent();
    expect(title.includes("<img src=x") && title.includes("<script>"), `the hostile title shows as text (${title})`);
    expect((await page.locator("#transcript script, #transcript img[src='x']").count()) === 0, "no element was injected");
    expect((await hostile.locator("img").count()) === 0, "a javascript: image is not loaded");
    expect((await hostile.getByTestId("product-price").textContent()) === "price unknown", "a missing price is said");
    expect(await page.evaluate(() => window.__xss === undefined), "no injected script ran");
    const good = page.locator('[data-testid="product-card"][data-asin="B0SCRIPT01"]');
    expect((await good.getByTestId("product-rating").textContent()).includes("1,287 reviews"), "rating and reviews shown");
    expect((await good.locator("img").count()) === 1, "the product image shows");
    // The buy buttons were bound to the quick-buy menu, which is then not shown twice.
    expect(await good.getByTestId("product-buy").isEnabled(), "Buy is enabled once the menu arrived");
    expect(!(await page.locator('[data-testid="menu"][data-kind="QuickBuy"]').isVisible()), "the quick-buy menu is folded into the cards");
    await shot(page, args, "page-escaping");
    await closeClean(page);
  },

  async markdown(browser) {
    const page = await openPage(browser, args, `md-${stamp}`);
    await say(page, "markdown");
    const text = page.getByTestId("text").last();
    await text.filter({ hasText: "second line" }).waitFor(T);
    expect((await text.locator("strong").textContent()) === "Bold", "bold");
    const links = text.locator("a");
    expect((await links.count()) === 1, "one link: the javascript: one stays text");
    expect((await links.first().getAttribute("href")) === "https://example.com/help", "https link");
    expect((await links.first().getAttribute("rel")) === "noopener noreferrer", "link rel");
    expect((await links.first().getAttribute("target")) === "_blank", "opens in a new tab");
    expect((await text.locator("br").count()) === 1, "line break");
    expect((await text.textContent()).includes("<b>not bold</b>"), "raw HTML stays text");
    expect((await text.locator("b").count()) === 0, "no b element");
    await closeClean(page);
  },

  async keyboard(browser) {
    const page = await openPage(browser, args, `kbd-${stamp}`);
    const input = page.getByLabel("Message");
    expect(await input.evaluate((el) => el === document.activeElement), "the message input has focus");
    await page.keyboard.type("hi");
    await page.keyboard.press("Enter");
    const menu = page.getByTestId("menu").nth(0);
    await menu.waitFor(T);
    expect((await input.inputValue()) === "", "the input is cleared after sending");
    const first = menu.getByTestId("menu-action").first();
    await first.focus();
    await page.keyboard.press("Enter");
    await page.locator('[data-testid="menu-action"][aria-pressed="true"]').first().waitFor(T);
    // The reply to the intent (the main menu again) arrives; the answered menu is disabled.
    await page.getByTestId("menu").nth(1).waitFor(T);
    expect(await first.isDisabled(), "an answered menu cannot be answered again");
    expect(await input.evaluate((el) => el === document.activeElement), "focus is back in the input");
    await shot(page, args, "page-keyboard");
    await closeClean(page);
  },

  async isolation(browser) {
    const a = await openPage(browser, args, `alice-${stamp}`);
    const b = await openPage(browser, args, `bob-${stamp}`);
    await say(a, "secret of alice");
    await say(b, "search earbuds");
    await a.getByTestId("menu").last().waitFor(T);
    await b.getByTestId("product-card").first().waitFor(T);
    expect((await b.getByText("secret of alice").count()) === 0, "bob does not see alice's message");
    expect((await a.getByTestId("product-card").count()) === 0, "alice does not see bob's products");
    expect((await a.getByTestId("user-id").textContent()) === `alice-${stamp}`, "alice's id shows");
    await closeClean(a);
    await closeClean(b);
  },

  async cards(browser) {
    const page = await openPage(browser, args, `cards-${stamp}`);
    await say(page, "fund");
    const card = page.getByTestId("funding-card").last();
    await card.waitFor(T);
    expect((await card.getByTestId("funding-amount").textContent()) === "50.00 USDC", "funding amount");
    await card.getByTestId("funding-approve").click();
    const tx = page.locator('[data-testid="tx-card"][data-purpose="funding"]').last();
    await tx.waitFor(T);
    expect(await card.getByTestId("funding-approve").isDisabled(), "approved once");
    const link = tx.getByTestId("tx-link");
    const hash = tx.getByTestId("tx-hash");
    expect((await link.count()) + (await hash.count()) === 1, "a link or a hash");
    if (await link.count()) {
      expect((await link.getAttribute("href")).startsWith("https://sepolia.basescan.org/tx/0xabab"), "base-sepolia explorer link");
    }
    await shot(page, args, "page-cards");
    await closeClean(page);
  },
};

await runChecks(args, checks);
