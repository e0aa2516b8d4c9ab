// A scripted stand-in for src/xmtp/bridge/bridge.mjs (no XMTP, no npm packages).
// FAKE_SCENARIO selects what it says; FAKE_STATE_DIR receives `starts` (one line per
// start) and `commands.ndjson` (every command line it read, verbatim).
import { appendFileSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const state = process.env.FAKE_STATE_DIR;
const fixtures = process.env.FAKE_FIXTURES;
appendFileSync(join(state, "starts"), "start\n");
const start = readFileSync(join(state, "starts"), "utf8").trim().split("\n").length;
const out = (value) => process.stdout.write(`${typeof value === "string" ? value : JSON.stringify(value)}\n`);
const message = (id, contentType, content, sender = "user-inbox") => ({
  event: "message", id, conversationId: "conv-1", senderInboxId: sender,
  senderAddress: "0x3333333333333333333333333333333333333333", sentAtNs: "1764075600000000000", contentType, content,
});
const done = () => out(message(`done-${start}`, "xmtp.org/text:1.0", "done"));

out({ event: "ready", inboxId: "agent-inbox", address: "0x4444444444444444444444444444444444444444" });
switch (process.env.FAKE_SCENARIO) {
  case "inbound": {
    out("this is not json");
    out({ event: "stats", cpu: 3 });
    out(message("own-1", "xmtp.org/text:1.0", "echo of our menu", "agent-inbox"));
    for (const name of readdirSync(fixtures).sort()) {
      const fixture = JSON.parse(readFileSync(join(fixtures, name), "utf8"));
      out(message(`fx-${name.replace(/\.json$/, "")}`, fixture.contentType, fixture.content));
    }
    out(message("fx-text", "xmtp.org/text:1.0", "a replayed duplicate"));
    out(message("bad-content", "coinbase.com/intent:1.0", { id: 7 }));
    out({ ...message("bad-time", "xmtp.org/text:1.0", "x"), sentAtNs: "soon" });
    out(message("attachment-1", "xmtp.org/remoteStaticAttachment:1.0", null));
    done();
    break;
  }
  case "crash": {
    // Every start replays m-1 (as a resync would); the first two starts then crash.
    out(message("m-1", "xmtp.org/text:1.0", "hello"));
    if (start <= 2) process.exit(3);
    out(message("m-2", "xmtp.org/text:1.0", "again"));
    done();
    break;
  }
  case "agent": {
    // A user talking to the agent (app/tests/xmtp_agent.rs): our own echo first, then
    // "hello"; a restarted bridge replays "hello" (as a resync would) and adds a search.
    out(message("own-1", "xmtp.org/text:1.0", "search earbuds", "agent-inbox"));
    out(message("m-1", "xmtp.org/text:1.0", "hello"));
    if (start >= 2) out(message("m-2", "xmtp.org/text:1.0", "search wireless earbuds"));
    break;
  }
  default:
    break;
}

createInterface({ input: process.stdin }).on("line", (line) => {
  appendFileSync(join(state, "commands.ndjson"), `${line}\n`);
  const command = JSON.parse(line);
  if (command.conversationId === "reject-me") {
    out({ event: "sent", requestId: command.requestId, ok: false, error: "rejected: unknown conversation" });
  } else if (command.conversationId === "fail-me") {
    out({ event: "sent", requestId: command.requestId, ok: false, error: "failed: network unreachable" });
  } else if (command.conversationId === "crash-me") {
    process.exit(4);
  } else {
    out({ event: "sent", requestId: command.requestId, ok: true, messageId: `sent-${command.requestId}` });
  }
});
