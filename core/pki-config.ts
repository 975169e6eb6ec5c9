/**
 * The PKI part of stack config, shared by the platform stack (certificate authority, tenant
 * intermediates, broker certificate) and tenant stacks (client certificates): key types, validity
 * and renewal windows, and the certificate names a broker needs. Pure: no Pulumi here.
 *
 * Renewal: @pulumi/tls marks a certificate `readyForRenewal` once it is within its early-renewal
 * window, and the next `pulumi up` replaces the certificate resource only: a new certificate for
 * the same key pair (the PrivateKey resource is not replaced). Validity and renewal windows are
 * therefore checked together here. (components/pki/index.ts and the README's "Rotation" say the
 * same.)
 */
import { z } from "zod";
import type { ConfigIssue } from "./errors";

export const KEY_ALGORITHMS = ["ECDSA", "RSA"] as const;
export const RSA_BITS = [2048, 3072, 4096] as const;
export const ECDSA_CURVES = ["P256", "P384"] as const;

export const HOURS_PER_DAY = 24;
export const HOURS_PER_YEAR = 8760;

export const keySchema = z.strictObject({
  algorithm: z
    .enum(KEY_ALGORITHMS, { error: `must be one of: ${KEY_ALGORITHMS.join(", ")}` })
    .default("ECDSA")
    .describe("ECDSA keys are small and fast on constrained devices; RSA for old TLS stacks"),
  rsaBits: z.literal(RSA_BITS, { error: "must be 2048, 3072 or 4096" }).default(3072).describe("with algorithm RSA"),
  ecdsaCurve: z.enum(ECDSA_CURVES, { error: `must be one of: ${ECDSA_CURVES.join(", ")}` }).default("P256").describe("with algorithm ECDSA"),
});

export type KeySpec = z.output<typeof keySchema>;

/** Validity of a kind of certificate, in hours; `rule` adds what else the parser checks. */
export function validityHoursField(defaultHours: number, rule?: string) {
  return z
    .number({ error: "must be a whole number of hours" })
    .int({ error: "must be a whole number of hours" })
    .min(HOURS_PER_DAY, { error: `must be at least ${HOURS_PER_DAY} (one day)` })
    .max(30 * HOURS_PER_YEAR, { error: `must be at most ${30 * HOURS_PER_YEAR} (30 years)` })
    .default(defaultHours)
    .describe(`hours the certificate is valid (one day to 30 years)${rule !== undefined ? `; ${rule}` : ""}`);
}

/** How long before expiry `pulumi up` replaces a certificate, in hours. */
export function earlyRenewalHoursField(defaultHours: number) {
  return z
    .number({ error: "must be a whole number of hours" })
    .int({ error: "must be a whole number of hours" })
    .min(0, { error: "must be at least 0" })
    .default(defaultHours)
    .describe("hours before expiry from which `pulumi up` renews the certificate (same key); shorter than validityHours");
}

export interface Validity {
  readonly validityHours: number;
  readonly earlyRenewalHours: number;
}

/** A renewal window as long as the validity would renew the certificate on every `pulumi up`. */
export function validityProblems(v: Validity, key: string): ConfigIssue[] {
  if (v.earlyRenewalHours >= v.validityHours) {
    return [
      {
        key: `${key}.earlyRenewalHours`,
        message: `is ${v.earlyRenewalHours} but validityHours is ${v.validityHours}; the renewal window must be shorter than the validity (e.g. a tenth of it)`,
      },
    ];
  }
  return [];
}

/** A certificate outliving its issuer would be refused by clients as soon as the issuer expires. */
export function outlivesProblems(child: Validity, childKey: string, parent: Validity, parentName: string): ConfigIssue[] {
  if (child.validityHours > parent.validityHours) {
    return [{ key: `${childKey}.validityHours`, message: `is ${child.validityHours}, longer than the ${parentName} (${parent.validityHours}); a certificate must not outlive its issuer` }];
  }
  return [];
}

/** One PEM certificate block (config values that hold a CA certificate). */
export const PEM_CERTIFICATE = /^\s*-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\s*$/;
/** One PEM private key block: PKCS#8, PKCS#1 (RSA) or SEC1 (EC). */
export const PEM_PRIVATE_KEY = /^\s*-----BEGIN (?:RSA |EC )?PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END (?:RSA |EC )?PRIVATE KEY-----\s*$/;

export const DNS_NAME_PATTERN = /^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
