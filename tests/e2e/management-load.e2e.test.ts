/**
 * The management listener under a burst of calls as `pulumi up`'s default unbounded parallelism
 * makes them, on a real broker:
 * - over HTTPS, as the platform's management API speaks it, the calls sent all at once (one
 *   connection each, as Node's default agent opens them) overload the listener: it closes
 *   connections it accepted before answering ("socket hang up"). That is the overload, reproduced;
 * - through the product's client (components/management/api.ts), the same burst is answered in
 *   full, at most MANAGEMENT_CONCURRENCY calls in flight, on the TLS node and on the suite's
 *   plaintext node, the users really created.
 * (The bound and the retries themselves are unit-tested against a misbehaving server in
 * tests/unit/management-api.test.ts; the Tenant's ordering of @pulumi/rabbitmq's own calls in
 * tests/unit/tenant-stack.test.ts.)
 */
import * as https from "node:https";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { MANAGEMENT_CONCURRENCY, managementRequest, managementSlots, type ManagementConnection } from "../../components/management/api";
import { startBroker, type TestBroker } from "../support/broker";
import { testPki } from "../support/test-pki";

const broker = inject("broker");
const BURST = Number(process.env["LOAD_BURST"] ?? 4000);
/** Creating a user (the password is hashed by the broker), as a tenant's first `pulumi up` does. */
const user = { password: "load-test-password-0123456789", tags: "" };
const conn = { managementUrl: broker.managementUrl, username: broker.adminUsername, password: broker.adminPassword };

afterAll(async () => {
  await removeUsers(conn, "load");
});

describe(`the management API under ${BURST} calls started at once (RabbitMQ ${broker.version})`, () => {
  it(`the product's client keeps at most ${MANAGEMENT_CONCURRENCY} in flight and every call is answered`, async () => {
    const before = { ...managementSlots().stats };
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: BURST }, (_, i) => managementRequest(conn, "PUT", `users/load-${i}`, user)));
    const stats = managementSlots().stats;
    console.log(
      `[load] RabbitMQ ${broker.version}: ${BURST} user PUTs started at once, answered in ${((Date.now() - started) / 1000).toFixed(1)} s, ` +
        `${stats.waited - before.waited} waited for a slot, ${stats.retried - before.retried} sent again, at most ${stats.maxInFlight} in flight`,
    );
    expect(results.filter((r) => r.status !== 201 && r.status !== 204)).toEqual([]);
    expect(stats.maxInFlight).toBeLessThanOrEqual(MANAGEMENT_CONCURRENCY);
    expect(stats.waited - before.waited).toBeGreaterThan(BURST - MANAGEMENT_CONCURRENCY - 1);
    const listed = (await managementRequest(conn, "GET", "users?columns=name")).body as { name: string }[];
    expect(listed.filter((u) => u.name.startsWith("load-")).length).toBe(BURST);
  }, 180_000);
});

/** Burst sizes tried in turn until one overloads the listener (the load it takes varies with the machine's). */
const OVERLOAD_BURSTS = (process.env["OVERLOAD_BURSTS"] ?? "6000,9000,12000").split(",").map(Number);

/** `count` user PUTs started at once, each on a connection of its own, with no bound: failures in transit by message. */
async function unboundedBurst(node: TestBroker, ca: string, count: number, prefix: string): Promise<{ answered: number; failed: Map<string, number>; seconds: number }> {
  const agent = new https.Agent({ keepAlive: true, ca });
  const auth = `Basic ${Buffer.from(`${node.adminUsername}:${node.adminPassword}`).toString("base64")}`;
  const body = JSON.stringify(user);
  const started = Date.now();
  const results = await Promise.allSettled(
    Array.from(
      { length: count },
      (_, i) =>
        new Promise<number>((resolve, reject) => {
          const req = https.request(
            new URL(`${node.managementUrl}/api/users/${prefix}-${i}`),
            { method: "PUT", agent, headers: { authorization: auth, "content-type": "application/json" } },
            (res) => {
              res.resume();
              res.on("end", () => resolve(res.statusCode ?? 0));
            },
          );
          req.on("error", reject);
          req.end(body);
        }),
    ),
  );
  agent.destroy();
  const failed = new Map<string, number>();
  let answered = 0;
  for (const r of results) {
    if (r.status === "fulfilled") answered++;
    else failed.set((r.reason as Error).message, (failed.get((r.reason as Error).message) ?? 0) + 1);
  }
  return { answered, failed, seconds: (Date.now() - started) / 1000 };
}

async function removeUsers(conn: ManagementConnection, prefix: string): Promise<void> {
  const listed = (await managementRequest(conn, "GET", "users?columns=name")).body as { name: string }[];
  const names = listed.map((u) => u.name).filter((n) => n.startsWith(`${prefix}-`));
  for (let i = 0; i < names.length; i += 1000) await managementRequest(conn, "POST", "users/bulk-delete", { users: names.slice(i, i + 1000) });
}

describe(`the management API over HTTPS under a burst of calls (RabbitMQ ${broker.version})`, () => {
  let node: TestBroker;
  let ca: string;
  let tlsConn: ManagementConnection;
  let largest = 0;

  beforeAll(async () => {
    const pki = await testPki();
    ca = pki.caCertPem;
    node = await startBroker({ tls: { caCertPem: ca, certPem: pki.serverCertPem, keyPem: pki.serverKeyPem, depth: 1, plaintext: false } });
    tlsConn = { managementUrl: node.managementUrl, username: node.adminUsername, password: node.adminPassword, caCertPem: ca };
  }, 120_000);

  afterAll(async () => {
    await node?.stop();
  });

  it("sent all at once with no bound, as pulumi up's default parallelism would, calls are dropped: the overload", async () => {
    expect(node.managementUrl).toMatch(/^https:/);
    const seen: string[] = [];
    let dropped = 0;
    for (const size of OVERLOAD_BURSTS) {
      largest = size;
      const r = await unboundedBurst(node, ca, size, "raw");
      dropped = [...r.failed.values()].reduce((a, b) => a + b, 0);
      seen.push(`${size} at once: ${r.answered} answered, ${dropped} dropped in ${r.seconds.toFixed(1)} s ${JSON.stringify(Object.fromEntries(r.failed))}`);
      await removeUsers(tlsConn, "raw");
      if (dropped > 0) break;
    }
    console.log(`[load] RabbitMQ ${node.version} over HTTPS, unbounded: ${seen.join("; ")}`);
    expect(dropped, `no burst overloaded the listener: ${seen.join("; ")}`).toBeGreaterThan(0);
  }, 600_000);

  it("through the product's client the same burst is answered in full, at most MANAGEMENT_CONCURRENCY in flight", async () => {
    const count = largest || OVERLOAD_BURSTS[0]!;
    const before = { ...managementSlots().stats };
    managementSlots().stats.maxInFlight = 0;
    const started = Date.now();
    const results = await Promise.allSettled(Array.from({ length: count }, (_, i) => managementRequest(tlsConn, "PUT", `users/bounded-${i}`, user)));
    const stats = managementSlots().stats;
    const failed = results.filter((r) => r.status === "rejected").map((r) => String((r).reason));
    console.log(
      `[load] RabbitMQ ${node.version} over HTTPS, through the product's client: ${count} user PUTs answered in ${((Date.now() - started) / 1000).toFixed(1)} s, ` +
        `${stats.retried - before.retried} sent again, at most ${stats.maxInFlight} in flight, ${failed.length} failed`,
    );
    expect(failed.slice(0, 3)).toEqual([]);
    expect(results.filter((r) => r.status === "fulfilled" && r.value.status !== 201 && r.value.status !== 204)).toEqual([]);
    expect(stats.maxInFlight).toBeLessThanOrEqual(MANAGEMENT_CONCURRENCY);
    const listed = (await managementRequest(tlsConn, "GET", "users?columns=name")).body as { name: string }[];
    expect(listed.filter((u) => u.name.startsWith("bounded-")).length).toBe(count);
    await removeUsers(tlsConn, "bounded");
  }, 600_000);
});
