/**
 * PKI and TLS end to end, on either target:
 * 1. the shipped dev platform stack runs under the broker mocks, whose hooks make real keys and
 *    certificates from the declared @pulumi/tls inputs (root CA, acme's intermediate, the broker's
 *    certificate). In the `e2e` project a local node of the release under test is booted with the
 *    same renderer, the uploaded CA bundle, broker certificate chain and key, and no plaintext
 *    listener. In the `docker` project the stack's containers run on the Docker engine
 *    (tests/support/docker-platform.ts; a platform of this file's own beside the suite's), and
 *    every client goes through the published ports;
 * 2. tenant stacks run against that node through the platform outputs (management over HTTPS,
 *    trusted through the platform's CA; client certificates signed by the tenant's issuer);
 * 3. real MQTT, Web MQTT, HTTPS and AMQP clients check what the broker allows.
 */
import * as https from "node:https";
import * as amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { versionAtLeast } from "../../core/broker-baseline";
import { brokerLoginName } from "../../core/dn";
import { listMqttConnectionsCrashesWithTwoListeners, mqttConnectionOf, renderedConfOf, startBroker, type TestBroker } from "../support/broker";
import { applyStack, loadStackConfig } from "../support/apply-stack";
import { startDockerEngine } from "../support/docker-engine";
import { applyDevPlatform, containerRenderedConf, dockerTestBroker, type DockerPlatformInfo } from "../support/docker-platform";
import { amqpUrl, endQuietly, mqttConnect, portOpen, sleep, tryPublish, trySubscribe, waitFor, type MqttLogin, type ReceivedMessage } from "../support/clients";
import type { StackRunResult } from "../support/run-stack";
import { certificateFromAnotherCa, selfSignedCa } from "../support/test-pki";
import { devUpload, startDevTlsNode } from "../support/dev-tls-node";
import { applyTlsResource, generatePrivateKey, issueCertificate } from "../support/tls-provider";

type Issuer = { certPem: string; privateKeyPem: string; chainPem: string };
type Issuers = { root: Issuer; tenants: Record<string, Issuer> };

/** Set in the `docker` project only (tests/support/docker-global-setup.ts). */
const docker = inject("docker") as DockerPlatformInfo | undefined;
const series = `${inject("broker").major}.${inject("broker").minor}`;

let platform: StackRunResult;
let broker: TestBroker;
let acme: StackRunResult;
let globex: StackRunResult;
let caCertPem: string;
let issuers: Issuers;
/** The dev stack's rendering, as uploaded. */
let renderedConf: string;
/** The file the node under test runs with (on the host, the harness pins its own version and ports). */
let nodeConf: string;
/** The node's host name, which the broker certificate names. */
let nodeHostName: string;

const PLATFORM_REF = "organization/rabbitmq-mqtt/dev";
const GLOBEX_DEVICE = "tracker-b2";

const upload = (file: string) => devUpload(platform, file);

const identity = (r: StackRunResult, name: string) => (r.outputs["identities"] as Record<string, Record<string, string>>)[name]!;
const privateKey = (r: StackRunResult, name: string) => (r.outputs["identityPrivateKeys"] as Record<string, string>)[name]!;
const password = (r: StackRunResult, name: string) => (r.outputs["identityPasswords"] as Record<string, string>)[name]!;

/** On Docker: the dev platform's containers, one node, with the TLS settings given. */
async function dockerPlatform(name: string, tls?: Record<string, unknown>) {
  const applied = await applyDevPlatform(await startDockerEngine(), series, 1, { prefix: `${docker!.prefix}-${name}`, ...(tls ? { tls } : {}) });
  return { applied, node: dockerTestBroker(applied) };
}

beforeAll(async () => {
  expect(inject("broker").version).toBeTruthy();
  if (docker !== undefined) {
    const { applied, node } = await dockerPlatform("tls");
    platform = applied.result;
    broker = node;
    nodeConf = await containerRenderedConf(applied);
    nodeHostName = applied.info.containers[0]!;
  } else {
    platform = await applyStack("dev", loadStackConfig("dev"));
    broker = await startDevTlsNode(platform);
    nodeConf = renderedConfOf(broker);
    nodeHostName = "rabbitmq-0";
  }
  caCertPem = platform.outputs["caCertificatePem"] as string;
  issuers = platform.outputs["certificateIssuers"] as Issuers;
  renderedConf = upload("/etc/rabbitmq/rabbitmq-mqtt.d/10-rendered.conf");
  const platformOutputs = platformOutputsFor(broker, String(platform.outputs["certificateLoginFrom"]));
  acme = await applyStack("acme", loadStackConfig("acme"), platformOutputs);
  globex = await applyStack(
    "globex",
    {
      broker: { stackReference: PLATFORM_REF },
      tenant: {
        name: "globex",
        protect: false,
        mqttPorts: [broker.tls!.tenantMqttsPort],
        identities: [
          { name: GLOBEX_DEVICE, kind: "device", role: "c2b", user: "fleet-1", auth: "certificate" },
          { name: "ingest", kind: "service", role: "b2b", grants: { subscribe: ["activity/#"] } },
        ],
      },
    },
    platformOutputs,
  );
}, 300_000);

afterAll(async () => {
  await broker?.stop();
});

function tlsLogin(cert: { certPem: string; keyPem: string } | undefined, extra: Partial<MqttLogin> & { clientId: string }): MqttLogin {
  return { port: broker.tls!.mqttsPort, tls: { ca: caCertPem, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) }, ...extra };
}

const meter = () => ({ certPem: identity(acme, "meter-42")["certificatePem"]!, keyPem: privateKey(acme, "meter-42") });
/** A certificate identity's MQTT client id: its certificate's DN (the stack output says which). */
const clientIdOf = (r: StackRunResult, name: string) => identity(r, name)["mqttClientId"]!;
const meterId = () => clientIdOf(acme, "meter-42");

/** An observer with full rights in `vhost` (the admin), to see what is really delivered. */
async function observe(vhost: string): Promise<{ messages: ReceivedMessage[]; end(): Promise<void> }> {
  await managementPut(`permissions/${vhost}/${encodeURIComponent(broker.adminUsername)}`, { configure: ".*", write: ".*", read: ".*" });
  const c = await mqttConnect(tlsLogin(undefined, { username: `${vhost}:${broker.adminUsername}`, password: broker.adminPassword, clientId: `observer-${vhost}-${Date.now()}` }));
  if (!c.ok) throw new Error(`observer: ${c.reason}`);
  expect((await trySubscribe(c.client, "#")).outcome).toBe("granted");
  return { messages: c.messages, end: () => endQuietly(c.client) };
}

/**
 * The management API over HTTPS, spoken directly with node:https (not through
 * components/management/api.ts, which is under test); `ca` undefined trusts only public CAs.
 */
function adminHttps(method: "GET" | "PUT", path: string, ca: string | undefined, body?: unknown): Promise<{ status: number; body: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port: broker.tls!.managementHttpsPort,
        path,
        method,
        ...(ca ? { ca } : {}),
        auth: `${broker.adminUsername}:${broker.adminPassword}`,
        timeout: 5000,
        ...(payload !== undefined ? { headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } } : {}),
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

const httpsGet = (path: string, ca: string | undefined) => adminHttps("GET", path, ca);

async function managementPut(path: string, body: unknown): Promise<void> {
  const res = await adminHttps("PUT", `/api/${path}`, caCertPem, body);
  if (res.status >= 300) throw new Error(`PUT ${path}: ${res.status} ${res.body}`);
}

/** The platform stack's outputs as a tenant stack reads them, pointing at `node` (by default with this file's PKI). */
function platformOutputsFor(node: TestBroker, certificateLoginFrom: string, pki: { caCertPem: string; issuers: Issuers } = { caCertPem, issuers }): Record<string, Record<string, unknown>> {
  return {
    [PLATFORM_REF]: {
      managementUrl: node.managementUrl,
      adminUsername: node.adminUsername,
      adminPassword: node.adminPassword,
      caCertificatePem: pki.caCertPem,
      certificateIssuers: pki.issuers,
      certificateLoginFrom,
    },
  };
}

/** Connects over AMQP and closes again; resolves with the error when the broker refuses. */
async function amqpRefusal(connect: () => Promise<amqp.ChannelModel>): Promise<Error | undefined> {
  return connect().then(
    async (conn) => {
      await conn.close();
      return undefined;
    },
    (e: unknown) => e as Error,
  );
}

/** The broker's view of a live MQTT connection: which user and vhost the client id landed in. */
const mqttConnection = (clientId: string) => mqttConnectionOf(broker, clientId);

describe("the platform's PKI, made by the stack", () => {
  it("signs acme's devices with acme's intermediate, which the root signs, and the broker certificate names the node", async () => {
    const meterCert = meter().certPem;
    // Leaf first, then acme's intermediate: the client presents its chain, the broker trusts the root.
    expect(meterCert.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(meterCert).toContain(issuers.tenants["acme"]!.certPem.trim());
    expect(renderedConf).toContain("ssl_options.verify = verify_peer");
    expect(renderedConf).toContain("ssl_options.depth = 1");
    expect(renderedConf).toContain("mqtt.ssl_cert_login = true");
    const csr = platform.registered.find((r) => r.type === "tls:index/certRequest:CertRequest" && r.name === "pki-broker-csr");
    expect(csr?.inputs).toMatchObject({ dnsNames: [nodeHostName, "localhost"], ipAddresses: ["127.0.0.1"] });
    expect(platform.secretOutputs).toEqual(expect.arrayContaining(["adminPassword", "certificateIssuers"]));
    expect(acme.secretOutputs).toEqual(["identityPasswords", "identityPrivateKeys"]);
    const plain = JSON.stringify(Object.fromEntries(Object.entries(acme.outputs).filter(([k]) => !acme.secretOutputs.includes(k))));
    expect(plain).not.toContain("PRIVATE KEY");
  });

  it("creates the device's user without a password, named by its certificate's DN, mapped to acme in mqtt_default_vhosts", async () => {
    const dn = "SERIALNUMBER=MTR-0042,CN=meter-42@acme,OU=meters,O=acme,C=US";
    expect(identity(acme, "meter-42")["username"]).toBe(dn);
    const users = await httpsGet(`/api/users/${encodeURIComponent(dn)}`, caCertPem);
    expect(users.status).toBe(200);
    const user = JSON.parse(users.body) as { name: string; password_hash?: string; tags: string | string[] };
    expect(user.name).toBe(dn);
    // An empty hash matches no password (without one, 3.10 would store a hash of its own).
    expect(user).toHaveProperty("password_hash", "");
    expect(user.tags.length).toBe(0);
    const mapping = JSON.parse((await httpsGet("/api/global-parameters/mqtt_default_vhosts", caCertPem)).body) as { value: Record<string, string> };
    expect(mapping.value[dn]).toBe("acme");
    expect(mapping.value[identity(globex, GLOBEX_DEVICE)["username"]!]).toBe("globex");
  });
});

describe("certificate login over MQTT/TLS", () => {
  it("lands the device in its tenant's vhost as its certificate's user, with its grants enforced", async () => {
    const obs = await observe("acme");
    expect(meterId()).toBe(identity(acme, "meter-42")["username"]);
    const c = await mqttConnect(tlsLogin(meter(), { clientId: meterId() }));
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    try {
      expect(await mqttConnection(meterId())).toEqual({ clientId: meterId(), user: identity(acme, "meter-42")["username"], vhost: "acme" });
      expect((await trySubscribe(c.client, "client/meter-42/#")).outcome).toBe("granted");
      expect(await tryPublish(c.client, "activity/u-1001/reading", "42 kWh")).toBe("acked");
      expect(await waitFor(() => obs.messages.some((m) => m.topic === "activity/u-1001/reading" && m.payload === "42 kWh"), 5000)).toBe(true);
      // Another identity's commands: refused (3.10 closes the connection).
      expect((await trySubscribe(c.client, "client/web-app/#")).outcome).not.toBe("granted");
    } finally {
      await endQuietly(c.client);
      await obs.end();
    }
  });

  it("rabbitmqctl list_mqtt_connections with two MQTT listeners: lists them on 3.10 and 4.3, crashes on 4.0", async () => {
    const c = await mqttConnect(tlsLogin(meter(), { clientId: meterId() }));
    if (!c.ok) throw new Error(c.reason);
    try {
      const listed = broker.ctl(["list_mqtt_connections", "client_id", "vhost", "--no-table-headers", "--quiet"]);
      if (listMqttConnectionsCrashesWithTwoListeners(broker)) {
        // The CLI prints the node's crash and still exits 0.
        expect(await listed).toMatch(/case_clause.*listener_of_protocol/s);
      } else {
        expect(await listed).toContain(`${meterId()}\tacme`);
      }
      // The harness's listing (the management API's on 4.0) has the same facts.
      expect(await mqttConnection(meterId())).toEqual({ clientId: meterId(), user: identity(acme, "meter-42")["username"], vhost: "acme" });
    } finally {
      await endQuietly(c.client);
    }
  });

  it("lands a certificate signed by the root in its own tenant too (globex, no intermediate)", async () => {
    const cert = { certPem: identity(globex, GLOBEX_DEVICE)["certificatePem"]!, keyPem: privateKey(globex, GLOBEX_DEVICE) };
    const c = await mqttConnect(tlsLogin(cert, { clientId: clientIdOf(globex, GLOBEX_DEVICE) }));
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    try {
      expect((await mqttConnection(clientIdOf(globex, GLOBEX_DEVICE)))?.vhost).toBe("globex");
      expect((await trySubscribe(c.client, `client/${GLOBEX_DEVICE}/#`)).outcome).toBe("granted");
    } finally {
      await endQuietly(c.client);
    }
  });

  it("keeps the device in its own tenant on another tenant's dedicated port (the certificate mapping wins)", async () => {
    const c = await mqttConnect({ ...tlsLogin(meter(), { clientId: meterId() }), port: broker.tls!.tenantMqttsPort });
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    try {
      expect((await mqttConnection(meterId()))?.vhost).toBe("acme");
    } finally {
      await endQuietly(c.client);
    }
  });

  it("binds the device's client id to its certificate: 4.x refuses any other id at CONNECT, 3.10 lets it subscribe to nothing", async () => {
    const boundByBroker = versionAtLeast(broker, 4, 0);
    expect(nodeConf.includes("mqtt.ssl_cert_client_id_from = distinguished_name")).toBe(boundByBroker);
    // Its old-style name, and another device's id (globex's tracker), with meter-42's certificate.
    for (const clientId of ["meter-42", clientIdOf(globex, GLOBEX_DEVICE)]) {
      const c = await mqttConnect(tlsLogin(meter(), { clientId }));
      if (boundByBroker) {
        // CONNACK return code 2, "identifier rejected" (seen on 4.0.5 and 4.3.6).
        if (c.ok) await endQuietly(c.client);
        expect(c.ok, clientId).toBe(false);
        if (!c.ok) expect(c.reason).toMatch(/identifier rejected/i);
      } else {
        // 3.10 takes the id; the queue permissions name only the DN's session queues.
        expect(c.ok, clientId).toBe(true);
        if (!c.ok) continue;
        expect((await trySubscribe(c.client, "client/meter-42/#")).outcome).toBe("closed");
        await endQuietly(c.client);
      }
    }
  });

  it("a password client of the same vhost presenting the device's DN disconnects it, but gets none of its session (a limit)", async () => {
    const device = await mqttConnect(tlsLogin(meter(), { clientId: meterId() }));
    if (!device.ok) throw new Error(device.reason);
    let closed = false;
    device.client.on("close", () => (closed = true));
    // The broker binds client ids to certificates only: a client without one may present any id.
    const impostor = await mqttConnect(tlsLogin(undefined, { username: "acme:web-app@acme", password: password(acme, "web-app"), clientId: meterId() }));
    try {
      expect(impostor.ok).toBe(true);
      if (!impostor.ok) return;
      expect(await waitFor(() => closed, 5000)).toBe(true);
      // Under the device's id it can create no session queue, so it subscribes to nothing, not even its own topics.
      expect((await trySubscribe(impostor.client, "client/web-app/#")).outcome).toBe(versionAtLeast(broker, 3, 12) ? "refused" : "closed");
    } finally {
      if (impostor.ok) await endQuietly(impostor.client);
      device.client.removeAllListeners("close");
      await endQuietly(device.client);
    }
  });

  it("refuses a certificate from another CA with the same subject", async () => {
    const rogue = await certificateFromAnotherCa({ commonName: "meter-42@acme", organization: "acme", organizationalUnit: "meters", country: "US", serialNumber: "MTR-0042" });
    const c = await mqttConnect(tlsLogin(rogue, { clientId: meterId() }));
    expect(c.ok).toBe(false);
  });

  it("refuses an expired certificate from acme's own intermediate", async () => {
    const acmeCa = issuers.tenants["acme"]!;
    const key = await generatePrivateKey("ECDSA", 2048, "P256");
    const expired = await issueCertificate({
      subject: { commonName: "meter-42@acme", organization: "acme", organizationalUnit: "meters", country: "US", serialNumber: "MTR-0042" },
      publicKeyPem: key.publicKeyPem,
      issuer: { certPem: acmeCa.certPem, privateKeyPem: acmeCa.privateKeyPem },
      notBefore: new Date(Date.now() - 48 * 3600_000),
      notAfter: new Date(Date.now() - 24 * 3600_000),
      allowedUses: ["digital_signature", "client_auth"],
    });
    const c = await mqttConnect(tlsLogin({ certPem: `${expired}${acmeCa.chainPem}`, keyPem: key.privateKeyPem }, { clientId: meterId() }));
    expect(c.ok).toBe(false);
  });

  it("refuses a valid certificate whose login name has no user", async () => {
    const acmeCa = issuers.tenants["acme"]!;
    const key = await generatePrivateKey("ECDSA", 2048, "P256");
    const subject = { commonName: "ghost@acme", organization: "acme" };
    const cert = await issueCertificate({
      subject,
      publicKeyPem: key.publicKeyPem,
      issuer: { certPem: acmeCa.certPem, privateKeyPem: acmeCa.privateKeyPem },
      notBefore: new Date(Date.now() - 3600_000),
      notAfter: new Date(Date.now() + 3600_000),
      allowedUses: ["digital_signature", "client_auth"],
    });
    expect(brokerLoginName(subject, "distinguished_name")).toBe("CN=ghost@acme,O=acme");
    // Its own DN as client id, so that only the missing user can be the reason for the refusal.
    const c = await mqttConnect(tlsLogin({ certPem: `${cert}${acmeCa.chainPem}`, keyPem: key.privateKeyPem }, { clientId: "CN=ghost@acme,O=acme" }));
    expect(c.ok).toBe(false);
  });

  it("refuses a certificate user's login by name and empty password: the user has no password", async () => {
    const dn = identity(acme, "meter-42")["username"]!;
    const c = await mqttConnect(tlsLogin(undefined, { username: `acme:${dn}`, password: "", clientId: "meter-42" }));
    expect(c.ok).toBe(false);
  });

  it.skipIf(docker !== undefined)("refuses a certificate identity over AMQPS: AMQP offers no login mechanism, EXTERNAL included", async () => {
    const m = meter();
    const err = await amqpRefusal(() =>
      amqp.connect(
        { protocol: "amqps", hostname: "127.0.0.1", port: broker.tls!.amqpsPort, vhost: "acme" },
        { ca: [caCertPem], cert: m.certPem, key: m.keyPem, credentials: amqp.credentials.external(), servername: "localhost" },
      ),
    );
    expect(err?.message).toMatch(/EXTERNAL is not provided/);
    // Nor does a password work on that port.
    const plain = await amqpRefusal(() =>
      amqp.connect(`amqps://${encodeURIComponent(broker.adminUsername)}:${broker.adminPassword}@127.0.0.1:${broker.tls!.amqpsPort}/acme`, { ca: [caCertPem], servername: "localhost" }),
    );
    expect(plain?.message).toMatch(/PLAIN is not provided/);
  });

  it.runIf(docker !== undefined)("offers no password login on the dev stack's plaintext AMQP port (it declares no AMQPS listener)", async () => {
    const plain = await amqpRefusal(() => amqp.connect(amqpUrl(broker.amqpPort, broker.adminUsername, broker.adminPassword, "acme")));
    expect(plain?.message).toMatch(/PLAIN is not provided/);
  });
});

describe("ssl_cert_login_from = common_name", () => {
  let cnBroker: TestBroker;
  let cnCa: string;
  let issuersForCn: Issuers;
  let initech: StackRunResult;

  beforeAll(async () => {
    if (docker !== undefined) {
      // Another dev platform with the setting changed: its own containers and its own PKI.
      const { applied, node } = await dockerPlatform("cn", { certificateLoginFrom: "common_name" });
      cnBroker = node;
      cnCa = applied.result.outputs["caCertificatePem"] as string;
      expect(await containerRenderedConf(applied)).toContain("ssl_cert_login_from = common_name");
      issuersForCn = applied.result.outputs["certificateIssuers"] as Issuers;
    } else {
      cnBroker = await startBroker({
        broker: { tls: { certificateLoginFrom: "common_name" } },
        tls: { caCertPem: upload("/etc/rabbitmq/tls/ca.pem"), certPem: upload("/etc/rabbitmq/tls/cert.pem"), keyPem: upload("/etc/rabbitmq/tls/key.pem"), depth: 1, plaintext: false },
      });
      cnCa = caCertPem;
      issuersForCn = issuers;
    }
    initech = await applyStack(
      "initech",
      { broker: { stackReference: PLATFORM_REF }, tenant: { name: "initech", protect: false, identities: [{ name: "kiosk-7", kind: "device", role: "c2b", user: "store-1", auth: "certificate" }] } },
      platformOutputsFor(cnBroker, "common_name", { caCertPem: cnCa, issuers: issuersForCn }),
    );
  }, 300_000);

  afterAll(async () => {
    await cnBroker?.stop();
  });

  it("names the user by the certificate's CN, <identity>@<tenant>, and lands the device in its vhost", async () => {
    expect(identity(initech, "kiosk-7")["username"]).toBe("kiosk-7@initech");
    const c = await mqttConnect({
      port: cnBroker.tls!.mqttsPort,
      tls: { ca: cnCa, cert: identity(initech, "kiosk-7")["certificatePem"]!, key: privateKey(initech, "kiosk-7") },
      // The client id is the DN whatever the login source (mqtt.ssl_cert_client_id_from on 4.x).
      clientId: clientIdOf(initech, "kiosk-7"),
    });
    expect(clientIdOf(initech, "kiosk-7")).toBe("CN=kiosk-7@initech,O=initech");
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    try {
      expect(await mqttConnectionOf(cnBroker, "CN=kiosk-7@initech,O=initech")).toEqual({ clientId: "CN=kiosk-7@initech,O=initech", user: "kiosk-7@initech", vhost: "initech" });
      expect((await trySubscribe(c.client, "client/kiosk-7/#")).outcome).toBe("granted");
    } finally {
      await endQuietly(c.client);
    }
  });
});

describe("password identities over TLS", () => {
  it("lands a plain username on the tenant's dedicated TLS port in that tenant's vhost", async () => {
    const c = await mqttConnect({ ...tlsLogin(undefined, { username: "ingest@globex", password: password(globex, "ingest"), clientId: "ingest" }), port: broker.tls!.tenantMqttsPort });
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    try {
      expect(await mqttConnection("ingest")).toEqual({ clientId: "ingest", user: "ingest@globex", vhost: "globex" });
      expect((await trySubscribe(c.client, "activity/#")).outcome).toBe("granted");
    } finally {
      await endQuietly(c.client);
    }
  });

  it("logs web-app in over MQTT/TLS in its own vhost, and refuses it in another tenant's vhost or on another tenant's port", async () => {
    const pw = password(acme, "web-app");
    const ok = await mqttConnect(tlsLogin(undefined, { username: "acme:web-app@acme", password: pw, clientId: "web-app" }));
    expect(ok.ok).toBe(true);
    if (ok.ok) {
      expect((await trySubscribe(ok.client, "client/web-app/#")).outcome).toBe("granted");
      await endQuietly(ok.client);
    }
    expect((await mqttConnect(tlsLogin(undefined, { username: "globex:web-app@acme", password: pw, clientId: "web-app" }))).ok).toBe(false);
    const onGlobexPort = await mqttConnect({ ...tlsLogin(undefined, { username: "web-app@acme", password: pw, clientId: "web-app" }), port: broker.tls!.tenantMqttsPort });
    expect(onGlobexPort.ok).toBe(false);
  });

  it("serves Web MQTT over wss with the platform's CA, with the same grants", async () => {
    const c = await mqttConnect({
      port: broker.tls!.webMqttsPort,
      websocket: true,
      tls: { ca: caCertPem },
      username: "acme:web-app@acme",
      password: password(acme, "web-app"),
      clientId: "web-app_1",
    });
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    try {
      expect((await trySubscribe(c.client, "client/web-app/#")).outcome).toBe("granted");
      expect((await trySubscribe(c.client, "client/meter-42/#")).outcome).not.toBe("granted");
    } finally {
      await endQuietly(c.client);
    }
  });

  it("is refused by a client that trusts another CA: the broker's certificate chains to the platform's CA only", async () => {
    const otherCa = (await selfSignedCa("some other CA")).certPem;
    const c = await mqttConnect({ port: broker.tls!.mqttsPort, tls: { ca: otherCa }, username: "acme:web-app@acme", password: password(acme, "web-app"), clientId: "web-app" });
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.reason).toMatch(/self[- ]signed|unable to (verify|get)/i);
  });
});

describe("the broker's other endpoints", () => {
  it("takes a direct broker connection over HTTPS with a private CA given in config", async () => {
    const hooli = await applyStack("hooli", {
      broker: { managementUrl: broker.managementUrl, username: broker.adminUsername, caCertificatePem: caCertPem },
      brokerPassword: broker.adminPassword,
      tenant: { name: "hooli", protect: false, identities: [{ name: "app-1", kind: "app", role: "c2b", user: "u-1" }] },
    });
    expect(hooli.outputs["vhost"]).toBe("hooli");
    expect((await httpsGet("/api/vhosts/hooli", caCertPem)).status).toBe(200);
  });

  it("answers the management API over HTTPS with a certificate that chains to the platform's CA", async () => {
    const res = await httpsGet("/api/overview", caCertPem);
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as { rabbitmq_version: string }).rabbitmq_version).toBe(broker.version);
    await expect(httpsGet("/api/overview", undefined)).rejects.toThrow(/self[- ]signed|unable to (verify|get)/i);
  });

  // The dev stack on Docker keeps its plaintext listeners (tests/e2e/docker/dev-platform.e2e.test.ts).
  it.skipIf(docker !== undefined)("opens no plaintext listener: MQTT, Web MQTT, management and AMQP ports are closed", async () => {
    await sleep(100);
    // Web MQTT's plaintext listener can be switched off only up to 3.10; later it is confined to
    // the node's loopback interface, which in this test is also where the TLS listeners are.
    const webMqttClosable = !versionAtLeast(broker, 3, 11);
    for (const port of [broker.mqttPort, broker.managementPort, broker.amqpPort, ...(webMqttClosable ? [broker.webMqttPort] : [])]) {
      expect(await portOpen(port), `port ${port}`).toBe(false);
    }
    // (The node's own file: the dev stack's rendering keeps plaintext listeners and pins its own version.)
    if (!webMqttClosable) expect(renderedConfOf(broker)).toContain("web_mqtt.tcp.ip = 127.0.0.1");
    expect(await portOpen(broker.tls!.mqttsPort)).toBe(true);
  });
});

describe("the hooks make real TLS resources", () => {
  it("issues the same certificate kinds the provider would (sanity: a CSR round trip)", async () => {
    const key = await applyTlsResource("tls:index/privateKey:PrivateKey", { algorithm: "ECDSA", ecdsaCurve: "P256" });
    const csr = await applyTlsResource("tls:index/certRequest:CertRequest", { privateKeyPem: key?.["privateKeyPem"], subject: { commonName: "x" } });
    expect(String(csr?.["certRequestPem"])).toMatch(/BEGIN CERTIFICATE REQUEST/);
  });
});

describe("retiring a certificate identity (last: it changes the acme stack)", () => {
  it("closes its connection, deletes its user and its mqtt_default_vhosts entry, and its still-valid certificate no longer logs in", async () => {
    const dn = identity(acme, "meter-42")["username"]!;
    const live = await mqttConnect(tlsLogin(meter(), { clientId: meterId() }));
    expect(live.ok).toBe(true);
    if (!live.ok) return;
    let closed = false;
    live.client.on("close", () => (closed = true));
    const material = meter();
    const config = loadStackConfig("acme");
    const tenant = config["tenant"] as { identities: { name: string }[] };
    tenant.identities = tenant.identities.filter((i) => i.name !== "meter-42");
    acme = await applyStack(
      "acme",
      config,
      platformOutputsFor(broker, "distinguished_name"),
      acme,
    );
    expect(await waitFor(() => closed, 5000)).toBe(true);
    expect((await httpsGet(`/api/users/${encodeURIComponent(dn)}`, caCertPem)).status).toBe(404);
    const mapping = JSON.parse((await httpsGet("/api/global-parameters/mqtt_default_vhosts", caCertPem)).body) as { value: Record<string, string> };
    expect(mapping.value).not.toHaveProperty(dn);
    // globex's entry is another stack's: untouched.
    expect(mapping.value[identity(globex, GLOBEX_DEVICE)["username"]!]).toBe("globex");
    const again = await mqttConnect(tlsLogin(material, { clientId: dn }));
    if (again.ok) await endQuietly(again.client);
    expect(again.ok).toBe(false);
  });
});
