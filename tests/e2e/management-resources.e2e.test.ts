/**
 * The limits and vhost-metadata dynamic providers against a real broker: what each step leaves in
 * the management API, that refresh sees changes made by hand, and that the limits are enforced
 * (a second MQTT connection is refused once max-connections is 1).
 *
 * Every vhost and user here carries a random tag and is deleted in afterAll.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { connectAsync, type MqttClient } from "mqtt";
import type * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { certificateUserProvider } from "../../components/management/certificate-user";
import { limitsProvider, type LimitScope, type LimitsProps } from "../../components/management/limits";
import { vhostMetadataProvider, type VhostMetadataProps } from "../../components/management/vhost-metadata";
import { versionAtLeast } from "../../core/broker-baseline";
import { adminApi, adminApiOk, type Method } from "../support/management";

const broker = inject("broker");
const connection = { managementUrl: broker.managementUrl, username: broker.adminUsername, password: broker.adminPassword };
const TAG = `e2e${randomBytes(3).toString("hex")}`;

// Management API, spoken directly (not through components/management/api.ts, which is under test)
const api = (method: Method, pathname: string, body?: unknown) => adminApi(broker, method, pathname, body);
const apiOk = async (method: Method, pathname: string, body?: unknown) => (await adminApiOk(broker, method, pathname, body)).body;

const enc = encodeURIComponent;
const vhosts: string[] = [];
const users: string[] = [];

async function makeVhost(suffix: string, body: Record<string, unknown> = {}): Promise<string> {
  const name = `${TAG}-${suffix}`;
  vhosts.push(name);
  await apiOk("PUT", `vhosts/${enc(name)}`, body);
  return name;
}

async function makeUser(suffix: string, password: string, vhost?: string): Promise<string> {
  const name = `${TAG}-${suffix}`;
  users.push(name);
  await apiOk("PUT", `users/${enc(name)}`, { password, tags: "" });
  if (vhost !== undefined) {
    await apiOk("PUT", `permissions/${enc(vhost)}/${enc(name)}`, { configure: ".*", write: ".*", read: ".*" });
  }
  return name;
}

/** GET /api/{vhost,user}-limits/<target>: the broker's rows, as it returns them. */
async function brokerLimits(scope: LimitScope, target: string): Promise<unknown> {
  return apiOk("GET", `${scope}-limits/${enc(target)}`);
}

function limitRows(scope: LimitScope, target: string, value: Record<string, number>): unknown {
  // No limits at all: the broker returns an empty list, not a row with an empty value.
  return Object.keys(value).length === 0 ? [] : [{ [scope]: target, value }];
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

afterAll(async () => {
  for (const u of users) await api("DELETE", `users/${enc(u)}`);
  for (const v of vhosts) await api("DELETE", `vhosts/${enc(v)}`);
});

// ---------------------------------------------------------------------------------------------
// The providers, called the way the engine calls them

type Provider = pulumi.dynamic.ResourceProvider;

function engine<P>(provider: Provider) {
  return {
    async check(olds: Partial<P>, news: P): Promise<pulumi.dynamic.CheckResult> {
      if (!provider.check) return { inputs: news, failures: [] };
      return provider.check(olds, news);
    },
    async create(props: P): Promise<{ id: string; outs: P }> {
      if (provider.check) {
        const checked = await provider.check({}, props);
        expect(checked.failures ?? []).toEqual([]);
      }
      const r = await provider.create(props);
      return { id: r.id, outs: r.outs as P };
    },
    async read(id: string, props: P): Promise<pulumi.dynamic.ReadResult> {
      if (!provider.read) throw new Error("provider has no read");
      return provider.read(id, props);
    },
    async diff(id: string, olds: P, news: P): Promise<pulumi.dynamic.DiffResult> {
      if (!provider.diff) throw new Error("provider has no diff");
      return provider.diff(id, olds, news);
    },
    async update(id: string, olds: P, news: P): Promise<P> {
      if (!provider.update) throw new Error("provider has no update");
      if (provider.check) expect((await provider.check(olds, news)).failures ?? []).toEqual([]);
      return (await provider.update(id, olds, news)).outs as P;
    },
    async delete(id: string, props: P): Promise<void> {
      if (!provider.delete) throw new Error("provider has no delete");
      await provider.delete(id, props);
    },
  };
}

const limits = engine<LimitsProps>(limitsProvider);
const metadata = engine<VhostMetadataProps>(vhostMetadataProvider);

// ---------------------------------------------------------------------------------------------
// Enforcement is checked over MQTT: the broker's security baseline offers no password login on
// AMQP 0-9-1 (core/broker-baseline.ts), and MQTT is what tenants use. Connection limits apply to
// MQTT connections as to any other.

let clientSeq = 0;

interface Login {
  readonly user: string;
  readonly password: string;
  readonly vhost: string;
}

/** Connects as `vhost:user` (the MQTT plugin's vhost selection) with a fresh client id. */
async function tryConnect(login: Login): Promise<MqttClient | Error> {
  try {
    return await connectAsync({
      host: broker.host,
      port: broker.mqttPort,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      // Unique across the broker: on 3.10 a duplicate client id takes over a connection in ANY vhost.
      clientId: `${TAG}-c${++clientSeq}`,
      username: `${login.vhost}:${login.user}`,
      password: login.password,
    });
  } catch (e) {
    return e as Error;
  }
}

/**
 * Connects again and again until the broker refuses (it tracks connections asynchronously, so a
 * connection opened a moment ago may not count yet). Returns the refusal and how many tries it took.
 */
async function expectRefusedSoon(login: Login): Promise<{ error: Error; tries: number }> {
  const deadline = Date.now() + 10_000;
  for (let tries = 1; ; tries++) {
    const r = await tryConnect(login);
    if (r instanceof Error) return { error: r, tries };
    await r.endAsync();
    if (Date.now() > deadline) throw new Error(`a connection over the limit was still accepted after ${tries} tries`);
    await sleep(200);
  }
}

/** Connects until the broker accepts (a closed connection may still count for a moment). */
async function connectSoon(login: Login): Promise<MqttClient> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await tryConnect(login);
    if (!(r instanceof Error)) return r;
    if (Date.now() > deadline) throw r;
    await sleep(200);
  }
}

/** Waits for a line in the broker's log (the CONNACK carries only a code, the log says why). */
async function brokerLogHasLine(...parts: string[]): Promise<boolean> {
  const file = path.join(broker.baseDir, "log", `${broker.nodeName}.log`);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (fs.existsSync(file) && fs.readFileSync(file, "utf8").split("\n").some((line) => parts.every((p) => line.includes(p)))) {
      return true;
    }
    await sleep(250);
  }
  return false;
}

/** A CONNACK refusal (return code 1-5), not a network error or timeout. */
function expectConnackRefusal(error: Error): void {
  expect((error as { code?: unknown }).code).toBeOneOf([1, 2, 3, 4, 5]);
}

// ---------------------------------------------------------------------------------------------

describe("limits provider", () => {
  let vhost: string;
  let user: string;

  beforeAll(async () => {
    vhost = await makeVhost("limits");
    user = await makeUser("limits", randomBytes(12).toString("hex"));
  });

  it("check refuses unknown limit names, negative and fractional values", async () => {
    const bad = await limits.check({}, { connection, scope: "vhost", target: vhost, limits: { "max-channels": 1, "max-queues": -1 } });
    expect(bad.failures?.map((f) => f.reason)).toEqual([
      expect.stringMatching(/unknown vhost limit 'max-channels'/),
      expect.stringMatching(/max-queues must be a whole number >= 0/),
    ]);
    const frac = await limits.check({}, { connection, scope: "user", target: user, limits: { "max-channels": 1.5 } });
    expect(frac.failures?.map((f) => f.reason)).toEqual([expect.stringMatching(/max-channels must be a whole number/)]);
  });

  it.each([
    ["vhost", "max-connections", "max-queues"],
    ["user", "max-channels", "max-connections"],
  ] as const)(
    "%s limits: create, update (one removed, one changed), refresh after a change by hand, delete",
    async (scope, kept, removed) => {
      const target = scope === "vhost" ? vhost : user;
      const desired1: LimitsProps = { connection, scope, target, limits: { [kept]: 10, [removed]: 20 } };
      const created = await limits.create(desired1);
      expect(created.id).toBe(`${scope}:${target}`);
      expect(await brokerLimits(scope, target)).toEqual(limitRows(scope, target, { [kept]: 10, [removed]: 20 }));
      const read1 = await limits.read(created.id, created.outs);
      expect(read1).toEqual({ id: created.id, props: desired1 });
      expect((await limits.diff(created.id, created.outs, desired1)).changes).toBe(false);

      // `removed` goes away, `kept` changes.
      const desired2: LimitsProps = { connection, scope, target, limits: { [kept]: 5 } };
      expect(await limits.diff(created.id, created.outs, desired2)).toMatchObject({ changes: true, replaces: [] });
      const outs2 = await limits.update(created.id, created.outs, desired2);
      expect(await brokerLimits(scope, target)).toEqual(limitRows(scope, target, { [kept]: 5 }));
      expect((await limits.read(created.id, outs2)).props).toEqual(desired2);

      // By hand: `kept` raised, `removed` set again. Refresh shows both; the next update undoes both.
      await apiOk("PUT", `${scope}-limits/${enc(target)}/${kept}`, { value: 9 });
      await apiOk("PUT", `${scope}-limits/${enc(target)}/${removed}`, { value: 7 });
      const refreshed = (await limits.read(created.id, outs2)).props as LimitsProps;
      expect(refreshed.limits).toEqual({ [kept]: 9, [removed]: 7 });
      expect((await limits.diff(created.id, refreshed, desired2)).changes).toBe(true);
      const outs3 = await limits.update(created.id, refreshed, desired2);
      expect(await brokerLimits(scope, target)).toEqual(limitRows(scope, target, { [kept]: 5 }));

      await limits.delete(created.id, outs3);
      expect(await brokerLimits(scope, target)).toEqual([]);
      expect(((await limits.read(created.id, outs3)).props as LimitsProps).limits).toEqual({});
      // Deleting again (e.g. a retried destroy) is not an error.
      await limits.delete(created.id, outs3);
    },
  );

  it("a user limit max-connections: 1 refuses the user's second connection, and lifting it allows two", async () => {
    const password = randomBytes(12).toString("hex");
    const v = await makeVhost("conn-user");
    const login: Login = { user: await makeUser("conn-user", password, v), password, vhost: v };
    // Control: without the limit, two connections at once are fine.
    const [c1, c2] = [await connectSoon(login), await tryConnect(login)];
    expect(c2).not.toBeInstanceOf(Error);
    await c1.endAsync();
    if (!(c2 instanceof Error)) await c2.endAsync();

    const created = await limits.create({ connection, scope: "user", target: login.user, limits: { "max-connections": 1 } });
    const first = await connectSoon(login);
    try {
      const { error, tries } = await expectRefusedSoon(login);
      console.log(`[limits] second connection of ${login.user} refused after ${tries} attempt(s): ${error.message}`);
      expectConnackRefusal(error);
      // The broker says why, in each version's words (3.10 quotes the user; native MQTT, 3.12+, does not).
      const why = !versionAtLeast(broker, 3, 12) ? [`'${login.user}'`, "connection limit"] : [`MQTT connection failed: connection limit 1 is reached for user ${login.user}`];
      expect(await brokerLogHasLine(...why)).toBe(true);
      expect(first.connected).toBe(true);
    } finally {
      await first.endAsync();
    }
    // With the first one gone, one connection is allowed again.
    await (await connectSoon(login)).endAsync();

    await limits.delete(created.id, created.outs);
    const a = await connectSoon(login);
    const b = await tryConnect(login);
    try {
      expect(b).not.toBeInstanceOf(Error);
    } finally {
      await a.endAsync();
      if (!(b instanceof Error)) await b.endAsync();
    }
  });

  it("a vhost limit max-connections: 1 refuses a second connection into that vhost, even by another user", async () => {
    const password = randomBytes(12).toString("hex");
    const v = await makeVhost("conn-vhost");
    const one: Login = { user: await makeUser("conn-vhost-1", password, v), password, vhost: v };
    const two: Login = { user: await makeUser("conn-vhost-2", password, v), password, vhost: v };
    const created = await limits.create({ connection, scope: "vhost", target: v, limits: { "max-connections": 1 } });
    const first = await connectSoon(one);
    try {
      const { error } = await expectRefusedSoon(two);
      expectConnackRefusal(error);
      expect(await brokerLogHasLine(`'${v}'`, "connection limit")).toBe(true);
    } finally {
      await first.endAsync();
    }
    await limits.delete(created.id, created.outs);
    const a = await connectSoon(one);
    const b = await tryConnect(two);
    try {
      expect(b).not.toBeInstanceOf(Error);
    } finally {
      await a.endAsync();
      if (!(b instanceof Error)) await b.endAsync();
    }
  });
});

describe("vhost metadata provider", () => {
  interface VhostInfo {
    description?: unknown;
    tags?: unknown;
    default_queue_type?: unknown;
    metadata?: { description?: unknown; tags?: unknown; default_queue_type?: unknown };
  }

  async function vhostInfo(name: string): Promise<VhostInfo> {
    return (await apiOk("GET", `vhosts/${enc(name)}`)) as VhostInfo;
  }

  /** Asserts what GET /api/vhosts/<v> returns for description and tags, in every place it returns them. */
  async function expectMetadata(name: string, description: string, tags: string[]): Promise<void> {
    const info = await vhostInfo(name);
    // 3.10.8 (checked) returns both at the top level AND under `metadata`; the top level is what
    // the provider's read prefers, so it must be there.
    expect({ description: info.description, tags: info.tags }).toEqual({ description, tags });
    if (info.metadata !== undefined) {
      expect({ description: info.metadata.description, tags: info.metadata.tags }).toEqual({ description, tags });
    }
  }

  it("create sets description and tags on an existing vhost without touching its contents or default queue type", async () => {
    // 3.10 reads `defaultqueuetype`, later versions `default_queue_type`: send both.
    const v = await makeVhost("meta", { defaultqueuetype: "quorum", default_queue_type: "quorum" });
    await apiOk("PUT", `queues/${enc(v)}/keep-me`, { durable: true, auto_delete: false, arguments: {} });
    const before = await vhostInfo(v);
    expect(before.default_queue_type).toBe("quorum");
    expect(before.description).toBe("");
    expect(before.tags).toEqual([]);

    const desired: VhostMetadataProps = { connection, vhost: v, description: "Tenant acme: MQTT devices", tags: ["mqtt", "tenant-acme"] };
    const created = await metadata.create(desired);
    expect(created.id).toBe(v);
    await expectMetadata(v, desired.description, ["mqtt", "tenant-acme"]);
    const after = await vhostInfo(v);
    expect(after.default_queue_type).toBe("quorum");
    expect((await api("GET", `queues/${enc(v)}/keep-me`)).status).toBe(200);

    expect(await metadata.read(created.id, created.outs)).toEqual({ id: v, props: desired });
    expect((await metadata.diff(created.id, created.outs, desired)).changes).toBe(false);
  });

  it("update changes description and tags; refresh reflects a change made by hand; update restores; the default queue type stays", async () => {
    const v = await makeVhost("meta-upd", { defaultqueuetype: "quorum", default_queue_type: "quorum" });
    const desired1: VhostMetadataProps = { connection, vhost: v, description: "first", tags: ["a", "b"] };
    const created = await metadata.create(desired1);
    await expectMetadata(v, "first", ["a", "b"]);

    const desired2: VhostMetadataProps = { connection, vhost: v, description: "second", tags: ["c"] };
    expect(await metadata.diff(created.id, created.outs, desired2)).toMatchObject({ changes: true, replaces: [] });
    const outs2 = await metadata.update(created.id, created.outs, desired2);
    await expectMetadata(v, "second", ["c"]);
    expect((await vhostInfo(v)).default_queue_type).toBe("quorum");

    // By hand, as an operator would in the management UI.
    // (With the queue type: on 4.3 a PUT without it would reset the vhost to classic.)
    await apiOk("PUT", `vhosts/${enc(v)}`, { description: "edited by hand", tags: "ops,manual", default_queue_type: "quorum", defaultqueuetype: "quorum" });
    const refreshed = await metadata.read(created.id, outs2);
    expect(refreshed).toEqual({ id: v, props: { ...desired2, description: "edited by hand", tags: ["ops", "manual"] } });
    const refreshedProps = refreshed.props as VhostMetadataProps;
    expect((await metadata.diff(created.id, refreshedProps, desired2)).changes).toBe(true);
    const outs3 = await metadata.update(created.id, refreshedProps, desired2);
    await expectMetadata(v, "second", ["c"]);

    // No tags at all.
    const desired4: VhostMetadataProps = { connection, vhost: v, description: "", tags: [] };
    const outs4 = await metadata.update(created.id, outs3, desired4);
    await expectMetadata(v, "", []);
    // Every update kept how the tenant's queues are stored (4.3 reset it to classic before).
    expect((await vhostInfo(v)).default_queue_type).toBe("quorum");
    expect((await metadata.read(created.id, outs4)).props).toEqual(desired4);

    // Delete leaves the vhost (it has its own resource) and its metadata alone.
    await metadata.delete(created.id, outs4);
    expect((await api("GET", `vhosts/${enc(v)}`)).status).toBe(200);
    // Once the vhost is gone, refresh reports the resource gone (no id).
    await apiOk("DELETE", `vhosts/${enc(v)}`);
    expect(await metadata.read(created.id, outs4)).toEqual({});
  });
});

describe("CertificateUser", () => {
  const props = (name: string) => ({ connection, name });

  it("creates a user whose password hash is empty, with no tags, and deletes it", async () => {
    const name = `CN=${TAG}-dev\\, 1,O=${TAG}`;
    users.push(name);
    const created = await certificateUserProvider.create(props(name));
    expect(created.id).toBe(name);
    const user = (await apiOk("GET", `users/${enc(name)}`)) as { password_hash?: string; tags: string | string[] };
    expect(user.password_hash ?? "").toBe("");
    expect(user.tags.length).toBe(0);
    // No password logs in: not even the empty one.
    const vhost = await makeVhost("certuser");
    await apiOk("PUT", `permissions/${enc(vhost)}/${enc(name)}`, { configure: ".*", write: ".*", read: ".*" });
    await expect(connectAsync(`mqtt://127.0.0.1:${broker.mqttPort}`, { username: `${vhost}:${name}`, password: "", reconnectPeriod: 0, connectTimeout: 5000 })).rejects.toThrow();
    expect((await certificateUserProvider.read!(name, props(name))).id).toBe(name);
    await certificateUserProvider.delete!(name, props(name));
    expect((await api("GET", `users/${enc(name)}`)).status).toBe(404);
    expect(await certificateUserProvider.read!(name, props(name))).toEqual({});
  });

  it("refuses to take over a user that already exists, and leaves it as it was", async () => {
    const vhost = await makeVhost("takeover");
    const name = await makeUser("existing", "existing-password-123", vhost);
    await expect(certificateUserProvider.create(props(name))).rejects.toThrow(/already exists on the broker/);
    const client = await connectAsync(`mqtt://127.0.0.1:${broker.mqttPort}`, { username: `${vhost}:${name}`, password: "existing-password-123", reconnectPeriod: 0, connectTimeout: 5000 });
    await client.endAsync();
  });
});
