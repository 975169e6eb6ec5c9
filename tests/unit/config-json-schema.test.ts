/**
 * The JSON Schema for stack files (schema/stack-config.schema.json) is generated from the zod
 * config schemas and committed for editors: it must be what those schemas generate now (run
 * `npm run generate:schema` after changing them), accept every shipped stack file and refuse the
 * mistakes the config parsers refuse.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import Ajv2020 from "ajv/dist/2020";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { SCHEMA_FILE, renderedSchema } from "../../scripts/generate-schema";

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
