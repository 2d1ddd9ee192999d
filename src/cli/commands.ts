// The smaller commands: purge (through an edge's admin port, or straight in memcached), warm (fetch
// every URL of a sitemap through the edge), nginx-conf (an nginx config serving the same cache).
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { request } from 'undici';
import { createPageCache } from '../core/cache';
import { ConfigError } from '../core/errors';
import { memcachedGzipFlag, positiveInt } from '../core/options';
import { parseServerList } from '../core/ring';
import { createMemcachedStore } from '../core/stores/memcached';
import { createProgress } from './progress';
import type { Progress } from './progress';
import { prefixPurgeTag, sitePurgeTag } from '../core/tags';
import { readFileSync } from 'node:fs';
import { compileRules, nginxIncompatibility } from '../core/rules';
import { ANY_STATUS } from '../core/policy';
import { resolveRequestPolicy } from '../core/request-policy';
import { plainObject } from '../core/options';

function args(argv: readonly string[], options: NonNullable<ParseArgsConfig['options']>): { values: Record<string, unknown>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
    return { values, positionals };
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function list(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
}

/**
 * edge-page-cache purge URL... [--tag T...] [--prefix URL...] [--site HOST...] [--all] [--soft] [--rewarm --edge URL
 * [--concurrency N]] [--admin URL --admin-token T | --memcached host:port,...]
 */
export async function purgeCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { values, positionals } = args(argv, {
    tag: { type: 'string', multiple: true },
    prefix: { type: 'string', multiple: true },
    site: { type: 'string', multiple: true },
    soft: { type: 'boolean' },
    all: { type: 'boolean' },
    rewarm: { type: 'boolean' },
    edge: { type: 'string' },
    concurrency: { type: 'string' },
    admin: { type: 'string' },
    'admin-token': { type: 'string' },
    memcached: { type: 'string' },
    'key-prefix': { type: 'string' },
  });
  const urls = positionals;
  const tags = list(values.tag);
  const prefixes = list(values.prefix);
  const sites = list(values.site);
  const everything = values.all === true;
  if (!everything && urls.length + tags.length + prefixes.length + sites.length === 0) throw new ConfigError('purge needs at least one URL, --tag TAG, --prefix URL, --site HOST or --all');
  if (everything && values.soft === true) throw new ConfigError('purge --all is a hard purge (a new global version): it cannot be --soft');
  for (const u of urls) if (!/^https?:\/\//i.test(u)) throw new ConfigError(`purge: '${u}' is not an absolute http(s) URL`);
  // Checked here too, so a mistake is reported before anything is purged (the admin port checks them again).
  const scoped = [...prefixes.map((p) => prefixPurgeTag(p)), ...sites.map((s) => sitePurgeTag(s))];
  const soft = values.soft === true;
  const rewarm = values.rewarm === true;
  if (rewarm && urls.length === 0) throw new ConfigError('purge --rewarm refetches the URLs given: name at least one URL (tags, prefixes and sites list no URLs)');
  const rewarmEdge = str(values.edge) ?? env.EDGE_URL;
  if (rewarm && rewarmEdge === undefined) throw new ConfigError('purge --rewarm needs --edge URL (or EDGE_URL): the edge the purged URLs are requested through');
  const concurrency = values.concurrency === undefined ? 4 : positiveInt('--concurrency', values.concurrency, 64);
  /** After the purge: each URL requested once through the edge, a few at a time (a soft-purged page then refreshes at once). */
  async function rewarmed(said: string): Promise<string> {
    if (!rewarm) return said;
    const { ok, failed } = await requestAll(urls, rewarmEdge, concurrency, createProgress('rewarm', urls.length));
    return `${said}\nrewarmed ${ok} of ${urls.length} URL(s)${failed > 0 ? `, ${failed} failed` : ''}`;
  }
  const memcached = str(values.memcached) ?? env.EDGE_MEMCACHED;
  if (memcached !== undefined && str(values.admin) === undefined) {
    const store = createMemcachedStore({ servers: parseServerList('--memcached', memcached), timeoutMs: 1000 });
    const cache = createPageCache({
      store,
      keyPrefix: str(values['key-prefix']) ?? env.EDGE_KEY_PREFIX ?? '',
      format: 'envelope',
      raw: { defaultContentType: 'text/html', gzipFlag: 2, ttlSeconds: 0 },
      maxEntryBytes: 1024 * 1024,
    });
    // Prefixes and sites through the automatic tags every stored page carries (src/core/tags.ts).
    let count = 0;
    const progress = createProgress('purge', urls.length);
    for (const [i, batch] of batches(urls).entries()) {
      count += (await cache.purge(batch, i === 0 ? [...tags, ...scoped] : [], { soft, all: i === 0 && everything })).length;
      progress.tick(true, batch.length);
    }
    progress.finish();
    await store.close();
    const versioned = scoped.length + (everything ? 1 : 0);
    const scope = versioned > 0 ? `; ${versioned} prefix/site/all version(s) renewed: every page under them is a ${soft ? 'stale page' : 'miss'} from now` : '';
    return rewarmed(`${soft ? 'marked stale' : 'purged'} ${count} key(s) in memcached${scope} (edges drop their L1 copies within --l1-ttl seconds)`);
  }
  const admin = str(values.admin) ?? env.EDGE_ADMIN_URL ?? `http://127.0.0.1:${env.EDGE_ADMIN_PORT ?? '9091'}`;
  const token = str(values['admin-token']) ?? env.EDGE_ADMIN_TOKEN;
  if (token === undefined) throw new ConfigError('purge through the admin port needs --admin-token (or EDGE_ADMIN_TOKEN)');
  // Many URLs go in batches (one POST each, the tags, prefixes and sites with the first), so a bar can move
  // and no body nears the admin port's 64 KiB limit.
  const all = batches(urls);
  const progress = createProgress('purge', urls.length);
  let text = '';
  let purged = 0;
  for (const [i, batch] of all.entries()) {
    const first = i === 0;
    const res = await request(new URL('/purge', admin), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ urls: batch, tags: first ? tags : [], ...(first && prefixes.length > 0 ? { prefixes } : {}), ...(first && sites.length > 0 ? { sites } : {}), ...(soft ? { soft } : {}), ...(first && everything ? { all: true } : {}) }),
    });
    text = (await res.body.text()).trim();
    if (res.statusCode !== 200) {
      progress.finish();
      throw new Error(`purge failed: ${res.statusCode} ${text}${i > 0 ? ` (after ${i * PURGE_BATCH} of ${urls.length} URLs)` : ''}`);
    }
    purged += (JSON.parse(text) as { purged?: number }).purged ?? 0;
    progress.tick(true, batch.length);
  }
  progress.finish();
  return rewarmed(all.length > 1 ? JSON.stringify({ ...(JSON.parse(text) as object), purged }) : text);
}

/** URLs per purge call (a POST to the admin port, or one pass in memcached). */
const PURGE_BATCH = 500;

function batches(urls: readonly string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < urls.length; i += PURGE_BATCH) out.push(urls.slice(i, i + PURGE_BATCH));
  return out.length === 0 ? [[]] : out;
}

const LOC = /<loc>\s*([^<\s]+)\s*<\/loc>/g;

function unescapeXml(s: string): string {
  return s.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'");
}

/** edge-page-cache warm --sitemap URL [--edge URL] [--concurrency N]: requests every page through the edge. */
export async function warmCommand(argv: readonly string[]): Promise<string> {
  const { values } = args(argv, { sitemap: { type: 'string' }, edge: { type: 'string' }, concurrency: { type: 'string' } });
  const sitemap = str(values.sitemap);
  if (sitemap === undefined) throw new ConfigError('warm needs --sitemap URL');
  const edge = str(values.edge);
  const concurrency = values.concurrency === undefined ? 8 : positiveInt('--concurrency', values.concurrency, 256);
  const pages: string[] = [];
  const queue = [sitemap];
  for (let depth = 0; queue.length > 0 && depth < 1000; depth++) {
    const url = queue.shift()!;
    const res = await request(url);
    if (res.statusCode !== 200) throw new Error(`warm: ${url} answered ${res.statusCode}`);
    const xml = await res.body.text();
    const isIndex = xml.includes('<sitemapindex');
    for (const m of xml.matchAll(LOC)) (isIndex ? queue : pages).push(unescapeXml(m[1]!));
  }
  const { ok, failed } = await requestAll(pages, edge, concurrency, createProgress('warm', pages.length));
  return `warmed ${ok} of ${pages.length} page(s)${failed > 0 ? `, ${failed} failed` : ''}`;
}

/** GETs every page (through the edge when given: same path and query, the page's own Host), at most `concurrency` at once. */
async function requestAll(pages: readonly string[], edge: string | undefined, concurrency: number, progress: Progress): Promise<{ ok: number; failed: number }> {
  let ok = 0;
  let failed = 0;
  let next = 0;
  async function run(): Promise<void> {
    while (next < pages.length) {
      const page = new URL(pages[next++]!);
      const target = edge === undefined ? page : new URL(page.pathname + page.search, edge);
      try {
        const r = await request(target, { headers: { host: page.host } });
        await r.body.dump();
        if (r.statusCode < 400) ok++;
        else failed++;
        progress.tick(r.statusCode < 400);
      } catch {
        failed++;
        progress.tick(false);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, pages.length) }, run));
  progress.finish();
  return { ok, failed };
}

// What nginx-conf pastes into the config is checked first: a quote, `;`, `{`, `$` or a newline in a flag
// would otherwise end a directive and start another (config injection), or name an nginx variable.

/** --fallback: an http(s) URL, host and optional port only (nginx refuses a URI part in a named location's proxy_pass). */
function nginxFallback(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  const plain = /^https?:\/\/[A-Za-z0-9._[\]:-]+\/?$/;
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || !plain.test(value)) {
    throw new ConfigError(`--fallback must be an http(s) URL such as http://127.0.0.1:8080 (scheme, host and port only), got '${value}'`);
  }
  return value.endsWith('/') ? value.slice(0, -1) : value;
}

/** --listen: a port, or address:port (IPv4, [IPv6] or a host name), port 1-65535. */
function nginxListen(value: string): string {
  const m = /^(?:(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):)?(\d{1,5})$/.exec(value);
  const port = m === null ? 0 : Number(m[1]);
  if (port < 1 || port > 65535) throw new ConfigError(`--listen must be PORT or ADDRESS:PORT with a port from 1 to 65535, got '${value}'`);
  return value;
}

/** --default-type: a media type with optional parameters, none holding quotes, `$`, `;` outside parameters or newlines. */
function nginxMediaType(value: string): string {
  const token = "[A-Za-z0-9!#&^_.+-]+";
  if (!new RegExp(`^${token}/${token}(?:\\s*;\\s*${token}=${token})*$`).test(value)) {
    throw new ConfigError(`--default-type must be a media type such as 'text/html; charset=utf-8', got '${value}'`);
  }
  return value;
}

/**
 * The edge's --config rules, if any, must key pages as nginx does (md5($host$request_uri)): a rule that
 * normalises the URI or adds a device class makes keys nginx cannot compute, so nginx-conf refuses it.
 */
function refuseRulesNginxCannotKey(configPath: string | undefined): void {
  if (configPath === undefined) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (err) {
    throw new ConfigError(`--config ${configPath}: ${(err as Error).message}`);
  }
  const rules = compileRules(plainObject(`--config ${configPath}`, parsed).rules, {
    request: resolveRequestPolicy({}, 'strip'),
    policy: { defaultTtlSeconds: 0, defaultStaleWhileRevalidateSeconds: 0, defaultStaleIfErrorSeconds: 0, statuses: ANY_STATUS, maxTtlSeconds: 1 },
  });
  const why = nginxIncompatibility(rules);
  if (why !== undefined) throw new ConfigError(`nginx-conf: ${why}; nginx would never find those pages (drop the rule's key options, or serve without nginx)`);
}

/** An nginx config serving the same cache: same key, same ring, the edge (or origin) as fallback. */
export function nginxConf(argv: readonly string[], env: NodeJS.ProcessEnv): string {
  const { values } = args(argv, {
    memcached: { type: 'string' },
    fallback: { type: 'string' },
    listen: { type: 'string' },
    'key-prefix': { type: 'string' },
    'default-type': { type: 'string' },
    'gzip-flag': { type: 'string' },
    config: { type: 'string' },
  });
  refuseRulesNginxCannotKey(str(values.config) ?? env.EDGE_CONFIG);
  const servers = parseServerList('--memcached', str(values.memcached) ?? env.EDGE_MEMCACHED ?? '127.0.0.1:11211');
  const fallback = nginxFallback(str(values.fallback) ?? 'http://127.0.0.1:8080');
  const listen = nginxListen(str(values.listen) ?? '80');
  const defaultType = nginxMediaType(str(values['default-type']) ?? 'text/html; charset=utf-8');
  const prefix = str(values['key-prefix']) ?? env.EDGE_KEY_PREFIX ?? '';
  if (/["\\$\s;]/.test(prefix)) throw new ConfigError(`--key-prefix must not contain quotes, $, ; or spaces for nginx, got '${prefix}'`);
  // It must be the flag the edge and middleware write, so it is checked as theirs are (never the envelope
  // bit); 0, which would turn nginx's gzip test off, stays refused here.
  const gzipFlag = values['gzip-flag'] === undefined ? 2 : memcachedGzipFlag('--gzip-flag', values['gzip-flag'], 1);
  return `# nginx serving the edge-page-cache cache (generated by \`edge-page-cache nginx-conf\`).
# Needs the set-misc module (Debian: apt-get install libnginx-mod-http-set-misc) for set_md5.
# nginx can only serve *raw* entries: run the edge and the middleware with --format raw / format: 'raw'.
# The server list must match the edge's --memcached, in the same order and spelling.
upstream edge_page_cache_memcached {
    hash $memcached_key consistent;
${servers.map((s) => `    server ${s.name}${s.weight !== 1 ? ` weight=${s.weight}` : ''};`).join('\n')}
    keepalive 32;
}

server {
    listen ${listen};

    location / {
        # Only anonymous GET/HEAD are looked up, as the edge does.
        if ($request_method !~ ^(GET|HEAD)$) { return 418; }
        if ($http_authorization) { return 418; }
        if ($http_cookie) { return 418; }

        set_md5 $memcached_key "${prefix}$host$request_uri";
        memcached_pass edge_page_cache_memcached;
        memcached_gzip_flag ${gzipFlag};
        default_type "${defaultType}";
        add_header X-Cache HIT;
        error_page 404 418 502 504 = @edge;
    }

    location @edge {
        proxy_pass ${fallback};
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
}
`;
}
