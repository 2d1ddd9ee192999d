// Before any integration test: make sure the real servers the suite drives are installed. As root, a
// missing one is installed with apt-get; otherwise the run stops at once naming the command to run.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const NEEDED: readonly { bin: string; paths: readonly string[]; pkg: string }[] = [
  { bin: 'memcached', paths: ['/usr/bin/memcached', '/usr/local/bin/memcached'], pkg: 'memcached' },
  { bin: 'nginx', paths: ['/usr/sbin/nginx', '/usr/local/sbin/nginx'], pkg: 'nginx' },
  {
    bin: 'set-misc nginx module',
    paths: ['/usr/lib/nginx/modules/ngx_http_set_misc_module.so'],
    pkg: 'libnginx-mod-http-set-misc',
  },
  // The Django example (django.test.ts) runs on Debian's Django and pymemcache under /usr/bin/python3.
  { bin: 'python3-django', paths: ['/usr/lib/python3/dist-packages/django/__init__.py'], pkg: 'python3-django' },
  { bin: 'python3-pymemcache', paths: ['/usr/lib/python3/dist-packages/pymemcache/__init__.py'], pkg: 'python3-pymemcache' },
  // HAProxy in front of the cluster example (cluster.test.ts).
  { bin: 'haproxy', paths: ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy'], pkg: 'haproxy' },
  // The stats page in a real browser (stats-page.test.ts, puppeteer-core drives Debian's chromium).
  { bin: 'chromium', paths: ['/usr/bin/chromium'], pkg: 'chromium' },
];

/** The edge runs as a real process in some tests: build dist/ once, before any of them. */
function build(): void {
  const root = path.join(__dirname, '..', '..');
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
}

export default function globalSetup(): void {
  // EPC_TEST_NO_BUILD=1 runs against the dist/ already built (while the tree does not compile as a whole).
  if (process.env.EPC_TEST_NO_BUILD !== '1') build();
  const missing = NEEDED.filter((n) => !n.paths.some((p) => existsSync(p)));
  if (missing.length === 0) return;
  const pkgs = missing.map((m) => m.pkg);
  const cmd = `apt-get update && apt-get install -y ${pkgs.join(' ')}`;
  if (process.getuid?.() !== 0) {
    throw new Error(`integration tests need ${missing.map((m) => m.bin).join(', ')}: run as root: ${cmd}`);
  }
  process.stderr.write(`installing ${pkgs.join(' ')} for the integration tests: ${cmd}\n`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', ...pkgs], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  const still = NEEDED.filter((n) => !n.paths.some((p) => existsSync(p)));
  if (still.length > 0) throw new Error(`could not install ${still.map((m) => m.pkg).join(', ')}; run: ${cmd}`);
}
