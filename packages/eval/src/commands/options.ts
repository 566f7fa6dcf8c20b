/**
 * What several commands share: option parsers, the runtime and data flags,
 * and readers of the files that options name. A command imports these from
 * here, never from another command's module.
 */
import { readFile } from 'node:fs/promises';
import {
  compileModel,
  ConfigError,
  createRunner,
  formatPlacement,
  Graph,
  readSafetensors,
  relu,
  type ExecutionProvider,
  type HostTensor,
  type RunnerOptions,
} from '@diffssl/core';
import { InvalidArgumentError, type Command } from 'commander';
import { parseClassNames } from '../pipeline/run.js';
import type { Scorer } from '../pipeline/sweep.js';
import type { ProgressOptions } from '../progress.js';
import type { UNetPrecision } from '@diffssl/unet';

/** What {@link runtimeOptions} adds to a command's flags. */
export interface RuntimeFlags {
  /** `--provider`: execution providers, comma-separated (default `auto`). */
  provider?: string;
  /** `--strict`: fail instead of falling back when a named provider is unavailable. */
  strict?: boolean;
  /** `--threads`: threads inside one op. */
  threads?: number;
  /** `--quiet`: no progress bars or status lines. */
  quiet?: boolean;
  /** `--verbose`: print where each graph's nodes ran (placement summary). */
  verbose?: boolean;
  /** `--precision` (commands with {@link precisionOption}). */
  precision?: UNetPrecision;
}

/** A commander parser for a finite number, with a one-line error naming the option. */
export function numberOption(option: string): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (value.trim() === '' || !Number.isFinite(number)) throw new InvalidArgumentError(`${option}: expected a number; found '${value}'`);
    return number;
  };
}

/** A commander parser for a positive integer. */
export function positiveIntegerOption(option: string): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (!/^\d+$/.test(value.trim()) || number <= 0) throw new InvalidArgumentError(`${option}: expected a positive integer; found '${value}'`);
    return number;
  };
}

/** A commander parser for a non-negative integer (seeds, timesteps). */
export function integerOption(option: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`${option}: expected a non-negative integer; found '${value}'`);
    return Number(value);
  };
}

/** A commander parser for a comma-separated list of non-negative integers. */
export function integerListOption(option: string): (value: string) => number[] {
  return (value) => {
    const parts = value.split(',').map((part) => part.trim());
    if (parts.some((part) => !/^\d+$/.test(part)))
      throw new InvalidArgumentError(`${option}: expected integers separated by commas (e.g. 8,9,10); found '${value}'`);
    return parts.map(Number);
  };
}

const PROVIDER_NAMES = ['auto', 'cuda', 'webgpu', 'cpu'];

/**
 * Execution providers from `--provider` (`auto`, `cuda`, `cuda,cpu`, ...). A
 * list that names neither `cpu` nor `auto` ends with `auto`, so a named
 * provider that is unavailable falls back (with one warning) instead of
 * failing; `--strict` makes it fail.
 *
 * @throws `InvalidArgumentError` for a name that is not a provider
 */
export function parseProviders(list: string): ExecutionProvider[] {
  const names = list.split(',').map((p) => p.trim());
  const unknown = names.filter((name) => !PROVIDER_NAMES.includes(name));
  if (unknown.length > 0) throw new InvalidArgumentError(`--provider: expected auto, cuda, webgpu or cpu, comma-separated; found '${list}'`);
  if (!names.includes('cpu') && !names.includes('auto')) names.push('auto');
  return names as ExecutionProvider[];
}

/** The options every data-reading command takes. */
export function dataOptions(command: Command, options: { required?: boolean } = {}): Command {
  const add = options.required === false ? command.option.bind(command) : command.requiredOption.bind(command);
  return add('--data <dir>', 'data: IDX files (MNIST names, gzipped or not) or train/<class>/ and val/<class>/ image folders')
    .option('--train-limit <N>', 'use the first N training images (file order)', positiveIntegerOption('--train-limit'))
    .option('--test-limit <N>', 'use the first N test images', positiveIntegerOption('--test-limit'))
    .option('--subset-list <file>', 'training images to use, one file name per line (semi-supervised runs)')
    .option('--class-names <names>', "class names of IDX data: 'fashion-mnist' or names separated by commas", parseClassNames)
    .option('--resize', "resize IDX or array images of another size than the U-Net's (BICUBIC, center crop; random crops in training)");
}

/** The options of commands that run a U-Net. */
export function unetOptions(command: Command): Command {
  return command
    .option('--checkpoint <file>', 'U-Net weights: .pt/.pth (torch zip) or .safetensors')
    .option('--config <flags.json|preset>', 'guided-diffusion flags (a JSON file) or a preset name such as 256x256_diffusion_uncond');
}

const PRECISIONS: readonly UNetPrecision[] = ['float32', 'float16', 'int8'];

/** A commander parser for `--precision`: one of float32, float16, int8. */
export function parsePrecision(value: string): UNetPrecision {
  if (!(PRECISIONS as readonly string[]).includes(value)) throw new InvalidArgumentError(`--precision: expected ${PRECISIONS.join(', ')}; found '${value}'`);
  return value as UNetPrecision;
}

/** The `--precision` option of the commands that extract frozen U-Net features. */
export function precisionOption(command: Command): Command {
  return command.option(
    '--precision <float32|float16|int8>',
    "the U-Net's compute precision for frozen features: float32 (default), float16, or int8 (dynamically quantized convolutions); part of the feature-cache key",
    parsePrecision,
  );
}

/** The `--provider` help, shared by every command that runs a model. */
const PROVIDER_HELP =
  'execution providers in order, comma-separated: auto (CUDA if installed, then WebGPU on a hardware adapter, then CPU; silent), cuda, webgpu, cpu. A named provider that is unavailable falls back with a warning';

/**
 * Session and display options: `--provider`, `--strict`, `--threads`, `--quiet`, `--verbose`.
 * Under `--strict`, before the command does any work, the named providers are
 * asked to open a one-op model, so an unavailable one fails the command at once.
 *
 * @param command - the command to add them to
 * @param options - `defaultProvider` (default `auto`; the reference-check commands use `cpu`)
 */
export function runtimeOptions(command: Command, options: { defaultProvider?: string } = {}): Command {
  return command
    .option(
      '--provider <list>',
      PROVIDER_HELP,
      (value: string) => {
        parseProviders(value);
        return value;
      },
      options.defaultProvider ?? 'auto',
    )
    .option('--strict', 'fail instead of falling back when a named provider is unavailable')
    .option('--threads <N>', "threads inside one op (default: ONNX Runtime's choice)", positiveIntegerOption('--threads'))
    .option('--quiet', 'no progress bars or status lines')
    .option('--verbose', "print each graph's placement: the share of its FLOPs per execution provider and the nodes that fell back")
    .hook('preAction', async (_command, action) => {
      const flags = action.opts<RuntimeFlags>();
      // `auto` alone never fails: only named providers are checked.
      if (flags.strict && parseProviders(flags.provider ?? 'auto').some((p) => p !== 'auto')) await checkProviders(runnerOf(flags));
    });
}

/**
 * Opens a one-op model with the given session options and releases it: under
 * `strict`, fails with the error the command's own sessions would raise.
 *
 * @throws `ProviderUnavailableError` when a named provider is unavailable under `strict`
 */
export async function checkProviders(options: RunnerOptions): Promise<void> {
  const graph = new Graph();
  const { onPlacement: _placement, ...sessionOptions } = options;
  const runner = await createRunner(compileModel({ outputs: { y: relu(graph.input('x', 'float32', [1])) } }), { ...sessionOptions, onWarning: () => {} });
  await runner.release();
}

/**
 * A runner's `onPlacement` that writes the placement summary of each graph
 * (after its first run) as status lines.
 *
 * @param log - where the lines go (default standard error)
 */
export function placementLogger(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): NonNullable<RunnerOptions['onPlacement']> {
  return (report, outputNames) => {
    const shown = outputNames.slice(0, 3).join(', ');
    const label = `the graph of ${outputNames.length > 3 ? `${shown} and ${outputNames.length - 3} more outputs` : shown}`;
    for (const line of formatPlacement(report, label)) log(line);
  };
}

/** Session options from the runtime options. */
export function runnerOf(options: RuntimeFlags): RunnerOptions {
  return {
    executionProviders: parseProviders(options.provider ?? 'auto'),
    ...(options.strict ? { strict: true } : {}),
    ...(options.threads ? { intraOpThreads: options.threads } : {}),
    ...(options.verbose ? { onPlacement: placementLogger() } : {}),
  };
}

/**
 * The session options of the commands that run one graph and write its
 * outputs (`unet-run`, `head-step`, `finetune-step`), as their APIs take them.
 *
 * @public
 */
export interface StepRuntimeOptions {
  /** Execution providers in order (default: `auto` for `unetRun`, `cpu` for `headStep` and `finetuneStep`). */
  providers?: readonly ExecutionProvider[];
  /** Fail with `ProviderUnavailableError` instead of falling back when a named provider is unavailable. */
  strict?: boolean;
  /** Threads inside one op (default: ONNX Runtime's choice). */
  threads?: number | undefined;
  /** Receives the graph's placement after its run (`--verbose`). */
  onPlacement?: RunnerOptions['onPlacement'];
}

/** {@link StepRuntimeOptions} from the runtime flags (`--provider`, `--strict`, `--threads`, `--verbose`). */
export function stepRuntimeOf(flags: RuntimeFlags): StepRuntimeOptions {
  const runner = runnerOf(flags);
  return { providers: runner.executionProviders!, strict: runner.strict ?? false, threads: flags.threads, onPlacement: runner.onPlacement };
}

/** Progress mode and status-line writer from the runtime options. */
export function displayOf(options: RuntimeFlags): { progress: ProgressOptions['mode']; log: (line: string) => void } {
  return options.quiet ? { progress: 'off', log: () => {} } : { progress: 'auto', log: (line) => process.stderr.write(`${line}\n`) };
}

const SCORERS: readonly Scorer[] = ['linear', 'ridge', 'knn'];

/** Checks a scorer name. */
export function parseScorer(value: string): Scorer {
  if (!(SCORERS as readonly string[]).includes(value)) throw new InvalidArgumentError(`--scorer: expected linear, ridge or knn; found '${value}'`);
  return value as Scorer;
}

/** Reads a JSON file with a message naming the option. */
export async function readJsonFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`${what}: cannot read ${path}: ${(cause as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`${what}: ${path} is not valid JSON: ${(cause as Error).message}`);
  }
}

/** Reads a safetensors file with a message naming the option. */
export async function readTensorFile(path: string, what: string): Promise<Map<string, HostTensor>> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new ConfigError(`${what}: cannot read ${path}: ${(cause as Error).message}`);
  }
  return readSafetensors(bytes).tensors;
}

/** BatchNorm buffers a parameters file may leave out (running mean 0, variance 1, count 0), as the reference-check commands allow. */
export function isBatchNormBuffer(name: string): boolean {
  return /(^|\.)(running_mean|running_var|num_batches_tracked)$/.test(name);
}
