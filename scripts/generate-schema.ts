/**
 * Writes what the config schemas generate: schema/stack-config.schema.json (core/config-json-schema.ts)
 * and the README's config tables (core/config-docs.ts), between their markers.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { renderConfigTables, type ConfigTableSpec } from "../core/config-docs";
import { stackConfigJsonSchema, stackConfigKeys } from "../core/config-json-schema";

export const SCHEMA_FILE = path.join(__dirname, "../schema/stack-config.schema.json");
export const README_FILE = path.join(__dirname, "../README.md");

/** The README's config tables: each a part of the stack config, another table's keys left out. */
export const CONFIG_TABLES: readonly ConfigTableSpec[] = [
  { name: "platform", root: "platform", stopAt: ["broker.tokens.issuer"] },
  { name: "platform-keys", root: "", keys: ["stackType", "pkiCaCertificate", "pkiCaPrivateKey"] },
  {
    name: "tenant",
    root: "",
    keys: ["stackType", "broker", "brokerPassword", "identityPasswords", "tenant"],
    stopAt: ["tenant.apps", "tenant.identities[].certificate.subject"],
  },
  { name: "token-issuer", root: "platform.broker.tokens.issuer" },
  { name: "token-app", root: "tenant.apps[]" },
];

export function renderedSchema(): string {
  return `${JSON.stringify(stackConfigJsonSchema("rabbitmq-mqtt"), null, 2)}\n`;
}

export function renderedReadme(readme: string): string {
  return renderConfigTables(readme, stackConfigKeys(), CONFIG_TABLES);
}

if (require.main === module) {
  mkdirSync(path.dirname(SCHEMA_FILE), { recursive: true });
  writeFileSync(SCHEMA_FILE, renderedSchema());
  console.log(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}`);
  writeFileSync(README_FILE, renderedReadme(readFileSync(README_FILE, "utf8")));
  console.log(`wrote the config tables of ${path.relative(process.cwd(), README_FILE)}`);
}
