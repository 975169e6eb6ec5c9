/**
 * Certificate fleets' pure core: CSRs parsed and checked (proof of possession, key type, subject),
 * certificates signed in bulk with the tenant's issuer and read back by Node and OpenSSL, the
 * registry of a certificate fleet validated line by line, and renewal reported by the DeviceFleet
 * provider's diff once a certificate enters its window.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deviceFleetProvider, type DeviceFleetState } from "../../components/management/device-fleet";
import { brokerLoginName } from "../../core/dn";
import { csrSubjectProblem, loadIssuer, parseCsr, renewalDue, signDeviceCertificate } from "../../core/fleet-certificates";
import { deviceFingerprint } from "../../core/fleets";
import type { ConfigError } from "../../core/errors";
import { parseTenantConfig } from "../../core/tenant-config";
import { CN, O, OU, deviceCsr, makeCsr } from "../support/csr";

const dir = mkdtempSync(path.join(tmpdir(), "fleet-certs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
/** A CA made by OpenSSL (not by the product's code), with a subject key identifier. */
function selfSignedCa(name: string, kind: "ec" | "rsa"): { certPem: string; keyPem: string } {
  const key = path.join(dir, `${name.replace(/\W/g, "-")}.key`);
  const newkey = kind === "ec" ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] : ["-newkey", "rsa:2048"];
  const certPem = openssl("req", "-x509", ...newkey, "-nodes", "-keyout", key, "-subj", `/CN=${name}`, "-days", "2", "-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign");
  return { certPem, keyPem: readFileSync(key, "utf8") };
}
const openssl = (...args: string[]) => execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const file = (name: string, content: string) => {
  const f = path.join(dir, name);
  writeFileSync(f, content);
  return f;
};

describe("a device's CSR", () => {
  it("is read with its public key and subject, for EC P-256, EC P-384 and RSA 2048 keys", () => {
    for (const key of ["ec-p256", "ec-p384", "rsa-2048"] as const) {
      const csr = parseCsr(deviceCsr("cam-1", "acme", { key }).csrPem);
      expect(csr.key).toBe({ "ec-p256": "EC P-256", "ec-p384": "EC P-384", "rsa-2048": "RSA 2048" }[key]);
      expect(csr.subject).toEqual([
        { type: O, value: "acme" },
        { type: CN, value: "cam-1@acme" },
      ]);
    }
  });

  it("is read the same when OpenSSL made it", () => {
    const pem = openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(dir, "o.key"), "-subj", "/O=acme/CN=cam-9@acme");
    expect(parseCsr(pem).subject.map((a) => a.value)).toEqual(["acme", "cam-9@acme"]);
  });

  it("is refused when its signature is not its own key's, its key is weak or of another kind, or it is no CSR", () => {
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const refusal = (pem: string) => {
      try {
        parseCsr(pem);
        return "accepted";
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(refusal(deviceCsr("cam-1", "acme", { signWith: other }).csrPem)).toMatch(/signature that does not verify/);
    expect(refusal(deviceCsr("cam-1", "acme", { key: "rsa-1024" }).csrPem)).toMatch(/RSA key has 1024 bits; use 2048-4096/);
    expect(refusal(deviceCsr("cam-1", "acme", { key: "ec-secp256k1" }).csrPem)).toMatch(/curve secp256k1; use P-256 or P-384/);
    expect(refusal(deviceCsr("cam-1", "acme", { key: "ed25519" }).csrPem)).toMatch(/ed25519/);
    expect(refusal("hello")).toMatch(/must be one PEM block "-----BEGIN CERTIFICATE REQUEST-----"/);
    const csr = deviceCsr("cam-1", "acme").csrPem;
    expect(refusal(csr + csr)).toMatch(/must be one PEM block/);
    // One character of the signed content changed.
    const lines = csr.split("\n");
    lines[2] = lines[2]!.slice(0, 10) + (lines[2]![10] === "A" ? "B" : "A") + lines[2]!.slice(11);
    expect(refusal(lines.join("\n"))).not.toBe("accepted");
    expect(refusal("x".repeat(20_000))).toMatch(/a CSR is at most 16384/);
  });

  it("must ask for the device's own subject or a part of it, never another's", () => {
    const issued = { organization: "acme", commonName: "cam-1@acme" };
    const problem = (subject: [string, string][]) => csrSubjectProblem(parseCsr(makeCsr(subject).csrPem), issued);
    expect(problem([[CN, "cam-1@acme"]])).toBeUndefined();
    expect(problem([[O, "acme"], [CN, "cam-1@acme"]])).toBeUndefined();
    expect(problem([[O, "acme"], [CN, "cam-2@acme"]])).toBe('its subject has CN="cam-2@acme"; this device\'s is CN="cam-1@acme"');
    expect(problem([[O, "globex"], [CN, "cam-1@acme"]])).toBe('its subject has O="globex"; this device\'s is O="acme"');
    expect(problem([[OU, "admins"], [CN, "cam-1@acme"]])).toBe("its subject has OU, which the fleet does not write; the fleet issues O=acme, CN=cam-1@acme");
    expect(problem([[O, "acme"]])).toBe('its subject has no CN; this device\'s is CN="cam-1@acme"');
    expect(problem([[CN, "cam-1@acme"], [CN, "cam-1@acme"]])).toBe("its subject has CN twice");
  });
});

describe("certificates signed for a fleet", () => {
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  const later = new Date(now.getTime() + 365 * 24 * 3_600_000);

  it("are signed by the issuer, for client authentication, with the fleet's subject whatever the CSR named", () => {
    for (const caKey of ["ec", "rsa"] as const) {
      const ca = selfSignedCa(`fleet test CA ${caKey}`, caKey);
      const issuer = loadIssuer({ certPem: ca.certPem, privateKeyPem: ca.keyPem });
      const caCert = new X509Certificate(ca.certPem);
      for (const key of ["ec-p256", "rsa-2048"] as const) {
        const device = makeCsr([[CN, "cam-1@acme"]], { key });
        const subject = { organization: "acme", commonName: "cam-1@acme" };
        const pem = signDeviceCertificate(issuer, { spki: parseCsr(device.csrPem).spki, subject, notBefore: now, notAfter: later });
        const cert = new X509Certificate(pem);
        expect(cert.checkIssued(caCert)).toBe(true);
        expect(cert.verify(caCert.publicKey)).toBe(true);
        expect(cert.subject).toBe("O=acme\nCN=cam-1@acme");
        expect(cert.ca).toBe(false);
        expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]);
        expect(new Date(cert.validTo).toISOString()).toBe(later.toISOString());
        expect(cert.checkPrivateKey(createPrivateKeyOf(device.keyPem))).toBe(true);
        // OpenSSL agrees: a TLS client certificate of this CA, with the subject in the order the
        // broker's DN login name is computed from.
        expect(openssl("verify", "-CAfile", file("ca.pem", ca.certPem), "-purpose", "sslclient", "-attime", String(now.getTime() / 1000 + 60), file("leaf.pem", pem))).toMatch(/: OK/);
        expect(openssl("x509", "-in", file("leaf.pem", pem), "-noout", "-subject", "-nameopt", "RFC2253")).toBe(`subject=${brokerLoginName(subject, "distinguished_name")}\n`);
      }
    }
  });

  it("get distinct random serials", () => {
    const ca = selfSignedCa("serials", "ec");
    const issuer = loadIssuer({ certPem: ca.certPem, privateKeyPem: ca.keyPem });
    const spki = parseCsr(deviceCsr("a", "acme").csrPem).spki;
    const serials = new Set(Array.from({ length: 50 }, () => new X509Certificate(signDeviceCertificate(issuer, { spki, subject: { commonName: "a@acme" }, notBefore: now, notAfter: later })).serialNumber));
    expect(serials.size).toBe(50);
  });

  it("are due for renewal inside the window and not before", () => {
    expect(renewalDue("2027-01-31T00:00:00Z", new Date("2027-01-01T00:00:00Z"), 30 * 24)).toBe(true);
    expect(renewalDue("2027-02-01T00:00:01Z", new Date("2027-01-01T00:00:00Z"), 30 * 24)).toBe(false);
    expect(renewalDue("not a date", now, 1)).toBe(true);
  });
});

function createPrivateKeyOf(pem: string) {
  return process.getBuiltinModule("node:crypto").createPrivateKey(pem);
}

describe("a certificate fleet's registry", () => {
  const tenant = (extra: Record<string, unknown> = {}) => ({
    name: "acme",
    mqttPorts: [8884],
    identities: [{ name: "backend", kind: "service", role: "b2b", grants: { subscribe: ["#"] } }],
    fleets: [{ name: "cams", role: "c2b", auth: "certificate", registry: "fleets/cams.jsonl", ...extra }],
  });
  const parse = (lines: string[], extra: Record<string, unknown> = {}) => parseTenantConfig(tenant(extra), {}, () => lines.join("\n") + "\n");
  const issuesOf = (lines: string[], extra: Record<string, unknown> = {}) => {
    try {
      parse(lines, extra);
      return [];
    } catch (e) {
      return (e as ConfigError).issues.map((i) => `${i.key}: ${i.message}`);
    }
  };
  const cam = (name: string, user = "home-1") => JSON.stringify({ name, user, csr: deviceCsr(name, "acme").csrPem });

  it("gives each device a certificate user and a DN client id, from one class", () => {
    const model = parse([cam("cam-1"), cam("cam-2", "home-2")]);
    const fleet = model.fleets[0]!;
    expect(fleet.auth).toBe("certificate");
    expect(fleet.devices.map((d) => [d.name, d.user, d.csr !== undefined])).toEqual([
      ["cam-1", "home-1", true],
      ["cam-2", "home-2", true],
    ]);
    expect(fleet.certificate?.usernames).toEqual({ distinguished_name: "CN=FLEETxDEVICE@acme,O=acme", common_name: "FLEETxDEVICE@acme" });
    expect(fleet.template.queues).toEqual(["mqtt-subscription-CN=FLEETxDEVICE@acme,O=acmeqos0", "mqtt-subscription-CN=FLEETxDEVICE@acme,O=acmeqos1", "mqtt-will-CN=FLEETxDEVICE@acme,O=acme"]);
    expect(fleet.limits.maxClientIds).toBe(1);
    // A new CSR (a re-keyed device) is a changed device.
    expect(deviceFingerprint(fleet.devices[0]!)).not.toBe(deviceFingerprint({ name: "cam-1", user: "home-1", csr: deviceCsr("cam-1", "acme").csrPem }));
  });

  it("refuses a hostile or broken line before anything is registered, naming file, line and field", () => {
    const forged = JSON.stringify({ name: "cam-3", user: "home-3", csr: deviceCsr("cam-3", "acme", { signWith: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey }).csrPem });
    const other = JSON.stringify({ name: "cam-4", user: "home-4", csr: deviceCsr("cam-1", "acme").csrPem });
    const tenantOther = JSON.stringify({ name: "cam-5", user: "home-5", csr: deviceCsr("cam-5", "globex").csrPem });
    const hash = JSON.stringify({ name: "cam-6", user: "home-6", passwordHash: "x", csr: deviceCsr("cam-6", "acme").csrPem });
    expect(issuesOf([cam("cam-1"), forged, other, tenantOther, hash, JSON.stringify({ name: "cam-7", user: "h" })])).toEqual([
      "fleets/cams.jsonl:2 csr: has a signature that does not verify: it was not signed by the key it carries",
      'fleets/cams.jsonl:3 csr: its subject has CN="cam-1@acme"; this device\'s is CN="cam-4@acme"',
      'fleets/cams.jsonl:4 csr: its subject has O="globex"; this device\'s is O="acme"',
      "fleets/cams.jsonl:5 (line): Unrecognized key: \"passwordHash\": 'passwordHash' is for auth: password fleets",
      "fleets/cams.jsonl:6 csr: must be a string: the device's certificate signing request (PKCS #10, PEM)",
    ]);
    expect(issuesOf([cam("cam-1")], { limits: { maxClientIds: 2 } })).toEqual([
      "tenant.fleets[0].limits.maxClientIds: not for auth: certificate: a certificate device's only MQTT client id is its certificate's subject DN; remove it",
    ]);
  });

  it("refuses a name whose certificate subject the broker could not read (CN over 64 characters)", () => {
    const long = "c".repeat(63);
    expect(issuesOf([JSON.stringify({ name: long, user: "h", csr: deviceCsr(long, "acme").csrPem })])[0]).toMatch(
      /^fleets\/cams\.jsonl:1 csr: the device's certificate subject: commonName is longer than 64 characters/,
    );
  });
});

describe("renewal as a fleet operation", () => {
  const state = (notAfter: string): DeviceFleetState => ({
    connection: { managementUrl: "http://127.0.0.1:1", username: "u", password: "p" },
    vhost: "acme",
    fleet: "cams",
    template: { username: "x", configure: "", write: "", read: "", exchange: "amq.topic", topicWrite: "", topicRead: "", queues: [], usesUser: false },
    limits: {},
    members: { "cam-1": "f1" },
    credentials: { "cam-1": { csr: "c" } },
    summary: "1 devices",
    certificate: { subject: { commonName: "FLEETxDEVICE@acme" }, validityHours: 24 * 365, earlyRenewalHours: 24 * 30 },
    issuer: { certPem: "ca", privateKeyPem: "k", chainPem: "" },
    certificates: { "cam-1": { pem: "p", notAfter } },
  });

  it("is a change once a device's certificate enters its window, and none before", async () => {
    const inWindow = new Date(Date.now() + 10 * 24 * 3_600_000).toISOString();
    const outside = new Date(Date.now() + 100 * 24 * 3_600_000).toISOString();
    const { certificates: _c, ...inputs } = state(outside);
    expect((await deviceFleetProvider.diff!("acme/cams", state(outside), inputs)).changes).toBe(false);
    expect((await deviceFleetProvider.diff!("acme/cams", state(inWindow), inputs)).changes).toBe(true);
    // A new issuer signs every certificate again.
    expect((await deviceFleetProvider.diff!("acme/cams", state(outside), { ...inputs, issuer: { ...inputs.issuer!, certPem: "new ca" } })).changes).toBe(true);
  });
});
