/**
 * The broker-wide security baseline that tenant isolation depends on, as rabbitmq.conf lines.
 * The platform's broker renderer builds on it; the end-to-end tests boot their broker with it.
 *
 * Why each line (shared notes; red-team findings on 3.10.8):
 * - Anonymous MQTT would log in as a default user; `mqtt.allow_anonymous` defaults to true, and
 *   4.x also has `anonymous_login_user` (guest unless `none`).
 * - `default_user`/`default_pass` replace `guest`, which therefore never exists.
 * - AMQP 0-9-1 offers no password mechanism: with an identity's password over AMQP, a client could
 *   put messages on any topic of its vhost through CC/BCC headers (3.10 checks only the routing key
 *   against topic permissions) or through a dead-letter exchange on its own queue (no topic check
 *   on dead-lettering, on any version). No vhost or topic permission can stop either, so identity
 *   credentials must not work over AMQP at all. Nor may certificates: EXTERNAL would log a device
 *   in over AMQPS with the very user its certificate has for MQTT (AMQPS and MQTT over TLS share
 *   `ssl_options` and `ssl_cert_login_from`), with the same reach around topic permissions. So
 *   AMQP offers no mechanism: `auth_mechanisms` is a filter over the registered mechanisms, and
 *   `none` names none of them (seen on 3.10.8: the node boots and offers an empty list). MQTT and
 *   Web MQTT do not use SASL mechanisms.
 */

export interface BrokerVersion {
  readonly major: number;
  readonly minor: number;
}

export interface SecurityBaselineOptions {
  readonly version: BrokerVersion;
  readonly adminUsername: string;
  readonly adminPassword: string;
  /**
   * Offer PLAIN/AMQPLAIN on AMQP 0-9-1 again. Unsafe for tenant identities (see above); only for a
   * broker whose AMQP listener no identity can reach.
   */
  readonly amqpPasswordLogins?: boolean;
}

/** Ports of RabbitMQ's standard listeners, which must never be one tenant's dedicated port. */
export const STANDARD_BROKER_PORTS: Readonly<Record<number, string>> = {
  1883: "MQTT",
  8883: "MQTT over TLS",
  5672: "AMQP",
  5671: "AMQP over TLS",
  5552: "streams",
  5551: "streams over TLS",
  15672: "management",
  15671: "management over TLS",
  15674: "Web STOMP",
  15675: "Web MQTT",
  15676: "Web MQTT over TLS",
  15692: "Prometheus",
  61613: "STOMP",
  61614: "STOMP over TLS",
  25672: "Erlang distribution",
  4369: "epmd",
};

/** The one place version cut-offs are compared. */
export function versionAtLeast(v: BrokerVersion, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

/** A name no SASL mechanism has: AMQP 0-9-1 and 1.0 then offer none (see above). */
export const NO_AMQP_MECHANISM = "none";

const CONF_VALUE = /^[A-Za-z0-9._@-]{1,128}$/;

export function securityBaseline(opts: SecurityBaselineOptions): string[] {
  for (const [what, value] of [
    ["admin username", opts.adminUsername],
    ["admin password", opts.adminPassword],
  ] as const) {
    // rabbitmq.conf has no quoting: a value with spaces or '#' would be cut or misread.
    if (!CONF_VALUE.test(value)) throw new Error(`${what} must be 1-128 of A-Z a-z 0-9 . _ @ - for rabbitmq.conf`);
  }
  const lines = [
    "mqtt.allow_anonymous = false",
    // `anonymous_login_user` exists from 3.13 on (with the ANONYMOUS SASL mechanism).
    ...(versionAtLeast(opts.version, 3, 13) ? ["anonymous_login_user = none"] : []),
    `default_user = ${opts.adminUsername}`,
    `default_pass = ${opts.adminPassword}`,
    "default_user_tags.administrator = true",
  ];
  if (opts.amqpPasswordLogins === true) {
    lines.push("auth_mechanisms.1 = PLAIN", "auth_mechanisms.2 = AMQPLAIN");
  } else {
    lines.push(`auth_mechanisms.1 = ${NO_AMQP_MECHANISM}`);
  }
  return lines;
}
