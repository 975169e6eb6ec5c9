/**
 * The platform stack's broker model: the part of the `platform` stack config that decides the
 * broker's own files (listeners, plugins, resource thresholds, MQTT sessions, tuning). Pure, so
 * the renderer and its rules are unit-tested without Pulumi. Deployment targets (Docker,
 * Kubernetes) build on this model.
 */
import { z } from "zod";
import { ConfigError, formatPath, type ConfigIssue } from "./errors";
import { TUNING_PROFILES, tuningFor, type Tuning } from "./tuning";

export const PLATFORM_KEY = "platform";

export interface BrokerVersionFull {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

export function parseBrokerVersion(text: string): BrokerVersionFull | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

const port = z
  .number({ error: "must be a port number" })
  .int({ error: "must be a whole number" })
  .min(1, { error: "must be at least 1" })
  .max(65535, { error: "must be at most 65535" });

/** Always enabled: the product is MQTT (and Web MQTT) with the management API. */
export const BASE_PLUGINS = ["rabbitmq_management", "rabbitmq_mqtt", "rabbitmq_web_mqtt"] as const;

export const brokerConfigSchema = z.strictObject({
  /** The RabbitMQ version the image runs; rendering depends on it. */
  version: z.string({ error: "must be a string such as 4.0.9" }).refine((v) => {
    const p = parseBrokerVersion(v);
    return p !== undefined && (p.major > 3 || (p.major === 3 && p.minor >= 10));
  }, { error: "must be a RabbitMQ version x.y.z, 3.10.0 or later" }),
  listeners: z
    .strictObject({
      mqtt: port.default(1883),
      webMqtt: port.default(15675),
      management: port.default(15672),
      /** AMQP 0-9-1 for the platform's own tools; null turns the listener off. */
      amqp: port.nullable().default(5672),
      /** MQTT listeners dedicated to one tenant each (mapped by tenant stacks). */
      tenantMqtt: z.array(port).default([]),
    })
    .default({ mqtt: 1883, webMqtt: 15675, management: 15672, amqp: 5672, tenantMqtt: [] }),
  plugins: z
    .array(z.string().regex(/^rabbitmq_[a-z0-9_]{1,60}$/, { error: "a RabbitMQ plugin name, e.g. rabbitmq_prometheus" }))
    .default([]),
  /** Fraction of the memory available to the node at which publishers are blocked. */
  memoryHighWatermark: z.number({ error: "must be a number" }).min(0.1, { error: "must be at least 0.1" }).max(0.9, { error: "must be at most 0.9" }).default(0.6),
  /** Free disk space below which publishers are blocked. */
  diskFreeLimitMiB: z.number().int({ error: "must be a whole number" }).min(50, { error: "must be at least 50" }).max(1_048_576).default(2048),
  /** How long a disconnected MQTT client's session (queue) is kept. */
  mqttSessionExpirySeconds: z.number().int({ error: "must be a whole number" }).min(60, { error: "must be at least 60" }).max(31_536_000).default(86_400),
  tuning: z
    .strictObject({
      profile: z.enum(TUNING_PROFILES, { error: `must be one of: ${TUNING_PROFILES.join(", ")}` }).default("default"),
      expectedConnections: z.number().int({ error: "must be a whole number" }).min(1, { error: "must be at least 1" }).max(2_000_000, { error: "must be at most 2000000" }).default(10_000),
    })
    .default({ profile: "default", expectedConnections: 10_000 }),
});

export type BrokerConfigInput = z.input<typeof brokerConfigSchema>;

export interface BrokerModel {
  readonly version: BrokerVersionFull;
  readonly versionText: string;
  readonly listeners: {
    readonly mqtt: number;
    readonly webMqtt: number;
    readonly management: number;
    readonly amqp: number | null;
    readonly tenantMqtt: readonly number[];
  };
  readonly plugins: readonly string[];
  readonly memoryHighWatermark: number;
  readonly diskFreeLimitMiB: number;
  readonly mqttSessionExpirySeconds: number;
  readonly tuning: Tuning;
}

/** Validates the broker part of the platform config (`keyPrefix`, e.g. `platform.broker`). */
export function parseBrokerConfig(raw: unknown, keyPrefix = `${PLATFORM_KEY}.broker`): BrokerModel {
  const parsed = brokerConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => ({ key: formatPath(keyPrefix, i.path), message: i.message })));
  }
  const c = parsed.data;
  const issues: ConfigIssue[] = [];
  const used = new Map<number, string>();
  const claim = (p: number, key: string) => {
    const other = used.get(p);
    if (other !== undefined) issues.push({ key, message: `port ${p} is already used by ${other}; every listener needs its own port` });
    else used.set(p, key);
  };
  claim(c.listeners.mqtt, `${keyPrefix}.listeners.mqtt`);
  claim(c.listeners.webMqtt, `${keyPrefix}.listeners.webMqtt`);
  claim(c.listeners.management, `${keyPrefix}.listeners.management`);
  if (c.listeners.amqp !== null) claim(c.listeners.amqp, `${keyPrefix}.listeners.amqp`);
  c.listeners.tenantMqtt.forEach((p, i) => claim(p, `${keyPrefix}.listeners.tenantMqtt[${i}]`));
  if (issues.length > 0) throw new ConfigError(issues);
  const version = parseBrokerVersion(c.version);
  if (version === undefined) throw new ConfigError([{ key: `${keyPrefix}.version`, message: "must be x.y.z" }]);
  return {
    version,
    versionText: c.version,
    listeners: c.listeners,
    plugins: [...new Set([...BASE_PLUGINS, ...c.plugins])],
    memoryHighWatermark: c.memoryHighWatermark,
    diskFreeLimitMiB: c.diskFreeLimitMiB,
    mqttSessionExpirySeconds: c.mqttSessionExpirySeconds,
    tuning: tuningFor(c.tuning),
  };
}

export const PLATFORM_TARGETS = ["docker", "kubernetes"] as const;
export type PlatformTarget = (typeof PLATFORM_TARGETS)[number];

/** A pinned image: a tag other than `latest`, or a digest. */
const IMAGE_PATTERN = /^[a-z0-9][a-z0-9._/-]*(?::[A-Za-z0-9._-]+)?(?:@sha256:[a-f0-9]{64})?$/;

export const platformConfigSchema = z.strictObject({
  target: z.enum(PLATFORM_TARGETS, { error: `must be one of: ${PLATFORM_TARGETS.join(", ")}` }),
  image: z
    .string({ error: "must be an image reference such as rabbitmq:4.0.9-management" })
    .regex(IMAGE_PATTERN, { error: "must be an image reference such as rabbitmq:4.0.9-management" })
    .refine((i) => i.includes("@sha256:") || (/:[^/]+$/.test(i) && !i.endsWith(":latest")), {
      error: "must be pinned: a version tag (not latest) or a digest, so every node runs the version rendered for",
    }),
  nodes: z.number().int({ error: "must be a whole number" }).min(1, { error: "must be at least 1" }).max(9, { error: "must be at most 9" }).default(1),
  adminUsername: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, { error: "1-64 of A-Z a-z 0-9 . _ -" }).default("admin"),
  broker: z.unknown(),
  docker: z
    .strictObject({
      network: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, { error: "a Docker network name" }).default("rabbitmq-mqtt"),
      /** Host address the ports are published on; 127.0.0.1 keeps a dev broker off the LAN. */
      publishAddress: z.ipv4({ error: "an IPv4 address, e.g. 127.0.0.1" }).default("127.0.0.1"),
      /** Node i publishes each port at port + i * offset on the host. */
      hostPortOffset: z.number().int().min(1).max(1000).default(100),
    })
    .default({ network: "rabbitmq-mqtt", publishAddress: "127.0.0.1", hostPortOffset: 100 }),
  kubernetes: z
    .strictObject({
      namespace: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, { error: "a Kubernetes namespace name" }).default("rabbitmq"),
      /** The cluster's Kubernetes minor version: which sysctls a pod may set depends on it. */
      version: z.string().regex(/^1\.(\d{2})$/, { error: "the cluster's Kubernetes version as 1.NN, e.g. 1.29" }).default("1.29"),
      storageSize: z.string().regex(/^[1-9][0-9]*(Mi|Gi|Ti)$/, { error: "a size such as 20Gi" }).default("20Gi"),
      storageClass: z.string().regex(/^[a-z0-9][a-z0-9.-]{0,252}$/, { error: "a StorageClass name" }).optional(),
      cpu: z.string().regex(/^([1-9][0-9]*|[1-9][0-9]*m)$/, { error: "a CPU quantity such as 2 or 500m" }).default("2"),
      memory: z.string().regex(/^[1-9][0-9]*(Mi|Gi)$/, { error: "a memory size such as 4Gi" }).default("4Gi"),
      serviceType: z.enum(["LoadBalancer", "NodePort", "ClusterIP"], { error: "LoadBalancer, NodePort or ClusterIP" }).default("LoadBalancer"),
      /** Run a privileged init container for the sysctls a pod may not set itself. */
      privilegedSysctls: z.boolean({ error: "must be true or false" }).default(false),
    })
    .default({ namespace: "rabbitmq", version: "1.29", storageSize: "20Gi", cpu: "2", memory: "4Gi", serviceType: "LoadBalancer", privilegedSysctls: false }),
});

export interface KubernetesSettings {
  readonly namespace: string;
  readonly minorVersion: number;
  readonly storageSize: string;
  readonly storageClass?: string;
  readonly cpu: string;
  readonly memory: string;
  readonly memoryBytes: number;
  readonly serviceType: "LoadBalancer" | "NodePort" | "ClusterIP";
  readonly privilegedSysctls: boolean;
}

function quantityBytes(q: string): number {
  const m = /^(\d+)(Mi|Gi|Ti)$/.exec(q);
  const unit = { Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 }[(m?.[2] ?? "Mi") as "Mi" | "Gi" | "Ti"];
  return Number(m?.[1] ?? 0) * unit;
}

export interface PlatformModel {
  readonly target: PlatformTarget;
  readonly image: string;
  readonly nodes: number;
  readonly adminUsername: string;
  readonly broker: BrokerModel;
  readonly docker: { readonly network: string; readonly publishAddress: string; readonly hostPortOffset: number };
  readonly kubernetes: KubernetesSettings;
}

export function parsePlatformConfig(raw: unknown): PlatformModel {
  const parsed = platformConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => ({ key: formatPath(PLATFORM_KEY, i.path), message: i.message })));
  }
  const c = parsed.data;
  const broker = parseBrokerConfig(c.broker, `${PLATFORM_KEY}.broker`);
  const issues: ConfigIssue[] = [];
  const tagVersion = /:(\d+\.\d+\.\d+)(?:[-@]|$)/.exec(c.image)?.[1];
  if (tagVersion !== undefined && tagVersion !== broker.versionText) {
    issues.push({ key: `${PLATFORM_KEY}.broker.version`, message: `is ${broker.versionText} but the image tag says ${tagVersion}; set both to the version the image runs` });
  }
  if (c.target === "kubernetes" && (c.nodes < 3 || c.nodes % 2 === 0)) {
    issues.push({ key: `${PLATFORM_KEY}.nodes`, message: `is ${c.nodes}; production on Kubernetes needs an odd number of at least 3 (quorum survives one node)` });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  const k = c.kubernetes;
  return {
    target: c.target,
    image: c.image,
    nodes: c.nodes,
    adminUsername: c.adminUsername,
    broker,
    docker: c.docker,
    kubernetes: {
      namespace: k.namespace,
      minorVersion: Number(k.version.slice(2)),
      storageSize: k.storageSize,
      ...(k.storageClass !== undefined ? { storageClass: k.storageClass } : {}),
      cpu: k.cpu,
      memory: k.memory,
      memoryBytes: quantityBytes(k.memory),
      serviceType: k.serviceType,
      privilegedSysctls: k.privilegedSysctls,
    },
  };
}
