/**
 * The bulk path device fleets are built on, on a real broker of each release: a class's template
 * rendered per device (core/fleet-template.ts), the devices' pre-hashed passwords
 * (hashDevicePassword) and their permissions put in place by one definitions import, then real
 * MQTT logins. Proves the hash format and the import's shape on 3.10, 4.0 and 4.3; the fleet
 * resource that will drive it is not built yet (see README, "Device fleets").
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { managementCall } from "../../components/management/api";
import { renderDevice } from "../../core/fleet-template";
import { compileFleetClass, hashDevicePassword } from "../../core/fleets";
import { fleetSchema } from "../../core/tenant-config";
import type { ConfigIssue } from "../../core/errors";
import { endQuietly, mqttConnect, trySubscribe, tryPublish } from "../support/clients";

const broker = inject("broker");
const conn = { managementUrl: broker.managementUrl, username: broker.adminUsername, password: broker.adminPassword };
const VHOST = "fleet-import";
const COUNT = 1000;
const names = Array.from({ length: COUNT }, (_, i) => `dev-${i}`);
const password = (n: string) => `pw-${n}-0123456789abcdef`;
const issues: ConfigIssue[] = [];
const cls = compileFleetClass(
  VHOST,
  fleetSchema.parse({ name: "sensors", role: "b2b", registry: "fleets/sensors.jsonl", grants: { publish: ["telemetry/{device}/+"], subscribe: ["client/{device}/#"] } }),
  "tenant.fleets[0]",
  issues,
);

beforeAll(async () => {
  if (cls === undefined) throw new Error(JSON.stringify(issues));
  await managementCall(conn, "PUT", `vhosts/${VHOST}`, {});
  const devices = names.map((n) => renderDevice(cls.template, n, undefined));
  const started = Date.now();
  await managementCall(conn, "POST", "definitions", {
    users: devices.map((d, i) => ({ name: d.username, password_hash: hashDevicePassword(password(names[i]!)), hashing_algorithm: "rabbit_password_hashing_sha256", tags: [] })),
    permissions: devices.map((d) => ({ user: d.username, vhost: VHOST, configure: d.configure, write: d.write, read: d.read })),
    topic_permissions: devices.map((d) => ({ user: d.username, vhost: VHOST, exchange: d.exchange, write: d.topicWrite, read: d.topicRead })),
  });
  console.log(`[fleet-import] RabbitMQ ${broker.version}: ${COUNT} devices imported in one call, ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, 180_000);

afterAll(async () => {
  await managementCall(conn, "POST", "users/bulk-delete", { users: names.map((n) => `${n}@${VHOST}`) });
  await managementCall(conn, "DELETE", `vhosts/${VHOST}`, undefined, [200, 204, 404]);
});

const login = (n: string, pw = password(n)) => ({ port: broker.mqttPort, username: `${VHOST}:${n}@${VHOST}`, password: pw, clientId: n });

describe(`a fleet's devices from one definitions import (RabbitMQ ${broker.version})`, () => {
  it("every imported user has its permissions and topic permissions", async () => {
    const users = (await managementCall(conn, "GET", "users?columns=name")).body as { name: string }[];
    expect(users.filter((u) => u.name.endsWith(`@${VHOST}`))).toHaveLength(COUNT);
    const perms = (await managementCall(conn, "GET", `vhosts/${VHOST}/permissions`)).body as { user: string }[];
    expect(perms.filter((p) => p.user.endsWith(`@${VHOST}`))).toHaveLength(COUNT);
    const tp = (await managementCall(conn, "GET", `vhosts/${VHOST}/topic-permissions`)).body as unknown[];
    expect(tp).toHaveLength(COUNT);
  });

  it("a device logs in with the password whose hash was imported, and not with another device's", async () => {
    const ok = await mqttConnect(login("dev-7"));
    expect(ok.ok).toBe(true);
    if (ok.ok) await endQuietly(ok.client);
    const wrong = await mqttConnect(login("dev-7", password("dev-8")));
    if (wrong.ok) await endQuietly(wrong.client);
    expect(wrong.ok).toBe(false);
  });

  it("a device subscribes and publishes only within its own rendered grants", async () => {
    const c = await mqttConnect(login("dev-1"));
    if (!c.ok) throw new Error(c.reason);
    expect((await trySubscribe(c.client, "client/dev-1/#", 1)).outcome).toBe("granted");
    await endQuietly(c.client);
    const d = await mqttConnect(login("dev-1"));
    if (!d.ok) throw new Error(d.reason);
    expect((await trySubscribe(d.client, "client/dev-10/#", 1)).outcome).not.toBe("granted");
    await endQuietly(d.client);
    const p = await mqttConnect(login("dev-1"));
    if (!p.ok) throw new Error(p.reason);
    expect(await tryPublish(p.client, "telemetry/dev-1/temp", "21", 1)).toBe("acked");
    expect(await tryPublish(p.client, "telemetry/dev-10/temp", "21", 1)).not.toBe("acked");
    await endQuietly(p.client);
  });
});
