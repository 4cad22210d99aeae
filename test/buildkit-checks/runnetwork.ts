import { createServer, type AddressInfo } from 'node:net';
import { expect } from 'vitest';
import type { CheckFile, Harness } from './types.js';

const file = 'dockerfile_runnetwork_test.go';

/** A TCP server on the host's loopback that answers every connection with "foo" (BuildKit's echoserver), for `run(port)`. */
async function withEchoServer(run: (port: number) => Promise<void>): Promise<void> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.end('foo\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await run((server.address() as AddressInfo).port);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Builds `dockerfile(port)` with network.host granted (it must succeed) and without (it must fail for want of the entitlement). */
function hostChecks(dockerfile: (port: number) => string, extra: string[]): { granted: (h: Harness) => Promise<void>; denied: (h: Harness) => Promise<void> } {
  return {
    granted: (h) =>
      withEchoServer(async (port) => {
        const r = await h.build({ dockerfile: dockerfile(port), args: [...extra, '--allow', 'network.host'] });
        await h.expectImage(r, {});
      }),
    denied: (h) =>
      withEchoServer(async (port) => {
        const r = await h.build({ dockerfile: dockerfile(port), args: extra });
        expect(r.exitCode, r.output).not.toBe(0);
        // BuildKit: "entitlement network.host is not allowed"; gantry words it its own way.
        expect(r.output).toMatch(/entitlement network\.host is not allowed|needs the network\.host entitlement/);
      }),
  };
}

// The tests run as root, so the parts BuildKit leaves out for rootless sandboxes are in.
const host = hostChecks((port) => `\nFROM busybox\nRUN --network=host nc 127.0.0.1 ${port} | grep foo\nRUN ! nc 127.0.0.1 ${port} | grep foo`, []);
// BuildKit's frontend attribute force-network-mode=host is gantry's --network host.
const global = hostChecks((port) => `\nFROM busybox\nRUN nc 127.0.0.1 ${port} | grep foo\nRUN --network=none ! nc -z 127.0.0.1 ${port}\n`, ['--network', 'host']);

export default {
  file,
  checks: [
    {
      name: 'testRunDefaultNetwork',
      file,
      dockerfile: '\nFROM busybox\nRUN ip link show eth0\n',
    },
    {
      name: 'testRunNoNetwork',
      file,
      dockerfile: '\nFROM busybox\nRUN --network=none ! ip link show eth0\nRUN ip link show eth0',
    },
    { name: 'testRunHostNetwork', file, dockerfile: '', custom: host.granted },
    { name: 'testRunHostNetwork', file, dockerfile: '', custom: host.denied },
    { name: 'testRunGlobalNetwork', file, dockerfile: '', custom: global.granted },
    { name: 'testRunGlobalNetwork', file, dockerfile: '', custom: global.denied },
  ],
  notPorted: [],
} satisfies CheckFile;
