import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../core/errors';
import { OPTION_TABLE } from '../core/option-table';
import { EDGE_OPTION_KEYS } from '../edge/options';
import { envName, flagLabel, SERVE_FLAGS, serveOptionsFromArgv } from './flags';

const README = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');

describe('serve flags', () => {
  it('cover every edge option, and the README documents every flag with its environment twin', () => {
    // Options the table gives no flag (rules: a list of objects) are config-file keys only.
    const flagged = EDGE_OPTION_KEYS.filter((k) => (OPTION_TABLE as Record<string, { flag?: string }>)[k]?.flag !== undefined);
    expect(new Set(SERVE_FLAGS.map(([, key]) => key))).toEqual(new Set(flagged));
    expect(EDGE_OPTION_KEYS.filter((k) => !flagged.includes(k))).toEqual(['rules']);
    for (const [flag] of SERVE_FLAGS) {
      expect(README).toContain(`| \`--${flag}\` | \`${envName(flag)}\` |`);
    }
  });

  it('flags win over EDGE_* variables', () => {
    const o = serveOptionsFromArgv(['--port', '9000', '--origin', 'http://a:1', '--origin', 'http://b:2'], { EDGE_PORT: '7000', EDGE_TTL: '30' });
    expect(o).toEqual({ port: '9000', origin: ['http://a:1', 'http://b:2'], ttl: '30' });
  });

  it('rejects unknown flags with a suggestion', () => {
    expect(() => serveOptionsFromArgv(['--memcache', 'x'], {})).toThrow(ConfigError);
    expect(() => serveOptionsFromArgv(['--memcache', 'x'], {})).toThrow(/unknown flag --memcache \(did you mean --memcached\?\)/);
  });

  it('labels option errors with the flag and its variable', () => {
    expect(flagLabel("memcachedTimeoutMs must be a positive integer, got 'x'")).toBe(
      "--memcached-timeout (EDGE_MEMCACHED_TIMEOUT) must be a positive integer, got 'x'",
    );
  });
});
