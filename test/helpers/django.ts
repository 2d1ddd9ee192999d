// The Django example (examples/django/run.sh) as the tests start it: Debian's python3-django behind the
// edge, on free loopback ports, one sqlite file per run; counts the requests that reached Django.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from './origin';
import type { Reply } from './origin';
import { watchChild } from './edge';
import { freePort } from './ports';

export const DJANGO_DIR = path.join(__dirname, '..', '..', 'examples', 'django');
export const ADMIN_PASSWORD = 'admin-test-password-1';
export const USER_PASSWORD = 'user-test-password-1';

export interface DjangoExample {
  readonly djangoPort: number;
  readonly edgePort: number;
  readonly adminPort: number;
  output(): string;
  /** Requests Django logged for this target (method and request target exactly), since the start. */
  originHits(target: string, method?: string): number;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
});

/** `run.sh <layout>` with its environment; resolves once it printed that everything is ready. */
export async function startDjangoExample(layout: 'edge' | 'raw', env: NodeJS.ProcessEnv = {}): Promise<DjangoExample> {
  const [djangoPort, edgePort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const dataDir = mkdtempSync(path.join(tmpdir(), 'epc-django-'));
  const child = spawn(path.join(DJANGO_DIR, 'run.sh'), [layout], {
    detached: true, // its own process group, so a failed test can take Django and the edge down with it
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`,
      DJANGO_PORT: String(djangoPort),
      EDGE_PORT: String(edgePort),
      EDGE_ADMIN_PORT: String(adminPort),
      DJANGO_DATA_DIR: dataDir,
      DJANGO_SUPERUSER_PASSWORD: ADMIN_PASSWORD,
      DJANGO_USER_PASSWORD: USER_PASSWORD,
      EDGE_LOG_LEVEL: 'warn',
      ...env,
    },
  });
  const watched = watchChild(child, running);
  const exited = watched.exited;
  const deadline = Date.now() + 30000;
  while (!watched.output().includes('ready:')) {
    if (child.exitCode !== null) throw new Error(`run.sh ${layout} exited (${child.exitCode}): ${watched.output()}`);
    if (Date.now() > deadline) {
      process.kill(-child.pid!, 'SIGKILL');
      throw new Error(`run.sh ${layout} not ready after 30 s: ${watched.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    djangoPort,
    edgePort,
    adminPort,
    output: watched.output,
    originHits(target, method = 'GET') {
      // Django's server logs each request: [06/Dec/2026 10:29:10] "GET / HTTP/1.1" 200 616
      const line = `] "${method} ${target} HTTP/1.1" `;
      let n = 0;
      const out = watched.output();
      for (let i = out.indexOf(line); i !== -1; i = out.indexOf(line, i + 1)) n++;
      return n;
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM'); // run.sh's trap stops Django and the edge
        const t = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 10000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A browser's cookie jar for one user, enough for Django's sessionid and csrftoken. */
export class Browser {
  private readonly cookies = new Map<string, string>();

  constructor(private readonly port: number) {}

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  async get(target: string): Promise<Reply> {
    return this.keep(await request(this.port, target, { host: '127.0.0.1', headers: this.headers() }));
  }

  async post(target: string, form: Record<string, string>): Promise<Reply> {
    const body = new URLSearchParams(form).toString();
    const headers = { ...this.headers(), 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) };
    return this.keep(await request(this.port, target, { method: 'POST', host: '127.0.0.1', headers, body }));
  }

  /** Django's login form: GET it for the CSRF token, POST the credentials; resolves when signed in. */
  async login(username: string, password: string, target = '/accounts/login/'): Promise<void> {
    const form = await this.get(target);
    const token = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(form.body.toString())?.[1];
    if (token === undefined) throw new Error(`no CSRF token in ${target}: ${form.status} ${form.body.toString().slice(0, 200)}`);
    const res = await this.post(target, { csrfmiddlewaretoken: token, username, password, next: target.startsWith('/admin/') ? '/admin/' : '/account/' });
    if (res.status !== 302 || this.cookie('sessionid') === undefined) {
      throw new Error(`login of ${username} failed: ${res.status} ${res.body.toString().slice(0, 300)}`);
    }
  }

  private headers(): Record<string, string> {
    if (this.cookies.size === 0) return {};
    return { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
  }

  private keep(res: Reply): Reply {
    for (const line of res.headers['set-cookie'] ?? []) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    return res;
  }
}
