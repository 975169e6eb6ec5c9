/**
 * `KubernetesBroker`: the production broker as a plain StatefulSet (see README for why not the
 * Cluster Operator): a headless Service gives every pod a stable DNS name, so the renderer's
 * classic peer discovery lists `rabbit@<pod>.<headless>.<namespace>.svc.cluster.local` for every
 * replica (long node names), the same on every RabbitMQ version and without API access for pods.
 * Around it: a Secret for rabbitmq.conf (it holds the admin password) and the Erlang cookie, a
 * ConfigMap for enabled_plugins, one Service per listener, a PodDisruptionBudget, pod
 * anti-affinity, requests = limits, a volume claim per pod, and the tuning's sysctls split into
 * what a pod may set on this Kubernetes version and what needs a privileged init container.
 * TLS: a Secret with the CA bundle and the broker's certificate and key, mounted read-only; the
 * pod template carries a digest of the certificate, so a renewal rolls the pods onto it.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { createHash } from "node:crypto";
import { brokerListeners, listenerUrl } from "../../core/broker-endpoints";
import {
  CONTAINER_CONFIG_FILE,
  CONTAINER_TLS_DIR,
  CONTAINER_TLS_FILES,
  CONTAINER_TOKEN_KEYS_DIR,
  clusterStartsOneByOne,
  containerTokenKeyFiles,
  renderEnabledPlugins,
  renderEnv,
  renderRabbitmqConf,
} from "../../core/broker-config";
import { parsePlatformConfigFor, type PlatformConfigInput, type PlatformModel } from "../../core/platform-config";
import { splitKubernetesSysctls } from "../../core/tuning";
import type { BrokerTls } from "./docker-broker";
import { publicKeyFor, type TokenPublicKey } from "./token-keys";

export interface KubernetesBrokerArgs {
  /**
   * The platform, in the shape of the platform stack's `platform` config (README, "Platform
   * stack"), with `target: kubernetes`. Validated here with the stack's schema before anything is
   * registered (odd node count of at least 3, no plaintext listeners, ...): a mistake throws a
   * ConfigError naming the key. Plain values, not Inputs: the broker's files are rendered from it.
   */
  readonly platform: PlatformConfigInput;
  readonly tls: BrokerTls;
  /** The token signing keys' public keys (TokenSigningKeys), when the model has `broker.tokens`. */
  readonly tokenKeys?: readonly TokenPublicKey[];
}

/** Names of the headless Service and of each listener's Service, for certificates and URLs. */
export function kubernetesServiceNames(model: PlatformModel, name: string): { headless: string; services: string[] } {
  return { headless: `${name}-nodes`, services: brokerListeners(model.broker).map((l) => `${name}-${l.name}`) };
}

/** What the tuning wants but Kubernetes cannot apply here, for the stack to report. */
export function kubernetesTuningGaps(model: PlatformModel): string[] {
  const { privileged } = splitKubernetesSysctls(model.broker.tuning.sysctls, model.kubernetes.minorVersion);
  const gaps = [
    `nofile ${model.broker.tuning.openFiles}: Kubernetes has no per-pod ulimit; the container runtime's default applies (set it on the nodes)`,
  ];
  if (!model.kubernetes.privilegedSysctls && Object.keys(privileged).length > 0) {
    gaps.push(
      `${Object.keys(privileged).join(", ")}: not settable by a pod on Kubernetes 1.${model.kubernetes.minorVersion}; ` +
        "set platform.kubernetes.privilegedSysctls (privileged init container) or allow them in the kubelet",
    );
  }
  return gaps;
}

export class KubernetesBroker extends pulumi.ComponentResource {
  /** The validated platform, defaults filled in. */
  public readonly model: PlatformModel;
  public readonly adminUsername: string;
  public readonly adminPassword: pulumi.Output<string>;
  public readonly managementUrl: string;
  public readonly mqttEndpoints: string[];
  public readonly tuningGaps: string[];
  /** The namespace everything of the platform lives in (the token issuer too). */
  public readonly namespace: k8s.core.v1.Namespace;

  constructor(name: string, args: KubernetesBrokerArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validated before super(): a bad config registers nothing, not even this component.
    const model = parsePlatformConfigFor(args.platform, "kubernetes", "KubernetesBroker");
    super("rabbitmq-mqtt:platform:KubernetesBroker", name, {}, opts);
    this.model = model;
    const kc = model.kubernetes;
    const child = { parent: this };
    const ns = kc.namespace;
    const labels = { "app.kubernetes.io/name": "rabbitmq", "app.kubernetes.io/instance": name };
    const { headless } = kubernetesServiceNames(model, name);

    const adminPassword = new random.RandomPassword(`${name}-admin-password`, { length: 32, special: false }, child);
    const cookie = new random.RandomPassword(`${name}-erlang-cookie`, { length: 48, special: false, lower: false }, child);
    this.adminUsername = model.adminUsername;
    this.adminPassword = pulumi.secret(adminPassword.result);

    const namespace = new k8s.core.v1.Namespace(`${name}-namespace`, { metadata: { name: ns } }, child);
    this.namespace = namespace;
    const inNs = { ...child, dependsOn: [namespace] };
    const clusterNodes = Array.from({ length: model.nodes }, (_, i) => `rabbit@${name}-${i}.${headless}.${ns}.svc.cluster.local`);

    const tokenKeyIds = model.broker.tokens?.signingKeyIds ?? [];
    const tokenKeyPems = pulumi.all(tokenKeyIds.map((id) => publicKeyFor(args.tokenKeys ?? [], id)));
    const secret = new k8s.core.v1.Secret(
      `${name}-config`,
      {
        metadata: { name: `${name}-config`, namespace: ns, labels },
        stringData: pulumi.secret(
          pulumi.all([this.adminPassword, cookie.result]).apply(([pw, erlangCookie]) => ({
            "rabbitmq.conf": renderRabbitmqConf(model.broker, {
              adminUsername: model.adminUsername,
              adminPassword: pw,
              cluster: { nodes: clusterNodes },
              memoryLimitBytes: kc.memoryBytes,
              tls: { ...CONTAINER_TLS_FILES, depth: args.tls.verifyDepth },
              tokenKeyFiles: containerTokenKeyFiles(tokenKeyIds),
            }),
            ".erlang.cookie": erlangCookie,
          })),
        ),
      },
      inNs,
    );
    const plugins = new k8s.core.v1.ConfigMap(
      `${name}-plugins`,
      { metadata: { name: `${name}-plugins`, namespace: ns, labels }, data: { enabled_plugins: renderEnabledPlugins(model.broker) } },
      inNs,
    );

    const tlsSecret = new k8s.core.v1.Secret(
      `${name}-tls`,
      {
        metadata: { name: `${name}-tls`, namespace: ns, labels },
        stringData: pulumi.secret(
          pulumi.all([args.tls.caCertPem, args.tls.certPem, args.tls.privateKeyPem]).apply(([ca, cert, key]) => ({
            "ca.pem": ca,
            "cert.pem": cert,
            "key.pem": key,
          })),
        ),
      },
      inNs,
    );
    // RabbitMQ reads the files at start: a new certificate needs new pods.
    const tlsDigest = pulumi.output(args.tls.certPem).apply((c) => createHash("sha256").update(c).digest("hex").slice(0, 16));
    // The token signing keys' public keys (not secret), one file per key id; new keys need new pods too.
    const tokenKeys =
      tokenKeyIds.length > 0
        ? new k8s.core.v1.ConfigMap(
            `${name}-token-keys`,
            { metadata: { name: `${name}-token-keys`, namespace: ns, labels }, data: tokenKeyPems.apply((pems) => Object.fromEntries(tokenKeyIds.map((id, i) => [`${id}.pem`, pems[i] ?? ""]))) },
            inNs,
          )
        : undefined;
    const tokenKeysDigest = tokenKeyPems.apply((pems) => createHash("sha256").update(tokenKeyIds.join(",")).update(pems.join("")).digest("hex").slice(0, 16));

    const l = model.broker.listeners;
    const ports = brokerListeners(model.broker);

    new k8s.core.v1.Service(
      headless,
      {
        metadata: { name: headless, namespace: ns, labels },
        spec: {
          clusterIP: "None",
          // Peers must resolve each other while they boot, before they are ready.
          publishNotReadyAddresses: true,
          selector: labels,
          ports: [{ name: "epmd", port: 4369 }, { name: "cluster", port: 25672 }],
        },
      },
      inNs,
    );
    // One Service per listener: MQTT devices, browsers and operators reach different things.
    for (const p of ports) {
      const internalOnly = p.internalOnly;
      new k8s.core.v1.Service(
        `${name}-${p.name}`,
        {
          metadata: { name: `${name}-${p.name}`, namespace: ns, labels },
          spec: {
            type: internalOnly ? "ClusterIP" : kc.serviceType,
            selector: labels,
            ports: [{ name: p.name, port: p.port, targetPort: p.port }],
          },
        },
        inNs,
      );
    }

    new k8s.policy.v1.PodDisruptionBudget(
      `${name}-pdb`,
      { metadata: { name, namespace: ns, labels }, spec: { maxUnavailable: 1, selector: { matchLabels: labels } } },
      inNs,
    );

    const t = model.broker.tuning;
    const { pod: podSysctls, privileged } = splitKubernetesSysctls(t.sysctls, kc.minorVersion);
    this.tuningGaps = kubernetesTuningGaps(model);
    for (const gap of this.tuningGaps) void pulumi.log.warn(`tuning not applied: ${gap}`, this);

    const resources = { cpu: kc.cpu, memory: kc.memory };
    new k8s.apps.v1.StatefulSet(
      name,
      {
        metadata: { name, namespace: ns, labels },
        spec: {
          serviceName: headless,
          replicas: model.nodes,
          // From 3.13 all pods start together: classic peer discovery retries until the peers
          // answer. Before, one by one, each once the previous is ready (clusterStartsOneByOne).
          podManagementPolicy: clusterStartsOneByOne(model.broker.version) ? "OrderedReady" : "Parallel",
          selector: { matchLabels: labels },
          template: {
            metadata: {
              labels,
              annotations: { "rabbitmq-mqtt/tls-certificate": tlsDigest, ...(tokenKeys !== undefined ? { "rabbitmq-mqtt/token-keys": tokenKeysDigest } : {}) },
            },
            spec: {
              terminationGracePeriodSeconds: 600,
              affinity: {
                podAntiAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: labels }, topologyKey: "kubernetes.io/hostname" }],
                },
              },
              securityContext: {
                fsGroup: 999,
                sysctls: Object.entries(podSysctls).map(([sysctlName, value]) => ({ name: sysctlName, value })),
              },
              initContainers: [
                {
                  // The cookie must be owned by rabbitmq and readable only by it; Secret mounts are not.
                  name: "setup",
                  image: model.image,
                  command: ["sh", "-c", "cp /config/.erlang.cookie /var/lib/rabbitmq/.erlang.cookie && chmod 400 /var/lib/rabbitmq/.erlang.cookie"],
                  securityContext: { runAsUser: 999, runAsGroup: 999 },
                  volumeMounts: [
                    { name: "config", mountPath: "/config" },
                    { name: "data", mountPath: "/var/lib/rabbitmq" },
                  ],
                },
                ...(kc.privilegedSysctls && Object.keys(privileged).length > 0
                  ? [
                      {
                        name: "sysctls",
                        image: model.image,
                        command: ["sh", "-c", Object.entries(privileged).map(([k, v]) => `sysctl -w ${k}=${v}`).join(" && ")],
                        securityContext: { privileged: true, runAsUser: 0 },
                      },
                    ]
                  : []),
              ],
              containers: [
                {
                  name: "rabbitmq",
                  image: model.image,
                  env: [
                    { name: "MY_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                    { name: "RABBITMQ_USE_LONGNAME", value: "true" },
                    { name: "RABBITMQ_NODENAME", value: `rabbit@$(MY_POD_NAME).${headless}.${ns}.svc.cluster.local` },
                    ...Object.entries(renderEnv(model.broker)).map(([k, v]) => ({ name: k, value: v })),
                  ],
                  ports: [...ports.map((p) => ({ name: p.name, containerPort: p.port })), { name: "epmd", containerPort: 4369 }, { name: "cluster", containerPort: 25672 }],
                  resources: { requests: resources, limits: resources },
                  volumeMounts: [
                    { name: "data", mountPath: "/var/lib/rabbitmq" },
                    { name: "config", mountPath: CONTAINER_CONFIG_FILE, subPath: "rabbitmq.conf" },
                    { name: "plugins", mountPath: "/etc/rabbitmq/enabled_plugins", subPath: "enabled_plugins" },
                    { name: "tls", mountPath: CONTAINER_TLS_DIR, readOnly: true },
                    ...(tokenKeys !== undefined ? [{ name: "token-keys", mountPath: CONTAINER_TOKEN_KEYS_DIR, readOnly: true }] : []),
                  ],
                  readinessProbe: { tcpSocket: { port: l.mqtts }, initialDelaySeconds: 10, periodSeconds: 10 },
                  livenessProbe: {
                    exec: { command: ["rabbitmq-diagnostics", "-q", "ping"] },
                    initialDelaySeconds: 60,
                    periodSeconds: 30,
                    timeoutSeconds: 15,
                  },
                },
              ],
              volumes: [
                { name: "config", secret: { secretName: secret.metadata.name, defaultMode: 0o440 } },
                { name: "plugins", configMap: { name: plugins.metadata.name } },
                // 0440 with fsGroup 999: the broker (group rabbitmq) reads the key, nobody else.
                { name: "tls", secret: { secretName: tlsSecret.metadata.name, defaultMode: 0o440 } },
                ...(tokenKeys !== undefined ? [{ name: "token-keys", configMap: { name: tokenKeys.metadata.name } }] : []),
              ],
            },
          },
          volumeClaimTemplates: [
            {
              metadata: { name: "data" },
              spec: {
                accessModes: ["ReadWriteOnce"],
                ...(kc.storageClass !== undefined ? { storageClassName: kc.storageClass } : {}),
                resources: { requests: { storage: kc.storageSize } },
              },
            },
          ],
        },
      },
      inNs,
    );

    const serviceHost = (listenerName: string) => `${name}-${listenerName}.${ns}.svc.cluster.local`;
    this.managementUrl = `https://${serviceHost("management-tls")}:${l.managementHttps}`;
    this.mqttEndpoints = ports
      .filter((p) => ["mqtts", "wss", "mqtt", "ws"].includes(p.protocol))
      .map((p) => listenerUrl(p, serviceHost(p.name)));
    this.registerOutputs({ managementUrl: this.managementUrl, mqttEndpoints: this.mqttEndpoints, tuningGaps: this.tuningGaps });
  }
}
