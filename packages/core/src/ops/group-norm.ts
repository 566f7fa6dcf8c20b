import { attr } from '../graph/attributes.js';
import { ShapeError } from '../errors.js';
import { formatShape, isStaticDim, isStaticShape, multiplyDims } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES, type LoweringContext } from '../graph/op.js';
import { expectPositiveInteger } from '../graph/shape.js';
import { shapeSize } from '../tensor/host-tensor.js';
import { floatData, floatTensor, type FloatArray } from '../reference/kernel-utils.js';
import { mul } from './mul.js';
import { scalarLike } from './scalar-like.js';
import { standardize, standardizeGradient, standardizeGroups } from './normalization.js';
import { reshape } from './reshape.js';
import { sum } from './sum.js';

/** Attributes of {@link groupNorm}. */
export interface GroupNormAttributes {
  readonly groups: number;
  readonly epsilon: number;
}

function perChannelShape(x: { shape: readonly (number | string)[] }): number[] {
  return [x.shape[1] as number, ...x.shape.slice(2).map(() => 1)];
}

/**
 * Groups of at most this many values get their moments by sequential Welford
 * updates, exactly as PyTorch's CPU kernel does for rows shorter than a SIMD
 * vector. Such tiny groups are ill-conditioned (x - mean is amplified by up
 * to 1/sqrt(eps)), so matching the reference's rounding there matters.
 */
const SEQUENTIAL_MOMENTS_LIMIT = 8;

function reducedMoments(context: LoweringContext, grouped: string): { average: string; variance: string } {
  const lastAxis = context.int64s([2]);
  const average = context.emit('ReduceMean', [grouped, lastAxis], { keepdims: attr.int(1) })[0]!;
  const centered = context.emit('Sub', [grouped, average])[0]!;
  const variance = context.emit('ReduceMean', [context.emit('Mul', [centered, centered])[0]!, lastAxis], { keepdims: attr.int(1) })[0]!;
  return { average, variance };
}

/** m1 += (x - m1) / k; m2 += (x - m1_old) * (x - m1_new); var = m2 / n. */
function welfordMoments(context: LoweringContext, grouped: string, size: number, scalar: (value: number) => string): { average: string; variance: string } {
  const element = (i: number) => context.emit('Slice', [grouped, context.int64s([i]), context.int64s([i + 1]), context.int64s([2])])[0]!;
  let average = element(0);
  let m2: string | undefined;
  for (let k = 2; k <= size; k++) {
    const value = element(k - 1);
    const delta = context.emit('Sub', [value, average])[0]!;
    average = context.emit('Add', [average, context.emit('Div', [delta, scalar(k)])[0]!])[0]!;
    const term = context.emit('Mul', [delta, context.emit('Sub', [value, average])[0]!])[0]!;
    m2 = m2 === undefined ? term : context.emit('Add', [m2, term])[0]!;
  }
  const variance = m2 === undefined ? context.emit('Mul', [average, scalar(0)])[0]! : context.emit('Div', [m2, scalar(size)])[0]!;
  return { average, variance };
}

/**
 * The `groupNorm` op (`torch.nn.GroupNorm`): statistics over each group of
 * C/G channels and all spatial positions, then a per-channel affine. Lowered
 * as per-group moments (ReduceMean, or sequential Welford updates for tiny
 * groups) and a per-channel `x * scale + shift`, the form of PyTorch's CPU kernel.
 */
export const groupNormOp = defineOp<GroupNormAttributes>({
  name: 'groupNorm',
  infer([x, weight, bias], { groups }) {
    expectDtype('groupNorm', 'x', x!, FLOAT_TYPES);
    expectPositiveInteger('groupNorm', 'groups', groups);
    const channels = x!.shape[1];
    if (x!.shape.length < 2 || !isStaticDim(channels!) || channels % groups !== 0 || !isStaticShape(x!.shape.slice(1))) {
      throw new ShapeError(
        `groupNorm: expected x [N, C, ...] with static C divisible by ${groups} groups and static spatial sizes; found ${formatShape(x!.shape)}`,
      );
    }
    for (const [name, info] of [
      ['weight', weight],
      ['bias', bias],
    ] as const) {
      if (info!.shape.length !== 1 || info!.shape[0] !== channels)
        throw new ShapeError(`groupNorm: expected ${name} of shape [${channels}]; found ${formatShape(info!.shape)}`);
    }
    return [{ dtype: x!.dtype, shape: x!.shape }];
  },
  lower(context, [x, weight, bias], { groups, epsilon }) {
    // PyTorch's CPU kernel form: per-group mean and rstd, then per-channel
    // scale = rstd * gamma and shift = beta - mean * scale, y = x * scale + shift.
    // (Same value as (x - mean) * rstd * gamma + beta, but the same float32
    // rounding as the reference where groups are tiny and ill-conditioned.)
    const input = context.node.inputs[0]!;
    const channels = input.shape[1] as number;
    const rest = (multiplyDims(...input.shape.slice(1)) as number) / groups;
    const batch = input.shape[0]!;
    const grouped = context.emit('Reshape', [x!, context.shapeTensor([batch, groups, rest])])[0]!;
    const scalar = (value: number) => context.constant(scalarLike(context, value));
    const { average, variance } = rest <= SEQUENTIAL_MOMENTS_LIMIT ? welfordMoments(context, grouped, rest, scalar) : reducedMoments(context, grouped);
    const epsilonConstant = scalar(epsilon);
    const inverseStd = context.emit('Reciprocal', [context.emit('Sqrt', [context.emit('Add', [variance, epsilonConstant])[0]!])[0]!])[0]!;
    // [N, G, 1] -> [N, C]: each group's statistic repeated over its channels.
    const perChannel = (value: string) =>
      context.emit('Reshape', [
        context.emit('Expand', [value, context.shapeTensor([batch, groups, channels / groups])])[0]!,
        context.shapeTensor([batch, channels]),
      ])[0]!;
    const scale = context.emit('Mul', [perChannel(inverseStd), weight!])[0]!;
    const shift = context.emit('Sub', [bias!, context.emit('Mul', [perChannel(average), scale])[0]!])[0]!;
    const spatialOnes = context.shapeTensor([batch, channels, ...input.shape.slice(2).map(() => 1)]);
    const scaled = context.emit('Mul', [x!, context.emit('Reshape', [scale, spatialOnes])[0]!])[0]!;
    return context.emit('Add', [scaled, context.emit('Reshape', [shift, spatialOnes])[0]!]);
  },
  reference([x, weight, bias], { groups, epsilon }) {
    const out = floatTensor(x!.dtype, x!.shape);
    const od = out.data as FloatArray;
    const channels = x!.shape[1]!;
    const spatial = shapeSize(x!.shape.slice(2));
    standardizeGroups(floatData('groupNorm', x!), od, (channels / groups) * spatial, epsilon);
    const w = floatData('groupNorm', weight!);
    const b = floatData('groupNorm', bias!);
    for (let i = 0; i < od.length; i++) {
      const channel = Math.floor(i / spatial) % channels;
      od[i] = od[i]! * w[channel]! + b[channel]!;
    }
    return [out];
  },
  gradient: ({ inputs, outputGradients, attributes, needsGradient }) => {
    const [x, weight] = inputs as [SymbolicTensor, SymbolicTensor, SymbolicTensor];
    const dy = outputGradients[0]!;
    const groupedShape = [x.shape[0]!, attributes.groups, -1];
    const grouped = reshape(x, groupedShape);
    const reduceAxes = [0, ...x.shape.slice(2).map((_, i) => i + 2)];
    const dNormalized = reshape(mul(dy, reshape(weight, perChannelShape(x))), groupedShape);
    const normalized = () => reshape(standardize(grouped, [2], attributes.epsilon).normalized, x.shape);
    return [
      needsGradient[0] ? reshape(standardizeGradient(grouped, dNormalized, [2], attributes.epsilon), x.shape) : undefined,
      needsGradient[1] ? sum(mul(dy, normalized()), reduceAxes) : undefined,
      needsGradient[2] ? sum(dy, reduceAxes) : undefined,
    ];
  },
});

/**
 * Group normalization as `torch.nn.GroupNorm(groups, C, eps)`.
 *
 * @param x - [N, C, ...] with static C and spatial sizes
 * @param weight - [C]
 * @param bias - [C]
 * @param options - `groups` (default 32, as guided-diffusion) and `epsilon` (default 1e-5)
 * @throws {@link ShapeError} when C is not divisible by the groups
 * @public
 */
export function groupNorm(
  x: SymbolicTensor,
  weight: SymbolicTensor,
  bias: SymbolicTensor,
  options: { groups?: number; epsilon?: number } = {},
): SymbolicTensor {
  return groupNormOp.apply([x, weight, bias], { groups: options.groups ?? 32, epsilon: options.epsilon ?? 1e-5 })[0]!;
}
