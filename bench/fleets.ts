/**
 * Benchmarks of device fleets (not tests: they print figures side by side from one run), on a
 * node of the release E2E_BROKER names (default: the host's package):
 *
 *   npm run bench:fleets                          fleets of 1,000 / 10,000 / 100,000 devices
 *   FLEET_SIZES=1000,10000 npm run bench:fleets   other sizes
 *
 * For each size, a tenant stack with one password fleet (the stack program under the project's
 * broker-applying mocks, as the e2e tests run it): first apply, re-apply with no change, add one
 * device, remove one device, remove them all; Pulumi resources, management API calls, broker memory (the node's
 * mem_used after the apply) and the program process's peak memory. Then the same for 1,000
 * password identities declared one by one (the way before fleets) for the ratio.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { hashDevicePassword } from "../core/fleets";
import { ROOT, applyStack } from "../tests/support/apply-stack";
import { brokerInfo, startBroker, type BrokerInfo } from "../tests/support/broker";
import { adminApiOk } from "../tests/support/management";
import type { StackRunResult } from "../tests/support/run-stack";

const SIZES = (process.env["FLEET_SIZES"] ?? "1000,10000,100000").split(",").map(Number);
const IDENTITIES = Number(process.env["IDENTITIES"] ?? 1000);
const DIR = `.e2e-artifacts/bench-fleets-${process.pid}`;
process.env["STACK_RUN_TIMEOUT_MS"] ??= String(30 * 60_000);

interface Row {
  way: string;
  size: number;
  apply: number;
  reapply: number;
  add: number;
  remove: number;
  /** Removing the whole fleet (or every identity). */
  destroy: number;
  resources: number;
  calls: [number, number, number, number];
  brokerMiB: number;
  runnerMiB: number;
}

function config(broker: BrokerInfo, tenant: Record<string, unknown>): Record<string, unknown> {
  return {
    tenant: { protect: false, identities: [{ name: "backend", kind: "service", role: "b2b", grants: { subscribe: ["#"] } }], ...tenant },
    broker: { managementUrl: broker.managementUrl, username: broker.adminUsername },
    brokerPassword: broker.adminPassword,
  };
}

async function timed(run: () => Promise<StackRunResult>): Promise<{ r: StackRunResult; s: number }> {
  const started = Date.now();
  const r = await run();
  return { r, s: (Date.now() - started) / 1000 };
}

async function brokerMemMiB(broker: BrokerInfo): Promise<number> {
  const nodes = (await adminApiOk(broker, "GET", "nodes?columns=mem_used")).body as { mem_used: number }[];
  return (nodes[0]?.mem_used ?? 0) / 2 ** 20;
}

async function measure(broker: BrokerInfo, way: string, size: number, tenantOf: (members: number[]) => Record<string, unknown>, stack: string): Promise<Row> {
  const all = Array.from({ length: size }, (_, i) => i);
  const a = await timed(() => applyStack(stack, config(broker, tenantOf(all))));
  const brokerMiB = await brokerMemMiB(broker);
  const b = await timed(() => applyStack(stack, config(broker, tenantOf(all)), {}, a.r));
  const c = await timed(() => applyStack(stack, config(broker, tenantOf([...all, size])), {}, b.r));
  const d = await timed(() => applyStack(stack, config(broker, tenantOf([...all.slice(1), size])), {}, c.r));
  // Removing them all (timed), so that the next size starts from an empty broker.
  const e = await timed(() => applyStack(stack, config(broker, tenantOf([])), {}, d.r));
  const row: Row = {
    way,
    size,
    apply: a.s,
    reapply: b.s,
    add: c.s,
    remove: d.s,
    destroy: e.s,
    resources: a.r.registered.length,
    calls: [a.r.managementCalls ?? 0, b.r.managementCalls ?? 0, c.r.managementCalls ?? 0, d.r.managementCalls ?? 0],
    brokerMiB,
    runnerMiB: Math.max(a.r.maxRssBytes ?? 0, b.r.maxRssBytes ?? 0, c.r.maxRssBytes ?? 0, d.r.maxRssBytes ?? 0) / 2 ** 20,
  };
  console.log(JSON.stringify(row));
  return row;
}

async function main(): Promise<void> {
  const node = await startBroker({});
  const broker = brokerInfo(node);
  mkdirSync(path.join(ROOT, DIR), { recursive: true });
  const rows: Row[] = [];
  try {
    for (const size of SIZES) {
      // One registry file per member set; the lines (and so the hashes) stay the same across runs.
      const lines = Array.from({ length: size + 1 }, (_, i) => JSON.stringify({ name: `d-${i}`, user: `home-${i}`, passwordHash: hashDevicePassword(`pw-${i}`, Buffer.from([0, 0, 0, 1])) }));
      let n = 0;
      rows.push(
        await measure(broker, "fleet", size, (members) => {
          const file = `${DIR}/fleet-${size}-${n++}.jsonl`;
          writeFileSync(path.join(ROOT, file), `${members.map((i) => lines[i]).join("\n")}\n`);
          return { name: "benchfleet", fleets: members.length > 0 ? [{ name: "devices", role: "c2b", registry: file }] : [] };
        }, "benchfleet"),
      );
    }
    rows.push(
      await measure(broker, "identities", IDENTITIES, (members) => ({
        name: "benchids",
        identities: [
          { name: "backend", kind: "service", role: "b2b", grants: { subscribe: ["#"] } },
          ...members.map((i) => ({ name: `d-${i}`, kind: "device", role: "c2b", user: `home-${i}` })),
        ],
      }), "benchids"),
    );
  } finally {
    rmSync(path.join(ROOT, DIR), { recursive: true, force: true });
    await node.stop();
  }
  const f = (x: number) => x.toFixed(1);
  console.log(`\nDevice fleets on RabbitMQ ${broker.version} (this machine; times in seconds, calls = management API calls)`);
  console.log("| way | devices | apply | re-apply, no change | add one | remove one | remove all | Pulumi resources | calls: apply / re-apply / add / remove | broker memory | runner memory |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of rows) {
    console.log(`| ${r.way} | ${r.size.toLocaleString("en")} | ${f(r.apply)} | ${f(r.reapply)} | ${f(r.add)} | ${f(r.remove)} | ${f(r.destroy)} | ${r.resources} | ${r.calls.join(" / ")} | ${Math.round(r.brokerMiB)} MiB | ${Math.round(r.runnerMiB)} MiB |`);
  }
  const ids = rows.find((r) => r.way === "identities");
  const fleet = rows.find((r) => r.way === "fleet" && r.size === ids?.size);
  if (ids && fleet) {
    console.log(`\nAt ${ids.size.toLocaleString("en")}: apply ${f(ids.apply / fleet.apply)}x faster, re-apply ${f(ids.reapply / fleet.reapply)}x, resources ${ids.resources} vs ${fleet.resources}, apply calls ${ids.calls[0]} vs ${fleet.calls[0]}`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
