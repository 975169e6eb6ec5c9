// A web app whose users sign in at the tenant's identity provider (OpenID Connect, authorization
// code with PKCE), trade the ID token for a broker token at the token issuer, and connect over
// Web MQTT with TLS. The page holds no password and no key: only the user's short-lived tokens.
// It reads config.json: { identityProvider, clientId, tokenUrl, brokerUrl }.
"use strict";

const status = (text) => (document.getElementById("status").textContent = text);
const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const random = () => b64url(crypto.getRandomValues(new Uint8Array(32)));

async function endpoints(config) {
  const res = await fetch(`${config.identityProvider}/.well-known/openid-configuration`);
  return res.json();
}

async function signIn(config) {
  const oidc = await endpoints(config);
  const verifier = random();
  const state = random();
  sessionStorage.setItem("pkce", JSON.stringify({ verifier, state }));
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const url = new URL(oidc.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: config.clientId,
    redirect_uri: location.origin + location.pathname,
    response_type: "code",
    scope: "openid",
    code_challenge: challenge,
    code_challenge_method: "S256",
    state,
  }).toString();
  location.assign(url.toString());
}

/** The authorization code, exchanged for the ID token (PKCE: the verifier never left this tab). */
async function idTokenFromCallback(config, params) {
  const saved = JSON.parse(sessionStorage.getItem("pkce") || "null");
  sessionStorage.removeItem("pkce");
  if (!saved || params.get("state") !== saved.state) throw new Error("sign-in state does not match");
  const oidc = await endpoints(config);
  const res = await fetch(oidc.token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: location.origin + location.pathname,
      client_id: config.clientId,
      code_verifier: saved.verifier,
    }),
  });
  if (!res.ok) throw new Error(`token endpoint answered ${res.status}`);
  return (await res.json()).id_token;
}

/** The broker token for this user: username, password (the token) and the client ids it allows. */
async function brokerToken(config, idToken) {
  const res = await fetch(config.tokenUrl, { method: "POST", headers: { authorization: `Bearer ${idToken}` } });
  const body = await res.json();
  if (!res.ok) throw new Error(`token issuer answered ${res.status}: ${body.error}`);
  return body;
}

function connect(config, issued) {
  const clientId = issued.clientIds[0];
  const client = mqtt.connect(config.brokerUrl, { username: issued.username, password: issued.token, clientId, protocolVersion: 4, clean: true, reconnectPeriod: 0 });
  window.app = { client, issued };
  client.on("connect", () => {
    status(`connected as ${issued.user}`);
    client.subscribe(`client/${clientId}/#`, { qos: 1 }, (err, granted) => {
      if (err || !granted || granted[0].qos === 128) return status(`subscription refused for ${issued.user}`);
      status(`subscribed as ${issued.user} to client/${clientId}/#`);
    });
  });
  client.on("message", (topic, payload) => {
    const li = document.createElement("li");
    li.textContent = `${topic}: ${payload.toString()}`;
    document.getElementById("messages").appendChild(li);
  });
  client.on("error", (e) => status(`broker error: ${e.message}`));
  client.on("close", () => status(`disconnected (${issued.user})`));
}

async function main() {
  const config = await (await fetch("config.json")).json();
  const params = new URLSearchParams(location.search);
  if (!params.has("code")) {
    const button = document.getElementById("sign-in");
    button.hidden = false;
    button.onclick = () => signIn(config).catch((e) => status(`sign-in failed: ${e.message}`));
    return;
  }
  history.replaceState(null, "", location.pathname);
  status("signing in");
  const idToken = await idTokenFromCallback(config, params);
  status("getting a broker token");
  connect(config, await brokerToken(config, idToken));
}

main().catch((e) => status(`failed: ${e.message}`));
