import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { clientIdFitsQueueNames, clientIdPattern, clientIds, compilePermissions, ownMqttQueuesPattern } from "../../core/permissions";
import { bindFilter, parseTopicFilter } from "../../core/topics";

const grants = (identity: string) => ({
  publish: [bindFilter(parseTopicFilter("activity/{user}/#"), { identity, user: "u1", tenant: "acme" })],
  subscribe: [bindFilter(parseTopicFilter("client/{identity}/#"), { identity, user: "u1", tenant: "acme" })],
});

describe("clientIds", () => {
  it("lists <identity> then numbered instances", () => {
    expect(clientIds("alice", 3)).toEqual(["alice", "alice_1", "alice_2"]);
    expect(clientIds("alice", 1)).toEqual(["alice"]);
  });

  it.each([0, 65, 1.5])("refuses maxClientIds %s", (n) => {
    expect(() => clientIds("alice", n)).toThrow(/maxClientIds must be a whole number from 1 to 64/);
  });
});

describe("ownMqttQueuesPattern", () => {
  const re = new RegExp(ownMqttQueuesPattern(clientIds("alice", 4)));

  it.each([
    "mqtt-subscription-aliceqos0",
    "mqtt-subscription-aliceqos1",
    "mqtt-subscription-alice_1qos1",
    "mqtt-subscription-alice_3qos0",
    "mqtt-will-alice",
    "mqtt-will-alice_2",
  ])("matches alice's own queue %s", (q) => expect(re.test(q)).toBe(true));

  it.each([
    "mqtt-subscription-alice_4qos1", // beyond maxClientIds
    "mqtt-subscription-alice_phoneqos1",
    "mqtt-subscription-alice_01qos1",
    "mqtt-subscription-bobqos1",
    "mqtt-subscription-alice-2qos1", // identity alice-2
    "mqtt-subscription-aliceqos1qos1", // identity aliceqos1
    "mqtt-subscription-alicexqos1",
    "mqtt-subscription-.*qos1",
    "mqtt-subscription-alice_.qos1",
    "mqtt-subscription-alice_1|bobqos1",
    "xmqtt-subscription-aliceqos1",
    "mqtt-subscription-aliceqos1x",
    "mqtt-subscription-aliceqos1\n", // PCRE's $ alone would accept a final newline
    "mqtt-subscription-aliceqos2",
    "mqtt-will-bob",
    "amq.gen-abc",
    "alice",
  ])("does not match %j", (q) => expect(re.test(q)).toBe(false));

  it("no two identities share a queue name (property)", () => {
    const name = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?$/);
    fc.assert(
      fc.property(name, name, fc.integer({ min: 1, max: 64 }), fc.nat(63), fc.constantFrom("qos0", "qos1"), (a, b, max, n, qos) => {
        fc.pre(a !== b);
        const clientId = clientIds(a, max)[n % max]!;
        expect(new RegExp(ownMqttQueuesPattern(clientIds(b, 64))).test(`mqtt-subscription-${clientId}${qos}`)).toBe(false);
        expect(new RegExp(ownMqttQueuesPattern(clientIds(a, max))).test(`mqtt-subscription-${clientId}${qos}`)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});

describe("clientIdPattern", () => {
  it("accepts exactly the listed client ids", () => {
    const re = new RegExp(clientIdPattern(clientIds("alice", 3)));
    for (const c of ["alice", "alice_1", "alice_2"]) expect(re.test(c)).toBe(true);
    for (const c of ["bob", "alice_3", "alice-2", "alice_", "alice_a", ".*", "x|alice", "alice\n"]) expect(re.test(c)).toBe(false);
  });
});

describe("compilePermissions", () => {
  const p = compilePermissions(grants("alice"), clientIds("alice", 4));

  it("confines configure to the identity's own MQTT queues (no exchanges, no other queues)", () => {
    const re = new RegExp(p.vhost.configure);
    expect(re.test("mqtt-subscription-aliceqos1")).toBe(true);
    for (const name of ["amq.topic", "amq.default", "", "mqtt-subscription-bobqos1", "my-queue"]) expect(re.test(name)).toBe(false);
  });

  it("allows write to the MQTT exchange but not the default exchange or other queues", () => {
    const re = new RegExp(p.vhost.write);
    expect(re.test("amq.topic")).toBe(true);
    expect(re.test("mqtt-subscription-alice_1qos0")).toBe(true);
    for (const name of ["amq.default", "", "amq.direct", "amq.fanout", "amq.topicx", "amq.topic\n", "mqtt-subscription-bobqos0"]) {
      expect(re.test(name)).toBe(false);
    }
  });

  it("allows read from the MQTT exchange and its own queues only", () => {
    const re = new RegExp(p.vhost.read);
    expect(re.test("amq.topic")).toBe(true);
    expect(re.test("mqtt-subscription-aliceqos1")).toBe(true);
    for (const name of ["amq.rabbitmq.trace", "mqtt-subscription-bobqos1", "xamq.topic"]) expect(re.test(name)).toBe(false);
  });

  it("gives an identity without publish grants no write on the MQTT exchange at all", () => {
    const readOnly = compilePermissions({ publish: [], subscribe: grants("alice").subscribe }, clientIds("alice", 4));
    expect(new RegExp(readOnly.vhost.write).test("amq.topic")).toBe(false);
    expect(new RegExp(readOnly.vhost.write).test("mqtt-subscription-aliceqos1")).toBe(true);
  });

  it("never relies on {client_id} or {username} expansion", () => {
    expect(JSON.stringify(p)).not.toMatch(/\{client_id\}|\{username\}|\{vhost\}/);
  });

  it("declares topic permissions for the MQTT exchange even without grants (default deny)", () => {
    const none = compilePermissions({ publish: [], subscribe: [] }, clientIds("bob", 1));
    expect(none.topic).toEqual({ exchange: "amq.topic", write: "^(?!)$", read: "^(?!)$" });
  });
});

describe("a certificate identity's client id: its subject DN", () => {
  const dn = "SERIALNUMBER=MTR-0042,CN=meter-42@acme,OU=meters\\+x,O=acme,C=US";
  const other = "CN=meter-43@acme,O=acme,C=US";
  const p = compilePermissions(grants("meter-42"), [dn]);

  it("allows exactly the DN's own queues, every DN character taken literally", () => {
    const re = new RegExp(p.vhost.configure);
    for (const q of [`mqtt-subscription-${dn}qos0`, `mqtt-subscription-${dn}qos1`, `mqtt-will-${dn}`]) expect(re.test(q)).toBe(true);
    for (const q of [
      `mqtt-subscription-${other}qos1`,
      "mqtt-subscription-meter-42qos1", // the password-style client id is not the certificate's
      `mqtt-subscription-${dn.replace("\\+", "+")}qos1`, // an unescaped + is not the same DN
      `mqtt-subscription-${dn.replace(",", "X")}qos1`,
      `mqtt-subscription-${dn}qos1\n`,
    ]) {
      expect(re.test(q)).toBe(false);
    }
    expect(p.clientIds).toEqual([dn]);
    expect(new RegExp(p.clientIdPattern).test(dn)).toBe(true);
    expect(new RegExp(p.clientIdPattern).test(other)).toBe(false);
  });

  it("fits queue names only up to RabbitMQ's 255 bytes", () => {
    // 255 - "mqtt-subscription-".length - "qos1".length = 233 bytes of client id.
    expect(clientIdFitsQueueNames("x".repeat(233))).toBe(true);
    expect(clientIdFitsQueueNames("x".repeat(234))).toBe(false);
    expect(clientIdFitsQueueNames("é".repeat(117))).toBe(false); // 234 bytes in UTF-8
  });
});
