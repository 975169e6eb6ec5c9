/**
 * `DockerBroker`: the development broker on Docker. One network, a pinned image, and per node a
 * data volume and a container that gets the renderer's files as uploads (rabbitmq.conf holds the
 * admin password, so it is a secret), the Erlang flags as environment, the tuning's sysctls and
 * nofile ulimit, published ports and a health check. Several nodes form a cluster through classic
 * peer discovery and a shared, generated Erlang cookie.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { CONTAINER_CONFIG_FILE, renderEnabledPlugins, renderEnv, renderRabbitmqConf } from "../../core/broker-config";
import type { PlatformModel } from "../../core/platform-config";

/** The official image runs RabbitMQ as this user; files it must read belong to it. */
const RABBITMQ_UID = "999";

export interface DockerBrokerArgs {
  readonly model: PlatformModel;
}

export interface PublishedPorts {
  readonly mqtt: number;
  readonly webMqtt: number;
  readonly management: number;
  readonly amqp: number | null;
  readonly tenantMqtt: readonly number[];
}

/** Host ports of node `i`: each listener's port plus i x offset (node 0 keeps the real ports). */
export function publishedPorts(model: PlatformModel, i: number): PublishedPorts {
  const shift = (p: number) => p + i * model.docker.hostPortOffset;
  const l = model.broker.listeners;
  return {
    mqtt: shift(l.mqtt),
    webMqtt: shift(l.webMqtt),
    management: shift(l.management),
    amqp: l.amqp === null ? null : shift(l.amqp),
    tenantMqtt: l.tenantMqtt.map(shift),
  };
}

export function nodeHost(name: string, i: number): string {
  return `${name}-${i}`;
}

export class DockerBroker extends pulumi.ComponentResource {
  public readonly adminUsername: string;
  public readonly adminPassword: pulumi.Output<string>;
  public readonly managementUrl: string;
  public readonly mqttEndpoints: string[];
  public readonly containers: docker.Container[];

  constructor(name: string, args: DockerBrokerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rabbitmq-mqtt:platform:DockerBroker", name, {}, opts);
    const { model } = args;
    const child = { parent: this };

    const adminPassword = new random.RandomPassword(`${name}-admin-password`, { length: 32, special: false }, child);
    // Cluster members authenticate to each other with the cookie: as secret as the admin password.
    const cookie = new random.RandomPassword(`${name}-erlang-cookie`, { length: 48, special: false, lower: false }, child);
    this.adminUsername = model.adminUsername;
    this.adminPassword = pulumi.secret(adminPassword.result);

    const network = new docker.Network(`${name}-network`, { name: model.docker.network }, child);
    const image = new docker.RemoteImage(`${name}-image`, { name: model.image, keepLocally: true }, child);

    const hosts = Array.from({ length: model.nodes }, (_, i) => nodeHost(name, i));
    const clusterNodes = hosts.map((h) => `rabbit@${h}`);
    const t = model.broker.tuning;

    this.containers = hosts.map((host, i) => {
      const volume = new docker.Volume(`${host}-data`, { name: `${host}-data` }, child);
      const conf = pulumi.secret(
        this.adminPassword.apply((pw) =>
          renderRabbitmqConf(model.broker, { adminUsername: model.adminUsername, adminPassword: pw, cluster: { nodes: clusterNodes } }),
        ),
      );
      const ports = publishedPorts(model, i);
      const l = model.broker.listeners;
      const publish = (internal: number, external: number): docker.types.input.ContainerPort => ({
        internal,
        external,
        ip: model.docker.publishAddress,
      });
      return new docker.Container(
        host,
        {
          name: host,
          hostname: host,
          image: image.imageId,
          restart: "unless-stopped",
          envs: [`RABBITMQ_NODENAME=rabbit@${host}`, ...Object.entries(renderEnv(model.broker)).map(([k, v]) => `${k}=${v}`)],
          uploads: [
            { file: CONTAINER_CONFIG_FILE, content: conf, owner: RABBITMQ_UID, group: RABBITMQ_UID, permissions: "0600" },
            { file: "/etc/rabbitmq/enabled_plugins", content: renderEnabledPlugins(model.broker), owner: RABBITMQ_UID, group: RABBITMQ_UID, permissions: "0644" },
            {
              file: "/var/lib/rabbitmq/.erlang.cookie",
              content: pulumi.secret(cookie.result),
              owner: RABBITMQ_UID,
              group: RABBITMQ_UID,
              permissions: "0400",
            },
          ],
          volumes: [{ volumeName: volume.name, containerPath: "/var/lib/rabbitmq/mnesia" }],
          networksAdvanced: [{ name: network.name, aliases: [host] }],
          ports: [
            publish(l.mqtt, ports.mqtt),
            publish(l.webMqtt, ports.webMqtt),
            publish(l.management, ports.management),
            ...(l.amqp !== null && ports.amqp !== null ? [publish(l.amqp, ports.amqp)] : []),
            ...l.tenantMqtt.map((p, k) => publish(p, ports.tenantMqtt[k]!)),
          ],
          // Every tuning sysctl is a per-network-namespace net.* setting, which Docker sets per container.
          sysctls: { ...t.sysctls },
          ulimits: [{ name: "nofile", soft: t.openFiles, hard: t.openFiles }],
          healthcheck: {
            tests: ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"],
            interval: "15s",
            timeout: "10s",
            retries: 5,
            startPeriod: "60s",
          },
        },
        { ...child, dependsOn: [network] },
      );
    });

    const first = publishedPorts(model, 0);
    this.managementUrl = `http://${model.docker.publishAddress}:${first.management}`;
    this.mqttEndpoints = [
      `mqtt://${model.docker.publishAddress}:${first.mqtt}`,
      `ws://${model.docker.publishAddress}:${first.webMqtt}/ws`,
      ...first.tenantMqtt.map((p) => `mqtt://${model.docker.publishAddress}:${p}`),
    ];
    this.registerOutputs({ managementUrl: this.managementUrl, mqttEndpoints: this.mqttEndpoints });
  }
}
