/**
 * Three local nodes form one cluster from the rendered classic peer discovery settings, and a
 * tenant applied through one node is enforced on every node.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyStackFile } from "../support/apply-stack";
import { brokerInfo, startCluster, type TestBroker } from "../support/broker";
import { endQuietly, mqttConnect, trySubscribe, waitFor } from "../support/clients";
import { adminApi } from "../support/management";

let members: TestBroker[] = [];

beforeAll(async () => {
  members = await startCluster(3);
}, 300_000);

afterAll(async () => {
  for (const m of members) await m.stop();
}, 180_000);

describe("a three-node cluster from rendered peer discovery", () => {
  it("every node sees the same three running members", async () => {
    const names = members.map((m) => m.nodeName).sort();
    for (const m of members) {
      const status = JSON.parse(await m.ctl(["cluster_status", "--formatter", "json"])) as { running_nodes: string[] };
      expect([...status.running_nodes].sort()).toEqual(names);
    }
  });

  it("a tenant applied through one node is enforced on the others", async () => {
    const [first, second, third] = members.map(brokerInfo);
    const { result } = await applyStackFile("acme", first!);
    const passwords = result.outputs["identityPasswords"] as Record<string, string>;
    expect((await adminApi(second!, "GET", "vhosts/acme")).status).toBe(200);

    const sub = await mqttConnect({ port: second!.mqttPort, username: "acme:web-app@acme", password: passwords["web-app"]!, clientId: "web-app" });
    if (!sub.ok) throw new Error(sub.reason);
    expect((await trySubscribe(sub.client, "client/web-app/#", 1)).outcome).toBe("granted");
    const pub = await mqttConnect({ port: third!.mqttPort, username: "acme:backend@acme", password: passwords["backend"]!, clientId: "backend" });
    if (!pub.ok) throw new Error(pub.reason);
    pub.client.publish("client/web-app/commands", "across-nodes", { qos: 1 });
    expect(await waitFor(() => sub.messages.some((m) => m.payload === "across-nodes"), 5000)).toBe(true);

    const denied = await mqttConnect({ port: third!.mqttPort, username: "acme:web-app@acme", password: passwords["web-app"]!, clientId: "web-app_1" });
    if (!denied.ok) throw new Error(denied.reason);
    expect((await trySubscribe(denied.client, "client/backend/#", 1)).outcome).not.toBe("granted");
    for (const c of [sub, pub, denied]) await endQuietly(c.client);
  });
});
