/**
 * Throwaway PKI material for brokers the tests start without running the platform program: a
 * root CA and a server certificate for the loopback names, made by the same hooks that stand in
 * for @pulumi/tls (tests/support/tls-provider.ts).
 */
import { applyTlsResource } from "./tls-provider";

export interface TestPki {
  readonly caCertPem: string;
  readonly caKeyPem: string;
  /** A server certificate for localhost / 127.0.0.1, signed by the CA. */
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
}

async function tls(type: string, inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
  const out = await applyTlsResource(`tls:index/${type}`, inputs);
  if (out === undefined) throw new Error(`no TLS hook for ${type}`);
  return out;
}

export async function testPki(): Promise<TestPki> {
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
    subject: { commonName: "localhost" },
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
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
