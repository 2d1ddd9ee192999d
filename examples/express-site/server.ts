// Runs the example site: `npm run build && node dist/examples/express-site/server.js` (PORT, default 3000;
// EDGE_MEMCACHED=127.0.0.1:11211 to use memcached). Try `curl -i localhost:3000/` twice.
import { createExampleApp } from './app';

const port = Number(process.env.PORT ?? 3000);
const server = createExampleApp().listen(port, '127.0.0.1', () => {
  process.stdout.write(`example site on http://127.0.0.1:${port}/ (pages: /, /posts/1, /search?q=x, /login, /slow)\n`);
});
process.on('SIGTERM', () => server.close());
process.on('SIGINT', () => server.close());
