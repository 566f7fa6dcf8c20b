import { attr } from '../graph/attributes.js';
import { ShapeError } from '../errors.js';
import { formatShape, isStaticDim } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES } from '../graph/op.js';
import { floatData, floatTensor, type FloatArray } from '../reference/kernel-utils.js';
import { ONNX_DATA_TYPE } from '../tensor/dtype.js';
import { add } from './add.js';
import { scalarLike } from './scalar-like.js';
import { div } from './div.js';
import { mul } from './mul.js';
import { standardize, standardizeGradient } from './normalization.js';
import { reshape } from './reshape.js';
import { sqrt } from './sqrt.js';
import { sub } from './sub.js';
import { sum } from './sum.js';

/** Attributes of {@link batchNorm}. */
export interface BatchNormAttributes {
  /** Batch statistics and running-stat update (true) or running statistics (false). */
  readonly training: boolean;
  readonly momentum: number;
  readonly epsilon: number;
}

function channelShape(x: { shape: readonly (number | string)[] }): number[] {
  return [x.shape[1] as number, ...x.shape.slice(2).map(() => 1)];
}

function statisticAxes(rank: number): number[] {
  return [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
}

/**
 * The `batchNorm` op (`torch.nn.BatchNorm1d/2d`). Inputs: x, weight, bias,
 * running mean, running var. Eval mode: one output, lowered as ONNX
 * BatchNormalization. Training mode: outputs y, new running mean, new running
 * var (unbiased variance, as PyTorch), lowered as reductions. Gradient with
 * respect to x, weight and bias; running statistics get none.
 */
export const batchNormOp = defineOp<BatchNormAttributes>({
  name: 'batchNorm',
  infer([x, ...parameters], { training }) {
    expectDtype('batchNorm', 'x', x!, FLOAT_TYPES);
    const channels = x!.shape[1];
    if (x!.shape.length < 2 || !isStaticDim(channels!)) throw new ShapeError(`batchNorm: expected x [N, C, ...] with static C; found ${formatShape(x!.shape)}`);
    ['weight', 'bias', 'runningMean', 'runningVar'].forEach((name, i) => {
      const info = parameters[i];
      if (!info || info.shape.length !== 1 || info.shape[0] !== channels) {
        throw new ShapeError(`batchNorm: expected ${name} of shape [${channels}]; found ${info ? formatShape(info.shape) : 'none'}`);
      }
    });
    const y = { dtype: x!.dtype, shape: x!.shape };
    const stat = { dtype: x!.dtype, shape: [channels] };
    return training ? [y, stat, stat] : [y];
  },
  lower(context, [x, weight, bias, runningMean, runningVar], { training, momentum, epsilon }) {
    if (!training) return context.emit('BatchNormalization', [x!, weight!, bias!, runningMean!, runningVar!], { epsilon: attr.float(epsilon) }, 1);
    const input = context.node.inputs[0]!;
    const dtype = input.dtype;
    const scalar = (value: number) => context.constant(scalarLike(context, value));
    const axes = context.int64s(statisticAxes(input.shape.length));
    const perChannel = context.int64s(channelShape(input));
    const batchMean = context.emit('ReduceMean', [x!, axes], { keepdims: attr.int(1) })[0]!;
    const centered = context.emit('Sub', [x!, batchMean])[0]!;
    const variance = context.emit('ReduceMean', [context.emit('Mul', [centered, centered])[0]!, axes], { keepdims: attr.int(1) })[0]!;
    const inverseStd = context.emit('Reciprocal', [context.emit('Sqrt', [context.emit('Add', [variance, scalar(epsilon)])[0]!])[0]!])[0]!;
    const normalized = context.emit('Mul', [centered, inverseStd])[0]!;
    const y = context.emit('Add', [
      context.emit('Mul', [normalized, context.emit('Reshape', [weight!, perChannel])[0]!])[0]!,
      context.emit('Reshape', [bias!, perChannel])[0]!,
    ])[0]!;
    const count = context.emit(
      'Cast',
      [context.emit('ReduceProd', [context.shapeTensor(statisticAxes(input.shape.length).map((a) => input.shape[a]!))], { keepdims: attr.int(0) })[0]!],
      {
        to: attr.int(ONNX_DATA_TYPE[dtype]),
      },
    )[0]!;
    const unbiased = context.emit('Div', [context.emit('Mul', [variance, count])[0]!, context.emit('Sub', [count, scalar(1)])[0]!])[0]!;
    const flat = context.int64s([input.shape[1] as number]);
    const update = (running: string, batch: string) =>
      context.emit('Add', [
        context.emit('Mul', [running, scalar(1 - momentum)])[0]!,
        context.emit('Mul', [context.emit('Reshape', [batch, flat])[0]!, scalar(momentum)])[0]!,
      ])[0]!;
    return [y, update(runningMean!, batchMean), update(runningVar!, unbiased)];
  },
  reference([x, weight, bias, runningMean, runningVar], { training, momentum, epsilon }) {
    const [n, c] = x!.shape as [number, number];
    const spatial = x!.shape.slice(2).reduce((a, b) => a * b, 1);
    const xd = floatData('batchNorm', x!);
    const [w, b, rm, rv] = [weight, bias, runningMean, runningVar].map((t) => floatData('batchNorm', t!)) as FloatArray[];
    const out = floatTensor(x!.dtype, x!.shape);
    const newMean = floatTensor(x!.dtype, [c]);
    const newVar = floatTensor(x!.dtype, [c]);
    const count = n * spatial;
    for (let channel = 0; channel < c; channel++) {
      const at = (i: number, s: number) => (i * c + channel) * spatial + s;
      let average = rm![channel]!;
      let variance = rv![channel]!;
      if (training) {
        let total = 0;
        for (let i = 0; i < n; i++) for (let s = 0; s < spatial; s++) total += xd[at(i, s)]!;
        average = total / count;
        let squares = 0;
        for (let i = 0; i < n; i++) for (let s = 0; s < spatial; s++) squares += (xd[at(i, s)]! - average) ** 2;
        variance = squares / count;
        newMean.data[channel] = (1 - momentum) * rm![channel]! + momentum * average;
        newVar.data[channel] = (1 - momentum) * rv![channel]! + (momentum * squares) / (count - 1);
      }
      const inverseStd = 1 / Math.sqrt(variance + epsilon);
      for (let i = 0; i < n; i++) for (let s = 0; s < spatial; s++) out.data[at(i, s)] = (xd[at(i, s)]! - average) * inverseStd * w![channel]! + b![channel]!;
    }
    return training ? [out, newMean, newVar] : [out];
  },
  gradient: ({ inputs, outputGradients, attributes, needsGradient }) => {
    const [x, weight, , runningMean, runningVar] = inputs as SymbolicTensor[];
    const dy = outputGradients[0];
    if (!dy) return [undefined, undefined, undefined, undefined, undefined];
    const perChannel = channelShape(x!);
    const axes = statisticAxes(x!.rank);
    const scale = reshape(weight!, perChannel);
    let dx: SymbolicTensor | undefined;
    let normalized: () => SymbolicTensor;
    if (attributes.training) {
      dx = needsGradient[0] ? standardizeGradient(x!, mul(dy, scale), axes, attributes.epsilon) : undefined;
      normalized = () => standardize(x!, axes, attributes.epsilon).normalized;
    } else {
      const inverseStd = div(1, sqrt(add(reshape(runningVar!, perChannel), attributes.epsilon)));
      dx = needsGradient[0] ? mul(dy, mul(scale, inverseStd)) : undefined;
      normalized = () => mul(sub(x!, reshape(runningMean!, perChannel)), inverseStd);
    }
    return [dx, needsGradient[1] ? sum(mul(dy, normalized()), axes) : undefined, needsGradient[2] ? sum(dy, axes) : undefined, undefined, undefined];
  },
});

/** Result of {@link batchNorm} in training mode. @public */
export interface BatchNormTrainingResult {
  /** The normalized output. */
  output: SymbolicTensor;
  /** `(1 - momentum) * runningMean + momentum * batchMean`. */
  runningMean: SymbolicTensor;
  /** `(1 - momentum) * runningVar + momentum * unbiasedBatchVar`. */
  runningVar: SymbolicTensor;
}

/**
 * Batch normalization as `torch.nn.BatchNorm2d` (any rank >= 2, channels on
 * axis 1). In eval mode (default) it uses the running statistics and returns
 * the output; in training mode it uses batch statistics and also returns the
 * updated running statistics.
 *
 * @param x - [N, C, ...]
 * @param parameters - weight, bias, runningMean, runningVar, each [C]
 * @param options - `training` (default false), `momentum` (default 0.1), `epsilon` (default 1e-5)
 * @public
 */
export function batchNorm(
  x: SymbolicTensor,
  parameters: { weight: SymbolicTensor; bias: SymbolicTensor; runningMean: SymbolicTensor; runningVar: SymbolicTensor },
  options?: { training?: false; momentum?: number; epsilon?: number },
): SymbolicTensor;
/**
 * Batch normalization in training mode: batch statistics, returning the
 * output and the updated running statistics.
 *
 * @param x - [N, C, ...]
 * @param parameters - weight, bias, runningMean, runningVar, each [C]
 * @param options - `training: true`, `momentum` (default 0.1), `epsilon` (default 1e-5)
 * @returns the output and the new running mean and variance
 * @public
 */
export function batchNorm(
  x: SymbolicTensor,
  parameters: { weight: SymbolicTensor; bias: SymbolicTensor; runningMean: SymbolicTensor; runningVar: SymbolicTensor },
  options: { training: true; momentum?: number; epsilon?: number },
): BatchNormTrainingResult;
export function batchNorm(
  x: SymbolicTensor,
  parameters: { weight: SymbolicTensor; bias: SymbolicTensor; runningMean: SymbolicTensor; runningVar: SymbolicTensor },
  options: { training?: boolean; momentum?: number; epsilon?: number } = {},
): SymbolicTensor | BatchNormTrainingResult {
  const attributes = { training: options.training ?? false, momentum: options.momentum ?? 0.1, epsilon: options.epsilon ?? 1e-5 };
  const outputs = batchNormOp.apply([x, parameters.weight, parameters.bias, parameters.runningMean, parameters.runningVar], attributes);
  return attributes.training ? { output: outputs[0]!, runningMean: outputs[1]!, runningVar: outputs[2]! } : outputs[0]!;
}
