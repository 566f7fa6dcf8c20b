import { ShapeError } from '../errors.js';
import { formatShape, isStaticDim } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp } from '../graph/op.js';
import { normalizeAxis } from '../graph/shape.js';
import { pad } from './pad.js';

/** Attributes of {@link slice}. */
export interface SliceAttributes {
  readonly starts: readonly number[];
  readonly ends: readonly number[];
  readonly axes: readonly number[];
}

/** The `slice` op (unit steps). Gradient: dy padded with zeros back to the input shape. */
export const sliceOp = defineOp<SliceAttributes>({
  name: 'slice',
  infer([x], { starts, ends, axes }) {
    const shape = [...x!.shape];
    axes.forEach((axis, i) => {
      const size = x!.shape[axis]!;
      const start = starts[i]!;
      const end = ends[i]!;
      if (!isStaticDim(size)) throw new ShapeError(`slice: axis ${axis} of ${formatShape(x!.shape)} is named; slicing needs a static size`);
      if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= size)) {
        throw new ShapeError(`slice: range ${start}..${end} is outside axis ${axis} of size ${size} (shape ${formatShape(x!.shape)})`);
      }
      shape[axis] = end - start;
    });
    return [{ dtype: x!.dtype, shape }];
  },
  lower: (context, [x], { starts, ends, axes }) => context.emit('Slice', [x!, context.int64s(starts), context.int64s(ends), context.int64s(axes)]),
  reference([x], { starts, ends, axes }) {
    const allStarts = x!.shape.map(() => 0);
    const allEnds = [...x!.shape];
    axes.forEach((axis, i) => {
      allStarts[axis] = starts[i]!;
      allEnds[axis] = ends[i]!;
    });
    return [x!.slice(allStarts, allEnds).contiguous()];
  },
  gradient: ({ inputs, outputGradients, attributes }) => {
    const x = inputs[0]!;
    const before = x.shape.map(() => 0);
    const after = x.shape.map(() => 0);
    attributes.axes.forEach((axis, i) => {
      before[axis] = attributes.starts[i]!;
      after[axis] = (x.shape[axis] as number) - attributes.ends[i]!;
    });
    return [pad(outputGradients[0]!, before, after)];
  },
});

/**
 * Takes `[start, end)` along each of `axes` (unit steps; static sizes on those axes).
 *
 * @param x - the tensor
 * @param starts - start per axis
 * @param ends - end per axis (exclusive)
 * @param axes - the axes; 0..n-1 when omitted
 * @throws {@link ShapeError} for a range outside the tensor
 * @public
 */
export function slice(x: SymbolicTensor, starts: readonly number[], ends: readonly number[], axes?: readonly number[]): SymbolicTensor {
  const resolvedAxes = (axes ?? starts.map((_, i) => i)).map((axis) => normalizeAxis('slice', axis, x.rank));
  if (starts.length !== resolvedAxes.length || ends.length !== resolvedAxes.length) {
    throw new ShapeError(`slice: expected as many starts and ends as axes (${resolvedAxes.length}); found ${starts.length} starts and ${ends.length} ends`);
  }
  return sliceOp.apply([x], { starts, ends, axes: resolvedAxes })[0]!;
}
