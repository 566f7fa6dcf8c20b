import { attr } from '../graph/attributes.js';
import { ShapeError } from '../errors.js';
import { formatShape, isStaticDim, isStaticShape, multiplyDims } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES } from '../graph/op.js';
import { expectPositiveInteger } from '../graph/shape.js';
import { HostTensor, shapeSize } from '../tensor/host-tensor.js';
import { floatData, floatTensor, type FloatArray } from '../reference/kernel-utils.js';
import { mul } from './mul.js';
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
 * The `groupNorm` op (`torch.nn.GroupNorm`): statistics over each group of
 * C/G channels and all spatial positions, then a per-channel affine. Lowered
 * as Reshape + InstanceNormalization + Reshape + Mul + Add.
 */
export const groupNormOp = defineOp<GroupNormAttributes>({
  name: 'groupNorm',
  infer([x, weight, bias], { groups }) {
    expectDtype('groupNorm', 'x', x!, FLOAT_TYPES);
    expectPositiveInteger('groupNorm', 'groups', groups);
    const channels = x!.shape[1];
    if (x!.shape.length < 2 || !isStaticDim(channels!) || channels % groups !== 0 || !isStaticShape(x!.shape.slice(1))) {
      throw new ShapeError(`groupNorm: expected x [N, C, ...] with static C divisible by ${groups} groups and static spatial sizes; found ${formatShape(x!.shape)}`);
    }
    for (const [name, info] of [['weight', weight], ['bias', bias]] as const) {
      if (info!.shape.length !== 1 || info!.shape[0] !== channels) throw new ShapeError(`groupNorm: expected ${name} of shape [${channels}]; found ${formatShape(info!.shape)}`);
    }
    return [{ dtype: x!.dtype, shape: x!.shape }];
  },
  lower(context, [x, weight, bias], { groups, epsilon }) {
    const input = context.node.inputs[0]!;
    const rest = (multiplyDims(...input.shape.slice(1)) as number) / groups;
    const grouped = context.emit('Reshape', [x!, context.shapeTensor([input.shape[0]!, groups, rest])])[0]!;
    const ones = HostTensor.zeros('float64', [groups]);
    ones.data.fill(1);
    const normalized = context.emit('InstanceNormalization', [grouped, context.constant(ones.cast(input.dtype)), context.constant(HostTensor.zeros(input.dtype, [groups]))], {
      epsilon: attr.float(epsilon),
    })[0]!;
    const restored = context.emit('Reshape', [normalized, context.shapeTensor(input.shape)])[0]!;
    const channelShape = context.int64s(perChannelShape(input));
    const scaled = context.emit('Mul', [restored, context.emit('Reshape', [weight!, channelShape])[0]!])[0]!;
    return context.emit('Add', [scaled, context.emit('Reshape', [bias!, channelShape])[0]!]);
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
export function groupNorm(x: SymbolicTensor, weight: SymbolicTensor, bias: SymbolicTensor, options: { groups?: number; epsilon?: number } = {}): SymbolicTensor {
  return groupNormOp.apply([x, weight, bias], { groups: options.groups ?? 32, epsilon: options.epsilon ?? 1e-5 })[0]!;
}
