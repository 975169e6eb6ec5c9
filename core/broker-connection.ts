/**
 * Where a tenant stack finds the broker's management API: directly in stack config, or as outputs
 * of the platform stack through a StackReference. The admin password is never in plain config:
 * it comes from the secret key `brokerPassword` or from the platform stack's secret output.
 */
import { z } from "zod";
import { ConfigError, formatPath } from "./errors";
import { PEM_CERTIFICATE } from "./pki-config";

export const BROKER_KEY = "broker";
export const BROKER_PASSWORD_KEY = "brokerPassword";

/** Output names the platform stack exports for tenant stacks. */
export const PLATFORM_OUTPUTS = {
  managementUrl: "managementUrl",
  adminUsername: "adminUsername",
  adminPassword: "adminPassword",
  /** The root CA certificate: what clients and the management API client trust. */
  caCertificatePem: "caCertificatePem",
  /** Secret: `{ root, tenants: { <tenant>: ... } }`, each `{ certPem, privateKeyPem, chainPem }`. */
  certificateIssuers: "certificateIssuers",
  /** The broker's `ssl_cert_login_from`: which login name a certificate gives. */
  certificateLoginFrom: "certificateLoginFrom",
} as const;

/** Outputs of a tenant stack that the platform stack reads through a StackReference. */
export const TENANT_OUTPUTS = {
  /** `{ tenant, vhost, apps }`: the tenant's token apps as validated, for the platform's token issuer. */
  tokenApps: "tokenApps",
} as const;

/** The management API's URL, wherever it is given (stack config, brokerConnection()). */
export const managementUrlSchema = z
  .string({ error: "must be a string" })
  .refine(
    (s) => {
      try {
        const u = new URL(s);
        return (u.protocol === "http:" || u.protocol === "https:") && u.username === "" && u.password === "";
      } catch {
        return false;
      }
    },
    { error: "must be an http:// or https:// URL of the management API without credentials, e.g. https://rabbitmq.example.com:15671" },
  );

/** A StackReference name: `<organization>/<project>/<stack>`. */
export const STACK_REF_PATTERN = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

export const brokerConnectionSchema = z.union(
  [
    z.strictObject({
      managementUrl: managementUrlSchema.describe("`http(s)://host:port` of the management API (a path prefix for a proxy allowed), no credentials in it"),
      username: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }).describe("the admin user (with the secret brokerPassword)"),
      caCertificatePem: z
        .string({ error: "must be a string" })
        .regex(PEM_CERTIFICATE, {
          error: "must be one PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
        })
        .optional()
        .describe("with an https URL whose certificate a private CA signed: that CA's certificate (PEM)"),
    }),
    z.strictObject({
      stackReference: z
        .string({ error: "must be a string" })
        .regex(STACK_REF_PATTERN, { error: "must be <organization>/<project>/<stack> (file backend: organization/<project>/<stack>)" })
        .describe(
          "instead of managementUrl and username: `<org>/<project>/<stack>` of the platform stack, whose outputs managementUrl, adminUsername, adminPassword (secret), caCertificatePem, " +
            "certificateIssuers (secret) and certificateLoginFrom are used; required for certificate identities and certificate fleets",
        ),
    }),
  ],
  {
    error:
      "set either { managementUrl, username } (with the secret brokerPassword) or { stackReference: <org>/<project>/<stack> } of the platform stack",
  },
);

export type BrokerConnectionConfig =
  | { readonly kind: "direct"; readonly managementUrl: string; readonly username: string; readonly caCertificatePem?: string }
  | { readonly kind: "stackReference"; readonly stackReference: string };

export function parseBrokerConnection(raw: unknown, hasPassword: boolean): BrokerConnectionConfig {
  const parsed = brokerConnectionSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({ key: formatPath(BROKER_KEY, i.path), message: i.message })),
    );
  }
  const v = parsed.data;
  if ("stackReference" in v) {
    if (hasPassword) {
      throw new ConfigError([
        {
          key: BROKER_PASSWORD_KEY,
          message: "not used with broker.stackReference (the platform stack provides the admin password); remove it",
        },
      ]);
    }
    return { kind: "stackReference", stackReference: v.stackReference };
  }
  if (!hasPassword) {
    throw new ConfigError([
      {
        key: BROKER_PASSWORD_KEY,
        message: "required with broker.managementUrl: set it with `pulumi config set --secret brokerPassword`",
      },
    ]);
  }
  if (v.caCertificatePem !== undefined && !v.managementUrl.startsWith("https:")) {
    throw new ConfigError([{ key: `${BROKER_KEY}.caCertificatePem`, message: "only for an https:// managementUrl; remove it or use https" }]);
  }
  return {
    kind: "direct",
    managementUrl: v.managementUrl.replace(/\/+$/, ""),
    username: v.username,
    ...(v.caCertificatePem !== undefined ? { caCertificatePem: v.caCertificatePem } : {}),
  };
}
