// A child process of the cluster example that can be killed and started again on the same port: memcached,
// an edge, HAProxy. Each runs in its own process group, so kill() takes its children (an edge's worker) too.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

export interface Service {
  readonly name: string;
  readonly port: number;
  readonly running: boolean;
  output(): string;
  /** Starts it (again) and resolves when its port takes connections. */
  start(): Promise<void>;
  /** SIGKILL to the whole group: a crash or a lost machine. */
  kill(): Promise<void>;
  /** SIGTERM (an edge drains), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const all = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of all) if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
});

/** True once 127.0.0.1:`port` takes connections; false after `timeoutMs` or as soon as `gone()` says so. */
export async function waitForPort(port: number, timeoutMs: number, gone: () => boolean = () => false): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !gone()) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.unref();
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

export function service(name: string, port: number, command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Service {
  let child: ChildProcess | undefined;
  let out = '';
  const end = async (signal: NodeJS.Signals, graceMs: number): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    const group = -c.pid;
    try {
      process.kill(signal === 'SIGKILL' ? group : c.pid, signal);
    } catch {
      return; // already gone
    }
    const t = setTimeout(() => {
      try {
        process.kill(group, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }, graceMs);
    await exited;
    clearTimeout(t);
    try {
      process.kill(group, 'SIGKILL'); // anything of its group still there (an orphaned worker)
    } catch {
      // the group is gone
    }
  };
  return {
    name,
    port,
    get running() {
      return child !== undefined;
    },
    output: () => out,
    async start() {
      if (child) return;
      const c = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
      child = c;
      all.add(c);
      c.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20000)));
      c.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20000)));
      c.once('error', (err) => (out += `\n${name}: ${err.message}\n`));
      c.once('exit', () => all.delete(c));
      const exited = (): boolean => c.exitCode !== null || c.signalCode !== null;
      if (!(await waitForPort(port, 20000, exited)) || exited()) {
        await end('SIGKILL', 0);
        throw new Error(`${name} did not listen on 127.0.0.1:${port}: ${out}`);
      }
    },
    kill: () => end('SIGKILL', 0),
    stop: (graceMs = 10000) => end('SIGTERM', graceMs),
  };
}
