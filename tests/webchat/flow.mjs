// The buyer's flows through the web chat page, using only what a person sees (data-testid
// hooks and visible texts), so the same script runs against the scripted test server and
// against `worldstore demo`:
//
//   node flow.mjs --url http://127.0.0.1:PORT [--target scripted|demo] [--timeout MS]
//                 [--only buy,funding,reload,server-drop] [--out DIR]
//
// buy:         search, Buy on the first product, the quote card, Confirm, a payment
//              transaction, and the order timeline reaching delivered.
// funding:     user demo-unfunded: the same, but Confirm asks for funds; Approve, a funding
//              transaction, then the purchase resumes by itself to delivered.
// reload:      reloading shows the same conversation, every message once.
// server-drop: (scripted only) the server closes the socket; the page reconnects and shows
//              what was sent meanwhile, once.
import { closeClean, expect, expectCleanTranscript, openPage, parseArgs, runChecks, say, seqs, shot } from "./lib.mjs";

const args = parseArgs(process.argv.slice(2));
if (args.help) {
  console.log("usage: node flow.mjs --url URL [--target scripted|demo] [--timeout MS] [--only a,b] [--out DIR]");
  process.exit(0);
}
const T = { timeout: args.timeout };
const stamp = Date.now().toString(36);

async function searchAndBuy(page, prefix) {
  const before = await page.getByTestId("product-card").count();
  await say(page, "search earbuds");
  await page.getByTestId("product-card").nth(before).waitFor(T);
  const title = (await page.getByTestId("product-title").nth(before).textContent()).trim();
  expect(title.length > 0, "the first product has a title");
  const price = await page.getByTestId("product-price").nth(before).textContent();
  expect(/\d/.test(price), `the first product shows a price (${price})`);
  await shot(page, args, `${prefix}-1-products`);

  const buy = page.getByTestId("product-buy").nth(before);
  await buy.and(page.locator(":enabled")).waitFor(T);
  const quotes = await page.getByTestId("quote-card").count();
  await buy.click();
  const quote = page.getByTestId("quote-card").nth(quotes);
  await quote.waitFor(T);
  const total = await quote.getByTestId("quote-total").textContent();
  expect(/\d/.test(total), `the quote shows a total (${total})`);
  expect((await quote.getByTestId("quote-product").textContent()).trim() === title, "the quote is for the product bought");
  await shot(page, args, `${prefix}-2-quote`);

  const orderId = await quote.getAttribute("data-order-id");
  // The domain's confirm menu: action "confirm", labelled "Confirm and pay".
  const confirm = quote.locator('[data-testid="menu-action"][data-action-id="confirm"]')
    .or(page.getByRole("button", { name: /^confirm/i })).last();
  await confirm.and(page.locator(":enabled")).waitFor(T);
  const payments = await payment(page).count();
  await confirm.click();
  return { title, total, orderId, payments };
}

const payment = (page) => page.locator('[data-testid="tx-card"][data-purpose="payment"]');

/// The timeline of the order quoted (the quote's order id), not of an earlier one.
async function expectDelivered(page, prefix, orderId) {
  const timeline = page.getByTestId("order-timeline").and(page.locator(`[data-order-id=${JSON.stringify(orderId)}]`));
  await timeline.locator('[data-testid="order-step"][data-stage="delivered"][data-state="done"]').waitFor(T);
  for (const stage of ["paid", "shipped"]) {
    const state = await timeline.locator(`[data-testid="order-step"][data-stage="${stage}"]`).getAttribute("data-state");
    expect(state === "done", `order step ${stage} is done`);
  }
  await shot(page, args, `${prefix}-4-delivered`);
}

/// A payment transaction card beyond the `before` already shown.
async function expectPayment(page, before) {
  const tx = payment(page).nth(before);
  await tx.waitFor(T);
  const link = tx.getByTestId("tx-link");
  if (await link.count()) {
    const href = await link.getAttribute("href");
    expect(/^https:\/\/(sepolia\.)?basescan\.org\/tx\/0x[0-9a-f]{64}$/.test(href), `explorer link ${href}`);
  } else {
    const hash = await tx.getByTestId("tx-hash").textContent();
    expect(/^0x[0-9a-f]{64}$/.test(hash.trim()), `transaction hash shown (${hash})`);
  }
}

const checks = {
  async buy(browser) {
    const page = await openPage(browser, args, args.target === "demo" ? "demo" : `buyer-${stamp}`);
    const bought = await searchAndBuy(page, "buy");
    await expectPayment(page, bought.payments);
    await shot(page, args, "buy-3-paid");
    await expectDelivered(page, "buy", bought.orderId);
    await expectCleanTranscript(page, "buy");
    await closeClean(page);
  },

  async funding(browser) {
    const page = await openPage(browser, args, "demo-unfunded");
    const fundings = await page.getByTestId("funding-card").count();
    const fundingTxs = await page.locator('[data-testid="tx-card"][data-purpose="funding"]').count();
    const bought = await searchAndBuy(page, "funding");
    const card = page.getByTestId("funding-card").nth(fundings);
    await card.waitFor(T);
    expect(/\d/.test(await card.getByTestId("funding-amount").textContent()), "the funding card shows an amount");
    await shot(page, args, "funding-3-request");
    await card.getByTestId("funding-approve").click();
    await card.and(page.locator('[data-state="approved"]')).waitFor(T);
    if (args.target === "scripted") {
      await page.locator('[data-testid="tx-card"][data-purpose="funding"]').nth(fundingTxs).waitFor(T);
      await page.getByTestId("text").filter({ hasText: /resumed/i }).last().waitFor(T);
    }
    // The purchase resumes without another click: paid, then delivered.
    await expectPayment(page, bought.payments);
    await expectDelivered(page, "funding", bought.orderId);
    await expectCleanTranscript(page, "funding");
    await closeClean(page);
  },

  async reload(browser) {
    const user = args.target === "demo" ? "demo" : `reload-${stamp}`;
    const page = await openPage(browser, args, user);
    await say(page, `hello ${stamp}`);
    await page.getByTestId("user-text").filter({ hasText: `hello ${stamp}` }).waitFor(T);
    const mine = page.locator('[data-testid="msg"][data-type="user"][data-seq]').filter({ hasText: `hello ${stamp}` });
    await mine.waitFor(T);
    const mySeq = Number(await mine.getAttribute("data-seq"));
    // Wait for the agent's answer: any later message that is not ours.
    await page.waitForFunction((seq) => [...document.querySelectorAll('[data-testid="msg"][data-seq]')]
      .some((n) => Number(n.dataset.seq) > seq && n.dataset.type !== "user"), mySeq, T);
    const before = await expectCleanTranscript(page, "before reload");
    const texts = await page.getByTestId("transcript").innerText();
    await page.reload();
    await page.locator('[data-testid="connection"][data-state="open"]').waitFor(T);
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="msg"][data-seq]').length >= n, before.length, T);
    const after = await expectCleanTranscript(page, "after reload");
    expect(JSON.stringify(after.slice(0, before.length)) === JSON.stringify(before), `the same messages after reload (${before} vs ${after})`);
    const shown = await page.getByTestId("user-text").filter({ hasText: `hello ${stamp}` }).count();
    expect(shown === 1, `my message shows once after reload (${shown})`);
    expect((await page.getByTestId("transcript").innerText()).startsWith(texts.slice(0, 200)), "the transcript reads the same");
    await shot(page, args, "reload");
    await closeClean(page);
  },

  async "server-drop"(browser) {
    if (args.target !== "scripted") return "needs the scripted responder's /drop";
    const page = await openPage(browser, args, `drop-${stamp}`);
    await say(page, "search earbuds");
    await page.getByTestId("product-card").first().waitFor(T);
    const before = (await seqs(page)).length;
    // The scripted responder closes this user's sockets, then sends a message.
    await say(page, "/drop");
    await page.getByTestId("text").filter({ hasText: "waited for you" }).waitFor(T);
    await page.locator('[data-testid="connection"][data-state="open"]').waitFor(T);
    const list = await expectCleanTranscript(page, "after drop");
    expect(list.length === before + 2, `the echo and the waiting message, once each (${before} -> ${list.length})`);
    expect((await page.getByTestId("text").filter({ hasText: "waited for you" }).count()) === 1, "no duplicate");
    await say(page, "markdown");
    await page.getByTestId("text").filter({ hasText: "second line" }).waitFor(T);
    await expectCleanTranscript(page, "after drop and more");
    await shot(page, args, "server-drop");
    await closeClean(page);
  },
};

await runChecks(args, checks);
