// The two front doors around one renderer, for suites that run each rule through both: the edge in front
// of an origin that renders, and pageCache() inside an Express app that renders. The renderer counts what
// it rendered (by whatever key it likes), so a test can tell a cache hit from a render.
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { Express } from 'express';
import { Registry } from 'prom-client';
import { pageCache } from '../../middleware';
import type { MiddlewareOptions } from '../../middleware/options';
import type { EdgeOptions } from '../../src/edge/options';
import { createEdgeServer } from '../../src/edge/server';
import { listen, uniquePrefix } from './express-app';
import { startOrigin } from './origin';

export type Render = (req: IncomingMessage, res: ServerResponse, counts: Map<string, number>) => void;

export interface Door {
  readonly port: number;
  /** Purges by tag at this door (the edge's purge, or the middleware's purgeTags); resolves with how many pages. */
  purgeTags(tags: readonly string[]): Promise<number>;
  /** What the renderer counted under `key`. */
  renders(key: string): number;
  close(): Promise<void>;
}

/** The edge (embedded store, its own key prefix, and `extra` options) in front of an origin running `render`. */
export async function edgeDoor(render: Render, name: string, extra: EdgeOptions = {}): Promise<Door> {
  const counts = new Map<string, number>();
  const origin = await startOrigin((req, res) => render(req, res, counts));
  const edge = createEdgeServer({ origin: origin.url, port: 0, host: '127.0.0.1', keyPrefix: uniquePrefix(`${name}-edge`), ...extra }, { registry: new Registry() });
  const port = await edge.listen();
  return {
    port,
    purgeTags: async (tags) => (await edge.purge([], tags)).length,
    renders: (k) => counts.get(k) ?? 0,
    close: async () => {
      await edge.close();
      await origin.close();
    },
  };
}

/** pageCache({ ttl: 60, ...extra }) in an Express app whose last handler is `render`; `configure` sees the app first. */
export async function middlewareDoor(render: Render, name: string, configure?: (app: Express) => void, extra: MiddlewareOptions = {}): Promise<Door> {
  const counts = new Map<string, number>();
  const mw = pageCache({ ttl: 60, keyPrefix: uniquePrefix(`${name}-mw`), registry: new Registry(), ...extra });
  const app = express();
  configure?.(app);
  app.use(mw);
  app.use((req, res) => render(req, res, counts));
  const running = await listen(app);
  return {
    port: running.port,
    purgeTags: (tags) => mw.purgeTags(tags),
    renders: (k) => counts.get(k) ?? 0,
    close: async () => {
      await running.close();
      await mw.close();
    },
  };
}
