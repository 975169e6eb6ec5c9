/**
 * Throwaway PKI material for brokers the tests start without running the platform program: a
 * root CA and a server certificate for the loopback names, made by the same hooks that stand in
 * for @pulumi/tls (tests/support/tls-provider.ts).
 */
import { applyTlsResource, generatePrivateKey, issueCertificate, type TlsSubject } from "./tls-provider";

export interface TestPki {
  readonly caCertPem: string;
  readonly caKeyPem: string;
  /** A server certificate for localhost / 127.0.0.1 (or the names given), signed by the CA. */
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
}

async function tls(type: string, inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
  const out = await applyTlsResource(`tls:index/${type}`, inputs);
  if (out === undefined) throw new Error(`no TLS hook for ${type}`);
  return out;
}

/** `names`: what the server certificate is for (default the loopback names). */
export async function testPki(names: { dnsNames: string[]; ipAddresses: string[] } = { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] }): Promise<TestPki> {
  const caKey = await tls("privateKey:PrivateKey", { algorithm: "ECDSA", ecdsaCurve: "P256" });
  const ca = await tls("selfSignedCert:SelfSignedCert", {
    privateKeyPem: caKey["privateKeyPem"],
    subject: { commonName: "throwaway test CA" },
    validityPeriodHours: 24,
    allowedUses: ["cert_signing", "digital_signature"],
    isCaCertificate: true,
  });
  const serverKey = await tls("privateKey:PrivateKey", { algorithm: "ECDSA", ecdsaCurve: "P256" });
  const csr = await tls("certRequest:CertRequest", {
    privateKeyPem: serverKey["privateKeyPem"],
    subject: { commonName: names.dnsNames[0] ?? "localhost" },
    dnsNames: names.dnsNames,
    ipAddresses: names.ipAddresses,
  });
  const server = await tls("locallySignedCert:LocallySignedCert", {
    certRequestPem: csr["certRequestPem"],
    caCertPem: ca["certPem"],
    caPrivateKeyPem: caKey["privateKeyPem"],
    validityPeriodHours: 24,
    allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
  });
  return {
    caCertPem: String(ca["certPem"]),
    caKeyPem: String(caKey["privateKeyPem"]),
    serverCertPem: String(server["certPem"]),
    serverKeyPem: String(serverKey["privateKeyPem"]),
  };
}

/** A self-signed CA valid now, that no broker of the tests trusts. */
export async function selfSignedCa(commonName: string): Promise<{ certPem: string; keyPem: string }> {
  const now = Date.now();
  const key = await generatePrivateKey("ECDSA", 2048, "P256");
  const certPem = await issueCertificate({
    subject: { commonName },
    publicKeyPem: key.publicKeyPem,
    issuer: "self",
    privateKeyPemForSelf: key.privateKeyPem,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 3600_000),
    allowedUses: ["cert_signing"],
    isCa: true,
  });
  return { certPem, keyPem: key.privateKeyPem };
}

/**
 * A client certificate with `subject`, valid now, signed by a CA of its own that no broker trusts:
 * what an impostor presents to log in as a device.
 */
export async function certificateFromAnotherCa(subject: TlsSubject): Promise<{ certPem: string; keyPem: string }> {
  const now = Date.now();
  const rogueCa = await selfSignedCa("rogue CA");
  const leafKey = await generatePrivateKey("ECDSA", 2048, "P256");
  const certPem = await issueCertificate({
    subject,
    publicKeyPem: leafKey.publicKeyPem,
    issuer: { certPem: rogueCa.certPem, privateKeyPem: rogueCa.keyPem },
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 3600_000),
    allowedUses: ["digital_signature", "client_auth"],
  });
  return { certPem, keyPem: leafKey.privateKeyPem };
}
