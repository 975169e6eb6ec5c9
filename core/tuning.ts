/**
 * Kernel and runtime tuning for many MQTT connections, as one plan that each target applies the
 * way it can (rabbitmq.conf, Erlang flags, ulimits, sysctls). Figures from the shared notes:
 * open files about 1.5 x connections, ERL_MAX_PORTS to match, listen backlog 4096+ (here half the
 * expected connections) with the kernel's accept queues to match, small equal socket buffers (not under 8 KiB), FIN timeout
 * 15-30 s, and the management metrics collector off for large fleets.
 *
 * `+A 128` (the async thread pool size) is deliberately absent: since RabbitMQ 3.8.10 it has no
 * effect on networking, so it would only be noise in every node's command line.
 */

export const TUNING_PROFILES = ["default", "large-fleet"] as const;
export type TuningProfileName = (typeof TUNING_PROFILES)[number];

export interface TuningInput {
  readonly profile: TuningProfileName;
  /** MQTT connections one node should hold. */
  readonly expectedConnections: number;
}

export interface Tuning {
  /** nofile limit (soft = hard) for the broker process. */
  readonly openFiles: number;
  /** ERL_MAX_PORTS: every socket and file is an Erlang port. */
  readonly erlMaxPorts: number;
  /** `+P`: one Erlang process per connection plus several per channel/queue. */
  readonly erlMaxProcesses: number;
  readonly mqttListen: {
    readonly backlog: number;
    readonly nodelay: boolean;
    /** Equal send/receive buffers in bytes; undefined leaves the kernel's autotuning. */
    readonly buffer?: number;
    readonly keepalive: boolean;
  };
  /** Kernel settings (names as in /proc/sys, dotted). */
  readonly sysctls: Readonly<Record<string, string>>;
  readonly disableMetricsCollector: boolean;
}

/**
 * Connections one listener accepts when the node may open `openFiles` files: all but a reserve
 * (2.5%, at least 256) for what the node itself needs (management and CLI connections, cluster
 * links, message store and log files). Without it a flood takes the last descriptor and the node no
 * longer answers its management API or CLI (seen on 4.3.6 with 19,953 MQTT connections and nofile
 * 20,000: bench/docker-connections.ts). See connectionCapLines in core/broker-config.ts.
 */
export function connectionMax(openFiles: number): number {
  return Math.max(1, openFiles - Math.max(256, Math.ceil(openFiles * 0.025)));
}

/**
 * The listen backlog (and the kernel queues that cap it): half the node's expected connections, as
 * a power of two, at least 4096 (the notes' floor) and at most 65535. After a node restart or a
 * network blip its clients reconnect at once; a full accept queue drops their SYNs and each
 * dropped client waits a 1 s, then 3 s, retransmit (the reconnect storm in bench/docker-connections.ts).
 */
export function listenBacklog(expectedConnections: number): number {
  let b = 4096;
  while (b < expectedConnections / 2 && b < 65536) b *= 2;
  return Math.min(b, 65535);
}

/** RabbitMQ's own defaults for Erlang processes and ports (3.10 and 4.x). */
const ERLANG_DEFAULT_PROCESSES = 1_048_576;
const ERLANG_DEFAULT_PORTS = 65_536;

export function tuningFor(input: TuningInput): Tuning {
  const conns = input.expectedConnections;
  const openFiles = Math.max(ERLANG_DEFAULT_PORTS, Math.ceil(conns * 1.5));
  const large = input.profile === "large-fleet";
  const backlog = listenBacklog(conns);
  return {
    openFiles,
    erlMaxPorts: openFiles,
    erlMaxProcesses: Math.max(ERLANG_DEFAULT_PROCESSES, conns * 4),
    mqttListen: {
      backlog,
      nodelay: true,
      // Idle IoT connections send little: 32 KiB each way bounds kernel memory per socket.
      ...(large ? { buffer: 32_768 } : {}),
      keepalive: true,
    },
    sysctls: {
      // The listen backlog is capped by these; raise them together.
      "net.core.somaxconn": String(backlog),
      "net.ipv4.tcp_max_syn_backlog": String(backlog),
      "net.ipv4.tcp_fin_timeout": large ? "15" : "30",
      // Find dead peers (phones that lost coverage) within minutes, not the kernel's 2 hours.
      "net.ipv4.tcp_keepalive_time": "300",
      "net.ipv4.tcp_keepalive_intvl": "30",
      "net.ipv4.tcp_keepalive_probes": "4",
    },
    disableMetricsCollector: large,
  };
}

/**
 * Which sysctls a pod may set itself, by Kubernetes version, without a kubelet allow-list (the
 * "safe" set): tcp_fin_timeout and tcp_keepalive_* from 1.29. The rest (net.core.somaxconn,
 * net.ipv4.tcp_max_syn_backlog) are "unsafe" for Kubernetes and need either the node's kubelet
 * allow-list or a privileged init container, which a stack must opt into.
 */
export function splitKubernetesSysctls(
  sysctls: Readonly<Record<string, string>>,
  kubernetesMinor: number,
): { pod: Record<string, string>; privileged: Record<string, string> } {
  const safe = new Set([
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    ...(kubernetesMinor >= 29
      ? ["net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"]
      : []),
    ...(kubernetesMinor >= 32 ? ["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"] : []),
  ]);
  const pod: Record<string, string> = {};
  const privileged: Record<string, string> = {};
  for (const [k, v] of Object.entries(sysctls)) (safe.has(k) ? pod : privileged)[k] = v;
  return { pod, privileged };
}
