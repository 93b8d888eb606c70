// Writes `<file>.br` and `<file>.gz` beside every compressible file of the build, once, at
// the best ratio: the control plane serves them as they are (tower-http's ServeDir
// `precompressed_*`) instead of compressing each answer again, which cost tens of
// milliseconds per script in a debug build on a busy machine, before the first paint.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const COMPRESSIBLE = /\.(js|css|html|svg|json|txt|map)$/;
// Smaller files gain nothing worth a second request path.
const MIN_BYTES = 1024;

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else yield path;
  }
}

const dist = new URL('../dist/', import.meta.url).pathname;
let count = 0;
for (const path of files(dist)) {
  if (!COMPRESSIBLE.test(path) || path.includes('/.vite/')) continue;
  const bytes = readFileSync(path);
  if (bytes.length < MIN_BYTES) continue;
  writeFileSync(`${path}.gz`, gzipSync(bytes, { level: 9 }));
  writeFileSync(
    `${path}.br`,
    brotliCompressSync(bytes, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
      },
    }),
  );
  count += 1;
}
console.log(`precompressed ${count} files (.br and .gz)`);
