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
function secret(description: string): Json {
  return {
    type: "object",
    description,
    properties: { secure: { type: "string" } },
    required: ["secure"],
    additionalProperties: false,
  };
}

/** The stack config's keys, without the project prefix: what the README's tables list. */
export function stackConfigKeys(): Json {
  const platform = inputSchema(platformConfigSchema);
  const platformProps = platform["properties"] as Json;
  platformProps["broker"] = inputSchema(brokerConfigSchema);
  platformProps["pki"] = inputSchema(pkiConfigSchema);
  return {
    type: "object",
    properties: {
      stackType: { type: "string", enum: ["platform", "tenant"], default: "tenant", description: "which program the stack runs: the broker platform or one tenant" },
      [PLATFORM_KEY]: platform,
      [PKI_CA_CERTIFICATE_KEY]: { type: "string", description: "with platform.pki.ca.source import: the platform's own CA certificate (PEM), instead of one the stack makes" },
      [PKI_CA_PRIVATE_KEY_KEY]: secret("with platform.pki.ca.source import: that CA's private key (PEM), set with --secret"),
      [BROKER_KEY]: inputSchema(brokerConnectionSchema),
      [BROKER_PASSWORD_KEY]: secret("the admin's password: required with broker.managementUrl, refused with broker.stackReference"),
      [IDENTITY_PASSWORDS_KEY]: secret(
        "a JSON object of identity name to password, 16–128 characters each, only for declared password identities; an identity not in it gets a generated password",
      ),
      [TENANT_KEY]: inputSchema(tenantConfigSchema),
    },
  };
}

export function stackConfigJsonSchema(project: string): Json {
  const keys = stackConfigKeys()["properties"] as Json;
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: `Pulumi.<stack>.yaml of project ${project}`,
    type: "object",
    properties: {
      config: {
        type: "object",
        properties: Object.fromEntries(Object.entries(keys).map(([k, v]) => [`${project}:${k}`, v])),
      },
    },
  };
}
