// Offline self-test of the real bridge (run: `node --test selftest.mjs`).
// (a) The pinned @xmtp/agent-sdk and its native bindings load on this Node and libc.
// (b) For every fixtures/xmtp/*.json: our JSON, encoded by the SDK's real encoders, gives
//     exactly the recorded EncodedContent (type, parameters, fallback, content bytes), and
//     the bytes decode back to our JSON. `node selftest.mjs --record` rewrites the
//     recorded `encoded` part (review the diff: it is the wire format).
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { fromSdk, encode, toSdk, typeName, TYPES } from "./codec.mjs";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../../../../fixtures/xmtp");
const JSON_TYPES = new Set([TYPES.actions, TYPES.intent, TYPES.transactionReference, TYPES.walletSendCalls]);
// libxmtp serialises string maps (call metadata, intent metadata, capabilities) from a
// hash map, so their key order varies between runs: these types are compared as parsed
// JSON; every other type byte for byte.
const MAP_TYPES = new Set([TYPES.intent, TYPES.walletSendCalls]);

function comparable(described) {
  if (!MAP_TYPES.has(described.type)) return described;
  const json = (text) => {
    const start = text.indexOf("{");
    return start < 0 ? text : [text.slice(0, start), JSON.parse(text.slice(start))];
  };
  return { ...described, content: json(described.content), fallback: described.fallback && json(described.fallback) };
}

function fixtures() {
  return readdirSync(FIXTURES)
    .filter((name) => name.endsWith(".json"))
    .sort()
    .map((name) => ({ name, path: join(FIXTURES, name), ...JSON.parse(readFileSync(join(FIXTURES, name), "utf8")) }));
}

// EncodedContent -> plain JSON: text bytes as a string when they are UTF-8 JSON or text,
// otherwise base64 (reaction 2.0 is protobuf).
function describe(encoded) {
  const bytes = Buffer.from(encoded.content);
  const text = bytes.toString("utf8");
  const isText = Buffer.from(text, "utf8").equals(bytes) && !/[\u0000-\u0008\u000e-\u001f]/.test(text);
  return {
    type: typeName(encoded.type) === TYPES.reaction ? `xmtp.org/reaction:${encoded.type.versionMajor}.${encoded.type.versionMinor}` : typeName(encoded.type),
    parameters: encoded.parameters,
    ...(encoded.fallback === undefined ? {} : { fallback: encoded.fallback }),
    ...(isText ? { content: text } : { contentBase64: bytes.toString("base64") }),
  };
}

function describeOutgoing(contentType, content) {
  const out = encode(contentType, content);
  if (out.encoded) return describe(out.encoded);
  return {
    reply: { reference: out.reply.reference, referenceInboxId: out.reply.referenceInboxId, content: describe(out.reply.content) },
  };
}

if (process.argv.includes("--record")) {
  for (const fixture of fixtures()) {
    const { name, path, ...rest } = fixture;
    rest.encoded = describeOutgoing(rest.contentType, rest.content);
    writeFileSync(path, `${JSON.stringify(rest, null, 2)}\n`);
    console.error(`recorded ${name}`);
  }
  process.exit(0);
}

test("the pinned agent sdk and native bindings load on this machine", async () => {
  const sdk = await import("@xmtp/agent-sdk");
  const bindings = await import("@xmtp/node-bindings");
  assert.equal(typeof sdk.Agent.create, "function");
  assert.equal(typeof sdk.Agent.createFromEnv, "function");
  assert.equal(typeName(bindings.contentTypeText()), TYPES.text);
  const pkg = JSON.parse(readFileSync(new URL("./node_modules/@xmtp/node-bindings/package.json", import.meta.url), "utf8"));
  assert.equal(pkg.version, "1.9.1");
});

test("every content type of xmtp.md has a fixture", () => {
  const covered = new Set(fixtures().map((f) => f.contentType));
  for (const type of Object.values(TYPES)) assert.ok(covered.has(type), `no fixture for ${type}`);
});

for (const fixture of fixtures()) {
  test(`${fixture.name}: the sdk encoders produce the recorded encoding`, () => {
    assert.ok(fixture.encoded, "fixture has no recorded encoding (run with --record)");
    const actual = describeOutgoing(fixture.contentType, fixture.content);
    if (actual.reply) {
      assert.deepEqual({ ...actual.reply, content: comparable(actual.reply.content) }, { ...fixture.encoded.reply, content: comparable(fixture.encoded.reply.content) });
    } else {
      assert.deepEqual(comparable(actual), comparable(fixture.encoded));
    }
  });

  test(`${fixture.name}: the recorded bytes decode back to our json`, () => {
    const encoded = fixture.encoded.reply ? fixture.encoded.reply.content : fixture.encoded;
    const ours = fixture.encoded.reply ? fixture.content.content : fixture.content;
    const innerType = fixture.encoded.reply ? fixture.content.contentType : fixture.contentType;
    if (JSON_TYPES.has(innerType)) assert.deepEqual(JSON.parse(encoded.content), ours);
    else if (innerType === TYPES.text || innerType === TYPES.markdown) assert.equal(encoded.content, ours);
    else assert.ok(encoded.contentBase64, "binary content is recorded as base64");
  });

  test(`${fixture.name}: sdk content objects map back to our json`, () => {
    if (fixture.contentType === TYPES.reply) {
      // node-sdk's decoded reply shape: {referenceId, contentType, content}.
      const [authorityId, rest] = fixture.content.contentType.split("/");
      const [typeId, version] = rest.split(":");
      const [versionMajor, versionMinor] = version.split(".").map(Number);
      const decoded = {
        referenceId: fixture.content.reference,
        referenceInboxId: fixture.content.referenceInboxId,
        contentType: { authorityId, typeId, versionMajor, versionMinor },
        content: toSdk(fixture.content.contentType, fixture.content.content),
      };
      assert.deepEqual(fromSdk(fixture.contentType, decoded), fixture.content);
    } else {
      assert.deepEqual(fromSdk(fixture.contentType, toSdk(fixture.contentType, fixture.content)), fixture.content);
    }
  });
}
