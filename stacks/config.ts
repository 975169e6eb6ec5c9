/**
 * Reading structured stack config before any resource exists: raw text (secret or not, never
 * logged), parsed as JSON, with errors that name the key and never echo a secret.
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../core/errors";

/** Reads a config value as raw JSON text, secret or not, without logging it. */
export function rawConfig(key: string): string | undefined {
  return pulumi.runtime.getConfig(`${pulumi.getProject()}:${key}`);
}

export function parseJsonConfig(key: string, text: string | undefined, secret: boolean): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Plain strings are not JSON; report without echoing a secret.
    throw new ConfigError([
      { key, message: `must be an object${secret ? "" : ` (got ${JSON.stringify(text.slice(0, 60))})`}; set it with pulumi config set --path ${secret ? "--secret " : ""}'${key}.<name>' <value>` },
    ]);
  }
}

