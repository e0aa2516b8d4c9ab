// Our JSON <-> the XMTP SDK's content objects, one pure function per direction.
//
// Contract (the Rust side in ../mod.rs relies on it; fixtures/xmtp/*.json pin it):
// - A content type is named by its id string, e.g. "xmtp.org/text:1.0" (see TYPES).
// - `content` is the JSON of /work/shared/reference/xmtp.md for that type; text and
//   markdown are plain strings; a reply is {reference, referenceInboxId?, contentType,
//   content} with the inner content in the same JSON; enums are lower-case strings
//   ("added", "unicode", "primary"); times are ISO-8601 strings (`expiresAt`).
// - Reactions are decoded from both reaction:1.0 (JSON) and reaction:2.0 (protobuf, what
//   libxmtp sends today); we always name them "xmtp.org/reaction:1.0".
// No I/O here, so the self-test can check every mapping offline.
import {
  encodeActions,
  encodeIntent,
  encodeMarkdown,
  encodeReaction,
  encodeText,
  encodeTransactionReference,
  encodeWalletSendCalls,
} from "@xmtp/node-bindings";

export const TYPES = Object.freeze({
  text: "xmtp.org/text:1.0",
  markdown: "xmtp.org/markdown:1.0",
  reply: "xmtp.org/reply:1.0",
  reaction: "xmtp.org/reaction:1.0",
  walletSendCalls: "xmtp.org/walletSendCalls:1.0",
  transactionReference: "xmtp.org/transactionReference:1.0",
  actions: "coinbase.com/actions:1.0",
  intent: "coinbase.com/intent:1.0",
});

export class CodecError extends Error {}

/** "authority/type:major.minor" for an SDK ContentTypeId; reaction 2.0 is named as 1.0. */
export function typeName(id) {
  if (!id || typeof id.authorityId !== "string" || typeof id.typeId !== "string") {
    throw new CodecError("content type id without authority or type");
  }
  if (id.authorityId === "xmtp.org" && id.typeId === "reaction") return TYPES.reaction;
  return `${id.authorityId}/${id.typeId}:${id.versionMajor}.${id.versionMinor}`;
}

const REACTION_ACTIONS = ["unknown", "added", "removed"];
const REACTION_SCHEMAS = ["unknown", "unicode", "shortcode", "custom"];
const ACTION_STYLES = ["primary", "secondary", "danger"];

function enumIndex(names, value, what) {
  const index = names.indexOf(value);
  if (index < 0) throw new CodecError(`unknown ${what}`);
  return index;
}

// The SDK gives enums as numbers (native) or strings (JSON codecs); accept both.
function enumName(names, value) {
  if (typeof value === "number") return names[value] ?? "unknown";
  if (typeof value === "string") return value.toLowerCase();
  return "unknown";
}

function isoToNs(iso) {
  if (iso === undefined || iso === null) return undefined;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new CodecError("expiresAt is not an ISO-8601 time");
  return BigInt(ms) * 1_000_000n;
}

function nsToIso(ns) {
  if (ns === undefined || ns === null) return undefined;
  return new Date(Number(BigInt(ns) / 1_000_000n)).toISOString();
}

function requireString(value, what) {
  if (typeof value !== "string") throw new CodecError(`${what} must be a string`);
  return value;
}

function requireObject(value, what) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new CodecError(`${what} must be an object`);
  }
  return value;
}

// Drops undefined fields so JSON and deep-equality comparisons see the same shape.
function compact(object) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined));
}

/** Our JSON -> the SDK's content object (what `encode*` and `send*` take). */
export function toSdk(contentType, content) {
  switch (contentType) {
    case TYPES.text:
    case TYPES.markdown:
      return requireString(content, "text");
    case TYPES.reaction: {
      const r = requireObject(content, "reaction");
      return {
        reference: requireString(r.reference, "reaction.reference"),
        referenceInboxId: r.referenceInboxId ?? "",
        action: enumIndex(REACTION_ACTIONS, r.action, "reaction action"),
        content: requireString(r.content, "reaction.content"),
        schema: enumIndex(REACTION_SCHEMAS, r.schema ?? "unicode", "reaction schema"),
      };
    }
    case TYPES.actions: {
      const a = requireObject(content, "actions");
      if (!Array.isArray(a.actions)) throw new CodecError("actions.actions must be a list");
      return compact({
        id: requireString(a.id, "actions.id"),
        description: requireString(a.description, "actions.description"),
        actions: a.actions.map((item) =>
          compact({
            id: requireString(item.id, "action.id"),
            label: requireString(item.label, "action.label"),
            imageUrl: item.imageUrl,
            style: item.style === undefined ? undefined : enumIndex(ACTION_STYLES, item.style, "style"),
            expiresAtNs: isoToNs(item.expiresAt),
          }),
        ),
        expiresAtNs: isoToNs(a.expiresAt),
      });
    }
    case TYPES.intent: {
      const i = requireObject(content, "intent");
      return compact({
        id: requireString(i.id, "intent.id"),
        actionId: requireString(i.actionId, "intent.actionId"),
        metadata: i.metadata,
      });
    }
    case TYPES.transactionReference: {
      const t = requireObject(content, "transactionReference");
      return compact({
        namespace: t.namespace,
        networkId: String(t.networkId),
        reference: requireString(t.reference, "transactionReference.reference"),
        metadata: t.metadata,
      });
    }
    case TYPES.walletSendCalls: {
      const w = requireObject(content, "walletSendCalls");
      if (!Array.isArray(w.calls)) throw new CodecError("walletSendCalls.calls must be a list");
      return compact({
        version: requireString(w.version, "walletSendCalls.version"),
        chainId: requireString(w.chainId, "walletSendCalls.chainId"),
        from: requireString(w.from, "walletSendCalls.from"),
        calls: w.calls.map((call) => compact({ ...call })),
        capabilities: w.capabilities,
      });
    }
    default:
      throw new CodecError(`unsupported content type ${contentType}`);
  }
}

/** The SDK's decoded content -> our JSON (inverse of `toSdk`). */
export function fromSdk(contentType, content) {
  switch (contentType) {
    case TYPES.text:
    case TYPES.markdown:
      return requireString(content, "text");
    case TYPES.reply: {
      // node-sdk gives {referenceId, content, contentType} for replies.
      const r = requireObject(content, "reply");
      const innerType = typeName(r.contentType);
      return compact({
        reference: requireString(r.referenceId ?? r.reference, "reply.reference"),
        referenceInboxId: r.referenceInboxId || undefined,
        contentType: innerType,
        content: fromSdk(innerType, r.content),
      });
    }
    case TYPES.reaction: {
      const r = requireObject(content, "reaction");
      return compact({
        reference: requireString(r.reference, "reaction.reference"),
        referenceInboxId: r.referenceInboxId || undefined,
        action: enumName(REACTION_ACTIONS, r.action),
        content: requireString(r.content, "reaction.content"),
        schema: enumName(REACTION_SCHEMAS, r.schema),
      });
    }
    case TYPES.actions: {
      const a = requireObject(content, "actions");
      return compact({
        id: a.id,
        description: a.description,
        actions: (a.actions ?? []).map((item) =>
          compact({
            id: item.id,
            label: item.label,
            imageUrl: item.imageUrl,
            style: item.style === undefined || item.style === null ? undefined : enumName(ACTION_STYLES, item.style),
            expiresAt: nsToIso(item.expiresAtNs),
          }),
        ),
        expiresAt: nsToIso(a.expiresAtNs),
      });
    }
    case TYPES.intent:
    case TYPES.transactionReference:
    case TYPES.walletSendCalls:
      return compact({ ...requireObject(content, contentType) });
    default:
      throw new CodecError(`unsupported content type ${contentType}`);
  }
}

/**
 * Our JSON -> what to hand the SDK: `{encoded}` for `conversation.send(encoded)`, or
 * `{reply}` for `conversation.sendReply(reply)` (the bindings have no reply encoder).
 */
export function encode(contentType, content) {
  switch (contentType) {
    case TYPES.text:
      return { encoded: encodeText(toSdk(contentType, content)) };
    case TYPES.markdown:
      return { encoded: encodeMarkdown(toSdk(contentType, content)) };
    case TYPES.reaction:
      return { encoded: encodeReaction(toSdk(contentType, content)) };
    case TYPES.actions:
      return { encoded: encodeActions(toSdk(contentType, content)) };
    case TYPES.intent:
      return { encoded: encodeIntent(toSdk(contentType, content)) };
    case TYPES.transactionReference:
      return { encoded: encodeTransactionReference(toSdk(contentType, content)) };
    case TYPES.walletSendCalls:
      return { encoded: encodeWalletSendCalls(toSdk(contentType, content)) };
    case TYPES.reply: {
      const r = requireObject(content, "reply");
      const inner = encode(requireString(r.contentType, "reply.contentType"), r.content);
      if (!inner.encoded) throw new CodecError("a reply cannot hold a reply");
      return {
        reply: compact({
          content: inner.encoded,
          reference: requireString(r.reference, "reply.reference"),
          referenceInboxId: r.referenceInboxId,
        }),
      };
    }
    default:
      throw new CodecError(`unsupported content type ${contentType}`);
  }
}
