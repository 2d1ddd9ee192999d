// Interleaved rounds, for a noisy machine: every comparison is a group of targets run back to back in
// every round, in alternating order (so no target always follows another), and is reported as the median
// of its per-round ratios, which cancels the machine's drift better than a ratio of two medians.
import { median } from '../src/cli/bench-result';
import type { BenchResult } from '../src/cli/bench-result';
import type { RatioStat } from '../src/cli/bench-report';

/**
 * Runs each group's targets in turn, `rounds` times, the order reversed every other round; returns
 * runs[group][round][target index in the group].
 */
export async function interleave<T>(
  groups: readonly (readonly T[])[],
  rounds: number,
  turn: (target: T, round: number) => Promise<BenchResult>,
): Promise<BenchResult[][][]> {
  const runs: BenchResult[][][] = groups.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (let g = 0; g < groups.length; g++) {
      const group = groups[g]!;
      const order = group.map((_, i) => i);
      if (round % 2 === 1) order.reverse();
      const results: BenchResult[] = new Array<BenchResult>(group.length);
      for (const i of order) results[i] = await turn(group[i]!, round);
      runs[g]!.push(results);
    }
  }
  return runs;
}

/** The per-round req/s ratios of target a over target b of one group, and their median. */
export function ratioOf(rounds: readonly (readonly BenchResult[])[], a: number, b: number): RatioStat {
  const rs = rounds.map((r) => r[a]!.rps / r[b]!.rps);
  return { median: median(rs), rounds: rs };
}

/** The run of median req/s among a target's runs (its latencies come from that same run). */
export function medianRun(runs: readonly BenchResult[]): BenchResult {
  return [...runs].sort((x, y) => x.rps - y.rps)[Math.floor(runs.length / 2)]!;
}
