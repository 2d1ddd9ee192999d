// The HAProxy config of the cluster example, made from deploy/haproxy.cfg (the production sample) so both
// keep the same settings: health checks on /healthz, option redispatch, retry-on all-retryable-errors.
// Only the addresses change: loopback ports, each edge's own admin port for its check, a stats page.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface HaproxyLayout {
  readonly port: number;
  readonly statsPort: number;
  /** Each edge: its port and its admin port (where /healthz is). */
  readonly edges: readonly { readonly port: number; readonly adminPort: number }[];
}

/** The repository root, from the source (examples/cluster) or the build (dist/examples/cluster). */
export function repoRoot(): string {
  for (const up of [['..', '..'], ['..', '..', '..']]) {
    const dir = path.resolve(__dirname, ...up);
    if (existsSync(path.join(dir, 'deploy', 'haproxy.cfg'))) return dir;
  }
  throw new Error(`deploy/haproxy.cfg not found above ${__dirname}`);
}

/** Replaces exactly one line matching `pattern`; throws when deploy/haproxy.cfg no longer has it. */
function replaceLine(lines: string[], pattern: RegExp, by: (line: string) => string[]): string[] {
  const at = lines.findIndex((l) => pattern.test(l));
  if (at === -1) throw new Error(`deploy/haproxy.cfg has no line matching ${String(pattern)}: update examples/cluster/haproxy.ts`);
  return [...lines.slice(0, at), ...by(lines[at]!), ...lines.slice(at + 1)];
}

export function haproxyConfig(layout: HaproxyLayout, template = readFileSync(path.join(repoRoot(), 'deploy', 'haproxy.cfg'), 'utf8')): string {
  let lines = template.split('\n').filter((l) => !/^\s*server edge\d+ /.test(l));
  // One machine's descriptor limit, not a production box's: HAProxy needs about two per connection.
  lines = replaceLine(lines, /^\s*maxconn \d+$/, (l) => [l.replace(/\d+/, '4096')]);
  lines = replaceLine(lines, /^\s*bind :80$/, (l) => [l.replace(':80', `127.0.0.1:${layout.port}`)]);
  // deploy/ checks every edge on the same admin port; here each edge has its own, given per server.
  lines = replaceLine(lines, /^\s*default-server check port \d+ /, (l) => [
    l.replace(/ port \d+/, ''),
    ...layout.edges.map((e, i) => `    server edge${i + 1} 127.0.0.1:${e.port} check port ${e.adminPort}`),
  ]);
  for (const needed of ['option httpchk GET /healthz', 'option redispatch', 'retry-on all-retryable-errors']) {
    if (!lines.some((l) => l.trim() === needed)) throw new Error(`deploy/haproxy.cfg lost '${needed}'`);
  }
  lines.push('listen stats', `    bind 127.0.0.1:${layout.statsPort}`, '    stats enable', '    stats uri /', '');
  return lines.join('\n');
}
