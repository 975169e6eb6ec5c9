/**
 * The platform stack's broker model: the part of the `platform` stack config that decides the
 * broker's own files (listeners, plugins, resource thresholds, MQTT sessions, tuning). Pure, so
 * the renderer and its rules are unit-tested without Pulumi. Deployment targets (Docker,
 * Kubernetes) build on this model.
 */
import { z } from "zod";
import { ConfigError, formatPath, type ConfigIssue } from "./errors";
import {
  DNS_NAME_PATTERN,
  HOURS_PER_YEAR,
  keySchema,
  outlivesProblems,
  earlyRenewalHoursField,
  validityHoursField,
  validityProblems,
  type KeySpec,
} from "./pki-config";
import { STACK_REF_PATTERN } from "./broker-connection";
import type { ReadonlyFields } from "./readonly";
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
    .default("rabbitmq")
    .describe("1–64 of `a-z 0-9 _ -`, starting with a letter: prefixes every scope and must be each token's audience"),
  signingKeys: z
    .array(z.string({ error: "must be a key id such as k1" }).regex(TOKEN_KEY_ID_PATTERN, { error: "must be a key id: 1-32 of a-z 0-9 _ -, e.g. k1" }), { error: "must be a list of key ids, newest first, e.g. [k2, k1]" })
    .min(1, { error: "list at least one key id, e.g. [k1]" })
    .max(3, { error: "list at most 3 key ids: the one that signs and those still in force during a rotation" })
    .describe(
      "key ids (1–32 of `a-z 0-9 _ -`), newest first: the stack keeps an RSA 3072 key per id; the first signs new tokens, the broker accepts all. " +
        "Rotation: put a new id first, `pulumi up`, wait one token lifetime, then drop the old id",
    ),
  algorithm: z
    .enum(TOKEN_ALGORITHMS, { error: `must be one of: ${TOKEN_ALGORITHMS.join(", ")}` })
    .default("RS256")
    .describe("the only algorithm the broker accepts (`auth_oauth2.algorithms`), never taken from the token"),
  issuer: z
    .strictObject({
      tenantStacks: z
        .array(z.string({ error: "must be a stack name such as organization/rabbitmq-mqtt/acme" }).regex(STACK_REF_PATTERN, { error: "must be <organization>/<project>/<stack>, e.g. organization/rabbitmq-mqtt/acme" }))
        .default([])
        .describe("the tenant stacks (`<org>/<project>/<stack>`) whose output `tokenApps` it serves; each must exist"),
      url: httpsUrl
        .optional()
        .describe("https, no credentials: what apps call and what every broker token's `iss` says. Docker: absent, `https://<publishAddress>:<port>`; Kubernetes: required (your Ingress or load balancer)"),
      port: port.default(DEFAULT_ISSUER_PORT).describe("Docker: the host port it is published on; Kubernetes: the Service's port"),
      image: z
        .string({ error: "must be an image reference such as registry.example.com/token-issuer:0.1.0" })
        .regex(IMAGE_PATTERN, { error: "must be an image reference such as registry.example.com/token-issuer:0.1.0" })
        .refine(isPinnedImage, { error: "must be pinned: a version tag (not latest) or a digest" })
        .optional()
        .describe(
          "pinned (a version tag or a digest). Docker: absent, the stack bundles `issuer/main.ts` with esbuild into `.build/token-issuer/` and builds `issuer/Dockerfile` (Node.js 24) locally. " +
            "Kubernetes: required, the image you built from the same context and pushed",
        ),
      replicas: z
        .number({ error: "must be a whole number" })
        .int({ error: "must be a whole number" })
        .min(2, { error: "must be at least 2: one replica is a single point of failure for every sign-in" })
        .max(50)
        .default(2)
        .describe("Kubernetes: how many replicas (it keeps no state, so any number serve alike)"),
    })
    .optional()
    .describe("the token issuer this stack deploys (see [Deploying the issuer](#tokens-for-app-users)): a container on Docker, a Deployment and a Service on Kubernetes, signing with the first key; absent: none is deployed"),
});

export const brokerConfigSchema = z.strictObject({
  version: z
    .string({ error: "must be a string such as 4.0.9" })
    .refine((v) => {
      const p = parseBrokerVersion(v);
      return p !== undefined && (p.major > 3 || (p.major === 3 && p.minor >= 10));
    }, { error: "must be a RabbitMQ version x.y.z, 3.10.0 or later" })
    .describe("the RabbitMQ version the image runs, x.y.z, 3.10.0 or later: the broker's files are rendered for it"),
  listeners: z
    .strictObject({
      mqtt: port.default(1883).describe("plaintext MQTT; only with plaintextListeners: true"),
      webMqtt: port.default(15675).describe("plaintext Web MQTT; only with plaintextListeners: true"),
      management: port.default(15672).describe("plaintext management API; only with plaintextListeners: true"),
      amqp: port.nullable().default(5672).describe("plaintext AMQP 0-9-1, only with plaintextListeners: true; null turns it off"),
      tenantMqtt: z.array(port).default([]).describe("plaintext MQTT listeners dedicated to one tenant each (a tenant stack maps one with tenant.mqttPorts); only with plaintextListeners: true"),
      mqtts: port.default(8883).describe("MQTT over TLS, always on; every listener needs its own port"),
      webMqtts: port.default(15676).describe("Web MQTT over TLS (`wss://<host>:<port>/ws`), always on"),
      managementHttps: port.default(15671).describe("the management API over HTTPS, always on: what tenant stacks provision through"),
      amqps: port
        .nullable()
        .default(null)
        .describe("AMQP 0-9-1 over TLS, off unless a port is given; it offers no login mechanism, so neither passwords nor certificates of tenant identities work over AMQP (see [Security model](#security-model))"),
      tenantMqtts: z.array(port).default([]).describe("MQTT-over-TLS listeners dedicated to one tenant each (a tenant stack maps one with tenant.mqttPorts)"),
    })
    .prefault({}),
  plaintextListeners: z
    .boolean({ error: "must be true or false" })
    .default(false)
    .describe("development only (refused on Kubernetes): also open the plaintext listeners (mqtt, webMqtt, management, amqp, tenantMqtt) besides the TLS ones"),
  tls: z
    .strictObject({
      versions: z
        .array(z.enum(TLS_VERSIONS, { error: `must be one of: ${TLS_VERSIONS.join(", ")} (older versions are broken)` }))
        .min(1, { error: "list at least one TLS version" })
        .default([...TLS_VERSIONS])
        .describe("TLS 1.0 and 1.1 are broken and never offered; ciphers are ECDHE with AEAD (TLS 1.2) and the TLS 1.3 suites"),
      certificateLogin: z
        .boolean({ error: "must be true or false" })
        .default(true)
        .describe("`mqtt.ssl_cert_login`: an MQTT client that presents a verified certificate and no username logs in as the certificate"),
      certificateLoginFrom: z
        .enum(CERT_LOGIN_SOURCES, { error: `must be one of: ${CERT_LOGIN_SOURCES.join(", ")}` })
        .default("distinguished_name")
        .describe("`ssl_cert_login_from`: which part of the certificate is the login name"),
    })
    .prefault({}),
  plugins: z
    .array(z.string().regex(/^rabbitmq_[a-z0-9_]{1,60}$/, { error: "a RabbitMQ plugin name, e.g. rabbitmq_prometheus" }))
    .default([])
    .describe("extra plugins (`rabbitmq_<name>`); management, MQTT and Web MQTT are always on, and the OAuth 2 backend with `tokens`"),
  memoryHighWatermark: z
    .number({ error: "must be a number" })
    .min(0.1, { error: "must be at least 0.1" })
    .max(0.9, { error: "must be at most 0.9" })
    .default(0.6)
    .describe("fraction of the node's memory (on Kubernetes, of its limit) at which publishers are blocked"),
  diskFreeLimitMiB: z
    .number()
    .int({ error: "must be a whole number" })
    .min(50, { error: "must be at least 50" })
    .max(1_048_576)
    .default(2048)
    .describe("free disk space (MiB) below which publishers are blocked"),
  mqttSessionExpirySeconds: z
    .number()
    .int({ error: "must be a whole number" })
    .min(60, { error: "must be at least 60" })
    .max(31_536_000)
    .default(86_400)
    .describe("how long a disconnected MQTT client's session (its queue) is kept: `mqtt.subscription_ttl` before 3.13, `mqtt.max_session_expiry_interval_seconds` from 3.13"),
  tuning: z
    .strictObject({
      profile: z
        .enum(TUNING_PROFILES, { error: `must be one of: ${TUNING_PROFILES.join(", ")}` })
        .default("default")
        .describe("kernel and runtime settings for many connections (see [Tuning profile](#tuning-profile-coretuningts))"),
      expectedConnections: z
        .number()
        .int({ error: "must be a whole number" })
        .min(1, { error: "must be at least 1" })
        .max(2_000_000, { error: "must be at most 2000000" })
        .default(10_000)
        .describe("MQTT connections one node should hold: open files, Erlang limits and the listen backlog follow from it"),
    })
    .prefault({}),
  tokens: tokensSchema
    .optional()
    .describe("token sign-in for apps (see [Tokens for app users](#tokens-for-app-users)): RabbitMQ's OAuth 2 backend beside the internal one, verifying the token issuer's signatures with its public keys, rendered as files; absent: no token is accepted"),
});

export type BrokerConfigInput = z.input<typeof brokerConfigSchema>;
/** The broker config as the schema parses it, defaults filled in: the model's parts are its types. */
type BrokerConfig = z.output<typeof brokerConfigSchema>;

export interface BrokerModel {
  readonly version: BrokerVersionFull;
  readonly versionText: string;
  readonly listeners: ReadonlyFields<BrokerConfig["listeners"]>;
  readonly plaintextListeners: boolean;
  /** As configured, each version once. */
  readonly tls: ReadonlyFields<BrokerConfig["tls"]>;
  /** The configured plugins with the ones always on (and the OAuth 2 backend with tokens). */
  readonly plugins: readonly string[];
  readonly memoryHighWatermark: BrokerConfig["memoryHighWatermark"];
  readonly diskFreeLimitMiB: BrokerConfig["diskFreeLimitMiB"];
  readonly mqttSessionExpirySeconds: BrokerConfig["mqttSessionExpirySeconds"];
  /** What the tuning config means for this node (core/tuning.ts). */
  readonly tuning: Tuning;
  readonly tokens?: TokensModel;
}

type TokensConfig = NonNullable<BrokerConfig["tokens"]>;

export interface TokensModel {
  readonly resourceServerId: TokensConfig["resourceServerId"];
  /** Newest first: the first signs, all are accepted. */
  readonly signingKeyIds: readonly string[];
  readonly algorithm: TokenAlgorithm;
  readonly issuer?: TokenIssuerModel;
}

/**
 * `broker.tokens.issuer` as parsed. `image` absent on Docker: built from this package; `url`
 * absent on Docker: https://<publishAddress>:<port>, set by parsePlatformConfig.
 */
export type TokenIssuerModel = ReadonlyFields<NonNullable<TokensConfig["issuer"]>>;

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


export const pkiConfigSchema = z.strictObject({
  ca: z
    .strictObject({
      source: z
        .enum(CA_SOURCES, { error: `must be one of: ${CA_SOURCES.join(", ")}` })
        .default("generate")
        .describe("`generate`: a self-signed root made and kept (key as a secret) in this stack's state; `import`: an existing CA from the config keys `pkiCaCertificate` (PEM) and secret `pkiCaPrivateKey`"),
      commonName: subjectText.default("rabbitmq-mqtt root CA").describe("the root's subject CN (when generated)"),
      organization: subjectText.optional().describe("the subject O of the root (when generated), the tenant intermediates and the broker certificate"),
      validityHours: validityHoursField(10 * HOURS_PER_YEAR),
      earlyRenewalHours: earlyRenewalHoursField(HOURS_PER_YEAR),
    })
    .prefault({}),
  key: keySchema.prefault({}).describe("key type of the root (when generated), the tenant intermediates and the broker certificate"),
  brokerCertificate: z
    .strictObject({
      dnsNames: z
        .array(z.string().regex(DNS_NAME_PATTERN, { error: "must be a DNS name in lower case, e.g. mqtt.example.com" }))
        .default([])
        .describe("public names clients use (load balancer, DNS), in lower case, besides the node and Service names the stack adds"),
      ipAddresses: z.array(z.union([z.ipv4(), z.ipv6()], { error: "must be an IP address" })).default([]).describe("public IP addresses clients use"),
      validityHours: validityHoursField(HOURS_PER_YEAR, "must not outlive the root"),
      earlyRenewalHours: earlyRenewalHoursField(30 * 24),
    })
    .prefault({}),
  tenantAuthorities: z
    .strictObject({
      tenants: z
        .array(z.string().regex(NAME_PATTERN, { error: `must be a tenant name: ${NAME_RULE}` }))
        .default([])
        .describe("tenants that get an intermediate CA of their own: their stacks sign their client certificates with it, and rotating or retiring one tenant's authority touches no other tenant"),
      validityHours: validityHoursField(5 * HOURS_PER_YEAR, "must not outlive the root"),
      earlyRenewalHours: earlyRenewalHoursField(180 * 24),
    })
    .prefault({}),
});

type PkiConfig = z.output<typeof pkiConfigSchema>;

/** `platform.pki` as parsed, defaults filled in. */
export interface PkiModel {
  readonly ca: ReadonlyFields<PkiConfig["ca"]>;
  readonly key: KeySpec;
  readonly brokerCertificate: ReadonlyFields<PkiConfig["brokerCertificate"]>;
  readonly tenantAuthorities: ReadonlyFields<PkiConfig["tenantAuthorities"]>;
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
    ca: c.ca,
    key: c.key,
    brokerCertificate: c.brokerCertificate,
    tenantAuthorities: c.tenantAuthorities,
  };
}

export const platformConfigSchema = z.strictObject({
  target: z.enum(PLATFORM_TARGETS, { error: `must be one of: ${PLATFORM_TARGETS.join(", ")}` }).describe("Docker for development, Kubernetes for production"),
  image: z
    .string({ error: "must be an image reference such as rabbitmq:4.0.9-management" })
    .regex(IMAGE_PATTERN, { error: "must be an image reference such as rabbitmq:4.0.9-management" })
    .refine(isPinnedImage, {
      error: "must be pinned: a version tag (not latest) or a digest, so every node runs the version rendered for",
    })
    .describe(
      "pinned: a version tag (one with a number in it, not `latest`; a word tag such as `management` moves) or a digest; a version in the tag must equal `broker.version`",
    ),
  nodes: z
    .number()
    .int({ error: "must be a whole number" })
    .min(1, { error: "must be at least 1" })
    .max(9, { error: "must be at most 9" })
    .default(1)
    .describe("more than one forms a cluster (classic peer discovery, a shared generated Erlang cookie); Kubernetes: odd, at least 3"),
  adminUsername: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, { error: "1-64 of A-Z a-z 0-9 . _ -" })
    .default("admin")
    .describe("1–64 of `A-Z a-z 0-9 . _ -`; the admin's password is generated and exported only as a secret"),
  broker: z.unknown(),
  pki: z.unknown().optional(),
  docker: z
    .strictObject({
      network: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, { error: "a Docker network name" }).default("rabbitmq-mqtt").describe("the Docker network the nodes (and the token issuer) join"),
      publishAddress: z.ipv4({ error: "an IPv4 address, e.g. 127.0.0.1" }).default("127.0.0.1").describe("host address the ports are published on; 127.0.0.1 keeps a development broker off the LAN"),
      hostPortOffset: z.number().int().min(1).max(1000).default(100).describe("node i publishes each port at port + i × offset on the host"),
      namePrefix: z
        .string({ error: "a DNS label of at most 40 characters: a-z, 0-9 and -, starting with a letter" })
        .regex(/^[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?$/, { error: "a DNS label of at most 40 characters: a-z, 0-9 and -, starting with a letter" })
        .default("rabbitmq")
        .describe("a DNS label of at most 40 characters: containers, host names (the Erlang node names) and volumes are `<prefix>-<i>`; two platforms on one Docker host need different prefixes and networks"),
      maxOpenFiles: z
        .number({ error: "a whole number of open files, e.g. 1048576" })
        .int({ error: "a whole number of open files, e.g. 1048576" })
        .min(1024, { error: "must be at least 1024" })
        .optional()
        .describe(
          "the most open files the Docker host lets a container have (its `fs.nr_open`, or the engine's `LimitNOFILE` if lower); absent: no cap. " +
            "A container asking for more is refused at start (`error setting rlimit`): with this set, the nofile ulimit is capped to it and the shortfall reported in `tuningNotApplied`",
        ),
    })
    .prefault({}),
  kubernetes: z
    .strictObject({
      namespace: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, { error: "a Kubernetes namespace name" }).default("rabbitmq").describe("the namespace the stack creates and deploys into"),
      version: z
        .string()
        .regex(/^1\.(\d{2})$/, { error: "the cluster's Kubernetes version as 1.NN, e.g. 1.29" })
        .default("1.29")
        .describe("the cluster's Kubernetes version as 1.NN: which sysctls a pod may set depends on it"),
      storageSize: z.string().regex(/^[1-9][0-9]*(Mi|Gi|Ti)$/, { error: "a size such as 20Gi" }).default("20Gi").describe("one volume claim per pod, of this size"),
      storageClass: z.string().regex(/^[a-z0-9][a-z0-9.-]{0,252}$/, { error: "a StorageClass name" }).optional().describe("the claims' StorageClass; absent: the cluster's default"),
      cpu: z.string().regex(/^([1-9][0-9]*|[1-9][0-9]*m)$/, { error: "a CPU quantity such as 2 or 500m" }).default("2").describe("CPU request = limit per pod, e.g. 2 or 500m"),
      memory: z.string().regex(/^[1-9][0-9]*(Mi|Gi)$/, { error: "a memory size such as 4Gi" }).default("4Gi").describe("memory request = limit per pod; the memory alarm is relative to it"),
      serviceType: z
        .enum(["LoadBalancer", "NodePort", "ClusterIP"], { error: "LoadBalancer, NodePort or ClusterIP" })
        .default("LoadBalancer")
        .describe("for the MQTT, Web MQTT and tenant listeners; management and AMQP stay ClusterIP"),
      privilegedSysctls: z
        .boolean({ error: "must be true or false" })
        .default(false)
        .describe("run a privileged init container for the sysctls a pod may not set itself (`net.core.somaxconn`, `net.ipv4.tcp_max_syn_backlog`)"),
    })
    .prefault({}),
});

type PlatformConfig = z.output<typeof platformConfigSchema>;

/** `platform.kubernetes` as parsed, with the version as its minor number and the memory in bytes. */
export type KubernetesSettings = ReadonlyFields<Omit<PlatformConfig["kubernetes"], "version">> & {
  readonly minorVersion: number;
  readonly memoryBytes: number;
};

function quantityBytes(q: string): number {
  const m = /^(\d+)(Mi|Gi|Ti)$/.exec(q);
  const unit = { Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 }[(m?.[2] ?? "Mi") as "Mi" | "Gi" | "Ti"];
  return Number(m?.[1] ?? 0) * unit;
}

export interface PlatformModel {
  readonly target: PlatformTarget;
  readonly image: PlatformConfig["image"];
  readonly nodes: PlatformConfig["nodes"];
  readonly adminUsername: PlatformConfig["adminUsername"];
  readonly broker: BrokerModel;
  readonly pki: PkiModel;
  readonly docker: ReadonlyFields<PlatformConfig["docker"]>;
  readonly kubernetes: KubernetesSettings;
}

/** The `platform` config as a program writes it (the stack file's shape); `parsePlatformConfig` validates it. */
export type PlatformConfigInput = Omit<z.input<typeof platformConfigSchema>, "broker" | "pki"> & {
  readonly broker: BrokerConfigInput;
  readonly pki?: PkiConfigInput;
};
export type PkiConfigInput = z.input<typeof pkiConfigSchema>;

/**
 * The platform for a component that deploys to one target: validated as the platform stack
 * validates it, and refused (naming `platform.target`) when it is for the other target.
 */
export function parsePlatformConfigFor(raw: unknown, target: PlatformTarget, component: string): PlatformModel {
  const model = parsePlatformConfig(raw);
  if (model.target !== target) {
    throw new ConfigError([{ key: `${PLATFORM_KEY}.target`, message: `is ${model.target}, but ${component} deploys to ${target}: set target: ${target}, or use the component for ${model.target}` }]);
  }
  return model;
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
  const { version: kubernetesVersion, ...k } = c.kubernetes;
  return {
    target: c.target,
    image: c.image,
    nodes: c.nodes,
    adminUsername: c.adminUsername,
    broker,
    pki,
    docker: c.docker,
    kubernetes: { ...k, minorVersion: Number(kubernetesVersion.slice(2)), memoryBytes: quantityBytes(k.memory) },
  };
}
