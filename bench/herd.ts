// The thundering-herd benchmark: many clients on one page that expires every second, behind a slow origin
// (100 ms a render). With coalescing on, each expiry costs one origin request; off, every waiting client
// makes its own. Two edge processes share memcached, so the cross-edge lock is measured too. Usage:
//   npm run build && node dist/bench/herd.js [--duration 10] [--connections 200]
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { freePort, start as startProcess, stopAll } from './procs';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
async function start(cmd: string, args: string[], port: number): Promise<void> {
  await startProcess(cmd, args, port);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '200' } } });
  const seconds = Number(values.duration);
  const connections = Number(values.connections);

  let originRequests = 0;
  const origin = http.createServer((_req, res) => {
    originRequests++;
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=1' });
      res.end(`<p>rendered ${Date.now()}</p>`.padEnd(8192, ' '));
    }, 100);
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const originUrl = `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`;

  const mcPort = await freePort();
  const mcArgs = ['-l', '127.0.0.1', '-p', String(mcPort), '-U', '0', '-m', '64'];
  if (process.getuid?.() === 0) mcArgs.push('-u', 'root');
  await start('memcached', mcArgs, mcPort);

  const lines: string[] = [];
  for (const coalesce of ['true', 'false']) {
    const ports = [await freePort(), await freePort()];
    for (const port of ports) {
      await start(
        process.execPath,
        [CLI, 'serve', '--host', '127.0.0.1', '--port', String(port), '--origin', originUrl, '--memcached', `127.0.0.1:${mcPort}`,
          '--coalesce', coalesce, '--stale-if-error', '0', '--key-prefix', `herd-${coalesce}:`, '--origin-connections', '512'],
        port,
      );
    }
    originRequests = 0;
    // Half the clients on each edge, at once.
    const results = await Promise.all(
      ports.map((port) => autocannon({ url: `http://127.0.0.1:${port}/hot`, duration: seconds, connections: connections / 2 })),
    );
    const requests = results.reduce((a, r) => a + r.requests.total, 0);
    const errors = results.reduce((a, r) => a + r.errors + r.timeouts + r.non2xx, 0);
    const p99 = Math.max(...results.map((r) => r.latency.p99));
    const p50 = Math.max(...results.map((r) => r.latency.p50));
    lines.push(
      `coalescing ${coalesce === 'true' ? 'on ' : 'off'}: ${String(originRequests).padStart(6)} origin requests for ${String(requests).padStart(7)} client requests` +
        ` (${(originRequests / seconds).toFixed(1)}/s, the page expires every second)  client p50 ${p50} ms  p99 ${p99} ms  errors ${errors}`,
    );
    process.stderr.write(`${lines[lines.length - 1]}\n`);
  }
  process.stdout.write(`\n${connections} clients on two edges sharing memcached, ${seconds}s, origin renders in 100 ms:\n${lines.join('\n')}\n`);
  origin.close();
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`herd bench failed: ${String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
