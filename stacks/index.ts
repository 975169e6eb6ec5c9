/**
 * Entry point of the Pulumi program (Pulumi.yaml `main`). The stack's `stackType` says which
 * program it runs; only tenant stacks exist so far (the platform stack comes with the broker work).
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../core/errors";
import { tenantStack } from "./tenant";

const STACK_TYPES = ["tenant"] as const;

function run() {
  const stackType = new pulumi.Config().get("stackType") ?? "tenant";
  switch (stackType) {
    case "tenant":
      return tenantStack();
    default:
      throw new ConfigError([{ key: "stackType", message: `unknown stack type '${stackType}'; one of: ${STACK_TYPES.join(", ")}` }]);
  }
}

export = run();
