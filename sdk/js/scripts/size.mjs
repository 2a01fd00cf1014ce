// Bundle sizes: each package's dist/*.js together, raw and gzipped (level 9), as `name_bytes`
// lines like bench/'s. `npm run size` after `npm run build`. The client must stay under 10 KiB
// gzipped (issue 23); packages/client/test/size.test.js holds it there.
import { readdirSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

export function packageSize(name) {
  const dist = new URL(`../packages/${name}/dist/`, import.meta.url);
  const code = Buffer.concat(readdirSync(dist).filter((f) => f.endsWith(".js")).sort().map((f) => readFileSync(new URL(f, dist))));
  return { raw: code.length, gzip: gzipSync(code, { level: 9 }).length };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const name of ["client", "react", "edge"]) {
    const { raw, gzip } = packageSize(name);
    console.log(`${name}_bytes: ${raw}`);
    console.log(`${name}_gzip_bytes: ${gzip}`);
  }
}
