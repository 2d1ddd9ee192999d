// The Django example (examples/django, Debian's python3-django) with real Django, the edge and nginx.
// Edge alone in front: anonymous pages are cached (Django renders them once); the login form, the contact
// form (CSRF cookie), the admin and every signed-in page always reach Django; no user ever gets another's
// page. Raw layout: Django's own middleware writes anonymous pages raw into memcached (two nodes, nginx's
// ring), and the edge (--format raw) and real nginx serve them as hits without asking Django.
import { execFileSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { cacheKey } from '../../src/core/key';
import { parseServerList } from '../../src/core/ring';
import type { CacheStore } from '../../src/core/store';
import { createMemcachedStore } from '../../src/core/stores/memcached';
import { ADMIN_PASSWORD, Browser, startDjangoExample, USER_PASSWORD } from '../helpers/django';
import type { DjangoExample } from '../helpers/django';
import { CLI } from '../helpers/edge';
import { startMemcacheds } from '../helpers/memcached';
import type { MemcachedProcess } from '../helpers/memcached';
import { startNginx } from '../helpers/nginx';
import type { NginxProcess } from '../helpers/nginx';
import { request } from '../helpers/origin';
import { freePort } from '../helpers/ports';

jest.setTimeout(30000);

const HOST = '127.0.0.1';

function who(body: Buffer): string | undefined {
  return /id="user">([^<]+)</.exec(body.toString())?.[1];
}

describe('the edge alone in front of Django', () => {
  let site: DjangoExample;
  beforeAll(async () => {
    site = await startDjangoExample('edge');
  }, 40000);
  afterAll(async () => {
    await site?.stop();
  });

  it('an anonymous page is rendered once, then served from the cache, byte for byte', async () => {
    const first = await request(site.edgePort, '/', { host: HOST });
    expect(first.status).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(first.headers.vary).toMatch(/Cookie/); // Django's sessions vary on Cookie: the cookie-less variant is stored
    expect(first.headers['set-cookie']).toBeUndefined();
    expect(who(first.body)).toBe('anonymous');
    for (let i = 0; i < 3; i++) {
      const again = await request(site.edgePort, '/', { host: HOST });
      expect(again.headers['x-cache']).toBe('HIT');
      expect(again.body.equals(first.body)).toBe(true);
    }
    expect(site.originHits('/')).toBe(1);
  });

  it('the login form and a form with a CSRF token always reach Django, each visitor with a token of their own', async () => {
    for (const target of ['/accounts/login/', '/contact/']) {
      const tokens = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const res = await request(site.edgePort, target, { host: HOST });
        expect(res.status).toBe(200);
        expect(res.headers['x-cache']).not.toBe('HIT');
        const cookie = (res.headers['set-cookie'] ?? []).find((c) => c.startsWith('csrftoken='));
        expect(cookie).toBeDefined();
        tokens.add(cookie!);
      }
      expect(tokens.size).toBe(3);
      expect(site.originHits(target)).toBe(3);
    }
    // The form posts through the edge (CSRF checked by Django) and is answered by Django.
    const browser = new Browser(site.edgePort);
    const form = await browser.get('/contact/');
    const token = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(form.body.toString())![1]!;
    const sent = await browser.post('/contact/', { csrfmiddlewaretoken: token, message: 'hello' });
    expect(sent.status).toBe(200);
    expect(sent.body.toString()).toContain('Thank you.');
    const forged = await new Browser(site.edgePort).post('/contact/', { csrfmiddlewaretoken: token, message: 'hello' });
    expect(forged.status).toBe(403); // no CSRF cookie: Django refuses, and nothing cached let it through
  });

  it('the admin is never cached, signed in or not', async () => {
    for (let i = 0; i < 2; i++) {
      const login = await request(site.edgePort, '/admin/login/', { host: HOST });
      expect(login.status).toBe(200);
      expect(login.headers['x-cache']).not.toBe('HIT');
    }
    expect(site.originHits('/admin/login/')).toBe(2);
    const admin = new Browser(site.edgePort);
    await admin.login('admin', ADMIN_PASSWORD, '/admin/login/');
    for (let i = 0; i < 2; i++) {
      const index = await admin.get('/admin/');
      expect(index.status).toBe(200);
      expect(index.headers['x-cache']).toBe('BYPASS');
      expect(index.body.toString()).toContain('Site administration');
    }
    expect(site.originHits('/admin/')).toBe(2);
    // An anonymous visitor after the admin gets the redirect to the login form, not the admin's page.
    const anon = await request(site.edgePort, '/admin/', { host: HOST });
    expect(anon.status).toBe(302);
    expect(anon.body.toString()).not.toContain('Site administration');
    expect(site.originHits('/admin/')).toBe(3);
  });

  it("signed-in pages always reach Django and one user's page never reaches another", async () => {
    const alice = new Browser(site.edgePort);
    const bob = new Browser(site.edgePort);
    await alice.login('alice', USER_PASSWORD);
    await bob.login('bob', USER_PASSWORD);
    // Alice is the first to ask for this page: her copy must not be kept for anyone.
    const hers = await alice.get('/posts/2/');
    expect(who(hers.body)).toBe('alice');
    expect(hers.headers['x-cache']).toBe('BYPASS');
    const anon1 = await request(site.edgePort, '/posts/2/', { host: HOST });
    expect(who(anon1.body)).toBe('anonymous');
    expect(anon1.headers['x-cache']).toBe('MISS');
    const anon2 = await request(site.edgePort, '/posts/2/', { host: HOST });
    expect(anon2.headers['x-cache']).toBe('HIT');
    expect(who(anon2.body)).toBe('anonymous');
    // With the anonymous copy cached, signed-in users still get their own page from Django.
    for (const [browser, name] of [[bob, 'bob'], [alice, 'alice'], [bob, 'bob']] as const) {
      const page = await browser.get('/posts/2/');
      expect(page.headers['x-cache']).toBe('BYPASS');
      expect(who(page.body)).toBe(name);
      const account = await browser.get('/account/');
      expect(account.status).toBe(200);
      expect(account.headers['x-cache']).toBe('BYPASS');
      expect(/id="owner">([^<]+)</.exec(account.body.toString())?.[1]).toBe(name);
    }
    expect(site.originHits('/posts/2/')).toBe(5); // alice, the first anonymous visitor, bob, alice, bob
    expect(site.originHits('/account/')).toBe(3);
    // Anonymous /account/ is a redirect to the login form, never someone's account.
    const anonAccount = await request(site.edgePort, '/account/', { host: HOST });
    expect(anonAccount.status).toBe(302);
    expect(anonAccount.headers.location).toBe('/accounts/login/?next=/account/');
  });
});

describe('raw layout: Django writes pages raw into memcached, the edge and nginx serve them', () => {
  let nodes: MemcachedProcess[] = [];
  let direct: CacheStore;
  let site: DjangoExample;
  let nginx: NginxProcess | undefined;
  beforeAll(async () => {
    nodes = await startMemcacheds(2);
    const servers = nodes.map((n) => n.address).join(',');
    direct = createMemcachedStore({ servers: parseServerList('memcached', servers), timeoutMs: 1000 });
    site = await startDjangoExample('raw', { MEMCACHED: servers });
    const port = await freePort();
    const conf = execFileSync(process.execPath, [CLI, 'nginx-conf', '--memcached', servers, '--fallback', `http://127.0.0.1:${site.djangoPort}`, '--listen', `127.0.0.1:${port}`], {
      encoding: 'utf8',
    });
    nginx = await startNginx(port, conf);
  }, 40000);
  afterAll(async () => {
    await nginx?.stop();
    await site?.stop();
    await direct?.close();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('Django stores an anonymous page raw (gzip, flag 2) on the node nginx would pick; the edge serves it as a hit', async () => {
    const rendered = await request(site.djangoPort, '/posts/3/', { host: HOST });
    expect(rendered.status).toBe(200);
    expect(rendered.headers['x-edge-page-cache-stored']).toBe('1');
    const stored = await direct.get(cacheKey('', HOST, '/posts/3/'));
    expect(stored).toBeDefined();
    expect(stored!.flags).toBe(2);
    expect(gunzipSync(stored!.value).equals(rendered.body)).toBe(true);
    for (let i = 0; i < 2; i++) {
      const identity = await request(site.edgePort, '/posts/3/', { host: HOST });
      expect(identity.headers['x-cache']).toBe('HIT');
      expect(identity.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(identity.body.equals(rendered.body)).toBe(true);
      const gzip = await request(site.edgePort, '/posts/3/', { host: HOST, headers: { 'accept-encoding': 'gzip' } });
      expect(gzip.headers['x-cache']).toBe('HIT');
      expect(gzip.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(gzip.body).equals(rendered.body)).toBe(true);
    }
    expect(site.originHits('/posts/3/')).toBe(1); // only the render above
  });

  it('nginx serves the pages Django stored from memcached, and falls back to Django for the others', async () => {
    const viaNginx = await request(nginx!.port, '/posts/3/', { host: HOST, headers: { 'accept-encoding': 'gzip' } });
    expect(viaNginx.status).toBe(200);
    expect(viaNginx.headers['content-encoding']).toBe('gzip');
    expect(viaNginx.headers['content-type']).toBe('text/html; charset=utf-8');
    const page = gunzipSync(viaNginx.body).toString();
    expect(page).toContain('<h1>Post 3</h1>');
    expect(site.originHits('/posts/3/')).toBe(1);
    // A page nobody rendered yet: nginx misses, Django renders and stores it, then nginx serves it.
    const miss = await request(nginx!.port, '/posts/4/?from=nginx', { host: HOST });
    expect(miss.status).toBe(200);
    expect(miss.headers['x-edge-page-cache-stored']).toBe('1');
    for (let i = 0; i < 3; i++) {
      const hit = await request(nginx!.port, '/posts/4/?from=nginx', { host: HOST, headers: { 'accept-encoding': 'gzip' } });
      expect(hit.headers['x-cache']).toBe('HIT'); // nginx-conf's add_header: answered from memcached
      expect(gunzipSync(hit.body).equals(miss.body)).toBe(true);
    }
    expect(site.originHits('/posts/4/?from=nginx')).toBe(1);
    expect(nginx!.errorLog()).not.toMatch(/\[(error|crit|emerg)\]/);
  });

  it('Django never stores a page with a CSRF cookie, the admin, or a signed-in page', async () => {
    const alice = new Browser(site.djangoPort);
    await alice.login('alice', USER_PASSWORD);
    const account = await alice.get('/account/');
    expect(account.status).toBe(200);
    const mine = await alice.get('/posts/5/');
    expect(who(mine.body)).toBe('alice');
    for (const res of [account, mine]) expect(res.headers['x-edge-page-cache-stored']).toBeUndefined();
    for (const target of ['/accounts/login/', '/contact/', '/admin/login/', '/account/', '/posts/5/']) {
      expect(await direct.get(cacheKey('', HOST, target))).toBeUndefined();
    }
    // Through nginx, an anonymous visitor gets the anonymous page, never alice's.
    const anon = await request(nginx!.port, '/posts/5/', { host: HOST });
    expect(who(anon.body)).toBe('anonymous');
    // Through the edge, alice's cookie passes to Django, never to a stored page.
    const viaEdge = await request(site.edgePort, '/posts/5/', { host: HOST, headers: { cookie: `sessionid=${alice.cookie('sessionid')!}` } });
    expect(viaEdge.headers['x-cache']).toBe('BYPASS');
    expect(who(viaEdge.body)).toBe('alice');
  });
});
