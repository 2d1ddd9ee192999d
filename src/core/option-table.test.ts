// The options table is the one source: the README's reference tables are generated from it (run
// `UPDATE_README=1 npx jest src/core/option-table` to rewrite them), and both resolvers' defaults are its.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { resolveMiddlewareOptions } from '../../middleware/options';
import { serveHelp } from '../cli/flags';
import { resolveEdgeOptions } from '../edge/options';
import { envName, OPTION_TABLE, referenceTable, SERVE_FLAGS } from './option-table';
import type { OptionSpec } from './option-table';

const README_PATH = path.join(__dirname, '..', '..', 'README.md');
const SECTIONS = ['edge', 'middleware', 'differences'] as const;

function section(readme: string, name: string): { start: number; end: number } {
  const open = `<!-- options:${name} -->\n`;
  const start = readme.indexOf(open);
  const end = readme.indexOf(`\n<!-- /options:${name} -->`);
  if (start === -1 || end === -1) throw new Error(`README.md has no <!-- options:${name} --> section`);
  return { start: start + open.length, end };
}

describe('the options table', () => {
  it('is what the README reference tables say (generated; UPDATE_README=1 rewrites them)', () => {
    let readme = readFileSync(README_PATH, 'utf8');
    if (process.env.UPDATE_README === '1') {
      for (const name of SECTIONS) {
        const { start, end } = section(readme, name);
        readme = readme.slice(0, start) + referenceTable(name) + readme.slice(end);
      }
      writeFileSync(README_PATH, readme);
    }
    for (const name of SECTIONS) {
      const { start, end } = section(readme, name);
      expect(readme.slice(start, end)).toBe(referenceTable(name));
    }
  });

  it('gives serve --help every flag, its EDGE_* twin and its default', () => {
    const help = serveHelp();
    for (const [flag, key] of SERVE_FLAGS) {
      expect(help).toContain(`--${flag}`);
      expect(help).toContain(envName(flag));
      expect(help).toContain(`(${(OPTION_TABLE[key] as OptionSpec).edge!.text})`);
    }
  });

  it("holds the edge resolver's defaults", () => {
    const e = resolveEdgeOptions({ origin: 'http://127.0.0.1:1' });
    const t = OPTION_TABLE;
    expect(e.port).toBe(t.port.edge.value);
    expect(e.host).toBe(t.host.edge.value);
    expect(e.policy.defaultTtlSeconds).toBe(t.ttl.edge.value);
    expect(e.policy.defaultStaleIfErrorSeconds).toBe(t.staleIfError.edge.value);
    expect(e.policy.defaultStaleWhileRevalidateSeconds).toBe(t.staleWhileRevalidate.edge.value);
    expect([...e.policy.statuses]).toEqual(t.cacheStatuses.edge.value);
    expect(e.store.memoryBytes).toBe(t.memoryBytes.edge.value.embedded);
    expect(resolveEdgeOptions({ origin: 'http://127.0.0.1:1', memcached: '127.0.0.1:11211' }).store.memoryBytes).toBe(t.memoryBytes.edge.value.withMemcached);
    expect(e.maxEntryBytes).toBe(t.maxEntryBytes.edge.value);
    expect(e.lockTimeoutMs).toBe(t.lockTimeoutMs.edge.value);
    expect(e.defaultContentType).toBe(t.defaultContentType.edge.value);
    expect(e.gzipFlag).toBe(t.gzipFlag.edge.value);
    expect(e.store.l1TtlSeconds).toBe(t.l1TtlSeconds.edge.value);
    expect(e.store.memcachedTimeoutMs).toBe(t.memcachedTimeoutMs.edge.value);
    expect(e.keepAliveTimeoutMs).toBe(t.keepAliveTimeoutMs.edge.value);
  });

  it("holds the middleware resolver's defaults", () => {
    const m = resolveMiddlewareOptions({});
    const t = OPTION_TABLE;
    expect(m.policy.defaultTtlSeconds).toBe(t.ttl.middleware.value);
    expect(m.policy.defaultStaleIfErrorSeconds).toBe(t.staleIfError.middleware.value);
    expect([...m.policy.statuses]).toEqual(t.cacheStatuses.middleware.value);
    expect(m.memoryBytes).toBe(t.memoryBytes.middleware.value.embedded);
    expect(resolveMiddlewareOptions({ memcached: '127.0.0.1:11211' }).memoryBytes).toBe(t.memoryBytes.middleware.value.withMemcached);
    expect(m.maxEntryBytes).toBe(t.maxEntryBytes.middleware.value);
    expect(m.lockTimeoutMs).toBe(t.lockTimeoutMs.middleware.value);
    expect(m.defaultContentType).toBe(t.defaultContentType.middleware.value);
    expect(m.gzipFlag).toBe(t.gzipFlag.middleware.value);
    expect(m.l1TtlSeconds).toBe(t.l1TtlSeconds.middleware.value);
  });

  it('explains every default that differs between the doors', () => {
    for (const [name, spec] of Object.entries(OPTION_TABLE) as [string, { edge?: { value: unknown }; middleware?: { value: unknown }; why?: string }][]) {
      if (spec.edge === undefined || spec.middleware === undefined) continue;
      if (JSON.stringify(spec.edge.value) !== JSON.stringify(spec.middleware.value)) expect([name, spec.why]).toEqual([name, expect.any(String)]);
    }
  });
});
