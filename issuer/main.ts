/** The entry point the issuer image bundles (issuer/Dockerfile): `node server.js`. */
import { run } from "./server";

run();
