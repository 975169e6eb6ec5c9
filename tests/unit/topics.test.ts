import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DENY_ALL_PATTERN,
  TopicFilterError,
  bindFilter,
  compileTopicPattern,
  filterWithin,
  formatFilter,
  parseTopicFilter,
  type TopicFilter,
} from "../../core/topics";
// The e2e tests' reference MQTT matcher, independent of the compiler under test.
import { topicMatches as mqttMatches } from "../support/access-model";

const bound = (text: string, values = { identity: "alice", user: "u1", tenant: "acme" }) =>
  bindFilter(parseTopicFilter(text), values);

/** What the MQTT plugin does to a topic before RabbitMQ's topic authorization sees it. */
const toRoutingKey = (mqtt: string) => mqtt.replace(/\//g, ".").replace(/\+/g, "*");

describe("parseTopicFilter", () => {
  it("parses literals, wildcards and placeholders", () => {
    expect(parseTopicFilter("client/{identity}/+/#")).toEqual([
      { kind: "literal", value: "client" },
      { kind: "placeholder", name: "identity" },
      { kind: "single" },
      { kind: "multi" },
    ]);
  });

  it.each([
    ["", /empty/],
    ["a/#/b", /'#' is only allowed as the last level/],
    ["a//b", /level 2 is empty/],
    ["/a", /level 1 is empty/],
    ["client/{client_id}/x", /unknown placeholder '\{client_id\}'/],
    ["client/{username}", /unknown placeholder/],
    ["client/x{identity}", /placeholder must be a whole level/],
    ["a+/b", /'\+' and '#' must be a whole level/],
    ["a/b#", /'\+' and '#' must be a whole level/],
    ["a.b/c", /is not allowed/],
    ["a/b*c", /is not allowed/],
    ["a/(.*)", /is not allowed/],
    ["a/b:c", /is not allowed/],
    ["a/" + "x".repeat(65), /is not allowed/],
    [Array.from({ length: 33 }, () => "a").join("/"), /at most 32 levels/],
  ])("rejects %j", (text, message) => {
    expect(() => parseTopicFilter(text)).toThrow(TopicFilterError);
    expect(() => parseTopicFilter(text)).toThrow(message);
  });

  it("round-trips through formatFilter", () => {
    expect(formatFilter(parseTopicFilter("activity/{user}/+/#"))).toBe("activity/{user}/+/#");
  });
});

describe("filterWithin", () => {
  it.each([
    ["client/alice/#", "client/alice/#", true],
    ["client/alice/x", "client/alice/#", true],
    ["client/alice", "client/alice/#", true], // MQTT: a/# matches a
    ["client/alice/+", "client/alice/#", true],
    ["client/alice/+/y", "client/alice/+/#", true],
    ["client/+/x", "client/alice/#", false],
    ["client/#", "client/alice/#", false],
    ["client/alice/#", "client/alice/+", false],
    ["client/alice/x/y", "client/alice/+", false],
    ["client/alicex/y", "client/alice/#", false],
    ["client", "client/alice/#", false],
    ["anything/at/all", "#", true],
  ])("%s within %s is %s", (inner, outer, expected) => {
    expect(filterWithin(bound(inner), bound(outer))).toBe(expected);
  });
});

describe("compileTopicPattern", () => {
  it("writes the identity's own names in, anchored, with '/' as '.'", () => {
    expect(compileTopicPattern([bound("client/{identity}/#")])).toBe("^(?:client\\.alice(?:\\..*)?)$(?!\\n)");
    expect(compileTopicPattern([bound("activity/{user}/+")])).toBe("^(?:activity\\.u1\\.[^.#]*)$(?!\\n)");
  });

  it("refuses a trailing newline after an exact grant (PCRE's $ alone would accept it)", () => {
    const exact = compileTopicPattern([bound("activity/{user}/telemetry")]);
    // PCRE's default `$` is JavaScript's `(?=\n?$)`: end of subject or before a final newline.
    const underPcre = (pattern: string) => new RegExp(pattern.replace(/\$(?=\(\?!\\n\)|$)/g, "(?=\\n?$)"));
    expect(underPcre(exact).test("activity.u1.telemetry\n")).toBe(false);
    expect(underPcre(exact).test("activity.u1.telemetry")).toBe(true);
    // Control: without the guard, PCRE would accept the newline.
    expect(underPcre(exact.replace("$(?!\\n)", "$")).test("activity.u1.telemetry\n")).toBe(true);
  });

  it("denies everything when there are no grants, including the empty routing key", () => {
    expect(compileTopicPattern([])).toBe(DENY_ALL_PATTERN);
    const re = new RegExp(DENY_ALL_PATTERN);
    for (const rk of ["", "a", "client.alice.x", "#", "*"]) expect(re.test(rk)).toBe(false);
  });

  it("never lets a subscription escape the granted subtree through AMQP wildcards", () => {
    const re = new RegExp(compileTopicPattern([bound("client/{identity}/+")]));
    expect(re.test("client.alice.*")).toBe(true); // SUBSCRIBE client/alice/+
    expect(re.test("client.alice.#")).toBe(false); // would reach client/alice/x/y
    expect(re.test("client.*.x")).toBe(false); // literal '*' in MQTT is an AMQP wildcard
    expect(re.test("client.#")).toBe(false);
    expect(re.test("client.alice.x.y")).toBe(false);
    expect(re.test("client.alicex.y")).toBe(false);
    expect(re.test("xclient.alice.y")).toBe(false);
  });

  const level = fc.constantFrom("a", "b", "alice", "u1", "x-y");
  const topic = fc.array(level, { minLength: 1, maxLength: 5 }).map((l) => l.join("/"));
  const filterText = fc
    .tuple(fc.array(fc.oneof(level, fc.constant("+")), { minLength: 0, maxLength: 4 }), fc.boolean())
    .filter(([levels, multi]) => levels.length > 0 || multi)
    .map(([levels, multi]) => [...levels, ...(multi ? ["#"] : [])].join("/"));

  it("agrees with MQTT matching for every published topic (property)", () => {
    fc.assert(
      fc.property(fc.array(filterText, { minLength: 1, maxLength: 3 }), topic, (filters, t) => {
        const re = new RegExp(compileTopicPattern(filters.map((f) => parseTopicFilter(f))));
        expect(re.test(toRoutingKey(t))).toBe(filters.some((f) => mqttMatches(f, t)));
      }),
      { numRuns: 2000 },
    );
  });

  it("accepts a SUBSCRIBE filter only if it lies within a grant (property)", () => {
    fc.assert(
      fc.property(filterText, filterText, (grant, requested) => {
        const g: TopicFilter = parseTopicFilter(grant);
        const re = new RegExp(compileTopicPattern([g]));
        if (re.test(toRoutingKey(requested))) {
          expect(filterWithin(parseTopicFilter(requested), g)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
