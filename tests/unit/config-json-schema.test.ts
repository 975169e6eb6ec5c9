/**
 * The JSON Schema for stack files (schema/stack-config.schema.json) and the README's config tables
 * are generated from the zod config schemas and committed: they must be what those schemas
 * generate now (run `npm run generate:schema` after changing them). The JSON Schema must accept
 * every shipped stack file and refuse the mistakes the config parsers refuse; the tables must show
 * as defaults what the parsers fill in.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import Ajv2020 from "ajv/dist/2020";
import { parse, parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { configRows, renderConfigTables, type ConfigTableSpec } from "../../core/config-docs";
import { stackConfigKeys } from "../../core/config-json-schema";
import { brokerConfigSchema, pkiConfigSchema, platformConfigSchema } from "../../core/platform-config";
import { tenantConfigSchema } from "../../core/tenant-config";
import { CONFIG_TABLES, README_FILE, SCHEMA_FILE, renderedReadme, renderedSchema } from "../../scripts/generate-schema";

const ROOT = path.join(__dirname, "../..");
const STACKS = ["dev", "platform-prod", "acme", "globex"];
const stackFile = (stack: string) => parse(readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };

function validator() {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  return ajv.compile(JSON.parse(readFileSync(SCHEMA_FILE, "utf8")) as object);
}

describe("the stack-file JSON Schema", () => {
  it("is what the config schemas generate (no drift: run npm run generate:schema)", () => {
    expect(readFileSync(SCHEMA_FILE, "utf8")).toBe(renderedSchema());
  });

  it("accepts every shipped stack file", () => {
    const validate = validator();
    for (const stack of STACKS) {
      const ok = validate(stackFile(stack));
      expect(ok ? [] : validate.errors, stack).toEqual([]);
    }
  });

  it("refuses what the parsers refuse: an unknown key, a wrong type, a bad name, a plain-text secret", () => {
    const validate = validator();
    const acme = stackFile("acme");
    const tenant = acme.config["rabbitmq-mqtt:tenant"] as Record<string, unknown>;
    const cases: [string, unknown][] = [
      ["an unknown tenant key", { config: { ...acme.config, "rabbitmq-mqtt:tenant": { ...tenant, identites: [] } } }],
      ["limits as a string", { config: { ...acme.config, "rabbitmq-mqtt:tenant": { ...tenant, limits: "1000" } } }],
      ["a tenant name with a capital", { config: { ...acme.config, "rabbitmq-mqtt:tenant": { ...tenant, name: "Acme" } } }],
      ["a plain-text broker password", { config: { ...acme.config, "rabbitmq-mqtt:brokerPassword": "hunter2" } }],
    ];
    const dev = stackFile("dev");
    const platform = dev.config["rabbitmq-mqtt:platform"] as Record<string, unknown>;
    cases.push(["an unknown stack type", { config: { ...dev.config, "rabbitmq-mqtt:stackType": "broker" } }]);
    cases.push(["a broker setting that does not exist", { config: { ...dev.config, "rabbitmq-mqtt:platform": { ...platform, broker: { ...(platform["broker"] as object), tunning: {} } } } }]);
    for (const [what, doc] of cases) expect(validate(doc), what).toBe(false);
  });
});

describe("the README's config tables", () => {
  const readme = readFileSync(README_FILE, "utf8");
  const keys = stackConfigKeys();

  it("are what the config schemas generate (no drift: run npm run generate:schema)", () => {
    expect(renderedReadme(readme)).toBe(readme);
  });

  it("fail the drift check when a schema's description changes", () => {
    const changed = structuredClone(keys);
    const tenant = (changed["properties"] as Record<string, { properties: Record<string, { description?: string }> }>)["tenant"];
    if (tenant?.properties["protect"] === undefined) throw new Error("no tenant.protect in the schema");
    tenant.properties["protect"].description = "changed";
    expect(renderConfigTables(readme, changed, CONFIG_TABLES)).not.toBe(readme);
  });

  it("give every key a rule, and each key once per table", () => {
    for (const spec of CONFIG_TABLES) {
      const rows = configRows(keys, spec);
      expect(rows.length, spec.name).toBeGreaterThan(2);
      expect(rows.filter((r) => r.rule === "").map((r) => r.key), spec.name).toEqual([]);
      expect(new Set(rows.map((r) => r.key)).size, spec.name).toBe(rows.length);
    }
  });

  it("read type, default and limits from the schema", () => {
    const platform = configRows(keys, CONFIG_TABLES.find((t) => t.name === "platform") ?? CONFIG_TABLES[0]!);
    const row = (k: string) => platform.find((r) => r.key === k);
    expect(row("nodes")).toMatchObject({ type: "int", default: "`1`" });
    expect(row("nodes")?.rule).toMatch(/^1–9; /);
    expect(row("broker.listeners.amqps")).toMatchObject({ type: "int or null", default: "`null`" });
    expect(row("pki.key.rsaBits")).toMatchObject({ type: "int", default: "`3072`" });
    expect(row("pki.key.rsaBits")?.rule).toMatch(/^one of `2048`, `3072`, `4096`/);
    // The issuer's keys are the issuer table's: only its row is here.
    expect(row("broker.tokens.issuer")).toBeDefined();
    expect(platform.some((r) => r.key.startsWith("broker.tokens.issuer."))).toBe(false);
  });

  it("show as defaults exactly what the parsers fill in (each default is declared once, in the schema)", () => {
    // Optional parts are set (empty where they may be), so their keys get their defaults.
    const platformRaw = { target: "docker", image: "rabbitmq:4.0.5-management", broker: { version: "4.0.5", tokens: { signingKeys: ["k1"], issuer: {} } } };
    const platform = { ...platformConfigSchema.parse(platformRaw), broker: brokerConfigSchema.parse(platformRaw.broker), pki: pkiConfigSchema.parse({}) };
    const tenant = tenantConfigSchema.parse({ name: "t", identities: [{ name: "a", kind: "app", role: "c2b" }], subscriptionQueues: {} });
    const checked: string[] = [];
    const compare = (spec: ConfigTableSpec, parsed: Record<string, unknown>) => {
      for (const r of configRows(keys, spec)) {
        if (r.default === "—" || r.default === "required" || r.key.includes("[]")) continue;
        const value = r.key.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], parsed);
        // Read as a stack file would read it: "1.29" must stay a string, not become 1.29.
        expect(parseYaml(r.default.replace(/^`|`$/g, "")), r.key).toEqual(value);
        checked.push(r.key);
      }
    };
    compare(CONFIG_TABLES.find((t) => t.name === "platform")!, platform);
    compare(CONFIG_TABLES.find((t) => t.name === "token-issuer")!, platform.broker.tokens?.issuer ?? {});
    compare({ name: "tenant-only", root: "", keys: ["tenant"] }, { tenant });
    expect(checked).toContain("broker.listeners.mqtts");
    expect(checked).toContain("kubernetes.version");
    expect(checked).toContain("replicas");
    expect(checked).toContain("tenant.identityLimits.maxClientIds");
    expect(checked.length).toBeGreaterThan(40);
  });

  it("say which keys are required, and stop where another table takes over only at a key that exists", () => {
    const platform = configRows(keys, CONFIG_TABLES.find((t) => t.name === "platform")!);
    const def = (k: string) => platform.find((r) => r.key === k)?.default;
    expect([def("target"), def("image"), def("broker.version"), def("broker.tokens.signingKeys")]).toEqual(["required", "required", "required", "required"]);
    expect([def("kubernetes.storageClass"), def("pki.ca.organization"), def("broker.tokens")]).toEqual(["—", "—", "—"]);
    expect(() => configRows(keys, { name: "x", root: "platform", stopAt: ["broker.tokenz"] })).toThrow(/no key broker\.tokenz to stop at/);
  });

  it("refuse a README without a table's marker", () => {
    expect(() => renderConfigTables("# no tables", keys, CONFIG_TABLES)).toThrow(/no marker <!-- config-table:platform/);
  });
});
