// The files in deploy/ are taken by the tools they are for: nginx -t accepts the load-balancer config, the
// sample config file resolves, and the systemd unit reloads with SIGHUP and stops with SIGTERM.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadServeOptions } from '../../src/cli/serve';
import { NGINX_BIN } from '../helpers/nginx';

const DEPLOY = path.join(__dirname, '..', '..', 'deploy');

it('nginx -t accepts deploy/nginx-lb.conf (upstreams pointed at loopback, listening on loopback)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nginx-lb-'));
  const lb = readFileSync(path.join(DEPLOY, 'nginx-lb.conf'), 'utf8')
    .replace(/10\.0\.0\.1[12]:8080/g, '127.0.0.1:8080')
    .replace('listen 80;', 'listen 127.0.0.1:18080;');
  writeFileSync(path.join(dir, 'lb.conf'), lb);
  writeFileSync(path.join(dir, 'nginx.conf'), `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp {\n  access_log off;\n  include ${dir}/lb.conf;\n}\n`);
  const out = execFileSync(NGINX_BIN, ['-t', '-c', path.join(dir, 'nginx.conf'), '-p', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  expect(out).toBe('');
});

it('deploy/config.json is a valid --config file', () => {
  const { opts } = loadServeOptions(['--config', path.join(DEPLOY, 'config.json')], {});
  expect(opts.workers).toBe(2);
  expect(opts.adminPort).toBe(9091);
});

it('the systemd unit reloads with SIGHUP, stops with SIGTERM to the primary, and raises the descriptor limit', () => {
  const unit = readFileSync(path.join(DEPLOY, 'edge-page-cache.service'), 'utf8');
  expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
  expect(unit).toMatch(/^KillMode=mixed$/m);
  expect(unit).toMatch(/^LimitNOFILE=\d+$/m);
});
