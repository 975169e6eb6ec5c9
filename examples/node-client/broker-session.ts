/**
 * A mobile or desktop app's connection to the broker with token sign-in, in Node (the same steps
 * apply in any MQTT client library):
 * 1. get the user's ID token from the tenant's identity provider (the app's own sign-in: the
 *    system browser with authorization code and PKCE, or the platform's account APIs);
 * 2. trade it at the token issuer for a broker token;
 * 3. connect with username `<vhost>:<app>`, the token as password and a client id the token allows,
 *    with a persistent session;
 * 4. before the token expires, get a new one and reconnect with the same client id: the session,
 *    its subscriptions and the messages queued meanwhile are kept (from 4.0 the broker closes a
 *    connection whose token expired; 3.10 does not, but the app renews the same way).
 * No password or key is stored in the app: only the user's short-lived tokens.
 */
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";

export interface IssuedBrokerToken {
  readonly token: string;
  readonly expiresAt: number;
  readonly username: string;
  readonly user: string;
  readonly clientIds: readonly string[];
}

export interface BrokerSessionOptions {
  /** The issuer's token URL for this tenant and app: `<issuer>/v1/tenants/<tenant>/apps/<app>/token`. */
  readonly tokenUrl: string;
  /** The app's sign-in: a fresh ID token of the tenant's identity provider. */
  readonly idToken: () => Promise<string>;
  /** The broker's MQTT URL, e.g. mqtts://mqtt.example.com:8883. */
  readonly brokerUrl: string;
  /** Renew this many seconds before the token expires. */
  readonly renewBeforeSeconds?: number;
  /** Which of the token's client ids this device uses (0-based): one per device of the user. */
  readonly clientIdIndex?: number;
  /** Extra MQTT options (e.g. `ca` for a private CA). */
  readonly mqtt?: IClientOptions;
  /** How to fetch (a private CA for the issuer needs a fetch that trusts it). */
  readonly fetch?: typeof fetch;
  readonly onMessage?: (topic: string, payload: Buffer) => void;
}

export class BrokerSession {
  private client: MqttClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The token in use now. */
  issued: IssuedBrokerToken | undefined;
  /** How many times the session reconnected with a renewed token. */
  renewals = 0;

  constructor(private readonly opts: BrokerSessionOptions) {}

  get clientId(): string {
    const id = this.issued?.clientIds[this.opts.clientIdIndex ?? 0];
    if (id === undefined) throw new Error("not signed in, or no such client id in the token");
    return id;
  }

  get mqttClient(): MqttClient | undefined {
    return this.client;
  }

  /** Signs in and connects; subscribes to `topics` (the user's own, as the tenant's templates allow). */
  async start(topics: readonly string[]): Promise<void> {
    await this.connect(topics);
  }

  private async brokerToken(): Promise<IssuedBrokerToken> {
    const res = await (this.opts.fetch ?? fetch)(this.opts.tokenUrl, { method: "POST", headers: { authorization: `Bearer ${await this.opts.idToken()}` } });
    const body = (await res.json()) as IssuedBrokerToken & { error?: string };
    if (!res.ok) throw new Error(`the token issuer answered ${res.status}: ${body.error ?? "no reason"}`);
    return body;
  }

  private async connect(topics: readonly string[]): Promise<void> {
    const issued = await this.brokerToken();
    this.issued = issued;
    const previous = this.client;
    const client = await new Promise<MqttClient>((resolve, reject) => {
      const c = mqtt.connect(this.opts.brokerUrl, {
        ...this.opts.mqtt,
        username: issued.username,
        password: issued.token,
        clientId: this.clientId,
        clean: false,
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
      c.once("connect", () => resolve(c));
      c.once("error", (e) => reject(e));
    });
    // The new connection took the session over; the old one is closed by the broker.
    if (previous !== undefined) previous.end(true);
    client.on("message", (topic, payload) => this.opts.onMessage?.(topic, payload));
    this.client = client;
    for (const t of topics) {
      const granted = await client.subscribeAsync(t, { qos: 1 });
      if (granted[0]?.qos === 128) throw new Error(`subscription to ${t} refused`);
    }
    const renewIn = Math.max(1, issued.expiresAt - (this.opts.renewBeforeSeconds ?? 60) - Date.now() / 1000) * 1000;
    this.timer = setTimeout(() => {
      if (this.closed) return;
      this.connect(topics).then(
        () => this.renewals++,
        (e: unknown) => console.error(`renewing the broker token failed: ${e instanceof Error ? e.message : String(e)}`),
      );
    }, renewIn);
  }

  async stop(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.client?.endAsync(true);
  }
}
