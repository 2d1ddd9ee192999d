// The package as users install it: `npm pack`, the tarball unpacked into a fixture Express 4 app outside
// this tree (its dependencies linked from this project's node_modules, as an install would place them; no
// network), then the app run with morgan 1.9 before pageCache, loaded once by require() and once by import.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from '../helpers/origin';

const ROOT = path.join(__dirname, '..', '..');
const MODULES = path.join(ROOT, 'node_modules');

interface Manifest {
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

let dir = '';
let installed = '';
let manifest: Manifest = {};
const children: ChildProcess[] = [];

function link(name: string, target: string): void {
  const at = path.join(dir, 'node_modules', name);
  mkdirSync(path.dirname(at), { recursive: true });
  symlinkSync(path.join(MODULES, target), at, 'dir');
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'epc-pack-'));
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const tarball = path.join(dir, (JSON.parse(out) as { filename: string }[])[0]!.filename);
  installed = path.join(dir, 'node_modules', 'edge-page-cache');
  mkdirSync(installed, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
  manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as Manifest;
  for (const dep of Object.keys(manifest.dependencies ?? {})) link(dep, dep);
  // The app's own Express 4 and morgan 1.9 (npm aliases in this project's devDependencies).
  link('express', 'express4');
  link('morgan', 'morgan19');
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'fixture-app', private: true, dependencies: { express: '4.21.2', morgan: '1.9.1', 'edge-page-cache': `file:${tarball}` } }));
  const app = (load: string): string => `${load}
const app = express();
app.use(morgan('dev', { stream: { write() {} } }));
app.use(pageCache({ ttl: 60 }));
app.get('/', (req, res) => res.send('<h1>fixture</h1>' + 'x'.repeat(500)));
const server = app.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;
  writeFileSync(path.join(dir, 'app.cjs'), app(`const express = require('express');\nconst morgan = require('morgan');\nconst { pageCache } = require('edge-page-cache');`));
  writeFileSync(path.join(dir, 'app.mjs'), app(`import express from 'express';\nimport morgan from 'morgan';\nimport { pageCache } from 'edge-page-cache';`));
}, 120_000);

afterAll(() => {
  for (const c of children) c.kill('SIGTERM');
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

function start(file: string): Promise<number> {
  const child = spawn(process.execPath, [file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', (code) => reject(new Error(`${file} exited ${code}: ${err}`)));
  });
}

function filesUnder(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(d, e.name)) : [path.join(d, e.name)]));
}

describe('the packed package in an Express 4 app', () => {
  it('declares express an optional peer dependency (^4.16.0 || ^5.0.0), never a dependency, and never requires it', () => {
    expect(manifest.dependencies?.['express']).toBeUndefined();
    expect(manifest.peerDependencies?.['express']).toBe('^4.16.0 || ^5.0.0');
    expect(manifest.peerDependenciesMeta?.['express']?.optional).toBe(true);
    const requiring = filesUnder(path.join(installed, 'dist')).filter((f) => f.endsWith('.js') && /require\("express"\)/.test(readFileSync(f, 'utf8')));
    expect(requiring).toEqual([]);
    for (const range of Object.values(manifest.dependencies ?? {})) expect(range).toMatch(/^\^/);
  });

  it.each(['app.cjs', 'app.mjs'])('%s: MISS then HIT behind morgan 1.9', async (file) => {
    const port = await start(file);
    const first = await request(port, '/');
    expect(first.status).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    let second = await request(port, '/');
    // The store runs after the response finished; give it a moment, bounded.
    for (let i = 0; i < 50 && second.headers['x-cache'] !== 'HIT'; i++) second = await request(port, '/');
    expect(second.status).toBe(200);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.body.equals(first.body)).toBe(true);
  });
});
