/**
 * The login name RabbitMQ derives from an MQTT client certificate, computed from the subject we
 * ask @pulumi/tls to put into that certificate, so the provisioner can create the matching
 * RabbitMQ user before the device ever connects.
 *
 * Two programs decide that name, and both have quirks that a "plain RFC 4514" implementation
 * would get wrong:
 *
 * 1. The certificate encoder. @pulumi/tls wraps the Terraform tls provider, which fills a Go
 *    `pkix.Name` (every single-valued field except CN and serial number becomes a one-element
 *    list) and lets Go marshal it (crypto/x509/pkix pkix.go `ToRDNSequence`, encoding/asn1
 *    marshal.go):
 *    - RDN order C, ST, L, STREET, POSTALCODE, O, OU, CN, SERIALNUMBER; all street addresses form
 *      ONE multi-valued RDN;
 *    - CN and serial number are left out when empty, the list-backed fields are not (an empty
 *      `organization` is encoded as an empty attribute);
 *    - a value is a PrintableString when every character is in Go's PrintableString set
 *      (A-Z a-z 0-9 space ' ( ) + , - . / : = ?; `*` and `&` are NOT accepted when encoding),
 *      otherwise a UTF8String;
 *    - since Go 1.15 the members of a SET OF are sorted by their DER encodings (X.690 11.6), so a
 *      multi-valued street RDN is NOT in the order the addresses were given: shorter encodings
 *      first, then by string tag (UTF8String 0x0C before PrintableString 0x13), then by bytes.
 *
 * 2. The broker's formatter (rabbit_common rabbit_cert_info.erl `format_rdn_sequence`, reached
 *    through rabbit_ssl.erl `peer_cert_auth_name`; read at 3.10.8, and the later sources seen,
 *    4.x included, format the same way):
 *    - RDNs are printed in REVERSE encoded order, joined with "," and no spaces; members of a
 *      multi-valued RDN are joined with "+" in their encoded order;
 *    - types are printed with the short names in {@link BROKER_ATTRIBUTE_NAMES}, anything else as
 *      a dotted OID. Street address (2.5.4.9) and postal code (2.5.4.17) are dotted: the table's
 *      "STREET" entry is keyed by OTP's `?'street-address'` macro, which is the X.400 integer 17,
 *      not an OID, so it never matches (4.1 replaced the macro, removed in OTP 28, by the literal
 *      17 and so kept the behaviour);
 *    - values are escaped byte-wise on their UTF-8 encoding, see {@link escapeDnValue}.
 *
 * With `ssl_cert_login_from = common_name` the name is the CN value itself, unescaped (the
 * broker joins several CNs with ",", which a Go-made certificate never has).
 *
 * The broker's ASN.1 decoder (OTP public_key) also refuses some certificates outright, in which
 * case there is no login name at all; {@link subjectProblems} keeps subjects well inside what it
 * accepts.
 */

/** The subject fields of @pulumi/tls `CertRequestSubject`, with the same names. */
export interface CertificateSubject {
  commonName?: string;
  organization?: string;
  organizationalUnit?: string;
  streetAddresses?: readonly string[];
  locality?: string;
  province?: string;
  country?: string;
  postalCode?: string;
  serialNumber?: string;
}

/** The broker setting `ssl_cert_login_from` (the values this project supports). */
export type CertLoginFrom = "distinguished_name" | "common_name";

/** One RDN: an attribute type (dotted OID) and its values (several for a multi-valued RDN). */
export interface SubjectRdn {
  type: string;
  values: string[];
}

export const OID = {
  country: "2.5.4.6",
  province: "2.5.4.8",
  locality: "2.5.4.7",
  streetAddress: "2.5.4.9",
  postalCode: "2.5.4.17",
  organization: "2.5.4.10",
  organizationalUnit: "2.5.4.11",
  commonName: "2.5.4.3",
  serialNumber: "2.5.4.5",
} as const;

/**
 * The short names rabbit_cert_info.erl `format_rdn` knows, by OID. Street address is missing on
 * purpose (see the module comment): the broker prints it as `2.5.4.9`.
 */
export const BROKER_ATTRIBUTE_NAMES: Readonly<Record<string, string>> = {
  "2.5.4.4": "SN",
  "2.5.4.42": "GIVENNAME",
  "2.5.4.43": "INITIALS",
  "2.5.4.44": "GENERATIONQUALIFIER",
  "2.5.4.3": "CN",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.12": "TITLE",
  "2.5.4.6": "C",
  "2.5.4.5": "SERIALNUMBER",
  "2.5.4.65": "PSEUDONYM",
  "0.9.2342.19200300.100.1.25": "DC",
  "1.2.840.113549.1.9.1": "EMAILADDRESS",
  "0.9.2342.19200300.100.1.1": "UID",
};

/**
 * The subject's RDNs in the order Go encodes them, values in encoded order (a multi-valued street
 * RDN sorted as DER requires). Mirrors the provider: an explicitly empty list-backed field is
 * kept, an empty CN or serial number is dropped (subjectProblems rejects empty values anyway).
 */
export function subjectRdnSequence(s: CertificateSubject): SubjectRdn[] {
  const rdns: SubjectRdn[] = [];
  const single = (type: string, value: string | undefined) => {
    if (value !== undefined) rdns.push({ type, values: [value] });
  };
  single(OID.country, s.country);
  single(OID.province, s.province);
  single(OID.locality, s.locality);
  if (s.streetAddresses !== undefined && s.streetAddresses.length > 0) {
    rdns.push({ type: OID.streetAddress, values: sortSetOf(OID.streetAddress, s.streetAddresses) });
  }
  single(OID.postalCode, s.postalCode);
  single(OID.organization, s.organization);
  single(OID.organizationalUnit, s.organizationalUnit);
  if (s.commonName) rdns.push({ type: OID.commonName, values: [s.commonName] });
  if (s.serialNumber) rdns.push({ type: OID.serialNumber, values: [s.serialNumber] });
  return rdns;
}

export interface BrokerLoginNameOptions {
  /**
   * Skip {@link subjectProblems} and just run the formatter model. Only meaningful when the broker
   * can decode the certificate at all; the oracle test uses it to check the model on hostile input.
   */
  skipValidation?: boolean;
}

/**
 * Exactly the login name the broker derives from a certificate that @pulumi/tls made with this
 * subject. Throws if the subject has {@link subjectProblems}, or in `common_name` mode if there is
 * no CN (the broker then finds no name and the certificate does not log in).
 */
export function brokerLoginName(s: CertificateSubject, from: CertLoginFrom, options: BrokerLoginNameOptions = {}): string {
  if (!options.skipValidation) {
    const problems = subjectProblems(s, from);
    if (problems.length > 0) throw new Error(`certificate subject cannot be used for a ${from} login: ${problems.join("; ")}`);
  }
  if (from === "common_name") {
    if (!s.commonName) throw new Error("certificate subject has no commonName, so the broker finds no common_name login");
    return s.commonName;
  }
  return subjectRdnSequence(s)
    .reverse()
    .map((rdn) => rdn.values.map((v) => `${attributeLabel(rdn.type)}=${formatValue(rdn.type, v)}`).join("+"))
    .join(",");
}

/**
 * The broker's RFC 4514 value escaping (rabbit_cert_info.erl `escape_rdn_value`), applied to the
 * UTF-8 bytes of the value (that is what the formatter sees for UTF8String and PrintableString):
 * - a leading space or `#` gets a backslash; so does a trailing space (but not inner spaces);
 * - `"` `+` `,` `;` `<` `>` `\` get a backslash anywhere; `=` is NOT escaped;
 * - every byte below 0x20 and from 0x7E up becomes `\XX` (two upper-case hex digits): so `~`
 *   is `\7E`, DEL `\7F`, and each byte of a non-ASCII character is escaped separately
 *   (`é` is `\C3\A9`).
 */
export function escapeDnValue(v: string): string {
  return escapeUnits(Array.from(new TextEncoder().encode(v)));
}

/**
 * Why the subject cannot safely become a certificate whose login name we predict, as messages
 * (empty when it can). Conservative on purpose: it keeps to what every broker decodes the same
 * way, not just the OTP release on this machine.
 */
export function subjectProblems(s: CertificateSubject, from: CertLoginFrom = "distinguished_name"): string[] {
  const problems: string[] = [];
  const check = (field: string, value: string | undefined, maxLength = UPPER_BOUND) => {
    if (value === undefined) return;
    if (value === "") {
      // Go would still encode most of these as an empty attribute, which the broker's decoder
      // refuses (O, OU, L, ST, C) or prints as a raw ASN.1 term (street, postal code).
      problems.push(`${field} is empty; leave it out instead`);
      return;
    }
    if (LONE_SURROGATE.test(value)) {
      problems.push(`${field} is not well-formed Unicode (lone surrogate)`);
      return;
    }
    const control = [...value].find(isControl);
    if (control !== undefined) problems.push(`${field} contains the control character U+${codeHex(control)}`);
    if ([...value].length > maxLength) problems.push(`${field} is longer than ${maxLength} characters (X.520 upper bound)`);
  };

  check("commonName", s.commonName);
  check("organization", s.organization);
  check("organizationalUnit", s.organizationalUnit);
  check("locality", s.locality);
  check("province", s.province);
  check("postalCode", s.postalCode, POSTAL_CODE_UPPER_BOUND);
  (s.streetAddresses ?? []).forEach((v, i) => check(`streetAddresses[${i}]`, v));
  if (s.country !== undefined && !/^[A-Z]{2}$/.test(s.country)) {
    // OTP decodes countryName specially: wrong lengths are refused, and non-ASCII characters are
    // printed by code point (`\E9`, or `\**` above U+00FF) instead of by UTF-8 byte.
    problems.push(`country must be a two-letter ISO 3166 code in capitals, e.g. "US" (got ${JSON.stringify(s.country)})`);
  }
  if (s.serialNumber !== undefined) {
    check("serialNumber", s.serialNumber);
    if (s.serialNumber !== "" && !usesPrintableString(s.serialNumber)) {
      // The broker decodes serialNumber as PrintableString only; Go would pick UTF8String here.
      problems.push("serialNumber may only contain letters, digits, space and ' ( ) + , - . / : = ?");
    }
  }
  if (from === "common_name" && !s.commonName) {
    problems.push("commonName is required when the broker takes the login name from the common name");
  }
  if (subjectRdnSequence(s).length === 0) problems.push("subject is empty, so the login name would be empty");
  return problems;
}

/** X.520 upper bounds (RFC 5280 appendix A): 64 for names, 40 for postal codes. */
const UPPER_BOUND = 64;
const POSTAL_CODE_UPPER_BOUND = 40;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** C0, DEL and C1: invisible in logs and management UIs, and never meant in a subject. */
const isControl = (ch: string) => {
  const c = ch.codePointAt(0) ?? 0;
  return c < 0x20 || (c >= 0x7f && c <= 0x9f);
};
const codeHex = (ch: string) => (ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0");

function attributeLabel(oid: string): string {
  return BROKER_ATTRIBUTE_NAMES[oid] ?? oid;
}

function formatValue(oid: string, v: string): string {
  if (oid === OID.country) {
    // OTP hands countryName over as a list of code points, not bytes (see subjectProblems).
    return escapeUnits([...v].map((ch) => ch.codePointAt(0) ?? 0));
  }
  if (v === "" && (oid === OID.streetAddress || oid === OID.postalCode)) {
    // OTP leaves these types undecoded; the formatter's fallback cannot decode an empty string
    // either and prints the Erlang term of the raw bytes: <<19,0>> (empty PrintableString).
    return escapeUnits(Array.from("<<19,0>>", (ch) => ch.charCodeAt(0)));
  }
  return escapeDnValue(v);
}

/** rabbit_cert_info.erl `escape_rdn_value` over a list of bytes (or code points). */
function escapeUnits(units: readonly number[]): string {
  let out = "";
  units.forEach((c, i) => {
    const first = i === 0;
    const last = i === units.length - 1;
    if (first && (c === SPACE || c === HASH)) out += `\\${String.fromCharCode(c)}`;
    else if (last && c === SPACE) out += "\\ ";
    else if (BACKSLASHED.has(c)) out += `\\${String.fromCharCode(c)}`;
    // io_lib "~2.16.0B": two upper-case hex digits, and "**" when the number needs more.
    else if (c < 0x20 || c >= 0x7e) out += `\\${c > 0xff ? "**" : c.toString(16).toUpperCase().padStart(2, "0")}`;
    else out += String.fromCharCode(c);
  });
  return out;
}

const SPACE = 0x20;
const HASH = 0x23;
const BACKSLASHED = new Set(Array.from('"+,;<>\\', (ch) => ch.charCodeAt(0)));

/** encoding/asn1 (marshal.go `makeField`): PrintableString iff every rune is in Go's set. */
export function usesPrintableString(v: string): boolean {
  return /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(v);
}

/** The members of a SET OF in DER order: sorted by their full encodings, as Go's setEncoder does. */
function sortSetOf(oid: string, values: readonly string[]): string[] {
  return values
    .map((value) => ({ value, der: attributeDer(oid, value) }))
    .sort((a, b) => compareBytes(a.der, b.der))
    .map((e) => e.value);
}

function attributeDer(oid: string, value: string): number[] {
  const stringTag = usesPrintableString(value) ? 0x13 : 0x0c;
  return derTlv(0x30, [...derOid(oid), ...derTlv(stringTag, Array.from(new TextEncoder().encode(value)))]);
}

function derTlv(tag: number, content: readonly number[]): number[] {
  return [tag, ...derLength(content.length), ...content];
}

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return [0x80 | bytes.length, ...bytes];
}

function derOid(oid: string): number[] {
  const arcs = oid.split(".").map(Number);
  const [a = 0, b = 0, ...rest] = arcs;
  const body: number[] = [];
  for (const arc of [40 * a + b, ...rest]) {
    const chunk = [arc % 128];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | v % 128);
    body.push(...chunk);
  }
  return derTlv(0x06, body);
}

/** Go's bytes.Compare. */
function compareBytes(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
