/**
 * Token apps: what a tenant declares for each app whose end users sign in with tokens, and how a
 * signed-in user's id becomes the id written into that user's scopes. Pure and validated like
 * every other config key; the token issuer (issuer/) acts on it. Nothing here is per user.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { ConfigError, formatPath, type ConfigIssue } from "./errors";
import { NAME_PATTERN, NAME_RULE, isName } from "./names";
import { APP_MAX_CLIENT_IDS_RANGE, parseAppGrant, userIdProblem, type AppGrants } from "./token-scopes";
import { TopicFilterError } from "./topics";

/**
 * How the identity provider's user id becomes the id in the scopes:
 * - `subject`: the claim as it is; a sign-in whose id is not a usable user id (`*`, `.`, `#`, `+`,
 *   `/`, `%`, `:`, `~`, whitespace, control or non-ASCII characters, or longer than 128) is refused,
 *   so that what the app and its backend see as the user's topic is the IdP's own id;
 * - `hashed`: always `h` + 32 hex digits of SHA-256 over the provider's issuer and the claim: every
 *   sign-in gets a safe id, and the tenant's backend computes the same from the id it knows.
 */
export const USER_ID_MODES = ["subject", "hashed"] as const;
export type UserIdMode = (typeof USER_ID_MODES)[number];

/** Signature algorithms accepted from identity providers' ID tokens (never `none` or HMAC). */
export const ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"] as const;

export const TOKEN_LIFETIME_RANGE = [60, 86_400] as const;

/** An https URL without credentials (identity providers, the token issuer's public URL). */
export const httpsUrl = z
  .string({ error: "must be an https URL" })
  .refine((u) => URL.canParse(u) && new URL(u).protocol === "https:" && new URL(u).username === "" && new URL(u).password === "", {
    error: "must be an https URL without credentials, e.g. https://login.example.com/",
  });

const grantList = z
  .array(z.string({ error: "must be a topic template such as client/{client}/#" }))
  .default([])
  .describe("MQTT topic templates with `{user}` and `{client}`, per user (a placeholder before any `#`), no `+`");

export const tokenAppSchema = z.strictObject({
  name: z
    .string({ error: "must be a name" })
    .regex(NAME_PATTERN, { error: `must be a name: ${NAME_RULE}` })
    .describe(`${NAME_RULE}: its users log in as \`<vhost>:<name>\` (the prefix picks the vhost)`),
  identityProvider: z.strictObject({
    issuer: httpsUrl.describe("the provider's issuer, an https URL exactly as in its ID tokens' `iss`"),
    audience: z
      .string({ error: "must be the app's client id at the provider" })
      .min(1, { error: "must not be empty" })
      .max(256)
      .describe("the audience its ID tokens carry for this app (the app's client id there)"),
    jwksUri: httpsUrl.optional().describe("https: where its signing keys are; absent: from `<issuer>/.well-known/openid-configuration`, whose `issuer` must match"),
    userClaim: z.string().regex(/^[A-Za-z_][A-Za-z0-9_:.-]{0,63}$/, { error: "must be a claim name such as sub" }).default("sub").describe("the claim that holds the user's id"),
    algorithms: z
      .array(z.enum(ID_TOKEN_ALGORITHMS, { error: `must be one of: ${ID_TOKEN_ALGORITHMS.join(", ")}` }))
      .min(1, { error: "list at least one algorithm" })
      .default(["RS256", "ES256"])
      .describe("asymmetric only (never `none` or HMAC)"),
    caCertificatePem: z
      .string()
      .regex(/^-----BEGIN CERTIFICATE-----/, { error: "must be a PEM certificate" })
      .optional()
      .describe("a private CA the provider's HTTPS certificate chains to (PEM); absent: the system's CAs"),
  }),
  userIds: z
    .enum(USER_ID_MODES, { error: `must be one of: ${USER_ID_MODES.join(", ")}` })
    .default("subject")
    .describe(
      "`subject`: the claim as is; a sign-in whose id is not 1–128 of `A-Z a-z 0-9 _ -` (starting and ending with a letter or digit) is refused (403), so `*`, `.`, `#`, `+`, `/`, `%`, `:`, `~`, " +
        "whitespace, control and non-ASCII characters never reach a scope. `hashed`: every user gets `h` + 32 hex digits of SHA-256(`<issuer>\\n<claim>`), which the tenant's backend can compute too",
    ),
  grants: z
    .strictObject({ publish: grantList, subscribe: grantList })
    .refine((g) => g.publish.length + g.subscribe.length > 0, { error: "grant at least one publish or subscribe template" }),
  clientIdsPerUser: z
    .number()
    .int({ error: "must be a whole number" })
    .min(APP_MAX_CLIENT_IDS_RANGE[0])
    .max(APP_MAX_CLIENT_IDS_RANGE[1], { error: `must be at most ${APP_MAX_CLIENT_IDS_RANGE[1]}` })
    .default(2)
    .describe(
      "the client ids (`<user>~1` … `<user>~N`) whose session queues the user's token may use, so the ids it can subscribe through. Not a connection limit: the broker ties no client id to a user, " +
        "so a token connects under any client id (and subscribes to nothing there); the tenant's limits.maxConnections bounds the vhost. No per-user connection limit is set for token users: " +
        "RabbitMQ sets user limits per user name, and the product makes nothing per end user",
    ),
  tokenLifetimeSeconds: z
    .number()
    .int({ error: "must be a whole number" })
    .min(TOKEN_LIFETIME_RANGE[0], { error: `must be at least ${TOKEN_LIFETIME_RANGE[0]}` })
    .max(TOKEN_LIFETIME_RANGE[1], { error: `must be at most ${TOKEN_LIFETIME_RANGE[1]} (a day): revocation waits for expiry` })
    .default(900)
    .describe("how long a broker token lasts, so the longest a revoked user keeps access; the app asks for a new one before it runs out"),
  allowedOrigins: z
    .array(z.string().refine((o) => URL.canParse(o) && new URL(o).origin === o && ["https:", "http:"].includes(new URL(o).protocol), { error: "must be an origin such as https://app.example.com" }))
    .default([])
    .describe("web origins allowed to call the issuer from a browser (CORS); none: no browser app"),
});

export interface TokenApp {
  readonly name: string;
  readonly identityProvider: {
    readonly issuer: string;
    readonly audience: string;
    readonly jwksUri?: string;
    readonly userClaim: string;
    readonly algorithms: readonly string[];
    readonly caCertificatePem?: string;
  };
  readonly userIds: UserIdMode;
  readonly grants: AppGrants;
  readonly clientIdsPerUser: number;
  readonly tokenLifetimeSeconds: number;
  readonly allowedOrigins: readonly string[];
}

/** The list form of `tokenAppSchema`, as `tenant.apps` and the issuer's file take it. */
export const tokenAppsSchema = z.array(tokenAppSchema, { error: "must be a list of apps" }).default([]);

/** Validates a tenant's token apps (`keyPrefix`, e.g. `tenant.apps`); every problem names its key. */
export function parseTokenApps(raw: unknown, keyPrefix: string): TokenApp[] {
  const parsed = tokenAppsSchema.safeParse(raw ?? []);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => ({ key: formatPath(keyPrefix, i.path), message: i.message })));
  const issues: ConfigIssue[] = [];
  const apps = buildTokenApps(parsed.data, keyPrefix, issues);
  if (issues.length > 0) throw new ConfigError(issues);
  return apps;
}

/**
 * The checks the schema cannot make (names unique, grants that compile), on apps the schema has
 * parsed; problems go to `issues` with their keys under `keyPrefix`.
 */
export function buildTokenApps(parsed: z.output<typeof tokenAppsSchema>, keyPrefix: string, issues: ConfigIssue[]): TokenApp[] {
  const apps: TokenApp[] = [];
  parsed.forEach((a, i) => {
    if (parsed.findIndex((b) => b.name === a.name) !== i) issues.push({ key: `${keyPrefix}[${i}].name`, message: `app '${a.name}' is declared twice` });
    const grants = { publish: [] as AppGrants["publish"][number][], subscribe: [] as AppGrants["subscribe"][number][] };
    for (const kind of ["publish", "subscribe"] as const) {
      a.grants[kind].forEach((text, j) => {
        try {
          grants[kind].push(parseAppGrant(text));
        } catch (e) {
          if (!(e instanceof TopicFilterError)) throw e;
          issues.push({ key: `${keyPrefix}[${i}].grants.${kind}[${j}]`, message: e.message });
        }
      });
    }
    const idp = a.identityProvider;
    apps.push({
      name: a.name,
      identityProvider: {
        issuer: idp.issuer,
        audience: idp.audience,
        ...(idp.jwksUri !== undefined ? { jwksUri: idp.jwksUri } : {}),
        userClaim: idp.userClaim,
        algorithms: [...new Set(idp.algorithms)],
        ...(idp.caCertificatePem !== undefined ? { caCertificatePem: idp.caCertificatePem } : {}),
      },
      userIds: a.userIds,
      grants,
      clientIdsPerUser: a.clientIdsPerUser,
      tokenLifetimeSeconds: a.tokenLifetimeSeconds,
      allowedOrigins: a.allowedOrigins,
    });
  });
  return apps;
}

/** `hashed` user ids: `h` + the first 32 hex digits of SHA-256("<issuer>\n<subject>"). */
export function hashedUserId(issuer: string, subject: string): string {
  return `h${createHash("sha256").update(`${issuer}\n${subject}`).digest("hex").slice(0, 32)}`;
}

export type UserIdOutcome = { readonly ok: true; readonly user: string } | { readonly ok: false; readonly reason: string };

/** The id a signed-in user gets in its scopes, or why it gets none (`subject` mode, unusable id). */
export function scopeUserId(app: TokenApp, subject: unknown): UserIdOutcome {
  if (typeof subject !== "string" || subject === "") return { ok: false, reason: `the ID token has no string claim '${app.identityProvider.userClaim}'` };
  if (app.userIds === "hashed") return { ok: true, user: hashedUserId(app.identityProvider.issuer, subject) };
  const problem = userIdProblem(subject);
  return problem === undefined ? { ok: true, user: subject } : { ok: false, reason: `${problem} (the app's userIds: hashed would map it to a safe id)` };
}

/** The MQTT username an app's users present: the vhost prefix puts them in the tenant's vhost. */
export function appUsername(vhost: string, app: string): string {
  if (!isName(vhost) || !isName(app)) throw new Error(`not a name: ${vhost}:${app}`);
  return `${vhost}:${app}`;
}
