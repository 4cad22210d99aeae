import type { CheckFile } from './types.js';

const file = 'dockerfile_runsecurity_test.go';

/**
 * BuildKit runs these tests twice: with security.insecure granted by the daemon, and denied,
 * where asking for it (the client always does) must fail with "entitlement security.insecure is
 * not allowed". gantry grants no security.insecure (docs/differences.md), so it is checked as
 * the denying daemon; its refusal is worded its own way, naming the entitlement.
 */
const denied = /entitlement security\.insecure is not allowed|needs the security\.insecure entitlement|--allow security\.insecure: /;

const insecure = `
FROM busybox
RUN --security=insecure [ "$(printf '%x' $(( $(cat /proc/self/status | grep CapBnd | cut -f 2 | sed s#^#0x#) & 0x3fffffffff)))" == "3fffffffff" ]
RUN [ "$(cat /proc/self/status | grep CapBnd)" == "CapBnd:	00000000a80425fb" ]
`;

const defaultCaps = `
FROM busybox
RUN [ "$(cat /proc/self/status | grep CapBnd)" == "CapBnd:	00000000a80425fb" ]
`;

export default {
  file,
  checks: [
    {
      name: 'testRunSecurityInsecure',
      file,
      dockerfile: insecure,
      args: ['--allow', 'security.insecure'],
      error: denied,
    },
    {
      name: 'testRunSecurityInsecure',
      file,
      // The Dockerfile alone, without asking for the entitlement: refused all the same.
      dockerfile: insecure,
      error: denied,
    },
    {
      name: 'testRunSecuritySandbox',
      file,
      dockerfile: '\nFROM busybox\nRUN --security=sandbox [ "$(cat /proc/self/status | grep CapBnd)" == "CapBnd:	00000000a80425fb" ]\n',
    },
    {
      name: 'testRunSecurityDefault',
      file,
      dockerfile: defaultCaps,
      args: ['--allow', 'security.insecure'],
      error: denied,
    },
    {
      name: 'testRunSecurityDefault',
      file,
      // Without the entitlement asked for (BuildKit's granted case, for a daemon that has it): Docker's default capabilities.
      dockerfile: defaultCaps,
    },
  ],
  notPorted: [
    {
      name: 'testInsecureDevicesWhitelist',
      file,
      reason: "needs the internet (apk add fuse e2fsprogs, the tonistiigi/hellofs image from Docker Hub) and RUN --security=insecure, which gantry refuses (it grants no security.insecure)",
    },
  ],
} satisfies CheckFile;
