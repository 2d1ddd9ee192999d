// Faults under load: autocannon drives the edge (a real process, 2 workers, memcached, two origins) while
// memcached is killed and started again and one origin is killed for good. Every page has a healthy origin
// or a stale copy, so not one request may fail: a cache fault or a lost origin is never a client error.
import type { IncomingMessage, ServerResponse } from 'node:http';
import autocannon from 'autocannon';
import { startEdge } from '../helpers/edge';
import type { EdgeProcess } from '../helpers/edge';
import { startMemcached } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';
import { sleep } from '../helpers/ports';

jest.setTimeout(60_000);

const PAGES = Array.from({ length: 40 }, (_, i) => `/load-${i}`);
let mc: MemcachedProcess;
let a: TestOrigin;
let b: TestOrigin;
let edge: EdgeProcess;

function page(name: string): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    // Fresh for 1 s, so the run keeps refreshing pages from the origins while they fail.
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=1' });
    res.end(`<p>${req.url} from ${name}</p>${'x'.repeat(2000)}`);
  };
}

beforeAll(async () => {
  mc = await startMemcached();
  a = await startOrigin(page('a'));
  b = await startOrigin(page('b'));
  edge = await startEdge(['--origin', `${a.url},${b.url}`, '--memcached', mc.address, '--workers', '2', '--origin-timeout', '2000', '--memcached-retry-after', '500']);
  for (const p of PAGES) await request(edge.port, p, { host: 'site.test' });
});
afterAll(async () => {
  await edge?.stop();
  await a?.close();
  await b?.close();
  await mc?.stop();
});

it('memcached killed and restarted, one origin killed: zero failed requests under load', async () => {
  const run = autocannon({
    url: `http://127.0.0.1:${edge.port}`,
    connections: 16,
    duration: 6,
    headers: { host: 'site.test' },
    requests: PAGES.map((path) => ({ method: 'GET', path })),
  });
  await sleep(1000);
  await mc.stop(); // SIGKILL: connections reset, calls in flight lost
  await sleep(1000);
  await b.close(); // for good: its sockets destroyed, the port closed
  await sleep(1000);
  await mc.start(); // empty, on the same port
  const result = await run;
  expect(result.requests.total).toBeGreaterThan(1000);
  expect(result.errors).toBe(0);
  expect(result.timeouts).toBe(0);
  expect(result.non2xx).toBe(0);
  // The pages are cached again once memcached is back: the last requests are served without the origin.
  const after = await request(edge.port, PAGES[0]!, { host: 'site.test' });
  expect(after.status).toBe(200);
  expect(after.body.toString()).toContain('from a');
});
