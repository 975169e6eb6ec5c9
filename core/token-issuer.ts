/**
 * The token issuer's config file: its schema (issuer/server.ts reads the file with it) and how the
 * platform stack renders it from its own token settings and the tenant stacks' `tokenApps`
 * outputs. Pure: no Pulumi here.
 */
import { z } from "zod";
import { ConfigError, formatPath, type ConfigIssue } from "./errors";
import { NAME_PATTERN, RESOURCE_SERVER_ID_PATTERN, isName } from "./names";
import { TOKEN_KEY_ID_PATTERN } from "./platform-config";
import { buildTokenApps, tokenAppsSchema, type TokenApp } from "./token-apps";

/** Where the deployments put the issuer's files (Docker uploads, Kubernetes volumes). */
export const ISSUER_FILES = {
  dir: "/etc/token-issuer",
  config: "/etc/token-issuer/issuer.json",
  signingKey: "/etc/token-issuer/keys/signing-key.pem",
  tlsCert: "/etc/token-issuer/tls/cert.pem",
  tlsKey: "/etc/token-issuer/tls/key.pem",
} as const;

/** The user the issuer image runs as (the node image's `node`): the files it reads belong to it. */
export const ISSUER_UID = 1000;

export const issuerFileSchema = z.strictObject({
  resourceServerId: z.string().regex(RESOURCE_SERVER_ID_PATTERN),
  issuerUrl: z.string().refine((u) => URL.canParse(u), { error: "must be a URL" }),
  signingKeyId: z.string().regex(TOKEN_KEY_ID_PATTERN),
  tenants: z.record(z.string().regex(NAME_PATTERN), z.strictObject({ vhost: z.string().refine(isName, { error: "must be a vhost name" }), apps: tokenAppsSchema })),
});

export type IssuerFile = z.input<typeof issuerFileSchema>;

export interface IssuerFileTenant {
  readonly vhost: string;
  readonly apps: readonly TokenApp[];
}

/** Validates the file's content (`keyPrefix` names its keys); every problem names its key. */
export function parseIssuerFileContent(raw: unknown, keyPrefix = "issuer"): { resourceServerId: string; issuerUrl: string; signingKeyId: string; tenants: Record<string, IssuerFileTenant> } {
  const parsed = issuerFileSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => ({ key: formatPath(keyPrefix, i.path), message: i.message })));
  const issues: ConfigIssue[] = [];
  const tenants: Record<string, IssuerFileTenant> = {};
  for (const [name, t] of Object.entries(parsed.data.tenants)) tenants[name] = { vhost: t.vhost, apps: buildTokenApps(t.apps, `${keyPrefix}.tenants.${name}.apps`, issues) };
  if (issues.length > 0) throw new ConfigError(issues);
  return { resourceServerId: parsed.data.resourceServerId, issuerUrl: parsed.data.issuerUrl, signingKeyId: parsed.data.signingKeyId, tenants };
}

/** A tenant stack's `tokenApps` output (stacks/tenant.ts). */
export const tenantTokenAppsSchema = z.strictObject({
  tenant: z.string().regex(NAME_PATTERN),
  vhost: z.string().refine(isName, { error: "must be a vhost name" }),
  apps: tokenAppsSchema,
});

export interface IssuerFileInput {
  readonly resourceServerId: string;
  readonly issuerUrl: string;
  readonly signingKeyId: string;
  /** Each listed tenant stack's `tokenApps` output, keyed by its stack name. */
  readonly tenantStacks: Readonly<Record<string, unknown>>;
}

/**
 * The issuer's file from the platform's settings and the tenant stacks' outputs. Each output is
 * validated again (it comes from another stack's state); two stacks claiming one tenant, or a
 * stack without token apps, are refused, naming the stack.
 */
export function renderIssuerFile(input: IssuerFileInput, keyPrefix = "platform.broker.tokens.issuer.tenantStacks"): IssuerFile {
  const issues: ConfigIssue[] = [];
  const tenants: Record<string, { vhost: string; apps: z.input<typeof tokenAppsSchema> }> = {};
  const claimedBy = new Map<string, string>();
  for (const [stack, output] of Object.entries(input.tenantStacks)) {
    const key = `${keyPrefix} (${stack})`;
    const parsed = tenantTokenAppsSchema.safeParse(output);
    if (!parsed.success) {
      issues.push({ key, message: `its output tokenApps is not a tenant's token apps (${parsed.error.issues.map((i) => `${formatPath("tokenApps", i.path)}: ${i.message}`).join("; ")}); run pulumi up on that tenant stack first` });
      continue;
    }
    const other = claimedBy.get(parsed.data.tenant);
    if (other !== undefined) {
      issues.push({ key, message: `tenant '${parsed.data.tenant}' is also declared by stack ${other}; list each tenant's stack once` });
      continue;
    }
    claimedBy.set(parsed.data.tenant, stack);
    buildTokenApps(parsed.data.apps, `${stack}: tenant.apps`, issues);
    tenants[parsed.data.tenant] = { vhost: parsed.data.vhost, apps: parsed.data.apps };
  }
  if (issues.length > 0) throw new ConfigError(issues);
  const file: IssuerFile = { resourceServerId: input.resourceServerId, issuerUrl: input.issuerUrl, signingKeyId: input.signingKeyId, tenants };
  // What the issuer will read: refuse here what it would refuse at start.
  parseIssuerFileContent(file);
  return file;
}
