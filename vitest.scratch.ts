import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Vitest global setup: one scratch folder per test run, removed when the run
 * ends. It becomes `TMPDIR` before the test workers start, so every
 * `os.tmpdir()` in a test, in the code under test and in the processes a test
 * spawns lands inside it, and a run leaves nothing behind in the system's
 * temporary folder, even where a failing test skips its own clean-up.
 * Set `DIFFSSL_KEEP_TEST_FILES=1` to keep the folder for a post-mortem.
 */
export default function setup(): () => void {
  const scratch = mkdtempSync(join(tmpdir(), 'diffssl-tests-'));
  process.env.TMPDIR = scratch;
  return () => {
    if (process.env.DIFFSSL_KEEP_TEST_FILES) process.stderr.write(`test files kept in ${scratch}\n`);
    else rmSync(scratch, { recursive: true, force: true });
  };
}
