/**
 * The rendered configuration of each shipped platform stack boots the OS RabbitMQ, and what it
 * sets shows in the broker's own status. Adapted to the test: listener ports (free ones), the bind
 * address (loopback), and the version the files are rendered for (the installed server's, since
 * the stacks pin the image's version, which this machine's package may not be), and the
 * certificates (a throwaway CA and server certificate; the platform's own PKI is exercised in
 * tls-login.e2e.test.ts). Plaintext listeners are open only where the stack keeps them.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { versionAtLeast } from "../../core/broker-baseline";
import { parseBrokerConfig, type BrokerConfigInput } from "../../core/platform-config";
import { connectionMax } from "../../core/tuning";
import { brokerInfo, installedVersionText, startBroker, type BrokerInfo, type TestBroker } from "../support/broker";
import { endQuietly, mqttConnect, type ConnectOutcome } from "../support/clients";
import { adminApi } from "../support/management";
import { testPki, type TestPki } from "../support/test-pki";
import { generatePrivateKey } from "../support/tls-provider";

function shippedBroker(stack: string): Omit<BrokerConfigInput, "version" | "listeners"> {
  const doc = parse(readFileSync(path.join(__dirname, `../../Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, { broker: BrokerConfigInput }> };
  const platform = doc.config["rabbitmq-mqtt:platform"];
  if (!platform) throw new Error(`Pulumi.${stack}.yaml has no platform config`);
  const { version: _version, listeners: _listeners, ...rest } = platform.broker;
  return rest;
}

describe.each(["dev", "platform-prod"])("the rendered configuration of the %s stack", (stack) => {
  const settings = shippedBroker(stack);
  const model = parseBrokerConfig({ ...settings, version: installedVersionText() });
  let node: TestBroker;
  let info: BrokerInfo;
  let pki: TestPki;

  beforeAll(async () => {
    pki = await testPki();
    // The stack's token signing keys: a public key per id, as the platform stack makes them.
    const tokenKeys: Record<string, string> = {};
    for (const id of model.tokens?.signingKeyIds ?? []) tokenKeys[id] = (await generatePrivateKey("RSA", 3072)).publicKeyPem;
    node = await startBroker({
      broker: settings,
      tls: { caCertPem: pki.caCertPem, certPem: pki.serverCertPem, keyPem: pki.serverKeyPem, depth: 1, plaintext: model.plaintextListeners },
      tokenKeys,
    });
    info = brokerInfo(node);
  }, 180_000);

  afterAll(async () => {
    await node?.stop();
  }, 120_000);

  it("boots with the MQTT and Web MQTT plugins, reachable over TLS, anonymous refused", async () => {
    const enabled = await node.ctl(["eval", "rabbit_plugins:active()."]);
    for (const p of ["rabbitmq_mqtt", "rabbitmq_web_mqtt", "rabbitmq_management"]) expect(enabled).toContain(p);
    // Token sign-in, when the stack turns it on: the OAuth 2 backend after the internal one.
    expect(enabled.includes("rabbitmq_auth_backend_oauth2")).toBe(model.tokens !== undefined);
    const backends = await node.ctl(["eval", "application:get_env(rabbit, auth_backends)."]);
    expect(backends.replace(/\s+/g, "")).toBe(model.tokens !== undefined ? "{ok,[rabbit_auth_backend_internal,rabbit_auth_backend_oauth2]}" : "{ok,[rabbit_auth_backend_internal]}");
    for (const websocket of [false, true]) {
      const port = websocket ? info.tls!.webMqttsPort : info.tls!.mqttsPort;
      const tls = { ca: pki.caCertPem };
      const anon = await mqttConnect({ port, clientId: "anon", websocket, tls });
      if (anon.ok) await endQuietly(anon.client);
      expect(anon.ok).toBe(false);
      const admin = await mqttConnect({ port, clientId: "admin", username: info.adminUsername, password: info.adminPassword, websocket, tls });
      expect(admin.ok).toBe(true);
      if (admin.ok) await endQuietly(admin.client);
    }
  });

  it("runs with the settings the renderer chose for this release (session expiry, anonymous login, certificate client ids, AMQP mechanisms)", async () => {
    // Each key the renderer writes only for some releases, read back from the running node.
    const env = async (app: string, key: string) => (await node.ctl(["eval", `application:get_env(${app}, ${key}).`])).trim();
    if (versionAtLeast(node, 3, 13)) {
      expect(await env("rabbitmq_mqtt", "max_session_expiry_interval_seconds")).toBe(`{ok,${model.mqttSessionExpirySeconds}}`);
      expect(await env("rabbit", "anonymous_login_user")).toBe("{ok,none}");
    } else {
      expect(await env("rabbitmq_mqtt", "subscription_ttl")).toBe(`{ok,${model.mqttSessionExpirySeconds * 1000}}`);
      expect(await env("rabbit", "anonymous_login_user")).toBe("undefined");
    }
    expect(await env("rabbitmq_mqtt", "ssl_cert_client_id_from")).toBe(versionAtLeast(node, 4, 0) ? "{ok,distinguished_name}" : "undefined");
    expect(await env("rabbitmq_mqtt", "allow_anonymous")).toBe("{ok,false}");
    // No AMQP 0-9-1 mechanism at all (core/broker-baseline.ts).
    expect(await env("rabbit", "auth_mechanisms")).toBe("{ok,[none]}");
  });

  it("applies the tuning's MQTT listen options and the metrics collector setting", async () => {
    const env = (await node.ctl(["environment"])).replace(/\s+/g, "");
    const l = model.tuning.mqttListen;
    expect(env).toContain(`{backlog,${l.backlog}}`);
    expect(env).toContain("{nodelay,true}");
    expect(env).toContain("{keepalive,true}");
    if (l.buffer !== undefined) {
      expect(env).toContain(`{sndbuf,${l.buffer}}`);
      expect(env).toContain(`{recbuf,${l.buffer}}`);
    }
    expect(env.includes("{disable_metrics_collector,true}")).toBe(model.tuning.disableMetricsCollector);
  });

  it("shows the Erlang process limit, the memory and disk alarms and every MQTT listener in its status", async () => {
    const status = JSON.parse(await node.ctl(["status", "--formatter", "json"])) as {
      processes: { limit: number };
      disk_free_limit: number;
      vm_memory_high_watermark_setting: { relative?: number };
      listeners: { port: number; protocol: string }[];
    };
    // Erlang rounds +P up to a power of two.
    expect(status.processes.limit).toBeGreaterThanOrEqual(model.tuning.erlMaxProcesses);
    expect(status.disk_free_limit).toBe(model.diskFreeLimitMiB * 1024 * 1024);
    expect(status.vm_memory_high_watermark_setting.relative).toBe(model.memoryHighWatermark);
    const plain = model.plaintextListeners ? [info.mqttPort, info.tenantMqttPort] : [];
    expect(status.listeners.filter((l) => l.protocol === "mqtt").map((l) => l.port).sort()).toEqual(plain.sort());
    expect(status.listeners.filter((l) => l.protocol === "mqtt/ssl").map((l) => l.port).sort()).toEqual([info.tls!.mqttsPort, info.tls!.tenantMqttsPort].sort());
    expect(status.listeners.some((l) => l.protocol === "http")).toBe(model.plaintextListeners);
    expect(status.listeners.some((l) => l.protocol === "https")).toBe(true);
  });
});

describe("a TLS 1.3-only broker", () => {
  let node: TestBroker;
  let pki: TestPki;

  beforeAll(async () => {
    pki = await testPki();
    node = await startBroker({
      broker: { tls: { versions: ["tlsv1.3"] } },
      tls: { caCertPem: pki.caCertPem, certPem: pki.serverCertPem, keyPem: pki.serverKeyPem, depth: 0, plaintext: false },
    });
  }, 180_000);

  afterAll(async () => {
    await node?.stop();
  }, 120_000);

  it("starts its TLS listeners and accepts a TLS 1.3 MQTT client", async () => {
    const admin = await mqttConnect({ port: node.tls!.mqttsPort, clientId: "admin", username: node.adminUsername, password: node.adminPassword, tls: { ca: pki.caCertPem } });
    expect(admin.ok).toBe(true);
    if (admin.ok) {
      expect((admin.client.stream as unknown as { getProtocol(): string }).getProtocol()).toBe("TLSv1.3");
      await endQuietly(admin.client);
    }
  });
});

describe("the connection caps, rendered for a node that may open 300 files", () => {
  const cap = connectionMax(300);
  let node: TestBroker;

  beforeAll(async () => {
    node = await startBroker({ openFiles: 300 });
  }, 180_000);

  afterAll(async () => {
    await node?.stop();
  }, 120_000);

  it("takes MQTT connections up to the cap (and at most one per acceptor more before 4.3), then no more, and stays manageable", async () => {
    expect(cap).toBe(44);
    // Ranch's max_connections is soft: each of the listener's acceptors (10, RabbitMQ's default)
    // may start one connection past it before it sleeps. 4.3's mqtt.max_connections is exact.
    const slack = versionAtLeast(node, 4, 3) ? 0 : 10;
    const login = (i: number) => ({ port: node.mqttPort, username: node.adminUsername, password: node.adminPassword, clientId: `cap-${i}` });
    const held: ConnectOutcome[] = [];
    let refusal: string | undefined;
    try {
      for (let i = 0; i <= cap + slack && refusal === undefined; i++) {
        const c = await mqttConnect(login(i));
        if (c.ok) held.push(c);
        else refusal = c.reason;
      }
      console.log(`[caps] RabbitMQ ${node.version}: held ${held.length} with the cap at ${cap}, then: ${refusal ?? "no refusal"}`);
      expect(held.length).toBeGreaterThanOrEqual(cap);
      expect(held.length).toBeLessThanOrEqual(cap + slack);
      // 4.3 refuses at CONNECT; before, the listener stops accepting and the client gets no CONNACK.
      expect(refusal).toMatch(versionAtLeast(node, 4, 3) ? /not authorized/i : /connack timeout/i);
      // The node still answers its management API and CLI.
      expect((await adminApi(node, "GET", "overview")).status).toBe(200);
      expect(await node.ctl(["eval", "ok."])).toContain("ok");
    } finally {
      for (const c of held) if (c.ok) await endQuietly(c.client);
    }
    // Once connections close, the listener takes new ones again.
    let again = await mqttConnect(login(cap + slack + 1));
    for (let tries = 1; !again.ok && tries < 6; tries++) again = await mqttConnect(login(cap + slack + 1));
    expect(again.ok).toBe(true);
    if (again.ok) await endQuietly(again.client);
  });
});
