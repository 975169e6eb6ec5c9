/**
 * Test harness: starts a private RabbitMQ node of the release under test (tests/support/
 * broker-runtime.ts: the host's package, or a Debian chroot) on free 127.0.0.1 ports, inside a
 * fresh directory, with random admin credentials and no `guest` user.
 *
 * Only node built-ins are used. The server is started through /usr/lib/rabbitmq/bin, not the
 * /usr/sbin wrapper, which switches to the rabbitmq user and cannot write to the node's directory.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { CONTAINER_CONFIG_FILE, clusterStartsOneByOne, renderBrokerFiles } from "../../core/broker-config";
import { managementRequest } from "../../components/management/api";
import { parseBrokerConfig, type BrokerConfigInput } from "../../core/platform-config";
import { brokerRuntime, RABBITMQ_LIB } from "./broker-runtime";
import { endQuietly, mqttConnect } from "./clients";

const RABBITMQ_SERVER = path.join(RABBITMQ_LIB, "bin", "rabbitmq-server");
const RABBITMQCTL = path.join(RABBITMQ_LIB, "bin", "rabbitmqctl");
const HOST = "127.0.0.1" as const;

const CTL_WAIT_TIMEOUT_S = 60;
const OVERVIEW_TIMEOUT_MS = 60_000;
const PORT_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 60_000;
const LOG_TAIL_LINES = 60;

/** Everything a test needs to reach the broker; plain data, safe to pass through vitest `provide`. */
export interface BrokerInfo {
  /** e.g. "3.10.8", from GET /api/overview `rabbitmq_version`. */
  version: string;
  major: number;
  minor: number;
  host: typeof HOST;
  amqpPort: number;
  mqttPort: number;
  /** A second plain MQTT listener, free for a tenant's dedicated-port mapping. */
  tenantMqttPort: number;
  webMqttPort: number;
  managementPort: number;
  /** http://127.0.0.1:<managementPort> */
  managementUrl: string;
  adminUsername: string;
  adminPassword: string;
  nodeName: string;
  baseDir: string;
  /** With StartBrokerOptions.tls: the TLS listeners and the CA the broker's certificate chains to. */
  tls?: {
    mqttsPort: number;
    tenantMqttsPort: number;
    webMqttsPort: number;
    managementHttpsPort: number;
    amqpsPort: number;
    caCertPem: string;
    /** Whether the plaintext listeners are open too. */
    plaintext: boolean;
  };
}

export interface TestBroker extends BrokerInfo {
  /** Stops the node and removes its temp dir (unless kept). Idempotent. */
  stop(): Promise<void>;
  /** Runs `rabbitmqctl -n <node> <args>` against this node; throws unless it exits 0. */
  ctl(args: string[]): Promise<string>;
}

export interface StartBrokerOptions {
  /** For cluster members: the Erlang node name, shared cookie and admin, and every member's name. */
  member?: { nodeName: string; erlangCookie: string; adminUsername: string; adminPassword: string; clusterNodes: string[] };
  /** Broker model settings (as in the platform stack config) besides ports and version. */
  broker?: Omit<BrokerConfigInput, "version" | "listeners">;
  /** Appended verbatim to the generated rabbitmq.conf. */
  extraConf?: string;
  /** Offer password logins on AMQP 0-9-1 (off in the security baseline). */
  amqpPasswordLogins?: boolean;
  /** Enabled in addition to rabbitmq_management, rabbitmq_mqtt and rabbitmq_web_mqtt. */
  plugins?: string[];
  /** Keep the temp dir (logs, data) after stop(). */
  keepDir?: boolean;
  /** The open-files limit to render the connection caps from, as Docker's `docker.maxOpenFiles` does (RenderOptions.openFiles). */
  openFiles?: number;
  /**
   * TLS listeners with this CA bundle, certificate chain and key (written to the node's dir and
   * rendered by the product's renderer). `plaintext: false` renders the broker as production does,
   * without plaintext listeners; the management API is then reached over HTTPS with the CA.
   */
  tls?: { caCertPem: string; certPem: string; keyPem: string; depth: number; plaintext: boolean };
  /** Public keys (PEM) of the token signing keys `broker.tokens` lists, by key id: written to the node's dir. */
  tokenKeys?: Readonly<Record<string, string>>;
}

/**
 * Ports for nodes come from a block below the kernel's ephemeral range (32768-60999 by default), so
 * that no client's outgoing connection, in this process or a concurrent suite, can take a port
 * between the check and the node's bind (seen as a node that failed to start its listeners when
 * several suites ran at once). Each suite of the matrix has a block of its own (E2E_PORT_BLOCK,
 * set by tests/support/e2e-matrix.ts); a lone run picks one at random. Within a process ports
 * are handed out in order and never twice.
 */
export const PORT_BLOCK_SIZE = 1500;
export const PORT_BLOCK_COUNT = 13;
const PORT_BLOCKS_START = 12000;

function portBlock(): number {
  const configured = process.env.E2E_PORT_BLOCK;
  if (configured !== undefined && configured !== "") {
    const block = Number(configured);
    if (!Number.isInteger(block) || block < 0 || block >= PORT_BLOCK_COUNT) {
      throw new Error(`E2E_PORT_BLOCK=${configured}: expected a whole number from 0 to ${PORT_BLOCK_COUNT - 1}`);
    }
    return block;
  }
  return Math.floor(Math.random() * PORT_BLOCK_COUNT);
}

const blockStart = PORT_BLOCKS_START + portBlock() * PORT_BLOCK_SIZE;
let nextPortOffset = Math.floor(Math.random() * 100);

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ host: HOST, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A TCP port of this process's block that is free on 127.0.0.1 and was never handed out before. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error("freePort: no port");
  return port;
}

/**
 * `count` consecutive free ports of this process's block, never handed out before: the first is
 * returned. For published container ports, where node i's ports are node 0's plus i x an offset.
 */
export async function freePortRun(count: number): Promise<number> {
  for (;;) {
    if (nextPortOffset + count > PORT_BLOCK_SIZE) throw new Error(`freePortRun: the block of ${PORT_BLOCK_SIZE} ports from ${blockStart} is used up`);
    const first = blockStart + nextPortOffset;
    let free = 0;
    while (free < count && (await portIsFree(first + free))) free++;
    nextPortOffset += free === count ? count : free + 1;
    if (free === count) return first;
  }
}

/** `count` distinct free ports of this process's block. */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    if (nextPortOffset >= PORT_BLOCK_SIZE) throw new Error(`freePorts: the block of ${PORT_BLOCK_SIZE} ports from ${blockStart} is used up`);
    const port = blockStart + nextPortOffset++;
    // Busy ports (another program's listener, e.g. a system RabbitMQ on 25672) are skipped.
    if (await portIsFree(port)) ports.push(port);
  }
  return ports;
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Environment for both the server and rabbitmqctl: everything points into baseDir. */
function brokerEnv(dirs: {
  baseDir: string;
  nodeName: string;
  distPort: number;
  pidFile: string;
}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    // Never inherit another node's settings (e.g. RABBITMQ_NODENAME from the caller's shell).
    if (key.startsWith("RABBITMQ_") || key === "ERL_FLAGS" || key === "ERL_AFLAGS" || key === "ERL_ZFLAGS") continue;
    env[key] = value;
  }
  const { baseDir } = dirs;
  return {
    ...env,
    HOME: baseDir,
    RABBITMQ_NODENAME: dirs.nodeName,
    // Path without ".conf": RabbitMQ adds the extension.
    RABBITMQ_CONFIG_FILE: path.join(baseDir, "rabbitmq"),
    RABBITMQ_ADVANCED_CONFIG_FILE: path.join(baseDir, "advanced.config"),
    // Our own (empty) env file, so /etc/rabbitmq/rabbitmq-env.conf (NODENAME=rabbit@localhost) is not read.
    RABBITMQ_CONF_ENV_FILE: path.join(baseDir, "rabbitmq-env.conf"),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(baseDir, "enabled_plugins"),
    // Named explicitly: RabbitMQ 4.0.5's CLI finds no plugins directory of its own here
    // (`plugins_dir_does_not_exist`), and then knows no plugin command (list_mqtt_connections).
    RABBITMQ_PLUGINS_DIR: path.join(RABBITMQ_LIB, "lib", `rabbitmq_server-${brokerRuntime().versionText}`, "plugins"),
    RABBITMQ_MNESIA_BASE: path.join(baseDir, "mnesia"),
    RABBITMQ_LOG_BASE: path.join(baseDir, "log"),
    RABBITMQ_DIST_PORT: String(dirs.distPort),
    RABBITMQ_PID_FILE: dirs.pidFile,
    // Distribution listener on loopback only (the AMQP/MQTT/HTTP listeners are set in rabbitmq.conf).
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "-kernel inet_dist_use_interface {127,0,0,1}",
    // Only matters if no epmd runs yet and this node has to start one.
    ERL_EPMD_ADDRESS: "127.0.0.1",
  };
}

interface CtlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCtl(env: NodeJS.ProcessEnv, args: string[], timeoutMs: number): Promise<CtlResult> {
  const cmd = brokerRuntime().command(RABBITMQCTL, args);
  return new Promise((resolve) => {
    execFile(
      cmd.file,
      cmd.args,
      { env, cwd: env.HOME, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

function childRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (!childRunning(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off("exit", onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once("exit", onExit);
  });
}

interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
}

/** Live (non-zombie) processes from /proc; undefined where /proc is not available. */
function listProcesses(): ProcInfo[] | undefined {
  let entries: string[];
  try {
    entries = fs.readdirSync("/proc");
  } catch {
    return undefined;
  }
  const result: ProcInfo[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const [state, ppid, pgid] = fields;
    if (state === undefined || state === "Z" || state === "X") continue;
    result.push({ pid: Number(entry), ppid: Number(ppid), pgid: Number(pgid) });
  }
  return result;
}

/**
 * Live processes that belong to the node: its process group (wrapper shell, beam.smp), every
 * descendant of the wrapper (erl_child_setup and inet_gethost run in their own sessions), and
 * any pid seen earlier (`known`, since orphans are re-parented away from the wrapper).
 */
function nodeProcesses(rootPid: number, known: ReadonlySet<number>): number[] {
  const procs = listProcesses();
  if (procs === undefined) {
    // No /proc: fall back to the process group only.
    try {
      process.kill(-rootPid, 0);
      return [rootPid];
    } catch {
      return [];
    }
  }
  const children = new Map<number, number[]>();
  for (const p of procs) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const found = new Set<number>();
  const stack = procs.filter((p) => p.pid === rootPid || p.pgid === rootPid || known.has(p.pid)).map((p) => p.pid);
  while (stack.length > 0) {
    const pid = stack.pop();
    if (pid === undefined || found.has(pid)) continue;
    found.add(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return [...found];
}

function readPid(pidFile: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(pidFile, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function tailFile(file: string, lines: number): string {
  try {
    const all = fs.readFileSync(file, "utf8").split("\n");
    return all.slice(-lines).join("\n");
  } catch (err) {
    return `(cannot read ${file}: ${String(err)})`;
  }
}

function logTail(baseDir: string, stdoutLog: string): string {
  const parts: string[] = [];
  const logDir = path.join(baseDir, "log");
  let logFiles: string[] = [];
  try {
    logFiles = fs
      .readdirSync(logDir)
      .filter((f) => f.endsWith(".log"))
      .map((f) => path.join(logDir, f));
  } catch {
    // no log dir yet
  }
  for (const file of [stdoutLog, ...logFiles]) {
    parts.push(`--- tail of ${file} ---\n${tailFile(file, LOG_TAIL_LINES)}`);
  }
  return parts.join("\n");
}


function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    const done = (ok: boolean): void => {
      socket.removeAllListeners();
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000);
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.once("timeout", () => done(false));
  });
}

function parseVersion(version: string): { major: number; minor: number } {
  const match = /^(\d+)\.(\d+)/.exec(version);
  if (match === null || match[1] === undefined || match[2] === undefined) {
    throw new Error(`unexpected rabbitmq_version ${JSON.stringify(version)}`);
  }
  return { major: Number(match[1]), minor: Number(match[2]) };
}

/** The version (x.y.z) of the release under test, read before it starts from its lib directory name. */
export function installedVersionText(): string {
  return brokerRuntime().versionText;
}

export async function startBroker(opts: StartBrokerOptions = {}): Promise<TestBroker> {
  const runtime = brokerRuntime();
  const baseDir = fs.mkdtempSync(path.join(runtime.workDir, "rmq-e2e-"));
  const nodeName = opts.member?.nodeName ?? `e2e-${process.pid}-${randomHex(4)}@localhost`;
  const adminUsername = opts.member?.adminUsername ?? `admin-${randomHex(4)}`;
  const adminPassword = opts.member?.adminPassword ?? randomHex(24);
  const [amqpPort, mqttPort, webMqttPort, managementPort, distPort, tenantMqttPort, mqttsPort, tenantMqttsPort, webMqttsPort, managementHttpsPort, amqpsPort] =
    await freePorts(11);
  if (
    amqpPort === undefined ||
    mqttPort === undefined ||
    tenantMqttPort === undefined ||
    webMqttPort === undefined ||
    managementPort === undefined ||
    distPort === undefined ||
    mqttsPort === undefined ||
    tenantMqttsPort === undefined ||
    webMqttsPort === undefined ||
    managementHttpsPort === undefined ||
    amqpsPort === undefined
  ) {
    throw new Error("startBroker: could not allocate ports");
  }
  const pidFile = path.join(baseDir, "rabbitmq.pid");
  const stdoutLog = path.join(baseDir, "server-stdout.log");
  const plaintext = opts.tls?.plaintext ?? true;
  const managementUrl = plaintext ? `http://${HOST}:${managementPort}` : `https://${HOST}:${managementHttpsPort}`;
  const keepDir = opts.keepDir === true;

  fs.mkdirSync(path.join(baseDir, "mnesia"));
  fs.mkdirSync(path.join(baseDir, "log"));
  fs.writeFileSync(path.join(baseDir, "rabbitmq-env.conf"), "# intentionally empty (test harness)\n");
  // The node and rabbitmqctl read the Erlang cookie from the same HOME. Written before either starts:
  // left to Erlang, a `rabbitmqctl wait` that starts before the node has written its cookie writes
  // one of its own, and is then refused ("Invalid challenge reply", seen once in CI on 4.3.6).
  // Cluster members share one cookie.
  fs.writeFileSync(path.join(baseDir, ".erlang.cookie"), opts.member?.erlangCookie ?? randomHex(20).toUpperCase(), { mode: 0o400 });
  // The product's renderer writes the broker's files; only ports and the bind address are the test's.
  const model = parseBrokerConfig(
    {
      plaintextListeners: plaintext,
      ...opts.broker,
      version: installedVersionText(),
      listeners: {
        mqtt: mqttPort,
        webMqtt: webMqttPort,
        management: managementPort,
        amqp: amqpPort,
        tenantMqtt: plaintext ? [tenantMqttPort] : [],
        mqtts: mqttsPort,
        webMqtts: webMqttsPort,
        managementHttps: managementHttpsPort,
        amqps: amqpsPort,
        tenantMqtts: [tenantMqttsPort],
      },
    },
    "test broker",
  );
  let tlsFiles: { caFile: string; certFile: string; keyFile: string; depth: number } | undefined;
  if (opts.tls) {
    const dir = path.join(baseDir, "tls");
    fs.mkdirSync(dir, { mode: 0o700 });
    tlsFiles = { caFile: path.join(dir, "ca.pem"), certFile: path.join(dir, "cert.pem"), keyFile: path.join(dir, "key.pem"), depth: opts.tls.depth };
    fs.writeFileSync(tlsFiles.caFile, opts.tls.caCertPem);
    fs.writeFileSync(tlsFiles.certFile, opts.tls.certPem);
    fs.writeFileSync(tlsFiles.keyFile, opts.tls.keyPem, { mode: 0o600 });
  }
  let tokenKeyFiles: Record<string, string> | undefined;
  if (opts.tokenKeys !== undefined) {
    const dir = path.join(baseDir, "oauth2");
    fs.mkdirSync(dir, { mode: 0o700 });
    tokenKeyFiles = {};
    for (const [id, pem] of Object.entries(opts.tokenKeys)) {
      tokenKeyFiles[id] = path.join(dir, `${id}.pem`);
      fs.writeFileSync(tokenKeyFiles[id], pem);
    }
  }
  const files = renderBrokerFiles(model, {
    ...(tlsFiles ? { tls: tlsFiles } : {}),
    ...(tokenKeyFiles ? { tokenKeyFiles } : {}),
    adminUsername,
    adminPassword,
    bindAddress: HOST,
    amqpPasswordLogins: opts.amqpPasswordLogins === true,
    ...(opts.openFiles !== undefined ? { openFiles: opts.openFiles } : {}),
    ...(opts.member ? { cluster: { nodes: opts.member.clusterNodes } } : {}),
  });
  let conf = `${files.rabbitmqConf}\n## Test harness\nlog.file.level = info\n`;
  if (opts.extraConf !== undefined && opts.extraConf !== "") conf += `${opts.extraConf}\n`;
  // As in the containers: the rendered file alone in the directory RABBITMQ_CONFIG_FILES names.
  const confDir = path.join(baseDir, "rabbitmq-mqtt.d");
  fs.mkdirSync(confDir);
  fs.writeFileSync(path.join(confDir, path.basename(CONTAINER_CONFIG_FILE)), conf, { mode: 0o600 });
  const plugins = [...new Set<string>([...model.plugins, ...(opts.plugins ?? [])])];
  fs.writeFileSync(path.join(baseDir, "enabled_plugins"), `[${plugins.join(",")}].\n`);

  const base = brokerEnv({ baseDir, nodeName, distPort, pidFile });
  const env = {
    ...base,
    ...files.env,
    RABBITMQ_CONFIG_FILES: confDir,
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: `${files.env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] ?? ""} ${base.RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS}`.trim(),
  };

  const out = fs.openSync(stdoutLog, "a");
  let child: ChildProcess;
  try {
    // detached: the wrapper shell, beam.smp and its helpers get their own process group,
    // which stop() can kill as a whole if the graceful stop fails.
    const cmd = runtime.command(RABBITMQ_SERVER, []);
    child = spawn(cmd.file, cmd.args, { env, cwd: baseDir, detached: true, stdio: ["ignore", out, out] });
  } finally {
    fs.closeSync(out);
  }
  const pgid = child.pid;
  if (pgid === undefined) {
    fs.rmSync(baseDir, { recursive: true, force: true });
    throw new Error(`startBroker: could not spawn ${RABBITMQ_SERVER}`);
  }
  child.unref();
  let spawnError: Error | undefined;
  child.on("error", (err) => {
    spawnError = err;
  });

  const killAll = (pids: readonly number[]): void => {
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };

  // Last resort if the test process exits without calling stop(): kill everything, drop the dir.
  const onProcessExit = (): void => {
    const known = new Set<number>();
    const nodePid = readPid(pidFile);
    if (nodePid !== undefined) known.add(nodePid);
    killAll(nodeProcesses(pgid, known));
    if (!keepDir) fs.rmSync(baseDir, { recursive: true, force: true });
  };
  process.once("exit", onProcessExit);

  let stopPromise: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopPromise ??= (async () => {
      // Remember every process of the node now: helpers get re-parented once beam.smp exits.
      const known = new Set<number>(nodeProcesses(pgid, new Set()));
      const nodePid = readPid(pidFile);
      if (nodePid !== undefined) known.add(nodePid);
      if (childRunning(child)) {
        // Graceful: `stop <pidfile>` returns once the OS process has exited.
        await runCtl(env, ["-n", nodeName, "stop", pidFile], STOP_TIMEOUT_MS);
        await waitForExit(child, 15_000);
      }
      const deadline = Date.now() + 15_000;
      for (;;) {
        const alive = nodeProcesses(pgid, known);
        if (alive.length === 0) break;
        if (Date.now() > deadline) {
          throw new Error(`broker ${nodeName}: processes ${alive.join(",")} still alive after SIGKILL`);
        }
        killAll(alive);
        await sleep(100);
      }
      process.removeListener("exit", onProcessExit);
      if (!keepDir) fs.rmSync(baseDir, { recursive: true, force: true });
    })();
    return stopPromise;
  };

  const fail = async (reason: string): Promise<never> => {
    const tail = logTail(baseDir, stdoutLog);
    try {
      await stop();
    } catch (err) {
      throw new Error(`startBroker(${nodeName}): ${reason}\n(stop also failed: ${String(err)})\n${tail}`);
    }
    throw new Error(`startBroker(${nodeName}): ${reason}\n${tail}`);
  };

  // 1. rabbitmqctl wait, raced against the server exiting early (bad config, port in use, ...).
  const exited = new Promise<string>((resolve) => {
    child.once("exit", (code, signal) => resolve(`rabbitmq-server exited early (code ${code}, signal ${signal})`));
  });
  const waited = runCtl(
    env,
    ["-n", nodeName, "wait", pidFile, "--timeout", String(CTL_WAIT_TIMEOUT_S)],
    (CTL_WAIT_TIMEOUT_S + 15) * 1000,
  ).then((r) => (r.code === 0 ? "ok" : `rabbitmqctl wait failed (code ${r.code}): ${r.stdout}${r.stderr}`));
  const waitResult = await Promise.race([waited, exited]);
  if (spawnError !== undefined) return fail(`spawn error: ${spawnError.message}`);
  if (waitResult !== "ok") return fail(waitResult);

  // 2. Management API answers with the admin credentials.
  let version: string | undefined;
  let lastOverviewError = "";
  const overviewDeadline = Date.now() + OVERVIEW_TIMEOUT_MS;
  while (version === undefined) {
    if (!childRunning(child)) return fail("rabbitmq-server exited while waiting for the management API");
    try {
      const res = await managementRequest(
        { managementUrl, username: adminUsername, password: adminPassword, ...(opts.tls ? { caCertPem: opts.tls.caCertPem } : {}) },
        "GET",
        "overview",
        undefined,
        5000,
      );
      if (res.status === 200) {
        const body = res.body;
        const v = typeof body === "object" && body !== null ? (body as Record<string, unknown>).rabbitmq_version : undefined;
        if (typeof v !== "string") return fail(`GET /api/overview has no rabbitmq_version: ${JSON.stringify(body)}`);
        version = v;
        break;
      }
      lastOverviewError = `HTTP ${res.status}: ${JSON.stringify(res.body)}`;
    } catch (err) {
      lastOverviewError = String(err);
    }
    if (Date.now() > overviewDeadline) return fail(`GET /api/overview never answered 200 (last: ${lastOverviewError})`);
    await sleep(250);
  }

  // 3. MQTT (and Web MQTT) listeners accept TCP connections.
  const listenersToCheck: [string, number][] = [
    ...(plaintext ? ([["MQTT", mqttPort], ["MQTT (tenant listener)", tenantMqttPort], ["Web MQTT", webMqttPort]] as [string, number][]) : []),
    ...(opts.tls ? ([["MQTT over TLS", mqttsPort], ["MQTT over TLS (tenant listener)", tenantMqttsPort], ["Web MQTT over TLS", webMqttsPort]] as [string, number][]) : []),
  ];
  for (const [name, port] of listenersToCheck) {
    const portDeadline = Date.now() + PORT_TIMEOUT_MS;
    while (!(await canConnect(port))) {
      if (Date.now() > portDeadline) return fail(`${name} port ${port} does not accept connections`);
      await sleep(200);
    }
  }

  const { major, minor } = parseVersion(version);
  return {
    version,
    major,
    minor,
    host: HOST,
    amqpPort,
    mqttPort,
    tenantMqttPort,
    webMqttPort,
    managementPort,
    managementUrl,
    adminUsername,
    adminPassword,
    nodeName,
    baseDir,
    ...(opts.tls
      ? { tls: { mqttsPort, tenantMqttsPort, webMqttsPort, managementHttpsPort, amqpsPort, caCertPem: opts.tls.caCertPem, plaintext } }
      : {}),
    stop,
    ctl: async (args: string[]) => {
      const r = await runCtl(env, ["-n", nodeName, ...args], 60_000);
      if (r.code !== 0) throw new Error(`rabbitmqctl ${args.join(" ")} exited ${String(r.code)}: ${r.stderr.slice(0, 500)}`);
      return r.stdout;
    },
  };
}

/**
 * Starts `count` local nodes that form one cluster from the rendered classic peer discovery
 * settings, in the order the targets start them (clusterStartsOneByOne): from 3.13 all at once
 * (Pulumi creates the Docker containers in parallel; the Kubernetes StatefulSet has
 * `podManagementPolicy: Parallel`), since a 4.x node that finds none of its peers waits for them;
 * before 3.13 one by one, so that each joins the MQTT client-id Raft cluster of the ones before.
 */
export async function startCluster(count: number, opts: Omit<StartBrokerOptions, "member"> = {}): Promise<TestBroker[]> {
  const tag = `${process.pid}-${randomHex(3)}`;
  const clusterNodes = Array.from({ length: count }, (_, i) => `e2e-${tag}-${i}@localhost`);
  const shared = { erlangCookie: randomHex(20).toUpperCase(), adminUsername: `admin-${randomHex(4)}`, adminPassword: randomHex(24), clusterNodes };
  const start = (nodeName: string) => startBroker({ ...opts, member: { ...shared, nodeName } });
  let started: PromiseSettledResult<TestBroker>[];
  if (clusterStartsOneByOne(parseVersion(installedVersionText()))) {
    started = [];
    for (const nodeName of clusterNodes) {
      const [r] = await Promise.allSettled([start(nodeName)]);
      started.push(r);
      if (r.status === "rejected") break;
    }
  } else {
    started = await Promise.allSettled(clusterNodes.map(start));
  }
  const members = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failures = started.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
  if (failures.length > 0) {
    for (const m of members) await m.stop();
    throw new Error(`startCluster: ${failures.length} of ${count} members failed:\n${failures.map(String).join("\n")}`);
  }
  try {
    await Promise.all(members.map((m, i) => waitForMqttLogin(m, `cluster-ready-${tag}-${i}`)));
  } catch (err) {
    for (const m of members) await m.stop();
    throw err;
  }
  return members;
}

const MQTT_READY_TIMEOUT_MS = 90_000;

/**
 * A listener that accepts TCP is not yet a node that answers CONNECT: on 3.10 every CONNECT
 * registers its client id in a Ra cluster of all members, which has no leader until the members
 * have found each other (seen in CI: a first CONNECT on a loaded machine got no CONNACK in 5 s).
 * Waits until the admin logs in over MQTT on this member, as a client would retry.
 */
/** Logs the admin in over the node's plain MQTT listener and out again: why it was refused, or undefined. */
export async function adminMqttLoginRefusal(b: BrokerInfo, clientId: string): Promise<string | undefined> {
  const c = await mqttConnect({ port: b.mqttPort, username: b.adminUsername, password: b.adminPassword, clientId });
  if (!c.ok) return c.reason;
  await endQuietly(c.client);
  return undefined;
}

async function waitForMqttLogin(b: TestBroker, clientId: string): Promise<void> {
  if (b.tls !== undefined && !b.tls.plaintext) return;
  const deadline = Date.now() + MQTT_READY_TIMEOUT_MS;
  for (;;) {
    const last = await adminMqttLoginRefusal(b, clientId);
    if (last === undefined) return;
    if (Date.now() > deadline) throw new Error(`startCluster: ${b.nodeName} never accepted an MQTT login in ${MQTT_READY_TIMEOUT_MS} ms (last: ${last})`);
    await sleep(500);
  }
}

export interface MqttConnectionInfo {
  clientId: string;
  user: string;
  vhost: string;
}

/**
 * `rabbitmqctl list_mqtt_connections` crashes on RabbitMQ 4.0.5 when the node has more than one
 * MQTT listener (a tenant's dedicated port): `case_clause` in rabbit_networking:listener_of_protocol/1
 * (seen here; 3.10.8 and 4.3.6 list them). Asserted in tests/e2e/tls-login.e2e.test.ts.
 */
export function listMqttConnectionsCrashesWithTwoListeners(b: BrokerInfo): boolean {
  return b.major === 4 && b.minor === 0;
}

/**
 * The live MQTT connection of a client id: which user and vhost it landed in, as the broker reports
 * it; undefined if the broker lists none. On 4.0 the management API answers instead of the CLI
 * (see above); it learns of connections from stats emitted every few seconds, so it is polled.
 */
export async function mqttConnectionOf(b: TestBroker, clientId: string): Promise<MqttConnectionInfo | undefined> {
  if (listMqttConnectionsCrashesWithTwoListeners(b)) {
    const conn = { managementUrl: b.managementUrl, username: b.adminUsername, password: b.adminPassword, ...(b.tls ? { caCertPem: b.tls.caCertPem } : {}) };
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await managementRequest(conn, "GET", "connections");
      if (res.status !== 200 || !Array.isArray(res.body)) throw new Error(`GET /api/connections answered ${res.status}`);
      const found = (res.body as { protocol?: string; user?: string; vhost?: string; client_properties?: { client_id?: string } }[])
        .filter((c) => typeof c.protocol === "string" && c.protocol.startsWith("MQTT"))
        .map((c) => ({ clientId: c.client_properties?.client_id ?? "", user: c.user ?? "", vhost: c.vhost ?? "" }))
        .find((c) => c.clientId === clientId);
      if (found !== undefined || Date.now() > deadline) return found;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  const out = await b.ctl(["list_mqtt_connections", "client_id", "user", "vhost", "--no-table-headers", "--quiet"]);
  return out
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const [id = "", user = "", vhost = ""] = l.split("\t");
      return { clientId: id, user, vhost };
    })
    .find((c) => c.clientId === clientId);
}

/** The rabbitmq.conf the node runs with: the product's rendering plus the harness's lines. */
export function renderedConfOf(b: BrokerInfo): string {
  return fs.readFileSync(path.join(b.baseDir, "rabbitmq-mqtt.d", path.basename(CONTAINER_CONFIG_FILE)), "utf8");
}

/** The serializable part of a TestBroker. */
export function brokerInfo(broker: TestBroker): BrokerInfo {
  return {
    version: broker.version,
    major: broker.major,
    minor: broker.minor,
    host: broker.host,
    amqpPort: broker.amqpPort,
    mqttPort: broker.mqttPort,
    tenantMqttPort: broker.tenantMqttPort,
    webMqttPort: broker.webMqttPort,
    managementPort: broker.managementPort,
    managementUrl: broker.managementUrl,
    adminUsername: broker.adminUsername,
    adminPassword: broker.adminPassword,
    nodeName: broker.nodeName,
    baseDir: broker.baseDir,
    ...(broker.tls ? { tls: broker.tls } : {}),
  };
}
