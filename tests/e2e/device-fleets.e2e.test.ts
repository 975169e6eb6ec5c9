/**
 * Device fleets end to end on a real broker of each release: a tenant stack with two fleets (a
 * 10,000-device c2b fleet whose devices act for a home each, and a small b2b sensor fleet), their
 * members in registry files, applied by the stack program under BrokerMocks (DeviceFleet's
 * provider runs as the engine would run it). Then real MQTT clients: a sample of 500 devices at
 * once, each within exactly its own topics; no device reaches another device's, fleet's or
 * tenant's topics; a removed device is refused and its live connection closed; a hostile registry
 * line is refused before anything is applied, naming file and line.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { managementCall } from "../../components/management/api";
import { hashDevicePassword } from "../../core/fleets";
import { ROOT, applyStack } from "../support/apply-stack";
import { endQuietly, mqttConnect, sleep, tryPublish, trySubscribe, waitFor, type ConnectOutcome } from "../support/clients";
import type { StackRunResult } from "../support/run-stack";

const broker = inject("broker");
const conn = { managementUrl: broker.managementUrl, username: broker.adminUsername, password: broker.adminPassword };
const TENANT = "fleetco";
const FLEET_SIZE = Number(process.env["FLEET_SIZE"] ?? 10_000);
const SAMPLE = 500;
/** This suite's own registry files (suites of several releases share the checkout). */
const DIR = `.e2e-artifacts/fleets/${broker.version}-${process.pid}`;

const thermostat = (i: number) => `t-${String(i).padStart(6, "0")}`;
const home = (i: number) => `home-${i}`;
const sensor = (i: number) => `s-${i}`;
const password = (name: string) => `pw-${name}-${process.pid}-fleet`;

function writeRegistry(file: string, lines: string[]): string {
  const rel = `${DIR}/${file}`;
  writeFileSync(path.join(ROOT, rel), `${lines.join("\n")}\n`);
  return rel;
}

function thermostatLines(indexes: number[]): string[] {
  return indexes.map((i) => JSON.stringify({ name: thermostat(i), user: home(i), passwordHash: hashDevicePassword(password(thermostat(i))) }));
}

function config(fleets: unknown[], name = TENANT): Record<string, unknown> {
  return {
    tenant: {
      name,
      protect: false,
      identities: [{ name: "backend", kind: "service", role: "b2b", grants: { subscribe: ["#"], publish: ["client/#"] } }],
      fleets,
    },
    broker: { managementUrl: broker.managementUrl, username: broker.adminUsername },
    brokerPassword: broker.adminPassword,
  };
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
let thermostatsRegistry = "";
/** The registry's lines as first written (a hash has a random salt: writing it again changes every device). */
let lines: string[] = [];
let sensorsRegistry = "";
const fleetsOf = (thermostats: string) => [
  { name: "thermostats", role: "c2b", registry: thermostats, limits: { maxConnections: 2 } },
  { name: "sensors", role: "b2b", registry: sensorsRegistry, grants: { publish: ["telemetry/{device}/+"], subscribe: ["client/{device}/#"] } },
];

let first: StackRunResult;
let applySeconds = 0;

beforeAll(async () => {
  mkdirSync(path.join(ROOT, DIR), { recursive: true });
  lines = thermostatLines(range(0, FLEET_SIZE));
  thermostatsRegistry = writeRegistry("thermostats.jsonl", lines);
  sensorsRegistry = writeRegistry("sensors.jsonl", range(0, 50).map((i) => JSON.stringify({ name: sensor(i), passwordHash: hashDevicePassword(password(sensor(i))) })));
  const started = Date.now();
  first = await applyStack("fleetco", config(fleetsOf(thermostatsRegistry)));
  applySeconds = (Date.now() - started) / 1000;
  console.log(`[fleets] RabbitMQ ${broker.version}: tenant with ${FLEET_SIZE} + 50 devices applied in ${applySeconds.toFixed(1)} s (${first.registered.length} resources)`);
}, 300_000);

afterAll(() => {
  rmSync(path.join(ROOT, DIR), { recursive: true, force: true });
});

const login = (name: string, vhost = TENANT) => ({ port: broker.mqttPort, username: `${vhost}:${name}@${TENANT}`, password: password(name), clientId: name, connectTimeoutMs: 30_000 });

async function connected(name: string): Promise<Extract<ConnectOutcome, { ok: true }>> {
  const c = await mqttConnect(login(name));
  if (!c.ok) throw new Error(`${name}: ${c.reason}`);
  return c;
}

describe(`device fleets (RabbitMQ ${broker.version})`, () => {
  it(`applies ${FLEET_SIZE} devices as one resource per fleet, credentials secret, one broker user per device`, async () => {
    const fleets = first.registered.filter((r) => r.type.endsWith("DeviceFleet"));
    expect(fleets.map((r) => r.name).sort()).toEqual(["fleetco-fleet-sensors", "fleetco-fleet-thermostats"]);
    for (const f of fleets) expect(f.secretInputs).toEqual(expect.arrayContaining(["connection", "credentials"]));
    // The tenant's other resources are those of its one identity: nothing per device.
    expect(first.registered.filter((r) => r.type === "rabbitmq:index/user:User")).toHaveLength(1);
    const users = (await managementCall(conn, "GET", "users?columns=name")).body as { name: string }[];
    expect(users.filter((u) => /^t-\d{6}@fleetco$/.test(u.name))).toHaveLength(FLEET_SIZE);
    expect(users.filter((u) => /^s-\d+@fleetco$/.test(u.name))).toHaveLength(50);
    const limits = (await managementCall(conn, "GET", `user-limits/${encodeURIComponent(`${thermostat(17)}@${TENANT}`)}`)).body;
    expect(limits).toEqual([{ user: `${thermostat(17)}@${TENANT}`, value: { "max-connections": 2 } }]);
  });

  it(`${SAMPLE} devices connect at once and each subscribes and publishes within its own topics`, async () => {
    const step = Math.floor(FLEET_SIZE / SAMPLE);
    const sample = range(0, SAMPLE).map((k) => k * step);
    const started = Date.now();
    const clients = await Promise.all(sample.map((i) => mqttConnect(login(thermostat(i)))));
    const refused = clients.flatMap((c, k) => (c.ok ? [] : [`${thermostat(sample[k]!)}: ${c.reason}`]));
    console.log(`[fleets] RabbitMQ ${broker.version}: ${SAMPLE} devices connected at once in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    try {
      expect(refused).toEqual([]);
      const outcomes = await Promise.all(
        clients.map(async (c, k) => {
          if (!c.ok) return "not connected";
          const i = sample[k]!;
          const sub = await trySubscribe(c.client, `client/${thermostat(i)}/#`, 1, 20_000);
          const pub = await tryPublish(c.client, `activity/${home(i)}/telemetry`, "21.5", 1, 20_000);
          return sub.outcome === "granted" && pub === "acked" ? "ok" : `${thermostat(i)}: subscribe ${sub.outcome}, publish ${pub}`;
        }),
      );
      expect(outcomes.filter((o) => o !== "ok")).toEqual([]);
    } finally {
      await Promise.all(clients.flatMap((c) => (c.ok ? [endQuietly(c.client)] : [])));
    }
  }, 180_000);

  it("no device reaches another device's, another fleet's or another tenant's topics", async () => {
    const rows: string[] = [];
    const check = async (name: string, what: string, act: (c: Extract<ConnectOutcome, { ok: true }>) => Promise<boolean>) => {
      const c = await connected(name);
      if (await act(c)) rows.push(`${name} could ${what}`);
      await endQuietly(c.client);
    };
    for (const i of [1, 2, FLEET_SIZE - 1]) {
      const other = (i + 1) % FLEET_SIZE;
      await check(thermostat(i), `subscribe to ${thermostat(other)}'s topics`, async (c) => (await trySubscribe(c.client, `client/${thermostat(other)}/#`)).outcome === "granted");
      await check(thermostat(i), `publish as ${home(other)}`, async (c) => (await tryPublish(c.client, `activity/${home(other)}/telemetry`, "x", 1)) === "acked");
      await check(thermostat(i), "subscribe to a sensor's topics", async (c) => (await trySubscribe(c.client, `client/${sensor(3)}/#`)).outcome === "granted");
      await check(sensor(i % 50), `subscribe to ${thermostat(i)}'s topics`, async (c) => (await trySubscribe(c.client, `client/${thermostat(i)}/#`)).outcome === "granted");
      await check(sensor(i % 50), `publish as ${sensor((i + 1) % 50)}`, async (c) => (await tryPublish(c.client, `telemetry/${sensor((i + 1) % 50)}/t`, "x", 1)) === "acked");
    }
    expect(rows).toEqual([]);
    // Another tenant's vhost: the device has no permissions there, so the login is refused.
    await managementCall(conn, "PUT", "vhosts/fleetco-other", {});
    try {
      const c = await mqttConnect(login(thermostat(5), "fleetco-other"));
      if (c.ok) await endQuietly(c.client);
      expect(c.ok).toBe(false);
    } finally {
      await managementCall(conn, "DELETE", "vhosts/fleetco-other", undefined, [200, 204, 404]);
    }
  }, 120_000);

  let second: StackRunResult;
  it("re-applies with no change without touching the fleet", async () => {
    const started = Date.now();
    second = await applyStack("fleetco", config(fleetsOf(thermostatsRegistry)), {}, first);
    const seconds = (Date.now() - started) / 1000;
    console.log(`[fleets] RabbitMQ ${broker.version}: re-apply with no change in ${seconds.toFixed(1)} s`);
    const a = first.registered.find((r) => r.name === "fleetco-fleet-thermostats");
    const b = second.registered.find((r) => r.name === "fleetco-fleet-thermostats");
    expect(b?.id).toBe(a?.id);
  }, 300_000);

  it("removing a device closes its live connection and refuses it; an added device logs in; the others keep their sessions", async () => {
    const victim = await connected(thermostat(3));
    const bystander = await connected(thermostat(4));
    let victimClosed = false;
    let bystanderClosed = false;
    victim.client.on("close", () => (victimClosed = true));
    bystander.client.on("close", () => (bystanderClosed = true));
    const registry = writeRegistry("thermostats-2.jsonl", [...lines.filter((_, i) => i !== 3), ...thermostatLines([FLEET_SIZE])]);
    const started = Date.now();
    const third = await applyStack("fleetco", config(fleetsOf(registry)), {}, second);
    console.log(`[fleets] RabbitMQ ${broker.version}: one device removed and one added in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    try {
      expect(await waitFor(() => victimClosed, 10_000)).toBe(true);
      await sleep(500);
      expect(bystanderClosed).toBe(false);
      const again = await mqttConnect(login(thermostat(3)));
      if (again.ok) await endQuietly(again.client);
      expect(again.ok).toBe(false);
      const added = await connected(thermostat(FLEET_SIZE));
      expect((await trySubscribe(added.client, `client/${thermostat(FLEET_SIZE)}/#`)).outcome).toBe("granted");
      await endQuietly(added.client);
      expect((await managementCall(conn, "GET", `users/${encodeURIComponent(`${thermostat(3)}@${TENANT}`)}`, undefined, [404])).status).toBe(404);
    } finally {
      await endQuietly(bystander.client);
      await endQuietly(victim.client);
    }

    // Removing the fleets removes every device's user.
    await applyStack("fleetco", config([]), {}, third);
    const users = (await managementCall(conn, "GET", "users?columns=name")).body as { name: string }[];
    expect(users.filter((u) => /^[ts]-\d+@fleetco$/.test(u.name))).toEqual([]);
  }, 300_000);

  it("refuses a registry line with a hostile name or user before anything is applied, naming file and line", async () => {
    for (const [bad, field] of [
      [{ name: "a.*", passwordHash: hashDevicePassword("x") }, "name"],
      [{ name: "t-x", user: "#", passwordHash: hashDevicePassword("x") }, "user"],
    ] as const) {
      const registry = writeRegistry("hostile.jsonl", [...thermostatLines([0, 1]), JSON.stringify(bad)]);
      const err = await applyStack("fleetbad", config([{ name: "thermostats", role: "c2b", registry }], "fleetbad")).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toContain(`${registry}:3 ${field}`);
    }
    expect((await managementCall(conn, "GET", "vhosts/fleetbad", undefined, [404])).status).toBe(404);
  }, 120_000);
});
