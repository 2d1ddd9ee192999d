// Which worker gets the next client connection: the one with the fewest open connections (nginx's
// least_conn), ties taken in turn, among the workers keeping up. node:cluster's own round robin hands a
// connection to whichever worker acknowledged its last one first, so a burst of keep-alive connections (a
// load balancer's, a load test's) can land 42 to 22 and stay that way for the connections' whole life.
// A worker that has not acknowledged maxPending handoffs (stalled in a long task, out of file descriptors)
// gets no more until it does, so a stuck worker strands at most that many connections.

class Member {
  /** Connections handed to it and not yet closed (handoffs in flight included). */
  open = 0;
  /** Handoffs it has not acknowledged yet. */
  pending = 0;
  /** Left a handoff unanswered past the timeout: picked only when no other member can take one. */
  suspect = false;
}

export class LeastConnections<T> {
  private readonly members: T[] = [];
  private readonly state = new Map<T, Member>();
  /** Where the scan for the next pick starts, so equal members take turns. */
  private turn = 0;

  constructor(private readonly maxPending = 2) {}

  /** Starts handing connections to `member` (a worker that is ready). */
  add(member: T): void {
    if (this.state.has(member)) return;
    this.members.push(member);
    this.state.set(member, new Member());
  }

  /** Stops handing connections to `member` (exited, or draining); its counts go with it. */
  remove(member: T): void {
    if (!this.state.delete(member)) return;
    this.members.splice(this.members.indexOf(member), 1);
  }

  /** Whether some member can take a connection now (pick() would return one). */
  available(): boolean {
    for (const s of this.state.values()) if (s.pending < this.maxPending) return true;
    return false;
  }

  /**
   * The member with the fewest open connections among those with fewer than maxPending handoffs in
   * flight, counted as holding one more (open and pending); undefined when none can take one now.
   */
  pick(): T | undefined {
    const n = this.members.length;
    let best: T | undefined;
    let bestState: Member | undefined;
    for (let i = 0; i < n; i++) {
      const m = this.members[(this.turn + i) % n]!;
      const s = this.state.get(m)!;
      if (s.pending >= this.maxPending) continue;
      if (
        bestState === undefined ||
        (bestState.suspect && !s.suspect) ||
        (bestState.suspect === s.suspect && s.open < bestState.open)
      ) {
        best = m;
        bestState = s;
      }
    }
    if (bestState === undefined) return undefined;
    bestState.open++;
    bestState.pending++;
    this.turn = (this.turn + 1) % Math.max(1, n);
    return best;
  }

  /** `member` answered a handoff: it took the connection, or refused it (not counted as open). */
  settled(member: T, took: boolean): void {
    const s = this.state.get(member);
    if (s === undefined) return;
    if (s.pending > 0) s.pending--;
    if (!took && s.open > 0) s.open--;
    s.suspect = false;
  }

  /**
   * A handoff to `member` went unanswered past the timeout (given up on): the slot is freed, and the member
   * is picked only when no other can take a connection, until it answers a handoff again.
   */
  expired(member: T): void {
    const s = this.state.get(member);
    if (s === undefined) return;
    if (s.pending > 0) s.pending--;
    if (s.open > 0) s.open--;
    s.suspect = true;
  }

  /** `member` took a connection whose handoff had already been given up on (a late answer). */
  opened(member: T): void {
    const s = this.state.get(member);
    if (s === undefined) return;
    s.open++;
    s.suspect = false;
  }

  /** One of `member`'s connections closed. */
  release(member: T): void {
    const s = this.state.get(member);
    if (s !== undefined && s.open > 0) s.open--;
  }

  /** Open connections per member, in the order they were added. */
  counts(): number[] {
    return this.members.map((m) => this.state.get(m)!.open);
  }
}
