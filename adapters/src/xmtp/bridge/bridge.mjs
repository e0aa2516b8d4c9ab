// Worldstore's XMTP bridge: the agent-sdk behind newline-delimited JSON over stdio.
//
// Env: XMTP_WALLET_KEY (0x hex), XMTP_DB_ENCRYPTION_KEY (hex, 32 bytes), XMTP_ENV
// (local|dev|production), XMTP_DB_DIRECTORY (must persist: each lost database is a new
// installation, and an inbox has at most 10). Keys are never printed.
//
// stdout, one JSON object per line (nothing else is ever written to stdout):
//   {"event":"ready", inboxId, address}
//   {"event":"message", id, conversationId, senderInboxId, senderAddress, sentAtNs,
//    contentType, content}              content as in codec.mjs
//   {"event":"sent", requestId, ok:true, messageId} | {"event":"sent", requestId, ok:false, error}
//   {"event":"error", message}            then the bridge exits non-zero if it is fatal
// stdin, one JSON object per line:
//   {"op":"send", requestId, conversationId, contentType, content}
// Logs go to stderr only. The Rust side drops our own messages and de-duplicates; the
// agent-sdk also skips our own messages.
import { createInterface } from "node:readline";
import { CodecError, encode, fromSdk, typeName } from "./codec.mjs";

// The SDK logs with console.info (e.g. the database path): keep stdout for events only.
for (const level of ["log", "info", "debug"]) console[level] = (...args) => console.error(...args);

function emit(event) {
  process.stdout.write(`${JSON.stringify(event, (_, v) => (typeof v === "bigint" ? v.toString() : v))}\n`);
}

function fail(message) {
  emit({ event: "error", message });
  process.exit(1);
}

async function onMessage(agent, ctx) {
  const message = ctx.message;
  let contentType;
  try {
    contentType = typeName(message.contentType);
  } catch {
    return;
  }
  let content;
  try {
    content = fromSdk(contentType, message.content);
  } catch (error) {
    if (!(error instanceof CodecError)) throw error;
    // Types we do not map (attachments, read receipts...) are passed on without content.
    content = null;
  }
  let senderAddress = null;
  try {
    senderAddress = (await ctx.getSenderAddress()) ?? null;
  } catch (error) {
    console.error(`sender address lookup failed: ${error?.message}`);
  }
  emit({
    event: "message",
    id: message.id,
    conversationId: message.conversationId,
    senderInboxId: message.senderInboxId,
    senderAddress,
    sentAtNs: String(message.sentAtNs),
    contentType,
    content,
  });
}

async function send(agent, command) {
  const { requestId, conversationId, contentType, content } = command;
  try {
    const ctx = await agent.getConversationContext(String(conversationId));
    if (!ctx) throw new CodecError("unknown conversation");
    const out = encode(contentType, content);
    const messageId = out.reply ? await ctx.conversation.sendReply(out.reply) : await ctx.conversation.send(out.encoded);
    emit({ event: "sent", requestId, ok: true, messageId });
  } catch (error) {
    const kind = error instanceof CodecError ? "rejected" : "failed";
    emit({ event: "sent", requestId, ok: false, error: `${kind}: ${error?.message ?? "unknown error"}` });
  }
}

async function main() {
  if (!process.env.XMTP_WALLET_KEY) fail("XMTP_WALLET_KEY is not set");
  if (!process.env.XMTP_DB_ENCRYPTION_KEY) fail("XMTP_DB_ENCRYPTION_KEY is not set");
  if (!process.env.XMTP_DB_DIRECTORY) fail("XMTP_DB_DIRECTORY is not set (the database must persist)");
  const { Agent } = await import("@xmtp/agent-sdk");
  const agent = await Agent.createFromEnv({ env: process.env.XMTP_ENV ?? "dev" });
  agent.on("message", (ctx) => onMessage(agent, ctx).catch((e) => console.error(`message not forwarded: ${e?.message}`)));
  agent.on("unhandledError", (error) => fail(`agent: ${error?.message ?? "unknown error"}`));
  agent.on("start", () => emit({ event: "ready", inboxId: agent.client.inboxId, address: agent.address ?? null }));

  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    if (!line.trim()) return;
    let command;
    try {
      command = JSON.parse(line);
    } catch {
      console.error("ignored a command that is not JSON");
      return;
    }
    if (command?.op === "send") send(agent, command);
    else console.error(`ignored unknown op ${String(command?.op)}`);
  });
  // The Rust side closing our stdin means it is gone or restarting us.
  lines.on("close", () => agent.stop().finally(() => process.exit(0)));

  await agent.start();
}

main().catch((error) => fail(`start failed: ${error?.message ?? "unknown error"}`));
