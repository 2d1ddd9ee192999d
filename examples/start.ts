// `npm start`: the bundled example site on a loopback port and the edge in front of it on 127.0.0.1:8080 (or
// EDGE_HOST / EDGE_PORT), on the embedded in-process store, admin page on 127.0.0.1:9091. Extra flags pass to serve.
import type { AddressInfo } from 'node:net';
import { main } from '../src/cli/main';
import { createExampleApp } from './express-site/app';

const site = createExampleApp().listen(0, '127.0.0.1', function started() {
  const port = (site.address() as AddressInfo).port;
  const args = ['serve', '--origin', `http://127.0.0.1:${port}`, ...process.argv.slice(2)];
  if (process.env.EDGE_ADMIN_PORT === undefined && !args.includes('--admin-port')) args.push('--admin-port', '9091');
  // A demo on this machine: loopback unless told otherwise (the edge warns when it serves any Host to a network).
  if (process.env.EDGE_HOST === undefined && !args.includes('--host')) args.push('--host', '127.0.0.1');
  main(args, process.env).then(
    (code) => {
      if (code >= 0) process.exit(code);
      const edgePort = process.env.EDGE_PORT ?? '8080';
      process.stdout.write(
        `\nedge-page-cache: edge on http://localhost:${edgePort}/ in front of the example site (http://127.0.0.1:${port}/)\n` +
          `  curl -i localhost:${edgePort}/   (twice: the second says X-Cache: HIT)\n` +
          `  stats page: http://127.0.0.1:9091/   metrics: http://127.0.0.1:9091/metrics\n`,
      );
    },
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
});
