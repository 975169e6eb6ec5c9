/**
 * Runs a Pulumi program (index.ts in the working directory) under mocks that record every
 * registration, with config from CONSUMER_CONFIG (JSON: key -> value; CONSUMER_SECRETS: keys that
 * are secret), and writes `{ records, outputs, secretOutputs }` or `{ records, error }` to the
 * file named by CONSUMER_OUT. Copied next to a consumer program by
 * tests/unit/library-consumer.test.ts, so that `@pulumi/pulumi` and the library resolve from the
 * consumer's own node_modules, as they would for a user.
 */
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

interface Registration {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

async function main(): Promise<void> {
  const out = process.env["CONSUMER_OUT"] ?? "consumer-out.json";
  const records: Registration[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (a: pulumi.runtime.MockResourceArgs) => {
        records.push({ type: a.type, name: a.name, inputs: a.inputs as Record<string, unknown> });
        const state: Record<string, unknown> = { ...(a.inputs as Record<string, unknown>) };
        if (a.type === "random:index/randomPassword:RandomPassword") state["result"] = `generated-${a.name}`;
        return { id: `${a.name}-id`, state };
      },
      call: () => ({}),
    },
    "rabbitmq-mqtt-consumer-example",
    "test",
    false,
  );
  const config = JSON.parse(process.env["CONSUMER_CONFIG"] ?? "{}") as Record<string, string>;
  const secrets = JSON.parse(process.env["CONSUMER_SECRETS"] ?? "[]") as string[];
  const project = "rabbitmq-mqtt-consumer-example";
  pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [`${project}:${k}`, v])), secrets.map((k) => `${project}:${k}`));
  try {
    const mod = (await import(path.resolve("index.ts"))) as Record<string, pulumi.Output<unknown>>;
    const outputs: Record<string, unknown> = {};
    const secretOutputs: string[] = [];
    for (const [k, v] of Object.entries(mod)) {
      if (!pulumi.Output.isInstance(v)) continue;
      outputs[k] = await new Promise((resolve) => v.apply((x) => (resolve(x), x)));
      if (await (v as unknown as { isSecret: Promise<boolean> }).isSecret) secretOutputs.push(k);
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    await (require("@pulumi/pulumi/runtime/settings") as { waitForRPCs(): Promise<void> }).waitForRPCs();
    writeFileSync(out, JSON.stringify({ records, outputs, secretOutputs }));
  } catch (e) {
    writeFileSync(out, JSON.stringify({ records, error: String((e as Error).message) }));
  }
}

void main();
