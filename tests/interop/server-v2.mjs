// v2 resource server: @x402/express paymentMiddleware + @x402/core x402ResourceServer,
// charging `price` (atomic units of our deployed FiatToken) for GET /paid on eip155:84532.
// The facilitator URL is mandatory and must be loopback (never the public default).
// CLI: node server-v2.mjs --facilitator URL --token 0x.. [--pay-to 0x..] [--amount 1250000] [--port 0]
import express from "express";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { ADDRESSES, TOKEN_NAME, TOKEN_VERSION } from "./chain.mjs";
import { arg, isMain, listen, requireLoopback } from "./util.mjs";

export const PRICE_ATOMIC = "1250000"; // $1.25 in USDC atomic units (6 decimals)

export async function startServerV2({
  facilitatorUrl, token, payTo = ADDRESSES.payTo, amount = PRICE_ATOMIC, port = 0,
  tokenName = TOKEN_NAME, tokenVersion = TOKEN_VERSION,
}) {
  const url = requireLoopback(facilitatorUrl, "facilitator URL");
  if (!token) throw new Error("server-v2: the token (asset) address is required");
  const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url }))
    .register("eip155:84532", new ExactEvmScheme());
  const routes = {
    "GET /paid": {
      accepts: {
        scheme: "exact",
        network: "eip155:84532",
        payTo,
        // An AssetAmount (not "$1.25"): a Money price would map to the public Base Sepolia
        // USDC; the custom token needs its address and EIP-712 domain in `extra`.
        price: { amount: String(amount), asset: token, extra: { name: tokenName, version: tokenVersion } },
        maxTimeoutSeconds: 300,
      },
      description: "Worldstore interop test resource",
      mimeType: "application/json",
    },
  };
  const app = express();
  app.use(paymentMiddleware(routes, resourceServer));
  app.get("/paid", (_req, res) => res.json({ ok: true, item: "interop-widget" }));
  const server = await listen(app, port);
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.closeAll() };
}

if (isMain(import.meta.url)) {
  const s = await startServerV2({
    facilitatorUrl: arg("--facilitator"), token: arg("--token"),
    payTo: arg("--pay-to") ?? ADDRESSES.payTo, amount: arg("--amount") ?? PRICE_ATOMIC,
    port: Number(arg("--port") ?? 0),
  });
  console.log(JSON.stringify({ server: s.url, paid: `${s.url}/paid` }));
}
