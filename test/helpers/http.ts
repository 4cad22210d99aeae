import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { freePort } from './registry.js';

/** An HTTP server on a free loopback port (`address`, default 127.0.0.1); `host` is address:port. */
export async function serveLoopback(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  address = '127.0.0.1',
): Promise<{ host: string; server: Server }> {
  const port = await freePort();
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(port, address, r));
  return { host: `${address}:${port}`, server };
}
