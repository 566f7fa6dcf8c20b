import { ConfigError } from '../../errors.js';
import type { SymbolicTensor } from '../../graph/graph.js';
import { conv2d } from '../../ops/conv2d.js';
import type { RandomGenerator } from '../../random/generator.js';
import type { BuildContext } from '../context.js';
import { init } from '../init.js';
import type { ModuleTensor } from '../module.js';
import { Layer } from './layer.js';
import { positiveSize } from './linear.js';

/** Options of {@link Conv2d}. @public */
export interface Conv2dLayerOptions {
  /** Square kernel size (default 1). */
  kernelSize?: number;
  /** Stride (default 1). */
  stride?: number;
  /** Zero padding on each side (default 0). */
  padding?: number;
  /** Groups (default 1; `inChannels` for depthwise). */
  groups?: number;
  /** Whether the layer has a bias (default true). */
  bias?: boolean;
}

/**
 * `nn.Conv2d(in, out, kernel, stride, padding, groups, bias)`: `weight`
 * [out, in/groups, k, k] and `bias` [out] with PyTorch's default
 * initialization.
 *
 * @public
 */
export class Conv2d extends Layer {
  /** [out, in/groups, k, k] */
  readonly weight: ModuleTensor;
  /** [out], when the layer has a bias. */
  readonly bias: ModuleTensor | undefined;
  private readonly options: Required<Conv2dLayerOptions>;

  /**
   * @param inChannels - input channels
   * @param outChannels - output channels
   * @param generator - draws the initial values
   * @param options - kernel size, stride, padding, groups, bias
   * @throws `ConfigError` when the channels do not divide into the groups
   */
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    generator: RandomGenerator,
    options: Conv2dLayerOptions = {},
  ) {
    super();
    this.options = { kernelSize: 1, stride: 1, padding: 0, groups: 1, bias: true, ...options };
    const { kernelSize, groups } = this.options;
    positiveSize('Conv2d', 'in_channels', inChannels);
    positiveSize('Conv2d', 'out_channels', outChannels);
    positiveSize('Conv2d', 'kernel_size', kernelSize);
    positiveSize('Conv2d', 'groups', groups);
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new ConfigError(`Conv2d: in_channels ${inChannels} and out_channels ${outChannels} must both be divisible by groups ${groups}`);
    }
    const fanIn = (inChannels / groups) * kernelSize * kernelSize;
    this.weight = this.registerParameter('weight', init.fanIn([outChannels, inChannels / groups, kernelSize, kernelSize], fanIn, generator));
    this.bias = this.options.bias ? this.registerParameter('bias', init.fanIn([outChannels], fanIn, generator)) : undefined;
  }

  /** The convolution of NCHW input. */
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    const { stride, padding, groups } = this.options;
    return conv2d(x, context.weight(this.weight), this.bias && context.weight(this.bias), { stride, padding, groups });
  }
}
