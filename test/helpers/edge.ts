// The edge as a real process (the built CLI), on free loopback ports.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort, waitForPort } from './ports';

export const CLI = path.join(__dirname, '..', '..', 'dist', 'src', 'cli', 'main.js');

export interface EdgeProcess {
  readonly port: number;
  readonly adminPort: number;
  readonly child: ChildProcess;
  output(): string;
  /** SIGTERM, then resolves with the exit code. */
  stop(): Promise<number | null>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export async function startEdge(flags: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<EdgeProcess> {
  const port = await freePort();
  const adminPort = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--host', '127.0.0.1', '--port', String(port), '--admin-port', String(adminPort), ...flags], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, EDGE_LOG_LEVEL: 'warn', ...env },
  });
  running.add(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  await Promise.race([
    Promise.all([waitForPort(port, 15000), waitForPort(adminPort, 15000)]),
    exited.then((code) => {
      throw new Error(`edge exited (${code}) before listening: ${out}`);
    }),
  ]);
  return {
    port,
    adminPort,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
