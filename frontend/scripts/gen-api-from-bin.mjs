// Regenerates src/lib/api/schema.ts from a `controlplane serve` started for the purpose
// (CONTROLPLANE_BIN, DATABASE_URL, NATS_URL as for the e2e run).
import { execFileSync } from 'node:child_process';
import { Deployment } from '../e2e/server.mjs';

const dep = new Deployment();
try {
  dep.createDatabase();
  const { url } = await dep.serve(0, 'gen-api');
  execFileSync('node', [new URL('./gen-api.mjs', import.meta.url).pathname, url], {
    stdio: 'inherit',
  });
} finally {
  await dep.close();
}
