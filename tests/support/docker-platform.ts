/**
 * The shipped `dev` platform stack (Pulumi.dev.yaml) applied to the test's Docker engine through
 * the Docker hooks, as `pulumi up` applies it. What is adapted to the test, and nothing else:
 * - the image tag and broker.version: the matrix release's local image (scripts/broker-image.sh);
 * - listener ports: a run of free ports of the suite's block (the machine's standard ports may be
 *   taken), with docker.hostPortOffset set to the run's length;
 * - docker.network and docker.namePrefix: per suite, so suites side by side on one engine differ;
 * - docker.maxOpenFiles: this machine's hard limit, which a container may not exceed;
 * - nodes: 1, or 3 for the cluster variant;
 * - broker.tokens.issuer: a free port, and one tenant stack whose `tokenApps` output (given to the
 *   mocks as that stack's outputs) names an identity provider the test runs in a container of its
 *   own on the platform's network (tests/support/idp-container.ts).
 */
import * as fs from "node:fs";
import { CONTAINER_CONFIG_FILE } from "../../core/broker-config";
import { freePortRun, type BrokerInfo, type TestBroker } from "./broker";
import { HOST } from "./clients";
import { applyStack, loadStackConfig } from "./apply-stack";
import { matrixEntry } from "./broker-runtime";
import { brokerImage, dockerCall, dockerExec, nodeImage, type DockerEngine } from "./docker-engine";
import { deleteDockerResource, type DockerTarget } from "./docker-hooks";
import { prepareIdp, startIdpContainer, type ContainerIdp } from "./idp-container";
import type { StackRunResult } from "./run-stack";

/** What the Docker tests need besides BrokerInfo; plain data, passed through vitest `provide`. */
export interface DockerPlatformInfo {
  readonly socketPath: string;
  readonly image: string;
  readonly prefix: string;
  readonly network: string;
  /** Container names, node 0 first. */
  readonly containers: string[];
  /** The platform stack's config as applied (ports, names). */
  readonly platformConfig: Record<string, unknown>;
  /** The platform stack's outputs (CA, issuers, admin, tuningNotApplied, ...). */
  readonly outputs: Record<string, unknown>;
  readonly secretOutputs: string[];
  /**
   * The token signing keys' private keys (PEM) by key id, from the state of the stack's
   * tls.PrivateKey resources: what the token issuer signs with. The stack does not export them.
   */
  readonly tokenSigningKeys: Record<string, string>;
  /** The token issuer the stack deployed, and the app and identity provider it serves. */
  readonly tokenIssuer: {
    readonly container: string;
    /** The URL the stack exports (on the published port). */
    readonly url: string;
    readonly tenant: string;
    readonly vhost: string;
    readonly app: string;
    readonly audience: string;
    readonly idp: ContainerIdp;
  };
  /** How long `pulumi up` of the platform took, and until every container was healthy. */
  readonly applySeconds: number;
  readonly healthySeconds: number;
}

const LISTENER_KEYS = ["mqtts", "webMqtts", "managementHttps", "tenantMqtts", "mqtt", "webMqtt", "management", "amqp", "tenantMqtt"] as const;
type ListenerKey = (typeof LISTENER_KEYS)[number];

/** This process's hard limit on open files: what a container here may have at most. */
export function hostOpenFilesLimit(): number {
  const line = fs.readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"));
  const hard = line?.trim().split(/\s+/)[4];
  if (hard === undefined || !/^\d+$/.test(hard)) throw new Error(`cannot read the open-files limit: ${line}`);
  return Number(hard);
}

/** Removes the containers, volumes and network of a platform with this prefix (leftovers included). */
export async function removeDockerPlatform(socketPath: string, prefix: string, nodes = 3): Promise<void> {
  const target: DockerTarget = { socketPath, images: {} };
  const hosts = Array.from({ length: nodes }, (_, i) => `${prefix}-${i}`);
  for (const h of [...hosts, `${prefix}-token-issuer`, `${prefix}-idp`]) await deleteDockerResource(target, "docker:index/container:Container", h, {});
  for (const h of hosts) await deleteDockerResource(target, "docker:index/volume:Volume", `${h}-data`, {});
  await deleteDockerResource(target, "docker:index/network:Network", prefix, {});
}

interface Inspect {
  State: { Running: boolean; Status: string; Health?: { Status: string; Log?: { Output: string }[] } };
}

/** Waits until every container's health check passes (the image's HEALTHCHECK as the stack declares it). */
export async function waitHealthy(socketPath: string, containers: readonly string[], timeoutMs = 240_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = await Promise.all(containers.map((c) => dockerCall<Inspect>(socketPath, "GET", `/containers/${c}/json`)));
    if (states.every((s) => s.State.Health?.Status === "healthy")) return;
    if (Date.now() > deadline) {
      const report = states.map((s, i) => `${containers[i]}: ${s.State.Status}/${s.State.Health?.Status ?? "no health"} ${s.State.Health?.Log?.at(-1)?.Output ?? ""}`);
      throw new Error(`not healthy after ${timeoutMs} ms:\n${report.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export interface AppliedDockerPlatform {
  readonly info: DockerPlatformInfo;
  /** One BrokerInfo per node, reached through its published ports. */
  readonly nodes: BrokerInfo[];
  readonly result: StackRunResult;
  readonly target: DockerTarget;
  /** The stack's config as applied, and the outputs of the stacks it references. */
  readonly config: Record<string, unknown>;
  readonly stackOutputs: Record<string, Record<string, unknown>>;
}

export interface DevPlatformOptions {
  /** Container, volume and network names (default `e2e-<series>-<nodes>n`). */
  readonly prefix?: string;
  /** Merged into the stack's `platform.broker.tls`, for a test of another TLS setting. */
  readonly tls?: Record<string, unknown>;
}

/** Applies the dev platform stack to the engine and waits until every node is healthy. */
export async function applyDevPlatform(engine: DockerEngine, series: string, nodes: 1 | 3, opts: DevPlatformOptions = {}): Promise<AppliedDockerPlatform> {
  const image = await brokerImage(engine, matrixEntry(series).imageSuite);
  const issuerBase = await nodeImage(engine);
  const version = /:(\d+\.\d+\.\d+)-management$/.exec(image)?.[1];
  if (version === undefined) throw new Error(`unexpected image name ${image}`);
  const prefix = opts.prefix ?? `e2e-${series.replace(".", "")}-${nodes}n`;
  await removeDockerPlatform(engine.socketPath, prefix);

  const stackConfig = loadStackConfig("dev");
  const platform = structuredClone(stackConfig["platform"]) as Record<string, unknown> & {
    broker: Record<string, unknown> & { listeners: Record<string, unknown> };
    docker: Record<string, unknown>;
  };
  // One more port after the nodes' listeners: the token issuer's.
  const base = await freePortRun(LISTENER_KEYS.length * nodes + 1);
  const port = (k: ListenerKey) => base + LISTENER_KEYS.indexOf(k);
  const issuerPort = base + LISTENER_KEYS.length * nodes;
  for (const k of LISTENER_KEYS) {
    const shipped = platform.broker.listeners[k];
    platform.broker.listeners[k] = Array.isArray(shipped) ? [port(k)] : port(k);
  }
  const declaredImage = `rabbitmq:${version}-management`;
  platform.image = declaredImage;
  platform.nodes = nodes;
  platform.broker.version = version;
  if (opts.tls !== undefined) platform.broker.tls = { ...(platform.broker.tls as Record<string, unknown>), ...opts.tls };
  platform.docker = { ...platform.docker, network: prefix, namePrefix: prefix, hostPortOffset: LISTENER_KEYS.length, maxOpenFiles: hostOpenFilesLimit() };
  const idp = await prepareIdp(prefix);
  const apps = { stack: "organization/rabbitmq-mqtt/e2e-apps", tenant: "e2e-apps", vhost: "e2e-apps", app: "web", audience: "e2e-web-app" };
  const tokens = platform.broker["tokens"] as { issuer?: Record<string, unknown> } | undefined;
  if (tokens?.issuer === undefined) throw new Error("the dev stack declares no token issuer (platform.broker.tokens.issuer)");
  tokens.issuer = { ...tokens.issuer, port: issuerPort, tenantStacks: [apps.stack] };
  const tokenApps = {
    tenant: apps.tenant,
    vhost: apps.vhost,
    apps: [
      {
        name: apps.app,
        identityProvider: { issuer: idp.issuer, audience: apps.audience, caCertificatePem: idp.caCertPem, algorithms: ["RS256"] },
        grants: { subscribe: ["client/{client}/#"], publish: ["activity/{user}/#"] },
        clientIdsPerUser: 2,
        tokenLifetimeSeconds: 300,
      },
    ],
  };
  const config = { ...stackConfig, platform };

  const target: DockerTarget = { socketPath: engine.socketPath, images: { [declaredImage]: image } };
  const stackOutputs = { [apps.stack]: { tokenApps } };
  const t0 = Date.now();
  const result = await applyStack("dev", config, stackOutputs, undefined, target);
  await startIdpContainer(engine.socketPath, prefix, issuerBase, idp);
  const applySeconds = (Date.now() - t0) / 1000;
  const containers = Array.from({ length: nodes }, (_, i) => `${prefix}-${i}`);
  const issuerContainer = `${prefix}-token-issuer`;
  await waitHealthy(engine.socketPath, [...containers, issuerContainer]);
  const healthySeconds = (Date.now() - t0) / 1000;

  const [major = 0, minor = 0] = version.split(".").map(Number);
  const published = (k: ListenerKey, i: number) => port(k) + i * LISTENER_KEYS.length;
  const caCertPem = result.outputs["caCertificatePem"] as string;
  const nodeInfos: BrokerInfo[] = containers.map((c, i) => ({
    version,
    major,
    minor,
    host: HOST,
    amqpPort: published("amqp", i),
    mqttPort: published("mqtt", i),
    tenantMqttPort: published("tenantMqtt", i),
    webMqttPort: published("webMqtt", i),
    managementPort: published("management", i),
    managementUrl: `http://${HOST}:${published("management", i)}`,
    adminUsername: String(result.outputs["adminUsername"]),
    adminPassword: String(result.outputs["adminPassword"]),
    nodeName: `rabbit@${c}`,
    baseDir: "",
    tls: {
      mqttsPort: published("mqtts", i),
      tenantMqttsPort: published("tenantMqtts", i),
      webMqttsPort: published("webMqtts", i),
      managementHttpsPort: published("managementHttps", i),
      amqpsPort: 0,
      caCertPem,
      plaintext: true,
    },
  }));
  return {
    info: {
      socketPath: engine.socketPath,
      image,
      prefix,
      network: prefix,
      containers,
      platformConfig: platform,
      outputs: result.outputs,
      secretOutputs: result.secretOutputs,
      tokenSigningKeys: tokenSigningKeysOf(result),
      tokenIssuer: { container: issuerContainer, url: String((result.outputs["tokens"] as { issuerUrl?: unknown } | undefined)?.issuerUrl), ...apps, idp },
      applySeconds,
      healthySeconds,
    },
    nodes: nodeInfos,
    result,
    target,
    config,
    stackOutputs,
  };
}

/** The token signing keys' private keys by id, from the state of the stack's tls.PrivateKey resources. */
function tokenSigningKeysOf(result: StackRunResult): Record<string, string> {
  return Object.fromEntries(
    result.registered
      .filter((r) => r.type === "tls:index/privateKey:PrivateKey" && r.name.startsWith("token-keys-"))
      .map((r) => [r.name.slice("token-keys-".length), String(r.state["privateKeyPem"])]),
  );
}

/**
 * A second `pulumi up` of an applied platform with its config changed by `change` (ports, names
 * and the referenced stacks stay): unchanged resources are kept, changed containers replaced as
 * the engine replaces them (tests/support/broker-mocks.ts); returns once every container is healthy.
 */
export async function updateDevPlatform(applied: AppliedDockerPlatform, change: (platform: Record<string, unknown> & { broker: Record<string, unknown> }) => void): Promise<AppliedDockerPlatform> {
  const platform = structuredClone(applied.info.platformConfig) as Record<string, unknown> & { broker: Record<string, unknown> };
  change(platform);
  const config = { ...applied.config, platform };
  const t0 = Date.now();
  const result = await applyStack("dev", config, applied.stackOutputs, applied.result, applied.target);
  const applySeconds = (Date.now() - t0) / 1000;
  await waitHealthy(applied.info.socketPath, [...applied.info.containers, applied.info.tokenIssuer.container]);
  return {
    ...applied,
    config,
    result,
    info: {
      ...applied.info,
      platformConfig: platform,
      outputs: result.outputs,
      secretOutputs: result.secretOutputs,
      tokenSigningKeys: tokenSigningKeysOf(result),
      applySeconds,
      healthySeconds: (Date.now() - t0) / 1000,
    },
  };
}

/**
 * Node `i` of an applied platform as a TestBroker: the management API over HTTPS on its published
 * port (as the stack exports it), `rabbitmqctl` run inside the container, and `stop` removing the
 * whole platform.
 */
export function dockerTestBroker(applied: AppliedDockerPlatform, i = 0): TestBroker {
  const node = applied.nodes[i];
  const container = applied.info.containers[i];
  if (node?.tls === undefined || container === undefined) throw new Error(`the platform has no node ${i}`);
  const { socketPath, prefix } = applied.info;
  let stopped = false;
  return {
    ...node,
    managementUrl: `https://${HOST}:${node.tls.managementHttpsPort}`,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await removeDockerPlatform(socketPath, prefix, applied.nodes.length);
    },
    ctl: async (args: string[]) => {
      const r = await dockerExec(socketPath, container, ["rabbitmqctl", ...args]);
      if (r.code !== 0) throw new Error(`rabbitmqctl ${args.join(" ")} in ${container} exited ${r.code}: ${r.stderr.slice(0, 500)}`);
      return r.stdout;
    },
  };
}

/** The configuration file a node of the platform runs with, read from inside its container. */
export async function containerRenderedConf(applied: AppliedDockerPlatform, i = 0): Promise<string> {
  const container = applied.info.containers[i];
  if (container === undefined) throw new Error(`the platform has no node ${i}`);
  const r = await dockerExec(applied.info.socketPath, container, ["cat", CONTAINER_CONFIG_FILE]);
  if (r.code !== 0) throw new Error(`cat ${CONTAINER_CONFIG_FILE} in ${container} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}
