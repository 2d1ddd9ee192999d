// Real memcached processes for tests, each on its own free loopback port; stop/start to simulate outages,
// and a "hanging" TCP server that accepts and never answers.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { parseServerList } from '../../src/core/ring';
import type { CacheStore } from '../../src/core/store';
import { createMemcachedStore } from '../../src/core/stores/memcached';
import { freePort, waitForPort } from './ports';

export interface MemcachedProcess {
  readonly port: number;
  readonly address: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

function launch(port: number, extraArgs: readonly string[]): ChildProcess {
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '64', '-t', '1', ...extraArgs];
  if (process.getuid?.() === 0) args.push('-u', 'root');
  const child = spawn('memcached', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.on('error', (err) => {
    throw new Error(`could not start memcached (${err.message}); install it: apt-get install -y memcached`);
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

export async function startMemcached(extraArgs: readonly string[] = []): Promise<MemcachedProcess> {
  const port = await freePort();
  let child: ChildProcess | undefined = launch(port, extraArgs);
  await waitForPort(port);
  const proc: MemcachedProcess = {
    port,
    address: `127.0.0.1:${port}`,
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGKILL');
      });
    },
    async start() {
      if (child) return;
      child = launch(port, extraArgs);
      await waitForPort(port);
    },
  };
  return proc;
}

export async function startMemcacheds(n: number): Promise<MemcachedProcess[]> {
  const out: MemcachedProcess[] = [];
  for (let i = 0; i < n; i++) out.push(await startMemcached());
  return out;
}

/** One counter from memcached's own `stats` (cmd_get, get_hits...), read over the text protocol. */
export function memcachedStat(address: string, name: string): Promise<number> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    let text = '';
    const s = net.connect(port, host, () => s.write('stats\r\n'));
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      text += d;
      if (!text.endsWith('END\r\n')) return;
      s.destroy();
      const m = new RegExp(`^STAT ${name} (\\d+)\r$`, 'm').exec(text);
      if (m) resolve(Number(m[1]));
      else reject(new Error(`memcached has no stat ${name}`));
    });
    s.on('error', reject);
  });
}

/**
 * A TCP server that accepts connections and never replies: memcached hung. With `closeOnRequest`, it
 * closes each connection cleanly (FIN, no reset) as soon as a request arrives, unanswered: memcached
 * restarted gracefully with calls in flight.
 */
export async function startHangingServer(closeOnRequest = false): Promise<{ port: number; address: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    if (closeOnRequest) s.once('data', () => s.end());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

/**
 * One memcached for a test file, started before its tests and stopped after them, with a direct store on
 * it for looking at what was written. Call once at the top of the file.
 */
export function memcachedForSuite(): { address: string; direct: CacheStore } {
  const suite = { address: '', direct: undefined as unknown as CacheStore };
  let proc: MemcachedProcess | undefined;
  beforeAll(async () => {
    proc = await startMemcached();
    suite.address = proc.address;
    suite.direct = createMemcachedStore({ servers: parseServerList('memcached', proc.address), timeoutMs: 1000 });
  });
  afterAll(async () => {
    await suite.direct?.close();
    await proc?.stop();
  });
  return suite;
}
