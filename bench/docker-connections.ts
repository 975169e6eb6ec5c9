/**
 * Benchmarks of the dev platform on Docker (not tests: they print figures, side by side, from one
 * run). The tuned broker is the shipped `dev` stack applied to the engine exactly as the Docker e2e
 * suites apply it (tests/support/docker-platform.ts); the stock broker is the same image run as
 * `docker run` would run it: the image's defaults, MQTT enabled, nofile 1024.
 *
 *   npm run bench:docker                    all three, RabbitMQ 4.3 for the first two
 *   BENCH_BROKER=4.0 npm run bench:docker   another release for the first two
 *
 * 1. Connections held: MQTT connections opened until the broker refuses (or fails), on the tuned
 *    and the stock broker; then whether each is still healthy (management answers, no alarm, the
 *    container running and never restarted) and whether the held connections are still open.
 * 2. Reconnect storm: 5,000 clients connecting at once, tuned vs stock listener backlog (both with
 *    enough open files): time until every CONNACK, and how many failed.
 * 3. Memory per idle MQTT connection, per release (3.10 vs native MQTT in 4.x).
 * Load goes to the containers' addresses on their Docker network (no userland proxy in between),
 * from child processes (bench/mqtt-load-worker.ts), each below this machine's open-files limit.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { BrokerInfo } from "../tests/support/broker";
import { dockerCall, dockerExec, startDockerEngine, type DockerEngine } from "../tests/support/docker-engine";
import { applyDockerResource } from "../tests/support/docker-hooks";
import { applyDevPlatform, hostOpenFilesLimit, removeDockerPlatform, waitHealthy, type AppliedDockerPlatform } from "../tests/support/docker-platform";
import { adminApi, adminApiOk } from "../tests/support/management";
import type { OpenCommand, WorkerReport } from "./mqtt-load-worker";

const ROOT = path.resolve(__dirname, "..");
const WORKER = path.join(__dirname, "mqtt-load-worker.ts");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Target {
  label: string;
  container: string;
  /** The container's address on its Docker network and its plaintext MQTT port there. */
  host: string;
  port: number;
  /** Management API of the node (published port). */
  admin: BrokerInfo;
  username: string;
  password: string;
}

interface Inspect {
  State: { Running: boolean };
  RestartCount: number;
  NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
}

async function containerAddress(engine: DockerEngine, container: string): Promise<string> {
  const info = await dockerCall<Inspect>(engine.socketPath, "GET", `/containers/${container}/json`);
  const ip = Object.values(info.NetworkSettings.Networks)[0]?.IPAddress;
  if (ip === undefined || ip === "") throw new Error(`${container} has no address`);
  return ip;
}

/** A vhost and a user with full rights in it: the benchmark measures the broker, not the product's grants. */
async function benchUser(admin: BrokerInfo): Promise<{ username: string; password: string }> {
  const password = randomBytes(12).toString("hex");
  await adminApiOk(admin, "PUT", "vhosts/bench", {});
  await adminApiOk(admin, "PUT", "users/bench", { password, tags: "" });
  await adminApiOk(admin, "PUT", "permissions/bench/bench", { configure: ".*", write: ".*", read: ".*" });
  return { username: "bench:bench", password };
}

/** Opens `perWorker` x `workers` connections (at `ratePerSec` in all, 0 = at once) and waits until every worker is done. */
async function openConnections(
  t: Target,
  workers: number,
  perWorker: number,
  ratePerSec: number,
  stopOnFailure: boolean,
  timeoutMs = 60_000,
): Promise<{ held: number; failed: number; firstError?: string; lastConnackMs: number; close(): Promise<void> }> {
  const children: ChildProcess[] = [];
  const reports: WorkerReport[] = [];
  const tag = randomBytes(3).toString("hex");
  await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const child = fork(WORKER, [], { execArgv: ["--import", "tsx"], cwd: ROOT, stdio: "inherit" });
      children.push(child);
      return new Promise<void>((resolve) => {
        child.on("message", (r: WorkerReport) => {
          reports[w] = r;
          if (r.done) resolve();
        });
        const cmd: OpenCommand = {
          cmd: "open",
          host: t.host,
          port: t.port,
          username: t.username,
          password: t.password,
          clientIdPrefix: `bench-${tag}-${w}`,
          count: perWorker,
          ratePerSec: ratePerSec / workers,
          stopOnFailure,
          timeoutMs,
        };
        child.send(cmd);
      });
    }),
  );
  const sum = (k: "held" | "failed") => reports.reduce((n, r) => n + r[k], 0);
  const firstError = reports.find((r) => r.firstError !== undefined)?.firstError;
  return {
    held: sum("held"),
    failed: sum("failed"),
    ...(firstError !== undefined ? { firstError } : {}),
    lastConnackMs: Math.max(...reports.map((r) => r.lastConnackMs)),
    close: async () => {
      for (const c of children) c.send({ cmd: "close" });
      await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(undefined) : c.once("exit", r)))));
    },
  };
}

/** Management answers, no memory or disk alarm, the container running and never restarted. */
async function health(engine: DockerEngine, t: Target): Promise<{ healthy: boolean; detail: string }> {
  const started = Date.now();
  let overview = "no answer";
  try {
    overview = String((await adminApi(t.admin, "GET", "overview")).status);
  } catch (e) {
    overview = (e as Error).message;
  }
  const answerMs = Date.now() - started;
  let alarms = "unknown";
  try {
    const nodes = (await adminApi(t.admin, "GET", "nodes")).body as { mem_alarm: boolean; disk_free_alarm: boolean; running: boolean }[];
    alarms = nodes.some((n) => n.mem_alarm || n.disk_free_alarm || !n.running) ? "alarm or node down" : "none";
  } catch (e) {
    alarms = (e as Error).message;
  }
  const info = await dockerCall<Inspect>(engine.socketPath, "GET", `/containers/${t.container}/json`);
  const healthy = overview === "200" && alarms === "none" && info.State.Running && info.RestartCount === 0;
  return { healthy, detail: `management ${overview} in ${answerMs} ms, alarms ${alarms}, running ${info.State.Running}, restarts ${info.RestartCount}` };
}

/** How many sockets the node may open: the container's nofile, or 3.10's own socket limit. */
async function socketsAllowed(engine: DockerEngine, container: string): Promise<{ nofile: number; sockets: number }> {
  const limits = await dockerExec(engine.socketPath, container, ["sh", "-c", "awk '/^Max open files/ { print $4 }' /proc/1/limits"]);
  const nofile = Number(limits.stdout.trim());
  const status = JSON.parse((await dockerExec(engine.socketPath, container, ["rabbitmq-diagnostics", "status", "--formatter", "json"])).stdout) as {
    file_descriptors?: { sockets_limit: number };
  };
  // 3.10 caps sockets itself (about 90% of the descriptors); 4.x reports no limit (0) or none.
  const own = status.file_descriptors?.sockets_limit ?? 0;
  return { nofile, sockets: own > 0 ? own : nofile };
}

/** The image as `docker run` runs it, with MQTT on, on the tuned platform's network. */
async function stockContainer(engine: DockerEngine, p: AppliedDockerPlatform, name: string, nofile: number): Promise<Target & { adminPassword: string }> {
  await dockerCall(engine.socketPath, "DELETE", `/containers/${name}?force=true`).catch(() => undefined);
  const adminPassword = randomBytes(12).toString("hex");
  const managementPort = p.nodes[0]!.managementPort + 500;
  await applyDockerResource({ socketPath: engine.socketPath, images: {} }, "docker:index/container:Container", name, {
    name,
    hostname: name,
    image: p.info.image,
    uploads: [
      { file: "/etc/rabbitmq/enabled_plugins", content: "[rabbitmq_management,rabbitmq_mqtt].\n", owner: "999", group: "999", permissions: "0644" },
      { file: "/etc/rabbitmq/rabbitmq.conf", content: `default_user = admin\ndefault_pass = ${adminPassword}\n`, owner: "999", group: "999", permissions: "0600" },
    ],
    networksAdvanced: [{ name: p.info.network, aliases: [name] }],
    ports: [{ internal: 15672, external: managementPort, ip: "127.0.0.1" }],
    ulimits: [{ name: "nofile", soft: nofile, hard: nofile }],
    healthcheck: { tests: ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"], interval: "5s", timeout: "10s", retries: 5, startPeriod: "60s" },
  });
  await waitHealthy(engine.socketPath, [name]);
  const admin: BrokerInfo = { ...p.nodes[0]!, managementPort, managementUrl: `http://127.0.0.1:${managementPort}`, adminUsername: "admin", adminPassword };
  const user = await benchUser(admin);
  return { label: `stock (nofile ${nofile})`, container: name, host: await containerAddress(engine, name), port: 1883, admin, ...user, adminPassword };
}

async function tunedTarget(engine: DockerEngine, p: AppliedDockerPlatform): Promise<Target> {
  const container = p.info.containers[0]!;
  const listeners = (p.info.platformConfig["broker"] as { listeners: { mqtt: number } }).listeners;
  const user = await benchUser(p.nodes[0]!);
  return { label: "tuned dev stack", container, host: await containerAddress(engine, container), port: listeners.mqtt, admin: p.nodes[0]!, ...user };
}

function machine(): string {
  return `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, open files per process ${hostOpenFilesLimit()}, Linux ${os.release()}`;
}

async function connectionsHeld(engine: DockerEngine, p: AppliedDockerPlatform): Promise<Record<string, unknown>> {
  const tuned = await tunedTarget(engine, p);
  const stock = await stockContainer(engine, p, `${p.info.prefix}-stock`, 1024);
  const results: Record<string, unknown> = {};
  for (const [t, perWorker] of [
    [tuned, 5500],
    [stock, 800],
  ] as const) {
    const allowed = await socketsAllowed(engine, t.container);
    const run = await openConnections(t, 4, perWorker, 2000, true);
    await sleep(5000);
    const h = await health(engine, t);
    // Still open after the refusals: the held connections were not dropped.
    const after = await openConnections(t, 1, 50, 0, false, 10_000);
    await after.close();
    console.log(
      `  ${t.label}: held ${run.held} MQTT connections (${((100 * run.held) / allowed.sockets).toFixed(1)}% of the ${allowed.sockets} sockets the node may open; nofile ${allowed.nofile}); ` +
        `then: ${run.firstError ?? "no refusal"}; 50 more: ${after.held} accepted; ${h.healthy ? "healthy" : "NOT healthy"} (${h.detail})`,
    );
    results[t === tuned ? "tuned" : "stock"] = { held: run.held, failed: run.failed, firstError: run.firstError, socketsAllowed: allowed, healthAfter: h, moreAccepted: after.held };
    await run.close();
  }
  await dockerCall(engine.socketPath, "DELETE", `/containers/${stock.container}?force=true`);
  const r = results as { tuned: { held: number }; stock: { held: number } };
  console.log(`  ratio tuned / stock: ${(r.tuned.held / Math.max(1, r.stock.held)).toFixed(1)}x`);
  return results;
}

async function reconnectStorm(engine: DockerEngine, p: AppliedDockerPlatform): Promise<Record<string, unknown>> {
  const tuned = await tunedTarget(engine, p);
  const limit = hostOpenFilesLimit();
  const stock = await stockContainer(engine, p, `${p.info.prefix}-stock-backlog`, limit);
  stock.label = `stock listener options (nofile ${limit})`;
  const results: Record<string, unknown> = {};
  for (const t of [tuned, stock]) {
    const backlog = (await dockerExec(engine.socketPath, t.container, ["rabbitmqctl", "eval", "proplists:get_value(backlog, element(2, application:get_env(rabbitmq_mqtt, tcp_listen_options)))."])).stdout.trim();
    const somaxconn = (await dockerExec(engine.socketPath, t.container, ["cat", "/proc/sys/net/core/somaxconn"])).stdout.trim();
    // Three storms each, the connections closed in between; the median is compared.
    const rounds: { held: number; failed: number; seconds: number }[] = [];
    for (let round = 0; round < 3; round++) {
      const run = await openConnections(t, 2, 2500, 0, false);
      rounds.push({ held: run.held, failed: run.failed, seconds: run.lastConnackMs / 1000 });
      await run.close();
      await sleep(5000);
    }
    const seconds = [...rounds.map((r) => r.seconds)].sort((a, b) => a - b)[1]!;
    console.log(
      `  ${t.label} (backlog ${backlog}, somaxconn ${somaxconn}): last CONNACK after ${rounds.map((r) => `${r.seconds.toFixed(2)} s`).join(", ")} ` +
        `(median ${seconds.toFixed(2)} s); connected ${rounds.map((r) => r.held).join(", ")} of 5000, failed ${rounds.map((r) => r.failed).join(", ")}`,
    );
    results[t === tuned ? "tuned" : "stock"] = { rounds, seconds, backlog, somaxconn };
  }
  await dockerCall(engine.socketPath, "DELETE", `/containers/${stock.container}?force=true`);
  const r = results as { tuned: { seconds: number }; stock: { seconds: number } };
  console.log(`  tuned time / stock time: ${(r.tuned.seconds / r.stock.seconds).toFixed(2)}`);
  return results;
}

async function memoryPerConnection(engine: DockerEngine): Promise<Record<string, unknown>> {
  const results: Record<string, unknown> = {};
  const count = 5000;
  for (const series of ["3.10", "4.0", "4.3"]) {
    const p = await applyDevPlatform(engine, series, 1, { prefix: `bench-mem-${series.replace(".", "")}` });
    try {
      const t = await tunedTarget(engine, p);
      const node = encodeURIComponent(p.nodes[0]!.nodeName);
      const erlangMemory = async () => ((await adminApiOk(t.admin, "GET", `nodes/${node}`)).body as { mem_used: number }).mem_used;
      await sleep(10_000);
      const before = await erlangMemory();
      const run = await openConnections(t, 2, count / 2, 1000, false);
      await sleep(15_000);
      const after = await erlangMemory();
      const perConn = (after - before) / run.held;
      console.log(`  RabbitMQ ${p.nodes[0]!.version}: ${run.held} idle connections, +${((after - before) / 2 ** 20).toFixed(1)} MiB, ${(perConn / 1024).toFixed(1)} KiB per connection`);
      results[p.nodes[0]!.version] = { held: run.held, bytesBefore: before, bytesAfter: after, bytesPerConnection: Math.round(perConn) };
      await run.close();
    } finally {
      await removeDockerPlatform(engine.socketPath, p.info.prefix);
    }
  }
  return results;
}

async function main(): Promise<void> {
  const series = process.env.BENCH_BROKER ?? "4.3";
  const engine = await startDockerEngine();
  const out: Record<string, unknown> = { machine: machine() };
  console.log(`Docker benchmarks on ${machine()}`);
  const p = await applyDevPlatform(engine, series, 1, { prefix: `bench-${series.replace(".", "")}` });
  try {
    console.log(`\n1. Connections held, RabbitMQ ${p.nodes[0]!.version} (${p.info.image}):`);
    out["connectionsHeld"] = await connectionsHeld(engine, p);
    console.log(`\n2. Reconnect storm, 5,000 clients at once, RabbitMQ ${p.nodes[0]!.version}:`);
    out["reconnectStorm"] = await reconnectStorm(engine, p);
  } finally {
    await removeDockerPlatform(engine.socketPath, p.info.prefix);
  }
  console.log("\n3. Memory per idle MQTT connection (Erlang memory, 5,000 connections):");
  out["memoryPerConnection"] = await memoryPerConnection(engine);
  fs.mkdirSync(path.join(ROOT, "reports"), { recursive: true });
  fs.writeFileSync(path.join(ROOT, "reports", "bench-docker.json"), `${JSON.stringify(out, null, 2)}\n`);
  await engine.stop();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
