import { replaceWorkers, restartOnlyChanges } from './reload';
import { resolveEdgeOptions } from '../edge/options';

/** Records the order of starts and retirements; start fails for the workers named in `failing`. */
function recorder(failing: readonly string[] = []): { log: string[]; swap: Parameters<typeof replaceWorkers<string>>[2] } {
  const log: string[] = [];
  let n = 0;
  return {
    log,
    swap: {
      start() {
        const name = `new${++n}`;
        log.push(`start ${name}`);
        return failing.includes(name) ? Promise.reject(new Error(`${name} did not start`)) : Promise.resolve(name);
      },
      retire(w) {
        log.push(`retire ${w}`);
        return Promise.resolve();
      },
    },
  };
}

describe('replaceWorkers', () => {
  it('starts a new worker before each old one is drained, one at a time', async () => {
    const { log, swap } = recorder();
    expect(await replaceWorkers(['old1', 'old2'], 2, swap)).toEqual({ replaced: 2 });
    expect(log).toEqual(['start new1', 'retire old1', 'start new2', 'retire old2']);
  });

  it('follows a changed worker count: extra old ones drained, extra new ones started', async () => {
    const fewer = recorder();
    await replaceWorkers(['old1', 'old2', 'old3'], 1, fewer.swap);
    expect(fewer.log).toEqual(['start new1', 'retire old1', 'retire old2', 'retire old3']);
    const more = recorder();
    await replaceWorkers(['old1'], 3, more.swap);
    expect(more.log).toEqual(['start new1', 'retire old1', 'start new2', 'start new3']);
  });

  it('stops at a new worker that does not start: the old ones not yet drained keep serving', async () => {
    const { log, swap } = recorder(['new2']);
    expect(await replaceWorkers(['old1', 'old2'], 2, swap)).toEqual({ replaced: 1, error: 'new2 did not start' });
    expect(log).toEqual(['start new1', 'retire old1', 'start new2']);
  });
});

describe('restartOnlyChanges', () => {
  it('names the listening options a reload cannot change, and nothing else', () => {
    const a = resolveEdgeOptions({ origin: 'http://127.0.0.1:3000', port: 8080, ttl: 10 });
    const b = resolveEdgeOptions({ origin: 'http://127.0.0.1:3000', port: 8081, ttl: 20, adminPort: 9091 });
    expect(restartOnlyChanges(a, b)).toEqual(['port', 'adminPort']);
    expect(restartOnlyChanges(a, a)).toEqual([]);
  });
});
