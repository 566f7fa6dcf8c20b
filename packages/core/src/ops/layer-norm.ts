import { attr } from '../graph/attributes.js';
import { ShapeError } from '../errors.js';
import { dimsEqual, formatShape, isStaticShape } from '../graph/dim.js';
import type { SymbolicTensor, TensorInfo } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES } from '../graph/op.js';
import { normalizeAxis } from '../graph/shape.js';
import { HostTensor, shapeSize } from '../tensor/host-tensor.js';
import { broadcastIndices, floatData, floatTensor, type FloatArray } from '../reference/kernel-utils.js';
import { mul } from './mul.js';
import { standardize, standardizeGradient, standardizeGroups } from './normalization.js';
import { reduceToShape } from './reduce-to-shape.js';

/** Attributes of {@link layerNorm}. */
export interface LayerNormAttributes {
  /** First normalized axis; every axis from it on is normalized. */
  readonly axis: number;
  readonly epsilon: number;
  readonly hasWeight: boolean;
  readonly hasBias: boolean;
}

/**
 * The `layerNorm` op: normalization over the trailing axes from `axis`, then
 * an elementwise affine of the normalized shape. Lowered as ONNX
 * LayerNormalization. Gradient: the standardization gradient plus the affine's.
 */
export const layerNormOp = defineOp<LayerNormAttributes>({
  name: 'layerNorm',
  infer(inputs, { axis, hasWeight, hasBias }) {
    const x = inputs[0]!;
    expectDtype('layerNorm', 'x', x, FLOAT_TYPES);
    const normalized = x.shape.slice(axis);
    if (!isStaticShape(normalized)) throw new ShapeError(`layerNorm: expected static normalized dimensions; found ${formatShape(x.shape)} from axis ${axis}`);
    const params: [string, TensorInfo | undefined][] = [];
    if (hasWeight) params.push(['weight', inputs[1]]);
    if (hasBias) params.push(['bias', inputs[hasWeight ? 2 : 1]]);
    for (const [name, info] of params) {
      if (!info || info.shape.length !== normalized.length || info.shape.some((d, i) => !dimsEqual(d, normalized[i]!))) {
        throw new ShapeError(
          `layerNorm: expected ${name} of shape ${formatShape(normalized)} (x ${formatShape(x.shape)} from axis ${axis}); found ${info ? formatShape(info.shape) : 'none'}`,
        );
      }
    }
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  lower(context, inputs, { axis, epsilon, hasWeight, hasBias }) {
    const x = context.node.inputs[0]!;
    const normalizedShape = x.shape.slice(axis) as number[];
    const ones = () => {
      const value = HostTensor.zeros(x.dtype, normalizedShape).cast('float64');
      value.data.fill(1);
      return context.constant(value.cast(x.dtype));
    };
    const scale = hasWeight ? inputs[1]! : ones();
    const bias = hasBias ? [inputs[hasWeight ? 2 : 1]!] : [];
    return [context.emit('LayerNormalization', [inputs[0]!, scale, ...bias], { axis: attr.int(axis), epsilon: attr.float(epsilon) }, 1)[0]!];
  },
  reference(inputs, { axis, epsilon, hasWeight, hasBias }) {
    const x = inputs[0]!;
    const groupSize = shapeSize(x.shape.slice(axis));
    const out = floatTensor(x.dtype, x.shape);
    const od = out.data as FloatArray;
    standardizeGroups(floatData('layerNorm', x), od, groupSize, epsilon);
    const normalizedShape = x.shape.slice(axis);
    const apply = (parameter: HostTensor, combine: (a: number, b: number) => number) => {
      const values = floatData('layerNorm', parameter);
      const indices = broadcastIndices(normalizedShape, x.shape);
      for (let i = 0; i < od.length; i++) od[i] = combine(od[i]!, values[indices[i]!]!);
    };
    if (hasWeight) apply(inputs[1]!, (a, b) => a * b);
    if (hasBias) apply(inputs[hasWeight ? 2 : 1]!, (a, b) => a + b);
    return [out];
  },
  gradient: ({ inputs, outputGradients, attributes, needsGradient }) => {
    const x = inputs[0]!;
    const weight = attributes.hasWeight ? inputs[1] : undefined;
    const dy = outputGradients[0]!;
    const axes = x.shape.map((_, i) => i).slice(attributes.axis);
    const dNormalized = weight ? mul(dy, weight) : dy;
    const grads: (SymbolicTensor | undefined)[] = [needsGradient[0] ? standardizeGradient(x, dNormalized, axes, attributes.epsilon) : undefined];
    if (weight) {
      grads.push(needsGradient[1] ? reduceToShape(mul(dy, standardize(x, axes, attributes.epsilon).normalized), weight.shape) : undefined);
    }
    if (attributes.hasBias) grads.push(needsGradient[grads.length] ? reduceToShape(dy, inputs[grads.length]!.shape) : undefined);
    return grads;
  },
});

/**
 * Layer normalization over every axis from `axis` on (as `torch.nn.LayerNorm`
 * with `normalized_shape = x.shape[axis:]`; eps 1e-5 by default).
 *
 * @param x - the tensor
 * @param weight - elementwise scale of the normalized shape (optional)
 * @param bias - elementwise shift of the normalized shape (optional)
 * @param options - `axis` (default -1) and `epsilon` (default 1e-5)
 * @throws {@link ShapeError} when weight or bias does not have the normalized shape
 * @public
 */
export function layerNorm(
  x: SymbolicTensor,
  weight?: SymbolicTensor,
  bias?: SymbolicTensor,
  options: { axis?: number; epsilon?: number } = {},
): SymbolicTensor {
  const axis = normalizeAxis('layerNorm', options.axis ?? -1, x.rank);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return layerNormOp.apply(inputs, { axis, epsilon: options.epsilon ?? 1e-5, hasWeight: !!weight, hasBias: !!bias })[0]!;
}
