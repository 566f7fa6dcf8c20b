/**
 * The `diffssl` command line: its commands and the error policy (one line, no
 * stack trace; with `--debug` or `DIFFSSL_DEBUG=1`, the line and then the full
 * stack, causes included).
 */
import { DiffSSLError } from '@diffssl/core';
import { Command, CommanderError } from 'commander';
import { registerDemoCommand } from './commands/demo.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerEvalCommand } from './commands/evaluate.js';
import { registerExportCommand } from './commands/export.js';
import { registerExtractCommand } from './commands/extract.js';
import { finetuneStep } from './commands/finetune-step.js';
import { headStep } from './commands/head-step.js';
import { displayOf, numberOption, runtimeOptions, stepRuntimeOf, type RuntimeFlags } from './commands/options.js';
import { registerProbeCommand } from './commands/probe.js';
import { registerSweepCommand } from './commands/sweep.js';
import { registerTrainCommand } from './commands/train.js';
import { unetRun } from './commands/unet-run.js';

/** Builds the command-line program (exported for tests). */
export function buildProgram(): Command {
  const program = new Command('diffssl')
    .description('DiffSSL: diffusion U-Net features, heads, DifFormer and DifFeed on ONNX Runtime')
    .exitOverride()
    .showHelpAfterError(false);
  // Commander's errors on one line (an unknown option and its suggestion together); subcommands inherit this.
  program.configureOutput({
    writeErr: (text) => process.stderr.write(text),
    outputError: (text, write) => write(`${text.trimEnd().replace(/\s*\n\s*/g, ' ')}\n`),
  });
  program.option('--debug', 'on an error, print its full stack (to report a bug); also DIFFSSL_DEBUG=1');
  registerTrainCommand(program);
  registerEvalCommand(program);
  registerExtractCommand(program);
  registerSweepCommand(program);
  registerProbeCommand(program);
  registerExportCommand(program);
  registerDemoCommand(program);
  const unetRunCommand = program
    .command('unet-run')
    .description('run a guided-diffusion U-Net on noised inputs and write block outputs, to compare with a reference implementation')
    .requiredOption('--checkpoint <file>', 'weights: .pt/.pth (torch zip) or .safetensors')
    .requiredOption('--config <flags.json|preset>', 'guided-diffusion flags as a JSON file, or a preset name')
    .requiredOption('--input <in.safetensors>', 'x (float32 [B,3,H,W], already noised), t (int64 [B]) and, for class-conditional models, y (int64 [B])')
    .requiredOption('--blocks <all|1,5,9>', "blocks to write: 'all' or block numbers (with --feedback-from: of the second pass)")
    .option('--with-output', 'also write the model output as out')
    .option('--feedback-from <blocks>', "DifFeed: decoder blocks whose first-pass outputs feed back, in order (e.g. '12,15')")
    .option('--feedback-arch <arch>', "DifFeed: the feedback networks' arch (e.g. C_B_R_C)")
    .option('--feedback-weights <fb.safetensors>', 'DifFeed: the feedback networks, feedback_layers.{i}.{j}.{weight|bias|running_mean|running_var}')
    .requiredOption('--out <out.safetensors>', 'the safetensors file to write');
  runtimeOptions(unetRunCommand).action(
    async (
      options: RuntimeFlags & {
        checkpoint: string;
        config: string;
        input: string;
        blocks: string;
        withOutput?: boolean;
        out: string;
        feedbackFrom?: string;
        feedbackArch?: string;
        feedbackWeights?: string;
      },
    ) => {
      const { log } = displayOf(options);
      const names = await unetRun({ ...options, ...stepRuntimeOf(options), log });
      log(`wrote ${names.join(', ')} to ${options.out}`);
    },
  );
  const headStepCommand = program
    .command('head-step')
    .description('one training step of a head (training mode, mean cross-entropy, plain SGD), to compare with a reference implementation')
    .requiredOption('--head <head.json>', 'the head: {"kind":"linear"|"fusion"|"layers", ...} with the reference\'s argument names')
    .requiredOption('--params <params.safetensors>', "parameters under the reference's names")
    .requiredOption('--input <input.safetensors>', 'labels (int64 [B]) and input [B,C,H,W] or t{T}/block{NN}')
    .requiredOption('--lr <number>', 'learning rate of the SGD step', numberOption('--lr'))
    .requiredOption('--out <out.safetensors>', 'logits, loss, grad/<name>, after_sgd/<name>, buffer_after/<name>');
  runtimeOptions(headStepCommand, { defaultProvider: 'cpu' }).action(
    async (options: RuntimeFlags & { head: string; params: string; input: string; lr: number; out: string }) => {
      const names = await headStep({ ...options, ...stepRuntimeOf(options) });
      displayOf(options).log(`wrote ${names.length} tensors to ${options.out}`);
    },
  );
  const finetuneStepCommand = program
    .command('finetune-step')
    .description('one fine-tuning step (the U-Net in training mode and a head, one plain SGD optimizer), to compare with a reference implementation')
    .requiredOption('--checkpoint <file>', 'U-Net weights: .pt/.pth (torch zip) or .safetensors')
    .requiredOption('--config <flags.json|preset>', 'guided-diffusion flags as a JSON file, or a preset name')
    .requiredOption('--head <head.json>', 'the head, as head-step reads it; linear with "block" and "t_list", or fusion')
    .requiredOption('--params <params.safetensors>', "the head's parameters under the reference's names")
    .requiredOption('--input <input.safetensors>', 'x_start (float32 [B,3,H,W]), noise/t{T} for each timestep, labels (int64 [B])')
    .requiredOption('--lr <number>', 'learning rate of the SGD step', numberOption('--lr'))
    .requiredOption('--out <out.safetensors>', 'logits, loss, grad/<name>, after_sgd/<name> (U-Net parameters as unet.<name>)');
  runtimeOptions(finetuneStepCommand, { defaultProvider: 'cpu' }).action(
    async (options: RuntimeFlags & { checkpoint: string; config: string; head: string; params: string; input: string; lr: number; out: string }) => {
      const names = await finetuneStep({ ...options, ...stepRuntimeOf(options) });
      displayOf(options).log(`wrote ${names.length} tensors to ${options.out}`);
    },
  );
  registerDoctorCommand(program);
  return program;
}

/** Whether `DIFFSSL_DEBUG` asks for stacks (`1`, `true` or `yes`). */
function debugFromEnvironment(): boolean {
  return /^(1|true|yes)$/i.test(process.env.DIFFSSL_DEBUG ?? '');
}

/**
 * What the CLI prints for an error: one line, `diffssl: <message> [<code>]`;
 * with `debug`, then the error's stack and the stack of each `cause`.
 *
 * @param error - what was thrown
 * @param debug - print the stacks too
 * @returns the text, ending with a newline
 */
export function formatError(error: unknown, debug: boolean): string {
  const message = error instanceof DiffSSLError ? `${error.message} [${error.code}]` : error instanceof Error ? error.message : String(error);
  let text = `diffssl: ${message.split('\n')[0]}\n`;
  if (!debug) return text;
  const seen = new Set<unknown>();
  for (let current: unknown = error, depth = 0; current !== undefined && !seen.has(current); current = (current as { cause?: unknown }).cause, depth++) {
    seen.add(current);
    const stack = current instanceof Error ? (current.stack ?? `${current.name}: ${current.message}`) : String(current);
    text += `${depth === 0 ? '' : 'caused by: '}${stack}\n`;
    if (!(current instanceof Error)) break;
  }
  return text;
}

/**
 * Runs the CLI; returns the exit code. Errors are one line, never a stack
 * trace, unless `--debug` is given or `DIFFSSL_DEBUG=1` is set.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    const debug = debugFromEnvironment() || program.opts<{ debug?: boolean }>().debug === true;
    process.stderr.write(formatError(error, debug));
    return 1;
  }
}
