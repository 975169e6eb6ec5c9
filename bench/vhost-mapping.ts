/**
 * Which broker-wide mapping should put a fleet's certificate logins in their tenant's vhost?
 * A benchmark (not a test: it prints figures side by side from one run), on a node of the release
 * E2E_BROKER names (default: the host's package), booted with what the dev platform stack renders
 * (TLS listeners, certificate login), as tests/e2e/certificate-fleets.e2e.test.ts boots it:
 *
 *   npm run bench:vhost-mapping                          1,000 / 10,000 / 100,000 entries
 *   MAPPING_SIZES=1000,10000 npm run bench:vhost-mapping
 *
 * For each size N, two ways:
 * - `mqtt_default_vhosts` with N entries (one per device: its DN -> the tenant's vhost): the time
 *   of one PUT of the whole object (what every added or removed device costs, since the parameter
 *   is one JSON value), then LOGINS devices logging in by certificate at once on the shared TLS
 *   port: wall time, per-CONNECT latency p50 / p95 / max, broker memory after;
 * - the tenant's TLS port in `mqtt_port_to_vhost_mapping` (one entry, whatever N) with
 *   `mqtt_default_vhosts` absent: the same logins on that port.
 */
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import * as path from "node:path";
import { loadIssuer, signDeviceCertificate } from "../core/fleet-certificates";
import { applyStack, loadStackConfig } from "../tests/support/apply-stack";
import { brokerInfo } from "../tests/support/broker";
import { endQuietly, mqttConnect, type MqttLogin } from "../tests/support/clients";
import { startDevTlsNode } from "../tests/support/dev-tls-node";
import { managementCall, type ManagementConnection } from "../components/management/api";

const SIZES = (process.env["MAPPING_SIZES"] ?? "1000,10000,100000").split(",").map(Number);
const LOGINS = Number(process.env["LOGINS"] ?? 200);
const VHOST = "benchmap";
const dnOf = (name: string) => `CN=${name}@${VHOST},O=${VHOST}`;

interface Device {
  readonly name: string;
  readonly certPem: string;
  readonly keyPem: string;
}

interface Row {
  way: string;
  entries: number;
  putSeconds?: number;
  wallSeconds: number;
  p50: number;
  p95: number;
  max: number;
  refused: number;
  brokerMiB: number;
}

async function brokerMemMiB(conn: ManagementConnection): Promise<number> {
  const nodes = (await managementCall(conn, "GET", "nodes?columns=mem_used")).body as { mem_used: number }[];
  return (nodes[0]?.mem_used ?? 0) / 2 ** 20;
}

/** LOGINS certificate logins at once; latency of each CONNECT (ms) and the refusals. */
async function logins(devices: readonly Device[], port: number, ca: string): Promise<Pick<Row, "wallSeconds" | "p50" | "p95" | "max" | "refused">> {
  const started = Date.now();
  const reasons = new Set<string>();
  const results = await Promise.all(
    devices.map(async (d) => {
      const t = Date.now();
      const login: MqttLogin = { port, tls: { ca, cert: d.certPem, key: d.keyPem }, clientId: dnOf(d.name), connectTimeoutMs: 120_000 };
      const c = await mqttConnect(login);
      if (!c.ok) reasons.add(c.reason);
      return { ms: Date.now() - t, c };
    }),
  );
  const wallSeconds = (Date.now() - started) / 1000;
  if (reasons.size > 0) console.log(`refusals: ${[...reasons].join("; ")}`);
  await Promise.all(results.flatMap((r) => (r.c.ok ? [endQuietly(r.c.client)] : [])));
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]! / 1000;
  return { wallSeconds, p50: at(0.5), p95: at(0.95), max: ms.at(-1)! / 1000, refused: results.filter((r) => !r.c.ok).length };
}

/** The start of the node's first error report (why the refused logins failed). */
function brokerLogLines(baseDir: string): string {
  const dir = path.join(baseDir, "log");
  const lines = readdirSync(dir)
    .filter((f) => f.endsWith(".log"))
    .flatMap((f) => readFileSync(path.join(dir, f), "utf8").split("\n"));
  const first = lines.findIndex((l) => l.includes("[error]"));
  return first < 0 ? "(no error logged)" : lines.slice(first, first + 14).map((l) => l.slice(0, 300)).join("\n");
}

async function main(): Promise<void> {
  const platform = await applyStack("dev", loadStackConfig("dev"));
  const node = await startDevTlsNode(platform);
  const broker = brokerInfo(node);
  const ca = platform.outputs["caCertificatePem"] as string;
  const root = (platform.outputs["certificateIssuers"] as { root: { certPem: string; privateKeyPem: string } }).root;
  const tls = node.tls!;
  // Management over HTTPS only, trusted through the platform's CA.
  const conn: ManagementConnection = { managementUrl: broker.managementUrl, username: broker.adminUsername, password: broker.adminPassword, caCertPem: ca };
  const rows: Row[] = [];
  try {
    // The devices that log in: certificate users with permissions in the vhost (what a fleet makes).
    await managementCall(conn, "PUT", `vhosts/${VHOST}`, {});
    const issuer = loadIssuer(root);
    const now = new Date();
    const devices: Device[] = [];
    for (let i = 0; i < LOGINS; i++) {
      const name = `login-${i}`;
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const certPem = signDeviceCertificate(issuer, {
        spki: publicKey.export({ type: "spki", format: "der" }),
        subject: { organization: VHOST, commonName: `${name}@${VHOST}` },
        notBefore: new Date(now.getTime() - 60_000),
        notAfter: new Date(now.getTime() + 24 * 3_600_000),
      });
      devices.push({ name, certPem, keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString() });
    }
    await managementCall(conn, "POST", "definitions", {
      users: devices.map((d) => ({ name: dnOf(d.name), password_hash: "", hashing_algorithm: "rabbit_password_hashing_sha256", tags: [] })),
      permissions: devices.map((d) => ({ user: dnOf(d.name), vhost: VHOST, configure: ".*", write: ".*", read: ".*" })),
    });

    for (const size of SIZES) {
      const map: Record<string, string> = {};
      for (const d of devices) map[dnOf(d.name)] = VHOST;
      for (let i = devices.length; i < size; i++) map[dnOf(`filler-${i}`)] = VHOST;
      // One change of the map is one PUT of all of it: three changes, the median.
      const puts: number[] = [];
      for (let k = 0; k < 3; k++) {
        map[dnOf(`changed-${k}`)] = VHOST;
        const t = Date.now();
        await managementCall(conn, "PUT", "global-parameters/mqtt_default_vhosts", { name: "mqtt_default_vhosts", value: map });
        puts.push((Date.now() - t) / 1000);
      }
      // What the broker holds, read back (a refused body would leave the previous value).
      const held = (await managementCall(conn, "GET", "global-parameters/mqtt_default_vhosts")).body as { value: Record<string, string> };
      const heldEntries = Object.keys(held.value).length;
      if (heldEntries !== Object.keys(map).length) throw new Error(`mqtt_default_vhosts holds ${heldEntries} entries, not ${Object.keys(map).length}`);
      await managementCall(conn, "DELETE", "global-parameters/mqtt_port_to_vhost_mapping", undefined, [200, 204, 404]);
      const byDn = await logins(devices, tls.mqttsPort, ca);
      if (byDn.refused > 0) await new Promise((r) => setTimeout(r, 2000));
      if (byDn.refused > 0) console.log(`broker log about the refusals:\n${brokerLogLines(node.baseDir)}`);
      rows.push({ way: "mqtt_default_vhosts, shared port", entries: size, putSeconds: puts.sort((a, b) => a - b)[1]!, ...byDn, brokerMiB: await brokerMemMiB(conn) });
      console.log(JSON.stringify(rows.at(-1)));

      await managementCall(conn, "DELETE", "global-parameters/mqtt_default_vhosts", undefined, [200, 204, 404]);
      const t = Date.now();
      await managementCall(conn, "PUT", "global-parameters/mqtt_port_to_vhost_mapping", { name: "mqtt_port_to_vhost_mapping", value: { [String(tls.tenantMqttsPort)]: VHOST } });
      const put = (Date.now() - t) / 1000;
      const byPort = await logins(devices, tls.tenantMqttsPort, ca);
      rows.push({ way: "tenant TLS port, mqtt_port_to_vhost_mapping", entries: 1, putSeconds: put, ...byPort, brokerMiB: await brokerMemMiB(conn) });
      console.log(JSON.stringify(rows.at(-1)));
      await managementCall(conn, "DELETE", "global-parameters/mqtt_port_to_vhost_mapping", undefined, [200, 204, 404]);
    }
  } finally {
    await node.stop();
  }
  const f = (x: number | undefined) => (x === undefined ? "" : x.toFixed(2));
  console.log(`\nCertificate logins to a tenant's vhost on RabbitMQ ${broker.version} (this machine; ${LOGINS} logins at once; seconds)`);
  console.log("| devices in the fleet | way | entries in the mapping | one change (PUT) | logins: wall | CONNECT p50 | p95 | max | refused | broker memory after |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (let i = 0; i < rows.length; i += 2) {
    for (const r of [rows[i]!, rows[i + 1]!]) {
      console.log(`| ${rows[i]!.entries.toLocaleString("en")} | ${r.way} | ${r.entries.toLocaleString("en")} | ${f(r.putSeconds)} | ${f(r.wallSeconds)} | ${f(r.p50)} | ${f(r.p95)} | ${f(r.max)} | ${r.refused} | ${r.brokerMiB > 0 ? `${Math.round(r.brokerMiB)} MiB` : "not reported yet"} |`);
    }
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
