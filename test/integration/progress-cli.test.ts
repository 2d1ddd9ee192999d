// Progress of the long commands through the real CLI: warm and purge of many URLs write plain progress lines
// to stderr when it is not a TTY, a bar redrawn in place on a TTY (util-linux `script` gives the CLI one),
// and the summary on stdout either way; a purge of many URLs goes to the admin port in batches. The edge's
// logs are readable lines on a TTY and JSON otherwise.
import { execFile } from 'node:child_process';
import { Registry } from 'prom-client';
import { createAdminServer } from '../../src/edge/admin';
import type { AdminServer } from '../../src/edge/admin';
import { localAdminBackend } from '../../src/edge/server';
import { CLI, runCli } from '../helpers/edge';
import { startOrigin } from '../helpers/origin';
import { freePort } from '../helpers/ports';
import type { TestOrigin } from '../helpers/origin';
import { startScriptedEdge, startScriptedOrigin } from '../helpers/scripted-origin';
import type { ScriptedEdge, ScriptedOrigin } from '../helpers/scripted-origin';

const TOKEN = 'progress-token-0123456789';
const PAGES = 150;
let site: TestOrigin;
let o: ScriptedOrigin;
let e: ScriptedEdge;
let admin: AdminServer;
let adminUrl: string;

beforeAll(async () => {
  site = await startOrigin((req, res) => {
    if (req.url === '/sitemap.xml') {
      const locs = Array.from({ length: PAGES }, (_, i) => `<url><loc>${site.url}/p/${i}</loc></url>`).join('');
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0"?><urlset>${locs}</urlset>`);
      return;
    }
    // Every 30th page fails, so failures are counted.
    const n = Number((req.url ?? '').split('/').pop());
    res.writeHead(n % 30 === 0 ? 500 : 200, { 'content-type': 'text/plain' });
    res.end('page');
  });
  o = await startScriptedOrigin();
  e = await startScriptedEdge(o);
  admin = createAdminServer({ port: 0, host: '127.0.0.1', token: TOKEN, registry: new Registry() }, localAdminBackend(e.edge));
  adminUrl = `http://127.0.0.1:${await admin.listen()}`;
});
afterAll(async () => {
  await admin?.close();
  await e?.edge.close();
  await o?.close();
  await site?.close();
});

it('warm of many pages, not on a TTY: plain progress lines on stderr, the summary on stdout', async () => {
  const r = await runCli(['warm', '--sitemap', `${site.url}/sitemap.xml`]);
  expect(r.code).toBe(0);
  expect(r.stdout.trim()).toBe('warmed 145 of 150 page(s), 5 failed');
  const lines = r.stderr.trim().split('\n');
  expect(lines.length).toBeGreaterThanOrEqual(5);
  for (const l of lines) expect(l).toMatch(/^warm \d+\/150 done, \d failed, \d+\.\d\/s, (ETA [\d.]+ (s|min)|done)/);
  expect(lines[lines.length - 1]).toMatch(/^warm 150\/150 done, 5 failed, .*done$/);
  expect(r.stderr).not.toContain('\x1b');
});

it('warm on a TTY: a bar redrawn in place, cleared before the summary', async () => {
  const out = await new Promise<string>((resolve, reject) => {
    execFile('script', ['-qec', `'${process.execPath}' '${CLI}' warm --sitemap '${site.url}/sitemap.xml' --concurrency 2`, '/dev/null'], { timeout: 20_000 }, (err, stdout) =>
      err === null ? resolve(stdout) : reject(err),
    );
  });
  const clear = '\r\x1b[2K';
  expect(out).toContain(`${clear}[#`);
  expect(out).toMatch(/\[[#-]+\] warm \d+\/150 done, \d failed/);
  expect(out).toContain(`${clear}warmed 145 of 150 page(s), 5 failed`);
}, 30_000);

it('purge of 1,200 URLs through the admin port: batches of 500, progress lines, one summed answer', async () => {
  const urls = Array.from({ length: 1200 }, (_, i) => `http://example.com/u/${i}`);
  const r = await runCli(['purge', ...urls, '--admin', adminUrl, '--admin-token', TOKEN]);
  expect(r.code).toBe(0);
  // The sum of the batches' answers: what one purge of 60 of those URLs says, twenty times (a URL may cover
  // more than one key: its http and https renderings).
  const one = await runCli(['purge', ...urls.slice(0, 60), '--admin', adminUrl, '--admin-token', TOKEN]);
  expect(JSON.parse(r.stdout)).toMatchObject({ purged: 20 * (JSON.parse(one.stdout) as { purged: number }).purged });
  expect(one.stderr).toBe('');
  expect(r.stderr.trim().split('\n').map((l) => l.split(' done')[0])).toEqual(['purge 500/1200', 'purge 1000/1200', 'purge 1200/1200']);
});

/** A shell command's stdout, whatever its exit code (timeout(1) ends the edge with SIGTERM: it drains and exits). */
function sh(cmd: string): Promise<string> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', cmd], { timeout: 20_000 }, (_err, stdout) => resolve(stdout));
  });
}

it('serve logs one readable line per entry on a TTY, JSON lines otherwise', async () => {
  const flags = async (): Promise<string> => `serve --host 127.0.0.1 --port ${await freePort()} --admin-port ${await freePort()} --origin ${site.url}`;
  // As a user runs it: not under jest (whose worker id silences logs), at the default level.
  const node = `env -u JEST_WORKER_ID EDGE_LOG_LEVEL=info ${process.execPath}`;
  const tty = await sh(`script -qec "timeout -s TERM 2 ${node} '${CLI}' ${await flags()}" /dev/null`);
  expect(tty).toMatch(/\[\d\d:\d\d:\d\d\.\d{3}\] \S*INFO\S*: \S*edge listening/);
  expect(tty).not.toContain('"msg":"edge listening"');
  const piped = await sh(`timeout -s TERM 2 ${node} '${CLI}' ${await flags()} 2>&1 | cat`);
  expect(piped).toContain('"msg":"edge listening"');
}, 30_000);
