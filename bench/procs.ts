// Processes for the benchmarks: free loopback ports, start a server (optionally pinned to a CPU) and wait
// for its port, and stop them all (SIGTERM first, so nginx's master takes its workers down), also on
// Ctrl-C (stopOnInterrupt).
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

/** Adds a process started elsewhere (a forked load generator) to those stopAll stops. */
export function track(child: ChildProcess): ChildProcess {
  children.push(child);
  return child;
}

/** SIGTERM (SIGKILL after 5 s, or at once with `signal` 'SIGKILL'), resolved when it has exited. */
export function stop(c: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    c.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    c.kill(signal);
  });
}

export async function stopAll(): Promise<void> {
  await Promise.all(children.map((c) => stop(c)));
}

/** On Ctrl-C (or SIGTERM) stops every process started here, then exits 130. */
export function stopOnInterrupt(): void {
  const onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`\n${sig}: stopping the servers the bench started\n`);
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}
