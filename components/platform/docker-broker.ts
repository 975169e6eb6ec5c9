/**
 * `DockerBroker`: the development broker on Docker. One network, a pinned image, and per node a
 * data volume and a container that gets the renderer's files as uploads (rabbitmq.conf holds the
 * admin password, so it is a secret), the Erlang flags as environment, the tuning's sysctls and
 * nofile ulimit, published ports and a health check. Several nodes form a cluster through classic
 * peer discovery and a shared, generated Erlang cookie. TLS: the CA bundle and the broker's
 * certificate and key (a secret, readable by the broker only) are uploaded next to the config; a
 * renewed certificate changes the uploads, so `pulumi up` replaces the containers with it.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { brokerListeners, listenerUrl, type Listener } from "../../core/broker-endpoints";
import { CONTAINER_CONFIG_FILE, CONTAINER_TLS_FILES, clusterStartsOneByOne, containerTokenKeyFiles, renderEnabledPlugins, renderEnv, renderRabbitmqConf } from "../../core/broker-config";
import { parsePlatformConfigFor, type PlatformConfigInput, type PlatformModel } from "../../core/platform-config";
import { publicKeyFor, type TokenPublicKey } from "./token-keys";

/** The official image runs RabbitMQ as this user; files it must read belong to it. */
const RABBITMQ_UID = "999";

/** The broker's TLS material (from PlatformPki). */
export interface BrokerTls {
  readonly caCertPem: pulumi.Input<string>;
  /** The broker's certificate chain. */
  readonly certPem: pulumi.Input<string>;
  /** Secret. */
  readonly privateKeyPem: pulumi.Input<string>;
  /** See core/broker-config.ts TlsFiles.depth. */
  readonly verifyDepth: number;
}

export interface DockerBrokerArgs {
  /**
   * The platform, in the shape of the platform stack's `platform` config (README, "Platform
   * stack"), with `target: docker`. Validated here with the stack's schema before anything is
   * registered: a mistake throws a ConfigError naming the key (`platform.broker.listeners.mqtts`).
   * Plain values, not Inputs: the broker's files are rendered from it at preview.
   */
  readonly platform: PlatformConfigInput;
  readonly tls: BrokerTls;
  /** The token signing keys' public keys (TokenSigningKeys), when the model has `broker.tokens`. */
  readonly tokenKeys?: readonly TokenPublicKey[];
}

/** Host port of a listener on node `i`: its port plus i x offset (node 0 keeps the real ports). */
export function publishedPort(model: PlatformModel, listener: Listener, i: number): number {
  return listener.port + i * model.docker.hostPortOffset;
}

/** Container, host and Erlang node host name of node `i` (platform.docker.namePrefix). */
export function nodeHost(prefix: string, i: number): string {
  return `${prefix}-${i}`;
}

/** The nofile limit the containers get: the tuning's, capped by the Docker host's (docker.maxOpenFiles). */
export function dockerOpenFiles(model: PlatformModel): number {
  const wanted = model.broker.tuning.openFiles;
  return model.docker.maxOpenFiles === undefined ? wanted : Math.min(wanted, model.docker.maxOpenFiles);
}

/** What the tuning wants but this Docker host cannot give, for the stack to report. */
export function dockerTuningGaps(model: PlatformModel): string[] {
  const wanted = model.broker.tuning.openFiles;
  const given = dockerOpenFiles(model);
  if (given >= wanted) return [];
  return [
    `nofile ${wanted}: the Docker host allows at most ${given} (platform.docker.maxOpenFiles), so each node holds fewer ` +
      `than ${wanted} sockets and files; raise the host's limit (fs.nr_open, the engine's LimitNOFILE) to get the rest`,
  ];
}

export class DockerBroker extends pulumi.ComponentResource {
  /** The validated platform, defaults filled in. */
  public readonly model: PlatformModel;
  public readonly adminUsername: string;
  public readonly adminPassword: pulumi.Output<string>;
  public readonly managementUrl: string;
  public readonly mqttEndpoints: string[];
  public readonly containers: docker.Container[];
  /** The platform's network (the token issuer joins it). */
  public readonly network: docker.Network;
  /** Tuning the Docker host cannot give (see dockerTuningGaps); also logged as warnings. */
  public readonly tuningGaps: string[];

  constructor(name: string, args: DockerBrokerArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validated before super(): a bad config registers nothing, not even this component.
    const model = parsePlatformConfigFor(args.platform, "docker", "DockerBroker");
    super("rabbitmq-mqtt:platform:DockerBroker", name, {}, opts);
    this.model = model;
    const child = { parent: this };

    const adminPassword = new random.RandomPassword(`${name}-admin-password`, { length: 32, special: false }, child);
    // Cluster members authenticate to each other with the cookie: as secret as the admin password.
    const cookie = new random.RandomPassword(`${name}-erlang-cookie`, { length: 48, special: false, lower: false }, child);
    this.adminUsername = model.adminUsername;
    this.adminPassword = pulumi.secret(adminPassword.result);

    const network = new docker.Network(`${name}-network`, { name: model.docker.network }, child);
    this.network = network;
    const image = new docker.RemoteImage(`${name}-image`, { name: model.image, keepLocally: true }, child);

    const hosts = Array.from({ length: model.nodes }, (_, i) => nodeHost(model.docker.namePrefix, i));
    const clusterNodes = hosts.map((h) => `rabbit@${h}`);
    const t = model.broker.tuning;
    const listeners = brokerListeners(model.broker);
    const openFiles = dockerOpenFiles(model);
    this.tuningGaps = dockerTuningGaps(model);
    for (const gap of this.tuningGaps) void pulumi.log.warn(`tuning not applied: ${gap}`, this);

    // Before 3.13 the nodes of a cluster start one by one, each once the previous is healthy
    // (clusterStartsOneByOne); from 3.13 all at once, as Pulumi creates them.
    const oneByOne = model.nodes > 1 && clusterStartsOneByOne(model.broker.version);
    const tokenKeyIds = model.broker.tokens?.signingKeyIds ?? [];
    const tokenKeyFiles = containerTokenKeyFiles(tokenKeyIds);
    const tokenKeyPems = tokenKeyIds.map((id) => ({ file: tokenKeyFiles[id] ?? "", pem: publicKeyFor(args.tokenKeys ?? [], id) }));
    this.containers = [];
    for (const [i, host] of hosts.entries()) {
      const previous = this.containers[i - 1];
      // Logical names stay `<component>-<i>` whatever the prefix, so renaming containers is an update of names only.
      const volume = new docker.Volume(`${name}-${i}-data`, { name: `${host}-data` }, child);
      const conf = pulumi.secret(
        this.adminPassword.apply((pw) =>
          renderRabbitmqConf(model.broker, {
            adminUsername: model.adminUsername,
            adminPassword: pw,
            cluster: { nodes: clusterNodes },
            openFiles,
            tls: { ...CONTAINER_TLS_FILES, depth: args.tls.verifyDepth },
            tokenKeyFiles,
          }),
        ),
      );
      const file = (path: string, content: pulumi.Input<string>, permissions: string): docker.types.input.ContainerUpload => ({
        file: path,
        content,
        owner: RABBITMQ_UID,
        group: RABBITMQ_UID,
        permissions,
      });
      const container = new docker.Container(
        `${name}-${i}`,
        {
          name: host,
          hostname: host,
          image: image.imageId,
          restart: "unless-stopped",
          envs: [`RABBITMQ_NODENAME=rabbit@${host}`, ...Object.entries(renderEnv(model.broker)).map(([k, v]) => `${k}=${v}`)],
          uploads: [
            file(CONTAINER_CONFIG_FILE, conf, "0600"),
            file("/etc/rabbitmq/enabled_plugins", renderEnabledPlugins(model.broker), "0644"),
            file(CONTAINER_TLS_FILES.caFile, args.tls.caCertPem, "0644"),
            file(CONTAINER_TLS_FILES.certFile, args.tls.certPem, "0644"),
            // Upload contents are stored in the state: the key stays a secret there.
            file(CONTAINER_TLS_FILES.keyFile, pulumi.secret(args.tls.privateKeyPem), "0600"),
            // Public keys: a new key id changes the uploads, so `pulumi up` replaces the containers.
            ...tokenKeyPems.map((k) => file(k.file, k.pem, "0644")),
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
          ports: listeners.map((listener) => ({
            internal: listener.port,
            external: publishedPort(model, listener, i),
            ip: model.docker.publishAddress,
          })),
          // Every tuning sysctl is a per-network-namespace net.* setting, which Docker sets per container.
          sysctls: { ...t.sysctls },
          ulimits: [{ name: "nofile", soft: openFiles, hard: openFiles }],
          healthcheck: {
            tests: ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"],
            interval: "15s",
            timeout: "10s",
            retries: 5,
            startPeriod: "60s",
          },
          ...(oneByOne ? { wait: true, waitTimeout: 300 } : {}),
        },
        // Replacing a container (new uploads: a renewed certificate, a new key) would otherwise
        // create the new one first, which fails on the fixed name and published ports (the
        // provider's create-before-delete, pulumi-docker#1356): the old one goes first.
        { ...child, deleteBeforeReplace: true, dependsOn: oneByOne && previous !== undefined ? [network, previous] : [network] },
      );
      this.containers.push(container);
    }

    // Published on every interface: clients on this host reach it on loopback, which the certificate names.
    const host = model.docker.publishAddress === "0.0.0.0" ? "127.0.0.1" : model.docker.publishAddress;
    this.managementUrl = `https://${host}:${model.broker.listeners.managementHttps}`;
    this.mqttEndpoints = listeners
      .filter((l) => ["mqtts", "wss", "mqtt", "ws"].includes(l.protocol))
      .map((l) => listenerUrl(l, host));
    this.registerOutputs({ managementUrl: this.managementUrl, mqttEndpoints: this.mqttEndpoints, tuningGaps: this.tuningGaps });
  }
}
