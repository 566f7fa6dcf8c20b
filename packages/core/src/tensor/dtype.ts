import { DTypeError } from '../errors.js';

/**
 * Maps each supported data type to the TypedArray that stores it on the host.
 * `float16` is stored as raw IEEE 754 half bits in a `Uint16Array`; `bool` as
 * 0/1 bytes.
 *
 * @public
 */
export interface DataTypeMap {
  /** 32-bit floats. */
  float32: Float32Array;
  /** 64-bit floats. */
  float64: Float64Array;
  /** IEEE half-precision floats, stored as their 16-bit patterns. */
  float16: Uint16Array;
  /** 32-bit signed integers. */
  int32: Int32Array;
  /** 64-bit signed integers. */
  int64: BigInt64Array;
  /** 8-bit unsigned integers. */
  uint8: Uint8Array;
  /** 8-bit signed integers (quantized weights). */
  int8: Int8Array;
  /** Booleans, one byte each (0 or 1). */
  bool: Uint8Array;
}

/**
 * A data type a tensor can hold.
 *
 * @public
 */
export type DataType = keyof DataTypeMap;

/** The floating-point data types. @public */
export type FloatDataType = 'float32' | 'float64' | 'float16';

/** Every supported data type, in a fixed order. @public */
export const DATA_TYPES: readonly DataType[] = ['float32', 'float64', 'float16', 'int32', 'int64', 'uint8', 'int8', 'bool'];

const typedArrayConstructors = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  int8: Int8Array,
  bool: Uint8Array,
} as const;

/** ONNX `TensorProto.DataType` enum values of each data type. */
export const ONNX_DATA_TYPE: Readonly<Record<DataType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

/** Bytes per element of each data type. @public */
export function bytesPerElement(dtype: DataType): number {
  return typedArrayConstructors[dtype].BYTES_PER_ELEMENT;
}

/**
 * Checks that a string names a supported data type.
 *
 * @param dtype - the value to check
 * @throws {@link DTypeError} when it is not one of {@link DATA_TYPES}
 * @public
 */
export function assertDataType(dtype: unknown): asserts dtype is DataType {
  if (typeof dtype !== 'string' || !(dtype in typedArrayConstructors)) {
    throw new DTypeError(`expected a data type among ${DATA_TYPES.join(', ')}; found ${String(dtype)}`);
  }
}

/** Whether a data type is a floating-point type. @public */
export function isFloatDataType(dtype: DataType): dtype is FloatDataType {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16';
}

/**
 * Allocates a zero-filled TypedArray for `length` elements of `dtype`.
 *
 * @public
 */
export function allocateData<D extends DataType>(dtype: D, length: number): DataTypeMap[D] {
  return new typedArrayConstructors[dtype](length) as DataTypeMap[D];
}

/**
 * Wraps bytes as a TypedArray of `dtype` without copying when the byte offset
 * is aligned; copies otherwise.
 *
 * @param dtype - element type
 * @param buffer - the underlying bytes
 * @param byteOffset - where the elements start in `buffer`
 * @param length - number of elements
 * @public
 */
export function dataFromBytes<D extends DataType>(dtype: D, buffer: ArrayBufferLike, byteOffset: number, length: number): DataTypeMap[D] {
  const Ctor = typedArrayConstructors[dtype];
  if (byteOffset % Ctor.BYTES_PER_ELEMENT === 0) {
    return new Ctor(buffer as ArrayBuffer, byteOffset, length) as DataTypeMap[D];
  }
  const copy = new Uint8Array(length * Ctor.BYTES_PER_ELEMENT);
  copy.set(new Uint8Array(buffer, byteOffset, copy.byteLength));
  return new Ctor(copy.buffer, 0, length) as DataTypeMap[D];
}

/** The data type whose host storage is this TypedArray, if it is unambiguous. */
export function dataTypeOfArray(data: ArrayBufferView): DataType | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint16Array) return 'float16';
  return undefined;
}
