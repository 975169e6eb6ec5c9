/**
 * What @pulumi/tls (terraform-provider-tls, a Go program) would do when it creates a resource, for
 * Pulumi mocks whose newResource hook must hand back real keys and certificates.
 *
 * Why by hand, down to the DER bytes: the broker derives a client's login name from the exact
 * encoding of the certificate subject, so the subject must come out the way Go's
 * pkix.Name.ToRDNSequence + encoding/asn1 write it (attribute order C, ST, L, STREET, POSTALCODE, O,
 * OU, CN, SERIALNUMBER; all street values in one multi-valued RDN sorted as a DER SET OF;
 * PrintableString only when every character is in Go's printable set, else UTF8String). The
 * extensions follow the provider's createCertificate and Go's x509.CreateCertificate (order,
 * criticality, key identifiers, the checks that make the provider fail).
 *
 * @peculiar/x509 is not used: it needs a Reflect metadata polyfill (tsyringe) that the project
 * does not install, and its encoder would not give Go's byte layout anyway. node:crypto does the
 * key generation and signing; the small DER writer/reader below does the rest.
 *
 * Provider behaviours reproduced on purpose (they are what a real `pulumi up` does):
 * - subject fields set to "" are encoded (Go only skips empty CN and SERIALNUMBER);
 * - allowedUses take the provider's snake_case names ("digital_signature"); anything else is
 *   rejected like the provider's schema validator does, camelCase included;
 * - maxPathLength 0 means "no limit" (Go drops a zero MaxPathLen unless MaxPathLenZero is set),
 *   and a maxPathLength above 0 on a non-CA certificate fails like x509.CreateCertificate does;
 * - a LocallySignedCert re-encodes the subject parsed from the CSR, which loses emailAddress
 *   (pkix.Name keeps it only in Names, never in ExtraNames);
 * - the CA key must match the CA certificate's public key.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPair, randomBytes, sign as signBytes, type KeyObject } from "node:crypto";

// ---------------------------------------------------------------------------------------------
// Public types

export type KeyAlgorithm = "RSA" | "ECDSA" | "ED25519";
export type EcdsaCurve = "P224" | "P256" | "P384" | "P521";

/** The provider's `subject` block (SelfSignedCertSubject / CertRequestSubject). */
export interface TlsSubject {
  commonName?: string;
  organization?: string;
  organizationalUnit?: string;
  streetAddresses?: string[];
  locality?: string;
  province?: string;
  country?: string;
  postalCode?: string;
  serialNumber?: string;
  emailAddress?: string;
}

/** The computed outputs of tls.PrivateKey (plus the inputs it defaults). */
export interface PrivateKeyOutputs {
  id: string;
  algorithm: KeyAlgorithm;
  rsaBits: number;
  ecdsaCurve: string;
  privateKeyPem: string;
  privateKeyPemPkcs8: string;
  /** "" where Go's x/crypto/ssh cannot marshal the key (ECDSA P224), as the provider does. */
  privateKeyOpenssh: string;
  publicKeyPem: string;
  publicKeyOpenssh: string;
  publicKeyFingerprintMd5: string;
  publicKeyFingerprintSha256: string;
}

export interface IssueCertificateOptions {
  subject: TlsSubject;
  /** PKIX "PUBLIC KEY" PEM of the certified key. */
  publicKeyPem: string;
  /** The CA that signs, or "self" to sign with privateKeyPemForSelf. */
  issuer: { certPem: string; privateKeyPem: string } | "self";
  privateKeyPemForSelf?: string;
  notBefore: Date;
  notAfter: Date;
  allowedUses: string[];
  isCa?: boolean;
  dnsNames?: string[];
  ipAddresses?: string[];
  uris?: string[];
  /** As the provider's max_path_length: -1 (default) or 0 = no limit. */
  maxPathLength?: number;
  setSubjectKeyId?: boolean;
  /** Only meaningful for "self", as only SelfSignedCert has set_authority_key_id. */
  setAuthorityKeyId?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Provider constants (terraform-provider-tls common_cert.go / common_key.go)

const ALGORITHMS: readonly KeyAlgorithm[] = ["RSA", "ECDSA", "ED25519"];

interface CurveInfo {
  nodeName: string;
  /** x/crypto/ssh name; absent where ssh cannot marshal the key. */
  sshName?: string;
  /** Go's signingParamsForKey picks the digest by curve. */
  hash: "sha256" | "sha384" | "sha512";
  sigOid: string;
}

const CURVES: Record<EcdsaCurve, CurveInfo> = {
  P224: { nodeName: "secp224r1", hash: "sha256", sigOid: "1.2.840.10045.4.3.2" },
  P256: { nodeName: "prime256v1", sshName: "nistp256", hash: "sha256", sigOid: "1.2.840.10045.4.3.2" },
  P384: { nodeName: "secp384r1", sshName: "nistp384", hash: "sha384", sigOid: "1.2.840.10045.4.3.3" },
  P521: { nodeName: "secp521r1", sshName: "nistp521", hash: "sha512", sigOid: "1.2.840.10045.4.3.4" },
};

const isCurve = (name: string): name is EcdsaCurve => Object.prototype.hasOwnProperty.call(CURVES, name);

function curveOfKey(key: KeyObject): EcdsaCurve {
  const nodeName = key.asymmetricKeyDetails?.namedCurve;
  for (const [name, info] of Object.entries(CURVES)) {
    if (info.nodeName === nodeName && isCurve(name)) return name;
  }
  // Go's x509 parsers only know these four curves.
  throw new Error(`x509: unsupported elliptic curve ${String(nodeName)}`);
}

/** Go x509.KeyUsage bits, by the provider's allowed_uses names. */
const KEY_USAGES: Record<string, number> = {
  digital_signature: 1 << 0,
  content_commitment: 1 << 1,
  key_encipherment: 1 << 2,
  data_encipherment: 1 << 3,
  key_agreement: 1 << 4,
  cert_signing: 1 << 5,
  crl_signing: 1 << 6,
  encipher_only: 1 << 7,
  decipher_only: 1 << 8,
};

/** Go x509.ExtKeyUsage OIDs, by the provider's allowed_uses names. */
const EXT_KEY_USAGES: Record<string, string> = {
  any_extended: "2.5.29.37.0",
  server_auth: "1.3.6.1.5.5.7.3.1",
  client_auth: "1.3.6.1.5.5.7.3.2",
  code_signing: "1.3.6.1.5.5.7.3.3",
  email_protection: "1.3.6.1.5.5.7.3.4",
  ipsec_end_system: "1.3.6.1.5.5.7.3.5",
  ipsec_tunnel: "1.3.6.1.5.5.7.3.6",
  ipsec_user: "1.3.6.1.5.5.7.3.7",
  timestamping: "1.3.6.1.5.5.7.3.8",
  ocsp_signing: "1.3.6.1.5.5.7.3.9",
  microsoft_server_gated_crypto: "1.3.6.1.4.1.311.10.3.3",
  netscape_server_gated_crypto: "2.16.840.1.113730.4.1",
  microsoft_commercial_code_signing: "1.3.6.1.4.1.311.2.1.22",
  microsoft_kernel_code_signing: "1.3.6.1.4.1.311.61.1.1",
};

const SUPPORTED_USES = [...Object.keys(KEY_USAGES), ...Object.keys(EXT_KEY_USAGES)].sort();

const OID = {
  commonName: "2.5.4.3",
  serialNumber: "2.5.4.5",
  country: "2.5.4.6",
  locality: "2.5.4.7",
  province: "2.5.4.8",
  streetAddress: "2.5.4.9",
  organization: "2.5.4.10",
  organizationalUnit: "2.5.4.11",
  postalCode: "2.5.4.17",
  emailAddress: "1.2.840.113549.1.9.1",
  extensionRequest: "1.2.840.113549.1.9.14",
  subjectKeyId: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyId: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  sha256WithRSA: "1.2.840.113549.1.1.11",
  ed25519: "1.3.101.112",
} as const;

// ---------------------------------------------------------------------------------------------
// DER writer, with Go's encoding/asn1 choices

const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  NUMERIC_STRING: 0x12,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function tlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  let header: number[];
  if (n < 0x80) {
    header = [tag, n];
  } else {
    const len: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) len.unshift(v & 0xff);
    header = [tag, 0x80 | len.length, ...len];
  }
  return Buffer.concat([Buffer.from(header), content]);
}

const seq = (...parts: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, Buffer.concat(parts));

/** DER SET OF: elements in ascending byte order, as Go's setEncoder sorts them. */
const setOf = (parts: Buffer[]): Buffer => tlv(TAG.SET, Buffer.concat([...parts].sort((a, b) => Buffer.compare(a, b))));

const derNull = (): Buffer => Buffer.from([TAG.NULL, 0]);
const derBool = (value: boolean): Buffer => tlv(TAG.BOOLEAN, Buffer.from([value ? 0xff : 0]));
const derOctets = (bytes: Uint8Array): Buffer => tlv(TAG.OCTET_STRING, bytes);
const derBitString = (bytes: Uint8Array, unusedBits = 0): Buffer =>
  tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), bytes]));
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);

function derOid(oid: string): Buffer {
  const arcs = oid.split(".").map((a) => BigInt(a));
  const [a0, a1, ...rest] = arcs;
  if (a0 === undefined || a1 === undefined) throw new Error(`invalid object identifier ${oid}`);
  const out: number[] = [];
  for (const arc of [a0 * 40n + a1, ...rest]) {
    const bytes = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) bytes.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...bytes);
  }
  return tlv(TAG.OID, Buffer.from(out));
}

/** A non-negative INTEGER from big-endian magnitude bytes. */
function derUnsigned(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  let body = Buffer.from(magnitude.subarray(start));
  if (body.length === 0) body = Buffer.from([0]);
  if ((body[0] ?? 0) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return tlv(TAG.INTEGER, body);
}

function derSmallInt(n: number): Buffer {
  const hex = n.toString(16);
  return derUnsigned(Buffer.from(hex.length % 2 ? `0${hex}` : hex, "hex"));
}

/**
 * Go's encoding/asn1 PrintableString set for marshalling (isPrintable with rejectAsterisk and
 * rejectAmpersand): '*' and '&' force a UTF8String.
 */
function isGoPrintable(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) || // 0-9
    (c >= 0x27 && c <= 0x29) || // ' ( )
    (c >= 0x2b && c <= 0x2f) || // + , - . /
    c === 0x20 ||
    c === 0x3a ||
    c === 0x3d ||
    c === 0x3f
  );
}

/** A Go string in an AttributeTypeAndValue: PrintableString when possible, else UTF8String. */
function goString(value: string): Buffer {
  const bytes = Buffer.from(value, "utf8");
  const printable = [...bytes].every(isGoPrintable);
  return tlv(printable ? TAG.PRINTABLE_STRING : TAG.UTF8_STRING, bytes);
}

/** UTCTime for 1950..2049, GeneralizedTime otherwise, whole seconds, always UTC (Go's rules). */
function derTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  const two = (n: number) => String(n).padStart(2, "0");
  const rest = `${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`;
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(`${two(year % 100)}${rest}`, "ascii"));
  if (year < 0 || year > 9999) throw new Error("asn1: cannot represent time as GeneralizedTime");
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${String(year).padStart(4, "0")}${rest}`, "ascii"));
}

// ---------------------------------------------------------------------------------------------
// DER reader (enough for certificates, CSRs and keys)

interface DerNode {
  tag: number;
  /** The whole TLV. */
  raw: Buffer;
  content: Buffer;
}

function derRead(buf: Buffer, pos = 0): DerNode {
  const tag = buf[pos];
  let len = buf[pos + 1];
  if (tag === undefined || len === undefined) throw new Error("asn1: truncated DER");
  if ((tag & 0x1f) === 0x1f) throw new Error("asn1: high tag numbers are not supported");
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error("asn1: unsupported length encoding");
    len = 0;
    for (let i = 0; i < n; i++) {
      const b = buf[pos + 2 + i];
      if (b === undefined) throw new Error("asn1: truncated DER");
      len = len * 256 + b;
    }
    header += n;
  }
  const end = pos + header + len;
  if (end > buf.length) throw new Error("asn1: truncated DER");
  return { tag, raw: buf.subarray(pos, end), content: buf.subarray(pos + header, end) };
}

function derParse(buf: Buffer, expectedTag?: number): DerNode {
  const node = derRead(buf);
  if (node.raw.length !== buf.length) throw new Error("asn1: trailing data after DER value");
  if (expectedTag !== undefined && node.tag !== expectedTag) {
    throw new Error(`asn1: expected tag 0x${expectedTag.toString(16)}, got 0x${node.tag.toString(16)}`);
  }
  return node;
}

function derChildren(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  for (let pos = 0; pos < node.content.length; ) {
    const child = derRead(node.content, pos);
    out.push(child);
    pos += child.raw.length;
  }
  return out;
}

function child(nodes: DerNode[], index: number, what: string): DerNode {
  const node = nodes[index];
  if (!node) throw new Error(`asn1: missing ${what}`);
  return node;
}

function oidToString(content: Buffer): string {
  const arcs: bigint[] = [];
  let value = 0n;
  for (const b of content) {
    value = (value << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      if (arcs.length === 0) {
        const first = value < 80n ? value / 40n : 2n;
        arcs.push(first, value - first * 40n);
      } else {
        arcs.push(value);
      }
      value = 0n;
    }
  }
  return arcs.join(".");
}

/** Contents of a BIT STRING without its unused-bits octet. */
const bitStringBytes = (node: DerNode): Buffer => node.content.subarray(1);

// ---------------------------------------------------------------------------------------------
// PEM

interface PemBlock {
  type: string;
  der: Buffer;
}

/** Like Go's pem.Decode: the first block, whatever precedes it. */
function pemDecode(text: string): PemBlock | undefined {
  const m = /-----BEGIN ([^-\r\n]+)-----\r?\n([\s\S]*?)\r?\n?-----END \1-----/.exec(text);
  if (!m || m[1] === undefined || m[2] === undefined) return undefined;
  let lines = m[2].split(/\r?\n/);
  // Skip RFC 1421 headers (Proc-Type: ...) up to the blank line, as pem.Decode does.
  if (lines[0]?.includes(":")) {
    const blank = lines.findIndex((line) => line.trim() === "");
    lines = blank >= 0 ? lines.slice(blank + 1) : [];
  }
  return { type: m[1], der: Buffer.from(lines.join("").replace(/\s+/g, ""), "base64") };
}

/** Like Go's pem.EncodeToMemory: 64-character lines and a trailing newline. */
function pemEncode(type: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join("\n")}${lines.length ? "\n" : ""}-----END ${type}-----\n`;
}

// ---------------------------------------------------------------------------------------------
// Small Go look-alikes

const ASCII_SPACE = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20]);
const UNICODE_SPACE = new Set([0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000]);

/** UTF-8 length of the code point starting with this lead byte, or 0 if it is no lead byte. */
const utf8Length = (b: number): number => (b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0);

function decodeRune(bytes: Buffer): number | undefined {
  try {
    const s = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    const cp = s.codePointAt(0);
    return cp !== undefined && s.length === (cp > 0xffff ? 2 : 1) ? cp : undefined;
  } catch {
    return undefined;
  }
}

/** Go's strings.TrimSpace on a byte string (hashForState trims before hashing). */
function goTrimSpace(bytes: Buffer): Buffer {
  let start = 0;
  let end = bytes.length;
  while (start < end) {
    const b = bytes[start] ?? 0;
    if (ASCII_SPACE.has(b)) {
      start++;
      continue;
    }
    const n = utf8Length(b);
    const cp = n > 1 && start + n <= end ? decodeRune(bytes.subarray(start, start + n)) : undefined;
    if (cp !== undefined && UNICODE_SPACE.has(cp)) start += n;
    else break;
  }
  while (end > start) {
    const b = bytes[end - 1] ?? 0;
    if (ASCII_SPACE.has(b)) {
      end--;
      continue;
    }
    let lead = end - 1;
    while (lead > start && lead > end - 4 && ((bytes[lead] ?? 0) & 0xc0) === 0x80) lead--;
    const cp = end - lead > 1 ? decodeRune(bytes.subarray(lead, end)) : undefined;
    if (cp !== undefined && UNICODE_SPACE.has(cp)) end = lead;
    else break;
  }
  return bytes.subarray(start, end);
}

/** The provider's hashForState: hex SHA-1 of the trimmed value, "" for "". */
function hashForState(bytes: Buffer): string {
  if (bytes.length === 0) return "";
  return createHash("sha1").update(goTrimSpace(bytes)).digest("hex");
}

/** Go's time.Time.MarshalText (RFC 3339 with nanoseconds, trailing zeros trimmed), in UTC. */
function rfc3339(date: Date): string {
  const iso = date.toISOString(); // 2006-01-02T15:04:05.000Z
  return iso.replace(/\.(\d+)Z$/, (_m, frac: string) => {
    const trimmed = frac.replace(/0+$/, "");
    return trimmed ? `.${trimmed}Z` : "Z";
  });
}

function parseIPv4(s: string): number[] | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    // Go's net.ParseIP rejects leading zeros since Go 1.17.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

/** Go's net.ParseIP: 16 bytes (IPv4 as v4-mapped) or undefined. No zones. */
function parseIp(s: string): Buffer | undefined {
  const v4 = parseIPv4(s);
  if (v4) return Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4]);
  if (!s.includes(":")) return undefined;
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (part: string | undefined, allowV4: boolean): number[] | undefined => {
    if (!part) return [];
    const out: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i] ?? "";
      if (allowV4 && i === items.length - 1 && item.includes(".")) {
        const tail = parseIPv4(item);
        if (!tail) return undefined;
        out.push(((tail[0] ?? 0) << 8) | (tail[1] ?? 0), ((tail[2] ?? 0) << 8) | (tail[3] ?? 0));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(item)) {
        out.push(parseInt(item, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1], true) : [];
  if (!head || !tail) return undefined;
  let all: number[];
  if (halves.length === 1) {
    if (head.length !== 8) return undefined;
    all = head;
  } else {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  }
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** Go's net.IP.To4 as marshalSANs uses it: IPv4 (and v4-mapped IPv6) in 4 bytes. */
function to4(ip: Buffer): Buffer | undefined {
  if (ip.length === 4) return ip;
  if (ip.length === 16 && ip.subarray(0, 10).every((b) => b === 0) && ip[10] === 0xff && ip[11] === 0xff) return ip.subarray(12);
  return undefined;
}


function isIA5(value: string, what: string): void {
  if ([...value].some((c) => (c.codePointAt(0) ?? 0) > 0x7f)) throw new Error(`x509: ${JSON.stringify(value)} cannot be encoded as an IA5String (${what})`);
}

/**
 * What url.Parse(...).String() gives back for the usual absolute URIs: scheme lower-cased,
 * non-ASCII percent-encoded. (Go normalises more exotic forms further; not needed here.)
 */
function goUriString(uri: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri);
  const normalised = m && m[1] !== undefined ? m[1].toLowerCase() + uri.slice(m[1].length) : uri;
  return [...normalised].map((c) => ((c.codePointAt(0) ?? 0) > 0x7f ? encodeURIComponent(c) : c)).join("");
}

// ---------------------------------------------------------------------------------------------
// Keys

interface ParsedPrivateKey {
  key: KeyObject;
  algorithm: KeyAlgorithm;
}

const PEM_PRIVATE_KEY_TYPES: Record<string, "pkcs1" | "sec1" | "pkcs8"> = {
  "RSA PRIVATE KEY": "pkcs1",
  "EC PRIVATE KEY": "sec1",
  "PRIVATE KEY": "pkcs8",
};

/** The provider's parsePrivateKeyPEM: PKCS#1 RSA, SEC1 EC or PKCS#8, by PEM preamble. */
function parsePrivateKeyPem(pem: string): ParsedPrivateKey {
  const block = pemDecode(pem);
  if (!block) throw new Error(`failed to decode PEM block: decoded bytes 0, undecoded ${Buffer.byteLength(pem)}`);
  const type = PEM_PRIVATE_KEY_TYPES[block.type];
  if (!type) throw new Error(`unable to determine parser for PEM preamble: ${block.type}`);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: block.der, format: "der", type });
  } catch (err) {
    throw new Error(`failed to parse private key given PEM preamble '${block.type}': ${(err as Error).message}`);
  }
  return { key, algorithm: algorithmOf(key) };
}

/** The provider's privateKeyToAlgorithm (Go's x509 only parses these key types). */
function algorithmOf(key: KeyObject): KeyAlgorithm {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return "RSA";
    case "ec":
      curveOfKey(key);
      return "ECDSA";
    case "ed25519":
      return "ED25519";
    default:
      throw new Error(`unsupported private key type: ${String(key.asymmetricKeyType)}`);
  }
}

const spkiOf = (key: KeyObject): Buffer => (key.type === "public" ? key : createPublicKey(key)).export({ format: "der", type: "spki" });

function publicKeyFromPem(pem: string): KeyObject {
  const block = pemDecode(pem);
  if (!block || block.type !== "PUBLIC KEY") throw new Error(`expected a "PUBLIC KEY" PEM block`);
  const key = createPublicKey({ key: block.der, format: "der", type: "spki" });
  algorithmOf(key);
  return key;
}

/** subjectPublicKey bits of a SubjectPublicKeyInfo. */
function spkiKeyBits(spki: Buffer): Buffer {
  const fields = derChildren(derParse(spki, TAG.SEQUENCE));
  return bitStringBytes(child(fields, 1, "subjectPublicKey"));
}

/**
 * The provider's generateSubjectKeyID: SHA-1 over asn1.Marshal(*rsa.PublicKey) (= PKCS#1),
 * elliptic.Marshal (= the uncompressed point), or asn1.Marshal(ed25519.PublicKey), which for a Go
 * []byte is an OCTET STRING around the 32 raw bytes.
 */
function subjectKeyIdOf(publicKey: KeyObject): Buffer {
  const bits = spkiKeyBits(spkiOf(publicKey));
  const input = publicKey.asymmetricKeyType === "ed25519" ? derOctets(bits) : bits;
  return createHash("sha1").update(input).digest();
}

function signingParams(signer: KeyObject): { hash: string | null; algorithmIdentifier: Buffer } {
  switch (algorithmOf(signer)) {
    case "RSA":
      return { hash: "sha256", algorithmIdentifier: seq(derOid(OID.sha256WithRSA), derNull()) };
    case "ECDSA": {
      const curve = CURVES[curveOfKey(signer)];
      return { hash: curve.hash, algorithmIdentifier: seq(derOid(curve.sigOid)) };
    }
    case "ED25519":
      return { hash: null, algorithmIdentifier: seq(derOid(OID.ed25519)) };
  }
}

function generateKeyObject(algorithm: KeyAlgorithm, rsaBits: number, curve: EcdsaCurve): Promise<KeyObject> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, _publicKey: KeyObject, privateKey: KeyObject) => (err ? reject(err) : resolve(privateKey));
    if (algorithm === "RSA") generateKeyPair("rsa", { modulusLength: rsaBits, publicExponent: 65537 }, done);
    else if (algorithm === "ECDSA") generateKeyPair("ec", { namedCurve: CURVES[curve].nodeName }, done);
    else generateKeyPair("ed25519", {}, done);
  });
}

// --- OpenSSH encodings (x/crypto/ssh MarshalAuthorizedKey, Fingerprint*, MarshalPrivateKey)

function sshUint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
const sshString = (bytes: Uint8Array): Buffer => Buffer.concat([sshUint32(bytes.length), bytes]);
function sshMpint(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length && magnitude[start] === 0) start++;
  let body = Buffer.from(magnitude.subarray(start));
  if (body.length > 0 && (body[0] ?? 0) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return sshString(body);
}

interface SshKey {
  type: string;
  blob: Buffer;
}

/** The ssh wire-format public key, or undefined where x/crypto/ssh has none (ECDSA P224). */
function sshPublicKey(key: KeyObject): SshKey | undefined {
  const bits = spkiKeyBits(spkiOf(key));
  switch (algorithmOf(key)) {
    case "RSA": {
      const [n, e] = derChildren(derParse(bits, TAG.SEQUENCE));
      if (!n || !e) throw new Error("malformed RSA public key");
      return { type: "ssh-rsa", blob: Buffer.concat([sshString(Buffer.from("ssh-rsa")), sshMpint(e.content), sshMpint(n.content)]) };
    }
    case "ECDSA": {
      const sshName = CURVES[curveOfKey(key)].sshName;
      if (!sshName) return undefined;
      const type = `ecdsa-sha2-${sshName}`;
      return { type, blob: Buffer.concat([sshString(Buffer.from(type)), sshString(Buffer.from(sshName)), sshString(bits)]) };
    }
    case "ED25519":
      return { type: "ssh-ed25519", blob: Buffer.concat([sshString(Buffer.from("ssh-ed25519")), sshString(bits)]) };
  }
}

function opensshPrivateKeyPem(key: KeyObject, pub: SshKey): string {
  let fields: Buffer;
  switch (algorithmOf(key)) {
    case "RSA": {
      // RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dp, dq, qInv }
      const der = key.export({ format: "der", type: "pkcs1" });
      const [, n, e, d, p, q, , , qInv] = derChildren(derParse(der, TAG.SEQUENCE)).map((x) => x.content);
      if (!n || !e || !d || !p || !q || !qInv) throw new Error("malformed RSA private key");
      fields = Buffer.concat([sshMpint(n), sshMpint(e), sshMpint(d), sshMpint(qInv), sshMpint(p), sshMpint(q)]);
      break;
    }
    case "ECDSA": {
      // ECPrivateKey ::= SEQUENCE { version, privateKey OCTET STRING, [0] params, [1] publicKey }
      const der = key.export({ format: "der", type: "sec1" });
      const d = child(derChildren(derParse(der, TAG.SEQUENCE)), 1, "EC private key").content;
      const sshName = CURVES[curveOfKey(key)].sshName ?? "";
      fields = Buffer.concat([sshString(Buffer.from(sshName)), sshString(spkiKeyBits(spkiOf(key))), sshMpint(d)]);
      break;
    }
    case "ED25519": {
      // PKCS#8: SEQUENCE { version, algorithm, privateKey OCTET STRING { OCTET STRING seed } }
      const der = key.export({ format: "der", type: "pkcs8" });
      const seed = derParse(child(derChildren(derParse(der, TAG.SEQUENCE)), 2, "Ed25519 private key").content, TAG.OCTET_STRING).content;
      const raw = spkiKeyBits(spkiOf(key));
      fields = Buffer.concat([sshString(raw), sshString(Buffer.concat([seed, raw]))]);
      break;
    }
  }
  const check = randomBytes(4);
  let block = Buffer.concat([check, check, sshString(Buffer.from(pub.type)), fields, sshString(Buffer.alloc(0))]);
  const padding: number[] = [];
  for (let i = 0; (block.length + i) % 8 !== 0; i++) padding.push(i + 1);
  block = Buffer.concat([block, Buffer.from(padding)]);
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0", "latin1"),
    sshString(Buffer.from("none")),
    sshString(Buffer.from("none")),
    sshString(Buffer.alloc(0)),
    sshUint32(1),
    sshString(pub.blob),
    sshString(block),
  ]);
  return pemEncode("OPENSSH PRIVATE KEY", body);
}

/** The PrivateKey outputs for an existing key (setPublicKeyAttributes and the Create PEMs). */
function privateKeyOutputs(key: KeyObject, rsaBits: number, ecdsaCurve: string): PrivateKeyOutputs {
  const algorithm = algorithmOf(key);
  const pemType = algorithm === "RSA" ? "pkcs1" : algorithm === "ECDSA" ? "sec1" : "pkcs8";
  const spki = spkiOf(key);
  const ssh = sshPublicKey(key);
  return {
    id: hashForState(spki),
    algorithm,
    rsaBits,
    ecdsaCurve,
    privateKeyPem: pemEncode(pemType === "pkcs1" ? "RSA PRIVATE KEY" : pemType === "sec1" ? "EC PRIVATE KEY" : "PRIVATE KEY", key.export({ format: "der", type: pemType })),
    privateKeyPemPkcs8: pemEncode("PRIVATE KEY", key.export({ format: "der", type: "pkcs8" })),
    privateKeyOpenssh: ssh ? opensshPrivateKeyPem(key, ssh) : "",
    publicKeyPem: pemEncode("PUBLIC KEY", spki),
    publicKeyOpenssh: ssh ? `${ssh.type} ${ssh.blob.toString("base64")}\n` : "",
    publicKeyFingerprintMd5: ssh ? (createHash("md5").update(ssh.blob).digest("hex").match(/../g) ?? []).join(":") : "",
    publicKeyFingerprintSha256: ssh ? `SHA256:${createHash("sha256").update(ssh.blob).digest("base64").replace(/=+$/, "")}` : "",
  };
}

/**
 * A new key as tls.PrivateKey makes it. rsaBits defaults to 2048 and ecdsaCurve to P224, as in
 * the provider schema (both are echoed whatever the algorithm).
 */
export async function generatePrivateKey(algorithm: string, rsaBits = 2048, ecdsaCurve = "P224"): Promise<PrivateKeyOutputs> {
  if (!(ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new Error(`Invalid Attribute Value Match: Attribute algorithm value must be one of: ${JSON.stringify(ALGORITHMS)}, got: ${JSON.stringify(algorithm)}`);
  }
  if (!isCurve(ecdsaCurve)) {
    throw new Error(`Invalid Attribute Value Match: Attribute ecdsa_curve value must be one of: ${JSON.stringify(Object.keys(CURVES))}, got: ${JSON.stringify(ecdsaCurve)}`);
  }
  if (!Number.isInteger(rsaBits) || rsaBits < 512) throw new Error(`Unable to generate Key from configuration: crypto/rsa: invalid rsa_bits ${rsaBits}`);
  const key = await generateKeyObject(algorithm as KeyAlgorithm, rsaBits, ecdsaCurve);
  return privateKeyOutputs(key, rsaBits, ecdsaCurve);
}

// ---------------------------------------------------------------------------------------------
// Names (pkix.Name as the provider fills it, ToRDNSequence, FillFromRDNSequence)

interface GoName {
  country?: string[];
  province?: string[];
  locality?: string[];
  streetAddress?: string[];
  postalCode?: string[];
  organization?: string[];
  organizationalUnit?: string[];
  commonName: string;
  serialNumber: string;
  /** Encoded AttributeTypeAndValue, each its own RDN at the end. */
  extraNames: Buffer[];
  /** Attributes read when parsed (pkix.Name.Names); only used for the "empty subject" check. */
  parsedNames: number;
}

const emptyName = (): GoName => ({ commonName: "", serialNumber: "", extraNames: [], parsedNames: 0 });

/** cmp.Equal(name, pkix.Name{}): an explicitly empty list still counts as "set". */
const isZeroName = (n: GoName): boolean =>
  [n.country, n.province, n.locality, n.streetAddress, n.postalCode, n.organization, n.organizationalUnit].every((v) => v === undefined) &&
  n.commonName === "" &&
  n.serialNumber === "" &&
  n.extraNames.length === 0 &&
  n.parsedNames === 0;

/** The provider's createSubjectDistinguishedNames: every non-null field, empty strings included. */
function nameFromSubject(subject: TlsSubject | undefined): GoName {
  const name = emptyName();
  if (!subject) return name;
  const one = (v: string | undefined) => (v === undefined ? undefined : [v]);
  if (subject.commonName !== undefined) name.commonName = subject.commonName;
  name.organization = one(subject.organization);
  name.organizationalUnit = one(subject.organizationalUnit);
  if (subject.streetAddresses !== undefined) name.streetAddress = [...subject.streetAddresses];
  name.locality = one(subject.locality);
  name.province = one(subject.province);
  name.country = one(subject.country);
  name.postalCode = one(subject.postalCode);
  if (subject.serialNumber !== undefined) name.serialNumber = subject.serialNumber;
  if (subject.emailAddress !== undefined) {
    // asn1.RawValue{Tag: TagIA5String, Bytes: []byte(email)}: raw bytes, no character check.
    name.extraNames.push(seq(derOid(OID.emailAddress), tlv(TAG.IA5_STRING, Buffer.from(subject.emailAddress, "utf8"))));
  }
  return name;
}

/** asn1.Marshal(name.ToRDNSequence()). */
function marshalName(name: GoName): Buffer {
  const rdns: Buffer[] = [];
  const append = (values: string[] | undefined, oid: string) => {
    if (!values || values.length === 0) return;
    rdns.push(setOf(values.map((v) => seq(derOid(oid), goString(v)))));
  };
  append(name.country, OID.country);
  append(name.province, OID.province);
  append(name.locality, OID.locality);
  append(name.streetAddress, OID.streetAddress);
  append(name.postalCode, OID.postalCode);
  append(name.organization, OID.organization);
  append(name.organizationalUnit, OID.organizationalUnit);
  if (name.commonName.length > 0) append([name.commonName], OID.commonName);
  if (name.serialNumber.length > 0) append([name.serialNumber], OID.serialNumber);
  for (const atv of name.extraNames) rdns.push(setOf([atv]));
  return seq(...rdns);
}

/** Go's parseASN1String for the string types it knows; undefined for anything else. */
function attributeString(node: DerNode): string | undefined {
  switch (node.tag) {
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case TAG.NUMERIC_STRING:
    case TAG.UTF8_STRING:
      return node.content.toString("utf8");
    case TAG.T61_STRING:
      return node.content.toString("latin1");
    case TAG.BMP_STRING: {
      const bytes = Buffer.from(node.content);
      const trimmed = bytes.length >= 2 && bytes[bytes.length - 1] === 0 && bytes[bytes.length - 2] === 0 ? bytes.subarray(0, -2) : bytes;
      return Buffer.from(trimmed).swap16().toString("utf16le");
    }
    default:
      return undefined;
  }
}

/** pkix.Name.FillFromRDNSequence: known attributes into fields, the rest only counted. */
function parseName(der: Buffer): GoName {
  const name = emptyName();
  const push = (key: "country" | "province" | "locality" | "streetAddress" | "postalCode" | "organization" | "organizationalUnit", v: string) => {
    (name[key] ??= []).push(v);
  };
  for (const rdn of derChildren(derParse(der, TAG.SEQUENCE))) {
    for (const atv of derChildren(rdn)) {
      name.parsedNames++;
      const [type, value] = derChildren(atv);
      if (!type || !value) throw new Error("x509: invalid RDNSequence: invalid attribute");
      const text = attributeString(value);
      if (text === undefined) continue;
      switch (oidToString(type.content)) {
        case OID.commonName:
          name.commonName = text;
          break;
        case OID.serialNumber:
          name.serialNumber = text;
          break;
        case OID.country:
          push("country", text);
          break;
        case OID.locality:
          push("locality", text);
          break;
        case OID.province:
          push("province", text);
          break;
        case OID.streetAddress:
          push("streetAddress", text);
          break;
        case OID.organization:
          push("organization", text);
          break;
        case OID.organizationalUnit:
          push("organizationalUnit", text);
          break;
        case OID.postalCode:
          push("postalCode", text);
          break;
      }
    }
  }
  return name;
}

// ---------------------------------------------------------------------------------------------
// Certificates, CSRs

interface SubjectAltNames {
  dnsNames: string[];
  /** 16-byte (net.ParseIP) or 4/16-byte (parsed from a CSR) addresses. */
  ipAddresses: Buffer[];
  uris: string[];
}

/** Go's marshalSANs (no e-mail SANs: the provider never sets them). */
function marshalSans(sans: SubjectAltNames): Buffer {
  const names: Buffer[] = [];
  for (const dns of sans.dnsNames) {
    isIA5(dns, "DNS name");
    names.push(tlv(0x82, Buffer.from(dns, "ascii")));
  }
  for (const ip of sans.ipAddresses) names.push(tlv(0x87, to4(ip) ?? ip));
  for (const uri of sans.uris) {
    const text = goUriString(uri);
    isIA5(text, "URI");
    names.push(tlv(0x86, Buffer.from(text, "ascii")));
  }
  return seq(...names);
}

const extension = (oid: string, critical: boolean, value: Buffer): Buffer =>
  seq(derOid(oid), ...(critical ? [derBool(true)] : []), derOctets(value));

/** Go's marshalKeyUsage: bits reversed per byte, trailing zero bits not counted. */
function marshalKeyUsage(usage: number): Buffer {
  const reverse = (b: number) => {
    let r = 0;
    for (let i = 0; i < 8; i++) r |= ((b >> i) & 1) << (7 - i);
    return r;
  };
  const low = reverse(usage & 0xff);
  const high = reverse((usage >> 8) & 0xff);
  const bytes = high !== 0 ? [low, high] : [low];
  // asn1BitLength: the bit string ends at its last set bit; the rest of that octet is padding.
  const last = bytes[bytes.length - 1] ?? 0;
  let unused = 0;
  while (last !== 0 && !((last >> unused) & 1)) unused++;
  return derBitString(Buffer.from(bytes), unused);
}

interface CertTemplate {
  name: GoName;
  publicKey: KeyObject;
  sans: SubjectAltNames;
  notBefore: Date;
  notAfter: Date;
  allowedUses: string[];
  isCa: boolean;
  /** The provider's max_path_length; only values >= 0 reach the template. */
  maxPathLength: number;
  setSubjectKeyId: boolean;
  /** undefined where the resource has no set_authority_key_id (LocallySignedCert). */
  setAuthorityKeyId?: boolean;
}

interface Parent {
  /** Raw subject of the CA certificate; undefined for self-signed (parent == template). */
  rawSubject?: Buffer;
  subjectKeyId?: Buffer;
  publicKey?: KeyObject;
}

interface CreatedCertificate {
  id: string;
  certPem: string;
  validityStartTime: string;
  validityEndTime: string;
}

/** The provider's createCertificate followed by Go's x509.CreateCertificate. */
function createCertificate(template: CertTemplate, parent: Parent | "self", signer: KeyObject): CreatedCertificate {
  // Serial: rand.Int(rand.Reader, 2^128).
  const serial = randomBytes(16);

  let keyUsage = 0;
  const extKeyUsage: string[] = [];
  for (const use of template.allowedUses) {
    const ku = KEY_USAGES[use];
    if (ku !== undefined) keyUsage |= ku;
    const eku = EXT_KEY_USAGES[use];
    if (eku !== undefined) extKeyUsage.push(eku);
  }

  let subjectKeyId: Buffer | undefined;
  if (template.isCa) {
    // RFC 5280 4.1.2.6: a CA needs a subject.
    if (isZeroName(template.name)) {
      throw new Error("Invalid Certificate Subject: Must contain at least one Distinguished Name when creating Certificate Authority (CA)");
    }
    subjectKeyId = subjectKeyIdOf(template.publicKey);
  }
  const maxPathLen = template.maxPathLength >= 0 ? template.maxPathLength : 0;
  if (template.setSubjectKeyId) subjectKeyId = subjectKeyIdOf(template.publicKey);

  const parentSubjectKeyId = parent === "self" ? subjectKeyId : parent.subjectKeyId;
  let authorityKeyId: Buffer | undefined;
  if (template.setAuthorityKeyId) {
    if (!parentSubjectKeyId || parentSubjectKeyId.length === 0) {
      throw new Error("Invalid Certificate Authority: Could not determine Authority Key Identifier");
    }
    authorityKeyId = parentSubjectKeyId;
  }

  // --- x509.CreateCertificate
  if (!template.isCa && maxPathLen !== -1 && maxPathLen !== 0) {
    throw new Error("Failed to create certificate: x509: only CAs are allowed to specify MaxPathLen");
  }
  if (parent !== "self" && parent.publicKey && !spkiOf(signer).equals(spkiOf(parent.publicKey))) {
    throw new Error("Failed to create certificate: x509: provided PrivateKey doesn't match parent's PublicKey");
  }
  const { hash, algorithmIdentifier } = signingParams(signer);
  const subject = marshalName(template.name);
  const issuer = parent === "self" ? subject : (parent.rawSubject ?? subject);
  if (!issuer.equals(subject) && parentSubjectKeyId && parentSubjectKeyId.length > 0) authorityKeyId = parentSubjectKeyId;

  const extensions: Buffer[] = [];
  if (keyUsage !== 0) extensions.push(extension(OID.keyUsage, true, marshalKeyUsage(keyUsage)));
  if (extKeyUsage.length > 0) extensions.push(extension(OID.extKeyUsage, false, seq(...extKeyUsage.map(derOid))));
  // BasicConstraintsValid is always true in the provider's templates; Go marks it critical.
  const pathLen = maxPathLen === 0 ? -1 : maxPathLen;
  extensions.push(
    extension(OID.basicConstraints, true, seq(...(template.isCa ? [derBool(true)] : []), ...(pathLen !== -1 ? [derSmallInt(pathLen)] : []))),
  );
  if (subjectKeyId) extensions.push(extension(OID.subjectKeyId, false, derOctets(subjectKeyId)));
  if (authorityKeyId) extensions.push(extension(OID.authorityKeyId, false, seq(tlv(0x80, authorityKeyId))));
  const { dnsNames, ipAddresses, uris } = template.sans;
  if (dnsNames.length + ipAddresses.length + uris.length > 0) {
    // RFC 5280 4.2.1.6: critical when the subject is empty.
    const subjectIsEmpty = subject.equals(Buffer.from([0x30, 0x00]));
    extensions.push(extension(OID.subjectAltName, subjectIsEmpty, marshalSans(template.sans)));
  }

  const tbs = seq(
    explicit(0, derSmallInt(2)),
    derUnsigned(serial),
    algorithmIdentifier,
    issuer,
    seq(derTime(template.notBefore), derTime(template.notAfter)),
    subject,
    spkiOf(template.publicKey),
    explicit(3, seq(...extensions)),
  );
  const signature = signBytes(hash, tbs, signer);
  const der = seq(tbs, algorithmIdentifier, derBitString(signature));
  return {
    id: BigInt(`0x${serial.toString("hex")}`).toString(10),
    certPem: pemEncode("CERTIFICATE", der),
    validityStartTime: rfc3339(template.notBefore),
    validityEndTime: rfc3339(template.notAfter),
  };
}

interface ParsedCertificate {
  rawSubject: Buffer;
  publicKey: KeyObject;
  subjectKeyId?: Buffer;
}

/** The bits of x509.ParseCertificate the provider's signing uses. */
function parseCertificatePem(pem: string): ParsedCertificate {
  const block = pemDecode(pem);
  if (!block) throw new Error(`failed to decode PEM of expected type "CERTIFICATE" from bytes`);
  if (block.type !== "CERTIFICATE") throw new Error(`invalid PEM type - expected "CERTIFICATE", got ${JSON.stringify(block.type)}`);
  const tbs = child(derChildren(derParse(block.der, TAG.SEQUENCE)), 0, "tbsCertificate");
  const fields = derChildren(tbs);
  const base = fields[0]?.tag === 0xa0 ? 1 : 0;
  const rawSubject = child(fields, base + 4, "subject").raw;
  const spki = child(fields, base + 5, "subjectPublicKeyInfo").raw;
  let subjectKeyId: Buffer | undefined;
  const extensions = fields.find((f) => f.tag === 0xa3);
  if (extensions) {
    for (const ext of derChildren(child(derChildren(extensions), 0, "extensions"))) {
      const parts = derChildren(ext);
      if (oidToString(child(parts, 0, "extension id").content) !== OID.subjectKeyId) continue;
      const value = child(parts, parts.length - 1, "extension value");
      subjectKeyId = derParse(value.content, TAG.OCTET_STRING).content;
    }
  }
  return { rawSubject, publicKey: createPublicKey({ key: spki, format: "der", type: "spki" }), subjectKeyId };
}

interface ParsedCsr {
  name: GoName;
  publicKey: KeyObject;
  sans: SubjectAltNames;
}

/** The bits of x509.ParseCertificateRequest the provider's LocallySignedCert uses. */
function parseCsrPem(pem: string): ParsedCsr {
  const block = pemDecode(pem);
  if (!block) throw new Error(`failed to decode PEM of expected type "CERTIFICATE REQUEST" from bytes`);
  if (block.type !== "CERTIFICATE REQUEST") throw new Error(`invalid PEM type - expected "CERTIFICATE REQUEST", got ${JSON.stringify(block.type)}`);
  const info = child(derChildren(derParse(block.der, TAG.SEQUENCE)), 0, "certificationRequestInfo");
  const fields = derChildren(info);
  const name = parseName(child(fields, 1, "subject").raw);
  const publicKey = createPublicKey({ key: child(fields, 2, "subjectPKInfo").raw, format: "der", type: "spki" });
  algorithmOf(publicKey);
  const sans: SubjectAltNames = { dnsNames: [], ipAddresses: [], uris: [] };
  const attributes = fields[3];
  for (const attribute of attributes ? derChildren(attributes) : []) {
    const [type, values] = derChildren(attribute);
    if (!type || !values || oidToString(type.content) !== OID.extensionRequest) continue;
    for (const exts of derChildren(values)) {
      for (const ext of derChildren(exts)) {
        const parts = derChildren(ext);
        if (oidToString(child(parts, 0, "extension id").content) !== OID.subjectAltName) continue;
        const value = child(parts, parts.length - 1, "extension value");
        for (const gn of derChildren(derParse(value.content, TAG.SEQUENCE))) {
          if (gn.tag === 0x82) sans.dnsNames.push(gn.content.toString("ascii"));
          else if (gn.tag === 0x86) sans.uris.push(gn.content.toString("ascii"));
          else if (gn.tag === 0x87) {
            if (gn.content.length !== 4 && gn.content.length !== 16) throw new Error(`x509: cannot parse IP address of length ${gn.content.length}`);
            sans.ipAddresses.push(Buffer.from(gn.content));
          }
        }
      }
    }
  }
  return { name, publicKey, sans };
}

/** Go's x509.CreateCertificateRequest with the SANs as an extensionRequest attribute. */
function createCertificateRequest(name: GoName, sans: SubjectAltNames, key: KeyObject): Buffer {
  const attributes: Buffer[] = [];
  if (sans.dnsNames.length + sans.ipAddresses.length + sans.uris.length > 0) {
    const extensions = seq(extension(OID.subjectAltName, false, marshalSans(sans)));
    attributes.push(seq(derOid(OID.extensionRequest), setOf([extensions])));
  }
  const info = seq(derSmallInt(0), marshalName(name), spkiOf(key), tlv(0xa0, Buffer.concat(attributes)));
  const { hash, algorithmIdentifier } = signingParams(key);
  return seq(info, algorithmIdentifier, derBitString(signBytes(hash, info, key)));
}

// ---------------------------------------------------------------------------------------------
// Inputs (validated like the provider's schema would)

type Inputs = Record<string, unknown>;

function optional<T>(inputs: Inputs, name: string, check: (v: unknown) => v is T, what: string): T | undefined {
  const value = inputs[name];
  if (value === undefined || value === null) return undefined;
  if (!check(value)) throw new Error(`${name}: expected ${what}, got ${JSON.stringify(value)}`);
  return value;
}

const isString = (v: unknown): v is string => typeof v === "string";
const isInteger = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);
const isBoolean = (v: unknown): v is boolean => typeof v === "boolean";
const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

function required<T>(inputs: Inputs, name: string, check: (v: unknown) => v is T, what: string): T {
  const value = optional(inputs, name, check, what);
  if (value === undefined) throw new Error(`Missing required argument: ${name}`);
  return value;
}

function atLeast(name: string, value: number, min: number): number {
  if (value < min) throw new Error(`Invalid Attribute Value: Attribute ${name} value must be at least ${min}, got: ${value}`);
  return value;
}

function readSubject(inputs: Inputs): TlsSubject | undefined {
  let raw = inputs["subject"];
  if (Array.isArray(raw)) raw = raw[0];
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== "object") throw new Error(`subject: expected an object, got ${JSON.stringify(raw)}`);
  const s = raw as Inputs;
  return {
    commonName: optional(s, "commonName", isString, "a string"),
    organization: optional(s, "organization", isString, "a string"),
    organizationalUnit: optional(s, "organizationalUnit", isString, "a string"),
    streetAddresses: optional(s, "streetAddresses", isStringList, "a list of strings"),
    locality: optional(s, "locality", isString, "a string"),
    province: optional(s, "province", isString, "a string"),
    country: optional(s, "country", isString, "a string"),
    postalCode: optional(s, "postalCode", isString, "a string"),
    serialNumber: optional(s, "serialNumber", isString, "a string"),
    emailAddress: optional(s, "emailAddress", isString, "a string"),
  };
}

function readAllowedUses(uses: string[]): string[] {
  uses.forEach((use, i) => {
    if (!SUPPORTED_USES.includes(use)) {
      throw new Error(
        `Invalid Attribute Value Match: Attribute allowed_uses[${i}] value must be one of: ${JSON.stringify(SUPPORTED_USES)}, got: ${JSON.stringify(use)}`,
      );
    }
  });
  return uses;
}

function readSans(inputs: Inputs): SubjectAltNames {
  const ipAddresses = (optional(inputs, "ipAddresses", isStringList, "a list of strings") ?? []).map((text) => {
    const ip = parseIp(text);
    if (!ip) throw new Error(`Invalid IP address: Failed to parse ${JSON.stringify(text)}`);
    return ip;
  });
  return {
    dnsNames: optional(inputs, "dnsNames", isStringList, "a list of strings") ?? [],
    ipAddresses,
    uris: optional(inputs, "uris", isStringList, "a list of strings") ?? [],
  };
}

/** privateKeyPem or its write-only twin (never echoed into state). */
function readKeyPem(inputs: Inputs, name: string): string {
  const pem = optional(inputs, name, isString, "a PEM string") ?? optional(inputs, `${name}Wo`, isString, "a PEM string");
  if (pem === undefined) throw new Error(`Missing required argument: exactly one of ${name} or ${name}Wo must be set`);
  return pem;
}

function withoutWriteOnly(inputs: Inputs, name: string): Inputs {
  const out = { ...inputs };
  delete out[`${name}Wo`];
  return out;
}

interface CommonCertInputs {
  validityPeriodHours: number;
  earlyRenewalHours: number;
  allowedUses: string[];
  isCaCertificate: boolean;
  maxPathLength: number;
  setSubjectKeyId: boolean;
}

function readCommonCertInputs(inputs: Inputs): CommonCertInputs {
  return {
    validityPeriodHours: atLeast("validity_period_hours", required(inputs, "validityPeriodHours", isInteger, "an integer"), 0),
    earlyRenewalHours: atLeast("early_renewal_hours", optional(inputs, "earlyRenewalHours", isInteger, "an integer") ?? 0, 0),
    allowedUses: readAllowedUses(required(inputs, "allowedUses", isStringList, "a list of strings")),
    isCaCertificate: optional(inputs, "isCaCertificate", isBoolean, "a boolean") ?? false,
    maxPathLength: atLeast("max_path_length", optional(inputs, "maxPathLength", isInteger, "an integer") ?? -1, -1),
    setSubjectKeyId: optional(inputs, "setSubjectKeyId", isBoolean, "a boolean") ?? false,
  };
}

function validityWindow(hours: number): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date();
  return { notBefore, notAfter: new Date(notBefore.getTime() + hours * 3_600_000) };
}

// ---------------------------------------------------------------------------------------------
// Resources

async function applyPrivateKey(inputs: Inputs): Promise<Inputs> {
  const algorithm = required(inputs, "algorithm", isString, "a string");
  const rsaBits = optional(inputs, "rsaBits", isInteger, "an integer") ?? 2048;
  const ecdsaCurve = optional(inputs, "ecdsaCurve", isString, "a string") ?? "P224";
  const outputs = await generatePrivateKey(algorithm, rsaBits, ecdsaCurve);
  return { ...inputs, ...outputs };
}

function applySelfSignedCert(inputs: Inputs): Inputs {
  const { key, algorithm } = parsePrivateKeyPemOrFail(readKeyPem(inputs, "privateKeyPem"), "Failed to parse private key PEM");
  const common = readCommonCertInputs(inputs);
  const setAuthorityKeyId = optional(inputs, "setAuthorityKeyId", isBoolean, "a boolean") ?? false;
  const cert = createCertificate(
    {
      name: nameFromSubject(readSubject(inputs)),
      publicKey: createPublicKey(key),
      sans: readSans(inputs),
      ...validityWindow(common.validityPeriodHours),
      allowedUses: common.allowedUses,
      isCa: common.isCaCertificate,
      maxPathLength: common.maxPathLength,
      setSubjectKeyId: common.setSubjectKeyId,
      setAuthorityKeyId,
    },
    "self",
    key,
  );
  return { ...withoutWriteOnly(inputs, "privateKeyPem"), ...common, setAuthorityKeyId, ...cert, keyAlgorithm: algorithm, readyForRenewal: false };
}

function applyCertRequest(inputs: Inputs): Inputs {
  const { key, algorithm } = parsePrivateKeyPemOrFail(readKeyPem(inputs, "privateKeyPem"), "Failed to parse private key PEM");
  const der = createCertificateRequest(nameFromSubject(readSubject(inputs)), readSans(inputs), key);
  return { ...withoutWriteOnly(inputs, "privateKeyPem"), id: hashForState(der), certRequestPem: pemEncode("CERTIFICATE REQUEST", der), keyAlgorithm: algorithm };
}

function applyLocallySignedCert(inputs: Inputs): Inputs {
  const csr = failWith("Failed to parse certificate request PEM", () => parseCsrPem(required(inputs, "certRequestPem", isString, "a PEM string")));
  const { key: caKey, algorithm } = parsePrivateKeyPemOrFail(readKeyPem(inputs, "caPrivateKeyPem"), "Failed to parse CA private key PEM");
  const ca = failWith("Failed to parse CA certificate PEM", () => parseCertificatePem(required(inputs, "caCertPem", isString, "a PEM string")));
  // (The provider only warns when the CA certificate is not a CA; so does nothing here.)
  const common = readCommonCertInputs(inputs);
  const cert = createCertificate(
    {
      name: csr.name,
      publicKey: csr.publicKey,
      sans: csr.sans,
      ...validityWindow(common.validityPeriodHours),
      allowedUses: common.allowedUses,
      isCa: common.isCaCertificate,
      maxPathLength: common.maxPathLength,
      setSubjectKeyId: common.setSubjectKeyId,
    },
    ca,
    caKey,
  );
  return { ...withoutWriteOnly(inputs, "caPrivateKeyPem"), ...common, ...cert, caKeyAlgorithm: algorithm, readyForRenewal: false };
}

function failWith<T>(summary: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new Error(`${summary}: ${(err as Error).message}`);
  }
}

const parsePrivateKeyPemOrFail = (pem: string, summary: string): ParsedPrivateKey => failWith(summary, () => parsePrivateKeyPem(pem));

/**
 * The state @pulumi/tls would return for a new resource of this type (its inputs, defaults and
 * computed outputs, "id" included), or undefined for types that are not @pulumi/tls resources.
 * Throws where the provider would fail the create.
 */
export async function applyTlsResource(type: string, inputs: Record<string, unknown>): Promise<Record<string, unknown> | undefined> {
  switch (type) {
    case "tls:index/privateKey:PrivateKey":
      return applyPrivateKey(inputs);
    case "tls:index/selfSignedCert:SelfSignedCert":
      return applySelfSignedCert(inputs);
    case "tls:index/certRequest:CertRequest":
      return applyCertRequest(inputs);
    case "tls:index/locallySignedCert:LocallySignedCert":
      return applyLocallySignedCert(inputs);
    default:
      return undefined;
  }
}

/**
 * A certificate the way the provider builds one, but with the validity window and issuer chosen
 * by the caller: for certificates a real stack would never make (expired, not yet valid, signed
 * by an unrelated CA). The provider's checks still apply (CA subject, key/CA match, path length).
 */
export async function issueCertificate(opts: IssueCertificateOptions): Promise<string> {
  const publicKey = publicKeyFromPem(opts.publicKeyPem);
  let signer: KeyObject;
  let parent: Parent | "self";
  if (opts.issuer === "self") {
    if (opts.privateKeyPemForSelf === undefined) throw new Error(`issuer "self" needs privateKeyPemForSelf`);
    signer = parsePrivateKeyPem(opts.privateKeyPemForSelf).key;
    // A self-signed certificate whose signature does not verify under its own key is not one.
    if (!spkiOf(signer).equals(spkiOf(publicKey))) throw new Error("privateKeyPemForSelf does not match publicKeyPem");
    parent = "self";
  } else {
    signer = parsePrivateKeyPem(opts.issuer.privateKeyPem).key;
    parent = parseCertificatePem(opts.issuer.certPem);
  }
  const ipAddresses = (opts.ipAddresses ?? []).map((text) => {
    const ip = parseIp(text);
    if (!ip) throw new Error(`Invalid IP address: Failed to parse ${JSON.stringify(text)}`);
    return ip;
  });
  const cert = createCertificate(
    {
      name: nameFromSubject(opts.subject),
      publicKey,
      sans: { dnsNames: opts.dnsNames ?? [], ipAddresses, uris: opts.uris ?? [] },
      notBefore: opts.notBefore,
      notAfter: opts.notAfter,
      allowedUses: readAllowedUses(opts.allowedUses),
      isCa: opts.isCa ?? false,
      maxPathLength: opts.maxPathLength ?? -1,
      setSubjectKeyId: opts.setSubjectKeyId ?? false,
      setAuthorityKeyId: opts.issuer === "self" ? (opts.setAuthorityKeyId ?? false) : undefined,
    },
    parent,
    signer,
  );
  return cert.certPem;
}
