// Compiled by `npm run typecheck` twice (never run): against @types/express 5 (tsconfig.json) and 4
// (test/types/tsconfig.express4.json). The middleware mounts the ways Express apps mount middleware.
import express from 'express';
import type { RequestHandler } from 'express';
import { cacheTags, pageCache } from '../../src';

const app = express();
const cache = pageCache({ ttl: 60 });
app.use(cache);
app.use('/blog', pageCache({ ttl: 300, keyPrefix: 'blog:' }));
app.get('/tagged', cache, (_req, res) => {
  cacheTags(res, 'home');
  res.send('ok');
});
const asHandler: RequestHandler = cache;
const router = express.Router();
router.use(asHandler);
app.use(router);
void cache.purgeUrls(['http://example.com/']);
void cache.close();
