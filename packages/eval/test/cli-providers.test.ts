/**
 * Providers through the command line: every command that takes `--provider`
 * also takes `--strict`, which fails at once with one line naming the
 * unavailable provider; a named provider that is unavailable (no `--strict`)
 * warns once and runs on the CPU; a default run (`auto`) prints no provider
 * warning. The CUDA cases need a machine without onnxruntime-node's CUDA
 * provider library (CI, and every machine that did not opt in to it).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostTensor, probeNodeProvider, readSafetensors, writeSafetensors } from '@diffssl/core';
import { fixturePath, relativeError } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';
import { diffssl, EMBEDDED } from './cli-helpers.js';

const cudaMissing = probeNodeProvider('cuda') !== undefined;
if (!cudaMissing) console.log('cli-providers: skipped the CUDA cases: the CUDA provider library is installed here');
const lines = (text: string) => text.split('\n').filter((line) => line.trim() !== '');
const folder = mkdtempSync(join(tmpdir(), 'diffssl-cli-providers-'));
const out = (name: string) => join(folder, name);
const UNET = ['--checkpoint', fixturePath('adm-fm28.pt'), '--config', 'never-read.json'];
const STEP = ['--head', 'h.json', '--params', 'p.safetensors', '--input', 'i.safetensors', '--lr', '0.1', '--out', out('step.safetensors')];

/** Each command with what its required options need; under --strict none of them is read. */
const COMMANDS: [string, string[]][] = [
  ['train', ['train', '--protocol', 'linear', ...EMBEDDED, '--blocks', '10', '--timesteps', '50', '--out', out('train')]],
  ['eval', ['eval', '--model', out('no-model')]],
  ['extract', ['extract', ...EMBEDDED, '--blocks', '10', '--timesteps', '50']],
  ['sweep', ['sweep', ...EMBEDDED, '--timesteps', '50', '--out', out('sweep')]],
  ['probe', ['probe', ...EMBEDDED, '--block', '10', '--timestep', '50', '--out', out('probe')]],
  ['demo', ['demo', '--out', out('demo')]],
  ['unet-run', ['unet-run', ...UNET, '--input', 'i.safetensors', '--blocks', 'all', '--out', out('unet.safetensors')]],
  ['head-step', ['head-step', ...STEP]],
  ['finetune-step', ['finetune-step', ...UNET, ...STEP]],
];

describe.skipIf(!cudaMissing)('--provider cuda --strict on a machine without the CUDA provider', () => {
  it.each(COMMANDS)('%s fails at once with one line naming CUDA', async (_name, args) => {
    const result = await diffssl([...args, '--provider', 'cuda', '--strict', '--quiet'], { DIFFSSL_DEBUG: '' });
    expect(result.code, result.stderr).toBe(1);
    expect(lines(result.stderr)).toHaveLength(1);
    expect(result.stderr).toMatch(
      /^diffssl: createRunner: execution provider 'cuda' is unavailable and strict is set: the CUDA provider library libonnxruntime_providers_cuda\.so is not installed .*ONNXRUNTIME_NODE_INSTALL=cuda12.* \[ERR_PROVIDER_UNAVAILABLE\]\n$/,
    );
  });
});

/** adm-fm28's noised inputs at t=150 and the reference's block outputs. */
function unetInputs() {
  const features = readSafetensors(readFileSync(fixturePath('adm-fm28.features.safetensors')));
  writeFileSync(out('flags.json'), features.metadata.config!);
  const x = features.tensors.get('t150/x_t')!;
  writeFileSync(out('in.safetensors'), writeSafetensors({ x, t: HostTensor.from('int64', [x.shape[0]!], [150n, 150n]) }));
  return {
    features,
    args: ['unet-run', '--checkpoint', fixturePath('adm-fm28.pt'), '--config', out('flags.json'), '--input', out('in.safetensors'), '--blocks', '5,10'],
  };
}

describe('unet-run without --strict', () => {
  it('by default (auto) prints no provider warning, only its status lines', async () => {
    const { features, args } = unetInputs();
    const result = await diffssl([...args, '--out', out('auto.safetensors')]);
    expect(result.code, result.stderr).toBe(0);
    const printed = lines(result.stderr);
    expect(printed).toHaveLength(2);
    expect(printed[0]).toMatch(/^unet-run: 19-block U-Net, batch 2, blocks 5,10, provider (cpu|cuda|webgpu)$/);
    expect(printed[1]).toBe(`wrote block05, block10 to ${out('auto.safetensors')}`);
    const written = readSafetensors(readFileSync(out('auto.safetensors'))).tensors;
    for (const name of ['block05', 'block10']) expect(relativeError(written.get(name)!, features.tensors.get(`t150/${name}`)!), name).toBeLessThanOrEqual(1e-4);
  });

  it.skipIf(!cudaMissing)('with --provider cuda (named), warns once and runs on the CPU', async () => {
    const { features, args } = unetInputs();
    const result = await diffssl([...args, '--out', out('cuda.safetensors'), '--provider', 'cuda']);
    expect(result.code, result.stderr).toBe(0);
    const printed = lines(result.stderr);
    expect(printed).toHaveLength(3);
    expect(printed[0]).toMatch(
      /^@diffssl\/core: execution provider 'cuda' is unavailable \(cuda: the CUDA provider library .* is not installed .*\); using 'cpu'$/,
    );
    expect(printed[1]).toMatch(/, provider cpu$/);
    const written = readSafetensors(readFileSync(out('cuda.safetensors'))).tensors;
    for (const name of ['block05', 'block10']) expect(relativeError(written.get(name)!, features.tensors.get(`t150/${name}`)!), name).toBeLessThanOrEqual(1e-4);
  });

  it('refuses a provider name it does not know, naming the choices', async () => {
    const { args } = unetInputs();
    const result = await diffssl([...args, '--out', out('x.safetensors'), '--provider', 'cuda,tpu']);
    expect(result.code).not.toBe(0);
    expect(lines(result.stderr)).toEqual([
      "error: option '--provider <list>' argument 'cuda,tpu' is invalid. --provider: expected auto, cuda, webgpu or cpu, comma-separated; found 'cuda,tpu'",
    ]);
  });
});

describe('diffssl doctor', () => {
  it('--json reports every provider, what auto chose, the CPU and the caches of this machine', async () => {
    const cache = out('doctor-cache');
    const result = await diffssl(['doctor', '--json'], { DIFFSSL_CACHE: cache });
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as {
      node: string;
      runtime: { providers: { name: string; available: boolean; detail: string }[]; auto: { provider: string; reason: string } };
      caches: { path: string; exists: boolean }[];
    };
    expect(report.node).toBe(process.version);
    expect(report.runtime.providers.map((p) => p.name)).toEqual(['cuda', 'webgpu', 'cpu']);
    expect(report.runtime.providers[2]).toEqual({ name: 'cpu', available: true, detail: 'works' });
    if (cudaMissing)
      expect(report.runtime.providers[0]!.detail).toMatch(/libonnxruntime_providers_cuda\.so is not installed .*ONNXRUNTIME_NODE_INSTALL=cuda12/);
    expect(report.runtime.auto.reason).toMatch(new RegExp(`^'${report.runtime.auto.provider}' chosen by auto`));
    expect(report.caches[0]).toMatchObject({ path: cache, exists: false });
  });
});
