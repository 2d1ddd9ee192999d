import { createHashRing } from '../core/ring';
import { healthCode, healthStatus, probeKeys } from './health';

const origin = (up: boolean) => ({ url: 'http://o', up, failures: 0, requests: 0, errors: 0 });
const node = (up: boolean) => ({ name: 'n', up, failures: 0, retryAt: 0 });

describe('healthStatus', () => {
  it.each([
    ['ok', false, [true, true], [true], 200],
    ['degraded', false, [true, false], [true], 200],
    ['degraded', false, [true], [true, false], 200],
    ['down', false, [false, false], [true], 503],
    ['down', false, [false], [false], 503],
    ['draining', true, [true], [true], 503],
    ['draining', true, [false], [false], 503],
  ] as const)('%s (draining %s, origins up %j, nodes up %j) -> %i', (status, draining, origins, nodes, code) => {
    const s = healthStatus({ draining, origins: origins.map(origin), memcached: nodes.map(node) });
    expect(s).toBe(status);
    expect(healthCode(s)).toBe(code);
  });
});

describe('probeKeys', () => {
  it('finds one key per node, each placed on its node by the ring', () => {
    const nodes = ['10.0.0.1:11211', '10.0.0.2:11211', '10.0.0.3:11211'].map((name) => ({ name, weight: 1 }));
    const keys = probeKeys(nodes);
    const ring = createHashRing(nodes);
    expect(keys.map((k) => ring.nodeFor(k))).toEqual([0, 1, 2]);
  });
});
