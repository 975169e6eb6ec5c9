/**
 * Devices' certificate signing requests for tests and benchmarks, made the way a device would:
 * its own key pair (kept here, as the device keeps it) and a PKCS #10 request signed with it.
 * Built with the same ASN.1 codecs the product parses with, and checked against OpenSSL's reading
 * in tests/unit/fleet-certificates.test.ts.
 */
import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { Attributes, CertificationRequest, CertificationRequestInfo } from "@peculiar/asn1-csr";
import { AsnConvert } from "@peculiar/asn1-schema";
import * as x509 from "@peculiar/asn1-x509";

export interface DeviceKey {
  readonly csrPem: string;
  /** PKCS #8 PEM: what the device keeps. */
  readonly keyPem: string;
}

export type CsrKey = "ec-p256" | "ec-p384" | "ec-secp256k1" | "rsa-1024" | "rsa-2048" | "ed25519";

/** Subject attributes in encoded order: [OID, value]. */
export type CsrSubject = readonly (readonly [string, string])[];

export const CN = "2.5.4.3";
export const O = "2.5.4.10";
export const OU = "2.5.4.11";

function keyPair(kind: CsrKey): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (kind) {
    case "ec-p256":
      return generateKeyPairSync("ec", { namedCurve: "P-256" });
    case "ec-p384":
      return generateKeyPairSync("ec", { namedCurve: "P-384" });
    case "ec-secp256k1":
      return generateKeyPairSync("ec", { namedCurve: "secp256k1" });
    case "rsa-1024":
      return generateKeyPairSync("rsa", { modulusLength: 1024 });
    case "rsa-2048":
      return generateKeyPairSync("rsa", { modulusLength: 2048 });
    case "ed25519":
      return generateKeyPairSync("ed25519");
  }
}

const pem = (label: string, der: ArrayBuffer | Buffer) =>
  `-----BEGIN ${label}-----\n${(Buffer.from(der as ArrayBuffer).toString("base64").match(/.{1,64}/g) ?? []).join("\n")}\n-----END ${label}-----\n`;

export interface CsrOptions {
  readonly key?: CsrKey;
  /** Sign with this key instead of the request's own (a forged proof of possession). */
  readonly signWith?: KeyObject;
}

/** A CSR for `subject`, with a fresh key. */
export function makeCsr(subject: CsrSubject, opts: CsrOptions = {}): DeviceKey {
  const kind = opts.key ?? "ec-p256";
  const { privateKey, publicKey } = keyPair(kind);
  const spki = publicKey.export({ type: "spki", format: "der" });
  const info = new CertificationRequestInfo({
    version: 0,
    subject: new x509.Name(
      subject.map(([type, value]) => new x509.RelativeDistinguishedName([new x509.AttributeTypeAndValue({ type, value: new x509.AttributeValue({ utf8String: value }) })])),
    ),
    subjectPKInfo: AsnConvert.parse(spki, x509.SubjectPublicKeyInfo),
    attributes: new Attributes(),
  });
  const infoDer = Buffer.from(AsnConvert.serialize(info));
  const ed = kind === "ed25519";
  const rsa = kind.startsWith("rsa");
  const signer = opts.signWith ?? privateKey;
  const signature = sign(ed ? null : kind === "ec-p384" ? "sha384" : "sha256", infoDer, ed ? signer : { key: signer, dsaEncoding: "der" });
  const algorithm = ed
    ? new x509.AlgorithmIdentifier({ algorithm: "1.3.101.112" })
    : rsa
      ? new x509.AlgorithmIdentifier({ algorithm: "1.2.840.113549.1.1.11", parameters: new Uint8Array([5, 0]).buffer })
      : new x509.AlgorithmIdentifier({ algorithm: kind === "ec-p384" ? "1.2.840.10045.4.3.3" : "1.2.840.10045.4.3.2" });
  const req = new CertificationRequest({ certificationRequestInfo: info, signatureAlgorithm: algorithm, signature: new Uint8Array(signature).buffer });
  return { csrPem: pem("CERTIFICATE REQUEST", AsnConvert.serialize(req)), keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
}

/** The CSR a fleet device sends: CN `<name>@<tenant>`, O the tenant (the subject the fleet issues). */
export function deviceCsr(name: string, tenant: string, opts: CsrOptions = {}): DeviceKey {
  return makeCsr(
    [
      [O, tenant],
      [CN, `${name}@${tenant}`],
    ],
    opts,
  );
}
