import { ConfigError } from '@diffssl/core';
import type { HeadOptionName } from './head-kind.js';

/** One kind-specific option: its `diffssl train` flag, help and parser. @public */
export interface HeadOptionDefinition {
  /** The flag with its argument, as commander spells it (`--pre-pool-size <N>`). */
  readonly flag: string;
  /** What it sets (the kinds that take it are added to the help from the registry). */
  readonly help: string;
  /**
   * Parses the flag's text.
   *
   * @throws `ConfigError` naming the flag, what was expected and what was found
   */
  parse(text: string): unknown;
}

const text = (value: string) => value;

function positiveInteger(flag: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim()) || Number(value) <= 0) throw new ConfigError(`${flag}: expected a positive integer; found '${value}'`);
    return Number(value);
  };
}

function integerList(flag: string): (value: string) => number[] {
  return (value) => {
    const parts = value.split(',').map((part) => part.trim());
    if (parts.some((part) => !/^\d+$/.test(part))) throw new ConfigError(`${flag}: expected integers separated by commas (e.g. 8,9,10); found '${value}'`);
    return parts.map(Number);
  };
}

/**
 * Every kind-specific option, by its name in `ProtocolSettings`. A kind lists
 * the ones it takes in `protocol.options`; the train command defines one flag
 * per entry and refuses a flag the chosen protocol does not take.
 *
 * @public
 */
export const HEAD_OPTIONS: Readonly<Record<HeadOptionName, HeadOptionDefinition>> = {
  prePoolSize: {
    flag: '--pre-pool-size <N>',
    help: "the reference's pre_pool_size: adaptive average pooling of each feature map to N x N (default: the protocol's)",
    parse: positiveInteger('--pre-pool-size'),
  },
  headArc: { flag: '--head-arc <arc>', help: "hidden layers before the classifier, as the reference's head_arc, e.g. 2048_1024", parse: text },
  fusionArc: { flag: '--fusion-arc <layers>', help: 'the attention head as a layer string', parse: text },
  normType: {
    flag: '--norm-type <layer|batch>',
    help: 'LayerNorm over [C,s,s] (default) or BatchNorm2d on each pooled block',
    parse: (value) => {
      if (value !== 'layer' && value !== 'batch') throw new ConfigError(`--norm-type: expected 'layer' or 'batch'; found '${value}'`);
      return value;
    },
  },
  feedbackFrom: {
    flag: '--feedback-from <list>',
    help: 'decoder blocks that feed back (default: every other decoder block)',
    parse: integerList('--feedback-from'),
  },
  feedbackArch: { flag: '--feedback-arch <arch>', help: 'feedback network arch (default C_B_R)', parse: text },
};

/** The flag of an option, without its argument (`--pre-pool-size`). @public */
export function flagOf(option: HeadOptionName): string {
  return HEAD_OPTIONS[option].flag.split(' ')[0]!;
}
