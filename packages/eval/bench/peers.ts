/**
 * `pnpm bench:peers`: this project beside PyTorch, in one run, on the same
 * configurations (issue 15's table):
 * - extraction on adm-fm28 (the real checkpoint, blocks 5/10/14 at t=150,
 *   batch 64) and on the 256x256 layout (random weights, block 24 at t=150,
 *   batch 2);
 * - one SGD step of the paper's attention head (block 24, 16x16 tokens from
 *   1024 channels, dim 1024, 8 heads, MLP x4, 2 blocks, batch 32) and of the
 *   DifFormer (blocks 19/24/30 x t 90/150/300, pooled to <= 16x16, the same
 *   head, batch 16 by default);
 * - the peak RSS of each side, each configuration and each side in its own
 *   process (`process.resourceUsage().maxRSS`, `getrusage` in Python).
 *
 * The PyTorch side is `peers/torch_peer.py`, standard torch modules written
 * to `../shared/fixtures/README.md`. Before timing, a parity check runs both
 * sides on small configurations with the same weights and inputs and stops
 * the run when any tensor is more than 1e-4 (relative to max(1, max|b|))
 * away. Without PyTorch the bench says so in one line and exits 0. Install
 * the peer on Debian: `apt-get install python3-torch libopenblas0-pthread`.
 *
 * Options:
 *   --quick              small configurations (a smoke run of a minute or two)
 *   --only a,b           configurations by name (extract-fm28, extract-256,
 *                        attention, difformer)
 *   --difformer-batch N  the DifFormer's batch (default 16; about 14 GiB here)
 *   --seconds S          minimum timed seconds per configuration and side (default 20)
 *   --threads N          intra-op threads of both sides (default: the CPU count)
 *   --python PATH        the Python with torch (default $DIFFSSL_PEER_PYTHON,
 *                        then /usr/bin/python3, then python3 on PATH)
 *   --no-parity          skip the parity check
 *
 * Figures are indicative on a shared machine: compare the ratios.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BuildContext, compileModuleTrainStep, crossEntropy, Graph, HostTensor, sgd, writeSafetensors, type RunnerOptions } from '@diffssl/core';
import { DifFormer, fusionKey } from '@diffssl/difformer';
import { EMBEDDED_MODEL, fixturePath, randomTensor, runHeadStep, secondsPerRun } from '@diffssl/testing';
import {
  ADM_PRESETS,
  AdmUNet,
  createFeatureExtractor,
  initialAdmWeights,
  admConfig,
  readTorchCheckpoint,
  seededNoise,
  unetLayout,
  type GuidedDiffusionFlags,
} from '@diffssl/unet';

const peerScript = fileURLToPath(new URL('./peers/torch_peer.py', import.meta.url));
const thisScript = fileURLToPath(import.meta.url);
const PARITY_TOLERANCE = 1e-4;

/** A U-Net extraction configuration. */
interface ExtractCase {
  kind: 'extract';
  flags: GuidedDiffusionFlags;
  /** A checkpoint both sides load; absent: random weights on each side, same layout. */
  checkpoint?: string;
  blocks: number[];
  timesteps: number[];
  batch: number;
}

/** A head training-step configuration (the attention head is the one-block, one-timestep DifFormer). */
interface HeadCase {
  kind: 'head';
  fusion: string;
  blocks: number[];
  timesteps: number[];
  dims: Record<string, number>;
  sizes: Record<string, number>;
  pre_pool_size: number;
  num_classes: number;
  batch: number;
}

type BenchCase = (ExtractCase | HeadCase) & { seconds: number };

interface SideResult {
  images_per_second?: number;
  steps_per_second?: number;
  seconds_per_run: number;
  peak_rss_bytes: number;
  threads?: number;
}

const fm28Flags = JSON.parse(readFileSync(EMBEDDED_MODEL.flagsFile, 'utf8')) as GuidedDiffusionFlags;
const paperFlags = ADM_PRESETS['256x256_diffusion_uncond'];

function headCase(flags: GuidedDiffusionFlags, blocks: number[], timesteps: number[], dim: number, heads: number, batch: number, classes = 1000): HeadCase {
  const layout = unetLayout(admConfig(flags));
  const dims: Record<string, number> = {};
  const sizes: Record<string, number> = {};
  for (const block of blocks) {
    dims[block] = layout.blocks[block - 1]!.channels;
    sizes[block] = layout.blocks[block - 1]!.resolution;
  }
  return {
    kind: 'head',
    fusion: `Use_CLS_Token:True:${dim},Insert_CLS_Token,Attention:${dim}:${heads}:4:2,Extract_CLS_Token`,
    blocks,
    timesteps,
    dims,
    sizes,
    pre_pool_size: 16,
    num_classes: classes,
    batch,
  };
}

/** The configurations by name: issue 15's table, or small ones under --quick. */
function benchCases(quick: boolean, difformerBatch: number): Record<string, ExtractCase | HeadCase> {
  const fm28 = EMBEDDED_MODEL.checkpoint;
  if (quick) {
    return {
      'extract-fm28': { kind: 'extract', flags: fm28Flags, checkpoint: fm28, blocks: [5, 10, 14], timesteps: [150], batch: 8 },
      // The 37-block layout of the paper's model at 32x32 (the fixture's random checkpoint).
      'extract-256': {
        kind: 'extract',
        flags: fixtureFlags('adm-37block-random'),
        checkpoint: fixturePath('adm-37block-random.pt'),
        blocks: [24],
        timesteps: [150],
        batch: 2,
      },
      attention: headCase(paperFlags, [24], [150], 64, 4, 4),
      difformer: headCase(paperFlags, [19, 24, 30], [90, 150, 300], 64, 4, 2),
    };
  }
  return {
    'extract-fm28': { kind: 'extract', flags: fm28Flags, checkpoint: fm28, blocks: [5, 10, 14], timesteps: [150], batch: 64 },
    'extract-256': { kind: 'extract', flags: paperFlags, blocks: [24], timesteps: [150], batch: 2 },
    attention: headCase(paperFlags, [24], [150], 1024, 8, 32),
    difformer: headCase(paperFlags, [19, 24, 30], [90, 150, 300], 1024, 8, difformerBatch),
  };
}

function fixtureFlags(model: string): GuidedDiffusionFlags {
  const bytes = readFileSync(fixturePath(`${model}.features.safetensors`));
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')) as { __metadata__: { config: string } };
  return JSON.parse(header.__metadata__.config) as GuidedDiffusionFlags;
}

function describeCase(name: string, c: ExtractCase | HeadCase): string {
  if (c.kind === 'extract') {
    const weights = c.checkpoint ? c.checkpoint.split('/').pop() : 'random weights';
    return `${name}: ${c.flags.image_size}x${c.flags.image_size} (${weights}), blocks ${c.blocks.join('/')} at t=${c.timesteps.join('/')}, batch ${c.batch}`;
  }
  const dim = c.fusion.match(/Attention:(\d+):(\d+)/)!;
  return `${name}: blocks ${c.blocks.join('/')} x t ${c.timesteps.join('/')}, dim ${dim[1]}, ${dim[2]} heads, MLP x4, 2 blocks, batch ${c.batch}, SGD step`;
}

// ---------------------------------------------------------------- our side (one configuration in this process)

function runnerOptions(threads: number): RunnerOptions {
  return { executionProviders: ['cpu'], intraOpThreads: threads };
}

async function oursExtract(c: ExtractCase, seconds: number, threads: number): Promise<SideResult> {
  const config = admConfig(c.flags);
  const unet = new AdmUNet(c.flags, c.checkpoint ? await readTorchCheckpoint(c.checkpoint) : initialAdmWeights(config, 0));
  const extractor = await createFeatureExtractor({ unet, blocks: c.blocks, timesteps: c.timesteps, batchSize: c.batch, runner: runnerOptions(threads) });
  const size = config.imageSize;
  const images = randomTensor([c.batch, config.inChannels, size, size], 1);
  let call = 0;
  // New noise ids every call, as new images would draw.
  const time = await secondsPerRun(() => extractor.extract(images, { ids: Array.from({ length: c.batch }, (_, i) => call++ * c.batch + i) }), seconds);
  await extractor.release();
  return { images_per_second: c.batch / time, seconds_per_run: time, peak_rss_bytes: process.resourceUsage().maxRSS * 1024 };
}

function buildDifFormer(c: HeadCase, seed: number): DifFormer {
  return new DifFormer({
    blocks: c.blocks.map((block) => ({ block, channels: c.dims[block]!, resolution: c.sizes[block]! })),
    firstPassBlocks: c.blocks,
    timesteps: c.timesteps,
    fusion: c.fusion,
    prePoolSize: c.pre_pool_size,
    numClasses: c.num_classes,
    seed,
  });
}

function headInputs(c: HeadCase, seed: number): Map<string, HostTensor<'float32'>> {
  const inputs = new Map<string, HostTensor<'float32'>>();
  let next = seed;
  for (const t of c.timesteps) {
    for (const block of c.blocks) {
      const side = c.sizes[block]!;
      inputs.set(fusionKey(t, block), randomTensor([c.batch, c.dims[block]!, side, side], next++));
    }
  }
  return inputs;
}

function labelsOf(batch: number, classes: number): HostTensor<'int64'> {
  return HostTensor.from(
    'int64',
    [batch],
    Array.from({ length: batch }, (_, i) => BigInt(i % classes)),
  );
}

async function oursHead(c: HeadCase, seconds: number, threads: number): Promise<SideResult> {
  const head = buildDifFormer(c, 0);
  const graph = new Graph();
  const context = new BuildContext(graph, head, { mode: 'train' });
  const inputs = headInputs(c, 1);
  const symbols = new Map([...inputs].map(([key, tensor]) => [key, graph.input(key, 'float32', ['batch', ...tensor.shape.slice(1)])]));
  const logits = head.forward(context, symbols);
  const step = await compileModuleTrainStep({
    context,
    loss: crossEntropy(logits, graph.input('labels', 'int64', ['batch'])),
    optimizer: sgd(),
    runner: runnerOptions(threads),
  });
  const feeds: Record<string, HostTensor> = { ...Object.fromEntries(inputs), labels: labelsOf(c.batch, c.num_classes) };
  const time = await secondsPerRun(() => step.run(feeds, { learningRate: 0.01 }), seconds);
  await step.release();
  return { steps_per_second: 1 / time, seconds_per_run: time, peak_rss_bytes: process.resourceUsage().maxRSS * 1024 };
}

// ---------------------------------------------------------------- parity (small configurations, same weights and inputs)

interface ParityCase {
  name: string;
  kind: 'unet' | 'head';
  prefix: string;
  [key: string]: unknown;
}

async function parity(python: string, threads: number): Promise<boolean> {
  const tensors = new Map<string, HostTensor>();
  const cases: ParityCase[] = [];
  const unetCases: { name: string; flags: GuidedDiffusionFlags; checkpoint: string; blocks: number[]; timesteps: number[] }[] = [
    { name: 'U-Net adm-fm28 (trained), 28x28', flags: fm28Flags, checkpoint: EMBEDDED_MODEL.checkpoint, blocks: [1, 5, 9, 10, 14, 19], timesteps: [50, 150] },
    // The paper's 37-block layout, random weights, at 64x64: at the fixture's 32x32 the middle block is 1x1 and its
    // GroupNorm normalizes groups of two values, which amplifies float32 rounding past 1e-4 on any two implementations.
    {
      name: 'U-Net 37-block layout (random checkpoint), 64x64',
      flags: { ...fixtureFlags('adm-37block-random'), image_size: 64, attention_resolutions: '8,4,2' },
      checkpoint: fixturePath('adm-37block-random.pt'),
      blocks: [1, 12, 19, 24, 30, 37],
      timesteps: [150],
    },
  ];
  for (const [index, u] of unetCases.entries()) {
    const prefix = `unet${index}/`;
    const unet = new AdmUNet(u.flags, await readTorchCheckpoint(u.checkpoint));
    const extractor = await createFeatureExtractor({ unet, blocks: u.blocks, timesteps: u.timesteps, batchSize: 2, runner: runnerOptions(threads) });
    const size = unet.config.imageSize;
    const images = randomTensor([2, 3, size, size], 7 + index);
    const ids = [11, 12];
    const features = await extractor.extract(images, { ids });
    await extractor.release();
    tensors.set(`${prefix}x_start`, images);
    for (const t of u.timesteps) {
      const plane = 3 * size * size;
      const noise = new Float32Array(2 * plane);
      ids.forEach((id, k) => noise.set(seededNoise(0, id, t, plane, 'test'), k * plane));
      tensors.set(`${prefix}t${t}/noise`, HostTensor.from('float32', [2, 3, size, size], noise));
    }
    for (const [key, tensor] of features) tensors.set(`${prefix}ours/${key}`, tensor);
    cases.push({ name: u.name, kind: 'unet', prefix, flags: u.flags, checkpoint: u.checkpoint, blocks: u.blocks, timesteps: u.timesteps });
  }
  const headCases: { name: string; config: HeadCase }[] = [
    { name: 'attention head (block 24, 256x256 layout, dim 32), one SGD step', config: headCase(paperFlags, [24], [150], 32, 4, 4, 10) },
    { name: 'DifFormer (blocks 19/24/30 x t 90/150/300, dim 32), one SGD step', config: headCase(paperFlags, [19, 24, 30], [90, 150, 300], 32, 4, 3, 10) },
  ];
  for (const [index, { name, config }] of headCases.entries()) {
    const prefix = `head${index}/`;
    const head = buildDifFormer(config, 5 + index);
    for (const [key, tensor] of head.stateDict()) tensors.set(`${prefix}param/${key}`, tensor);
    const inputs = headInputs(config, 100 + 10 * index);
    for (const [key, tensor] of inputs) tensors.set(`${prefix}input/${key}`, tensor);
    const labels = HostTensor.from(
      'int64',
      [config.batch],
      Array.from({ length: config.batch }, (_, i) => BigInt((3 * i + 1) % config.num_classes)),
    );
    tensors.set(`${prefix}labels`, labels);
    const lr = 0.05;
    const result = await runHeadStep(
      head,
      (context, graph) => {
        const symbols = new Map([...inputs].map(([key, tensor]) => [key, graph.input(key, 'float32', ['batch', ...tensor.shape.slice(1)])]));
        return { logits: head.forward(context, symbols), feeds: Object.fromEntries(inputs) };
      },
      labels,
      lr,
    );
    tensors.set(`${prefix}ours/logits`, result.logits);
    tensors.set(`${prefix}ours/loss`, result.loss);
    for (const [key, tensor] of result.after) tensors.set(`${prefix}ours/after/${key}`, tensor);
    cases.push({ name, kind: 'head', prefix, config, lr });
  }
  const directory = mkdtempSync(join(tmpdir(), 'diffssl-peers-'));
  try {
    const file = join(directory, 'parity.safetensors');
    writeFileSync(file, writeSafetensors(tensors, { cases: JSON.stringify(cases) }));
    const results = JSON.parse(lastLine(execFileSync(python, [peerScript, 'check', file, '--threads', String(threads)], { encoding: 'utf8' }))) as Record<
      string,
      { worst: number; worst_tensor: string; tensors: number }
    >;
    let ok = true;
    for (const { name } of cases) {
      const r = results[name]!;
      const pass = r.worst <= PARITY_TOLERANCE;
      ok &&= pass;
      console.log(
        `  parity ${pass ? 'ok  ' : 'FAIL'} ${name}: ${r.tensors} tensors, worst ${r.worst.toExponential(1)} (${r.worst_tensor}) of max(1, max|torch|), limit ${PARITY_TOLERANCE}`,
      );
    }
    return ok;
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- driver

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1]!;
}

function findPython(requested: string | undefined): { python: string; version: string; threads: number } | undefined {
  const candidates = [requested, process.env.DIFFSSL_PEER_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  for (const python of candidates) {
    const probe = spawnSync(python, [peerScript, 'probe'], { encoding: 'utf8' });
    if (probe.status === 0) {
      const { torch, threads } = JSON.parse(lastLine(probe.stdout)) as { torch: string; threads: number };
      return { python, version: torch, threads };
    }
    if (requested && python === requested) return undefined;
  }
  return undefined;
}

/** Runs one side of one configuration in a fresh process and reads its JSON line. */
function runSide(command: string, args: string[]): SideResult | { error: string } {
  const child = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  if (child.status !== 0) return { error: `exit ${child.status ?? child.signal}: ${lastLine(child.stderr || child.stdout || '')}` };
  return JSON.parse(lastLine(child.stdout)) as SideResult;
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      'difformer-batch': { type: 'string', default: '16' },
      seconds: { type: 'string' },
      threads: { type: 'string' },
      python: { type: 'string' },
      'no-parity': { type: 'boolean', default: false },
      side: { type: 'string' },
      case: { type: 'string' },
    },
  });
  const threads = Number(values.threads ?? availableParallelism());
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`bench:peers: --threads must be a positive integer; found ${values.threads}`);

  if (values.side === 'ours') {
    const c = JSON.parse(values.case!) as BenchCase;
    const result = c.kind === 'extract' ? await oursExtract(c, c.seconds, threads) : await oursHead(c, c.seconds, threads);
    console.log(JSON.stringify({ ...result, threads }));
    return;
  }

  const peer = findPython(values.python);
  if (!peer) {
    console.log(
      'bench:peers: skipped, PyTorch is not installed (no Python here imports torch); install the peer with `apt-get install python3-torch libopenblas0-pthread` (Debian) or pass --python',
    );
    return;
  }
  const quick = values.quick!;
  const difformerBatch = Number(values['difformer-batch']);
  const seconds = Number(values.seconds ?? (quick ? 2 : 20));
  const all = benchCases(quick, difformerBatch);
  const names = values.only ? values.only.split(',') : Object.keys(all);
  for (const name of names) if (!all[name]) throw new Error(`bench:peers: --only expects names from ${Object.keys(all).join(', ')}; found ${name}`);
  console.log(`bench:peers: torch ${peer.version} (${peer.python}), ${threads} threads on both sides${quick ? ', --quick configurations' : ''}`);

  if (!values['no-parity']) {
    console.log('parity, the same weights and inputs on both sides:');
    if (!(await parity(peer.python, threads))) {
      console.log('bench:peers: the peer does not compute what we compute (see above); no timings.');
      process.exitCode = 1;
      return;
    }
  }

  const node = process.execPath;
  const nodeArgs = ['--conditions=@diffssl/source', '--import', 'tsx', thisScript];
  for (const name of names) {
    const c = { ...all[name]!, seconds };
    console.log(describeCase(name, c));
    const ours = runSide(node, [...nodeArgs, '--side', 'ours', '--threads', String(threads), '--case', JSON.stringify(c)]);
    const torch = runSide(peer.python, [peerScript, 'bench', JSON.stringify(c), '--threads', String(threads)]);
    const unit = c.kind === 'extract' ? 'images/s' : 'steps/s';
    const rateOf = (r: SideResult) => (c.kind === 'extract' ? r.images_per_second! : r.steps_per_second!);
    const line = (label: string, r: SideResult | { error: string }) =>
      'error' in r
        ? `  ${label}: failed (${r.error})`
        : `  ${label}: ${rateOf(r).toFixed(3)} ${unit} (${r.seconds_per_run.toFixed(2)} s per batch), peak RSS ${gib(r.peak_rss_bytes)}`;
    console.log(line('ours   ', ours));
    console.log(line('PyTorch', torch));
    if (!('error' in ours) && !('error' in torch)) {
      console.log(
        `  ratio ours/PyTorch: speed ${(rateOf(ours) / rateOf(torch)).toFixed(2)}x, peak RSS ${(ours.peak_rss_bytes / torch.peak_rss_bytes).toFixed(2)}x`,
      );
    }
  }
}

await main();
