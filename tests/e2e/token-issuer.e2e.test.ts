/**
 * Sign-in end to end on this run's release: a local OpenID provider (tests/support/oidc-provider.ts)
 * signs users in, the token issuer (issuer/server.ts, in a process of its own, reading its config
 * and the platform's RSA 3072 key from files) trades their ID tokens for broker tokens, and a node
 * rendered with `broker.tokens` for that key takes them over MQTT.
 * - 1,000 generated users sign in and connect at once; each reaches exactly its own topics, publish
 *   and subscribe, delivered or refused as the reference model says;
 * - the attacks: hostile user ids and foreign or forged ID tokens at the issuer; one tenant's token
 *   in another tenant's vhost (by username prefix and by a port mapped to that vhost); another
 *   user's client id;
 * - a live connection when its token expires, per release.
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { versionAtLeast } from "../../core/broker-baseline";
import { parseTokenApps } from "../../core/token-apps";
import { brokerInfo, startBroker, type BrokerInfo, type TestBroker } from "../support/broker";
import { endQuietly, isOpen, mqttConnect, sleep, tryPublish, trySubscribe, waitFor, type ReceivedMessage } from "../support/clients";
import { filterCovered, topicMatches } from "../support/access-model";
import { startIssuerProcess, type IssuerProcess } from "../support/issuer-process";
import { adminApiOk } from "../support/management";
import { startOidcProvider, type LocalOidcProvider } from "../support/oidc-provider";
import { generatePrivateKey } from "../support/tls-provider";
import { BrokerSession } from "../../examples/node-client/broker-session";

const RESOURCE_SERVER = "rabbitmq";
const KEY_ID = "k1";
const USERS = 1000;
const PUBLISH = ["activity/{user}/#"];
const SUBSCRIBE = ["client/{client}/#"];
/** The broker's answers to 1,000 clients at once may take a while on a busy machine: a late answer must not pass for a refusal. */
const ANSWER_MS = 30_000;

let idp: LocalOidcProvider;
let untrusted: LocalOidcProvider;
let issuer: IssuerProcess;
let node: TestBroker;
let info: BrokerInfo;
const clients: MqttClient[] = [];

/** The reference model, in MQTT terms: the app's templates with the user's id and client id written in. */
const fill = (t: string, user: string, client: string) => t.replace("{user}", user).replace("{client}", client);
const mayPublish = (user: string, client: string, topic: string) => PUBLISH.some((t) => topicMatches(fill(t, user, client), topic));
const maySubscribe = (user: string, client: string, filter: string) => SUBSCRIBE.some((t) => filterCovered(filter, fill(t, user, client)));

function app(name: string, over: Record<string, unknown> = {}) {
  return {
    name,
    identityProvider: { issuer: idp.issuer, audience: `${name}-client`, jwksUri: idp.jwksUri, caCertificatePem: idp.caCertPem },
    grants: { publish: PUBLISH, subscribe: SUBSCRIBE },
    clientIdsPerUser: 2,
    tokenLifetimeSeconds: 600,
    ...over,
  };
}

interface Issued {
  token: string;
  username: string;
  user: string;
  clientIds: string[];
  expiresAt: number;
}

async function signIn(tenant: string, appName: string, sub: string): Promise<Issued> {
  const r = await issuer.signIn(tenant, appName, await idp.idToken(`${appName}-client`, { sub }));
  if (r.status !== 200) throw new Error(`sign-in of ${sub} refused: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as unknown as Issued;
}

async function connect(issued: Issued, clientId = issued.clientIds[0]!, username = issued.username, port = info.mqttPort) {
  // 1,000 CONNECTs at once on a machine that runs other suites beside: correctness is tested here, speed in bench/.
  const outcome = await mqttConnect({ port, clientId, username, password: issued.token, connectTimeoutMs: 30_000 });
  if (outcome.ok) clients.push(outcome.client);
  return outcome;
}

beforeAll(async () => {
  idp = await startOidcProvider();
  untrusted = await startOidcProvider();
  const key = await generatePrivateKey("RSA", 3072);
  node = await startBroker({
    broker: { tokens: { resourceServerId: RESOURCE_SERVER, signingKeys: [KEY_ID] } },
    tokenKeys: { [KEY_ID]: createPublicKey(createPrivateKey(key.privateKeyPem)).export({ type: "spki", format: "pem" }).toString() },
  });
  info = brokerInfo(node);
  for (const vhost of ["acme", "globex"]) {
    await adminApiOk(info, "PUT", `vhosts/${vhost}`, {});
    await adminApiOk(info, "PUT", `permissions/${vhost}/${encodeURIComponent(info.adminUsername)}`, { configure: ".*", write: ".*", read: ".*" });
  }
  const config = {
    resourceServerId: RESOURCE_SERVER,
    issuerUrl: "https://tokens.test",
    signingKeyId: KEY_ID,
    tenants: {
      acme: { vhost: "acme", apps: [app("web"), app("short", { tokenLifetimeSeconds: 60 })] },
      globex: { vhost: "globex", apps: [app("web")] },
    },
  };
  // The same validation the issuer runs at start: a bad config fails here, not in a user's sign-in.
  for (const t of Object.values(config.tenants)) parseTokenApps(t.apps, "test");
  issuer = await startIssuerProcess(config, key.privateKeyPem);
}, 240_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => endQuietly(c)));
  await issuer?.stop();
  await node?.stop();
  await idp?.stop();
  await untrusted?.stop();
}, 120_000);

/** The admin in `vhost` over MQTT: publishes to users and sees what they publish. */
async function observer(vhost: string): Promise<{ client: MqttClient; messages: ReceivedMessage[] }> {
  const c = await mqttConnect({ port: info.mqttPort, clientId: `observer-${vhost}-${Date.now()}`, username: `${vhost}:${info.adminUsername}`, password: info.adminPassword });
  if (!c.ok) throw new Error(`observer refused: ${c.reason}`);
  clients.push(c.client);
  expect((await trySubscribe(c.client, "activity/#")).outcome).toBe("granted");
  return c;
}

describe("1,000 users of one app, signed in and connected at once", () => {
  it("each reaches exactly its own topics: subscribe and publish, delivered or refused as the model says", async () => {
    const obs = await observer("acme");
    const subs = Array.from({ length: USERS }, (_, i) => `user-${String(i + 1).padStart(4, "0")}`);

    let t0 = Date.now();
    const issued = await Promise.all(subs.map((s) => signIn("acme", "web", s)));
    const signInMs = Date.now() - t0;
    t0 = Date.now();
    const conns = await Promise.all(issued.map((i) => connect(i)));
    const connectMs = Date.now() - t0;
    const refused = conns.filter((c) => !c.ok);
    console.log(`[tokens] RabbitMQ ${info.version}: ${USERS} sign-ins through the issuer in ${signInMs} ms, ${USERS} MQTT connects at once in ${connectMs} ms, ${refused.length} refused`);
    expect(refused).toEqual([]);
    const users = issued.map((i, k) => ({ ...i, conn: conns[k] as Extract<(typeof conns)[number], { ok: true }> }));

    // Own subscription: granted, as the model says.
    const own = await Promise.all(users.map(async (u) => ({ u, filter: `client/${u.clientIds[0]}/#`, r: await trySubscribe(u.conn.client, `client/${u.clientIds[0]}/#`, 1, ANSWER_MS) })));
    for (const { u, filter, r } of own) expect([filter, r.outcome]).toEqual([filter, maySubscribe(u.user, u.clientIds[0]!, filter) ? "granted" : "refused"]);

    // Deliveries: the business side sends each user one message; each gets its own, and only it.
    for (const u of users) obs.client.publish(`client/${u.clientIds[0]}/inbox`, `for ${u.user}`, { qos: 1 });
    expect(await waitFor(() => users.every((u) => u.conn.messages.length >= 1), 30_000)).toBe(true);
    await sleep(500);
    for (const u of users) expect(u.conn.messages.map((m) => m.payload)).toEqual([`for ${u.user}`]);

    // Own publication: acknowledged and delivered to the observer.
    const pubs = await Promise.all(users.map(async (u) => ({ u, r: await tryPublish(u.conn.client, `activity/${u.user}/ping`, `ping ${u.user}`, 1, ANSWER_MS) })));
    for (const { u, r } of pubs) expect([u.user, r]).toEqual([u.user, mayPublish(u.user, u.clientIds[0]!, `activity/${u.user}/ping`) ? "acked" : "closed"]);
    expect(await waitFor(() => obs.messages.filter((m) => m.payload.startsWith("ping ")).length >= USERS, 30_000)).toBe(true);
    expect(new Set(obs.messages.filter((m) => m.payload.startsWith("ping ")).map((m) => `${m.topic} ${m.payload}`))).toEqual(new Set(users.map((u) => `activity/${u.user}/ping ping ${u.user}`)));

    // Every wider or foreign filter: refused, as the model says (the next user's, everyone's, the whole tree).
    const foreign = await Promise.all(
      users.map(async (u, k) => {
        const next = users[(k + 1) % users.length]!;
        const out: [string, string][] = [];
        for (const filter of [`client/${next.clientIds[0]}/#`, "client/#", "#"]) {
          expect(maySubscribe(u.user, u.clientIds[0]!, filter)).toBe(false);
          const r = await trySubscribe(u.conn.client, filter, 1, ANSWER_MS);
          out.push([filter, r.outcome]);
          if (r.outcome === "closed") break;
        }
        return out;
      }),
    );
    expect(foreign.flat().filter(([, o]) => o === "granted")).toEqual([]);

    // Publishing as another user: refused (the connection closes) and never delivered.
    const before = obs.messages.length;
    const forged = await Promise.all(
      users.map(async (u, k) => {
        const next = users[(k + 1) % users.length]!;
        expect(mayPublish(u.user, u.clientIds[0]!, `activity/${next.user}/forged`)).toBe(false);
        return isOpen(u.conn.client) ? tryPublish(u.conn.client, `activity/${next.user}/forged`, `forged by ${u.user}`, 1, ANSWER_MS) : "closed";
      }),
    );
    expect(forged.filter((r) => r === "acked")).toEqual([]);
    await sleep(1000);
    expect(obs.messages.slice(before).filter((m) => m.payload.startsWith("forged"))).toEqual([]);
    await Promise.all(users.map((u) => endQuietly(u.conn.client)));
  }, 300_000);
});

describe("attacks at the issuer: nothing is minted", () => {
  it.each(["*", "user-0001.#", "user-0001/#", "#", "+", "a%2Fb", "acme:admin", "user~1", "a b", "a\u0000b", "ü"])("a sign-in whose user id is %j: refused (403)", async (sub) => {
    const r = await issuer.signIn("acme", "web", await idp.idToken("web-client", { sub }));
    expect(r.status).toBe(403);
    expect(r.body["token"]).toBeUndefined();
  });

  it("an ID token of a provider the app does not trust: refused (401)", async () => {
    const r = await issuer.signIn("acme", "web", await untrusted.idToken("web-client", { sub: "user-0001" }));
    expect(r.status).toBe(401);
  });

  it("an ID token for another app, or naming another issuer: refused (401)", async () => {
    expect((await issuer.signIn("acme", "web", await idp.idToken("mobile-client", { sub: "user-0001" }))).status).toBe(401);
    expect((await issuer.signIn("acme", "web", await idp.idToken("web-client", { sub: "user-0001", iss: untrusted.issuer }))).status).toBe(401);
  });
});

describe("attacks at the broker with a genuine token", () => {
  it("an acme user's token opens no globex vhost, by username prefix", async () => {
    const t = await signIn("acme", "web", "user-0001");
    expect((await connect(t, t.clientIds[0], "globex:web")).ok).toBe(false);
  });

  it("nor through a listener port mapped to globex (mqtt_port_to_vhost_mapping)", async () => {
    await adminApiOk(info, "PUT", "global-parameters/mqtt_port_to_vhost_mapping", { name: "mqtt_port_to_vhost_mapping", value: { [String(info.tenantMqttPort)]: "globex" } });
    try {
      // The mapping is in force: a globex user's token, with no vhost in its username, gets in there.
      const g = await signIn("globex", "web", "user-0001");
      expect((await connect(g, g.clientIds[0], "web", info.tenantMqttPort)).ok).toBe(true);
      const t = await signIn("acme", "web", "user-0001");
      const c = await connect(t, t.clientIds[1], "web", info.tenantMqttPort);
      expect(c.ok).toBe(false);
    } finally {
      await adminApiOk(info, "DELETE", "global-parameters/mqtt_port_to_vhost_mapping");
    }
  });

  it("a user presenting another user's client id can subscribe to none of its topics", async () => {
    const owner = await signIn("acme", "web", "user-0002");
    const intruder = await signIn("acme", "web", "user-0003");
    const c = await connect(intruder, owner.clientIds[1]);
    // The broker does not tie client ids to users: the CONNECT is taken (token-scopes.e2e.test.ts).
    if (!c.ok) throw new Error(`expected the CONNECT to be taken, it was refused: ${c.reason}`);
    for (const filter of [`client/${owner.clientIds[1]}/#`, `client/${intruder.clientIds[0]}/#`]) {
      const r = await trySubscribe(c.client, filter);
      expect([filter, r.outcome]).not.toEqual([filter, "granted"]);
      if (r.outcome === "closed") break;
    }
  });
});

describe("a live connection when its token expires", () => {
  it("4.x closes it at expiry, 3.10 keeps it open; the Node client renews before expiry and keeps its session either way", async () => {
    const t = await signIn("acme", "short", "user-0004");
    const c = await connect(t);
    if (!c.ok) throw new Error(`refused: ${c.reason}`);
    // The example Node client (mobile/desktop), same app, another user: it renews 50 s before expiry.
    const received: string[] = [];
    const session = new BrokerSession({
      tokenUrl: `${issuer.url}/v1/tenants/acme/apps/short/token`,
      idToken: () => idp.idToken("short-client", { sub: "user-0005" }),
      brokerUrl: `mqtt://127.0.0.1:${info.mqttPort}`,
      renewBeforeSeconds: 50,
      onMessage: (_topic, payload) => received.push(payload.toString()),
    });
    await session.start(["client/user-0005~1/#"]);
    const firstToken = session.issued!.token;
    const obs = await observer("acme");
    obs.client.publish("client/user-0005~1/news", "before renewal", { qos: 1 });

    const untilExpiry = t.expiresAt * 1000 - Date.now();
    expect(untilExpiry).toBeGreaterThan(50_000);
    const closedBefore = await waitFor(() => !isOpen(c.client), untilExpiry - 5_000, 500);
    expect(closedBefore).toBe(false);
    const closedAfter = await waitFor(() => !isOpen(c.client), 20_000, 250);
    const closedAt = Date.now() - t.expiresAt * 1000;
    console.log(`[tokens] RabbitMQ ${info.version}: a connection whose token expired ${closedAfter ? `was closed ${closedAt} ms after expiry` : "was still open 20 s after expiry"}`);
    expect(closedAfter).toBe(versionAtLeast(info, 4, 0));

    // Past the first token's expiry, the renewing client is connected with a new token and its
    // session kept: what was published before and after the renewals arrives once each.
    expect(session.renewals).toBeGreaterThanOrEqual(4);
    expect(session.issued!.token).not.toBe(firstToken);
    expect(isOpen(session.mqttClient!)).toBe(true);
    obs.client.publish("client/user-0005~1/news", "after expiry", { qos: 1 });
    expect(await waitFor(() => received.includes("after expiry"), 10_000)).toBe(true);
    expect(received).toEqual(["before renewal", "after expiry"]);
    console.log(`[tokens] RabbitMQ ${info.version}: the Node client renewed its token ${session.renewals} times, kept its session, missed nothing`);
    await session.stop();
  }, 150_000);
});
