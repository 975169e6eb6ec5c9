/**
 * The scopes core/token-scopes.ts writes into an app user's token, on the broker: a node of this
 * run's release with RabbitMQ's OAuth 2 backend beside the internal one, verifying RS256 tokens
 * with two static public keys (rotation), takes MQTT logins whose password is such a token, and
 * each user reaches only its own topics and queues, whatever client id or vhost it presents. The
 * backend's settings are the product's (core/broker-config.ts renders `broker.tokens`): what is
 * proven is that they load on this release, refuse what they must, and that the scopes mean on
 * the broker what the reference model says they mean.
 */
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { versionAtLeast } from "../../core/broker-baseline";
import { appScopes, parseAppGrant, type AppGrants } from "../../core/token-scopes";
import { brokerInfo, startBroker, type BrokerInfo, type TestBroker } from "../support/broker";
import { endQuietly, isOpen, mqttConnect, sleep, tryPublish, trySubscribe, waitFor, type ReceivedMessage } from "../support/clients";
import { adminApiOk } from "../support/management";
import { hs256WithPublicKey, rs256, rsaSigningKey, rsSigned, unsigned, withPayload } from "../support/tokens";

const VHOST = "acme";
const OTHER_VHOST = "globex";
const RESOURCE_SERVER = "rabbitmq";
const GRANTS: AppGrants = { publish: [parseAppGrant("activity/{user}/#")], subscribe: [parseAppGrant("client/{client}/#")] };

const k1 = rsaSigningKey("k1");
const k2 = rsaSigningKey("k2");
const notConfigured = rsaSigningKey("k1");

let node: TestBroker;
let info: BrokerInfo;
const clients: MqttClient[] = [];

const now = () => Math.floor(Date.now() / 1000);
function claims(user: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { sub: user, aud: [RESOURCE_SERVER], iat: now(), exp: now() + 600, scope: appScopes(GRANTS, { vhost: VHOST, resourceServerId: RESOURCE_SERVER, user, clientIds: 2 }), ...over };
}

async function login(token: string, clientId: string, username = `${VHOST}:app`) {
  const outcome = await mqttConnect({ port: info.mqttPort, clientId, username, password: token });
  if (outcome.ok) clients.push(outcome.client);
  return outcome;
}

async function connected(token: string, clientId: string): Promise<{ client: MqttClient; messages: ReceivedMessage[] }> {
  const outcome = await login(token, clientId);
  if (!outcome.ok) throw new Error(`${clientId} refused: ${outcome.reason}`);
  return outcome;
}

/** An observer with full access in the tenant's vhost (the admin user) sees what reaches `activity/#`. */
let observed: ReceivedMessage[];

async function publishAsAdmin(routingKey: string, payload: string): Promise<void> {
  const r = await adminApiOk(info, "POST", `exchanges/${VHOST}/amq.topic/publish`, { properties: {}, routing_key: routingKey, payload, payload_encoding: "string" });
  expect((r.body as { routed: boolean }).routed).toBe(true);
}

describe("app users' token scopes on the broker", () => {
  beforeAll(async () => {
    node = await startBroker({
      broker: { tokens: { resourceServerId: RESOURCE_SERVER, signingKeys: [k1.kid, k2.kid] } },
      tokenKeys: { [k1.kid]: k1.publicKeyPem, [k2.kid]: k2.publicKeyPem },
    });
    info = brokerInfo(node);
    for (const vhost of [VHOST, OTHER_VHOST]) {
      await adminApiOk(info, "PUT", `vhosts/${vhost}`, {});
      await adminApiOk(info, "PUT", `permissions/${vhost}/${encodeURIComponent(info.adminUsername)}`, { configure: ".*", write: ".*", read: ".*" });
    }
    const admin = await mqttConnect({ port: info.mqttPort, clientId: "observer", username: `${VHOST}:${info.adminUsername}`, password: info.adminPassword });
    if (!admin.ok) throw new Error(`observer refused: ${admin.reason}`);
    clients.push(admin.client);
    expect((await trySubscribe(admin.client, "activity/#")).outcome).toBe("granted");
    observed = admin.messages;
  }, 240_000);

  afterAll(async () => {
    for (const c of clients) await endQuietly(c);
    await node?.stop();
  }, 120_000);

  it("a user's token reaches its own topics: subscribe under client/<its client id>, publish under activity/<its id>", async () => {
    const u1 = await connected(rs256(k1, claims("u1")), "u1~1");
    expect((await trySubscribe(u1.client, "client/u1~1/#")).outcome).toBe("granted");
    await publishAsAdmin("client.u1~1.hello", "to u1");
    expect(await waitFor(() => u1.messages.some((m) => m.topic === "client/u1~1/hello" && m.payload === "to u1"), 5000)).toBe(true);
    expect(await tryPublish(u1.client, "activity/u1/login", "u1 in")).toBe("acked");
    expect(await waitFor(() => observed.some((m) => m.topic === "activity/u1/login" && m.payload === "u1 in"), 5000)).toBe(true);
  });

  it("a token signed with the second key in force (rotation) is accepted", async () => {
    const u2 = await connected(rs256(k2, claims("u2")), "u2~1");
    expect((await trySubscribe(u2.client, "client/u2~1/#")).outcome).toBe("granted");
  });

  it("refuses another user's topics (one whose id the first one's prefixes) and every wider filter", async () => {
    for (const filter of ["client/u10~1/#", "client/u1~10/#", "client/#", "client/+/hello", "#", "activity/u1/#", "activity/#"]) {
      const u1 = await connected(rs256(k1, claims("u1")), "u1~2");
      const r = await trySubscribe(u1.client, filter);
      expect([filter, r.outcome]).not.toEqual([filter, "granted"]);
      await endQuietly(u1.client);
    }
    for (const topic of ["activity/u10/login", "activity/u2/login", "client/u1~1/x"]) {
      const u1 = await connected(rs256(k1, claims("u1")), "u1~2");
      expect([topic, await tryPublish(u1.client, topic, `forged ${topic}`)]).not.toEqual([topic, "acked"]);
      await endQuietly(u1.client);
    }
    await sleep(500);
    expect(observed.filter((m) => m.payload.startsWith("forged"))).toEqual([]);
  });

  it("a user presenting another user's client id can subscribe to nothing", async () => {
    const owner = await connected(rs256(k1, claims("u2")), "u2~2");
    const u1 = await connected(rs256(k1, claims("u1")), "u2~2");
    const ownerClosed = await waitFor(() => !isOpen(owner.client), 3000);
    console.log(`[tokens] RabbitMQ ${info.version}: another user connecting with u2's client id u2~2: u2's own connection ${ownerClosed ? "was closed (taken over)" : "stayed open"}`);
    // Seen on 3.10.8, 4.0.5 and 4.3.6: the broker does not tie a client id to a user, so presenting
    // another user's client id disconnects that user's connection (MQTT's takeover). It reaches
    // none of that user's topics or queues (below).
    expect(ownerClosed).toBe(true);
    for (const filter of ["client/u2~2/#", "client/u1~1/#"]) {
      const r = await trySubscribe(u1.client, filter);
      expect([filter, r.outcome]).not.toEqual([filter, "granted"]);
      if (r.outcome === "closed") break;
    }
  });

  it("a token for one tenant's vhost opens no other vhost", async () => {
    const outcome = await login(rs256(k1, claims("u1")), "u1~1", `${OTHER_VHOST}:app`);
    expect(outcome.ok).toBe(false);
  });

  // What the broker leaves to the token issuer (seen on 3.10.8, 4.0.5, 4.3.6): tokens without an
  // expiry pass before 4.3 (4.3 added auth_oauth2.require_exp, on by default), and `nbf` is not
  // checked at all. Only the issuer holds the signing key, so it must always set `exp` and never
  // mint a token that becomes valid later.
  it("a token without an expiry: refused from 4.3 only", async () => {
    const { exp: _exp, ...noExpiry } = claims("u1");
    const outcome = await login(rs256(k1, noExpiry), "u1~1");
    expect(outcome.ok).toBe(!versionAtLeast(info, 4, 3));
  });

  // No default_key is rendered, yet a token without a kid is verified (seen on 3.10.8 and 4.0.5):
  // the key id only selects among the keys in force, and a key the broker does not have still fails.
  it("a token without a kid: accepted when a key in force signed it", async () => {
    const outcome = await login(rs256(k2, claims("u1"), undefined), "u1~1");
    expect(outcome.ok).toBe(true);
  });

  it("a token not valid yet (nbf in 10 minutes): accepted, the broker does not check nbf", async () => {
    const outcome = await login(rs256(k1, claims("u1", { nbf: now() + 600 })), "u1~1");
    expect(outcome.ok).toBe(true);
  });

  it.each([
    ["expired", () => rs256(k1, claims("u1", { exp: now() - 60 }))],
    ["for another audience", () => rs256(k1, claims("u1", { aud: ["someone-else"] }))],
    ["unsigned (alg none)", () => unsigned(claims("u1"), "k1")],
    ["HS256 keyed with the public key", () => hs256WithPublicKey(k1, claims("u1"))],
    ["signed with a key the broker does not have, under its kid", () => rs256(notConfigured, claims("u1"))],
    ["signed under an unknown kid", () => rs256({ ...k1, kid: "k9" }, claims("u1"))],
    ["without a kid, signed with a key the broker does not have", () => rs256(notConfigured, claims("u1"), undefined)],
    ["without an audience", () => rs256(k1, { ...claims("u1"), aud: undefined })],
    // The algorithm is pinned (auth_oauth2.algorithms): the right key under another algorithm fails.
    ["signed with the right key but RS512", () => rsSigned("RS512", k1, claims("u1"))],
    ["with a tampered scope", () => withPayload(rs256(k1, claims("u1")), claims("u1", { scope: [`${RESOURCE_SERVER}.read:${VHOST}/amq.topic/*`, `${RESOURCE_SERVER}.configure:${VHOST}/*`, `${RESOURCE_SERVER}.write:${VHOST}/*`, `${RESOURCE_SERVER}.read:${VHOST}/*`] }))],
  ])("refuses a token %s", async (_what, make) => {
    const outcome = await login(make(), "u1~1");
    expect(outcome.ok).toBe(false);
  });
});
