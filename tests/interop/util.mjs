// Small shared helpers: argv parsing, loopback-only URLs, listening on 127.0.0.1.
import path from "node:path";
import { fileURLToPath } from "node:url";

export function arg(name, argv = process.argv) {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

export function isMain(metaUrl) {
  return process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(metaUrl);
}

/** Throws unless `url` points at a loopback host: the harness never talks to public hosts. */
export function requireLoopback(url, what) {
  let host;
  try { host = new URL(url).hostname; } catch { throw new Error(`${what}: not a URL: ${url}`); }
  if (!["127.0.0.1", "localhost", "[::1]", "::1"].includes(host)) {
    throw new Error(`${what} must be a loopback URL, got ${url}`);
  }
  return url.replace(/\/+$/, "");
}

/** Listens on 127.0.0.1:port (0 = free port); `closeAll()` closes the server and its sockets. */
export function listen(app, port = 0) {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, "127.0.0.1", (err) => {
      if (err) return reject(err);
      server.closeAll = () => new Promise((r) => { server.close(() => r()); server.closeAllConnections?.(); });
      resolve(server);
    });
    server.on("error", reject);
  });
}

export function b64json(header) {
  return header ? JSON.parse(Buffer.from(header, "base64").toString("utf8")) : null;
}
