/**
 * Certificates for certificate fleets: devices keep their private keys and send a certificate
 * signing request (PKCS #10, PEM) that the fleet's registry lists; the fleet signs it with the
 * tenant's issuer, in bulk, inside the DeviceFleet resource (components/management/device-fleet.ts).
 *
 * - A CSR is only a public key and a proof that its sender holds the private key (its signature
 *   is checked). The subject of the certificate is the fleet's, never the CSR's: the broker user
 *   the certificate logs in as follows from it. A CSR that asks for another subject (another
 *   device's CN, another tenant's O) is refused, so a hostile line cannot hide behind a silent
 *   rewrite.
 * - Keys: EC P-256 or P-384, or RSA of 2048-4096 bits; signatures ECDSA with SHA-256/384/512 or
 *   RSA PKCS #1 v1.5 with SHA-256/384/512.
 * - The certificate: X.509 v3, 128-bit random serial, the subject in the order @pulumi/tls writes
 *   it (core/dn.ts), so the broker derives the same login name as for a certificate identity;
 *   basicConstraints CA:false, keyUsage digitalSignature (and keyEncipherment for RSA keys),
 *   extendedKeyUsage clientAuth, subject and authority key identifiers.
 *
 * Pure (node:crypto and ASN.1 codecs only), captured by the DeviceFleet provider.
 */

interface Codecs {
  readonly AsnConvert: typeof SchemaModule.AsnConvert;
  readonly OctetString: typeof SchemaModule.OctetString;
  readonly CertificationRequest: typeof CsrModule.CertificationRequest;
  readonly x509: typeof X509Module;
}

/**
 * The ASN.1 codecs, required when first used. The DeviceFleet provider is serialized with its
 * closure: Pulumi turns a `require` inside a function into the same call in the provider's
 * process, whereas a module object captured from a top-level import is serialized by value when
 * the program does not run as plain CommonJS (test runners), and these classes cannot be.
 */
function codecs(): Codecs {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const schema = require("@peculiar/asn1-schema") as typeof SchemaModule;
  const csr = require("@peculiar/asn1-csr") as typeof CsrModule;
  const x509 = require("@peculiar/asn1-x509") as typeof X509Module;
  /* eslint-enable @typescript-eslint/no-require-imports */
  return { AsnConvert: schema.AsnConvert, OctetString: schema.OctetString, CertificationRequest: csr.CertificationRequest, x509 };
}

/** node:crypto, looked up at call time for the same reason (as components/management/api.ts does for http). */
const nodeCrypto = () => process.getBuiltinModule("node:crypto");
import type { KeyObject } from "node:crypto";
import type * as CsrModule from "@peculiar/asn1-csr";
import type * as SchemaModule from "@peculiar/asn1-schema";
import type * as X509Module from "@peculiar/asn1-x509";
import { OID, subjectRdnSequence, usesPrintableString, type CertificateSubject } from "./dn";

/** A CSR is a few hundred bytes; anything far larger is not one. */
export const MAX_CSR_BYTES = 16 * 1024;

/** Signature algorithm OID -> hash, for what a CSR may be signed with. */
const CSR_SIGNATURES: Readonly<Record<string, { hash: string; key: "ec" | "rsa" }>> = {
  "1.2.840.10045.4.3.2": { hash: "sha256", key: "ec" },
  "1.2.840.10045.4.3.3": { hash: "sha384", key: "ec" },
  "1.2.840.10045.4.3.4": { hash: "sha512", key: "ec" },
  "1.2.840.113549.1.1.11": { hash: "sha256", key: "rsa" },
  "1.2.840.113549.1.1.12": { hash: "sha384", key: "rsa" },
  "1.2.840.113549.1.1.13": { hash: "sha512", key: "rsa" },
};

const CURVES: Readonly<Record<string, string>> = { prime256v1: "P-256", secp384r1: "P-384" };
const RSA_BITS = [2048, 4096] as const;

/** Short names of the subject attributes a fleet writes (a CSR may name only these). */
const ATTRIBUTE_NAMES: Readonly<Record<string, string>> = {
  [OID.country]: "C",
  [OID.province]: "ST",
  [OID.locality]: "L",
  [OID.organization]: "O",
  [OID.organizationalUnit]: "OU",
  [OID.commonName]: "CN",
  [OID.serialNumber]: "SERIALNUMBER",
};

export interface ParsedCsr {
  /** The CSR's subject attributes in encoded order (single-valued RDNs only). */
  readonly subject: readonly { readonly type: string; readonly value: string }[];
  /** The public key, DER SubjectPublicKeyInfo. */
  readonly spki: Buffer;
  /** e.g. "EC P-256", "RSA 2048". */
  readonly key: string;
}

function pemBody(pem: string, label: string): Buffer {
  const re = new RegExp(`^-----BEGIN ${label}-----\\r?\\n([A-Za-z0-9+/=\\r\\n]+)-----END ${label}-----\\s*$`);
  const m = re.exec(pem.trim() + "\n");
  if (m === null) throw new Error(`must be one PEM block "-----BEGIN ${label}-----" ... "-----END ${label}-----"`);
  return Buffer.from(m[1]!.replace(/\s/g, ""), "base64");
}

const toPem = (label: string, der: ArrayBuffer | Buffer) =>
  `-----BEGIN ${label}-----\n${(Buffer.from(der as ArrayBuffer).toString("base64").match(/.{1,64}/g) ?? []).join("\n")}\n-----END ${label}-----\n`;

function describeKey(spki: Buffer): string {
  let key;
  try {
    key = nodeCrypto().createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch {
    throw new Error("its public key cannot be read");
  }
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "ec") {
    const curve = CURVES[d.namedCurve ?? ""];
    if (curve === undefined) throw new Error(`its EC key is on curve ${d.namedCurve ?? "unknown"}; use P-256 or P-384`);
    return `EC ${curve}`;
  }
  if (key.asymmetricKeyType === "rsa") {
    const bits = d.modulusLength ?? 0;
    if (bits < RSA_BITS[0] || bits > RSA_BITS[1]) throw new Error(`its RSA key has ${bits} bits; use ${RSA_BITS[0]}-${RSA_BITS[1]}`);
    return `RSA ${bits}`;
  }
  throw new Error(`its key is ${key.asymmetricKeyType ?? "of an unknown type"}; use EC P-256/P-384 or RSA ${RSA_BITS[0]}-${RSA_BITS[1]}`);
}

/** Parses and checks a CSR (PEM). Throws an Error whose message says what is wrong. */
export function parseCsr(pem: string): ParsedCsr {
  if (pem.length > MAX_CSR_BYTES) throw new Error(`is ${pem.length} characters; a CSR is at most ${MAX_CSR_BYTES}`);
  const der = pemBody(pem, "CERTIFICATE REQUEST");
  const { AsnConvert, CertificationRequest } = codecs();
  let req: CsrModule.CertificationRequest;
  try {
    req = AsnConvert.parse(der, CertificationRequest);
  } catch {
    throw new Error("is not a PKCS #10 certificate signing request");
  }
  const info = req.certificationRequestInfo;
  const spki = Buffer.from(AsnConvert.serialize(info.subjectPKInfo));
  const key = describeKey(spki);
  const alg = CSR_SIGNATURES[req.signatureAlgorithm.algorithm];
  if (alg === undefined) {
    throw new Error(`is signed with ${req.signatureAlgorithm.algorithm}; use ECDSA or RSA (PKCS #1 v1.5) with SHA-256, SHA-384 or SHA-512`);
  }
  if (!key.toLowerCase().startsWith(alg.key)) throw new Error(`its signature algorithm does not fit its ${key} key`);
  const signed = Buffer.from(req.certificationRequestInfoRaw ?? AsnConvert.serialize(info));
  const ok = nodeCrypto().verify(alg.hash, signed, { key: nodeCrypto().createPublicKey({ key: spki, format: "der", type: "spki" }), dsaEncoding: "der" }, Buffer.from(req.signature));
  if (!ok) throw new Error("has a signature that does not verify: it was not signed by the key it carries");
  const subject: { type: string; value: string }[] = [];
  for (const rdn of info.subject) {
    if (rdn.length !== 1) throw new Error("has a multi-valued RDN in its subject");
    const a = rdn[0]!;
    subject.push({ type: a.type, value: a.value.toString() });
  }
  return { subject, spki, key };
}

/**
 * Why a CSR's subject does not fit the subject the fleet issues (undefined when it fits): it must
 * carry the CN, and every other attribute it carries must be one the fleet writes, with the same
 * value. Values are compared exactly.
 */
export function csrSubjectProblem(csr: Pick<ParsedCsr, "subject">, issued: CertificateSubject): string | undefined {
  const expected = new Map(subjectRdnSequence(issued).map((r) => [r.type, r.values[0]!]));
  const seen = new Set<string>();
  for (const a of csr.subject) {
    const name = ATTRIBUTE_NAMES[a.type] ?? a.type;
    const want = expected.get(a.type);
    if (seen.has(a.type)) return `its subject has ${name} twice`;
    seen.add(a.type);
    if (want === undefined) return `its subject has ${name}, which the fleet does not write; the fleet issues ${describeSubject(issued)}`;
    if (a.value !== want) return `its subject has ${name}=${JSON.stringify(a.value)}; this device's is ${name}=${JSON.stringify(want)}`;
  }
  if (!seen.has(OID.commonName)) return `its subject has no CN; this device's is CN=${JSON.stringify(issued.commonName)}`;
  return undefined;
}

function describeSubject(s: CertificateSubject): string {
  return subjectRdnSequence(s)
    .map((r) => `${ATTRIBUTE_NAMES[r.type] ?? r.type}=${r.values[0]}`)
    .join(", ");
}

function nameOf(s: CertificateSubject): X509Module.Name {
  const { x509 } = codecs();
  return new x509.Name(
    subjectRdnSequence(s).map(
      (r) =>
        new x509.RelativeDistinguishedName(
          r.values.map(
            (v) =>
              new x509.AttributeTypeAndValue({
                type: r.type,
                value: new x509.AttributeValue(r.type === OID.country || usesPrintableString(v) ? { printableString: v } : { utf8String: v }),
              }),
          ),
        ),
    ),
  );
}

export interface FleetIssuer {
  readonly certPem: string;
  /** Secret. */
  readonly privateKeyPem: string;
}

interface LoadedIssuer {
  readonly subject: X509Module.Name;
  readonly keyId: Buffer | undefined;
  readonly key: KeyObject;
  readonly hash: string;
  readonly algorithm: X509Module.AlgorithmIdentifier;
}

const firstPem = (pem: string, label: string) => {
  const m = new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`).exec(pem);
  if (m === null) throw new Error(`the issuer has no ${label} PEM`);
  return m[0];
};

/** The issuer's certificate and key, read once for a batch. */
export function loadIssuer(issuer: FleetIssuer): LoadedIssuer {
  const { AsnConvert, x509 } = codecs();
  const cert = AsnConvert.parse(pemBody(firstPem(issuer.certPem, "CERTIFICATE"), "CERTIFICATE"), x509.Certificate);
  const ski = cert.tbsCertificate.extensions?.find((e) => e.extnID === x509.id_ce_subjectKeyIdentifier);
  const keyId = ski ? Buffer.from(AsnConvert.parse(ski.extnValue.buffer, x509.SubjectKeyIdentifier).buffer) : undefined;
  const key = nodeCrypto().createPrivateKey(issuer.privateKeyPem);
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const hash = curve === "secp384r1" ? "sha384" : curve === "secp521r1" ? "sha512" : "sha256";
    const oid = { sha256: "1.2.840.10045.4.3.2", sha384: "1.2.840.10045.4.3.3", sha512: "1.2.840.10045.4.3.4" }[hash];
    return { subject: cert.tbsCertificate.subject, keyId, key, hash, algorithm: new x509.AlgorithmIdentifier({ algorithm: oid }) };
  }
  if (key.asymmetricKeyType === "rsa") {
    const NULL = new Uint8Array([0x05, 0x00]).buffer;
    return { subject: cert.tbsCertificate.subject, keyId, key, hash: "sha256", algorithm: new x509.AlgorithmIdentifier({ algorithm: "1.2.840.113549.1.1.11", parameters: NULL }) };
  }
  throw new Error(`the issuer's key is ${key.asymmetricKeyType ?? "of an unknown type"}; fleets sign with EC or RSA issuers`);
}

export interface DeviceCertificateRequest {
  /** The device's public key (ParsedCsr.spki). */
  readonly spki: Buffer;
  readonly subject: CertificateSubject;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Signs one device certificate; returns its PEM. */
export function signDeviceCertificate(issuer: LoadedIssuer, req: DeviceCertificateRequest): string {
  const { AsnConvert, OctetString, x509 } = codecs();
  const extension = (extnID: string, critical: boolean, value: unknown) =>
    new x509.Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
  const publicKeyInfo = AsnConvert.parse(req.spki, x509.SubjectPublicKeyInfo);
  const rsa = publicKeyInfo.algorithm.algorithm === "1.2.840.113549.1.1.1";
  // RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
  const keyId = nodeCrypto().createHash("sha1").update(Buffer.from(publicKeyInfo.subjectPublicKey)).digest();
  const serial = nodeCrypto().randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive, 16 bytes
  const usage = x509.KeyUsageFlags.digitalSignature | (rsa ? x509.KeyUsageFlags.keyEncipherment : 0);
  const tbs = new x509.TBSCertificate({
    version: x509.Version.v3,
    serialNumber: serial.buffer.slice(serial.byteOffset, serial.byteOffset + serial.length),
    signature: issuer.algorithm,
    issuer: issuer.subject,
    validity: new x509.Validity({ notBefore: req.notBefore, notAfter: req.notAfter }),
    subject: nameOf(req.subject),
    subjectPublicKeyInfo: publicKeyInfo,
    extensions: new x509.Extensions([
      extension(x509.id_ce_basicConstraints, true, new x509.BasicConstraints({ cA: false })),
      extension(x509.id_ce_keyUsage, true, new x509.KeyUsage(usage)),
      extension(x509.id_ce_extKeyUsage, false, new x509.ExtendedKeyUsage([x509.id_kp_clientAuth])),
      extension(x509.id_ce_subjectKeyIdentifier, false, new x509.SubjectKeyIdentifier(keyId)),
      ...(issuer.keyId ? [extension(x509.id_ce_authorityKeyIdentifier, false, new x509.AuthorityKeyIdentifier({ keyIdentifier: new x509.KeyIdentifier(issuer.keyId) }))] : []),
    ]),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = nodeCrypto().sign(issuer.hash, tbsDer, { key: issuer.key, dsaEncoding: "der" });
  const cert = new x509.Certificate({ tbsCertificate: tbs, signatureAlgorithm: issuer.algorithm, signatureValue: signature.buffer.slice(signature.byteOffset, signature.byteOffset + signature.length) });
  return toPem("CERTIFICATE", AsnConvert.serialize(cert));
}

/** Whether a certificate that ends at `notAfter` is inside its renewal window at `now`. */
export function renewalDue(notAfter: string, now: Date, earlyRenewalHours: number): boolean {
  const end = Date.parse(notAfter);
  return !Number.isFinite(end) || end - now.getTime() <= earlyRenewalHours * 3_600_000;
}
