// The edge as a real process (the built CLI), on free loopback ports.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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

/**
 * Tracks a started process in `running` (killed when the test process exits) until it exits, collecting
 * what it prints: its output so far, and its exit code once it has exited.
 */
export function watchChild(child: ChildProcess, running: Set<ChildProcess>): { output(): string; exited: Promise<number | null> } {
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
  return { output: () => out, exited };
}

export async function startEdge(flags: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<EdgeProcess> {
  const port = await freePort();
  const adminPort = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--host', '127.0.0.1', '--port', String(port), '--admin-port', String(adminPort), ...flags], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, EDGE_LOG_LEVEL: 'warn', ...env },
  });
  const { output, exited } = watchChild(child, running);
  await Promise.race([
    Promise.all([waitForPort(port, 15000), waitForPort(adminPort, 15000)]),
    exited.then((code) => {
      throw new Error(`edge exited (${code}) before listening: ${output()}`);
    }),
  ]);
  return {
    port,
    adminPort,
    child,
    output,
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

/** The pids of a process's children (an edge's cluster workers), from /proc. */
export function childPids(parent: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === parent) out.push(Number(name));
  }
  return out;
}

/** Runs the built CLI once (10 s at most): its exit code and output, a failure included. */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 10000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}
