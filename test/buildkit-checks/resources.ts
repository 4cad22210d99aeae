import type { CheckFile } from './types.js';

const file = 'dockerfile_resources_test.go';

// BuildKit's frontend attributes shm-size and ulimit are docker build's --shm-size and
// --ulimit, which gantry takes too.

export default {
  file,
  checks: [
    {
      name: 'testShmSize',
      file,
      dockerfile: '\nFROM busybox AS base\nRUN mount | grep /dev/shm > /shmsize\nFROM scratch\nCOPY --from=base /shmsize /\n',
      args: ['--shm-size', '134217728'],
      files: { shmsize: /size=131072k/ },
    },
    {
      name: 'testUlimit',
      file,
      dockerfile: '\nFROM busybox AS base\nRUN ulimit -n > /ulimit\nFROM scratch\nCOPY --from=base /ulimit /\n',
      args: ['--ulimit', 'nofile=1062:1062'],
      files: { ulimit: /^\s*1062\s*$/ },
    },
  ],
  notPorted: [
    {
      name: 'testCgroupParent',
      file,
      reason: 'needs cgroup v2 (BuildKit skips it without; this host has v1) and --cgroup-parent, which gantry lacks',
    },
    {
      name: 'testLinuxResources',
      file,
      reason: "needs cgroup v2 (BuildKit skips it without; this host has v1: it reads /sys/fs/cgroup/memory.max) and a memory limit for RUN (BuildKit's memory attribute), which gantry lacks",
    },
  ],
} satisfies CheckFile;
