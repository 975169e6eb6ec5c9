/**
 * A local node of the release under test that runs what the shipped dev platform stack renders
 * and uploads (its TLS settings, CA bundle, broker certificate chain and key) with no plaintext
 * listener: for e2e suites whose clients log in with certificates.
 */
import { loadStackConfig } from "./apply-stack";
import { startBroker, type TestBroker } from "./broker";
import type { StackRunResult } from "./run-stack";

type Upload = { file: string; content: string };

/** A file the dev platform uploads to the broker's node 0 container. */
export function devUpload(platform: StackRunResult, file: string): string {
  // The broker's node 0 (the token issuer's container is another).
  const container = platform.registered.find((r) => r.type === "docker:index/container:Container" && r.name === "rabbitmq-0");
  const u = (container?.inputs["uploads"] as Upload[] | undefined)?.find((x) => x.file === file);
  if (u === undefined) throw new Error(`the dev platform uploads no ${file}`);
  return u.content;
}

/** Boots a node with the dev platform's TLS files (`platform`: the applied dev stack). */
export async function startDevTlsNode(platform: StackRunResult): Promise<TestBroker> {
  const depth = Number(/^ssl_options\.depth = (\d+)$/m.exec(devUpload(platform, "/etc/rabbitmq/rabbitmq-mqtt.d/10-rendered.conf"))?.[1]);
  const devBroker = (loadStackConfig("dev")["platform"] as { broker: { tls: Record<string, unknown> } }).broker;
  return startBroker({
    broker: { tls: devBroker.tls },
    tls: {
      caCertPem: devUpload(platform, "/etc/rabbitmq/tls/ca.pem"),
      certPem: devUpload(platform, "/etc/rabbitmq/tls/cert.pem"),
      keyPem: devUpload(platform, "/etc/rabbitmq/tls/key.pem"),
      depth,
      plaintext: false,
    },
  });
}
