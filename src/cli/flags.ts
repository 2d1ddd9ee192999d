// The serve command's flags, their EDGE_* environment twins, and the EdgeOptions key each one sets.
// Flags win over the environment, which wins over a --config file.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../core/errors';
import { closestName, plainObject } from '../core/options';
import type { EdgeOptions } from '../edge/options';

type Key = keyof EdgeOptions;

/** flag -> [option key, help]. Order is the order of `--help`. */
export const SERVE_FLAGS: ReadonlyArray<readonly [flag: string, key: Key, help: string]> = [
  ['port', 'port', 'listening port (8080)'],
  ['host', 'host', 'listening address (0.0.0.0)'],
  ['origin', 'origin', 'origin URL, repeatable or comma-separated (required)'],
  ['memcached', 'memcached', 'memcached nodes host:port[,host:port...] (absent: embedded in-process store)'],
  ['ttl', 'ttl', 'seconds of freshness for cacheable responses that state none (120; 0: only what the origin states)'],
  ['workers', 'workers', 'processes sharing the port (1)'],
  ['admin-port', 'adminPort', 'admin port for /healthz /metrics /purge and the stats page (off)'],
  ['admin-host', 'adminHost', 'admin address (127.0.0.1)'],
  ['admin-token', 'adminToken', 'bearer token for POST /purge (16+ chars)'],
  ['hosts', 'hosts', 'Host names served, comma-separated; others get 421 (any)'],
  ['key-prefix', 'keyPrefix', "prefix inside the md5 key ('')"],
  ['format', 'format', 'entries written: envelope or raw (envelope)'],
  ['default-type', 'defaultContentType', 'Content-Type of raw entries (text/html; charset=utf-8)'],
  ['gzip-flag', 'gzipFlag', 'memcached flag of gzip raw bodies, as nginx memcached_gzip_flag (2)'],
  ['max-entry-size', 'maxEntryBytes', "largest page stored, bytes or '1m' (1m)"],
  ['memory', 'memoryBytes', "in-process cache size: L1 before memcached (64m) or the whole embedded cache (256m)"],
  ['l1-ttl', 'l1TtlSeconds', 'seconds an entry stays in L1 before memcached is asked again (2)'],
  ['memcached-timeout', 'memcachedTimeoutMs', 'ms per memcached call (100)'],
  ['memcached-retry-after', 'memcachedRetryAfterMs', 'ms a failed memcached node is skipped (2000)'],
  ['origin-connect-timeout', 'originConnectTimeoutMs', 'ms to connect to an origin (2000)'],
  ['origin-timeout', 'originTimeoutMs', 'ms to the origin response headers before 504 (30000)'],
  ['origin-body-timeout', 'originBodyTimeoutMs', 'ms between origin body chunks (30000)'],
  ['origin-connections', 'originConnections', 'keep-alive connections per origin (64)'],
  ['origin-max-fails', 'originMaxFails', 'consecutive failures that mark an origin down (3)'],
  ['origin-fail-timeout', 'originFailTimeoutMs', 'ms an origin stays marked down (5000)'],
  ['origin-health-path', 'originHealthPath', 'path probed on every origin (off: passive health only)'],
  ['origin-health-interval', 'originHealthIntervalMs', 'ms between probes (2000)'],
  ['stale-while-revalidate', 'staleWhileRevalidate', 'default seconds served stale while refreshing (0)'],
  ['stale-if-error', 'staleIfError', 'default seconds served stale when the origin fails (3600)'],
  ['ignore-cookies', 'ignoreCookies', "cookies that never change a page, 'name' or 'prefix*' (analytics list)"],
  ['cache-statuses', 'cacheStatuses', 'status codes that may be stored (200,203,204,300,301,308,404,410)'],
  ['access-log', 'accessLogSample', 'access log sample rate 0..1 (0: off)'],
  ['max-header-size', 'maxHeaderBytes', "largest request head, larger gets 431 (16k)"],
  ['max-ttl', 'maxTtlSeconds', 'cap on origin-stated freshness, seconds (1 year)'],
  ['drain-timeout', 'drainTimeoutMs', 'ms to finish in-flight requests on SIGTERM (10000)'],
  ['keepalive-timeout', 'keepAliveTimeoutMs', 'ms a kept-alive client connection may wait for its next request (5000)'],
  ['compression', 'compression', 'store compressible pages as gzip, br or off (gzip)'],
  ['compress-min-size', 'compressMinBytes', 'smallest body compressed, bytes (1024)'],
  ['coalesce', 'coalesce', 'one origin fetch per key for concurrent misses: true|false (true)'],
  ['lock-timeout', 'lockTimeoutMs', 'ms a miss waits for another edge filling the same key (5000)'],
];

const MULTI: ReadonlySet<string> = new Set(['origin', 'hosts', 'ignore-cookies', 'cache-statuses']);

export function envName(flag: string): string {
  return `EDGE_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** argv (after 'serve') + env + optional config file -> EdgeOptions. Throws ConfigError naming the flag. */
export function serveOptionsFromArgv(argv: readonly string[], env: NodeJS.ProcessEnv): EdgeOptions {
  const options: Record<string, { type: 'string'; multiple?: boolean }> = { config: { type: 'string' } };
  for (const [flag] of SERVE_FLAGS) options[flag] = MULTI.has(flag) ? { type: 'string', multiple: true } : { type: 'string' };
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (err) {
    const msg = (err as Error).message;
    const m = /option '--?([^' ]+)/.exec(msg);
    if (m?.[1] !== undefined && /Unknown option/i.test(msg)) {
      const hint = closestName(m[1], SERVE_FLAGS.map(([f]) => f));
      throw new ConfigError(`unknown flag --${m[1]}${hint ? ` (did you mean --${hint}?)` : ''}; see edge-page-cache serve --help`);
    }
    if (/Unexpected argument/i.test(msg)) throw new ConfigError(`${msg.split('.')[0]}: serve takes only --flags`);
    throw new ConfigError(msg.replace(/^TypeError \[\w+\]: /, ''));
  }

  const out: Record<string, unknown> = {};
  const configPath = (values.config as string | undefined) ?? env.EDGE_CONFIG;
  if (configPath !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(configPath, 'utf8'));
    } catch (err) {
      throw new ConfigError(`--config ${configPath}: ${(err as Error).message}`);
    }
    Object.assign(out, plainObject(`--config ${configPath}`, parsed));
  }
  for (const [flag, key] of SERVE_FLAGS) {
    const fromEnv = env[envName(flag)];
    if (fromEnv !== undefined && fromEnv !== '') out[key] = fromEnv;
    const fromFlag = values[flag];
    if (fromFlag !== undefined) out[key] = fromFlag;
  }
  return out as EdgeOptions;
}

/** Re-labels a ConfigError about an option key with the flag the user typed. */
export function flagLabel(message: string): string {
  for (const [flag, key] of SERVE_FLAGS) {
    if (message.startsWith(`${key} `) || message.startsWith(`${key}:`) || message.startsWith(`${key}.`)) {
      return `--${flag} (${envName(flag)})${message.slice(key.length)}`;
    }
  }
  return message;
}

export function serveHelp(): string {
  const lines = SERVE_FLAGS.map(([flag, , help]) => `  --${flag.padEnd(24)} ${help}\n  ${''.padEnd(26)} env ${envName(flag)}`);
  return `usage: edge-page-cache serve --origin URL [flags]\n\n${lines.join('\n')}\n  --config FILE            JSON file of options (camelCase keys); flags and env win\n`;
}
