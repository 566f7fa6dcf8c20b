import { attr } from '../graph/attributes.js';
import { DTypeError, ShapeError } from '../errors.js';
import { dimsEqual, formatShape, isStaticDim, multiplyDims, type Dim } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp } from '../graph/op.js';
import { normalizeAxis } from '../graph/shape.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { slice } from './slice.js';

/** Attributes of {@link concat}. */
export interface ConcatAttributes {
  readonly axis: number;
}

function addDims(dims: readonly Dim[]): Dim {
  if (dims.every(isStaticDim)) return (dims as number[]).reduce((a, b) => a + b, 0);
  // Named sizes along the concat axis: only equal ones can be summed exactly.
  if (dims.every((d) => dimsEqual(d, dims[0]!))) return multiplyDims(dims.length, dims[0]!);
  throw new ShapeError(`concat: cannot add sizes ${dims.join(', ')} along the concat axis; use static sizes there`);
}

/** The `concat` op. Gradient: slices of dy. */
export const concatOp = defineOp<ConcatAttributes>({
  name: 'concat',
  infer(inputs, { axis }) {
    const first = inputs[0]!;
    for (const [index, input] of inputs.entries()) {
      if (input.dtype !== first.dtype) throw new DTypeError(`concat: expected every input of dtype ${first.dtype}; input ${index} is ${input.dtype}`);
      if (input.shape.length !== first.shape.length || input.shape.some((d, i) => i !== axis && !dimsEqual(d, first.shape[i]!))) {
        throw new ShapeError(`concat: input ${index} has shape ${formatShape(input.shape)}; expected ${formatShape(first.shape)} except along axis ${axis}`);
      }
    }
    const shape = [...first.shape];
    shape[axis] = addDims(inputs.map((input) => input.shape[axis]!));
    return [{ dtype: first.dtype, shape }];
  },
  lower: (context, inputs, { axis }) => context.emit('Concat', inputs, { axis: attr.int(axis) }),
  reference(inputs, { axis }) {
    const first = inputs[0]!;
    const shape = [...first.shape];
    shape[axis] = inputs.reduce((total, t) => total + t.shape[axis]!, 0);
    const out = HostTensor.zeros(first.dtype, shape);
    const outer = first.shape.slice(0, axis).reduce((a, b) => a * b, 1);
    const inner = first.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const destination = out.data as unknown as { [i: number]: number | bigint };
    let start = 0;
    for (const input of inputs) {
      const source = input.contiguous().data as unknown as ArrayLike<number | bigint>;
      const chunk = input.shape[axis]! * inner;
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < chunk; i++) destination[o * shape[axis]! * inner + start * inner + i] = source[o * chunk + i]!;
      }
      start += input.shape[axis]!;
    }
    return [out];
  },
  gradient: ({ inputs, outputGradients, attributes, needsGradient }) => {
    let start = 0;
    return inputs.map((input, index) => {
      const size = input.shape[attributes.axis]!;
      if (!isStaticDim(size)) throw new ShapeError(`concat gradient: needs a static size along axis ${attributes.axis}; found ${size}`);
      const piece = needsGradient[index] ? slice(outputGradients[0]!, [start], [start + size], [attributes.axis]) : undefined;
      start += size;
      return piece;
    });
  },
});

/**
 * Concatenates tensors along an axis.
 *
 * @param tensors - tensors of one dtype and equal shapes except along `axis`
 * @param axis - the axis (negative counts from the end)
 * @throws {@link ShapeError} when the shapes disagree
 * @public
 */
export function concat(tensors: readonly SymbolicTensor[], axis: number): SymbolicTensor {
  if (tensors.length === 0) throw new ShapeError('concat: expected at least one tensor; found none');
  if (tensors.length === 1) return tensors[0]!;
  return concatOp.apply(tensors, { axis: normalizeAxis('concat', axis, tensors[0]!.rank) })[0]!;
}
