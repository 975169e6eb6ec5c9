/**
 * Which stacks a pull request's `pulumi preview` must cover, from the files it changes (the
 * workflow in .github/workflows/pull-request.yml runs this and previews each stack it prints):
 * - a changed stack file (`Pulumi.<stack>.yaml`) previews that stack;
 * - a change to what every stack runs (the program, the components, the core, the dependencies,
 *   the project file) previews every stack;
 * - anything else (tests, docs, benchmarks) previews none.
 *
 *   tsx scripts/preview-stacks.ts <base ref>     prints a JSON array of stack names
 */
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import * as path from "node:path";

const STACK_FILE = /^Pulumi\.([A-Za-z0-9_.-]+)\.yaml$/;
/** What every stack's program is built from. */
const PROGRAM = [/^stacks\//, /^components\//, /^core\//, /^issuer\//, /^Pulumi\.yaml$/, /^package(-lock)?\.json$/, /^tsconfig\.json$/];

export function stacksToPreview(changed: readonly string[], stacks: readonly string[]): string[] {
  if (changed.some((f) => PROGRAM.some((p) => p.test(f)))) return [...stacks].sort();
  const named = new Set<string>();
  for (const f of changed) {
    const m = STACK_FILE.exec(f);
    // A deleted stack file names a stack that no longer exists: nothing to preview.
    if (m?.[1] !== undefined && stacks.includes(m[1])) named.add(m[1]);
  }
  return [...named].sort();
}

/** The stacks this checkout has, from its stack files. */
export function stacksIn(dir: string): string[] {
  return readdirSync(dir)
    .map((f) => STACK_FILE.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

if (require.main === module) {
  const base = process.argv[2];
  if (base === undefined || base.length === 0) {
    console.error("usage: tsx scripts/preview-stacks.ts <base ref>");
    process.exit(2);
  }
  const root = path.resolve(__dirname, "..");
  const changed = execFileSync("git", ["diff", "--name-only", `${base}...HEAD`], { cwd: root, encoding: "utf8" })
    .split("\n")
    .filter((l) => l.length > 0);
  console.log(JSON.stringify(stacksToPreview(changed, stacksIn(root))));
}
