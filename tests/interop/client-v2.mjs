// v2 client: @x402/fetch wrapFetchWithPayment + x402Client with the EVM exact scheme
// (which also answers v1 servers with X-PAYMENT). Spend controls are disabled: the default
// allows only the SDK's known assets (our deployed token is not one) capped at $1.
// CLI: node client-v2.mjs --url http://127.0.0.1:PORT/paid [--key 0x..]  -> one JSON line
import { wrapFetchWithPayment, x402Client } from "@x402/fetch";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";
import { KEYS } from "./chain.mjs";
import { arg, b64json, isMain, requireLoopback } from "./util.mjs";

export async function payV2({ url, key = KEYS.buyer, init = { method: "GET" } }) {
  requireLoopback(url, "resource URL");
  const client = new x402Client();
  registerExactEvmScheme(client, { signer: privateKeyToAccount(key) });
  client.setSpendControls(false);
  const payFetch = wrapFetchWithPayment(fetch, client);
  const res = await payFetch(url, init);
  const header = res.headers.get("payment-response") ?? res.headers.get("x-payment-response");
  const settlement = b64json(header);
  const body = await res.text();
  // On a 402 the v2 server explains itself in PAYMENT-REQUIRED (error + accepts).
  const required = b64json(res.headers.get("payment-required"));
  return {
    client: "v2",
    status: res.status,
    settlementHeader: res.headers.has("payment-response") ? "PAYMENT-RESPONSE" : (header ? "X-PAYMENT-RESPONSE" : null),
    settlement,
    tx: settlement?.transaction ?? null,
    body: body.slice(0, 500),
    ...(required ? { paymentRequired: { error: required.error, accepts: required.accepts } } : {}),
  };
}

if (isMain(import.meta.url)) {
  const out = await payV2({ url: arg("--url"), key: arg("--key") ?? KEYS.buyer })
    .catch((e) => ({ client: "v2", status: null, error: String(e?.message ?? e) }));
  console.log(JSON.stringify(out));
  process.exit(out.status === 200 && out.settlement?.success ? 0 : 1);
}
