// Binding a server (the edge's http.Server, or the cluster primary's net listener): resolves with the
// bound port (port 0: a free one), rejects with the bind error (EADDRINUSE, EADDRNOTAVAIL) so a bad --port
// or --host fails at start.
import type { AddressInfo, Server } from 'node:net';

export function listenOn(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
