import { attr } from '../graph/attributes.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES, type GradientContext, type Op } from '../graph/op.js';
import { normalizeAxis } from '../graph/shape.js';
import { reduceKernel } from '../reference/kernel-utils.js';

/** Attributes of the reductions. */
export interface ReduceAttributes {
  /** Axes to reduce (normalized, sorted, unique). */
  readonly axes: readonly number[];
  /** Keep reduced axes with size 1. */
  readonly keepDims: boolean;
}

/** Reduction definition. */
export interface ReduceSpec {
  name: string;
  onnx: string;
  initial: number;
  combine: (accumulator: number, value: number) => number;
  finish?: (accumulator: number, count: number) => number;
  gradient: (context: GradientContext<ReduceAttributes>) => SymbolicTensor;
}

/** Defines a reduction over axes (axes given as an int64 input, opset 18). */
export function defineReduction(spec: ReduceSpec): Op<ReduceAttributes> {
  return defineOp<ReduceAttributes>({
    name: spec.name,
    infer([x], { axes, keepDims }) {
      expectDtype(spec.name, 'x', x!, FLOAT_TYPES);
      const shape = keepDims ? x!.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x!.shape.filter((_, i) => !axes.includes(i));
      return [{ dtype: x!.dtype, shape }];
    },
    lower: (context, [x], { axes, keepDims }) =>
      axes.length === 0 ? context.emit('Identity', [x!]) : context.emit(spec.onnx, [x!, context.int64s(axes)], { keepdims: attr.int(keepDims ? 1 : 0) }),
    reference: ([x], { axes, keepDims }) => [reduceKernel(spec.name, x!, axes, keepDims, spec.initial, spec.combine, spec.finish)],
    gradient: (context) => [spec.gradient(context)],
  });
}

/** Normalizes user axes (undefined = all). */
export function resolveAxes(opName: string, x: SymbolicTensor, axes: number | readonly number[] | undefined): number[] {
  const list = axes === undefined ? x.shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : [...axes];
  return [...new Set(list.map((axis) => normalizeAxis(opName, axis, x.rank)))].sort((a, b) => a - b);
}

/** Shape of a reduction's output with the reduced axes kept as 1. */
export function keptShape(x: SymbolicTensor, axes: readonly number[]): (number | string)[] {
  return x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
}
