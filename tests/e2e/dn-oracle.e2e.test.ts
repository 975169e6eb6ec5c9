/**
 * Oracle for core/dn.ts: the installed RabbitMQ's own code derives the login name of certificates
 * built the way @pulumi/tls builds them, and it must be what brokerLoginName predicts.
 *
 * The certificates are real DER, but made here rather than by @pulumi/tls (no Pulumi engine in a
 * test). Their subject is encoded by a transliteration of what Go does for the provider, written
 * independently of core/dn.ts, because the encoding decides what the broker prints:
 * - crypto/x509/pkix `Name.ToRDNSequence`: RDN order, street addresses as one multi-valued RDN,
 *   empty CN / serial number left out, list-backed fields kept even when empty;
 * - encoding/asn1 `makeField`: PrintableString when every character is in Go's PrintableString
 *   set, else UTF8String (the broker's decoder accepts different things for each);
 * - encoding/asn1 `setEncoder`: members of a SET OF sorted by their DER encodings.
 *
 * One `erl` process loads the broker's rabbit_common and rabbit code and runs
 * `rabbit_ssl:peer_cert_auth_name/1` (the call the MQTT reader makes) on every certificate in
 * both `ssl_cert_login_from` modes. No broker is needed for that; the e2e project's global setup
 * starts one anyway.
 */
import { generateKeyPairSync, sign } from "node:crypto";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { brokerLoginName, subjectProblems, type CertLoginFrom, type CertificateSubject } from "../../core/dn";
import { brokerRuntime, RABBITMQ_LIB } from "../support/broker-runtime";

// ---- DER, the way Go writes it ----

function derLength(n: number): number[] {
  if (n < 128) return [n];
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

const tlv = (tag: number, content: Buffer) => Buffer.concat([Buffer.from([tag, ...derLength(content.length)]), content]);

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split(".").map(Number);
  const body: number[] = [];
  for (const arc of [40 * a + b, ...rest]) {
    const chunk = [arc & 0x7f];
    for (let v = arc >> 7; v > 0; v >>= 7) chunk.unshift(0x80 | (v & 0x7f));
    body.push(...chunk);
  }
  return tlv(0x06, Buffer.from(body));
}

/** encoding/asn1 asn1.go `isPrintable` with rejectAsterisk and rejectAmpersand, as marshalling uses it. */
function goIsPrintable(b: number): boolean {
  const c = (ch: string) => ch.charCodeAt(0);
  return (
    (c("a") <= b && b <= c("z")) ||
    (c("A") <= b && b <= c("Z")) ||
    (c("0") <= b && b <= c("9")) ||
    (c("'") <= b && b <= c(")")) ||
    (c("+") <= b && b <= c("/")) ||
    b === c(" ") ||
    b === c(":") ||
    b === c("=") ||
    b === c("?")
  );
}

const PRINTABLE_STRING = 0x13;
const UTF8_STRING = 0x0c;

/** encoding/asn1 marshal.go `makeField` for an untagged Go string. */
function goStringTag(value: string): number {
  for (const ch of value) {
    const r = ch.codePointAt(0) ?? 0;
    if (r >= 0x80 || !goIsPrintable(r)) return UTF8_STRING;
  }
  return PRINTABLE_STRING;
}

/** The provider's pkix.Name fill (list-backed fields get `[]string{v}`) and `Name.ToRDNSequence`. */
function goRdnSequence(s: CertificateSubject): { oid: string; values: readonly string[] }[] {
  const list = (v: string | undefined) => (v === undefined ? [] : [v]);
  const rdns = [
    { oid: "2.5.4.6", values: list(s.country) },
    { oid: "2.5.4.8", values: list(s.province) },
    { oid: "2.5.4.7", values: list(s.locality) },
    { oid: "2.5.4.9", values: s.streetAddresses ?? [] },
    { oid: "2.5.4.17", values: list(s.postalCode) },
    { oid: "2.5.4.10", values: list(s.organization) },
    { oid: "2.5.4.11", values: list(s.organizationalUnit) },
    { oid: "2.5.4.3", values: s.commonName ? [s.commonName] : [] },
    { oid: "2.5.4.5", values: s.serialNumber ? [s.serialNumber] : [] },
  ];
  return rdns.filter((r) => r.values.length > 0);
}

/** asn1.Marshal of the RDNSequence: SEQUENCE OF SET OF (sorted, Go 1.15+) AttributeTypeAndValue. */
function goMarshalName(s: CertificateSubject): Buffer {
  return tlv(
    0x30,
    Buffer.concat(
      goRdnSequence(s).map((rdn) => {
        const members = rdn.values.map((v) => tlv(0x30, Buffer.concat([oid(rdn.oid), tlv(goStringTag(v), Buffer.from(v, "utf8"))])));
        return tlv(0x31, Buffer.concat(members.sort((a, b) => Buffer.compare(a, b))));
      }),
    ),
  );
}

const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });

/** A complete X.509 v3 certificate with this subject (ECDSA P-256, self-issued by a fixed issuer). */
function certificate(subject: CertificateSubject): Buffer {
  const ecdsaWithSha256 = tlv(0x30, oid("1.2.840.10045.4.3.2"));
  const tbs = tlv(
    0x30,
    Buffer.concat([
      tlv(0xa0, tlv(0x02, Buffer.from([2]))),
      tlv(0x02, Buffer.from([1])),
      ecdsaWithSha256,
      goMarshalName({ commonName: "dn-oracle issuer" }),
      tlv(0x30, Buffer.concat([tlv(0x17, Buffer.from("250101000000Z")), tlv(0x17, Buffer.from("350101000000Z"))])),
      goMarshalName(subject),
      publicKey.export({ type: "spki", format: "der" }),
    ]),
  );
  const signature = sign("sha256", tbs, privateKey);
  return tlv(0x30, Buffer.concat([tbs, ecdsaWithSha256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature]))]));
}

// ---- the broker's formatter ----

type BrokerResult = { kind: "name"; name: string } | { kind: "atom"; atom: string } | { kind: "error"; error: string };

/** The release's rabbit_common and rabbit ebin directories, as that release's erl sees them. */
function brokerEbinDirs(): string[] {
  const runtime = brokerRuntime();
  const lib = path.join(RABBITMQ_LIB, "lib");
  const server = fs.readdirSync(runtime.hostPath(lib)).find((d) => d.startsWith("rabbitmq_server-"));
  if (server === undefined) throw new Error(`rabbitmq-server is not installed (no ${lib}/rabbitmq_server-*)`);
  const plugins = path.join(lib, server, "plugins");
  const app = (pattern: RegExp) => {
    const dir = fs.readdirSync(runtime.hostPath(plugins)).find((d) => pattern.test(d));
    if (dir === undefined) throw new Error(`no ${String(pattern)} in ${plugins}`);
    return path.join(plugins, dir, "ebin");
  };
  // rabbit_cert_info lives in rabbit_common, rabbit_ssl (peer_cert_auth_name) in rabbit.
  return [app(/^rabbit_common-/), app(/^rabbit-\d/)];
}

const ERLANG = `
application:set_env(rabbit, ssl_options, [{verify, verify_peer}]),
{ok, Input} = file:read_file(os:getenv("DN_ORACLE_INPUT")),
Ders = [base64:decode(L) || L <- binary:split(Input, <<"\\n">>, [global]), L =/= <<>>],
Show = fun(B) when is_binary(B) -> [<<"N:">>, base64:encode(B)];
          (A) when is_atom(A) -> [<<"A:">>, atom_to_binary(A)] end,
Run = fun(Mode, Der) ->
  ok = application:set_env(rabbit, ssl_cert_login_from, Mode),
  try Show(rabbit_ssl:peer_cert_auth_name(Der))
  catch Class:Reason ->
    [<<"E:">>, base64:encode(unicode:characters_to_binary(io_lib:format("~p:~0p", [Class, Reason])))]
  end
end,
lists:foreach(fun({I, Der}) ->
    io:put_chars([<<"R ">>, integer_to_binary(I), <<" ">>, Run(distinguished_name, Der), <<" ">>, Run(common_name, Der), <<"\\n">>])
  end, lists:zip(lists:seq(0, length(Ders) - 1), Ders)),
halt(0).
`;

/** Both modes' results for every certificate, from one erl process. */
function brokerLoginNames(ders: Buffer[]): { dn: BrokerResult; cn: BrokerResult }[] {
  const runtime = brokerRuntime();
  // In the release's work directory: the same path for this process and for a chroot's erl.
  const dir = fs.mkdtempSync(path.join(runtime.workDir, "dn-oracle-"));
  try {
    const input = path.join(dir, "certificates.b64");
    fs.writeFileSync(input, ders.map((d) => d.toString("base64")).join("\n") + "\n");
    const pa = brokerEbinDirs().flatMap((d) => ["-pa", d]);
    const cmd = runtime.command("/usr/bin/erl", ["-noshell", ...pa, "-eval", ERLANG]);
    const erl = spawnSync(cmd.file, cmd.args, {
      env: { ...process.env, DN_ORACLE_INPUT: input },
      encoding: "utf8",
      timeout: 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    if (erl.status !== 0) throw new Error(`erl failed (${erl.status ?? erl.signal}): ${erl.stderr}${erl.stdout}`);
    const parse = (field: string): BrokerResult => {
      const body = field.slice(2);
      if (field.startsWith("N:")) return { kind: "name", name: Buffer.from(body, "base64").toString("utf8") };
      if (field.startsWith("A:")) return { kind: "atom", atom: body };
      return { kind: "error", error: Buffer.from(body, "base64").toString("utf8") };
    };
    const results: { dn: BrokerResult; cn: BrokerResult }[] = [];
    for (const line of erl.stdout.split("\n")) {
      const [tag, index, dn, cn] = line.split(" ");
      if (tag !== "R" || index === undefined || dn === undefined || cn === undefined) continue;
      results[Number(index)] = { dn: parse(dn), cn: parse(cn) };
    }
    if (results.length !== ders.length) throw new Error(`erl answered for ${results.length} of ${ders.length} certificates:\n${erl.stdout}`);
    return results;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- subjects ----

/** Valid subjects whose names the unit tests spell out; here the broker confirms them. */
const LITERAL: CertificateSubject[] = [
  { country: "US", streetAddresses: ["1 Main St", "Unit 2"], organization: "acme", organizationalUnit: "devices", commonName: "dev1" },
  {
    commonName: "dev1",
    organization: "acme",
    organizationalUnit: "devices",
    streetAddresses: ["1 Main St", "Unit 2"],
    locality: "Springfield",
    province: "CA",
    country: "US",
    postalCode: "94105",
    serialNumber: "42",
  },
  { commonName: " #dev,1+é~ ", organization: 'a"b;c<d>e\\f=g' },
  { commonName: "a,b", organization: "a+b", organizationalUnit: 'a"b', locality: "a\\b", province: "a<b>c" },
  { commonName: "a;b", organization: "a=b", organizationalUnit: ",a", locality: "x#", province: "#x" },
  { commonName: " x", organization: "x ", organizationalUnit: "a b", locality: " ", province: "  " },
  { commonName: "#", organization: " # ", organizationalUnit: "} |", locality: "*&'()", province: "~" },
  { commonName: "é", organization: "漢", organizationalUnit: "😀", locality: "ü", province: "ж" },
  { commonName: "d", streetAddresses: ["b,", "a;"] },
  { commonName: "d", streetAddresses: ["ab", "é"] },
  { commonName: "d", streetAddresses: ["b", "a", "b"] },
  { commonName: "d", postalCode: "~1 ", serialNumber: "AB-12 (x)/y:z=?,+'." },
  { organization: "no common name" },
];

// Printable specials, RFC 4514 specials, the 0x7D/0x7E boundary, multi-byte UTF-8, invisible and
// combining characters, and (rarely) control characters.
const HOSTILE_CHARS = [..."aZ0 ,+\"\\<>;=#~*&'()-./:?{}|`^@", "é", "ü", "ж", "漢", "😀", "\u0301", "\u00a0", "\u200b", "\ufeff"];
const CONTROL_CHARS = ["\u0000", "\n", "\t", "\u001f", "\u007f", "\u0085", "\u009f"];

const anyChar = fc.oneof({ arbitrary: fc.constantFrom(...HOSTILE_CHARS), weight: 30 }, { arbitrary: fc.constantFrom(...CONTROL_CHARS), weight: 1 });
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 });

/** Values of any shape: empty, too long, control characters. Often refused by the broker's decoder. */
const wildValue = fc
  .oneof({ arbitrary: fc.array(anyChar, { maxLength: 12 }), weight: 9 }, { arbitrary: fc.array(anyChar, { minLength: 60, maxLength: 70 }), weight: 1 })
  .map((chars) => chars.join(""));
const wildSubject: fc.Arbitrary<CertificateSubject> = fc.record({
  commonName: optional(wildValue),
  organization: optional(wildValue),
  organizationalUnit: optional(wildValue),
  streetAddresses: optional(fc.array(wildValue, { maxLength: 3 })),
  locality: optional(wildValue),
  province: optional(wildValue),
  country: optional(fc.oneof(fc.constantFrom("US", "DE", "JP"), wildValue)),
  postalCode: optional(wildValue),
  serialNumber: optional(fc.oneof(fc.stringMatching(/^[A-Za-z0-9 '()+,\-./:=?]{1,12}$/), wildValue)),
});

/** Hostile characters in values of an acceptable shape, so most pass subjectProblems. */
const shapedValue = (max: number) =>
  fc
    .oneof({ arbitrary: fc.array(fc.constantFrom(...HOSTILE_CHARS), { minLength: 1, maxLength: 12 }), weight: 9 }, { arbitrary: fc.array(fc.constantFrom(...HOSTILE_CHARS), { minLength: max - 4, maxLength: max }), weight: 1 })
    .map((chars) => chars.join(""));
const shapedSubject: fc.Arbitrary<CertificateSubject> = fc.record({
  commonName: optional(shapedValue(64)),
  organization: optional(shapedValue(64)),
  organizationalUnit: optional(shapedValue(64)),
  streetAddresses: optional(fc.array(shapedValue(64), { maxLength: 3 })),
  locality: optional(shapedValue(64)),
  province: optional(shapedValue(64)),
  country: optional(fc.constantFrom("US", "DE", "JP")),
  postalCode: optional(shapedValue(40)),
  serialNumber: optional(fc.stringMatching(/^[A-Za-z0-9 '()+,\-./:=?]{1,64}$/)),
});

const hostileSubject = fc.oneof({ arbitrary: shapedSubject, weight: 7 }, { arbitrary: wildSubject, weight: 3 });

const SEED = Number(process.env.DN_ORACLE_SEED ?? 20240611);
const FUZZ = fc.sample(hostileSubject, { numRuns: 200, seed: SEED });

const MODES: CertLoginFrom[] = ["distinguished_name", "common_name"];

/**
 * What Erlang/OTP 29 (RabbitMQ 4.3.6 here) prints differently from OTP 25-27 (3.10, 4.0), in DN mode:
 * - street address and postal code: OTP leaves both types undecoded and the broker prints the raw
 *   term, which up to OTP 28 is the value's text (core/dn.ts predicts it) and on OTP 29 is
 *   `{asn1_OPENTYPE,<<...>>}`. The tenant config therefore refuses both fields
 *   (core/tenant-config.ts): a device's login name must not depend on the broker's Erlang release;
 * - a country that is not two bytes long (subjectProblems refuses every country but two capital
 *   letters): OTP 29 prints the Erlang binary `<<"...">>`.
 * Observed per release, asserted per release.
 */
const OTP29_FORMATTING: Record<string, boolean> = { "3.10": false, "4.0": false, "4.3": true };
const hasStreetOrPostal = (s: CertificateSubject) => (s.streetAddresses ?? []).length > 0 || s.postalCode !== undefined;
const hasBadCountry = (s: CertificateSubject) => s.country !== undefined && Buffer.byteLength(s.country, "utf8") !== 2;

describe(`certificate login names: core/dn.ts against the formatter of RabbitMQ ${brokerRuntime().versionText}`, () => {
  const subjects = [...LITERAL, ...FUZZ];
  const otp29 = OTP29_FORMATTING[brokerRuntime().series];
  if (otp29 === undefined) throw new Error(`no observed formatting recorded for RabbitMQ ${brokerRuntime().series}`);
  /** Where this release prints a raw Erlang term, the DN must show it (core/dn.ts cannot predict it). */
  const opaqueHere = (s: CertificateSubject, mode: CertLoginFrom) => otp29 && mode === "distinguished_name" && (hasStreetOrPostal(s) || hasBadCountry(s));
  const showsRawTerms = (name: string, s: CertificateSubject): boolean =>
    (!hasStreetOrPostal(s) || /2\.5\.4\.(9|17)=\{asn1_OPENTYPE/.test(name)) && (!hasBadCountry(s) || name.includes("C=\\<\\<"));
  const matches = (actual: BrokerResult, s: CertificateSubject, mode: CertLoginFrom, expected: BrokerResult): boolean =>
    opaqueHere(s, mode) ? actual.kind === "name" && showsRawTerms(actual.name, s) : JSON.stringify(actual) === JSON.stringify(expected);
  let broker: { dn: BrokerResult; cn: BrokerResult }[] = [];

  beforeAll(() => {
    broker = brokerLoginNames(subjects.map(certificate));
  });

  const resultOf = (i: number, mode: CertLoginFrom): BrokerResult => {
    const r = broker[i];
    if (r === undefined) throw new Error(`no broker result for subject ${i}`);
    return mode === "distinguished_name" ? r.dn : r.cn;
  };

  /** What core/dn.ts says the broker answers for a subject it accepts. */
  const predicted = (s: CertificateSubject, mode: CertLoginFrom): BrokerResult => {
    if (mode === "common_name" && !s.commonName) return { kind: "atom", atom: "not_found" };
    return { kind: "name", name: brokerLoginName(s, mode) };
  };

  it("agrees on every literal subject, in both modes", () => {
    for (const [i, s] of LITERAL.entries()) {
      for (const mode of MODES) {
        if (mode === "distinguished_name" || s.commonName) expect(subjectProblems(s, mode), JSON.stringify(s)).toEqual([]);
        if (opaqueHere(s, mode)) expect(matches(resultOf(i, mode), s, mode, predicted(s, mode)), `${mode} ${JSON.stringify(s)}: ${JSON.stringify(resultOf(i, mode))}`).toBe(true);
        else expect(resultOf(i, mode), `${mode} ${JSON.stringify(s)}`).toEqual(predicted(s, mode));
      }
    }
  });

  it(`agrees on every hostile subject subjectProblems accepts (seed ${SEED})`, () => {
    const mismatches: unknown[] = [];
    let accepted = 0;
    for (const [k, s] of FUZZ.entries()) {
      for (const mode of MODES) {
        if (subjectProblems(s, mode).length > 0) continue;
        accepted++;
        const actual = resultOf(LITERAL.length + k, mode);
        const expected = predicted(s, mode);
        if (!matches(actual, s, mode, expected)) mismatches.push({ mode, subject: s, broker: actual, predicted: expected });
      }
    }
    console.log(`[dn-oracle] ${accepted} of ${FUZZ.length * MODES.length} hostile (subject, mode) pairs accepted by subjectProblems`);
    expect(mismatches).toEqual([]);
    // Not vacuous: a good share of the batch passes validation.
    expect(accepted).toBeGreaterThan(FUZZ.length / 2);
  });

  it("matches the broker even on subjects it flags, whenever the broker decodes them at all", () => {
    const mismatches: unknown[] = [];
    let decoded = 0;
    let refused = 0;
    for (const [k, s] of FUZZ.entries()) {
      if (subjectProblems(s).length === 0) continue;
      const dn = resultOf(LITERAL.length + k, "distinguished_name");
      const cn = resultOf(LITERAL.length + k, "common_name");
      if (dn.kind === "error") {
        refused++;
        expect(cn.kind, "the certificate decodes in neither mode").toBe("error");
        continue;
      }
      decoded++;
      const expectedDn = { kind: "name", name: brokerLoginName(s, "distinguished_name", { skipValidation: true }) };
      const expectedCn = s.commonName ? { kind: "name", name: s.commonName } : { kind: "atom", atom: "not_found" };
      if (!matches(dn, s, "distinguished_name", expectedDn as BrokerResult) || JSON.stringify(cn) !== JSON.stringify(expectedCn)) {
        mismatches.push({ subject: s, broker: { dn, cn }, predicted: { dn: expectedDn, cn: expectedCn } });
      }
    }
    console.log(`[dn-oracle] flagged subjects: ${decoded} decoded by the broker, ${refused} refused by its certificate decoder`);
    expect(mismatches).toEqual([]);
  });
});
