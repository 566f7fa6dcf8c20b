// Temporary directories that hold compiled models (often several GB): removed
// when their owner releases them, and otherwise when the process exits.
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<string>();
let hooked = false;

function removeAllNow(): void {
  for (const directory of live) {
    try {
      rmSync(directory, { recursive: true, force: true });
    } catch {
      // Best effort at exit: nothing else can be done.
    }
  }
  live.clear();
}

/** Removes what is left, then lets the signal end the process as it would have without this listener. */
function onSignal(signal: NodeJS.Signals): void {
  removeAllNow();
  if (process.listenerCount(signal) === 0) setImmediate(() => process.kill(process.pid, signal));
}

/**
 * Registers a path to remove at process exit (and on SIGINT/SIGTERM when
 * nothing else handles them). The hooks are installed on first use, never at
 * import.
 */
export function trackTemporary(path: string): void {
  live.add(path);
  if (hooked) return;
  hooked = true;
  process.on('exit', removeAllNow);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    // Only when nobody else handles the signal: adding a listener would otherwise change how the application shuts down.
    if (process.listenerCount(signal) === 0) process.once(signal, onSignal);
  }
}

/** Creates a directory under the OS temporary directory, removed at process exit unless removed before. */
export async function createTemporaryDirectory(prefix: string): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), prefix));
  trackTemporary(directory);
  return directory;
}

/** Removes a tracked path now (no error when it is already gone). */
export async function removeTemporary(path: string): Promise<void> {
  live.delete(path);
  await rm(path, { recursive: true, force: true });
}
