/**
 * The broker's listeners as deployment targets see them (ports to publish, Services to create,
 * URLs to export), and the names its certificate must carry. One list, so a port, a Service and
 * a certificate name cannot drift apart. Pure.
 */
import type { BrokerModel } from "./platform-config";

export interface Listener {
  /** Service and port name: a DNS label of at most 15 characters (a Kubernetes port name). */
  readonly name: string;
  readonly port: number;
  readonly protocol: "mqtt" | "mqtts" | "ws" | "wss" | "http" | "https" | "amqp" | "amqps";
  /** Operators' endpoints (management, AMQP) stay inside the cluster. */
  readonly internalOnly: boolean;
}

/** Every listener the rendered config opens (plaintext ones only when the model keeps them). */
export function brokerListeners(broker: BrokerModel): Listener[] {
  const l = broker.listeners;
  const out: Listener[] = [
    { name: "mqtts", port: l.mqtts, protocol: "mqtts", internalOnly: false },
    { name: "web-mqtts", port: l.webMqtts, protocol: "wss", internalOnly: false },
    { name: "management-tls", port: l.managementHttps, protocol: "https", internalOnly: true },
    ...(l.amqps !== null ? [{ name: "amqps", port: l.amqps, protocol: "amqps" as const, internalOnly: true }] : []),
    ...l.tenantMqtts.map((p) => ({ name: `mqtts-${p}`, port: p, protocol: "mqtts" as const, internalOnly: false })),
  ];
  if (broker.plaintextListeners) {
    out.push(
      { name: "mqtt", port: l.mqtt, protocol: "mqtt", internalOnly: false },
      { name: "web-mqtt", port: l.webMqtt, protocol: "ws", internalOnly: false },
      { name: "management", port: l.management, protocol: "http", internalOnly: true },
      ...(l.amqp !== null ? [{ name: "amqp", port: l.amqp, protocol: "amqp" as const, internalOnly: true }] : []),
      ...l.tenantMqtt.map((p) => ({ name: `mqtt-${p}`, port: p, protocol: "mqtt" as const, internalOnly: false })),
    );
  }
  return out;
}

/** A client URL for a listener at `host:port`. */
export function listenerUrl(listener: Listener, host: string, port = listener.port): string {
  const path = listener.protocol === "ws" || listener.protocol === "wss" ? "/ws" : "";
  return `${listener.protocol}://${host}:${port}${path}`;
}

export interface CertificateNames {
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/** Docker: each node's container host name, the loopback names and the published address. */
export function dockerCertificateNames(
  hosts: readonly string[],
  publishAddress: string,
  extra: CertificateNames,
): CertificateNames {
  return {
    dnsNames: unique([...hosts, "localhost", ...extra.dnsNames]),
    ipAddresses: unique(["127.0.0.1", ...(publishAddress !== "0.0.0.0" ? [publishAddress] : []), ...extra.ipAddresses]),
  };
}

/**
 * Kubernetes: every pod's stable name under the headless Service and every listener Service, in
 * the forms clients use inside the cluster (`svc`, `svc.ns`, `svc.ns.svc`, `...cluster.local`).
 */
export function kubernetesCertificateNames(
  opts: { readonly name: string; readonly namespace: string; readonly headless: string; readonly nodes: number; readonly services: readonly string[] },
  extra: CertificateNames,
): CertificateNames {
  const ns = opts.namespace;
  const pods = Array.from({ length: opts.nodes }, (_, i) => `${opts.name}-${i}.${opts.headless}.${ns}`);
  const services = opts.services.flatMap((s) => [s, `${s}.${ns}`, `${s}.${ns}.svc`, `${s}.${ns}.svc.cluster.local`]);
  return {
    dnsNames: unique([...pods.flatMap((p) => [`${p}.svc`, `${p}.svc.cluster.local`]), ...services, ...extra.dnsNames]),
    ipAddresses: unique([...extra.ipAddresses]),
  };
}
