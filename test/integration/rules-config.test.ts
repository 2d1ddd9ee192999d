// Rules from the config file through the real CLI: they reach the workers, a mistake fails `serve` at start
// naming the rule and field, a reload with a bad rule is refused while the old rules keep serving, and
// nginx-conf refuses rules nginx cannot key.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli, startEdge } from '../helpers/edge';
import type { EdgeProcess } from '../helpers/edge';
import { request, startOrigin } from '../helpers/origin';
import type { TestOrigin } from '../helpers/origin';

const TOKEN = 'rules-config-token-0123456789';
const dir = mkdtempSync(path.join(tmpdir(), 'edge-rules-'));

function config(name: string, value: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

let origin: TestOrigin;
beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${req.url}`);
  });
});
afterAll(() => origin.close());

it.each<[string, unknown[], RegExp]>([
  ['a wrong type', [{ path: '/a/' }, { path: '/b/', ttl: 'long' }], /rules\[1\]\.ttl must be/],
  ['an unknown field', [{ pth: '/a/' }], /unknown option rules\[0\]\.pth \(did you mean rules\[0\]\.path\?\)/],
  ['a bad glob', [{ path: 'blog/*' }], /rules\[0\]\.path must be a path prefix or glob starting with '\/'/],
  ['a contradiction', [{ path: '/a/', bypass: true, tags: ['x'] }], /rules\[0\]\.tags has no effect with bypass: true/],
])('serve refuses %s in a rule at start, naming it', async (_name, rules, message) => {
  const out = await runCli(['serve', '--origin', origin.url, '--port', '0', '--config', config('bad.json', { rules })]);
  expect(out.code).not.toBe(0);
  expect(out.stderr).toMatch(message);
});

describe('rules in a served config file', () => {
  let edge: EdgeProcess;
  let file: string;
  beforeAll(async () => {
    file = config('good.json', { rules: [{ path: '/private/', bypass: true }] });
    edge = await startEdge(['--origin', origin.url, '--workers', '2', '--config', file, '--admin-token', TOKEN]);
  });
  afterAll(() => edge.stop());

  it('reach the workers', async () => {
    expect((await request(edge.port, '/private/x')).headers['x-cache']).toBe('BYPASS');
    expect((await request(edge.port, '/public/x')).headers['x-cache']).toBe('MISS');
  });

  it('a reload with a bad rule is refused with the rule named, and the old rules keep serving', async () => {
    writeFileSync(file, JSON.stringify({ rules: [{ path: '/private/', bypass: true }, { host: 'a.com:80' }] }));
    const r = await request(edge.adminPort, '/reload', { method: 'POST', host: '127.0.0.1', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(409);
    expect(r.body.toString()).toMatch(/rules\[1\]\.host must be a host name without port/);
    expect((await request(edge.port, '/private/y')).headers['x-cache']).toBe('BYPASS');
  });
});

describe('nginx-conf', () => {
  it('refuses rules whose keys nginx cannot compute, saying which and why', async () => {
    const out = await runCli(['nginx-conf', '--config', config('norm.json', { rules: [{ path: '/a/', ttl: 5 }, { path: '/c/', key: { dropParams: ['utm_*'] } }] })]);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(/rules\[1\]\.key normalises the request URI/);
    const device = await runCli(['nginx-conf', '--config', config('device.json', { rules: [{ key: { deviceClass: true } }] })]);
    expect(device.stderr).toMatch(/rules\[0\]\.key\.deviceClass/);
  });

  it('accepts rules that leave the key alone', async () => {
    const out = await runCli(['nginx-conf', '--config', config('plain.json', { rules: [{ path: '/a/', ttl: 5, tags: ['a'] }] })]);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('set_md5 $memcached_key "$host$request_uri";');
  });
});
