/**
 * Entry point of the Pulumi program (Pulumi.yaml `main`). The stack's `stackType` says which
 * program it runs: `platform` (the broker) or `tenant` (one tenant on it).
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../core/errors";
import { platformStack } from "./platform";
import { tenantStack } from "./tenant";

const STACK_TYPES = ["platform", "tenant"] as const;

function run() {
  const stackType = new pulumi.Config().get("stackType") ?? "tenant";
  switch (stackType) {
    case "tenant":
      return tenantStack();
    case "platform":
      return platformStack();
    default:
      throw new ConfigError([{ key: "stackType", message: `unknown stack type '${stackType}'; one of: ${STACK_TYPES.join(", ")}` }]);
  }
}

export = run();
