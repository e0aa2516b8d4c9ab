// The SDK's reference facilitator: @x402/core x402Facilitator + @x402/evm exact scheme,
// served by express on 127.0.0.1: POST /verify, POST /settle, GET /supported.
// v2 kind: exact on eip155:84532; v1 kind: exact on base-sepolia. The token is whatever
// the requirements name (the facilitator takes asset + extra.{name,version} from them).
// CLI: node facilitator.mjs --rpc http://127.0.0.1:PORT [--port 0] [--key 0x..] [--legacy-v1]
import express from "express";
import { createWalletClient, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { x402Facilitator } from "@x402/core/facilitator";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { ExactEvmScheme } from "@x402/evm/exact/facilitator";
import { ExactEvmSchemeV1 } from "@x402/evm/exact/v1/facilitator";
import { verify as legacyVerify, settle as legacySettle } from "x402/facilitator";
import { KEYS, localChain } from "./chain.mjs";
import { arg, isMain, listen } from "./util.mjs";

// legacyV1: answer x402Version 1 requests with the legacy `x402` 1.x facilitator functions
// (x402/facilitator verify/settle) instead of @x402/evm's ExactEvmSchemeV1.
export async function startFacilitator({ rpcUrl, key = KEYS.facilitator, port = 0, legacyV1 = false }) {
  const account = privateKeyToAccount(key);
  const client = createWalletClient({ account, chain: localChain(rpcUrl), transport: http(rpcUrl) })
    .extend(publicActions);
  const signer = toFacilitatorEvmSigner({
    address: account.address,
    readContract: (a) => client.readContract(a),
    verifyTypedData: (a) => client.verifyTypedData(a),
    writeContract: (a) => client.writeContract(a),
    sendTransaction: (a) => client.sendTransaction(a),
    waitForTransactionReceipt: (a) => client.waitForTransactionReceipt({ pollingInterval: 100, ...a }),
    getCode: (a) => client.getCode(a),
  });
  // Register only the one chain anvil serves (registerExactEvmScheme would also claim every
  // v1 network name: base, polygon, ... which this facilitator cannot settle on).
  const facilitator = new x402Facilitator()
    .register("eip155:84532", new ExactEvmScheme(signer))
    .registerV1("base-sepolia", new ExactEvmSchemeV1(signer));

  const app = express();
  app.use(express.json());
  const log = [];
  const handle = (op) => async (req, res) => {
    const { paymentPayload, paymentRequirements } = req.body ?? {};
    try {
      const result = legacyV1 && paymentPayload?.x402Version === 1
        // The legacy functions take a viem client whose chain id is the network's (84532);
        // the token address and EIP-712 name/version come from the requirements.
        ? await (op === "verify" ? legacyVerify : legacySettle)(client, paymentPayload, paymentRequirements)
        : await facilitator[op](paymentPayload, paymentRequirements);
      log.push({ op, x402Version: paymentPayload?.x402Version, legacy: legacyV1 && paymentPayload?.x402Version === 1, result });
      res.json(result);
    } catch (e) {
      log.push({ op, error: String(e?.message ?? e) });
      res.status(500).json({ error: String(e?.message ?? e) });
    }
  };
  app.post("/verify", handle("verify"));
  app.post("/settle", handle("settle"));
  app.get("/supported", (_req, res) => res.json(facilitator.getSupported()));
  const server = await listen(app, port);
  return { url: `http://127.0.0.1:${server.address().port}`, signer: account.address, log, close: () => server.closeAll() };
}

if (isMain(import.meta.url)) {
  const rpcUrl = arg("--rpc");
  if (!rpcUrl) { console.error("usage: node facilitator.mjs --rpc URL [--port N] [--key 0x..] [--legacy-v1]"); process.exit(2); }
  const f = await startFacilitator({
    rpcUrl, port: Number(arg("--port") ?? 0), key: arg("--key") ?? KEYS.facilitator,
    legacyV1: process.argv.includes("--legacy-v1"),
  });
  console.log(JSON.stringify({ facilitator: f.url, signer: f.signer }));
}
