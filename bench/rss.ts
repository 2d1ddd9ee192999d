// Memory under a URL flood: one million distinct URLs (each a miss, fetched, stored) through one edge,
// sampling the resident memory (RSS) of every edge process once a second, and printing the curve and its
// peak against the bound the README states: --memory (the L1, or the whole embedded store) plus a fixed
// overhead per process. A cache whose memory grew with the number of distinct URLs would fail here.
// Usage (after npm run build):
//   node dist/bench/rss.js [--urls 1000000] [--memory 64m] [--connections 32] [--memcached auto|off] [--bytes 2048]
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { stopAll, stopOnInterrupt } from './procs';
import { memcachedOnPath, startEdge, startMemcached, startOrigin } from './stack';

/** The bound the README states: per edge process, --memory plus this much (V8 heap, code, sockets, buffers). */
const OVERHEAD_MB = 256;

/** A process and its children (the edge's primary and workers), from /proc. */
function tree(root: number): number[] {
  const kids = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      kids.set(ppid, [...(kids.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone meanwhile
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(kids.get(out[i]!) ?? []));
  return out;
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) / 1024;
  } catch {
    return 0;
  }
}

function bytes(text: string): number {
  const m = /^(\d+)([km]?)$/i.exec(text);
  if (m === null) throw new Error(`--memory must be a size such as 64m, got '${text}'`);
  return Number(m[1]) * (m[2]?.toLowerCase() === 'm' ? 1 << 20 : m[2]?.toLowerCase() === 'k' ? 1024 : 1);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      urls: { type: 'string', default: '1000000' },
      memory: { type: 'string', default: '64m' },
      connections: { type: 'string', default: '32' },
      memcached: { type: 'string', default: 'auto' },
      bytes: { type: 'string', default: '2048' },
    },
  });
  const urls = Number(values.urls);
  const memoryMb = bytes(values.memory) / (1 << 20);
  stopOnInterrupt();
  const useMemcached = values.memcached !== 'off' && memcachedOnPath();
  const mc = useMemcached ? await startMemcached(1024) : undefined;
  const origin = await startOrigin(Number(values.bytes));
  const edge = await startEdge(origin.base, ['--memory', values.memory, ...(mc === undefined ? [] : ['--memcached', mc.address])]);
  const pid = edge.child.pid!;
  process.stdout.write(
    `${urls} distinct URLs, ${values.bytes}-byte pages, --memory ${values.memory}, ${mc === undefined ? 'embedded store' : 'memcached (1 GiB) behind the L1'}, ${values.connections} connections\n` +
      `second  requests  rss MB (all edge processes)  per process\n`,
  );
  let next = 0;
  let done = 0;
  let peak = 0;
  let peakPerProcess = 0;
  const t0 = Date.now();
  const sample = (): void => {
    const pids = tree(pid);
    const each = pids.map(rssMb);
    const total = each.reduce((a, b) => a + b, 0);
    peak = Math.max(peak, total);
    peakPerProcess = Math.max(peakPerProcess, ...each);
    process.stdout.write(`${String(Math.round((Date.now() - t0) / 1000)).padStart(6)}  ${String(done).padStart(8)}  ${total.toFixed(0).padStart(8)}  ${each.map((x) => x.toFixed(0)).join(' ')}\n`);
  };
  const timer = setInterval(sample, 1000);
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: edge.base,
        connections: Number(values.connections),
        amount: urls,
        headers: { host: 'bench.local' },
        requests: [
          {
            setupRequest(req) {
              // Each request a URL never seen before: every one a miss, a fetch and a store.
              return { ...req, path: `/flood/${next++}?q=${next % 97}` };
            },
          },
        ],
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', () => done++);
  });
  clearInterval(timer);
  sample();
  // --memory, the decoded copies beside it (a quarter of it), and the fixed overhead.
  const bound = memoryMb * 1.25 + OVERHEAD_MB;
  process.stdout.write(
    `\n${result.requests.total} requests in ${result.duration.toFixed(0)} s (${result.errors} errors, ${result.non2xx} non-2xx), ` +
      `peak RSS ${peak.toFixed(0)} MB in all, ${peakPerProcess.toFixed(0)} MB in one process; ` +
      `bound per process ${bound} MB (--memory ${memoryMb} MB x 1.25 + ${OVERHEAD_MB} MB): ${peakPerProcess <= bound ? 'within' : 'EXCEEDED'}\n`,
  );
  if (peakPerProcess > bound) process.exitCode = 1;
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`rss bench failed: ${String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
