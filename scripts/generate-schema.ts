/** Writes schema/stack-config.schema.json from the config schemas (core/config-json-schema.ts). */
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { stackConfigJsonSchema } from "../core/config-json-schema";

export const SCHEMA_FILE = path.join(__dirname, "../schema/stack-config.schema.json");

export function renderedSchema(): string {
  return `${JSON.stringify(stackConfigJsonSchema("rabbitmq-mqtt"), null, 2)}\n`;
}

if (require.main === module) {
  mkdirSync(path.dirname(SCHEMA_FILE), { recursive: true });
  writeFileSync(SCHEMA_FILE, renderedSchema());
  console.log(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}`);
}
