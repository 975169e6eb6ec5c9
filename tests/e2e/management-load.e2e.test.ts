/**
 * The management listener under a burst of calls as `pulumi up`'s default unbounded parallelism
 * makes them, on a real broker, through the product's client (components/management/api.ts): at
 * most MANAGEMENT_CONCURRENCY calls in flight, every call answered, the users really created.
 * (The bound and the retries themselves are unit-tested against a misbehaving server in
 * tests/unit/management-api.test.ts.)
 */
import { afterAll, describe, expect, inject, it } from "vitest";
import { MANAGEMENT_CONCURRENCY, managementRequest, managementSlots } from "../../components/management/api";

const broker = inject("broker");
const BURST = Number(process.env["LOAD_BURST"] ?? 4000);
/** Creating a user (the password is hashed by the broker), as a tenant's first `pulumi up` does. */
const user = { password: "load-test-password-0123456789", tags: "" };
const conn = { managementUrl: broker.managementUrl, username: broker.adminUsername, password: broker.adminPassword };

afterAll(async () => {
  for (let i = 0; i < BURST; i += 1000) {
    const users = Array.from({ length: Math.min(1000, BURST - i) }, (_, j) => `load-${i + j}`);
    await managementRequest(conn, "POST", "users/bulk-delete", { users });
  }
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
