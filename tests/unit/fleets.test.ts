/**
 * Device fleets' pure core (core/fleets.ts, core/fleet-template.ts): a device class compiled once,
 * each device's permissions rendered from it exactly as if its own grants had been compiled, and
 * the registry file validated line by line, naming file and line.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEVICE_TOKEN, TOKEN_MARK, USER_TOKEN, renderDevice } from "../../core/fleet-template";
import { compileFleetClass, deviceFingerprint, hashDevicePassword, parseRegistry, planFleet, summarizePlan, type FleetClass } from "../../core/fleets";
import { fleetSchema, parseTenantConfig } from "../../core/tenant-config";
import type { ConfigError, ConfigIssue } from "../../core/errors";
import { NAME_PATTERN } from "../../core/names";
import { clientIds, compilePermissions } from "../../core/permissions";
import { bindFilter, parseTopicFilter } from "../../core/topics";

function cls(raw: Record<string, unknown>): { cls?: FleetClass; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const cfg = fleetSchema.parse({ name: "thermostats", role: "c2b", registry: "fleets/acme-thermostats.jsonl", ...raw });
  const c = compileFleetClass("acme", cfg, "tenant.fleets[0]", issues);
  return { ...(c ? { cls: c } : {}), issues };
}

const HASH = hashDevicePassword("device-password-0001", Buffer.from([1, 2, 3, 4]));
const line = (o: Record<string, unknown>) => JSON.stringify(o);

describe("a fleet's device class", () => {
  it("renders each device's permissions exactly as compiling that device's own grants would", () => {
    const grants = { publish: ["activity/{user}/{device}/+"], subscribe: ["client/{device}/#"] };
    const { cls: c, issues } = cls({ grants, limits: { maxClientIds: 2 } });
    expect(issues).toEqual([]);
    const name = fc.stringMatching(NAME_PATTERN);
    const user = fc.stringMatching(/^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,20}[A-Za-z0-9])?$/);
    fc.assert(
      fc.property(name, user, (n, u) => {
        const values = { identity: n, user: u, tenant: "acme" };
        const direct = compilePermissions(
          {
            publish: grants.publish.map((g) => bindFilter(parseTopicFilter(g.replace("{device}", "{identity}")), values)),
            subscribe: grants.subscribe.map((g) => bindFilter(parseTopicFilter(g.replace("{device}", "{identity}")), values)),
          },
          clientIds(n, 2),
        );
        const r = renderDevice(c!.template, n, u);
        expect(r).toEqual({
          username: `${n}@acme`,
          configure: direct.vhost.configure,
          write: direct.vhost.write,
          read: direct.vhost.read,
          exchange: "amq.topic",
          topicWrite: direct.topic.write,
          topicRead: direct.topic.read,
          queues: direct.queues,
        });
        expect(JSON.stringify(r)).not.toContain(TOKEN_MARK);
      }),
      { numRuns: 300 },
    );
  });

  it("gives no device another device's topics or queues", () => {
    const { cls: c } = cls({ role: "b2b", grants: { publish: ["activity/{device}/+"], subscribe: ["client/{device}/#"] } });
    const a = renderDevice(c!.template, "dev-1", undefined);
    const b = renderDevice(c!.template, "dev-10", undefined);
    expect(new RegExp(a.topicRead).test("client.dev-1.cmd")).toBe(true);
    expect(new RegExp(a.topicRead).test("client.dev-10.cmd")).toBe(false);
    expect(new RegExp(b.topicRead).test("client.dev-1.cmd")).toBe(false);
    expect(new RegExp(a.topicWrite).test("activity.dev-10.x")).toBe(false);
    expect(new RegExp(a.configure).test("mqtt-subscription-dev-1qos1")).toBe(true);
    expect(new RegExp(a.configure).test("mqtt-subscription-dev-10qos1")).toBe(false);
    expect(a.queues).toEqual(["mqtt-subscription-dev-1qos0", "mqtt-subscription-dev-1qos1", "mqtt-will-dev-1"]);
  });

  it("takes the role's default grants: c2b then needs a user on every device", () => {
    const { cls: c } = cls({});
    expect(c!.template.usesUser).toBe(true);
    expect(() => renderDevice(c!.template, "dev-1", undefined)).toThrow(/has no user/);
    expect(new RegExp(renderDevice(c!.template, "dev-1", "home-42").topicWrite).test("activity.home-42.telemetry")).toBe(true);
  });

  it("refuses grants wider than the role, unknown placeholders and the reserved token", () => {
    expect(cls({ grants: { subscribe: ["client/#"] } }).issues).toEqual([
      { key: "tenant.fleets[0].grants.subscribe[0]", message: "'client/#' is wider than role c2b allows for subscribe: it must lie within client/{device}/#" },
    ]);
    expect(cls({ grants: { subscribe: ["client/{client}/#"] } }).issues[0]?.message).toMatch(/unknown placeholder '\{client\}'/);
    expect(cls({ grants: { subscribe: [`client/{device}/${DEVICE_TOKEN}`] } }).issues[0]?.message).toMatch(/reserved/);
    expect(cls({ grants: { subscribe: [`client/{device}/${USER_TOKEN}`] } }).issues[0]?.message).toMatch(/reserved/);
    expect(cls({ role: "admin" }).issues[0]).toMatchObject({ key: "tenant.fleets[0].role" });
  });

  it("takes only registry paths inside the project", () => {
    for (const registry of ["/etc/passwd.jsonl", "../other/fleet.jsonl", "fleets/../../x.jsonl", "fleets/a.csv", "fleets/a b.jsonl"]) {
      expect(fleetSchema.safeParse({ name: "f", role: "c2b", registry }).success, registry).toBe(false);
    }
    expect(fleetSchema.safeParse({ name: "f", role: "c2b", registry: "fleets/acme/thermostats.jsonl" }).success).toBe(true);
  });
});

describe("a fleet's registry file", () => {
  const c = cls({ role: "b2b", grants: { publish: ["activity/{device}/+"], subscribe: ["client/{device}/#"] } }).cls!;
  const parse = (text: string, taken = new Map<string, string>()) => {
    const issues: ConfigIssue[] = [];
    const devices = parseRegistry(text, "fleets/acme-thermostats.jsonl", c, taken, issues);
    return { devices, issues };
  };

  it("takes one device a line", () => {
    const r = parse(`${line({ name: "t-1", passwordHash: HASH })}\n${line({ name: "t-2", passwordHash: HASH, user: "home-1" })}\n`);
    expect(r.issues).toEqual([]);
    expect(r.devices).toEqual([{ name: "t-1", passwordHash: HASH }, { name: "t-2", passwordHash: HASH, user: "home-1" }]);
  });

  it.each([
    ["a.*", "name"],
    ["#", "name"],
    ["t-1@globex", "name"],
    ["T-1", "name"],
    ["t/1", "name"],
    ["tëst", "name"],
    ["t-1\n", "name"],
    ["", "name"],
  ])("refuses the hostile name %j before anything is applied, naming file and line", (name, field) => {
    const r = parse(`${line({ name: "ok-1", passwordHash: HASH })}\n${line({ name, passwordHash: HASH })}\n`);
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0]?.key).toBe(`fleets/acme-thermostats.jsonl:2 ${field}`);
  });

  it("refuses a hostile user id, a bad hash, unknown fields, duplicates, taken names and non-JSON, line by line", () => {
    const text = [
      line({ name: "t-1", passwordHash: HASH, user: "*" }),
      line({ name: "t-2", passwordHash: "plain-password" }),
      line({ name: "t-3", passwordHash: HASH, password: "x" }),
      line({ name: "t-4", passwordHash: HASH }),
      line({ name: "t-4", passwordHash: HASH }),
      line({ name: "backend", passwordHash: HASH }),
      "not json",
      "",
    ].join("\n");
    const r = parse(`${text}\n`, new Map([["backend", "identity tenant.identities[1]"]]));
    expect(r.issues.map((i) => i.key)).toEqual([
      "fleets/acme-thermostats.jsonl:1 user",
      "fleets/acme-thermostats.jsonl:2 passwordHash",
      "fleets/acme-thermostats.jsonl:3 (line)",
      "fleets/acme-thermostats.jsonl:5 name",
      "fleets/acme-thermostats.jsonl:6 name",
      "fleets/acme-thermostats.jsonl:7",
      "fleets/acme-thermostats.jsonl:8",
    ]);
    expect(r.issues[3]?.message).toMatch(/duplicate device 't-4' \(also line 4\)/);
    expect(JSON.stringify(r.issues)).not.toContain("plain-password");
    expect(r.devices.map((d) => d.name)).toEqual(["t-4"]);
  });

  it("requires a user on every line when the grants use {user}", () => {
    const issues: ConfigIssue[] = [];
    parseRegistry(`${line({ name: "t-1", passwordHash: HASH })}\n`, "f.jsonl", cls({}).cls!, new Map(), issues);
    expect(issues).toEqual([{ key: "f.jsonl:1 user", message: "required: the fleet's grants use {user}; set the end-user id this device acts for" }]);
  });
});

describe("hashes, fingerprints and plans", () => {
  it("hashes a password the way RabbitMQ's rabbit_password_hashing_sha256 checks it", () => {
    const h = Buffer.from(hashDevicePassword("secret", Buffer.from("abcd")), "base64");
    expect(h.subarray(0, 4).toString()).toBe("abcd");
    // sha256("abcd" ++ "secret"), computed independently (Python's hashlib).
    expect(h.subarray(4).toString("hex")).toBe("7666c73ae7b8a41de64b0128607f4dca586b8ecd01b17935c55abe44d2f26822");
    expect(h.length).toBe(36);
  });

  it("plans only what changed and summarizes it", () => {
    const d = (name: string, pw: string) => ({ name, passwordHash: hashDevicePassword(pw, Buffer.from("salt")) });
    const olds = Object.fromEntries([d("a", "1"), d("b", "2"), d("c", "3")].map((x) => [x.name, deviceFingerprint(x)]));
    const news = Object.fromEntries([d("a", "1"), d("b", "changed"), d("e", "5")].map((x) => [x.name, deviceFingerprint(x)]));
    const plan = planFleet(olds, news);
    expect(plan).toEqual({ added: ["e"], changed: ["b"], removed: ["c"] });
    expect(summarizePlan(plan, 3)).toBe("3 devices: 1 added (e); 1 changed (b); 1 removed (c)");
    expect(summarizePlan(planFleet(news, news), 3)).toBe("3 devices, no change");
  });
});

describe("tenant.fleets in stack config", () => {
  const tenant = (fleets: unknown[]) => ({
    name: "acme",
    identities: [{ name: "backend", kind: "service", role: "b2b", grants: { subscribe: ["#"] } }],
    fleets,
  });
  const keysOf = (fleets: unknown[], read: (f: string) => string = () => "") => {
    try {
      parseTenantConfig(tenant(fleets), {}, read);
      return [];
    } catch (e) {
      return (e as ConfigError).issues.map((i) => `${i.key}: ${i.message}`);
    }
  };
  const ok = { name: "t", role: "c2b", registry: "fleets/t.jsonl" };

  it("refuses bad limits, certificate auth without a tenant port, unknown keys and duplicate fleets, naming the key", () => {
    expect(keysOf([{ ...ok, limits: { maxConnections: 0 } }])).toEqual(["tenant.fleets[0].limits.maxConnections: must be at least 1"]);
    expect(keysOf([{ ...ok, limits: { maxChannels: 5000 } }])).toEqual(["tenant.fleets[0].limits.maxChannels: must be at most 2047"]);
    expect(keysOf([{ ...ok, limits: { maxClientIds: 65 } }])).toEqual(["tenant.fleets[0].limits.maxClientIds: must be at most 64"]);
    expect(keysOf([{ ...ok, auth: "certificate" }])[0]).toMatch(/^tenant\.fleets\[0\]\.auth: a certificate fleet's devices log in on the tenant's own MQTT-over-TLS port.*set tenant\.mqttPorts/);
    expect(keysOf([{ ...ok, auth: "token" }])).toEqual(["tenant.fleets[0].auth: must be one of: password, certificate"]);
    expect(keysOf([{ ...ok, devices: [] }])[0]).toMatch(/^tenant\.fleets\[0\]: /);
    expect(keysOf([{ ...ok, name: "T.1" }])[0]).toMatch(/^tenant\.fleets\[0\]\.name: "T\.1" is not allowed/);
    expect(keysOf([ok, ok])).toEqual(["tenant.fleets[1].name: duplicate fleet 't' (also tenant.fleets[0])"]);
  });

  it("names the registry key when the file cannot be read", () => {
    const missing = () => {
      throw new Error("ENOENT: no such file or directory");
    };
    expect(keysOf([ok], missing)).toEqual(["tenant.fleets[0].registry: cannot read fleets/t.jsonl: ENOENT: no such file or directory"]);
  });
});
