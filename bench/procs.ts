// Processes for the benchmarks: free loopback ports, start a server (optionally pinned to a CPU) and wait
// for its port, and stop them all (SIGTERM first, so nginx's master takes its workers down).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

const children: ChildProcess[] = [];

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export async function waitPort(port: number): Promise<void> {
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

/** Starts `cmd` (on `cpu` with taskset when given) and resolves once `port` accepts connections. */
export async function start(cmd: string, args: readonly string[], port: number, cpu?: string): Promise<ChildProcess> {
  const [file, argv] = cpu === undefined ? [cmd, [...args]] : ['taskset', ['-c', cpu, cmd, ...args]];
  const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, EDGE_LOG_LEVEL: 'warn' } });
  children.push(child);
  await waitPort(port);
  return child;
}

export async function stopAll(): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          const t = setTimeout(() => c.kill('SIGKILL'), 5000);
          c.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          c.kill('SIGTERM');
        }),
    ),
  );
}
