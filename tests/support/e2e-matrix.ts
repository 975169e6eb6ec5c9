/**
 * Runs every end-to-end suite on every release of the broker matrix (tests/support/
 * broker-runtime.ts), a few at a time, and prints per release what passed.
 *
 *   tsx tests/support/e2e-matrix.ts             every release
 *   E2E_BROKER=4.3 tsx tests/support/e2e-matrix.ts   one release
 *   E2E_JOBS=2                                   how many suites run at once (default 3)
 *   E2E_TARGETS=host|docker                      only the suites on host nodes, or on Docker
 *
 * Each suite is one vitest process with its own broker nodes on free ports, so suites of different
 * releases do not compete for ports or files. A suite's output goes to reports/<suite>.log and is
 * printed whole when the suite ends; its JSON report to reports/<suite>.json.
 *
 * The Docker suites apply the shipped dev platform stack to a Docker engine this runner starts
 * (tests/support/docker-engine.ts) from local images it builds first (scripts/broker-image.sh);
 * each suite's containers, network and ports are its own, so they share the engine.
 */
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PORT_BLOCK_COUNT } from "./broker";
import { brokerImage, startDockerEngine, type DockerEngine } from "./docker-engine";
import {
  BROKER_MATRIX,
  CHROOT_BUILD_TIMEOUT_MS,
  CHROOT_SCRIPT,
  chrootRootFromOutput,
  matrixEntry,
  prepareChroot,
  releaseChroot,
  type MatrixEntry,
} from "./broker-runtime";

const ROOT = path.resolve(__dirname, "../..");
const REPORTS = path.join(ROOT, "reports");
const VITEST = path.join(ROOT, "node_modules/.bin/vitest");

interface Suite {
  id: string;
  series: string;
  title: string;
  /** The vitest project: host nodes (e2e) or the dev platform on Docker (docker). */
  project: "e2e" | "docker";
  args: string[];
  env: Record<string, string>;
}

interface SuiteResult {
  suite: Suite;
  code: number | null;
  passed: number;
  failed: number;
  skipped: number;
  seconds: number;
  version: string | undefined;
}

function suitesFor(entry: MatrixEntry): Suite[] {
  const s = entry.series;
  const tenantAccess = "tests/e2e/tenant-access.e2e.test.ts";
  return [
    { id: `e2e-${s}`, series: s, project: "e2e", title: "end-to-end, one node (and the cluster-formation suite)", args: [], env: {} },
    {
      id: `docker-cluster-${s}`,
      series: s,
      project: "docker",
      title: "three-node dev platform on Docker: faults, then tenant access",
      args: ["tests/e2e/docker/cluster-faults.e2e.test.ts", tenantAccess],
      env: { E2E_CLUSTER: "1" },
    },
    { id: `e2e-cluster-${s}`, series: s, project: "e2e", title: "tenant access on a three-node cluster", args: [tenantAccess], env: { E2E_CLUSTER: "1" } },
    {
      id: `docker-${s}`,
      series: s,
      project: "docker",
      title: "dev platform on Docker: containers, listeners, tuning, token issuer and key rotation, TLS logins, tenant access",
      args: ["tests/e2e/docker/dev-platform.e2e.test.ts", "tests/e2e/docker/token-rotation.e2e.test.ts", "tests/e2e/tls-login.e2e.test.ts", tenantAccess],
      env: {},
    },
  ];
}

/** chrootRoot, asynchronously, so that two releases' debootstraps run side by side. */
function buildChroot(suite: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile("bash", [CHROOT_SCRIPT, suite], { timeout: CHROOT_BUILD_TIMEOUT_MS }, (err, stdout) => {
      if (err !== null) return reject(new Error(`scripts/broker-chroot.sh ${suite} failed: ${err.message}`));
      try {
        resolve(chrootRootFromOutput(suite, stdout));
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
    child.stderr?.pipe(process.stderr);
  });
}

/** `portBlock`: which block of node ports the suite's processes use (tests/support/broker.ts). */
function runSuite(suite: Suite, portBlock: number): Promise<SuiteResult> {
  const started = Date.now();
  const log = path.join(REPORTS, `${suite.id}.log`);
  const json = path.join(REPORTS, `${suite.id}.json`);
  const out = fs.openSync(log, "w");
  const child = spawn(
    VITEST,
    ["run", "--project", suite.project, ...suite.args, "--reporter=default", "--reporter=json", `--outputFile.json=${json}`],
    { cwd: ROOT, env: { ...process.env, ...suite.env, E2E_BROKER: suite.series, E2E_PORT_BLOCK: String(portBlock), FORCE_COLOR: "0", NO_COLOR: "1" }, stdio: ["ignore", out, out] },
  );
  fs.closeSync(out);
  return new Promise((resolve) => {
    child.on("exit", (code) => {
      const text = fs.readFileSync(log, "utf8");
      process.stdout.write(`\n===== ${suite.id}: ${suite.title} (RabbitMQ ${suite.series}) =====\n${text}\n`);
      let passed = 0;
      let failed = 0;
      let skipped = 0;
      if (fs.existsSync(json)) {
        const r = JSON.parse(fs.readFileSync(json, "utf8")) as { numPassedTests: number; numFailedTests: number; numPendingTests: number; numTodoTests: number };
        passed = r.numPassedTests;
        failed = r.numFailedTests;
        skipped = r.numPendingTests + r.numTodoTests;
      }
      const version = /\[e2e\] RabbitMQ (\d+\.\d+\.\d+)/.exec(text)?.[1];
      resolve({ suite, code, passed, failed, skipped, seconds: Math.round((Date.now() - started) / 1000), version });
    });
  });
}

async function main(): Promise<number> {
  const only = process.env.E2E_BROKER;
  const entries = only === undefined || only === "" ? [...BROKER_MATRIX] : [matrixEntry(only)];
  const jobs = Math.max(1, Number(process.env.E2E_JOBS ?? 3));
  fs.mkdirSync(REPORTS, { recursive: true });

  const targets = process.env.E2E_TARGETS ?? "";
  if (!["", "host", "docker"].includes(targets)) throw new Error(`E2E_TARGETS=${targets}: expected host or docker`);
  const wanted = (suite: Suite) => targets === "" || (targets === "docker") === (suite.project === "docker");
  // Suites interleaved by release, so the first `jobs` cover different releases; the longest kinds first.
  const perRelease = entries.map((e) => suitesFor(e).filter(wanted));

  // Build (or find) every chroot, and for the Docker suites start the engine and build (or find)
  // each release's image, all at once before the suites start (the chroot script serializes two
  // builds of one root).
  const chroots = new Map<string, string>();
  let engine: DockerEngine | undefined;
  const docker = async () => {
    if (!perRelease.some((l) => l.some((suite) => suite.project === "docker"))) return;
    engine = await startDockerEngine();
    const started = engine;
    await Promise.all(
      entries.map(async (e) => {
        console.log(`[e2e] Docker image for RabbitMQ ${e.series}: ${await brokerImage(started, e.imageSuite)}`);
      }),
    );
  };
  await Promise.all([
    ...entries.map(async (e) => {
      if (e.source.kind !== "chroot") return;
      const { suite } = e.source;
      const root = await buildChroot(suite);
      prepareChroot(root, suite);
      chroots.set(e.series, root);
    }),
    docker(),
  ]);

  const queue: Suite[] = [];
  for (let i = 0; perRelease.some((l) => i < l.length); i++) for (const l of perRelease) if (l[i] !== undefined) queue.push(l[i]!);
  if (queue.length > PORT_BLOCK_COUNT) throw new Error(`${queue.length} suites but only ${PORT_BLOCK_COUNT} port blocks`);
  fs.writeFileSync(path.join(REPORTS, "e2e-matrix.json"), `${JSON.stringify({ suites: queue.map((q) => q.id) }, null, 2)}\n`);
  const results: SuiteResult[] = [];
  // Every suite its own block of ports (its place in the plan), so suites side by side never share one.
  const pending = queue.map((suite, portBlock) => ({ suite, portBlock }));
  const workers = Array.from({ length: Math.min(jobs, pending.length) }, async () => {
    for (let next = pending.shift(); next !== undefined; next = pending.shift()) results.push(await runSuite(next.suite, next.portBlock));
  });
  await Promise.all(workers);
  for (const root of chroots.values()) releaseChroot(root);
  await engine?.stop();

  console.log("\n===== broker matrix =====");
  let failedAny = false;
  for (const e of entries) {
    const mine = results.filter((r) => r.suite.series === e.series);
    const passed = mine.reduce((n, r) => n + r.passed, 0);
    const failed = mine.reduce((n, r) => n + r.failed, 0);
    const version = mine.find((r) => r.version !== undefined)?.version ?? `${e.series}.x`;
    const from = `${e.source.kind === "host" ? "host package" : `Debian ${e.source.suite} chroot`}; Docker image from Debian ${e.imageSuite}`;
    const parts = mine.map((r) => `${r.suite.id} ${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ""} (${r.seconds} s${r.code !== 0 ? `, exit ${r.code}` : ""})`);
    console.log(`RabbitMQ ${version} (${from}): ${passed} passed, ${failed} failed -- ${parts.join("; ")}`);
    if (failed > 0 || passed === 0 || mine.some((r) => r.code !== 0)) failedAny = true;
  }
  // The suites' logs are long and CI keeps only part of them: repeat each failure at the end.
  const failures = results.flatMap((r) => failuresOf(r.suite));
  if (failures.length > 0) console.log(`\n===== failures =====\n${failures.join("\n")}`);
  return failedAny ? 1 : 0;
}

interface VitestJsonReport {
  testResults: {
    name: string;
    status: string;
    message?: string;
    assertionResults: { fullName: string; status: string; failureMessages: string[] }[];
  }[];
}

/** One line per failed test (or failed file), with the first lines of its error. */
function failuresOf(suite: Suite): string[] {
  const json = path.join(REPORTS, `${suite.id}.json`);
  if (!fs.existsSync(json)) return [`[${suite.id}] no report: the suite did not finish (see its log above)`];
  const report = JSON.parse(fs.readFileSync(json, "utf8")) as VitestJsonReport;
  const firstLines = (text: string | undefined) => (text ?? "").split("\n").filter((l) => l.trim() !== "").slice(0, 4).map((l) => `    ${l}`).join("\n");
  return report.testResults.flatMap((file) => {
    const where = path.relative(ROOT, file.name);
    const tests = file.assertionResults.filter((a) => a.status === "failed").map((a) => `[${suite.id}] ${where} > ${a.fullName}\n${firstLines(a.failureMessages[0])}`);
    if (tests.length === 0 && file.status === "failed") return [`[${suite.id}] ${where}\n${firstLines(file.message)}`];
    return tests;
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
