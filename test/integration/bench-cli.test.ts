// edge-page-cache bench against a user's own site, as users run it (the built CLI): the table, the walk over
// --urls-file with --header on every request, the JSON report's fields, the HTML report as one file that
// fetches nothing, the warnings (no X-Cache, non-2xx), and URLs that are not http(s) refused.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CLI, startEdge } from '../helpers/edge';
import { startOrigin } from '../helpers/origin';

const run = promisify(execFile);

async function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, 'bench', ...args], { timeout: 30000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

interface Row {
  name: string;
  rps: number;
  p50: number;
  p975: number;
  p99: number;
  max: number;
  errors: number;
  non2xx: number;
  requests: number;
  hitRatio?: number;
  ratios: Record<string, { median: number; rounds: number[] }>;
}

describe('edge-page-cache bench', () => {
  it('walks --urls-file on an edge and its origin for 1 s, prints the table, writes the JSON and a self-contained HTML report', async () => {
    const origin = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60' });
      res.end('<p>page</p>'.repeat(100));
    });
    const edge = await startEdge(['--origin', origin.url]);
    const dir = mkdtempSync(path.join(tmpdir(), 'epc-bench-cli-'));
    const urls = path.join(dir, 'urls.txt');
    const edgeUrl = `http://127.0.0.1:${edge.port}`;
    writeFileSync(urls, `# pages to walk\n/a\n/b?x=1\n\n${edgeUrl}/c\n`);
    const json = path.join(dir, 'out.json');
    const html = path.join(dir, 'out.html');
    try {
      const r = await bench([
        '--url', `${edgeUrl}/`, '--urls-file', urls, '--compare', `${origin.url}/`, '--duration', '1', '--connections', '4',
        '--header', 'X-Bench: yes', '--json', json, '--html', html,
      ]);
      expect(r.stderr).not.toMatch(/non-2xx/);
      expect(r.code).toBe(0);

      // The table: its columns, and a row per target in the order given.
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^target +req\/s +p50 ms +p97\.5 ms +p99 ms +max ms +errors +non2xx +hit% +origin +vs first$/);
      expect(lines[1]).toMatch(new RegExp(`^${edgeUrl}/ +\\d+ .* 1\\.00x$`));
      expect(lines[2]).toMatch(new RegExp(`^${origin.url}/ +\\d+ .* \\d+\\.\\d\\dx$`));
      expect(lines).toHaveLength(3);

      // Every path of the file was requested (through the edge on its misses, and directly), with the header.
      for (const p of ['/a', '/b?x=1', '/c']) {
        expect(origin.hits(p)).toBeGreaterThan(1);
        expect(origin.lastHeaders(p)?.['x-bench']).toBe('yes');
      }
      // The origin sends no X-Cache: the user is told; the edge does: no warning for it.
      expect(r.stderr).toContain(`warning: ${origin.url}/ sent no X-Cache header at all`);
      expect(r.stderr).not.toContain(`warning: ${edgeUrl}/ sent no X-Cache`);

      const report = JSON.parse(readFileSync(json, 'utf8')) as {
        kind: string;
        command: string;
        machine: { cpu: string; cores: number; node: string };
        scenarios: { rows: Row[] }[];
      };
      expect(report.kind).toBe('edge-page-cache-bench');
      expect(report.command).toContain('edge-page-cache bench --url');
      expect(report.machine.cores).toBeGreaterThan(0);
      expect(report.machine.node).toBe(process.version);
      expect(report.machine.cpu.length).toBeGreaterThan(0);
      const [edgeRow, originRow] = report.scenarios[0]!.rows;
      for (const row of [edgeRow!, originRow!]) {
        expect(row.rps).toBeGreaterThan(0);
        expect(row.requests).toBeGreaterThan(0);
        expect(row.errors).toBe(0);
        expect(row.non2xx).toBe(0);
        for (const k of ['p50', 'p975', 'p99', 'max'] as const) expect(typeof row[k]).toBe('number');
        expect(row.max).toBeGreaterThanOrEqual(row.p99);
      }
      // Three pages, each a MISS once then HITs: the edge's hit ratio is high; the origin has none.
      expect(edgeRow!.hitRatio).toBeGreaterThan(0.9);
      expect(originRow!.hitRatio).toBeUndefined();
      expect(originRow!.ratios['vs first']!.median).toBeCloseTo(originRow!.rps / edgeRow!.rps, 5);

      // One file: no other file written beside it, nothing fetched (no src/href to http(s), no script or
      // stylesheet from elsewhere), the charts inline.
      expect(readdirSync(dir).sort()).toEqual(['out.html', 'out.json', 'urls.txt']);
      const page = readFileSync(html, 'utf8');
      expect(page.startsWith('<!doctype html>')).toBe(true);
      expect(page).toContain('<svg');
      expect(page).toContain(edgeUrl);
      expect(page).not.toMatch(/(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
      expect(page).not.toMatch(/<script[^>]*\bsrc\b/i);
      expect(page).not.toMatch(/<link\b/i);
      expect(page).not.toMatch(/@import|url\(/i);
    } finally {
      await edge.stop();
      await origin.close();
    }
  });

  it('warns when the target answers non-2xx', async () => {
    const origin = await startOrigin((_req, res) => {
      res.writeHead(503, { 'x-cache': 'MISS' });
      res.end('down');
    });
    try {
      const r = await bench(['--url', `${origin.url}/`, '--duration', '1', '--connections', '2']);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(new RegExp(`warning: ${origin.url}/ answered \\d+ of \\d+ requests with a non-2xx status`));
      expect(r.stderr).not.toContain('no X-Cache');
    } finally {
      await origin.close();
    }
  });

  it.each([
    [['--url', 'ftp://example.com/'], /--url must be an http:\/\/ or https:\/\/ URL, got 'ftp:\/\/example.com\/'/],
    [['--url', 'localhost:8080'], /--url must be an http:\/\/ or https:\/\/ URL, got 'localhost:8080'/],
    [['--url', 'http://127.0.0.1:1/', '--compare', 'file:///etc/passwd'], /--compare must be an http:\/\/ or https:\/\/ URL/],
    [['--url', 'http://127.0.0.1:1/', '--header', 'no-colon'], /--header must be 'Name: value', got 'no-colon'/],
    [[], /bench needs --url URL/],
  ])('refuses %j before sending any load (exit 2)', async (args, message) => {
    const r = await bench(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('refuses a --urls-file line that is not a path or an http(s) URL, naming the line', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'epc-bench-cli-'));
    const urls = path.join(dir, 'urls.txt');
    writeFileSync(urls, '/ok\ngopher://old.example/\n');
    const r = await bench(['--url', 'http://127.0.0.1:1/', '--urls-file', urls]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--urls-file ${urls} line 2 must be an http:// or https:// URL, got 'gopher://old.example/'`);
  });
});
