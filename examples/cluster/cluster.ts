// `npm run cluster`: the whole production layout on one machine, on loopback: three memcached nodes, the
// example site (examples/express-site, pageCache() on the same memcached), two edges, HAProxy in front.
// Prints where everything is; Ctrl-C stops all of it. startCluster() is the same layout for tests.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createExampleApp } from '../express-site/app';
import { haproxyConfig, repoRoot } from './haproxy';
import { service } from './processes';
import type { Service } from './processes';

export interface ClusterPorts {
  readonly haproxy: number;
  readonly haproxyStats: number;
  readonly origin: number;
  readonly edges: readonly number[];
  readonly admins: readonly number[];
  readonly memcached: readonly number[];
}

/** `npm run cluster` listens here; CLUSTER_PORT moves HAProxy (and everything else by the same offset). */
export function defaultPorts(haproxy = 8080): ClusterPorts {
  const d = haproxy - 8080;
  return {
    haproxy,
    haproxyStats: 8404 + d,
    origin: 3000 + d,
    edges: [8081 + d, 8082 + d],
    admins: [9191 + d, 9192 + d],
    memcached: [11311 + d, 11312 + d, 11313 + d],
  };
}

export interface ClusterOptions {
  readonly ports?: ClusterPorts;
  /** What must be identical on every edge and app: the token and the key prefix ('' keeps nginx's key). */
  readonly adminToken?: string | undefined;
  readonly keyPrefix?: string | undefined;
  /** Extra `serve` flags for both edges. */
  readonly edgeFlags?: readonly string[];
}

export interface Cluster {
  readonly ports: ClusterPorts;
  readonly adminToken: string;
  readonly memcachedList: string;
  readonly memcached: readonly Service[];
  readonly edges: readonly Service[];
  readonly haproxy: Service;
  /** The flags both edges run with (the same on every machine; the token goes in EDGE_ADMIN_TOKEN). */
  readonly sharedFlags: readonly string[];
  edgeFlags(i: number): readonly string[];
  describe(): string;
  stop(): Promise<void>;
}

const NODE = process.execPath;

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const ports = options.ports ?? defaultPorts();
  const adminToken = options.adminToken ?? randomBytes(16).toString('hex');
  const keyPrefix = options.keyPrefix ?? '';
  const memcachedList = ports.memcached.map((p) => `127.0.0.1:${p}`).join(',');
  const cli = path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
  const dir = mkdtempSync(path.join(tmpdir(), 'epc-cluster-'));

  const root = process.getuid?.() === 0 ? ['-u', 'root'] : [];
  const memcached = ports.memcached.map((p, i) =>
    service(`memcached ${i + 1}`, p, 'memcached', ['-l', '127.0.0.1', '-p', String(p), '-U', '0', '-m', '64', '-t', '1', ...root]),
  );
  // Every edge and the app: the same memcached list in the same order, the same key prefix, the same token
  // (given in the environment, EDGE_ADMIN_TOKEN, so that it is not in every process listing).
  const sharedFlags = [
    '--memcached', memcachedList,
    '--origin', `http://127.0.0.1:${ports.origin}`,
    '--key-prefix', keyPrefix,
    // Above how long HAProxy keeps idle connections to a server, so the edge never closes one it reuses.
    '--keepalive-timeout', '30000',
    ...(options.edgeFlags ?? []),
  ];
  const edgeFlags = (i: number): string[] => ['serve', '--host', '127.0.0.1', '--port', String(ports.edges[i]), '--admin-port', String(ports.admins[i]), ...sharedFlags];
  const edges = ports.edges.map((p, i) => service(`edge ${i + 1}`, p, NODE, [cli, ...edgeFlags(i)], { ...process.env, EDGE_ADMIN_TOKEN: adminToken, EDGE_LOG_LEVEL: process.env.EDGE_LOG_LEVEL ?? 'warn' }));
  const cfg = path.join(dir, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig({ port: ports.haproxy, statsPort: ports.haproxyStats, edges: ports.edges.map((p, i) => ({ port: p, adminPort: ports.admins[i]! })) }));
  const haproxy = service('haproxy', ports.haproxy, 'haproxy', ['-db', '-f', cfg]);

  let site: Server | undefined;
  const stop = async (): Promise<void> => {
    await haproxy.stop(5000);
    await Promise.all(edges.map((e) => e.stop()));
    if (site) {
      const s = site;
      site = undefined;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    await Promise.all(memcached.map((m) => m.stop(1000)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(memcached.map((m) => m.start()));
    const app = createExampleApp({ memcached: memcachedList, keyPrefix });
    site = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(ports.origin, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
    await Promise.all(edges.map((e) => e.start()));
    await haproxy.start();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    ports,
    adminToken,
    memcachedList,
    memcached,
    edges,
    haproxy,
    sharedFlags,
    edgeFlags,
    describe: () =>
      [
        `cluster ready (Ctrl-C stops all of it):`,
        `  HAProxy     http://127.0.0.1:${ports.haproxy}/   stats http://127.0.0.1:${ports.haproxyStats}/   (config ${cfg})`,
        ...ports.edges.map((p, i) => `  edge ${i + 1}      http://127.0.0.1:${p}/   admin http://127.0.0.1:${ports.admins[i]}/ (/healthz, /metrics)`),
        `  origin      http://127.0.0.1:${ports.origin}/   (examples/express-site, pageCache() on the same memcached)`,
        `  memcached   ${memcachedList}`,
        `  admin token ${adminToken}`,
        `  try: curl -i http://127.0.0.1:${ports.haproxy}/posts/1 (twice: X-Cache: HIT)`,
      ].join('\n'),
    stop,
  };
}

if (require.main === module) {
  const port = Number(process.env.CLUSTER_PORT ?? 8080);
  startCluster({ ports: defaultPorts(port), adminToken: process.env.EDGE_ADMIN_TOKEN, keyPrefix: process.env.EDGE_KEY_PREFIX }).then(
    (cluster) => {
      process.stdout.write(`${cluster.describe()}\n`);
      let stopping = false;
      const onSignal = (): void => {
        if (stopping) return;
        stopping = true;
        process.stdout.write('\nstopping the cluster...\n');
        cluster.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    },
    (err: unknown) => {
      process.stderr.write(`cluster: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
