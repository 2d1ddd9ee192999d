// The example site: an Express app with pageCache() in front of a few pages. The edge's `npm start` runs it
// in process as its origin. Memcached from EDGE_MEMCACHED / MEMCACHED when set, else the in-process store.
import express from 'express';
import type { Express } from 'express';
import { cacheTags, pageCache } from '../../middleware';
import type { MiddlewareOptions } from '../../middleware';
import { renderPage } from './views';

export function createExampleApp(options: MiddlewareOptions = {}): Express {
  const memcached = process.env.EDGE_MEMCACHED ?? process.env.MEMCACHED;
  const app = express();
  app.disable('x-powered-by');
  app.use(pageCache({ ttl: 60, ...(memcached ? { memcached } : {}), ...options }));

  app.get('/', (_req, res) => {
    cacheTags(res, 'home');
    res.send(renderPage('Home', ['<a href="/posts/1">First post</a>', '<a href="/search?q=cache">Search</a>']));
  });
  app.get('/posts/:id', (req, res) => {
    const id = Number(req.params.id);
    if (!Number.isSafeInteger(id) || id < 1) return void res.status(404).send(renderPage('Not found', []));
    cacheTags(res, 'posts', `post-${id}`);
    res.set('cache-control', 'public, s-maxage=300').send(renderPage(`Post ${id}`, [`Body of post ${id}.`]));
  });
  app.get('/search', (req, res) => {
    const q = typeof req.query.q === 'string' ? req.query.q : '';
    res.send(renderPage(`Search: ${q}`, [`Results for ${q} (cached per query string).`]));
  });
  app.get('/login', (_req, res) => {
    // Set-Cookie: never stored; and later requests with connect.sid bypass the cache.
    res.cookie('connect.sid', 'demo-session', { httpOnly: true }).send(renderPage('Logged in', ['Hello!']));
  });
  app.get('/slow', (_req, res) => {
    setTimeout(() => res.send(renderPage('Slow page', ['Took 1 s to render; cached, it takes none.'])), 1000);
  });
  return app;
}
