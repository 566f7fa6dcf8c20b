import { ConfigError } from '../../errors.js';
import type { SymbolicTensor } from '../../graph/graph.js';
import { linear } from '../../ops/linear.js';
import type { RandomGenerator } from '../../random/generator.js';
import type { BuildContext } from '../context.js';
import { init } from '../init.js';
import type { ModuleTensor } from '../module.js';
import { Layer } from './layer.js';

/**
 * Checks a size (channels, features, kernel size...) of a layer or model.
 *
 * @param layer - who checks, for the message (`'Linear'`)
 * @param name - the size's name, for the message (`'in_features'`)
 * @param value - the size
 * @returns `value`
 * @throws {@link ConfigError} `<layer>: <name> must be a positive integer; found <value>` unless `value` is a positive safe integer
 * @public
 */
export function positiveSize(layer: string, name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new ConfigError(`${layer}: ${name} must be a positive integer; found ${value}`);
  return value;
}

/**
 * `nn.Linear(in, out, bias)`: `weight` [out, in] and `bias` [out] with
 * PyTorch's default initialization.
 *
 * @public
 */
export class Linear extends Layer {
  /** [out, in] */
  readonly weight: ModuleTensor;
  /** [out], when the layer has a bias. */
  readonly bias: ModuleTensor | undefined;

  /**
   * @param inFeatures - input size
   * @param outFeatures - output size
   * @param generator - draws the initial values
   * @param options - `bias` (default true)
   */
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    generator: RandomGenerator,
    options: { bias?: boolean } = {},
  ) {
    super();
    positiveSize('Linear', 'in_features', inFeatures);
    positiveSize('Linear', 'out_features', outFeatures);
    this.weight = this.registerParameter('weight', init.fanIn([outFeatures, inFeatures], inFeatures, generator));
    this.bias = (options.bias ?? true) ? this.registerParameter('bias', init.fanIn([outFeatures], inFeatures, generator)) : undefined;
  }

  /** `x · weightᵀ + bias` over the last axis. */
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    return linear(x, context.weight(this.weight), this.bias && context.weight(this.bias));
  }
}
