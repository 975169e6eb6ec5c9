/**
 * A JSON Schema for `Pulumi.<stack>.yaml`, generated from the zod schemas that validate stack
 * config (core/tenant-config.ts, core/platform-config.ts, core/broker-connection.ts), so that an
 * editor with a YAML language server can complete and check a stack file as it is written. The
 * zod schemas stay the one source of truth: `npm run generate:schema` writes
 * schema/stack-config.schema.json and tests/unit/config-json-schema.test.ts fails when the
 * committed file differs from what these schemas generate.
 *
 * The schema describes the input (what a stack file may say, defaults as defaults). A few checks
 * only the parsers make (cross-field rules, registry files, certificate contents) are not in it:
 * the stack's own validation still runs at `pulumi preview`.
 */
import { z } from "zod";
import { BROKER_KEY, BROKER_PASSWORD_KEY, brokerConnectionSchema } from "./broker-connection";
import { PKI_CA_CERTIFICATE_KEY, PKI_CA_PRIVATE_KEY_KEY, PLATFORM_KEY, brokerConfigSchema, pkiConfigSchema, platformConfigSchema } from "./platform-config";
import { IDENTITY_PASSWORDS_KEY, TENANT_KEY, tenantConfigSchema } from "./tenant-config";

type Json = Record<string, unknown>;

function inputSchema(schema: z.ZodType): Json {
  const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any", target: "draft-2020-12" }) as Json;
  delete json["$schema"];
  return json;
}

/** A value the Pulumi CLI stores encrypted (`pulumi config set --secret`). */
const SECURE: Json = {
  type: "object",
  description: "A secret, as `pulumi config set --secret` stores it.",
  properties: { secure: { type: "string" } },
  required: ["secure"],
  additionalProperties: false,
};

export function stackConfigJsonSchema(project: string): Json {
  const platform = inputSchema(platformConfigSchema);
  const platformProps = platform["properties"] as Json;
  platformProps["broker"] = inputSchema(brokerConfigSchema);
  platformProps["pki"] = inputSchema(pkiConfigSchema);
  const key = (k: string) => `${project}:${k}`;
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: `Pulumi.<stack>.yaml of project ${project}`,
    type: "object",
    properties: {
      config: {
        type: "object",
        properties: {
          [key("stackType")]: { type: "string", enum: ["platform", "tenant"], default: "tenant" },
          [key(PLATFORM_KEY)]: platform,
          [key(PKI_CA_CERTIFICATE_KEY)]: { type: "string", description: "The platform's own CA certificate (PEM), instead of one the stack makes." },
          [key(PKI_CA_PRIVATE_KEY_KEY)]: SECURE,
          [key(TENANT_KEY)]: inputSchema(tenantConfigSchema),
          [key(IDENTITY_PASSWORDS_KEY)]: SECURE,
          [key(BROKER_KEY)]: inputSchema(brokerConnectionSchema),
          [key(BROKER_PASSWORD_KEY)]: SECURE,
        },
      },
    },
  };
}
