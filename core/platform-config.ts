/**
 * The platform stack's broker model: the part of the `platform` stack config that decides the
 * broker's own files (listeners, plugins, resource thresholds, MQTT sessions, tuning). Pure, so
 * the renderer and its rules are unit-tested without Pulumi. Deployment targets (Docker,
 * Kubernetes) build on this model.
 */
import { z } from "zod";
import { ConfigError, formatPath, type ConfigIssue } from "./errors";
import {
  DEFAULT_KEY,
  DNS_NAME_PATTERN,
  HOURS_PER_YEAR,
  keySchema,
  outlivesProblems,
  earlyRenewalHoursField,
  validityHoursField,
  validityProblems,
  type KeySpec,
  type Validity,
} from "./pki-config";
import { STACK_REF_PATTERN } from "./broker-connection";
import { NAME_PATTERN, NAME_RULE, RESOURCE_SERVER_ID_PATTERN } from "./names";
import { httpsUrl } from "./token-apps";
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

/** TLS versions a broker may offer: 1.0 and 1.1 are broken and off. */
export const TLS_VERSIONS = ["tlsv1.3", "tlsv1.2"] as const;
/** Where the broker takes a certificate's login name from (`ssl_cert_login_from`). */
export const CERT_LOGIN_SOURCES = ["distinguished_name", "common_name"] as const;
export type CertLoginSource = (typeof CERT_LOGIN_SOURCES)[number];

const DEFAULT_LISTENERS = {
  mqtt: 1883,
  webMqtt: 15675,
  management: 15672,
  amqp: 5672,
  tenantMqtt: [],
  mqtts: 8883,
  webMqtts: 15676,
  managementHttps: 15671,
  amqps: null,
  tenantMqtts: [],
};

const IMAGE_PATTERN = /^[a-z0-9][a-z0-9._/-]*(?::[A-Za-z0-9._-]+)?(?:@sha256:[a-f0-9]{64})?$/;
/**
 * A pinned image: a digest, or a version tag (one with a number in it, not `latest`): a word tag
 * such as `management` moves like `latest` does. Also the policy pack's rule (policy/rules.ts).
 */
export function isPinnedImage(i: string): boolean {
  if (/@sha256:[a-f0-9]{64}$/.test(i)) return true;
  const tag = /:([^/:]+)$/.exec(i)?.[1];
  return tag !== undefined && tag !== "latest" && /\d/.test(tag);
}

/** The token issuer's port in its container, and by default on the host and the Service. */
export const DEFAULT_ISSUER_PORT = 8443;

/** JWT signature algorithms the broker accepts for app tokens: pinned, never taken from the token. */
export const TOKEN_ALGORITHMS = ["RS256"] as const;
export type TokenAlgorithm = (typeof TOKEN_ALGORITHMS)[number];
/** The OAuth 2 backend's plugin, enabled when `tokens` is set. */
export const OAUTH2_PLUGIN = "rabbitmq_auth_backend_oauth2";
/**
 * A signing key's id (the token header's `kid`): it names a file and a rabbitmq.conf key
 * (`auth_oauth2.signing_keys.<id>`), so lower-case letters, digits, `-` and `_` only.
 */
export const TOKEN_KEY_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;

const tokensSchema = z.strictObject({
  resourceServerId: z
    .string({ error: "must be a string such as rabbitmq" })
    .regex(RESOURCE_SERVER_ID_PATTERN, { error: "must be 1-64 of a-z 0-9 _ -, starting with a letter (it prefixes every scope), e.g. rabbitmq" })
    .default("rabbitmq"),
  /**
   * Ids of the token issuer's signing keys, newest first: the first signs new tokens, and the
   * broker accepts tokens signed with any of them. Rotation: put a new id first, `pulumi up`,
   * wait one token lifetime, then drop the old id.
   */
  signingKeys: z
    .array(z.string({ error: "must be a key id such as k1" }).regex(TOKEN_KEY_ID_PATTERN, { error: "must be a key id: 1-32 of a-z 0-9 _ -, e.g. k1" }), { error: "must be a list of key ids, newest first, e.g. [k2, k1]" })
    .min(1, { error: "list at least one key id, e.g. [k1]" })
    .max(3, { error: "list at most 3 key ids: the one that signs and those still in force during a rotation" }),
  algorithm: z.enum(TOKEN_ALGORITHMS, { error: `must be one of: ${TOKEN_ALGORITHMS.join(", ")}` }).default("RS256"),
  /**
   * The token issuer this stack deploys (issuer/): a container on Docker, a Deployment and a
   * Service on Kubernetes, signing with the first key. Absent: no issuer is deployed.
   */
  issuer: z
    .strictObject({
      /**
       * The issuer's image. Docker: absent builds it from this package (issuer/Dockerfile).
       * Kubernetes: required, pinned: the image you built from issuer/Dockerfile and pushed.
       */
      image: z
        .string({ error: "must be an image reference such as registry.example.com/token-issuer:0.1.0" })
        .regex(IMAGE_PATTERN, { error: "must be an image reference such as registry.example.com/token-issuer:0.1.0" })
        .refine(isPinnedImage, { error: "must be pinned: a version tag (not latest) or a digest" })
        .optional(),
      /** The URL apps call, written into each broker token's `iss`. Docker default: https://<publishAddress>:<port>. */
      url: httpsUrl.optional(),
      /** Docker: the host port it is published on; Kubernetes: the Service's port. */
      port: z.number({ error: "must be a port number" }).int({ error: "must be a port number" }).min(1).max(65535, { error: "must be a port number" }).default(DEFAULT_ISSUER_PORT),
      /** Kubernetes: how many replicas (it keeps no state, so any number serve alike). */
      replicas: z.number({ error: "must be a whole number" }).int({ error: "must be a whole number" }).min(2, { error: "must be at least 2: one replica is a single point of failure for every sign-in" }).max(50).default(2),
      /**
       * The tenant stacks whose token apps it serves, as StackReference names
       * (`<org>/<project>/<stack>`): each one's output `tokenApps`.
       */
      tenantStacks: z.array(z.string({ error: "must be a stack name such as organization/rabbitmq-mqtt/acme" }).regex(STACK_REF_PATTERN, { error: "must be <organization>/<project>/<stack>, e.g. organization/rabbitmq-mqtt/acme" })).default([]),
    })
    .optional(),
});

export const brokerConfigSchema = z.strictObject({
  /** The RabbitMQ version the image runs; rendering depends on it. */
  version: z.string({ error: "must be a string such as 4.0.9" }).refine((v) => {
    const p = parseBrokerVersion(v);
    return p !== undefined && (p.major > 3 || (p.major === 3 && p.minor >= 10));
  }, { error: "must be a RabbitMQ version x.y.z, 3.10.0 or later" }),
  listeners: z
    .strictObject({
      // Plaintext listeners: rendered only with plaintextListeners: true (development).
      mqtt: port.default(1883),
      webMqtt: port.default(15675),
      management: port.default(15672),
      /** AMQP 0-9-1; null turns the listener off. */
      amqp: port.nullable().default(5672),
      /** Plaintext MQTT listeners dedicated to one tenant each (mapped by tenant stacks). */
      tenantMqtt: z.array(port).default([]),
      // TLS listeners: always rendered.
      mqtts: port.default(8883),
      webMqtts: port.default(15676),
      managementHttps: port.default(15671),
      /**
       * AMQP 0-9-1 over TLS, off unless a port is given. It offers no login mechanism: neither
       * passwords nor certificates of tenant identities may work over AMQP (core/broker-baseline.ts).
       */
      amqps: port.nullable().default(null),
      /** MQTT-over-TLS listeners dedicated to one tenant each (mapped by tenant stacks). */
      tenantMqtts: z.array(port).default([]),
    })
    .default(DEFAULT_LISTENERS),
  /**
   * Keep the plaintext listeners (MQTT, Web MQTT, management, AMQP) besides the TLS ones. For
   * development brokers only: refused on Kubernetes.
   */
  plaintextListeners: z.boolean({ error: "must be true or false" }).default(false),
  tls: z
    .strictObject({
      versions: z
        .array(z.enum(TLS_VERSIONS, { error: `must be one of: ${TLS_VERSIONS.join(", ")} (older versions are broken)` }))
        .min(1, { error: "list at least one TLS version" })
        .default([...TLS_VERSIONS]),
      /** MQTT clients that present a verified certificate and no username log in as the certificate (`mqtt.ssl_cert_login`). */
      certificateLogin: z.boolean({ error: "must be true or false" }).default(true),
      certificateLoginFrom: z.enum(CERT_LOGIN_SOURCES, { error: `must be one of: ${CERT_LOGIN_SOURCES.join(", ")}` }).default("distinguished_name"),
    })
    .default({ versions: [...TLS_VERSIONS], certificateLogin: true, certificateLoginFrom: "distinguished_name" }),
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
  /**
   * Token sign-in for apps: RabbitMQ's OAuth 2 backend beside the internal one, verifying the
   * token issuer's signatures with its public keys (rendered as files; no key fetched at run
   * time). Absent: no token is accepted.
   */
  tokens: tokensSchema.optional(),
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
    readonly mqtts: number;
    readonly webMqtts: number;
    readonly managementHttps: number;
    readonly amqps: number | null;
    readonly tenantMqtts: readonly number[];
  };
  readonly plaintextListeners: boolean;
  readonly tls: {
    readonly versions: readonly (typeof TLS_VERSIONS)[number][];
    readonly certificateLogin: boolean;
    readonly certificateLoginFrom: CertLoginSource;
  };
  readonly plugins: readonly string[];
  readonly memoryHighWatermark: number;
  readonly diskFreeLimitMiB: number;
  readonly mqttSessionExpirySeconds: number;
  readonly tuning: Tuning;
  readonly tokens?: TokensModel;
}

export interface TokensModel {
  readonly resourceServerId: string;
  /** Newest first: the first signs, all are accepted. */
  readonly signingKeyIds: readonly string[];
  readonly algorithm: TokenAlgorithm;
  readonly issuer?: TokenIssuerModel;
}

export interface TokenIssuerModel {
  /** Absent on Docker: built from this package. */
  readonly image?: string;
  /** Absent on Docker: https://<publishAddress>:<port>, set by parsePlatformConfig. */
  readonly url?: string;
  readonly port: number;
  readonly replicas: number;
  readonly tenantStacks: readonly string[];
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
  const l = c.listeners;
  if (c.plaintextListeners) {
    claim(l.mqtt, `${keyPrefix}.listeners.mqtt`);
    claim(l.webMqtt, `${keyPrefix}.listeners.webMqtt`);
    claim(l.management, `${keyPrefix}.listeners.management`);
    if (l.amqp !== null) claim(l.amqp, `${keyPrefix}.listeners.amqp`);
    l.tenantMqtt.forEach((p, i) => claim(p, `${keyPrefix}.listeners.tenantMqtt[${i}]`));
  } else if (l.tenantMqtt.length > 0) {
    issues.push({
      key: `${keyPrefix}.listeners.tenantMqtt`,
      message: "plaintext tenant listeners need plaintextListeners: true (development only); use listeners.tenantMqtts for TLS",
    });
  }
  claim(l.mqtts, `${keyPrefix}.listeners.mqtts`);
  claim(l.webMqtts, `${keyPrefix}.listeners.webMqtts`);
  claim(l.managementHttps, `${keyPrefix}.listeners.managementHttps`);
  if (l.amqps !== null) claim(l.amqps, `${keyPrefix}.listeners.amqps`);
  l.tenantMqtts.forEach((p, i) => claim(p, `${keyPrefix}.listeners.tenantMqtts[${i}]`));
  c.tokens?.issuer?.tenantStacks.forEach((t, i, all) => {
    if (all.indexOf(t) !== i) issues.push({ key: `${keyPrefix}.tokens.issuer.tenantStacks[${i}]`, message: `stack '${t}' is listed twice` });
  });
  const issuerPort = c.tokens?.issuer?.port;
  if (issuerPort !== undefined && used.has(issuerPort)) {
    issues.push({ key: `${keyPrefix}.tokens.issuer.port`, message: `port ${issuerPort} is already used by ${used.get(issuerPort)}; the issuer needs its own port` });
  }
  c.tokens?.signingKeys.forEach((k, i, all) => {
    if (all.indexOf(k) !== i) issues.push({ key: `${keyPrefix}.tokens.signingKeys[${i}]`, message: `key id '${k}' is listed twice; each key needs its own id` });
  });
  if (issues.length > 0) throw new ConfigError(issues);
  const version = parseBrokerVersion(c.version);
  if (version === undefined) throw new ConfigError([{ key: `${keyPrefix}.version`, message: "must be x.y.z" }]);
  return {
    version,
    versionText: c.version,
    listeners: c.listeners,
    plaintextListeners: c.plaintextListeners,
    tls: { versions: [...new Set(c.tls.versions)], certificateLogin: c.tls.certificateLogin, certificateLoginFrom: c.tls.certificateLoginFrom },
    plugins: [...new Set([...BASE_PLUGINS, ...(c.tokens !== undefined ? [OAUTH2_PLUGIN] : []), ...c.plugins])],
    memoryHighWatermark: c.memoryHighWatermark,
    diskFreeLimitMiB: c.diskFreeLimitMiB,
    mqttSessionExpirySeconds: c.mqttSessionExpirySeconds,
    tuning: tuningFor(c.tuning),
    ...(c.tokens !== undefined
      ? { tokens: { resourceServerId: c.tokens.resourceServerId, signingKeyIds: c.tokens.signingKeys, algorithm: c.tokens.algorithm, ...(c.tokens.issuer !== undefined ? { issuer: c.tokens.issuer } : {}) } }
      : {}),
  };
}

export const PLATFORM_TARGETS = ["docker", "kubernetes"] as const;
export type PlatformTarget = (typeof PLATFORM_TARGETS)[number];


/** Subject attribute text: printable, no control characters (it ends up in login names and logs). */
const subjectText = z
  .string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(64, { error: "must be at most 64 characters (X.520 upper bound)" })
  .regex(/^[^\p{Cc}]+$/u, { error: "must not contain control characters" });

export const CA_SOURCES = ["generate", "import"] as const;
/** Stack config keys of an imported certificate authority. */
export const PKI_CA_CERTIFICATE_KEY = "pkiCaCertificate";
export const PKI_CA_PRIVATE_KEY_KEY = "pkiCaPrivateKey";

const DEFAULT_CA = { source: "generate" as const, commonName: "rabbitmq-mqtt root CA", validityHours: 10 * HOURS_PER_YEAR, earlyRenewalHours: HOURS_PER_YEAR };
const DEFAULT_BROKER_CERT = { dnsNames: [], ipAddresses: [], validityHours: HOURS_PER_YEAR, earlyRenewalHours: 30 * 24 };
const DEFAULT_TENANT_AUTHORITIES = { tenants: [], validityHours: 5 * HOURS_PER_YEAR, earlyRenewalHours: 180 * 24 };

export const pkiConfigSchema = z.strictObject({
  ca: z
    .strictObject({
      /**
       * generate: a root CA made and kept (key as a secret) in this stack's state. import: an
       * existing CA from the config keys pkiCaCertificate (PEM) and pkiCaPrivateKey (secret PEM).
       */
      source: z.enum(CA_SOURCES, { error: `must be one of: ${CA_SOURCES.join(", ")}` }).default("generate"),
      commonName: subjectText.default(DEFAULT_CA.commonName),
      organization: subjectText.optional(),
      validityHours: validityHoursField(DEFAULT_CA.validityHours),
      earlyRenewalHours: earlyRenewalHoursField(DEFAULT_CA.earlyRenewalHours),
    })
    .default(DEFAULT_CA),
  /** Key type of the CA (when generated), the tenant intermediates and the broker certificate. */
  key: keySchema.default(DEFAULT_KEY),
  brokerCertificate: z
    .strictObject({
      /** Public names clients use (load balancer, DNS), besides the nodes' and services' own names. */
      dnsNames: z.array(z.string().regex(DNS_NAME_PATTERN, { error: "must be a DNS name in lower case, e.g. mqtt.example.com" })).default([]),
      ipAddresses: z.array(z.union([z.ipv4(), z.ipv6()], { error: "must be an IP address" })).default([]),
      validityHours: validityHoursField(DEFAULT_BROKER_CERT.validityHours),
      earlyRenewalHours: earlyRenewalHoursField(DEFAULT_BROKER_CERT.earlyRenewalHours),
    })
    .default(DEFAULT_BROKER_CERT),
  /**
   * Tenants that get an intermediate CA of their own: their stacks sign their client
   * certificates with it, and rotating or retiring one tenant's authority touches no other tenant.
   */
  tenantAuthorities: z
    .strictObject({
      tenants: z.array(z.string().regex(NAME_PATTERN, { error: `must be a tenant name: ${NAME_RULE}` })).default([]),
      validityHours: validityHoursField(DEFAULT_TENANT_AUTHORITIES.validityHours),
      earlyRenewalHours: earlyRenewalHoursField(DEFAULT_TENANT_AUTHORITIES.earlyRenewalHours),
    })
    .default(DEFAULT_TENANT_AUTHORITIES),
});

export interface PkiModel {
  readonly ca: { readonly source: (typeof CA_SOURCES)[number]; readonly commonName: string; readonly organization?: string } & Validity;
  readonly key: KeySpec;
  readonly brokerCertificate: { readonly dnsNames: readonly string[]; readonly ipAddresses: readonly string[] } & Validity;
  readonly tenantAuthorities: { readonly tenants: readonly string[] } & Validity;
}

/** Validates `platform.pki`; the imported CA's PEMs are checked where they are read (stacks/platform.ts). */
export function parsePkiConfig(raw: unknown, keyPrefix = `${PLATFORM_KEY}.pki`): PkiModel {
  const parsed = pkiConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => ({ key: formatPath(keyPrefix, i.path), message: i.message })));
  }
  const c = parsed.data;
  const issues: ConfigIssue[] = [
    ...validityProblems(c.ca, `${keyPrefix}.ca`),
    ...validityProblems(c.brokerCertificate, `${keyPrefix}.brokerCertificate`),
    ...validityProblems(c.tenantAuthorities, `${keyPrefix}.tenantAuthorities`),
  ];
  if (c.ca.source === "generate") {
    issues.push(
      ...outlivesProblems(c.brokerCertificate, `${keyPrefix}.brokerCertificate`, c.ca, "certificate authority"),
      ...outlivesProblems(c.tenantAuthorities, `${keyPrefix}.tenantAuthorities`, c.ca, "certificate authority"),
    );
  }
  c.tenantAuthorities.tenants.forEach((t, i) => {
    if (c.tenantAuthorities.tenants.indexOf(t) !== i) issues.push({ key: `${keyPrefix}.tenantAuthorities.tenants[${i}]`, message: `tenant '${t}' is listed twice` });
  });
  if (issues.length > 0) throw new ConfigError(issues);
  return {
    ca: { source: c.ca.source, commonName: c.ca.commonName, ...(c.ca.organization !== undefined ? { organization: c.ca.organization } : {}), validityHours: c.ca.validityHours, earlyRenewalHours: c.ca.earlyRenewalHours },
    key: c.key,
    brokerCertificate: c.brokerCertificate,
    tenantAuthorities: c.tenantAuthorities,
  };
}

export const platformConfigSchema = z.strictObject({
  target: z.enum(PLATFORM_TARGETS, { error: `must be one of: ${PLATFORM_TARGETS.join(", ")}` }),
  image: z
    .string({ error: "must be an image reference such as rabbitmq:4.0.9-management" })
    .regex(IMAGE_PATTERN, { error: "must be an image reference such as rabbitmq:4.0.9-management" })
    .refine(isPinnedImage, {
      error: "must be pinned: a version tag (not latest) or a digest, so every node runs the version rendered for",
    }),
  nodes: z.number().int({ error: "must be a whole number" }).min(1, { error: "must be at least 1" }).max(9, { error: "must be at most 9" }).default(1),
  adminUsername: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, { error: "1-64 of A-Z a-z 0-9 . _ -" }).default("admin"),
  broker: z.unknown(),
  pki: z.unknown().optional(),
  docker: z
    .strictObject({
      network: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, { error: "a Docker network name" }).default("rabbitmq-mqtt"),
      /** Host address the ports are published on; 127.0.0.1 keeps a dev broker off the LAN. */
      publishAddress: z.ipv4({ error: "an IPv4 address, e.g. 127.0.0.1" }).default("127.0.0.1"),
      /** Node i publishes each port at port + i * offset on the host. */
      hostPortOffset: z.number().int().min(1).max(1000).default(100),
      /**
       * Containers, host names and volumes are `<namePrefix>-<i>`: two platforms on one Docker host
       * need different prefixes (and networks). The host names are the Erlang node names.
       */
      namePrefix: z
        .string({ error: "a DNS label of at most 40 characters: a-z, 0-9 and -, starting with a letter" })
        .regex(/^[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?$/, { error: "a DNS label of at most 40 characters: a-z, 0-9 and -, starting with a letter" })
        .default("rabbitmq"),
      /**
       * The most open files the Docker host lets a container have (its `fs.nr_open`, or the
       * engine's own hard limit if lower). A container asking for more is refused at start
       * ("error setting rlimit"); with this set, the broker gets at most this many and the stack
       * reports the shortfall in `tuningNotApplied`.
       */
      maxOpenFiles: z.number({ error: "a whole number of open files, e.g. 1048576" }).int({ error: "a whole number of open files, e.g. 1048576" }).min(1024, { error: "must be at least 1024" }).optional(),
    })
    .default({ network: "rabbitmq-mqtt", publishAddress: "127.0.0.1", hostPortOffset: 100, namePrefix: "rabbitmq" }),
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
  readonly pki: PkiModel;
  readonly docker: {
    readonly network: string;
    readonly publishAddress: string;
    readonly hostPortOffset: number;
    readonly namePrefix: string;
    readonly maxOpenFiles?: number;
  };
  readonly kubernetes: KubernetesSettings;
}

export function parsePlatformConfig(raw: unknown): PlatformModel {
  const parsed = platformConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => ({ key: formatPath(PLATFORM_KEY, i.path), message: i.message })));
  }
  const c = parsed.data;
  const issues: ConfigIssue[] = [];
  let broker: BrokerModel | undefined;
  let pki: PkiModel | undefined;
  // Both parts are checked, so one run lists every problem.
  for (const parse of [
    () => (broker = parseBrokerConfig(c.broker, `${PLATFORM_KEY}.broker`)),
    () => (pki = parsePkiConfig(c.pki, `${PLATFORM_KEY}.pki`)),
  ]) {
    try {
      parse();
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      issues.push(...e.issues);
    }
  }
  if (broker === undefined || pki === undefined) throw new ConfigError(issues);
  if (broker.plaintextListeners && c.target !== "docker") {
    issues.push({
      key: `${PLATFORM_KEY}.broker.plaintextListeners`,
      message: `is true on target ${c.target}; plaintext listeners are for development brokers on Docker only: remove it (clients use the TLS listeners)`,
    });
  }
  const tagVersion = /:(\d+\.\d+\.\d+)(?:[-@]|$)/.exec(c.image)?.[1];
  if (tagVersion !== undefined && tagVersion !== broker.versionText) {
    issues.push({ key: `${PLATFORM_KEY}.broker.version`, message: `is ${broker.versionText} but the image tag says ${tagVersion}; set both to the version the image runs` });
  }
  if (c.target === "kubernetes" && (c.nodes < 3 || c.nodes % 2 === 0)) {
    issues.push({ key: `${PLATFORM_KEY}.nodes`, message: `is ${c.nodes}; production on Kubernetes needs an odd number of at least 3 (quorum survives one node)` });
  }
  const issuer = broker.tokens?.issuer;
  if (issuer !== undefined && c.target === "kubernetes") {
    if (issuer.image === undefined) issues.push({ key: `${PLATFORM_KEY}.broker.tokens.issuer.image`, message: "required on kubernetes: the image you built from issuer/Dockerfile and pushed, pinned, e.g. registry.example.com/token-issuer:0.1.0" });
    if (issuer.url === undefined) issues.push({ key: `${PLATFORM_KEY}.broker.tokens.issuer.url`, message: "required on kubernetes: the https URL apps reach the issuer at (your Ingress or load balancer), e.g. https://tokens.example.com" });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  if (issuer !== undefined && issuer.url === undefined && broker.tokens !== undefined) {
    const host = c.docker.publishAddress === "0.0.0.0" ? "127.0.0.1" : c.docker.publishAddress;
    broker = { ...broker, tokens: { ...broker.tokens, issuer: { ...issuer, url: `https://${host}:${issuer.port}` } } };
  }
  const k = c.kubernetes;
  return {
    target: c.target,
    image: c.image,
    nodes: c.nodes,
    adminUsername: c.adminUsername,
    broker,
    pki,
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
