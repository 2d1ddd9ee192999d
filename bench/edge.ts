// The edge hit-path benchmark, one run on one machine: a 10 KB page served by
//   the origin directly, a bare node:http Map server (Node's ceiling), the edge from L1 (1 and 2 workers),
//   nginx memcached_pass (2 workers, upstream keepalive, set_md5 key), the edge from memcached only, and a
//   bare node:http server doing one memjs GET per request.
// Load: wrk when installed (steadier at these rates), else autocannon. Usage:
//   npm run build && node dist/bench/edge.js [--duration 10] [--connections 64] [--tool wrk|autocannon] [--bytes 10240]
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { createHash } from 'node:crypto';
import memjs from 'memjs';
import { formatTable, runAutocannon } from '../src/cli/bench';
import type { BenchResult } from '../src/cli/bench';
import { page } from './servers';

const run = promisify(execFile);
const HOST = 'bench.local';
const PATH = '/article/1?ref=bench';
const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const SERVERS = path.join(__dirname, 'servers.js');
const children: ChildProcess[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} never opened`);
}

async function start(cmd: string, args: string[], port: number): Promise<ChildProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, EDGE_LOG_LEVEL: 'warn' } });
  children.push(child);
  await waitPort(port);
  return child;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (child.exitCode !== null) return r();
    child.once('exit', () => r());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  });
}

async function wrk(name: string, port: number, seconds: number, connections: number): Promise<BenchResult> {
  const { stdout } = await run('wrk', ['-t', '2', '-c', String(connections), '-d', `${seconds}s`, '--latency', '-H', `Host: ${HOST}`, `http://127.0.0.1:${port}${PATH}`], {
    timeout: (seconds + 30) * 1000,
  });
  const num = (re: RegExp): number => Number(re.exec(stdout)?.[1] ?? 0);
  const ms = (label: string): number => {
    const m = new RegExp(`${label}%\\s+([\\d.]+)(us|ms|s)`).exec(stdout);
    if (!m) return 0;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = sock ? sock.slice(1).reduce((a, v) => a + Number(v), 0) : 0;
  return { name, rps: num(/Requests\/sec:\s+([\d.]+)/), p50: ms('50'), p99: ms('99'), errors, non2xx: num(/Non-2xx or 3xx responses: (\d+)/) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '64' },
      tool: { type: 'string' },
      bytes: { type: 'string', default: '10240' },
      'skip-nginx': { type: 'boolean', default: false },
    },
  });
  const seconds = Number(values.duration);
  const connections = Number(values.connections);
  const bytes = Number(values.bytes);
  const hasWrk = await run('wrk', ['--version']).then(() => true, (e: { stdout?: string }) => (e.stdout ?? '').includes('wrk'));
  const tool = values.tool ?? (hasWrk ? 'wrk' : 'autocannon');
  const measure = (name: string, port: number): Promise<BenchResult> =>
    tool === 'wrk'
      ? wrk(name, port, seconds, connections)
      : runAutocannon(name, `http://127.0.0.1:${port}${PATH}`, seconds, connections, { host: HOST });
  const warm = async (port: number): Promise<void> => {
    for (let i = 0; i < 3; i++) await fetch(`http://127.0.0.1:${port}${PATH}`, { headers: { host: HOST } }).then((r) => r.arrayBuffer());
  };

  const mcPort = await freePort();
  const mcArgs = ['-l', '127.0.0.1', '-p', String(mcPort), '-U', '0', '-m', '256', '-t', '2'];
  if (process.getuid?.() === 0) mcArgs.push('-u', 'root');
  await start('memcached', mcArgs, mcPort);
  const mc = `127.0.0.1:${mcPort}`;
  // The raw entry nginx and the bare memjs server read: the body alone under md5($host$request_uri).
  const client = memjs.Client.create(mc, { logger: { log() {} } });
  await client.set(createHash('md5').update(HOST + PATH).digest('hex'), page(bytes), { expires: 3600 });
  client.close();

  const originPort = await freePort();
  await start(process.execPath, [SERVERS, 'origin', String(originPort), String(bytes)], originPort);
  const origin = `http://127.0.0.1:${originPort}`;
  const rows: BenchResult[] = [];
  const note = (r: BenchResult): void => {
    rows.push(r);
    process.stderr.write(`${r.name}: ${r.rps.toFixed(0)} req/s p99 ${r.p99.toFixed(2)} ms\n`);
  };

  note(await measure('origin direct (node:http render)', originPort));

  const mapPort = await freePort();
  const map = await start(process.execPath, [SERVERS, 'map', String(mapPort), String(bytes)], mapPort);
  note(await measure('bare node:http Map server (ceiling)', mapPort));
  await stop(map);

  for (const workers of [1, 2]) {
    const port = await freePort();
    const edge = await start(process.execPath, [CLI, 'serve', '--host', '127.0.0.1', '--port', String(port), '--origin', origin, '--workers', String(workers)], port);
    await warm(port);
    note(await measure(`edge L1 hits, ${workers} worker${workers > 1 ? 's' : ''}`, port));
    await stop(edge);
  }

  if (!values['skip-nginx'] && existsSync('/usr/lib/nginx/modules/ngx_http_set_misc_module.so')) {
    const port = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), 'epc-bench-nginx-'));
    writeFileSync(
      path.join(dir, 'nginx.conf'),
      `load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_set_misc_module.so;
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 2; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${dir}/b; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;
  upstream mc { server ${mc}; keepalive 64; }
  server { listen 127.0.0.1:${port};
    location / { set_md5 $memcached_key "$host$request_uri"; memcached_pass mc; default_type "text/html; charset=utf-8"; } } }
`,
    );
    const nginx = await start('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], port);
    note(await measure('nginx memcached_pass, 2 workers', port));
    await stop(nginx);
  }

  {
    const port = await freePort();
    const edge = await start(
      process.execPath,
      [CLI, 'serve', '--host', '127.0.0.1', '--port', String(port), '--origin', origin, '--memcached', mc, '--memory', '0', '--key-prefix', 'bench-envelope:'],
      port,
    );
    await warm(port);
    note(await measure('edge memcached-only hits, 1 worker', port));
    await stop(edge);
  }

  const memjsPort = await freePort();
  const bare = await start(process.execPath, [SERVERS, 'memjs', String(memjsPort), mc], memjsPort);
  note(await measure('bare node:http + one memjs GET', memjsPort));
  await stop(bare);

  process.stdout.write(`\n${bytes}-byte page, ${connections} connections, ${seconds}s each, ${tool}; ratio vs the first row\n${formatTable(rows)}\n`);
  const by = (prefix: string): BenchResult | undefined => rows.find((r) => r.name.startsWith(prefix));
  const ratio = (a?: BenchResult, b?: BenchResult): string => (a && b ? (a.rps / b.rps).toFixed(2) : 'n/a');
  process.stdout.write(
    `\nedge L1 (1 worker) / bare Map server: ${ratio(by('edge L1 hits, 1'), by('bare node:http Map'))}x` +
      `\nedge L1 (2 workers) / nginx (2 workers): ${ratio(by('edge L1 hits, 2'), by('nginx'))}x` +
      `\nedge memcached-only / bare memjs server: ${ratio(by('edge memcached-only'), by('bare node:http + one memjs'))}x` +
      `\nedge L1 (1 worker) / origin direct: ${ratio(by('edge L1 hits, 1'), by('origin direct'))}x\n`,
  );
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });
