/**
 * What the example scripts share: the embedded Fashion-MNIST default (model,
 * flags, data), a scratch folder per run, and small printing helpers.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GuidedDiffusionFlags } from '@diffssl/unet';

/** The repository's `assets/` folder. */
export const ASSETS = fileURLToPath(new URL('../../assets/', import.meta.url));

/** The embedded default: the Fashion-MNIST ADM U-Net (19 blocks, 28x28), its flags, and FM-10k data. */
export const EMBEDDED = {
  checkpoint: join(ASSETS, 'models/adm-fm28/adm-fm28.pt'),
  config: join(ASSETS, 'models/adm-fm28/flags.json'),
  data: join(ASSETS, 'data/fashion-mnist-10k'),
} as const;

/** The embedded model's guided-diffusion flags. */
export function embeddedFlags(): GuidedDiffusionFlags {
  return JSON.parse(readFileSync(EMBEDDED.config, 'utf8')) as GuidedDiffusionFlags;
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

/** Seconds since `start` (a `performance.now()` reading), one decimal. */
export function secondsSince(start: number): string {
  return ((performance.now() - start) / 1000).toFixed(1);
}
