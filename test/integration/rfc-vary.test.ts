// RFC 9111 §4.1: a response that varies on request headers is stored once per variant and each request
// gets only the variant its own header values select (after normalising them). The edge keeps a variant
// index at the page's key (src/core/variants.ts) and each variant under a secondary key; `Vary: *` is never
// stored; a purge of the URL makes every variant unreachable; the raw (nginx) format stores no variant.
import express from 'express';
import { Registry } from 'prom-client';
import { pageCache } from '../../middleware';
import { createEdgeServer } from '../../src/edge/server';
import { listen } from '../helpers/express-app';
import { request } from '../helpers/origin';
import { scriptedSuite, sleep, startScriptedEdge } from '../helpers/scripted-origin';
import type { Scripted } from '../helpers/scripted-origin';
import type http from 'node:http';

const s = scriptedSuite();

let seq = 0;
/** A page in the language the request asks for (its first Accept-Language tag), varying on Accept-Language. */
function languagePage(extraVary = ''): string {
  const path = `/vary-${++seq}`;
  s.o.script(path, (req: http.IncomingMessage): Scripted => {
    const lang = String(req.headers['accept-language'] ?? 'none').split(',')[0]!.trim().toLowerCase();
    return { headers: { 'content-type': 'text/plain', 'cache-control': 'max-age=600', vary: `Accept-Language${extraVary}` }, body: `page in ${lang}` };
  });
  return path;
}

describe('variants (RFC 9111 §4.1)', () => {
  /** GETs until a HIT (the store is written off the client's path), at most 20 times. */
  async function untilHit(path: string, headers: Record<string, string>): Promise<void> {
    for (let i = 0; i < 20 && (await s.e.get(path, headers)).headers['x-cache'] !== 'HIT'; i++);
  }

  it('each language is stored as its own variant and served only to requests that select it', async () => {
    const path = languagePage();
    const fr = await s.e.get(path, { 'accept-language': 'fr' });
    expect(fr.body.toString()).toBe('page in fr');
    const de = await s.e.get(path, { 'accept-language': 'de' });
    expect(de.body.toString()).toBe('page in de');
    expect(de.headers['x-cache']).not.toBe('HIT');
    const fr2 = await s.e.get(path, { 'accept-language': 'fr' });
    expect(fr2.headers['x-cache']).toBe('HIT');
    expect(fr2.body.toString()).toBe('page in fr');
    const de2 = await s.e.get(path, { 'accept-language': 'de' });
    expect(de2.headers['x-cache']).toBe('HIT');
    expect(de2.body.toString()).toBe('page in de');
    expect(s.o.seen(path)).toHaveLength(2);
  });

  it('values are normalised where the syntax allows (case, whitespace): the same variant', async () => {
    const path = languagePage();
    await untilHit(path, { 'accept-language': 'en-US,en;q=0.9' });
    const same = await s.e.get(path, { 'accept-language': 'EN-us , en ; q=0.9' });
    expect(same.headers['x-cache']).toBe('HIT');
    expect(same.body.toString()).toBe('page in en-us');
  });

  it('a request without the header is a variant of its own', async () => {
    const path = languagePage();
    await s.e.get(path, { 'accept-language': 'fr' });
    const none = await s.e.get(path);
    expect(none.body.toString()).toBe('page in none');
    const none2 = await s.e.get(path);
    expect(none2.headers['x-cache']).toBe('HIT');
    expect(none2.body.toString()).toBe('page in none');
  });

  it('several Vary names: a variant per combination', async () => {
    const path = `/vary-multi-${++seq}`;
    s.o.script(path, (req: http.IncomingMessage): Scripted => ({
      headers: { 'content-type': 'text/plain', 'cache-control': 'max-age=600', vary: 'Accept-Language, X-Theme' },
      body: `${String(req.headers['accept-language'])}/${String(req.headers['x-theme'])}`,
    }));
    await s.e.get(path, { 'accept-language': 'fr', 'x-theme': 'dark' });
    await s.e.get(path, { 'accept-language': 'fr', 'x-theme': 'light' });
    const a = await s.e.get(path, { 'accept-language': 'fr', 'x-theme': 'dark' });
    const b = await s.e.get(path, { 'accept-language': 'fr', 'x-theme': 'light' });
    expect([a.headers['x-cache'], a.body.toString()]).toEqual(['HIT', 'fr/dark']);
    expect([b.headers['x-cache'], b.body.toString()]).toEqual(['HIT', 'fr/light']);
    expect(s.o.seen(path)).toHaveLength(2);
  });

  it('Vary: * is never stored (§4.1: it always fails to match)', async () => {
    const path = `/vary-star-${++seq}`;
    s.o.script(path, { headers: { 'content-type': 'text/plain', 'cache-control': 'max-age=600', vary: '*' }, body: 'star' });
    await s.e.get(path);
    const again = await s.e.get(path);
    expect(again.headers['x-cache']).not.toBe('HIT');
    expect(s.o.seen(path)).toHaveLength(2);
  });

  it('a purge of the URL makes every variant unreachable', async () => {
    const path = languagePage();
    await untilHit(path, { 'accept-language': 'fr' });
    await untilHit(path, { 'accept-language': 'de' });
    await sleep(200); // writes in flight settle (see below)
    const before = s.o.seen(path).length;
    await s.e.edge.purge([`http://example.com${path}`], []);
    const fr = await s.e.get(path, { 'accept-language': 'fr' });
    const de = await s.e.get(path, { 'accept-language': 'de' });
    expect(fr.headers['x-cache']).not.toBe('HIT');
    expect(de.headers['x-cache']).not.toBe('HIT');
    expect(s.o.seen(path)).toHaveLength(before + 2);
  });

  it('a soft purge of the URL marks every variant stale: served at once while it refreshes', async () => {
    const path = languagePage();
    await untilHit(path, { 'accept-language': 'fr' });
    await untilHit(path, { 'accept-language': 'de' });
    // A second fill's write still in flight would land after the purge (as for any page): let writes settle.
    await sleep(200);
    await s.e.edge.purge([`http://example.com${path}`], [], { soft: true });
    const fr = await s.e.get(path, { 'accept-language': 'fr' });
    expect(fr.headers['x-cache']).toBe('UPDATING');
    expect(fr.body.toString()).toBe('page in fr');
    const de = await s.e.get(path, { 'accept-language': 'de' });
    expect(de.headers['x-cache']).toBe('UPDATING');
    expect(de.body.toString()).toBe('page in de');
  });

  it('concurrent misses for different variants: every client gets its own language', async () => {
    const path = `/vary-herd-${++seq}`;
    s.o.script(path, (req: http.IncomingMessage): Scripted => ({
      headers: { 'content-type': 'text/plain', 'cache-control': 'max-age=600', vary: 'Accept-Language' },
      body: `page in ${String(req.headers['accept-language'])}`,
    }));
    const langs = ['fr', 'de', 'it', 'fr', 'de', 'it', 'es', 'fr'];
    const replies = await Promise.all(langs.map((l) => s.e.get(path, { 'accept-language': l })));
    replies.forEach((r, i) => expect(r.body.toString()).toBe(`page in ${langs[i]}`));
    // And afterwards each is a hit with its own body.
    for (const l of ['fr', 'de', 'it', 'es']) {
      let r = await s.e.get(path, { 'accept-language': l });
      if (r.headers['x-cache'] !== 'HIT') r = await s.e.get(path, { 'accept-language': l });
      expect(r.headers['x-cache']).toBe('HIT');
      expect(r.body.toString()).toBe(`page in ${l}`);
    }
  });

  it('the raw (nginx) format stores no variant: nginx would serve it to every request', async () => {
    const raw = await startScriptedEdge(s.o, { memcached: s.mc.address, format: 'raw', defaultContentType: 'text/plain' });
    try {
      const path = languagePage();
      await raw.get(path, { 'accept-language': 'fr' });
      const again = await raw.get(path, { 'accept-language': 'fr' });
      expect(again.headers['x-cache']).not.toBe('HIT');
    } finally {
      await raw.edge.close();
    }
  });

  it('a middleware on the same memcached never serves the variant index as a page', async () => {
    const prefix = `vary-shared-${++seq}:`;
    const app = express();
    const mw = pageCache({ ttl: 60, memcached: s.mc.address, keyPrefix: prefix, registry: new Registry() });
    app.use(mw);
    app.get('/shared', (req, res) => {
      res.set({ vary: 'Accept-Language', 'cache-control': 'max-age=600' });
      res.type('text/plain').send(`page in ${String(req.headers['accept-language'])}`);
    });
    const running = await listen(app);
    const edge = createEdgeServer(
      { origin: `http://127.0.0.1:${running.port}`, port: 0, host: '127.0.0.1', memcached: s.mc.address, keyPrefix: prefix },
      { registry: new Registry() },
    );
    const port = await edge.listen();
    try {
      // The edge stores the French variant and the index at the page's key.
      let viaEdge = await request(port, '/shared', { headers: { 'accept-language': 'fr' }, host: 'site.test' });
      for (let i = 0; i < 20 && viaEdge.headers['x-cache'] !== 'HIT'; i++) {
        viaEdge = await request(port, '/shared', { headers: { 'accept-language': 'fr' }, host: 'site.test' });
      }
      expect(viaEdge.headers['x-cache']).toBe('HIT');
      // The app itself, asked for German: the index is not a page; the app renders.
      const direct = await request(running.port, '/shared', { headers: { 'accept-language': 'de' }, host: 'site.test' });
      expect(direct.body.toString()).toBe('page in de');
      expect(direct.headers['x-cache']).toBe('BYPASS');
    } finally {
      await edge.close();
      await running.close();
      await mw.close();
    }
  });
});
