// edge-page-cache reload: asks a running edge to reload through its admin port (POST /reload), for
// platforms without signals; prints the new workers' pids, or why the edge refused.
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { ConfigError } from '../core/errors';

/** edge-page-cache reload [--admin URL] [--token T]: resolves with the line to print; throws when refused. */
export async function reloadCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options: { admin: { type: 'string' }, token: { type: 'string' }, 'admin-token': { type: 'string' } }, strict: true }));
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}; usage: edge-page-cache reload --admin URL [--token T]`);
  }
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const admin = str(values.admin) ?? env.EDGE_ADMIN_URL ?? `http://127.0.0.1:${env.EDGE_ADMIN_PORT ?? '9091'}`;
  const token = str(values.token) ?? str(values['admin-token']) ?? env.EDGE_ADMIN_TOKEN;
  if (token === undefined) throw new ConfigError('reload needs --token (or EDGE_ADMIN_TOKEN): the admin token of the edge');
  let url: URL;
  try {
    url = new URL('/reload', admin);
  } catch {
    throw new ConfigError(`--admin must be the admin port's URL (http://127.0.0.1:9091), got '${admin}'`);
  }
  // A reload drains each old worker before the next: allow it time (--drain-timeout per worker, at worst).
  const res = await request(url, { method: 'POST', headers: { authorization: `Bearer ${token}` }, headersTimeout: 600_000, bodyTimeout: 600_000 });
  const text = await res.body.text();
  let body: { ok?: boolean; error?: string; generation?: number; pids?: number[] } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // reported below with the status
  }
  if (res.statusCode !== 200 || body.ok !== true) {
    throw new Error(`reload refused (${res.statusCode}): ${body.error ?? text.trim()}`);
  }
  return `reloaded: generation ${body.generation ?? '?'}, workers ${(body.pids ?? []).join(' ')}`;
}
