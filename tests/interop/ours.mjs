// Our Rust facilitator (`worldstore serve --role facilitator`) as a peer in the scenarios.
// The binary comes from $WORLDSTORE_BIN (scripts/interop builds it); it listens on
// 127.0.0.1 port 0 and prints "listening on http://127.0.0.1:PORT".
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KEYS } from "./chain.mjs";

export function startOurFacilitator({ rpcUrl, token }) {
  return startOurs(["--role", "facilitator", "--rpc-url", rpcUrl, "--token", token]);
}

// Our order server + facilitator (`worldstore serve --role merchant,facilitator`) on the
// chain, with the sandbox fulfilment (Crossmint is not reachable here). The treasury, which
// receives payments and pays gas, is the facilitator key's address.
export function startOurMerchant({ rpcUrl, token }) {
  return startOurs(["--role", "merchant,facilitator", "--commerce", "sandbox", "--rpc-url", rpcUrl, "--token", token]);
}

async function startOurs(roleArgs) {
  const bin = process.env.WORLDSTORE_BIN;
  if (!bin) throw new Error("WORLDSTORE_BIN is not set: build `worldstore` and point at it");
  const dataDir = mkdtempSync(join(tmpdir(), "worldstore-interop-"));
  const child = spawn(bin, ["serve", ...roleArgs, "--port", "0", "--data-dir", dataDir], {
    env: { ...process.env, FACILITATOR_PRIVATE_KEY: KEYS.facilitator, WORLDSTORE_DATA_KEY: "11".repeat(32), RUST_LOG: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`our server did not start: ${seen}`)), 30_000);
    child.stdout.on("data", (chunk) => {
      seen += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(seen);
      if (match) { clearTimeout(timer); resolve(match[1]); }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`our server exited with ${code}: ${seen}`)); });
  });
  const close = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { url, close, log: [], pid: child.pid };
}

// Our x402 client (`worldstore x402 pay`) paying a resource: it reads the 402, checks the
// offer (network, token, cap), signs with the buyer key and repeats the request.
export async function payWithOurs({ url, key, token, max = "10" }) {
  const bin = process.env.WORLDSTORE_BIN;
  if (!bin) throw new Error("WORLDSTORE_BIN is not set: build `worldstore` and point at it");
  const child = spawn(bin, ["x402", "pay", "--url", url, "--token", token, "--max", max], {
    env: { ...process.env, WORLDSTORE_PAYER_KEY: key, RUST_LOG: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (c) => { out += c; });
  child.stderr.on("data", (c) => { err += c; });
  const code = await new Promise((resolve) => child.on("exit", resolve));
  if (code !== 0) return { client: "worldstore", status: null, error: err.trim() || `exit ${code}` };
  const answer = JSON.parse(out.trim().split("\n").pop());
  return { ...answer, settlementHeader: answer.settlement ? "decoded" : null };
}
