import {
  BuildContext,
  compileModel,
  ConfigError,
  createRunner,
  DTypeError,
  Graph,
  ShapeError,
  writeFileAtomic,
  writeSafetensors,
  type HostTensor,
  type SymbolicTensor,
} from '@diffssl/core';
import { DifFeed } from '@diffssl/diffeed';
import { AdmUNet, loadCheckpoint } from '@diffssl/unet';
import { readFlags } from '../pipeline/unet-source.js';
import { readTensorFile, type StepRuntimeOptions } from './options.js';

/** Options of {@link unetRun} (the `diffssl unet-run` command). @public */
export interface UNetRunOptions extends StepRuntimeOptions {
  /** `.pt`/`.pth` or `.safetensors` weights. */
  checkpoint: string;
  /** JSON file with guided-diffusion flags, or a preset name. */
  config: string;
  /** safetensors with `x` (float32 [B,3,H,W], already noised), `t` (int64 [B]) and, for class-conditional models, `y` (int64 [B]). */
  input: string;
  /** `all` or a comma-separated list of block numbers. */
  blocks: string;
  /** Also write the model output as `out`. */
  withOutput?: boolean;
  /** Where to write the safetensors result. */
  out: string;
  /** Receives status lines (default: none). */
  log?: (line: string) => void;
  /**
   * DifFeed's second pass: decoder blocks whose first-pass outputs feed back
   * (`12,15`). `blocks` then names the second pass's blocks.
   */
  feedbackFrom?: string;
  /** The feedback networks' arch string (`C_B_R_C`). */
  feedbackArch?: string;
  /** safetensors with the feedback networks under the reference's names `feedback_layers.{i}.{j}.*`. */
  feedbackWeights?: string;
}

/**
 * Parses `all` or `1,5,9` against a block count.
 *
 * @param text - the option's value
 * @param blockCount - N
 * @param option - the option's name, for the message (default `--blocks`)
 * @param sort - sort and deduplicate (default true); false keeps the order given
 * @throws `ConfigError` naming the option and the valid range
 * @public
 */
export function parseBlocks(text: string, blockCount: number, option = '--blocks', sort = true): number[] {
  if (text.trim() === 'all') return Array.from({ length: blockCount }, (_, i) => i + 1);
  const blocks = text.split(',').map((part) => part.trim());
  const numbers = blocks.map(Number);
  const bad = blocks.filter((part, i) => !/^\d+$/.test(part) || numbers[i]! < 1 || numbers[i]! > blockCount);
  if (bad.length > 0 || blocks.length === 0)
    throw new ConfigError(`${option}: expected 'all' or block numbers in 1..${blockCount} separated by commas; found '${text}'`);
  return sort ? [...new Set(numbers)].sort((a, b) => a - b) : numbers;
}

/**
 * Runs a guided-diffusion U-Net on given noised inputs and writes the
 * requested block outputs (`block01`, `block02`, ...) and optionally the
 * output (`out`) to a safetensors file, for comparison with a reference
 * implementation.
 *
 * @returns the names written
 * @throws typed DiffSSL errors for bad files, flags, inputs or blocks
 * @public
 */
export async function unetRun(options: UNetRunOptions): Promise<string[]> {
  const flags = await readFlags(options.config);
  const feedback = options.feedbackFrom ?? options.feedbackArch ?? options.feedbackWeights;
  if (feedback !== undefined && !(options.feedbackFrom && options.feedbackArch && options.feedbackWeights)) {
    throw new ConfigError("--feedback-from, --feedback-arch and --feedback-weights go together: give all three for DifFeed's second pass");
  }
  if (feedback !== undefined && options.withOutput)
    throw new ConfigError('--with-output is not available with --feedback-from (the second pass is read at --blocks)');
  const input = await readTensorFile(options.input, '--input');
  const x = input.get('x');
  const t = input.get('t');
  if (!x || !t) throw new ConfigError(`--input: expected tensors 'x' and 't' in ${options.input}; found ${[...input.keys()].join(', ') || 'none'}`);
  if (x.dtype !== 'float32') throw new DTypeError(`--input: x must be float32; found ${x.dtype}`);
  if (t.dtype !== 'int64' || t.rank !== 1 || t.shape[0] !== x.shape[0])
    throw new ShapeError(`--input: t must be int64 [${x.shape[0]}]; found ${t.dtype}[${t.shape.join(', ')}]`);
  const unet = new AdmUNet(flags, await loadCheckpoint(options.checkpoint));
  const steps = unet.config.diffusionSteps;
  const bad = t.toArray().find((v) => !(Number.isInteger(v) && v >= 0 && v < steps));
  if (bad !== undefined) throw new ConfigError(`--input: timestep ${bad} is outside [0, ${steps})`);
  const blocks = parseBlocks(options.blocks, unet.blockCount);
  const graph = new Graph();
  const size = unet.config.imageSize;
  const xInput = graph.input('x', 'float32', ['batch', unet.config.inChannels, size, size]);
  if (x.rank !== 4 || x.shape[1] !== unet.config.inChannels || x.shape[2] !== size || x.shape[3] !== size) {
    throw new ShapeError(`--input: x must be [B, ${unet.config.inChannels}, ${size}, ${size}] for this model; found [${x.shape.join(', ')}]`);
  }
  const tInput = graph.input('t', 'int64', ['batch']);
  const feeds: Record<string, HostTensor> = { x, t };
  let classLabels: SymbolicTensor | undefined;
  const y = input.get('y');
  const classes = unet.config.numClasses;
  if (classes !== undefined) {
    if (!y)
      throw new ConfigError(`--input: this model is class-conditional (${classes} classes); add class labels y (int64 [${x.shape[0]}]) to ${options.input}`);
    if (y.dtype !== 'int64' || y.rank !== 1 || y.shape[0] !== x.shape[0])
      throw new ShapeError(`--input: y must be int64 [${x.shape[0]}]; found ${y.dtype}[${y.shape.join(', ')}]`);
    const badLabel = y.toArray().find((v) => !(Number.isInteger(v) && v >= 0 && v < classes));
    if (badLabel !== undefined) throw new ConfigError(`--input: class label ${badLabel} is outside 0..${classes - 1}`);
    classLabels = graph.input('y', 'int64', ['batch']);
    feeds.y = y;
  } else if (y) {
    throw new ConfigError(`--input: ${options.input} has class labels y, but the model is unconditional (class_cond is not set in ${options.config})`);
  }
  const outputs: Record<string, SymbolicTensor> = {};
  const blockName = (block: number) => `block${String(block).padStart(2, '0')}`;
  if (options.feedbackFrom) {
    const difFeed = new DifFeed({
      unet,
      feedbackFrom: parseBlocks(options.feedbackFrom, unet.blockCount, '--feedback-from', false),
      arch: options.feedbackArch!,
    });
    difFeed.loadStateDict(await readTensorFile(options.feedbackWeights!, '--feedback-weights'), {
      allowMissing: (name) => name.endsWith('.num_batches_tracked'),
    });
    const passes = difFeed.buildPasses(new BuildContext(graph, difFeed, { mode: 'eval' }), {
      xt: xInput,
      timesteps: tInput,
      classLabels,
      firstPassBlocks: [],
      secondPassBlocks: blocks,
    });
    for (const [source, tensor] of passes.feedback) outputs[`feedback/${source}/output`] = tensor;
    for (const block of blocks) outputs[blockName(block)] = passes.second.get(block)!;
  } else {
    const built = unet.build(graph, { x: xInput, timesteps: tInput, classLabels, taps: blocks, output: options.withOutput ?? false });
    for (const block of blocks) outputs[blockName(block)] = built.blocks.get(block)!;
    if (built.output) outputs.out = built.output;
  }
  const runner = await createRunner(compileModel({ outputs }), {
    executionProviders: options.providers ?? ['auto'],
    strict: options.strict ?? false,
    ...(options.threads ? { intraOpThreads: options.threads } : {}),
    onWarning: options.log,
    ...(options.onPlacement ? { onPlacement: options.onPlacement } : {}),
  });
  options.log?.(
    `unet-run: ${unet.blockCount}-block U-Net, batch ${x.shape[0]}, ${options.feedbackFrom ? `feedback from ${options.feedbackFrom}, second-pass ` : ''}blocks ${blocks.join(',')}${outputs.out ? ' + output' : ''}, provider ${runner.provider}`,
  );
  try {
    const result = await runner.run(feeds);
    await writeFileAtomic(options.out, writeSafetensors(new Map(Object.keys(outputs).map((name) => [name, result[name]!]))));
    return Object.keys(outputs);
  } finally {
    await runner.release();
  }
}
