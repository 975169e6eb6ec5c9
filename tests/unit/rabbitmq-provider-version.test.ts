/**
 * Why vhost metadata and limits are this project's dynamic resources: the pinned @pulumi/rabbitmq
 * (3.3.8, the newest the npm registry here has) declares a VHost by its name only. When an upgrade
 * brings a VHost with a description or limits, this test fails, so that the upgrade drops
 * VhostMetadata's description and VhostLimits for the provider's own inputs (README,
 * "@pulumi/rabbitmq version") instead of setting the same thing twice.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const PROVIDER = path.join(__dirname, "../../node_modules/@pulumi/rabbitmq");

/** The input names of an `interface <name> { ... }` in the provider's declarations. */
function inputsOf(file: string, name: string): string[] {
  const text = readFileSync(path.join(PROVIDER, file), "utf8");
  const body = new RegExp(`export interface ${name} \\{([\\s\\S]*?)\\n\\}`).exec(text)?.[1];
  if (body === undefined) throw new Error(`no interface ${name} in ${file}`);
  return [...body.matchAll(/^ {4}(\w+)\??:/gm)].map((m) => m[1]!);
}

describe("the pinned @pulumi/rabbitmq", () => {
  it("is the version package.json pins", () => {
    const pinned = (JSON.parse(readFileSync(path.join(__dirname, "../../package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies["@pulumi/rabbitmq"];
    const installed = (JSON.parse(readFileSync(path.join(PROVIDER, "package.json"), "utf8")) as { version: string }).version;
    expect(installed).toBe(pinned);
  });

  it("has a VHost with a name only: no description, tags, default queue type or limits of its own", () => {
    expect(inputsOf("vhost.d.ts", "VHostArgs")).toEqual(["name"]);
  });

  it("has a User with name, password and tags, and no limits", () => {
    expect(inputsOf("user.d.ts", "UserArgs").sort()).toEqual(["name", "password", "tags"]);
  });
});
