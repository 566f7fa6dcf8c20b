import { ConfigError } from '../../errors.js';
import type { SymbolicTensor } from '../../graph/graph.js';
import { batchNorm } from '../../ops/batch-norm.js';
import { groupNorm } from '../../ops/group-norm.js';
import { layerNorm } from '../../ops/layer-norm.js';
import { HostTensor } from '../../tensor/host-tensor.js';
import type { BuildContext } from '../context.js';
import { init } from '../init.js';
import type { ModuleTensor } from '../module.js';
import { Layer } from './layer.js';
import { positiveSize } from './linear.js';

/**
 * `nn.LayerNorm(normalized_shape, eps)`: normalizes over the trailing axes
 * given by `normalizedShape` (`[C, s, s]` normalizes all values of one
 * sample), with elementwise `weight` (ones) and `bias` (zeros) of that shape.
 *
 * @public
 */
export class LayerNorm extends Layer {
  /** Elementwise scale, shaped like `normalizedShape`. */
  readonly weight: ModuleTensor;
  /** Elementwise shift. */
  readonly bias: ModuleTensor;

  /**
   * @param normalizedShape - the trailing shape to normalize over
   * @param epsilon - added to the variance (default 1e-5)
   */
  constructor(
    readonly normalizedShape: readonly number[],
    readonly epsilon = 1e-5,
  ) {
    super();
    if (normalizedShape.length === 0) throw new ConfigError('LayerNorm: normalized_shape must have at least one dimension');
    normalizedShape.forEach((size) => positiveSize('LayerNorm', 'normalized_shape', size));
    this.weight = this.registerParameter('weight', init.ones(normalizedShape));
    this.bias = this.registerParameter('bias', init.zeros(normalizedShape));
  }

  /** Normalizes over the trailing `normalizedShape.length` axes. */
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    return layerNorm(x, context.weight(this.weight), context.weight(this.bias), { axis: x.rank - this.normalizedShape.length, epsilon: this.epsilon });
  }
}

/**
 * `nn.BatchNorm2d(C, eps, momentum)`: `weight`, `bias`, and the buffers
 * `running_mean`, `running_var` and `num_batches_tracked` (int64). In a
 * `'train'` build it normalizes with batch statistics and records the
 * running-statistic updates (unbiased variance, as PyTorch); in `'eval'` it uses
 * the running statistics. Applied several times in one training forward pass,
 * each application normalizes with its own batch statistics and updates the
 * running statistics (and `num_batches_tracked`) once, in order, as PyTorch does.
 *
 * @public
 */
export class BatchNorm2d extends Layer {
  /** [C] scale (ones). */
  readonly weight: ModuleTensor;
  /** [C] shift (zeros). */
  readonly bias: ModuleTensor;
  /** [C] running mean (zeros). */
  readonly runningMean: ModuleTensor;
  /** [C] running variance (ones). */
  readonly runningVar: ModuleTensor;
  /** Scalar int64 count of training steps. */
  readonly numBatchesTracked: ModuleTensor;

  /**
   * @param channels - C
   * @param options - `epsilon` (1e-5) and `momentum` (0.1)
   */
  constructor(
    readonly channels: number,
    readonly options: {
      /** Added to the variance (default 1e-5). */
      epsilon?: number;
      /** Weight of the batch statistics in the running-statistics update (default 0.1). */
      momentum?: number;
    } = {},
  ) {
    super();
    positiveSize('BatchNorm2d', 'num_features', channels);
    this.weight = this.registerParameter('weight', init.ones([channels]));
    this.bias = this.registerParameter('bias', init.zeros([channels]));
    this.runningMean = this.registerBuffer('running_mean', init.zeros([channels]));
    this.runningVar = this.registerBuffer('running_var', init.ones([channels]));
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', HostTensor.from('int64', [], [0n]));
  }

  /** Batch normalization in the context's mode. */
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    // In training, a second application in the same forward pass updates the running statistics from the first's result.
    const parameters = {
      weight: context.weight(this.weight),
      bias: context.weight(this.bias),
      runningMean: context.training ? context.bufferValue(this.runningMean) : context.weight(this.runningMean),
      runningVar: context.training ? context.bufferValue(this.runningVar) : context.weight(this.runningVar),
    };
    const epsilon = this.options.epsilon ?? 1e-5;
    if (!context.training) return batchNorm(x, parameters, { epsilon });
    const result = batchNorm(x, parameters, { training: true, epsilon, momentum: this.options.momentum ?? 0.1 });
    context.updateBuffer(this.runningMean, result.runningMean);
    context.updateBuffer(this.runningVar, result.runningVar);
    context.countStep(this.numBatchesTracked);
    return result.output;
  }
}

/**
 * `nn.GroupNorm(groups, C, eps)` with `weight` (ones) and `bias` (zeros) of
 * shape [C].
 *
 * @public
 */
export class GroupNorm extends Layer {
  /** [C] scale. */
  readonly weight: ModuleTensor;
  /** [C] shift. */
  readonly bias: ModuleTensor;

  /**
   * @param groups - number of groups (must divide C)
   * @param channels - C
   * @param epsilon - added to the variance (default 1e-5)
   * @throws `ConfigError` when the groups do not divide the channels
   */
  constructor(
    readonly groups: number,
    readonly channels: number,
    readonly epsilon = 1e-5,
  ) {
    super();
    positiveSize('GroupNorm', 'num_groups', groups);
    positiveSize('GroupNorm', 'num_channels', channels);
    if (channels % groups !== 0) throw new ConfigError(`GroupNorm: num_channels ${channels} must be divisible by num_groups ${groups}`);
    this.weight = this.registerParameter('weight', init.ones([channels]));
    this.bias = this.registerParameter('bias', init.zeros([channels]));
  }

  /** Group normalization of [N, C, ...]. */
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    return groupNorm(x, context.weight(this.weight), context.weight(this.bias), { groups: this.groups, epsilon: this.epsilon });
  }
}
