// The cluster example (examples/cluster: npm run cluster) under load through HAProxy: three memcached
// nodes, the example site, two edges. One edge and one memcached node are killed (SIGKILL) mid-run and
// started again: HAProxy answers every request (retries and redispatch to the other edge, health checks
// on /healthz), and the edges' hit ratio is back above 90 % within 10 s of the restart.
import http from 'node:http';
import autocannon from 'autocannon';
import { startCluster } from '../../examples/cluster/cluster';
import type { Cluster, ClusterPorts } from '../../examples/cluster/cluster';
import { haproxyConfig } from '../../examples/cluster/haproxy';
import { request } from '../helpers/origin';
import { freePort, sleep } from '../helpers/ports';

jest.setTimeout(60000);

const PAGES = Array.from({ length: 30 }, (_, i) => `/posts/${i + 1}`);

async function freePorts(): Promise<ClusterPorts> {
  const p = async (n: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await freePort());
    return out;
  };
  const [haproxy, haproxyStats, origin] = await p(3);
  return { haproxy: haproxy!, haproxyStats: haproxyStats!, origin: origin!, edges: await p(2), admins: await p(2), memcached: await p(3) };
}

/** HIT and all requests an edge counted (edge_cache_requests_total), or undefined while it is down. */
function counts(adminPort: number): Promise<{ hit: number; all: number } | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: adminPort, path: '/metrics', agent: false, timeout: 500 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let hit = 0;
        let all = 0;
        for (const m of text.matchAll(/^edge_cache_requests_total\{status="([A-Z]+)"\} (\d+)$/gm)) {
          all += Number(m[2]);
          if (m[1] === 'HIT') hit += Number(m[2]);
        }
        resolve({ hit, all });
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

interface Sample {
  t: number;
  hit: number;
  all: number;
  perEdge: number[];
}

/** Polls both edges' counters; sums their growth, so an edge restarted from zero counts from its new start. */
function sampler(cluster: Cluster): { samples: Sample[]; stop(): Promise<void> } {
  const samples: Sample[] = [];
  const last = cluster.ports.admins.map(() => ({ hit: 0, all: 0 }));
  const totals = { hit: 0, all: 0 };
  const perEdge = cluster.ports.admins.map(() => 0);
  let running = true;
  const loop = (async () => {
    while (running) {
      const now = await Promise.all(cluster.ports.admins.map((p) => counts(p)));
      now.forEach((c, i) => {
        if (!c) return;
        const prev = last[i]!;
        const grown = c.all >= prev.all ? { hit: c.hit - prev.hit, all: c.all - prev.all } : c; // restarted: counts anew
        totals.hit += grown.hit;
        totals.all += grown.all;
        perEdge[i]! += grown.all;
        last[i] = c;
      });
      samples.push({ t: Date.now(), hit: totals.hit, all: totals.all, perEdge: [...perEdge] });
      await sleep(250);
    }
  })();
  return {
    samples,
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** The hit ratio between two moments, from the samples nearest to them. */
function ratio(samples: readonly Sample[], from: number, to: number): { ratio: number; requests: number } {
  const a = samples.find((s) => s.t >= from)!;
  const b = [...samples].reverse().find((s) => s.t <= to)!;
  return { ratio: (b.hit - a.hit) / Math.max(1, b.all - a.all), requests: b.all - a.all };
}

it('the HAProxy config keeps deploy/haproxy.cfg settings: checks on /healthz, redispatch, retry-on', () => {
  const cfg = haproxyConfig({ port: 1, statsPort: 2, edges: [{ port: 3, adminPort: 4 }, { port: 5, adminPort: 6 }] });
  expect(cfg).toMatch(/^\s*option httpchk GET \/healthz$/m);
  expect(cfg).toMatch(/^\s*option redispatch$/m);
  expect(cfg).toMatch(/^\s*retry-on all-retryable-errors$/m);
  expect(cfg).toMatch(/^\s*server edge1 127\.0\.0\.1:3 check port 4$/m);
  expect(cfg).toMatch(/^\s*server edge2 127\.0\.0\.1:5 check port 6$/m);
  expect(cfg).toMatch(/^\s*bind 127\.0\.0\.1:1$/m);
  expect(cfg).not.toMatch(/10\.0\.0\./);
});

it('kill an edge and a memcached node under load, start them again: no failed request, hit ratio back above 90 % in 10 s', async () => {
  const cluster = await startCluster({ ports: await freePorts() });
  const poll = sampler(cluster);
  try {
    // Warm: every page rendered once and stored in memcached by the site's pageCache().
    for (const path of PAGES) await request(cluster.ports.haproxy, path, { host: '127.0.0.1' });
    for (const path of PAGES) expect((await request(cluster.ports.haproxy, path, { host: '127.0.0.1' })).headers['x-cache']).toBe('HIT');

    let finished: (r: autocannon.Result) => void = () => undefined;
    const done = new Promise<autocannon.Result>((resolve) => (finished = resolve));
    const load = autocannon(
      {
        url: `http://127.0.0.1:${cluster.ports.haproxy}`,
        connections: 16,
        overallRate: 1500, // bounded: the machine is shared
        duration: 40,
        headers: { host: '127.0.0.1' },
        requests: PAGES.map((path) => ({ path })),
      },
      (err, r) => {
        if (err) throw err;
        finished(r);
      },
    );
    await sleep(3000);
    const killedAt = Date.now();
    await Promise.all([cluster.edges[1]!.kill(), cluster.memcached[1]!.kill()]);
    await sleep(3000);
    await Promise.all([cluster.edges[1]!.start(), cluster.memcached[1]!.start()]);
    const restartedAt = Date.now();
    await sleep(10500);
    load.stop();
    const result = await done;
    await poll.stop();

    expect(result.requests.total).toBeGreaterThan(5000);
    expect({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx, resets: result.resets }).toEqual({ errors: 0, timeouts: 0, non2xx: 0, resets: 0 });
    const s = poll.samples;
    const before = ratio(s, killedAt - 2000, killedAt);
    const back = ratio(s, restartedAt + 8000, restartedAt + 10000);
    process.stderr.write(`hit ratio: before ${before.ratio.toFixed(3)}, during ${ratio(s, killedAt, restartedAt).ratio.toFixed(3)}, 8-10 s after the restart ${back.ratio.toFixed(3)} (${back.requests} requests)\n`);
    expect(before.ratio).toBeGreaterThan(0.9);
    expect(back.requests).toBeGreaterThan(500);
    expect(back.ratio).toBeGreaterThan(0.9);
    // The restarted edge is back in HAProxy's rotation (its checks passed) and takes its share.
    const edge2 = s[s.length - 1]!.perEdge[1]! - s.find((x) => x.t >= restartedAt + 8000)!.perEdge[1]!;
    expect(edge2).toBeGreaterThan(100);
  } finally {
    await poll.stop();
    await cluster.stop();
  }
});
