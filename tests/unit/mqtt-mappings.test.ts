import { describe, expect, it } from "vitest";
import { checkMappingEntry, lockDeclarationOutcome, ownedView, planMappingChange } from "../../core/mqtt-mappings";

describe("planMappingChange", () => {
  const others = { "CN=dev9,O=globex": "globex", "1885": "globex" };

  it("create adds this stack's entries and keeps everyone else's", () => {
    const plan = planMappingChange(others, {}, { "CN=dev1,O=acme": "acme" });
    expect(plan).toEqual({ next: { ...others, "CN=dev1,O=acme": "acme" }, conflicts: [], changed: true });
  });

  it("update changes, adds and removes only this stack's entries", () => {
    const current = { ...others, a: "acme", b: "acme" };
    const plan = planMappingChange(current, { a: "acme", b: "acme" }, { a: "acme2", c: "acme" });
    expect(plan.next).toEqual({ ...others, a: "acme2", c: "acme" });
    expect(plan.conflicts).toEqual([]);
  });

  it("delete removes only this stack's entries", () => {
    const plan = planMappingChange({ ...others, a: "acme" }, { a: "acme" }, {});
    expect(plan.next).toEqual(others);
  });

  it("refuses to take an entry another stack holds with another vhost", () => {
    const plan = planMappingChange(others, {}, { "CN=dev9,O=globex": "acme" });
    expect(plan.conflicts).toEqual([{ key: "CN=dev9,O=globex", desired: "acme", current: "globex" }]);
    expect(plan.next).toEqual(others);
  });

  it("adopts an entry that already has the desired value (a retried create)", () => {
    const plan = planMappingChange({ a: "acme" }, {}, { a: "acme" });
    expect(plan).toEqual({ next: { a: "acme" }, conflicts: [], changed: false });
  });

  it("does not delete an entry someone else changed since this stack wrote it", () => {
    const plan = planMappingChange({ a: "globex" }, { a: "acme" }, {});
    expect(plan.next).toEqual({ a: "globex" });
  });

  it("writes other keys back as they are, whatever their values", () => {
    const current = { other: 5, nested: { vhost: "x" }, a: "acme" };
    expect(planMappingChange(current, { a: "acme" }, { b: "acme" }).next).toEqual({ other: 5, nested: { vhost: "x" }, b: "acme" });
  });

  it("keeps __proto__ as a plain key", () => {
    const plan = planMappingChange({}, {}, JSON.parse('{"__proto__": "acme"}') as Record<string, string>);
    expect(Object.keys(plan.next)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(plan.next)).toBe(Object.prototype);
  });
});

describe("ownedView", () => {
  it("shows what this stack's keys hold now (drift), omitting removed ones", () => {
    expect(ownedView({ a: "x", b: "changed", c: "other" }, ["a", "b", "gone"])).toEqual({ a: "x", b: "changed" });
  });
});

describe("checkMappingEntry", () => {
  it.each([
    ["mqtt_port_to_vhost_mapping", "1884", "acme", undefined],
    ["mqtt_port_to_vhost_mapping", "0", "acme", /TCP port/],
    ["mqtt_port_to_vhost_mapping", "65536", "acme", /TCP port/],
    ["mqtt_port_to_vhost_mapping", "01884", "acme", /TCP port/],
    ["mqtt_port_to_vhost_mapping", "1884", "Acme", /not a tenant vhost name/],
    ["mqtt_default_vhosts", "CN=dev1,O=acme,C=US", "acme", undefined],
    ["mqtt_default_vhosts", " CN=dev1", "acme", /surrounding spaces/],
    ["mqtt_default_vhosts", "", "acme", /1-1024/],
  ] as const)("%s %j -> %j", (param, key, vhost, expected) => {
    const r = checkMappingEntry(param, key, vhost);
    if (expected === undefined) expect(r).toBeUndefined();
    else expect(r).toMatch(expected);
  });
});

describe("lockDeclarationOutcome", () => {
  it("takes the lock when the queue was declared", () => {
    expect(lockDeclarationOutcome(201, "")).toBe("taken");
    expect(lockDeclarationOutcome(204, "")).toBe("taken");
  });

  it("waits while another holder's lock queue exists, or is being deleted (4.x answers 404 for a moment)", () => {
    expect(lockDeclarationOutcome(400, "inequivalent arg 'x-max-length' for queue 'rabbitmq-mqtt.lock.mqtt_default_vhosts' in vhost '/': received the value '7' of type 'signedint' but current is none")).toBe("held");
    // Seen on 4.0.5 while 8 processes took and released the lock at once.
    expect(
      lockDeclarationOutcome(404, "home node 'e2e-24898-f291c38b@localhost' of durable queue 'rabbitmq-mqtt.lock.mqtt_port_to_vhost_mapping' in vhost '/' is down or inaccessible"),
    ).toBe("held");
  });

  it("gives up on anything retrying will not cure", () => {
    expect(lockDeclarationOutcome(404, "vhost_not_found")).toBe("fatal");
    expect(lockDeclarationOutcome(401, "Not_Authorized")).toBe("fatal");
    expect(lockDeclarationOutcome(400, "precondition_failed")).toBe("fatal");
  });
});
