/**
 * The tenant stack program and the Tenant component under mocks: what is registered, with which
 * options, and that bad config fails before any resource.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { ConfigError } from "../../core/errors";
import { hashDevicePassword } from "../../core/fleets";
import { PROVIDER_LANES } from "../../components/tenant";
import { RecordingMocks, drain, settle } from "../support/recording-mocks";

const PROJECT = "rabbitmq-mqtt";
const TENANT = {
  name: "acme",
  description: "Acme apps",
  tags: ["prod", "c2b"],
  limits: { maxConnections: 100, maxQueues: 200 },
  identityLimits: { maxConnections: 3 },
  subscriptionQueues: { expiresSeconds: 3600, maxLength: 1000, overflow: "reject-publish" },
  mqttPorts: [1884],
  identities: [
    { name: "web-app", kind: "app", role: "c2b", user: "u-1001" },
    { name: "backend", kind: "service", role: "b2b", limits: { maxChannels: 8 }, grants: { subscribe: ["activity/+/#"] } },
  ],
};

async function runProgram<M extends RecordingMocks = RecordingMocks>(
  config: Record<string, unknown>,
  secretKeys: string[] = [],
  stackOutputs = {},
  preview = false,
  mocks: M = new RecordingMocks(stackOutputs) as M,
) {
  vi.resetModules();
  await pulumi.runtime.setMocks(mocks, PROJECT, "test", preview);
  pulumi.runtime.setAllConfig(
    Object.fromEntries(Object.entries(config).map(([k, v]) => [`${PROJECT}:${k}`, typeof v === "string" ? v : JSON.stringify(v)])),
    secretKeys.map((k) => `${PROJECT}:${k}`),
  );
  const mod = (await import("../../stacks/index")) as unknown as { default: Record<string, pulumi.Output<unknown>> };
  return { mocks, outputs: mod.default };
}

const direct = {
  broker: { managementUrl: "https://rabbit.example.com:15671", username: "admin" },
  brokerPassword: "admin-secret-password",
};

describe("tenant stack with a direct broker connection", () => {
  let mocks: RecordingMocks;
  let outputs: Record<string, pulumi.Output<unknown>>;

  beforeEach(async () => {
    ({ mocks, outputs } = await runProgram(
      { ...direct, tenant: TENANT, identityPasswords: { backend: "backend-password-0123" } },
      ["brokerPassword", "identityPasswords"],
    ));
    await settle(outputs["vhost"]!);
    await drain();
  });

  it("configures the rabbitmq provider from config, with the password as a secret", () => {
    const [p] = mocks.byType("pulumi:providers:rabbitmq");
    expect(p?.inputs).toMatchObject({ endpoint: "https://rabbit.example.com:15671", username: "admin", password: "admin-secret-password" });
    expect(p?.secretInputs).toContain("password");
  });

  it("declares the vhost, protected by default, through the explicit provider", () => {
    const v = mocks.one("rabbitmq:index/vHost:VHost", "acme-vhost");
    expect(v.inputs["name"]).toBe("acme");
    expect(v.protect).toBe(true);
    expect(v.provider).toMatch(/pulumi:providers:rabbitmq::broker::/);
    expect(v.parent).toMatch(/rabbitmq-mqtt:index:Tenant::acme$/);
  });

  it("sets vhost description and tags, and vhost limits", () => {
    expect(mocks.one("pulumi-nodejs:dynamic/rabbitmq-mqtt:VhostMetadata", "acme-vhost-metadata").inputs).toMatchObject({
      vhost: "acme",
      description: "Acme apps",
      tags: ["prod", "c2b"],
    });
    expect(mocks.one("pulumi-nodejs:dynamic/rabbitmq-mqtt:VhostLimits", "acme-vhost-limits").inputs).toMatchObject({
      scope: "vhost",
      target: "acme",
      limits: { "max-connections": 100, "max-queues": 200 },
    });
  });

  it("declares one user per identity, named <identity>@<tenant>, without management tags", () => {
    const users = mocks.byType("rabbitmq:index/user:User");
    expect(users.map((u) => u.inputs["name"]).sort()).toEqual(["backend@acme", "web-app@acme"]);
    for (const u of users) {
      expect(u.inputs["tags"]).toEqual([]);
      expect(u.secretInputs).toContain("password");
    }
  });

  it("uses the configured password where given and generates one otherwise", () => {
    expect(mocks.one("rabbitmq:index/user:User", "acme-backend-user").inputs["password"]).toBe("backend-password-0123");
    expect(mocks.one("rabbitmq:index/user:User", "acme-web-app-user").inputs["password"]).toBe("generated-acme-web-app-password");
    const generated = mocks.byType("random:index/randomPassword:RandomPassword");
    expect(generated.map((g) => g.name)).toEqual(["acme-web-app-password"]);
    expect(generated[0]!.inputs).toMatchObject({ length: 32, special: false });
  });

  it("grants vhost permissions only on the identity's own MQTT queues and the MQTT exchange", () => {
    const p = mocks.one("rabbitmq:index/permissions:Permissions", "acme-web-app-permissions");
    expect(p.inputs).toEqual({
      user: "web-app@acme",
      vhost: "acme",
      permissions: {
        configure: "^(?:mqtt\\-subscription\\-(?:web\\-app|web\\-app_1|web\\-app_2|web\\-app_3)qos[01]|mqtt\\-will\\-(?:web\\-app|web\\-app_1|web\\-app_2|web\\-app_3))$(?!\\n)",
        write: "^(?:amq\\.topic|(?:mqtt\\-subscription\\-(?:web\\-app|web\\-app_1|web\\-app_2|web\\-app_3)qos[01]|mqtt\\-will\\-(?:web\\-app|web\\-app_1|web\\-app_2|web\\-app_3)))$(?!\\n)",
        read: "^(?:amq\\.topic|(?:mqtt\\-subscription\\-(?:web\\-app|web\\-app_1|web\\-app_2|web\\-app_3)qos[01]|mqtt\\-will\\-(?:web\\-app|web\\-app_1|web\\-app_2|web\\-app_3)))$(?!\\n)",
      },
    });
  });

  it("declares topic permissions for every identity, deny-all where it has no grant", () => {
    const backend = mocks.one("rabbitmq:index/topicPermissions:TopicPermissions", "acme-backend-topic-permissions");
    expect(backend.inputs["permissions"]).toEqual([{ exchange: "amq.topic", write: "^(?!)$", read: "^(?:activity\\.[^.#]*(?:\\..*)?)$(?!\\n)" }]);
    expect(mocks.byType("rabbitmq:index/topicPermissions:TopicPermissions")).toHaveLength(2);
  });

  it("declares user limits, merged from tenant defaults and the identity", () => {
    expect(mocks.one("pulumi-nodejs:dynamic/rabbitmq-mqtt:UserLimits", "acme-backend-limits").inputs).toMatchObject({
      scope: "user",
      target: "backend@acme",
      limits: { "max-connections": 3, "max-channels": 8 },
    });
  });

  it("declares the subscription-queue policy with provider-style string values", () => {
    expect(mocks.one("rabbitmq:index/policy:Policy", "acme-mqtt-subscription-queues").inputs).toEqual({
      name: "mqtt-subscription-queues",
      vhost: "acme",
      policy: {
        pattern: "^mqtt\\-subscription\\-",
        applyTo: "queues",
        priority: 0,
        definition: { expires: "3600000", "max-length": "1000", overflow: "reject-publish" },
      },
    });
  });

  it("maps the tenant's dedicated MQTT port to its vhost", () => {
    const m = mocks.one("pulumi-nodejs:dynamic/rabbitmq-mqtt:MqttVhostMapping", "acme-mqtt-port-to-vhost");
    expect(m.inputs).toMatchObject({ parameter: "mqtt_port_to_vhost_mapping", entries: { "1884": "acme" } });
  });

  it("passes the admin connection to dynamic resources as a secret and keeps it secret in their outputs", () => {
    const dynamic = mocks.records.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/"));
    // metadata, vhost limits, port mapping, and per identity (web-app, backend) user limits and sessions
    expect(dynamic.length).toBe(7);
    for (const r of dynamic) {
      expect(r.secretInputs).toContain("connection");
      expect(r.additionalSecretOutputs).toContain("connection");
    }
  });

  it("declares per identity a sessions guard after its user and permissions, keyed on a secret access digest", () => {
    const guard = mocks.one("pulumi-nodejs:dynamic/rabbitmq-mqtt:IdentitySessions", "acme-web-app-sessions");
    expect(guard.inputs).toMatchObject({
      vhost: "acme",
      username: "web-app@acme",
      exchange: "amq.topic",
      readPattern: "^(?:client\\.web\\-app(?:\\..*)?)$(?!\\n)",
    });
    expect(guard.inputs["queues"]).toEqual(
      ["web-app", "web-app_1", "web-app_2", "web-app_3"].flatMap((c) => [`mqtt-subscription-${c}qos0`, `mqtt-subscription-${c}qos1`, `mqtt-will-${c}`]),
    );
    expect(guard.secretInputs).toEqual(expect.arrayContaining(["connection", "accessDigest"]));
    expect(guard.inputs["accessDigest"]).toMatch(/^[0-9a-f]{64}$/);
    expect(guard.additionalSecretOutputs).toEqual(expect.arrayContaining(["connection", "accessDigest"]));
    const deps = guard.dependencies.join("\n");
    for (const dep of ["rabbitmq:index/user:User::acme-web-app-user", "rabbitmq:index/permissions:Permissions::acme-web-app-permissions", "rabbitmq:index/topicPermissions:TopicPermissions::acme-web-app-topic-permissions"]) {
      expect(deps).toContain(dep);
    }
  });

  it("exports passwords only as a secret, and plain outputs contain no secret", async () => {
    const pw = await settle(outputs["identityPasswords"]!);
    expect(pw.secret).toBe(true);
    expect(pw.value).toEqual({ "web-app": "generated-acme-web-app-password", backend: "backend-password-0123" });
    const ids = await settle(outputs["identities"]!);
    expect(ids.secret).toBe(false);
    expect(JSON.stringify(ids.value)).not.toMatch(/password-0123|admin-secret/);
    expect(ids.value).toMatchObject({ "web-app": { username: "web-app@acme", mqttUsername: "acme:web-app@acme" } });
  });

  it("records no secrets as component inputs", () => {
    const component = mocks.records.find((r) => r.type === "rabbitmq-mqtt:index:Tenant");
    // Components are not custom resources; the mock monitor still sees their (empty) inputs.
    expect(JSON.stringify(component?.inputs ?? {})).toBe("{}");
  });
});

describe("pulumi preview (pull requests)", () => {
  it("registers the same resources during a preview, with nothing applied", async () => {
    const { mocks, outputs } = await runProgram(
      { ...direct, tenant: TENANT, identityPasswords: { backend: "backend-password-0123" } },
      ["brokerPassword", "identityPasswords"],
      {},
      true,
    );
    await settle(outputs["vhost"]!);
    await drain();
    const types = mocks.records.map((r) => r.type);
    expect(types.filter((t) => t === "rabbitmq:index/user:User")).toHaveLength(2);
    expect(types.filter((t) => t === "pulumi-nodejs:dynamic/rabbitmq-mqtt:IdentitySessions")).toHaveLength(2);
    expect(types).toContain("pulumi-nodejs:dynamic/rabbitmq-mqtt:MqttVhostMapping");
  });
});

const IDENTITY_TYPES = ["rabbitmq:index/user:User", "rabbitmq:index/permissions:Permissions", "rabbitmq:index/topicPermissions:TopicPermissions"];

/** Applies each identity's @pulumi/rabbitmq resource in 10 ms, as a provider's call takes time, and counts them in flight. */
class TimedProviderMocks extends RecordingMocks {
  inFlight = 0;
  mostInFlight = 0;
  usersInFlight = 0;
  mostUsersInFlight = 0;

  override async newResource(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string; state: Record<string, unknown> }> {
    if (!IDENTITY_TYPES.includes(args.type)) return super.newResource(args);
    const user = args.type === "rabbitmq:index/user:User";
    this.inFlight++;
    if (user) this.usersInFlight++;
    this.mostInFlight = Math.max(this.mostInFlight, this.inFlight);
    this.mostUsersInFlight = Math.max(this.mostUsersInFlight, this.usersInFlight);
    await new Promise((r) => setTimeout(r, 10));
    this.inFlight--;
    if (user) this.usersInFlight--;
    return super.newResource(args);
  }
}

describe("@pulumi/rabbitmq's calls for a tenant with many identities", () => {
  const identities = Array.from({ length: 60 }, (_, i) => ({ name: `app-${i}`, kind: "app", role: "c2b", user: `u-${i}` }));

  it(`are started at most ${PROVIDER_LANES} users (${2 * PROVIDER_LANES} calls) at a time, whatever the engine's parallelism`, async () => {
    const mocks = new TimedProviderMocks();
    const { outputs } = await runProgram({ ...direct, tenant: { ...TENANT, identities } }, ["brokerPassword"], {}, false, mocks);
    await settle(outputs["vhost"]!);
    await drain();
    expect(mocks.byType("rabbitmq:index/user:User")).toHaveLength(60);
    // The lanes really run side by side, and no more of them than PROVIDER_LANES.
    expect(mocks.mostUsersInFlight).toBe(PROVIDER_LANES);
    // Per lane, a user, or its permissions and topic permissions.
    expect(mocks.mostInFlight).toBeLessThanOrEqual(2 * PROVIDER_LANES);
  });

  it("order each identity's user after the user and permissions of the identity before it in its lane", async () => {
    const { mocks, outputs } = await runProgram({ ...direct, tenant: { ...TENANT, identities } }, ["brokerPassword"]);
    await settle(outputs["vhost"]!);
    await drain();
    const deps = (n: number) => mocks.one("rabbitmq:index/user:User", `acme-app-${n}-user`).dependencies.filter((u) => u.includes("rabbitmq:index/")).map((u) => u.split("::").pop());
    for (let i = 0; i < PROVIDER_LANES; i++) expect(deps(i)).toEqual([]);
    expect(deps(PROVIDER_LANES + 3).sort()).toEqual(["acme-app-3-permissions", "acme-app-3-topic-permissions", "acme-app-3-user"]);
    expect(deps(59).sort()).toEqual([`acme-app-${59 - PROVIDER_LANES}-permissions`, `acme-app-${59 - PROVIDER_LANES}-topic-permissions`, `acme-app-${59 - PROVIDER_LANES}-user`]);
  });
});

describe("tenant stack through the platform stack reference", () => {
  const platformOutputs = {
    "organization/rabbitmq-mqtt/platform-prod": {
      managementUrl: "https://platform.example.com:15671",
      adminUsername: "platform-admin",
      adminPassword: "platform-secret",
      caCertificatePem: "ROOT CA CERT",
      certificateLoginFrom: "distinguished_name",
      certificateIssuers: {
        root: { certPem: "ROOT CA CERT", privateKeyPem: "ROOT CA KEY", chainPem: "" },
        tenants: { acme: { certPem: "ACME CA CERT", privateKeyPem: "ACME CA KEY", chainPem: "ACME CA CERT\n" } },
      },
    },
  };
  const ref = { broker: { stackReference: "organization/rabbitmq-mqtt/platform-prod" } };

  it("reads the management endpoint, admin credentials and CA from the platform outputs", async () => {
    const { mocks, outputs } = await runProgram({ ...ref, tenant: { ...TENANT, mqttPorts: [] } }, [], platformOutputs);
    await settle(outputs["vhost"]!);
    await drain();
    expect(mocks.byType("pulumi:pulumi:StackReference").map((r) => r.inputs["name"])).toEqual(["organization/rabbitmq-mqtt/platform-prod"]);
    const [p] = mocks.byType("pulumi:providers:rabbitmq");
    expect(p?.inputs).toMatchObject({ endpoint: "https://platform.example.com:15671", username: "platform-admin", password: "platform-secret" });
    expect(p?.secretInputs).toContain("password");
    // The terraform provider trusts a private CA only from a file: the platform's CA, written out.
    expect(readFileSync(String(p?.inputs["cacertFile"]), "utf8")).toBe("ROOT CA CERT");
    expect(mocks.byType("pulumi-nodejs:dynamic/rabbitmq-mqtt:MqttVhostMapping")).toEqual([]);
    expect((mocks.byType("pulumi-nodejs:dynamic/rabbitmq-mqtt:VhostMetadata")[0]?.inputs["connection"] as { caCertPem?: string }).caCertPem).toBe("ROOT CA CERT");
  });

  describe("a certificate identity", async () => {
    const tenant = {
      ...TENANT,
      mqttPorts: [],
      identities: [...TENANT.identities, { name: "dev-1", kind: "device", role: "c2b", user: "u-1", auth: "certificate", certificate: { subject: { serialNumber: "D-1" } } }],
    };
    const { mocks, outputs } = await runProgram({ ...ref, tenant }, [], platformOutputs);
    const identitiesOutput = await settle(outputs["identities"]!);
    const identities = identitiesOutput.value as Record<string, Record<string, unknown>>;
    const keys = await settle(outputs["identityPrivateKeys"]!);
    await drain();
    const dn = "SERIALNUMBER=D-1,CN=dev-1@acme,O=acme";

    it("gets a key and a certificate signed by the tenant's own intermediate CA, for client auth", () => {
      expect(mocks.one("tls:index/privateKey:PrivateKey", "acme-dev-1-certificate-key").inputs).toMatchObject({ algorithm: "ECDSA", ecdsaCurve: "P256" });
      expect(mocks.one("tls:index/certRequest:CertRequest", "acme-dev-1-certificate-csr").inputs["subject"]).toEqual({ commonName: "dev-1@acme", organization: "acme", serialNumber: "D-1" });
      const cert = mocks.one("tls:index/locallySignedCert:LocallySignedCert", "acme-dev-1-certificate-cert");
      expect(cert.inputs).toMatchObject({ caCertPem: "ACME CA CERT", caPrivateKeyPem: "ACME CA KEY", allowedUses: ["digital_signature", "key_encipherment", "client_auth"], isCaCertificate: false, validityPeriodHours: 8760, earlyRenewalHours: 720 });
      expect(cert.secretInputs).toContain("caPrivateKeyPem");
    });

    it("gets a password-less user named by its certificate's DN, no rabbitmq.User", () => {
      const user = mocks.one("pulumi-nodejs:dynamic/rabbitmq-mqtt:CertificateUser", "acme-dev-1-user");
      expect(user.inputs["name"]).toBe(dn);
      expect(user.inputs).not.toHaveProperty("password");
      expect(mocks.byType("rabbitmq:index/user:User").map((u) => u.inputs["name"])).toEqual(["web-app@acme", "backend@acme"]);
      const permissions = mocks.one("rabbitmq:index/permissions:Permissions", "acme-dev-1-permissions").inputs;
      expect(permissions["user"]).toBe(dn);
      // Only the session queues of the client id the certificate names.
      const queues = ((permissions["permissions"] as { configure: string }).configure);
      expect(new RegExp(queues).test(`mqtt-subscription-${dn}qos1`)).toBe(true);
      expect(new RegExp(queues).test("mqtt-subscription-dev-1qos1")).toBe(false);
      expect(mocks.one("rabbitmq:index/topicPermissions:TopicPermissions", "acme-dev-1-topic-permissions").inputs["user"]).toBe(dn);
      expect(mocks.byType("random:index/randomPassword:RandomPassword").map((r) => r.name)).not.toContain("acme-dev-1-password");
    });

    it("maps its login name to the tenant's vhost in mqtt_default_vhosts", () => {
      const mapping = mocks.one("pulumi-nodejs:dynamic/rabbitmq-mqtt:MqttVhostMapping", "acme-mqtt-default-vhosts");
      expect(mapping.inputs).toMatchObject({ parameter: "mqtt_default_vhosts", entries: { [dn]: "acme" } });
    });

    it("exports the certificate chain in plain outputs and the key only as a secret", () => {
      // Its MQTT client id is its DN too: 4.x refuses any other (mqtt.ssl_cert_client_id_from).
      expect(identities["dev-1"]).toMatchObject({ auth: "certificate", username: dn, mqttClientId: dn, certificatePem: "CERT of acme-dev-1-certificate-cert\nACME CA CERT\n" });
      expect(identities["dev-1"]).not.toHaveProperty("mqttUsername");
      // The issuer arrives as one secret; its certificates are public, so the identities stay plain.
      expect(identitiesOutput.secret).toBe(false);
      expect(keys).toEqual({ value: { "dev-1": "PRIVATE KEY of acme-dev-1-certificate-key" }, secret: true });
      expect(JSON.stringify(identities)).not.toContain("PRIVATE KEY");
    });
  });

  it("signs with the root CA when the platform made no intermediate for the tenant", async () => {
    const tenant = { ...TENANT, name: "initech", mqttPorts: [], identities: [{ name: "dev-1", kind: "device", role: "c2b", user: "u-1", auth: "certificate" }] };
    const { mocks, outputs } = await runProgram({ ...ref, tenant }, [], platformOutputs);
    await settle(outputs["vhost"]!);
    await drain();
    expect(mocks.one("tls:index/locallySignedCert:LocallySignedCert", "initech-dev-1-certificate-cert").inputs).toMatchObject({ caCertPem: "ROOT CA CERT", caPrivateKeyPem: "ROOT CA KEY" });
  });
});

/** A registry with no device (a fleet being set up), for config checks that do not need devices. */
const EMPTY_REGISTRY = `.e2e-artifacts/unit-fleets/${process.pid}-empty.jsonl`;
mkdirSync(path.dirname(path.resolve(EMPTY_REGISTRY)), { recursive: true });
writeFileSync(path.resolve(EMPTY_REGISTRY), "");

describe("bad config fails before any resource is registered", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["missing tenant", { ...direct }, /tenant: required/],
    ["tenant not an object", { ...direct, tenant: "acme" }, /tenant: must be an object/],
    ["bad identity name", { ...direct, tenant: { ...TENANT, identities: [{ name: "a.b", kind: "app", role: "c2b", user: "u" }] } }, /tenant\.identities\[0\]\.name/],
    ["missing broker", { brokerPassword: "x", tenant: TENANT }, /broker: required/],
    ["broker without password", { broker: direct.broker, tenant: TENANT }, /brokerPassword: required with broker.managementUrl/],
    ["broker URL with credentials", { ...direct, broker: { managementUrl: "http://u:p@h:15672", username: "a" }, tenant: TENANT }, /broker/],
    ["stack reference plus password", { broker: { stackReference: "o/p/s" }, brokerPassword: "x", tenant: TENANT }, /brokerPassword: not used/],
    ["bad stack reference", { broker: { stackReference: "platform" }, tenant: TENANT }, /broker/],
    ["password for unknown identity", { ...direct, tenant: TENANT, identityPasswords: { ghost: "x".repeat(20) } }, /identityPasswords\.ghost/],
    ["unknown stack type", { ...direct, tenant: TENANT, stackType: "cluster" }, /stackType: unknown stack type 'cluster'/],
    ["CA certificate that is not PEM", { ...direct, broker: { ...direct.broker, caCertificatePem: "not a certificate" }, tenant: TENANT }, /broker\.caCertificatePem: must be one PEM certificate/],
    ["CA certificate for an http URL", { ...direct, broker: { managementUrl: "http://h:15672", username: "a", caCertificatePem: "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n" }, tenant: TENANT }, /broker\.caCertificatePem: only for an https:\/\/ managementUrl/],
    [
      "certificate identity without the platform stack",
      { ...direct, tenant: { ...TENANT, identities: [{ name: "dev-1", kind: "device", role: "c2b", user: "u-1", auth: "certificate" }] } },
      /tenant\.identities\[0\]\.auth: certificate identities are signed by the platform stack's CA: set broker\.stackReference/,
    ],
    [
      "certificate fleet without the platform stack",
      { ...direct, tenant: { ...TENANT, fleets: [{ name: "cams", role: "c2b", auth: "certificate", registry: EMPTY_REGISTRY }] } },
      /tenant\.fleets\[0\]\.auth: certificate fleets are signed by the platform stack's CA: set broker\.stackReference/,
    ],
  ];

  it.each(cases)("%s", async (_label, config, message) => {
    vi.resetModules();
    const mocks = new RecordingMocks();
    await pulumi.runtime.setMocks(mocks, PROJECT, "test", false);
    pulumi.runtime.setAllConfig(
      Object.fromEntries(Object.entries(config).map(([k, v]) => [`${PROJECT}:${k}`, typeof v === "string" ? v : JSON.stringify(v)])),
      [`${PROJECT}:brokerPassword`, `${PROJECT}:identityPasswords`],
    );
    const err = await import("../../stacks/index").then(
      () => undefined,
      (e: unknown) => e,
    );
    // vi.resetModules() loads a fresh copy of core/errors, so compare by name, not instanceof.
    expect((err as Error).name).toBe(ConfigError.name);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain("x".repeat(20));
    await drain();
    expect(mocks.records).toEqual([]);
  });
});

describe("the CA file for the rabbitmq provider", () => {
  it("is written in a directory of the current user only, at a path that depends on the CA alone", async () => {
    const { caCertFile } = await import("../../stacks/tenant");
    const base = mkdtempSync(path.join(os.tmpdir(), "ca-file-"));
    try {
      const file = caCertFile("CA ONE", base);
      expect(readFileSync(file, "utf8")).toBe("CA ONE");
      expect(caCertFile("CA ONE", base)).toBe(file);
      expect(caCertFile("CA TWO", base)).not.toBe(file);
      expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
      // A directory others can write to (someone else could swap the CA) is refused.
      chmodSync(path.dirname(file), 0o777);
      expect(() => caCertFile("CA ONE", base)).toThrow(/no one else can write/);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

it("trusts a private CA given with a direct broker connection, in the provider and the dynamic resources", async () => {
  const ca = "-----BEGIN CERTIFICATE-----\nMIIprivate\n-----END CERTIFICATE-----\n";
  const { mocks, outputs } = await runProgram({ ...direct, broker: { ...direct.broker, caCertificatePem: ca }, tenant: { ...TENANT, mqttPorts: [] } }, ["brokerPassword"]);
  await settle(outputs["vhost"]!);
  await drain();
  const [p] = mocks.byType("pulumi:providers:rabbitmq");
  expect(readFileSync(String(p?.inputs["cacertFile"]), "utf8")).toBe(ca);
  expect((mocks.byType("pulumi-nodejs:dynamic/rabbitmq-mqtt:VhostMetadata")[0]?.inputs["connection"] as { caCertPem?: string }).caCertPem).toBe(ca);
});

describe("device fleets in the tenant stack", () => {
  const dir = ".e2e-artifacts/unit-fleets";
  const registry = (size: number, extra: string[] = []) => {
    const file = `${dir}/${process.pid}-${size}-${extra.length}.jsonl`;
    mkdirSync(path.resolve(dir), { recursive: true });
    const lines = Array.from({ length: size }, (_, i) => JSON.stringify({ name: `dev-${i}`, user: `home-${i}`, passwordHash: hashDevicePassword(`pw-${i}`) }));
    writeFileSync(path.resolve(file), `${[...lines, ...extra].join("\n")}\n`);
    return file;
  };
  const run = (file: string) =>
    runProgram({ ...direct, tenant: { ...TENANT, mqttPorts: [], fleets: [{ name: "thermostats", role: "c2b", registry: file, limits: { maxConnections: 2 } }] } }, ["brokerPassword"]);

  it("registers the same resources for a fleet of 1 and of 5,000: one DeviceFleet, nothing per device", async () => {
    const counts: Record<string, number>[] = [];
    for (const size of [1, 5000]) {
      const { mocks, outputs } = await run(registry(size));
      await settle(outputs["vhost"]!);
      await drain();
      const byType: Record<string, number> = {};
      for (const r of mocks.records) byType[r.type] = (byType[r.type] ?? 0) + 1;
      counts.push(byType);
      const [fleet] = mocks.byType("pulumi-nodejs:dynamic/rabbitmq-mqtt:DeviceFleet");
      expect(Object.keys(fleet?.inputs["members"] as object)).toHaveLength(size);
      expect(fleet?.inputs["summary"]).toMatch(new RegExp(`^${size} devices`));
    }
    expect(counts[1]).toEqual(counts[0]);
    expect(counts[0]?.["pulumi-nodejs:dynamic/rabbitmq-mqtt:DeviceFleet"]).toBe(1);
  });

  it("keeps the devices' hashes secret and their fingerprints plain, for a readable preview", async () => {
    const { mocks, outputs } = await run(registry(3));
    await settle(outputs["vhost"]!);
    await drain();
    const [fleet] = mocks.byType("pulumi-nodejs:dynamic/rabbitmq-mqtt:DeviceFleet");
    expect(fleet?.secretInputs).toEqual(expect.arrayContaining(["credentials", "connection"]));
    expect(fleet?.secretInputs).not.toContain("members");
    expect(Object.values(fleet?.inputs["members"] as Record<string, string>).every((f) => /^[0-9a-f]{16}$/.test(f))).toBe(true);
  });

  it("fails on a hostile registry line before any resource, naming file and line", async () => {
    const file = registry(2, [JSON.stringify({ name: "dev-*", user: "h", passwordHash: hashDevicePassword("x") })]);
    vi.resetModules();
    const mocks = new RecordingMocks();
    await pulumi.runtime.setMocks(mocks, PROJECT, "test", false);
    const config = { ...direct, tenant: { ...TENANT, mqttPorts: [], fleets: [{ name: "thermostats", role: "c2b", registry: file }] } };
    pulumi.runtime.setAllConfig(
      Object.fromEntries(Object.entries(config).map(([k, v]) => [`${PROJECT}:${k}`, typeof v === "string" ? v : JSON.stringify(v)])),
      [`${PROJECT}:brokerPassword`],
    );
    const err = await import("../../stacks/index").then(
      () => undefined,
      (e: unknown) => e,
    );
    // vi.resetModules() loads a fresh copy of core/errors, so compare by name, not instanceof.
    expect((err as Error).name).toBe(ConfigError.name);
    expect((err as ConfigError).issues.map((i) => i.key)).toEqual([`${file}:3 name`]);
    await drain();
    expect(mocks.records).toEqual([]);
  });
});
