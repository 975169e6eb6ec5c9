/**
 * The renderer's output boots the OS RabbitMQ, and what it sets shows in the broker's own status.
 * The shared e2e broker already runs the default rendering; this file boots a second node with
 * the large-fleet tuning profile (ports adapted to the test, nothing else changed).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { brokerInfo, startBroker, type BrokerInfo, type TestBroker } from "../support/broker";
import { endQuietly, mqttConnect } from "../support/clients";
import { adminApi } from "../support/management";

let node: TestBroker;
let info: BrokerInfo;

beforeAll(async () => {
  node = await startBroker({
    broker: {
      tuning: { profile: "large-fleet", expectedConnections: 500_000 },
      memoryHighWatermark: 0.5,
      diskFreeLimitMiB: 512,
      mqttSessionExpirySeconds: 3600,
    },
  });
  info = brokerInfo(node);
}, 180_000);

afterAll(async () => {
  await node?.stop();
}, 120_000);

describe("large-fleet rendering on a real node", () => {
  it("boots with MQTT reachable and anonymous refused", async () => {
    const anon = await mqttConnect({ port: info.mqttPort, clientId: "anon" });
    if (anon.ok) await endQuietly(anon.client);
    expect(anon.ok).toBe(false);
    const admin = await mqttConnect({ port: info.mqttPort, clientId: "admin", username: info.adminUsername, password: info.adminPassword });
    expect(admin.ok).toBe(true);
    if (admin.ok) await endQuietly(admin.client);
  });

  // The management metrics collector is off in this profile (that is the point), so the broker's
  // own status comes from rabbitmqctl rather than the management API's statistics.
  it("applies the MQTT listen options and turns the management metrics collector off", async () => {
    const env = await node.ctl(["environment"]);
    expect(env).toMatch(/\{tcp_listen_options,\s*\[[^\]]*\{backlog,\s*4096\}/);
    for (const opt of ["{nodelay,true}", "{keepalive,true}", "{sndbuf,32768}", "{recbuf,32768}"]) {
      expect(env.replace(/\s+/g, "")).toContain(opt);
    }
    expect(env.replace(/\s+/g, "")).toContain("{disable_metrics_collector,true}");
    const overview = (await adminApi(info, "GET", "overview")).body as { listeners?: unknown };
    expect(overview.listeners).toBeUndefined();
  });

  it("raises the Erlang process limit (+P) and sets the memory and disk alarms", async () => {
    const status = JSON.parse(await node.ctl(["status", "--formatter", "json"])) as {
      processes: { limit: number };
      disk_free_limit: number;
      vm_memory_high_watermark_setting: { relative?: number };
      listeners: { port: number; protocol: string }[];
    };
    // +P 2000000 (4 x 500000 connections); Erlang rounds up to a power of two. The default is 1048576.
    expect(status.processes.limit).toBeGreaterThanOrEqual(2_000_000);
    expect(status.disk_free_limit).toBe(512 * 1024 * 1024);
    expect(status.vm_memory_high_watermark_setting.relative).toBe(0.5);
    expect(status.listeners.filter((l) => l.protocol === "mqtt").map((l) => l.port).sort()).toEqual([info.mqttPort, info.tenantMqttPort].sort());
  });
});
