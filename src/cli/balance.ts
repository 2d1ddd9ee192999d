// Which worker gets the next client connection: the one with the fewest open connections (nginx's
// least_conn), ties taken in turn. node:cluster's own round robin hands a connection to whichever worker
// acknowledged its last one first, so a burst of keep-alive connections (a load balancer's, a load test's)
// can land 42 to 22 and stay that way for the connections' whole life.

export class LeastConnections<T> {
  private readonly members: T[] = [];
  private readonly open = new Map<T, number>();
  /** Where the scan for the next pick starts, so equal members take turns. */
  private turn = 0;

  /** Starts handing connections to `member` (a worker that is ready). */
  add(member: T): void {
    if (this.open.has(member)) return;
    this.members.push(member);
    this.open.set(member, 0);
  }

  /** Stops handing connections to `member` (exited, or draining); its count goes with it. */
  remove(member: T): void {
    if (!this.open.delete(member)) return;
    this.members.splice(this.members.indexOf(member), 1);
  }

  /** The member with the fewest open connections, counted as holding one more; undefined when empty. */
  pick(): T | undefined {
    const n = this.members.length;
    if (n === 0) return undefined;
    const start = this.turn % n;
    let best = this.members[start]!;
    let fewest = this.open.get(best)!;
    for (let i = 1; i < n && fewest > 0; i++) {
      const m = this.members[(start + i) % n]!;
      const c = this.open.get(m)!;
      if (c < fewest) {
        best = m;
        fewest = c;
      }
    }
    this.open.set(best, fewest + 1);
    this.turn = start + 1;
    return best;
  }

  /** One of `member`'s connections closed (or was never delivered). */
  release(member: T): void {
    const c = this.open.get(member);
    if (c !== undefined && c > 0) this.open.set(member, c - 1);
  }

  /** Open connections per member, in the order they were added. */
  counts(): number[] {
    return this.members.map((m) => this.open.get(m)!);
  }
}
