/**
 * Runs the project's Pulumi program (stacks/index.ts) for one stack under BrokerMocks, so every
 * declared resource is applied to a real broker. Two ways in:
 * - `runStack()` inside a test process (vitest): dynamic providers are resolved by type, since
 *   vitest's module transform makes serialized closures unloadable;
 * - as a command under plain Node (`tsx tests/support/run-stack.ts in.json out.json`): dynamic
 *   providers are loaded from their serialized `__provider`, as the Pulumi engine does. The e2e
 *   tests use this one for the stack programs, so what runs is what users run.
 */
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { settle } from "./outputs";
import { managementSlots } from "../../components/management/api";
import type { DockerTarget } from "./docker-hooks";
import { BrokerMocks, deserializeDynamicProvider, type DynamicProviderResolver, type RegisteredResource } from "./broker-mocks";

export interface StackRunInput {
  readonly project: string;
  readonly stack: string;
  /** Config without the project prefix; objects are JSON-encoded as the CLI would pass them. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly secretKeys?: readonly string[];
  readonly stackOutputs?: Readonly<Record<string, Record<string, unknown>>>;
  /** The previous run's registrations: this run then updates and deletes like a second `pulumi up`. */
  readonly previous?: readonly RegisteredResource[];
  /** Apply @pulumi/docker resources to this engine (tests/support/docker-hooks.ts). */
  readonly docker?: DockerTarget;
}

export interface StackRunResult {
  readonly outputs: Record<string, unknown>;
  /** Names of stack outputs that are Pulumi secrets. */
  readonly secretOutputs: string[];
  readonly registered: RegisteredResource[];
  /** Management API calls this run made (the product's providers and the mocks' stand-in for @pulumi/rabbitmq's). */
  readonly managementCalls?: number;
  /** The program process's peak resident memory, bytes. */
  readonly maxRssBytes?: number;
}

export function projectConfig(input: StackRunInput): { config: Record<string, string>; secretKeys: string[] } {
  const config: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.config)) {
    config[`${input.project}:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return { config, secretKeys: (input.secretKeys ?? []).map((k) => `${input.project}:${k}`) };
}

/**
 * Sets mocks and config, then loads the program with `load` (which must import stacks/index fresh)
 * and collects its outputs once every hook has finished.
 */
export async function runStack(
  input: StackRunInput,
  resolveDynamicProvider: DynamicProviderResolver,
  load: () => Promise<unknown>,
): Promise<StackRunResult> {
  const mocks = new BrokerMocks({
    resolveDynamicProvider,
    ...(input.stackOutputs ? { stackOutputs: input.stackOutputs } : {}),
    ...(input.previous ? { previous: input.previous } : {}),
    ...(input.docker ? { docker: input.docker } : {}),
  });
  const callsBefore = managementSlots().stats.calls;
  await pulumi.runtime.setMocks(mocks, input.project, input.stack, false);
  const { config, secretKeys } = projectConfig(input);
  pulumi.runtime.setAllConfig(config, secretKeys);
  const loaded = (await load()) as Record<string, unknown> & { default?: Record<string, unknown> };
  const exported = (loaded.default ?? loaded);
  const outputs: Record<string, unknown> = {};
  const secretOutputs: string[] = [];
  const firstError = new Promise<never>((_, reject) => {
    const timer = setInterval(() => {
      if (mocks.errors.length > 0) {
        clearInterval(timer);
        reject(mocks.errors[0] ?? new Error("hook failed"));
      }
    }, 50);
    timer.unref();
  });
  for (const [k, v] of Object.entries(exported)) {
    if (k === "default") continue;
    const r = await Promise.race([settle(v), firstError]);
    outputs[k] = r.value;
    if (r.secret) secretOutputs.push(k);
  }
  await Promise.race([mocks.settled(), firstError]);
  await mocks.deleteRemoved();
  const failed = mocks.errors[0];
  if (failed) throw failed;
  return { outputs, secretOutputs, registered: mocks.registered, managementCalls: managementSlots().stats.calls - callsBefore, maxRssBytes: process.resourceUsage().maxRSS * 1024 };
}

async function main(): Promise<void> {
  const [inFile, outFile] = process.argv.slice(2);
  if (!inFile || !outFile) throw new Error("usage: run-stack.ts <input.json> <output.json>");
  const input = JSON.parse(readFileSync(inFile, "utf8")) as StackRunInput;
  const program = path.resolve(__dirname, "../../stacks/index.ts");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const result = await runStack(input, deserializeDynamicProvider, () => Promise.resolve(require(program) as unknown));
  writeFileSync(outFile, JSON.stringify(result, null, 2), { mode: 0o600 });
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
