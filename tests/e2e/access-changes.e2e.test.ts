/**
 * Changing a tenant stack reaches clients that are already connected or hold a saved session.
 *
 * The tenant stack program runs several times against this run's broker, each run after the first
 * given the previous run's registrations, so the hooks update and delete like a second
 * `pulumi up` (tests/support/broker-mocks.ts). Between runs, real MQTT clients check that
 * narrowed grants, a rotated password and a removed identity take effect at once.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { applyStack } from "../support/apply-stack";
import { endQuietly, mqttConnect, sleep, tryPublish, trySubscribe, waitFor, type ReceivedMessage } from "../support/clients";
import { adminApi } from "../support/management";
import type { StackRunResult } from "../support/run-stack";

const broker = inject("broker");
const TENANT = "changes";

interface Identity {
  name: string;
  kind: string;
  role: string;
  user: string;
  grants: { publish: string[]; subscribe: string[] };
}

const initial: Identity[] = [
  { name: "sensor", kind: "device", role: "c2b", user: "u1", grants: { publish: ["activity/{user}/telemetry", "activity/{user}/status"], subscribe: [] } },
  { name: "app", kind: "app", role: "c2b", user: "u1", grants: { publish: [], subscribe: ["client/{identity}/#"] } },
];

function config(identities: Identity[], identityPasswords?: Record<string, string>): Record<string, unknown> {
  return {
    stackType: "tenant",
    broker: { managementUrl: broker.managementUrl, username: broker.adminUsername },
    brokerPassword: broker.adminPassword,
    tenant: { name: TENANT, protect: false, identities },
    ...(identityPasswords ? { identityPasswords } : {}),
  };
}

let last: StackRunResult;
let passwords: Record<string, string>;
const observed: ReceivedMessage[] = [];
let observer: Awaited<ReturnType<typeof mqttConnect>>;

async function up(identities: Identity[], identityPasswords?: Record<string, string>): Promise<void> {
  last = await applyStack(TENANT, config(identities, identityPasswords), {}, last);
  passwords = last.outputs["identityPasswords"] as Record<string, string>;
}

const login = (identity: string, clientId = identity, password = passwords[identity]!) => ({
  port: broker.mqttPort,
  username: `${TENANT}:${identity}@${TENANT}`,
  password,
  clientId,
});

async function adminPublish(topic: string, payload: string): Promise<void> {
  const r = await adminApi(broker, "POST", `exchanges/${TENANT}/amq.topic/publish`, {
    properties: {},
    routing_key: topic.replace(/\//g, "."),
    payload,
    payload_encoding: "string",
  });
  expect(r.status).toBe(200);
}

let seq = 0;
const token = (label: string) => `${label}-${++seq}`;

beforeAll(async () => {
  last = await applyStack(TENANT, config(initial));
  passwords = last.outputs["identityPasswords"] as Record<string, string>;
  await adminApi(broker, "PUT", `permissions/${TENANT}/${encodeURIComponent(broker.adminUsername)}`, { configure: ".*", write: ".*", read: ".*" });
  observer = await mqttConnect({ port: broker.mqttPort, username: `${TENANT}:${broker.adminUsername}`, password: broker.adminPassword, clientId: "observer-changes" });
  if (!observer.ok) throw new Error(observer.reason);
  expect((await trySubscribe(observer.client, "#", 1)).outcome).toBe("granted");
  observer.client.on("message", (topic, payload, packet) => observed.push({ topic, payload: payload.toString(), qos: packet.qos }));
}, 180_000);

afterAll(async () => {
  if (observer.ok) await endQuietly(observer.client);
  await adminApi(broker, "DELETE", `vhosts/${TENANT}`);
  for (const i of initial) await adminApi(broker, "DELETE", `users/${encodeURIComponent(`${i.name}@${TENANT}`)}`);
});

describe("narrowing grants", () => {
  it("closes connected clients, which then have only the new grants, and strips saved sessions of revoked subscriptions", async () => {
    // sensor is connected and publishing to status; app keeps a persistent session on client/app/#.
    const sensor = await mqttConnect(login("sensor"));
    if (!sensor.ok) throw new Error(sensor.reason);
    let sensorClosed = false;
    sensor.client.on("close", () => (sensorClosed = true));
    const before = token("status-before");
    expect(await tryPublish(sensor.client, "activity/u1/status", before, 1)).toBe("acked");
    expect(await waitFor(() => observed.some((m) => m.payload === before), 3000)).toBe(true);

    const app = await mqttConnect({ ...login("app", "app_1"), clean: false });
    if (!app.ok) throw new Error(app.reason);
    expect((await trySubscribe(app.client, "client/app/#", 1)).outcome).toBe("granted");
    await endQuietly(app.client);

    await up([
      { ...initial[0]!, grants: { publish: ["activity/{user}/telemetry"], subscribe: [] } },
      { ...initial[1]!, grants: { publish: [], subscribe: ["client/{identity}/commands"] } },
    ]);

    // The live connection was closed by the update: its cached permission for status is gone.
    expect(await waitFor(() => sensorClosed, 5000)).toBe(true);
    const again = await mqttConnect(login("sensor"));
    if (!again.ok) throw new Error(again.reason);
    const revoked = token("status-after");
    await tryPublish(again.client, "activity/u1/status", revoked, 1);
    await endQuietly(again.client);
    const sensor2 = await mqttConnect(login("sensor"));
    if (!sensor2.ok) throw new Error(sensor2.reason);
    const kept = token("telemetry-after");
    expect(await tryPublish(sensor2.client, "activity/u1/telemetry", kept, 1)).toBe("acked");
    expect(await waitFor(() => observed.some((m) => m.payload === kept), 3000)).toBe(true);
    expect(observed.some((m) => m.payload === revoked)).toBe(false);
    await endQuietly(sensor2.client);

    // The saved session lost the binding the new grants refuse, and keeps the one they allow.
    const bindings = (await adminApi(broker, "GET", `queues/${TENANT}/mqtt-subscription-app_1qos1/bindings`)).body as { source: string; routing_key: string }[];
    expect(bindings.filter((b) => b.source === "amq.topic").map((b) => b.routing_key)).toEqual([]);
    const resumed = await mqttConnect({ ...login("app", "app_1"), clean: false });
    if (!resumed.ok) throw new Error(resumed.reason);
    const secret = token("secret");
    await adminPublish("client/app/secret", secret);
    await sleep(500);
    expect(resumed.messages.some((m) => m.payload === secret)).toBe(false);
    // Subscribing within the narrowed grant still works.
    expect((await trySubscribe(resumed.client, "client/app/commands", 1)).outcome).toBe("granted");
    const command = token("command");
    await adminPublish("client/app/commands", command);
    expect(await waitFor(() => resumed.messages.some((m) => m.payload === command), 3000)).toBe(true);
    await endQuietly(resumed.client);
  });
});

describe("rotating a password", () => {
  it("closes the identity's connections and refuses the old password", async () => {
    const oldPassword = passwords["sensor"]!;
    const live = await mqttConnect(login("sensor"));
    if (!live.ok) throw new Error(live.reason);
    let closed = false;
    live.client.on("close", () => (closed = true));

    const rotated = "rotated-password-0123456789";
    await up(
      [
        { ...initial[0]!, grants: { publish: ["activity/{user}/telemetry"], subscribe: [] } },
        { ...initial[1]!, grants: { publish: [], subscribe: ["client/{identity}/commands"] } },
      ],
      { sensor: rotated },
    );
    expect(passwords["sensor"]).toBe(rotated);
    expect(await waitFor(() => closed, 5000)).toBe(true);
    const withOld = await mqttConnect(login("sensor", "sensor", oldPassword));
    if (withOld.ok) await endQuietly(withOld.client);
    expect(withOld.ok).toBe(false);
    const withNew = await mqttConnect(login("sensor"));
    expect(withNew.ok).toBe(true);
    if (withNew.ok) await endQuietly(withNew.client);
  });
});

describe("removing an identity", () => {
  it("closes its connections and deletes its user and queues, so a same-named successor inherits nothing", async () => {
    const app = await mqttConnect({ ...login("app", "app_2"), clean: false });
    if (!app.ok) throw new Error(app.reason);
    expect((await trySubscribe(app.client, "client/app/commands", 1)).outcome).toBe("granted");
    await endQuietly(app.client);
    const queued = token("queued-for-app");
    await adminPublish("client/app/commands", queued);
    expect((await adminApi(broker, "GET", `queues/${TENANT}/mqtt-subscription-app_2qos1`)).status).toBe(200);
    const live = await mqttConnect(login("app", "app_3"));
    if (!live.ok) throw new Error(live.reason);
    let liveClosed = false;
    live.client.on("close", () => (liveClosed = true));

    await up([{ ...initial[0]!, grants: { publish: ["activity/{user}/telemetry"], subscribe: [] } }], { sensor: "rotated-password-0123456789" });

    expect(await waitFor(() => liveClosed, 5000)).toBe(true);
    expect((await adminApi(broker, "GET", `users/${encodeURIComponent(`app@${TENANT}`)}`)).status).toBe(404);
    for (const q of ["mqtt-subscription-app_1qos1", "mqtt-subscription-app_2qos1"]) {
      expect((await adminApi(broker, "GET", `queues/${TENANT}/${q}`)).status).toBe(404);
    }

    // Re-created under the same name, the identity starts empty.
    await up(initial, { sensor: "rotated-password-0123456789" });
    const successor = await mqttConnect({ ...login("app", "app_2"), clean: false });
    if (!successor.ok) throw new Error(successor.reason);
    expect((await trySubscribe(successor.client, "client/app/#", 1)).outcome).toBe("granted");
    await sleep(500);
    expect(successor.messages.some((m) => m.payload === queued)).toBe(false);
    await endQuietly(successor.client);
  });
});
