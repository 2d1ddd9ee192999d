// Proof that our ring is nginx's: nginx with `hash $memcached_key consistent` over three real memcached
// nodes finds every one of 1,000 values that we stored only on the node our ring picked.
import http from 'node:http';
import { createHash } from 'node:crypto';
import { createHashRing, parseServerList } from '../../src/core/ring';
import { createMemcachedStore } from '../../src/core/stores/memcached';
import { startMemcacheds } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { startNginx } from '../helpers/nginx';
import type { NginxProcess } from '../helpers/nginx';
import { freePort } from '../helpers/ports';

let nodes: MemcachedProcess[] = [];
let nginx: NginxProcess | undefined;

afterAll(async () => {
  await nginx?.stop();
  await Promise.all(nodes.map((n) => n.stop()));
});

function get(port: number, path: string, agent: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      })
      .on('error', reject);
  });
}

it('nginx `hash $memcached_key consistent` finds all 1,000 keys on the node our ring chose', async () => {
  nodes = await startMemcacheds(3);
  const servers = parseServerList('memcached', nodes.map((n) => n.address).join(','));
  const ring = createHashRing(servers);
  const port = await freePort();
  nginx = await startNginx(
    port,
    `
  upstream mc {
    hash $memcached_key consistent;
    ${servers.map((s) => `server ${s.name};`).join('\n    ')}
    keepalive 8;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      set $memcached_key $arg_k;
      memcached_pass mc;
    }
  }`,
  );
  // One single-node client per memcached, so each value lands exactly where our ring says and nowhere else.
  const singles = servers.map((s) => createMemcachedStore({ servers: [s], timeoutMs: 1000 }));
  const keys = Array.from({ length: 1000 }, (_, i) => createHash('md5').update(`example.com/page/${i}`).digest('hex'));
  const perNode = [0, 0, 0];
  try {
    for (const key of keys) {
      const owner = ring.nodeFor(key);
      perNode[owner]!++;
      expect(await singles[owner]!.set(key, Buffer.from(`value-of-${key}`), 0, 300)).toBe(true);
    }
    // Every node got a share, so the test would catch a ring that put things on the wrong node.
    for (const n of perNode) expect(n).toBeGreaterThan(150);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const misses: string[] = [];
    for (let i = 0; i < keys.length; i += 8) {
      const batch = keys.slice(i, i + 8);
      const results = await Promise.all(batch.map((key) => get(port, `/?k=${key}`, agent)));
      results.forEach((r, j) => {
        if (r.status !== 200 || r.body !== `value-of-${batch[j]}`) misses.push(batch[j]!);
      });
    }
    agent.destroy();
    expect(misses).toEqual([]);
  } finally {
    await Promise.all(singles.map((s) => s.close()));
  }
});
