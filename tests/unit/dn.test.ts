/**
 * The certificate login name, as a specification: every expected string is written out the way
 * the broker prints it (checked against the broker's own formatter by the dn-oracle e2e test).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { brokerLoginName, escapeDnValue, subjectProblems, subjectRdnSequence, type CertificateSubject } from "../../core/dn";

const full: CertificateSubject = {
  commonName: "dev1",
  organization: "acme",
  organizationalUnit: "devices",
  streetAddresses: ["1 Main St", "Unit 2"],
  locality: "Springfield",
  province: "CA",
  country: "US",
  postalCode: "94105",
  serialNumber: "42",
};

describe("subjectRdnSequence (what Go encodes)", () => {
  it("orders RDNs C, ST, L, STREET, POSTALCODE, O, OU, CN, SERIALNUMBER, street as one multi-valued RDN", () => {
    expect(subjectRdnSequence(full)).toEqual([
      { type: "2.5.4.6", values: ["US"] },
      { type: "2.5.4.8", values: ["CA"] },
      { type: "2.5.4.7", values: ["Springfield"] },
      { type: "2.5.4.9", values: ["Unit 2", "1 Main St"] },
      { type: "2.5.4.17", values: ["94105"] },
      { type: "2.5.4.10", values: ["acme"] },
      { type: "2.5.4.11", values: ["devices"] },
      { type: "2.5.4.3", values: ["dev1"] },
      { type: "2.5.4.5", values: ["42"] },
    ]);
  });

  it("leaves out absent fields, an empty street list, and an empty CN or serial number", () => {
    expect(subjectRdnSequence({ commonName: "d", streetAddresses: [] })).toEqual([{ type: "2.5.4.3", values: ["d"] }]);
    expect(subjectRdnSequence({ commonName: "", serialNumber: "" })).toEqual([]);
  });

  it("keeps an empty list-backed field, as the provider hands Go a one-element list", () => {
    expect(subjectRdnSequence({ organization: "" })).toEqual([{ type: "2.5.4.10", values: [""] }]);
  });

  // DER sorts the members of a SET OF by their encodings: shorter first, then string tag
  // (UTF8String 0x0C before PrintableString 0x13), then content bytes.
  it.each([
    [["1 Main St", "Unit 2"], ["Unit 2", "1 Main St"]],
    [["b", "a"], ["a", "b"]],
    [["b,", "a;"], ["a;", "b,"]], // "a;" is a UTF8String (';' is not printable), "b," a PrintableString
    [["ab", "é"], ["é", "ab"]], // two bytes each; "é" is a UTF8String
    [["a".repeat(130), "b"], ["b", "a".repeat(130)]], // long-form length sorts after short form
    [["x", "x"], ["x", "x"]],
  ])("sorts the street addresses %j into encoded order %j", (given, encoded) => {
    expect(subjectRdnSequence({ streetAddresses: given })).toEqual([{ type: "2.5.4.9", values: encoded }]);
  });
});

describe("brokerLoginName, distinguished_name", () => {
  it("prints RDNs in reverse, comma-joined without spaces, street and postal code as dotted OIDs", () => {
    expect(brokerLoginName(full, "distinguished_name")).toBe(
      "SERIALNUMBER=42,CN=dev1,OU=devices,O=acme,2.5.4.17=94105,2.5.4.9=Unit 2+2.5.4.9=1 Main St,L=Springfield,ST=CA,C=US",
    );
  });

  it("joins a multi-valued RDN with '+' in encoded (sorted) order, not in the given order", () => {
    const subject = { country: "US", streetAddresses: ["1 Main St", "Unit 2"], organization: "acme", organizationalUnit: "devices", commonName: "dev1" };
    expect(brokerLoginName(subject, "distinguished_name")).toBe("CN=dev1,OU=devices,O=acme,2.5.4.9=Unit 2+2.5.4.9=1 Main St,C=US");
  });

  it("escapes each value", () => {
    const subject = { commonName: " #dev,1+é~ ", organization: 'a"b;c<d>e\\f=g' };
    expect(brokerLoginName(subject, "distinguished_name")).toBe(String.raw`CN=\ #dev\,1\+\C3\A9\7E\ ,O=a\"b\;c\<d\>e\\f=g`);
  });

  it("refuses a subject with problems, naming them", () => {
    expect(() => brokerLoginName({ commonName: "a\nb" }, "distinguished_name")).toThrow(/commonName contains the control character U\+000A/);
  });

  describe("with skipValidation (the formatter model alone)", () => {
    const raw = (s: CertificateSubject) => brokerLoginName(s, "distinguished_name", { skipValidation: true });

    it("escapes control characters as \\XX", () => {
      expect(raw({ commonName: "a\nb\u0000" })).toBe(String.raw`CN=a\0Ab\00`);
    });

    it("escapes a non-ASCII country by code point, and as \\** above U+00FF", () => {
      expect(raw({ country: "ü1", commonName: "x" })).toBe(String.raw`CN=x,C=\FC1`);
      expect(raw({ country: "жж", commonName: "x" })).toBe(String.raw`CN=x,C=\**\**`);
    });

    it("prints an empty street address as the raw term <<19,0>>", () => {
      expect(raw({ streetAddresses: [""], commonName: "x" })).toBe(String.raw`CN=x,2.5.4.9=\<\<19\,0\>\>`);
    });
  });
});

describe("brokerLoginName, common_name", () => {
  it("is the CN value itself, unescaped", () => {
    expect(brokerLoginName({ commonName: " #dev,1+é~ ", organization: "acme" }, "common_name")).toBe(" #dev,1+é~ ");
  });

  it("refuses a subject without a CN (the broker would find no name)", () => {
    expect(() => brokerLoginName({ organization: "acme" }, "common_name")).toThrow(/commonName is required/);
    expect(() => brokerLoginName({ organization: "acme" }, "common_name", { skipValidation: true })).toThrow(/no commonName/);
  });

  it("still refuses a subject the broker could not decode, even though only the CN is used", () => {
    expect(() => brokerLoginName({ commonName: "d", serialNumber: "a;b" }, "common_name")).toThrow(/serialNumber may only contain/);
  });
});

describe("escapeDnValue", () => {
  it.each([
    ["plain", "plain"],
    ["a,b", String.raw`a\,b`],
    ["a+b", String.raw`a\+b`],
    ['a"b', String.raw`a\"b`],
    ["a\\b", String.raw`a\\b`],
    ["a<b>c", String.raw`a\<b\>c`],
    ["a;b", String.raw`a\;b`],
    ["a=b", "a=b"],
    [",a", String.raw`\,a`],
    ["#x", String.raw`\#x`],
    ["x#", "x#"],
    ["#", String.raw`\#`],
    [" x", String.raw`\ x`],
    ["x ", String.raw`x\ `],
    ["a b", "a b"],
    [" ", String.raw`\ `],
    ["  ", String.raw`\ \ `],
    [" # ", String.raw`\ #\ `],
    ["~", String.raw`\7E`],
    ["} |", "} |"],
    ["*&'()", "*&'()"],
    ["é", String.raw`\C3\A9`],
    ["漢", String.raw`\E6\BC\A2`],
    ["😀", String.raw`\F0\9F\98\80`],
    ["a\nb", String.raw`a\0Ab`],
    ["\u0000", String.raw`\00`],
    ["\u007f", String.raw`\7F`],
  ])("%j is written %s", (value, escaped) => {
    expect(escapeDnValue(value)).toBe(escaped);
  });

  it("is printable ASCII and unambiguous: unescaping gives back the UTF-8 bytes", () => {
    const unescape = (s: string): number[] => {
      const out: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (s[i] !== "\\") out.push(s.charCodeAt(i));
        else if (/^[0-9A-F]{2}$/.test(s.slice(i + 1, i + 3))) {
          out.push(parseInt(s.slice(i + 1, i + 3), 16));
          i += 2;
        } else out.push(s.charCodeAt(++i));
      }
      return out;
    };
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (value) => {
        const escaped = escapeDnValue(value);
        expect(escaped).toMatch(/^[\x20-\x7d]*$/);
        expect(unescape(escaped)).toEqual([...Buffer.from(value, "utf8")]);
      }),
    );
  });
});

describe("subjectProblems", () => {
  it("accepts a full subject, and hostile but representable values", () => {
    expect(subjectProblems(full)).toEqual([]);
    expect(subjectProblems({ commonName: ' #,+"\\<>;=~é漢😀*& ', serialNumber: "AB-12 (x)/y:z=?,+'." }, "common_name")).toEqual([]);
  });

  it("counts characters, not UTF-16 units or bytes, against the 64-character bound", () => {
    expect(subjectProblems({ commonName: "é".repeat(64) })).toEqual([]);
    expect(subjectProblems({ commonName: "😀".repeat(64) })).toEqual([]);
  });

  it("reports every problem", () => {
    expect(subjectProblems({ commonName: "" })).toEqual(["commonName is empty; leave it out instead", "subject is empty, so the login name would be empty"]);
  });

  it.each<[CertificateSubject, RegExp]>([
    [{}, /^subject is empty/],
    [{ organization: "", commonName: "d" }, /^organization is empty; leave it out instead$/],
    [{ streetAddresses: ["ok", ""], commonName: "d" }, /^streetAddresses\[1\] is empty/],
    [{ commonName: "x".repeat(65) }, /^commonName is longer than 64 characters/],
    [{ organizationalUnit: "x".repeat(65), commonName: "d" }, /^organizationalUnit is longer than 64/],
    [{ postalCode: "1".repeat(41), commonName: "d" }, /^postalCode is longer than 40 characters/],
    [{ commonName: "a\u0085b" }, /^commonName contains the control character U\+0085$/],
    [{ locality: "a\u007fb", commonName: "d" }, /^locality contains the control character U\+007F$/],
    [{ province: "\ud800x", commonName: "d" }, /^province is not well-formed Unicode/],
    [{ country: "us", commonName: "d" }, /^country must be a two-letter ISO 3166 code in capitals/],
    [{ country: "USA", commonName: "d" }, /^country must be a two-letter/],
    [{ country: "ü1", commonName: "d" }, /^country must be a two-letter/],
    [{ serialNumber: "a;b", commonName: "d" }, /^serialNumber may only contain letters, digits/],
    [{ serialNumber: "é", commonName: "d" }, /^serialNumber may only contain/],
  ])("flags %j", (subject, problem) => {
    const problems = subjectProblems(subject);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.some((p) => problem.test(p))).toBe(true);
  });

  it("requires a CN only in common_name mode", () => {
    expect(subjectProblems({ organization: "acme" })).toEqual([]);
    expect(subjectProblems({ organization: "acme" }, "common_name")).toEqual([
      "commonName is required when the broker takes the login name from the common name",
    ]);
  });
});
