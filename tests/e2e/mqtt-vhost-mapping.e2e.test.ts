/**
 * The MqttVhostMapping dynamic provider against a real broker: a stack owns only its own entries of
 * the broker-wide `mqtt_default_vhosts` / `mqtt_port_to_vhost_mapping` objects, refreshes see drift,
 * and many stacks changing their entries at the same moment (in one process, and in separate
 * processes that load the provider from its serialized closure as the engine does) lose nothing.
 *
 * Both parameters are global and the broker is shared by every e2e file. Files run one at a time,
 * so within a test the object only changes through this test; still, every key this file writes
 * carries a random tag (or is a port number that was free when the test started) and is removed
 * again in afterEach, and keys other files left behind are only ever compared, never changed.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import * as readline from "node:readline";
import type * as pulumi from "@pulumi/pulumi";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { mqttVhostMappingProvider, type MqttVhostMappingProps } from "../../components/management/mqtt-vhost-mapping";
import { MQTT_MAPPING_PARAMETERS, type MappingEntries, type MqttMappingParameter } from "../../core/mqtt-mappings";
import { adminApi, adminApiOk, type Method } from "../support/management";
import type { WorkerInput, WorkerResult } from "../support/mapping-worker";

const broker = inject("broker");
const connection = { managementUrl: broker.managementUrl, username: broker.adminUsername, password: broker.adminPassword };
const ROOT = path.resolve(__dirname, "../..");
const TSX = path.join(ROOT, "node_modules/.bin/tsx");
const WORKER = path.join(ROOT, "tests/support/mapping-worker.ts");
/** The token this file's foreign lock queues carry (the provider picks random ones). */
const FOREIGN_TOKEN = 12345;

// Management API, spoken directly (not through components/management/api.ts, which is under test)
const api = (method: Method, pathname: string, body?: unknown) => adminApi(broker, method, pathname, body);
const apiOk = (method: Method, pathname: string, body?: unknown) => adminApiOk(broker, method, pathname, body);

/** The parameter's whole value, or undefined when the parameter does not exist. */
async function readObject(parameter: string): Promise<Record<string, unknown> | undefined> {
  const r = await api("GET", `global-parameters/${encodeURIComponent(parameter)}`);
  if (r.status === 404) return undefined;
  if (r.status !== 200) throw new Error(`GET global parameter ${parameter}: ${r.status}`);
  return (r.body as { value: Record<string, unknown> }).value;
}

async function writeObject(parameter: string, value: Record<string, unknown>): Promise<void> {
  await apiOk("PUT", `global-parameters/${encodeURIComponent(parameter)}`, { value });
}

function lockQueuePath(parameter: string): string {
  return `queues/%2F/${encodeURIComponent(`rabbitmq-mqtt.lock.${parameter}`)}`;
}

async function lockQueueExists(parameter: string): Promise<boolean> {
  return (await api("GET", lockQueuePath(parameter))).status === 200;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------
// The checker: which expected entries a mapping object lost or got wrong

interface MappingReport {
  /** Expected keys absent from the object. */
  readonly missing: string[];
  /** Expected keys present with another value. */
  readonly wrong: { key: string; expected: string; actual: unknown }[];
  /** Keys of `universe` (everything the test ever wrote) present although not expected. */
  readonly unexpected: string[];
}

function checkMapping(
  expected: Readonly<Record<string, string>>,
  actual: Readonly<Record<string, unknown>> | undefined,
  universe: Iterable<string>,
): MappingReport {
  const obj = actual ?? {};
  const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(obj, k);
  const missing: string[] = [];
  const wrong: MappingReport["wrong"] = [];
  for (const [key, value] of Object.entries(expected)) {
    if (!has(key)) missing.push(key);
    else if (obj[key] !== value) wrong.push({ key, expected: value, actual: obj[key] });
  }
  const unexpected = [...new Set(universe)].filter((k) => has(k) && !Object.prototype.hasOwnProperty.call(expected, k));
  return { missing: missing.sort(), wrong, unexpected: unexpected.sort() };
}

function clean(report: MappingReport): boolean {
  return report.missing.length === 0 && report.wrong.length === 0 && report.unexpected.length === 0;
}

// ---------------------------------------------------------------------------------------------
// The provider, called the way the engine calls it

type Provider = pulumi.dynamic.ResourceProvider;
const provider: Provider = mqttVhostMappingProvider;

/**
 * The merge, lock and drift tests use many port numbers the broker does not listen on, so they
 * switch the listener check off; "the listener check" below proves it on its own.
 */
function propsFor(parameter: MqttMappingParameter, entries: MappingEntries): MqttVhostMappingProps {
  return { connection, parameter, entries, verifyListeners: false };
}

interface Created {
  id: string;
  outs: MqttVhostMappingProps;
}

/** check, then create: the engine's order for a new resource. */
async function engineCreate(props: MqttVhostMappingProps): Promise<Created> {
  if (!provider.check) throw new Error("provider has no check");
  const checked = await provider.check({}, props);
  expect(checked.failures ?? []).toEqual([]);
  const created = await provider.create(checked.inputs);
  return { id: created.id, outs: created.outs as MqttVhostMappingProps };
}

async function engineDiff(id: string, olds: MqttVhostMappingProps, news: MqttVhostMappingProps): Promise<pulumi.dynamic.DiffResult> {
  if (!provider.diff) throw new Error("provider has no diff");
  return provider.diff(id, olds, news);
}

async function engineRead(id: string, props: MqttVhostMappingProps): Promise<MqttVhostMappingProps> {
  if (!provider.read) throw new Error("provider has no read");
  const r = await provider.read(id, props);
  expect(r.id).toBe(id);
  return r.props as MqttVhostMappingProps;
}

async function engineUpdate(id: string, olds: MqttVhostMappingProps, news: MqttVhostMappingProps): Promise<MqttVhostMappingProps> {
  if (!provider.update) throw new Error("provider has no update");
  if (!provider.check) throw new Error("provider has no check");
  const checked = await provider.check(olds, news);
  expect(checked.failures ?? []).toEqual([]);
  const r = await provider.update(id, olds, checked.inputs);
  return r.outs as MqttVhostMappingProps;
}

async function engineDelete(id: string, props: MqttVhostMappingProps): Promise<void> {
  if (!provider.delete) throw new Error("provider has no delete");
  await provider.delete(id, props);
}

// ---------------------------------------------------------------------------------------------
// Per-test keys and cleanup

/** Each real parameter as this file found it (undefined: absent); cleanup restores exactly that. */
const initial = new Map<string, Record<string, unknown> | undefined>();

interface Scope {
  /** Lowercase, so it can be part of a vhost name. */
  readonly tag: string;
  /** Every key this test may have written, per parameter. */
  readonly touched: Map<string, Set<string>>;
  /** Parameters that are this test's own scratch objects: deleted whole afterwards. */
  readonly scratch: string[];
  /** Foreign lock queues this test declared. */
  readonly foreignLocks: string[];
  /** Provider calls still running if the test gave up on them. */
  readonly pending: Promise<unknown>[];
}

let scope: Scope;

function touch(parameter: string, keys: Iterable<string>): void {
  const set = scope.touched.get(parameter) ?? new Set<string>();
  for (const k of keys) set.add(k);
  scope.touched.set(parameter, set);
}

/** Keys for (stack i, entry j): certificate DNs or listener ports that are free right now. */
interface KeySpace {
  key(stack: number, entry: number): string;
}

async function keySpace(parameter: MqttMappingParameter, stacks: number, perStack: number): Promise<KeySpace> {
  if (parameter === "mqtt_default_vhosts") {
    return { key: (i, j) => `CN=${scope.tag}-s${i}-e${j},OU=devices,O=e2e` };
  }
  const current = (await readObject(parameter)) ?? {};
  const size = stacks * perStack;
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (65_000 - 20_000 - size));
    const taken = Array.from({ length: size }, (_, n) => String(base + n)).some((k) => k in current);
    if (!taken && base + size <= 65_535) {
      return { key: (i, j) => String(base + i * perStack + j) };
    }
  }
  throw new Error("no free block of port keys");
}

function vhost(...parts: (string | number)[]): string {
  return [scope.tag, ...parts].join("-");
}

beforeAll(async () => {
  for (const p of MQTT_MAPPING_PARAMETERS) initial.set(p, await readObject(p));
  // The lock queues live in '/': it must exist on the test broker.
  await apiOk("GET", "vhosts/%2F");
});

beforeEach(() => {
  scope = { tag: `e2e${randomBytes(3).toString("hex")}`, touched: new Map(), scratch: [], foreignLocks: [], pending: [] };
});

afterEach(async () => {
  for (const name of scope.foreignLocks) await api("DELETE", lockQueuePath(name));
  await Promise.allSettled(scope.pending);
  for (const [parameter, keys] of scope.touched) {
    const value = await readObject(parameter);
    if (value === undefined) continue;
    const rest = Object.fromEntries(Object.entries(value).filter(([k]) => !keys.has(k)));
    if (Object.keys(rest).length === 0 && initial.get(parameter) === undefined) {
      await api("DELETE", `global-parameters/${encodeURIComponent(parameter)}`);
    } else if (Object.keys(rest).length !== Object.keys(value).length) {
      await writeObject(parameter, rest);
    }
  }
  for (const name of scope.scratch) await api("DELETE", `global-parameters/${encodeURIComponent(name)}`);
});

afterAll(async () => {
  // Every key this file wrote is gone again, and nothing of what other files left was changed.
  for (const p of MQTT_MAPPING_PARAMETERS) expect(await readObject(p)).toEqual(initial.get(p));
  for (const p of MQTT_MAPPING_PARAMETERS) expect(await lockQueueExists(p)).toBe(false);
});

/** Seeds entries of "another stack" by writing the whole object, as an operator would. */
async function seedForeign(parameter: MqttMappingParameter, foreign: Record<string, unknown>): Promise<Record<string, unknown>> {
  touch(parameter, Object.keys(foreign));
  const seeded = { ...((await readObject(parameter)) ?? {}), ...foreign };
  await writeObject(parameter, seeded);
  return seeded;
}

// ---------------------------------------------------------------------------------------------

describe("checkMapping (the loss detector used by the concurrency tests)", () => {
  it("names missing, wrong and unexpected keys, and reports nothing for a complete object", () => {
    const expected = { a: "t1", b: "t1", c: "t2", d: "t3" };
    expect(checkMapping(expected, { a: "t1", b: "t1", c: "t2", d: "t3", other: "x" }, ["a", "b", "c", "d", "e"])).toEqual({
      missing: [],
      wrong: [],
      unexpected: [],
    });
    const report = checkMapping(expected, { a: "t1", c: "zz", e: "t9", other: "x" }, ["a", "b", "c", "d", "e"]);
    expect(report).toEqual({ missing: ["b", "d"], wrong: [{ key: "c", expected: "t2", actual: "zz" }], unexpected: ["e"] });
    expect(clean(report)).toBe(false);
    expect(checkMapping(expected, undefined, []).missing).toEqual(["a", "b", "c", "d"]);
  });
});

describe.each(MQTT_MAPPING_PARAMETERS)("MqttVhostMapping on %s", (parameter) => {
  it("create adds only this stack's entries; update adds, changes and removes only its own; delete removes only its own", async () => {
    const keys = await keySpace(parameter, 2, 4);
    const k = (j: number): string => keys.key(0, j);
    touch(parameter, [0, 1, 2, 3].map(k));
    // Another stack's entries: one on a key next to ours, one with the same vhost as one of ours.
    const foreign = { [keys.key(1, 0)]: "other-tenant", [keys.key(1, 1)]: vhost("a") };
    const seeded = await seedForeign(parameter, foreign);

    const desired1 = propsFor(parameter, { [k(0)]: vhost("a"), [k(1)]: vhost("b") });
    const created = await engineCreate(desired1);
    expect(created.outs.entries).toEqual(desired1.entries);
    expect(await readObject(parameter)).toEqual({ ...seeded, [k(0)]: vhost("a"), [k(1)]: vhost("b") });
    expect(await lockQueueExists(parameter)).toBe(false);

    // Nothing changed: no diff, and refresh reads back the same entries.
    expect((await engineDiff(created.id, created.outs, desired1)).changes).toBe(false);
    expect((await engineRead(created.id, created.outs)).entries).toEqual(desired1.entries);

    // k0 changes vhost, k1 goes away, k2 and k3 are new.
    const desired2 = propsFor(parameter, { [k(0)]: vhost("c"), [k(2)]: vhost("b"), [k(3)]: vhost("a") });
    const diff = await engineDiff(created.id, created.outs, desired2);
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    const updated = await engineUpdate(created.id, created.outs, desired2);
    expect(updated.entries).toEqual(desired2.entries);
    expect(await readObject(parameter)).toEqual({ ...seeded, [k(0)]: vhost("c"), [k(2)]: vhost("b"), [k(3)]: vhost("a") });
    expect(await lockQueueExists(parameter)).toBe(false);

    await engineDelete(created.id, updated);
    expect(await readObject(parameter)).toEqual(seeded);
    expect(await lockQueueExists(parameter)).toBe(false);
  });

  it("create refuses a key that maps to another vhost, names the entry and that vhost, and writes nothing", async () => {
    const keys = await keySpace(parameter, 2, 2);
    const taken = keys.key(1, 0);
    touch(parameter, [keys.key(0, 0), keys.key(0, 1)]);
    const seeded = await seedForeign(parameter, { [taken]: vhost("owner") });

    const attempt = engineCreate(propsFor(parameter, { [keys.key(0, 0)]: vhost("mine"), [taken]: vhost("mine") }));
    await expect(attempt).rejects.toThrow(parameter);
    const message = await attempt.then(
      () => "",
      (e: unknown) => (e as Error).message,
    );
    expect(message).toContain(JSON.stringify(taken));
    expect(message).toContain(`'${vhost("owner")}'`);
    expect(message).toContain(`'${vhost("mine")}'`);
    // Not even the entry without a conflict was written, and the lock was released.
    expect(await readObject(parameter)).toEqual(seeded);
    expect(await lockQueueExists(parameter)).toBe(false);

    // A key already mapped to the SAME vhost is adopted (makes a retried create idempotent).
    const adopted = await engineCreate(propsFor(parameter, { [taken]: vhost("owner"), [keys.key(0, 1)]: vhost("owner") }));
    expect(await readObject(parameter)).toEqual({ ...seeded, [keys.key(0, 1)]: vhost("owner") });
    await engineDelete(adopted.id, adopted.outs);
  });

  it("update and delete leave a key alone that someone re-mapped to another vhost since (no refresh in between)", async () => {
    const keys = await keySpace(parameter, 1, 3);
    const [k0, k1, k2] = [keys.key(0, 0), keys.key(0, 1), keys.key(0, 2)];
    touch(parameter, [k0, k1, k2]);
    const seeded = { ...((await readObject(parameter)) ?? {}) };
    const created = await engineCreate(propsFor(parameter, { [k0]: vhost("a"), [k1]: vhost("a"), [k2]: vhost("a") }));
    // Another owner takes k1 and k2 over by hand.
    await writeObject(parameter, { ...seeded, [k0]: vhost("a"), [k1]: vhost("other1"), [k2]: vhost("other2") });

    // The stack drops k1 and k2 from its config: they are no longer its values, so they stay.
    const outs = await engineUpdate(created.id, created.outs, propsFor(parameter, { [k0]: vhost("a") }));
    expect(await readObject(parameter)).toEqual({ ...seeded, [k0]: vhost("a"), [k1]: vhost("other1"), [k2]: vhost("other2") });

    // k0 re-mapped too; deleting the stack removes nothing that is not its own.
    await writeObject(parameter, { ...seeded, [k0]: vhost("other0"), [k1]: vhost("other1"), [k2]: vhost("other2") });
    await engineDelete(created.id, outs);
    expect(await readObject(parameter)).toEqual({ ...seeded, [k0]: vhost("other0"), [k1]: vhost("other1"), [k2]: vhost("other2") });
    expect(await lockQueueExists(parameter)).toBe(false);
  });

  it("refresh shows drift (changed and removed entries) and the next update restores exactly the stack's entries", async () => {
    const keys = await keySpace(parameter, 2, 3);
    const [k0, k1, k2] = [keys.key(0, 0), keys.key(0, 1), keys.key(0, 2)];
    touch(parameter, [k0, k1, k2]);
    const seeded = await seedForeign(parameter, { [keys.key(1, 0)]: "other-tenant" });
    const desired = propsFor(parameter, { [k0]: vhost("a"), [k1]: vhost("a"), [k2]: vhost("b") });
    const created = await engineCreate(desired);
    const full = { ...seeded, [k0]: vhost("a"), [k1]: vhost("a"), [k2]: vhost("b") };
    expect(await readObject(parameter)).toEqual(full);

    // Someone edits the object behind Pulumi's back: k0 moves to another vhost, k1 disappears.
    const drifted: Record<string, unknown> = { ...full, [k0]: vhost("elsewhere") };
    delete drifted[k1];
    await writeObject(parameter, drifted);

    const refreshed = await engineRead(created.id, created.outs);
    expect(refreshed.entries).toEqual({ [k0]: vhost("elsewhere"), [k2]: vhost("b") });
    expect(refreshed.parameter).toBe(parameter);
    expect(refreshed.connection).toEqual(connection);
    expect(await engineDiff(created.id, refreshed, desired)).toMatchObject({ changes: true, replaces: [] });

    const restored = await engineUpdate(created.id, refreshed, desired);
    expect(restored.entries).toEqual(desired.entries);
    expect(await readObject(parameter)).toEqual(full);
    expect((await engineRead(created.id, restored)).entries).toEqual(desired.entries);

    // The whole parameter deleted by hand: refresh shows no entries, update writes them back.
    await apiOk("DELETE", `global-parameters/${parameter}`);
    const gone = await engineRead(created.id, restored);
    expect(gone.entries).toEqual({});
    expect((await engineDiff(created.id, gone, desired)).changes).toBe(true);
    await engineUpdate(created.id, gone, desired);
    expect(await readObject(parameter)).toEqual(desired.entries);
    // Put back what other files had (the seeded foreign key goes with afterEach).
    await writeObject(parameter, full);
    await engineDelete(created.id, desired);
    expect(await readObject(parameter)).toEqual(seeded);
  });
});

describe("other stacks' keys are written back exactly as read", () => {
  // Such entries are broken config, but they are not this stack's to remove.
  it("a create leaves other keys alone even when their values are not strings", async () => {
    const parameter: MqttMappingParameter = "mqtt_default_vhosts";
    const mine = `CN=${scope.tag}-mine`;
    touch(parameter, [mine]);
    const seeded = await seedForeign(parameter, { [`CN=${scope.tag}-number`]: 5, [`CN=${scope.tag}-object`]: { vhost: "x" } });
    // afterEach removes every touched key, whether or not this assertion holds.
    await engineCreate(propsFor(parameter, { [mine]: vhost("a") }));
    expect(await readObject(parameter)).toEqual({ ...seeded, [mine]: vhost("a") });
  });
});

describe("the listener check (port mappings)", () => {
  const parameter: MqttMappingParameter = "mqtt_port_to_vhost_mapping";

  it.each([
    ["the Web MQTT listener", () => broker.webMqttPort],
    ["the AMQP listener", () => broker.amqpPort],
    ["a port nobody listens on", () => 1],
  ])("refuses %s, writing nothing", async (_label, port) => {
    const before = await readObject(parameter);
    const props: MqttVhostMappingProps = { connection, parameter, entries: { [String(port())]: vhost("a") } };
    await expect(provider.create(props)).rejects.toThrow(new RegExp(`no MQTT listener on port ${port()}`));
    expect(await readObject(parameter)).toEqual(before);
  });

  it("accepts a port with an MQTT listener", async () => {
    // The broker's main MQTT port: no other test file maps it (tenant stacks use the spare listener).
    const key = String(broker.mqttPort);
    touch(parameter, [key]);
    const created = await engineCreate({ connection, parameter, entries: { [key]: vhost("a") } });
    expect((await readObject(parameter))?.[key]).toBe(vhost("a"));
    await engineDelete(created.id, created.outs);
  });
});

describe("the broker-side lock", () => {
  const parameter: MqttMappingParameter = "mqtt_default_vhosts";

  it("the broker refuses to redeclare a queue with another x-max-length (the lock's mutual exclusion depends on it)", async () => {
    const name = `${scope.tag}-equivalence-probe`;
    const queue = `queues/%2F/${name}`;
    try {
      const first = await api("PUT", queue, { durable: true, auto_delete: false, arguments: { "x-max-length": 111, "x-expires": 30_000 } });
      expect(first.status).toBe(201);
      const same = await api("PUT", queue, { durable: true, auto_delete: false, arguments: { "x-max-length": 111, "x-expires": 30_000 } });
      expect(same.status).toBe(204);
      const other = await api("PUT", queue, { durable: true, auto_delete: false, arguments: { "x-max-length": 222, "x-expires": 30_000 } });
      if (other.status !== 400 && other.status !== 406) {
        console.error(
          `!!! RabbitMQ ${broker.version} ACCEPTED an inequivalent x-max-length redeclare (status ${other.status}): ` +
            "the MqttVhostMapping lock does NOT exclude a second holder on this broker !!!",
        );
      }
      expect([400, 406], `RabbitMQ ${broker.version} must reject an inequivalent x-max-length redeclare`).toContain(other.status);
      expect(JSON.stringify(other.body)).toMatch(/inequivalent arg 'x-max-length'/);
      const after = await apiOk("GET", queue);
      expect((after.body as { arguments: Record<string, unknown> }).arguments["x-max-length"]).toBe(111);
    } finally {
      await api("DELETE", queue);
    }
  });

  it("a create waits while another holder's lock queue exists, then proceeds once it is deleted", async () => {
    const keys = await keySpace(parameter, 1, 2);
    const entries = { [keys.key(0, 0)]: vhost("a"), [keys.key(0, 1)]: vhost("a") };
    touch(parameter, Object.keys(entries));
    const seeded = await seedForeign(parameter, { [`CN=${scope.tag}-sentinel`]: "other-tenant" });

    scope.foreignLocks.push(parameter);
    expect(
      (
        await api("PUT", lockQueuePath(parameter), {
          durable: true,
          auto_delete: false,
          arguments: { "x-max-length": FOREIGN_TOKEN, "x-expires": 30_000 },
        })
      ).status,
    ).toBe(201);

    let settled = false;
    const started = Date.now();
    const create = engineCreate(propsFor(parameter, entries)).finally(() => {
      settled = true;
    });
    scope.pending.push(create);
    await sleep(1200);
    expect(settled).toBe(false);
    expect(await readObject(parameter)).toEqual(seeded);
    // The waiter did not take over or remove the foreign lock.
    const lock = await apiOk("GET", lockQueuePath(parameter));
    expect((lock.body as { arguments: Record<string, unknown> }).arguments["x-max-length"]).toBe(FOREIGN_TOKEN);

    const released = Date.now();
    await apiOk("DELETE", lockQueuePath(parameter));
    await create;
    console.log(`[lock] create waited ${released - started} ms behind the foreign lock, finished ${Date.now() - released} ms after its release`);
    expect(await readObject(parameter)).toEqual({ ...seeded, ...entries });
    expect(await lockQueueExists(parameter)).toBe(false);
  });

  it("a lock whose holder died expires by itself (x-expires), although waiters keep trying to declare it", async () => {
    const keys = await keySpace(parameter, 1, 1);
    const entries = { [keys.key(0, 0)]: vhost("a") };
    touch(parameter, Object.keys(entries));
    const leaseMs = 3000;
    scope.foreignLocks.push(parameter);
    await apiOk("PUT", lockQueuePath(parameter), {
      durable: true,
      auto_delete: false,
      arguments: { "x-max-length": FOREIGN_TOKEN, "x-expires": leaseMs },
    });
    const started = Date.now();
    const create = engineCreate(propsFor(parameter, entries));
    scope.pending.push(create);
    const outcome = await Promise.race([create.then(() => "done" as const), sleep(30_000).then(() => "stuck" as const)]);
    const waited = Date.now() - started;
    expect(outcome, "the dead holder's lock never expired: failed redeclares by waiters keep extending its lease").toBe("done");
    console.log(`[lock] create proceeded ${waited} ms after a dead holder's lock (x-expires ${leaseMs} ms) was taken`);
    expect(waited).toBeGreaterThanOrEqual(leaseMs - 500);
    expect(checkMapping(entries, await readObject(parameter), Object.keys(entries))).toEqual({ missing: [], wrong: [], unexpected: [] });
    expect(await lockQueueExists(parameter)).toBe(false);
  });
});

describe("many stacks changing their entries at the same moment", () => {
  it("in one process: 30 creates, then 30 updates, then 15 deletes with 15 updates, all at once, lose nothing", async () => {
    const parameter: MqttMappingParameter = "mqtt_default_vhosts";
    const N = 30;
    const keys = await keySpace(parameter, N, 3);
    const universe = Array.from({ length: N }, (_, i) => [0, 1, 2].map((j) => keys.key(i, j))).flat();
    touch(parameter, universe);
    const sentinelKey = `CN=${scope.tag}-sentinel`;
    const seeded = await seedForeign(parameter, { [sentinelKey]: "other-tenant" });

    // What stack i wants after each wave (undefined: the stack was deleted).
    const wants = (i: number, wave: 1 | 2 | 3): Record<string, string> | undefined => {
      const [k0, k1, k2] = [keys.key(i, 0), keys.key(i, 1), keys.key(i, 2)];
      if (wave === 1) return { [k0]: vhost(`t${i}`), [k1]: vhost(`t${i}`) };
      if (wave === 2) return { [k0]: vhost(`t${i}`, "b"), [k1]: vhost(`t${i}`), [k2]: vhost(`t${i}`) };
      return i < N / 2 ? undefined : { [k0]: vhost(`t${i}`, "b"), [k2]: vhost(`t${i}`, "c") };
    };
    // The expected object: what was there, plus every live stack's entries.
    const expectedAfter = (wave: 1 | 2 | 3): Record<string, string> => {
      const out: Record<string, string> = {};
      for (let i = 0; i < N; i++) Object.assign(out, wants(i, wave) ?? {});
      return out;
    };
    const verify = async (wave: 1 | 2 | 3, ms: number): Promise<void> => {
      const actual = await readObject(parameter);
      const report = checkMapping(expectedAfter(wave), actual, universe);
      console.log(
        `[concurrency, in-process] wave ${wave}: ${ms} ms; missing ${report.missing.length}, wrong ${report.wrong.length}, unexpected ${report.unexpected.length}`,
      );
      expect(report).toEqual({ missing: [], wrong: [], unexpected: [] });
      // Nothing else in the object changed either.
      expect(actual).toEqual({ ...seeded, ...expectedAfter(wave) });
      expect(await lockQueueExists(parameter)).toBe(false);
    };
    const allOk = async (ops: Promise<unknown>[]): Promise<void> => {
      const results = await Promise.allSettled(ops);
      const failures = results.flatMap((r, i) => (r.status === "rejected" ? [`#${i}: ${(r.reason as Error).message}`] : []));
      expect(failures).toEqual([]);
    };

    let t = Date.now();
    const stacks: Created[] = new Array<Created>(N);
    await allOk(
      Array.from({ length: N }, async (_, i) => {
        stacks[i] = await engineCreate(propsFor(parameter, wants(i, 1) ?? {}));
      }),
    );
    await verify(1, Date.now() - t);

    t = Date.now();
    const outs2: MqttVhostMappingProps[] = new Array<MqttVhostMappingProps>(N);
    await allOk(
      stacks.map(async (s, i) => {
        outs2[i] = await engineUpdate(s.id, s.outs, propsFor(parameter, wants(i, 2) ?? {}));
      }),
    );
    await verify(2, Date.now() - t);

    t = Date.now();
    await allOk(
      stacks.map(async (s, i) => {
        const olds = outs2[i];
        if (olds === undefined) throw new Error(`stack ${i} has no state`);
        const next = wants(i, 3);
        if (next === undefined) await engineDelete(s.id, olds);
        else await engineUpdate(s.id, olds, propsFor(parameter, next));
      }),
    );
    await verify(3, Date.now() - t);
  });

  it("control: 30 naive read-modify-write writers without the lock (logs what they lost; asserts only the detector)", async () => {
    // A scratch parameter: this control never touches the real mappings.
    const parameter = `${scope.tag}_naive_control`;
    scope.scratch.push(parameter);
    await writeObject(parameter, { sentinel: "other-tenant" });
    const N = 30;
    const expected: Record<string, string> = { sentinel: "other-tenant" };
    const writer = async (i: number): Promise<void> => {
      const mine = { [`k${i}-0`]: `t${i}`, [`k${i}-1`]: `t${i}` };
      Object.assign(expected, mine);
      const current = (await readObject(parameter)) ?? {};
      await writeObject(parameter, { ...current, ...mine });
    };
    await Promise.all(Array.from({ length: N }, (_, i) => writer(i)));
    const actual = await readObject(parameter);
    const report = checkMapping(expected, actual, Object.keys(expected));
    console.log(
      `[concurrency, control] ${N} unlocked writers: ${report.missing.length} of ${2 * N} entries lost` +
        (report.missing.length > 0 ? ` (e.g. ${report.missing.slice(0, 4).join(", ")})` : " (no race this time)"),
    );
    // The detector's report agrees with an independent count of what is absent.
    const absent = Object.keys(expected).filter((k) => actual?.[k] === undefined);
    expect(report.missing).toEqual(absent.sort());
    expect(report.wrong).toEqual([]);
  });

  it("across processes: 8 workers load the provider from its serialized closure and create, then update, at once; nothing is lost", async () => {
    const parameter: MqttMappingParameter = "mqtt_port_to_vhost_mapping";
    const W = 8;
    const keys = await keySpace(parameter, W, 3);
    const universe = Array.from({ length: W }, (_, i) => [0, 1, 2].map((j) => keys.key(i, j))).flat();
    touch(parameter, universe);
    const sentinel = await keySpace(parameter, 1, 1);
    const seeded = await seedForeign(parameter, { [sentinel.key(0, 0)]: "other-tenant" });
    touch(parameter, [sentinel.key(0, 0)]);

    const wants1 = (i: number): Record<string, string> => ({ [keys.key(i, 0)]: vhost(`w${i}`), [keys.key(i, 1)]: vhost(`w${i}`) });
    const wants2 = (i: number): Record<string, string> => ({
      [keys.key(i, 0)]: vhost(`w${i}`, "b"),
      [keys.key(i, 1)]: vhost(`w${i}`),
      [keys.key(i, 2)]: vhost(`w${i}`),
    });
    const union = (f: (i: number) => Record<string, string>): Record<string, string> =>
      Object.assign({}, ...Array.from({ length: W }, (_, i) => f(i))) as Record<string, string>;

    // Wave 1: creates, started together (each worker waits for the same start time).
    const wave1 = await runWorkers(Array.from({ length: W }, (_, i): WorkerInput => ({ op: "create", props: propsFor(parameter, wants1(i)) })));
    const results1 = await Promise.all(wave1.map((w) => w.result));
    logWave("create", results1);
    expect(results1.map((r) => r.error ?? "ok")).toEqual(results1.map(() => "ok"));
    expect(results1.every((r) => r.closureSelfContained)).toBe(true);
    const after1 = await readObject(parameter);
    expect(checkMapping(union(wants1), after1, universe)).toEqual({ missing: [], wrong: [], unexpected: [] });
    expect(after1).toEqual({ ...seeded, ...union(wants1) });
    expect(await lockQueueExists(parameter)).toBe(false);

    // Wave 2: updates that all start while a foreign lock is held, so all of them contend for it
    // the moment it goes away.
    scope.foreignLocks.push(parameter);
    await apiOk("PUT", lockQueuePath(parameter), {
      durable: true,
      auto_delete: false,
      arguments: { "x-max-length": FOREIGN_TOKEN, "x-expires": 60_000 },
    });
    const wave2 = await runWorkers(
      results1.map((r, i): WorkerInput => ({
        op: "update",
        id: r.id ?? "",
        olds: propsFor(parameter, wants1(i)),
        news: propsFor(parameter, wants2(i)),
      })),
    );
    await Promise.all(wave2.map((w) => w.started));
    await sleep(1000);
    expect(wave2.filter((w) => w.finished()).length, "no update may finish while the foreign lock is held").toBe(0);
    expect(await readObject(parameter)).toEqual({ ...seeded, ...union(wants1) });
    await apiOk("DELETE", lockQueuePath(parameter));
    const results2 = await Promise.all(wave2.map((w) => w.result));
    logWave("update", results2);
    expect(results2.map((r) => r.error ?? "ok")).toEqual(results2.map(() => "ok"));
    const after2 = await readObject(parameter);
    expect(checkMapping(union(wants2), after2, universe)).toEqual({ missing: [], wrong: [], unexpected: [] });
    expect(after2).toEqual({ ...seeded, ...union(wants2) });
    expect(await lockQueueExists(parameter)).toBe(false);

    // Clean up through the provider too: concurrent deletes leave exactly what was there.
    await Promise.all(results1.map((r, i) => engineDelete(r.id ?? "", propsFor(parameter, wants2(i)))));
    expect(await readObject(parameter)).toEqual(seeded);
  });
});

// ---------------------------------------------------------------------------------------------
// Worker processes (tests/support/mapping-worker.ts)

interface RunningWorker {
  readonly started: Promise<number>;
  readonly result: Promise<WorkerResult>;
  finished(): boolean;
}

function logWave(what: string, results: readonly WorkerResult[]): void {
  const starts = results.map((r) => r.startedAt);
  const ends = results.map((r) => r.finishedAt);
  const first = Math.min(...starts);
  console.log(
    `[concurrency, processes] ${results.length} ${what}s: starts spread over ${Math.max(...starts) - first} ms, ` +
      `first done after ${Math.min(...ends) - first} ms, last after ${Math.max(...ends) - first} ms`,
  );
}

/** Spawns one worker per input, waits until all are READY, then tells all to start at the same time. */
async function runWorkers(inputs: readonly WorkerInput[]): Promise<RunningWorker[]> {
  const children: { child: ChildProcessWithoutNullStreams; ready: Promise<void>; worker: RunningWorker }[] = [];
  for (const input of inputs) {
    const child = spawn(TSX, [WORKER], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    let done = false;
    let onReady: () => void = () => undefined;
    let onStarted: (at: number) => void = () => undefined;
    let onResult: (r: WorkerResult) => void = () => undefined;
    const ready = new Promise<void>((r) => (onReady = r));
    const started = new Promise<number>((r) => (onStarted = r));
    const exited = new Promise<never>((_, reject) => {
      child.on("exit", (code, signal) => {
        if (!done) reject(new Error(`mapping worker exited (code ${code}, signal ${signal}) without a result:\n${stderr}`));
      });
    });
    const result = Promise.race([new Promise<WorkerResult>((r) => (onResult = r)), exited]);
    // Whoever awaits `ready`/`started` also awaits `result`, which carries the exit error.
    void exited.catch(() => undefined);
    const rl = readline.createInterface({ input: child.stdout });
    rl.on("line", (line) => {
      if (line === "READY") onReady();
      else if (line.startsWith("STARTED ")) onStarted((JSON.parse(line.slice(8)) as { at: number }).at);
      else if (line.startsWith("RESULT ")) {
        done = true;
        onResult(JSON.parse(line.slice(7)) as WorkerResult);
      }
    });
    // The input (with the admin password) goes over stdin, not argv, which other users can read.
    child.stdin.write(`INPUT ${JSON.stringify(input)}\n`);
    children.push({ child, ready: Promise.race([ready, exited]), worker: { started: Promise.race([started, exited]), result, finished: () => done } });
  }
  await Promise.all(children.map((c) => c.ready));
  const goAt = Date.now() + 300;
  for (const c of children) c.child.stdin.end(`GO ${goAt}\n`);
  return children.map((c) => c.worker);
}
