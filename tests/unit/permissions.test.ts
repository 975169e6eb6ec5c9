import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { clientIdPattern, compilePermissions, ownMqttQueuesPattern } from "../../core/permissions";
import { bindFilter, parseTopicFilter } from "../../core/topics";

const grants = (identity: string) => ({
  publish: [bindFilter(parseTopicFilter("activity/{user}/#"), { identity, user: "u1", tenant: "acme" })],
  subscribe: [bindFilter(parseTopicFilter("client/{identity}/#"), { identity, user: "u1", tenant: "acme" })],
});

describe("ownMqttQueuesPattern", () => {
  const re = new RegExp(ownMqttQueuesPattern("alice"));

  it.each([
    "mqtt-subscription-aliceqos0",
    "mqtt-subscription-aliceqos1",
    "mqtt-subscription-alice_phoneqos1",
    "mqtt-subscription-alice_tab-2qos0",
    "mqtt-will-alice",
    "mqtt-will-alice_phone",
  ])("matches alice's own queue %s", (q) => expect(re.test(q)).toBe(true));

  it.each([
    "mqtt-subscription-bobqos1",
    "mqtt-subscription-alice-2qos1", // identity alice-2
    "mqtt-subscription-aliceqos1qos1", // identity aliceqos1
    "mqtt-subscription-alicexqos1",
    "mqtt-subscription-.*qos1",
    "mqtt-subscription-alice_.qos1",
    "mqtt-subscription-alice_x|bobqos1",
    "xmqtt-subscription-aliceqos1",
    "mqtt-subscription-aliceqos1x",
    "mqtt-subscription-aliceqos2",
    "mqtt-will-bob",
    "amq.gen-abc",
    "alice",
  ])("does not match %s", (q) => expect(re.test(q)).toBe(false));

  it("no two identities share a queue name (property)", () => {
    const name = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?$/);
    const suffix = fc.option(fc.stringMatching(/^[A-Za-z0-9_-]{1,8}$/), { nil: undefined });
    fc.assert(
      fc.property(name, name, suffix, fc.constantFrom("qos0", "qos1"), (a, b, s, qos) => {
        fc.pre(a !== b);
        const clientId = s === undefined ? a : `${a}_${s}`;
        expect(new RegExp(ownMqttQueuesPattern(b)).test(`mqtt-subscription-${clientId}${qos}`)).toBe(false);
        expect(new RegExp(ownMqttQueuesPattern(a)).test(`mqtt-subscription-${clientId}${qos}`)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});

describe("clientIdPattern", () => {
  it("accepts <identity> and <identity>_<instance> only", () => {
    const re = new RegExp(clientIdPattern("alice"));
    expect(["alice", "alice_1", "alice_phone-2"].every((c) => re.test(c))).toBe(true);
    expect(["bob", "alice-2", "alice_", "alice_a.b", ".*", "x|alice", "alice\n"].some((c) => re.test(c))).toBe(false);
  });
});

describe("compilePermissions", () => {
  const p = compilePermissions("alice", grants("alice"));

  it("confines configure to the identity's own MQTT queues (no exchanges, no other queues)", () => {
    const re = new RegExp(p.vhost.configure);
    expect(re.test("mqtt-subscription-aliceqos1")).toBe(true);
    for (const name of ["amq.topic", "amq.default", "", "mqtt-subscription-bobqos1", "my-queue"]) expect(re.test(name)).toBe(false);
  });

  it("allows write to the MQTT exchange but not the default exchange or other queues", () => {
    const re = new RegExp(p.vhost.write);
    expect(re.test("amq.topic")).toBe(true);
    expect(re.test("mqtt-subscription-alice_1qos0")).toBe(true);
    for (const name of ["amq.default", "", "amq.direct", "amq.fanout", "amq.topicx", "mqtt-subscription-bobqos0"]) expect(re.test(name)).toBe(false);
  });

  it("allows read from the MQTT exchange and its own queues only", () => {
    const re = new RegExp(p.vhost.read);
    expect(re.test("amq.topic")).toBe(true);
    expect(re.test("mqtt-subscription-aliceqos1")).toBe(true);
    for (const name of ["amq.rabbitmq.trace", "mqtt-subscription-bobqos1", "xamq.topic"]) expect(re.test(name)).toBe(false);
  });

  it("never relies on {client_id} or {username} expansion", () => {
    expect(JSON.stringify(p)).not.toMatch(/\{client_id\}|\{username\}|\{vhost\}/);
  });

  it("declares topic permissions for the MQTT exchange even without grants (default deny)", () => {
    const none = compilePermissions("bob", { publish: [], subscribe: [] });
    expect(none.topic).toEqual({ exchange: "amq.topic", write: "^(?!)$", read: "^(?!)$" });
  });
});
