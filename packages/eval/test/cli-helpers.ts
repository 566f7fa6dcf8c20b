import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { EMBEDDED_DATA, EMBEDDED_MODEL } from '@diffssl/testing';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const run = promisify(execFile);

/** The node arguments that run the CLI from source. */
export const cliArguments = (args: readonly string[]) => ['--conditions=@diffssl/source', '--import', 'tsx', CLI, ...args];

/** Runs `diffssl` with arguments; resolves with the exit code and output (never rejects). */
export function diffssl(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, cliArguments(args), { timeout: 300_000, env: { ...process.env, ...env }, maxBuffer: 64 << 20 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code ?? 1, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** Starts `diffssl` as a child process (to kill it), with extra environment variables. */
export function startDiffssl(args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, cliArguments(args), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
}

/** The embedded model and data as CLI options. */
export const EMBEDDED = [
  '--checkpoint',
  EMBEDDED_MODEL.checkpoint,
  '--config',
  EMBEDDED_MODEL.flagsFile,
  '--data',
  EMBEDDED_DATA,
  '--class-names',
  'fashion-mnist',
];
