/** Whether gantry runs in a user namespace (a rootless build: sandbox/rootless.ts). */
import { readFileSync } from 'node:fs';

let userNamespace: boolean | undefined;

/** This process runs in a user namespace (its uid map is not the initial namespace's identity map). */
export function inUserNamespace(): boolean {
  if (userNamespace === undefined) {
    try {
      userNamespace = !/^\s*0\s+0\s+4294967295\s*$/.test(readFileSync('/proc/self/uid_map', 'utf8'));
    } catch {
      userNamespace = false;
    }
  }
  return userNamespace;
}
