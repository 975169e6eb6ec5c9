/**
 * The one renderer from the broker model to the broker's own files: rabbitmq.conf,
 * enabled_plugins and the environment (Erlang flags). It knows the version differences that
 * matter (shared notes):
 * - `mqtt.subscription_ttl` (ms) until 3.12; rejected from 3.13, which has
 *   `mqtt.max_session_expiry_interval_seconds` instead;
 * - `mqtt.default_user`/`default_pass` are never rendered (gone in 4.0, and anonymous MQTT is off);
 * - `anonymous_login_user = none` from 3.13 (core/broker-baseline.ts).
 * Deployment targets adapt only what they must (bind address, paths) through RenderOptions.
 */
import { securityBaseline, versionAtLeast } from "./broker-baseline";
import type { BrokerModel } from "./platform-config";

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
}

/**
 * Where container targets put the rendered rabbitmq.conf, and the directory RABBITMQ_CONFIG_FILES
 * points at. The official image ships its own defaults in /etc/rabbitmq/conf.d (loaded after
 * rabbitmq.conf, so they would win); pointing RABBITMQ_CONFIG_FILES at a directory holding only
 * the rendered file makes it the broker's whole configuration (RabbitMQ 3.9+).
 */
export const CONTAINER_CONFIG_DIR = "/etc/rabbitmq/rabbitmq-mqtt.d";
export const CONTAINER_CONFIG_FILE = `${CONTAINER_CONFIG_DIR}/10-rendered.conf`;

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
  const bind = opts.bindAddress;
  const l = model.listeners;
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
    [
      "Listeners (management on its own port)",
      [
        l.amqp === null ? "listeners.tcp = none" : `listeners.tcp.default = ${listen(l.amqp, bind)}`,
        `management.tcp.port = ${l.management}`,
        ...(bind !== undefined ? [`management.tcp.ip = ${bind}`] : []),
        `mqtt.listeners.tcp.default = ${listen(l.mqtt, bind)}`,
        ...l.tenantMqtt.map((p) => `mqtt.listeners.tcp.tenant_${p} = ${listen(p, bind)}`),
        `web_mqtt.tcp.port = ${l.webMqtt}`,
        ...(bind !== undefined ? [`web_mqtt.tcp.ip = ${bind}`] : []),
      ],
    ],
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
        // With three or more nodes, a minority side of a partition pauses instead of diverging.
        ...(opts.cluster.nodes.length >= 3 ? ["cluster_partition_handling = pause_minority"] : []),
      ],
    ]);
  }
  const header = `# Rendered by rabbitmq-mqtt for RabbitMQ ${model.versionText}; do not edit by hand.\n`;
  return header + sections.map(([title, lines]) => `\n## ${title}\n${lines.join("\n")}\n`).join("");
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
