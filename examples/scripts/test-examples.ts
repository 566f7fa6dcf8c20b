/**
 * `pnpm test:examples`: runs every example script with the command line that
 * docs/examples.md documents (`pnpm --filter @diffssl/examples run <name> --
 * <options>`), executes every notebook
 * headlessly (`jupyter nbconvert --to notebook --execute`), and fails on any
 * error: a script's non-zero exit, a notebook cell's error (tslab reports type
 * errors as errors too).
 *
 *   pnpm test:examples                      # everything (the root script builds the packages first)
 *   pnpm test:examples -- linear 03         # only runs whose name contains one of the words
 *   pnpm test:examples -- --scripts-only    # or --notebooks-only
 *
 * Notebooks need Jupyter and nbconvert (Debian: `apt-get install jupyter-nbconvert
 * python3-notebook python3-ipykernel`) and the built packages (`pnpm build`);
 * the tslab kernel is registered into a temporary prefix for the run, so
 * nothing is installed for the user. The executed notebooks are written to a
 * temporary folder (kept with DIFFSSL_EXAMPLES_KEEP=1) and the committed ones
 * stay without outputs.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ASSETS, writeFixture37BlockFlags } from '../lib/common.js';
import { EXAMPLES, installKernel, NOTEBOOKS, unbuiltPackages } from './kernel.js';

const { values, positionals } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: { 'scripts-only': { type: 'boolean', default: false }, 'notebooks-only': { type: 'boolean', default: false } },
  allowPositionals: true,
});
const selected = (name: string) => positionals.length === 0 || positionals.some((word) => name.includes(word));
const scratch = mkdtempSync(join(tmpdir(), 'diffssl-test-examples-'));
const keep = process.env.DIFFSSL_EXAMPLES_KEEP === '1';

interface Outcome {
  name: string;
  seconds: number;
  ok: boolean;
  note?: string;
}
const outcomes: Outcome[] = [];

/** Runs a command with live output; records its time and whether it exited 0. */
function run(name: string, command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutSeconds: number }): boolean {
  console.log(`\n=== ${name}: ${[command, ...args].map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}`);
  const started = performance.now();
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: 'inherit',
    timeout: options.timeoutSeconds * 1000,
    killSignal: 'SIGKILL',
  });
  const seconds = (performance.now() - started) / 1000;
  const ok = result.status === 0;
  const note = result.error
    ? result.error.message
    : result.signal
      ? `killed by ${result.signal}${result.signal === 'SIGKILL' ? ` (over ${options.timeoutSeconds} s?)` : ''}`
      : ok
        ? undefined
        : `exit ${result.status}`;
  outcomes.push({ name, seconds, ok, ...(note ? { note } : {}) });
  console.log(`=== ${name}: ${ok ? 'ok' : `FAILED (${note})`} in ${seconds.toFixed(1)} s`);
  return ok;
}

// The example scripts, run with the command lines docs/examples.md documents: `pnpm --filter @diffssl/examples
// run <name> -- <options>` from the repository root (pnpm passes the `--` through; every script accepts it).
if (!values['notebooks-only']) {
  // "Any guided-diffusion checkpoint": the 37-block test U-Net of the fixtures (the 256x256 ImageNet model's
  // block layout and numbering at 32x32, random weights), at the paper's DifFormer blocks and timesteps.
  const flags37 = join(scratch, 'adm-37block-random.flags.json');
  writeFixture37BlockFlags(flags37);
  const scripts: [label: string, script: string, options: string[]][] = [
    ['linear', 'linear', []],
    ['attention', 'attention', []],
    ['difformer', 'difformer', []],
    ['difformer-api', 'difformer-api', []],
    ['diffeed', 'diffeed', []],
    ['extract-features', 'extract-features', []],
    ['paper-settings (37-block U-Net)', 'paper-settings', []],
    [
      'extract-features (37-block U-Net, --paper, float16, cache directory)',
      'extract-features',
      [
        '--checkpoint',
        join(ASSETS, 'fixtures/adm-37block-random.pt'),
        '--config',
        flags37,
        '--paper',
        '--limit',
        '16',
        '--dtype',
        'float16',
        '--cache-directory',
        join(scratch, 'models'),
        '--out',
        join(scratch, 'features.safetensors'),
      ],
    ],
  ];
  for (const [label, script, options] of scripts) {
    const command = ['--filter', '@diffssl/examples', 'run', script, ...(options.length > 0 ? ['--', ...options] : [])];
    if (selected(label)) run(label, 'pnpm', command, { cwd: join(EXAMPLES, '..'), timeoutSeconds: 600 });
  }
}

// The notebooks, executed by Jupyter with the tslab kernel.
if (!values['scripts-only']) {
  const notebooks = readdirSync(NOTEBOOKS)
    .filter((file) => file.endsWith('.ipynb') && selected(file))
    .sort();
  if (notebooks.length > 0) {
    const unbuilt = unbuiltPackages();
    const jupyter = spawnSync('jupyter', ['nbconvert', '--version'], { encoding: 'utf8' });
    let ready = true;
    if (unbuilt.length > 0) {
      outcomes.push({
        name: 'notebooks',
        seconds: 0,
        ok: false,
        note: `the kernel loads the built packages; ${unbuilt.join(', ')} have no dist/ (run pnpm build; the root script test:examples does)`,
      });
      ready = false;
    } else if (jupyter.status !== 0) {
      outcomes.push({
        name: 'notebooks',
        seconds: 0,
        ok: false,
        note: 'jupyter nbconvert is not installed (Debian: apt-get install jupyter-nbconvert python3-notebook python3-ipykernel)',
      });
      ready = false;
    }
    if (ready) {
      const prefix = join(scratch, 'jupyter');
      installKernel([`--prefix=${prefix}`]);
      console.log(`\ntslab kernel registered in ${prefix}; nbconvert ${jupyter.stdout.trim()}`);
      const env = { ...process.env, JUPYTER_PATH: join(prefix, 'share/jupyter') };
      const output = join(scratch, 'notebooks');
      for (const notebook of notebooks) {
        // The committed notebooks carry no outputs (executed copies go to the temporary folder).
        const committed = JSON.parse(readFileSync(join(NOTEBOOKS, notebook), 'utf8')) as { cells: { outputs?: unknown[] }[] };
        if (committed.cells.some((cell) => (cell.outputs ?? []).length > 0)) {
          outcomes.push({ name: notebook, seconds: 0, ok: false, note: 'the committed notebook holds outputs; clear them (Kernel > Restart & Clear Output)' });
          continue;
        }
        // --allow-errors: nbconvert writes the executed notebook even when a cell fails, so that the check
        // below can print the cell's error; tslab writes every error (type errors included) to stderr.
        const ok = run(
          notebook,
          'jupyter',
          [
            'nbconvert',
            '--to',
            'notebook',
            '--execute',
            '--allow-errors',
            '--ExecutePreprocessor.kernel_name=tslab',
            '--ExecutePreprocessor.timeout=600',
            '--output-dir',
            output,
            notebook,
          ],
          {
            cwd: NOTEBOOKS,
            env,
            timeoutSeconds: 900,
          },
        );
        if (ok) checkExecuted(notebook, join(output, notebook));
      }
    }
  }
}

/**
 * Checks an executed notebook: every code cell ran (nbclient records its execute reply; tslab sends no
 * execution counts), none holds an error output or wrote to stderr.
 */
function checkExecuted(name: string, path: string): void {
  type Output = { output_type: string; name?: string; text?: string | string[]; ename?: string; evalue?: string };
  type Cell = { cell_type: string; execution_count?: number | null; metadata?: { execution?: Record<string, string> }; outputs?: Output[] };
  const notebook = JSON.parse(readFileSync(path, 'utf8')) as { cells: Cell[] };
  const outcome = outcomes[outcomes.length - 1]!;
  const code = notebook.cells.filter((cell) => cell.cell_type === 'code');
  const problems: string[] = [];
  code.forEach((cell, i) => {
    if (cell.execution_count == null && !cell.metadata?.execution?.['shell.execute_reply']) problems.push(`code cell ${i + 1} did not run`);
    for (const output of cell.outputs ?? []) {
      if (output.output_type === 'error') problems.push(`code cell ${i + 1}: ${output.ename}: ${output.evalue}`);
      if (output.output_type === 'stream' && output.name === 'stderr')
        problems.push(`code cell ${i + 1} wrote to stderr:\n${[output.text ?? ''].flat().join('').trim().slice(0, 2000)}`);
    }
  });
  if (problems.length > 0) {
    outcome.ok = false;
    outcome.note = problems[0]!.replace(/\s+/g, ' ').slice(0, 160);
    console.log(`=== ${name}: FAILED\n${problems.join('\n')}`);
  } else {
    outcome.note = `${code.length} code cells`;
  }
}

const width = Math.max(...outcomes.map((o) => o.name.length), 4);
console.log(`\n${'run'.padEnd(width)}  result  seconds`);
for (const outcome of outcomes)
  console.log(
    `${outcome.name.padEnd(width)}  ${(outcome.ok ? 'ok' : 'FAILED').padEnd(6)}  ${outcome.seconds.toFixed(1).padStart(7)}${outcome.note ? `  ${outcome.note}` : ''}`,
  );
if (keep) console.log(`outputs kept in ${scratch}`);
else rmSync(scratch, { recursive: true, force: true });
const failed = outcomes.filter((o) => !o.ok);
if (outcomes.length === 0) {
  console.log('test:examples: nothing matched');
  process.exitCode = 1;
} else if (failed.length > 0) {
  console.log(`test:examples: ${failed.length} of ${outcomes.length} failed: ${failed.map((o) => o.name).join(', ')}`);
  process.exitCode = 1;
} else {
  console.log(`test:examples: all ${outcomes.length} passed`);
}
