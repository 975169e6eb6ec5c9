/**
 * The token issuer (issuer/) as the platform stack deploys it: on Docker one container on the
 * platform's network, published on the host; on Kubernetes a Deployment of at least two replicas
 * behind a Service. Both get the same three things as files: the issuer's config (rendered from the
 * tenant stacks' `tokenApps` outputs, core/token-issuer.ts), the signing key (a secret: Docker
 * upload contents and Kubernetes Secret data are kept as secrets in the state) and an HTTPS
 * certificate from the platform's CA. The issuer keeps no state, so replicas serve alike and a new
 * config or key rolls them.
 */
import * as docker from "@pulumi/docker";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import * as path from "node:path";
import { DEFAULT_ISSUER_PORT, type PlatformModel, type TokenIssuerModel, type TokensModel } from "../../core/platform-config";
import { ISSUER_FILES, ISSUER_UID, renderIssuerFile } from "../../core/token-issuer";
import { writeIssuerBuildContext } from "../../issuer/bundle";

export interface TokenIssuerArgs {
  readonly model: PlatformModel;
  readonly tokens: TokensModel & { readonly issuer: TokenIssuerModel & { readonly url: string } };
  /** The key that signs (TokenSigningKeys.signing): its id and private key (a secret). */
  readonly signing: { readonly id: string; readonly privateKeyPem: pulumi.Input<string> };
  /** Each listed tenant stack's `tokenApps` output, by stack name. */
  readonly tenantStacks: pulumi.Input<Record<string, unknown>>;
  /** The issuer's HTTPS certificate chain and key (a secret), from the platform's CA. */
  readonly tls: { readonly certPem: pulumi.Input<string>; readonly privateKeyPem: pulumi.Input<string> };
  /** Docker: the platform's network. */
  readonly network?: docker.Network;
  /** Kubernetes: the platform's namespace. */
  readonly namespace?: k8s.core.v1.Namespace;
}

/** The issuer's container, host and Service name. */
export function issuerHost(model: PlatformModel): string {
  return model.target === "docker" ? `${model.docker.namePrefix}-token-issuer` : "token-issuer";
}

/** Where the Docker stack writes the image's build context (issuer/bundle.ts); ignored by git. */
export const ISSUER_BUILD_DIR = path.resolve(__dirname, "../../.build/token-issuer");

/** The image the Docker stack builds when `tokens.issuer.image` is not set. */
export const LOCAL_ISSUER_IMAGE = "rabbitmq-mqtt/token-issuer:local";

function issuerFile(args: TokenIssuerArgs): pulumi.Output<string> {
  const t = args.tokens;
  return pulumi
    .output(args.tenantStacks)
    .apply((stacks) => JSON.stringify(renderIssuerFile({ resourceServerId: t.resourceServerId, issuerUrl: t.issuer.url, signingKeyId: args.signing.id, tenantStacks: stacks }), null, 2));
}

const HEALTH_PROBE =
  `require("https").get({host:"127.0.0.1",port:${DEFAULT_ISSUER_PORT},path:"/healthz",rejectUnauthorized:false},` +
  `(r)=>process.exit(r.statusCode===200?0:1)).on("error",()=>process.exit(1))`;

const ISSUER_ENV = {
  ISSUER_CONFIG_FILE: ISSUER_FILES.config,
  ISSUER_SIGNING_KEY_FILE: ISSUER_FILES.signingKey,
  ISSUER_TLS_CERT_FILE: ISSUER_FILES.tlsCert,
  ISSUER_TLS_KEY_FILE: ISSUER_FILES.tlsKey,
  PORT: String(DEFAULT_ISSUER_PORT),
};

export class DockerTokenIssuer extends pulumi.ComponentResource {
  public readonly url: string;
  public readonly container: docker.Container;

  constructor(name: string, args: TokenIssuerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rabbitmq-mqtt:platform:DockerTokenIssuer", name, {}, opts);
    const { model, tokens } = args;
    const child = { parent: this };
    const declared = tokens.issuer.image;
    // Without an image of the user's, the issuer is built here from this package's sources.
    const imageRef =
      declared !== undefined
        ? new docker.RemoteImage(`${name}-image`, { name: declared, keepLocally: true }, child).imageId
        : new docker.Image(
            `${name}-image`,
            { imageName: LOCAL_ISSUER_IMAGE, skipPush: true, build: { context: writeIssuerBuildContext(ISSUER_BUILD_DIR), dockerfile: path.join(ISSUER_BUILD_DIR, "Dockerfile") } },
            child,
            // repoDigest changes with every build (imageName does not), so a new build replaces the container.
          ).repoDigest;
    const host = issuerHost(model);
    const file = (p: string, content: pulumi.Input<string>, permissions: string): docker.types.input.ContainerUpload => ({
      file: p,
      content,
      owner: String(ISSUER_UID),
      group: String(ISSUER_UID),
      permissions,
    });
    this.container = new docker.Container(
      name,
      {
        name: host,
        hostname: host,
        image: imageRef,
        restart: "unless-stopped",
        envs: Object.entries(ISSUER_ENV).map(([k, v]) => `${k}=${v}`),
        uploads: [
          file(ISSUER_FILES.config, issuerFile(args), "0644"),
          file(ISSUER_FILES.signingKey, pulumi.secret(args.signing.privateKeyPem), "0400"),
          file(ISSUER_FILES.tlsCert, args.tls.certPem, "0644"),
          file(ISSUER_FILES.tlsKey, pulumi.secret(args.tls.privateKeyPem), "0400"),
        ],
        ...(args.network !== undefined ? { networksAdvanced: [{ name: args.network.name, aliases: [host] }] } : {}),
        ports: [{ internal: DEFAULT_ISSUER_PORT, external: tokens.issuer.port, ip: model.docker.publishAddress }],
        healthcheck: { tests: ["CMD", "node", "-e", HEALTH_PROBE], interval: "10s", timeout: "5s", retries: 3, startPeriod: "20s" },
      },
      // Fixed name and port: a replacement must remove the old container first (as DockerBroker's).
      { ...child, deleteBeforeReplace: true, ...(args.network !== undefined ? { dependsOn: [args.network] } : {}) },
    );
    this.url = tokens.issuer.url;
    this.registerOutputs({ url: this.url });
  }
}

export class KubernetesTokenIssuer extends pulumi.ComponentResource {
  public readonly url: string;
  /** In-cluster address of its Service. */
  public readonly serviceUrl: string;

  constructor(name: string, args: TokenIssuerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rabbitmq-mqtt:platform:KubernetesTokenIssuer", name, {}, opts);
    const { model, tokens } = args;
    const image = tokens.issuer.image;
    // parsePlatformConfig requires it on kubernetes; a wiring error otherwise.
    if (image === undefined) throw new Error("platform.broker.tokens.issuer.image: required on kubernetes");
    const child = { parent: this };
    const ns = model.kubernetes.namespace;
    const inNs = { ...child, ...(args.namespace !== undefined ? { dependsOn: [args.namespace] } : {}) };
    const host = issuerHost(model);
    const labels = { "app.kubernetes.io/name": "token-issuer", "app.kubernetes.io/instance": name };
    const config = issuerFile(args);
    const configMap = new k8s.core.v1.ConfigMap(`${name}-config`, { metadata: { name: `${host}-config`, namespace: ns, labels }, data: { "issuer.json": config } }, inNs);
    const keys = new k8s.core.v1.Secret(
      `${name}-keys`,
      {
        metadata: { name: `${host}-keys`, namespace: ns, labels },
        stringData: pulumi.secret(
          pulumi.all([args.signing.privateKeyPem, args.tls.certPem, args.tls.privateKeyPem]).apply(([signing, cert, key]) => ({ "signing-key.pem": signing, "cert.pem": cert, "key.pem": key })),
        ),
      },
      inNs,
    );
    // Files are read at start: a new config, key or certificate needs new pods.
    const digest = pulumi
      .all([config, pulumi.secret(args.signing.privateKeyPem), args.tls.certPem])
      .apply(([c, k, t]) => createHash("sha256").update(c).update(k).update(t).digest("hex").slice(0, 16));
    const probe = { httpGet: { path: "/healthz", port: DEFAULT_ISSUER_PORT, scheme: "HTTPS" } };
    // defaultMode 0440: with fsGroup the files belong to the issuer's group; no one else reads them.
    new k8s.apps.v1.Deployment(
      name,
      {
        metadata: { name: host, namespace: ns, labels },
        spec: {
          replicas: tokens.issuer.replicas,
          selector: { matchLabels: labels },
          strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
          template: {
            metadata: { labels, annotations: { "rabbitmq-mqtt/issuer-files-digest": digest } },
            spec: {
              automountServiceAccountToken: false,
              securityContext: { runAsNonRoot: true, runAsUser: ISSUER_UID, runAsGroup: ISSUER_UID, fsGroup: ISSUER_UID, seccompProfile: { type: "RuntimeDefault" } },
              // Replicas on different nodes, where the cluster has them.
              topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: labels } }],
              containers: [
                {
                  name: "token-issuer",
                  image,
                  env: Object.entries(ISSUER_ENV).map(([k, v]) => ({ name: k, value: v })),
                  ports: [{ name: "https", containerPort: DEFAULT_ISSUER_PORT }],
                  readinessProbe: { ...probe, periodSeconds: 5 },
                  livenessProbe: { ...probe, periodSeconds: 20, failureThreshold: 3 },
                  resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } },
                  securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
                  volumeMounts: [
                    { name: "config", mountPath: path.posix.dirname(ISSUER_FILES.config), readOnly: true },
                    { name: "keys", mountPath: path.posix.dirname(ISSUER_FILES.signingKey), readOnly: true },
                    { name: "tls", mountPath: path.posix.dirname(ISSUER_FILES.tlsCert), readOnly: true },
                  ],
                },
              ],
              volumes: [
                { name: "config", configMap: { name: configMap.metadata.name } },
                { name: "keys", secret: { secretName: keys.metadata.name, defaultMode: 0o440, items: [{ key: "signing-key.pem", path: path.posix.basename(ISSUER_FILES.signingKey) }] } },
                {
                  name: "tls",
                  secret: {
                    secretName: keys.metadata.name,
                    defaultMode: 0o440,
                    items: [
                      { key: "cert.pem", path: path.posix.basename(ISSUER_FILES.tlsCert) },
                      { key: "key.pem", path: path.posix.basename(ISSUER_FILES.tlsKey) },
                    ],
                  },
                },
              ],
            },
          },
        },
      },
      inNs,
    );
    new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: { name: host, namespace: ns, labels },
        spec: { type: "ClusterIP", selector: labels, ports: [{ name: "https", port: tokens.issuer.port, targetPort: DEFAULT_ISSUER_PORT }] },
      },
      inNs,
    );
    new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, { metadata: { name: host, namespace: ns, labels }, spec: { minAvailable: 1, selector: { matchLabels: labels } } }, inNs);
    this.url = tokens.issuer.url;
    this.serviceUrl = `https://${host}.${ns}.svc:${tokens.issuer.port}`;
    this.registerOutputs({ url: this.url, serviceUrl: this.serviceUrl });
  }
}

/** The names the issuer's HTTPS certificate carries on each target (and the URL's host). */
export function issuerCertificateNames(model: PlatformModel, url: string): { dnsNames: string[]; ipAddresses: string[] } {
  const host = issuerHost(model);
  const urlHost = new URL(url).hostname.replace(/^\[|\]$/g, "");
  const isIp = /^[0-9.]+$/.test(urlHost) || urlHost.includes(":");
  const dns =
    model.target === "docker"
      ? [host, "localhost"]
      : [host, `${host}.${model.kubernetes.namespace}`, `${host}.${model.kubernetes.namespace}.svc`, `${host}.${model.kubernetes.namespace}.svc.cluster.local`];
  const ips = model.target === "docker" ? ["127.0.0.1", ...(model.docker.publishAddress !== "0.0.0.0" ? [model.docker.publishAddress] : [])] : [];
  return {
    dnsNames: [...new Set([...dns, ...(isIp ? [] : [urlHost])])],
    ipAddresses: [...new Set([...ips, ...(isIp ? [urlHost] : [])])],
  };
}
