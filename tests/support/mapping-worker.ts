/**
 * One "pulumi up" of the MqttVhostMapping provider, in its own process: what the concurrency test in
 * tests/e2e/mqtt-vhost-mapping.e2e.test.ts starts several of at once.
 *
 * Run under plain Node with tsx (never under vitest, whose module transform makes serialized
 * closures unloadable). The provider is NOT called through its import: it is serialized the way
 * `pulumi.dynamic.Resource` does it (`serializeFunction(() => provider, { allowSecrets: true })`) and
 * loaded back the way the engine's dynamic-provider host does it (`require-from-string`, then
 * `.handler()`), so what runs here is the text the engine would run.
 *
 * Protocol (one line per message):
 *   stdin   INPUT <json>  a WorkerInput (over stdin, not argv: it holds the admin password)
 *   stdout  READY         the provider is deserialized; waiting for the start time
 *   stdin   GO <ms>       start at this epoch time (every worker gets the same one)
 *   stdout  STARTED   {"at": epoch ms} just before the first provider call
 *   stdout  RESULT    a WorkerResult, then the process exits (0 even when the operation failed)
 */
import * as readline from "node:readline";
import type * as pulumi from "@pulumi/pulumi";
import { mqttVhostMappingProvider, type MqttVhostMappingProps } from "../../components/management/mqtt-vhost-mapping";

export type WorkerInput =
  | { readonly op: "create"; readonly props: MqttVhostMappingProps }
  | { readonly op: "update"; readonly id: string; readonly olds: MqttVhostMappingProps; readonly news: MqttVhostMappingProps };

export interface WorkerResult {
  readonly ok: boolean;
  readonly id?: string;
  readonly error?: string;
  readonly startedAt: number;
  readonly finishedAt: number;
  /** True when the serialized provider text contains no vitest / test-file reference. */
  readonly closureSelfContained: boolean;
}

/** Exactly what @pulumi/pulumi's dynamic/index.js serializeFunctionMaybeSecret does with a provider. */
async function serializeLikePulumi(provider: pulumi.dynamic.ResourceProvider): Promise<string> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sc = require("@pulumi/pulumi/runtime/closure/serializeClosure") as {
    serializeFunction(func: () => unknown, args: { allowSecrets: boolean }): Promise<{ text: string }>;
  };
  const sf = await sc.serializeFunction(() => provider, { allowSecrets: true });
  return sf.text;
}

/** What the engine's dynamic-provider host (cmd/dynamic-provider) does with `__provider`. */
function loadLikeEngine(text: string): pulumi.dynamic.ResourceProvider {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const requireFromString = require("require-from-string") as (code: string) => { handler: () => pulumi.dynamic.ResourceProvider };
  return requireFromString(text).handler();
}

function send(kind: string, payload?: unknown): void {
  process.stdout.write(payload === undefined ? `${kind}\n` : `${kind} ${JSON.stringify(payload)}\n`);
}

/** Reads stdin line by line: `next(prefix)` resolves with the rest of the next line that starts with it. */
function stdinLines(): { next(prefix: string): Promise<string> } {
  const rl = readline.createInterface({ input: process.stdin });
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  let closed = false;
  rl.on("line", (line) => {
    lines.push(line);
    waiters.splice(0).forEach((w) => w());
  });
  rl.on("close", () => {
    closed = true;
    waiters.splice(0).forEach((w) => w());
  });
  return {
    async next(prefix: string): Promise<string> {
      for (;;) {
        const i = lines.findIndex((l) => l.startsWith(prefix));
        if (i >= 0) return (lines.splice(i, 1)[0] ?? "").slice(prefix.length);
        if (closed) throw new Error(`stdin closed before a line starting with ${JSON.stringify(prefix)}`);
        await new Promise<void>((r) => waiters.push(r));
      }
    },
  };
}

async function run(input: WorkerInput, provider: pulumi.dynamic.ResourceProvider): Promise<string | undefined> {
  if (input.op === "create") {
    // The engine checks before it creates.
    const checked = provider.check ? await provider.check({}, input.props) : { inputs: input.props, failures: [] };
    if (checked.failures && checked.failures.length > 0) {
      throw new Error(`check failed: ${checked.failures.map((f) => f.reason).join("; ")}`);
    }
    const created = await provider.create(checked.inputs);
    return created.id;
  }
  if (!provider.update) throw new Error("provider has no update");
  await provider.update(input.id, input.olds, input.news);
  return input.id;
}

async function main(): Promise<void> {
  const stdin = stdinLines();
  const input = JSON.parse(await stdin.next("INPUT ")) as WorkerInput;

  const text = await serializeLikePulumi(mqttVhostMappingProvider);
  const closureSelfContained = !/vitest|mapping-worker|\.test\./.test(text);
  const provider = loadLikeEngine(text);
  send("READY");

  const goAt = Number(await stdin.next("GO "));
  const delay = goAt - Date.now();
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));

  const startedAt = Date.now();
  send("STARTED", { at: startedAt });
  let result: WorkerResult;
  try {
    const id = await run(input, provider);
    result = { ok: true, ...(id !== undefined ? { id } : {}), startedAt, finishedAt: Date.now(), closureSelfContained };
  } catch (e) {
    result = { ok: false, error: (e as Error).message, startedAt, finishedAt: Date.now(), closureSelfContained };
  }
  send("RESULT", result);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`mapping-worker: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(2);
  },
);
