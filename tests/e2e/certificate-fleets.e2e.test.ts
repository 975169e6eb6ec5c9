/**
 * Certificate fleets end to end on a real broker of each release. The shipped dev platform stack
 * runs under the broker mocks (real keys and certificates for its @pulumi/tls resources) and a
 * local node boots with what it renders and uploads, TLS only. A tenant stack then declares two
 * fleets in registry files: cameras that log in by certificate (the registry lists their CSRs;
 * each camera keeps its key, as a device would) and meters that log in by password. The fleet
 * signs the CSRs with the platform's CA inside its one DeviceFleet resource; the cameras land in
 * the tenant's vhost through its TLS port (one mqtt_port_to_vhost_mapping entry for the tenant,
 * nothing broker-wide per device). Real MQTT and AMQP clients then check what the broker allows.
 */
import { X509Certificate } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import * as amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { managementCall } from "../../components/management/api";
import { hashDevicePassword } from "../../core/fleets";
import { ROOT, applyStack, loadStackConfig } from "../support/apply-stack";
import type { TestBroker } from "../support/broker";
import { endQuietly, mqttConnect, sleep, tryPublish, trySubscribe, waitFor, type ConnectOutcome, type MqttLogin } from "../support/clients";
import { deviceCsr, type DeviceKey } from "../support/csr";
import { startDevTlsNode } from "../support/dev-tls-node";
import type { StackRunResult } from "../support/run-stack";
import { certificateFromAnotherCa } from "../support/test-pki";

const version = inject("broker").version;
const TENANT = "certco";
const OTHER = "otherco";
const BAD = "certbad";
const PLATFORM_REF = "organization/rabbitmq-mqtt/dev";
const CAMERAS = Number(process.env["CERT_FLEET_SIZE"] ?? 2_000);
/** Of each fleet, connected at once: 250 cameras and 250 meters, 500 devices. */
const HALF = 250;
const METERS = HALF;
const DIR = `.e2e-artifacts/cert-fleets/${version}-${process.pid}`;

const camera = (i: number) => `cam-${String(i).padStart(5, "0")}`;
const meter = (i: number) => `m-${i}`;
const home = (i: number) => `home-${i}`;
const password = (name: string) => `pw-${name}-${process.pid}-certfleet`;

let platform: StackRunResult;
let broker: TestBroker;
let conn: { managementUrl: string; username: string; password: string; caCertPem: string };
let caCertPem: string;
let platformOutputs: Record<string, Record<string, unknown>>;
/** Each camera's key, kept by the test as the device keeps it. */
const keys = new Map<string, DeviceKey>();
let first: StackRunResult;

function writeRegistry(file: string, lines: string[]): string {
  const rel = `${DIR}/${file}`;
  writeFileSync(path.join(ROOT, rel), `${lines.join("\n")}\n`);
  return rel;
}

const cameraLine = (i: number, key: DeviceKey = keys.get(camera(i))!) => JSON.stringify({ name: camera(i), user: home(i), csr: key.csrPem });
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
let camerasRegistry = "";
let metersRegistry = "";

function config(cameras: string, tenant = TENANT): Record<string, unknown> {
  return {
    broker: { stackReference: PLATFORM_REF },
    tenant: {
      name: tenant,
      protect: false,
      mqttPorts: [broker.tls!.tenantMqttsPort],
      identities: [{ name: "backend", kind: "service", role: "b2b", grants: { subscribe: ["#"], publish: ["client/#"] } }],
      fleets: [
        { name: "cameras", role: "c2b", auth: "certificate", registry: cameras },
        { name: "meters", role: "c2b", registry: metersRegistry },
      ],
    },
  };
}

type FleetOutput = { auth: string; devices: number; certificates?: Record<string, string>; issuerChainPem?: string; mqttClientId?: string };
const fleetOut = (r: StackRunResult, name: string) => (r.outputs["fleets"] as Record<string, FleetOutput>)[name]!;
const clientIdOf = (r: StackRunResult, name: string) => fleetOut(r, "cameras").mqttClientId!.split("{device}").join(name);

function cameraLogin(r: StackRunResult, name: string, key: DeviceKey = keys.get(name)!, port = broker.tls!.tenantMqttsPort): MqttLogin {
  const cert = fleetOut(r, "cameras").certificates![name];
  if (cert === undefined) throw new Error(`no certificate for ${name}`);
  return { port, tls: { ca: caCertPem, cert: cert + (fleetOut(r, "cameras").issuerChainPem ?? ""), key: key.keyPem }, clientId: clientIdOf(r, name), connectTimeoutMs: 30_000 };
}

const meterLogin = (name: string): MqttLogin => ({
  port: broker.tls!.tenantMqttsPort,
  tls: { ca: caCertPem },
  username: `${name}@${TENANT}`,
  password: password(name),
  clientId: name,
  connectTimeoutMs: 30_000,
});

async function connected(login: MqttLogin): Promise<Extract<ConnectOutcome, { ok: true }>> {
  const c = await mqttConnect(login);
  if (!c.ok) throw new Error(`${login.clientId}: ${c.reason}`);
  return c;
}

async function refused(login: MqttLogin): Promise<boolean> {
  const c = await mqttConnect({ ...login, connectTimeoutMs: 10_000 });
  if (c.ok) await endQuietly(c.client);
  return !c.ok;
}

beforeAll(async () => {
  mkdirSync(path.join(ROOT, DIR), { recursive: true });
  platform = await applyStack("dev", loadStackConfig("dev"));
  broker = await startDevTlsNode(platform);
  caCertPem = platform.outputs["caCertificatePem"] as string;
  conn = { managementUrl: broker.managementUrl, username: broker.adminUsername, password: broker.adminPassword, caCertPem };
  platformOutputs = {
    [PLATFORM_REF]: {
      managementUrl: broker.managementUrl,
      adminUsername: broker.adminUsername,
      adminPassword: broker.adminPassword,
      caCertificatePem: caCertPem,
      certificateIssuers: platform.outputs["certificateIssuers"],
      certificateLoginFrom: platform.outputs["certificateLoginFrom"],
    },
  };
  const made = Date.now();
  for (const i of range(0, CAMERAS + 1)) keys.set(camera(i), deviceCsr(camera(i), TENANT));
  console.log(`[cert-fleets] ${CAMERAS + 1} device keys and CSRs made in ${((Date.now() - made) / 1000).toFixed(1)} s`);
  camerasRegistry = writeRegistry("cameras.jsonl", range(0, CAMERAS).map((i) => cameraLine(i)));
  metersRegistry = writeRegistry("meters.jsonl", range(0, METERS).map((i) => JSON.stringify({ name: meter(i), user: home(i), passwordHash: hashDevicePassword(password(meter(i))) })));
  const started = Date.now();
  first = await applyStack(TENANT, config(camerasRegistry), platformOutputs);
  console.log(`[cert-fleets] RabbitMQ ${version}: ${CAMERAS} certificate devices signed and applied with ${METERS} password devices in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, 600_000);

afterAll(async () => {
  rmSync(path.join(ROOT, DIR), { recursive: true, force: true });
  await broker?.stop();
});

describe(`certificate fleets (RabbitMQ ${version})`, () => {
  it(`signs ${CAMERAS} CSRs with the platform's CA in one resource per fleet, adding nothing broker-wide per device`, async () => {
    const fleets = first.registered.filter((r) => r.type.endsWith("DeviceFleet"));
    expect(fleets.map((r) => r.name).sort()).toEqual([`${TENANT}-fleet-cameras`, `${TENANT}-fleet-meters`]);
    const cams = fleets.find((r) => r.name.endsWith("cameras"))!;
    expect(cams.secretInputs).toEqual(expect.arrayContaining(["connection", "credentials", "issuer"]));
    const out = fleetOut(first, "cameras");
    expect(out.devices).toBe(CAMERAS);
    expect(Object.keys(out.certificates!)).toHaveLength(CAMERAS);
    const root = new X509Certificate(caCertPem);
    for (const i of [0, 1, CAMERAS - 1]) {
      const cert = new X509Certificate(out.certificates![camera(i)]!);
      expect(cert.checkIssued(root) && cert.verify(root.publicKey)).toBe(true);
      expect(cert.subject).toBe(`O=${TENANT}\nCN=${camera(i)}@${TENANT}`);
      // The device's own key, which never left it, is the certificate's.
      expect(cert.checkPrivateKey(process.getBuiltinModule("node:crypto").createPrivateKey(keys.get(camera(i))!.keyPem))).toBe(true);
    }
    // No private key and no CSR in the stack's outputs.
    expect(JSON.stringify(first.outputs["fleets"])).not.toMatch(/PRIVATE KEY|CERTIFICATE REQUEST/);
    const users = (await managementCall(conn, "GET", "users?columns=name")).body as { name: string }[];
    expect(users.filter((u) => new RegExp(`^CN=cam-\\d{5}@${TENANT},O=${TENANT}$`).test(u.name))).toHaveLength(CAMERAS);
    // The tenant's port is the only mapping; the per-device map stays untouched.
    const ports = (await managementCall(conn, "GET", "global-parameters/mqtt_port_to_vhost_mapping")).body as { value: Record<string, string> };
    expect(ports.value).toEqual({ [String(broker.tls!.tenantMqttsPort)]: TENANT });
    const perDevice = await managementCall(conn, "GET", "global-parameters/mqtt_default_vhosts", undefined, [200, 404]);
    expect(JSON.stringify(perDevice.body)).not.toContain("cam-");
  });

  it(`${2 * HALF} devices, ${HALF} by certificate and ${HALF} by password, connect at once and each stays within its own topics`, async () => {
    const step = Math.floor(CAMERAS / HALF);
    const cams = range(0, HALF).map((k) => k * step);
    const started = Date.now();
    const clients = await Promise.all([...cams.map((i) => mqttConnect(cameraLogin(first, camera(i)))), ...range(0, HALF).map((i) => mqttConnect(meterLogin(meter(i))))]);
    const names = [...cams.map((i) => ({ name: camera(i), user: home(i) })), ...range(0, HALF).map((i) => ({ name: meter(i), user: home(i) }))];
    console.log(`[cert-fleets] RabbitMQ ${version}: ${clients.length} devices (${HALF} certificate, ${HALF} password) connected at once in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    try {
      expect(clients.flatMap((c, k) => (c.ok ? [] : [`${names[k]!.name}: ${c.reason}`]))).toEqual([]);
      const outcomes = await Promise.all(
        clients.map(async (c, k) => {
          if (!c.ok) return "not connected";
          const { name, user } = names[k]!;
          const sub = await trySubscribe(c.client, `client/${name}/#`, 1, 20_000);
          const pub = await tryPublish(c.client, `activity/${user}/telemetry`, "1", 1, 20_000);
          return sub.outcome === "granted" && pub === "acked" ? "ok" : `${name}: subscribe ${sub.outcome}, publish ${pub}`;
        }),
      );
      expect(outcomes.filter((o) => o !== "ok")).toEqual([]);
    } finally {
      await Promise.all(clients.flatMap((c) => (c.ok ? [endQuietly(c.client)] : [])));
    }
  }, 300_000);

  it("no camera reaches another device's, the other fleet's or another tenant's topics, nor logs in anywhere else", async () => {
    const rows: string[] = [];
    const check = async (login: MqttLogin, what: string, act: (c: Extract<ConnectOutcome, { ok: true }>) => Promise<boolean>) => {
      const c = await connected(login);
      if (await act(c)) rows.push(`${login.clientId} could ${what}`);
      await endQuietly(c.client);
    };
    for (const i of [1, CAMERAS - 1]) {
      const other = (i + 1) % CAMERAS;
      await check(cameraLogin(first, camera(i)), `subscribe to ${camera(other)}'s topics`, async (c) => (await trySubscribe(c.client, `client/${camera(other)}/#`)).outcome === "granted");
      await check(cameraLogin(first, camera(i)), `publish as ${home(other)}`, async (c) => (await tryPublish(c.client, `activity/${home(other)}/telemetry`, "x", 1)) === "acked");
      await check(cameraLogin(first, camera(i)), "subscribe to a meter's topics", async (c) => (await trySubscribe(c.client, `client/${meter(3)}/#`)).outcome === "granted");
      await check(meterLogin(meter(i % METERS)), `subscribe to ${camera(i)}'s topics`, async (c) => (await trySubscribe(c.client, `client/${camera(i)}/#`)).outcome === "granted");
    }
    expect(rows).toEqual([]);
    // Another camera's client id (its DN) with this camera's certificate: refused on 4.x
    // (mqtt.ssl_cert_client_id_from); on 3.x the session queue of that id is not this camera's to make.
    const foreignId = await mqttConnect({ ...cameraLogin(first, camera(1)), clientId: clientIdOf(first, camera(2)) });
    if (foreignId.ok) {
      const sub = await trySubscribe(foreignId.client, `client/${camera(1)}/#`, 1);
      await endQuietly(foreignId.client);
      expect(version.startsWith("3.") && sub.outcome !== "granted").toBe(true);
    }
    // On the shared TLS port there is no mapping: the certificate lands in no vhost of the tenant.
    expect(await refused(cameraLogin(first, camera(1), undefined, broker.tls!.mqttsPort))).toBe(true);
    // The same subject from a CA the broker does not trust.
    const impostor = await certificateFromAnotherCa({ organization: TENANT, commonName: `${camera(1)}@${TENANT}` });
    expect(await refused({ ...cameraLogin(first, camera(1)), tls: { ca: caCertPem, cert: impostor.certPem, key: impostor.keyPem } })).toBe(true);
    // A camera's user has no password: its name with an empty one is refused over MQTT, and AMQP
    // offers its certificate no login (EXTERNAL is not enabled; password logins are off there).
    const dn = `CN=${camera(1)}@${TENANT},O=${TENANT}`;
    expect(await refused({ port: broker.tls!.tenantMqttsPort, tls: { ca: caCertPem }, username: dn, password: "", clientId: dn })).toBe(true);
    const cam = cameraLogin(first, camera(1));
    const amqpError = await amqp
      .connect(
        { protocol: "amqps", hostname: "127.0.0.1", port: broker.tls!.amqpsPort, vhost: TENANT },
        { ca: [caCertPem], cert: cam.tls!.cert, key: cam.tls!.key, credentials: amqp.credentials.external(), servername: "localhost" },
      )
      .then(
        async (c) => {
          await c.close();
          return undefined;
        },
        (e: unknown) => e as Error,
      );
    expect(amqpError?.message).toMatch(/EXTERNAL is not provided/);
  }, 180_000);

  it("another tenant's device is refused on this tenant's port, and sees none of its messages in its own vhost", async () => {
    const otherRegistry = writeRegistry("other-meters.jsonl", [JSON.stringify({ name: "om-1", user: home(1), passwordHash: hashDevicePassword(password("om-1")) })]);
    const other = await applyStack(
      OTHER,
      { broker: { stackReference: PLATFORM_REF }, tenant: { name: OTHER, protect: false, identities: [{ name: "backend", kind: "service", role: "b2b", grants: { subscribe: ["#"] } }], fleets: [{ name: "meters", role: "c2b", registry: otherRegistry }] } },
      platformOutputs,
    );
    try {
      const om = { ...meterLogin("om-1"), username: `om-1@${OTHER}`, password: password("om-1") };
      expect(await refused(om)).toBe(true);
      // In its own vhost (named in the username, on the shared TLS port) it logs in and hears nothing of certco.
      const own = await connected({ ...om, port: broker.tls!.mqttsPort, username: `${OTHER}:om-1@${OTHER}` });
      expect((await trySubscribe(own.client, `client/om-1/#`)).outcome).toBe("granted");
      const cam = await connected(cameraLogin(first, camera(1)));
      expect(await tryPublish(cam.client, `activity/${home(1)}/telemetry`, "from certco", 1)).toBe("acked");
      await sleep(500);
      expect(own.messages).toEqual([]);
      await endQuietly(cam.client);
      await endQuietly(own.client);
    } finally {
      await applyStack(OTHER, { broker: { stackReference: PLATFORM_REF }, tenant: { name: OTHER, protect: false, identities: [{ name: "backend", kind: "service", role: "b2b", grants: { subscribe: ["#"] } }] } }, platformOutputs, other);
    }
  }, 180_000);

  let second: StackRunResult;
  it("re-applies with no change keeping every certificate", async () => {
    const started = Date.now();
    second = await applyStack(TENANT, config(camerasRegistry), platformOutputs, first);
    console.log(`[cert-fleets] RabbitMQ ${version}: re-apply with no change in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(fleetOut(second, "cameras").certificates).toEqual(fleetOut(first, "cameras").certificates);
  }, 300_000);

  it("a removed camera is disconnected and refused; a re-keyed camera logs in with its new key only; an added one logs in", async () => {
    const victim = await connected(cameraLogin(second, camera(3)));
    const bystander = await connected(cameraLogin(second, camera(5)));
    let victimClosed = false;
    let bystanderClosed = false;
    victim.client.on("close", () => (victimClosed = true));
    bystander.client.on("close", () => (bystanderClosed = true));
    const oldKey = keys.get(camera(4))!;
    const newKey = deviceCsr(camera(4), TENANT);
    const lines = range(0, CAMERAS).flatMap((i) => (i === 3 ? [] : [i === 4 ? cameraLine(4, newKey) : cameraLine(i)]));
    const registry = writeRegistry("cameras-2.jsonl", [...lines, cameraLine(CAMERAS)]);
    const started = Date.now();
    const third = await applyStack(TENANT, config(registry), platformOutputs, second);
    console.log(`[cert-fleets] RabbitMQ ${version}: one camera removed, one re-keyed and one added in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    try {
      expect(await waitFor(() => victimClosed, 10_000)).toBe(true);
      await sleep(500);
      expect(bystanderClosed).toBe(false);
      // Its certificate is still valid, but no user of that name exists any more.
      expect(await refused(cameraLogin(second, camera(3)))).toBe(true);
      const certs = fleetOut(third, "cameras").certificates!;
      expect(certs[camera(3)]).toBeUndefined();
      expect(certs[camera(5)]).toBe(fleetOut(second, "cameras").certificates![camera(5)]);
      expect(certs[camera(4)]).not.toBe(fleetOut(second, "cameras").certificates![camera(4)]);
      const rekeyed = await connected(cameraLogin(third, camera(4), newKey));
      expect((await trySubscribe(rekeyed.client, `client/${camera(4)}/#`)).outcome).toBe("granted");
      await endQuietly(rekeyed.client);
      // The new certificate does not go with the old key (TLS refuses the pair).
      expect(await mqttConnect(cameraLogin(third, camera(4), oldKey)).then(async (c) => (c.ok ? (await endQuietly(c.client), false) : true), () => true)).toBe(true);
      const added = await connected(cameraLogin(third, camera(CAMERAS)));
      expect((await trySubscribe(added.client, `client/${camera(CAMERAS)}/#`)).outcome).toBe("granted");
      await endQuietly(added.client);
    } finally {
      await endQuietly(bystander.client);
      await endQuietly(victim.client);
    }
    await applyStack(TENANT, { ...config(registry), tenant: { ...(config(registry)["tenant"] as object), fleets: [] } }, platformOutputs, third);
    const users = (await managementCall(conn, "GET", "users?columns=name")).body as { name: string }[];
    expect(users.filter((u) => u.name.includes(`@${TENANT}`) && !u.name.startsWith("backend@"))).toEqual([]);
  }, 600_000);

  it("refuses a CSR for another device's or another tenant's subject before anything is applied, naming file and line", async () => {
    for (const [bad, message] of [
      [JSON.stringify({ name: "cam-x", user: "h", csr: deviceCsr("cam-y", BAD).csrPem }), `its subject has CN="cam-y@${BAD}"`],
      [JSON.stringify({ name: "cam-x", user: "h", csr: deviceCsr("cam-x", OTHER).csrPem }), `its subject has O="${OTHER}"`],
    ] as const) {
      const good = (name: string) => JSON.stringify({ name, user: "h", csr: deviceCsr(name, BAD).csrPem });
      const registry = writeRegistry("hostile.jsonl", [good("cam-a"), good("cam-b"), bad]);
      const err = await applyStack(BAD, config(registry, BAD), platformOutputs).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toContain(`${registry}:3 csr`);
      expect((err as Error).message).toContain(message);
    }
    expect((await managementCall(conn, "GET", `vhosts/${BAD}`, undefined, [404])).status).toBe(404);
  }, 120_000);
});
