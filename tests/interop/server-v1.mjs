// v1 resource server: legacy x402-express 1.x paymentMiddleware, charging `amount` atomic
// units of our deployed FiatToken for GET /paid on network "base-sepolia" (chain 84532).
// The facilitator URL is mandatory and must be loopback (x402-express defaults to a public host).
// CLI: node server-v1.mjs --facilitator URL --token 0x.. [--pay-to 0x..] [--amount 1250000] [--port 0]
import express from "express";
import { paymentMiddleware } from "x402-express";
import { ADDRESSES, TOKEN_NAME, TOKEN_VERSION } from "./chain.mjs";
import { arg, isMain, listen, requireLoopback } from "./util.mjs";

export const PRICE_ATOMIC = "1250000";

export async function startServerV1({
  facilitatorUrl, token, payTo = ADDRESSES.payTo, amount = PRICE_ATOMIC, port = 0,
  tokenName = TOKEN_NAME, tokenVersion = TOKEN_VERSION,
}) {
  const url = requireLoopback(facilitatorUrl, "facilitator URL");
  if (!token) throw new Error("server-v1: the token (asset) address is required");
  const app = express();
  app.use(paymentMiddleware(payTo, {
    "GET /paid": {
      // Legacy ERC20TokenAmount: {amount, asset:{address, decimals, eip712:{name, version}}};
      // "$1.25" would resolve to the public Base Sepolia USDC.
      price: { amount: String(amount), asset: { address: token, decimals: 6, eip712: { name: tokenName, version: tokenVersion } } },
      network: "base-sepolia",
      config: { description: "Worldstore interop test resource", mimeType: "application/json", maxTimeoutSeconds: 300 },
    },
  }, { url }));
  app.get("/paid", (_req, res) => res.json({ ok: true, item: "interop-widget" }));
  const server = await listen(app, port);
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.closeAll() };
}

if (isMain(import.meta.url)) {
  const s = await startServerV1({
    facilitatorUrl: arg("--facilitator"), token: arg("--token"),
    payTo: arg("--pay-to") ?? ADDRESSES.payTo, amount: arg("--amount") ?? PRICE_ATOMIC,
    port: Number(arg("--port") ?? 0),
  });
  console.log(JSON.stringify({ server: s.url, paid: `${s.url}/paid` }));
}
