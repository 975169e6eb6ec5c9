/**
 * The mock @pulumi/tls provider makes real keys and certificates; these tests check them with
 * tools that share no code with it: the openssl CLI, ssh-keygen, node:tls and Erlang/OTP's ssl
 * (the broker's TLS stack).
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash, createPublicKey, X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyTlsResource, generatePrivateKey, issueCertificate, type TlsSubject } from "../support/tls-provider";

const dir = mkdtempSync(join(tmpdir(), "tls-provider-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function file(contents: string): string {
  const path = join(dir, `f${fileCount++}.pem`);
  writeFileSync(path, contents, { mode: 0o600 });
  return path;
}

function run(cmd: string, args: string[]): { status: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}
const openssl = (...args: string[]) => run("openssl", args);

type State = Record<string, unknown>;

async function apply(type: string, inputs: State): Promise<State> {
  const state = await applyTlsResource(`tls:index/${type}`, inputs);
  if (!state) throw new Error(`${type} is not a tls resource`);
  return state;
}

function text(state: State, key: string): string {
  const value = state[key];
  if (typeof value !== "string") throw new Error(`${key} is not a string: ${JSON.stringify(value)}`);
  return value;
}

interface Key {
  privateKeyPem: string;
  publicKeyPem: string;
}
interface Issued {
  certPem: string;
  state: State;
}
interface Ca extends Issued {
  key: Key;
}

async function newKey(algorithm: string, extra: State = {}): Promise<Key & { state: State }> {
  const state = await apply("privateKey:PrivateKey", { algorithm, ...extra });
  return { privateKeyPem: text(state, "privateKeyPem"), publicKeyPem: text(state, "publicKeyPem"), state };
}

async function selfSigned(key: Key, inputs: State): Promise<Issued> {
  const state = await apply("selfSignedCert:SelfSignedCert", { privateKeyPem: key.privateKeyPem, validityPeriodHours: 24, ...inputs });
  return { certPem: text(state, "certPem"), state };
}

async function csr(key: Key, inputs: State): Promise<string> {
  return text(await apply("certRequest:CertRequest", { privateKeyPem: key.privateKeyPem, ...inputs }), "certRequestPem");
}

async function signed(certRequestPem: string, ca: Ca, inputs: State): Promise<Issued> {
  const state = await apply("locallySignedCert:LocallySignedCert", {
    certRequestPem,
    caPrivateKeyPem: ca.key.privateKeyPem,
    caCertPem: ca.certPem,
    validityPeriodHours: 24,
    ...inputs,
  });
  return { certPem: text(state, "certPem"), state };
}

async function newRootCa(algorithm: string, extra: State, commonName: string): Promise<Ca> {
  const key = await newKey(algorithm, extra);
  const cert = await selfSigned(key, {
    subject: { commonName, organization: "Test PKI" },
    isCaCertificate: true,
    allowedUses: ["cert_signing", "crl_signing"],
  });
  return { ...cert, key };
}

/** `openssl x509 -text`, squeezed to single spaces so assertions need not care about layout. */
const x509Text = (certPem: string) => openssl("x509", "-noout", "-text", "-in", file(certPem)).out.replace(/\s+/g, " ");

// One PKI for the chain tests: RSA root -> ECDSA intermediate -> ECDSA server, RSA client.
let root: Ca;
let intermediate: Ca;
let server: Issued & { key: Key };
let client: Issued & { key: Key };
let otherRoot: Ca;
let strangerClient: Issued & { key: Key };

beforeAll(async () => {
  root = await newRootCa("RSA", { rsaBits: 2048 }, "Test Root CA");

  const intermediateKey = await newKey("ECDSA", { ecdsaCurve: "P256" });
  const intermediateCert = await signed(await csr(intermediateKey, { subject: { commonName: "Test Intermediate CA", organization: "Test PKI" } }), root, {
    isCaCertificate: true,
    allowedUses: ["cert_signing", "crl_signing"],
  });
  intermediate = { ...intermediateCert, key: intermediateKey };

  const serverKey = await newKey("ECDSA", { ecdsaCurve: "P256" });
  const serverCsr = await csr(serverKey, { subject: { commonName: "broker" }, dnsNames: ["localhost", "broker.test"], ipAddresses: ["127.0.0.1", "::1"] });
  server = { ...(await signed(serverCsr, intermediate, { allowedUses: ["digital_signature", "key_encipherment", "server_auth"] })), key: serverKey };

  const clientKey = await newKey("RSA", { rsaBits: 2048 });
  const clientCsr = await csr(clientKey, { subject: { commonName: "device-1", organization: "acme" } });
  client = { ...(await signed(clientCsr, intermediate, { allowedUses: ["digital_signature", "key_encipherment", "client_auth"] })), key: clientKey };

  // Same shape as `client`, but from a CA nobody trusts.
  otherRoot = await newRootCa("ECDSA", { ecdsaCurve: "P256" }, "Test Root CA");
  const strangerKey = await newKey("RSA", { rsaBits: 2048 });
  const strangerCsr = await csr(strangerKey, { subject: { commonName: "device-1", organization: "acme" } });
  strangerClient = { ...(await signed(strangerCsr, otherRoot, { allowedUses: ["digital_signature", "key_encipherment", "client_auth"] })), key: strangerKey };
}, 60_000);

describe("PrivateKey", () => {
  it("RSA: a PKCS#1 key of rsaBits, with PKCS#8 and PKIX forms of the same key", async () => {
    const { state } = await newKey("RSA", { rsaBits: 2048 });
    const pem = text(state, "privateKeyPem");
    expect(pem).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(openssl("rsa", "-check", "-noout", "-in", file(pem)).out).toContain("RSA key ok");
    expect(openssl("pkey", "-noout", "-text", "-in", file(pem)).out).toContain("Private-Key: (2048 bit, 2 primes)");
    expect(text(state, "privateKeyPemPkcs8")).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(openssl("pkey", "-pubout", "-in", file(text(state, "privateKeyPemPkcs8"))).out).toBe(text(state, "publicKeyPem"));
    expect(openssl("pkey", "-pubout", "-in", file(pem)).out).toBe(text(state, "publicKeyPem"));
    // The provider's id: hex SHA-1 of the DER public key.
    const spki = createPublicKey(text(state, "publicKeyPem")).export({ format: "der", type: "spki" });
    expect(state["id"]).toBe(createHash("sha1").update(spki).digest("hex"));
    expect(state).toMatchObject({ algorithm: "RSA", rsaBits: 2048, ecdsaCurve: "P224" });
  });

  it.each([
    ["P256", "prime256v1"],
    ["P384", "secp384r1"],
  ])("ECDSA %s: a SEC1 key on that curve, with PKCS#8 and PKIX forms", async (curve, opensslCurve) => {
    const { state } = await newKey("ECDSA", { ecdsaCurve: curve });
    const pem = text(state, "privateKeyPem");
    expect(pem).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/);
    expect(openssl("ec", "-check", "-noout", "-in", file(pem)).out).toContain("EC Key valid.");
    expect(openssl("pkey", "-noout", "-text", "-in", file(pem)).out).toContain(`ASN1 OID: ${opensslCurve}`);
    expect(openssl("pkey", "-pubout", "-in", file(text(state, "privateKeyPemPkcs8"))).out).toBe(text(state, "publicKeyPem"));
  });

  it("ED25519: a PKCS#8 key", async () => {
    const { state } = await newKey("ED25519");
    const pem = text(state, "privateKeyPem");
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(pem).toBe(text(state, "privateKeyPemPkcs8"));
    expect(openssl("pkey", "-noout", "-text", "-in", file(pem)).out).toContain("ED25519 Private-Key:");
    expect(openssl("pkey", "-pubout", "-in", file(pem)).out).toBe(text(state, "publicKeyPem"));
  });

  it.each([
    ["RSA", { rsaBits: 2048 }],
    ["ECDSA", { ecdsaCurve: "P256" }],
    ["ED25519", {}],
  ])("%s: the OpenSSH private key, public key and fingerprints agree with ssh-keygen", async (algorithm, extra) => {
    const { state } = await newKey(algorithm, extra);
    const privateKeyFile = file(text(state, "privateKeyOpenssh"));
    const publicKey = text(state, "publicKeyOpenssh");
    expect(publicKey.endsWith("\n")).toBe(true);
    expect(run("ssh-keygen", ["-y", "-f", privateKeyFile]).out.trim()).toBe(publicKey.trim());
    const publicKeyFile = file(publicKey);
    expect(run("ssh-keygen", ["-l", "-E", "sha256", "-f", publicKeyFile]).out).toContain(` ${text(state, "publicKeyFingerprintSha256")} `);
    expect(run("ssh-keygen", ["-l", "-E", "md5", "-f", publicKeyFile]).out).toContain(` MD5:${text(state, "publicKeyFingerprintMd5")} `);
  });

  it("ECDSA defaults to P224 and, like the provider, leaves the OpenSSH outputs empty for it", async () => {
    const { state } = await newKey("ECDSA");
    expect(openssl("pkey", "-noout", "-text", "-in", file(text(state, "privateKeyPem"))).out).toContain("ASN1 OID: secp224r1");
    expect(state).toMatchObject({ ecdsaCurve: "P224", privateKeyOpenssh: "", publicKeyOpenssh: "", publicKeyFingerprintSha256: "", publicKeyFingerprintMd5: "" });
  });

  it("rejects algorithms and curves the provider does not accept", async () => {
    await expect(generatePrivateKey("DSA")).rejects.toThrow(/algorithm value must be one of/);
    await expect(generatePrivateKey("ECDSA", 2048, "P192")).rejects.toThrow(/ecdsa_curve value must be one of: \["P224","P256","P384","P521"\], got: "P192"/);
  });

  it("returns undefined for resource types that are not @pulumi/tls resources", async () => {
    expect(await applyTlsResource("random:index/randomPassword:RandomPassword", { length: 8 })).toBeUndefined();
  });
});

describe("certificates, checked with openssl", () => {
  it("root -> intermediate -> server/client chain verifies, and the extended key usages hold", () => {
    const rootFile = file(root.certPem);
    const intermediateFile = file(intermediate.certPem);
    const verify = (certPem: string, purpose: string) =>
      openssl("verify", "-CAfile", rootFile, "-untrusted", intermediateFile, "-purpose", purpose, file(certPem));
    expect(verify(server.certPem, "sslserver")).toMatchObject({ status: 0, out: expect.stringMatching(/: OK\n$/) });
    expect(verify(client.certPem, "sslclient")).toMatchObject({ status: 0, out: expect.stringMatching(/: OK\n$/) });
    // EKU is enforced: the client certificate is no server certificate.
    expect(verify(client.certPem, "sslserver")).toMatchObject({ status: 2, out: expect.stringContaining("unsuitable certificate purpose") });
    // Without the intermediate there is no path.
    expect(openssl("verify", "-CAfile", rootFile, file(server.certPem)).status).not.toBe(0);
  });

  it("encodes the subject in Go's RDN order (openssl's RFC 2253 view is its reverse), street values in one RDN", async () => {
    const subject: TlsSubject = {
      commonName: "device-1",
      organization: "ACME & Co",
      organizationalUnit: "Sensors",
      streetAddresses: ["221B Baker Street", "Flat 2"],
      locality: "Zürich",
      province: "ZH",
      country: "CH",
      postalCode: "8000",
      serialNumber: "SN-42",
    };
    const key = await newKey("ECDSA", { ecdsaCurve: "P256" });
    const cert = await selfSigned(key, { subject, allowedUses: ["client_auth"] });
    const expected =
      "serialNumber=SN-42,CN=device-1,OU=Sensors,O=ACME & Co,postalCode=8000,street=221B Baker Street+street=Flat 2,L=Z\\C3\\BCrich,ST=ZH,C=CH";
    expect(openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", file(cert.certPem)).out).toBe(`subject=${expected}\n`);
    // Go's string types: PrintableString unless a character is outside its set ('&', non-ASCII).
    const typed = openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253,show_type", "-in", file(cert.certPem)).out;
    expect(typed).toContain("O=UTF8STRING:ACME & Co");
    expect(typed).toContain("L=UTF8STRING:Z\\C3\\BCrich");
    expect(typed).toContain("CN=PRINTABLESTRING:device-1");
    expect(typed).toContain("street=PRINTABLESTRING:221B Baker Street+street=PRINTABLESTRING:Flat 2");
    // The CSR carries the same subject, and a certificate signed from it keeps it.
    const request = await csr(key, { subject });
    expect(openssl("req", "-noout", "-subject", "-nameopt", "RFC2253", "-in", file(request)).out).toBe(`subject=${expected}\n`);
    const fromCsr = await signed(request, root, { allowedUses: ["client_auth"] });
    expect(openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", file(fromCsr.certPem)).out).toBe(`subject=${expected}\n`);
  });

  it("keeps an empty-string field like the provider does (only an empty CN or SERIALNUMBER is skipped)", async () => {
    const cert = await selfSigned(root.key, { subject: { commonName: "", organization: "", country: "DE" }, allowedUses: ["client_auth"] });
    expect(openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", file(cert.certPem)).out).toBe("subject=O=,C=DE\n");
  });

  it("takes subject, public key and SANs from the CSR and the issuer from the CA certificate, dropping emailAddress like Go", async () => {
    const key = await newKey("ECDSA", { ecdsaCurve: "P256" });
    const request = await csr(key, {
      subject: { commonName: "svc", emailAddress: "ops@example.com" },
      dnsNames: ["svc.test"],
      ipAddresses: ["10.0.0.7", "fd00::7"],
      uris: ["spiffe://test/svc"],
    });
    const requestText = openssl("req", "-noout", "-text", "-verify", "-nameopt", "RFC2253", "-in", file(request)).out;
    expect(requestText).toContain("verify OK");
    expect(requestText).toContain("Subject: emailAddress=ops@example.com,CN=svc");
    expect(requestText.replace(/\s+/g, " ")).toContain("DNS:svc.test, IP Address:10.0.0.7, IP Address:FD00:0:0:0:0:0:0:7, URI:spiffe://test/svc");

    const cert = await signed(request, intermediate, { allowedUses: ["server_auth"] });
    const parsed = new X509Certificate(cert.certPem);
    expect(parsed.subject).toBe("CN=svc");
    expect(parsed.issuer).toBe(new X509Certificate(intermediate.certPem).subject);
    expect(parsed.publicKey.export({ format: "pem", type: "spki" })).toBe(key.publicKeyPem);
    expect(parsed.subjectAltName).toBe("DNS:svc.test, IP Address:10.0.0.7, IP Address:FD00:0:0:0:0:0:0:7, URI:spiffe://test/svc");
    expect(parsed.verify(new X509Certificate(intermediate.certPem).publicKey)).toBe(true);
  });

  it("writes key usages, extended key usages, basic constraints and key identifiers as declared", () => {
    const rootText = x509Text(root.certPem);
    expect(rootText).toContain("X509v3 Key Usage: critical Certificate Sign, CRL Sign ");
    expect(rootText).toContain("X509v3 Basic Constraints: critical CA:TRUE ");
    expect(rootText).not.toContain("Extended Key Usage");
    const rootSki = /X509v3 Subject Key Identifier: ([0-9A-F:]+) /.exec(rootText)?.[1];
    expect(rootSki).toMatch(/^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);

    const intermediateText = x509Text(intermediate.certPem);
    expect(intermediateText).toContain("X509v3 Basic Constraints: critical CA:TRUE ");
    expect(intermediateText).toContain(`X509v3 Authority Key Identifier: ${rootSki} `);
    const intermediateSki = /X509v3 Subject Key Identifier: ([0-9A-F:]+) /.exec(intermediateText)?.[1];
    expect(intermediateSki).toBeDefined();

    const serverText = x509Text(server.certPem);
    expect(serverText).toContain("X509v3 Key Usage: critical Digital Signature, Key Encipherment ");
    expect(serverText).toContain("X509v3 Extended Key Usage: TLS Web Server Authentication ");
    // The provider always sets BasicConstraintsValid, so leaves say CA:FALSE (critical).
    expect(serverText).toContain("X509v3 Basic Constraints: critical CA:FALSE ");
    expect(serverText).toContain(`X509v3 Authority Key Identifier: ${intermediateSki} `);
    expect(serverText).not.toContain("Subject Key Identifier");
    expect(serverText).toContain("X509v3 Subject Alternative Name: DNS:localhost, DNS:broker.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1 ");
    expect(serverText).toContain("Signature Algorithm: ecdsa-with-SHA256");

    const clientText = x509Text(client.certPem);
    expect(clientText).toContain("X509v3 Extended Key Usage: TLS Web Client Authentication ");
    expect(clientText).not.toContain("Subject Alternative Name");
  });

  it("maxPathLength: 1 gives pathlen:1, 0 gives none (Go drops a zero MaxPathLen), and a non-CA may not set it", async () => {
    const key = await newKey("ECDSA", { ecdsaCurve: "P256" });
    const request = await csr(key, { subject: { commonName: "sub CA" } });
    const withOne = await signed(request, root, { isCaCertificate: true, allowedUses: ["cert_signing"], maxPathLength: 1 });
    expect(x509Text(withOne.certPem)).toContain("X509v3 Basic Constraints: critical CA:TRUE, pathlen:1 ");
    const withZero = await signed(request, root, { isCaCertificate: true, allowedUses: ["cert_signing"], maxPathLength: 0 });
    expect(x509Text(withZero.certPem)).toContain("X509v3 Basic Constraints: critical CA:TRUE ");
    expect(x509Text(withZero.certPem)).not.toContain("pathlen");
    await expect(signed(request, root, { allowedUses: ["server_auth"], maxPathLength: 2 })).rejects.toThrow(
      "x509: only CAs are allowed to specify MaxPathLen",
    );
  });

  it("subject key ids: RFC 5280 method 1 for RSA (as openssl computes it), the provider's OCTET STRING variant for Ed25519", async () => {
    const rsaFromOpenssl = openssl("req", "-new", "-x509", "-key", file(root.key.privateKeyPem), "-subj", "/CN=x", "-addext", "subjectKeyIdentifier=hash");
    const opensslSki = /X509v3 Subject Key Identifier: ([0-9A-F:]+) /.exec(x509Text(rsaFromOpenssl.out))?.[1];
    expect(opensslSki).toBeDefined();
    expect(x509Text(root.certPem)).toContain(`X509v3 Subject Key Identifier: ${opensslSki} `);

    // Go's asn1.Marshal(ed25519.PublicKey) wraps the 32 raw bytes in an OCTET STRING (04 20 ...).
    const edKey = await newKey("ED25519");
    const edCert = await selfSigned(edKey, { subject: { commonName: "ed" }, isCaCertificate: true, allowedUses: ["cert_signing"] });
    const raw = createPublicKey(edKey.publicKeyPem).export({ format: "der", type: "spki" }).subarray(-32);
    const expected = createHash("sha1").update(Buffer.concat([Buffer.from([0x04, 0x20]), raw])).digest("hex");
    const edSki = /X509v3 Subject Key Identifier: ([0-9A-F:]+) /.exec(x509Text(edCert.certPem))?.[1];
    expect(edSki?.replace(/:/g, "").toLowerCase()).toBe(expected);
  });

  it("setSubjectKeyId/setAuthorityKeyId on a self-signed leaf; setAuthorityKeyId without a key id fails like the provider", async () => {
    const key = await newKey("ECDSA", { ecdsaCurve: "P256" });
    const both = await selfSigned(key, { subject: { commonName: "leaf" }, allowedUses: ["server_auth"], setSubjectKeyId: true, setAuthorityKeyId: true });
    const bothText = x509Text(both.certPem);
    const ski = /X509v3 Subject Key Identifier: ([0-9A-F:]+) /.exec(bothText)?.[1];
    expect(ski).toBeDefined();
    expect(bothText).toContain(`X509v3 Authority Key Identifier: ${ski} `);
    await expect(selfSigned(key, { subject: { commonName: "leaf" }, allowedUses: ["server_auth"], setAuthorityKeyId: true })).rejects.toThrow(
      "Could not determine Authority Key Identifier",
    );
  });

  it("validity: notBefore is now and notAfter validityPeriodHours later, reported as RFC 3339", async () => {
    const before = Date.now();
    const cert = await selfSigned(root.key, { subject: { commonName: "v" }, allowedUses: ["server_auth"], validityPeriodHours: 5 });
    const after = Date.now();
    const parsed = new X509Certificate(cert.certPem);
    const notBefore = Date.parse(parsed.validFrom);
    const notAfter = Date.parse(parsed.validTo);
    // The certificate holds whole seconds.
    expect(notBefore).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(notBefore).toBeLessThanOrEqual(after);
    expect(notAfter - notBefore).toBe(5 * 3_600_000);
    const start = text(cert.state, "validityStartTime");
    const end = text(cert.state, "validityEndTime");
    expect(start).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(Math.floor(Date.parse(start) / 1000) * 1000).toBe(notBefore);
    expect(Date.parse(end) - Date.parse(start)).toBe(5 * 3_600_000);
    expect(cert.state).toMatchObject({ readyForRenewal: false, keyAlgorithm: "RSA", earlyRenewalHours: 0, isCaCertificate: false });
  });

  it("serials are random positive integers below 2^128, and the certificate's id", async () => {
    const a = await selfSigned(root.key, { subject: { commonName: "s" }, allowedUses: ["server_auth"] });
    const b = await selfSigned(root.key, { subject: { commonName: "s" }, allowedUses: ["server_auth"] });
    const serial = (c: Issued) => BigInt(`0x${new X509Certificate(c.certPem).serialNumber}`);
    expect(a.state["id"]).toBe(serial(a).toString());
    expect(serial(a)).not.toBe(serial(b));
    expect(serial(a) < 1n << 128n && serial(a) >= 0n).toBe(true);
  });

  it("rejects allowedUses the provider's validator rejects, camelCase included", async () => {
    await expect(selfSigned(root.key, { subject: { commonName: "x" }, allowedUses: ["digitalSignature"] })).rejects.toThrow(
      /allowed_uses\[0\] value must be one of: .*"digital_signature".*, got: "digitalSignature"/,
    );
  });

  it("a CA certificate needs a subject", async () => {
    await expect(selfSigned(root.key, { isCaCertificate: true, allowedUses: ["cert_signing"] })).rejects.toThrow(
      "Must contain at least one Distinguished Name when creating Certificate Authority (CA)",
    );
  });

  it("a LocallySignedCert whose CA key does not match the CA certificate fails", async () => {
    const request = await csr(client.key, { subject: { commonName: "device-2" } });
    await expect(signed(request, { ...root, key: otherRoot.key }, { allowedUses: ["client_auth"] })).rejects.toThrow(
      "x509: provided PrivateKey doesn't match parent's PublicKey",
    );
  });

  it("an expired certificate from issueCertificate fails openssl verify, a current one from the same CA passes", async () => {
    const hour = 3_600_000;
    const issue = (notBefore: number, notAfter: number) =>
      issueCertificate({
        subject: { commonName: "device-3" },
        publicKeyPem: client.key.publicKeyPem,
        issuer: { certPem: root.certPem, privateKeyPem: root.key.privateKeyPem },
        notBefore: new Date(notBefore),
        notAfter: new Date(notAfter),
        allowedUses: ["client_auth"],
      });
    const rootFile = file(root.certPem);
    const expired = openssl("verify", "-CAfile", rootFile, file(await issue(Date.now() - 48 * hour, Date.now() - 24 * hour)));
    expect(expired.status).not.toBe(0);
    expect(expired.out).toContain("certificate has expired");
    expect(openssl("verify", "-CAfile", rootFile, file(await issue(Date.now() - hour, Date.now() + hour))).status).toBe(0);
  });

  it.each([
    ["RSA 2048", "RSA", { rsaBits: 2048 }, "sha256WithRSAEncryption"],
    ["ECDSA P256", "ECDSA", { ecdsaCurve: "P256" }, "ecdsa-with-SHA256"],
    ["ECDSA P384", "ECDSA", { ecdsaCurve: "P384" }, "ecdsa-with-SHA384"],
    ["ED25519", "ED25519", {}, "ED25519"],
  ])("%s keys sign and are signed (Go's signature algorithm for the key)", async (_name, algorithm, extra, signatureAlgorithm) => {
    const ca = await newRootCa(algorithm, extra, `CA ${algorithm}`);
    expect(x509Text(ca.certPem)).toContain(`Signature Algorithm: ${signatureAlgorithm}`);
    const leafKey = await newKey(algorithm, extra);
    const leaf = await signed(await csr(leafKey, { subject: { commonName: "leaf" }, dnsNames: ["leaf.test"] }), ca, { allowedUses: ["server_auth"] });
    expect(openssl("verify", "-CAfile", file(ca.certPem), "-purpose", "sslserver", file(leaf.certPem)).status).toBe(0);
    expect(leaf.state["caKeyAlgorithm"]).toBe(algorithm);
  });
});

describe("TLS handshakes with these certificates", () => {
  interface HandshakeResult {
    serverSawClient?: string;
    /** Only with a lenient server: why the client certificate did not verify. */
    serverAuthorizationError?: string;
    serverError?: string;
    clientReceived?: string;
    clientError?: string;
  }

  /**
   * A node:tls server requiring client certificates, and one client connection to it. A lenient
   * server completes the handshake whatever the client certificate, to report why it failed.
   */
  async function handshake(
    clientCert: Issued & { key: Key },
    clientChain: string[],
    connect: tls.ConnectionOptions,
    lenientServer = false,
  ): Promise<HandshakeResult> {
    const result: HandshakeResult = {};
    const tlsServer = tls.createServer({
      key: server.key.privateKeyPem,
      cert: server.certPem + intermediate.certPem,
      ca: root.certPem,
      requestCert: true,
      rejectUnauthorized: !lenientServer,
    });
    tlsServer.on("secureConnection", (socket) => {
      if (!socket.authorized) {
        result.serverAuthorizationError = String(socket.authorizationError);
        socket.destroy();
        return;
      }
      const peer = socket.getPeerCertificate();
      result.serverSawClient = typeof peer.subject.CN === "string" ? peer.subject.CN : JSON.stringify(peer.subject.CN);
      socket.end("hello");
    });
    tlsServer.on("tlsClientError", (err) => {
      result.serverError = err.message;
    });
    await new Promise<void>((resolve) => tlsServer.listen(0, "127.0.0.1", resolve));
    const address = tlsServer.address();
    if (address === null || typeof address === "string") throw new Error("no server port");
    try {
      await new Promise<void>((resolve) => {
        const socket = tls.connect({
          host: "127.0.0.1",
          port: address.port,
          ca: root.certPem,
          key: clientCert.key.privateKeyPem,
          cert: [clientCert.certPem, ...clientChain].join(""),
          ...connect,
        });
        let received = "";
        socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
        socket.on("error", (err: Error) => (result.clientError = err.message));
        socket.on("close", () => {
          if (received) result.clientReceived = received;
          resolve();
        });
      });
    } finally {
      await new Promise((resolve) => tlsServer.close(resolve));
    }
    return result;
  }

  it("node:tls: mutual TLS succeeds (server checked by IP and by DNS name)", async () => {
    const byIp = await handshake(client, [intermediate.certPem], {});
    expect(byIp).toEqual({ serverSawClient: "device-1", clientReceived: "hello" });
    const byName = await handshake(client, [intermediate.certPem], { servername: "broker.test" });
    expect(byName).toEqual({ serverSawClient: "device-1", clientReceived: "hello" });
  });

  it("node:tls: a client certificate from another CA (with the same name) is refused", async () => {
    // TLS 1.3: the client is done before the server checks its certificate, so the refusal
    // shows on the server, as a dropped connection, with no data for the client.
    const result = await handshake(strangerClient, [], {});
    expect(result.serverSawClient).toBeUndefined();
    expect(result.clientReceived).toBeUndefined();
    expect(result.serverError).toBeDefined();
    // Why: no trusted key verifies its signature (the issuer name alone matches the real root).
    const lenient = await handshake(strangerClient, [], {}, true);
    expect(lenient).toMatchObject({ serverAuthorizationError: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });
    expect(lenient.serverSawClient).toBeUndefined();
    // The same lenient server has nothing to say about the real client.
    expect(await handshake(client, [intermediate.certPem], {}, true)).toEqual({ serverSawClient: "device-1", clientReceived: "hello" });
  });

  it("node:tls: a server name the certificate does not carry is refused by the client", async () => {
    const result = await handshake(client, [intermediate.certPem], { servername: "elsewhere.test" });
    expect(result.clientReceived).toBeUndefined();
    expect(result.clientError).toMatch(/Hostname\/IP does not match certificate's altnames/);
  });

  it.each([
    ["RSA (PKCS#1 key)", "RSA", { rsaBits: 2048 }, "-----BEGIN RSA PRIVATE KEY-----"],
    ["ECDSA P256 (SEC1 key)", "ECDSA", { ecdsaCurve: "P256" }, "-----BEGIN EC PRIVATE KEY-----"],
  ])("Erlang/OTP ssl serves with a %s certificate and verifies our client chain", async (_name, algorithm, extra, keyHeader) => {
    const key = await newKey(algorithm, extra);
    expect(key.privateKeyPem.startsWith(keyHeader)).toBe(true);
    const cert = await signed(await csr(key, { subject: { commonName: "broker" }, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] }), intermediate, {
      allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
    });
    const script = `
      {ok, _} = application:ensure_all_started(ssl),
      {ok, L} = ssl:listen(0, [{certfile, os:getenv("CERT")}, {keyfile, os:getenv("KEY")}, {cacertfile, os:getenv("CA")},
                               {verify, verify_peer}, {fail_if_no_peer_cert, true}, {active, false}]),
      {ok, {_, Port}} = ssl:sockname(L),
      io:format("PORT ~p~n", [Port]),
      {ok, T} = ssl:transport_accept(L, 20000),
      case ssl:handshake(T, 20000) of
        {ok, S} -> ok = ssl:send(S, <<"from-erlang">>), timer:sleep(300), halt(0);
        Err -> io:format("HANDSHAKE ~p~n", [Err]), halt(1)
      end.`;
    const erl = spawn("erl", ["-noshell", "-eval", script], {
      env: { ...process.env, CERT: file(cert.certPem + intermediate.certPem), KEY: file(key.privateKeyPem), CA: file(root.certPem) },
    });
    let output = "";
    const exited = new Promise<number | null>((resolve) => erl.on("exit", resolve));
    const port = await new Promise<number>((resolve, reject) => {
      erl.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        const m = /PORT (\d+)/.exec(output);
        if (m?.[1]) resolve(Number(m[1]));
      });
      erl.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
      void exited.then(() => reject(new Error(`erl exited before listening: ${output}`)));
    });
    const received = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({
        host: "127.0.0.1",
        port,
        ca: root.certPem,
        key: client.key.privateKeyPem,
        cert: client.certPem + intermediate.certPem,
      });
      let data = "";
      socket.on("data", (chunk: Buffer) => (data += chunk.toString()));
      socket.on("error", reject);
      socket.on("close", () => resolve(data));
    });
    expect(received).toBe("from-erlang");
    expect(await exited).toBe(0);
  }, 30_000);
});
