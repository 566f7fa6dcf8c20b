import ndarray, { type NdArray, type Data } from 'ndarray';
import { DTypeError } from '../errors.js';
import { dataTypeOfArray, type DataType, type DataTypeMap } from './dtype.js';
import { HostTensor } from './host-tensor.js';

/**
 * Wraps a host tensor as an `ndarray` view over the same memory (no copy).
 * float16 tensors become a `Uint16Array` view of the raw half bits; int64
 * tensors a `BigInt64Array` view.
 *
 * @public
 */
export function toNdarray<D extends DataType>(tensor: HostTensor<D>): NdArray<DataTypeMap[D] & Data> {
  return ndarray(tensor.data as DataTypeMap[D] & Data, [...tensor.shape], [...tensor.strides], tensor.offset);
}

/**
 * Wraps an `ndarray` as a host tensor over the same memory (no copy).
 *
 * @param array - a view over a TypedArray
 * @param dtype - the data type; inferred from the TypedArray when omitted (a `Uint16Array` is read as float16 bits, a `Uint8Array` as uint8)
 * @throws {@link DTypeError} when the storage is a plain array or does not match `dtype`
 * @public
 */
export function fromNdarray<D extends DataType = DataType>(array: NdArray, dtype?: D): HostTensor<D> {
  const data = array.data as unknown;
  if (!ArrayBuffer.isView(data)) {
    throw new DTypeError(`fromNdarray: expected an ndarray over a TypedArray; found ${Array.isArray(data) ? 'a plain array' : typeof data}`);
  }
  const resolved = (dtype ?? dataTypeOfArray(data)) as D | undefined;
  if (resolved === undefined) {
    throw new DTypeError(`fromNdarray: cannot infer a data type from ${data.constructor.name}; pass dtype`);
  }
  return new HostTensor(resolved, data as DataTypeMap[D], array.shape, array.stride, array.offset);
}
