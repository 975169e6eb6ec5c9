/**
 * The token issuer as the platform stack deploys it (components/platform/token-issuer.ts), under
 * mocks: on Docker a container built from issuer/, on Kubernetes a Deployment of at least two
 * replicas behind a Service; its file rendered from the tenant stacks' `tokenApps` outputs
 * (core/token-issuer.ts); and the tenant side: `tenant.apps`, validated, exported, and no resource
 * per app or per user. What the deployed container does on a real engine is proven in
 * tests/e2e/docker/dev-platform.e2e.test.ts.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { describe, expect, it, vi } from "vitest";
import { ConfigError } from "../../core/errors";
import { parseTenantConfig } from "../../core/tenant-config";
import { parseIssuerFileContent, renderIssuerFile } from "../../core/token-issuer";
import { ISSUER_BUILD_DIR, LOCAL_ISSUER_IMAGE } from "../../components/platform/token-issuer";
import { RecordingMocks, drain, settle, type Recorded } from "../support/recording-mocks";

const PROJECT = "rabbitmq-mqtt";
const stackConfig = (stack: string) => (parse(readFileSync(path.join(__dirname, `../../Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> }).config;
const ACME_STACK = "organization/rabbitmq-mqtt/acme";

const app = (over: Record<string, unknown> = {}) => ({
  name: "home",
  identityProvider: { issuer: "https://login.acme.example/", audience: "acme-home-app" },
  grants: { subscribe: ["client/{client}/#"], publish: ["activity/{user}/#"] },
  ...over,
});
const acmeApps = { tenant: "acme", vhost: "acme", apps: [app()] };

async function runPlatform(platform: unknown, stackOutputs: Record<string, Record<string, unknown>> = {}) {
  vi.resetModules();
  const mocks = new RecordingMocks(stackOutputs);
  await pulumi.runtime.setMocks(mocks, PROJECT, "dev", false);
  pulumi.runtime.setAllConfig({ [`${PROJECT}:stackType`]: "platform", [`${PROJECT}:platform`]: JSON.stringify(platform) });
  const mod = (await import("../../stacks/index")) as unknown as { default: Record<string, pulumi.Output<unknown>> };
  await settle(mod.default["adminPassword"]!);
  await drain();
  return { mocks, outputs: mod.default };
}

function withTenantStacks(stack: string, stacks: string[]): Record<string, unknown> {
  const platform = structuredClone(stackConfig(stack)[`${PROJECT}:platform`]) as { broker: { tokens: { issuer: Record<string, unknown> } } };
  platform.broker.tokens.issuer.tenantStacks = stacks;
  return platform;
}

const upload = (c: Recorded | undefined, file: string) =>
  (c?.inputs["uploads"] as { file: string; content: string; permissions: string; owner: string; group: string }[] | undefined)?.find((u) => u.file === file);

describe("the dev stack's token issuer on Docker, serving acme's apps", async () => {
  const { mocks, outputs } = await runPlatform(withTenantStacks("dev", [ACME_STACK]), { [ACME_STACK]: { tokenApps: acmeApps } });
  const container = mocks.one("docker:index/container:Container", "token-issuer");

  it("builds the image from this package's issuer (a bundle and its Dockerfile), locally, never pushed", () => {
    const image = mocks.one("docker:index/image:Image", "token-issuer-image");
    expect(image.inputs).toEqual({ imageName: LOCAL_ISSUER_IMAGE, skipPush: true, buildOnPreview: false, build: { context: ISSUER_BUILD_DIR, dockerfile: path.join(ISSUER_BUILD_DIR, "Dockerfile") } });
    expect(readFileSync(path.join(ISSUER_BUILD_DIR, "Dockerfile"), "utf8")).toBe(readFileSync(path.join(__dirname, "../../issuer/Dockerfile"), "utf8"));
    // The bundle holds the issuer and what it imports: jose, and the project's own schema.
    const bundle = readFileSync(path.join(ISSUER_BUILD_DIR, "server.js"), "utf8");
    expect(bundle).toContain("token issuer listening on");
    expect(bundle).not.toMatch(/require\("(jose|zod)"\)/);
    // The container runs what was built: repoDigest changes with each build.
    expect(container.inputs["image"]).toBe(`sha256:build-of-${LOCAL_ISSUER_IMAGE}`);
  });

  it("renders the issuer's file from the tenant stack's output: its vhost and apps, the stack's key id and URL", () => {
    const file = upload(container, "/etc/token-issuer/issuer.json");
    expect(file).toMatchObject({ permissions: "0644", owner: "1000", group: "1000" });
    const parsed = parseIssuerFileContent(JSON.parse(file?.content ?? "{}"));
    expect(parsed).toMatchObject({ resourceServerId: "rabbitmq", issuerUrl: "https://127.0.0.1:8443", signingKeyId: "k1" });
    expect(Object.keys(parsed.tenants)).toEqual(["acme"]);
    expect(parsed.tenants["acme"]?.apps.map((a) => a.name)).toEqual(["home"]);
    expect(mocks.one("pulumi:pulumi:StackReference", ACME_STACK).inputs["name"]).toBe(ACME_STACK);
  });

  it("uploads the signing key and its own TLS key as secrets, readable by the issuer's user only", () => {
    expect(container.secretInputs).toContain("uploads");
    expect(upload(container, "/etc/token-issuer/keys/signing-key.pem")).toMatchObject({ content: "PRIVATE KEY of token-keys-k1", permissions: "0400", owner: "1000" });
    expect(upload(container, "/etc/token-issuer/tls/key.pem")).toMatchObject({ content: "PRIVATE KEY of pki-token-issuer-key", permissions: "0400", owner: "1000" });
    expect(upload(container, "/etc/token-issuer/tls/cert.pem")?.content).toBe("CERT of pki-token-issuer-cert\n");
  });

  it("serves HTTPS with a certificate of the platform's CA for its host name and the published address", () => {
    const csr = mocks.one("tls:index/certRequest:CertRequest", "pki-token-issuer-csr");
    expect(csr.inputs).toMatchObject({ dnsNames: ["rabbitmq-token-issuer", "localhost"], ipAddresses: ["127.0.0.1"] });
    expect(mocks.one("tls:index/locallySignedCert:LocallySignedCert", "pki-token-issuer-cert").inputs["caCertPem"]).toBe("CERT of pki-root-cert");
  });

  it("publishes only its port on 127.0.0.1, joins the platform's network, restarts unless stopped and checks /healthz", () => {
    expect(container.inputs).toMatchObject({
      name: "rabbitmq-token-issuer",
      restart: "unless-stopped",
      ports: [{ internal: 8443, external: 8443, ip: "127.0.0.1" }],
      networksAdvanced: [{ name: "rabbitmq-mqtt-dev", aliases: ["rabbitmq-token-issuer"] }],
    });
    expect((container.inputs["healthcheck"] as { tests: string[] }).tests.join(" ")).toContain("/healthz");
    // A fixed name and port: a replacement (new key, config or certificate) removes the old one first.
    expect(container.deleteBeforeReplace).toBe(true);
    expect(container.inputs["envs"]).toEqual(expect.arrayContaining(["ISSUER_CONFIG_FILE=/etc/token-issuer/issuer.json", "ISSUER_SIGNING_KEY_FILE=/etc/token-issuer/keys/signing-key.pem", "PORT=8443"]));
  });

  it("exports its URL with the token settings, and no private key in any output", async () => {
    const tokens = (await settle(outputs["tokens"]!)).value as { issuerUrl: string };
    expect(tokens.issuerUrl).toBe("https://127.0.0.1:8443");
    const plain = await Promise.all(Object.values(outputs).map((o) => settle(o)));
    expect(JSON.stringify(plain.filter((p) => !p.secret))).not.toContain("PRIVATE KEY");
  });
});

describe("the shipped production stack's token issuer on Kubernetes", async () => {
  const { mocks } = await runPlatform(withTenantStacks("platform-prod", [ACME_STACK]), { [ACME_STACK]: { tokenApps: acmeApps } });
  const deployment = mocks.one("kubernetes:apps/v1:Deployment", "token-issuer");
  type Pod = {
    securityContext: Record<string, unknown>;
    automountServiceAccountToken: boolean;
    containers: { image: string; readinessProbe: { httpGet: Record<string, unknown> }; livenessProbe: unknown; securityContext: Record<string, unknown>; volumeMounts: { name: string; mountPath: string; readOnly: boolean }[] }[];
    volumes: { name: string; secret?: { secretName: string; defaultMode: number }; configMap?: { name: string } }[];
  };
  const spec = deployment.inputs["spec"] as { replicas: number; strategy: unknown; template: { metadata: { annotations: Record<string, string> }; spec: Pod } };
  const pod = spec.template.spec;

  it("runs the configured image in two replicas, replaced one at a time with none down", () => {
    expect(spec.replicas).toBe(2);
    expect(spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    expect(pod.containers[0]?.image).toBe("registry.example.com/rabbitmq-mqtt/token-issuer:0.1.0");
    expect(mocks.one("kubernetes:policy/v1:PodDisruptionBudget", "token-issuer-pdb").inputs["spec"]).toMatchObject({ minAvailable: 1 });
  });

  it("is reached through a ClusterIP Service on the configured port", () => {
    const svc = mocks.one("kubernetes:core/v1:Service", "token-issuer-service").inputs["spec"] as Record<string, unknown>;
    expect(svc).toMatchObject({ type: "ClusterIP", ports: [{ name: "https", port: 8443, targetPort: 8443 }] });
  });

  it("keeps the signing key and TLS key in a Secret (secret in the state), mounted read-only for the issuer's group", () => {
    const secret = mocks.one("kubernetes:core/v1:Secret", "token-issuer-keys");
    expect(secret.secretInputs).toContain("stringData");
    expect(secret.inputs["stringData"]).toMatchObject({ "signing-key.pem": "PRIVATE KEY of token-keys-k1", "key.pem": "PRIVATE KEY of pki-token-issuer-key" });
    expect(pod.volumes.filter((v) => v.secret !== undefined).map((v) => v.secret?.defaultMode)).toEqual([0o440, 0o440]);
    expect(pod.containers[0]?.volumeMounts.every((m) => m.readOnly)).toBe(true);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000 });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers[0]?.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
  });

  it("renders the file into a ConfigMap and rolls the pods when the file, key or certificate changes", () => {
    const cm = mocks.one("kubernetes:core/v1:ConfigMap", "token-issuer-config").inputs["data"] as Record<string, string>;
    expect(JSON.parse(cm["issuer.json"] ?? "{}")).toMatchObject({ issuerUrl: "https://tokens.example.com", tenants: { acme: { vhost: "acme" } } });
    expect(spec.template.metadata.annotations["rabbitmq-mqtt/issuer-files-digest"]).toMatch(/^[0-9a-f]{16}$/);
  });

  it("probes readiness and liveness on /healthz over HTTPS", () => {
    expect(pod.containers[0]?.readinessProbe.httpGet).toEqual({ path: "/healthz", port: 8443, scheme: "HTTPS" });
    expect(pod.containers[0]?.livenessProbe).toBeDefined();
  });

  it("names the Service in its certificate, and the public URL's host", () => {
    const csr = mocks.one("tls:index/certRequest:CertRequest", "pki-token-issuer-csr");
    expect(csr.inputs["dnsNames"]).toEqual(["token-issuer", "token-issuer.rabbitmq", "token-issuer.rabbitmq.svc", "token-issuer.rabbitmq.svc.cluster.local", "tokens.example.com"]);
  });
});

describe("a platform without a token issuer", async () => {
  const platform = structuredClone(stackConfig("dev")[`${PROJECT}:platform`]) as { broker: { tokens: Record<string, unknown> } };
  delete platform.broker.tokens["issuer"];
  const { mocks, outputs } = await runPlatform(platform);

  it("deploys none and reads no tenant stack; the broker still takes the keys' tokens", async () => {
    expect(mocks.records.filter((r) => r.name.startsWith("token-issuer") || r.type === "pulumi:pulumi:StackReference")).toEqual([]);
    expect(((await settle(outputs["tokens"]!)).value as Record<string, unknown>)["issuerUrl"]).toBeUndefined();
  });
});

describe("the issuer's file from the tenant stacks' outputs (core/token-issuer.ts)", () => {
  const base = { resourceServerId: "rabbitmq", issuerUrl: "https://tokens.example.com", signingKeyId: "k1" };
  const refused = (tenantStacks: Record<string, unknown>): string => {
    try {
      renderIssuerFile({ ...base, tenantStacks });
    } catch (e) {
      if (e instanceof ConfigError) return e.message;
      throw e;
    }
    throw new Error("not refused");
  };

  it("takes each stack's apps, with the defaults the tenant's schema filled in", () => {
    const file = renderIssuerFile({ ...base, tenantStacks: { [ACME_STACK]: acmeApps, "organization/rabbitmq-mqtt/globex": { tenant: "globex", vhost: "globex", apps: [] } } });
    expect(Object.keys(file.tenants)).toEqual(["acme", "globex"]);
    expect(parseIssuerFileContent(file).tenants["acme"]?.apps[0]).toMatchObject({ name: "home", clientIdsPerUser: 2, tokenLifetimeSeconds: 900, userIds: "subject" });
  });

  it("refuses a stack that has not exported token apps, naming it", () => {
    expect(refused({ [ACME_STACK]: undefined })).toMatch(/tenantStacks \(organization\/rabbitmq-mqtt\/acme\): its output tokenApps is not a tenant's token apps.*run pulumi up on that tenant stack first/);
  });

  it("refuses two stacks that claim one tenant", () => {
    expect(refused({ [ACME_STACK]: acmeApps, "organization/rabbitmq-mqtt/acme-copy": acmeApps })).toMatch(/\(organization\/rabbitmq-mqtt\/acme-copy\): tenant 'acme' is also declared by stack organization\/rabbitmq-mqtt\/acme/);
  });

  it("validates the apps again: a grant that would reach every user is refused, naming the stack and key", () => {
    expect(refused({ [ACME_STACK]: { ...acmeApps, apps: [app({ grants: { subscribe: ["client/#"], publish: [] } })] } })).toMatch(/organization\/rabbitmq-mqtt\/acme: tenant\.apps\[0\]\.grants\.subscribe\[0\]/);
    expect(refused({ [ACME_STACK]: { ...acmeApps, vhost: "acme/../x" } })).toMatch(/tokenApps\.vhost/);
  });
});

describe("tenant.apps in the tenant stack config", () => {
  const tenant = (apps: unknown) => ({ name: "acme", identities: [{ name: "backend", kind: "service", role: "b2b", grants: { subscribe: ["activity/+/#"] } }], apps });

  it("validates each app with the token-app schema, naming the key", () => {
    const problems = (apps: unknown) => {
      try {
        parseTenantConfig(tenant(apps), {});
      } catch (e) {
        if (e instanceof ConfigError) return e.issues.map((i) => `${i.key}: ${i.message}`);
        throw e;
      }
      return [];
    };
    expect(problems([app({ identityProvider: { issuer: "http://login.acme.example/", audience: "a" } })])).toEqual([expect.stringMatching(/^tenant\.apps\[0\]\.identityProvider\.issuer: must be an https URL/)]);
    expect(problems([app(), app()])).toEqual(["tenant.apps[1].name: app 'home' is declared twice"]);
    expect(problems([app({ grants: { subscribe: ["client/+/#"], publish: [] } })])).toEqual([expect.stringMatching(/^tenant\.apps\[0\]\.grants\.subscribe\[0\]: /)]);
    expect(problems([app({ tokenLifetimeSeconds: 10 * 86_400 })])).toEqual([expect.stringMatching(/^tenant\.apps\[0\]\.tokenLifetimeSeconds: must be at most 86400/)]);
  });

  it("keeps the apps as validated, defaults filled in, for the stack's output", () => {
    const model = parseTenantConfig(tenant([app()]), {});
    expect(model.apps.map((a) => a.name)).toEqual(["home"]);
    expect(model.appsConfig).toEqual([{ ...app(), identityProvider: { ...app().identityProvider, userClaim: "sub", algorithms: ["RS256", "ES256"] }, userIds: "subject", clientIdsPerUser: 2, tokenLifetimeSeconds: 900, allowedOrigins: [] }]);
  });
});

describe("the shipped acme tenant stack with a token app", async () => {
  const run = async (withApps: boolean) => {
    vi.resetModules();
    const config = structuredClone(stackConfig("acme"));
    const t = config[`${PROJECT}:tenant`] as Record<string, unknown>;
    if (!withApps) delete t["apps"];
    const mocks = new RecordingMocks({
      "organization/rabbitmq-mqtt/dev": {
        managementUrl: "https://127.0.0.1:15671",
        adminUsername: "admin",
        adminPassword: "admin-password",
        caCertificatePem: "CERT of ca",
        certificateIssuers: { root: { certPem: "CERT", privateKeyPem: "KEY", chainPem: "CERT" }, tenants: {} },
        certificateLoginFrom: "distinguished_name",
      },
    });
    await pulumi.runtime.setMocks(mocks, PROJECT, "acme", false);
    pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])));
    const mod = (await import("../../stacks/index")) as unknown as { default: Record<string, pulumi.Output<unknown>> };
    const tokenApps = await settle(mod.default["tokenApps"]!);
    await drain();
    return { mocks, tokenApps };
  };

  it("exports its apps for the platform's issuer, in plain text, and declares no resource for them", async () => {
    const withApps = await run(true);
    expect(withApps.tokenApps.secret).toBe(false);
    expect(withApps.tokenApps.value).toMatchObject({ tenant: "acme", vhost: "acme", apps: [{ name: "home", clientIdsPerUser: 2 }] });
    const without = await run(false);
    const names = (m: RecordingMocks) => m.records.map((r) => `${r.type}::${r.name}`).sort();
    expect(names(withApps.mocks)).toEqual(names(without.mocks));
  });
});
