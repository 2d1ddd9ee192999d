// Small servers the edge bench compares against, each run as its own process:
//   origin PORT BYTES [MAXAGE] [DELAY_MS] [CPU_MS]
//                          a node:http origin rendering a page of BYTES (cacheable for MAXAGE s, 3600 by
//                          default; answered after DELAY_MS when given; each render also keeps the CPU busy
//                          for CPU_MS when given, a CMS's template work); GET /__bench/origin-requests
//                          answers how many requests it has rendered (itself not counted)
//   slow PORT BYTES [REST_AFTER_MS]
//                          an origin whose page of BYTES arrives in two parts: the head and its first
//                          FIRST_CHUNK bytes at once, the rest REST_AFTER_MS later (500 by default), as a CMS
//                          flushing its <head> early; cacheable for an hour; counts requests as above
//   map PORT BYTES         a bare node:http server answering from a Map: the ceiling for Node
//   memjs PORT MEMCACHED   a bare node:http server doing one memjs GET per request (raw entry)
// The bare servers send the same headers as an edge hit, so every server does the same job.
import { createHash } from 'node:crypto';
import http from 'node:http';
import memjs from 'memjs';

/**
 * The header set the edge sends on a hit (the origin's content-type, cache-control and date, plus
 * content-length, age, x-cache and cache-status), so the bare servers do the same job byte for byte.
 */
export function hitHeaders(length: number): string[] {
  return [
    'content-type', 'text/html; charset=utf-8',
    'cache-control', 'max-age=3600',
    'date', new Date().toUTCString(),
    'content-length', String(length),
    'age', '0',
    'x-cache', 'HIT',
    'cache-status', 'edge-page-cache; hit',
  ];
}

/** The origin's count of rendered requests (read before and after a run: origin requests of the run). */
export const COUNT_PATH = '/__bench/origin-requests';

/** The bytes the slow origin sends at once, with its head; the rest of its page follows later. */
export const FIRST_CHUNK = 8192;

/** Keeps this thread busy for `ms` (a render's CPU cost). */
function burn(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin: the render's work
  }
}

export function page(bytes: number): Buffer {
  const head = '<!doctype html><html><head><title>bench</title></head><body>';
  const tail = '</body></html>';
  let body = '';
  for (let i = 0; body.length < bytes - head.length - tail.length - 40; i++) body += `<p>paragraph ${i} of the bench page</p>\n`;
  return Buffer.from(head + body + tail);
}

/** An origin that answers COUNT_PATH with how many pages it has rendered, and renders the rest with `render`. */
function countingOrigin(port: number, render: (res: http.ServerResponse) => void): void {
  let rendered = 0;
  http
    .createServer((req, res) => {
      if (req.url === COUNT_PATH) {
        res.end(String(rendered));
        return;
      }
      rendered++;
      render(res);
    })
    .listen(port, '127.0.0.1');
}

function main(): void {
  const [kind, portArg, arg, maxAgeArg, delayArg, cpuArg] = process.argv.slice(2);
  const port = Number(portArg);
  if (kind === 'origin') {
    const body = page(Number(arg));
    const cacheControl = `max-age=${maxAgeArg ?? '3600'}`;
    const delay = Number(delayArg ?? 0);
    const cpuMs = Number(cpuArg ?? 0);
    const render = (res: http.ServerResponse): void => {
      if (cpuMs > 0) burn(cpuMs);
      // A render costs something real: the page is rebuilt from its parts on every request.
      const html = Buffer.from(body.toString('utf8').split('\n').join('\n'));
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': cacheControl, 'content-length': html.length });
      res.end(html);
    };
    countingOrigin(port, (res) => {
      if (delay > 0) setTimeout(render, delay, res);
      else render(res);
    });
  } else if (kind === 'slow') {
    const body = page(Number(arg));
    const restAfter = Number(maxAgeArg ?? 500);
    countingOrigin(port, (res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'max-age=3600', 'content-length': body.length });
      res.write(body.subarray(0, FIRST_CHUNK));
      const timer = setTimeout(() => res.end(body.subarray(FIRST_CHUNK)), restAfter);
      res.once('close', () => clearTimeout(timer));
    });
  } else if (kind === 'map') {
    const map = new Map<string, Buffer>();
    const body = page(Number(arg));
    const headers = hitHeaders(body.length);
    http
      .createServer((req, res) => {
        const key = (req.headers.host ?? '') + (req.url ?? '');
        let v = map.get(key);
        if (v === undefined) {
          v = body;
          map.set(key, v);
        }
        res.writeHead(200, headers);
        res.end(v);
      })
      .listen(port, '127.0.0.1');
  } else if (kind === 'memjs') {
    const client = memjs.Client.create(arg, { logger: { log() {} }, keepAlive: true });
    http
      .createServer((req, res) => {
        const key = createHash('md5').update((req.headers.host ?? '') + (req.url ?? '')).digest('hex');
        client.get(key, (err, value) => {
          if (err || value === null) {
            res.writeHead(404);
            res.end();
            return;
          }
          res.writeHead(200, hitHeaders(value.length));
          res.end(value);
        });
      })
      .listen(port, '127.0.0.1');
  } else {
    process.stderr.write('usage: servers.js origin|slow|map|memjs PORT ARG\n');
    process.exit(2);
  }
}

if (require.main === module) main();
