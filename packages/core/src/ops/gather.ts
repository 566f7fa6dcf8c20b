import { ShapeError } from '../errors.js';
import { attr } from '../graph/attributes.js';
import { formatShape } from '../graph/dim.js';
import { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype } from '../graph/op.js';
import { expectRank, normalizeAxis } from '../graph/shape.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { scatterAdd } from './scatter-add.js';

/** Attributes of {@link gather}. */
export interface GatherAttributes {
  readonly axis: number;
}

/** Copies slices `index` of `x` along `axis` into `out` at `position`. Shared by gather and scatterAdd. */
export function forEachAxisSlice(
  shape: readonly number[],
  axis: number,
  visit: (outer: number, index: number, inner: number, innerSize: number) => void,
): void {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let o = 0; o < outer; o++) for (let i = 0; i < shape[axis]!; i++) visit(o, i, inner, inner);
}

/** The `gather` op (1-D int64 indices). Gradient: scatter-add of dy into zeros of x's shape. */
export const gatherOp = defineOp<GatherAttributes>({
  name: 'gather',
  infer([x, indices], { axis }) {
    expectDtype('gather', 'indices', indices!, ['int64']);
    expectRank('gather', 'indices', indices!.shape, 1);
    const shape = [...x!.shape];
    shape[axis] = indices!.shape[0]!;
    return [{ dtype: x!.dtype, shape }];
  },
  lower: (context, inputs, { axis }) => context.emit('Gather', inputs, { axis: attr.int(axis) }),
  reference([x, indices], { axis }) {
    const index = indices!.toArray();
    const size = x!.shape[axis]!;
    for (const i of index) {
      if (!(Number.isInteger(i) && i >= -size && i < size)) throw new ShapeError(`gather: index ${i} is out of range for axis ${axis} of size ${size}`);
    }
    const shape = [...x!.shape];
    shape[axis] = index.length;
    const out = HostTensor.zeros(x!.dtype, shape);
    const source = x!.contiguous().data as unknown as ArrayLike<unknown>;
    const destination = out.data as unknown as { [k: number]: unknown };
    forEachAxisSlice(shape, axis, (o, j, inner) => {
      const from = index[j]! < 0 ? index[j]! + size : index[j]!;
      for (let k = 0; k < inner; k++) destination[(o * shape[axis]! + j) * inner + k] = source[(o * size + from) * inner + k];
    });
    return [out];
  },
  gradient: ({ inputs, outputGradients, attributes }) => [scatterAdd(outputGradients[0]!, inputs[1]!, attributes.axis, inputs[0]!.shape), undefined],
});

/**
 * Selects entries along an axis: `out[..., j, ...] = x[..., indices[j], ...]`.
 *
 * @param x - the tensor
 * @param indices - 1-D int64 tensor, or numbers (made a constant)
 * @param axis - the axis (negative counts from the end)
 * @throws {@link ShapeError} for bad indices; ORT fails at run time on out-of-range runtime indices
 * @public
 */
export function gather(x: SymbolicTensor, indices: SymbolicTensor | readonly number[], axis = 0): SymbolicTensor {
  const resolved =
    indices instanceof SymbolicTensor
      ? indices
      : x.graph.constant(
          HostTensor.from(
            'int64',
            [indices.length],
            indices.map((i) => BigInt(i)),
          ),
        );
  if (!(indices instanceof SymbolicTensor)) {
    const size = x.shape[normalizeAxis('gather', axis, x.rank)];
    if (typeof size === 'number' && indices.some((i) => !Number.isInteger(i) || i < -size || i >= size)) {
      throw new ShapeError(`gather: indices [${indices.join(', ')}] are outside axis ${axis} of ${formatShape(x.shape)}`);
    }
  }
  return gatherOp.apply([x, resolved], { axis: normalizeAxis('gather', axis, x.rank) })[0]!;
}
