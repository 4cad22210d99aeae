/**
 * The trees a build makes in the store (its rootfs and overlay directories in `tmp/`, set aside
 * in `trash/`, the sandbox's work directories) can still have a mount below them, or a process
 * whose root is inside them, when the process that made them was killed. Removing such a tree
 * through its mount would remove what the mount shows (a step snapshot, a base chain).
 *
 * The store knows neither mounts nor processes. The module that makes those trees
 * (builder/workspace.ts) gives it the way to release one when it loads; a store used without it
 * leaves those trees for the next command that has it (every gantry command and the API load it).
 */
export type TreeReleaser = (dir: string) => Promise<void>;

let releaser: TreeReleaser | undefined;

export function setTreeReleaser(r: TreeReleaser | undefined): void {
  releaser = r;
}

/** The way to make a build's tree safe to remove, when one was given. */
export function treeReleaser(): TreeReleaser | undefined {
  return releaser;
}
