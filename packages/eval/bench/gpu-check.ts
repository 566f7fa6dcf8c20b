/**
 * `pnpm gpu:check`: one prepared check for a machine with a real GPU and no
 * network. It uses only what is installed (the repository, its fixtures and
 * node_modules), runs within `--budget-s` seconds (default 300) and prints
 * one table, for each GPU provider present (cuda, webgpu) and for the CPU
 * provider in the same run:
 *
 * - parity of the U-Net: every block and the output of adm-fm28 at t=150
 *   against `assets/fixtures/adm-fm28.features.safetensors` (as `unet-run`);
 * - parity of a head training step: the four cases of
 *   `assets/fixtures/heads.safetensors` (as `head-step`): logits, loss,
 *   gradients, parameters after SGD and BatchNorm buffers;
 * - extraction throughput: adm-fm28 (blocks 5, 10, 14 at t=150, batch 64) and
 *   the 256x256 layout (`256x256_diffusion_uncond`, random weights) at block
 *   24, batch 8, in float16;
 * - steps/s of a paper-scale attention head: block 24, 16x16 tokens from 1024
 *   channels, dim 1024, 8 heads, MLP x4, 2 blocks, CLS, batch 32.
 *
 * Every provider is opened under `strict`, so nothing silently falls back.
 * Each timed row gets an equal share of what is left of the budget: one
 * warm-up run, then repeated runs while its share lasts (at least one). Rows on
 * a software WebGPU adapter (lavapipe) check parity only: their speed means
 * nothing (`--time-software` times them anyway).
 *
 * usage: pnpm gpu:check [--budget-s 300] [--providers cuda,webgpu,cpu] [--time-software]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  adapterSummary,
  BuildContext,
  compileModuleTrainStep,
  crossEntropy,
  diagnoseProviders,
  Graph,
  HostTensor,
  readSafetensors,
  type RunnerOptions,
  sgd,
  writeSafetensors,
} from '@diffssl/core';
import { DifFormer, fusionKey } from '@diffssl/difformer';
import { admConfig, AdmUNet, createFeatureExtractor, expectedWeights, readTorchCheckpoint, unetLayout } from '@diffssl/unet';
import { fixturePath, randomTensor, scaledMaxError, vitForwardFlops } from '@diffssl/testing';
import { headStep } from '../src/commands/head-step.js';
import { unetRun } from '../src/commands/unet-run.js';

const { values } = parseArgs({
  options: { 'budget-s': { type: 'string', default: '300' }, providers: { type: 'string' }, 'time-software': { type: 'boolean', default: false } },
});
const budgetSeconds = Number(values['budget-s']);
if (!(budgetSeconds > 0)) throw new Error(`--budget-s: expected a positive number of seconds; found '${values['budget-s']}'`);
const started = performance.now();
const elapsed = () => (performance.now() - started) / 1000;
const left = () => budgetSeconds - elapsed();

// ---- which providers ---------------------------------------------------------------------------
const diagnosis = await diagnoseProviders();
const adapterLine = diagnosis.adapter.found ? adapterSummary(diagnosis.adapter.adapter) : `none (${diagnosis.adapter.reason})`;
const software = diagnosis.adapter.found && diagnosis.adapter.adapter.software;
const asked = values.providers?.split(',').map((p) => p.trim());
const providers = diagnosis.providers.filter((p) => p.available && (asked ? asked.includes(p.name) : true)).map((p) => p.name);
console.log(`gpu:check: ONNX Runtime ${diagnosis.ortVersion}, Node ${process.version}, budget ${budgetSeconds} s`);
for (const p of diagnosis.providers) console.log(`  ${p.name}: ${p.available ? 'available' : 'unavailable'}${p.available ? '' : ` (${p.detail})`}`);
console.log(`  WebGPU adapter: ${adapterLine}`);
const gpus = providers.filter((p) => p !== 'cpu');
if (gpus.length === 0) console.log('  no GPU provider is available: only the CPU rows are measured');

const runner = (provider: string): RunnerOptions => ({ executionProviders: [provider as 'cpu'], strict: true });
const timed = (provider: string) => provider !== 'webgpu' || !software || values['time-software'];
const directory = mkdtempSync(join(tmpdir(), 'diffssl-gpu-check-'));
const rows: { check: string; provider: string; result: string; seconds: number }[] = [];
function row(check: string, provider: string, result: string, since: number): void {
  rows.push({ check, provider, result, seconds: (performance.now() - since) / 1000 });
  console.log(`  ${check} [${provider}]: ${result}`);
}

const verdict = (error: number, tolerance: number) =>
  `${error <= tolerance ? 'PASS' : 'FAIL'} worst ${error.toExponential(2)} (tolerance ${tolerance.toExponential(0)})`;

// ---- parity: U-Net ------------------------------------------------------------------------------
const features = readSafetensors(readFileSync(fixturePath('adm-fm28.features.safetensors')));
writeFileSync(join(directory, 'flags.json'), features.metadata.config!);
const xt = features.tensors.get('t150/x_t')!;
writeFileSync(join(directory, 'unet-in.safetensors'), writeSafetensors({ x: xt, t: HostTensor.from('int64', [xt.shape[0]!], [150n, 150n]) }));
for (const provider of providers) {
  const since = performance.now();
  try {
    const out = join(directory, `unet-${provider}.safetensors`);
    const names = await unetRun({
      checkpoint: fixturePath('adm-fm28.pt'),
      config: join(directory, 'flags.json'),
      input: join(directory, 'unet-in.safetensors'),
      blocks: 'all',
      withOutput: true,
      out,
      providers: [provider as 'cpu'],
      strict: true,
    });
    const written = readSafetensors(readFileSync(out)).tensors;
    let worst = 0;
    let where = '';
    for (const name of names) {
      const error = scaledMaxError(written.get(name)!, features.tensors.get(`t150/${name}`)!);
      if (!(error <= worst)) [worst, where] = [error, name];
    }
    row(`U-Net parity: adm-fm28, ${names.length - 1} blocks + output, t=150`, provider, `${verdict(worst, 1e-4)}${where ? ` at ${where}` : ''}`, since);
  } catch (error) {
    row('U-Net parity: adm-fm28', provider, `ERROR ${(error as Error).message.split('\n')[0]}`, since);
  }
}

// ---- parity: head training step -----------------------------------------------------------------
const heads = readSafetensors(readFileSync(fixturePath('heads.safetensors')));
const group = (prefix: string) => new Map([...heads.tensors].filter(([name]) => name.startsWith(prefix)).map(([name, t]) => [name.slice(prefix.length), t]));
function headJson(name: string): object {
  const meta = JSON.parse(heads.metadata[name]!) as Record<string, unknown>;
  if (name === 'linear') return { kind: 'linear', ...meta, head_arc: '', num_classes: 10 };
  if (name === 'poolhead') return { kind: 'layers', ...meta };
  return { kind: 'fusion', ...meta };
}
for (const provider of providers) {
  const since = performance.now();
  try {
    let worst = 0;
    let where = '';
    for (const name of ['linear', 'attention', 'difformer', 'poolhead']) {
      const files = {
        head: join(directory, `${name}.json`),
        params: join(directory, `${name}.params.safetensors`),
        input: join(directory, `${name}.input.safetensors`),
      };
      writeFileSync(files.head, JSON.stringify(headJson(name)));
      writeFileSync(files.params, writeSafetensors(group(`${name}/param/`)));
      const inputs = name === 'linear' || name === 'poolhead' ? new Map([['input', heads.tensors.get(`${name}/input`)!]]) : group(`${name}/input/`);
      writeFileSync(files.input, writeSafetensors(new Map([...inputs, ['labels', heads.tensors.get('labels')!]])));
      const out = join(directory, `${name}.${provider}.safetensors`);
      await headStep({ ...files, lr: Number(heads.metadata[`${name}/lr`]), out, providers: [provider as 'cpu'], strict: true });
      const written = readSafetensors(readFileSync(out)).tensors;
      const expected = new Map<string, HostTensor>([
        ['logits', heads.tensors.get(`${name}/logits`)!],
        ['loss', heads.tensors.get(`${name}/loss`)!],
        ...[...group(`${name}/grad/`)].map(([p, t]) => [`grad/${p}`, t] as [string, HostTensor]),
        ...[...group(`${name}/after_sgd/`)].map(([p, t]) => [`after_sgd/${p}`, t] as [string, HostTensor]),
      ]);
      for (const [key, tensor] of expected) {
        const got = written.get(key);
        const error = got ? scaledMaxError(got, tensor) : Infinity;
        if (!(error <= worst)) [worst, where] = [error, `${name} ${key}`];
      }
    }
    row('head step parity: 4 cases of heads.safetensors', provider, `${verdict(worst, 1e-4)}${where ? ` at ${where}` : ''}`, since);
  } catch (error) {
    row('head step parity: heads.safetensors', provider, `ERROR ${(error as Error).message.split('\n')[0]}`, since);
  }
}

// ---- timed rows ---------------------------------------------------------------------------------
interface Timed {
  check: string;
  unit: string;
  /** Per run: how many units (images, steps). */
  perRun: number;
  /** Prepares and returns one run (and, for extraction, a run on one image), and a release. */
  prepare(provider: string): Promise<Prepared>;
}

interface Prepared {
  run: () => Promise<unknown>;
  /** One image through the same session: measured first, so a batch that cannot fit the budget is not started. */
  runOne?: () => Promise<unknown>;
  release: () => Promise<void>;
}

const fm28 = new AdmUNet(JSON.parse(features.metadata.config!) as never, await readTorchCheckpoint(fixturePath('adm-fm28.pt')));
function syntheticImages(count: number, channels: number, side: number): HostTensor<'uint8'> {
  const pixels = new Uint8Array(count * channels * side * side);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  return HostTensor.from('uint8', [count, channels, side, side], pixels);
}

/** The 256x256 unconditional layout with random weights: every tensor a view of one shared random buffer (no 2.2 GB copy). */
function randomUNet256(): AdmUNet {
  const specs = [...expectedWeights(admConfig('256x256_diffusion_uncond'))];
  const largest = Math.max(...specs.map(([, shape]) => shape.reduce((a, b) => a * b, 1)));
  const shared = randomTensor([largest], 7).data as Float32Array;
  for (let i = 0; i < shared.length; i++) shared[i]! *= 0.05;
  const weights = new Map(
    specs.map(([name, shape]) => [
      name,
      new HostTensor(
        'float32',
        shared.subarray(
          0,
          shape.reduce((a, b) => a * b, 1),
        ),
        shape,
      ),
    ]),
  );
  return new AdmUNet('256x256_diffusion_uncond', weights);
}

const layout = unetLayout(admConfig('256x256_diffusion_uncond'));
const fusion = 'Use_CLS_Token:True:1024,Insert_CLS_Token,Attention:1024:8:4:2,Extract_CLS_Token';
const TIMED: Timed[] = [
  {
    check: 'extraction: adm-fm28, blocks 5,10,14 at t=150, batch 64, float32',
    unit: 'images/s',
    perRun: 64,
    async prepare(provider) {
      const extractor = await createFeatureExtractor({ unet: fm28, blocks: [5, 10, 14], timesteps: [150], batchSize: 64, runner: runner(provider) });
      const images = syntheticImages(64, 1, 28);
      const one = syntheticImages(1, 1, 28);
      return { run: () => extractor.extract(images), runOne: () => extractor.extract(one), release: () => extractor.release() };
    },
  },
  {
    check: 'extraction: 256x256 layout (random weights), block 24 at t=150, batch 8, float16',
    unit: 'images/s',
    perRun: 8,
    async prepare(provider) {
      const extractor = await createFeatureExtractor({
        unet: randomUNet256(),
        blocks: [24],
        timesteps: [150],
        batchSize: 8,
        dtype: 'float16',
        runner: runner(provider),
      });
      const images = syntheticImages(8, 3, 256);
      const one = syntheticImages(1, 3, 256);
      return { run: () => extractor.extract(images), runOne: () => extractor.extract(one), release: () => extractor.release() };
    },
  },
  {
    check: 'attention head train step: block 24, 16x16 tokens from 1024 ch, dim 1024, 8 heads, MLP x4, 2 blocks, batch 32',
    unit: 'steps/s',
    perRun: 1,
    async prepare(provider) {
      const batch = 32;
      const head = DifFormer.fromUNet(
        { block: (n: number) => layout.blocks[n - 1]! },
        { firstPassBlocks: [24], timesteps: [150], fusion, prePoolSize: 16, numClasses: 1000, seed: 0 },
      );
      const graph = new Graph();
      const context = new BuildContext(graph, head, { mode: 'train' });
      const { channels, resolution } = layout.blocks[23]!;
      const key = fusionKey(150, 24);
      const inputs = new Map([[key, graph.input(key, 'float32', ['batch', channels, resolution, resolution])]]);
      const feeds = {
        [key]: randomTensor([batch, channels, resolution, resolution], 1),
        labels: HostTensor.from(
          'int64',
          [batch],
          Array.from({ length: batch }, (_, i) => BigInt(i % 1000)),
        ),
      };
      const logits = head.forward(context, inputs);
      const step = await compileModuleTrainStep({
        context,
        loss: crossEntropy(logits, graph.input('labels', 'int64', ['batch'])),
        optimizer: sgd(),
        runner: runner(provider),
      });
      return { run: () => step.run(feeds, { learningRate: 0.01 }), release: () => step.release() };
    },
  },
];
// Reported beside the attention head's rate: its training FLOPs per step (3x forward).
const attentionFlops = 3 * (vitForwardFlops(32, 1 + 256, 1024, 4, 2) + 2 * 32 * 256 * 1024 * 1024);

const timedRuns = TIMED.flatMap((check) => providers.filter(timed).map((provider) => ({ check, provider })));
for (const provider of providers.filter((p) => !timed(p))) {
  for (const check of TIMED)
    row(check.check, provider, `not timed: ${adapterLine} runs on the CPU, its speed means nothing (--time-software times it)`, performance.now());
}
for (const [index, { check, provider }] of timedRuns.entries()) {
  const since = performance.now();
  const share = Math.max(0, left()) / (timedRuns.length - index);
  let prepared: Prepared | undefined;
  try {
    prepared = await check.prepare(provider);
    const used = () => (performance.now() - since) / 1000;
    if (prepared.runOne) {
      // One image first: when the whole batch would not fit this row's share, report the one-image rate.
      const t0 = performance.now();
      await prepared.runOne();
      const oneSeconds = (performance.now() - t0) / 1000;
      if (used() + 2 * check.perRun * oneSeconds > share) {
        row(
          check.check,
          provider,
          `${(1 / oneSeconds).toFixed(3)} ${check.unit} at batch 1 (one cold run: batch ${check.perRun} would not fit the budget)`,
          since,
        );
        continue;
      }
    }
    const warm = performance.now();
    await prepared.run();
    const warmSeconds = (performance.now() - warm) / 1000;
    const times: number[] = [];
    // Repeat while the next run (as long as the last one) still fits this row's share.
    while (times.length < 10 && used() + (times.at(-1) ?? warmSeconds) <= share) {
      const t0 = performance.now();
      await prepared.run();
      times.push((performance.now() - t0) / 1000);
    }
    const seconds = times.length > 0 ? times.reduce((a, b) => a + b, 0) / times.length : warmSeconds;
    const rate = check.perRun / seconds;
    const how = times.length > 0 ? `mean of ${times.length} run(s) after a warm-up` : 'the warm-up run only (budget)';
    const extra = check.unit === 'steps/s' ? `, ${((attentionFlops / seconds) * 1e-9).toFixed(0)} GFLOP/s` : '';
    row(check.check, provider, `${rate.toFixed(rate < 10 ? 3 : 1)} ${check.unit}${extra} (${how})`, since);
  } catch (error) {
    row(check.check, provider, `ERROR ${(error as Error).message.split('\n')[0]}`, since);
  } finally {
    await prepared?.release();
  }
}
rmSync(directory, { recursive: true, force: true });

// ---- the table ----------------------------------------------------------------------------------
console.log('');
console.log('| check | provider | result | s |');
console.log('| --- | --- | --- | ---: |');
for (const r of rows) console.log(`| ${r.check} | ${r.provider} | ${r.result} | ${r.seconds.toFixed(1)} |`);
console.log('');
console.log(
  `gpu:check: ${elapsed().toFixed(0)} s of a ${budgetSeconds} s budget; WebGPU adapter ${adapterLine}; auto would choose ${diagnosis.auto.provider}; peak RSS ${(process.resourceUsage().maxRSS / 2 ** 20).toFixed(1)} GiB`,
);
const failed = rows.filter((r) => r.result.startsWith('FAIL') || r.result.startsWith('ERROR'));
if (failed.length > 0) {
  console.log(`gpu:check: ${failed.length} row(s) failed`);
  process.exitCode = 1;
}
