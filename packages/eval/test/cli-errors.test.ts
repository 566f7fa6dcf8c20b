/**
 * The `diffssl` error policy end to end: one line by default; the full stack
 * with `--debug` (before or after the command) or `DIFFSSL_DEBUG=1`; and
 * `train --resume` with no checkpoint in `--out` fails instead of starting over;
 * an unknown `--precision` is refused with the allowed values named.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffssl, EMBEDDED } from './cli-helpers.js';

const temporary = () => mkdtempSync(join(tmpdir(), 'diffssl-cli-errors-'));
const lines = (text: string) => text.split('\n').filter((line) => line.trim() !== '');

describe('diffssl errors', () => {
  const missing = join(temporary(), 'no-such-data');
  const train = (out: string, extra: string[] = []) => [
    'train',
    '--protocol',
    'linear',
    '--data',
    missing,
    '--blocks',
    '10',
    '--timesteps',
    '50',
    '--provider',
    'cpu',
    '--quiet',
    '--out',
    out,
    ...extra,
  ];

  it('prints one line and no stack by default', async () => {
    const result = await diffssl(train(temporary()), { DIFFSSL_DEBUG: '' });
    expect(result.code).toBe(1);
    expect(lines(result.stderr)).toEqual([`diffssl: data: ${missing} is not a directory [ERR_CONFIG]`]);
  });

  it.each([
    ['--debug after the command', (out: string) => train(out, ['--debug']), {}],
    ['--debug before the command', (out: string) => ['--debug', ...train(out)], {}],
    ['DIFFSSL_DEBUG=1', (out: string) => train(out), { DIFFSSL_DEBUG: '1' }],
  ] as const)('prints the same line, then the full stack, with %s', async (_label, args, env) => {
    const result = await diffssl(args(temporary()), { DIFFSSL_DEBUG: '', ...env });
    expect(result.code).toBe(1);
    const printed = lines(result.stderr);
    expect(printed[0]).toBe(`diffssl: data: ${missing} is not a directory [ERR_CONFIG]`);
    expect(printed[1]).toBe(`ConfigError: data: ${missing} is not a directory`);
    // Stack frames through the library down to the command that called it.
    const frames = printed.slice(2);
    expect(frames.length).toBeGreaterThanOrEqual(3);
    expect(frames.every((line) => /^\s+at /.test(line))).toBe(true);
    expect(frames.some((line) => line.includes('open.ts'))).toBe(true);
    expect(frames.some((line) => line.includes('train.ts'))).toBe(true);
  });

  it('refuses --resume when --out holds no checkpoint, before reading data or the U-Net, and writes nothing', async () => {
    const out = temporary();
    const started = performance.now();
    const result = await diffssl([
      'train',
      '--protocol',
      'linear',
      ...EMBEDDED,
      '--blocks',
      '10',
      '--timesteps',
      '50',
      '--epochs',
      '1',
      '--provider',
      'cpu',
      '--quiet',
      '--out',
      out,
      '--resume',
    ]);
    expect(result.code).toBe(1);
    expect(lines(result.stderr)).toEqual([
      `diffssl: --resume: there is no checkpoint to continue from in ${out} (expected ${join(out, 'checkpoint.safetensors')}); drop --resume to start a new run [ERR_CONFIG]`,
    ]);
    expect(result.stdout).toBe('');
    expect(readdirSync(out)).toEqual([]);
    expect(existsSync(join(out, 'report.json'))).toBe(false);
    // No training happened: the whole command (Node and tsx start included) is far below one epoch.
    expect(performance.now() - started).toBeLessThan(60_000);
  });

  it.each(['extract', 'train', 'sweep', 'demo'])('%s refuses an unknown --precision, naming float32, float16 and int8', async (command) => {
    const result = await diffssl([command, '--precision', 'int4']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("--precision: expected float32, float16, int8; found 'int4'");
  });

  it('refuses --precision int8 for a protocol that trains through the U-Net (diffeed)', async () => {
    const args = ['train', '--protocol', 'diffeed', ...EMBEDDED, '--blocks', '10', '--timesteps', '50', '--precision', 'int8'];
    const result = await diffssl([...args, '--train-limit', '64', '--test-limit', '64', '--epochs', '1', '--provider', 'cpu', '--quiet', '--out', temporary()]);
    expect(result.code).toBe(1);
    expect(lines(result.stderr)).toEqual([
      'diffssl: --precision int8: diffeed runs the U-Net in float32 (it trains through it); precision applies to frozen features (linear, attention, difformer) [ERR_CONFIG]',
    ]);
  });
});
