/**
 * The one renderer from the broker model to the broker's own files: rabbitmq.conf,
 * enabled_plugins and the environment (Erlang flags). It knows the version differences that
 * matter (shared notes):
 * - `mqtt.subscription_ttl` (ms) until 3.12; rejected from 3.13, which has
 *   `mqtt.max_session_expiry_interval_seconds` instead;
 * - `mqtt.default_user`/`default_pass` are never rendered (gone in 4.0, and anonymous MQTT is off);
 * - `anonymous_login_user = none` from 3.13 (core/broker-baseline.ts);
 * - Web MQTT over TLS takes no client certificates (its schema has no `verify`), so browsers log
 *   in with passwords over wss and certificate login is MQTT over TLS;
 * - `mqtt.ssl_cert_client_id_from = distinguished_name` from 4.0 (in the 4.0.5 and 4.3.6
 *   schemas): a client with a verified certificate must use the certificate's subject DN as its
 *   client id, so no device can take over or use another device's session by choosing its id.
 * - token sign-in (`tokens`): the OAuth 2 backend is `rabbit_auth_backend_oauth2` in 3.10's
 *   `auth_backends` and `oauth2` from 4.0; `auth_oauth2.verify_aud` exists from 4.0 and
 *   `auth_oauth2.require_exp` from 4.3 (read from each release's schema). A token without an
 *   audience is refused on every release (seen), but 3.10 and 4.0 take a token without expiry and
 *   no release checks `nbf`: only the token issuer, which holds the signing key, can be relied on to
 *   set `exp` and no `nbf` (tests/e2e/token-scopes.e2e.test.ts).
 * Deployment targets adapt only what they must (bind address, paths) through RenderOptions.
 */
import { securityBaseline, versionAtLeast, type BrokerVersion } from "./broker-baseline";
import type { BrokerModel, TokensModel } from "./platform-config";
import { connectionMax } from "./tuning";

export interface RenderOptions {
  readonly adminUsername: string;
  readonly adminPassword: string;
  /** Interface every listener binds to; all interfaces when absent (containers). */
  readonly bindAddress?: string;
  /** See core/broker-baseline.ts: unsafe for brokers whose AMQP port identities can reach. */
  readonly amqpPasswordLogins?: boolean;
  /** Peer discovery from a fixed list of Erlang node names (Docker, Kubernetes StatefulSet, local clusters). */
  readonly cluster?: { readonly nodes: readonly string[] };
  /**
   * The container's memory limit: the memory alarm is relative to it, not to the host's memory
   * (which a node in a container would otherwise see).
   */
  readonly memoryLimitBytes?: number;
  /**
   * The open-files limit the node really gets, when the target caps the tuning's (Docker's
   * `docker.maxOpenFiles`): the connection caps are derived from it.
   */
  readonly openFiles?: number;
  /**
   * Where the broker finds its TLS files. Required unless the model keeps plaintext listeners
   * (then a broker without TLS can be rendered, e.g. by tests that look at authorization only).
   */
  readonly tls?: TlsFiles;
  /**
   * Where the broker finds each token signing key's public key (PEM), by key id. Required when
   * the model has `tokens`: every key id listed there.
   */
  readonly tokenKeyFiles?: Readonly<Record<string, string>>;
}

export interface TlsFiles {
  /** The CA bundle clients' certificates must chain to (the root; tenant intermediates come with the client). */
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /**
   * Erlang's `depth`: how many intermediate CAs may sit between a peer's certificate and a CA of
   * the bundle (0 = issued directly by it). The PKI decides: 1 with tenant intermediates.
   */
  readonly depth: number;
}

/** Where container targets mount the TLS files (the key is readable by the broker only). */
export const CONTAINER_TLS_DIR = "/etc/rabbitmq/tls";
export const CONTAINER_TLS_FILES = {
  caFile: `${CONTAINER_TLS_DIR}/ca.pem`,
  certFile: `${CONTAINER_TLS_DIR}/cert.pem`,
  keyFile: `${CONTAINER_TLS_DIR}/key.pem`,
} as const;

/**
 * TLS 1.2 suites: forward secrecy (ECDHE) and AEAD only, for ECDSA and RSA server keys. TLS 1.3
 * suites are all AEAD; they are listed too because an explicit list replaces Erlang's default.
 */
export const TLS_CIPHERS = [
  "TLS_AES_256_GCM_SHA384",
  "TLS_AES_128_GCM_SHA256",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
] as const;

/**
 * Where container targets put the rendered rabbitmq.conf, and the directory RABBITMQ_CONFIG_FILES
 * points at. The official image ships its own defaults in /etc/rabbitmq/conf.d (loaded after
 * rabbitmq.conf, so they would win); pointing RABBITMQ_CONFIG_FILES at a directory holding only
 * the rendered file makes it the broker's whole configuration (RabbitMQ 3.9+).
 */
export const CONTAINER_CONFIG_DIR = "/etc/rabbitmq/rabbitmq-mqtt.d";
export const CONTAINER_CONFIG_FILE = `${CONTAINER_CONFIG_DIR}/10-rendered.conf`;

/** Where container targets put the token signing keys' public keys: `<dir>/<key id>.pem`. */
export const CONTAINER_TOKEN_KEYS_DIR = "/etc/rabbitmq/oauth2";
export function containerTokenKeyFiles(keyIds: readonly string[]): Record<string, string> {
  return Object.fromEntries(keyIds.map((id) => [id, `${CONTAINER_TOKEN_KEYS_DIR}/${id}.pem`]));
}

export interface RenderedBrokerFiles {
  /** Holds the admin password: deploy it as a secret. */
  readonly rabbitmqConf: string;
  readonly enabledPlugins: string;
  /** Environment of the broker process. */
  readonly env: Readonly<Record<string, string>>;
}

function listen(port: number, bind: string | undefined): string {
  return bind === undefined ? String(port) : `${bind}:${port}`;
}

export function renderRabbitmqConf(model: BrokerModel, opts: RenderOptions): string {
  const t = model.tuning;
  const sections: [string, string[]][] = [
    [
      "Security baseline: no anonymous MQTT, no guest, no password logins over AMQP 0-9-1",
      securityBaseline({
        version: model.version,
        adminUsername: opts.adminUsername,
        adminPassword: opts.adminPassword,
        ...(opts.amqpPasswordLogins !== undefined ? { amqpPasswordLogins: opts.amqpPasswordLogins } : {}),
      }),
    ],
    ["Listeners", listenerLines(model, opts)],
    ...(opts.tls !== undefined ? ([["TLS: peer verification, versions, ciphers, certificate login", tlsLines(model, opts.tls)]] as [string, string[]][]) : []),
    ...(model.tokens !== undefined ? ([["Token sign-in for apps: the OAuth 2 backend beside the internal one", tokenLines(model, model.tokens, opts.tokenKeyFiles)]] as [string, string[]][]) : []),
    [
      "Resource alarms",
      [
        ...(opts.memoryLimitBytes !== undefined ? [`total_memory_available_override_value = ${opts.memoryLimitBytes}`] : []),
        `vm_memory_high_watermark.relative = ${model.memoryHighWatermark}`,
        `disk_free_limit.absolute = ${model.diskFreeLimitMiB}MiB`,
      ],
    ],
    [
      "MQTT sessions",
      versionAtLeast(model.version, 3, 13)
        ? [`mqtt.max_session_expiry_interval_seconds = ${model.mqttSessionExpirySeconds}`]
        : [`mqtt.subscription_ttl = ${model.mqttSessionExpirySeconds * 1000}`],
    ],
    [
      "Tuning for many connections (see core/tuning.ts)",
      [
        ...connectionCapLines(model, connectionMax(opts.openFiles ?? t.openFiles)),
        `mqtt.tcp_listen_options.backlog = ${t.mqttListen.backlog}`,
        `mqtt.tcp_listen_options.nodelay = ${t.mqttListen.nodelay}`,
        `mqtt.tcp_listen_options.keepalive = ${t.mqttListen.keepalive}`,
        ...(t.mqttListen.buffer !== undefined
          ? [`mqtt.tcp_listen_options.sndbuf = ${t.mqttListen.buffer}`, `mqtt.tcp_listen_options.recbuf = ${t.mqttListen.buffer}`]
          : []),
        ...(t.disableMetricsCollector ? ["management_agent.disable_metrics_collector = true"] : []),
      ],
    ],
  ];
  if (opts.cluster !== undefined && opts.cluster.nodes.length > 1) {
    sections.push([
      "Cluster formation",
      [
        "cluster_formation.peer_discovery_backend = classic_config",
        ...opts.cluster.nodes.map((n, i) => `cluster_formation.classic_config.nodes.${i + 1} = ${n}`),
        // With three or more nodes, persistent MQTT sessions live in quorum queues, replicated to
        // every node: a session's node going away neither stalls its publishers nor takes its
        // messages with it (a classic queue stalls them until its node returns, and its messages
        // are only on that node: tests/e2e/docker/cluster-faults.e2e.test.ts). Only for new
        // clusters: a session queue declared classic cannot become quorum (its client fails to
        // subscribe). Before 4.2 the metadata store of a new cluster is Mnesia, whose minority
        // side of a partition must pause instead of diverging; from 4.2 it is Khepri (Raft: a
        // minority cannot change metadata), and 4.3 removed Mnesia and ignores the key (4.3.0
        // release notes), so it is not rendered there.
        ...(opts.cluster.nodes.length >= 3
          ? [...(versionAtLeast(model.version, 4, 2) ? [] : ["cluster_partition_handling = pause_minority"]), "mqtt.durable_queue_type = quorum"]
          : []),
      ],
    ]);
  }
  const header = `# Rendered by rabbitmq-mqtt for RabbitMQ ${model.versionText}; do not edit by hand.\n`;
  return header + sections.map(([title, lines]) => `\n## ${title}\n${lines.join("\n")}\n`).join("");
}

/**
 * Caps that keep a node manageable when clients would take every descriptor it may open
 * (`max` = core/tuning.ts connectionMax). The key differs per version (read from each release's
 * schema and listener supervisor):
 * - ranch's per-listener `max_connections`, which RabbitMQ takes from `connection_max` up to 3.x and
 *   from `ranch_connection_max` in 4.x (where `connection_max` counts AMQP connections only);
 *   a full listener stops accepting, and further clients wait in the listen backlog;
 * - Web MQTT's own listeners: `web_mqtt.max_connections`;
 * - from 4.3, `mqtt.max_connections`: MQTT connections of the whole node (all listeners, Web MQTT
 *   included), refused at CONNECT once reached (not in 4.0.5's schema; 4.1 and 4.2 unchecked).
 * The per-listener caps bound one listener each: a flood spread over several listeners at once is
 * bounded by their sum, which only 4.3's node-wide cap keeps below the node's descriptors.
 */
function connectionCapLines(model: BrokerModel, max: number): string[] {
  return [
    `${versionAtLeast(model.version, 4, 0) ? "ranch_connection_max" : "connection_max"} = ${max}`,
    `web_mqtt.max_connections = ${max}`,
    ...(versionAtLeast(model.version, 4, 3) ? [`mqtt.max_connections = ${max}`] : []),
  ];
}

function listenerLines(model: BrokerModel, opts: RenderOptions): string[] {
  const bind = opts.bindAddress;
  const l = model.listeners;
  if (opts.tls === undefined && !model.plaintextListeners) {
    throw new Error("TLS files are required: the broker has no plaintext listeners (plaintextListeners is false)");
  }
  const lines: string[] = [];
  if (model.plaintextListeners) {
    lines.push(
      l.amqp === null ? "listeners.tcp = none" : `listeners.tcp.default = ${listen(l.amqp, bind)}`,
      `management.tcp.port = ${l.management}`,
      ...(bind !== undefined ? [`management.tcp.ip = ${bind}`] : []),
      `mqtt.listeners.tcp.default = ${listen(l.mqtt, bind)}`,
      ...l.tenantMqtt.map((p) => `mqtt.listeners.tcp.tenant_${p} = ${listen(p, bind)}`),
      `web_mqtt.tcp.port = ${l.webMqtt}`,
      ...(bind !== undefined ? [`web_mqtt.tcp.ip = ${bind}`] : []),
    );
  } else {
    // Each plugin starts a plaintext listener on its default port unless told not to. Web MQTT
    // can be told so (`web_mqtt.tcp.listener = none`) only up to 3.10; later schemas accept an
    // address only, so there the plaintext listener is confined to the node's loopback interface.
    lines.push("listeners.tcp = none", "mqtt.listeners.tcp = none");
    lines.push(versionAtLeast(model.version, 3, 11) ? `web_mqtt.tcp.ip = 127.0.0.1` : "web_mqtt.tcp.listener = none");
    if (versionAtLeast(model.version, 3, 11)) lines.push(`web_mqtt.tcp.port = ${l.webMqtt}`);
  }
  if (opts.tls !== undefined) {
    lines.push(
      l.amqps === null ? "listeners.ssl = none" : `listeners.ssl.default = ${listen(l.amqps, bind)}`,
      `mqtt.listeners.ssl.default = ${listen(l.mqtts, bind)}`,
      ...l.tenantMqtts.map((p) => `mqtt.listeners.ssl.tenant_${p} = ${listen(p, bind)}`),
      `web_mqtt.ssl.port = ${l.webMqtts}`,
      ...(bind !== undefined ? [`web_mqtt.ssl.ip = ${bind}`] : []),
      `management.ssl.port = ${l.managementHttps}`,
      ...(bind !== undefined ? [`management.ssl.ip = ${bind}`] : []),
    );
  }
  return lines;
}

/** The TLS options of one listener family (`ssl_options`, `web_mqtt.ssl`, `management.ssl`). */
function tlsOptionLines(prefix: string, model: BrokerModel, files: TlsFiles, peer: "verify" | "none"): string[] {
  return [
    `${prefix}.cacertfile = ${files.caFile}`,
    `${prefix}.certfile = ${files.certFile}`,
    `${prefix}.keyfile = ${files.keyFile}`,
    // Clients without a certificate still connect (apps log in with passwords over TLS); a
    // certificate that is presented must chain to the CA within `depth`, or the handshake fails.
    ...(peer === "verify" ? [`${prefix}.verify = verify_peer`, `${prefix}.fail_if_no_peer_cert = false`] : []),
    `${prefix}.depth = ${files.depth}`,
    ...model.tls.versions.map((v, i) => `${prefix}.versions.${i + 1} = ${v}`),
    ...TLS_CIPHERS.map((c, i) => `${prefix}.ciphers.${i + 1} = ${c}`),
    `${prefix}.honor_cipher_order = true`,
    `${prefix}.honor_ecc_order = true`,
    // TLS 1.3 has no renegotiation: OTP's ssl:listen refuses these options unless TLS 1.2 is
    // offered (seen on OTP 25). RabbitMQ 3.10.8 happened to start anyway; they are left out.
    ...(model.tls.versions.includes("tlsv1.2") ? [`${prefix}.secure_renegotiate = true`, `${prefix}.client_renegotiation = false`] : []),
  ];
}

/** RabbitMQ's default is 5,000. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 30_000;

function tlsLines(model: BrokerModel, files: TlsFiles): string[] {
  if (!/^[A-Za-z0-9._/-]+$/.test(files.caFile + files.certFile + files.keyFile)) {
    throw new Error("TLS file paths must be plain paths (rabbitmq.conf has no quoting)");
  }
  return [
    ...tlsOptionLines("ssl_options", model, files, "verify"),
    // Web MQTT has no client-certificate options: browsers log in with passwords over wss.
    ...tlsOptionLines("web_mqtt.ssl", model, files, "none"),
    ...tlsOptionLines("management.ssl", model, files, "verify"),
    // Every TLS listener's handshake deadline (each ranch listener takes it from this key). A
    // fleet that reconnects at once, over slow links, queues its handshakes on the node's
    // schedulers, and the 5 s default closes the slowest before their CONNECT. Seen once: 331 of
    // 500 TLS logins at once "closed before CONNACK" on 3.10.8 with the 5 s default on a 2-core
    // machine at load average 10 (the cause was not isolated; the same burst passed at lower load).
    `ssl_handshake_timeout = ${TLS_HANDSHAKE_TIMEOUT_MS}`,
    `mqtt.ssl_cert_login = ${model.tls.certificateLogin}`,
    `ssl_cert_login_from = ${model.tls.certificateLoginFrom}`,
    // Whatever the login source, the client id is the DN: tenant stacks grant a certificate
    // identity the session queues of exactly that client id (core/permissions.ts).
    ...(versionAtLeast(model.version, 4, 0) ? ["mqtt.ssl_cert_client_id_from = distinguished_name"] : []),
  ];
}

/**
 * The internal backend stays first: services, gateways and certificate devices log in as before.
 * A login it refuses (an app's token is no user's password) goes to the OAuth 2 backend, which
 * takes the token from the password field and ignores the username. Keys are read from files at
 * boot (no JWKS fetch). No `default_key` is rendered; a token without a `kid` is still verified
 * against the keys in force on every release (seen), and one signed by any other key is refused.
 */
function tokenLines(model: BrokerModel, tokens: TokensModel, keyFiles: Readonly<Record<string, string>> | undefined): string[] {
  const lines = [
    "auth_backends.1 = internal",
    `auth_backends.2 = ${versionAtLeast(model.version, 4, 0) ? "oauth2" : "rabbit_auth_backend_oauth2"}`,
    `auth_oauth2.resource_server_id = ${tokens.resourceServerId}`,
  ];
  for (const id of tokens.signingKeyIds) {
    const file = keyFiles?.[id];
    if (file === undefined) throw new Error(`no public key file for token signing key '${id}'`);
    if (!/^[A-Za-z0-9._/-]+$/.test(file)) throw new Error("token key file paths must be plain paths (rabbitmq.conf has no quoting)");
    lines.push(`auth_oauth2.signing_keys.${id} = ${file}`);
  }
  lines.push(`auth_oauth2.algorithms.1 = ${tokens.algorithm}`);
  if (versionAtLeast(model.version, 4, 0)) lines.push("auth_oauth2.verify_aud = true");
  if (versionAtLeast(model.version, 4, 3)) lines.push("auth_oauth2.require_exp = true");
  return lines;
}

export function renderEnabledPlugins(model: BrokerModel): string {
  return `[${model.plugins.join(",")}].\n`;
}

export function renderEnv(model: BrokerModel): Record<string, string> {
  return {
    RABBITMQ_CONFIG_FILES: CONTAINER_CONFIG_DIR,
    ERL_MAX_PORTS: String(model.tuning.erlMaxPorts),
    // +A 128 is left out on purpose: no effect on networking since 3.8.10 (core/tuning.ts).
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: `+P ${model.tuning.erlMaxProcesses}`,
  };
}

export function renderBrokerFiles(model: BrokerModel, opts: RenderOptions): RenderedBrokerFiles {
  return { rabbitmqConf: renderRabbitmqConf(model, opts), enabledPlugins: renderEnabledPlugins(model), env: renderEnv(model) };
}

/**
 * Whether a cluster's nodes must start one after another. Before 3.13 the MQTT plugin tracks
 * client ids in a Raft cluster of its own (mqtt_node), which each node joins once at boot by
 * asking a peer it found: nodes booting together can leave one outside it for good, and that
 * node then refuses every MQTT CONNECT ("client ID registration timed out", seen on 3.10.8 with
 * three containers created at once). From 3.13 client ids are tracked without Raft.
 */
export function clusterStartsOneByOne(version: BrokerVersion): boolean {
  return !versionAtLeast(version, 3, 13);
}
