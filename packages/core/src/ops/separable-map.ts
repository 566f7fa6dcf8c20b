import { ShapeError } from '../errors.js';
import { dimsEqual, formatShape } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES } from '../graph/op.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { floatData, floatTensor, type FloatArray } from '../reference/kernel-utils.js';

/** Attributes of {@link separableMap}: the two matrices as row-major float64 values. */
export interface SeparableMapAttributes {
  /** [outH, H] */
  readonly rows: HostTensor<'float64'>;
  /** [outW, W] */
  readonly columns: HostTensor<'float64'>;
}

/** The transpose of a 2-D float64 matrix. */
export function transposeMatrix(matrix: HostTensor<'float64'>): HostTensor<'float64'> {
  return matrix.transpose([1, 0]).contiguous();
}

/**
 * The `separableMap` op: `rows · x · columnsᵀ` over the last two axes, the
 * form shared by adaptive average pooling, bilinear resizing and nearest
 * upsampling (and their gradients). Lowered as two MatMuls with constant
 * matrices. Gradient: the same op with both matrices transposed.
 */
export const separableMapOp = defineOp<SeparableMapAttributes>({
  name: 'separableMap',
  infer([x], { rows, columns }) {
    expectDtype('separableMap', 'x', x!, FLOAT_TYPES);
    const rank = x!.shape.length;
    if (rank < 2 || !dimsEqual(x!.shape[rank - 2]!, rows.shape[1]!) || !dimsEqual(x!.shape[rank - 1]!, columns.shape[1]!)) {
      throw new ShapeError(`separableMap: matrices [${rows.shape.join(', ')}] and [${columns.shape.join(', ')}] do not fit x ${formatShape(x!.shape)}`);
    }
    return [{ dtype: x!.dtype, shape: [...x!.shape.slice(0, -2), rows.shape[0]!, columns.shape[0]!] }];
  },
  lower(context, [x], { rows, columns }) {
    const dtype = context.node.inputs[0]!.dtype;
    const rowsConstant = context.constant(rows.cast(dtype));
    const columnsConstant = context.constant(transposeMatrix(columns).cast(dtype));
    const left = context.emit('MatMul', [rowsConstant, x!])[0]!;
    return context.emit('MatMul', [left, columnsConstant]);
  },
  reference([x], { rows, columns }) {
    const shape = x!.shape;
    const [h, w] = shape.slice(-2) as [number, number];
    const [oh, ow] = [rows.shape[0]!, columns.shape[0]!];
    const batch = shape.slice(0, -2).reduce((a, b) => a * b, 1);
    const out = floatTensor(x!.dtype, [...shape.slice(0, -2), oh, ow]);
    const od = out.data as FloatArray;
    const xd = floatData('separableMap', x!);
    const r = rows.contiguous().data;
    const c = columns.contiguous().data;
    for (let b = 0; b < batch; b++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          let total = 0;
          for (let y = 0; y < h; y++) {
            const weight = r[i * h + y]!;
            if (weight === 0) continue;
            for (let v = 0; v < w; v++) total += weight * xd[(b * h + y) * w + v]! * c[j * w + v]!;
          }
          od[(b * oh + i) * ow + j] = total;
        }
      }
    }
    return [out];
  },
  gradient: ({ outputGradients, attributes }) => [separableMap(outputGradients[0]!, transposeMatrix(attributes.rows), transposeMatrix(attributes.columns))],
});

/**
 * `rows · x · columnsᵀ` over the last two axes of x.
 *
 * @param x - [..., H, W]
 * @param rows - [outH, H]
 * @param columns - [outW, W]
 * @public
 */
export function separableMap(x: SymbolicTensor, rows: HostTensor<'float64'>, columns: HostTensor<'float64'>): SymbolicTensor {
  return separableMapOp.apply([x], { rows, columns })[0]!;
}

/** PyTorch's adaptive average pooling as a matrix [out, in]: bin i covers floor(i*in/out) .. ceil((i+1)*in/out). */
export function adaptivePoolMatrix(inputSize: number, outputSize: number): HostTensor<'float64'> {
  const matrix = HostTensor.zeros('float64', [outputSize, inputSize]);
  for (let i = 0; i < outputSize; i++) {
    const start = Math.floor((i * inputSize) / outputSize);
    const end = Math.ceil(((i + 1) * inputSize) / outputSize);
    for (let j = start; j < end; j++) matrix.data[i * inputSize + j] = 1 / (end - start);
  }
  return matrix;
}

/** PyTorch's bilinear interpolation weights (align_corners=False) as a matrix [out, in]. */
export function bilinearMatrix(inputSize: number, outputSize: number): HostTensor<'float64'> {
  const matrix = HostTensor.zeros('float64', [outputSize, inputSize]);
  const scale = inputSize / outputSize;
  for (let i = 0; i < outputSize; i++) {
    const source = Math.max(0, (i + 0.5) * scale - 0.5);
    const low = Math.min(Math.floor(source), inputSize - 1);
    const high = Math.min(low + 1, inputSize - 1);
    const fraction = source - low;
    matrix.data[i * inputSize + low]! += 1 - fraction;
    matrix.data[i * inputSize + high]! += fraction;
  }
  return matrix;
}

/** Nearest-neighbour upsampling by an integer factor as a matrix [factor*in, in]. */
export function nearestMatrix(inputSize: number, factor: number): HostTensor<'float64'> {
  const matrix = HostTensor.zeros('float64', [inputSize * factor, inputSize]);
  for (let i = 0; i < inputSize * factor; i++) matrix.data[i * inputSize + Math.floor(i / factor)] = 1;
  return matrix;
}
