// Benchmark: OUR facilitator (`worldstore serve --role facilitator`, release build from
// $WORLDSTORE_BIN) against the SDK reference facilitator (facilitator.mjs: @x402/evm behind
// express), both on the same private anvil (automine) running Circle's FiatTokenV2_2, all
// on 127.0.0.1. Load comes from wrk (bench-wrk.lua). Run through scripts/bench-facilitator.
//
//   node bench.mjs [--duration 10] [--concurrency 1,8,32] [--json out.json]
//
// - /verify: one valid pre-signed body sent over and over (verify reserves nothing).
// - /settle: a distinct pre-signed authorization per request (wrk cycles through a file).
// - JSON-RPC calls per verification / settlement: a second instance of each facilitator
//   talks to anvil through a counting JSON-RPC proxy (batches counted per call); the
//   measured instances talk to anvil directly, so the proxy costs them nothing.
// Ours pays gas with anvil key #1, the reference with key #4, so their nonces never clash.
// /verify runs share one chain; every /settle run gets a fresh anvil and facilitator.
// Everything is stopped on exit; the whole run is bounded by the caller's timeout.
import { spawn, execFileSync } from "node:child_process";
import http from "node:http";
import crypto from "node:crypto";
import os from "node:os";
import path from "node:path";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { getAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import net from "node:net";
import { ADDRESSES, CHAIN_ID, KEYS, anvilPath, deployFiatToken } from "./chain.mjs";
import { startOurFacilitator } from "./ours.mjs";
import { arg } from "./util.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const LUA = path.join(here, "bench-wrk.lua");
const REFERENCE_KEY = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"; // anvil #4
const DURATION = Number(arg("--duration") ?? 10);
const CONCURRENCY = (arg("--concurrency") ?? "1,8,32").split(",").map(Number);
const JSON_OUT = arg("--json");
const ENDPOINTS = (arg("--endpoints") ?? "verify,settle").split(",");
const VALUE = 1000n; // 0.001 USDC per payment
const MAX_TIMEOUT = 3600;
const COUNT_VERIFY = 100;
const COUNT_SETTLE = 20;
const MAX_POOL = 40000;

const children = new Set();
const pids = new Set(); // our facilitators, spawned by ours.mjs
const cleanups = [];
function killChildren() {
  for (const c of children) { try { c.kill("SIGKILL"); } catch { /* gone */ } }
  for (const pid of pids) { try { process.kill(pid, "SIGKILL"); } catch { /* gone */ } }
}
process.on("exit", killChildren);
const log = (...a) => console.error("[bench]", ...a);

// ---------------------------------------------------------------- peers

/** anvil with `--quiet` on a free port: its per-call log lines would cost CPU (and, in a
 *  pipe nobody drains, block it), so nothing is read from it. Polls until it answers. */
async function startQuietAnvil() {
  const port = await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port: p } = s.address(); s.close(() => resolve(p)); });
  });
  const child = spawn(anvilPath(), ["--host", "127.0.0.1", "--port", String(port), "--chain-id", String(CHAIN_ID), "--quiet"], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.add(child);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' });
      if ((await r.json()).result) return { url, child };
    } catch { /* not up yet */ }
    if (child.exitCode !== null) throw new Error(`anvil exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("anvil did not answer within 10 s");
}

async function startReference(rpcUrl) {
  const child = spawn(process.execPath, [path.join(here, "facilitator.mjs"), "--rpc", rpcUrl, "--port", "0", "--key", REFERENCE_KEY], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.add(child);
  const url = await new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`reference facilitator did not start: ${seen}`)), 30_000);
    child.stdout.on("data", (chunk) => {
      seen += chunk;
      const m = /"facilitator":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(seen);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`reference facilitator exited ${code}: ${seen}`)); });
  });
  return { url, pid: child.pid, stop: () => stopChild(child) };
}

function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { children.delete(child); return resolve(); }
    child.once("exit", () => { children.delete(child); resolve(); });
    child.kill("SIGKILL");
  });
}

/** A fresh anvil with FiatTokenV2_2 and the payer funded. */
async function freshChain() {
  const anvil = await startQuietAnvil();
  try {
    const token = getAddress(await deployFiatToken(anvil.url, [[ADDRESSES.buyer, 10n ** 15n]]));
    return { anvil, rpcUrl: anvil.url, token, stop: () => stopChild(anvil.child) };
  } catch (e) {
    await stopChild(anvil.child);
    throw e;
  }
}


/** A JSON-RPC proxy to `target` that counts calls by method (each batch element counts). */
function countingProxy(target) {
  const t = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const byMethod = {};
  let total = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      try {
        const msg = JSON.parse(body.toString("utf8"));
        for (const m of Array.isArray(msg) ? msg : [msg]) {
          byMethod[m.method] = (byMethod[m.method] ?? 0) + 1;
          total += 1;
        }
      } catch { /* not JSON: forwarded, not counted */ }
      const up = http.request({
        host: t.hostname, port: t.port, path: t.pathname, method: "POST", agent,
        headers: { "content-type": "application/json", "content-length": body.length },
      }, (answer) => {
        res.writeHead(answer.statusCode, { "content-type": answer.headers["content-type"] ?? "application/json" });
        answer.pipe(res);
      });
      up.on("error", (e) => { res.writeHead(502); res.end(String(e)); });
      up.end(body);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        snapshot: () => ({ total, byMethod: { ...byMethod } }),
        close: () => new Promise((r) => { server.close(() => r()); server.closeAllConnections?.(); agent.destroy(); }),
      });
    });
  });
}

// ---------------------------------------------------------------- payloads

const buyer = privateKeyToAccount(KEYS.buyer);
const TYPES = {
  TransferWithAuthorization: [
    { name: "from", type: "address" }, { name: "to", type: "address" },
    { name: "value", type: "uint256" }, { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" }, { name: "nonce", type: "bytes32" },
  ],
};

function requirementsFor(token) {
  return {
    scheme: "exact", network: `eip155:${CHAIN_ID}`, amount: String(VALUE), asset: token,
    payTo: ADDRESSES.payTo, maxTimeoutSeconds: MAX_TIMEOUT, extra: { name: "USDC", version: "2" },
  };
}

/** One facilitator request body (JSON text) with a fresh random nonce. */
async function signedBody(token) {
  const now = Math.floor(Date.now() / 1000);
  const authorization = {
    from: buyer.address, to: ADDRESSES.payTo, value: String(VALUE),
    validAfter: String(now - 600), validBefore: String(now + MAX_TIMEOUT),
    nonce: `0x${crypto.randomBytes(32).toString("hex")}`,
  };
  const signature = await buyer.signTypedData({
    domain: { name: "USDC", version: "2", chainId: CHAIN_ID, verifyingContract: token },
    types: TYPES, primaryType: "TransferWithAuthorization",
    message: {
      ...authorization, value: VALUE, validAfter: BigInt(authorization.validAfter),
      validBefore: BigInt(authorization.validBefore),
    },
  });
  const requirements = requirementsFor(token);
  return JSON.stringify({
    x402Version: 2,
    paymentPayload: {
      x402Version: 2,
      resource: { url: "http://127.0.0.1/bench", description: "benchmark", mimeType: "application/json" },
      accepted: requirements,
      payload: { signature, authorization },
    },
    paymentRequirements: requirements,
  });
}

async function post(url, body) {
  const started = performance.now();
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
  const json = await response.json().catch(() => null);
  return { status: response.status, json, ms: performance.now() - started };
}

// ---------------------------------------------------------------- measuring

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch { return NaN; }
}

async function wrk({ url, file, mode, connections, duration, watch = {} }) {
  const cpuBefore = Object.fromEntries(Object.entries(watch).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const threads = Math.min(connections, 2);
  const child = spawn("wrk", [
    "-t", String(threads), "-c", String(connections), "-d", `${duration}s`, "--timeout", "10s",
    "-s", LUA, url, "--", file, mode, String(threads),
  ], { stdio: ["ignore", "pipe", "inherit"] });
  children.add(child);
  let out = "";
  child.stdout.on("data", (chunk) => { out += chunk; });
  const timer = setTimeout(() => child.kill("SIGKILL"), (duration + 60) * 1000);
  const code = await new Promise((resolve) => child.on("exit", resolve));
  clearTimeout(timer);
  children.delete(child);
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (code !== 0 || !line) throw new Error(`wrk exited ${code} without a RESULT line:\n${out}`);
  const r = JSON.parse(line.slice(7));
  r.failedSamples = out.split("\n").filter((l) => l.startsWith("FAILED ")).map((l) => l.slice(7));
  const seconds = r.duration_us / 1e6;
  // CPU milliseconds per request of each watched process (facilitator, anvil).
  const cpuMsPerRequest = Object.fromEntries(Object.entries(watch).map(([k, pid]) =>
    [k, r.requests ? +((cpuSeconds(pid) - cpuBefore[k]) * 1000 / r.requests).toFixed(3) : null]));
  return {
    ...r, connections, threads, cpuMsPerRequest,
    rps: r.requests / seconds, okRps: r.ok / seconds,
    p50_ms: r.p50_us / 1000, p99_ms: r.p99_us / 1000,
  };
}

/** RPC calls per operation, measured on the counted instance. */
async function countCalls(name, counted, proxy, token) {
  const verifyBody = await signedBody(token);
  const before = proxy.snapshot();
  for (let i = 0; i < COUNT_VERIFY; i++) {
    const r = await post(`${counted}/verify`, verifyBody);
    if (r.status !== 200 || r.json?.isValid !== true) throw new Error(`${name} verify failed: ${JSON.stringify(r)}`);
  }
  const mid = proxy.snapshot();
  const settleBodies = [];
  for (let i = 0; i < COUNT_SETTLE; i++) settleBodies.push(await signedBody(token));
  let settleMs = 0;
  for (const body of settleBodies) {
    const r = await post(`${counted}/settle`, body);
    if (r.status !== 200 || r.json?.success !== true) throw new Error(`${name} settle failed: ${JSON.stringify(r)}`);
    settleMs += r.ms;
  }
  const after = proxy.snapshot();
  const perOp = (a, b, n) => {
    const methods = {};
    for (const [m, c] of Object.entries(b.byMethod)) {
      const d = c - (a.byMethod[m] ?? 0);
      if (d > 0) methods[m] = +(d / n).toFixed(2);
    }
    return { total: +((b.total - a.total) / n).toFixed(2), methods };
  };
  return {
    verify: perOp(before, mid, COUNT_VERIFY),
    settle: perOp(mid, after, COUNT_SETTLE),
    sequentialSettleMs: settleMs / COUNT_SETTLE,
  };
}

function machine() {
  const version = (cmd, args) => {
    try { return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).split("\n")[0].trim(); } catch (e) { return String(e.stdout ?? e.stderr ?? "").split("\n")[0].trim(); }
  };
  return {
    cpu: os.cpus()[0]?.model, cores: os.cpus().length, memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()}`, node: process.version,
    anvil: version(anvilPath(), ["--version"]), wrk: version("wrk", ["-v"]),
    commit: version("git", ["-C", here, "rev-parse", "--short", "HEAD"]),
  };
}

// ---------------------------------------------------------------- main

async function main() {
  const started = new Date();
  const info = machine();
  const load = [os.loadavg()];
  log(`machine: ${JSON.stringify(info)}`);
  const anvil = await startQuietAnvil();
  const chain = { rpcUrl: anvil.url, token: await deployFiatToken(anvil.url, [[ADDRESSES.buyer, 10n ** 15n]]) };
  const token = getAddress(chain.token);
  log(`anvil ${chain.rpcUrl}, FiatTokenV2_2 at ${token}`);

  const proxies = { ours: await countingProxy(chain.rpcUrl), reference: await countingProxy(chain.rpcUrl) };
  for (const p of Object.values(proxies)) cleanups.push(p.close);
  const ours = await startOurFacilitator({ rpcUrl: chain.rpcUrl, token });
  cleanups.push(ours.close);
  pids.add(ours.pid);
  const oursCounted = await startOurFacilitator({ rpcUrl: proxies.ours.url, token });
  cleanups.push(oursCounted.close);
  pids.add(oursCounted.pid);
  const reference = await startReference(chain.rpcUrl);
  const referenceCounted = await startReference(proxies.reference.url);
  const peers = {
    ours: { url: ours.url, counted: oursCounted.url, proxy: proxies.ours, pid: ours.pid },
    reference: { url: reference.url, counted: referenceCounted.url, proxy: proxies.reference, pid: reference.pid },
  };
  log(`ours ${ours.url}, reference ${reference.url}`);

  const calls = {};
  for (const [name, p] of Object.entries(peers)) {
    calls[name] = await countCalls(name, p.counted, p.proxy, token);
    log(`${name}: JSON-RPC calls per verify ${JSON.stringify(calls[name].verify)}, per settle ${JSON.stringify(calls[name].settle)}`);
  }

  const dir = mkdtempSync(path.join(os.tmpdir(), "worldstore-bench-"));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const results = [];

  // /verify: the same valid body over and over.
  const verifyFile = path.join(dir, "verify.jsonl");
  writeFileSync(verifyFile, `${await signedBody(token)}\n`);
  for (const c of ENDPOINTS.includes("verify") ? CONCURRENCY : []) {
    for (const [name, p] of Object.entries(peers)) {
      let r;
      try {
        await wrk({ url: `${p.url}/verify`, file: verifyFile, mode: "cycle", connections: c, duration: 2 }); // warm-up
        r = await wrk({ url: `${p.url}/verify`, file: verifyFile, mode: "cycle", connections: c, duration: DURATION, watch: { facilitator: p.pid, anvil: anvil.child.pid } });
      } catch (e) {
        log(`verify ${name} c=${c} FAILED: ${e.message}`);
        results.push({ endpoint: "verify", facilitator: name, connections: c, error: e.message });
        continue;
      }
      results.push({ endpoint: "verify", facilitator: name, ...r });
      log(`verify ${name} c=${c}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms, ok ${r.ok}/${r.requests}, CPU ms/request ${JSON.stringify(r.cpuMsPerRequest)}`);
    }
  }

  // /settle: a distinct authorization per request; pool sized from the last measured rate.
  const estimate = {};
  for (const name of Object.keys(peers)) estimate[name] = 1000 / calls[name].sequentialSettleMs;
  for (const c of ENDPOINTS.includes("settle") ? CONCURRENCY : []) {
    for (const name of Object.keys(peers)) {
      const guess = estimate[name] * Math.min(c, 4);
      const size = Math.min(MAX_POOL, Math.ceil(guess * DURATION * 1.5) + 200);
      const file = path.join(dir, `settle-${name}-${c}.jsonl`);
      // Each settle run gets a fresh anvil and a fresh facilitator: anvil's cost per mined
      // block grows with the token's storage (one authorization slot per settlement), so a
      // shared chain would slow down whichever run comes later.
      const stops = [];
      let r;
      try {
        const fresh = await freshChain();
        stops.push(fresh.stop);
        let peer;
        if (name === "ours") {
          const f = await startOurFacilitator({ rpcUrl: fresh.rpcUrl, token: fresh.token });
          pids.add(f.pid);
          stops.push(f.close);
          peer = f;
        } else {
          peer = await startReference(fresh.rpcUrl);
          stops.push(peer.stop);
        }
        const lines = [];
        for (let i = 0; i < size; i++) lines.push(await signedBody(fresh.token));
        writeFileSync(file, `${lines.join("\n")}\n`);
        r = await wrk({ url: `${peer.url}/settle`, file, mode: "once", connections: c, duration: DURATION, watch: { facilitator: peer.pid, anvil: fresh.anvil.child.pid } });
      } catch (e) {
        log(`settle ${name} c=${c} FAILED: ${e.message}`);
        results.push({ endpoint: "settle", facilitator: name, connections: c, error: e.message });
        continue;
      } finally {
        rmSync(file, { force: true });
        while (stops.length) await stops.pop()().catch(() => {});
      }
      results.push({ endpoint: "settle", facilitator: name, pool: size, ...r });
      estimate[name] = Math.max(estimate[name], r.okRps);
      log(`settle ${name} c=${c}: ${r.rps.toFixed(0)} req/s (${r.okRps.toFixed(0)} successful/s), p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms, ok ${r.ok}/${r.requests}${r.exhausted ? ` POOL EXHAUSTED (${size})` : ""}, CPU ms/request ${JSON.stringify(r.cpuMsPerRequest)}`);
      for (const sample of r.failedSamples) log(`  a failed settle answer: ${sample}`);
    }
  }
  load.push(os.loadavg());

  // Report.
  const row = (endpoint, c, name) => results.find((r) => r.endpoint === endpoint && r.connections === c && r.facilitator === name);
  const lines = [];
  lines.push("| endpoint | c | ours req/s | reference req/s | ours/ref | ours p50 ms | ours p99 ms | ref p50 ms | ref p99 ms | ours ok | ref ok | CPU ms/req ours (anvil) | CPU ms/req ref (anvil) |");
  lines.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const endpoint of ENDPOINTS) {
    for (const c of CONCURRENCY) {
      const o = row(endpoint, c, "ours");
      const f = row(endpoint, c, "reference");
      if (!o || !f || o.error || f.error) {
        lines.push(`| /${endpoint} | ${c} | ${o?.error ? "error" : "-"} | ${f?.error ? "error" : "-"} | | | | | | | | | |`);
        continue;
      }
      const cpuText = (r) => `${r.cpuMsPerRequest.facilitator} (${r.cpuMsPerRequest.anvil})`;
      const okText = (r) => `${r.ok}/${r.requests}${r.exhausted ? " (pool exhausted)" : ""}`;
      lines.push(`| /${endpoint} | ${c} | ${o.rps.toFixed(0)} | ${f.rps.toFixed(0)} | ${(o.rps / f.rps).toFixed(2)} | ${o.p50_ms.toFixed(2)} | ${o.p99_ms.toFixed(2)} | ${f.p50_ms.toFixed(2)} | ${f.p99_ms.toFixed(2)} | ${okText(o)} | ${okText(f)} | ${cpuText(o)} | ${cpuText(f)} |`);
    }
  }
  lines.push("");
  lines.push("| JSON-RPC calls | ours | reference |");
  lines.push("|---|---|---|");
  const fmt = (x) => `${x.total} (${Object.entries(x.methods).map(([m, n]) => `${m} ${n}`).join(", ")})`;
  lines.push(`| per /verify | ${fmt(calls.ours.verify)} | ${fmt(calls.reference.verify)} |`);
  lines.push(`| per /settle | ${fmt(calls.ours.settle)} | ${fmt(calls.reference.settle)} |`);
  const table = lines.join("\n");
  console.log(`\nx402 facilitator benchmark, ${started.toISOString()}, ${DURATION} s per run, wrk on 127.0.0.1`);
  console.log(`machine: ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, ${info.os}; ${info.anvil}; ${info.wrk}; node ${info.node}; commit ${info.commit}`);
  console.log(`load average before ${load[0].map((x) => x.toFixed(2)).join(" ")}, after ${load[1].map((x) => x.toFixed(2)).join(" ")}\n`);
  console.log(table);
  if (JSON_OUT) {
    writeFileSync(JSON_OUT, JSON.stringify({ started: started.toISOString(), duration: DURATION, machine: info, load, calls, results, table }, null, 2));
    log(`results written to ${JSON_OUT}`);
  }
}

let code = 0;
try {
  await main();
} catch (e) {
  console.error(e);
  code = 1;
} finally {
  while (cleanups.length) await cleanups.pop()().catch(() => {});
  killChildren();
}
process.exit(code);
