import { attr } from '../graph/attributes.js';
import { ShapeError } from '../errors.js';
import { isStaticDim, type Dim } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp } from '../graph/op.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { slice } from './slice.js';

/** Attributes of {@link pad}. */
export interface PadAttributes {
  readonly before: readonly number[];
  readonly after: readonly number[];
}

function addToDim(dim: Dim, amount: number): Dim {
  if (amount === 0) return dim;
  if (!isStaticDim(dim)) throw new ShapeError(`pad: cannot pad the named dimension ${dim}`);
  return dim + amount;
}

/** The `pad` op (zeros). Gradient: the slice of dy that covers the input. */
export const padOp = defineOp<PadAttributes>({
  name: 'pad',
  infer([x], { before, after }) {
    if (before.length !== x!.shape.length || after.length !== x!.shape.length || [...before, ...after].some((p) => !Number.isInteger(p) || p < 0)) {
      throw new ShapeError(`pad: expected ${x!.shape.length} non-negative amounts before and after; found [${before.join(', ')}] and [${after.join(', ')}]`);
    }
    return [{ dtype: x!.dtype, shape: x!.shape.map((d, i) => addToDim(d, before[i]! + after[i]!)) }];
  },
  lower: (context, [x], { before, after }) => context.emit('Pad', [x!, context.int64s([...before, ...after])], { mode: attr.string('constant') }),
  reference([x], { before, after }) {
    const shape = x!.shape.map((d, i) => d + before[i]! + after[i]!);
    const out = HostTensor.zeros(x!.dtype, shape);
    const window = out.slice(
      before,
      x!.shape.map((d, i) => d + before[i]!),
    );
    const values = x!.contiguous();
    const rank = shape.length;
    const index = new Array<number>(rank).fill(0);
    for (let i = 0; i < values.size; i++) {
      let flat = window.offset;
      for (let axis = 0; axis < rank; axis++) flat += index[axis]! * window.strides[axis]!;
      (out.data as unknown as { [k: number]: unknown })[flat] = (values.data as unknown as ArrayLike<unknown>)[i];
      for (let axis = rank - 1; axis >= 0; axis--) {
        index[axis]!++;
        if (index[axis]! < x!.shape[axis]!) break;
        index[axis] = 0;
      }
    }
    return [out];
  },
  gradient: ({ inputs, outputGradients, attributes }) => {
    const axes = inputs[0]!.shape.map((_, i) => i).filter((i) => attributes.before[i]! > 0 || attributes.after[i]! > 0);
    const starts = axes.map((axis) => attributes.before[axis]!);
    const ends = axes.map((axis) => attributes.before[axis]! + (inputs[0]!.shape[axis] as number));
    return [axes.length === 0 ? outputGradients[0]! : slice(outputGradients[0]!, starts, ends, axes)];
  },
});

/**
 * Pads with zeros.
 *
 * @param x - the tensor
 * @param before - amount before each axis
 * @param after - amount after each axis
 * @throws {@link ShapeError} for negative amounts or a padded named dimension
 * @public
 */
export function pad(x: SymbolicTensor, before: readonly number[], after: readonly number[]): SymbolicTensor {
  return padOp.apply([x], { before, after })[0]!;
}
