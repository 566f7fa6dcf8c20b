/**
 * `diffssl` shows the U-Net's slow setup on stderr: the checkpoint read and
 * hashed, the ONNX graph built and compiled; `--quiet` shows none of it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffssl, EMBEDDED } from './cli-helpers.js';

const extract = (cache: string, extra: string[] = []) => [
  'extract',
  ...EMBEDDED,
  '--test-limit',
  '8',
  '--split',
  'test',
  '--blocks',
  '5',
  '--timesteps',
  '50',
  '--provider',
  'cpu',
  '--cache',
  cache,
  ...extra,
];

describe('diffssl progress of the U-Net setup', () => {
  it('prints the checkpoint read and hashed, then each model setup step, before extracting', async () => {
    const result = await diffssl(extract(mkdtempSync(join(tmpdir(), 'diffssl-cli-progress-'))));
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stderr.split('\n');
    const at = (pattern: RegExp) => lines.findIndex((line) => pattern.test(line));
    const order = [
      at(/^U-Net checkpoint: read and hashed: done, (\d+)\/\1 MB in /),
      at(/^U-Net model: building the ONNX graph$/),
      at(/^U-Net model: ONNX Runtime is loading and optimizing the model$/),
      at(/^U-Net model: ready in \d+\.\d s$/),
      at(/^extract test: done, 8\/8 img/),
    ];
    expect(
      order.every((index) => index >= 0),
      result.stderr,
    ).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('prints none of it with --quiet', async () => {
    const result = await diffssl(extract(mkdtempSync(join(tmpdir(), 'diffssl-cli-progress-')), ['--quiet']));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/U-Net (checkpoint|model)/);
  });
});
