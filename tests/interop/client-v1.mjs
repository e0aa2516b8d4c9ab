// v1 client: legacy x402-fetch 1.x wrapFetchWithPayment with a viem local account (signing
// only: no RPC call, so the public Base Sepolia RPC of createSigner() is never used).
// maxValue defaults to 0.10 USDC in x402-fetch; we pass a higher cap.
// CLI: node client-v1.mjs --url http://127.0.0.1:PORT/paid [--key 0x..] [--max 10000000]
import { wrapFetchWithPayment } from "x402-fetch";
import { privateKeyToAccount } from "viem/accounts";
import { KEYS } from "./chain.mjs";
import { arg, b64json, isMain, requireLoopback } from "./util.mjs";

export async function payV1({ url, key = KEYS.buyer, maxValue = 100_000_000n, init = { method: "GET" } }) {
  requireLoopback(url, "resource URL");
  const payFetch = wrapFetchWithPayment(fetch, privateKeyToAccount(key), BigInt(maxValue));
  const res = await payFetch(url, init);
  const header = res.headers.get("x-payment-response");
  const settlement = b64json(header);
  const body = await res.text();
  return {
    client: "v1",
    status: res.status,
    settlementHeader: header ? "X-PAYMENT-RESPONSE" : null,
    settlement,
    tx: settlement?.transaction ?? null,
    body: body.slice(0, 500),
  };
}

if (isMain(import.meta.url)) {
  const out = await payV1({ url: arg("--url"), key: arg("--key") ?? KEYS.buyer, maxValue: arg("--max") ?? 10_000_000n })
    .catch((e) => ({ client: "v1", status: null, error: String(e?.message ?? e) }));
  console.log(JSON.stringify(out));
  process.exit(out.status === 200 && out.settlement?.success ? 0 : 1);
}
