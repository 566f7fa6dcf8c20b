/**
 * What the example scripts share: the embedded Fashion-MNIST default (model,
 * flags, data), a scratch folder per run, and small printing helpers.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '@diffssl/core';

/** The repository's `assets/` folder. */
export const ASSETS = fileURLToPath(new URL('../../assets/', import.meta.url));

/** The embedded default: the Fashion-MNIST ADM U-Net (19 blocks, 28x28), its flags, and FM-10k data. */
export const EMBEDDED = {
  checkpoint: join(ASSETS, 'models/adm-fm28/adm-fm28.pt'),
  config: join(ASSETS, 'models/adm-fm28/flags.json'),
  data: join(ASSETS, 'data/fashion-mnist-10k'),
} as const;

/**
 * Writes the guided-diffusion flags of the fixtures' 37-block test U-Net
 * (`fixtures/adm-37block-random.pt`), kept in the metadata of its features
 * fixture, to a JSON file: the `--config` of that checkpoint.
 *
 * @param path - the flags file to write
 */
export function writeFixture37BlockFlags(path: string): void {
  const fixture = readSafetensors(readFileSync(join(ASSETS, 'fixtures/adm-37block-random.features.safetensors')));
  writeFileSync(path, fixture.metadata.config ?? '{}');
}

/**
 * A scratch folder for one run's outputs and feature cache, removed at exit
 * unless `DIFFSSL_EXAMPLES_KEEP=1` (then its path is printed).
 *
 * @param name - a prefix naming the example
 * @returns the folder
 */
export function scratchFolder(name: string): string {
  const folder = mkdtempSync(join(tmpdir(), `diffssl-${name}-`));
  if (process.env.DIFFSSL_EXAMPLES_KEEP === '1') {
    process.on('exit', () => console.log(`outputs kept in ${folder}`));
  } else {
    process.on('exit', () => rmSync(folder, { recursive: true, force: true }));
  }
  return folder;
}

/**
 * The script's command-line arguments without the `--` that
 * `pnpm --filter @diffssl/examples run <name> -- --flag` passes through (pnpm
 * forwards it; `parseArgs` would take every argument after it as a positional
 * and refuse them).
 *
 * @param argv - the arguments (default: this process's, after the script path)
 * @returns the arguments for `parseArgs`
 */
export function scriptArguments(argv: readonly string[] = process.argv.slice(2)): string[] {
  return argv[0] === '--' ? argv.slice(1) : [...argv];
}

/** Seconds since `start` (a `performance.now()` reading), one decimal. */
export function secondsSince(start: number): string {
  return ((performance.now() - start) / 1000).toFixed(1);
}
