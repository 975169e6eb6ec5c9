/**
 * The pull-request workflow (.github/workflows/pull-request.yml): valid for GitHub Actions by the
 * workflow linter, runs the project's CI, previews exactly the stacks a pull request changes with
 * the Pulumi action and posts the result on the pull request, and gives secrets only to the
 * Pulumi step's environment.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { stacksIn, stacksToPreview } from "../../scripts/preview-stacks";

const ROOT = path.join(__dirname, "../..");
const WORKFLOW = path.join(ROOT, ".github/workflows/pull-request.yml");
const STACKS = ["acme", "dev", "globex", "platform-prod"];

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  needs?: string;
  if?: string;
  steps: Step[];
  strategy?: { matrix: Record<string, unknown> };
  permissions?: Record<string, string>;
}
const workflow = parse(readFileSync(WORKFLOW, "utf8")) as { on: Record<string, unknown>; permissions: Record<string, string>; jobs: Record<string, Job> };

function lint(file: string): { status: number | null; output: string } {
  const r = spawnSync(path.join(ROOT, "node_modules/.bin/action-validator"), [file], { encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe("which stacks a pull request previews", () => {
  it("finds the repository's stacks from their stack files", () => {
    expect(stacksIn(ROOT)).toEqual(STACKS);
  });

  it("previews a changed stack file's stack, and no other", () => {
    expect(stacksToPreview(["Pulumi.acme.yaml", "README.md"], STACKS)).toEqual(["acme"]);
    expect(stacksToPreview(["Pulumi.globex.yaml", "Pulumi.dev.yaml"], STACKS)).toEqual(["dev", "globex"]);
  });

  it("previews every stack when what every stack runs changes", () => {
    for (const f of ["components/tenant.ts", "core/permissions.ts", "stacks/index.ts", "Pulumi.yaml", "package-lock.json", "issuer/server.ts"]) {
      expect(stacksToPreview([f, "Pulumi.acme.yaml"], STACKS), f).toEqual(STACKS);
    }
  });

  it("previews nothing for tests, docs and benchmarks, nor for a deleted stack's file", () => {
    expect(stacksToPreview(["tests/unit/x.test.ts", "README.md", "bench/fleets.ts"], STACKS)).toEqual([]);
    expect(stacksToPreview(["Pulumi.gone.yaml"], STACKS)).toEqual([]);
  });

  it("prints the stacks as JSON for the workflow's matrix, from git's list of changed files", () => {
    const printed = execFileSync(path.join(ROOT, "node_modules/.bin/tsx"), ["scripts/preview-stacks.ts", "HEAD"], { cwd: ROOT, encoding: "utf8" });
    expect(Array.isArray(JSON.parse(printed))).toBe(true);
  }, 30_000);
});

describe("the pull-request workflow", () => {
  it("passes the workflow linter, which refuses a broken copy", () => {
    const ok = lint(WORKFLOW);
    expect(ok.output).toBe("");
    expect(ok.status).toBe(0);
    const dir = mkdtempSync(path.join(os.tmpdir(), "workflow-"));
    try {
      const broken = path.join(dir, "broken.yml");
      writeFileSync(broken, readFileSync(WORKFLOW, "utf8").replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest"));
      const bad = lint(broken);
      expect(bad.status).not.toBe(0);
      expect(bad.output).toContain("runs_on");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it("runs on pull requests and on main, with read-only permissions by default", () => {
    expect(Object.keys(workflow.on).sort()).toEqual(["pull_request", "push"]);
    expect(workflow.permissions).toEqual({ contents: "read" });
  });

  it("runs .ci/run, the project's CI, as it is", () => {
    expect(workflow.jobs["ci"]?.steps.some((s) => s.run?.includes("bash .ci/run"))).toBe(true);
  });

  it("previews each stack the change names with the Pulumi action and comments on the pull request", () => {
    const stacks = workflow.jobs["stacks"]!;
    expect(stacks.if).toBe("github.event_name == 'pull_request'");
    expect(stacks.steps.some((s) => s.run?.includes("scripts/preview-stacks.ts"))).toBe(true);
    const preview = workflow.jobs["preview"]!;
    expect(preview.needs).toBe("stacks");
    expect(preview.strategy?.matrix["stack"]).toBe("${{ fromJSON(needs.stacks.outputs.stacks) }}");
    expect(preview.permissions).toMatchObject({ "pull-requests": "write" });
    const pulumi = preview.steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
    expect(pulumi?.with).toMatchObject({ command: "preview", "comment-on-pr": true });
    expect(String(pulumi?.with?.["stack-name"])).toContain("matrix.stack");
  });

  it("hands the access token and the passphrase only to the Pulumi step's environment, and no step prints a secret", () => {
    const pulumi = workflow.jobs["preview"]!.steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
    expect(pulumi?.env).toEqual({
      PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_ACCESS_TOKEN }}",
      PULUMI_CONFIG_PASSPHRASE: "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
    });
    for (const [name, job] of Object.entries(workflow.jobs)) {
      for (const step of job.steps) {
        if (step === pulumi) continue;
        expect(JSON.stringify(step), `a step of job ${name}`).not.toMatch(/secrets\.(?!GITHUB_TOKEN)/);
        expect(step.run ?? "", `a run step of job ${name}`).not.toMatch(/secrets\./);
      }
    }
  });
});
