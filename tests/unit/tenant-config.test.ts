import { describe, expect, it } from "vitest";
import { ConfigError } from "../../core/errors";
import { parseTenantConfig, type TenantConfigInput } from "../../core/tenant-config";

const base = (): TenantConfigInput => ({
  name: "acme",
  identities: [
    { name: "web-app", kind: "app", role: "c2b", user: "u-1001" },
    { name: "backend", kind: "service", role: "b2b", grants: { subscribe: ["activity/+/#"], publish: ["client/+/#"] } },
  ],
});

function issuesOf(raw: unknown, passwords: Record<string, unknown> = {}): { key: string; message: string }[] {
  try {
    parseTenantConfig(raw, passwords);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return [...(e as ConfigError).issues];
  }
  throw new Error("expected a ConfigError");
}

function withIdentity(patch: Record<string, unknown>, index = 0): unknown {
  const cfg = base();
  cfg.identities[index] = { ...cfg.identities[index]!, ...patch };
  return cfg;
}

describe("parseTenantConfig: a valid tenant", () => {
  const model = parseTenantConfig(base());

  it("uses the tenant name as vhost and protects it by default", () => {
    expect(model.vhost).toBe("acme");
    expect(model.protect).toBe(true);
  });

  it("names RabbitMQ users <identity>@<tenant>, so two tenants can share identity names", () => {
    expect(model.identities.map((i) => i.username)).toEqual(["web-app@acme", "backend@acme"]);
  });

  it("gives c2b identities the role's default grants", () => {
    expect(model.identities[0]!.grants).toEqual({ publish: ["activity/{user}/#"], subscribe: ["client/{identity}/#"] });
    expect(model.identities[0]!.permissions.topic).toEqual({
      exchange: "amq.topic",
      write: "^(?:activity\\.u\\-1001(?:\\..*)?)$(?!\\n)",
      read: "^(?:client\\.web\\-app(?:\\..*)?)$(?!\\n)",
    });
  });

  it("merges tenant-wide identity limits with per-identity ones", () => {
    const m = parseTenantConfig({
      ...base(),
      identityLimits: { maxConnections: 5, maxChannels: 10 },
      identities: [{ name: "web-app", kind: "app", role: "c2b", user: "u1", limits: { maxConnections: 2 } }],
    });
    expect(m.identities[0]!.limits).toEqual({ maxConnections: 2, maxChannels: 10, maxClientIds: 4 });
  });

  it("turns the subscription queue policy into milliseconds", () => {
    const m = parseTenantConfig({ ...base(), subscriptionQueues: { expiresSeconds: 3600, maxLength: 100 } });
    expect(m.subscriptionQueues).toEqual({ expiresMs: 3_600_000, maxLength: 100, priority: 0 });
  });

  it("maps dedicated MQTT ports to the tenant's vhost", () => {
    expect(parseTenantConfig({ ...base(), mqttPorts: [1884, 18883] }).portMappings).toEqual({ "1884": "acme", "18883": "acme" });
  });
});

describe("parseTenantConfig: invalid config names the key and the rule", () => {
  it.each([".", "#", "+", "*", "/", ":", "(", ")", "[", "]", "|", "?", "^", "$", "\\", "{", "}", " ", "_", "@"])(
    "rejects an identity name containing %j",
    (ch) => {
      const issues = issuesOf(withIdentity({ name: `dev${ch}1` }));
      expect(issues).toEqual([
        { key: "tenant.identities[0].name", message: expect.stringMatching(/is not allowed: 1-63 characters: lowercase letters, digits and '-'/) },
      ]);
    },
  );

  it.each(["Acme", "-acme", "acme-", "a".repeat(64), "", "acme.prod", "acme:x", "/"])("rejects tenant name %j", (name) => {
    expect(issuesOf({ ...base(), name })).toEqual([
      { key: "tenant.name", message: expect.stringMatching(/is not allowed/) },
    ]);
  });

  it("rejects duplicate identity names, naming both places", () => {
    const cfg = base();
    cfg.identities.push({ name: "web-app", kind: "device", role: "c2b", user: "u2" });
    expect(issuesOf(cfg)).toEqual([
      { key: "tenant.identities[2].name", message: expect.stringMatching(/duplicate identity 'web-app' \(also tenant.identities\[0\]\)/) },
    ]);
  });

  it("rejects an unknown role and lists the known ones", () => {
    expect(issuesOf(withIdentity({ role: "admin" }))).toEqual([
      { key: "tenant.identities[0].role", message: expect.stringMatching(/unknown role 'admin'; known roles: c2b .*; b2b/) },
    ]);
  });

  it("rejects an unknown placeholder in a grant", () => {
    expect(issuesOf(withIdentity({ grants: { subscribe: ["client/{client_id}/#"] } }))).toEqual([
      { key: "tenant.identities[0].grants.subscribe[0]", message: expect.stringMatching(/unknown placeholder '\{client_id\}'/) },
    ]);
  });

  it.each([
    ["subscribe", "client/+/#", "client/{identity}/#"],
    ["subscribe", "client/#", "client/{identity}/#"],
    ["subscribe", "activity/{user}/#", "client/{identity}/#"],
    ["publish", "activity/#", "activity/{user}/#"],
    ["publish", "client/{identity}/x", "activity/{user}/#"],
    ["publish", "#", "activity/{user}/#"],
  ])("rejects a c2b %s grant %j wider than the role allows", (direction, grant, ceiling) => {
    expect(issuesOf(withIdentity({ grants: { [direction]: [grant] } }))).toEqual([
      {
        key: `tenant.identities[0].grants.${direction}[0]`,
        message: `'${grant}' is wider than role c2b allows for ${direction}: it must lie within ${ceiling}`,
      },
    ]);
  });

  it("accepts narrower c2b grants, with literals equal to the identity's own names", () => {
    const m = parseTenantConfig(withIdentity({ grants: { subscribe: ["client/web-app/commands"], publish: ["activity/{user}/+"] } }));
    expect(m.identities[0]!.permissions.topic.read).toBe("^(?:client\\.web\\-app\\.commands)$(?!\\n)");
  });

  it("requires user when a grant uses {user}", () => {
    expect(issuesOf(withIdentity({ user: undefined }))).toEqual([
      { key: "tenant.identities[0].user", message: expect.stringMatching(/required: grant 'activity\/\{user\}\/#' uses \{user\}/) },
    ]);
  });

  it("requires b2b identities to declare grants", () => {
    expect(issuesOf(withIdentity({ grants: undefined }, 1))).toEqual([
      { key: "tenant.identities[1].grants", message: expect.stringMatching(/role b2b has no default grants/) },
    ]);
  });

  it.each([
    [{ limits: { maxConnections: 0 } }, "tenant.limits.maxConnections", "must be at least 1"],
    [{ limits: { maxQueues: 1_000_001 } }, "tenant.limits.maxQueues", "must be at most 1000000"],
    [{ limits: { maxConnections: 1.5 } }, "tenant.limits.maxConnections", "must be a whole number"],
    [{ identityLimits: { maxChannels: 2048 } }, "tenant.identityLimits.maxChannels", "must be at most 2047"],
    [{ identityLimits: { maxConnections: -1 } }, "tenant.identityLimits.maxConnections", "must be at least 1"],
    [{ subscriptionQueues: { expiresSeconds: 1 } }, "tenant.subscriptionQueues.expiresSeconds", "must be at least 60"],
    [{ subscriptionQueues: { maxLength: 0 } }, "tenant.subscriptionQueues.maxLength", "must be at least 1"],
    [{ mqttPorts: [70000] }, "tenant.mqttPorts[0]", "must be at most 65535"],
  ])("rejects out-of-range limits %j", (patch, key, message) => {
    expect(issuesOf({ ...base(), ...patch })).toEqual([{ key, message }]);
  });

  it.each([
    [{ description: "x".repeat(1025) }, "tenant.description"],
    [{ tags: ["ok", "a,b"] }, "tenant.tags[1]"],
    [{ tags: ["x".repeat(65)] }, "tenant.tags[0]"],
    [{ protect: "yes" }, "tenant.protect"],
    [{ identityLimits: { maxClientIds: 0 } }, "tenant.identityLimits.maxClientIds"],
    [{ identityLimits: { maxClientIds: 65 } }, "tenant.identityLimits.maxClientIds"],
    [{ subscriptionQueues: { overflow: "reject-publish-dlx" } }, "tenant.subscriptionQueues.overflow"],
    [{ subscriptionQueues: { priority: 1001 } }, "tenant.subscriptionQueues.priority"],
    [{ subscriptionQueues: { maxLengthBytes: 10 } }, "tenant.subscriptionQueues.maxLengthBytes"],
    [{ mqttPorts: "1884" }, "tenant.mqttPorts"],
    [{ identities: [] }, "tenant.identities"],
  ])("rejects bad tenant field %j, naming %s", (patch, key) => {
    expect(issuesOf({ ...base(), ...patch }).map((i) => i.key)).toEqual([key]);
  });

  it.each([
    [{ kind: "robot" }, "tenant.identities[0].kind", "must be one of: app, device, service"],
    [{ user: "u/1" }, "tenant.identities[0].user", '"u/1" is not allowed: 1-128 characters'],
    [{ user: "u.1" }, "tenant.identities[0].user", '"u.1" is not allowed'],
    [{ limits: { maxClientIds: 100 } }, "tenant.identities[0].limits.maxClientIds", "must be at most 64"],
    [{ grants: { publish: [42] } }, "tenant.identities[0].grants.publish[0]", "must be a string (an MQTT topic filter)"],
    [{ grants: { publish: ["activity/{user}/#"], extra: [] } }, "tenant.identities[0].grants", "extra"],
    [{ description: "x".repeat(257) }, "tenant.identities[0].description", ""],
  ])("rejects bad identity field %j", (patch, key, message) => {
    const issues = issuesOf(withIdentity(patch));
    expect(issues.map((i) => i.key)).toEqual([key]);
    expect(issues[0]!.message).toContain(message);
  });

  it("rejects a per-identity limit out of range", () => {
    expect(issuesOf(withIdentity({ limits: { maxChannels: 0 } }))).toEqual([
      { key: "tenant.identities[0].limits.maxChannels", message: "must be at least 1" },
    ]);
  });

  it("rejects unknown keys (typos) instead of ignoring them", () => {
    const issues = issuesOf({ ...base(), limit: { maxConnections: 5 } });
    expect(issues).toEqual([{ key: "tenant", message: expect.stringMatching(/limit/) }]);
  });

  it("gives a certificate identity the tenant's subject defaults, its own fields, and its user name as CN", () => {
    const model = parseTenantConfig({
      ...base(),
      certificates: { subject: { country: "US", organizationalUnit: "devices" } },
      identities: [
        { name: "dev-1", kind: "device", role: "c2b", user: "u-1", auth: "certificate", certificate: { subject: { organizationalUnit: "thermostats", serialNumber: "TH-1" } } },
      ],
    });
    const id = model.identities[0]!;
    expect(id.certificate?.subject).toEqual({ organization: "acme", country: "US", organizationalUnit: "thermostats", serialNumber: "TH-1", commonName: "dev-1@acme" });
    expect(id.certificate?.loginNames).toEqual({
      distinguished_name: "SERIALNUMBER=TH-1,CN=dev-1@acme,OU=thermostats,O=acme,C=US",
      common_name: "dev-1@acme",
    });
    expect(model.certificates).toEqual({ key: { algorithm: "ECDSA", rsaBits: 3072, ecdsaCurve: "P256" }, validityHours: 8760, earlyRenewalHours: 720 });
  });

  it("refuses a street address in the tenant-wide subject defaults too", () => {
    const issues = issuesOf({ ...base(), certificates: { subject: { streetAddresses: ["1 Main St"] } } });
    expect(issues.map((i) => i.key)).toEqual(["tenant.certificates.subject.streetAddresses"]);
  });

  it("gives a certificate identity one client id, its DN, and grants exactly that client id's session queues", () => {
    const model = parseTenantConfig({
      ...base(),
      identityLimits: { maxClientIds: 8 },
      identities: [{ name: "dev-1", kind: "device", role: "c2b", user: "u-1", auth: "certificate", certificate: { subject: { serialNumber: "TH-1" } } }],
    });
    const id = model.identities[0]!;
    const dn = "SERIALNUMBER=TH-1,CN=dev-1@acme,O=acme";
    expect(id.permissions.clientIds).toEqual([dn]);
    expect(id.limits.maxClientIds).toBe(1);
    expect(id.permissions.queues).toEqual([`mqtt-subscription-${dn}qos0`, `mqtt-subscription-${dn}qos1`, `mqtt-will-${dn}`]);
    expect(new RegExp(id.permissions.vhost.configure).test("mqtt-subscription-dev-1qos1")).toBe(false);
  });

  it("escapes RFC 4514 characters of subject fields in the login name", () => {
    const model = parseTenantConfig({
      ...base(),
      identities: [{ name: "dev-1", kind: "device", role: "c2b", user: "u-1", auth: "certificate", certificate: { subject: { organization: "Acme, Inc.+Co" } } }],
    });
    expect(model.identities[0]?.certificate?.loginNames.distinguished_name).toBe("CN=dev-1@acme,O=Acme\\, Inc.\\+Co");
  });

  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ["a common name", { auth: "certificate", certificate: { subject: { commonName: "other@globex" } } }, "tenant.identities[0].certificate.subject.commonName", /always the identity's user name/],
    ["a certificate on a password identity", { certificate: { subject: {} } }, "tenant.identities[0].certificate", /only for auth: certificate/],
    ["a bad country", { auth: "certificate", certificate: { subject: { country: "USA" } } }, "tenant.identities[0].certificate.subject", /country must be a two-letter/],
    ["a control character", { auth: "certificate", certificate: { subject: { organizationalUnit: "a\nb" } } }, "tenant.identities[0].certificate.subject", /control character/],
    // The broker's name for these depends on the Erlang release (4.3 on OTP 29 differs).
    ["a street address", { auth: "certificate", certificate: { subject: { streetAddresses: ["1 Main St"] } } }, "tenant.identities[0].certificate.subject.streetAddresses", /differs between Erlang releases/],
    ["a postal code", { auth: "certificate", certificate: { subject: { postalCode: "94105" } } }, "tenant.identities[0].certificate.subject.postalCode", /differs between Erlang releases/],
    ["an explicit client id count", { auth: "certificate", limits: { maxClientIds: 2 } }, "tenant.identities[0].limits.maxClientIds", /only MQTT client id is its certificate's subject DN/],
    [
      "a subject too long to name its session queue",
      { auth: "certificate", certificate: { subject: { organizationalUnit: "u".repeat(64), locality: "l".repeat(64), province: "p".repeat(64), organization: "o".repeat(40) } } },
      "tenant.identities[0].certificate.subject",
      /255-byte queue names/,
    ],
  ])("refuses %s", (_label, fields, key, message) => {
    const issues = issuesOf(withIdentity(fields));
    expect(issues.map((i) => i.key)).toEqual([key]);
    expect(issues[0]?.message).toMatch(message);
  });

  it("refuses a certificate renewal window as long as the validity, and unknown key types", () => {
    expect(issuesOf({ ...base(), certificates: { validityHours: 48, earlyRenewalHours: 48 } }).map((i) => i.key)).toEqual(["tenant.certificates.earlyRenewalHours"]);
    expect(issuesOf({ ...base(), certificates: { key: { algorithm: "ED448" } } }).map((i) => i.key)).toEqual(["tenant.certificates.key.algorithm"]);
  });

  it("takes no password for a certificate identity", () => {
    expect(() => parseTenantConfig({ ...base(), identities: [{ name: "dev-1", kind: "device", role: "c2b", user: "u-1", auth: "certificate" }] }, { "dev-1": "x".repeat(20) })).toThrow(
      /identityPasswords\.dev-1: identity 'dev-1' uses certificate auth and takes no password/,
    );
  });

  it.each([1883, 8883, 5672, 15672, 15675, 25672, 4369])("rejects the standard broker port %i as a tenant's dedicated port", (port) => {
    expect(issuesOf({ ...base(), mqttPorts: [port] })).toEqual([
      { key: "tenant.mqttPorts[0]", message: expect.stringMatching(new RegExp(`^port ${port} is RabbitMQ's standard .* port, shared by every tenant`)) },
    ]);
  });

  it("rejects a port listed twice", () => {
    expect(issuesOf({ ...base(), mqttPorts: [1884, 1884] })).toEqual([
      { key: "tenant.mqttPorts[1]", message: "port 1884 is listed twice" },
    ]);
  });

  it("reports every problem at once", () => {
    const cfg = base();
    cfg.identities[0] = { ...cfg.identities[0]!, role: "nope" };
    cfg.identities.push({ name: "backend", kind: "service", role: "b2b", grants: { publish: ["x"] } });
    expect(issuesOf(cfg).map((i) => i.key)).toEqual(["tenant.identities[0].role", "tenant.identities[2].name"]);
  });
});

describe("parseTenantConfig: identityPasswords", () => {
  it("rejects a password for an unknown identity", () => {
    expect(issuesOf(base(), { ghost: "x".repeat(20) })).toEqual([
      { key: "identityPasswords.ghost", message: "no identity 'ghost' in tenant.identities; remove it or fix the name" },
    ]);
  });

  it("rejects a short password without echoing it", () => {
    const issues = issuesOf(base(), { "web-app": "hunter2" });
    expect(issues).toEqual([{ key: "identityPasswords.web-app", message: "must be a string of 16-128 characters (set it with --secret)" }]);
    expect(JSON.stringify(issues)).not.toContain("hunter2");
  });
});
