/**
 * The issuer image's build context: issuer/Dockerfile and server.js, esbuild's bundle of
 * issuer/main.ts (the issuer and the core it uses, with jose and zod; nothing else). The Docker
 * platform stack writes it before building the image; `tsx issuer/bundle.ts DIR` writes it for a
 * build of your own. The bundle is the same for the same sources, so an unchanged issuer does not
 * change the image.
 */
import { buildSync } from "esbuild";
import * as fs from "node:fs";
import * as path from "node:path";

const HERE = __dirname;

/** The Node.js release the Dockerfile's base image runs. */
export const ISSUER_NODE_TARGET = "node24";

/**
 * Writes the build context into `dir` (created if missing) and returns `dir`. Each file is written
 * to a temporary name and renamed, so a build reading the context never sees half a file.
 */
export function writeIssuerBuildContext(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const out = buildSync({
    entryPoints: [path.join(HERE, "main.ts")],
    bundle: true,
    platform: "node",
    target: ISSUER_NODE_TARGET,
    format: "cjs",
    write: false,
    outfile: path.join(dir, "server.js"),
    legalComments: "none",
    logLevel: "error",
  });
  const bundle = out.outputFiles[0];
  if (bundle === undefined || out.outputFiles.length !== 1) throw new Error(`esbuild wrote ${out.outputFiles.length} files for the issuer, expected 1`);
  const put = (name: string, content: Uint8Array | string) => {
    const tmp = path.join(dir, `.${name}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, content);
    fs.renameSync(tmp, path.join(dir, name));
  };
  put("server.js", bundle.contents);
  put("Dockerfile", fs.readFileSync(path.join(HERE, "Dockerfile")));
  return dir;
}

if (require.main === module) {
  const dir = process.argv[2];
  if (dir === undefined) {
    console.error("usage: tsx issuer/bundle.ts DIR");
    process.exit(2);
  }
  console.log(`token issuer build context: ${writeIssuerBuildContext(path.resolve(dir))}`);
}
