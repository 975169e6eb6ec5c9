/**
 * The platform components used directly, as a program that imports the library would: they take
 * the platform in the stack config's shape, validate it with the stack's schema and refuse a
 * mistake, naming the key, before they register anything (not even themselves).
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, it } from "vitest";
import { ConfigError, DockerBroker, KubernetesBroker, PlatformPki, Tenant, brokerConnection, platformCertificateNames, type PlatformConfigInput } from "../../index";
import { checkedPasswords } from "../../components/tenant";
import { RecordingMocks, drain } from "../support/recording-mocks";

const DOCKER: PlatformConfigInput = { target: "docker", image: "rabbitmq:4.3.6-management", broker: { version: "4.3.6" } };
const KUBERNETES: PlatformConfigInput = { target: "kubernetes", image: "rabbitmq:4.3.6-management", nodes: 3, broker: { version: "4.3.6" } };
const TLS = { caCertPem: "CA", certPem: "CERT", privateKeyPem: pulumi.secret("KEY"), verifyDepth: 0 };

let mocks: RecordingMocks;
beforeEach(async () => {
  mocks = new RecordingMocks();
  await pulumi.runtime.setMocks(mocks, "consumer", "dev", false);
});

/** The ConfigError a construction throws, as key: message lines. */
function refusal(construct: () => unknown): string[] {
  try {
    construct();
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.key}: ${i.message}`);
    throw e;
  }
  throw new Error("no ConfigError was thrown");
}

describe("DockerBroker and KubernetesBroker with the platform config's shape", () => {
  it("DockerBroker fills in the defaults the schema declares and renders the broker from them", async () => {
    const broker = new DockerBroker("rabbitmq", { platform: DOCKER, tls: TLS });
    await drain();
    expect(broker.model.broker.listeners).toMatchObject({ mqtts: 8883, webMqtts: 15676, managementHttps: 15671, amqps: null });
    expect(broker.model.docker).toMatchObject({ network: "rabbitmq-mqtt", publishAddress: "127.0.0.1", namePrefix: "rabbitmq" });
    expect(broker.managementUrl).toBe("https://127.0.0.1:15671");
    expect(mocks.byType("docker:index/container:Container").map((c) => c.inputs["name"])).toEqual(["rabbitmq-0"]);
    // The component itself is a registration too, so an empty record below means not even it.
    expect(mocks.byType("rabbitmq-mqtt:platform:DockerBroker")).toHaveLength(1);
  });

  it("refuses a bad listener, naming its key, before anything is registered", async () => {
    const bad = { ...DOCKER, broker: { version: "4.3.6", listeners: { mqtts: 70000 } } };
    expect(refusal(() => new DockerBroker("rabbitmq", { platform: bad, tls: TLS }))).toEqual(["platform.broker.listeners.mqtts: must be at most 65535"]);
    await drain();
    expect(mocks.records).toEqual([]);
  });

  it("refuses a platform for the other target, naming platform.target", async () => {
    expect(refusal(() => new DockerBroker("rabbitmq", { platform: KUBERNETES, tls: TLS }))).toEqual([
      "platform.target: is kubernetes, but DockerBroker deploys to docker: set target: docker, or use the component for kubernetes",
    ]);
    expect(refusal(() => new KubernetesBroker("rabbitmq", { platform: DOCKER, tls: TLS }))[0]).toMatch(/^platform\.target: is docker, but KubernetesBroker deploys to kubernetes/);
    await drain();
    expect(mocks.records).toEqual([]);
  });

  it("KubernetesBroker applies the stack's cross-field rules: an even node count and plaintext listeners are refused", async () => {
    const bad = { ...KUBERNETES, nodes: 2, broker: { version: "4.3.6", plaintextListeners: true } };
    const lines = refusal(() => new KubernetesBroker("rabbitmq", { platform: bad, tls: TLS }));
    expect(lines.map((l) => l.split(":")[0])).toEqual(["platform.broker.plaintextListeners", "platform.nodes"]);
    await drain();
    expect(mocks.records).toEqual([]);
  });
});

describe("PlatformPki with the platform config's pki", () => {
  const names = platformCertificateNames(DOCKER, "rabbitmq");

  it("gives the broker certificate the nodes' names from the platform", () => {
    expect(names.dnsNames).toContain("rabbitmq-0");
    expect(names.ipAddresses).toContain("127.0.0.1");
  });

  it("declares a root with the schema's defaults when no pki is given", async () => {
    const pki = new PlatformPki("pki", { brokerNames: names });
    await drain();
    expect(pki.config.ca).toMatchObject({ source: "generate", commonName: "rabbitmq-mqtt root CA", validityHours: 87_600 });
    expect(mocks.byType("tls:index/selfSignedCert:SelfSignedCert").map((c) => c.inputs["validityPeriodHours"])).toEqual([87_600]);
  });

  it("refuses a renewal window as long as the validity, and an import without the CA, before anything is registered", async () => {
    expect(refusal(() => new PlatformPki("pki", { pki: { ca: { validityHours: 100, earlyRenewalHours: 100 } }, brokerNames: names }))[0]).toMatch(
      /^platform\.pki\.ca\.earlyRenewalHours: is 100 but validityHours is 100/,
    );
    expect(refusal(() => new PlatformPki("pki", { pki: { ca: { source: "import" } }, brokerNames: names }))).toEqual([
      "pkiCaCertificate: required with platform.pki.ca.source import: pass importedCa, the CA's certificate and (secret) private key",
    ]);
    expect(refusal(() => new PlatformPki("pki", { brokerNames: names, importedCa: { certPem: "C", privateKeyPem: pulumi.secret("K") } }))[0]).toMatch(
      /^platform\.pki\.ca\.source: is generate, but an importedCa was given/,
    );
    await drain();
    expect(mocks.records).toEqual([]);
  });
});

describe("Tenant with a password given as an Output", () => {
  const tenant = { name: "initech", identities: [{ name: "backend", kind: "service" as const, role: "b2b", grants: { subscribe: ["activity/+/#"] } }] };
  const broker = () => brokerConnection("broker", { managementUrl: "https://rabbit.example.com:15671", username: "admin", password: pulumi.secret("admin-password-0123") });
  /** The value an Output resolves to, or its rejection (an apply that throws never calls the next apply). */
  const resolved = (o: pulumi.Output<string> | undefined) => (o as unknown as { promise(): Promise<string> }).promise();

  it("passes a password of valid length through, as a secret", async () => {
    const t = new Tenant("initech", { tenant, broker: broker(), passwords: { backend: pulumi.secret("a-password-of-24-chars!!") } });
    const pw = t.identities["backend"]?.password;
    await expect(resolved(pw)).resolves.toBe("a-password-of-24-chars!!");
    expect(await pulumi.isSecret(pw!)).toBe(true);
    await drain();
  });

  it("refuses a short one when it resolves, naming the key and never the value", async () => {
    // Through the Tenant, the user's registration then fails with this error (what `pulumi up`
    // reports); here the check itself, so that no registration fails unobserved in the test.
    const checked = checkedPasswords({ backend: pulumi.secret(pulumi.output("short-pw")), frontend: pulumi.output("a-password-of-24-chars!!") });
    // A rejected Output rejects each of its promises: observe them all.
    const backend = checked["backend"] as unknown as { isKnown: Promise<boolean>; isSecret: Promise<boolean>; promise(): Promise<string> };
    backend.isKnown.catch(() => undefined);
    backend.isSecret.catch(() => undefined);
    const error = await backend.promise().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(String(error)).toContain("identityPasswords.backend: must be a string of 16-128 characters");
    expect(String(error)).not.toContain("short-pw");
    await expect(resolved(checked["frontend"] as pulumi.Output<string>)).resolves.toBe("a-password-of-24-chars!!");
  });
});
