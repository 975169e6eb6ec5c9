/**
 * Proves the e2e broker harness (tests/support/broker.ts): the node answers with the random admin
 * credentials, no guest login works on any protocol, anonymous MQTT is refused, and the MQTT
 * plugins are enabled.
 */
import * as amqp from "amqplib";
import { connectAsync, type IClientOptions } from "mqtt";
import { describe, expect, inject, it } from "vitest";

const broker = inject("broker");

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
}

const adminAuth = basic(broker.adminUsername, broker.adminPassword);

function api(pathname: string, authorization: string): Promise<Response> {
  return fetch(`${broker.managementUrl}${pathname}`, {
    headers: { authorization },
    signal: AbortSignal.timeout(10_000),
  });
}

const mqttBase: IClientOptions = {
  host: broker.host,
  port: broker.mqttPort,
  protocolVersion: 4,
  reconnectPeriod: 0,
  connectTimeout: 10_000,
};

describe("e2e broker harness", () => {
  it("provides a consistent broker description", () => {
    expect(broker.host).toBe("127.0.0.1");
    expect(broker.managementUrl).toBe(`http://127.0.0.1:${broker.managementPort}`);
    expect(broker.version.startsWith(`${broker.major}.${broker.minor}.`)).toBe(true);
    const ports = [broker.amqpPort, broker.mqttPort, broker.webMqttPort, broker.managementPort];
    expect(new Set(ports).size).toBe(ports.length);
  });

  it("management API answers GET /api/overview with the admin credentials", async () => {
    const res = await api("/api/overview", adminAuth);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { rabbitmq_version?: unknown; node?: unknown };
    expect(body.rabbitmq_version).toBe(broker.version);
    expect(body.node).toBe(broker.nodeName);
  });

  it("no 'guest' user exists", async () => {
    const res = await api("/api/users/guest", adminAuth);
    expect(res.status).toBe(404);
  });

  it("management API refuses guest/guest with 401", async () => {
    const res = await api("/api/overview", basic("guest", "guest"));
    expect(res.status).toBe(401);
  });

  it("AMQP 0-9-1 offers no password login at all (security baseline), not even to the admin", async () => {
    for (const [username, password] of [
      ["guest", "guest"],
      [broker.adminUsername, broker.adminPassword],
    ] as const) {
      await expect(
        amqp.connect({ protocol: "amqp", hostname: broker.host, port: broker.amqpPort, username, password }),
      ).rejects.toThrow(/SASL mechanism PLAIN is not provided by the server/);
    }
  });

  it("MQTT refuses an anonymous CONNECT (no username)", async () => {
    const attempt = connectAsync({ ...mqttBase, clientId: "harness-anonymous" });
    const err: unknown = await attempt.then(
      async (client) => {
        await client.endAsync(true);
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    // A CONNACK refusal (4 bad user name or password / 5 not authorized), not a network error.
    expect([4, 5]).toContain((err as { code?: unknown }).code);
  });

  it("MQTT accepts the admin credentials (control for the anonymous refusal)", async () => {
    const client = await connectAsync({
      ...mqttBase,
      clientId: "harness-admin",
      username: broker.adminUsername,
      password: broker.adminPassword,
    });
    expect(client.connected).toBe(true);
    await client.endAsync();
  });

  it("enabled plugins include rabbitmq_mqtt and rabbitmq_web_mqtt", async () => {
    // Node stats (which carry enabled_plugins) appear a few seconds after boot.
    const deadline = Date.now() + 30_000;
    let enabled: unknown;
    while (enabled === undefined && Date.now() < deadline) {
      const res = await api(`/api/nodes/${encodeURIComponent(broker.nodeName)}`, adminAuth);
      expect(res.status).toBe(200);
      enabled = ((await res.json()) as { enabled_plugins?: unknown }).enabled_plugins;
      if (enabled === undefined) await new Promise((r) => setTimeout(r, 500));
    }
    expect(enabled).toEqual(expect.arrayContaining(["rabbitmq_mqtt", "rabbitmq_web_mqtt"]));
  });
});
