import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { HostTensor, readSafetensors, writeSafetensors } from '@diffssl/core';
import { describe, expect, it } from 'vitest';
import { fixturePath, loadFeatures } from '@diffssl/testing';

const CLI = fileURLToPath(new URL('../cli.ts', import.meta.url));
const run = promisify(execFile);

function cli(args: string[]) {
  return run(process.execPath, ['--conditions=@diffssl/source', '--import', 'tsx', CLI, ...args], { timeout: 120_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

function setup(model: 'adm-fm28' | 'adm-37block-random', t: number) {
  const directory = mkdtempSync(join(tmpdir(), 'diffssl-cli-'));
  const features = readSafetensors(readFileSync(fixturePath(`${model}.features.safetensors`)));
  writeFileSync(join(directory, 'flags.json'), features.metadata.config!);
  const x = features.tensors.get(`t${t}/x_t`)!;
  writeFileSync(join(directory, 'in.safetensors'), writeSafetensors({ x, t: HostTensor.from('int64', [x.shape[0]!], [BigInt(t), BigInt(t)]) }));
  return { directory, features };
}

describe('diffssl unet-run', () => {
  it('writes every block and the output, matching the reference fixture', async () => {
    const { directory, features } = setup('adm-37block-random', 150);
    const out = join(directory, 'out.safetensors');
    const result = await cli(['unet-run', '--checkpoint', fixturePath('adm-37block-random.pt'), '--config', join(directory, 'flags.json'), '--input', join(directory, 'in.safetensors'), '--blocks', 'all', '--with-output', '--out', out, '--provider', 'cpu']);
    expect(result.code, result.stderr).toBe(0);
    const written = readSafetensors(readFileSync(out)).tensors;
    expect([...written.keys()]).toEqual([...Array.from({ length: 37 }, (_, i) => `block${String(i + 1).padStart(2, '0')}`), 'out']);
    for (const [name, tensor] of written) {
      const expected = features.tensors.get(`t150/${name}`)!.toArray();
      const got = tensor.toArray();
      const scale = Math.max(1, ...expected.map(Math.abs));
      expect(Math.max(...got.map((v, i) => Math.abs(v - expected[i]!))) / scale, name).toBeLessThanOrEqual(1e-4);
    }
  });

  it('writes only the requested blocks', async () => {
    const { directory } = setup('adm-fm28', 0);
    const out = join(directory, 'out.safetensors');
    const result = await cli(['unet-run', '--checkpoint', fixturePath('adm-fm28.pt'), '--config', join(directory, 'flags.json'), '--input', join(directory, 'in.safetensors'), '--blocks', '1,5,9', '--out', out, '--provider', 'cpu']);
    expect(result.code, result.stderr).toBe(0);
    expect([...readSafetensors(readFileSync(out)).tensors.keys()]).toEqual(['block01', 'block05', 'block09']);
  });

  it('answers bad arguments with one line and a non-zero exit, never a stack trace', async () => {
    const { directory } = setup('adm-fm28', 0);
    const base = ['unet-run', '--checkpoint', fixturePath('adm-fm28.pt'), '--config', join(directory, 'flags.json'), '--input', join(directory, 'in.safetensors'), '--out', join(directory, 'o.safetensors'), '--provider', 'cpu'];
    const cases: [string[], RegExp][] = [
      [[...base, '--blocks', '0,20'], /--blocks: expected 'all' or block numbers in 1..19/],
      [[...base, '--blocks', 'x'], /--blocks/],
      [['unet-run', '--blocks', 'all'], /required option/],
      [[...base.map((a) => (a.endsWith('adm-fm28.pt') ? fixturePath('adm-37block-random.pt') : a)), '--blocks', 'all'], /does not fit the U-Net configuration/],
      [[...base.map((a) => (a.endsWith('flags.json') ? join(directory, 'missing.json') : a)), '--blocks', 'all'], /--config: cannot read/],
    ];
    for (const [args, pattern] of cases) {
      const result = await cli(args);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(pattern);
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(result.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    }
  });
});
