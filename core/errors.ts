/** One problem in stack config: which key, what is wrong, what would be right. */
export interface ConfigIssue {
  /** Full stack config key path, e.g. `tenant.identities[2].name`. */
  key: string;
  message: string;
}

/**
 * Thrown before any resource is registered when stack config is invalid. It lists every problem
 * at once, so a user fixes their stack file in one pass. Messages never echo secret values.
 */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(
      `invalid stack configuration (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n` +
        issues.map((i) => `  - ${i.key}: ${i.message}`).join("\n"),
    );
    this.name = "ConfigError";
    this.issues = issues;
  }
}

export function formatPath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const p of path) {
    out += typeof p === "number" ? `[${p}]` : `.${String(p)}`;
  }
  return out;
}
