// Interop scenarios. Every scenario prints ONE JSON summary line on stdout and exits 0 only
// on success. Everything listens on 127.0.0.1; anvil is killed on exit.
//
//   node run.mjs sdk-v2                 v2 client -> @x402/express -> reference facilitator
//   node run.mjs sdk-v1                 v1 x402-fetch -> x402-express -> reference facilitator
//   node run.mjs sdk-v2-client-v1-server  @x402/fetch client -> x402-express (v1 on the wire)
//   node run.mjs sdk-v1-legacy-facilitator  as sdk-v1, but v1 verify/settle by legacy x402/facilitator
//   node run.mjs ours-facilitator-v2    v2 client -> @x402/express -> OUR facilitator ($WORLDSTORE_BIN)
//   node run.mjs ours-facilitator-v1    x402-fetch -> x402-express -> OUR facilitator
//   node run.mjs ours-merchant-v2       @x402/fetch buys through OUR order server (POST /api/orders)
//   node run.mjs ours-merchant-v1       x402-fetch buys through OUR order server
//   node run.mjs ours-client-v2        OUR x402 client -> @x402/express -> reference facilitator
//   node run.mjs ours-client-v1        OUR x402 client -> x402-express -> reference facilitator
//   node run.mjs chain [--legacy-v1]    anvil + FiatToken + reference facilitator; stays up
//   node run.mjs serve-v2 --facilitator URL [--rpc URL --token 0x..] [--port N]   stays up
//   node run.mjs serve-v1 --facilitator URL [--rpc URL --token 0x..] [--port N]   stays up
//   node run.mjs pay-v2 --url URL [--key 0x..] [--rpc URL --token 0x.. --pay-to 0x.. --amount N]
//   node run.mjs pay-v1 --url URL [--key 0x..] [--rpc URL --token 0x.. --pay-to 0x.. --amount N]
// serve-*: without --rpc/--token a fresh anvil + FiatToken is started and its details printed,
// so an external facilitator (our Rust one) can be pointed at the same chain.
// pay-*: with --rpc and --token the buyer/payTo balance deltas are checked on chain.
import { ADDRESSES, KEYS, balanceOf, startChain, transactionReceipt } from "./chain.mjs";
import { startFacilitator } from "./facilitator.mjs";
import { startServerV2, PRICE_ATOMIC } from "./server-v2.mjs";
import { startServerV1 } from "./server-v1.mjs";
import { payV2 } from "./client-v2.mjs";
import { payV1 } from "./client-v1.mjs";
import { arg, requireLoopback } from "./util.mjs";
import { payWithOurs, startOurFacilitator, startOurMerchant } from "./ours.mjs";

const scenario = process.argv[2];
const cleanups = [];
const cleanup = async () => { while (cleanups.length) await cleanups.pop()().catch(() => {}); };
const str = (v) => (typeof v === "bigint" ? v.toString() : v);
const emit = (obj) => console.log(JSON.stringify(obj, (_k, v) => str(v)));

/** Pays `url` with `pay` and checks the on-chain effect: buyer -price, payTo +price, receipt ok. */
async function payAndCheck({ pay, url, key, rpcUrl, token, payTo, amount, init }) {
  const buyer = (await import("viem/accounts")).privateKeyToAccount(key).address;
  const check = rpcUrl && token;
  const before = check ? { buyer: await balanceOf(rpcUrl, token, buyer), payTo: await balanceOf(rpcUrl, token, payTo) } : null;
  const out = await pay({ url, key, init });
  const summary = { ...out, buyer, payTo, price: String(amount) };
  const failures = [];
  if (out.status !== 200) failures.push(`HTTP status ${out.status}`);
  if (!out.settlement?.success) failures.push("settlement header missing or not successful");
  if (!/^0x[0-9a-fA-F]{64}$/.test(out.tx ?? "")) failures.push("no transaction hash");
  if (check) {
    const after = { buyer: await balanceOf(rpcUrl, token, buyer), payTo: await balanceOf(rpcUrl, token, payTo) };
    summary.balances = { before, after };
    if (before.buyer - after.buyer !== BigInt(amount)) failures.push(`buyer balance dropped by ${before.buyer - after.buyer}, expected ${amount}`);
    if (after.payTo - before.payTo !== BigInt(amount)) failures.push(`payTo balance rose by ${after.payTo - before.payTo}, expected ${amount}`);
    if (failures.length === 0) {
      const receipt = await transactionReceipt(rpcUrl, out.tx);
      summary.receipt = { status: receipt.status, from: receipt.from, gasUsed: receipt.gasUsed, block: receipt.blockNumber };
      if (receipt.status !== "success") failures.push(`receipt status ${receipt.status}`);
    }
  }
  summary.ok = failures.length === 0;
  if (failures.length) summary.failures = failures;
  return summary;
}

async function sdkScenario({ startServer, pay, legacyV1 = false, ours = false, ourClient = false }) {
  const chain = await startChain();
  cleanups.push(chain.stop);
  const facilitator = ours
    ? await startOurFacilitator({ rpcUrl: chain.rpcUrl, token: chain.token })
    : await startFacilitator({ rpcUrl: chain.rpcUrl, legacyV1 });
  cleanups.push(facilitator.close);
  const server = await startServer({ facilitatorUrl: facilitator.url, token: chain.token });
  cleanups.push(server.close);
  const payer = ourClient ? ({ url, key }) => payWithOurs({ url, key, token: chain.token }) : pay;
  const summary = await payAndCheck({
    pay: payer, url: `${server.url}/paid`, key: KEYS.buyer, rpcUrl: chain.rpcUrl, token: chain.token,
    payTo: ADDRESSES.payTo, amount: PRICE_ATOMIC,
  });
  return { scenario, token: chain.token, rpc: chain.rpcUrl, facilitator: facilitator.url, server: server.url,
    facilitatorCalls: facilitator.log.map((l) => `${l.op}:v${l.x402Version}${l.legacy ? "-legacy" : ""}:${l.result ? (l.result.isValid ?? l.result.success) : "error"}`),
    ...summary };
}

/** A real SDK client buys a product through our order server: the original request body,
 * a 402 with the v1 body and the v2 header, the client's signed retry, settlement on chain. */
async function merchantScenario({ pay }) {
  const chain = await startChain();
  cleanups.push(chain.stop);
  const ours = await startOurMerchant({ rpcUrl: chain.rpcUrl, token: chain.token });
  cleanups.push(ours.close);
  const init = {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      productLocator: "amazon:B0BSZBC3R5",
      email: "pat@example.com",
      physicalAddress: { name: "Pat Lee", line1: "1 Main St", city: "Seattle", state: "WA", postalCode: "98101", country: "US" },
      payment: { method: "base-sepolia", currency: "usdc" },
    }),
  };
  const url = `${ours.url}/api/orders`;
  // The quote first, as a person would see it; the client's own request reuses that order.
  const quote = await fetch(url, init);
  const quoteBody = await quote.json();
  if (quote.status !== 402 || !quote.headers.get("payment-required")) {
    return { scenario, ok: false, failures: [`quote answered ${quote.status}`], body: quoteBody };
  }
  const amount = quoteBody.accepts[0].maxAmountRequired;
  const summary = await payAndCheck({
    pay, url, key: KEYS.buyer, rpcUrl: chain.rpcUrl, token: chain.token,
    payTo: ADDRESSES.facilitator, amount, init,
  });
  const paidOrder = (() => { try { return JSON.parse(summary.body).orderId; } catch { return null; } })();
  if (summary.ok && paidOrder !== quoteBody.orderId) {
    summary.ok = false;
    summary.failures = [`paid order ${paidOrder}, quoted ${quoteBody.orderId}`];
  }
  return { scenario, server: ours.url, token: chain.token, orderId: quoteBody.orderId, ...summary };
}

async function chainFor(rpcUrl, token) {
  if (rpcUrl || token) {
    if (!(rpcUrl && token)) throw new Error("--rpc and --token go together");
    return { rpcUrl: requireLoopback(rpcUrl, "--rpc"), token };
  }
  const chain = await startChain();
  cleanups.push(chain.stop);
  const { stop, ...info } = chain;
  return info;
}

const stayUp = () => new Promise(() => setInterval(() => {}, 1 << 30));

async function main() {
  switch (scenario) {
    case "sdk-v2": return sdkScenario({ startServer: startServerV2, pay: payV2 });
    case "sdk-v1": return sdkScenario({ startServer: startServerV1, pay: payV1 });
    case "sdk-v2-client-v1-server": return sdkScenario({ startServer: startServerV1, pay: payV2 });
    case "sdk-v1-legacy-facilitator": return sdkScenario({ startServer: startServerV1, pay: payV1, legacyV1: true });
    // Our Rust facilitator serving the SDKs' own resource servers, paid by their own clients.
    case "ours-facilitator-v2": return sdkScenario({ startServer: startServerV2, pay: payV2, ours: true });
    case "ours-facilitator-v1": return sdkScenario({ startServer: startServerV1, pay: payV1, ours: true });
    // Our x402 client paying the SDKs' resource servers, settled by the reference facilitator.
    case "ours-client-v2": return sdkScenario({ startServer: startServerV2, ourClient: true });
    case "ours-client-v1": return sdkScenario({ startServer: startServerV1, ourClient: true });
    // Real SDK clients buying through our order server.
    case "ours-merchant-v2": return merchantScenario({ pay: payV2 });
    case "ours-merchant-v1": return merchantScenario({ pay: payV1 });
    case "chain": {
      const chain = await chainFor();
      const facilitator = await startFacilitator({ rpcUrl: chain.rpcUrl, legacyV1: process.argv.includes("--legacy-v1") });
      cleanups.push(facilitator.close);
      emit({ scenario, ...chain, facilitator: facilitator.url, facilitatorSigner: facilitator.signer, ready: true });
      return stayUp();
    }
    case "serve-v2":
    case "serve-v1": {
      const facilitatorUrl = arg("--facilitator");
      if (!facilitatorUrl) throw new Error(`${scenario} needs --facilitator http://127.0.0.1:PORT`);
      const chain = await chainFor(arg("--rpc"), arg("--token"));
      const start = scenario === "serve-v2" ? startServerV2 : startServerV1;
      const server = await start({ facilitatorUrl, token: chain.token, port: Number(arg("--port") ?? 0),
        payTo: arg("--pay-to") ?? ADDRESSES.payTo, amount: arg("--amount") ?? PRICE_ATOMIC });
      cleanups.push(server.close);
      emit({ scenario, ...chain, facilitator: facilitatorUrl, server: server.url, paid: `${server.url}/paid`, ready: true });
      return stayUp();
    }
    case "pay-v2":
    case "pay-v1": {
      const url = arg("--url");
      if (!url) throw new Error(`${scenario} needs --url http://127.0.0.1:PORT/...`);
      const summary = await payAndCheck({
        pay: scenario === "pay-v2" ? payV2 : payV1, url, key: arg("--key") ?? KEYS.buyer,
        rpcUrl: arg("--rpc"), token: arg("--token"), payTo: arg("--pay-to") ?? ADDRESSES.payTo,
        amount: arg("--amount") ?? PRICE_ATOMIC,
      });
      return { scenario, ...summary };
    }
    default:
      throw new Error(`unknown scenario ${JSON.stringify(scenario)}; see the header of run.mjs`);
  }
}

let code = 1;
try {
  const summary = await main();
  emit(summary);
  code = summary.ok ? 0 : 1;
} catch (e) {
  emit({ scenario, ok: false, error: String(e?.stack ?? e) });
} finally {
  await cleanup();
}
process.exit(code);
